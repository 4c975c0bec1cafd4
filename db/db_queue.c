/* db_queue.c - the durable mail queue over <data>/queue.db (see db_queue.h for the promises).
 *
 * The connection runs with synchronous=NORMAL and switches to FULL around the two writes whose
 * loss would break a promise: storing messages (a 250 was or will be given for them) and
 * reserving an id range (an id must never be handed out twice). In WAL mode a FULL commit also
 * makes every earlier NORMAL commit durable, since they sit before it in the same log. */
#include "db_queue.h"

#include "db_sqlite.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE ids(kind INTEGER PRIMARY KEY, next INTEGER NOT NULL);"
    "INSERT INTO ids(kind, next) VALUES (0, 1), (1, 1), (2, 1);"
    "CREATE TABLE msg("
    "  mid INTEGER PRIMARY KEY,"
    "  icid INTEGER NOT NULL,"
    "  received INTEGER NOT NULL,"
    "  sender TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  pending INTEGER NOT NULL," /* recipients not yet final */
    "  data BLOB NOT NULL);"
    "CREATE TABLE rcpt("
    "  mid INTEGER NOT NULL REFERENCES msg(mid) ON DELETE CASCADE,"
    "  rid INTEGER NOT NULL,"
    "  addr TEXT NOT NULL,"
    "  domain TEXT NOT NULL,"
    "  state INTEGER NOT NULL DEFAULT 0,"
    "  claimed INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  first_attempt INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt INTEGER NOT NULL,"
    "  last_error TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY(mid, rid)) WITHOUT ROWID;"
    /* Only what a claim can take is in the index, so finding due work never reads the rest. */
    "CREATE INDEX rcpt_due ON rcpt(next_attempt, mid, rid) WHERE state = 0 AND claimed = 0;"
    "CREATE INDEX rcpt_claimed ON rcpt(mid, rid) WHERE claimed = 1;",
};

enum {
    ST_SYNC_FULL,
    ST_SYNC_NORMAL,
    ST_ID_GET,
    ST_ID_BUMP,
    ST_MSG_INSERT,
    ST_RCPT_INSERT,
    ST_CLAIM_SELECT,
    ST_CLAIM_MARK,
    ST_RELEASE,
    ST_NEXT_DUE,
    ST_MSG_GET,
    ST_RCPT_LIST,
    ST_RCPT_STATE,
    ST_RCPT_FINAL,
    ST_RCPT_DEFER,
    ST_MSG_PENDING_DEC,
    ST_MSG_DELETE,
    ST_ALL_DUE,
    ST_COUNT_MSG,
    ST_COUNT_RCPT,
    ST__N
};

