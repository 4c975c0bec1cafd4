/* sts_fetch.c - the MTA-STS policy fetch over libcurl's multi socket API (see sts_fetch.h).
 *
 * A fetch has two phases. Without a proxy it first asks our resolver for the A and AAAA records of
 * mta-sts.<domain> (both at once) and pins what it gets with CURLOPT_RESOLVE; then one easy handle
 * joins the fetcher's multi handle. libcurl tells us which sockets to watch (SOCKETFUNCTION) and
 * when to call it back (TIMERFUNCTION); both go on the ev_loop. Finished transfers are collected
 * after curl_multi_socket_action() has returned and delivered from a local queue, so a user
 * callback may start or cancel fetches without re-entering libcurl.
 *
 * The body is capped in the write callback: Content-Length can be absent (chunked) or lie. A
 * response whose status or type is already wrong is cut off at its first byte of body.
 */
#include "sts_fetch.h"

#include "sts_mx.h"
#include "sts_policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sts_fetcher {
    struct ev_loop *loop;
    struct dns_resolver *dns;
    CURLM *multi;
    struct ev_timer *timer; /* libcurl's timeout */
    char *ca_pem;
    size_t ca_pem_len;
    char *ca_file;
    char *proxy; /* NULL: direct */
    /* The proxy's host name when it is one (not an address literal): resolved through our
     * resolvers too and pinned, like the policy host when there is no proxy. */
    char proxy_host[STS_NAME_MAX + 1];
    int proxy_port;
    unsigned timeout_s;
    bool certinfo;
    struct sts_fetch *live; /* every fetch not yet delivered */
};

struct sts_fetch {
    struct sts_fetcher *f;
    struct sts_fetch *prev, *next;
    struct sts_fetch *done_next; /* local completion queue */
    sts_fetch_cb cb;
    void *arg;
    char host[STS_NAME_MAX + 1]; /* mta-sts.<domain>, or the POST URL's host */
    int port;                    /* 443, or the POST URL's port */
    bool post;                   /* a POST (sts_fetch_post): any 2xx is success */
    char *post_body;
    size_t post_len;
    struct curl_slist *headers; /* the POST's Content-Type */
    struct dns_query *qa, *qaaaa;
    enum dns_status st_a, st_aaaa;
    bool a_done, aaaa_done;
    char addrs[512];           /* "a,b,[c]" for CURLOPT_RESOLVE */
    struct ev_timer *deadline; /* the DNS phase's share of the time limit */
    uint64_t start_ms;
    CURL *easy;
    struct curl_slist *resolve;
    char *body;
    size_t len;
    bool too_big, bad_status, bad_type, queued;
    char errbuf[CURL_ERROR_SIZE];
    struct sts_fetch_result res;
};

/* ---- small helpers ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *sts_fetch_status_name(enum sts_fetch_status st)
{
    static const char *const names[] = {
        [STS_FETCH_OK] = "OK",           [STS_FETCH_NXDOMAIN] = "NXDOMAIN",
        [STS_FETCH_NOADDR] = "NOADDR",   [STS_FETCH_DNS] = "DNS",
        [STS_FETCH_REFUSED] = "REFUSED", [STS_FETCH_CONNECT] = "CONNECT",
        [STS_FETCH_TIMEOUT] = "TIMEOUT", [STS_FETCH_TLS] = "TLS",
        [STS_FETCH_CERT] = "CERT",       [STS_FETCH_STATUS] = "STATUS",
        [STS_FETCH_TYPE] = "TYPE",       [STS_FETCH_SIZE] = "SIZE",
        [STS_FETCH_PROXY] = "PROXY",     [STS_FETCH_ERROR] = "ERROR",
    };
    if ((unsigned)st < sizeof names / sizeof names[0] && names[st])
        return names[st];
    return "ERROR";
}

bool sts_fetch_type_ok(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, "text/plain", 10) != 0)
        return false;
    ct += 10;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* An address literal (IPv4, or IPv6 without brackets) needs no DNS. */
static bool is_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* ---- libcurl's sockets and timer on the loop ---- */

static void deliver_done(struct sts_fetcher *f);

