/* sts_cache.h - the MTA-STS cache rules as a pure state machine (RFC 8461 3.3, 5.1, 10).
 *
 * Promises: every decision is a function of its arguments: the domain's cache entry, what DNS
 * said, and `now` (seconds since the epoch, passed in: nothing here reads a clock or a random
 * source, so tests move time and jitter at will). A decision returns the entry as it must be
 * stored afterwards; the caller persists it (sts_cache_entry_empty(): delete the row) when
 * `changed` is set. struct sts_cache_entry is plain data, no pointers: a store keeps it as columns,
 * keyed by the policy domain, next to the policy text.
 *
 * The rules (docs: reference/mta-sts.md "Cache and refresh"):
 * - TXT id equals the cached id and the entry is unexpired: apply it, no fetch.
 * - TXT id differs (or nothing usable is cached): fetch. A failed fetch falls back to the
 *   unexpired cached policy, else no policy.
 * - TXT gone, invalid or unreachable: apply the unexpired cached policy, else no policy.
 * - A successful fetch replaces the entry, even with mode none; max_age 0: apply once, keep
 * nothing.
 * - An expired entry is never applied (expired: now >= fetched_at + max_age).
 * - After a failed fetch, no fetch for the same domain and id for 5 minutes.
 * - In-use entries are refreshed before they expire, about daily with jitter; a failed refresh of
 *   a policy whose mode is not none sets `warn` (logged at Warning).
 */
#ifndef STSGATE_STS_CACHE_H
#define STSGATE_STS_CACHE_H

#include "sts_policy.h"
#include "sts_record.h"

#include <stdbool.h>
#include <stdint.h>

#define STS_CACHE_BACKOFF_SECS 300    /* seconds without a fetch after a failed one (domain+id) */
#define STS_CACHE_REFRESH_SECS 86400  /* proactive refresh interval for long-lived policies */
#define STS_CACHE_RETRY_SECS 3600     /* next refresh attempt after a failed one */
#define STS_CACHE_IN_USE_SECS 2592000 /* 30 days: an entry applied this recently is "in use" */
/* last_used is only rewritten when it moves this much: no store write per message */
#define STS_CACHE_USE_GRANULARITY_SECS 3600

/* One policy domain's cache state. has_policy false with no failure recorded: nothing to store. */
struct sts_cache_entry {
    bool has_policy;         /* the fields below up to refresh_at describe a cached policy */
    char id[STS_ID_MAX + 1]; /* the TXT id the policy was fetched for */
    enum sts_mode mode;      /* the cached policy's mode (the text is stored alongside) */
    int64_t fetched_at;      /* when the cached policy was fetched */
    uint32_t max_age;        /* its max_age after clamping; expires at fetched_at + max_age */
    int64_t refresh_at;      /* when to refresh it proactively (store index: due entries) */
    int64_t last_used;       /* when it was last applied, to a STS_CACHE_USE_GRANULARITY_SECS */
    char failed_id[STS_ID_MAX + 1]; /* the id of the last failed fetch, "" if none */
    int64_t failed_at;              /* when that fetch failed */
};

/* What DNS said about _mta-sts.<domain>: the status, and the id when STS_TXT_VALID. */
struct sts_txt_outcome {
    enum sts_txt_status status;
    char id[STS_ID_MAX + 1];
};

enum sts_cache_step {
    STS_CACHE_APPLY_CACHED,  /* apply the cached policy */
    STS_CACHE_APPLY_FETCHED, /* apply the policy just fetched (sts_cache_fetched only) */
    STS_CACHE_NO_POLICY,     /* deliver as though the domain had no MTA-STS */
    STS_CACHE_FETCH,         /* fetch the policy for fetch_id, then call sts_cache_fetched() */
    STS_CACHE_BACKOFF,       /* a fetch is needed but one for this id failed < 5 min ago;
                              * apply says what to apply meanwhile (cached or none) */
    STS_CACHE_SKIP,          /* refresh only: nothing to do now */
};

enum sts_cache_apply {
    STS_APPLY_NONE,    /* no policy (or, for STS_CACHE_FETCH, nothing yet) */
    STS_APPLY_CACHED,  /* the cached policy (the one stored before this decision) */
    STS_APPLY_FETCHED, /* the policy passed to sts_cache_fetched() */
};

struct sts_cache_decision {
    enum sts_cache_step step;
    enum sts_cache_apply apply;
    char fetch_id[STS_ID_MAX + 1]; /* STS_CACHE_FETCH: the id to fetch for and to pass back */
    bool warn;                     /* a refresh of a non-none cached policy failed */
    bool changed;                  /* entry differs from the one given: persist it */
    struct sts_cache_entry entry;  /* the entry to keep from now on */
    const char *why;               /* a short reason for the logs, static */
};

/* True when the entry holds nothing worth storing (no policy, no failure to remember). */
bool sts_cache_entry_empty(const struct sts_cache_entry *e);

/* True when e holds a policy that may be applied at now. */
bool sts_cache_entry_fresh(const struct sts_cache_entry *e, int64_t now);

/* The next proactive refresh time of a policy fetched at from with this max_age: about a day later
 * (half of max_age when that is shorter than two days), moved by up to 5% either way by jitter (any
 * 32-bit value, from the caller's random source). Always before the expiry when max_age >= 2. */
int64_t sts_cache_next_refresh(int64_t from, uint32_t max_age, uint32_t jitter);

/* A delivery needs the policy of a domain. e may be NULL (nothing cached). */
void sts_cache_lookup(const struct sts_cache_entry *e, const struct sts_txt_outcome *txt,
                      int64_t now, struct sts_cache_decision *out);

/* A fetch decided by sts_cache_lookup() or sts_cache_refresh() ended: policy is the parsed policy,
 * or NULL when the fetch failed for any reason (network, TLS, status, type, size, parse). e is the
 * entry that decision returned; id is its fetch_id. */
void sts_cache_fetched(const struct sts_cache_entry *e, const char *id,
                       const struct sts_policy *policy, int64_t now, uint32_t jitter,
                       struct sts_cache_decision *out);

/* The proactive refresh of an entry whose refresh_at has come. txt is a fresh TXT lookup.
 * Steps: STS_CACHE_FETCH (then sts_cache_fetched()), STS_CACHE_BACKOFF or STS_CACHE_SKIP. An entry
 * not applied within STS_CACHE_IN_USE_SECS is not refreshed; an expired one is dropped. */
void sts_cache_refresh(const struct sts_cache_entry *e, const struct sts_txt_outcome *txt,
                       int64_t now, uint32_t jitter, struct sts_cache_decision *out);

#endif
