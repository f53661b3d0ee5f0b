
/*
 * ngx_http_kafka_producer_module: per-worker producers and delivery.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_KAFKA_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_KAFKA_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


/*
 * Configuration time (the master, "nginx -t" and reloads).
 *
 * check_option: NGX_CONF_OK when librdkafka accepts NAME = VALUE (both
 * NUL-terminated), else NGX_CONF_ERROR after an "emerg" with librdkafka's
 * reason; the properties that define the two producers are refused.
 *
 * init_conf: builds kmcf->conf (freed with cf->pool) from the knobs and
 * the options, then creates and destroys both producers exactly as a
 * worker will, as the worker's user ("user" directive) when the master
 * runs as root, so that what librdkafka refuses at creation stops the
 * configuration.  NGX_CONF_OK or NGX_CONF_ERROR.
 *
 * conf_mode: a new rd_kafka_conf_t for the producer of "mode"
 * (NGX_HTTP_KAFKA_PRODUCER_PLAIN: acks=1, no idempotence; _IDEMPOTENT:
 * acks=all, idempotence, at most 5 requests in flight, retries kept), to
 * be given to rd_kafka_new() or rd_kafka_conf_destroy() by the caller;
 * NULL when memory runs out.
 */
char *ngx_http_kafka_producer_check_option(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *value);
char *ngx_http_kafka_producer_init_conf(ngx_conf_t *cf,
    ngx_http_kafka_producer_main_conf_t *kmcf);
rd_kafka_conf_t *ngx_http_kafka_producer_conf_mode(
    ngx_http_kafka_producer_main_conf_t *kmcf, ngx_uint_t mode);

/*
 * Process hooks.  init_clients creates this worker's producers (after
 * fork, as the worker's user); a producer that cannot be created does
 * not stop the worker: it is retried with an exponential backoff (500 ms
 * to 30 s) and its sends answer 503 meanwhile.  NGX_ERROR only when
 * memory for the producers' contexts runs out.  exit_clients purges what
 * is left without waiting for Kafka, answers every waiting client and
 * async record (possibly persisted) and destroys the producers.
 */
ngx_int_t ngx_http_kafka_producer_init_clients(ngx_cycle_t *cycle);
void ngx_http_kafka_producer_exit_clients(ngx_cycle_t *cycle);

/*
 * client: the usable producer of "mode", or NULL while it is being
 * created, retried or replaced after a fatal error.
 * client_get: the producer context of "mode" whatever its state (for the
 * health handler), NULL in a process without producers.
 * client_unavailable: why the producer of "mode" is not usable, in
 * "reason" (static or the client's own memory, valid until the next
 * event), and the seconds until the next attempt, at least 1 (for
 * Retry-After).
 */
ngx_http_kafka_producer_client_t *ngx_http_kafka_producer_client(
    ngx_uint_t mode);
ngx_http_kafka_producer_client_t *ngx_http_kafka_producer_client_get(
    ngx_uint_t mode);
time_t ngx_http_kafka_producer_client_unavailable(ngx_uint_t mode,
    ngx_str_t *reason);

/*
 * client_retry_after: the seconds a client should wait before it sends
 * again to "client" after a 503 caused by "err" (RFC 9110 10.2.3
 * Retry-After), at least 1, computed from the producer's state:
 * - being replaced or retried after a fatal error: until the next attempt;
 * - no broker up (whatever "err", QUEUE_FULL included): how long they
 *   have been down, at most librdkafka's reconnect.backoff.max.ms;
 * - QUEUE_FULL (and a full status zone): librdkafka's queue divided by
 *   the reports per second (a moving average, at least 1), at most the
 *   delivery timeout (every queued message is resolved by then);
 * - no broker up: how long they have been down, at most librdkafka's
 *   reconnect.backoff.max.ms (its reconnect backoff grows up to that);
 * - otherwise 1.
 */
time_t ngx_http_kafka_producer_client_retry_after(
    ngx_http_kafka_producer_client_t *client, rd_kafka_resp_err_t err);

/*
 * msg_create: a delivery context on "client" (owned by the worker,
 * recycled; never in a request pool), counted in flight until its report;
 * the caller sets msg->handler and msg->data.  NULL when memory runs out
 * (logged to "log").
 * produce: queues "rec" (topic NUL-terminated; key data NULL for a null
 * key; headers copied) without blocking.  RD_KAFKA_RESP_ERR_NO_ERROR: the
 * handler will get the delivery report.  Any other value is librdkafka's
 * error; then no report will come and "msg" is already freed.
 * msg_free: recycles a message (the kafka layer does it after the
 * report; callers never need to).
 */
ngx_http_kafka_producer_msg_t *ngx_http_kafka_producer_msg_create(
    ngx_http_kafka_producer_client_t *client, ngx_log_t *log);
void ngx_http_kafka_producer_msg_free(ngx_http_kafka_producer_msg_t *msg);
rd_kafka_resp_err_t ngx_http_kafka_producer_produce(
    ngx_http_kafka_producer_msg_t *msg, ngx_http_kafka_producer_record_t *rec);

extern char  *ngx_http_kafka_producer_mode_names[];


#endif /* _NGX_HTTP_KAFKA_PRODUCER_KAFKA_H_INCLUDED_ */