static void on_io(struct ev_loop *loop, int fd, unsigned revents, void *arg)
{
    (void)loop;
    struct sts_fetcher *f = arg;
    int flags = 0, running = 0;
    if (revents & EV_READ)
        flags |= CURL_CSELECT_IN;
    if (revents & EV_WRITE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(f->multi, fd, flags, &running);
    deliver_done(f);
}

static void on_curl_timeout(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct sts_fetcher *f = arg;
    int running = 0;
    f->timer = NULL;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    deliver_done(f);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct sts_fetcher *f = userp;
    unsigned ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= EV_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= EV_WRITE;
    return ev_io_set(f->loop, s, ev, on_io, f) == 0 || ev == 0 ? 0 : -1;
}

static int on_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct sts_fetcher *f = userp;
    ev_timer_cancel(f->loop, f->timer);
    f->timer = NULL;
    if (timeout_ms >= 0) {
        /* Never call libcurl from here: the loop calls it back, at the earliest next iteration. */
        f->timer = ev_timer_add(f->loop, (uint64_t)timeout_ms, on_curl_timeout, f);
        if (!f->timer)
            return -1;
    }
    return 0;
}

/* ---- fetcher ---- */

/* Finds the host and port of a proxy URL ("http://[user:pw@]host[:port][/]"); host stays ""
 * for an address literal, which needs no resolving. libcurl's default proxy port is 1080. */
static void parse_proxy(const char *url, char *host, size_t cap, int *port)
{
    host[0] = '\0';
    *port = strncasecmp(url, "https://", 8) == 0 ? 443 : 1080;
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *end = p + strcspn(p, "/?#");
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            p = q + 1;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (close && close[1] == ':')
            *port = atoi(close + 2);
        return;
    }
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *hend = colon ? colon : end;
    if (colon)
        *port = atoi(colon + 1);
    size_t len = (size_t)(hend - p);
    if (len == 0 || len >= cap)
        return;
    memcpy(host, p, len);
    host[len] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) == 1)
        host[0] = '\0';
}

int sts_fetcher_new(struct ev_loop *loop, struct dns_resolver *dns,
                    const struct sts_fetch_config *cfg, struct sts_fetcher **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        snprintf(err, errlen, "libcurl cannot start: %s", curl_easy_strerror(curl_init_rc));
        return -1;
    }
    if (!dns && !(cfg->proxy && *cfg->proxy)) {
        snprintf(err, errlen, "a direct policy fetch needs a resolver");
        return -1;
    }
    struct sts_fetcher *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->loop = loop;
    f->dns = dns;
    f->timeout_s = cfg->timeout_s == 0                      ? STS_FETCH_TIMEOUT_DEFAULT
                   : cfg->timeout_s > STS_FETCH_TIMEOUT_MAX ? STS_FETCH_TIMEOUT_MAX
                                                            : cfg->timeout_s;
    f->certinfo = cfg->certinfo;
    f->proxy = dup_or_null(cfg->proxy);
    if (f->proxy && dns)
        parse_proxy(f->proxy, f->proxy_host, sizeof f->proxy_host, &f->proxy_port);
    f->ca_file = dup_or_null(cfg->ca_file);
    if (cfg->ca_pem && cfg->ca_pem_len) {
        f->ca_pem = malloc(cfg->ca_pem_len);
        if (f->ca_pem) {
            memcpy(f->ca_pem, cfg->ca_pem, cfg->ca_pem_len);
            f->ca_pem_len = cfg->ca_pem_len;
        }
    }
    f->multi = curl_multi_init();
    if (!f->multi || (cfg->proxy && *cfg->proxy && !f->proxy) || (cfg->ca_file && !f->ca_file) ||
        (cfg->ca_pem_len && !f->ca_pem)) {
        snprintf(err, errlen, "out of memory");
        sts_fetcher_free(f);
        return -1;
    }
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    *out = f;
    return 0;
}

static void fetch_release(struct sts_fetch *h);

void sts_fetcher_free(struct sts_fetcher *f)
{
    if (!f)
        return;
    while (f->live)
        sts_fetch_cancel(f->live);
    ev_timer_cancel(f->loop, f->timer);
    if (f->multi)
        curl_multi_cleanup(f->multi);
    free(f->ca_pem);
    free(f->ca_file);
    free(f->proxy);
    free(f);
}

