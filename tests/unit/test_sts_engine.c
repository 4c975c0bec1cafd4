/* test_sts_engine.c - the MTA-STS engine with fake DNS, fake fetches, a fake store and a moving
 * clock: single flight, the TXT grace, backoff, cache fallback, the refresh timer, cancellation,
 * restarts over the store, and the exact mail_logs lines.
 *
 * The fakes never answer from inside a start call (the engine's contract): a test answers the
 * pending query or fetch it names, when it chooses, as a slow network would.
 */
#include "sts_engine.h"
#include "t.h"

#include <stdlib.h>
#include <string.h>

/* ---- the clock ---- */

static int64_t clock_now = 1700000000;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return clock_now;
}

static uint32_t fake_random(void *arg)
{
    (void)arg;
    return 0;
}

/* ---- fake DNS and fetch ---- */

struct pend {
    bool live, is_fetch;
    char name[300];
    sts_txt_done txt_done;
    sts_fetch_cb fetch_done;
    void *ctx;
};

static struct pend pends[256];
static int n_txt_started, n_fetch_started, n_cancelled;

static void *fake_start(bool is_fetch, const char *name, sts_txt_done td, sts_fetch_cb fd,
                        void *ctx)
{
    for (size_t i = 0; i < sizeof pends / sizeof pends[0]; i++) {
        if (!pends[i].live) {
            pends[i].live = true;
            pends[i].is_fetch = is_fetch;
            snprintf(pends[i].name, sizeof pends[i].name, "%s", name);
            pends[i].txt_done = td;
            pends[i].fetch_done = fd;
            pends[i].ctx = ctx;
            return &pends[i];
        }
    }
    return NULL;
}

static void *fake_txt_start(void *arg, const char *qname, sts_txt_done done, void *ctx)
{
    (void)arg;
    n_txt_started++;
    return fake_start(false, qname, done, NULL, ctx);
}

static void *fake_fetch_start(void *arg, const char *domain, sts_fetch_cb done, void *ctx)
{
    (void)arg;
    n_fetch_started++;
    return fake_start(true, domain, NULL, done, ctx);
}

static void fake_cancel(void *arg, void *h)
{
    (void)arg;
    ((struct pend *)h)->live = false;
    n_cancelled++;
}

static struct pend *find_pend(bool is_fetch, const char *name)
{
    for (size_t i = 0; i < sizeof pends / sizeof pends[0]; i++)
        if (pends[i].live && pends[i].is_fetch == is_fetch && strcmp(pends[i].name, name) == 0)
            return &pends[i];
    return NULL;
}

static int pending_count(void)
{
    int n = 0;
    for (size_t i = 0; i < sizeof pends / sizeof pends[0]; i++)
        n += pends[i].live;
    return n;
}

/* Answers the pending TXT query for _mta-sts.<domain>; rec NULL with DNS_OK means NODATA. */
static bool txt_answer(const char *domain, enum dns_status st, const char *rec)
{
    char q[300];
    snprintf(q, sizeof q, "_mta-sts.%s", domain);
    struct pend *p = find_pend(false, q);
    if (!p)
        return false;
    p->live = false;
    struct sts_record_text r = {rec, rec ? strlen(rec) : 0};
    struct sts_txt_answer a = {rec ? st : (st == DNS_OK ? DNS_NODATA : st), rec ? &r : NULL,
                               rec ? 1u : 0u, NULL};
    p->txt_done(&a, p->ctx);
    return true;
}

static bool fetch_answer(const char *domain, enum sts_fetch_status st, const char *body)
{
    struct pend *p = find_pend(true, domain);
    if (!p)
        return false;
    p->live = false;
    struct sts_fetch_result r;
    memset(&r, 0, sizeof r);
    r.status = st;
    r.body = st == STS_FETCH_OK ? body : NULL;
    r.body_len = st == STS_FETCH_OK ? strlen(body) : 0;
    r.http_status = st == STS_FETCH_OK ? 200 : st == STS_FETCH_STATUS ? 404 : 0;
    snprintf(r.reason, sizeof r.reason, "%s",
             st == STS_FETCH_TIMEOUT  ? "a connection timeout"
             : st == STS_FETCH_STATUS ? "HTTP status 404"
                                      : "");
    p->fetch_done(&r, p->ctx);
    return true;
}

/* ---- fake store ---- */

