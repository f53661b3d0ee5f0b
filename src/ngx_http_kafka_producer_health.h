
/*
 * ngx_http_kafka_producer_module: the health handler.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_HEALTH_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_HEALTH_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


ngx_int_t ngx_http_kafka_producer_health_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_HEALTH_H_INCLUDED_ */
