#!/usr/bin/env bash
# Step 1: builds the API image (Dockerfile at the top of the repository:
# Debian bookworm, nginx + ngx_devel_kit + librdkafka1 + the module).
# Kafka (apache/kafka) and Toxiproxy (ghcr.io/shopify/toxiproxy) are
# pulled by the cluster itself.  Safe to run again (layer cache).

set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

usage() {
    cat <<EOF
usage: $(basename "$0") [-h] [-t IMAGE]

Builds the API image with docker (or podman / nerdctl: CONTAINER_CLI).

  -t IMAGE  image name (default \$LAB_IMAGE or $LAB_IMAGE)
EOF
}

while getopts t:h opt; do
    case $opt in
        t) LAB_IMAGE=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

cli=$(container_cli)

log "building $LAB_IMAGE with $cli from $LAB_TOP"
"$cli" build -t "$LAB_IMAGE" "$LAB_TOP"
"$cli" image inspect "$LAB_IMAGE" > /dev/null
log "built $LAB_IMAGE"
