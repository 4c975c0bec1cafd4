/* test_db_stscache.c - the MTA-STS policy cache store: round trips, upsert rules, keys, the
 * refresh list, persistence across reopen, query plans that never scan, and the store driven by
 * the cache state machine of core/sts_cache.h. */
#include "db_stscache.h"
#include "t.h"
#include "tdb.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct sts_cache_entry entry(const char *id, enum sts_mode mode, int64_t fetched_at,
                                    uint32_t max_age)
{
    struct sts_cache_entry e;
    memset(&e, 0, sizeof e);
    e.has_policy = true;
    snprintf(e.id, sizeof e.id, "%s", id);
    e.mode = mode;
    e.fetched_at = fetched_at;
    e.max_age = max_age;
    e.refresh_at = fetched_at + 86400;
    e.last_used = fetched_at;
    return e;
}

static char policy_buf[STS_POLICY_MAX];

static void test_round_trip(struct db_stscache *c)
{
    char err[256] = "";
    struct sts_cache_entry e = entry("id20240101", STS_MODE_ENFORCE, 1700000000, 604800), got;
    strcpy(e.failed_id, "id20240102");
    e.failed_at = 1700000100;
    static const char text[] = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 1\n";
    size_t len = 99;

    T_EQ_INT(db_stscache_get(c, "example.com", &got, NULL, 0, NULL, err, sizeof err), DB_NOTFOUND);
    T_EQ_INT(db_stscache_put(c, "example.com", &e, text, sizeof text - 1, err, sizeof err), DB_OK);
    memset(&got, 0x55, sizeof got);
    T_EQ_INT(db_stscache_get(c, "example.com", &got, policy_buf, sizeof policy_buf, &len, err,
                             sizeof err),
             DB_OK);
    T_CHECK(got.has_policy);
    T_EQ_STR(got.id, "id20240101");
    T_EQ_INT(got.mode, STS_MODE_ENFORCE);
    T_EQ_INT(got.fetched_at, 1700000000);
    T_EQ_INT(got.max_age, 604800);
    T_EQ_INT(got.refresh_at, 1700086400);
    T_EQ_INT(got.last_used, 1700000000);
    T_EQ_STR(got.failed_id, "id20240102");
    T_EQ_INT(got.failed_at, 1700000100);
    T_EQ_INT(len, sizeof text - 1);
    T_CHECK(memcmp(policy_buf, text, sizeof text - 1) == 0);

    /* Keys ignore case and one trailing dot. */
    T_EQ_INT(db_stscache_get(c, "EXAMPLE.Com.", &got, NULL, 0, NULL, err, sizeof err), DB_OK);
    T_EQ_INT(db_stscache_get(c, "example.com..", &got, NULL, 0, NULL, err, sizeof err),
             DB_NOTFOUND);
    T_EQ_INT(db_stscache_get(c, "", &got, NULL, 0, NULL, err, sizeof err), DB_ERROR);
    T_EQ_INT(db_stscache_get(c, ".", &got, NULL, 0, NULL, err, sizeof err), DB_ERROR);

    /* An upsert without text keeps the text; an entry without a policy drops it. */
    e.refresh_at = 1700090000;
    T_EQ_INT(db_stscache_put(c, "Example.COM", &e, NULL, 0, err, sizeof err), DB_OK);
    T_EQ_INT(db_stscache_get(c, "example.com", &got, policy_buf, sizeof policy_buf, &len, err,
                             sizeof err),
             DB_OK);
    T_EQ_INT(got.refresh_at, 1700090000);
    T_EQ_INT(len, sizeof text - 1);
    e.has_policy = false;
    T_EQ_INT(db_stscache_put(c, "example.com", &e, text, sizeof text - 1, err, sizeof err), DB_OK);
    T_EQ_INT(db_stscache_get(c, "example.com", &got, policy_buf, sizeof policy_buf, &len, err,
                             sizeof err),
             DB_OK);
    T_CHECK(!got.has_policy);
    T_EQ_INT(len, 0);

    T_EQ_INT(db_stscache_delete(c, "example.com", err, sizeof err), DB_OK);
    T_EQ_INT(db_stscache_get(c, "example.com", &got, NULL, 0, NULL, err, sizeof err), DB_NOTFOUND);
    char big[STS_POLICY_MAX + 1];
    memset(big, 'x', sizeof big);
    e.has_policy = true;
    T_EQ_INT(db_stscache_put(c, "example.com", &e, big, sizeof big, err, sizeof err), DB_ERROR);
}

