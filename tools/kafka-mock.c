
/*
 * kafka-mock: a Kafka protocol broker for the tests and for "make run".
 *
 * It hosts a librdkafka mock cluster in this process; other processes
 * (nginx with the module, kcat) connect to it over loopback TCP.
 *
 * Usage:
 *     kafka-mock [-b BROKERS] [-t TOPIC:PARTITIONS[:REPLICATION]]...
 *                [-f FIFO] [-s SOCKET] [-q]
 *
 * On startup one line "bootstrap.servers=HOST:PORT,..." is printed to
 * stdout.  Then line commands are read from stdin, from the FIFO and from
 * the clients of the Unix socket, if given; each is answered with one
 * line, "ok" or "error: ...": on stdout for stdin and the FIFO, to the
 * client itself for the socket (tools/fault is such a client).  Blank
 * lines and lines starting with "#" are ignored and not answered.
 *
 * The FIFO is reopened whenever its writer closes it, so that
 * "echo 'down 1' > FIFO" works any number of times; lines written to it
 * must end with "\n".  EOF on stdin ends the program unless -f or -s is
 * given.  The socket is removed on exit.
 *
 * Commands (BROKER is 1..N; CODE is a number or a librdkafka error name,
 * with or without the leading "_", e.g. NOT_LEADER_FOR_PARTITION or
 * TIMED_OUT; APIKEY is a number or one of Produce, Fetch, ListOffsets,
 * Metadata, OffsetCommit, OffsetFetch, FindCoordinator, ApiVersions,
 * InitProducerId, AddPartitionsToTxn, EndTxn):
 *
 *     rtt BROKER|all MS                           set broker RTT
 *     down BROKER|all                             take broker(s) down
 *     up BROKER|all                               bring broker(s) up
 *     error APIKEY CODE [COUNT]                   fail next requests
 *     broker-error BROKER|all APIKEY CODE RTT_MS [COUNT]
 *                                                 same, on one broker
 *                                                 (or on each)
 *     leader TOPIC PARTITION BROKER|none          move partition leader
 *     topic NAME PARTITIONS [REPLICATION]         create topic
 *     topic-error NAME CODE                       set topic error
 *     bootstraps                                  "ok HOST:PORT,..."
 *     quit                                        exit
 */


#define _GNU_SOURCE     /* accept4() */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>


#define KM_OK               0
#define KM_ERROR            -1
#define KM_EOF              1

#define KM_LINE_MAX         1024
#define KM_ARGS_MAX         8
#define KM_ANSWER_MAX       1024

#define KM_BROKERS_DEFAULT  3
#define KM_BROKERS_MAX      64
#define KM_PARTITIONS_MAX   10000
#define KM_COUNT_MAX        10000
#define KM_RTT_MAX          3600000

#define KM_IN_STDIN         0
#define KM_IN_FIFO          1
#define KM_IN_CLIENT        2
#define KM_CLIENTS_MAX      8
#define KM_INPUTS_MAX       (KM_IN_CLIENT + KM_CLIENTS_MAX)
#define KM_TOO_MANY         "error: too many clients\n"

#define KM_ALL_BROKERS      -1
#define KM_NO_BROKER        -1


typedef struct {
    int                  fd;
    int                  reply;      /* answers go to: -1 stdout, else fd */
    int                  skip;
    size_t               len;
    char                 buf[KM_LINE_MAX];
} km_input_t;


typedef struct {
    char                *name;
    int                  partitions;
    int                  replication;
} km_topic_t;


typedef int (*km_handler_pt)(char **argv);


typedef struct {
    const char          *name;
    int                  min;
    int                  max;
    km_handler_pt        handler;
    const char          *usage;
} km_command_t;


typedef struct {
    const char          *name;
    int16_t              key;
} km_api_key_t;


