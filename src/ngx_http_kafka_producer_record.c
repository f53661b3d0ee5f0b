
/*
 * ngx_http_kafka_producer_module: a request becomes a record.
 *
 * Topic, key, partition, headers and value come from nginx complex values
 * (literal text, variables, or both) evaluated for the request, and the
 * value by default from the request body, whole, whether nginx kept it in
 * memory or in a temporary file.
 */


#include "ngx_http_kafka_producer_record.h"
#include "ngx_http_kafka_producer_send.h"


static ngx_int_t ngx_http_kafka_producer_record_declined(ngx_pool_t *pool,
    ngx_str_t *error, const char *fmt, ...);


ngx_int_t
ngx_http_kafka_producer_record_eval(ngx_http_request_t *r,
    ngx_http_kafka_producer_loc_conf_t *klcf,
    ngx_http_kafka_producer_record_t *rec, ngx_uint_t *status,
    ngx_str_t *error)
{
    u_char                            *p;
    ngx_int_t                          n;
    ngx_str_t                          s;
    ngx_uint_t                         i;
    ngx_keyval_t                      *kv;
    ngx_http_kafka_producer_header_t  *h;

    *status = NGX_HTTP_BAD_REQUEST;

    /* topic */

    if (ngx_http_complex_value(r, klcf->pass, &s) != NGX_OK) {
        return NGX_ERROR;
    }

    if (s.len == 0 || ngx_http_kafka_producer_check_topic(&s) != NGX_OK) {
        return ngx_http_kafka_producer_record_declined(r->pool, error,
                              "Invalid: the topic is not a Kafka topic "
                              "name (1 to %d characters of a-z, A-Z, 0-9, "
                              "\".\", \"_\" and \"-\", other than \".\" and "
                              "\"..\")", NGX_HTTP_KAFKA_PRODUCER_TOPIC_MAX);
    }

    if (ngx_http_kafka_producer_topic_allowed(klcf->allowed_topics, &s)
        != NGX_OK)
    {
        *status = NGX_HTTP_FORBIDDEN;

        return ngx_http_kafka_producer_record_declined(r->pool, error,
                              "Forbidden: topic \"%V\" is not allowed here",
                              &s);
    }

    p = ngx_pnalloc(r->pool, s.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    rec->topic.data = p;
    rec->topic.len = s.len;
    *ngx_cpymem(p, s.data, s.len) = '\0';

    /* key: an empty one is a null key */

    rec->key.data = NULL;
    rec->key.len = 0;

    if (klcf->key) {
        if (ngx_http_complex_value(r, klcf->key, &s) != NGX_OK) {
            return NGX_ERROR;
        }

        if (s.len > NGX_HTTP_KAFKA_PRODUCER_RECORD_KEY_MAX) {
            return ngx_http_kafka_producer_record_declined(r->pool, error,
                              "Invalid: the key is longer than %d bytes",
                              NGX_HTTP_KAFKA_PRODUCER_RECORD_KEY_MAX);
        }

        if (s.len) {
            rec->key = s;
        }
    }

    /* partition: empty, the partitioner decides */

    rec->partition = RD_KAFKA_PARTITION_UA;

    if (klcf->partition) {
        if (ngx_http_complex_value(r, klcf->partition, &s) != NGX_OK) {
            return NGX_ERROR;
        }

        if (s.len) {
            /* leading zeros do not count against the 10 digits */

            while (s.len > 1 && s.data[0] == '0') {
                s.data++;
                s.len--;
            }

            n = (s.len <= 10) ? ngx_atoi(s.data, s.len) : NGX_ERROR;

            if (n == NGX_ERROR || n > 0x7fffffff) {
                return ngx_http_kafka_producer_record_declined(r->pool,
                              error, "Invalid: the partition must be an "
                              "integer from 0 to 2147483647");
            }

            rec->partition = (int32_t) n;
        }
    }

    /* headers: an empty value leaves the header out */

    rec->headers = NULL;

    if (klcf->headers) {
        rec->headers = ngx_array_create(r->pool, klcf->headers->nelts,
                                        sizeof(ngx_keyval_t));
        if (rec->headers == NULL) {
            return NGX_ERROR;
        }

        h = klcf->headers->elts;

        for (i = 0; i < klcf->headers->nelts; i++) {

            if (ngx_http_complex_value(r, &h[i].value, &s) != NGX_OK) {
                return NGX_ERROR;
            }

            if (s.len == 0) {
                continue;
            }

            if (s.len > NGX_HTTP_KAFKA_PRODUCER_HEADER_VALUE_MAX) {
                return ngx_http_kafka_producer_record_declined(r->pool,
                              error, "Invalid: the value of the record "
                              "header \"%V\" is longer than %d bytes",
                              &h[i].name,
                              NGX_HTTP_KAFKA_PRODUCER_HEADER_VALUE_MAX);
            }

            kv = ngx_array_push(rec->headers);
            if (kv == NULL) {
                return NGX_ERROR;
            }

            kv->key = h[i].name;
            kv->value = s;
        }
    }

    /* value: kafka_producer_value, or the body, byte for byte */

    if (klcf->value) {
        if (ngx_http_complex_value(r, klcf->value, &rec->value) != NGX_OK) {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ngx_http_kafka_producer_record_body(r, &rec->value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (rec->value.len == 0) {
        return ngx_http_kafka_producer_record_declined(r->pool, error,
                              "Invalid: the request body is empty "
                              "(\"kafka_producer_value\" produces "
                              "something else than the body)");
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_kafka_producer_record_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    off_t         len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->data = NULL;
    body->len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && ngx_buf_in_memory(cl->buf)) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    len = 0;

    for ( /* void */ ; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            len += b->last - b->pos;

        } else if (b->in_file) {
            len += b->file_last - b->file_pos;
        }

        /* else a special buffer (last_buf of a chunked body): no data */
    }

    p = ngx_pnalloc(r->pool, (size_t) len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        if (!b->in_file) {
            continue;
        }

        /* a temporary file of the body: read it as nginx does elsewhere */

        n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                          b->file_pos);

        if (n != b->file_last - b->file_pos) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "kafka_producer: read %z of %O bytes of the "
                          "request body from \"%V\"", n,
                          b->file_last - b->file_pos, &b->file->name);
            return NGX_ERROR;
        }

        p += n;
    }

    body->len = p - body->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kafka_producer_record_declined(ngx_pool_t *pool, ngx_str_t *error,
    const char *fmt, ...)
{
    va_list  args;

    error->data = ngx_pnalloc(pool, NGX_MAX_ERROR_STR);
    if (error->data == NULL) {
        return NGX_ERROR;
    }

    va_start(args, fmt);
    error->len = ngx_vslprintf(error->data, error->data + NGX_MAX_ERROR_STR,
                               fmt, args)
                 - error->data;
    va_end(args);

    return NGX_DECLINED;
}
