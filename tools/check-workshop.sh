#!/usr/bin/env bash
# check-workshop: what a workshop student relies on in `make run` and the
# tools around it (docs/WORKSHOP.md), checked end to end on loopback
# (called by tools/check-deploy.sh, step 10; runs alone too, after make):
#
#   1. tools/render-run-conf.sh: the lab's variables, PORT, LISTEN and
#      KAFKA_SOCKET_TIMEOUT_MS land in the rendered nginx.conf; bad values
#      are all named, exit 1, nothing written
#   2. make run (tools/run.sh) on a free port with KAFKA_LINGER_MS and
#      KAFKA_DELIVERY_TIMEOUT_MS: banner, run.env, /health, the linger in
#      /health/detail
#   3. a second run on the same port fails at once (exit 1, a clear line),
#      through `make run PORT=...` too
#   4. tools/fault: the mock's answer, exit 1 on a refusal; `down all`
#      gives a 503/504 within the 3 s delivery timeout (+5 s)
#   5. tools/readback: records, count per eventId, duplicates
#   6. tools/load: the summary (statuses, req/s, p50/p99, read back)
#   7. scripts/lab-faults.sh: baseline without Toxiproxy, the toxic
#      scenarios refused with "Toxiproxy not reachable at URL"; every
#      scenario against a stub of Toxiproxy's API (the requests it gets)
#   8. Ctrl-C (SIGINT): nginx and the mock stop, run.env and the socket
#      are removed; tools/fault then fails at once
#
# Nothing is left running; logs are kept in a temporary directory on
# failure.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-$top/build}
export BUILD=$build

if [ "${1:-}" = -h ]; then
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

tmp=$(mktemp -d /tmp/check-workshop.XXXXXX)
run_pid=
stub_pid=
checks=0
start_time=$SECONDS

ok() {
    checks=$((checks + 1))
    echo "  ok  $*"
}

fail() {
    echo "check-workshop: FAILED: $*" >&2
    exit 1
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local rc=$? i

    if [ -n "$stub_pid" ]; then
        kill "$stub_pid" 2>/dev/null || true
        wait "$stub_pid" 2>/dev/null || true
    fi
    if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
        kill -TERM "$run_pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$run_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$run_pid" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ]; then
        echo "check-workshop: logs kept in $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

free_port() {
    local port i

    for ((i = 0; i < 100; i++)); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<> "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    fail "no free port found"
}

for f in "$build/ngx_http_kafka_producer_module.so" "$build/kafka-mock"; do
    [ -e "$f" ] || fail "$f missing: run make first"
done
for cmd in kcat jq curl python3; do
    command -v "$cmd" > /dev/null 2>&1 || fail "$cmd not found"
done

# ---------------------------------------------------------------------------
echo "== check-workshop: 1. the rendered nginx.conf"

PORT=5000 LISTEN=0.0.0.0 KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092,127.0.0.1:9093 \
KAFKA_DELIVERY_TIMEOUT_MS=3000 KAFKA_REQUEST_TIMEOUT_MS=900 \
KAFKA_RETRY_BACKOFF_MS=250 KAFKA_RETRIES=2 KAFKA_LINGER_MS=5 \
KAFKA_SOCKET_TIMEOUT_MS=1000 NGINX_WORKER_PROCESSES=1 KAFKA_TOPIC=lab-topic \
    tools/render-run-conf.sh "$tmp/rendered.conf" \
    || fail "render-run-conf.sh refused good values"
for want in 'listen  0.0.0.0:5000;' \
            'kafka_producer_brokers  *127.0.0.1:9092,127.0.0.1:9093;' \
            'kafka_producer_delivery_timeout  *3000ms;' \
            'kafka_producer_request_timeout  *900ms;' \
            'kafka_producer_retry_backoff  *250ms;' \
            'kafka_producer_retries  *2;' \
            'kafka_producer_linger  *5ms idempotent=5ms;' \
            'kafka_producer_option  socket.timeout.ms  1000;' \
            'kafka_producer_topic  *lab-topic;' \
            'worker_processes  1;'
do
    grep -q -- "$want" "$tmp/rendered.conf" \
        || fail "rendered nginx.conf lacks '$want'"
done
ok "PORT, LISTEN, the lab's variables and KAFKA_SOCKET_TIMEOUT_MS rendered"

