/* test_db_cfg.c - the configuration store: versions, sessions, commit, conflicts, rollback,
 * retention, and the costs the shell and the agent rely on. Each test uses its own data directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db_cfg.h"
#include "strbuf.h"
#include "t.h"

#define DEST "destconfig"
#define CERT "certconfig"

static char *tmp_dir(void)
{
    char *d = xstrdup("/tmp/stsgate-test-db-XXXXXX");
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        exit(1);
    }
    return d;
}

static void rm_dir(char *d)
{
    t_rm_tree(d);
    free(d);
}

static void factory(struct db_units *out, void *arg)
{
    (void)arg;
    db_units_add(out, DEST, "DEFAULT", "tls=on\n");
    db_units_add(out, DEST, "SETUP", "cert=Demo\n");
    db_units_add(out, CERT, "Demo", "pem=x\n");
}

static struct db_cfg *open_db(const char *dir)
{
    struct db_cfg *db = NULL;
    char err[256] = "";
    enum db_status st = db_cfg_open(dir, factory, NULL, &db, err, sizeof err);
    if (st != DB_OK) {
        fprintf(stderr, "db_cfg_open: %s\n", err);
        exit(1);
    }
    return db;
}

static enum db_status commit(struct db_session *s, const char *comment, bool save,
                             struct db_conflict *conflict)
{
    char err[256] = "";
    struct db_commit_info done;
    struct db_conflict c;
    enum db_status st =
        db_session_commit(s, comment, save, &done, conflict ? conflict : &c, err, sizeof err);
    if (st == DB_ERROR)
        fprintf(stderr, "commit: %s\n", err);
    return st;
}

static int64_t latest(struct db_cfg *db)
{
    int64_t v = -1;
    T_EQ_INT(db_cfg_latest(db, &v), DB_OK);
    return v;
}

struct walk {
    struct strbuf sb;
    int n;
};

static int walk_fn(void *arg, const char *name, const char *body)
{
    struct walk *w = arg;
    (void)body;
    sb_printf(&w->sb, "%s%s", w->n++ ? "," : "", name);
    return 0;
}

/* The names of the view's units of kind, comma-separated, into a static buffer. */
static const char *names(struct db_session *s, const char *kind)
{
    static char out[4096];
    struct walk w = {STRBUF_INIT, 0};
    db_session_each(s, kind, walk_fn, &w);
    snprintf(out, sizeof out, "%s", sb_str(&w.sb));
    sb_free(&w.sb);
    return out;
}

static void test_factory(void)
{
    char *dir = tmp_dir();
    struct db_cfg *db = open_db(dir);
    T_EQ_INT(latest(db), 1);
    struct db_commit_info ci;
    T_EQ_INT(db_cfg_commit_info(db, 1, &ci), DB_OK);
    T_EQ_STR(ci.user, "system");
    T_EQ_STR(ci.comment, "Initial configuration");
    T_CHECK(!ci.saved);
    T_CHECK(ci.time > 0 && ci.time <= time(NULL));
    T_EQ_INT(db_cfg_commit_info(db, 2, &ci), DB_NOTFOUND);

    struct db_commit_info h[10];
    int n = -1;
    T_EQ_INT(db_cfg_history(db, h, 10, &n), DB_OK);
    T_EQ_INT(n, 0);

    struct db_units u;
    T_EQ_INT(db_cfg_load(db, 1, &u), DB_OK);
    T_EQ_INT(u.n, 3);
    if (u.n == 3) {
        T_EQ_STR(u.v[0].kind, CERT);
        T_EQ_STR(u.v[1].name, "DEFAULT");
        T_EQ_STR(u.v[2].name, "SETUP");
        T_EQ_STR(u.v[2].body, "cert=Demo\n");
        T_EQ_INT(u.v[2].version, 1);
    }
    db_units_free(&u);
    T_EQ_INT(db_cfg_load(db, 2, &u), DB_NOTFOUND);
    T_EQ_INT(db_cfg_load(db, 0, &u), DB_NOTFOUND);
    db_cfg_close(db);
    rm_dir(dir);
}

