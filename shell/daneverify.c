/* daneverify.c - `daneverify <domain>` (cli.md §6): the DNSSEC, TLSA and TLS checks DANE makes
 * for a domain (delivery-policy.md §4), one line per step, then `DANE SUCCESS for <domain>` or
 * `DANE FAILED for <domain>` (an error line: the session's exit status becomes 1).
 *
 * It uses what delivery uses: the committed resolvers (cfg_dns.h; `secure` is the AD bit of a
 * trusted resolver), mxresolve.h for the MX hosts and their addresses in delivery order, dane.h
 * for the choice of usable TLSA records, and smtp_client.h, which hands the records to OpenSSL's
 * DANE API, on a private event loop (probe.h). The check is the one DANE would make for every host
 * whatever the destination's DANE setting: a domain passes when one of its hosts presents a
 * certificate that a secure, usable TLSA record authenticates. Nothing is sent: each connection
 * ends with QUIT once TLS is decided.
 *
 * The failure steps (docs/guide-diagnostics.md lists them all) keep the appliance's shape:
 *   BOGUS MX record found for <domain>                       (SERVFAIL from a trusted resolver)
 *   MX lookup failed for <domain>: <reason>                   (timeout, NXDOMAIN, null MX, ...)
 *   No MX record found for <domain>: using its address records (implicit MX)
 *   SECURE CNAME record (<target>) found for MX(<mx>) in <domain>  (the MX host is an alias: its
 *                                                             TLSA lines name the target first)
 *   INSECURE TLSA record found for MX(<mx>) in <domain>       (TLSA in an unsigned zone: ignored)
 *   BOGUS TLSA record found for MX(<mx>) in <domain>          (TLSA lookup SERVFAIL)
 *   TLSA lookup failed for MX(<mx>) in <domain>: <status>     (timeout, other errors)
 *   No TLSA record found for MX(<mx>) in <domain>              (NODATA / NXDOMAIN)
 *   No usable TLSA record for MX(<mx>) in <domain>             (only usages 0 and 1, bad lengths)
 *   STARTTLS is not offered by <mx>.
 *   TLS handshake failed: <reason>
 *   Certificate verification failed: no TLSA record matches the certificate
 *   TLS connection failed <domain>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "cfg_snapshot.h"
#include "dane.h"
#include "dns.h"
#include "mxresolve.h"
#include "probe.h"
#include "sh.h"
#include "smtp_client.h"
#include "strbuf.h"
#include "tlspolicy.h"

#define DV_TIMEOUT_MS 15000

/* The line for the TLSA answer at one base domain. */
static void tlsa_line(const struct dns_answer *a, const char *base, bool addr_secure,
                      const char *domain, struct strbuf *line)
{
    if (a->status == DNS_SERVFAIL) /* a validating resolver's answer to bad signatures */
        sb_printf(line, "BOGUS TLSA record found for MX(%s) in %s\n", base, domain);
    else if (dns_status_temporary(a->status) || a->status == DNS_BADNAME)
        sb_printf(line, "TLSA lookup failed for MX(%s) in %s: %s\n", base, domain,
                  a->detail[0] ? a->detail : dns_status_name(a->status));
    else if (a->status != DNS_OK || a->nrr == 0)
        sb_printf(line, "No TLSA record found for MX(%s) in %s\n", base, domain);
    else
        sb_printf(line, "%s TLSA record found for MX(%s) in %s\n",
                  a->secure && addr_secure ? "SECURE" : "INSECURE", base, domain);
}

/* The TLSA step of one host: looks the RRset up at each base domain in turn (the CNAME-expanded
 * name first, RFC 7672 §2.2.2) until one settles, writes a line per lookup into line, and fills
 * h's DANE slots. Returns true when secure, usable records authenticate the next connection.
 * tlsa keeps the records h points into. */
