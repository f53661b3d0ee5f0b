
/*
 * ngx_http_kafka_producer_module: shared types and declarations.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <librdkafka/rdkafka.h>


#define NGX_HTTP_KAFKA_PRODUCER_PLAIN        0
#define NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENT   1
#define NGX_HTTP_KAFKA_PRODUCER_NMODES       2

/* request parameter limits, in bytes after percent-decoding */
#define NGX_HTTP_KAFKA_PRODUCER_EVENT_ID_MAX 512
#define NGX_HTTP_KAFKA_PRODUCER_KEY_MAX      512
#define NGX_HTTP_KAFKA_PRODUCER_TOPIC_MAX    249

#define NGX_HTTP_KAFKA_PRODUCER_ID_LEN       16
#define NGX_HTTP_KAFKA_PRODUCER_UUID_LEN     36
#define NGX_HTTP_KAFKA_PRODUCER_ISO_TIME_LEN                                 \
    (sizeof("1970-01-01T00:00:00.000Z") - 1)

/* our own reasons for an ERROR record, besides librdkafka's codes */
#define NGX_HTTP_KAFKA_PRODUCER_REASON_NONE       0
#define NGX_HTTP_KAFKA_PRODUCER_REASON_OWNER_GONE 1
#define NGX_HTTP_KAFKA_PRODUCER_REASON_NO_REPORT  2
#define NGX_HTTP_KAFKA_PRODUCER_REASON_EXITING    3


typedef struct ngx_http_kafka_producer_client_s
    ngx_http_kafka_producer_client_t;
typedef struct ngx_http_kafka_producer_msg_s
    ngx_http_kafka_producer_msg_t;
typedef struct ngx_http_kafka_producer_worker_s
    ngx_http_kafka_producer_worker_t;


typedef struct {
    ngx_str_t                         brokers;
    ngx_array_t                      *options;    /* of ngx_keyval_t */

    /* the options and knobs applied at config time, for both producers */
    rd_kafka_conf_t                  *conf;

    ngx_msec_t                        request_timeout;
    ngx_msec_t                        delivery_timeout;
    ngx_msec_t                        retry_backoff;
    ngx_msec_t                        linger;
    ngx_msec_t                        idempotent_linger;
    ngx_msec_t                        shutdown_timeout;
    ngx_uint_t                        retries;

    ngx_shm_zone_t                   *shm_zone;
    ngx_shm_zone_t                   *metrics_zone;
    ngx_shm_zone_t                   *idem_zone;  /* idempotency keys */
    ngx_uint_t                        metrics_topics;

    ngx_uint_t                        locations; /* that produce */
    ngx_uint_t                        zone_locations; /* send, status */

    /* this worker's producers, set in init_process (per process memory) */
    ngx_http_kafka_producer_worker_t *worker;
} ngx_http_kafka_producer_main_conf_t;


#define NGX_HTTP_KAFKA_PRODUCER_HEALTH_LIVE    0
#define NGX_HTTP_KAFKA_PRODUCER_HEALTH_DETAIL  1
#define NGX_HTTP_KAFKA_PRODUCER_HEALTH_READY   2


typedef struct {
    ngx_str_t                         topic;
    ngx_str_t                         status_uri;
    ngx_array_t                      *allowed_topics; /* of topic_t or NULL */
    ngx_uint_t                        health;     /* HEALTH_LIVE, ... */

    /* kafka_producer_pass and the directives that shape its record */
    ngx_http_complex_value_t         *pass;       /* the topic */
    ngx_http_complex_value_t         *value;      /* NULL: the body */
    ngx_http_complex_value_t         *key;
    ngx_http_complex_value_t         *partition;
    ngx_array_t                      *headers;    /* of header_t, or NULL */
    ngx_uint_t                        mode;       /* kafka_producer_mode */
    ngx_flag_t                        async;      /* ..._send_mode async */
    ngx_http_complex_value_t         *idempotency_key;

    /* kafka_producer_rest_max_records: records in one REST request */
    ngx_uint_t                        rest_max_records;
} ngx_http_kafka_producer_loc_conf_t;