static void km_usage(FILE *f);
static int km_parse_topic_spec(char *spec, km_topic_t *t);
static int km_parse_long(const char *s, long min, long max, long *out);
static int km_parse_broker(const char *s, int all, int32_t *id);
static int km_parse_api_key(const char *s, int16_t *key);
static int km_parse_err(const char *s, rd_kafka_resp_err_t *err);
static int km_fail(const char *fmt, ...);
static int km_fail_err(const char *what, rd_kafka_resp_err_t err);
static int km_cmd_rtt(char **argv);
static int km_cmd_down(char **argv);
static int km_cmd_up(char **argv);
static int km_set_updown(const char *arg, int up);
static int km_cmd_error(char **argv);
static int km_cmd_broker_error(char **argv);
static int km_cmd_leader(char **argv);
static int km_cmd_topic(char **argv);
static int km_cmd_topic_error(char **argv);
static int km_cmd_bootstraps(char **argv);
static int km_cmd_quit(char **argv);
static void km_process_line(km_input_t *in, char *line);
static void km_reply(km_input_t *in, const char *fmt, ...);
static int km_read(km_input_t *in);
static void km_read_eof(km_input_t *in);
static int km_fifo_open(void);
static int km_socket_open(void);
static void km_socket_accept(int ls, km_input_t *in);
static void km_signal_handler(int signo);
static int km_signals_init(void);
static void km_log_null(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf);


static rd_kafka_mock_cluster_t  *km_cluster;
static const char               *km_fifo_path;
static const char               *km_socket_path;
static int                       km_brokers = KM_BROKERS_DEFAULT;
static int                       km_quit;
static int                       km_signal_pipe[2] = { -1, -1 };
static char                      km_answer[KM_ANSWER_MAX];


static km_command_t  km_commands[] = {
    { "rtt", 2, 2, km_cmd_rtt, "rtt BROKER|all MS" },
    { "down", 1, 1, km_cmd_down, "down BROKER|all" },
    { "up", 1, 1, km_cmd_up, "up BROKER|all" },
    { "error", 2, 3, km_cmd_error, "error APIKEY CODE [COUNT]" },
    { "broker-error", 4, 5, km_cmd_broker_error,
      "broker-error BROKER|all APIKEY CODE RTT_MS [COUNT]" },
    { "leader", 3, 3, km_cmd_leader, "leader TOPIC PARTITION BROKER|none" },
    { "topic", 2, 3, km_cmd_topic, "topic NAME PARTITIONS [REPLICATION]" },
    { "topic-error", 2, 2, km_cmd_topic_error, "topic-error NAME CODE" },
    { "bootstraps", 0, 0, km_cmd_bootstraps, "bootstraps" },
    { "quit", 0, 0, km_cmd_quit, "quit" },
    { NULL, 0, 0, NULL, NULL }
};


static km_api_key_t  km_api_keys[] = {
    { "Produce", 0 },
    { "Fetch", 1 },
    { "ListOffsets", 2 },
    { "Metadata", 3 },
    { "OffsetCommit", 8 },
    { "OffsetFetch", 9 },
    { "FindCoordinator", 10 },
    { "ApiVersions", 18 },
    { "InitProducerId", 22 },
    { "AddPartitionsToTxn", 24 },
    { "EndTxn", 26 },
    { NULL, 0 }
};


