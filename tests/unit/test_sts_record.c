/* test_sts_record.c - the MTA-STS TXT record grammar and the "exactly one v=STSv1 record" rule,
 * as tables of cases (docs: reference/mta-sts.md "Discovery: the TXT record").
 */
#include "sts_record.h"
#include "t.h"

#include <string.h>

#define S(lit) lit, sizeof(lit) - 1 /* a literal with its exact length, NULs included */

struct record_case {
    const char *txt;
    size_t len;
    enum sts_record_status want;
    const char *want_id;     /* VALID: the id */
    const char *want_reason; /* otherwise: a substring of the reason */
};

static const struct record_case record_cases[] = {
    /* RFC 8461 3.1 examples and plain forms */
    {S("v=STSv1; id=20160831085700Z;"), STS_RECORD_VALID, "20160831085700Z", NULL},
    {S("v=STSv1; id=20160831085700Z"), STS_RECORD_VALID, "20160831085700Z", NULL},
    {S("v=STSv1;id=abc"), STS_RECORD_VALID, "abc", NULL},
    {S("v=STSv1;id=abc;"), STS_RECORD_VALID, "abc", NULL},
    {S("v=STSv1;\tid=abc"), STS_RECORD_VALID, "abc", NULL},
    {S("v=STSv1;  \t id=abc;  "), STS_RECORD_VALID, "abc", NULL},
    /* errata: whitespace before ';' is part of the delimiter */
    {S("v=STSv1 ; id=abc"), STS_RECORD_VALID, "abc", NULL},
    {S("v=STSv1\t;id=abc ;"), STS_RECORD_VALID, "abc", NULL},
    {S("v=STSv1; id=abc \t; "), STS_RECORD_VALID, "abc", NULL},
    /* id: 1 to 32 letters or digits */
    {S("v=STSv1; id=a"), STS_RECORD_VALID, "a", NULL},
    {S("v=STSv1; id=7"), STS_RECORD_VALID, "7", NULL},
    {S("v=STSv1; id=ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"), STS_RECORD_VALID,
     "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", NULL},
    {S("v=STSv1; id=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"), STS_RECORD_INVALID, NULL, "id must be"},
    {S("v=STSv1; id="), STS_RECORD_INVALID, NULL, "id must be"},
    {S("v=STSv1; id=abc-def"), STS_RECORD_INVALID, NULL, "id must be"},
    {S("v=STSv1; id=abc_def"), STS_RECORD_INVALID, NULL, "id must be"},
    {S("v=STSv1; id=abc.def"), STS_RECORD_INVALID, NULL, "id must be"},
    {S("v=STSv1; id=abc=def"), STS_RECORD_INVALID, NULL, "id must be"},
    {S("v=STSv1; id=caf\xc3\xa9"), STS_RECORD_INVALID, NULL, "id must be"},
    {S("v=STSv1; id=ab\0c"), STS_RECORD_INVALID, NULL, "id must be"},
    /* id is required; field names are case-sensitive */
    {S("v=STSv1"), STS_RECORD_INVALID, NULL, "no id"},
    {S("v=STSv1;"), STS_RECORD_INVALID, NULL, "no id"},
    {S("v=STSv1; ID=abc"), STS_RECORD_INVALID, NULL, "no id"},
    {S("v=STSv1; foo=bar"), STS_RECORD_INVALID, NULL, "no id"},
    /* a repeated id: the first wins, each must be valid */
    {S("v=STSv1; id=first; id=second"), STS_RECORD_VALID, "first", NULL},
    {S("v=STSv1; id=first; id=bad_one"), STS_RECORD_INVALID, NULL, "id must be"},
    /* extension fields are ignored when well formed */
    {S("v=STSv1; id=abc; ext=value"), STS_RECORD_VALID, "abc", NULL},
    {S("v=STSv1; ext=value; id=abc"), STS_RECORD_VALID, "abc", NULL},
    {S("v=STSv1; id=abc; a_b-c.d=!\"#$%&'()*+,-./:<>?@[\\]^_`{|}~"), STS_RECORD_VALID, "abc", NULL},
    {S("v=STSv1; id=abc; 9x=1"), STS_RECORD_VALID, "abc", NULL},
    {S("v=STSv1; id=abc; abcdefghijklmnopqrstuvwxyz012345=v"), STS_RECORD_VALID, "abc", NULL},
    {S("v=STSv1; id=abc; abcdefghijklmnopqrstuvwxyz0123456=v"), STS_RECORD_INVALID, NULL,
     "invalid name"},
    {S("v=STSv1; id=abc; _x=1"), STS_RECORD_INVALID, NULL, "invalid name"},
    {S("v=STSv1; id=abc; -x=1"), STS_RECORD_INVALID, NULL, "invalid name"},
    {S("v=STSv1; id=abc; =1"), STS_RECORD_INVALID, NULL, "invalid name"},
    {S("v=STSv1; id=abc; x=1=2"), STS_RECORD_INVALID, NULL, "invalid value"},
    {S("v=STSv1; id=abc; x="), STS_RECORD_INVALID, NULL, "empty value"},
    {S("v=STSv1; id=abc; x=caf\xc3\xa9"), STS_RECORD_INVALID, NULL, "invalid value"},
    {S("v=STSv1; id=abc; x=\x7f"), STS_RECORD_INVALID, NULL, "invalid value"},
    {S("v=STSv1; id=abc; justaword"), STS_RECORD_INVALID, NULL, "not name=value"},
    /* empty fields and separators */
    {S("v=STSv1;; id=abc"), STS_RECORD_INVALID, NULL, "empty field"},
    {S("v=STSv1; id=abc;;"), STS_RECORD_INVALID, NULL, "empty field"},
    {S("v=STSv1; ; id=abc"), STS_RECORD_INVALID, NULL, "empty field"},
    {S("v=STSv1 id=abc"), STS_RECORD_INVALID, NULL, "separated by ';'"},
    {S("v=STSv1; id=abc ext=1"), STS_RECORD_INVALID, NULL, "separated by ';'"},
    {S("v=STSv1; id=abc "), STS_RECORD_INVALID, NULL, "whitespace at the end"},
    {S("v=STSv1; id=abc,def"), STS_RECORD_INVALID, NULL, "id must be"},
    /* the version: first, exact, case-sensitive */
    {S("v=stsv1; id=abc"), STS_RECORD_NOT_STS, NULL, "v=STSv1"},
    {S("V=STSv1; id=abc"), STS_RECORD_NOT_STS, NULL, "v=STSv1"},
    {S("v=STSv2; id=abc"), STS_RECORD_NOT_STS, NULL, "v=STSv1"},
    {S("v=STSv10; id=abc"), STS_RECORD_NOT_STS, NULL, "v=STSv1"},
    {S(" v=STSv1; id=abc"), STS_RECORD_NOT_STS, NULL, "v=STSv1"},
    {S("id=abc; v=STSv1"), STS_RECORD_NOT_STS, NULL, "v=STSv1"},
    {S("v=spf1 -all"), STS_RECORD_NOT_STS, NULL, "v=STSv1"},
    {S(""), STS_RECORD_NOT_STS, NULL, "v=STSv1"},
    {S("v=STS"), STS_RECORD_NOT_STS, NULL, "v=STSv1"},
};

