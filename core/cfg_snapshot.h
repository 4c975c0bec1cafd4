/* cfg_snapshot.h - one committed configuration version, decoded once, for the delivery agent.
 *
 * Built from the units of a version (the store's db_cfg_load), immutable afterwards, so a
 * connection can keep the snapshot it started with while a newer one is used for new work
 * (delivery-policy.md §1.3): snapshots are reference counted.
 * Lookups never scan: units are sorted by (kind, name) and found by binary search; the
 * destination of a recipient domain is the exact entry, else the longest ".parent" wildcard,
 * else DEFAULT (at most one search per label of the domain). */
#ifndef STSGATE_CFG_SNAPSHOT_H
#define STSGATE_CFG_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

struct cfg_unit_ref {
    const char *kind;
    const char *name;
    const char *body;
};

struct cfg_snapshot;

/* Copies what it needs; units need not be sorted. */
struct cfg_snapshot *cfg_snapshot_build(int64_t version, const struct cfg_unit_ref *units,
                                        size_t n);
struct cfg_snapshot *cfg_snapshot_ref(struct cfg_snapshot *s);
/* Drops one reference; frees on the last. NULL is ignored. */
void cfg_snapshot_unref(struct cfg_snapshot *s);

int64_t cfg_snapshot_version(const struct cfg_snapshot *s);
/* The committed hostname, or "" when none was set. */
const char *cfg_snapshot_hostname(const struct cfg_snapshot *s);
const struct cfg_setup *cfg_snapshot_setup(const struct cfg_snapshot *s);
const struct cfg_dest *cfg_snapshot_default(const struct cfg_snapshot *s);

/* The effective settings for a recipient domain (lower case, no trailing dot): every "use the
 * default" resolved and TLS No applied. *entry (may be NULL) gets the matched entry's name:
 * the domain, ".parent.example" or "DEFAULT". */
void cfg_snapshot_dest(const struct cfg_snapshot *s, const char *domain, struct cfg_dest *out,
                       const char **entry);

/* Any unit's body, or NULL: routes, resolvers, bounce profiles and certificates are decoded by
 * their own modules. */
const char *cfg_snapshot_unit(const struct cfg_snapshot *s, const char *kind, const char *name);
/* Walks the units of a kind in name order; a non-zero return from fn stops the walk. */
int cfg_snapshot_each(const struct cfg_snapshot *s, const char *kind,
                      int (*fn)(void *arg, const char *name, const char *body), void *arg);

#endif
