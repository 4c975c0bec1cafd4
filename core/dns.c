/* dns.c - c-ares channels driven by the event loop; server failover and `secure` (see dns.h).
 *
 * Each server has its own channel (tries 1, so c-ares never moves a query to another server).
 * c-ares tells us which sockets to watch through ARES_OPT_SOCK_STATE_CB; readiness goes to
 * ares_process_fd(); one loop timer, set to the earliest ares_timeout() of all channels, drives
 * the timeouts. Answers are not handed to the user from inside c-ares: a finished query goes on
 * a completion queue, delivered after ares_process_fd() has returned, so a user callback can do
 * anything (start queries, cancel, free the resolver) without re-entering c-ares under its feet.
 */
#include "dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

enum { EDNS_UDP_SIZE = 1232, CLASS_IN = 1 };
enum { RCODE_FORMERR = 1, RCODE_NOTIMP = 4, RCODE_REFUSED = 5 };

struct dns_chan {
    struct dns_resolver *r;
    ares_channel ch;
    struct dns_server srv;
    char label[64]; /* "addr#port" */
};

struct dns_query {
    struct dns_resolver *r;
    struct dns_query *prev, *next; /* live list: queries not yet finished */
    struct dns_query *done_next;   /* completion queue */
    char *name;
    uint16_t type;
    dns_cb cb;
    void *arg;
    unsigned attempts; /* made so far */
    bool cancelled;
    struct dns_answer ans;
};

struct dns_resolver {
    struct ev_loop *loop;
    struct dns_chan chans[DNS_MAX_SERVERS];
    size_t nchans;
    unsigned tries;
    struct ev_timer *timer; /* c-ares timeouts */
    uint64_t timer_at;
    struct ev_timer *flush_timer; /* completions that happened outside a loop callback */
    struct dns_query *live;
    struct dns_query *done_head, *done_tail;
    int depth; /* > 0 while inside c-ares or delivering callbacks */
    bool dying;
};

static void after(struct dns_resolver *r);
static void send_attempt(struct dns_query *q);

/* ---- servers ---- */

bool dns_addr_is_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) != 1)
        return false;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a6.s6_addr, mapped, 12) == 0)
        return a6.s6_addr[12] == 127;
    return IN6_IS_ADDR_LOOPBACK(&a6);
}

size_t dns_read_resolv_conf(const char *path, struct dns_server *out, size_t max)
{
    size_t n = 0;
    FILE *f = fopen(path ? path : "/etc/resolv.conf", "r");
    char line[512];
    while (f && n < max && fgets(line, sizeof(line), f)) {
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (strncmp(p, "nameserver", 10) != 0 || !isspace((unsigned char)p[10]))
            continue;
        p += 10;
        while (isspace((unsigned char)*p))
            p++;
        size_t len = strcspn(p, " \t\r\n#;");
        if (len == 0 || len >= sizeof(out[n].addr))
            continue;
        char addr[sizeof(out[n].addr)];
        memcpy(addr, p, len);
        addr[len] = '\0';
        unsigned char tmp[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET, addr, tmp) != 1 && inet_pton(AF_INET6, addr, tmp) != 1)
            continue; /* includes scoped fe80::1%eth0: c-ares 1.18 cannot take a scope */
        memset(&out[n], 0, sizeof(out[n]));
        memcpy(out[n].addr, addr, len + 1);
        out[n].port = 53;
        out[n].trusted = dns_addr_is_loopback(addr);
        n++;
    }
    if (f)
        fclose(f);
    if (n == 0 && max > 0) {
        memset(&out[0], 0, sizeof(out[0]));
        strcpy(out[0].addr, "127.0.0.1");
        out[0].port = 53;
        out[0].trusted = true;
        n = 1;
    }
    return n;
}

/* ---- the loop side ---- */

