/* listener.c - the agent's ESMTP server (RFC 5321, 1870, 2920, 3207, 2034, 6152) on the loop.
 *
 * Every session is a small state machine driven by readable/writable events; nothing blocks but
 * the group commit (one SQLite transaction for every message finished within COMMIT_DELAY_MS).
 * Choices (docs/agent.md says them to operators):
 * - relaying: a client outside --relay may talk, but every RCPT gets 550 5.7.1: the reply says
 *   exactly why, at the command the RFC ties relaying to, and the client's log shows the address;
 * - line length: 1000 octets is RFC 5321's limit; we accept up to LINE_LIMIT (2048) including
 *   CRLF as a margin for sloppy clients. A longer command line gets 500 5.5.2 once its end
 *   arrives; a longer message line refuses the message with 500 5.5.2 after the final dot;
 * - bare LF: a command line ending in LF alone gets 500 5.5.2; a message containing one is
 *   refused after the final dot with 550 5.6.0 and its "\n.\n" never ends the DATA (no SMTP
 *   smuggling: only CRLF.CRLF ends a message). In both cases the session goes on;
 * - pipelined input after STARTTLS is discarded (RFC 3207 §5, command injection);
 * - 20 errors in one session, or 300 s without input, end it with 421.
 */
#include "listener.h"

#include "agent.h"
#include "delivery.h"
#include "kv.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_LIMIT 2048         /* octets of one line, CRLF included */
#define IN_CAP (LINE_LIMIT + 2) /* a whole line always fits */
#define OUT_BACKLOG 65536       /* stop reading while this much output waits (pipelining) */
#define COMMIT_DELAY_MS 2
#define COMMIT_BATCH 64
#define COMMIT_BYTES (16u * 1024 * 1024)
#define IDLE_TIMEOUT_S 300
#define DRAIN_TIMEOUT_S 30
#define MAX_ERRORS 20

struct listener;

struct session {
    struct listener *l;
    struct session *prev, *next;
    int fd;
    SSL *ssl;
    bool tls, handshaking, ssl_want_write;
    bool closing; /* close once the output is written */
    bool gone;    /* closed while its message waited for the commit: freed by the commit */
    char peer_ip[INET6_ADDRSTRLEN];
    char local_ip[INET6_ADDRSTRLEN];
    int local_port;
    bool relay_ok;
    int64_t icid;
    struct cfg_snapshot *snap; /* the configuration the connection started with */
    uint64_t last_activity;    /* ev_now_ms */
    int errors;

    bool greeted, esmtp;
    char helo[256];

    /* the transaction */
    bool has_mail;
    int64_t mid;
    char sender[DB_QUEUE_ADDR_MAX + 1];
    char **rcpt;
    size_t n_rcpt, cap_rcpt;

    bool in_data;
    struct strbuf data;
    uint64_t data_size; /* the client's bytes, after dot-unstuffing */
    bool data_too_big, data_bare_lf, data_long_line;
    bool waiting_store;
    int64_t received;

    /* input: in[in_off..in_len) is unread */
    char in[IN_CAP];
    size_t in_off, in_len;
    bool discarding; /* inside an overlong line: drop up to its LF */

    struct strbuf out;
    size_t out_off;
    unsigned events;
};

struct lsock {
    struct listener *l;
    int fd;
    char text[64];
};

struct listener {
    struct agent *a;
    struct lsock socks[AGENT_MAX_LISTEN];
    size_t n_socks;
    struct session *sessions;
    long active;
    struct ev_timer *sweep;

    struct session **pending;
    size_t n_pending, cap_pending;
    uint64_t pending_bytes;
    struct ev_timer *commit_timer;

    SSL_CTX *tls_ctx;
    int64_t tls_version; /* the snapshot version tls_ctx was built from; -1: none */
    char tls_profile[128];

    bool draining;
    uint64_t drain_deadline;
    void (*drain_done)(void *arg);
    void *drain_arg;
    struct ev_timer *drain_timer;
    struct ev_timer *pause_timer; /* accepting paused (out of descriptors) */
};

static void session_pump(struct session *s);
static void session_update_events(struct session *s);
static void session_free(struct session *s);

/* The name in banners and replies: from the configuration the connection started with. */
static const char *host_of(struct session *s)
{
    return agent_hostname_for(s->l->a, s->snap);
}

/* ---- output ---- */

static void reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&s->out, fmt, ap);
    va_end(ap);
    sb_append(&s->out, "\r\n");
}

static size_t out_pending(const struct session *s)
{
    return s->out.len - s->out_off;
}

