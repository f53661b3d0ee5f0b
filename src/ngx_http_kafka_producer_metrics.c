
/*
 * ngx_http_kafka_producer_module: Prometheus metrics.
 *
 * Every worker adds to counters in one shared memory zone with atomic
 * operations (no lock on the request or delivery paths), and writes its
 * own gauges into its slot once a second; "kafka_producer_metrics;"
 * answers the totals in the Prometheus text exposition format 0.0.4 from
 * whichever worker serves the scrape.  Topics get their own series up to
 * a bound, so that clients cannot explode the number of series.
 */


#include "ngx_http_kafka_producer_metrics.h"
#include "ngx_http_kafka_producer_status.h"
#include "ngx_http_kafka_producer_json.h"
#include "ngx_http_kafka_producer_request.h"
#include "ngx_http_kafka_producer_send.h"
#include "ngx_http_kafka_producer_pass.h"
#include "ngx_http_kafka_producer_rest.h"
#include "ngx_http_kafka_producer_kafka.h"

#include <time.h>


#define NGX_HTTP_KAFKA_PRODUCER_METRICS_WORKERS  128
#define NGX_HTTP_KAFKA_PRODUCER_METRICS_NCODES   17
#define NGX_HTTP_KAFKA_PRODUCER_METRICS_NBUCKETS 15

/* handler, mode (+ unknown), send mode (+ unknown), status code */
#define NGX_HTTP_KAFKA_PRODUCER_METRICS_NREQUESTS                             \
    (NGX_HTTP_KAFKA_PRODUCER_NHANDLERS * 3 * 3                               \
     * NGX_HTTP_KAFKA_PRODUCER_METRICS_NCODES)


typedef struct {
    ngx_atomic_t                      len;
    u_char                            name[NGX_HTTP_KAFKA_PRODUCER_TOPIC_MAX];
} ngx_http_kafka_producer_metrics_topic_t;


typedef struct {
    ngx_atomic_t                 pid;
    ngx_atomic_t                 in_flight[NGX_HTTP_KAFKA_PRODUCER_NMODES];
    ngx_atomic_t                 queued[NGX_HTTP_KAFKA_PRODUCER_NMODES];
    ngx_atomic_t                 brokers_up[NGX_HTTP_KAFKA_PRODUCER_NMODES];
    ngx_atomic_t                 up[NGX_HTTP_KAFKA_PRODUCER_NMODES];
    ngx_atomic_t                 retries[NGX_HTTP_KAFKA_PRODUCER_NMODES];
} ngx_http_kafka_producer_metrics_worker_t;


typedef struct {
    ngx_atomic_t                      requests[
                                     NGX_HTTP_KAFKA_PRODUCER_METRICS_NREQUESTS];
    ngx_atomic_t                      buckets[NGX_HTTP_KAFKA_PRODUCER_NMODES][
                                  NGX_HTTP_KAFKA_PRODUCER_METRICS_NBUCKETS + 1];
    ngx_atomic_t                      sum_us[NGX_HTTP_KAFKA_PRODUCER_NMODES];
    ngx_atomic_t                      replacements[
                                              NGX_HTTP_KAFKA_PRODUCER_NMODES];
    ngx_http_kafka_producer_metrics_worker_t  workers[
                                      NGX_HTTP_KAFKA_PRODUCER_METRICS_WORKERS];

    /* topics seen, "ntopics" of "max_topics"; records by topic (the last
     * one "_other"), mode and delivered/failed */
    ngx_atomic_t                      ntopics;
    ngx_uint_t                        max_topics;
    ngx_http_kafka_producer_metrics_topic_t  *topics;
    ngx_atomic_t                     *records;
} ngx_http_kafka_producer_metrics_sh_t;


typedef struct {
    ngx_http_kafka_producer_metrics_sh_t  *sh;
    ngx_slab_pool_t                       *shpool;
    ngx_uint_t                             max_topics;
} ngx_http_kafka_producer_metrics_ctx_t;


static ngx_int_t ngx_http_kafka_producer_metrics_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static ngx_http_kafka_producer_metrics_sh_t *
    ngx_http_kafka_producer_metrics_sh(void);
static ngx_uint_t ngx_http_kafka_producer_metrics_code(ngx_uint_t status);
static ngx_uint_t ngx_http_kafka_producer_metrics_topic(
    ngx_http_kafka_producer_metrics_ctx_t *ctx, const char *topic);
