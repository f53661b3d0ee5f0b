#!/bin/sh
# Installs the Debian packages the build, the tests and `make run` need,
# when some are missing.  Needs root (or sudo) only when it installs.
# With arguments, those packages instead: the optional ones of a single
# check (`tools/install-deps.sh chromium fonts-dejavu-core` for make
# check-dashboard).

set -eu

packages="nginx nginx-dev libnginx-mod-http-ndk libnginx-mod-http-ndk-dev
librdkafka-dev libyajl-dev kcat jq make gcc libtest-base-perl libipc-run-perl
prometheus"

[ $# -eq 0 ] || packages="$*"

missing=""
for p in $packages; do
    if ! dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null \
            | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "installing:$missing"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# the nginx package must not start a service where the tests run
$sudo sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
$sudo apt-get install -y -qq --no-install-recommends $missing
$sudo rm -f /usr/sbin/policy-rc.d
