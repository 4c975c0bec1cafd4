/* test_sts_cache.c - the MTA-STS cache state machine with a moving clock (docs:
 * reference/mta-sts.md "Cache and refresh", and the fetch backoff of "Fetch").
 *
 * Each scenario is a table of steps played against one domain's entry: the clock moves by `dt`,
 * then a lookup, a fetch outcome or a refresh runs, and its decision and the stored entry are
 * checked. The entry each decision returns is what the next step starts from, as a store would keep
 * it.
 */
#include "sts_cache.h"
#include "t.h"

#include <string.h>

enum op { LOOKUP, FETCH_OK, FETCH_FAIL, REFRESH, END };

enum { ANY = -1 };

struct step {
    int64_t dt; /* seconds the clock moves before this step */
    enum op op;
    enum sts_txt_status txt; /* LOOKUP, REFRESH */
    const char *txt_id;
    enum sts_mode mode; /* FETCH_OK: the fetched policy */
    uint32_t max_age;
    /* expected */
    enum sts_cache_step step;
    enum sts_cache_apply apply;
    int warn;       /* 0, 1 or ANY */
    const char *id; /* the cached id afterwards; "" = no policy cached */
    int changed;    /* 0, 1 or ANY */
};

struct scenario {
    const char *name;
    struct step steps[16];
};

#define T0 1700000000
#define JITTER 4320 /* 5% of a day: no offset for policies that live two days or more */
#define DAY 86400
#define V STS_TXT_VALID
#define NONE STS_TXT_NONE
#define INVAL STS_TXT_INVALID
#define TEMP STS_TXT_TEMPFAIL
#define ENF STS_MODE_ENFORCE
#define TEST STS_MODE_TESTING
#define MNONE STS_MODE_NONE

/* Shorthands for a step: L = lookup, OK = fetch succeeded, FAIL = fetch failed, R = refresh. */
#define L(dt, txt, id, step, apply, cached, changed)                                               \
    {                                                                                              \
        dt, LOOKUP, txt, id, 0, 0, step, apply, 0, cached, changed                                 \
    }
#define OK(dt, mode, max_age, step, apply, cached)                                                 \
    {                                                                                              \
        dt, FETCH_OK, 0, NULL, mode, max_age, step, apply, 0, cached, ANY                          \
    }
#define FAIL(dt, step, apply, warn, cached)                                                        \
    {                                                                                              \
        dt, FETCH_FAIL, 0, NULL, 0, 0, step, apply, warn, cached, 1                                \
    }
#define R(dt, txt, id, step, warn, cached, changed)                                                \
    {                                                                                              \
        dt, REFRESH, txt, id, 0, 0, step, STS_APPLY_NONE, warn, cached, changed                    \
    }
#define FIN                                                                                        \
    {                                                                                              \
        0, END, 0, NULL, 0, 0, 0, 0, 0, NULL, 0                                                    \
    }

#define A_CACHED STS_CACHE_APPLY_CACHED
#define A_FETCHED STS_CACHE_APPLY_FETCHED
#define NOPOL STS_CACHE_NO_POLICY
#define FETCH STS_CACHE_FETCH
#define BACKOFF STS_CACHE_BACKOFF
#define SKIP STS_CACHE_SKIP
#define P_NONE STS_APPLY_NONE
#define P_CACHED STS_APPLY_CACHED
#define P_FETCHED STS_APPLY_FETCHED