static void on_io(struct ev_loop *loop, int fd, unsigned revents, void *arg)
{
    (void)loop;
    struct dns_chan *c = arg;
    struct dns_resolver *r = c->r;
    r->depth++;
    ares_process_fd(c->ch, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    r->depth--;
    after(r);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_chan *c = data;
    unsigned ev = (readable ? EV_READ : 0u) | (writable ? EV_WRITE : 0u);
    /* If this fails (out of memory) the query is not lost: the timeout timer still ends it. */
    (void)ev_io_set(c->r->loop, fd, ev, on_io, c);
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct dns_resolver *r = arg;
    r->timer = NULL;
    r->depth++;
    for (size_t i = 0; i < r->nchans; i++)
        ares_process_fd(r->chans[i].ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    r->depth--;
    after(r);
}

static void on_flush(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct dns_resolver *r = arg;
    r->flush_timer = NULL;
    after(r);
}

/* One loop timer at the earliest c-ares deadline of all channels. */
static void rearm_timer(struct dns_resolver *r)
{
    bool any = false;
    uint64_t ms = 0;
    for (size_t i = 0; i < r->nchans; i++) {
        struct timeval tvbuf, *tv = ares_timeout(r->chans[i].ch, NULL, &tvbuf);
        if (!tv)
            continue;
        /* c-ares truncates what is left to whole milliseconds and our clock is read in whole
         * milliseconds too: 2 ms more makes sure the timer fires after c-ares's deadline.
         * Firing before it would find nothing to time out, and re-arming at 0 would spin. */
        uint64_t m = (uint64_t)tv->tv_sec * 1000u + ((uint64_t)tv->tv_usec + 999u) / 1000u + 2u;
        if (!any || m < ms)
            ms = m;
        any = true;
    }
    if (!any) {
        ev_timer_cancel(r->loop, r->timer);
        r->timer = NULL;
        return;
    }
    uint64_t at = ev_now_ms(r->loop) + ms;
    if (r->timer && r->timer_at == at)
        return;
    ev_timer_cancel(r->loop, r->timer);
    r->timer = ev_timer_add(r->loop, ms, on_timer, r);
    r->timer_at = at;
}

/* ---- completion ---- */

static void query_free(struct dns_query *q)
{
    dns_answer_clear(&q->ans);
    free(q->name);
    free(q);
}

static void complete(struct dns_query *q)
{
    struct dns_resolver *r = q->r;
    /* Failures carry the question too, for logs and `dig` (best effort: no memory, no name). */
    if (!q->ans.qname)
        q->ans.qname = strdup(q->name);
    if (!q->ans.type)
        q->ans.type = q->type;
    if (q->prev)
        q->prev->next = q->next;
    else
        r->live = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
    q->done_next = NULL;
    if (r->done_tail)
        r->done_tail->done_next = q;
    else
        r->done_head = q;
    r->done_tail = q;
    if (r->depth == 0 && !r->dying && !r->flush_timer)
        r->flush_timer = ev_timer_add(r->loop, 0, on_flush, r);
}

static void fail(struct dns_query *q, enum dns_status st, const char *fmt, const char *what)
{
    q->ans.status = st;
    q->ans.secure = false;
    snprintf(q->ans.detail, sizeof(q->ans.detail), fmt, what);
}

static void really_free(struct dns_resolver *r)
{
    ev_timer_cancel(r->loop, r->timer);
    ev_timer_cancel(r->loop, r->flush_timer);
    r->timer = r->flush_timer = NULL;
    /* Destroying a channel ends its queries (ARES_EDESTRUCTION): they land on the done queue. */
    r->depth++;
    for (size_t i = 0; i < r->nchans; i++)
        ares_destroy(r->chans[i].ch);
    r->depth--;
    while (r->live) {
        struct dns_query *q = r->live;
        r->live = q->next;
        query_free(q);
    }
    while (r->done_head) {
        struct dns_query *q = r->done_head;
        r->done_head = q->done_next;
        query_free(q);
    }
    free(r);
}

/* After c-ares returned: deliver finished queries, then set the timer for what is left. */
static void after(struct dns_resolver *r)
{
    if (r->depth > 0)
        return;
    r->depth++;
    while (!r->dying && r->done_head) {
        struct dns_query *q = r->done_head;
        r->done_head = q->done_next;
        if (!r->done_head)
            r->done_tail = NULL;
        if (!q->cancelled)
            q->cb(&q->ans, q->arg);
        query_free(q);
    }
    r->depth--;
    if (r->dying) {
        really_free(r);
        return;
    }
    rearm_timer(r);
}

/* ---- c-ares side ---- */

static bool retry_next(struct dns_query *q)
{
    return !q->cancelled && !q->r->dying && q->attempts < q->r->tries * q->r->nchans;
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct dns_query *q = arg;
    struct dns_resolver *r = q->r;
    struct dns_chan *c = &r->chans[(q->attempts - 1) % r->nchans];

    if (q->cancelled || r->dying || status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        fail(q, DNS_CANCELLED, "%s", "query cancelled");
        complete(q);
        return;
    }
    if (status == ARES_SUCCESS) {
        dns_answer_clear(&q->ans); /* a REFUSED from an earlier attempt */
        dns_parse_answer(abuf, (size_t)(alen > 0 ? alen : 0), &q->ans);
        snprintf(q->ans.server, sizeof(q->ans.server), "%s", c->label);
        int rc = q->ans.rcode;
        if (q->ans.status == DNS_ERROR &&
            (rc == RCODE_REFUSED || rc == RCODE_NOTIMP || rc == RCODE_FORMERR) && retry_next(q)) {
            send_attempt(q);
            return;
        }
        /* The whole point: AD counts only from a server trusted to validate. */
        q->ans.secure = q->ans.ad && c->srv.trusted &&
                        (q->ans.status == DNS_OK || q->ans.status == DNS_NODATA ||
                         q->ans.status == DNS_NXDOMAIN);
        complete(q);
        return;
    }
    dns_answer_clear(&q->ans);
    if (status == ARES_ETIMEOUT)
        fail(q, DNS_TIMEOUT, "no answer from %s", c->label);
    else if (status == ARES_ENOMEM)
        fail(q, DNS_ERROR, "%s", "out of memory");
    else
        fail(q, DNS_ERROR, "%s", ares_strerror(status));
    if (status != ARES_ENOMEM && retry_next(q)) {
        send_attempt(q);
        return;
    }
    complete(q);
}

static uint16_t random_id(void)
{
    uint16_t id = 0;
    if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        id = (uint16_t)(tv.tv_usec ^ (tv.tv_sec << 4));
    }
    return id;
}

static void send_attempt(struct dns_query *q)
{
    struct dns_resolver *r = q->r;
    struct dns_chan *c = &r->chans[q->attempts % r->nchans];
    unsigned char *buf = NULL;
    int len = 0;
    q->attempts++;
    int rc =
        ares_create_query(q->name, CLASS_IN, q->type, random_id(), 1, &buf, &len, EDNS_UDP_SIZE);
    if (rc != ARES_SUCCESS || len < 12 + 11) {
        if (buf)
            ares_free_string(buf);
        if (rc == ARES_ENOMEM)
            fail(q, DNS_ERROR, "%s", "out of memory");
        else
            fail(q, DNS_BADNAME, "not a usable domain name: %.60s", q->name);
        complete(q);
        return;
    }
    /* c-ares 1.18 never asks for DNSSEC: AD in the header (RFC 6840 5.7) and DO in the OPT
     * record, which ares_create_query put last (its TTL's flags are the 4th and 3rd last
     * bytes). */
    buf[3] |= 0x20;
    buf[len - 4] |= 0x80;
    ares_send(c->ch, buf, len, on_answer, q);
    ares_free_string(buf);
}

/* ---- public ---- */

static int chan_init(struct dns_resolver *r, struct dns_chan *c, const struct dns_server *s,
                     unsigned timeout_ms, char *err, size_t errlen)
{
    c->r = r;
    c->srv = *s;
    if (c->srv.port == 0)
        c->srv.port = 53;
    struct ares_addr_port_node node;
    memset(&node, 0, sizeof(node));
    if (inet_pton(AF_INET, s->addr, &node.addr.addr4) == 1) {
        node.family = AF_INET;
    } else if (inet_pton(AF_INET6, s->addr, &node.addr.addr6) == 1) {
        node.family = AF_INET6;
    } else {
        snprintf(err, errlen, "not an IP address: %.46s", s->addr);
        return -1;
    }
    node.udp_port = node.tcp_port = c->srv.port;
    snprintf(c->label, sizeof(c->label), "%.46s#%u", s->addr, (unsigned)c->srv.port);

    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH;
    o.timeout = (int)timeout_ms;
    o.tries = 1;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = c;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
    int rc = ares_init_options(&c->ch, &o, mask);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        return -1;
    }
    rc = ares_set_servers_ports(c->ch, &node);
    if (rc != ARES_SUCCESS) {
        ares_destroy(c->ch);
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        return -1;
    }
    return 0;
}

