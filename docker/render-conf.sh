#!/usr/bin/env bash
# Renders the nginx.conf template of the image from the environment, after
# validating every value.  Used by the container's entrypoint
# (/docker-entrypoint.d/20-render-kafka-conf.sh) and, outside Docker, by
# tools/check-deploy.sh.
#
# Usage: render-conf.sh [-h] TEMPLATE OUT      (OUT "-" writes to stdout)
#
# Only the variables listed below are replaced (${NAME} in the template), as
# `envsubst '${A} ${B}'` would do: nginx's own $variables are left alone.
# Every wrong value is reported (all of them, not only the first) and the
# script exits with status 1 without writing OUT; 2 for a usage error.

set -euo pipefail

prog=render-conf

usage() {
    cat <<'EOF'
usage: render-conf.sh [-h] TEMPLATE OUT

Renders TEMPLATE into OUT ("-" for stdout), replacing ${NAME} for:

  KAFKA_BOOTSTRAP_SERVERS    host:port[,host:port...]  required
  KAFKA_REQUEST_TIMEOUT_MS   1 .. 900000               default 1000
  KAFKA_DELIVERY_TIMEOUT_MS  1 .. 2147483647           default 120000
  KAFKA_RETRY_BACKOFF_MS     1 .. 300000               default 100
  KAFKA_RETRIES              0 .. 2147483647           default 10
  KAFKA_LINGER_MS            0 .. 900000, below the
                             delivery timeout          default 0
  KAFKA_IDEMPOTENT_LINGER_MS the same, for the idempotent producer
                             default KAFKA_LINGER_MS if above 0, else 1
                             (librdkafka 2.0.2's idempotent producer
                             spins at 0: README, Performance)
  KAFKA_TOPIC                Kafka topic name          default bhf-transactions
  NGINX_WORKER_PROCESSES     auto or 1 .. 1024         default auto
  NGINX_MODULES_DIR          absolute path             default /usr/lib/nginx/modules

The *_MS values are milliseconds (the lab's variables); the template
appends "ms" where nginx expects a time.  Exit status: 0 rendered,
1 invalid value(s), 2 usage error.
EOF
}

errors=0

say() {
    echo "$prog: $*" >&2
}

fail() {
    say "$@"
    errors=$((errors + 1))
}

# check_int NAME MIN MAX: the variable holds a decimal integer in range
check_int() {
    local name=$1 min=$2 max=$3 value=${!1} what="a count"

    if [[ $name == *_MS ]]; then
        what="milliseconds, a plain number without unit"
    fi

    if ! [[ $value =~ ^(0|[1-9][0-9]{0,9})$ ]] \
        || ((value < min || value > max))
    then
        fail "$name='$value' is not valid: expected an integer from $min" \
             "to $max ($what)"
        return 1
    fi
}

# check_brokers NAME: host:port[,host:port...], host a DNS name, an IPv4
# address or a [bracketed] IPv6 address, port 1..65535
check_brokers() {
    local name=$1 value=${!1} item host port ok=1
    local label='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
    local dns="^$label(\\.$label)*\$"
    local ipv6='^\[[0-9A-Fa-f:.]+\]$'
    local -a items

    if [ -z "$value" ]; then
        fail "$name is empty: expected host:port[,host:port...]," \
             "e.g. kafka:9092"
        return 1
    fi

    # "a,,b", ",a" and "a," leave an empty item, which fails below
    IFS=, read -r -a items <<< "$value,"

    for item in "${items[@]}"; do
        if [ -z "$item" ]; then
            ok=0
            say "$name: empty entry (a leading, trailing or double comma)"
            continue
        fi
        host=${item%:*}
        port=${item##*:}
        if [[ $item != *:* ]] \
            || ! [[ $host =~ $dns || $host =~ $ipv6 ]] \
            || ! [[ $port =~ ^[1-9][0-9]{0,4}$ ]] \
            || ((port > 65535))
        then
            ok=0
            say "$name: '$item' is not host:port (port 1 to 65535)"
        fi
    done

    if [ "$ok" -eq 0 ]; then
        fail "$name='$value' is not valid: expected" \
             "host:port[,host:port...] without spaces, e.g." \
             "kafka-1:9092,kafka-2:9092"
        return 1
    fi
}

check_topic() {
    local name=$1 value=${!1}

    if ! [[ $value =~ ^[A-Za-z0-9._-]{1,249}$ ]] \
        || [ "$value" = . ] || [ "$value" = .. ]
    then
        fail "$name='$value' is not valid: a Kafka topic name is 1 to 249" \
             "of a-z A-Z 0-9 . _ - (not \".\" or \"..\")"
        return 1
    fi
}

check_workers() {
    local name=$1 value=${!1}

    if [ "$value" = auto ]; then
        return 0
    fi

    if ! [[ $value =~ ^[1-9][0-9]{0,3}$ ]] || ((value > 1024)); then
        fail "$name='$value' is not valid: expected auto or 1 to 1024"
        return 1
    fi
}

check_dir() {
    local name=$1 value=${!1}

    if ! [[ $value =~ ^/[A-Za-z0-9._/+-]*$ ]]; then
        fail "$name='$value' is not valid: expected an absolute path" \
             "(letters, digits, . _ / + -)"
        return 1
    fi
}

while getopts h opt; do
    case $opt in
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

if [ $# -ne 2 ]; then
    usage >&2
    exit 2
fi

template=$1
out=$2

if [ ! -r "$template" ]; then
    echo "$prog: cannot read the template '$template'" >&2
    exit 2
fi

if [ -z "${KAFKA_BOOTSTRAP_SERVERS+set}" ]; then
    fail "KAFKA_BOOTSTRAP_SERVERS is not set: expected" \
         "host:port[,host:port...], e.g. kafka:9092"
    KAFKA_BOOTSTRAP_SERVERS=
    missing_brokers=1
fi

: "${KAFKA_REQUEST_TIMEOUT_MS:=1000}"
: "${KAFKA_DELIVERY_TIMEOUT_MS:=120000}"
: "${KAFKA_RETRY_BACKOFF_MS:=100}"
: "${KAFKA_RETRIES:=10}"
: "${KAFKA_LINGER_MS:=0}"
if [ -z "${KAFKA_IDEMPOTENT_LINGER_MS:-}" ]; then
    KAFKA_IDEMPOTENT_LINGER_MS=1
    if [[ $KAFKA_LINGER_MS =~ ^[1-9][0-9]{0,9}$ ]]; then
        KAFKA_IDEMPOTENT_LINGER_MS=$KAFKA_LINGER_MS
    fi
fi
: "${KAFKA_TOPIC:=bhf-transactions}"
: "${NGINX_WORKER_PROCESSES:=auto}"
: "${NGINX_MODULES_DIR:=/usr/lib/nginx/modules}"

if [ -z "${missing_brokers:-}" ]; then
    check_brokers KAFKA_BOOTSTRAP_SERVERS || true
fi
check_int KAFKA_REQUEST_TIMEOUT_MS 1 900000 || true
delivery_ok=1
check_int KAFKA_DELIVERY_TIMEOUT_MS 1 2147483647 || delivery_ok=0
check_int KAFKA_RETRY_BACKOFF_MS 1 300000 || true
check_int KAFKA_RETRIES 0 2147483647 || true
for name in KAFKA_LINGER_MS KAFKA_IDEMPOTENT_LINGER_MS; do
    if check_int "$name" 0 900000 && [ "$delivery_ok" -eq 1 ] \
        && ((${!name} >= KAFKA_DELIVERY_TIMEOUT_MS))
    then
        fail "$name=${!name} must be less than" \
             "KAFKA_DELIVERY_TIMEOUT_MS=$KAFKA_DELIVERY_TIMEOUT_MS"
    fi
done
check_topic KAFKA_TOPIC || true
check_workers NGINX_WORKER_PROCESSES || true
check_dir NGINX_MODULES_DIR || true

if [ "$errors" -ne 0 ]; then
    echo "$prog: $errors invalid setting(s), $template not rendered" >&2
    exit 1
fi

vars="KAFKA_BOOTSTRAP_SERVERS KAFKA_REQUEST_TIMEOUT_MS
KAFKA_DELIVERY_TIMEOUT_MS KAFKA_RETRY_BACKOFF_MS KAFKA_RETRIES KAFKA_LINGER_MS
KAFKA_IDEMPOTENT_LINGER_MS KAFKA_TOPIC NGINX_WORKER_PROCESSES NGINX_MODULES_DIR"

# bash 5.2 would expand "&" in a replacement string; the values are
# validated and hold none, but stay literal anyway
shopt -u patsub_replacement 2>/dev/null || true

conf=$(cat "$template"; echo .)
conf=${conf%.}

for name in $vars; do
    conf=${conf//"\${$name}"/"${!name}"}
done

# a ${KAFKA_...} or ${NGINX_...} left over is a typo in the template
# shellcheck disable=SC2016
leftover=$(printf '%s' "$conf" | grep -o '\${\(KAFKA\|NGINX\)_[A-Za-z0-9_]*}' \
           | sort -u | tr '\n' ' ' || true)
if [ -n "$leftover" ]; then
    echo "$prog: $template uses unknown variable(s): $leftover" >&2
    exit 1
fi

if [ "$out" = - ]; then
    printf '%s' "$conf"
    exit 0
fi

tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
printf '%s' "$conf" > "$tmp"
mv -f "$tmp" "$out"
trap - EXIT

echo "$prog: $out rendered (brokers $KAFKA_BOOTSTRAP_SERVERS," \
     "request timeout ${KAFKA_REQUEST_TIMEOUT_MS}ms, delivery timeout" \
     "${KAFKA_DELIVERY_TIMEOUT_MS}ms, retry backoff" \
     "${KAFKA_RETRY_BACKOFF_MS}ms, retries $KAFKA_RETRIES, linger" \
     "${KAFKA_LINGER_MS}ms (idempotent ${KAFKA_IDEMPOTENT_LINGER_MS}ms)," \
     "topic $KAFKA_TOPIC)" >&2
