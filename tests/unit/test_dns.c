/* test_dns.c - core/dns.c against the MOCK responder of fakedns.c: the cases a real resolver
 * cannot be made to produce. `secure` only from a trusted server (a forged AD from an untrusted
 * one is ignored, also when a trusted server is in the list), SERVFAIL final and not retried
 * elsewhere, NXDOMAIN vs NODATA, timeouts, TC -> TCP, REFUSED and silence -> next server,
 * malformed TLSA, cancel and free from callbacks, resolv.conf reading. Real DNSSEC (signed,
 * unsigned, bogus zones) is tested in the lab against unbound.
 */
#include "dns.h"
#include "t.h"

#include "fakedns.c"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- the canned zone ---- */

enum mode { SERVE, REFUSE_ALL, DROP_ALL };

static bool zone(const struct fakedns_query *q, struct fakedns_reply *r, void *arg)
{
    enum mode mode = *(enum mode *)arg;
    const unsigned char a1[4] = {192, 0, 2, 1};
    if (mode == DROP_ALL || strcmp(q->name, "drop.test") == 0)
        return false;
    if (mode == REFUSE_ALL) {
        fakedns_reply_start(r, q, 5, false, false);
        return true;
    }
    if (strcmp(q->name, "secure.test") == 0 && q->type == DNS_T_A) {
        fakedns_reply_start(r, q, 0, true, false);
        fakedns_reply_rr(r, NULL, DNS_T_A, 300, a1, 4);
    } else if (strcmp(q->name, "insecure.test") == 0 && q->type == DNS_T_A) {
        fakedns_reply_start(r, q, 0, false, false);
        fakedns_reply_rr(r, NULL, DNS_T_A, 300, a1, 4);
    } else if (strcmp(q->name, "nx.test") == 0) {
        fakedns_reply_start(r, q, 3, true, false);
    } else if (strcmp(q->name, "servfail.test") == 0) {
        fakedns_reply_start(r, q, 2, false, false);
    } else if (strcmp(q->name, "refused.test") == 0) {
        fakedns_reply_start(r, q, 5, false, false);
    } else if (strcmp(q->name, "tc.test") == 0 && q->type == DNS_T_TXT) {
        if (!q->tcp) {
            fakedns_reply_start(r, q, 0, true, true); /* truncated: no records, TC */
        } else {
            unsigned char txt[1 + 200 + 1 + 9];
            txt[0] = 200;
            memset(txt + 1, 'x', 200);
            txt[201] = 9;
            memcpy(txt + 202, "v=STSv1; ", 9);
            fakedns_reply_start(r, q, 0, true, false);
            fakedns_reply_rr(r, NULL, DNS_T_TXT, 300, txt, sizeof(txt));
        }
    } else if (strcmp(q->name, "mx.test") == 0 && q->type == DNS_T_MX) {
        unsigned char rd[2 + 256];
        fakedns_reply_start(r, q, 0, false, false);
        rd[0] = 0, rd[1] = 20;
        fakedns_reply_rr(r, NULL, DNS_T_MX, 300, rd, 2 + fakedns_name(rd + 2, "mx2.mx.test"));
        rd[0] = 0, rd[1] = 10;
        fakedns_reply_rr(r, NULL, DNS_T_MX, 300, rd, 2 + fakedns_name(rd + 2, "mx1.mx.test"));
    } else if (strcmp(q->name, "nullmx.test") == 0 && q->type == DNS_T_MX) {
        const unsigned char rd[3] = {0, 0, 0};
        fakedns_reply_start(r, q, 0, true, false);
        fakedns_reply_rr(r, NULL, DNS_T_MX, 300, rd, 3);
    } else if (strcmp(q->name, "_25._tcp.mx1.mx.test") == 0 && q->type == DNS_T_TLSA) {
        unsigned char rd[3 + 32] = {3, 1, 1};
        for (int i = 0; i < 32; i++)
            rd[3 + i] = (unsigned char)i;
        fakedns_reply_start(r, q, 0, true, false);
        fakedns_reply_rr(r, NULL, DNS_T_TLSA, 300, rd, sizeof(rd));
    } else if (strcmp(q->name, "_25._tcp.bad.test") == 0 && q->type == DNS_T_TLSA) {
        const unsigned char rd[2] = {3, 1}; /* too short for a TLSA record */
        fakedns_reply_start(r, q, 0, true, false);
        fakedns_reply_rr(r, NULL, DNS_T_TLSA, 300, rd, sizeof(rd));
    } else if (strcmp(q->name, "alias.test") == 0 && q->type == DNS_T_A) {
        unsigned char rd[256];
        fakedns_reply_start(r, q, 0, true, false);
        fakedns_reply_rr(r, NULL, DNS_T_CNAME, 60, rd, fakedns_name(rd, "secure.test"));
        fakedns_reply_rr(r, "secure.test", DNS_T_A, 300, a1, 4);
    } else if (strcmp(q->name, "mx1.mx.test") == 0 || strcmp(q->name, "mx2.mx.test") == 0) {
        fakedns_reply_start(r, q, 0, false, false);
        if (q->type == DNS_T_A)
            fakedns_reply_rr(r, NULL, DNS_T_A, 300, a1, 4);
    } else {
        fakedns_reply_start(r, q, 0, false, false); /* NODATA */
    }
    return true;
}

