/* tlsrpt.c - `tlsrpt report <domain> <YYYY-MM-DD>`: the RFC 8460 report of one policy domain and
 * UTC day, as the agent would send it, from the counts in <data>/tlsrpt.db.
 * `tlsrpt send <YYYY-MM-DD>`: asks the running agent to send that day's unsent reports now (the
 * agent's hourly run sends only yesterday's); it needs the agent, and prints its answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "db_tlsrpt.h"
#include "sh.h"
#include "strbuf.h"
#include "tlsrpt.h"

static void usage(struct sh *sh)
{
    sh_error(sh, "Usage: tlsrpt report <domain> <YYYY-MM-DD> | tlsrpt send <YYYY-MM-DD>");
}

enum sh_rc sh_cmd_tlsrpt(struct sh *sh, int argc, char **argv)
{
    char domain[CFG_DOMAIN_MAX + 3], err[512], id[600];
    int64_t start;
    if (argc == 3 && strcasecmp(argv[1], "send") == 0) {
        if (!tlsrpt_parse_day(argv[2], &start)) {
            sh_error(sh, "The date must be given as YYYY-MM-DD.");
            return SH_OK;
        }
        char req[64], day[11];
        tlsrpt_format_day(start, day);
        snprintf(req, sizeof req, "tlsrpt send %s\n", day);
        return sh_agent_request(sh, req);
    }
    if (argc != 4 || strcasecmp(argv[1], "report") != 0) {
        usage(sh);
        return SH_OK;
    }
    if (!cfg_domain_normalize(argv[2], domain, sizeof domain) || domain[0] == '.' ||
        domain[0] == '[') {
        sh_error(sh, "Not a valid domain name.");
        return SH_OK;
    }
    if (!tlsrpt_parse_day(argv[3], &start)) {
        sh_error(sh, "The date must be given as YYYY-MM-DD.");
        return SH_OK;
    }
    struct db_tlsrpt *t;
    if (db_tlsrpt_open(sh->datadir, &t, err, sizeof err) != DB_OK) {
        sh_error(sh, "The TLS report counts cannot be read: %s", err);
        return SH_OK;
    }
    struct tlsrpt_policy *pol;
    size_t n;
    enum db_status st = db_tlsrpt_report(t, argv[3], domain, &pol, &n, err, sizeof err);
    if (st == DB_NOTFOUND) {
        sh_printf(sh, "\nNo TLS sessions were counted for %s on %s.\n", domain, argv[3]);
    } else if (st != DB_OK) {
        sh_error(sh, "The TLS report counts cannot be read: %s", err);
    } else {
        struct cfg_setup setup;
        const char *body = db_session_get_committed(sh->session, CFG_KIND_DEST, CFG_UNIT_SETUP);
        if (body)
            cfg_setup_decode(body, &setup);
        else
            cfg_setup_factory(&setup);
        char host[256];
        sh_hostname(sh, host, sizeof host);
        snprintf(id, sizeof id, "%s_%s@%s", argv[3], domain, host);
        struct tlsrpt_meta meta = {
            .organization = setup.tlsrpt_org[0] ? setup.tlsrpt_org : host,
            .contact = setup.tlsrpt_contact[0] ? setup.tlsrpt_contact : "postmaster",
            .report_id = id,
            .start = start,
            .end = start + 86400,
        };
        struct strbuf sb = STRBUF_INIT;
        tlsrpt_report_json(&meta, pol, n, &sb);
        sh_printf(sh, "\n%s", sb_str(&sb));
        sb_free(&sb);
        db_tlsrpt_policies_free(pol, n);
    }
    db_tlsrpt_close(t);
    return SH_OK;
}
