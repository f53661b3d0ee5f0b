
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


/*
 * json_len: an upper bound, in bytes, of the object of the "n" members
 * "f" as json_write() writes it: a string counts 6 bytes per byte (the
 * longest escape of ngx_escape_json(), "\u00XX"), a number
 * NGX_INT64_LEN; the members' strings are not scanned.
 *
 * json_write: writes that object at "p" (at least json_len() bytes),
 * strings escaped as ngx_escape_json() does (RFC 8259 section 7), and
 * returns the end of what it wrote.
 *
 * json_object: the same in memory from "pool", set in "json"; NGX_ERROR
 * without memory.
 */
size_t ngx_http_kafka_producer_json_len(ngx_http_kafka_producer_json_t *f,
    ngx_uint_t n);
u_char *ngx_http_kafka_producer_json_write(u_char *p,
    ngx_http_kafka_producer_json_t *f, ngx_uint_t n);
ngx_int_t ngx_http_kafka_producer_json_object(ngx_pool_t *pool,
    ngx_http_kafka_producer_json_t *f, ngx_uint_t n, ngx_str_t *json);

/*
 * utf8_valid: NGX_OK when the "len" bytes at "p" are strict UTF-8 (RFC
 * 3629: no overlong form, no surrogate, nothing past U+10FFFF),
 * NGX_DECLINED otherwise.
 */
ngx_int_t ngx_http_kafka_producer_utf8_valid(u_char *p, size_t len);

/*
 * iso_time: writes nginx's cached time as ISO 8601 UTC with
 * milliseconds ("2026-11-30T16:00:00.000Z",
 * NGX_HTTP_KAFKA_PRODUCER_ISO_TIME_LEN bytes) at "buf"; returns the end.
 */
u_char *ngx_http_kafka_producer_iso_time(u_char *buf);

/*
 * send_json: answers "status" with the object of the "n" members "f" as
 * application/json, from the request pool.  send_text: answers "status"
 * with "body" (not copied: it must live as long as the request, e.g. in
 * r->pool) as Content-Type "type".  Both return what a content handler
 * returns (ngx_http_output_filter()'s result, or an HTTP status on an
 * allocation failure).
 */
ngx_int_t ngx_http_kafka_producer_send_json(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_kafka_producer_json_t *f, ngx_uint_t n);
ngx_int_t ngx_http_kafka_producer_send_text(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_str_t *body);
/*
 * problem: answers "status" with an RFC 9457 problem+json body: type
 * about:blank, title, status, "detail" from fmt (ngx_sprintf() formats),
 * "kafkaError" (librdkafka's error name) unless err is NO_ERROR; a 503
 * gets "Retry-After: 1".  Returns what a content handler returns.
 *
 * problem_kafka: the same for a message that failed, with "persisted"
 * ("no" for RD_KAFKA_MSG_STATUS_NOT_PERSISTED, "possibly" otherwise;
 * NGX_HTTP_KAFKA_PRODUCER_PERSISTED_UNKNOWN leaves it out) and a
 * "Retry-After" of "retry_after" seconds (0: none).
 */
#define NGX_HTTP_KAFKA_PRODUCER_PERSISTED_UNKNOWN  -1

ngx_int_t ngx_http_kafka_producer_problem(ngx_http_request_t *r,
    ngx_uint_t status, rd_kafka_resp_err_t err, const char *fmt, ...);
ngx_int_t ngx_http_kafka_producer_problem_kafka(ngx_http_request_t *r,
    ngx_uint_t status, rd_kafka_resp_err_t err, ngx_int_t persisted,
    time_t retry_after, const char *fmt, ...);

/*
 * problem_extra: a problem as ngx_http_kafka_producer_problem() writes it,
 * with "Retry-After: retry_after" (seconds, 0: none) and up to
 * NGX_HTTP_KAFKA_PRODUCER_PROBLEM_EXTRA members of the caller's after the
 * standard ones (RFC 9457, section 3.2: extension members), e.g. REST
 * Proxy's "error_code" and "message".  Returns what a content handler
 * returns.
 */
#define NGX_HTTP_KAFKA_PRODUCER_PROBLEM_EXTRA  4

ngx_int_t ngx_http_kafka_producer_problem_extra(ngx_http_request_t *r,
    ngx_uint_t status, time_t retry_after,
    ngx_http_kafka_producer_json_t *extra, ngx_uint_t nextra,
    const char *fmt, ...);

/*
 * problem_title: the "title" of a problem document of "status" (its
 * reason phrase, RFC 9110; 494 and the other nginx codes answered 400 are
 * "Bad Request", an unknown one "Internal Server Error"), static memory.
 */
void ngx_http_kafka_producer_problem_title(ngx_uint_t status,
    ngx_str_t *title);

extern ngx_str_t  ngx_http_kafka_producer_persisted[];

/*
 * The content handler of "kafka_producer_problem;", for error_page: the
 * status nginx was about to answer (r->err_status, 500 without one) as
 * problem+json, with a detail for 413 (the client_max_body_size), 414,
 * 494 (answered 400) and 408.  Returns what a content handler returns.
 */
ngx_int_t ngx_http_kafka_producer_problem_handler(ngx_http_request_t *r);


/*
 * log_escape: "src" (a client's bytes) as it may go into the error log,
 * in "dst" (pool memory): control characters, '"' and '\\' escaped as
 * in JSON, at most NGX_HTTP_KAFKA_PRODUCER_LOG_MAX bytes of it then
 * "...".  NGX_ERROR without memory.
 */
#define NGX_HTTP_KAFKA_PRODUCER_LOG_MAX  128

ngx_int_t ngx_http_kafka_producer_log_escape(ngx_pool_t *pool,
    ngx_str_t *src, ngx_str_t *dst);

/*
 * not_allowed: a 405 problem+json with "Allow: <allow>" (RFC 9110
 * section 15.5.6).  Returns what a content handler returns.
 */
ngx_int_t ngx_http_kafka_producer_not_allowed(ngx_http_request_t *r,
    ngx_str_t *allow);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_JSON_H_INCLUDED_ */
