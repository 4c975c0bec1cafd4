/* destconfig.c - the destconfig command (cli.md §2): destination controls per domain, the DEFAULT
 * entry, global SETUP, and the table's IMPORT and EXPORT.
 *
 * Every operation builds a complete entry first and records it with one db_session_put at the
 * end, so an operation abandoned half way (Ctrl-C, EOF, an empty answer) records nothing. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "cfg_ini.h"
#include "kv.h"
#include "sh.h"
#include "strbuf.h"

#define DOMAIN_BUF (CFG_DOMAIN_MAX + 3)
#define MAX_PROFILES 256

static const char *const tls_items[] = {"No",
                                        "Preferred",
                                        "Required",
                                        "Preferred - Verify",
                                        "Required - Verify",
                                        "Required - Verify Hosted Domains"};
static const char *const dane_items[] = {"No", "Opportunistic", "Mandatory"};
static const char *const sts_items[] = {"Off", "On"};
static const char *const ipsort_items[] = {"Prefer IPv4", "Prefer IPv6", "Require IPv4",
                                           "Require IPv6"};

static const char tls_reminder[] =
    "You have chosen to enable TLS. Please use the 'certconfig' "
    "command to ensure that there is a valid certificate configured.";
static const char route_note[] =
    "Note: DANE and MTA STS will not be enforced for domains that have SMTP Routes configured.";
static const char default_sts_warning[] =
    "Warning: MTA STS in the default applies to every destination without its own entry. Each "
    "enabled destination adds policy lookups; verify the domains first.";

/* ---- reading the session's view ---- */

static bool is_special(const char *name)
{
    return strcmp(name, CFG_UNIT_DEFAULT) == 0 || strcmp(name, CFG_UNIT_SETUP) == 0;
}

static void load_default(struct sh *sh, struct cfg_dest *def)
{
    const char *body = db_session_get(sh->session, CFG_KIND_DEST, CFG_UNIT_DEFAULT);
    if (body)
        cfg_dest_decode(body, true, def);
    else
        cfg_dest_factory(def);
}

static bool load_entry(struct sh *sh, const char *domain, struct cfg_dest *d)
{
    const char *body = db_session_get(sh->session, CFG_KIND_DEST, domain);
    if (!body)
        return false;
    cfg_dest_decode(body, false, d);
    return true;
}

static void store_entry(struct sh *sh, const char *name, const struct cfg_dest *d)
{
    struct strbuf sb = STRBUF_INIT;
    cfg_dest_write(d, strcmp(name, CFG_UNIT_DEFAULT) == 0, false, &sb);
    db_session_put(sh->session, CFG_KIND_DEST, name, sb_str(&sb));
    sb_free(&sb);
}

struct entries {
    struct cfg_dest_entry *v;
    size_t n, cap;
};

static int collect_one(void *arg, const char *name, const char *body)
{
    struct entries *e = arg;
    if (is_special(name))
        return 0;
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->v = xrealloc(e->v, e->cap * sizeof *e->v);
    }
    struct cfg_dest_entry *x = &e->v[e->n++];
    snprintf(x->domain, sizeof x->domain, "%s", name);
    cfg_dest_decode(body, false, &x->d);
    return 0;
}

/* Every entry but DEFAULT and SETUP, sorted by domain. */
static void collect(struct sh *sh, struct entries *e)
{
    memset(e, 0, sizeof *e);
    db_session_each(sh->session, CFG_KIND_DEST, collect_one, e);
}

static int count_one(void *arg, const char *name, const char *body)
{
    (void)body;
    if (!is_special(name))
        (*(size_t *)arg)++;
    return 0;
}

static size_t count_entries(struct sh *sh)
{
    size_t n = 0;
    db_session_each(sh->session, CFG_KIND_DEST, count_one, &n);
    return n;
}

struct names {
    char v[MAX_PROFILES][CFG_NAME_MAX + 1];
    const char *items[MAX_PROFILES];
    int n;
};

static int name_one(void *arg, const char *name, const char *body)
{
    struct names *ns = arg;
    (void)body;
    if (ns->n < MAX_PROFILES && strcmp(name, "Default") != 0 && strcmp(name, CFG_UNIT_CA) != 0) {
        snprintf(ns->v[ns->n], sizeof ns->v[0], "%s", name);
        ns->items[ns->n] = ns->v[ns->n];
        ns->n++;
    }
    return 0;
}