bool sts_fetcher_proxied(const struct sts_fetcher *f)
{
    return f && f->proxy;
}

/* ---- one fetch ---- */

static double elapsed(struct sts_fetch *h)
{
    ev_now_update(h->f->loop);
    return (double)(ev_now_ms(h->f->loop) - h->start_ms) / 1000.0;
}

/* Unlinks the fetch and frees everything it holds but the struct's result. */
static void fetch_stop(struct sts_fetch *h)
{
    dns_query_cancel(h->qa);
    dns_query_cancel(h->qaaaa);
    h->qa = h->qaaaa = NULL;
    ev_timer_cancel(h->f->loop, h->deadline);
    h->deadline = NULL;
    if (h->easy) {
        curl_multi_remove_handle(h->f->multi, h->easy);
        curl_easy_cleanup(h->easy);
        h->easy = NULL;
    }
    curl_slist_free_all(h->resolve);
    h->resolve = NULL;
    curl_slist_free_all(h->headers);
    h->headers = NULL;
}

static void fetch_release(struct sts_fetch *h)
{
    fetch_stop(h);
    struct sts_fetcher *f = h->f;
    if (h->prev)
        h->prev->next = h->next;
    else if (f->live == h)
        f->live = h->next;
    if (h->next)
        h->next->prev = h->prev;
    free(h->body);
    free(h->post_body);
    free(h);
}

void sts_fetch_cancel(struct sts_fetch *h)
{
    if (!h)
        return;
    /* A fetch waiting in the completion queue is only marked: deliver_done() skips and frees it. */
    if (h->queued) {
        h->cb = NULL;
        return;
    }
    fetch_release(h);
}

/* Finishes a fetch from a DNS callback or a timer: nothing of libcurl is on the stack. */
static void finish_now(struct sts_fetch *h)
{
    fetch_stop(h);
    h->res.elapsed_s = elapsed(h);
    sts_fetch_cb cb = h->cb;
    void *arg = h->arg;
    struct sts_fetch_result res = h->res;
    res.body = res.status == STS_FETCH_OK ? h->body : NULL;
    res.body_len = res.status == STS_FETCH_OK ? h->len : 0;
    h->queued = true; /* a cancel of this fetch from inside cb is then harmless */
    if (cb)
        cb(&res, arg);
    fetch_release(h);
}

/* Not inlined: a reason may be cut at its buffer's end on purpose (its start says what went
 * wrong), and gcc would otherwise warn about every long argument at every call. */
static void fail(struct sts_fetch *h, enum sts_fetch_status st, const char *fmt, const char *a,
                 const char *b) __attribute__((noinline));

static void fail(struct sts_fetch *h, enum sts_fetch_status st, const char *fmt, const char *a,
                 const char *b)
{
    h->res.status = st;
    snprintf(h->res.reason, sizeof h->res.reason, fmt, a ? a : "", b ? b : "");
}

/* ---- phase 2: the transfer ---- */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct sts_fetch *h = arg;
    size_t n = size * nmemb;
    if (h->post) {
        /* The answer to a report says nothing we use; only its status counts. It is read (so
         * the connection ends cleanly) but capped like a policy. */
        h->len += n;
        return h->len > STS_POLICY_MAX ? 0 : n;
    }
    long code = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) {
        h->bad_status = true; /* nothing of this body is wanted */
        return 0;
    }
    const char *ct = NULL;
    curl_easy_getinfo(h->easy, CURLINFO_CONTENT_TYPE, &ct);
    if (!sts_fetch_type_ok(ct)) {
        h->bad_type = true;
        return 0;
    }
    if (n > STS_POLICY_MAX - h->len) {
        h->too_big = true;
        return 0;
    }
    if (!h->body) {
        h->body = malloc(STS_POLICY_MAX);
        if (!h->body)
            return 0;
    }
    memcpy(h->body + h->len, ptr, n);
    h->len += n;
    return n;
}