static const struct scenario scenarios[] = {
    {"first contact, then served from cache while the id is unchanged",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), OK(1, ENF, 604800, A_FETCHED, P_FETCHED, "id1"),
      L(10, V, "id1", A_CACHED, P_CACHED, "id1", 0),
      L(DAY, V, "id1", A_CACHED, P_CACHED, "id1", 1), /* last_used moved a day */
      FIN}},
    {"a new id is fetched and replaces the entry",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), OK(0, ENF, 604800, A_FETCHED, P_FETCHED, "id1"),
      L(100, V, "id2", FETCH, P_NONE, "id1", ANY), OK(1, TEST, 86400, A_FETCHED, P_FETCHED, "id2"),
      L(10, V, "id2", A_CACHED, P_CACHED, "id2", 0),
      L(10, V, "id1", FETCH, P_NONE, "id2", 0), /* ids are compared, not ordered */
      FIN}},
    {"a new id whose fetch fails: the unexpired cached policy stays, 5 minutes of backoff",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), OK(0, ENF, 604800, A_FETCHED, P_FETCHED, "id1"),
      L(3600, V, "id2", FETCH, P_NONE, "id1", ANY), FAIL(2, A_CACHED, P_CACHED, 1, "id1"),
      L(60, V, "id2", BACKOFF, P_CACHED, "id1", 0),
      L(239, V, "id2", BACKOFF, P_CACHED, "id1", 0), /* 299 s after the failure */
      L(1, V, "id2", FETCH, P_NONE, "id1", 1),       /* 300 s: the stale failure is dropped */
      OK(1, ENF, 604800, A_FETCHED, P_FETCHED, "id2"), FIN}},
    {"backoff is per id: another id is fetched at once",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), FAIL(0, NOPOL, P_NONE, 0, ""),
      L(10, V, "id1", BACKOFF, P_NONE, "", 0), L(10, V, "id9", FETCH, P_NONE, "", 0),
      OK(1, ENF, 86400, A_FETCHED, P_FETCHED, "id9"), FIN}},
    {"nothing cached and the fetch fails: no policy, backoff, then a new try",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), FAIL(5, NOPOL, P_NONE, 0, ""),
      L(0, V, "id1", BACKOFF, P_NONE, "", 0), L(299, V, "id1", BACKOFF, P_NONE, "", 0),
      L(1, V, "id1", FETCH, P_NONE, "", 1), FAIL(1, NOPOL, P_NONE, 0, ""),
      L(301, V, "id1", FETCH, P_NONE, "", 1), OK(1, MNONE, 86400, A_FETCHED, P_FETCHED, "id1"),
      FIN}},
    {"TXT gone, invalid or unreachable: the unexpired cached policy applies, nothing changes",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), OK(0, ENF, 86400, A_FETCHED, P_FETCHED, "id1"),
      L(10, NONE, "", A_CACHED, P_CACHED, "id1", 0), L(10, INVAL, "", A_CACHED, P_CACHED, "id1", 0),
      L(10, TEMP, "", A_CACHED, P_CACHED, "id1", 0), L(10, V, "id1", A_CACHED, P_CACHED, "id1", 0),
      FIN}},
    {"TXT gone, invalid or unreachable and nothing cached: no policy, no fetch",
     {L(0, NONE, "", NOPOL, P_NONE, "", 0), L(0, INVAL, "", NOPOL, P_NONE, "", 0),
      L(0, TEMP, "", NOPOL, P_NONE, "", 0), FIN}},
    {"an expired entry is never applied",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), OK(0, ENF, 3600, A_FETCHED, P_FETCHED, "id1"),
      L(3599, NONE, "", A_CACHED, P_CACHED, "id1", 0),
      L(1, NONE, "", NOPOL, P_NONE, "", 1), /* exactly max_age later: expired, dropped */
      L(0, TEMP, "", NOPOL, P_NONE, "", 0), FIN}},
    {"an expired entry with the same id is fetched again, and not applied if that fails",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), OK(0, ENF, 600, A_FETCHED, P_FETCHED, "id1"),
      L(600, V, "id1", FETCH, P_NONE, "", 1), FAIL(1, NOPOL, P_NONE, 0, ""),
      L(1, V, "id1", BACKOFF, P_NONE, "", 0), FIN}},
    {"a fetch replaces the entry even with mode none, which then keeps applying",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), OK(0, ENF, 604800, A_FETCHED, P_FETCHED, "id1"),
      L(DAY, V, "id2", FETCH, P_NONE, "id1", ANY),
      OK(1, MNONE, 604800, A_FETCHED, P_FETCHED, "id2"),
      L(DAY, NONE, "", A_CACHED, P_CACHED, "id2", ANY),
      L(1, V, "id2", A_CACHED, P_CACHED, "id2", 0), FIN}},
    {"max_age 0: used once and not kept, even in place of an unexpired entry",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), OK(0, ENF, 0, A_FETCHED, P_FETCHED, ""),
      L(1, V, "id1", FETCH, P_NONE, "", 0), OK(0, ENF, 604800, A_FETCHED, P_FETCHED, "id1"),
      L(10, V, "id2", FETCH, P_NONE, "id1", 0), OK(0, TEST, 0, A_FETCHED, P_FETCHED, ""),
      L(1, NONE, "", NOPOL, P_NONE, "", 0), FIN}},
    {"proactive refresh: not before it is due, then a fetch even with the same id",
     {L(0, V, "id1", FETCH, P_NONE, "", 0),
      OK(0, ENF, 604800, A_FETCHED, P_FETCHED, "id1"), /* jitter 0: due a day later */
      R(DAY - 1, V, "id1", SKIP, 0, "id1", 0), R(1, V, "id1", FETCH, 0, "id1", 0),
      OK(2, ENF, 604800, A_FETCHED, P_FETCHED, "id1"), R(10, V, "id1", SKIP, 0, "id1", 0),
      R(DAY, V, "id2", FETCH, 0, "id1", 0), OK(1, TEST, 604800, A_FETCHED, P_FETCHED, "id2"), FIN}},
    {"a failed refresh keeps the cached policy and warns (mode enforce)",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), OK(0, ENF, 604800, A_FETCHED, P_FETCHED, "id1"),
      R(DAY, V, "id1", FETCH, 0, "id1", 0), FAIL(1, A_CACHED, P_CACHED, 1, "id1"),
      R(60, V, "id1", SKIP, 0, "id1", 0), /* retry not due yet */
      R(3600, V, "id1", FETCH, 0, "id1", 1), FAIL(1, A_CACHED, P_CACHED, 1, "id1"),
      R(3600, NONE, "", SKIP, 1, "id1", 1), R(3600, TEMP, "", SKIP, 1, "id1", 1),
      R(3600, INVAL, "", SKIP, 1, "id1", 1), L(1, NONE, "", A_CACHED, P_CACHED, "id1", 1), FIN}},
    {"a failed refresh of a mode none policy does not warn",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), OK(0, MNONE, 604800, A_FETCHED, P_FETCHED, "id1"),
      R(DAY, V, "id1", FETCH, 0, "id1", 0), FAIL(1, A_CACHED, P_CACHED, 0, "id1"),
      R(3600, NONE, "", SKIP, 0, "id1", 1), FIN}},
    {"a failed fetch of a new id: the next refresh tries again within the hour",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), OK(0, TEST, 604800, A_FETCHED, P_FETCHED, "id1"),
      L(DAY, V, "id2", FETCH, P_NONE, "id1", 1),
      FAIL(0, A_CACHED, P_CACHED, 1, "id1"), /* refresh_at becomes now + 1 h */
      R(3599, V, "id2", SKIP, 0, "id1", 1),  /* the stale failure is dropped */
      R(1, V, "id2", FETCH, 0, "id1", 0), OK(1, ENF, 604800, A_FETCHED, P_FETCHED, "id2"), FIN}},
    {"entries not in use are not refreshed; an expired one is dropped",
     {L(0, V, "id1", FETCH, P_NONE, "", 0), OK(0, ENF, 31557600, A_FETCHED, P_FETCHED, "id1"),
      R(DAY, V, "id1", FETCH, 0, "id1", 0), OK(0, ENF, 31557600, A_FETCHED, P_FETCHED, "id1"),
      R(30 * DAY, V, "id1", SKIP, 0, "id1", 1),     /* last used 31 days ago: not in use */
      L(1, V, "id1", A_CACHED, P_CACHED, "id1", 1), /* still applies; in use again */
      R(DAY, V, "id1", FETCH, 0, "id1", 0), R(400 * DAY, V, "id1", SKIP, 0, "", 1), /* expired */
      FIN}},
};

