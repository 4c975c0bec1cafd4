/* test_dns_parse.c - the DNS answer parser over a table of raw reply packets (hex, written by
 * hand from RFC 1035 so they do not depend on any encoder of ours): each record type, null MX,
 * split and multiple TXT, TLSA, CNAME chains and loops, RRSIG skipped, rcodes, and malformed or
 * truncated packets. Every strict prefix and every one-byte corruption of each packet is parsed
 * too (run under the sanitizers, this is a small deterministic fuzz).
 */
#include "dns_parse.h"
#include "t.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>

/* Names used below:
 *   example.com            07 6578616d706c65 03 636f6d 00
 *   www.example.com        03 777777 + example.com (example.com at offset 16)
 *   _mta-sts.example.com   08 5f6d74612d737473 + example.com
 *   _25._tcp.mx.example.com 03 5f3235 04 5f746370 02 6d78 + example.com
 * Headers: 1234 = id; 8180 = response, RD, RA; 81a0 = the same with AD; low nibble = rcode. */
#define Q_EXAMPLE "07 6578616d706c65 03 636f6d 00"
#define Q_WWW "03 777777 07 6578616d706c65 03 636f6d 00"
#define Q_STS "08 5f6d74612d737473 07 6578616d706c65 03 636f6d 00"
#define Q_TLSA "03 5f3235 04 5f746370 02 6d78 07 6578616d706c65 03 636f6d 00"

struct pcase {
    const char *what;
    const char *hex;
    enum dns_status status;
    size_t nrr;
    int ad;
    const char *canon; /* NULL: not checked */
};

