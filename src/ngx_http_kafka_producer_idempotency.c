
/*
 * ngx_http_kafka_producer_module: HTTP idempotency keys.
 *
 * After draft-ietf-httpapi-idempotency-key-header: the first request with
 * a key is produced and its answer kept; a repeat within the ttl gets the
 * same answer again, nothing produced ("Idempotent-Replayed: true"); a
 * repeat while the first is in flight gets 409, another request with the
 * same key 422.  The keys live in a shared memory zone (slab pool,
 * nginx's string rbtree, oldest finished keys evicted first, never one in
 * flight), as the status zone does, so every worker sees them and they
 * survive reloads.
 */


#include "ngx_http_kafka_producer_idempotency.h"
#include "ngx_http_kafka_producer_json.h"
#include "ngx_http_kafka_producer_status.h"

#include <ngx_md5.h>


/* RFC 9110 15.5.21, not among nginx's own codes */
#define NGX_HTTP_KAFKA_PRODUCER_UNPROCESSABLE  422


#define NGX_HTTP_KAFKA_PRODUCER_IDEM_IN_FLIGHT  0
#define NGX_HTTP_KAFKA_PRODUCER_IDEM_DONE       1

/* a key in flight without an answer this long past the delivery timeout
 * ended without one (its client went away): it answers 504 "possibly" */
#define NGX_HTTP_KAFKA_PRODUCER_IDEM_GRACE      30

/* seconds past the delivery timeout by which a sync send is answered:
 * the request's deadline margin (request.c), rounded up */
#define NGX_HTTP_KAFKA_PRODUCER_IDEM_ANSWER_MARGIN  6


typedef struct {
    ngx_str_node_t                    sn;         /* sn.str: the key */
    ngx_queue_t                       queue;
    u_char                            state;
    u_char                            problem;    /* problem+json answer */
    u_short                           status;
    u_short                           location_len;
    u_short                           key_len;
    uint32_t                          body_len;
    time_t                            time;       /* created or finished */
    u_char                            fingerprint[16];
    u_char                            data[1];    /* key, location, body */
} ngx_http_kafka_producer_idem_node_t;


typedef struct {
    ngx_rbtree_t                      rbtree;
    ngx_rbtree_node_t                 sentinel;
    ngx_queue_t                       in_flight;
    ngx_queue_t                       done;
} ngx_http_kafka_producer_idem_sh_t;


typedef struct {
    ngx_http_kafka_producer_idem_sh_t  *sh;
    ngx_slab_pool_t                    *shpool;
    time_t                              ttl;
    time_t                              deadline;   /* in flight, s */
    time_t                              answer_by;  /* sync answer, s */
} ngx_http_kafka_producer_idem_ctx_t;


static ngx_int_t ngx_http_kafka_producer_idem_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static time_t ngx_http_kafka_producer_idem_retry_after(
    ngx_http_kafka_producer_idem_ctx_t *ctx,
    ngx_http_kafka_producer_idem_node_t *node, time_t now);
static ngx_http_kafka_producer_idem_node_t *
    ngx_http_kafka_producer_idem_lookup(ngx_http_kafka_producer_idem_ctx_t *ctx,
    ngx_str_t *key);
static ngx_http_kafka_producer_idem_node_t *
    ngx_http_kafka_producer_idem_alloc(ngx_http_kafka_producer_idem_ctx_t *ctx,
    size_t size);
static void ngx_http_kafka_producer_idem_free(
    ngx_http_kafka_producer_idem_ctx_t *ctx,
    ngx_http_kafka_producer_idem_node_t *node);
static void ngx_http_kafka_producer_idem_expire(
    ngx_http_kafka_producer_idem_ctx_t *ctx, time_t now);
static ngx_int_t ngx_http_kafka_producer_idem_finish(
    ngx_http_kafka_producer_idem_ctx_t *ctx, ngx_str_t *key, u_char *fp,
    ngx_uint_t status, ngx_uint_t problem, ngx_str_t *location,
    ngx_str_t *body);
