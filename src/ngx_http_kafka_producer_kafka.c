
/*
 * ngx_http_kafka_producer_module: per-worker producers and delivery.
 *
 * Each worker owns one plain and one idempotent librdkafka producer,
 * created after fork.  librdkafka writes a byte into a pipe when its main
 * queue becomes non-empty; the read end of the pipe is an nginx read
 * event, so delivery reports, errors and logs are served on the worker's
 * own thread from nginx's event loop, and no request path ever waits.
 */


#include "ngx_http_kafka_producer_kafka.h"
#include "ngx_http_kafka_producer_metrics.h"

#include <grp.h>
#include <pwd.h>
#include <yajl/yajl_tree.h>


static char *ngx_http_kafka_producer_check_producers(ngx_conf_t *cf,
    ngx_http_kafka_producer_main_conf_t *kmcf);
static ngx_int_t ngx_http_kafka_producer_check_modes(
    ngx_http_kafka_producer_main_conf_t *kmcf, char *errstr, size_t size);
static ngx_int_t ngx_http_kafka_producer_client_init(ngx_cycle_t *cycle,
    ngx_http_kafka_producer_main_conf_t *kmcf, ngx_uint_t mode);
static ngx_int_t ngx_http_kafka_producer_client_open(
    ngx_http_kafka_producer_client_t *client);
static void ngx_http_kafka_producer_client_failed(
    ngx_http_kafka_producer_client_t *client, ngx_err_t err,
    const char *reason);
static void ngx_http_kafka_producer_client_backoff(
    ngx_http_kafka_producer_client_t *client);
static void ngx_http_kafka_producer_retry_handler(ngx_event_t *ev);
static void ngx_http_kafka_producer_client_close(
    ngx_http_kafka_producer_client_t *client);
static void ngx_http_kafka_producer_client_fail(
    ngx_http_kafka_producer_client_t *client, ngx_uint_t reason);
static void ngx_http_kafka_producer_client_poll(
    ngx_http_kafka_producer_client_t *client);
static void ngx_http_kafka_producer_notify_handler(ngx_event_t *rev);
static ngx_http_kafka_producer_worker_t *ngx_http_kafka_producer_worker(void);
static void ngx_http_kafka_producer_exit_start(
    ngx_http_kafka_producer_worker_t *w);
static void ngx_http_kafka_producer_shutdown_handler(ngx_event_t *ev);
static void ngx_http_kafka_producer_exit_purge(
    ngx_http_kafka_producer_worker_t *w, ngx_uint_t nonblocking);
static void ngx_http_kafka_producer_poll_handler(ngx_event_t *ev);
static void ngx_http_kafka_producer_expire_handler(ngx_event_t *ev);
static void ngx_http_kafka_producer_delivery(rd_kafka_t *rk,
    const rd_kafka_message_t *m, void *opaque);
static void ngx_http_kafka_producer_finish(ngx_http_kafka_producer_msg_t *msg,
    ngx_http_kafka_producer_event_t *ev);
static void ngx_http_kafka_producer_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);
static void ngx_http_kafka_producer_log(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf);
static int ngx_http_kafka_producer_stats(rd_kafka_t *rk, char *json,
    size_t len, void *opaque);
static void ngx_http_kafka_producer_last_error(
    ngx_http_kafka_producer_client_t *client, rd_kafka_resp_err_t err,
    const char *text);
static ngx_int_t ngx_http_kafka_producer_conf_set(ngx_conf_t *cf,
    rd_kafka_conf_t *conf, char *name, char *value);


#define NGX_HTTP_KAFKA_PRODUCER_POLL_INTERVAL  1000
#define NGX_HTTP_KAFKA_PRODUCER_PURGE_WAIT     2000

/*
 * librdkafka reports a message that times out in its queue within a
 * second of message.timeout.ms (its timeout scan runs every second), one
 * in flight when its request times out; past this margin the message's
 * handler is told "no report within the delivery timeout" (possibly
 * persisted) and librdkafka's own report, when it comes, is a late one
 */
#define NGX_HTTP_KAFKA_PRODUCER_EXPIRE_MARGIN  2000

/* retries of a producer that cannot be created, in ms */
#define NGX_HTTP_KAFKA_PRODUCER_BACKOFF_MIN    500
#define NGX_HTTP_KAFKA_PRODUCER_BACKOFF_MAX    30000

/*
 * Delivery contexts are recycled: a send takes one from the worker's free
 * list instead of malloc() and its delivery report puts it back, up to
 * this many.
 */
#define NGX_HTTP_KAFKA_PRODUCER_FREE_MSGS_MAX  1024


static ngx_str_t  ngx_http_kafka_producer_refused[] = {
    ngx_string("acks"),
    ngx_string("request.required.acks"),
    ngx_string("enable.idempotence"),
    ngx_string("transactional.id"),
    ngx_string("log.queue"),
    ngx_null_string
};


char *ngx_http_kafka_producer_mode_names[] = {
    "plain", "idempotent"
};


char *
ngx_http_kafka_producer_check_option(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_int_t         rc;
    ngx_str_t        *s;
    rd_kafka_conf_t  *conf;

    for (s = ngx_http_kafka_producer_refused; s->len; s++) {
        if (name->len == s->len
            && ngx_strncasecmp(name->data, s->data, s->len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "librdkafka property \"%V\" cannot be set: "
                               "it defines the plain and idempotent "
                               "producers of the module", name);
            return NGX_CONF_ERROR;
        }
    }

    conf = rd_kafka_conf_new();
    if (conf == NULL) {
        return NGX_CONF_ERROR;
    }

    rc = ngx_http_kafka_producer_conf_set(cf, conf, (char *) name->data,
                                          (char *) value->data);

    rd_kafka_conf_destroy(conf);

    return rc == NGX_OK ? NGX_CONF_OK : NGX_CONF_ERROR;
}


static void
ngx_http_kafka_producer_conf_cleanup(void *data)
{
    rd_kafka_conf_t  *conf = data;

    rd_kafka_conf_destroy(conf);
}


