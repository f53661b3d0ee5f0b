
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

    ngx_uint_t                        locations; /* send locations */
} ngx_http_kafka_producer_main_conf_t;


#define NGX_HTTP_KAFKA_PRODUCER_HEALTH_LIVE    0
#define NGX_HTTP_KAFKA_PRODUCER_HEALTH_DETAIL  1
#define NGX_HTTP_KAFKA_PRODUCER_HEALTH_READY   2


typedef struct {
    ngx_str_t                         topic;
    ngx_str_t                         status_uri;
    ngx_array_t                      *allowed_topics; /* of topic_t or NULL */
    ngx_uint_t                        health;     /* HEALTH_LIVE, ... */
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

    /*
     * what is known of a failed message: RD_KAFKA_MSG_STATUS_NOT_PERSISTED
     * (safe to retry) or RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED (it may be
     * in the topic), see rd_kafka_message_status()
     */
    rd_kafka_msg_status_t             persisted;
} ngx_http_kafka_producer_event_t;


/*
 * The delivery context of one message, the opaque of rd_kafka_producev().
 * It is owned by the worker (ngx_alloc(), then recycled through a free
 * list), never by a request: a request that goes away only clears
 * "request".
 */
struct ngx_http_kafka_producer_msg_s {
    ngx_queue_t                       queue;      /* client's in flight */
    ngx_http_kafka_producer_client_t *client;
    ngx_http_request_t               *request;    /* sync, until detached */
    u_char                            id[NGX_HTTP_KAFKA_PRODUCER_ID_LEN];
    unsigned                          async:1;
};


/* one librdkafka producer of a worker, with its event loop hook */
struct ngx_http_kafka_producer_client_s {
    rd_kafka_conf_t                  *conf;
    rd_kafka_t                       *rk;
    rd_kafka_queue_t                 *queue;      /* main queue */
    ngx_connection_t                 *notify;     /* read end of the pipe */
    ngx_socket_t                      notify_fd;  /* write end */
    ngx_queue_t                       in_flight;
    ngx_uint_t                        mode;
    ngx_msec_t                        linger;     /* its linger.ms */
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


extern ngx_module_t  ngx_http_kafka_producer_module;


#endif /* _NGX_HTTP_KAFKA_PRODUCER_H_INCLUDED_ */
