/* tlscert.c - certificate and key handling over OpenSSL: parsing what the administrator pastes
 * or imports (PEM, PKCS#12), checking keys against certificates, describing certificates for the
 * shell, and the text form of the certconfig units (tlscert.h lists the keys).
 *
 * OpenSSL reports failures on its thread's error queue; every entry point leaves that queue empty
 * so a later, unrelated caller never reads a stale error. */
#include "tlscert.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv.h"
#include "strbuf.h"

static char *bio_text(BIO *bio)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    return n > 0 ? xstrndup(data, (size_t)n) : NULL;
}

static bool add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return false;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1;
}

bool cert_make_selfsigned(const char *cn, int days, char **cert_pem, char **key_pem)
{
    bool ok = false;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    BIGNUM *bn = BN_new();
    *cert_pem = *key_pem = NULL;
    if (!key || !x || !cb || !kb || !bn)
        goto out;
    /* A random positive 127-bit serial, as RFC 5280 asks for unpredictable serials. */
    if (!BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto out;
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400L);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key);
    if (!add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth") ||
        !add_ext(x, NID_subject_key_identifier, "hash"))
        goto out;
    if (!X509_sign(x, key, EVP_sha256()))
        goto out;
    if (!PEM_write_bio_X509(cb, x) || !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL))
        goto out;
    *cert_pem = bio_text(cb);
    *key_pem = bio_text(kb);
    ok = *cert_pem && *key_pem;
out:
    BN_free(bn);
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return ok;
}

/* ---- reading PEM ---- */

/* Clean end of a PEM walk: the only error left is "no start line" (no further block). */
static bool pem_clean_end(void)
{
    unsigned long e = ERR_peek_last_error();
    return e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
}

static char *cert_to_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (b && PEM_write_bio_X509(b, x))
        pem = bio_text(b);
    BIO_free(b);
    return pem;
}

static char *key_to_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
        pem = bio_text(b);
    BIO_free(b);
    return pem;
}

static void list_add(struct cert_list *l, char *pem)
{
    l->pem = xrealloc(l->pem, (l->n + 1) * sizeof *l->pem);
    l->pem[l->n++] = pem;
}

/* Every certificate of text as X509 objects, in order; NULL when none or one is broken. */
static STACK_OF(X509) * read_certs(const char *text, size_t len)
{
    if (len > INT32_MAX)
        return NULL;
    BIO *b = BIO_new_mem_buf(text, (int)len);
    STACK_OF(X509) *sk = sk_X509_new_null();
    if (!b || !sk)
        goto fail;
    ERR_clear_error();
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            goto fail;
        }
    }
    if (!pem_clean_end() || sk_X509_num(sk) == 0)
        goto fail;
    ERR_clear_error();
    BIO_free(b);
    return sk;
fail:
    ERR_clear_error();
    BIO_free(b);
    sk_X509_pop_free(sk, X509_free);
    return NULL;
}

static X509 *first_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    return x;
}

enum cert_err cert_split(const char *text, size_t len, struct cert_list *out)
{
    out->pem = NULL;
    out->n = 0;
    STACK_OF(X509) *sk = read_certs(text, len);
    if (!sk)
        return CERT_ERR_CERT;
    for (int i = 0; i < sk_X509_num(sk); i++) {
        char *pem = cert_to_pem(sk_X509_value(sk, i));
        if (!pem) {
            cert_list_free(out);
            sk_X509_pop_free(sk, X509_free);
            ERR_clear_error();
            return CERT_ERR_CERT;
        }
        list_add(out, pem);
    }
    sk_X509_pop_free(sk, X509_free);
    return CERT_OK;
}

void cert_list_free(struct cert_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->pem[i]);
    free(l->pem);
    l->pem = NULL;
    l->n = 0;
}

char *cert_list_join(const struct cert_list *l)
{
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; i < l->n; i++)
        sb_append(&sb, l->pem[i]);
    return sb.buf ? sb_steal(&sb) : xstrdup("");
}

struct pass_ctx {
    const char *pass;
    bool asked; /* OpenSSL wanted a passphrase: the key is encrypted */
};

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    struct pass_ctx *pc = u;
    (void)rwflag;
    pc->asked = true;
    if (!pc->pass || !pc->pass[0])
        return -1;
    size_t n = strlen(pc->pass);
    if (n > (size_t)size)
        return -1;
    memcpy(buf, pc->pass, n);
    return (int)n;
}

/* The private key of text (skipping certificate blocks). *encrypted tells a refusal for want of
 * the right passphrase from a broken or missing key. */
