/* fakedns.c - MOCK DNS SERVER for unit tests (see fakedns.h): canned replies on 127.0.0.1.
 *
 * A poll() loop in a thread serves one UDP socket and one TCP listener on the same port, plus a
 * few accepted TCP connections (c-ares keeps its TCP connection open). Every function is static:
 * include this file from the test that uses it.
 */
#include "fakedns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define FAKEDNS_UNUSED __attribute__((unused))

enum { FAKEDNS_MAX_TCP = 8 };

struct fakedns {
    int udp, listener;
    int tcp[FAKEDNS_MAX_TCP];
    int stop_pipe[2];
    uint16_t port;
    fakedns_handler handler;
    void *arg;
    pthread_t thread;
    atomic_uint n_udp, n_tcp;
    atomic_bool last_ad, last_do;
};

/* ---- reply building ---- */

static void fakedns_put(struct fakedns_reply *r, const void *p, size_t n)
{
    if (r->overflow || n > sizeof(r->b) - r->len) {
        r->overflow = true;
        return;
    }
    memcpy(r->b + r->len, p, n);
    r->len += n;
}

static void fakedns_put16(struct fakedns_reply *r, unsigned v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    fakedns_put(r, b, 2);
}

static void fakedns_put32(struct fakedns_reply *r, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fakedns_put(r, b, 4);
}

/* Wire form of a dotted name into out (at least 256 bytes); returns its length. */
static FAKEDNS_UNUSED size_t fakedns_name(unsigned char *out, const char *dotted)
{
    size_t o = 0;
    const char *p = dotted;
    while (*p) {
        size_t l = strcspn(p, ".");
        if (l == 0 || l > 63 || o + l + 2 > 255)
            break;
        out[o++] = (unsigned char)l;
        memcpy(out + o, p, l);
        o += l;
        p += l;
        if (*p == '.')
            p++;
    }
    out[o++] = 0;
    return o;
}

/* Header and question copied from the query; no records yet. */
static FAKEDNS_UNUSED void fakedns_reply_start(struct fakedns_reply *r,
                                               const struct fakedns_query *q, int rcode, bool ad,
                                               bool tc)
{
    r->len = 0;
    r->overflow = false;
    size_t qend = 12;
    while (qend < q->len && q->buf[qend] != 0)
        qend += 1 + q->buf[qend];
    qend += 1 + 4;
    unsigned char h[12] = {0};
    memcpy(h, q->buf, 2);
    h[2] = (unsigned char)(0x80 | (q->buf[2] & 0x01) | (tc ? 0x02 : 0));
    h[3] = (unsigned char)(0x80 | (ad ? 0x20 : 0) | (rcode & 0x0f));
    h[5] = 1;
    fakedns_put(r, h, 12);
    fakedns_put(r, q->buf + 12, qend - 12);
}

/* Appends an answer record; owner NULL means the question name (a pointer to offset 12). */
static FAKEDNS_UNUSED void fakedns_reply_rr(struct fakedns_reply *r, const char *owner,
                                            uint16_t type, uint32_t ttl, const void *rdata,
                                            size_t rdlen)
{
    if (owner) {
        unsigned char n[256];
        fakedns_put(r, n, fakedns_name(n, owner));
    } else {
        fakedns_put16(r, 0xc00c);
    }
    fakedns_put16(r, type);
    fakedns_put16(r, 1);
    fakedns_put32(r, ttl);
    fakedns_put16(r, (unsigned)rdlen);
    fakedns_put(r, rdata, rdlen);
    if (!r->overflow && r->len >= 12) {
        unsigned an = ((unsigned)r->b[6] << 8 | r->b[7]) + 1;
        r->b[6] = (unsigned char)(an >> 8);
        r->b[7] = (unsigned char)an;
    }
}

/* ---- serving ---- */

