/* db_stscache.h - the MTA-STS policy cache store: <data>/stscache.db (SQLite, WAL).
 *
 * One row per policy domain, holding a struct sts_cache_entry (core/sts_cache.h, which decides
 * everything) and the policy text it was fetched with. Promises:
 * - every read and write of one domain goes through its primary key, and the list of entries due
 *   for refresh through an index on refresh_at: nothing scans the table, whatever its size;
 * - db_stscache_put() is an upsert in one statement: a row is never half written;
 * - domains are keys in lower case without the trailing dot, whatever case the caller used;
 * - the schema migrates by user_version (db_sqlite.h); synchronous=NORMAL: an entry survives a
 *   crash of the process, and losing the last write to a power cut only costs a fetch.
 * A handle is one SQLite connection with its prepared statements: use one per thread.
 */
#ifndef STSGATE_DB_STSCACHE_H
#define STSGATE_DB_STSCACHE_H

#include "db_cfg.h" /* enum db_status */
#include "sts_cache.h"
#include "sts_mx.h"

#include <stddef.h>
#include <stdint.h>

struct db_stscache;

/* An entry due for refresh, as db_stscache_due() lists it. */
struct db_stscache_due {
    char domain[STS_NAME_MAX + 1];
    int64_t refresh_at;
};

/* Opens (creating and migrating when needed) <datadir>/stscache.db. The directory must exist. */
enum db_status db_stscache_open(const char *datadir, struct db_stscache **out, char *err,
                                size_t errlen);
void db_stscache_close(struct db_stscache *c);

/* Reads the entry of domain. DB_NOTFOUND when there is none. When policy is not NULL, the stored
 * policy text is copied there (at most policy_cap bytes, not NUL-terminated) and its full length
 * stored in *policy_len (0 when there is none); pass a buffer of STS_POLICY_MAX bytes. */
enum db_status db_stscache_get(struct db_stscache *c, const char *domain, struct sts_cache_entry *e,
                               char *policy, size_t policy_cap, size_t *policy_len, char *err,
                               size_t errlen);

/* Inserts or replaces the entry of domain. policy (len bytes) is the text of a newly fetched
 * policy; NULL keeps the stored text (a decision that only moved times or recorded a failure).
 * An entry without a policy stores no text. */
enum db_status db_stscache_put(struct db_stscache *c, const char *domain,
                               const struct sts_cache_entry *e, const char *policy, size_t len,
                               char *err, size_t errlen);

enum db_status db_stscache_delete(struct db_stscache *c, const char *domain, char *err,
                                  size_t errlen);

/* Persists what a decision of core/sts_cache.h says: nothing when it did not change the entry,
 * a delete when the entry became empty, else a put. policy: as for db_stscache_put() (the text
 * given to sts_cache_fetched() when the decision applies the fetched policy, else NULL). */
enum db_status db_stscache_save(struct db_stscache *c, const char *domain,
                                const struct sts_cache_decision *d, const char *policy, size_t len,
                                char *err, size_t errlen);

/* Lists up to max entries holding a policy whose refresh_at <= now, earliest first, into due[];
 * *n gets the count. */
enum db_status db_stscache_due(struct db_stscache *c, int64_t now, struct db_stscache_due *due,
                               size_t max, size_t *n, char *err, size_t errlen);

/* The number of rows (for status and tests; this one counts, so do not call it per message). */
enum db_status db_stscache_count(struct db_stscache *c, int64_t *n, char *err, size_t errlen);

#endif
