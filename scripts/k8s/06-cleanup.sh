#!/usr/bin/env bash
# Step 6: removes what k8s/ deployed (every object labelled
# app.kubernetes.io/part-of=kafka-producer-lab in namespace kafka).  The
# namespace itself is kept unless -n is given (the lab may have other
# things in it); -i also removes the API image from k3s (root).  Safe to
# run again: deleting what is already gone is not an error.

set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

usage() {
    cat <<EOF
usage: $(basename "$0") [-h] [-n] [-i]

Deletes the lab's objects from namespace $LAB_NAMESPACE.

  -n   also delete the namespace $LAB_NAMESPACE (everything in it)
  -i   also remove the image $LAB_IMAGE from k3s (needs root)
EOF
}

namespace=0
image=0

while getopts nih opt; do
    case $opt in
        n) namespace=1 ;;
        i) image=1 ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

selector=app.kubernetes.io/part-of=kafka-producer-lab

log "deleting the lab's objects from namespace $LAB_NAMESPACE"
kube -n "$LAB_NAMESPACE" delete \
    deployment,service,configmap,poddisruptionbudget \
    -l "$selector" --ignore-not-found --wait=true

if [ "$namespace" -eq 1 ]; then
    log "deleting namespace $LAB_NAMESPACE"
    kube delete namespace "$LAB_NAMESPACE" --ignore-not-found --wait=true
fi

if [ "$image" -eq 1 ]; then
    [ "$(id -u)" -eq 0 ] || die "removing an image from k3s needs root: sudo $0 -i"
    need k3s
    for ref in $(k3s ctr images ls -q | grep -- "${LAB_IMAGE%%:*}" || true); do
        log "removing image $ref from k3s"
        k3s ctr images rm "$ref" > /dev/null
    done
fi

log "remaining in $LAB_NAMESPACE:"
kube -n "$LAB_NAMESPACE" get all -l "$selector" 2>/dev/null || true