static void test_record_table(void)
{
    for (size_t i = 0; i < sizeof record_cases / sizeof record_cases[0]; i++) {
        const struct record_case *c = &record_cases[i];
        struct sts_record rec;
        char reason[STS_REASON_MAX] = "";
        memset(&rec, 0, sizeof rec);
        enum sts_record_status got = sts_record_parse(c->txt, c->len, &rec, reason, sizeof reason);
        if (got != c->want)
            fprintf(stderr, "record case %zu: \"%s\" -> %d (%s)\n", i, c->txt, (int)got, reason);
        T_EQ_INT(got, c->want);
        if (c->want == STS_RECORD_VALID) {
            T_EQ_STR(rec.id, c->want_id);
        } else {
            if (!strstr(reason, c->want_reason))
                fprintf(stderr, "record case %zu: reason \"%s\"\n", i, reason);
            T_CHECK(strstr(reason, c->want_reason) != NULL);
        }
    }
}

struct select_case {
    const char *name;
    const char *records[4];
    enum sts_txt_status want;
    const char *want_id;
    const char *want_reason;
};

static const struct select_case select_cases[] = {
    {"one record", {"v=STSv1; id=one"}, STS_TXT_VALID, "one", NULL},
    {"no records at all", {NULL}, STS_TXT_NONE, NULL, "no v=STSv1"},
    {"only other records",
     {"v=spf1 -all", "google-site-verification=x"},
     STS_TXT_NONE,
     NULL,
     "no v=STSv1"},
    {"one among others", {"v=spf1 -all", "v=STSv1; id=one", "hello"}, STS_TXT_VALID, "one", NULL},
    {"two STS records",
     {"v=STSv1; id=one", "v=STSv1; id=two"},
     STS_TXT_INVALID,
     NULL,
     "more than one"},
    {"two identical STS records",
     {"v=STSv1; id=one", "v=STSv1; id=one"},
     STS_TXT_INVALID,
     NULL,
     "more than one"},
    {"a valid and an invalid STS record",
     {"v=STSv1; id=one", "v=STSv1; id=bad!"},
     STS_TXT_INVALID,
     NULL,
     "more than one"},
    {"the one STS record is invalid",
     {"v=STSv1; id=bad!", "v=spf1 -all"},
     STS_TXT_INVALID,
     NULL,
     "id must be"},
    {"lower-case version is not an STS record",
     {"v=stsv1; id=x", "v=STSv1; id=y"},
     STS_TXT_VALID,
     "y",
     NULL},
    {"another version is not counted",
     {"v=STSv10; id=x", "v=STSv1; id=y"},
     STS_TXT_VALID,
     "y",
     NULL},
};