static void test_overlay(void)
{
    char *dir = tmp_dir();
    struct db_cfg *db = open_db(dir);
    struct db_session *s = db_session_new(db, "alice");
    T_EQ_INT(db_session_refresh(s), DB_OK);
    T_CHECK(!db_session_dirty(s));
    T_EQ_STR(names(s, DEST), "DEFAULT,SETUP");

    db_session_put(s, DEST, "b.example", "tls=required\n");
    db_session_put(s, DEST, "a.example", "tls=on\n");
    db_session_put(s, DEST, "SETUP", NULL);
    db_session_put(s, DEST, "DEFAULT", "tls=off\n");
    T_CHECK(db_session_dirty(s));
    T_EQ_STR(names(s, DEST), "DEFAULT,a.example,b.example");
    T_EQ_STR(names(s, CERT), "Demo");
    T_EQ_STR(db_session_get(s, DEST, "a.example"), "tls=on\n");
    T_EQ_STR(db_session_get(s, DEST, "DEFAULT"), "tls=off\n");
    T_CHECK(db_session_get(s, DEST, "SETUP") == NULL);
    T_CHECK(db_session_get(s, DEST, "nope.example") == NULL);

    struct db_change *ch;
    size_t n = db_session_changes(s, &ch);
    T_EQ_INT(n, 4);
    if (n == 4) {
        T_EQ_STR(ch[0].name, "DEFAULT");
        T_EQ_STR(ch[0].old_body, "tls=on\n");
        T_EQ_STR(ch[0].new_body, "tls=off\n");
        T_EQ_STR(ch[1].name, "SETUP");
        T_CHECK(ch[1].new_body == NULL);
        T_EQ_STR(ch[2].name, "a.example");
        T_CHECK(ch[2].old_body == NULL);
        T_EQ_STR(ch[3].name, "b.example");
    }
    free(ch);

    /* Back to the committed body: the change is dropped, not kept as a no-op. */
    db_session_put(s, DEST, "DEFAULT", "tls=on\n");
    db_session_put(s, DEST, "SETUP", "cert=Demo\n");
    db_session_put(s, DEST, "a.example", NULL);
    n = db_session_changes(s, &ch);
    T_EQ_INT(n, 1);
    free(ch);
    /* A body taken from the view itself may be put back. */
    db_session_put(s, DEST, "b.example", db_session_get(s, DEST, "b.example"));
    T_EQ_STR(db_session_get(s, DEST, "b.example"), "tls=required\n");
    db_session_put(s, DEST, "b.example", NULL);
    T_CHECK(!db_session_dirty(s));
    T_EQ_INT(commit(s, "nothing", true, NULL), DB_EMPTY);
    T_EQ_INT(latest(db), 1);

    db_session_put(s, DEST, "c.example", "x\n");
    db_session_clear(s);
    T_CHECK(!db_session_dirty(s));
    T_EQ_STR(names(s, DEST), "DEFAULT,SETUP");

    db_session_free(s);
    db_cfg_close(db);
    rm_dir(dir);
}

static void test_commit_reload(void)
{
    char *dir = tmp_dir();
    struct db_cfg *db = open_db(dir);
    struct db_session *s = db_session_new(db, "alice");
    db_session_put(s, DEST, "a.example", "tls=on\n");
    db_session_put(s, DEST, "SETUP", NULL);
    char err[256];
    struct db_commit_info done;
    struct db_conflict c;
    time_t before = time(NULL);
    T_EQ_INT(db_session_commit(s, "first", true, &done, &c, err, sizeof err), DB_OK);
    T_EQ_INT(done.version, 2);
    T_EQ_STR(done.user, "alice");
    T_EQ_STR(done.comment, "first");
    T_CHECK(done.saved);
    T_CHECK(done.time >= before && done.time <= time(NULL));
    T_CHECK(!db_session_dirty(s));
    T_EQ_INT(latest(db), 2);
    T_EQ_STR(names(s, DEST), "DEFAULT,a.example");

    struct db_cfg *db2 = open_db(dir);
    T_EQ_INT(latest(db2), 2);
    struct db_units u;
    T_EQ_INT(db_cfg_load(db2, 2, &u), DB_OK);
    T_EQ_INT(u.n, 3);
    if (u.n == 3) {
        T_EQ_STR(u.v[1].name, "DEFAULT");
        T_EQ_INT(u.v[1].version, 1);
        T_EQ_STR(u.v[2].name, "a.example");
        T_EQ_INT(u.v[2].version, 2);
    }
    db_units_free(&u);
    /* The old version is still whole. */
    T_EQ_INT(db_cfg_load(db2, 1, &u), DB_OK);
    T_EQ_INT(u.n, 3);
    if (u.n == 3)
        T_EQ_STR(u.v[2].name, "SETUP");
    db_units_free(&u);
    struct db_commit_info ci;
    T_EQ_INT(db_cfg_commit_info(db2, 2, &ci), DB_OK);
    T_EQ_STR(ci.user, "alice");
    T_EQ_STR(ci.comment, "first");
    T_CHECK(ci.saved);
    db_cfg_close(db2);

    db_session_free(s);
    db_cfg_close(db);
    rm_dir(dir);
}

