
/*
 * ngx_http_kafka_producer_module: the body of a REST Proxy v2 produce
 * request, parsed with YAJL (libyajl, Debian's libyajl-dev).
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_REST_JSON_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_REST_JSON_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


/* the embedded formats of the v2 API: how "key" and "value" are written */
#define NGX_HTTP_KAFKA_PRODUCER_REST_JSON     0  /* any JSON, produced as
                                                    its text */
#define NGX_HTTP_KAFKA_PRODUCER_REST_BINARY   1  /* a base64 string */
#define NGX_HTTP_KAFKA_PRODUCER_REST_TEXT     2  /* a string (Strimzi) */

/* nesting of the whole body: { "records": [ { "value": ... } ] } is 3 */
#define NGX_HTTP_KAFKA_PRODUCER_REST_DEPTH    64

/* Confluent REST Proxy's error codes (io.confluent.kafkarest.Errors) */
#define NGX_HTTP_KAFKA_PRODUCER_REST_TOPIC_NOT_FOUND      40401
#define NGX_HTTP_KAFKA_PRODUCER_REST_PARTITION_NOT_FOUND  40402
#define NGX_HTTP_KAFKA_PRODUCER_REST_CONVERSION           42203
#define NGX_HTTP_KAFKA_PRODUCER_REST_KAFKA_ERROR          50002
#define NGX_HTTP_KAFKA_PRODUCER_REST_KAFKA_RETRIABLE      50003
#define NGX_HTTP_KAFKA_PRODUCER_REST_AUTHENTICATION       40101
#define NGX_HTTP_KAFKA_PRODUCER_REST_AUTHORIZATION        40301


/* one record of the body */
typedef struct {
    ngx_str_t                         key;        /* data NULL: null */
    ngx_str_t                         value;      /* data NULL: null */
    int32_t                           partition;  /* RD_KAFKA_PARTITION_UA:
                                                     not given */
    ngx_array_t                      *headers;    /* of ngx_keyval_t, a
                                                     value's data NULL for
                                                     null; or NULL */
} ngx_http_kafka_producer_rest_record_t;


/* why a body is refused whole */
typedef struct {
    ngx_uint_t                        status;     /* 400 or 422 */
    ngx_uint_t                        code;       /* Confluent error_code */
    ngx_str_t                         detail;     /* in the pool */
} ngx_http_kafka_producer_rest_error_t;


/*
 * Parses "body", the whole request body, as
 * {"records":[{"key":K,"value":V,"partition":P,"headers":[{"key":S,
 * "value":B64}]}...]} (other members are ignored, as REST Proxy ignores
 * the schema members in the json and binary formats) into "records" (an
 * array of ngx_http_kafka_producer_rest_record_t, created here).  K and V
 * are written as "format" says: JSON text (the value as compact JSON,
 * numbers as they were written), base64 (RFC 4648 strictly: a length
 * that is a multiple of 4, '=' only as the last one or two characters,
 * then ngx_decode_base64; header values too), or a string; null or
 * absent is a null key or value.
 *
 * Everything is allocated from "pool", YAJL's own buffers too (nothing to
 * free on any path).  Nothing is produced by this function: the caller
 * produces only when the whole body was accepted.
 *
 * Returns NGX_OK; NGX_DECLINED with the reason in "err": 400 for what is
 * not JSON (syntax, invalid UTF-8 (RFC 3629), a lone UTF-16 surrogate
 * escape such as "\ud800" (found by a pre-scan of the raw body: YAJL 2.1
 * would make it '?'), nesting deeper than
 * NGX_HTTP_KAFKA_PRODUCER_REST_DEPTH, a member name twice in one object
 * (RFC 8259, section 4: "SHOULD be unique"; we refuse)), 422 for JSON that
 * is not a produce request (no or an empty "records", more records than
 * "max_records", a key or value of the wrong type or invalid base64:
 * Confluent's 42203, a partition that is not an integer from 0 to
 * 2147483647, malformed headers); NGX_ERROR when memory runs out.
 */
ngx_int_t ngx_http_kafka_producer_rest_parse(ngx_pool_t *pool,
    ngx_str_t *body, ngx_uint_t format, ngx_uint_t max_records,
    ngx_array_t **records, ngx_http_kafka_producer_rest_error_t *err);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_REST_JSON_H_INCLUDED_ */
