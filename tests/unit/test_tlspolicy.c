/* test_tlspolicy.c - delivery-policy.md §2 as tables: every option against every connection event,
 * the reference names each option accepts (recipient domain, MX name, route host, CN only without
 * SAN and only for options 4-5, one-label wildcards), and the MTA-STS / DANE slots tightening the
 * plan. Certificates are built in memory with the names each case needs. */
#include "tlspolicy.h"
#include "t.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>

/* ---- §2: option x event -> action, status ---- */

struct ev_case {
    enum cfg_tls opt;
    enum tlspol_event ev;
    bool name_reason;
    enum tlspol_action want;
    const char *status; /* "" when not a host failure */
};

#define NOS TLSPOL_EV_NO_STARTTLS
#define REF TLSPOL_EV_STARTTLS_REFUSED
#define HSF TLSPOL_EV_HANDSHAKE_FAILED
#define CF TLSPOL_EV_CERT_FAILED
#define COK TLSPOL_EV_CERT_OK

static const struct ev_case ev_cases[] = {
    /* 1 No: STARTTLS never sent, so only "not offered" can happen */
    {CFG_TLS_NO, NOS, false, TLSPOL_GO_PLAIN, ""},
    /* 2 Preferred */
    {CFG_TLS_PREFERRED, NOS, false, TLSPOL_GO_PLAIN, ""},
    {CFG_TLS_PREFERRED, REF, false, TLSPOL_GO_PLAIN, ""},
    {CFG_TLS_PREFERRED, HSF, false, TLSPOL_RETRY_PLAIN, ""},
    {CFG_TLS_PREFERRED, CF, true, TLSPOL_GO_TLS, ""},
    {CFG_TLS_PREFERRED, COK, false, TLSPOL_GO_TLS, ""},
    /* 3 Required */
    {CFG_TLS_REQUIRED, NOS, false, TLSPOL_HOST_FAILED, "4.7.4"},
    {CFG_TLS_REQUIRED, REF, false, TLSPOL_HOST_FAILED, "4.7.5"},
    {CFG_TLS_REQUIRED, HSF, false, TLSPOL_HOST_FAILED, "4.7.5"},
    {CFG_TLS_REQUIRED, CF, false, TLSPOL_GO_TLS, ""},
    {CFG_TLS_REQUIRED, COK, false, TLSPOL_GO_TLS, ""},
    /* 4 Preferred - Verify */
    {CFG_TLS_PREFERRED_VERIFY, NOS, false, TLSPOL_GO_PLAIN, ""},
    {CFG_TLS_PREFERRED_VERIFY, REF, false, TLSPOL_GO_PLAIN, ""},
    {CFG_TLS_PREFERRED_VERIFY, HSF, false, TLSPOL_RETRY_PLAIN, ""},
    {CFG_TLS_PREFERRED_VERIFY, CF, true, TLSPOL_GO_TLS, ""},
    {CFG_TLS_PREFERRED_VERIFY, CF, false, TLSPOL_GO_TLS, ""},
    {CFG_TLS_PREFERRED_VERIFY, COK, false, TLSPOL_GO_TLS, ""},
    /* 5 Required - Verify */
    {CFG_TLS_REQUIRED_VERIFY, NOS, false, TLSPOL_HOST_FAILED, "4.7.4"},
    {CFG_TLS_REQUIRED_VERIFY, REF, false, TLSPOL_HOST_FAILED, "4.7.5"},
    {CFG_TLS_REQUIRED_VERIFY, HSF, false, TLSPOL_HOST_FAILED, "4.7.5"},
    {CFG_TLS_REQUIRED_VERIFY, CF, true, TLSPOL_HOST_FAILED, "4.7.5"},
    {CFG_TLS_REQUIRED_VERIFY, CF, false, TLSPOL_HOST_FAILED, "4.7.5"},
    {CFG_TLS_REQUIRED_VERIFY, COK, false, TLSPOL_GO_TLS, ""},
    /* 6 Required - Verify Hosted Domains */
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, NOS, false, TLSPOL_HOST_FAILED, "4.7.4"},
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, REF, false, TLSPOL_HOST_FAILED, "4.7.5"},
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, HSF, false, TLSPOL_HOST_FAILED, "4.7.5"},
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, CF, true, TLSPOL_HOST_FAILED, "4.7.5"},
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, COK, false, TLSPOL_GO_TLS, ""},
};

static void test_events(void)
{
    for (size_t i = 0; i < sizeof ev_cases / sizeof ev_cases[0]; i++) {
        const struct ev_case *c = &ev_cases[i];
        struct tlspol_host h;
        tlspol_host_init(&h, c->opt, "example.com", "mx1.example.com", false, false);
        tlspol_plan(&h);
        enum tlspol_action a = tlspol_event(&h, c->ev, c->name_reason, "detail");
        if (a != c->want)
            fprintf(stderr, "case %zu: option %d event %d: %s, want %s\n", i, c->opt, c->ev,
                    tlspol_action_name(a), tlspol_action_name(c->want));
        T_EQ_INT(a, c->want);
        T_EQ_STR(h.status, c->status);
    }
}

