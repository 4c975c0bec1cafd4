/* sts_engine.c - the MTA-STS engine (see sts_engine.h for what it promises).
 *
 * State per domain (struct node, in a chained hash map keyed by the lower-case domain): the cache
 * entry as sts_cache.h sees it, the cached policy as a shared struct sts_pol, the last TXT outcome
 * with the time until which it stands, and the flight in the air, if any.
 *
 * A flight is one TXT lookup and, when the cache rules ask for it, one fetch. Lookup flights
 * end with one result that every waiter gets (even a max_age 0 policy, used once: re-deciding per
 * waiter would start a new fetch for each). Refresh flights end without a result: their waiters,
 * who joined because the TXT answer had gone stale, are decided again against the new state.
 * Waiters are delivered one at a time from a detached list, so a callback may look up again,
 * cancel another waiter, or start new flights.
 */
#include "sts_engine.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct flight;

struct sts_wait {
    struct sts_wait *prev, *next;
    struct flight *fl;
    sts_engine_cb cb;
    void *arg;
};

struct node {
    struct node *hnext;
    uint64_t hash;
    struct sts_cache_entry entry; /* as stored; has_policy false when nothing cached */
    struct sts_pol *pol;          /* the cached policy (entry.has_policy), else NULL */
    struct sts_txt_outcome txt;   /* the last TXT outcome */
    int64_t txt_at;               /* when it came: it stands for txt_recheck_s seconds */
    bool txt_known;
    struct flight *fl;
    char domain[]; /* lower case, no trailing dot */
};

struct flight {
    struct sts_engine *e;
    struct node *node;
    struct flight *prev, *next; /* the engine's list of flights */
    bool refresh;
    void *txtq, *fetchq;
    char fetch_id[STS_ID_MAX + 1];
    struct sts_wait *head, *tail; /* waiters */
};

struct sts_engine {
    struct sts_engine_config cfg;
    struct node **buckets;
    size_t nbuckets, count;
    struct flight *flights;
    unsigned refreshing; /* refresh flights in the air */
    struct ev_timer *refresh_timer;
    struct sts_policy *scratch; /* one parse buffer: the engine is single-threaded */
    char *text;                 /* one policy text buffer for store reads */
    uint64_t rng;
    struct sts_engine_stats stats;
};

/* ---- policies ---- */

struct sts_pol *sts_pol_ref(struct sts_pol *p)
{
    if (p)
        p->refs++;
    return p;
}

void sts_pol_unref(struct sts_pol *p)
{
    if (p && --p->refs == 0)
        free(p);
}

const char *sts_pol_mx_first(const struct sts_pol *p)
{
    return p && p->mx_count ? p->mx : NULL;
}

const char *sts_pol_mx_next(const struct sts_pol *p, const char *prev)
{
    const char *n = prev + strlen(prev) + 1;
    return n < p->mx + p->mx_len ? n : NULL;
}

bool sts_pol_allows_mx(const struct sts_pol *p, const char *host)
{
    for (const char *m = sts_pol_mx_first(p); m; m = sts_pol_mx_next(p, m))
        if (sts_mx_match(m, host))
            return true;
    return false;
}

void sts_result_release(struct sts_result *r)
{
    if (!r)
        return;
    sts_pol_unref(r->policy);
    r->policy = NULL;
}

static struct sts_pol *pol_new(const struct sts_policy *p, const char *id)
{
    struct sts_pol *n = malloc(sizeof *n + p->mx_len + 1);
    if (!n)
        return NULL;
    n->refs = 1;
    n->mode = p->mode;
    n->max_age = p->max_age;
    snprintf(n->id, sizeof n->id, "%s", id ? id : "");
    n->mx_count = p->mx_count;
    n->mx_len = p->mx_len;
    memcpy(n->mx, p->mx, p->mx_len);
    n->mx[p->mx_len] = '\0';
    return n;
}

/* ---- logging, time, randomness ---- */