static const char *step_name(enum sts_cache_step s)
{
    static const char *names[] = {"APPLY_CACHED", "APPLY_FETCHED", "NO_POLICY",
                                  "FETCH",        "BACKOFF",       "SKIP"};
    return (unsigned)s < 6 ? names[s] : "?";
}

static int cases_run;

static void run_scenario(const struct scenario *sc)
{
    struct sts_cache_entry entry;
    memset(&entry, 0, sizeof entry);
    int64_t now = T0;
    char fetch_id[STS_ID_MAX + 1] = "";
    static struct sts_policy policy;

    for (size_t i = 0; sc->steps[i].op != END; i++) {
        const struct step *s = &sc->steps[i];
        struct sts_cache_decision d;
        struct sts_txt_outcome txt;
        memset(&txt, 0, sizeof txt);
        txt.status = s->txt;
        if (s->txt_id)
            strcpy(txt.id, s->txt_id);
        now += s->dt;
        cases_run++;

        switch (s->op) {
        case LOOKUP:
            sts_cache_lookup(&entry, &txt, now, &d);
            break;
        case REFRESH:
            sts_cache_refresh(&entry, &txt, now, JITTER, &d);
            break;
        case FETCH_OK:
            memset(&policy, 0, sizeof policy);
            policy.mode = s->mode;
            policy.max_age = s->max_age;
            sts_cache_fetched(&entry, fetch_id, &policy, now, JITTER, &d);
            break;
        case FETCH_FAIL:
            sts_cache_fetched(&entry, fetch_id, NULL, now, 0, &d);
            break;
        case END:
            return;
        }

        bool ok = d.step == s->step && d.apply == s->apply &&
                  (s->warn == ANY || d.warn == (s->warn != 0)) &&
                  strcmp(d.entry.has_policy ? d.entry.id : "", s->id) == 0 &&
                  (s->changed == ANY || d.changed == (s->changed != 0)) && d.why != NULL;
        if (!ok)
            fprintf(stderr,
                    "scenario \"%s\" step %zu: got %s apply=%d warn=%d cached=\"%s\" changed=%d "
                    "(%s); want %s apply=%d warn=%d cached=\"%s\" changed=%d\n",
                    sc->name, i, step_name(d.step), d.apply, d.warn,
                    d.entry.has_policy ? d.entry.id : "", d.changed, d.why ? d.why : "",
                    step_name(s->step), s->apply, s->warn, s->id, s->changed);
        T_CHECK(ok);

        if (d.step == STS_CACHE_FETCH)
            strcpy(fetch_id, d.fetch_id);
        entry = d.entry;
    }
}

