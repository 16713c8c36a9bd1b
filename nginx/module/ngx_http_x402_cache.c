
/*
 * x402-nginx: the lease tokens this worker has authenticated.
 *
 * An Ed25519 verification costs more than the whole auth subrequest it
 * replaces (tens of microseconds), and a lease is presented again and
 * again: so each worker keeps the claims of the tokens it has
 * authenticated, direct-mapped by a hash of the token, until a collision
 * replaces them.  A hit compares the whole token in constant time and
 * copies the claims into the request's pool; the checks that depend on
 * the request or the time (exp, nbf, host, route) run on every request.
 * Only authentic, well-formed, unexpired tokens are stored; a reload
 * starts new workers with an empty cache, so a removed key is forgotten.
 */


#include "ngx_http_x402.h"

#include <openssl/crypto.h>


#define NGX_HTTP_X402_CACHE_SLOTS  512


typedef struct {
    ngx_str_t                  token;
    ngx_http_x402_lease_t     *lease;        /* in the same allocation */
} ngx_http_x402_cached_t;


static size_t ngx_http_x402_lease_size(ngx_http_x402_lease_t *lease);
static ngx_http_x402_lease_t *ngx_http_x402_lease_pack(u_char *p,
    ngx_http_x402_lease_t *lease);
static ngx_http_x402_cached_t **ngx_http_x402_cache_slot(ngx_str_t *token);


static ngx_http_x402_cached_t  *ngx_http_x402_cache[NGX_HTTP_X402_CACHE_SLOTS];


/* NGX_OK: found, "*leasep" is a copy in "pool"; NGX_DECLINED: not found */

ngx_int_t
ngx_http_x402_cache_get(ngx_pool_t *pool, ngx_str_t *token,
    ngx_http_x402_lease_t **leasep)
{
    u_char                  *p;
    ngx_http_x402_cached_t  *cached;

    cached = *ngx_http_x402_cache_slot(token);

    if (cached == NULL || cached->token.len != token->len
        || CRYPTO_memcmp(cached->token.data, token->data, token->len) != 0)
    {
        return NGX_DECLINED;
    }

    p = ngx_palloc(pool, ngx_http_x402_lease_size(cached->lease));
    if (p == NULL) {
        return NGX_ERROR;
    }

    *leasep = ngx_http_x402_lease_pack(p, cached->lease);

    return NGX_OK;
}


void
ngx_http_x402_cache_put(ngx_str_t *token, ngx_http_x402_lease_t *lease,
    ngx_log_t *log)
{
    u_char                   *p;
    size_t                    size;
    ngx_http_x402_cached_t  **slot, *cached;

    size = sizeof(ngx_http_x402_cached_t) + token->len + NGX_ALIGNMENT
           + ngx_http_x402_lease_size(lease);

    p = ngx_alloc(size, log);
    if (p == NULL) {
        return;
    }

    cached = (ngx_http_x402_cached_t *) p;
    p += sizeof(ngx_http_x402_cached_t);

    cached->token.data = p;
    cached->token.len = token->len;
    p = ngx_cpymem(p, token->data, token->len);
    p = ngx_align_ptr(p, NGX_ALIGNMENT);

    cached->lease = ngx_http_x402_lease_pack(p, lease);

    slot = ngx_http_x402_cache_slot(token);

    if (*slot) {
        ngx_free(*slot);
    }

    *slot = cached;
}


static ngx_http_x402_cached_t **
ngx_http_x402_cache_slot(ngx_str_t *token)
{
    return &ngx_http_x402_cache[ngx_murmur_hash2(token->data, token->len)
                                % NGX_HTTP_X402_CACHE_SLOTS];
}


/*
 * A lease and everything it points to in one block that starts aligned:
 * the structure, the routes, then the bytes of every string.
 */

static size_t
ngx_http_x402_lease_size(ngx_http_x402_lease_t *lease)
{
    size_t      size;
    ngx_uint_t  i;

    size = ngx_align(sizeof(ngx_http_x402_lease_t), sizeof(void *))
           + lease->nroutes * sizeof(ngx_str_t)
           + lease->sub.len + lease->aud.len + lease->jti.len
           + lease->lease.len + lease->amount.len + lease->asset.len
           + lease->network.len + lease->payment_id.len + lease->tx.len;

    for (i = 0; i < lease->nroutes; i++) {
        size += lease->routes[i].len;
    }

    return size;
}


static ngx_http_x402_lease_t *
ngx_http_x402_lease_pack(u_char *p, ngx_http_x402_lease_t *lease)
{
    ngx_uint_t              i;
    ngx_http_x402_lease_t  *copy;

    copy = (ngx_http_x402_lease_t *) p;
    *copy = *lease;
    p += ngx_align(sizeof(ngx_http_x402_lease_t), sizeof(void *));

    copy->routes = (ngx_str_t *) p;
    p += lease->nroutes * sizeof(ngx_str_t);

#define ngx_http_x402_pack(dst, src)                                          \
    (dst).len = (src).len;                                                    \
    (dst).data = (src).len ? p : NULL;                                        \
    p = ngx_cpymem(p, (src).data, (src).len)

    ngx_http_x402_pack(copy->sub, lease->sub);
    ngx_http_x402_pack(copy->aud, lease->aud);
    ngx_http_x402_pack(copy->jti, lease->jti);
    ngx_http_x402_pack(copy->lease, lease->lease);
    ngx_http_x402_pack(copy->amount, lease->amount);
    ngx_http_x402_pack(copy->asset, lease->asset);
    ngx_http_x402_pack(copy->network, lease->network);
    ngx_http_x402_pack(copy->payment_id, lease->payment_id);
    ngx_http_x402_pack(copy->tx, lease->tx);

    for (i = 0; i < lease->nroutes; i++) {
        ngx_http_x402_pack(copy->routes[i], lease->routes[i]);
    }

#undef ngx_http_x402_pack

    return copy;
}


/* the worker exits: the module may be unloaded with the cycle */

void
ngx_http_x402_cache_free(void)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_X402_CACHE_SLOTS; i++) {
        if (ngx_http_x402_cache[i]) {
            ngx_free(ngx_http_x402_cache[i]);
            ngx_http_x402_cache[i] = NULL;
        }
    }
}