static ngx_int_t ngx_http_kafka_producer_idem_header_filter(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_kafka_producer_idem_body_filter(
    ngx_http_request_t *r, ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;

static ngx_str_t  ngx_http_kafka_producer_idem_gone = ngx_string(
    "{\"type\":\"about:blank\",\"title\":\"Gateway Timeout\",\"status\":504,"
    "\"detail\":\"the first request with this idempotency key ended "
    "without an answer; its record may have been written\","
    "\"persisted\":\"possibly\"}");

static ngx_str_t  ngx_http_kafka_producer_idem_json =
    ngx_string("application/json");
static ngx_str_t  ngx_http_kafka_producer_idem_problem =
    ngx_string("application/problem+json");


char *
ngx_http_kafka_producer_idempotency_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_kafka_producer_main_conf_t *kmcf = conf;

    time_t                               ttl;
    ngx_http_kafka_producer_idem_ctx_t  *ctx;

    if (kmcf->idem_zone) {
        return "is duplicate";
    }

    ttl = 86400;

    if (ngx_http_kafka_producer_zone_add(cf, 0, &ttl, &kmcf->idem_zone)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_kafka_producer_idem_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    ctx->ttl = ttl;

    kmcf->idem_zone->init = ngx_http_kafka_producer_idem_init_zone;
    kmcf->idem_zone->data = ctx;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_kafka_producer_idem_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_kafka_producer_idem_ctx_t  *octx = data;

    size_t                               len;
    ngx_http_kafka_producer_idem_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool,
                             sizeof(ngx_http_kafka_producer_idem_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_str_rbtree_insert_value);

    ngx_queue_init(&ctx->sh->in_flight);
    ngx_queue_init(&ctx->sh->done);

    len = sizeof(" in kafka_producer_idempotency_zone \"\"")
          + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx,
                " in kafka_producer_idempotency_zone \"%V\"%Z",
                &shm_zone->shm.name);

    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_kafka_producer_idempotency_begin(ngx_http_request_t *r,
    ngx_http_kafka_producer_ctx_t *ctx, ngx_int_t *answer)
{
    u_char                                *p;
    time_t                                 now, retry_after;
    ngx_str_t                              key, location, body;
    ngx_md5_t                              md5;
    ngx_uint_t                             state, status, problem;
    ngx_keyval_t                          *h;
    ngx_table_elt_t                       *t;
    ngx_http_kafka_producer_idem_ctx_t    *ictx;
    ngx_http_kafka_producer_idem_node_t   *node;
    ngx_http_kafka_producer_loc_conf_t    *klcf;
    ngx_http_kafka_producer_main_conf_t   *kmcf;
    u_char                                 fp[16];

    klcf = ngx_http_get_module_loc_conf(r, ngx_http_kafka_producer_module);
    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kafka_producer_module);

    if (klcf->idempotency_key == NULL || kmcf->idem_zone == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, klcf->idempotency_key, &key) != NGX_OK) {
        *answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    if (key.len == 0) {
        return NGX_OK;
    }

    if (key.len > NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENCY_KEY_MAX) {
        *answer = ngx_http_kafka_producer_problem(r, NGX_HTTP_BAD_REQUEST, 0,
                              "Invalid: the idempotency key is longer than "
                              "%d bytes",
                              NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENCY_KEY_MAX);

        return NGX_DONE;
    }

    /*
     * what makes two requests the same: method, topic, key and the
     * handler's content (the lab's query string: its record holds a
     * timestamp; the value of a pass)
     */

    ngx_md5_init(&md5);
    ngx_md5_update(&md5, r->method_name.data, r->method_name.len);
    ngx_md5_update(&md5, "\n", 1);
    ngx_md5_update(&md5, ctx->record.topic.data, ctx->record.topic.len);
    ngx_md5_update(&md5, "\n", 1);

    if (ctx->record.key.data) {
        ngx_md5_update(&md5, ctx->record.key.data, ctx->record.key.len);
        ngx_md5_update(&md5, "\n", 1);
    }

    ngx_md5_update(&md5, ctx->content.data, ctx->content.len);
    ngx_md5_final(fp, &md5);

    ictx = kmcf->idem_zone->data;
    now = ngx_time();

    ngx_shmtx_lock(&ictx->shpool->mutex);

    ngx_http_kafka_producer_idem_expire(ictx, now);

    node = ngx_http_kafka_producer_idem_lookup(ictx, &key);

    if (node) {
        state = node->state;

        if (ngx_memcmp(node->fingerprint, fp, 16) != 0) {
            ngx_shmtx_unlock(&ictx->shpool->mutex);

            *answer = ngx_http_kafka_producer_problem(r,
                              NGX_HTTP_KAFKA_PRODUCER_UNPROCESSABLE, 0,
                              "the idempotency key was used for another "
                              "request (method, topic, key or value "
                              "differ)");

            return NGX_DONE;
        }

        if (state == NGX_HTTP_KAFKA_PRODUCER_IDEM_IN_FLIGHT) {
            retry_after = ngx_http_kafka_producer_idem_retry_after(ictx, node,
                                                                   now);

            ngx_shmtx_unlock(&ictx->shpool->mutex);

            *answer = ngx_http_kafka_producer_problem_kafka(r,
                              NGX_HTTP_CONFLICT, 0,
                              NGX_HTTP_KAFKA_PRODUCER_PERSISTED_UNKNOWN,
                              retry_after,
                              "the first request with this idempotency key "
                              "is still in flight");

            return NGX_DONE;
        }

        /* a replay: copy the answer out of shared memory, under the lock */

        status = node->status;
        problem = node->problem;

        p = ngx_pnalloc(r->pool, node->location_len + node->body_len + 1);
        if (p == NULL) {
            ngx_shmtx_unlock(&ictx->shpool->mutex);
            *answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DONE;
        }

        location.data = p;
        location.len = node->location_len;
        p = ngx_cpymem(p, node->data + node->key_len, node->location_len);

        body.data = p;
        body.len = node->body_len;
        ngx_memcpy(p, node->data + node->key_len + node->location_len,
                   node->body_len);

        ngx_shmtx_unlock(&ictx->shpool->mutex);

        t = ngx_list_push(&r->headers_out.headers);
        if (t == NULL) {
            *answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DONE;
        }

        t->hash = 1;
        ngx_str_set(&t->key, "Idempotent-Replayed");
        ngx_str_set(&t->value, "true");

        if (location.len) {
            t = ngx_list_push(&r->headers_out.headers);
            if (t == NULL) {
                *answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
                return NGX_DONE;
            }

            t->hash = 1;
            ngx_str_set(&t->key, "Location");
            t->value = location;
        }

        *answer = ngx_http_kafka_producer_send_text(r, status,
                                problem ? &ngx_http_kafka_producer_idem_problem
                                        : &ngx_http_kafka_producer_idem_json,
                                &body);

        return NGX_DONE;
    }

    /* a new key: in flight until its answer */

    node = ngx_http_kafka_producer_idem_alloc(ictx,
                          offsetof(ngx_http_kafka_producer_idem_node_t, data)
                          + key.len);

    if (node == NULL) {
        /* the oldest key in flight is the first to be answered */
        retry_after = 1;

        if (!ngx_queue_empty(&ictx->sh->in_flight)) {
            node = ngx_queue_data(ngx_queue_last(&ictx->sh->in_flight),
                                  ngx_http_kafka_producer_idem_node_t, queue);
            retry_after = ngx_http_kafka_producer_idem_retry_after(ictx, node,
                                                                   now);
        }

        ngx_shmtx_unlock(&ictx->shpool->mutex);

        *answer = ngx_http_kafka_producer_problem_kafka(r,
                              NGX_HTTP_SERVICE_UNAVAILABLE, 0,
                              RD_KAFKA_MSG_STATUS_NOT_PERSISTED, retry_after,
                              "the idempotency zone is full of keys in "
                              "flight");

        return NGX_DONE;
    }

    ngx_memzero(node, offsetof(ngx_http_kafka_producer_idem_node_t, data));

    node->state = NGX_HTTP_KAFKA_PRODUCER_IDEM_IN_FLIGHT;
    node->key_len = (u_short) key.len;
    node->time = now;
    ngx_memcpy(node->fingerprint, fp, 16);
    ngx_memcpy(node->data, key.data, key.len);

    node->sn.node.key = ngx_crc32_short(key.data, key.len);
    node->sn.str.data = node->data;
    node->sn.str.len = key.len;

    ngx_rbtree_insert(&ictx->sh->rbtree, &node->sn.node);
    ngx_queue_insert_head(&ictx->sh->in_flight, &node->queue);

    ngx_shmtx_unlock(&ictx->shpool->mutex);

    ctx->idempotency_key = key;
    ngx_memcpy(ctx->fingerprint, fp, 16);

    /* the key goes with the record */

    if (ctx->record.headers == NULL) {
        ctx->record.headers = ngx_array_create(r->pool, 1,
                                               sizeof(ngx_keyval_t));
        if (ctx->record.headers == NULL) {
            *answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DONE;
        }
    }

    h = ngx_array_push(ctx->record.headers);
    if (h == NULL) {
        *answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    ngx_str_set(&h->key, "idempotency-key");
    h->value = key;

    return NGX_OK;
}


static ngx_http_kafka_producer_idem_node_t *
ngx_http_kafka_producer_idem_lookup(ngx_http_kafka_producer_idem_ctx_t *ctx,
    ngx_str_t *key)
{
    ngx_str_node_t  *sn;

    sn = ngx_str_rbtree_lookup(&ctx->sh->rbtree, key,
                               ngx_crc32_short(key->data, key->len));

    return (ngx_http_kafka_producer_idem_node_t *) sn;
}


/* an allocation that evicts the oldest finished keys, never one in flight */

static ngx_http_kafka_producer_idem_node_t *
ngx_http_kafka_producer_idem_alloc(ngx_http_kafka_producer_idem_ctx_t *ctx,
    size_t size)
{
    ngx_uint_t                            n;
    ngx_queue_t                          *q;
    ngx_http_kafka_producer_idem_node_t  *node;

    for (n = 0; n < 64; n++) {
        node = ngx_slab_alloc_locked(ctx->shpool, size);

        if (node) {
            return node;
        }

        if (ngx_queue_empty(&ctx->sh->done)) {
            return NULL;
        }

        q = ngx_queue_last(&ctx->sh->done);

        ngx_http_kafka_producer_idem_free(ctx,
                 ngx_queue_data(q, ngx_http_kafka_producer_idem_node_t, queue));
    }

    return NULL;
}


static void
ngx_http_kafka_producer_idem_free(ngx_http_kafka_producer_idem_ctx_t *ctx,
    ngx_http_kafka_producer_idem_node_t *node)
{
    ngx_queue_remove(&node->queue);
    ngx_rbtree_delete(&ctx->sh->rbtree, &node->sn.node);
    ngx_slab_free_locked(ctx->shpool, node);
}


/*
 * A few at a time, the lock held: finished keys past the ttl go; a key in
 * flight past the delivery timeout and a grace, whose client went away
 * before any answer, becomes a finished 504 "possibly persisted".
 */

static void
ngx_http_kafka_producer_idem_expire(ngx_http_kafka_producer_idem_ctx_t *ctx,
    time_t now)
{
    ngx_str_t                             key, location;
    ngx_uint_t                            n;
    ngx_queue_t                          *q;
    ngx_http_kafka_producer_idem_node_t  *node;
    u_char                                buf[
                                   NGX_HTTP_KAFKA_PRODUCER_IDEMPOTENCY_KEY_MAX];
    u_char                                fp[16];

    for (n = 0; n < 8 && !ngx_queue_empty(&ctx->sh->done); n++) {
        q = ngx_queue_last(&ctx->sh->done);
        node = ngx_queue_data(q, ngx_http_kafka_producer_idem_node_t, queue);

        if (now - node->time < ctx->ttl) {
            break;
        }

        ngx_http_kafka_producer_idem_free(ctx, node);
    }

    for (n = 0; n < 8 && !ngx_queue_empty(&ctx->sh->in_flight); n++) {
        q = ngx_queue_last(&ctx->sh->in_flight);
        node = ngx_queue_data(q, ngx_http_kafka_producer_idem_node_t, queue);

        if (now - node->time < ctx->deadline) {
            break;
        }

        key.len = node->key_len;
        key.data = buf;
        ngx_memcpy(buf, node->data, key.len);
        ngx_memcpy(fp, node->fingerprint, 16);

        location.len = 0;

        if (ngx_http_kafka_producer_idem_finish(ctx, &key, fp,
                                        NGX_HTTP_GATEWAY_TIME_OUT, 1,
                                        &location,
                                        &ngx_http_kafka_producer_idem_gone)
            != NGX_OK)
        {
            /* no memory for the answer: the key is released */
            node = ngx_http_kafka_producer_idem_lookup(ctx, &key);

            if (node) {
                ngx_http_kafka_producer_idem_free(ctx, node);
            }
        }
    }
}


/*
 * Keeps the answer of a key in flight (status, Location, body): the node
 * is replaced by one large enough; or, with status 0, releases the key.
 * The lock is held.  NGX_OK, or NGX_ERROR without memory.
 */

static ngx_int_t
ngx_http_kafka_producer_idem_finish(ngx_http_kafka_producer_idem_ctx_t *ctx,
    ngx_str_t *key, u_char *fp, ngx_uint_t status, ngx_uint_t problem,
    ngx_str_t *location, ngx_str_t *body)
{
    u_char                               *p;
    ngx_http_kafka_producer_idem_node_t  *node, *old;

    old = ngx_http_kafka_producer_idem_lookup(ctx, key);

    if (old == NULL || old->state != NGX_HTTP_KAFKA_PRODUCER_IDEM_IN_FLIGHT
        || ngx_memcmp(old->fingerprint, fp, 16) != 0)
    {
        return NGX_OK;
    }

    ngx_http_kafka_producer_idem_free(ctx, old);

    if (status == 0) {
        return NGX_OK;
    }

    node = ngx_http_kafka_producer_idem_alloc(ctx,
                          offsetof(ngx_http_kafka_producer_idem_node_t, data)
                          + key->len + location->len + body->len);
    if (node == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(node, offsetof(ngx_http_kafka_producer_idem_node_t, data));

    node->state = NGX_HTTP_KAFKA_PRODUCER_IDEM_DONE;
    node->problem = (u_char) problem;
    node->status = (u_short) status;
    node->key_len = (u_short) key->len;
    node->location_len = (u_short) location->len;
    node->body_len = (uint32_t) body->len;
    node->time = ngx_time();
    ngx_memcpy(node->fingerprint, fp, 16);

    /* a sync answer has no Location (data NULL), an answer may be empty */

    p = ngx_cpymem(node->data, key->data, key->len);

    if (location->len) {
        p = ngx_cpymem(p, location->data, location->len);
    }

    if (body->len) {
        ngx_memcpy(p, body->data, body->len);
    }

    node->sn.node.key = ngx_crc32_short(key->data, key->len);
    node->sn.str.data = node->data;
    node->sn.str.len = key->len;

    ngx_rbtree_insert(&ctx->sh->rbtree, &node->sn.node);
    ngx_queue_insert_head(&ctx->sh->done, &node->queue);

    return NGX_OK;
}


ngx_int_t
ngx_http_kafka_producer_idempotency_init_filters(ngx_conf_t *cf)
{
    ngx_http_kafka_producer_idem_ctx_t   *ictx;
    ngx_http_kafka_producer_main_conf_t  *kmcf;

    kmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kafka_producer_module);

    if (kmcf->idem_zone == NULL) {
        return NGX_OK;
    }

    ictx = kmcf->idem_zone->data;
    ictx->deadline = (kmcf->delivery_timeout == NGX_CONF_UNSET_MSEC
                      ? 120 : kmcf->delivery_timeout / 1000)
                     + NGX_HTTP_KAFKA_PRODUCER_IDEM_GRACE;

    /* a sync send is answered by its deadline timer at the latest */
    ictx->answer_by = (kmcf->delivery_timeout == NGX_CONF_UNSET_MSEC
                       ? 120000 : kmcf->delivery_timeout)
                      / 1000 + NGX_HTTP_KAFKA_PRODUCER_IDEM_ANSWER_MARGIN;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_kafka_producer_idem_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_kafka_producer_idem_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kafka_producer_idem_header_filter(ngx_http_request_t *r)
{
    ngx_http_kafka_producer_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_kafka_producer_module);

    if (ctx && ctx->idempotency_key.len && r == r->main) {
        /* what a replay repeats */
        ctx->idempotency_status = r->headers_out.status;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_kafka_producer_idem_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in)
{
    u_char                               *p;
    size_t                                len;
    ngx_str_t                             location;
    ngx_uint_t                            i, last, status, problem;
    ngx_chain_t                          *cl;
    ngx_list_part_t                      *part;
    ngx_table_elt_t                      *h;
    ngx_http_kafka_producer_ctx_t        *ctx;
    ngx_http_kafka_producer_idem_ctx_t   *ictx;
    ngx_http_kafka_producer_main_conf_t  *kmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_kafka_producer_module);

    if (ctx == NULL || ctx->idempotency_key.len == 0
        || ctx->idempotency_done || r != r->main)
    {
        return ngx_http_next_body_filter(r, in);
    }

    /* our answers are small, in memory: gather them */

    last = 0;
    len = 0;

    for (cl = in; cl; cl = cl->next) {
        if (ngx_buf_in_memory(cl->buf)) {
            len += cl->buf->last - cl->buf->pos;
        }

        if (cl->buf->last_buf || cl->buf->last_in_chain) {
            last = 1;
        }
    }

    if (len) {
        p = ngx_pnalloc(r->pool, ctx->idempotency_answer.len + len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (ctx->idempotency_answer.len) {
            ngx_memcpy(p, ctx->idempotency_answer.data,
                       ctx->idempotency_answer.len);
        }

        ctx->idempotency_answer.data = p;
        p += ctx->idempotency_answer.len;

        for (cl = in; cl; cl = cl->next) {
            if (ngx_buf_in_memory(cl->buf)) {
                p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
            }
        }

        ctx->idempotency_answer.len = p - ctx->idempotency_answer.data;
    }

    if (!last) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx->idempotency_done = 1;

    status = ctx->idempotency_status;
    problem = (r->headers_out.content_type.len
               == ngx_http_kafka_producer_idem_problem.len);

    location.len = 0;
    location.data = NULL;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash && h[i].key.len == sizeof("Location") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Location",
                               h[i].key.len) == 0)
        {
            location = h[i].value;
        }
    }

    /*
     * Only a final answer is kept: a 503 (the record was not written,
     * retry) and a 500 release the key, so that a retry produces
     */

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE
        || status == NGX_HTTP_INTERNAL_SERVER_ERROR)
    {
        status = 0;
    }

    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kafka_producer_module);
    ictx = kmcf->idem_zone->data;

    ngx_shmtx_lock(&ictx->shpool->mutex);

    if (ngx_http_kafka_producer_idem_finish(ictx, &ctx->idempotency_key,
                                            ctx->fingerprint, status, problem,
                                            &location,
                                            &ctx->idempotency_answer)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "kafka_producer_idempotency_zone is full: the answer "
                      "of an idempotency key is not kept");
    }

    ngx_shmtx_unlock(&ictx->shpool->mutex);

    return ngx_http_next_body_filter(r, in);
}


/*
 * Retry-After of a key in flight: as long again as it has been in flight
 * (a backoff that doubles), and no longer than until its request must
 * have been answered (delivery timeout + the deadline margin); at least
 * 1 s.  Called under the zone's lock.
 */

static time_t
ngx_http_kafka_producer_idem_retry_after(
    ngx_http_kafka_producer_idem_ctx_t *ctx,
    ngx_http_kafka_producer_idem_node_t *node, time_t now)
{
    time_t  age, left;

    age = now - node->time;
    left = node->time + ctx->answer_by - now;

    return ngx_max(ngx_min(age, left), 1);
}
