/* sts_mx.c - MTA-STS MX pattern syntax and matching (RFC 8461 3.2, 4.1; see sts_mx.h).
 *
 * Names are checked by hand, byte by byte, rather than with a resolver library: the rules are
 * MTA-STS's (A-labels only, no IP literal, a wildcard only as the whole leftmost label), and the
 * checks must not depend on locale or allocate.
 */
#include "sts_mx.h"

#include <string.h>

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* The length without one trailing dot: "mx.example.com." and "mx.example.com" are the same name. */
static size_t strip_dot(const char *s, size_t len)
{
    return (len > 0 && s[len - 1] == '.') ? len - 1 : len;
}

/* Checks a domain name in A-labels (no trailing dot): labels of letters, digits and '-', 1-63 long,
 * not starting or ending with '-', and a last label that is not all digits (an IPv4 address or a
 * numeric TLD cannot be an MX name). */
static const char *name_check(const char *s, size_t len)
{
    if (len == 0)
        return "empty name";
    if (len > STS_NAME_MAX)
        return "name longer than 253 characters";
    size_t start = 0;
    bool all_digits = true;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            size_t n = i - start;
            if (n == 0)
                return "empty label";
            if (n > 63)
                return "label longer than 63 characters";
            if (s[start] == '-' || s[i - 1] == '-')
                return "label starts or ends with '-'";
            if (i == len && all_digits)
                return "last label is all digits";
            start = i + 1;
            all_digits = true;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '*')
            return "'*' only as the whole leftmost label";
        if (c >= 0x80)
            return "not an A-label name (U-labels are not allowed)";
        if (c == '[')
            return "address literals are not allowed";
        if (!is_alpha(c) && !is_digit(c) && c != '-')
            return "invalid character in name";
        if (!is_digit(c))
            all_digits = false;
    }
    return NULL;
}

const char *sts_mx_pattern_check(const char *s, size_t len)
{
    len = strip_dot(s, len);
    if (len >= 2 && s[0] == '*' && s[1] == '.') {
        /* The wildcard label counts toward the name length: "*." plus up to 251 characters. */
        if (len > STS_NAME_MAX)
            return "name longer than 253 characters";
        return name_check(s + 2, len - 2);
    }
    return name_check(s, len);
}

const char *sts_mx_host_check(const char *s, size_t len)
{
    return name_check(s, strip_dot(s, len));
}

static bool equal_nocase(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

bool sts_mx_match(const char *pattern, const char *host)
{
    if (!pattern || !host)
        return false;
    size_t plen = strlen(pattern), hlen = strlen(host);
    if (sts_mx_pattern_check(pattern, plen) || sts_mx_host_check(host, hlen))
        return false;
    plen = strip_dot(pattern, plen);
    hlen = strip_dot(host, hlen);

    if (pattern[0] != '*')
        return plen == hlen && equal_nocase(pattern, host, plen);

    /* "*.example.com" covers exactly one extra leftmost label: strip the host's first label and
     * what remains must be the pattern without "*.". */
    const char *dot = memchr(host, '.', hlen);
    if (!dot)
        return false;
    size_t rest = hlen - (size_t)(dot + 1 - host);
    return rest == plen - 2 && equal_nocase(dot + 1, pattern + 2, rest);
}
