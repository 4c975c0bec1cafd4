/* delivery.c - the queue runner (delivery.h): due recipients from the queue, grouped per
 * recipient domain, delivered over SMTP under delivery-policy.md §1, §2, §5 and §6.
 *
 * Shape:
 * - A runner timer claims due recipients (db_queue_claim) into per-domain destinations
 *   (struct dest: the recipients waiting, the connections open, the recipient-rate window).
 * - A destination opens connections (struct conn) up to its concurrency limit. A connection
 *   takes a reference on the snapshot current when it opens and decides everything from it: the
 *   effective settings, the route or the MX hosts, the TLS plan per host (tlspolicy.h), the
 *   bounce profile. Hosts are tried in order; "host failed" moves to the next; with none left
 *   every recipient waiting for the domain is deferred with the last reason.
 * - Once a connection is ready it takes one message at a time from its destination (all the
 *   waiting recipients of that message in that domain): up to the messages-per-connection limit,
 *   and only while its snapshot is still the current one (a connection opened under an older
 *   version finishes its message and takes no new one, §1.3).
 * - Each outcome is recorded in the queue; deferrals get their next attempt from the bounce
 *   profile, and become bounces when retries or the time in queue run out. Hard bounces get a
 *   DSN (dsn.h), queued as a new message from the null sender, when the profile asks for one.
 * - MTA-STS (§3) and DANE (§4): before the first host of a domain whose settings say MTA STS On,
 *   the connection asks the agent's MTA-STS engine (sts_engine.h: single flight, so the
 *   recipients of one domain share one lookup) and waits for its callback. Per MX host, DANE's
 *   TLSA lookup (when dane_wants_tlsa() says so) and dane_decide() come first; a host DANE
 *   authenticates is not subject to MTA-STS. Then tlspol_plan() turns both into the host's TLS
 *   plan. Routed domains and the agent's own TLS report messages get neither.
 * - Every delivery connection's TLS outcome is counted for TLS reporting (reports.h).
 * Everything is logged with the lines of mail-logs.md. */
#include "delivery.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "cfg_bounce.h"
#include "cfg_dns.h"
#include "cfg_route.h"
#include "dane.h"
#include "db_stscache.h"
#include "db_stsengine.h"
#include "dsn.h"
#include "mxresolve.h"
#include "reports.h"
#include "smtp_client.h"
#include "sts_engine.h"
#include "tlscert.h"
#include "tlspolicy.h"
#include "tlsrpt.h"

#define CLAIM_BATCH 500
#define MAX_WAITING 20000 /* recipients held in memory before claiming more */
#define RUN_INTERVAL_MS 1000
#define DEST_BUCKETS 1024
#define REASON_MAX 512

struct rcpt {
    int64_t mid;
    int rid;
    int attempts;
    int64_t received;
    char *addr;
    signed char report; /* the message is one of our TLS reports: -1 not known yet */
};

struct dest {
    struct dest *next; /* hash chain */
    char domain[DB_QUEUE_ADDR_MAX + 1];
    struct rcpt *wait; /* waiting recipients, FIFO from wait_head */
    size_t nwait, wait_head, cap;
    int active;   /* connections open */
    int starting; /* connections not yet ready (resolving, connecting, TLS) */
    bool proven;  /* a connection got ready since the last time every host failed */
    int64_t win_start;
    long win_count;
    struct ev_timer *win_timer;
};

struct ipcount {
    struct ipcount *next;
    char addr[46];
    int n;
};

enum conn_state { C_RESOLVING, C_CONNECTING, C_READY, C_SENDING, C_QUITTING };

/* One MTA-STS engine and its fetcher, made for one fetch configuration (CA lists, proxy,
 * timeout, resolver). A new configuration makes a new one; the old one lives on while a
 * connection still waits on it, and is freed from a timer (never inside its own callback). */
struct stseng {
    struct stseng *next;
    struct sts_engine *e;
    struct sts_fetcher *f;
    char *key;
    int refs; /* connections waiting on it */
};

struct conn {
    struct conn *next, *prev;
    struct delivery *d;
    struct dest *dest;
    struct cfg_snapshot *snap;
    struct cfg_dest eff;
    struct cfg_bounce bounce;
    bool routed;
    bool tls_alert;
    char route[CFG_ROUTE_DOMAIN_BUF];
    struct mx_lookup *lookup;
    struct mx_result mx;
    size_t ti; /* current target */
    struct tlspol_host plan;
    bool no_starttls; /* the Preferred fallback: this connection goes without STARTTLS */
    struct smtpc *sc;
    SSL_CTX *ctx;
    int64_t dcid;
    int64_t last_dcid;
    enum conn_state state;
    bool counted_starting;
    char ip[46];
    bool ip_counted;
    unsigned msgs;
    /* the message in flight */
    struct db_queue_msg msg;
    bool have_msg;
    struct rcpt *batch;
    size_t nbatch;
    const char **rcpt_addrs;
    struct smtpc_reply *replies;
    struct smtpc_msg smsg;
    /* the last host failure: what deferral says when no host is left */
    char last_status[16];
    char last_reason[REASON_MAX];
    char last_cat[64];
    bool tls_only_failures; /* every host failed for a TLS reason (the Critical alert) */
    bool ip_capped;         /* an address was passed over: its per-IP limit was reached */
    int hosts_tried;
    /* MTA-STS and DANE (§3, §4) */
    bool report;        /* carries our TLS reports: neither MTA-STS nor DANE */
    bool sts_want;      /* MTA STS On: ask the engine before the first host */
    enum cfg_dane dane; /* the effective DANE setting (No when routed) */
    struct stseng *eng; /* the engine a pending lookup waits on (a reference) */
    struct sts_wait *sts_wait;
    struct sts_result sts; /* the policy that applies (mode none when none) */
    bool have_sts;
    int sts_skipped;    /* hosts an enforce policy left out */
    size_t logged_host; /* host_index + 1 of the last host whose skip was logged */
    struct dns_query *tlsa_q;
    struct dns_answer tlsa[MX_MAX_HOSTS]; /* per host_index, the last answer; the plan points
                                             into them */
    uint8_t tlsa_tried[MX_MAX_HOSTS];     /* per host_index: TLSA base domains asked (dane_bases) */
    int64_t next_dcid; /* taken before connecting, for the lines logged before the connection */
};

struct delivery {
    struct agent *a;
    struct ev_timer *run_timer;
    struct dest *buckets[DEST_BUCKETS];
    size_t waiting; /* recipients held in dests */
    struct conn *conns;
    int nconns;
    struct ipcount *ips;
    struct dns_resolver *resolver;
    char *dns_body; /* the DNSCONFIG body the resolver was made from */
    struct dns_resolver **retired;
    size_t nretired;
    SSL_CTX *ctx;
    int64_t ctx_version;
    struct db_stscache *stscache; /* <data>/stscache.db, opened on first use */
    bool stscache_failed;
    struct stseng *eng;      /* current */
    struct stseng *old_engs; /* replaced, freed when nobody waits on them */
    struct ev_timer *eng_timer;
    bool draining;
    void (*drain_done)(void *arg);
    void *drain_arg;
    struct ev_timer *drain_timer;
    /* counters for status */
    uint64_t delivered, deferred, bounced, dsns, connections;
};

static void dispatch(struct delivery *d, struct dest *ds);
static void conn_next_target(struct conn *c);
static void conn_sts_cancel(struct conn *c);
static void conn_end(struct conn *c);
static void conn_take_message(struct conn *c);

/* ---- small helpers ---- */