rc=0
PORT=70000 LISTEN='1 2' KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 \
KAFKA_DELIVERY_TIMEOUT_MS=soon KAFKA_SOCKET_TIMEOUT_MS=1 \
    tools/render-run-conf.sh "$tmp/bad.conf" 2> "$tmp/bad.log" || rc=$?
[ "$rc" -eq 1 ] || fail "render-run-conf.sh accepted bad values (exit $rc)"
[ ! -e "$tmp/bad.conf" ] || fail "render-run-conf.sh wrote a file for bad values"
for name in PORT LISTEN KAFKA_DELIVERY_TIMEOUT_MS KAFKA_SOCKET_TIMEOUT_MS; do
    grep -q "$name=" "$tmp/bad.log" || fail "no message names $name: $(cat "$tmp/bad.log")"
done
ok "4 bad values, each named, exit 1, nothing written"

# ---------------------------------------------------------------------------
echo "== check-workshop: 2. make run with the lab's variables"

port=$(free_port)
api=http://localhost:$port
rundir=$tmp/run
export RUN_ENV=$rundir/run.env
# a background job of a script starts with SIGINT ignored: restore it, so
# that SIGINT stands for Ctrl-C in step 8
PORT=$port RUN_DIR=$rundir KAFKA_DELIVERY_TIMEOUT_MS=3000 KAFKA_LINGER_MS=3 \
NGINX_WORKER_PROCESSES=1 python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' tools/run.sh > "$tmp/run.log" 2>&1 &
run_pid=$!
for ((i = 0; i < 100; i++)); do
    grep -q '^run: ready' "$tmp/run.log" && break
    kill -0 "$run_pid" 2>/dev/null || fail "make run exited: $(cat "$tmp/run.log")"
    sleep 0.1
done
grep -q '^run: ready' "$tmp/run.log" || fail "make run not ready in 10 s: $(cat "$tmp/run.log")"
for want in "on $api" 'delivery_timeout 3000ms' 'tools/readback -b 127.0.0.1:' \
            'tools/fault rtt all 5000' "curl -X POST \"$api/api/v1/send"
do
    grep -qF -- "$want" "$tmp/run.log" || fail "banner lacks '$want': $(cat "$tmp/run.log")"
done
ok "banner: $api, delivery timeout 3000ms, send/read-back/fault commands"
brokers=$(sed -n 's/^KAFKA_BROKERS=//p' "$RUN_ENV")
{ [ -n "$brokers" ] && grep -q "^API_URL=$api$" "$RUN_ENV"; } \
    || fail "run.env: $(cat "$RUN_ENV")"
[ "$(curl -s --max-time 5 "$api/health")" = OK ] || fail "$api/health"
detail=$(curl -s --max-time 5 "$api/health/detail")
[ "$(jq -r .producers.plain.lingerMs <<< "$detail")" = 3 ] \
    || fail "KAFKA_LINGER_MS=3 not in /health/detail: $detail"
ok "run.env, /health OK, /health/detail lingerMs 3 (KAFKA_LINGER_MS)"

# ---------------------------------------------------------------------------
echo "== check-workshop: 3. the port taken"

rc=0
t0=$SECONDS
PORT=$port RUN_DIR=$tmp/run2 tools/run.sh > "$tmp/run2.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a second run on port $port exited 0"
grep -q "^run: cannot listen on 127.0.0.1:$port: Address already in use" \
    "$tmp/run2.log" || fail "no clear line: $(cat "$tmp/run2.log")"
[ ! -e "$tmp/run2/kafka-mock.out" ] || fail "a mock was started for nothing"
((SECONDS - t0 < 5)) || fail "took $((SECONDS - t0)) s to fail"
ok "tools/run.sh on a taken port: exit $rc, '$(head -c 60 "$tmp/run2.log")...'"

rc=0
make -s run PORT="$port" RUN_DIR="$tmp/run3" > "$tmp/run3.log" 2>&1 || rc=$?
{ [ "$rc" -ne 0 ] && grep -q "cannot listen on 127.0.0.1:$port" "$tmp/run3.log"; } \
    || fail "make run PORT=$port: exit $rc: $(tail -n 3 "$tmp/run3.log")"
ok "make run PORT=$port on a taken port: exit $rc, the same line"

# ---------------------------------------------------------------------------
echo "== check-workshop: 4. tools/fault"

