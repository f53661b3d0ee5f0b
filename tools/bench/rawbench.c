
/*
 * rawbench: the Kafka-side bound of the benchmark, and its record counter.
 *
 *     rawbench produce -b BROKERS -t TOPIC [-i] [-n COUNT] [-w WINDOW]
 *                      [-l LINGER_MS] [-T TAG] [-o NAME=VALUE]...
 *     rawbench count -b BROKERS TOPIC...
 *
 * "produce" sends COUNT records shaped like the module's (a key like an
 * eventId, the JSON envelope as value, the three headers) with the
 * module's producer settings: plain (acks=1, no idempotence) or, with -i,
 * idempotent (acks=all, enable.idempotence, 5 requests in flight).  With
 * -w it keeps at most WINDOW records in flight, as WINDOW HTTP clients
 * doing sync sends would; without it, as many as librdkafka queues.  It
 * prints one JSON line: records per second, delivery latency and the CPU
 * time of the process (all librdkafka threads) per record.
 *
 * "count" prints one JSON line with the sum of the high watermarks (last
 * offset + 1) of every partition of each TOPIC: the number of records
 * ever appended, which the mock cluster keeps exact although it trims
 * old records.
 */


#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include <librdkafka/rdkafka.h>


#define RB_TIMEOUT_MS  10000


typedef struct {
    int64_t              sent;
    int64_t              delivered;
    int64_t              failed;
    int64_t             *start;     /* per record, ns */
    double              *latency;   /* per delivered record, ms */
} rb_stats_t;


static int rb_produce(int argc, char **argv);
static int rb_count(int argc, char **argv);
static rd_kafka_t *rb_new(const char *brokers, int idempotent, int linger,
    rb_stats_t *st);
static void rb_option(char *spec);
static void rb_set(rd_kafka_conf_t *conf, const char *name,
    const char *value);
static void rb_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque);
static int64_t rb_now(void);
static double rb_cpu(void);
static int rb_cmp(const void *a, const void *b);
static void rb_usage(void);


int
main(int argc, char **argv)
{
    if (argc < 2) {
        rb_usage();
        return 2;
    }

    if (strcmp(argv[1], "produce") == 0) {
        return rb_produce(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "count") == 0) {
        return rb_count(argc - 1, argv + 1);
    }

    rb_usage();
    return 2;
}


static void
rb_usage(void)
{
    fprintf(stderr,
            "usage: rawbench produce -b BROKERS -t TOPIC [-i] [-n COUNT] "
            "[-w WINDOW] [-l LINGER_MS] [-T TAG] [-o NAME=VALUE]...\n"
            "       rawbench count -b BROKERS TOPIC...\n");
}


