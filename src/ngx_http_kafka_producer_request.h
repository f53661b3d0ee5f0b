
/*
 * ngx_http_kafka_producer_module: holding and answering the requests that
 * produce (the send, pass and later handlers share it).
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_REQUEST_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_REQUEST_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


typedef struct ngx_http_kafka_producer_ctx_s  ngx_http_kafka_producer_ctx_t;

/*
 * Builds the answer to a request whose record was delivered (sync: ev has
 * partition, offset, timestamp) or accepted (async: "id" is the status
 * record's requestId, 16 bytes).  Returns what a content handler returns.
 */
typedef ngx_int_t (*ngx_http_kafka_producer_answer_pt)(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx, u_char *id);


/* one request that produces a record, in the request's pool */
struct ngx_http_kafka_producer_ctx_s {
    ngx_http_kafka_producer_record_t   record;  /* what is produced */
    ngx_http_kafka_producer_event_t    ev;      /* what the answers tell */

    ngx_http_kafka_producer_answer_pt  delivered;
    ngx_http_kafka_producer_answer_pt  accepted;

    /* a sync request waiting for its delivery report */
    ngx_http_request_t                *request;
    ngx_http_kafka_producer_msg_t     *msg;
    ngx_event_t                        deadline;
    ngx_http_cleanup_pt               *cleanup; /* disarmed on completion */

    /* an idempotency key in flight, and the answer kept for it */
    ngx_str_t                          idempotency_key;
    ngx_str_t                          content;  /* what a repeat repeats:
                                                    the lab's query string,
                                                    the pass's value */
    ngx_str_t                          idempotency_answer;
    ngx_uint_t                         idempotency_status;
    ngx_uint_t                         idempotency_done;  /* unsigned:1 */
    u_char                             fingerprint[16];
};


/*
 * Produces ctx->record on the producer of ctx->ev.mode, never blocking:
 * - async (ctx->ev.async): a PENDING status record in the zone, then
 *   ctx->accepted() (202);
 * - sync: returns NGX_DONE and keeps the request (r->main->count), as
 *   ngx_http_upstream does: a cleanup (ngx_http_cleanup_add) detaches it
 *   from the message if the client goes, a deadline timer (delivery
 *   timeout + 5 s) answers 504 if no report comes; the report calls
 *   ctx->delivered() (200) or answers the error, then finalizes.
 * Errors before any record is queued are problem+json answers (503 with
 * Retry-After when the producer is unavailable, the zone is full or the
 * queue is full; 413 over message.max.bytes; ...).  Returns what a content
 * handler returns; ctx lives in r->pool.
 */
ngx_int_t ngx_http_kafka_producer_send_record(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx);

/*
 * The HTTP status of a failed message: "err" is librdkafka's error,
 * "brokers_down" whether every broker was down, "persisted" what
 * rd_kafka_message_status() tells.  A 503 (retry) is only ever answered
 * for a message known not to be written; a possibly written one that
 * would get a 503 gets a 504 instead.
 */
ngx_uint_t ngx_http_kafka_producer_error_status(rd_kafka_resp_err_t err,
    ngx_uint_t brokers_down, rd_kafka_msg_status_t persisted);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_REQUEST_H_INCLUDED_ */
