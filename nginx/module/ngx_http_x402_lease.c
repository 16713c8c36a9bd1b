
/*
 * x402-nginx: lease tokens checked inside nginx.
 *
 * A lease is a compact JWS (RFC 7515/7519), base64url without padding:
 * header {"alg":"HS256"|"EdDSA","typ":"JWT","kid":KID}, flat claims.  The
 * keys come from the x402_lease_keys file, one "KID ALG KEY" per line.  The
 * algorithm a token may use is the one its key is listed with, so an HS256
 * token can never be checked against an Ed25519 key or the reverse.  The
 * claims are read by the scanner in ngx_http_x402_json.c; the refusal
 * reasons are the sidecar's LeaseRefusal codes (Sources/X402/Lease/).
 */


#include "ngx_http_x402.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>


#define NGX_HTTP_X402_KEYS_MAX       (1024 * 1024)


static ngx_int_t ngx_http_x402_keys_parse(ngx_conf_t *cf,
    ngx_http_x402_keys_t *keys, u_char *p, u_char *last);
static void ngx_http_x402_keys_cleanup(void *data);
static ngx_http_x402_key_t *ngx_http_x402_key_find(
    ngx_http_x402_keys_t *keys, ngx_str_t *kid);
static ngx_int_t ngx_http_x402_base64url(ngx_pool_t *pool, u_char *p,
    size_t len, ngx_str_t *out);
static ngx_int_t ngx_http_x402_jose_header(ngx_pool_t *pool,
    ngx_str_t *token, ngx_str_t *alg, ngx_str_t *kid);
static ngx_int_t ngx_http_x402_signature_ok(ngx_http_x402_key_t *key,
    u_char *input, size_t len, ngx_str_t *sig);
static ngx_int_t ngx_http_x402_authenticate(ngx_http_request_t *r,
    ngx_http_x402_keys_t *keys, ngx_str_t *token,
    ngx_http_x402_lease_t **leasep, ngx_str_t *reason);
static ngx_int_t ngx_http_x402_claims(ngx_array_t *fields,
    ngx_http_x402_lease_t *lease, ngx_str_t *reason);
static ngx_int_t ngx_http_x402_lease_check(ngx_http_request_t *r,
    ngx_http_x402_lease_t *lease, time_t skew, ngx_str_t *route,
    ngx_str_t *reason);

static ngx_uint_t ngx_http_x402_is_kid(ngx_str_t *s);
static ngx_uint_t ngx_http_x402_is_hex(ngx_str_t *s, size_t prefix,
    size_t len);
static ngx_uint_t ngx_http_x402_is_printable(ngx_str_t *s);


/* x402_lease_keys FILE */

