/* db_stsengine.c - the engine's store interface over db_stscache (see db_stsengine.h).
 *
 * Error texts from SQLite are not lost: the engine logs a failed read or write at Warning, and
 * the full text goes to stderr here, where the agent's own stderr logging catches it.
 */
#include "db_stsengine.h"

#include <stdio.h>
#include <string.h>

static int store_get(void *arg, const char *domain, struct sts_cache_entry *e, char *policy,
                     size_t cap, size_t *len)
{
    char err[256];
    enum db_status st = db_stscache_get(arg, domain, e, policy, cap, len, err, sizeof err);
    if (st == DB_NOTFOUND)
        return 1;
    if (st != DB_OK) {
        fprintf(stderr, "stscache: %s\n", err);
        return -1;
    }
    return 0;
}

static int store_save(void *arg, const char *domain, const struct sts_cache_decision *d,
                      const char *policy, size_t len)
{
    char err[256];
    if (db_stscache_save(arg, domain, d, policy, len, err, sizeof err) != DB_OK) {
        fprintf(stderr, "stscache: %s\n", err);
        return -1;
    }
    return 0;
}

static int store_due(void *arg, int64_t now, char (*domains)[STS_NAME_MAX + 1], size_t max,
                     size_t *n)
{
    char err[256];
    struct db_stscache_due due[64];
    *n = 0;
    if (max > sizeof due / sizeof due[0])
        max = sizeof due / sizeof due[0];
    if (db_stscache_due(arg, now, due, max, n, err, sizeof err) != DB_OK) {
        fprintf(stderr, "stscache: %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < *n; i++) {
        size_t len = strnlen(due[i].domain, STS_NAME_MAX);
        memcpy(domains[i], due[i].domain, len);
        domains[i][len] = '\0';
    }
    return 0;
}

void db_stsengine_store(struct db_stscache *c, struct sts_store *out)
{
    out->arg = c;
    out->get = store_get;
    out->save = store_save;
    out->due = store_due;
}