/* ---- helpers ---- */

struct srv {
    struct fakedns *f;
    enum mode mode;
};

static void srv_start(struct srv *s, enum mode mode)
{
    s->mode = mode;
    s->f = fakedns_start(zone, &s->mode);
    if (!s->f) {
        fprintf(stderr, "cannot start the fake DNS server\n");
        exit(1);
    }
}

static struct dns_server server_of(struct srv *s, bool trusted)
{
    struct dns_server d;
    memset(&d, 0, sizeof(d));
    strcpy(d.addr, "127.0.0.1");
    d.port = fakedns_port(s->f);
    d.trusted = trusted;
    return d;
}

static struct dns_config config(const struct dns_server *list, size_t n, unsigned timeout_ms,
                                unsigned tries)
{
    struct dns_config c;
    memset(&c, 0, sizeof(c));
    c.servers = list;
    c.nservers = n;
    c.timeout_ms = timeout_ms;
    c.tries = tries;
    return c;
}

static void label_of(struct srv *s, char *out, size_t len)
{
    snprintf(out, len, "127.0.0.1#%u", (unsigned)fakedns_port(s->f));
}

/* ---- blocking lookups: statuses and `secure` ---- */

static void test_secure_rules(void)
{
    struct srv s;
    srv_start(&s, SERVE);
    char label[64];
    label_of(&s, label, sizeof(label));
    struct dns_answer a;

    struct dns_server trusted = server_of(&s, true);
    struct dns_config c = config(&trusted, 1, 1000, 1);
    T_EQ_INT(dns_resolve(&c, "secure.test", DNS_T_A, &a), DNS_OK);
    T_CHECK(a.ad);
    T_CHECK(a.secure);
    T_EQ_INT(a.nrr, 1);
    T_EQ_STR(a.server, label);
    T_CHECK(fakedns_last_asked_dnssec(s.f)); /* AD and DO were set in the query */
    dns_answer_clear(&a);

    T_EQ_INT(dns_resolve(&c, "insecure.test", DNS_T_A, &a), DNS_OK);
    T_CHECK(!a.ad && !a.secure);
    dns_answer_clear(&a);

    /* The same AD bit from a server we do not trust: insecure. */
    struct dns_server untrusted = server_of(&s, false);
    c = config(&untrusted, 1, 1000, 1);
    T_EQ_INT(dns_resolve(&c, "secure.test", DNS_T_A, &a), DNS_OK);
    T_CHECK(a.ad);
    T_CHECK(!a.secure);
    dns_answer_clear(&a);

    /* CNAME followed; secure covers the whole answer. */
    c = config(&trusted, 1, 1000, 1);
    T_EQ_INT(dns_resolve(&c, "alias.test", DNS_T_A, &a), DNS_OK);
    T_EQ_STR(a.canon, "secure.test");
    T_EQ_STR(a.qname, "alias.test");
    T_CHECK(a.secure);
    dns_answer_clear(&a);

    /* Secure denial and plain NODATA. */
    T_EQ_INT(dns_resolve(&c, "nx.test", DNS_T_A, &a), DNS_NXDOMAIN);
    T_CHECK(a.secure);
    T_CHECK(!dns_status_temporary(a.status));
    dns_answer_clear(&a);
    T_EQ_INT(dns_resolve(&c, "secure.test", DNS_T_TLSA, &a), DNS_NODATA);
    T_CHECK(!a.secure);
    T_EQ_INT(a.nrr, 0);
    dns_answer_clear(&a);

    /* SERVFAIL is seen as such (not hidden as ECONNREFUSED) and is temporary. */
    T_EQ_INT(dns_resolve(&c, "servfail.test", DNS_T_A, &a), DNS_SERVFAIL);
    T_CHECK(dns_status_temporary(a.status));
    T_CHECK(!a.secure);
    dns_answer_clear(&a);

    /* Record types through the blocking wrapper. */
    T_EQ_INT(dns_resolve(&c, "mx.test", DNS_T_MX, &a), DNS_OK);
    T_EQ_INT(a.nrr, 2);
    T_EQ_STR(a.rr[0].mx.host, "mx1.mx.test");
    T_EQ_STR(a.rr[1].mx.host, "mx2.mx.test");
    T_CHECK(!a.null_mx);
    dns_answer_clear(&a);
    T_EQ_INT(dns_resolve(&c, "nullmx.test", DNS_T_MX, &a), DNS_OK);
    T_CHECK(a.null_mx);
    dns_answer_clear(&a);
    T_EQ_INT(dns_resolve(&c, "_25._tcp.mx1.mx.test", DNS_T_TLSA, &a), DNS_OK);
    T_CHECK(a.secure);
    T_EQ_INT(a.rr[0].tlsa.usage, 3);
    T_EQ_INT(a.rr[0].tlsa.len, 32);
    T_EQ_INT(a.rr[0].tlsa.data[31], 31);
    dns_answer_clear(&a);
    T_EQ_INT(dns_resolve(&c, "_25._tcp.bad.test", DNS_T_TLSA, &a), DNS_EMALFORMED);
    T_CHECK(!a.secure);
    T_EQ_INT(a.nrr, 0);
    T_CHECK(dns_status_temporary(a.status));
    dns_answer_clear(&a);

    /* Names and types that cannot be asked. */
    T_EQ_INT(dns_resolve(&c, "", DNS_T_A, &a), DNS_BADNAME);
    dns_answer_clear(&a);
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    T_EQ_INT(dns_resolve(&c, longname, DNS_T_A, &a), DNS_BADNAME);
    dns_answer_clear(&a);
    T_EQ_INT(dns_resolve(&c, "secure.test", 2 /* NS */, &a), DNS_ERROR);
    T_CHECK(strstr(a.detail, "unsupported") != NULL);
    dns_answer_clear(&a);
    fakedns_stop(s.f);
}

