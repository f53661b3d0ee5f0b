#!/usr/bin/env bash
# `make check-openapi`: docs/openapi.yaml against a live nginx with the
# module.  schemathesis (PyPI, pinned below, in a venv under build/)
# generates requests for every operation of the document, valid and
# invalid ones, and checks every answer: no 5xx, a status the document
# lists, its Content-Type, and a body that matches its schema.
#
# nginx runs docs/openapi.conf (every handler of the module at the paths
# of the document) on a free port, in front of tools/kafka-mock; both are
# stopped on exit.  Settings: OPENAPI_EXAMPLES (examples per operation,
# default 40), SCHEMATHESIS_VERSION.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
prefix=$build/openapi
venv=$build/schemathesis
version=${SCHEMATHESIS_VERSION:-4.32.5}
examples=${OPENAPI_EXAMPLES:-40}
nginx=${NGINX:-/usr/sbin/nginx}

die() {
    echo "check-openapi: $*" >&2
    exit 1
}

[ -f "$build/ngx_http_kafka_producer_module.so" ] \
    || die "$build/ngx_http_kafka_producer_module.so is missing: run make"
[ -x "$build/kafka-mock" ] || die "$build/kafka-mock is missing: run make"

if [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" \
     != "schemathesis, version $version" ]
then
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (python3-venv)"
    "$venv/bin/pip" install -q "schemathesis==$version" \
        || die "pip install schemathesis==$version failed"
fi

rm -rf "$prefix"
mkdir -p "$prefix/logs" "$prefix/tmp"

mock_pid=
nginx_started=

cleanup() {
    if [ -n "$nginx_started" ] && [ -f "$prefix/logs/nginx.pid" ]; then
        kill -QUIT "$(cat "$prefix/logs/nginx.pid")" 2>/dev/null || true
        for _ in $(seq 50); do
            [ -f "$prefix/logs/nginx.pid" ] || break
            sleep 0.1
        done
    fi
    if [ -n "$mock_pid" ]; then
        kill "$mock_pid" 2>/dev/null || true
        wait "$mock_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

"$build/kafka-mock" -b 3 -t events:3 -t bhf-transactions:3 -q \
    -s "$prefix/kafka-mock.sock" \
    < /dev/null > "$prefix/kafka-mock.out" 2> "$prefix/kafka-mock.err" &
mock_pid=$!

brokers=
for _ in $(seq 100); do
    brokers=$(sed -n 's/^bootstrap.servers=//p' "$prefix/kafka-mock.out")
    [ -n "$brokers" ] && break
    sleep 0.1
done
[ -n "$brokers" ] || die "kafka-mock did not start: $(cat "$prefix/kafka-mock.err")"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

sed -e "s|@MODULE@|$build/ngx_http_kafka_producer_module.so|" \
    -e "s|@BROKERS@|$brokers|" -e "s|@PORT@|$port|" \
    -e "s|@PREFIX@|$prefix|g" \
    "$top/docs/openapi.conf" > "$prefix/nginx.conf"

user=
[ "$(id -u)" -eq 0 ] && user="user root;"
sed -i "s|@USER@|$user|" "$prefix/nginx.conf"

"$nginx" -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
    || die "nginx did not start: $(tail -5 "$prefix/logs/error.log")"
nginx_started=1

for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/health/ready" > /dev/null && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$port/health/ready" > /dev/null \
    || die "nginx is not ready: $(tail -5 "$prefix/logs/error.log")"

# from $prefix: schemathesis keeps its cache (.schemathesis/) in its cwd
rc=0
(cd "$prefix" && "$venv/bin/schemathesis" run "$top/docs/openapi.yaml" \
    --url "http://127.0.0.1:$port" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$examples" --request-timeout 30 \
    --generation-deterministic --suppress-health-check all \
    --no-color) || rc=$?

if grep -E '\[(alert|emerg|crit)\]|AddressSanitizer|runtime error' \
        "$prefix/logs/error.log"
then
    echo "check-openapi: nginx's error log has the lines above" >&2
    rc=1
fi

[ "$rc" -eq 0 ] && echo "check-openapi: docs/openapi.yaml holds"
exit "$rc"
