
/*
 * x402-nginx: ngx_http_x402_module.
 *
 * "x402 ROUTE;" protects a location.  The access handler asks the sidecar
 * once, with a headers-only subrequest to the internal location named by
 * x402_sidecar (a proxy_pass to the sidecar's /authorize), and answers the
 * client itself: 402, 429, 403, 503 or 500 end the request there and then,
 * so the backend never runs; an allowed request goes on with the client's
 * payment headers and every X-X402-* header removed and the sidecar's
 * verified X-X402-* context in their place.  A lease token is checked in
 * process (ngx_http_x402_lease.c) and a leased request is closed when the
 * lease stops being valid (exp + x402_lease_clock_skew, the instant the
 * sidecar starts refusing it) by a timer of its own, or sooner if the
 * sidecar refuses the lease on a stream recheck (ngx_http_x402_recheck.c).
 * The answers are built in ngx_http_x402_answer.c; the log phase reports
 * paid and leased requests to the sidecar (ngx_http_x402_report.c).  An
 * unpaid request the sidecar has just refused the same way may be
 * answered from the worker's challenge cache (ngx_http_x402_challenge.c).
 */


#include "ngx_http_x402.h"


#define NGX_HTTP_X402_FAIL_CLOSED       1


typedef struct {
    ngx_str_t                  name;
    ngx_uint_t                 offset;
} ngx_http_x402_field_t;


static ngx_int_t ngx_http_x402_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_x402_ask(ngx_http_request_t *r,
    ngx_http_x402_loc_conf_t *xlcf, ngx_http_x402_ctx_t *ctx);
static ngx_int_t ngx_http_x402_start(ngx_http_request_t *r,
    ngx_http_x402_loc_conf_t *xlcf, ngx_http_x402_ctx_t *ctx);
static ngx_int_t ngx_http_x402_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static ngx_int_t ngx_http_x402_decide(ngx_http_request_t *r,
    ngx_http_x402_loc_conf_t *xlcf, ngx_http_x402_ctx_t *ctx);
static ngx_int_t ngx_http_x402_allow(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx);
static ngx_int_t ngx_http_x402_lease_context(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx);
static ngx_int_t ngx_http_x402_rewrite_headers(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx);
static ngx_int_t ngx_http_x402_context_add(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx, char *name, ngx_str_t *value);
static ngx_int_t ngx_http_x402_sidecar_lease(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx);
static ngx_int_t ngx_http_x402_arm_expiry(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx, time_t skew);
static void ngx_http_x402_expired(ngx_event_t *ev);
static void ngx_http_x402_cleanup(void *data);