char *
ngx_http_kafka_producer_init_conf(ngx_conf_t *cf,
    ngx_http_kafka_producer_main_conf_t *kmcf)
{
    char                 buf[64];
    size_t               size;
    ngx_uint_t           i, linger_option;
    ngx_keyval_t        *kv;
    rd_kafka_conf_t     *conf;
    ngx_pool_cleanup_t  *cln;

    conf = rd_kafka_conf_new();
    if (conf == NULL) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        rd_kafka_conf_destroy(conf);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_kafka_producer_conf_cleanup;
    cln->data = conf;

    kmcf->conf = conf;

    if (kmcf->brokers.len
        && ngx_http_kafka_producer_conf_set(cf, conf, "bootstrap.servers",
                                            (char *) kmcf->brokers.data)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

#define ngx_http_kafka_producer_set_number(name, n)                          \
    ngx_sprintf((u_char *) buf, "%ui%Z", (ngx_uint_t) (n));                   \
    if (ngx_http_kafka_producer_conf_set(cf, conf, name, buf) != NGX_OK) {    \
        return NGX_CONF_ERROR;                                                \
    }

    ngx_http_kafka_producer_set_number("request.timeout.ms",
                                       kmcf->request_timeout);
    ngx_http_kafka_producer_set_number("message.timeout.ms",
                                       kmcf->delivery_timeout);
    ngx_http_kafka_producer_set_number("retry.backoff.ms",
                                       kmcf->retry_backoff);
    ngx_http_kafka_producer_set_number("message.send.max.retries",
                                       kmcf->retries);
    ngx_http_kafka_producer_set_number("linger.ms", kmcf->linger);

#undef ngx_http_kafka_producer_set_number

    if (ngx_http_kafka_producer_conf_set(cf, conf, "client.id",
                                         "nginx-kafka-producer")
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* the health detail shows librdkafka's statistics */
    if (ngx_http_kafka_producer_conf_set(cf, conf, "statistics.interval.ms",
                                         "1000")
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    linger_option = 0;

    if (kmcf->options) {
        kv = kmcf->options->elts;

        for (i = 0; i < kmcf->options->nelts; i++) {
            if (ngx_http_kafka_producer_conf_set(cf, conf,
                                                 (char *) kv[i].key.data,
                                                 (char *) kv[i].value.data)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            if (ngx_strcmp(kv[i].key.data, "linger.ms") == 0
                || ngx_strcmp(kv[i].key.data, "queue.buffering.max.ms") == 0)
            {
                linger_option = 1;
            }
        }
    }

    size = sizeof(buf);
    if (rd_kafka_conf_get(conf, "bootstrap.servers", buf, &size)
        != RD_KAFKA_CONF_OK || size <= 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"kafka_producer_send\" requires "
                           "\"kafka_producer_brokers\"");
        return NGX_CONF_ERROR;
    }

    /* librdkafka checks these only when a producer is created */

    size = sizeof(buf);
    if (rd_kafka_conf_get(conf, "linger.ms", buf, &size) == RD_KAFKA_CONF_OK
        && ngx_atoi((u_char *) buf, size - 1) != NGX_ERROR)
    {
        kmcf->linger = ngx_atoi((u_char *) buf, size - 1);
    }

    if (linger_option) {
        /* "kafka_producer_option linger.ms" is for both producers */
        kmcf->idempotent_linger = kmcf->linger;
    }

    size = sizeof(buf);
    if (rd_kafka_conf_get(conf, "message.timeout.ms", buf, &size)
        == RD_KAFKA_CONF_OK
        && ngx_atoi((u_char *) buf, size - 1) != NGX_ERROR)
    {
        kmcf->delivery_timeout = ngx_atoi((u_char *) buf, size - 1);
    }

    ngx_conf_init_msec_value(kmcf->shutdown_timeout, kmcf->delivery_timeout);

    if (kmcf->delivery_timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "an infinite delivery timeout "
                           "(message.timeout.ms 0) is not supported: "
                           "every accepted message must get an answer");
        return NGX_CONF_ERROR;
    }

    if (ngx_max(kmcf->linger, kmcf->idempotent_linger)
        >= kmcf->delivery_timeout)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the linger time (%M ms) must be less than "
                           "the delivery timeout (%M ms)",
                           ngx_max(kmcf->linger, kmcf->idempotent_linger),
                           kmcf->delivery_timeout);
        return NGX_CONF_ERROR;
    }

    /*
     * Some properties are checked only when a producer is created (TLS
     * files, SASL mechanisms, what idempotence refuses): build both
     * producers exactly as a worker will, as the worker's user, so that
     * "nginx -t" and a reload catch what would stop every worker.
     */

    return ngx_http_kafka_producer_check_producers(cf, kmcf);
}


/*
 * The configuration of one producer, as the workers run it: the common
 * properties of "kmcf->conf", then what defines the mode.  Returns a new
 * rd_kafka_conf_t that the caller owns (rd_kafka_new() takes it, or
 * rd_kafka_conf_destroy()), or NULL when memory runs out.
 */

rd_kafka_conf_t *
ngx_http_kafka_producer_conf_mode(ngx_http_kafka_producer_main_conf_t *kmcf,
    ngx_uint_t mode)
{
    char              errstr[512], buf[32];
    size_t            size;
    ngx_int_t         n;
    rd_kafka_conf_t  *conf;

    conf = rd_kafka_conf_dup(kmcf->conf);
    if (conf == NULL) {
        return NULL;
    }

    if (mode == NGX_HTTP_KAFKA_PRODUCER_PLAIN) {
        (void) rd_kafka_conf_set(conf, "enable.idempotence", "false",
                                 errstr, sizeof(errstr));
        (void) rd_kafka_conf_set(conf, "acks", "1", errstr, sizeof(errstr));

        return conf;
    }

    (void) rd_kafka_conf_set(conf, "enable.idempotence", "true",
                             errstr, sizeof(errstr));
    (void) rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr));

    size = sizeof(buf);
    if (rd_kafka_conf_get(conf, "max.in.flight.requests.per.connection",
                          buf, &size)
        == RD_KAFKA_CONF_OK)
    {
        n = ngx_atoi((u_char *) buf, size - 1);

        if (n == NGX_ERROR || n > 5) {
            (void) rd_kafka_conf_set(conf,
                                     "max.in.flight.requests.per.connection",
                                     "5", errstr, sizeof(errstr));
        }
    }

    /*
     * idempotence needs retries: a retry count of 0, whether set by
     * "kafka_producer_retries" or by "kafka_producer_option retries" (an
     * alias), keeps librdkafka's default for the idempotent producer
     */

    size = sizeof(buf);
    if (rd_kafka_conf_get(conf, "message.send.max.retries", buf, &size)
        == RD_KAFKA_CONF_OK
        && ngx_atoi((u_char *) buf, size - 1) == 0)
    {
        (void) rd_kafka_conf_set(conf, "message.send.max.retries",
                                 "2147483647", errstr, sizeof(errstr));
    }

    if (kmcf->idempotent_linger != kmcf->linger) {
        ngx_sprintf((u_char *) buf, "%M%Z", kmcf->idempotent_linger);
        (void) rd_kafka_conf_set(conf, "linger.ms", buf, errstr,
                                 sizeof(errstr));
    }

    return conf;
}


/*
 * Creates, then destroys, each producer a worker will create, with no
 * broker connection.  When the master runs as root, this happens in a
 * child process that switches to the worker's user first, as
 * ngx_worker_process_init() does, so that files the worker cannot read
 * (a CA, a keytab) are found now.  librdkafka's message goes to the
 * parent through a pipe.  No librdkafka thread is ever left in the
 * master: the check's threads end with rd_kafka_destroy() or with the
 * child.
 */

static char *
ngx_http_kafka_producer_check_producers(ngx_conf_t *cf,
    ngx_http_kafka_producer_main_conf_t *kmcf)
{
    int               fd[2], status;
    char              errstr[512];
    ssize_t           n, len;
    ngx_pid_t         pid;
    ngx_uid_t         user;
    ngx_gid_t         group;
    struct group     *grp;
    struct passwd    *pwd;
    ngx_core_conf_t  *ccf;
    const char       *username;

    if (geteuid() != 0) {
        if (ngx_http_kafka_producer_check_modes(kmcf, errstr, sizeof(errstr))
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", errstr);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    /*
     * the workers' user: the "user" directive, which precedes "http" in
     * a configuration, or nginx's default, as ngx_core_module resolves it
     */

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    if (ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        user = ccf->user;
        group = ccf->group;
        username = ccf->username;

    } else {
        pwd = getpwnam(NGX_USER);
        grp = getgrnam(NGX_GROUP);

        if (pwd == NULL || grp == NULL) {
            /* nginx itself reports this */
            return NGX_CONF_OK;
        }

        user = pwd->pw_uid;
        group = grp->gr_gid;
        username = NGX_USER;
    }

    if (pipe(fd) == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno, "pipe() failed");
        return NGX_CONF_ERROR;
    }

    pid = fork();

    if (pid == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno, "fork() failed");
        (void) close(fd[0]);
        (void) close(fd[1]);
        return NGX_CONF_ERROR;
    }

    if (pid == 0) {
        (void) close(fd[0]);

        if (setgid(group) == -1
            || initgroups(username, group) == -1
            || setuid(user) == -1)
        {
            ngx_snprintf((u_char *) errstr, sizeof(errstr),
                         "cannot switch to the user \"%s\": %s%Z", username,
                         strerror(errno));

        } else if (ngx_http_kafka_producer_check_modes(kmcf, errstr,
                                                       sizeof(errstr))
                   == NGX_OK)
        {
            _exit(0);
        }

        len = ngx_strlen(errstr);

        if (write(fd[1], errstr, len) != len) {
            _exit(2);
        }

        _exit(1);
    }

    (void) close(fd[1]);

    len = 0;

    for ( ;; ) {
        n = read(fd[0], errstr + len, sizeof(errstr) - 1 - len);

        if (n > 0) {
            len += n;

            if (len < (ssize_t) sizeof(errstr) - 1) {
                continue;
            }
        }

        if (n == -1 && ngx_errno == NGX_EINTR) {
            continue;
        }

        break;
    }

    (void) close(fd[0]);

    errstr[len] = '\0';

    while (waitpid(pid, &status, 0) == -1) {
        if (ngx_errno != NGX_EINTR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "waitpid() failed");
            return NGX_CONF_ERROR;
        }
    }

    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return NGX_CONF_OK;
    }

    if (len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the check of the producers as user \"%s\" "
                           "failed (status %d)", username, status);
        return NGX_CONF_ERROR;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s (as user \"%s\")", errstr,
                       username);

    return NGX_CONF_ERROR;
}


