/* sts_fetch.h - the MTA-STS policy fetch (RFC 8461 3.3) over libcurl, on the shared event loop;
 * and, with the same machinery, the HTTPS POST of TLS reports (RFC 8460 §5.4, sts_fetch_post).
 *
 * GET https://mta-sts.<domain>/.well-known/mta-sts.txt, exactly as reference/mta-sts.md says:
 * HTTPS only, TLS 1.2 or later, the certificate valid for mta-sts.<domain> against the configured
 * CA list (and nothing else: no CA directory, no environment), status exactly 200 (redirects are
 * never followed), Content-Type text/plain (parameters allowed, any case), a body of at most
 * STS_POLICY_MAX bytes counted while reading (Content-Length or not), one total time limit from
 * the first DNS query to the last byte.
 *
 * Names: without a proxy, mta-sts.<domain> is resolved through our own resolvers (core/dns.h: the
 * configured list, DNSSEC status irrelevant here) and pinned with CURLOPT_RESOLVE, because
 * Debian's libcurl resolves with the system resolver, not ours. With a proxy, libcurl opens a
 * CONNECT tunnel and the proxy resolves the policy host; the proxy's own name, when it is not an
 * address, goes through our resolvers and is pinned the same way. Environment proxies are never
 * used.
 *
 * libcurl runs through its multi socket API: its sockets and its timer sit on our ev_loop, so a
 * fetch never blocks the loop and no thread of ours is started.
 *
 * Every failure comes back as a status and a reason worded to follow "failed due to" in the
 * mail_logs line (reference/mail-logs.md): "a connection timeout", "HTTP status 404", ...
 */
#ifndef STSGATE_STS_FETCH_H
#define STSGATE_STS_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "dns.h"
#include "evloop.h"

#define STS_FETCH_TIMEOUT_DEFAULT 60 /* seconds; stsgated --sts-fetch-timeout sets 1..60 */
#define STS_FETCH_TIMEOUT_MAX 60

struct sts_fetch_config {
    /* The trusted CAs. ca_pem (PEM text in memory, e.g. certconfig's System and Custom lists
     * joined) wins over ca_file (a PEM bundle file); with neither, the system bundle. libcurl
     * keeps a parsed ca_file between fetches (its CA cache); ca_pem is parsed for each fetch,
     * which is cheap next to a fetch, but prefer ca_file when only the System list is on. */
    const char *ca_pem;
    size_t ca_pem_len;
    const char *ca_file;
    const char *proxy;  /* destconfig SETUP proxy URL ("http://host:port"); NULL or "": direct */
    unsigned timeout_s; /* total time of one fetch, 1..60; 0 means STS_FETCH_TIMEOUT_DEFAULT */
    bool certinfo;      /* keep the policy host's certificate in the result (mtastsverify) */
};

enum sts_fetch_status {
    STS_FETCH_OK = 0,
    STS_FETCH_NXDOMAIN, /* the policy host does not exist */
    STS_FETCH_NOADDR,   /* it exists but has no A or AAAA record */
    STS_FETCH_DNS,      /* its lookup failed for now (SERVFAIL, timeout) */
    STS_FETCH_REFUSED,  /* the connection was refused */
    STS_FETCH_CONNECT,  /* other connection failures (unreachable, reset) */
    STS_FETCH_TIMEOUT,  /* the total time limit was reached */
    STS_FETCH_TLS,      /* the TLS handshake failed (protocol, version) */
    STS_FETCH_CERT,     /* the certificate did not verify for mta-sts.<domain> */
    STS_FETCH_STATUS,   /* an HTTP status other than 200 (redirects included) */
    STS_FETCH_TYPE,     /* a Content-Type other than text/plain */
    STS_FETCH_SIZE,     /* a body longer than STS_POLICY_MAX bytes */
    STS_FETCH_PROXY,    /* the proxy refused or failed the CONNECT */
    STS_FETCH_ERROR,    /* anything else (out of memory, libcurl error) */
};

