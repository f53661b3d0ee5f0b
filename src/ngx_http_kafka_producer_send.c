
/*
 * ngx_http_kafka_producer_module: the send handler.
 *
 * POST /api/v1/send?mode=..&eventId=..[&topic=..&sendMode=..&key=..
 * &partition=..]: the handler validates the parameters, writes the JSON
 * envelope and queues it on the worker's producer of that mode, which
 * never blocks.  An async send answers 202 at once with a status record
 * in shared memory; a sync send returns NGX_DONE and is finalized by its
 * delivery report, or by a deadline timer should the report never come.
 */


#include "ngx_http_kafka_producer_send.h"
#include "ngx_http_kafka_producer_request.h"
#include "ngx_http_kafka_producer_status.h"
#include "ngx_http_kafka_producer_json.h"


#define NGX_HTTP_KAFKA_PRODUCER_ARG_MODE       0
#define NGX_HTTP_KAFKA_PRODUCER_ARG_EVENT_ID   1
#define NGX_HTTP_KAFKA_PRODUCER_ARG_TOPIC      2
#define NGX_HTTP_KAFKA_PRODUCER_ARG_SEND_MODE  3
#define NGX_HTTP_KAFKA_PRODUCER_ARG_KEY        4
#define NGX_HTTP_KAFKA_PRODUCER_ARG_PARTITION  5
#define NGX_HTTP_KAFKA_PRODUCER_NARGS          6


static ngx_int_t ngx_http_kafka_producer_unescape(ngx_pool_t *pool,
    ngx_str_t *name, ngx_str_t *value, ngx_str_t *error);
static ngx_int_t ngx_http_kafka_producer_blank(ngx_str_t *s);
static ngx_int_t ngx_http_kafka_producer_check_text(ngx_pool_t *pool,
    ngx_str_t *value, char *name, size_t max, ngx_str_t *error);
static ngx_int_t ngx_http_kafka_producer_envelope(ngx_http_request_t *r,
    ngx_http_kafka_producer_event_t *ev, ngx_str_t *ts, ngx_str_t *value);
static ngx_int_t ngx_http_kafka_producer_accepted(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx, u_char *id);
static ngx_int_t ngx_http_kafka_producer_delivered(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx, u_char *id);


static ngx_str_t  ngx_http_kafka_producer_args[] = {
    ngx_string("mode"),
    ngx_string("eventId"),
    ngx_string("topic"),
    ngx_string("sendMode"),
    ngx_string("key"),
    ngx_string("partition")
};


ngx_str_t  ngx_http_kafka_producer_modes[] = {
    ngx_string("plain"),
    ngx_string("idempotent")
};


ngx_str_t  ngx_http_kafka_producer_send_modes[] = {
    ngx_string("sync"),
    ngx_string("async")
};


static ngx_str_t  ngx_http_kafka_producer_send_allow = ngx_string("POST");


#define ngx_http_kafka_producer_declined(error, pool, fmt, ...)             \
    (error)->data = ngx_pnalloc(pool, NGX_MAX_ERROR_STR);                    \
    if ((error)->data == NULL) {                                             \
        return NGX_ERROR;                                                    \
    }                                                                        \
    (error)->len = ngx_snprintf((error)->data, NGX_MAX_ERROR_STR,            \
                                fmt, __VA_ARGS__) - (error)->data;           \
    return NGX_DECLINED


/*
 * Parses and validates the query string.  Returns NGX_OK with "ev" filled
 * (empty topic and key mean the defaults), NGX_DECLINED with the reason
 * in "error", or NGX_ERROR when memory runs out.
 */

