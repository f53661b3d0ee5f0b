
/*
 * ngx_http_kafka_producer_module: the libFuzzer target of `make fuzz`.
 *
 * It is linked against nginx's own objects (built with clang, ASan and
 * UBSan from the source of the installed nginx) and the module's src/
 * objects built the same way, so the code fuzzed is the code shipped.
 *
 * The first byte of an input selects what is fuzzed (its value modulo 4:
 * '0' to '3' in the seed corpus), the rest is the data:
 *
 *   0  a send query string: ngx_http_kafka_producer_parse_args(), checked
 *      against an independent reference parser of the documented rules;
 *      for what it accepts, the record value (the real envelope writer)
 *      and the 202 and 200 answers; for what it refuses, the problem
 *      document with its reason;
 *   1  a topic name: ngx_http_kafka_producer_check_topic() against the
 *      reference rule;
 *   2  a requestId: the status parser against the reference rule, and
 *      the formatter must give back what was parsed;
 *   3  the JSON writer itself: up to 8 members read from the data (a type
 *      byte, then a length byte and that many bytes for a string, 8 bytes
 *      for a number), optionally nested as a raw member; every string's
 *      ngx_http_kafka_producer_utf8_valid() must agree with a strict
 *      RFC 3629 validator.
 *
 * An input whose first byte is 0xf0 or more is a REST Proxy v2 produce
 * body instead (the embedded format is that byte modulo 3: json, binary,
 * text): ngx_http_kafka_producer_rest_parse() with at most 8 records.  A
 * refusal must be a 400 or 422 with one of its documented codes and a
 * reason; what it accepts must hold its limits (1 to 8 records, keys of
 * at most 1024 bytes, partitions in range, header names of 1 to 255
 * bytes), text keys and values must be strict UTF-8, and a json key or
 * value, put back into a body, must parse again to the same bytes.
 *
 * Every JSON document written is parsed by a small strict checker
 * (RFC 8259 without whitespace, as the writer writes, strings in RFC 3629
 * UTF-8) and must give back exactly the members it was written from.
 * Any difference aborts with a message: libFuzzer reports it as a crash
 * and keeps the input.
 */


#include "ngx_http_kafka_producer.h"
#include "ngx_http_kafka_producer_send.h"
#include "ngx_http_kafka_producer_status.h"
#include "ngx_http_kafka_producer_json.h"
#include "ngx_http_kafka_producer_rest_json.h"
#include "ngx_http_kafka_producer_record.h"


#define NGX_HTTP_KAFKA_PRODUCER_FUZZ_NARGS    6
#define NGX_HTTP_KAFKA_PRODUCER_FUZZ_N        8
#define NGX_HTTP_KAFKA_PRODUCER_FUZZ_DEPTH    4


