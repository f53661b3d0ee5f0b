
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


#define NGX_HTTP_KAFKA_PRODUCER_SEND_HANDLER    0
#define NGX_HTTP_KAFKA_PRODUCER_STATUS_HANDLER  1
#define NGX_HTTP_KAFKA_PRODUCER_HEALTH_HANDLER  2


static void *ngx_http_kafka_producer_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_kafka_producer_init_main_conf(ngx_conf_t *cf,
    void *conf);
static void *ngx_http_kafka_producer_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_kafka_producer_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_kafka_producer_option(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_kafka_producer_handler(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_kafka_producer_topic(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_kafka_producer_init_process(ngx_cycle_t *cycle);
static void ngx_http_kafka_producer_exit_process(ngx_cycle_t *cycle);


static ngx_conf_post_handler_pt  ngx_http_kafka_producer_topic_p =
    ngx_http_kafka_producer_topic;


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
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_main_conf_t, linger),
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

    { ngx_string("kafka_producer_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_kafka_producer_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_KAFKA_PRODUCER_HEALTH_HANDLER,
      NULL },

    { ngx_string("kafka_producer_topic"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_loc_conf_t, topic),
      &ngx_http_kafka_producer_topic_p },

    { ngx_string("kafka_producer_status_uri"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kafka_producer_loc_conf_t, status_uri),
      NULL },

    { ngx_string("set_kafka_producer_state"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_SIF_CONF
                        |NGX_HTTP_LOC_CONF|NGX_HTTP_LIF_CONF|NGX_CONF_TAKE2,
      ndk_set_var_value,
      0,
      0,
      &ngx_http_kafka_producer_state_filter },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kafka_producer_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

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
     */

    kmcf->request_timeout = NGX_CONF_UNSET_MSEC;
    kmcf->delivery_timeout = NGX_CONF_UNSET_MSEC;
    kmcf->retry_backoff = NGX_CONF_UNSET_MSEC;
    kmcf->linger = NGX_CONF_UNSET_MSEC;
    kmcf->shutdown_timeout = NGX_CONF_UNSET_MSEC;
    kmcf->retries = NGX_CONF_UNSET_UINT;

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
    ngx_conf_init_msec_value(kmcf->shutdown_timeout, 5000);
    ngx_conf_init_uint_value(kmcf->retries, 10);

    if (kmcf->locations == 0) {
        /* no send or status location: the module stays idle */
        return NGX_CONF_OK;
    }

    if (kmcf->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"kafka_producer_send\" and "
                           "\"kafka_producer_status\" require "
                           "\"kafka_producer_status_zone\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_kafka_producer_init_conf(cf, kmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_http_kafka_producer_status_init_conf(kmcf->shm_zone,
                                             kmcf->delivery_timeout);

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
     */

    return klcf;
}


static char *
ngx_http_kafka_producer_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_kafka_producer_loc_conf_t *prev = parent;
    ngx_http_kafka_producer_loc_conf_t *conf = child;

    ngx_conf_merge_str_value(conf->topic, prev->topic, "bhf-transactions");
    ngx_conf_merge_str_value(conf->status_uri, prev->status_uri,
                             "/api/v1/status");

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
ngx_http_kafka_producer_handler(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t             *clcf;
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

    default: /* NGX_HTTP_KAFKA_PRODUCER_HEALTH_HANDLER */
        clcf->handler = ngx_http_kafka_producer_health_handler;
        return NGX_CONF_OK;
    }

    kmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kafka_producer_module);
    kmcf->locations++;

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
