/* test_tlscert.c - PEM, PKCS#12 and certificate description (core/tlscert.c), and the certconfig
 * unit bodies and their showchanges fields.
 *
 * Every input is made here with OpenSSL: a CA, a leaf it signs, keys, encrypted PEM, PKCS#12
 * (current and legacy encryption, the legacy one through the openssl command in a temp dir). */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "strbuf.h"
#include "t.h"
#include "testpki.h"
#include "tlscert.h"

static char *key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    return t_bio_string(b);
}

static char *key_pem_encrypted(EVP_PKEY *k, const char *pass)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PKCS8PrivateKey(b, k, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)pass);
    return t_bio_string(b);
}

static char *cat(const char *a, const char *b, const char *c)
{
    struct strbuf sb = STRBUF_INIT;
    sb_append(&sb, a);
    sb_append(&sb, b);
    if (c)
        sb_append(&sb, c);
    return sb_steal(&sb);
}

/* A PKCS#12 file (DER) with leaf, key and ca, protected by pass (NULL: no password). */
static unsigned char *p12_der(const struct t_cert *leaf, const struct t_cert *ca, const char *pass,
                              size_t *len)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    sk_X509_push(sk, ca->x);
    PKCS12 *p12 = PKCS12_create(pass, "leaf", leaf->k, leaf->x, sk, 0, 0, 0, 0, 0);
    sk_X509_free(sk);
    if (!p12) {
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    unsigned char *der = NULL;
    int n = i2d_PKCS12(p12, &der);
    PKCS12_free(p12);
    unsigned char *out = xmalloc((size_t)n);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    *len = (size_t)n;
    return out;
}

static const char *tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/test_tlscert.XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static unsigned char *read_bin(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct strbuf sb = STRBUF_INIT;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_append_len(&sb, buf, n);
    fclose(f);
    *len = sb.len;
    return (unsigned char *)sb_steal(&sb);
}

