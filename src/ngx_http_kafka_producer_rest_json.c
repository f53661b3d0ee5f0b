
/*
 * ngx_http_kafka_producer_module: the body of a REST Proxy v2 produce
 * request.
 *
 * YAJL (libyajl 2.1, Debian's libyajl-dev) reads the body as a stream of
 * events; a small state machine here takes the members of a produce
 * request from it and checks what YAJL does not: nesting depth, member
 * names given twice in one object, strict UTF-8 (YAJL lets overlong forms
 * and surrogates through), lone "\u" surrogate escapes (a pre-scan of the
 * raw body: YAJL writes them as '?'), the types the v2 API wants.  A
 * "json" key or value is written back as compact JSON by YAJL's
 * generator, numbers as the client wrote them.  YAJL allocates from the
 * request's pool.
 */


#include "ngx_http_kafka_producer_rest_json.h"
#include "ngx_http_kafka_producer_record.h"
#include "ngx_http_kafka_producer_json.h"

#include <yajl/yajl_parse.h>
#include <yajl/yajl_gen.h>


/* the events of YAJL's callbacks */
#define NGX_HTTP_KAFKA_PRODUCER_REST_EV_NULL         0
#define NGX_HTTP_KAFKA_PRODUCER_REST_EV_BOOL         1
#define NGX_HTTP_KAFKA_PRODUCER_REST_EV_NUMBER       2
#define NGX_HTTP_KAFKA_PRODUCER_REST_EV_STRING       3
#define NGX_HTTP_KAFKA_PRODUCER_REST_EV_KEY          4
#define NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_MAP    5
#define NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_MAP      6
#define NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_ARRAY  7
#define NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_ARRAY    8

/* where the parser is: what the next event may be */
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_DOC           0  /* the body */
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_TOP           1  /* its members */
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORDS0      2  /* "records": */
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORDS       3  /* [ ... ] */
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORD        4  /* { ... } */
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_DATA          5  /* "key"/"value": */
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_PARTITION     6
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADERS0      7  /* "headers": */
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADERS       8  /* [ ... ] */
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADER        9  /* { ... } */
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADER_KEY    10
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADER_VALUE  11
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_SKIP          12 /* an unknown
                                                          member's value */
#define NGX_HTTP_KAFKA_PRODUCER_REST_S_END           13


typedef struct {
    ngx_pool_t                               *pool;
    ngx_uint_t                                format;
    ngx_uint_t                                max_records;
    ngx_array_t                              *records;
    ngx_http_kafka_producer_rest_record_t    *rec;
    ngx_keyval_t                             *header;
    ngx_str_t                                *data;    /* key or value */
    ngx_http_kafka_producer_rest_error_t     *err;

    ngx_uint_t                                state;
    ngx_uint_t                                ret;     /* after a skip */
    ngx_uint_t                                depth;   /* open containers */
    ngx_uint_t                                nested;  /* 0, or the depth
                                                          where a skipped or
                                                          captured value
                                                          began */
    unsigned                                  skipping:1;
    unsigned                                  capturing:1;
    unsigned                                  records_seen:1;
    unsigned                                  nomem:1;

    yajl_gen                                  gen;

    /* the member names of each open object, to refuse a repeated one */
    ngx_rbtree_t          names[NGX_HTTP_KAFKA_PRODUCER_REST_DEPTH + 1];
    ngx_rbtree_node_t     sentinels[NGX_HTTP_KAFKA_PRODUCER_REST_DEPTH + 1];
} ngx_http_kafka_producer_rest_parser_t;


static ngx_int_t ngx_http_kafka_producer_rest_event(
    ngx_http_kafka_producer_rest_parser_t *p, ngx_uint_t ev, u_char *s,
    size_t len);
static ngx_int_t ngx_http_kafka_producer_rest_state(
    ngx_http_kafka_producer_rest_parser_t *p, ngx_uint_t ev, u_char *s,
    size_t len);
static ngx_int_t ngx_http_kafka_producer_rest_capture(
    ngx_http_kafka_producer_rest_parser_t *p, ngx_uint_t ev, u_char *s,
    size_t len);
static ngx_int_t ngx_http_kafka_producer_rest_data(
    ngx_http_kafka_producer_rest_parser_t *p, ngx_uint_t ev, u_char *s,
    size_t len, ngx_uint_t generated);
static ngx_int_t ngx_http_kafka_producer_rest_partition(
    ngx_http_kafka_producer_rest_parser_t *p, ngx_uint_t ev, u_char *s,
    size_t len);
static ngx_int_t ngx_http_kafka_producer_rest_name(
    ngx_http_kafka_producer_rest_parser_t *p, u_char *s, size_t len);