static EVP_PKEY *read_key(const char *text, size_t len, const char *pass, bool *encrypted)
{
    *encrypted = false;
    if (len > INT32_MAX)
        return NULL;
    BIO *b = BIO_new_mem_buf(text, (int)len);
    if (!b)
        return NULL;
    struct pass_ctx pc = {pass, false};
    ERR_clear_error();
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, pass_cb, &pc);
    ERR_clear_error();
    BIO_free(b);
    *encrypted = pc.asked;
    return k;
}

enum cert_err cert_parse_key(const char *text, size_t len, char **pem)
{
    bool encrypted;
    *pem = NULL;
    EVP_PKEY *k = read_key(text, len, NULL, &encrypted);
    if (!k)
        return CERT_ERR_KEY;
    *pem = key_to_pem(k);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return *pem ? CERT_OK : CERT_ERR_KEY;
}

static bool key_of(X509 *x, EVP_PKEY *k)
{
    bool ok = X509_check_private_key(x, k) == 1;
    ERR_clear_error();
    return ok;
}

bool cert_key_matches(const char *cert_pem, const char *key_pem)
{
    bool encrypted;
    X509 *x = first_cert(cert_pem);
    EVP_PKEY *k = read_key(key_pem, strlen(key_pem), NULL, &encrypted);
    bool ok = x && k && key_of(x, k);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

void cert_pair_free(struct cert_pair *p)
{
    free(p->cert);
    if (p->key) {
        OPENSSL_cleanse(p->key, strlen(p->key));
        free(p->key);
    }
    free(p->chain);
    p->cert = p->key = p->chain = NULL;
}

/* Fills out from a leaf, its key and the other certificates (which may hold the leaf again, as
 * some PKCS#12 and PEM files do: it is left out of the chain). */
static enum cert_err make_pair(X509 *leaf, EVP_PKEY *k, STACK_OF(X509) * others,
                               struct cert_pair *out)
{
    struct strbuf chain = STRBUF_INIT;
    out->cert = cert_to_pem(leaf);
    out->key = key_to_pem(k);
    for (int i = 0; others && i < sk_X509_num(others); i++) {
        X509 *c = sk_X509_value(others, i);
        if (X509_cmp(c, leaf) == 0)
            continue;
        char *pem = cert_to_pem(c);
        if (pem)
            sb_append(&chain, pem);
        free(pem);
    }
    out->chain = chain.buf ? sb_steal(&chain) : xstrdup("");
    ERR_clear_error();
    if (!out->cert || !out->key) {
        cert_pair_free(out);
        return CERT_ERR_CERT;
    }
    return CERT_OK;
}

/* ---- IMPORT files ---- */

/* Files from older tools encrypt with RC2 or 3DES, which OpenSSL 3 keeps in its legacy provider.
 * It is loaded on first need, next to the default one, and stays for the process. */
/* Held for the process; kept in a variable so leak checkers see it reachable. */
static OSSL_PROVIDER *legacy_provider;

static void load_legacy_provider(void)
{
    static bool tried;
    if (!tried) {
        tried = true;
        legacy_provider = OSSL_PROVIDER_try_load(NULL, "legacy", 1);
        ERR_clear_error();
    }
}

static enum cert_err import_p12(PKCS12 *p12, const char *pass, struct cert_pair *out)
{
    const char *use = pass ? pass : "";
    bool has_mac = PKCS12_mac_present(p12);
    /* The MAC tells a wrong passphrase apart from a damaged file. An empty passphrase may have
     * been applied as "no password" (NULL) or as the empty string: try both, as openssl does. */
    if (has_mac && !PKCS12_verify_mac(p12, use, -1)) {
        if (use[0] || !PKCS12_verify_mac(p12, NULL, 0)) {
            ERR_clear_error();
            return CERT_ERR_PASSPHRASE;
        }
        use = NULL;
    }
    ERR_clear_error();
    EVP_PKEY *k = NULL;
    X509 *x = NULL;
    STACK_OF(X509) *ca = NULL;
    if (!PKCS12_parse(p12, use, &k, &x, &ca)) {
        ERR_clear_error();
        load_legacy_provider();
        if (!PKCS12_parse(p12, use, &k, &x, &ca)) {
            ERR_clear_error();
            /* Without a MAC, a wrong passphrase shows only as contents that do not decrypt. */
            return has_mac ? CERT_ERR_CERT : CERT_ERR_PASSPHRASE;
        }
    }
    enum cert_err e;
    if (!x)
        e = CERT_ERR_CERT;
    else if (!k)
        e = CERT_ERR_KEY;
    else if (!key_of(x, k))
        e = CERT_ERR_MISMATCH;
    else
        e = make_pair(x, k, ca, out);
    X509_free(x);
    EVP_PKEY_free(k);
    sk_X509_pop_free(ca, X509_free);
    ERR_clear_error();
    return e;
}

static enum cert_err import_pem(const char *text, size_t len, const char *pass,
                                struct cert_pair *out)
{
    STACK_OF(X509) *sk = read_certs(text, len);
    if (!sk)
        return CERT_ERR_CERT;
    bool encrypted;
    EVP_PKEY *k = read_key(text, len, pass, &encrypted);
    enum cert_err e = CERT_ERR_MISMATCH;
    if (!k) {
        e = encrypted ? CERT_ERR_PASSPHRASE : CERT_ERR_KEY;
    } else {
        for (int i = 0; i < sk_X509_num(sk); i++) {
            if (key_of(sk_X509_value(sk, i), k)) {
                e = make_pair(sk_X509_value(sk, i), k, sk, out);
                break;
            }
        }
    }
    EVP_PKEY_free(k);
    sk_X509_pop_free(sk, X509_free);
    ERR_clear_error();
    return e;
}

enum cert_err cert_import(const unsigned char *data, size_t len, const char *passphrase,
                          struct cert_pair *out)
{
    out->cert = out->key = out->chain = NULL;
    if (len > INT32_MAX)
        return CERT_ERR_CERT;
    const unsigned char *p = data;
    ERR_clear_error();
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    ERR_clear_error();
    if (p12) {
        enum cert_err e = import_p12(p12, passphrase, out);
        PKCS12_free(p12);
        return e;
    }
    if (memchr(data, '\0', len))
        return CERT_ERR_CERT;
    return import_pem((const char *)data, len, passphrase, out);
}

/* ---- describing a certificate ---- */

/* Control characters from a certificate must not reach the terminal. */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

static void name_text(const X509_NAME *n, char *out, size_t outlen)
{
    /* RFC 2253 order (CN first) with ", " between parts; UTF-8 kept readable. */
    unsigned long flags =
        (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB & ~XN_FLAG_SEP_MASK) | XN_FLAG_SEP_CPLUS_SPC;
    BIO *b = BIO_new(BIO_s_mem());
    out[0] = '\0';
    if (b && X509_NAME_print_ex(b, n, 0, flags) >= 0) {
        char *data;
        long len = BIO_get_mem_data(b, &data);
        if (len > 0)
            snprintf(out, outlen, "%.*s", (int)(len > INT32_MAX ? INT32_MAX : len), data);
    }
    BIO_free(b);
    printable(out);
}

static void name_cn(const X509_NAME *n, const char *whole, char *out, size_t outlen)
{
    int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
    if (i >= 0) {
        const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
        unsigned char *u = NULL;
        int len = ASN1_STRING_to_UTF8(&u, s);
        if (len >= 0) {
            snprintf(out, outlen, "%.*s", len, (const char *)u);
            OPENSSL_free(u);
            printable(out);
            return;
        }
    }
    snprintf(out, outlen, "%s", whole);
}

static int64_t asn1_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

static void append_string(struct strbuf *sb, const char *tag, const ASN1_STRING *s)
{
    if (sb->len)
        sb_append(sb, ", ");
    sb_append(sb, tag);
    sb_append_len(sb, (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
}

static void sans_text(X509 *x, char *out, size_t outlen)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    struct strbuf sb = STRBUF_INIT;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        char ip[INET6_ADDRSTRLEN];
        switch (g->type) {
        case GEN_DNS:
            append_string(&sb, "DNS:", g->d.dNSName);
            break;
        case GEN_EMAIL:
            append_string(&sb, "email:", g->d.rfc822Name);
            break;
        case GEN_URI:
            append_string(&sb, "URI:", g->d.uniformResourceIdentifier);
            break;
        case GEN_IPADD: {
            int af = g->d.iPAddress->length == 4 ? AF_INET : AF_INET6;
            if ((g->d.iPAddress->length == 4 || g->d.iPAddress->length == 16) &&
                inet_ntop(af, g->d.iPAddress->data, ip, sizeof ip)) {
                if (sb.len)
                    sb_append(&sb, ", ");
                sb_printf(&sb, "IP:%s", ip);
            }
            break;
        }
        default:
            break;
        }
    }
    GENERAL_NAMES_free(names);
    /* An embedded NUL ends the text there, which is what a reader would see anyway. */
    snprintf(out, outlen, "%s", sb_str(&sb));
    sb_free(&sb);
    printable(out);
}

bool cert_describe(const char *pem, struct cert_info *out)
{
    memset(out, 0, sizeof *out);
    X509 *x = first_cert(pem);
    if (!x)
        return false;
    name_text(X509_get_subject_name(x), out->subject, sizeof out->subject);
    name_text(X509_get_issuer_name(x), out->issuer, sizeof out->issuer);
    name_cn(X509_get_subject_name(x), out->subject, out->subject_cn, sizeof out->subject_cn);
    name_cn(X509_get_issuer_name(x), out->issuer, out->issuer_cn, sizeof out->issuer_cn);
    out->not_before = asn1_time(X509_get0_notBefore(x));
    out->not_after = asn1_time(X509_get0_notAfter(x));
    sans_text(x, out->sans, sizeof out->sans);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(x, EVP_sha256(), md, &n)) {
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;
        for (unsigned int i = 0; i < n && o + 3 < sizeof out->sha256; i++) {
            if (i)
                out->sha256[o++] = ':';
            out->sha256[o++] = hex[md[i] >> 4];
            out->sha256[o++] = hex[md[i] & 15];
        }
        out->sha256[o] = '\0';
    }
    out->is_ca = X509_check_ca(x) != 0;
    X509_free(x);
    ERR_clear_error();
    return true;
}

