/* test_sts_policy.c - the MTA-STS policy grammar and every Decision on it, as a table of cases
 * (docs: reference/mta-sts.md "Policy text").
 */
#include "sts_policy.h"
#include "t.h"

#include <stdlib.h>
#include <string.h>

#define S(lit) lit, sizeof(lit) - 1 /* a literal with its exact length, NULs included */

/* The three required lines of a valid enforce policy, to prepend to a case. */
#define HEAD "version: STSv1\nmode: enforce\nmax_age: 86400\n"

struct policy_case {
    const char *text;
    size_t len;
    bool valid;
    const char *want; /* valid: "mode max_age mx1,mx2"; invalid: a substring of the reason */
};

static const struct policy_case policy_cases[] = {
    /* RFC 8461 3.2 example, LF and CRLF, mixed, last line ending optional */
    {S("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\n"
       "mx: backupmx.example.com\nmax_age: 604800\n"),
     true, "enforce 604800 mail.example.com,*.example.net,backupmx.example.com"},
    {S("version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 86400\r\n"), true,
     "testing 86400 mx.example.com"},
    {S("version: STSv1\r\nmode: enforce\nmx: mx.example.com\r\nmax_age: 86400"), true,
     "enforce 86400 mx.example.com"},
    {S("version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\r\n"), true,
     "enforce 86400 mx.example.com"},
    /* spaces and tabs after ':' and at line end (errata) */
    {S("version:STSv1\nmode:enforce\nmx:mx.example.com\nmax_age:86400\n"), true,
     "enforce 86400 mx.example.com"},
    {S("version: \t STSv1 \t\nmode:\tenforce  \r\nmx: mx.example.com\t\nmax_age: 86400 \n"), true,
     "enforce 86400 mx.example.com"},
    /* order does not matter */
    {S("mx: mx.example.com\nmax_age: 5\nmode: enforce\nversion: STSv1\n"), true,
     "enforce 5 mx.example.com"},
    /* mode none needs no mx; testing and enforce do */
    {S("version: STSv1\nmode: none\nmax_age: 86400\n"), true, "none 86400 "},
    {S("version: STSv1\nmode: none\nmax_age: 86400\nmx: mx.example.com\n"), true,
     "none 86400 mx.example.com"},
    {S("version: STSv1\nmode: enforce\nmax_age: 86400\n"), false, "needs at least one mx"},
    {S("version: STSv1\nmode: testing\nmax_age: 86400\n"), false, "needs at least one mx"},
    /* required keys */
    {S("mode: enforce\nmax_age: 86400\nmx: mx.example.com\n"), false, "no version"},
    {S("version: STSv1\nmax_age: 86400\nmx: mx.example.com\n"), false, "no mode"},
    {S("version: STSv1\nmode: enforce\nmx: mx.example.com\n"), false, "no max_age"},
    {S(""), false, "no version"},
    {S("\n\n\n"), false, "no version"},
    /* exact values, case-sensitive keys and values */
    {S("version: STSv2\nmode: enforce\nmax_age: 1\nmx: a.example\n"), false, "version must be"},
    {S("version: stsv1\nmode: enforce\nmax_age: 1\nmx: a.example\n"), false, "version must be"},
    {S("version: STSv1 x\nmode: enforce\nmax_age: 1\nmx: a.example\n"), false, "version must be"},
    {S("Version: STSv1\nmode: enforce\nmax_age: 1\nmx: a.example\n"), false, "no version"},
    {S("version: STSv1\nmode: Enforce\nmax_age: 1\nmx: a.example\n"), false, "mode must be"},
    {S("version: STSv1\nmode: ENFORCE\nmax_age: 1\nmx: a.example\n"), false, "mode must be"},
    {S("version: STSv1\nmode: report\nmax_age: 1\nmx: a.example\n"), false, "mode must be"},
    {S("version: STSv1\nMode: enforce\nmax_age: 1\nmx: a.example\n"), false, "no mode"},
    {S("version: STSv1\nmode: enforce\nmax_age: 1\nMX: a.example\n"), false,
     "needs at least one mx"},
    /* max_age: 1 to 10 digits; Decision: 0 is valid, above 31557600 clamped */
    {S("version: STSv1\nmode: enforce\nmax_age: 0\nmx: a.example\n"), true, "enforce 0 a.example"},
    {S("version: STSv1\nmode: enforce\nmax_age: 31557600\nmx: a.example\n"), true,
     "enforce 31557600 a.example"},
    {S("version: STSv1\nmode: enforce\nmax_age: 31557601\nmx: a.example\n"), true,
     "enforce 31557600 a.example"},
    {S("version: STSv1\nmode: enforce\nmax_age: 9999999999\nmx: a.example\n"), true,
     "enforce 31557600 a.example"},
    {S("version: STSv1\nmode: enforce\nmax_age: 0000086400\nmx: a.example\n"), true,
     "enforce 86400 a.example"},
    {S("version: STSv1\nmode: enforce\nmax_age: 10000000000\nmx: a.example\n"), false,
     "1 to 10 digits"},
    {S("version: STSv1\nmode: enforce\nmax_age: -1\nmx: a.example\n"), false, "1 to 10 digits"},
    {S("version: STSv1\nmode: enforce\nmax_age: +5\nmx: a.example\n"), false, "1 to 10 digits"},
    {S("version: STSv1\nmode: enforce\nmax_age: 86400s\nmx: a.example\n"), false, "1 to 10 digits"},
    {S("version: STSv1\nmode: enforce\nmax_age: 86 400\nmx: a.example\n"), false, "1 to 10 digits"},
    {S("version: STSv1\nmode: enforce\nmax_age: 0x10\nmx: a.example\n"), false, "1 to 10 digits"},
    /* mx patterns */
    {S(HEAD "mx: *.example.com\n"), true, "enforce 86400 *.example.com"},
    {S(HEAD "mx: MX.Example.COM\n"), true, "enforce 86400 MX.Example.COM"},
    {S(HEAD "mx: mx.example.com.\n"), true, "enforce 86400 mx.example.com."},
    {S(HEAD "mx: xn--mller-kva.example\n"), true, "enforce 86400 xn--mller-kva.example"},
    {S(HEAD "mx: a.example\nmx: a.example\n"), true, "enforce 86400 a.example,a.example"},
    {S(HEAD "mx: *\n"), false, "invalid mx pattern"},
    {S(HEAD "mx: *example.com\n"), false, "invalid mx pattern"},
    {S(HEAD "mx: mx.*.example.com\n"), false, "invalid mx pattern"},
    {S(HEAD "mx: *.*.example.com\n"), false, "invalid mx pattern"},
    {S(HEAD "mx: 127.0.0.1\n"), false, "all digits"},
    {S(HEAD "mx: *.1.2.3.4\n"), false, "all digits"},
    {S(HEAD "mx: [192.0.2.1]\n"), false, "literal"},
    {S(HEAD "mx: -mx.example.com\n"), false, "'-'"},
    {S(HEAD "mx: mx-.example.com\n"), false, "'-'"},
    {S(HEAD "mx: mx_1.example.com\n"), false, "invalid character"},
    {S(HEAD "mx: mx..example.com\n"), false, "empty label"},
    {S(HEAD "mx: mx.example.com mx2.example.com\n"), false, "invalid character"},
    {S(HEAD "mx: a234567890123456789012345678901234567890123456789012345678901234.example\n"),
     false, "longer than 63"},
    /* Decision: an mx in U-labels makes the policy invalid */
    {S(HEAD "mx: m\xc3\xbcller.example\n"), false, "U-labels"},
    {S(HEAD "mx: mx.example.com\nmx: *.b\xc3\xbc\x63her.example\n"), false, "U-labels"},
    /* a repeated key other than mx: the first one wins */
    {S("version: STSv1\nmode: testing\nmode: enforce\nmax_age: 1\nmx: a.example\n"), true,
     "testing 1 a.example"},
    {S("version: STSv1\nmode: enforce\nmax_age: 100\nmax_age: 200\nmx: a.example\n"), true,
     "enforce 100 a.example"},
    {S("version: STSv1\nversion: STSv2\nmode: enforce\nmax_age: 1\nmx: a.example\n"), true,
     "enforce 1 a.example"},
    {S("version: STSv1\nmode: enforce\nmode: whatever\nmax_age: 1\nmx: a.example\n"), true,
     "enforce 1 a.example"},
    {S("version: STSv1\nmode: bogus\nmode: enforce\nmax_age: 1\nmx: a.example\n"), false,
     "mode must be"},
    /* unknown keys are ignored when well formed */
    {S(HEAD "mx: a.example\nfoo: bar\n"), true, "enforce 86400 a.example"},
    {S(HEAD "mx: a.example\nx_y-z.0: some value\twith tabs\n"), true, "enforce 86400 a.example"},
    {S(HEAD "mx: a.example\n9: v\n"), true, "enforce 86400 a.example"},
    {S(HEAD "mx: a.example\nabcdefghijklmnopqrstuvwxyz012345: v\n"), true,
     "enforce 86400 a.example"},
    {S(HEAD "mx: a.example\ncomment: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7\n"), true,
     "enforce 86400 a.example"},
    {S(HEAD "mx: a.example\nurl: https://example.com/?a=b;c=d#x\n"), true,
     "enforce 86400 a.example"},
    {S(HEAD "mx: a.example\nabcdefghijklmnopqrstuvwxyz0123456: v\n"), false, "invalid key"},
    {S(HEAD "mx: a.example\n_foo: bar\n"), false, "invalid key"},
    {S(HEAD "mx: a.example\nfoo bar: baz\n"), false, "invalid key"},
    {S(HEAD "mx: a.example\nfoo:\n"), false, "empty value"},
    {S(HEAD "mx: a.example\nfoo: \t \n"), false, "empty value"},
    /* malformed lines make the whole policy invalid */
    {S(HEAD "mx: a.example\njust text\n"), false, "not a key: value"},
    {S(HEAD "mx: a.example\n: value\n"), false, "invalid key"},
    {S(HEAD "mx : a.example\n"), false, "invalid key"},
    {S(HEAD " mx: a.example\n"), false, "invalid key"},
    {S(HEAD "\tmx: a.example\n"), false, "invalid key"},
    {S(HEAD "mx: a.example\nfoo: a\x01"
            "b\n"),
     false, "control character"},
    {S(HEAD "mx: a.example\nfoo: a\x7f"
            "b\n"),
     false, "control character"},
    {S(HEAD "mx: a.example\nfoo: a\0b\n"), false, "control character"},
    {S(HEAD "mx: a.example\nfoo: a\rb\n"), false, "control character"},
    {S(HEAD "mx: a.example\r\r\n"), false, "control character"},
    {S(HEAD "mx: a.example\nfoo: bar\r"), false, "control character"},
    {S(HEAD "mx: a.example\nfoo: \xc2\x85 NEL\n"), false, "control character"},
    {S(HEAD "mx: a.example\nfoo: \xff\n"), false, "invalid UTF-8"},
    {S(HEAD "mx: a.example\nfoo: \xc3\n"), false, "invalid UTF-8"},
    {S(HEAD "mx: a.example\nfoo: \xc0\xaf\n"), false, "invalid UTF-8"},
    {S(HEAD "mx: a.example\nfoo: \xe0\x80\xaf\n"), false, "invalid UTF-8"},
    {S(HEAD "mx: a.example\nfoo: \xed\xa0\x80\n"), false, "invalid UTF-8"},
    {S(HEAD "mx: a.example\nfoo: \xf4\x90\x80\x80\n"), false, "invalid UTF-8"},
    {S(HEAD "mx: a.example\nfoo: \xe2\x82\n"), false, "invalid UTF-8"},
    /* the reason names the line */
    {S("version: STSv1\nmode: enforce\nmax_age: 86400\n\nmx: a.example\nbad line\n"), false,
     "line 6"},
    /* Decision: blank lines are ignored */
    {S("\nversion: STSv1\n\nmode: enforce\r\n\r\nmax_age: 1\n\n\nmx: a.example\n\n"), true,
     "enforce 1 a.example"},
    {S("version: STSv1\n   \nmode: enforce\n\t\nmax_age: 1\nmx: a.example\n"), true,
     "enforce 1 a.example"},
};

