/* mxresolve.h - where mail for a domain goes: MX resolution and SMTP route hosts, asynchronously
 * over dns.c (delivery-policy.md §5, §6).
 *
 * mx_resolve() looks up the domain's MX records, sorts them by preference, looks up each host's
 * A/AAAA through the same resolver, and orders the addresses of each preference level by the IP
 * sort preference (Prefer IPv4/IPv6: that family first; Require: only that family). It gives one
 * flat list of next hops (struct mx_target) in the order delivery tries them. No MX records:
 * the domain's own A/AAAA (implicit MX). Null MX: bounce 5.1.10. NXDOMAIN: bounce 5.1.2.
 * A temporary DNS failure of the MX lookup: defer. An address-literal domain "[192.0.2.1]" is its
 * own next hop.
 * mx_resolve_route() does the same for an SMTP route's host list (already in priority order):
 * names with A/AAAA (never MX), address literals as they are, each with its port.
 * The `secure` flags (DNSSEC AD from a trusted resolver) of the MX answer and of each host's
 * address answers are kept, and so is the end of a host's CNAME chain: DANE needs them (§4,
 * RFC 7672 §2.2.2).
 *
 * The callback is called exactly once, from the event loop, unless mx_cancel() came first. */
#ifndef STSGATE_MXRESOLVE_H
#define STSGATE_MXRESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "cfg_route.h"
#include "dns.h"

#define MX_NAME_MAX 256
#define MX_MAX_HOSTS 32

enum mx_status {
    MX_OK = 0,   /* targets holds at least one next hop */
    MX_TEMPFAIL, /* defer: DNS temporary failure (4.4.3) */
    MX_PERMFAIL, /* bounce: NXDOMAIN (5.1.2), null MX (5.1.10), no address at all (5.4.4) */
};

/* One next hop: a host and one of its addresses. */
struct mx_target {
    char host[MX_NAME_MAX]; /* the MX host name as in the MX record, the route host, or the
                               address literal "[192.0.2.1]" */
    char addr[46];          /* the address to connect to */
    int family;             /* AF_INET or AF_INET6 */
    uint16_t port;
    uint16_t pref;     /* MX preference (route: position), for logs */
    bool literal;      /* the host is an address literal: no SNI, no name checks */
    bool mx_secure;    /* the MX answer was DNSSEC-secure (false for implicit MX and routes) */
    bool addr_secure;  /* this host's address answer was secure */
    size_t host_index; /* index of the host (same value = same host, other address) */
};

struct mx_result {
    enum mx_status status;
    char code[8];     /* enhanced status for TEMPFAIL / PERMFAIL: "4.4.3", "5.1.2", ... */
    char reason[400]; /* "DNS Hard Error looking up domain.com (MX): NXDomain" */
    bool implicit;    /* no MX records: the domain itself */
    bool null_mx;
    bool mx_secure;
    bool route;
    struct mx_target *targets;
    size_t ntargets;
    /* Hosts whose address lookup failed temporarily; shown in reasons and logs. */
    size_t nhosts, hosts_tempfail, hosts_noaddr;
    /* Per host_index (nhosts entries; NULL when nhosts is 0): the name the host's address lookup
     * ended at after following CNAMEs, or NULL when it followed none. Read it with mx_canon(). */
    char **canon;
};

/* A route host as the lookup needs it (core/cfg_route.h gives these). */
struct mx_route_host {
    const char *name; /* a host name, or an address (without brackets) when literal */
    uint16_t port;    /* 0: 25 */
    bool literal;
};

/* A route's hosts (as committed) in the order they are tried, as mx_resolve_route() takes them;
 * the names point into hosts. Returns the count. */
size_t mx_route_hosts(const struct cfg_route_hosts *hosts,
                      struct mx_route_host out[CFG_ROUTE_HOSTS_MAX]);

struct mx_lookup;
typedef void (*mx_cb)(struct mx_result *res, void *arg);

/* Starts a lookup; NULL only when out of memory. res is valid during the callback only (or keep
 * it with mx_result_move). port: the port for MX targets (25). */
struct mx_lookup *mx_resolve(struct ev_loop *loop, struct dns_resolver *r, const char *domain,
                             enum cfg_ipsort sort, uint16_t port, mx_cb cb, void *arg);
struct mx_lookup *mx_resolve_route(struct ev_loop *loop, struct dns_resolver *r,
                                   const struct mx_route_host *hosts, size_t n,
                                   enum cfg_ipsort sort, mx_cb cb, void *arg);
/* The callback will not be called. NULL is ignored; inside the callback it does nothing. */
void mx_cancel(struct mx_lookup *l);

/* The CNAME-expanded name of t's host, or NULL when its address records are its own. */
const char *mx_canon(const struct mx_result *res, const struct mx_target *t);

void mx_result_clear(struct mx_result *res);
void mx_result_move(struct mx_result *dst, struct mx_result *src);

/* Orders targets[0..n-1] in place: by pref (stable), within a pref level by the family the sort
 * preference puts first; Require removes the other family. Returns the new count. Pure. */
size_t mx_sort_targets(struct mx_target *t, size_t n, enum cfg_ipsort sort);

/* "[192.0.2.1]", "[IPv6:2001:db8::1]" -> the address and family; false when not a literal. */
bool mx_parse_literal(const char *s, char *addr, size_t addrlen, int *family);

#endif
