/* dns_parse.c - DNS reply bytes to struct dns_answer (see dns_parse.h for the promises).
 *
 * c-ares 1.18 has no TLSA parser and no generic record iterator, and its TXT parser that keeps
 * record boundaries hands out one node per character-string; so the answer section is walked
 * here by hand. Names go through ares_expand_name(), which bounds-checks compression pointers;
 * every other length is checked below before it is used.
 */
#include "dns_parse.h"

#include <ares.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { HDR_LEN = 12, RR_FIXED = 10, CLASS_IN = 1, MAX_MSG = 65535 };

/* One answer-section record, located but not yet decoded. */
struct rr_view {
    char *owner; /* from ares_expand_name: ares_free_string() */
    uint16_t type, klass;
    uint32_t ttl;
    size_t rdoff, rdlen;
};

struct parser {
    const unsigned char *buf;
    size_t len;
    struct dns_answer *out;
};

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static enum dns_status malformed(struct parser *p, const char *why)
{
    snprintf(p->out->detail, sizeof(p->out->detail), "malformed answer: %s", why);
    p->out->status = DNS_EMALFORMED;
    return DNS_EMALFORMED;
}

/* Expands the name at *off into a malloc'ed string (ours, not ares's), advancing *off. When
 * `end` is nonzero the name must end exactly there (a name filling an rdata). */
static int expand_name(struct parser *p, size_t *off, size_t end, char **name)
{
    char *s = NULL;
    long enclen = 0;
    *name = NULL;
    if (*off >= p->len)
        return -1;
    if (ares_expand_name(p->buf + *off, p->buf, (int)p->len, &s, &enclen) != ARES_SUCCESS)
        return -1;
    if (enclen <= 0 || (size_t)enclen > p->len - *off || (end && *off + (size_t)enclen != end)) {
        ares_free_string(s);
        return -1;
    }
    *name = strdup(s);
    ares_free_string(s);
    if (!*name)
        return -1;
    *off += (size_t)enclen;
    return 0;
}

static void keep_ttl(struct dns_answer *a, uint32_t ttl)
{
    if (a->ttl == 0 || ttl < a->ttl)
        a->ttl = ttl;
}

/* Decodes one record's rdata into rr. Returns 0, or -1 with a reason in *why. */
static int decode_rr(struct parser *p, const struct rr_view *v, struct dns_rr *rr, const char **why)
{
    const unsigned char *d = p->buf + v->rdoff;
    size_t off;
    rr->type = v->type;
    rr->ttl = v->ttl;
    switch (v->type) {
    case DNS_T_A:
        if (v->rdlen != 4)
            return *why = "A record length is not 4", -1;
        memcpy(&rr->a, d, 4);
        return 0;
    case DNS_T_AAAA:
        if (v->rdlen != 16)
            return *why = "AAAA record length is not 16", -1;
        memcpy(&rr->aaaa, d, 16);
        return 0;
    case DNS_T_MX:
        if (v->rdlen < 3)
            return *why = "MX record too short", -1;
        rr->mx.pref = rd16(d);
        off = v->rdoff + 2;
        if (expand_name(p, &off, v->rdoff + v->rdlen, &rr->mx.host) < 0)
            return *why = "bad MX exchange name", -1;
        return 0;
    case DNS_T_CNAME:
        off = v->rdoff;
        if (expand_name(p, &off, v->rdoff + v->rdlen, &rr->cname) < 0)
            return *why = "bad CNAME target", -1;
        return 0;
    case DNS_T_TXT: {
        /* First pass: check the character-strings tile the rdata exactly, and sum them. */
        size_t total = 0;
        for (size_t i = 0; i < v->rdlen;) {
            size_t n = d[i];
            if (n > v->rdlen - i - 1)
                return *why = "TXT string overruns its record", -1;
            total += n;
            i += 1 + n;
        }
        rr->txt.data = malloc(total + 1);
        if (!rr->txt.data)
            return *why = "out of memory", -1;
        size_t w = 0;
        for (size_t i = 0; i < v->rdlen;) {
            size_t n = d[i];
            memcpy(rr->txt.data + w, d + i + 1, n);
            w += n;
            i += 1 + n;
        }
        rr->txt.data[w] = '\0';
        rr->txt.len = w;
        return 0;
    }
    case DNS_T_TLSA:
        if (v->rdlen < 3)
            return *why = "TLSA record too short", -1;
        rr->tlsa.usage = d[0];
        rr->tlsa.selector = d[1];
        rr->tlsa.mtype = d[2];
        rr->tlsa.len = v->rdlen - 3;
        if (rr->tlsa.len) {
            rr->tlsa.data = malloc(rr->tlsa.len);
            if (!rr->tlsa.data)
                return *why = "out of memory", -1;
            memcpy(rr->tlsa.data, d + 3, rr->tlsa.len);
        }
        return 0;
    default:
        return *why = "unsupported record type", -1;
    }
}

