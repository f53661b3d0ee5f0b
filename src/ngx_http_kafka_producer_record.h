
/*
 * ngx_http_kafka_producer_module: a request becomes a record (nginx
 * complex values and the request body), for every handler that produces.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_RECORD_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_RECORD_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


/* limits of what complex values give, in bytes */
#define NGX_HTTP_KAFKA_PRODUCER_RECORD_KEY_MAX     1024
#define NGX_HTTP_KAFKA_PRODUCER_HEADER_VALUE_MAX   8192
#define NGX_HTTP_KAFKA_PRODUCER_HEADER_NAME_MAX    255


/* one "kafka_producer_header NAME VALUE;" */
typedef struct {
    ngx_str_t                         name;
    ngx_http_complex_value_t          value;
} ngx_http_kafka_producer_header_t;


/*
 * Evaluates the location's kafka_producer_pass TOPIC, kafka_producer_key,
 * kafka_producer_partition, kafka_producer_header and kafka_producer_value
 * for r into "rec" (strings in r->pool; the topic NUL-terminated; an
 * empty key is a null key; an empty header value leaves the header out).
 * The value is the request body when kafka_producer_value is not set:
 * the caller has read it (ngx_http_read_client_request_body()).
 * Returns NGX_OK; NGX_DECLINED with an HTTP status (400, 403) in *status
 * and the reason in "error" (r->pool) when the request cannot become a
 * record; NGX_ERROR when memory runs out or the body cannot be read.
 */
ngx_int_t ngx_http_kafka_producer_record_eval(ngx_http_request_t *r,
    ngx_http_kafka_producer_loc_conf_t *klcf,
    ngx_http_kafka_producer_record_t *rec, ngx_uint_t *status,
    ngx_str_t *error);

/*
 * The request body as one piece of memory: the buffer itself when nginx
 * read it into one, else a copy in r->pool of its buffers and of its
 * temporary file (client_body_buffer_size exceeded), read with
 * ngx_read_file().  An absent body is an empty one.  NGX_OK or NGX_ERROR.
 */
ngx_int_t ngx_http_kafka_producer_record_body(ngx_http_request_t *r,
    ngx_str_t *body);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_RECORD_H_INCLUDED_ */
