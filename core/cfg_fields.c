/* cfg_fields.c - units described as named display fields, so that showchanges can say which
 * setting changed and how, in the words LIST and DETAIL use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "cfg_bounce.h"
#include "cfg_dns.h"
#include "cfg_route.h"
#include "kv.h"
#include "tlscert.h"

static void field(struct cfg_field *f, int *n, const char *name, const char *value)
{
    if (*n >= CFG_FIELDS_MAX)
        return;
    snprintf(f[*n].name, sizeof f[*n].name, "%s", name);
    snprintf(f[*n].value, sizeof f[*n].value, "%s", value);
    (*n)++;
}

static void field_int(struct cfg_field *f, int *n, const char *name, long v)
{
    char num[32];
    if (v)
        snprintf(num, sizeof num, "%ld", v);
    else
        snprintf(num, sizeof num, "Default");
    field(f, n, name, num);
}

static int dest_fields(const char *unit, const char *body, struct cfg_field *f)
{
    bool is_default = strcmp(unit, CFG_UNIT_DEFAULT) == 0;
    struct cfg_dest d;
    char buf[64];
    int n = 0;
    cfg_dest_decode(body, is_default, &d);
    field_int(f, &n, "concurrency", d.concurrency);
    field_int(f, &n, "messages_per_connection", d.msgs_per_conn);
    if (d.rcpt_limit == CFG_RCPT_DEFAULT)
        snprintf(buf, sizeof buf, "Default");
    else if (d.rcpt_limit == CFG_RCPT_NONE)
        snprintf(buf, sizeof buf, "None");
    else
        snprintf(buf, sizeof buf, "%ld per %d minutes", d.rcpt_limit, d.rcpt_minutes);
    field(f, &n, "recipient_limit", buf);
    field(f, &n, "limit_type",
          d.limit == CFG_LIMIT_DEFAULT ? "Default"
          : d.limit == CFG_LIMIT_MXIP  ? "each mail exchanger IP address"
                                       : "entire domain");
    field(f, &n, "tls", cfg_tls_label(d.tls));
    field(f, &n, "dane", cfg_dane_label(d.dane));
    field(f, &n, "mta_sts", cfg_sts_label(d.sts));
    field(f, &n, "bounce_profile", d.bounce_profile[0] ? d.bounce_profile : "Default");
    field(f, &n, "ip_sort", cfg_ipsort_label(d.ip_sort));
    return n;
}

static int setup_fields(const char *body, struct cfg_field *f)
{
    struct cfg_setup s;
    int n = 0;
    cfg_setup_decode(body, &s);
    field(f, &n, "certificate", s.certificate);
    field(f, &n, "tls_alert", s.tls_alert ? "Yes" : "No");
    field(f, &n, "sts_proxy", s.sts_proxy[0] ? s.sts_proxy : "None");
    field(f, &n, "tls_reports", s.tlsrpt ? "Yes" : "No");
    field(f, &n, "tls_report_org", s.tlsrpt_org[0] ? s.tlsrpt_org : "None");
    field(f, &n, "tls_report_contact", s.tlsrpt_contact[0] ? s.tlsrpt_contact : "None");
    return n;
}

/* A long text (a certificate's subject) cut to what a field holds. */
static void field_cut(struct cfg_field *f, int *n, const char *name, const char *value)
{
    char cut[sizeof f->value];
    snprintf(cut, sizeof cut, "%.*s", (int)sizeof cut - 1, value);
    field(f, n, name, cut);
}

/* A certificate profile: what identifies the certificate, never the PEM or the key. */
static int cert_fields(const char *body, struct cfg_field *f)
{
    struct cert_pair p;
    struct cert_info ci;
    struct cert_list chain;
    char buf[64];
    int n = 0;
    if (!cert_profile_decode(body, &p) || !cert_describe(p.cert, &ci)) {
        field(f, &n, "certificate", "Invalid");
        cert_pair_free(&p);
        return n;
    }
    field_cut(f, &n, "subject", ci.subject);
    field_cut(f, &n, "issuer", ci.issuer);
    time_t t = (time_t)ci.not_after;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &tm);
    field(f, &n, "expires", buf);
    field(f, &n, "fingerprint", ci.sha256);
    size_t nchain = 0;
    if (p.chain[0] && cert_split(p.chain, strlen(p.chain), &chain) == CERT_OK) {
        nchain = chain.n;
        cert_list_free(&chain);
    }
    snprintf(buf, sizeof buf, "%zu", nchain);
    field(f, &n, "intermediates", buf);
    cert_pair_free(&p);
    return n;
}

