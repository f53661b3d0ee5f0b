
/*
 * ngx_http_kafka_producer_module: async status records in shared memory.
 *
 * The zone holds one record per async send, in a chunk of its slab pool.
 * A requestId carries where its record is: its first 4 bytes are the
 * record's slot (its offset in the pool, in NGX_HTTP_KAFKA_PRODUCER_SLOT
 * units), the rest is random (version 4 bits aside).  A lookup, from the
 * delivery report or a status GET, goes straight to that slot and checks
 * that a record starts there (the "records" bitmap, set only by us) and
 * that it has the whole id: no tree, no walk, the same cost whatever the
 * zone's size.  A record never moves while it exists, so the slot stays
 * valid until the record is freed; a freed slot that a new record reuses
 * has another id, and the old requestId answers 404.
 *
 * Records wait in one of two queues: "pending" until their delivery
 * report, then "done", where they expire after the zone's ttl and are
 * the only ones ever evicted when memory runs short: a PENDING record is
 * never dropped to make room, the new async send gets a 503 instead.
 */


#include "ngx_http_kafka_producer_status.h"
#include "ngx_http_kafka_producer_json.h"

#include <sys/random.h>


#define NGX_HTTP_KAFKA_PRODUCER_PENDING  0
#define NGX_HTTP_KAFKA_PRODUCER_OK       1
#define NGX_HTTP_KAFKA_PRODUCER_ERROR    2

/* a PENDING record older than this past the delivery timeout is stale */
#define NGX_HTTP_KAFKA_PRODUCER_GRACE    30

/*
 * every record is allocated at least 1 << SLOT_SHIFT bytes: the slab
 * allocator puts a chunk of 2^n bytes at a multiple of 2^n in the pool
 * (whose start is page aligned), so a record starts at a multiple of the
 * slot size, and offset >> SLOT_SHIFT names it
 */
#define NGX_HTTP_KAFKA_PRODUCER_SLOT_SHIFT  7
#define NGX_HTTP_KAFKA_PRODUCER_SLOT                                         \
    ((size_t) 1 << NGX_HTTP_KAFKA_PRODUCER_SLOT_SHIFT)

/* the slot is 4 bytes of the requestId: the largest zone it can address */
#define NGX_HTTP_KAFKA_PRODUCER_ZONE_MAX                                     \
    ((uint64_t) 1 << (32 + NGX_HTTP_KAFKA_PRODUCER_SLOT_SHIFT))


typedef struct {
    ngx_queue_t                       queue;
    u_char                            id[NGX_HTTP_KAFKA_PRODUCER_ID_LEN];
    u_char                            state;
    u_char                            mode;
    u_char                            reason;
    u_char                            partition_given;
    u_char                            persisted; /* RD_KAFKA_MSG_STATUS_* */
    ngx_pid_t                         pid;
    int32_t                           partition;
    int32_t                           err;
    int64_t                           offset;
    time_t                            created;
    time_t                            expires;   /* PENDING until then */
    time_t                            finished;
    u_short                           event_id_len;
    u_short                           key_len;
    u_short                           topic_len;
    u_char                            data[1];
} ngx_http_kafka_producer_status_node_t;


typedef struct {
    ngx_queue_t                       pending;
    ngx_queue_t                       done;

    /*
     * one bit per slot of the pool, set while a record starts there: a
     * requestId that names any other slot (a forged one pointing into a
     * record's data, or at a chunk that is free) is refused before the
     * memory there is read as a record
     */
    u_char                           *records;

    /*
     * PENDING records per slab page: a page that holds one cannot be
     * freed, so evicting finished records in it cannot make room for a
     * record of another size class
     */
    u_short                          *pending_pages;
} ngx_http_kafka_producer_status_shctx_t;


/* how many finished records one allocation may look at, then evict */
#define NGX_HTTP_KAFKA_PRODUCER_EVICT_SCAN  256


typedef struct {
    ngx_http_kafka_producer_status_shctx_t  *sh;
    ngx_slab_pool_t                         *shpool;
    time_t                                   ttl;
    time_t                                   deadline;
} ngx_http_kafka_producer_status_ctx_t;


static ngx_int_t ngx_http_kafka_producer_status_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static ngx_int_t ngx_http_kafka_producer_status_resized(
    ngx_shm_zone_t *shm_zone);
static ngx_http_kafka_producer_status_node_t *
    ngx_http_kafka_producer_status_lookup(
    ngx_http_kafka_producer_status_ctx_t *ctx, u_char *id);
static ngx_uint_t ngx_http_kafka_producer_status_same_id(u_char *a,
    u_char *b);
static void ngx_http_kafka_producer_status_mark(
    ngx_http_kafka_producer_status_ctx_t *ctx,
    ngx_http_kafka_producer_status_node_t *rec, ngx_uint_t on);
