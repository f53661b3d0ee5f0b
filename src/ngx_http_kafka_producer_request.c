
/*
 * ngx_http_kafka_producer_module: holding and answering the requests that
 * produce.
 *
 * A handler turns its request into a record and a context with two
 * answer builders, then calls ngx_http_kafka_producer_send_record(): an
 * async send gets its status record and a 202 at once; a sync send waits
 * for the delivery report without blocking the worker, held the way
 * ngx_http_upstream holds a request, and is finalized from the report or
 * from its deadline.  The Kafka layer calls back through the message's
 * handler; it knows nothing of requests.
 */


#include "ngx_http_kafka_producer_request.h"
#include "ngx_http_kafka_producer_kafka.h"
#include "ngx_http_kafka_producer_status.h"
#include "ngx_http_kafka_producer_json.h"
#include "ngx_http_kafka_producer_idempotency.h"


/* the deadline of a sync send, past the delivery timeout, in ms */
#define NGX_HTTP_KAFKA_PRODUCER_DEADLINE_MARGIN  5000


static void ngx_http_kafka_producer_request_report(
    ngx_http_kafka_producer_msg_t *msg, ngx_http_kafka_producer_event_t *ev);
static void ngx_http_kafka_producer_async_report(
    ngx_http_kafka_producer_msg_t *msg, ngx_http_kafka_producer_event_t *ev);
static void ngx_http_kafka_producer_request_cleanup(void *data);
static void ngx_http_kafka_producer_deadline_handler(ngx_event_t *ev);
static ngx_uint_t ngx_http_kafka_producer_error_map(rd_kafka_resp_err_t err,
    ngx_uint_t brokers_down);