static const struct pcase cases[] = {
    {"A, two records, AD", /* 0 */
     "1234 81a0 0001 0002 0000 0000 " Q_EXAMPLE " 0001 0001"
     " c00c 0001 0001 00000e10 0004 c0000201"
     " c00c 0001 0001 00000e10 0004 c0000202",
     DNS_OK, 2, 1, "example.com"},
    {"AAAA", /* 1 */
     "1234 8180 0001 0001 0000 0000 " Q_EXAMPLE " 001c 0001"
     " c00c 001c 0001 0000012c 0010 20010db8000000000000000000000001",
     DNS_OK, 1, 0, "example.com"},
    {"MX, three records out of order", /* 2 */
     "1234 81a0 0001 0003 0000 0000 " Q_EXAMPLE " 000f 0001"
     " c00c 000f 0001 00000e10 0008 0014 03 6d7832 c00c"
     " c00c 000f 0001 00000e10 0008 000a 03 6d7831 c00c"
     " c00c 000f 0001 00000e10 0008 000a 03 6d7862 c00c",
     DNS_OK, 3, 1, "example.com"},
    {"null MX", /* 3 */
     "1234 8180 0001 0001 0000 0000 " Q_EXAMPLE " 000f 0001"
     " c00c 000f 0001 00000e10 0003 0000 00",
     DNS_OK, 1, 0, "example.com"},
    {"TXT, one record split in two strings", /* 4 */
     "1234 8180 0001 0001 0000 0000 " Q_STS " 0010 0001"
     " c00c 0010 0001 00000e10 0016 09 763d53545376313b20 0b 69643d3230323430313031",
     DNS_OK, 1, 0, "_mta-sts.example.com"},
    {"TXT, two records", /* 5 */
     "1234 8180 0001 0002 0000 0000 " Q_STS " 0010 0001"
     " c00c 0010 0001 00000e10 0016 09 763d53545376313b20 0b 69643d3230323430313031"
     " c00c 0010 0001 00000e10 000c 0b 763d73706631202d616c6c",
     DNS_OK, 2, 0, "_mta-sts.example.com"},
    {"TLSA 3 1 1 and 2 0 1, with an RRSIG", /* 6 */
     "1234 81a0 0001 0003 0000 0000 " Q_TLSA " 0034 0001"
     " c00c 0034 0001 00000e10 0023 03 01 01"
     " 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
     " c00c 002e 0001 00000e10 0008 0034 0801 00000e10"
     " c00c 0034 0001 00000e10 0007 02 00 01 deadbeef",
     DNS_OK, 2, 1, "_25._tcp.mx.example.com"},
    {"CNAME chain www -> alt -> last", /* 7 */
     "1234 81a0 0001 0003 0000 0000 " Q_WWW " 0001 0001"
     " c00c 0005 0001 0000003c 0006 03 616c74 c010"
     " c02d 0005 0001 00000e10 0007 04 6c617374 c010"
     " c03f 0001 0001 0000001e 0004 c0000263",
     DNS_OK, 1, 1, "last.example.com"},
    {"CNAME loop", /* 8 */
     "1234 8180 0001 0002 0000 0000 " Q_WWW " 0001 0001"
     " c00c 0005 0001 0000003c 0006 03 616c74 c010"
     " c02d 0005 0001 00000e10 0002 c00c",
     DNS_EMALFORMED, 0, 0, NULL},
    {"query for the CNAME itself", /* 9 */
     "1234 8180 0001 0001 0000 0000 " Q_WWW " 0005 0001"
     " c00c 0005 0001 0000003c 0006 03 616c74 c010",
     DNS_OK, 1, 0, "www.example.com"},
    {"CNAME to a name with no A: NODATA at the target", /* 10 */
     "1234 8180 0001 0001 0000 0000 " Q_WWW " 0001 0001"
     " c00c 0005 0001 0000003c 0006 03 616c74 c010",
     DNS_NODATA, 0, 0, "alt.example.com"},
    {"NXDOMAIN with AD (secure denial)", /* 11 */
     "1234 81a3 0001 0000 0000 0000 " Q_EXAMPLE " 0001 0001", DNS_NXDOMAIN, 0, 1, "example.com"},
    {"NODATA", /* 12 */
     "1234 8180 0001 0000 0000 0000 " Q_EXAMPLE " 0034 0001", DNS_NODATA, 0, 0, "example.com"},
    {"SERVFAIL", /* 13 */
     "1234 8182 0001 0000 0000 0000 " Q_EXAMPLE " 0001 0001", DNS_SERVFAIL, 0, 0, NULL},
    {"REFUSED", /* 14 */
     "1234 8185 0001 0000 0000 0000 " Q_EXAMPLE " 0001 0001", DNS_ERROR, 0, 0, NULL},
    {"owner in other case, plus an A of an unrelated owner", /* 15 */
     "1234 8180 0001 0002 0000 0000 " Q_EXAMPLE " 0001 0001"
     " 07 4558414d504c45 03 434f4d 00 0001 0001 00000e10 0004 c0000207"
     " 03 6f7468 c00c 0001 0001 00000e10 0004 c0000208",
     DNS_OK, 1, 0, "example.com"},
    {"TXT with an empty string and a NUL byte", /* 16 */
     "1234 8180 0001 0001 0000 0000 " Q_STS " 0010 0001"
     " c00c 0010 0001 00000e10 0006 00 04 61006263",
     DNS_OK, 1, 0, NULL},
    /* malformed */
    {"shorter than a header", "1234 8180 0001", DNS_EMALFORMED, 0, 0, NULL},
    {"no question", "1234 8180 0000 0000 0000 0000", DNS_EMALFORMED, 0, 0, NULL},
    {"a query, not a response", "1234 0100 0001 0000 0000 0000 " Q_EXAMPLE " 0001 0001",
     DNS_EMALFORMED, 0, 0, NULL},
    {"question truncated", "1234 8180 0001 0000 0000 0000 " Q_EXAMPLE " 00", DNS_EMALFORMED, 0, 0,
     NULL},
    {"answer count larger than the answers",
     "1234 8180 0001 0002 0000 0000 " Q_EXAMPLE " 0001 0001"
     " c00c 0001 0001 00000e10 0004 c0000201",
     DNS_EMALFORMED, 0, 0, NULL},
    {"answer count far beyond the packet", "1234 8180 0001 ffff 0000 0000 " Q_EXAMPLE " 0001 0001",
     DNS_EMALFORMED, 0, 0, NULL},
    {"rdlength overruns the packet",
     "1234 8180 0001 0001 0000 0000 " Q_EXAMPLE " 0001 0001"
     " c00c 0001 0001 00000e10 0010 c0000201",
     DNS_EMALFORMED, 0, 0, NULL},
    {"A with 5 bytes",
     "1234 8180 0001 0001 0000 0000 " Q_EXAMPLE " 0001 0001"
     " c00c 0001 0001 00000e10 0005 c000020100",
     DNS_EMALFORMED, 0, 0, NULL},
    {"TLSA shorter than 3 bytes",
     "1234 8180 0001 0001 0000 0000 " Q_TLSA " 0034 0001"
     " c00c 0034 0001 00000e10 0002 0301",
     DNS_EMALFORMED, 0, 0, NULL},
    {"TXT string overruns its record",
     "1234 8180 0001 0001 0000 0000 " Q_STS " 0010 0001"
     " c00c 0010 0001 00000e10 0004 05 616263",
     DNS_EMALFORMED, 0, 0, NULL},
    {"MX name shorter than its rdata",
     "1234 8180 0001 0001 0000 0000 " Q_EXAMPLE " 000f 0001"
     " c00c 000f 0001 00000e10 0009 000a 03 6d7831 c00c 00",
     DNS_EMALFORMED, 0, 0, NULL},
    {"owner name pointer loop",
     "1234 8180 0001 0001 0000 0000 " Q_EXAMPLE " 0001 0001"
     " c01d 0001 0001 00000e10 0004 c0000201",
     DNS_EMALFORMED, 0, 0, NULL},
    {"owner name pointer beyond the packet",
     "1234 8180 0001 0001 0000 0000 " Q_EXAMPLE " 0001 0001"
     " c0ff 0001 0001 00000e10 0004 c0000201",
     DNS_EMALFORMED, 0, 0, NULL},
    {"second TLSA malformed: no partial records",
     "1234 8180 0001 0002 0000 0000 " Q_TLSA " 0034 0001"
     " c00c 0034 0001 00000e10 0004 03010100"
     " c00c 0034 0001 00000e10 0001 03",
     DNS_EMALFORMED, 0, 0, NULL},
};