struct row {
    bool used;
    char domain[STS_NAME_MAX + 1];
    struct sts_cache_entry e;
    char text[2048];
    size_t len;
};

static struct row rows[64];
static int n_gets, n_saves, fail_store;

static struct row *row_of(const char *domain, bool create)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].used && strcmp(rows[i].domain, domain) == 0)
            return &rows[i];
    if (!create)
        return NULL;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (!rows[i].used) {
            memset(&rows[i], 0, sizeof rows[i]);
            rows[i].used = true;
            snprintf(rows[i].domain, sizeof rows[i].domain, "%s", domain);
            return &rows[i];
        }
    }
    return NULL;
}

static int store_get(void *arg, const char *domain, struct sts_cache_entry *e, char *policy,
                     size_t cap, size_t *len)
{
    (void)arg;
    n_gets++;
    if (fail_store)
        return -1;
    struct row *r = row_of(domain, false);
    if (!r)
        return 1;
    *e = r->e;
    *len = r->len;
    memcpy(policy, r->text, r->len < cap ? r->len : cap);
    return 0;
}

static int store_save(void *arg, const char *domain, const struct sts_cache_decision *d,
                      const char *policy, size_t len)
{
    (void)arg;
    n_saves++;
    if (fail_store)
        return -1;
    if (!d->changed)
        return 0;
    if (sts_cache_entry_empty(&d->entry)) {
        struct row *r = row_of(domain, false);
        if (r)
            r->used = false;
        return 0;
    }
    struct row *r = row_of(domain, true);
    r->e = d->entry;
    if (policy && len < sizeof r->text) {
        memcpy(r->text, policy, len);
        r->len = len;
    }
    if (!d->entry.has_policy)
        r->len = 0;
    return 0;
}

static int store_due(void *arg, int64_t now, char (*domains)[STS_NAME_MAX + 1], size_t max,
                     size_t *n)
{
    (void)arg;
    *n = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] && *n < max; i++)
        if (rows[i].used && rows[i].e.has_policy && rows[i].e.refresh_at <= now)
            snprintf(domains[(*n)++], STS_NAME_MAX + 1, "%s", rows[i].domain);
    return 0;
}

/* ---- log capture ---- */

static char logbuf[65536];

static void capture(void *arg, enum sts_log_level lv, const char *text)
{
    (void)arg;
    static const char *const names[] = {"Critical", "Warning", "Info", "Debug", "Trace"};
    size_t used = strlen(logbuf);
    snprintf(logbuf + used, sizeof logbuf - used, "%s: %s\n", names[lv], text);
}

/* ---- callers ---- */

struct caller {
    int called;
    struct sts_result res;
};

static void on_result(struct sts_result *res, void *arg)
{
    struct caller *c = arg;
    c->called++;
    sts_result_release(&c->res);
    c->res = *res;
}

static struct ev_loop *loop;

static struct sts_engine *engine(unsigned refresh_ms)
{
    struct sts_engine_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.loop = loop;
    cfg.io.txt_start = fake_txt_start;
    cfg.io.txt_cancel = fake_cancel;
    cfg.io.fetch_start = fake_fetch_start;
    cfg.io.fetch_cancel = fake_cancel;
    cfg.store.get = store_get;
    cfg.store.save = store_save;
    cfg.store.due = store_due;
    cfg.log = capture;
    cfg.log_level = STS_LOG_DEBUG;
    cfg.clock = fake_clock;
    cfg.random = fake_random;
    cfg.refresh_check_ms = refresh_ms ? refresh_ms : 3600000;
    struct sts_engine *e = NULL;
    char err[128];
    if (sts_engine_new(&cfg, &e, err, sizeof err) != 0) {
        fprintf(stderr, "engine: %s\n", err);
        exit(1);
    }
    return e;
}

static void reset_world(void)
{
    memset(pends, 0, sizeof pends);
    memset(rows, 0, sizeof rows);
    n_txt_started = n_fetch_started = n_cancelled = n_gets = n_saves = fail_store = 0;
    logbuf[0] = '\0';
    clock_now = 1700000000;
}

#define POLICY_ENF "version: STSv1\nmode: enforce\nmx: mx.a.test\nmx: *.b.test\nmax_age: 604800\n"
#define POLICY_TEST "version: STSv1\nmode: testing\nmx: mx.a.test\nmax_age: 604800\n"
#define POLICY_NONE "version: STSv1\nmode: none\nmax_age: 604800\n"
#define POLICY_ONCE "version: STSv1\nmode: enforce\nmx: mx.a.test\nmax_age: 0\n"
#define REC(id) "v=STSv1; id=" id