static u_char *ngx_http_kafka_producer_metrics_escape(u_char *p,
    u_char *name, size_t len);


static ngx_str_t  ngx_http_kafka_producer_metrics_zone_name =
    ngx_string("kafka_producer_metrics");

static ngx_str_t  ngx_http_kafka_producer_metrics_type =
    ngx_string("text/plain; version=0.0.4; charset=utf-8");

static ngx_uint_t  ngx_http_kafka_producer_metrics_codes[] = {
    200, 202, 400, 403, 404, 405, 408, 409, 413, 414, 415, 422, 499, 500,
    502, 503, 504
};

/* seconds, as Prometheus' "le" labels */
static char  *ngx_http_kafka_producer_metrics_le[] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "10", "30"
};

static uint64_t  ngx_http_kafka_producer_metrics_le_us[] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000, 30000000
};

static char  *ngx_http_kafka_producer_metrics_handlers[] = {
    "send", "pass", "rest"
};

static char  *ngx_http_kafka_producer_metrics_modes[] = {
    "plain", "idempotent", "unknown"
};

static char  *ngx_http_kafka_producer_metrics_send_modes[] = {
    "sync", "async", "unknown"
};


ngx_int_t
ngx_http_kafka_producer_metrics_init_conf(ngx_conf_t *cf,
    ngx_http_kafka_producer_main_conf_t *kmcf)
{
    size_t                                  size;
    ngx_shm_zone_t                         *shm_zone;
    ngx_http_kafka_producer_metrics_ctx_t  *ctx;

    ctx = ngx_pcalloc(cf->pool,
                      sizeof(ngx_http_kafka_producer_metrics_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->max_topics = kmcf->metrics_topics;

    size = sizeof(ngx_http_kafka_producer_metrics_sh_t)
           + ctx->max_topics * sizeof(ngx_http_kafka_producer_metrics_topic_t)
           + (ctx->max_topics + 1) * 4 * sizeof(ngx_atomic_t);

    size = ngx_align(size + 16 * ngx_pagesize, ngx_pagesize);

    shm_zone = ngx_shared_memory_add(cf,
                                     &ngx_http_kafka_producer_metrics_zone_name,
                                     size, &ngx_http_kafka_producer_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_kafka_producer_metrics_init_zone;
    shm_zone->data = ctx;

    kmcf->metrics_zone = shm_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kafka_producer_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data)
{
    ngx_http_kafka_producer_metrics_ctx_t  *octx = data;

    u_char                                 *p;
    size_t                                  n;
    ngx_http_kafka_producer_metrics_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx && octx->max_topics == ctx->max_topics) {
        /* a reload: the counters go on */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    n = ctx->max_topics;

    p = ngx_slab_calloc(ctx->shpool,
                        sizeof(ngx_http_kafka_producer_metrics_sh_t)
                        + n * sizeof(ngx_http_kafka_producer_metrics_topic_t)
                        + (n + 1) * 4 * sizeof(ngx_atomic_t));
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->sh = (ngx_http_kafka_producer_metrics_sh_t *) p;
    ctx->sh->max_topics = n;

    p += sizeof(ngx_http_kafka_producer_metrics_sh_t);
    ctx->sh->records = (ngx_atomic_t *) p;

    p += (n + 1) * 4 * sizeof(ngx_atomic_t);
    ctx->sh->topics = (ngx_http_kafka_producer_metrics_topic_t *) p;

    ctx->shpool->data = ctx->sh;

    return NGX_OK;
}


static ngx_http_kafka_producer_metrics_sh_t *
ngx_http_kafka_producer_metrics_sh(void)
{
    ngx_http_kafka_producer_metrics_ctx_t  *ctx;
    ngx_http_kafka_producer_main_conf_t    *kmcf;

    kmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_kafka_producer_module);

    if (kmcf == NULL || kmcf->metrics_zone == NULL) {
        return NULL;
    }

    ctx = kmcf->metrics_zone->data;

    return ctx->sh;
}


uint64_t
ngx_http_kafka_producer_metrics_now(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


void
ngx_http_kafka_producer_metrics_request(ngx_uint_t handler, ngx_uint_t mode,
    ngx_uint_t async, ngx_uint_t status)
{
    ngx_uint_t                             i;
    ngx_http_kafka_producer_metrics_sh_t  *sh;

    sh = ngx_http_kafka_producer_metrics_sh();
    if (sh == NULL) {
        return;
    }

    if (mode >= NGX_HTTP_KAFKA_PRODUCER_NMODES) {
        mode = 2;
    }

    if (async > 1) {
        async = 2;
    }

    i = ((handler * 3 + mode) * 3 + async)
        * NGX_HTTP_KAFKA_PRODUCER_METRICS_NCODES
        + ngx_http_kafka_producer_metrics_code(status);

    if (i < NGX_HTTP_KAFKA_PRODUCER_METRICS_NREQUESTS) {
        (void) ngx_atomic_fetch_add(&sh->requests[i], 1);
    }
}


/* the index of a status code, NCODES - 1 ("504") ... or the last for others */

static ngx_uint_t
ngx_http_kafka_producer_metrics_code(ngx_uint_t status)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_KAFKA_PRODUCER_METRICS_NCODES; i++) {
        if (ngx_http_kafka_producer_metrics_codes[i] == status) {
            return i;
        }
    }

    /* another code counts as a 500, it should not happen */
    return 13;
}


void
ngx_http_kafka_producer_metrics_record(ngx_uint_t mode, const char *topic,
    ngx_uint_t delivered, uint64_t us)
{
    ngx_uint_t                              t, b;
    ngx_http_kafka_producer_metrics_sh_t   *sh;
    ngx_http_kafka_producer_metrics_ctx_t  *ctx;
    ngx_http_kafka_producer_main_conf_t    *kmcf;

    kmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_kafka_producer_module);

    if (kmcf == NULL || kmcf->metrics_zone == NULL) {
        return;
    }

    ctx = kmcf->metrics_zone->data;
    sh = ctx->sh;

    t = ngx_http_kafka_producer_metrics_topic(ctx, topic);

    (void) ngx_atomic_fetch_add(&sh->records[(t * 2 + mode) * 2
                                             + (delivered ? 0 : 1)], 1);

    if (us == 0) {
        return;
    }

    for (b = 0; b < NGX_HTTP_KAFKA_PRODUCER_METRICS_NBUCKETS; b++) {
        if (us <= ngx_http_kafka_producer_metrics_le_us[b]) {
            break;
        }
    }

    /* per bucket here, cumulative when written */
    (void) ngx_atomic_fetch_add(&sh->buckets[mode][b], 1);
    (void) ngx_atomic_fetch_add(&sh->sum_us[mode], (ngx_atomic_int_t) us);
}


