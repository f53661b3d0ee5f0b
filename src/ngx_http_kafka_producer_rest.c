
/*
 * ngx_http_kafka_producer_module: kafka_producer_rest.
 *
 * The produce API of Confluent's REST Proxy v2: a batch of records for
 * one topic in one request, one answer entry per record.  The body is
 * parsed whole (rest_json.c) before the first record is produced; each
 * record then becomes a message of the Kafka layer whose handler fills
 * the record's slot in the batch.  The batch lives in the request's pool
 * and is held as request.c holds a sync send: a cleanup detaches every
 * message still in flight (msg->handler = NULL) if the client goes, a
 * deadline timer answers what has not been reported.
 */


#include "ngx_http_kafka_producer_rest.h"
#include "ngx_http_kafka_producer_rest_json.h"
#include "ngx_http_kafka_producer_kafka.h"
#include "ngx_http_kafka_producer_record.h"
#include "ngx_http_kafka_producer_request.h"
#include "ngx_http_kafka_producer_send.h"
#include "ngx_http_kafka_producer_json.h"


/* the deadline of a batch past the delivery timeout, in ms (request.c's) */
#define NGX_HTTP_KAFKA_PRODUCER_REST_DEADLINE_MARGIN  5000


/* what became of one record of the batch */
typedef struct {
    ngx_http_kafka_producer_msg_t    *msg;        /* in flight, or NULL */
    int32_t                           partition;
    int64_t                           offset;
    rd_kafka_resp_err_t               err;
    rd_kafka_msg_status_t             persisted;
    ngx_uint_t                        reason;     /* REASON_NO_REPORT */
    ngx_uint_t                        brokers_down; /* unsigned:1 */
    ngx_uint_t                        done;       /* unsigned:1 */
} ngx_http_kafka_producer_rest_slot_t;


/* one produce request, in its pool */
typedef struct {
    /*
     * first: the module's request context, as the idempotency filters and
     * the metrics log handler read it (no idempotency key here)
     */
    ngx_http_kafka_producer_ctx_t         ctx;

    ngx_http_request_t                   *request;
    ngx_str_t                             topic;      /* NUL-terminated */
    int32_t                               partition;  /* of the path */
    ngx_uint_t                            format;
    ngx_uint_t                            async;      /* unsigned:1 */

    ngx_array_t                          *records;
    ngx_http_kafka_producer_rest_slot_t  *slots;
    ngx_uint_t                            pending;    /* not reported */

    ngx_event_t                           deadline;
    ngx_http_cleanup_pt                  *cleanup;    /* disarmed at the
                                                         answer */
} ngx_http_kafka_producer_rest_ctx_t;


static ngx_int_t ngx_http_kafka_producer_rest_route(ngx_http_request_t *r,
    ngx_http_kafka_producer_rest_ctx_t *ctx, ngx_int_t *rc);
static ngx_int_t ngx_http_kafka_producer_rest_format(ngx_http_request_t *r,
    ngx_uint_t *format);
static void ngx_http_kafka_producer_rest_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_kafka_producer_rest_produce(ngx_http_request_t *r,
    ngx_http_kafka_producer_rest_ctx_t *ctx);
static ngx_int_t ngx_http_kafka_producer_rest_headers(ngx_http_request_t *r,
    ngx_http_kafka_producer_rest_record_t *rr, ngx_array_t *conf,
    ngx_array_t **headers);
static void ngx_http_kafka_producer_rest_report(
    ngx_http_kafka_producer_msg_t *msg, ngx_http_kafka_producer_event_t *ev);
static void ngx_http_kafka_producer_rest_async_report(
    ngx_http_kafka_producer_msg_t *msg, ngx_http_kafka_producer_event_t *ev);
static void ngx_http_kafka_producer_rest_cleanup(void *data);
static void ngx_http_kafka_producer_rest_deadline(ngx_event_t *ev);
static void ngx_http_kafka_producer_rest_finalize(
    ngx_http_kafka_producer_rest_ctx_t *ctx);
static ngx_int_t ngx_http_kafka_producer_rest_answer(ngx_http_request_t *r,
    ngx_http_kafka_producer_rest_ctx_t *ctx);
static ngx_uint_t ngx_http_kafka_producer_rest_entry(
    ngx_http_kafka_producer_rest_slot_t *slot,
    ngx_http_kafka_producer_json_t *f);
static ngx_uint_t ngx_http_kafka_producer_rest_code(
    ngx_http_kafka_producer_rest_slot_t *slot, ngx_uint_t partition_given);
