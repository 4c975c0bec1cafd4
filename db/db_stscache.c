/* db_stscache.c - the MTA-STS policy cache store over SQLite (see db_stscache.h).
 *
 * The table is WITHOUT ROWID with the domain as primary key, so a lookup is one B-tree search;
 * the partial index on refresh_at covers only rows that hold a policy, the only ones a refresh
 * wants. Statements are prepared once per handle.
 */
#include "db_stscache.h"

#include "db_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const migrations[] = {
    "CREATE TABLE stscache ("
    " domain TEXT PRIMARY KEY NOT NULL,"
    " has_policy INTEGER NOT NULL,"
    " id TEXT NOT NULL,"
    " mode TEXT NOT NULL,"
    " fetched_at INTEGER NOT NULL,"
    " max_age INTEGER NOT NULL,"
    " refresh_at INTEGER NOT NULL,"
    " last_used INTEGER NOT NULL,"
    " failed_id TEXT NOT NULL,"
    " failed_at INTEGER NOT NULL,"
    " policy BLOB"
    ") WITHOUT ROWID;"
    "CREATE INDEX stscache_refresh ON stscache (refresh_at) WHERE has_policy = 1;",
};

enum { ST_GET, ST_PUT, ST_DELETE, ST_DUE, ST_COUNT_ROWS, ST_N };

static const char *const stmt_sql[ST_N] = {
    [ST_GET] = "SELECT has_policy, id, mode, fetched_at, max_age, refresh_at, last_used,"
               " failed_id, failed_at, policy FROM stscache WHERE domain = ?1",
    [ST_PUT] = "INSERT INTO stscache (domain, has_policy, id, mode, fetched_at, max_age,"
               " refresh_at, last_used, failed_id, failed_at, policy)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
               " ON CONFLICT (domain) DO UPDATE SET has_policy = excluded.has_policy,"
               " id = excluded.id, mode = excluded.mode, fetched_at = excluded.fetched_at,"
               " max_age = excluded.max_age, refresh_at = excluded.refresh_at,"
               " last_used = excluded.last_used, failed_id = excluded.failed_id,"
               " failed_at = excluded.failed_at,"
               " policy = CASE WHEN excluded.has_policy = 0 THEN NULL"
               " WHEN excluded.policy IS NULL THEN stscache.policy ELSE excluded.policy END",
    [ST_DELETE] = "DELETE FROM stscache WHERE domain = ?1",
    [ST_DUE] = "SELECT domain, refresh_at FROM stscache WHERE has_policy = 1 AND refresh_at <= ?1"
               " ORDER BY refresh_at LIMIT ?2",
    [ST_COUNT_ROWS] = "SELECT count(*) FROM stscache",
};

struct db_stscache {
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
};

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

