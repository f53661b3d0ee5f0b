
/*
 * ngx_http_kafka_producer_module: JSON writing and HTTP answers.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_JSON_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_JSON_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


#define NGX_HTTP_KAFKA_PRODUCER_JSON_STRING  0
#define NGX_HTTP_KAFKA_PRODUCER_JSON_NUMBER  1
#define NGX_HTTP_KAFKA_PRODUCER_JSON_NULL    2
#define NGX_HTTP_KAFKA_PRODUCER_JSON_RAW     3    /* JSON text, as is */


/* one member of a JSON object */
typedef struct {
    char                             *name;
    ngx_uint_t                        type;
    ngx_str_t                         str;
    int64_t                           num;
} ngx_http_kafka_producer_json_t;


#define ngx_http_kafka_producer_json_str(f, n, s)                            \
    (f)->name = n; (f)->type = NGX_HTTP_KAFKA_PRODUCER_JSON_STRING;           \
    (f)->str = *(s); (f)++

#define ngx_http_kafka_producer_json_num(f, n, v)                            \
    (f)->name = n; (f)->type = NGX_HTTP_KAFKA_PRODUCER_JSON_NUMBER;           \
    (f)->num = v; (f)++

#define ngx_http_kafka_producer_json_null(f, n)                              \
    (f)->name = n; (f)->type = NGX_HTTP_KAFKA_PRODUCER_JSON_NULL; (f)++

#define ngx_http_kafka_producer_json_raw(f, n, s)                            \
    (f)->name = n; (f)->type = NGX_HTTP_KAFKA_PRODUCER_JSON_RAW;              \
    (f)->str = *(s); (f)++


size_t ngx_http_kafka_producer_json_len(ngx_http_kafka_producer_json_t *f,
    ngx_uint_t n);
u_char *ngx_http_kafka_producer_json_write(u_char *p,
    ngx_http_kafka_producer_json_t *f, ngx_uint_t n);
ngx_int_t ngx_http_kafka_producer_json_object(ngx_pool_t *pool,
    ngx_http_kafka_producer_json_t *f, ngx_uint_t n, ngx_str_t *json);
ngx_int_t ngx_http_kafka_producer_utf8_valid(u_char *p, size_t len);
u_char *ngx_http_kafka_producer_iso_time(u_char *buf);

ngx_int_t ngx_http_kafka_producer_send_json(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_kafka_producer_json_t *f, ngx_uint_t n);
ngx_int_t ngx_http_kafka_producer_send_text(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_str_t *body);
ngx_int_t ngx_http_kafka_producer_problem(ngx_http_request_t *r,
    ngx_uint_t status, rd_kafka_resp_err_t err, const char *fmt, ...);
ngx_int_t ngx_http_kafka_producer_not_allowed(ngx_http_request_t *r,
    ngx_str_t *allow);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_JSON_H_INCLUDED_ */
