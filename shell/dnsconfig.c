/* dnsconfig.c - the dnsconfig command (cli.md §5, ours after the appliance's): the DNS servers
 * the agent and the diagnostics use, whether each is trusted to validate DNSSEC, and the timeout
 * and tries. With no server configured the system's resolvers (/etc/resolv.conf) are used.
 *
 * The list is one unit (CFG_UNIT_DNS, core/cfg_dns.h has the body); every operation builds the
 * whole new list and records it with one change at its end, so an abandoned operation records
 * nothing. */
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "cfg_dns.h"
#include "sh.h"
#include "strbuf.h"

#define ASK(call)                                                                                  \
    do {                                                                                           \
        enum sh_rc rc_ = (call);                                                                   \
        if (rc_ != SH_OK)                                                                          \
            return rc_ == SH_EMPTY ? SH_OK : rc_;                                                  \
    } while (0)

/* In a helper: hands SH_EMPTY back so the operation knows it was abandoned. */
#define ASK_RAW(call)                                                                              \
    do {                                                                                           \
        enum sh_rc rc_ = (call);                                                                   \
        if (rc_ != SH_OK)                                                                          \
            return rc_;                                                                            \
    } while (0)

static void load(struct sh *sh, struct cfg_dns *d)
{
    cfg_dns_decode(db_session_get(sh->session, CFG_KIND_DNS, CFG_UNIT_DNS), d);
}

static void store(struct sh *sh, const struct cfg_dns *d)
{
    struct strbuf sb = STRBUF_INIT, factory = STRBUF_INIT;
    struct cfg_dns f;
    cfg_dns_factory(&f);
    cfg_dns_encode(d, &sb);
    cfg_dns_encode(&f, &factory);
    /* A store that never had the unit keeps not having it while the list is the factory one. */
    if (strcmp(sb_str(&sb), sb_str(&factory)) != 0 ||
        db_session_get(sh->session, CFG_KIND_DNS, CFG_UNIT_DNS))
        db_session_put(sh->session, CFG_KIND_DNS, CFG_UNIT_DNS, sb_str(&sb));
    sb_free(&sb);
    sb_free(&factory);
}

static void status(struct sh *sh, const struct cfg_dns *d)
{
    sh_printf(sh, "\n");
    if (d->n == 0)
        sh_printf(sh, "Currently using the system's resolvers (/etc/resolv.conf).\n");
    for (size_t i = 0; i < d->n; i++)
        sh_printf(sh, "%zu. %s port %u (trusted for DNSSEC: %s)\n", i + 1, d->servers[i].addr,
                  (unsigned)d->servers[i].port, d->servers[i].trusted ? "yes" : "no");
}

static bool valid_addr(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    if (cfg_dns_addr_normalize(in, out, outlen))
        return true;
    snprintf(err, errlen, "That value is not valid.");
    return false;
}

/* Asks the server questions; cur holds the defaults (NULL for a new server). skip is the index
 * of the server being edited, left out of the duplicate check (-1 for NEW). */
static enum sh_rc server_dialogue(struct sh *sh, const struct cfg_dns *d,
                                  const struct dns_server *cur, long skip, struct dns_server *out)
{
    char addr[sizeof out->addr];
    long port, def_port = cur ? cur->port : CFG_DNS_PORT_DEFAULT;
    bool trusted;
    ASK_RAW(sh_ask_text(sh, "Enter the IP address of the DNS server.", cur ? cur->addr : NULL,
                        valid_addr, addr, sizeof addr));
    ASK_RAW(sh_ask_number(sh, "Enter the port.", &def_port, 1, 65535, &port));
    for (size_t i = 0; i < d->n; i++) {
        if ((long)i != skip && strcmp(d->servers[i].addr, addr) == 0 &&
            d->servers[i].port == port) {
            sh_error(sh, "The DNS server %s port %ld is already configured.", addr, port);
            return SH_EMPTY;
        }
    }
    /* A loopback server is the machine's own validating resolver: trusted unless told not. */
    bool def_trust =
        cur && strcmp(cur->addr, addr) == 0 ? cur->trusted : cfg_dns_trust_default(addr);
    ASK_RAW(sh_ask_yesno(sh, "Do you trust this server to validate DNSSEC?", def_trust, &trusted));
    memset(out, 0, sizeof *out);
    memcpy(out->addr, addr, sizeof addr);
    out->port = (uint16_t)port;
    out->trusted = trusted;
    return SH_OK;
}

