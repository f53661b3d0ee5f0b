#!/usr/bin/env bash
# `make run`: nginx with the module in the foreground, in front of a local
# Kafka-protocol cluster (tools/kafka-mock: 3 brokers, topic
# bhf-transactions with 3 partitions) or of the brokers you name.
# Ctrl-C stops everything.  docs/WORKSHOP.md is the lab step by step.
#
# Settings, from the environment or the make command line
# (`make run PORT=5000`, `KAFKA_DELIVERY_TIMEOUT_MS=3000 make run`):
#
#   PORT, LISTEN               where nginx listens (8080, 127.0.0.1;
#                              LISTEN=0.0.0.0 for http://NODE_IP:PORT)
#   KAFKA_BOOTSTRAP_SERVERS    a real cluster instead of the mock
#                              (KAFKA_BROKERS is accepted too)
#   KAFKA_REQUEST_TIMEOUT_MS, KAFKA_DELIVERY_TIMEOUT_MS,
#   KAFKA_RETRY_BACKOFF_MS, KAFKA_RETRIES, KAFKA_LINGER_MS,
#   KAFKA_IDEMPOTENT_LINGER_MS, KAFKA_TOPIC, NGINX_WORKER_PROCESSES
#                              the lab's variables, as the image takes them
#   KAFKA_SOCKET_TIMEOUT_MS    librdkafka's socket.timeout.ms (the
#                              duplicate lesson sets it to 1000)
#   MOCK_BROKERS               brokers of the mock (3)
#   RUN_DIR                    nginx's prefix and the run's files
#                              (build/run)
#   READBACK_BROKERS           brokers the read-back command uses (the
#                              bootstrap servers); TOXIPROXY_URL, when
#                              set, is shown as the fault channel
#                              (`make lab`)
#
# tools/render-run-conf.sh validates them all (every wrong value is named)
# and renders conf/nginx.conf into RUN_DIR/nginx.conf.  The run fails with
# a non-zero status and a line saying why when the port is taken or nginx
# does not come up.  While it runs, RUN_DIR/run.env holds API_URL,
# KAFKA_BROKERS, READBACK_BROKERS, KAFKA_MOCK_SOCKET, KAFKA_TOPIC, RUN_DIR: the
# defaults of tools/fault, tools/readback, tools/load and scripts/.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
prefix=${RUN_DIR:-$build/run}
nginx=${NGINX:-/usr/sbin/nginx}

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

die() {
    echo "run: $*" >&2
    exit 1
}

export LISTEN=${LISTEN:-127.0.0.1}
export PORT=${PORT:-8080}
export KAFKA_TOPIC=${KAFKA_TOPIC:-bhf-transactions}
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-${KAFKA_BROKERS:-}}
mock_brokers=${MOCK_BROKERS:-3}

[ -f "$build/ngx_http_kafka_producer_module.so" ] \
    || die "$build/ngx_http_kafka_producer_module.so is missing: run make"

mkdir -p "$prefix/logs" "$prefix/tmp" "$prefix/modules"

# one run per RUN_DIR: a second one would take the first one's files
if [ -f "$prefix/run.pid" ]; then
    other=$(cat "$prefix/run.pid")
    if [ -n "$other" ] && [ "$other" != $$ ] && kill -0 "$other" 2>/dev/null
    then
        die "another run (pid $other) uses $prefix: stop it (Ctrl-C in" \
            "its terminal, or kill $other) or set RUN_DIR"
    fi
fi

# the URL clients use: the listen address, or this machine for "every
# address"
case $LISTEN in
    0.0.0.0|\*|127.0.0.1) host=localhost ;;
    \[::\]|::) host='[::1]' ;;
    *) host=$LISTEN ;;
esac
api=http://$host:$PORT

# the port first: nothing is started when it is taken.  Bound as nginx
# binds it (SO_REUSEADDR), so a port in TIME_WAIT is not reported taken.
bind_err=$(python3 - "$LISTEN" "$PORT" <<'EOF' 2>&1
import socket, sys
host, port = sys.argv[1].strip("[]"), int(sys.argv[2])
host = "" if host in ("*", "0.0.0.0") else host
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((host, port))
    s.listen(1)
except OSError as e:
    print(e.strerror or e)
    sys.exit(1)
EOF
) || die "cannot listen on $LISTEN:$PORT: $bind_err (is another" \
         "\`make run\` or \`make lab\` running? \`ss -ltnp 'sport = :$PORT'\`" \
         "shows who holds it); choose another port: make run PORT=8081"

nginx_pid=
mock_pid=
stopping=0
sock=$prefix/kafka-mock.sock

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local i

    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill -TERM "$nginx_pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$nginx_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$nginx_pid" 2>/dev/null || true
    fi
    if [ -n "$mock_pid" ]; then
        kill -TERM "$mock_pid" 2>/dev/null || true
        wait "$mock_pid" 2>/dev/null || true
    fi
    rm -f "$prefix/run.env" "$prefix/run.pid" "$sock" "$prefix/readback.json"
    return 0
}
trap cleanup EXIT
trap 'stopping=1; exit 0' INT TERM

# the settings first: nothing is started when one is wrong
KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092} \
    "$top/tools/render-run-conf.sh" "$prefix/nginx.conf" || exit 1

