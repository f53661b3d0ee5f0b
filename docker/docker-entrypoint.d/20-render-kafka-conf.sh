#!/usr/bin/env bash
# Renders $NGINX_CONF_TEMPLATE into $NGINX_RUNTIME_DIR/nginx.conf from the
# KAFKA_* and NGINX_* environment variables (validated), then runs
# `nginx -t` on it so that a wrong value stops the container with nginx's
# or librdkafka's own message before anything listens.

set -euo pipefail

template=${NGINX_CONF_TEMPLATE:-/etc/nginx-kafka/nginx.conf.template}
runtime=${NGINX_RUNTIME_DIR:-/run/nginx-kafka}
render=${RENDER_CONF:-/usr/local/bin/render-conf.sh}

mkdir -p "$runtime"
"$render" "$template" "$runtime/nginx.conf"
nginx -t -q -p "$runtime/" -c "$runtime/nginx.conf"
