# syntax=docker/dockerfile:1
#
# m02-nginx-api: Debian's nginx with ngx_http_kafka_producer_module, the
# HTTP-to-Kafka gateway of the producer reliability lab.
#
#   docker build -t m02-nginx-api .
#   docker run --rm -p 8080:8080 -e KAFKA_BOOTSTRAP_SERVERS=kafka:9092 m02-nginx-api
#
# Configuration: the lab's environment variables (KAFKA_BOOTSTRAP_SERVERS,
# KAFKA_REQUEST_TIMEOUT_MS, KAFKA_DELIVERY_TIMEOUT_MS, KAFKA_RETRY_BACKOFF_MS,
# KAFKA_RETRIES, KAFKA_LINGER_MS), validated and rendered into nginx.conf at
# start by /docker-entrypoint.d/ (see docker/render-conf.sh -h).  Also
# KAFKA_IDEMPOTENT_LINGER_MS, unset here: it follows KAFKA_LINGER_MS, at
# least 1.

ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------
# build: the same `make` as CI, against Debian's nginx-dev

FROM debian:${DEBIAN_RELEASE}-slim AS build

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
           gcc libc6-dev make \
           nginx-dev libnginx-mod-http-ndk-dev librdkafka-dev libyajl-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY config Makefile ngx_http_kafka_producer_module.c ./
COPY src/ src/
COPY tools/ tools/

RUN make \
    && dpkg-query -W -f '${Version}' nginx > build/nginx.version \
    && echo "built against nginx $(cat build/nginx.version)"

# ---------------------------------------------------------------------------
# runtime: Debian's nginx (the exact version the module was built against),
# ngx_devel_kit, librdkafka1, libyajl2 and the module; nothing else

FROM debian:${DEBIAN_RELEASE}-slim

ARG APP_UID=10101

COPY --from=build /src/build/nginx.version /tmp/nginx.version

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
           "nginx=$(cat /tmp/nginx.version)" libnginx-mod-http-ndk librdkafka1 \
           libyajl2 \
    && rm -rf /var/lib/apt/lists/* /tmp/nginx.version \
    && rm -f /etc/nginx/sites-enabled/default \
    && groupadd --system --gid "${APP_UID}" nginx-kafka \
    && useradd --system --uid "${APP_UID}" --gid nginx-kafka \
           --home-dir /run/nginx-kafka --no-create-home \
           --shell /usr/sbin/nologin nginx-kafka \
    && install -d -o nginx-kafka -g nginx-kafka -m 0750 /run/nginx-kafka \
    && install -d -m 0755 /etc/nginx-kafka /docker-entrypoint.d

COPY --from=build /src/build/ngx_http_kafka_producer_module.so \
     /usr/lib/nginx/modules/
COPY docker/nginx.conf.template /etc/nginx-kafka/nginx.conf.template
COPY html/dashboard/ /usr/share/nginx-kafka/dashboard/
COPY docker/render-conf.sh docker/healthcheck.sh docker/nginx-drain.sh \
     /usr/local/bin/
COPY docker/docker-entrypoint.sh /docker-entrypoint.sh
COPY docker/docker-entrypoint.d/ /docker-entrypoint.d/

# smoke test: the default configuration renders and the module loads
RUN chmod 0644 /usr/lib/nginx/modules/ngx_http_kafka_producer_module.so \
    && mkdir /tmp/smoke \
    && KAFKA_BOOTSTRAP_SERVERS=kafka:9092 /usr/local/bin/render-conf.sh \
           /etc/nginx-kafka/nginx.conf.template /tmp/smoke/nginx.conf \
    && nginx -t -p /tmp/smoke/ -c /tmp/smoke/nginx.conf \
    && rm -rf /tmp/smoke

# the lab's variables and their defaults; KAFKA_BOOTSTRAP_SERVERS is the
# lab's compose name, override it
ENV KAFKA_BOOTSTRAP_SERVERS=kafka:9092 \
    KAFKA_REQUEST_TIMEOUT_MS=1000 \
    KAFKA_DELIVERY_TIMEOUT_MS=120000 \
    KAFKA_RETRY_BACKOFF_MS=100 \
    KAFKA_RETRIES=10 \
    KAFKA_LINGER_MS=0 \
    KAFKA_TOPIC=bhf-transactions \
    NGINX_WORKER_PROCESSES=auto \
    NGINX_RUNTIME_DIR=/run/nginx-kafka

USER ${APP_UID}:${APP_UID}

EXPOSE 8080

# SIGQUIT is nginx's graceful shutdown: workers stop accepting, finish the
# requests in flight and wait for the delivery reports of every accepted
# message (give `docker stop -t` more than the delivery timeout)
STOPSIGNAL SIGQUIT

HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.sh", "8080", "3"]

ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["nginx", "-p", "/run/nginx-kafka/", "-c", "/run/nginx-kafka/nginx.conf", \
     "-g", "daemon off;"]