#define ngx_http_kafka_producer_fuzz_check(cond, what)                       \
    if (!(cond)) {                                                           \
        ngx_http_kafka_producer_fuzz_fail(__LINE__, #cond, what);            \
    }


/* what a JSON document must hold: members, raw ones with their object */
typedef struct ngx_http_kafka_producer_fuzz_obj_s
    ngx_http_kafka_producer_fuzz_obj_t;

struct ngx_http_kafka_producer_fuzz_obj_s {
    ngx_http_kafka_producer_json_t      *f;
    ngx_uint_t                           n;
    ngx_http_kafka_producer_fuzz_obj_t  *sub[NGX_HTTP_KAFKA_PRODUCER_FUZZ_N];
};


/* the outcome of the reference parser of a send query string */
typedef struct {
    ngx_int_t                            rc;
    ngx_uint_t                           mode;
    ngx_uint_t                           async;
    int32_t                              partition;
    ngx_str_t                            v[NGX_HTTP_KAFKA_PRODUCER_FUZZ_NARGS];
} ngx_http_kafka_producer_fuzz_args_t;


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ngx_http_kafka_producer_fuzz_fail(int line, const char *cond,
    const char *what);
static size_t ngx_http_kafka_producer_fuzz_utf8_char(u_char *p,
    u_char *last);
static ngx_int_t ngx_http_kafka_producer_fuzz_utf8(u_char *p, size_t len);
static u_char *ngx_http_kafka_producer_fuzz_string(u_char *p, u_char *last,
    u_char *out, size_t *len);
static u_char *ngx_http_kafka_producer_fuzz_object(u_char *p, u_char *last,
    ngx_http_kafka_producer_fuzz_obj_t *obj, ngx_uint_t depth);
static void ngx_http_kafka_producer_fuzz_json(
    ngx_http_kafka_producer_fuzz_obj_t *obj, ngx_str_t *json);
static void ngx_http_kafka_producer_fuzz_write(ngx_pool_t *pool,
    ngx_http_kafka_producer_fuzz_obj_t *obj, ngx_str_t *json);
static void ngx_http_kafka_producer_fuzz_ref_args(ngx_pool_t *pool,
    ngx_str_t *args, ngx_http_kafka_producer_fuzz_args_t *ref);
static ngx_int_t ngx_http_kafka_producer_fuzz_ref_decode(ngx_pool_t *pool,
    ngx_str_t *value);
static ngx_int_t ngx_http_kafka_producer_fuzz_ref_topic(ngx_str_t *topic);
static ngx_int_t ngx_http_kafka_producer_fuzz_eq(ngx_str_t *a, ngx_str_t *b);
static ngx_int_t ngx_http_kafka_producer_fuzz_caseeq(ngx_str_t *a,
    char *b);
static void ngx_http_kafka_producer_fuzz_args(ngx_pool_t *pool,
    u_char *data, size_t size);
static void ngx_http_kafka_producer_fuzz_answers(ngx_pool_t *pool,
    ngx_http_kafka_producer_event_t *ev);
static void ngx_http_kafka_producer_fuzz_problem(ngx_pool_t *pool,
    ngx_str_t *error);
static void ngx_http_kafka_producer_fuzz_topic(u_char *data, size_t size);
static void ngx_http_kafka_producer_fuzz_request_id(u_char *data,
    size_t size);
static void ngx_http_kafka_producer_fuzz_writer(ngx_pool_t *pool,
    u_char *data, size_t size);
static void ngx_http_kafka_producer_fuzz_rest(ngx_pool_t *pool,
    ngx_uint_t format, u_char *data, size_t size);
static void ngx_http_kafka_producer_fuzz_rest_again(ngx_pool_t *pool,
    ngx_str_t *data);


/*
 * The module's own structure: src/ uses only its ctx_index, and the rest
 * of ngx_http_kafka_producer_module.c (directives, ngx_devel_kit) is not
 * linked here.
 */
ngx_module_t  ngx_http_kafka_producer_module;


static ngx_open_file_t  ngx_http_kafka_producer_fuzz_file;
static ngx_log_t        ngx_http_kafka_producer_fuzz_log;
static ngx_cycle_t      ngx_http_kafka_producer_fuzz_cycle;


static char  *ngx_http_kafka_producer_fuzz_names[] = {
    "mode", "eventId", "topic", "sendMode", "key", "partition"
};

static char  *ngx_http_kafka_producer_fuzz_modes[] = {
    "plain", "idempotent"
};

static char  *ngx_http_kafka_producer_fuzz_send_modes[] = {
    "sync", "async"
};

static char  *ngx_http_kafka_producer_fuzz_members[] = {
    "eventId", "mode", "sendMode", "topic", "key", "partition", "offset",
    "detail"
};


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_pid = ngx_getpid();
    ngx_pagesize = getpagesize();
    ngx_cacheline_size = NGX_CPU_CACHE_LINE;

    for (ngx_pagesize_shift = 0;
         (ngx_uint_t) (1 << ngx_pagesize_shift) < ngx_pagesize;
         ngx_pagesize_shift++)
    {
        /* void */
    }

    if (ngx_strerror_init() != NGX_OK) {
        abort();
    }

    ngx_time_init();

    /* the log is written, to /dev/null, so that its formats run too */

    ngx_http_kafka_producer_fuzz_file.fd = open("/dev/null", O_WRONLY);
    if (ngx_http_kafka_producer_fuzz_file.fd == NGX_INVALID_FILE) {
        abort();
    }

    ngx_http_kafka_producer_fuzz_log.file = &ngx_http_kafka_producer_fuzz_file;
    ngx_http_kafka_producer_fuzz_log.log_level = NGX_LOG_DEBUG_ALL;

    ngx_http_kafka_producer_fuzz_cycle.log = &ngx_http_kafka_producer_fuzz_log;
    ngx_cycle = &ngx_http_kafka_producer_fuzz_cycle;

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char      *copy;
    ngx_pool_t  *pool;

    if (size == 0) {
        return 0;
    }

    /*
     * A pool this small serves only tiny allocations from its blocks:
     * anything larger is malloc()ed, so ASan sees its bounds.
     */

    pool = ngx_create_pool(NGX_MIN_POOL_SIZE,
                           &ngx_http_kafka_producer_fuzz_log);
    if (pool == NULL) {
        abort();
    }

    /* an exact copy: a read past the end of the data is an ASan report */

    copy = ngx_alloc(size, &ngx_http_kafka_producer_fuzz_log);
    if (copy == NULL) {
        abort();
    }

    ngx_memcpy(copy, data, size);

    if (copy[0] >= 0xf0) {
        ngx_http_kafka_producer_fuzz_rest(pool, copy[0] % 3, copy + 1,
                                          size - 1);
        ngx_free(copy);
        ngx_destroy_pool(pool);
        return 0;
    }

    switch (copy[0] % 4) {

    case 0:
        ngx_http_kafka_producer_fuzz_args(pool, copy + 1, size - 1);
        break;

    case 1:
        ngx_http_kafka_producer_fuzz_topic(copy + 1, size - 1);
        break;

    case 2:
        ngx_http_kafka_producer_fuzz_request_id(copy + 1, size - 1);
        break;

    default: /* 3 */
        ngx_http_kafka_producer_fuzz_writer(pool, copy + 1, size - 1);
    }

    ngx_free(copy);
    ngx_destroy_pool(pool);

    return 0;
}


static void
ngx_http_kafka_producer_fuzz_fail(int line, const char *cond,
    const char *what)
{
    fprintf(stderr, "fuzz_kafka_producer.c:%d: check failed: %s (%s)\n",
            line, cond, what);
    abort();
}


/* the length of one RFC 3629 character at p, or 0 if it is not one */

