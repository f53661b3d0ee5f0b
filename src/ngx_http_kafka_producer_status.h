
/*
 * ngx_http_kafka_producer_module: async status records in shared memory.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_STATUS_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_STATUS_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


/*
 * The kafka_producer_status_zone NAME:SIZE [ttl=TIME] directive (main
 * conf "conf"): adds the shared memory zone, SIZE from 8 pages to under
 * 512g, ttl in seconds (default 600).
 */
/*
 * zone_add: the arguments "NAME:SIZE [ttl=TIME]" of a zone directive
 * (kafka_producer_status_zone, kafka_producer_idempotency_zone): adds
 * the zone ("max": the largest size in bytes + 1, 0 for none; "*ttl" in
 * seconds, kept when not given); the caller sets (*zone)->init and data.
 * NGX_CONF_OK or NGX_CONF_ERROR after an "emerg" with the value.
 */
char *ngx_http_kafka_producer_zone_add(ngx_conf_t *cf, uint64_t max,
    time_t *ttl, ngx_shm_zone_t **zone);

char *ngx_http_kafka_producer_status_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * The deadline of the records this configuration's workers create: a
 * PENDING record older than delivery_timeout (ms) + 30 s is answered
 * ERROR "no delivery report".
 */
void ngx_http_kafka_producer_status_init_conf(ngx_shm_zone_t *shm_zone,
    ngx_msec_t delivery_timeout);

/*
 * Writes 16 random bytes (getrandom(), from a per-process buffer) into
 * "id", with the version 4 and variant 1 bits of RFC 4122 set.
 */
void ngx_http_kafka_producer_status_new_id(u_char *id);

/*
 * Writes the 36 characters of the UUID "id" (16 bytes) at "p", lowercase,
 * no NUL; returns the end.
 */
u_char *ngx_http_kafka_producer_status_format_id(u_char *p, u_char *id);

/*
 * Creates the PENDING record of an async send (eventId, key, topic, mode
 * and partition from "ev", copied into the zone) and writes its requestId
 * into "id" (16 bytes, the caller's): 4 bytes of the record's slot in the
 * zone, then random bytes, version 4.  The id names the record until it
 * is freed (status_delete(), or evicted once finished and past its ttl).
 * Returns NGX_OK, or NGX_BUSY (logged as a warning on "log") when the
 * zone is full of PENDING records.  Takes the zone's lock, never blocks
 * otherwise.
 */
ngx_int_t ngx_http_kafka_producer_status_add(ngx_shm_zone_t *shm_zone,
    u_char *id, ngx_http_kafka_producer_event_t *ev, ngx_log_t *log);

/*
 * The delivery report "ev" of the async record "id" (16 bytes, as
 * status_add() wrote it): a PENDING record becomes OK or ERROR; a late
 * report after "no report" corrects it.  O(1): the record is found at the
 * slot the id carries and checked to have the whole id; an id whose
 * record is gone is ignored.  Runs on the worker's thread.
 */
void ngx_http_kafka_producer_status_finish(u_char *id,
    ngx_http_kafka_producer_event_t *ev);

/*
 * Frees the record "id" (16 bytes), if it still exists: an async send
 * whose message could not be queued.
 */
void ngx_http_kafka_producer_status_delete(u_char *id);

/*
 * GET/HEAD ?requestId=UUID: 200 with the record as JSON; 404 for an id
 * that names no record (unknown, expired, evicted, or forged: its slot
 * holds no record or one with another id); 400 for a missing or malformed
 * id; 405 for other methods.  Content handler.
 */
ngx_int_t ngx_http_kafka_producer_status_handler(ngx_http_request_t *r);

/*
 * stats: for the metrics, the bytes of the zone in use ("used", whole
 * pages) and its size ("total"), and its records by state.
 */
void ngx_http_kafka_producer_status_stats(ngx_shm_zone_t *shm_zone,
    size_t *used, size_t *total, ngx_uint_t *pending, ngx_uint_t *done);

/*
 * set_kafka_producer_state (ngx_devel_kit set_var): "res" becomes the
 * state (PENDING, OK, ERROR, static strings) of the record whose requestId
 * is "v", or empty.  Always NGX_OK.
 */
ngx_int_t ngx_http_kafka_producer_status_state(ngx_http_request_t *r,
    ngx_str_t *res, ngx_http_variable_value_t *v);

#if (NGX_HTTP_KAFKA_PRODUCER_FUZZ)
/* the requestId parser: NGX_OK and 16 bytes in "id", or NGX_ERROR */
ngx_int_t ngx_http_kafka_producer_fuzz_parse_id(ngx_str_t *s, u_char *id);
#endif


#endif /* _NGX_HTTP_KAFKA_PRODUCER_STATUS_H_INCLUDED_ */