static int
rb_produce(int argc, char **argv)
{
    int                   c, idempotent, linger, len;
    char                  key[64], value[256], ts[32];
    double                seconds, p50, p99, cpu;
    int64_t               i, n, window, t0, t1;
    struct tm             tm;
    rb_stats_t            st;
    const char           *brokers, *topic, *tag;
    rd_kafka_t           *rk;
    rd_kafka_resp_err_t   err;
    time_t                now;

    brokers = NULL;
    topic = NULL;
    tag = "raw";
    idempotent = 0;
    linger = 0;
    n = 200000;
    window = 0;

    while ((c = getopt(argc, argv, "b:t:in:w:l:T:o:")) != -1) {
        switch (c) {
        case 'b':
            brokers = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'i':
            idempotent = 1;
            break;
        case 'n':
            n = strtoll(optarg, NULL, 10);
            break;
        case 'w':
            window = strtoll(optarg, NULL, 10);
            break;
        case 'l':
            linger = atoi(optarg);
            break;
        case 'T':
            tag = optarg;
            break;
        case 'o':
            rb_option(optarg);
            break;
        default:
            rb_usage();
            return 2;
        }
    }

    if (brokers == NULL || topic == NULL || n <= 0 || window < 0) {
        rb_usage();
        return 2;
    }

    memset(&st, 0, sizeof(st));

    st.start = calloc(n, sizeof(int64_t));
    st.latency = calloc(n, sizeof(double));

    if (st.start == NULL || st.latency == NULL) {
        fprintf(stderr, "rawbench: out of memory\n");
        return 1;
    }

    rk = rb_new(brokers, idempotent, linger, &st);

    /* connect and learn the leaders before the clock starts */
    {
        const struct rd_kafka_metadata  *md;
        rd_kafka_topic_t                *rkt;

        rkt = rd_kafka_topic_new(rk, topic, NULL);
        if (rd_kafka_metadata(rk, 0, rkt, &md, RB_TIMEOUT_MS)
            == RD_KAFKA_RESP_ERR_NO_ERROR)
        {
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(rkt);
    }

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S.000Z", &tm);

    cpu = rb_cpu();
    t0 = rb_now();

    for (i = 0; i < n; i++) {

        while (window && st.sent - st.delivered - st.failed >= window) {
            rd_kafka_poll(rk, 100);
        }

        snprintf(key, sizeof(key), "bench-%s-%" PRId64, tag, i);

        len = snprintf(value, sizeof(value),
                       "{\"eventId\":\"%s\",\"mode\":\"%s\","
                       "\"sendMode\":\"%s\",\"api\":\"nginx\","
                       "\"ts\":\"%s\"}",
                       key, idempotent ? "idempotent" : "plain",
                       window ? "sync" : "async", ts);

        st.start[i] = rb_now();

        for ( ;; ) {
            err = rd_kafka_producev(rk,
                      RD_KAFKA_V_TOPIC(topic),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                      RD_KAFKA_V_KEY(key, strlen(key)),
                      RD_KAFKA_V_VALUE(value, (size_t) len),
                      RD_KAFKA_V_HEADER("producer-mode",
                                        idempotent ? "idempotent" : "plain",
                                        -1),
                      RD_KAFKA_V_HEADER("send-mode",
                                        window ? "sync" : "async", -1),
                      RD_KAFKA_V_HEADER("timestamp", ts, -1),
                      RD_KAFKA_V_OPAQUE((void *) (intptr_t) i),
                      RD_KAFKA_V_END);

            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                break;
            }

            rd_kafka_poll(rk, 10);
        }

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "rawbench: produce: %s\n", rd_kafka_err2str(err));
            return 1;
        }

        st.sent++;

        rd_kafka_poll(rk, 0);
    }

    while (st.delivered + st.failed < st.sent) {
        rd_kafka_poll(rk, 100);

        if ((rb_now() - t0) / 1000000 > 120000) {
            fprintf(stderr, "rawbench: delivery reports missing\n");
            break;
        }
    }

    t1 = rb_now();
    cpu = rb_cpu() - cpu;

    seconds = (double) (t1 - t0) / 1e9;

    qsort(st.latency, st.delivered, sizeof(double), rb_cmp);

    p50 = st.delivered ? st.latency[(st.delivered - 1) * 50 / 100] : 0;
    p99 = st.delivered ? st.latency[(st.delivered - 1) * 99 / 100] : 0;

    printf("{\"mode\":\"%s\",\"window\":%" PRId64 ",\"linger_ms\":%d,"
           "\"records\":%" PRId64 ",\"delivered\":%" PRId64
           ",\"failed\":%" PRId64 ",\"seconds\":%.3f,\"rate\":%.0f,"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"cpu_us\":%.2f}\n",
           idempotent ? "idempotent" : "plain", window, linger, n,
           st.delivered, st.failed, seconds,
           seconds > 0 ? (double) st.delivered / seconds : 0, p50, p99,
           st.delivered ? cpu * 1e6 / st.delivered : 0);

    rd_kafka_destroy(rk);

    free(st.start);
    free(st.latency);

    return st.failed ? 1 : 0;
}