static void test_good_pair(const struct t_cert *ca, const struct t_cert *leaf)
{
    char *c = t_cert_pem(leaf->x), *k = key_pem(leaf->k);
    struct cert_list l;
    T_EQ_INT(cert_split(c, strlen(c), &l), CERT_OK);
    T_EQ_INT(l.n, 1);
    T_EQ_STR(l.pem[0], c);
    char *norm;
    T_EQ_INT(cert_parse_key(k, strlen(k), &norm), CERT_OK);
    T_CHECK(norm && strstr(norm, "-----BEGIN PRIVATE KEY-----"));
    T_CHECK(cert_key_matches(l.pem[0], norm));

    /* Text around the block (a mail client's quoting, a blank line) is ignored. */
    char *wrapped = cat("Here is the certificate:\n\n", c, "\nthanks\n");
    struct cert_list w;
    T_EQ_INT(cert_split(wrapped, strlen(wrapped), &w), CERT_OK);
    T_EQ_INT(w.n, 1);
    cert_list_free(&w);
    free(wrapped);

    struct cert_info ci;
    T_CHECK(cert_describe(c, &ci));
    T_EQ_STR(ci.subject, "CN=mail.example.com, O=Example");
    T_EQ_STR(ci.subject_cn, "mail.example.com");
    T_EQ_STR(ci.issuer, "CN=Test Root CA, O=Example");
    T_EQ_STR(ci.issuer_cn, "Test Root CA");
    T_EQ_STR(ci.sans, "DNS:mail.example.com, DNS:mx.example.com, IP:192.0.2.1, IP:2001:db8::1");
    T_CHECK(!ci.is_ca);
    unsigned char md[32];
    unsigned int n;
    X509_digest(leaf->x, EVP_sha256(), md, &n);
    char want[96] = "";
    for (unsigned int i = 0; i < n; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%02X", i ? ":" : "", md[i]);
    T_EQ_STR(ci.sha256, want);
    T_EQ_INT(strlen(ci.sha256), 95);
    int64_t now = (int64_t)time(NULL);
    T_EQ_STR(cert_status_label(&ci, now), "Active");
    T_EQ_INT(cert_days_left(&ci, now), 365);
    T_CHECK(ci.not_before <= now && ci.not_before > now - 120);

    char *cap = t_cert_pem(ca->x);
    T_CHECK(cert_describe(cap, &ci));
    T_CHECK(ci.is_ca);
    T_EQ_STR(ci.sans, "");
    free(cap);

    free(norm);
    cert_list_free(&l);
    free(c);
    free(k);
}

static void test_mismatch(const struct t_cert *leaf, const struct t_cert *other)
{
    char *c = t_cert_pem(leaf->x), *k = key_pem(other->k);
    T_CHECK(!cert_key_matches(c, k));
    T_CHECK(!cert_key_matches("garbage", k));
    T_CHECK(!cert_key_matches(c, "garbage"));
    free(c);
    free(k);
}

static void test_garbage(const struct t_cert *leaf)
{
    struct cert_list l;
    char *norm = NULL;
    static const char *const bad[] = {
        "",
        "hello\n",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
        /* a DER prefix cut short */
        ("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIBATAKBggqhkjOPQQDAjA=\n"
         "-----END CERTIFICATE-----\n"),
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        T_EQ_INT(cert_split(bad[i], strlen(bad[i]), &l), CERT_ERR_CERT);
        T_EQ_INT(l.n, 0);
        T_EQ_INT(cert_parse_key(bad[i], strlen(bad[i]), &norm), CERT_ERR_KEY);
        T_CHECK(norm == NULL);
    }
    /* A good block followed by a broken one refuses the whole text. */
    char *c = t_cert_pem(leaf->x);
    char *two = cat(c, bad[2], NULL);
    T_EQ_INT(cert_split(two, strlen(two), &l), CERT_ERR_CERT);
    free(two);
    /* A key where the certificate belongs, and a certificate where the key belongs. */
    char *k = key_pem(leaf->k);
    T_EQ_INT(cert_split(k, strlen(k), &l), CERT_ERR_CERT);
    T_EQ_INT(cert_parse_key(c, strlen(c), &norm), CERT_ERR_KEY);
    /* An encrypted key cannot be pasted: there is no passphrase question. */
    char *enc = key_pem_encrypted(leaf->k, "secret");
    T_EQ_INT(cert_parse_key(enc, strlen(enc), &norm), CERT_ERR_KEY);
    struct cert_info ci;
    T_CHECK(!cert_describe("garbage", &ci));
    free(enc);
    free(k);
    free(c);
}

static void test_pkcs12(const struct t_cert *ca, const struct t_cert *leaf)
{
    size_t len;
    struct cert_pair p;
    unsigned char *der = p12_der(leaf, ca, "s3cret pass", &len);
    char *want_cert = t_cert_pem(leaf->x), *want_ca = t_cert_pem(ca->x);

    T_EQ_INT(cert_import(der, len, "s3cret pass", &p), CERT_OK);
    T_EQ_STR(p.cert, want_cert);
    T_EQ_STR(p.chain, want_ca);
    T_CHECK(p.key && cert_key_matches(p.cert, p.key));
    T_CHECK(p.key && strstr(p.key, "-----BEGIN PRIVATE KEY-----"));
    cert_pair_free(&p);

    T_EQ_INT(cert_import(der, len, "wrong", &p), CERT_ERR_PASSPHRASE);
    T_CHECK(p.cert == NULL && p.key == NULL);
    T_EQ_INT(cert_import(der, len, "", &p), CERT_ERR_PASSPHRASE);
    /* A damaged file is not a passphrase problem. */
    T_EQ_INT(cert_import(der, len / 2, "s3cret pass", &p), CERT_ERR_CERT);
    free(der);

    /* No password at all: an empty answer opens it. */
    der = p12_der(leaf, ca, NULL, &len);
    T_EQ_INT(cert_import(der, len, "", &p), CERT_OK);
    T_EQ_STR(p.cert, want_cert);
    cert_pair_free(&p);
    free(der);

    /* Legacy encryption (RC2/3DES, as older tools write it) through the openssl command. */
    char path[512], cmd[2048];
    char *c = t_cert_pem(leaf->x), *k = key_pem(leaf->k);
    snprintf(path, sizeof path, "%s/leaf.pem", tmpdir());
    char *both = cat(c, k, NULL);
    write_text(path, both);
    free(both);
    snprintf(cmd, sizeof cmd,
             "openssl pkcs12 -export -legacy -in %s/leaf.pem -out %s/legacy.p12 -passout "
             "pass:oldpass 2>/dev/null",
             tmpdir(), tmpdir());
    if (system(cmd) == 0) {
        snprintf(path, sizeof path, "%s/legacy.p12", tmpdir());
        der = read_bin(path, &len);
        T_CHECK(der != NULL);
        if (der) {
            T_EQ_INT(cert_import(der, len, "oldpass", &p), CERT_OK);
            T_EQ_STR(p.cert, want_cert);
            T_EQ_STR(p.chain, "");
            cert_pair_free(&p);
            T_EQ_INT(cert_import(der, len, "newpass", &p), CERT_ERR_PASSPHRASE);
            free(der);
        }
    } else {
        printf("openssl pkcs12 -legacy unavailable: legacy case skipped\n");
    }
    free(c);
    free(k);
    free(want_cert);
    free(want_ca);
}

static void test_pem_import(const struct t_cert *ca, const struct t_cert *leaf,
                            const struct t_cert *other)
{
    struct cert_pair p;
    char *c = t_cert_pem(leaf->x), *cap = t_cert_pem(ca->x), *k = key_pem(leaf->k);
    char *enc = key_pem_encrypted(leaf->k, "pempass");

    /* The CA first: the leaf is the certificate the key belongs to, wherever it stands. */
    char *file = cat(cap, enc, c);
    T_EQ_INT(cert_import((unsigned char *)file, strlen(file), "pempass", &p), CERT_OK);
    T_EQ_STR(p.cert, c);
    T_EQ_STR(p.chain, cap);
    T_CHECK(cert_key_matches(p.cert, p.key));
    cert_pair_free(&p);
    T_EQ_INT(cert_import((unsigned char *)file, strlen(file), "nope", &p), CERT_ERR_PASSPHRASE);
    T_EQ_INT(cert_import((unsigned char *)file, strlen(file), "", &p), CERT_ERR_PASSPHRASE);
    free(file);

    file = cat(c, k, NULL);
    T_EQ_INT(cert_import((unsigned char *)file, strlen(file), "", &p), CERT_OK);
    T_EQ_STR(p.chain, "");
    cert_pair_free(&p);
    free(file);

    T_EQ_INT(cert_import((unsigned char *)c, strlen(c), "", &p), CERT_ERR_KEY);
    T_EQ_INT(cert_import((unsigned char *)k, strlen(k), "", &p), CERT_ERR_CERT);
    char *ok = key_pem(other->k);
    file = cat(c, ok, NULL);
    T_EQ_INT(cert_import((unsigned char *)file, strlen(file), "", &p), CERT_ERR_MISMATCH);
    free(file);
    static const unsigned char junk[] = {0x30, 0x82, 0x00, 0x10, 0x00, 0x01, 0x02};
    T_EQ_INT(cert_import(junk, sizeof junk, "", &p), CERT_ERR_CERT);
    T_EQ_INT(cert_import((const unsigned char *)"", 0, "", &p), CERT_ERR_CERT);
    free(ok);
    free(enc);
    free(k);
    free(cap);
    free(c);
}

static void test_bundle(const struct t_cert *ca, const struct t_cert *leaf)
{
    struct t_cert old = t_cert_make("Old Root CA", -400, -10, true, NULL, NULL);
    struct t_cert soon = t_cert_make("Future Root CA", 10, 400, true, NULL, NULL);
    char *a = t_cert_pem(ca->x), *b = t_cert_pem(old.x), *c = t_cert_pem(soon.x),
         *d = t_cert_pem(leaf->x);
    char *bundle = cat(a, b, c);
    struct cert_list l;
    T_EQ_INT(cert_split(bundle, strlen(bundle), &l), CERT_OK);
    T_EQ_INT(l.n, 3);
    int64_t now = (int64_t)time(NULL);
    struct cert_info ci;
    for (size_t i = 0; i < l.n; i++) {
        T_CHECK(cert_describe(l.pem[i], &ci));
        T_CHECK(ci.is_ca);
    }
    T_CHECK(cert_describe(l.pem[1], &ci));
    T_EQ_STR(ci.subject, "CN=Old Root CA, O=Example");
    T_EQ_STR(cert_status_label(&ci, now), "Expired");
    T_EQ_INT(cert_days_left(&ci, now), 0);
    T_CHECK(cert_describe(l.pem[2], &ci));
    T_EQ_STR(cert_status_label(&ci, now), "Not yet valid");
    char *joined = cert_list_join(&l);
    T_EQ_STR(joined, bundle);
    free(joined);
    cert_list_free(&l);

    /* A leaf in the bundle: it parses, and describe says it is no CA (the shell refuses it). */
    char *mixed = cat(a, d, NULL);
    T_EQ_INT(cert_split(mixed, strlen(mixed), &l), CERT_OK);
    T_EQ_INT(l.n, 2);
    T_CHECK(cert_describe(l.pem[1], &ci));
    T_CHECK(!ci.is_ca);
    T_EQ_STR(ci.subject, "CN=mail.example.com, O=Example");
    cert_list_free(&l);

    /* The factory Demo certificate is self-signed but no CA either. */
    char *sc, *sk;
    T_CHECK(cert_make_selfsigned("stsgate Demo", 3650, &sc, &sk));
    T_CHECK(cert_describe(sc, &ci));
    T_CHECK(!ci.is_ca);
    T_EQ_STR(ci.subject, "CN=stsgate Demo");
    T_EQ_INT(cert_days_left(&ci, (int64_t)time(NULL)), 3650);
    T_CHECK(cert_key_matches(sc, sk));
    free(sc);
    free(sk);

    free(mixed);
    free(bundle);
    free(a);
    free(b);
    free(c);
    free(d);
    t_cert_free(&old);
    t_cert_free(&soon);
}

static void test_units(const struct t_cert *ca, const struct t_cert *leaf)
{
    struct cert_pair p = {t_cert_pem(leaf->x), key_pem(leaf->k), t_cert_pem(ca->x)}, q;
    struct strbuf sb = STRBUF_INIT;
    cert_profile_encode(&p, &sb);
    T_CHECK(strncmp(sb_str(&sb), "certificate=-----BEGIN CERTIFICATE-----\\n", 41) == 0);
    T_CHECK(cert_profile_decode(sb_str(&sb), &q));
    T_EQ_STR(q.cert, p.cert);
    T_EQ_STR(q.key, p.key);
    T_EQ_STR(q.chain, p.chain);
    cert_pair_free(&q);

    struct cfg_field f[CFG_FIELDS_MAX];
    int n = cfg_unit_fields(CFG_KIND_CERT, "outbound", sb_str(&sb), f);
    T_EQ_INT(n, 5);
    T_EQ_STR(f[0].name, "subject");
    T_EQ_STR(f[0].value, "CN=mail.example.com, O=Example");
    T_EQ_STR(f[1].value, "CN=Test Root CA, O=Example");
    T_EQ_STR(f[2].name, "expires");
    T_EQ_STR(f[3].name, "fingerprint");
    T_EQ_INT(strlen(f[3].value), 95);
    T_EQ_STR(f[4].name, "intermediates");
    T_EQ_STR(f[4].value, "1");
    sb_free(&sb);
    T_CHECK(!cert_profile_decode("key=x\n", &q));
    cert_pair_free(&q);

    struct cert_ca_cfg c;
    cert_ca_factory(&c);
    cert_ca_encode(&c, &sb);
    T_EQ_STR(sb_str(&sb), "system=enabled\ncustom=disabled\n");
    n = cfg_unit_fields(CFG_KIND_CERT, CFG_UNIT_CA, sb_str(&sb), f);
    T_EQ_INT(n, 3);
    T_EQ_STR(f[0].value, "Disabled");
    T_EQ_STR(f[1].value, "Enabled");
    T_EQ_STR(f[2].name, "custom_authorities");
    T_EQ_STR(f[2].value, "0");
    cert_ca_free(&c);

    sb_reset(&sb);
    c.system_enabled = false;
    c.custom_enabled = true;
    c.custom = cat(p.chain, p.chain, NULL);
    cert_ca_encode(&c, &sb);
    cert_ca_free(&c);
    cert_ca_decode(sb_str(&sb), &c);
    T_CHECK(!c.system_enabled);
    T_CHECK(c.custom_enabled);
    T_CHECK(strlen(c.custom) == 2 * strlen(p.chain));
    n = cfg_unit_fields(CFG_KIND_CERT, CFG_UNIT_CA, sb_str(&sb), f);
    T_EQ_STR(f[0].value, "Enabled");
    T_EQ_STR(f[1].value, "Disabled");
    T_EQ_STR(f[2].value, "2");
    cert_ca_free(&c);
    cert_ca_decode(NULL, &c);
    T_CHECK(c.system_enabled && !c.custom_enabled && c.custom[0] == '\0');
    cert_ca_free(&c);
    sb_free(&sb);
    cert_pair_free(&p);
}

/* The trusted CAs as an HTTPS client is given them: never its default bundle when both lists
 * are off. */
static void test_trust(void)
{
    struct cert_ca_cfg c = {.system_enabled = true, .custom_enabled = false, .custom = (char *)""};
    const char *file;
    struct strbuf pem = STRBUF_INIT;
    cert_ca_trust(&c, &file, &pem);
    T_EQ_STR(file, CERT_SYSTEM_BUNDLE);
    T_EQ_INT(pem.len, 0);

    c.system_enabled = false;
    cert_ca_trust(&c, &file, &pem);
    T_CHECK(file == NULL);
    T_CHECK(pem.len > 0);
    T_CHECK(strstr(sb_str(&pem), "BEGIN") == NULL);

    sb_reset(&pem);
    c.custom_enabled = true;
    c.custom = (char *)"-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n";
    cert_ca_trust(&c, &file, &pem);
    T_CHECK(file == NULL);
    T_EQ_STR(sb_str(&pem), c.custom);

    sb_reset(&pem);
    c.system_enabled = true;
    cert_ca_trust(&c, &file, &pem);
    T_CHECK(file == NULL);
    T_CHECK(pem.len > strlen(c.custom));
    T_CHECK(strstr(sb_str(&pem), c.custom) != NULL);
    sb_free(&pem);
}

int main(void)
{
    struct t_cert ca = t_cert_make("Test Root CA", 0, 3650, true, NULL, NULL);
    struct t_cert leaf =
        t_cert_make("mail.example.com", 0, 365, false,
                    "DNS:mail.example.com,DNS:mx.example.com,IP:192.0.2.1,IP:2001:db8::1", &ca);
    struct t_cert other = t_cert_make("other.example.com", 0, 365, false, NULL, &ca);

    test_good_pair(&ca, &leaf);
    test_mismatch(&leaf, &other);
    test_garbage(&leaf);
    test_pkcs12(&ca, &leaf);
    test_pem_import(&ca, &leaf, &other);
    test_bundle(&ca, &leaf);
    test_units(&ca, &leaf);
    test_trust();
    /* Every entry point leaves OpenSSL's error queue empty. */
    T_EQ_INT(ERR_peek_error(), 0);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir());
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir());
    t_cert_free(&ca);
    t_cert_free(&leaf);
    t_cert_free(&other);
    return t_done();
}