static void rr_free(struct dns_rr *rr)
{
    switch (rr->type) {
    case DNS_T_MX:
        free(rr->mx.host);
        break;
    case DNS_T_CNAME:
        free(rr->cname);
        break;
    case DNS_T_TXT:
        free(rr->txt.data);
        break;
    case DNS_T_TLSA:
        free(rr->tlsa.data);
        break;
    default:
        break;
    }
}

/* Stable: equal preferences keep the server's order, which delivery may then shuffle. */
static void sort_mx(struct dns_rr *rr, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct dns_rr x = rr[i];
        size_t j = i;
        while (j > 0 && rr[j - 1].mx.pref > x.mx.pref) {
            rr[j] = rr[j - 1];
            j--;
        }
        rr[j] = x;
    }
}

static bool decodable(uint16_t type)
{
    return type == DNS_T_A || type == DNS_T_AAAA || type == DNS_T_MX || type == DNS_T_TXT ||
           type == DNS_T_TLSA || type == DNS_T_CNAME;
}

static enum dns_status parse(struct parser *p, struct rr_view **viewsp, size_t *nviewsp)
{
    struct dns_answer *a = p->out;
    const unsigned char *b = p->buf;
    if (p->len < HDR_LEN)
        return malformed(p, "shorter than a header");
    if (p->len > MAX_MSG)
        return malformed(p, "longer than 65535 bytes");
    if (!(b[2] & 0x80))
        return malformed(p, "not a response");
    a->tc = (b[2] & 0x02) != 0;
    a->ad = (b[3] & 0x20) != 0;
    a->rcode = b[3] & 0x0f;
    uint16_t qd = rd16(b + 4), an = rd16(b + 6);
    if (qd != 1)
        return malformed(p, "question count is not 1");

    size_t off = HDR_LEN;
    if (expand_name(p, &off, 0, &a->qname) < 0)
        return malformed(p, "bad question name");
    if (p->len - off < 4)
        return malformed(p, "question truncated");
    a->type = rd16(b + off);
    off += 4;

    switch (a->rcode) {
    case 0: /* NOERROR */
    case 3: /* NXDOMAIN: the answer may still hold the CNAMEs leading to the missing name */
        break;
    case 2:
        snprintf(a->detail, sizeof(a->detail), "server failure (SERVFAIL)");
        return a->status = DNS_SERVFAIL;
    default:
        snprintf(a->detail, sizeof(a->detail), "server answered rcode %d", a->rcode);
        return a->status = DNS_ERROR;
    }

    /* Each record needs at least a 1-byte name and the fixed part: refuse counts the packet
     * cannot hold before allocating for them. */
    if ((size_t)an * (1 + RR_FIXED) > p->len - off)
        return malformed(p, "answer count larger than the packet");
    struct rr_view *views = an ? calloc(an, sizeof(*views)) : NULL;
    if (an && !views) {
        snprintf(a->detail, sizeof(a->detail), "out of memory");
        return a->status = DNS_ERROR;
    }
    *viewsp = views;
    for (size_t i = 0; i < an; i++) {
        struct rr_view *v = &views[i];
        char *s = NULL;
        long enclen = 0;
        if (off >= p->len ||
            ares_expand_name(b + off, b, (int)p->len, &s, &enclen) != ARES_SUCCESS || enclen <= 0 ||
            (size_t)enclen > p->len - off) {
            if (s)
                ares_free_string(s);
            return malformed(p, "bad owner name in the answer section");
        }
        v->owner = s;
        *nviewsp = i + 1;
        off += (size_t)enclen;
        if (p->len - off < RR_FIXED)
            return malformed(p, "answer record truncated");
        v->type = rd16(b + off);
        v->klass = rd16(b + off + 2);
        v->ttl = rd32(b + off + 4);
        v->rdlen = rd16(b + off + 8);
        off += RR_FIXED;
        if (v->rdlen > p->len - off)
            return malformed(p, "record data overruns the packet");
        v->rdoff = off;
        off += v->rdlen;
    }