static size_t
ngx_http_kafka_producer_fuzz_utf8_char(u_char *p, u_char *last)
{
    u_char  c, lo, hi;
    size_t  n, i;

    c = p[0];

    if (c < 0x80) {
        return 1;
    }

    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;

    } else if (c == 0xe0) {
        n = 3;
        lo = 0xa0;

    } else if (c == 0xed) {
        n = 3;
        hi = 0x9f;          /* no surrogates */

    } else if (c >= 0xe1 && c <= 0xef) {
        n = 3;

    } else if (c == 0xf0) {
        n = 4;
        lo = 0x90;

    } else if (c >= 0xf1 && c <= 0xf3) {
        n = 4;

    } else if (c == 0xf4) {
        n = 4;
        hi = 0x8f;          /* up to U+10FFFF */

    } else {
        return 0;
    }

    if ((size_t) (last - p) < n || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


static ngx_int_t
ngx_http_kafka_producer_fuzz_utf8(u_char *p, size_t len)
{
    size_t  i, n;

    /* by index: p is NULL for an absent parameter */

    for (i = 0; i < len; i += n) {
        n = ngx_http_kafka_producer_fuzz_utf8_char(p + i, p + len);

        if (n == 0) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * Parses the JSON string at p (its opening quote) into out, which must
 * have room for last - p bytes (a decoded string is never longer than its
 * JSON text).  Returns the end of the string, or NULL if it is not a
 * valid JSON string.
 */

static u_char *
ngx_http_kafka_producer_fuzz_string(u_char *p, u_char *last, u_char *out,
    size_t *len)
{
    u_char    *o;
    size_t     n;
    uint32_t   u, lo;
    ngx_int_t  i, h;

    if (p == last || *p != '"') {
        return NULL;
    }

    p++;
    o = out;

    for ( ;; ) {

        if (p == last) {
            return NULL;
        }

        if (*p == '"') {
            *len = o - out;
            return p + 1;
        }

        if (*p < 0x20) {
            return NULL;
        }

        if (*p != '\\') {
            n = ngx_http_kafka_producer_fuzz_utf8_char(p, last);
            if (n == 0) {
                return NULL;
            }

            o = ngx_cpymem(o, p, n);
            p += n;
            continue;
        }

        if (last - p < 2) {
            return NULL;
        }

        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
            *o++ = p[1];
            p += 2;
            continue;
        case 'b':
            *o++ = '\b';
            p += 2;
            continue;
        case 'f':
            *o++ = '\f';
            p += 2;
            continue;
        case 'n':
            *o++ = '\n';
            p += 2;
            continue;
        case 'r':
            *o++ = '\r';
            p += 2;
            continue;
        case 't':
            *o++ = '\t';
            p += 2;
            continue;
        case 'u':
            break;
        default:
            return NULL;
        }

        /* \uXXXX, a surrogate pair as two of them */

        if (last - p < 6) {
            return NULL;
        }

        u = 0;

        for (i = 2; i < 6; i++) {
            h = ngx_hextoi(p + i, 1);
            if (h == NGX_ERROR) {
                return NULL;
            }

            u = u * 16 + h;
        }

        p += 6;

        if (u >= 0xdc00 && u <= 0xdfff) {
            return NULL;
        }

        if (u >= 0xd800 && u <= 0xdbff) {
            if (last - p < 6 || p[0] != '\\' || p[1] != 'u') {
                return NULL;
            }

            lo = 0;

            for (i = 2; i < 6; i++) {
                h = ngx_hextoi(p + i, 1);
                if (h == NGX_ERROR) {
                    return NULL;
                }

                lo = lo * 16 + h;
            }

            if (lo < 0xdc00 || lo > 0xdfff) {
                return NULL;
            }

            p += 6;
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }

        if (u < 0x80) {
            *o++ = (u_char) u;

        } else if (u < 0x800) {
            *o++ = (u_char) (0xc0 | (u >> 6));
            *o++ = (u_char) (0x80 | (u & 0x3f));

        } else if (u < 0x10000) {
            *o++ = (u_char) (0xe0 | (u >> 12));
            *o++ = (u_char) (0x80 | ((u >> 6) & 0x3f));
            *o++ = (u_char) (0x80 | (u & 0x3f));

        } else {
            *o++ = (u_char) (0xf0 | (u >> 18));
            *o++ = (u_char) (0x80 | ((u >> 12) & 0x3f));
            *o++ = (u_char) (0x80 | ((u >> 6) & 0x3f));
            *o++ = (u_char) (0x80 | (u & 0x3f));
        }
    }
}


/*
 * Parses the JSON object at p, which must hold exactly the members of
 * "obj" in their order.  Returns the end of the object, or aborts.
 */

static u_char *
ngx_http_kafka_producer_fuzz_object(u_char *p, u_char *last,
    ngx_http_kafka_producer_fuzz_obj_t *obj, ngx_uint_t depth)
{
    u_char                          *buf, *q;
    size_t                           len;
    int64_t                          num;
    ngx_uint_t                       i, neg, digits;
    ngx_http_kafka_producer_json_t  *f;

    ngx_http_kafka_producer_fuzz_check(
                              depth <= NGX_HTTP_KAFKA_PRODUCER_FUZZ_DEPTH,
                              "nesting");

    buf = ngx_alloc(last - p + 1, &ngx_http_kafka_producer_fuzz_log);
    if (buf == NULL) {
        abort();
    }

    ngx_http_kafka_producer_fuzz_check(p < last && *p == '{', "an object");
    p++;

    for (i = 0; i < obj->n; i++) {
        f = &obj->f[i];

        if (i) {
            ngx_http_kafka_producer_fuzz_check(p < last && *p == ',',
                                               "a comma between members");
            p++;
        }

        /* the name */

        p = ngx_http_kafka_producer_fuzz_string(p, last, buf, &len);

        ngx_http_kafka_producer_fuzz_check(p != NULL, "a valid member name");
        ngx_http_kafka_producer_fuzz_check(len == ngx_strlen(f->name)
                                           && ngx_memcmp(buf, f->name, len)
                                              == 0,
                                           f->name);
        ngx_http_kafka_producer_fuzz_check(p < last && *p == ':',
                                           "a colon after a name");
        p++;

        /* the value */

        switch (f->type) {

        case NGX_HTTP_KAFKA_PRODUCER_JSON_STRING:
            p = ngx_http_kafka_producer_fuzz_string(p, last, buf, &len);

            ngx_http_kafka_producer_fuzz_check(p != NULL,
                                               "a valid JSON string");
            ngx_http_kafka_producer_fuzz_check(len == f->str.len
                                               && ngx_memcmp(buf, f->str.data,
                                                             len)
                                                  == 0,
                                               "the string given back");
            break;

        case NGX_HTTP_KAFKA_PRODUCER_JSON_NUMBER:
            neg = (p < last && *p == '-');
            p += neg;

            q = p;
            num = 0;
            digits = 0;

            while (p < last && *p >= '0' && *p <= '9') {
                ngx_http_kafka_producer_fuzz_check(digits < 19
                                                   || (digits == 19
                                                       && neg
                                                       && *p == '8'
                                                       && num
                                                       == INT64_MAX / 10),
                                                   "an int64");

                if (digits == 19) {
                    /* INT64_MIN */
                    num = -num * 10 - 8;
                    neg = 0;

                } else {
                    num = num * 10 + (*p - '0');
                }

                digits++;
                p++;
            }

            ngx_http_kafka_producer_fuzz_check(p > q, "a number");
            ngx_http_kafka_producer_fuzz_check(*q != '0' || p - q == 1,
                                               "no leading zero");
            ngx_http_kafka_producer_fuzz_check((neg ? -num : num) == f->num,
                                               "the number given back");
            break;

        case NGX_HTTP_KAFKA_PRODUCER_JSON_RAW:
            ngx_http_kafka_producer_fuzz_check(obj->sub[i] != NULL,
                                               "the nested object");
            p = ngx_http_kafka_producer_fuzz_object(p, last, obj->sub[i],
                                                    depth + 1);
            break;

        default: /* NGX_HTTP_KAFKA_PRODUCER_JSON_NULL */
            ngx_http_kafka_producer_fuzz_check(last - p >= 4
                                               && ngx_strncmp(p, "null", 4)
                                                  == 0,
                                               "null");
            p += 4;
        }
    }

    ngx_http_kafka_producer_fuzz_check(p < last && *p == '}',
                                       "the end of the object");

    ngx_free(buf);

    return p + 1;
}


static void
ngx_http_kafka_producer_fuzz_json(ngx_http_kafka_producer_fuzz_obj_t *obj,
    ngx_str_t *json)
{
    u_char  *end;

    end = ngx_http_kafka_producer_fuzz_object(json->data,
                                              json->data + json->len, obj, 0);

    ngx_http_kafka_producer_fuzz_check(end == json->data + json->len,
                                       "nothing after the object");
}


/*
 * Writes "obj" into a buffer of exactly ngx_http_kafka_producer_json_len()
 * bytes of its own, so that ASan sees a write past the computed length.
 */

static void
ngx_http_kafka_producer_fuzz_write(ngx_pool_t *pool,
    ngx_http_kafka_producer_fuzz_obj_t *obj, ngx_str_t *json)
{
    size_t               len;
    u_char              *p;
    ngx_pool_cleanup_t  *cln;

    len = ngx_http_kafka_producer_json_len(obj->f, obj->n);

    json->data = ngx_alloc(len, &ngx_http_kafka_producer_fuzz_log);
    if (json->data == NULL) {
        abort();
    }

    p = ngx_http_kafka_producer_json_write(json->data, obj->f, obj->n);

    ngx_http_kafka_producer_fuzz_check(p <= json->data + len,
                                       "the length computed is enough");

    json->len = p - json->data;

    /* freed with the pool */

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        abort();
    }

    cln->handler = ngx_free;
    cln->data = json->data;
}


/* 0: the send query string */

static void
ngx_http_kafka_producer_fuzz_args(ngx_pool_t *pool, u_char *data,
    size_t size)
{
    ngx_int_t                            rc;
    ngx_str_t                            args, error, topic, key;
    ngx_uint_t                           i;
    ngx_http_kafka_producer_event_t      ev;
    ngx_http_kafka_producer_fuzz_args_t  ref;

    args.data = data;
    args.len = size;

    ngx_memzero(&ev, sizeof(ngx_http_kafka_producer_event_t));
    ngx_str_null(&error);

    rc = ngx_http_kafka_producer_parse_args(pool, &args, &ev, &error);

    ngx_http_kafka_producer_fuzz_ref_args(pool, &args, &ref);

    if (rc != ref.rc) {
        fprintf(stderr, "parse_args: %d \"%.*s\", the reference: %d\n",
                (int) rc, (int) error.len, error.data, (int) ref.rc);
    }

    ngx_http_kafka_producer_fuzz_check(rc == ref.rc,
                                       "the reference parser agrees");

    if (rc == NGX_DECLINED) {
        ngx_http_kafka_producer_fuzz_check(error.len > 0
                                           && error.len <= NGX_MAX_ERROR_STR,
                                           "a reason");
        ngx_http_kafka_producer_fuzz_problem(pool, &error);
        return;
    }

    topic = ref.v[2];
    key = ref.v[4];

    ngx_http_kafka_producer_fuzz_check(ev.mode == ref.mode, "mode");
    ngx_http_kafka_producer_fuzz_check(ev.async == ref.async, "sendMode");
    ngx_http_kafka_producer_fuzz_check(
                    ngx_http_kafka_producer_fuzz_eq(&ev.event_id, &ref.v[1]),
                    "eventId");
    ngx_http_kafka_producer_fuzz_check(
                    ngx_http_kafka_producer_fuzz_eq(&ev.topic, &topic),
                    "topic");
    ngx_http_kafka_producer_fuzz_check(
                    ngx_http_kafka_producer_fuzz_eq(&ev.key, &key), "key");
    ngx_http_kafka_producer_fuzz_check(ev.partition == ref.partition,
                                       "partition");
    ngx_http_kafka_producer_fuzz_check(ev.offset == -1, "offset");

    /*
     * No field may hold a NUL byte: nginx refuses control characters in
     * the request line, and %00 must be refused here.
     */

    for (i = 0; i < size; i++) {
        if (data[i] < 0x20 || data[i] == 0x7f) {
            break;
        }
    }

    if (i == size) {
        for (i = 0; i < ev.event_id.len; i++) {
            ngx_http_kafka_producer_fuzz_check(ev.event_id.data[i] != '\0',
                                               "no NUL in eventId");
        }

        for (i = 0; i < ev.key.len; i++) {
            ngx_http_kafka_producer_fuzz_check(ev.key.data[i] != '\0',
                                               "no NUL in key");
        }
    }

    /* nor reach past the limits */

    ngx_http_kafka_producer_fuzz_check(
                     ev.event_id.len <= NGX_HTTP_KAFKA_PRODUCER_EVENT_ID_MAX
                     && ev.key.len <= NGX_HTTP_KAFKA_PRODUCER_KEY_MAX
                     && ev.topic.len <= NGX_HTTP_KAFKA_PRODUCER_TOPIC_MAX,
                     "limits");

    /* what the send handler does next: the defaults */

    if (ev.topic.len == 0) {
        ngx_str_set(&ev.topic, "bhf-transactions");
    }

    if (ev.key.len == 0) {
        ev.key = ev.event_id;
    }

    ngx_http_kafka_producer_fuzz_answers(pool, &ev);
}


/* the record value and the answers for an accepted send */

static void
ngx_http_kafka_producer_fuzz_answers(ngx_pool_t *pool,
    ngx_http_kafka_producer_event_t *ev)
{
    u_char                              *p;
    ngx_str_t                            ts, value, mode, send_mode, api,
                                         request_id, pending, json;
    ngx_uint_t                           i;
    ngx_http_request_t                   r;
    ngx_http_kafka_producer_json_t       f[8], *m;
    ngx_http_kafka_producer_fuzz_obj_t   obj;
    u_char                               ts_buf[32];
    u_char                               id[NGX_HTTP_KAFKA_PRODUCER_ID_LEN];
    u_char                         uuid[NGX_HTTP_KAFKA_PRODUCER_UUID_LEN];

    ngx_memzero(&obj, sizeof(ngx_http_kafka_producer_fuzz_obj_t));

    /* the timestamp: 1970-01-01T00:00:00.000Z */

    ts.data = ts_buf;
    ts.len = ngx_http_kafka_producer_iso_time(ts_buf) - ts_buf;

    ngx_http_kafka_producer_fuzz_check(
                          ts.len == NGX_HTTP_KAFKA_PRODUCER_ISO_TIME_LEN
                          && ts.data[4] == '-' && ts.data[10] == 'T'
                          && ts.data[19] == '.' && ts.data[23] == 'Z',
                          "an ISO 8601 time");

    for (i = 0; i < ts.len; i++) {
        if (i == 4 || i == 7 || i == 10 || i == 13 || i == 16 || i == 19
            || i == 23)
        {
            continue;
        }

        ngx_http_kafka_producer_fuzz_check(ts.data[i] >= '0'
                                           && ts.data[i] <= '9',
                                           "an ISO 8601 time");
    }

    mode.data = (u_char *) ngx_http_kafka_producer_fuzz_modes[ev->mode];
    mode.len = ngx_strlen(mode.data);
    send_mode.data =
               (u_char *) ngx_http_kafka_producer_fuzz_send_modes[ev->async];
    send_mode.len = ngx_strlen(send_mode.data);

    /* the record value, by the send handler's own writer */

    ngx_memzero(&r, sizeof(ngx_http_request_t));
    r.pool = pool;

    ngx_http_kafka_producer_fuzz_check(
             ngx_http_kafka_producer_fuzz_envelope(&r, ev, &ts, &value)
             == NGX_OK,
             "the envelope");

    ngx_str_set(&api, "nginx");

    m = f;
    ngx_http_kafka_producer_json_str(m, "eventId", &ev->event_id);
    ngx_http_kafka_producer_json_str(m, "mode", &mode);
    ngx_http_kafka_producer_json_str(m, "sendMode", &send_mode);
    ngx_http_kafka_producer_json_str(m, "api", &api);
    ngx_http_kafka_producer_json_str(m, "ts", &ts);

    obj.f = f;
    obj.n = m - f;

    ngx_http_kafka_producer_fuzz_json(&obj, &value);

    /* the 202 answer, as ngx_http_kafka_producer_accepted() writes it */

    ngx_http_kafka_producer_status_new_id(id);

    p = ngx_http_kafka_producer_status_format_id(uuid, id);

    request_id.data = uuid;
    request_id.len = p - uuid;

    ngx_http_kafka_producer_fuzz_check(
                        request_id.len == NGX_HTTP_KAFKA_PRODUCER_UUID_LEN,
                        "a UUID");

    ngx_str_set(&pending, "PENDING");

    m = f;
    ngx_http_kafka_producer_json_str(m, "requestId", &request_id);
    ngx_http_kafka_producer_json_str(m, "state", &pending);
    ngx_http_kafka_producer_json_str(m, "eventId", &ev->event_id);
    ngx_http_kafka_producer_json_str(m, "mode", &mode);
    ngx_http_kafka_producer_json_str(m, "sendMode", &send_mode);
    ngx_http_kafka_producer_json_str(m, "topic", &ev->topic);
    ngx_http_kafka_producer_json_str(m, "key", &ev->key);

    if (ev->partition == RD_KAFKA_PARTITION_UA) {
        ngx_http_kafka_producer_json_null(m, "partition");

    } else {
        ngx_http_kafka_producer_json_num(m, "partition", ev->partition);
    }

    obj.n = m - f;

    ngx_http_kafka_producer_fuzz_write(pool, &obj, &json);
    ngx_http_kafka_producer_fuzz_json(&obj, &json);

    /* the 200 answer of a sync send */

    m = f;
    ngx_http_kafka_producer_json_str(m, "eventId", &ev->event_id);
    ngx_http_kafka_producer_json_str(m, "mode", &mode);
    ngx_http_kafka_producer_json_str(m, "sendMode", &send_mode);
    ngx_http_kafka_producer_json_str(m, "topic", &ev->topic);
    ngx_http_kafka_producer_json_str(m, "key", &ev->key);
    ngx_http_kafka_producer_json_num(m, "partition",
                                     ev->partition == RD_KAFKA_PARTITION_UA
                                     ? 0 : ev->partition);
    ngx_http_kafka_producer_json_num(m, "offset", INT64_MAX);

    obj.n = m - f;

    ngx_http_kafka_producer_fuzz_write(pool, &obj, &json);
    ngx_http_kafka_producer_fuzz_json(&obj, &json);
}


/* the problem document of a 400, as ngx_http_kafka_producer_problem() */

static void
ngx_http_kafka_producer_fuzz_problem(ngx_pool_t *pool, ngx_str_t *error)
{
    u_char                              *p;
    ngx_str_t                            type, title, detail, json;
    ngx_http_kafka_producer_json_t       f[4], *m;
    ngx_http_kafka_producer_fuzz_obj_t   obj;
    u_char                               buf[NGX_MAX_ERROR_STR];

    p = ngx_snprintf(buf, sizeof(buf), "%V", error);

    detail.data = buf;
    detail.len = p - buf;

    ngx_str_set(&type, "about:blank");
    ngx_str_set(&title, "Bad Request");

    m = f;
    ngx_http_kafka_producer_json_str(m, "type", &type);
    ngx_http_kafka_producer_json_str(m, "title", &title);
    ngx_http_kafka_producer_json_num(m, "status", NGX_HTTP_BAD_REQUEST);
    ngx_http_kafka_producer_json_str(m, "detail", &detail);

    ngx_memzero(&obj, sizeof(ngx_http_kafka_producer_fuzz_obj_t));
    obj.f = f;
    obj.n = m - f;

    ngx_http_kafka_producer_fuzz_write(pool, &obj, &json);
    ngx_http_kafka_producer_fuzz_json(&obj, &json);
}


/*
 * The reference parser: the rules of README's "POST /api/v1/send",
 * written again independently of src/.
 */

static void
ngx_http_kafka_producer_fuzz_ref_args(ngx_pool_t *pool, ngx_str_t *args,
    ngx_http_kafka_producer_fuzz_args_t *ref)
{
    u_char      *p, *last, *end, *eq;
    size_t       k;
    int64_t      n;
    ngx_str_t    name, value, *v;
    ngx_uint_t   i, seen, blank;

    ngx_memzero(ref, sizeof(ngx_http_kafka_producer_fuzz_args_t));

    ref->rc = NGX_DECLINED;
    seen = 0;

    p = args->data;
    last = p + args->len;

    while (p < last) {
        end = p;

        while (end < last && *end != '&') {
            end++;
        }

        eq = p;

        while (eq < end && *eq != '=') {
            eq++;
        }

        name.data = p;
        name.len = eq - p;

        value.data = (eq < end) ? eq + 1 : end;
        value.len = end - value.data;

        p = (end < last) ? end + 1 : last;

        for (i = 0; i < NGX_HTTP_KAFKA_PRODUCER_FUZZ_NARGS; i++) {
            if (ngx_http_kafka_producer_fuzz_caseeq(&name,
                                        ngx_http_kafka_producer_fuzz_names[i]))
            {
                break;
            }
        }

        if (i == NGX_HTTP_KAFKA_PRODUCER_FUZZ_NARGS) {
            continue;
        }

        if (seen & (1 << i)) {
            return;
        }

        seen |= 1 << i;

        if (ngx_http_kafka_producer_fuzz_ref_decode(pool, &value) != NGX_OK) {
            return;
        }

        ref->v[i] = value;
    }

    v = ref->v;

    /* topic, sendMode, key, partition: omitted, not empty, for a default */

    for (i = 2; i < NGX_HTTP_KAFKA_PRODUCER_FUZZ_NARGS; i++) {
        if ((seen & (1 << i)) && v[i].len == 0) {
            return;
        }
    }

    /* mode: required, not blank */

    blank = 1;

    for (k = 0; k < v[0].len; k++) {
        if (ngx_strchr(" \t\r\n", v[0].data[k]) == NULL
            || v[0].data[k] == '\0')
        {
            blank = 0;
        }
    }

    if (blank) {
        return;
    }

    if (ngx_http_kafka_producer_fuzz_caseeq(&v[0], "plain")) {
        ref->mode = NGX_HTTP_KAFKA_PRODUCER_PLAIN;

    } else if (ngx_http_kafka_producer_fuzz_caseeq(&v[0], "idempotent")) {
        ref->mode = NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENT;

    } else {
        return;
    }

    /* eventId: required, not blank, at most 512 bytes of UTF-8 */

    blank = 1;

    for (k = 0; k < v[1].len; k++) {
        if (ngx_strchr(" \t\r\n", v[1].data[k]) == NULL
            || v[1].data[k] == '\0')
        {
            blank = 0;
        }
    }

    if (blank
        || v[1].len > 512
        || ngx_http_kafka_producer_fuzz_utf8(v[1].data, v[1].len) != NGX_OK)
    {
        return;
    }

    /* sendMode: empty, sync or async */

    if (v[3].len == 0 || ngx_http_kafka_producer_fuzz_caseeq(&v[3], "sync")) {
        ref->async = 0;

    } else if (ngx_http_kafka_producer_fuzz_caseeq(&v[3], "async")) {
        ref->async = 1;

    } else {
        return;
    }

    /* topic: empty or a legal name */

    if (v[2].len && ngx_http_kafka_producer_fuzz_ref_topic(&v[2]) != NGX_OK) {
        return;
    }

    /* key: at most 512 bytes of UTF-8 */

    if (v[4].len > 512
        || ngx_http_kafka_producer_fuzz_utf8(v[4].data, v[4].len) != NGX_OK)
    {
        return;
    }

    /* partition: empty, or an integer from 0 to 2147483647 */

    ref->partition = RD_KAFKA_PARTITION_UA;

    if (v[5].len) {
        n = 0;

        for (k = 0; k < v[5].len; k++) {
            if (v[5].data[k] < '0' || v[5].data[k] > '9' || n > 0x7fffffff) {
                return;
            }

            n = n * 10 + v[5].data[k] - '0';
        }

        if (n > 0x7fffffff) {
            return;
        }

        ref->partition = (int32_t) n;
    }

    ref->rc = NGX_OK;
}


/* strict percent-decoding: '+' is a space, %XX, no %00 */

static ngx_int_t
ngx_http_kafka_producer_fuzz_ref_decode(ngx_pool_t *pool, ngx_str_t *value)
{
    u_char      *dst, *start;
    size_t       i;
    ngx_int_t    hi, lo;

    start = ngx_pnalloc(pool, value->len + 1);
    if (start == NULL) {
        abort();
    }

    dst = start;

    for (i = 0; i < value->len; i++) {

        if (value->data[i] == '+') {
            *dst++ = ' ';
            continue;
        }

        if (value->data[i] != '%') {
            *dst++ = value->data[i];
            continue;
        }

        if (value->len - i < 3) {
            return NGX_DECLINED;
        }

        hi = ngx_hextoi(&value->data[i + 1], 1);
        lo = ngx_hextoi(&value->data[i + 2], 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR || (hi == 0 && lo == 0)) {
            return NGX_DECLINED;
        }

        *dst++ = (u_char) (hi * 16 + lo);
        i += 2;
    }

    value->data = start;
    value->len = dst - start;

    return NGX_OK;
}


/* 1 to 249 of a-z A-Z 0-9 . _ -, not "." or "..", or empty (a default) */

static ngx_int_t
ngx_http_kafka_producer_fuzz_ref_topic(ngx_str_t *topic)
{
    size_t   i;
    u_char   c;

    if (topic->len > 249) {
        return NGX_ERROR;
    }

    if ((topic->len == 1 && topic->data[0] == '.')
        || (topic->len == 2 && ngx_strncmp(topic->data, "..", 2) == 0))
    {
        return NGX_ERROR;
    }

    for (i = 0; i < topic->len; i++) {
        c = topic->data[i];

        if (ngx_strchr("abcdefghijklmnopqrstuvwxyz"
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789._-", c) == NULL
            || c == '\0')
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_kafka_producer_fuzz_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_memcmp(a->data, b->data, a->len) == 0);
}


static ngx_int_t
ngx_http_kafka_producer_fuzz_caseeq(ngx_str_t *a, char *b)
{
    size_t  i, len;
    u_char  c, d;

    len = ngx_strlen(b);

    if (a->len != len) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = a->data[i];
        d = (u_char) b[i];

        if (c >= 'A' && c <= 'Z') {
            c += 'a' - 'A';
        }

        if (d >= 'A' && d <= 'Z') {
            d += 'a' - 'A';
        }

        if (c != d) {
            return 0;
        }
    }

    return 1;
}


/* 1: a topic name */

static void
ngx_http_kafka_producer_fuzz_topic(u_char *data, size_t size)
{
    ngx_int_t  rc, ref;
    ngx_str_t  topic;

    topic.data = data;
    topic.len = size;

    rc = ngx_http_kafka_producer_check_topic(&topic);
    ref = ngx_http_kafka_producer_fuzz_ref_topic(&topic);

    ngx_http_kafka_producer_fuzz_check((rc == NGX_OK) == (ref == NGX_OK),
                                       "the reference topic rule agrees");
}


/* 2: a requestId */

static void
ngx_http_kafka_producer_fuzz_request_id(u_char *data, size_t size)
{
    u_char     *p, c;
    size_t      i;
    ngx_int_t   rc, ref;
    ngx_str_t   s;
    u_char      id[NGX_HTTP_KAFKA_PRODUCER_ID_LEN];
    u_char      uuid[NGX_HTTP_KAFKA_PRODUCER_UUID_LEN];

    s.data = data;
    s.len = size;

    rc = ngx_http_kafka_producer_fuzz_parse_id(&s, id);

    /* 8-4-4-4-12 hex digits, either case */

    ref = (size == NGX_HTTP_KAFKA_PRODUCER_UUID_LEN) ? NGX_OK : NGX_ERROR;

    for (i = 0; ref == NGX_OK && i < size; i++) {
        c = data[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                ref = NGX_ERROR;
            }

            continue;
        }

        if (ngx_hextoi(&c, 1) == NGX_ERROR) {
            ref = NGX_ERROR;
        }
    }

    ngx_http_kafka_producer_fuzz_check((rc == NGX_OK) == (ref == NGX_OK),
                                       "the reference UUID rule agrees");

    if (rc != NGX_OK) {
        return;
    }

    p = ngx_http_kafka_producer_status_format_id(uuid, id);

    ngx_http_kafka_producer_fuzz_check(p == uuid + sizeof(uuid),
                                       "a UUID written");

    for (i = 0; i < sizeof(uuid); i++) {
        ngx_http_kafka_producer_fuzz_check(uuid[i] == ngx_tolower(data[i]),
                                           "the requestId given back");
    }
}