struct sts_fetch_result {
    enum sts_fetch_status status;
    char url[300];
    bool via_proxy;
    long http_status;       /* 0 when no response came */
    char content_type[128]; /* as the server sent it; "" when none */
    const char *body;       /* STS_FETCH_OK only; valid during the callback, not NUL-terminated */
    size_t body_len;
    char addr[64];    /* the address connected to (the proxy's through a proxy); "" if none */
    char reason[384]; /* on failure, worded to follow "failed due to": "a connection timeout" */
    double elapsed_s; /* from start to the end, DNS included */
    /* certinfo: the policy host's leaf certificate as libcurl describes it; "" when unknown (a
     * failed verification, or certinfo not asked for) */
    char cert_subject[256];
    char cert_issuer[256];
    char cert_expire[64];
    char cert_san[384];
};

struct sts_fetcher;
struct sts_fetch;

/* Called exactly once per fetch from the event loop (never from inside sts_fetch_start()), unless
 * the fetch was cancelled or the fetcher freed first. */
typedef void (*sts_fetch_cb)(const struct sts_fetch_result *res, void *arg);

/* One libcurl multi handle on loop. dns may be NULL only when every fetch goes through a proxy.
 * cfg is copied. Returns 0, or -1 with a reason in err. loop and dns must outlive the fetcher. */
int sts_fetcher_new(struct ev_loop *loop, struct dns_resolver *dns,
                    const struct sts_fetch_config *cfg, struct sts_fetcher **out, char *err,
                    size_t errlen);
/* Cancels every pending fetch (no callbacks). Not from inside a fetch callback. NULL is ignored. */
void sts_fetcher_free(struct sts_fetcher *f);

/* True when the fetcher goes through a proxy (the "via proxy" log line). */
bool sts_fetcher_proxied(const struct sts_fetcher *f);

/* Starts the fetch of the policy of domain (the policy domain, not the mta-sts host). NULL only
 * when out of memory or the domain cannot form a host name. */
struct sts_fetch *sts_fetch_start(struct sts_fetcher *f, const char *domain, sts_fetch_cb cb,
                                  void *arg);
/* Starts an HTTPS POST of len bytes of body to url ("https://host[:port]/path"), with that
 * Content-Type: TLS reports (RFC 8460 §5.4, "application/tlsrpt+json"). It goes exactly like a
 * policy fetch: the host resolved through our resolvers and pinned (or the proxy's name), the
 * configured CAs, TLS 1.2+, the certificate valid for the host, the same total time limit, no
 * redirect followed. Any 2xx answer is STS_FETCH_OK (the answer's body is read and dropped);
 * another status is STS_FETCH_STATUS ("HTTP status 500"); the other failures are those of a
 * fetch. body is copied. NULL when out of memory or when url is not such an https URL. */
struct sts_fetch *sts_fetch_post(struct sts_fetcher *f, const char *url, const char *body,
                                 size_t len, const char *content_type, sts_fetch_cb cb, void *arg);
/* The host (lowercase, IPv6 without brackets) and port (443 when absent) of an https URL; false
 * for any other scheme, credentials in the URL, an empty host or a bad port. */
bool sts_fetch_url_host(const char *url, char *host, size_t hostlen, int *port);
/* The callback will not be called. NULL is ignored. Allowed from inside any callback. */
void sts_fetch_cancel(struct sts_fetch *h);

/* "OK", "NXDOMAIN", "TIMEOUT", ... for tests and tools. */
const char *sts_fetch_status_name(enum sts_fetch_status st);

/* True when a Content-Type value names text/plain (parameters allowed, case-insensitive). */
bool sts_fetch_type_ok(const char *content_type);

/* Blocking fetch on a private loop and resolver (cfg_dns may be NULL: resolv.conf), for the
 * shell's one-shot mtastsverify. *res is filled; its body is copied into body (cap bytes; pass
 * STS_POLICY_MAX) and res->body points there. interrupted, when not NULL, is polled about every
 * 200 ms: returning true abandons the fetch (status STS_FETCH_ERROR, reason "interrupted"). */
enum sts_fetch_status sts_fetch_blocking(const struct dns_config *cfg_dns,
                                         const struct sts_fetch_config *cfg, const char *domain,
                                         struct sts_fetch_result *res, char *body, size_t cap,
                                         bool (*interrupted)(void));

#endif