static ngx_int_t ngx_http_kafka_producer_rest_base64(
    ngx_http_kafka_producer_rest_parser_t *p, u_char *s, size_t len,
    ngx_str_t *out, const char *what);
static ngx_int_t ngx_http_kafka_producer_rest_surrogates(u_char *start,
    u_char *end, size_t *at);
static ngx_int_t ngx_http_kafka_producer_rest_hex4(u_char *p, u_char *end,
    ngx_uint_t *cp);
static ngx_int_t ngx_http_kafka_producer_rest_refuse(
    ngx_http_kafka_producer_rest_parser_t *p, ngx_uint_t status,
    ngx_uint_t code, const char *fmt, ...);

static int ngx_http_kafka_producer_rest_null(void *ctx);
static int ngx_http_kafka_producer_rest_boolean(void *ctx, int b);
static int ngx_http_kafka_producer_rest_number(void *ctx, const char *s,
    size_t len);
static int ngx_http_kafka_producer_rest_string(void *ctx,
    const unsigned char *s, size_t len);
static int ngx_http_kafka_producer_rest_start_map(void *ctx);
static int ngx_http_kafka_producer_rest_map_key(void *ctx,
    const unsigned char *s, size_t len);
static int ngx_http_kafka_producer_rest_end_map(void *ctx);
static int ngx_http_kafka_producer_rest_start_array(void *ctx);
static int ngx_http_kafka_producer_rest_end_array(void *ctx);

static void *ngx_http_kafka_producer_rest_malloc(void *ctx, size_t size);
static void *ngx_http_kafka_producer_rest_realloc(void *ctx, void *ptr,
    size_t size);
static void ngx_http_kafka_producer_rest_free(void *ctx, void *ptr);


static yajl_callbacks  ngx_http_kafka_producer_rest_callbacks = {
    ngx_http_kafka_producer_rest_null,
    ngx_http_kafka_producer_rest_boolean,
    NULL,                       /* integers: the number callback has them */
    NULL,                       /* doubles: the same */
    ngx_http_kafka_producer_rest_number,
    ngx_http_kafka_producer_rest_string,
    ngx_http_kafka_producer_rest_start_map,
    ngx_http_kafka_producer_rest_map_key,
    ngx_http_kafka_producer_rest_end_map,
    ngx_http_kafka_producer_rest_start_array,
    ngx_http_kafka_producer_rest_end_array
};


static char  *ngx_http_kafka_producer_rest_events[] = {
    "null", "a boolean", "a number", "a string", "a member name",
    "an object", "the end of an object", "an array", "the end of an array"
};