/* 3: the JSON writer */

static void
ngx_http_kafka_producer_fuzz_writer(ngx_pool_t *pool, u_char *data,
    size_t size)
{
    u_char                              *last;
    size_t                               len;
    int64_t                              num;
    ngx_str_t                            json, inner;
    ngx_uint_t                           i, n, t, valid, nest;
    ngx_http_kafka_producer_json_t       f[NGX_HTTP_KAFKA_PRODUCER_FUZZ_N];
    ngx_http_kafka_producer_json_t       g[2];
    ngx_http_kafka_producer_fuzz_obj_t   obj, outer;

    last = data + size;

    if (data == last) {
        return;
    }

    nest = *data++ & 1;
    valid = 1;

    for (n = 0; n < NGX_HTTP_KAFKA_PRODUCER_FUZZ_N && data < last; n++) {
        t = *data++;

        f[n].name = ngx_http_kafka_producer_fuzz_members[
                        (t >> 2) % NGX_HTTP_KAFKA_PRODUCER_FUZZ_N];

        switch (t & 3) {

        case 0:
        case 3:
            len = (data < last) ? *data++ : 0;
            len = ngx_min(len, (size_t) (last - data));

            f[n].type = NGX_HTTP_KAFKA_PRODUCER_JSON_STRING;
            f[n].str.data = data;
            f[n].str.len = len;
            data += len;

            /* the module's validator must agree with RFC 3629 */

            i = (ngx_http_kafka_producer_utf8_valid(f[n].str.data, len)
                 == NGX_OK);

            ngx_http_kafka_producer_fuzz_check(
                 i == (ngx_http_kafka_producer_fuzz_utf8(f[n].str.data, len)
                       == NGX_OK),
                 "ngx_http_kafka_producer_utf8_valid() agrees with RFC 3629");

            valid &= i;
            break;

        case 1:
            num = 0;

            for (i = 0; i < 8 && data < last; i++) {
                num = (int64_t) (((uint64_t) num << 8) | *data++);
            }

            /*
             * nginx's own "%L" negates INT64_MIN (undefined behaviour in
             * ngx_vslprintf()); the module writes no such number (offsets,
             * partitions, statuses, counters), so it is not fuzzed
             */

            if (num == INT64_MIN) {
                num++;
            }

            f[n].type = NGX_HTTP_KAFKA_PRODUCER_JSON_NUMBER;
            f[n].num = num;
            break;

        default: /* 2 */
            f[n].type = NGX_HTTP_KAFKA_PRODUCER_JSON_NULL;
        }
    }

    ngx_memzero(&obj, sizeof(ngx_http_kafka_producer_fuzz_obj_t));
    obj.f = f;
    obj.n = n;

    ngx_http_kafka_producer_fuzz_write(pool, &obj, &json);

    if (!valid) {
        /* the module never writes a string it did not validate */
        return;
    }

    ngx_http_kafka_producer_fuzz_json(&obj, &json);

    if (!nest) {
        return;
    }

    /* nested, as the health detail writes its objects */

    if (ngx_http_kafka_producer_json_object(pool, f, n, &inner) != NGX_OK) {
        abort();
    }

    g[0].name = "status";
    g[0].type = NGX_HTTP_KAFKA_PRODUCER_JSON_NUMBER;
    g[0].num = 200;
    g[1].name = "detail";
    g[1].type = NGX_HTTP_KAFKA_PRODUCER_JSON_RAW;
    g[1].str = inner;

    ngx_memzero(&outer, sizeof(ngx_http_kafka_producer_fuzz_obj_t));
    outer.f = g;
    outer.n = 2;
    outer.sub[1] = &obj;

    ngx_http_kafka_producer_fuzz_write(pool, &outer, &json);
    ngx_http_kafka_producer_fuzz_json(&outer, &json);
}


