# escape=`
FROM mcr.microsoft.com/windows/servercore:latest
RUN powershell -Command `
    Invoke-WebRequest https://example.com/x.ps1 -OutFile x.ps1
FROM alpine:3.20
RUN ["/bin/sh", "-c", "curl -s https://example.com/i.sh | sh"]
RUN <<EOF
set -e
apk add curl
wget -O- https://example.com/get | sh
EOF
RUN apk add --no-cache ca-certificates
USER 0:0
HEALTHCHECK NONE
