/* test_sts_fetch_post.c - sts_fetch_post(), the HTTPS POST of TLS reports, against a small HTTPS
 * server in a thread on 127.0.0.1 (OpenSSL, a test CA and a leaf for reports.test made here), with
 * the name resolved by the mock DNS server: what goes on the wire (POST, path, Host with the port,
 * Content-Type, the body, no Expect), any 2xx is success, other statuses fail and redirects are
 * not followed, and the certificate must chain to the configured CAs and name the URL's host. The
 * lab test (tests/lab/tlsrpt/) posts to nginx.
 */
#include "sts_fetch.h"
#include "t.h"
#include "testpki.h"

#include "fakedns.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the HTTPS server: one connection, one request, one answer ---- */

struct server {
    SSL_CTX *ctx;
    int lfd;
    uint16_t port;
    int status; /* the answer's status */
    pthread_t th;
    char req[16384]; /* headers and body as received */
    size_t len;
    bool handshake_ok;
};

static void *srv_main(void *arg)
{
    struct server *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(s->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        s->handshake_ok = true;
        size_t want = (size_t)-1;
        while (s->len < want && s->len < sizeof s->req - 1) {
            int r = SSL_read(ssl, s->req + s->len, (int)(sizeof s->req - 1 - s->len));
            if (r <= 0)
                break;
            s->len += (size_t)r;
            s->req[s->len] = '\0';
            char *end = strstr(s->req, "\r\n\r\n");
            char *cl = strcasestr(s->req, "\r\nContent-Length:");
            if (end && cl)
                want = (size_t)(end + 4 - s->req) + strtoul(cl + 17, NULL, 10);
            else if (end)
                want = (size_t)(end + 4 - s->req);
        }
        char answer[256];
        snprintf(answer, sizeof answer,
                 "HTTP/1.1 %d Test\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                 "%sConnection: close\r\n\r\nok",
                 s->status, s->status / 100 == 3 ? "Location: https://reports.test/moved\r\n" : "");
        SSL_write(ssl, answer, (int)strlen(answer));
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static void srv_start(struct server *s, SSL_CTX *ctx, int status)
{
    memset(s, 0, sizeof *s);
    s->ctx = ctx;
    s->status = status;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    bind(s->lfd, (struct sockaddr *)&sa, sizeof sa);
    listen(s->lfd, 4);
    getsockname(s->lfd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    pthread_create(&s->th, NULL, srv_main, s);
}

static void srv_stop(struct server *s)
{
    /* A client that gave up before connecting leaves accept() waiting: wake it. */
    if (!s->handshake_ok && s->len == 0) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons(s->port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connect(fd, (struct sockaddr *)&sa, sizeof sa);
        close(fd);
    }
    pthread_join(s->th, NULL);
    close(s->lfd);
}

/* ---- the client side ---- */

static bool zone(const struct fakedns_query *q, struct fakedns_reply *r, void *arg)
{
    (void)arg;
    static const unsigned char lo[4] = {127, 0, 0, 1};
    if (strcmp(q->name, "reports.test") == 0 || strcmp(q->name, "other.test") == 0) {
        fakedns_reply_start(r, q, 0, false, false);
        if (q->type == DNS_T_A)
            fakedns_reply_rr(r, NULL, DNS_T_A, 60, lo, 4);
    } else {
        fakedns_reply_start(r, q, 3, false, false);
    }
    return true;
}

struct wait {
    bool done;
    struct sts_fetch_result res;
};

static void post_cb(const struct sts_fetch_result *res, void *arg)
{
    struct wait *w = arg;
    w->res = *res;
    w->done = true;
}

static const char report[] =
    "{\n  \"organization-name\": \"Example Corp\",\n  \"policies\": []\n}\n";

/* POSTs the report to url, trusting ca_pem, through the mock resolver. */
static struct sts_fetch_result post(struct fakedns *f, const char *url, const char *ca_pem)
{
    struct dns_server srv;
    memset(&srv, 0, sizeof srv);
    strcpy(srv.addr, "127.0.0.1");
    srv.port = fakedns_port(f);
    struct dns_config dc;
    memset(&dc, 0, sizeof dc);
    dc.servers = &srv;
    dc.nservers = 1;
    dc.timeout_ms = 2000;
    dc.tries = 1;
    struct ev_loop *loop = ev_loop_new();
    struct dns_resolver *dns = NULL;
    struct sts_fetcher *fetcher = NULL;
    char err[128];
    struct sts_fetch_config fc;
    memset(&fc, 0, sizeof fc);
    fc.ca_pem = ca_pem;
    fc.ca_pem_len = strlen(ca_pem);
    fc.timeout_s = 5;
    T_EQ_INT(dns_resolver_new(loop, &dc, &dns, err, sizeof err), 0);
    T_EQ_INT(sts_fetcher_new(loop, dns, &fc, &fetcher, err, sizeof err), 0);
    struct wait w;
    memset(&w, 0, sizeof w);
    struct sts_fetch *h = sts_fetch_post(fetcher, url, report, sizeof report - 1,
                                         "application/tlsrpt+json", post_cb, &w);
    T_CHECK(h != NULL);
    for (int i = 0; h && !w.done && i < 1000; i++)
        ev_run_once(loop, 10);
    T_CHECK(w.done);
    sts_fetcher_free(fetcher);
    dns_resolver_free(dns);
    ev_loop_free(loop);
    return w.res;
}

int main(void)
{
    /* The server thread may write to a client that already gave up (a refused certificate). */
    signal(SIGPIPE, SIG_IGN);
    struct fakedns *f = fakedns_start(zone, NULL);
    if (!f) {
        fprintf(stderr, "cannot start the mock DNS server\n");
        return 1;
    }
    struct t_cert ca = t_cert_make("test CA", -1, 365, true, NULL, NULL);
    struct t_cert leaf = t_cert_make("reports.test", -1, 365, false, "DNS:reports.test", &ca);
    struct t_cert other_ca = t_cert_make("other CA", -1, 365, true, NULL, NULL);
    char *ca_pem = t_cert_pem(ca.x), *other_pem = t_cert_pem(other_ca.x);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx, leaf.x);
    SSL_CTX_use_PrivateKey(ctx, leaf.k);

    struct server s;
    char url[128], want[128];
    struct sts_fetch_result r;

    /* 200: taken; the request as RFC 8460 §5.4 wants it */
    srv_start(&s, ctx, 200);
    snprintf(url, sizeof url, "https://reports.test:%u/tlsrpt", s.port);
    r = post(f, url, ca_pem);
    srv_stop(&s);
    T_EQ_INT(r.status, STS_FETCH_OK);
    T_EQ_INT(r.http_status, 200);
    T_EQ_STR(r.url, url);
    T_CHECK(strncmp(s.req, "POST /tlsrpt HTTP/1.1\r\n", 23) == 0);
    snprintf(want, sizeof want, "\r\nHost: reports.test:%u\r\n", s.port);
    T_CHECK(strstr(s.req, want) != NULL);
    T_CHECK(strstr(s.req, "\r\nContent-Type: application/tlsrpt+json\r\n") != NULL);
    snprintf(want, sizeof want, "\r\nContent-Length: %zu\r\n", sizeof report - 1);
    T_CHECK(strstr(s.req, want) != NULL);
    T_CHECK(strcasestr(s.req, "\r\nExpect:") == NULL);
    const char *body = strstr(s.req, "\r\n\r\n");
    T_CHECK(body && strcmp(body + 4, report) == 0);

    /* any 2xx is success */
    srv_start(&s, ctx, 204);
    snprintf(url, sizeof url, "https://reports.test:%u/", s.port);
    r = post(f, url, ca_pem);
    srv_stop(&s);
    T_EQ_INT(r.status, STS_FETCH_OK);
    T_EQ_INT(r.http_status, 204);

    /* another status is a failure, worded for "failed due to" */
    srv_start(&s, ctx, 500);
    snprintf(url, sizeof url, "https://reports.test:%u/tlsrpt", s.port);
    r = post(f, url, ca_pem);
    srv_stop(&s);
    T_EQ_INT(r.status, STS_FETCH_STATUS);
    T_EQ_STR(r.reason, "HTTP status 500");

    /* a redirect is not followed */
    srv_start(&s, ctx, 301);
    snprintf(url, sizeof url, "https://reports.test:%u/tlsrpt", s.port);
    r = post(f, url, ca_pem);
    srv_stop(&s);
    T_EQ_INT(r.status, STS_FETCH_STATUS);
    T_EQ_STR(r.reason, "HTTP status 301");

    /* the certificate must name the URL's host ... */
    srv_start(&s, ctx, 200);
    snprintf(url, sizeof url, "https://other.test:%u/tlsrpt", s.port);
    r = post(f, url, ca_pem);
    srv_stop(&s);
    T_EQ_INT(r.status, STS_FETCH_CERT);
    T_EQ_INT(s.len, 0);

    /* ... and chain to the configured CAs only */
    srv_start(&s, ctx, 200);
    snprintf(url, sizeof url, "https://reports.test:%u/tlsrpt", s.port);
    r = post(f, url, other_pem);
    srv_stop(&s);
    T_EQ_INT(r.status, STS_FETCH_CERT);
    T_EQ_INT(s.len, 0);

    SSL_CTX_free(ctx);
    free(ca_pem);
    free(other_pem);
    t_cert_free(&ca);
    t_cert_free(&leaf);
    t_cert_free(&other_ca);
    fakedns_stop(f);
    return t_done();
}
