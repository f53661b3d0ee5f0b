
/*
 * ngx_http_kafka_producer_module
 *
 * An HTTP-to-Kafka producer gateway inside nginx: send, status and health
 * handlers over per-worker librdkafka producers whose delivery reports
 * come back through nginx's event loop.
 *
 * This file holds the directives, the configuration and the process
 * hooks; src/ holds one file per concern.
 */


#include "ngx_http_kafka_producer.h"
#include "ngx_http_kafka_producer_kafka.h"
#include <ndk.h>
#include "ngx_http_kafka_producer_send.h"
#include "ngx_http_kafka_producer_status.h"
#include "ngx_http_kafka_producer_health.h"
#include "ngx_http_kafka_producer_pass.h"
#include "ngx_http_kafka_producer_record.h"
#include "ngx_http_kafka_producer_json.h"
#include "ngx_http_kafka_producer_metrics.h"
#include "ngx_http_kafka_producer_idempotency.h"
#include "ngx_http_kafka_producer_rest.h"


#define NGX_HTTP_KAFKA_PRODUCER_SEND_HANDLER    0
#define NGX_HTTP_KAFKA_PRODUCER_STATUS_HANDLER  1
#define NGX_HTTP_KAFKA_PRODUCER_HEALTH_HANDLER  2
#define NGX_HTTP_KAFKA_PRODUCER_PROBLEM_HANDLER 3
#define NGX_HTTP_KAFKA_PRODUCER_METRICS_HANDLER 4
#define NGX_HTTP_KAFKA_PRODUCER_REST_HANDLER    5


static ngx_int_t ngx_http_kafka_producer_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_kafka_producer_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_kafka_producer_init_main_conf(ngx_conf_t *cf,
    void *conf);
