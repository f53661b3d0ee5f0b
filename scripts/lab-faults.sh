#!/usr/bin/env bash
# The lab's fault scenarios against a running API (`make lab`, `make run`,
# the compose lab, or Kubernetes NodePorts), printing what happened: HTTP
# status, time, answer, the async status, and how many copies of each
# event ended up in Kafka.
#
# Scenarios (baseline latency timeout broker-loss by default, in this
# order; late-ack only when named):
#   baseline     sync plain, sync idempotent, async idempotent + status
#                (needs no fault channel)
#   latency      toxic latency_5s (5000 ms +- 500 ms downstream): sync plain
#                and sync idempotent sends (curl --max-time 15); each is
#                written once: librdkafka waits for the late answer
#   timeout      toxic timeout_2s (connection stalls, closed after 2 s):
#                sync idempotent (--max-time 10) and an async send whose
#                status is followed after the toxic is removed
#   broker-loss  proxy kafka-proxy disabled for 5 s: an async and a sync (--max-time 20)
#                send meanwhile, then the proxy is enabled again and the
#                async status is followed
#   late-ack     the duplicate lesson: an answer delayed 3 s, past the
#                producer's socket timeout (start the API with
#                KAFKA_SOCKET_TIMEOUT_MS=1000), and gone before the retry:
#                plain is written twice, idempotent once on Apache Kafka
#                (`make lab`); on the mock of `make run` both twice (it
#                de-duplicates only transactional producers)
#
# Faults go through Toxiproxy (-f toxiproxy, the lab's way) or, on
# `make run`, to its mock cluster (-f mock, tools/fault: latency = rtt all
# 5000, timeout = rtt all 60000, broker loss = down all, late-ack =
# broker-error 1 Produce NO_ERROR 3000 on broker 1, made leader of the
# partition 0 that the late-ack sends name).  Faults are removed on exit,
# whatever happens.

set -euo pipefail

# shellcheck source=SCRIPTDIR/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

