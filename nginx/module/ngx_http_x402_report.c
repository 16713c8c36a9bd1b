
/*
 * x402-nginx: the after-response report.
 *
 * In the log phase, each paid or leased request is reported to the
 * sidecar with one datagram on its unix report socket, in the syslog form
 * the sidecar's ReportListener reads:
 *
 *     <14>x402: PAYMENT_ID STATUS
 *     <14>x402: PAYMENT_ID STATUS bytes=N duration_ms=N      ("extended")
 *     <14>x402: - STATUS bytes=N duration_ms=N lease=JTI slot=RID  (a lease;
 *                                          RID: $request_id, its slot)
 *
 * STATUS is the last upstream's status (what "after" settlement needs),
 * else the status nginx answered with.  The send never blocks: a full
 * socket drops the report, as syslog does; the sidecar's report timeout
 * policy covers a lost one.
 */


#include "ngx_http_x402.h"


#define NGX_HTTP_X402_REPORT_LEN  512


static ngx_int_t ngx_http_x402_report_open(ngx_http_x402_report_peer_t *peer,
    ngx_log_t *log);
static void ngx_http_x402_report_send(ngx_http_x402_report_peer_t *peer,
    ngx_log_t *log, u_char *buf, size_t len);
static void ngx_http_x402_report_cleanup(void *data);


static ngx_str_t  request_id = ngx_string("request_id");
static ngx_uint_t  request_id_hash;


/* x402_report unix:PATH [extended] | off */

char *
ngx_http_x402_report(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_x402_loc_conf_t *xlcf = conf;

    ngx_url_t                     u;
    ngx_str_t                    *value;
    ngx_pool_cleanup_t           *cln;
    ngx_http_x402_report_peer_t  *peer;

    if (xlcf->report != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0 && cf->args->nelts == 2) {
        xlcf->report = NULL;
        return NGX_CONF_OK;
    }

    if (value[1].len <= 5 || ngx_strncmp(value[1].data, "unix:", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "x402_report needs a \"unix:\" socket path, "
                           "not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    peer = ngx_pcalloc(cf->pool, sizeof(ngx_http_x402_report_peer_t));
    if (peer == NULL) {
        return NGX_CONF_ERROR;
    }

    peer->fd = (ngx_socket_t) -1;
    peer->name = value[1];

    if (cf->args->nelts == 3) {
        if (ngx_strcmp(value[2].data, "extended") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        peer->extended = 1;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = value[1];
    u.no_resolve = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s in \"%V\"",
                           u.err ? u.err : "invalid address", &value[1]);
        return NGX_CONF_ERROR;
    }

    peer->addr = u.addrs[0];

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_x402_report_cleanup;
    cln->data = peer;

    xlcf->report = peer;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_x402_log_handler(ngx_http_request_t *r)
{
    u_char                     *p, buf[NGX_HTTP_X402_REPORT_LEN];
    ngx_str_t                   id;
    ngx_uint_t                  status;
    ngx_msec_int_t              ms;
    ngx_http_variable_value_t  *rid;
    ngx_time_t                 *tp;
    ngx_http_x402_ctx_t        *ctx;
    ngx_http_upstream_state_t  *state;
    ngx_http_x402_loc_conf_t   *xlcf;

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_x402_module);

    if (xlcf->report == NULL) {
        return NGX_OK;
    }

    ctx = ngx_http_x402_get_ctx(r);

    if (ctx == NULL || !ctx->allowed
        || (ctx->payment_id.len == 0 && ctx->lease_id.len == 0))
    {
        return NGX_OK;
    }

    /* a leased request is not its lease's purchase: no payment id */

    if (ctx->lease_id.len) {
        ngx_str_set(&id, "-");

    } else {
        id = ctx->payment_id;
    }

    if (id.len > 128) {
        return NGX_OK;
    }

    status = 0;

    if (r->upstream_states && r->upstream_states->nelts) {
        state = r->upstream_states->elts;
        status = state[r->upstream_states->nelts - 1].status;
    }

    if (status == 0) {
        status = r->err_status ? r->err_status : r->headers_out.status;
    }

    if (status == 0) {
        status = 499;
    }

    tp = ngx_timeofday();

    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
    ms = ngx_max(ms, 0);

    p = ngx_snprintf(buf, sizeof(buf), "<14>x402: %V %ui", &id, status);

    if (xlcf->report->extended || ctx->lease_id.len) {
        p = ngx_snprintf(p, buf + sizeof(buf) - p,
                         " bytes=%O duration_ms=%M",
                         r->connection->sent, ms);
    }

    if (ctx->lease_id.len) {
        p = ngx_snprintf(p, buf + sizeof(buf) - p, " lease=%V",
                         &ctx->lease_id);

        /*
         * the concurrency slot the sidecar took for this request is
         * named by $request_id (its X-Request-ID): the report gives it back
         */

        if (request_id_hash == 0) {
            request_id_hash = ngx_hash_key(request_id.data, request_id.len);
        }

        rid = ngx_http_get_variable(r, &request_id, request_id_hash);

        if (rid && !rid->not_found && rid->len && rid->len <= 64) {
            p = ngx_snprintf(p, buf + sizeof(buf) - p, " slot=%*s",
                             (size_t) rid->len, rid->data);
        }
    }

    ngx_http_x402_report_send(xlcf->report, r->connection->log, buf,
                              p - buf);

    return NGX_OK;
}


static ngx_int_t
ngx_http_x402_report_open(ngx_http_x402_report_peer_t *peer, ngx_log_t *log)
{
    ngx_socket_t  fd;

    fd = ngx_socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_socket_errno,
                      "x402: " ngx_socket_n " for the report failed");
        return NGX_ERROR;
    }

    if (ngx_nonblocking(fd) == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_socket_errno,
                      "x402: " ngx_nonblocking_n " failed");
        goto failed;
    }

    if (connect(fd, peer->addr.sockaddr, peer->addr.socklen) == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_socket_errno,
                      "x402: connect() to the report socket \"%V\" failed",
                      &peer->name);
        goto failed;
    }

    peer->fd = fd;

    return NGX_OK;

