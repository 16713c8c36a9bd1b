
/*
 * x402-nginx: lease rechecks.
 *
 * When a request carrying a valid lease must be asked of the sidecar
 * (ngx_http_x402_lease_recheck_due), and, while a leased response is still
 * open, the stream recheck: every x402_lease_recheck a timer of the
 * request's own sends one HTTP/1.0 exchange of the module's own to the
 * sidecar and closes the request if the sidecar refuses the lease.
 */


#include "ngx_http_x402.h"


#define NGX_HTTP_X402_RECHECK_SLOTS  1024


/* per worker: when a lease was last confirmed by the sidecar */
typedef struct {
    u_char                     jti[32];
    time_t                     checked;
} ngx_http_x402_recheck_t;


static ngx_http_x402_recheck_t *ngx_http_x402_recheck_slot(ngx_str_t *jti);


static ngx_http_x402_recheck_t
    ngx_http_x402_rechecks[NGX_HTTP_X402_RECHECK_SLOTS];

static ngx_str_t   ngx_http_x402_request_id = ngx_string("request_id");


/*
 * Whether this worker must ask the sidecar about the lease now: always for
 * leases with counters (max_requests, max_concurrent live in the sidecar),
 * else on first sight and every "recheck" seconds; never if recheck is 0.
 */

ngx_uint_t
ngx_http_x402_lease_recheck_due(ngx_http_x402_lease_t *lease, time_t recheck)
{
    ngx_http_x402_recheck_t  *slot;

    if (lease->max_requests >= 0 || lease->max_concurrent >= 0) {
        return 1;
    }

    if (recheck == 0) {
        return 0;
    }

    slot = ngx_http_x402_recheck_slot(&lease->jti);

    if (ngx_strncmp(slot->jti, lease->jti.data, 32) != 0) {
        return 1;
    }

    return ngx_time() - slot->checked >= recheck;
}


void
ngx_http_x402_lease_rechecked(ngx_http_x402_lease_t *lease)
{
    ngx_http_x402_recheck_t  *slot;

    slot = ngx_http_x402_recheck_slot(&lease->jti);

    ngx_memcpy(slot->jti, lease->jti.data, 32);
    slot->checked = ngx_time();
}


static ngx_http_x402_recheck_t *
ngx_http_x402_recheck_slot(ngx_str_t *jti)
{
    return &ngx_http_x402_rechecks[ngx_hash_key(jti->data, jti->len)
                                   % NGX_HTTP_X402_RECHECK_SLOTS];
}



/*
 * The stream recheck.  Why not a subrequest from the timer: once the
 * response has started, ngx_http_subrequest() makes the subrequest the
 * connection's active request (c->data), so the client connection's
 * events go to the subrequest's handlers while it runs (an upgraded
 * WebSocket's downstream reads and an SSE stream's writes stall, and
 * their handlers are replaced), the parent's output is postponed behind
 * it, its end posts the parent and runs the upstream's handlers out of
 * turn, and r->main->subrequests allows 50 of them in a request's life.
 * So the timer opens a connection of its own to the sidecar instead:
 *
 *     GET /authorize HTTP/1.0
 *     X-X402-Recheck: stream
 *     X-X402-Lease: TOKEN             (and the headers server.conf sets,
 *     X-Request-ID: $request_id        the request's, its lease slot too)
 *
 * and reads the answer's head: 200 with "X-X402-Status: 200" keeps the
 * request, 401 or 403 (a refused lease: revoked, or any refusal) closes
 * it; anything else, a connect error or no answer in time is logged and
 * asked again at the next interval (the stream still ends at exp).
 */


#define NGX_HTTP_X402_PROBE_ANSWER   4096
#define NGX_HTTP_X402_PROBE_TIMEOUT  5000


static ngx_int_t ngx_http_x402_probe_build(ngx_http_x402_probe_t *probe);
static void ngx_http_x402_probe_start(ngx_event_t *ev);
static void ngx_http_x402_probe_write(ngx_event_t *wev);
static void ngx_http_x402_probe_read(ngx_event_t *rev);
static void ngx_http_x402_probe_done(ngx_http_x402_probe_t *probe,
    ngx_uint_t failed);
static ngx_int_t ngx_http_x402_probe_parse(ngx_http_x402_probe_t *probe,
    ngx_str_t *reason);
static void ngx_http_x402_probe_close(ngx_http_x402_probe_t *probe);
static void ngx_http_x402_probe_header(u_char *p, u_char *eol, char *name,
    ngx_str_t *value);


