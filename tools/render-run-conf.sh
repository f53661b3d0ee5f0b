#!/usr/bin/env bash
# Renders conf/nginx.conf for `make run` (and `make lab`) with the lab's
# variables, the same ones the image honours, plus where to listen:
#
#   KAFKA_BOOTSTRAP_SERVERS     host:port[,host:port...]   required
#   KAFKA_REQUEST_TIMEOUT_MS    request.timeout.ms          1000
#   KAFKA_DELIVERY_TIMEOUT_MS   message.timeout.ms          120000
#   KAFKA_RETRY_BACKOFF_MS      retry.backoff.ms            100
#   KAFKA_RETRIES               message.send.max.retries    10
#   KAFKA_LINGER_MS             linger.ms                   0
#   KAFKA_IDEMPOTENT_LINGER_MS  linger.ms, idempotent       1
#   KAFKA_SOCKET_TIMEOUT_MS     socket.timeout.ms (not a lab variable: how
#                               long librdkafka waits for a broker's answer
#                               before it retries; the duplicate lesson
#                               sets it below the injected latency)
#                                                           librdkafka's 60000
#   KAFKA_TOPIC                 default topic               bhf-transactions
#   NGINX_WORKER_PROCESSES      worker_processes            auto
#   LISTEN                      address nginx listens on    127.0.0.1
#                               (0.0.0.0: every address, for NODE_IP)
#   PORT                        its port                    8080
#
# The lab's variables are validated and substituted by docker/render-conf.sh
# (one validator for the image and for the local run): conf/nginx.conf is
# first turned into a template by replacing the values of its directives
# with ${VARIABLES}.  Every wrong value is reported; exit 1 and nothing
# written.
#
# Usage: tools/render-run-conf.sh [-h] [-c CONF] OUT

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
prog=render-run-conf
conf=$top/conf/nginx.conf

usage() {
    sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'
}

while getopts c:h opt; do
    case $opt in
        c) conf=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

if [ $# -ne 1 ]; then
    usage >&2
    exit 2
fi
out=$1

errors=0
fail() {
    echo "$prog: $*" >&2
    errors=$((errors + 1))
}

LISTEN=${LISTEN:-127.0.0.1}
PORT=${PORT:-8080}
socket_timeout=${KAFKA_SOCKET_TIMEOUT_MS:-}

if ! [[ $PORT =~ ^[1-9][0-9]{0,4}$ ]] || ((PORT > 65535)); then
    fail "PORT='$PORT' is not valid: expected a TCP port from 1 to 65535"
fi

# nginx's listen: an IPv4 address, a host name, * or an [IPv6] address
# (a bare IPv6 address gets its brackets)
if [[ $LISTEN == *:* && $LISTEN != \[*\] ]]; then
    LISTEN="[$LISTEN]"
fi
if ! [[ $LISTEN =~ ^([0-9]{1,3}(\.[0-9]{1,3}){3}|[A-Za-z0-9.-]+|\*|\[[0-9A-Fa-f:.]+\])$ ]]
then
    fail "LISTEN='$LISTEN' is not valid: expected an address such as" \
         "127.0.0.1 (this machine only) or 0.0.0.0 (every address)"
fi

if [ -n "$socket_timeout" ] \
    && { ! [[ $socket_timeout =~ ^[1-9][0-9]{1,5}$ ]] \
         || ((socket_timeout < 10 || socket_timeout > 300000)); }
then
    fail "KAFKA_SOCKET_TIMEOUT_MS='$socket_timeout' is not valid: expected" \
         "milliseconds from 10 to 300000 (librdkafka's socket.timeout.ms)"
fi

[ -r "$conf" ] || { echo "$prog: cannot read $conf" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/render-run-conf.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# conf/nginx.conf -> a template of docker/render-conf.sh
# shellcheck disable=SC2016
sed -E \
    -e 's/^(worker_processes[[:space:]]+)[^;]*;/\1${NGINX_WORKER_PROCESSES};/' \
    -e 's/^([[:space:]]*kafka_producer_brokers[[:space:]]+)[^;]*;/\1${KAFKA_BOOTSTRAP_SERVERS};/' \
    -e 's/^([[:space:]]*kafka_producer_request_timeout[[:space:]]+)[^;]*;/\1${KAFKA_REQUEST_TIMEOUT_MS}ms;/' \
    -e 's/^([[:space:]]*kafka_producer_delivery_timeout[[:space:]]+)[^;]*;/\1${KAFKA_DELIVERY_TIMEOUT_MS}ms;/' \
    -e 's/^([[:space:]]*kafka_producer_retry_backoff[[:space:]]+)[^;]*;/\1${KAFKA_RETRY_BACKOFF_MS}ms;/' \
    -e 's/^([[:space:]]*kafka_producer_retries[[:space:]]+)[^;]*;/\1${KAFKA_RETRIES};/' \
    -e 's/^([[:space:]]*kafka_producer_linger[[:space:]]+)[^;]*;/\1${KAFKA_LINGER_MS}ms idempotent=${KAFKA_IDEMPOTENT_LINGER_MS}ms;/' \
    -e 's/^([[:space:]]*kafka_producer_topic[[:space:]]+)[^;]*;/\1${KAFKA_TOPIC};/' \
    "$conf" > "$tmp/template"

for var in NGINX_WORKER_PROCESSES KAFKA_BOOTSTRAP_SERVERS \
           KAFKA_REQUEST_TIMEOUT_MS KAFKA_DELIVERY_TIMEOUT_MS \
           KAFKA_RETRY_BACKOFF_MS KAFKA_RETRIES KAFKA_LINGER_MS KAFKA_TOPIC
do
    grep -qF "\${$var}" "$tmp/template" \
        || fail "$conf: the directive that $var sets was not found"
done
grep -Eq '^[[:space:]]*listen[[:space:]]+[^;]*;' "$conf" \
    || fail "$conf: no listen directive"

# every lab variable checked (all errors reported) and substituted
if ! NGINX_MODULES_DIR=/usr/lib/nginx/modules \
     "$top/docker/render-conf.sh" "$tmp/template" "$tmp/nginx.conf" \
     2> "$tmp/render.log"
then
    grep -v 'not rendered$' "$tmp/render.log" | sed "s/^render-conf: /$prog: /" >&2
    errors=$((errors + 1))
fi

if [ "$errors" -ne 0 ]; then
    echo "$prog: nothing written (tools/render-run-conf.sh -h lists the" \
         "variables)" >&2
    exit 1
fi

sed -E -i "s/^([[:space:]]*listen[[:space:]]+)[^;]*;/\1$LISTEN:$PORT;/" \
    "$tmp/nginx.conf"

if [ -n "$socket_timeout" ]; then
    sed -E -i "s/^([[:space:]]*kafka_producer_status_zone[[:space:]])/    kafka_producer_option  socket.timeout.ms  $socket_timeout;  # KAFKA_SOCKET_TIMEOUT_MS\n\n\1/" \
        "$tmp/nginx.conf"
    grep -q "socket.timeout.ms  $socket_timeout;" "$tmp/nginx.conf" \
        || { echo "$prog: could not set socket.timeout.ms" >&2; exit 1; }
fi

mv -f "$tmp/nginx.conf" "$out"
