/* test_db_sqlite.c - the shared SQLite helper: pragmas, file mode, migrations by user_version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db_sqlite.h"
#include "strbuf.h"
#include "t.h"

static char *text(sqlite3 *db, const char *sql)
{
    static char out[128];
    sqlite3_stmt *st;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(out, sizeof out, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    return out;
}

static const char *const two[] = {
    "CREATE TABLE a (x INTEGER);",
    "CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (1);",
};

static const char *const three_bad[] = {
    "CREATE TABLE a (x INTEGER);",
    "CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (1);",
    /* Fails halfway: the table c must not survive. */
    "CREATE TABLE c (z INTEGER); INSERT INTO nosuch VALUES (1);",
};

/* Openers racing on a new file: each one's switch to WAL can find another holding a read lock, and
 * SQLite then answers SQLITE_BUSY at once, without the busy handler. Every opener must still
 * succeed. Before set_wal() waited for itself, about one opener in fifty failed here. */
static void concurrent_open(const char *dir)
{
    enum { ROUNDS = 100, OPENERS = 8 };
    int failed = 0;
    for (int r = 0; r < ROUNDS; r++) {
        struct strbuf path = STRBUF_INIT;
        sb_printf(&path, "%s/race%d.db", dir, r);
        for (int i = 0; i < OPENERS; i++) {
            if (fork() == 0) {
                sqlite3 *db;
                char err[256];
                int rc = db_sqlite_open(sb_str(&path), true, two, 2, &db, err, sizeof err);
                if (rc != SQLITE_OK)
                    fprintf(stderr, "opener: %s\n", err);
                db_sqlite_close(db);
                _exit(rc == SQLITE_OK ? 0 : 1);
            }
        }
        for (int i = 0; i < OPENERS; i++) {
            int status = 0;
            wait(&status);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                failed++;
        }
        sb_free(&path);
    }
    T_EQ_INT(failed, 0);
}

int main(void)
{
    char dir[] = "/tmp/stsgate-test-sqlite-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct strbuf path = STRBUF_INIT;
    sb_printf(&path, "%s/t.db", dir);
    char err[256] = "";
    sqlite3 *db;

    T_EQ_INT(db_sqlite_open(sb_str(&path), true, two, 2, &db, err, sizeof err), SQLITE_OK);
    T_EQ_STR(text(db, "PRAGMA journal_mode"), "wal");
    T_EQ_STR(text(db, "PRAGMA synchronous"), "2"); /* FULL */
    T_EQ_STR(text(db, "PRAGMA foreign_keys"), "1");
    T_EQ_STR(text(db, "PRAGMA user_version"), "2");
    T_EQ_STR(text(db, "SELECT count(*) FROM a"), "1");
    int64_t n = -1;
    T_EQ_INT(db_sqlite_int64(db, "SELECT count(*) FROM b", &n, err, sizeof err), SQLITE_OK);
    T_EQ_INT(n, 0);
    db_sqlite_close(db);

    struct stat st;
    T_EQ_INT(stat(sb_str(&path), &st), 0);
    T_EQ_INT(st.st_mode & 0777, 0600);
    chmod(sb_str(&path), 0664);

    /* Reopening applies nothing twice. */
    T_EQ_INT(db_sqlite_open(sb_str(&path), false, two, 2, &db, err, sizeof err), SQLITE_OK);
    T_EQ_STR(text(db, "SELECT count(*) FROM a"), "1");
    T_EQ_STR(text(db, "PRAGMA synchronous"), "1"); /* NORMAL */
    db_sqlite_close(db);
    T_EQ_INT(stat(sb_str(&path), &st), 0);
    T_EQ_INT(st.st_mode & 0777, 0600);

    /* A failing script leaves the schema at the version before it, whole. */
    err[0] = '\0';
    T_CHECK(db_sqlite_open(sb_str(&path), true, three_bad, 3, &db, err, sizeof err) != SQLITE_OK);
    T_CHECK(db == NULL);
    T_CHECK(strstr(err, "nosuch") != NULL);
    T_EQ_INT(db_sqlite_open(sb_str(&path), true, two, 2, &db, err, sizeof err), SQLITE_OK);
    T_EQ_STR(text(db, "PRAGMA user_version"), "2");
    T_EQ_STR(text(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'c'"), "0");

    /* Transactions. */
    T_EQ_INT(db_sqlite_begin_immediate(db, err, sizeof err), SQLITE_OK);
    T_EQ_INT(db_sqlite_exec(db, "INSERT INTO b VALUES (7)", err, sizeof err), SQLITE_OK);
    db_sqlite_rollback(db);
    db_sqlite_rollback(db); /* harmless without a transaction */
    T_EQ_STR(text(db, "SELECT count(*) FROM b"), "0");
    T_EQ_INT(db_sqlite_begin_immediate(db, err, sizeof err), SQLITE_OK);
    T_EQ_INT(db_sqlite_exec(db, "INSERT INTO b VALUES (7)", err, sizeof err), SQLITE_OK);
    T_EQ_INT(db_sqlite_commit(db, err, sizeof err), SQLITE_OK);
    T_EQ_STR(text(db, "SELECT count(*) FROM b"), "1");
    sqlite3_stmt *stp;
    T_CHECK(db_sqlite_prepare(db, "SELECT nosuch FROM b", &stp, err, sizeof err) != SQLITE_OK);
    T_CHECK(stp == NULL);
    T_CHECK(strstr(err, "no such column") != NULL);
    db_sqlite_close(db);

    /* A schema newer than the program is refused, not written to. */
    T_CHECK(db_sqlite_open(sb_str(&path), true, two, 1, &db, err, sizeof err) != SQLITE_OK);
    T_CHECK(strstr(err, "newer") != NULL);

    /* No such directory. */
    T_CHECK(db_sqlite_open("/nonexistent/x.db", true, two, 2, &db, err, sizeof err) != SQLITE_OK);

    concurrent_open(dir);

    sb_free(&path);
    t_rm_tree(dir);
    return t_done();
}