/* The refresh time: about daily, half of max_age when short, jitter within 5%, before expiry. */
static void test_next_refresh(void)
{
    T_EQ_INT(sts_cache_next_refresh(T0, 604800, 0), T0 + DAY - DAY / 20);
    T_EQ_INT(sts_cache_next_refresh(T0, 604800, DAY / 20), T0 + DAY);
    T_EQ_INT(sts_cache_next_refresh(T0, 604800, DAY / 10), T0 + DAY + DAY / 20);
    T_EQ_INT(sts_cache_next_refresh(T0, 2 * DAY, DAY / 20), T0 + DAY);
    T_EQ_INT(sts_cache_next_refresh(T0, 3600, 90), T0 + 1800);
    T_EQ_INT(sts_cache_next_refresh(T0, 1, 12345), T0);
    T_EQ_INT(sts_cache_next_refresh(T0, 0, 12345), T0);

    static const uint32_t max_ages[] = {2,   3,           59,      600,    3600,
                                        DAY, 2 * DAY - 1, 2 * DAY, 604800, 31557600};
    static const uint32_t jitters[] = {0, 1, 2, 77, 4320, 8640, 65535, 2147483647u, 4294967295u};
    for (size_t i = 0; i < sizeof max_ages / sizeof max_ages[0]; i++) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t j = 0; j < sizeof jitters / sizeof jitters[0]; j++) {
            int64_t t = sts_cache_next_refresh(T0, max_ages[i], jitters[j]);
            lo = t < lo ? t : lo;
            hi = t > hi ? t : hi;
        }
        int64_t interval = max_ages[i] >= 2 * DAY ? DAY : max_ages[i] / 2;
        T_CHECK(lo >= T0 + interval - interval / 20);
        T_CHECK(hi <= T0 + interval + interval / 20);
        T_CHECK(hi < T0 + (int64_t)max_ages[i]);
    }
}

