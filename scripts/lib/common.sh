# shellcheck shell=bash disable=SC2034
# Shared helpers of scripts/k8s/*.sh and scripts/lab-faults.sh: logging,
# HTTP calls with timing, Toxiproxy's API, reading the topic back.
# Sourced, never run.

# the repository's top directory
LAB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# names shared by the manifests (k8s/) and the scripts
LAB_NAMESPACE=${LAB_NAMESPACE:-kafka}
LAB_IMAGE=${LAB_IMAGE:-m02-nginx-api:latest}
LAB_API_DEPLOYMENT=m02-nginx-api
LAB_KAFKA_DEPLOYMENT=bhf-kafka
LAB_TOXIPROXY_DEPLOYMENT=toxiproxy
LAB_TOPIC=${LAB_TOPIC:-bhf-transactions}
LAB_PROXY=kafka-proxy
LAB_API_NODEPORT=31081
LAB_TOXIPROXY_NODEPORT=31474
LAB_KAFKA_PROXY_NODEPORT=32093

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    c_ok=$'\e[32m' c_err=$'\e[31m' c_dim=$'\e[2m' c_off=$'\e[0m'
else
    c_ok='' c_err='' c_dim='' c_off=''
fi

log() {
    printf '%s==>%s %s\n' "$c_dim" "$c_off" "$*"
}

warn() {
    printf '%swarning:%s %s\n' "$c_err" "$c_off" "$*" >&2
}

die() {
    printf '%serror:%s %s\n' "$c_err" "$c_off" "$*" >&2
    exit 1
}

need() {
    local cmd

    for cmd in "$@"; do
        command -v "$cmd" > /dev/null 2>&1 \
            || die "'$cmd' is needed and was not found in PATH"
    done
}

# the node address the NodePorts are reached on: $NODE_IP, else the
# first address of this host, as in the lab
node_ip() {
    if [ -n "${NODE_IP:-}" ]; then
        echo "$NODE_IP"
        return
    fi
    hostname -I 2>/dev/null | awk '{ print $1 }'
}

# kubectl, or k3s's when only k3s is installed
kube() {
    if command -v kubectl > /dev/null 2>&1; then
        kubectl "$@"
    elif command -v k3s > /dev/null 2>&1; then
        k3s kubectl "$@"
    else
        die "neither kubectl nor k3s found"
    fi
}

# a docker-like CLI: $CONTAINER_CLI, else docker, podman or nerdctl
container_cli() {
    local cli

    for cli in ${CONTAINER_CLI:-docker podman nerdctl}; do
        if command -v "$cli" > /dev/null 2>&1; then
            echo "$cli"
            return
        fi
    done
    die "no container CLI found (docker, podman or nerdctl; or set CONTAINER_CLI)"
}

# http METHOD URL [MAX_TIME]: sets HTTP_CODE, HTTP_TIME (seconds) and
# HTTP_BODY; HTTP_CODE is 000 when curl got no answer (timeout, refused)
http() {
    local method=$1 url=$2 max=${3:-15} out

    out=$(curl -sS -X "$method" --max-time "$max" \
               -w '\n%{http_code} %{time_total}' "$url" 2>/dev/null) || true
    if [ -z "$out" ]; then
        out=$'\n000 '"$max"
    fi
    HTTP_BODY=${out%$'\n'*}
    HTTP_CODE=${out##*$'\n'}
    HTTP_TIME=${HTTP_CODE#* }
    HTTP_CODE=${HTTP_CODE%% *}
}

# json_field NAME: the string or number field NAME of $HTTP_BODY
json_field() {
    printf '%s' "$HTTP_BODY" \
        | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" \
        | head -n 1
}

# run_value NAME: NAME's value in the run.env of a running `make run` or
# `make lab` (tools/run.sh writes it: API_URL, KAFKA_BROKERS,
# READBACK_BROKERS, KAFKA_MOCK_SOCKET, KAFKA_TOPIC, TOXIPROXY_URL); $RUN_ENV
# names another file.  Empty when none runs.
run_value() {
    local f

    for f in "${RUN_ENV:-}" "$LAB_TOP/build/run/run.env" \
             "$LAB_TOP/build/lab/run.env"; do
        if [ -n "$f" ] && [ -r "$f" ]; then
            sed -n "s/^$1=//p" "$f" | head -n 1
            return 0
        fi
    done
}

# Toxiproxy (TOXIPROXY_URL, e.g. http://NODE_IP:31474)

toxi() {
    local method=$1 path=$2 data=${3:-}

    if [ -n "$data" ]; then
        curl -sS -f -X "$method" --max-time 10 \
             -H 'Content-Type: application/json' -d "$data" \
             "$TOXIPROXY_URL$path"
    else
        curl -sS -f -X "$method" --max-time 10 "$TOXIPROXY_URL$path"
    fi
}

toxic_add() {
    local name=$1 type=$2 attributes=$3

    toxic_remove "$name"
    toxi POST "/proxies/$LAB_PROXY/toxics" \
        "{\"name\":\"$name\",\"type\":\"$type\",\"stream\":\"downstream\",\"toxicity\":1.0,\"attributes\":$attributes}" \
        > /dev/null
}

toxic_remove() {
    curl -sS -o /dev/null -X DELETE --max-time 10 \
         "$TOXIPROXY_URL/proxies/$LAB_PROXY/toxics/$1" || true
}

proxy_enable() {
    toxi POST "/proxies/$LAB_PROXY" "{\"enabled\":$1}" > /dev/null
}

# every toxic removed, the proxy enabled: the state the lab starts from
proxy_reset() {
    local name

    for name in latency_5s timeout_2s late_ack; do
        toxic_remove "$name"
    done
    proxy_enable true 2>/dev/null || true
}