/* Two shells: separate connections, as two processes would have. */
static void test_two_sessions(void)
{
    char *dir = tmp_dir();
    struct db_cfg *dba = open_db(dir), *dbb = open_db(dir);
    struct db_session *a = db_session_new(dba, "alice"), *b = db_session_new(dbb, "bob");

    db_session_put(a, DEST, "x.example", "a1\n");
    db_session_put(b, DEST, "y.example", "b1\n");
    T_CHECK(db_session_get(b, DEST, "x.example") == NULL);
    T_EQ_INT(commit(a, "a", true, NULL), DB_OK);
    /* Committed, but b has not refreshed: b still sees its old view plus its own change. */
    T_CHECK(db_session_get(b, DEST, "x.example") == NULL);
    T_EQ_INT(db_session_refresh(b), DB_OK);
    T_EQ_STR(db_session_get(b, DEST, "x.example"), "a1\n");
    T_EQ_STR(names(b, DEST), "DEFAULT,SETUP,x.example,y.example");

    /* Not the same unit: merged. */
    T_EQ_INT(commit(b, "b", true, NULL), DB_OK);
    struct db_units u;
    T_EQ_INT(db_cfg_load(dba, 3, &u), DB_OK);
    T_EQ_INT(u.n, 5);
    db_units_free(&u);
    T_EQ_INT(db_session_refresh(a), DB_OK);
    T_EQ_STR(names(a, DEST), "DEFAULT,SETUP,x.example,y.example");

    /* The same unit: the second commit is refused and keeps its changes. */
    db_session_put(a, DEST, "DEFAULT", "tls=off\n");
    db_session_put(b, DEST, "DEFAULT", "tls=required\n");
    db_session_put(b, DEST, "z.example", "b2\n");
    time_t before = time(NULL);
    T_EQ_INT(commit(a, "a2", true, NULL), DB_OK);
    struct db_conflict c = {0};
    T_EQ_INT(commit(b, "b2", true, &c), DB_CONFLICT);
    T_EQ_STR(c.unit, "DEFAULT");
    T_EQ_STR(c.user, "alice");
    T_CHECK(c.time >= before && c.time <= time(NULL));
    T_CHECK(db_session_dirty(b));
    T_EQ_STR(db_session_get(b, DEST, "DEFAULT"), "tls=required\n");
    T_EQ_STR(db_session_get(b, DEST, "z.example"), "b2\n");
    T_EQ_INT(latest(dbb), 4);
    /* Refreshing does not make the conflict go away: b never saw alice's DEFAULT. */
    T_EQ_INT(db_session_refresh(b), DB_OK);
    T_EQ_INT(commit(b, "b2", true, &c), DB_CONFLICT);
    T_EQ_INT(latest(dbb), 4);
    db_session_clear(b);
    T_EQ_STR(db_session_get(b, DEST, "DEFAULT"), "tls=off\n");
    db_session_put(b, DEST, "DEFAULT", "tls=required\n");
    T_EQ_INT(commit(b, "b3", true, NULL), DB_OK);
    T_EQ_INT(latest(dba), 5);

    db_session_free(a);
    db_session_free(b);
    db_cfg_close(dba);
    db_cfg_close(dbb);
    rm_dir(dir);
}

/* Two sessions on one connection behave the same (the shell has one, a test may have both). */
static void test_sessions_one_connection(void)
{
    char *dir = tmp_dir();
    struct db_cfg *db = open_db(dir);
    struct db_session *a = db_session_new(db, "alice"), *b = db_session_new(db, "bob");
    db_session_put(a, DEST, "SETUP", "cert=Other\n");
    db_session_put(b, DEST, "SETUP", "cert=Third\n");
    T_EQ_INT(commit(a, "a", false, NULL), DB_OK);
    struct db_conflict c = {0};
    T_EQ_INT(commit(b, "b", false, &c), DB_CONFLICT);
    T_EQ_STR(c.unit, "SETUP");
    T_EQ_STR(c.user, "alice");
    T_EQ_INT(db_session_refresh(b), DB_OK);
    T_EQ_INT(latest(db), 2);
    db_session_free(a);
    db_session_free(b);
    db_cfg_close(db);
    rm_dir(dir);
}

