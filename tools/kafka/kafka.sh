#!/usr/bin/env bash
# One Apache Kafka node (KRaft: broker and controller in one JVM) on
# loopback, for `make lab` and `make test-kafka`.  The broker's jars come
# from Maven (tools/kafka/pom.xml) into build/kafka/libs-VERSION, once.
#
#   tools/kafka/kafka.sh libs      resolve the jars (Maven), print their folder
#   tools/kafka/kafka.sh start     format the storage (first start only), start
#                                  the node, wait until it answers metadata,
#                                  create the topics; the JVM runs on in the
#                                  background (pid in $KAFKA_DIR/kafka.pid)
#   tools/kafka/kafka.sh stop      SIGTERM, SIGKILL after 30 s
#   tools/kafka/kafka.sh kill      kill -9 (the tests' broker crash)
#   tools/kafka/kafka.sh wait      wait until the node answers metadata
#   tools/kafka/kafka.sh status    running or not (exit 0 or 1)
#   tools/kafka/kafka.sh dump TOPIC PARTITION
#                                  the partition's record batches as stored
#                                  (kafka.tools.DumpLogSegments: offsets,
#                                  producer id, epoch, sequence, payload)
#
# Listeners (all on 127.0.0.1):
#   INTERNAL   $KAFKA_INTERNAL_PORT (9094), advertised as itself: inter-broker
#              traffic, kcat, the tests' read-back; never through Toxiproxy
#   EXTERNAL   $KAFKA_EXTERNAL_PORT (29092), advertised at
#              $KAFKA_EXTERNAL_ADVERTISED (127.0.0.1:29093, Toxiproxy's
#              kafka-proxy): a client that bootstraps through the proxy
#              stays on it
#   CONTROLLER $KAFKA_CONTROLLER_PORT (9093)
#
# Other settings: KAFKA_VERSION (3.9.2; a 4.x version resolves with the
# log4j2 backend), KAFKA_DIR (build/kafka/run: config, data, logs, pid),
# KAFKA_TOPICS ("bhf-transactions:3", NAME:PARTITIONS ...),
# KAFKA_AUTO_CREATE (false), KAFKA_HEAP (512m, the most it may take),
# KAFKA_START_TIMEOUT (120 s).  Missing Java or Maven: installed with
# apt-get when root, else a message; a failed download is an error, never
# a hang (Maven runs under `timeout`).

set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/tools/kafka

version=${KAFKA_VERSION:-3.9.2}
dir=${KAFKA_DIR:-$top/build/kafka/run}
libs=${KAFKA_LIBS:-$top/build/kafka/libs-$version}
internal_port=${KAFKA_INTERNAL_PORT:-9094}
external_port=${KAFKA_EXTERNAL_PORT:-29092}
controller_port=${KAFKA_CONTROLLER_PORT:-9093}
external_advertised=${KAFKA_EXTERNAL_ADVERTISED:-127.0.0.1:29093}
topics=${KAFKA_TOPICS:-bhf-transactions:3}
auto_create=${KAFKA_AUTO_CREATE:-false}
heap=${KAFKA_HEAP:-512m}
start_timeout=${KAFKA_START_TIMEOUT:-120}
mvn_timeout=${KAFKA_MVN_TIMEOUT:-900}

internal=127.0.0.1:$internal_port
pidfile=$dir/kafka.pid

case $version in
    3.*) major=3 ;;
    4.*) major=4 ;;
    *) echo "kafka: KAFKA_VERSION $version: only 3.x and 4.x are known" >&2
       exit 2 ;;
esac

say() {
    echo "kafka: $*"
}

die() {
    echo "kafka: error: $*" >&2
    exit 1
}

# install_or_die COMMAND PACKAGE: apt-get install PACKAGE when COMMAND is
# missing and we are root, else say what to install
install_or_die() {
    local cmd=$1 package=$2

    command -v "$cmd" > /dev/null 2>&1 && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "'$cmd' is missing: install it (Debian: apt-get install $package)"
    fi
    say "'$cmd' is missing, installing $package"
    { apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
               --no-install-recommends "$package"; } \
        || die "could not install $package for '$cmd' (apt-get failed)"
    command -v "$cmd" > /dev/null 2>&1 \
        || die "'$cmd' is still missing after installing $package"
}