/* Writes what it can. false when the connection failed. */
static bool flush_out(struct session *s)
{
    s->ssl_want_write = false;
    while (out_pending(s) > 0) {
        const char *p = s->out.buf + s->out_off;
        size_t n = out_pending(s);
        ssize_t w;
        if (s->ssl) {
            ERR_clear_error();
            int r = SSL_write(s->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            if (r <= 0) {
                int e = SSL_get_error(s->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    s->ssl_want_write = e == SSL_ERROR_WANT_WRITE;
                    return true;
                }
                return false;
            }
            w = r;
        } else {
            w = send(s->fd, p, n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return true;
                if (errno == EINTR)
                    continue;
                return false;
            }
        }
        s->out_off += (size_t)w;
    }
    sb_reset(&s->out);
    s->out_off = 0;
    return true;
}

/* ---- TLS ---- */

struct cert_body {
    const char *cert, *key, *chain;
    char *cert_s, *key_s, *chain_s;
};

static int cert_kv(void *arg, const char *key, const char *value)
{
    struct cert_body *b = arg;
    if (strcmp(key, "certificate") == 0)
        b->cert_s = xstrdup(value);
    else if (strcmp(key, "key") == 0)
        b->key_s = xstrdup(value);
    else if (strcmp(key, "chain") == 0)
        b->chain_s = xstrdup(value);
    return 0;
}

/* The server context for the certificate profile chosen in destconfig SETUP; NULL (and a
 * Warning line) when it cannot be used: STARTTLS is then not offered. */
static SSL_CTX *build_tls_ctx(struct agent *a, const struct cfg_snapshot *snap)
{
    const struct cfg_setup *setup = cfg_snapshot_setup(snap);
    const char *name = setup && setup->certificate[0] ? setup->certificate : "Demo";
    const char *body = cfg_snapshot_unit(snap, CFG_KIND_CERT, name);
    if (!body) {
        agent_log(a, MAILLOG_WARNING, "STARTTLS not offered: certificate profile %s not found",
                  name);
        return NULL;
    }
    struct cert_body b = {0};
    kv_parse(body, cert_kv, &b);
    SSL_CTX *ctx = NULL;
    BIO *bio = NULL;
    X509 *x = NULL;
    EVP_PKEY *pkey = NULL;
    const char *why = "no certificate or key";
    if (!b.cert_s || !b.key_s)
        goto out;
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        why = "cannot create a TLS context";
        goto out;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Sessions are not resumed across connections: no cache to grow with thousands of clients. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    bio = BIO_new_mem_buf(b.cert_s, -1);
    x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    if (!x || SSL_CTX_use_certificate(ctx, x) != 1) {
        why = "the certificate does not parse";
        goto fail;
    }
    /* Further blocks after the leaf, then the chain: intermediates in order. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            BIO_free(bio);
            bio = b.chain_s ? BIO_new_mem_buf(b.chain_s, -1) : NULL;
        }
        X509 *extra;
        while (bio && (extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
                X509_free(extra);
                why = "an intermediate certificate cannot be used";
                goto fail;
            }
        }
        ERR_clear_error(); /* the end of the blocks reads as an error */
    }
    BIO_free(bio);
    bio = BIO_new_mem_buf(b.key_s, -1);
    pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (!pkey || SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        why = "the private key does not parse or does not match the certificate";
        goto fail;
    }
    goto out;
fail:
    SSL_CTX_free(ctx);
    ctx = NULL;
out:
    if (!ctx)
        agent_log(a, MAILLOG_WARNING, "STARTTLS not offered: certificate profile %s: %s", name,
                  why);
    ERR_clear_error();
    BIO_free(bio);
    X509_free(x);
    EVP_PKEY_free(pkey);
    free(b.cert_s);
    free(b.key_s);
    free(b.chain_s);
    return ctx;
}

/* The context for a session's configuration, rebuilt when the configuration changed. */
static SSL_CTX *tls_ctx_for(struct listener *l, const struct cfg_snapshot *snap)
{
    int64_t v = cfg_snapshot_version(snap);
    if (l->tls_version != v) {
        SSL_CTX_free(l->tls_ctx);
        l->tls_ctx = build_tls_ctx(l->a, snap);
        l->tls_version = v;
    }
    return l->tls_ctx;
}

/* ---- the transaction ---- */

static void reset_transaction(struct session *s)
{
    for (size_t i = 0; i < s->n_rcpt; i++)
        free(s->rcpt[i]);
    s->n_rcpt = 0;
    s->has_mail = false;
    s->in_data = false;
    s->mid = 0;
    s->sender[0] = '\0';
    sb_free(&s->data);
    s->data_size = 0;
    s->data_too_big = s->data_bare_lf = s->data_long_line = false;
}

/* ---- address parsing (RFC 5321 4.1.2) ---- */

static bool is_atext(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Dot-string or quoted-string; returns the length consumed, 0 when invalid. */
static size_t parse_local(const char *p)
{
    const char *s = p;
    if (*p == '"') {
        p++;
        while (*p && *p != '"') {
            if (*p == '\\') {
                p++;
                if (*p < 32 || *p > 126)
                    return 0;
            } else if (*p < 32 || *p > 126) {
                return 0;
            }
            p++;
        }
        if (*p != '"')
            return 0;
        return (size_t)(p + 1 - s);
    }
    for (;;) {
        const char *atom = p;
        while (is_atext((unsigned char)*p))
            p++;
        if (p == atom)
            return 0;
        if (*p != '.')
            break;
        p++;
    }
    return (size_t)(p - s);
}

/* A domain (letters, digits, hyphens; labels not starting or ending with a hyphen) or an
 * address literal; returns the length consumed, 0 when invalid. */
static size_t parse_domain(const char *p)
{
    const char *s = p;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close || close - p > 64)
            return 0;
        char lit[70];
        memcpy(lit, p + 1, (size_t)(close - p - 1));
        lit[close - p - 1] = '\0';
        unsigned char buf[16];
        bool ok = inet_pton(AF_INET, lit, buf) == 1 ||
                  (strncasecmp(lit, "IPv6:", 5) == 0 && inet_pton(AF_INET6, lit + 5, buf) == 1);
        return ok ? (size_t)(close + 1 - s) : 0;
    }
    for (;;) {
        const char *label = p;
        while (isalnum((unsigned char)*p) || *p == '-')
            p++;
        size_t n = (size_t)(p - label);
        if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
            return 0;
        if (*p != '.')
            break;
        p++;
    }
    return (size_t)(p - s);
}

/* Parses "<path>" at p (a source route is accepted and dropped, RFC 5321 4.1.2). addr gets the
 * mailbox; "" for "<>" when allow_null. *end points after '>'. */