/* Bounce profiles: Default first, then the others by name. */
static void bounce_profiles(struct sh *sh, struct names *ns)
{
    ns->n = 0;
    snprintf(ns->v[0], sizeof ns->v[0], "Default");
    ns->items[0] = ns->v[0];
    ns->n = 1;
    db_session_each(sh->session, CFG_KIND_BOUNCE, name_one, ns);
}

static int index_of(const struct names *ns, const char *name)
{
    for (int i = 0; i < ns->n; i++)
        if (strcmp(ns->items[i], name) == 0)
            return i + 1;
    return 1;
}

/* Whether an SMTP route covers domain: exact, a .subdomain route, or ALL (cli.md §5). */
static bool has_route(struct sh *sh, const char *domain)
{
    if (db_session_get(sh->session, CFG_KIND_ROUTE, domain) ||
        db_session_get(sh->session, CFG_KIND_ROUTE, "ALL"))
        return true;
    for (const char *p = strchr(domain, '.'); p; p = strchr(p + 1, '.'))
        if (db_session_get(sh->session, CFG_KIND_ROUTE, p))
            return true;
    return false;
}

/* ---- dialogues ---- */

#define ASK(call)                                                                                  \
    do {                                                                                           \
        enum sh_rc rc_ = (call);                                                                   \
        if (rc_ != SH_OK)                                                                          \
            return rc_;                                                                            \
    } while (0)

static enum sh_rc ask_sts_on(struct sh *sh, const char *domain)
{
    sh_printf(sh, "\n%s\n", route_note);
    if (domain && has_route(sh, domain))
        sh_printf(sh,
                  "\nWarning: %s has an SMTP Route configured. MTA STS will not be enforced "
                  "for it.\n",
                  domain);
    return SH_OK;
}

/* The questions of NEW and EDIT share these: the entry's domain, whether it is an EDIT, the
 * values the questions offer (base: the entry's own, or all "use the default" for NEW), the
 * DEFAULT entry for what base leaves to it, and the entry being built (d). */
struct entry_q {
    const char *domain;
    bool edit;
    struct cfg_dest base;
    const struct cfg_dest *def;
    struct cfg_dest *d;
};

/* Concurrency, messages per connection, recipient limit, and how the limits apply. */
static enum sh_rc ask_limits(struct sh *sh, const struct entry_q *q)
{
    const struct cfg_dest *base = &q->base, *def = q->def;
    struct cfg_dest *d = q->d;
    char text[600];
    bool yes;
    long v, dv;
    int c;
    snprintf(text, sizeof text, "Do you wish to configure a concurrency limit for %s?", q->domain);
    ASK(sh_ask_yesno(sh, text, q->edit ? base->concurrency != 0 : true, &yes));
    if (yes) {
        dv = base->concurrency ? base->concurrency : def->concurrency;
        snprintf(text, sizeof text, "Enter the max concurrency limit for \"%s\".", q->domain);
        ASK(sh_ask_number(sh, text, &dv, CFG_CONCURRENCY_MIN, CFG_CONCURRENCY_MAX, &v));
        d->concurrency = (int)v;
    }

    ASK(sh_ask_yesno(sh, "Do you wish to apply a messages-per-connection limit to this domain?",
                     q->edit && base->msgs_per_conn != 0, &yes));
    if (yes) {
        dv = base->msgs_per_conn ? base->msgs_per_conn : def->msgs_per_conn;
        snprintf(text, sizeof text, "Enter the max number of messages per connection for \"%s\".",
                 q->domain);
        ASK(sh_ask_number(sh, text, &dv, CFG_MSGS_MIN, CFG_MSGS_MAX, &v));
        d->msgs_per_conn = (int)v;
    }