static void conflict_case(const char *first, const char *second, const char *what)
{
    char *dir = tmp_dir();
    struct db_cfg *dba = open_db(dir), *dbb = open_db(dir);
    struct db_session *a = db_session_new(dba, "alice");
    db_session_put(a, DEST, "x.example", "v1\n");
    T_EQ_INT(commit(a, "setup", true, NULL), DB_OK);
    struct db_session *b = db_session_new(dbb, "bob");
    db_session_put(a, DEST, "x.example", first);
    db_session_put(b, DEST, "x.example", second);
    T_EQ_INT(commit(a, "a", true, NULL), DB_OK);
    struct db_conflict c = {0};
    enum db_status st = commit(b, "b", true, &c);
    if (st != DB_CONFLICT)
        fprintf(stderr, "conflict case: %s\n", what);
    T_EQ_INT(st, DB_CONFLICT);
    T_EQ_STR(c.unit, "x.example");
    T_EQ_STR(c.user, "alice");
    db_session_free(a);
    db_session_free(b);
    db_cfg_close(dba);
    db_cfg_close(dbb);
    rm_dir(dir);
}

static void test_delete_change_conflicts(void)
{
    conflict_case(NULL, "v2\n", "delete, then change");
    conflict_case("v2\n", NULL, "change, then delete");
    conflict_case(NULL, NULL, "delete, then delete");
    conflict_case("v2\n", "v3\n", "change, then change");

    /* Both add the same new unit. */
    char *dir = tmp_dir();
    struct db_cfg *db = open_db(dir);
    struct db_session *a = db_session_new(db, "alice"), *b = db_session_new(db, "bob");
    db_session_put(a, DEST, "new.example", "a\n");
    db_session_put(b, DEST, "new.example", "b\n");
    T_EQ_INT(commit(a, "a", true, NULL), DB_OK);
    struct db_conflict c = {0};
    T_EQ_INT(commit(b, "b", true, &c), DB_CONFLICT);
    T_EQ_STR(c.unit, "new.example");
    /* A unit deleted and re-added by others since b read it still conflicts. */
    db_session_clear(b);
    T_EQ_INT(db_session_refresh(b), DB_OK);
    db_session_put(b, DEST, "new.example", "b2\n");
    db_session_put(a, DEST, "new.example", NULL);
    T_EQ_INT(commit(a, "del", true, NULL), DB_OK);
    db_session_put(a, DEST, "new.example", "a\n");
    T_EQ_INT(commit(a, "readd", true, NULL), DB_OK);
    T_EQ_INT(commit(b, "b", true, &c), DB_CONFLICT);
    db_session_free(a);
    db_session_free(b);
    db_cfg_close(db);
    rm_dir(dir);
}

