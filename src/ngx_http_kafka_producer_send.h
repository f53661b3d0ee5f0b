
/*
 * ngx_http_kafka_producer_module: the send handler.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_SEND_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_SEND_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


/*
 * parse_args: the lab's query string "args" (mode, eventId, sendMode,
 * topic, key, partition, ...) into "ev".  Returns NGX_OK (an empty topic
 * or key means the location's default), NGX_DECLINED with the reason for
 * the client in "error" (from "pool"), NGX_ERROR without memory.
 */
ngx_int_t ngx_http_kafka_producer_parse_args(ngx_pool_t *pool,
    ngx_str_t *args, ngx_http_kafka_producer_event_t *ev, ngx_str_t *error);

/*
 * check_topic: NGX_OK when "topic" is a legal Kafka topic name (1 to 249
 * of [a-zA-Z0-9._-], not "." nor "..", as Kafka's Topic.validate()),
 * NGX_ERROR otherwise.
 */
ngx_int_t ngx_http_kafka_producer_check_topic(ngx_str_t *topic);

/*
 * topic_allowed: NGX_OK when "topic" equals a name of
 * kafka_producer_allowed_topics or matches one of its regexes (the
 * array "allowed" of ngx_http_kafka_producer_topic_t; NULL: every
 * topic), NGX_DECLINED otherwise.
 */
ngx_int_t ngx_http_kafka_producer_topic_allowed(ngx_array_t *allowed,
    ngx_str_t *topic);

/*
 * send_handler: the content handler of "kafka_producer_send;", the
 * lab's POST /api/v1/send (README, "The lab's API").  Returns what a
 * content handler returns; NGX_DONE for a sync send that the delivery
 * report or the deadline finalizes.
 */
ngx_int_t ngx_http_kafka_producer_send_handler(ngx_http_request_t *r);

/*
 * location: adds "Location: <kafka_producer_status_uri>?requestId=<uuid>"
 * for the async record "id" (16 bytes) to r's answer and sets
 * "request_id" to the UUID text (in r->pool); NGX_ERROR without memory.
 */
ngx_int_t ngx_http_kafka_producer_location(ngx_http_request_t *r,
    u_char *id, ngx_str_t *request_id);

/* "plain", "idempotent" by mode; "sync", "async" by ev->async */
extern ngx_str_t  ngx_http_kafka_producer_modes[];
extern ngx_str_t  ngx_http_kafka_producer_send_modes[];

#if (NGX_HTTP_KAFKA_PRODUCER_FUZZ)
ngx_int_t ngx_http_kafka_producer_fuzz_envelope(ngx_http_request_t *r,
    ngx_http_kafka_producer_event_t *ev, ngx_str_t *ts, ngx_str_t *value);
#endif


#endif /* _NGX_HTTP_KAFKA_PRODUCER_SEND_H_INCLUDED_ */
