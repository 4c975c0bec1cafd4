/* db_cfg.c - the configuration store over <data>/config.db (see db_cfg.h for the promises).
 *
 * Schema (migration 1):
 * - commits(version, time, user, comment, saved): one row per commit, kept for good;
 * - units(kind, name, vfrom, vto, body) WITHOUT ROWID, primary key (kind, name, vfrom): the body a
 *   unit had from version vfrom up to, not including, version vto; vto NULL means "still so in the
 *   newest version". Version v is every row with vfrom <= v < vto.
 * Indexes: units_current, unique on (kind, name) where vto IS NULL, reads the newest version in
 *   order and finds the row a commit closes; units_closed on vto serves pruning; the primary key
 *   answers "did (kind, name) change after version N" by walking that unit's few rows.
 *
 * A session caches the newest committed version it has seen as a sorted array and keeps its
 * pending changes as a second sorted array; the view is the merge of the two. */
#include "db_cfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_sqlite.h"
#include "strbuf.h"

static const char *const migrations[] = {
    "CREATE TABLE commits ("
    "  version INTEGER PRIMARY KEY,"
    "  time INTEGER NOT NULL,"
    "  user TEXT NOT NULL,"
    "  comment TEXT NOT NULL,"
    "  saved INTEGER NOT NULL CHECK (saved IN (0, 1)));"
    "CREATE INDEX commits_saved ON commits(version) WHERE saved = 1;"
    "CREATE TABLE units ("
    "  kind TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  vfrom INTEGER NOT NULL REFERENCES commits(version),"
    "  vto INTEGER REFERENCES commits(version) CHECK (vto IS NULL OR vto > vfrom),"
    "  body TEXT NOT NULL,"
    "  PRIMARY KEY (kind, name, vfrom)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX units_current ON units(kind, name) WHERE vto IS NULL;"
    "CREATE INDEX units_closed ON units(vto) WHERE vto IS NOT NULL;",
};

#define RETAINED_SAVED                                                                             \
    "(SELECT version FROM commits WHERE saved = 1 ORDER BY version DESC LIMIT 10)"

enum {
    ST_DATA_VERSION,
    ST_LATEST,
    ST_EXISTS,
    ST_RETAINED,
    ST_LOAD_CURRENT,
    ST_LOAD_AT,
    ST_COMMIT_INFO,
    ST_HISTORY,
    ST_CONFLICT_UNIT,
    ST_CONFLICT_KIND,
    ST_CURRENT_BODY,
    ST_CLOSE_ROW,
    ST_INSERT_ROW,
    ST_INSERT_COMMIT,
    ST_PRUNE,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_LATEST] = "SELECT max(version) FROM commits",
    [ST_EXISTS] = "SELECT 1 FROM commits WHERE version = ?1",
    [ST_RETAINED] = "SELECT 1 FROM " RETAINED_SAVED " WHERE version = ?1",
    [ST_LOAD_CURRENT] = "SELECT kind, name, body, vfrom FROM units WHERE vto IS NULL "
                        "ORDER BY kind, name",
    [ST_LOAD_AT] = "SELECT kind, name, body, vfrom FROM units "
                   "WHERE vfrom <= ?1 AND (vto IS NULL OR vto > ?1) ORDER BY kind, name",
    [ST_COMMIT_INFO] = "SELECT version, time, user, comment, saved FROM commits "
                       "WHERE version = ?1",
    [ST_HISTORY] = "SELECT version, time, user, comment, saved FROM commits WHERE saved = 1 "
                   "ORDER BY version DESC LIMIT ?1",
    /* The newest commit after ?3 that wrote (vfrom) or replaced/deleted (vto) the unit. */
    [ST_CONFLICT_UNIT] = "SELECT max(CASE WHEN vto > ?3 THEN vto ELSE vfrom END) FROM units "
                         "WHERE kind = ?1 AND name = ?2 AND (vfrom > ?3 OR vto > ?3)",
    [ST_CONFLICT_KIND] = "SELECT name, CASE WHEN vto > ?2 THEN vto ELSE vfrom END AS ev "
                         "FROM units WHERE kind = ?1 AND (vfrom > ?2 OR vto > ?2) "
                         "ORDER BY ev DESC",
    [ST_CURRENT_BODY] = "SELECT body FROM units WHERE kind = ?1 AND name = ?2 AND vto IS NULL",
    [ST_CLOSE_ROW] = "UPDATE units SET vto = ?3 WHERE kind = ?1 AND name = ?2 AND vto IS NULL",
    [ST_INSERT_ROW] =
        "INSERT INTO units(kind, name, vfrom, vto, body) VALUES (?1, ?2, ?3, NULL, ?4)",
    [ST_INSERT_COMMIT] = "INSERT INTO commits(version, time, user, comment, saved) "
                         "VALUES (?1, ?2, ?3, ?4, ?5)",
    /* Rows closed before the window that no retained saved version needs. */
    [ST_PRUNE] = "DELETE FROM units WHERE vto <= ?1 AND NOT EXISTS (SELECT 1 FROM " RETAINED_SAVED
                 " r WHERE r.version >= units.vfrom AND r.version < units.vto)",
};

