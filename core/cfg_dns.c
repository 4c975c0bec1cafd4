/* cfg_dns.c - the dnsconfig resolver list: unit form, addresses, and the list in effect. */
#include "cfg_dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "kv.h"

void cfg_dns_factory(struct cfg_dns *d)
{
    memset(d, 0, sizeof *d);
    d->timeout_s = CFG_DNS_TIMEOUT_DEFAULT;
    d->tries = CFG_DNS_TRIES_DEFAULT;
}

bool cfg_dns_addr_normalize(const char *in, char *out, size_t outlen)
{
    unsigned char bin[16];
    int family = strchr(in, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(family, in, bin) != 1)
        return false;
    return inet_ntop(family, bin, out, (socklen_t)outlen) != NULL;
}

bool cfg_dns_trust_default(const char *addr)
{
    return dns_addr_is_loopback(addr);
}

/* "<address> <port> yes|no" */
static bool parse_server(const char *value, struct dns_server *s)
{
    char addr[64], port[16], trusted[8];
    long v;
    if (sscanf(value, "%63s %15s %7s", addr, port, trusted) != 3)
        return false;
    memset(s, 0, sizeof *s);
    if (!cfg_dns_addr_normalize(addr, s->addr, sizeof s->addr) ||
        !cfg_parse_long(port, 1, 65535, &v))
        return false;
    s->port = (uint16_t)v;
    if (strcmp(trusted, "yes") == 0)
        s->trusted = true;
    else if (strcmp(trusted, "no") != 0)
        return false;
    return true;
}

struct decode_ctx {
    struct cfg_dns *d;
    bool ok;
};

static int decode_one(void *arg, const char *key, const char *value)
{
    struct decode_ctx *c = arg;
    long v;
    if (strcmp(key, "server") == 0) {
        if (c->d->n < CFG_DNS_SERVERS_MAX && parse_server(value, &c->d->servers[c->d->n]))
            c->d->n++;
        else
            c->ok = false;
    } else if (strcmp(key, "timeout") == 0) {
        if (cfg_parse_long(value, CFG_DNS_TIMEOUT_MIN, CFG_DNS_TIMEOUT_MAX, &v))
            c->d->timeout_s = (unsigned)v;
        else
            c->ok = false;
    } else if (strcmp(key, "tries") == 0) {
        if (cfg_parse_long(value, CFG_DNS_TRIES_MIN, CFG_DNS_TRIES_MAX, &v))
            c->d->tries = (unsigned)v;
        else
            c->ok = false;
    }
    return 0;
}

bool cfg_dns_decode(const char *body, struct cfg_dns *d)
{
    cfg_dns_factory(d);
    if (!body)
        return true;
    struct decode_ctx c = {d, true};
    kv_parse(body, decode_one, &c);
    return c.ok;
}

void cfg_dns_encode(const struct cfg_dns *d, struct strbuf *sb)
{
    char line[96];
    for (size_t i = 0; i < d->n; i++) {
        const struct dns_server *s = &d->servers[i];
        snprintf(line, sizeof line, "%s %u %s", s->addr,
                 (unsigned)(s->port ? s->port : CFG_DNS_PORT_DEFAULT), s->trusted ? "yes" : "no");
        kv_put(sb, "server", line);
    }
    kv_put_long(sb, "timeout", (long)d->timeout_s);
    kv_put_long(sb, "tries", (long)d->tries);
}

size_t cfg_dns_effective(const struct cfg_dns *d, const char *resolv_conf,
                         struct dns_server out[CFG_DNS_SERVERS_MAX], bool *system)
{
    *system = d->n == 0;
    if (d->n == 0)
        return dns_read_resolv_conf(resolv_conf, out, CFG_DNS_SERVERS_MAX);
    memcpy(out, d->servers, d->n * sizeof out[0]);
    return d->n;
}

void cfg_dns_config(const struct cfg_dns *d, const char *resolv_conf, struct dns_config *out)
{
    memset(out, 0, sizeof *out);
    out->servers = d->n ? d->servers : NULL;
    out->nservers = d->n;
    out->timeout_s = d->timeout_s;
    out->tries = d->tries;
    out->resolv_conf = resolv_conf;
}

void cfg_dns_describe(const struct cfg_dns *d, struct strbuf *sb)
{
    if (d->n == 0) {
        sb_append(sb, "System (/etc/resolv.conf)");
        return;
    }
    for (size_t i = 0; i < d->n; i++) {
        const struct dns_server *s = &d->servers[i];
        bool v6 = strchr(s->addr, ':') != NULL;
        sb_printf(sb, "%s%s%s%s:%u%s", i ? ", " : "", v6 ? "[" : "", s->addr, v6 ? "]" : "",
                  (unsigned)s->port, s->trusted ? " (trusted)" : "");
    }
}