ngx_int_t
ngx_http_kafka_producer_rest_parse(ngx_pool_t *pool, ngx_str_t *body,
    ngx_uint_t format, ngx_uint_t max_records, ngx_array_t **records,
    ngx_http_kafka_producer_rest_error_t *err)
{
    u_char                                 *msg, *end;
    size_t                                  consumed;
    yajl_handle                             h;
    yajl_status                             st;
    yajl_alloc_funcs                        af;
    ngx_http_kafka_producer_rest_parser_t  *p;

    p = ngx_pcalloc(pool, sizeof(ngx_http_kafka_producer_rest_parser_t));
    if (p == NULL) {
        return NGX_ERROR;
    }

    p->pool = pool;
    p->format = format;
    p->max_records = max_records;
    p->err = err;
    p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_DOC;

    p->records = ngx_array_create(pool, ngx_min(max_records, 16),
                           sizeof(ngx_http_kafka_producer_rest_record_t));
    if (p->records == NULL) {
        return NGX_ERROR;
    }

    err->status = 0;
    err->code = 0;
    ngx_str_null(&err->detail);

    af.malloc = ngx_http_kafka_producer_rest_malloc;
    af.realloc = ngx_http_kafka_producer_rest_realloc;
    af.free = ngx_http_kafka_producer_rest_free;
    af.ctx = p;         /* the allocator sets p->nomem on failure */

    if (format == NGX_HTTP_KAFKA_PRODUCER_REST_JSON) {
        p->gen = yajl_gen_alloc(&af);
        if (p->gen == NULL) {
            return NGX_ERROR;
        }
    }

    h = yajl_alloc(&ngx_http_kafka_producer_rest_callbacks, &af, p);
    if (h == NULL) {
        return NGX_ERROR;
    }

    /* YAJL 2.1 turns a lone surrogate escape into '?': refused first */

    if (ngx_http_kafka_producer_rest_surrogates(body->data,
                                                body->data + body->len,
                                                &consumed)
        != NGX_OK)
    {
        (void) ngx_http_kafka_producer_rest_refuse(p, NGX_HTTP_BAD_REQUEST,
                                  NGX_HTTP_BAD_REQUEST,
                                  "the body is not JSON: a lone UTF-16 "
                                  "surrogate escape (RFC 8259, section 8.2) "
                                  "at byte %uz", consumed);

        return p->nomem ? NGX_ERROR : NGX_DECLINED;
    }

    /* YAJL's defaults are strict: no comments, one value, no garbage */

    st = yajl_parse(h, body->data, body->len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    if (p->nomem) {
        return NGX_ERROR;
    }

    if (st == yajl_status_client_canceled) {
        /* our callbacks refused something, p->err says what */
        return NGX_DECLINED;
    }

    if (st != yajl_status_ok) {
        consumed = yajl_get_bytes_consumed(h);
        msg = yajl_get_error(h, 0, body->data, body->len);

        if (msg == NULL) {
            return NGX_ERROR;
        }

        end = msg + ngx_strlen(msg);

        while (end > msg && (end[-1] == '\n' || end[-1] == '.')) {
            end--;
        }

        *end = '\0';

        (void) ngx_http_kafka_producer_rest_refuse(p, NGX_HTTP_BAD_REQUEST,
                                  NGX_HTTP_BAD_REQUEST,
                                  "the body is not JSON: %s (near byte %uz)",
                                  msg, consumed);

        yajl_free_error(h, msg);

        return p->nomem ? NGX_ERROR : NGX_DECLINED;
    }

    if (!p->records_seen || p->records->nelts == 0) {
        (void) ngx_http_kafka_producer_rest_refuse(p, 422, 422,
                                  "the body has no records: "
                                  "{\"records\":[{\"value\":...}]} "
                                  "with 1 to %ui of them", max_records);

        return p->nomem ? NGX_ERROR : NGX_DECLINED;
    }

    *records = p->records;

    return NGX_OK;
}


/*
 * Every event: the checks that hold anywhere in the body (depth, strict
 * UTF-8, repeated names), then a skipped or captured value, then the
 * state machine.  NGX_OK goes on; anything else stops YAJL.
 */

static ngx_int_t
ngx_http_kafka_producer_rest_event(ngx_http_kafka_producer_rest_parser_t *p,
    ngx_uint_t ev, u_char *s, size_t len)
{
    ngx_uint_t  end;

    switch (ev) {

    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_STRING:
    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_KEY:
        if (ngx_http_kafka_producer_utf8_valid(s, len) != NGX_OK) {
            return ngx_http_kafka_producer_rest_refuse(p,
                                  NGX_HTTP_BAD_REQUEST, NGX_HTTP_BAD_REQUEST,
                                  "a string of the body is not valid UTF-8 "
                                  "(RFC 3629)");
        }

        if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_KEY
            && ngx_http_kafka_producer_rest_name(p, s, len) != NGX_OK)
        {
            return NGX_ERROR;
        }

        break;

    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_MAP:
    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_ARRAY:
        if (p->depth == NGX_HTTP_KAFKA_PRODUCER_REST_DEPTH) {
            return ngx_http_kafka_producer_rest_refuse(p,
                                  NGX_HTTP_BAD_REQUEST, NGX_HTTP_BAD_REQUEST,
                                  "the body is nested deeper than %d levels",
                                  NGX_HTTP_KAFKA_PRODUCER_REST_DEPTH);
        }

        p->depth++;

        if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_MAP) {
            ngx_rbtree_init(&p->names[p->depth], &p->sentinels[p->depth],
                            ngx_str_rbtree_insert_value);
        }

        break;

    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_MAP:
    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_ARRAY:
        p->depth--;
        break;

    default:
        break;
    }

    end = (ev != NGX_HTTP_KAFKA_PRODUCER_REST_EV_KEY
           && ev != NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_MAP
           && ev != NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_ARRAY);

    if (p->skipping) {
        if (end && p->depth == p->nested) {
            /* the skipped value is over */
            p->skipping = 0;
            p->state = p->ret;
        }

        return NGX_OK;
    }

    if (p->capturing) {
        if (ngx_http_kafka_producer_rest_capture(p, ev, s, len) != NGX_OK) {
            return NGX_ERROR;
        }

        if (end && p->depth == p->nested) {
            p->capturing = 0;
            return ngx_http_kafka_producer_rest_data(p, ev, NULL, 0, 1);
        }

        return NGX_OK;
    }

    return ngx_http_kafka_producer_rest_state(p, ev, s, len);
}


