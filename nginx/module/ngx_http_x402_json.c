
/*
 * x402-nginx: the JSON scanner for lease tokens.
 *
 * One flat object, strictly: string, number, literal and array-of-strings
 * values; no nesting, no duplicate keys, nothing after it.  Strings are
 * unescaped into NUL-terminated copies from the pool.  Anything else is
 * NGX_DECLINED (the caller's "lease_malformed"); NGX_ERROR is no memory.
 */


#include "ngx_http_x402.h"


static u_char *ngx_http_x402_json_ws(u_char *p, u_char *last);
static u_char *ngx_http_x402_json_string(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_str_t *out);
static u_char *ngx_http_x402_json_number(u_char *p, u_char *last);


/*
 * A strict parser for one flat JSON object: string, number, literal and
 * array-of-strings values; no nesting, no duplicate keys, nothing after it.
 */

ngx_int_t
ngx_http_x402_json_parse(ngx_pool_t *pool, ngx_str_t *text,
    ngx_array_t *fields)
{
    u_char                *p, *last, *q;
    ngx_str_t             *item;
    ngx_http_x402_json_t  *f;

    p = text->data;
    last = p + text->len;

    p = ngx_http_x402_json_ws(p, last);
    if (p == last || *p++ != '{') {
        return NGX_DECLINED;
    }

    p = ngx_http_x402_json_ws(p, last);
    if (p < last && *p == '}') {
        p++;
        goto end;
    }

    for ( ;; ) {

        if (fields->nelts == NGX_HTTP_X402_JSON_FIELDS) {
            return NGX_DECLINED;
        }

        f = ngx_array_push(fields);
        if (f == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(f, sizeof(ngx_http_x402_json_t));

        p = ngx_http_x402_json_ws(p, last);
        p = ngx_http_x402_json_string(pool, p, last, &f->key);
        if (p == NULL) {
            return NGX_DECLINED;
        }

        fields->nelts--;
        if (ngx_http_x402_json_get(fields, (char *) f->key.data, 0)) {
            return NGX_DECLINED;
        }
        fields->nelts++;

        p = ngx_http_x402_json_ws(p, last);
        if (p == last || *p++ != ':') {
            return NGX_DECLINED;
        }

        p = ngx_http_x402_json_ws(p, last);
        if (p == last) {
            return NGX_DECLINED;
        }

        switch (*p) {

        case '"':
            f->type = NGX_HTTP_X402_JSON_STRING;
            p = ngx_http_x402_json_string(pool, p, last, &f->value);
            break;

        case '[':
            f->type = NGX_HTTP_X402_JSON_ARRAY;
            f->items = ngx_array_create(pool, 4, sizeof(ngx_str_t));
            if (f->items == NULL) {
                return NGX_ERROR;
            }

            p = ngx_http_x402_json_ws(p + 1, last);
            if (p < last && *p == ']') {
                p++;
                break;
            }

            for ( ;; ) {
                item = ngx_array_push(f->items);
                if (item == NULL) {
                    return NGX_ERROR;
                }

                p = ngx_http_x402_json_string(pool, p, last, item);
                if (p == NULL) {
                    return NGX_DECLINED;
                }

                p = ngx_http_x402_json_ws(p, last);
                if (p == last) {
                    return NGX_DECLINED;
                }

                if (*p == ']') {
                    p++;
                    break;
                }

                if (*p++ != ','
                    || f->items->nelts == NGX_HTTP_X402_JSON_FIELDS)
                {
                    return NGX_DECLINED;
                }

                p = ngx_http_x402_json_ws(p, last);
            }

            break;

        case 't':
        case 'f':
        case 'n':
            f->type = NGX_HTTP_X402_JSON_LITERAL;
            q = p;

            if ((last - p >= 4 && ngx_strncmp(p, "true", 4) == 0)
                || (last - p >= 4 && ngx_strncmp(p, "null", 4) == 0))
            {
                p += 4;

            } else if (last - p >= 5 && ngx_strncmp(p, "false", 5) == 0) {
                p += 5;

            } else {
                return NGX_DECLINED;
            }

            f->value.data = q;
            f->value.len = p - q;
            break;

        default:
            f->type = NGX_HTTP_X402_JSON_NUMBER;
            q = p;
            p = ngx_http_x402_json_number(p, last);
            if (p == NULL) {
                return NGX_DECLINED;
            }

            f->value.data = q;
            f->value.len = p - q;
        }

        if (p == NULL) {
            return NGX_DECLINED;
        }

        p = ngx_http_x402_json_ws(p, last);
        if (p == last) {
            return NGX_DECLINED;
        }

        if (*p == '}') {
            p++;
            break;
        }

        if (*p++ != ',') {
            return NGX_DECLINED;
        }
    }

end:

    p = ngx_http_x402_json_ws(p, last);

    return p == last ? NGX_OK : NGX_DECLINED;
}


static u_char *
ngx_http_x402_json_ws(u_char *p, u_char *last)
{
    while (p < last
           && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    {
        p++;
    }

    return p;
}


/* a JSON string, unescaped into a NUL-terminated copy */

static u_char *
ngx_http_x402_json_string(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_str_t *out)
{
    u_char      *d, *end;
    ngx_int_t    i, n;
    ngx_uint_t   ch;

    if (p == last || *p != '"') {
        return NULL;
    }

    /* find the end first: the copy is never longer than the text */

    for (end = p + 1; end < last && *end != '"'; end++) {
        if (*end == '\\') {
            end++;
        }
    }

    if (end >= last) {
        return NULL;
    }

    out->data = ngx_pnalloc(pool, end - p);
    if (out->data == NULL) {
        return NULL;
    }

    d = out->data;

    for (p++; p < end; p++) {

        if (*p < 0x20) {
            return NULL;
        }

        if (*p != '\\') {
            *d++ = *p;
            continue;
        }

        p++;

        switch (*p) {
        case '"':  *d++ = '"';  break;
        case '\\': *d++ = '\\'; break;
        case '/':  *d++ = '/';  break;
        case 'b':  *d++ = '\b'; break;
        case 'f':  *d++ = '\f'; break;
        case 'n':  *d++ = '\n'; break;
        case 'r':  *d++ = '\r'; break;
        case 't':  *d++ = '\t'; break;

        case 'u':
            if (end - p < 5) {
                return NULL;
            }

            ch = 0;

            for (i = 1; i <= 4; i++) {
                n = ngx_hextoi(p + i, 1);
                if (n == NGX_ERROR) {
                    return NULL;
                }

                ch = (ch << 4) | (ngx_uint_t) n;
            }

            /* no surrogates, no NUL: claims have no use for them */

            if (ch == 0 || (ch >= 0xd800 && ch <= 0xdfff)) {
                return NULL;
            }

            if (ch < 0x80) {
                *d++ = (u_char) ch;

            } else if (ch < 0x800) {
                *d++ = (u_char) (0xc0 | (ch >> 6));
                *d++ = (u_char) (0x80 | (ch & 0x3f));

            } else {
                *d++ = (u_char) (0xe0 | (ch >> 12));
                *d++ = (u_char) (0x80 | ((ch >> 6) & 0x3f));
                *d++ = (u_char) (0x80 | (ch & 0x3f));
            }

            p += 4;
            break;

        default:
            return NULL;
        }
    }

    out->len = d - out->data;
    *d = '\0';

    return end + 1;
}


static u_char *
ngx_http_x402_json_number(u_char *p, u_char *last)
{
    u_char  *start;

    if (p < last && *p == '-') {
        p++;
    }

    if (p == last || *p < '0' || *p > '9') {
        return NULL;
    }

    if (*p == '0') {
        p++;

    } else {
        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < last && *p == '.') {
        start = ++p;

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == start) {
            return NULL;
        }
    }

    if (p < last && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < last && (*p == '+' || *p == '-')) {
            p++;
        }

        start = p;

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == start) {
            return NULL;
        }
    }

    return p;
}


