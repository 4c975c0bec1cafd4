/* test_mxresolve.c - core/mxresolve.c over dns.c against the MOCK responder of fakedns.c: MX
 * sorted by preference, addresses per level by the IP sort preference, implicit MX, null MX
 * (5.1.10), NXDOMAIN (5.1.2), SERVFAIL and silence (defer), secure flags kept, MX hosts without
 * addresses, address literals, route hosts with ports. The real-resolver side (signed zones) is
 * covered by the lab. */
#include "mxresolve.h"
#include "t.h"

#include "fakedns.c"

#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>

static void a_rr(struct fakedns_reply *r, const char *addr)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, addr, b) == 1)
        fakedns_reply_rr(r, NULL, DNS_T_A, 300, b, 4);
    else if (inet_pton(AF_INET6, addr, b) == 1)
        fakedns_reply_rr(r, NULL, DNS_T_AAAA, 300, b, 16);
}

static void mx_rr(struct fakedns_reply *r, unsigned pref, const char *host)
{
    unsigned char rd[2 + 256];
    rd[0] = (unsigned char)(pref >> 8), rd[1] = (unsigned char)pref;
    fakedns_reply_rr(r, NULL, DNS_T_MX, 300, rd, 2 + fakedns_name(rd + 2, host));
}

/* The zone. Names end in .test. */
static bool zone(const struct fakedns_query *q, struct fakedns_reply *r, void *arg)
{
    (void)arg;
    const char *n = q->name;
    bool ad = strstr(n, "sec") != NULL; /* names with "sec" are answered with AD */
    if (strcmp(n, "silent.test") == 0)
        return false;
    if (strcmp(n, "nx.test") == 0 || strcmp(n, "gone.multi.test") == 0) {
        fakedns_reply_start(r, q, 3, ad, false);
        return true;
    }
    if (strcmp(n, "servfail.test") == 0 || strcmp(n, "sf.multi.test") == 0) {
        fakedns_reply_start(r, q, 2, false, false);
        return true;
    }
    fakedns_reply_start(r, q, 0, ad, false);
    if (q->type == DNS_T_MX) {
        if (strcmp(n, "multi.test") == 0 || strcmp(n, "secmulti.test") == 0) {
            /* out of order on purpose */
            mx_rr(r, 20, "mx3.multi.test");
            mx_rr(r, 10, "mx1.multi.test");
            mx_rr(r, 10, "mx2.multi.test");
            mx_rr(r, 30, "gone.multi.test");
        } else if (strcmp(n, "nullmx.test") == 0) {
            const unsigned char rd[3] = {0, 0, 0};
            fakedns_reply_rr(r, NULL, DNS_T_MX, 300, rd, 3);
        } else if (strcmp(n, "noaddr.test") == 0) {
            mx_rr(r, 10, "gone.multi.test");
        } else if (strcmp(n, "seccname.test") == 0) {
            mx_rr(r, 10, "alias.seccname.test");
            mx_rr(r, 20, "mx2.multi.test");
        } else if (strcmp(n, "tempaddr.test") == 0) {
            mx_rr(r, 10, "sf.multi.test");
            mx_rr(r, 20, "gone.multi.test");
        }
        return true; /* others: NODATA */
    }
    bool v4 = q->type == DNS_T_A, v6 = q->type == DNS_T_AAAA;
    if (strcmp(n, "mx1.multi.test") == 0) {
        if (v4)
            a_rr(r, "192.0.2.1");
        if (v6)
            a_rr(r, "2001:db8::1");
    } else if (strcmp(n, "mx2.multi.test") == 0) {
        if (v4)
            a_rr(r, "192.0.2.2");
        if (v6)
            a_rr(r, "2001:db8::2");
    } else if (strcmp(n, "mx3.multi.test") == 0) {
        if (v4)
            a_rr(r, "192.0.2.3");
    } else if (strcmp(n, "implicit.test") == 0 || strcmp(n, "relay.test") == 0) {
        if (v4)
            a_rr(r, "192.0.2.9");
    } else if (strcmp(n, "alias.seccname.test") == 0) {
        /* a CNAME chain of two links, whatever the address type */
        unsigned char t[256];
        fakedns_reply_rr(r, NULL, DNS_T_CNAME, 300, t, fakedns_name(t, "hop.seccname.test"));
        fakedns_reply_rr(r, "hop.seccname.test", DNS_T_CNAME, 300, t,
                         fakedns_name(t, "real.seccname.test"));
        if (v4) {
            unsigned char b[4] = {192, 0, 2, 44};
            fakedns_reply_rr(r, "real.seccname.test", DNS_T_A, 300, b, 4);
        }
    } else if (strcmp(n, "v6only.test") == 0) {
        if (v6)
            a_rr(r, "2001:db8::9");
    }
    return true;
}

