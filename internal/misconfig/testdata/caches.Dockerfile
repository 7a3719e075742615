FROM registry.example.com:5000/team/base
FROM registry.example.com:5000/team/base:1.4
RUN apt-get install -y --no-install-recommends gcc
RUN apk add --virtual .build-deps gcc musl-dev
RUN pip3 install --upgrade requests
RUN python3 -m pip install --no-cache-dir flask
RUN npm install -g typescript
RUN yum install -y sudo-1.9.5
RUN DEBIAN_FRONTEND=noninteractive apt-get -o Dpkg::Options::=--force-confdef install -y vim && rm -rf /var/lib/apt/lists/*
RUN bash -c "$(curl -fsSL https://example.com/install.sh)"
USER nobody
HEALTHCHECK CMD true
