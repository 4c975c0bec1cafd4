/* sts_engine.h - the MTA-STS engine: which policy applies to a domain, now, without blocking.
 *
 * For a policy domain it looks up TXT _mta-sts.<domain> (records joined, sts_record_select), runs
 * the cache rules of sts_cache.h against the domain's entry, fetches the policy when they say so
 * (sts_fetch.h), persists every changed entry through a store interface, and answers with the
 * policy to apply or none, and why. It also refreshes entries in use before they expire, from a
 * timer, with jitter. reference/mta-sts.md is the contract; the log lines are mail-logs.md's.
 *
 * Promises:
 * - Never blocks the loop: DNS and HTTPS go through injected asynchronous interfaces (the live
 *   ones are dns.c and sts_fetch.c). The store is called synchronously, once per domain the first
 *   time it is asked about and once per changed entry (a primary-key read or upsert; the entry's
 *   last_used moves at most hourly, so a busy domain does not cost a write per message).
 * - Single flight: at most one TXT lookup + fetch per domain at a time; every caller asking
 *   meanwhile waits for that flight's answer.
 * - Warm answers come from an in-memory hash map, synchronously: a TXT answer stands for
 *   txt_recheck_s seconds (postfix-mta-sts-resolver's "grace"), during which the cached policy
 *   is applied without asking DNS again.
 * - Time comes from an injectable clock (seconds), jitter from an injectable random source, so
 *   tests move time and pin jitter.
 * - core stays free of SQL: the store is a table of function pointers (db/db_stsengine.h binds
 *   db_stscache.h to it).
 * Single-threaded: one engine per loop, used from that loop's thread only.
 */
#ifndef STSGATE_STS_ENGINE_H
#define STSGATE_STS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns.h"
#include "evloop.h"
#include "sts_cache.h"
#include "sts_fetch.h"
#include "sts_mx.h"
#include "sts_policy.h"
#include "sts_record.h"

#define STS_ENGINE_TXT_RECHECK_DEFAULT 60 /* seconds a TXT answer stands */
#define STS_ENGINE_REFRESH_CHECK_MS 60000 /* how often due refreshes are looked for */
#define STS_ENGINE_REFRESH_PARALLEL 16    /* refreshes in flight at once */

/* mail_logs levels, most severe first (the agent maps them to core/maillog.h). */
enum sts_log_level {
    STS_LOG_CRITICAL = 0,
    STS_LOG_WARNING,
    STS_LOG_INFO,
    STS_LOG_DEBUG,
    STS_LOG_TRACE,
};

/* One log line's text, without date and level: "Fetch MTA-STS policy for the domain(d)". */
typedef void (*sts_log_fn)(void *arg, enum sts_log_level level, const char *text);

/* A policy as the engine hands it out: immutable and reference-counted, so a delivery may keep it
 * while the cache moves on. */
struct sts_pol {
    unsigned refs;
    enum sts_mode mode;
    uint32_t max_age;
    char id[STS_ID_MAX + 1];
    uint32_t mx_count;
    uint32_t mx_len;
    char mx[]; /* mx_count patterns, each NUL-terminated, in the policy's order */
};

struct sts_pol *sts_pol_ref(struct sts_pol *p);
void sts_pol_unref(struct sts_pol *p);
/* Iterates the patterns: first, then next after prev; NULL at the end. */
const char *sts_pol_mx_first(const struct sts_pol *p);
const char *sts_pol_mx_next(const struct sts_pol *p, const char *prev);
/* True when host matches one of the patterns (sts_mx_match rules). */
bool sts_pol_allows_mx(const struct sts_pol *p, const char *host);

/* The answer for one caller. */
struct sts_result {
    enum sts_mode mode;     /* what to apply: STS_MODE_NONE when no policy (or a mode none one) */
    struct sts_pol *policy; /* NULL when no policy; else a reference for the caller */
    bool fetched;           /* the policy was fetched for this answer, not taken from the cache */
    const char *why;        /* a short reason, static text */
};

/* Drops the result's policy reference. */
void sts_result_release(struct sts_result *r);

/* ---- the injected interfaces ---- */

/* A TXT answer for _mta-sts.<domain>: the joined records, valid during the call. */
struct sts_txt_answer {
    enum dns_status status;
    const struct sts_record_text *records;
    size_t n;
    const char *detail; /* a failure's detail, may be NULL */
};
typedef void (*sts_txt_done)(const struct sts_txt_answer *a, void *ctx);

/* DNS and HTTPS. Each start returns a handle (NULL: could not start, treated as a temporary
 * failure) and calls done exactly once, later, from the loop, never from inside the start call,
 * unless cancelled first. */