static void rid_list(const struct rcpt *r, size_t n, char *out, size_t outlen)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && len < outlen; i++) {
        int w = snprintf(out + len, outlen - len, "%s%d", i ? ", " : "", r[i].rid);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

/* The words mail_logs puts after the status (AsyncOS style). */
static const char *category(const char *status)
{
    if (strncmp(status + 1, ".7.", 3) == 0)
        return "TLS required";
    if (strcmp(status, "5.1.2") == 0 || strcmp(status, "5.1.10") == 0 ||
        strcmp(status, "5.4.4") == 0)
        return "Bad destination host";
    if (strncmp(status + 1, ".1.", 3) == 0)
        return "Bad destination mailbox address";
    if (strncmp(status + 1, ".4.", 3) == 0)
        return strcmp(status, "5.4.7") == 0 ? "Delivery expired" : "Network or routing error";
    if (status[0] == '4')
        return "Temporary failure";
    return "Permanent failure";
}

static unsigned hash_domain(const char *s)
{
    unsigned h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h % DEST_BUCKETS;
}

static struct dest *dest_get(struct delivery *d, const char *domain, bool create)
{
    unsigned h = hash_domain(domain);
    for (struct dest *ds = d->buckets[h]; ds; ds = ds->next)
        if (strcmp(ds->domain, domain) == 0)
            return ds;
    if (!create)
        return NULL;
    struct dest *ds = xcalloc(1, sizeof *ds);
    snprintf(ds->domain, sizeof ds->domain, "%s", domain);
    ds->next = d->buckets[h];
    d->buckets[h] = ds;
    return ds;
}

static void dest_maybe_free(struct delivery *d, struct dest *ds)
{
    if (ds->nwait > ds->wait_head || ds->active > 0 || ds->win_timer)
        return;
    /* a recipient-rate window still running must outlive the connections that counted it */
    if (ds->win_count > 0 && (int64_t)time(NULL) - ds->win_start < 60 * CFG_RCPT_MINUTES_MAX)
        return;
    unsigned h = hash_domain(ds->domain);
    for (struct dest **pp = &d->buckets[h]; *pp; pp = &(*pp)->next) {
        if (*pp == ds) {
            *pp = ds->next;
            break;
        }
    }
    free(ds->wait);
    free(ds);
}

static size_t dest_waiting(const struct dest *ds)
{
    return ds->nwait - ds->wait_head;
}

static void dest_push(struct dest *ds, const struct db_queue_rcpt *r)
{
    if (ds->wait_head > 0 && ds->wait_head == ds->nwait) {
        ds->wait_head = ds->nwait = 0;
    }
    if (ds->nwait == ds->cap) {
        if (ds->wait_head > ds->cap / 2) {
            memmove(ds->wait, ds->wait + ds->wait_head, dest_waiting(ds) * sizeof *ds->wait);
            ds->nwait -= ds->wait_head;
            ds->wait_head = 0;
        } else {
            ds->cap = ds->cap ? ds->cap * 2 : 16;
            ds->wait = xrealloc(ds->wait, ds->cap * sizeof *ds->wait);
        }
    }
    struct rcpt *x = &ds->wait[ds->nwait++];
    x->mid = r->mid;
    x->rid = r->rid;
    x->attempts = r->attempts;
    x->received = r->received;
    x->addr = xstrdup(r->addr);
    x->report = -1;
}

/* Takes the recipients of the first waiting message (at most max) that stand together at the
 * head of the list. The queue hands recipients out by (next attempt, MID, RID), so those of one
 * message that are due together arrive together; one retried later is a transaction of its own.
 * The cost is that of the recipients taken, whatever the length of the list. */
static size_t dest_take_message(struct delivery *d, struct dest *ds, size_t max, struct rcpt **out)
{
    size_t n = 0, head = ds->wait_head;
    while (head + n < ds->nwait && n < max && ds->wait[head + n].mid == ds->wait[head].mid)
        n++;
    if (n == 0)
        return 0;
    struct rcpt *v = xcalloc(n, sizeof *v);
    memcpy(v, ds->wait + head, n * sizeof *v);
    ds->wait_head += n;
    d->waiting -= n;
    *out = v;
    return n;
}

static int rcpt_cmp(const void *a, const void *b)
{
    const struct rcpt *x = a, *y = b;
    if (x->mid != y->mid)
        return x->mid < y->mid ? -1 : 1;
    return (x->rid > y->rid) - (x->rid < y->rid);
}

/* Takes every waiting recipient, grouped by message (one DSN per message). */
static size_t dest_take_all(struct delivery *d, struct dest *ds, struct rcpt **out)
{
    size_t n = dest_waiting(ds);
    *out = NULL;
    if (n == 0)
        return 0;
    *out = xcalloc(n, sizeof **out);
    memcpy(*out, ds->wait + ds->wait_head, n * sizeof **out);
    ds->wait_head = ds->nwait = 0;
    d->waiting -= n;
    qsort(*out, n, sizeof **out, rcpt_cmp);
    return n;
}

static void rcpts_free(struct rcpt *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].addr);
    free(v);
}

static struct ipcount *ip_get(struct delivery *d, const char *addr, bool create)
{
    for (struct ipcount *p = d->ips; p; p = p->next)
        if (strcmp(p->addr, addr) == 0)
            return p;
    if (!create)
        return NULL;
    struct ipcount *p = xcalloc(1, sizeof *p);
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    p->next = d->ips;
    d->ips = p;
    return p;
}

static void ip_release(struct delivery *d, const char *addr)
{
    for (struct ipcount **pp = &d->ips; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->addr, addr) == 0) {
            if (--(*pp)->n <= 0) {
                struct ipcount *x = *pp;
                *pp = x->next;
                free(x);
            }
            return;
        }
    }
}

/* The bounce profile of a destination (cfg_bounce.h: missing profile -> Default). */
static void bounce_profile(const struct cfg_snapshot *s, const struct cfg_dest *eff,
                           struct cfg_bounce *out)
{
    struct cfg_bounce def, prof;
    cfg_bounce_decode(cfg_snapshot_unit(s, CFG_KIND_BOUNCE, CFG_BOUNCE_DEFAULT), &def);
    const char *name = eff->bounce_profile[0] ? eff->bounce_profile : CFG_BOUNCE_DEFAULT;
    const char *body = cfg_snapshot_unit(s, CFG_KIND_BOUNCE, name);
    if (body)
        cfg_bounce_decode(body, &prof);
    else
        prof = def;
    cfg_bounce_effective(&prof, &def, out);
}

/* ---- outcomes ---- */

static void finished_cb(void *arg, int64_t mid)
{
    struct delivery *d = arg;
    agent_log(d->a, MAILLOG_INFO, "Message finished MID %lld done", (long long)mid);
}

/* A DSN for the recipients of one message that bounced now. msg may be NULL (loaded here). */
static void make_dsn(struct delivery *d, const struct db_queue_msg *msg, int64_t mid,
                     const struct rcpt *r, const char *const *status, const char *const *diag,
                     const char *remote, size_t n)
{
    struct db_queue_msg loaded = {0};
    char err[256];
    if (!msg) {
        if (db_queue_message(d->a->queue, mid, &loaded, err, sizeof err) != DB_OK)
            return;
        msg = &loaded;
    }
    if (!msg->sender || !msg->sender[0])
        goto out; /* never a DSN for a null-sender message */
    struct dsn_rcpt *dr = xcalloc(n, sizeof *dr);
    for (size_t i = 0; i < n; i++) {
        dr[i].addr = r[i].addr;
        dr[i].status = status[i];
        dr[i].diagnostic = diag[i];
        dr[i].remote_mta = remote;
    }
    struct dsn_params p = {
        .reporting_mta = agent_hostname(d->a),
        .sender = msg->sender,
        .mid = mid,
        .arrival = (time_t)msg->received,
        .now = time(NULL),
        .rcpt = dr,
        .n_rcpt = n,
        .original = msg->data,
        .original_len = msg->size,
    };
    struct strbuf sb = STRBUF_INIT;
    if (dsn_build(&p, &sb)) {
        int64_t dmid = agent_next_id(d->a, DB_QUEUE_MID);
        if (dmid > 0) {
            const char *to[1] = {msg->sender};
            struct db_queue_new nm = {
                .mid = dmid,
                .icid = 0,
                .received = (int64_t)time(NULL),
                .sender = "",
                .rcpt = to,
                .n_rcpt = 1,
                .data = sb.buf,
                .size = sb.len,
            };
            if (db_queue_store(d->a->queue, &nm, 1, err, sizeof err) == DB_OK) {
                d->dsns++;
                agent_log(d->a, MAILLOG_INFO, "MID %lld DSN bounce message created for MID %lld",
                          (long long)dmid, (long long)mid);
                agent_log(d->a, MAILLOG_INFO, "MID %lld queued for delivery", (long long)dmid);
                delivery_kick(d);
            } else {
                agent_log(d->a, MAILLOG_WARNING, "Cannot queue the DSN for MID %lld: %s",
                          (long long)mid, err);
            }
        }
    }
    sb_free(&sb);
    free(dr);
out:
    if (msg == &loaded)
        db_queue_message_free(&loaded);
}

/* Why one recipient failed. code is the server's reply code, "000" when no server said it. */
struct failure {
    bool permanent; /* a 5xx or a DNS hard error: bounce now */
    const char *status;
    const char *code;
    const char *reason;
    const char *cat; /* the words after the status; NULL: from the status */
};

/* Failed recipients (r[i] failed as f[i]): permanent ones bounce; the others are deferred, or
 * bounced when the profile's retries or lifetime are used up. One DSN per message for the
 * recipients that bounced, when the profile asks for it. */
static void fail_rcpts_v(struct delivery *d, const struct cfg_bounce *b, int64_t dcid,
                         const struct db_queue_msg *msg, struct rcpt *r, const struct failure *f,
                         size_t n, const char *remote)
{
    if (n == 0)
        return;
    int64_t now = (int64_t)time(NULL);
    struct db_queue_outcome *out = xcalloc(n, sizeof *out);
    char(*texts)[REASON_MAX + 96] = xcalloc(n, sizeof *texts);
    bool *bounced = xcalloc(n, sizeof *bounced);
    const char **st = xcalloc(n, sizeof *st);
    const char **dg = xcalloc(n, sizeof *dg);
    for (size_t i = 0; i < n; i++) {
        const char *status = f[i].status, *code = f[i].code, *reason = f[i].reason;
        /* the text kept as the recipient's last error and put in a DSN's Diagnostic-Code */
        bool reply = strcmp(code, "000") != 0;
        out[i].mid = r[i].mid;
        out[i].rid = r[i].rid;
        out[i].when = now;
        const char *cat = f[i].cat ? f[i].cat : category(status);
        if (f[i].permanent) {
            out[i].kind = DB_QUEUE_OUT_BOUNCED;
            bounced[i] = true;
            agent_log(d->a, MAILLOG_INFO,
                      "Bounced: DCID %lld MID %lld to RID %d - %s - %s ('%s', ['%s'])",
                      (long long)dcid, (long long)r[i].mid, r[i].rid, status, cat, code, reason);
            snprintf(texts[i], sizeof texts[i], "%s %s", reply ? code : status, reason);
            st[i] = status;
        } else {
            long wait = 0;
            enum cfg_retry rr =
                cfg_bounce_next(b, r[i].attempts + 1, (long)(now - r[i].received), &wait);
            if (rr == CFG_RETRY_BOUNCE) {
                out[i].kind = DB_QUEUE_OUT_BOUNCED;
                bounced[i] = true;
                agent_log(d->a, MAILLOG_INFO,
                          "Bounced: DCID %lld MID %lld to RID %d - 5.4.7 - Delivery expired "
                          "(message too old) ('%s', ['%s %s'])",
                          (long long)dcid, (long long)r[i].mid, r[i].rid, code, status, reason);
                snprintf(texts[i], sizeof texts[i], "delivery expired; last error: %s %s",
                         reply ? code : status, reason);
                st[i] = "5.4.7";
            } else {
                out[i].kind = DB_QUEUE_OUT_DEFERRED;
                out[i].next_attempt = now + (wait > 0 ? wait : 1);
                agent_log(d->a, MAILLOG_INFO,
                          "Delayed: DCID %lld MID %lld to RID %d - %s - %s ('%s', ['%s'])",
                          (long long)dcid, (long long)r[i].mid, r[i].rid, status, cat, code,
                          reason);
                snprintf(texts[i], sizeof texts[i], "%s %s", reply ? code : status, reason);
            }
        }
        out[i].reason = texts[i];
        dg[i] = texts[i];
        if (bounced[i])
            d->bounced++;
        else
            d->deferred++;
    }
    /* DSNs first: the original may be deleted once its last recipient is final. */
    if (b->hard_bounce_notice == CFG_NOTICE_YES) {
        for (size_t i = 0; i < n; i++) {
            if (!bounced[i] || (i > 0 && r[i].mid == r[i - 1].mid && bounced[i - 1]))
                continue;
            size_t j = i;
            struct rcpt *g = xcalloc(n, sizeof *g);
            const char **gs = xcalloc(n, sizeof *gs), **gd = xcalloc(n, sizeof *gd);
            size_t k = 0;
            for (j = i; j < n && r[j].mid == r[i].mid; j++)
                if (bounced[j]) {
                    g[k] = r[j];
                    gs[k] = st[j];
                    gd[k] = dg[j];
                    k++;
                }
            make_dsn(d, msg && msg->mid == r[i].mid ? msg : NULL, r[i].mid, g, gs, gd, remote, k);
            free(g);
            free(gs);
            free(gd);
        }
    }
    char err[256];
    if (db_queue_record(d->a->queue, out, n, finished_cb, d, err, sizeof err) != DB_OK)
        agent_log(d->a, MAILLOG_WARNING, "Queue database error recording outcomes: %s", err);
    free(out);
    free(texts);
    free(bounced);
    free(st);
    free(dg);
}