static ngx_int_t
ngx_http_kafka_producer_rest_state(ngx_http_kafka_producer_rest_parser_t *p,
    ngx_uint_t ev, u_char *s, size_t len)
{
    ngx_str_t  name;

    name.data = s;
    name.len = len;

    switch (p->state) {

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_DOC:
        if (ev != NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_MAP) {
            break;
        }

        p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_TOP;
        return NGX_OK;

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_TOP:
        if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_MAP) {
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_END;
            return NGX_OK;
        }

        /* a member name: the only other event an object has */

        if (len == 7 && ngx_strncmp(s, "records", 7) == 0) {
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORDS0;
            p->records_seen = 1;
            return NGX_OK;
        }

        /* key_schema, value_schema, their ids: no schemas in json, binary */

        p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_SKIP;
        p->ret = NGX_HTTP_KAFKA_PRODUCER_REST_S_TOP;
        return NGX_OK;

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORDS0:
        if (ev != NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_ARRAY) {
            return ngx_http_kafka_producer_rest_refuse(p, 422, 422,
                                  "\"records\" must be an array, not %s",
                                  ngx_http_kafka_producer_rest_events[ev]);
        }

        p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORDS;
        return NGX_OK;

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORDS:
        if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_ARRAY) {
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_TOP;
            return NGX_OK;
        }

        if (ev != NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_MAP) {
            return ngx_http_kafka_producer_rest_refuse(p, 422, 422,
                                  "record %ui must be an object, not %s",
                                  p->records->nelts,
                                  ngx_http_kafka_producer_rest_events[ev]);
        }

        if (p->records->nelts == p->max_records) {
            return ngx_http_kafka_producer_rest_refuse(p, 422, 422,
                                  "more than %ui records in one request "
                                  "(kafka_producer_rest_max_records)",
                                  p->max_records);
        }

        p->rec = ngx_array_push(p->records);
        if (p->rec == NULL) {
            p->nomem = 1;
            return NGX_ERROR;
        }

        ngx_str_null(&p->rec->key);
        ngx_str_null(&p->rec->value);
        p->rec->partition = RD_KAFKA_PARTITION_UA;
        p->rec->headers = NULL;

        p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORD;
        return NGX_OK;

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORD:
        if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_MAP) {
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORDS;
            return NGX_OK;
        }

        if (len == 3 && ngx_strncmp(s, "key", 3) == 0) {
            p->data = &p->rec->key;
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_DATA;

        } else if (len == 5 && ngx_strncmp(s, "value", 5) == 0) {
            p->data = &p->rec->value;
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_DATA;

        } else if (len == 9 && ngx_strncmp(s, "partition", 9) == 0) {
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_PARTITION;

        } else if (len == 7 && ngx_strncmp(s, "headers", 7) == 0) {
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADERS0;

        } else {
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_SKIP;
            p->ret = NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORD;
        }

        return NGX_OK;

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_DATA:
        if (p->format == NGX_HTTP_KAFKA_PRODUCER_REST_JSON
            && ev != NGX_HTTP_KAFKA_PRODUCER_REST_EV_NULL)
        {
            /* the value as JSON text, by YAJL's generator */

            yajl_gen_reset(p->gen, NULL);
            yajl_gen_clear(p->gen);

            if (ngx_http_kafka_producer_rest_capture(p, ev, s, len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_MAP
                || ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_ARRAY)
            {
                p->capturing = 1;
                p->nested = p->depth - 1;
                return NGX_OK;
            }

            return ngx_http_kafka_producer_rest_data(p, ev, NULL, 0, 1);
        }

        return ngx_http_kafka_producer_rest_data(p, ev, s, len, 0);

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_PARTITION:
        return ngx_http_kafka_producer_rest_partition(p, ev, s, len);

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADERS0:
        if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_NULL) {
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORD;
            return NGX_OK;
        }

        if (ev != NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_ARRAY) {
            return ngx_http_kafka_producer_rest_refuse(p, 422, 422,
                                  "the headers of record %ui must be an "
                                  "array of {\"key\":..,\"value\":..}, "
                                  "not %s", p->records->nelts - 1,
                                  ngx_http_kafka_producer_rest_events[ev]);
        }

        if (p->rec->headers == NULL) {
            p->rec->headers = ngx_array_create(p->pool, 2,
                                               sizeof(ngx_keyval_t));
            if (p->rec->headers == NULL) {
                p->nomem = 1;
                return NGX_ERROR;
            }
        }

        p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADERS;
        return NGX_OK;

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADERS:
        if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_ARRAY) {
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORD;
            return NGX_OK;
        }

        if (ev != NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_MAP) {
            return ngx_http_kafka_producer_rest_refuse(p, 422, 422,
                                  "a header of record %ui must be an "
                                  "object, not %s", p->records->nelts - 1,
                                  ngx_http_kafka_producer_rest_events[ev]);
        }

        p->header = ngx_array_push(p->rec->headers);
        if (p->header == NULL) {
            p->nomem = 1;
            return NGX_ERROR;
        }

        ngx_str_null(&p->header->key);
        ngx_str_null(&p->header->value);

        p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADER;
        return NGX_OK;

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADER:
        if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_MAP) {
            if (p->header->key.data == NULL) {
                return ngx_http_kafka_producer_rest_refuse(p, 422, 422,
                                  "a header of record %ui has no \"key\"",
                                  p->records->nelts - 1);
            }

            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADERS;
            return NGX_OK;
        }

        if (len == 3 && ngx_strncmp(s, "key", 3) == 0) {
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADER_KEY;

        } else if (len == 5 && ngx_strncmp(s, "value", 5) == 0) {
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADER_VALUE;

        } else {
            p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_SKIP;
            p->ret = NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADER;
        }

        return NGX_OK;

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADER_KEY:
        if (ev != NGX_HTTP_KAFKA_PRODUCER_REST_EV_STRING
            || len == 0 || len > NGX_HTTP_KAFKA_PRODUCER_HEADER_NAME_MAX)
        {
            return ngx_http_kafka_producer_rest_refuse(p, 422, 422,
                                  "a header key of record %ui must be a "
                                  "string of 1 to %d bytes",
                                  p->records->nelts - 1,
                                  NGX_HTTP_KAFKA_PRODUCER_HEADER_NAME_MAX);
        }

        p->header->key.data = ngx_pstrdup(p->pool, &name);
        if (p->header->key.data == NULL) {
            p->nomem = 1;
            return NGX_ERROR;
        }

        p->header->key.len = len;
        p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADER;
        return NGX_OK;

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADER_VALUE:
        p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_HEADER;

        if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_NULL) {
            ngx_str_null(&p->header->value);
            return NGX_OK;
        }

        /* Strimzi's bridge: a header value is base64, whatever the format */

        if (ev != NGX_HTTP_KAFKA_PRODUCER_REST_EV_STRING) {
            return ngx_http_kafka_producer_rest_refuse(p, 422,
                                  NGX_HTTP_KAFKA_PRODUCER_REST_CONVERSION,
                                  "a header value of record %ui must be a "
                                  "base64 string or null, not %s",
                                  p->records->nelts - 1,
                                  ngx_http_kafka_producer_rest_events[ev]);
        }

        if (ngx_http_kafka_producer_rest_base64(p, s, len,
                                                &p->header->value,
                                                "a header value")
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (p->header->value.len > NGX_HTTP_KAFKA_PRODUCER_HEADER_VALUE_MAX) {
            return ngx_http_kafka_producer_rest_refuse(p, 422, 422,
                                  "a header value of record %ui is longer "
                                  "than %d bytes", p->records->nelts - 1,
                                  NGX_HTTP_KAFKA_PRODUCER_HEADER_VALUE_MAX);
        }

        return NGX_OK;

    case NGX_HTTP_KAFKA_PRODUCER_REST_S_SKIP:
        if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_MAP
            || ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_ARRAY)
        {
            p->skipping = 1;
            p->nested = p->depth - 1;
            return NGX_OK;
        }

        p->state = p->ret;
        return NGX_OK;

    default: /* NGX_HTTP_KAFKA_PRODUCER_REST_S_END: YAJL stops first */
        break;
    }

    return ngx_http_kafka_producer_rest_refuse(p, 422, 422,
                                  "the body must be an object with "
                                  "\"records\", not %s",
                                  ngx_http_kafka_producer_rest_events[ev]);
}