static size_t unhex(const char *s, unsigned char *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *s; s++) {
        if (isspace((unsigned char)*s))
            continue;
        int v = isdigit((unsigned char)*s) ? *s - '0' : tolower((unsigned char)*s) - 'a' + 10;
        if (hi < 0) {
            hi = v;
        } else if (n < cap) {
            out[n++] = (unsigned char)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0)
        fprintf(stderr, "odd hex digit count in a test packet\n");
    return n;
}

static void parse_case(int i, struct dns_answer *a, unsigned char *buf, size_t *len)
{
    *len = unhex(cases[i].hex, buf, 4096);
    dns_parse_answer(buf, *len, a);
}

static void test_table(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char buf[4096];
        size_t len;
        struct dns_answer a;
        parse_case((int)i, &a, buf, &len);
        if (a.status != cases[i].status || a.nrr != cases[i].nrr)
            fprintf(stderr, "case %zu (%s): status %s nrr %zu (%s)\n", i, cases[i].what,
                    dns_status_name(a.status), a.nrr, a.detail);
        T_EQ_INT(a.status, cases[i].status);
        T_EQ_INT(a.nrr, cases[i].nrr);
        T_EQ_INT(a.ad, cases[i].ad);
        T_CHECK(!a.secure); /* only dns.c may say secure */
        if (cases[i].canon)
            T_EQ_STR(a.canon, cases[i].canon);
        if (a.status == DNS_EMALFORMED)
            T_CHECK(a.detail[0] != '\0');
        dns_answer_clear(&a);
        T_CHECK(a.rr == NULL && a.qname == NULL && a.nrr == 0);
    }
}

