#!/usr/bin/env bash
# Step 3: applies k8s/ (kubectl apply -k) in namespace kafka, waits for
# Kafka, creates the topic bhf-transactions (3 partitions) if it does not
# exist, then waits for Toxiproxy and the API.  Safe to run again: apply
# and --if-not-exists are idempotent.

set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

usage() {
    cat <<EOF
usage: $(basename "$0") [-h] [-r] [-w SECONDS]

Deploys k8s/ into namespace $LAB_NAMESPACE and waits for it.

  -r          restart the API pods afterwards (a new image was imported
              under the same tag)
  -w SECONDS  how long to wait for each rollout (default 300)
EOF
}

restart=0
wait_s=300

while getopts rw:h opt; do
    case $opt in
        r) restart=1 ;;
        w) wait_s=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

log "kubectl apply -k $LAB_TOP/k8s"
kube apply -k "$LAB_TOP/k8s"

log "waiting for Kafka ($LAB_KAFKA_DEPLOYMENT)"
kube -n "$LAB_NAMESPACE" rollout status "deploy/$LAB_KAFKA_DEPLOYMENT" \
    --timeout="${wait_s}s"

log "creating topic $LAB_TOPIC (3 partitions) if missing"
for ((i = 1; ; i++)); do
    if kube -n "$LAB_NAMESPACE" exec "deploy/$LAB_KAFKA_DEPLOYMENT" -- \
        /opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092 \
        --create --if-not-exists --topic "$LAB_TOPIC" --partitions 3 \
        --replication-factor 1
    then
        break
    fi
    [ "$i" -lt 12 ] || die "could not create topic $LAB_TOPIC"
    sleep 5
done

for deploy in "$LAB_TOXIPROXY_DEPLOYMENT" "$LAB_API_DEPLOYMENT"; do
    log "waiting for $deploy"
    kube -n "$LAB_NAMESPACE" rollout status "deploy/$deploy" \
        --timeout="${wait_s}s"
done

if [ "$restart" -eq 1 ]; then
    log "restarting $LAB_API_DEPLOYMENT (new image)"
    kube -n "$LAB_NAMESPACE" rollout restart "deploy/$LAB_API_DEPLOYMENT"
    kube -n "$LAB_NAMESPACE" rollout status "deploy/$LAB_API_DEPLOYMENT" \
        --timeout="${wait_s}s"
fi

kube -n "$LAB_NAMESPACE" get pods,svc -o wide