    /* Follow the CNAME chain from the question name. */
    a->canon = strdup(a->qname);
    if (!a->canon) {
        snprintf(a->detail, sizeof(a->detail), "out of memory");
        return a->status = DNS_ERROR;
    }
    if (a->type != DNS_T_CNAME) {
        for (;;) {
            struct rr_view *c = NULL;
            for (size_t i = 0; i < an && !c; i++) {
                if (views[i].type == DNS_T_CNAME && views[i].klass == CLASS_IN &&
                    strcasecmp(views[i].owner, a->canon) == 0)
                    c = &views[i];
            }
            if (!c)
                break;
            if (a->ncname == DNS_MAX_CNAME)
                return malformed(p, "CNAME chain too long or looping");
            size_t roff = c->rdoff;
            char *target;
            if (expand_name(p, &roff, c->rdoff + c->rdlen, &target) < 0)
                return malformed(p, "bad CNAME target");
            free(a->canon);
            a->canon = target;
            a->ncname++;
            keep_ttl(a, c->ttl);
        }
    }

    if (a->rcode == 3) {
        snprintf(a->detail, sizeof(a->detail), "no such domain (NXDOMAIN)");
        return a->status = DNS_NXDOMAIN;
    }

    size_t keep = 0;
    for (size_t i = 0; i < an; i++) {
        if (views[i].type == a->type && views[i].klass == CLASS_IN &&
            strcasecmp(views[i].owner, a->canon) == 0)
            keep++;
    }
    if (keep && decodable(a->type)) {
        a->rr = calloc(keep, sizeof(*a->rr));
        if (!a->rr) {
            snprintf(a->detail, sizeof(a->detail), "out of memory");
            return a->status = DNS_ERROR;
        }
        for (size_t i = 0; i < an; i++) {
            const struct rr_view *v = &views[i];
            if (v->type != a->type || v->klass != CLASS_IN || strcasecmp(v->owner, a->canon) != 0)
                continue;
            const char *why = NULL;
            struct dns_rr *rr = &a->rr[a->nrr];
            int rc = decode_rr(p, v, rr, &why);
            a->nrr++; /* counted even on failure: rr_free() cleans a half-decoded record */
            if (rc < 0)
                return malformed(p, why);
            keep_ttl(a, v->ttl);
        }
    }
    if (a->type == DNS_T_MX) {
        sort_mx(a->rr, a->nrr);
        a->null_mx = a->nrr == 1 && a->rr[0].mx.host[0] == '\0';
    }
    if (a->nrr == 0) {
        snprintf(a->detail, sizeof(a->detail), "no %s record",
                 dns_type_name(a->type) ? dns_type_name(a->type) : "such");
        return a->status = DNS_NODATA;
    }
    return a->status = DNS_OK;
}

enum dns_status dns_parse_answer(const unsigned char *buf, size_t len, struct dns_answer *out)
{
    memset(out, 0, sizeof(*out));
    struct parser p = {buf, len, out};
    struct rr_view *views = NULL;
    size_t nviews = 0;
    enum dns_status st = parse(&p, &views, &nviews);
    for (size_t i = 0; i < nviews; i++)
        ares_free_string(views[i].owner);
    free(views);
    if (st == DNS_EMALFORMED || st == DNS_ERROR) {
        /* Never partial records: the caller sees the status and the names only. */
        for (size_t i = 0; i < out->nrr; i++)
            rr_free(&out->rr[i]);
        free(out->rr);
        out->rr = NULL;
        out->nrr = 0;
        out->null_mx = false;
    }
    out->status = st;
    return st;
}

void dns_answer_clear(struct dns_answer *ans)
{
    if (!ans)
        return;
    for (size_t i = 0; i < ans->nrr; i++)
        rr_free(&ans->rr[i]);
    free(ans->rr);
    free(ans->qname);
    free(ans->canon);
    memset(ans, 0, sizeof(*ans));
}

void dns_answer_move(struct dns_answer *dst, struct dns_answer *src)
{
    if (dst == src)
        return;
    dns_answer_clear(dst);
    *dst = *src;
    memset(src, 0, sizeof(*src));
}

/* Appends to a bounded buffer and counts what would not fit, like snprintf. */
struct fmt {
    char *out;
    size_t cap, len;
};

static void fmt_put(struct fmt *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, f->len++) {
        if (f->len + 1 < f->cap)
            f->out[f->len] = s[i];
    }
}

