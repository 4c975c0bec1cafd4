/* sts_policy.c - the MTA-STS policy parser (see sts_policy.h).
 *
 * Line grammar (RFC 8461 3.2 with errata, as docs/reference mta-sts.md states it):
 *   line  = key ":" *WSP value *WSP ( LF / CRLF / end of text )
 *   key   = (ALPHA / DIGIT) 0*31(ALPHA / DIGIT / "_" / "-" / ".")   (case-sensitive)
 *   value = 1+ printable ASCII or UTF-8 characters, inner spaces and tabs allowed
 * Known keys: version (STSv1), mode (enforce|testing|none), max_age (1-10 digits), mx (pattern).
 * A repeated key other than mx: the first one wins, later ones need only be well formed. Unknown
 * well-formed keys are ignored. Blank lines are ignored (Decision). Any other line, or any control
 * character, makes the whole policy invalid: a half-understood policy is never applied.
 */
#include "sts_policy.h"

#include "sts_mx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static void set_reason(char *reason, size_t size, const char *fmt, ...)
{
    if (!reason || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, size, fmt, ap);
    va_end(ap);
}

static bool key_valid(const char *k, size_t n)
{
    if (n == 0 || n > 32 || !is_alnum((unsigned char)k[0]))
        return false;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (!is_alnum(c) && c != '_' && c != '-' && c != '.')
            return false;
    }
    return true;
}

static bool tail(unsigned char c)
{
    return c >= 0x80 && c <= 0xbf;
}