usage() {
    cat <<EOF
usage: $(basename "$0") [-h] [-a API_URL] [-t TOXIPROXY_URL] [-f CHANNEL]
                     [-b BROKERS] [-c COUNTER] [SCENARIO...]

Runs the lab's fault scenarios and prints what happened.

  -a URL   the API (default \$API_URL or http://localhost:8080)
  -t URL   Toxiproxy's API (default \$TOXIPROXY_URL or http://localhost:8474)
  -f HOW   where faults go: toxiproxy (default; \`make lab\`, compose,
           Kubernetes) or mock (\`make run\`'s kafka-mock, tools/fault)
  -b HOSTS brokers to read back from with kcat (default \$KAFKA_BROKERS,
           else the running \`make run\`'s or \`make lab\`'s, else
           localhost:9094, the compose lab's EXTERNAL listener)
  -c HOW   how to read the topic back to count the records of each event:
           kcat     kcat -b BROKERS
           compose  docker compose exec kafka kafka-console-consumer.sh
           kubectl  kubectl -n $LAB_NAMESPACE exec deploy/$LAB_KAFKA_DEPLOYMENT ...
           none     do not count
           (default: kcat if installed, else compose)
  SCENARIO baseline latency timeout broker-loss late-ack (default: the
           first four)

make run:  $(basename "$0") -f mock                (faults on the mock)
make lab:  $(basename "$0")                        (Toxiproxy on :8474)
duplicates: KAFKA_SOCKET_TIMEOUT_MS=1000 make lab, then
           $(basename "$0") baseline late-ack

Kubernetes: $(basename "$0") -a http://NODE_IP:$LAB_API_NODEPORT \\
              -t http://NODE_IP:$LAB_TOXIPROXY_NODEPORT -c kubectl
EOF
}

API_URL=${API_URL:-http://localhost:8080}
TOXIPROXY_URL=${TOXIPROXY_URL:-http://localhost:8474}
KAFKA_BROKERS=${KAFKA_BROKERS:-}
counter=
channel=toxiproxy

while getopts a:t:f:b:c:h opt; do
    case $opt in
        a) API_URL=$OPTARG ;;
        t) TOXIPROXY_URL=$OPTARG ;;
        f) channel=$OPTARG ;;
        b) KAFKA_BROKERS=$OPTARG ;;
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
faulty=0
for s in "${scenarios[@]}"; do
    case $s in
        baseline) ;;
        latency|timeout|broker-loss|late-ack) faulty=1 ;;
        *) usage >&2; die "unknown scenario '$s'" ;;
    esac
done
case $channel in
    toxiproxy|mock) ;;
    *) usage >&2; die "unknown fault channel '$channel'" ;;
esac
if [ -z "$KAFKA_BROKERS" ]; then
    KAFKA_BROKERS=$(run_value READBACK_BROKERS)
fi
KAFKA_BROKERS=${KAFKA_BROKERS:-localhost:9094}

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


# send LABEL MODE SENDMODE MAX_TIME [QUERY]: one POST /api/v1/send,
# recorded; QUERY is added to the query string (e.g. "&partition=0")
send() {
    local label=$1 mode=$2 sendmode=$3 max=$4 query=${5:-} id

    id="LAB-$run-${label//[^A-Za-z0-9]/-}"
    http POST "$API_URL/api/v1/send?mode=$mode&eventId=$id&sendMode=$sendmode$query" \
         "$max"
    SENT_REQUEST=$(json_field requestId)
    printf '  %-34s %s %6ss  %s\n' "$label ($mode, $sendmode)" "$HTTP_CODE" \
           "$HTTP_TIME" "${HTTP_BODY:-(no answer within ${max}s)}"
    rows+=("$label|$mode $sendmode|$HTTP_CODE|${HTTP_TIME}s|$id")

}

# warm: one send of each mode to partitions 0, 1 and 2, not recorded: a
# fault is added to a running system, whose producers are connected to
# every broker already (a producer that connects under a 5 s latency pays
# it for each request of the handshake too, and times out)
warm() {
    local p mode

    for p in 0 1 2; do
        for mode in plain idempotent; do
            curl -s -o /dev/null --max-time 10 -X POST \
                "$API_URL/api/v1/send?mode=$mode&eventId=LAB-$run-warm-$mode-$p&partition=$p" \
                || true
        done
    done
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

# the fault channel: Toxiproxy's toxics, or the mock's commands
fault_on() {
    local what=$1

    if [ "$channel" = mock ]; then
        case $what in
            latency) mock_fault "rtt all 5000" ;;
            timeout) mock_fault "rtt all 60000" ;;
            loss) mock_fault "down all" ;;
            # partition 0 led by broker 1, whose next Produce is
            # appended at once and answered 3 s later
            late-ack) mock_fault "leader $LAB_TOPIC 0 1"
                      mock_fault "broker-error 1 Produce NO_ERROR 3000 1" ;;
        esac
        return
    fi
    case $what in
        latency) toxic_add latency_5s latency '{"latency":5000,"jitter":500}' ;;
        timeout) toxic_add timeout_2s timeout '{"timeout":2000}' ;;
        loss) proxy_enable false ;;
        late-ack) toxic_add late_ack latency '{"latency":3000}' ;;
    esac
}

fault_off() {
    local what=$1

    if [ "$channel" = mock ]; then
        case $what in
            latency) mock_fault "rtt all 0" ;;
            # the answers delayed 60 s would hold the connections up:
            # closed once (as Toxiproxy's timeout toxic closes them)
            timeout) mock_fault "rtt all 0"
                     mock_fault "down all"
                     mock_fault "up all" ;;
            loss) mock_fault "up all" ;;
            late-ack) ;;
        esac
        return
    fi
    case $what in
        latency) toxic_remove latency_5s ;;
        timeout) toxic_remove timeout_2s ;;
        loss) proxy_enable true ;;
        late-ack) toxic_remove late_ack ;;
    esac
}

mock_fault() {
    "$LAB_TOP/tools/fault" "$1" > /dev/null \
        || die "the mock refused or did not answer '$1' (tools/fault $1)"
}

fault_ready=0
cleanup() {
    if [ "$fault_ready" -eq 1 ]; then
        if [ "$channel" = mock ]; then
            "$LAB_TOP/tools/fault" reset > /dev/null 2>&1 || true
        else
            proxy_reset
        fi
    fi
}
trap cleanup EXIT

log "API $API_URL, faults: $channel$([ "$channel" = toxiproxy ] \
    && echo " $TOXIPROXY_URL"), run $run"

http GET "$API_URL/health" 5
[ "$HTTP_CODE" = 200 ] \
    || die "the API does not answer at $API_URL/health (HTTP $HTTP_CODE):" \
           "start \`make run\` or \`make lab\`, or give its URL with -a"

# the fault channel is checked only when a scenario needs it; baseline
# runs without; the faulty scenarios are skipped with a plain reason
missing=
if [ "$faulty" -eq 1 ]; then
    if [ "$channel" = mock ]; then
        if ! reason=$("$LAB_TOP/tools/fault" bootstraps 2>&1); then
            missing="$reason"
        fi
    elif ! toxi GET /version > /dev/null 2>&1; then
        missing="Toxiproxy not reachable at $TOXIPROXY_URL: start \`make lab\`"
        missing+=" (or give its URL with -t; on \`make run\` the same"
        missing+=" scenarios go to the mock: $(basename "$0") -f mock)"
    elif ! toxi GET "/proxies/$LAB_PROXY" > /dev/null 2>&1; then
        missing="Toxiproxy at $TOXIPROXY_URL has no proxy $LAB_PROXY"
        missing+=" (the lab's proxy in front of Kafka)"
    fi
    if [ -n "$missing" ]; then
        kept=()
        for s in "${scenarios[@]}"; do
            [ "$s" = baseline ] && kept+=("$s")
        done
        [ ${#kept[@]} -gt 0 ] || die "$missing"
        warn "$missing; only the baseline runs"
        scenarios=("${kept[@]}")
    else
        fault_ready=1
        cleanup
    fi
fi

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
        log "latency: 5 s on every answer (toxic latency_5s / rtt all 5000)"
        warm
        fault_on latency
        send latency-plain plain sync 15
        send latency-idempotent idempotent sync 15
        fault_off latency
        log "latency: removed"
        ;;

    timeout)
        log "timeout: no answer (toxic timeout_2s / rtt all 60000)"
        warm
        fault_on timeout
        send timeout-idempotent idempotent sync 10
        send timeout-async idempotent async 10
        request=$SENT_REQUEST
        fault_off timeout
        log "timeout: removed, following the async send"
        follow "$request" 60
        ;;

    broker-loss)
        log "broker-loss: every broker unreachable (proxy disabled / down all)"
        warm
        fault_on loss
        send loss-async idempotent async 10
        request=$SENT_REQUEST
        send loss-sync plain sync 20
        sleep 5
        fault_off loss
        log "broker-loss: brokers back, following the async send"
        follow "$request" 90
        ;;

    late-ack)
        # the answer comes 3 s late, the producer gives up after its
        # socket timeout (1 s) and resends once the fault is gone: the
        # broker has the first copy already
        for mode in plain idempotent; do
            warm
            if [ "$channel" = mock ]; then
                log "late-ack ($mode): broker 1 appends the next send at" \
                    "once and answers 3 s later"
            else
                log "late-ack ($mode): answers delayed 3 s, toxic removed" \
                    "after 2.5 s"
            fi
            fault_on late-ack
            # 2.5 s: librdkafka checks its request timeouts once a
            # second, so a 1 s socket timeout fires between 1 and 2 s;
            # removing the toxic sooner lets the first answer through
            (sleep 2.5; fault_off late-ack) &
            send "late-ack-$mode" "$mode" sync 30 "&partition=0"
            wait
        done
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
after the delivery timeout plus 2 s: start the API with a short
KAFKA_DELIVERY_TIMEOUT_MS, e.g. 5000, to see a 503/504 instead);
503/504 = Kafka unreachable or delivery not confirmed (a 504 may still
have been written: "not confirmed" is not "not written").

Duplicates: under the 5 s latency both modes are written once, because
librdkafka waits for the late answer (socket.timeout.ms, 60 s by
default). A duplicate needs an answer later than the producer's socket
timeout, and a retry that succeeds: the late-ack scenario, with the API
started with KAFKA_SOCKET_TIMEOUT_MS=1000. Then plain is written twice
(the broker had appended the first copy) and, on Apache Kafka (make lab),
idempotent once: the broker recognises the producer id and sequence of
the resent batch and answers with the first copy's offset. The mock of
make run de-duplicates only transactional producers: there, idempotent
is written twice as well (docs/WORKSHOP.md, README Limits).
EOF

if [ -n "$missing" ]; then
    die "$missing: the fault scenarios did not run"
fi
