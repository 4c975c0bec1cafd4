/* test_dane.c - the DANE decision of delivery-policy.md §4, one row per case: mode, DNSSEC status
 * of the MX and address records, the TLSA answer, and the expected state and usable count. */
#include <string.h>

#include "dane.h"
#include "t.h"

static unsigned char d32[32], d64[64], d3[3];

#define R(u, s, m, d)                                                                              \
    {                                                                                              \
        .type = DNS_T_TLSA, .tlsa = {(u), (s), (m), (d), sizeof(d) }                               \
    }

static struct dns_rr ee311[] = {R(3, 1, 1, d32)};
static struct dns_rr ta211[] = {R(2, 1, 1, d32)};
static struct dns_rr unusable[] = {R(0, 1, 1, d32), R(1, 1, 1, d32)};
static struct dns_rr mixed[] = {R(1, 1, 1, d32), R(3, 1, 2, d64), R(3, 0, 0, d3),
                                R(3, 2, 1, d32), R(3, 1, 3, d32), R(3, 1, 1, d3)};

struct dane_case {
    const char *name;
    enum cfg_dane mode;
    bool mx_secure, addr_secure;
    bool looked_up; /* a TLSA answer exists */
    enum dns_status st;
    bool secure;
    struct dns_rr *rr;
    size_t nrr;
    bool want_lookup;
    enum tlspol_dane want;
    size_t want_usable;
    const char *reason;
};