/* one event of a "json" key or value to YAJL's generator */

static ngx_int_t
ngx_http_kafka_producer_rest_capture(ngx_http_kafka_producer_rest_parser_t *p,
    ngx_uint_t ev, u_char *s, size_t len)
{
    yajl_gen_status  st;

    switch (ev) {

    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_NULL:
        st = yajl_gen_null(p->gen);
        break;

    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_BOOL:
        st = yajl_gen_bool(p->gen, len);
        break;

    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_NUMBER:
        st = yajl_gen_number(p->gen, (const char *) s, len);
        break;

    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_STRING:
    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_KEY:
        st = yajl_gen_string(p->gen, s, len);
        break;

    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_MAP:
        st = yajl_gen_map_open(p->gen);
        break;

    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_MAP:
        st = yajl_gen_map_close(p->gen);
        break;

    case NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_ARRAY:
        st = yajl_gen_array_open(p->gen);
        break;

    default: /* NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_ARRAY */
        st = yajl_gen_array_close(p->gen);
    }

    if (st != yajl_gen_status_ok) {
        /* only an allocation can fail: the parser checked the rest */
        p->nomem = 1;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A key or value is complete: what the generator wrote ("generated",
 * the json format); else the string "s" (or a null), as is (text) or
 * base64-decoded (binary).
 */

static ngx_int_t
ngx_http_kafka_producer_rest_data(ngx_http_kafka_producer_rest_parser_t *p,
    ngx_uint_t ev, u_char *s, size_t len, ngx_uint_t generated)
{
    size_t            n;
    ngx_str_t         text;
    const char       *what;
    const u_char     *buf;

    what = (p->data == &p->rec->key) ? "key" : "value";

    p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORD;

    if (generated) {
        if (yajl_gen_get_buf(p->gen, &buf, &n) != yajl_gen_status_ok) {
            p->nomem = 1;
            return NGX_ERROR;
        }

        text.data = (u_char *) buf;
        text.len = n;

    } else if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_NULL) {
        ngx_str_null(p->data);
        return NGX_OK;

    } else if (ev != NGX_HTTP_KAFKA_PRODUCER_REST_EV_STRING) {
        return ngx_http_kafka_producer_rest_refuse(p, 422,
                                  NGX_HTTP_KAFKA_PRODUCER_REST_CONVERSION,
                                  "the %s of record %ui must be a%s string "
                                  "or null in the %s format, not %s", what,
                                  p->records->nelts - 1,
                                  p->format
                                  == NGX_HTTP_KAFKA_PRODUCER_REST_BINARY
                                  ? " base64" : "",
                                  p->format
                                  == NGX_HTTP_KAFKA_PRODUCER_REST_BINARY
                                  ? "binary" : "text",
                                  ngx_http_kafka_producer_rest_events[ev]);

    } else if (p->format == NGX_HTTP_KAFKA_PRODUCER_REST_BINARY) {
        if (ngx_http_kafka_producer_rest_base64(p, s, len, p->data, what)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        goto check;

    } else {
        text.data = s;
        text.len = len;
    }

    /* a copy: the generator's buffer and YAJL's lexer buffer are reused */

    p->data->data = ngx_pnalloc(p->pool, text.len ? text.len : 1);
    if (p->data->data == NULL) {
        p->nomem = 1;
        return NGX_ERROR;
    }

    ngx_memcpy(p->data->data, text.data, text.len);
    p->data->len = text.len;

check:

    if (p->data == &p->rec->key
        && p->data->len > NGX_HTTP_KAFKA_PRODUCER_RECORD_KEY_MAX)
    {
        return ngx_http_kafka_producer_rest_refuse(p, 422, 422,
                                  "the key of record %ui is longer than %d "
                                  "bytes", p->records->nelts - 1,
                                  NGX_HTTP_KAFKA_PRODUCER_RECORD_KEY_MAX);
    }

    return NGX_OK;
}


/* "partition": an integer from 0 to 2147483647, or null */

static ngx_int_t
ngx_http_kafka_producer_rest_partition(
    ngx_http_kafka_producer_rest_parser_t *p, ngx_uint_t ev, u_char *s,
    size_t len)
{
    ngx_int_t  n;

    p->state = NGX_HTTP_KAFKA_PRODUCER_REST_S_RECORD;

    if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_NULL) {
        p->rec->partition = RD_KAFKA_PARTITION_UA;
        return NGX_OK;
    }

    /* YAJL checked the number's syntax: digits, no sign, fraction, exponent */

    n = NGX_ERROR;

    if (ev == NGX_HTTP_KAFKA_PRODUCER_REST_EV_NUMBER && len <= 10) {
        n = ngx_atoi(s, len);
    }

    if (n == NGX_ERROR || n > 0x7fffffff) {
        return ngx_http_kafka_producer_rest_refuse(p, 422, 422,
                                  "the partition of record %ui must be an "
                                  "integer from 0 to 2147483647",
                                  p->records->nelts - 1);
    }

    p->rec->partition = (int32_t) n;

    return NGX_OK;
}


/* a member name of the object at p->depth, refused if it came before */

static ngx_int_t
ngx_http_kafka_producer_rest_name(ngx_http_kafka_producer_rest_parser_t *p,
    u_char *s, size_t len)
{
    uint32_t         hash;
    ngx_str_t        name;
    ngx_str_node_t  *node;

    name.data = s;
    name.len = len;

    hash = ngx_crc32_short(s, len);

    if (ngx_str_rbtree_lookup(&p->names[p->depth], &name, hash) != NULL) {
        return ngx_http_kafka_producer_rest_refuse(p, NGX_HTTP_BAD_REQUEST,
                                  NGX_HTTP_BAD_REQUEST,
                                  "a member name is repeated in one object "
                                  "of the body (RFC 8259, section 4)");
    }

    node = ngx_palloc(p->pool, sizeof(ngx_str_node_t));
    if (node == NULL) {
        p->nomem = 1;
        return NGX_ERROR;
    }

    node->str.data = ngx_pstrdup(p->pool, &name);
    if (node->str.data == NULL && len) {
        p->nomem = 1;
        return NGX_ERROR;
    }

    node->str.len = len;
    node->node.key = hash;

    ngx_rbtree_insert(&p->names[p->depth], &node->node);

    return NGX_OK;
}


static ngx_int_t
ngx_http_kafka_producer_rest_base64(ngx_http_kafka_producer_rest_parser_t *p,
    u_char *s, size_t len, ngx_str_t *out, const char *what)
{
    size_t     i;
    ngx_str_t  src;

    /*
     * RFC 4648, section 4, strictly: ngx_decode_base64() stops at the
     * first '=' and ignores the rest ("QQ==garbage!!" would be "A"), and
     * takes a missing padding; here the length is a multiple of 4 and
     * '=' is only the last character or the last two
     */

    for (i = 0; i < len; i++) {
        if (s[i] == '='
            && !(i == len - 1 || (i == len - 2 && s[len - 1] == '=')))
        {
            break;
        }
    }

    if (len % 4 != 0 || i != len) {
        return ngx_http_kafka_producer_rest_refuse(p, 422,
                                  NGX_HTTP_KAFKA_PRODUCER_REST_CONVERSION,
                                  "%s of record %ui is not base64 "
                                  "(RFC 4648: a length that is a multiple "
                                  "of 4, \"=\" only as the padding at the "
                                  "end)", what, p->records->nelts - 1);
    }

    src.data = s;
    src.len = len;

    out->data = ngx_pnalloc(p->pool, ngx_base64_decoded_length(len) + 1);
    if (out->data == NULL) {
        p->nomem = 1;
        return NGX_ERROR;
    }

    if (ngx_decode_base64(out, &src) != NGX_OK) {
        return ngx_http_kafka_producer_rest_refuse(p, 422,
                                  NGX_HTTP_KAFKA_PRODUCER_REST_CONVERSION,
                                  "%s of record %ui is not base64 "
                                  "(RFC 4648)", what, p->records->nelts - 1);
    }

    return NGX_OK;
}


/*
 * A supplement to YAJL, not a parser: the "\uXXXX" escapes of the raw
 * body, for what YAJL 2.1 lets through (it writes a lone surrogate as
 * '?').  In valid JSON a backslash occurs only inside a string and
 * starts an escape, so no string tracking is needed: "\u" + a high
 * surrogate (D800-DBFF) must be followed at once by "\u" + a low one
 * (DC00-DFFF); a low one alone is refused; any other escape is skipped
 * (2 bytes).  What is not JSON at all is left to YAJL.  NGX_OK, or
 * NGX_DECLINED with the offset of the lone escape in "at".
 */

static ngx_int_t
ngx_http_kafka_producer_rest_surrogates(u_char *start, u_char *end,
    size_t *at)
{
    u_char      *p;
    ngx_uint_t   cp, lo;

    for (p = start; p + 1 < end; p++) {
        if (*p != '\\') {
            continue;
        }

        if (p[1] != 'u'
            || ngx_http_kafka_producer_rest_hex4(p + 2, end, &cp) != NGX_OK)
        {
            p++;                    /* "\x": the loop skips "x" */
            continue;
        }

        if (cp >= 0xdc00 && cp <= 0xdfff) {
            goto lone;
        }

        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (end - p < 12 || p[6] != '\\' || p[7] != 'u'
                || ngx_http_kafka_producer_rest_hex4(p + 8, end, &lo)
                   != NGX_OK
                || lo < 0xdc00 || lo > 0xdfff)
            {
                goto lone;
            }

            p += 11;                /* the pair, 12 bytes */
            continue;
        }

        p += 5;                     /* "\uXXXX", 6 bytes */
    }

    return NGX_OK;

lone:

    *at = p - start;

    return NGX_DECLINED;
}


