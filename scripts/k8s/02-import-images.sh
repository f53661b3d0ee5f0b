#!/usr/bin/env bash
# Step 2: imports the API image into k3s's containerd (the cluster does
# not pull m02-nginx-api from any registry).  Needs root, as k3s ctr does:
#   sudo ./02-import-images.sh
# Safe to run again: the import replaces the image of the same name.

set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

usage() {
    cat <<EOF
usage: $(basename "$0") [-h] [-t IMAGE]

Saves IMAGE from docker (or podman: CONTAINER_CLI) and imports it into
k3s (k3s ctr images import).  Run as root.

  -t IMAGE  image name (default \$LAB_IMAGE or $LAB_IMAGE)

Another cluster than k3s: push the image to a registry the cluster pulls
from and set the Deployment's image (kustomize edit set image).
EOF
}

while getopts t:h opt; do
    case $opt in
        t) LAB_IMAGE=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "k3s ctr needs root: sudo $0"
need k3s

cli=$(container_cli)
"$cli" image inspect "$LAB_IMAGE" > /dev/null 2>&1 \
    || die "no image $LAB_IMAGE: run 01-build-images.sh first"

log "importing $LAB_IMAGE into k3s"
"$cli" save "$LAB_IMAGE" | k3s ctr images import -

name=${LAB_IMAGE%%:*}
k3s ctr images ls -q | grep -q -- "$name" \
    || die "$LAB_IMAGE is not in k3s's image list after the import"
log "imported: $(k3s ctr images ls -q | grep -- "$name" | tr '\n' ' ')"