char *
ngx_http_x402_lease_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_x402_loc_conf_t *xlcf = conf;

    u_char                *buf;
    ssize_t                n;
    ngx_str_t             *value;
    ngx_file_t             file;
    ngx_file_info_t        fi;
    ngx_pool_cleanup_t    *cln;
    ngx_http_x402_keys_t  *keys;

    if (xlcf->keys != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        xlcf->keys = NULL;
        return NGX_CONF_OK;
    }

    keys = ngx_pcalloc(cf->pool, sizeof(ngx_http_x402_keys_t));
    if (keys == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_array_init(&keys->keys, cf->pool, 4, sizeof(ngx_http_x402_key_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_x402_keys_cleanup;
    cln->data = keys;

    keys->file = value[1];

    if (ngx_conf_full_name(cf->cycle, &keys->file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = keys->file;
    file.log = cf->log;

    file.fd = ngx_open_file(keys->file.data, NGX_FILE_RDONLY,
                            NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &keys->file);
        return NGX_CONF_ERROR;
    }

    buf = NULL;
    n = NGX_ERROR;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", &keys->file);
        goto done;
    }

    if (ngx_file_size(&fi) > NGX_HTTP_X402_KEYS_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "lease key file \"%V\" is too large",
                           &keys->file);
        goto done;
    }

    buf = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (buf == NULL) {
        goto done;
    }

    n = ngx_read_file(&file, buf, (size_t) ngx_file_size(&fi), 0);

done:

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", &keys->file);
    }

    if (n == NGX_ERROR || buf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_x402_keys_parse(cf, keys, buf, buf + n) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    xlcf->keys = keys;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_x402_keys_parse(ngx_conf_t *cf, ngx_http_x402_keys_t *keys,
    u_char *p, u_char *last)
{
    u_char               *eol, *s;
    ngx_str_t             word[4], raw;
    ngx_uint_t            line, nwords;
    ngx_http_x402_key_t  *key;

    for (line = 1; p < last; line++, p = eol + 1) {

        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        nwords = 0;
        s = p;

        while (s < eol) {
            while (s < eol && (*s == ' ' || *s == '\t' || *s == '\r')) {
                s++;
            }

            if (s == eol || *s == '#') {
                break;
            }

            if (nwords == 4) {
                break;
            }

            word[nwords].data = s;

            while (s < eol && *s != ' ' && *s != '\t' && *s != '\r') {
                s++;
            }

            word[nwords].len = s - word[nwords].data;
            nwords++;
        }

        if (nwords == 0) {
            continue;
        }

        if (nwords != 3) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%V:%ui: expected \"KID ALG KEY\"",
                               &keys->file, line);
            return NGX_ERROR;
        }

        if (!ngx_http_x402_is_kid(&word[0])) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%V:%ui: a key id is 1 to 64 of "
                               "[A-Za-z0-9._-], not \"%V\"",
                               &keys->file, line, &word[0]);
            return NGX_ERROR;
        }

        if (ngx_http_x402_key_find(keys, &word[0]) != NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%V:%ui: duplicate key id \"%V\"",
                               &keys->file, line, &word[0]);
            return NGX_ERROR;
        }

        if (ngx_http_x402_base64url(cf->pool, word[2].data, word[2].len,
                                    &raw)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%V:%ui: the key is not base64url "
                               "without padding", &keys->file, line);
            return NGX_ERROR;
        }

        key = ngx_array_push(&keys->keys);
        if (key == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(key, sizeof(ngx_http_x402_key_t));
        key->kid = word[0];

        if (word[1].len == 5 && ngx_strncmp(word[1].data, "HS256", 5) == 0) {

            if (raw.len < 32) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "%V:%ui: an HS256 secret needs at "
                                   "least 32 bytes", &keys->file, line);
                return NGX_ERROR;
            }

            key->alg = NGX_HTTP_X402_ALG_HS256;
            key->secret = raw;

        } else if (word[1].len == 5
                   && ngx_strncmp(word[1].data, "EdDSA", 5) == 0)
        {
            if (raw.len != 32) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "%V:%ui: an EdDSA key is the 32-byte "
                                   "raw Ed25519 public key",
                                   &keys->file, line);
                return NGX_ERROR;
            }

            key->alg = NGX_HTTP_X402_ALG_EDDSA;
            key->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
                                                    raw.data, raw.len);
            if (key->pkey == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "%V:%ui: EVP_PKEY_new_raw_public_key() "
                                   "failed", &keys->file, line);
                return NGX_ERROR;
            }

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%V:%ui: unsupported algorithm \"%V\" "
                               "(HS256 or EdDSA)", &keys->file, line,
                               &word[1]);
            return NGX_ERROR;
        }
    }

    if (keys->keys.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no keys in \"%V\"", &keys->file);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_x402_keys_cleanup(void *data)
{
    ngx_http_x402_keys_t *keys = data;

    ngx_uint_t            i;
    ngx_http_x402_key_t  *key;

    key = keys->keys.elts;

    for (i = 0; i < keys->keys.nelts; i++) {
        if (key[i].pkey) {
            EVP_PKEY_free(key[i].pkey);
            key[i].pkey = NULL;
        }

        if (key[i].secret.len) {
            OPENSSL_cleanse(key[i].secret.data, key[i].secret.len);
        }
    }
}


static ngx_http_x402_key_t *
ngx_http_x402_key_find(ngx_http_x402_keys_t *keys, ngx_str_t *kid)
{
    ngx_uint_t            i;
    ngx_http_x402_key_t  *key;

    key = keys->keys.elts;

    for (i = 0; i < keys->keys.nelts; i++) {
        if (key[i].kid.len == kid->len
            && ngx_strncmp(key[i].kid.data, kid->data, kid->len) == 0)
        {
            return &key[i];
        }
    }

    return NULL;
}