static ngx_int_t ngx_http_kafka_producer_rest_not_queued(
    ngx_http_request_t *r, ngx_http_kafka_producer_rest_ctx_t *ctx,
    ngx_http_kafka_producer_client_t *client, ngx_uint_t first);
static ngx_int_t ngx_http_kafka_producer_rest_problem(ngx_http_request_t *r,
    ngx_uint_t status, ngx_uint_t code, const char *fmt, ...);
static ngx_int_t ngx_http_kafka_producer_rest_problem_x(ngx_http_request_t *r,
    ngx_uint_t status, ngx_uint_t code, time_t retry_after,
    ngx_http_kafka_producer_json_t *extra, ngx_uint_t nextra,
    const char *fmt, ...);
static ngx_int_t ngx_http_kafka_producer_rest_unavailable(
    ngx_http_request_t *r, time_t retry_after, const char *fmt, ...);
static ngx_int_t ngx_http_kafka_producer_rest_problem_v(
    ngx_http_request_t *r, ngx_uint_t status, ngx_uint_t code,
    time_t retry_after, ngx_http_kafka_producer_json_t *extra,
    ngx_uint_t nextra, const char *fmt, va_list args);


static ngx_str_t  ngx_http_kafka_producer_rest_type =
    ngx_string("application/vnd.kafka.v2+json");
static ngx_str_t  ngx_http_kafka_producer_rest_allow = ngx_string("POST");


/* the request Content-Types and their embedded format */
static struct {
    ngx_str_t                         type;
    ngx_uint_t                        format;
} ngx_http_kafka_producer_rest_types[] = {
    { ngx_string("application/vnd.kafka.json.v2+json"),
      NGX_HTTP_KAFKA_PRODUCER_REST_JSON },
    { ngx_string("application/vnd.kafka.binary.v2+json"),
      NGX_HTTP_KAFKA_PRODUCER_REST_BINARY },
    { ngx_string("application/vnd.kafka.text.v2+json"),
      NGX_HTTP_KAFKA_PRODUCER_REST_TEXT },
    { ngx_string("application/vnd.kafka.v2+json"),
      NGX_HTTP_KAFKA_PRODUCER_REST_JSON },
    { ngx_string("application/json"),
      NGX_HTTP_KAFKA_PRODUCER_REST_JSON },
    { ngx_null_string, 0 }
};