    bool own_rcpt = base->rcpt_limit != CFG_RCPT_DEFAULT;
    ASK(sh_ask_yesno(sh, "Do you wish to apply a recipient limit to this domain?",
                     q->edit && own_rcpt, &yes));
    if (yes) {
        dv = own_rcpt ? base->rcpt_minutes : def->rcpt_minutes;
        ASK(sh_ask_number(sh, "Enter the number of minutes used to measure the recipient limit.",
                          &dv, CFG_RCPT_MINUTES_MIN, CFG_RCPT_MINUTES_MAX, &v));
        d->rcpt_minutes = (int)v;
        bool has_dv = true;
        if (own_rcpt && base->rcpt_limit > 0)
            dv = base->rcpt_limit;
        else if (!own_rcpt && def->rcpt_limit > 0)
            dv = def->rcpt_limit;
        else
            has_dv = own_rcpt, dv = 0;
        snprintf(text, sizeof text, "Enter the max number of recipients per %d minutes for \"%s\".",
                 d->rcpt_minutes, q->domain);
        ASK(sh_ask_number(sh, text, has_dv ? &dv : NULL, CFG_RCPT_MIN, CFG_RCPT_MAX, &v));
        d->rcpt_limit = v;
    }

    if (d->concurrency || d->rcpt_limit != CFG_RCPT_DEFAULT) {
        char one[400];
        snprintf(one, sizeof one, "One limit applies to the entire domain %s", q->domain);
        const char *items[] = {one, "Separate limit for each mail exchanger IP address"};
        snprintf(text, sizeof text, "Select how you want to apply the limits for %s:", q->domain);
        ASK(sh_ask_list(sh, text, items, 2, base->limit ? (int)base->limit : (int)def->limit, &c));
        d->limit = (enum cfg_limit)c;
    }
    return SH_OK;
}

/* The TLS option, then (unless it is No) the reminder, DANE and MTA STS. */
static enum sh_rc ask_tls(struct sh *sh, const struct entry_q *q)
{
    const struct cfg_dest *base = &q->base, *def = q->def;
    struct cfg_dest *d = q->d;
    bool yes;
    int c;
    ASK(sh_ask_yesno(sh, "Do you wish to apply a specific TLS setting for this domain?",
                     q->edit && base->tls != CFG_TLS_DEFAULT, &yes));
    if (!yes)
        return SH_OK;
    ASK(sh_ask_list(sh, "Do you want to use TLS support?", tls_items, 6,
                    base->tls ? (int)base->tls : (int)def->tls, &c));
    d->tls = (enum cfg_tls)c;
    if (d->tls == CFG_TLS_NO) {
        d->dane = CFG_DANE_NO;
        d->sts = CFG_STS_OFF;
        return SH_OK;
    }
    sh_printf(sh, "\n%s\n", tls_reminder);
    ASK(sh_ask_yesno(sh, "Do you wish to configure DANE support?",
                     q->edit && base->dane != CFG_DANE_DEFAULT, &yes));
    if (yes) {
        ASK(sh_ask_list(sh, "Do you want to use DANE support?", dane_items, 3,
                        base->dane ? (int)base->dane : (int)def->dane, &c));
        d->dane = (enum cfg_dane)c;
    }
    ASK(sh_ask_yesno(sh, "Do you wish to configure MTA STS support?",
                     q->edit && base->sts != CFG_STS_DEFAULT, &yes));
    if (yes) {
        ASK(sh_ask_list(sh, "Do you want to use MTA STS support?", sts_items, 2,
                        base->sts ? (int)base->sts : (int)def->sts, &c));
        d->sts = (enum cfg_sts)c;
        if (d->sts == CFG_STS_ON)
            ASK(ask_sts_on(sh, q->domain));
    }
    return SH_OK;
}

/* The bounce profile and the IP sort preference. */
static enum sh_rc ask_bounce_and_sort(struct sh *sh, const struct entry_q *q)
{
    const struct cfg_dest *base = &q->base, *def = q->def;
    struct cfg_dest *d = q->d;
    bool yes;
    int c;
    ASK(sh_ask_yesno(sh, "Do you wish to apply a specific bounce profile to this domain?",
                     q->edit && base->bounce_profile[0], &yes));
    if (yes) {
        struct names *ns = xmalloc(sizeof *ns);
        bounce_profiles(sh, ns);
        int def_i =
            index_of(ns, base->bounce_profile[0] ? base->bounce_profile : def->bounce_profile);
        enum sh_rc rc = sh_ask_list(sh, "Please choose a bounce profile to apply:", ns->items,
                                    ns->n, def_i, &c);
        if (rc == SH_OK)
            snprintf(d->bounce_profile, sizeof d->bounce_profile, "%s", ns->items[c - 1]);
        free(ns);
        if (rc != SH_OK)
            return rc;
    }