/* Renders a valid policy as "mode max_age mx1,mx2" for comparison. */
static void render(const struct sts_policy *p, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s %u ", sts_mode_name(p->mode), (unsigned)p->max_age);
    const char *sep = "";
    for (const char *m = sts_policy_mx_first(p); m && n >= 0 && (size_t)n < size;
         m = sts_policy_mx_next(p, m)) {
        n += snprintf(buf + n, size - (size_t)n, "%s%s", sep, m);
        sep = ",";
    }
}

static struct sts_policy policy; /* 64 KiB: not on the stack */

static void test_policy_table(void)
{
    for (size_t i = 0; i < sizeof policy_cases / sizeof policy_cases[0]; i++) {
        const struct policy_case *c = &policy_cases[i];
        char reason[STS_POLICY_REASON_MAX] = "";
        enum sts_policy_status got =
            sts_policy_parse(c->text, c->len, &policy, reason, sizeof reason);
        if ((got == STS_POLICY_VALID) != c->valid)
            fprintf(stderr, "policy case %zu: valid=%d, reason \"%s\"\n", i,
                    got == STS_POLICY_VALID, reason);
        T_EQ_INT(got == STS_POLICY_VALID, c->valid);
        if (got != STS_POLICY_VALID || !c->valid) {
            if (!c->valid && !strstr(reason, c->want))
                fprintf(stderr, "policy case %zu: reason \"%s\", want \"%s\"\n", i, reason,
                        c->want);
            if (!c->valid)
                T_CHECK(strstr(reason, c->want) != NULL);
            continue;
        }
        char buf[512];
        render(&policy, buf, sizeof buf);
        T_EQ_STR(buf, c->want);
    }
}