const char *cert_status_label(const struct cert_info *ci, int64_t now)
{
    if (now < ci->not_before)
        return "Not yet valid";
    if (now > ci->not_after)
        return "Expired";
    return "Active";
}

long cert_days_left(const struct cert_info *ci, int64_t now)
{
    if (now >= ci->not_after)
        return 0;
    return (long)((ci->not_after - now + 86399) / 86400);
}

/* ---- unit bodies ---- */

void cert_profile_encode(const struct cert_pair *p, struct strbuf *sb)
{
    kv_put(sb, "certificate", p->cert ? p->cert : "");
    kv_put(sb, "key", p->key ? p->key : "");
    if (p->chain && p->chain[0])
        kv_put(sb, "chain", p->chain);
}

static int profile_one(void *arg, const char *key, const char *value)
{
    struct cert_pair *p = arg;
    char **slot = strcmp(key, "certificate") == 0 ? &p->cert
                  : strcmp(key, "key") == 0       ? &p->key
                  : strcmp(key, "chain") == 0     ? &p->chain
                                                  : NULL;
    if (slot) {
        free(*slot);
        *slot = xstrdup(value);
    }
    return 0;
}

bool cert_profile_decode(const char *body, struct cert_pair *p)
{
    p->cert = p->key = p->chain = NULL;
    kv_parse(body, profile_one, p);
    if (!p->cert)
        p->cert = xstrdup("");
    if (!p->key)
        p->key = xstrdup("");
    if (!p->chain)
        p->chain = xstrdup("");
    return p->cert[0] != '\0';
}

