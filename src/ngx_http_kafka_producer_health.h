
/*
 * ngx_http_kafka_producer_module: the health handler.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_HEALTH_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_HEALTH_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


/*
 * The content handler of "kafka_producer_health [detail|ready];": "OK"
 * (liveness, as the lab's GET /health), the JSON detail of this worker's
 * producers, or readiness (200, or 503 problem+json saying why).
 * Returns what a content handler returns.
 */
ngx_int_t ngx_http_kafka_producer_health_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_HEALTH_H_INCLUDED_ */