/* The same failure for every recipient in r; cat NULL: the words from the status. */
static void fail_rcpts_cat(struct delivery *d, const struct cfg_bounce *b, int64_t dcid,
                           const struct db_queue_msg *msg, struct rcpt *r, size_t n, bool permanent,
                           const char *status, const char *code, const char *reason,
                           const char *remote, const char *cat)
{
    if (n == 0)
        return;
    struct failure *f = xcalloc(n, sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = (struct failure){permanent, status, code, reason, cat};
    fail_rcpts_v(d, b, dcid, msg, r, f, n, remote);
    free(f);
}

static void fail_rcpts(struct delivery *d, const struct cfg_bounce *b, int64_t dcid,
                       const struct db_queue_msg *msg, struct rcpt *r, size_t n, bool permanent,
                       const char *status, const char *code, const char *reason, const char *remote)
{
    fail_rcpts_cat(d, b, dcid, msg, r, n, permanent, status, code, reason, remote, NULL);
}

/* ---- connections ---- */

static void conn_log_close(struct conn *c)
{
    if (c->dcid)
        agent_log(c->d->a, MAILLOG_INFO, "DCID %lld close", (long long)c->dcid);
    c->dcid = 0;
}

static void conn_drop_smtp(struct conn *c)
{
    if (c->sc) {
        smtpc_free(c->sc);
        c->sc = NULL;
    }
    if (c->ip_counted) {
        ip_release(c->d, c->ip);
        c->ip_counted = false;
    }
    conn_log_close(c);
}

static void conn_clear_message(struct conn *c)
{
    if (c->have_msg)
        db_queue_message_free(&c->msg);
    c->have_msg = false;
    rcpts_free(c->batch, c->nbatch);
    c->batch = NULL;
    c->nbatch = 0;
    free(c->rcpt_addrs);
    free(c->replies);
    c->rcpt_addrs = NULL;
    c->replies = NULL;
}

static void set_ready(struct conn *c)
{
    if (c->counted_starting) {
        c->counted_starting = false;
        c->dest->starting--;
    }
}

static void drain_check(struct ev_loop *loop, struct ev_timer *t, void *arg);

static void conn_end(struct conn *c)
{
    struct delivery *d = c->d;
    struct dest *ds = c->dest;
    bool capped = c->ip_capped && c->hosts_tried == 0;
    if (c->lookup)
        mx_cancel(c->lookup);
    conn_sts_cancel(c);
    if (c->tlsa_q)
        dns_query_cancel(c->tlsa_q);
    for (size_t i = 0; i < MX_MAX_HOSTS; i++)
        if (c->tlsa_tried[i])
            dns_answer_clear(&c->tlsa[i]);
    sts_result_release(&c->sts);
    conn_drop_smtp(c);
    if (c->nbatch) {
        /* a message in flight when the connection ended without an answer: back to the queue */
        char err[256];
        for (size_t i = 0; i < c->nbatch; i++)
            db_queue_release(d->a->queue, c->batch[i].mid, c->batch[i].rid, err, sizeof err);
    }
    conn_clear_message(c);
    set_ready(c);
    mx_result_clear(&c->mx);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    cfg_snapshot_unref(c->snap);
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    d->nconns--;
    ds->active--;
    free(c);
    if (d->draining) {
        if (d->nconns == 0 && !d->drain_timer)
            d->drain_timer = ev_timer_add(d->a->loop, 0, drain_check, d);
        dest_maybe_free(d, ds);
        return;
    }
    if (!capped)
        dispatch(d, ds);
    dest_maybe_free(d, ds);
}

/* No host left: every recipient waiting for the domain is deferred with the last reason. */
static void conn_no_hosts_left(struct conn *c)
{
    struct delivery *d = c->d;
    c->dest->proven = false;
    const char *status = c->last_status[0] ? c->last_status : "4.4.1";
    const char *reason = c->last_reason[0] ? c->last_reason : "no host could be reached";
    bool tls = c->tls_only_failures && c->hosts_tried > 0;
    if (tls && c->tls_alert &&
        (c->eff.tls == CFG_TLS_REQUIRED || c->eff.tls == CFG_TLS_REQUIRED_VERIFY ||
         c->eff.tls == CFG_TLS_REQUIRED_VERIFY_HOSTED))
        agent_log(d->a, MAILLOG_CRITICAL, "TLS required for %s failed on every host: %s",
                  c->dest->domain, reason);
    struct rcpt *r;
    size_t n = dest_take_all(d, c->dest, &r);
    fail_rcpts_cat(d, &c->bounce, c->last_dcid, NULL, r, n, false, status, "000", reason, NULL,
                   c->last_cat[0] ? c->last_cat : NULL);
    rcpts_free(r, n);
    conn_end(c);
}

/* This host failed: remember why and try the next one. */
static void host_failed(struct conn *c, const char *status, const char *reason, bool tls)
{
    snprintf(c->last_status, sizeof c->last_status, "%s", status);
    snprintf(c->last_reason, sizeof c->last_reason, "%s", reason);
    c->last_cat[0] = '\0';
    if (!tls)
        c->tls_only_failures = false;
    c->hosts_tried++;
    conn_drop_smtp(c);
    c->no_starttls = false;
    c->ti++;
    conn_next_target(c);
}

static void smtp_event(struct smtpc *sc, enum smtpc_event ev, void *arg);

static void conn_connect(struct conn *c)
{
    struct delivery *d = c->d;
    const struct mx_target *t = &c->mx.targets[c->ti];
    struct smtpc_params p = {
        .addr = t->addr,
        .port = t->port,
        .helo = agent_hostname(d->a),
        .starttls = c->plan.starttls && !c->no_starttls,
        .sni = c->plan.sni,
        .ctx = c->ctx,
    };
    if (c->plan.dane == TLSPOL_DANE_AUTH) {
        p.dane_base = c->plan.dane_base[0] ? c->plan.dane_base : c->plan.host;
        p.dane_host = c->plan.host;
        p.tlsa = c->plan.tlsa;
        p.ntlsa = c->plan.ntlsa;
    }
    char err[256];
    c->state = C_CONNECTING;
    snprintf(c->ip, sizeof c->ip, "%s", t->addr);
    ip_get(d, c->ip, true)->n++;
    c->ip_counted = true;
    c->sc = smtpc_open(d->a->loop, &p, smtp_event, c, err, sizeof err);
    if (!c->sc) {
        host_failed(c, "4.4.1", err, false);
        return;
    }
    c->dcid = c->next_dcid ? c->next_dcid : agent_next_id(d->a, DB_QUEUE_DCID);
    c->next_dcid = 0;
    c->last_dcid = c->dcid;
    d->connections++;
}

/* ---- MTA-STS and DANE per host (§3, §4) ---- */

static bool sts_applies(const struct conn *c)
{
    return c->sts.policy && (c->sts.mode == STS_MODE_ENFORCE || c->sts.mode == STS_MODE_TESTING);
}

/* The policy as RFC 8460's policy-string wants it (one line per element, '\n' between) and its
 * mx patterns. */
static void sts_policy_lines(const struct sts_pol *p, struct strbuf *policy, struct strbuf *mx)
{
    sb_printf(policy, "version: STSv1\nmode: %s", sts_mode_name(p->mode));
    for (const char *m = sts_pol_mx_first(p); m; m = sts_pol_mx_next(p, m)) {
        sb_printf(policy, "\nmx: %s", m);
        sb_printf(mx, "%s%s", mx->len ? "\n" : "", m);
    }
    sb_printf(policy, "\nmax_age: %u", (unsigned)p->max_age);
}

/* Counts one session of this connection's host for TLS reporting (RFC 8460). */
static void conn_report(struct conn *c, enum tlsrpt_result result, const char *detail)
{
    struct delivery *d = c->d;
    if (!d->a->reports || c->report || c->ti >= c->mx.ntargets)
        return;
    const struct mx_target *t = &c->mx.targets[c->ti];
    struct strbuf policy = STRBUF_INIT, mx = STRBUF_INIT;
    enum tlsrpt_policy_type type = TLSRPT_POLICY_NONE;
    if (c->plan.dane == TLSPOL_DANE_AUTH || c->plan.dane == TLSPOL_DANE_NOAUTH) {
        type = TLSRPT_POLICY_TLSA;
        for (size_t i = 0; i < c->plan.ntlsa; i++) {
            const struct tlspol_tlsa *r = &c->plan.tlsa[i];
            sb_printf(&policy, "%s%u %u %u ", i ? "\n" : "", r->usage, r->selector, r->mtype);
            for (size_t k = 0; k < r->len; k++)
                sb_printf(&policy, "%02x", r->data[k]);
        }
    } else if (c->plan.sts != TLSPOL_STS_NONE && sts_applies(c)) {
        type = TLSRPT_POLICY_STS;
        sts_policy_lines(c->sts.policy, &policy, &mx);
    }
    const struct smtpc_info *in = c->sc ? smtpc_info(c->sc) : NULL;
    struct db_tlsrpt_session s = {
        .domain = c->dest->domain,
        .type = type,
        .policy_string = sb_str(&policy),
        .mx_hosts = sb_str(&mx),
        .result = result,
        .sending_ip = result != TLSRPT_SUCCESS && in && in->local_addr[0] ? in->local_addr : NULL,
        .receiving_mx = t->host,
        .receiving_ip = t->addr,
        .detail = result != TLSRPT_SUCCESS && detail ? detail : "",
        .count = 1,
    };
    reports_session(d->a->reports, &s);
    sb_free(&policy);
    sb_free(&mx);
}

/* The TLS-RPT result type of a certificate check that failed. */
static enum tlsrpt_result cert_result(const struct conn *c, bool chain_ok, long verify)
{
    if (c->plan.dane == TLSPOL_DANE_AUTH)
        return TLSRPT_VALIDATION_FAILURE;
    if (chain_ok)
        return TLSRPT_CERT_HOST_MISMATCH;
    if (verify == X509_V_ERR_CERT_HAS_EXPIRED || verify == X509_V_ERR_CERT_NOT_YET_VALID)
        return TLSRPT_CERT_EXPIRED;
    return TLSRPT_CERT_NOT_TRUSTED;
}

/* The outcome of an enforced MTA-STS policy on this host, in the seeds' words. */
static void sts_log_outcome(struct conn *c, bool ok, const char *reason)
{
    if (c->plan.sts != TLSPOL_STS_ENFORCE)
        return;
    if (ok)
        agent_log(c->d->a, MAILLOG_INFO, "MTA-STS policy for the domain (%s) Successful.",
                  c->dest->domain);
    else
        agent_log(c->d->a, MAILLOG_INFO, "MTA-STS policy for the domain (%s) Failed: %s",
                  c->dest->domain, reason);
}

/* Testing mode: what an enforce policy would have said about this session, logged and counted;
 * the mail goes as the TLS option decided. */
static void sts_testing_check(struct conn *c, const struct smtpc_info *in, X509 *cert)
{
    if (c->plan.sts != TLSPOL_STS_TESTING)
        return;
    const struct mx_target *t = &c->mx.targets[c->ti];
    struct tlspol_host shadow = c->plan;
    shadow.sts = TLSPOL_STS_ENFORCE;
    shadow.sts_skip = false;
    shadow.dane = TLSPOL_DANE_NONE;
    tlspol_plan(&shadow);
    char reason[300] = "";
    enum tlsrpt_result res = TLSRPT_SUCCESS;
    if (!sts_pol_allows_mx(c->sts.policy, t->host)) {
        snprintf(reason, sizeof reason, "%.250s does not match the policy", t->host);
        res = TLSRPT_VALIDATION_FAILURE;
    } else if (!in->tls.established) {
        snprintf(reason, sizeof reason, "STARTTLS not offered by %.250s", t->host);
        res = TLSRPT_STARTTLS_NOT_SUPPORTED;
    } else {
        bool chain_ok = in->tls.verify_result == X509_V_OK, name_ok = false;
        if (!tlspol_check_cert(&shadow, cert, chain_ok, &name_ok, NULL)) {
            if (chain_ok && !name_ok)
                snprintf(reason, sizeof reason, "certificate does not match MX host %.250s",
                         t->host);
            else
                snprintf(reason, sizeof reason, "verify error: %.250s", in->tls.verify_error);
            res = cert_result(c, chain_ok, in->tls.verify_result);
        }
    }
    if (res == TLSRPT_SUCCESS) {
        agent_log(c->d->a, MAILLOG_INFO,
                  "MTA-STS policy for the domain (%s) Successful (testing mode).", c->dest->domain);
    } else {
        agent_log(c->d->a, MAILLOG_INFO,
                  "MTA-STS policy for the domain (%s) Failed (testing mode, delivering anyway): "
                  "%s",
                  c->dest->domain, reason);
    }
    conn_report(c, res, reason);
}

static void tlsa_done(struct dns_answer *ans, void *arg);

/* Decides DANE and MTA-STS for target t into c->plan (before tlspol_plan). Returns false when
 * a TLSA lookup was started: the target is taken up again from its callback. */
static bool conn_plan_security(struct conn *c, const struct mx_target *t)
{
    struct delivery *d = c->d;
    if (c->routed || c->report)
        return true;
    if ((c->dane == CFG_DANE_OPPORTUNISTIC || c->dane == CFG_DANE_MANDATORY) && !t->literal) {
        size_t hi = t->host_index;
        /* an implicit MX stands on the domain's own address records (RFC 7672 §2.2.1) */
        bool mx_secure = c->mx.implicit ? t->addr_secure : t->mx_secure;
        /* the CNAME-expanded name first, then the host (RFC 7672 §2.2.2) */
        const char *bases[2];
        size_t nbases = dane_bases(t->host, mx_canon(&c->mx, t), t->addr_secure, bases);
        size_t tried = hi < MX_MAX_HOSTS ? c->tlsa_tried[hi] : 0;
        bool known = tried == nbases || (tried > 0 && dane_tlsa_settles(&c->tlsa[hi]));
        if (!known && hi < MX_MAX_HOSTS && dane_wants_tlsa(c->dane, mx_secure, t->addr_secure)) {
            char qname[MX_NAME_MAX + 16];
            snprintf(qname, sizeof qname, "_25._tcp.%s", bases[tried]);
            c->tlsa_q = dns_query(d->resolver, qname, DNS_T_TLSA, tlsa_done, c);
            if (c->tlsa_q)
                return false;
            /* out of memory: a failed lookup, which fails the host */
            dns_answer_clear(&c->tlsa[hi]);
            c->tlsa[hi].status = DNS_ERROR;
            c->tlsa_tried[hi] = (uint8_t)++tried;
            known = true;
        }
        struct dane_facts f = {
            .mode = c->dane,
            .mx_secure = mx_secure,
            .addr_secure = t->addr_secure,
            .tlsa = known ? &c->tlsa[hi] : NULL,
            .base = known ? bases[tried - 1] : NULL,
        };
        char reason[400];
        dane_decide(&f, &c->plan, reason, sizeof reason);
        if (c->plan.dane == TLSPOL_DANE_FAILED) {
            if (c->logged_host != hi + 1)
                agent_log(d->a, MAILLOG_INFO, "DCID 0 DANE FAILED for %s: %s", t->host, reason);
            enum tlsrpt_result res = TLSRPT_DANE_REQUIRED;
            if (known &&
                (dns_status_temporary(c->tlsa[hi].status) || c->tlsa[hi].status == DNS_BADNAME))
                res = TLSRPT_DNSSEC_INVALID;
            if (c->logged_host != hi + 1) {
                conn_report(c, res, reason);
                c->logged_host = hi + 1;
            }
            return true;
        }
        if (c->plan.dane != TLSPOL_DANE_AUTH) {
            /* the line names the connection that follows */
            c->next_dcid = agent_next_id(d->a, DB_QUEUE_DCID);
            agent_log(d->a, MAILLOG_INFO, "DCID %lld DANE: %s", (long long)c->next_dcid, reason);
        }
    }
    if (sts_applies(c) && c->plan.dane != TLSPOL_DANE_AUTH) {
        bool listed = sts_pol_allows_mx(c->sts.policy, t->host);
        if (c->sts.mode == STS_MODE_ENFORCE) {
            c->plan.sts = TLSPOL_STS_ENFORCE;
            c->plan.sts_skip = !listed;
        } else {
            c->plan.sts = TLSPOL_STS_TESTING;
        }
    }
    return true;
}

static void tlsa_done(struct dns_answer *ans, void *arg)
{
    struct conn *c = arg;
    c->tlsa_q = NULL;
    size_t hi = c->mx.targets[c->ti].host_index;
    dns_answer_move(&c->tlsa[hi], ans);
    c->tlsa_tried[hi]++;
    conn_next_target(c);
}

static void conn_next_target(struct conn *c)
{
    for (; c->ti < c->mx.ntargets; c->ti++) {
        const struct mx_target *t = &c->mx.targets[c->ti];
        /* Per-IP limit: an address at its limit is passed over for now. */
        if (c->eff.limit == CFG_LIMIT_MXIP) {
            struct ipcount *ic = ip_get(c->d, t->addr, false);
            if (ic && ic->n >= c->eff.concurrency) {
                c->ip_capped = true;
                continue;
            }
        }
        tlspol_host_init(&c->plan, c->eff.tls, c->dest->domain, t->host, t->literal, c->routed);
        if (!conn_plan_security(c, t))
            return; /* waiting for the TLSA answer */
        tlspol_plan(&c->plan);
        if (c->plan.skip) {
            if (c->plan.sts == TLSPOL_STS_ENFORCE && c->plan.sts_skip) {
                c->sts_skipped++;
                if (c->logged_host != t->host_index + 1)
                    agent_log(c->d->a, MAILLOG_INFO,
                              "DCID 0 MTA-STS: skipping %s, not listed in the policy", t->host);
            }
            c->logged_host = t->host_index + 1;
            if (c->hosts_tried == 0) {
                snprintf(c->last_status, sizeof c->last_status, "%s", c->plan.status);
                snprintf(c->last_reason, sizeof c->last_reason, "%s", c->plan.reason);
                c->last_cat[0] = '\0';
            }
            continue;
        }
        conn_connect(c);
        return;
    }
    if (c->ip_capped && c->hosts_tried == 0) {
        /* every usable address is busy up to its limit: nothing failed, the mail waits for a
         * connection to end (conn_end does not re-dispatch this one, or it would spin) */
        conn_end(c);
        return;
    }
    if (c->hosts_tried == 0 && c->sts_skipped > 0 && c->last_status[0] &&
        strstr(c->last_reason, "does not match the policy")) {
        /* an enforce policy left every host out (and DANE authenticated none of them) */
        snprintf(c->last_status, sizeof c->last_status, "4.7.5");
        snprintf(c->last_reason, sizeof c->last_reason, "no MX host of %.300s matches its policy",
                 c->dest->domain);
        snprintf(c->last_cat, sizeof c->last_cat, "MTA-STS");
        agent_log(c->d->a, MAILLOG_INFO, "MTA-STS policy for the domain (%s) Failed: %s",
                  c->dest->domain, c->last_reason);
    }
    conn_no_hosts_left(c);
}

/* ---- the MTA-STS engine ---- */

static void eng_log(void *arg, enum sts_log_level level, const char *text)
{
    struct delivery *d = arg;
    agent_log(d->a, (enum maillog_level)level, "%s", text);
}

static void stseng_free(struct stseng *x)
{
    if (x->e)
        sts_engine_free(x->e);
    if (x->f)
        sts_fetcher_free(x->f);
    free(x->key);
    free(x);
}

/* Frees the replaced engines nobody waits on (from a timer: never inside their callbacks). */
static void eng_reap(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct delivery *d = arg;
    d->eng_timer = NULL;
    for (struct stseng **pp = &d->old_engs; *pp;) {
        struct stseng *x = *pp;
        if (x->refs > 0) {
            pp = &x->next;
            continue;
        }
        *pp = x->next;
        stseng_free(x);
    }
}

static void eng_reap_soon(struct delivery *d)
{
    if (d->old_engs && !d->eng_timer)
        d->eng_timer = ev_timer_add(d->a->loop, 0, eng_reap, d);
}

/* The engine for the fetch configuration of snapshot s and resolver r: the CA lists of
 * certconfig CERTAUTHORITY, the SETUP proxy, --sts-fetch-timeout. NULL when none can be made
 * (logged): the domain then goes without MTA-STS for this attempt. */
static struct stseng *stseng_for(struct delivery *d, const struct cfg_snapshot *s,
                                 struct dns_resolver *r)
{
    char err[256];
    if (!d->stscache && !d->stscache_failed) {
        if (db_stscache_open(d->a->opt.datadir, &d->stscache, err, sizeof err) != DB_OK) {
            agent_log(d->a, MAILLOG_WARNING,
                      "MTA-STS policy cache cannot be opened (%s); policies are kept in memory",
                      err);
            d->stscache = NULL;
            d->stscache_failed = true;
        }
    }
    struct cert_ca_cfg ca;
    cert_ca_decode(cfg_snapshot_unit(s, CFG_KIND_CERT, CFG_UNIT_CA), &ca);
    const struct cfg_setup *setup = cfg_snapshot_setup(s);
    const char *proxy = setup ? setup->sts_proxy : "";
    const char *custom = ca.custom_enabled && ca.custom ? ca.custom : "";
    struct strbuf key = STRBUF_INIT;
    sb_printf(&key, "%p|%d|%s|%d|%d|", (void *)r, d->a->opt.sts_fetch_timeout, proxy,
              ca.system_enabled, ca.custom_enabled);
    sb_append(&key, custom);
    if (d->eng && strcmp(d->eng->key, sb_str(&key)) == 0) {
        sb_free(&key);
        cert_ca_free(&ca);
        return d->eng;
    }
    /* The trusted CAs: the system bundle as a file (libcurl caches it) unless the custom list is
     * on, then both lists joined in memory. */
    struct sts_fetch_config fc = {
        .proxy = proxy,
        .timeout_s = (unsigned)d->a->opt.sts_fetch_timeout,
    };
    struct strbuf pem = STRBUF_INIT;
    cert_ca_trust(&ca, &fc.ca_file, &pem);
    if (pem.len) {
        fc.ca_pem = sb_str(&pem);
        fc.ca_pem_len = pem.len;
    }
    struct stseng *x = xcalloc(1, sizeof *x);
    x->key = xstrdup(sb_str(&key));
    sb_free(&key);
    int rc = sts_fetcher_new(d->a->loop, r, &fc, &x->f, err, sizeof err);
    sb_free(&pem);
    cert_ca_free(&ca);
    if (rc != 0) {
        agent_log(d->a, MAILLOG_WARNING, "MTA-STS policy fetcher cannot be set up: %s", err);
        stseng_free(x);
        return d->eng;
    }
    struct sts_engine_config ec = {
        .loop = d->a->loop,
        .log = eng_log,
        .log_arg = d,
        .log_level = (enum sts_log_level)d->a->opt.log_level,
    };
    sts_engine_io_live(&ec.io, r, x->f);
    if (d->stscache)
        db_stsengine_store(d->stscache, &ec.store);
    if (sts_engine_new(&ec, &x->e, err, sizeof err) != 0) {
        agent_log(d->a, MAILLOG_WARNING, "MTA-STS engine cannot be set up: %s", err);
        stseng_free(x);
        return d->eng;
    }
    if (d->eng) {
        d->eng->next = d->old_engs;
        d->old_engs = d->eng;
        eng_reap_soon(d);
    }
    d->eng = x;
    return x;
}

static void conn_sts_cancel(struct conn *c)
{
    if (c->sts_wait)
        sts_engine_cancel(c->eng->e, c->sts_wait);
    c->sts_wait = NULL;
    if (c->eng) {
        c->eng->refs--;
        c->eng = NULL;
        eng_reap_soon(c->d);
    }
}

/* The policy is known: the hosts may be tried. */
static void conn_sts_ready(struct conn *c)
{
    c->have_sts = true;
    c->ti = 0;
    conn_next_target(c);
}

static void sts_cb(struct sts_result *res, void *arg)
{
    struct conn *c = arg;
    c->sts_wait = NULL;
    c->sts = *res; /* the reference moves to the connection */
    conn_sts_cancel(c);
    conn_sts_ready(c);
}

static void conn_sts_lookup(struct conn *c)
{
    struct delivery *d = c->d;
    struct stseng *x = stseng_for(d, c->snap, d->resolver);
    if (!x) {
        conn_sts_ready(c);
        return;
    }
    struct sts_wait *w = NULL;
    int rc = sts_engine_lookup(x->e, c->dest->domain, &c->sts, sts_cb, c, &w);
    if (rc == STS_ENGINE_PENDING) {
        c->eng = x;
        x->refs++;
        c->sts_wait = w;
        return;
    }
    conn_sts_ready(c);
}

static void mx_done(struct mx_result *res, void *arg)
{
    struct conn *c = arg;
    struct delivery *d = c->d;
    c->lookup = NULL;
    mx_result_move(&c->mx, res);
    if (c->mx.status == MX_OK) {
        c->ti = 0;
        if (c->sts_want && !c->have_sts) {
            conn_sts_lookup(c);
            return;
        }
        conn_next_target(c);
        return;
    }
    struct rcpt *r;
    size_t n = dest_take_all(d, c->dest, &r);
    if (n > 0) {
        /* Each message that bounces needs its own DSN: group by MID (they are in claim order). */
        fail_rcpts(d, &c->bounce, 0, NULL, r, n, c->mx.status == MX_PERMFAIL, c->mx.code, "000",
                   c->mx.reason, NULL);
    }
    rcpts_free(r, n);
    conn_end(c);
}

static bool route_exists(void *arg, const char *name)
{
    return cfg_snapshot_unit(arg, CFG_KIND_ROUTE, name) != NULL;
}

static struct dns_resolver *resolver_for(struct delivery *d, const struct cfg_snapshot *s)
{
    const char *body = cfg_snapshot_unit(s, CFG_KIND_DNS, CFG_UNIT_DNS);
    const char *cur = body ? body : "";
    if (d->resolver && d->dns_body && strcmp(d->dns_body, cur) == 0)
        return d->resolver;
    struct cfg_dns dc;
    cfg_dns_decode(body, &dc);
    struct dns_config cfg;
    cfg_dns_config(&dc, NULL, &cfg);
    struct dns_resolver *r = NULL;
    char err[256];
    if (dns_resolver_new(d->a->loop, &cfg, &r, err, sizeof err) != 0) {
        agent_log(d->a, MAILLOG_WARNING, "Cannot use the configured resolvers: %s", err);
        return d->resolver; /* keep the previous one, if any */
    }
    if (d->resolver) {
        /* lookups in flight still use the old one: keep it until the end */
        d->retired = xrealloc(d->retired, (d->nretired + 1) * sizeof *d->retired);
        d->retired[d->nretired++] = d->resolver;
    }
    d->resolver = r;
    free(d->dns_body);
    d->dns_body = xstrdup(cur);
    return r;
}

static SSL_CTX *ctx_for(struct delivery *d, const struct cfg_snapshot *s)
{
    int64_t v = cfg_snapshot_version(s);
    if (!d->ctx || d->ctx_version != v) {
        char err[256];
        SSL_CTX *ctx = smtpc_ctx_from_config(s, err, sizeof err);
        if (!ctx) {
            agent_log(d->a, MAILLOG_WARNING, "TLS set-up failed (configuration %lld): %s",
                      (long long)v, err);
            if (!d->ctx)
                return NULL;
        } else {
            if (d->ctx)
                SSL_CTX_free(d->ctx);
            d->ctx = ctx;
            d->ctx_version = v;
        }
    }
    SSL_CTX_up_ref(d->ctx);
    return d->ctx;
}

/* Whether r's message is one of the agent's TLS reports (looked up once, kept in r). */
static bool rcpt_is_report(struct delivery *d, struct rcpt *r)
{
    if (r->report < 0) {
        struct db_queue_msg m = {0};
        char err[256];
        r->report = 0;
        if (db_queue_message(d->a->queue, r->mid, &m, err, sizeof err) == DB_OK) {
            r->report = reports_is_report(m.icid, m.data, m.size) ? 1 : 0;
            db_queue_message_free(&m);
        }
    }
    return r->report > 0;
}

static void conn_start(struct delivery *d, struct dest *ds)
{
    struct conn *c = xcalloc(1, sizeof *c);
    c->d = d;
    c->dest = ds;
    c->snap = agent_snapshot(d->a);
    const char *entry = NULL;
    cfg_snapshot_dest(c->snap, ds->domain, &c->eff, &entry);
    bounce_profile(c->snap, &c->eff, &c->bounce);
    const struct cfg_setup *setup = cfg_snapshot_setup(c->snap);
    c->tls_alert = setup && setup->tls_alert;
    c->tls_only_failures = true;
    c->ctx = ctx_for(d, c->snap);
    c->state = C_RESOLVING;
    c->counted_starting = true;
    ds->starting++;
    ds->active++;
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->nconns++;

    struct dns_resolver *r = resolver_for(d, c->snap);
    if (!r) {
        snprintf(c->last_status, sizeof c->last_status, "4.4.3");
        snprintf(c->last_reason, sizeof c->last_reason, "no usable resolver");
        conn_no_hosts_left(c);
        return;
    }
    c->routed = cfg_route_match(ds->domain, route_exists, c->snap, c->route, sizeof c->route);
    if (c->routed) {
        struct cfg_route_hosts hosts;
        cfg_route_decode(cfg_snapshot_unit(c->snap, CFG_KIND_ROUTE, c->route), &hosts);
        struct mx_route_host rh[CFG_ROUTE_HOSTS_MAX];
        size_t n = mx_route_hosts(&hosts, rh);
        c->lookup = mx_resolve_route(d->a->loop, r, rh, n, c->eff.ip_sort, mx_done, c);
    } else {
        /* §3, §4: a routed domain gets neither; our TLS reports are never held back by them */
        bool tls = c->eff.tls != CFG_TLS_NO && c->eff.tls != CFG_TLS_DEFAULT;
        c->dane = tls ? c->eff.dane : CFG_DANE_NO;
        c->sts_want = tls && c->eff.sts == CFG_STS_ON;
        if ((c->sts_want || c->dane == CFG_DANE_OPPORTUNISTIC || c->dane == CFG_DANE_MANDATORY) &&
            dest_waiting(ds) > 0 && rcpt_is_report(d, &ds->wait[ds->wait_head])) {
            c->report = true;
            c->sts_want = false;
            c->dane = CFG_DANE_NO;
        }
        c->lookup = mx_resolve(d->a->loop, r, ds->domain, c->eff.ip_sort, 25, mx_done, c);
    }
}

/* Whether the recipient-rate window lets n more recipients go; how many may. */
static size_t rate_room(struct conn *c)
{
    struct dest *ds = c->dest;
    if (c->eff.rcpt_limit <= 0)
        return (size_t)-1;
    int64_t now = (int64_t)time(NULL);
    int64_t win = (int64_t)(c->eff.rcpt_minutes > 0 ? c->eff.rcpt_minutes : 1) * 60;
    if (now - ds->win_start >= win) {
        ds->win_start = now;
        ds->win_count = 0;
    }
    return c->eff.rcpt_limit > ds->win_count ? (size_t)(c->eff.rcpt_limit - ds->win_count) : 0;
}

static void win_timer_cb(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct dest *ds = arg;
    ds->win_timer = NULL;
    /* the delivery pointer is not kept in dest: the runner re-dispatches every dest */
}

static void conn_quit(struct conn *c)
{
    c->state = C_QUITTING;
    if (c->sc)
        smtpc_quit(c->sc);
    else
        conn_end(c);
}

static void conn_take_message(struct conn *c)
{
    struct delivery *d = c->d;
    bool stale = cfg_snapshot_version(c->snap) != cfg_snapshot_version(d->a->snap);
    if (d->draining || stale || c->msgs >= (unsigned)c->eff.msgs_per_conn) {
        conn_quit(c);
        return;
    }
    size_t room = rate_room(c);
    if (room == 0) {
        if (!c->dest->win_timer) {
            int64_t win = (int64_t)(c->eff.rcpt_minutes > 0 ? c->eff.rcpt_minutes : 1) * 60;
            int64_t left = c->dest->win_start + win - (int64_t)time(NULL);
            c->dest->win_timer = ev_timer_add(d->a->loop, (uint64_t)(left > 0 ? left : 1) * 1000,
                                              win_timer_cb, c->dest);
        }
        conn_quit(c);
        return;
    }
    if ((c->report || c->sts_want || c->dane == CFG_DANE_OPPORTUNISTIC ||
         c->dane == CFG_DANE_MANDATORY) &&
        dest_waiting(c->dest) > 0 &&
        rcpt_is_report(d, &c->dest->wait[c->dest->wait_head]) != c->report) {
        /* the next message needs the other kind of connection (with or without MTA-STS and
         * DANE): this one ends, a new one decides again */
        conn_quit(c);
        return;
    }
    for (;;) {
        c->nbatch = dest_take_message(d, c->dest, room, &c->batch);
        if (c->nbatch == 0) {
            conn_quit(c);
            return;
        }
        char err[256];
        if (db_queue_message(d->a->queue, c->batch[0].mid, &c->msg, err, sizeof err) == DB_OK) {
            c->have_msg = true;
            break;
        }
        /* gone from the queue (or unreadable): nothing to send for it */
        agent_log(d->a, MAILLOG_WARNING, "MID %lld cannot be read from the queue: %s",
                  (long long)c->batch[0].mid, err);
        rcpts_free(c->batch, c->nbatch);
        c->batch = NULL;
        c->nbatch = 0;
    }
    if (c->eff.rcpt_limit > 0)
        c->dest->win_count += (long)c->nbatch;
    c->rcpt_addrs = xcalloc(c->nbatch, sizeof *c->rcpt_addrs);
    c->replies = xcalloc(c->nbatch, sizeof *c->replies);
    for (size_t i = 0; i < c->nbatch; i++)
        c->rcpt_addrs[i] = c->batch[i].addr;
    memset(&c->smsg, 0, sizeof c->smsg);
    c->smsg.from = c->msg.sender ? c->msg.sender : "";
    c->smsg.rcpt = c->rcpt_addrs;
    c->smsg.nrcpt = c->nbatch;
    c->smsg.data = c->msg.data;
    c->smsg.len = c->msg.size;
    c->smsg.rcpt_reply = c->replies;
    char rids[256];
    rid_list(c->batch, c->nbatch, rids, sizeof rids);
    agent_log(d->a, MAILLOG_INFO, "Delivery start DCID %lld MID %lld to RID [%s]",
              (long long)c->dcid, (long long)c->msg.mid, rids);
    c->state = C_SENDING;
    if (!smtpc_send(c->sc, &c->smsg)) {
        conn_quit(c);
        return;
    }
}

/* The replies of a sent message: each recipient delivered, deferred or bounced. */
static void conn_message_sent(struct conn *c)
{
    struct delivery *d = c->d;
    const struct smtpc_msg *m = &c->smsg;
    int64_t now = (int64_t)time(NULL);
    bool data_ok = m->data_reply.code / 100 == 2;
    struct rcpt *ok = xcalloc(c->nbatch, sizeof *ok);
    size_t nok = 0;
    struct db_queue_outcome *out = xcalloc(c->nbatch, sizeof *out);
    size_t nout = 0;
    char remote[MX_NAME_MAX];
    snprintf(remote, sizeof remote, "%s", c->mx.targets[c->ti].host);
    struct rcpt *bad = xcalloc(c->nbatch, sizeof *bad);
    struct failure *why = xcalloc(c->nbatch, sizeof *why);
    char(*codes)[8] = xcalloc(c->nbatch, sizeof *codes);
    char(*statuses)[16] = xcalloc(c->nbatch, sizeof *statuses);
    size_t nbad = 0;
    for (size_t i = 0; i < c->nbatch; i++) {
        const struct smtpc_reply *r = &c->replies[i];
        const struct smtpc_reply *fr = r;
        if (m->mail.code / 100 != 2)
            fr = &m->mail;
        else if (r->code / 100 == 2 && !data_ok)
            fr = &m->data_reply;
        if (fr->code / 100 == 2) {
            ok[nok++] = c->batch[i];
            continue;
        }
        snprintf(codes[nbad], sizeof codes[nbad], "%03d", fr->code % 1000);
        snprintf(statuses[nbad], sizeof statuses[nbad], "%s",
                 fr->enh[0] ? fr->enh : (fr->code / 100 == 5 ? "5.0.0" : "4.0.0"));
        why[nbad] =
            (struct failure){fr->code / 100 == 5, statuses[nbad], codes[nbad], fr->text, NULL};
        bad[nbad++] = c->batch[i];
    }
    /* one call: the bounced recipients of this message share one DSN */
    fail_rcpts_v(d, &c->bounce, c->dcid, &c->msg, bad, why, nbad, remote);
    free(bad);
    free(why);
    free(codes);
    free(statuses);
    if (nok > 0) {
        char rids[256];
        rid_list(ok, nok, rids, sizeof rids);
        agent_log(d->a, MAILLOG_INFO, "Message done DCID %lld MID %lld to RID [%s]",
                  (long long)c->dcid, (long long)c->msg.mid, rids);
        for (size_t i = 0; i < nok; i++) {
            agent_log(d->a, MAILLOG_INFO, "MID %lld RID [%d] Response '%s'", (long long)c->msg.mid,
                      ok[i].rid, m->data_reply.text);
            out[nout].mid = ok[i].mid;
            out[nout].rid = ok[i].rid;
            out[nout].kind = DB_QUEUE_OUT_DELIVERED;
            out[nout].when = now;
            out[nout].reason = m->data_reply.text;
            nout++;
            d->delivered++;
        }
        char err[256];
        if (db_queue_record(d->a->queue, out, nout, finished_cb, d, err, sizeof err) != DB_OK)
            agent_log(d->a, MAILLOG_WARNING, "Queue database error recording outcomes: %s", err);
    }
    free(ok);
    free(out);
    /* every recipient has its outcome: nothing to release */
    rcpts_free(c->batch, c->nbatch);
    c->batch = NULL;
    c->nbatch = 0;
    conn_clear_message(c);
    c->msgs++;
    c->state = C_READY;
    conn_take_message(c);
}

/* After the TLS decision on a connection: the DANE and MTA-STS lines, the testing-mode check,
 * the TLS-RPT count. */
static void conn_tls_outcome(struct conn *c, enum tlspol_action act, const struct smtpc_info *in)
{
    struct delivery *d = c->d;
    const struct mx_target *t = &c->mx.targets[c->ti];
    bool failed = act == TLSPOL_HOST_FAILED;
    X509 *cert = in->tls.established ? smtpc_peer_cert(c->sc) : NULL;
    bool chain_ok = in->tls.verify_result == X509_V_OK;
    if (c->plan.dane == TLSPOL_DANE_AUTH && in->tls.established) {
        if (!failed)
            agent_log(d->a, MAILLOG_INFO, "DCID %lld DANE SUCCESS for %s (TLSA %s)",
                      (long long)c->dcid, t->host,
                      in->tls.dane_match[0] ? in->tls.dane_match : "?");
        else
            agent_log(d->a, MAILLOG_INFO,
                      "DCID %lld DANE FAILED for %s: no TLSA record matches the certificate",
                      (long long)c->dcid, t->host);
    }
    if (c->plan.sts == TLSPOL_STS_TESTING && c->sts.policy) {
        sts_testing_check(c, in, cert);
        return;
    }
    sts_log_outcome(c, !failed, c->plan.reason);
    if (!c->plan.starttls)
        return; /* TLS No: nothing was tried, nothing to report */
    enum tlsrpt_result res = TLSRPT_SUCCESS;
    if (!in->tls.established) {
        if (!failed && c->plan.dane == TLSPOL_DANE_NONE && c->plan.sts == TLSPOL_STS_NONE &&
            c->no_starttls)
            return; /* the Preferred fallback: its failed handshake was counted already */
        res = in->tls.offered && !in->tls.refused ? TLSRPT_VALIDATION_FAILURE
                                                  : TLSRPT_STARTTLS_NOT_SUPPORTED;
    } else if (failed) {
        res = cert_result(c, chain_ok, in->tls.verify_result);
    }
    conn_report(c, res, failed ? c->plan.reason : in->tls.verify_error);
}

/* Greeting, EHLO and TLS are done: apply §2. */
static void conn_ready(struct conn *c)
{
    struct delivery *d = c->d;
    const struct smtpc_info *in = smtpc_info(c->sc);
    const struct mx_target *t = &c->mx.targets[c->ti];
    long long dcid = (long long)c->dcid;
    enum tlspol_action act;
    if (!c->plan.starttls || c->no_starttls) {
        act = TLSPOL_GO_PLAIN;
    } else if (in->tls.established) {
        X509 *cert = smtpc_peer_cert(c->sc);
        bool chain_ok = in->tls.verify_result == X509_V_OK, name_ok = false;
        char matched[TLSPOL_NAME_MAX] = "";
        bool ok = tlspol_check_cert(&c->plan, cert, chain_ok, &name_ok, matched);
        act = tlspol_event(&c->plan, ok ? TLSPOL_EV_CERT_OK : TLSPOL_EV_CERT_FAILED,
                           chain_ok && !name_ok, in->tls.verify_error);
        if (act == TLSPOL_GO_TLS) {
            /* the name that matched, else the certificate's first name: one line, short */
            char names[1024];
            if (matched[0]) {
                snprintf(names, sizeof names, "subjectAltName:dNSName=%s", matched);
            } else {
                tlspol_cert_names(cert, names, sizeof names);
                char *comma = strchr(names, ',');
                if (comma)
                    *comma = '\0';
            }
            agent_log(d->a, MAILLOG_INFO, "DCID %lld TLS success protocol %s cipher %s %s", dcid,
                      in->tls.protocol, in->tls.cipher, names);
            if (!ok && c->plan.verify)
                agent_log(d->a, MAILLOG_INFO,
                          "DCID %lld TLS verify failed: %s; delivering over TLS anyway (%s)", dcid,
                          chain_ok ? "peer cert does not match domain" : in->tls.verify_error,
                          cfg_tls_label(c->plan.option));
        } else {
            if (chain_ok && !name_ok)
                agent_log(d->a, MAILLOG_INFO,
                          "DCID %lld TLS deferring: verify error: peer cert does not match "
                          "domain %s",
                          dcid, c->dest->domain);
            else
                agent_log(d->a, MAILLOG_INFO, "DCID %lld TLS deferring: verify error: %s", dcid,
                          in->tls.verify_error);
            agent_log(d->a, MAILLOG_INFO,
                      "DCID %lld TLS was required but could not be successfully negotiated", dcid);
        }
    } else if (in->tls.refused) {
        act = tlspol_event(&c->plan, TLSPOL_EV_STARTTLS_REFUSED, false, in->tls.error);
        if (act == TLSPOL_HOST_FAILED)
            agent_log(d->a, MAILLOG_INFO,
                      "DCID %lld TLS was required but could not be successfully negotiated", dcid);
        else
            agent_log(d->a, MAILLOG_INFO, "DCID %lld %s; delivering in the clear (%s)", dcid,
                      in->tls.error, cfg_tls_label(c->plan.option));
    } else {
        act = tlspol_event(&c->plan, TLSPOL_EV_NO_STARTTLS, false, NULL);
        if (act == TLSPOL_HOST_FAILED)
            agent_log(d->a, MAILLOG_INFO,
                      "DCID %lld TLS was required but the server did not offer STARTTLS", dcid);
        else
            agent_log(d->a, MAILLOG_INFO,
                      "DCID %lld STARTTLS not offered by %s; delivering in the clear (%s)", dcid,
                      t->host, cfg_tls_label(c->plan.option));
    }
    conn_tls_outcome(c, act, in);
    if (act == TLSPOL_HOST_FAILED) {
        host_failed(c, c->plan.status, c->plan.reason, true);
        return;
    }
    struct dest *ds = c->dest;
    c->state = C_READY;
    ds->proven = true;
    set_ready(c);
    conn_take_message(c); /* c stays alive: with a session open, quitting is asynchronous */
    /* the first connection of a destination is up: more may open now */
    dispatch(d, ds);
}

static void conn_failed(struct conn *c)
{
    struct delivery *d = c->d;
    const struct smtpc_info *in = smtpc_info(c->sc);
    const struct mx_target *t = &c->mx.targets[c->ti];
    if (c->state == C_QUITTING) {
        conn_end(c);
        return;
    }
    if (in->error == SMTPC_ERR_TLS && in->stage == SMTPC_ST_HANDSHAKE) {
        enum tlspol_action act =
            tlspol_event(&c->plan, TLSPOL_EV_HANDSHAKE_FAILED, false, in->tls.error);
        if (act == TLSPOL_RETRY_PLAIN) {
            conn_report(c, TLSRPT_VALIDATION_FAILURE, in->tls.error);
            agent_log(d->a, MAILLOG_INFO,
                      "DCID %lld TLS failed after STARTTLS; retrying %s without TLS (Preferred)",
                      (long long)c->dcid, t->host);
            conn_drop_smtp(c);
            c->no_starttls = true;
            conn_connect(c);
            return;
        }
        agent_log(d->a, MAILLOG_INFO,
                  "DCID %lld TLS was required but could not be successfully negotiated",
                  (long long)c->dcid);
        sts_log_outcome(c, false, c->plan.reason);
        conn_report(c, TLSRPT_VALIDATION_FAILURE, c->plan.reason);
        host_failed(c, c->plan.status, c->plan.reason, true);
        return;
    }
    if (c->state == C_SENDING && c->nbatch > 0) {
        /* lost in the middle of a message: its recipients are deferred, the rest wait */
        char reason[REASON_MAX];
        snprintf(reason, sizeof reason, "%.255s: %.250s", t->host, in->detail);
        fail_rcpts(d, &c->bounce, c->dcid, &c->msg, c->batch, c->nbatch, false, "4.4.2", "000",
                   reason, t->host);
        rcpts_free(c->batch, c->nbatch);
        c->batch = NULL;
        c->nbatch = 0;
        conn_clear_message(c);
        conn_end(c);
        return;
    }
    char reason[REASON_MAX];
    const char *status = "4.4.1";
    if (in->error == SMTPC_ERR_REPLY && in->last.code) {
        snprintf(reason, sizeof reason, "%.200s said: %d %.290s", t->host, in->last.code,
                 in->last.text);
        status = in->last.enh[0] ? in->last.enh : "4.4.1";
        if (status[0] == '5')
            status = "4.4.1"; /* a host that refuses us is a host failure, not a bounce */
    } else {
        snprintf(reason, sizeof reason, "%.200s (%s): %.250s", t->host, t->addr, in->detail);
    }
    agent_log(d->a, MAILLOG_INFO, "DCID %lld host %s failed: %s", (long long)c->dcid, t->host,
              in->detail);
    host_failed(c, status, reason, false);
}

static void smtp_event(struct smtpc *sc, enum smtpc_event ev, void *arg)
{
    struct conn *c = arg;
    (void)sc;
    const struct smtpc_info *in = smtpc_info(c->sc);
    switch (ev) {
    case SMTPC_CONNECTED:
        agent_log(c->d->a, MAILLOG_INFO, "New SMTP DCID %lld interface %s address %s port %u",
                  (long long)c->dcid, in->local_addr, c->mx.targets[c->ti].addr,
                  c->mx.targets[c->ti].port);
        return;
    case SMTPC_READY:
        conn_ready(c);
        return;
    case SMTPC_SENT:
        conn_message_sent(c);
        return;
    case SMTPC_FAILED:
        conn_failed(c);
        return;
    case SMTPC_CLOSED:
        conn_end(c);
        return;
    }
}

/* ---- the runner ---- */

/* Opens connections for a destination while it has work and room. */
static void dispatch(struct delivery *d, struct dest *ds)
{
    if (d->draining)
        return;
    size_t waiting = dest_waiting(ds);
    if (waiting == 0)
        return;
    struct cfg_dest eff;
    cfg_snapshot_dest(d->a->snap, ds->domain, &eff, NULL);
    int limit = eff.concurrency > 0 ? eff.concurrency : 1;
    if (eff.limit == CFG_LIMIT_MXIP)
        limit = CFG_CONCURRENCY_MAX; /* counted per address when connecting */
    /* One connection finds out whether the destination works before others follow it; once
     * one has, the others open together (with one message per connection, opening them one
     * handshake at a time would keep the concurrency near one). */
    if (ds->starting > 0 && !ds->proven)
        return;
    if (ds->win_timer)
        return; /* recipient rate window full */
    int want = (int)(waiting < (size_t)limit ? waiting : (size_t)limit);
    if (ds->active == 0)
        want = 1;
    while (ds->active < want && dest_waiting(ds) > (size_t)(ds->active - ds->starting)) {
        conn_start(d, ds);
        if (ds->starting > 0 && !ds->proven)
            break;
    }
}

static void schedule(struct delivery *d, uint64_t ms);

static void run_cb(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct delivery *d = arg;
    d->run_timer = NULL;
    if (d->draining)
        return;
    int64_t now = (int64_t)time(NULL);
    struct db_queue_rcpt *v = xcalloc(CLAIM_BATCH, sizeof *v);
    size_t n = 0;
    char err[256];
    while (d->waiting < MAX_WAITING) {
        if (db_queue_claim(d->a->queue, now, v, CLAIM_BATCH, &n, err, sizeof err) != DB_OK) {
            agent_log(d->a, MAILLOG_WARNING, "Queue database error claiming recipients: %s", err);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            struct dest *ds = dest_get(d, v[i].domain, true);
            dest_push(ds, &v[i]);
            d->waiting++;
        }
        if (n < CLAIM_BATCH)
            break;
    }
    free(v);
    for (size_t b = 0; b < DEST_BUCKETS; b++) {
        struct dest *ds = d->buckets[b];
        while (ds) {
            struct dest *next = ds->next;
            dispatch(d, ds);
            dest_maybe_free(d, ds); /* idle ones whose rate window is over */
            ds = next;
        }
    }
    schedule(d, RUN_INTERVAL_MS);
}

static void schedule(struct delivery *d, uint64_t ms)
{
    if (d->draining)
        return;
    if (d->run_timer) {
        if (ms > 0)
            return;
        ev_timer_cancel(d->a->loop, d->run_timer);
    }
    d->run_timer = ev_timer_add(d->a->loop, ms, run_cb, d);
}

/* ---- delivery.h ---- */

struct delivery *delivery_new(struct agent *agent, char *err, size_t errlen)
{
    struct delivery *d = xcalloc(1, sizeof *d);
    d->a = agent;
    if (!resolver_for(d, agent->snap)) {
        snprintf(err, errlen, "cannot start the DNS resolver");
        free(d);
        return NULL;
    }
    d->ctx_version = -1;
    schedule(d, 0);
    return d;
}

void delivery_kick(struct delivery *d)
{
    schedule(d, 0);
}

long delivery_now(struct delivery *d)
{
    int64_t changed = 0;
    char err[256];
    if (db_queue_all_due(d->a->queue, (int64_t)time(NULL), &changed, err, sizeof err) != DB_OK) {
        agent_log(d->a, MAILLOG_WARNING, "Queue database error (delivernow): %s", err);
        return 0;
    }
    /* recipients already waiting in memory for a full rate window are not held back by it */
    for (size_t b = 0; b < DEST_BUCKETS; b++)
        for (struct dest *ds = d->buckets[b]; ds; ds = ds->next)
            if (ds->win_timer) {
                ev_timer_cancel(d->a->loop, ds->win_timer);
                ds->win_timer = NULL;
            }
    schedule(d, 0);
    return (long)changed;
}

void delivery_config_changed(struct delivery *d)
{
    /* New connections pick the new snapshot up by themselves; connections under the old one stop
     * after their message (conn_take_message). Waiting work may now be allowed: run. */
    schedule(d, 0);
}

static void drain_check(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct delivery *d = arg;
    d->drain_timer = NULL;
    if (d->nconns > 0 || !d->drain_done)
        return;
    void (*done)(void *) = d->drain_done;
    d->drain_done = NULL;
    done(d->drain_arg);
}

void delivery_drain(struct delivery *d, void (*done)(void *arg), void *arg)
{
    d->draining = true;
    d->drain_done = done;
    d->drain_arg = arg;
    if (d->run_timer) {
        ev_timer_cancel(d->a->loop, d->run_timer);
        d->run_timer = NULL;
    }
    /* Waiting recipients go back to the queue untouched; connections finish their message. */
    char err[256];
    for (size_t b = 0; b < DEST_BUCKETS; b++) {
        for (struct dest *ds = d->buckets[b]; ds; ds = ds->next) {
            struct rcpt *r;
            size_t n = dest_take_all(d, ds, &r);
            for (size_t i = 0; i < n; i++)
                db_queue_release(d->a->queue, r[i].mid, r[i].rid, err, sizeof err);
            rcpts_free(r, n);
        }
    }
    /* Connections that are not sending are closed now; the others quit after their message. */
    struct conn *c = d->conns;
    while (c) {
        struct conn *next = c->next;
        if (c->state == C_RESOLVING || c->state == C_CONNECTING) {
            conn_end(c);
        } else if (c->state == C_READY) {
            conn_quit(c);
        }
        c = next;
    }
    if (d->nconns == 0 && !d->drain_timer)
        d->drain_timer = ev_timer_add(d->a->loop, 0, drain_check, d);
}

static const char *state_name(enum conn_state s)
{
    switch (s) {
    case C_RESOLVING:
        return "resolving";
    case C_CONNECTING:
        return "connecting";
    case C_READY:
        return "ready";
    case C_SENDING:
        return "sending";
    case C_QUITTING:
        return "closing";
    }
    return "?";
}

void delivery_status(struct delivery *d, struct strbuf *out)
{
    sb_printf(out, "Delivery: %d active connection%s, %zu recipient%s waiting in memory\n",
              d->nconns, d->nconns == 1 ? "" : "s", d->waiting, d->waiting == 1 ? "" : "s");
    sb_printf(out, "Delivered %llu, deferred %llu, bounced %llu, DSNs %llu, connections %llu\n",
              (unsigned long long)d->delivered, (unsigned long long)d->deferred,
              (unsigned long long)d->bounced, (unsigned long long)d->dsns,
              (unsigned long long)d->connections);
    for (struct conn *c = d->conns; c; c = c->next) {
        const char *host = c->mx.ntargets > c->ti ? c->mx.targets[c->ti].host : "-";
        const char *addr = c->mx.ntargets > c->ti ? c->mx.targets[c->ti].addr : "-";
        sb_printf(out, "DCID %lld %s %s %s %s TLS %s, %u message%s\n", (long long)c->dcid,
                  c->dest->domain, host, addr, state_name(c->state),
                  c->sc && smtpc_info(c->sc)->tls.established ? smtpc_info(c->sc)->tls.protocol
                                                              : "none",
                  c->msgs, c->msgs == 1 ? "" : "s");
    }
}

void delivery_free(struct delivery *d)
{
    if (!d)
        return;
    d->draining = true;
    d->drain_done = NULL;
    while (d->conns)
        conn_end(d->conns);
    if (d->run_timer)
        ev_timer_cancel(d->a->loop, d->run_timer);
    if (d->drain_timer)
        ev_timer_cancel(d->a->loop, d->drain_timer);
    char err[256];
    for (size_t b = 0; b < DEST_BUCKETS; b++) {
        struct dest *ds = d->buckets[b];
        while (ds) {
            struct dest *next = ds->next;
            for (size_t i = ds->wait_head; i < ds->nwait; i++) {
                db_queue_release(d->a->queue, ds->wait[i].mid, ds->wait[i].rid, err, sizeof err);
                free(ds->wait[i].addr);
            }
            if (ds->win_timer)
                ev_timer_cancel(d->a->loop, ds->win_timer);
            free(ds->wait);
            free(ds);
            ds = next;
        }
    }
    while (d->ips) {
        struct ipcount *x = d->ips;
        d->ips = x->next;
        free(x);
    }
    if (d->eng_timer)
        ev_timer_cancel(d->a->loop, d->eng_timer);
    while (d->old_engs) {
        struct stseng *x = d->old_engs;
        d->old_engs = x->next;
        stseng_free(x);
    }
    if (d->eng)
        stseng_free(d->eng);
    if (d->stscache)
        db_stscache_close(d->stscache);
    if (d->resolver)
        dns_resolver_free(d->resolver);
    for (size_t i = 0; i < d->nretired; i++)
        dns_resolver_free(d->retired[i]);
    free(d->retired);
    free(d->dns_body);
    if (d->ctx)
        SSL_CTX_free(d->ctx);
    free(d);
}
