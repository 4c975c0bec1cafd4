/* smtp_client.c - the asynchronous SMTP client (see smtp_client.h).
 *
 * A state machine driven by one fd watcher and one step timer. Replies are collected line by line
 * until the last line of a multi-line reply, and each one moves the stage on. A transaction goes
 * out as one group when the server offers PIPELINING (RFC 2920): [RSET,] MAIL, every RCPT and
 * DATA in one write, the replies then read in the same order, so each recipient still gets its
 * own reply; without it, one command per reply. RSET goes first only when the previous
 * transaction was left open (MAIL accepted, no final dot). The TLS layer is OpenSSL on the same
 * non-blocking fd: WANT_READ / WANT_WRITE decide which events the watcher asks for. */
#include "smtp_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cfg_snapshot.h"
#include "strbuf.h"
#include "tlscert.h"

#define IN_MAX 8192 /* longest reply line we keep (RFC 5321: 512) and then some */

struct smtpc {
    struct ev_loop *loop;
    smtpc_cb cb;
    void *arg;
    int fd;
    SSL *ssl;
    SSL_CTX *ctx;
    struct ev_timer *timer;
    struct smtpc_params p;
    char *helo, *sni, *dane_base, *dane_host;
    struct smtpc_info info;
    struct strbuf out;
    size_t out_pos;
    char in[IN_MAX];
    size_t in_len;
    struct smtpc_reply cur; /* the reply being read */
    bool connecting;
    bool handshaking;
    bool ssl_want_write;
    bool quitting;
    bool dead;
    int in_cb;
    struct smtpc_msg *msg;
    size_t rcpt_i;
    char addr[46];
    int connect_errno;   /* connect() failed at once */
    unsigned reply_line; /* lines of the current reply read so far */
    bool kw_starttls;    /* the current EHLO reply lists STARTTLS */
    bool pipelined;      /* this transaction went out as one group: replies only move the stage */
    bool mail_failed;    /* MAIL was refused: the replies after it change no result */
    bool empty_data;     /* DATA got 354 with no recipient accepted: "." alone was sent */
    bool open_txn;       /* MAIL was accepted and no final dot ended the transaction: the next
                            message starts with RSET (RFC 5321 §4.1.1.5) */
};

static const char *stage_names[] = {
    [SMTPC_ST_CONNECT] = "connect",   [SMTPC_ST_GREETING] = "greeting",
    [SMTPC_ST_EHLO] = "EHLO",         [SMTPC_ST_HELO] = "HELO",
    [SMTPC_ST_STARTTLS] = "STARTTLS", [SMTPC_ST_HANDSHAKE] = "TLS handshake",
    [SMTPC_ST_EHLO_TLS] = "EHLO",     [SMTPC_ST_IDLE] = "idle",
    [SMTPC_ST_RSET] = "RSET",         [SMTPC_ST_MAIL] = "MAIL FROM",
    [SMTPC_ST_RCPT] = "RCPT TO",      [SMTPC_ST_DATA] = "DATA",
    [SMTPC_ST_BODY] = "end of data",  [SMTPC_ST_QUIT] = "QUIT",
    [SMTPC_ST_CLOSED] = "closed",
};

const char *smtpc_stage_name(enum smtpc_stage s)
{
    return (size_t)s < sizeof stage_names / sizeof stage_names[0] ? stage_names[s] : "?";
}

const struct smtpc_info *smtpc_info(const struct smtpc *c)
{
    return &c->info;
}

void smtpc_set_arg(struct smtpc *c, void *arg)
{
    c->arg = arg;
}

X509 *smtpc_peer_cert(const struct smtpc *c)
{
    if (!c->ssl || !c->info.tls.established)
        return NULL;
    return SSL_get0_peer_certificate(c->ssl);
}

STACK_OF(X509) * smtpc_peer_chain(const struct smtpc *c)
{
    if (!c->ssl || !c->info.tls.established)
        return NULL;
    return SSL_get_peer_cert_chain(c->ssl);
}

/* ---- TLS context ---- */

static void ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[200] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
    ERR_clear_error();
}

static bool add_pem_cas(X509_STORE *store, const char *pem, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        return false;
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        X509_STORE_add_cert(store, x);
        X509_free(x);
        n++;
    }
    ERR_clear_error(); /* the end of the PEM text reads as an error */
    BIO_free(bio);
    if (n == 0) {
        snprintf(err, errlen, "no certificate in the custom CA list");
        return false;
    }
    return true;
}

