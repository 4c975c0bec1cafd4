/* sts_mx.h - MTA-STS MX patterns (RFC 8461 3.2, 4.1): their syntax and how a host matches one.
 *
 * Promises: pure functions, no allocation, no locale. A pattern is a domain name in A-labels or
 * "*." followed by one; a host is a domain name in A-labels. One trailing dot is removed from
 * either before validation and comparison; comparison ignores ASCII case. An invalid pattern or
 * host never matches.
 */
#ifndef STSGATE_STS_MX_H
#define STSGATE_STS_MX_H

#include <stdbool.h>
#include <stddef.h>

/* Longest domain name in text form, without the trailing dot. */
#define STS_NAME_MAX 253

/* NULL when s[0..len) is a valid mx pattern, else a short reason ("empty label", ...). */
const char *sts_mx_pattern_check(const char *s, size_t len);

/* NULL when s[0..len) is a valid MX host name (no wildcard), else a short reason. */
const char *sts_mx_host_check(const char *s, size_t len);

/* True when host matches pattern: a plain pattern only itself, "*.d" exactly one label more than
 * d. Both are NUL-terminated. */
bool sts_mx_match(const char *pattern, const char *host);

#endif