out=$(tools/fault rtt all 0) || fail "tools/fault rtt all 0: $out"
[ "$out" = ok ] || fail "tools/fault rtt all 0 printed '$out'"
rc=0
out=$(tools/fault rtt 7 10 2>&1) || rc=$?
{ [ "$rc" -eq 1 ] && [[ $out == 'error: bad broker "7"'* ]]; } \
    || fail "tools/fault rtt 7 10: exit $rc, '$out'"
ok "tools/fault: 'ok' (exit 0), '$out' (exit 1)"

tools/fault down all > /dev/null || fail "tools/fault down all"
t0=$(date +%s%N)
code=$(curl -s -o "$tmp/down.json" -w '%{http_code}' --max-time 10 -X POST \
       "$api/api/v1/send?mode=idempotent&eventId=CW-DOWN-$$") || true
took=$((($(date +%s%N) - t0) / 1000000))
[[ $code == 50[34] ]] \
    || fail "every broker down, KAFKA_DELIVERY_TIMEOUT_MS=3000: HTTP $code after ${took} ms"
tools/fault reset > /dev/null || fail "tools/fault reset"
ok "down all: HTTP $code after $took ms (< 10 s: the delivery timeout is honoured); reset"

# ---------------------------------------------------------------------------
echo "== check-workshop: 5. tools/readback"

