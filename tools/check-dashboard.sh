#!/usr/bin/env bash
# `make check-dashboard`: the workshop's dashboard (html/dashboard/) in
# headless Chromium against a running nginx with the module.
#
#   1. tools/run.sh (the `make run` of the README: the mock cluster, one
#      worker so that every /health/detail call reaches the same one) on a
#      free port, RUN_DIR build/check-dashboard;
#   2. sends: plain and idempotent sync sends, an async one, and the
#      duplicate lesson on the mock (an answer 3 s late, a 1 s socket
#      timeout: the plain send is written twice and retried);
#   3. tools/readback -j writes the records per eventId the page shows;
#   4. chromium --headless --dump-dom after a few polls of the page; every
#      number of the page is compared with /health/detail, /metrics and the
#      read-back (python3, standard library only);
#   5. a screenshot in build/artifacts/dashboard.png (CI keeps it).
#
# Exit 0 when every number matches; otherwise the differences, exit 1.
# Needs chromium (Debian): `tools/install-deps.sh chromium` installs it.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
run_dir=$build/check-dashboard
artifacts=$build/artifacts
chromium=${CHROMIUM:-chromium}

say() {
    echo "check-dashboard: $*"
}

die() {
    echo "check-dashboard: FAIL: $*" >&2
    exit 1
}

command -v "$chromium" > /dev/null 2>&1 \
    || die "$chromium is missing: tools/install-deps.sh chromium"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
api=http://localhost:$port

mkdir -p "$run_dir" "$artifacts"

run_pid=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
        kill -TERM "$run_pid" 2>/dev/null || true
        wait "$run_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

say "starting tools/run.sh on $api (RUN_DIR $run_dir)"
RUN_DIR=$run_dir PORT=$port NGINX_WORKER_PROCESSES=1 \
    KAFKA_SOCKET_TIMEOUT_MS=1000 KAFKA_DELIVERY_TIMEOUT_MS=20000 \
    "$top/tools/run.sh" > "$run_dir/run.out" 2>&1 &
run_pid=$!

for ((i = 0; i < 100; i++)); do
    [ -f "$run_dir/run.env" ] && break
    kill -0 "$run_pid" 2>/dev/null || { cat "$run_dir/run.out" >&2; die "tools/run.sh stopped"; }
    sleep 0.1
done
[ -f "$run_dir/run.env" ] || die "tools/run.sh is not ready after 10 s"

export RUN_ENV=$run_dir/run.env
fault() {
    "$top/tools/fault" "$@" > /dev/null || die "tools/fault $*"
}
send() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 -X POST "$api/api/v1/send?$1")
    [ "$code" = "$2" ] || die "POST $1: $code, expected $2"
}

say "sending"
for i in 1 2 3; do
    send "mode=plain&eventId=CHK-PLAIN-$i" 200
done
send "mode=idempotent&eventId=CHK-IDEM-1" 200
send "mode=idempotent&eventId=CHK-IDEM-2" 200
send "mode=idempotent&eventId=CHK-ASYNC-1&sendMode=async" 202

# the duplicate lesson on the mock: broker 1 leads partition 0 and answers
# its next Produce 3 s late, after the 1 s socket timeout
fault leader bhf-transactions 0 1
fault broker-error 1 Produce NO_ERROR 3000 1
send "mode=plain&eventId=CHK-DUP-PLAIN&partition=0" 200

# the statistics (brokers, retries) are refreshed every second
sleep 2.5

"$top/tools/readback" -p CHK- -j "$run_dir/readback.json" \
    > "$run_dir/readback.out" || die "tools/readback: $(cat "$run_dir/readback.out")"

say "loading $api/dashboard/ in $chromium"
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars
       "--window-size=1280,760" --virtual-time-budget=3000)
timeout 60 "$chromium" "${flags[@]}" --dump-dom "$api/dashboard/" \
    > "$run_dir/dom.html" 2> "$run_dir/chromium.err" \
    || die "chromium --dump-dom failed: $(tail -n 3 "$run_dir/chromium.err")"
timeout 60 "$chromium" "${flags[@]}" \
    --screenshot="$artifacts/dashboard.png" "$api/dashboard/" \
    >> "$run_dir/chromium.err" 2>&1 \
    || die "chromium --screenshot failed: $(tail -n 3 "$run_dir/chromium.err")"

