FROM python:3.12-slim AS base
RUN useradd --uid 10001 app
USER app
HEALTHCHECK CMD ["python", "-c", "print(1)"]

FROM base AS test
RUN pip install pytest

FROM base
ENV PIP_NO_CACHE_DIR=1
RUN pip install flask
RUN --mount=type=cache,target=/var/cache/apt --mount=type=cache,target=/var/lib/apt \
    apt-get update && apt-get install -y libpq5
RUN npm ci && npm cache clean --force
RUN dnf install -y tar && dnf clean all
EXPOSE ${PORT} 6443
