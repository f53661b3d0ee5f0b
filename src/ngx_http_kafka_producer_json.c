
/*
 * ngx_http_kafka_producer_module: JSON writing and HTTP answers.
 *
 * Every JSON document of the module, the record value written to Kafka
 * as well as the HTTP answers, is an object written here from a list of
 * members, with strings escaped by ngx_escape_json(); a member can hold
 * an object written before (the health detail nests them).
 */


#include "ngx_http_kafka_producer_json.h"


/* type, title, status, detail, kafkaError, persisted and the caller's */
#define NGX_HTTP_KAFKA_PRODUCER_PROBLEM_MEMBERS                              \
    (6 + NGX_HTTP_KAFKA_PRODUCER_PROBLEM_EXTRA)


static ngx_int_t ngx_http_kafka_producer_send_object(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_http_kafka_producer_json_t *f,
    ngx_uint_t n);
static size_t ngx_http_kafka_producer_json_plain(u_char *p, size_t len);
static ngx_int_t ngx_http_kafka_producer_problem_v(ngx_http_request_t *r,
    ngx_uint_t status, rd_kafka_resp_err_t err, ngx_int_t persisted,
    time_t retry_after, ngx_http_kafka_producer_json_t *extra,
    ngx_uint_t nextra, const char *fmt, va_list args);


static ngx_str_t  ngx_http_kafka_producer_json_type =
    ngx_string("application/json");
static ngx_str_t  ngx_http_kafka_producer_problem_type =
    ngx_string("application/problem+json");

/* the "persisted" member: known not written, or maybe written */
ngx_str_t  ngx_http_kafka_producer_persisted[] = {
    ngx_string("no"),
    ngx_string("possibly")
};


size_t
ngx_http_kafka_producer_json_len(ngx_http_kafka_producer_json_t *f,
    ngx_uint_t n)
{
    size_t      len;
    ngx_uint_t  i;

    len = sizeof("{}") - 1;

    for (i = 0; i < n; i++) {
        /* "name": and a comma */
        len += ngx_strlen(f[i].name) + sizeof("\"\":,") - 1;

        switch (f[i].type) {

        case NGX_HTTP_KAFKA_PRODUCER_JSON_STRING:
            /*
             * an upper bound, not scanned: ngx_escape_json() writes at
             * most 6 bytes ("\u00XX") for a byte; the write pass scans
             */
            len += sizeof("\"\"") - 1 + 6 * f[i].str.len;
            break;

        case NGX_HTTP_KAFKA_PRODUCER_JSON_NUMBER:
            len += NGX_INT64_LEN;
            break;

        case NGX_HTTP_KAFKA_PRODUCER_JSON_RAW:
            len += f[i].str.len;
            break;

        default: /* NGX_HTTP_KAFKA_PRODUCER_JSON_NULL */
            len += sizeof("null") - 1;
        }
    }

    return len;
}


u_char *
ngx_http_kafka_producer_json_write(u_char *p,
    ngx_http_kafka_producer_json_t *f, ngx_uint_t n)
{
    size_t      k;
    ngx_uint_t  i;

    *p++ = '{';

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        /* a hot path: no ngx_sprintf() for the name */
        *p++ = '"';
        p = ngx_cpymem(p, f[i].name, ngx_strlen(f[i].name));
        *p++ = '"';
        *p++ = ':';

        switch (f[i].type) {

        case NGX_HTTP_KAFKA_PRODUCER_JSON_STRING:
            *p++ = '"';

            /* copy what needs no escaping, escape from the first byte on */
            k = ngx_http_kafka_producer_json_plain(f[i].str.data,
                                                   f[i].str.len);
            p = ngx_cpymem(p, f[i].str.data, k);

            if (k < f[i].str.len) {
                p = (u_char *) ngx_escape_json(p, f[i].str.data + k,
                                               f[i].str.len - k);
            }

            *p++ = '"';
            break;

        case NGX_HTTP_KAFKA_PRODUCER_JSON_NUMBER:
            p = ngx_sprintf(p, "%L", f[i].num);
            break;

        case NGX_HTTP_KAFKA_PRODUCER_JSON_RAW:
            p = ngx_cpymem(p, f[i].str.data, f[i].str.len);
            break;

        default: /* NGX_HTTP_KAFKA_PRODUCER_JSON_NULL */
            p = ngx_cpymem(p, "null", sizeof("null") - 1);
        }
    }

    *p++ = '}';

    return p;
}


/*
 * The length of the prefix that ngx_escape_json() would copy unchanged:
 * no control character, '"' or '\\'.  Eight bytes at a time: a byte below
 * 0x20, or a zero byte once '"' or '\\' is xor'ed away, sets its high bit
 * in "(w - 0x01..01 * n) & ~w & 0x80..80" (the bit hacks' haszero()), and
 * the last word with a hit is checked byte by byte.
 */