/* The body cap: 65536 bytes pass (and the mx area holds every pattern), one more does not. */
static void test_size_limit(void)
{
    char *text = malloc(STS_POLICY_MAX + 2);
    T_CHECK(text != NULL);
    if (!text)
        return;
    size_t len = 0;
    len += (size_t)sprintf(text, "version: STSv1\nmode: enforce\nmax_age: 86400\n");
    /* Fill with the shortest mx lines: the worst case for the mx area. */
    while (len + 5 <= STS_POLICY_MAX) {
        memcpy(text + len, "mx:a\n", 5);
        len += 5;
    }
    while (len < STS_POLICY_MAX)
        text[len++] = '\n';
    char reason[STS_POLICY_REASON_MAX] = "";
    T_EQ_INT(sts_policy_parse(text, len, &policy, reason, sizeof reason), STS_POLICY_VALID);
    T_EQ_INT(policy.mx_count, (STS_POLICY_MAX - 44) / 5);
    text[len++] = '\n';
    T_EQ_INT(sts_policy_parse(text, len, &policy, reason, sizeof reason), STS_POLICY_INVALID);
    T_CHECK(strstr(reason, "larger than 65536") != NULL);
    free(text);
}

static void test_allows_mx(void)
{
    static const char text[] = "version: STSv1\nmode: enforce\nmax_age: 86400\n"
                               "mx: mx1.example.com\nmx: *.mail.example.net\n";
    T_EQ_INT(sts_policy_parse(text, sizeof text - 1, &policy, NULL, 0), STS_POLICY_VALID);
    T_CHECK(sts_policy_allows_mx(&policy, "mx1.example.com"));
    T_CHECK(sts_policy_allows_mx(&policy, "MX1.EXAMPLE.COM."));
    T_CHECK(sts_policy_allows_mx(&policy, "a.mail.example.net"));
    T_CHECK(!sts_policy_allows_mx(&policy, "mail.example.net"));
    T_CHECK(!sts_policy_allows_mx(&policy, "mx2.example.com"));
    T_CHECK(!sts_policy_allows_mx(&policy, "a.b.mail.example.net"));
    T_EQ_STR(sts_mode_name(STS_MODE_ENFORCE), "enforce");
    T_EQ_STR(sts_mode_name(STS_MODE_TESTING), "testing");
    T_EQ_STR(sts_mode_name(STS_MODE_NONE), "none");
}

int main(void)
{
    test_policy_table();
    test_size_limit();
    test_allows_mx();
    return t_done();
}