SSL_CTX *smtpc_ctx_new(const struct smtpc_ctx_params *p, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_err(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    /* §2: TLS 1.2 is the floor, whatever openssl.cnf says. */
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) || SSL_CTX_dane_enable(ctx) <= 0) {
        ssl_err(err, errlen, "TLS settings");
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* Verification is evaluated after the handshake (tlspolicy.h): a failed check must not abort
     * the handshake, since Preferred - Verify delivers anyway and logs it. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (p->system_cas && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ssl_err(err, errlen, "cannot load the system CA list");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (p->ca_pem && *p->ca_pem &&
        !add_pem_cas(SSL_CTX_get_cert_store(ctx), p->ca_pem, err, errlen)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (p->cert_pem && *p->cert_pem && p->key_pem && *p->key_pem) {
        BIO *cb = BIO_new_mem_buf(p->cert_pem, -1);
        BIO *kb = BIO_new_mem_buf(p->key_pem, -1);
        X509 *cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
        EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
        bool ok = cert && key && SSL_CTX_use_certificate(ctx, cert) == 1 &&
                  SSL_CTX_use_PrivateKey(ctx, key) == 1;
        /* the rest of the PEM: the chain to send */
        X509 *extra;
        while (ok && cb && (extra = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL)
            if (SSL_CTX_add0_chain_cert(ctx, extra) != 1)
                X509_free(extra);
        X509_free(cert);
        EVP_PKEY_free(key);
        BIO_free(cb);
        BIO_free(kb);
        if (!ok) {
            ssl_err(err, errlen, "cannot use the outbound certificate");
            SSL_CTX_free(ctx);
            return NULL;
        }
        ERR_clear_error();
    }
    return ctx;
}

SSL_CTX *smtpc_ctx_from_config(const struct cfg_snapshot *s, char *err, size_t errlen)
{
    struct cert_ca_cfg ca;
    cert_ca_decode(cfg_snapshot_unit(s, CFG_KIND_CERT, CFG_UNIT_CA), &ca);
    struct cert_pair pair = {0};
    const struct cfg_setup *setup = cfg_snapshot_setup(s);
    const char *body = setup && setup->certificate[0]
                           ? cfg_snapshot_unit(s, CFG_KIND_CERT, setup->certificate)
                           : NULL;
    bool have_cert = body && cert_profile_decode(body, &pair) && pair.key && pair.key[0];
    struct strbuf full = STRBUF_INIT;
    if (have_cert) {
        sb_append(&full, pair.cert ? pair.cert : "");
        sb_append(&full, pair.chain ? pair.chain : "");
    }
    struct smtpc_ctx_params p = {
        .system_cas = ca.system_enabled,
        .ca_pem = ca.custom_enabled ? ca.custom : NULL,
        .cert_pem = have_cert ? sb_str(&full) : NULL,
        .key_pem = have_cert ? pair.key : NULL,
    };
    SSL_CTX *ctx = smtpc_ctx_new(&p, err, errlen);
    sb_free(&full);
    if (body)
        cert_pair_free(&pair);
    cert_ca_free(&ca);
    return ctx;
}

/* ---- plumbing ---- */

static void io_cb(struct ev_loop *loop, int fd, unsigned revents, void *arg);

static void watch(struct smtpc *c)
{
    if (c->fd < 0)
        return;
    unsigned ev = EV_READ;
    if (c->ssl_want_write || c->out_pos < c->out.len)
        ev |= EV_WRITE;
    if (c->connecting)
        ev = EV_WRITE;
    ev_io_set(c->loop, c->fd, ev, io_cb, c);
}

static void close_fd(struct smtpc *c)
{
    if (c->timer) {
        ev_timer_cancel(c->loop, c->timer);
        c->timer = NULL;
    }
    if (c->fd >= 0) {
        ev_io_set(c->loop, c->fd, 0, NULL, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
}

static void really_free(struct smtpc *c)
{
    close_fd(c);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    sb_free(&c->out);
    free(c->helo);
    free(c->sni);
    free(c->dane_base);
    free(c->dane_host);
    free(c);
}

void smtpc_free(struct smtpc *c)
{
    if (!c)
        return;
    if (c->in_cb) {
        c->dead = true;
        close_fd(c);
        return;
    }
    really_free(c);
}

/* Calls the callback; false when the connection is gone afterwards (the caller returns). */
static bool emit(struct smtpc *c, enum smtpc_event ev)
{
    c->in_cb++;
    c->cb(c, ev, c->arg);
    c->in_cb--;
    if (c->dead) {
        if (c->in_cb == 0)
            really_free(c);
        return false;
    }
    return true;
}

static void timeout_cb(struct ev_loop *loop, struct ev_timer *t, void *arg);

static unsigned step_timeout(const struct smtpc *c, enum smtpc_stage st)
{
    const struct smtpc_timeouts *t = &c->p.timeouts;
    unsigned v = 0, def = 60000;
    switch (st) {
    case SMTPC_ST_CONNECT:
        v = t->connect, def = 30000;
        break;
    case SMTPC_ST_GREETING:
        v = t->greeting, def = 120000;
        break;
    case SMTPC_ST_EHLO:
    case SMTPC_ST_HELO:
    case SMTPC_ST_EHLO_TLS:
        v = t->ehlo, def = 120000;
        break;
    case SMTPC_ST_STARTTLS:
        v = t->starttls, def = 120000;
        break;
    case SMTPC_ST_HANDSHAKE:
        v = t->handshake, def = 60000;
        break;
    case SMTPC_ST_MAIL:
        v = t->mail, def = 120000;
        break;
    case SMTPC_ST_RCPT:
        v = t->rcpt, def = 120000;
        break;
    case SMTPC_ST_DATA:
        v = t->data, def = 120000;
        break;
    case SMTPC_ST_BODY:
        v = t->body, def = 600000;
        break;
    case SMTPC_ST_RSET:
        v = t->rset, def = 30000;
        break;
    case SMTPC_ST_QUIT:
        v = t->quit, def = 10000;
        break;
    default:
        return 0; /* idle: no timer, the caller decides how long to keep the connection */
    }
    return v ? v : def;
}

static void set_stage(struct smtpc *c, enum smtpc_stage st)
{
    c->info.stage = st;
    if (c->timer) {
        ev_timer_cancel(c->loop, c->timer);
        c->timer = NULL;
    }
    unsigned ms = step_timeout(c, st);
    if (ms)
        c->timer = ev_timer_add(c->loop, ms, timeout_cb, c);
}

/* The connection is unusable: report it once. */
static void fail(struct smtpc *c, enum smtpc_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct smtpc *c, enum smtpc_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->info.detail, sizeof c->info.detail, fmt, ap);
    va_end(ap);
    c->info.error = e;
    close_fd(c);
    if (c->quitting) {
        /* a failure while saying goodbye is still a goodbye */
        c->info.stage = SMTPC_ST_CLOSED;
        emit(c, SMTPC_CLOSED);
        return;
    }
    emit(c, SMTPC_FAILED);
}

static void timeout_cb(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct smtpc *c = arg;
    c->timer = NULL;
    fail(c, SMTPC_ERR_TIMEOUT, "timeout during %s", smtpc_stage_name(c->info.stage));
}

static void send_line(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_line(struct smtpc *c, const char *fmt, ...)
{
    if (c->out_pos == c->out.len) {
        sb_reset(&c->out);
        c->out_pos = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&c->out, fmt, ap);
    va_end(ap);
    sb_append(&c->out, "\r\n");
}

/* ---- the protocol ---- */

static void parse_ehlo_line(struct smtpc *c, const char *kw)
{
    if (strncasecmp(kw, "STARTTLS", 8) == 0 && (kw[8] == '\0' || kw[8] == ' '))
        c->kw_starttls = true;
    else if (strncasecmp(kw, "SIZE", 4) == 0 && (kw[4] == '\0' || kw[4] == ' ')) {
        c->info.size_offered = true;
        c->info.size_max = kw[4] ? strtoull(kw + 5, NULL, 10) : 0;
    } else if (strncasecmp(kw, "8BITMIME", 8) == 0) {
        c->info.eightbit = true;
    } else if (strncasecmp(kw, "PIPELINING", 10) == 0 && (kw[10] == '\0' || kw[10] == ' ')) {
        c->info.pipelining = true;
    }
}

static void start_tls(struct smtpc *c);
static void send_mail_from(struct smtpc *c);
static void go_idle(struct smtpc *c, enum smtpc_event ev);
static void send_rcpt_or_data(struct smtpc *c);

static void send_ehlo(struct smtpc *c, enum smtpc_stage st)
{
    /* the capabilities after TLS replace those before it */
    c->info.size_offered = c->info.eightbit = c->info.pipelining = false;
    c->info.size_max = 0;
    c->kw_starttls = false;
    send_line(c, "%s %s", st == SMTPC_ST_HELO ? "HELO" : "EHLO", c->helo);
    set_stage(c, st);
}

/* The body as it goes on the wire: CRLF line ends, dot-stuffed, ending in CRLF.CRLF. */
static void queue_body(struct smtpc *c, const char *d, size_t len)
{
    if (c->out_pos == c->out.len) {
        sb_reset(&c->out);
        c->out_pos = 0;
    }
    size_t i = 0;
    bool bol = true;
    while (i < len) {
        size_t e = i;
        while (e < len && d[e] != '\r' && d[e] != '\n')
            e++;
        if (bol && e > i && d[i] == '.')
            sb_append_len(&c->out, ".", 1);
        sb_append_len(&c->out, d + i, e - i);
        if (e >= len) {
            bol = false;
            i = e;
            break;
        }
        sb_append_len(&c->out, "\r\n", 2);
        bol = true;
        if (d[e] == '\r' && e + 1 < len && d[e + 1] == '\n')
            e++;
        i = e + 1;
    }
    if (!bol)
        sb_append_len(&c->out, "\r\n", 2);
    sb_append_len(&c->out, ".\r\n", 3);
}

static void on_reply(struct smtpc *c)
{
    struct smtpc_reply *r = &c->cur;
    c->info.last = *r;
    int cls = r->code / 100;
    switch (c->info.stage) {
    case SMTPC_ST_GREETING:
        c->info.greeting = *r;
        if (cls != 2) {
            fail(c, SMTPC_ERR_REPLY, "greeting: %d %s", r->code, r->text);
            return;
        }
        send_ehlo(c, SMTPC_ST_EHLO);
        break;
    case SMTPC_ST_EHLO:
        if (cls != 2) {
            send_ehlo(c, SMTPC_ST_HELO);
            break;
        }
        c->info.esmtp = true;
        c->info.tls.offered = c->kw_starttls;
        if (c->p.starttls && c->info.tls.offered) {
            c->info.tls.attempted = true;
            send_line(c, "STARTTLS");
            set_stage(c, SMTPC_ST_STARTTLS);
            break;
        }
        go_idle(c, SMTPC_READY);
        return;
    case SMTPC_ST_HELO:
        if (cls != 2) {
            fail(c, SMTPC_ERR_REPLY, "HELO: %d %s", r->code, r->text);
            return;
        }
        go_idle(c, SMTPC_READY);
        return;
    case SMTPC_ST_STARTTLS:
        if (r->code != 220) {
            /* Before a 220 nothing changed: the session goes on in the clear (§2). */
            c->info.tls.refused = true;
            snprintf(c->info.tls.error, sizeof c->info.tls.error, "STARTTLS refused: %d %.200s",
                     r->code, r->text);
            go_idle(c, SMTPC_READY);
            return;
        }
        start_tls(c);
        return;
    case SMTPC_ST_EHLO_TLS:
        if (cls != 2) {
            fail(c, SMTPC_ERR_REPLY, "EHLO after STARTTLS: %d %s", r->code, r->text);
            return;
        }
        go_idle(c, SMTPC_READY);
        return;
    case SMTPC_ST_RSET:
        if (cls != 2) {
            fail(c, SMTPC_ERR_REPLY, "RSET: %d %s", r->code, r->text);
            return;
        }
        if (c->pipelined)
            set_stage(c, SMTPC_ST_MAIL);
        else
            send_mail_from(c);
        break;
    case SMTPC_ST_MAIL:
        c->msg->mail = *r;
        c->rcpt_i = 0;
        c->open_txn = cls == 2;
        if (cls != 2) {
            for (size_t i = 0; i < c->msg->nrcpt; i++)
                c->msg->rcpt_reply[i] = *r;
            c->msg->data_reply = *r;
            if (!c->pipelined) {
                go_idle(c, SMTPC_SENT);
                return;
            }
            c->mail_failed = true; /* the RCPT and DATA replies still come */
        }
        send_rcpt_or_data(c);
        break;
    case SMTPC_ST_RCPT:
        if (!c->mail_failed) {
            c->msg->rcpt_reply[c->rcpt_i] = *r;
            if (cls == 2)
                c->msg->accepted++;
        }
        c->rcpt_i++;
        send_rcpt_or_data(c);
        break;
    case SMTPC_ST_DATA:
        if (r->code == 354 && c->msg->accepted > 0) {
            queue_body(c, c->msg->data, c->msg->len);
            set_stage(c, SMTPC_ST_BODY);
            break;
        }
        if (r->code == 354) {
            /* a pipelined DATA accepted with no recipient: end it at once (RFC 2920 §3.1) */
            c->empty_data = true;
            send_line(c, ".");
            set_stage(c, SMTPC_ST_BODY);
            break;
        }
        if (c->msg->accepted > 0)
            c->msg->data_reply = *r;
        else if (!c->mail_failed)
            c->msg->data_reply = c->msg->rcpt_reply[c->msg->nrcpt - 1];
        go_idle(c, SMTPC_SENT);
        return;
    case SMTPC_ST_BODY:
        c->open_txn = false; /* the reply to the final dot ends the transaction, whatever it says */
        if (!c->empty_data)
            c->msg->data_reply = *r;
        else if (!c->mail_failed)
            c->msg->data_reply = c->msg->rcpt_reply[c->msg->nrcpt - 1];
        go_idle(c, SMTPC_SENT);
        return;
    case SMTPC_ST_QUIT:
        close_fd(c);
        c->info.stage = SMTPC_ST_CLOSED;
        emit(c, SMTPC_CLOSED);
        return;
    default:
        /* a reply nobody asked for (idle): the server is confused; drop it */
        break;
    }
}

static void send_mail_from(struct smtpc *c)
{
    const struct smtpc_msg *m = c->msg;
    bool eight = false;
    for (size_t i = 0; i < m->len && !eight; i++)
        eight = (unsigned char)m->data[i] >= 0x80;
    char extra[64] = "";
    if (c->info.size_offered)
        snprintf(extra, sizeof extra, " SIZE=%zu", m->len);
    if (eight && c->info.eightbit)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " BODY=8BITMIME");
    send_line(c, "MAIL FROM:<%s>%s", m->from, extra);
    set_stage(c, SMTPC_ST_MAIL);
}

/* The next step after MAIL or a RCPT reply: in a pipelined group the command is already sent and
 * only the stage moves on. */
static void send_rcpt_or_data(struct smtpc *c)
{
    if (c->rcpt_i < c->msg->nrcpt) {
        if (!c->pipelined)
            send_line(c, "RCPT TO:<%s>", c->msg->rcpt[c->rcpt_i]);
        set_stage(c, SMTPC_ST_RCPT);
        return;
    }
    if (c->pipelined) {
        set_stage(c, SMTPC_ST_DATA);
        return;
    }
    if (c->msg->accepted == 0) {
        /* no recipient: no DATA; the replies say why */
        c->msg->data_reply = c->msg->rcpt_reply[c->msg->nrcpt ? c->msg->nrcpt - 1 : 0];
        go_idle(c, SMTPC_SENT);
        return;
    }
    send_line(c, "DATA");
    set_stage(c, SMTPC_ST_DATA);
}

static void go_idle(struct smtpc *c, enum smtpc_event ev)
{
    set_stage(c, SMTPC_ST_IDLE);
    if (ev == SMTPC_SENT) {
        c->info.messages++;
        c->msg = NULL;
    }
    emit(c, ev);
}

/* Parses reply lines from the input buffer; calls on_reply for each complete reply. */
static void parse_input(struct smtpc *c)
{
    size_t start = 0;
    while (!c->dead && c->fd >= 0) {
        char *nl = memchr(c->in + start, '\n', c->in_len - start);
        if (!nl)
            break;
        size_t l = (size_t)(nl - (c->in + start));
        char line[IN_MAX];
        memcpy(line, c->in + start, l);
        if (l > 0 && line[l - 1] == '\r')
            l--;
        line[l] = '\0';
        start += (size_t)(nl - (c->in + start)) + 1;
        if (l < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
            line[2] < '0' || line[2] > '9' || (l > 3 && line[3] != ' ' && line[3] != '-')) {
            fail(c, SMTPC_ERR_PROTO, "malformed reply during %s: %.60s",
                 smtpc_stage_name(c->info.stage), line);
            return;
        }
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        bool more = l > 3 && line[3] == '-';
        const char *text = l > 4 ? line + 4 : "";
        /* the first line of an EHLO reply is the server's name, the others are keywords */
        if ((c->info.stage == SMTPC_ST_EHLO || c->info.stage == SMTPC_ST_EHLO_TLS) &&
            c->reply_line > 0 && code / 100 == 2)
            parse_ehlo_line(c, text);
        c->reply_line = more ? c->reply_line + 1 : 0;
        if (more)
            continue;
        c->cur.code = code;
        snprintf(c->cur.text, sizeof c->cur.text, "%.*s", (int)(sizeof c->cur.text - 1), text);
        c->cur.enh[0] = '\0';
        unsigned a, b, d;
        int n = 0;
        if (sscanf(text, "%1u.%3u.%3u%n", &a, &b, &d, &n) == 3 &&
            (text[n] == ' ' || text[n] == '\0') && a == (unsigned)(code / 100))
            snprintf(c->cur.enh, sizeof c->cur.enh, "%u.%u.%u", a, b, d);
        on_reply(c);
        if (c->dead || c->fd < 0)
            return;
        /* after STARTTLS's 220 the rest of the buffer belongs to the TLS layer (and a server
         * that sent more in the clear is attacking: RFC 3207 says discard it) */
        if (c->handshaking) {
            c->in_len = 0;
            return;
        }
    }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    if (c->in_len == sizeof c->in)
        fail(c, SMTPC_ERR_PROTO, "reply line too long during %s", smtpc_stage_name(c->info.stage));
}

/* ---- TLS ---- */

static void tls_done(struct smtpc *c)
{
    struct smtpc_tls *t = &c->info.tls;
    c->handshaking = false;
    t->established = true;
    snprintf(t->protocol, sizeof t->protocol, "%s", SSL_get_version(c->ssl));
    snprintf(t->cipher, sizeof t->cipher, "%s", SSL_get_cipher_name(c->ssl));
    t->verify_result = SSL_get_verify_result(c->ssl);
    snprintf(t->verify_error, sizeof t->verify_error, "%s",
             X509_verify_cert_error_string(t->verify_result));
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(c->ssl);
    t->chain_len = chain ? sk_X509_num(chain) : 0;
    if (t->dane_used) {
        uint8_t u, s, m;
        if (SSL_get0_dane_authority(c->ssl, NULL, NULL) >= 0 &&
            SSL_get0_dane_tlsa(c->ssl, &u, &s, &m, NULL, NULL) >= 0) {
            t->dane_ok = true;
            snprintf(t->dane_match, sizeof t->dane_match, "%u %u %u", u, s, m);
        }
    }
    send_ehlo(c, SMTPC_ST_EHLO_TLS);
}

static void do_handshake(struct smtpc *c)
{
    ERR_clear_error();
    int rc = SSL_connect(c->ssl);
    c->ssl_want_write = false;
    if (rc == 1) {
        tls_done(c);
        return;
    }
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return;
    if (e == SSL_ERROR_WANT_WRITE) {
        c->ssl_want_write = true;
        return;
    }
    struct smtpc_tls *t = &c->info.tls;
    t->after_220 = true;
    unsigned long le = ERR_get_error();
    if (le) {
        const char *reason = ERR_reason_error_string(le);
        snprintf(t->error, sizeof t->error, "%s", reason ? reason : "handshake failure");
    } else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
        snprintf(t->error, sizeof t->error, "connection closed during the handshake");
    } else {
        snprintf(t->error, sizeof t->error, "handshake failure (%d)", e);
    }
    ERR_clear_error();
    fail(c, SMTPC_ERR_TLS, "TLS handshake failed: %s", t->error);
}

static void start_tls(struct smtpc *c)
{
    set_stage(c, SMTPC_ST_HANDSHAKE);
    c->ssl = c->ctx ? SSL_new(c->ctx) : NULL;
    if (!c->ssl) {
        c->info.tls.after_220 = true;
        snprintf(c->info.tls.error, sizeof c->info.tls.error, "no TLS context");
        fail(c, SMTPC_ERR_TLS, "TLS handshake failed: no TLS context");
        return;
    }
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_connect_state(c->ssl);
    if (c->sni && *c->sni)
        SSL_set_tlsext_host_name(c->ssl, c->sni);
    if (c->dane_base && *c->dane_base && c->p.ntlsa > 0) {
        int added = 0;
        if (SSL_dane_enable(c->ssl, c->dane_base) > 0) {
            SSL_dane_set_flags(c->ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
            if (c->dane_host && *c->dane_host)
                SSL_add1_host(c->ssl, c->dane_host);
            for (size_t i = 0; i < c->p.ntlsa; i++) {
                const struct tlspol_tlsa *r = &c->p.tlsa[i];
                if (r->usage != 2 && r->usage != 3) /* PKIX usages are unusable for SMTP */
                    continue;
                if (SSL_dane_tlsa_add(c->ssl, r->usage, r->selector, r->mtype, r->data, r->len) > 0)
                    added++;
            }
        }
        ERR_clear_error();
        c->info.tls.dane_used = added > 0;
    }
    c->handshaking = true;
    do_handshake(c);
}

/* ---- I/O ---- */

static bool flush_out(struct smtpc *c)
{
    while (c->out_pos < c->out.len) {
        size_t n = c->out.len - c->out_pos;
        const char *p = c->out.buf + c->out_pos;
        if (c->ssl) {
            ERR_clear_error();
            int w = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            if (w <= 0) {
                int e = SSL_get_error(c->ssl, w);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    c->ssl_want_write = e == SSL_ERROR_WANT_WRITE;
                    return true;
                }
                fail(c, SMTPC_ERR_IO, "TLS write failed during %s",
                     smtpc_stage_name(c->info.stage));
                return false;
            }
            c->out_pos += (size_t)w;
        } else {
            ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    return true;
                fail(c, SMTPC_ERR_IO, "write failed during %s: %s", smtpc_stage_name(c->info.stage),
                     strerror(errno));
                return false;
            }
            c->out_pos += (size_t)w;
        }
    }
    c->ssl_want_write = false;
    return true;
}

static bool read_in(struct smtpc *c)
{
    for (;;) {
        if (c->in_len == sizeof c->in)
            return true;
        char *p = c->in + c->in_len;
        size_t room = sizeof c->in - c->in_len;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, p, (int)room);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    return true;
                if (e == SSL_ERROR_WANT_WRITE) {
                    c->ssl_want_write = true;
                    return true;
                }
                fail(c, SMTPC_ERR_IO, "connection closed during %s",
                     smtpc_stage_name(c->info.stage));
                return false;
            }
            c->in_len += (size_t)r;
        } else {
            ssize_t r = recv(c->fd, p, room, 0);
            if (r < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    return true;
                fail(c, SMTPC_ERR_IO, "read failed during %s: %s", smtpc_stage_name(c->info.stage),
                     strerror(errno));
                return false;
            }
            if (r == 0) {
                fail(c, SMTPC_ERR_IO, "connection closed during %s",
                     smtpc_stage_name(c->info.stage));
                return false;
            }
            c->in_len += (size_t)r;
        }
    }
}

