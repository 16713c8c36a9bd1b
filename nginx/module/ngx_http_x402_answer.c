
/*
 * x402-nginx: the answers the module sends itself.
 *
 * The sidecar answers 401 or 403 with the status the client must see in
 * X-X402-Status (README, "The /authorize contract"); here that becomes the
 * real 402 (PAYMENT-REQUIRED, the v1 JSON body), 429 (Retry-After,
 * RateLimit, RateLimit-Policy), 403, 503 or 500, sent whole, and the
 * request is finished: the access handler then returns NGX_DONE, never
 * NGX_OK, so no later phase and no backend runs.  No error_page, no named
 * location, and "satisfy any" cannot turn a refusal into an allow.
 */


#include "ngx_http_x402.h"


#define NGX_HTTP_X402_PAYMENT_REQUIRED  402

#define NGX_HTTP_X402_EXPOSE_LIMITS                                           \
    "Retry-After, RateLimit, RateLimit-Policy"


static ngx_int_t ngx_http_x402_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body);
static ngx_int_t ngx_http_x402_json_text(ngx_str_t *text);


/* the sidecar's refusal (or our own 500), answered to the client */

ngx_int_t
ngx_http_x402_refuse(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx)
{
    u_char              *p;
    ngx_str_t            body, reason, expose;
    ngx_uint_t           status;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *sr;

    sr = ctx->subrequest;
    ctx->decided = 1;

    status = ngx_atoi(ctx->x402_status.data, ctx->x402_status.len);

    reason = ctx->reason;

    if (ngx_http_x402_json_text(&reason) != NGX_OK) {
        ngx_str_set(&reason, "");
    }

    if (ngx_http_x402_add_header(r, "Cache-Control",
                                 &(ngx_str_t) ngx_string("no-store"))
        != NGX_OK
        || ngx_http_x402_add_header(r, "Access-Control-Allow-Origin",
                                    &(ngx_str_t) ngx_string("*"))
           != NGX_OK
        || ngx_http_x402_add_header(r, "X-X402-Reason", &ctx->reason)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the sidecar's 402, or the one it let this worker repeat */

    if (status == 402 && (sr || ctx->cached)) {
        ngx_str_set(&expose, NGX_HTTP_X402_EXPOSE);

        if (ngx_http_x402_add_header(r, "PAYMENT-REQUIRED", &ctx->required)
            != NGX_OK
            || ngx_http_x402_add_header(r, "Access-Control-Expose-Headers",
                                        &expose)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* the v1 challenge, as the sidecar copies it into a header */

        if (ctx->challenge.len) {
            body = ctx->challenge;

        } else {
            ngx_str_set(&body, "{\"x402Version\":1,"
                               "\"error\":\"payment_required\"}");
        }

        return ngx_http_x402_send(r, NGX_HTTP_X402_PAYMENT_REQUIRED, &body);
    }

    if (status == NGX_HTTP_TOO_MANY_REQUESTS
        || status == NGX_HTTP_SERVICE_UNAVAILABLE)
    {
        ngx_str_set(&expose, NGX_HTTP_X402_EXPOSE_LIMITS);

        if (ngx_http_x402_add_header(r, "Access-Control-Expose-Headers",
                                     &expose)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        h = sr ? ngx_http_x402_answer_header(sr, "retry-after") : NULL;
        if (h && ngx_http_x402_add_header(r, "Retry-After", &h->value)
                 != NGX_OK)
        {
            return NGX_ERROR;
        }

        h = sr ? ngx_http_x402_answer_header(sr, "ratelimit-policy") : NULL;
        if (h && ngx_http_x402_add_header(r, "RateLimit-Policy", &h->value)
                 != NGX_OK)
        {
            return NGX_ERROR;
        }

        h = sr ? ngx_http_x402_answer_header(sr, "ratelimit") : NULL;
        if (h && ngx_http_x402_add_header(r, "RateLimit", &h->value)
                 != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    body.data = ngx_pnalloc(r->pool, reason.len + 64);
    if (body.data == NULL) {
        return NGX_ERROR;
    }

    switch (status) {

    case NGX_HTTP_TOO_MANY_REQUESTS:
        p = ngx_sprintf(body.data, "{\"error\":\"rate_limited\","
                        "\"reason\":\"%V\"}\n", &reason);
        break;

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        p = ngx_sprintf(body.data, "{\"error\":\"payment_service_unavailable"
                        "\",\"reason\":\"%V\"}\n", &reason);
        break;

    case NGX_HTTP_INTERNAL_SERVER_ERROR:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "x402: misconfigured route \"%V\": %V",
                      &ctx->route, &ctx->reason);
        p = ngx_sprintf(body.data, "{\"error\":\"x402_misconfigured\"}\n");
        break;

    case NGX_HTTP_UNAUTHORIZED:
        p = ngx_sprintf(body.data, "{\"error\":\"unauthorized\","
                        "\"reason\":\"%V\"}\n", &reason);
        break;

    default:
        status = NGX_HTTP_FORBIDDEN;
        p = ngx_sprintf(body.data, "{\"error\":\"forbidden\","
                        "\"reason\":\"%V\"}\n", &reason);
    }

    body.len = p - body.data;

    return ngx_http_x402_send(r, status, &body);
}


/* fail closed: the sidecar is down, slow, or answered nonsense */

ngx_int_t
ngx_http_x402_unavailable(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx,
    const char *why)
{
    ngx_str_t  body;

    if (why) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "x402: the sidecar at \"%V\" sent %s (status %ui), "
                      "failing closed", &ctx->subrequest->uri, why,
                      ctx->status);
    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "x402: the sidecar at \"%V\" failed (status %ui), "
                      "failing closed", &ctx->subrequest->uri, ctx->status);
    }

    ctx->decided = 1;
    ngx_str_set(&ctx->x402_status, "503");
    ngx_str_set(&ctx->reason, "sidecar_unavailable");

    if (ngx_http_x402_add_header(r, "Retry-After",
                                 &(ngx_str_t) ngx_string("5"))
        != NGX_OK
        || ngx_http_x402_add_header(r, "Cache-Control",
                                    &(ngx_str_t) ngx_string("no-store"))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&body, "{\"error\":\"payment_service_unavailable\"}\n");

    return ngx_http_x402_send(r, NGX_HTTP_SERVICE_UNAVAILABLE, &body);
}


ngx_int_t
ngx_http_x402_bad_lease(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx,
    ngx_str_t *reason)
{
    u_char     *p;
    ngx_str_t   auth;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "x402: lease refused: %V", reason);

    p = ngx_pnalloc(r->pool, reason->len + 64);
    if (p == NULL) {
        return NGX_ERROR;
    }

    auth.data = p;
    auth.len = ngx_sprintf(p, "Bearer realm=\"x402\", error=\"invalid_token\""
                           ", error_description=\"%V\"", reason) - p;

    if (ngx_http_x402_add_header(r, "WWW-Authenticate", &auth) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_str_set(&ctx->x402_status, "401");
    ctx->reason = *reason;

    return ngx_http_x402_refuse(r, ctx);
}


/* send a whole answer and finish the request: the backend never runs */

static ngx_int_t
ngx_http_x402_send(ngx_http_request_t *r, ngx_uint_t status, ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only || body->len == 0) {
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return NGX_DONE;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));

    return NGX_DONE;
}


ngx_int_t
ngx_http_x402_add_header(ngx_http_request_t *r, char *name, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    if (value == NULL || value->len == 0) {
        return NGX_OK;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;
    h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


/* a header of the sidecar's answer, by lowercase name */

ngx_table_elt_t *
ngx_http_x402_answer_header(ngx_http_request_t *sr, char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);

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

        if (h[i].hash != 0 && h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }

    return NULL;
}


/* a reason code goes into a JSON string: only the characters codes use */

static ngx_int_t
ngx_http_x402_json_text(ngx_str_t *text)
{
    size_t  i;
    u_char  c;

    if (text->len > 128) {
        return NGX_DECLINED;
    }

    for (i = 0; i < text->len; i++) {
        c = text->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'
              || c == ':'))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}