static void test_due(struct db_stscache *c)
{
    char err[256] = "";
    /* 2000 domains due at 1000..2999; every third has no policy and is never due. */
    for (int i = 0; i < 2000; i++) {
        char d[64];
        snprintf(d, sizeof d, "d%04d.example", i);
        struct sts_cache_entry e = entry("x", STS_MODE_TESTING, 0, 604800);
        e.refresh_at = 1000 + (1999 - i);
        if (i % 3 == 0) {
            e.has_policy = false;
            strcpy(e.failed_id, "x");
        }
        T_CHECK(db_stscache_put(c, d, &e, "t", 1, err, sizeof err) == DB_OK);
    }
    int64_t count = 0;
    T_EQ_INT(db_stscache_count(c, &count, err, sizeof err), DB_OK);
    T_EQ_INT(count, 2000);

    static struct db_stscache_due due[2000];
    size_t n = 0;
    T_EQ_INT(db_stscache_due(c, 999, due, 2000, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 0);
    T_EQ_INT(db_stscache_due(c, 1009, due, 2000, &n, err, sizeof err), DB_OK);
    /* refresh_at 1000..1009 are i = 1999..1990; of those, 1998, 1995, 1992 have no policy. */
    T_EQ_INT(n, 7);
    T_EQ_STR(due[0].domain, "d1999.example");
    T_EQ_INT(due[0].refresh_at, 1000);
    bool sorted = true;
    for (size_t i = 1; i < n; i++)
        sorted = sorted && due[i - 1].refresh_at <= due[i].refresh_at;
    T_CHECK(sorted);
    T_EQ_INT(db_stscache_due(c, 5000, due, 10, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 10);
    T_EQ_INT(db_stscache_due(c, 5000, due, 2000, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 2000 - 667);
    T_EQ_INT(db_stscache_due(c, 5000, due, 0, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 0);
}

/* The store driven by the state machine: first fetch, reuse after a reopen, a failed fetch of a
 * new id, a change that is not written, and max_age 0 deleting the row. */
static void test_with_state_machine(struct db_stscache **cp, const char *dir)
{
    struct db_stscache *c = *cp;
    char err[256] = "";
    const char *dom = "mail.example.org";
    static const char text[] = "version: STSv1\nmode: enforce\nmx: *.example.org\nmax_age: 86400\n";
    static struct sts_policy pol;
    T_EQ_INT(sts_policy_parse(text, sizeof text - 1, &pol, NULL, 0), STS_POLICY_VALID);

    struct sts_cache_entry e;
    struct sts_cache_decision d;
    struct sts_txt_outcome txt = {STS_TXT_VALID, "v1"};
    int64_t now = 1800000000;

    T_EQ_INT(db_stscache_get(c, dom, &e, NULL, 0, NULL, err, sizeof err), DB_NOTFOUND);
    sts_cache_lookup(NULL, &txt, now, &d);
    T_EQ_INT(d.step, STS_CACHE_FETCH);
    T_EQ_INT(db_stscache_save(c, dom, &d, NULL, 0, err, sizeof err), DB_OK);
    T_EQ_INT(db_stscache_get(c, dom, &e, NULL, 0, NULL, err, sizeof err), DB_NOTFOUND);
    sts_cache_fetched(NULL, d.fetch_id, &pol, now + 1, 7, &d);
    T_EQ_INT(db_stscache_save(c, dom, &d, text, sizeof text - 1, err, sizeof err), DB_OK);

    /* A restart: the entry and its text are still there and apply without a fetch. */
    db_stscache_close(c);
    T_EQ_INT(db_stscache_open(dir, cp, err, sizeof err), DB_OK);
    c = *cp;
    size_t len = 0;
    T_EQ_INT(db_stscache_get(c, dom, &e, policy_buf, sizeof policy_buf, &len, err, sizeof err),
             DB_OK);
    T_EQ_INT(len, sizeof text - 1);
    sts_cache_lookup(&e, &txt, now + 60, &d);
    T_EQ_INT(d.step, STS_CACHE_APPLY_CACHED);
    T_CHECK(!d.changed);
    T_EQ_INT(db_stscache_save(c, dom, &d, NULL, 0, err, sizeof err), DB_OK);

    /* A new id whose fetch fails: the failure is stored, the text stays. */
    strcpy(txt.id, "v2");
    sts_cache_lookup(&e, &txt, now + 120, &d);
    T_EQ_INT(d.step, STS_CACHE_FETCH);
    sts_cache_fetched(&d.entry, d.fetch_id, NULL, now + 121, 7, &d);
    T_EQ_INT(d.step, STS_CACHE_APPLY_CACHED);
    T_EQ_INT(db_stscache_save(c, dom, &d, NULL, 0, err, sizeof err), DB_OK);
    T_EQ_INT(db_stscache_get(c, dom, &e, policy_buf, sizeof policy_buf, &len, err, sizeof err),
             DB_OK);
    T_EQ_STR(e.failed_id, "v2");
    T_EQ_STR(e.id, "v1");
    T_EQ_INT(len, sizeof text - 1);
    sts_cache_lookup(&e, &txt, now + 180, &d);
    T_EQ_INT(d.step, STS_CACHE_BACKOFF);

    /* max_age 0 replaces the entry with nothing: the row goes. */
    sts_cache_lookup(&e, &txt, now + 500, &d);
    T_EQ_INT(d.step, STS_CACHE_FETCH);
    pol.max_age = 0;
    sts_cache_fetched(&d.entry, d.fetch_id, &pol, now + 501, 7, &d);
    T_EQ_INT(d.step, STS_CACHE_APPLY_FETCHED);
    T_EQ_INT(db_stscache_save(c, dom, &d, text, sizeof text - 1, err, sizeof err), DB_OK);
    T_EQ_INT(db_stscache_get(c, dom, &e, NULL, 0, NULL, err, sizeof err), DB_NOTFOUND);
}

static void test_plans(const char *path)
{
    char p[1024];
    t_query_plan(path, "SELECT has_policy FROM stscache WHERE domain = 'x'", p, sizeof p);
    T_CHECK(strstr(p, "SEARCH") && strstr(p, "PRIMARY KEY") && !strstr(p, "SCAN"));
    if (!strstr(p, "PRIMARY KEY"))
        fprintf(stderr, "get plan: %s\n", p);
    t_query_plan(path,
                 "SELECT domain, refresh_at FROM stscache WHERE has_policy = 1 AND refresh_at <= 5"
                 " ORDER BY refresh_at LIMIT 10",
                 p, sizeof p);
    T_CHECK(strstr(p, "stscache_refresh") && !strstr(p, "SCAN") && !strstr(p, "TEMP B-TREE"));
    if (!strstr(p, "stscache_refresh"))
        fprintf(stderr, "due plan: %s\n", p);
}

int main(void)
{
    char dir[] = "/tmp/stsgate-test-stscache-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char err[256] = "";
    struct db_stscache *c = NULL;
    T_EQ_INT(db_stscache_open(dir, &c, err, sizeof err), DB_OK);
    if (!c) {
        fprintf(stderr, "open: %s\n", err);
        return t_done();
    }
    char path[512];
    snprintf(path, sizeof path, "%s/stscache.db", dir);
    struct stat st;
    T_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    test_round_trip(c);
    test_due(c);
    test_with_state_machine(&c, dir);
    test_plans(path);
    db_stscache_close(c);

    /* Reopening an existing file does not migrate again or lose rows. */
    T_EQ_INT(db_stscache_open(dir, &c, err, sizeof err), DB_OK);
    int64_t n = 0;
    T_EQ_INT(db_stscache_count(c, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 2000);
    db_stscache_close(c);

    t_rm_tree(dir);
    return t_done();
}