static bool parse_path(const char *p, bool allow_null, char *addr, size_t addrlen, const char **end)
{
    if (*p != '<')
        return false;
    p++;
    if (*p == '>') {
        if (!allow_null)
            return false;
        addr[0] = '\0';
        *end = p + 1;
        return true;
    }
    if (*p == '@') { /* source route: @a,@b: */
        const char *colon = strchr(p, ':');
        if (!colon)
            return false;
        p = colon + 1;
    }
    const char *start = p;
    size_t n = parse_local(p);
    if (n == 0 || n > 64 || p[n] != '@')
        return false;
    p += n + 1;
    size_t d = parse_domain(p);
    if (d == 0 || d > 255)
        return false;
    p += d;
    if (*p != '>')
        return false;
    size_t len = (size_t)(p - start);
    if (len + 1 > addrlen || len > DB_QUEUE_ADDR_MAX - 2)
        return false;
    memcpy(addr, start, len);
    addr[len] = '\0';
    *end = p + 1;
    return true;
}

/* ---- commands ---- */

static bool error_count(struct session *s)
{
    if (++s->errors < MAX_ERRORS)
        return false;
    reply(s, "421 4.7.0 %s Error: too many errors", host_of(s));
    s->closing = true;
    return true;
}

static void cmd_ehlo(struct session *s, const char *arg, bool esmtp)
{
    struct agent *a = s->l->a;
    /* Any printable name is taken (real clients send names with '_' and worse), but nothing
     * that could not go into the Received header as it is. */
    bool printable = *arg && strlen(arg) < sizeof s->helo;
    for (const char *p = arg; *p && printable; p++)
        printable = *p > 32 && *p < 127;
    if (!printable) {
        reply(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        error_count(s);
        return;
    }
    reset_transaction(s);
    snprintf(s->helo, sizeof s->helo, "%s", arg);
    s->greeted = true;
    s->esmtp = esmtp;
    if (!esmtp) {
        reply(s, "250 %s", host_of(s));
        return;
    }
    reply(s, "250-%s", host_of(s));
    reply(s, "250-PIPELINING");
    reply(s, "250-SIZE %llu", (unsigned long long)a->opt.max_size);
    if (!s->tls && tls_ctx_for(s->l, s->snap))
        reply(s, "250-STARTTLS");
    reply(s, "250-ENHANCEDSTATUSCODES");
    reply(s, "250 8BITMIME");
}

/* "FROM:" / "TO:" then an optional single space (tolerated: common and unambiguous). */
static const char *after_keyword(const char *arg, const char *kw)
{
    size_t n = strlen(kw);
    if (strncasecmp(arg, kw, n) != 0)
        return NULL;
    arg += n;
    if (*arg == ' ')
        arg++;
    return arg;
}

static void cmd_mail(struct session *s, const char *arg)
{
    struct agent *a = s->l->a;
    if (!s->greeted) {
        reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        error_count(s);
        return;
    }
    if (s->has_mail) {
        reply(s, "503 5.5.1 Error: nested MAIL command");
        error_count(s);
        return;
    }
    const char *p = after_keyword(arg, "FROM:");
    char addr[DB_QUEUE_ADDR_MAX + 1];
    const char *end;
    if (!p || !parse_path(p, true, addr, sizeof addr, &end)) {
        reply(s, "501 5.1.7 Bad sender address syntax");
        error_count(s);
        return;
    }
    /* ESMTP parameters: SIZE (RFC 1870) and BODY (RFC 6152). */
    while (*end == ' ') {
        while (*end == ' ')
            end++;
        if (!*end)
            break;
        const char *param = end;
        while (*end && *end != ' ')
            end++;
        size_t n = (size_t)(end - param);
        if (s->esmtp && n > 5 && strncasecmp(param, "SIZE=", 5) == 0) {
            char num[32];
            if (n - 5 >= sizeof num) {
                reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
                return;
            }
            memcpy(num, param + 5, n - 5);
            num[n - 5] = '\0';
            char *e;
            errno = 0;
            unsigned long long v = strtoull(num, &e, 10);
            if (*e || !isdigit((unsigned char)num[0])) {
                reply(s, "501 5.5.4 Bad SIZE parameter");
                error_count(s);
                return;
            }
            if (errno == ERANGE || v > a->opt.max_size) {
                reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
                return;
            }
        } else if (s->esmtp && ((n == 9 && strncasecmp(param, "BODY=7BIT", 9) == 0) ||
                                (n == 13 && strncasecmp(param, "BODY=8BITMIME", 13) == 0))) {
            /* both are carried as they are */
        } else {
            reply(s, "555 5.5.4 Unsupported parameter %.*s", (int)(n > 64 ? 64 : n), param);
            error_count(s);
            return;
        }
    }
    if (*end) {
        reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        error_count(s);
        return;
    }
    int64_t mid = agent_next_id(a, DB_QUEUE_MID);
    if (!mid) {
        reply(s, "451 4.3.0 Error: queue unavailable, try again later");
        return;
    }
    s->has_mail = true;
    s->mid = mid;
    snprintf(s->sender, sizeof s->sender, "%s", addr);
    agent_log(a, MAILLOG_INFO, "Start MID %lld ICID %lld", (long long)mid, (long long)s->icid);
    agent_log(a, MAILLOG_INFO, "MID %lld ICID %lld From: <%s>", (long long)mid, (long long)s->icid,
              addr);
    reply(s, "250 2.1.0 Ok");
}

static void cmd_rcpt(struct session *s, const char *arg)
{
    struct agent *a = s->l->a;
    if (!s->has_mail) {
        reply(s, "503 5.5.1 Error: need MAIL command");
        error_count(s);
        return;
    }
    const char *p = after_keyword(arg, "TO:");
    char addr[DB_QUEUE_ADDR_MAX + 1];
    const char *end;
    if (!p || !parse_path(p, false, addr, sizeof addr, &end)) {
        reply(s, "501 5.1.3 Bad recipient address syntax");
        error_count(s);
        return;
    }
    if (*end) {
        reply(s, "555 5.5.4 Unsupported parameter");
        error_count(s);
        return;
    }
    if (!s->relay_ok) {
        a->stats.relay_denied++;
        agent_log(a, MAILLOG_INFO, "MID %lld ICID %lld To: <%s> Rejected by relay control",
                  (long long)s->mid, (long long)s->icid, addr);
        reply(s, "550 5.7.1 <%s>: Relay access denied", addr);
        error_count(s);
        return;
    }
    if ((long)s->n_rcpt >= a->opt.max_rcpt) {
        reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    if (s->n_rcpt == s->cap_rcpt) {
        s->cap_rcpt = s->cap_rcpt ? s->cap_rcpt * 2 : 4;
        s->rcpt = xrealloc(s->rcpt, s->cap_rcpt * sizeof *s->rcpt);
    }
    s->rcpt[s->n_rcpt] = xstrdup(addr);
    agent_log(a, MAILLOG_INFO, "MID %lld ICID %lld RID %zu To: <%s>", (long long)s->mid,
              (long long)s->icid, s->n_rcpt, addr);
    s->n_rcpt++;
    reply(s, "250 2.1.5 Ok");
}

static void add_received(struct session *s)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    const char *proto = s->esmtp ? (s->tls ? "ESMTPS" : "ESMTP") : "SMTP";
    sb_printf(&s->data, "Received: from %s ([%s])\r\n\tby %s (stsgated) with %s id %lld", s->helo,
              s->peer_ip, host_of(s), proto, (long long)s->mid);
    if (s->n_rcpt == 1)
        sb_printf(&s->data, "\r\n\tfor <%s>", s->rcpt[0]);
    sb_printf(&s->data, "; %s\r\n", date);
}

static void cmd_data(struct session *s, const char *arg)
{
    if (*arg) {
        reply(s, "501 5.5.4 Syntax: DATA");
        error_count(s);
        return;
    }
    if (!s->has_mail) {
        reply(s, "503 5.5.1 Error: need MAIL command");
        error_count(s);
        return;
    }
    if (s->n_rcpt == 0) {
        reply(s, "554 5.5.1 Error: no valid recipients");
        error_count(s);
        return;
    }
    s->in_data = true;
    s->received = time(NULL);
    add_received(s);
    reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void start_tls(struct session *s);

static void cmd_starttls(struct session *s, const char *arg)
{
    if (*arg) {
        reply(s, "501 5.5.4 Syntax: STARTTLS");
        error_count(s);
        return;
    }
    if (s->tls) {
        reply(s, "503 5.5.1 Error: TLS already active");
        error_count(s);
        return;
    }
    if (!s->esmtp || !tls_ctx_for(s->l, s->snap)) {
        reply(s, "454 4.7.0 TLS not available");
        return;
    }
    reply(s, "220 2.0.0 Ready to start TLS");
    /* Anything the client pipelined after STARTTLS was sent in the clear: drop it. */
    s->in_off = s->in_len = 0;
    s->handshaking = true;
}

static void handle_command(struct session *s, char *line)
{
    struct agent *a = s->l->a;
    for (char *p = line; *p; p++) {
        if ((unsigned char)*p < 32 && *p != '\t') {
            reply(s, "500 5.5.2 Error: control characters in command");
            error_count(s);
            return;
        }
    }
    char *arg = line;
    while (*arg && *arg != ' ')
        arg++;
    size_t vlen = (size_t)(arg - line);
    if (*arg)
        *arg++ = '\0';
    /* Trailing spaces are tolerated (some clients send them). */
    size_t alen = strlen(arg);
    while (alen && arg[alen - 1] == ' ')
        arg[--alen] = '\0';

    if (a->draining && !s->has_mail) {
        reply(s, "421 4.3.2 %s Service shutting down, closing transmission channel", host_of(s));
        s->closing = true;
        return;
    }
    if (vlen == 4 && strcasecmp(line, "EHLO") == 0)
        cmd_ehlo(s, arg, true);
    else if (vlen == 4 && strcasecmp(line, "HELO") == 0)
        cmd_ehlo(s, arg, false);
    else if (vlen == 4 && strcasecmp(line, "MAIL") == 0)
        cmd_mail(s, arg);
    else if (vlen == 4 && strcasecmp(line, "RCPT") == 0)
        cmd_rcpt(s, arg);
    else if (vlen == 4 && strcasecmp(line, "DATA") == 0)
        cmd_data(s, arg);
    else if (vlen == 4 && strcasecmp(line, "RSET") == 0) {
        reset_transaction(s);
        reply(s, "250 2.0.0 Ok");
    } else if (vlen == 4 && strcasecmp(line, "NOOP") == 0)
        reply(s, "250 2.0.0 Ok");
    else if (vlen == 4 && strcasecmp(line, "QUIT") == 0) {
        reply(s, "221 2.0.0 Bye");
        s->closing = true;
    } else if (vlen == 4 && strcasecmp(line, "VRFY") == 0)
        reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
    else if (vlen == 4 && strcasecmp(line, "HELP") == 0)
        reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP%s",
              s->tls ? "" : " STARTTLS");
    else if (vlen == 8 && strcasecmp(line, "STARTTLS") == 0)
        cmd_starttls(s, arg);
    else {
        reply(s, "500 5.5.2 Error: command not recognized");
        error_count(s);
    }
}

/* ---- the group commit ---- */

static void commit_now(struct ev_loop *loop, struct ev_timer *t, void *arg);

static void queue_for_commit(struct session *s)
{
    struct listener *l = s->l;
    if (l->n_pending == l->cap_pending) {
        l->cap_pending = l->cap_pending ? l->cap_pending * 2 : 16;
        l->pending = xrealloc(l->pending, l->cap_pending * sizeof *l->pending);
    }
    l->pending[l->n_pending++] = s;
    l->pending_bytes += s->data.len;
    s->waiting_store = true;
    bool full = l->n_pending >= COMMIT_BATCH || l->pending_bytes >= COMMIT_BYTES;
    if (full && l->commit_timer) {
        ev_timer_cancel(l->a->loop, l->commit_timer);
        l->commit_timer = NULL;
    }
    /* A full batch goes at the next iteration (never from inside this session's own parsing). */
    if (!l->commit_timer)
        l->commit_timer = ev_timer_add(l->a->loop, full ? 0 : COMMIT_DELAY_MS, commit_now, l);
}

static void finish_data(struct session *s)
{
    struct agent *a = s->l->a;
    if (s->data_too_big) {
        agent_log(a, MAILLOG_INFO, "MID %lld ICID %lld rejected: message size exceeds %llu bytes",
                  (long long)s->mid, (long long)s->icid, (unsigned long long)a->opt.max_size);
        reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
    } else if (s->data_bare_lf) {
        agent_log(a, MAILLOG_INFO, "MID %lld ICID %lld rejected: bare LF in the message",
                  (long long)s->mid, (long long)s->icid);
        reply(s, "550 5.6.0 Message refused: bare LF in the message (lines must end with CRLF)");
    } else if (s->data_long_line) {
        agent_log(a, MAILLOG_INFO, "MID %lld ICID %lld rejected: a line exceeds %d octets",
                  (long long)s->mid, (long long)s->icid, LINE_LIMIT);
        reply(s, "500 5.5.2 Message refused: a line is longer than %d octets", LINE_LIMIT);
    } else {
        agent_log(a, MAILLOG_INFO, "MID %lld ready %llu bytes from <%s>", (long long)s->mid,
                  (unsigned long long)s->data_size, s->sender);
        s->in_data = false;
        queue_for_commit(s);
        return;
    }
    reset_transaction(s);
}

static void commit_now(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct listener *l = arg;
    struct agent *a = l->a;
    l->commit_timer = NULL;
    size_t n = l->n_pending;
    if (n == 0)
        return;
    struct session **batch = l->pending;
    l->pending = NULL;
    l->n_pending = l->cap_pending = 0;
    l->pending_bytes = 0;

    struct db_queue_new *msgs = xcalloc(n, sizeof *msgs);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        struct session *s = batch[i];
        bytes += s->data.len;
        msgs[i] = (struct db_queue_new){
            .mid = s->mid,
            .icid = s->icid,
            .received = s->received,
            .sender = s->sender,
            .rcpt = (const char *const *)s->rcpt,
            .n_rcpt = s->n_rcpt,
            .data = sb_str(&s->data),
            .size = s->data.len,
        };
    }
    char err[512];
    ev_now_update(a->loop);
    uint64_t t0 = ev_now_ms(a->loop);
    bool ok = db_queue_store(a->queue, msgs, n, err, sizeof err) == DB_OK;
    free(msgs);
    ev_now_update(a->loop);
    if (ok && agent_log_enabled(a, MAILLOG_DEBUG))
        agent_log(a, MAILLOG_DEBUG, "Queue commit: %zu messages, %llu bytes in %llu ms", n,
                  (unsigned long long)bytes, (unsigned long long)(ev_now_ms(a->loop) - t0));
    if (!ok)
        agent_log(a, MAILLOG_CRITICAL, "Queue database error: %s", err);
    for (size_t i = 0; i < n; i++) {
        struct session *s = batch[i];
        s->waiting_store = false;
        if (ok) {
            a->stats.msgs_received++;
            a->stats.rcpts_received += s->n_rcpt;
            a->stats.bytes_received += s->data_size;
            agent_log(a, MAILLOG_INFO, "MID %lld queued for delivery", (long long)s->mid);
        }
        if (s->gone) {
            session_free(s);
            continue;
        }
        if (ok)
            reply(s, "250 2.0.0 Ok: queued as %lld", (long long)s->mid);
        else
            reply(s, "451 4.3.0 Error: queue file write error, try again later");
        reset_transaction(s);
        session_pump(s);
    }
    free(batch);
    if (ok && a->delivery)
        delivery_kick(a->delivery);
}