int
main(int argc, char **argv)
{
    int                  c, i, n, fd, ls, rc, quiet, ntopics;
    long                 v;
    char                 errstr[512];
    km_input_t           in[KM_INPUTS_MAX];
    km_topic_t          *topics;
    rd_kafka_t          *rk;
    struct pollfd        pfd[KM_INPUTS_MAX + 2];
    rd_kafka_conf_t     *conf;
    rd_kafka_resp_err_t  err;

    topics = calloc(argc, sizeof(km_topic_t));
    if (topics == NULL) {
        fprintf(stderr, "kafka-mock: out of memory\n");
        return 1;
    }

    quiet = 0;
    ntopics = 0;

    while ((c = getopt(argc, argv, "b:t:f:s:qh")) != -1) {

        switch (c) {

        case 'b':
            if (km_parse_long(optarg, 1, KM_BROKERS_MAX, &v) != KM_OK) {
                fprintf(stderr, "kafka-mock: invalid -b \"%s\"\n", optarg);
                return 2;
            }

            km_brokers = (int) v;
            break;

        case 't':
            /* parsed after all options: the default replication needs -b */
            topics[ntopics++].name = optarg;
            break;

        case 'f':
            km_fifo_path = optarg;
            break;

        case 's':
            km_socket_path = optarg;
            break;

        case 'q':
            quiet = 1;
            break;

        case 'h':
            km_usage(stdout);
            return 0;

        default:
            km_usage(stderr);
            return 2;
        }
    }

    if (optind != argc) {
        km_usage(stderr);
        return 2;
    }

    for (i = 0; i < ntopics; i++) {
        if (km_parse_topic_spec(topics[i].name, &topics[i]) != KM_OK) {
            fprintf(stderr, "kafka-mock: invalid -t: %s\n", km_answer);
            return 2;
        }
    }

    if (km_signals_init() != KM_OK) {
        return 1;
    }

    for (i = 0; i < KM_INPUTS_MAX; i++) {
        in[i].fd = -1;
        in[i].reply = -1;
        in[i].skip = 0;
        in[i].len = 0;
    }

    in[KM_IN_STDIN].fd = STDIN_FILENO;

    if (km_fifo_path != NULL) {
        in[KM_IN_FIFO].fd = km_fifo_open();
        if (in[KM_IN_FIFO].fd == -1) {
            return 1;
        }
    }

    ls = -1;

    conf = rd_kafka_conf_new();

    if (quiet) {
        rd_kafka_conf_set_log_cb(conf, km_log_null);
    }

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka-mock: rd_kafka_new() failed: %s\n", errstr);
        return 1;
    }

    km_cluster = rd_kafka_mock_cluster_new(rk, km_brokers);
    if (km_cluster == NULL) {
        fprintf(stderr, "kafka-mock: rd_kafka_mock_cluster_new() failed\n");
        rd_kafka_destroy(rk);
        return 1;
    }

    rc = 0;

    for (i = 0; i < ntopics; i++) {
        err = rd_kafka_mock_topic_create(km_cluster, topics[i].name,
                                         topics[i].partitions,
                                         topics[i].replication);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "kafka-mock: cannot create topic \"%s\": %s\n",
                    topics[i].name, rd_kafka_err2str(err));
            rc = 1;
            goto done;
        }
    }

    if (km_socket_path != NULL) {
        ls = km_socket_open();
        if (ls == -1) {
            rc = 1;
            goto done;
        }
    }

    printf("bootstrap.servers=%s\n",
           rd_kafka_mock_cluster_bootstraps(km_cluster));
    fflush(stdout);

    while (!km_quit) {

        n = 0;

        pfd[n].fd = km_signal_pipe[0];
        pfd[n].events = POLLIN;
        pfd[n].revents = 0;
        n++;

        pfd[n].fd = ls;
        pfd[n].events = POLLIN;
        pfd[n].revents = 0;
        n++;

        for (i = 0; i < KM_INPUTS_MAX; i++) {
            pfd[n].fd = in[i].fd;
            pfd[n].events = POLLIN;
            pfd[n].revents = 0;
            n++;
        }

        /* a negative fd is ignored by poll() */

        if (poll(pfd, n, -1) == -1) {
            if (errno == EINTR) {
                continue;
            }

            fprintf(stderr, "kafka-mock: poll() failed: %s\n",
                    strerror(errno));
            rc = 1;
            break;
        }

        if (pfd[0].revents) {
            break;
        }

        if (pfd[1].revents & POLLIN) {
            km_socket_accept(ls, in);
        }

        for (i = 0; i < KM_INPUTS_MAX && !km_quit; i++) {

            if (in[i].fd == -1
                || !(pfd[i + 2].revents & (POLLIN|POLLHUP|POLLERR)))
            {
                continue;
            }

            if (km_read(&in[i]) != KM_EOF) {
                continue;
            }

            if (i >= KM_IN_CLIENT) {
                /* a client closed its side: its last line, then close */
                km_read_eof(&in[i]);
                close(in[i].fd);
                in[i].fd = -1;
                in[i].reply = -1;
                continue;
            }

            if (i == KM_IN_STDIN) {
                in[i].fd = -1;

            } else {
                /*
                 * the FIFO writer went away: open the FIFO again before
                 * closing the old descriptor, so the FIFO never loses its
                 * last reader and nothing written meanwhile is dropped
                 */

                fd = km_fifo_open();
                close(in[i].fd);
                in[i].fd = fd;
            }

            km_read_eof(&in[i]);

            if (in[KM_IN_FIFO].fd == -1
                && (i == KM_IN_FIFO || ls == -1))
            {
                /*
                 * stdin without a FIFO or a socket, or the FIFO cannot be
                 * reopened
                 */

                if (i == KM_IN_FIFO) {
                    rc = 1;
                }

                km_quit = 1;
            }
        }
    }