/* 4 hex digits at "p" (before "end") into "cp": NGX_OK or NGX_DECLINED */

static ngx_int_t
ngx_http_kafka_producer_rest_hex4(u_char *p, u_char *end, ngx_uint_t *cp)
{
    ngx_int_t  n;

    if (end - p < 4) {
        return NGX_DECLINED;
    }

    n = ngx_hextoi(p, 4);
    if (n == NGX_ERROR) {
        return NGX_DECLINED;
    }

    *cp = (ngx_uint_t) n;

    return NGX_OK;
}


/* stops the parse with a 400 or 422 and its reason; returns NGX_ERROR */

static ngx_int_t
ngx_http_kafka_producer_rest_refuse(ngx_http_kafka_producer_rest_parser_t *p,
    ngx_uint_t status, ngx_uint_t code, const char *fmt, ...)
{
    u_char   *e;
    va_list   args;

    p->err->status = status;
    p->err->code = code;

    p->err->detail.data = ngx_pnalloc(p->pool, NGX_MAX_ERROR_STR);
    if (p->err->detail.data == NULL) {
        p->nomem = 1;
        return NGX_ERROR;
    }

    va_start(args, fmt);
    e = ngx_vslprintf(p->err->detail.data,
                      p->err->detail.data + NGX_MAX_ERROR_STR, fmt, args);
    va_end(args);

    p->err->detail.len = e - p->err->detail.data;

    return NGX_ERROR;
}


