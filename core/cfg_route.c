/* cfg_route.c - SMTP route host lists, route units, the route file and route matching. */
#include "cfg_route.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kv.h"

static const char msg_invalid[] = "That value is not valid.";

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Copies s[0..n) without the blanks at both ends into out (outlen bytes); false when too long. */
static bool copy_trimmed(const char *s, size_t n, char *out, size_t outlen)
{
    while (n > 0 && is_blank(*s))
        s++, n--;
    while (n > 0 && is_blank(s[n - 1]))
        n--;
    if (n >= outlen)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

bool cfg_route_domain_normalize(const char *in, char *out, size_t outlen)
{
    if (strcasecmp(in, CFG_ROUTE_ALL) == 0) {
        if (outlen < sizeof CFG_ROUTE_ALL)
            return false;
        memcpy(out, CFG_ROUTE_ALL, sizeof CFG_ROUTE_ALL);
        return true;
    }
    return cfg_domain_normalize(in, out, outlen);
}

static bool fail(char *err, const char *msg)
{
    snprintf(err, CFG_ERR_MAX, "%s", msg);
    return false;
}

/* "[address]" or "[IPv6:address]": fills the address fields of h. */
static bool parse_literal(const char *s, size_t n, struct cfg_route_host *h)
{
    char addr[64];
    unsigned char bin[16];
    if (n < 3 || s[0] != '[' || s[n - 1] != ']' || n - 2 >= sizeof addr)
        return false;
    memcpy(addr, s + 1, n - 2);
    addr[n - 2] = '\0';
    const char *a = addr;
    int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (strncasecmp(addr, "IPv6:", 5) == 0) {
        a = addr + 5;
        family = AF_INET6;
        h->ipv6_tag = true;
    }
    if (inet_pton(family, a, bin) != 1)
        return false;
    /* The canonical spelling, so that two spellings of one address compare equal. */
    if (!inet_ntop(family, bin, h->name, sizeof h->name))
        return false;
    h->address = true;
    h->bracketed = true;
    return true;
}

/* One host: everything between two commas, blanks already trimmed. */
static bool parse_host(const char *s, struct cfg_route_host *h, char *err)
{
    memset(h, 0, sizeof *h);
    h->pri = -1;
    size_t n = strlen(s);
    if (n == 0)
        return fail(err, msg_invalid);

    /* "/pri=N" ends the host when present. */
    const char *slash = strchr(s, '/');
    if (slash) {
        if (strncasecmp(slash, "/pri=", 5) != 0)
            return fail(err, msg_invalid);
        if (!cfg_parse_long(slash + 5, 0, CFG_ROUTE_PRI_MAX, &h->pri))
            return fail(err, "The value must be a number from 0 to 65535.");
        n = (size_t)(slash - s);
    }

    /* The port follows the last ':' after a literal's ']', or the only ':' of a name. */
    size_t hostlen = n;
    const char *port = NULL;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return fail(err, msg_invalid);
        hostlen = (size_t)(close - s) + 1;
        if (hostlen < n) {
            if (s[hostlen] != ':')
                return fail(err, msg_invalid);
            port = s + hostlen + 1;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        /* A second ':' is a bare IPv6 address, which must be bracketed. */
        if (colon && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)))
            return fail(err, msg_invalid);
        if (colon) {
            hostlen = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    if (port) {
        char num[16];
        long v;
        size_t plen = n - (size_t)(port - s);
        if (plen == 0 || plen >= sizeof num)
            return fail(err, "The value must be a number from 1 to 65535.");
        memcpy(num, port, plen);
        num[plen] = '\0';
        if (!cfg_parse_long(num, 1, 65535, &v))
            return fail(err, "The value must be a number from 1 to 65535.");
        h->port = (int)v;
    }

    if (hostlen == 0)
        return fail(err, msg_invalid);
    if (s[0] == '[')
        return parse_literal(s, hostlen, h) ? true : fail(err, msg_invalid);

    char name[CFG_DOMAIN_MAX + 2];
    unsigned char bin[4];
    if (hostlen >= sizeof name)
        return fail(err, msg_invalid);
    memcpy(name, s, hostlen);
    name[hostlen] = '\0';
    if (inet_pton(AF_INET, name, bin) == 1) {
        memcpy(h->name, name, hostlen + 1); /* at most 15 characters */
        h->address = true;
        return true;
    }
    if (!cfg_hostname_valid(name))
        return fail(err, msg_invalid);
    if (hostlen > 0 && name[hostlen - 1] == '.')
        name[--hostlen] = '\0';
    for (size_t i = 0; i < hostlen; i++)
        h->name[i] = (char)tolower((unsigned char)name[i]);
    h->name[hostlen] = '\0';
    return true;
}

bool cfg_route_hosts_parse(const char *text, struct cfg_route_hosts *out, char err[CFG_ERR_MAX])
{
    out->n = 0;
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char one[CFG_DOMAIN_MAX + 80];
        if (out->n == CFG_ROUTE_HOSTS_MAX || !copy_trimmed(p, len, one, sizeof one)) {
            out->n = 0;
            return fail(err, msg_invalid);
        }
        if (!parse_host(one, &out->v[out->n], err)) {
            out->n = 0;
            return false;
        }
        out->n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    struct strbuf sb = STRBUF_INIT;
    cfg_route_hosts_format(out, ", ", &sb);
    bool fits = sb.len <= CFG_ROUTE_TEXT_MAX;
    sb_free(&sb);
    if (!fits) {
        out->n = 0;
        return fail(err, msg_invalid);
    }
    return true;
}

void cfg_route_hosts_format(const struct cfg_route_hosts *h, const char *sep, struct strbuf *sb)
{
    for (int i = 0; i < h->n; i++) {
        const struct cfg_route_host *x = &h->v[i];
        if (i > 0)
            sb_append(sb, sep);
        if (x->bracketed)
            sb_printf(sb, "[%s%s]", x->ipv6_tag ? "IPv6:" : "", x->name);
        else
            sb_append(sb, x->name);
        if (x->port)
            sb_printf(sb, ":%d", x->port);
        if (x->pri >= 0)
            sb_printf(sb, "/pri=%ld", x->pri);
    }
}

int cfg_route_host_port(const struct cfg_route_host *h)
{
    return h->port ? h->port : CFG_ROUTE_PORT_DEFAULT;
}

long cfg_route_host_pri(const struct cfg_route_host *h)
{
    return h->pri >= 0 ? h->pri : 0;
}

void cfg_route_hosts_order(const struct cfg_route_hosts *h, int order[CFG_ROUTE_HOSTS_MAX])
{
    /* Insertion sort: stable, so equal priorities keep the order entered; n is small. */
    for (int i = 0; i < h->n; i++) {
        int j = i;
        while (j > 0 && cfg_route_host_pri(&h->v[order[j - 1]]) > cfg_route_host_pri(&h->v[i])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
}

void cfg_route_encode(const struct cfg_route_hosts *h, struct strbuf *sb)
{
    struct strbuf list = STRBUF_INIT;
    cfg_route_hosts_format(h, ", ", &list);
    kv_put(sb, "hosts", sb_str(&list));
    sb_free(&list);
}

static int decode_one(void *arg, const char *key, const char *value)
{
    struct cfg_route_hosts *h = arg;
    char err[CFG_ERR_MAX];
    if (strcmp(key, "hosts") == 0 && cfg_route_hosts_parse(value, h, err))
        return 1;
    return 0;
}

bool cfg_route_decode(const char *body, struct cfg_route_hosts *out)
{
    out->n = 0;
    return kv_parse(body, decode_one, out) == 1;
}

bool cfg_route_match(const char *domain, cfg_route_exists_fn exists, void *arg, char *out,
                     size_t outlen)
{
    char d[CFG_ROUTE_DOMAIN_BUF];
    size_t n = strlen(domain);
    if (n > 0 && domain[n - 1] == '.')
        n--;
    if (n == 0 || n >= sizeof d)
        return false;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tolower((unsigned char)domain[i]);
    d[n] = '\0';
    const char *found = NULL;
    if (exists(arg, d))
        found = d;
    /* ".a.example.com" before ".example.com": the first hit is the longest wildcard. An address
     * literal has no subdomains. */
    for (const char *p = strchr(d + 1, '.'); !found && p && d[0] != '['; p = strchr(p + 1, '.'))
        if (exists(arg, p))
            found = p;
    if (!found && exists(arg, CFG_ROUTE_ALL))
        found = CFG_ROUTE_ALL;
    if (!found || strlen(found) >= outlen)
        return false;
    snprintf(out, outlen, "%s", found);
    return true;
}

/* ---- the route file ---- */

static int add_error(struct strbuf *errors, int line, const char *text)
{
    sb_printf(errors, "Line %d: %s\n", line, text);
    return 1;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct cfg_route_entry *x = a, *y = b;
    return strcmp(x->domain, y->domain);
}

/* One non-blank, non-comment line. Returns the number of errors (0 or 1). */
static int import_line(char *line, int lineno, struct cfg_route_table *t, struct strbuf *errors)
{
    char err[CFG_ERR_MAX], domain[CFG_ROUTE_DOMAIN_BUF];
    size_t dlen = strcspn(line, " \t");
    char *rest = line + dlen;
    while (is_blank(*rest))
        rest++;
    line[dlen] = '\0';
    if (!cfg_route_domain_normalize(line, domain, sizeof domain))
        return add_error(errors, lineno, "Not a valid domain name.");
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].domain, domain) != 0)
            continue;
        if (strcmp(domain, CFG_ROUTE_ALL) == 0)
            return add_error(errors, lineno, "There is already a default route set.");
        snprintf(err, sizeof err, "The value %s is already in the routing table.", domain);
        return add_error(errors, lineno, err);
    }
    struct cfg_route_hosts *h = xmalloc(sizeof *h);
    if (!*rest || !cfg_route_hosts_parse(rest, h, err)) {
        free(h);
        return add_error(errors, lineno, *rest ? err : msg_invalid);
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->v = xrealloc(t->v, t->cap * sizeof *t->v);
    }
    struct cfg_route_entry *e = &t->v[t->n++];
    memcpy(e->domain, domain, sizeof domain);
    struct strbuf sb = STRBUF_INIT;
    cfg_route_hosts_format(h, ", ", &sb);
    e->hosts = sb_steal(&sb);
    free(h);
    return 0;
}

int cfg_route_import(const char *text, struct cfg_route_table *out, struct strbuf *errors)
{
    int count = 0, lineno = 0;
    char *copy = xstrdup(text);
    memset(out, 0, sizeof *out);
    /* Walk by hand: strtok_r would merge empty lines and lose their numbers. */
    for (char *line = copy, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        size_t n = strlen(line);
        while (n > 0 && is_blank(line[n - 1]))
            line[--n] = '\0';
        while (is_blank(*line))
            line++;
        if (!*line || *line == '#')
            continue;
        count += import_line(line, lineno, out, errors);
    }
    free(copy);
    if (count) {
        cfg_route_table_free(out);
        return count;
    }
    if (out->n)
        qsort(out->v, out->n, sizeof out->v[0], cmp_entry);
    return 0;
}

void cfg_route_export_line(const char *domain, const struct cfg_route_hosts *h, struct strbuf *sb)
{
    sb_printf(sb, "%s ", domain);
    cfg_route_hosts_format(h, ",", sb);
    sb_append(sb, "\n");
}

void cfg_route_table_free(struct cfg_route_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].hosts);
    free(t->v);
    memset(t, 0, sizeof *t);
}