/* CERTAUTHORITY: the two states and how many custom authorities there are. */
static int ca_fields(const char *body, struct cfg_field *f)
{
    struct cert_ca_cfg c;
    struct cert_list l = {0};
    char buf[32];
    int n = 0;
    cert_ca_decode(body, &c);
    field(f, &n, "custom_list", c.custom_enabled ? "Enabled" : "Disabled");
    field(f, &n, "system_list", c.system_enabled ? "Enabled" : "Disabled");
    if (c.custom[0])
        cert_split(c.custom, strlen(c.custom), &l);
    snprintf(buf, sizeof buf, "%zu", l.n);
    field(f, &n, "custom_authorities", buf);
    cert_list_free(&l);
    cert_ca_free(&c);
    return n;
}

/* A route: its hosts, as PRINT shows them. */
static int route_fields(const char *body, struct cfg_field *f)
{
    struct cfg_route_hosts *h = xmalloc(sizeof *h);
    struct strbuf sb = STRBUF_INIT;
    int n = 0;
    if (cfg_route_decode(body, h))
        cfg_route_hosts_format(h, ", ", &sb);
    field(f, &n, "hosts", sb.len ? sb_str(&sb) : "Invalid");
    sb_free(&sb);
    free(h);
    return n;
}

/* DNSCONFIG: the servers in order with their trust, the timeout and the tries. */
static int dns_fields(const char *body, struct cfg_field *f)
{
    struct cfg_dns d;
    struct strbuf sb = STRBUF_INIT;
    int n = 0;
    cfg_dns_decode(body, &d);
    cfg_dns_describe(&d, &sb);
    field(f, &n, "servers", sb_str(&sb));
    sb_free(&sb);
    field_int(f, &n, "timeout", (long)d.timeout_s);
    field_int(f, &n, "tries", (long)d.tries);
    return n;
}

static int bounce_fields(const char *body, struct cfg_field *f)
{
    struct cfg_bounce b;
    char num[32];
    int n = 0;
    cfg_bounce_decode(body, &b);
    /* field_int would show 0 as "Default"; 0 retries and a 0 lifetime are values here. */
    snprintf(num, sizeof num, "%ld", b.max_retries);
    field(f, &n, "max_retries", num);
    snprintf(num, sizeof num, "%ld", b.max_queue_lifetime);
    field(f, &n, "max_queue_lifetime", num);
    snprintf(num, sizeof num, "%ld", b.initial_retry);
    field(f, &n, "initial_retry", num);
    snprintf(num, sizeof num, "%ld", b.max_retry);
    field(f, &n, "max_retry", num);
    field(f, &n, "hard_bounce_notice", cfg_notice_label(b.hard_bounce_notice));
    return n;
}

struct raw_ctx {
    struct cfg_field *f;
    int n;
};

static int raw_one(void *arg, const char *key, const char *value)
{
    struct raw_ctx *c = arg;
    /* Multi-line values (PEM) are shown by their first line only. */
    char first[sizeof c->f[0].value];
    snprintf(first, sizeof first, "%s", value);
    char *nl = strchr(first, '\n');
    if (nl)
        snprintf(nl, sizeof first - (size_t)(nl - first), "...");
    field(c->f, &c->n, key, first);
    return 0;
}

int cfg_unit_fields(const char *kind, const char *unit, const char *body,
                    struct cfg_field fields[CFG_FIELDS_MAX])
{
    if (strcmp(kind, CFG_KIND_DEST) == 0)
        return strcmp(unit, CFG_UNIT_SETUP) == 0 ? setup_fields(body, fields)
                                                 : dest_fields(unit, body, fields);
    if (strcmp(kind, CFG_KIND_CERT) == 0)
        return strcmp(unit, CFG_UNIT_CA) == 0 ? ca_fields(body, fields) : cert_fields(body, fields);
    if (strcmp(kind, CFG_KIND_ROUTE) == 0)
        return route_fields(body, fields);
    if (strcmp(kind, CFG_KIND_DNS) == 0)
        return dns_fields(body, fields);
    if (strcmp(kind, CFG_KIND_BOUNCE) == 0)
        return bounce_fields(body, fields);
    struct raw_ctx c = {fields, 0};
    kv_parse(body, raw_one, &c);
    return c.n;
}