#define ngx_http_kafka_producer_json_below(w, n)                             \
    (((w) - 0x0101010101010101ULL * (n)) & ~(w) & 0x8080808080808080ULL)

static size_t
ngx_http_kafka_producer_json_plain(u_char *p, size_t len)
{
    size_t    i;
    uint64_t  w, q, b;

    for (i = 0; i + 8 <= len; i += 8) {
        ngx_memcpy(&w, p + i, 8);

        q = w ^ (0x0101010101010101ULL * '"');
        b = w ^ (0x0101010101010101ULL * '\\');

        if (ngx_http_kafka_producer_json_below(w, 0x20)
            | ngx_http_kafka_producer_json_below(q, 1)
            | ngx_http_kafka_producer_json_below(b, 1))
        {
            break;
        }
    }

    for ( /* void */ ; i < len; i++) {
        if (p[i] < 0x20 || p[i] == '"' || p[i] == '\\') {
            break;
        }
    }

    return i;
}


/*
 * Strict UTF-8 (RFC 3629): no overlong form, no surrogate, nothing past
 * U+10FFFF, every continuation byte 10xxxxxx.  Not ngx_utf8_decode(): it
 * takes any byte from 0x80 as a continuation byte and lets surrogates and
 * 0xf8-0xff lead bytes through, that is, invalid UTF-8 into the records
 * and the JSON answers.
 */

ngx_int_t
ngx_http_kafka_producer_utf8_valid(u_char *p, size_t len)
{
    u_char  c, lo, hi;
    size_t  i, k, n;

    for (i = 0; i < len; i += n) {
        c = p[i];

        if (c < 0x80) {
            n = 1;
            continue;
        }

        lo = 0x80;
        hi = 0xbf;

        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            lo = (c == 0xe0) ? 0xa0 : 0x80;     /* overlong */
            hi = (c == 0xed) ? 0x9f : 0xbf;     /* surrogates */

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            lo = (c == 0xf0) ? 0x90 : 0x80;     /* overlong */
            hi = (c == 0xf4) ? 0x8f : 0xbf;     /* past U+10FFFF */

        } else {
            return NGX_DECLINED;
        }

        if (len - i < n || p[i + 1] < lo || p[i + 1] > hi) {
            return NGX_DECLINED;
        }

        for (k = 2; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return NGX_DECLINED;
            }
        }
    }

    return NGX_OK;
}


/*
 * The cached time, as ISO 8601 with milliseconds: nginx updates its time
 * once per event loop iteration, and every request served in the same
 * millisecond gets the string formatted once.
 */

u_char *
ngx_http_kafka_producer_iso_time(u_char *buf)
{
    ngx_tm_t     tm;
    ngx_time_t  *tp;

    static time_t      sec = -1;
    static ngx_msec_t  msec;
    static u_char      cached[NGX_HTTP_KAFKA_PRODUCER_ISO_TIME_LEN];

    tp = ngx_timeofday();

    if (tp->sec != sec || tp->msec != msec) {
        ngx_gmtime(tp->sec, &tm);

        (void) ngx_sprintf(cached, "%4d-%02d-%02dT%02d:%02d:%02d.%03MZ",
                           tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                           tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec,
                           tp->msec);
        sec = tp->sec;
        msec = tp->msec;
    }

    return ngx_cpymem(buf, cached, NGX_HTTP_KAFKA_PRODUCER_ISO_TIME_LEN);
}


ngx_int_t
ngx_http_kafka_producer_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_kafka_producer_json_t *f, ngx_uint_t n)
{
    return ngx_http_kafka_producer_send_object(r, status,
                                         &ngx_http_kafka_producer_json_type,
                                         f, n);
}