/* Takes libcurl's "SSL certificate problem: x" or "SSL: x" and keeps x. */
static const char *tls_text(const char *e)
{
    static const char *const prefixes[] = {"SSL certificate problem: ", "SSL: "};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(e, prefixes[i], strlen(prefixes[i])) == 0)
            return e + strlen(prefixes[i]);
    return e;
}

static void take_certinfo(struct sts_fetch *h)
{
    struct curl_certinfo *ci = NULL;
    if (curl_easy_getinfo(h->easy, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci ||
        ci->num_of_certs < 1)
        return;
    for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next) {
        const char *v = strchr(s->data, ':');
        if (!v)
            continue;
        size_t klen = (size_t)(v - s->data);
        v++;
        if (klen == 7 && strncmp(s->data, "Subject", 7) == 0)
            copy_str(h->res.cert_subject, sizeof h->res.cert_subject, v);
        else if (klen == 6 && strncmp(s->data, "Issuer", 6) == 0)
            copy_str(h->res.cert_issuer, sizeof h->res.cert_issuer, v);
        else if (klen == 11 && strncmp(s->data, "Expire date", 11) == 0)
            copy_str(h->res.cert_expire, sizeof h->res.cert_expire, v);
        else if (klen == 30 && strncmp(s->data, "X509v3 Subject Alternative Name", 30) == 0)
            copy_str(h->res.cert_san, sizeof h->res.cert_san, v);
        else if (strncmp(s->data, "X509v3 Subject Alternative Name:", 32) == 0)
            copy_str(h->res.cert_san, sizeof h->res.cert_san, s->data + 32);
    }
}