void cert_ca_factory(struct cert_ca_cfg *c)
{
    c->system_enabled = true;
    c->custom_enabled = false;
    c->custom = xstrdup("");
}

void cert_ca_encode(const struct cert_ca_cfg *c, struct strbuf *sb)
{
    kv_put(sb, "system", c->system_enabled ? "enabled" : "disabled");
    kv_put(sb, "custom", c->custom_enabled ? "enabled" : "disabled");
    if (c->custom && c->custom[0])
        kv_put(sb, "custom_cas", c->custom);
}

static int ca_one(void *arg, const char *key, const char *value)
{
    struct cert_ca_cfg *c = arg;
    if (strcmp(key, "system") == 0) {
        c->system_enabled = strcmp(value, "disabled") != 0;
    } else if (strcmp(key, "custom") == 0) {
        c->custom_enabled = strcmp(value, "enabled") == 0;
    } else if (strcmp(key, "custom_cas") == 0) {
        free(c->custom);
        c->custom = xstrdup(value);
    }
    return 0;
}

void cert_ca_decode(const char *body, struct cert_ca_cfg *c)
{
    cert_ca_factory(c);
    if (body)
        kv_parse(body, ca_one, c);
}

void cert_ca_free(struct cert_ca_cfg *c)
{
    free(c->custom);
    c->custom = NULL;
}

void cert_ca_trust(const struct cert_ca_cfg *c, const char **file, struct strbuf *pem)
{
    *file = NULL;
    bool custom = c->custom_enabled && c->custom && c->custom[0];
    if (!custom) {
        if (c->system_enabled)
            *file = CERT_SYSTEM_BUNDLE;
        else
            sb_append(pem, "\n"); /* a set, empty list: with nothing set, clients fall back to
                                      the system bundle */
        return;
    }
    if (c->system_enabled) {
        FILE *f = fopen(CERT_SYSTEM_BUNDLE, "rb");
        if (f) {
            char buf[8192];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, f)) > 0)
                sb_append_len(pem, buf, n);
            fclose(f);
        }
        sb_append(pem, "\n");
    }
    sb_append(pem, c->custom);
}