ngx_int_t
ngx_http_kafka_producer_json_object(ngx_pool_t *pool,
    ngx_http_kafka_producer_json_t *f, ngx_uint_t n, ngx_str_t *json)
{
    json->data = ngx_pnalloc(pool, ngx_http_kafka_producer_json_len(f, n));
    if (json->data == NULL) {
        return NGX_ERROR;
    }

    json->len = ngx_http_kafka_producer_json_write(json->data, f, n)
                - json->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kafka_producer_send_object(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_http_kafka_producer_json_t *f, ngx_uint_t n)
{
    ngx_str_t  body;

    if (ngx_http_kafka_producer_json_object(r->pool, f, n, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_kafka_producer_send_text(r, status, type, &body);
}


ngx_int_t
ngx_http_kafka_producer_send_text(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    /*
     * an answer given before the body was read (a refusal) discards the
     * body, as ngx_http_special_response_handler() does: left unread, its
     * bytes would be parsed as the next request of the connection (request
     * smuggling); a body already read or being discarded is left alone
     */

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = body->len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = body->len ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_kafka_producer_problem(ngx_http_request_t *r, ngx_uint_t status,
    rd_kafka_resp_err_t err, const char *fmt, ...)
{
    ngx_int_t  rc;
    va_list    args;

    va_start(args, fmt);
    rc = ngx_http_kafka_producer_problem_v(r, status, err,
                                  NGX_HTTP_KAFKA_PRODUCER_PERSISTED_UNKNOWN,
                                  status == NGX_HTTP_SERVICE_UNAVAILABLE,
                                  NULL, 0, fmt, args);
    va_end(args);

    return rc;
}


ngx_int_t
ngx_http_kafka_producer_problem_kafka(ngx_http_request_t *r,
    ngx_uint_t status, rd_kafka_resp_err_t err, ngx_int_t persisted,
    time_t retry_after, const char *fmt, ...)
{
    ngx_int_t  rc;
    va_list    args;

    va_start(args, fmt);
    rc = ngx_http_kafka_producer_problem_v(r, status, err, persisted,
                                           retry_after, NULL, 0, fmt, args);
    va_end(args);

    return rc;
}


ngx_int_t
ngx_http_kafka_producer_problem_extra(ngx_http_request_t *r,
    ngx_uint_t status, time_t retry_after,
    ngx_http_kafka_producer_json_t *extra, ngx_uint_t nextra,
    const char *fmt, ...)
{
    ngx_int_t  rc;
    va_list    args;

    va_start(args, fmt);
    rc = ngx_http_kafka_producer_problem_v(r, status, 0,
                                  NGX_HTTP_KAFKA_PRODUCER_PERSISTED_UNKNOWN,
                                  retry_after, extra, nextra, fmt, args);
    va_end(args);

    return rc;
}


static ngx_int_t
ngx_http_kafka_producer_problem_v(ngx_http_request_t *r, ngx_uint_t status,
    rd_kafka_resp_err_t err, ngx_int_t persisted, time_t retry_after,
    ngx_http_kafka_producer_json_t *extra, ngx_uint_t nextra,
    const char *fmt, va_list args)
{
    u_char                           buf[NGX_MAX_ERROR_STR], *p;
    ngx_str_t                        detail, title, name;
    ngx_uint_t                       i;
    ngx_table_elt_t                 *h;
    ngx_http_kafka_producer_json_t  *m;
    ngx_http_kafka_producer_json_t   f[NGX_HTTP_KAFKA_PRODUCER_PROBLEM_MEMBERS];

    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);

    detail.data = buf;
    detail.len = p - buf;

    ngx_http_kafka_producer_problem_title(status, &title);

    if (retry_after > 0) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        h->value.data = p;
        h->value.len = ngx_sprintf(p, "%T", retry_after) - p;
    }

    m = f;

    ngx_str_set(&name, "about:blank");
    ngx_http_kafka_producer_json_str(m, "type", &name);
    ngx_http_kafka_producer_json_str(m, "title", &title);
    ngx_http_kafka_producer_json_num(m, "status", status);
    ngx_http_kafka_producer_json_str(m, "detail", &detail);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        name.data = (u_char *) rd_kafka_err2name(err);
        name.len = ngx_strlen(name.data);
        ngx_http_kafka_producer_json_str(m, "kafkaError", &name);
    }

    if (persisted != NGX_HTTP_KAFKA_PRODUCER_PERSISTED_UNKNOWN) {
        ngx_http_kafka_producer_json_str(m, "persisted",
                    &ngx_http_kafka_producer_persisted[persisted
                          == RD_KAFKA_MSG_STATUS_NOT_PERSISTED ? 0 : 1]);
    }

    for (i = 0; i < nextra && i < NGX_HTTP_KAFKA_PRODUCER_PROBLEM_EXTRA; i++) {
        *m++ = extra[i];
    }

    return ngx_http_kafka_producer_send_object(r, status,
                                      &ngx_http_kafka_producer_problem_type,
                                      f, m - f);
}


/* the title of a problem document: the reason phrase of "status" */

void
ngx_http_kafka_producer_problem_title(ngx_uint_t status, ngx_str_t *title)
{
    switch (status) {
    case NGX_HTTP_BAD_REQUEST:
    case NGX_HTTP_REQUEST_HEADER_TOO_LARGE:
    case NGX_HTTPS_CERT_ERROR:
    case NGX_HTTPS_NO_CERT:
    case NGX_HTTP_TO_HTTPS:
        ngx_str_set(title, "Bad Request");
        break;
    case NGX_HTTP_REQUEST_TIME_OUT:
        ngx_str_set(title, "Request Timeout");
        break;
    case NGX_HTTP_LENGTH_REQUIRED:
        ngx_str_set(title, "Length Required");
        break;
    case NGX_HTTP_REQUEST_URI_TOO_LARGE:
        ngx_str_set(title, "URI Too Long");
        break;
    case NGX_HTTP_UNSUPPORTED_MEDIA_TYPE:
        ngx_str_set(title, "Unsupported Media Type");
        break;
    case NGX_HTTP_NOT_IMPLEMENTED:
        ngx_str_set(title, "Not Implemented");
        break;
    case NGX_HTTP_VERSION_NOT_SUPPORTED:
        ngx_str_set(title, "HTTP Version Not Supported");
        break;
    case NGX_HTTP_TOO_MANY_REQUESTS:
        ngx_str_set(title, "Too Many Requests");
        break;
    case NGX_HTTP_CONFLICT:
        ngx_str_set(title, "Conflict");
        break;
    case 422:
        ngx_str_set(title, "Unprocessable Content");
        break;
    case NGX_HTTP_FORBIDDEN:
        ngx_str_set(title, "Forbidden");
        break;
    case NGX_HTTP_NOT_FOUND:
        ngx_str_set(title, "Not Found");
        break;
    case NGX_HTTP_NOT_ALLOWED:
        ngx_str_set(title, "Method Not Allowed");
        break;
    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        ngx_str_set(title, "Payload Too Large");
        break;
    case NGX_HTTP_BAD_GATEWAY:
        ngx_str_set(title, "Bad Gateway");
        break;
    case NGX_HTTP_SERVICE_UNAVAILABLE:
        ngx_str_set(title, "Service Unavailable");
        break;
    case NGX_HTTP_GATEWAY_TIME_OUT:
        ngx_str_set(title, "Gateway Timeout");
        break;
    default:
        ngx_str_set(title, "Internal Server Error");
    }
}


ngx_int_t
ngx_http_kafka_producer_not_allowed(ngx_http_request_t *r, ngx_str_t *allow)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    h->value = *allow;

    return ngx_http_kafka_producer_problem(r, NGX_HTTP_NOT_ALLOWED, 0,
                                           "method %V is not allowed, "
                                           "use %V", &r->method_name, allow);
}


