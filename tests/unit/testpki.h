/* testpki.h - certificates made in memory for the unit tests that need a PKI (test_tlscert.c,
 * test_sts_fetch_post.c): a self-signed CA or a certificate it signs, EC P-256, and its PEM text.
 * Header-only (static inline), like t.h. */
#ifndef STSGATE_TESTPKI_H
#define STSGATE_TESTPKI_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct t_cert {
    X509 *x;
    EVP_PKEY *k;
};

static inline void t_cert_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e) {
        fprintf(stderr, "bad extension %s\n", value);
        exit(1);
    }
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

/* A certificate for "O=Example, CN=cn" valid from `from` to `to` days from now, signed by signer
 * (NULL: itself). ca: basicConstraints CA:TRUE and keyCertSign, else CA:FALSE; san: a
 * subjectAltName value or NULL. */
static inline struct t_cert t_cert_make(const char *cn, long from, long to, bool ca,
                                        const char *san, const struct t_cert *signer)
{
    static long serial = 1;
    struct t_cert m;
    m.k = EVP_EC_gen("P-256");
    m.x = X509_new();
    X509_set_version(m.x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(m.x), serial++);
    X509_time_adj_ex(X509_getm_notBefore(m.x), (int)from, 0, NULL);
    X509_time_adj_ex(X509_getm_notAfter(m.x), (int)to, 0, NULL);
    X509_NAME *name = X509_get_subject_name(m.x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Example", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(m.x, signer ? X509_get_subject_name(signer->x) : name);
    X509_set_pubkey(m.x, m.k);
    X509 *issuer = signer ? signer->x : m.x;
    t_cert_ext(m.x, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    if (ca)
        t_cert_ext(m.x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san)
        t_cert_ext(m.x, issuer, NID_subject_alt_name, san);
    X509_sign(m.x, signer ? signer->k : m.k, EVP_sha256());
    return m;
}

static inline void t_cert_free(struct t_cert *m)
{
    X509_free(m->x);
    EVP_PKEY_free(m->k);
}

/* The text a memory BIO holds, NUL-terminated (the caller frees it); frees the BIO. */
static inline char *t_bio_string(BIO *b)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = malloc((size_t)n + 1);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

/* The certificate as PEM text (the caller frees it). */
static inline char *t_cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    return t_bio_string(b);
}

#endif
