FROM ubuntu
ARG GITHUB_TOKEN=ghp_0123456789abcdefghijklmnopqrstuvwxyzAB
ENV DB_PASSWORD=hunter2 \
    AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" \
    PATH=/usr/local/bin:$PATH
ENV LEGACY_SECRET s3cr3t value with spaces
LABEL api_key="abc123def456"
RUN apt-get update
RUN apt-get install -y curl sudo openssh-server
RUN curl -fsSL https://get.example.com/install.sh | sh
RUN wget -qO- https://example.com/setup | sudo -E bash -
ADD https://example.com/app.jar /opt/app.jar
ADD config.yaml /etc/app/
EXPOSE 22 80 2375/tcp 5900-5910
USER root