done:

    rd_kafka_mock_cluster_destroy(km_cluster);
    rd_kafka_destroy(rk);

    for (i = KM_IN_FIFO; i < KM_INPUTS_MAX; i++) {
        if (in[i].fd != -1) {
            close(in[i].fd);
        }
    }

    if (ls != -1) {
        close(ls);
        unlink(km_socket_path);
    }

    free(topics);

    return rc;
}


static void
km_usage(FILE *f)
{
    fprintf(f,
        "usage: kafka-mock [-b BROKERS] [-t TOPIC:PARTITIONS[:REPLICATION]]..."
        " [-f FIFO] [-s SOCKET] [-q]\n"
        "  -b N     number of brokers (default %d)\n"
        "  -t SPEC  create a topic up front, replication defaults to"
        " min(3, N);\n"
        "           repeatable\n"
        "  -f PATH  also read commands from this FIFO (created if missing)\n"
        "  -s PATH  also accept commands on this Unix socket, answered to"
        " the client\n"
        "           (created, removed on exit; tools/fault is a client)\n"
        "  -q       quiet, no librdkafka logs on stderr\n"
        "  -h       this help\n"
        "commands, one per line, answered on stdout (stdin, FIFO) or to the"
        " client:\n"
        "  rtt BROKER|all MS\n"
        "  down BROKER|all\n"
        "  up BROKER|all\n"
        "  error APIKEY CODE [COUNT]\n"
        "  broker-error BROKER|all APIKEY CODE RTT_MS [COUNT]\n"
        "  leader TOPIC PARTITION BROKER|none\n"
        "  topic NAME PARTITIONS [REPLICATION]\n"
        "  topic-error NAME CODE\n"
        "  bootstraps\n"
        "  quit\n"
        "CODE: number or librdkafka error name, e.g. NOT_LEADER_FOR_PARTITION\n"
        "APIKEY: number or Produce, Fetch, ListOffsets, Metadata,"
        " InitProducerId, ...\n",
        KM_BROKERS_DEFAULT);
}


static int
km_parse_topic_spec(char *spec, km_topic_t *t)
{
    char  *p, *r;
    long   v;

    p = strchr(spec, ':');
    if (p == NULL || p == spec) {
        return km_fail("\"%s\" is not TOPIC:PARTITIONS[:REPLICATION]", spec);
    }

    *p++ = '\0';

    r = strchr(p, ':');
    if (r != NULL) {
        *r++ = '\0';
    }

    t->name = spec;

    if (km_parse_long(p, 1, KM_PARTITIONS_MAX, &v) != KM_OK) {
        return km_fail("bad partition count \"%s\" for \"%s\"", p, spec);
    }

    t->partitions = (int) v;
    t->replication = km_brokers < 3 ? km_brokers : 3;

    if (r != NULL) {
        if (km_parse_long(r, 1, km_brokers, &v) != KM_OK) {
            return km_fail("bad replication \"%s\" for \"%s\" (1..%d)",
                           r, spec, km_brokers);
        }

        t->replication = (int) v;
    }

    return KM_OK;
}


static int
km_parse_long(const char *s, long min, long max, long *out)
{
    long   v;
    char  *end;

    if (*s == '\0') {
        return KM_ERROR;
    }

    errno = 0;
    v = strtol(s, &end, 10);

    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return KM_ERROR;
    }

    *out = v;

    return KM_OK;
}


static int
km_parse_broker(const char *s, int all, int32_t *id)
{
    long  v;

    if (all && strcasecmp(s, "all") == 0) {
        *id = KM_ALL_BROKERS;
        return KM_OK;
    }

    if (km_parse_long(s, 1, km_brokers, &v) != KM_OK) {
        km_fail("bad broker \"%s\", expected 1..%d%s", s, km_brokers,
                all ? " or all" : "");
        return KM_ERROR;
    }

    *id = (int32_t) v;

    return KM_OK;
}


static int
km_parse_api_key(const char *s, int16_t *key)
{
    long           v;
    km_api_key_t  *a;

    for (a = km_api_keys; a->name != NULL; a++) {
        if (strcasecmp(s, a->name) == 0) {
            *key = a->key;
            return KM_OK;
        }
    }

    if (km_parse_long(s, 0, INT16_MAX, &v) != KM_OK) {
        km_fail("bad ApiKey \"%s\"", s);
        return KM_ERROR;
    }

    *key = (int16_t) v;

    return KM_OK;
}