/*
 * Creates and destroys the plain and the idempotent producer, with no
 * bootstrap servers (no connection) and no statistics.  Returns NGX_OK,
 * or NGX_ERROR with librdkafka's reason, naming the producer, in
 * "errstr" (NUL-terminated).
 */

static ngx_int_t
ngx_http_kafka_producer_check_modes(ngx_http_kafka_producer_main_conf_t *kmcf,
    char *errstr, size_t size)
{
    char              err[512];
    ngx_uint_t        mode;
    rd_kafka_t       *rk;
    rd_kafka_conf_t  *conf;

    for (mode = 0; mode < NGX_HTTP_KAFKA_PRODUCER_NMODES; mode++) {

        conf = ngx_http_kafka_producer_conf_mode(kmcf, mode);
        if (conf == NULL) {
            ngx_snprintf((u_char *) errstr, size, "out of memory%Z");
            return NGX_ERROR;
        }

        /* no connection, no statistics, and its logs stay in its queue */
        (void) rd_kafka_conf_set(conf, "bootstrap.servers", "", err,
                                 sizeof(err));
        (void) rd_kafka_conf_set(conf, "statistics.interval.ms", "0", err,
                                 sizeof(err));
        (void) rd_kafka_conf_set(conf, "log.queue", "true", err,
                                 sizeof(err));

        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));

        if (rk == NULL) {
            rd_kafka_conf_destroy(conf);
            ngx_snprintf((u_char *) errstr, size,
                         "librdkafka refuses the %s producer "
                         "configuration: %s%Z",
                         ngx_http_kafka_producer_mode_names[mode], err);
            return NGX_ERROR;
        }

        rd_kafka_destroy(rk);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_kafka_producer_conf_set(ngx_conf_t *cf, rd_kafka_conf_t *conf,
    char *name, char *value)
{
    char  errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr))
        != RD_KAFKA_CONF_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid librdkafka property \"%s\" = \"%s\": %s",
                           name, value, errstr);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_kafka_producer_init_clients(ngx_cycle_t *cycle)
{
    ngx_uint_t                            mode;
    ngx_http_kafka_producer_worker_t     *w;
    ngx_http_kafka_producer_main_conf_t  *kmcf;

    kmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_kafka_producer_module);

    if (kmcf == NULL || kmcf->conf == NULL) {
        return NGX_OK;
    }

    w = ngx_pcalloc(cycle->pool, sizeof(ngx_http_kafka_producer_worker_t));
    if (w == NULL) {
        return NGX_ERROR;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     w->in_flight = 0;
     *     w->exit_started = 0;
     *     w->exit_purged = 0;
     *     w->nfree_msgs = 0;
     */

    w->poll_ev.handler = ngx_http_kafka_producer_poll_handler;
    w->poll_ev.log = cycle->log;
    w->poll_ev.data = w;
    w->poll_ev.cancelable = 1;

    w->shutdown_ev.handler = ngx_http_kafka_producer_shutdown_handler;
    w->shutdown_ev.log = cycle->log;
    w->shutdown_ev.data = w;
    w->shutdown_ev.cancelable = 1;

    w->expire_ev.handler = ngx_http_kafka_producer_expire_handler;
    w->expire_ev.log = cycle->log;
    w->expire_ev.data = w;
    w->expire_ev.cancelable = 1;

    w->shutdown_timeout = kmcf->shutdown_timeout;
    w->delivery_timeout = kmcf->delivery_timeout;
    ngx_queue_init(&w->free_msgs);

    kmcf->worker = w;

    ngx_add_timer(&w->poll_ev, NGX_HTTP_KAFKA_PRODUCER_POLL_INTERVAL);

    for (mode = 0; mode < NGX_HTTP_KAFKA_PRODUCER_NMODES; mode++) {
        if (ngx_http_kafka_producer_client_init(cycle, kmcf, mode)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Sets up one producer of this worker.  Only a failure to allocate its
 * context stops the worker (NGX_ERROR); a producer that cannot be created
 * now is retried with a backoff, and its sends answer 503 meanwhile.
 */

static ngx_int_t
ngx_http_kafka_producer_client_init(ngx_cycle_t *cycle,
    ngx_http_kafka_producer_main_conf_t *kmcf, ngx_uint_t mode)
{
    char                               buf[32];
    size_t                             size;
    ngx_int_t                          n;
    rd_kafka_conf_t                   *conf;
    ngx_http_kafka_producer_client_t  *client;

    client = ngx_pcalloc(cycle->pool,
                         sizeof(ngx_http_kafka_producer_client_t));
    if (client == NULL) {
        return NGX_ERROR;
    }

    client->mode = mode;
    client->worker = kmcf->worker;
    client->log = cycle->log;
    client->notify_fd = (ngx_socket_t) -1;
    client->error.data = client->error_buf;
    ngx_queue_init(&client->in_flight);
    ngx_queue_init(&client->late);

    client->retry.handler = ngx_http_kafka_producer_retry_handler;
    client->retry.data = client;
    client->retry.log = cycle->log;
    client->retry.cancelable = 1;

    kmcf->worker->clients[mode] = client;

    conf = ngx_http_kafka_producer_conf_mode(kmcf, mode);
    if (conf == NULL) {
        return NGX_ERROR;
    }

    /* what librdkafka runs with, for the health detail */

    size = sizeof(buf);
    if (rd_kafka_conf_get(conf, "linger.ms", buf, &size) == RD_KAFKA_CONF_OK
        && (n = ngx_atoi((u_char *) buf, size - 1)) != NGX_ERROR)
    {
        client->linger = n;
    }

    size = sizeof(buf);
    if (rd_kafka_conf_get(conf, "message.max.bytes", buf, &size)
        == RD_KAFKA_CONF_OK
        && (n = ngx_atoi((u_char *) buf, size - 1)) != NGX_ERROR)
    {
        client->max_bytes = n;
    }

    (void) rd_kafka_conf_set(conf, "log.queue", "true", buf, sizeof(buf));

    rd_kafka_conf_set_opaque(conf, client);
    rd_kafka_conf_set_dr_msg_cb(conf, ngx_http_kafka_producer_delivery);
    rd_kafka_conf_set_error_cb(conf, ngx_http_kafka_producer_error);
    rd_kafka_conf_set_log_cb(conf, ngx_http_kafka_producer_log);
    rd_kafka_conf_set_stats_cb(conf, ngx_http_kafka_producer_stats);

    client->conf = conf;

    (void) ngx_http_kafka_producer_client_open(client);

    return NGX_OK;
}


/*
 * Creates the notify pipe (once) and a librdkafka handle.  On failure the
 * reason is kept in client->error, a retry is scheduled after the
 * backoff, and NGX_DECLINED is returned.
 */

static ngx_int_t
ngx_http_kafka_producer_client_open(ngx_http_kafka_producer_client_t *client)
{
    int                fd[2];
    char               errstr[512], value[32];
    size_t             size;
    ngx_int_t          n;
    rd_kafka_t        *rk;
    ngx_event_t       *rev;
    ngx_connection_t  *c;
    rd_kafka_conf_t   *conf;

    if (client->notify == NULL) {

        if (pipe(fd) == -1) {
            ngx_http_kafka_producer_client_failed(client, ngx_errno,
                                                  "pipe() failed");
            return NGX_DECLINED;
        }

        if (ngx_nonblocking(fd[0]) == -1 || ngx_nonblocking(fd[1]) == -1) {
            ngx_http_kafka_producer_client_failed(client, ngx_socket_errno,
                                                  ngx_nonblocking_n
                                                  " failed");
            (void) close(fd[0]);
            (void) close(fd[1]);
            return NGX_DECLINED;
        }

        c = ngx_get_connection(fd[0], client->log);
        if (c == NULL) {
            ngx_http_kafka_producer_client_failed(client, 0,
                                                  "no free connection for "
                                                  "the notify pipe");
            (void) close(fd[0]);
            (void) close(fd[1]);
            return NGX_DECLINED;
        }

        c->data = client;

        /*
         * an idle connection: nginx calls its read handler with c->close
         * set when a graceful shutdown starts, and again when
         * worker_shutdown_timeout expires
         */
        c->idle = 1;

        rev = c->read;
        rev->handler = ngx_http_kafka_producer_notify_handler;
        rev->log = client->log;

        if (ngx_handle_read_event(rev, 0) != NGX_OK) {
            ngx_http_kafka_producer_client_failed(client, 0,
                                                  "cannot watch the notify "
                                                  "pipe");
            ngx_close_connection(c);
            (void) close(fd[1]);
            return NGX_DECLINED;
        }

        client->notify = c;
        client->notify_fd = fd[1];
    }

    conf = rd_kafka_conf_dup(client->conf);
    if (conf == NULL) {
        ngx_http_kafka_producer_client_failed(client, 0, "out of memory");
        return NGX_DECLINED;
    }

    size = sizeof(value);

    client->reconnect_max = 10000;     /* librdkafka's default */

    if (rd_kafka_conf_get(conf, "reconnect.backoff.max.ms", value, &size)
        == RD_KAFKA_CONF_OK)
    {
        n = ngx_atoi((u_char *) value, ngx_strlen(value));
        client->reconnect_max = (n > 0) ? (ngx_msec_t) n : 10000;
    }

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        ngx_http_kafka_producer_client_failed(client, 0, errstr);
        return NGX_DECLINED;
    }

    client->rk = rk;
    client->fatal = 0;
    client->purged = 0;
    client->brokers_down = 0;
    client->down_since = 0;
    client->delivered_since_open = 0;
    client->error.len = 0;

    client->stats_time = 0;
    client->brokers = 0;
    client->brokers_up = 0;
    client->producer_id = -1;
    client->producer_epoch = -1;
    client->idemp_state.data = client->idemp_state_buf;
    client->idemp_state.len = 0;

    (void) rd_kafka_set_log_queue(rk, NULL);

    client->queue = rd_kafka_queue_get_main(rk);
    rd_kafka_queue_io_event_enable(client->queue, client->notify_fd, "1", 1);

    /*
     * librdkafka's threads may have queued events before the IO event was
     * enabled, and it writes the pipe only when the queue becomes
     * non-empty: wake the handler once to serve what is there.
     */
    if (write(client->notify_fd, "1", 1) != 1) {
        /* the pipe is not empty: the handler will run anyway */
    }

    if (client->failures) {
        ngx_log_error(NGX_LOG_NOTICE, client->log, 0,
                      "kafka_producer: %s producer %s started after %ui "
                      "failed attempt(s)",
                      ngx_http_kafka_producer_mode_names[client->mode],
                      rd_kafka_name(rk), client->failures);

    } else {
        ngx_log_error(NGX_LOG_INFO, client->log, 0,
                      "kafka_producer: %s producer %s started",
                      ngx_http_kafka_producer_mode_names[client->mode],
                      rd_kafka_name(rk));
    }

    /* "failures" counts until a delivery shows the producer works */

    return NGX_OK;
}


/*
 * A producer could not be created: keep the reason for the 503 answers
 * and the health detail, and try again after a backoff that doubles
 * from NGX_HTTP_KAFKA_PRODUCER_BACKOFF_MIN to _MAX ms.  The first failure
 * in a row is logged at "alert", the next ones at "warn".
 */

static void
ngx_http_kafka_producer_client_failed(ngx_http_kafka_producer_client_t *client,
    ngx_err_t err, const char *reason)
{
    u_char      *p;
    ngx_uint_t   level;

    p = ngx_snprintf(client->error_buf, sizeof(client->error_buf) - 1,
                     "%s", reason);

    if (err) {
        p = ngx_snprintf(p, client->error_buf + sizeof(client->error_buf)
                            - 1 - p, " (%d: %s)", err, strerror(err));
    }

    client->error.len = p - client->error_buf;
    client->failures++;

    ngx_http_kafka_producer_client_backoff(client);

    level = (client->failures == 1) ? NGX_LOG_ALERT : NGX_LOG_WARN;

    ngx_log_error(level, client->log, 0,
                  "kafka_producer: cannot create the %s producer: %V; "
                  "attempt %ui, next in %M ms",
                  ngx_http_kafka_producer_mode_names[client->mode],
                  &client->error, client->failures, client->backoff);
}


static void
ngx_http_kafka_producer_client_backoff(
    ngx_http_kafka_producer_client_t *client)
{
    if (client->backoff == 0) {
        client->backoff = NGX_HTTP_KAFKA_PRODUCER_BACKOFF_MIN;

    } else if (client->backoff < NGX_HTTP_KAFKA_PRODUCER_BACKOFF_MAX) {
        client->backoff = ngx_min(client->backoff * 2,
                                  NGX_HTTP_KAFKA_PRODUCER_BACKOFF_MAX);
    }

    client->retry_at = ngx_current_msec + client->backoff;

    if (!ngx_exiting) {
        ngx_add_timer(&client->retry, client->backoff);
    }
}


static void
ngx_http_kafka_producer_retry_handler(ngx_event_t *ev)
{
    ngx_http_kafka_producer_client_t  *client = ev->data;

    if (ngx_exiting || client->rk) {
        return;
    }

    (void) ngx_http_kafka_producer_client_open(client);
}


/*
 * Closes the librdkafka handle without waiting for Kafka: what it still
 * holds is purged (queued messages are reported as not persisted, those
 * in flight as possibly persisted) and the reports are served at once;
 * a message librdkafka did not report is failed by us.
 */

static void
ngx_http_kafka_producer_client_close(ngx_http_kafka_producer_client_t *client)
{
    rd_kafka_t  *rk;

    rk = client->rk;

    if (rk == NULL) {
        return;
    }

    if (client->n) {
        /* waits only for librdkafka's threads to hand back the messages */
        (void) rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE
                                  |RD_KAFKA_PURGE_F_INFLIGHT);
    }

    /* serve the reports of the purge, the last logs and errors */
    while (rd_kafka_poll(rk, 0) > 0) {
        /* void */
    }

    ngx_http_kafka_producer_client_fail(client,
                                        NGX_HTTP_KAFKA_PRODUCER_REASON_EXITING);

    rd_kafka_queue_io_event_enable(client->queue, -1, NULL, 0);
    rd_kafka_queue_destroy(client->queue);
    client->queue = NULL;

    rd_kafka_destroy(rk);
    client->rk = NULL;
}


static void
ngx_http_kafka_producer_client_fail(ngx_http_kafka_producer_client_t *client,
    ngx_uint_t reason)
{
    ngx_queue_t                      *q;
    ngx_http_kafka_producer_msg_t    *msg;
    ngx_http_kafka_producer_event_t   ev;

    for ( ;; ) {
        if (!ngx_queue_empty(&client->in_flight)) {
            q = ngx_queue_head(&client->in_flight);

        } else if (!ngx_queue_empty(&client->late)) {
            q = ngx_queue_head(&client->late);

        } else {
            break;
        }

        msg = ngx_queue_data(q, ngx_http_kafka_producer_msg_t, queue);

        ngx_log_error(NGX_LOG_ERR, client->log, 0,
                      "kafka_producer: message without a delivery report "
                      "failed, it may have been written: the %s producer "
                      "is closing",
                      ngx_http_kafka_producer_mode_names[client->mode]);

        ngx_memzero(&ev, sizeof(ngx_http_kafka_producer_event_t));
        ev.partition = RD_KAFKA_PARTITION_UA;
        ev.offset = -1;
        ev.err = RD_KAFKA_RESP_ERR__DESTROY;
        ev.reason = reason;
        ev.persisted = RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;

        ngx_http_kafka_producer_metrics_record(client->mode, NULL, 0, 0);

        ngx_http_kafka_producer_finish(msg, &ev);
    }
}


void
ngx_http_kafka_producer_exit_clients(ngx_cycle_t *cycle)
{
    ngx_uint_t                            mode;
    ngx_queue_t                          *q;
    ngx_http_kafka_producer_worker_t     *w;
    ngx_http_kafka_producer_client_t     *client;
    ngx_http_kafka_producer_main_conf_t  *kmcf;

    kmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_kafka_producer_module);

    if (kmcf == NULL || kmcf->worker == NULL) {
        return;
    }

    w = kmcf->worker;

    for (mode = 0; mode < NGX_HTTP_KAFKA_PRODUCER_NMODES; mode++) {
        client = w->clients[mode];

        if (client == NULL) {
            continue;
        }

        ngx_http_kafka_producer_client_close(client);

        if (client->retry.timer_set) {
            ngx_del_timer(&client->retry);
        }

        if (client->notify) {
            ngx_close_connection(client->notify);
            client->notify = NULL;
        }

        if (client->notify_fd != (ngx_socket_t) -1) {
            (void) close(client->notify_fd);
            client->notify_fd = (ngx_socket_t) -1;
        }

        if (client->conf) {
            rd_kafka_conf_destroy(client->conf);
            client->conf = NULL;
        }

        w->clients[mode] = NULL;
    }

    if (w->poll_ev.timer_set) {
        ngx_del_timer(&w->poll_ev);
    }

    if (w->shutdown_ev.timer_set) {
        ngx_del_timer(&w->shutdown_ev);
    }

    if (w->expire_ev.timer_set) {
        ngx_del_timer(&w->expire_ev);
    }

    while (!ngx_queue_empty(&w->free_msgs)) {
        q = ngx_queue_head(&w->free_msgs);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_http_kafka_producer_msg_t, queue));
    }

    w->nfree_msgs = 0;

    kmcf->worker = NULL;
}