static void fmt_str(struct fmt *f, const char *s)
{
    fmt_put(f, s, strlen(s));
}

/* A name with the trailing dot of zone-file form; the root is ".". */
static void fmt_name(struct fmt *f, const char *name)
{
    if (name && name[0])
        fmt_str(f, name);
    fmt_put(f, ".", 1);
}

size_t dns_rr_format(const struct dns_rr *rr, char *out, size_t outlen)
{
    struct fmt f = {out, outlen, 0};
    char tmp[INET6_ADDRSTRLEN + 8];
    static const char hex[] = "0123456789abcdef";
    switch (rr->type) {
    case DNS_T_A:
        fmt_str(&f, inet_ntop(AF_INET, &rr->a, tmp, sizeof(tmp)) ? tmp : "?");
        break;
    case DNS_T_AAAA:
        fmt_str(&f, inet_ntop(AF_INET6, &rr->aaaa, tmp, sizeof(tmp)) ? tmp : "?");
        break;
    case DNS_T_MX:
        snprintf(tmp, sizeof(tmp), "%u ", (unsigned)rr->mx.pref);
        fmt_str(&f, tmp);
        fmt_name(&f, rr->mx.host);
        break;
    case DNS_T_CNAME:
        fmt_name(&f, rr->cname);
        break;
    case DNS_T_TXT:
        fmt_put(&f, "\"", 1);
        for (size_t i = 0; i < rr->txt.len; i++) {
            unsigned char c = rr->txt.data[i];
            if (c == '"' || c == '\\') {
                char e[2] = {'\\', (char)c};
                fmt_put(&f, e, 2);
            } else if (c < 0x20 || c > 0x7e) {
                snprintf(tmp, sizeof(tmp), "\\%03u", (unsigned)c);
                fmt_str(&f, tmp);
            } else {
                fmt_put(&f, (const char *)&c, 1);
            }
        }
        fmt_put(&f, "\"", 1);
        break;
    case DNS_T_TLSA:
        snprintf(tmp, sizeof(tmp), "%u %u %u ", (unsigned)rr->tlsa.usage,
                 (unsigned)rr->tlsa.selector, (unsigned)rr->tlsa.mtype);
        fmt_str(&f, tmp);
        for (size_t i = 0; i < rr->tlsa.len; i++) {
            char h[2] = {hex[rr->tlsa.data[i] >> 4], hex[rr->tlsa.data[i] & 15]};
            fmt_put(&f, h, 2);
        }
        if (rr->tlsa.len == 0)
            fmt_put(&f, "-", 1);
        break;
    default:
        fmt_str(&f, "?");
        break;
    }
    if (outlen > 0)
        out[f.len < outlen ? f.len : outlen - 1] = '\0';
    return f.len;
}

bool dns_status_temporary(enum dns_status st)
{
    switch (st) {
    case DNS_SERVFAIL:
    case DNS_TIMEOUT:
    case DNS_EMALFORMED:
    case DNS_ERROR:
    case DNS_CANCELLED:
        return true;
    default:
        return false;
    }
}

const char *dns_status_name(enum dns_status st)
{
    switch (st) {
    case DNS_OK:
        return "OK";
    case DNS_NODATA:
        return "NODATA";
    case DNS_NXDOMAIN:
        return "NXDOMAIN";
    case DNS_SERVFAIL:
        return "SERVFAIL";
    case DNS_TIMEOUT:
        return "TIMEOUT";
    case DNS_EMALFORMED:
        return "MALFORMED";
    case DNS_ERROR:
        return "ERROR";
    case DNS_BADNAME:
        return "BADNAME";
    case DNS_CANCELLED:
        return "CANCELLED";
    }
    return "ERROR";
}

static const struct {
    uint16_t type;
    const char *name;
} type_names[] = {
    {DNS_T_A, "A"},       {DNS_T_CNAME, "CNAME"}, {DNS_T_MX, "MX"},     {DNS_T_TXT, "TXT"},
    {DNS_T_AAAA, "AAAA"}, {DNS_T_RRSIG, "RRSIG"}, {DNS_T_TLSA, "TLSA"},
};

const char *dns_type_name(uint16_t type)
{
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
        if (type_names[i].type == type)
            return type_names[i].name;
    }
    return NULL;
}

uint16_t dns_type_from_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof(type_names) / sizeof(type_names[0]); i++) {
        if (strcasecmp(type_names[i].name, name) == 0)
            return type_names[i].type;
    }
    return 0;
}
