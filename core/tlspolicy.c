/* tlspolicy.c - the TLS decision for one next hop: delivery-policy.md §2 as data and code.
 *
 * The option table is kept as a table (what each option does when STARTTLS is missing, when the
 * handshake fails, whether and how the certificate is checked); MTA-STS and DANE, when set in the
 * record, then tighten it in tlspol_plan(). Nothing here weakens a decision after the table. */
#include "tlspolicy.h"

#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

/* One row of §2. */
struct option_row {
    bool starttls;    /* send STARTTLS when offered */
    bool required;    /* STARTTLS missing or handshake failed -> host failed */
    bool verify;      /* check the certificate */
    bool enforce;     /* a failed check is a host failure */
    bool san_only;    /* option 6: SAN dNSName only */
    bool mx_name;     /* option 6: the MX host name is also accepted */
    bool plain_retry; /* handshake failed after the 220 -> reconnect without STARTTLS */
};

static const struct option_row option_table[] = {
    [CFG_TLS_DEFAULT] = {false, false, false, false, false, false, false},
    [CFG_TLS_NO] = {false, false, false, false, false, false, false},
    [CFG_TLS_PREFERRED] = {true, false, false, false, false, false, true},
    [CFG_TLS_REQUIRED] = {true, true, false, false, false, false, false},
    [CFG_TLS_PREFERRED_VERIFY] = {true, false, true, false, false, false, true},
    [CFG_TLS_REQUIRED_VERIFY] = {true, true, true, true, false, false, false},
    [CFG_TLS_REQUIRED_VERIFY_HOSTED] = {true, true, true, true, true, true, false},
};

void tlspol_host_init(struct tlspol_host *h, enum cfg_tls option, const char *domain,
                      const char *host, bool literal, bool route)
{
    memset(h, 0, sizeof *h);
    h->option = option;
    snprintf(h->domain, sizeof h->domain, "%s", domain ? domain : "");
    snprintf(h->host, sizeof h->host, "%s", host ? host : "");
    h->literal = literal;
    h->route = route;
}

static void add_name(struct tlspol_host *h, const char *name)
{
    if (!name || !*name || name[0] == '[' || h->nnames >= TLSPOL_MAX_NAMES)
        return;
    for (size_t i = 0; i < h->nnames; i++)
        if (strcasecmp(h->names[i], name) == 0)
            return;
    snprintf(h->names[h->nnames++], TLSPOL_NAME_MAX, "%s", name);
}

void tlspol_plan(struct tlspol_host *h)
{
    enum cfg_tls opt = h->option;
    if ((int)opt < 0 || (size_t)opt >= sizeof option_table / sizeof option_table[0])
        opt = CFG_TLS_NO;
    const struct option_row *row = &option_table[opt];

    h->skip = false;
    h->starttls = row->starttls;
    h->required = row->required;
    h->verify = row->verify;
    h->enforce = row->enforce;
    h->san_only = row->san_only;
    h->plain_retry = row->plain_retry;
    h->nnames = 0;
    /* SNI whenever the next hop has a host name (§2), the TLSA base domain under DANE. */
    snprintf(h->sni, sizeof h->sni, "%s", h->literal ? "" : h->host);

    if (row->verify) {
        add_name(h, h->domain);
        if (row->mx_name)
            add_name(h, h->host);
        if (h->route && !h->literal) /* §5: the route host is an accepted reference name */
            add_name(h, h->host);
    }

    /* Routed domains get neither MTA-STS nor DANE (§5), whatever the caller set. */
    if (h->route || opt == CFG_TLS_NO) {
        h->sts = TLSPOL_STS_NONE;
        h->dane = TLSPOL_DANE_NONE;
        return;
    }

    switch (h->dane) {
    case TLSPOL_DANE_FAILED:
        h->skip = true;
        snprintf(h->status, sizeof h->status, "4.7.5");
        snprintf(h->reason, sizeof h->reason, "DANE: no usable secure TLSA answer for %s", h->host);
        return;
    case TLSPOL_DANE_AUTH:
        /* DNSSEC authenticated the host: MTA-STS is not applied to it (§4), TLSA decides. */
        h->starttls = h->required = h->verify = h->enforce = true;
        h->plain_retry = false;
        h->san_only = false;
        h->nnames = 0;
        add_name(h, h->dane_base[0] ? h->dane_base : h->host);
        add_name(h, h->host);
        if (h->dane_base[0])
            snprintf(h->sni, sizeof h->sni, "%s", h->dane_base);
        return;
    case TLSPOL_DANE_NOAUTH:
        h->starttls = h->required = true;
        h->plain_retry = false;
        break;
    case TLSPOL_DANE_NONE:
        break;
    }

    if (h->sts == TLSPOL_STS_ENFORCE) {
        if (h->sts_skip) {
            h->skip = true;
            snprintf(h->status, sizeof h->status, "4.7.5");
            snprintf(h->reason, sizeof h->reason, "%s does not match the policy", h->host);
            return;
        }
        /* The policy authenticated the MX names: its check replaces the option's name check. */
        h->starttls = h->required = h->verify = h->enforce = h->san_only = true;
        h->plain_retry = false;
        h->nnames = 0;
        add_name(h, h->host);
    }
}