/* A truncated UDP reply is asked again over TCP, to the same server. */
static void test_truncation(void)
{
    struct srv s;
    srv_start(&s, SERVE);
    struct dns_server d = server_of(&s, true);
    struct dns_config c = config(&d, 1, 2000, 1);
    struct dns_answer a;
    T_EQ_INT(dns_resolve(&c, "tc.test", DNS_T_TXT, &a), DNS_OK);
    T_EQ_INT(a.nrr, 1);
    T_EQ_INT(a.rr[0].txt.len, 209);
    T_CHECK(a.nrr == 1 && memcmp(a.rr[0].txt.data + 200, "v=STSv1; ", 9) == 0);
    T_CHECK(a.secure);
    T_CHECK(!a.tc);
    T_EQ_INT(fakedns_count(s.f, false), 1);
    T_EQ_INT(fakedns_count(s.f, true), 1);
    dns_answer_clear(&a);
    fakedns_stop(s.f);
}

/* Silence: each try waits its timeout, then TIMEOUT (temporary, not "no record"). */
static void test_timeout(void)
{
    struct srv s;
    srv_start(&s, SERVE);
    struct dns_server d = server_of(&s, true);
    struct dns_config c = config(&d, 1, 150, 2);
    struct dns_answer a;
    struct ev_loop *clock = ev_loop_new();
    uint64_t t0 = ev_now_ms(clock);
    T_EQ_INT(dns_resolve(&c, "drop.test", DNS_T_A, &a), DNS_TIMEOUT);
    ev_now_update(clock);
    uint64_t took = ev_now_ms(clock) - t0;
    T_CHECK(took >= 290);
    T_CHECK(took < 3000);
    T_EQ_INT(fakedns_count(s.f, false), 2); /* tries = 2 */
    T_CHECK(dns_status_temporary(a.status));
    T_CHECK(!a.secure);
    T_CHECK(strstr(a.detail, "no answer") != NULL);
    T_EQ_STR(a.qname, "drop.test");
    dns_answer_clear(&a);
    ev_loop_free(clock);
    fakedns_stop(s.f);
}

