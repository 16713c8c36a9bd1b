
/*
 * x402-nginx: ngx_http_x402_module, shared declarations.
 *
 * ngx_http_x402_module.c: directives, the access handler and its one
 *     subrequest, header rewriting, the lease's timers, the header filter,
 *     variables;
 * ngx_http_x402_answer.c: the 402/429/403/503/500 the module sends itself;
 * ngx_http_x402_lease.c: lease keys and in-process JWT checks;
 * ngx_http_x402_json.c: the strict JSON scanner the lease checks use;
 * ngx_http_x402_cache.c: the tokens this worker has authenticated;
 * ngx_http_x402_challenge.c: the 402s this worker may repeat unasked;
 * ngx_http_x402_recheck.c: when to ask the sidecar about a lease, and the
 *     stream recheck exchange while a leased response is open;
 * ngx_http_x402_report.c: the log-phase report datagram.
 */


#ifndef _NGX_HTTP_X402_H_INCLUDED_
#define _NGX_HTTP_X402_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>


#define NGX_HTTP_X402_EXPOSE                                                  \
    "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE"

#define NGX_HTTP_X402_ALG_HS256        1
#define NGX_HTTP_X402_ALG_EDDSA        2

/* a lease token is at most this long, before and after decoding */
#define NGX_HTTP_X402_LEASE_MAX        4096

/*
 * x402_lease_clock_skew: the default, and the most the sidecar's
 * leases.clock_skew_seconds allows, in seconds
 */
#define NGX_HTTP_X402_LEASE_SKEW       30
#define NGX_HTTP_X402_LEASE_SKEW_MAX   600


#define NGX_HTTP_X402_JSON_STRING      1
#define NGX_HTTP_X402_JSON_NUMBER      2
#define NGX_HTTP_X402_JSON_ARRAY       3
#define NGX_HTTP_X402_JSON_LITERAL     4

/* at most this many fields in an object, items in an array */
#define NGX_HTTP_X402_JSON_FIELDS      64


/* one field of a flat JSON object */
typedef struct {
    ngx_str_t                  key;
    ngx_uint_t                 type;
    ngx_str_t                  value;
    ngx_array_t               *items;        /* of ngx_str_t */
} ngx_http_x402_json_t;


typedef struct {
    ngx_str_t                  kid;
    ngx_uint_t                 alg;
    ngx_str_t                  secret;       /* HS256 */
    EVP_PKEY                  *pkey;         /* EdDSA (Ed25519) */
} ngx_http_x402_key_t;


typedef struct {
    ngx_str_t                  file;
    ngx_array_t                keys;         /* of ngx_http_x402_key_t */
} ngx_http_x402_keys_t;


/* the claims of a verified lease token; absent integers are -1 */
typedef struct {
    ngx_str_t                  sub;
    ngx_str_t                  aud;
    ngx_str_t                  jti;
    ngx_str_t                  lease;
    ngx_str_t                  amount;
    ngx_str_t                  asset;
    ngx_str_t                  network;
    ngx_str_t                  payment_id;
    ngx_str_t                  tx;
    time_t                     iat;
    time_t                     nbf;
    time_t                     exp;
    ngx_int_t                  max_requests;
    ngx_int_t                  max_concurrent;
    ngx_str_t                 *routes;       /* x402_routes */
    ngx_uint_t                 nroutes;
} ngx_http_x402_lease_t;


/* where the report datagrams go; one socket per worker, opened lazily */
typedef struct {
    ngx_addr_t                 addr;
    ngx_str_t                  name;
    ngx_socket_t               fd;
    ngx_flag_t                 extended;
} ngx_http_x402_report_peer_t;


typedef struct {
    ngx_addr_t                *sidecar;      /* upstream x402_sidecar's */
    ngx_uint_t                 recheck_default;  /* a location needs it */
} ngx_http_x402_main_conf_t;


typedef struct {
    ngx_http_complex_value_t  *route;        /* NULL: "x402 off" */
    ngx_str_t                  sidecar;      /* internal location URI */
    ngx_uint_t                 fail;         /* only "closed" */
    ngx_http_x402_keys_t      *keys;         /* x402_lease_keys */
    time_t                     recheck;      /* 0: never */
    time_t                     skew;         /* x402_lease_clock_skew */
    ngx_http_x402_report_peer_t  *report;    /* x402_report */
    ngx_addr_t                *recheck_peer; /* x402_recheck_sidecar */
    ngx_flag_t                 challenge_cache;  /* x402_challenge_cache */
} ngx_http_x402_loc_conf_t;


typedef struct ngx_http_x402_ctx_s  ngx_http_x402_ctx_t;


/* the stream recheck of one leased request (ngx_http_x402_recheck.c) */
typedef struct {
    ngx_http_request_t        *request;
    ngx_http_x402_ctx_t       *ctx;
    ngx_addr_t                *addr;
    ngx_peer_connection_t      peer;
    ngx_buf_t                 *out;          /* the request, built once */
    ngx_buf_t                 *in;           /* the answer's head */
    ngx_event_t                timer;        /* every x402_lease_recheck */
    ngx_msec_t                 interval;
    ngx_msec_t                 timeout;
} ngx_http_x402_probe_t;


