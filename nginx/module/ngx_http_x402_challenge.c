
/*
 * x402-nginx: the challenges this worker has been told it may repeat.
 *
 * The 402 of an unpaid request on a plain route is a pure function of the
 * route, method, scheme, host and URI, and a flood of such requests (a
 * crawler, a client that never pays) would otherwise cost a round trip to
 * the sidecar each.  The sidecar says which answers qualify: it marks them
 * "X-Accel-Expires: N" (server.decision_cache_seconds), never a 402 to a
 * request with a payment, lease or sign-in proof, nor one on a route with
 * rate limits, a free quota or Sign-In-With-X.  The module keeps such an
 * answer for N seconds (1 to 60, to the millisecond), direct-mapped by a
 * hash of its key, and answers the same request from it without asking.
 *
 * Only requests that carry nothing the sidecar could read as a payment,
 * lease or proof look up or store: no PAYMENT-SIGNATURE, X-PAYMENT,
 * SIGN-IN-WITH-X, X-X402-Lease or Authorization header, no "x402_lease="
 * in the URI, and a Host header (without one the sidecar sees nginx's
 * $host, which the key does not hold).  Memory is bounded: a fixed number
 * of slots, an answer larger than NGX_HTTP_X402_CHALLENGE_MAX is not kept,
 * a replaced or expired entry is freed at once, the rest at worker exit.
 */


#include "ngx_http_x402.h"


#define NGX_HTTP_X402_CHALLENGE_SLOTS  1024

/* an entry, key and answer together, is at most this large */
#define NGX_HTTP_X402_CHALLENGE_MAX    16384

/* "X-Accel-Expires" is honoured from 1 to this many seconds */
#define NGX_HTTP_X402_CHALLENGE_TTL    60


typedef struct {
    ngx_msec_t                 expires;      /* ngx_current_msec based */
    ngx_str_t                  key;
    ngx_str_t                  reason;
    ngx_str_t                  required;
    ngx_str_t                  challenge;
} ngx_http_x402_challenge_t;


static ngx_int_t ngx_http_x402_challenge_key(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx);
static ngx_http_x402_challenge_t **
    ngx_http_x402_challenge_slot(ngx_str_t *key);


static ngx_http_x402_challenge_t
    *ngx_http_x402_challenges[NGX_HTTP_X402_CHALLENGE_SLOTS];


/* what makes a request more than unpaid: the cache is not for it */

static ngx_str_t  ngx_http_x402_not_unpaid[] = {
    ngx_string("payment-signature"),
    ngx_string("x-payment"),
    ngx_string("sign-in-with-x"),
    ngx_string("x-x402-lease"),
    ngx_string("authorization"),
    ngx_null_string
};


/*
 * NGX_OK: found, the 402 is in "ctx" (copied into the request's pool);
 * NGX_DECLINED: not found, or the request is not an unpaid one (then
 * $x402_cache stays empty and nothing will be stored); NGX_ERROR
 */

ngx_int_t
ngx_http_x402_challenge_get(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx)
{
    u_char                      *p;
    ngx_int_t                    rc;
    ngx_http_x402_challenge_t  **slot, *cached;

    rc = ngx_http_x402_challenge_key(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_str_set(&ctx->cache, "MISS");

    slot = ngx_http_x402_challenge_slot(&ctx->cache_key);
    cached = *slot;

    if (cached == NULL || cached->key.len != ctx->cache_key.len
        || ngx_memcmp(cached->key.data, ctx->cache_key.data,
                      ctx->cache_key.len) != 0)
    {
        return NGX_DECLINED;
    }

    if ((ngx_msec_int_t) (cached->expires - ngx_current_msec) <= 0) {
        ngx_free(cached);
        *slot = NULL;
        return NGX_DECLINED;
    }

    /*
     * copies: the answer may be sent, and the variables logged, after
     * another request has replaced the entry
     */

    p = ngx_pnalloc(r->pool, cached->reason.len + cached->required.len
                             + cached->challenge.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

#define ngx_http_x402_unpack(dst, src)                                        \
    (dst).len = (src).len;                                                    \
    (dst).data = p;                                                           \
    p = ngx_cpymem(p, (src).data, (src).len)

    ngx_http_x402_unpack(ctx->reason, cached->reason);
    ngx_http_x402_unpack(ctx->required, cached->required);
    ngx_http_x402_unpack(ctx->challenge, cached->challenge);

#undef ngx_http_x402_unpack

    ngx_str_set(&ctx->x402_status, "402");
    ngx_str_set(&ctx->cache, "HIT");
    ctx->cached = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "x402 challenge cache hit, %M ms left",
                   cached->expires - ngx_current_msec);

    return NGX_OK;
}


/*
 * After a miss: keep the sidecar's 402 if it says "X-Accel-Expires: N".
 * Failing to keep it only costs the next request a subrequest.
 */

void
ngx_http_x402_challenge_put(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx)
{
    u_char                      *p;
    size_t                       size;
    ngx_int_t                    ttl;
    ngx_table_elt_t             *h;
    ngx_http_x402_challenge_t  **slot, *cached;

    if (ctx->cache_key.len == 0 || ctx->subrequest == NULL
        || ctx->x402_status.len != 3
        || ngx_strncmp(ctx->x402_status.data, "402", 3) != 0)
    {
        return;
    }

    h = ngx_http_x402_answer_header(ctx->subrequest, "x-accel-expires");

    if (h == NULL || h->value.len == 0 || h->value.len > 2) {
        return;
    }

    ttl = ngx_atoi(h->value.data, h->value.len);

    if (ttl < 1 || ttl > NGX_HTTP_X402_CHALLENGE_TTL) {
        return;
    }

    size = sizeof(ngx_http_x402_challenge_t) + ctx->cache_key.len
           + ctx->reason.len + ctx->required.len + ctx->challenge.len;

    if (size > NGX_HTTP_X402_CHALLENGE_MAX) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "x402 challenge of %uz bytes not cached", size);
        return;
    }

    p = ngx_alloc(size, r->connection->log);
    if (p == NULL) {
        return;
    }

    cached = (ngx_http_x402_challenge_t *) p;
    p += sizeof(ngx_http_x402_challenge_t);

    cached->expires = ngx_current_msec + (ngx_msec_t) ttl * 1000;