    ASK(sh_ask_yesno(sh, "Do you wish to apply a specific IP sort preference to this domain?",
                     q->edit && base->ip_sort != CFG_IPSORT_DEFAULT, &yes));
    if (yes) {
        char text[600];
        snprintf(text, sizeof text,
                 "For the domain %s, how should the appliance sort IP addresses within an MX "
                 "preference level?",
                 q->domain);
        ASK(sh_ask_list(sh, text, ipsort_items, 4,
                        base->ip_sort ? (int)base->ip_sort : (int)def->ip_sort, &c));
        d->ip_sort = (enum cfg_ipsort)c;
    }
    return SH_OK;
}

/* NEW and EDIT: own is the entry being edited, NULL for a new one. */
static enum sh_rc entry_dialogue(struct sh *sh, const char *domain, const struct cfg_dest *own,
                                 const struct cfg_dest *def, struct cfg_dest *d)
{
    struct entry_q q = {.domain = domain, .edit = own != NULL, .def = def, .d = d};
    if (own)
        q.base = *own;
    else
        cfg_dest_inherit_all(&q.base);
    cfg_dest_inherit_all(d);
    ASK(ask_limits(sh, &q));
    ASK(ask_tls(sh, &q));
    return ask_bounce_and_sort(sh, &q);
}

static enum sh_rc ask_domain(struct sh *sh, const char *text, char *domain)
{
    return sh_ask_text(sh, text, NULL, sh_valid_domain, domain, DOMAIN_BUF);
}

static void not_found(struct sh *sh, const char *domain)
{
    sh_error(sh, "The domain \"%s\" was not found in the destination control table.", domain);
}

static enum sh_rc op_new(struct sh *sh)
{
    char domain[DOMAIN_BUF];
    struct cfg_dest def, d;
    ASK(ask_domain(sh, "Enter the domain you wish to configure.", domain));
    if (load_entry(sh, domain, &d)) {
        sh_error(sh, "The domain \"%s\" already exists in the destination control table.", domain);
        return SH_OK;
    }
    load_default(sh, &def);
    ASK(entry_dialogue(sh, domain, NULL, &def, &d));
    store_entry(sh, domain, &d);
    return SH_OK;
}

static enum sh_rc op_edit(struct sh *sh)
{
    char domain[DOMAIN_BUF];
    struct cfg_dest def, own, d;
    ASK(ask_domain(sh, "Enter the domain you wish to edit.", domain));
    if (!load_entry(sh, domain, &own)) {
        not_found(sh, domain);
        return SH_OK;
    }
    load_default(sh, &def);
    ASK(entry_dialogue(sh, domain, &own, &def, &d));
    store_entry(sh, domain, &d);
    return SH_OK;
}

static enum sh_rc op_delete(struct sh *sh)
{
    char domain[DOMAIN_BUF];
    struct cfg_dest d;
    ASK(ask_domain(sh, "Enter the domain you wish to delete.", domain));
    if (!load_entry(sh, domain, &d)) {
        not_found(sh, domain);
        return SH_OK;
    }
    db_session_put(sh->session, CFG_KIND_DEST, domain, NULL);
    return SH_OK;
}

static enum sh_rc op_default(struct sh *sh)
{
    struct cfg_dest cur, d;
    long v, dv;
    int c;
    bool yes;
    char text[200];
    load_default(sh, &cur);
    d = cur;

    dv = cur.concurrency;
    ASK(sh_ask_number(sh, "Enter the default maximum concurrency limit.", &dv, CFG_CONCURRENCY_MIN,
                      CFG_CONCURRENCY_MAX, &v));
    d.concurrency = (int)v;
    dv = cur.msgs_per_conn;
    ASK(sh_ask_number(sh, "Enter the default maximum number of messages per connection.", &dv,
                      CFG_MSGS_MIN, CFG_MSGS_MAX, &v));
    d.msgs_per_conn = (int)v;