static void test_replace_kind(void)
{
    char *dir = tmp_dir();
    struct db_cfg *db = open_db(dir);
    struct db_session *a = db_session_new(db, "alice"), *b = db_session_new(db, "bob");
    db_session_put(a, DEST, "x.example", "x\n");
    db_session_put(a, DEST, "y.example", "y\n");
    T_EQ_INT(commit(a, "two", true, NULL), DB_OK);
    T_EQ_INT(db_session_refresh(b), DB_OK);

    /* IMPORT: the table becomes exactly the file; a pending addition outside it goes. */
    db_session_put(b, DEST, "pending.example", "p\n");
    struct db_units in = {0};
    db_units_add(&in, DEST, "z.example", "z\n");
    db_units_add(&in, DEST, "DEFAULT", "tls=on\n"); /* unchanged: no pending entry */
    db_units_add(&in, DEST, "x.example", "x-old\n");
    db_units_add(&in, DEST, "x.example", "x2\n"); /* the later one wins */
    db_units_add(&in, CERT, "ignored", "other kind\n");
    db_session_replace_kind(b, DEST, &in, NULL);
    db_units_free(&in);
    T_EQ_STR(names(b, DEST), "DEFAULT,x.example,z.example");
    T_EQ_STR(db_session_get(b, DEST, "x.example"), "x2\n");
    T_EQ_STR(names(b, CERT), "Demo");
    struct db_change *ch;
    size_t n = db_session_changes(b, &ch);
    T_EQ_INT(n, 4); /* SETUP, y deleted; x changed; z added */
    if (n == 4) {
        T_EQ_STR(ch[0].name, "SETUP");
        T_EQ_STR(ch[1].name, "x.example");
        T_EQ_STR(ch[2].name, "y.example");
        T_EQ_STR(ch[3].name, "z.example");
    }
    free(ch);

    /* Another session changes a unit the import leaves alone: still a conflict. */
    db_session_put(a, DEST, "DEFAULT", "tls=off\n");
    T_EQ_INT(commit(a, "default", true, NULL), DB_OK);
    struct db_conflict c = {0};
    T_EQ_INT(commit(b, "import", true, &c), DB_CONFLICT);
    T_EQ_STR(c.unit, "DEFAULT");
    T_CHECK(db_session_dirty(b));

    /* Another kind does not conflict. */
    db_session_clear(b);
    T_EQ_INT(db_session_refresh(b), DB_OK);
    db_session_replace_kind(b, DEST, NULL, (const char *const[]){"DEFAULT", NULL}); /* CLEAR */
    T_EQ_STR(names(b, DEST), "DEFAULT");
    db_session_put(a, CERT, "Other", "pem=y\n");
    T_EQ_INT(commit(a, "cert", true, NULL), DB_OK);
    /* A change to a kept name does not conflict with CLEAR either. */
    db_session_put(a, DEST, "DEFAULT", "tls=required\n");
    T_EQ_INT(commit(a, "default", true, NULL), DB_OK);
    T_EQ_INT(commit(b, "clear", true, &c), DB_OK);
    struct db_units u;
    T_EQ_INT(db_cfg_load(db, latest(db), &u), DB_OK);
    T_EQ_INT(u.n, 3);
    if (u.n == 3) {
        T_EQ_STR(u.v[0].name, "Demo");
        T_EQ_STR(u.v[1].name, "Other");
        T_EQ_STR(u.v[2].name, "DEFAULT");
        T_EQ_STR(u.v[2].body, "tls=required\n");
    }
    db_units_free(&u);

    /* CLEAR with a pending change to a kept name keeps that change. */
    T_EQ_INT(db_session_refresh(b), DB_OK);
    db_session_put(b, DEST, "DEFAULT", "tls=on\n");
    db_session_put(b, DEST, "w.example", "w\n");
    db_session_replace_kind(b, DEST, NULL, (const char *const[]){"DEFAULT", NULL});
    T_EQ_STR(names(b, DEST), "DEFAULT");
    T_EQ_STR(db_session_get(b, DEST, "DEFAULT"), "tls=on\n");
    /* An import that changes nothing leaves nothing to commit. */
    db_session_clear(b);
    T_EQ_INT(db_cfg_load(db, latest(db), &u), DB_OK);
    db_session_replace_kind(b, DEST, &u, NULL);
    db_units_free(&u);
    T_CHECK(!db_session_dirty(b));

    db_session_free(a);
    db_session_free(b);
    db_cfg_close(db);
    rm_dir(dir);
}

