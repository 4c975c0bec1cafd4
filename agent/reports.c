/* reports.c - TLS reporting in the agent: session counts and daily reports (reports.h).
 *
 * A day's run starts one job per domain that has counts and no report sent: the _smtp._tls TXT
 * lookup, then the report to each rua. mailto: reports are queued at once; https: reports are
 * POSTed (core/sts_fetch.h, with the MTA-STS fetch's resolvers, CA lists, proxy and time limit),
 * and the job waits for every POST to end. The report is marked sent once every rua was tried,
 * whatever the outcome: a receiver that refuses a report does not get it again every hour. The
 * resolver and the fetcher live while jobs run; they are freed from a timer, never from inside
 * one of their own callbacks. */
#include "reports.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "delivery.h"
#include "cfg_dns.h"
#include "dns.h"
#include "strbuf.h"
#include "sts_fetch.h"
#include "tlscert.h"
#include "tlsrpt.h"

#define HOUR_MS (3600u * 1000u)
#define KEEP_DAYS 7

struct job;

/* One POST of a job's report. */
struct post {
    struct job *j;
    struct sts_fetch *h;
    char url[TLSRPT_URI_MAX];
    struct post *next;
};

struct job {
    struct reports *r;
    struct dns_query *q;
    char domain[254];
    char day[11];
    struct post *posts; /* POSTs still running; the job ends when none is left */
    struct job *next;
};

struct reports {
    struct agent *a;
    struct db_tlsrpt *db;
    struct ev_timer *timer;
    struct dns_resolver *dns;    /* while jobs run */
    struct sts_fetcher *fetcher; /* while jobs run, made at the first https: rua */
    struct ev_timer *cleanup;    /* frees dns and fetcher once no job is left */
    struct job *jobs;
    time_t last_warning;
};

static void warn_store(struct reports *r, const char *err)
{
    time_t now = time(NULL);
    if (now - r->last_warning < 3600)
        return;
    r->last_warning = now;
    agent_log(r->a, MAILLOG_WARNING, "TLS report counts cannot be written: %s", err);
}

void reports_session(struct reports *r, const struct db_tlsrpt_session *s)
{
    char today[11], err[256];
    struct db_tlsrpt_session c = *s;
    if (!c.day) {
        tlsrpt_format_day(time(NULL), today);
        c.day = today;
    }
    if (db_tlsrpt_add(r->db, &c, err, sizeof err) != DB_OK)
        warn_store(r, err);
}

bool reports_is_report(int64_t icid, const char *data, size_t size)
{
    if (icid != 0)
        return false; /* only messages the agent made itself: a client cannot forge one */
    /* The header block ends at the first empty line. */
    const char *end = data + size;
    for (const char *p = data; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n == 0 || (n == 1 && p[0] == '\r'))
            return false;
        if (n > 18 && strncasecmp(p, "TLS-Report-Domain:", 18) == 0)
            return true;
        if (!nl)
            break;
        p = nl + 1;
    }
    return false;
}

/* Base64 in 76-character lines (RFC 2045). */
static void base64_lines(struct strbuf *out, const char *data, size_t len)
{
    unsigned char line[80];
    for (size_t off = 0; off < len; off += 57) {
        size_t n = len - off < 57 ? len - off : 57;
        int k = EVP_EncodeBlock(line, (const unsigned char *)data + off, (int)n);
        sb_append_len(out, (const char *)line, (size_t)k);
        sb_append(out, "\r\n");
    }
}

/* The mailto: target: the address, without "mailto:" and any "?query". */
static bool mailto_address(const char *uri, char *out, size_t outlen)
{
    const char *p = uri + 7;
    size_t n = strcspn(p, "?");
    if (n == 0 || n >= outlen || !memchr(p, '@', n))
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return strspn(out, " <>\"\r\n") == 0 && !strpbrk(out, " <>\"\r\n");
}

