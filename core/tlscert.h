/* tlscert.h - certificates and keys as the configuration holds them (PEM text), over OpenSSL.
 *
 * The shell and the store see only PEM text and plain structs, never an OpenSSL type. Promises:
 * - parsing never prints and never aborts; every refusal is a value (enum cert_err);
 * - PEM handed back is re-encoded by OpenSSL from what parsed, so a stored body holds exactly
 *   the certificates and keys that were checked, and nothing pasted around them;
 * - private keys come back as unencrypted PKCS#8 PEM: the configuration store protects them
 *   with file modes (config.db 0600 in a 0700 data directory), not with a passphrase.
 *
 * The unit bodies of certconfig (kind CFG_KIND_CERT), read by the shell and the delivery agent:
 * - a certificate profile (unit name = profile name):
 *     certificate = the leaf certificate, PEM
 *     key         = its private key, PKCS#8 PEM
 *     chain       = intermediate certificates, PEM blocks in order (absent when none)
 * - CFG_UNIT_CA ("CERTAUTHORITY"):
 *     system      = enabled | disabled   (the OS bundle, CERT_SYSTEM_BUNDLE)
 *     custom      = enabled | disabled   (the custom list below)
 *     custom_cas  = the custom certificate authorities, PEM blocks in order (absent when none)
 * Factory: system enabled, custom disabled, no custom CAs. */
#ifndef STSGATE_TLSCERT_H
#define STSGATE_TLSCERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* The operating system's CA bundle (Debian's ca-certificates). */
#define CERT_SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

enum cert_err {
    CERT_OK = 0,
    CERT_ERR_CERT,       /* no certificate, or a broken certificate block */
    CERT_ERR_KEY,        /* no private key, or a broken one */
    CERT_ERR_MISMATCH,   /* the private key does not belong to the certificate */
    CERT_ERR_PASSPHRASE, /* an encrypted file or key that the passphrase does not open */
};

/* A list of PEM certificates, one block per string. */
struct cert_list {
    char **pem;
    size_t n;
};

/* A certificate with its key and chain, as a profile holds them. chain is "" when none. */
struct cert_pair {
    char *cert;
    char *key;
    char *chain;
};

/* What PRINT, the list table and showchanges show of a certificate. Text fields are truncated
 * to their buffers and hold no control characters (they come from the certificate's author). */
struct cert_info {
    char subject[512];    /* "CN=mail.example.com, O=Example" (most specific first) */
    char issuer[512];     /* same form */
    char subject_cn[256]; /* the subject's CN, else the whole subject */
    char issuer_cn[256];  /* the issuer's CN, else the whole issuer */
    int64_t not_before;   /* seconds since the epoch */
    int64_t not_after;
    char sans[1024]; /* "DNS:a.example, IP:192.0.2.1"; "" when none */
    char sha256[96]; /* "AB:CD:..." (32 bytes) */
    bool is_ca;      /* usable as a certificate authority (basicConstraints CA, or v1 root) */
};

/* A new EC P-256 key and a self-signed certificate for cn, valid for days. PEM strings are the
 * caller's to free(). */
bool cert_make_selfsigned(const char *cn, int days, char **cert_pem, char **key_pem);

/* Every certificate block of text (len bytes; other text around the blocks is ignored). Fails
 * with CERT_ERR_CERT when there is none or any block is broken; out is then empty. */
enum cert_err cert_split(const char *text, size_t len, struct cert_list *out);
void cert_list_free(struct cert_list *l);
/* The blocks of l one after the other (caller frees). */
char *cert_list_join(const struct cert_list *l);

/* The one unencrypted private key of text, re-encoded as PKCS#8 PEM into *pem (caller frees).
 * CERT_ERR_KEY when there is none, it is broken, or it is encrypted. */
enum cert_err cert_parse_key(const char *text, size_t len, char **pem);

/* Whether key_pem is the private key of the first certificate of cert_pem. */
bool cert_key_matches(const char *cert_pem, const char *key_pem);

/* An IMPORT file: PKCS#12 (DER), or PEM holding a certificate, its key (encrypted with
 * passphrase or not) and any other certificates (taken as the chain, in file order). The leaf is
 * the certificate the key belongs to. On CERT_OK *out is filled (free with cert_pair_free). */
enum cert_err cert_import(const unsigned char *data, size_t len, const char *passphrase,
                          struct cert_pair *out);
void cert_pair_free(struct cert_pair *p);

/* Describes the first certificate of pem. false when pem holds none. */
bool cert_describe(const char *pem, struct cert_info *out);
/* "Active", "Expired" or "Not yet valid" at time now. */
const char *cert_status_label(const struct cert_info *ci, int64_t now);
/* Whole days left until not_after, counting a started day (0 once expired). */
long cert_days_left(const struct cert_info *ci, int64_t now);

/* ---- unit bodies ---- */

void cert_profile_encode(const struct cert_pair *p, struct strbuf *sb);
/* Fills p from a profile body (missing keys give ""). false when there is no certificate. */
bool cert_profile_decode(const char *body, struct cert_pair *p);

struct cert_ca_cfg {
    bool system_enabled;
    bool custom_enabled;
    char *custom; /* PEM blocks, "" when none; owned */
};

void cert_ca_factory(struct cert_ca_cfg *c);
/* The CAs a certificate check trusts under c, as an HTTPS client wants them: *file is the system
 * bundle when only the system list is on (libcurl caches a file); otherwise pem gets the enabled
 * lists' certificates, the system bundle first. When no list is on, pem holds no certificate but
 * is not empty, so that a client trusts nothing rather than its default bundle. */
void cert_ca_trust(const struct cert_ca_cfg *c, const char **file, struct strbuf *pem);
void cert_ca_encode(const struct cert_ca_cfg *c, struct strbuf *sb);
/* Starts from the factory values; unknown keys are ignored. */
void cert_ca_decode(const char *body, struct cert_ca_cfg *c);
void cert_ca_free(struct cert_ca_cfg *c);

#endif