/*
 * The series of a topic: its slot among the first max_topics topics seen,
 * a new slot taken under the zone's lock, else the "_other" slot
 * (max_topics).  Slots are read without the lock: a slot's name is
 * written before "ntopics" counts it.
 */

static ngx_uint_t
ngx_http_kafka_producer_metrics_topic(
    ngx_http_kafka_producer_metrics_ctx_t *ctx, const char *topic)
{
    size_t                                 len;
    ngx_uint_t                             i, n;
    ngx_http_kafka_producer_metrics_sh_t  *sh;

    sh = ctx->sh;

    if (topic == NULL) {
        return sh->max_topics;
    }

    len = ngx_strlen(topic);

    n = sh->ntopics;

    for (i = 0; i < n; i++) {
        if (sh->topics[i].len == len
            && ngx_memcmp(sh->topics[i].name, topic, len) == 0)
        {
            return i;
        }
    }

    if (n >= sh->max_topics || len > NGX_HTTP_KAFKA_PRODUCER_TOPIC_MAX) {
        return sh->max_topics;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    /* another worker may have added it meanwhile */

    for (i = n; i < sh->ntopics; i++) {
        if (sh->topics[i].len == len
            && ngx_memcmp(sh->topics[i].name, topic, len) == 0)
        {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return i;
        }
    }

    i = sh->ntopics;

    if (i < sh->max_topics) {
        ngx_memcpy(sh->topics[i].name, topic, len);
        sh->topics[i].len = len;
        ngx_memory_barrier();
        sh->ntopics = i + 1;

    } else {
        i = sh->max_topics;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return i;
}


void
ngx_http_kafka_producer_metrics_replacement(ngx_uint_t mode)
{
    ngx_http_kafka_producer_metrics_sh_t  *sh;

    sh = ngx_http_kafka_producer_metrics_sh();

    if (sh) {
        (void) ngx_atomic_fetch_add(&sh->replacements[mode], 1);
    }
}


void
ngx_http_kafka_producer_metrics_worker(ngx_uint_t mode, ngx_uint_t in_flight,
    ngx_uint_t queued, ngx_uint_t brokers_up, ngx_uint_t up,
    ngx_uint_t retries)
{
    ngx_http_kafka_producer_metrics_sh_t      *sh;
    ngx_http_kafka_producer_metrics_worker_t  *w;

    sh = ngx_http_kafka_producer_metrics_sh();

    if (sh == NULL || ngx_worker >= NGX_HTTP_KAFKA_PRODUCER_METRICS_WORKERS
        || ngx_exiting)
    {
        /* an exiting worker leaves its slot to its successor */
        return;
    }

    w = &sh->workers[ngx_worker];

    w->pid = ngx_pid;
    w->in_flight[mode] = in_flight;
    w->queued[mode] = queued;
    w->brokers_up[mode] = brokers_up;
    w->up[mode] = up;
    w->retries[mode] = retries;
}


ngx_int_t
ngx_http_kafka_producer_metrics_log(ngx_http_request_t *r)
{
    ngx_uint_t                           handler, mode, async, status;
    ngx_http_core_loc_conf_t            *clcf;
    ngx_http_kafka_producer_ctx_t       *ctx;
    ngx_http_kafka_producer_loc_conf_t  *klcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->handler == ngx_http_kafka_producer_send_handler) {
        handler = NGX_HTTP_KAFKA_PRODUCER_HANDLER_SEND;

    } else if (clcf->handler == ngx_http_kafka_producer_pass_handler) {
        handler = NGX_HTTP_KAFKA_PRODUCER_HANDLER_PASS;

    } else if (clcf->handler == ngx_http_kafka_producer_rest_handler) {
        handler = NGX_HTTP_KAFKA_PRODUCER_HANDLER_REST;

    } else {
        return NGX_OK;
    }

    /* a REST request's context starts with the module's request context */

    ctx = ngx_http_get_module_ctx(r, ngx_http_kafka_producer_module);

    if (ctx) {
        mode = ctx->ev.mode;
        async = ctx->ev.async;

    } else if (handler == NGX_HTTP_KAFKA_PRODUCER_HANDLER_PASS) {
        klcf = ngx_http_get_module_loc_conf(r, ngx_http_kafka_producer_module);
        mode = klcf->mode;
        async = klcf->async;

    } else if (handler == NGX_HTTP_KAFKA_PRODUCER_HANDLER_REST) {
        /* refused before its context: the producer is the location's */
        klcf = ngx_http_get_module_loc_conf(r, ngx_http_kafka_producer_module);
        mode = klcf->mode;
        async = NGX_CONF_UNSET_UINT;

    } else {
        mode = NGX_CONF_UNSET_UINT;
        async = NGX_CONF_UNSET_UINT;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    if (status == 0 && r->connection->error) {
        status = NGX_HTTP_CLIENT_CLOSED_REQUEST;
    }

    ngx_http_kafka_producer_metrics_request(handler, mode, async, status);

    return NGX_OK;
}


#define ngx_http_kafka_producer_metrics_head(p, name, type, help)             \
    p = ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type)


ngx_int_t
ngx_http_kafka_producer_metrics_handler(ngx_http_request_t *r)
{
    u_char                                    *p, *start;
    size_t                                     len;
    uint64_t                                   cum;
    ngx_int_t                                  rc;
    ngx_str_t                                  body;
    ngx_uint_t                                 i, h, m, a, c, t, b, ntopics;
    ngx_uint_t                                 pending, done;
    ngx_atomic_uint_t                          v;
    ngx_http_kafka_producer_metrics_sh_t      *sh;
    ngx_http_kafka_producer_metrics_worker_t  *w;
    ngx_http_kafka_producer_main_conf_t       *kmcf;
    size_t                                     used, total;

    static ngx_str_t  allow = ngx_string("GET, HEAD");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_kafka_producer_not_allowed(r, &allow);
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    sh = ngx_http_kafka_producer_metrics_sh();

    if (sh == NULL) {
        return ngx_http_kafka_producer_problem(r,
                                  NGX_HTTP_SERVICE_UNAVAILABLE, 0,
                                  "no metrics: no location of this "
                                  "configuration produces to Kafka");
    }

    ntopics = sh->ntopics;

    len = 8192
          + NGX_HTTP_KAFKA_PRODUCER_METRICS_NREQUESTS * 160
          + (ntopics + 1) * 4 * (NGX_HTTP_KAFKA_PRODUCER_TOPIC_MAX + 128)
          + NGX_HTTP_KAFKA_PRODUCER_NMODES
            * (NGX_HTTP_KAFKA_PRODUCER_METRICS_NBUCKETS + 4) * 128
          + NGX_HTTP_KAFKA_PRODUCER_METRICS_WORKERS * 10 * 160;

    start = ngx_pnalloc(r->pool, len);
    if (start == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = start;

    /* requests */

    ngx_http_kafka_producer_metrics_head(p,
                         "nginx_kafka_producer_requests_total", "counter",
                         "Requests of the producing handlers, by status code");

    i = 0;

    for (h = 0; h < NGX_HTTP_KAFKA_PRODUCER_NHANDLERS; h++) {
        for (m = 0; m < 3; m++) {
            for (a = 0; a < 3; a++) {
                for (c = 0; c < NGX_HTTP_KAFKA_PRODUCER_METRICS_NCODES; c++) {
                    v = sh->requests[i++];

                    if (v == 0) {
                        continue;
                    }

                    p = ngx_sprintf(p, "nginx_kafka_producer_requests_total"
                                    "{handler=\"%s\",mode=\"%s\","
                                    "send_mode=\"%s\",code=\"%ui\"} %uA\n",
                                    ngx_http_kafka_producer_metrics_handlers[h],
                                    ngx_http_kafka_producer_metrics_modes[m],
                                 ngx_http_kafka_producer_metrics_send_modes[a],
                                    ngx_http_kafka_producer_metrics_codes[c],
                                    v);
                }
            }
        }
    }

    /* records */

    ngx_http_kafka_producer_metrics_head(p,
                         "nginx_kafka_producer_records_total", "counter",
                         "Delivery reports, by topic (the first topics "
                         "seen, then _other), producer and result");

    for (t = 0; t <= ntopics; t++) {

        i = (t == ntopics) ? sh->max_topics : t;

        for (m = 0; m < NGX_HTTP_KAFKA_PRODUCER_NMODES; m++) {
            for (a = 0; a < 2; a++) {
                v = sh->records[(i * 2 + m) * 2 + a];

                if (v == 0 && (t == ntopics || a == 1)) {
                    continue;
                }

                p = ngx_sprintf(p, "nginx_kafka_producer_records_total"
                                "{topic=\"");

                if (t == ntopics) {
                    p = ngx_cpymem(p, "_other", sizeof("_other") - 1);

                } else {
                    p = ngx_http_kafka_producer_metrics_escape(p,
                                             sh->topics[i].name,
                                             ngx_min(sh->topics[i].len,
                                           NGX_HTTP_KAFKA_PRODUCER_TOPIC_MAX));
                }

                p = ngx_sprintf(p, "\",mode=\"%s\",result=\"%s\"} %uA\n",
                                ngx_http_kafka_producer_mode_names[m],
                                a ? "failed" : "delivered", v);
            }
        }
    }

    /* delivery histogram */

    ngx_http_kafka_producer_metrics_head(p,
                         "nginx_kafka_producer_delivery_seconds",
                         "histogram",
                         "Time from the produce call to the delivery "
                         "report, by producer");

    for (m = 0; m < NGX_HTTP_KAFKA_PRODUCER_NMODES; m++) {
        cum = 0;

        for (b = 0; b <= NGX_HTTP_KAFKA_PRODUCER_METRICS_NBUCKETS; b++) {
            cum += sh->buckets[m][b];

            p = ngx_sprintf(p, "nginx_kafka_producer_delivery_seconds_bucket"
                            "{mode=\"%s\",le=\"%s\"} %uL\n",
                            ngx_http_kafka_producer_mode_names[m],
                            b < NGX_HTTP_KAFKA_PRODUCER_METRICS_NBUCKETS
                            ? ngx_http_kafka_producer_metrics_le[b] : "+Inf",
                            cum);
        }

        v = sh->sum_us[m];

        p = ngx_sprintf(p, "nginx_kafka_producer_delivery_seconds_sum"
                        "{mode=\"%s\"} %uA.%06uA\n"
                        "nginx_kafka_producer_delivery_seconds_count"
                        "{mode=\"%s\"} %uL\n",
                        ngx_http_kafka_producer_mode_names[m],
                        v / 1000000, v % 1000000,
                        ngx_http_kafka_producer_mode_names[m], cum);
    }

    /* replacements */

    ngx_http_kafka_producer_metrics_head(p,
                         "nginx_kafka_producer_replacements_total", "counter",
                         "Producers replaced after a fatal error");

    for (m = 0; m < NGX_HTTP_KAFKA_PRODUCER_NMODES; m++) {
        p = ngx_sprintf(p, "nginx_kafka_producer_replacements_total"
                        "{mode=\"%s\"} %uA\n",
                        ngx_http_kafka_producer_mode_names[m],
                        sh->replacements[m]);
    }

    /* per worker gauges */

#define ngx_http_kafka_producer_metrics_gauge(name, help, field)              \
    ngx_http_kafka_producer_metrics_per_worker(name, "gauge", help, field)

#define ngx_http_kafka_producer_metrics_per_worker(name, type, help, field)   \
    ngx_http_kafka_producer_metrics_head(p, name, type, help);               \
    for (i = 0; i < NGX_HTTP_KAFKA_PRODUCER_METRICS_WORKERS; i++) {           \
        w = &sh->workers[i];                                                  \
        if (w->pid == 0) {                                                    \
            continue;                                                         \
        }                                                                     \
        for (m = 0; m < NGX_HTTP_KAFKA_PRODUCER_NMODES; m++) {                \
            p = ngx_sprintf(p, "%s{worker=\"%ui\",mode=\"%s\"} %uA\n",        \
                            name, i, ngx_http_kafka_producer_mode_names[m],   \
                            w->field[m]);                                     \
        }                                                                     \
    }

    ngx_http_kafka_producer_metrics_gauge(
                         "nginx_kafka_producer_messages_in_flight",
                         "Messages produced and not reported yet, per worker",
                         in_flight);
    ngx_http_kafka_producer_metrics_gauge(
                         "nginx_kafka_producer_queue_messages",
                         "Messages in librdkafka's queue (rd_kafka_outq_len), "
                         "per worker", queued);
    ngx_http_kafka_producer_metrics_gauge(
                         "nginx_kafka_producer_brokers_up",
                         "Brokers connected, from librdkafka's statistics, "
                         "per worker", brokers_up);
    ngx_http_kafka_producer_metrics_gauge(
                         "nginx_kafka_producer_up",
                         "1 when the worker's producer can deliver", up);

    /* a worker's counter: it starts again at 0 with a new worker */
    ngx_http_kafka_producer_metrics_per_worker(
                         "nginx_kafka_producer_retries_total", "counter",
                         "Requests librdkafka retried or that timed out "
                         "(txretries + req_timeouts), per worker", retries);

#undef ngx_http_kafka_producer_metrics_gauge
#undef ngx_http_kafka_producer_metrics_per_worker

    /* the status zone */

    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kafka_producer_module);

    if (kmcf->shm_zone) {
        ngx_http_kafka_producer_status_stats(kmcf->shm_zone, &used, &total,
                                             &pending, &done);

        ngx_http_kafka_producer_metrics_head(p,
                         "nginx_kafka_producer_status_zone_bytes", "gauge",
                         "Bytes of the async status zone in use, and its size");

        p = ngx_sprintf(p, "nginx_kafka_producer_status_zone_bytes"
                        "{state=\"used\"} %uz\n"
                        "nginx_kafka_producer_status_zone_bytes"
                        "{state=\"size\"} %uz\n", used, total);

        ngx_http_kafka_producer_metrics_head(p,
                         "nginx_kafka_producer_status_records", "gauge",
                         "Async status records, by state");

        p = ngx_sprintf(p, "nginx_kafka_producer_status_records"
                        "{state=\"pending\"} %ui\n"
                        "nginx_kafka_producer_status_records"
                        "{state=\"finished\"} %ui\n", pending, done);
    }

    body.data = start;
    body.len = p - start;

    return ngx_http_kafka_producer_send_text(r, NGX_HTTP_OK,
                                         &ngx_http_kafka_producer_metrics_type,
                                         &body);
}


static u_char *
ngx_http_kafka_producer_metrics_escape(u_char *p, u_char *name, size_t len)
{
    /* topic names are a-z A-Z 0-9 . _ -: nothing to escape in a label */

    return ngx_cpymem(p, name, len);
}