static void logf_(struct sts_engine *e, enum sts_log_level lv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logf_(struct sts_engine *e, enum sts_log_level lv, const char *fmt, ...)
{
    if (!e->cfg.log || lv > e->cfg.log_level)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    e->cfg.log(e->cfg.log_arg, lv, buf);
}

static int64_t now_s(struct sts_engine *e)
{
    return e->cfg.clock ? e->cfg.clock(e->cfg.clock_arg) : (int64_t)time(NULL);
}

static uint32_t jitter(struct sts_engine *e)
{
    if (e->cfg.random)
        return e->cfg.random(e->cfg.random_arg);
    /* xorshift64*: jitter only spreads refreshes, it guards nothing */
    e->rng ^= e->rng >> 12;
    e->rng ^= e->rng << 25;
    e->rng ^= e->rng >> 27;
    return (uint32_t)((e->rng * 2685821657736338717ull) >> 32);
}

/* ---- the map ---- */

static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static struct node *map_find(struct sts_engine *e, const char *domain, uint64_t h)
{
    for (struct node *n = e->buckets[h & (e->nbuckets - 1)]; n; n = n->hnext)
        if (n->hash == h && strcmp(n->domain, domain) == 0)
            return n;
    return NULL;
}

static bool map_grow(struct sts_engine *e)
{
    size_t nb = e->nbuckets * 2;
    struct node **b = calloc(nb, sizeof *b);
    if (!b)
        return false;
    for (size_t i = 0; i < e->nbuckets; i++) {
        struct node *n = e->buckets[i];
        while (n) {
            struct node *next = n->hnext;
            n->hnext = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(e->buckets);
    e->buckets = b;
    e->nbuckets = nb;
    return true;
}

/* Reads the domain's entry from the store into a new node. */
static struct node *node_load(struct sts_engine *e, const char *domain, uint64_t h)
{
    size_t len = strlen(domain);
    struct node *n = calloc(1, sizeof *n + len + 1);
    if (!n)
        return NULL;
    memcpy(n->domain, domain, len + 1);
    n->hash = h;
    if (e->cfg.store.get) {
        size_t tlen = 0;
        int rc =
            e->cfg.store.get(e->cfg.store.arg, domain, &n->entry, e->text, STS_POLICY_MAX, &tlen);
        if (rc < 0) {
            logf_(e, STS_LOG_WARNING, "MTA-STS cache store read failed for the domain (%s)",
                  domain);
            memset(&n->entry, 0, sizeof n->entry);
        } else if (rc > 0) {
            memset(&n->entry, 0, sizeof n->entry);
        } else if (n->entry.has_policy) {
            if (tlen > STS_POLICY_MAX ||
                sts_policy_parse(e->text, tlen, e->scratch, NULL, 0) != STS_POLICY_VALID ||
                !(n->pol = pol_new(e->scratch, n->entry.id))) {
                /* A stored text that no longer parses is as good as no entry: fetch again. */
                n->entry.has_policy = false;
            } else {
                /* The stored max_age (clamped when fetched) is the one that counts. */
                n->pol->max_age = n->entry.max_age;
            }
        }
    }
    if (e->count + 1 > e->nbuckets)
        map_grow(e);
    size_t b = h & (e->nbuckets - 1);
    n->hnext = e->buckets[b];
    e->buckets[b] = n;
    e->count++;
    return n;
}

/* ---- persisting decisions ---- */

/* Applies a decision to the node: the entry, the cached policy, the store. fetched is the policy
 * object of a successful fetch (text its body), or NULL. */
static void apply_decision(struct sts_engine *e, struct node *n, const struct sts_cache_decision *d,
                           struct sts_pol *fetched, const char *text, size_t len)
{
    if (!d->changed)
        return;
    bool had = n->entry.has_policy;
    n->entry = d->entry;
    if (!n->entry.has_policy) {
        sts_pol_unref(n->pol);
        n->pol = NULL;
    } else if (d->apply == STS_APPLY_FETCHED && fetched) {
        sts_pol_unref(n->pol);
        n->pol = sts_pol_ref(fetched);
        n->pol->max_age = n->entry.max_age;
    } else if (!had || !n->pol) {
        n->entry.has_policy = false; /* cannot happen: a policy appears only by a fetch */
    }
    if (e->cfg.store.save &&
        e->cfg.store.save(e->cfg.store.arg, n->domain, d,
                          d->apply == STS_APPLY_FETCHED ? text : NULL, len) < 0)
        logf_(e, STS_LOG_WARNING, "MTA-STS cache store write failed for the domain (%s)",
              n->domain);
}

/* ---- results ---- */

static void result_none(struct sts_result *r, const char *why)
{
    memset(r, 0, sizeof *r);
    r->mode = STS_MODE_NONE;
    r->why = why;
}

static void result_pol(struct sts_result *r, struct sts_pol *p, bool fetched, const char *why)
{
    memset(r, 0, sizeof *r);
    r->policy = sts_pol_ref(p);
    r->mode = p ? p->mode : STS_MODE_NONE;
    r->fetched = fetched;
    r->why = why;
}

static void log_result(struct sts_engine *e, const char *domain, const struct sts_result *r)
{
    if (r->policy && r->mode != STS_MODE_NONE)
        logf_(e, STS_LOG_INFO, "Applying MTA-STS policy for the domain (%s)", domain);
    else
        logf_(e, STS_LOG_DEBUG, "No MTA-STS policy applied for the domain (%s): %s", domain,
              r->policy ? "the policy's mode is none" : r->why);
}

/* ---- flights ---- */

static void flight_txt_done(const struct sts_txt_answer *a, void *ctx);
static void flight_fetch_done(const struct sts_fetch_result *res, void *ctx);
static void finish_flight(struct flight *fl, const struct sts_result *res);

static struct flight *flight_new(struct sts_engine *e, struct node *n, bool refresh)
{
    struct flight *fl = calloc(1, sizeof *fl);
    if (!fl)
        return NULL;
    fl->e = e;
    fl->node = n;
    fl->refresh = refresh;
    n->fl = fl;
    fl->next = e->flights;
    if (e->flights)
        e->flights->prev = fl;
    e->flights = fl;
    e->stats.flights++;
    if (refresh) {
        e->refreshing++;
        e->stats.refreshes++;
    }
    return fl;
}

static void flight_unlink(struct flight *fl)
{
    struct sts_engine *e = fl->e;
    if (fl->prev)
        fl->prev->next = fl->next;
    else if (e->flights == fl)
        e->flights = fl->next;
    if (fl->next)
        fl->next->prev = fl->prev;
    fl->prev = fl->next = NULL;
    if (fl->node && fl->node->fl == fl)
        fl->node->fl = NULL;
    e->stats.flights--;
    if (fl->refresh)
        e->refreshing--;
}

static void waiter_add(struct flight *fl, struct sts_wait *w)
{
    w->fl = fl;
    w->next = NULL;
    w->prev = fl->tail;
    if (fl->tail)
        fl->tail->next = w;
    else
        fl->head = w;
    fl->tail = w;
}

static void waiter_remove(struct sts_wait *w)
{
    struct flight *fl = w->fl;
    if (w->prev)
        w->prev->next = w->next;
    else
        fl->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        fl->tail = w->prev;
    w->prev = w->next = NULL;
}

static void start_txt(struct flight *fl)
{
    struct sts_engine *e = fl->e;
    char qname[STS_NAME_MAX + 16];
    snprintf(qname, sizeof qname, "_mta-sts.%s", fl->node->domain);
    logf_(e, STS_LOG_DEBUG, "DNS query: Q(%s, 'TXT')", qname);
    e->stats.txt_queries++;
    fl->txtq = e->cfg.io.txt_start(e->cfg.io.txt_arg, qname, flight_txt_done, fl);
    if (!fl->txtq) {
        struct sts_txt_answer a = {DNS_ERROR, NULL, 0, "cannot start the query"};
        flight_txt_done(&a, fl);
    }
}

static void start_fetch(struct flight *fl, const char *id)
{
    struct sts_engine *e = fl->e;
    snprintf(fl->fetch_id, sizeof fl->fetch_id, "%s", id);
    logf_(e, STS_LOG_DEBUG, "Fetch MTA-STS policy for the domain(%s)", fl->node->domain);
    if (e->cfg.io.proxied)
        logf_(e, STS_LOG_DEBUG, "Requesting MTA-STS policy fetch via proxy");
    e->stats.fetches++;
    fl->fetchq =
        e->cfg.io.fetch_start(e->cfg.io.fetch_arg, fl->node->domain, flight_fetch_done, fl);
    if (!fl->fetchq) {
        struct sts_fetch_result r;
        memset(&r, 0, sizeof r);
        r.status = STS_FETCH_ERROR;
        snprintf(r.reason, sizeof r.reason, "an internal failure (cannot start the fetch)");
        flight_fetch_done(&r, fl);
    }
}

/* What the cache rules say for a lookup with the node's TXT outcome. Returns true with *r filled
 * when the answer is known now; false when a fetch for fetch_id is needed. */
static bool decide(struct sts_engine *e, struct node *n, int64_t now, struct sts_result *r,
                   char fetch_id[STS_ID_MAX + 1])
{
    struct sts_cache_decision d;
    sts_cache_lookup(&n->entry, &n->txt, now, &d);
    apply_decision(e, n, &d, NULL, NULL, 0);
    switch (d.step) {
    case STS_CACHE_APPLY_CACHED:
        logf_(e, STS_LOG_DEBUG, "Valid cache entry found for the domain (%s).", n->domain);
        result_pol(r, n->pol, false, d.why);
        return true;
    case STS_CACHE_BACKOFF:
        if (d.apply == STS_APPLY_CACHED && n->pol)
            result_pol(r, n->pol, false, d.why);
        else
            result_none(r, d.why);
        return true;
    case STS_CACHE_FETCH:
        snprintf(fetch_id, STS_ID_MAX + 1, "%s", d.fetch_id);
        return false;
    default:
        result_none(r, d.why);
        return true;
    }
}

static void record_txt(struct sts_engine *e, struct node *n, const struct sts_txt_answer *a,
                       int64_t now)
{
    char reason[STS_REASON_MAX] = "";
    struct sts_record rec;
    memset(&n->txt, 0, sizeof n->txt);
    if (dns_status_temporary(a->status) || a->status == DNS_BADNAME) {
        n->txt.status = STS_TXT_TEMPFAIL;
        logf_(e, STS_LOG_DEBUG, "MTA-STS TXT lookup failed for domain(%s): %s", n->domain,
              a->detail && *a->detail ? a->detail : dns_status_name(a->status));
    } else if (a->status != DNS_OK) {
        n->txt.status = STS_TXT_NONE;
        logf_(e, STS_LOG_DEBUG, "No MTA-STS TXT record for domain(%s)", n->domain);
    } else {
        n->txt.status = sts_record_select(a->records, a->n, &rec, reason, sizeof reason);
        if (n->txt.status == STS_TXT_VALID) {
            snprintf(n->txt.id, sizeof n->txt.id, "%s", rec.id);
            logf_(e, STS_LOG_INFO, "Successfully fetched MTA-STS TXT record for domain(%s)",
                  n->domain);
        } else if (n->txt.status == STS_TXT_INVALID) {
            logf_(e, STS_LOG_INFO, "Invalid MTA-STS TXT record for domain(%s): %s", n->domain,
                  reason);
        } else {
            logf_(e, STS_LOG_DEBUG, "No MTA-STS TXT record for domain(%s)", n->domain);
        }
    }
    n->txt_known = true;
    n->txt_at = now;
}

/* A refresh flight's TXT answer is in: the refresh rules decide. */
static void refresh_after_txt(struct flight *fl, int64_t now)
{
    struct sts_engine *e = fl->e;
    struct node *n = fl->node;
    struct sts_cache_decision d;
    sts_cache_refresh(&n->entry, &n->txt, now, jitter(e), &d);
    apply_decision(e, n, &d, NULL, NULL, 0);
    if (d.warn)
        logf_(e, STS_LOG_WARNING,
              "Failed to refresh MTA-STS policy for the domain (%s): %s; the cached policy stays "
              "in use until it expires",
              n->domain, d.why);
    if (d.step == STS_CACHE_FETCH)
        start_fetch(fl, d.fetch_id);
    else
        finish_flight(fl, NULL);
}

static void flight_txt_done(const struct sts_txt_answer *a, void *ctx)
{
    struct flight *fl = ctx;
    struct sts_engine *e = fl->e;
    struct node *n = fl->node;
    int64_t now = now_s(e);
    fl->txtq = NULL;
    record_txt(e, n, a, now);
    if (fl->refresh) {
        refresh_after_txt(fl, now);
        return;
    }
    struct sts_result r;
    char id[STS_ID_MAX + 1];
    if (decide(e, n, now, &r, id)) {
        finish_flight(fl, &r);
        sts_result_release(&r);
    } else {
        start_fetch(fl, id);
    }
}

static void flight_fetch_done(const struct sts_fetch_result *res, void *ctx)
{
    struct flight *fl = ctx;
    struct sts_engine *e = fl->e;
    struct node *n = fl->node;
    int64_t now = now_s(e);
    fl->fetchq = NULL;

    struct sts_pol *fetched = NULL;
    char reason[STS_POLICY_REASON_MAX + 64];
    const char *why = res->reason;
    if (res->status == STS_FETCH_OK) {
        char preason[STS_POLICY_REASON_MAX] = "";
        if (sts_policy_parse(res->body, res->body_len, e->scratch, preason, sizeof preason) !=
            STS_POLICY_VALID) {
            snprintf(reason, sizeof reason, "an invalid policy (%s)", preason);
            why = reason;
        } else {
            fetched = pol_new(e->scratch, fl->fetch_id);
            if (!fetched)
                why = "out of memory";
        }
    }
    if (!fetched) {
        e->stats.fetch_failures++;
        logf_(e, STS_LOG_DEBUG, "STS policy fetch request failed due to %s., for the domain %s",
              why, n->domain);
        logf_(e, STS_LOG_INFO, "Failed to fetch MTA-STS policy for the domain (%s)", n->domain);
    } else {
        logf_(e, STS_LOG_DEBUG,
              "Fetched MTA-STS policy for the domain (%s): id %s, mode %s, max_age %u, %u mx",
              n->domain, fl->fetch_id, sts_mode_name(fetched->mode), (unsigned)fetched->max_age,
              (unsigned)fetched->mx_count);
    }

    struct sts_cache_decision d;
    sts_cache_fetched(&n->entry, fl->fetch_id, fetched ? e->scratch : NULL, now, jitter(e), &d);
    apply_decision(e, n, &d, fetched, res->body, res->body_len);
    if (d.warn)
        logf_(e, STS_LOG_WARNING,
              "Failed to refresh MTA-STS policy for the domain (%s): the fetch failed due to %s; "
              "the cached policy stays in use until it expires",
              n->domain, why);

    if (fl->refresh) {
        sts_pol_unref(fetched);
        finish_flight(fl, NULL);
        return;
    }
    struct sts_result r;
    if (d.apply == STS_APPLY_FETCHED && fetched)
        result_pol(&r, fetched, true, d.why);
    else if (d.apply == STS_APPLY_CACHED && n->pol)
        result_pol(&r, n->pol, false, d.why);
    else
        result_none(&r, d.why);
    sts_pol_unref(fetched);
    finish_flight(fl, &r);
    sts_result_release(&r);
}

static enum sts_engine_rc lookup_node(struct sts_engine *e, struct node *n, struct sts_result *out,
                                      sts_engine_cb cb, void *arg, struct sts_wait *w,
                                      struct sts_wait **wait);

/* Ends a flight: detaches it from its node, then hands res (lookup flights) to every waiter, or
 * decides again for each (refresh flights, res NULL). */
static void finish_flight(struct flight *fl, const struct sts_result *res)
{
    struct sts_engine *e = fl->e;
    struct node *n = fl->node;
    flight_unlink(fl);
    while (fl->head) {
        struct sts_wait *w = fl->head;
        waiter_remove(w);
        if (res) {
            struct sts_result r = *res;
            sts_pol_ref(r.policy);
            log_result(e, n->domain, &r);
            sts_engine_cb cb = w->cb;
            void *arg = w->arg;
            free(w);
            cb(&r, arg);
        } else {
            struct sts_result r;
            /* The waiter struct moves to the new flight when one is needed. */
            if (lookup_node(e, n, &r, w->cb, w->arg, w, NULL) != STS_ENGINE_PENDING) {
                sts_engine_cb cb = w->cb;
                void *arg = w->arg;
                free(w);
                cb(&r, arg);
            }
        }
    }
    free(fl);
}

/* Decides for one caller on node n. w, when not NULL, is a waiter struct to reuse. */
static enum sts_engine_rc lookup_node(struct sts_engine *e, struct node *n, struct sts_result *out,
                                      sts_engine_cb cb, void *arg, struct sts_wait *w,
                                      struct sts_wait **wait)
{
    bool own = w == NULL; /* a waiter given by finish_flight() stays the caller's to free */
    int64_t now = now_s(e);
    /* A clock that went back does not stretch a TXT answer. A refresh in the air does not hold
     * callers up while the TXT answer stands: the cached policy is still unexpired. */
    bool txt_stands =
        n->txt_known && now >= n->txt_at && now - n->txt_at < (int64_t)e->cfg.txt_recheck_s;
    if (txt_stands && (!n->fl || n->fl->refresh)) {
        char id[STS_ID_MAX + 1];
        if (decide(e, n, now, out, id)) {
            log_result(e, n->domain, out);
            e->stats.answered++;
            return STS_ENGINE_DONE;
        }
        if (n->fl)
            goto join; /* the refresh will have fetched: decide again after it */
        /* A fetch is needed: a lookup flight that starts at the fetch. */
        if (!w && !(w = calloc(1, sizeof *w)))
            goto oom;
        struct flight *fl = flight_new(e, n, false);
        if (!fl) {
            if (own)
                free(w);
            goto oom;
        }
        w->cb = cb;
        w->arg = arg;
        waiter_add(fl, w);
        if (wait)
            *wait = w;
        start_fetch(fl, id);
        return STS_ENGINE_PENDING;
    }
join:
    if (!w && !(w = calloc(1, sizeof *w)))
        goto oom;
    w->cb = cb;
    w->arg = arg;
    if (n->fl) {
        e->stats.joined++;
        waiter_add(n->fl, w);
    } else {
        struct flight *fl = flight_new(e, n, false);
        if (!fl) {
            if (own)
                free(w);
            goto oom;
        }
        waiter_add(fl, w);
        if (wait)
            *wait = w;
        start_txt(fl);
        return STS_ENGINE_PENDING;
    }
    if (wait)
        *wait = w;
    return STS_ENGINE_PENDING;
oom:
    result_none(out, "out of memory");
    return STS_ENGINE_ERROR;
}

/* Lower case, one trailing dot removed; false when it cannot be a policy domain (IP literals
 * included: their last label is all digits, or they are bracketed). */
static bool normalize(const char *domain, char out[STS_NAME_MAX + 1])
{
    size_t len = domain ? strlen(domain) : 0;
    if (len && domain[len - 1] == '.')
        len--;
    if (len == 0 || len > STS_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)domain[i]);
    out[len] = '\0';
    return sts_mx_host_check(out, len) == NULL;
}

enum sts_engine_rc sts_engine_lookup(struct sts_engine *e, const char *domain,
                                     struct sts_result *out, sts_engine_cb cb, void *arg,
                                     struct sts_wait **wait)
{
    char key[STS_NAME_MAX + 1];
    e->stats.lookups++;
    if (wait)
        *wait = NULL;
    if (!normalize(domain, key)) {
        result_none(out, "not a domain name (an IP literal has no policy)");
        e->stats.answered++;
        return STS_ENGINE_DONE;
    }
    uint64_t h = hash_of(key);
    struct node *n = map_find(e, key, h);
    if (!n && !(n = node_load(e, key, h))) {
        result_none(out, "out of memory");
        return STS_ENGINE_ERROR;
    }
    memset(out, 0, sizeof *out);
    return lookup_node(e, n, out, cb, arg, NULL, wait);
}

void sts_engine_cancel(struct sts_engine *e, struct sts_wait *w)
{
    (void)e;
    if (!w)
        return;
    waiter_remove(w);
    free(w);
}

/* ---- refresh ---- */

static void schedule_refresh(struct sts_engine *e);

void sts_engine_refresh_now(struct sts_engine *e)
{
    if (!e->cfg.store.due)
        return;
    unsigned room =
        e->cfg.refresh_parallel > e->refreshing ? e->cfg.refresh_parallel - e->refreshing : 0;
    if (room == 0)
        return;
    /* Ask for more than there is room for: some due domains may have a flight already. */
    size_t max = (size_t)room * 2 + 8, got = 0;
    char(*due)[STS_NAME_MAX + 1] = calloc(max, sizeof *due);
    if (!due)
        return;
    if (e->cfg.store.due(e->cfg.store.arg, now_s(e), due, max, &got) < 0) {
        logf_(e, STS_LOG_WARNING, "MTA-STS cache store failed listing the refreshes due");
        got = 0;
    }
    for (size_t i = 0; i < got && room > 0; i++) {
        char key[STS_NAME_MAX + 1];
        if (!normalize(due[i], key))
            continue;
        uint64_t h = hash_of(key);
        struct node *n = map_find(e, key, h);
        if (!n && !(n = node_load(e, key, h)))
            break;
        if (n->fl)
            continue;
        int64_t now = now_s(e);
        if (!sts_cache_entry_fresh(&n->entry, now) || now < n->entry.refresh_at ||
            now - n->entry.last_used >= STS_CACHE_IN_USE_SECS) {
            /* Expired, not due or not in use: the rules decide without DNS (they never read
             * the TXT outcome on these paths), so no query is spent on them. */
            struct sts_cache_decision d;
            struct sts_txt_outcome none = {STS_TXT_TEMPFAIL, ""};
            sts_cache_refresh(&n->entry, &none, now, jitter(e), &d);
            apply_decision(e, n, &d, NULL, NULL, 0);
            continue;
        }
        struct flight *fl = flight_new(e, n, true);
        if (!fl)
            break;
        room--;
        start_txt(fl);
    }
    free(due);
}

static void on_refresh_timer(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct sts_engine *e = arg;
    e->refresh_timer = NULL;
    sts_engine_refresh_now(e);
    schedule_refresh(e);
}

static void schedule_refresh(struct sts_engine *e)
{
    if (e->cfg.store.due && e->cfg.loop && !e->refresh_timer)
        e->refresh_timer = ev_timer_add(e->cfg.loop, e->cfg.refresh_check_ms, on_refresh_timer, e);
}

/* ---- the live interfaces ---- */

struct live_txt {
    struct dns_query *q;
    sts_txt_done done;
    void *ctx;
};

static void live_txt_cb(struct dns_answer *ans, void *arg)
{
    struct live_txt *t = arg;
    struct sts_record_text recs[64];
    size_t n = 0;
    for (size_t i = 0; i < ans->nrr && n < sizeof recs / sizeof recs[0]; i++) {
        if (ans->rr[i].type != DNS_T_TXT)
            continue;
        recs[n].data = (const char *)ans->rr[i].txt.data;
        recs[n].len = ans->rr[i].txt.len;
        n++;
    }
    struct sts_txt_answer a = {ans->status, recs, n, ans->detail};
    sts_txt_done done = t->done;
    void *ctx = t->ctx;
    free(t);
    done(&a, ctx);
}

static void *live_txt_start(void *arg, const char *qname, sts_txt_done done, void *ctx)
{
    struct live_txt *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->done = done;
    t->ctx = ctx;
    t->q = dns_query(arg, qname, DNS_T_TXT, live_txt_cb, t);
    if (!t->q) {
        free(t);
        return NULL;
    }
    return t;
}

static void live_txt_cancel(void *arg, void *handle)
{
    (void)arg;
    struct live_txt *t = handle;
    dns_query_cancel(t->q);
    free(t);
}

static void *live_fetch_start(void *arg, const char *domain, sts_fetch_cb done, void *ctx)
{
    return sts_fetch_start(arg, domain, done, ctx);
}

static void live_fetch_cancel(void *arg, void *handle)
{
    (void)arg;
    sts_fetch_cancel(handle);
}

void sts_engine_io_live(struct sts_engine_io *io, struct dns_resolver *dns,
                        struct sts_fetcher *fetcher)
{
    memset(io, 0, sizeof *io);
    io->txt_arg = dns;
    io->fetch_arg = fetcher;
    io->txt_start = live_txt_start;
    io->txt_cancel = live_txt_cancel;
    io->fetch_start = live_fetch_start;
    io->fetch_cancel = live_fetch_cancel;
    io->proxied = sts_fetcher_proxied(fetcher);
}

/* ---- life ---- */

int sts_engine_new(const struct sts_engine_config *cfg, struct sts_engine **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    if (!cfg->io.txt_start || !cfg->io.fetch_start) {
        snprintf(err, errlen, "the engine needs its DNS and fetch interfaces");
        return -1;
    }
    struct sts_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    e->cfg = *cfg;
    if (!e->cfg.txt_recheck_s)
        e->cfg.txt_recheck_s = STS_ENGINE_TXT_RECHECK_DEFAULT;
    if (!e->cfg.refresh_check_ms)
        e->cfg.refresh_check_ms = STS_ENGINE_REFRESH_CHECK_MS;
    if (!e->cfg.refresh_parallel)
        e->cfg.refresh_parallel = STS_ENGINE_REFRESH_PARALLEL;
    e->nbuckets = 1024;
    e->buckets = calloc(e->nbuckets, sizeof *e->buckets);
    e->scratch = malloc(sizeof *e->scratch);
    e->text = malloc(STS_POLICY_MAX);
    if (getrandom(&e->rng, sizeof e->rng, 0) != (ssize_t)sizeof e->rng || e->rng == 0)
        e->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
    if (!e->buckets || !e->scratch || !e->text) {
        snprintf(err, errlen, "out of memory");
        sts_engine_free(e);
        return -1;
    }
    schedule_refresh(e);
    *out = e;
    return 0;
}

void sts_engine_free(struct sts_engine *e)
{
    if (!e)
        return;
    while (e->flights) {
        struct flight *fl = e->flights;
        if (fl->txtq)
            e->cfg.io.txt_cancel(e->cfg.io.txt_arg, fl->txtq);
        if (fl->fetchq)
            e->cfg.io.fetch_cancel(e->cfg.io.fetch_arg, fl->fetchq);
        while (fl->head) {
            struct sts_wait *w = fl->head;
            waiter_remove(w);
            free(w);
        }
        flight_unlink(fl);
        free(fl);
    }
    if (e->cfg.loop)
        ev_timer_cancel(e->cfg.loop, e->refresh_timer);
    for (size_t i = 0; e->buckets && i < e->nbuckets; i++) {
        struct node *n = e->buckets[i];
        while (n) {
            struct node *next = n->hnext;
            sts_pol_unref(n->pol);
            free(n);
            n = next;
        }
    }
    free(e->buckets);
    free(e->scratch);
    free(e->text);
    free(e);
}

void sts_engine_get_stats(const struct sts_engine *e, struct sts_engine_stats *out)
{
    *out = e->stats;
    out->domains = e->count;
}