/* Runs one lookup to completion: TXT answered with rec (NULL: none), then the fetch (if one
 * starts) with st/body. Returns the result (caller releases). */
static struct sts_result full_lookup(struct sts_engine *e, const char *domain, const char *rec,
                                     enum sts_fetch_status st, const char *body,
                                     enum sts_engine_rc *rc_out)
{
    struct caller c;
    memset(&c, 0, sizeof c);
    struct sts_result now;
    enum sts_engine_rc rc = sts_engine_lookup(e, domain, &now, on_result, &c, NULL);
    if (rc_out)
        *rc_out = rc;
    if (rc == STS_ENGINE_DONE)
        return now;
    char q[300];
    snprintf(q, sizeof q, "_mta-sts.%s", domain);
    if (find_pend(false, q))
        txt_answer(domain, DNS_OK, rec);
    if (c.called == 0)
        fetch_answer(domain, st, body);
    T_EQ_INT(c.called, 1);
    return c.res;
}

/* ---- the tests ---- */

static void test_cold_then_warm(void)
{
    reset_world();
    struct sts_engine *e = engine(0);
    struct caller c;
    memset(&c, 0, sizeof c);
    struct sts_result r;
    T_EQ_INT(sts_engine_lookup(e, "A.Test.", &r, on_result, &c, NULL), STS_ENGINE_PENDING);
    T_EQ_INT(n_txt_started, 1);
    T_CHECK(txt_answer("a.test", DNS_OK, REC("one")));
    T_EQ_INT(n_fetch_started, 1);
    T_EQ_INT(c.called, 0);
    T_CHECK(fetch_answer("a.test", STS_FETCH_OK, POLICY_ENF));
    T_EQ_INT(c.called, 1);
    T_EQ_INT(c.res.mode, STS_MODE_ENFORCE);
    T_CHECK(c.res.fetched);
    T_CHECK(c.res.policy && sts_pol_allows_mx(c.res.policy, "mx.a.test"));
    T_CHECK(c.res.policy && sts_pol_allows_mx(c.res.policy, "x.b.test"));
    T_CHECK(c.res.policy && !sts_pol_allows_mx(c.res.policy, "y.x.b.test"));
    T_CHECK(c.res.policy && c.res.policy->mx_count == 2);
    T_EQ_STR(logbuf, "Debug: DNS query: Q(_mta-sts.a.test, 'TXT')\n"
                     "Info: Successfully fetched MTA-STS TXT record for domain(a.test)\n"
                     "Debug: Fetch MTA-STS policy for the domain(a.test)\n"
                     "Debug: Fetched MTA-STS policy for the domain (a.test): id one, mode "
                     "enforce, max_age 604800, 2 mx\n"
                     "Info: Applying MTA-STS policy for the domain (a.test)\n");
    /* stored with its text */
    struct row *row = row_of("a.test", false);
    T_CHECK(row && row->e.has_policy && strcmp(row->e.id, "one") == 0);
    T_CHECK(row && row->len == strlen(POLICY_ENF));
    sts_result_release(&c.res);

    /* warm: answered at once from memory, no DNS, no store read */
    logbuf[0] = '\0';
    int gets = n_gets;
    clock_now += 30;
    T_EQ_INT(sts_engine_lookup(e, "a.test", &r, on_result, &c, NULL), STS_ENGINE_DONE);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    T_CHECK(!r.fetched);
    T_EQ_INT(n_txt_started, 1);
    T_EQ_INT(n_gets, gets);
    T_EQ_STR(logbuf, "Debug: Valid cache entry found for the domain (a.test).\n"
                     "Info: Applying MTA-STS policy for the domain (a.test)\n");
    sts_result_release(&r);

    /* after the TXT grace: one TXT query, same id, no fetch */
    clock_now += 31;
    T_EQ_INT(sts_engine_lookup(e, "a.test", &r, on_result, &c, NULL), STS_ENGINE_PENDING);
    T_EQ_INT(n_txt_started, 2);
    T_CHECK(txt_answer("a.test", DNS_OK, REC("one")));
    T_EQ_INT(c.called, 2);
    T_EQ_INT(n_fetch_started, 1);
    T_EQ_INT(c.res.mode, STS_MODE_ENFORCE);
    T_CHECK(!c.res.fetched);
    sts_result_release(&c.res);
    sts_engine_free(e);
}