static int64_t count_rows(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/config.db", dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM units", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

static void test_history_retention(void)
{
    char *dir = tmp_dir();
    struct db_cfg *db = open_db(dir);
    struct db_session *s = db_session_new(db, "alice");
    char body[32], comment[32];
    /* Versions 2..13 saved, 14 not. */
    for (int i = 2; i <= 14; i++) {
        snprintf(body, sizeof body, "gen=%d\n", i);
        snprintf(comment, sizeof comment, "c%d", i);
        db_session_put(s, DEST, "DEFAULT", body);
        T_EQ_INT(commit(s, comment, i != 14, NULL), DB_OK);
    }
    struct db_commit_info h[20];
    int n = 0;
    T_EQ_INT(db_cfg_history(db, h, 20, &n), DB_OK);
    T_EQ_INT(n, 10);
    T_EQ_INT(h[0].version, 13);
    T_EQ_STR(h[0].comment, "c13");
    T_EQ_INT(h[9].version, 4);
    T_EQ_INT(db_cfg_history(db, h, 3, &n), DB_OK);
    T_EQ_INT(n, 3);
    T_EQ_INT(h[2].version, 11);

    T_EQ_INT(db_session_revert(s, 3), DB_NOTFOUND);  /* saved, no longer retained */
    T_EQ_INT(db_session_revert(s, 14), DB_NOTFOUND); /* not saved */
    T_EQ_INT(db_session_revert(s, 1), DB_NOTFOUND);  /* the initial configuration */
    T_EQ_INT(db_session_revert(s, 99), DB_NOTFOUND);
    T_CHECK(!db_session_dirty(s));

    /* Past the window, rows only the pruned versions needed go; retained ones stay whole. */
    for (int i = 15; i <= DB_CFG_KEEP_CLOSED + 30; i++) {
        snprintf(body, sizeof body, "gen=%d\n", i);
        db_session_put(s, DEST, "SETUP", body);
        T_EQ_INT(commit(s, "unsaved", false, NULL), DB_OK);
    }
    int64_t newest = latest(db);
    T_EQ_INT(newest, DB_CFG_KEEP_CLOSED + 30);
    struct db_units u;
    T_EQ_INT(db_cfg_load(db, 4, &u), DB_OK);
    T_EQ_INT(u.n, 3);
    if (u.n == 3) {
        T_EQ_STR(u.v[1].body, "gen=4\n");
        T_EQ_STR(u.v[2].body, "cert=Demo\n");
    }
    db_units_free(&u);
    T_EQ_INT(db_cfg_load(db, 3, &u), DB_NOTFOUND);
    T_EQ_INT(db_cfg_load(db, newest - DB_CFG_KEEP_CLOSED, &u), DB_OK);
    db_units_free(&u);
    /* SETUP: 1001 live rows at most (window + current), plus the one version 4 needs; DEFAULT:
     * versions 4..14 retained or in use (11 rows); Demo: 1. */
    int64_t rows = count_rows(dir);
    T_CHECK(rows > 0 && rows <= DB_CFG_KEEP_CLOSED + 1 + 1 + 11 + 1);
    T_CHECK(rows >= DB_CFG_KEEP_CLOSED);

    /* A session whose read version fell out of the window is refused, not trusted. */
    struct db_cfg *db2 = open_db(dir);
    struct db_session *old = db_session_new(db2, "bob");
    db_session_put(old, DEST, "late.example", "x\n");
    for (int i = 0; i < DB_CFG_KEEP_CLOSED + 1; i++) {
        snprintf(body, sizeof body, "again=%d\n", i);
        db_session_put(s, DEST, "SETUP", body);
        T_EQ_INT(commit(s, "unsaved", false, NULL), DB_OK);
    }
    struct db_conflict c = {0};
    T_EQ_INT(commit(old, "late", true, &c), DB_CONFLICT);
    T_EQ_STR(c.unit, "late.example");
    db_session_free(old);
    db_cfg_close(db2);

    db_session_free(s);
    db_cfg_close(db);
    rm_dir(dir);
}

static bool same_units(const struct db_units *x, const struct db_units *y)
{
    if (x->n != y->n)
        return false;
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->v[i].kind, y->v[i].kind) || strcmp(x->v[i].name, y->v[i].name) ||
            strcmp(x->v[i].body, y->v[i].body))
            return false;
    return true;
}

static void test_revert(void)
{
    char *dir = tmp_dir();
    struct db_cfg *db = open_db(dir);
    struct db_session *s = db_session_new(db, "alice");
    db_session_put(s, DEST, "a.example", "a1\n");
    db_session_put(s, DEST, "b.example", "b1\n");
    T_EQ_INT(commit(s, "v2", true, NULL), DB_OK);
    db_session_put(s, DEST, "a.example", "a2\n");
    db_session_put(s, DEST, "b.example", NULL);
    db_session_put(s, DEST, "c.example", "c1\n");
    db_session_put(s, CERT, "Demo", NULL);
    T_EQ_INT(commit(s, "v3", true, NULL), DB_OK);
    db_session_put(s, DEST, "pending.example", "p\n");

    T_EQ_INT(db_session_revert(s, 2), DB_OK);
    struct db_change *ch;
    size_t n = db_session_changes(s, &ch);
    T_EQ_INT(n, 4); /* Demo back, a back, b back, c gone; the old pending change dropped */
    free(ch);
    T_CHECK(db_session_get(s, DEST, "pending.example") == NULL);
    T_EQ_STR(db_session_get(s, DEST, "a.example"), "a1\n");
    T_EQ_INT(commit(s, "Rollback", true, NULL), DB_OK);

    struct db_units u2, u4;
    T_EQ_INT(db_cfg_load(db, 2, &u2), DB_OK);
    T_EQ_INT(db_cfg_load(db, 4, &u4), DB_OK);
    T_CHECK(same_units(&u2, &u4));
    db_units_free(&u2);
    db_units_free(&u4);
    /* Reverting to the newest version changes nothing. */
    T_EQ_INT(db_session_revert(s, 4), DB_OK);
    T_CHECK(!db_session_dirty(s));

    db_session_free(s);
    db_cfg_close(db);
    rm_dir(dir);
}