static void ngx_http_kafka_producer_status_expire(
    ngx_http_kafka_producer_status_ctx_t *ctx, time_t now);
static void ngx_http_kafka_producer_status_set(
    ngx_http_kafka_producer_status_ctx_t *ctx,
    ngx_http_kafka_producer_status_node_t *rec,
    ngx_http_kafka_producer_event_t *ev, time_t now);
static void ngx_http_kafka_producer_status_free(
    ngx_http_kafka_producer_status_ctx_t *ctx,
    ngx_http_kafka_producer_status_node_t *rec);
static ngx_http_kafka_producer_status_node_t *
    ngx_http_kafka_producer_status_evict(
    ngx_http_kafka_producer_status_ctx_t *ctx, size_t size);
static ngx_uint_t ngx_http_kafka_producer_status_shift(
    ngx_http_kafka_producer_status_ctx_t *ctx, size_t size);
static u_short *ngx_http_kafka_producer_status_page(
    ngx_http_kafka_producer_status_ctx_t *ctx,
    ngx_http_kafka_producer_status_node_t *rec);
static size_t ngx_http_kafka_producer_status_size(
    ngx_http_kafka_producer_status_node_t *rec);
static ngx_int_t ngx_http_kafka_producer_status_parse_id(ngx_str_t *s,
    u_char *id);
static ngx_int_t ngx_http_kafka_producer_status_error(ngx_pool_t *pool,
    ngx_http_kafka_producer_status_node_t *rec, ngx_str_t *error);


static char *ngx_http_kafka_producer_states[] = {
    "PENDING", "OK", "ERROR"
};

static ngx_str_t  ngx_http_kafka_producer_status_allow =
    ngx_string("GET, HEAD");


char *
ngx_http_kafka_producer_status_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_kafka_producer_main_conf_t *kmcf = conf;

    time_t                                 ttl;
    ngx_http_kafka_producer_status_ctx_t  *ctx;

    if (kmcf->shm_zone) {
        return "is duplicate";
    }

    ttl = 600;

    if (ngx_http_kafka_producer_zone_add(cf, NGX_HTTP_KAFKA_PRODUCER_ZONE_MAX,
                                         &ttl, &kmcf->shm_zone)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_kafka_producer_status_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    ctx->ttl = ttl;

    kmcf->shm_zone->init = ngx_http_kafka_producer_status_init_zone;
    kmcf->shm_zone->data = ctx;

    return NGX_CONF_OK;
}


/*
 * The arguments of a zone directive, "NAME:SIZE [ttl=TIME]", as nginx's own
 * zones take them: adds the shared memory zone (at least 8 pages, less
 * than "max" bytes unless "max" is 0) and sets "*ttl" (seconds, left as
 * given when the directive has none).  "*zone" is the new zone, whose
 * "data" the caller sets.  NGX_CONF_OK or NGX_CONF_ERROR after an "emerg".
 */