struct db_cfg {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    /* db_cfg_latest's cache: valid while PRAGMA data_version still reads data_version. */
    bool have_latest;
    int64_t data_version;
    int64_t latest;
    char err[256];
};

struct pend {
    char *kind;
    char *name;
    char *body;    /* NULL: delete */
    int64_t readv; /* the newest committed version the session had when the change was made */
};

/* A replace_kind: a change to every unit of kind except keep, as read at readv. */
struct kindrec {
    char *kind;
    int64_t readv;
    char **keep; /* NULL-terminated */
};

struct db_session {
    struct db_cfg *db;
    char *user;
    int64_t base; /* the version committed holds; 0 before the first successful refresh */
    struct db_units committed;
    struct pend *p; /* sorted by kind, name; unique */
    size_t np, cp;
    struct kindrec *k;
    size_t nk;
};

/* ---- units ---- */

static int key_cmp(const char *k1, const char *n1, const char *k2, const char *n2)
{
    int c = strcmp(k1, k2);
    return c ? c : strcmp(n1, n2);
}

static void units_push(struct db_units *u, char *kind, char *name, char *body, int64_t version)
{
    if (u->n == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 64;
        u->v = xrealloc(u->v, u->cap * sizeof *u->v);
    }
    u->v[u->n++] = (struct db_unit){kind, name, body, version};
}

void db_units_add(struct db_units *u, const char *kind, const char *name, const char *body)
{
    units_push(u, xstrdup(kind), xstrdup(name), xstrdup(body), 0);
}

void db_units_free(struct db_units *u)
{
    for (size_t i = 0; i < u->n; i++) {
        free(u->v[i].kind);
        free(u->v[i].name);
        free(u->v[i].body);
    }
    free(u->v);
    *u = (struct db_units){0};
}

static int unit_qcmp(const void *a, const void *b)
{
    const struct db_unit *x = a, *y = b;
    return key_cmp(x->kind, x->name, y->kind, y->name);
}

void db_units_sort(struct db_units *u)
{
    if (u->n > 1)
        qsort(u->v, u->n, sizeof *u->v, unit_qcmp);
}