static const char *const sql[ST__N] = {
    [ST_SYNC_FULL] = "PRAGMA synchronous=FULL",
    [ST_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
    [ST_ID_GET] = "SELECT next FROM ids WHERE kind = ?1",
    [ST_ID_BUMP] = "UPDATE ids SET next = next + ?2 WHERE kind = ?1",
    [ST_MSG_INSERT] = "INSERT INTO msg(mid, icid, received, sender, size, pending, data) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_RCPT_INSERT] = "INSERT INTO rcpt(mid, rid, addr, domain, next_attempt) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_CLAIM_SELECT] =
        "SELECT r.mid, r.rid, r.addr, r.domain, r.attempts, r.first_attempt, r.next_attempt, "
        "r.last_error, m.received FROM rcpt r INDEXED BY rcpt_due JOIN msg m ON m.mid = r.mid "
        "WHERE r.state = 0 AND r.claimed = 0 AND r.next_attempt <= ?1 "
        "ORDER BY r.next_attempt, r.mid, r.rid LIMIT ?2",
    [ST_CLAIM_MARK] = "UPDATE rcpt SET claimed = 1 WHERE mid = ?1 AND rid = ?2",
    [ST_RELEASE] = "UPDATE rcpt SET claimed = 0 WHERE mid = ?1 AND rid = ?2",
    [ST_NEXT_DUE] = "SELECT next_attempt FROM rcpt INDEXED BY rcpt_due "
                    "WHERE state = 0 AND claimed = 0 ORDER BY next_attempt LIMIT 1",
    [ST_MSG_GET] = "SELECT icid, received, sender, size, data FROM msg WHERE mid = ?1",
    [ST_RCPT_LIST] = "SELECT rid, addr, domain, state, attempts, first_attempt, next_attempt, "
                     "last_error FROM rcpt WHERE mid = ?1 ORDER BY rid",
    [ST_RCPT_STATE] = "SELECT state FROM rcpt WHERE mid = ?1 AND rid = ?2",
    [ST_RCPT_FINAL] = "UPDATE rcpt SET state = ?3, claimed = 0, attempts = attempts + 1, "
                      "first_attempt = CASE WHEN first_attempt = 0 THEN ?4 ELSE first_attempt END, "
                      "last_error = ?5 WHERE mid = ?1 AND rid = ?2",
    [ST_RCPT_DEFER] = "UPDATE rcpt SET claimed = 0, attempts = attempts + 1, next_attempt = ?3, "
                      "first_attempt = CASE WHEN first_attempt = 0 THEN ?4 ELSE first_attempt END, "
                      "last_error = ?5 WHERE mid = ?1 AND rid = ?2",
    [ST_MSG_PENDING_DEC] = "UPDATE msg SET pending = pending - 1 WHERE mid = ?1 "
                           "RETURNING pending",
    [ST_MSG_DELETE] = "DELETE FROM msg WHERE mid = ?1",
    [ST_ALL_DUE] = "UPDATE rcpt INDEXED BY rcpt_due SET next_attempt = ?1 "
                   "WHERE state = 0 AND claimed = 0 AND next_attempt > ?1",
    [ST_COUNT_MSG] = "SELECT count(*), coalesce(sum(size), 0), coalesce(min(received), 0) FROM msg",
    [ST_COUNT_RCPT] = "SELECT coalesce(sum(attempts = 0 AND claimed = 0), 0), "
                      "coalesce(sum(attempts > 0 AND claimed = 0), 0), coalesce(sum(claimed), 0) "
                      "FROM rcpt WHERE state = 0",
};

struct id_range {
    int64_t next, limit; /* [next, limit) reserved and unused */
};

struct db_queue {
    sqlite3 *db;
    sqlite3_stmt *st[ST__N];
    struct id_range ids[3];
};

static void set_err(char *err, size_t errlen, const char *fmt, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, what);
}

static enum db_status fail(struct db_queue *q, const char *what, char *err, size_t errlen)
{
    db_sqlite_err(q->db, what, err, errlen);
    db_sqlite_rollback(q->db);
    return DB_ERROR;
}