/* ---- reading and parsing ---- */

static void data_line(struct session *s, const char *line, size_t len)
{
    bool crlf = len >= 2 && line[len - 2] == '\r';
    if (crlf && len == 3 && line[0] == '.') {
        finish_data(s);
        return;
    }
    if (!crlf)
        s->data_bare_lf = true;
    if (line[0] == '.') { /* dot-unstuffing (RFC 5321 4.5.2) */
        line++;
        len--;
    }
    s->data_size += len;
    if (s->data_size > s->l->a->opt.max_size) {
        s->data_too_big = true;
        sb_free(&s->data); /* keep reading to the final dot, but keep nothing */
    }
    if (!s->data_too_big && !s->data_bare_lf && !s->data_long_line)
        sb_append_len(&s->data, line, len);
}

/* Handles complete lines while the session may go on; returns when it needs more input. */
static void process_input(struct session *s)
{
    while (!s->waiting_store && !s->closing && !s->handshaking && !s->gone &&
           out_pending(s) < OUT_BACKLOG) {
        char *start = s->in + s->in_off;
        size_t avail = s->in_len - s->in_off;
        char *nl = memchr(start, '\n', avail);
        if (!nl) {
            if (avail >= LINE_LIMIT) {
                /* An overlong line: drop what we have and the rest up to its LF. */
                if (!s->discarding) {
                    if (s->in_data) {
                        s->data_long_line = true;
                        sb_free(&s->data);
                    } else {
                        reply(s, "500 5.5.2 Error: line too long (limit %d octets)", LINE_LIMIT);
                        error_count(s);
                    }
                }
                s->discarding = true;
                s->in_off = s->in_len = 0;
            }
            break;
        }
        size_t len = (size_t)(nl - start) + 1;
        s->in_off += len;
        if (s->discarding) {
            s->discarding = false;
            continue;
        }
        if (s->in_data) {
            data_line(s, start, len);
            continue;
        }
        if (len < 2 || start[len - 2] != '\r') {
            reply(s, "500 5.5.2 Error: bare LF received; command lines must end with CRLF");
            error_count(s);
            continue;
        }
        start[len - 2] = '\0';
        if (memchr(start, '\0', len - 2)) {
            reply(s, "500 5.5.2 Error: NUL in command");
            error_count(s);
            continue;
        }
        handle_command(s, start);
    }
    if (s->in_off == s->in_len) {
        s->in_off = s->in_len = 0;
    } else if (s->in_off > 0 && s->in_len == sizeof s->in) {
        memmove(s->in, s->in + s->in_off, s->in_len - s->in_off);
        s->in_len -= s->in_off;
        s->in_off = 0;
    }
}