static bool fakedns_parse(const unsigned char *b, size_t len, struct fakedns_query *q)
{
    memset(q, 0, sizeof(*q));
    q->buf = b;
    q->len = len;
    if (len < 12)
        return false;
    size_t o = 12, w = 0;
    while (o < len && b[o] != 0) {
        size_t l = b[o];
        if (l > 63 || o + 1 + l >= len || w + l + 1 >= sizeof(q->name))
            return false;
        if (w)
            q->name[w++] = '.';
        for (size_t i = 0; i < l; i++)
            q->name[w++] = (char)tolower(b[o + 1 + i]);
        o += 1 + l;
    }
    if (o + 5 > len)
        return false;
    q->type = (uint16_t)(b[o + 1] << 8 | b[o + 2]);
    return true;
}

static void fakedns_note(struct fakedns *f, const struct fakedns_query *q)
{
    const unsigned char *b = q->buf;
    size_t o = 12;
    while (o < q->len && b[o] != 0)
        o += 1 + b[o];
    o += 5; /* root label, type, class */
    bool dnssec_ok = false;
    unsigned arcount = (unsigned)b[10] << 8 | b[11];
    if (arcount >= 1 && o + 11 <= q->len && b[o] == 0 && b[o + 1] == 0 && b[o + 2] == 41)
        dnssec_ok = (b[o + 7] & 0x80) != 0;
    atomic_store(&f->last_ad, (b[3] & 0x20) != 0);
    atomic_store(&f->last_do, dnssec_ok);
    atomic_fetch_add(q->tcp ? &f->n_tcp : &f->n_udp, 1);
}

static bool fakedns_answer(struct fakedns *f, const unsigned char *b, size_t len, bool tcp,
                           struct fakedns_reply *reply)
{
    struct fakedns_query q;
    if (!fakedns_parse(b, len, &q))
        return false;
    q.tcp = tcp;
    fakedns_note(f, &q);
    reply->len = 0;
    reply->overflow = false;
    return f->handler(&q, reply, f->arg) && !reply->overflow && reply->len > 0;
}

static bool fakedns_read_full(int fd, unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t got = read(fd, p, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        p += got;
        n -= (size_t)got;
    }
    return true;
}

/* One DNS-over-TCP message; false closes the connection. */
static bool fakedns_serve_tcp(struct fakedns *f, int fd)
{
    unsigned char lenb[2], msg[4096];
    if (!fakedns_read_full(fd, lenb, 2))
        return false;
    size_t len = (size_t)lenb[0] << 8 | lenb[1];
    if (len > sizeof(msg) || !fakedns_read_full(fd, msg, len))
        return false;
    struct fakedns_reply reply;
    if (!fakedns_answer(f, msg, len, true, &reply))
        return true; /* silent: keep the connection, like a stalled server */
    unsigned char out[2 + sizeof(reply.b)];
    out[0] = (unsigned char)(reply.len >> 8);
    out[1] = (unsigned char)reply.len;
    memcpy(out + 2, reply.b, reply.len);
    return write(fd, out, reply.len + 2) == (ssize_t)(reply.len + 2);
}