/* A clock that goes back must neither expire an entry nor stretch a backoff. */
static void test_clock_going_back(void)
{
    struct sts_cache_entry e;
    memset(&e, 0, sizeof e);
    e.has_policy = true;
    strcpy(e.id, "id1");
    e.mode = STS_MODE_ENFORCE;
    e.fetched_at = T0;
    e.max_age = 3600;
    e.last_used = T0;
    strcpy(e.failed_id, "id2");
    e.failed_at = T0;

    struct sts_txt_outcome txt = {STS_TXT_VALID, "id1"};
    struct sts_cache_decision d;
    sts_cache_lookup(&e, &txt, T0 - 5000, &d);
    T_EQ_INT(d.step, STS_CACHE_APPLY_CACHED);
    T_CHECK(sts_cache_entry_fresh(&e, T0 - 5000));

    strcpy(txt.id, "id2");
    sts_cache_lookup(&e, &txt, T0 - 100, &d);
    T_EQ_INT(d.step, STS_CACHE_FETCH);
    T_EQ_STR(d.fetch_id, "id2");
}

/* A refresh that comes while a fetch of the TXT id is in backoff waits for the backoff's end
 * (possible when a short-lived entry was rescheduled 5 minutes after a failure). */
static void test_refresh_backoff(void)
{
    struct sts_cache_entry e;
    memset(&e, 0, sizeof e);
    e.has_policy = true;
    strcpy(e.id, "id1");
    e.mode = STS_MODE_TESTING;
    e.fetched_at = T0;
    e.max_age = 1000;
    e.refresh_at = T0 + 500;
    e.last_used = T0;
    strcpy(e.failed_id, "id1");
    e.failed_at = T0 + 400;

    struct sts_txt_outcome txt = {STS_TXT_VALID, "id1"};
    struct sts_cache_decision d;
    sts_cache_refresh(&e, &txt, T0 + 500, 0, &d);
    T_EQ_INT(d.step, STS_CACHE_BACKOFF);
    T_EQ_INT(d.entry.refresh_at, T0 + 700);
    T_CHECK(d.changed && !d.warn);
    sts_cache_refresh(&d.entry, &txt, T0 + 700, 0, &d);
    T_EQ_INT(d.step, STS_CACHE_FETCH);
    /* A failed fetch so close to expiry retries as soon as the backoff allows. */
    struct sts_cache_entry after = d.entry;
    sts_cache_fetched(&after, "id1", NULL, T0 + 701, 0, &d);
    T_EQ_INT(d.step, STS_CACHE_APPLY_CACHED);
    T_EQ_INT(d.entry.refresh_at, T0 + 701 + STS_CACHE_BACKOFF_SECS);
    T_CHECK(d.warn);
}

static void test_entry_helpers(void)
{
    struct sts_cache_entry e;
    memset(&e, 0, sizeof e);
    T_CHECK(sts_cache_entry_empty(NULL));
    T_CHECK(sts_cache_entry_empty(&e));
    T_CHECK(!sts_cache_entry_fresh(&e, T0));
    strcpy(e.failed_id, "x");
    T_CHECK(!sts_cache_entry_empty(&e));

    /* No entry at all behaves like an empty one. */
    struct sts_txt_outcome txt = {STS_TXT_VALID, "abc"};
    struct sts_cache_decision d;
    sts_cache_lookup(NULL, &txt, T0, &d);
    T_EQ_INT(d.step, STS_CACHE_FETCH);
    T_CHECK(!d.changed);
    sts_cache_fetched(NULL, "abc", NULL, T0, 0, &d);
    T_EQ_INT(d.step, STS_CACHE_NO_POLICY);
    T_CHECK(d.changed && !sts_cache_entry_empty(&d.entry));
    sts_cache_refresh(NULL, &txt, T0, 0, &d);
    T_EQ_INT(d.step, STS_CACHE_SKIP);

    /* max_age above the limit is clamped in the entry too. */
    static struct sts_policy p;
    p.mode = STS_MODE_ENFORCE;
    p.max_age = 4000000000u;
    sts_cache_fetched(NULL, "abc", &p, T0, 0, &d);
    T_EQ_INT(d.entry.max_age, STS_MAX_AGE_LIMIT);
    T_EQ_INT(d.entry.fetched_at, T0);
    T_EQ_INT(d.entry.last_used, T0);
    T_EQ_INT(d.entry.refresh_at, sts_cache_next_refresh(T0, STS_MAX_AGE_LIMIT, 0));
}

int main(void)
{
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        run_scenario(&scenarios[i]);
    printf("%d cache steps\n", cases_run);
    test_next_refresh();
    test_clock_going_back();
    test_refresh_backoff();
    test_entry_helpers();
    return t_done();
}