/* The plan: what each option sends and checks. */
static void test_plan(void)
{
    static const struct {
        enum cfg_tls opt;
        bool starttls, required, verify, enforce, san_only;
        size_t nnames;
    } rows[] = {
        {CFG_TLS_NO, false, false, false, false, false, 0},
        {CFG_TLS_PREFERRED, true, false, false, false, false, 0},
        {CFG_TLS_REQUIRED, true, true, false, false, false, 0},
        {CFG_TLS_PREFERRED_VERIFY, true, false, true, false, false, 1},
        {CFG_TLS_REQUIRED_VERIFY, true, true, true, true, false, 1},
        {CFG_TLS_REQUIRED_VERIFY_HOSTED, true, true, true, true, true, 2},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct tlspol_host h;
        tlspol_host_init(&h, rows[i].opt, "example.com", "mx1.example.net", false, false);
        tlspol_plan(&h);
        T_EQ_INT(h.starttls, rows[i].starttls);
        T_EQ_INT(h.required, rows[i].required);
        T_EQ_INT(h.verify, rows[i].verify);
        T_EQ_INT(h.enforce, rows[i].enforce);
        T_EQ_INT(h.san_only, rows[i].san_only);
        T_EQ_INT(h.nnames, rows[i].nnames);
        T_EQ_STR(h.sni, "mx1.example.net");
        T_CHECK(!h.skip);
    }
    /* messages of the log lines */
    struct tlspol_host h;
    tlspol_host_init(&h, CFG_TLS_REQUIRED_VERIFY, "domain.com", "mx1.domain.com", false, false);
    tlspol_plan(&h);
    tlspol_event(&h, TLSPOL_EV_CERT_FAILED, true, NULL);
    T_EQ_STR(h.reason, "peer cert does not match domain domain.com");
    tlspol_event(&h, TLSPOL_EV_NO_STARTTLS, false, NULL);
    T_EQ_STR(h.reason, "STARTTLS not offered by mx1.domain.com");
    tlspol_event(&h, TLSPOL_EV_CERT_FAILED, false, "certificate has expired");
    T_EQ_STR(h.reason, "verify error: certificate has expired");

    /* an address literal: no SNI, no reference name from it */
    tlspol_host_init(&h, CFG_TLS_REQUIRED_VERIFY_HOSTED, "example.com", "[192.0.2.1]", true, true);
    tlspol_plan(&h);
    T_EQ_STR(h.sni, "");
    T_EQ_INT(h.nnames, 1);
    T_EQ_STR(h.names[0], "example.com");
    /* a route host is accepted (§5) */
    tlspol_host_init(&h, CFG_TLS_REQUIRED_VERIFY, "example.com", "relay.example.net", false, true);
    tlspol_plan(&h);
    T_EQ_INT(h.nnames, 2);
    T_EQ_STR(h.names[1], "relay.example.net");
}

/* The slots: MTA-STS enforce and DANE tighten the option, routes ignore them. */
static void test_slots(void)
{
    struct tlspol_host h;
    tlspol_host_init(&h, CFG_TLS_PREFERRED, "example.com", "mx1.example.com", false, false);
    h.sts = TLSPOL_STS_ENFORCE;
    tlspol_plan(&h);
    T_CHECK(h.required && h.verify && h.enforce && h.san_only && !h.plain_retry);
    T_EQ_INT(h.nnames, 1);
    T_EQ_STR(h.names[0], "mx1.example.com");
    T_EQ_INT(tlspol_event(&h, TLSPOL_EV_HANDSHAKE_FAILED, false, "x"), TLSPOL_HOST_FAILED);
    T_EQ_INT(tlspol_event(&h, TLSPOL_EV_NO_STARTTLS, false, "x"), TLSPOL_HOST_FAILED);
    T_EQ_STR(h.status, "4.7.5"); /* §3: every failure of a listed host is 4.7.5 */

    tlspol_host_init(&h, CFG_TLS_REQUIRED, "example.com", "mx1.example.com", false, false);
    tlspol_plan(&h);
    T_EQ_INT(tlspol_event(&h, TLSPOL_EV_NO_STARTTLS, false, "x"), TLSPOL_HOST_FAILED);
    T_EQ_STR(h.status, "4.7.4"); /* the option alone: 4.7.4 (§2) */

    tlspol_host_init(&h, CFG_TLS_PREFERRED, "example.com", "mx9.example.com", false, false);
    h.sts = TLSPOL_STS_ENFORCE;
    h.sts_skip = true;
    tlspol_plan(&h);
    T_CHECK(h.skip);

    tlspol_host_init(&h, CFG_TLS_PREFERRED, "example.com", "mx9.example.com", false, false);
    h.sts = TLSPOL_STS_ENFORCE;
    h.sts_skip = true;
    h.dane = TLSPOL_DANE_AUTH;
    tlspol_plan(&h);
    T_CHECK(!h.skip); /* DNSSEC authenticated the host: MTA-STS is not applied */
    T_CHECK(h.required && h.verify && h.enforce);

    tlspol_host_init(&h, CFG_TLS_PREFERRED, "example.com", "mx1.example.com", false, false);
    h.dane = TLSPOL_DANE_NOAUTH;
    tlspol_plan(&h);
    T_CHECK(h.required && !h.verify);

    tlspol_host_init(&h, CFG_TLS_REQUIRED, "example.com", "mx1.example.com", false, false);
    h.dane = TLSPOL_DANE_FAILED;
    tlspol_plan(&h);
    T_CHECK(h.skip);
    T_EQ_STR(h.status, "4.7.5");

    tlspol_host_init(&h, CFG_TLS_PREFERRED, "example.com", "relay.example.com", false, true);
    h.sts = TLSPOL_STS_ENFORCE;
    h.dane = TLSPOL_DANE_FAILED;
    tlspol_plan(&h);
    T_CHECK(!h.skip && !h.required); /* routes: neither applies (§5) */
}

