#!/bin/sh
# Unpacks nginx's full source (the .c files, which nginx-dev does not ship)
# into DIR, for the fuzz build: `fuzz/nginx-src.sh build-fuzz/nginx`.
#
# The source is the upstream tarball of the installed nginx-dev, fetched
# from Debian's archive with apt itself ("apt-get source --tar-only", which
# checks it against the signed Sources index), through a private apt state
# under DIR.tmp: the machine's apt configuration is not changed and no root
# is needed.  NGINX_SRC_TARBALL=path/nginx_X.orig.tar.gz skips the download.

set -eu

dir=${1:?usage: $0 DIR}
tmp=$dir.tmp

version=$(dpkg-query -W -f '${Version}' nginx-dev)
upstream=${version%%-*}

rm -rf "$dir" "$tmp"
mkdir -p "$tmp/lists/partial" "$tmp/parts" "$tmp/src"
abs=$(cd "$tmp" && pwd)

tarball=${NGINX_SRC_TARBALL:-}

if [ -z "$tarball" ]; then
    . /etc/os-release

    # the suites the installed version may come from, as sources
    cat > "$tmp/parts/nginx-src.sources" << END
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $VERSION_CODENAME $VERSION_CODENAME-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $VERSION_CODENAME-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
END

    apt="apt-get -q -o Dir::Etc::SourceList=/dev/null
         -o Dir::Etc::SourceParts=$abs/parts
         -o Dir::State::Lists=$abs/lists
         -o Debug::NoLocking=1 -o APT::Sandbox::User=root"

    $apt update > "$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log"; exit 1; }

    (cd "$tmp/src" && $apt source --download-only --tar-only \
         "nginx=$version") >> "$tmp/apt.log" 2>&1 || true

    tarball=$tmp/src/nginx_$upstream.orig.tar.gz

    if [ ! -f "$tarball" ]; then
        cat "$tmp/apt.log"
        echo "$0: could not fetch nginx $version's source" >&2
        exit 1
    fi
fi

mkdir -p "$dir"
tar -xzf "$tarball" -C "$dir" --strip-components=1

if [ ! -f "$dir/src/core/ngx_string.c" ]; then
    echo "$0: $tarball is not nginx's source" >&2
    exit 1
fi

# Debian's build flags for the same version
cp /usr/share/nginx/src/conf_flags "$dir/conf_flags"

rm -rf "$tmp"
echo "nginx $upstream source in $dir"
