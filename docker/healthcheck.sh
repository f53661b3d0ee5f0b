#!/usr/bin/env bash
# Docker HEALTHCHECK of the m02-nginx-api image: GET /health on
# 127.0.0.1:PORT must answer 200 within TIMEOUT seconds.  Uses bash's
# /dev/tcp only: the image ships no curl or wget.
#
# Usage: healthcheck.sh [-h] [PORT [TIMEOUT]]     (defaults: 8080 3)

set -euo pipefail

if [ "${1:-}" = -h ]; then
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

port=${1:-8080}
timeout=${2:-3}

check() {
    local status

    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
    IFS= read -r status <&3
    exec 3<&-
    case $status in
        "HTTP/1."[01]" 200 "*) return 0 ;;
    esac
    echo "healthcheck: /health answered: ${status%$'\r'}" >&2
    return 1
}

export -f check
export port
if ! timeout "$timeout" bash -c check; then
    echo "healthcheck: no 200 from http://127.0.0.1:$port/health" >&2
    exit 1
fi