static void connected(struct smtpc *c)
{
    int soerr = c->connect_errno;
    socklen_t sl = sizeof soerr;
    if (!soerr && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
    if (soerr) {
        fail(c, SMTPC_ERR_CONNECT, "connect to %s port %u: %s", c->p.addr, c->p.port,
             strerror(soerr));
        return;
    }
    c->connecting = false;
    struct sockaddr_storage ss;
    socklen_t ssl = sizeof ss;
    if (getsockname(c->fd, (struct sockaddr *)&ss, &ssl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, c->info.local_addr, sizeof c->info.local_addr);
            c->info.local_port = ntohs(s4->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, c->info.local_addr, sizeof c->info.local_addr);
            c->info.local_port = ntohs(s6->sin6_port);
        }
    }
    set_stage(c, SMTPC_ST_GREETING);
    if (!emit(c, SMTPC_CONNECTED))
        return;
    watch(c);
}

static void io_cb(struct ev_loop *loop, int fd, unsigned revents, void *arg)
{
    (void)loop;
    (void)fd;
    struct smtpc *c = arg;
    c->in_cb++; /* keep c alive through the whole callback */
    if (c->connecting) {
        if (revents & EV_WRITE)
            connected(c);
        goto out;
    }
    if (c->handshaking) {
        do_handshake(c);
        if (c->dead || c->fd < 0 || c->handshaking)
            goto out;
    }
    if (!flush_out(c) || c->dead)
        goto out;
    if (c->info.stage == SMTPC_ST_QUIT && c->out_pos == c->out.len && !c->ssl_want_write) {
        /* QUIT is on the wire. Like Postfix (smtp_skip_quit_response) the 221 is not awaited: the
         * connection's work is done, and its delivery slot can serve the next connection. */
        close_fd(c);
        c->info.stage = SMTPC_ST_CLOSED;
        emit(c, SMTPC_CLOSED);
        goto out;
    }
    if (revents & EV_READ) {
        if (!read_in(c) || c->dead)
            goto out;
        parse_input(c);
        if (c->dead || c->fd < 0)
            goto out;
        if (c->handshaking) {
            do_handshake(c);
            if (c->dead || c->fd < 0)
                goto out;
        }
        if (!flush_out(c) || c->dead)
            goto out;
    }
out:
    c->in_cb--;
    if (c->dead) {
        if (c->in_cb == 0)
            really_free(c);
        return;
    }
    watch(c);
}