/* ---- names in certificates ---- */

static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *sans)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (sans) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, sans);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(x, key, EVP_sha256());
    return x;
}

struct name_case {
    enum cfg_tls opt;
    const char *cn;
    const char *sans; /* NULL: no SAN extension */
    bool route;
    bool want;
};

static const struct name_case name_cases[] = {
    /* recipient domain in SAN */
    {CFG_TLS_REQUIRED_VERIFY, "x", "DNS:example.com", false, true},
    {CFG_TLS_PREFERRED_VERIFY, "x", "DNS:example.com", false, true},
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, "x", "DNS:example.com", false, true},
    /* only the MX name: option 6 accepts it, 4 and 5 do not */
    {CFG_TLS_REQUIRED_VERIFY, "x", "DNS:mx1.provider.net", false, false},
    {CFG_TLS_PREFERRED_VERIFY, "x", "DNS:mx1.provider.net", false, false},
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, "x", "DNS:mx1.provider.net", false, true},
    /* CN only without SAN, and only for 4 and 5 */
    {CFG_TLS_REQUIRED_VERIFY, "example.com", NULL, false, true},
    {CFG_TLS_PREFERRED_VERIFY, "example.com", NULL, false, true},
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, "example.com", NULL, false, false},
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, "mx1.provider.net", NULL, false, false},
    /* CN ignored when there is a DNS SAN */
    {CFG_TLS_REQUIRED_VERIFY, "example.com", "DNS:other.example.org", false, false},
    /* wildcards: exactly one leftmost label */
    {CFG_TLS_REQUIRED_VERIFY, "x", "DNS:*.com", false, false},
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, "x", "DNS:*.provider.net", false, true},
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, "x", "DNS:*.net", false, false},
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, "x", "DNS:m*.provider.net", false, false},
    {CFG_TLS_REQUIRED_VERIFY_HOSTED, "x", "DNS:*.mx1.provider.net", false, false},
    /* the route host (here mx1.provider.net) is accepted for routes */
    {CFG_TLS_REQUIRED_VERIFY, "x", "DNS:mx1.provider.net", true, true},
    {CFG_TLS_REQUIRED_VERIFY, "x", "DNS:wrong-name.example", true, false},
    /* options without a check pass whatever the certificate says */
    {CFG_TLS_REQUIRED, "x", "DNS:wrong-name.example", false, true},
    {CFG_TLS_PREFERRED, "x", NULL, false, true},
};

static void test_names(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    T_CHECK(key != NULL);
    for (size_t i = 0; i < sizeof name_cases / sizeof name_cases[0]; i++) {
        const struct name_case *c = &name_cases[i];
        X509 *x = make_cert(key, c->cn, c->sans);
        struct tlspol_host h;
        tlspol_host_init(&h, c->opt, "example.com", "mx1.provider.net", false, c->route);
        tlspol_plan(&h);
        bool name_ok;
        char matched[TLSPOL_NAME_MAX];
        bool ok = tlspol_check_cert(&h, x, true, &name_ok, matched);
        if (ok != c->want)
            fprintf(stderr, "name case %zu (%s / %s): %d, want %d\n", i, c->cn,
                    c->sans ? c->sans : "-", ok, c->want);
        T_EQ_INT(ok, c->want);
        /* a chain failure fails every verifying option */
        if (h.verify)
            T_CHECK(!tlspol_check_cert(&h, x, false, NULL, NULL));
        X509_free(x);
    }
    X509 *x = make_cert(key, "cn.example", "DNS:*.mail123.domain.com, DNS:b.example");
    char names[256];
    tlspol_cert_names(x, names, sizeof names);
    T_EQ_STR(names, "subjectAltName:dNSName=*.mail123.domain.com, dNSName=b.example");
    X509_free(x);
    x = make_cert(key, "cn.example", NULL);
    tlspol_cert_names(x, names, sizeof names);
    T_EQ_STR(names, "CN=cn.example");
    X509_free(x);
    EVP_PKEY_free(key);
}

int main(void)
{
    test_events();
    test_plan();
    test_slots();
    test_names();
    return t_done();
}
