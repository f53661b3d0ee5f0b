#!/usr/bin/env bash
# `make test-kafka`: the suite against Apache Kafka (tools/kafka/kafka.sh)
# behind Toxiproxy (tools/toxiproxy.sh), both started here on loopback
# ports of their own (not the lab's: a running `make lab` is left alone),
# with fresh storage, and stopped on exit whatever happens.
#
#   nginx   -> 127.0.0.1:$TK_PROXY_PORT (19193, Toxiproxy's kafka-proxy)
#           -> Kafka EXTERNAL 127.0.0.1:$TK_EXTERNAL_PORT (19092), advertised
#              as the proxy
#   read-back (kcat) -> Kafka INTERNAL 127.0.0.1:$TK_INTERNAL_PORT (19094)
#   Toxiproxy API 127.0.0.1:$TK_TOXIPROXY_PORT (18474)
#
# The harness takes the cluster from the environment it exports
# (TEST_NGINX_KAFKA_BROKERS, TEST_NGINX_KAFKA_READ_BROKERS,
# TEST_NGINX_TOXIPROXY_URL, TEST_NGINX_KAFKA_CTL): every block that can run
# on Kafka does, blocks that need a mock-only fault are skipped with the
# reason printed, and t/060-kafka.t runs the tests only a real broker can
# answer.  Arguments are prove's (default: -r t/).

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

work=${TK_DIR:-$top/build/test-kafka}
internal_port=${TK_INTERNAL_PORT:-19094}
external_port=${TK_EXTERNAL_PORT:-19092}
controller_port=${TK_CONTROLLER_PORT:-19093}
proxy_port=${TK_PROXY_PORT:-19193}
toxiproxy_port=${TK_TOXIPROXY_PORT:-18474}

export KAFKA_DIR=$work/kafka
export KAFKA_INTERNAL_PORT=$internal_port
export KAFKA_EXTERNAL_PORT=$external_port
export KAFKA_CONTROLLER_PORT=$controller_port
export KAFKA_EXTERNAL_ADVERTISED=127.0.0.1:$proxy_port
# the lab topic, the suite's other topics (t/010, t/050, t/090: `topic NAME
# N` in a --- kafka_mock section is checked, not created, on a real cluster)
export KAFKA_TOPICS="bhf-transactions:3 other-topic:2 load-reload:3"
KAFKA_TOPICS="$KAFKA_TOPICS rest-part:3 rest-mixed:2 rest-many:2"
# as the lab: t/045 checks that only allowed topics get created
export KAFKA_AUTO_CREATE=true
export TOXIPROXY_DIR=$work/toxiproxy
export TOXIPROXY_PORT=$toxiproxy_port
export TOXIPROXY_KAFKA_LISTEN=127.0.0.1:$proxy_port
export TOXIPROXY_KAFKA_UPSTREAM=127.0.0.1:$external_port

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    tools/toxiproxy.sh stop > /dev/null || true
    tools/kafka/kafka.sh stop > /dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for port in "$internal_port" "$external_port" "$controller_port" \
            "$proxy_port" "$toxiproxy_port"; do
    if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
        echo "test-kafka: 127.0.0.1:$port is in use: another make test-kafka?" >&2
        exit 1
    fi
done

t0=$SECONDS
# fresh storage: the exactly-once checks count every record of a topic
rm -rf "$KAFKA_DIR"
tools/toxiproxy.sh start
tools/kafka/kafka.sh start
echo "test-kafka: Kafka and Toxiproxy ready in $((SECONDS - t0))s"

export TEST_NGINX_KAFKA_BROKERS=127.0.0.1:$proxy_port
export TEST_NGINX_KAFKA_READ_BROKERS=127.0.0.1:$internal_port
export TEST_NGINX_TOXIPROXY_URL=http://127.0.0.1:$toxiproxy_port
export TEST_NGINX_KAFKA_CTL=$top/tools/kafka/kafka.sh

if [ $# -eq 0 ]; then
    set -- -r t/
fi
rc=0
prove "$@" || rc=$?
echo "test-kafka: done in $((SECONDS - t0))s (Apache Kafka ${KAFKA_VERSION:-3.9.2})"
exit "$rc"