static void test_contents(void)
{
    unsigned char buf[4096];
    size_t len;
    struct dns_answer a;
    char s[64];

    parse_case(0, &a, buf, &len);
    T_EQ_STR(a.qname, "example.com");
    T_EQ_INT(a.type, DNS_T_A);
    T_EQ_STR(inet_ntop(AF_INET, &a.rr[0].a, s, sizeof(s)), "192.0.2.1");
    T_EQ_STR(inet_ntop(AF_INET, &a.rr[1].a, s, sizeof(s)), "192.0.2.2");
    T_EQ_INT(a.ttl, 3600);
    T_EQ_INT(a.rcode, 0);
    T_CHECK(!a.tc);
    dns_answer_clear(&a);

    parse_case(1, &a, buf, &len);
    T_EQ_STR(inet_ntop(AF_INET6, &a.rr[0].aaaa, s, sizeof(s)), "2001:db8::1");
    T_EQ_INT(a.ttl, 300);
    dns_answer_clear(&a);

    parse_case(2, &a, buf, &len);
    T_EQ_INT(a.rr[0].mx.pref, 10);
    T_EQ_STR(a.rr[0].mx.host, "mx1.example.com");
    T_EQ_INT(a.rr[1].mx.pref, 10);
    T_EQ_STR(a.rr[1].mx.host, "mxb.example.com"); /* equal preference: server order kept */
    T_EQ_INT(a.rr[2].mx.pref, 20);
    T_EQ_STR(a.rr[2].mx.host, "mx2.example.com");
    T_CHECK(!a.null_mx);
    dns_answer_clear(&a);

    parse_case(3, &a, buf, &len);
    T_CHECK(a.null_mx);
    T_EQ_INT(a.rr[0].mx.pref, 0);
    T_EQ_STR(a.rr[0].mx.host, "");
    dns_answer_clear(&a);

    parse_case(4, &a, buf, &len);
    T_EQ_STR((char *)a.rr[0].txt.data, "v=STSv1; id=20240101");
    T_EQ_INT(a.rr[0].txt.len, 20);
    dns_answer_clear(&a);

    parse_case(5, &a, buf, &len);
    T_EQ_STR((char *)a.rr[0].txt.data, "v=STSv1; id=20240101");
    T_EQ_STR((char *)a.rr[1].txt.data, "v=spf1 -all");
    dns_answer_clear(&a);

    parse_case(6, &a, buf, &len);
    T_EQ_INT(a.rr[0].tlsa.usage, 3);
    T_EQ_INT(a.rr[0].tlsa.selector, 1);
    T_EQ_INT(a.rr[0].tlsa.mtype, 1);
    T_EQ_INT(a.rr[0].tlsa.len, 32);
    T_EQ_INT(a.rr[0].tlsa.data[0], 0x01);
    T_EQ_INT(a.rr[0].tlsa.data[31], 0x20);
    T_EQ_INT(a.rr[1].tlsa.usage, 2);
    T_EQ_INT(a.rr[1].tlsa.selector, 0);
    T_EQ_INT(a.rr[1].tlsa.mtype, 1);
    T_EQ_INT(a.rr[1].tlsa.len, 4);
    T_EQ_INT(a.rr[1].tlsa.data[3], 0xef);
    dns_answer_clear(&a);

    parse_case(7, &a, buf, &len);
    T_EQ_STR(a.qname, "www.example.com");
    T_EQ_INT(a.ncname, 2);
    T_EQ_STR(inet_ntop(AF_INET, &a.rr[0].a, s, sizeof(s)), "192.0.2.99");
    T_EQ_INT(a.ttl, 30); /* the smallest along the chain */
    dns_answer_clear(&a);

    parse_case(9, &a, buf, &len);
    T_EQ_STR(a.rr[0].cname, "alt.example.com");
    T_EQ_INT(a.ncname, 0);
    dns_answer_clear(&a);

    parse_case(15, &a, buf, &len);
    T_EQ_STR(inet_ntop(AF_INET, &a.rr[0].a, s, sizeof(s)), "192.0.2.7");
    dns_answer_clear(&a);

    parse_case(16, &a, buf, &len);
    T_EQ_INT(a.rr[0].txt.len, 4);
    T_CHECK(memcmp(a.rr[0].txt.data, "a\0bc", 4) == 0);
    dns_answer_clear(&a);

    parse_case(14, &a, buf, &len);
    T_EQ_INT(a.rcode, 5);
    dns_answer_clear(&a);
}

/* Every strict prefix of a well-formed reply is malformed; every single-byte corruption parses
 * to something without a crash or a leak (the sanitizers watch). */