static struct fakedns *srv;
static struct ev_loop *loop;
static struct dns_resolver *res;

struct got {
    bool done;
    struct mx_result r;
};

static void got_cb(struct mx_result *r, void *arg)
{
    struct got *g = arg;
    g->done = true;
    mx_result_move(&g->r, r);
}

static void wait_for(struct got *g)
{
    for (int i = 0; i < 400 && !g->done; i++)
        ev_run_once(loop, 50);
    T_CHECK(g->done);
}

static void resolve(const char *domain, enum cfg_ipsort sort, struct got *g)
{
    memset(g, 0, sizeof *g);
    struct mx_lookup *l = mx_resolve(loop, res, domain, sort, 25, got_cb, g);
    T_CHECK(l != NULL);
    T_CHECK(!g->done); /* never called from inside mx_resolve */
    wait_for(g);
}

static void expect_order(const struct mx_result *r, const char *const *addrs, size_t n)
{
    T_EQ_INT(r->ntargets, n);
    for (size_t i = 0; i < n && i < r->ntargets; i++)
        T_EQ_STR(r->targets[i].addr, addrs[i]);
}

static void test_sorting(void)
{
    struct got g;
    resolve("multi.test", CFG_IPSORT_PREFER_V4, &g);
    T_EQ_INT(g.r.status, MX_OK);
    static const char *const p4[] = {"192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2",
                                     "192.0.2.3"};
    expect_order(&g.r, p4, 5);
    T_EQ_STR(g.r.targets[0].host, "mx1.multi.test");
    T_EQ_INT(g.r.targets[4].pref, 20);
    T_EQ_INT(g.r.targets[0].port, 25);
    T_CHECK(!g.r.mx_secure && !g.r.targets[0].addr_secure);
    T_EQ_INT(g.r.hosts_noaddr, 1); /* gone.multi.test */
    mx_result_clear(&g.r);

    resolve("multi.test", CFG_IPSORT_PREFER_V6, &g);
    static const char *const p6[] = {"2001:db8::1", "2001:db8::2", "192.0.2.1", "192.0.2.2",
                                     "192.0.2.3"};
    expect_order(&g.r, p6, 5);
    mx_result_clear(&g.r);

    resolve("multi.test", CFG_IPSORT_REQUIRE_V6, &g);
    static const char *const r6[] = {"2001:db8::1", "2001:db8::2"};
    expect_order(&g.r, r6, 2);
    mx_result_clear(&g.r);

    resolve("multi.test", CFG_IPSORT_REQUIRE_V4, &g);
    static const char *const r4[] = {"192.0.2.1", "192.0.2.2", "192.0.2.3"};
    expect_order(&g.r, r4, 3);
    mx_result_clear(&g.r);

    /* a secure MX answer is remembered on every target */
    resolve("secmulti.test", CFG_IPSORT_PREFER_V4, &g);
    T_EQ_INT(g.r.status, MX_OK);
    T_CHECK(g.r.mx_secure);
    T_CHECK(g.r.ntargets > 0 && g.r.targets[0].mx_secure);
    mx_result_clear(&g.r);
}