struct sts_engine_io {
    void *txt_arg; /* first argument of txt_start and txt_cancel */
    void *(*txt_start)(void *txt_arg, const char *qname, sts_txt_done done, void *ctx);
    void (*txt_cancel)(void *txt_arg, void *handle);
    void *fetch_arg; /* first argument of fetch_start and fetch_cancel */
    void *(*fetch_start)(void *fetch_arg, const char *domain, sts_fetch_cb done, void *ctx);
    void (*fetch_cancel)(void *fetch_arg, void *handle);
    bool proxied; /* fetches go through the SETUP proxy: the "via proxy" log line */
};

/* The live interfaces: TXT over dns.c, fetches over sts_fetch.c. Both must outlive the engine. */
void sts_engine_io_live(struct sts_engine_io *io, struct dns_resolver *dns,
                        struct sts_fetcher *fetcher);

/* The persistent cache. Every function returns 0 on success, -1 on failure (logged by the engine
 * at Warning; the engine goes on from memory). get returns 1 when the domain has no entry. */
struct sts_store {
    void *arg;
    /* The entry of domain and its policy text (at most cap bytes into policy, *len its length). */
    int (*get)(void *arg, const char *domain, struct sts_cache_entry *e, char *policy, size_t cap,
               size_t *len);
    /* Persists a decision (db_stscache_save semantics: policy is the fetched text or NULL). */
    int (*save)(void *arg, const char *domain, const struct sts_cache_decision *d,
                const char *policy, size_t len);
    /* Up to max domains whose refresh_at <= now, earliest first; *n the count. */
    int (*due)(void *arg, int64_t now, char (*domains)[STS_NAME_MAX + 1], size_t max, size_t *n);
};

struct sts_engine_config {
    struct ev_loop *loop;
    struct sts_engine_io io;
    struct sts_store store; /* all NULL: memory only, no refresh timer */
    sts_log_fn log;         /* NULL: no log lines */
    void *log_arg;
    enum sts_log_level log_level; /* lines above this level are not even formatted */
    int64_t (*clock)(void *arg);  /* seconds since the epoch; NULL: time() */
    void *clock_arg;
    uint32_t (*random)(void *arg); /* jitter source; NULL: the system's */
    void *random_arg;
    unsigned txt_recheck_s;    /* 0: STS_ENGINE_TXT_RECHECK_DEFAULT */
    unsigned refresh_check_ms; /* 0: STS_ENGINE_REFRESH_CHECK_MS */
    unsigned refresh_parallel; /* 0: STS_ENGINE_REFRESH_PARALLEL */
};

struct sts_engine;
struct sts_wait;

/* A pending lookup's answer; the caller owns *res (sts_result_release()). */
typedef void (*sts_engine_cb)(struct sts_result *res, void *arg);

enum sts_engine_rc {
    STS_ENGINE_DONE = 0, /* *out holds the answer; cb will not be called */
    STS_ENGINE_PENDING,  /* cb will be called once from the loop, unless cancelled */
    STS_ENGINE_ERROR,    /* out of memory: *out says "no policy" */
};

int sts_engine_new(const struct sts_engine_config *cfg, struct sts_engine **out, char *err,
                   size_t errlen);
/* Cancels every lookup in flight (no callbacks). Not from inside an engine callback. */
void sts_engine_free(struct sts_engine *e);

/* The policy of domain (the recipient domain: never a parent). *wait, when not NULL, gets the
 * handle of a PENDING lookup for sts_engine_cancel(); it is valid until the callback is called
 * (not inside it) or the lookup is cancelled. */
enum sts_engine_rc sts_engine_lookup(struct sts_engine *e, const char *domain,
                                     struct sts_result *out, sts_engine_cb cb, void *arg,
                                     struct sts_wait **wait);
/* The callback of a PENDING lookup will not be called. Allowed from inside engine callbacks. */
void sts_engine_cancel(struct sts_engine *e, struct sts_wait *w);

/* Looks for due refreshes now (the timer does this every refresh_check_ms). */
void sts_engine_refresh_now(struct sts_engine *e);

struct sts_engine_stats {
    uint64_t lookups;     /* sts_engine_lookup() calls */
    uint64_t answered;    /* answered at once (STS_ENGINE_DONE) */
    uint64_t joined;      /* PENDING lookups that joined a flight already in the air */
    uint64_t txt_queries; /* TXT lookups started */
    uint64_t fetches;     /* policy fetches started */
    uint64_t fetch_failures;
    uint64_t refreshes; /* refresh flights started */
    size_t domains;     /* domains held in memory */
    size_t flights;     /* flights in the air */
};
void sts_engine_get_stats(const struct sts_engine *e, struct sts_engine_stats *out);

#endif