static void test_single_flight(void)
{
    reset_world();
    struct sts_engine *e = engine(0);
    struct caller c[50];
    memset(c, 0, sizeof c);
    for (int i = 0; i < 50; i++) {
        struct sts_result r;
        T_EQ_INT(sts_engine_lookup(e, i % 2 ? "a.test" : "A.TEST", &r, on_result, &c[i], NULL),
                 STS_ENGINE_PENDING);
    }
    T_EQ_INT(n_txt_started, 1);
    T_CHECK(txt_answer("a.test", DNS_OK, REC("one")));
    /* callers arriving during the fetch join too */
    struct caller late;
    memset(&late, 0, sizeof late);
    struct sts_result r;
    T_EQ_INT(sts_engine_lookup(e, "a.test", &r, on_result, &late, NULL), STS_ENGINE_PENDING);
    T_EQ_INT(n_fetch_started, 1);
    struct sts_engine_stats st;
    sts_engine_get_stats(e, &st);
    T_EQ_INT(st.flights, 1);
    T_EQ_INT(st.joined, 50);
    T_CHECK(fetch_answer("a.test", STS_FETCH_OK, POLICY_ENF));
    int all = 1;
    for (int i = 0; i < 50; i++) {
        all &= c[i].called == 1 && c[i].res.mode == STS_MODE_ENFORCE && c[i].res.policy;
        sts_result_release(&c[i].res);
    }
    T_CHECK(all);
    T_EQ_INT(late.called, 1);
    T_EQ_INT(late.res.mode, STS_MODE_ENFORCE);
    sts_result_release(&late.res);
    T_EQ_INT(n_fetch_started, 1);
    T_EQ_INT(n_txt_started, 1);
    sts_engine_get_stats(e, &st);
    T_EQ_INT(st.flights, 0);
    T_EQ_INT(st.domains, 1);

    /* different domains fly separately */
    struct caller d1, d2;
    memset(&d1, 0, sizeof d1);
    memset(&d2, 0, sizeof d2);
    sts_engine_lookup(e, "b.test", &r, on_result, &d1, NULL);
    sts_engine_lookup(e, "c.test", &r, on_result, &d2, NULL);
    T_EQ_INT(n_txt_started, 3);
    T_CHECK(txt_answer("c.test", DNS_NXDOMAIN, NULL));
    T_EQ_INT(d2.called, 1);
    T_EQ_INT(d2.res.mode, STS_MODE_NONE);
    T_CHECK(d2.res.policy == NULL);
    T_EQ_INT(d1.called, 0);
    T_CHECK(txt_answer("b.test", DNS_OK, "v=spf1 -all"));
    T_EQ_INT(d1.called, 1);
    T_CHECK(d1.res.policy == NULL);
    sts_engine_free(e);
}

static void test_cancel(void)
{
    reset_world();
    struct sts_engine *e = engine(0);
    struct caller a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    struct sts_result r;
    struct sts_wait *wa = NULL, *wb = NULL;
    sts_engine_lookup(e, "a.test", &r, on_result, &a, &wa);
    sts_engine_lookup(e, "a.test", &r, on_result, &b, &wb);
    T_CHECK(wa && wb && wa != wb);
    sts_engine_cancel(e, wa);
    T_CHECK(txt_answer("a.test", DNS_OK, REC("one")));
    T_CHECK(fetch_answer("a.test", STS_FETCH_OK, POLICY_ENF));
    T_EQ_INT(a.called, 0);
    T_EQ_INT(b.called, 1);
    sts_result_release(&b.res);

    /* freeing the engine with a flight in the air cancels its I/O and calls nobody */
    memset(&a, 0, sizeof a);
    sts_engine_lookup(e, "z.test", &r, on_result, &a, NULL);
    int cancelled = n_cancelled;
    sts_engine_free(e);
    T_EQ_INT(n_cancelled, cancelled + 1);
    T_EQ_INT(pending_count(), 0);
    T_EQ_INT(a.called, 0);
}

