/* mxresolve.c - MX and route host resolution over dns.c (see mxresolve.h).
 *
 * One lookup object per destination: the MX query, then the A and AAAA queries of every host in
 * parallel; when the last answer is in, the flat target list is built and sorted, and the callback
 * runs once. Answers that need no query (address literals) are delivered through a zero timer so
 * the callback never runs inside mx_resolve(). */
#include "mxresolve.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "strbuf.h"

#define MX_MAX_ADDRS 16

struct host_lk {
    struct mx_lookup *l;
    char name[MX_NAME_MAX];
    uint16_t pref, port;
    bool literal;
    struct dns_query *q[2]; /* A, AAAA */
    enum dns_status st[2];
    bool secure[2];
    struct mx_target addrs[2 * MX_MAX_ADDRS];
    size_t naddrs;
    char canon[MX_NAME_MAX]; /* "" unless an address answer followed CNAMEs */
};

struct qarg {
    struct host_lk *h;
    int which; /* 0: A, 1: AAAA */
};

struct mx_lookup {
    struct ev_loop *loop;
    struct dns_resolver *r;
    mx_cb cb;
    void *arg;
    enum cfg_ipsort sort;
    uint16_t port;
    char domain[MX_NAME_MAX];
    struct dns_query *mxq;
    struct ev_timer *timer;
    struct host_lk hosts[MX_MAX_HOSTS];
    struct qarg qargs[MX_MAX_HOSTS][2];
    size_t nhosts;
    size_t pending;
    bool in_cb;
    struct mx_result res;
};

bool mx_parse_literal(const char *s, char *addr, size_t addrlen, int *family)
{
    size_t n = strlen(s);
    if (n < 3 || s[0] != '[' || s[n - 1] != ']')
        return false;
    char buf[64];
    const char *p = s + 1;
    size_t len = n - 2;
    bool v6tag = len > 5 && strncasecmp(p, "IPv6:", 5) == 0;
    if (v6tag)
        p += 5, len -= 5;
    if (len >= sizeof buf)
        return false;
    memcpy(buf, p, len);
    buf[len] = '\0';
    unsigned char tmp[16];
    int fam = 0;
    if (!v6tag && inet_pton(AF_INET, buf, tmp) == 1)
        fam = AF_INET;
    else if (inet_pton(AF_INET6, buf, tmp) == 1)
        fam = AF_INET6;
    else
        return false;
    if (addr)
        snprintf(addr, addrlen, "%s", buf);
    if (family)
        *family = fam;
    return true;
}

static int family_rank(int family, enum cfg_ipsort sort)
{
    bool v6first = sort == CFG_IPSORT_PREFER_V6 || sort == CFG_IPSORT_REQUIRE_V6;
    return (family == AF_INET6) == v6first ? 0 : 1;
}

size_t mx_sort_targets(struct mx_target *t, size_t n, enum cfg_ipsort sort)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (sort == CFG_IPSORT_REQUIRE_V4 && t[i].family != AF_INET)
            continue;
        if (sort == CFG_IPSORT_REQUIRE_V6 && t[i].family != AF_INET6)
            continue;
        if (k != i)
            t[k] = t[i];
        k++;
    }
    /* Insertion sort: stable, and lists are short. */
    for (size_t i = 1; i < k; i++) {
        struct mx_target x = t[i];
        size_t j = i;
        while (j > 0) {
            const struct mx_target *p = &t[j - 1];
            bool after = p->pref > x.pref || (p->pref == x.pref && family_rank(p->family, sort) >
                                                                       family_rank(x.family, sort));
            if (!after)
                break;
            t[j] = t[j - 1];
            j--;
        }
        t[j] = x;
    }
    return k;
}

size_t mx_route_hosts(const struct cfg_route_hosts *hosts,
                      struct mx_route_host out[CFG_ROUTE_HOSTS_MAX])
{
    int order[CFG_ROUTE_HOSTS_MAX];
    cfg_route_hosts_order(hosts, order);
    for (int i = 0; i < hosts->n; i++) {
        const struct cfg_route_host *x = &hosts->v[order[i]];
        out[i].name = x->name;
        out[i].port = (uint16_t)cfg_route_host_port(x);
        out[i].literal = x->address;
    }
    return (size_t)hosts->n;
}

