/* dane.c - the DANE decision for one MX host (delivery-policy.md §4). */
#include "dane.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool dane_wants_tlsa(enum cfg_dane mode, bool mx_secure, bool addr_secure)
{
    if (mode != CFG_DANE_OPPORTUNISTIC && mode != CFG_DANE_MANDATORY)
        return false;
    /* Mandatory with an insecure MX RRset fails before any lookup. */
    if (mode == CFG_DANE_MANDATORY && !mx_secure)
        return false;
    return addr_secure;
}

size_t dane_bases(const char *host, const char *canon, bool addr_secure, const char *bases[2])
{
    size_t n = 0;
    if (canon && *canon && addr_secure && strcasecmp(canon, host) != 0)
        bases[n++] = canon;
    bases[n++] = host;
    return n;
}

bool dane_tlsa_settles(const struct dns_answer *a)
{
    if (dns_status_temporary(a->status) || a->status == DNS_BADNAME)
        return true;
    return a->status == DNS_OK && a->secure && a->nrr > 0;
}

bool dane_tlsa_usable(unsigned usage, unsigned selector, unsigned mtype, size_t len)
{
    if (usage != 2 && usage != 3)
        return false; /* PKIX-TA and PKIX-EE are unusable for SMTP (RFC 7672 §3.1.3) */
    if (selector > 1)
        return false;
    switch (mtype) {
    case 0:
        return len > 0;
    case 1:
        return len == 32;
    case 2:
        return len == 64;
    default:
        return false;
    }
}

void dane_decide(const struct dane_facts *f, struct tlspol_host *h, char *reason, size_t reasonlen)
{
    bool mandatory = f->mode == CFG_DANE_MANDATORY;
    h->dane = TLSPOL_DANE_NONE;
    h->ntlsa = 0;
    reason[0] = '\0';
    if (f->mode != CFG_DANE_OPPORTUNISTIC && !mandatory)
        return;
    if (mandatory && (!f->mx_secure || !f->addr_secure)) {
        h->dane = TLSPOL_DANE_FAILED;
        if (!f->mx_secure)
            snprintf(reason, reasonlen, "the MX records of %s are not DNSSEC-signed", h->domain);
        else
            snprintf(reason, reasonlen, "the address records of %s are not DNSSEC-signed", h->host);
        return;
    }
    if (!f->addr_secure || !f->tlsa) {
        snprintf(reason, reasonlen, "no secure TLSA for %s, DANE not applied", h->host);
        return;
    }
    const struct dns_answer *a = f->tlsa;
    const char *base = f->base ? f->base : h->host;
    /* the host, and where its records were when that is its CNAME target */
    char who[2 * TLSPOL_NAME_MAX + 8];
    if (strcasecmp(base, h->host) == 0)
        snprintf(who, sizeof who, "%s", h->host);
    else
        snprintf(who, sizeof who, "%s at %s", h->host, base);
    if (dns_status_temporary(a->status) || a->status == DNS_BADNAME) {
        h->dane = TLSPOL_DANE_FAILED;
        snprintf(reason, reasonlen, "TLSA lookup for %s failed: %s", who,
                 dns_status_name(a->status));
        return;
    }
    if (!a->secure || a->status != DNS_OK || a->nrr == 0) {
        if (mandatory) {
            h->dane = TLSPOL_DANE_FAILED;
            snprintf(reason, reasonlen, "no secure TLSA for %s", who);
        } else {
            snprintf(reason, reasonlen, "no secure TLSA for %s, DANE not applied", who);
        }
        return;
    }
    snprintf(h->dane_base, sizeof h->dane_base, "%s", base);
    for (size_t i = 0; i < a->nrr && h->ntlsa < TLSPOL_MAX_TLSA; i++) {
        const struct dns_rr *rr = &a->rr[i];
        if (rr->type != DNS_T_TLSA ||
            !dane_tlsa_usable(rr->tlsa.usage, rr->tlsa.selector, rr->tlsa.mtype, rr->tlsa.len))
            continue;
        struct tlspol_tlsa *t = &h->tlsa[h->ntlsa++];
        t->usage = rr->tlsa.usage;
        t->selector = rr->tlsa.selector;
        t->mtype = rr->tlsa.mtype;
        t->data = rr->tlsa.data;
        t->len = rr->tlsa.len;
    }
    if (h->ntlsa > 0) {
        h->dane = TLSPOL_DANE_AUTH;
        snprintf(reason, reasonlen, "%zu usable TLSA record%s for %s", h->ntlsa,
                 h->ntlsa == 1 ? "" : "s", who);
    } else if (mandatory) {
        h->dane = TLSPOL_DANE_FAILED;
        snprintf(reason, reasonlen, "only unusable TLSA records for %s", who);
    } else {
        h->dane = TLSPOL_DANE_NOAUTH;
        snprintf(reason, reasonlen, "only unusable TLSA records for %s, TLS without authentication",
                 who);
    }
}
