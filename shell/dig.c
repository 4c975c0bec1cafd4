/* dig.c - `dig <name> [type]` (cli.md §6): one DNS query through the committed resolvers
 * (dnsconfig; the system's when none), printed the way dig prints it: the status, the flags with
 * AD as the server set it, whether stsgate counts the answer as DNSSEC-secure (AD from a resolver
 * trusted for DNSSEC), the answer records in zone-file form, and the server that answered. */
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "cfg_dns.h"
#include "dns.h"
#include "sh.h"

static const char *rcode_name(int rcode)
{
    static const char *const names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                        "NXDOMAIN", "NOTIMP",  "REFUSED"};
    return rcode >= 0 && rcode < 6 ? names[rcode] : "OTHER";
}

enum sh_rc sh_cmd_dig(struct sh *sh, int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        sh_error(sh, "Usage: dig <name> [A|AAAA|MX|TXT|TLSA|CNAME]");
        return SH_OK;
    }
    uint16_t type = DNS_T_A;
    if (argc == 3) {
        type = dns_type_from_name(argv[2]);
        if (type == 0 || type == DNS_T_RRSIG) {
            sh_error(sh, "Unknown record type %s: use A, AAAA, MX, TXT, TLSA or CNAME.", argv[2]);
            return SH_OK;
        }
    }
    char name[300];
    snprintf(name, sizeof name, "%s", argv[1]);
    size_t n = strlen(name);
    if (n > 1 && name[n - 1] == '.')
        name[n - 1] = '\0';

    struct cfg_dns dc;
    cfg_dns_decode(db_session_get_committed(sh->session, CFG_KIND_DNS, CFG_UNIT_DNS), &dc);
    struct dns_config cfg;
    cfg_dns_config(&dc, NULL, &cfg);
    struct dns_server eff[CFG_DNS_SERVERS_MAX];
    bool system = false;
    size_t ns = cfg_dns_effective(&dc, NULL, eff, &system);

    struct dns_answer ans;
    memset(&ans, 0, sizeof ans);
    enum dns_status st = dns_resolve(&cfg, name, type, &ans);

    sh_printf(sh, "\n; <<>> stsgate dig <<>> %s %s\n", name, dns_type_name(type));
    if (ans.canon || ans.rcode != 0 || st == DNS_OK || st == DNS_NODATA || st == DNS_NXDOMAIN ||
        st == DNS_SERVFAIL) {
        sh_printf(sh, ";; ->>HEADER<<- opcode: QUERY, status: %s\n", rcode_name(ans.rcode));
        sh_printf(sh, ";; flags: qr rd ra%s%s; ANSWER: %zu\n", ans.ad ? " ad" : "",
                  ans.tc ? " tc" : "", ans.nrr + ans.ncname);
    } else {
        sh_printf(sh, ";; no answer: %s%s%s\n", dns_status_name(st), ans.detail[0] ? ", " : "",
                  ans.detail);
    }
    sh_printf(sh, ";; stsgate: %s, DNSSEC %s\n", dns_status_name(st),
              ans.secure ? "secure (AD from a trusted resolver)"
              : ans.ad   ? "not trusted (AD from a resolver not trusted for DNSSEC)"
                         : "insecure (no AD)");
    sh_printf(sh, "\n;; QUESTION SECTION:\n;%s.\t\tIN\t%s\n", name, dns_type_name(type));
    if (ans.nrr > 0 || (ans.canon && strcmp(ans.canon, name) != 0)) {
        sh_printf(sh, "\n;; ANSWER SECTION:\n");
        if (ans.canon && strcmp(ans.canon, name) != 0)
            sh_printf(sh, ";; (%u CNAME followed to %s.)\n", ans.ncname, ans.canon);
        for (size_t i = 0; i < ans.nrr; i++) {
            char data[4096];
            dns_rr_format(&ans.rr[i], data, sizeof data);
            sh_printf(sh, "%s.\t%u\tIN\t%s\t%s\n", ans.canon ? ans.canon : name,
                      (unsigned)ans.rr[i].ttl, dns_type_name(ans.rr[i].type), data);
        }
    }
    sh_printf(sh, "\n;; SERVER: %s%s\n", ans.server[0] ? ans.server : "(none answered)",
              system ? " (from /etc/resolv.conf)" : "");
    for (size_t i = 0; i < ns; i++)
        sh_printf(sh, ";; resolver %s port %u%s\n", eff[i].addr, eff[i].port ? eff[i].port : 53,
                  eff[i].trusted ? " (trusted for DNSSEC)" : "");
    dns_answer_clear(&ans);
    return SH_OK;
}