ngx_http_kafka_producer_client_t *
ngx_http_kafka_producer_client_get(ngx_uint_t mode)
{
    ngx_http_kafka_producer_worker_t  *w;

    w = ngx_http_kafka_producer_worker();

    return w ? w->clients[mode] : NULL;
}


/* this process's producers, NULL in one without (master, helpers) */

static ngx_http_kafka_producer_worker_t *
ngx_http_kafka_producer_worker(void)
{
    ngx_http_kafka_producer_main_conf_t  *kmcf;

    kmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_kafka_producer_module);

    return kmcf ? kmcf->worker : NULL;
}


ngx_http_kafka_producer_client_t *
ngx_http_kafka_producer_client(ngx_uint_t mode)
{
    ngx_http_kafka_producer_client_t  *client;

    client = ngx_http_kafka_producer_client_get(mode);

    if (client == NULL || client->rk == NULL || client->fatal) {
        /* being created or replaced */
        return NULL;
    }

    return client;
}


time_t
ngx_http_kafka_producer_client_retry_after(
    ngx_http_kafka_producer_client_t *client, rd_kafka_resp_err_t err)
{
    ngx_msec_t      max;
    ngx_uint_t      queued, rate;
    ngx_msec_int_t  t;

    if (client->rk == NULL || client->fatal) {
        t = (ngx_msec_int_t) (client->retry_at - ngx_current_msec);
        return (t > 1000) ? (t + 999) / 1000 : 1;
    }

    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && client->down_since == 0) {
        queued = (ngx_uint_t) rd_kafka_outq_len(client->rk);
        rate = client->drain_rate ? client->drain_rate : 1;
        max = client->worker->delivery_timeout;

        t = (ngx_msec_int_t) ngx_min(queued * 1000 / rate, max);

        return (t > 1000) ? (t + 999) / 1000 : 1;
    }

    if (client->down_since) {
        t = (ngx_msec_int_t) (ngx_current_msec - client->down_since);
        t = ngx_min(t, (ngx_msec_int_t) client->reconnect_max);

        return (t > 1000) ? (t + 999) / 1000 : 1;
    }

    return 1;
}