/*
 * A client's string made safe for the error log: control characters, '"'
 * and '\\' escaped as in JSON (ngx_escape_json(), so that no client can
 * start a line of its own), at most NGX_HTTP_KAFKA_PRODUCER_LOG_MAX bytes
 * of it, "..." after a cut.
 */

ngx_int_t
ngx_http_kafka_producer_log_escape(ngx_pool_t *pool, ngx_str_t *src,
    ngx_str_t *dst)
{
    u_char     *p;
    size_t      len, n;
    ngx_uint_t  cut;

    len = ngx_min(src->len, NGX_HTTP_KAFKA_PRODUCER_LOG_MAX);
    cut = (len < src->len);

    n = len + ngx_escape_json(NULL, src->data, len);

    p = ngx_pnalloc(pool, n + (cut ? sizeof("...") - 1 : 0));
    if (p == NULL) {
        return NGX_ERROR;
    }

    dst->data = p;

    p = (u_char *) ngx_escape_json(p, src->data, len);

    if (cut) {
        p = ngx_cpymem(p, "...", sizeof("...") - 1);
    }

    dst->len = p - dst->data;

    return NGX_OK;
}


/*
 * kafka_producer_problem: the errors nginx itself answers before a
 * handler of ours runs (a body over client_max_body_size, a URI too
 * long, a malformed request), as problem+json, from a location that
 * error_page redirects to: "error_page 413 @problem;".  The status is
 * the one nginx was about to answer (r->err_status).
 */

ngx_int_t
ngx_http_kafka_producer_problem_handler(ngx_http_request_t *r)
{
    ngx_uint_t  status;

    status = r->err_status ? r->err_status : NGX_HTTP_INTERNAL_SERVER_ERROR;

    switch (status) {

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        return ngx_http_kafka_producer_problem(r, status, 0,
                                      "the request body is larger than "
                                      "client_max_body_size");

    case NGX_HTTP_REQUEST_URI_TOO_LARGE:
        return ngx_http_kafka_producer_problem(r, status, 0,
                                      "the request line is longer than "
                                      "large_client_header_buffers");

    case NGX_HTTP_REQUEST_HEADER_TOO_LARGE:
        return ngx_http_kafka_producer_problem(r, NGX_HTTP_BAD_REQUEST, 0,
                                      "a request header is longer than "
                                      "large_client_header_buffers");

    case NGX_HTTP_REQUEST_TIME_OUT:
        return ngx_http_kafka_producer_problem(r, status, 0,
                                      "the request was not received in time "
                                      "(client_body_timeout)");

    default:
        if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
            return ngx_http_kafka_producer_problem(r, status, 0,
                                      "the server could not answer the "
                                      "request");
        }

        return ngx_http_kafka_producer_problem(r, status, 0,
                                      "nginx refused the request (see its "
                                      "error log: a malformed request, a "
                                      "header too large, ...)");
    }
}