static int
rb_count(int argc, char **argv)
{
    int                               c, i, p, first;
    int64_t                           lo, hi, total;
    rd_kafka_t                       *rk;
    rd_kafka_topic_t                 *rkt;
    const char                       *brokers;
    rd_kafka_resp_err_t               err;
    const struct rd_kafka_metadata   *md;

    brokers = NULL;

    while ((c = getopt(argc, argv, "b:")) != -1) {
        switch (c) {
        case 'b':
            brokers = optarg;
            break;
        default:
            rb_usage();
            return 2;
        }
    }

    if (brokers == NULL || optind >= argc) {
        rb_usage();
        return 2;
    }

    rk = rb_new(brokers, 0, 0, NULL);

    printf("{");
    first = 1;

    for (i = optind; i < argc; i++) {
        rkt = rd_kafka_topic_new(rk, argv[i], NULL);

        err = rd_kafka_metadata(rk, 0, rkt, &md, RB_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR
            || md->topic_cnt != 1 || md->topics[0].err)
        {
            fprintf(stderr, "rawbench: metadata of \"%s\": %s\n", argv[i],
                    rd_kafka_err2str(err ? err : md->topics[0].err));
            return 1;
        }

        total = 0;

        for (p = 0; p < md->topics[0].partition_cnt; p++) {
            err = rd_kafka_query_watermark_offsets(rk, argv[i],
                                         md->topics[0].partitions[p].id,
                                         &lo, &hi, RB_TIMEOUT_MS);
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "rawbench: watermarks of \"%s\" [%d]: %s\n",
                        argv[i], md->topics[0].partitions[p].id,
                        rd_kafka_err2str(err));
                return 1;
            }

            total += hi;
        }

        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);

        printf("%s\"%s\":%" PRId64, first ? "" : ",", argv[i], total);
        first = 0;
    }

    printf("}\n");

    rd_kafka_destroy(rk);

    return 0;
}


/* extra librdkafka properties, applied after the module's defaults */
static char  *rb_options[32];
static int    rb_noptions;


static void
rb_option(char *spec)
{
    if (strchr(spec, '=') == NULL || rb_noptions == 32) {
        fprintf(stderr, "rawbench: bad -o \"%s\"\n", spec);
        exit(2);
    }

    rb_options[rb_noptions++] = spec;
}


static rd_kafka_t *
rb_new(const char *brokers, int idempotent, int linger, rb_stats_t *st)
{
    int               i;
    char              buf[32], errstr[512], *eq;
    rd_kafka_t       *rk;
    rd_kafka_conf_t  *conf;

    conf = rd_kafka_conf_new();

    /* the module's defaults, see ngx_http_kafka_producer_init_conf() */
    rb_set(conf, "bootstrap.servers", brokers);
    rb_set(conf, "client.id", "rawbench");
    rb_set(conf, "request.timeout.ms", "1000");
    rb_set(conf, "message.timeout.ms", "120000");
    rb_set(conf, "retry.backoff.ms", "100");
    rb_set(conf, "message.send.max.retries", "10");
    snprintf(buf, sizeof(buf), "%d", linger);
    rb_set(conf, "linger.ms", buf);

    if (idempotent) {
        rb_set(conf, "enable.idempotence", "true");
        rb_set(conf, "acks", "all");
        rb_set(conf, "max.in.flight.requests.per.connection", "5");

    } else {
        rb_set(conf, "enable.idempotence", "false");
        rb_set(conf, "acks", "1");
    }

    for (i = 0; i < rb_noptions; i++) {
        eq = strchr(rb_options[i], '=');
        *eq = '\0';
        rb_set(conf, rb_options[i], eq + 1);
        *eq = '=';
    }

    if (st) {
        rd_kafka_conf_set_opaque(conf, st);
        rd_kafka_conf_set_dr_msg_cb(conf, rb_delivery);
    }

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "rawbench: %s\n", errstr);
        exit(1);
    }

    return rk;
}


static void
rb_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char  errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr))
        != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "rawbench: %s=%s: %s\n", name, value, errstr);
        exit(2);
    }
}


static void
rb_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    int64_t      i;
    rb_stats_t  *st = opaque;

    (void) rk;

    if (m->err) {
        st->failed++;
        return;
    }

    i = (int64_t) (intptr_t) m->_private;

    st->latency[st->delivered++] = (double) (rb_now() - st->start[i]) / 1e6;
}


static int64_t
rb_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


/* user and system CPU time of the process, all threads, in seconds */
static double
rb_cpu(void)
{
    struct rusage  ru;

    getrusage(RUSAGE_SELF, &ru);

    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
           + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}


static int
rb_cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}
