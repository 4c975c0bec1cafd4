/* db_cfg.h - the configuration store: committed versions, one session's pending changes, commit,
 * rollback and conflict detection, over <data>/config.db (SQLite, WAL).
 *
 * The store knows units, not settings: a unit is (kind, name, body), where body is the kv text of
 * one destination, one route, SETUP, ... (core/cfg.h). Each commit writes a new version number;
 * the units of any retained version can be read back whole. Promises:
 * - a commit is one IMMEDIATE transaction with synchronous=FULL: after it returns DB_OK it
 *   survives a crash; a crash before leaves the previous version whole;
 * - pending changes live in the session (in memory) and nobody else sees them;
 * - a commit applies the session's changes on top of the newest version and is refused with
 *   DB_CONFLICT when another commit changed one of the same units after the session read it;
 * - db_cfg_latest() costs a PRAGMA data_version when nothing changed (microseconds), so the agent
 *   may call it every second.
 *
 * Retention: every commit record (version, time, user, comment) is kept for good. Unit rows are
 * kept while any of these needs them: the newest version; the last DB_CFG_KEEP_SAVED saved versions
 * (what rollbackconfig offers); and every version among the last DB_CFG_KEEP_CLOSED, so that
 * conflict detection is exact for a session whose pending changes were read within that window
 * (older pending changes are refused as conflicting, naming the newest commit, because the rows
 * that would tell are gone). db_cfg_load() can read exactly those versions. */
#ifndef STSGATE_DB_CFG_H
#define STSGATE_DB_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum db_status {
    DB_OK = 0,
    DB_EMPTY,    /* commit: nothing pending */
    DB_CONFLICT, /* commit: another session changed a unit first */
    DB_NOTFOUND, /* revert: no such saved version */
    DB_ERROR,    /* SQLite or I/O failure; err says which */
};

#define DB_CFG_KEEP_SAVED 10
#define DB_CFG_KEEP_CLOSED 1000

struct db_unit {
    char *kind;
    char *name;
    char *body;
    int64_t version; /* the commit that wrote this body */
};

/* Sorted by kind, then name (bytewise). */
struct db_units {
    struct db_unit *v;
    size_t n;
    size_t cap;
};

struct db_commit_info {
    int64_t version;
    int64_t time; /* seconds since the epoch */
    char user[64];
    char comment[256];
    bool saved; /* "save the current configuration for rollback" */
};

struct db_conflict {
    char unit[256]; /* the unit's name as the refusal message shows it */
    int64_t time;
    char user[64];
};

void db_units_add(struct db_units *u, const char *kind, const char *name, const char *body);
void db_units_free(struct db_units *u);
/* Sorts by kind, then name (for callers that added units out of order). */
void db_units_sort(struct db_units *u);

/* Produces the factory units of a new data directory (the DEFAULT entry, SETUP, the Demo
 * certificate, ...). Called once, when config.db is created. */
typedef void (*db_factory_fn)(struct db_units *out, void *arg);

struct db_cfg;

/* Opens (creating and migrating when needed) <datadir>/config.db. The directory must exist. */
enum db_status db_cfg_open(const char *datadir, db_factory_fn factory, void *factory_arg,
                           struct db_cfg **out, char *err, size_t errlen);
void db_cfg_close(struct db_cfg *db);
/* The text of the last DB_ERROR from a call that has no err parameter ("" if none). */
const char *db_cfg_error(const struct db_cfg *db);

enum db_status db_cfg_latest(struct db_cfg *db, int64_t *version);
enum db_status db_cfg_load(struct db_cfg *db, int64_t version, struct db_units *out);
enum db_status db_cfg_commit_info(struct db_cfg *db, int64_t version, struct db_commit_info *out);
/* Saved commits, newest first, at most max (rollbackconfig lists 10) and never more than
 * DB_CFG_KEEP_SAVED, the saved versions that can still be loaded. The initial version of a new
 * data directory is not among them. */
enum db_status db_cfg_history(struct db_cfg *db, struct db_commit_info *out, int max, int *n);

/* ---- a shell session's pending changes ---- */

struct db_session;

struct db_session *db_session_new(struct db_cfg *db, const char *user);
void db_session_free(struct db_session *s);

/* Follows the newest committed version (cheap when nothing changed). Call before each command. */
enum db_status db_session_refresh(struct db_session *s);

/* The session's view (newest committed + pending): the body of a unit, or NULL. The pointer
 * stays valid until the session next changes or refreshes. */
const char *db_session_get(struct db_session *s, const char *kind, const char *name);
/* The newest committed body of a unit, ignoring this session's pending change; NULL when absent.
 * Same lifetime as db_session_get. (The prompt shows the committed hostname.) */
const char *db_session_get_committed(struct db_session *s, const char *kind, const char *name);
/* Calls fn for every unit of kind in the view, sorted by name. A non-zero return stops the walk. */
int db_session_each(struct db_session *s, const char *kind,
                    int (*fn)(void *arg, const char *name, const char *body), void *arg);

/* Records a change (body NULL: delete). A change back to the committed body is dropped. */
void db_session_put(struct db_session *s, const char *kind, const char *name, const char *body);
/* Replaces every unit of kind, except the names in keep (NULL-terminated, may be NULL), with
 * units (IMPORT, CLEAR). Counts as a change to every unit of the kind for conflicts. */
void db_session_replace_kind(struct db_session *s, const char *kind, const struct db_units *units,
                             const char *const *keep);

bool db_session_dirty(const struct db_session *s);

struct db_change {
    const char *kind;
    const char *name;
    const char *old_body; /* NULL: added */
    const char *new_body; /* NULL: deleted */
};
/* The pending changes against the newest committed version, sorted by kind then name. The array
 * is the caller's to free(); the strings stay the session's. */
size_t db_session_changes(struct db_session *s, struct db_change **out);

void db_session_clear(struct db_session *s);

enum db_status db_session_commit(struct db_session *s, const char *comment, bool save,
                                 struct db_commit_info *done, struct db_conflict *conflict,
                                 char *err, size_t errlen);

/* Makes the pending changes whatever turns the newest version into the given one (dropping any
 * pending before). DB_NOTFOUND unless version is one of the saved versions db_cfg_history lists. */
enum db_status db_session_revert(struct db_session *s, int64_t version);

#endif