/* Reads what fits. false when the peer closed or the connection failed. */
static bool read_some(struct session *s)
{
    if (s->in_len == sizeof s->in && s->in_off > 0) {
        memmove(s->in, s->in + s->in_off, s->in_len - s->in_off);
        s->in_len -= s->in_off;
        s->in_off = 0;
    }
    while (s->in_len < sizeof s->in) {
        size_t room = sizeof s->in - s->in_len;
        ssize_t r;
        if (s->ssl) {
            ERR_clear_error();
            int n = SSL_read(s->ssl, s->in + s->in_len, (int)room);
            if (n <= 0) {
                int e = SSL_get_error(s->ssl, n);
                if (e == SSL_ERROR_WANT_READ)
                    return true;
                if (e == SSL_ERROR_WANT_WRITE) {
                    s->ssl_want_write = true;
                    return true;
                }
                return false;
            }
            r = n;
        } else {
            r = recv(s->fd, s->in + s->in_len, room, 0);
            if (r == 0)
                return false;
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                return errno == EAGAIN || errno == EWOULDBLOCK;
            }
        }
        s->in_len += (size_t)r;
        s->last_activity = ev_now_ms(s->l->a->loop);
        if (!s->ssl)
            break; /* level-triggered: epoll tells us when there is more */
    }
    return true;
}

