/* fuzz_sts_policy.c - fuzzes the MTA-STS policy parser and, through the patterns it accepts, the
 * MX matcher.
 *
 * Checks beyond "no crash": a valid policy has a known mode, max_age within the clamp, at least
 * one mx unless its mode is none, mx patterns that the pattern check accepts and that match the
 * hosts they must (itself; one label more for a wildcard) and not those they must not (a wildcard's
 * own base); parsing is deterministic. The input's first line is also tried as "pattern host".
 */
#include "fuzz.h"
#include "sts_mx.h"
#include "sts_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct sts_policy p1, p2; /* 64 KiB each: not on the stack */

static void check_patterns(const struct sts_policy *p)
{
    uint32_t count = 0;
    for (const char *m = sts_policy_mx_first(p); m; m = sts_policy_mx_next(p, m)) {
        size_t len = strlen(m);
        if ((size_t)(m - p->mx) + len >= p->mx_len)
            abort();
        if (sts_mx_pattern_check(m, len) != NULL)
            abort();
        char host[STS_NAME_MAX + 8];
        if (m[0] == '*') {
            /* "*.d" matches "x.d" and never "d" nor "x.y.d". */
            if (len - 1 + 1 <= STS_NAME_MAX) {
                snprintf(host, sizeof host, "x%s", m + 1);
                if (!sts_mx_match(m, host) || !sts_policy_allows_mx(p, host))
                    abort();
            }
            if (sts_mx_match(m, m + 2))
                abort();
            if (len + 2 <= STS_NAME_MAX) {
                snprintf(host, sizeof host, "x.y%s", m + 1);
                if (sts_mx_match(m, host))
                    abort();
            }
        } else if (!sts_mx_match(m, m)) {
            abort();
        }
        count++;
    }
    if (count != p->mx_count)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char reason[STS_POLICY_REASON_MAX];

    enum sts_policy_status s1 = sts_policy_parse(text, size, &p1, reason, sizeof reason);
    enum sts_policy_status s2 = sts_policy_parse(text, size, &p2, NULL, 0);
    if (s1 != s2)
        abort();
    if (s1 == STS_POLICY_VALID) {
        if (p1.mode != STS_MODE_NONE && p1.mode != STS_MODE_TESTING && p1.mode != STS_MODE_ENFORCE)
            abort();
        if (p1.max_age > STS_MAX_AGE_LIMIT || p1.max_age != p2.max_age || p1.mode != p2.mode)
            abort();
        if (p1.mx_count == 0 && p1.mode != STS_MODE_NONE)
            abort();
        if (p1.mx_len > sizeof p1.mx || p1.mx_len != p2.mx_len ||
            memcmp(p1.mx, p2.mx, p1.mx_len) != 0)
            abort();
        check_patterns(&p1);
    } else {
        size_t n = strnlen(reason, sizeof reason);
        if (n == 0 || n == sizeof reason)
            abort();
    }

    /* The first line as "pattern host" for the matcher alone. */
    char line[2 * STS_NAME_MAX + 16];
    size_t n = 0;
    while (n < size && n < sizeof line - 1 && data[n] != '\n') {
        line[n] = (char)data[n];
        n++;
    }
    line[n] = '\0';
    char *sp = strchr(line, ' ');
    if (sp) {
        *sp = '\0';
        bool m = sts_mx_match(line, sp + 1);
        if (m &&
            (sts_mx_pattern_check(line, strlen(line)) || sts_mx_host_check(sp + 1, strlen(sp + 1))))
            abort(); /* an invalid pattern or host never matches */
    }
    return 0;
}