echo $$ > "$prefix/run.pid"
cp "$build/ngx_http_kafka_producer_module.so" "$prefix/modules/"

# the dashboard's page; no read-back of an earlier run
rm -rf "$prefix/html/dashboard" "$prefix/readback.json"
mkdir -p "$prefix/html"
cp -r "$top/html/dashboard" "$prefix/html/"

# the FIFO of earlier versions: a writer would block on it forever
rm -f "$prefix/kafka-mock.ctl"

brokers=$KAFKA_BOOTSTRAP_SERVERS
if [ -z "$brokers" ]; then
    [ -x "$build/kafka-mock" ] || die "$build/kafka-mock is missing: run make"
    "$build/kafka-mock" -b "$mock_brokers" -t "$KAFKA_TOPIC:3" -q -s "$sock" \
        < /dev/null > "$prefix/kafka-mock.out" 2> "$prefix/kafka-mock.err" &
    mock_pid=$!

    for ((i = 0; i < 50; i++)); do
        brokers=$(sed -n 's/^bootstrap.servers=//p' "$prefix/kafka-mock.out")
        [ -n "$brokers" ] && break
        kill -0 "$mock_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$brokers" ] \
        || die "kafka-mock did not start: $(cat "$prefix/kafka-mock.err")"
    export KAFKA_BOOTSTRAP_SERVERS=$brokers
else
    sock=
fi
readback=${READBACK_BROKERS:-$brokers}

"$top/tools/render-run-conf.sh" "$prefix/nginx.conf" || exit 1

"$nginx" -t -q -p "$prefix" -c "$prefix/nginx.conf" \
    || die "nginx -t refused $prefix/nginx.conf (above)"

"$nginx" -p "$prefix" -c "$prefix/nginx.conf" -g "daemon off;" &
nginx_pid=$!

# up when /health answers; down when nginx exits (e.g. the port was taken
# meanwhile)
up=0
for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$nginx_pid" 2>/dev/null; then
        rc=0
        wait "$nginx_pid" || rc=$?
        nginx_pid=
        die "nginx exited at start (status $rc), see its error above;" \
            "nothing listens on $LISTEN:$PORT"
    fi
    if curl -s -o /dev/null --max-time 1 "$api/health"; then
        up=1
        break
    fi
    sleep 0.1
done
[ "$up" -eq 1 ] || die "nginx does not answer $api/health after 10 s"

cat > "$prefix/run.env" <<EOF
API_URL=$api
KAFKA_BROKERS=$brokers
READBACK_BROKERS=$readback
KAFKA_MOCK_SOCKET=$sock
KAFKA_TOPIC=$KAFKA_TOPIC
TOXIPROXY_URL=${TOXIPROXY_URL:-}
RUN_DIR=$prefix
EOF

settings=$(sed -n -E \
    -e 's/^[[:space:]]*(kafka_producer_[a-z_]+_timeout|kafka_producer_retry_backoff|kafka_producer_retries|kafka_producer_linger)[[:space:]]+([^;]*);.*/\1 \2/p' \
    -e 's/^[[:space:]]*kafka_producer_option[[:space:]]+(socket\.timeout\.ms)[[:space:]]+([^;]*);.*/\1 \2/p' \
    "$prefix/nginx.conf" | sed 's/kafka_producer_//' | paste -sd, | sed 's/,/, /g')
topic=$KAFKA_TOPIC

if [ -n "$mock_pid" ]; then
    kafka="kafka-mock, $mock_brokers brokers $brokers, topic $topic (3 partitions)"
    faults="tools/fault rtt all 5000 | down all | up all | reset   (tools/fault -h)"
elif [ -n "${TOXIPROXY_URL:-}" ]; then
    kafka="$brokers (read back from $readback), topic $topic"
    faults="Toxiproxy $TOXIPROXY_URL: scripts/lab-faults.sh -a $api -t $TOXIPROXY_URL"
else
    kafka="$brokers, topic $topic"
    faults="none from here (no mock, no Toxiproxy)"
fi

cat <<EOF

run: ready. nginx (pid $nginx_pid) on $api, Kafka: $kafka
run: $settings
  send      curl -X POST "$api/api/v1/send?mode=idempotent&eventId=TEST-1"
  async     curl -X POST "$api/api/v1/send?mode=plain&eventId=EVT-3&sendMode=async"
  status    curl "$api/api/v1/status?requestId=<requestId of the 202>"
  health    curl $api/health      producers: curl $api/health/detail
  read back tools/readback -b $readback -t $topic -e TEST-1
  load      tools/load -a $api -n 100
  dashboard $api/dashboard/   (records per eventId: tools/readback -f 2 -p DUP-)
  faults    $faults
EOF
if [ "$LISTEN" = 0.0.0.0 ] || [ "$LISTEN" = '*' ]; then
    echo "  also    http://\$(hostname -I | awk '{print \$1}'):$PORT (the lab's NODE_IP)"
fi
echo "  the lab step by step: docs/WORKSHOP.md; Ctrl-C stops"
echo

rc=0
wait "$nginx_pid" || rc=$?
nginx_pid=
[ "$stopping" -eq 1 ] && exit 0
die "nginx exited (status $rc)"