static void test_latest_other_connection(void)
{
    char *dir = tmp_dir();
    struct db_cfg *agent = open_db(dir), *shell = open_db(dir);
    T_EQ_INT(latest(agent), 1);
    T_EQ_INT(latest(agent), 1);
    struct db_session *s = db_session_new(shell, "alice");
    db_session_put(s, DEST, "a.example", "a\n");
    T_EQ_INT(commit(s, "one", true, NULL), DB_OK);
    T_EQ_INT(latest(shell), 2);
    T_EQ_INT(latest(agent), 2);
    db_session_put(s, DEST, "b.example", "b\n");
    T_EQ_INT(commit(s, "two", true, NULL), DB_OK);
    T_EQ_INT(latest(agent), 3);
    T_EQ_INT(latest(agent), 3);
    /* And the agent's own commits (it makes none, but a shell with two sessions does). */
    struct db_session *s2 = db_session_new(agent, "root");
    db_session_put(s2, DEST, "c.example", "c\n");
    T_EQ_INT(commit(s2, "three", true, NULL), DB_OK);
    T_EQ_INT(latest(agent), 4);
    T_EQ_INT(latest(shell), 4);
    T_EQ_INT(db_session_refresh(s), DB_OK);
    T_EQ_STR(names(s, DEST), "DEFAULT,SETUP,a.example,b.example,c.example");

    /* The cost of the unchanged case. */
    struct timespec t0, t1;
    int64_t v;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 10000; i++)
        db_cfg_latest(agent, &v);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("db_cfg_latest unchanged: %.2f us per call\n",
           ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / 10000);

    db_session_free(s);
    db_session_free(s2);
    db_cfg_close(agent);
    db_cfg_close(shell);
    rm_dir(dir);
}

