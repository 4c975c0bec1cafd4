/* cfg_fields.c - units described as named display fields, so that showchanges can say which
 * setting changed and how, in the words LIST and DETAIL use. */
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "kv.h"

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
    struct raw_ctx c = {fields, 0};
    kv_parse(body, raw_one, &c);
    return c.n;
}
