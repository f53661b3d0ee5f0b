
/*
 * ngx_http_kafka_producer_module: kafka_producer_rest, the produce API of
 * Confluent's REST Proxy v2 (also spoken by Strimzi's Kafka Bridge).
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_REST_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_REST_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


#define NGX_HTTP_KAFKA_PRODUCER_REST_MAX_RECORDS  1000


/*
 * The content handler of "kafka_producer_rest;": POST
 * {location}/topics/{topic}[/partitions/{partition}] with a v2 produce
 * body (ngx_http_kafka_producer_rest_parse()).  The path's partition
 * applies to every record; a record naming another one refuses the
 * request (422).  The whole body is read and checked before anything is
 * produced; then every record is produced
 * without blocking, each with its own message handler that fills its slot
 * of the request's batch, and the answer (200, application/vnd.kafka.v2+json,
 * {"key_schema_id":null,"value_schema_id":null,"offsets":[...]}, one
 * entry per record in request order) goes out when the last delivery
 * report is in, or at the deadline (delivery timeout + 5 s; what has no
 * report then is a 50003 entry).  "?async=true" (Strimzi): 204 once every
 * record is queued, no report awaited; the records are queued in order
 * and queuing stops at the first one refused (e.g. _QUEUE_FULL): the
 * problem (503 + Retry-After of the producer's state, or the status of
 * the error) then has "queued": K and "not_queued": N - K, records 0 to
 * K - 1 are queued and will be produced, records K to N - 1 are not (the
 * client resends from record K, without duplicates).  Refusals are
 * problem+json with Confluent's "error_code" and "message" members: 404,
 * 405, 415, 400, 422, 413, 403, 503.  Returns what a content handler returns.
 */
ngx_int_t ngx_http_kafka_producer_rest_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_REST_H_INCLUDED_ */