static void *fakedns_main(void *arg)
{
    struct fakedns *f = arg;
    for (;;) {
        struct pollfd p[3 + FAKEDNS_MAX_TCP];
        int n = 0;
        p[n++] = (struct pollfd){.fd = f->stop_pipe[0], .events = POLLIN};
        p[n++] = (struct pollfd){.fd = f->udp, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = f->listener, .events = POLLIN};
        for (int i = 0; i < FAKEDNS_MAX_TCP; i++)
            p[n++] = (struct pollfd){.fd = f->tcp[i], .events = POLLIN};
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents)
            break;
        if (p[1].revents & POLLIN) {
            unsigned char msg[4096];
            struct sockaddr_storage from;
            socklen_t fromlen = sizeof(from);
            ssize_t got = recvfrom(f->udp, msg, sizeof(msg), 0, (struct sockaddr *)&from, &fromlen);
            struct fakedns_reply reply;
            if (got > 0 && fakedns_answer(f, msg, (size_t)got, false, &reply))
                (void)sendto(f->udp, reply.b, reply.len, 0, (struct sockaddr *)&from, fromlen);
        }
        if (p[2].revents & POLLIN) {
            int c = accept(f->listener, NULL, NULL);
            int slot = -1;
            for (int i = 0; c >= 0 && i < FAKEDNS_MAX_TCP && slot < 0; i++)
                if (f->tcp[i] < 0)
                    slot = i;
            if (slot >= 0) {
                struct timeval tv = {2, 0}; /* a half-sent query must not hang the thread */
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                f->tcp[slot] = c;
            } else if (c >= 0) {
                close(c);
            }
        }
        for (int i = 0; i < FAKEDNS_MAX_TCP; i++) {
            if (f->tcp[i] >= 0 && p[3 + i].revents && !fakedns_serve_tcp(f, f->tcp[i])) {
                close(f->tcp[i]);
                f->tcp[i] = -1;
            }
        }
    }
    return NULL;
}

/* Starts a server; NULL on failure. */
static FAKEDNS_UNUSED struct fakedns *fakedns_start(fakedns_handler handler, void *arg)
{
    struct fakedns *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->handler = handler;
    f->arg = arg;
    for (int i = 0; i < FAKEDNS_MAX_TCP; i++)
        f->tcp[i] = -1;
    f->udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    f->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    f->stop_pipe[0] = f->stop_pipe[1] = -1;
    if (f->udp < 0 || f->listener < 0 || pipe(f->stop_pipe) < 0)
        goto fail;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* Bind UDP to an ephemeral port, then TCP to the same number; retry if TCP's is taken. */
    for (int attempt = 0;; attempt++) {
        sa.sin_port = 0;
        if (bind(f->udp, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            goto fail;
        socklen_t sl = sizeof(sa);
        getsockname(f->udp, (struct sockaddr *)&sa, &sl);
        int one = 1;
        setsockopt(f->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(f->listener, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        if (attempt == 20)
            goto fail;
        close(f->udp);
        f->udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (f->udp < 0)
            goto fail;
    }
    f->port = ntohs(sa.sin_port);
    if (listen(f->listener, 8) < 0 || pthread_create(&f->thread, NULL, fakedns_main, f) != 0)
        goto fail;
    return f;
fail:
    for (int i = 0; i < 2; i++)
        if (f->stop_pipe[i] >= 0)
            close(f->stop_pipe[i]);
    if (f->udp >= 0)
        close(f->udp);
    if (f->listener >= 0)
        close(f->listener);
    free(f);
    return NULL;
}

static FAKEDNS_UNUSED void fakedns_stop(struct fakedns *f)
{
    if (!f)
        return;
    while (write(f->stop_pipe[1], "x", 1) < 0 && errno == EINTR)
        ;
    pthread_join(f->thread, NULL);
    close(f->udp);
    close(f->listener);
    for (int i = 0; i < FAKEDNS_MAX_TCP; i++)
        if (f->tcp[i] >= 0)
            close(f->tcp[i]);
    close(f->stop_pipe[0]);
    close(f->stop_pipe[1]);
    free(f);
}

static FAKEDNS_UNUSED uint16_t fakedns_port(const struct fakedns *f)
{
    return f->port;
}

static FAKEDNS_UNUSED unsigned fakedns_count(struct fakedns *f, bool tcp)
{
    return atomic_load(tcp ? &f->n_tcp : &f->n_udp);
}

/* Whether the last query asked for DNSSEC: AD in the header and DO in its OPT record. */
static FAKEDNS_UNUSED bool fakedns_last_asked_dnssec(struct fakedns *f)
{
    return atomic_load(&f->last_ad) && atomic_load(&f->last_do);
}