time_t
ngx_http_kafka_producer_client_unavailable(ngx_uint_t mode,
    ngx_str_t *reason)
{
    ngx_msec_int_t                     left;
    ngx_http_kafka_producer_client_t  *client;

    client = ngx_http_kafka_producer_client_get(mode);

    if (client == NULL) {
        ngx_str_set(reason, "this worker has no producers");
        return 1;
    }

    if (client->rk && client->fatal) {
        ngx_str_set(reason, "it is being replaced after a fatal error");
        return 1;
    }

    if (client->error.len) {
        *reason = client->error;

    } else {
        ngx_str_set(reason, "it is being replaced after a fatal error");
    }

    left = (ngx_msec_int_t) (client->retry_at - ngx_current_msec);

    return (left > 1000) ? (left + 999) / 1000 : 1;
}


/*
 * A graceful shutdown: nginx calls this handler with c->close set when it
 * starts (the notify connection is idle), and again with c->error set
 * too when worker_shutdown_timeout expires.
 */

static void
ngx_http_kafka_producer_notify_handler(ngx_event_t *rev)
{
    u_char                             buf[64];
    ssize_t                            n;
    ngx_connection_t                  *c;
    ngx_http_kafka_producer_client_t  *client;

    c = rev->data;
    client = c->data;

    if (c->close) {
        c->close = 0;

        if (c->error) {
            /* worker_shutdown_timeout: answer every waiting client now */
            c->error = 0;
            ngx_http_kafka_producer_exit_purge(client->worker, 0);

        } else {
            ngx_http_kafka_producer_exit_start(client->worker);
        }
    }

    /*
     * librdkafka writes the pipe only when its queue goes from empty to
     * non-empty and epoll is edge-triggered here: drain the pipe first,
     * then serve the queue until it is empty.
     */

    for ( ;; ) {
        n = read(c->fd, buf, sizeof(buf));

        if (n > 0) {
            continue;
        }

        if (n == -1 && ngx_errno == NGX_EINTR) {
            continue;
        }

        if (n == -1 && ngx_errno != NGX_EAGAIN) {
            ngx_log_error(NGX_LOG_ALERT, client->log, ngx_errno,
                          "kafka_producer: read() from the notify pipe "
                          "failed");
        }

        break;
    }

    rev->ready = 0;

    ngx_http_kafka_producer_client_poll(client);
}


/*
 * The graceful shutdown of this worker has started: its messages get
 * kafka_producer_shutdown_timeout to be delivered, then what is left is
 * purged.  Called once per producer; the first call counts.
 */

