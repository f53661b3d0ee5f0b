#!/usr/bin/env bash
# The whole pipeline, as in the lab: build the image, import it into k3s,
# deploy k8s/, validate, test the APIs and the Toxiproxy scenarios.
#   sudo ./00-full-deploy.sh
# Safe to run again: every step is idempotent; a new image is rolled out
# (the API pods are restarted after the import).

set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

usage() {
    cat <<EOF
usage: $(basename "$0") [-h] [-s] [-n]

Runs 01-build-images.sh, 02-import-images.sh (root), 03-deploy.sh,
04-validate.sh and 05-test-apis.sh in this order, and stops at the first
failure.

  -s   skip the image build and import (deploy what k3s already has)
  -n   no Toxiproxy scenarios in 05-test-apis.sh
EOF
}

skip_image=0
test_opts=()

while getopts snh opt; do
    case $opt in
        s) skip_image=1 ;;
        n) test_opts+=(-n) ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

dir=$(cd "$(dirname "$0")" && pwd)

if [ "$skip_image" -eq 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "importing into k3s needs root: sudo $0"
    log "1/5 build"
    "$dir/01-build-images.sh"
    log "2/5 import into k3s"
    "$dir/02-import-images.sh"
    log "3/5 deploy"
    "$dir/03-deploy.sh" -r
else
    log "3/5 deploy (image build and import skipped)"
    "$dir/03-deploy.sh"
fi

log "4/5 validate"
"$dir/04-validate.sh"

log "5/5 test the APIs"
"$dir/05-test-apis.sh" "${test_opts[@]}"

log "done: API on http://$(node_ip):$LAB_API_NODEPORT," \
    "Toxiproxy on http://$(node_ip):$LAB_TOXIPROXY_NODEPORT"
