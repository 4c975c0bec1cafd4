/* dane.h - DANE for SMTP (RFC 7672) as delivery-policy.md §4 decides it for one MX host.
 *
 * Pure: the DNS facts come in (the MX answer's and the address answers' DNSSEC status, the TLSA
 * answer), the DANE state of the host's TLS plan (tlspolicy.h) goes out, with the usable TLSA
 * records and a reason for the log. OpenSSL's DANE API then does the matching (smtp_client.h).
 *
 * Rules: the DNSSEC status is dns.c's `secure` (the AD bit from a trusted resolver only). TLSA is
 * looked up when the host's address records are secure, also when the MX RRset is not
 * (RFC 7672 §2.2.1). Usable records are usages 2 (DANE-TA) and 3 (DANE-EE), selectors 0-1,
 * matching types 0-2 with the digest's length; OpenSSL applies digest agility among them.
 * Mandatory fails a host whose MX RRset or addresses are insecure, or that has no secure TLSA
 * RRset; a failed TLSA lookup (SERVFAIL, timeout) fails the host in both modes; a secure TLSA
 * RRset with no usable record means TLS without authentication (Mandatory: failed). */
#ifndef STSGATE_DANE_H
#define STSGATE_DANE_H

#include <stdbool.h>
#include <stddef.h>

#include "cfg.h"
#include "dns_parse.h"
#include "tlspolicy.h"

struct dane_facts {
    enum cfg_dane mode;            /* CFG_DANE_OPPORTUNISTIC or CFG_DANE_MANDATORY */
    bool mx_secure;                /* the MX RRset (or, for an implicit MX, the domain's A/AAAA) */
    bool addr_secure;              /* the host's address records */
    const struct dns_answer *tlsa; /* the TLSA answer at _25._tcp.<host>; NULL: not looked up */
};

/* Whether the TLSA lookup is worth making for a host. */
bool dane_wants_tlsa(enum cfg_dane mode, bool mx_secure, bool addr_secure);

/* Whether one TLSA record can be used for SMTP. */
bool dane_tlsa_usable(unsigned usage, unsigned selector, unsigned mtype, size_t len);

/* Sets h->dane, h->dane_base (the host name), and h->tlsa / h->ntlsa (pointing into f->tlsa's
 * records, which must outlive the connection) from the facts; writes a short reason for the log
 * ("no secure TLSA for mx1.example.com, DANE not applied"). Call before tlspol_plan(). */
void dane_decide(const struct dane_facts *f, struct tlspol_host *h, char *reason, size_t reasonlen);

#endif