java_check() {
    local v

    install_or_die java openjdk-17-jre-headless
    v=$(java -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n 1)
    if [ -z "$v" ] || [ "$v" -lt 17 ]; then
        die "Java 17 or later is needed (java -version says '${v:-?}'):" \
            "apt-get install openjdk-17-jre-headless"
    fi
}

# the jars, resolved once per version into $libs (a folder renamed into
# place only when Maven succeeded, with the pom's checksum as a stamp)
libs() {
    local stamp want tmp profile log

    want=$(sha256sum < "$here/pom.xml" | cut -d" " -f1)
    stamp=$libs/.pom.sha256
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi

    java_check
    install_or_die mvn maven
    profile=kafka$major
    tmp=$libs.tmp
    log=$(dirname "$libs")/mvn-$version.log
    rm -rf "$tmp"
    mkdir -p "$(dirname "$libs")"
    say "resolving Apache Kafka $version ($profile) with Maven into $libs"
    if ! timeout "$mvn_timeout" mvn -B -q -Dstyle.color=never -f "$here/pom.xml" package \
            -Dkafka.version="$version" -Dkafka.libs="$tmp" -P "$profile" \
            > "$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "Maven could not resolve org.apache.kafka:kafka_2.13:$version" \
            "and its dependencies (full log: $log; exit status 124 means" \
            "no answer within ${mvn_timeout}s). Maven's repository must be" \
            "reachable, or ~/.m2 must hold the jars already."
    fi
    [ -f "$tmp/kafka_2.13-$version.jar" ] \
        || die "Maven did not copy kafka_2.13-$version.jar (log: $log)"
    echo "$want" > "$tmp/.pom.sha256"
    rm -rf "$libs"
    mv "$tmp" "$libs"
    say "$(find "$libs" -name '*.jar' | wc -l) jars in $libs"
}

pid() {
    local p

    [ -f "$pidfile" ] || return 1
    p=$(cat "$pidfile")
    [ -n "$p" ] && kill -0 "$p" 2> /dev/null || return 1
    echo "$p"
}

java_run() {
    java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Dlog4j.configuration="file:$here/log4j.properties" \
        -Dlog4j2.configurationFile="$here/log4j2.properties" \
        -Dkafka.logs.dir="$dir/logs" -cp "$libs/*" "$@"
}

config() {
    mkdir -p "$dir/data" "$dir/logs"
    cat > "$dir/server.properties" <<EOF
# generated by tools/kafka/kafka.sh
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
controller.listener.names=CONTROLLER
listeners=INTERNAL://$internal,EXTERNAL://127.0.0.1:$external_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=INTERNAL://$internal,EXTERNAL://$external_advertised
listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
log.dirs=$dir/data
num.partitions=3
auto.create.topics.enable=$auto_create
# records up to 2 MiB: t/070-pass.t produces a 1 MiB body (the default,
# 1 MiB + 12 bytes, refuses it with its batch header)
message.max.bytes=2097152
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
# a restarted node (kill -9) comes back quickly
controller.quorum.election.timeout.ms=500
EOF
}

# ready: the node answers metadata on the INTERNAL listener with itself
# as a broker
ready() {
    kcat -L -b "$internal" -m 2 2> /dev/null | grep -q '^ *broker 1 at '
}

wait_ready() {
    local p deadline=$((SECONDS + start_timeout))

    while [ "$SECONDS" -lt "$deadline" ]; do
        p=$(pid) || { tail -n 40 "$dir/logs/kafka.out" >&2 || true
                      die "the JVM exited during startup (log: $dir/logs/kafka.out)"; }
        ready && return 0
        sleep 0.3
    done
    tail -n 40 "$dir/logs/kafka.out" >&2 || true
    die "no metadata answer on $internal within ${start_timeout}s (pid $p)"
}

# leaders NAME: how many partitions of topic NAME have a leader.  Asks for
# every topic's metadata: a request that names the topic would create it
# where auto.create.topics.enable is on
leaders() {
    kcat -L -b "$internal" -m 5 2> /dev/null \
        | awk -v t="  topic \"$1\" with " '
              /^  topic "/ { in_t = index($0, t) == 1 }
              in_t && /^    partition [0-9]+, leader [0-9]+,/ { n++ }
              END { print n + 0 }'
}