static bool tlsa_step(const struct dns_config *cfg, const char *domain, const struct mx_target *m,
                      const char *canon, struct dns_answer *tlsa, struct tlspol_host *h,
                      struct strbuf *line)
{
    const char *bases[2];
    size_t nbases = dane_bases(m->host, canon, m->addr_secure, bases);
    size_t i = 0;
    for (;; i++) {
        char qname[MX_NAME_MAX + 16];
        snprintf(qname, sizeof qname, "_25._tcp.%s", bases[i]);
        dns_answer_clear(tlsa);
        dns_resolve(cfg, qname, DNS_T_TLSA, tlsa);
        tlsa_line(tlsa, bases[i], m->addr_secure, domain, line);
        if (i + 1 == nbases || dane_tlsa_settles(tlsa))
            break;
    }
    if (tlsa->status != DNS_OK || tlsa->nrr == 0)
        return false;
    /* An insecure MX RRset does not stop DANE when the host's own records are signed
     * (RFC 7672 §2.2.1): that is the Opportunistic decision of dane.c. */
    struct dane_facts f = {.mode = CFG_DANE_OPPORTUNISTIC,
                           .mx_secure = m->mx_secure,
                           .addr_secure = m->addr_secure,
                           .tlsa = tlsa,
                           .base = bases[i]};
    char reason[256];
    dane_decide(&f, h, reason, sizeof reason);
    if (tlsa->secure && m->addr_secure && h->dane != TLSPOL_DANE_AUTH)
        sb_printf(line, "No usable TLSA record for MX(%s) in %s\n", bases[i], domain);
    return h->dane == TLSPOL_DANE_AUTH;
}

/* One address: TLSA, connect, STARTTLS with the records. Returns true on DANE success. */
static bool try_addr(struct sh_probe *d, const char *domain, const struct mx_target *m,
                     const char *canon, bool *interrupted)
{
    struct sh *sh = d->sh;
    struct dns_answer tlsa;
    memset(&tlsa, 0, sizeof tlsa);
    struct tlspol_host h;
    tlspol_host_init(&h, CFG_TLS_REQUIRED_VERIFY, domain, m->host, m->literal, false);
    /* STARTTLS needs the records, so the lookup comes first; its line is printed once the
     * connection stands, in the appliance's order. */
    sb_reset(&d->after_connect);
    bool usable = tlsa_step(&d->dns, domain, m, canon, &tlsa, &h, &d->after_connect);

    sh_printf(sh, "Connecting to %s on port %u.\n", m->addr, m->port);
    char helo[256], err[256];
    sh_hostname(sh, helo, sizeof helo);
    struct smtpc_params p = {.addr = m->addr, .port = m->port, .helo = helo, .ctx = d->ctx};
    p.timeouts.connect = p.timeouts.greeting = p.timeouts.ehlo = DV_TIMEOUT_MS;
    p.timeouts.starttls = p.timeouts.handshake = DV_TIMEOUT_MS;
    if (usable) {
        p.starttls = true;
        p.sni = h.dane_base; /* the TLSA base domain (RFC 7672 §8.1) */
        p.dane_base = h.dane_base;
        p.dane_host = m->host;
        p.tlsa = h.tlsa;
        p.ntlsa = h.ntlsa;
    }
    d->connected = false;
    d->addr = m->addr;
    bool ok = false;
    struct smtpc *c = smtpc_open(d->loop, &p, sh_probe_conn_event, d, err, sizeof err);
    if (!c) {
        sh_printf(sh, "Connection to %s failed: %s\n", m->addr, err);
        goto out;
    }
    if (!sh_probe_run(d)) {
        *interrupted = true;
        goto out;
    }
    const struct smtpc_info *in = smtpc_info(c);
    if (!d->connected) {
        sh_printf(sh, "Connection to %s failed: %s\n", m->addr, in->detail);
        goto out;
    }
    if (!usable)
        goto out;
    sh_printf(sh, "Checking TLS connection.\n");
    if (d->ev == SMTPC_FAILED && in->error == SMTPC_ERR_TLS) {
        sh_printf(sh, "TLS handshake failed: %s\n", in->tls.error);
    } else if (d->ev == SMTPC_FAILED) {
        sh_printf(sh, "Connection to %s failed: %s\n", m->addr, in->detail);
    } else if (!in->tls.established) {
        if (in->tls.refused)
            sh_printf(sh, "STARTTLS was refused by %s: %d %s\n", m->host, in->last.code,
                      in->last.text);
        else
            sh_printf(sh, "STARTTLS is not offered by %s.\n", m->host);
    } else {
        sh_printf(sh, "TLS connection established: protocol %s, cipher %s.\n", in->tls.protocol,
                  in->tls.cipher);
        if (in->tls.dane_ok && in->tls.verify_result == X509_V_OK) {
            sh_printf(sh, "Certificate verification successful\n");
            ok = true;
        } else {
            sh_printf(sh, "Certificate verification failed: no TLSA record matches the "
                          "certificate\n");
        }
    }
    sh_printf(sh, "TLS connection %s %s.\n", ok ? "succeeded" : "failed", domain);
out:
    if (c && d->done && d->ev == SMTPC_READY) {
        smtpc_quit(c);
        sh_probe_run(d);
    }
    smtpc_free(c);
    dns_answer_clear(&tlsa);
    return ok;
}