int dns_resolver_new(struct ev_loop *loop, const struct dns_config *cfg, struct dns_resolver **out,
                     char *err, size_t errlen)
{
    *out = NULL;
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: library initialisation failed");
        return -1;
    }
    struct dns_server list[DNS_MAX_SERVERS];
    const struct dns_server *servers = cfg->servers;
    size_t n = cfg->nservers;
    if (n == 0) {
        n = dns_read_resolv_conf(cfg->resolv_conf, list, DNS_MAX_SERVERS);
        servers = list;
    }
    if (n > DNS_MAX_SERVERS) {
        snprintf(err, errlen, "too many DNS servers (at most %d)", DNS_MAX_SERVERS);
        return -1;
    }
    struct dns_resolver *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->loop = loop;
    r->tries = cfg->tries ? cfg->tries : DNS_DEFAULT_TRIES;
    unsigned timeout_ms = cfg->timeout_ms
                              ? cfg->timeout_ms
                              : 1000u * (cfg->timeout_s ? cfg->timeout_s : DNS_DEFAULT_TIMEOUT_S);
    for (size_t i = 0; i < n; i++) {
        if (chan_init(r, &r->chans[i], &servers[i], timeout_ms, err, errlen) < 0) {
            for (size_t j = 0; j < i; j++)
                ares_destroy(r->chans[j].ch);
            free(r);
            return -1;
        }
        r->nchans++;
    }
    *out = r;
    return 0;
}