/*
 * The request's lease token: X-X402-Lease, or an "Authorization: Bearer"
 * JWT whose kid is one of ours (any other bearer token is the backend's).
 * NGX_OK: found; NGX_DECLINED: none; NGX_BUSY: sent twice.
 */

ngx_int_t
ngx_http_x402_lease_token(ngx_http_request_t *r, ngx_http_x402_keys_t *keys,
    ngx_str_t *token, ngx_table_elt_t **header)
{
    ngx_str_t         alg, kid, bearer;
    ngx_uint_t        i, found;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    found = 0;
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

        if (h[i].key.len == sizeof("X-X402-Lease") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "X-X402-Lease",
                               sizeof("X-X402-Lease") - 1) == 0)
        {
            if (found++) {
                return NGX_BUSY;
            }

            *token = h[i].value;
            *header = &h[i];
        }
    }

    if (found) {
        return NGX_OK;
    }

    h = r->headers_in.authorization;

    if (h == NULL || h->value.len <= sizeof("Bearer ") - 1
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ",
                           sizeof("Bearer ") - 1) != 0)
    {
        return NGX_DECLINED;
    }

    bearer.data = h->value.data + sizeof("Bearer ") - 1;
    bearer.len = h->value.len - (sizeof("Bearer ") - 1);

    while (bearer.len && bearer.data[0] == ' ') {
        bearer.data++;
        bearer.len--;
    }

    if (bearer.len > NGX_HTTP_X402_LEASE_MAX
        || ngx_http_x402_jose_header(r->pool, &bearer, &alg, &kid) != NGX_OK
        || ngx_http_x402_key_find(keys, &kid) == NULL)
    {
        return NGX_DECLINED;
    }

    *token = bearer;
    *header = h;

    return NGX_OK;
}


/*
 * NGX_OK: the lease is valid for this request and its claims are in
 * "*leasep" (in the request's pool); NGX_DECLINED: it is not, "reason"
 * says why; NGX_ERROR: no memory.  A token this worker has authenticated
 * before is found in the cache (ngx_http_x402_cache.c): no base64, JSON
 * or signature again, only the checks that depend on the request.
 */

ngx_int_t
ngx_http_x402_lease_verify(ngx_http_request_t *r, ngx_http_x402_keys_t *keys,
    time_t skew, ngx_str_t *token, ngx_str_t *route,
    ngx_http_x402_lease_t **leasep, ngx_str_t *reason)
{
    ngx_int_t               rc;
    ngx_http_x402_lease_t  *lease;

    if (token->len > NGX_HTTP_X402_LEASE_MAX) {
        ngx_str_set(reason, "lease_malformed");
        return NGX_DECLINED;
    }

    rc = ngx_http_x402_cache_get(r->pool, token, &lease);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        rc = ngx_http_x402_authenticate(r, keys, token, &lease, reason);
        if (rc != NGX_OK) {
            return rc;
        }

        if (lease->exp + skew > ngx_time()) {
            ngx_http_x402_cache_put(token, lease, r->connection->log);
        }
    }

    *leasep = lease;

    return ngx_http_x402_lease_check(r, lease, skew, route, reason);
}


/* shape, header, key, signature, then the claims: as the sidecar */

