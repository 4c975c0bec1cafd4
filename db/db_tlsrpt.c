/* db_tlsrpt.c - TLS reporting counters over SQLite. */
#include "db_tlsrpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_sqlite.h"
#include "strbuf.h"

static const char *const migrations[] = {
    "CREATE TABLE sessions ("
    " day TEXT NOT NULL, domain TEXT NOT NULL, policy_type TEXT NOT NULL,"
    " policy_string TEXT NOT NULL, mx_hosts TEXT NOT NULL, result TEXT NOT NULL,"
    " sending_ip TEXT NOT NULL, receiving_mx TEXT NOT NULL, receiving_ip TEXT NOT NULL,"
    " detail TEXT NOT NULL, count INTEGER NOT NULL,"
    " PRIMARY KEY (day, domain, policy_type, policy_string, mx_hosts, result, sending_ip,"
    "              receiving_mx, receiving_ip, detail)) WITHOUT ROWID;"
    "CREATE TABLE sent (day TEXT NOT NULL, domain TEXT NOT NULL, PRIMARY KEY (day, domain))"
    " WITHOUT ROWID;",
};

struct db_tlsrpt {
    sqlite3 *db;
    sqlite3_stmt *add;
};

enum db_status db_tlsrpt_open(const char *datadir, struct db_tlsrpt **out, char *err, size_t errlen)
{
    char path[4200];
    *out = NULL;
    snprintf(path, sizeof path, "%s/tlsrpt.db", datadir);
    struct db_tlsrpt *t = xcalloc(1, sizeof *t);
    /* Counters are statistics: losing the last moments to a power cut is acceptable. */
    if (db_sqlite_open(path, false, migrations, 1, &t->db, err, errlen) != SQLITE_OK ||
        db_sqlite_prepare(t->db,
                          "INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                          " ON CONFLICT DO UPDATE SET count = count + excluded.count",
                          &t->add, err, errlen) != SQLITE_OK) {
        db_tlsrpt_close(t);
        return DB_ERROR;
    }
    *out = t;
    return DB_OK;
}