/* Which server answered decides `secure`; REFUSED and silence move on, SERVFAIL does not. */
static void test_failover(void)
{
    struct srv good, refuser, mute;
    srv_start(&good, SERVE);
    srv_start(&refuser, REFUSE_ALL);
    srv_start(&mute, DROP_ALL);
    char good_label[64];
    label_of(&good, good_label, sizeof(good_label));
    struct dns_answer a;

    /* A trusted server refuses; the untrusted one answers with AD: not secure. */
    struct dns_server l1[2] = {server_of(&refuser, true), server_of(&good, false)};
    struct dns_config c = config(l1, 2, 1000, 1);
    T_EQ_INT(dns_resolve(&c, "secure.test", DNS_T_A, &a), DNS_OK);
    T_EQ_STR(a.server, good_label);
    T_CHECK(a.ad && !a.secure);
    T_EQ_INT(fakedns_count(refuser.f, false), 1);
    dns_answer_clear(&a);

    /* An untrusted server refuses; the trusted one answers: secure. */
    struct dns_server l2[2] = {server_of(&refuser, false), server_of(&good, true)};
    c = config(l2, 2, 1000, 1);
    T_EQ_INT(dns_resolve(&c, "secure.test", DNS_T_A, &a), DNS_OK);
    T_EQ_STR(a.server, good_label);
    T_CHECK(a.secure);
    dns_answer_clear(&a);

    /* A mute first server: the second answers after one timeout. */
    struct dns_server l3[2] = {server_of(&mute, true), server_of(&good, true)};
    c = config(l3, 2, 200, 1);
    T_EQ_INT(dns_resolve(&c, "secure.test", DNS_T_A, &a), DNS_OK);
    T_EQ_STR(a.server, good_label);
    T_CHECK(a.secure);
    T_EQ_INT(fakedns_count(mute.f, false), 1);
    dns_answer_clear(&a);

    /* SERVFAIL (a validator's "bogus") is final: the untrusted fallback is never asked. */
    unsigned before = fakedns_count(refuser.f, false);
    struct dns_server l4[2] = {server_of(&good, true), server_of(&refuser, false)};
    c = config(l4, 2, 1000, 2);
    T_EQ_INT(dns_resolve(&c, "servfail.test", DNS_T_A, &a), DNS_SERVFAIL);
    T_EQ_INT(fakedns_count(refuser.f, false), before);
    dns_answer_clear(&a);

    /* Everyone refuses: an error, temporary, after tries x servers attempts. */
    struct dns_server l5[1] = {server_of(&refuser, true)};
    before = fakedns_count(refuser.f, false);
    c = config(l5, 1, 1000, 3);
    T_EQ_INT(dns_resolve(&c, "secure.test", DNS_T_A, &a), DNS_ERROR);
    T_EQ_INT(a.rcode, 5);
    T_EQ_INT(fakedns_count(refuser.f, false), before + 3);
    T_CHECK(dns_status_temporary(a.status));
    dns_answer_clear(&a);

    fakedns_stop(good.f);
    fakedns_stop(refuser.f);
    fakedns_stop(mute.f);
}

/* ---- asynchronous use ---- */