/* Resets a statement for its next use (and releases any blob it bound). */
static sqlite3_stmt *stmt(struct db_queue *q, int which)
{
    sqlite3_stmt *s = q->st[which];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static int run(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static bool sync_mode(struct db_queue *q, bool full)
{
    return run(stmt(q, full ? ST_SYNC_FULL : ST_SYNC_NORMAL)) == SQLITE_OK;
}

enum db_status db_queue_open(const char *datadir, struct db_queue **out, char *err, size_t errlen)
{
    *out = NULL;
    char path[4200];
    if (snprintf(path, sizeof path, "%s/queue.db", datadir) >= (int)sizeof path) {
        set_err(err, errlen, "%s", "the data directory path is too long");
        return DB_ERROR;
    }
    sqlite3 *db;
    if (db_sqlite_open(path, false, migrations, (int)(sizeof migrations / sizeof migrations[0]),
                       &db, err, errlen) != SQLITE_OK)
        return DB_ERROR;
    struct db_queue *q = calloc(1, sizeof *q);
    if (!q) {
        db_sqlite_close(db);
        set_err(err, errlen, "%s", "out of memory");
        return DB_ERROR;
    }
    q->db = db;
    for (int i = 0; i < ST__N; i++) {
        if (db_sqlite_prepare(db, sql[i], &q->st[i], err, errlen) != SQLITE_OK) {
            db_queue_close(q);
            return DB_ERROR;
        }
    }
    /* Whoever claimed recipients before is gone (one agent per data directory). */
    if (db_sqlite_exec(db, "UPDATE rcpt INDEXED BY rcpt_claimed SET claimed = 0 WHERE claimed = 1",
                       err, errlen) != SQLITE_OK) {
        db_queue_close(q);
        return DB_ERROR;
    }
    *out = q;
    return DB_OK;
}

void db_queue_close(struct db_queue *q)
{
    if (!q)
        return;
    for (int i = 0; i < ST__N; i++)
        sqlite3_finalize(q->st[i]);
    db_sqlite_close(q->db);
    free(q);
}

enum db_status db_queue_next_id(struct db_queue *q, enum db_queue_id kind, int64_t *id, char *err,
                                size_t errlen)
{
    if ((unsigned)kind > DB_QUEUE_MID) {
        set_err(err, errlen, "%s", "unknown id kind");
        return DB_ERROR;
    }
    struct id_range *r = &q->ids[kind];
    if (r->next >= r->limit) {
        /* FULL must be set outside a transaction to apply to its commit. */
        if (!sync_mode(q, true))
            return fail(q, "synchronous=FULL", err, errlen);
        if (db_sqlite_begin_immediate(q->db, err, errlen) != SQLITE_OK) {
            sync_mode(q, false);
            return DB_ERROR;
        }
        sqlite3_stmt *s = stmt(q, ST_ID_GET);
        sqlite3_bind_int(s, 1, (int)kind);
        if (sqlite3_step(s) != SQLITE_ROW) {
            sqlite3_reset(s);
            fail(q, "read id range", err, errlen);
            sync_mode(q, false);
            return DB_ERROR;
        }
        int64_t next = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        s = stmt(q, ST_ID_BUMP);
        sqlite3_bind_int(s, 1, (int)kind);
        sqlite3_bind_int64(s, 2, DB_QUEUE_ID_RANGE);
        if (run(s) != SQLITE_OK) {
            fail(q, "reserve id range", err, errlen);
            sync_mode(q, false);
            return DB_ERROR;
        }
        int rc = db_sqlite_commit(q->db, err, errlen);
        sync_mode(q, false);
        if (rc != SQLITE_OK) {
            db_sqlite_rollback(q->db);
            return DB_ERROR;
        }
        r->next = next;
        r->limit = next + DB_QUEUE_ID_RANGE;
    }
    *id = r->next++;
    return DB_OK;
}

static void domain_of(const char *addr, char *out, size_t outlen)
{
    const char *at = strrchr(addr, '@');
    const char *d = at ? at + 1 : "";
    size_t i = 0;
    for (; d[i] && i + 1 < outlen; i++)
        out[i] = (char)tolower((unsigned char)d[i]);
    out[i] = '\0';
}

enum db_status db_queue_store(struct db_queue *q, const struct db_queue_new *msgs, size_t n,
                              char *err, size_t errlen)
{
    if (n == 0)
        return DB_OK;
    /* FULL must be set outside a transaction to apply to its commit. */
    if (!sync_mode(q, true))
        return fail(q, "synchronous=FULL", err, errlen);
    if (db_sqlite_begin_immediate(q->db, err, errlen) != SQLITE_OK) {
        sync_mode(q, false);
        return DB_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        const struct db_queue_new *m = &msgs[i];
        sqlite3_stmt *s = stmt(q, ST_MSG_INSERT);
        sqlite3_bind_int64(s, 1, m->mid);
        sqlite3_bind_int64(s, 2, m->icid);
        sqlite3_bind_int64(s, 3, m->received);
        sqlite3_bind_text(s, 4, m->sender ? m->sender : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, (int64_t)m->size);
        sqlite3_bind_int64(s, 6, (int64_t)m->n_rcpt);
        sqlite3_bind_blob64(s, 7, m->data ? m->data : "", m->size, SQLITE_STATIC);
        if (run(s) != SQLITE_OK) {
            sync_mode(q, false);
            return fail(q, "store message", err, errlen);
        }
        sqlite3_clear_bindings(s);
        for (size_t r = 0; r < m->n_rcpt; r++) {
            char domain[DB_QUEUE_ADDR_MAX + 1];
            domain_of(m->rcpt[r], domain, sizeof domain);
            s = stmt(q, ST_RCPT_INSERT);
            sqlite3_bind_int64(s, 1, m->mid);
            sqlite3_bind_int(s, 2, (int)r);
            sqlite3_bind_text(s, 3, m->rcpt[r], -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 4, domain, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(s, 5, m->received);
            if (run(s) != SQLITE_OK) {
                sync_mode(q, false);
                return fail(q, "store recipient", err, errlen);
            }
        }
    }
    int rc = db_sqlite_commit(q->db, err, errlen);
    if (rc != SQLITE_OK)
        db_sqlite_rollback(q->db);
    sync_mode(q, false);
    return rc == SQLITE_OK ? DB_OK : DB_ERROR;
}

static void copy_text(char *out, size_t outlen, const unsigned char *s)
{
    snprintf(out, outlen, "%s", s ? (const char *)s : "");
}

enum db_status db_queue_claim(struct db_queue *q, int64_t now, struct db_queue_rcpt *out,
                              size_t max, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (max == 0)
        return DB_OK;
    if (db_sqlite_begin_immediate(q->db, err, errlen) != SQLITE_OK)
        return DB_ERROR;
    sqlite3_stmt *s = stmt(q, ST_CLAIM_SELECT);
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, (int64_t)max);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct db_queue_rcpt *r = &out[*n];
        memset(r, 0, sizeof *r);
        r->mid = sqlite3_column_int64(s, 0);
        r->rid = sqlite3_column_int(s, 1);
        copy_text(r->addr, sizeof r->addr, sqlite3_column_text(s, 2));
        copy_text(r->domain, sizeof r->domain, sqlite3_column_text(s, 3));
        r->state = DB_QUEUE_QUEUED;
        r->attempts = sqlite3_column_int(s, 4);
        r->first_attempt = sqlite3_column_int64(s, 5);
        r->next_attempt = sqlite3_column_int64(s, 6);
        copy_text(r->last_error, sizeof r->last_error, sqlite3_column_text(s, 7));
        r->received = sqlite3_column_int64(s, 8);
        (*n)++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        *n = 0;
        return fail(q, "claim due recipients", err, errlen);
    }
    for (size_t i = 0; i < *n; i++) {
        s = stmt(q, ST_CLAIM_MARK);
        sqlite3_bind_int64(s, 1, out[i].mid);
        sqlite3_bind_int(s, 2, out[i].rid);
        if (run(s) != SQLITE_OK) {
            *n = 0;
            return fail(q, "claim recipient", err, errlen);
        }
    }
    if (db_sqlite_commit(q->db, err, errlen) != SQLITE_OK) {
        *n = 0;
        db_sqlite_rollback(q->db);
        return DB_ERROR;
    }
    return DB_OK;
}

enum db_status db_queue_release(struct db_queue *q, int64_t mid, int rid, char *err, size_t errlen)
{
    sqlite3_stmt *s = stmt(q, ST_RELEASE);
    sqlite3_bind_int64(s, 1, mid);
    sqlite3_bind_int(s, 2, rid);
    if (run(s) != SQLITE_OK) {
        db_sqlite_err(q->db, "release recipient", err, errlen);
        return DB_ERROR;
    }
    return DB_OK;
}

enum db_status db_queue_next_due(struct db_queue *q, int64_t *when, char *err, size_t errlen)
{
    sqlite3_stmt *s = stmt(q, ST_NEXT_DUE);
    int rc = sqlite3_step(s);
    enum db_status st = DB_NOTFOUND;
    if (rc == SQLITE_ROW) {
        *when = sqlite3_column_int64(s, 0);
        st = DB_OK;
    } else if (rc != SQLITE_DONE) {
        db_sqlite_err(q->db, "next due recipient", err, errlen);
        st = DB_ERROR;
    }
    sqlite3_reset(s);
    return st;
}

void db_queue_message_free(struct db_queue_msg *m)
{
    if (!m)
        return;
    free(m->sender);
    free(m->data);
    free(m->rcpt);
    memset(m, 0, sizeof *m);
}

enum db_status db_queue_message(struct db_queue *q, int64_t mid, struct db_queue_msg *out,
                                char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* One read transaction, so the message and its recipients are one consistent state. */
    if (db_sqlite_exec(q->db, "BEGIN", err, errlen) != SQLITE_OK)
        return DB_ERROR;
    sqlite3_stmt *s = stmt(q, ST_MSG_GET);
    sqlite3_bind_int64(s, 1, mid);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        db_sqlite_rollback(q->db);
        return DB_NOTFOUND;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return fail(q, "read message", err, errlen);
    }
    out->mid = mid;
    out->icid = sqlite3_column_int64(s, 0);
    out->received = sqlite3_column_int64(s, 1);
    const unsigned char *sender = sqlite3_column_text(s, 2);
    out->sender = strdup(sender ? (const char *)sender : "");
    const void *data = sqlite3_column_blob(s, 4);
    size_t size = (size_t)sqlite3_column_bytes(s, 4);
    out->data = malloc(size + 1);
    if (out->data && out->sender) {
        if (size)
            memcpy(out->data, data, size);
        out->data[size] = '\0';
        out->size = size;
    }
    sqlite3_reset(s);
    if (!out->data || !out->sender) {
        db_queue_message_free(out);
        db_sqlite_rollback(q->db);
        set_err(err, errlen, "%s", "out of memory");
        return DB_ERROR;
    }
    s = stmt(q, ST_RCPT_LIST);
    sqlite3_bind_int64(s, 1, mid);
    size_t cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (out->n_rcpt == cap) {
            cap = cap ? cap * 2 : 4;
            struct db_queue_rcpt *nr = realloc(out->rcpt, cap * sizeof *nr);
            if (!nr) {
                rc = SQLITE_NOMEM;
                break;
            }
            out->rcpt = nr;
        }
        struct db_queue_rcpt *r = &out->rcpt[out->n_rcpt++];
        memset(r, 0, sizeof *r);
        r->mid = mid;
        r->rid = sqlite3_column_int(s, 0);
        copy_text(r->addr, sizeof r->addr, sqlite3_column_text(s, 1));
        copy_text(r->domain, sizeof r->domain, sqlite3_column_text(s, 2));
        r->state = (enum db_queue_state)sqlite3_column_int(s, 3);
        r->attempts = sqlite3_column_int(s, 4);
        r->first_attempt = sqlite3_column_int64(s, 5);
        r->next_attempt = sqlite3_column_int64(s, 6);
        copy_text(r->last_error, sizeof r->last_error, sqlite3_column_text(s, 7));
        r->received = out->received;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        db_queue_message_free(out);
        return fail(q, "read recipients", err, errlen);
    }
    db_sqlite_rollback(q->db); /* ends the read transaction */
    return DB_OK;
}

