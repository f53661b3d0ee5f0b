
/*
 * ngx_http_kafka_producer_module: HTTP idempotency keys, after the IETF
 * draft-ietf-httpapi-idempotency-key-header, in a shared memory zone.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENCY_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENCY_H_INCLUDED_


#include "ngx_http_kafka_producer.h"
#include "ngx_http_kafka_producer_request.h"


/* the longest idempotency key accepted, in bytes */
#define NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENCY_KEY_MAX  255


/*
 * "kafka_producer_idempotency_zone NAME:SIZE [ttl=TIME];" (http): the
 * zone of the keys, kmcf->idem_zone; ttl (default 24h) is how long a
 * finished key is kept.  NGX_CONF_OK or NGX_CONF_ERROR.
 */
char *ngx_http_kafka_producer_idempotency_zone(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

/*
 * Before a record is produced: evaluates kafka_producer_idempotency_key.
 * NGX_OK: produce (no key; or a new key, now "in flight" in the zone,
 * whose answer will be kept: ctx->idempotency_key is set and the record
 * gets the header "idempotency-key").  NGX_DONE: the request is answered,
 * "*answer" is what the handler returns (a replay of the first answer
 * with "Idempotent-Replayed: true", 409 while the first is in flight, 422
 * for another request with the same key, 400, 503 when the zone is full
 * of keys in flight).
 */
ngx_int_t ngx_http_kafka_producer_idempotency_begin(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx, ngx_int_t *answer);

/*
 * Output filters (installed at postconfiguration): the answer to a
 * request with a new key is kept in the zone when it is final; a 503
 * whose record was not written, or a 500, releases the key instead.
 */
ngx_int_t ngx_http_kafka_producer_idempotency_init_filters(ngx_conf_t *cf);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENCY_H_INCLUDED_ */