static void test_outcomes(void)
{
    struct got g;
    resolve("implicit.test", CFG_IPSORT_PREFER_V4, &g);
    T_EQ_INT(g.r.status, MX_OK);
    T_CHECK(g.r.implicit);
    T_EQ_INT(g.r.ntargets, 1);
    T_EQ_STR(g.r.targets[0].host, "implicit.test");
    T_CHECK(mx_canon(&g.r, &g.r.targets[0]) == NULL);
    mx_result_clear(&g.r);

    resolve("nullmx.test", CFG_IPSORT_PREFER_V4, &g);
    T_EQ_INT(g.r.status, MX_PERMFAIL);
    T_EQ_STR(g.r.code, "5.1.10");
    T_CHECK(g.r.null_mx);
    mx_result_clear(&g.r);

    resolve("nx.test", CFG_IPSORT_PREFER_V4, &g);
    T_EQ_INT(g.r.status, MX_PERMFAIL);
    T_EQ_STR(g.r.code, "5.1.2");
    T_EQ_STR(g.r.reason, "DNS Hard Error looking up nx.test (MX): NXDomain");
    mx_result_clear(&g.r);

    resolve("servfail.test", CFG_IPSORT_PREFER_V4, &g);
    T_EQ_INT(g.r.status, MX_TEMPFAIL);
    T_EQ_STR(g.r.code, "4.4.3");
    mx_result_clear(&g.r);

    resolve("silent.test", CFG_IPSORT_PREFER_V4, &g);
    T_EQ_INT(g.r.status, MX_TEMPFAIL);
    mx_result_clear(&g.r);

    resolve("noaddr.test", CFG_IPSORT_PREFER_V4, &g);
    T_EQ_INT(g.r.status, MX_PERMFAIL);
    T_EQ_STR(g.r.code, "5.4.4");
    T_EQ_STR(g.r.reason, "DNS Hard Error: no MX host of noaddr.test has an address");
    mx_result_clear(&g.r);
    /* under Require the other family is not asked for: the reason names the one required */
    resolve("noaddr.test", CFG_IPSORT_REQUIRE_V6, &g);
    T_EQ_STR(g.r.reason, "DNS Hard Error: no MX host of noaddr.test has an IPv6 address (IP sort "
                         "preference: Require IPv6)");
    mx_result_clear(&g.r);

    /* one host SERVFAIL, the other without address: temporary */
    resolve("tempaddr.test", CFG_IPSORT_PREFER_V4, &g);
    T_EQ_INT(g.r.status, MX_TEMPFAIL);
    mx_result_clear(&g.r);

    /* Require IPv4 with only an IPv6 address: nothing to try, and that will not change */
    resolve("v6only.test", CFG_IPSORT_REQUIRE_V4, &g);
    T_EQ_INT(g.r.status, MX_PERMFAIL);
    T_EQ_STR(g.r.reason,
             "DNS Hard Error looking up v6only.test (MX): no MX and no IPv4 address (IP "
             "sort preference: Require IPv4)");
    mx_result_clear(&g.r);

    /* A host reached through CNAMEs: the end of the chain is kept for DANE, per host. */
    resolve("seccname.test", CFG_IPSORT_PREFER_V4, &g);
    T_EQ_INT(g.r.status, MX_OK);
    T_CHECK(g.r.ntargets >= 2);
    T_EQ_STR(g.r.targets[0].host, "alias.seccname.test");
    T_EQ_STR(g.r.targets[0].addr, "192.0.2.44");
    T_CHECK(g.r.targets[0].addr_secure);
    T_EQ_STR(mx_canon(&g.r, &g.r.targets[0]), "real.seccname.test");
    T_EQ_STR(g.r.targets[1].host, "mx2.multi.test");
    T_CHECK(mx_canon(&g.r, &g.r.targets[1]) == NULL);
    mx_result_clear(&g.r);

    resolve("[192.0.2.77]", CFG_IPSORT_PREFER_V4, &g);
    T_EQ_INT(g.r.status, MX_OK);
    T_EQ_INT(g.r.ntargets, 1);
    T_EQ_STR(g.r.targets[0].addr, "192.0.2.77");
    T_CHECK(g.r.targets[0].literal);
    mx_result_clear(&g.r);
}