curl -s "$api/health/detail" > "$run_dir/detail.json"
curl -s "$api/metrics" > "$run_dir/metrics.txt"

python3 - "$run_dir" <<'EOF'
import html.parser, json, re, sys

d = sys.argv[1]
dom = open(d + "/dom.html").read()
detail = json.load(open(d + "/detail.json"))
metrics = open(d + "/metrics.txt").read()
readback = json.load(open(d + "/readback.json"))


class Tables(html.parser.HTMLParser):
    """rows of each table: (attributes of the tr, {data-k: text})"""

    def __init__(self):
        super().__init__()
        self.tables, self.table, self.row, self.key = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.table = self.tables.setdefault(a.get("id"), [])
        elif tag == "tr" and self.table is not None:
            self.row = (a, {})
            self.table.append(self.row)
        elif tag == "td" and self.row is not None:
            self.key = a.get("data-k")
            self.row[1][self.key] = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self.key = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.row is not None and self.key:
            self.row[1][self.key] += data


t = Tables()
t.feed(dom)
errors = []
checked = 0


def same(what, page, api):
    global checked
    checked += 1
    if str(page) != str(api):
        errors.append("%s: the page shows %r, the API %r" % (what, page, api))


polls = re.search(r'data-polls="(\d+)"', dom)
if not polls or int(polls.group(1)) < 2:
    errors.append("the page did not poll twice (data-polls %s)"
                  % (polls and polls.group(1)))

rows = [r for r in t.tables.get("producers", []) if r[0].get("data-pid")]
pid = str(detail["pid"])
for mode in ("plain", "idempotent"):
    p = detail["producers"][mode]
    row = [c for a, c in rows if a["data-pid"] == pid and a["data-mode"] == mode]
    if len(row) != 1:
        errors.append("no row for worker %s, %s" % (pid, mode))
        continue
    c = row[0]
    for k in ("delivered", "failed", "inFlight", "retries", "state"):
        same("%s %s" % (mode, k), c[k], p[k])
    same("%s brokersUp" % mode, c["brokersUp"],
         "%s/%s" % (p["brokersUp"], p["brokers"]))
    if mode == "idempotent":
        same("producerId", c["producerId"], p["producerId"])
        same("producerEpoch", c["producerEpoch"], p["producerEpoch"])
    if p["lastError"]:
        if not c["lastError"].startswith(p["lastError"]):
            errors.append("%s lastError: %r vs %r" % (mode, c["lastError"], p["lastError"]))


def msum(name, **labels):
    total = 0
    for m in re.finditer(r"^%s\{([^}]*)\} (\S+)$" % name, metrics, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return "%g" % total


for a, c in t.tables.get("totals", []):
    mode = a.get("data-mode")
    if not mode:
        continue
    same("total %s delivered" % mode, c["delivered"],
         msum("nginx_kafka_producer_records_total", mode=mode, result="delivered"))
    same("total %s failed" % mode, c["failed"],
         msum("nginx_kafka_producer_records_total", mode=mode, result="failed"))
    same("total %s retries" % mode, c["retries"],
         msum("nginx_kafka_producer_retries_total", mode=mode))
    same("total %s in flight" % mode, c["inFlight"],
         msum("nginx_kafka_producer_messages_in_flight", mode=mode))

events = {e["id"]: e["n"] for e in readback["events"]}
shown = {a["data-event"]: c["records"] for a, c in t.tables.get("readback", [])
         if a.get("data-event")}
same("eventIds shown", sorted(shown), sorted(events))
for e, n in events.items():
    same("records of %s" % e, shown.get(e), n)

# what the sends must have left, whatever the page says
if events.get("CHK-DUP-PLAIN") != 2:
    errors.append("CHK-DUP-PLAIN: %s record(s) in Kafka, the lesson expects 2"
                  % events.get("CHK-DUP-PLAIN"))
if detail["producers"]["plain"]["retries"] < 1:
    errors.append("the plain producer counts no retry after the late answer")
if detail["producers"]["plain"]["delivered"] != 4:
    errors.append("plain delivered %s, 4 sent" % detail["producers"]["plain"]["delivered"])

for e in errors:
    print("check-dashboard: FAIL: " + e)
print("check-dashboard: %d values compared, %d difference(s)" % (checked, len(errors)))
sys.exit(1 if errors else 0)
EOF

say "ok: the page's numbers match the API; screenshot $artifacts/dashboard.png"