struct ctx {
    struct dns_resolver *r;
    int calls;
    int chained;
    enum dns_status last;
    bool free_in_cb;
    bool chain;
};

static void count_cb(struct dns_answer *ans, void *arg)
{
    struct ctx *x = arg;
    x->calls++;
    x->last = ans->status;
    if (x->chain && ans->type == DNS_T_MX) {
        /* Start the address lookups of each MX from inside the callback. */
        for (size_t i = 0; i < ans->nrr; i++)
            if (dns_query(x->r, ans->rr[i].mx.host, DNS_T_A, count_cb, x))
                x->chained++;
    }
    if (x->free_in_cb) {
        dns_resolver_free(x->r);
        x->r = NULL;
    }
}

/* Runs the loop until *counter reaches want, or for at most max_ms of wall time. */
static void run_until(struct ev_loop *loop, int *counter, int want, unsigned max_ms)
{
    ev_now_update(loop);
    uint64_t end = ev_now_ms(loop) + max_ms;
    while (*counter < want && ev_now_ms(loop) < end)
        ev_run_once(loop, 50);
}

/* A busy loop shows as many iterations in little time: count them while waiting. */
static int run_for(struct ev_loop *loop, unsigned ms)
{
    int iterations = 0;
    ev_now_update(loop);
    uint64_t end = ev_now_ms(loop) + ms;
    while (ev_now_ms(loop) < end) {
        ev_run_once(loop, 50);
        iterations++;
    }
    return iterations;
}

static void test_async(void)
{
    struct srv s;
    srv_start(&s, SERVE);
    struct dns_server d = server_of(&s, true);
    struct dns_config c = config(&d, 1, 300, 1);
    struct ev_loop *loop = ev_loop_new();
    char err[128];

    /* Many queries in flight at once on one resolver. */
    struct ctx x = {0};
    T_EQ_INT(dns_resolver_new(loop, &c, &x.r, err, sizeof(err)), 0);
    for (int i = 0; i < 200; i++)
        dns_query(x.r, i % 2 ? "secure.test" : "mx.test", i % 2 ? DNS_T_A : DNS_T_MX, count_cb, &x);
    T_EQ_INT(x.calls, 0); /* never called from inside dns_query */
    run_until(loop, &x.calls, 200, 5000);
    T_EQ_INT(x.calls, 200);
    T_EQ_INT(x.last, DNS_OK);

    /* Queries started from a callback. */
    x.calls = 0;
    x.chain = true;
    dns_query(x.r, "mx.test", DNS_T_MX, count_cb, &x);
    run_until(loop, &x.calls, 3, 5000);
    T_EQ_INT(x.chained, 2);
    T_EQ_INT(x.calls, 3);
    x.chain = false;

    /* A cancelled query never calls back, answered or not. */
    x.calls = 0;
    struct dns_query *q1 = dns_query(x.r, "drop.test", DNS_T_A, count_cb, &x);
    struct dns_query *q2 = dns_query(x.r, "secure.test", DNS_T_A, count_cb, &x);
    dns_query_cancel(q1);
    dns_query_cancel(q2);
    dns_query(x.r, "secure.test", DNS_T_A, count_cb, &x);
    run_until(loop, &x.calls, 1, 5000);
    /* Past the cancelled query's timeout (300 ms), without spinning while waiting for it. */
    T_CHECK(run_for(loop, 500) < 100);
    T_EQ_INT(x.calls, 1);

    /* Errors known at once are still delivered from the loop. */
    x.calls = 0;
    dns_query(x.r, "", DNS_T_A, count_cb, &x);
    T_EQ_INT(x.calls, 0);
    run_until(loop, &x.calls, 1, 5000);
    T_EQ_INT(x.last, DNS_BADNAME);

    /* Freeing the resolver from a callback, with another query still pending. */
    x.calls = 0;
    x.free_in_cb = true;
    dns_query(x.r, "drop.test", DNS_T_A, count_cb, &x);
    dns_query(x.r, "secure.test", DNS_T_A, count_cb, &x);
    run_until(loop, &x.calls, 1, 5000);
    run_for(loop, 100);
    T_EQ_INT(x.calls, 1);
    T_CHECK(x.r == NULL);

    /* Freeing with queries pending: no callback, nothing left on the loop. */
    struct ctx y = {0};
    T_EQ_INT(dns_resolver_new(loop, &c, &y.r, err, sizeof(err)), 0);
    dns_query(y.r, "drop.test", DNS_T_A, count_cb, &y);
    dns_query(y.r, "drop.test", DNS_T_TXT, count_cb, &y);
    ev_run_once(loop, 0);
    dns_resolver_free(y.r);
    T_EQ_INT(y.calls, 0);
    T_EQ_INT(ev_timer_count(loop), 0);
    T_EQ_INT(ev_run(loop), 0); /* returns: no watcher and no timer left behind */

    ev_loop_free(loop);
    fakedns_stop(s.f);
}