static void close_session(struct session *s)
{
    if (s->waiting_store) {
        /* Its message is in the batch: the commit stores it, then frees the session. */
        if (s->fd >= 0) {
            ev_io_set(s->l->a->loop, s->fd, 0, NULL, NULL);
            if (s->ssl) {
                SSL_free(s->ssl);
                s->ssl = NULL;
            }
            close(s->fd);
            s->fd = -1;
        }
        s->gone = true;
        return;
    }
    session_free(s);
}

static void handshake(struct session *s)
{
    struct agent *a = s->l->a;
    ERR_clear_error();
    int r = SSL_accept(s->ssl);
    if (r == 1) {
        s->handshaking = false;
        s->tls = true;
        s->last_activity = ev_now_ms(a->loop);
        agent_log(a, MAILLOG_INFO, "ICID %lld TLS success protocol %s cipher %s",
                  (long long)s->icid, SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl));
        /* RFC 3207: the client starts over with EHLO. */
        reset_transaction(s);
        s->greeted = false;
        s->esmtp = false;
        s->helo[0] = '\0';
        return;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        s->ssl_want_write = e == SSL_ERROR_WANT_WRITE;
        return;
    }
    unsigned long code = ERR_peek_error();
    char why[256];
    if (code)
        ERR_error_string_n(code, why, sizeof why);
    else
        snprintf(why, sizeof why, "connection closed during the handshake");
    ERR_clear_error();
    agent_log(a, MAILLOG_INFO, "ICID %lld TLS failed: %s", (long long)s->icid, why);
    s->handshaking = false;
    s->closing = true;
    s->out_off = 0;
    sb_reset(&s->out);
    SSL_free(s->ssl);
    s->ssl = NULL;
}

static void start_tls(struct session *s)
{
    SSL_CTX *ctx = tls_ctx_for(s->l, s->snap);
    s->ssl = ctx ? SSL_new(ctx) : NULL;
    if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1) {
        agent_log(s->l->a, MAILLOG_WARNING, "ICID %lld TLS failed: cannot start TLS",
                  (long long)s->icid);
        if (s->ssl)
            SSL_free(s->ssl);
        s->ssl = NULL;
        s->handshaking = false;
        s->closing = true;
        return;
    }
    handshake(s);
}

/* Reads, parses, answers, until the session has to wait. Frees s when it ends. */
static void session_pump(struct session *s)
{
    for (int round = 0; round < 64; round++) {
        if (s->handshaking) {
            /* The 220 to STARTTLS must be out before the handshake starts. */
            if (!s->ssl) {
                if (!flush_out(s)) {
                    close_session(s);
                    return;
                }
                if (out_pending(s) > 0)
                    break;
                start_tls(s);
            } else {
                handshake(s);
            }
            if (s->handshaking)
                break;
            continue;
        }
        process_input(s);
        if (!flush_out(s)) {
            close_session(s);
            return;
        }
        if (s->closing) {
            if (out_pending(s) == 0) {
                close_session(s);
                return;
            }
            break;
        }
        if (s->handshaking)
            continue;
        if (s->waiting_store || out_pending(s) >= OUT_BACKLOG)
            break;
        /* TLS may hold decrypted bytes epoll cannot see: read while there is room. */
        size_t before = s->in_len;
        if (!s->ssl || SSL_pending(s->ssl) == 0)
            break;
        if (!read_some(s)) {
            close_session(s);
            return;
        }
        if (s->in_len == before)
            break;
    }
    session_update_events(s);
}