static int
km_parse_err(const char *s, rd_kafka_resp_err_t *err)
{
    int                              pass;
    long                             v;
    size_t                           i, n, plen;
    const char                      *name;
    const struct rd_kafka_err_desc  *descs;

    if (km_parse_long(s, INT16_MIN, INT16_MAX, &v) == KM_OK) {
        *err = (rd_kafka_resp_err_t) v;
        return KM_OK;
    }

    plen = sizeof("RD_KAFKA_RESP_ERR_") - 1;

    if (strncasecmp(s, "RD_KAFKA_RESP_ERR_", plen) == 0) {
        s += plen;
    }

    rd_kafka_get_err_descs(&descs, &n);

    /* an exact match wins over a match without the leading "_" */

    for (pass = 0; pass < 2; pass++) {

        for (i = 0; i < n; i++) {

            name = descs[i].name;

            if (name == NULL) {
                continue;
            }

            if (pass == 1) {
                if (name[0] != '_') {
                    continue;
                }

                name++;
            }

            if (strcasecmp(s, name) == 0) {
                *err = descs[i].code;
                return KM_OK;
            }
        }
    }

    km_fail("unknown error code \"%s\"", s);

    return KM_ERROR;
}


static int
km_fail(const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(km_answer, sizeof(km_answer), fmt, args);
    va_end(args);

    return KM_ERROR;
}


static int
km_fail_err(const char *what, rd_kafka_resp_err_t err)
{
    return km_fail("%s: %s (%s)", what, rd_kafka_err2name(err),
                   rd_kafka_err2str(err));
}


static int
km_cmd_rtt(char **argv)
{
    long                 v;
    int32_t              id, first, last;
    rd_kafka_resp_err_t  err;

    if (km_parse_broker(argv[1], 1, &id) != KM_OK) {
        return KM_ERROR;
    }

    if (km_parse_long(argv[2], 0, KM_RTT_MAX, &v) != KM_OK) {
        return km_fail("bad RTT \"%s\", expected 0..%d ms", argv[2],
                       KM_RTT_MAX);
    }

    first = (id == KM_ALL_BROKERS) ? 1 : id;
    last = (id == KM_ALL_BROKERS) ? km_brokers : id;

    for (id = first; id <= last; id++) {
        err = rd_kafka_mock_broker_set_rtt(km_cluster, id, (int) v);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return km_fail_err("rd_kafka_mock_broker_set_rtt()", err);
        }
    }

    return KM_OK;
}


static int
km_cmd_down(char **argv)
{
    return km_set_updown(argv[1], 0);
}


static int
km_cmd_up(char **argv)
{
    return km_set_updown(argv[1], 1);
}


static int
km_set_updown(const char *arg, int up)
{
    int32_t              id, first, last;
    rd_kafka_resp_err_t  err;

    if (km_parse_broker(arg, 1, &id) != KM_OK) {
        return KM_ERROR;
    }

    if (id == KM_ALL_BROKERS) {
        first = 1;
        last = km_brokers;

    } else {
        first = id;
        last = id;
    }

    for (id = first; id <= last; id++) {

        if (up) {
            err = rd_kafka_mock_broker_set_up(km_cluster, id);

        } else {
            err = rd_kafka_mock_broker_set_down(km_cluster, id);
        }

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return km_fail_err(up ? "rd_kafka_mock_broker_set_up()"
                                  : "rd_kafka_mock_broker_set_down()", err);
        }
    }

    return KM_OK;
}


static int
km_cmd_error(char **argv)
{
    long                 v, i;
    int16_t              key;
    rd_kafka_resp_err_t  err, *errs;

    if (km_parse_api_key(argv[1], &key) != KM_OK
        || km_parse_err(argv[2], &err) != KM_OK)
    {
        return KM_ERROR;
    }

    v = 1;

    if (argv[3] != NULL
        && km_parse_long(argv[3], 1, KM_COUNT_MAX, &v) != KM_OK)
    {
        return km_fail("bad COUNT \"%s\", expected 1..%d", argv[3],
                       KM_COUNT_MAX);
    }

    errs = malloc(v * sizeof(rd_kafka_resp_err_t));
    if (errs == NULL) {
        return km_fail("out of memory");
    }

    for (i = 0; i < v; i++) {
        errs[i] = err;
    }

    rd_kafka_mock_push_request_errors_array(km_cluster, key, (size_t) v, errs);

    free(errs);

    return KM_OK;
}