static void *ngx_http_kafka_producer_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_kafka_producer_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_kafka_producer_option(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_kafka_producer_linger(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_kafka_producer_handler(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_kafka_producer_topic(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_kafka_producer_allowed_topics(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_kafka_producer_pass(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_kafka_producer_header(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_kafka_producer_init_process(ngx_cycle_t *cycle);
static void ngx_http_kafka_producer_exit_process(ngx_cycle_t *cycle);


static ngx_conf_post_handler_pt  ngx_http_kafka_producer_topic_p =
    ngx_http_kafka_producer_topic;


/* a bound that keeps one answer and one parse within a few megabytes */
static ngx_conf_num_bounds_t  ngx_http_kafka_producer_rest_max_records_bounds =
{
    ngx_conf_check_num_bounds, 1, 100000
};


static ngx_conf_enum_t  ngx_http_kafka_producer_mode_enum[] = {
    { ngx_string("plain"), NGX_HTTP_KAFKA_PRODUCER_PLAIN },
    { ngx_string("idempotent"), NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENT },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_kafka_producer_send_mode_enum[] = {
    { ngx_string("sync"), 0 },
    { ngx_string("async"), 1 },
    { ngx_null_string, 0 }
};


static ndk_set_var_t  ngx_http_kafka_producer_state_filter = {
    NDK_SET_VAR_VALUE,
    (void *) ngx_http_kafka_producer_status_state,
    1,
    NULL
};


static ngx_command_t  ngx_http_kafka_producer_commands[] = {

    { ngx_string("kafka_producer_brokers"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_main_conf_t, brokers),
      NULL },

    { ngx_string("kafka_producer_option"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_kafka_producer_option,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kafka_producer_request_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_main_conf_t, request_timeout),
      NULL },

    { ngx_string("kafka_producer_delivery_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_main_conf_t, delivery_timeout),
      NULL },

    { ngx_string("kafka_producer_retry_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_main_conf_t, retry_backoff),
      NULL },

    { ngx_string("kafka_producer_retries"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_main_conf_t, retries),
      NULL },

    { ngx_string("kafka_producer_linger"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_kafka_producer_linger,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kafka_producer_shutdown_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_main_conf_t, shutdown_timeout),
      NULL },

    { ngx_string("kafka_producer_status_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_kafka_producer_status_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kafka_producer_send"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_kafka_producer_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_KAFKA_PRODUCER_SEND_HANDLER,
      NULL },

    { ngx_string("kafka_producer_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_kafka_producer_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_KAFKA_PRODUCER_STATUS_HANDLER,
      NULL },

    { ngx_string("kafka_producer_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_kafka_producer_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_KAFKA_PRODUCER_METRICS_HANDLER,
      NULL },

    { ngx_string("kafka_producer_metrics_topics"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_main_conf_t, metrics_topics),
      NULL },

    { ngx_string("kafka_producer_idempotency_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_kafka_producer_idempotency_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kafka_producer_idempotency_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_loc_conf_t, idempotency_key),
      NULL },

    { ngx_string("kafka_producer_problem"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_kafka_producer_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_KAFKA_PRODUCER_PROBLEM_HANDLER,
      NULL },

    { ngx_string("kafka_producer_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_kafka_producer_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_KAFKA_PRODUCER_HEALTH_HANDLER,
      NULL },

    { ngx_string("kafka_producer_pass"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_kafka_producer_pass,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kafka_producer_rest"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_kafka_producer_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_KAFKA_PRODUCER_REST_HANDLER,
      NULL },

    { ngx_string("kafka_producer_rest_max_records"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_loc_conf_t, rest_max_records),
      &ngx_http_kafka_producer_rest_max_records_bounds },

    { ngx_string("kafka_producer_value"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_loc_conf_t, value),
      NULL },

    { ngx_string("kafka_producer_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_loc_conf_t, key),
      NULL },

    { ngx_string("kafka_producer_partition"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_loc_conf_t, partition),
      NULL },

    { ngx_string("kafka_producer_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_kafka_producer_header,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kafka_producer_mode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_loc_conf_t, mode),
      &ngx_http_kafka_producer_mode_enum },

    { ngx_string("kafka_producer_send_mode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_loc_conf_t, async),
      &ngx_http_kafka_producer_send_mode_enum },

    { ngx_string("kafka_producer_topic"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_loc_conf_t, topic),
      &ngx_http_kafka_producer_topic_p },

    { ngx_string("kafka_producer_allowed_topics"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_kafka_producer_allowed_topics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kafka_producer_status_uri"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_loc_conf_t, status_uri),
      NULL },

    /* where "set" works: the rewrite phase runs in server and location */
    { ngx_string("set_kafka_producer_state"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_SIF_CONF
                        |NGX_HTTP_LOC_CONF|NGX_HTTP_LIF_CONF|NGX_CONF_TAKE2,
      ndk_set_var_value,
      0,
      0,
      &ngx_http_kafka_producer_state_filter },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kafka_producer_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_kafka_producer_postconfiguration, /* postconfiguration */

    ngx_http_kafka_producer_create_main_conf, /* create main conf */
    ngx_http_kafka_producer_init_main_conf,   /* init main conf */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_kafka_producer_create_loc_conf,  /* create location conf */
    ngx_http_kafka_producer_merge_loc_conf    /* merge location conf */
};


ngx_module_t  ngx_http_kafka_producer_module = {
    NGX_MODULE_V1,
    &ngx_http_kafka_producer_module_ctx,   /* module context */
    ngx_http_kafka_producer_commands,      /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_kafka_producer_init_process,  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_kafka_producer_exit_process,  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_kafka_producer_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt                  *h;
    ngx_http_core_main_conf_t            *cmcf;
    ngx_http_kafka_producer_main_conf_t  *kmcf;

    if (ngx_http_kafka_producer_idempotency_init_filters(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    kmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kafka_producer_module);

    if (kmcf->locations == 0) {
        return NGX_OK;
    }

    /* nginx_kafka_producer_requests_total counts in the log phase */

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_kafka_producer_metrics_log;

    return NGX_OK;
}


static void *
ngx_http_kafka_producer_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_kafka_producer_main_conf_t  *kmcf;

    kmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kafka_producer_main_conf_t));
    if (kmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     kmcf->brokers = { 0, NULL };
     *     kmcf->options = NULL;
     *     kmcf->conf = NULL;
     *     kmcf->shm_zone = NULL;
     *     kmcf->locations = 0;
     *     kmcf->zone_locations = 0;
     *     kmcf->worker = NULL;
     */

    kmcf->request_timeout = NGX_CONF_UNSET_MSEC;
    kmcf->delivery_timeout = NGX_CONF_UNSET_MSEC;
    kmcf->retry_backoff = NGX_CONF_UNSET_MSEC;
    kmcf->linger = NGX_CONF_UNSET_MSEC;
    kmcf->idempotent_linger = NGX_CONF_UNSET_MSEC;
    kmcf->shutdown_timeout = NGX_CONF_UNSET_MSEC;
    kmcf->retries = NGX_CONF_UNSET_UINT;
    kmcf->metrics_topics = NGX_CONF_UNSET_UINT;

    return kmcf;
}


static char *
ngx_http_kafka_producer_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_kafka_producer_main_conf_t *kmcf = conf;

    ngx_conf_init_msec_value(kmcf->request_timeout, 1000);
    ngx_conf_init_msec_value(kmcf->delivery_timeout, 120000);
    ngx_conf_init_msec_value(kmcf->retry_backoff, 100);
    ngx_conf_init_msec_value(kmcf->linger, 0);

    /*
     * librdkafka 2.0.2's idempotent producer spins at linger 0 while
     * requests are in flight (README, Performance): unless configured,
     * it lingers 1ms
     */
    ngx_conf_init_msec_value(kmcf->idempotent_linger, 1);

    /* kafka_producer_shutdown_timeout: the delivery timeout by default */
    ngx_conf_init_uint_value(kmcf->retries, 10);
    ngx_conf_init_uint_value(kmcf->metrics_topics, 64);

    if (kmcf->metrics_topics == 0 || kmcf->metrics_topics > 10000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"kafka_producer_metrics_topics\" must be "
                           "from 1 to 10000, not %ui", kmcf->metrics_topics);
        return NGX_CONF_ERROR;
    }

    if (kmcf->locations == 0) {
        /* no send or status location: the module stays idle */
        return NGX_CONF_OK;
    }

    if (kmcf->zone_locations && kmcf->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"kafka_producer_send\" and "
                           "\"kafka_producer_status\" require "
                           "\"kafka_producer_status_zone\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_kafka_producer_init_conf(cf, kmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_kafka_producer_metrics_init_conf(cf, kmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (kmcf->shm_zone) {
        ngx_http_kafka_producer_status_init_conf(kmcf->shm_zone,
                                                 kmcf->delivery_timeout);
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_kafka_producer_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_kafka_producer_loc_conf_t  *klcf;

    klcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kafka_producer_loc_conf_t));
    if (klcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     klcf->topic = { 0, NULL };
     *     klcf->status_uri = { 0, NULL };
     *     klcf->health = NGX_HTTP_KAFKA_PRODUCER_HEALTH_LIVE;
     *     klcf->pass = NULL;
     *     klcf->headers = NULL;
     */

    klcf->allowed_topics = NGX_CONF_UNSET_PTR;
    klcf->value = NGX_CONF_UNSET_PTR;
    klcf->key = NGX_CONF_UNSET_PTR;
    klcf->partition = NGX_CONF_UNSET_PTR;
    klcf->idempotency_key = NGX_CONF_UNSET_PTR;
    klcf->mode = NGX_CONF_UNSET_UINT;
    klcf->async = NGX_CONF_UNSET;
    klcf->rest_max_records = NGX_CONF_UNSET_UINT;

    return klcf;
}


static char *
ngx_http_kafka_producer_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_kafka_producer_loc_conf_t *prev = parent;
    ngx_http_kafka_producer_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t             *clcf;
    ngx_http_kafka_producer_main_conf_t  *kmcf;

    ngx_conf_merge_str_value(conf->topic, prev->topic, "bhf-transactions");
    ngx_conf_merge_str_value(conf->status_uri, prev->status_uri,
                             "/api/v1/status");
    ngx_conf_merge_ptr_value(conf->allowed_topics, prev->allowed_topics,
                             NULL);
    ngx_conf_merge_ptr_value(conf->value, prev->value, NULL);
    ngx_conf_merge_ptr_value(conf->key, prev->key, NULL);
    ngx_conf_merge_ptr_value(conf->partition, prev->partition, NULL);
    ngx_conf_merge_ptr_value(conf->idempotency_key, prev->idempotency_key,
                             NULL);
    ngx_conf_merge_uint_value(conf->mode, prev->mode,
                              NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENT);
    ngx_conf_merge_value(conf->async, prev->async, 0);
    ngx_conf_merge_uint_value(conf->rest_max_records, prev->rest_max_records,
                              NGX_HTTP_KAFKA_PRODUCER_REST_MAX_RECORDS);

    /* as add_header: a level without any inherits all of the enclosing */
    if (conf->headers == NULL) {
        conf->headers = prev->headers;
    }

    /*
     * "health" is not merged: like a content handler, the parameter of
     * "kafka_producer_health" belongs to the location that has it, and a
     * nested plain health check never inherits "detail"
     */

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_kafka_producer_send_handler
        && ngx_http_kafka_producer_topic_allowed(conf->allowed_topics,
                                                 &conf->topic)
           != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the default topic \"%V\" of a send location is "
                           "not in \"kafka_producer_allowed_topics\"",
                           &conf->topic);
        return NGX_CONF_ERROR;
    }

    if (clcf->handler != ngx_http_kafka_producer_pass_handler) {
        return NGX_CONF_OK;
    }

    if (conf->pass->lengths == NULL
        && ngx_http_kafka_producer_topic_allowed(conf->allowed_topics,
                                                 &conf->pass->value)
           != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the topic \"%V\" of \"kafka_producer_pass\" is "
                           "not in \"kafka_producer_allowed_topics\"",
                           &conf->pass->value);
        return NGX_CONF_ERROR;
    }

    kmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kafka_producer_module);

    if (conf->async && kmcf->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"kafka_producer_send_mode async\" requires "
                           "\"kafka_producer_status_zone\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_kafka_producer_option(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_kafka_producer_main_conf_t *kmcf = conf;

    ngx_str_t     *value;
    ngx_keyval_t  *kv;

    value = cf->args->elts;

    if (ngx_http_kafka_producer_check_option(cf, &value[1], &value[2])
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (kmcf->options == NULL) {
        kmcf->options = ngx_array_create(cf->pool, 4, sizeof(ngx_keyval_t));
        if (kmcf->options == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    kv = ngx_array_push(kmcf->options);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    kv->key = value[1];
    kv->value = value[2];

    return NGX_CONF_OK;
}


static char *
ngx_http_kafka_producer_linger(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_kafka_producer_main_conf_t *kmcf = conf;

    u_char      *p;
    ngx_str_t   *value, s;
    ngx_msec_t   linger;

    static ngx_str_t  name = ngx_string("linger.ms");

    if (kmcf->linger != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    kmcf->linger = ngx_parse_time(&value[1], 0);
    if (kmcf->linger == (ngx_msec_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid linger time \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 2) {
        /* one time for both producers */
        kmcf->idempotent_linger = kmcf->linger;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[2].data, "idempotent=", 11) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    s.data = value[2].data + 11;
    s.len = value[2].len - 11;

    linger = ngx_parse_time(&s, 0);
    if (linger == (ngx_msec_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid linger time \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    /* librdkafka's range of linger.ms, checked as for the other knobs */

    p = ngx_pnalloc(cf->pool, NGX_INT64_LEN + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    s.data = p;
    s.len = ngx_sprintf(p, "%M", linger) - p;
    p[s.len] = '\0';

    if (ngx_http_kafka_producer_check_option(cf, &name, &s) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    kmcf->idempotent_linger = linger;

    return NGX_CONF_OK;
}


static char *
ngx_http_kafka_producer_handler(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t                            *value;
    ngx_http_core_loc_conf_t             *clcf;
    ngx_http_kafka_producer_loc_conf_t   *klcf;
    ngx_http_kafka_producer_main_conf_t  *kmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate";
    }

    switch (cmd->offset) {

    case NGX_HTTP_KAFKA_PRODUCER_SEND_HANDLER:
        clcf->handler = ngx_http_kafka_producer_send_handler;
        break;

    case NGX_HTTP_KAFKA_PRODUCER_STATUS_HANDLER:
        clcf->handler = ngx_http_kafka_producer_status_handler;
        break;

    case NGX_HTTP_KAFKA_PRODUCER_PROBLEM_HANDLER:
        clcf->handler = ngx_http_kafka_producer_problem_handler;
        return NGX_CONF_OK;

    case NGX_HTTP_KAFKA_PRODUCER_METRICS_HANDLER:
        clcf->handler = ngx_http_kafka_producer_metrics_handler;
        return NGX_CONF_OK;

    case NGX_HTTP_KAFKA_PRODUCER_REST_HANDLER:
        clcf->handler = ngx_http_kafka_producer_rest_handler;

        kmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kafka_producer_module);
        kmcf->locations++;

        return NGX_CONF_OK;

    default: /* NGX_HTTP_KAFKA_PRODUCER_HEALTH_HANDLER */
        clcf->handler = ngx_http_kafka_producer_health_handler;

        if (cf->args->nelts == 1) {
            return NGX_CONF_OK;
        }

        value = cf->args->elts;
        klcf = conf;

        if (ngx_strcmp(value[1].data, "detail") == 0) {
            klcf->health = NGX_HTTP_KAFKA_PRODUCER_HEALTH_DETAIL;

        } else if (ngx_strcmp(value[1].data, "ready") == 0) {
            klcf->health = NGX_HTTP_KAFKA_PRODUCER_HEALTH_READY;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", "
                               "it must be \"detail\" or \"ready\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }


    kmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kafka_producer_module);
    kmcf->locations++;
    kmcf->zone_locations++;

    return NGX_CONF_OK;
}


static char *
ngx_http_kafka_producer_pass(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kafka_producer_loc_conf_t *klcf = conf;

    ngx_str_t                            *value;
    ngx_http_core_loc_conf_t             *clcf;
    ngx_http_compile_complex_value_t      ccv;
    ngx_http_kafka_producer_main_conf_t  *kmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate";
    }

    value = cf->args->elts;

    klcf->pass = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (klcf->pass == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = klcf->pass;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* a literal topic is checked now, one with variables per request */

    if (klcf->pass->lengths == NULL
        && (value[1].len == 0
            || ngx_http_kafka_producer_check_topic(&value[1]) != NGX_OK))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid Kafka topic name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    clcf->handler = ngx_http_kafka_producer_pass_handler;

    kmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kafka_producer_module);
    kmcf->locations++;

    return NGX_CONF_OK;
}


static char *
ngx_http_kafka_producer_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_kafka_producer_loc_conf_t *klcf = conf;

    u_char                            *p;
    ngx_str_t                         *value;
    ngx_http_kafka_producer_header_t  *h;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    if (value[1].len == 0
        || value[1].len > NGX_HTTP_KAFKA_PRODUCER_HEADER_NAME_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid record header name \"%V\": 1 to %d "
                           "bytes", &value[1],
                           NGX_HTTP_KAFKA_PRODUCER_HEADER_NAME_MAX);
        return NGX_CONF_ERROR;
    }

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p <= 0x20 || *p == 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid record header name \"%V\": no "
                               "spaces or control characters", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (klcf->headers == NULL) {
        klcf->headers = ngx_array_create(cf->pool, 4,
                                    sizeof(ngx_http_kafka_producer_header_t));
        if (klcf->headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    h = ngx_array_push(klcf->headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }

    h->name = value[1];

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &h->value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_kafka_producer_topic(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *topic = data;

    if (ngx_http_kafka_producer_check_topic(topic) != NGX_OK
        || topic->len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid Kafka topic name \"%V\"", topic);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_kafka_producer_allowed_topics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_kafka_producer_loc_conf_t *klcf = conf;

    ngx_str_t                        *value, name;
    ngx_uint_t                        i;
    ngx_http_kafka_producer_topic_t  *t;
#if (NGX_PCRE)
    ngx_regex_compile_t               rc;
    u_char                            errstr[NGX_MAX_CONF_ERRSTR];
#endif

    if (klcf->allowed_topics != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        klcf->allowed_topics = NULL;
        return NGX_CONF_OK;
    }

    klcf->allowed_topics = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                      sizeof(ngx_http_kafka_producer_topic_t));
    if (klcf->allowed_topics == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        t = ngx_array_push(klcf->allowed_topics);
        if (t == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(t, sizeof(ngx_http_kafka_producer_topic_t));

        t->name = value[i];

        if (value[i].data[0] != '~') {

            if (ngx_http_kafka_producer_check_topic(&value[i]) != NGX_OK
                || value[i].len == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid Kafka topic name \"%V\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

#if (NGX_PCRE)
        ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

        name = value[i];
        name.data++;
        name.len--;

        if (name.len && name.data[0] == '*') {
            name.data++;
            name.len--;
            rc.options = NGX_REGEX_CASELESS;
        }

        if (name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "empty regex in \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        rc.pattern = name;
        rc.pool = cf->pool;
        rc.err.len = NGX_MAX_CONF_ERRSTR;
        rc.err.data = errstr;

        if (ngx_regex_compile(&rc) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V", &rc.err);
            return NGX_CONF_ERROR;
        }

        t->regex = rc.regex;
#else
        (void) name;

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "using regex \"%V\" requires PCRE library",
                           &value[i]);
        return NGX_CONF_ERROR;
#endif
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_kafka_producer_init_process(ngx_cycle_t *cycle)
{
    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    return ngx_http_kafka_producer_init_clients(cycle);
}


static void
ngx_http_kafka_producer_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_kafka_producer_exit_clients(cycle);
}

