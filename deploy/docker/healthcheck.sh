#!/usr/bin/env bash
# The image's HEALTHCHECK: GET /healthz on the worker's metrics port
# (DTK_METRICS_PORT, 9464 in the image) over bash's /dev/tcp, so the image
# needs no curl. Exit 0 on an HTTP 200, 1 otherwise (Docker's "unhealthy").
#
#   dtk-healthcheck [PATH]     (default /healthz; /readyz also works)
set -u
port=${DTK_METRICS_PORT:-9464}
path=${1:-/healthz}
{ exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || { echo "dtk-healthcheck: nothing listens on port $port" >&2; exit 1; }
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 5 status <&3 || { echo "dtk-healthcheck: no answer on port $port" >&2; exit 1; }
exec 3<&-
case $status in
"HTTP/1."?" 200"*) exit 0 ;;
*) echo "dtk-healthcheck: $path: ${status%$'\r'}" >&2; exit 1 ;;
esac