static int
km_cmd_broker_error(char **argv)
{
    long                 rtt, v, i;
    int16_t              key;
    int32_t              id, first, last;
    rd_kafka_resp_err_t  err, rc;

    if (km_parse_broker(argv[1], 1, &id) != KM_OK
        || km_parse_api_key(argv[2], &key) != KM_OK
        || km_parse_err(argv[3], &err) != KM_OK)
    {
        return KM_ERROR;
    }

    if (km_parse_long(argv[4], 0, KM_RTT_MAX, &rtt) != KM_OK) {
        return km_fail("bad RTT_MS \"%s\", expected 0..%d", argv[4],
                       KM_RTT_MAX);
    }

    v = 1;

    if (argv[5] != NULL
        && km_parse_long(argv[5], 1, KM_COUNT_MAX, &v) != KM_OK)
    {
        return km_fail("bad COUNT \"%s\", expected 1..%d", argv[5],
                       KM_COUNT_MAX);
    }

    first = (id == KM_ALL_BROKERS) ? 1 : id;
    last = (id == KM_ALL_BROKERS) ? km_brokers : id;

    /* there is no array variant: push the (err, rtt) pairs one by one */

    for (id = first; id <= last; id++) {

        for (i = 0; i < v; i++) {
            rc = rd_kafka_mock_broker_push_request_error_rtts(km_cluster, id,
                                                              key, 1, err,
                                                              (int) rtt);
            if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
                return km_fail_err(
                    "rd_kafka_mock_broker_push_request_error_rtts()", rc);
            }
        }
    }

    return KM_OK;
}


static int
km_cmd_leader(char **argv)
{
    long                 v;
    int32_t              id;
    rd_kafka_resp_err_t  err;

    if (km_parse_long(argv[2], 0, INT32_MAX, &v) != KM_OK) {
        return km_fail("bad partition \"%s\"", argv[2]);
    }

    if (strcasecmp(argv[3], "none") == 0 || strcmp(argv[3], "-1") == 0) {
        id = KM_NO_BROKER;

    } else if (km_parse_broker(argv[3], 0, &id) != KM_OK) {
        return km_fail("bad broker \"%s\", expected 1..%d or none", argv[3],
                       km_brokers);
    }

    err = rd_kafka_mock_partition_set_leader(km_cluster, argv[1], (int32_t) v,
                                             id);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return km_fail_err("rd_kafka_mock_partition_set_leader()", err);
    }

    return KM_OK;
}


static int
km_cmd_topic(char **argv)
{
    long                 partitions, replication;
    rd_kafka_resp_err_t  err;

    if (km_parse_long(argv[2], 1, KM_PARTITIONS_MAX, &partitions) != KM_OK) {
        return km_fail("bad partition count \"%s\", expected 1..%d", argv[2],
                       KM_PARTITIONS_MAX);
    }

    replication = km_brokers < 3 ? km_brokers : 3;

    if (argv[3] != NULL
        && km_parse_long(argv[3], 1, km_brokers, &replication) != KM_OK)
    {
        return km_fail("bad replication \"%s\", expected 1..%d", argv[3],
                       km_brokers);
    }

    err = rd_kafka_mock_topic_create(km_cluster, argv[1], (int) partitions,
                                     (int) replication);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return km_fail_err("rd_kafka_mock_topic_create()", err);
    }

    return KM_OK;
}


static int
km_cmd_topic_error(char **argv)
{
    rd_kafka_resp_err_t  err;

    if (km_parse_err(argv[2], &err) != KM_OK) {
        return KM_ERROR;
    }

    rd_kafka_mock_topic_set_error(km_cluster, argv[1], err);

    return KM_OK;
}


static int
km_cmd_bootstraps(char **argv)
{
    (void) argv;

    snprintf(km_answer, sizeof(km_answer), "%s",
             rd_kafka_mock_cluster_bootstraps(km_cluster));

    return KM_OK;
}


static int
km_cmd_quit(char **argv)
{
    (void) argv;

    km_quit = 1;

    return KM_OK;
}