/* a field by name, of the given type (0: any) */

ngx_http_x402_json_t *
ngx_http_x402_json_get(ngx_array_t *fields, char *name, ngx_uint_t type)
{
    size_t                 len;
    ngx_uint_t             i;
    ngx_http_x402_json_t  *f;

    len = ngx_strlen(name);
    f = fields->elts;

    for (i = 0; i < fields->nelts; i++) {
        if (f[i].key.len == len
            && ngx_strncmp(f[i].key.data, name, len) == 0)
        {
            return (type == 0 || f[i].type == type) ? &f[i] : NULL;
        }
    }

    return NULL;
}


/* an integer of seconds: digits only */

ngx_int_t
ngx_http_x402_json_time(ngx_array_t *fields, char *name, time_t *value)
{
    ngx_http_x402_json_t  *f;

    f = ngx_http_x402_json_get(fields, name, NGX_HTTP_X402_JSON_NUMBER);

    if (f == NULL || !ngx_http_x402_is_decimal(&f->value)
        || f->value.len > 12)
    {
        return NGX_DECLINED;
    }

    *value = ngx_atotm(f->value.data, f->value.len);

    return *value == NGX_ERROR ? NGX_DECLINED : NGX_OK;
}


/* an optional non-negative integer; -1 when absent */

ngx_int_t
ngx_http_x402_json_int(ngx_array_t *fields, char *name, ngx_int_t *value)
{
    ngx_http_x402_json_t  *f;

    *value = -1;

    f = ngx_http_x402_json_get(fields, name, 0);
    if (f == NULL) {
        return NGX_OK;
    }

    if (f->type != NGX_HTTP_X402_JSON_NUMBER
        || !ngx_http_x402_is_decimal(&f->value) || f->value.len > 9)
    {
        return NGX_DECLINED;
    }

    *value = ngx_atoi(f->value.data, f->value.len);

    return *value == NGX_ERROR ? NGX_DECLINED : NGX_OK;
}

/* canonical: digits only, no leading zero unless it is "0" */

ngx_uint_t
ngx_http_x402_is_decimal(ngx_str_t *s)
{
    size_t  i;

    if (s->len == 0 || (s->len > 1 && s->data[0] == '0')) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < '0' || s->data[i] > '9') {
            return 0;
        }
    }

    return 1;
}