static void test_prefixes_and_corruptions(void)
{
    int prefix_bad = 0, ok_empty = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char buf[4096];
        size_t len = unhex(cases[i].hex, buf, sizeof(buf));
        struct dns_answer a;
        for (size_t n = 0; n < len; n++) {
            unsigned char *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
            memcpy(copy, buf, n);
            if (dns_parse_answer(copy, n, &a) != DNS_EMALFORMED &&
                cases[i].status != DNS_EMALFORMED)
                prefix_bad++;
            dns_answer_clear(&a);
            free(copy);
        }
        for (size_t pos = 0; pos < len; pos++) {
            static const unsigned char vals[] = {0x00, 0x01, 0x3f, 0x40, 0x7f, 0xc0, 0xff};
            for (size_t v = 0; v < sizeof(vals); v++) {
                unsigned char *copy = malloc(len);
                memcpy(copy, buf, len);
                copy[pos] = vals[v];
                dns_parse_answer(copy, len, &a);
                if (a.status == DNS_OK && a.nrr == 0)
                    ok_empty++;
                dns_answer_clear(&a);
                free(copy);
            }
        }
    }
    T_EQ_INT(prefix_bad, 0);
    T_EQ_INT(ok_empty, 0);
}

static void test_format(void)
{
    unsigned char buf[4096];
    size_t len;
    struct dns_answer a;
    char out[256];

    parse_case(0, &a, buf, &len);
    T_EQ_INT(dns_rr_format(&a.rr[0], out, sizeof(out)), 9);
    T_EQ_STR(out, "192.0.2.1");
    char small[5];
    T_EQ_INT(dns_rr_format(&a.rr[0], small, sizeof(small)), 9); /* the length it needs */
    T_EQ_STR(small, "192.");
    dns_answer_clear(&a);

    parse_case(1, &a, buf, &len);
    dns_rr_format(&a.rr[0], out, sizeof(out));
    T_EQ_STR(out, "2001:db8::1");
    dns_answer_clear(&a);

    parse_case(2, &a, buf, &len);
    dns_rr_format(&a.rr[0], out, sizeof(out));
    T_EQ_STR(out, "10 mx1.example.com.");
    dns_answer_clear(&a);

    parse_case(3, &a, buf, &len);
    dns_rr_format(&a.rr[0], out, sizeof(out));
    T_EQ_STR(out, "0 .");
    dns_answer_clear(&a);

    parse_case(4, &a, buf, &len);
    dns_rr_format(&a.rr[0], out, sizeof(out));
    T_EQ_STR(out, "\"v=STSv1; id=20240101\"");
    dns_answer_clear(&a);

    parse_case(16, &a, buf, &len);
    dns_rr_format(&a.rr[0], out, sizeof(out));
    T_EQ_STR(out, "\"a\\000bc\"");
    dns_answer_clear(&a);

    parse_case(6, &a, buf, &len);
    dns_rr_format(&a.rr[1], out, sizeof(out));
    T_EQ_STR(out, "2 0 1 deadbeef");
    dns_answer_clear(&a);

    parse_case(9, &a, buf, &len);
    dns_rr_format(&a.rr[0], out, sizeof(out));
    T_EQ_STR(out, "alt.example.com.");
    dns_answer_clear(&a);
}

static void test_names(void)
{
    T_EQ_STR(dns_status_name(DNS_NXDOMAIN), "NXDOMAIN");
    T_EQ_STR(dns_status_name(DNS_EMALFORMED), "MALFORMED");
    T_EQ_STR(dns_type_name(DNS_T_TLSA), "TLSA");
    T_CHECK(dns_type_name(2) == NULL);
    T_EQ_INT(dns_type_from_name("mx"), DNS_T_MX);
    T_EQ_INT(dns_type_from_name("AAAA"), DNS_T_AAAA);
    T_EQ_INT(dns_type_from_name("NS"), 0);
    T_CHECK(dns_status_temporary(DNS_SERVFAIL));
    T_CHECK(dns_status_temporary(DNS_TIMEOUT));
    T_CHECK(dns_status_temporary(DNS_EMALFORMED));
    T_CHECK(!dns_status_temporary(DNS_NODATA));
    T_CHECK(!dns_status_temporary(DNS_NXDOMAIN));
    T_CHECK(!dns_status_temporary(DNS_OK));

    struct dns_answer a, b;
    memset(&b, 0, sizeof(b));
    unsigned char buf[4096];
    size_t len;
    parse_case(0, &a, buf, &len);
    dns_answer_move(&b, &a);
    T_EQ_INT(b.nrr, 2);
    T_CHECK(a.rr == NULL && a.nrr == 0);
    dns_answer_clear(&b);
}

int main(void)
{
    test_table();
    test_contents();
    test_prefixes_and_corruptions();
    test_format();
    test_names();
    return t_done();
}