/* ---- public ---- */

struct smtpc *smtpc_open(struct ev_loop *loop, const struct smtpc_params *p, smtpc_cb cb, void *arg,
                         char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    uint16_t port = p->port ? p->port : 25;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, p->addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, p->addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        sl = sizeof *s6;
    } else {
        snprintf(err, errlen, "not an address: %s", p->addr);
        return NULL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return NULL;
    }
    if (p->bind_addr && *p->bind_addr) {
        struct sockaddr_storage bs;
        memset(&bs, 0, sizeof bs);
        socklen_t bl = 0;
        if (ss.ss_family == AF_INET &&
            inet_pton(AF_INET, p->bind_addr, &((struct sockaddr_in *)&bs)->sin_addr) == 1) {
            bs.ss_family = AF_INET;
            bl = sizeof(struct sockaddr_in);
        } else if (ss.ss_family == AF_INET6 &&
                   inet_pton(AF_INET6, p->bind_addr, &((struct sockaddr_in6 *)&bs)->sin6_addr) ==
                       1) {
            bs.ss_family = AF_INET6;
            bl = sizeof(struct sockaddr_in6);
        }
        if (bl == 0 || bind(fd, (struct sockaddr *)&bs, bl) != 0) {
            snprintf(err, errlen, "cannot bind to %s", p->bind_addr);
            close(fd);
            return NULL;
        }
    }
    struct smtpc *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->cb = cb;
    c->arg = arg;
    c->fd = fd;
    c->p = *p;
    c->p.port = port;
    c->helo = xstrdup(p->helo && *p->helo ? p->helo : "localhost");
    c->sni = p->sni && *p->sni ? xstrdup(p->sni) : NULL;
    c->dane_base = p->dane_base ? xstrdup(p->dane_base) : NULL;
    c->dane_host = p->dane_host ? xstrdup(p->dane_host) : NULL;
    c->p.helo = c->helo;
    c->p.sni = c->sni;
    c->p.dane_base = c->dane_base;
    c->p.dane_host = c->dane_host;
    c->p.addr = NULL; /* not kept: the caller's */
    c->p.bind_addr = NULL;
    if (p->ctx) {
        SSL_CTX_up_ref(p->ctx);
        c->ctx = p->ctx;
    }
    c->connecting = true;
    set_stage(c, SMTPC_ST_CONNECT);
    snprintf(c->addr, sizeof c->addr, "%s", p->addr);
    c->p.addr = c->addr;
    /* An immediate failure is reported from the loop like any other: one code path. */
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS)
        c->connect_errno = errno;
    ev_io_set(loop, fd, EV_WRITE, io_cb, c);
    return c;
}