static void test_fetch_failure_and_backoff(void)
{
    reset_world();
    struct sts_engine *e = engine(0);
    enum sts_engine_rc rc;
    /* nothing cached, fetch fails: no policy, and the exact failure lines */
    struct sts_result r = full_lookup(e, "a.test", REC("one"), STS_FETCH_TIMEOUT, NULL, &rc);
    T_EQ_INT(rc, STS_ENGINE_PENDING);
    T_CHECK(r.policy == NULL);
    T_CHECK(strstr(logbuf,
                   "Debug: STS policy fetch request failed due to a connection timeout., "
                   "for the domain a.test\n"
                   "Info: Failed to fetch MTA-STS policy for the domain (a.test)\n") != NULL);
    T_CHECK(strstr(logbuf, "Warning") == NULL); /* nothing cached: not a refresh failure */
    struct row *row = row_of("a.test", false);
    T_CHECK(row && !row->e.has_policy && strcmp(row->e.failed_id, "one") == 0);

    /* within 5 minutes, same id: no new fetch (after the TXT grace, a TXT query only) */
    clock_now += 120;
    r = full_lookup(e, "a.test", REC("one"), STS_FETCH_OK, POLICY_ENF, &rc);
    T_EQ_INT(n_fetch_started, 1);
    T_CHECK(r.policy == NULL);
    T_EQ_INT(pending_count(), 0);
    /* a different id is not held off */
    clock_now += 61;
    r = full_lookup(e, "a.test", REC("two"), STS_FETCH_OK, POLICY_ENF, &rc);
    T_EQ_INT(n_fetch_started, 2);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    sts_result_release(&r);
    sts_engine_free(e);

    /* same id after 5 minutes: fetched again */
    reset_world();
    e = engine(0);
    r = full_lookup(e, "a.test", REC("one"), STS_FETCH_STATUS, NULL, &rc);
    T_CHECK(r.policy == NULL);
    clock_now += 301;
    r = full_lookup(e, "a.test", REC("one"), STS_FETCH_OK, POLICY_TEST, &rc);
    T_EQ_INT(n_fetch_started, 2);
    T_EQ_INT(r.mode, STS_MODE_TESTING);
    sts_result_release(&r);
    sts_engine_free(e);
}

static void test_cache_fallback(void)
{
    reset_world();
    struct sts_engine *e = engine(0);
    enum sts_engine_rc rc;
    struct sts_result r = full_lookup(e, "a.test", REC("one"), STS_FETCH_OK, POLICY_ENF, &rc);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    sts_result_release(&r);

    /* TXT temporarily failing: the cached policy applies */
    clock_now += 3600;
    struct caller c;
    memset(&c, 0, sizeof c);
    sts_engine_lookup(e, "a.test", &r, on_result, &c, NULL);
    T_CHECK(txt_answer("a.test", DNS_SERVFAIL, NULL));
    T_EQ_INT(c.called, 1);
    T_EQ_INT(c.res.mode, STS_MODE_ENFORCE);
    sts_result_release(&c.res);
    /* ... and that TXT outcome stands for the grace: no query */
    T_EQ_INT(sts_engine_lookup(e, "a.test", &r, on_result, &c, NULL), STS_ENGINE_DONE);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    sts_result_release(&r);

    /* TXT gone: still the cached policy */
    clock_now += 3600;
    r = full_lookup(e, "a.test", NULL, STS_FETCH_OK, POLICY_ENF, &rc);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    sts_result_release(&r);
    /* TXT invalid: still the cached policy */
    clock_now += 3600;
    r = full_lookup(e, "a.test", "v=STSv1; id=bad_id!", STS_FETCH_OK, POLICY_ENF, &rc);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    sts_result_release(&r);
    T_EQ_INT(n_fetch_started, 1);

    /* id changed and the fetch fails: the cached policy applies, with the Warning */
    clock_now += 3600;
    logbuf[0] = '\0';
    r = full_lookup(e, "a.test", REC("two"), STS_FETCH_TIMEOUT, NULL, &rc);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    T_CHECK(!r.fetched);
    sts_result_release(&r);
    T_CHECK(strstr(logbuf, "Warning: Failed to refresh MTA-STS policy for the domain (a.test): "
                           "the fetch failed due to a connection timeout; the cached policy "
                           "stays in use until it expires\n") != NULL);
    T_CHECK(strstr(logbuf, "Info: Applying MTA-STS policy for the domain (a.test)\n") != NULL);

    /* expired: never applied, whatever DNS says */
    clock_now += 604800;
    r = full_lookup(e, "a.test", NULL, STS_FETCH_OK, POLICY_ENF, &rc);
    T_CHECK(r.policy == NULL);
    T_EQ_INT(r.mode, STS_MODE_NONE);
    T_CHECK(row_of("a.test", false) == NULL || !row_of("a.test", false)->e.has_policy);

    /* a fetched mode none replaces an enforce policy */
    clock_now += 61;
    r = full_lookup(e, "a.test", REC("three"), STS_FETCH_OK, POLICY_ENF, &rc);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    sts_result_release(&r);
    clock_now += 61;
    r = full_lookup(e, "a.test", REC("four"), STS_FETCH_OK, POLICY_NONE, &rc);
    T_EQ_INT(r.mode, STS_MODE_NONE);
    T_CHECK(r.policy && r.policy->mode == STS_MODE_NONE);
    sts_result_release(&r);
    T_CHECK(row_of("a.test", false) && row_of("a.test", false)->e.mode == STS_MODE_NONE);
    clock_now += 10;
    T_EQ_INT(sts_engine_lookup(e, "a.test", &r, on_result, &c, NULL), STS_ENGINE_DONE);
    T_EQ_INT(r.mode, STS_MODE_NONE);
    sts_result_release(&r);

    /* an invalid policy text counts as a failed fetch */
    clock_now += 61;
    logbuf[0] = '\0';
    r = full_lookup(e, "a.test", REC("five"), STS_FETCH_OK, "version: STSv1\nmode: enforcing\n",
                    &rc);
    T_EQ_INT(r.mode, STS_MODE_NONE); /* the cached none policy */
    sts_result_release(&r);
    T_CHECK(strstr(logbuf, "failed due to an invalid policy (") != NULL);
    T_CHECK(strstr(logbuf, "Warning") == NULL); /* the cached policy's mode is none */
    sts_engine_free(e);
}

