/* sts_cache.c - the MTA-STS cache state machine (see sts_cache.h for the rules it promises).
 *
 * Each entry point copies the caller's entry, drops an expired policy from the copy (an expired
 * entry is never applied, so there is no reason to keep it), decides, and compares the result with
 * the original to tell the caller whether to write. No clock, no randomness, no I/O.
 */
#include "sts_cache.h"

#include <string.h>

static void copy_id(char dst[STS_ID_MAX + 1], const char *src)
{
    size_t n = src ? strnlen(src, STS_ID_MAX) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static bool same_id(const char *a, const char *b)
{
    return strncmp(a, b, STS_ID_MAX + 1) == 0;
}

static void clear_policy(struct sts_cache_entry *e)
{
    e->has_policy = false;
    e->id[0] = '\0';
    e->mode = STS_MODE_NONE;
    e->fetched_at = 0;
    e->max_age = 0;
    e->refresh_at = 0;
    e->last_used = 0;
}

static void clear_failure(struct sts_cache_entry *e)
{
    e->failed_id[0] = '\0';
    e->failed_at = 0;
}

static bool entry_equal(const struct sts_cache_entry *a, const struct sts_cache_entry *b)
{
    return a->has_policy == b->has_policy && same_id(a->id, b->id) && a->mode == b->mode &&
           a->fetched_at == b->fetched_at && a->max_age == b->max_age &&
           a->refresh_at == b->refresh_at && a->last_used == b->last_used &&
           same_id(a->failed_id, b->failed_id) && a->failed_at == b->failed_at;
}

bool sts_cache_entry_empty(const struct sts_cache_entry *e)
{
    return !e || (!e->has_policy && e->failed_id[0] == '\0');
}

bool sts_cache_entry_fresh(const struct sts_cache_entry *e, int64_t now)
{
    /* A clock that went back (now < fetched_at) cannot show the entry expired. */
    return e && e->has_policy && e->max_age > 0 && now - e->fetched_at < (int64_t)e->max_age;
}

/* True while a fetch for this id failed less than STS_CACHE_BACKOFF_SECS ago. A failure "in the
 * future" (the clock went back) does not hold fetches off. */
static bool in_backoff(const struct sts_cache_entry *e, const char *id, int64_t now)
{
    return e->failed_id[0] != '\0' && same_id(e->failed_id, id) && now >= e->failed_at &&
           now - e->failed_at < STS_CACHE_BACKOFF_SECS;
}

int64_t sts_cache_next_refresh(int64_t from, uint32_t max_age, uint32_t jitter)
{
    int64_t interval = max_age >= 2 * (int64_t)STS_CACHE_REFRESH_SECS ? STS_CACHE_REFRESH_SECS
                                                                      : (int64_t)max_age / 2;
    /* Jitter spreads refreshes of many domains fetched at once; 5% keeps it before expiry. */
    int64_t span = interval / 20;
    int64_t offset = span > 0 ? (int64_t)(jitter % (uint32_t)(2 * span + 1)) - span : 0;
    return from + interval + offset;
}

/* When to try again after a failed refresh: in an hour, or as soon as the backoff allows when the
 * policy would expire before that. */
static int64_t retry_at(const struct sts_cache_entry *e, int64_t now)
{
    int64_t expires = e->fetched_at + (int64_t)e->max_age;
    if (now + STS_CACHE_RETRY_SECS < expires)
        return now + STS_CACHE_RETRY_SECS;
    return now + STS_CACHE_BACKOFF_SECS;
}

/* Starts a decision: *orig gets a copy of e (or an empty entry) first, so that e may point into
 * out (a caller passing &d.entry back in); out->entry is that copy with an expired policy and a
 * stale failure record dropped. */
static void begin(const struct sts_cache_entry *e, int64_t now, struct sts_cache_entry *orig,
                  struct sts_cache_decision *out)
{
    memset(orig, 0, sizeof *orig);
    if (e)
        *orig = *e;
    orig->id[STS_ID_MAX] = '\0';
    orig->failed_id[STS_ID_MAX] = '\0';
    memset(out, 0, sizeof *out);
    out->entry = *orig;
    if (out->entry.has_policy && !sts_cache_entry_fresh(&out->entry, now))
        clear_policy(&out->entry);
    if (out->entry.failed_id[0] != '\0' &&
        !(now >= out->entry.failed_at && now - out->entry.failed_at < STS_CACHE_BACKOFF_SECS))
        clear_failure(&out->entry);
}

static void finish(const struct sts_cache_entry *orig, struct sts_cache_decision *out)
{
    out->changed = !entry_equal(orig, &out->entry);
}

/* A delivery is asking: the cached policy is in use. Rewritten only when it moved by the
 * granularity, so that a busy domain does not cost a store write per message. */
static void touch(struct sts_cache_entry *e, int64_t now)
{
    if (e->has_policy &&
        (now - e->last_used >= STS_CACHE_USE_GRANULARITY_SECS || now < e->last_used))
        e->last_used = now;
}

void sts_cache_lookup(const struct sts_cache_entry *e, const struct sts_txt_outcome *txt,
                      int64_t now, struct sts_cache_decision *out)
{
    struct sts_cache_entry orig;
    char id[STS_ID_MAX + 1];
    copy_id(id, txt && txt->status == STS_TXT_VALID ? txt->id : "");
    enum sts_txt_status status = txt ? txt->status : STS_TXT_TEMPFAIL;
    begin(e, now, &orig, out);
    struct sts_cache_entry *n = &out->entry;
    bool cached = n->has_policy;

    if (status == STS_TXT_VALID) {
        if (cached && same_id(n->id, id)) {
            out->step = STS_CACHE_APPLY_CACHED;
            out->apply = STS_APPLY_CACHED;
            out->why = "cached policy id matches the TXT record";
        } else if (in_backoff(n, id, now)) {
            out->step = STS_CACHE_BACKOFF;
            out->apply = cached ? STS_APPLY_CACHED : STS_APPLY_NONE;
            out->why = cached ? "a fetch for this id failed recently; the cached policy applies"
                              : "a fetch for this id failed recently; no policy";
        } else {
            out->step = STS_CACHE_FETCH;
            out->apply = STS_APPLY_NONE;
            copy_id(out->fetch_id, id);
            out->why = cached ? "TXT id differs from the cached policy" : "no cached policy";
        }
    } else if (cached) {
        out->step = STS_CACHE_APPLY_CACHED;
        out->apply = STS_APPLY_CACHED;
        out->why = status == STS_TXT_TEMPFAIL ? "TXT lookup failed; the cached policy applies"
                                              : "no valid TXT record; the cached policy applies";
    } else {
        out->step = STS_CACHE_NO_POLICY;
        out->apply = STS_APPLY_NONE;
        out->why = status == STS_TXT_TEMPFAIL ? "TXT lookup failed and nothing is cached"
                                              : "no valid TXT record and nothing is cached";
    }
    touch(n, now);
    finish(&orig, out);
}

void sts_cache_fetched(const struct sts_cache_entry *e, const char *id,
                       const struct sts_policy *policy, int64_t now, uint32_t jitter,
                       struct sts_cache_decision *out)
{
    struct sts_cache_entry orig;
    char fetched_id[STS_ID_MAX + 1];
    copy_id(fetched_id, id); /* id may point into out */
    begin(e, now, &orig, out);
    struct sts_cache_entry *n = &out->entry;

    if (policy) {
        /* A first fetch comes from a delivery; a replacement keeps the old entry's use time, so
         * that refreshes alone never keep an entry "in use". */
        int64_t last_used = n->has_policy ? n->last_used : now;
        clear_failure(n);
        clear_policy(n);
        out->step = STS_CACHE_APPLY_FETCHED;
        out->apply = STS_APPLY_FETCHED;
        if (policy->max_age == 0) {
            out->why = "max_age 0: the policy is used once and not kept";
        } else {
            n->has_policy = true;
            copy_id(n->id, fetched_id);
            n->mode = policy->mode;
            n->fetched_at = now;
            n->max_age = policy->max_age > STS_MAX_AGE_LIMIT ? STS_MAX_AGE_LIMIT : policy->max_age;
            n->refresh_at = sts_cache_next_refresh(now, n->max_age, jitter);
            n->last_used = last_used;
            out->why = "fetched policy replaces the cache entry";
        }
    } else {
        copy_id(n->failed_id, fetched_id);
        n->failed_at = now;
        if (n->has_policy) {
            out->step = STS_CACHE_APPLY_CACHED;
            out->apply = STS_APPLY_CACHED;
            out->warn = n->mode != STS_MODE_NONE;
            n->refresh_at = retry_at(n, now);
            out->why = "policy fetch failed; the cached policy applies";
        } else {
            out->step = STS_CACHE_NO_POLICY;
            out->apply = STS_APPLY_NONE;
            out->why = "policy fetch failed and nothing is cached";
        }
    }
    finish(&orig, out);
}

void sts_cache_refresh(const struct sts_cache_entry *e, const struct sts_txt_outcome *txt,
                       int64_t now, uint32_t jitter, struct sts_cache_decision *out)
{
    struct sts_cache_entry orig;
    char id[STS_ID_MAX + 1];
    copy_id(id, txt && txt->status == STS_TXT_VALID ? txt->id : "");
    enum sts_txt_status status = txt ? txt->status : STS_TXT_TEMPFAIL;
    begin(e, now, &orig, out);
    struct sts_cache_entry *n = &out->entry;
    out->step = STS_CACHE_SKIP;
    out->apply = STS_APPLY_NONE;

    if (!n->has_policy) {
        out->why = orig.has_policy ? "cached policy expired" : "nothing cached";
    } else if (now < n->refresh_at) {
        out->why = "refresh not due";
    } else if (now - n->last_used >= STS_CACHE_IN_USE_SECS) {
        /* Not in use: look again in a day; it still applies until it expires. */
        n->refresh_at = sts_cache_next_refresh(now, n->max_age, jitter);
        out->why = "cached policy not in use";
    } else if (status != STS_TXT_VALID) {
        /* A refresh needs live discovery: never extend a policy whose TXT record is gone. */
        out->warn = n->mode != STS_MODE_NONE;
        n->refresh_at = retry_at(n, now);
        out->why = status == STS_TXT_TEMPFAIL ? "refresh: TXT lookup failed"
                                              : "refresh: no valid TXT record";
    } else if (in_backoff(n, id, now)) {
        out->step = STS_CACHE_BACKOFF;
        n->refresh_at = n->failed_at + STS_CACHE_BACKOFF_SECS;
        out->why = "refresh: a fetch for this id failed recently";
    } else {
        /* Even an unchanged id is fetched again: max_age counts from the fetch. */
        out->step = STS_CACHE_FETCH;
        copy_id(out->fetch_id, id);
        out->why = "refresh due";
    }
    finish(&orig, out);
}