ngx_int_t
ngx_http_kafka_producer_parse_args(ngx_pool_t *pool, ngx_str_t *args,
    ngx_http_kafka_producer_event_t *ev, ngx_str_t *error)
{
    u_char      *p, *last, *end, *eq;
    ngx_int_t    n, rc;
    ngx_str_t    name, value, v[NGX_HTTP_KAFKA_PRODUCER_NARGS];
    ngx_uint_t   i, seen;

    ngx_memzero(v, sizeof(v));
    seen = 0;

    p = args->data;
    last = p + args->len;

    while (p < last) {

        end = ngx_strlchr(p, last, '&');
        if (end == NULL) {
            end = last;
        }

        eq = ngx_strlchr(p, end, '=');

        name.data = p;
        name.len = (eq ? eq : end) - p;

        value.data = eq ? eq + 1 : end;
        value.len = end - value.data;

        p = end + 1;

        for (i = 0; i < NGX_HTTP_KAFKA_PRODUCER_NARGS; i++) {
            if (name.len == ngx_http_kafka_producer_args[i].len
                && ngx_strncasecmp(name.data,
                                   ngx_http_kafka_producer_args[i].data,
                                   name.len)
                   == 0)
            {
                break;
            }
        }

        if (i == NGX_HTTP_KAFKA_PRODUCER_NARGS) {
            /* other parameters are ignored, as the lab's API does */
            continue;
        }

        if (seen & (1 << i)) {
            ngx_http_kafka_producer_declined(error, pool,
                                             "Repeated: %V",
                                             &ngx_http_kafka_producer_args[i]);
        }

        seen |= 1 << i;

        rc = ngx_http_kafka_producer_unescape(pool,
                                              &ngx_http_kafka_producer_args[i],
                                              &value, error);
        if (rc != NGX_OK) {
            return rc;
        }

        v[i] = value;
    }

    /* a parameter given empty is a mistake: omitted, it has a default */

    for (i = NGX_HTTP_KAFKA_PRODUCER_ARG_TOPIC;
         i < NGX_HTTP_KAFKA_PRODUCER_NARGS;
         i++)
    {
        if ((seen & (1 << i)) && v[i].len == 0) {
            ngx_http_kafka_producer_declined(error, pool,
                                             "Invalid: %V is empty, omit it "
                                             "for the default",
                                             &ngx_http_kafka_producer_args[i]);
        }
    }

    /* mode */

    value = v[NGX_HTTP_KAFKA_PRODUCER_ARG_MODE];

    if (ngx_http_kafka_producer_blank(&value)) {
        ngx_str_set(error, "Missing: mode (plain|idempotent)");
        return NGX_DECLINED;
    }

    for (i = 0; i < NGX_HTTP_KAFKA_PRODUCER_NMODES; i++) {
        if (value.len == ngx_http_kafka_producer_modes[i].len
            && ngx_strncasecmp(value.data,
                               ngx_http_kafka_producer_modes[i].data,
                               value.len)
               == 0)
        {
            break;
        }
    }

    if (i == NGX_HTTP_KAFKA_PRODUCER_NMODES) {
        ngx_str_set(error, "Invalid: mode must be plain or idempotent");
        return NGX_DECLINED;
    }

    ev->mode = i;

    /* eventId */

    value = v[NGX_HTTP_KAFKA_PRODUCER_ARG_EVENT_ID];

    if (ngx_http_kafka_producer_blank(&value)) {
        ngx_str_set(error, "Missing: eventId");
        return NGX_DECLINED;
    }

    rc = ngx_http_kafka_producer_check_text(pool, &value, "eventId",
                                      NGX_HTTP_KAFKA_PRODUCER_EVENT_ID_MAX,
                                      error);
    if (rc != NGX_OK) {
        return rc;
    }

    ev->event_id = value;

    /* sendMode */

    value = v[NGX_HTTP_KAFKA_PRODUCER_ARG_SEND_MODE];

    ev->async = 0;

    if (value.len) {
        if (value.len == 4 && ngx_strncasecmp(value.data, (u_char *) "sync", 4)
                              == 0)
        {
            ev->async = 0;

        } else if (value.len == 5
                   && ngx_strncasecmp(value.data, (u_char *) "async", 5)
                      == 0)
        {
            ev->async = 1;

        } else {
            ngx_str_set(error, "Invalid: sendMode must be sync or async");
            return NGX_DECLINED;
        }
    }

    /* topic */

    value = v[NGX_HTTP_KAFKA_PRODUCER_ARG_TOPIC];

    if (value.len && ngx_http_kafka_producer_check_topic(&value) != NGX_OK) {
        ngx_http_kafka_producer_declined(error, pool,
                                "Invalid: topic must be 1 to %d characters "
                                "of a-z, A-Z, 0-9, \".\", \"_\" and \"-\", "
                                "other than \".\" and \"..\"",
                                NGX_HTTP_KAFKA_PRODUCER_TOPIC_MAX);
    }

    ev->topic = value;

    /* key */

    value = v[NGX_HTTP_KAFKA_PRODUCER_ARG_KEY];

    rc = ngx_http_kafka_producer_check_text(pool, &value, "key",
                                            NGX_HTTP_KAFKA_PRODUCER_KEY_MAX,
                                            error);
    if (rc != NGX_OK) {
        return rc;
    }

    ev->key = value;

    /* partition */

    value = v[NGX_HTTP_KAFKA_PRODUCER_ARG_PARTITION];

    ev->partition = RD_KAFKA_PARTITION_UA;

    if (value.len) {

        /* leading zeros do not count against the 10 digits: 007 is 7 */

        while (value.len > 1 && value.data[0] == '0') {
            value.data++;
            value.len--;
        }

        n = (value.len <= 10) ? ngx_atoi(value.data, value.len) : NGX_ERROR;

        if (n == NGX_ERROR || n > 0x7fffffff) {
            ngx_str_set(error,
                        "Invalid: partition must be an integer from 0 to "
                        "2147483647");
            return NGX_DECLINED;
        }

        ev->partition = (int32_t) n;
    }

    ev->offset = -1;

    return NGX_OK;
}


