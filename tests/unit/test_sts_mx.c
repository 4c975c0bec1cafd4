/* test_sts_mx.c - MX pattern syntax and matching, as tables of cases (docs: reference/mta-sts.md
 * "MX matching" and the mx rules of "Policy text").
 */
#include "sts_mx.h"
#include "t.h"

#include <string.h>

struct match_case {
    const char *pattern;
    const char *host;
    bool want;
};

static const struct match_case match_cases[] = {
    /* a plain pattern matches only itself */
    {"mx.example.com", "mx.example.com", true},
    {"mx.example.com", "mx2.example.com", false},
    {"mx.example.com", "a.mx.example.com", false},
    {"mx.example.com", "example.com", false},
    {"example.com", "example.com", true},
    /* case-insensitive */
    {"MX.Example.COM", "mx.example.com", true},
    {"mx.example.com", "MX.EXAMPLE.COM", true},
    {"*.EXAMPLE.com", "Mx.example.COM", true},
    /* one trailing dot on either side is removed */
    {"mx.example.com.", "mx.example.com", true},
    {"mx.example.com", "mx.example.com.", true},
    {"mx.example.com.", "mx.example.com.", true},
    {"*.example.com.", "mx.example.com", true},
    {"*.example.com", "mx.example.com.", true},
    {"mx.example.com..", "mx.example.com", false},
    {"mx.example.com", "mx.example.com..", false},
    /* a wildcard covers exactly one more leftmost label */
    {"*.example.com", "mx.example.com", true},
    {"*.example.com", "mx-1.example.com", true},
    {"*.example.com", "example.com", false},
    {"*.example.com", "a.b.example.com", false},
    {"*.example.com", "mxexample.com", false},
    {"*.example.com", "mx.example.org", false},
    {"*.example.com", "mx.notexample.com", false},
    {"*.mail.example.com", "mx1.mail.example.com", true},
    {"*.mail.example.com", "mail.example.com", false},
    /* invalid patterns never match */
    {"*", "mx.example.com", false},
    {"*.", "mx.example.com", false},
    {"**.example.com", "mx.example.com", false},
    {"*mx.example.com", "xmx.example.com", false},
    {"mx*.example.com", "mx1.example.com", false},
    {"mx.*.example.com", "mx.a.example.com", false},
    {"*.*.example.com", "a.b.example.com", false},
    {"", "", false},
    {".example.com", ".example.com", false},
    {"mx..example.com", "mx..example.com", false},
    {"-mx.example.com", "-mx.example.com", false},
    {"mx-.example.com", "mx-.example.com", false},
    {"mx_1.example.com", "mx_1.example.com", false},
    {"m\xc3\xbcller.example", "m\xc3\xbcller.example", false},
    {"127.0.0.1", "127.0.0.1", false},
    {"*.1.2.3.4", "0.1.2.3.4", false},
    {"[192.0.2.1]", "[192.0.2.1]", false},
    {"mx.example.com:25", "mx.example.com:25", false},
    /* invalid hosts never match */
    {"*.example.com", "*.example.com", false},
    {"mx.example.com", "mx.example.com ", false},
    {"*.example.com", ".example.com", false},
    /* A-labels are plain labels; digits are fine except as the whole last label */
    {"xn--mller-kva.example", "xn--mller-kva.example", true},
    {"*.xn--mller-kva.example", "mx.XN--MLLER-KVA.example", true},
    {"mx1.123.example", "mx1.123.example", true},
    {"123.example.c0m", "123.example.c0m", true},
    {"localhost", "localhost", true},
    {"*.com", "example.com", true},
    /* label and name lengths */
    {"a23456789012345678901234567890123456789012345678901234567890123.example",
     "a23456789012345678901234567890123456789012345678901234567890123.example", true},
    {"a234567890123456789012345678901234567890123456789012345678901234.example",
     "a234567890123456789012345678901234567890123456789012345678901234.example", false},
};

static void test_match_table(void)
{
    for (size_t i = 0; i < sizeof match_cases / sizeof match_cases[0]; i++) {
        const struct match_case *c = &match_cases[i];
        bool got = sts_mx_match(c->pattern, c->host);
        if (got != c->want)
            fprintf(stderr, "match case %zu: '%s' vs '%s' -> %d\n", i, c->pattern, c->host, got);
        T_EQ_INT(got, c->want);
    }
    T_CHECK(!sts_mx_match(NULL, "mx.example.com"));
    T_CHECK(!sts_mx_match("mx.example.com", NULL));
}

/* Names of exactly 253 characters pass, 254 do not; a wildcard counts toward the length. */
static void test_name_length(void)
{
    char name[300];
    /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
    memset(name, 'a', sizeof name);
    name[63] = name[127] = name[191] = '.';
    name[253] = '\0';
    T_CHECK(sts_mx_host_check(name, 253) == NULL);
    T_CHECK(sts_mx_match(name, name));
    name[253] = 'a';
    name[254] = '\0';
    T_CHECK(sts_mx_host_check(name, 254) != NULL);
    name[254] = '.';
    name[255] = '\0';
    T_CHECK(sts_mx_host_check(name, 255) != NULL); /* the dot does not make it shorter */

    char wild[300] = "*.";
    memcpy(wild + 2, name, 251);
    wild[253] = '\0';
    T_CHECK(sts_mx_pattern_check(wild, 253) == NULL);
    wild[253] = 'a';
    wild[254] = '\0';
    T_CHECK(sts_mx_pattern_check(wild, 254) != NULL);
}

static void test_reasons(void)
{
    T_EQ_STR(sts_mx_pattern_check("mx..x", 5), "empty label");
    T_CHECK(strstr(sts_mx_pattern_check("m\xc3\xbc.x", 5), "U-labels") != NULL);
    T_CHECK(strstr(sts_mx_pattern_check("1.2.3.4", 7), "all digits") != NULL);
    T_CHECK(strstr(sts_mx_pattern_check("[1.2.3.4]", 9), "literal") != NULL);
    T_CHECK(strstr(sts_mx_pattern_check("a.*.b", 5), "'*'") != NULL);
    T_CHECK(sts_mx_pattern_check("*.example.com", 13) == NULL);
    T_CHECK(sts_mx_host_check("*.example.com", 13) != NULL);
}

int main(void)
{
    test_match_table();
    test_name_length();
    test_reasons();
    return t_done();
}