    ASK(sh_ask_yesno(sh, "Do you wish to specify a default recipient limit?", cur.rcpt_limit > 0,
                     &yes));
    if (yes) {
        dv = cur.rcpt_minutes;
        ASK(sh_ask_number(sh,
                          "Enter the number of minutes used to measure the default recipient "
                          "limit.",
                          &dv, CFG_RCPT_MINUTES_MIN, CFG_RCPT_MINUTES_MAX, &v));
        d.rcpt_minutes = (int)v;
        dv = cur.rcpt_limit;
        snprintf(text, sizeof text, "Enter the default max number of recipients per %d minutes.",
                 d.rcpt_minutes);
        ASK(sh_ask_number(sh, text, cur.rcpt_limit > 0 ? &dv : NULL, CFG_RCPT_MIN, CFG_RCPT_MAX,
                          &v));
        d.rcpt_limit = v;
    } else {
        d.rcpt_limit = CFG_RCPT_NONE;
    }

    static const char *const limit_items[] = {"One limit applies to each entire domain",
                                              "Separate limit for each mail exchanger IP address"};
    ASK(sh_ask_list(sh, "Select how you want to apply the limits:", limit_items, 2, (int)cur.limit,
                    &c));
    d.limit = (enum cfg_limit)c;

    ASK(sh_ask_list(sh, "Do you want to use TLS support?", tls_items, 6, (int)cur.tls, &c));
    d.tls = (enum cfg_tls)c;
    if (d.tls == CFG_TLS_NO) {
        d.dane = CFG_DANE_NO;
        d.sts = CFG_STS_OFF;
    } else {
        sh_printf(sh, "\n%s\n", tls_reminder);
        ASK(sh_ask_list(sh, "Do you want to use DANE support?", dane_items, 3, (int)cur.dane, &c));
        d.dane = (enum cfg_dane)c;
        ASK(sh_ask_list(sh, "Do you want to use MTA STS support?", sts_items, 2, (int)cur.sts, &c));
        d.sts = (enum cfg_sts)c;
        if (d.sts == CFG_STS_ON) {
            char q[400];
            snprintf(q, sizeof q, "%s\nDo you want to continue?", default_sts_warning);
            ASK(sh_ask_yesno(sh, q, false, &yes));
            if (yes)
                ASK(ask_sts_on(sh, NULL));
            else
                d.sts = CFG_STS_OFF;
        }
    }

    struct names *ns = xmalloc(sizeof *ns);
    bounce_profiles(sh, ns);
    enum sh_rc rc = sh_ask_list(sh, "Please choose a bounce profile to apply:", ns->items, ns->n,
                                index_of(ns, cur.bounce_profile), &c);
    if (rc == SH_OK)
        snprintf(d.bounce_profile, sizeof d.bounce_profile, "%s", ns->items[c - 1]);
    free(ns);
    if (rc != SH_OK)
        return rc;

    ASK(sh_ask_list(sh, "How should the appliance sort IP addresses within an MX preference level?",
                    ipsort_items, 4, (int)cur.ip_sort, &c));
    d.ip_sort = (enum cfg_ipsort)c;
    store_entry(sh, CFG_UNIT_DEFAULT, &d);
    return SH_OK;
}

/* ---- LIST and DETAIL ---- */

static void rate_part(char *out, size_t n, long v, bool none_is_dash)
{
    if (v == 0 && !none_is_dash)
        snprintf(out, n, "Default");
    else if (none_is_dash && v == CFG_RCPT_DEFAULT)
        snprintf(out, n, "Default");
    else if (none_is_dash && v == CFG_RCPT_NONE)
        snprintf(out, n, "-");
    else
        snprintf(out, n, "%ld", v);
}

static void list_row(struct sh *sh, const char *name, const struct cfg_dest *d)
{
    char a[24], b[24], c[24], rate[80];
    rate_part(a, sizeof a, d->concurrency, false);
    rate_part(b, sizeof b, d->msgs_per_conn, false);
    rate_part(c, sizeof c, d->rcpt_limit, true);
    snprintf(rate, sizeof rate, "%s/%s/%s", a, b, c);
    sh_printf(sh, "%-19s %-14s %-20s %-14s %-8s %-15s %s\n", name, rate, cfg_tls_label(d->tls),
              cfg_dane_label(d->dane), cfg_sts_label(d->sts),
              d->bounce_profile[0] ? d->bounce_profile : "Default", cfg_ipsort_label(d->ip_sort));
}

