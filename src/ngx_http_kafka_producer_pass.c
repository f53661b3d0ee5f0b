
/*
 * ngx_http_kafka_producer_module: kafka_producer_pass.
 *
 * Any location becomes a Kafka producer: the request body (or
 * kafka_producer_value) is the record's value, and topic, key, partition
 * and headers are nginx complex values.  The record takes the same
 * produce path as the lab's send handler.
 */


#include "ngx_http_kafka_producer_pass.h"
#include "ngx_http_kafka_producer_record.h"
#include "ngx_http_kafka_producer_request.h"
#include "ngx_http_kafka_producer_send.h"
#include "ngx_http_kafka_producer_json.h"


static void ngx_http_kafka_producer_pass_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_kafka_producer_pass_record(ngx_http_request_t *r);
static ngx_int_t ngx_http_kafka_producer_pass_delivered(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx, u_char *id);
static ngx_int_t ngx_http_kafka_producer_pass_accepted(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx, u_char *id);


static ngx_str_t  ngx_http_kafka_producer_pass_allow_body =
    ngx_string("POST, PUT, PATCH");
static ngx_str_t  ngx_http_kafka_producer_pass_allow_value =
    ngx_string("GET, HEAD, POST, PUT, PATCH");


ngx_int_t
ngx_http_kafka_producer_pass_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_http_kafka_producer_loc_conf_t  *klcf;

    klcf = ngx_http_get_module_loc_conf(r, ngx_http_kafka_producer_module);

    if (klcf->value) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST
                           |NGX_HTTP_PUT|NGX_HTTP_PATCH)))
        {
            return ngx_http_kafka_producer_not_allowed(r,
                                  &ngx_http_kafka_producer_pass_allow_value);
        }

        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_kafka_producer_pass_record(r);
    }

    if (!(r->method & (NGX_HTTP_POST|NGX_HTTP_PUT|NGX_HTTP_PATCH))) {
        return ngx_http_kafka_producer_not_allowed(r,
                                   &ngx_http_kafka_producer_pass_allow_body);
    }

    /* the body is the value: small ones in one buffer, large in a file */

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_kafka_producer_pass_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_kafka_producer_pass_body(ngx_http_request_t *r)
{
    /*
     * NGX_DONE: a sync send holds the request itself, the reference that
     * reading the body took is released
     */

    ngx_http_finalize_request(r, ngx_http_kafka_producer_pass_record(r));
}


static ngx_int_t
ngx_http_kafka_producer_pass_record(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_str_t                            error;
    ngx_uint_t                           status;
    ngx_http_kafka_producer_ctx_t       *ctx;
    ngx_http_kafka_producer_loc_conf_t  *klcf;

    klcf = ngx_http_get_module_loc_conf(r, ngx_http_kafka_producer_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_kafka_producer_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->ev.mode = klcf->mode;
    ctx->ev.async = klcf->async;

    ngx_http_set_ctx(r, ctx, ngx_http_kafka_producer_module);

    rc = ngx_http_kafka_producer_record_eval(r, klcf, &ctx->record, &status,
                                             &error);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_kafka_producer_problem(r, status, 0, "%V", &error);
    }

    /* what the async status record keeps: the topic and a readable key */

    ctx->ev.mode = klcf->mode;
    ctx->ev.async = klcf->async;
    ctx->ev.topic = ctx->record.topic;
    ctx->ev.partition = ctx->record.partition;
    ctx->ev.offset = -1;

    if (ctx->record.key.len <= NGX_HTTP_KAFKA_PRODUCER_KEY_MAX
        && ngx_http_kafka_producer_utf8_valid(ctx->record.key.data,
                                              ctx->record.key.len)
           == NGX_OK)
    {
        ctx->ev.key = ctx->record.key;
    }

    ctx->content = ctx->record.value;
    ctx->delivered = ngx_http_kafka_producer_pass_delivered;
    ctx->accepted = ngx_http_kafka_producer_pass_accepted;

    return ngx_http_kafka_producer_send_record(r, ctx);
}


static ngx_int_t
ngx_http_kafka_producer_pass_delivered(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx, u_char *id)
{
    ngx_http_kafka_producer_json_t  f[4], *m;

    m = f;

    ngx_http_kafka_producer_json_str(m, "topic", &ctx->record.topic);
    ngx_http_kafka_producer_json_num(m, "partition", ctx->ev.partition);
    ngx_http_kafka_producer_json_num(m, "offset", ctx->ev.offset);

    if (ctx->ev.timestamp >= 0) {
        ngx_http_kafka_producer_json_num(m, "timestamp", ctx->ev.timestamp);

    } else {
        ngx_http_kafka_producer_json_null(m, "timestamp");
    }

    return ngx_http_kafka_producer_send_json(r, NGX_HTTP_OK, f, m - f);
}


static ngx_int_t
ngx_http_kafka_producer_pass_accepted(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx, u_char *id)
{
    ngx_str_t                       request_id, pending;
    ngx_http_kafka_producer_json_t  f[4], *m;

    if (ngx_http_kafka_producer_location(r, id, &request_id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&pending, "PENDING");

    m = f;

    ngx_http_kafka_producer_json_str(m, "requestId", &request_id);
    ngx_http_kafka_producer_json_str(m, "state", &pending);
    ngx_http_kafka_producer_json_str(m, "topic", &ctx->record.topic);

    if (ctx->record.partition == RD_KAFKA_PARTITION_UA) {
        ngx_http_kafka_producer_json_null(m, "partition");

    } else {
        ngx_http_kafka_producer_json_num(m, "partition",
                                         ctx->record.partition);
    }

    return ngx_http_kafka_producer_send_json(r, NGX_HTTP_ACCEPTED, f, m - f);
}
