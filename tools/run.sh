#!/usr/bin/env bash
# `make run`: a local Kafka-protocol cluster (tools/kafka-mock, topic
# bhf-transactions with 3 partitions) and nginx with conf/nginx.conf in the
# foreground on 127.0.0.1:8080.  KAFKA_BROKERS=host:port,... uses a real
# cluster instead of the mock.  Ctrl-C stops everything.
#
# While it runs, faults go to the mock through its FIFO, e.g.:
#   echo "rtt 1 5000" > build/run/kafka-mock.ctl
#   echo "down all"   > build/run/kafka-mock.ctl

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
prefix=$build/run
nginx=${NGINX:-/usr/sbin/nginx}

mkdir -p "$prefix/logs" "$prefix/tmp" "$prefix/modules"
cp "$build/ngx_http_kafka_producer_module.so" "$prefix/modules/"

mock_pid=""
cleanup() {
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid"
    return 0
}
trap cleanup EXIT

brokers=${KAFKA_BROKERS:-}

if [ -z "$brokers" ]; then
    ctl=$prefix/kafka-mock.ctl
    "$build/kafka-mock" -b 3 -t bhf-transactions:3 -q -f "$ctl" \
        < /dev/null > "$prefix/kafka-mock.out" &
    mock_pid=$!

    for _ in $(seq 50); do
        brokers=$(sed -n 's/^bootstrap.servers=//p' "$prefix/kafka-mock.out")
        [ -n "$brokers" ] && break
        sleep 0.1
    done

    if [ -z "$brokers" ]; then
        echo "run: kafka-mock did not start" >&2
        exit 1
    fi

    echo "run: kafka-mock brokers $brokers (faults: echo CMD > $ctl)"
fi

sed -e "s|kafka_producer_brokers .*;|kafka_producer_brokers  $brokers;|" \
    "$top/conf/nginx.conf" > "$prefix/nginx.conf"

"$nginx" -t -q -p "$prefix" -c "$prefix/nginx.conf"

echo "run: nginx on http://127.0.0.1:8080, Ctrl-C stops"
echo "run: curl -X POST \"http://localhost:8080/api/v1/send?mode=idempotent&eventId=TEST-1\""

"$nginx" -p "$prefix" -c "$prefix/nginx.conf" -g "daemon off;" || true
