
/*
 * ngx_http_kafka_producer_module: the health handler.
 *
 * GET /health answers "OK" from the worker itself, as the lab's API does:
 * it tells that nginx serves, whatever Kafka is doing.
 *
 * "kafka_producer_health detail;" answers a JSON view of the worker's two
 * producers instead: this worker's counters, and what librdkafka's last
 * statistics tell (brokers known and connected, the idempotent producer's
 * state, producer id and epoch).
 *
 * "kafka_producer_health ready;" is a readiness probe: 200 when each of
 * this worker's producers exists, has no fatal error pending and is
 * connected to at least one broker (librdkafka's statistics), 503 with a
 * problem+json that says why otherwise.
 */


#include "ngx_http_kafka_producer_health.h"
#include "ngx_http_kafka_producer_json.h"
#include "ngx_http_kafka_producer_kafka.h"


static ngx_int_t ngx_http_kafka_producer_health_detail(ngx_http_request_t *r);
static ngx_int_t ngx_http_kafka_producer_health_ready(ngx_http_request_t *r);
static ngx_int_t ngx_http_kafka_producer_health_client(ngx_http_request_t *r,
    ngx_http_kafka_producer_client_t *client, ngx_str_t *json,
    ngx_uint_t *up);


static ngx_str_t  ngx_http_kafka_producer_health_allow =
    ngx_string("GET, HEAD");
static ngx_str_t  ngx_http_kafka_producer_health_type =
    ngx_string("text/plain");
static ngx_str_t  ngx_http_kafka_producer_health_ok = ngx_string("OK");

static ngx_str_t  ngx_http_kafka_producer_health_true = ngx_string("true");
static ngx_str_t  ngx_http_kafka_producer_health_false = ngx_string("false");


ngx_int_t
ngx_http_kafka_producer_health_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_http_kafka_producer_loc_conf_t  *klcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_kafka_producer_not_allowed(r,
                                        &ngx_http_kafka_producer_health_allow);
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    klcf = ngx_http_get_module_loc_conf(r, ngx_http_kafka_producer_module);

    switch (klcf->health) {

    case NGX_HTTP_KAFKA_PRODUCER_HEALTH_DETAIL:
        return ngx_http_kafka_producer_health_detail(r);

    case NGX_HTTP_KAFKA_PRODUCER_HEALTH_READY:
        return ngx_http_kafka_producer_health_ready(r);
    }

    return ngx_http_kafka_producer_send_text(r, NGX_HTTP_OK,
                                        &ngx_http_kafka_producer_health_type,
                                        &ngx_http_kafka_producer_health_ok);
}