static void test_select_table(void)
{
    for (size_t i = 0; i < sizeof select_cases / sizeof select_cases[0]; i++) {
        const struct select_case *c = &select_cases[i];
        struct sts_record_text texts[4];
        size_t n = 0;
        while (n < 4 && c->records[n]) {
            texts[n].data = c->records[n];
            texts[n].len = strlen(c->records[n]);
            n++;
        }
        struct sts_record rec;
        char reason[STS_REASON_MAX] = "";
        enum sts_txt_status got = sts_record_select(texts, n, &rec, reason, sizeof reason);
        if (got != c->want)
            fprintf(stderr, "select case \"%s\" -> %d (%s)\n", c->name, (int)got, reason);
        T_EQ_INT(got, c->want);
        if (c->want == STS_TXT_VALID)
            T_EQ_STR(rec.id, c->want_id);
        else
            T_CHECK(strstr(reason, c->want_reason) != NULL);
    }
}

/* The DNS layer joins a record's character-strings with no separator: the join of
 * "v=STSv1; id=12" and "34" is the record with id 1234, and a split can fall anywhere. */
static void test_joined_strings(void)
{
    const char *parts[] = {"v=STS", "v1; i", "d=12", "34"};
    char joined[64] = "";
    for (size_t i = 0; i < 4; i++)
        strcat(joined, parts[i]);
    struct sts_record rec;
    T_EQ_INT(sts_record_parse(joined, strlen(joined), &rec, NULL, 0), STS_RECORD_VALID);
    T_EQ_STR(rec.id, "1234");

    /* A NUL inside a record is a byte like any other, not its end. */
    static const char nul[] = "v=STSv1; id=abc\0; id=def";
    T_EQ_INT(sts_record_parse(nul, sizeof nul - 1, &rec, NULL, 0), STS_RECORD_INVALID);
    T_CHECK(!sts_record_is_sts(NULL, 0));
}

int main(void)
{
    test_record_table();
    test_select_table();
    test_joined_strings();
    return t_done();
}