#define ngx_http_x402_pack(dst, src)                                          \
    (dst).len = (src).len;                                                    \
    (dst).data = p;                                                           \
    p = ngx_cpymem(p, (src).data, (src).len)

    ngx_http_x402_pack(cached->key, ctx->cache_key);
    ngx_http_x402_pack(cached->reason, ctx->reason);
    ngx_http_x402_pack(cached->required, ctx->required);
    ngx_http_x402_pack(cached->challenge, ctx->challenge);

#undef ngx_http_x402_pack

    slot = ngx_http_x402_challenge_slot(&ctx->cache_key);

    if (*slot) {
        ngx_free(*slot);
    }

    *slot = cached;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "x402 challenge cached for %i s", ttl);
}


/*
 * The key: the route, method, scheme, Host header and unparsed URI, what
 * the sidecar location sends as X-X402-Route, X-Original-Method,
 * X-Forwarded-Proto, X-Forwarded-Host and X-Original-URI, each after its
 * length.  NGX_DECLINED: the request is not an unpaid one.
 */

static ngx_int_t
ngx_http_x402_challenge_key(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx)
{
    u_char           *p;
    size_t            len;
    ngx_str_t         scheme, *name;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    /* the sidecar looks for a token anywhere in X-Original-URI */

    if (r->headers_in.host == NULL
        || ngx_strlcasestrn(r->unparsed_uri.data,
                            r->unparsed_uri.data + r->unparsed_uri.len,
                            (u_char *) "x402_lease=",
                            sizeof("x402_lease=") - 2)
           != NULL)
    {
        return NGX_DECLINED;
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

        for (name = ngx_http_x402_not_unpaid; name->len; name++) {
            if (h[i].key.len == name->len
                && ngx_strncasecmp(h[i].key.data, name->data, name->len)
                   == 0)
            {
                return NGX_DECLINED;
            }
        }
    }

    ngx_str_set(&scheme, "http");

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_set(&scheme, "https");
    }
#endif

    len = 5 * (NGX_SIZE_T_LEN + 1) + ctx->route.len + r->method_name.len
          + scheme.len + r->headers_in.host->value.len + r->unparsed_uri.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->cache_key.data = p;

    p = ngx_sprintf(p, "%uz:%V%uz:%V%uz:%V%uz:%V%uz:%V",
                    ctx->route.len, &ctx->route,
                    r->method_name.len, &r->method_name,
                    scheme.len, &scheme,
                    r->headers_in.host->value.len, &r->headers_in.host->value,
                    r->unparsed_uri.len, &r->unparsed_uri);

    ctx->cache_key.len = p - ctx->cache_key.data;

    return NGX_OK;
}


static ngx_http_x402_challenge_t **
ngx_http_x402_challenge_slot(ngx_str_t *key)
{
    return &ngx_http_x402_challenges[ngx_murmur_hash2(key->data, key->len)
                                     % NGX_HTTP_X402_CHALLENGE_SLOTS];
}


/* the worker exits: the module may be unloaded with the cycle */

void
ngx_http_x402_challenge_free(void)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_X402_CHALLENGE_SLOTS; i++) {
        if (ngx_http_x402_challenges[i]) {
            ngx_free(ngx_http_x402_challenges[i]);
            ngx_http_x402_challenges[i] = NULL;
        }
    }
}
