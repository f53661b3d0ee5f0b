#!/bin/bash
#
# Instruction counts per async send, which repeat run to run on a busy
# machine where requests/s do not: nginx in one process (master_process
# off) under valgrind --tool=callgrind, on build/kafka-mock (3 brokers),
# loaded by wrk (1 thread, 8 connections) with unique async sends for
# CALLGRIND_DURATION; then nginx quits and callgrind_annotate gives the
# inclusive Ir of the module's status-zone and send functions, divided by
# the 202s in the access log.
#
#   tools/bench/callgrind.sh [MODULE.so]     (default build/...so)
#
# Environment: CALLGRIND_ZONE (4m), CALLGRIND_DURATION (20s),
# CALLGRIND_MODE (plain), CALLGRIND_LINGER (5, ms), CALLGRIND_OUT
# (build/callgrind), CALLGRIND_CACHE (0; 1: --cache-sim=yes, and the
# data reads and first-level data read misses per send of the status
# functions, inclusive, as "Ir Dr D1mr").  Prints "function Ir/send"
# lines.  CALLGRIND_ANALYZE=1 only analyzes the output of an earlier
# run in CALLGRIND_OUT.  CALLGRIND_PERF=1 runs nginx without valgrind,
# wrk with 64 connections, and perf record -e cpu-clock on nginx (all
# its threads) meanwhile; prints the top symbols of perf report.

set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
module=$(realpath "${1:-$top/build/ngx_http_kafka_producer_module.so}")
zone=${CALLGRIND_ZONE:-4m}
duration=${CALLGRIND_DURATION:-20s}
mode=${CALLGRIND_MODE:-plain}
linger=${CALLGRIND_LINGER:-5}
work=$(realpath -m "${CALLGRIND_OUT:-$top/build/callgrind}")
cache=${CALLGRIND_CACHE:-0}
perf=${CALLGRIND_PERF:-0}
sim=
[ "$cache" = 1 ] && sim="--cache-sim=yes"

if [ "${CALLGRIND_ANALYZE:-0}" != 1 ]; then

rm -rf "$work"
mkdir -p "$work/conf" "$work/logs" "$work/tmp"

coproc MOCK { exec "$top/build/kafka-mock" -b 3 -t cg-async:3 -q; }
read -r line <&"${MOCK[0]}"
brokers=${line#bootstrap.servers=}

port=$(perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1")
         ->sockport')

cat > "$work/conf/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module $module;

master_process off;
daemon off;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
error_log $work/logs/error.log notice;
pid $work/logs/nginx.pid;

events { worker_connections 1024; }

http {
    log_format cg '\$status';
    access_log $work/logs/access.log cg;
    client_body_temp_path $work/tmp;

    kafka_producer_brokers $brokers;
    kafka_producer_linger ${linger}ms idempotent=${linger}ms;
    kafka_producer_status_zone cg_status:$zone;

    server {
        listen 127.0.0.1:$port;
        location = /api/v1/send { kafka_producer_send; }
        location = /api/v1/status { kafka_producer_status; }
    }
}
EOF


if [ "$perf" = 1 ]; then
    /usr/sbin/nginx -p "$work/" -c "$work/conf/nginx.conf" \
        2> "$work/nginx.log" &
else
    valgrind --tool=callgrind $sim \
        --callgrind-out-file="$work/callgrind.out" \
        /usr/sbin/nginx -p "$work/" -c "$work/conf/nginx.conf" \
        2> "$work/valgrind.log" &
fi
nginx=$!

for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/api/v1/status" && break
    sleep 0.2
done

cat > "$work/send.lua" <<EOF
n = 0
request = function()
    n = n + 1
    return wrk.format("POST", "/api/v1/send?mode=$mode&sendMode=async"
                              .. "&topic=cg-async&eventId=cg-" .. n)
end
EOF

if [ "$perf" = 1 ]; then
    wrk -t 1 -c 64 -d 3s -s "$work/send.lua" "http://127.0.0.1:$port/" \
        > /dev/null
    perf record -e cpu-clock -p "$nginx" -o "$work/perf.data" \
        2> /dev/null > /dev/null &
    rec=$!
    wrk -t 1 -c 64 -d "$duration" -s "$work/send.lua" \
        "http://127.0.0.1:$port/" > "$work/wrk.log"
    kill -INT "$rec"
    wait "$rec" || true
else
    wrk -t 1 -c 8 -d "$duration" -s "$work/send.lua" \
        "http://127.0.0.1:$port/" > "$work/wrk.log"
fi

sleep 2
kill -QUIT "$nginx"
wait "$nginx" || true

echo quit >&"${MOCK[1]}"
wait "$MOCK_PID" 2>/dev/null || true

fi

if [ "$perf" = 1 ]; then
    echo "module $module zone $zone mode $mode linger ${linger}ms"
    grep -E 'Requests/sec|Non-2xx' "$work/wrk.log"
    perf report -i "$work/perf.data" --stdio --no-children \
        --sort symbol 2> /dev/null | grep -v '^#' | grep -v '^$' | head -25
    exit 0
fi

# what the run used (CALLGRIND_ANALYZE=1 may come later)
zone=$(sed -n 's/.*cg_status:\([^;]*\);.*/\1/p' "$work/conf/nginx.conf")
module=$(sed -n 's/^load_module \(.*kafka[^;]*\);/\1/p' \
         "$work/conf/nginx.conf")

sends=$(grep -c '^202$' "$work/logs/access.log" || true)
other=$(grep -vc '^202$' "$work/logs/access.log" || true)

echo "module $module zone $zone mode $mode linger ${linger}ms"
echo "async sends answered 202: $sends, other answers: $other"

events=Ir
[ "$cache" = 1 ] && events=Ir,Dr,D1mr

callgrind_annotate --inclusive=yes --threshold=100 --show=$events \
    --sort=Ir "$work/callgrind.out" > "$work/annotate.txt" 2> /dev/null

total=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }' \
        "$work/annotate.txt")
echo "total Ir/send (all threads, start and exit included):" \
     "$((total / sends))"

# one function may appear on several lines (its own symbol, and code
# inlined from a file named by another path): the largest is the whole
fns='ngx_http_kafka_producer_(send_handler|send_record|status_[a-z_]+'
fns="$fns|async_report|produce|msg_create|msg_free|poll_handler)\\b"
fns="$fns|ngx_shmtx_lock|ngx_slab_(alloc|free)_locked"

grep -E "$fns" "$work/annotate.txt" \
    | awk -v n="$sends" '{
          k = 0; fn = ""; split("", v);
          for (i = 1; i <= NF; i++) {
              if ($i ~ /^[0-9,]+$/) { x = $i; gsub(",", "", x); v[++k] = x }
              else if ($i ~ /:/) { fn = $i; sub(/^[^:]*:/, "", fn); break }
          }
          if (v[1] + 0 > max[fn] + 0) {
              max[fn] = v[1]; line[fn] = "";
              for (j = 1; j <= k; j++)
                  line[fn] = line[fn] sprintf(" %9.1f", v[j] / n)
          } }
      END { for (fn in max) printf("%-50s%s\n", fn, line[fn]) }' \
    | sort -k2 -nr