failed:

    if (ngx_close_socket(fd) == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_socket_errno,
                      ngx_close_socket_n " failed");
    }

    return NGX_ERROR;
}


static void
ngx_http_x402_report_send(ngx_http_x402_report_peer_t *peer, ngx_log_t *log,
    u_char *buf, size_t len)
{
    ssize_t    n;
    ngx_err_t  err;
    ngx_int_t  attempt;

    /* a second attempt on a new socket: the sidecar may have restarted */

    for (attempt = 0; attempt < 2; attempt++) {

        if (peer->fd == (ngx_socket_t) -1
            && ngx_http_x402_report_open(peer, log) != NGX_OK)
        {
            return;
        }

        n = send(peer->fd, buf, len, 0);

        if (n == (ssize_t) len) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                           "x402 report sent: \"%*s\"", len, buf);
            return;
        }

        err = ngx_socket_errno;

        if (n >= 0 || err == NGX_EAGAIN) {
            ngx_log_error(NGX_LOG_WARN, log, err,
                          "x402: the report socket \"%V\" is full, "
                          "report dropped: \"%*s\"", &peer->name, len, buf);
            return;
        }

        if (ngx_close_socket(peer->fd) == -1) {
            ngx_log_error(NGX_LOG_ALERT, log, ngx_socket_errno,
                          ngx_close_socket_n " failed");
        }

        peer->fd = (ngx_socket_t) -1;

        if (attempt == 1) {
            ngx_log_error(NGX_LOG_ERR, log, err,
                          "x402: send() to the report socket \"%V\" "
                          "failed, report lost: \"%*s\"", &peer->name,
                          len, buf);
        }
    }
}


static void
ngx_http_x402_report_cleanup(void *data)
{
    ngx_http_x402_report_peer_t *peer = data;

    if (peer->fd != (ngx_socket_t) -1) {
        (void) ngx_close_socket(peer->fd);
        peer->fd = (ngx_socket_t) -1;
    }
}