void db_tlsrpt_close(struct db_tlsrpt *t)
{
    if (!t)
        return;
    sqlite3_finalize(t->add);
    db_sqlite_close(t->db);
    free(t);
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

enum db_status db_tlsrpt_add(struct db_tlsrpt *t, const struct db_tlsrpt_session *s, char *err,
                             size_t errlen)
{
    sqlite3_stmt *st = t->add;
    bool fail = s->result != TLSRPT_SUCCESS;
    const char *vals[] = {
        s->day,
        s->domain,
        tlsrpt_policy_type_name(s->type),
        nz(s->policy_string),
        nz(s->mx_hosts),
        tlsrpt_result_name(s->result),
        fail ? nz(s->sending_ip) : "",
        fail ? nz(s->receiving_mx) : "",
        fail ? nz(s->receiving_ip) : "",
        fail ? nz(s->detail) : "",
    };
    sqlite3_reset(st);
    for (int i = 0; i < 10; i++)
        sqlite3_bind_text(st, i + 1, vals[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, s->count);
    if (sqlite3_step(st) != SQLITE_DONE) {
        db_sqlite_err(t->db, "counting a TLS session", err, errlen);
        sqlite3_reset(st);
        return DB_ERROR;
    }
    sqlite3_reset(st);
    return DB_OK;
}

static struct tlsrpt_policy *policy_for(struct tlsrpt_policy **v, size_t *n, size_t *cap,
                                        enum tlsrpt_policy_type type, const char *domain,
                                        const char *ps, const char *mx)
{
    for (size_t i = 0; i < *n; i++) {
        struct tlsrpt_policy *p = &(*v)[i];
        if (p->type == type && strcmp(p->policy_string ? p->policy_string : "", ps) == 0 &&
            strcmp(p->mx_hosts ? p->mx_hosts : "", mx) == 0)
            return p;
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *v = xrealloc(*v, *cap * sizeof **v);
    }
    struct tlsrpt_policy *p = &(*v)[(*n)++];
    memset(p, 0, sizeof *p);
    p->type = type;
    snprintf(p->domain, sizeof p->domain, "%s", domain);
    p->policy_string = *ps ? xstrdup(ps) : NULL;
    p->mx_hosts = *mx ? xstrdup(mx) : NULL;
    return p;
}

static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? (const char *)s : "";
}

enum db_status db_tlsrpt_report(struct db_tlsrpt *t, const char *day, const char *domain,
                                struct tlsrpt_policy **out, size_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    if (db_sqlite_prepare(t->db,
                          "SELECT policy_type, policy_string, mx_hosts, result, sending_ip,"
                          " receiving_mx, receiving_ip, detail, count FROM sessions"
                          " WHERE day = ? AND domain = ? ORDER BY policy_type, policy_string,"
                          " result, receiving_mx, receiving_ip",
                          &st, err, errlen) != SQLITE_OK)
        return DB_ERROR;
    sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        enum tlsrpt_policy_type type;
        if (!tlsrpt_policy_type_from_name(col(st, 0), &type))
            continue;
        struct tlsrpt_policy *p = policy_for(out, n, &cap, type, domain, col(st, 1), col(st, 2));
        enum tlsrpt_result r = tlsrpt_result_from_name(col(st, 3));
        int64_t count = sqlite3_column_int64(st, 8);
        if (r == TLSRPT_SUCCESS) {
            p->successes += count;
            continue;
        }
        if (r == TLSRPT_RESULT_COUNT)
            r = TLSRPT_VALIDATION_FAILURE;
        p->failures += count;
        p->details = xrealloc(p->details, (p->ndetails + 1) * sizeof *p->details);
        struct tlsrpt_failure *f = &p->details[p->ndetails++];
        memset(f, 0, sizeof *f);
        f->result = r;
        snprintf(f->sending_ip, sizeof f->sending_ip, "%s", col(st, 4));
        snprintf(f->receiving_mx, sizeof f->receiving_mx, "%s", col(st, 5));
        snprintf(f->receiving_ip, sizeof f->receiving_ip, "%s", col(st, 6));
        snprintf(f->detail, sizeof f->detail, "%s", col(st, 7));
        f->count = count;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_sqlite_err(t->db, "reading TLS report counts", err, errlen);
        db_tlsrpt_policies_free(*out, *n);
        *out = NULL;
        *n = 0;
        return DB_ERROR;
    }
    return *n ? DB_OK : DB_NOTFOUND;
}

void db_tlsrpt_policies_free(struct tlsrpt_policy *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].policy_string);
        free(p[i].mx_hosts);
        free(p[i].details);
    }
    free(p);
}

enum db_status db_tlsrpt_unsent(struct db_tlsrpt *t, const char *day,
                                void (*fn)(void *arg, const char *domain), void *arg, char *err,
                                size_t errlen)
{
    sqlite3_stmt *st;
    if (db_sqlite_prepare(t->db,
                          "SELECT DISTINCT domain FROM sessions s WHERE day = ?1 AND NOT EXISTS"
                          " (SELECT 1 FROM sent WHERE sent.day = ?1 AND sent.domain = s.domain)"
                          " ORDER BY domain",
                          &st, err, errlen) != SQLITE_OK)
        return DB_ERROR;
    sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(arg, col(st, 0));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_sqlite_err(t->db, "listing TLS reports to send", err, errlen);
        return DB_ERROR;
    }
    return DB_OK;
}

static enum db_status exec_day(struct db_tlsrpt *t, const char *sql, const char *day,
                               const char *domain, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (db_sqlite_prepare(t->db, sql, &st, err, errlen) != SQLITE_OK)
        return DB_ERROR;
    sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
    if (domain)
        sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_sqlite_err(t->db, "writing TLS report state", err, errlen);
        return DB_ERROR;
    }
    return DB_OK;
}

enum db_status db_tlsrpt_mark_sent(struct db_tlsrpt *t, const char *day, const char *domain,
                                   char *err, size_t errlen)
{
    return exec_day(t, "INSERT OR IGNORE INTO sent VALUES (?, ?)", day, domain, err, errlen);
}

enum db_status db_tlsrpt_prune(struct db_tlsrpt *t, const char *day, char *err, size_t errlen)
{
    if (exec_day(t, "DELETE FROM sessions WHERE day < ?", day, NULL, err, errlen) != DB_OK)
        return DB_ERROR;
    return exec_day(t, "DELETE FROM sent WHERE day < ?", day, NULL, err, errlen);
}