static const struct dane_case cases[] = {
    {"opp: 3 1 1", CFG_DANE_OPPORTUNISTIC, true, true, true, DNS_OK, true, ee311, 1, true,
     TLSPOL_DANE_AUTH, 1, "1 usable TLSA record for mx.example.com"},
    {"mand: 3 1 1", CFG_DANE_MANDATORY, true, true, true, DNS_OK, true, ee311, 1, true,
     TLSPOL_DANE_AUTH, 1, NULL},
    {"opp: 2 1 1", CFG_DANE_OPPORTUNISTIC, true, true, true, DNS_OK, true, ta211, 1, true,
     TLSPOL_DANE_AUTH, 1, NULL},
    {"opp: insecure MX, secure addresses: still DANE", CFG_DANE_OPPORTUNISTIC, false, true, true,
     DNS_OK, true, ee311, 1, true, TLSPOL_DANE_AUTH, 1, NULL},
    {"mand: insecure MX", CFG_DANE_MANDATORY, false, true, false, DNS_OK, false, NULL, 0, false,
     TLSPOL_DANE_FAILED, 0, "the MX records of example.com are not DNSSEC-signed"},
    {"mand: insecure addresses", CFG_DANE_MANDATORY, true, false, false, DNS_OK, false, NULL, 0,
     false, TLSPOL_DANE_FAILED, 0, "the address records of mx.example.com are not DNSSEC-signed"},
    {"opp: insecure addresses", CFG_DANE_OPPORTUNISTIC, true, false, false, DNS_OK, false, NULL, 0,
     false, TLSPOL_DANE_NONE, 0, "no secure TLSA for mx.example.com, DANE not applied"},
    {"opp: only unusable", CFG_DANE_OPPORTUNISTIC, true, true, true, DNS_OK, true, unusable, 2,
     true, TLSPOL_DANE_NOAUTH, 0, NULL},
    {"mand: only unusable", CFG_DANE_MANDATORY, true, true, true, DNS_OK, true, unusable, 2, true,
     TLSPOL_DANE_FAILED, 0, "only unusable TLSA records for mx.example.com"},
    {"opp: mixed, two usable", CFG_DANE_OPPORTUNISTIC, true, true, true, DNS_OK, true, mixed, 6,
     true, TLSPOL_DANE_AUTH, 2, NULL},
    {"opp: TLSA in an unsigned zone", CFG_DANE_OPPORTUNISTIC, true, true, true, DNS_OK, false,
     ee311, 1, true, TLSPOL_DANE_NONE, 0, NULL},
    {"mand: TLSA in an unsigned zone", CFG_DANE_MANDATORY, true, true, true, DNS_OK, false, ee311,
     1, true, TLSPOL_DANE_FAILED, 0, "no secure TLSA for mx.example.com"},
    {"opp: secure denial", CFG_DANE_OPPORTUNISTIC, true, true, true, DNS_NODATA, true, NULL, 0,
     true, TLSPOL_DANE_NONE, 0, NULL},
    {"opp: secure NXDOMAIN", CFG_DANE_OPPORTUNISTIC, true, true, true, DNS_NXDOMAIN, true, NULL, 0,
     true, TLSPOL_DANE_NONE, 0, NULL},
    {"mand: secure denial", CFG_DANE_MANDATORY, true, true, true, DNS_NODATA, true, NULL, 0, true,
     TLSPOL_DANE_FAILED, 0, NULL},
    {"opp: SERVFAIL", CFG_DANE_OPPORTUNISTIC, true, true, true, DNS_SERVFAIL, false, NULL, 0, true,
     TLSPOL_DANE_FAILED, 0, "TLSA lookup for mx.example.com failed: SERVFAIL"},
    {"mand: timeout", CFG_DANE_MANDATORY, true, true, true, DNS_TIMEOUT, false, NULL, 0, true,
     TLSPOL_DANE_FAILED, 0, NULL},
    {"opp: malformed", CFG_DANE_OPPORTUNISTIC, true, true, true, DNS_EMALFORMED, false, NULL, 0,
     true, TLSPOL_DANE_FAILED, 0, NULL},
    {"no DANE", CFG_DANE_NO, true, true, true, DNS_OK, true, ee311, 1, false, TLSPOL_DANE_NONE, 0,
     ""},
};

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct dane_case *c = &cases[i];
        struct dns_answer a;
        memset(&a, 0, sizeof a);
        a.status = c->st;
        a.secure = c->secure;
        a.rr = c->rr;
        a.nrr = c->nrr;
        struct dane_facts f = {.mode = c->mode,
                               .mx_secure = c->mx_secure,
                               .addr_secure = c->addr_secure,
                               .tlsa = c->looked_up ? &a : NULL};
        struct tlspol_host h;
        tlspol_host_init(&h, CFG_TLS_PREFERRED, "example.com", "mx.example.com", false, false);
        char reason[256];
        T_EQ_INT(dane_wants_tlsa(c->mode, c->mx_secure, c->addr_secure), c->want_lookup);
        dane_decide(&f, &h, reason, sizeof reason);
        if (h.dane != c->want)
            fprintf(stderr, "case \"%s\": dane %d, want %d (%s)\n", c->name, h.dane, c->want,
                    reason);
        T_EQ_INT(h.dane, c->want);
        T_EQ_INT(h.ntlsa, c->want_usable);
        if (c->reason)
            T_EQ_STR(reason, c->reason);
        if (c->want == TLSPOL_DANE_AUTH)
            T_EQ_STR(h.dane_base, "mx.example.com");
    }
}

static void test_usable(void)
{
    T_CHECK(dane_tlsa_usable(3, 1, 1, 32));
    T_CHECK(dane_tlsa_usable(2, 0, 2, 64));
    T_CHECK(dane_tlsa_usable(3, 0, 0, 700));
    T_CHECK(!dane_tlsa_usable(0, 1, 1, 32));
    T_CHECK(!dane_tlsa_usable(1, 1, 1, 32));
    T_CHECK(!dane_tlsa_usable(4, 1, 1, 32));
    T_CHECK(!dane_tlsa_usable(3, 2, 1, 32));
    T_CHECK(!dane_tlsa_usable(3, 1, 3, 32));
    T_CHECK(!dane_tlsa_usable(3, 1, 1, 31));
    T_CHECK(!dane_tlsa_usable(3, 1, 2, 32));
    T_CHECK(!dane_tlsa_usable(3, 0, 0, 0));
}