static void
ngx_http_kafka_producer_exit_start(ngx_http_kafka_producer_worker_t *w)
{
    if (w->exit_started) {
        return;
    }

    w->exit_started = 1;

    if (w->in_flight) {
        ngx_log_error(NGX_LOG_INFO, w->poll_ev.log, 0,
                      "kafka_producer: shutting down with %ui message(s) "
                      "in flight, waiting up to %M ms for their delivery "
                      "reports", w->in_flight,
                      w->shutdown_timeout);
    }

    /* cancelable: only messages in flight hold the worker (poll timer) */

    ngx_add_timer(&w->shutdown_ev,
                  w->shutdown_timeout);
}


static void
ngx_http_kafka_producer_shutdown_handler(ngx_event_t *ev)
{
    ngx_http_kafka_producer_exit_purge(ev->data, 1);
}


/*
 * Purges every producer of this worker and serves the reports at once:
 * each waiting client and async record gets its answer, "not persisted"
 * for a message still queued here, "possibly persisted" for one that was
 * sent.  "nonblocking" leaves the reports of messages in flight to the
 * next wake-up, as in a graceful shutdown; otherwise this waits the short
 * time librdkafka's threads take to hand them back.
 */

static void
ngx_http_kafka_producer_exit_purge(ngx_http_kafka_producer_worker_t *w,
    ngx_uint_t nonblocking)
{
    int                                flags;
    ngx_uint_t                         mode;
    ngx_http_kafka_producer_client_t  *client;

    if (w->exit_purged == 0) {
        w->exit_purged = ngx_current_msec;
        if (w->exit_purged == 0) {
            w->exit_purged = 1;
        }
    }

    flags = RD_KAFKA_PURGE_F_QUEUE|RD_KAFKA_PURGE_F_INFLIGHT;

    if (nonblocking) {
        flags |= RD_KAFKA_PURGE_F_NON_BLOCKING;
    }

    for (mode = 0; mode < NGX_HTTP_KAFKA_PRODUCER_NMODES; mode++) {
        client = w->clients[mode];

        if (client == NULL || client->rk == NULL || client->n == 0) {
            continue;
        }

        ngx_log_error(NGX_LOG_WARN, client->log, 0,
                      "kafka_producer: shutdown, purging %ui message(s) of "
                      "the %s producer", client->n,
                      ngx_http_kafka_producer_mode_names[client->mode]);

        (void) rd_kafka_purge(client->rk, flags);

        ngx_http_kafka_producer_client_poll(client);
    }
}


static void
ngx_http_kafka_producer_client_poll(ngx_http_kafka_producer_client_t *client)
{
    if (client->rk == NULL) {
        return;
    }

    while (rd_kafka_poll(client->rk, 0) > 0) {
        /* void */
    }

    if (!client->fatal) {
        return;
    }

    /*
     * A fatal error makes an idempotent producer unusable: fail what it
     * holds, and replace it once every message has its report.
     */

    if (client->n) {
        if (!client->purged) {
            client->purged = 1;
            (void) rd_kafka_purge(client->rk, RD_KAFKA_PURGE_F_QUEUE
                                              |RD_KAFKA_PURGE_F_INFLIGHT
                                              |RD_KAFKA_PURGE_F_NON_BLOCKING);
        }

        return;
    }

    ngx_http_kafka_producer_client_close(client);

    client->replaced++;
    client->retries += client->retries_now;
    client->retries_now = 0;
    client->retries_sum = 0;
    ngx_http_kafka_producer_metrics_replacement(client->mode);

    if (ngx_exiting) {
        return;
    }

    if (client->delivered_since_open) {
        /* it worked: replace it at once */
        client->backoff = 0;

    } else {
        /*
         * it failed before delivering anything (e.g. InitProducerId
         * refused): do not create producers in a loop
         */
        ngx_str_set(&client->error, "it is being replaced after a fatal "
                                    "error");
        client->failures++;
        ngx_http_kafka_producer_client_backoff(client);

        ngx_log_error(NGX_LOG_WARN, client->log, 0,
                      "kafka_producer: the %s producer failed before any "
                      "delivery, replacing it in %M ms",
                      ngx_http_kafka_producer_mode_names[client->mode],
                      client->backoff);
        return;
    }

    (void) ngx_http_kafka_producer_client_open(client);
}


static void
ngx_http_kafka_producer_poll_handler(ngx_event_t *ev)
{
    ngx_http_kafka_producer_worker_t *w = ev->data;

    ngx_msec_t                         elapsed;
    ngx_uint_t                         mode, queued, done;
    ngx_http_kafka_producer_client_t  *client;

    if (ngx_exiting && !w->exit_started) {
        /* in case the notify connection missed the start */
        ngx_http_kafka_producer_exit_start(w);
    }

    for (mode = 0; mode < NGX_HTTP_KAFKA_PRODUCER_NMODES; mode++) {
        client = w->clients[mode];

        if (client == NULL) {
            continue;
        }

        queued = client->rk ? (ngx_uint_t) rd_kafka_outq_len(client->rk) : 0;

        done = client->delivered + client->failed;
        elapsed = ngx_current_msec - client->drain_time;

        if (elapsed) {
            /* a moving average: the last interval counts for half */
            client->drain_rate = (client->drain_rate
                                  + (done - client->drain_done) * 1000
                                    / elapsed) / 2;
            client->drain_done = done;
            client->drain_time = ngx_current_msec;
        }

        ngx_http_kafka_producer_metrics_worker(mode, client->n, queued,
                          client->brokers_up,
                          client->rk && !client->fatal && client->brokers_up,
                          client->retries + client->retries_now);

        if (client->rk == NULL) {
            continue;
        }

        ngx_http_kafka_producer_client_poll(client);

        if (w->exit_purged
            && client->n
            && ngx_current_msec - w->exit_purged
               > NGX_HTTP_KAFKA_PRODUCER_PURGE_WAIT)
        {
            /* librdkafka should have reported every purged message */
            ngx_http_kafka_producer_client_fail(client,
                                      NGX_HTTP_KAFKA_PRODUCER_REASON_EXITING);
        }
    }

    if (ngx_exiting && w->in_flight == 0) {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_KAFKA_PRODUCER_POLL_INTERVAL);
}


/*
 * Messages librdkafka has not reported within the delivery timeout and
 * the margin: their handlers get a "no report" event (possibly
 * persisted), so that no client waits and no async record stays PENDING
 * much past the delivery timeout; the messages wait in "late" for the
 * report librdkafka owes.  Oldest first: every message of a worker has
 * the same timeout.
 */

static void
ngx_http_kafka_producer_expire_handler(ngx_event_t *ev)
{
    ngx_http_kafka_producer_worker_t *w = ev->data;

    ngx_uint_t                         mode;
    ngx_msec_t                         next;
    ngx_queue_t                       *q;
    ngx_msec_int_t                     left;
    ngx_http_kafka_producer_msg_t     *msg;
    ngx_http_kafka_producer_event_t    rev;
    ngx_http_kafka_producer_client_t  *client;

    next = 0;

    for (mode = 0; mode < NGX_HTTP_KAFKA_PRODUCER_NMODES; mode++) {
        client = w->clients[mode];

        if (client == NULL) {
            continue;
        }

        while (!ngx_queue_empty(&client->in_flight)) {
            q = ngx_queue_head(&client->in_flight);
            msg = ngx_queue_data(q, ngx_http_kafka_producer_msg_t, queue);

            left = (ngx_msec_int_t) (msg->expires - ngx_current_msec);

            if (left > 0) {
                if (next == 0 || (ngx_msec_t) left < next) {
                    next = left;
                }

                break;
            }

            ngx_queue_remove(q);
            ngx_queue_insert_tail(&client->late, q);

            msg->expired = 1;
            client->expired++;

            ngx_log_error(NGX_LOG_WARN, client->log, 0,
                          "kafka_producer: no delivery report from the %s "
                          "producer within %M ms, answered as possibly "
                          "written",
                          ngx_http_kafka_producer_mode_names[client->mode],
                          w->delivery_timeout
                          + NGX_HTTP_KAFKA_PRODUCER_EXPIRE_MARGIN);

            if (msg->handler == NULL) {
                continue;
            }

            ngx_memzero(&rev, sizeof(ngx_http_kafka_producer_event_t));
            rev.partition = RD_KAFKA_PARTITION_UA;
            rev.offset = -1;
            rev.timestamp = -1;
            rev.err = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
            rev.reason = NGX_HTTP_KAFKA_PRODUCER_REASON_NO_REPORT;
            rev.persisted = RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
            rev.brokers_down = client->brokers_down;

            msg->handler(msg, &rev);
        }
    }

    if (next) {
        ngx_add_timer(ev, next);
    }
}