static void header_date(char *out, size_t outlen)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(out, outlen, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* Queues the report for one mailto: address (RFC 8460 §5.3). */
static void send_mail(struct reports *r, const struct job *j, const char *uri, const char *json,
                      const struct tlsrpt_meta *meta, const char *sender)
{
    struct agent *a = r->a;
    char to[512], date[64], boundary[40], fname[800];
    unsigned char rnd[8];
    if (!mailto_address(uri, to, sizeof to)) {
        agent_log(a, MAILLOG_WARNING, "TLS report for the domain (%s): unusable address %s",
                  j->domain, uri);
        return;
    }
    RAND_bytes(rnd, sizeof rnd);
    snprintf(boundary, sizeof boundary, "tlsrpt-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    header_date(date, sizeof date);
    snprintf(fname, sizeof fname, "%s!%s!%lld!%lld!%s.json", meta->organization, j->domain,
             (long long)meta->start, (long long)meta->end, j->day);
    struct strbuf m = STRBUF_INIT;
    sb_printf(&m,
              "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\nSubject: Report Domain: %s Submitter: %s "
              "Report-ID: <%s>\r\nMessage-ID: <%s>\r\nTLS-Report-Domain: %s\r\n"
              "TLS-Report-Submitter: %s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; "
              "report-type=\"tlsrpt\"; boundary=\"%s\"\r\n\r\n",
              sender, to, date, j->domain, meta->organization, meta->report_id, meta->report_id,
              j->domain, meta->organization, boundary);
    sb_printf(&m,
              "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThis is the daily SMTP "
              "TLS report (RFC 8460) for %s from %s, for %s (UTC).\r\n\r\n",
              boundary, j->domain, meta->organization, j->day);
    sb_printf(&m,
              "--%s\r\nContent-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: "
              "base64\r\nContent-Disposition: attachment; filename=\"%s\"\r\n\r\n",
              boundary, fname);
    base64_lines(&m, json, strlen(json));
    sb_printf(&m, "--%s--\r\n", boundary);

    int64_t mid = agent_next_id(a, DB_QUEUE_MID);
    const char *rcpt[] = {to};
    struct db_queue_new msg = {.mid = mid,
                               .icid = 0,
                               .received = (int64_t)time(NULL),
                               .sender = sender,
                               .rcpt = rcpt,
                               .n_rcpt = 1,
                               .data = sb_str(&m),
                               .size = m.len};
    char err[256];
    if (mid == 0 || db_queue_store(a->queue, &msg, 1, err, sizeof err) != DB_OK) {
        agent_log(a, MAILLOG_WARNING, "TLS report for the domain (%s) could not be queued",
                  j->domain);
    } else {
        agent_log(a, MAILLOG_INFO, "TLS report for the domain (%s) queued as MID %lld for <%s>",
                  j->domain, (long long)mid, to);
        if (a->delivery)
            delivery_kick(a->delivery);
    }
    sb_free(&m);
}

/* The resolver and the fetcher are freed here, from the loop, when no job needs them: never from
 * inside one of their callbacks. */
static void cleanup(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct reports *r = arg;
    r->cleanup = NULL;
    if (r->jobs)
        return;
    sts_fetcher_free(r->fetcher);
    r->fetcher = NULL;
    if (r->dns)
        dns_resolver_free(r->dns);
    r->dns = NULL;
}

/* The fetcher for https: reports, made as delivery makes the MTA-STS one: the CA lists of
 * certconfig CERTAUTHORITY, the SETUP proxy, --sts-fetch-timeout. NULL when it cannot be made. */
static struct sts_fetcher *report_fetcher(struct reports *r, char *err, size_t errlen)
{
    if (r->fetcher)
        return r->fetcher;
    const struct cfg_snapshot *s = r->a->snap;
    struct cert_ca_cfg ca;
    cert_ca_decode(cfg_snapshot_unit(s, CFG_KIND_CERT, CFG_UNIT_CA), &ca);
    struct sts_fetch_config fc = {
        .proxy = cfg_snapshot_setup(s)->sts_proxy,
        .timeout_s = (unsigned)r->a->opt.sts_fetch_timeout,
    };
    struct strbuf pem = STRBUF_INIT;
    cert_ca_trust(&ca, &fc.ca_file, &pem);
    if (pem.len) {
        fc.ca_pem = sb_str(&pem);
        fc.ca_pem_len = pem.len;
    }
    if (sts_fetcher_new(r->a->loop, r->dns, &fc, &r->fetcher, err, errlen) != 0)
        r->fetcher = NULL;
    sb_free(&pem);
    cert_ca_free(&ca);
    return r->fetcher;
}

static void job_finish(struct job *j);

static void post_done(const struct sts_fetch_result *res, void *arg)
{
    struct post *p = arg;
    struct job *j = p->j;
    struct agent *a = j->r->a;
    if (res->status == STS_FETCH_OK)
        agent_log(a, MAILLOG_INFO, "TLS report for the domain (%s) posted to %s", j->domain,
                  p->url);
    else
        agent_log(a, MAILLOG_WARNING,
                  "TLS report for the domain (%s) could not be posted to %s: failed due to %s",
                  j->domain, p->url, res->reason);
    for (struct post **pp = &j->posts; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    free(p);
    if (!j->posts)
        job_finish(j);
}

/* Starts the POST of the report to one https: address (RFC 8460 §5.4). */
static void send_post(struct reports *r, struct job *j, const char *uri, const char *json)
{
    struct agent *a = r->a;
    char err[256];
    struct sts_fetcher *f = report_fetcher(r, err, sizeof err);
    if (!f) {
        agent_log(a, MAILLOG_WARNING,
                  "TLS report for the domain (%s) could not be posted to %s: failed due to %s",
                  j->domain, uri, err);
        return;
    }
    struct post *p = xcalloc(1, sizeof *p);
    p->j = j;
    snprintf(p->url, sizeof p->url, "%s", uri);
    agent_log(a, MAILLOG_DEBUG, "TLS report for the domain (%s): POST %s", j->domain, uri);
    p->h = sts_fetch_post(f, uri, json, strlen(json), "application/tlsrpt+json", post_done, p);
    if (!p->h) {
        agent_log(a, MAILLOG_WARNING, "TLS report for the domain (%s): unusable address %s",
                  j->domain, uri);
        free(p);
        return;
    }
    p->next = j->posts;
    j->posts = p;
}

static void job_done(struct job *j)
{
    struct reports *r = j->r;
    for (struct job **p = &r->jobs; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            break;
        }
    }
    free(j);
    if (!r->jobs && (r->dns || r->fetcher) && !r->cleanup)
        r->cleanup = ev_timer_add(r->a->loop, 0, cleanup, r);
}

/* Every rua was tried: the report counts as sent. */
static void job_finish(struct job *j)
{
    char err[256];
    if (db_tlsrpt_mark_sent(j->r->db, j->day, j->domain, err, sizeof err) != DB_OK)
        warn_store(j->r, err);
    job_done(j);
}

static void record_done(struct dns_answer *ans, void *arg)
{
    struct job *j = arg;
    struct reports *r = j->r;
    struct agent *a = r->a;
    char err[256];
    j->q = NULL;
    if (dns_status_temporary(ans->status)) {
        /* Not marked sent: the next hourly run tries again. */
        agent_log(a, MAILLOG_INFO, "TLS report for the domain (%s) waits: DNS %s for _smtp._tls",
                  j->domain, dns_status_name(ans->status));
        job_done(j);
        return;
    }
    struct tlsrpt_record rec;
    bool found = false;
    char reason[128];
    for (size_t i = 0; i < ans->nrr && !found; i++)
        if (ans->rr[i].type == DNS_T_TXT)
            found = tlsrpt_record_parse((const char *)ans->rr[i].txt.data, ans->rr[i].txt.len, &rec,
                                        reason, sizeof reason);
    if (!found) {
        agent_log(a, MAILLOG_INFO, "No TLS-RPT record for the domain (%s); report not sent",
                  j->domain);
        job_finish(j);
        return;
    }
    struct tlsrpt_policy *pol;
    size_t n;
    if (db_tlsrpt_report(r->db, j->day, j->domain, &pol, &n, err, sizeof err) != DB_OK) {
        job_done(j);
        return;
    }
    const struct cfg_setup *setup = cfg_snapshot_setup(a->snap);
    const char *host = agent_hostname(a);
    char id[600], sender[300];
    snprintf(id, sizeof id, "%s_%s@%s", j->day, j->domain, host);
    if (setup->tlsrpt_contact[0])
        snprintf(sender, sizeof sender, "%s", setup->tlsrpt_contact);
    else
        snprintf(sender, sizeof sender, "postmaster@%s", host);
    int64_t start = 0;
    tlsrpt_parse_day(j->day, &start);
    struct tlsrpt_meta meta = {.organization = setup->tlsrpt_org[0] ? setup->tlsrpt_org : host,
                               .contact = sender,
                               .report_id = id,
                               .start = start,
                               .end = start + 86400};
    struct strbuf json = STRBUF_INIT;
    tlsrpt_report_json(&meta, pol, n, &json);
    db_tlsrpt_policies_free(pol, n);
    for (size_t i = 0; i < rec.nrua; i++) {
        if (strncasecmp(rec.rua[i], "mailto:", 7) == 0)
            send_mail(r, j, rec.rua[i], sb_str(&json), &meta, sender);
        else
            send_post(r, j, rec.rua[i], sb_str(&json)); /* the record keeps only https: else */
    }
    sb_free(&json); /* each POST holds its own copy */
    if (!j->posts)
        job_finish(j);
}

struct collect {
    struct reports *r;
    const char *day;
};

static void start_job(void *arg, const char *domain)
{
    struct collect *c = arg;
    struct reports *r = c->r;
    for (struct job *j = r->jobs; j; j = j->next)
        if (strcmp(j->domain, domain) == 0 && strcmp(j->day, c->day) == 0)
            return; /* already on its way */
    if (!r->dns) {
        struct cfg_dns dc;
        struct dns_config cfg;
        char err[256];
        cfg_dns_decode(cfg_snapshot_unit(r->a->snap, CFG_KIND_DNS, CFG_UNIT_DNS), &dc);
        cfg_dns_config(&dc, NULL, &cfg);
        if (dns_resolver_new(r->a->loop, &cfg, &r->dns, err, sizeof err) != 0) {
            agent_log(r->a, MAILLOG_WARNING, "TLS reports wait: %s", err);
            return;
        }
    }
    struct job *j = xcalloc(1, sizeof *j);
    j->r = r;
    snprintf(j->domain, sizeof j->domain, "%s", domain);
    snprintf(j->day, sizeof j->day, "%s", c->day);
    j->next = r->jobs;
    r->jobs = j;
    char name[300];
    snprintf(name, sizeof name, "_smtp._tls.%s", domain);
    agent_log(r->a, MAILLOG_DEBUG, "DNS query: Q(%s, 'TXT')", name);
    j->q = dns_query(r->dns, name, DNS_T_TXT, record_done, j);
    if (!j->q)
        job_done(j);
}

struct count_arg {
    struct collect c;
    long n;
    struct strbuf *names;
};

static void start_counted(void *arg, const char *domain)
{
    struct count_arg *ca = arg;
    if (ca->names)
        sb_printf(ca->names, "%s%s", ca->n ? ", " : "", domain);
    ca->n++;
    start_job(&ca->c, domain);
}

long reports_run_day(struct reports *r, const char *day, struct strbuf *names, char *err,
                     size_t errlen)
{
    int64_t start;
    if (!tlsrpt_parse_day(day, &start)) {
        snprintf(err, errlen, "not a day (YYYY-MM-DD): %s", day);
        return -1;
    }
    if (!cfg_snapshot_setup(r->a->snap)->tlsrpt) {
        snprintf(err, errlen, "TLS reports are not enabled (destconfig SETUP)");
        return -1;
    }
    char d[11];
    tlsrpt_format_day(start, d);
    struct count_arg ca = {{r, d}, 0, names};
    if (db_tlsrpt_unsent(r->db, d, start_counted, &ca, err, errlen) != DB_OK)
        return -1;
    return ca.n;
}

void reports_run(struct reports *r)
{
    char day[11], old[11], err[256];
    time_t now = time(NULL);
    tlsrpt_format_day(now - 86400, day);
    tlsrpt_format_day(now - KEEP_DAYS * 86400, old);
    db_tlsrpt_prune(r->db, old, err, sizeof err);
    if (!cfg_snapshot_setup(r->a->snap)->tlsrpt)
        return;
    if (reports_run_day(r, day, NULL, err, sizeof err) < 0)
        warn_store(r, err);
}

static void tick(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    struct reports *r = arg;
    (void)t;
    r->timer = ev_timer_add(loop, HOUR_MS, tick, r);
    reports_run(r);
}

struct reports *reports_new(struct agent *a, char *err, size_t errlen)
{
    struct reports *r = xcalloc(1, sizeof *r);
    r->a = a;
    if (db_tlsrpt_open(a->opt.datadir, &r->db, err, errlen) != DB_OK) {
        free(r);
        return NULL;
    }
    /* The first look a minute after start, then hourly. */
    r->timer = ev_timer_add(a->loop, 60u * 1000u, tick, r);
    return r;
}

void reports_free(struct reports *r)
{
    if (!r)
        return;
    ev_timer_cancel(r->a->loop, r->timer);
    ev_timer_cancel(r->a->loop, r->cleanup);
    /* The fetcher first: it cancels the POSTs (no callbacks) and uses the resolver. */
    sts_fetcher_free(r->fetcher);
    while (r->jobs) {
        struct job *j = r->jobs;
        r->jobs = j->next;
        dns_query_cancel(j->q);
        while (j->posts) {
            struct post *p = j->posts;
            j->posts = p->next;
            free(p);
        }
        free(j);
    }
    if (r->dns)
        dns_resolver_free(r->dns);
    db_tlsrpt_close(r->db);
    free(r);
}
