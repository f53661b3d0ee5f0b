
/*
 * ngx_http_kafka_producer_module: the health handler.
 *
 * GET /health answers "OK" from the worker itself, as the lab's API does:
 * it tells that nginx serves, whatever Kafka is doing.
 */


#include "ngx_http_kafka_producer_health.h"
#include "ngx_http_kafka_producer_json.h"


static ngx_str_t  ngx_http_kafka_producer_health_allow =
    ngx_string("GET, HEAD");
static ngx_str_t  ngx_http_kafka_producer_health_type =
    ngx_string("text/plain");
static ngx_str_t  ngx_http_kafka_producer_health_ok = ngx_string("OK");


ngx_int_t
ngx_http_kafka_producer_health_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_kafka_producer_not_allowed(r,
                                        &ngx_http_kafka_producer_health_allow);
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_kafka_producer_send_text(r, NGX_HTTP_OK,
                                        &ngx_http_kafka_producer_health_type,
                                        &ngx_http_kafka_producer_health_ok);
}
