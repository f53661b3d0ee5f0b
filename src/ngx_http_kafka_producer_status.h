
/*
 * ngx_http_kafka_producer_module: async status records in shared memory.
 */


#ifndef _NGX_HTTP_KAFKA_PRODUCER_STATUS_H_INCLUDED_
#define _NGX_HTTP_KAFKA_PRODUCER_STATUS_H_INCLUDED_


#include "ngx_http_kafka_producer.h"


char *ngx_http_kafka_producer_status_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_kafka_producer_status_init_conf(ngx_shm_zone_t *shm_zone,
    ngx_msec_t delivery_timeout);

void ngx_http_kafka_producer_status_new_id(u_char *id);
u_char *ngx_http_kafka_producer_status_format_id(u_char *p, u_char *id);
ngx_int_t ngx_http_kafka_producer_status_add(ngx_shm_zone_t *shm_zone,
    u_char *id, ngx_http_kafka_producer_event_t *ev, ngx_log_t *log);
void ngx_http_kafka_producer_status_finish(u_char *id,
    ngx_http_kafka_producer_event_t *ev);
void ngx_http_kafka_producer_status_delete(u_char *id);

ngx_int_t ngx_http_kafka_producer_status_handler(ngx_http_request_t *r);

/*
 * stats: for the metrics, the bytes of the zone in use ("used", whole
 * pages) and its size ("total"), and its records by state.
 */
void ngx_http_kafka_producer_status_stats(ngx_shm_zone_t *shm_zone,
    size_t *used, size_t *total, ngx_uint_t *pending, ngx_uint_t *done);
ngx_int_t ngx_http_kafka_producer_status_state(ngx_http_request_t *r,
    ngx_str_t *res, ngx_http_variable_value_t *v);

#if (NGX_HTTP_KAFKA_PRODUCER_FUZZ)
ngx_int_t ngx_http_kafka_producer_fuzz_parse_id(ngx_str_t *s, u_char *id);
#endif


#endif /* _NGX_HTTP_KAFKA_PRODUCER_STATUS_H_INCLUDED_ */