enum db_status db_queue_record(struct db_queue *q, const struct db_queue_outcome *v, size_t n,
                               void (*finished)(void *arg, int64_t mid), void *arg, char *err,
                               size_t errlen)
{
    if (n == 0)
        return DB_OK;
    int64_t *done = NULL;
    size_t ndone = 0;
    if (finished && !(done = malloc(n * sizeof *done))) {
        set_err(err, errlen, "%s", "out of memory");
        return DB_ERROR;
    }
    if (db_sqlite_begin_immediate(q->db, err, errlen) != SQLITE_OK) {
        free(done);
        return DB_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        const struct db_queue_outcome *o = &v[i];
        sqlite3_stmt *s = stmt(q, ST_RCPT_STATE);
        sqlite3_bind_int64(s, 1, o->mid);
        sqlite3_bind_int(s, 2, o->rid);
        int rc = sqlite3_step(s);
        int state = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
        sqlite3_reset(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            free(done);
            return fail(q, "read recipient state", err, errlen);
        }
        if (state != DB_QUEUE_QUEUED)
            continue; /* already final or gone: a duplicate outcome changes nothing */
        bool final = o->kind != DB_QUEUE_OUT_DEFERRED;
        if (final) {
            s = stmt(q, ST_RCPT_FINAL);
            sqlite3_bind_int(
                s, 3, o->kind == DB_QUEUE_OUT_DELIVERED ? DB_QUEUE_DELIVERED : DB_QUEUE_BOUNCED);
        } else {
            s = stmt(q, ST_RCPT_DEFER);
            sqlite3_bind_int64(s, 3, o->next_attempt);
        }
        sqlite3_bind_int64(s, 1, o->mid);
        sqlite3_bind_int(s, 2, o->rid);
        sqlite3_bind_int64(s, 4, o->when);
        sqlite3_bind_text(s, 5, o->reason ? o->reason : "", -1, SQLITE_STATIC);
        if (run(s) != SQLITE_OK) {
            free(done);
            return fail(q, "record outcome", err, errlen);
        }
        sqlite3_clear_bindings(s);
        if (!final)
            continue;
        s = stmt(q, ST_MSG_PENDING_DEC);
        sqlite3_bind_int64(s, 1, o->mid);
        rc = sqlite3_step(s);
        int64_t pending = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 1;
        sqlite3_reset(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            free(done);
            return fail(q, "count pending recipients", err, errlen);
        }
        if (pending <= 0) {
            s = stmt(q, ST_MSG_DELETE);
            sqlite3_bind_int64(s, 1, o->mid);
            if (run(s) != SQLITE_OK) {
                free(done);
                return fail(q, "remove finished message", err, errlen);
            }
            if (done)
                done[ndone++] = o->mid;
        }
    }
    if (db_sqlite_commit(q->db, err, errlen) != SQLITE_OK) {
        db_sqlite_rollback(q->db);
        free(done);
        return DB_ERROR;
    }
    for (size_t i = 0; i < ndone; i++)
        finished(arg, done[i]);
    free(done);
    return DB_OK;
}