static ngx_int_t
ngx_http_kafka_producer_health_detail(ngx_http_request_t *r)
{
    ngx_str_t                          json[NGX_HTTP_KAFKA_PRODUCER_NMODES];
    ngx_str_t                          producers, status;
    ngx_uint_t                         mode, up;
    ngx_http_kafka_producer_json_t     f[NGX_HTTP_KAFKA_PRODUCER_NMODES + 2];
    ngx_http_kafka_producer_json_t    *m;
    ngx_http_kafka_producer_client_t  *client;

    m = f;
    up = 1;

    for (mode = 0; mode < NGX_HTTP_KAFKA_PRODUCER_NMODES; mode++) {
        client = ngx_http_kafka_producer_client_get(mode);

        if (client == NULL) {
            /* not a worker with producers, e.g. no send location */
            up = 0;
            continue;
        }

        if (ngx_http_kafka_producer_health_client(r, client, &json[mode], &up)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_kafka_producer_json_raw(m,
                                     ngx_http_kafka_producer_mode_names[mode],
                                     &json[mode]);
    }

    if (ngx_http_kafka_producer_json_object(r->pool, f, m - f, &producers)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (up) {
        ngx_str_set(&status, "UP");

    } else {
        ngx_str_set(&status, "DEGRADED");
    }

    m = f;

    ngx_http_kafka_producer_json_str(m, "status", &status);
    ngx_http_kafka_producer_json_num(m, "pid", ngx_pid);
    ngx_http_kafka_producer_json_raw(m, "producers", &producers);

    return ngx_http_kafka_producer_send_json(r, NGX_HTTP_OK, f, m - f);
}


static ngx_int_t
ngx_http_kafka_producer_health_ready(ngx_http_request_t *r)
{
    time_t                             retry_after;
    ngx_str_t                          reason, status;
    ngx_uint_t                         mode;
    ngx_http_kafka_producer_json_t     f[2], *m;
    ngx_http_kafka_producer_client_t  *client;

    for (mode = 0; mode < NGX_HTTP_KAFKA_PRODUCER_NMODES; mode++) {
        client = ngx_http_kafka_producer_client_get(mode);

        if (ngx_http_kafka_producer_client(mode) == NULL) {
            retry_after = ngx_http_kafka_producer_client_unavailable(mode,
                                                                   &reason);

            return ngx_http_kafka_producer_problem_kafka(r,
                                  NGX_HTTP_SERVICE_UNAVAILABLE, 0,
                                  NGX_HTTP_KAFKA_PRODUCER_PERSISTED_UNKNOWN,
                                  retry_after,
                                  "not ready: the %s producer is not "
                                  "available: %V",
                                  ngx_http_kafka_producer_mode_names[mode],
                                  &reason);
        }

        if (client->stats_time == 0 || client->brokers_up == 0) {
            retry_after = ngx_http_kafka_producer_client_retry_after(client,
                                  RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN);

            return ngx_http_kafka_producer_problem_kafka(r,
                                  NGX_HTTP_SERVICE_UNAVAILABLE,
                                  client->brokers_down
                                  ? RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN : 0,
                                  NGX_HTTP_KAFKA_PRODUCER_PERSISTED_UNKNOWN,
                                  retry_after,
                                  "not ready: the %s producer %s",
                                  ngx_http_kafka_producer_mode_names[mode],
                                  client->stats_time
                                  ? "is connected to no broker"
                                  : "has no statistics yet "
                                    "(statistics.interval.ms)");
        }
    }

    ngx_str_set(&status, "READY");

    m = f;

    ngx_http_kafka_producer_json_str(m, "status", &status);
    ngx_http_kafka_producer_json_num(m, "pid", ngx_pid);

    return ngx_http_kafka_producer_send_json(r, NGX_HTTP_OK, f, m - f);
}


static ngx_int_t
ngx_http_kafka_producer_health_client(ngx_http_request_t *r,
    ngx_http_kafka_producer_client_t *client, ngx_str_t *json,
    ngx_uint_t *up)
{
    ngx_str_t                        name, state, idemp, *down;
    ngx_http_kafka_producer_json_t   f[24], *m;

    if (client->rk == NULL && client->error.len && client->replaced == 0) {
        ngx_str_set(&state, "UNAVAILABLE");
        *up = 0;

    } else if (client->rk == NULL || client->fatal) {
        ngx_str_set(&state, "REPLACING");
        *up = 0;

    } else if (client->brokers_down) {
        ngx_str_set(&state, "BROKERS_DOWN");
        *up = 0;

    } else {
        ngx_str_set(&state, "UP");
    }

    down = client->brokers_down ? &ngx_http_kafka_producer_health_true
                                : &ngx_http_kafka_producer_health_false;

    m = f;

    if (client->rk) {
        name.data = (u_char *) rd_kafka_name(client->rk);
        name.len = ngx_strlen(name.data);
        ngx_http_kafka_producer_json_str(m, "name", &name);

    } else {
        ngx_http_kafka_producer_json_null(m, "name");
    }

    ngx_http_kafka_producer_json_str(m, "state", &state);
    ngx_http_kafka_producer_json_num(m, "inFlight", client->n);
    ngx_http_kafka_producer_json_num(m, "delivered", client->delivered);
    ngx_http_kafka_producer_json_num(m, "failed", client->failed);
    ngx_http_kafka_producer_json_num(m, "replaced", client->replaced);
    ngx_http_kafka_producer_json_num(m, "detached", client->detached);
    ngx_http_kafka_producer_json_num(m, "expired", client->expired);
    ngx_http_kafka_producer_json_num(m, "lateReports", client->late_reports);
    ngx_http_kafka_producer_json_num(m, "retries",
                                     client->retries + client->retries_now);
    ngx_http_kafka_producer_json_num(m, "lingerMs", client->linger);
    ngx_http_kafka_producer_json_raw(m, "allBrokersDown", down);

    if (client->rk == NULL && client->error.len) {
        ngx_http_kafka_producer_json_str(m, "error", &client->error);
        ngx_http_kafka_producer_json_num(m, "retryInMs",
                                  ngx_max((ngx_msec_int_t) (client->retry_at
                                                        - ngx_current_msec),
                                          0));
    }

    if (client->last_error.len) {
        ngx_http_kafka_producer_json_str(m, "lastError", &client->last_error);
        ngx_http_kafka_producer_json_num(m, "lastErrorAgeMs",
                                  (ngx_msec_int_t) (ngx_current_msec
                                                 - client->last_error_time));
    } else {
        ngx_http_kafka_producer_json_null(m, "lastError");
        ngx_http_kafka_producer_json_null(m, "lastErrorAgeMs");
    }

    if (client->stats_time) {
        ngx_http_kafka_producer_json_num(m, "brokers", client->brokers);
        ngx_http_kafka_producer_json_num(m, "brokersUp", client->brokers_up);
        ngx_http_kafka_producer_json_num(m, "statsAgeMs",
                                  (ngx_msec_int_t) (ngx_current_msec
                                                    - client->stats_time));
    } else {
        ngx_http_kafka_producer_json_null(m, "brokers");
        ngx_http_kafka_producer_json_null(m, "brokersUp");
        ngx_http_kafka_producer_json_null(m, "statsAgeMs");
    }

    if (client->mode == NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENT) {

        if (client->idemp_state.len) {
            ngx_http_kafka_producer_json_str(m, "idempotence",
                                             &client->idemp_state);
        } else {
            ngx_http_kafka_producer_json_null(m, "idempotence");
        }

        if (client->producer_id >= 0) {
            ngx_http_kafka_producer_json_num(m, "producerId",
                                             client->producer_id);
            ngx_http_kafka_producer_json_num(m, "producerEpoch",
                                             client->producer_epoch);
        } else {
            ngx_http_kafka_producer_json_null(m, "producerId");
            ngx_http_kafka_producer_json_null(m, "producerEpoch");
        }

    } else {
        ngx_str_set(&idemp, "disabled");
        ngx_http_kafka_producer_json_str(m, "idempotence", &idemp);
    }

    return ngx_http_kafka_producer_json_object(r->pool, f, m - f, json);
}