/* First index whose key is >= (kind, name); name "" finds the start of a kind. */
static size_t units_lower(const struct db_units *u, const char *kind, const char *name)
{
    size_t lo = 0, hi = u->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(u->v[mid].kind, u->v[mid].name, kind, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const struct db_unit *units_find(const struct db_units *u, const char *kind,
                                        const char *name)
{
    size_t i = units_lower(u, kind, name);
    if (i < u->n && strcmp(u->v[i].kind, kind) == 0 && strcmp(u->v[i].name, name) == 0)
        return &u->v[i];
    return NULL;
}

/* ---- the database ---- */

static enum db_status fail(struct db_cfg *db, const char *what)
{
    db_sqlite_err(db->db, what, db->err, sizeof db->err);
    return DB_ERROR;
}

static sqlite3_stmt *stmt(struct db_cfg *db, int which)
{
    sqlite3_stmt *st = db->st[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static void copy_str(char *dst, size_t n, const unsigned char *src)
{
    snprintf(dst, n, "%s", src ? (const char *)src : "");
}

static void read_commit_row(sqlite3_stmt *st, struct db_commit_info *out)
{
    out->version = sqlite3_column_int64(st, 0);
    out->time = sqlite3_column_int64(st, 1);
    copy_str(out->user, sizeof out->user, sqlite3_column_text(st, 2));
    copy_str(out->comment, sizeof out->comment, sqlite3_column_text(st, 3));
    out->saved = sqlite3_column_int(st, 4) != 0;
}

/* Reads a commit record; DB_NOTFOUND when there is none. */
static enum db_status get_commit(struct db_cfg *db, int64_t version, struct db_commit_info *out)
{
    sqlite3_stmt *st = stmt(db, ST_COMMIT_INFO);
    sqlite3_bind_int64(st, 1, version);
    int rc = sqlite3_step(st);
    enum db_status ret = DB_NOTFOUND;
    if (rc == SQLITE_ROW) {
        read_commit_row(st, out);
        ret = DB_OK;
    } else if (rc != SQLITE_DONE) {
        ret = fail(db, "read commit");
    }
    sqlite3_reset(st);
    return ret;
}

/* Runs a statement whose answer is one integer (or no row: *found false). */
static enum db_status step_int64(struct db_cfg *db, sqlite3_stmt *st, const char *what,
                                 int64_t *out, bool *found)
{
    int rc = sqlite3_step(st);
    enum db_status ret = DB_OK;
    *found = false;
    if (rc == SQLITE_ROW) {
        *found = sqlite3_column_type(st, 0) != SQLITE_NULL;
        *out = sqlite3_column_int64(st, 0);
    } else if (rc != SQLITE_DONE) {
        ret = fail(db, what);
    }
    sqlite3_reset(st);
    return ret;
}

static enum db_status newest_version(struct db_cfg *db, int64_t *out)
{
    bool found;
    enum db_status ret = step_int64(db, stmt(db, ST_LATEST), "read newest version", out, &found);
    if (ret == DB_OK && !found)
        *out = 0;
    return ret;
}

static enum db_status is_retained_saved(struct db_cfg *db, int64_t version, bool *yes)
{
    sqlite3_stmt *st = stmt(db, ST_RETAINED);
    sqlite3_bind_int64(st, 1, version);
    int64_t one;
    return step_int64(db, st, "read saved versions", &one, yes);
}

static enum db_status insert_commit(struct db_cfg *db, int64_t version, int64_t when,
                                    const char *user, const char *comment, bool saved)
{
    sqlite3_stmt *st = stmt(db, ST_INSERT_COMMIT);
    sqlite3_bind_int64(st, 1, version);
    sqlite3_bind_int64(st, 2, when);
    bind_text(st, 3, user);
    bind_text(st, 4, comment);
    sqlite3_bind_int(st, 5, saved ? 1 : 0);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? DB_OK : fail(db, "record commit");
}

static enum db_status insert_row(struct db_cfg *db, const char *kind, const char *name,
                                 int64_t version, const char *body)
{
    sqlite3_stmt *st = stmt(db, ST_INSERT_ROW);
    bind_text(st, 1, kind);
    bind_text(st, 2, name);
    sqlite3_bind_int64(st, 3, version);
    bind_text(st, 4, body);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? DB_OK : fail(db, "write unit");
}

/* Writes version 1 from the factory unless another opener already did. */
static enum db_status write_factory(struct db_cfg *db, db_factory_fn factory, void *arg)
{
    if (db_sqlite_begin_immediate(db->db, db->err, sizeof db->err) != SQLITE_OK)
        return DB_ERROR;
    int64_t newest;
    enum db_status ret = newest_version(db, &newest);
    if (ret == DB_OK && newest == 0) {
        struct db_units u = {0};
        if (factory)
            factory(&u, arg);
        db_units_sort(&u);
        ret = insert_commit(db, 1, time(NULL), "system", "Initial configuration", false);
        for (size_t i = 0; ret == DB_OK && i < u.n; i++) {
            if (i > 0 && unit_qcmp(&u.v[i - 1], &u.v[i]) == 0) {
                snprintf(db->err, sizeof db->err, "factory configuration: %s %s twice", u.v[i].kind,
                         u.v[i].name);
                ret = DB_ERROR;
            } else {
                ret = insert_row(db, u.v[i].kind, u.v[i].name, 1, u.v[i].body);
            }
        }
        db_units_free(&u);
    }
    if (ret == DB_OK && db_sqlite_commit(db->db, db->err, sizeof db->err) != SQLITE_OK)
        ret = DB_ERROR;
    if (ret != DB_OK)
        db_sqlite_rollback(db->db);
    return ret;
}

enum db_status db_cfg_open(const char *datadir, db_factory_fn factory, void *factory_arg,
                           struct db_cfg **out, char *err, size_t errlen)
{
    *out = NULL;
    struct db_cfg *db = xcalloc(1, sizeof *db);
    struct strbuf path = STRBUF_INIT;
    sb_printf(&path, "%s/config.db", datadir);
    int rc = db_sqlite_open(sb_str(&path), true, migrations,
                            (int)(sizeof migrations / sizeof migrations[0]), &db->db, err, errlen);
    sb_free(&path);
    if (rc != SQLITE_OK) {
        free(db);
        return DB_ERROR;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (db_sqlite_prepare(db->db, stmt_sql[i], &db->st[i], err, errlen) != SQLITE_OK) {
            db_cfg_close(db);
            return DB_ERROR;
        }
    }
    int64_t newest;
    enum db_status ret = newest_version(db, &newest);
    if (ret == DB_OK && newest == 0)
        ret = write_factory(db, factory, factory_arg);
    if (ret != DB_OK) {
        snprintf(err, errlen, "%s", db->err);
        db_cfg_close(db);
        return ret;
    }
    *out = db;
    return DB_OK;
}

void db_cfg_close(struct db_cfg *db)
{
    if (!db)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(db->st[i]);
    db_sqlite_close(db->db);
    free(db);
}

const char *db_cfg_error(const struct db_cfg *db)
{
    return db->err;
}

enum db_status db_cfg_latest(struct db_cfg *db, int64_t *version)
{
    int64_t dv;
    bool found;
    if (step_int64(db, stmt(db, ST_DATA_VERSION), "data_version", &dv, &found) != DB_OK)
        return DB_ERROR;
    if (db->have_latest && dv == db->data_version) {
        *version = db->latest;
        return DB_OK;
    }
    /* data_version is read before the query: a commit in between only makes the next call query
     * again, never hides a version. */
    if (newest_version(db, version) != DB_OK)
        return DB_ERROR;
    db->have_latest = true;
    db->data_version = dv;
    db->latest = *version;
    return DB_OK;
}

static enum db_status read_units(struct db_cfg *db, sqlite3_stmt *st, struct db_units *out)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        units_push(out, xstrdup((const char *)sqlite3_column_text(st, 0)),
                   xstrdup((const char *)sqlite3_column_text(st, 1)),
                   xstrdup((const char *)sqlite3_column_text(st, 2)), sqlite3_column_int64(st, 3));
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? DB_OK : fail(db, "read units");
}

/* Loads inside the caller's read transaction. */
static enum db_status load_locked(struct db_cfg *db, int64_t version, struct db_units *out)
{
    int64_t newest;
    if (newest_version(db, &newest) != DB_OK)
        return DB_ERROR;
    if (version == newest && newest > 0)
        return read_units(db, stmt(db, ST_LOAD_CURRENT), out);
    if (version < 1 || version > newest)
        return DB_NOTFOUND;
    if (version < newest - DB_CFG_KEEP_CLOSED) {
        bool saved;
        if (is_retained_saved(db, version, &saved) != DB_OK)
            return DB_ERROR;
        if (!saved)
            return DB_NOTFOUND; /* its rows may have been pruned */
    }
    sqlite3_stmt *st = stmt(db, ST_LOAD_AT);
    sqlite3_bind_int64(st, 1, version);
    return read_units(db, st, out);
}

enum db_status db_cfg_load(struct db_cfg *db, int64_t version, struct db_units *out)
{
    *out = (struct db_units){0};
    /* One read transaction, so that "is it the newest" and the rows come from one snapshot. */
    if (db_sqlite_exec(db->db, "BEGIN", db->err, sizeof db->err) != SQLITE_OK)
        return DB_ERROR;
    enum db_status ret = load_locked(db, version, out);
    db_sqlite_exec(db->db, "COMMIT", NULL, 0);
    if (ret != DB_OK)
        db_units_free(out);
    return ret;
}

enum db_status db_cfg_commit_info(struct db_cfg *db, int64_t version, struct db_commit_info *out)
{
    return get_commit(db, version, out);
}

enum db_status db_cfg_history(struct db_cfg *db, struct db_commit_info *out, int max, int *n)
{
    *n = 0;
    if (max > DB_CFG_KEEP_SAVED)
        max = DB_CFG_KEEP_SAVED; /* older saved versions can no longer be loaded */
    sqlite3_stmt *st = stmt(db, ST_HISTORY);
    sqlite3_bind_int(st, 1, max < 0 ? 0 : max);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        read_commit_row(st, &out[(*n)++]);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? DB_OK : fail(db, "read history");
}

/* ---- sessions ---- */

static void pend_free(struct pend *p)
{
    free(p->kind);
    free(p->name);
    free(p->body);
}

static void kindrec_free(struct kindrec *k)
{
    free(k->kind);
    for (char **n = k->keep; n && *n; n++)
        free(*n);
    free(k->keep);
}

static size_t pend_lower(const struct db_session *s, const char *kind, const char *name)
{
    size_t lo = 0, hi = s->np;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(s->p[mid].kind, s->p[mid].name, kind, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool pend_at(const struct db_session *s, size_t i, const char *kind, const char *name)
{
    return i < s->np && strcmp(s->p[i].kind, kind) == 0 && strcmp(s->p[i].name, name) == 0;
}

static void pend_reserve(struct db_session *s, size_t n)
{
    if (n <= s->cp)
        return;
    s->cp = s->cp ? s->cp : 16;
    while (s->cp < n)
        s->cp *= 2;
    s->p = xrealloc(s->p, s->cp * sizeof *s->p);
}

static void pending_clear(struct db_session *s)
{
    for (size_t i = 0; i < s->np; i++)
        pend_free(&s->p[i]);
    s->np = 0;
    for (size_t i = 0; i < s->nk; i++)
        kindrec_free(&s->k[i]);
    free(s->k);
    s->k = NULL;
    s->nk = 0;
}

struct db_session *db_session_new(struct db_cfg *db, const char *user)
{
    struct db_session *s = xcalloc(1, sizeof *s);
    s->db = db;
    s->user = xstrdup(user ? user : "");
    /* A failure here leaves base 0; the caller's next refresh tries again and reports. */
    db_session_refresh(s);
    return s;
}

void db_session_free(struct db_session *s)
{
    if (!s)
        return;
    pending_clear(s);
    free(s->p);
    db_units_free(&s->committed);
    free(s->user);
    free(s);
}

static enum db_status reload(struct db_session *s, int64_t version)
{
    struct db_units u;
    enum db_status ret = db_cfg_load(s->db, version, &u);
    if (ret != DB_OK)
        return ret;
    db_units_free(&s->committed);
    s->committed = u;
    s->base = version;
    return DB_OK;
}

enum db_status db_session_refresh(struct db_session *s)
{
    int64_t latest;
    if (db_cfg_latest(s->db, &latest) != DB_OK)
        return DB_ERROR;
    if (latest == s->base)
        return DB_OK;
    return reload(s, latest);
}

static const char *committed_body(const struct db_session *s, const char *kind, const char *name)
{
    const struct db_unit *u = units_find(&s->committed, kind, name);
    return u ? u->body : NULL;
}

const char *db_session_get(struct db_session *s, const char *kind, const char *name)
{
    size_t i = pend_lower(s, kind, name);
    if (pend_at(s, i, kind, name))
        return s->p[i].body;
    return committed_body(s, kind, name);
}

const char *db_session_get_committed(struct db_session *s, const char *kind, const char *name)
{
    return committed_body(s, kind, name);
}

int db_session_each(struct db_session *s, const char *kind,
                    int (*fn)(void *arg, const char *name, const char *body), void *arg)
{
    const struct db_units *c = &s->committed;
    size_t i = units_lower(c, kind, ""), j = pend_lower(s, kind, "");
    for (;;) {
        bool ci = i < c->n && strcmp(c->v[i].kind, kind) == 0;
        bool pj = j < s->np && strcmp(s->p[j].kind, kind) == 0;
        if (!ci && !pj)
            return 0;
        int cmp = !ci ? 1 : !pj ? -1 : strcmp(c->v[i].name, s->p[j].name);
        int rc = 0;
        if (cmp < 0) {
            rc = fn(arg, c->v[i].name, c->v[i].body);
            i++;
        } else {
            if (s->p[j].body)
                rc = fn(arg, s->p[j].name, s->p[j].body);
            j++;
            if (cmp == 0)
                i++;
        }
        if (rc)
            return rc;
    }
}

static bool same_body(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

void db_session_put(struct db_session *s, const char *kind, const char *name, const char *body)
{
    size_t i = pend_lower(s, kind, name);
    bool found = pend_at(s, i, kind, name);
    if (same_body(body, committed_body(s, kind, name))) {
        if (found) {
            pend_free(&s->p[i]);
            memmove(&s->p[i], &s->p[i + 1], (s->np - i - 1) * sizeof *s->p);
            s->np--;
        }
        return;
    }
    /* Copy first: body may point into the session (a value from db_session_get). */
    char *copy = body ? xstrdup(body) : NULL;
    if (found) {
        /* The older read version stays: the user has not seen commits made since. */
        free(s->p[i].body);
        s->p[i].body = copy;
        return;
    }
    char *k = xstrdup(kind), *n = xstrdup(name);
    pend_reserve(s, s->np + 1);
    memmove(&s->p[i + 1], &s->p[i], (s->np - i) * sizeof *s->p);
    s->p[i] = (struct pend){k, n, copy, s->base};
    s->np++;
}

static bool in_keep(const char *const *keep, const char *name)
{
    for (; keep && *keep; keep++)
        if (strcmp(*keep, name) == 0)
            return true;
    return false;
}

struct newunit {
    const char *name;
    const char *body;
    size_t order;
};

static int newunit_cmp(const void *a, const void *b)
{
    const struct newunit *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Records the kind-wide conflict marker; two replaces keep the older read version and only the
 * names both kept. */
static void add_kindrec(struct db_session *s, const char *kind, const char *const *keep)
{
    size_t nkeep = 0;
    for (const char *const *k = keep; k && *k; k++)
        nkeep++;
    for (size_t i = 0; i < s->nk; i++) {
        struct kindrec *r = &s->k[i];
        if (strcmp(r->kind, kind) != 0)
            continue;
        size_t w = 0;
        for (size_t j = 0; r->keep[j]; j++) {
            if (in_keep(keep, r->keep[j]))
                r->keep[w++] = r->keep[j];
            else
                free(r->keep[j]);
        }
        r->keep[w] = NULL;
        if (s->base < r->readv)
            r->readv = s->base;
        return;
    }
    s->k = xrealloc(s->k, (s->nk + 1) * sizeof *s->k);
    struct kindrec *r = &s->k[s->nk++];
    r->kind = xstrdup(kind);
    r->readv = s->base;
    r->keep = xcalloc(nkeep + 1, sizeof *r->keep);
    for (size_t j = 0; j < nkeep; j++)
        r->keep[j] = xstrdup(keep[j]);
}

void db_session_replace_kind(struct db_session *s, const char *kind, const struct db_units *units,
                             const char *const *keep)
{
    /* The new set, sorted by name, the last of equal names winning (as a later put would). */
    size_t nn = 0;
    struct newunit *nu = xcalloc(units ? units->n : 0, sizeof *nu);
    for (size_t i = 0; units && i < units->n; i++)
        if (strcmp(units->v[i].kind, kind) == 0)
            nu[nn++] = (struct newunit){units->v[i].name, units->v[i].body, i};
    qsort(nu, nn, sizeof *nu, newunit_cmp);
    size_t w = 0;
    for (size_t i = 0; i < nn; i++) {
        if (w > 0 && strcmp(nu[w - 1].name, nu[i].name) == 0)
            w--;
        nu[w++] = nu[i];
    }
    nn = w;

    /* Merge committed (c), old pending (p) and new (n) units of kind, by name, into a new pending
     * segment for the kind. */
    const struct db_units *c = &s->committed;
    size_t ci = units_lower(c, kind, ""), pa = pend_lower(s, kind, ""), pb = pa, ni = 0;
    while (pb < s->np && strcmp(s->p[pb].kind, kind) == 0)
        pb++;
    size_t pi = pa;
    struct pend *seg = NULL;
    size_t ns = 0, cs = 0;
    for (;;) {
        const char *cn = ci < c->n && strcmp(c->v[ci].kind, kind) == 0 ? c->v[ci].name : NULL;
        const char *pn = pi < pb ? s->p[pi].name : NULL;
        const char *nname = ni < nn ? nu[ni].name : NULL;
        const char *name = cn;
        if (pn && (!name || strcmp(pn, name) < 0))
            name = pn;
        if (nname && (!name || strcmp(nname, name) < 0))
            name = nname;
        if (!name)
            break;
        const char *cbody = cn && strcmp(cn, name) == 0 ? c->v[ci].body : NULL;
        struct pend *old = pn && strcmp(pn, name) == 0 ? &s->p[pi] : NULL;
        const struct newunit *nw = nname && strcmp(nname, name) == 0 ? &nu[ni] : NULL;
        struct pend out = {0};
        bool emit = false;
        if (nw) {
            if (!same_body(nw->body, cbody)) {
                out = (struct pend){xstrdup(kind), xstrdup(name), xstrdup(nw->body), s->base};
                emit = true;
            }
        } else if (in_keep(keep, name)) {
            if (old) {
                out = *old; /* moved */
                old->kind = old->name = old->body = NULL;
                emit = true;
            }
        } else if (cbody) {
            out = (struct pend){xstrdup(kind), xstrdup(name), NULL, s->base};
            emit = true;
        }
        if (emit) {
            if (ns == cs) {
                cs = cs ? cs * 2 : 16;
                seg = xrealloc(seg, cs * sizeof *seg);
            }
            seg[ns++] = out;
        }
        /* name is now the smallest of the three: advance whichever held it. */
        if (cn && strcmp(cn, name) == 0)
            ci++;
        if (old)
            pi++;
        if (nw)
            ni++;
    }
    free(nu);

    /* Splice: p[0..pa) + seg + p[pb..np). */
    for (size_t i = pa; i < pb; i++)
        pend_free(&s->p[i]);
    size_t tail = s->np - pb;
    pend_reserve(s, pa + ns + tail);
    memmove(&s->p[pa + ns], &s->p[pb], tail * sizeof *s->p);
    if (ns)
        memcpy(&s->p[pa], seg, ns * sizeof *seg);
    s->np = pa + ns + tail;
    free(seg);
    add_kindrec(s, kind, keep);
}

bool db_session_dirty(const struct db_session *s)
{
    return s->np > 0;
}

size_t db_session_changes(struct db_session *s, struct db_change **out)
{
    struct db_change *v = xcalloc(s->np, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < s->np; i++) {
        const char *old = committed_body(s, s->p[i].kind, s->p[i].name);
        /* A refresh may have brought in the same body from another session's commit. */
        if (same_body(old, s->p[i].body))
            continue;
        v[n++] = (struct db_change){s->p[i].kind, s->p[i].name, old, s->p[i].body};
    }
    *out = v;
    return n;
}

void db_session_clear(struct db_session *s)
{
    pending_clear(s);
}

/* Fills conflict from the commit at version ev. */
static enum db_status report_conflict(struct db_cfg *db, const char *name, int64_t ev,
                                      struct db_conflict *conflict)
{
    struct db_commit_info ci;
    enum db_status ret = get_commit(db, ev, &ci);
    if (ret == DB_ERROR)
        return DB_ERROR;
    if (conflict) {
        snprintf(conflict->unit, sizeof conflict->unit, "%s", name);
        conflict->time = ret == DB_OK ? ci.time : 0;
        snprintf(conflict->user, sizeof conflict->user, "%s", ret == DB_OK ? ci.user : "");
    }
    return DB_CONFLICT;
}

/* Inside the write transaction: DB_CONFLICT when a commit after a change's read version touched
 * its unit (or, for a replace, any unit of the kind outside keep). */
static enum db_status check_conflicts(struct db_session *s, int64_t newest,
                                      struct db_conflict *conflict)
{
    struct db_cfg *db = s->db;
    for (size_t i = 0; i < s->nk; i++) {
        const struct kindrec *r = &s->k[i];
        size_t j = pend_lower(s, r->kind, "");
        if (j >= s->np || strcmp(s->p[j].kind, r->kind) != 0)
            continue; /* the replace came to nothing */
        if (r->readv >= newest)
            continue;
        sqlite3_stmt *st = stmt(db, ST_CONFLICT_KIND);
        bind_text(st, 1, r->kind);
        sqlite3_bind_int64(st, 2, r->readv);
        int rc;
        char *name = NULL;
        int64_t ev = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *n = (const char *)sqlite3_column_text(st, 0);
            if (!in_keep((const char *const *)r->keep, n)) {
                name = xstrdup(n);
                ev = sqlite3_column_int64(st, 1);
                break;
            }
        }
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return fail(db, "check conflicts");
        if (name) {
            enum db_status ret = report_conflict(db, name, ev, conflict);
            free(name);
            return ret;
        }
        if (r->readv < newest - DB_CFG_KEEP_CLOSED)
            return report_conflict(db, s->p[j].name, newest, conflict);
    }
    for (size_t i = 0; i < s->np; i++) {
        const struct pend *p = &s->p[i];
        if (p->readv >= newest)
            continue;
        sqlite3_stmt *st = stmt(db, ST_CONFLICT_UNIT);
        bind_text(st, 1, p->kind);
        bind_text(st, 2, p->name);
        sqlite3_bind_int64(st, 3, p->readv);
        int64_t ev;
        bool found;
        if (step_int64(db, st, "check conflicts", &ev, &found) != DB_OK)
            return DB_ERROR;
        if (found)
            return report_conflict(db, p->name, ev, conflict);
        if (p->readv < newest - DB_CFG_KEEP_CLOSED)
            return report_conflict(db, p->name, newest, conflict);
    }
    return DB_OK;
}

/* Inside the write transaction: writes the pending changes as version v. *written counts the
 * units that really changed (a pending body can equal the newest one after a merge). */
static enum db_status write_changes(struct db_session *s, int64_t v, size_t *written)
{
    struct db_cfg *db = s->db;
    *written = 0;
    for (size_t i = 0; i < s->np; i++) {
        const struct pend *p = &s->p[i];
        sqlite3_stmt *st = stmt(db, ST_CURRENT_BODY);
        bind_text(st, 1, p->kind);
        bind_text(st, 2, p->name);
        int rc = sqlite3_step(st);
        bool same = rc == SQLITE_ROW
                        ? p->body && strcmp((const char *)sqlite3_column_text(st, 0), p->body) == 0
                        : !p->body;
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return fail(db, "read unit");
        if (same)
            continue;
        if (rc == SQLITE_ROW) {
            st = stmt(db, ST_CLOSE_ROW);
            bind_text(st, 1, p->kind);
            bind_text(st, 2, p->name);
            sqlite3_bind_int64(st, 3, v);
            rc = sqlite3_step(st);
            sqlite3_reset(st);
            if (rc != SQLITE_DONE)
                return fail(db, "close unit");
        }
        if (p->body && insert_row(db, p->kind, p->name, v, p->body) != DB_OK)
            return DB_ERROR;
        (*written)++;
    }
    return DB_OK;
}

/* After a commit of version v made directly on top of the session's base: the committed cache
 * becomes cache + pending, without reading 10 000 rows back. */
static void apply_pending(struct db_session *s, int64_t v)
{
    struct db_units *c = &s->committed;
    struct db_units out = {0};
    out.cap = c->n + s->np;
    out.v = xmalloc((out.cap ? out.cap : 1) * sizeof *out.v);
    size_t i = 0, j = 0;
    while (i < c->n || j < s->np) {
        int cmp = i >= c->n    ? 1
                  : j >= s->np ? -1
                               : key_cmp(c->v[i].kind, c->v[i].name, s->p[j].kind, s->p[j].name);
        if (cmp < 0) {
            out.v[out.n++] = c->v[i++];
            continue;
        }
        if (cmp == 0) {
            free(c->v[i].kind);
            free(c->v[i].name);
            free(c->v[i].body);
            i++;
        }
        struct pend *p = &s->p[j++];
        if (p->body) {
            out.v[out.n++] = (struct db_unit){p->kind, p->name, p->body, v};
        } else {
            free(p->kind);
            free(p->name);
        }
        p->kind = p->name = p->body = NULL;
    }
    free(c->v);
    *c = out;
    s->base = v;
}

enum db_status db_session_commit(struct db_session *s, const char *comment, bool save,
                                 struct db_commit_info *done, struct db_conflict *conflict,
                                 char *err, size_t errlen)
{
    struct db_cfg *db = s->db;
    if (s->np == 0)
        return DB_EMPTY;
    db->err[0] = '\0';
    if (db_sqlite_begin_immediate(db->db, db->err, sizeof db->err) != SQLITE_OK) {
        snprintf(err, errlen, "%s", db->err);
        return DB_ERROR;
    }
    int64_t newest, v = 0, now = time(NULL);
    size_t written = 0;
    enum db_status ret = newest_version(db, &newest);
    if (ret == DB_OK)
        ret = check_conflicts(s, newest, conflict);
    if (ret == DB_OK) {
        v = newest + 1;
        /* The commit record first: unit rows refer to it. */
        ret = insert_commit(db, v, now, s->user, comment ? comment : "", save);
    }
    if (ret == DB_OK)
        ret = write_changes(s, v, &written);
    if (ret == DB_OK && written == 0)
        ret = DB_EMPTY;
    if (ret == DB_OK && v - DB_CFG_KEEP_CLOSED > 0) {
        sqlite3_stmt *st = stmt(db, ST_PRUNE);
        sqlite3_bind_int64(st, 1, v - DB_CFG_KEEP_CLOSED);
        if (sqlite3_step(st) != SQLITE_DONE)
            ret = fail(db, "prune old versions");
        sqlite3_reset(st);
    }
    if (ret == DB_OK && db_sqlite_commit(db->db, db->err, sizeof db->err) != SQLITE_OK)
        ret = DB_ERROR;
    if (ret != DB_OK) {
        db_sqlite_rollback(db->db);
        if (ret == DB_ERROR)
            snprintf(err, errlen, "%s", db->err);
        if (ret == DB_EMPTY)
            pending_clear(s); /* everything pending was already committed by someone else */
        return ret;
    }

    /* Our own commit does not move data_version: keep db_cfg_latest right by hand. */
    db->latest = v;
    if (newest == s->base && written == s->np) {
        apply_pending(s, v);
        pending_clear(s);
    } else {
        pending_clear(s);
        if (reload(s, v) != DB_OK)
            s->base = 0; /* the next refresh loads again */
    }
    if (done) {
        *done = (struct db_commit_info){.version = v, .time = now, .saved = save};
        snprintf(done->user, sizeof done->user, "%s", s->user);
        snprintf(done->comment, sizeof done->comment, "%s", comment ? comment : "");
    }
    return DB_OK;
}

enum db_status db_session_revert(struct db_session *s, int64_t version)
{
    struct db_cfg *db = s->db;
    if (db_session_refresh(s) != DB_OK)
        return DB_ERROR;
    bool saved;
    if (is_retained_saved(db, version, &saved) != DB_OK)
        return DB_ERROR;
    if (!saved)
        return DB_NOTFOUND;
    struct db_units t;
    enum db_status ret = db_cfg_load(db, version, &t);
    if (ret != DB_OK)
        return ret;
    pending_clear(s);
    const struct db_units *c = &s->committed;
    size_t i = 0, j = 0;
    while (i < c->n || j < t.n) {
        int cmp = i >= c->n  ? 1
                  : j >= t.n ? -1
                             : key_cmp(c->v[i].kind, c->v[i].name, t.v[j].kind, t.v[j].name);
        if (cmp < 0) {
            pend_reserve(s, s->np + 1);
            s->p[s->np++] =
                (struct pend){xstrdup(c->v[i].kind), xstrdup(c->v[i].name), NULL, s->base};
            i++;
            continue;
        }
        if (cmp > 0 || strcmp(c->v[i].body, t.v[j].body) != 0) {
            /* Take the strings over from t. */
            pend_reserve(s, s->np + 1);
            s->p[s->np++] = (struct pend){t.v[j].kind, t.v[j].name, t.v[j].body, s->base};
            t.v[j].kind = t.v[j].name = t.v[j].body = NULL;
        }
        if (cmp == 0)
            i++;
        j++;
    }
    db_units_free(&t);
    return DB_OK;
}