static void test_route(void)
{
    struct mx_route_host hosts[] = {
        {"relay.test", 2525, false},
        {"2001:db8::5", 0, true},
        {"192.0.2.55", 26, true},
    };
    struct got g;
    memset(&g, 0, sizeof g);
    struct mx_lookup *l = mx_resolve_route(loop, res, hosts, 3, CFG_IPSORT_PREFER_V4, got_cb, &g);
    T_CHECK(l != NULL);
    wait_for(&g);
    T_EQ_INT(g.r.status, MX_OK);
    T_CHECK(g.r.route);
    T_EQ_INT(g.r.ntargets, 3);
    if (g.r.ntargets == 3) {
        T_EQ_STR(g.r.targets[0].addr, "192.0.2.9");
        T_EQ_INT(g.r.targets[0].port, 2525);
        T_EQ_STR(g.r.targets[0].host, "relay.test");
        T_EQ_STR(g.r.targets[1].host, "[IPv6:2001:db8::5]");
        T_EQ_INT(g.r.targets[1].port, 25);
        T_EQ_STR(g.r.targets[2].addr, "192.0.2.55");
        T_EQ_INT(g.r.targets[2].port, 26);
    }
    mx_result_clear(&g.r);

    /* a committed route's hosts: by priority, lowest first, equal ones as entered; ports */
    struct cfg_route_hosts rt;
    char err[CFG_ERR_MAX];
    T_CHECK(cfg_route_hosts_parse("b.test/pri=5, [192.0.2.7]:2600, a.test:26/pri=5, c.test/pri=1",
                                  &rt, err));
    struct mx_route_host rh[CFG_ROUTE_HOSTS_MAX];
    T_EQ_INT(mx_route_hosts(&rt, rh), 4);
    T_EQ_STR(rh[0].name, "192.0.2.7");
    T_CHECK(rh[0].literal);
    T_EQ_INT(rh[0].port, 2600);
    T_EQ_STR(rh[1].name, "c.test");
    T_EQ_INT(rh[1].port, 25);
    T_EQ_STR(rh[2].name, "b.test");
    T_EQ_STR(rh[3].name, "a.test");
    T_EQ_INT(rh[3].port, 26);
    T_CHECK(!rh[3].literal);

    /* cancel: the callback never comes */
    memset(&g, 0, sizeof g);
    l = mx_resolve(loop, res, "multi.test", CFG_IPSORT_PREFER_V4, 25, got_cb, &g);
    mx_cancel(l);
    for (int i = 0; i < 10; i++)
        ev_run_once(loop, 20);
    T_CHECK(!g.done);
}

static void test_pure(void)
{
    char a[64];
    int fam = 0;
    T_CHECK(mx_parse_literal("[192.0.2.1]", a, sizeof a, &fam) && fam == AF_INET);
    T_CHECK(mx_parse_literal("[IPv6:2001:db8::1]", a, sizeof a, &fam) && fam == AF_INET6);
    T_EQ_STR(a, "2001:db8::1");
    T_CHECK(!mx_parse_literal("[example.com]", a, sizeof a, &fam));
    T_CHECK(!mx_parse_literal("192.0.2.1", a, sizeof a, &fam));
    T_CHECK(!mx_parse_literal("[IPv6:192.0.2.1]", a, sizeof a, &fam));
}

int main(void)
{
    srv = fakedns_start(zone, NULL);
    if (!srv) {
        fprintf(stderr, "cannot start the fake DNS server\n");
        return 1;
    }
    loop = ev_loop_new();
    struct dns_server s;
    memset(&s, 0, sizeof s);
    strcpy(s.addr, "127.0.0.1");
    s.port = fakedns_port(srv);
    s.trusted = true;
    struct dns_config c;
    memset(&c, 0, sizeof c);
    c.servers = &s;
    c.nservers = 1;
    c.timeout_ms = 200;
    c.tries = 1;
    char err[256];
    if (dns_resolver_new(loop, &c, &res, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    test_pure();
    test_sorting();
    test_outcomes();
    test_route();
    dns_resolver_free(res);
    ev_loop_free(loop);
    fakedns_stop(srv);
    return t_done();
}
