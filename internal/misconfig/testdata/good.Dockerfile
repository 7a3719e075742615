# syntax=docker/dockerfile:1
FROM golang:1.26.8-bookworm@sha256:4f2ab9e1d1c7b3c8e7f1a3f0f8b8a9e1e2d3c4b5a6978877665544332211aabb AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/app ./cmd/app

FROM debian:12.8-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/app /usr/local/bin/app
ADD rootfs.tar.gz /opt/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/tool.tar.gz /opt/tool.tar.gz
ENV APP_PASSWORD_FILE=/run/secrets/app_password \
    GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D \
    API_TOKEN=${API_TOKEN}
ARG NPM_TOKEN
EXPOSE 8080/tcp
USER 10001:10001
HEALTHCHECK --interval=30s CMD ["/usr/local/bin/app", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/app"]