/* every leased request gets the timer; the buffers only when it fires */

ngx_int_t
ngx_http_x402_probe_arm(ngx_http_request_t *r, ngx_http_x402_ctx_t *ctx,
    ngx_addr_t *addr, time_t interval)
{
    ngx_http_x402_probe_t  *probe;

    probe = ngx_pcalloc(r->pool, sizeof(ngx_http_x402_probe_t));
    if (probe == NULL) {
        return NGX_ERROR;
    }

    probe->request = r;
    probe->ctx = ctx;
    probe->addr = addr;
    probe->interval = (ngx_msec_t) interval * 1000;
    probe->timeout = ngx_min(probe->interval, NGX_HTTP_X402_PROBE_TIMEOUT);

    probe->timer.handler = ngx_http_x402_probe_start;
    probe->timer.data = probe;
    probe->timer.log = r->connection->log;
    probe->timer.cancelable = 1;

    ngx_add_timer(&probe->timer, probe->interval);

    ctx->probe = probe;

    return NGX_OK;
}


/* the recheck request, the same every time, and the answer's buffer */

static ngx_int_t
ngx_http_x402_probe_build(ngx_http_x402_probe_t *probe)
{
    u_char                     *p;
    size_t                      len;
    ngx_str_t                   scheme, host, rid;
    ngx_http_request_t         *r, *mr;
    ngx_http_x402_ctx_t        *ctx;
    ngx_http_variable_value_t  *vv;

    r = probe->request;
    mr = r->main;
    ctx = probe->ctx;

    /*
     * $request_id, as the decision's X-Request-ID and the report's slot=:
     * the sidecar knows which request (and concurrency slot) is rechecked
     */

    vv = ngx_http_get_variable(r, &ngx_http_x402_request_id,
                               ngx_hash_key(ngx_http_x402_request_id.data,
                                            ngx_http_x402_request_id.len));

    ngx_str_null(&rid);

    if (vv && !vv->not_found && vv->len <= 64) {
        rid.data = vv->data;
        rid.len = vv->len;
    }

    ngx_str_set(&scheme, "http");

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_set(&scheme, "https");
    }
