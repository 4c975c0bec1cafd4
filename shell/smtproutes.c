/* smtproutes.c - the smtproutes command (cli.md §5): permanent routes from a domain, a
 * ".subdomain" or ALL (the default route) to a list of destination hosts, with the table's
 * IMPORT and EXPORT.
 *
 * One unit per route (core/cfg_route.h has the body). Every operation records at most one
 * change, at its end, so an abandoned operation (Ctrl-C, EOF, an empty answer) records nothing;
 * IMPORT replaces the whole table in one change or, with any error in the file, changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "cfg_route.h"
#include "kv.h"
#include "sh.h"
#include "strbuf.h"

#define ASK(call)                                                                                  \
    do {                                                                                           \
        enum sh_rc rc_ = (call);                                                                   \
        if (rc_ != SH_OK)                                                                          \
            return rc_ == SH_EMPTY ? SH_OK : rc_;                                                  \
    } while (0)

static int count_one(void *arg, const char *name, const char *body)
{
    (void)name;
    (void)body;
    (*(size_t *)arg)++;
    return 0;
}

static size_t count_routes(struct sh *sh)
{
    size_t n = 0;
    db_session_each(sh->session, CFG_KIND_ROUTE, count_one, &n);
    return n;
}

static bool valid_route_domain(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    if (cfg_route_domain_normalize(in, out, outlen))
        return true;
    snprintf(err, errlen, "Not a valid domain name.");
    return false;
}

/* The host list question checks and normalizes in one go: the stored text is the parsed list
 * written back, so what PRINT shows is what was accepted. */
static bool valid_hosts(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    struct cfg_route_hosts *h = xmalloc(sizeof *h);
    char e[CFG_ERR_MAX];
    bool ok = cfg_route_hosts_parse(in, h, e);
    if (ok) {
        struct strbuf sb = STRBUF_INIT;
        cfg_route_hosts_format(h, ", ", &sb);
        ok = sb.len < outlen;
        snprintf(out, outlen, "%s", sb_str(&sb));
        sb_free(&sb);
        if (!ok)
            snprintf(e, sizeof e, "That value is not valid.");
    }
    if (!ok)
        snprintf(err, errlen, "%s", e);
    free(h);
    return ok;
}

static enum sh_rc ask_hosts(struct sh *sh, const char *domain, const char *def, char *hosts,
                            size_t len)
{
    char text[400];
    snprintf(text, sizeof text,
             "Enter the destination hosts, separated by commas, which you want mail for %s to be "
             "delivered.",
             domain);
    return sh_ask_text(sh, text, def, valid_hosts, hosts, len);
}

static void store(struct sh *sh, const char *domain, const char *hosts)
{
    struct strbuf sb = STRBUF_INIT;
    kv_put(&sb, "hosts", hosts);
    db_session_put(sh->session, CFG_KIND_ROUTE, domain, sb_str(&sb));
    sb_free(&sb);
}

/* The route's hosts as stored (", "-joined), or false when there is no such route. */
static bool load_hosts(struct sh *sh, const char *domain, char *hosts, size_t len)
{
    const char *body = db_session_get(sh->session, CFG_KIND_ROUTE, domain);
    if (!body)
        return false;
    struct cfg_route_hosts *h = xmalloc(sizeof *h);
    struct strbuf sb = STRBUF_INIT;
    if (cfg_route_decode(body, h))
        cfg_route_hosts_format(h, ", ", &sb);
    snprintf(hosts, len, "%s", sb_str(&sb));
    sb_free(&sb);
    free(h);
    return true;
}

static void not_found(struct sh *sh, const char *domain)
{
    sh_error(sh, "The value %s is not in the routing table.", domain);
}

static enum sh_rc op_new(struct sh *sh)
{
    char domain[CFG_ROUTE_DOMAIN_BUF], hosts[1024];
    ASK(sh_ask_text(sh, "Enter the domain for which you want to set up a permanent route.", NULL,
                    valid_route_domain, domain, sizeof domain));
    if (db_session_get(sh->session, CFG_KIND_ROUTE, domain)) {
        if (strcmp(domain, CFG_ROUTE_ALL) == 0)
            sh_error(sh, "There is already a default route set.");
        else
            sh_error(sh, "The value %s is already in the routing table.", domain);
        return SH_OK;
    }
    ASK(ask_hosts(sh, domain, NULL, hosts, sizeof hosts));
    store(sh, domain, hosts);
    return SH_OK;
}

static enum sh_rc op_edit(struct sh *sh)
{
    char domain[CFG_ROUTE_DOMAIN_BUF], cur[1024], hosts[1024];
    ASK(sh_ask_text(sh, "Enter the domain of the route you wish to edit.", NULL, valid_route_domain,
                    domain, sizeof domain));
    if (!load_hosts(sh, domain, cur, sizeof cur)) {
        not_found(sh, domain);
        return SH_OK;
    }
    ASK(ask_hosts(sh, domain, cur, hosts, sizeof hosts));
    store(sh, domain, hosts);
    return SH_OK;
}