/* Sorts a finished transfer into a status and reason. */
static void classify(struct sts_fetch *h, CURLcode rc)
{
    struct sts_fetch_result *r = &h->res;
    char buf[64];
    const char *ct = NULL;
    char *ip = NULL;
    long code = 0, connect_code = 0, os_errno = 0, verify = 0;
    curl_off_t connect_us = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(h->easy, CURLINFO_HTTP_CONNECTCODE, &connect_code);
    curl_easy_getinfo(h->easy, CURLINFO_CONTENT_TYPE, &ct);
    curl_easy_getinfo(h->easy, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(h->easy, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_getinfo(h->easy, CURLINFO_SSL_VERIFYRESULT, &verify);
    curl_easy_getinfo(h->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
    r->http_status = code;
    copy_str(r->content_type, sizeof r->content_type, ct);
    copy_str(r->addr, sizeof r->addr, ip);
    if (h->f->certinfo)
        take_certinfo(h);
    const char *e = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);

    if (h->post && code >= 200 && code < 300) {
        r->status = STS_FETCH_OK; /* RFC 8460 §5.4: any 2xx means the report was taken */
    } else if (h->post && code != 0) {
        snprintf(buf, sizeof buf, "%ld", code);
        fail(h, STS_FETCH_STATUS, "HTTP status %s", buf, NULL);
    } else if (code != 0 && code != 200) {
        snprintf(buf, sizeof buf, "%ld", code);
        fail(h, STS_FETCH_STATUS,
             code >= 300 && code < 400 ? "HTTP status %s (redirects are not followed)"
                                       : "HTTP status %s",
             buf, NULL);
    } else if (code == 200 && (h->bad_type || !sts_fetch_type_ok(ct))) {
        fail(h, STS_FETCH_TYPE, "Content-Type %s (text/plain is required)",
             ct && *ct ? ct : "(none)", NULL);
    } else if (h->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(buf, sizeof buf, "%d", STS_POLICY_MAX);
        fail(h, STS_FETCH_SIZE, "a policy larger than %s bytes", buf, NULL);
    } else if (rc == CURLE_OK && code == 200) {
        r->status = STS_FETCH_OK;
    } else if (rc == CURLE_OK) {
        fail(h, STS_FETCH_ERROR, "no HTTP response", NULL, NULL);
    } else if (h->f->proxy && connect_code != 0 && connect_code != 200) {
        snprintf(buf, sizeof buf, "%ld", connect_code);
        fail(h, STS_FETCH_PROXY, "a proxy failure (CONNECT answered %s)", buf, NULL);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(buf, sizeof buf, "%u", h->f->timeout_s);
        if (connect_us > 0)
            fail(h, STS_FETCH_TIMEOUT, "a timeout (no complete answer within %s s)", buf, NULL);
        else
            fail(h, STS_FETCH_TIMEOUT, "a connection timeout", NULL, NULL);
    } else if (rc == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED) {
        if (h->f->proxy)
            fail(h, STS_FETCH_PROXY, "a proxy failure (connection refused by %s)", h->f->proxy,
                 NULL);
        else {
            snprintf(buf, sizeof buf, "%d", h->port);
            fail(h, STS_FETCH_REFUSED, "a refused connection (%s port %s)",
                 h->addrs[0] ? h->addrs : h->host, buf);
        }
    } else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_PROXY ||
               rc == CURLE_COULDNT_RESOLVE_HOST) {
        fail(h, h->f->proxy ? STS_FETCH_PROXY : STS_FETCH_CONNECT,
             h->f->proxy ? "a proxy failure (%s)" : "a connection failure (%s)", e, NULL);
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION) {
        /* libcurl's own text names the host on a name mismatch; OpenSSL's verify code is the
         * fallback when the text is not one of libcurl's certificate messages. */
        const char *t = tls_text(e);
        fail(h, STS_FETCH_CERT, "a certificate error: %s",
             t == e && verify != 0 ? X509_verify_cert_error_string(verify) : t, NULL);
    } else if (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_SSL_CACERT_BADFILE ||
               rc == CURLE_SSL_CERTPROBLEM) {
        fail(h, STS_FETCH_TLS, "a TLS failure: %s", tls_text(e), NULL);
    } else if (h->f->proxy && rc == CURLE_RECV_ERROR && code == 0) {
        fail(h, STS_FETCH_PROXY, "a proxy failure (%s)", e, NULL);
    } else {
        fail(h, STS_FETCH_ERROR, "an HTTP failure: %s", e, NULL);
    }
}

static void deliver_done(struct sts_fetcher *f)
{
    struct sts_fetch *head = NULL, **tail = &head;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(f->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct sts_fetch *h = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
        if (!h)
            continue;
        classify(h, m->data.result);
        h->queued = true;
        *tail = h;
        tail = &h->done_next;
    }
    /* libcurl is off the stack now: user callbacks may start and cancel fetches. */
    while (head) {
        struct sts_fetch *h = head;
        head = h->done_next;
        fetch_stop(h);
        h->res.elapsed_s = elapsed(h);
        if (h->cb) {
            struct sts_fetch_result res = h->res;
            res.body = res.status == STS_FETCH_OK ? h->body : NULL;
            res.body_len = res.status == STS_FETCH_OK ? h->len : 0;
            h->cb(&res, h->arg);
        }
        fetch_release(h);
    }
}

static void start_transfer(struct sts_fetch *h)
{
    struct sts_fetcher *f = h->f;
    ev_timer_cancel(f->loop, h->deadline);
    h->deadline = NULL;
    uint64_t spent = ev_now_ms(f->loop) - h->start_ms;
    uint64_t limit = (uint64_t)f->timeout_s * 1000;
    long remaining = spent >= limit ? 1 : (long)(limit - spent);

    CURL *e = curl_easy_init();
    if (!e) {
        fail(h, STS_FETCH_ERROR, "out of memory", NULL, NULL);
        finish_now(h);
        return;
    }
    h->easy = e;
    if (h->addrs[0]) {
        char entry[sizeof h->host + sizeof h->addrs + 16];
        if (f->proxy)
            snprintf(entry, sizeof entry, "%s:%d:%s", f->proxy_host, f->proxy_port, h->addrs);
        else
            snprintf(entry, sizeof entry, "%s:%d:%s", h->host, h->port, h->addrs);
        h->resolve = curl_slist_append(NULL, entry);
        if (!h->resolve) {
            fail(h, STS_FETCH_ERROR, "out of memory", NULL, NULL);
            finish_now(h);
            return;
        }
        curl_easy_setopt(e, CURLOPT_RESOLVE, h->resolve);
    }
    curl_easy_setopt(e, CURLOPT_URL, h->res.url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)h);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    /* Only the configured CAs: no CA directory from the build's defaults. */
    curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    if (f->ca_pem) {
        struct curl_blob blob = {f->ca_pem, f->ca_pem_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    } else if (f->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, f->ca_file);
    }
    /* "" is not "unset": it stops libcurl from reading https_proxy and friends. */
    curl_easy_setopt(e, CURLOPT_PROXY, f->proxy ? f->proxy : "");
    if (f->proxy)
        curl_easy_setopt(e, CURLOPT_HTTPPROXYTUNNEL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, remaining);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, remaining);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE, (long)STS_POLICY_MAX);
    if (h->post) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->post_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, h->post_body ? h->post_body : "");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "stsgate/" STSGATE_VERSION);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (f->certinfo)
        curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
    if (curl_multi_add_handle(f->multi, e) != CURLM_OK) {
        fail(h, STS_FETCH_ERROR, "libcurl refused the transfer", NULL, NULL);
        finish_now(h);
    }
}