/* ---- configuration ---- */

static void test_config(void)
{
    T_CHECK(dns_addr_is_loopback("127.0.0.1"));
    T_CHECK(dns_addr_is_loopback("127.0.0.53"));
    T_CHECK(dns_addr_is_loopback("::1"));
    T_CHECK(dns_addr_is_loopback("::ffff:127.0.0.1"));
    T_CHECK(!dns_addr_is_loopback("128.0.0.1"));
    T_CHECK(!dns_addr_is_loopback("10.0.0.1"));
    T_CHECK(!dns_addr_is_loopback("::2"));
    T_CHECK(!dns_addr_is_loopback("localhost"));

    char path[] = "/tmp/stsgate-resolv-XXXXXX";
    int fd = mkstemp(path);
    T_CHECK(fd >= 0);
    const char *text = "# a comment\nsearch example.com\nnameserver 127.0.0.53\n"
                       "nameserver\t8.8.8.8 # trailing\nnameserver fe80::1%eth0\n"
                       "nameserver ::1\nnameservers 10.0.0.1\noptions edns0\n";
    T_EQ_INT(write(fd, text, strlen(text)), (long long)strlen(text));
    close(fd);
    struct dns_server list[DNS_MAX_SERVERS];
    size_t n = dns_read_resolv_conf(path, list, DNS_MAX_SERVERS);
    T_EQ_INT(n, 3);
    T_EQ_STR(list[0].addr, "127.0.0.53");
    T_CHECK(list[0].trusted);
    T_EQ_INT(list[0].port, 53);
    T_EQ_STR(list[1].addr, "8.8.8.8");
    T_CHECK(!list[1].trusted);
    T_EQ_STR(list[2].addr, "::1");
    T_CHECK(list[2].trusted);

    /* The resolver takes them when no server is configured. */
    struct ev_loop *loop = ev_loop_new();
    struct dns_resolver *r;
    char err[128];
    struct dns_config c = config(NULL, 0, 0, 0);
    c.resolv_conf = path;
    T_EQ_INT(dns_resolver_new(loop, &c, &r, err, sizeof(err)), 0);
    T_EQ_STR(dns_resolver_server(r, 1)->addr, "8.8.8.8");
    T_CHECK(dns_resolver_server(r, 3) == NULL);
    dns_resolver_free(r);

    /* None usable, or no file: 127.0.0.1, trusted, as libc does. */
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    n = dns_read_resolv_conf(path, list, DNS_MAX_SERVERS);
    T_EQ_INT(n, 1);
    T_EQ_STR(list[0].addr, "127.0.0.1");
    T_CHECK(list[0].trusted);
    unlink(path);
    n = dns_read_resolv_conf(path, list, DNS_MAX_SERVERS);
    T_EQ_INT(n, 1);

    /* A server that is not an address is refused with a reason. */
    struct dns_server bad;
    memset(&bad, 0, sizeof(bad));
    strcpy(bad.addr, "dns.example");
    c = config(&bad, 1, 0, 0);
    T_EQ_INT(dns_resolver_new(loop, &c, &r, err, sizeof(err)), -1);
    T_CHECK(strstr(err, "dns.example") != NULL);
    ev_loop_free(loop);
}

int main(void)
{
    test_secure_rules();
    test_truncation();
    test_timeout();
    test_failover();
    test_async();
    test_config();
    return t_done();
}
