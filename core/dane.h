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
 * RRset with no usable record means TLS without authentication (Mandatory: failed).
 *
 * CNAMEs (RFC 7672 §2.2.2): when the host's address records came through a secure CNAME chain,
 * TLSA is looked up at the expanded name first and at the host name only when the expanded name
 * has no secure TLSA RRset (dane_bases, dane_tlsa_settles). The name whose RRset decided is the
 * TLSA base domain: the SNI name and, for DANE-TA, a reference name beside the host name. */
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
    const struct dns_answer *tlsa; /* the TLSA answer at _25._tcp.<base>; NULL: not looked up */
    const char *base;              /* the name tlsa is for; NULL: the host name */
};

/* Whether the TLSA lookup is worth making for a host. */
bool dane_wants_tlsa(enum cfg_dane mode, bool mx_secure, bool addr_secure);

/* The TLSA base domains of a host in the order they are tried: canon (the CNAME-expanded name,
 * NULL when there is none) and then the host when the address records are secure, else the host
 * alone. Returns how many (1 or 2). */
size_t dane_bases(const char *host, const char *canon, bool addr_secure, const char *bases[2]);

/* Whether the TLSA answer at one base domain settles the host: a secure RRset does (usable or
 * not), and so does a failed lookup; no secure TLSA there (NODATA, NXDOMAIN, an insecure answer)
 * sends the lookup on to the next base domain. */
bool dane_tlsa_settles(const struct dns_answer *a);

/* Whether one TLSA record can be used for SMTP. */
bool dane_tlsa_usable(unsigned usage, unsigned selector, unsigned mtype, size_t len);

/* Sets h->dane, h->dane_base (f->base or the host), and h->tlsa / h->ntlsa (pointing into f->tlsa's
 * records, which must outlive the connection) from the facts; writes a short reason for the log
 * ("no secure TLSA for mx1.example.com, DANE not applied"). Call before tlspol_plan(). */
void dane_decide(const struct dane_facts *f, struct tlspol_host *h, char *reason, size_t reasonlen);

#endif
