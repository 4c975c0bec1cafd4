/* cfg.c - the configuration model: factory values, inheritance, validation and text forms. */
#include "cfg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

void cfg_dest_factory(struct cfg_dest *d)
{
    memset(d, 0, sizeof *d);
    d->concurrency = 500;
    d->msgs_per_conn = 50;
    d->rcpt_limit = CFG_RCPT_NONE;
    d->rcpt_minutes = 60;
    d->limit = CFG_LIMIT_DOMAIN;
    d->tls = CFG_TLS_PREFERRED;
    d->dane = CFG_DANE_NO;
    d->sts = CFG_STS_OFF;
    snprintf(d->bounce_profile, sizeof d->bounce_profile, "Default");
    d->ip_sort = CFG_IPSORT_PREFER_V4;
}

void cfg_dest_inherit_all(struct cfg_dest *d)
{
    memset(d, 0, sizeof *d);
    d->rcpt_limit = CFG_RCPT_DEFAULT;
    d->rcpt_minutes = 60;
}

void cfg_setup_factory(struct cfg_setup *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->certificate, sizeof s->certificate, "Demo");
}

void cfg_dest_effective(const struct cfg_dest *entry, const struct cfg_dest *def,
                        struct cfg_dest *out)
{
    *out = *entry;
    if (!out->concurrency)
        out->concurrency = def->concurrency;
    if (!out->msgs_per_conn)
        out->msgs_per_conn = def->msgs_per_conn;
    if (out->rcpt_limit == CFG_RCPT_DEFAULT) {
        out->rcpt_limit = def->rcpt_limit;
        out->rcpt_minutes = def->rcpt_minutes;
    }
    if (out->limit == CFG_LIMIT_DEFAULT)
        out->limit = def->limit;
    if (out->tls == CFG_TLS_DEFAULT)
        out->tls = def->tls;
    if (out->dane == CFG_DANE_DEFAULT)
        out->dane = def->dane;
    if (out->sts == CFG_STS_DEFAULT)
        out->sts = def->sts;
    if (!out->bounce_profile[0])
        memcpy(out->bounce_profile, def->bounce_profile, sizeof out->bounce_profile);
    if (out->ip_sort == CFG_IPSORT_DEFAULT)
        out->ip_sort = def->ip_sort;
    if (out->tls == CFG_TLS_NO) {
        out->dane = CFG_DANE_NO;
        out->sts = CFG_STS_OFF;
    }
}

/* One DNS label of letters, digits and inner hyphens, 1-63 long. */
static bool label_valid(const char *s, size_t n)
{
    if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

static bool name_valid(const char *s, size_t n)
{
    if (n < 1 || n > CFG_DOMAIN_MAX)
        return false;
    const char *last = s;
    size_t lastlen = 0;
    for (size_t i = 0, start = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (!label_valid(s + start, i - start))
                return false;
            last = s + start;
            lastlen = i - start;
            start = i + 1;
        }
    }
    /* A name whose last label is all digits is an address, not a domain. */
    for (size_t i = 0; i < lastlen; i++)
        if (!isdigit((unsigned char)last[i]))
            return true;
    return false;
}

bool cfg_hostname_valid(const char *name)
{
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        n--;
    return name_valid(name, n);
}

bool cfg_domain_normalize(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);
    if (n == 0 || n + 1 > outlen || n > CFG_DOMAIN_MAX + 2)
        return false;
    if (in[0] == '[') {
        if (in[n - 1] != ']' || n < 3)
            return false;
        char addr[INET6_ADDRSTRLEN + 8];
        size_t alen = n - 2;
        if (alen >= sizeof addr)
            return false;
        memcpy(addr, in + 1, alen);
        addr[alen] = '\0';
        unsigned char bin[16];
        if (strncasecmp(addr, "IPv6:", 5) == 0) {
            if (inet_pton(AF_INET6, addr + 5, bin) != 1)
                return false;
        } else if (inet_pton(AF_INET, addr, bin) != 1) {
            return false;
        }
    } else {
        const char *name = in[0] == '.' ? in + 1 : in;
        size_t len = strlen(name);
        if (len > 0 && name[len - 1] == '.')
            len--;
        if (!name_valid(name, len))
            return false;
        n = (size_t)(name - in) + len;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[n] = '\0';
    /* Keep the IPv6 tag's customary spelling. */
    if (strncmp(out, "[ipv6:", 6) == 0)
        memcpy(out + 1, "IPv6", 4);
    return true;
}

bool cfg_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > CFG_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
            return false;
    return true;
}

bool cfg_parse_long(const char *s, long min, long max, long *out)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static const char *const tls_labels[] = {"Default",
                                         "No",
                                         "Preferred",
                                         "Required",
                                         "Preferred - Verify",
                                         "Required - Verify",
                                         "Required - Verify Hosted Domains"};