ngx_int_t
ngx_http_kafka_producer_rest_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_str_t                            value;
    ngx_uint_t                           format;
    ngx_http_kafka_producer_rest_ctx_t  *ctx;
    ngx_http_kafka_producer_loc_conf_t  *klcf;

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_kafka_producer_not_allowed(r,
                                         &ngx_http_kafka_producer_rest_allow);
    }

    klcf = ngx_http_get_module_loc_conf(r, ngx_http_kafka_producer_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_kafka_producer_rest_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->ctx.ev.mode = klcf->mode;
    ctx->ctx.ev.offset = -1;
    ctx->request = r;

    ngx_http_set_ctx(r, ctx, ngx_http_kafka_producer_module);

    if (ngx_http_kafka_producer_rest_route(r, ctx, &rc) != NGX_OK) {
        return rc;
    }

    if (ngx_http_kafka_producer_rest_format(r, &format) != NGX_OK) {
        return ngx_http_kafka_producer_rest_problem(r,
                                  NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                  NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                  "the Content-Type must be "
                                  "application/vnd.kafka.json.v2+json, "
                                  "application/vnd.kafka.binary.v2+json, "
                                  "application/vnd.kafka.text.v2+json, "
                                  "application/vnd.kafka.v2+json or "
                                  "application/json");
    }

    ctx->format = format;

    if (ngx_http_arg(r, (u_char *) "async", 5, &value) == NGX_OK
        && value.len == 4 && ngx_strncasecmp(value.data, (u_char *) "true", 4)
                             == 0)
    {
        ctx->async = 1;
        ctx->ctx.ev.async = 1;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_kafka_producer_rest_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * {location}/topics/{topic}[/partitions/{partition}] into ctx: NGX_OK, or
 * NGX_DECLINED when r was answered (what the handler returns in *rc)
 */

static ngx_int_t
ngx_http_kafka_producer_rest_route(ngx_http_request_t *r,
    ngx_http_kafka_producer_rest_ctx_t *ctx, ngx_int_t *rc)
{
    u_char                              *p, *last, *slash;
    ngx_int_t                            n;
    ngx_str_t                            topic, part;
    ngx_http_core_loc_conf_t            *clcf;
    ngx_http_kafka_producer_loc_conf_t  *klcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    klcf = ngx_http_get_module_loc_conf(r, ngx_http_kafka_producer_module);

    p = r->uri.data;
    last = r->uri.data + r->uri.len;

#if (NGX_PCRE)
    if (clcf->regex) {
        /* a regex location: from the last "/topics/" of the path on */

        for (p = last - 1; p > r->uri.data; p--) {
            if (*p == '/' && last - p >= 8
                && ngx_strncmp(p, "/topics/", 8) == 0)
            {
                break;
            }
        }

    } else
#endif
    if (r->uri.len >= clcf->name.len
        && ngx_strncmp(r->uri.data, clcf->name.data, clcf->name.len) == 0)
    {
        p += clcf->name.len;
    }

    if (p < last && *p == '/') {
        p++;
    }

    if (last - p < 8 || ngx_strncmp(p, "topics/", 7) != 0) {
        goto not_found;
    }

    p += 7;

    slash = ngx_strlchr(p, last, '/');

    topic.data = p;
    topic.len = (slash ? slash : last) - p;

    ctx->partition = RD_KAFKA_PARTITION_UA;

    if (slash) {
        p = slash + 1;

        if (last - p < 12 || ngx_strncmp(p, "partitions/", 11) != 0) {
            goto not_found;
        }

        part.data = p + 11;
        part.len = last - part.data;

        n = (part.len <= 10) ? ngx_atoi(part.data, part.len) : NGX_ERROR;

        if (n == NGX_ERROR || n > 0x7fffffff) {
            *rc = ngx_http_kafka_producer_rest_problem(r, NGX_HTTP_NOT_FOUND,
                              NGX_HTTP_KAFKA_PRODUCER_REST_PARTITION_NOT_FOUND,
                                  "Partition not found: the partition must "
                                  "be an integer from 0 to 2147483647");
            return NGX_DECLINED;
        }

        ctx->partition = (int32_t) n;
    }

    if (topic.len == 0
        || ngx_http_kafka_producer_check_topic(&topic) != NGX_OK)
    {
        *rc = ngx_http_kafka_producer_rest_problem(r, NGX_HTTP_NOT_FOUND,
                                  NGX_HTTP_KAFKA_PRODUCER_REST_TOPIC_NOT_FOUND,
                                  "Topic not found: the topic is not a Kafka "
                                  "topic name (1 to %d characters of a-z, "
                                  "A-Z, 0-9, \".\", \"_\" and \"-\")",
                                  NGX_HTTP_KAFKA_PRODUCER_TOPIC_MAX);
        return NGX_DECLINED;
    }

    if (ngx_http_kafka_producer_topic_allowed(klcf->allowed_topics, &topic)
        != NGX_OK)
    {
        *rc = ngx_http_kafka_producer_rest_problem(r, NGX_HTTP_FORBIDDEN,
                                  NGX_HTTP_KAFKA_PRODUCER_REST_AUTHORIZATION,
                                  "topic \"%V\" is not allowed here",
                                  &topic);
        return NGX_DECLINED;
    }

    ctx->topic.data = ngx_pnalloc(r->pool, topic.len + 1);
    if (ctx->topic.data == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    ctx->topic.len = topic.len;
    *ngx_cpymem(ctx->topic.data, topic.data, topic.len) = '\0';

    ctx->ctx.ev.topic = ctx->topic;
    ctx->ctx.record.topic = ctx->topic;

    return NGX_OK;

not_found:

    *rc = ngx_http_kafka_producer_rest_problem(r, NGX_HTTP_NOT_FOUND,
                                  NGX_HTTP_NOT_FOUND,
                                  "not a produce URI: POST {location}/topics/"
                                  "{topic} or {location}/topics/{topic}/"
                                  "partitions/{partition}");
    return NGX_DECLINED;
}


/* the media type of Content-Type, parameters (charset) left out */

static ngx_int_t
ngx_http_kafka_producer_rest_format(ngx_http_request_t *r,
    ngx_uint_t *format)
{
    u_char      *p, *last;
    ngx_str_t    type;
    ngx_uint_t   i;

    if (r->headers_in.content_type == NULL) {
        return NGX_DECLINED;
    }

    type = r->headers_in.content_type->value;

    p = type.data;
    last = type.data + type.len;

    while (p < last && *p != ';' && *p != ' ' && *p != '\t') {
        p++;
    }

    type.len = p - type.data;

    for (i = 0; ngx_http_kafka_producer_rest_types[i].type.len; i++) {
        if (type.len == ngx_http_kafka_producer_rest_types[i].type.len
            && ngx_strncasecmp(type.data,
                               ngx_http_kafka_producer_rest_types[i].type.data,
                               type.len)
               == 0)
        {
            *format = ngx_http_kafka_producer_rest_types[i].format;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static void
ngx_http_kafka_producer_rest_body(ngx_http_request_t *r)
{
    ngx_http_kafka_producer_rest_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_kafka_producer_module);

    /*
     * NGX_DONE: the batch holds the request itself, the reference that
     * reading the body took is released
     */

    ngx_http_finalize_request(r, ngx_http_kafka_producer_rest_produce(r, ctx));
}


static ngx_int_t
ngx_http_kafka_producer_rest_produce(ngx_http_request_t *r,
    ngx_http_kafka_producer_rest_ctx_t *ctx)
{
    size_t                                  size;
    time_t                                  retry_after;
    ngx_int_t                               rc;
    ngx_str_t                               body, reason;
    ngx_uint_t                              i, k, queued, first;
    rd_kafka_resp_err_t                     err;
    ngx_http_cleanup_t                     *cln;
    ngx_http_kafka_producer_msg_t          *msg;
    ngx_http_kafka_producer_record_t        rec;
    ngx_http_kafka_producer_client_t       *client;
    ngx_http_kafka_producer_loc_conf_t     *klcf;
    ngx_http_kafka_producer_main_conf_t    *kmcf;
    ngx_http_kafka_producer_rest_slot_t    *slot;
    ngx_http_kafka_producer_rest_error_t    perr;
    ngx_http_kafka_producer_rest_record_t  *rr;

    klcf = ngx_http_get_module_loc_conf(r, ngx_http_kafka_producer_module);
    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kafka_producer_module);

    if (ngx_http_kafka_producer_record_body(r, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the whole body is checked before anything is produced */

    rc = ngx_http_kafka_producer_rest_parse(r->pool, &body, ctx->format,
                                            klcf->rest_max_records,
                                            &ctx->records, &perr);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_kafka_producer_rest_problem(r, perr.status,
                                                    perr.code, "%V",
                                                    &perr.detail);
    }

    client = ngx_http_kafka_producer_client(klcf->mode);

    if (client == NULL) {
        retry_after = ngx_http_kafka_producer_client_unavailable(klcf->mode,
                                                                 &reason);

        return ngx_http_kafka_producer_rest_unavailable(r, retry_after,
                                  "the %s producer is not available: %V",
                                  ngx_http_kafka_producer_mode_names[
                                                                klcf->mode],
                                  &reason);
    }

    rr = ctx->records->elts;

    for (i = 0; i < ctx->records->nelts; i++) {
        /*
         * /partitions/P produces to P, as Confluent's partition endpoint
         * does: a record that names another partition refuses the request
         */

        if (ctx->partition != RD_KAFKA_PARTITION_UA
            && rr[i].partition != RD_KAFKA_PARTITION_UA
            && rr[i].partition != ctx->partition)
        {
            return ngx_http_kafka_producer_rest_problem(r, 422, 422,
                                  "record %ui names partition %D, the "
                                  "path partition %D: nothing was produced",
                                  i, rr[i].partition, ctx->partition);
        }

        size = rr[i].key.len + rr[i].value.len;

        if (size > client->max_bytes) {
            return ngx_http_kafka_producer_rest_problem(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "record %ui is too large: %uz bytes of "
                                  "key and value, the limit is "
                                  "message.max.bytes, %uz bytes; nothing "
                                  "was produced", i, size, client->max_bytes);
        }
    }

    size = ctx->records->nelts * sizeof(ngx_http_kafka_producer_rest_slot_t);

    ctx->slots = ngx_pcalloc(r->pool, size);
    if (ctx->slots == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = NULL;

    if (!ctx->async) {
        cln = ngx_http_cleanup_add(r, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_kafka_producer_rest_cleanup;
        cln->data = ctx;
        ctx->cleanup = &cln->handler;
    }

    /* every record, in order, each with its own message */

    queued = 0;
    first = ctx->records->nelts;

    for (i = 0; i < ctx->records->nelts; i++) {
        slot = &ctx->slots[i];

        rec.topic = ctx->topic;
        rec.partition = (ctx->partition != RD_KAFKA_PARTITION_UA)
                        ? ctx->partition : rr[i].partition;
        rec.key = rr[i].key;
        rec.value = rr[i].value;

        slot->partition = rec.partition;

        if (ngx_http_kafka_producer_rest_headers(r, &rr[i], klcf->headers,
                                                 &rec.headers)
            != NGX_OK)
        {
            goto failed;
        }

        msg = ngx_http_kafka_producer_msg_create(client, r->connection->log);
        if (msg == NULL) {
            goto failed;
        }

        if (ctx->async) {
            msg->handler = ngx_http_kafka_producer_rest_async_report;
            msg->data = NULL;

        } else {
            msg->handler = ngx_http_kafka_producer_rest_report;
            msg->data = ctx;
            ngx_memcpy(msg->opaque, &i, sizeof(ngx_uint_t));
        }

        err = ngx_http_kafka_producer_produce(msg, &rec);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* "msg" is freed, no report will come: the slot is answered */

            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "kafka_producer: cannot queue record %ui of %ui "
                          "for topic \"%V\": %s: %s", i,
                          ctx->records->nelts, &ctx->topic,
                          rd_kafka_err2name(err), rd_kafka_err2str(err));

            slot->err = err;
            slot->persisted = RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
            slot->brokers_down = client->brokers_down;
            slot->done = 1;

            if (first == ctx->records->nelts) {
                first = i;
            }

            if (ctx->async) {
                /*
                 * the records before this one are queued and will be
                 * produced; none after it is: the client resends from
                 * record "first" without duplicates
                 */
                break;
            }

            continue;
        }

        queued++;

        if (!ctx->async) {
            slot->msg = msg;
            ctx->pending++;
        }
    }

    if (ctx->async) {
        if (queued == ctx->records->nelts) {
            return NGX_HTTP_NO_CONTENT;
        }

        return ngx_http_kafka_producer_rest_not_queued(r, ctx, client,
                                                           first);
    }

wait:

    if (ctx->pending == 0) {
        /* nothing in flight: every record failed at once */
        *ctx->cleanup = NULL;
        return ngx_http_kafka_producer_rest_answer(r, ctx);
    }

    /* wait for the delivery reports without blocking the worker */

    ctx->deadline.handler = ngx_http_kafka_producer_rest_deadline;
    ctx->deadline.data = ctx;
    ctx->deadline.log = r->connection->log;

    ngx_add_timer(&ctx->deadline, kmcf->delivery_timeout
                              + NGX_HTTP_KAFKA_PRODUCER_REST_DEADLINE_MARGIN);

    r->main->count++;

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_DONE;

failed:

    if (queued == 0) {
        /* memory ran out before anything was queued: 500, nothing sent */

        if (ctx->cleanup) {
            *ctx->cleanup = NULL;
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * memory ran out at record i: records 0 to i - 1 are queued and will
     * be produced (a 500 would have the client send them twice); records
     * i to n - 1 are not, their slots say so, and the queued ones are
     * awaited as on the normal path
     */

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "kafka_producer: out of memory at record %ui of %ui for "
                  "topic \"%V\": records %ui to %ui are not produced", i,
                  ctx->records->nelts, &ctx->topic, i,
                  ctx->records->nelts - 1);

    for (k = i; k < ctx->records->nelts; k++) {
        slot = &ctx->slots[k];

        slot->err = RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE;
        slot->persisted = RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
        slot->done = 1;
    }

    if (ctx->async) {
        return ngx_http_kafka_producer_rest_not_queued(r, ctx, client, i);
    }

    goto wait;
}


/*
 * The Kafka headers of a record: its own (Strimzi's "headers"), then
 * those of kafka_producer_header (complex values; an empty one is left
 * out, as for kafka_producer_pass).
 */

static ngx_int_t
ngx_http_kafka_producer_rest_headers(ngx_http_request_t *r,
    ngx_http_kafka_producer_rest_record_t *rr, ngx_array_t *conf,
    ngx_array_t **headers)
{
    ngx_str_t                          s;
    ngx_uint_t                         i, n;
    ngx_keyval_t                      *kv;
    ngx_http_kafka_producer_header_t  *h;

    n = (rr->headers ? rr->headers->nelts : 0) + (conf ? conf->nelts : 0);

    if (conf == NULL) {
        *headers = rr->headers;
        return NGX_OK;
    }

    *headers = ngx_array_create(r->pool, n, sizeof(ngx_keyval_t));
    if (*headers == NULL) {
        return NGX_ERROR;
    }

    if (rr->headers) {
        kv = ngx_array_push_n(*headers, rr->headers->nelts);
        if (kv == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(kv, rr->headers->elts,
                   rr->headers->nelts * sizeof(ngx_keyval_t));
    }

    h = conf->elts;

    for (i = 0; i < conf->nelts; i++) {
        if (ngx_http_complex_value(r, &h[i].value, &s) != NGX_OK) {
            return NGX_ERROR;
        }

        if (s.len == 0) {
            continue;
        }

        kv = ngx_array_push(*headers);
        if (kv == NULL) {
            return NGX_ERROR;
        }

        kv->key = h[i].name;
        kv->value = s;
    }

    return NGX_OK;
}


/* the delivery report of one record: its slot; the last one answers */

static void
ngx_http_kafka_producer_rest_report(ngx_http_kafka_producer_msg_t *msg,
    ngx_http_kafka_producer_event_t *ev)
{
    ngx_http_kafka_producer_rest_ctx_t *ctx = msg->data;

    ngx_uint_t                            i;
    ngx_http_kafka_producer_rest_slot_t  *slot;

    /* one report per slot: a late one after an expiry goes nowhere */
    msg->handler = NULL;

    ngx_memcpy(&i, msg->opaque, sizeof(ngx_uint_t));

    slot = &ctx->slots[i];

    slot->msg = NULL;
    slot->done = 1;
    slot->err = ev->err;
    slot->persisted = ev->persisted;
    slot->reason = ev->reason;
    slot->brokers_down = ev->brokers_down;

    if (ev->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        slot->partition = ev->partition;
        slot->offset = ev->offset;
    }

    if (--ctx->pending == 0) {
        ngx_http_kafka_producer_rest_finalize(ctx);
    }
}


/* ?async=true: nobody waits; the Kafka layer has logged a failure */

static void
ngx_http_kafka_producer_rest_async_report(ngx_http_kafka_producer_msg_t *msg,
    ngx_http_kafka_producer_event_t *ev)
{
    return;
}


static void
ngx_http_kafka_producer_rest_cleanup(void *data)
{
    ngx_http_kafka_producer_rest_ctx_t *ctx = data;

    ngx_uint_t  i;

    /* the request goes first: the reports still to come are only logged */

    for (i = 0; i < ctx->records->nelts; i++) {
        if (ctx->slots[i].msg) {
            ctx->slots[i].msg->handler = NULL;
            ctx->slots[i].msg = NULL;
        }
    }

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }
}


static void
ngx_http_kafka_producer_rest_deadline(ngx_event_t *ev)
{
    ngx_http_kafka_producer_rest_ctx_t *ctx = ev->data;

    ngx_uint_t                            i;
    ngx_http_kafka_producer_rest_slot_t  *slot;

    ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                  "kafka_producer: no delivery report for %ui of %ui "
                  "records for topic \"%V\" within the deadline",
                  ctx->pending, ctx->records->nelts, &ctx->topic);

    for (i = 0; i < ctx->records->nelts; i++) {
        slot = &ctx->slots[i];

        if (slot->msg) {
            slot->msg->handler = NULL;
            slot->msg = NULL;
            slot->done = 1;
            slot->err = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
            slot->persisted = RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
            slot->reason = NGX_HTTP_KAFKA_PRODUCER_REASON_NO_REPORT;
        }
    }

    ctx->pending = 0;

    ngx_http_kafka_producer_rest_finalize(ctx);
}


/* from a delivery event or the deadline: answer and finalize */

static void
ngx_http_kafka_producer_rest_finalize(ngx_http_kafka_producer_rest_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    *ctx->cleanup = NULL;

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    rc = ngx_http_kafka_producer_rest_answer(r, ctx);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * 200 {"key_schema_id":null,"value_schema_id":null,"offsets":[...]}: one
 * entry per record in request order, {"partition":P,"offset":O} or
 * {"partition":null,"offset":null,"error_code":C,"error":"..."}
 */

static ngx_int_t
ngx_http_kafka_producer_rest_answer(ngx_http_request_t *r,
    ngx_http_kafka_producer_rest_ctx_t *ctx)
{
    u_char                          *p;
    size_t                           len;
    ngx_str_t                        body;
    ngx_uint_t                       i, n, k;
    ngx_http_kafka_producer_json_t   f[4];

    static char  head[] =
        "{\"key_schema_id\":null,\"value_schema_id\":null,\"offsets\":[";

    n = ctx->records->nelts;

    len = sizeof(head) - 1 + n + sizeof("]}") - 1;

    for (i = 0; i < n; i++) {
        k = ngx_http_kafka_producer_rest_entry(&ctx->slots[i], f);
        len += ngx_http_kafka_producer_json_len(f, k);
    }

    body.data = ngx_pnalloc(r->pool, len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body.data, head, sizeof(head) - 1);

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        k = ngx_http_kafka_producer_rest_entry(&ctx->slots[i], f);
        p = ngx_http_kafka_producer_json_write(p, f, k);
    }

    p = ngx_cpymem(p, "]}", 2);

    body.len = p - body.data;

    return ngx_http_kafka_producer_send_text(r, NGX_HTTP_OK,
                                        &ngx_http_kafka_producer_rest_type,
                                        &body);
}


/* the members of one answer entry in "f" (4 of them); returns how many */

static ngx_uint_t
ngx_http_kafka_producer_rest_entry(ngx_http_kafka_producer_rest_slot_t *slot,
    ngx_http_kafka_producer_json_t *f)
{
    ngx_str_t                        error;
    ngx_http_kafka_producer_json_t  *m;

    m = f;

    if (slot->done && slot->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_http_kafka_producer_json_num(m, "partition", slot->partition);
        ngx_http_kafka_producer_json_num(m, "offset", slot->offset);
        return m - f;
    }

    ngx_http_kafka_producer_json_null(m, "partition");
    ngx_http_kafka_producer_json_null(m, "offset");
    ngx_http_kafka_producer_json_num(m, "error_code",
                     ngx_http_kafka_producer_rest_code(slot,
                                   slot->partition != RD_KAFKA_PARTITION_UA));

    if (slot->reason == NGX_HTTP_KAFKA_PRODUCER_REASON_NO_REPORT) {
        ngx_str_set(&error, "no delivery report within the delivery "
                            "timeout; the record may have been written");

    } else {
        error.data = (u_char *) rd_kafka_err2str(slot->err);
        error.len = ngx_strlen(error.data);
    }

    ngx_http_kafka_producer_json_str(m, "error", &error);

    return m - f;
}


/*
 * Confluent's error_code of a failed record: 40401/40402 for an unknown
 * topic/partition, 40101/40301 for authentication/authorization, 50003
 * for what may succeed if retried (our 503/504), else 50002.
 */

static ngx_uint_t
ngx_http_kafka_producer_rest_code(ngx_http_kafka_producer_rest_slot_t *slot,
    ngx_uint_t partition_given)
{
    ngx_uint_t  status;

    if (slot->reason == NGX_HTTP_KAFKA_PRODUCER_REASON_NO_REPORT) {
        return NGX_HTTP_KAFKA_PRODUCER_REST_KAFKA_RETRIABLE;
    }

    switch (slot->err) {

    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        return NGX_HTTP_KAFKA_PRODUCER_REST_TOPIC_NOT_FOUND;

    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        return NGX_HTTP_KAFKA_PRODUCER_REST_PARTITION_NOT_FOUND;

    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return partition_given
               ? NGX_HTTP_KAFKA_PRODUCER_REST_PARTITION_NOT_FOUND
               : NGX_HTTP_KAFKA_PRODUCER_REST_TOPIC_NOT_FOUND;

    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
        return NGX_HTTP_KAFKA_PRODUCER_REST_AUTHENTICATION;

    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        return NGX_HTTP_KAFKA_PRODUCER_REST_AUTHORIZATION;

    default:
        break;
    }

    status = ngx_http_kafka_producer_error_status(slot->err,
                                                  slot->brokers_down,
                                                  slot->persisted);

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE
        || status == NGX_HTTP_GATEWAY_TIME_OUT)
    {
        return NGX_HTTP_KAFKA_PRODUCER_REST_KAFKA_RETRIABLE;
    }

    return NGX_HTTP_KAFKA_PRODUCER_REST_KAFKA_ERROR;
}


/*
 * ?async=true, record "first" could not be queued (the loop stopped
 * there): records 0 to first - 1 are queued and will be produced, records
 * first to n - 1 are not.  The problem says so in "message" and in the
 * members "queued" (first: how many records, from the first, were queued)
 * and "not_queued" (n - first); the client resends the records from
 * index "queued" on, without duplicates.  A 503 carries the Retry-After
 * of the producer's state.
 */

static ngx_int_t
ngx_http_kafka_producer_rest_not_queued(ngx_http_request_t *r,
    ngx_http_kafka_producer_rest_ctx_t *ctx,
    ngx_http_kafka_producer_client_t *client, ngx_uint_t first)
{
    time_t                                retry_after;
    ngx_uint_t                            n, status, code;
    ngx_http_kafka_producer_json_t        f[2], *m;
    ngx_http_kafka_producer_rest_slot_t  *slot;

    n = ctx->records->nelts;
    slot = &ctx->slots[first];

    status = ngx_http_kafka_producer_error_status(slot->err,
                                                  slot->brokers_down,
                                                  slot->persisted);
    code = ngx_http_kafka_producer_rest_code(slot,
                                   slot->partition != RD_KAFKA_PARTITION_UA);

    if (slot->err == RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE) {
        /* memory ran out at this record (produce()'s "failed" path) */
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    retry_after = (status == NGX_HTTP_SERVICE_UNAVAILABLE)
                  ? ngx_http_kafka_producer_client_retry_after(client,
                                                               slot->err)
                  : 0;

    m = f;

    ngx_http_kafka_producer_json_num(m, "queued", (int64_t) first);
    ngx_http_kafka_producer_json_num(m, "not_queued", (int64_t) (n - first));

    if (first == 0) {
        return ngx_http_kafka_producer_rest_problem_x(r, status, code,
                      retry_after, f, m - f,
                      "no record of %ui was queued (record 0: %s): resend "
                      "from record 0", n, rd_kafka_err2str(slot->err));
    }

    return ngx_http_kafka_producer_rest_problem_x(r, status, code,
                      retry_after, f, m - f,
                      "records 0 to %ui of %ui were queued and will be "
                      "produced, records %ui to %ui were not (record %ui: "
                      "%s): resend from record %ui", first - 1, n, first,
                      n - 1, first, rd_kafka_err2str(slot->err), first);
}


/* problem_v() with variable arguments */

static ngx_int_t
ngx_http_kafka_producer_rest_problem_x(ngx_http_request_t *r,
    ngx_uint_t status, ngx_uint_t code, time_t retry_after,
    ngx_http_kafka_producer_json_t *extra, ngx_uint_t nextra,
    const char *fmt, ...)
{
    ngx_int_t  rc;
    va_list    args;

    va_start(args, fmt);
    rc = ngx_http_kafka_producer_rest_problem_v(r, status, code, retry_after,
                                                extra, nextra, fmt, args);
    va_end(args);

    return rc;
}


/*
 * A refusal of the whole request, nothing produced: RFC 9457 problem+json
 * with Confluent's members "error_code" and "message" as well, so that
 * REST Proxy clients read it as they read REST Proxy's errors.
 */

static ngx_int_t
ngx_http_kafka_producer_rest_problem(ngx_http_request_t *r, ngx_uint_t status,
    ngx_uint_t code, const char *fmt, ...)
{
    ngx_int_t  rc;
    va_list    args;

    va_start(args, fmt);
    rc = ngx_http_kafka_producer_rest_problem_v(r, status, code,
                                   status == NGX_HTTP_SERVICE_UNAVAILABLE,
                                   NULL, 0, fmt, args);
    va_end(args);

    return rc;
}


/* a 503 (50003) with "Retry-After: retry_after" (seconds) */

static ngx_int_t
ngx_http_kafka_producer_rest_unavailable(ngx_http_request_t *r,
    time_t retry_after, const char *fmt, ...)
{
    ngx_int_t  rc;
    va_list    args;

    va_start(args, fmt);
    rc = ngx_http_kafka_producer_rest_problem_v(r,
                                  NGX_HTTP_SERVICE_UNAVAILABLE,
                                  NGX_HTTP_KAFKA_PRODUCER_REST_KAFKA_RETRIABLE,
                                  retry_after, NULL, 0, fmt, args);
    va_end(args);

    return rc;
}


/* "extra": up to 2 more members of the problem, after error_code, message */

static ngx_int_t
ngx_http_kafka_producer_rest_problem_v(ngx_http_request_t *r,
    ngx_uint_t status, ngx_uint_t code, time_t retry_after,
    ngx_http_kafka_producer_json_t *extra, ngx_uint_t nextra, const char *fmt,
    va_list args)
{
    u_char                          buf[NGX_MAX_ERROR_STR], *p;
    ngx_str_t                       detail;
    ngx_uint_t                      i;
    ngx_http_kafka_producer_json_t  f[4], *m;

    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);

    detail.data = buf;
    detail.len = p - buf;

    m = f;

    ngx_http_kafka_producer_json_num(m, "error_code", code);
    ngx_http_kafka_producer_json_str(m, "message", &detail);

    for (i = 0; i < nextra && i < 2; i++) {
        *m++ = extra[i];
    }

    return ngx_http_kafka_producer_problem_extra(r, status, retry_after,
                                                 f, m - f, "%V", &detail);
}