char *
ngx_http_kafka_producer_zone_add(ngx_conf_t *cf, uint64_t max, time_t *ttl,
    ngx_shm_zone_t **zone)
{
    u_char     *p;
    time_t      t;
    ssize_t     size;
    ngx_str_t  *value, name, s;
    ngx_uint_t  i;

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", expected NAME:SIZE",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small, the minimum is %uzk",
                           &value[1], 8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    if (max && (uint64_t) size >= max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too large, the maximum is %uLg",
                           &value[1], (uint64_t) (max >> 30) - 1);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {

            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            t = ngx_parse_time(&s, 1);

            if (t == (time_t) NGX_ERROR || t == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid ttl \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            *ttl = t;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    *zone = ngx_shared_memory_add(cf, &name, size,
                                  &ngx_http_kafka_producer_module);
    if (*zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if ((*zone)->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


void
ngx_http_kafka_producer_status_init_conf(ngx_shm_zone_t *shm_zone,
    ngx_msec_t delivery_timeout)
{
    ngx_http_kafka_producer_status_ctx_t  *ctx;

    ctx = shm_zone->data;

    ctx->deadline = delivery_timeout / 1000 + NGX_HTTP_KAFKA_PRODUCER_GRACE;
}


static ngx_int_t
ngx_http_kafka_producer_status_init_zone(ngx_shm_zone_t *shm_zone,
    void *data)
{
    ngx_http_kafka_producer_status_ctx_t  *octx = data;

    size_t                                 len;
    ngx_http_kafka_producer_status_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;

        return NGX_OK;
    }

    /*
     * A reload that changes the size makes nginx start a new, empty zone,
     * while the old workers keep delivering into the old one: every
     * earlier requestId would be lost.  Refuse it, as nginx refuses a
     * zone whose key changes; a restart resizes the zone.
     */

    if (ngx_http_kafka_producer_status_resized(shm_zone) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;

        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool,
                             sizeof(ngx_http_kafka_producer_status_shctx_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_queue_init(&ctx->sh->pending);
    ngx_queue_init(&ctx->sh->done);

    len = (((ctx->shpool->end - ctx->shpool->start)
            >> NGX_HTTP_KAFKA_PRODUCER_SLOT_SHIFT) + 7) / 8;

    ctx->sh->records = ngx_slab_calloc(ctx->shpool, len);
    if (ctx->sh->records == NULL) {
        return NGX_ERROR;
    }

    len = ((ctx->shpool->end - ctx->shpool->start) >> ngx_pagesize_shift)
          * sizeof(u_short);

    ctx->sh->pending_pages = ngx_slab_calloc(ctx->shpool, len);
    if (ctx->sh->pending_pages == NULL) {
        return NGX_ERROR;
    }

    len = sizeof(" in kafka_producer_status_zone \"\"")
          + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx,
                " in kafka_producer_status_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is an expected condition, answered with a 503 */
    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kafka_producer_status_resized(ngx_shm_zone_t *shm_zone)
{
    ngx_uint_t        i;
    ngx_shm_zone_t   *ozone;
    ngx_list_part_t  *part;

    /* during a reload, ngx_cycle is still the running cycle */

    part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
    ozone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            ozone = part->elts;
            i = 0;
        }

        if (ozone[i].tag != shm_zone->tag
            || ozone[i].shm.name.len != shm_zone->shm.name.len
            || ngx_strncmp(ozone[i].shm.name.data, shm_zone->shm.name.data,
                           shm_zone->shm.name.len)
               != 0)
        {
            continue;
        }

        if (ozone[i].shm.size == shm_zone->shm.size) {
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "kafka_producer_status_zone \"%V\" cannot change its "
                      "size from %uz to %uz on reload: its records would be "
                      "lost; keep the size, or restart nginx to resize it",
                      &shm_zone->shm.name, ozone[i].shm.size,
                      shm_zone->shm.size);

        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The record "id" names, or NULL: the slot in its first 4 bytes must be in
 * the pool and hold the start of a record, and that record must have the
 * whole id.  Reads the zone: the lock is held.
 */

static ngx_http_kafka_producer_status_node_t *
ngx_http_kafka_producer_status_lookup(
    ngx_http_kafka_producer_status_ctx_t *ctx, u_char *id)
{
    size_t                                  slot;
    ngx_http_kafka_producer_status_node_t  *rec;

    slot = ((size_t) id[0] << 24) | ((size_t) id[1] << 16)
           | ((size_t) id[2] << 8) | id[3];

    if (slot >= (size_t) (ctx->shpool->end - ctx->shpool->start)
                >> NGX_HTTP_KAFKA_PRODUCER_SLOT_SHIFT)
    {
        return NULL;
    }

    if (!(ctx->sh->records[slot >> 3] & (1 << (slot & 7)))) {
        return NULL;
    }

    rec = (ngx_http_kafka_producer_status_node_t *)
              (ctx->shpool->start
               + (slot << NGX_HTTP_KAFKA_PRODUCER_SLOT_SHIFT));

    if (!ngx_http_kafka_producer_status_same_id(rec->id, id)) {
        return NULL;
    }

    return rec;
}


/*
 * 1 if the ids are equal; in a time that does not depend on where they
 * differ, so that answer times tell nothing of a record's random bytes
 */

static ngx_uint_t
ngx_http_kafka_producer_status_same_id(u_char *a, u_char *b)
{
    uint64_t  a0, a1, b0, b1;

    /* two 8-byte loads each: memcpy() of a constant 8 bytes is one */

    ngx_memcpy(&a0, a, 8);
    ngx_memcpy(&a1, a + 8, 8);
    ngx_memcpy(&b0, b, 8);
    ngx_memcpy(&b1, b + 8, 8);

    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}


/* sets ("on") or clears the bit of the slot where "rec" starts */

static void
ngx_http_kafka_producer_status_mark(ngx_http_kafka_producer_status_ctx_t *ctx,
    ngx_http_kafka_producer_status_node_t *rec, ngx_uint_t on)
{
    size_t  slot;

    slot = ((u_char *) rec - ctx->shpool->start)
           >> NGX_HTTP_KAFKA_PRODUCER_SLOT_SHIFT;

    if (on) {
        ctx->sh->records[slot >> 3] |= (u_char) (1 << (slot & 7));

    } else {
        ctx->sh->records[slot >> 3] &= (u_char) ~(1 << (slot & 7));
    }
}


void
ngx_http_kafka_producer_status_new_id(u_char *id)
{
    static u_char   pool[4096];
    static size_t   left;

    ssize_t  n;

    if (left < NGX_HTTP_KAFKA_PRODUCER_ID_LEN) {
        n = getrandom(pool, sizeof(pool), 0);

        if (n < (ssize_t) NGX_HTTP_KAFKA_PRODUCER_ID_LEN) {
            /* cannot happen with the urandom source; never reuse bytes */
            for (n = 0; n < (ssize_t) sizeof(pool); n++) {
                pool[n] = (u_char) ngx_random();
            }
        }

        left = sizeof(pool);
    }

    left -= NGX_HTTP_KAFKA_PRODUCER_ID_LEN;
    ngx_memcpy(id, pool + left, NGX_HTTP_KAFKA_PRODUCER_ID_LEN);
    ngx_memzero(pool + left, NGX_HTTP_KAFKA_PRODUCER_ID_LEN);

    /* RFC 4122 version 4, variant 1 */
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
}


u_char *
ngx_http_kafka_producer_status_format_id(u_char *p, u_char *id)
{
    /* 8-4-4-4-12 hex digits, RFC 4122 section 3 */

    p = ngx_hex_dump(p, id, 4);
    *p++ = '-';
    p = ngx_hex_dump(p, id + 4, 2);
    *p++ = '-';
    p = ngx_hex_dump(p, id + 6, 2);
    *p++ = '-';
    p = ngx_hex_dump(p, id + 8, 2);
    *p++ = '-';

    return ngx_hex_dump(p, id + 10, NGX_HTTP_KAFKA_PRODUCER_ID_LEN - 10);
}


static ngx_int_t
ngx_http_kafka_producer_status_parse_id(ngx_str_t *s, u_char *id)
{
    u_char      *p;
    ngx_int_t    n;
    ngx_uint_t   i;

    if (s->len != NGX_HTTP_KAFKA_PRODUCER_UUID_LEN) {
        return NGX_ERROR;
    }

    p = s->data;

    for (i = 0; i < NGX_HTTP_KAFKA_PRODUCER_ID_LEN; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            if (*p++ != '-') {
                return NGX_ERROR;
            }
        }

        /* two hex digits, either case; NGX_ERROR for anything else */
        n = ngx_hextoi(p, 2);
        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        id[i] = (u_char) n;
        p += 2;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_kafka_producer_status_add(ngx_shm_zone_t *shm_zone, u_char *id,
    ngx_http_kafka_producer_event_t *ev, ngx_log_t *log)
{
    u_char                                 *p;
    size_t                                  size, slot;
    time_t                                  now;
    ngx_http_kafka_producer_status_node_t  *rec;
    ngx_http_kafka_producer_status_ctx_t   *ctx;

    ctx = shm_zone->data;

    size = offsetof(ngx_http_kafka_producer_status_node_t, data)
           + ev->event_id.len + ev->key.len + ev->topic.len;

    /* at least a slot: the record then starts at a slot boundary */
    size = ngx_max(size, NGX_HTTP_KAFKA_PRODUCER_SLOT);

    /* the random part, before the lock is taken */
    ngx_http_kafka_producer_status_new_id(id);

    now = ngx_time();

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ngx_http_kafka_producer_status_expire(ctx, now);

    rec = ngx_slab_alloc_locked(ctx->shpool, size);

    if (rec == NULL) {
        rec = ngx_http_kafka_producer_status_evict(ctx, size);

        if (rec == NULL) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);

            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "kafka_producer_status_zone \"%V\" is full of "
                          "pending records", &shm_zone->shm.name);
            return NGX_BUSY;
        }
    }

    slot = ((u_char *) rec - ctx->shpool->start)
           >> NGX_HTTP_KAFKA_PRODUCER_SLOT_SHIFT;

    id[0] = (u_char) (slot >> 24);
    id[1] = (u_char) (slot >> 16);
    id[2] = (u_char) (slot >> 8);
    id[3] = (u_char) slot;

    ngx_memcpy(rec->id, id, NGX_HTTP_KAFKA_PRODUCER_ID_LEN);

    rec->state = NGX_HTTP_KAFKA_PRODUCER_PENDING;
    rec->mode = (u_char) ev->mode;
    rec->reason = 0;
    rec->partition_given = (ev->partition != RD_KAFKA_PARTITION_UA);
    rec->persisted = RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
    rec->pid = ngx_pid;
    rec->partition = ev->partition;
    rec->err = 0;
    rec->offset = -1;
    rec->created = now;
    rec->expires = now + ctx->deadline;
    rec->finished = 0;
    rec->event_id_len = (u_short) ev->event_id.len;
    rec->key_len = (u_short) ev->key.len;
    rec->topic_len = (u_short) ev->topic.len;

    /* a pass record has no eventId, may have no key (data NULL) */

    p = rec->data;

    if (ev->event_id.len) {
        p = ngx_cpymem(p, ev->event_id.data, ev->event_id.len);
    }

    if (ev->key.len) {
        p = ngx_cpymem(p, ev->key.data, ev->key.len);
    }

    ngx_memcpy(p, ev->topic.data, ev->topic.len);

    ngx_http_kafka_producer_status_mark(ctx, rec, 1);
    ngx_queue_insert_head(&ctx->sh->pending, &rec->queue);
    (*ngx_http_kafka_producer_status_page(ctx, rec))++;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


static void
ngx_http_kafka_producer_status_expire(
    ngx_http_kafka_producer_status_ctx_t *ctx, time_t now)
{
    ngx_uint_t                         n;
    ngx_queue_t                       *q;
    ngx_http_kafka_producer_event_t    ev;
    ngx_http_kafka_producer_status_node_t  *rec;

    /*
     * a few at a time, as limit_req does: the lock is held; a record's
     * deadline was fixed when it was created, by the configuration of
     * the worker that accepted it
     */

    for (n = 0; n < 8 && !ngx_queue_empty(&ctx->sh->done); n++) {
        q = ngx_queue_last(&ctx->sh->done);
        rec = ngx_queue_data(q, ngx_http_kafka_producer_status_node_t, queue);

        if (now - rec->finished < ctx->ttl) {
            break;
        }

        ngx_http_kafka_producer_status_free(ctx, rec);
    }

    ngx_memzero(&ev, sizeof(ngx_http_kafka_producer_event_t));
    ev.partition = RD_KAFKA_PARTITION_UA;
    ev.offset = -1;
    ev.err = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
    ev.reason = NGX_HTTP_KAFKA_PRODUCER_REASON_NO_REPORT;
    ev.persisted = RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;

    for (n = 0; n < 8 && !ngx_queue_empty(&ctx->sh->pending); n++) {
        q = ngx_queue_last(&ctx->sh->pending);
        rec = ngx_queue_data(q, ngx_http_kafka_producer_status_node_t, queue);

        if (now < rec->expires) {
            break;
        }

        ngx_http_kafka_producer_status_set(ctx, rec, &ev, now);
    }
}


static void
ngx_http_kafka_producer_status_set(ngx_http_kafka_producer_status_ctx_t *ctx,
    ngx_http_kafka_producer_status_node_t *rec,
    ngx_http_kafka_producer_event_t *ev, time_t now)
{
    if (ev->err == RD_KAFKA_RESP_ERR_NO_ERROR && ev->reason == 0) {
        rec->state = NGX_HTTP_KAFKA_PRODUCER_OK;
        rec->partition = ev->partition;
        rec->offset = ev->offset;

    } else {
        rec->state = NGX_HTTP_KAFKA_PRODUCER_ERROR;
        rec->err = ev->err;
        rec->reason = (u_char) ev->reason;
        rec->persisted = (u_char) ev->persisted;
    }

    rec->finished = now;
    (*ngx_http_kafka_producer_status_page(ctx, rec))--;

    ngx_queue_remove(&rec->queue);
    ngx_queue_insert_head(&ctx->sh->done, &rec->queue);
}


static void
ngx_http_kafka_producer_status_free(ngx_http_kafka_producer_status_ctx_t *ctx,
    ngx_http_kafka_producer_status_node_t *rec)
{
    if (rec->state == NGX_HTTP_KAFKA_PRODUCER_PENDING) {
        (*ngx_http_kafka_producer_status_page(ctx, rec))--;
    }

    ngx_http_kafka_producer_status_mark(ctx, rec, 0);
    ngx_queue_remove(&rec->queue);
    ngx_slab_free_locked(ctx->shpool, rec);
}


/*
 * Makes room for a record of "size" bytes by evicting finished records,
 * never a PENDING one, looking at the NGX_HTTP_KAFKA_PRODUCER_EVICT_SCAN
 * oldest at most: first one of the same slab size class (its chunk is
 * the room); else the oldest one in a page without a PENDING record, and
 * every other record in that page with it, so that the page goes back to
 * the pool and any size class can have it.  (Freeing records one by one
 * would rarely free a page: its other chunks were allocated at other
 * times, and a zone whose pages all went to one size class would refuse
 * records of another while it holds nothing but finished records.)  When
 * neither can help, nothing is evicted.  Returns the new chunk or NULL;
 * the lock is held.
 */

static ngx_http_kafka_producer_status_node_t *
ngx_http_kafka_producer_status_evict(ngx_http_kafka_producer_status_ctx_t *ctx,
    size_t size)
{
    u_char                                 *page;
    size_t                                  slot, last;
    ngx_uint_t                              n, shift;
    ngx_queue_t                            *q;
    ngx_http_kafka_producer_status_node_t  *rec;

    shift = ngx_http_kafka_producer_status_shift(ctx, size);

    n = 0;

    for (q = ngx_queue_last(&ctx->sh->done);
         q != ngx_queue_sentinel(&ctx->sh->done)
         && n < NGX_HTTP_KAFKA_PRODUCER_EVICT_SCAN;
         q = ngx_queue_prev(q), n++)
    {
        rec = ngx_queue_data(q, ngx_http_kafka_producer_status_node_t, queue);

        if (ngx_http_kafka_producer_status_shift(ctx,
                                    ngx_http_kafka_producer_status_size(rec))
            == shift)
        {
            ngx_http_kafka_producer_status_free(ctx, rec);
            return ngx_slab_alloc_locked(ctx->shpool, size);
        }
    }

    n = 0;

    for (q = ngx_queue_last(&ctx->sh->done);
         q != ngx_queue_sentinel(&ctx->sh->done)
         && n < NGX_HTTP_KAFKA_PRODUCER_EVICT_SCAN;
         q = ngx_queue_prev(q), n++)
    {
        rec = ngx_queue_data(q, ngx_http_kafka_producer_status_node_t, queue);

        if (*ngx_http_kafka_producer_status_page(ctx, rec)) {
            continue;
        }

        /*
         * no PENDING record in this page: every record that starts in
         * it is finished (records never span pages, the largest is below
         * ngx_slab_max_size); at most ngx_pagesize / SLOT of them
         */

        page = ctx->shpool->start
               + ((((u_char *) rec - ctx->shpool->start)
                   >> ngx_pagesize_shift) << ngx_pagesize_shift);

        slot = (page - ctx->shpool->start)
               >> NGX_HTTP_KAFKA_PRODUCER_SLOT_SHIFT;
        last = slot + (ngx_pagesize >> NGX_HTTP_KAFKA_PRODUCER_SLOT_SHIFT);

        for ( /* void */ ; slot < last; slot++) {
            if (ctx->sh->records[slot >> 3] & (1 << (slot & 7))) {
                ngx_http_kafka_producer_status_free(ctx,
                         (ngx_http_kafka_producer_status_node_t *)
                         (ctx->shpool->start
                          + (slot << NGX_HTTP_KAFKA_PRODUCER_SLOT_SHIFT)));
            }
        }

        return ngx_slab_alloc_locked(ctx->shpool, size);
    }

    return NULL;
}


/* the slab size class of an allocation, as ngx_slab_alloc_locked() does */

static ngx_uint_t
ngx_http_kafka_producer_status_shift(
    ngx_http_kafka_producer_status_ctx_t *ctx, size_t size)
{
    size_t      s;
    ngx_uint_t  shift;

    if (size <= ctx->shpool->min_size) {
        return ctx->shpool->min_shift;
    }

    shift = 1;

    for (s = size - 1; s >>= 1; shift++) {
        /* void */
    }

    return shift;
}


static u_short *
ngx_http_kafka_producer_status_page(ngx_http_kafka_producer_status_ctx_t *ctx,
    ngx_http_kafka_producer_status_node_t *rec)
{
    return &ctx->sh->pending_pages[((u_char *) rec - ctx->shpool->start)
                                   >> ngx_pagesize_shift];
}


/* the size a record was allocated with, see status_add() */

static size_t
ngx_http_kafka_producer_status_size(ngx_http_kafka_producer_status_node_t *rec)
{
    size_t  size;

    size = offsetof(ngx_http_kafka_producer_status_node_t, data)
           + rec->event_id_len + rec->key_len + rec->topic_len;

    return ngx_max(size, NGX_HTTP_KAFKA_PRODUCER_SLOT);
}


void
ngx_http_kafka_producer_status_finish(u_char *id,
    ngx_http_kafka_producer_event_t *ev)
{
    ngx_uint_t                              state;
    ngx_http_kafka_producer_status_node_t       *rec;
    ngx_http_kafka_producer_status_ctx_t   *ctx;
    ngx_http_kafka_producer_main_conf_t    *kmcf;

    kmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_kafka_producer_module);

    ctx = kmcf->shm_zone->data;

    /* what the record holds is read under the lock only */

    ngx_shmtx_lock(&ctx->shpool->mutex);

    rec = ngx_http_kafka_producer_status_lookup(ctx, id);

    state = NGX_HTTP_KAFKA_PRODUCER_PENDING;

    if (rec) {
        state = rec->state;

        if (state == NGX_HTTP_KAFKA_PRODUCER_PENDING) {
            ngx_http_kafka_producer_status_set(ctx, rec, ev, ngx_time());

        } else if (ev->late
                   && state == NGX_HTTP_KAFKA_PRODUCER_ERROR
                   && rec->reason == NGX_HTTP_KAFKA_PRODUCER_REASON_NO_REPORT)
        {
            /* librdkafka's report after "no report": what really happened */

            if (ev->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                rec->state = NGX_HTTP_KAFKA_PRODUCER_OK;
                rec->partition = ev->partition;
                rec->offset = ev->offset;

            } else {
                rec->err = ev->err;
                rec->persisted = (u_char) ev->persisted;
            }

            rec->reason = NGX_HTTP_KAFKA_PRODUCER_REASON_NONE;
            state = NGX_HTTP_KAFKA_PRODUCER_PENDING;
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    if (rec && state != NGX_HTTP_KAFKA_PRODUCER_PENDING) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "kafka_producer: late delivery report (%s) for a "
                      "record already marked %s",
                      ev->err ? rd_kafka_err2name(ev->err) : "delivered",
                      ngx_http_kafka_producer_states[state]);
    }
}


void
ngx_http_kafka_producer_status_delete(u_char *id)
{
    ngx_http_kafka_producer_status_node_t       *rec;
    ngx_http_kafka_producer_status_ctx_t   *ctx;
    ngx_http_kafka_producer_main_conf_t    *kmcf;

    kmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_kafka_producer_module);

    ctx = kmcf->shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    rec = ngx_http_kafka_producer_status_lookup(ctx, id);

    if (rec) {
        ngx_http_kafka_producer_status_free(ctx, rec);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


ngx_int_t
ngx_http_kafka_producer_status_handler(ngx_http_request_t *r)
{
    u_char                                *p, *data, uuid[36];
    time_t                                 now;
    ngx_int_t                              rc;
    ngx_str_t                              arg, id_str, state, error;
    ngx_http_kafka_producer_event_t        ev;
    ngx_http_kafka_producer_status_node_t      *rec, copy;
    ngx_http_kafka_producer_main_conf_t   *kmcf;
    ngx_http_kafka_producer_status_ctx_t  *ctx;
    ngx_http_kafka_producer_json_t         f[10], *m;
    u_char                                 id[NGX_HTTP_KAFKA_PRODUCER_ID_LEN];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_kafka_producer_not_allowed(r,
                                        &ngx_http_kafka_producer_status_allow);
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_arg(r, (u_char *) "requestId", 9, &arg) != NGX_OK
        || arg.len == 0)
    {
        return ngx_http_kafka_producer_problem(r, NGX_HTTP_BAD_REQUEST, 0,
                                               "Missing: requestId");
    }

    if (ngx_http_kafka_producer_status_parse_id(&arg, id) != NGX_OK) {
        return ngx_http_kafka_producer_problem(r, NGX_HTTP_BAD_REQUEST, 0,
                                               "Invalid: requestId must be "
                                               "a UUID");
    }

    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kafka_producer_module);
    ctx = kmcf->shm_zone->data;

    now = ngx_time();

    ngx_shmtx_lock(&ctx->shpool->mutex);

    rec = ngx_http_kafka_producer_status_lookup(ctx, id);

    if (rec == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);

        return ngx_http_kafka_producer_problem(r, NGX_HTTP_NOT_FOUND, 0,
                                               "unknown or expired "
                                               "requestId");
    }

    if (rec->state == NGX_HTTP_KAFKA_PRODUCER_PENDING
        && rec->pid != ngx_pid
        && kill(rec->pid, 0) == -1 && ngx_errno == NGX_ESRCH)
    {
        /* the worker that owned the message died without a report */

        ngx_memzero(&ev, sizeof(ngx_http_kafka_producer_event_t));
        ev.partition = RD_KAFKA_PARTITION_UA;
        ev.offset = -1;
        ev.err = RD_KAFKA_RESP_ERR__DESTROY;
        ev.reason = NGX_HTTP_KAFKA_PRODUCER_REASON_OWNER_GONE;
        ev.persisted = RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;

        ngx_http_kafka_producer_status_set(ctx, rec, &ev, now);
    }

    copy = *rec;

    data = ngx_pnalloc(r->pool, rec->event_id_len + rec->key_len
                                + rec->topic_len);
    if (data == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(data, rec->data,
               rec->event_id_len + rec->key_len + rec->topic_len);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    p = ngx_http_kafka_producer_status_format_id(uuid, id);

    id_str.data = uuid;
    id_str.len = p - uuid;

    state.data = (u_char *) ngx_http_kafka_producer_states[copy.state];
    state.len = ngx_strlen(state.data);

    m = f;

    ngx_http_kafka_producer_json_str(m, "requestId", &id_str);
    ngx_http_kafka_producer_json_str(m, "state", &state);

    ev.event_id.data = data;
    ev.event_id.len = copy.event_id_len;
    ev.key.data = data + copy.event_id_len;
    ev.key.len = copy.key_len;
    ev.topic.data = ev.key.data + copy.key_len;
    ev.topic.len = copy.topic_len;

    ngx_http_kafka_producer_json_str(m, "eventId", &ev.event_id);

    ngx_str_set(&arg, "plain");
    if (copy.mode == NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENT) {
        ngx_str_set(&arg, "idempotent");
    }

    ngx_http_kafka_producer_json_str(m, "mode", &arg);

    ngx_str_set(&arg, "async");
    ngx_http_kafka_producer_json_str(m, "sendMode", &arg);

    ngx_http_kafka_producer_json_str(m, "topic", &ev.topic);
    ngx_http_kafka_producer_json_str(m, "key", &ev.key);

    if (copy.state == NGX_HTTP_KAFKA_PRODUCER_OK || copy.partition_given) {
        ngx_http_kafka_producer_json_num(m, "partition", copy.partition);

    } else {
        ngx_http_kafka_producer_json_null(m, "partition");
    }

    if (copy.state == NGX_HTTP_KAFKA_PRODUCER_OK) {
        ngx_http_kafka_producer_json_num(m, "offset", copy.offset);
    }

    if (copy.state == NGX_HTTP_KAFKA_PRODUCER_ERROR) {
        if (ngx_http_kafka_producer_status_error(r->pool, &copy, &error)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_kafka_producer_json_str(m, "error", &error);
        ngx_http_kafka_producer_json_str(m, "persisted",
                     &ngx_http_kafka_producer_persisted[copy.persisted
                           == RD_KAFKA_MSG_STATUS_NOT_PERSISTED ? 0 : 1]);
    }

    return ngx_http_kafka_producer_send_json(r, NGX_HTTP_OK, f, m - f);
}


/*
 * set_kafka_producer_state $var REQUEST_ID (ngx_devel_kit's set_var):
 * the state of an async record, or an empty string when there is none.
 */

ngx_int_t
ngx_http_kafka_producer_status_state(ngx_http_request_t *r, ngx_str_t *res,
    ngx_http_variable_value_t *v)
{
    ngx_str_t                              s;
    ngx_http_kafka_producer_status_node_t      *rec;
    ngx_http_kafka_producer_main_conf_t   *kmcf;
    ngx_http_kafka_producer_status_ctx_t  *ctx;
    u_char                                 id[NGX_HTTP_KAFKA_PRODUCER_ID_LEN];

    res->len = 0;
    res->data = NULL;

    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kafka_producer_module);

    s.data = v->data;
    s.len = v->len;

    if (kmcf->shm_zone == NULL
        || ngx_http_kafka_producer_status_parse_id(&s, id) != NGX_OK)
    {
        return NGX_OK;
    }

    ctx = kmcf->shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    rec = ngx_http_kafka_producer_status_lookup(ctx, id);

    if (rec) {
        res->data = (u_char *) ngx_http_kafka_producer_states[rec->state];
        res->len = ngx_strlen(res->data);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


static ngx_int_t
ngx_http_kafka_producer_status_error(ngx_pool_t *pool,
    ngx_http_kafka_producer_status_node_t *rec, ngx_str_t *error)
{
    u_char      *p;
    const char  *name, *text;

    name = rd_kafka_err2name(rec->err);
    text = rd_kafka_err2str(rec->err);

    switch (rec->reason) {

    case NGX_HTTP_KAFKA_PRODUCER_REASON_OWNER_GONE:
        text = "the worker that accepted the message exited "
               "without its delivery report";
        break;

    case NGX_HTTP_KAFKA_PRODUCER_REASON_NO_REPORT:
        text = "no delivery report within the delivery timeout";
        break;

    case NGX_HTTP_KAFKA_PRODUCER_REASON_EXITING:
        text = "the worker exited before the delivery report";
        break;
    }

    p = ngx_pnalloc(pool, ngx_strlen(name) + ngx_strlen(text)
                          + sizeof(": ") - 1 + NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    error->data = p;
    error->len = ngx_sprintf(p, "%s: %s", name, text) - p;

    return NGX_OK;
}


/*
 * For the metrics: bytes of the zone in use and its size, records by
 * state.  Counts the queues under the lock: O(records), once per scrape.
 */

void
ngx_http_kafka_producer_status_stats(ngx_shm_zone_t *shm_zone, size_t *used,
    size_t *total, ngx_uint_t *pending, ngx_uint_t *done)
{
    ngx_uint_t                             n;
    ngx_queue_t                           *q;
    ngx_http_kafka_producer_status_ctx_t  *ctx;

    ctx = shm_zone->data;

    *total = shm_zone->shm.size;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    *used = shm_zone->shm.size - (ctx->shpool->pfree << ngx_pagesize_shift);

    n = 0;

    for (q = ngx_queue_head(&ctx->sh->pending);
         q != ngx_queue_sentinel(&ctx->sh->pending);
         q = ngx_queue_next(q))
    {
        n++;
    }

    *pending = n;

    n = 0;

    for (q = ngx_queue_head(&ctx->sh->done);
         q != ngx_queue_sentinel(&ctx->sh->done);
         q = ngx_queue_next(q))
    {
        n++;
    }

    *done = n;

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


#if (NGX_HTTP_KAFKA_PRODUCER_FUZZ)

/* the requestId parser, for fuzz/fuzz_kafka_producer.c */

ngx_int_t
ngx_http_kafka_producer_fuzz_parse_id(ngx_str_t *s, u_char *id)
{
    return ngx_http_kafka_producer_status_parse_id(s, id);
}

#endif
