/* tlspolicy.h - the TLS decision for one next hop (delivery-policy.md §2, with the slots §3 and
 * §4 fill in later).
 *
 * Pure: no sockets, no DNS. tlspol_plan() turns the effective TLS option, the recipient domain,
 * the MX (or route) host name and the MTA-STS / DANE facts already known into a per-host record
 * (struct tlspol_host) that says whether to send STARTTLS, which names a certificate must carry
 * and how strictly. tlspol_event() says what to do when something happens on the connection
 * (STARTTLS not offered, handshake failed before or after the server's 220, certificate check
 * failed or passed). tlspol_check_cert() is the certificate check itself, over OpenSSL's
 * X509_check_host (RFC 6125: SAN dNSName, CN only where allowed and only when there is no DNS
 * SAN, a wildcard covers exactly one leftmost label).
 *
 * Where MTA-STS and DANE slot in: tlspol_plan() reads host->sts and host->dane, which the caller
 * sets before calling it (tlspol_host_init() leaves them "not applied"). An enforced MTA-STS
 * policy makes TLS required and verified against the MX name with SAN only, and never allows a
 * retry without STARTTLS; a listed-out host is skipped. A DANE host with usable TLSA records
 * requires TLS and hands verification to OpenSSL's DANE API (the TLSA records travel in the
 * record to the SMTP client); MTA-STS is then not applied to it. */
#ifndef STSGATE_TLSPOLICY_H
#define STSGATE_TLSPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "cfg.h"

#define TLSPOL_NAME_MAX 254
#define TLSPOL_MAX_NAMES 4
#define TLSPOL_MAX_TLSA 16

/* What happens to this host's connection. */
enum tlspol_action {
    TLSPOL_GO_PLAIN,    /* go on in the clear on this connection */
    TLSPOL_GO_TLS,      /* go on over TLS on this connection */
    TLSPOL_RETRY_PLAIN, /* close, reconnect to the same host at once without STARTTLS (logged) */
    TLSPOL_HOST_FAILED, /* try the next host; temporary failure with host->status/reason */
};

/* What happened on the connection. */
enum tlspol_event {
    TLSPOL_EV_NO_STARTTLS,      /* the EHLO reply did not offer STARTTLS */
    TLSPOL_EV_STARTTLS_REFUSED, /* STARTTLS sent, the server did not answer 220 */
    TLSPOL_EV_HANDSHAKE_FAILED, /* the server said 220, then the TLS handshake failed */
    TLSPOL_EV_CERT_FAILED,      /* handshake done; the certificate check failed */
    TLSPOL_EV_CERT_OK,          /* handshake done; the certificate check passed (or none) */
};

/* MTA-STS as it applies to this host (filled by the enforcement issue). */
enum tlspol_sts {
    TLSPOL_STS_NONE = 0, /* no policy, mode none, routed domain, MTA STS Off */
    TLSPOL_STS_ENFORCE,  /* TLS required, SAN must match the MX name, no plain retry */
    TLSPOL_STS_TESTING,  /* as the TLS option; what would have failed is logged */
};

/* DANE as it applies to this host (filled by the enforcement issue). */
enum tlspol_dane {
    TLSPOL_DANE_NONE = 0, /* DANE No, routed, or Opportunistic without secure TLSA */
    TLSPOL_DANE_AUTH,     /* secure TLSA with usable records: verify with them only */
    TLSPOL_DANE_NOAUTH,   /* secure TLSA, all unusable: TLS required, no authentication */
    TLSPOL_DANE_FAILED,   /* lookup failed or Mandatory without secure TLSA: host failed */
};

struct tlspol_tlsa {
    uint8_t usage, selector, mtype;
    const unsigned char *data; /* owned by the caller, must outlive the connection */
    size_t len;
};

/* The per-host decision record. */
struct tlspol_host {
    /* inputs */
    enum cfg_tls option;
    char domain[TLSPOL_NAME_MAX];    /* recipient domain */
    char host[TLSPOL_NAME_MAX];      /* MX host name as in the MX record, or the route host */
    bool literal;                    /* the next hop is an address literal: no SNI, no name */
    bool route;                      /* delivered through an SMTP route */
    enum tlspol_sts sts;             /* slot: MTA-STS */
    bool sts_skip;                   /* slot: enforce policy does not list this host */
    enum tlspol_dane dane;           /* slot: DANE */
    char dane_base[TLSPOL_NAME_MAX]; /* slot: TLSA base domain */
    struct tlspol_tlsa tlsa[TLSPOL_MAX_TLSA];
    size_t ntlsa;

    /* decisions (tlspol_plan) */
    bool skip;        /* never connect (MTA-STS enforce, not listed; DANE failed) */
    bool starttls;    /* send STARTTLS when offered */
    bool required;    /* no TLS -> host failed */
    bool verify;      /* check chain and name */
    bool enforce;     /* a failed check is a host failure (else: logged, delivered anyway) */
    bool san_only;    /* only SAN dNSName may match (NEVER_CHECK_SUBJECT) */
    bool plain_retry; /* after a handshake failure past the 220: reconnect without STARTTLS */
    char sni[TLSPOL_NAME_MAX];                     /* "" for none */
    char names[TLSPOL_MAX_NAMES][TLSPOL_NAME_MAX]; /* accepted reference names */
    size_t nnames;

    /* the outcome of the last event: for a host failure the enhanced status and the reason */
    char status[8];   /* "4.7.4", "4.7.5" */
    char reason[400]; /* "STARTTLS not offered by mx1.example.com" */
};

/* Clears h and sets the inputs every plan needs; sts and dane start "not applied". */
void tlspol_host_init(struct tlspol_host *h, enum cfg_tls option, const char *domain,
                      const char *host, bool literal, bool route);
/* Fills the decisions of h from its inputs. */
void tlspol_plan(struct tlspol_host *h);
/* What to do after ev; for TLSPOL_HOST_FAILED, h->status and h->reason are set. detail is the
 * event's reason (handshake error, certificate error), may be NULL. For CERT_FAILED name_reason
 * says the certificate chained but no name matched (the "peer cert does not match domain" case). */
enum tlspol_action tlspol_event(struct tlspol_host *h, enum tlspol_event ev, bool name_reason,
                                const char *detail);

/* The certificate check of h: chain_ok is OpenSSL's verification result against the trusted CAs
 * (X509_V_OK); cert the peer's leaf (NULL: none). Returns true when the check passes. *name_ok
 * (may be NULL) tells whether a reference name matched, *matched (may be NULL, TLSPOL_NAME_MAX)
 * gets the name in the certificate that matched. */
bool tlspol_check_cert(const struct tlspol_host *h, X509 *cert, bool chain_ok, bool *name_ok,
                       char *matched);
/* Whether cert carries a name matching ref under the flags of h (exposed for tests). */
bool tlspol_name_match(X509 *cert, const char *ref, bool san_only, char *matched);

/* "subjectAltName:dNSName=a, dNSName=b" or "CN=x" for the log; "" without a certificate. */
void tlspol_cert_names(X509 *cert, char *out, size_t outlen);

const char *tlspol_action_name(enum tlspol_action a);

#endif