/*
 * Percent-decodes "value" into a new NUL-terminated string, strictly:
 * '+' is a space, a '%' must be followed by two hex digits, and %00 is
 * refused since no field may hold a NUL byte.
 */

static ngx_int_t
ngx_http_kafka_producer_unescape(ngx_pool_t *pool, ngx_str_t *name,
    ngx_str_t *value, ngx_str_t *error)
{
    u_char      *p, *last, *dst, *start;
    ngx_int_t    hi, lo;

    start = ngx_pnalloc(pool, value->len + 1);
    if (start == NULL) {
        return NGX_ERROR;
    }

    dst = start;
    p = value->data;
    last = p + value->len;

    while (p < last) {

        if (*p == '+') {
            *dst++ = ' ';
            p++;
            continue;
        }

        if (*p != '%') {
            *dst++ = *p++;
            continue;
        }

        hi = NGX_ERROR;
        lo = NGX_ERROR;

        if (last - p >= 3) {
            hi = ngx_hextoi(p + 1, 1);
            lo = ngx_hextoi(p + 2, 1);
        }

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            ngx_http_kafka_producer_declined(error, pool,
                                  "Invalid: %V has a malformed "
                                  "percent-encoding", name);
        }

        if (hi == 0 && lo == 0) {
            ngx_http_kafka_producer_declined(error, pool,
                                  "Invalid: %V contains a NUL byte (%%00)",
                                  name);
        }

        *dst++ = (u_char) (hi * 16 + lo);
        p += 3;
    }

    *dst = '\0';

    value->data = start;
    value->len = dst - start;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kafka_producer_blank(ngx_str_t *s)
{
    u_char  c;
    size_t  i;

    /* by index: an absent parameter has no data (NULL + 0 is undefined) */

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (c != ' ' && c != '\t' && c != CR && c != LF) {
            return 0;
        }
    }

    return 1;
}


/* eventId and key: at most "max" bytes of valid UTF-8 */