/* a REST Proxy v2 body: the parser's refusals and what it accepts */

#define NGX_HTTP_KAFKA_PRODUCER_FUZZ_RECORDS  8

static void
ngx_http_kafka_producer_fuzz_rest(ngx_pool_t *pool, ngx_uint_t format,
    u_char *data, size_t size)
{
    ngx_int_t                               rc;
    ngx_str_t                               body;
    ngx_uint_t                              i, k;
    ngx_array_t                            *records;
    ngx_keyval_t                           *h;
    ngx_http_kafka_producer_rest_error_t    err;
    ngx_http_kafka_producer_rest_record_t  *rec;

    body.data = data;
    body.len = size;
    records = NULL;

    rc = ngx_http_kafka_producer_rest_parse(pool, &body, format,
                                    NGX_HTTP_KAFKA_PRODUCER_FUZZ_RECORDS,
                                    &records, &err);

    ngx_http_kafka_producer_fuzz_check(rc == NGX_OK || rc == NGX_DECLINED,
                                       "the parser ran out of memory");

    if (rc == NGX_DECLINED) {
        ngx_http_kafka_producer_fuzz_check(
            (err.status == 400 && err.code == 400)
            || (err.status == 422
                && (err.code == 422
                    || err.code == NGX_HTTP_KAFKA_PRODUCER_REST_CONVERSION)),
            "a refusal is 400/400, 422/422 or 422/42203");
        ngx_http_kafka_producer_fuzz_check(err.detail.len > 0,
                                           "a refusal has a reason");
        ngx_http_kafka_producer_fuzz_check(
            ngx_http_kafka_producer_fuzz_utf8(err.detail.data,
                                              err.detail.len) == NGX_OK,
            "the reason is UTF-8");
        return;
    }

    ngx_http_kafka_producer_fuzz_check(records != NULL
                      && records->nelts >= 1
                      && records->nelts
                         <= NGX_HTTP_KAFKA_PRODUCER_FUZZ_RECORDS,
                      "1 to max_records records");

    rec = records->elts;

    for (i = 0; i < records->nelts; i++) {
        ngx_http_kafka_producer_fuzz_check(
            rec[i].key.len <= NGX_HTTP_KAFKA_PRODUCER_RECORD_KEY_MAX,
            "the key limit");
        ngx_http_kafka_producer_fuzz_check(
            rec[i].partition == RD_KAFKA_PARTITION_UA
            || rec[i].partition >= 0, "a partition in range");

        if (rec[i].headers) {
            h = rec[i].headers->elts;

            for (k = 0; k < rec[i].headers->nelts; k++) {
                ngx_http_kafka_producer_fuzz_check(h[k].key.len >= 1
                    && h[k].key.len
                       <= NGX_HTTP_KAFKA_PRODUCER_HEADER_NAME_MAX
                    && ngx_http_kafka_producer_fuzz_utf8(h[k].key.data,
                                                         h[k].key.len)
                       == NGX_OK,
                    "a header name of 1 to 255 bytes of UTF-8");
            }
        }

        if (format == NGX_HTTP_KAFKA_PRODUCER_REST_BINARY) {
            continue;
        }

        ngx_http_kafka_producer_fuzz_check(
            ngx_http_kafka_producer_fuzz_utf8(rec[i].key.data,
                                              rec[i].key.len) == NGX_OK
            && ngx_http_kafka_producer_fuzz_utf8(rec[i].value.data,
                                                 rec[i].value.len) == NGX_OK,
            "a text or json key and value are UTF-8");

        if (format == NGX_HTTP_KAFKA_PRODUCER_REST_JSON) {
            if (rec[i].key.data) {
                ngx_http_kafka_producer_fuzz_rest_again(pool, &rec[i].key);
            }

            if (rec[i].value.data) {
                ngx_http_kafka_producer_fuzz_rest_again(pool, &rec[i].value);
            }
        }
    }
}


