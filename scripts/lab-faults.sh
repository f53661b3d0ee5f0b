#!/usr/bin/env bash
# The lab's Toxiproxy fault scenarios against a running lab (the compose
# lab by default, or Kubernetes NodePorts), printing what happened: HTTP
# status, time, answer, the async status, and how many copies of each
# event ended up in Kafka.
#
# Scenarios (all by default, in this order):
#   baseline     sync plain, sync idempotent, async idempotent + status
#   latency      toxic latency_5s (5000 ms +- 500 ms downstream): sync plain
#                and sync idempotent sends (curl --max-time 15)
#   timeout      toxic timeout_2s (connection stalls, closed after 2 s):
#                sync idempotent (--max-time 10) and an async send whose
#                status is followed after the toxic is removed
#   broker-loss  proxy kafka-proxy disabled for 15 s: an async and a sync
#                send meanwhile, then the proxy is enabled again and the
#                async status is followed
# Toxics are removed and the proxy enabled again on exit, whatever happens.

set -euo pipefail

# shellcheck source=SCRIPTDIR/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

usage() {
    cat <<EOF
usage: $(basename "$0") [-h] [-a API_URL] [-t TOXIPROXY_URL] [-c COUNTER]
                     [SCENARIO...]

Runs the lab's Toxiproxy scenarios and prints what happened.

  -a URL   the API (default \$API_URL or http://localhost:8080)
  -t URL   Toxiproxy's API (default \$TOXIPROXY_URL or http://localhost:8474)
  -c HOW   how to read the topic back to count the records of each event:
           kcat     kcat -b \$KAFKA_BROKERS (default localhost:9094, the
                    compose lab's EXTERNAL listener)
           compose  docker compose exec kafka kafka-console-consumer.sh
           kubectl  kubectl -n $LAB_NAMESPACE exec deploy/$LAB_KAFKA_DEPLOYMENT ...
           none     do not count
           (default: kcat if installed, else compose)
  SCENARIO baseline latency timeout broker-loss (default: all four)

Kubernetes: $(basename "$0") -a http://NODE_IP:$LAB_API_NODEPORT \\
              -t http://NODE_IP:$LAB_TOXIPROXY_NODEPORT -c kubectl
EOF
}

API_URL=${API_URL:-http://localhost:8080}
TOXIPROXY_URL=${TOXIPROXY_URL:-http://localhost:8474}
KAFKA_BROKERS=${KAFKA_BROKERS:-localhost:9094}
counter=

while getopts a:t:c:h opt; do
    case $opt in
        a) API_URL=$OPTARG ;;
        t) TOXIPROXY_URL=$OPTARG ;;
        c) counter=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
    scenarios=(baseline latency timeout broker-loss)
fi
for s in "${scenarios[@]}"; do
    case $s in
        baseline|latency|timeout|broker-loss) ;;
        *) usage >&2; die "unknown scenario '$s'" ;;
    esac
done

if [ -z "$counter" ]; then
    if command -v kcat > /dev/null 2>&1; then
        counter=kcat
    else
        counter=compose
    fi
fi
case $counter in
    kcat|compose|kubectl|none) ;;
    *) usage >&2; die "unknown counter '$counter'" ;;
esac

need curl

run=$(date +%H%M%S)
rows=()


# send LABEL MODE SENDMODE MAX_TIME: one POST /api/v1/send, recorded
send() {
    local label=$1 mode=$2 sendmode=$3 max=$4 id

    id="LAB-$run-${label//[^A-Za-z0-9]/-}"
    http POST "$API_URL/api/v1/send?mode=$mode&eventId=$id&sendMode=$sendmode" \
         "$max"
    SENT_REQUEST=$(json_field requestId)
    printf '  %-34s %s %6ss  %s\n' "$label ($mode, $sendmode)" "$HTTP_CODE" \
           "$HTTP_TIME" "${HTTP_BODY:-(no answer within ${max}s)}"
    rows+=("$label|$mode $sendmode|$HTTP_CODE|${HTTP_TIME}s|$id")

}

# follow REQUEST_ID MAX_SECONDS: polls the async status until it is not
# PENDING; prints and returns the last state
follow() {
    local request=$1 max=$2 state=PENDING i

    if [ -z "$request" ]; then
        echo "  (no requestId to follow)"
        return
    fi
    for ((i = 0; i < max; i++)); do
        http GET "$API_URL/api/v1/status?requestId=$request" 5
        state=$(json_field state)
        [ "$state" != PENDING ] && break
        sleep 1
    done
    printf '  status after %ss: %s %s\n' "$i" "$HTTP_CODE" "$HTTP_BODY"
    rows+=("  status|$request|$HTTP_CODE|${i}s|state ${state:-?}")
}

