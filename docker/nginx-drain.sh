#!/usr/bin/env bash
# Graceful stop for a Kubernetes preStop hook (or by hand): wait DELAY
# seconds so that the endpoints controller and kube-proxy stop routing new
# requests here, then `nginx -s quit` (SIGQUIT: stop accepting, finish the
# requests in flight, deliver or fail every accepted Kafka message), and
# wait until the master process has exited, at most WAIT seconds.
#
# Usage: nginx-drain.sh [-h] [-d DELAY] [-w WAIT]
#        (defaults: DRAIN_DELAY=5, DRAIN_WAIT=150 or the environment)

set -euo pipefail

runtime=${NGINX_RUNTIME_DIR:-/run/nginx-kafka}
delay=${DRAIN_DELAY:-5}
wait_max=${DRAIN_WAIT:-150}

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

while getopts d:w:h opt; do
    case $opt in
        d) delay=$OPTARG ;;
        w) wait_max=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

pidfile=$runtime/nginx.pid

if [ ! -s "$pidfile" ]; then
    echo "nginx-drain: no $pidfile, nginx is not running" >&2
    exit 0
fi

pid=$(cat "$pidfile")

sleep "$delay"

echo "nginx-drain: nginx -s quit (master $pid)" >&2
nginx -q -p "$runtime/" -c "$runtime/nginx.conf" -s quit

for ((i = 0; i < wait_max; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "nginx-drain: nginx exited after ${i}s" >&2
        exit 0
    fi
    sleep 1
done

echo "nginx-drain: nginx still running after ${wait_max}s" >&2
exit 1