static void
km_process_line(km_input_t *in, char *line)
{
    int            argc, rc, many;
    char          *p, *argv[KM_ARGS_MAX + 1];
    km_command_t  *cmd;

    argc = 0;
    many = 0;
    p = line;

    for ( ;; ) {

        while (*p == ' ' || *p == '\t' || *p == '\r') {
            p++;
        }

        if (*p == '\0') {
            break;
        }

        if (argc == KM_ARGS_MAX) {
            many = 1;
            break;
        }

        argv[argc++] = p;

        while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r') {
            p++;
        }

        if (*p != '\0') {
            *p++ = '\0';
        }
    }

    if (argc == 0 || argv[0][0] == '#') {
        return;
    }

    argv[argc] = NULL;

    km_answer[0] = '\0';

    if (many) {
        rc = km_fail("too many arguments");
        goto answer;
    }

    for (cmd = km_commands; cmd->name != NULL; cmd++) {
        if (strcmp(argv[0], cmd->name) == 0) {
            break;
        }
    }

    if (cmd->name == NULL) {
        rc = km_fail("unknown command \"%s\"", argv[0]);
        goto answer;
    }

    if (argc - 1 < cmd->min || argc - 1 > cmd->max) {
        rc = km_fail("usage: %s", cmd->usage);
        goto answer;
    }

    rc = cmd->handler(argv);

answer:

    if (rc != KM_OK) {
        km_reply(in, "error: %s\n", km_answer);

    } else if (km_answer[0] != '\0') {
        km_reply(in, "ok %s\n", km_answer);

    } else {
        km_reply(in, "ok\n");
    }
}


static void
km_reply(km_input_t *in, const char *fmt, ...)
{
    int      n;
    char     buf[KM_ANSWER_MAX + 16];
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    if (n < 0) {
        return;
    }

    if ((size_t) n >= sizeof(buf)) {
        n = sizeof(buf) - 1;
        buf[n - 1] = '\n';
    }

    if (in->reply == -1) {
        fwrite(buf, 1, n, stdout);
        fflush(stdout);
        return;
    }

    /*
     * a client socket: an answer is one short line, the socket buffer
     * takes it; a client that went away (EPIPE) only loses its answer
     */

    if (write(in->reply, buf, n) != n) {
        fprintf(stderr, "kafka-mock: answer to a socket client lost: %s\n",
                strerror(errno));
    }
}


static int
km_read(km_input_t *in)
{
    char     *p, *line, *last;
    ssize_t   n;

    n = read(in->fd, in->buf + in->len, sizeof(in->buf) - in->len - 1);

    if (n == -1) {
        if (errno == EAGAIN || errno == EINTR) {
            return KM_OK;
        }

        fprintf(stderr, "kafka-mock: read() failed: %s\n", strerror(errno));
        n = 0;
    }

    if (n == 0) {
        return KM_EOF;
    }

    in->len += n;
    in->buf[in->len] = '\0';

    line = in->buf;
    last = in->buf + in->len;

    while (!km_quit && (p = memchr(line, '\n', last - line)) != NULL) {

        *p = '\0';

        if (in->skip) {
            in->skip = 0;
            km_reply(in, "error: line too long\n");

        } else {
            km_process_line(in, line);
        }

        line = p + 1;
    }

    if (km_quit) {
        in->len = 0;
        return KM_OK;
    }

    in->len = last - line;
    memmove(in->buf, line, in->len);

    if (in->len == sizeof(in->buf) - 1) {
        /* no "\n" in a full buffer: drop the line up to its end */
        in->len = 0;
        in->skip = 1;
    }

    return KM_OK;
}


static void
km_read_eof(km_input_t *in)
{
    /* a last line without "\n" still counts */

    if (in->skip) {
        km_reply(in, "error: line too long\n");

    } else if (in->len > 0) {
        in->buf[in->len] = '\0';
        km_process_line(in, in->buf);
    }

    in->len = 0;
    in->skip = 0;
}


static int
km_fifo_open(void)
{
    int          fd;
    struct stat  st;

    if (stat(km_fifo_path, &st) == -1) {
        if (errno != ENOENT) {
            fprintf(stderr, "kafka-mock: stat(\"%s\") failed: %s\n",
                    km_fifo_path, strerror(errno));
            return -1;
        }

        if (mkfifo(km_fifo_path, 0600) == -1 && errno != EEXIST) {
            fprintf(stderr, "kafka-mock: mkfifo(\"%s\") failed: %s\n",
                    km_fifo_path, strerror(errno));
            return -1;
        }

    } else if (!S_ISFIFO(st.st_mode)) {
        fprintf(stderr, "kafka-mock: \"%s\" is not a FIFO\n", km_fifo_path);
        return -1;
    }

    /* non-blocking: open() must not wait for a writer */

    fd = open(km_fifo_path, O_RDONLY|O_NONBLOCK|O_CLOEXEC);
    if (fd == -1) {
        fprintf(stderr, "kafka-mock: open(\"%s\") failed: %s\n",
                km_fifo_path, strerror(errno));
        return -1;
    }

    return fd;
}


