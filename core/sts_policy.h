/* sts_policy.h - the MTA-STS policy text (RFC 8461 3.2, with its errata, and our Decisions).
 *
 * Promises: a pure, strict parser over a byte range (any byte, NUL included, is handled); nothing
 * is allocated; struct sts_policy is plain data with no pointers, so it can be copied with memcpy
 * and persisted as it is. Failure comes back as a status and a short human reason naming the line
 * (printed by `stsgated check-policy` as "invalid: <reason>").
 */
#ifndef STSGATE_STS_POLICY_H
#define STSGATE_STS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STS_POLICY_MAX 65536        /* the body cap of a fetch; longer text is refused */
#define STS_MAX_AGE_LIMIT 31557600u /* Decision: a larger max_age is clamped to this */
#define STS_POLICY_REASON_MAX 160

enum sts_mode {
    STS_MODE_NONE = 0,
    STS_MODE_TESTING,
    STS_MODE_ENFORCE,
};

enum sts_policy_status {
    STS_POLICY_VALID = 0,
    STS_POLICY_INVALID,
};

struct sts_policy {
    enum sts_mode mode;
    uint32_t max_age;  /* seconds, after clamping; 0 means use once and do not keep */
    uint32_t mx_count; /* patterns in mx[] */
    uint32_t mx_len;   /* bytes of mx[] in use */
    /* The mx patterns as the policy wrote them, in order, each NUL-terminated. A pattern line takes
     * at least 4 more bytes than its pattern, so any policy of STS_POLICY_MAX bytes fits. */
    char mx[STS_POLICY_MAX];
};

/* Parses text[0..len). On STS_POLICY_VALID fills *out; otherwise writes a reason into
 * reason[0..reason_size) (reason may be NULL) and leaves *out unspecified. */
enum sts_policy_status sts_policy_parse(const char *text, size_t len, struct sts_policy *out,
                                        char *reason, size_t reason_size);

/* "enforce", "testing" or "none". */
const char *sts_mode_name(enum sts_mode mode);

/* Iterates the mx patterns: first, then next after prev; NULL at the end. */
const char *sts_policy_mx_first(const struct sts_policy *p);
const char *sts_policy_mx_next(const struct sts_policy *p, const char *prev);

/* True when host matches at least one mx pattern of the policy (sts_mx_match rules). */
bool sts_policy_allows_mx(const struct sts_policy *p, const char *host);

#endif