ngx_int_t
ngx_http_kafka_producer_send_record(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx)
{
    time_t                                retry_after;
    ngx_int_t                             rc;
    ngx_str_t                             reason;
    ngx_uint_t                            status;
    rd_kafka_resp_err_t                   err;
    ngx_http_cleanup_t                   *cln;
    ngx_http_kafka_producer_msg_t        *msg;
    ngx_http_kafka_producer_client_t     *client;
    ngx_http_kafka_producer_main_conf_t  *kmcf;
    u_char                                id[NGX_HTTP_KAFKA_PRODUCER_ID_LEN];

    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kafka_producer_module);

    if (ngx_http_kafka_producer_idempotency_begin(r, ctx, &rc) == NGX_DONE) {
        /* a replay, or why the key refuses this request */
        return rc;
    }

    client = ngx_http_kafka_producer_client(ctx->ev.mode);

    if (client == NULL) {
        retry_after = ngx_http_kafka_producer_client_unavailable(ctx->ev.mode,
                                                                 &reason);

        return ngx_http_kafka_producer_problem_kafka(r,
                                  NGX_HTTP_SERVICE_UNAVAILABLE, 0,
                                  RD_KAFKA_MSG_STATUS_NOT_PERSISTED,
                                  retry_after,
                                  "the %s producer is not available: %V",
                                  ngx_http_kafka_producer_mode_names[
                                                                ctx->ev.mode],
                                  &reason);
    }

    cln = NULL;

    if (ctx->ev.async) {
        rc = ngx_http_kafka_producer_status_add(kmcf->shm_zone, id, &ctx->ev,
                                                r->connection->log);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_BUSY) {
            /* pending records end as the queue drains */
            retry_after = ngx_http_kafka_producer_client_retry_after(client,
                                              RD_KAFKA_RESP_ERR__QUEUE_FULL);

            return ngx_http_kafka_producer_problem_kafka(r,
                                  NGX_HTTP_SERVICE_UNAVAILABLE, 0,
                                  RD_KAFKA_MSG_STATUS_NOT_PERSISTED,
                                  retry_after,
                                  "the async status zone is full of "
                                  "pending records");
        }

    } else {
        cln = ngx_http_cleanup_add(r, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    msg = ngx_http_kafka_producer_msg_create(client, r->connection->log);

    if (msg == NULL) {
        if (ctx->ev.async) {
            ngx_http_kafka_producer_status_delete(id);
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->ev.async) {
        msg->handler = ngx_http_kafka_producer_async_report;
        ngx_memcpy(msg->opaque, id, NGX_HTTP_KAFKA_PRODUCER_ID_LEN);

    } else {
        msg->handler = ngx_http_kafka_producer_request_report;
        msg->data = ctx;
    }

    err = ngx_http_kafka_producer_produce(msg, &ctx->record);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {

        /* "msg" is freed: nothing was queued */

        if (ctx->ev.async) {
            ngx_http_kafka_producer_status_delete(id);
        }

        if (ngx_http_kafka_producer_log_escape(r->pool, &ctx->ev.event_id,
                                               &reason)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "kafka_producer: cannot queue a record of %uz bytes "
                      "for topic \"%V\"%s%V%s: %s: %s",
                      ctx->record.value.len, &ctx->record.topic,
                      reason.len ? ", eventId \"" : "", &reason,
                      reason.len ? "\"" : "",
                      rd_kafka_err2name(err), rd_kafka_err2str(err));

        status = ngx_http_kafka_producer_error_status(err,
                                          client->brokers_down,
                                          RD_KAFKA_MSG_STATUS_NOT_PERSISTED);

        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
            return ngx_http_kafka_producer_problem_kafka(r, status, err,
                              RD_KAFKA_MSG_STATUS_NOT_PERSISTED, 0,
                              "the record for topic \"%V\" is too large: "
                              "%uz bytes of value and %uz of key, the "
                              "limit is message.max.bytes, %uz bytes",
                              &ctx->record.topic, ctx->record.value.len,
                              ctx->record.key.len, client->max_bytes);
        }

        retry_after = (status == NGX_HTTP_SERVICE_UNAVAILABLE)
                      ? ngx_http_kafka_producer_client_retry_after(client,
                                                                   err)
                      : 0;

        return ngx_http_kafka_producer_problem_kafka(r, status, err,
                              RD_KAFKA_MSG_STATUS_NOT_PERSISTED, retry_after,
                              "the message could not be queued for "
                              "topic \"%V\": %s", &ctx->record.topic,
                              rd_kafka_err2str(err));
    }

    if (ctx->ev.async) {
        return ctx->accepted(r, ctx, id);
    }

    /* sync: wait for the delivery report without blocking the worker */

    ctx->request = r;
    ctx->msg = msg;

    cln->handler = ngx_http_kafka_producer_request_cleanup;
    cln->data = ctx;
    ctx->cleanup = &cln->handler;

    ctx->deadline.handler = ngx_http_kafka_producer_deadline_handler;
    ctx->deadline.data = ctx;
    ctx->deadline.log = r->connection->log;

    ngx_add_timer(&ctx->deadline, kmcf->delivery_timeout
                                  + NGX_HTTP_KAFKA_PRODUCER_DEADLINE_MARGIN);

    r->main->count++;

    /* notice a client that goes away, as the upstream module does */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_DONE;
}


/* the delivery report of a sync send: answer and finalize the request */

static void
ngx_http_kafka_producer_request_report(ngx_http_kafka_producer_msg_t *msg,
    ngx_http_kafka_producer_event_t *ev)
{
    ngx_http_kafka_producer_ctx_t *ctx = msg->data;

    ngx_int_t            rc;
    ngx_uint_t           status;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    /* one answer per request: a late report after an expiry goes nowhere */
    msg->handler = NULL;

    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    ctx->msg = NULL;
    *ctx->cleanup = NULL;

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    if (ev->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ctx->ev.partition = ev->partition;
        ctx->ev.offset = ev->offset;
        ctx->ev.timestamp = ev->timestamp;

        rc = ctx->delivered(r, ctx, NULL);

    } else if (ev->reason == NGX_HTTP_KAFKA_PRODUCER_REASON_NO_REPORT) {
        rc = ngx_http_kafka_producer_problem_kafka(r,
                              NGX_HTTP_GATEWAY_TIME_OUT, ev->err,
                              ev->persisted, 0,
                              "no delivery report for topic \"%V\" within "
                              "the delivery timeout%s; the record may have "
                              "been written, do not retry without an "
                              "idempotency key", &ctx->record.topic,
                              ev->brokers_down ? " (all brokers are down)"
                                               : "");

    } else {
        status = ngx_http_kafka_producer_error_status(ev->err,
                                                      ev->brokers_down,
                                                      ev->persisted);

        rc = ngx_http_kafka_producer_problem_kafka(r, status, ev->err,
                              ev->persisted,
                              (status == NGX_HTTP_SERVICE_UNAVAILABLE)
                              ? ngx_http_kafka_producer_client_retry_after(
                                                       msg->client, ev->err)
                              : 0,
                              "delivery to topic \"%V\" failed: %s%s%s",
                              &ctx->record.topic, rd_kafka_err2str(ev->err),
                              ev->brokers_down ? " (all brokers are down)"
                                               : "",
                              ev->persisted
                              == RD_KAFKA_MSG_STATUS_NOT_PERSISTED
                              ? "" : "; the record may have been written, "
                                     "do not retry without an idempotency "
                                     "key");
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* the delivery report of an async send: its status record */

static void
ngx_http_kafka_producer_async_report(ngx_http_kafka_producer_msg_t *msg,
    ngx_http_kafka_producer_event_t *ev)
{
    ngx_http_kafka_producer_status_finish(msg->opaque, ev);
}


static void
ngx_http_kafka_producer_request_cleanup(void *data)
{
    ngx_http_kafka_producer_ctx_t *ctx = data;

    if (ctx->msg) {
        /* the request goes first: its delivery report is only logged */
        ctx->msg->handler = NULL;
        ctx->msg = NULL;
    }

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }
}


static void
ngx_http_kafka_producer_deadline_handler(ngx_event_t *ev)
{
    ngx_http_kafka_producer_ctx_t *ctx = ev->data;

    ngx_int_t                             rc;
    ngx_str_t                             id;
    ngx_connection_t                     *c;
    ngx_http_request_t                   *r;
    ngx_http_kafka_producer_main_conf_t  *kmcf;

    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kafka_producer_module);

    if (ctx->msg) {
        ctx->msg->handler = NULL;
        ctx->msg = NULL;
    }

    *ctx->cleanup = NULL;

    if (ngx_http_kafka_producer_log_escape(r->pool, &ctx->ev.event_id, &id)
        != NGX_OK)
    {
        id.len = 0;
    }

    ngx_log_error(NGX_LOG_ERR, c->log, 0,
                  "kafka_producer: no delivery report for a record for "
                  "topic \"%V\"%s%V%s within %M ms", &ctx->record.topic,
                  id.len ? ", eventId \"" : "", &id, id.len ? "\"" : "",
                  kmcf->delivery_timeout
                  + NGX_HTTP_KAFKA_PRODUCER_DEADLINE_MARGIN);

    rc = ngx_http_kafka_producer_problem_kafka(r, NGX_HTTP_GATEWAY_TIME_OUT,
                                      RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
                                      RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED,
                                      0,
                                      "no delivery report for topic \"%V\" "
                                      "within the delivery timeout; the "
                                      "record may have been written",
                                      &ctx->record.topic);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


ngx_uint_t
ngx_http_kafka_producer_error_status(rd_kafka_resp_err_t err,
    ngx_uint_t brokers_down, rd_kafka_msg_status_t persisted)
{
    ngx_uint_t  status;

    status = ngx_http_kafka_producer_error_map(err, brokers_down);

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE
        && persisted != RD_KAFKA_MSG_STATUS_NOT_PERSISTED)
    {
        /* "retry" would write it twice: the outcome is unknown */
        return NGX_HTTP_GATEWAY_TIME_OUT;
    }

    return status;
}


static ngx_uint_t
ngx_http_kafka_producer_error_map(rd_kafka_resp_err_t err,
    ngx_uint_t brokers_down)
{
    switch (err) {

    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return brokers_down ? NGX_HTTP_SERVICE_UNAVAILABLE
                            : NGX_HTTP_GATEWAY_TIME_OUT;

    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return NGX_HTTP_NOT_FOUND;

    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
        return NGX_HTTP_SERVICE_UNAVAILABLE;

    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;

    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return NGX_HTTP_FORBIDDEN;

    default:
        return NGX_HTTP_BAD_GATEWAY;
    }
}