/* one entry of kafka_producer_allowed_topics: a name or a regex */
typedef struct {
    ngx_str_t                         name;
#if (NGX_PCRE)
    ngx_regex_t                      *regex;
#endif
} ngx_http_kafka_producer_topic_t;


/* what a status record or a response tells about one message */
typedef struct {
    ngx_str_t                         event_id;
    ngx_str_t                         key;
    ngx_str_t                         topic;
    ngx_uint_t                        mode;
    ngx_uint_t                        async;      /* unsigned:1 */
    int32_t                           partition;  /* RD_KAFKA_PARTITION_UA */
    int64_t                           offset;     /* -1: not known */
    rd_kafka_resp_err_t               err;
    ngx_uint_t                        reason;
    int64_t                           timestamp; /* ms since the epoch */
    ngx_uint_t                        brokers_down; /* unsigned:1 */

    /*
     * 1: librdkafka's own report of a message whose handler was already
     * called at its expiry (no report within the delivery timeout)
     */
    ngx_uint_t                        late;     /* unsigned:1 */

    /*
     * what is known of a failed message: RD_KAFKA_MSG_STATUS_NOT_PERSISTED
     * (safe to retry) or RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED (it may be
     * in the topic), see rd_kafka_message_status()
     */
    rd_kafka_msg_status_t             persisted;
} ngx_http_kafka_producer_event_t;


/* one record to produce: what a request becomes */
typedef struct {
    ngx_str_t                         topic;      /* NUL-terminated */
    int32_t                           partition;  /* RD_KAFKA_PARTITION_UA */
    ngx_str_t                         key;        /* data NULL: a null key */
    ngx_str_t                         value;
    ngx_array_t                      *headers;    /* of ngx_keyval_t */
} ngx_http_kafka_producer_record_t;


/*
 * Called with the delivery report of "msg" (ev: partition, offset,
 * timestamp, err, persisted, brokers_down), on the worker's thread,
 * before "msg" is freed; msg->data is the caller's.
 */
typedef void (*ngx_http_kafka_producer_msg_handler_pt)(
    ngx_http_kafka_producer_msg_t *msg, ngx_http_kafka_producer_event_t *ev);


/*
 * The delivery context of one message, the opaque of rd_kafka_producev().
 * It is owned by the worker (ngx_alloc(), then recycled through a free
 * list), never by a request.  Whoever produces fills "handler" and
 * "data", as ngx_resolver_ctx_t's caller does; a caller that goes away
 * detaches with "handler = NULL", and the report is then only counted
 * and logged.
 */
struct ngx_http_kafka_producer_msg_s {
    ngx_queue_t                       queue;      /* client's in flight */
    ngx_http_kafka_producer_client_t *client;
    ngx_http_kafka_producer_msg_handler_pt  handler;
    void                             *data;

    /*
     * when the handler gets a "no report" if librdkafka is late
     * (ngx_current_msec); then "expired" is set and the message waits in
     * the client's "late" queue for librdkafka's own report
     */
    ngx_msec_t                        expires;
    uint64_t                          start;      /* us, monotonic */
    unsigned                          expired:1;

    /*
     * storage for the handler, e.g. the requestId of an async record,
     * which also names the record's slot in the status zone
     */
    u_char                            opaque[NGX_HTTP_KAFKA_PRODUCER_ID_LEN];
};


/* one librdkafka producer of a worker, with its event loop hook */
struct ngx_http_kafka_producer_client_s {
    rd_kafka_conf_t                  *conf;
    rd_kafka_t                       *rk;
    rd_kafka_queue_t                 *queue;      /* main queue */
    ngx_connection_t                 *notify;     /* read end of the pipe */
    ngx_socket_t                      notify_fd;  /* write end */
    ngx_queue_t                       in_flight;  /* oldest first */
    ngx_queue_t                       late;       /* expired, unreported */
    ngx_http_kafka_producer_worker_t *worker;
    ngx_uint_t                        mode;
    ngx_msec_t                        linger;     /* its linger.ms */
    size_t                            max_bytes;  /* message.max.bytes */
    ngx_uint_t                        n;          /* messages in flight */
    ngx_log_t                        *log;

