
/*
 * ngx_http_kafka_producer_module: per-worker producers and delivery.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_KAFKA_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_KAFKA_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


char *ngx_http_kafka_producer_check_option(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *value);
char *ngx_http_kafka_producer_init_conf(ngx_conf_t *cf,
    ngx_http_kafka_producer_main_conf_t *kmcf);

ngx_int_t ngx_http_kafka_producer_init_clients(ngx_cycle_t *cycle);
void ngx_http_kafka_producer_exit_clients(ngx_cycle_t *cycle);

ngx_http_kafka_producer_client_t *ngx_http_kafka_producer_client(
    ngx_uint_t mode);
ngx_http_kafka_producer_client_t *ngx_http_kafka_producer_client_get(
    ngx_uint_t mode);
ngx_http_kafka_producer_msg_t *ngx_http_kafka_producer_msg_create(
    ngx_http_kafka_producer_client_t *client, ngx_log_t *log);
void ngx_http_kafka_producer_msg_free(ngx_http_kafka_producer_msg_t *msg);
rd_kafka_resp_err_t ngx_http_kafka_producer_produce(
    ngx_http_kafka_producer_msg_t *msg, ngx_http_kafka_producer_event_t *ev,
    ngx_str_t *value, ngx_str_t *ts);

extern char  *ngx_http_kafka_producer_mode_names[];


ngx_uint_t ngx_http_kafka_producer_error_status(rd_kafka_resp_err_t err,
    ngx_uint_t brokers_down);


#endif /* _NGX_HTTP_KAFKA_PRODUCER_KAFKA_H_INCLUDED_ */
