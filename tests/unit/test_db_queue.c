/* test_db_queue.c - the mail queue store: batch store (all or none), due order and claims,
 * outcomes and removal of finished messages, delivernow, counts, ids unique and increasing
 * across reopen, query plans that use the due index, and claims released by a reopen.
 * (Crash safety of the 250 promise is tests/crash/crash_listener.) */
#include "db_queue.h"
#include "t.h"
#include "tdb.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static struct db_queue *open_queue(void)
{
    struct db_queue *q = NULL;
    char err[512];
    enum db_status st = db_queue_open(dir, &q, err, sizeof err);
    if (st != DB_OK)
        fprintf(stderr, "open: %s\n", err);
    T_EQ_INT(st, DB_OK);
    return q;
}

static int64_t next_id(struct db_queue *q, enum db_queue_id kind)
{
    int64_t id = -1;
    T_EQ_INT(db_queue_next_id(q, kind, &id, NULL, 0), DB_OK);
    return id;
}

/* The query plan of sql on this test's queue.db. */
static void plan(const char *sql, char *out, size_t size)
{
    char path[300];
    snprintf(path, sizeof path, "%s/queue.db", dir);
    t_query_plan(path, sql, out, size);
}

static int64_t count(const char *sql)
{
    char path[300];
    snprintf(path, sizeof path, "%s/queue.db", dir);
    sqlite3 *db;
    int64_t n = -1;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

static int64_t finished_mids[16];
static int n_finished;

static void on_finished(void *arg, int64_t mid)
{
    (void)arg;
    if (n_finished < 16)
        finished_mids[n_finished++] = mid;
}

static void test_ids(void)
{
    struct db_queue *q = open_queue();
    int64_t a = next_id(q, DB_QUEUE_MID), b = next_id(q, DB_QUEUE_MID);
    int64_t icid = next_id(q, DB_QUEUE_ICID), dcid = next_id(q, DB_QUEUE_DCID);
    T_EQ_INT(a, 1);
    T_EQ_INT(b, 2);
    T_EQ_INT(icid, 1);
    T_EQ_INT(dcid, 1);
    /* Past one range: still increasing, and it cost a second reservation. */
    int64_t last = b;
    bool increasing = true;
    for (int i = 0; i < DB_QUEUE_ID_RANGE + 10; i++) {
        int64_t id = next_id(q, DB_QUEUE_MID);
        increasing = increasing && id == last + 1;
        last = id;
    }
    T_CHECK(increasing);
    T_EQ_INT(count("SELECT next FROM ids WHERE kind = 2"), 2 * DB_QUEUE_ID_RANGE + 1);
    db_queue_close(q);
    /* A reopen skips what was reserved and never reuses an id. */
    q = open_queue();
    int64_t after = next_id(q, DB_QUEUE_MID);
    T_CHECK(after > last);
    T_EQ_INT(after, 2 * DB_QUEUE_ID_RANGE + 1);
    T_CHECK(next_id(q, DB_QUEUE_ICID) > icid);
    T_CHECK(next_id(q, DB_QUEUE_DCID) > dcid);
    db_queue_close(q);
}

static void test_store_claim_outcomes(void)
{
    struct db_queue *q = open_queue();
    const char *r1[] = {"bob@Example.COM", "carol@example.net"};
    const char *r2[] = {"dave@example.org"};
    static const char data1[] = "Subject: one\r\n\r\nbody\r\n";
    static const char data2[] = "Subject: two\r\n\r\n\0binary\r\n";
    int64_t m1 = next_id(q, DB_QUEUE_MID), m2 = next_id(q, DB_QUEUE_MID);
    struct db_queue_new msgs[2] = {
        {m1, 7, 1000, "alice@example.org", r1, 2, data1, sizeof data1 - 1},
        {m2, 8, 1001, "", r2, 1, data2, sizeof data2 - 1},
    };
    char err[512];
    T_EQ_INT(db_queue_store(q, msgs, 2, err, sizeof err), DB_OK);

    struct db_queue_msg m;
    T_EQ_INT(db_queue_message(q, m2, &m, err, sizeof err), DB_OK);
    T_EQ_INT(m.size, sizeof data2 - 1);
    T_CHECK(memcmp(m.data, data2, m.size) == 0); /* binary-safe, NUL included */
    T_EQ_STR(m.sender, "");
    T_EQ_INT(m.icid, 8);
    T_EQ_INT(m.n_rcpt, 1);
    db_queue_message_free(&m);
    T_EQ_INT(db_queue_message(q, 999999, &m, err, sizeof err), DB_NOTFOUND);

    struct db_queue_counts c;
    T_EQ_INT(db_queue_counts(q, &c, err, sizeof err), DB_OK);
    T_EQ_INT(c.messages, 2);
    T_EQ_INT(c.rcpt_unattempted, 3);
    T_EQ_INT(c.rcpt_attempted, 0);
    T_EQ_INT(c.oldest_received, 1000);
    T_EQ_INT(c.next_due, 1000);

    /* Nothing is due before its time. */
    struct db_queue_rcpt out[8];
    size_t n;
    T_EQ_INT(db_queue_claim(q, 999, out, 8, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 0);
    /* Due order: next_attempt, then MID, then RID; max respected. */
    T_EQ_INT(db_queue_claim(q, 2000, out, 2, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 2);
    T_EQ_INT(out[0].mid, m1);
    T_EQ_INT(out[0].rid, 0);
    T_EQ_STR(out[0].addr, "bob@Example.COM");
    T_EQ_STR(out[0].domain, "example.com");
    T_EQ_INT(out[0].received, 1000);
    T_EQ_INT(out[1].rid, 1);
    /* Claimed ones are not returned again. */
    T_EQ_INT(db_queue_claim(q, 2000, out + 2, 8, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 1);
    T_EQ_INT(out[2].mid, m2);
    T_EQ_INT(db_queue_claim(q, 2000, out + 3, 8, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 0);
    T_EQ_INT(db_queue_counts(q, &c, err, sizeof err), DB_OK);
    T_EQ_INT(c.rcpt_claimed, 3);
    T_EQ_INT(db_queue_next_due(q, &c.next_due, err, sizeof err), DB_NOTFOUND);

    /* Outcomes: m1 RID 0 delivered, RID 1 deferred; m2 bounced (finished). */
    n_finished = 0;
    struct db_queue_outcome o[3] = {
        {m1, 0, DB_QUEUE_OUT_DELIVERED, 2000, 0, "250 2.0.0 Ok"},
        {m1, 1, DB_QUEUE_OUT_DEFERRED, 2000, 2600, "451 4.7.1 try later"},
        {m2, 0, DB_QUEUE_OUT_BOUNCED, 2000, 0, "550 5.1.1 no such user"},
    };
    T_EQ_INT(db_queue_record(q, o, 3, on_finished, NULL, err, sizeof err), DB_OK);
    T_EQ_INT(n_finished, 1);
    T_EQ_INT(finished_mids[0], m2);
    T_EQ_INT(db_queue_message(q, m2, &m, err, sizeof err), DB_NOTFOUND);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM rcpt WHERE mid = %lld", (long long)m2);
    T_EQ_INT(count(sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM rcpt WHERE mid = %lld", (long long)m1);
    T_EQ_INT(count(sql), 2);

    T_EQ_INT(db_queue_message(q, m1, &m, err, sizeof err), DB_OK);
    T_EQ_INT(m.n_rcpt, 2);
    T_EQ_INT(m.rcpt[0].state, DB_QUEUE_DELIVERED);
    T_EQ_INT(m.rcpt[1].state, DB_QUEUE_QUEUED);
    T_EQ_INT(m.rcpt[1].attempts, 1);
    T_EQ_INT(m.rcpt[1].first_attempt, 2000);
    T_EQ_INT(m.rcpt[1].next_attempt, 2600);
    T_EQ_STR(m.rcpt[1].last_error, "451 4.7.1 try later");
    db_queue_message_free(&m);

    /* A duplicate outcome for a final recipient changes nothing. */
    T_EQ_INT(db_queue_record(q, o, 1, NULL, NULL, err, sizeof err), DB_OK);
    snprintf(sql, sizeof sql, "SELECT attempts FROM rcpt WHERE mid = %lld AND rid = 0",
             (long long)m1);
    T_EQ_INT(count(sql), 1);

    T_EQ_INT(db_queue_counts(q, &c, err, sizeof err), DB_OK);
    T_EQ_INT(c.messages, 1);
    T_EQ_INT(c.rcpt_unattempted, 0);
    T_EQ_INT(c.rcpt_attempted, 1);
    T_EQ_INT(c.next_due, 2600);

    /* Not due before 2600; delivernow makes it due now. */
    T_EQ_INT(db_queue_claim(q, 2100, out, 8, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 0);
    int64_t changed = -1;
    T_EQ_INT(db_queue_all_due(q, 2100, &changed, err, sizeof err), DB_OK);
    T_EQ_INT(changed, 1);
    T_EQ_INT(db_queue_all_due(q, 2100, &changed, err, sizeof err), DB_OK);
    T_EQ_INT(changed, 0);
    T_EQ_INT(db_queue_claim(q, 2100, out, 8, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 1);
    T_EQ_INT(out[0].attempts, 1);
    T_EQ_STR(out[0].last_error, "451 4.7.1 try later");

    /* Release gives it back without an attempt. */
    T_EQ_INT(db_queue_release(q, m1, 1, err, sizeof err), DB_OK);
    T_EQ_INT(db_queue_claim(q, 2100, out, 8, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 1);
    T_EQ_INT(out[0].attempts, 1);
    db_queue_close(q);

    /* A reopen releases every claim (the agent that held them is gone). */
    q = open_queue();
    T_EQ_INT(db_queue_claim(q, 2100, out, 8, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 1);
    n_finished = 0;
    struct db_queue_outcome done = {m1, 1, DB_QUEUE_OUT_DELIVERED, 2200, 0, NULL};
    T_EQ_INT(db_queue_record(q, &done, 1, on_finished, NULL, err, sizeof err), DB_OK);
    T_EQ_INT(n_finished, 1);
    T_EQ_INT(count("SELECT count(*) FROM msg"), 0);
    T_EQ_INT(count("SELECT count(*) FROM rcpt"), 0);
    T_EQ_INT(db_queue_counts(q, &c, err, sizeof err), DB_OK);
    T_EQ_INT(c.messages, 0);
    T_EQ_INT(c.oldest_received, 0);
    T_EQ_INT(c.next_due, 0);
    db_queue_close(q);
}

/* A batch is all or none: a duplicate MID in it rolls every message back. */
static void test_batch_atomic(void)
{
    struct db_queue *q = open_queue();
    const char *r[] = {"x@example.com"};
    int64_t a = next_id(q, DB_QUEUE_MID);
    struct db_queue_new msgs[3] = {
        {a, 1, 5000, "s@example.org", r, 1, "a\r\n", 3},
        {a + 1, 1, 5000, "s@example.org", r, 1, "b\r\n", 3},
        {a, 1, 5000, "s@example.org", r, 1, "dup\r\n", 5},
    };
    char err[512] = "";
    int64_t before = count("SELECT count(*) FROM msg");
    T_EQ_INT(db_queue_store(q, msgs, 3, err, sizeof err), DB_ERROR);
    T_CHECK(err[0] != '\0');
    T_EQ_INT(count("SELECT count(*) FROM msg"), before);
    /* The connection is usable afterwards. */
    T_EQ_INT(db_queue_store(q, msgs, 2, err, sizeof err), DB_OK);
    T_EQ_INT(count("SELECT count(*) FROM msg"), before + 2);
    T_EQ_INT(count("SELECT count(*) FROM rcpt"), before + 2);
    db_queue_close(q);
}

static void test_plans(void)
{
    char p[1024];
    plan("SELECT r.mid FROM rcpt r INDEXED BY rcpt_due JOIN msg m ON m.mid = r.mid WHERE "
         "r.state = 0 AND r.claimed = 0 AND r.next_attempt <= 5 ORDER BY r.next_attempt, r.mid, "
         "r.rid LIMIT 10",
         p, sizeof p);
    T_CHECK(strstr(p, "USING INDEX rcpt_due") || strstr(p, "USING COVERING INDEX rcpt_due"));
    T_CHECK(!strstr(p, "SCAN r"));
    T_CHECK(!strstr(p, "TEMP B-TREE"));
    plan("SELECT next_attempt FROM rcpt WHERE state = 0 AND claimed = 0 ORDER BY next_attempt "
         "LIMIT 1",
         p, sizeof p);
    T_CHECK(strstr(p, "rcpt_due") != NULL);
    plan("UPDATE rcpt SET next_attempt = 1 WHERE state = 0 AND claimed = 0 AND next_attempt > 1", p,
         sizeof p);
    T_CHECK(strstr(p, "rcpt_due") != NULL);
}

/* Many due recipients come back in order across several claims, each exactly once. */
static void test_many(void)
{
    struct db_queue *q = open_queue();
    enum { N = 500 };
    static struct db_queue_new msgs[N];
    const char *r[] = {"a@one.example", "b@two.example", "c@three.example"};
    for (int i = 0; i < N; i++) {
        msgs[i] = (struct db_queue_new){
            next_id(q, DB_QUEUE_MID), 3, 10000 + (N - i), "s@x.org", r, 3, "m\r\n", 3};
    }
    char err[512];
    T_EQ_INT(db_queue_store(q, msgs, N, err, sizeof err), DB_OK);
    static struct db_queue_rcpt out[64];
    size_t n, total = 0;
    int64_t last = 0;
    bool ordered = true;
    do {
        T_EQ_INT(db_queue_claim(q, 1 << 30, out, 64, &n, err, sizeof err), DB_OK);
        for (size_t i = 0; i < n; i++) {
            ordered = ordered && out[i].next_attempt >= last;
            last = out[i].next_attempt;
        }
        total += n;
    } while (n > 0);
    T_CHECK(ordered);
    T_EQ_INT(total, 3 * N + 2); /* plus the two left from test_batch_atomic */
    db_queue_close(q);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/stsgate-test-queue-%d", (int)getpid());
    t_rm_tree(dir);
    if (mkdir(dir, 0700) != 0) {
        perror(dir);
        return 1;
    }
    test_ids();
    test_store_claim_outcomes();
    test_batch_atomic();
    test_plans();
    test_many();
    char path[300];
    snprintf(path, sizeof path, "%s/queue.db", dir);
    struct stat st;
    T_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    t_rm_tree(dir);
    return t_done();
}
