#!/usr/bin/env bash
# Step 5: tests the API through NodePort 31081 as the lab does (health,
# sync plain and idempotent sends, async send and its status, the error
# answers), then runs the lab's Toxiproxy latency and timeout scenarios
# (scripts/lab-faults.sh) through NodePort 31474.  -a and -t point it
# elsewhere (`make run`: -a http://localhost:8080 -n; `make lab`: -a
# http://localhost:8080 -t http://localhost:8474 -c kcat).  Every send
# uses a new eventId, so the script can run any number of times.

set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

usage() {
    cat <<EOF
usage: $(basename "$0") [-h] [-n] [-a API_URL] [-t TOXIPROXY_URL] [-c COUNTER]

Tests the API of the lab, then the Toxiproxy scenarios.  NODE_IP
(default: the first address of \`hostname -I\`) is where the NodePorts
are reached.

  -a URL   the API (default http://NODE_IP:$LAB_API_NODEPORT)
  -t URL   Toxiproxy's API (default http://NODE_IP:$LAB_TOXIPROXY_NODEPORT)
  -c HOW   how lab-faults.sh counts the records (default kubectl; kcat
           for \`make lab\`, see lab-faults.sh -h)
  -n       no Toxiproxy scenarios (API tests only)

make run:  $(basename "$0") -a http://localhost:8080 -n
make lab:  $(basename "$0") -a http://localhost:8080 -t http://localhost:8474 -c kcat
EOF
}

faults=1
api=
toxiproxy=
counter=kubectl

while getopts nha:t:c: opt; do
    case $opt in
        n) faults=0 ;;
        a) api=${OPTARG%/} ;;
        t) toxiproxy=${OPTARG%/} ;;
        c) counter=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

need curl

if [ -z "$api" ] || { [ "$faults" -eq 1 ] && [ -z "$toxiproxy" ]; }; then
    ip=$(node_ip)
    [ -n "$ip" ] || die "no node address: set NODE_IP, or give -a and -t"
    api=${api:-http://$ip:$LAB_API_NODEPORT}
    toxiproxy=${toxiproxy:-http://$ip:$LAB_TOXIPROXY_NODEPORT}
fi
run=$(date +%H%M%S)

passed=0
failed=0

# expect WHAT CODE [REGEX]: the last answer has status CODE and a body
# that matches REGEX
expect() {
    local what=$1 code=$2 regex=${3:-}

    if [ "$HTTP_CODE" = "$code" ] \
        && { [ -z "$regex" ] || [[ $HTTP_BODY =~ $regex ]]; }
    then
        printf '  %sok%s    %-44s %s %ss\n' "$c_ok" "$c_off" "$what" \
               "$HTTP_CODE" "$HTTP_TIME"
        passed=$((passed + 1))
    else
        printf '  %sFAIL%s  %-44s %s %ss %s\n' "$c_err" "$c_off" "$what" \
               "$HTTP_CODE" "$HTTP_TIME" "$HTTP_BODY"
        failed=$((failed + 1))
    fi
}

log "API $api"

http GET "$api/health" 5
[ "$HTTP_CODE" != 000 ] \
    || die "the API does not answer at $api/health: is it deployed" \
           "(04-validate.sh)? For \`make run\`/\`make lab\` give -a URL"
expect "GET /health" 200 '^"?OK"?'

http POST "$api/api/v1/send?mode=idempotent&eventId=K8S-$run-1&sendMode=sync"
expect "POST send idempotent sync" 200 '"partition":[0-9]+,"offset":[0-9]+'

http POST "$api/api/v1/send?mode=plain&eventId=K8S-$run-2&sendMode=sync"
expect "POST send plain sync" 200 '"partition":[0-9]+,"offset":[0-9]+'

http POST "$api/api/v1/send?mode=idempotent&eventId=K8S-$run-3&sendMode=async"
expect "POST send idempotent async" 202 '"state":"PENDING"'
request=$(json_field requestId)

state=PENDING
for ((i = 0; i < 30; i++)); do
    http GET "$api/api/v1/status?requestId=$request" 5
    state=$(json_field state)
    [ "$state" = PENDING ] || break
    sleep 1
done
expect "GET status of the async send: OK" 200 '"state":"OK"'

http GET "$api/api/v1/status?requestId=00000000-0000-4000-8000-000000000000" 5
expect "GET status of an unknown requestId" 404

http POST "$api/api/v1/send?eventId=K8S-$run-4"
expect "POST send without mode" 400 'mode'

http GET "$api/api/v1/send?mode=plain&eventId=K8S-$run-5"
expect "GET send (method not allowed)" 405

echo "$passed passed, $failed failed"

if [ "$faults" -eq 1 ]; then
    log "Toxiproxy scenarios (latency, timeout)"
    "$LAB_TOP/scripts/lab-faults.sh" -a "$api" -t "$toxiproxy" \
        -c "$counter" latency timeout
fi

[ "$failed" -eq 0 ]
