/* cfg_dns.h - the resolvers the agent and the shell's diagnostics use (cli.md §5 dnsconfig,
 * delivery-policy.md §4): the configured list, its unit form, and the list in effect.
 *
 * The list is one configuration unit, kind CFG_KIND_DNS, name CFG_UNIT_DNS ("DNSCONFIG"). Its body
 * holds one "server" line per resolver, in order, then the timeout and the tries:
 *
 *     server=127.0.0.1 53 yes
 *     server=2001:db8::53 5353 no
 *     timeout=5
 *     tries=3
 *
 * A server line is "<address> <port> <trusted for DNSSEC: yes|no>"; the address is an IPv4 or
 * IPv6 literal in its canonical spelling. A missing unit, or one with no server line, means the
 * system's resolvers: the nameservers of /etc/resolv.conf, the loopback ones trusted for DNSSEC
 * and no other (dns_read_resolv_conf). A missing timeout or tries key means the factory value. */
#ifndef STSGATE_CFG_DNS_H
#define STSGATE_CFG_DNS_H

#include <stdbool.h>
#include <stddef.h>

#include "dns.h"
#include "strbuf.h"

#define CFG_DNS_SERVERS_MAX DNS_MAX_SERVERS
#define CFG_DNS_TIMEOUT_DEFAULT 5
#define CFG_DNS_TIMEOUT_MIN 1
#define CFG_DNS_TIMEOUT_MAX 60
#define CFG_DNS_TRIES_DEFAULT 3
#define CFG_DNS_TRIES_MIN 1
#define CFG_DNS_TRIES_MAX 10
#define CFG_DNS_PORT_DEFAULT 53

struct cfg_dns {
    struct dns_server servers[CFG_DNS_SERVERS_MAX]; /* port is never 0 here */
    size_t n;                                       /* 0: the system's resolvers */
    unsigned timeout_s;
    unsigned tries;
};

/* No servers (the system's), timeout 5, tries 3. */
void cfg_dns_factory(struct cfg_dns *d);
/* Decodes a DNSCONFIG body (NULL: the factory list). Lines that do not parse are skipped, so a
 * damaged line never stops the agent from resolving; returns false when one was skipped. */
bool cfg_dns_decode(const char *body, struct cfg_dns *d);
void cfg_dns_encode(const struct cfg_dns *d, struct strbuf *sb);

/* An IPv4 or IPv6 address, written canonically to out (at least 46 bytes). */
bool cfg_dns_addr_normalize(const char *in, char *out, size_t outlen);
/* Whether the DNSSEC trust question defaults to yes: loopback addresses (dns_addr_is_loopback). */
bool cfg_dns_trust_default(const char *addr);

/* The resolvers in effect: the configured ones, else those of resolv_conf (NULL:
 * /etc/resolv.conf), loopback ones trusted. Fills out (CFG_DNS_SERVERS_MAX entries), returns the
 * count (at least 1) and sets *system when the list came from resolv.conf. */
size_t cfg_dns_effective(const struct cfg_dns *d, const char *resolv_conf,
                         struct dns_server out[CFG_DNS_SERVERS_MAX], bool *system);
/* A dns_config for dns_resolver_new() / dns_resolve(): the configured servers (pointing into d),
 * the timeout and the tries; with no server configured dns.c reads resolv_conf itself. */
void cfg_dns_config(const struct cfg_dns *d, const char *resolv_conf, struct dns_config *out);

/* "127.0.0.1:53 (trusted)" / "[2001:db8::53]:5353" for showchanges; the list joined by ", ", or
 * "System (/etc/resolv.conf)" when empty. */
void cfg_dns_describe(const struct cfg_dns *d, struct strbuf *sb);

#endif