/* The key of a domain: ASCII lower case, one trailing dot removed. */
static bool make_key(const char *domain, char key[STS_NAME_MAX + 1], char *err, size_t errlen)
{
    size_t len = domain ? strlen(domain) : 0;
    if (len > 0 && domain[len - 1] == '.')
        len--;
    if (len == 0 || len > STS_NAME_MAX) {
        set_err(err, errlen, "stscache: invalid domain name");
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = domain[i];
        key[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    key[len] = '\0';
    return true;
}

/* Runs a statement that returns no rows, then resets it. */
static enum db_status step_done(struct db_stscache *c, sqlite3_stmt *st, const char *what,
                                char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    enum db_status s = DB_OK;
    if (rc != SQLITE_DONE) {
        db_sqlite_err(c->db, what, err, errlen);
        s = DB_ERROR;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return s;
}

enum db_status db_stscache_open(const char *datadir, struct db_stscache **out, char *err,
                                size_t errlen)
{
    *out = NULL;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/stscache.db", datadir) >= sizeof path) {
        set_err(err, errlen, "stscache: data directory path too long");
        return DB_ERROR;
    }
    struct db_stscache *c = calloc(1, sizeof *c);
    if (!c) {
        set_err(err, errlen, "stscache: out of memory");
        return DB_ERROR;
    }
    if (db_sqlite_open(path, false, migrations, (int)(sizeof migrations / sizeof migrations[0]),
                       &c->db, err, errlen) != SQLITE_OK) {
        free(c);
        return DB_ERROR;
    }
    for (int i = 0; i < ST_N; i++) {
        if (db_sqlite_prepare(c->db, stmt_sql[i], &c->st[i], err, errlen) != SQLITE_OK) {
            db_stscache_close(c);
            return DB_ERROR;
        }
    }
    *out = c;
    return DB_OK;
}

void db_stscache_close(struct db_stscache *c)
{
    if (!c)
        return;
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(c->st[i]);
    db_sqlite_close(c->db);
    free(c);
}

static void column_id(sqlite3_stmt *st, int col, char id[STS_ID_MAX + 1])
{
    const unsigned char *s = sqlite3_column_text(st, col);
    size_t n = s ? strnlen((const char *)s, STS_ID_MAX) : 0;
    memcpy(id, s ? (const char *)s : "", n);
    id[n] = '\0';
}

static enum sts_mode mode_from(const unsigned char *s)
{
    if (s && strcmp((const char *)s, "enforce") == 0)
        return STS_MODE_ENFORCE;
    if (s && strcmp((const char *)s, "testing") == 0)
        return STS_MODE_TESTING;
    return STS_MODE_NONE;
}

enum db_status db_stscache_get(struct db_stscache *c, const char *domain, struct sts_cache_entry *e,
                               char *policy, size_t policy_cap, size_t *policy_len, char *err,
                               size_t errlen)
{
    char key[STS_NAME_MAX + 1];
    if (!make_key(domain, key, err, errlen))
        return DB_ERROR;
    sqlite3_stmt *st = c->st[ST_GET];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    enum db_status s = DB_OK;
    if (rc == SQLITE_ROW) {
        memset(e, 0, sizeof *e);
        e->has_policy = sqlite3_column_int(st, 0) != 0;
        column_id(st, 1, e->id);
        e->mode = mode_from(sqlite3_column_text(st, 2));
        e->fetched_at = sqlite3_column_int64(st, 3);
        e->max_age = (uint32_t)sqlite3_column_int64(st, 4);
        e->refresh_at = sqlite3_column_int64(st, 5);
        e->last_used = sqlite3_column_int64(st, 6);
        column_id(st, 7, e->failed_id);
        e->failed_at = sqlite3_column_int64(st, 8);
        if (policy) {
            const void *blob = sqlite3_column_blob(st, 9);
            size_t n = (size_t)sqlite3_column_bytes(st, 9);
            memcpy(policy, blob ? blob : "", n < policy_cap ? n : policy_cap);
            if (policy_len)
                *policy_len = blob ? n : 0;
        }
    } else if (rc == SQLITE_DONE) {
        s = DB_NOTFOUND;
    } else {
        db_sqlite_err(c->db, "stscache get", err, errlen);
        s = DB_ERROR;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return s;
}

enum db_status db_stscache_put(struct db_stscache *c, const char *domain,
                               const struct sts_cache_entry *e, const char *policy, size_t len,
                               char *err, size_t errlen)
{
    char key[STS_NAME_MAX + 1];
    if (!make_key(domain, key, err, errlen))
        return DB_ERROR;
    if (policy && len > STS_POLICY_MAX) {
        set_err(err, errlen, "stscache: policy text larger than 65536 bytes");
        return DB_ERROR;
    }
    sqlite3_stmt *st = c->st[ST_PUT];
    char id[STS_ID_MAX + 1], failed_id[STS_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", STS_ID_MAX, e->id);
    snprintf(failed_id, sizeof failed_id, "%.*s", STS_ID_MAX, e->failed_id);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, e->has_policy ? 1 : 0);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, sts_mode_name(e->mode), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, e->fetched_at);
    sqlite3_bind_int64(st, 6, e->max_age);
    sqlite3_bind_int64(st, 7, e->refresh_at);
    sqlite3_bind_int64(st, 8, e->last_used);
    sqlite3_bind_text(st, 9, failed_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 10, e->failed_at);
    if (policy && e->has_policy)
        sqlite3_bind_blob(st, 11, policy, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 11);
    return step_done(c, st, "stscache put", err, errlen);
}

enum db_status db_stscache_delete(struct db_stscache *c, const char *domain, char *err,
                                  size_t errlen)
{
    char key[STS_NAME_MAX + 1];
    if (!make_key(domain, key, err, errlen))
        return DB_ERROR;
    sqlite3_stmt *st = c->st[ST_DELETE];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return step_done(c, st, "stscache delete", err, errlen);
}

enum db_status db_stscache_save(struct db_stscache *c, const char *domain,
                                const struct sts_cache_decision *d, const char *policy, size_t len,
                                char *err, size_t errlen)
{
    if (!d->changed)
        return DB_OK;
    if (sts_cache_entry_empty(&d->entry))
        return db_stscache_delete(c, domain, err, errlen);
    return db_stscache_put(c, domain, &d->entry, policy, len, err, errlen);
}

enum db_status db_stscache_due(struct db_stscache *c, int64_t now, struct db_stscache_due *due,
                               size_t max, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (max == 0)
        return DB_OK;
    sqlite3_stmt *st = c->st[ST_DUE];
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
        const unsigned char *d = sqlite3_column_text(st, 0);
        snprintf(due[*n].domain, sizeof due[*n].domain, "%s", d ? (const char *)d : "");
        due[*n].refresh_at = sqlite3_column_int64(st, 1);
        (*n)++;
    }
    enum db_status s = DB_OK;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_sqlite_err(c->db, "stscache due", err, errlen);
        s = DB_ERROR;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return s;
}

enum db_status db_stscache_count(struct db_stscache *c, int64_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *st = c->st[ST_COUNT_ROWS];
    int rc = sqlite3_step(st);
    enum db_status s = DB_OK;
    if (rc == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
    } else {
        db_sqlite_err(c->db, "stscache count", err, errlen);
        s = DB_ERROR;
    }
    sqlite3_reset(st);
    return s;
}