static enum sh_rc op_list(struct sh *sh)
{
    struct entries e;
    struct cfg_dest def;
    collect(sh, &e);
    load_default(sh, &def);
    sh_printf(sh, "\n%-19s %-14s %-20s %-14s %-8s %-15s %s\n", "Domain", "Rate Limiting", "TLS",
              "DANE", "MTA STS", "Bounce Profile", "IP Sort Pref");
    for (size_t i = 0; i < e.n; i++)
        list_row(sh, e.v[i].domain, &e.v[i].d);
    list_row(sh, "(Default)", &def);
    free(e.v);
    return SH_OK;
}

static void detail(struct sh *sh, const char *title, const struct cfg_dest *d,
                   const struct cfg_dest *def)
{
    enum cfg_limit limit = d->limit ? d->limit : def->limit;
    const char *per = limit == CFG_LIMIT_MXIP
                          ? " (a separate limit for each mail exchanger IP address)"
                          : " (one limit for the entire domain)";
    sh_printf(sh, "%s\n", title);
    if (d->concurrency)
        sh_printf(sh, "    Maximum Concurrency: %d%s\n", d->concurrency, per);
    else
        sh_printf(sh, "    Maximum Concurrency: Default\n");
    if (d->msgs_per_conn)
        sh_printf(sh, "    Maximum Messages Per Connection: %d\n", d->msgs_per_conn);
    else
        sh_printf(sh, "    Maximum Messages Per Connection: Default\n");
    if (d->rcpt_limit == CFG_RCPT_DEFAULT)
        sh_printf(sh, "    Recipient Limit: Default\n");
    else if (d->rcpt_limit == CFG_RCPT_NONE)
        sh_printf(sh, "    Recipient Limit: None\n");
    else
        sh_printf(sh, "    Recipient Limit: %ld per %d minutes%s\n", d->rcpt_limit, d->rcpt_minutes,
                  limit == CFG_LIMIT_MXIP ? " (a separate limit for each mail exchanger IP address)"
                                          : "");
    sh_printf(sh, "    TLS: %s\n", cfg_tls_label(d->tls));
    sh_printf(sh, "    DANE: %s\n", cfg_dane_label(d->dane));
    sh_printf(sh, "    MTA STS: %s\n", cfg_sts_label(d->sts));
    sh_printf(sh, "    Bounce Profile: %s\n", d->bounce_profile[0] ? d->bounce_profile : "Default");
    sh_printf(sh, "    IP Sort Preference: %s\n", cfg_ipsort_label(d->ip_sort));
}