const char *mx_canon(const struct mx_result *res, const struct mx_target *t)
{
    return res->canon && t->host_index < res->nhosts ? res->canon[t->host_index] : NULL;
}

void mx_result_clear(struct mx_result *res)
{
    free(res->targets);
    for (size_t i = 0; res->canon && i < res->nhosts; i++)
        free(res->canon[i]);
    free(res->canon);
    memset(res, 0, sizeof *res);
}

void mx_result_move(struct mx_result *dst, struct mx_result *src)
{
    mx_result_clear(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}

static void lookup_free(struct mx_lookup *l)
{
    dns_query_cancel(l->mxq);
    for (size_t i = 0; i < l->nhosts; i++)
        for (int w = 0; w < 2; w++)
            dns_query_cancel(l->hosts[i].q[w]);
    if (l->timer)
        ev_timer_cancel(l->loop, l->timer);
    mx_result_clear(&l->res);
    free(l);
}

void mx_cancel(struct mx_lookup *l)
{
    if (!l || l->in_cb)
        return;
    lookup_free(l);
}

static void finish(struct mx_lookup *l)
{
    l->in_cb = true;
    l->cb(&l->res, l->arg);
    l->in_cb = false;
    lookup_free(l);
}

static void set_fail(struct mx_lookup *l, enum mx_status st, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_fail(struct mx_lookup *l, enum mx_status st, const char *code, const char *fmt, ...)
{
    l->res.status = st;
    snprintf(l->res.code, sizeof l->res.code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->res.reason, sizeof l->res.reason, fmt, ap);
    va_end(ap);
}

static const char *status_word(const struct dns_answer *a)
{
    switch (a->status) {
    case DNS_NXDOMAIN:
        return "NXDomain";
    case DNS_NODATA:
        return "NoData";
    case DNS_SERVFAIL:
        return "SERVFAIL";
    case DNS_TIMEOUT:
        return "timeout";
    default:
        return a->detail[0] ? a->detail : dns_status_name(a->status);
    }
}

/* Every address answer is in: the target list. */
static void assemble(struct mx_lookup *l)
{
    size_t total = 0, tempfail = 0, noaddr = 0;
    for (size_t i = 0; i < l->nhosts; i++)
        total += l->hosts[i].naddrs;
    l->res.targets = total ? xcalloc(total, sizeof *l->res.targets) : NULL;
    l->res.canon = l->nhosts ? xcalloc(l->nhosts, sizeof *l->res.canon) : NULL;
    size_t k = 0;
    const char *temp_host = NULL;
    for (size_t i = 0; i < l->nhosts; i++) {
        struct host_lk *h = &l->hosts[i];
        if (h->canon[0])
            l->res.canon[i] = xstrdup(h->canon);
        for (size_t j = 0; j < h->naddrs; j++) {
            struct mx_target *t = &l->res.targets[k++];
            *t = h->addrs[j];
            t->host_index = i;
        }
        bool temp = false;
        for (int w = 0; w < 2; w++)
            if (!h->literal && h->q[w] == NULL && dns_status_temporary(h->st[w]) &&
                h->st[w] != DNS_OK)
                temp = true;
        if (h->naddrs == 0) {
            if (temp) {
                tempfail++;
                if (!temp_host)
                    temp_host = h->name;
            } else {
                noaddr++;
            }
        }
    }
    l->res.ntargets = mx_sort_targets(l->res.targets, k, l->sort);
    l->res.nhosts = l->nhosts;
    l->res.hosts_tempfail = tempfail;
    l->res.hosts_noaddr = noaddr;
    if (l->res.ntargets > 0) {
        l->res.status = MX_OK;
    } else if (tempfail > 0) {
        set_fail(l, MX_TEMPFAIL, "4.4.3", "DNS Temporary Failure looking up %s (A/AAAA)",
                 temp_host);
    } else if (k > 0) {
        set_fail(l, MX_PERMFAIL, "5.4.4", "No address of %s matches the IP sort preference",
                 l->domain);
    } else {
        /* Under Require, the other family was never asked for: say which one is missing. */
        const char *family = l->sort == CFG_IPSORT_REQUIRE_V4   ? "IPv4 "
                             : l->sort == CFG_IPSORT_REQUIRE_V6 ? "IPv6 "
                                                                : "";
        const char *why = l->sort == CFG_IPSORT_REQUIRE_V4   ? " (IP sort preference: Require IPv4)"
                          : l->sort == CFG_IPSORT_REQUIRE_V6 ? " (IP sort preference: Require IPv6)"
                                                             : "";
        if (l->res.implicit)
            set_fail(l, MX_PERMFAIL, "5.1.2",
                     "DNS Hard Error looking up %s (MX): no MX and no %saddress%s", l->domain,
                     family, why);
        else
            set_fail(l, MX_PERMFAIL, "5.4.4", "DNS Hard Error: no MX host of %s has an %saddress%s",
                     l->domain, family, why);
    }
    finish(l);
}

static void addr_cb(struct dns_answer *ans, void *arg)
{
    struct qarg *qa = arg;
    struct host_lk *h = qa->h;
    struct mx_lookup *l = h->l;
    h->q[qa->which] = NULL;
    h->st[qa->which] = ans->status;
    h->secure[qa->which] = ans->secure;
    if (ans->status == DNS_OK && ans->ncname > 0 && ans->canon && !h->canon[0] &&
        strcasecmp(ans->canon, h->name) != 0)
        snprintf(h->canon, sizeof h->canon, "%s", ans->canon);
    if (ans->status == DNS_OK) {
        for (size_t i = 0; i < ans->nrr && h->naddrs < 2 * MX_MAX_ADDRS; i++) {
            const struct dns_rr *rr = &ans->rr[i];
            struct mx_target *t = &h->addrs[h->naddrs];
            memset(t, 0, sizeof *t);
            if (rr->type == DNS_T_A) {
                t->family = AF_INET;
                inet_ntop(AF_INET, &rr->a, t->addr, sizeof t->addr);
            } else if (rr->type == DNS_T_AAAA) {
                t->family = AF_INET6;
                inet_ntop(AF_INET6, &rr->aaaa, t->addr, sizeof t->addr);
            } else {
                continue;
            }
            snprintf(t->host, sizeof t->host, "%s", h->name);
            t->port = h->port;
            t->pref = h->pref;
            t->mx_secure = l->res.mx_secure;
            t->addr_secure = ans->secure;
            h->naddrs++;
        }
    }
    if (--l->pending == 0)
        assemble(l);
}

static void add_host(struct mx_lookup *l, const char *name, uint16_t pref, uint16_t port,
                     bool literal)
{
    if (l->nhosts >= MX_MAX_HOSTS)
        return;
    struct host_lk *h = &l->hosts[l->nhosts];
    memset(h, 0, sizeof *h);
    h->l = l;
    snprintf(h->name, sizeof h->name, "%s", name);
    h->pref = pref;
    h->port = port ? port : 25;
    h->literal = literal;
    if (literal) {
        struct mx_target *t = &h->addrs[0];
        char lit[MX_NAME_MAX];
        if (name[0] == '[') {
            snprintf(lit, sizeof lit, "%s", name);
        } else {
            snprintf(lit, sizeof lit, strchr(name, ':') ? "[IPv6:%s]" : "[%s]", name);
        }
        if (mx_parse_literal(lit, t->addr, sizeof t->addr, &t->family)) {
            snprintf(t->host, sizeof t->host, "%s", lit);
            snprintf(h->name, sizeof h->name, "%s", lit);
            t->port = h->port;
            t->pref = pref;
            t->literal = true;
            h->naddrs = 1;
        }
    }
    l->nhosts++;
}

/* Starts the address queries of every host; finishes at once (from a timer) when none is needed. */
static void timer_finish(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct mx_lookup *l = arg;
    l->timer = NULL;
    assemble(l);
}

static void start_addresses(struct mx_lookup *l, bool from_loop)
{
    l->pending = 1; /* held while queries start, so no callback assembles early */
    for (size_t i = 0; i < l->nhosts; i++) {
        struct host_lk *h = &l->hosts[i];
        if (h->literal)
            continue;
        static const uint16_t types[2] = {DNS_T_A, DNS_T_AAAA};
        for (int w = 0; w < 2; w++) {
            if ((w == 0 && l->sort == CFG_IPSORT_REQUIRE_V6) ||
                (w == 1 && l->sort == CFG_IPSORT_REQUIRE_V4)) {
                h->st[w] = DNS_NODATA;
                continue;
            }
            l->qargs[i][w].h = h;
            l->qargs[i][w].which = w;
            h->q[w] = dns_query(l->r, h->name, types[w], addr_cb, &l->qargs[i][w]);
            if (h->q[w])
                l->pending++;
            else
                h->st[w] = DNS_ERROR;
        }
    }
    if (--l->pending > 0)
        return;
    if (from_loop) {
        assemble(l);
    } else {
        l->timer = ev_timer_add(l->loop, 0, timer_finish, l);
        if (!l->timer)
            abort(); /* out of memory: the same severity as xmalloc */
    }
}

static void mx_cb_dns(struct dns_answer *ans, void *arg)
{
    struct mx_lookup *l = arg;
    l->mxq = NULL;
    l->res.mx_secure = ans->secure;
    switch (ans->status) {
    case DNS_OK:
        if (ans->null_mx) {
            l->res.null_mx = true;
            set_fail(l, MX_PERMFAIL, "5.1.10",
                     "DNS Hard Error looking up %s (MX): null MX, the domain accepts no mail",
                     l->domain);
            finish(l);
            return;
        }
        for (size_t i = 0; i < ans->nrr; i++) {
            const struct dns_rr *rr = &ans->rr[i];
            if (rr->type != DNS_T_MX || !rr->mx.host || !rr->mx.host[0])
                continue;
            add_host(l, rr->mx.host, rr->mx.pref, l->port, false);
        }
        if (l->nhosts == 0) {
            set_fail(l, MX_PERMFAIL, "5.1.10", "DNS Hard Error looking up %s (MX): no usable MX",
                     l->domain);
            finish(l);
            return;
        }
        start_addresses(l, true);
        return;
    case DNS_NODATA:
        /* RFC 5321 5.1: no MX, the domain itself is the host (implicit MX). */
        l->res.implicit = true;
        l->res.mx_secure = false;
        add_host(l, l->domain, 0, l->port, false);
        start_addresses(l, true);
        return;
    case DNS_NXDOMAIN:
    case DNS_BADNAME:
        set_fail(l, MX_PERMFAIL, "5.1.2", "DNS Hard Error looking up %s (MX): NXDomain", l->domain);
        finish(l);
        return;
    default:
        set_fail(l, MX_TEMPFAIL, "4.4.3", "DNS Temporary Failure looking up %s (MX): %s", l->domain,
                 status_word(ans));
        finish(l);
        return;
    }
}

static struct mx_lookup *lookup_new(struct ev_loop *loop, struct dns_resolver *r,
                                    enum cfg_ipsort sort, uint16_t port, mx_cb cb, void *arg)
{
    struct mx_lookup *l = xcalloc(1, sizeof *l);
    l->loop = loop;
    l->r = r;
    l->sort = sort;
    l->port = port ? port : 25;
    l->cb = cb;
    l->arg = arg;
    return l;
}

struct mx_lookup *mx_resolve(struct ev_loop *loop, struct dns_resolver *r, const char *domain,
                             enum cfg_ipsort sort, uint16_t port, mx_cb cb, void *arg)
{
    struct mx_lookup *l = lookup_new(loop, r, sort, port, cb, arg);
    snprintf(l->domain, sizeof l->domain, "%s", domain);
    size_t n = strlen(l->domain);
    if (n > 0 && l->domain[n - 1] == '.')
        l->domain[n - 1] = '\0';
    if (l->domain[0] == '[') {
        add_host(l, l->domain, 0, l->port, true);
        start_addresses(l, false);
        return l;
    }
    l->mxq = dns_query(r, l->domain, DNS_T_MX, mx_cb_dns, l);
    if (!l->mxq) {
        free(l);
        return NULL;
    }
    return l;
}

struct mx_lookup *mx_resolve_route(struct ev_loop *loop, struct dns_resolver *r,
                                   const struct mx_route_host *hosts, size_t n,
                                   enum cfg_ipsort sort, mx_cb cb, void *arg)
{
    struct mx_lookup *l = lookup_new(loop, r, sort, 25, cb, arg);
    l->res.route = true;
    snprintf(l->domain, sizeof l->domain, "%s", n > 0 ? hosts[0].name : "route");
    for (size_t i = 0; i < n; i++)
        add_host(l, hosts[i].name, (uint16_t)i, hosts[i].port, hosts[i].literal);
    start_addresses(l, false);
    return l;
}