/* YAJL's callbacks: 1 goes on, 0 cancels the parse */

static int
ngx_http_kafka_producer_rest_null(void *ctx)
{
    return ngx_http_kafka_producer_rest_event(ctx,
                     NGX_HTTP_KAFKA_PRODUCER_REST_EV_NULL, NULL, 0) == NGX_OK;
}


static int
ngx_http_kafka_producer_rest_boolean(void *ctx, int b)
{
    /* the value travels in "len" */
    return ngx_http_kafka_producer_rest_event(ctx,
                     NGX_HTTP_KAFKA_PRODUCER_REST_EV_BOOL, NULL, b != 0)
           == NGX_OK;
}


static int
ngx_http_kafka_producer_rest_number(void *ctx, const char *s, size_t len)
{
    return ngx_http_kafka_producer_rest_event(ctx,
                     NGX_HTTP_KAFKA_PRODUCER_REST_EV_NUMBER, (u_char *) s,
                     len) == NGX_OK;
}


static int
ngx_http_kafka_producer_rest_string(void *ctx, const unsigned char *s,
    size_t len)
{
    return ngx_http_kafka_producer_rest_event(ctx,
                     NGX_HTTP_KAFKA_PRODUCER_REST_EV_STRING, (u_char *) s,
                     len) == NGX_OK;
}