/* ---- phase 1: the policy host's addresses ---- */

static void append_addrs(struct sts_fetch *h, const struct dns_answer *ans)
{
    for (size_t i = 0; i < ans->nrr; i++) {
        char a[64];
        const struct dns_rr *rr = &ans->rr[i];
        if (rr->type == DNS_T_A) {
            inet_ntop(AF_INET, &rr->a, a, sizeof a);
        } else if (rr->type == DNS_T_AAAA) {
            char a6[48];
            inet_ntop(AF_INET6, &rr->aaaa, a6, sizeof a6);
            snprintf(a, sizeof a, "[%s]", a6);
        } else {
            continue;
        }
        size_t used = strlen(h->addrs);
        if (used + strlen(a) + 2 < sizeof h->addrs)
            snprintf(h->addrs + used, sizeof h->addrs - used, "%s%s", used ? "," : "", a);
    }
}

static void resolved(struct sts_fetch *h)
{
    if (h->addrs[0]) {
        /* Whatever the other family said, there is somewhere to connect to. */
        dns_query_cancel(h->qa);
        dns_query_cancel(h->qaaaa);
        h->qa = h->qaaaa = NULL;
        start_transfer(h);
        return;
    }
    bool proxy = h->f->proxy != NULL;
    if ((h->a_done && h->st_a == DNS_NXDOMAIN) || (h->aaaa_done && h->st_aaaa == DNS_NXDOMAIN)) {
        if (proxy)
            fail(h, STS_FETCH_PROXY, "a proxy failure (proxy host %s: NXDOMAIN)", h->f->proxy_host,
                 NULL);
        else
            fail(h, STS_FETCH_NXDOMAIN,
                 h->post ? "an unknown host (%s: NXDOMAIN)"
                         : "an unknown policy host (%s: NXDOMAIN)",
                 h->host, NULL);
        finish_now(h);
        return;
    }
    if (!h->a_done || !h->aaaa_done)
        return;
    if (dns_status_temporary(h->st_a) || dns_status_temporary(h->st_aaaa)) {
        const char *st = dns_status_name(dns_status_temporary(h->st_a) ? h->st_a : h->st_aaaa);
        fail(h, proxy ? STS_FETCH_PROXY : STS_FETCH_DNS,
             proxy ? "a proxy failure (a DNS failure looking up %s: %s)"
                   : "a DNS failure looking up %s (%s)",
             proxy ? h->f->proxy_host : h->host, st);
    } else if (proxy) {
        fail(h, STS_FETCH_PROXY, "a proxy failure (proxy host %s has no address)", h->f->proxy_host,
             NULL);
    } else {
        fail(h, STS_FETCH_NOADDR,
             h->post ? "a host without address (%s)" : "a policy host without address (%s)",
             h->host, NULL);
    }
    finish_now(h);
}

static void on_a(struct dns_answer *ans, void *arg)
{
    struct sts_fetch *h = arg;
    h->qa = NULL;
    h->a_done = true;
    h->st_a = ans->status;
    /* Both families are asked at once; the first answer with addresses starts the transfer, so
     * a host that has them costs one round trip. */
    append_addrs(h, ans);
    resolved(h);
}

