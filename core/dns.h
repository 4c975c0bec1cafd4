/* dns.h - asynchronous DNS for stsgate: c-ares 1.18 on the shared event loop, with DNSSEC status.
 *
 * What it gives: for a name and one of the types A, AAAA, MX, TXT, TLSA, CNAME, a struct
 * dns_answer (dns_parse.h): a status that keeps temporary failures (SERVFAIL, TIMEOUT, ...) apart
 * from "no record" (NODATA, NXDOMAIN), the records of the type at the end of the CNAME chain,
 * the canonical name, and `secure`.
 *
 * How `secure` is decided: secure = the reply has the AD bit AND the server that sent that reply
 * is trusted for DNSSEC. We know exactly which server answered because each configured server
 * gets its own c-ares channel holding only that server; dns.c itself moves from one server to the
 * next (c-ares's own failover would hide which server answered). So a list mixing a trusted
 * local validator with an untrusted fallback still gives secure answers whenever the validator
 * answers, and never marks an answer from the fallback secure, even with a forged AD bit.
 * Queries are built by hand (ares_create_query with EDNS 1232, AD and DO set), since c-ares 1.18
 * never asks for DNSSEC; ARES_FLAG_NOCHECKRESP lets SERVFAIL (a bogus answer) through.
 *
 * Server order and failover: attempt k goes to server k mod n, for tries x n attempts in all, each
 * waiting timeout seconds (worst case timeout x tries x n). A timeout, a network error, or a
 * REFUSED / NOTIMP / FORMERR rcode moves to the next attempt. SERVFAIL, NXDOMAIN, NOERROR and an
 * unparsable reply are final: in particular a validator's SERVFAIL for a bogus zone is never
 * retried on another (perhaps untrusted) server that could turn it into an insecure answer.
 * A truncated (TC) UDP reply is retried over TCP by c-ares, to the same server, in the same try.
 *
 * Resolvers: the configured list; when it is empty, the nameservers of /etc/resolv.conf, trusting
 * the loopback ones (127.0.0.0/8, ::1) and no other; a resolv.conf with none means 127.0.0.1
 * (as in libc), trusted.
 *
 * Callbacks are never called from inside dns_query(); they run from the event loop, one at a time.
 * A callback may start queries, cancel queries, or free the resolver.
 */
#ifndef STSGATE_DNS_H
#define STSGATE_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns_parse.h"
#include "evloop.h"

#define DNS_MAX_SERVERS 8
#define DNS_DEFAULT_TIMEOUT_S 5
#define DNS_DEFAULT_TRIES 3

struct dns_server {
    char addr[46]; /* an IPv4 or IPv6 literal (INET6_ADDRSTRLEN) */
    uint16_t port; /* 0 means 53 */
    bool trusted;  /* trusted to validate DNSSEC: its AD bit is believed */
};

struct dns_config {
    const struct dns_server *servers; /* may be NULL when nservers is 0 */
    size_t nservers;                  /* 0: use resolv_conf */
    unsigned timeout_s;               /* per attempt; 0 means DNS_DEFAULT_TIMEOUT_S */
    unsigned tries;                   /* rounds over the servers; 0 means DNS_DEFAULT_TRIES */
    unsigned timeout_ms;              /* when nonzero, overrides timeout_s (tests) */
    const char *resolv_conf;          /* NULL means /etc/resolv.conf */
};

struct dns_resolver;
struct dns_query;

/* The answer is valid only during the call: keep it with dns_answer_move(). Never NULL. */
typedef void (*dns_cb)(struct dns_answer *ans, void *arg);

/* Returns 0, or -1 with a reason in err (bad server address, out of memory, c-ares failure).
 * The loop must outlive the resolver. */
int dns_resolver_new(struct ev_loop *loop, const struct dns_config *cfg, struct dns_resolver **out,
                     char *err, size_t errlen);
/* Pending queries are dropped: their callbacks are not called. Allowed inside a callback. */
void dns_resolver_free(struct dns_resolver *r);

/* The servers in use (configured or from resolv.conf), in order; NULL past the end. */
const struct dns_server *dns_resolver_server(const struct dns_resolver *r, size_t i);

/* Starts a lookup; cb is called exactly once, later, unless the query is cancelled or the resolver
 * freed first. Returns NULL (and cb is never called) only when out of memory, or when
 * dns_resolver_free() was already called from a callback. The handle is valid until the
 * callback returns or dns_query_cancel(). Unsupported types and unusable names answer DNS_ERROR
 * and DNS_BADNAME through the callback. */
struct dns_query *dns_query(struct dns_resolver *r, const char *name, uint16_t type, dns_cb cb,
                            void *arg);
/* The callback will not be called. NULL is ignored. */
void dns_query_cancel(struct dns_query *q);

/* Blocking lookup on a private loop, for the shell's one-shot commands (`dig`, `daneverify`).
 * Fills out (call dns_answer_clear() after) and returns out->status. */
enum dns_status dns_resolve(const struct dns_config *cfg, const char *name, uint16_t type,
                            struct dns_answer *out);

/* The nameservers of a resolv.conf (path NULL: /etc/resolv.conf), port 53, loopback ones trusted.
 * Scoped IPv6 addresses (fe80::1%eth0) are skipped. With none usable: 127.0.0.1, trusted.
 * Returns the number stored (at least 1, at most max). */
size_t dns_read_resolv_conf(const char *path, struct dns_server *out, size_t max);

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. False for anything that is not an address. */
bool dns_addr_is_loopback(const char *addr);

#endif