static void test_max_age_zero(void)
{
    reset_world();
    struct sts_engine *e = engine(0);
    enum sts_engine_rc rc;
    struct caller c[3];
    memset(c, 0, sizeof c);
    struct sts_result r;
    for (int i = 0; i < 3; i++)
        sts_engine_lookup(e, "a.test", &r, on_result, &c[i], NULL);
    T_CHECK(txt_answer("a.test", DNS_OK, REC("one")));
    T_CHECK(fetch_answer("a.test", STS_FETCH_OK, POLICY_ONCE));
    for (int i = 0; i < 3; i++) {
        T_EQ_INT(c[i].res.mode, STS_MODE_ENFORCE); /* every waiter of the flight gets it */
        sts_result_release(&c[i].res);
    }
    T_EQ_INT(n_fetch_started, 1);
    T_CHECK(row_of("a.test", false) == NULL); /* not kept */
    /* the next caller fetches again (the TXT answer still stands) */
    r = full_lookup(e, "a.test", NULL, STS_FETCH_OK, POLICY_ONCE, &rc);
    T_EQ_INT(n_txt_started, 1);
    T_EQ_INT(n_fetch_started, 2);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    sts_result_release(&r);
    sts_engine_free(e);
}

static void test_restart_from_store(void)
{
    reset_world();
    struct sts_engine *e = engine(0);
    enum sts_engine_rc rc;
    struct sts_result r = full_lookup(e, "a.test", REC("one"), STS_FETCH_OK, POLICY_ENF, &rc);
    sts_result_release(&r);
    sts_engine_free(e);

    /* a new engine (a restart) reads the store: TXT query, same id, no fetch */
    e = engine(0);
    clock_now += 7200;
    int gets = n_gets;
    r = full_lookup(e, "a.test", REC("one"), STS_FETCH_OK, POLICY_ENF, &rc);
    T_EQ_INT(n_gets, gets + 1);
    T_EQ_INT(n_fetch_started, 1);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    T_CHECK(r.policy && sts_pol_allows_mx(r.policy, "mx.a.test"));
    sts_result_release(&r);
    /* the second lookup does not read the store again */
    T_EQ_INT(sts_engine_lookup(e, "a.test", &r, on_result, NULL, NULL), STS_ENGINE_DONE);
    T_EQ_INT(n_gets, gets + 1);
    sts_result_release(&r);
    sts_engine_free(e);

    /* a failing store: the engine still answers from what it learns */
    reset_world();
    fail_store = 1;
    e = engine(0);
    r = full_lookup(e, "a.test", REC("one"), STS_FETCH_OK, POLICY_ENF, &rc);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    sts_result_release(&r);
    T_CHECK(strstr(logbuf, "Warning: MTA-STS cache store read failed for the domain (a.test)") !=
            NULL);
    T_CHECK(strstr(logbuf, "Warning: MTA-STS cache store write failed for the domain (a.test)") !=
            NULL);
    sts_engine_free(e);
}