static void on_aaaa(struct dns_answer *ans, void *arg)
{
    struct sts_fetch *h = arg;
    h->qaaaa = NULL;
    h->aaaa_done = true;
    h->st_aaaa = ans->status;
    append_addrs(h, ans);
    resolved(h);
}

static void on_deadline(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct sts_fetch *h = arg;
    h->deadline = NULL;
    fail(h, STS_FETCH_TIMEOUT, "a timeout resolving %s", h->f->proxy ? h->f->proxy_host : h->host,
         NULL);
    finish_now(h);
}

static void on_start(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct sts_fetch *h = arg;
    h->deadline = NULL;
    start_transfer(h);
}

/* Links a new transfer of h->host:h->port into the fetcher and starts it: the name phase, then
 * the transfer. Frees h and returns NULL when out of memory. */
static struct sts_fetch *fetch_begin(struct sts_fetcher *f, struct sts_fetch *h)
{
    h->res.via_proxy = f->proxy != NULL;
    ev_now_update(f->loop);
    h->start_ms = ev_now_ms(f->loop);
    h->next = f->live;
    if (f->live)
        f->live->prev = h;
    f->live = h;

    /* Through a proxy the proxy resolves the policy host; we resolve only the proxy's own name
     * (none when it is an address). An address literal in a POST URL needs no name either. */
    const char *rname = f->proxy ? f->proxy_host : h->host;
    if (!rname[0] || (!f->proxy && is_literal(h->host))) {
        /* Nothing to resolve: the transfer starts from the loop, so that even a failure to start
         * it never calls back from inside sts_fetch_start() or sts_fetch_post(). */
        h->deadline = ev_timer_add(f->loop, 0, on_start, h);
        if (!h->deadline) {
            fetch_release(h);
            return NULL;
        }
        return h;
    }
    h->deadline = ev_timer_add(f->loop, (uint64_t)f->timeout_s * 1000, on_deadline, h);
    h->qa = dns_query(f->dns, rname, DNS_T_A, on_a, h);
    if (h->qa)
        h->qaaaa = dns_query(f->dns, rname, DNS_T_AAAA, on_aaaa, h);
    if (!h->deadline || !h->qa || !h->qaaaa) {
        fetch_release(h);
        return NULL;
    }
    return h;
}