/* The MX step failed: say how, as the appliance words it. */
static void mx_failed(struct sh *sh, const struct dns_config *cfg, const char *domain,
                      const struct mx_result *mx)
{
    struct dns_answer a;
    dns_resolve(cfg, domain, DNS_T_MX, &a);
    if (a.status == DNS_SERVFAIL)
        sh_printf(sh, "BOGUS MX record found for %s\n", domain);
    else
        sh_printf(sh, "MX lookup failed for %s: %s\n", domain, mx->reason);
    dns_answer_clear(&a);
}

enum sh_rc sh_cmd_daneverify(struct sh *sh, int argc, char **argv)
{
    struct sh_probe d;
    char domain[CFG_DOMAIN_MAX + 3];
    if (!sh_probe_begin(&d, sh, "daneverify", argc, argv, false, domain, sizeof domain))
        return SH_OK;
    bool ok = false, interrupted = false;
    if (!sh_probe_start(&d))
        goto out;
    struct cfg_dest eff;
    cfg_snapshot_dest(d.snap, domain, &eff, NULL);
    if (!mx_resolve(d.loop, d.resolver, domain, eff.ip_sort, 25, sh_probe_mx_done, &d)) {
        sh_error(sh, "Cannot look up %s: out of memory", domain);
        goto out;
    }
    if (!sh_probe_run(&d)) {
        interrupted = true;
        goto out;
    }
    if (d.mx.status != MX_OK) {
        mx_failed(sh, &d.dns, domain, &d.mx);
        goto verdict;
    }
    size_t last_host = (size_t)-1;
    for (size_t i = 0; i < d.mx.ntargets && !ok && !interrupted; i++) {
        const struct mx_target *m = &d.mx.targets[i];
        const char *canon = mx_canon(&d.mx, m);
        if (m->host_index != last_host) {
            if (d.mx.implicit)
                sh_printf(sh,
                          "No MX record found for %s: using its address records (implicit "
                          "MX)\n",
                          domain);
            else
                sh_printf(sh, "%s MX record(%s) found for %s\n",
                          d.mx.mx_secure ? "SECURE" : "INSECURE", m->host, domain);
            last_host = m->host_index;
            if (canon)
                sh_printf(sh, "%s CNAME record (%s) found for MX(%s) in %s\n",
                          m->addr_secure ? "SECURE" : "INSECURE", canon, m->host, domain);
        }
        sh_printf(sh, "%s %s record (%s) found for MX(%s) in %s\n",
                  m->addr_secure ? "SECURE" : "INSECURE", m->family == AF_INET ? "A" : "AAAA",
                  m->addr, m->host, domain);
        ok = try_addr(&d, domain, m, canon, &interrupted);
    }
verdict:
    if (interrupted)
        goto out;
    if (ok)
        sh_printf(sh, "DANE SUCCESS for %s\n", domain);
    else
        sh_error(sh, "DANE FAILED for %s", domain);
out:
    if (interrupted)
        sh_printf(sh, "Interrupted.\n");
    sh_probe_end(&d);
    return interrupted ? SH_ABORT : SH_OK;
}