static void test_not_a_domain(void)
{
    reset_world();
    struct sts_engine *e = engine(0);
    struct sts_result r;
    const char *bad[] = {"127.0.0.1", "[192.0.2.1]", "", ".", "a..b", "1.2.3.4."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        T_EQ_INT(sts_engine_lookup(e, bad[i], &r, on_result, NULL, NULL), STS_ENGINE_DONE);
        T_CHECK(r.policy == NULL);
    }
    T_EQ_INT(n_txt_started, 0);
    sts_engine_free(e);
}

static void run_loop_ms(unsigned ms)
{
    ev_now_update(loop);
    uint64_t end = ev_now_ms(loop) + ms;
    while (ev_now_ms(loop) < end) {
        ev_run_once(loop, 5);
        ev_now_update(loop);
    }
}

static void test_refresh_timer(void)
{
    reset_world();
    struct sts_engine *e = engine(10);
    enum sts_engine_rc rc;
    struct sts_result r = full_lookup(e, "a.test", REC("one"), STS_FETCH_OK, POLICY_ENF, &rc);
    sts_result_release(&r);
    struct row *row = row_of("a.test", false);
    T_CHECK(row != NULL);
    if (!row) {
        sts_engine_free(e);
        return;
    }
    int64_t fetched_at = row->e.fetched_at;
    /* jitter 0 with a week's max_age: a day minus 5% */
    T_EQ_INT(row->e.refresh_at, fetched_at + 86400 - 4320);

    /* not due: the timer fires but starts nothing */
    run_loop_ms(50);
    T_EQ_INT(n_txt_started, 1);

    /* due: the timer starts a refresh flight, which refetches even an unchanged id */
    clock_now = row->e.refresh_at;
    run_loop_ms(50);
    T_EQ_INT(n_txt_started, 2);
    struct sts_engine_stats st;
    sts_engine_get_stats(e, &st);
    T_EQ_INT(st.refreshes, 1);
    /* the timer does not start a second flight for the same domain meanwhile */
    run_loop_ms(30);
    T_EQ_INT(n_txt_started, 2);
    /* a delivery whose TXT answer is stale joins the refresh's TXT query */
    struct caller joined;
    memset(&joined, 0, sizeof joined);
    T_EQ_INT(sts_engine_lookup(e, "a.test", &r, on_result, &joined, NULL), STS_ENGINE_PENDING);
    T_EQ_INT(n_txt_started, 2);
    T_CHECK(txt_answer("a.test", DNS_OK, REC("one")));
    T_EQ_INT(n_fetch_started, 2);
    /* while the refresh fetches, the fresh TXT answer lets deliveries use the cache at once */
    T_EQ_INT(sts_engine_lookup(e, "a.test", &r, on_result, NULL, NULL), STS_ENGINE_DONE);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    sts_result_release(&r);
    T_CHECK(fetch_answer("a.test", STS_FETCH_OK, POLICY_TEST));
    T_EQ_INT(joined.called, 1);
    T_EQ_INT(joined.res.mode, STS_MODE_TESTING);
    sts_result_release(&joined.res);
    T_EQ_INT(row->e.fetched_at, clock_now);
    T_EQ_INT(row->e.mode, STS_MODE_TESTING);
    T_CHECK(strncmp(row->text, POLICY_TEST, row->len) == 0 && row->len == strlen(POLICY_TEST));
    T_EQ_INT(sts_engine_lookup(e, "a.test", &r, on_result, NULL, NULL), STS_ENGINE_DONE);
    T_EQ_INT(r.mode, STS_MODE_TESTING);
    sts_result_release(&r);

    /* a failed refresh of a non-none policy: Warning, retried an hour later */
    clock_now = row->e.refresh_at;
    logbuf[0] = '\0';
    run_loop_ms(50);
    T_EQ_INT(n_txt_started, 3);
    T_CHECK(txt_answer("a.test", DNS_OK, REC("one")));
    T_CHECK(fetch_answer("a.test", STS_FETCH_STATUS, NULL));
    T_CHECK(strstr(logbuf, "Warning: Failed to refresh MTA-STS policy for the domain (a.test): "
                           "the fetch failed due to HTTP status 404; the cached policy stays in "
                           "use until it expires\n") != NULL);
    T_EQ_INT(row->e.refresh_at, clock_now + 3600);
    T_EQ_INT(row->e.mode, STS_MODE_TESTING);

    /* a refresh whose TXT record is gone: Warning, nothing fetched */
    clock_now = row->e.refresh_at;
    logbuf[0] = '\0';
    run_loop_ms(50);
    T_EQ_INT(n_txt_started, 4);
    T_CHECK(txt_answer("a.test", DNS_NXDOMAIN, NULL));
    T_EQ_INT(n_fetch_started, 3);
    T_CHECK(strstr(logbuf, "Warning: Failed to refresh MTA-STS policy for the domain (a.test): "
                           "refresh: no valid TXT record;") != NULL);

    /* an entry not used for 30 days is not refreshed: no TXT query */
    clock_now += 31 * 86400LL;
    row->e.refresh_at = clock_now - 1;
    row->e.fetched_at = clock_now - 100;
    row->e.max_age = 31557600;
    run_loop_ms(50);
    T_EQ_INT(n_txt_started, 4);
    sts_engine_free(e);
}