ngx_http_kafka_producer_msg_t *
ngx_http_kafka_producer_msg_create(ngx_http_kafka_producer_client_t *client,
    ngx_log_t *log)
{
    ngx_queue_t                       *q;
    ngx_http_kafka_producer_msg_t     *msg;
    ngx_http_kafka_producer_worker_t  *w;

    w = client->worker;

    if (!ngx_queue_empty(&w->free_msgs)) {
        q = ngx_queue_head(&w->free_msgs);
        ngx_queue_remove(q);
        w->nfree_msgs--;

        msg = ngx_queue_data(q, ngx_http_kafka_producer_msg_t, queue);

    } else {
        msg = ngx_alloc(sizeof(ngx_http_kafka_producer_msg_t), log);
        if (msg == NULL) {
            return NULL;
        }
    }

    ngx_memzero(msg, sizeof(ngx_http_kafka_producer_msg_t));

    msg->client = client;
    msg->start = ngx_http_kafka_producer_metrics_now();
    msg->expires = ngx_current_msec + w->delivery_timeout
                   + NGX_HTTP_KAFKA_PRODUCER_EXPIRE_MARGIN;

    ngx_queue_insert_tail(&client->in_flight, &msg->queue);
    client->n++;

    if (!w->expire_ev.timer_set) {
        ngx_add_timer(&w->expire_ev, w->delivery_timeout
                                     + NGX_HTTP_KAFKA_PRODUCER_EXPIRE_MARGIN);
    }

    if (w->in_flight++ == 0) {
        w->poll_ev.cancelable = 0;
    }

    return msg;
}


void
ngx_http_kafka_producer_msg_free(ngx_http_kafka_producer_msg_t *msg)
{
    ngx_http_kafka_producer_worker_t  *w;

    w = msg->client->worker;

    ngx_queue_remove(&msg->queue);
    msg->client->n--;

    if (--w->in_flight == 0) {
        w->poll_ev.cancelable = 1;
    }

    if (w->nfree_msgs
        < NGX_HTTP_KAFKA_PRODUCER_FREE_MSGS_MAX)
    {
        ngx_queue_insert_head(&w->free_msgs,
                              &msg->queue);
        w->nfree_msgs++;
        return;
    }

    ngx_free(msg);
}


rd_kafka_resp_err_t
ngx_http_kafka_producer_produce(ngx_http_kafka_producer_msg_t *msg,
    ngx_http_kafka_producer_record_t *rec)
{
    ngx_uint_t                         i;
    ngx_keyval_t                      *h;
    rd_kafka_resp_err_t                err;
    rd_kafka_headers_t                *hdrs;
    ngx_http_kafka_producer_client_t  *client;

    client = msg->client;
    hdrs = NULL;

    if (rec->headers && rec->headers->nelts) {
        hdrs = rd_kafka_headers_new(rec->headers->nelts);
        if (hdrs == NULL) {
            ngx_http_kafka_producer_msg_free(msg);
            return RD_KAFKA_RESP_ERR__FAIL;
        }

        h = rec->headers->elts;

        for (i = 0; i < rec->headers->nelts; i++) {
            (void) rd_kafka_header_add(hdrs, (char *) h[i].key.data,
                                       h[i].key.len, h[i].value.data,
                                       h[i].value.len);
        }
    }

    err = rd_kafka_producev(client->rk,
                            RD_KAFKA_V_TOPIC((char *) rec->topic.data),
                            RD_KAFKA_V_PARTITION(rec->partition),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(rec->key.data, rec->key.len),
                            RD_KAFKA_V_VALUE(rec->value.data, rec->value.len),
                            RD_KAFKA_V_HEADERS(hdrs),
                            RD_KAFKA_V_OPAQUE(msg),
                            RD_KAFKA_V_END);

    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return err;
    }

    /* no delivery report will come: librdkafka gave everything back */

    if (hdrs) {
        rd_kafka_headers_destroy(hdrs);
    }

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        client->fatal = 1;
    }

    ngx_http_kafka_producer_msg_free(msg);

    return err;
}


static void
ngx_http_kafka_producer_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque)
{
    ngx_http_kafka_producer_client_t  *client = opaque;

    ngx_http_kafka_producer_msg_t    *msg;
    ngx_http_kafka_producer_event_t   ev;
    rd_kafka_timestamp_type_t         tstype;

    msg = m->_private;

    ngx_memzero(&ev, sizeof(ngx_http_kafka_producer_event_t));
    ev.partition = m->partition;
    ev.offset = m->offset;
    ev.err = m->err;
    ev.persisted = rd_kafka_message_status(m);
    ev.timestamp = rd_kafka_message_timestamp(m, &tstype);

    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        client->brokers_down = 0;
        client->down_since = 0;
        client->delivered_since_open = 1;
        client->backoff = 0;
        client->failures = 0;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, client->log, 0,
                       "kafka_producer: delivered to %s [%D] at %L",
                       rd_kafka_topic_name(m->rkt), m->partition, m->offset);

    } else {
        ngx_log_error(NGX_LOG_ERR, client->log, 0,
                      "kafka_producer: delivery to topic \"%s\" failed "
                      "(%s producer, %s): %s: %s",
                      rd_kafka_topic_name(m->rkt),
                      ngx_http_kafka_producer_mode_names[client->mode],
                      ev.persisted == RD_KAFKA_MSG_STATUS_NOT_PERSISTED
                      ? "not written" : "may have been written",
                      rd_kafka_err2name(m->err), rd_kafka_err2str(m->err));

        if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            client->fatal = 1;
        }
    }

    ngx_http_kafka_producer_metrics_record(client->mode,
                                 rd_kafka_topic_name(m->rkt),
                                 m->err == RD_KAFKA_RESP_ERR_NO_ERROR,
                                 ngx_http_kafka_producer_metrics_now()
                                 - msg->start);

    if (msg->handler == NULL) {
        ngx_log_error(NGX_LOG_NOTICE, client->log, 0,
                      "kafka_producer: %s for a client that is gone: "
                      "topic \"%s\" partition %D offset %L",
                      m->err ? "delivery failed" : "delivered",
                      rd_kafka_topic_name(m->rkt), m->partition, m->offset);
    }

    ngx_http_kafka_producer_finish(msg, &ev);
}


/*
 * Counts the report, hands it to the message's handler (none when its
 * caller detached), then recycles the message.
 */