static const char *const tls_keys[] = {
    "", "off", "on", "required", "on_verify", "require_verify", "require_verify_hosted"};
static const char *const dane_labels[] = {"Default", "No", "Opportunistic", "Mandatory"};
static const char *const dane_keys[] = {"", "none", "opportunistic", "mandatory"};
static const char *const sts_labels[] = {"Default", "Off", "On"};
static const char *const sts_keys[] = {"", "off", "on"};
static const char *const ipsort_labels[] = {"Default", "Prefer IPv4", "Prefer IPv6", "Require IPv4",
                                            "Require IPv6"};
static const char *const ipsort_keys[] = {"", "PREFER_V4", "PREFER_V6", "REQUIRE_V4", "REQUIRE_V6"};
static const char *const limit_keys[] = {"", "host", "MXIP"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *cfg_tls_label(enum cfg_tls t)
{
    return (size_t)t < NELEM(tls_labels) ? tls_labels[t] : "?";
}

const char *cfg_dane_label(enum cfg_dane d)
{
    return (size_t)d < NELEM(dane_labels) ? dane_labels[d] : "?";
}

const char *cfg_sts_label(enum cfg_sts s)
{
    return (size_t)s < NELEM(sts_labels) ? sts_labels[s] : "?";
}

const char *cfg_ipsort_label(enum cfg_ipsort p)
{
    return (size_t)p < NELEM(ipsort_labels) ? ipsort_labels[p] : "?";
}

/* Index of value among keys[1..n-1] (case-sensitive, as the file format is); -1 when absent. */
static int key_index(const char *const *keys, size_t n, const char *value)
{
    for (size_t i = 1; i < n; i++)
        if (strcmp(keys[i], value) == 0)
            return (int)i;
    return -1;
}

static bool range_error(char err[CFG_ERR_MAX], long min, long max)
{
    snprintf(err, CFG_ERR_MAX, "The value must be a number from %ld to %ld.", min, max);
    return false;
}

static bool value_error(char err[CFG_ERR_MAX])
{
    snprintf(err, CFG_ERR_MAX, "That value is not valid.");
    return false;
}

bool cfg_dest_set_key(struct cfg_dest *d, bool is_default, const char *key, const char *value,
                      char err[CFG_ERR_MAX])
{
    long v;
    int i;
    if (strcmp(key, "max_host_concurrency") == 0) {
        if (!cfg_parse_long(value, CFG_CONCURRENCY_MIN, CFG_CONCURRENCY_MAX, &v))
            return range_error(err, CFG_CONCURRENCY_MIN, CFG_CONCURRENCY_MAX);
        d->concurrency = (int)v;
    } else if (strcmp(key, "max_messages_per_connection") == 0) {
        if (!cfg_parse_long(value, CFG_MSGS_MIN, CFG_MSGS_MAX, &v))
            return range_error(err, CFG_MSGS_MIN, CFG_MSGS_MAX);
        d->msgs_per_conn = (int)v;
    } else if (strcmp(key, "recipient_limit") == 0) {
        if (!cfg_parse_long(value, CFG_RCPT_MIN, CFG_RCPT_MAX, &v))
            return range_error(err, CFG_RCPT_MIN, CFG_RCPT_MAX);
        d->rcpt_limit = v;
    } else if (strcmp(key, "recipient_minutes") == 0) {
        if (!cfg_parse_long(value, CFG_RCPT_MINUTES_MIN, CFG_RCPT_MINUTES_MAX, &v))
            return range_error(err, CFG_RCPT_MINUTES_MIN, CFG_RCPT_MINUTES_MAX);
        d->rcpt_minutes = (int)v;
        /* Minutes alone in a domain section set a limit whose count follows nothing: no limit. */
        if (d->rcpt_limit == CFG_RCPT_DEFAULT)
            d->rcpt_limit = CFG_RCPT_NONE;
    } else if (strcmp(key, "limit_type") == 0) {
        if ((i = key_index(limit_keys, NELEM(limit_keys), value)) < 0)
            return value_error(err);
        d->limit = (enum cfg_limit)i;
    } else if (strcmp(key, "table_tls") == 0) {
        if ((i = key_index(tls_keys, NELEM(tls_keys), value)) < 0)
            return value_error(err);
        d->tls = (enum cfg_tls)i;
    } else if (strcmp(key, "dane_option") == 0) {
        if ((i = key_index(dane_keys, NELEM(dane_keys), value)) < 0)
            return value_error(err);
        d->dane = (enum cfg_dane)i;
    } else if (strcmp(key, "mta_sts") == 0) {
        if ((i = key_index(sts_keys, NELEM(sts_keys), value)) < 0)
            return value_error(err);
        d->sts = (enum cfg_sts)i;
    } else if (strcmp(key, "bounce_profile") == 0) {
        if (!cfg_name_valid(value))
            return value_error(err);
        snprintf(d->bounce_profile, sizeof d->bounce_profile, "%s", value);
    } else if (strcmp(key, "ip_sort_pref") == 0) {
        if ((i = key_index(ipsort_keys, NELEM(ipsort_keys), value)) < 0)
            return value_error(err);
        d->ip_sort = (enum cfg_ipsort)i;
    } else {
        snprintf(err, CFG_ERR_MAX, "Unknown setting \"%.64s\".", key);
        return false;
    }
    (void)is_default;
    return true;
}

bool cfg_dest_check(const struct cfg_dest *d, char err[CFG_ERR_MAX])
{
    if (d->tls == CFG_TLS_NO && (d->dane > CFG_DANE_NO || d->sts == CFG_STS_ON)) {
        snprintf(err, CFG_ERR_MAX, "DANE and MTA STS need TLS: table_tls is off.");
        return false;
    }
    return true;
}

static void put(struct strbuf *sb, bool ini, const char *key, const char *value)
{
    if (ini)
        sb_printf(sb, "%s = %s\n", key, value);
    else
        kv_put(sb, key, value);
}

static void put_long(struct strbuf *sb, bool ini, const char *key, long value)
{
    char num[32];
    snprintf(num, sizeof num, "%ld", value);
    put(sb, ini, key, num);
}

void cfg_dest_write(const struct cfg_dest *d, bool is_default, bool ini, struct strbuf *sb)
{
    if (is_default || d->concurrency)
        put_long(sb, ini, "max_host_concurrency", d->concurrency);
    if (is_default || d->msgs_per_conn)
        put_long(sb, ini, "max_messages_per_connection", d->msgs_per_conn);
    if (is_default || d->rcpt_limit != CFG_RCPT_DEFAULT) {
        put_long(sb, ini, "recipient_limit", d->rcpt_limit < 0 ? 0 : d->rcpt_limit);
        put_long(sb, ini, "recipient_minutes", d->rcpt_minutes);
    }
    if (is_default || d->limit)
        put(sb, ini, "limit_type", limit_keys[d->limit]);
    if (is_default || d->tls)
        put(sb, ini, "table_tls", tls_keys[d->tls]);
    if (is_default || d->dane)
        put(sb, ini, "dane_option", dane_keys[d->dane]);
    if (is_default || d->sts)
        put(sb, ini, "mta_sts", sts_keys[d->sts]);
    if (is_default || d->bounce_profile[0])
        put(sb, ini, "bounce_profile", d->bounce_profile);
    if (is_default || d->ip_sort)
        put(sb, ini, "ip_sort_pref", ipsort_keys[d->ip_sort]);
}

struct decode_ctx {
    struct cfg_dest *d;
    bool is_default;
};

static int decode_one(void *arg, const char *key, const char *value)
{
    struct decode_ctx *c = arg;
    char err[CFG_ERR_MAX];
    return cfg_dest_set_key(c->d, c->is_default, key, value, err) ? 0 : 1;
}

bool cfg_dest_decode(const char *body, bool is_default, struct cfg_dest *d)
{
    if (is_default)
        cfg_dest_factory(d);
    else
        cfg_dest_inherit_all(d);
    struct decode_ctx c = {d, is_default};
    return kv_parse(body, decode_one, &c) == 0;
}

void cfg_setup_encode(const struct cfg_setup *s, struct strbuf *sb)
{
    kv_put(sb, "certificate", s->certificate);
    kv_put(sb, "tls_alert", s->tls_alert ? "yes" : "no");
    kv_put(sb, "sts_proxy", s->sts_proxy);
    kv_put(sb, "tlsrpt", s->tlsrpt ? "yes" : "no");
    kv_put(sb, "tlsrpt_org", s->tlsrpt_org);
    kv_put(sb, "tlsrpt_contact", s->tlsrpt_contact);
}

static int setup_one(void *arg, const char *key, const char *value)
{
    struct cfg_setup *s = arg;
    if (strcmp(key, "certificate") == 0)
        snprintf(s->certificate, sizeof s->certificate, "%s", value);
    else if (strcmp(key, "tls_alert") == 0)
        s->tls_alert = strcmp(value, "yes") == 0;
    else if (strcmp(key, "sts_proxy") == 0)
        snprintf(s->sts_proxy, sizeof s->sts_proxy, "%s", value);
    else if (strcmp(key, "tlsrpt") == 0)
        s->tlsrpt = strcmp(value, "yes") == 0;
    else if (strcmp(key, "tlsrpt_org") == 0)
        snprintf(s->tlsrpt_org, sizeof s->tlsrpt_org, "%s", value);
    else if (strcmp(key, "tlsrpt_contact") == 0)
        snprintf(s->tlsrpt_contact, sizeof s->tlsrpt_contact, "%s", value);
    else
        return 1;
    return 0;
}

bool cfg_setup_decode(const char *body, struct cfg_setup *s)
{
    cfg_setup_factory(s);
    return kv_parse(body, setup_one, s) == 0;
}
