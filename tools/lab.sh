#!/usr/bin/env bash
# `make lab`: the whole lab on this machine, no Docker.
#
#   Apache Kafka 3.9 (tools/kafka/kafka.sh: one KRaft node, topic
#     bhf-transactions with 3 partitions, INTERNAL listener 127.0.0.1:9094,
#     EXTERNAL 127.0.0.1:29092 advertised as 127.0.0.1:29093)
#   Toxiproxy (tools/toxiproxy.sh: API 127.0.0.1:8474, proxy kafka-proxy
#     127.0.0.1:29093 -> 127.0.0.1:29092)
#   nginx with the module on 127.0.0.1:8080 (tools/run.sh, conf/nginx.conf),
#     bootstrapping through kafka-proxy: every Kafka connection of the API
#     goes through Toxiproxy, as in the compose and Kubernetes labs
#
# The lab's curl commands, requests.http and scripts/lab-faults.sh work as
# they are (kcat -b localhost:9094 reads the topic on the INTERNAL
# listener, not through the proxy).  Ctrl-C stops everything.
# KAFKA_VERSION=4.x.y runs the lab on Kafka 4 (a smoke target).

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

export KAFKA_DIR=${KAFKA_DIR:-$top/build/lab/kafka}
export TOXIPROXY_DIR=${TOXIPROXY_DIR:-$top/build/lab/toxiproxy}
# as the compose lab: a topic a request names is created
export KAFKA_AUTO_CREATE=${KAFKA_AUTO_CREATE:-true}

stopping=0
cleanup() {
    [ "$stopping" = 1 ] && return 0
    stopping=1
    echo
    echo "lab: stopping"
    "$top/tools/toxiproxy.sh" stop || true
    "$top/tools/kafka/kafka.sh" stop || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for port in 8080 8474 9093 9094 29092 29093; do
    if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
        echo "lab: 127.0.0.1:$port is in use (another lab, make run?): stop it first" >&2
        exit 1
    fi
done

"$top/tools/toxiproxy.sh" start
"$top/tools/kafka/kafka.sh" start

cat <<EOF
lab: Kafka INTERNAL 127.0.0.1:9094 (kcat -b localhost:9094 -C -t bhf-transactions -e)
lab: Toxiproxy API http://127.0.0.1:8474, proxy kafka-proxy 127.0.0.1:29093
lab: faults: scripts/lab-faults.sh, or requests.http, or e.g.
lab:   curl -X POST http://localhost:8474/proxies/kafka-proxy/toxics \\
lab:     -d '{"name":"latency_5s","type":"latency","stream":"downstream","attributes":{"latency":5000,"jitter":500}}'
EOF

# nginx bootstraps through the proxy; the banner's read-back uses the
# INTERNAL listener and its fault line names Toxiproxy
KAFKA_BROKERS=127.0.0.1:29093 READBACK_BROKERS=127.0.0.1:9094 \
    TOXIPROXY_URL=http://127.0.0.1:8474 "$top/tools/run.sh"
