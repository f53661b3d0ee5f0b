
/*
 * ngx_http_kafka_producer_module: JSON writing and HTTP answers.
 *
 * Every JSON document of the module, the record value written to Kafka
 * as well as the HTTP answers, is a flat object written here from a list
 * of members, with strings escaped by ngx_escape_json().
 */


#include "ngx_http_kafka_producer_json.h"


static ngx_int_t ngx_http_kafka_producer_send_object(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_http_kafka_producer_json_t *f,
    ngx_uint_t n);


static ngx_str_t  ngx_http_kafka_producer_json_type =
    ngx_string("application/json");
static ngx_str_t  ngx_http_kafka_producer_problem_type =
    ngx_string("application/problem+json");


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
            len += sizeof("\"\"") - 1 + f[i].str.len
                   + ngx_escape_json(NULL, f[i].str.data, f[i].str.len);
            break;

        case NGX_HTTP_KAFKA_PRODUCER_JSON_NUMBER:
            len += NGX_INT64_LEN;
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
    ngx_uint_t  i;

    *p++ = '{';

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_sprintf(p, "\"%s\":", f[i].name);

        switch (f[i].type) {

        case NGX_HTTP_KAFKA_PRODUCER_JSON_STRING:
            *p++ = '"';
            p = (u_char *) ngx_escape_json(p, f[i].str.data, f[i].str.len);
            *p++ = '"';
            break;

        case NGX_HTTP_KAFKA_PRODUCER_JSON_NUMBER:
            p = ngx_sprintf(p, "%L", f[i].num);
            break;

        default: /* NGX_HTTP_KAFKA_PRODUCER_JSON_NULL */
            p = ngx_cpymem(p, "null", sizeof("null") - 1);
        }
    }

    *p++ = '}';

    return p;
}


ngx_int_t
ngx_http_kafka_producer_utf8_valid(u_char *p, size_t len)
{
    u_char  *last;

    last = p + len;

    while (p < last) {

        if (*p < 0x80) {
            p++;
            continue;
        }

        if (ngx_utf8_decode(&p, last - p) > 0x10ffff) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


u_char *
ngx_http_kafka_producer_iso_time(u_char *buf)
{
    ngx_tm_t     tm;
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    ngx_gmtime(tp->sec, &tm);

    return ngx_sprintf(buf, "%4d-%02d-%02dT%02d:%02d:%02d.%03MZ",
                       tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                       tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec,
                       tp->msec);
}


ngx_int_t
ngx_http_kafka_producer_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_kafka_producer_json_t *f, ngx_uint_t n)
{
    return ngx_http_kafka_producer_send_object(r, status,
                                         &ngx_http_kafka_producer_json_type,
                                         f, n);
}


static ngx_int_t
ngx_http_kafka_producer_send_object(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_http_kafka_producer_json_t *f, ngx_uint_t n)
{
    ngx_str_t  body;

    body.data = ngx_pnalloc(r->pool, ngx_http_kafka_producer_json_len(f, n));
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.len = ngx_http_kafka_producer_json_write(body.data, f, n)
               - body.data;

    return ngx_http_kafka_producer_send_text(r, status, type, &body);
}


ngx_int_t
ngx_http_kafka_producer_send_text(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

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
    u_char                           buf[NGX_MAX_ERROR_STR], *p;
    va_list                          args;
    ngx_str_t                        detail, title, name;
    ngx_table_elt_t                 *h;
    ngx_http_kafka_producer_json_t   f[6], *m;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    detail.data = buf;
    detail.len = p - buf;

    switch (status) {
    case NGX_HTTP_BAD_REQUEST:
        ngx_str_set(&title, "Bad Request");
        break;
    case NGX_HTTP_FORBIDDEN:
        ngx_str_set(&title, "Forbidden");
        break;
    case NGX_HTTP_NOT_FOUND:
        ngx_str_set(&title, "Not Found");
        break;
    case NGX_HTTP_NOT_ALLOWED:
        ngx_str_set(&title, "Method Not Allowed");
        break;
    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        ngx_str_set(&title, "Payload Too Large");
        break;
    case NGX_HTTP_BAD_GATEWAY:
        ngx_str_set(&title, "Bad Gateway");
        break;
    case NGX_HTTP_SERVICE_UNAVAILABLE:
        ngx_str_set(&title, "Service Unavailable");
        break;
    case NGX_HTTP_GATEWAY_TIME_OUT:
        ngx_str_set(&title, "Gateway Timeout");
        break;
    default:
        ngx_str_set(&title, "Internal Server Error");
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        ngx_str_set(&h->value, "1");
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

    return ngx_http_kafka_producer_send_object(r, status,
                                      &ngx_http_kafka_producer_problem_type,
                                      f, m - f);
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