static enum sh_rc op_delete(struct sh *sh)
{
    char domain[CFG_ROUTE_DOMAIN_BUF];
    ASK(sh_ask_text(sh, "Enter the domain of the route you wish to delete.", NULL,
                    valid_route_domain, domain, sizeof domain));
    if (!db_session_get(sh->session, CFG_KIND_ROUTE, domain)) {
        not_found(sh, domain);
        return SH_OK;
    }
    db_session_put(sh->session, CFG_KIND_ROUTE, domain, NULL);
    return SH_OK;
}

struct print_ctx {
    struct sh *sh;
    const char *all; /* the default route's hosts, printed last */
};

static void print_row(struct sh *sh, const char *domain, const char *body)
{
    struct cfg_route_hosts *h = xmalloc(sizeof *h);
    struct strbuf sb = STRBUF_INIT;
    if (cfg_route_decode(body, h))
        cfg_route_hosts_format(h, ", ", &sb);
    /* A domain longer than its column is printed whole, followed by one space. */
    sh_printf(sh, "%-17s %s\n", domain, sb_str(&sb));
    sb_free(&sb);
    free(h);
}

static int print_one(void *arg, const char *name, const char *body)
{
    struct print_ctx *c = arg;
    if (strcmp(name, CFG_ROUTE_ALL) == 0)
        c->all = body;
    else
        print_row(c->sh, name, body);
    return 0;
}

static enum sh_rc op_print(struct sh *sh)
{
    struct print_ctx c = {sh, NULL};
    sh_printf(sh, "\n");
    db_session_each(sh->session, CFG_KIND_ROUTE, print_one, &c);
    if (c.all)
        print_row(sh, CFG_ROUTE_ALL, c.all);
    return SH_OK;
}

static enum sh_rc op_clear(struct sh *sh)
{
    bool yes;
    ASK(sh_ask_yesno(sh, "Are you sure you want to delete all of the configured routes?", false,
                     &yes));
    if (!yes)
        return SH_OK;
    struct db_units none = {0};
    db_session_replace_kind(sh->session, CFG_KIND_ROUTE, &none, NULL);
    return SH_OK;
}

static enum sh_rc op_import(struct sh *sh)
{
    char *content;
    ASK(sh_import_ask(sh, &content));
    if (!content)
        return SH_OK;
    struct cfg_route_table t;
    struct strbuf errors = STRBUF_INIT;
    int nerr = cfg_route_import(content, &t, &errors);
    free(content);
    if (nerr) {
        sh_print_error_lines(sh, sb_str(&errors));
        sb_free(&errors);
        return SH_OK;
    }
    sb_free(&errors);
    struct db_units units = {0};
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; i < t.n; i++) {
        sb_reset(&sb);
        kv_put(&sb, "hosts", t.v[i].hosts);
        db_units_add(&units, CFG_KIND_ROUTE, t.v[i].domain, sb_str(&sb));
    }
    sb_free(&sb);
    db_units_sort(&units);
    db_session_replace_kind(sh->session, CFG_KIND_ROUTE, &units, NULL);
    db_units_free(&units);
    cfg_route_table_free(&t);
    return SH_OK;
}

static int export_one(void *arg, const char *name, const char *body)
{
    struct strbuf *sb = arg;
    struct cfg_route_hosts *h = xmalloc(sizeof *h);
    if (cfg_route_decode(body, h))
        cfg_route_export_line(name, h, sb);
    free(h);
    return 0;
}

static enum sh_rc op_export(struct sh *sh)
{
    struct strbuf sb = STRBUF_INIT;
    db_session_each(sh->session, CFG_KIND_ROUTE, export_one, &sb);
    enum sh_rc rc = sh_export_ask(sh, sb_str(&sb), sb.len);
    sb_free(&sb);
    return rc == SH_EMPTY ? SH_OK : rc;
}

static const struct sh_verb verbs[] = {
    {"NEW", "Create a new route.", op_new},
    {"EDIT", "Edit destinations of an existing route.", op_edit},
    {"DELETE", "Remove a route.", op_delete},
    {"PRINT", "Display all routes.", op_print},
    {"CLEAR", "Remove all routes.", op_clear},
    {"IMPORT", "Import new routes from a file.", op_import},
    {"EXPORT", "Export all routes to a file.", op_export},
};

static void status(struct sh *sh)
{
    sh_printf(sh, "\nThere are currently %zu routes configured.\n", count_routes(sh));
}

enum sh_rc sh_cmd_smtproutes(struct sh *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return sh_menu_run(sh, status, verbs, (int)(sizeof verbs / sizeof verbs[0]));
}
