#!/usr/bin/env bash
# Entrypoint of the m02-nginx-api image, in the manner of the official nginx
# image: when the command is nginx, run every executable
# /docker-entrypoint.d/*.sh in order (they render and check the
# configuration), then exec the command so that nginx is PID 1 and gets
# the stop signal (SIGQUIT: graceful, in-flight sends are drained).
#
# Any other command (e.g. `docker run IMAGE bash`) is run as is.
# ENTRYPOINT_QUIET_LOGS=1 silences this script's own messages.

set -euo pipefail

dir=${DOCKER_ENTRYPOINT_DIR:-/docker-entrypoint.d}

log() {
    if [ -z "${ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$0: $*" >&2
    fi
}

if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
    for script in "$dir"/*.sh; do
        [ -e "$script" ] || continue
        if [ ! -x "$script" ]; then
            log "ignoring $script, not executable"
            continue
        fi
        log "running $script"
        if ! "$script"; then
            echo "$0: $script failed, not starting nginx" >&2
            exit 1
        fi
    done
    log "configuration complete, starting nginx"
fi

exec "$@"
