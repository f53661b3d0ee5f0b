#!/usr/bin/env bash
# Toxiproxy (Shopify/toxiproxy v2.12.0, built with `go install`) on
# loopback, for `make lab` and `make test-kafka`.
#
#   tools/toxiproxy.sh install   build toxiproxy-server and toxiproxy-cli
#                                into build/toxiproxy/bin (once)
#   tools/toxiproxy.sh start     start the server (API on $TOXIPROXY_HOST:
#                                $TOXIPROXY_PORT, 127.0.0.1:8474) in the
#                                background with the proxy kafka-proxy:
#                                $TOXIPROXY_KAFKA_LISTEN (127.0.0.1:29093) ->
#                                $TOXIPROXY_KAFKA_UPSTREAM (127.0.0.1:29092,
#                                Kafka's EXTERNAL listener); waits until the
#                                API answers and the proxy exists
#   tools/toxiproxy.sh stop      stop it
#
# TOXIPROXY_DIR (build/toxiproxy/run) holds the config, log and pid.  Go
# 1.22 or later is needed (`go version`); the build is cached in Go's module
# and build caches.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
version=v2.12.0
bin=${TOXIPROXY_BIN:-$top/build/toxiproxy/bin}
dir=${TOXIPROXY_DIR:-$top/build/toxiproxy/run}
host=${TOXIPROXY_HOST:-127.0.0.1}
port=${TOXIPROXY_PORT:-8474}
listen=${TOXIPROXY_KAFKA_LISTEN:-127.0.0.1:29093}
upstream=${TOXIPROXY_KAFKA_UPSTREAM:-127.0.0.1:29092}
api=http://$host:$port
pidfile=$dir/toxiproxy.pid

say() {
    echo "toxiproxy: $*"
}

die() {
    echo "toxiproxy: error: $*" >&2
    exit 1
}

install() {
    local gobin v ldflags

    if [ -x "$bin/toxiproxy-server" ] && [ -x "$bin/toxiproxy-cli" ] \
            && "$bin/toxiproxy-server" -version 2>&1 | grep -q "version ${version#v}\$"; then
        return 0
    fi
    command -v go > /dev/null 2>&1 \
        || die "Go is missing: Go 1.22 or later is needed to build Toxiproxy" \
               "$version (https://go.dev/doc/install; Debian 12's golang-go" \
               "1.19 is too old)"
    v=$(go env GOVERSION)
    case $v in
        go1.1[0-9]*|go1.2[01]|go1.2[01].*)
            die "Go $v is too old to build Toxiproxy $version: Go 1.22 or later" ;;
    esac
    gobin=$(mktemp -d)
    say "building toxiproxy $version with $v (go install)"
    # bounded: a module proxy that does not answer fails, never hangs
    # -X ...Version as the project's release build does: GET /version and
    # -version say 2.12.0 (the lab's checklist asks for it), not "git"
    ldflags="-X github.com/Shopify/toxiproxy/v2.Version=${version#v}"
    if ! GOBIN=$gobin timeout 600 go install -ldflags "$ldflags" \
            "github.com/Shopify/toxiproxy/v2/cmd/server@$version" \
         || ! GOBIN=$gobin timeout 600 go install -ldflags "$ldflags" \
            "github.com/Shopify/toxiproxy/v2/cmd/cli@$version"; then
        rm -rf "$gobin"
        die "go install github.com/Shopify/toxiproxy/v2/cmd/{server,cli}@$version" \
            "failed: the Go module proxy must be reachable (or GOPROXY set)"
    fi
    mkdir -p "$bin"
    # Go names the binaries after their folders: server and cli
    mv -f "$gobin/server" "$bin/toxiproxy-server"
    mv -f "$gobin/cli" "$bin/toxiproxy-cli"
    rm -rf "$gobin"
    say "installed $bin/toxiproxy-server and $bin/toxiproxy-cli"
}

pid() {
    local p

    [ -f "$pidfile" ] || return 1
    p=$(cat "$pidfile")
    [ -n "$p" ] && kill -0 "$p" 2> /dev/null || return 1
    echo "$p"
}

start() {
    local p i

    install
    if ! command -v curl > /dev/null 2>&1; then
        [ "$(id -u)" -eq 0 ] || die "curl is missing (Debian: apt-get install curl)"
        say "curl is missing, installing it"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
              apt-get install -y -qq --no-install-recommends curl; } \
            || die "could not install curl (apt-get failed)"
    fi
    if p=$(pid); then
        say "already running (pid $p)"
        return 0
    fi
    mkdir -p "$dir"
    cat > "$dir/toxiproxy.json" <<EOF
[
  {
    "name": "kafka-proxy",
    "listen": "$listen",
    "upstream": "$upstream",
    "enabled": true
  }
]
EOF
    setsid "$bin/toxiproxy-server" -host "$host" -port "$port" \
        -config "$dir/toxiproxy.json" < /dev/null > "$dir/toxiproxy.log" 2>&1 &
    echo $! > "$pidfile"
    for ((i = 0; i < 100; i++)); do
        p=$(pid) || { cat "$dir/toxiproxy.log" >&2; die "toxiproxy-server exited"; }
        if curl -sf --max-time 2 "$api/proxies/kafka-proxy" > /dev/null 2>&1; then
            say "API on $api (pid $p), proxy kafka-proxy $listen -> $upstream"
            return 0
        fi
        sleep 0.1
    done
    cat "$dir/toxiproxy.log" >&2
    die "the API did not answer on $api within 10s"
}

stop() {
    local p i

    p=$(pid) || { rm -f "$pidfile"; return 0; }
    kill -TERM "$p" 2> /dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$p" 2> /dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2> /dev/null || true
    rm -f "$pidfile"
    say "stopped"
}

case ${1:-} in
    install) install ;;
    start) start ;;
    stop) stop ;;
    -h|--help|help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