void dns_resolver_free(struct dns_resolver *r)
{
    if (!r)
        return;
    r->dying = true;
    if (r->depth == 0)
        really_free(r);
    /* else: after() frees it once the current callback returns */
}

const struct dns_server *dns_resolver_server(const struct dns_resolver *r, size_t i)
{
    return i < r->nchans ? &r->chans[i].srv : NULL;
}

static bool supported(uint16_t type)
{
    return type == DNS_T_A || type == DNS_T_AAAA || type == DNS_T_MX || type == DNS_T_TXT ||
           type == DNS_T_TLSA || type == DNS_T_CNAME;
}

struct dns_query *dns_query(struct dns_resolver *r, const char *name, uint16_t type, dns_cb cb,
                            void *arg)
{
    if (!cb || r->dying)
        return NULL;
    struct dns_query *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->name = strdup(name ? name : "");
    if (!q->name) {
        free(q);
        return NULL;
    }
    q->r = r;
    q->type = type;
    q->cb = cb;
    q->arg = arg;
    q->next = r->live;
    if (r->live)
        r->live->prev = q;
    r->live = q;

    /* Answers here so that a failure is reported the same way as any other. */
    q->ans.type = type;
    if (!supported(type)) {
        char num[8];
        snprintf(num, sizeof(num), "%u", (unsigned)type);
        fail(q, DNS_ERROR, "unsupported record type %s",
             dns_type_name(type) ? dns_type_name(type) : num);
        complete(q);
    } else if (q->name[0] == '\0' || strlen(q->name) > 254) {
        fail(q, DNS_BADNAME, "not a usable domain name: %.60s", q->name);
        complete(q);
    } else {
        r->depth++; /* ares_send may end the query at once: deliver it from the loop */
        send_attempt(q);
        r->depth--;
        if (r->done_head && !r->flush_timer)
            r->flush_timer = ev_timer_add(r->loop, 0, on_flush, r);
        rearm_timer(r);
    }
    return q;
}

void dns_query_cancel(struct dns_query *q)
{
    if (q)
        q->cancelled = true;
}

/* ---- blocking ---- */

struct sync_state {
    struct dns_answer *out;
    bool done;
};

static void sync_cb(struct dns_answer *ans, void *arg)
{
    struct sync_state *s = arg;
    dns_answer_move(s->out, ans);
    s->done = true;
}

enum dns_status dns_resolve(const struct dns_config *cfg, const char *name, uint16_t type,
                            struct dns_answer *out)
{
    memset(out, 0, sizeof(*out));
    char err[sizeof(out->detail)] = "";
    struct ev_loop *loop = ev_loop_new();
    struct dns_resolver *r = NULL;
    if (!loop || dns_resolver_new(loop, cfg, &r, err, sizeof(err)) < 0) {
        out->status = DNS_ERROR;
        snprintf(out->detail, sizeof(out->detail), "%s", loop ? err : "cannot create a loop");
        ev_loop_free(loop);
        return out->status;
    }
    struct sync_state s = {out, false};
    if (!dns_query(r, name, type, sync_cb, &s)) {
        out->status = DNS_ERROR;
        snprintf(out->detail, sizeof(out->detail), "out of memory");
    }
    while (!s.done && out->status == DNS_OK) {
        if (ev_run_once(loop, -1) < 0) {
            out->status = DNS_ERROR;
            snprintf(out->detail, sizeof(out->detail), "event loop failure");
        }
    }
    dns_resolver_free(r);
    ev_loop_free(loop);
    return out->status;
}
