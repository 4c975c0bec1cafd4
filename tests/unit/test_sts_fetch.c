/* test_sts_fetch.c - the parts of the policy fetch that need no HTTPS server: the Content-Type
 * rule, the policy host's name resolution through our own resolver (a mock DNS server: NXDOMAIN,
 * no address, SERVFAIL, silence hitting the total time limit), a refused connection, a refused
 * proxy, a proxy given by name (resolved through our resolver too), and cancellation; the report
 * POST's URL rule, its host resolved through our resolver, a literal address with a port, and a
 * refused connection. Every HTTPS behaviour is tested against the lab's nginx (tests/lab/sts/,
 * tests/lab/tlsrpt/).
 */
#include "sts_fetch.h"
#include "t.h"

#include "fakedns.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_type_rule(void)
{
    static const struct {
        const char *ct;
        bool ok;
    } cases[] = {
        {"text/plain", true},
        {"TEXT/PLAIN", true},
        {"Text/Plain; charset=utf-8", true},
        {"text/plain;charset=us-ascii", true},
        {"text/plain ; charset=utf-8", true},
        {" text/plain", true},
        {"text/plain\t", true},
        {"text/html", false},
        {"text/plainx", false},
        {"text/plain-text", false},
        {"application/octet-stream", false},
        {"text", false},
        {"", false},
        {NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (sts_fetch_type_ok(cases[i].ct) != cases[i].ok)
            fprintf(stderr, "type case %zu: \"%s\"\n", i, cases[i].ct ? cases[i].ct : "(null)");
        T_EQ_INT(sts_fetch_type_ok(cases[i].ct), cases[i].ok);
    }
    T_EQ_STR(sts_fetch_status_name(STS_FETCH_OK), "OK");
    T_EQ_STR(sts_fetch_status_name(STS_FETCH_TIMEOUT), "TIMEOUT");
    T_EQ_STR(sts_fetch_status_name((enum sts_fetch_status)99), "ERROR");
}

/* The mock zone: the policy host of each test domain behaves as its name says. */
static bool zone(const struct fakedns_query *q, struct fakedns_reply *r, void *arg)
{
    (void)arg;
    static const unsigned char lo[4] = {127, 0, 0, 1};
    if (strcmp(q->name, "mta-sts.silent.test") == 0)
        return false;
    if (strcmp(q->name, "mta-sts.fail.test") == 0) {
        fakedns_reply_start(r, q, 2, false, false);
    } else if (strcmp(q->name, "mta-sts.refused.test") == 0 || strcmp(q->name, "proxy.test") == 0 ||
               strcmp(q->name, "reports.test") == 0) {
        fakedns_reply_start(r, q, 0, false, false);
        if (q->type == DNS_T_A)
            fakedns_reply_rr(r, NULL, DNS_T_A, 60, lo, 4);
    } else if (strcmp(q->name, "mta-sts.noaddr.test") == 0 ||
               strcmp(q->name, "noaddr.reports.test") == 0) {
        fakedns_reply_start(r, q, 0, false, false);
    } else {
        fakedns_reply_start(r, q, 3, false, false);
    }
    return true;
}

static struct dns_config dns_cfg(struct fakedns *f, struct dns_server *srv)
{
    memset(srv, 0, sizeof *srv);
    strcpy(srv->addr, "127.0.0.1");
    srv->port = fakedns_port(f);
    struct dns_config c;
    memset(&c, 0, sizeof c);
    c.servers = srv;
    c.nservers = 1;
    c.timeout_ms = 3000;
    c.tries = 1;
    return c;
}

/* True when nothing accepts on 127.0.0.1:443 here (the refused case needs that). */
static bool port_443_closed(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(443);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool closed = connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0;
    close(fd);
    return closed;
}

static void test_policy_host_resolution(struct fakedns *f)
{
    struct dns_server srv;
    struct dns_config dc = dns_cfg(f, &srv);
    struct sts_fetch_config fc;
    memset(&fc, 0, sizeof fc);
    fc.timeout_s = 1;
    struct sts_fetch_result r;
    char body[64];

    T_EQ_INT(sts_fetch_blocking(&dc, &fc, "nx.test", &r, body, sizeof body, NULL),
             STS_FETCH_NXDOMAIN);
    T_EQ_STR(r.reason, "an unknown policy host (mta-sts.nx.test: NXDOMAIN)");
    T_EQ_STR(r.url, "https://mta-sts.nx.test/.well-known/mta-sts.txt");
    T_CHECK(!r.via_proxy);

    /* the domain's case and trailing dot do not reach the host name */
    T_EQ_INT(sts_fetch_blocking(&dc, &fc, "NX.Test.", &r, body, sizeof body, NULL),
             STS_FETCH_NXDOMAIN);
    T_EQ_STR(r.url, "https://mta-sts.nx.test/.well-known/mta-sts.txt");

    T_EQ_INT(sts_fetch_blocking(&dc, &fc, "noaddr.test", &r, body, sizeof body, NULL),
             STS_FETCH_NOADDR);
    T_EQ_STR(r.reason, "a policy host without address (mta-sts.noaddr.test)");

    T_EQ_INT(sts_fetch_blocking(&dc, &fc, "fail.test", &r, body, sizeof body, NULL), STS_FETCH_DNS);
    T_EQ_STR(r.reason, "a DNS failure looking up mta-sts.fail.test (SERVFAIL)");

    /* a silent resolver: the fetch's own total limit (1 s) ends it, not the DNS timeout (3 s) */
    T_EQ_INT(sts_fetch_blocking(&dc, &fc, "silent.test", &r, body, sizeof body, NULL),
             STS_FETCH_TIMEOUT);
    T_EQ_STR(r.reason, "a timeout resolving mta-sts.silent.test");
    T_CHECK(r.elapsed_s >= 0.9 && r.elapsed_s < 2.5);

    if (port_443_closed()) {
        T_EQ_INT(sts_fetch_blocking(&dc, &fc, "refused.test", &r, body, sizeof body, NULL),
                 STS_FETCH_REFUSED);
        T_EQ_STR(r.reason, "a refused connection (127.0.0.1 port 443)");
    } else {
        fprintf(stderr, "note: something listens on 127.0.0.1:443; the refused case is skipped\n");
    }
}

static void test_proxy_refused(void)
{
    /* Through a proxy nothing is resolved here: the proxy is asked, and it refuses. */
    struct sts_fetch_config fc;
    memset(&fc, 0, sizeof fc);
    fc.timeout_s = 2;
    fc.proxy = "http://127.0.0.1:1";
    struct sts_fetch_result r;
    char body[64];
    T_EQ_INT(sts_fetch_blocking(NULL, &fc, "example.test", &r, body, sizeof body, NULL),
             STS_FETCH_PROXY);
    T_EQ_STR(r.reason, "a proxy failure (connection refused by http://127.0.0.1:1)");
    T_CHECK(r.via_proxy);
}

static void test_proxy_by_name(struct fakedns *f)
{
    /* A proxy given by name is resolved through our resolver, like a policy host: the system
     * resolver does not know proxy.test, so "refused" proves the address came from ours. */
    struct dns_server srv;
    struct dns_config dc = dns_cfg(f, &srv);
    struct sts_fetch_config fc;
    memset(&fc, 0, sizeof fc);
    fc.timeout_s = 2;
    struct sts_fetch_result r;
    char body[64];
    fc.proxy = "http://proxy.test:1/";
    T_EQ_INT(sts_fetch_blocking(&dc, &fc, "example.test", &r, body, sizeof body, NULL),
             STS_FETCH_PROXY);
    T_EQ_STR(r.reason, "a proxy failure (connection refused by http://proxy.test:1/)");
    fc.proxy = "http://user:secret@noproxy.test:3128";
    T_EQ_INT(sts_fetch_blocking(&dc, &fc, "example.test", &r, body, sizeof body, NULL),
             STS_FETCH_PROXY);
    T_EQ_STR(r.reason, "a proxy failure (proxy host noproxy.test: NXDOMAIN)");
}

static void test_url_rule(void)
{
    static const struct {
        const char *url;
        bool ok;
        const char *host;
        int port;
    } cases[] = {
        {"https://reports.example.com/tlsrpt", true, "reports.example.com", 443},
        {"HTTPS://Reports.Example.COM", true, "reports.example.com", 443},
        {"https://reports.example.com:8443/x?y", true, "reports.example.com", 8443},
        {"https://192.0.2.1:1/", true, "192.0.2.1", 1},
        {"https://[2001:db8::1]:444/r", true, "2001:db8::1", 444},
        {"https://[2001:db8::1]/r", true, "2001:db8::1", 443},
        {"http://reports.example.com/", false, NULL, 0},
        {"mailto:tlsrpt@example.com", false, NULL, 0},
        {"https://user:pw@reports.example.com/", false, NULL, 0},
        {"https:///path", false, NULL, 0},
        {"https://host:/", false, NULL, 0},
        {"https://host:0/", false, NULL, 0},
        {"https://host:65536/", false, NULL, 0},
        {"https://host:44x/", false, NULL, 0},
        {"https://[2001:db8::1/", false, NULL, 0},
        {"https://[2001:db8::1]x/", false, NULL, 0},
        {"https://host/a b", false, NULL, 0},
        {NULL, false, NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char host[256] = "";
        int port = 0;
        bool ok = sts_fetch_url_host(cases[i].url, host, sizeof host, &port);
        if (ok != cases[i].ok)
            fprintf(stderr, "url case %zu: %s\n", i, cases[i].url ? cases[i].url : "(null)");
        T_EQ_INT(ok, cases[i].ok);
        if (ok && cases[i].ok) {
            T_EQ_STR(host, cases[i].host);
            T_EQ_INT(port, cases[i].port);
        }
    }
}

struct post_wait {
    bool done;
    struct sts_fetch_result res;
};

static void post_cb(const struct sts_fetch_result *res, void *arg)
{
    struct post_wait *w = arg;
    w->res = *res;
    w->done = true;
}

/* One POST on a private loop through the mock resolver; returns its result. */
static struct sts_fetch_result post_once(struct fakedns *f, const char *url, bool *started)
{
    struct dns_server srv;
    struct dns_config dc = dns_cfg(f, &srv);
    struct ev_loop *loop = ev_loop_new();
    struct dns_resolver *dns = NULL;
    struct sts_fetcher *fetcher = NULL;
    char err[128];
    struct sts_fetch_config fc;
    memset(&fc, 0, sizeof fc);
    fc.timeout_s = 2;
    T_EQ_INT(dns_resolver_new(loop, &dc, &dns, err, sizeof err), 0);
    T_EQ_INT(sts_fetcher_new(loop, dns, &fc, &fetcher, err, sizeof err), 0);
    struct post_wait w;
    memset(&w, 0, sizeof w);
    static const char body[] = "{\"organization-name\":\"x\"}";
    struct sts_fetch *h =
        sts_fetch_post(fetcher, url, body, sizeof body - 1, "application/tlsrpt+json", post_cb, &w);
    *started = h != NULL;
    for (int i = 0; h && !w.done && i < 400; i++)
        ev_run_once(loop, 10);
    sts_fetcher_free(fetcher);
    dns_resolver_free(dns);
    ev_loop_free(loop);
    return w.res;
}

static void test_post(struct fakedns *f)
{
    bool started;
    struct sts_fetch_result r = post_once(f, "http://reports.test/", &started);
    T_CHECK(!started);
    r = post_once(f, "https://reports.test/tlsrpt\r\n", &started);
    T_CHECK(!started);

    r = post_once(f, "https://nx.reports.test/tlsrpt", &started);
    T_CHECK(started);
    T_EQ_INT(r.status, STS_FETCH_NXDOMAIN);
    T_EQ_STR(r.reason, "an unknown host (nx.reports.test: NXDOMAIN)");
    T_EQ_STR(r.url, "https://nx.reports.test/tlsrpt");

    r = post_once(f, "https://noaddr.reports.test/tlsrpt", &started);
    T_EQ_INT(r.status, STS_FETCH_NOADDR);
    T_EQ_STR(r.reason, "a host without address (noaddr.reports.test)");

    /* the name comes from our resolver (the system's does not know reports.test), the port from
     * the URL: nothing listens on port 1 */
    r = post_once(f, "https://reports.test:1/tlsrpt", &started);
    T_EQ_INT(r.status, STS_FETCH_REFUSED);
    T_EQ_STR(r.reason, "a refused connection (127.0.0.1 port 1)");

    /* an address literal is not looked up */
    r = post_once(f, "https://127.0.0.1:1/tlsrpt", &started);
    T_EQ_INT(r.status, STS_FETCH_REFUSED);
    T_EQ_STR(r.reason, "a refused connection (127.0.0.1 port 1)");
}

static int called;

static void count_cb(const struct sts_fetch_result *res, void *arg)
{
    (void)res;
    (void)arg;
    called++;
}

static bool stop_now(void)
{
    return true;
}

static void test_cancel(struct fakedns *f)
{
    struct dns_server srv;
    struct dns_config dc = dns_cfg(f, &srv);
    struct ev_loop *loop = ev_loop_new();
    struct dns_resolver *dns = NULL;
    struct sts_fetcher *fetcher = NULL;
    char err[128];
    struct sts_fetch_config fc;
    memset(&fc, 0, sizeof fc);
    T_EQ_INT(dns_resolver_new(loop, &dc, &dns, err, sizeof err), 0);
    T_EQ_INT(sts_fetcher_new(loop, dns, &fc, &fetcher, err, sizeof err), 0);
    /* a cancelled fetch never calls back */
    struct sts_fetch *h = sts_fetch_start(fetcher, "nx.test", count_cb, NULL);
    T_CHECK(h != NULL);
    sts_fetch_cancel(h);
    for (int i = 0; i < 20; i++)
        ev_run_once(loop, 10);
    T_EQ_INT(called, 0);
    /* freeing the fetcher with fetches in the air calls nobody either */
    T_CHECK(sts_fetch_start(fetcher, "silent.test", count_cb, NULL) != NULL);
    T_CHECK(sts_fetch_start(fetcher, "nx.test", count_cb, NULL) != NULL);
    sts_fetcher_free(fetcher);
    dns_resolver_free(dns);
    T_EQ_INT(called, 0);
    /* a name that cannot form a host name is refused at once */
    char long_name[300];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    T_EQ_INT(sts_fetcher_new(loop, NULL, &fc, &fetcher, err, sizeof err), -1);
    ev_loop_free(loop);

    struct sts_fetch_result r;
    char body[16];
    T_EQ_INT(sts_fetch_blocking(&dc, &fc, long_name, &r, body, sizeof body, NULL), STS_FETCH_ERROR);
    /* an interrupted blocking fetch gives up */
    fc.timeout_s = 5;
    T_EQ_INT(sts_fetch_blocking(&dc, &fc, "silent.test", &r, body, sizeof body, stop_now),
             STS_FETCH_ERROR);
    T_EQ_STR(r.reason, "interrupted");
}

int main(void)
{
    test_type_rule();
    struct fakedns *f = fakedns_start(zone, NULL);
    if (!f) {
        fprintf(stderr, "cannot start the mock DNS server\n");
        return 1;
    }
    test_policy_host_resolution(f);
    test_proxy_refused();
    test_proxy_by_name(f);
    test_cancel(f);
    test_url_rule();
    test_post(f);
    fakedns_stop(f);
    return t_done();
}
