/* db_sqlite.c - opening, migrating and transacting on SQLite databases for every store.
 *
 * See db_sqlite.h for the promises. The file is created by us with open(2) before SQLite sees it,
 * so its mode is 0600 from the first byte rather than after a window at the umask's mode. */
#include "db_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void db_sqlite_err(sqlite3 *db, const char *what, char *err, size_t errlen)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

int db_sqlite_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK && err && errlen)
        snprintf(err, errlen, "%.60s: %s", sql, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc;
}

int db_sqlite_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        char what[80];
        snprintf(what, sizeof what, "prepare %.60s", sql);
        db_sqlite_err(db, what, err, errlen);
        *st = NULL;
    }
    return rc;
}

int db_sqlite_int64(sqlite3 *db, const char *sql, int64_t *out, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = db_sqlite_prepare(db, sql, &st, err, errlen);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    } else {
        db_sqlite_err(db, sql, err, errlen);
    }
    sqlite3_finalize(st);
    return rc;
}

int db_sqlite_begin_immediate(sqlite3 *db, char *err, size_t errlen)
{
    return db_sqlite_exec(db, "BEGIN IMMEDIATE", err, errlen);
}

int db_sqlite_commit(sqlite3 *db, char *err, size_t errlen)
{
    return db_sqlite_exec(db, "COMMIT", err, errlen);
}

void db_sqlite_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int db_sqlite_migrate(sqlite3 *db, const char *const *migrations, int nmigrations, char *err,
                      size_t errlen)
{
    for (;;) {
        int64_t have;
        int rc = db_sqlite_int64(db, "PRAGMA user_version", &have, err, errlen);
        if (rc != SQLITE_OK)
            return rc;
        if (have == nmigrations)
            return SQLITE_OK;
        if (have > nmigrations) {
            snprintf(err, errlen,
                     "the database schema is version %lld, newer than this program knows (%d)",
                     (long long)have, nmigrations);
            return SQLITE_ERROR;
        }
        rc = db_sqlite_begin_immediate(db, err, errlen);
        if (rc != SQLITE_OK)
            return rc;
        /* Read again under the write lock: another process may have migrated meanwhile. */
        rc = db_sqlite_int64(db, "PRAGMA user_version", &have, err, errlen);
        if (rc == SQLITE_OK && have < nmigrations) {
            rc = db_sqlite_exec(db, migrations[have], err, errlen);
            if (rc == SQLITE_OK) {
                char bump[64];
                snprintf(bump, sizeof bump, "PRAGMA user_version = %lld", (long long)have + 1);
                rc = db_sqlite_exec(db, bump, err, errlen);
            }
        }
        if (rc == SQLITE_OK)
            rc = db_sqlite_commit(db, err, errlen);
        if (rc != SQLITE_OK) {
            db_sqlite_rollback(db);
            return rc;
        }
    }
}

/* Creates the file 0600 when missing and narrows an existing one to 0600: the configuration holds
 * private keys, the queue holds mail. */
static int make_private(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return SQLITE_CANTOPEN;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0) {
        snprintf(err, errlen, "%s: chmod 0600: %s", path, strerror(errno));
        close(fd);
        return SQLITE_CANTOPEN;
    }
    close(fd);
    return SQLITE_OK;
}

/* The promises (readers never block the writer, a commit is one append to the WAL) hold only in
 * WAL mode, and SQLite answers with the mode it fell back to rather than an error.
 *
 * The switch reads the file and then takes the write lock. When another opener holds a read lock
 * at that moment, SQLite answers SQLITE_BUSY at once without calling the busy handler (waiting
 * could deadlock two such openers), so the wait for other openers is ours: retry for as long as
 * busy_timeout would have waited. */
static int set_wal(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = db_sqlite_prepare(db, "PRAGMA journal_mode=WAL", &st, err, errlen);
    if (rc != SQLITE_OK)
        return rc;
    enum { PAUSE_MS = 5 };
    for (int waited = 0; (rc = sqlite3_step(st)) == SQLITE_BUSY && waited < DB_SQLITE_BUSY_MS;
         waited += PAUSE_MS) {
        sqlite3_reset(st);
        sqlite3_sleep(PAUSE_MS);
    }
    if (rc == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        rc = SQLITE_OK;
        if (!mode || strcmp(mode, "wal") != 0) {
            snprintf(err, errlen, "cannot use WAL mode (the database is in %s mode)",
                     mode ? mode : "an unknown");
            rc = SQLITE_ERROR;
        }
    } else {
        db_sqlite_err(db, "PRAGMA journal_mode=WAL", err, errlen);
    }
    sqlite3_finalize(st);
    return rc;
}

int db_sqlite_open(const char *path, bool sync_full, const char *const *migrations, int nmigrations,
                   sqlite3 **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = make_private(path, err, errlen);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3 *db = NULL;
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        char what[300];
        snprintf(what, sizeof what, "open %.250s", path);
        db_sqlite_err(db, what, err, errlen);
        sqlite3_close(db);
        return rc;
    }
    sqlite3_extended_result_codes(db, 1);
    /* The busy timeout first, so that the journal_mode switch waits for other openers. */
    sqlite3_busy_timeout(db, DB_SQLITE_BUSY_MS);
    rc = set_wal(db, err, errlen);
    if (rc == SQLITE_OK)
        rc = db_sqlite_exec(db, sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                            err, errlen);
    if (rc == SQLITE_OK)
        rc = db_sqlite_exec(db, "PRAGMA foreign_keys=ON", err, errlen);
    if (rc == SQLITE_OK)
        rc = db_sqlite_migrate(db, migrations, nmigrations, err, errlen);
    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return SQLITE_OK;
}

void db_sqlite_close(sqlite3 *db)
{
    /* sqlite3_close_v2 defers the close until the caller's leftover statements are finalized. */
    if (db)
        sqlite3_close_v2(db);
}