static ngx_int_t
ngx_http_kafka_producer_check_text(ngx_pool_t *pool, ngx_str_t *value,
    char *name, size_t max, ngx_str_t *error)
{
    if (value->len > max) {
        ngx_http_kafka_producer_declined(error, pool,
                                         "Invalid: %s is longer than %uz "
                                         "bytes", name, max);
    }

    if (ngx_http_kafka_producer_utf8_valid(value->data, value->len)
        != NGX_OK)
    {
        ngx_http_kafka_producer_declined(error, pool,
                                         "Invalid: %s is not valid UTF-8",
                                         name);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_kafka_producer_check_topic(ngx_str_t *topic)
{
    u_char  *p, c;

    if (topic->len > NGX_HTTP_KAFKA_PRODUCER_TOPIC_MAX
        || (topic->len == 1 && topic->data[0] == '.')
        || (topic->len == 2 && topic->data[0] == '.'
            && topic->data[1] == '.'))
    {
        return NGX_ERROR;
    }

    for (p = topic->data; p < topic->data + topic->len; p++) {
        c = *p;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
        {
            continue;
        }

        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * kafka_producer_allowed_topics: a topic is allowed when it equals one of
 * the names or matches one of the regexes; no list allows every topic.
 */

ngx_int_t
ngx_http_kafka_producer_topic_allowed(ngx_array_t *allowed,
    ngx_str_t *topic)
{
    ngx_uint_t                        i;
    ngx_http_kafka_producer_topic_t  *t;

    if (allowed == NULL) {
        return NGX_OK;
    }

    t = allowed->elts;

    for (i = 0; i < allowed->nelts; i++) {

#if (NGX_PCRE)
        if (t[i].regex) {
            if (ngx_regex_exec(t[i].regex, topic, NULL, 0) >= 0) {
                return NGX_OK;
            }

            continue;
        }
#endif

        if (t[i].name.len == topic->len
            && ngx_strncmp(t[i].name.data, topic->data, topic->len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_kafka_producer_send_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_str_t                            error, ts;
    ngx_uint_t                           body;
    ngx_keyval_t                        *h;
    ngx_http_kafka_producer_ctx_t       *ctx;
    ngx_http_kafka_producer_loc_conf_t  *klcf;

    if (!(r->method & NGX_HTTP_POST)) {
        return ngx_http_kafka_producer_not_allowed(r,
                                          &ngx_http_kafka_producer_send_allow);
    }

    body = (r->headers_in.content_length_n > 0 || r->headers_in.chunked);

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    if (body) {
        return ngx_http_kafka_producer_problem(r, NGX_HTTP_BAD_REQUEST, 0,
                                               "Invalid: a request body is "
                                               "not accepted, parameters go "
                                               "in the query string");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_kafka_producer_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* for the metrics: unknown until the parameters say */
    ctx->ev.mode = NGX_CONF_UNSET_UINT;
    ctx->ev.async = NGX_CONF_UNSET_UINT;

    ngx_http_set_ctx(r, ctx, ngx_http_kafka_producer_module);

    rc = ngx_http_kafka_producer_parse_args(r->pool, &r->args, &ctx->ev,
                                            &error);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_kafka_producer_problem(r, NGX_HTTP_BAD_REQUEST, 0,
                                               "%V", &error);
    }

    klcf = ngx_http_get_module_loc_conf(r, ngx_http_kafka_producer_module);

    if (ctx->ev.topic.len == 0) {
        ctx->ev.topic = klcf->topic;
    }

    if (ctx->ev.key.len == 0) {
        ctx->ev.key = ctx->ev.event_id;
    }

    if (ngx_http_kafka_producer_topic_allowed(klcf->allowed_topics,
                                              &ctx->ev.topic)
        != NGX_OK)
    {
        return ngx_http_kafka_producer_problem(r, NGX_HTTP_FORBIDDEN, 0,
                                               "Forbidden: topic \"%V\" is "
                                               "not allowed here",
                                               &ctx->ev.topic);
    }

    /* the lab's record: the JSON envelope and three headers */

    ts.data = ngx_pnalloc(r->pool, NGX_HTTP_KAFKA_PRODUCER_ISO_TIME_LEN);
    if (ts.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ts.len = ngx_http_kafka_producer_iso_time(ts.data) - ts.data;

    if (ngx_http_kafka_producer_envelope(r, &ctx->ev, &ts,
                                         &ctx->record.value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->record.headers = ngx_array_create(r->pool, 3, sizeof(ngx_keyval_t));
    if (ctx->record.headers == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_array_push_n(ctx->record.headers, 3);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&h[0].key, "producer-mode");
    h[0].value = ngx_http_kafka_producer_modes[ctx->ev.mode];
    ngx_str_set(&h[1].key, "send-mode");
    h[1].value = ngx_http_kafka_producer_send_modes[ctx->ev.async];
    ngx_str_set(&h[2].key, "timestamp");
    h[2].value = ts;

    ctx->record.topic = ctx->ev.topic;
    ctx->record.partition = ctx->ev.partition;
    ctx->record.key = ctx->ev.key;

    ctx->content = r->args;
    ctx->delivered = ngx_http_kafka_producer_delivered;
    ctx->accepted = ngx_http_kafka_producer_accepted;

    return ngx_http_kafka_producer_send_record(r, ctx);
}


static ngx_int_t
ngx_http_kafka_producer_envelope(ngx_http_request_t *r,
    ngx_http_kafka_producer_event_t *ev, ngx_str_t *ts, ngx_str_t *value)
{
    ngx_str_t                        api;
    ngx_http_kafka_producer_json_t   f[5], *m;

    ngx_str_set(&api, "nginx");

    m = f;

    ngx_http_kafka_producer_json_str(m, "eventId", &ev->event_id);
    ngx_http_kafka_producer_json_str(m, "mode",
                                   &ngx_http_kafka_producer_modes[ev->mode]);
    ngx_http_kafka_producer_json_str(m, "sendMode",
                                &ngx_http_kafka_producer_send_modes[ev->async]);
    ngx_http_kafka_producer_json_str(m, "api", &api);
    ngx_http_kafka_producer_json_str(m, "ts", ts);

    return ngx_http_kafka_producer_json_object(r->pool, f, m - f, value);
}


static ngx_int_t
ngx_http_kafka_producer_accepted(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx, u_char *id)
{
    ngx_str_t                         request_id, pending;
    ngx_http_kafka_producer_json_t    f[8], *m;
    ngx_http_kafka_producer_event_t  *ev;

    ev = &ctx->ev;

    if (ngx_http_kafka_producer_location(r, id, &request_id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&pending, "PENDING");

    m = f;

    ngx_http_kafka_producer_json_str(m, "requestId", &request_id);
    ngx_http_kafka_producer_json_str(m, "state", &pending);
    ngx_http_kafka_producer_json_str(m, "eventId", &ev->event_id);
    ngx_http_kafka_producer_json_str(m, "mode",
                                   &ngx_http_kafka_producer_modes[ev->mode]);
    ngx_http_kafka_producer_json_str(m, "sendMode",
                                &ngx_http_kafka_producer_send_modes[ev->async]);
    ngx_http_kafka_producer_json_str(m, "topic", &ev->topic);
    ngx_http_kafka_producer_json_str(m, "key", &ev->key);

    if (ev->partition == RD_KAFKA_PARTITION_UA) {
        ngx_http_kafka_producer_json_null(m, "partition");

    } else {
        ngx_http_kafka_producer_json_num(m, "partition", ev->partition);
    }

    return ngx_http_kafka_producer_send_json(r, NGX_HTTP_ACCEPTED, f, m - f);
}


/*
 * Adds "Location: <status_uri>?requestId=<uuid>" for the async record
 * "id" to the answer, and gives the requestId (in r->pool) back.
 */

ngx_int_t
ngx_http_kafka_producer_location(ngx_http_request_t *r, u_char *id,
    ngx_str_t *request_id)
{
    u_char                              *p;
    ngx_table_elt_t                     *h;
    ngx_http_kafka_producer_loc_conf_t  *klcf;

    klcf = ngx_http_get_module_loc_conf(r, ngx_http_kafka_producer_module);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, klcf->status_uri.len + sizeof("?requestId=") - 1
                             + NGX_HTTP_KAFKA_PRODUCER_UUID_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value.data = p;

    p = ngx_cpymem(p, klcf->status_uri.data, klcf->status_uri.len);
    p = ngx_cpymem(p, "?requestId=", sizeof("?requestId=") - 1);

    request_id->data = p;
    p = ngx_http_kafka_producer_status_format_id(p, id);
    request_id->len = p - request_id->data;

    h->value.len = p - h->value.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kafka_producer_delivered(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx, u_char *id)
{
    ngx_http_kafka_producer_json_t    f[7], *m;
    ngx_http_kafka_producer_event_t  *ev;

    ev = &ctx->ev;

    m = f;

    ngx_http_kafka_producer_json_str(m, "eventId", &ev->event_id);
    ngx_http_kafka_producer_json_str(m, "mode",
                                   &ngx_http_kafka_producer_modes[ev->mode]);
    ngx_http_kafka_producer_json_str(m, "sendMode",
                                &ngx_http_kafka_producer_send_modes[ev->async]);
    ngx_http_kafka_producer_json_str(m, "topic", &ev->topic);
    ngx_http_kafka_producer_json_str(m, "key", &ev->key);
    ngx_http_kafka_producer_json_num(m, "partition", ev->partition);
    ngx_http_kafka_producer_json_num(m, "offset", ev->offset);

    return ngx_http_kafka_producer_send_json(r, NGX_HTTP_OK, f, m - f);
}


#if (NGX_HTTP_KAFKA_PRODUCER_FUZZ)

/* the record value, for fuzz/fuzz_kafka_producer.c (only r->pool is used) */

ngx_int_t
ngx_http_kafka_producer_fuzz_envelope(ngx_http_request_t *r,
    ngx_http_kafka_producer_event_t *ev, ngx_str_t *ts, ngx_str_t *value)
{
    return ngx_http_kafka_producer_envelope(r, ev, ts, value);
}

#endif
