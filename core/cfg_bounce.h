/* cfg_bounce.h - bounce profiles (cli.md §5 bounceconfig): how long and how often a deferred
 * message is retried, and whether a hard bounce sends a notice.
 *
 * A profile is one configuration unit of kind CFG_KIND_BOUNCE whose name is the profile's name
 * (letters, digits, '-', '_'). The profile named "Default" always exists (a new data directory
 * has it; a store without it means the factory values). A body:
 *
 *     max_retries=100              retries after the first attempt, 0-10000
 *     max_queue_lifetime=259200    seconds a message may stay queued, 0-3000000
 *     initial_retry=60             seconds before the first retry, 1-86400
 *     max_retry=3600               longest wait between tries, initial_retry-86400
 *     hard_bounce_notice=yes       yes | no | default (default: what "Default" says; "Default"
 *                                  itself is yes or no)
 *
 * A missing key means the factory value (the Default profile's factory values above). The agent
 * finds a message's profile through its destination entry (bounce_profile, "" following the
 * DEFAULT entry), falls back to "Default" when that profile does not exist, resolves the notice
 * with cfg_bounce_effective() and asks cfg_bounce_next() after each failed attempt. */
#ifndef STSGATE_CFG_BOUNCE_H
#define STSGATE_CFG_BOUNCE_H

#include <stdbool.h>

#include "strbuf.h"

#define CFG_BOUNCE_DEFAULT "Default"

#define CFG_BOUNCE_RETRIES_MIN 0
#define CFG_BOUNCE_RETRIES_MAX 10000
#define CFG_BOUNCE_LIFETIME_MIN 0
#define CFG_BOUNCE_LIFETIME_MAX 3000000
#define CFG_BOUNCE_INTERVAL_MIN 1
#define CFG_BOUNCE_INTERVAL_MAX 86400

enum cfg_notice { CFG_NOTICE_DEFAULT = 0, CFG_NOTICE_YES, CFG_NOTICE_NO };

struct cfg_bounce {
    long max_retries;
    long max_queue_lifetime; /* seconds */
    long initial_retry;      /* seconds */
    long max_retry;          /* seconds, >= initial_retry */
    enum cfg_notice hard_bounce_notice;
};

/* 100 retries, 259200 s, 60 s initial, 3600 s at most, notice Yes. */
void cfg_bounce_factory(struct cfg_bounce *b);
/* Decodes a body (NULL: the factory profile). Values out of range keep the factory value and make
 * it return false. A max_retry below initial_retry is raised to it. */
bool cfg_bounce_decode(const char *body, struct cfg_bounce *b);
void cfg_bounce_encode(const struct cfg_bounce *b, struct strbuf *sb);
/* "Yes", "No" or "Default". */
const char *cfg_notice_label(enum cfg_notice n);

/* profile with its notice resolved against the Default profile (never CFG_NOTICE_DEFAULT). */
void cfg_bounce_effective(const struct cfg_bounce *profile, const struct cfg_bounce *def,
                          struct cfg_bounce *out);

enum cfg_retry { CFG_RETRY_LATER, CFG_RETRY_BOUNCE };
/* The decision after a failed delivery attempt. attempts: how many attempts were made so far, this
 * one included (1 after the first); queued: seconds since the message was queued. Retries wait
 * initial_retry seconds, doubling after each retry, at most max_retry, and never past the end of
 * the queue lifetime (the last try is made when the lifetime ends). The message bounces when
 * max_retries retries were made or when it has been queued max_queue_lifetime seconds. With
 * CFG_RETRY_LATER, *wait is the number of seconds (>= 1 unless the lifetime ends sooner) until the
 * next attempt. */
enum cfg_retry cfg_bounce_next(const struct cfg_bounce *b, long attempts, long queued, long *wait);

#endif
