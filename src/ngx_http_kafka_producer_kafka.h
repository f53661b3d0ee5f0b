
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
 * msg_create: a delivery context on "client" (owned by the worker,
 * recycled; never in a request pool), counted in flight until
 * msg_free(); NULL when memory runs out (logged to "log").
 * produce: queues the record ev->topic/partition/key with "value" and
 * the lab's headers (ts: the timestamp header) without blocking;
 * RD_KAFKA_RESP_ERR_NO_ERROR, or librdkafka's error (then no report will
 * come, and the caller frees "msg").
 */
ngx_http_kafka_producer_msg_t *ngx_http_kafka_producer_msg_create(
    ngx_http_kafka_producer_client_t *client, ngx_log_t *log);
void ngx_http_kafka_producer_msg_free(ngx_http_kafka_producer_msg_t *msg);
rd_kafka_resp_err_t ngx_http_kafka_producer_produce(
    ngx_http_kafka_producer_msg_t *msg, ngx_http_kafka_producer_event_t *ev,
    ngx_str_t *value, ngx_str_t *ts);

extern char  *ngx_http_kafka_producer_mode_names[];


/*
 * The HTTP status of a failed message: "err" is librdkafka's error,
 * "brokers_down" whether every broker was down, "persisted" what
 * rd_kafka_message_status() tells.  A 503 (retry) is only ever answered
 * for a message known not to be written; a possibly written one that
 * would get a 503 gets a 504 instead.
 */
ngx_uint_t ngx_http_kafka_producer_error_status(rd_kafka_resp_err_t err,
    ngx_uint_t brokers_down, rd_kafka_msg_status_t persisted);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_KAFKA_H_INCLUDED_ */
