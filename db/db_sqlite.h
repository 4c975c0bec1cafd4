/* db_sqlite.h - the SQLite plumbing every store shares (configuration, queue, policy cache).
 *
 * Promises:
 * - db_sqlite_open() gives a connection in WAL mode with foreign keys on, a busy timeout, and
 *   synchronous=FULL or NORMAL as asked; the database file is mode 0600, whether it was just
 *   created or already existed (the -wal and -shm files inherit that mode from SQLite);
 * - migrations are an array of SQL scripts; script i takes the schema from user_version i to i+1.
 *   Each runs in its own BEGIN IMMEDIATE transaction together with the user_version bump, so a
 *   crash or a concurrent opener can never apply a script twice or leave one half-applied;
 * - every function returns an SQLite result code (SQLITE_OK on success) and, on failure, writes
 *   "<what>: <sqlite message>" into err. Nothing here prints or aborts.
 *
 * Writers must use db_sqlite_begin_immediate(): in WAL mode a plain BEGIN that later writes fails
 * at once with SQLITE_BUSY instead of waiting for busy_timeout. */
#ifndef STSGATE_DB_SQLITE_H
#define STSGATE_DB_SQLITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define DB_SQLITE_BUSY_MS 10000

/* Opens (creating when missing) the database at path, sets the pragmas, and applies the
 * migrations the file has not seen yet. On failure *out is NULL. */
int db_sqlite_open(const char *path, bool sync_full, const char *const *migrations, int nmigrations,
                   sqlite3 **out, char *err, size_t errlen);
/* Applies migrations[user_version..n-1]. A database newer than n scripts is an error: an older
 * program must not write a schema it does not know. */
int db_sqlite_migrate(sqlite3 *db, const char *const *migrations, int nmigrations, char *err,
                      size_t errlen);
void db_sqlite_close(sqlite3 *db);

/* Runs SQL without results (may hold several statements). */
int db_sqlite_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);
int db_sqlite_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen);
/* Runs a single-value query ("SELECT count(*) ..." or "PRAGMA user_version"); NULL reads as 0. */
int db_sqlite_int64(sqlite3 *db, const char *sql, int64_t *out, char *err, size_t errlen);

int db_sqlite_begin_immediate(sqlite3 *db, char *err, size_t errlen);
int db_sqlite_commit(sqlite3 *db, char *err, size_t errlen);
/* Rolls back when a transaction is open; safe to call when none is (after a failed COMMIT SQLite
 * may already have rolled back). */
void db_sqlite_rollback(sqlite3 *db);

/* Writes "<what>: <the connection's last error>" into err. */
void db_sqlite_err(sqlite3 *db, const char *what, char *err, size_t errlen);

#endif