bool smtpc_send(struct smtpc *c, struct smtpc_msg *m)
{
    if (c->dead || c->fd < 0 || c->info.stage != SMTPC_ST_IDLE || c->msg)
        return false;
    c->msg = m;
    m->accepted = 0;
    memset(&m->mail, 0, sizeof m->mail);
    memset(&m->data_reply, 0, sizeof m->data_reply);
    for (size_t i = 0; i < m->nrcpt; i++)
        memset(&m->rcpt_reply[i], 0, sizeof m->rcpt_reply[i]);
    c->pipelined = c->info.pipelining && m->nrcpt > 0;
    c->mail_failed = c->empty_data = false;
    bool rset = c->open_txn;
    if (rset)
        send_line(c, "RSET");
    if (c->pipelined || !rset)
        send_mail_from(c);
    if (c->pipelined) {
        for (size_t i = 0; i < m->nrcpt; i++)
            send_line(c, "RCPT TO:<%s>", m->rcpt[i]);
        send_line(c, "DATA");
    }
    set_stage(c, rset ? SMTPC_ST_RSET : SMTPC_ST_MAIL);
    watch(c);
    return true;
}

static void closed_cb(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct smtpc *c = arg;
    c->timer = NULL;
    emit(c, SMTPC_CLOSED);
}

void smtpc_quit(struct smtpc *c)
{
    if (c->dead)
        return;
    c->quitting = true;
    if (c->fd < 0 || c->info.stage != SMTPC_ST_IDLE) {
        /* nothing to say goodbye on: closed, reported from the loop */
        close_fd(c);
        c->info.stage = SMTPC_ST_CLOSED;
        c->timer = ev_timer_add(c->loop, 0, closed_cb, c);
        return;
    }
    send_line(c, "QUIT");
    set_stage(c, SMTPC_ST_QUIT);
    watch(c);
}