static void on_session(struct ev_loop *loop, int fd, unsigned revents, void *arg)
{
    (void)loop;
    (void)fd;
    struct session *s = arg;
    if (s->handshaking && s->ssl) {
        session_pump(s);
        return;
    }
    if ((revents & EV_WRITE) && !flush_out(s)) {
        close_session(s);
        return;
    }
    if ((revents & EV_READ) && !s->closing && !s->waiting_store && out_pending(s) < OUT_BACKLOG) {
        if (!read_some(s)) {
            close_session(s);
            return;
        }
    }
    session_pump(s);
}

static void session_update_events(struct session *s)
{
    if (s->fd < 0)
        return;
    unsigned ev = 0;
    if (s->handshaking && s->ssl) {
        ev = s->ssl_want_write ? EV_WRITE : EV_READ;
    } else {
        if (!s->closing && !s->waiting_store && out_pending(s) < OUT_BACKLOG &&
            s->in_len < sizeof s->in)
            ev |= EV_READ;
        if (out_pending(s) > 0 || s->ssl_want_write)
            ev |= EV_WRITE;
    }
    if (ev != s->events) {
        if (ev_io_set(s->l->a->loop, s->fd, ev, on_session, s) == 0)
            s->events = ev;
    }
}

static void drain_check(struct listener *l);

static void session_free(struct session *s)
{
    struct listener *l = s->l;
    struct agent *a = l->a;
    if (s->fd >= 0) {
        ev_io_set(a->loop, s->fd, 0, NULL, NULL);
        if (s->ssl) {
            SSL_shutdown(s->ssl);
            SSL_free(s->ssl);
            /* The thread's OpenSSL error queue is shared with delivery's connections. */
            ERR_clear_error();
        }
        close(s->fd);
    }
    agent_log(a, MAILLOG_INFO, "ICID %lld close", (long long)s->icid);
    reset_transaction(s);
    free(s->rcpt);
    sb_free(&s->out);
    cfg_snapshot_unref(s->snap);
    if (s->prev)
        s->prev->next = s->next;
    else
        l->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    l->active--;
    a->stats.conn_active = (uint64_t)l->active;
    free(s);
    drain_check(l);
}

/* ---- accepting ---- */

static void addr_text(const struct sockaddr_storage *ss, char *ip, size_t iplen, int *port)
{
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
            inet_ntop(AF_INET, v6->sin6_addr.s6_addr + 12, ip, (socklen_t)iplen);
        else
            inet_ntop(AF_INET6, &v6->sin6_addr, ip, (socklen_t)iplen);
        *port = ntohs(v6->sin6_port);
    } else {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &v4->sin_addr, ip, (socklen_t)iplen);
        *port = ntohs(v4->sin_port);
    }
}

static void refuse(int fd, const char *text)
{
    ssize_t w = send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w; /* best effort: the client is turned away either way */
    close(fd);
}

static void on_accept(struct ev_loop *loop, int lfd, unsigned revents, void *arg);

static void accept_resume(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)t;
    struct listener *l = arg;
    l->pause_timer = NULL;
    for (size_t i = 0; i < l->n_socks; i++)
        ev_io_set(loop, l->socks[i].fd, EV_READ, on_accept, &l->socks[i]);
}

/* Out of file descriptors or memory: a level-triggered listening socket would call us again at
 * once, for ever. Stop accepting for a second (clients wait in the backlog). */
static void accept_pause(struct listener *l, const char *why)
{
    if (l->pause_timer)
        return;
    agent_log(l->a, MAILLOG_WARNING, "Not accepting connections for 1 second: %s", why);
    for (size_t i = 0; i < l->n_socks; i++)
        ev_io_set(l->a->loop, l->socks[i].fd, 0, NULL, NULL);
    l->pause_timer = ev_timer_add(l->a->loop, 1000, accept_resume, l);
}

static void on_accept(struct ev_loop *loop, int lfd, unsigned revents, void *arg)
{
    (void)revents;
    struct lsock *ls = arg;
    struct listener *l = ls->l;
    struct agent *a = l->a;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(l, strerror(errno));
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                     errno != ECONNABORTED)
                agent_log(a, MAILLOG_WARNING, "accept on %s: %s", ls->text, strerror(errno));
            return;
        }
        char peer_ip[INET6_ADDRSTRLEN];
        int peer_port;
        addr_text(&peer, peer_ip, sizeof peer_ip, &peer_port);
        if (l->active >= a->opt.max_conn) {
            a->stats.conn_refused++;
            agent_log(a, MAILLOG_WARNING,
                      "Connection from %s refused: %ld connections open (--max-conn)", peer_ip,
                      l->active);
            char text[300];
            snprintf(text, sizeof text, "421 4.7.0 %s Error: too many connections\r\n",
                     agent_hostname(a));
            refuse(fd, text);
            continue;
        }
        int64_t icid = agent_next_id(a, DB_QUEUE_ICID);
        if (!icid) {
            refuse(fd, "421 4.3.0 Error: queue unavailable, try again later\r\n");
            continue;
        }
        struct session *s = xcalloc(1, sizeof *s);
        s->l = l;
        s->fd = fd;
        s->icid = icid;
        s->snap = agent_snapshot(a);
        snprintf(s->peer_ip, sizeof s->peer_ip, "%s", peer_ip);
        s->relay_ok = agent_relay_allowed(a, (struct sockaddr *)&peer);
        struct sockaddr_storage local;
        socklen_t llen = sizeof local;
        if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
            addr_text(&local, s->local_ip, sizeof s->local_ip, &s->local_port);
        s->last_activity = ev_now_ms(loop);
        s->next = l->sessions;
        if (l->sessions)
            l->sessions->prev = s;
        l->sessions = s;
        l->active++;
        a->stats.conn_total++;
        a->stats.conn_active = (uint64_t)l->active;
        agent_log(a, MAILLOG_INFO, "New SMTP ICID %lld interface %s address %s port %d",
                  (long long)icid, s->local_ip, peer_ip, s->local_port);
        reply(s, "220 %s ESMTP stsgated", host_of(s));
        session_pump(s);
    }
}