static bool valid_detail_name(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    if (strcasecmp(in, "DEFAULT") == 0 || strcasecmp(in, "ALL") == 0) {
        snprintf(out, outlen, "%s", in);
        for (char *p = out; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        return true;
    }
    return sh_valid_domain(in, out, outlen, err, errlen);
}

static enum sh_rc op_detail(struct sh *sh)
{
    char name[DOMAIN_BUF];
    struct cfg_dest def, d;
    ASK(sh_ask_text(sh,
                    "Enter the domain name to view, or enter DEFAULT to view details for the "
                    "default, or enter ALL to view details for all:",
                    NULL, valid_detail_name, name, sizeof name));
    load_default(sh, &def);
    if (strcmp(name, "DEFAULT") == 0) {
        sh_printf(sh, "\n");
        detail(sh, "(Default)", &def, &def);
    } else if (strcmp(name, "ALL") == 0) {
        struct entries e;
        collect(sh, &e);
        for (size_t i = 0; i < e.n; i++) {
            sh_printf(sh, "\n");
            detail(sh, e.v[i].domain, &e.v[i].d, &def);
        }
        sh_printf(sh, "\n");
        detail(sh, "(Default)", &def, &def);
        free(e.v);
    } else if (load_entry(sh, name, &d)) {
        sh_printf(sh, "\n");
        detail(sh, name, &d, &def);
    } else {
        not_found(sh, name);
    }
    return SH_OK;
}

static enum sh_rc op_clear(struct sh *sh)
{
    bool yes;
    ASK(sh_ask_yesno(sh, "Are you sure you want to remove all entries?", false, &yes));
    if (!yes)
        return SH_OK;
    struct db_units keep_units = {0};
    const char *def = db_session_get(sh->session, CFG_KIND_DEST, CFG_UNIT_DEFAULT);
    if (def)
        db_units_add(&keep_units, CFG_KIND_DEST, CFG_UNIT_DEFAULT, def);
    static const char *const keep[] = {CFG_UNIT_SETUP, NULL};
    db_session_replace_kind(sh->session, CFG_KIND_DEST, &keep_units, keep);
    db_units_free(&keep_units);
    return SH_OK;
}

/* ---- IMPORT and EXPORT ---- */

static bool profile_exists(void *arg, const char *name)
{
    struct sh *sh = arg;
    return strcmp(name, "Default") == 0 || db_session_get(sh->session, CFG_KIND_BOUNCE, name);
}

static int cmp_unit(const void *a, const void *b)
{
    const struct db_unit *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static enum sh_rc op_import(struct sh *sh)
{
    char *content;
    ASK(sh_import_ask(sh, &content));
    if (!content)
        return SH_OK;
    struct cfg_dest_table t;
    struct strbuf errors = STRBUF_INIT;
    int nerr = cfg_dest_import(content, profile_exists, sh, &t, &errors);
    free(content);
    if (nerr) {
        /* Each error is its own line; print them all, then change nothing. */
        sh_print_error_lines(sh, sb_str(&errors));
        sb_free(&errors);
        return SH_OK;
    }
    sb_free(&errors);
    struct db_units units = {0};
    struct strbuf sb = STRBUF_INIT;
    cfg_dest_write(&t.def, true, false, &sb);
    db_units_add(&units, CFG_KIND_DEST, CFG_UNIT_DEFAULT, sb_str(&sb));
    for (size_t i = 0; i < t.n; i++) {
        sb_reset(&sb);
        cfg_dest_write(&t.v[i].d, false, false, &sb);
        db_units_add(&units, CFG_KIND_DEST, t.v[i].domain, sb_str(&sb));
    }
    sb_free(&sb);
    qsort(units.v, units.n, sizeof units.v[0], cmp_unit);
    static const char *const keep[] = {CFG_UNIT_SETUP, NULL};
    db_session_replace_kind(sh->session, CFG_KIND_DEST, &units, keep);
    db_units_free(&units);
    if (t.def.sts == CFG_STS_ON)
        sh_printf(sh, "\n%s\n", default_sts_warning);
    cfg_dest_table_free(&t);
    return SH_OK;
}

static enum sh_rc op_export(struct sh *sh)
{
    struct entries e;
    struct cfg_dest_table t;
    collect(sh, &e);
    load_default(sh, &t.def);
    t.v = e.v;
    t.n = t.cap = e.n;
    struct strbuf sb = STRBUF_INIT;
    cfg_dest_export(&t, &sb);
    free(e.v);
    enum sh_rc rc = sh_export_ask(sh, sb_str(&sb), sb.len);
    sb_free(&sb);
    return rc;
}

/* ---- SETUP ---- */

static bool valid_proxy(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    const char *p = in;
    if (strncasecmp(p, "http://", 7) != 0)
        goto bad;
    p += 7;
    const char *colon = strrchr(p, ':');
    if (!colon || colon == p)
        goto bad;
    char host[256];
    size_t hl = (size_t)(colon - p);
    if (hl >= sizeof host)
        goto bad;
    memcpy(host, p, hl);
    host[hl] = '\0';
    size_t plen = strlen(colon + 1);
    if (plen > 0 && colon[plen] == '/')
        plen--;
    char port[8];
    long v;
    if (plen == 0 || plen >= sizeof port)
        goto bad;
    memcpy(port, colon + 1, plen);
    port[plen] = '\0';
    /* A host name, an IPv4 address, or an IPv6 address in brackets, as URLs write them. */
    unsigned char bin[16];
    char inner[sizeof host];
    bool v6 = hl > 2 && host[0] == '[' && host[hl - 1] == ']';
    if (v6) {
        memcpy(inner, host + 1, hl - 2);
        inner[hl - 2] = '\0';
    }
    if (!cfg_parse_long(port, 1, 65535, &v) ||
        !(cfg_hostname_valid(host) || inet_pton(AF_INET, host, bin) == 1 ||
          (v6 && inet_pton(AF_INET6, inner, bin) == 1)))
        goto bad;
    snprintf(out, outlen, "http://%s:%ld", host, v);
    return true;
bad:
    snprintf(err, errlen, "That value is not valid.");
    return false;
}

static bool valid_address(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    const char *at = strrchr(in, '@');
    if (!at || at == in || !cfg_hostname_valid(at + 1) || strchr(in, ' ')) {
        snprintf(err, errlen, "That value is not valid.");
        return false;
    }
    snprintf(out, outlen, "%s", in);
    return true;
}

static enum sh_rc op_setup(struct sh *sh)
{
    struct cfg_setup cur, s;
    const char *body = db_session_get(sh->session, CFG_KIND_DEST, CFG_UNIT_SETUP);
    if (body)
        cfg_setup_decode(body, &cur);
    else
        cfg_setup_factory(&cur);
    s = cur;

    struct names *ns = xmalloc(sizeof *ns);
    ns->n = 0;
    if (db_session_get(sh->session, CFG_KIND_CERT, "Demo")) {
        snprintf(ns->v[0], sizeof ns->v[0], "Demo");
        ns->items[0] = ns->v[0];
        ns->n = 1;
    }
    int before = ns->n;
    db_session_each(sh->session, CFG_KIND_CERT, name_one, ns);
    /* name_one skips "Default"; certificates named Demo are listed first already. */
    for (int i = before; i < ns->n; i++) {
        if (strcmp(ns->items[i], "Demo") == 0) {
            memmove(&ns->v[i], &ns->v[i + 1], (size_t)(ns->n - i - 1) * sizeof ns->v[0]);
            ns->n--;
            for (int j = 0; j < ns->n; j++)
                ns->items[j] = ns->v[j];
            break;
        }
    }
    int c = 1;
    enum sh_rc rc = SH_OK;
    if (ns->n > 0) {
        rc = sh_ask_list(sh, "Please choose the certificate to use for outbound TLS:", ns->items,
                         ns->n, index_of(ns, cur.certificate), &c);
        if (rc == SH_OK)
            snprintf(s.certificate, sizeof s.certificate, "%s", ns->items[c - 1]);
    }
    free(ns);
    if (rc != SH_OK)
        return rc;

    bool yes;
    ASK(sh_ask_yesno(sh, "Do you want to send an alert when a required TLS connection fails?",
                     cur.tls_alert, &s.tls_alert));
    ASK(sh_ask_yesno(sh, "Do you want to fetch MTA STS policies through an HTTP proxy?",
                     cur.sts_proxy[0] != '\0', &yes));
    if (yes)
        ASK(sh_ask_text(sh, "Enter the proxy URL (http://host:port).", cur.sts_proxy, valid_proxy,
                        s.sts_proxy, sizeof s.sts_proxy));
    else
        s.sts_proxy[0] = '\0';
    ASK(sh_ask_yesno(sh,
                     "Do you want to send daily TLS reports (RFC 8460) to domains that ask for "
                     "them?",
                     cur.tlsrpt, &s.tlsrpt));
    if (s.tlsrpt) {
        ASK(sh_ask_text(sh, "Enter the organization name to put in the reports.", cur.tlsrpt_org,
                        NULL, s.tlsrpt_org, sizeof s.tlsrpt_org));
        ASK(sh_ask_text(sh, "Enter the contact address to put in the reports.", cur.tlsrpt_contact,
                        valid_address, s.tlsrpt_contact, sizeof s.tlsrpt_contact));
    }
    struct strbuf sb = STRBUF_INIT;
    cfg_setup_encode(&s, &sb);
    db_session_put(sh->session, CFG_KIND_DEST, CFG_UNIT_SETUP, sb_str(&sb));
    sb_free(&sb);
    return SH_OK;
}

/* ---- the menu ---- */

static const struct sh_verb verbs[] = {
    {"SETUP", "Change global settings.", op_setup},
    {"NEW", "Create a new entry.", op_new},
    {"EDIT", "Modify an entry.", op_edit},
    {"DELETE", "Remove an entry.", op_delete},
    {"DEFAULT", "Change the default.", op_default},
    {"LIST", "Display a summary list of all entries.", op_list},
    {"DETAIL", "Display details for one destination or all entries.", op_detail},
    {"CLEAR", "Remove all entries.", op_clear},
    {"IMPORT", "Import tables from a file.", op_import},
    {"EXPORT", "Export tables to a file.", op_export},
};

static void status(struct sh *sh)
{
    sh_printf(sh, "\nThere are currently %zu entries configured.\n", count_entries(sh));
}

enum sh_rc sh_cmd_destconfig(struct sh *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return sh_menu_run(sh, status, verbs, (int)(sizeof verbs / sizeof verbs[0]));
}