static int
ngx_http_kafka_producer_rest_start_map(void *ctx)
{
    return ngx_http_kafka_producer_rest_event(ctx,
                     NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_MAP, NULL, 0)
           == NGX_OK;
}


static int
ngx_http_kafka_producer_rest_map_key(void *ctx, const unsigned char *s,
    size_t len)
{
    return ngx_http_kafka_producer_rest_event(ctx,
                     NGX_HTTP_KAFKA_PRODUCER_REST_EV_KEY, (u_char *) s, len)
           == NGX_OK;
}


static int
ngx_http_kafka_producer_rest_end_map(void *ctx)
{
    return ngx_http_kafka_producer_rest_event(ctx,
                     NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_MAP, NULL, 0)
           == NGX_OK;
}


static int
ngx_http_kafka_producer_rest_start_array(void *ctx)
{
    return ngx_http_kafka_producer_rest_event(ctx,
                     NGX_HTTP_KAFKA_PRODUCER_REST_EV_START_ARRAY, NULL, 0)
           == NGX_OK;
}


static int
ngx_http_kafka_producer_rest_end_array(void *ctx)
{
    return ngx_http_kafka_producer_rest_event(ctx,
                     NGX_HTTP_KAFKA_PRODUCER_REST_EV_END_ARRAY, NULL, 0)
           == NGX_OK;
}


/*
 * YAJL's memory from the pool of the parser state "ctx": each block
 * carries its size in front of it for realloc(); free() returns large
 * blocks to the system (ngx_pfree()), small ones go with the pool.  A
 * failure sets p->nomem: the parse is then NGX_ERROR (500), not a 400.
 */

static void *
ngx_http_kafka_producer_rest_malloc(void *ctx, size_t size)
{
    ngx_http_kafka_producer_rest_parser_t *p = ctx;

    size_t  *m;

    m = ngx_palloc(p->pool, sizeof(size_t) + size);
    if (m == NULL) {
        /* rest_parse() answers NGX_ERROR (500), whatever YAJL says */
        p->nomem = 1;
        return NULL;
    }

    *m = size;

    return m + 1;
}


static void *
ngx_http_kafka_producer_rest_realloc(void *ctx, void *ptr, size_t size)
{
    ngx_http_kafka_producer_rest_parser_t *p = ctx;

    void    *n;
    size_t  *m;

    if (ptr == NULL) {
        return ngx_http_kafka_producer_rest_malloc(ctx, size);
    }

    m = (size_t *) ptr - 1;

    if (size <= *m) {
        return ptr;
    }

    n = ngx_http_kafka_producer_rest_malloc(ctx, size);
    if (n == NULL) {
        return NULL;
    }

    ngx_memcpy(n, ptr, *m);
    (void) ngx_pfree(p->pool, m);

    return n;
}


static void
ngx_http_kafka_producer_rest_free(void *ctx, void *ptr)
{
    ngx_http_kafka_producer_rest_parser_t *p = ctx;

    if (ptr) {
        (void) ngx_pfree(p->pool, (size_t *) ptr - 1);
    }
}
