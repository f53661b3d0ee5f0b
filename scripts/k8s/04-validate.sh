#!/usr/bin/env bash
# Step 4: checks the deployment: every Deployment available, the Services
# and their NodePorts as in the lab, /health through NodePort 31081,
# Toxiproxy's API through 31474 with the proxy kafka-proxy enabled, the
# topic bhf-transactions.  Read-only; exits 1 when a check fails.

set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

usage() {
    cat <<EOF
usage: $(basename "$0") [-h] [-a API_URL] [-t TOXIPROXY_URL]

Validates the lab in namespace $LAB_NAMESPACE.  NODE_IP (default: the
first address of \`hostname -I\`) is where the NodePorts are reached.

  -a URL   the API (default http://NODE_IP:$LAB_API_NODEPORT)
  -t URL   Toxiproxy's API (default http://NODE_IP:$LAB_TOXIPROXY_NODEPORT)
EOF
}

api=
toxiproxy=

while getopts a:t:h opt; do
    case $opt in
        a) api=${OPTARG%/} ;;
        t) toxiproxy=${OPTARG%/} ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

need curl

passed=0
failed=0

check() {
    local what=$1

    shift
    if "$@" > /dev/null 2>&1; then
        printf '  %sok%s    %s\n' "$c_ok" "$c_off" "$what"
        passed=$((passed + 1))
    else
        printf '  %sFAIL%s  %s\n' "$c_err" "$c_off" "$what"
        failed=$((failed + 1))
    fi
}

nodeport_is() {
    local svc=$1 port=$2 want=$3 got

    got=$(kube -n "$LAB_NAMESPACE" get svc "$svc" \
          -o jsonpath="{.spec.ports[?(@.port==$port)].nodePort}")
    [ "$got" = "$want" ]
}

ready_replicas_are() {
    local got

    got=$(kube -n "$LAB_NAMESPACE" get deploy "$1" \
          -o jsonpath='{.status.readyReplicas}')
    [ "$got" = "$2" ]
}

health_ok() {
    http GET "$api/health" 5
    [ "$HTTP_CODE" = 200 ]
}

proxy_enabled() {
    toxi GET "/proxies/$LAB_PROXY" | grep -q '"enabled":true'
}

topic_exists() {
    kube -n "$LAB_NAMESPACE" exec "deploy/$LAB_KAFKA_DEPLOYMENT" -- \
        /opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092 \
        --describe --topic "$LAB_TOPIC" | grep -q 'PartitionCount: *3'
}

ip=
if [ -z "$api" ] || [ -z "$toxiproxy" ]; then
    ip=$(node_ip)
    [ -n "$ip" ] || die "no node address: set NODE_IP, or give -a and -t"
fi
api=${api:-http://$ip:$LAB_API_NODEPORT}
TOXIPROXY_URL=${toxiproxy:-http://$ip:$LAB_TOXIPROXY_NODEPORT}

log "namespace $LAB_NAMESPACE, API $api, Toxiproxy $TOXIPROXY_URL"

for deploy in "$LAB_KAFKA_DEPLOYMENT" "$LAB_TOXIPROXY_DEPLOYMENT" \
              "$LAB_API_DEPLOYMENT"
do
    check "deployment $deploy available" \
        kube -n "$LAB_NAMESPACE" wait --for=condition=Available \
        "deploy/$deploy" --timeout=60s
done

check "2 API pods ready" ready_replicas_are "$LAB_API_DEPLOYMENT" 2
check "service $LAB_API_DEPLOYMENT on NodePort $LAB_API_NODEPORT" \
    nodeport_is "$LAB_API_DEPLOYMENT" 8080 "$LAB_API_NODEPORT"
check "service toxiproxy API on NodePort $LAB_TOXIPROXY_NODEPORT" \
    nodeport_is toxiproxy 8474 "$LAB_TOXIPROXY_NODEPORT"
check "service toxiproxy kafka-proxy on NodePort $LAB_KAFKA_PROXY_NODEPORT" \
    nodeport_is toxiproxy 29093 "$LAB_KAFKA_PROXY_NODEPORT"
check "GET $api/health is 200" health_ok
check "GET $TOXIPROXY_URL/version" toxi GET /version
check "Toxiproxy proxy $LAB_PROXY exists and is enabled" proxy_enabled
check "topic $LAB_TOPIC exists with 3 partitions" topic_exists

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