id=CW-RB-$$-$RANDOM
for ((i = 0; i < 50; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
           "$api/api/v1/send?mode=plain&eventId=$id") || true
    [ "$code" = 200 ] && break
    sleep 0.2
done
[ "$code" = 200 ] || fail "send after reset: HTTP $code"
tools/readback -e "$id" > "$tmp/rb1.log" || fail "tools/readback: $(cat "$tmp/rb1.log")"
tail -n 1 "$tmp/rb1.log" | grep -qx '1 record(s), 1 eventId(s), no duplicates' \
    || fail "readback of one send: $(cat "$tmp/rb1.log")"
curl -s -o /dev/null --max-time 10 -X POST "$api/api/v1/send?mode=plain&eventId=$id"
tools/readback -b "$brokers" -e "$id" > "$tmp/rb2.log" || fail "tools/readback -b"
tail -n 1 "$tmp/rb2.log" | grep -qx "2 record(s), 1 eventId(s), duplicates: $id x2" \
    || fail "readback of a doubled eventId: $(cat "$tmp/rb2.log")"
[ "$(grep -c "^[0-9][0-9]* *[0-9][0-9]* *$id " "$tmp/rb2.log")" -eq 2 ] || fail "not 2 record lines: $(cat "$tmp/rb2.log")"
ok "tools/readback: '$(tail -n 1 "$tmp/rb2.log")'"

rc=0
tools/readback -b 127.0.0.1:1 -w 3 > "$tmp/rb3.log" 2>&1 || rc=$?
{ [ "$rc" -eq 1 ] && grep -q 'cannot read' "$tmp/rb3.log"; } \
    || fail "tools/readback without Kafka: exit $rc: $(cat "$tmp/rb3.log")"
ok "tools/readback without Kafka: exit 1, 'cannot read ...'"

# ---------------------------------------------------------------------------
echo "== check-workshop: 6. tools/load"

tools/load -n 20 > "$tmp/load.log" 2>&1 || fail "tools/load: $(cat "$tmp/load.log")"
grep -qx 'status: 200 x20' "$tmp/load.log" || fail "load statuses: $(cat "$tmp/load.log")"
grep -q 'requests/s; latency p50 [0-9]* ms, p99 [0-9]* ms' "$tmp/load.log" \
    || fail "load rate/latency: $(cat "$tmp/load.log")"
grep -q '^kafka: 20 record(s) read back for 20 accepted send(s): 0 missing, 0 duplicate(s)' \
    "$tmp/load.log" || fail "load read-back: $(cat "$tmp/load.log")"
ok "tools/load -n 20: $(sed -n 2p "$tmp/load.log")"

# ---------------------------------------------------------------------------
echo "== check-workshop: 7. scripts/lab-faults.sh without Toxiproxy"

noproxy=http://127.0.0.1:$(free_port)
rc=0
NO_COLOR=1 scripts/lab-faults.sh -a "$api" -t "$noproxy" baseline latency \
    > "$tmp/faults.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "lab-faults.sh without Toxiproxy: exit $rc"
grep -q "Toxiproxy not reachable at $noproxy: start \`make lab\`" "$tmp/faults.log" \
    || fail "no plain message: $(cat "$tmp/faults.log")"
[ "$(grep -c '^baseline-.* 1 record$' "$tmp/faults.log")" -eq 3 ] \
    || fail "baseline did not run: $(cat "$tmp/faults.log")"
grep -q '^latency-' "$tmp/faults.log" && fail "latency ran without Toxiproxy"
ok "lab-faults.sh: baseline 3 sends x 1 record, then 'Toxiproxy not reachable at $noproxy', exit 1"

# the Toxiproxy path, against a stub of its API that logs every request
# (no fault is applied: this checks the requests, not their effect)
stub_port=$(free_port)
cat > "$tmp/toxiproxy-stub.py" <<'EOF'
import http.server, sys

class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode()
        with open(sys.argv[2], "a") as log:
            log.write(f"{self.command} {self.path} {body}\n")
        out = b'{"name":"kafka-proxy","enabled":true,"toxics":[]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_DELETE = answer
    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
python3 "$tmp/toxiproxy-stub.py" "$stub_port" "$tmp/toxiproxy.log" \
    > /dev/null 2>&1 &
stub_pid=$!
for ((i = 0; i < 50; i++)); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$stub_port/version" && break
    sleep 0.1
done
rc=0
NO_COLOR=1 scripts/lab-faults.sh -a "$api" -t "http://127.0.0.1:$stub_port" \
    latency timeout broker-loss late-ack > "$tmp/faults-stub.log" 2>&1 || rc=$?
kill "$stub_pid" 2>/dev/null || true
wait "$stub_pid" 2>/dev/null || true
stub_pid=
[ "$rc" -eq 0 ] || fail "lab-faults.sh with a Toxiproxy stub: exit $rc: $(cat "$tmp/faults-stub.log")"
for want in 'POST /proxies/kafka-proxy/toxics .*"name":"latency_5s","type":"latency".*"latency":5000' \
            'DELETE /proxies/kafka-proxy/toxics/latency_5s' \
            'POST /proxies/kafka-proxy/toxics .*"name":"timeout_2s","type":"timeout"' \
            'POST /proxies/kafka-proxy {"enabled":false}' \
            'POST /proxies/kafka-proxy {"enabled":true}' \
            'POST /proxies/kafka-proxy/toxics .*"name":"late_ack".*"latency":3000' \
            'DELETE /proxies/kafka-proxy/toxics/late_ack'
do
    grep -q -- "$want" "$tmp/toxiproxy.log" \
        || fail "Toxiproxy stub never got '$want': $(cat "$tmp/toxiproxy.log")"
done
[ "$(grep -c '^late-ack-.* 200 ' "$tmp/faults-stub.log")" -eq 2 ] \
    || fail "late-ack sends: $(cat "$tmp/faults-stub.log")"
ok "lab-faults.sh latency timeout broker-loss late-ack against a Toxiproxy" \
   "stub: every toxic added and removed, the proxy disabled and enabled"

# ---------------------------------------------------------------------------
echo "== check-workshop: 8. Ctrl-C"

sock=$(sed -n 's/^KAFKA_MOCK_SOCKET=//p' "$RUN_ENV")
kill -INT "$run_pid"
for ((i = 0; i < 100; i++)); do
    kill -0 "$run_pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$run_pid" 2>/dev/null && fail "make run still running 10 s after SIGINT"
rc=0
wait "$run_pid" || rc=$?
run_pid=
[ "$rc" -eq 0 ] || fail "make run exited $rc after SIGINT"
{ [ ! -e "$RUN_ENV" ] && [ ! -e "$sock" ]; } || fail "run.env or the socket left behind"
if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "something still listens on $port"
fi
rc=0
t0=$SECONDS
tools/fault -s "$sock" up all > "$tmp/fault-after.log" 2>&1 || rc=$?
{ [ "$rc" -eq 1 ] && ((SECONDS - t0 < 5)) \
  && grep -qF "start \`make run\` first" "$tmp/fault-after.log"; } \
    || fail "tools/fault after the run: exit $rc: $(cat "$tmp/fault-after.log")"
ok "SIGINT: exit 0, port free, run.env and socket removed; tools/fault then: exit 1 at once"

echo "check-workshop: OK, $checks checks in $((SECONDS - start_time))s"
