
/*
 * ngx_http_kafka_producer_module: Prometheus metrics, totals of every
 * worker in shared memory.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_METRICS_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_METRICS_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


#define NGX_HTTP_KAFKA_PRODUCER_HANDLER_SEND  0
#define NGX_HTTP_KAFKA_PRODUCER_HANDLER_PASS  1
#define NGX_HTTP_KAFKA_PRODUCER_HANDLER_REST  2
#define NGX_HTTP_KAFKA_PRODUCER_NHANDLERS     3


/*
 * Configuration: adds the shared memory of the metrics (a zone named
 * "kafka_producer_metrics", sized for "topics" topic names and the
 * workers), once, when the module produces; its counters survive
 * reloads.  NGX_OK or NGX_ERROR.
 */
ngx_int_t ngx_http_kafka_producer_metrics_init_conf(ngx_conf_t *cf,
    ngx_http_kafka_producer_main_conf_t *kmcf);

/*
 * Counting, from any worker, without locks (atomic adds):
 * - request: a request of a producing handler (HANDLER_SEND, _PASS,
 *   _REST) that ended with HTTP "status"; mode and async
 *   NGX_CONF_UNSET_UINT when the request was refused before they were
 *   known;
 * - record: a delivery report of the producer of "mode" for "topic" (the
 *   first "kafka_producer_metrics_topics" topics seen get their own
 *   series, the others count as "_other"; NULL topic: "_other"),
 *   delivered or not, "us" microseconds after it was produced (0: not
 *   measured);
 * - replacement: a fatal-error replacement of a producer;
 * - worker: this worker's gauges of the producer of "mode" (messages in
 *   flight, in librdkafka's queue, brokers up, 1 when usable) and its
 *   retries (requests retried or timed out, from librdkafka's statistics;
 *   a counter of this worker, kept across producer replacements).
 */
void ngx_http_kafka_producer_metrics_request(ngx_uint_t handler,
    ngx_uint_t mode, ngx_uint_t async, ngx_uint_t status);
void ngx_http_kafka_producer_metrics_record(ngx_uint_t mode,
    const char *topic, ngx_uint_t delivered, uint64_t us);
void ngx_http_kafka_producer_metrics_replacement(ngx_uint_t mode);
void ngx_http_kafka_producer_metrics_worker(ngx_uint_t mode,
    ngx_uint_t in_flight, ngx_uint_t queued, ngx_uint_t brokers_up,
    ngx_uint_t up, ngx_uint_t retries);

/* a monotonic clock in microseconds, for the delivery histogram */
uint64_t ngx_http_kafka_producer_metrics_now(void);

/*
 * The content handler of "kafka_producer_metrics;": the Prometheus text
 * exposition format 0.0.4 of every worker's totals.  Returns what a
 * content handler returns.
 */
ngx_int_t ngx_http_kafka_producer_metrics_handler(ngx_http_request_t *r);

/* the log phase handler that counts requests_total */
ngx_int_t ngx_http_kafka_producer_metrics_log(ngx_http_request_t *r);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_METRICS_H_INCLUDED_ */