#endif

    if (mr->headers_in.host) {
        host = mr->headers_in.host->value;

    } else {
        host = mr->headers_in.server;
    }

    len = sizeof("GET /authorize HTTP/1.0" CRLF) - 1
          + sizeof("Host: " CRLF) - 1 + mr->headers_in.server.len
          + sizeof("X-X402-Recheck: stream" CRLF) - 1
          + sizeof("X-X402-Via: nginx" CRLF) - 1
          + sizeof("X-X402-Route: " CRLF) - 1 + ctx->route.len
          + sizeof("X-X402-Lease: " CRLF) - 1 + ctx->token.len
          + sizeof("X-X402-Lease-Id: " CRLF) - 1 + ctx->lease_id.len
          + sizeof("X-Original-URI: " CRLF) - 1 + mr->unparsed_uri.len
          + sizeof("X-Original-Method: " CRLF) - 1 + mr->method_name.len
          + sizeof("X-Forwarded-Proto: " CRLF) - 1 + scheme.len
          + sizeof("X-Forwarded-Host: " CRLF) - 1 + host.len
          + sizeof("X-Real-IP: " CRLF) - 1 + r->connection->addr_text.len
          + sizeof("X-Request-ID: " CRLF) - 1 + rid.len
          + sizeof(CRLF) - 1;

    probe->out = ngx_create_temp_buf(r->pool, len);
    if (probe->out == NULL) {
        return NGX_ERROR;
    }

    p = probe->out->last;

    p = ngx_cpymem(p, "GET /authorize HTTP/1.0" CRLF,
                   sizeof("GET /authorize HTTP/1.0" CRLF) - 1);
    p = ngx_sprintf(p, "Host: %V" CRLF, &mr->headers_in.server);
    p = ngx_cpymem(p, "X-X402-Recheck: stream" CRLF,
                   sizeof("X-X402-Recheck: stream" CRLF) - 1);
    p = ngx_cpymem(p, "X-X402-Via: nginx" CRLF,
                   sizeof("X-X402-Via: nginx" CRLF) - 1);
    p = ngx_sprintf(p, "X-X402-Route: %V" CRLF, &ctx->route);
    p = ngx_sprintf(p, "X-X402-Lease: %V" CRLF, &ctx->token);
    p = ngx_sprintf(p, "X-X402-Lease-Id: %V" CRLF, &ctx->lease_id);
    p = ngx_sprintf(p, "X-Original-URI: %V" CRLF, &mr->unparsed_uri);
    p = ngx_sprintf(p, "X-Original-Method: %V" CRLF, &mr->method_name);
    p = ngx_sprintf(p, "X-Forwarded-Proto: %V" CRLF, &scheme);
    p = ngx_sprintf(p, "X-Forwarded-Host: %V" CRLF, &host);
    p = ngx_sprintf(p, "X-Real-IP: %V" CRLF, &r->connection->addr_text);

    if (rid.len) {
        p = ngx_sprintf(p, "X-Request-ID: %V" CRLF, &rid);
    }

    p = ngx_cpymem(p, CRLF, sizeof(CRLF) - 1);

    probe->out->last = p;

    probe->in = ngx_create_temp_buf(r->pool, NGX_HTTP_X402_PROBE_ANSWER);
    if (probe->in == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the request ends: no more rechecks, an exchange in flight is dropped */

void
ngx_http_x402_probe_cleanup(ngx_http_x402_probe_t *probe)
{
    if (probe->timer.timer_set) {
        ngx_del_timer(&probe->timer);
    }

    ngx_http_x402_probe_close(probe);
}


static void
ngx_http_x402_probe_start(ngx_event_t *ev)
{
    ngx_http_x402_probe_t *probe = ev->data;

    ngx_int_t          rc;
    ngx_connection_t  *c;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "x402 stream recheck of lease %V", &probe->ctx->lease_id);

    if (probe->out == NULL && ngx_http_x402_probe_build(probe) != NGX_OK) {
        ngx_http_x402_probe_done(probe, 1);
        return;
    }

    ngx_memzero(&probe->peer, sizeof(ngx_peer_connection_t));

    probe->peer.sockaddr = probe->addr->sockaddr;
    probe->peer.socklen = probe->addr->socklen;
    probe->peer.name = &probe->addr->name;
    probe->peer.get = ngx_event_get_peer;
    probe->peer.log = ev->log;
    probe->peer.log_error = NGX_ERROR_ERR;

    probe->out->pos = probe->out->start;
    probe->in->pos = probe->in->start;
    probe->in->last = probe->in->start;

    rc = ngx_event_connect_peer(&probe->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_http_x402_probe_done(probe, 1);
        return;
    }

    c = probe->peer.connection;

    c->data = probe;
    c->log = ev->log;
    c->read->log = ev->log;
    c->write->log = ev->log;
    c->read->handler = ngx_http_x402_probe_read;
    c->write->handler = ngx_http_x402_probe_write;

    /* one deadline for the whole exchange */
    ngx_add_timer(c->read, probe->timeout);

    if (rc == NGX_OK) {
        ngx_http_x402_probe_write(c->write);
    }
}


static void
ngx_http_x402_probe_write(ngx_event_t *wev)
{
    ssize_t                 n;
    ngx_buf_t              *b;
    ngx_connection_t       *c;
    ngx_http_x402_probe_t  *probe;

    c = wev->data;
    probe = c->data;
    b = probe->out;

    if (wev->timedout || c->read->timedout) {
        ngx_log_error(NGX_LOG_ERR, wev->log, NGX_ETIMEDOUT,
                      "x402: the sidecar did not answer a stream recheck");
        ngx_http_x402_probe_done(probe, 1);
        return;
    }

    while (b->pos < b->last) {
        n = c->send(c, b->pos, b->last - b->pos);

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_http_x402_probe_done(probe, 1);
            }

            return;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_x402_probe_done(probe, 1);
            return;
        }

        b->pos += n;
    }

    /* sent: wait for the answer */

    wev->handler = ngx_http_empty_handler;

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_x402_probe_done(probe, 1);
    }
}


static void
ngx_http_x402_probe_read(ngx_event_t *rev)
{
    ssize_t                 n;
    ngx_buf_t              *b;
    ngx_connection_t       *c;
    ngx_http_x402_probe_t  *probe;

    c = rev->data;
    probe = c->data;
    b = probe->in;

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_ERR, rev->log, NGX_ETIMEDOUT,
                      "x402: the sidecar did not answer a stream recheck");
        ngx_http_x402_probe_done(probe, 1);
        return;
    }

    for ( ;; ) {

        if (b->last == b->end) {
            /* the head is larger than we read: the status is in it */
            break;
        }

        n = c->recv(c, b->last, b->end - b->last);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_x402_probe_done(probe, 1);
            }

            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_x402_probe_done(probe, 1);
            return;
        }

        if (n == 0) {
            break;
        }

        b->last += n;

        if (ngx_strlcasestrn(b->pos, b->last, (u_char *) CRLF CRLF, 4 - 1)
            != NULL)
        {
            break;
        }
    }

    ngx_http_x402_probe_done(probe, 0);
}