/* JSON text the parser wrote parses again to itself */

static void
ngx_http_kafka_producer_fuzz_rest_again(ngx_pool_t *pool, ngx_str_t *data)
{
    u_char                                 *p;
    ngx_int_t                               rc;
    ngx_str_t                               body;
    ngx_array_t                            *records;
    ngx_http_kafka_producer_rest_error_t    err;
    ngx_http_kafka_producer_rest_record_t  *rec;

    static char  head[] = "{\"records\":[{\"value\":";

    body.data = ngx_pnalloc(pool, sizeof(head) - 1 + data->len + 3);
    if (body.data == NULL) {
        abort();
    }

    p = ngx_cpymem(body.data, head, sizeof(head) - 1);
    p = ngx_cpymem(p, data->data, data->len);
    p = ngx_cpymem(p, "}]}", 3);
    body.len = p - body.data;

    rc = ngx_http_kafka_producer_rest_parse(pool, &body,
                                    NGX_HTTP_KAFKA_PRODUCER_REST_JSON, 1,
                                    &records, &err);

    ngx_http_kafka_producer_fuzz_check(rc == NGX_OK,
                                       "written JSON parses again");

    rec = records->elts;

    ngx_http_kafka_producer_fuzz_check(rec[0].value.len == data->len
        && ngx_memcmp(rec[0].value.data, data->data, data->len) == 0,
        "written JSON is written again the same");
}