# topic NAME PARTITIONS: created unless it exists, then waited for (every
# partition with a leader)
topic() {
    local name=$1 partitions=$2 deadline n

    n=$(leaders "$name")
    if [ "$n" = 0 ]; then
        java_run org.apache.kafka.tools.TopicCommand --bootstrap-server "$internal" \
            --create --if-not-exists --topic "$name" --partitions "$partitions" \
            --replication-factor 1 > "$dir/logs/topic-$name.log" 2>&1 \
            || { cat "$dir/logs/topic-$name.log" >&2
                 die "could not create topic $name"; }
    fi
    deadline=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$deadline" ]; do
        n=$(leaders "$name")
        [ "$n" = "$partitions" ] && return 0
        sleep 0.3
    done
    die "topic $name: $partitions partitions with a leader not seen within" \
        "60s ($n seen)"
}

start() {
    local cluster p t

    if p=$(pid); then
        say "already running (pid $p)"
        wait_ready
        return 0
    fi
    command -v kcat > /dev/null 2>&1 \
        || die "kcat is missing (Debian: apt-get install kcat; tools/install-deps.sh)"
    libs
    java_check
    config
    if [ ! -f "$dir/data/meta.properties" ]; then
        cluster=$(java_run kafka.tools.StorageTool random-uuid)
        java_run kafka.tools.StorageTool format -t "$cluster" \
            -c "$dir/server.properties" > "$dir/logs/format.log" 2>&1 \
            || { cat "$dir/logs/format.log" >&2; die "storage format failed"; }
    fi
    # the JVM in its own session: a Ctrl-C to the caller's terminal reaches
    # the caller, whose trap stops it in order
    setsid java "-Xmx$heap" "-Xms$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$here/log4j.properties" \
        -Dlog4j2.configurationFile="$here/log4j2.properties" \
        -Dkafka.logs.dir="$dir/logs" -cp "$libs/*" \
        kafka.Kafka "$dir/server.properties" \
        < /dev/null > "$dir/logs/kafka.out" 2>&1 &
    echo $! > "$pidfile"
    say "Apache Kafka $version starting (pid $!), INTERNAL $internal," \
        "EXTERNAL 127.0.0.1:$external_port advertised as $external_advertised"
    wait_ready
    for t in $topics; do
        topic "${t%%:*}" "${t##*:}"
    done
    say "ready: INTERNAL $internal, topics $topics"
}

stop() {
    local p i

    p=$(pid) || { rm -f "$pidfile"; return 0; }
    kill -TERM "$p" 2> /dev/null || true
    for ((i = 0; i < 300; i++)); do
        kill -0 "$p" 2> /dev/null || break
        sleep 0.1
    done
    if kill -0 "$p" 2> /dev/null; then
        say "pid $p did not stop within 30s after SIGTERM: SIGKILL"
        kill -KILL "$p" 2> /dev/null || true
    fi
    rm -f "$pidfile"
    say "stopped"
}

crash() {
    local p i

    p=$(pid) || die "not running"
    kill -KILL "$p"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$p" 2> /dev/null || break
        sleep 0.05
    done
    rm -f "$pidfile"
    say "killed (SIGKILL) pid $p"
}

dump() {
    local seg=() f tool out

    [ $# -eq 2 ] || die "usage: kafka.sh dump TOPIC PARTITION"
    for f in "$dir/data/$1-$2"/*.log; do
        [ -f "$f" ] && seg+=("$f")
    done
    [ ${#seg[@]} -gt 0 ] || die "no log segment in $dir/data/$1-$2"
    # in core up to Kafka 4.0, in kafka-tools since 4.1
    for tool in kafka.tools.DumpLogSegments org.apache.kafka.tools.DumpLogSegments; do
        if out=$(java_run "$tool" --print-data-log \
                     --files "$(IFS=,; echo "${seg[*]}")" 2>&1); then
            printf '%s\n' "$out"
            return 0
        fi
        if ! grep -q "ClassNotFoundException: $tool" <<< "$out"; then
            printf '%s\n' "$out" >&2
            die "$tool failed"
        fi
    done
    die "no DumpLogSegments class in $libs"
}

case ${1:-} in
    libs) libs; echo "$libs" ;;
    dump) shift; dump "$@" ;;
    start) start ;;
    stop) stop ;;
    kill) crash ;;
    wait) pid > /dev/null || die "not running"; wait_ready ;;
    status) if p=$(pid); then say "running (pid $p)"; else say "not running"; exit 1; fi ;;
    -h|--help|help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