    /*
     * a producer that could not be created (or replaced) is retried with
     * an exponential backoff: "retry" is its timer, "error" the reason
     * new sends are refused meanwhile
     */
    ngx_event_t                       retry;
    ngx_msec_t                        backoff;    /* ms, 0: none */
    ngx_msec_t                        retry_at;   /* ngx_current_msec */
    ngx_uint_t                        failures;   /* in a row */
    ngx_str_t                         error;
    u_char                            error_buf[256];

    /* this worker's counters, kept when the producer is replaced */
    ngx_uint_t                        delivered;
    ngx_uint_t                        failed;
    ngx_uint_t                        replaced;
    ngx_uint_t                        detached;  /* reports nobody awaited */
    ngx_uint_t                        expired;   /* answered "no report" */
    ngx_uint_t                        late_reports; /* came after that */

    /*
     * requests librdkafka retried or gave up waiting for (its statistics'
     * "txretries" + "req_timeouts" of every broker: the messages of a
     * timed-out Produce go again in a new request): "retries" of the
     * producers replaced so far, "retries_now" of the current one (only
     * ever growing), "retries_sum" the current one's last sum over the
     * brokers of its statistics.  A plain producer's retry of a batch the
     * broker had appended is a duplicate record.
     */
    ngx_uint_t                        retries;
    ngx_uint_t                        retries_now;
    ngx_uint_t                        retries_sum;

    /*
     * for Retry-After: since when no broker is up (0: one is), librdkafka's
     * reconnect.backoff.max.ms, and the reports per second (delivered or
     * failed: how fast the queue drains), a moving average over the poll
     * intervals
     */
    ngx_msec_t                        down_since; /* ngx_current_msec */
    ngx_msec_t                        reconnect_max;
    ngx_uint_t                        drain_rate;
    ngx_uint_t                        drain_done;
    ngx_msec_t                        drain_time;

    /* the last error librdkafka or a delivery report gave, and when */
    ngx_str_t                         last_error;
    ngx_msec_t                        last_error_time; /* ngx_current_msec */
    u_char                            last_error_buf[160];

    /* the last statistics of librdkafka, see statistics.interval.ms */
    ngx_msec_t                        stats_time;
    ngx_uint_t                        brokers;
    ngx_uint_t                        brokers_up;
    int64_t                           producer_id;
    int64_t                           producer_epoch;
    ngx_str_t                         idemp_state;
    u_char                            idemp_state_buf[32];

    unsigned                          fatal:1;
    unsigned                          purged:1;
    unsigned                          brokers_down:1;
    unsigned                          delivered_since_open:1;
};


/*
 * The producers of one worker process and what they share, created in
 * init_process from the cycle's pool (main conf "worker"), never a
 * file-scope static.
 */
struct ngx_http_kafka_producer_worker_s {
    ngx_http_kafka_producer_client_t *clients[NGX_HTTP_KAFKA_PRODUCER_NMODES];

    /*
     * polls every producer once a second, in case a wake-up of the pipe
     * was missed; non-cancelable while messages are in flight, so that a
     * worker shutting down gracefully keeps its event loop for them
     */
    ngx_event_t                       poll_ev;
    ngx_uint_t                        in_flight;  /* messages, all modes */

    /*
     * answers a message librdkafka has not reported by delivery_timeout +
     * NGX_HTTP_KAFKA_PRODUCER_EXPIRE_MARGIN ms (cancelable: poll_ev holds
     * a worker that exits)
     */
    ngx_event_t                       expire_ev;
    ngx_msec_t                        delivery_timeout;

    /*
     * a graceful shutdown gives the messages in flight shutdown_timeout
     * (ms), then purges them ("shutdown_ev"); "exit_purged" is when, and
     * what librdkafka has not reported 2 s later is failed by us
     */
    ngx_event_t                       shutdown_ev;
    ngx_msec_t                        shutdown_timeout;
    ngx_uint_t                        exit_started;
    ngx_msec_t                        exit_purged;

    ngx_queue_t                       free_msgs;  /* recycled contexts */
    ngx_uint_t                        nfree_msgs;
};


extern ngx_module_t  ngx_http_kafka_producer_module;


#endif /* _NGX_HTTP_KAFKA_PRODUCER_H_INCLUDED_ */