static ngx_int_t
ngx_http_x402_authenticate(ngx_http_request_t *r, ngx_http_x402_keys_t *keys,
    ngx_str_t *token, ngx_http_x402_lease_t **leasep, ngx_str_t *reason)
{
    u_char                 *dot1, *dot2, *last;
    ngx_int_t               rc;
    ngx_str_t               alg, kid, sig, claims;
    ngx_uint_t              want;
    ngx_array_t             fields;
    ngx_http_x402_key_t    *key;
    ngx_http_x402_lease_t  *lease;

    last = token->data + token->len;

    dot1 = ngx_strlchr(token->data, last, '.');
    dot2 = dot1 ? ngx_strlchr(dot1 + 1, last, '.') : NULL;

    /* as the sidecar: an empty signature is refused after the header */

    if (dot2 == NULL || ngx_strlchr(dot2 + 1, last, '.') != NULL
        || dot1 == token->data || dot2 == dot1 + 1)
    {
        ngx_str_set(reason, "lease_malformed");
        return NGX_DECLINED;
    }

    rc = ngx_http_x402_jose_header(r->pool, token, &alg, &kid);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_ABORT) {
        ngx_str_set(reason, "lease_unsupported_alg");
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        ngx_str_set(reason, "lease_malformed");
        return NGX_DECLINED;
    }

    want = (alg.len == 5 && ngx_strncmp(alg.data, "HS256", 5) == 0)
           ? NGX_HTTP_X402_ALG_HS256 : NGX_HTTP_X402_ALG_EDDSA;

    key = ngx_http_x402_key_find(keys, &kid);
    if (key == NULL) {
        ngx_str_set(reason, "lease_unknown_key");
        return NGX_DECLINED;
    }

    if (key->alg != want) {
        ngx_str_set(reason, "lease_alg_mismatch");
        return NGX_DECLINED;
    }

    rc = ngx_http_x402_base64url(r->pool, dot2 + 1, last - dot2 - 1, &sig);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        ngx_str_set(reason, "lease_malformed");
        return NGX_DECLINED;
    }

    if (ngx_http_x402_signature_ok(key, token->data, dot2 - token->data,
                                   &sig)
        != NGX_OK)
    {
        ngx_str_set(reason, "lease_bad_signature");
        return NGX_DECLINED;
    }

    /* signed by one of our keys from here on; still parsed strictly */

    rc = ngx_http_x402_base64url(r->pool, dot1 + 1, dot2 - dot1 - 1,
                                 &claims);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&fields, r->pool, 16, sizeof(ngx_http_x402_json_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rc != NGX_OK
        || ngx_http_x402_json_parse(r->pool, &claims, &fields) != NGX_OK)
    {
        ngx_str_set(reason, "lease_malformed");
        return NGX_DECLINED;
    }

    lease = ngx_pcalloc(r->pool, sizeof(ngx_http_x402_lease_t));
    if (lease == NULL) {
        return NGX_ERROR;
    }

    *leasep = lease;

    return ngx_http_x402_claims(&fields, lease, reason);
}


/* the claims of an authentic token, whatever the request */

static ngx_int_t
ngx_http_x402_claims(ngx_array_t *fields, ngx_http_x402_lease_t *lease,
    ngx_str_t *reason)
{
    ngx_http_x402_json_t  *f;

    /* claims of the wrong type or shape are "lease_malformed" */

    ngx_str_set(reason, "lease_malformed");

    f = ngx_http_x402_json_get(fields, "iss", NGX_HTTP_X402_JSON_STRING);
    if (f == NULL) {
        return NGX_DECLINED;
    }

    if (f->value.len != sizeof("x402-nginx") - 1
        || ngx_strncmp(f->value.data, "x402-nginx", f->value.len) != 0)
    {
        ngx_str_set(reason, "lease_wrong_issuer");
        return NGX_DECLINED;
    }

#define ngx_http_x402_claim(name, field)                                      \
    f = ngx_http_x402_json_get(fields, name, NGX_HTTP_X402_JSON_STRING);      \
    if (f == NULL || !ngx_http_x402_is_printable(&f->value)) {                \
        return NGX_DECLINED;                                                  \
    }                                                                         \
    lease->field = f->value

    ngx_http_x402_claim("sub", sub);
    ngx_http_x402_claim("aud", aud);
    ngx_http_x402_claim("jti", jti);
    ngx_http_x402_claim("x402_lease", lease);
    ngx_http_x402_claim("x402_amount", amount);
    ngx_http_x402_claim("x402_asset", asset);
    ngx_http_x402_claim("x402_network", network);
    ngx_http_x402_claim("x402_payment_id", payment_id);

#undef ngx_http_x402_claim

    if (!ngx_http_x402_is_hex(&lease->sub, 2, 40)
        || ngx_strncmp(lease->sub.data, "0x", 2) != 0
        || !ngx_http_x402_is_hex(&lease->jti, 0, 32)
        || !ngx_http_x402_is_decimal(&lease->amount)
        || ngx_strlchr(lease->network.data,
                       lease->network.data + lease->network.len, ':')
           == NULL)
    {
        return NGX_DECLINED;
    }

    f = ngx_http_x402_json_get(fields, "x402_tx", 0);
    if (f) {
        if (f->type != NGX_HTTP_X402_JSON_STRING
            || !ngx_http_x402_is_printable(&f->value))
        {
            return NGX_DECLINED;
        }

        lease->tx = f->value;
    }

    if (ngx_http_x402_json_time(fields, "iat", &lease->iat) != NGX_OK
        || ngx_http_x402_json_time(fields, "nbf", &lease->nbf) != NGX_OK
        || ngx_http_x402_json_time(fields, "exp", &lease->exp) != NGX_OK
        || lease->iat < 0 || lease->nbf < 0 || lease->exp < 0)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_x402_json_int(fields, "x402_max_requests",
                               &lease->max_requests)
        != NGX_OK
        || ngx_http_x402_json_int(fields, "x402_max_concurrent",
                                  &lease->max_concurrent)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    f = ngx_http_x402_json_get(fields, "x402_routes",
                               NGX_HTTP_X402_JSON_ARRAY);
    if (f == NULL || f->items->nelts == 0) {
        return NGX_DECLINED;
    }

    lease->routes = f->items->elts;
    lease->nroutes = f->items->nelts;

    return NGX_OK;
}


