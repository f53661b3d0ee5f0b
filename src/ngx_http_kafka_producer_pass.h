
/*
 * ngx_http_kafka_producer_module: kafka_producer_pass, any location to
 * Kafka.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_PASS_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_PASS_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


/*
 * The content handler of "kafka_producer_pass TOPIC;": the request
 * becomes one record (ngx_http_kafka_producer_record_eval()); without
 * kafka_producer_value the body is read first (POST, PUT, PATCH; other
 * methods get 405), with it GET and HEAD are accepted too.  Sync: 200
 * {"topic","partition","offset","timestamp"} after the delivery report;
 * async: 202 with Location and {"requestId","state","topic",
 * "partition"}.  Returns what a content handler returns.
 */
ngx_int_t ngx_http_kafka_producer_pass_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_PASS_H_INCLUDED_ */