static int64_t user_version(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/config.db", dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

static void test_reopen_and_modes(void)
{
    char *dir = tmp_dir();
    struct db_cfg *db = open_db(dir);
    struct db_session *s = db_session_new(db, "alice");
    db_session_put(s, DEST, "a.example", "a\n");
    T_EQ_INT(commit(s, "one", true, NULL), DB_OK);
    db_session_free(s);

    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/config.db", dir);
    T_EQ_INT(stat(path, &st), 0);
    T_EQ_INT(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/config.db-wal", dir);
    if (stat(path, &st) == 0)
        T_EQ_INT(st.st_mode & 0777, 0600);
    db_cfg_close(db);

    snprintf(path, sizeof path, "%s/config.db", dir);
    chmod(path, 0644);
    for (int i = 0; i < 2; i++) {
        db = open_db(dir);
        T_EQ_INT(latest(db), 2); /* no second factory version */
        T_EQ_INT(user_version(dir), 1);
        db_cfg_close(db);
    }
    T_EQ_INT(stat(path, &st), 0);
    T_EQ_INT(st.st_mode & 0777, 0600);

    /* A missing directory is an error with words, not a crash. */
    struct db_cfg *none = NULL;
    char err[256] = "";
    T_EQ_INT(db_cfg_open("/nonexistent/stsgate", factory, NULL, &none, err, sizeof err), DB_ERROR);
    T_CHECK(none == NULL);
    T_CHECK(strstr(err, "/nonexistent/stsgate") != NULL);
    rm_dir(dir);
}

/* The shell and the agent may start together on a new data directory: one factory version, one
 * schema, however the openers interleave. */
static void test_concurrent_create(void)
{
    for (int round = 0; round < 5; round++) {
        char *dir = tmp_dir();
        pid_t kids[6];
        for (int i = 0; i < 6; i++) {
            kids[i] = fork();
            if (kids[i] == 0) {
                struct db_cfg *db = NULL;
                char err[256];
                enum db_status st = db_cfg_open(dir, factory, NULL, &db, err, sizeof err);
                if (st != DB_OK)
                    fprintf(stderr, "child: %s\n", err);
                int64_t v = 0;
                if (st == DB_OK && db_cfg_latest(db, &v) != DB_OK)
                    v = 0;
                db_cfg_close(db);
                _exit(st == DB_OK && v == 1 ? 0 : 1);
            }
        }
        for (int i = 0; i < 6; i++) {
            int status = 0;
            waitpid(kids[i], &status, 0);
            T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        struct db_cfg *db = open_db(dir);
        T_EQ_INT(latest(db), 1);
        struct db_units u;
        T_EQ_INT(db_cfg_load(db, 1, &u), DB_OK);
        T_EQ_INT(u.n, 3);
        db_units_free(&u);
        T_EQ_INT(user_version(dir), 1);
        db_cfg_close(db);
        rm_dir(dir);
    }
}

#define BIG 10000

static void big_factory(struct db_units *out, void *arg)
{
    (void)arg;
    char name[64], body[256];
    db_units_add(out, DEST, "DEFAULT", "max_host_concurrency=500\n");
    for (int i = 0; i < BIG; i++) {
        snprintf(name, sizeof name, "d%05d.example.com", BIG - i);
        snprintf(body, sizeof body,
                 "max_host_concurrency=%d\ntable_tls=on\ndane_option=none\nmta_sts=off\n",
                 i % 1000);
        db_units_add(out, DEST, name, body);
    }
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int count_fn(void *arg, const char *name, const char *body)
{
    (void)name;
    (void)body;
    (*(int *)arg)++;
    return 0;
}

static void test_big(void)
{
    char *dir = tmp_dir();
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct db_cfg *db = NULL;
    char err[256];
    T_EQ_INT(db_cfg_open(dir, big_factory, NULL, &db, err, sizeof err), DB_OK);
    printf("create with %d units: %.1f ms\n", BIG, ms_since(&t0));
    db_cfg_close(db);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    db = open_db(dir);
    struct db_session *s = db_session_new(db, "alice");
    printf("open + first load: %.1f ms\n", ms_since(&t0));

    clock_gettime(CLOCK_MONOTONIC, &t0);
    int n = 0;
    T_EQ_INT(db_session_refresh(s), DB_OK);
    db_session_each(s, DEST, count_fn, &n);
    T_EQ_INT(n, BIG + 1);
    printf("refresh + each: %.2f ms\n", ms_since(&t0));

    for (int i = 0; i < 3; i++) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        db_session_put(s, DEST, "d00042.example.com", i % 2 ? "a\n" : "b\n");
        T_EQ_INT(commit(s, "one change", true, NULL), DB_OK);
        printf("commit one change: %.2f ms\n", ms_since(&t0));
    }

    struct db_cfg *other = open_db(dir);
    struct db_session *o = db_session_new(other, "bob");
    db_session_put(o, DEST, "d00043.example.com", "c\n");
    T_EQ_INT(commit(o, "other", true, NULL), DB_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    T_EQ_INT(db_session_refresh(s), DB_OK);
    n = 0;
    db_session_each(s, DEST, count_fn, &n);
    printf("refresh after another commit + each: %.2f ms\n", ms_since(&t0));
    T_EQ_STR(db_session_get(s, DEST, "d00043.example.com"), "c\n");

    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct db_units u;
    T_EQ_INT(db_cfg_load(db, 2, &u), DB_OK);
    T_EQ_INT(u.n, BIG + 1);
    db_units_free(&u);
    printf("load an older version: %.2f ms\n", ms_since(&t0));

    clock_gettime(CLOCK_MONOTONIC, &t0);
    T_EQ_INT(db_session_revert(s, 2), DB_OK);
    T_EQ_INT(commit(s, "Rollback", true, NULL), DB_OK);
    printf("revert + commit: %.2f ms\n", ms_since(&t0));

    clock_gettime(CLOCK_MONOTONIC, &t0);
    db_session_replace_kind(s, DEST, NULL, (const char *const[]){"DEFAULT", NULL});
    T_EQ_INT(commit(s, "clear", true, NULL), DB_OK);
    printf("clear %d + commit: %.2f ms\n", BIG, ms_since(&t0));
    n = 0;
    db_session_each(s, DEST, count_fn, &n);
    T_EQ_INT(n, 1);

    db_session_free(o);
    db_cfg_close(other);
    db_session_free(s);
    db_cfg_close(db);
    rm_dir(dir);
}

int main(void)
{
    test_factory();
    test_overlay();
    test_commit_reload();
    test_two_sessions();
    test_sessions_one_connection();
    test_delete_change_conflicts();
    test_replace_kind();
    test_history_retention();
    test_revert();
    test_latest_other_connection();
    test_reopen_and_modes();
    test_concurrent_create();
    test_big();
    return t_done();
}