cleanup() {
    proxy_reset
}
trap cleanup EXIT

log "API $API_URL, Toxiproxy $TOXIPROXY_URL, run $run"

http GET "$API_URL/health" 5
[ "$HTTP_CODE" = 200 ] || die "GET $API_URL/health answered $HTTP_CODE: is the lab up?"
toxi GET "/proxies/$LAB_PROXY" > /dev/null \
    || die "Toxiproxy has no proxy $LAB_PROXY at $TOXIPROXY_URL"
proxy_reset

for scenario in "${scenarios[@]}"; do
    case $scenario in
    baseline)
        log "baseline: no fault"
        send baseline-plain plain sync 15
        send baseline-idempotent idempotent sync 15
        send baseline-async idempotent async 15
        follow "$SENT_REQUEST" 30
        ;;

    latency)
        log "latency: toxic latency_5s (5000 ms +- 500 ms, downstream)"
        toxic_add latency_5s latency '{"latency":5000,"jitter":500}'
        send latency-plain plain sync 15
        send latency-idempotent idempotent sync 15
        toxic_remove latency_5s
        log "latency: toxic removed"
        ;;

    timeout)
        log "timeout: toxic timeout_2s (no data, connection closed after 2 s)"
        toxic_add timeout_2s timeout '{"timeout":2000}'
        send timeout-idempotent idempotent sync 10
        send timeout-async idempotent async 10
        request=$SENT_REQUEST
        toxic_remove timeout_2s
        log "timeout: toxic removed, following the async send"
        follow "$request" 60
        ;;

    broker-loss)
        log "broker-loss: proxy $LAB_PROXY disabled (every broker unreachable)"
        proxy_enable false
        send loss-async idempotent async 10
        request=$SENT_REQUEST
        send loss-sync plain sync 10
        sleep 5
        proxy_enable true
        log "broker-loss: proxy enabled again, following the async send"
        follow "$request" 90
        ;;
    esac
done

# count_all: every record value of the topic, one a line
count_all() {
    case $counter in
    kcat)
        kcat -b "$KAFKA_BROKERS" -C -t "$LAB_TOPIC" -e -q -f '%s\n'
        ;;
    compose)
        (cd "$LAB_TOP" && docker compose exec -T kafka \
            /opt/kafka/bin/kafka-console-consumer.sh \
            --bootstrap-server localhost:9092 --topic "$LAB_TOPIC" \
            --from-beginning --timeout-ms 10000) 2>/dev/null
        ;;
    kubectl)
        kube -n "$LAB_NAMESPACE" exec "deploy/$LAB_KAFKA_DEPLOYMENT" -- \
            /opt/kafka/bin/kafka-console-consumer.sh \
            --bootstrap-server localhost:9092 --topic "$LAB_TOPIC" \
            --from-beginning --timeout-ms 10000 2>/dev/null
        ;;
    esac
}

records=
if [ "$counter" != none ]; then
    log "reading $LAB_TOPIC back ($counter) to count the records of each event"
    # late deliveries (retries after a toxic) land within a few seconds
    sleep 5
    records=$(count_all || true)
fi

echo
printf '%-22s %-17s %-4s %-8s %s\n' REQUEST MODE HTTP TIME "RESULT / RECORDS IN KAFKA"
for row in "${rows[@]}"; do
    IFS='|' read -r label what code time rest <<< "$row"
    if [[ $rest == LAB-* ]]; then
        if [ "$counter" = none ]; then
            rest="(not counted)"
        else
            n=$(printf '%s\n' "$records" | grep -c "\"eventId\":\"$rest\"" || true)
            case $n in
                0) rest="0 records (not written)" ;;
                1) rest="1 record" ;;
                *) rest="$n records (DUPLICATES)" ;;
            esac
        fi
    fi
    printf '%-22s %-17s %-4s %-8s %s\n' "$label" "$what" "$code" "$time" "$rest"
done

cat <<'EOF'

Reading it: 000 = no answer before curl's --max-time (the send is still
in flight: nginx answers when the delivery report comes, at the latest
after the delivery timeout); 503/504 = Kafka unreachable or delivery not
confirmed; a plain send under latency can be written twice (librdkafka
retried a request the broker had appended), an idempotent one is not.
EOF