/*
 * The checks that depend on the request and the time.  The clock skew is
 * the sidecar's (LeaseToken.check): valid until exp + skew and from
 * nbf - skew; iat, which the sidecar issues equal to nbf, is held to the
 * same bound.
 */

static ngx_int_t
ngx_http_x402_lease_check(ngx_http_request_t *r, ngx_http_x402_lease_t *lease,
    time_t skew, ngx_str_t *route, ngx_str_t *reason)
{
    time_t      now;
    ngx_uint_t  i;

    now = ngx_time();

    if (now >= lease->exp + skew) {
        ngx_str_set(reason, "lease_expired");
        return NGX_DECLINED;
    }

    if (lease->nbf > now + skew || lease->iat > now + skew) {
        ngx_str_set(reason, "lease_not_yet_valid");
        return NGX_DECLINED;
    }

    if (r->headers_in.server.len == 0
        || lease->aud.len != r->headers_in.server.len
        || ngx_strncmp(lease->aud.data, r->headers_in.server.data,
                       lease->aud.len) != 0)
    {
        ngx_str_set(reason, "lease_wrong_host");
        return NGX_DECLINED;
    }

    for (i = 0; i < lease->nroutes; i++) {
        if (lease->routes[i].len == route->len
            && ngx_strncmp(lease->routes[i].data, route->data, route->len)
               == 0)
        {
            return NGX_OK;
        }
    }

    ngx_str_set(reason, "lease_wrong_route");

    return NGX_DECLINED;
}


/* base64url without padding, every character from the alphabet */