/* Once a second: idle clients are timed out, and a drain past its deadline is forced. */
static void sweep(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)t;
    struct listener *l = arg;
    uint64_t now = ev_now_ms(loop);
    bool force = l->draining && now >= l->drain_deadline;
    struct session *next;
    for (struct session *s = l->sessions; s; s = next) {
        next = s->next;
        if (s->gone || s->waiting_store)
            continue;
        bool idle = now - s->last_activity > (uint64_t)IDLE_TIMEOUT_S * 1000;
        if (!idle && !force)
            continue;
        if (s->closing && !force)
            continue;
        if (idle)
            agent_log(l->a, MAILLOG_INFO, "ICID %lld timed out", (long long)s->icid);
        if (!s->handshaking && !s->ssl_want_write) {
            reply(s,
                  idle ? "421 4.4.2 %s Error: timeout exceeded"
                       : "421 4.3.2 %s Service shutting down, closing transmission channel",
                  host_of(s));
            flush_out(s);
        }
        session_free(s);
    }
    l->sweep = ev_timer_add(loop, 1000, sweep, l);
}

static int bind_one(struct listener *l, const struct agent_listen *al, char *err, size_t errlen)
{
    int fd = socket(al->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "Cannot listen on %s: %s", al->text, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (al->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&al->addr, al->addrlen) != 0 || listen(fd, 511) != 0) {
        snprintf(err, errlen, "Cannot listen on %s: %s", al->text, strerror(errno));
        close(fd);
        return -1;
    }
    struct lsock *ls = &l->socks[l->n_socks];
    ls->l = l;
    ls->fd = fd;
    snprintf(ls->text, sizeof ls->text, "%s", al->text);
    if (ev_io_set(l->a->loop, fd, EV_READ, on_accept, ls) != 0) {
        snprintf(err, errlen, "Cannot watch %s: %s", al->text, strerror(errno));
        close(fd);
        return -1;
    }
    l->n_socks++;
    return 0;
}

static void close_listening(struct listener *l)
{
    ev_timer_cancel(l->a->loop, l->pause_timer);
    l->pause_timer = NULL;
    for (size_t i = 0; i < l->n_socks; i++) {
        ev_io_set(l->a->loop, l->socks[i].fd, 0, NULL, NULL);
        close(l->socks[i].fd);
    }
    l->n_socks = 0;
}

struct listener *listener_new(struct agent *a, char *err, size_t errlen)
{
    struct listener *l = xcalloc(1, sizeof *l);
    l->a = a;
    l->tls_version = -1;
    for (size_t i = 0; i < a->opt.n_listen; i++) {
        if (bind_one(l, &a->opt.listen[i], err, errlen) != 0) {
            close_listening(l);
            free(l);
            return NULL;
        }
        agent_log(a, MAILLOG_INFO, "Listening for SMTP on %s", a->opt.listen[i].text);
    }
    l->sweep = ev_timer_add(a->loop, 1000, sweep, l);
    /* Build the TLS context now, so a broken certificate shows in the log at start. */
    tls_ctx_for(l, a->snap);
    return l;
}

static void drain_fire(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct listener *l = arg;
    l->drain_timer = NULL;
    if (l->drain_done && !l->sessions && l->n_pending == 0) {
        void (*done)(void *) = l->drain_done;
        l->drain_done = NULL;
        done(l->drain_arg);
    }
}

static void drain_check(struct listener *l)
{
    /* Called from deep inside session code: report from a fresh callback. */
    if (l->draining && l->drain_done && !l->sessions && !l->drain_timer)
        l->drain_timer = ev_timer_add(l->a->loop, 0, drain_fire, l);
}

void listener_drain(struct listener *l, void (*done)(void *arg), void *arg)
{
    struct agent *a = l->a;
    l->draining = true;
    l->drain_done = done;
    l->drain_arg = arg;
    l->drain_deadline = ev_now_ms(a->loop) + (uint64_t)DRAIN_TIMEOUT_S * 1000;
    close_listening(l);
    struct session *next;
    for (struct session *s = l->sessions; s; s = next) {
        next = s->next;
        if (s->gone || s->waiting_store || s->has_mail || s->closing)
            continue; /* a transaction in progress may finish */
        if (s->handshaking) {
            session_free(s);
            continue;
        }
        reply(s, "421 4.3.2 %s Service shutting down, closing transmission channel", host_of(s));
        s->closing = true;
        session_pump(s);
    }
    drain_check(l);
}

void listener_status(struct listener *l, struct strbuf *out)
{
    struct agent *a = l->a;
    for (size_t i = 0; i < a->opt.n_listen; i++)
        sb_printf(out, "%s%s", i ? ", " : "", a->opt.listen[i].text);
}

void listener_free(struct listener *l)
{
    if (!l)
        return;
    struct agent *a = l->a;
    /* Messages still waiting for their commit are stored: their clients may get no answer, but
     * a message we were given is never dropped. */
    if (l->commit_timer) {
        ev_timer_cancel(a->loop, l->commit_timer);
        l->commit_timer = NULL;
    }
    commit_now(a->loop, NULL, l);
    l->drain_done = NULL;
    while (l->sessions)
        session_free(l->sessions);
    close_listening(l);
    ev_timer_cancel(a->loop, l->sweep);
    ev_timer_cancel(a->loop, l->drain_timer);
    SSL_CTX_free(l->tls_ctx);
    free(l->pending);
    free(l);
}
