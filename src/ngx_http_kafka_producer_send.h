
/*
 * ngx_http_kafka_producer_module: the send handler.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_SEND_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_SEND_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


ngx_int_t ngx_http_kafka_producer_parse_args(ngx_pool_t *pool,
    ngx_str_t *args, ngx_http_kafka_producer_event_t *ev, ngx_str_t *error);
ngx_int_t ngx_http_kafka_producer_check_topic(ngx_str_t *topic);
ngx_int_t ngx_http_kafka_producer_topic_allowed(ngx_array_t *allowed,
    ngx_str_t *topic);
ngx_int_t ngx_http_kafka_producer_send_handler(ngx_http_request_t *r);
void ngx_http_kafka_producer_send_finish(ngx_http_request_t *r,
    ngx_http_kafka_producer_event_t *ev, ngx_uint_t brokers_down);

#if (NGX_HTTP_KAFKA_PRODUCER_FUZZ)
ngx_int_t ngx_http_kafka_producer_fuzz_envelope(ngx_http_request_t *r,
    ngx_http_kafka_producer_event_t *ev, ngx_str_t *ts, ngx_str_t *value);
#endif


#endif /* _NGX_HTTP_KAFKA_PRODUCER_SEND_H_INCLUDED_ */