struct sts_fetch *sts_fetch_start(struct sts_fetcher *f, const char *domain, sts_fetch_cb cb,
                                  void *arg)
{
    size_t dlen = domain ? strlen(domain) : 0;
    if (dlen && domain[dlen - 1] == '.')
        dlen--;
    if (dlen == 0 || dlen > STS_NAME_MAX - 8)
        return NULL;
    struct sts_fetch *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->f = f;
    h->cb = cb;
    h->arg = arg;
    h->port = 443;
    snprintf(h->host, sizeof h->host, "mta-sts.%.*s", (int)dlen, domain);
    for (char *p = h->host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(h->res.url, sizeof h->res.url, "https://%s/.well-known/mta-sts.txt", h->host);
    return fetch_begin(f, h);
}

bool sts_fetch_url_host(const char *url, char *host, size_t hostlen, int *port)
{
    if (!url || strncasecmp(url, "https://", 8) != 0)
        return false;
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return false; /* no spaces or control bytes: nothing may reach the request line */
    const char *p = url + 8;
    size_t alen = strcspn(p, "/?#");
    if (alen == 0 || memchr(p, '@', alen))
        return false; /* no credentials in a report URL */
    const char *end = p + alen, *colon;
    if (*p == '[') {
        const char *close = memchr(p, ']', alen);
        if (!close)
            return false;
        p++;
        colon = close + 1 < end ? close + 1 : NULL;
        if (colon && *colon != ':')
            return false;
        end = close;
    } else {
        colon = memchr(p, ':', alen);
        if (colon)
            end = colon;
    }
    size_t hlen = (size_t)(end - p);
    if (hlen == 0 || hlen >= hostlen)
        return false;
    *port = 443;
    if (colon) {
        const char *q = colon + 1, *qend = url + 8 + alen;
        long v = 0;
        if (q == qend)
            return false;
        for (; q < qend; q++) {
            if (*q < '0' || *q > '9' || (v = v * 10 + (*q - '0')) > 65535)
                return false;
        }
        if (v == 0)
            return false;
        *port = (int)v;
    }
    for (size_t i = 0; i < hlen; i++)
        host[i] = (char)tolower((unsigned char)p[i]);
    host[hlen] = '\0';
    return true;
}

struct sts_fetch *sts_fetch_post(struct sts_fetcher *f, const char *url, const char *body,
                                 size_t len, const char *content_type, sts_fetch_cb cb, void *arg)
{
    struct sts_fetch *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->f = f;
    h->cb = cb;
    h->arg = arg;
    h->post = true;
    char header[256];
    if (!sts_fetch_url_host(url, h->host, sizeof h->host, &h->port) ||
        strlen(url) >= sizeof h->res.url || !content_type || strpbrk(content_type, "\r\n") ||
        snprintf(header, sizeof header, "Content-Type: %s", content_type) >= (int)sizeof header) {
        free(h);
        return NULL;
    }
    snprintf(h->res.url, sizeof h->res.url, "%s", url);
    /* "Expect:" off: a report is small, and a 100-continue round trip only adds a wait. */
    h->headers = curl_slist_append(NULL, header);
    struct curl_slist *more = h->headers ? curl_slist_append(h->headers, "Expect:") : NULL;
    h->post_body = malloc(len ? len : 1);
    if (!more || !h->post_body) {
        curl_slist_free_all(h->headers);
        free(h->post_body);
        free(h);
        return NULL;
    }
    h->headers = more;
    if (len)
        memcpy(h->post_body, body, len);
    h->post_len = len;
    return fetch_begin(f, h);
}

/* ---- blocking use ---- */

struct blocking {
    struct sts_fetch_result *res;
    char *body;
    size_t cap;
    bool done;
};

static void blocking_cb(const struct sts_fetch_result *res, void *arg)
{
    struct blocking *b = arg;
    *b->res = *res;
    size_t n = res->body_len < b->cap ? res->body_len : b->cap;
    if (res->body && n)
        memcpy(b->body, res->body, n);
    b->res->body = res->body ? b->body : NULL;
    b->res->body_len = res->body ? n : 0;
    b->done = true;
}

enum sts_fetch_status sts_fetch_blocking(const struct dns_config *cfg_dns,
                                         const struct sts_fetch_config *cfg, const char *domain,
                                         struct sts_fetch_result *res, char *body, size_t cap,
                                         bool (*interrupted)(void))
{
    memset(res, 0, sizeof *res);
    res->status = STS_FETCH_ERROR;
    struct dns_config empty;
    memset(&empty, 0, sizeof empty);
    struct ev_loop *loop = ev_loop_new();
    struct dns_resolver *dns = NULL;
    struct sts_fetcher *f = NULL;
    char err[256] = "";
    if (!loop) {
        snprintf(res->reason, sizeof res->reason, "no event loop");
        return res->status;
    }
    if (dns_resolver_new(loop, cfg_dns ? cfg_dns : &empty, &dns, err, sizeof err) < 0 ||
        sts_fetcher_new(loop, dns, cfg, &f, err, sizeof err) < 0) {
        snprintf(res->reason, sizeof res->reason, "%s", err);
        dns_resolver_free(dns);
        ev_loop_free(loop);
        return res->status;
    }
    struct blocking b = {res, body, cap, false};
    struct sts_fetch *h = sts_fetch_start(f, domain, blocking_cb, &b);
    if (!h)
        snprintf(res->reason, sizeof res->reason, "cannot start the fetch");
    while (h && !b.done) {
        if (ev_run_once(loop, 200) < 0)
            break;
        if (!b.done && interrupted && interrupted()) {
            sts_fetch_cancel(h);
            res->status = STS_FETCH_ERROR;
            snprintf(res->reason, sizeof res->reason, "interrupted");
            break;
        }
    }
    sts_fetcher_free(f);
    dns_resolver_free(dns);
    ev_loop_free(loop);
    return res->status;
}