/* Length of the well-formed UTF-8 sequence (RFC 3629) of 2 to 4 bytes at s, or 0. C1 control
 * characters (U+0080-U+009F) count as malformed: the policy allows no control character. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c >= 0xc2 && c <= 0xdf) {
        if (n < 2 || !tail(s[1]) || (c == 0xc2 && s[1] <= 0x9f))
            return 0;
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || !tail(s[1]) || !tail(s[2]))
            return 0;
        if (c == 0xe0 && s[1] < 0xa0) /* overlong */
            return 0;
        if (c == 0xed && s[1] > 0x9f) /* UTF-16 surrogates */
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || !tail(s[1]) || !tail(s[2]) || !tail(s[3]))
            return 0;
        if (c == 0xf0 && s[1] < 0x90) /* overlong */
            return 0;
        if (c == 0xf4 && s[1] > 0x8f) /* above U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

/* A value: printable ASCII, spaces and tabs (the caller has trimmed both ends) and UTF-8. */
static bool value_valid(const char *v, size_t n)
{
    const unsigned char *s = (const unsigned char *)v;
    for (size_t i = 0; i < n;) {
        if ((s[i] >= 0x21 && s[i] <= 0x7e) || is_wsp(s[i])) {
            i++;
            continue;
        }
        size_t k = utf8_seq(s + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

static bool value_is(const char *v, size_t n, const char *word)
{
    return n == strlen(word) && memcmp(v, word, n) == 0;
}

/* State of one parse: which known keys were seen. */
struct parse {
    bool version, mode, max_age;
};

/* Applies one well-formed "key: value" line. Returns false with a reason when the line is a known
 * key with a bad value. */
static bool apply_line(struct parse *st, struct sts_policy *out, const char *key, size_t klen,
                       const char *v, size_t vlen, unsigned line, char *reason, size_t rsize)
{
    if (value_is(key, klen, "version")) {
        if (st->version)
            return true;
        if (!value_is(v, vlen, "STSv1")) {
            set_reason(reason, rsize, "line %u: version must be STSv1", line);
            return false;
        }
        st->version = true;
        return true;
    }
    if (value_is(key, klen, "mode")) {
        if (st->mode)
            return true;
        if (value_is(v, vlen, "enforce"))
            out->mode = STS_MODE_ENFORCE;
        else if (value_is(v, vlen, "testing"))
            out->mode = STS_MODE_TESTING;
        else if (value_is(v, vlen, "none"))
            out->mode = STS_MODE_NONE;
        else {
            set_reason(reason, rsize, "line %u: mode must be enforce, testing or none", line);
            return false;
        }
        st->mode = true;
        return true;
    }
    if (value_is(key, klen, "max_age")) {
        if (st->max_age)
            return true;
        if (vlen < 1 || vlen > 10) {
            set_reason(reason, rsize, "line %u: max_age must be 1 to 10 digits", line);
            return false;
        }
        uint64_t n = 0;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9') {
                set_reason(reason, rsize, "line %u: max_age must be 1 to 10 digits", line);
                return false;
            }
            n = n * 10 + (uint64_t)(v[i] - '0');
        }
        out->max_age = n > STS_MAX_AGE_LIMIT ? STS_MAX_AGE_LIMIT : (uint32_t)n;
        st->max_age = true;
        return true;
    }
    if (value_is(key, klen, "mx")) {
        const char *why = sts_mx_pattern_check(v, vlen);
        if (why) {
            set_reason(reason, rsize, "line %u: invalid mx pattern: %s", line, why);
            return false;
        }
        /* Cannot overflow: the line "mx:" + value + terminator is longer than value + NUL, and the
         * text is at most sizeof out->mx. Checked anyway, as an invariant. */
        if (out->mx_len + vlen + 1 > sizeof out->mx) {
            set_reason(reason, rsize, "line %u: too many mx patterns", line);
            return false;
        }
        memcpy(out->mx + out->mx_len, v, vlen);
        out->mx[out->mx_len + vlen] = '\0';
        out->mx_len += (uint32_t)vlen + 1;
        out->mx_count++;
        return true;
    }
    return true; /* an unknown, well-formed key: ignored */
}

enum sts_policy_status sts_policy_parse(const char *text, size_t len, struct sts_policy *out,
                                        char *reason, size_t reason_size)
{
    if (reason && reason_size)
        reason[0] = '\0';
    if (len > STS_POLICY_MAX) {
        set_reason(reason, reason_size, "policy is larger than %u bytes", (unsigned)STS_POLICY_MAX);
        return STS_POLICY_INVALID;
    }
    if (!text)
        len = 0;
    out->mode = STS_MODE_NONE;
    out->max_age = 0;
    out->mx_count = 0;
    out->mx_len = 0;
    out->mx[0] = '\0';

    struct parse st = {false, false, false};
    unsigned line = 0;
    size_t p = 0;
    while (p < len) {
        line++;
        const char *nl = memchr(text + p, '\n', len - p);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t next = nl ? end + 1 : len;
        if (nl && end > p && text[end - 1] == '\r')
            end--; /* CRLF; a CR anywhere else is a control character */

        size_t b = p, e = end;
        while (e > b && is_wsp((unsigned char)text[e - 1]))
            e--;
        if (e == b) { /* Decision: blank (or all-blank) lines are ignored */
            p = next;
            continue;
        }

        const char *colon = memchr(text + b, ':', e - b);
        if (!colon) {
            set_reason(reason, reason_size, "line %u: not a key: value line", line);
            return STS_POLICY_INVALID;
        }
        size_t klen = (size_t)(colon - (text + b));
        if (!key_valid(text + b, klen)) {
            set_reason(reason, reason_size, "line %u: invalid key", line);
            return STS_POLICY_INVALID;
        }
        size_t v = (size_t)(colon - text) + 1;
        while (v < e && is_wsp((unsigned char)text[v]))
            v++;
        if (v == e) {
            set_reason(reason, reason_size, "line %u: empty value", line);
            return STS_POLICY_INVALID;
        }
        if (!value_valid(text + v, e - v)) {
            set_reason(reason, reason_size,
                       "line %u: control character or invalid UTF-8 in the line", line);
            return STS_POLICY_INVALID;
        }
        if (!apply_line(&st, out, text + b, klen, text + v, e - v, line, reason, reason_size))
            return STS_POLICY_INVALID;
        p = next;
    }

    if (!st.version) {
        set_reason(reason, reason_size, "no version: STSv1 line");
        return STS_POLICY_INVALID;
    }
    if (!st.mode) {
        set_reason(reason, reason_size, "no mode line");
        return STS_POLICY_INVALID;
    }
    if (!st.max_age) {
        set_reason(reason, reason_size, "no max_age line");
        return STS_POLICY_INVALID;
    }
    if (out->mx_count == 0 && out->mode != STS_MODE_NONE) {
        set_reason(reason, reason_size, "mode %s needs at least one mx line",
                   sts_mode_name(out->mode));
        return STS_POLICY_INVALID;
    }
    return STS_POLICY_VALID;
}

const char *sts_mode_name(enum sts_mode mode)
{
    switch (mode) {
    case STS_MODE_ENFORCE:
        return "enforce";
    case STS_MODE_TESTING:
        return "testing";
    case STS_MODE_NONE:
        return "none";
    }
    return "none";
}

const char *sts_policy_mx_first(const struct sts_policy *p)
{
    return (p && p->mx_count > 0) ? p->mx : NULL;
}

const char *sts_policy_mx_next(const struct sts_policy *p, const char *prev)
{
    if (!p || !prev)
        return NULL;
    size_t off = (size_t)(prev - p->mx) + strlen(prev) + 1;
    return off < p->mx_len ? p->mx + off : NULL;
}

bool sts_policy_allows_mx(const struct sts_policy *p, const char *host)
{
    for (const char *m = sts_policy_mx_first(p); m; m = sts_policy_mx_next(p, m))
        if (sts_mx_match(m, host))
            return true;
    return false;
}
