#!/usr/bin/env bash
# Builds the Debian package libnginx-mod-http-kafka-producer (`make deb`)
# with Debian's tooling for nginx modules: debian/ uses dh-sequence-nginx
# from nginx-dev (the nginx_mod build system and dh_nginx).
#
# The sources are copied into OUTDIR/src/ and built there, so that the
# work tree gets no build products; the .deb files, .buildinfo, .changes
# and the build log end up in OUTDIR.  Missing build dependencies are
# installed with apt-get (root or sudo).

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat <<EOF
usage: $(basename "$0") [-h] [OUTDIR]

Builds libnginx-mod-http-kafka-producer into OUTDIR (default build/deb).
EOF
}

while getopts h opt; do
    case $opt in
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

out=${1:-$top/build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

deps="debhelper dpkg-dev nginx-dev libnginx-mod-http-ndk
libnginx-mod-http-ndk-dev librdkafka-dev libyajl-dev"

missing=""
for p in $deps; do
    if ! dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null \
            | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    echo "build-deb: installing:$missing"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    $sudo apt-get install -y -qq --no-install-recommends $missing
fi

package=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Source)
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
src=$out/src/$package-$version

rm -rf "$out/src"
rm -f "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes
mkdir -p "$src"
cp -r "$top/config" "$top/ngx_http_kafka_producer_module.c" "$top/src" \
      "$top/debian" "$top/README.md" "$src/"

echo "build-deb: building $package $version in $src"
if ! (cd "$src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}" \
        dpkg-buildpackage -b -us -uc) > "$out/build.log" 2>&1
then
    tail -n 40 "$out/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed, see $out/build.log" >&2
    exit 1
fi

mv "$out/src/"*.deb "$out/src/"*.buildinfo "$out/src/"*.changes "$out/"
rm -rf "$out/src"

for deb in "$out"/*.deb; do
    echo "build-deb: $deb"
done