enum db_status db_queue_all_due(struct db_queue *q, int64_t now, int64_t *changed, char *err,
                                size_t errlen)
{
    sqlite3_stmt *s = stmt(q, ST_ALL_DUE);
    sqlite3_bind_int64(s, 1, now);
    if (run(s) != SQLITE_OK) {
        db_sqlite_err(q->db, "make deferred recipients due", err, errlen);
        return DB_ERROR;
    }
    *changed = sqlite3_changes64(q->db);
    return DB_OK;
}

enum db_status db_queue_counts(struct db_queue *q, struct db_queue_counts *out, char *err,
                               size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (db_sqlite_exec(q->db, "BEGIN", err, errlen) != SQLITE_OK)
        return DB_ERROR;
    sqlite3_stmt *s = stmt(q, ST_COUNT_MSG);
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_reset(s);
        return fail(q, "count messages", err, errlen);
    }
    out->messages = sqlite3_column_int64(s, 0);
    out->bytes = sqlite3_column_int64(s, 1);
    out->oldest_received = sqlite3_column_int64(s, 2);
    sqlite3_reset(s);
    s = stmt(q, ST_COUNT_RCPT);
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_reset(s);
        return fail(q, "count recipients", err, errlen);
    }
    out->rcpt_unattempted = sqlite3_column_int64(s, 0);
    out->rcpt_attempted = sqlite3_column_int64(s, 1);
    out->rcpt_claimed = sqlite3_column_int64(s, 2);
    sqlite3_reset(s);
    enum db_status st = db_queue_next_due(q, &out->next_due, err, errlen);
    db_sqlite_rollback(q->db);
    if (st == DB_NOTFOUND)
        out->next_due = 0;
    return st == DB_ERROR ? DB_ERROR : DB_OK;
}