static ngx_int_t ngx_http_x402_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_x402_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_x402_add_variables(ngx_conf_t *cf);
static void *ngx_http_x402_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_x402_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_x402_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_x402_init(ngx_conf_t *cf);
static void ngx_http_x402_exit_process(ngx_cycle_t *cycle);
static char *ngx_http_x402(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_x402_fail(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_x402_recheck_sidecar(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_x402_skew_bounds(ngx_conf_t *cf, void *post,
    void *data);


static ngx_conf_post_t  ngx_http_x402_skew_post =
    { ngx_http_x402_skew_bounds };


static ngx_command_t  ngx_http_x402_commands[] = {

    { ngx_string("x402"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_x402,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("x402_sidecar"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_x402_loc_conf_t, sidecar),
      NULL },

    { ngx_string("x402_fail"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_x402_fail,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("x402_lease_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_x402_lease_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("x402_lease_recheck"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_x402_loc_conf_t, recheck),
      NULL },

    { ngx_string("x402_lease_clock_skew"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_x402_loc_conf_t, skew),
      &ngx_http_x402_skew_post },

    { ngx_string("x402_recheck_sidecar"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_x402_recheck_sidecar,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("x402_challenge_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_x402_loc_conf_t, challenge_cache),
      NULL },

    { ngx_string("x402_report"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF
                        |NGX_CONF_TAKE12,
      ngx_http_x402_report,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_x402_module_ctx = {
    ngx_http_x402_add_variables,           /* preconfiguration */
    ngx_http_x402_init,                    /* postconfiguration */

    ngx_http_x402_create_main_conf,        /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_x402_create_loc_conf,         /* create location configuration */
    ngx_http_x402_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_x402_module = {
    NGX_MODULE_V1,
    &ngx_http_x402_module_ctx,             /* module context */
    ngx_http_x402_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_x402_exit_process,            /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


/* $x402_* variables, also read by the sidecar location's proxy_set_header */

static ngx_http_x402_field_t  ngx_http_x402_variables[] = {
    { ngx_string("x402_route"), offsetof(ngx_http_x402_ctx_t, route) },
    { ngx_string("x402_status"),
      offsetof(ngx_http_x402_ctx_t, x402_status) },
    { ngx_string("x402_reason"), offsetof(ngx_http_x402_ctx_t, reason) },
    { ngx_string("x402_payer"), offsetof(ngx_http_x402_ctx_t, payer) },
    { ngx_string("x402_amount"), offsetof(ngx_http_x402_ctx_t, amount) },
    { ngx_string("x402_asset"), offsetof(ngx_http_x402_ctx_t, asset) },
    { ngx_string("x402_network"), offsetof(ngx_http_x402_ctx_t, network) },
    { ngx_string("x402_payment_id"),
      offsetof(ngx_http_x402_ctx_t, payment_id) },
    { ngx_string("x402_transaction"),
      offsetof(ngx_http_x402_ctx_t, transaction) },
    { ngx_string("x402_version"), offsetof(ngx_http_x402_ctx_t, version) },
    { ngx_string("x402_lease_id"),
      offsetof(ngx_http_x402_ctx_t, lease_id) },
    { ngx_string("x402_cache"), offsetof(ngx_http_x402_ctx_t, cache) },
    { ngx_null_string, 0 }
};


/* what the sidecar's allow answer sets for the client, not the backend */

static ngx_str_t  ngx_http_x402_not_context[] = {
    ngx_string("x-x402-status"),
    ngx_string("x-x402-reason"),
    ngx_string("x-x402-challenge"),
    ngx_null_string
};


static ngx_int_t
ngx_http_x402_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  route, token, reason;
    ngx_pool_cleanup_t        *cln;
    ngx_http_x402_ctx_t       *ctx;
    ngx_http_x402_lease_t     *lease;
    ngx_http_x402_loc_conf_t  *xlcf;

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_x402_module);

    if (xlcf->route == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_x402_get_ctx(r);

    if (ctx != NULL) {

        if (ctx->allowed) {
            /* an internal redirect after the decision */
            ngx_http_set_ctx(r, ctx, ngx_http_x402_module);
            return NGX_OK;
        }

        if (!ctx->done) {
            return NGX_AGAIN;
        }

        return ngx_http_x402_decide(r, xlcf, ctx);
    }

    if (ngx_http_complex_value(r, xlcf->route, &route) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_x402_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&ctx->context, r->pool, 12, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_x402_cleanup;
    cln->data = ctx;

    ctx->route = route;
    ngx_http_set_ctx(r, ctx, ngx_http_x402_module);

    if (route.len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "x402: the route evaluates to an empty name");
        ngx_str_set(&ctx->x402_status, "500");
        ngx_str_set(&ctx->reason, "missing_route");
        return ngx_http_x402_refuse(r, ctx);
    }

    if (xlcf->keys == NULL) {
        return ngx_http_x402_ask(r, xlcf, ctx);
    }

    rc = ngx_http_x402_lease_token(r, xlcf->keys, &token, &ctx->lease_header);

    if (rc == NGX_DECLINED) {
        return ngx_http_x402_ask(r, xlcf, ctx);
    }

    if (rc == NGX_BUSY) {
        ngx_str_set(&reason, "lease_duplicated");
        return ngx_http_x402_bad_lease(r, ctx, &reason);
    }

    rc = ngx_http_x402_lease_verify(r, xlcf->keys, xlcf->skew, &token,
                                    &route, &lease, &reason);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_x402_bad_lease(r, ctx, &reason);
    }

    ctx->lease = lease;
    ctx->lease_id = lease->jti;
    ctx->expires = lease->exp;
    ctx->token = token;

    if (ngx_http_x402_lease_recheck_due(lease, xlcf->recheck)) {
        /* the sidecar sees the token and answers allow or deny */
        return ngx_http_x402_start(r, xlcf, ctx);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "x402 lease %V checked in process", &lease->jti);

    return ngx_http_x402_allow(r, ctx);
}


/*
 * A request without a lease: the sidecar decides, unless this worker
 * holds its 402 to the same unpaid request (ngx_http_x402_challenge.c)
 */

static ngx_int_t
ngx_http_x402_ask(ngx_http_request_t *r, ngx_http_x402_loc_conf_t *xlcf,
    ngx_http_x402_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (xlcf->challenge_cache) {
        rc = ngx_http_x402_challenge_get(r, ctx);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            return ngx_http_x402_refuse(r, ctx);
        }
    }

    return ngx_http_x402_start(r, xlcf, ctx);
}


static ngx_int_t
ngx_http_x402_start(ngx_http_request_t *r, ngx_http_x402_loc_conf_t *xlcf,
    ngx_http_x402_ctx_t *ctx)
{
    ngx_http_request_t          *sr;
    ngx_http_post_subrequest_t  *ps;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_x402_done;
    ps->data = ctx;

    /*
     * headers only, as auth_request does: the sidecar's answer is all in
     * its headers (the v1 challenge in X-X402-Challenge), so a body-less
     * answer keeps the keepalive connection, and an answer too large for
     * proxy_buffer_size fails as a 502 of the subrequest alone.  (An
     * in-memory subrequest whose body overflows its buffer marks the
     * client connection as failed instead, and the client gets no answer.)
     */

    if (ngx_http_subrequest(r, &xlcf->sidecar, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * a fake request body: the sidecar never reads it, and a body already
     * read for the backend must not be touched by the subrequest
     */

    sr->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (sr->request_body == NULL) {
        return NGX_ERROR;
    }

    sr->header_only = 1;

    ctx->subrequest = sr;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_x402_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_x402_ctx_t  *ctx = data;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "x402 sidecar done s:%ui rc:%i", r->headers_out.status, rc);

    ctx->done = 1;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE
        && r->headers_out.status < NGX_HTTP_SPECIAL_RESPONSE)
    {
        /* failed before an answer arrived (502, 504) */
        ctx->failed = 1;
    }

    ctx->status = ctx->failed ? NGX_HTTP_BAD_GATEWAY : r->headers_out.status;

    return rc;
}


static ngx_int_t
ngx_http_x402_decide(ngx_http_request_t *r, ngx_http_x402_loc_conf_t *xlcf,
    ngx_http_x402_ctx_t *ctx)
{
    ngx_str_t            *skip;
    ngx_uint_t            i;
    ngx_list_part_t      *part;
    ngx_table_elt_t      *h, *elt;
    ngx_http_request_t   *sr;

    sr = ctx->subrequest;

    h = ngx_http_x402_answer_header(sr, "x-x402-status");
    if (h) {
        ctx->x402_status = h->value;
    }

    h = ngx_http_x402_answer_header(sr, "x-x402-reason");
    if (h) {
        ctx->reason = h->value;
    }

    if (ctx->status == NGX_HTTP_UNAUTHORIZED
        || ctx->status == NGX_HTTP_FORBIDDEN)
    {
        if (ctx->x402_status.len != 3) {
            return ngx_http_x402_unavailable(r, ctx,
                                             "a refusal without a valid "
                                             "X-X402-Status");
        }

        h = ngx_http_x402_answer_header(sr, "payment-required");
        if (h) {
            ctx->required = h->value;
        }

        h = ngx_http_x402_answer_header(sr, "x-x402-challenge");
        if (h) {
            ctx->challenge = h->value;
        }

        /* after a miss, the sidecar may say this 402 can be repeated */

        if (ctx->cache_key.len) {
            ngx_http_x402_challenge_put(r, ctx);
        }

        return ngx_http_x402_refuse(r, ctx);
    }

    if (ctx->status < NGX_HTTP_OK || ctx->status >= 300) {
        return ngx_http_x402_unavailable(r, ctx, NULL);
    }

    /* an allow must say so: a location answering 200 by mistake is not */

    if (ctx->x402_status.len != 3
        || ngx_strncmp(ctx->x402_status.data, "200", 3) != 0)
    {
        return ngx_http_x402_unavailable(r, ctx,
                                         "an allow without "
                                         "\"X-X402-Status: 200\"");
    }

    part = sr->upstream ? &sr->upstream->headers_in.headers.part
                        : &sr->headers_out.headers.part;
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

        if (h[i].hash == 0) {
            continue;
        }

        if (h[i].key.len == sizeof("PAYMENT-RESPONSE") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "PAYMENT-RESPONSE",
                               h[i].key.len) == 0)
        {
            ctx->payment_response = h[i].value;
            continue;
        }

        if (h[i].key.len == sizeof("X-PAYMENT-RESPONSE") - 1
            && ngx_strncasecmp(h[i].key.data,
                               (u_char *) "X-PAYMENT-RESPONSE",
                               h[i].key.len) == 0)
        {
            ctx->payment_response_v1 = h[i].value;
            continue;
        }

        if (h[i].key.len <= sizeof("X-X402-") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "X-X402-",
                               sizeof("X-X402-") - 1) != 0)
        {
            continue;
        }

        for (skip = ngx_http_x402_not_context; skip->len; skip++) {
            if (skip->len == h[i].key.len
                && ngx_strncasecmp(skip->data, h[i].key.data, skip->len)
                   == 0)
            {
                break;
            }
        }

        if (skip->len) {
            continue;
        }

        elt = ngx_array_push(&ctx->context);
        if (elt == NULL) {
            return NGX_ERROR;
        }

        *elt = h[i];
    }

    if (ctx->lease) {
        ngx_http_x402_lease_rechecked(ctx->lease);

    } else if (ngx_http_x402_sidecar_lease(r, ctx) != NGX_OK) {
        return ngx_http_x402_unavailable(r, ctx,
                                         "a lease allow without a valid "
                                         "X-X402-Lease-Expires");
    }

    return ngx_http_x402_allow(r, ctx);
}


/*
 * A lease the sidecar checked (a token the module does not read: no
 * x402_lease_keys, the query string, a key nginx does not hold): its
 * X-X402-Lease-Id and X-X402-Lease-Expires make the request a leased one,
 * reported with its lease and slot, and closed when the lease ends.
 */

static ngx_int_t
ngx_http_x402_sidecar_lease(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx)
{
    time_t            exp;
    ngx_table_elt_t  *h;

    h = ngx_http_x402_answer_header(ctx->subrequest, "x-x402-lease-id");
    if (h == NULL) {
        return NGX_OK;
    }

    ctx->lease_id = h->value;

    h = ngx_http_x402_answer_header(ctx->subrequest, "x-x402-lease-expires");

    if (h == NULL || h->value.len == 0 || h->value.len > 12
        || !ngx_http_x402_is_decimal(&h->value))
    {
        return NGX_DECLINED;
    }

    exp = ngx_atotm(h->value.data, h->value.len);
    if (exp == NGX_ERROR) {
        return NGX_DECLINED;
    }

    ctx->expires = exp;

    return NGX_OK;
}


/* allowed: fill the variables, rewrite the request headers, go on */

static ngx_int_t
ngx_http_x402_allow(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx)
{
    ngx_uint_t                  i;
    ngx_addr_t                 *addr;
    ngx_table_elt_t            *h;
    ngx_http_x402_loc_conf_t   *xlcf;
    ngx_http_x402_main_conf_t  *xmcf;

    if (ctx->lease && ngx_http_x402_lease_context(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    h = ctx->context.elts;

    for (i = 0; i < ctx->context.nelts; i++) {

#define ngx_http_x402_pick(name, field)                                       \
        if (h[i].key.len == sizeof(name) - 1                                  \
            && ngx_strncasecmp(h[i].key.data, (u_char *) name,                \
                               sizeof(name) - 1) == 0)                        \
        {                                                                     \
            ctx->field = h[i].value;                                          \
            continue;                                                         \
        }

        ngx_http_x402_pick("X-X402-Payer", payer);
        ngx_http_x402_pick("X-X402-Amount", amount);
        ngx_http_x402_pick("X-X402-Asset", asset);
        ngx_http_x402_pick("X-X402-Network", network);
        ngx_http_x402_pick("X-X402-Payment-Id", payment_id);
        ngx_http_x402_pick("X-X402-Transaction", transaction);
        ngx_http_x402_pick("X-X402-Version", version);

#undef ngx_http_x402_pick
    }

    if (ngx_http_x402_rewrite_headers(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_x402_module);
    xmcf = ngx_http_get_module_main_conf(r, ngx_http_x402_module);

    if (ctx->expires && ngx_http_x402_arm_expiry(r, ctx, xlcf->skew)
                        != NGX_OK)
    {
        return NGX_ERROR;
    }

    addr = xlcf->recheck_peer ? xlcf->recheck_peer : xmcf->sidecar;

    if (ctx->lease && ctx->probe == NULL && xlcf->recheck && addr
        && ngx_http_x402_probe_arm(r, ctx, addr, xlcf->recheck) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&ctx->x402_status, "200");
    ctx->decided = 1;
    ctx->allowed = 1;

    return NGX_OK;
}


/* the lease's claims for the backend, where the sidecar set none */

static ngx_int_t
ngx_http_x402_lease_context(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx)
{
    u_char                 *p;
    ngx_str_t               exp;
    ngx_http_x402_lease_t  *lease;

    lease = ctx->lease;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    exp.data = p;
    exp.len = ngx_sprintf(p, "%T", lease->exp) - p;

    if (ngx_http_x402_context_add(r, ctx, "X-X402-Payer", &lease->sub)
           != NGX_OK
        || ngx_http_x402_context_add(r, ctx, "X-X402-Amount", &lease->amount)
           != NGX_OK
        || ngx_http_x402_context_add(r, ctx, "X-X402-Asset", &lease->asset)
           != NGX_OK
        || ngx_http_x402_context_add(r, ctx, "X-X402-Network",
                                     &lease->network)
           != NGX_OK
        || ngx_http_x402_context_add(r, ctx, "X-X402-Payment-Id",
                                     &lease->payment_id)
           != NGX_OK
        || ngx_http_x402_context_add(r, ctx, "X-X402-Transaction",
                                     &lease->tx)
           != NGX_OK
        || ngx_http_x402_context_add(r, ctx, "X-X402-Lease-Id", &lease->jti)
           != NGX_OK
        || ngx_http_x402_context_add(r, ctx, "X-X402-Lease-Route",
                                     &lease->lease)
           != NGX_OK
        || ngx_http_x402_context_add(r, ctx, "X-X402-Lease-Expires", &exp)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_x402_context_add(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx,
    char *name, ngx_str_t *value)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    if (value->len == 0) {
        return NGX_OK;
    }

    len = ngx_strlen(name);
    h = ctx->context.elts;

    for (i = 0; i < ctx->context.nelts; i++) {
        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return NGX_OK;
        }
    }

    h = ngx_array_push(&ctx->context);
    if (h == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(h, sizeof(ngx_table_elt_t));

    h->key.data = (u_char *) name;
    h->key.len = len;
    h->value = *value;

    h->lowcase_key = ngx_pnalloc(r->pool, len);
    if (h->lowcase_key == NULL) {
        return NGX_ERROR;
    }

    h->hash = ngx_hash_strlow(h->lowcase_key, h->key.data, len);

    return NGX_OK;
}


/*
 * The backend must see only what was verified: a new header list without
 * the client's payment, sign-in, lease and X-X402-* headers, with the
 * context added.  The old list's memory stays valid for the pointers in
 * r->headers_in that still refer to it.
 */

static ngx_int_t
ngx_http_x402_rewrite_headers(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx)
{
    ngx_uint_t        i;
    ngx_list_t        headers;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    if (ngx_list_init(&headers, r->pool, 20, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    part = &r->headers_in.headers.part;
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

        if (&h[i] == ctx->lease_header) {
            if (r->headers_in.authorization == &h[i]) {
                r->headers_in.authorization = NULL;
            }

            continue;
        }

        if ((h[i].key.len > sizeof("x-x402-") - 1
             && ngx_strncmp(h[i].lowcase_key, "x-x402-",
                            sizeof("x-x402-") - 1) == 0)
            || (h[i].key.len == sizeof("payment-signature") - 1
                && ngx_strncmp(h[i].lowcase_key, "payment-signature",
                               h[i].key.len) == 0)
            || (h[i].key.len == sizeof("x-payment") - 1
                && ngx_strncmp(h[i].lowcase_key, "x-payment",
                               h[i].key.len) == 0)
            || (h[i].key.len == sizeof("sign-in-with-x") - 1
                && ngx_strncmp(h[i].lowcase_key, "sign-in-with-x",
                               h[i].key.len) == 0))
        {
            continue;
        }

        nh = ngx_list_push(&headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = h[i];
    }

    h = ctx->context.elts;

    for (i = 0; i < ctx->context.nelts; i++) {
        nh = ngx_list_push(&headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = h[i];

        if (nh->lowcase_key == NULL) {
            nh->lowcase_key = ngx_pnalloc(r->pool, nh->key.len);
            if (nh->lowcase_key == NULL) {
                return NGX_ERROR;
            }

            ngx_strlow(nh->lowcase_key, nh->key.data, nh->key.len);
        }

        nh->hash = ngx_hash_key(nh->lowcase_key, nh->key.len);
#if (nginx_version >= 1023000)
        nh->next = NULL;
#endif
    }

    r->headers_in.headers = headers;

    return NGX_OK;
}


/*
 * The lease's own timer: a stream or WebSocket bought until "exp" ends
 * when the lease stops being valid, whatever the connection's read and
 * write timers do.  That is exp + skew, to the millisecond: the sidecar
 * refuses the lease from the second exp + leases.clock_skew_seconds on,
 * and x402_lease_clock_skew is meant to be the same number.
 */

static ngx_int_t
ngx_http_x402_arm_expiry(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx,
    time_t skew)
{
    ngx_time_t      *tp;
    ngx_msec_int_t   left;

    if (ctx->expiry.timer_set) {
        return NGX_OK;
    }

    /* exp has at most 12 digits: no overflow in milliseconds */

    tp = ngx_timeofday();

    left = (ngx_msec_int_t) (ctx->expires + skew - tp->sec) * 1000
           - (ngx_msec_int_t) tp->msec;

    if (left < 0) {
        left = 0;
    }

    ctx->expiry.handler = ngx_http_x402_expired;
    ctx->expiry.data = r;
    ctx->expiry.log = r->connection->log;
    ctx->expiry.cancelable = 1;

    ngx_add_timer(&ctx->expiry, (ngx_msec_t) left);

    return NGX_OK;
}


static void
ngx_http_x402_expired(ngx_event_t *ev)
{
    ngx_http_request_t   *r;
    ngx_http_x402_ctx_t  *ctx;

    r = ev->data;

    ctx = ngx_http_x402_get_ctx(r);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "x402: lease %V expired, closing the request",
                  ctx ? &ctx->lease_id : &r->uri);

    ngx_http_x402_close_leased(r);
}


/* a leased request ends now, its upstream and client connections too */

void
ngx_http_x402_close_leased(ngx_http_request_t *r)
{
    ngx_connection_t  *c;

    c = r->connection;

    /*
     * as ngx_http_request_handler() does for c->close: the extra
     * reference keeps the request alive while its cleanups (the
     * upstream's among them) finalize it, then the posted terminate
     * handler closes the request and both connections
     */

    r->keepalive = 0;
    r->main->count++;

    ngx_http_finalize_request(r, NGX_ERROR);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_x402_cleanup(void *data)
{
    ngx_http_x402_ctx_t *ctx = data;

    if (ctx->expiry.timer_set) {
        ngx_del_timer(&ctx->expiry);
    }

    if (ctx->probe) {
        ngx_http_x402_probe_cleanup(ctx->probe);
    }
}


/* the ctx survives internal redirects through its pool cleanup */

ngx_http_x402_ctx_t *
ngx_http_x402_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t   *cln;
    ngx_http_x402_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_x402_module);

    if (ctx == NULL && (r->main->internal || r->main->filter_finalize)) {

        for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_x402_cleanup) {
                ctx = cln->data;
                break;
            }
        }
    }

    return ctx;
}


static ngx_int_t
ngx_http_x402_header_filter(ngx_http_request_t *r)
{
    ngx_str_t             expose;
    ngx_http_x402_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_x402_get_ctx(r);

    if (ctx == NULL || !ctx->allowed) {
        return ngx_http_next_header_filter(r);
    }

    ngx_str_set(&expose, NGX_HTTP_X402_EXPOSE);

    if (ngx_http_x402_add_header(r, "PAYMENT-RESPONSE",
                                 &ctx->payment_response)
        != NGX_OK
        || ngx_http_x402_add_header(r, "X-PAYMENT-RESPONSE",
                                    &ctx->payment_response_v1)
           != NGX_OK
        || ngx_http_x402_add_header(r, "Access-Control-Expose-Headers",
                                    &expose)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_x402_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t            *value;
    ngx_http_x402_ctx_t  *ctx;

    ctx = ngx_http_x402_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    value = (ngx_str_t *) ((u_char *) ctx + data);

    v->len = value->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = value->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_x402_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t    *var;
    ngx_http_x402_field_t  *f;

    for (f = ngx_http_x402_variables; f->name.len; f++) {
        var = ngx_http_add_variable(cf, &f->name,
                                    NGX_HTTP_VAR_NOCACHEABLE
                                    |NGX_HTTP_VAR_CHANGEABLE);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = ngx_http_x402_variable;
        var->data = f->offset;
    }

    return NGX_OK;
}


static void *
ngx_http_x402_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_x402_main_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_x402_main_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->sidecar = NULL;
     *     conf->recheck_default = 0;
     */

    return conf;
}


static void *
ngx_http_x402_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_x402_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_x402_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->sidecar = { 0, NULL };
     */

    conf->route = NGX_CONF_UNSET_PTR;
    conf->fail = NGX_CONF_UNSET_UINT;
    conf->keys = NGX_CONF_UNSET_PTR;
    conf->recheck = NGX_CONF_UNSET;
    conf->skew = NGX_CONF_UNSET;
    conf->report = NGX_CONF_UNSET_PTR;
    conf->recheck_peer = NGX_CONF_UNSET_PTR;
    conf->challenge_cache = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_x402_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_x402_loc_conf_t *prev = parent;
    ngx_http_x402_loc_conf_t *conf = child;

    ngx_http_x402_main_conf_t  *xmcf;

    ngx_conf_merge_ptr_value(conf->route, prev->route, NULL);
    ngx_conf_merge_str_value(conf->sidecar, prev->sidecar,
                             "/_x402/authorize");
    ngx_conf_merge_uint_value(conf->fail, prev->fail,
                              NGX_HTTP_X402_FAIL_CLOSED);
    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);
    ngx_conf_merge_sec_value(conf->recheck, prev->recheck, 0);
    ngx_conf_merge_sec_value(conf->skew, prev->skew,
                             NGX_HTTP_X402_LEASE_SKEW);
    ngx_conf_merge_ptr_value(conf->report, prev->report, NULL);
    ngx_conf_merge_ptr_value(conf->recheck_peer, prev->recheck_peer, NULL);
    ngx_conf_merge_value(conf->challenge_cache, prev->challenge_cache, 1);

    if (conf->route && conf->keys && conf->recheck
        && conf->recheck_peer == NULL)
    {
        /* the stream recheck goes to upstream x402_sidecar: see init */
        xmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_x402_module);
        xmcf->recheck_default = 1;
    }

    if (conf->sidecar.len == 0 || conf->sidecar.data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "x402_sidecar must be a URI starting with \"/\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_x402_init(ngx_conf_t *cf)
{
    ngx_uint_t                      i;
    ngx_http_handler_pt            *h;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_x402_main_conf_t      *xmcf;
    ngx_http_upstream_server_t     *server;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_upstream_main_conf_t  *umcf;

    /* the stream recheck's default peer: upstream x402_sidecar's first */

    xmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_x402_module);
    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);

    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (uscfp[i]->host.len != sizeof("x402_sidecar") - 1
            || ngx_strncmp(uscfp[i]->host.data, "x402_sidecar",
                           uscfp[i]->host.len) != 0
            || uscfp[i]->servers == NULL || uscfp[i]->servers->nelts == 0)
        {
            continue;
        }

        server = uscfp[i]->servers->elts;

        if (server[0].naddrs) {
            xmcf->sidecar = &server[0].addrs[0];
        }

        break;
    }

    if (xmcf->recheck_default && xmcf->sidecar == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "x402_lease_recheck rechecks open streams with "
                           "the first server of \"upstream x402_sidecar\", "
                           "which is not defined: define it or set "
                           "x402_recheck_sidecar");
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_x402_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_x402_log_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_x402_header_filter;

    return NGX_OK;
}


static void
ngx_http_x402_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_x402_cache_free();
    ngx_http_x402_challenge_free();
}


/* x402 ROUTE | off */

static char *
ngx_http_x402(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_x402_loc_conf_t *xlcf = conf;

    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    if (xlcf->route != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        xlcf->route = NULL;
        return NGX_CONF_OK;
    }

    xlcf->route = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (xlcf->route == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = xlcf->route;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* x402_fail closed: a payment gateway that is down lets nobody in */

static char *
ngx_http_x402_fail(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_x402_loc_conf_t *xlcf = conf;

    ngx_str_t  *value;

    if (xlcf->fail != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "closed") != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": x402 only fails "
                           "\"closed\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    xlcf->fail = NGX_HTTP_X402_FAIL_CLOSED;

    return NGX_CONF_OK;
}


/* x402_recheck_sidecar unix:PATH | ADDRESS:PORT */

static char *
ngx_http_x402_recheck_sidecar(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_x402_loc_conf_t *xlcf = conf;

    ngx_url_t   u;
    ngx_str_t  *value;

    if (xlcf->recheck_peer != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = value[1];
    u.no_resolve = 0;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (u.err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in x402_recheck_sidecar \"%V\"",
                               u.err, &u.url);
        }

        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "x402_recheck_sidecar \"%V\" has no address",
                           &u.url);
        return NGX_CONF_ERROR;
    }

    xlcf->recheck_peer = &u.addrs[0];

    return NGX_CONF_OK;
}


/* x402_lease_clock_skew TIME: the sidecar accepts 0 to 600 seconds */

static char *
ngx_http_x402_skew_bounds(ngx_conf_t *cf, void *post, void *data)
{
    time_t *sp = data;

    if (*sp > NGX_HTTP_X402_LEASE_SKEW_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "x402_lease_clock_skew must be at most %ds, as "
                           "the sidecar's leases.clock_skew_seconds",
                           NGX_HTTP_X402_LEASE_SKEW_MAX);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