static void
ngx_http_kafka_producer_finish(ngx_http_kafka_producer_msg_t *msg,
    ngx_http_kafka_producer_event_t *ev)
{
    ngx_http_kafka_producer_client_t  *client;

    client = msg->client;

    if (ev->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        client->delivered++;

    } else {
        client->failed++;
        ngx_http_kafka_producer_last_error(client, ev->err,
                                           rd_kafka_err2str(ev->err));
    }

    ev->brokers_down = client->brokers_down;

    if (msg->expired) {
        ev->late = 1;
        client->late_reports++;

        ngx_log_error(NGX_LOG_NOTICE, client->log, 0,
                      "kafka_producer: late delivery report from the %s "
                      "producer, %M ms after the delivery timeout: %s",
                      ngx_http_kafka_producer_mode_names[client->mode],
                      ngx_current_msec - msg->expires
                      + NGX_HTTP_KAFKA_PRODUCER_EXPIRE_MARGIN,
                      ev->err ? rd_kafka_err2name(ev->err) : "delivered");
    }

    if (msg->handler) {
        msg->handler(msg, ev);

    } else {
        client->detached++;
    }

    ngx_http_kafka_producer_msg_free(msg);
}


static void
ngx_http_kafka_producer_error(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    ngx_http_kafka_producer_client_t  *client = opaque;

    char        errstr[512];
    ngx_uint_t  level;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        client->fatal = 1;

        err = rd_kafka_fatal_error(rk, errstr, sizeof(errstr));

        /* "alert" once; while replacements keep failing, "warn" */

        ngx_http_kafka_producer_last_error(client,
                                           (rd_kafka_resp_err_t) err, errstr);

        level = client->failures ? NGX_LOG_WARN : NGX_LOG_ALERT;

        ngx_log_error(level, client->log, 0,
                      "kafka_producer: fatal error in the %s producer, "
                      "it will be replaced: %s: %s",
                      ngx_http_kafka_producer_mode_names[client->mode],
                      rd_kafka_err2name(err), errstr);
        return;
    }

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        client->brokers_down = 1;

        if (client->down_since == 0) {
            client->down_since = ngx_current_msec;
        }
    }

    ngx_http_kafka_producer_last_error(client, (rd_kafka_resp_err_t) err,
                                       reason);

    ngx_log_error(NGX_LOG_WARN, client->log, 0,
                  "kafka_producer: %s producer: %s: %s",
                  ngx_http_kafka_producer_mode_names[client->mode],
                  rd_kafka_err2name(err), reason);
}


static void
ngx_http_kafka_producer_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    ngx_uint_t                         lvl;
    ngx_http_kafka_producer_client_t  *client;

    client = rd_kafka_opaque(rk);

    /*
     * syslog levels, 0 (emerg) to 7 (debug), are one below nginx's;
     * nothing librdkafka logs stops nginx: its worst is an error, and
     * what needs an operator, a fatal error, is logged by the error
     * callback at "alert"
     */

    lvl = (level < 0) ? NGX_LOG_ERR : (ngx_uint_t) level + 1;

    if (lvl < NGX_LOG_ERR) {
        lvl = NGX_LOG_ERR;

    } else if (lvl > NGX_LOG_DEBUG) {
        lvl = NGX_LOG_DEBUG;
    }

    ngx_log_error(lvl, client->log, 0, "kafka_producer: %s: %s: %s",
                  rd_kafka_name(rk), fac, buf);
}


/*
 * Keeps what the health detail shows from librdkafka's statistics JSON
 * (its STATISTICS.md), parsed with YAJL's tree API: how many brokers are
 * known and connected, the requests retried, and the idempotence state.
 * Runs on the worker's thread (the main queue), every
 * statistics.interval.ms.
 */

static int
ngx_http_kafka_producer_stats(rd_kafka_t *rk, char *json, size_t len,
    void *opaque)
{
    ngx_http_kafka_producer_client_t  *client = opaque;

    char        *text, err[128];
    size_t       n;
    yajl_val     root, brokers, b, v;
    ngx_uint_t   i, up, retries;

    static const char  *brokers_path[] = { "brokers", NULL };
    static const char  *source_path[] = { "source", NULL };
    static const char  *state_path[] = { "state", NULL };
    static const char  *txretries_path[] = { "txretries", NULL };
    static const char  *req_timeouts_path[] = { "req_timeouts", NULL };
    static const char  *idemp_state_path[] = { "eos", "idemp_state", NULL };
    static const char  *producer_id_path[] = { "eos", "producer_id", NULL };
    static const char  *producer_epoch_path[] = { "eos", "producer_epoch",
                                                  NULL };

    /* yajl_tree_parse() wants a NUL-terminated string */

    text = ngx_alloc(len + 1, client->log);
    if (text == NULL) {
        return 0;
    }

    ngx_memcpy(text, json, len);
    text[len] = '\0';

    root = yajl_tree_parse(text, err, sizeof(err));

    ngx_free(text);

    if (root == NULL) {
        ngx_log_error(NGX_LOG_WARN, client->log, 0,
                      "kafka_producer: %s: statistics not parsed: %s",
                      rd_kafka_name(rk), err);
        return 0;
    }

    /* "brokers": { "HOST:PORT/ID": { "source":"..", "state":"..", ... } */

    up = 0;
    retries = 0;
    client->brokers = 0;

    brokers = yajl_tree_get(root, brokers_path, yajl_t_object);

    for (i = 0; brokers && i < brokers->u.object.len; i++) {
        b = brokers->u.object.values[i];

        v = yajl_tree_get(b, source_path, yajl_t_string);
        if (v && ngx_strcmp(v->u.string, "internal") == 0) {
            continue;
        }

        client->brokers++;

        v = yajl_tree_get(b, state_path, yajl_t_string);
        if (v && ngx_strcmp(v->u.string, "UP") == 0) {
            up++;
        }

        /*
         * a request that failed is retried (txretries); one that timed
         * out (socket.timeout.ms) is counted only in req_timeouts, and its
         * messages go again in a new request
         */

        v = yajl_tree_get(b, txretries_path, yajl_t_number);
        if (v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) > 0) {
            retries += (ngx_uint_t) YAJL_GET_INTEGER(v);
        }

        v = yajl_tree_get(b, req_timeouts_path, yajl_t_number);
        if (v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) > 0) {
            retries += (ngx_uint_t) YAJL_GET_INTEGER(v);
        }
    }

    /*
     * a counter never goes down (Prometheus): the sum falls when a broker
     * leaves the statistics, so only what it grew by since the last
     * statistics counts
     */

    if (retries > client->retries_sum) {
        client->retries_now += retries - client->retries_sum;
    }

    client->retries_sum = retries;

    client->brokers_up = up;
    client->stats_time = ngx_current_msec;

    if (up) {
        /* librdkafka tells when all brokers go down, not when they return */
        client->brokers_down = 0;
        client->down_since = 0;

    } else if (client->down_since == 0) {
        client->down_since = ngx_current_msec;
    }

    /* "eos": { "idemp_state":"Assigned", "producer_id":N, ... } */

    v = yajl_tree_get(root, idemp_state_path, yajl_t_string);
    if (v) {
        n = ngx_min(ngx_strlen(v->u.string), sizeof(client->idemp_state_buf));
        ngx_memcpy(client->idemp_state_buf, v->u.string, n);
        client->idemp_state.len = n;
    }

    v = yajl_tree_get(root, producer_id_path, yajl_t_number);
    if (v && YAJL_IS_INTEGER(v)) {
        client->producer_id = YAJL_GET_INTEGER(v);
    }

    v = yajl_tree_get(root, producer_epoch_path, yajl_t_number);
    if (v && YAJL_IS_INTEGER(v)) {
        client->producer_epoch = YAJL_GET_INTEGER(v);
    }

    yajl_tree_free(root);

    return 0;
}


static void
ngx_http_kafka_producer_last_error(ngx_http_kafka_producer_client_t *client,
    rd_kafka_resp_err_t err, const char *text)
{
    u_char  *p, *last;

    p = client->last_error_buf;
    last = p + sizeof(client->last_error_buf);

    p = ngx_slprintf(p, last, "%s: %s", rd_kafka_err2name(err), text);

    client->last_error.data = client->last_error_buf;
    client->last_error.len = p - client->last_error_buf;
    client->last_error_time = ngx_current_msec;
}
