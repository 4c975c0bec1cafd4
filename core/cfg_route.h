/* cfg_route.h - SMTP routes (cli.md §5 smtproutes, delivery-policy.md §5): the destination host
 * list, its text forms, the route file of IMPORT/EXPORT, and which route applies to a domain.
 *
 * A route is one configuration unit of kind CFG_KIND_ROUTE. Its name is the routed domain, stored
 * lower case: a domain ("example.com"), a subdomain wildcard (".example.com", every subdomain,
 * not example.com itself), an address literal ("[192.0.2.1]") or "ALL", the default route. Its
 * body has one key:
 *
 *     hosts=relay.example:2525/pri=10, [192.0.2.7]
 *
 * the destination hosts in the order entered, as cfg_route_hosts_format() writes them and
 * cfg_route_hosts_parse() reads them. Each host is "name", "name:port", "[address]",
 * "[address]:port" (an IPv6 address as "[2001:db8::1]" or "[IPv6:2001:db8::1]") or a bare IPv4
 * address, optionally followed by "/pri=N". A host without a port means 25, without a priority
 * means 0. The agent tries the hosts by priority, lowest first, equal priorities in the order
 * entered (cfg_route_hosts_order), resolving names with A/AAAA, never MX.
 *
 * Everything here is pure: no I/O, no state. */
#ifndef STSGATE_CFG_ROUTE_H
#define STSGATE_CFG_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "cfg.h"
#include "strbuf.h"

#define CFG_ROUTE_ALL "ALL"
#define CFG_ROUTE_HOSTS_MAX 32
#define CFG_ROUTE_PORT_DEFAULT 25
#define CFG_ROUTE_PRI_MAX 65535
/* The longest host list, as formatted: what one answer of the shell can hold and offer back as
 * EDIT's default. */
#define CFG_ROUTE_TEXT_MAX 1000
/* A route's domain: CFG_DOMAIN_MAX plus the leading dot, brackets and NUL. */
#define CFG_ROUTE_DOMAIN_BUF (CFG_DOMAIN_MAX + 3)

struct cfg_route_host {
    char name[CFG_DOMAIN_MAX + 1]; /* host name, lower case, or an address without brackets */
    bool address;                  /* name is an IPv4 or IPv6 address: connect, do not resolve */
    bool bracketed;                /* written "[address]" */
    bool ipv6_tag;                 /* written "[IPv6:address]" */
    int port;                      /* 0: not given, CFG_ROUTE_PORT_DEFAULT applies */
    long pri;                      /* -1: not given, 0 applies */
};

struct cfg_route_hosts {
    struct cfg_route_host v[CFG_ROUTE_HOSTS_MAX];
    int n;
};

/* The route domain question and file column: a domain, ".subdomain", an address literal or ALL
 * (any case). Writes the stored form (lower case, "ALL") to out (CFG_ROUTE_DOMAIN_BUF bytes). */
bool cfg_route_domain_normalize(const char *in, char *out, size_t outlen);

/* Parses a comma-separated host list (spaces around commas are ignored): at least one host, at
 * most CFG_ROUTE_HOSTS_MAX, and at most CFG_ROUTE_TEXT_MAX characters once formatted. On
 * failure returns false with the error line the shell prints in err: "The value must be a number
 * from 1 to 65535." (port), "The value must be a number from 0 to 65535." (priority), or "That
 * value is not valid." (anything else). */
bool cfg_route_hosts_parse(const char *text, struct cfg_route_hosts *out, char err[CFG_ERR_MAX]);
/* Writes the list as entered (ports and priorities only where given), hosts joined by sep
 * (", " for the unit and PRINT, "," for the route file). */
void cfg_route_hosts_format(const struct cfg_route_hosts *h, const char *sep, struct strbuf *sb);

/* The port and priority that apply to a host. */
int cfg_route_host_port(const struct cfg_route_host *h);
long cfg_route_host_pri(const struct cfg_route_host *h);
/* Fills order[0..n-1] with host indexes in delivery order: by priority, lowest first, equal
 * priorities in the order entered. */
void cfg_route_hosts_order(const struct cfg_route_hosts *h, int order[CFG_ROUTE_HOSTS_MAX]);

/* The unit body: "hosts=<formatted list>\n". decode returns false for a body without a valid
 * hosts key (out is then empty). */
void cfg_route_encode(const struct cfg_route_hosts *h, struct strbuf *sb);
bool cfg_route_decode(const char *body, struct cfg_route_hosts *out);

/* Whether a route with this exact stored name exists (the caller's lookup: the store's units). */
typedef bool (*cfg_route_exists_fn)(void *arg, const char *name);
/* Which route applies to a recipient domain (any case, a trailing dot ignored): the exact domain,
 * else the longest ".subdomain" route, else ALL. Writes the route's name to out and returns true,
 * or returns false when no route applies. */
bool cfg_route_match(const char *domain, cfg_route_exists_fn exists, void *arg, char *out,
                     size_t outlen);

/* ---- the IMPORT/EXPORT file: one route per line, "domain host[,host...]" ---- */

struct cfg_route_entry {
    char domain[CFG_ROUTE_DOMAIN_BUF];
    char *hosts; /* the normalized list, cfg_route_hosts_format(", ") */
};

struct cfg_route_table {
    struct cfg_route_entry *v;
    size_t n, cap;
};

/* Reads a route file: blank lines and lines starting with '#' are ignored; the domain and the
 * host list are separated by spaces or tabs. All-or-nothing: returns the number of errors, each
 * appended to errors as "Line N: <error line>\n" (a bad domain, a bad host list, a domain twice:
 * "The value example.com is already in the routing table.", ALL twice: "There is already a
 * default route set."). With no error, out holds the routes sorted by domain. */
int cfg_route_import(const char *text, struct cfg_route_table *out, struct strbuf *errors);
/* Appends one file line for a route. */
void cfg_route_export_line(const char *domain, const struct cfg_route_hosts *h, struct strbuf *sb);
void cfg_route_table_free(struct cfg_route_table *t);

#endif