static ngx_int_t
ngx_http_x402_base64url(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *out)
{
    ngx_str_t  src;

    if (len == 0 || len > NGX_HTTP_X402_LEASE_MAX) {
        return NGX_DECLINED;
    }

    if (ngx_strlchr(p, p + len, '=') != NULL) {
        return NGX_DECLINED;
    }

    out->data = ngx_pnalloc(pool, ngx_base64_decoded_length(len) + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    src.data = p;
    src.len = len;

    if (ngx_decode_base64url(out, &src) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The JOSE header's alg and kid, as the sidecar reads it (and in its
 * order, so that both give the same reason): a string alg, HS256 or EdDSA
 * (else NGX_ABORT: unsupported, whatever else the header holds), then no
 * parameter but alg, typ (if present, "JWT") and kid (1-64 of
 * [A-Za-z0-9._-]).
 */

static ngx_int_t
ngx_http_x402_jose_header(ngx_pool_t *pool, ngx_str_t *token, ngx_str_t *alg,
    ngx_str_t *kid)
{
    u_char                *dot;
    ngx_int_t              rc;
    ngx_str_t              text;
    ngx_uint_t             i;
    ngx_array_t            fields;
    ngx_http_x402_json_t  *f;

    dot = ngx_strlchr(token->data, token->data + token->len, '.');
    if (dot == NULL) {
        return NGX_DECLINED;
    }

    rc = ngx_http_x402_base64url(pool, token->data, dot - token->data, &text);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_array_init(&fields, pool, 4, sizeof(ngx_http_x402_json_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_x402_json_parse(pool, &text, &fields) != NGX_OK) {
        return NGX_DECLINED;
    }

    f = ngx_http_x402_json_get(&fields, "alg", NGX_HTTP_X402_JSON_STRING);
    if (f == NULL) {
        return NGX_DECLINED;
    }

    *alg = f->value;

    if (!(alg->len == 5 && (ngx_strncmp(alg->data, "HS256", 5) == 0
                            || ngx_strncmp(alg->data, "EdDSA", 5) == 0)))
    {
        return NGX_ABORT;
    }

    f = fields.elts;

    for (i = 0; i < fields.nelts; i++) {
        if (!((f[i].key.len == 3
               && (ngx_strncmp(f[i].key.data, "alg", 3) == 0
                   || ngx_strncmp(f[i].key.data, "typ", 3) == 0
                   || ngx_strncmp(f[i].key.data, "kid", 3) == 0))))
        {
            return NGX_DECLINED;
        }
    }

    f = ngx_http_x402_json_get(&fields, "typ", 0);
    if (f && (f->type != NGX_HTTP_X402_JSON_STRING || f->value.len != 3
              || ngx_strncmp(f->value.data, "JWT", 3) != 0))
    {
        return NGX_DECLINED;
    }

    f = ngx_http_x402_json_get(&fields, "kid", NGX_HTTP_X402_JSON_STRING);
    if (f == NULL || !ngx_http_x402_is_kid(&f->value)) {
        return NGX_DECLINED;
    }

    *kid = f->value;

    return NGX_OK;
}


static ngx_int_t
ngx_http_x402_signature_ok(ngx_http_x402_key_t *key, u_char *input,
    size_t len, ngx_str_t *sig)
{
    int            ok;
    u_char         md[EVP_MAX_MD_SIZE];
    unsigned int   mdlen;
    EVP_MD_CTX    *ctx;

    if (key->alg == NGX_HTTP_X402_ALG_HS256) {

        if (sig->len != 32) {
            return NGX_DECLINED;
        }

        if (HMAC(EVP_sha256(), key->secret.data, (int) key->secret.len,
                 input, len, md, &mdlen)
            == NULL)
        {
            return NGX_DECLINED;
        }

        return (mdlen == 32 && CRYPTO_memcmp(md, sig->data, 32) == 0)
               ? NGX_OK : NGX_DECLINED;
    }

    if (sig->len != 64) {
        return NGX_DECLINED;
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return NGX_DECLINED;
    }

    ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key->pkey) == 1
         && EVP_DigestVerify(ctx, sig->data, sig->len, input, len) == 1;

    EVP_MD_CTX_free(ctx);

    return ok ? NGX_OK : NGX_DECLINED;
}



/* a key id: 1 to 64 of [A-Za-z0-9._-], as the sidecar accepts */

static ngx_uint_t
ngx_http_x402_is_kid(ngx_str_t *s)
{
    size_t  i;
    u_char  ch;

    if (s->len == 0 || s->len > 64) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        ch = s->data[i];

        if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z')
              || (ch >= 'a' && ch <= 'z') || ch == '.' || ch == '_'
              || ch == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* "prefix" characters (not checked) then exactly "len" lowercase hex */

static ngx_uint_t
ngx_http_x402_is_hex(ngx_str_t *s, size_t prefix, size_t len)
{
    size_t  i;

    if (s->len != prefix + len) {
        return 0;
    }

    for (i = prefix; i < s->len; i++) {
        if (!((s->data[i] >= '0' && s->data[i] <= '9')
              || (s->data[i] >= 'a' && s->data[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}


/* safe in a request header: visible ASCII and spaces, not empty */

static ngx_uint_t
ngx_http_x402_is_printable(ngx_str_t *s)
{
    size_t  i;

    if (s->len == 0 || s->len > 256) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < 0x20 || s->data[i] > 0x7e) {
            return 0;
        }
    }

    return 1;
}