static int
km_socket_open(void)
{
    int                 fd;
    struct stat         st;
    struct sockaddr_un  sun;

    if (strlen(km_socket_path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "kafka-mock: socket path \"%s\" is too long\n",
                km_socket_path);
        return -1;
    }

    /* a socket left by a previous run that was killed */

    if (lstat(km_socket_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fprintf(stderr, "kafka-mock: \"%s\" exists and is not a socket\n",
                    km_socket_path);
            return -1;
        }

        unlink(km_socket_path);
    }

    fd = socket(AF_UNIX, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
    if (fd == -1) {
        fprintf(stderr, "kafka-mock: socket() failed: %s\n", strerror(errno));
        return -1;
    }

    memset(&sun, 0, sizeof(struct sockaddr_un));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, km_socket_path, strlen(km_socket_path));

    if (bind(fd, (struct sockaddr *) &sun, sizeof(struct sockaddr_un)) == -1
        || listen(fd, KM_CLIENTS_MAX) == -1)
    {
        fprintf(stderr, "kafka-mock: bind()/listen() on \"%s\" failed: %s\n",
                km_socket_path, strerror(errno));
        close(fd);
        return -1;
    }

    return fd;
}


static void
km_socket_accept(int ls, km_input_t *in)
{
    int  i, fd;

    for ( ;; ) {
        fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK|SOCK_CLOEXEC);

        if (fd == -1) {
            if (errno != EAGAIN && errno != EINTR) {
                fprintf(stderr, "kafka-mock: accept4() failed: %s\n",
                        strerror(errno));
            }

            return;
        }

        for (i = KM_IN_CLIENT; i < KM_INPUTS_MAX; i++) {
            if (in[i].fd == -1) {
                break;
            }
        }

        if (i == KM_INPUTS_MAX) {
            if (write(fd, KM_TOO_MANY, sizeof(KM_TOO_MANY) - 1) == -1) {
                /* the client is told nothing more: it sees the close */
            }

            close(fd);
            continue;
        }

        in[i].fd = fd;
        in[i].reply = fd;
        in[i].skip = 0;
        in[i].len = 0;
    }
}


static void
km_signal_handler(int signo)
{
    int  saved;

    (void) signo;

    saved = errno;

    if (write(km_signal_pipe[1], "x", 1) == -1) {
        /* the pipe is full: a wakeup is pending anyway */
    }

    errno = saved;
}


static int
km_signals_init(void)
{
    int               i;
    struct sigaction  sa;

    if (pipe(km_signal_pipe) == -1) {
        fprintf(stderr, "kafka-mock: pipe() failed: %s\n", strerror(errno));
        return KM_ERROR;
    }

    for (i = 0; i < 2; i++) {
        if (fcntl(km_signal_pipe[i], F_SETFL, O_NONBLOCK) == -1
            || fcntl(km_signal_pipe[i], F_SETFD, FD_CLOEXEC) == -1)
        {
            fprintf(stderr, "kafka-mock: fcntl() failed: %s\n",
                    strerror(errno));
            return KM_ERROR;
        }
    }

    memset(&sa, 0, sizeof(struct sigaction));
    sigemptyset(&sa.sa_mask);

    sa.sa_handler = km_signal_handler;

    if (sigaction(SIGTERM, &sa, NULL) == -1
        || sigaction(SIGINT, &sa, NULL) == -1)
    {
        fprintf(stderr, "kafka-mock: sigaction() failed: %s\n",
                strerror(errno));
        return KM_ERROR;
    }

    sa.sa_handler = SIG_IGN;

    if (sigaction(SIGPIPE, &sa, NULL) == -1) {
        fprintf(stderr, "kafka-mock: sigaction() failed: %s\n",
                strerror(errno));
        return KM_ERROR;
    }

    return KM_OK;
}


static void
km_log_null(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void) rk;
    (void) level;
    (void) fac;
    (void) buf;
}