/*
 * The exchange is over.  Closes the request if the sidecar refused the
 * lease; else the next recheck is in "interval".
 */

static void
ngx_http_x402_probe_done(ngx_http_x402_probe_t *probe, ngx_uint_t failed)
{
    ngx_int_t             rc;
    ngx_str_t             reason;
    ngx_http_request_t   *r;
    ngx_http_x402_ctx_t  *ctx;

    r = probe->request;
    ctx = probe->ctx;

    rc = failed ? NGX_ERROR : ngx_http_x402_probe_parse(probe, &reason);

    ngx_http_x402_probe_close(probe);

    if (rc == NGX_DECLINED) {
        ngx_str_set(&ctx->reason, "lease_refused");

        if (reason.len) {
            ctx->reason = reason;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "x402: lease %V refused by the sidecar on a stream "
                      "recheck (%V), closing the request",
                      &ctx->lease_id, &ctx->reason);

        ngx_http_x402_close_leased(r);
        return;
    }

    if (rc == NGX_OK) {
        ngx_http_x402_lease_rechecked(ctx->lease);

    } else {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "x402: a stream recheck of lease %V failed, "
                      "asking again in %M ms", &ctx->lease_id,
                      probe->interval);
    }

    ngx_add_timer(&probe->timer, probe->interval);
}


/*
 * NGX_OK: allowed; NGX_DECLINED: refused, "reason" from X-X402-Reason;
 * NGX_ERROR: not an answer the sidecar gives.
 */

static ngx_int_t
ngx_http_x402_probe_parse(ngx_http_x402_probe_t *probe, ngx_str_t *reason)
{
    u_char     *p, *last, *eol;
    ngx_int_t   status;
    ngx_str_t   x402_status;

    ngx_str_null(reason);
    ngx_str_null(&x402_status);

    p = probe->in->pos;
    last = probe->in->last;

    /* "HTTP/1.x NNN" */

    eol = ngx_strlchr(p, last, LF);

    if (eol == NULL || eol - p < 12 || ngx_strncmp(p, "HTTP/1.", 7) != 0
        || p[8] != ' ')
    {
        ngx_log_error(NGX_LOG_ERR, probe->request->connection->log, 0,
                      "x402: the sidecar's answer to a stream recheck is "
                      "not HTTP");
        return NGX_ERROR;
    }

    status = ngx_atoi(p + 9, 3);

    /* the header lines read, up to the first incomplete one */

    for (p = eol + 1; p < last; p = eol + 1) {
        eol = ngx_strlchr(p, last, LF);
        if (eol == NULL) {
            break;
        }

        ngx_http_x402_probe_header(p, eol, "x-x402-status:", &x402_status);
        ngx_http_x402_probe_header(p, eol, "x-x402-reason:", reason);
    }

    if (status == NGX_HTTP_OK && x402_status.len == 3
        && ngx_strncmp(x402_status.data, "200", 3) == 0)
    {
        return NGX_OK;
    }

    if (status == NGX_HTTP_UNAUTHORIZED || status == NGX_HTTP_FORBIDDEN) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_ERR, probe->request->connection->log, 0,
                  "x402: the sidecar answered a stream recheck with %i "
                  "(X-X402-Status \"%V\")", status, &x402_status);

    return NGX_ERROR;
}


/* the value of the header line [p, eol) if it is "name" (lowercase) */

static void
ngx_http_x402_probe_header(u_char *p, u_char *eol, char *name,
    ngx_str_t *value)
{
    size_t  len;

    len = ngx_strlen(name);

    if ((size_t) (eol - p) < len
        || ngx_strncasecmp(p, (u_char *) name, len) != 0)
    {
        return;
    }

    p += len;

    while (p < eol && *p == ' ') {
        p++;
    }

    while (eol > p && (eol[-1] == CR || eol[-1] == ' ')) {
        eol--;
    }

    /* reason codes are short tokens; anything else is not shown */

    if (eol - p > 64) {
        return;
    }

    value->data = p;
    value->len = eol - p;
}


static void
ngx_http_x402_probe_close(ngx_http_x402_probe_t *probe)
{
    if (probe->peer.connection) {
        ngx_close_connection(probe->peer.connection);
        probe->peer.connection = NULL;
    }
}