static void test_plan(void)
{
    /* A DANE-authenticated host requires TLS whatever the option, and MTA-STS does not apply. */
    struct dns_answer a;
    memset(&a, 0, sizeof a);
    a.status = DNS_OK;
    a.secure = true;
    a.rr = ee311;
    a.nrr = 1;
    struct dane_facts f = {
        .mode = CFG_DANE_OPPORTUNISTIC, .mx_secure = true, .addr_secure = true, .tlsa = &a};
    struct tlspol_host h;
    tlspol_host_init(&h, CFG_TLS_PREFERRED, "example.com", "mx.example.com", false, false);
    h.sts = TLSPOL_STS_ENFORCE;
    h.sts_skip = true;
    char reason[256];
    dane_decide(&f, &h, reason, sizeof reason);
    tlspol_plan(&h);
    T_CHECK(!h.skip);
    T_CHECK(h.required);
    T_CHECK(!h.plain_retry);
}

/* RFC 7672 §2.2.2: a host reached through a secure CNAME chain is looked up at the expanded name
 * first; the first secure RRset (or a failed lookup) decides, and its owner is the base domain. */
static void test_cname(void)
{
    const char *b[2];
    T_EQ_INT(dane_bases("mx.example.com", NULL, true, b), 1);
    T_EQ_STR(b[0], "mx.example.com");
    T_EQ_INT(dane_bases("mx.example.com", "real.example.net", true, b), 2);
    T_EQ_STR(b[0], "real.example.net");
    T_EQ_STR(b[1], "mx.example.com");
    T_EQ_INT(dane_bases("mx.example.com", "real.example.net", false, b), 1); /* insecure chain */
    T_EQ_STR(b[0], "mx.example.com");
    T_EQ_INT(dane_bases("mx.example.com", "MX.Example.com", true, b), 1);

    struct dns_answer a;
    memset(&a, 0, sizeof a);
    a.status = DNS_OK, a.secure = true, a.rr = ee311, a.nrr = 1;
    T_CHECK(dane_tlsa_settles(&a));
    a.rr = unusable, a.nrr = 2; /* a secure RRset settles even when nothing in it is usable */
    T_CHECK(dane_tlsa_settles(&a));
    a.secure = false;
    T_CHECK(!dane_tlsa_settles(&a));
    a.status = DNS_NODATA, a.secure = true, a.rr = NULL, a.nrr = 0;
    T_CHECK(!dane_tlsa_settles(&a));
    a.status = DNS_NXDOMAIN;
    T_CHECK(!dane_tlsa_settles(&a));
    a.status = DNS_SERVFAIL, a.secure = false;
    T_CHECK(dane_tlsa_settles(&a));
    a.status = DNS_TIMEOUT;
    T_CHECK(dane_tlsa_settles(&a));

    /* records at the expanded name: it is the base domain, the SNI, and a reference name */
    a.status = DNS_OK, a.secure = true, a.rr = ta211, a.nrr = 1;
    struct dane_facts f = {.mode = CFG_DANE_MANDATORY,
                           .mx_secure = true,
                           .addr_secure = true,
                           .tlsa = &a,
                           .base = "real.example.net"};
    struct tlspol_host h;
    tlspol_host_init(&h, CFG_TLS_PREFERRED, "example.com", "mx.example.com", false, false);
    char reason[256];
    dane_decide(&f, &h, reason, sizeof reason);
    T_EQ_INT(h.dane, TLSPOL_DANE_AUTH);
    T_EQ_STR(h.dane_base, "real.example.net");
    T_EQ_STR(reason, "1 usable TLSA record for mx.example.com at real.example.net");
    tlspol_plan(&h);
    T_EQ_STR(h.sni, "real.example.net");

    /* a failed lookup at the expanded name fails the host, named with both names */
    a.status = DNS_SERVFAIL, a.secure = false, a.rr = NULL, a.nrr = 0;
    tlspol_host_init(&h, CFG_TLS_PREFERRED, "example.com", "mx.example.com", false, false);
    dane_decide(&f, &h, reason, sizeof reason);
    T_EQ_INT(h.dane, TLSPOL_DANE_FAILED);
    T_EQ_STR(reason, "TLSA lookup for mx.example.com at real.example.net failed: SERVFAIL");
}

int main(void)
{
    test_cases();
    test_cname();
    test_usable();
    test_plan();
    return t_done();
}