struct ngx_http_x402_ctx_s {
    ngx_uint_t                 done;         /* the subrequest finished */
    ngx_uint_t                 status;       /* and answered this */
    ngx_http_request_t        *subrequest;

    unsigned                   failed:1;     /* it broke: fail closed */
    unsigned                   decided:1;
    unsigned                   allowed:1;
    unsigned                   cached:1;     /* a 402 from the cache */

    ngx_str_t                  route;

    /* what the sidecar (or the lease) said, for variables and reports */
    ngx_str_t                  x402_status;
    ngx_str_t                  reason;
    ngx_str_t                  payer;
    ngx_str_t                  amount;
    ngx_str_t                  asset;
    ngx_str_t                  network;
    ngx_str_t                  payment_id;
    ngx_str_t                  transaction;
    ngx_str_t                  version;
    ngx_str_t                  lease_id;
    ngx_str_t                  payment_response;
    ngx_str_t                  payment_response_v1;

    /* a 402's PAYMENT-REQUIRED and v1 body (the sidecar's X-X402-Challenge) */
    ngx_str_t                  required;
    ngx_str_t                  challenge;

    /* the challenge cache: $x402_cache (HIT, MISS, empty) and the key */
    ngx_str_t                  cache;
    ngx_str_t                  cache_key;    /* empty: not an unpaid request */

    /* the verified X-X402-* request headers the backend receives */
    ngx_array_t                context;      /* of ngx_table_elt_t */

    ngx_http_x402_lease_t     *lease;
    ngx_str_t                  token;
    ngx_table_elt_t           *lease_header; /* removed before proxying */

    time_t                     expires;      /* the lease's exp, or 0 */
    ngx_event_t                expiry;       /* closes a leased request */
    ngx_http_x402_probe_t     *probe;        /* rechecks it meanwhile */
};


ngx_int_t ngx_http_x402_refuse(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx);
ngx_int_t ngx_http_x402_unavailable(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx, const char *why);
ngx_int_t ngx_http_x402_bad_lease(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx, ngx_str_t *reason);
ngx_int_t ngx_http_x402_add_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value);
ngx_table_elt_t *ngx_http_x402_answer_header(ngx_http_request_t *sr,
    char *name);

char *ngx_http_x402_lease_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_x402_lease_token(ngx_http_request_t *r,
    ngx_http_x402_keys_t *keys, ngx_str_t *token, ngx_table_elt_t **header);
ngx_int_t ngx_http_x402_lease_verify(ngx_http_request_t *r,
    ngx_http_x402_keys_t *keys, time_t skew, ngx_str_t *token,
    ngx_str_t *route, ngx_http_x402_lease_t **leasep, ngx_str_t *reason);
ngx_int_t ngx_http_x402_cache_get(ngx_pool_t *pool, ngx_str_t *token,
    ngx_http_x402_lease_t **leasep);
void ngx_http_x402_cache_put(ngx_str_t *token, ngx_http_x402_lease_t *lease,
    ngx_log_t *log);
void ngx_http_x402_cache_free(void);
ngx_int_t ngx_http_x402_challenge_get(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx);
void ngx_http_x402_challenge_put(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx);
void ngx_http_x402_challenge_free(void);
ngx_uint_t ngx_http_x402_lease_recheck_due(ngx_http_x402_lease_t *lease,
    time_t recheck);
void ngx_http_x402_lease_rechecked(ngx_http_x402_lease_t *lease);
ngx_int_t ngx_http_x402_probe_arm(ngx_http_request_t *r,
    ngx_http_x402_ctx_t *ctx, ngx_addr_t *addr, time_t interval);
void ngx_http_x402_probe_cleanup(ngx_http_x402_probe_t *probe);
void ngx_http_x402_close_leased(ngx_http_request_t *r);

ngx_int_t ngx_http_x402_json_parse(ngx_pool_t *pool, ngx_str_t *text,
    ngx_array_t *fields);
ngx_http_x402_json_t *ngx_http_x402_json_get(ngx_array_t *fields,
    char *name, ngx_uint_t type);
ngx_int_t ngx_http_x402_json_time(ngx_array_t *fields, char *name,
    time_t *value);
ngx_int_t ngx_http_x402_json_int(ngx_array_t *fields, char *name,
    ngx_int_t *value);
ngx_uint_t ngx_http_x402_is_decimal(ngx_str_t *s);

char *ngx_http_x402_report(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_x402_log_handler(ngx_http_request_t *r);

ngx_http_x402_ctx_t *ngx_http_x402_get_ctx(ngx_http_request_t *r);


extern ngx_module_t  ngx_http_x402_module;


#endif /* _NGX_HTTP_X402_H_INCLUDED_ */