static void test_many_domains(void)
{
    reset_world();
    struct sts_engine *e = engine(0);
    /* 5000 domains with no record: the map grows and finds every one again */
    char name[64];
    for (int i = 0; i < 5000; i++) {
        struct caller c;
        memset(&c, 0, sizeof c);
        struct sts_result r;
        snprintf(name, sizeof name, "d%d.test", i);
        sts_engine_lookup(e, name, &r, on_result, &c, NULL);
        txt_answer(name, DNS_NXDOMAIN, NULL);
    }
    struct sts_engine_stats st;
    sts_engine_get_stats(e, &st);
    T_EQ_INT(st.domains, 5000);
    T_EQ_INT(n_txt_started, 5000);
    int done = 0;
    for (int i = 0; i < 5000; i++) {
        struct sts_result r;
        snprintf(name, sizeof name, "D%d.TEST", i);
        done += sts_engine_lookup(e, name, &r, on_result, NULL, NULL) == STS_ENGINE_DONE;
    }
    T_EQ_INT(done, 5000);
    T_EQ_INT(n_txt_started, 5000);
    sts_engine_get_stats(e, &st);
    T_EQ_INT(st.domains, 5000);
    sts_engine_free(e);
}

/* A waiter's callback may look the domain up again and cancel another waiter. */
static struct sts_engine *reent_engine;
static struct sts_wait *reent_victim;
static int reent_calls;

static void reent_cb(struct sts_result *res, void *arg)
{
    (void)arg;
    reent_calls++;
    sts_result_release(res);
    sts_engine_cancel(reent_engine, reent_victim);
    struct sts_result r;
    T_EQ_INT(sts_engine_lookup(reent_engine, "a.test", &r, on_result, NULL, NULL), STS_ENGINE_DONE);
    T_EQ_INT(r.mode, STS_MODE_ENFORCE);
    sts_result_release(&r);
}

static void test_reentrant_callbacks(void)
{
    reset_world();
    reent_engine = engine(0);
    struct caller victim;
    memset(&victim, 0, sizeof victim);
    struct sts_result r;
    sts_engine_lookup(reent_engine, "a.test", &r, reent_cb, NULL, NULL);
    sts_engine_lookup(reent_engine, "a.test", &r, on_result, &victim, &reent_victim);
    T_CHECK(txt_answer("a.test", DNS_OK, REC("one")));
    T_CHECK(fetch_answer("a.test", STS_FETCH_OK, POLICY_ENF));
    T_EQ_INT(reent_calls, 1);
    T_EQ_INT(victim.called, 0);
    sts_engine_free(reent_engine);
}

int main(void)
{
    loop = ev_loop_new();
    test_cold_then_warm();
    test_single_flight();
    test_cancel();
    test_fetch_failure_and_backoff();
    test_cache_fallback();
    test_max_age_zero();
    test_restart_from_store();
    test_not_a_domain();
    test_refresh_timer();
    test_many_domains();
    test_reentrant_callbacks();
    ev_loop_free(loop);
    return t_done();
}