static enum tlspol_action fail(struct tlspol_host *h, const char *status, const char *fmt,
                               const char *a, const char *b)
{
    snprintf(h->status, sizeof h->status, "%s", status);
    snprintf(h->reason, sizeof h->reason, fmt, a, b);
    return TLSPOL_HOST_FAILED;
}

enum tlspol_action tlspol_event(struct tlspol_host *h, enum tlspol_event ev, bool name_reason,
                                const char *detail)
{
    const char *d = detail && *detail ? detail : "unknown error";
    h->status[0] = h->reason[0] = '\0';
    switch (ev) {
    case TLSPOL_EV_NO_STARTTLS:
        /* An enforced MTA-STS policy makes every failure on a listed host 4.7.5 (§3). */
        if (h->required)
            return fail(h, h->sts == TLSPOL_STS_ENFORCE ? "4.7.5" : "4.7.4",
                        "STARTTLS not offered by %s%s", h->host, "");
        return TLSPOL_GO_PLAIN;
    case TLSPOL_EV_STARTTLS_REFUSED:
        /* Before the server's 220 the session is still usable in the clear. */
        if (h->required)
            return fail(h, "4.7.5", "STARTTLS refused by %s: %s", h->host, d);
        return TLSPOL_GO_PLAIN;
    case TLSPOL_EV_HANDSHAKE_FAILED:
        if (h->required || !h->plain_retry)
            return fail(h, "4.7.5", "TLS negotiation failed with %s: %s", h->host, d);
        return TLSPOL_RETRY_PLAIN;
    case TLSPOL_EV_CERT_FAILED:
        if (!h->verify || !h->enforce)
            return TLSPOL_GO_TLS;
        if (h->dane == TLSPOL_DANE_AUTH)
            return fail(h, "4.7.5", "DANE: no TLSA record of %s matches the certificate%s", h->host,
                        "");
        if (h->sts == TLSPOL_STS_ENFORCE && name_reason)
            return fail(h, "4.7.5", "MTA-STS: certificate does not match MX host %s%s", h->host,
                        "");
        if (name_reason)
            return fail(h, "4.7.5", "peer cert does not match domain %s%s", h->domain, "");
        return fail(h, "4.7.5", "verify error: %s%s", d, "");
    case TLSPOL_EV_CERT_OK:
        return TLSPOL_GO_TLS;
    }
    return TLSPOL_HOST_FAILED;
}

bool tlspol_name_match(X509 *cert, const char *ref, bool san_only, char *matched)
{
    if (!cert || !ref || !*ref)
        return false;
    unsigned flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
    if (san_only)
        flags |= X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
    char *peer = NULL;
    int rc = X509_check_host(cert, ref, strlen(ref), flags, &peer);
    if (rc == 1 && matched)
        snprintf(matched, TLSPOL_NAME_MAX, "%s", peer ? peer : ref);
    OPENSSL_free(peer);
    return rc == 1;
}

bool tlspol_check_cert(const struct tlspol_host *h, X509 *cert, bool chain_ok, bool *name_ok,
                       char *matched)
{
    bool names = false;
    if (matched)
        matched[0] = '\0';
    if (h->dane == TLSPOL_DANE_AUTH) {
        /* OpenSSL's DANE verification did both the key and the name rules. */
        names = chain_ok;
    } else {
        for (size_t i = 0; i < h->nnames && !names; i++)
            names = tlspol_name_match(cert, h->names[i], h->san_only, matched);
    }
    if (name_ok)
        *name_ok = names;
    if (!h->verify)
        return true;
    return cert && chain_ok && names;
}

void tlspol_cert_names(X509 *cert, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    out[0] = '\0';
    if (!cert)
        return;
    size_t len = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS)
            continue;
        const unsigned char *s = ASN1_STRING_get0_data(g->d.dNSName);
        int sl = ASN1_STRING_length(g->d.dNSName);
        int w = snprintf(out + len, outlen - len, "%sdNSName=%.*s",
                         len == 0 ? "subjectAltName:" : ", ", sl, (const char *)s);
        if (w < 0 || (size_t)w >= outlen - len)
            break;
        len += (size_t)w;
    }
    GENERAL_NAMES_free(gens);
    if (len == 0) {
        char cn[256] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
        snprintf(out, outlen, "CN=%s", cn);
    }
}

const char *tlspol_action_name(enum tlspol_action a)
{
    switch (a) {
    case TLSPOL_GO_PLAIN:
        return "plain";
    case TLSPOL_GO_TLS:
        return "tls";
    case TLSPOL_RETRY_PLAIN:
        return "retry-plain";
    case TLSPOL_HOST_FAILED:
        return "host-failed";
    }
    return "?";
}