static enum sh_rc op_new(struct sh *sh)
{
    struct cfg_dns d;
    struct dns_server s;
    load(sh, &d);
    if (d.n >= CFG_DNS_SERVERS_MAX) {
        sh_error(sh, "No more than %d DNS servers can be configured.", CFG_DNS_SERVERS_MAX);
        return SH_OK;
    }
    enum sh_rc rc = server_dialogue(sh, &d, NULL, -1, &s);
    if (rc != SH_OK)
        return rc == SH_EMPTY ? SH_OK : rc;
    d.servers[d.n++] = s;
    store(sh, &d);
    return SH_OK;
}

/* The number of a configured server, as a list answer (the list is the status above). */
static enum sh_rc ask_index(struct sh *sh, const struct cfg_dns *d, size_t *index)
{
    if (d->n == 0) {
        sh_error(sh, "There are no DNS servers configured.");
        return SH_EMPTY;
    }
    struct sh_question q = {
        .kind = SH_Q_LIST, .text = "Enter the number of the DNS server.", .n_items = (int)d->n};
    union sh_answer a;
    enum sh_rc rc = sh_ask(sh, &q, &a);
    if (rc == SH_OK)
        *index = (size_t)a.number - 1;
    return rc;
}

static enum sh_rc op_edit(struct sh *sh)
{
    struct cfg_dns d;
    struct dns_server s;
    size_t i;
    load(sh, &d);
    ASK(ask_index(sh, &d, &i));
    enum sh_rc rc = server_dialogue(sh, &d, &d.servers[i], (long)i, &s);
    if (rc != SH_OK)
        return rc == SH_EMPTY ? SH_OK : rc;
    d.servers[i] = s;
    store(sh, &d);
    return SH_OK;
}

static enum sh_rc op_delete(struct sh *sh)
{
    struct cfg_dns d;
    size_t i;
    load(sh, &d);
    ASK(ask_index(sh, &d, &i));
    memmove(&d.servers[i], &d.servers[i + 1], (d.n - i - 1) * sizeof d.servers[0]);
    d.n--;
    store(sh, &d);
    return SH_OK;
}

static enum sh_rc op_setup(struct sh *sh)
{
    struct cfg_dns d;
    long v, def;
    load(sh, &d);
    def = (long)d.timeout_s;
    ASK(sh_ask_number(sh, "Enter the number of seconds to wait for a DNS answer.", &def,
                      CFG_DNS_TIMEOUT_MIN, CFG_DNS_TIMEOUT_MAX, &v));
    d.timeout_s = (unsigned)v;
    def = (long)d.tries;
    ASK(sh_ask_number(sh, "Enter the number of tries.", &def, CFG_DNS_TRIES_MIN, CFG_DNS_TRIES_MAX,
                      &v));
    d.tries = (unsigned)v;
    store(sh, &d);
    return SH_OK;
}

static const struct sh_verb verbs[] = {
    {"NEW", "Add a DNS server.", op_new},
    {"EDIT", "Modify a DNS server.", op_edit},
    {"DELETE", "Remove a DNS server.", op_delete},
    {"SETUP", "Change the timeout and number of tries.", op_setup},
};

static void show(struct sh *sh)
{
    struct cfg_dns d;
    load(sh, &d);
    status(sh, &d);
}

enum sh_rc sh_cmd_dnsconfig(struct sh *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return sh_menu_run(sh, show, verbs, (int)(sizeof verbs / sizeof verbs[0]));
}
