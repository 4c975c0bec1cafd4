/* tlsverify.c - `tlsverify <domain>` (cli.md §6): connect to the domain's MX hosts (or its SMTP
 * route's hosts) as a delivery would, under the committed TLS option, and print each step in the
 * daneverify style. Nothing is sent: each connection ends with QUIT once TLS is decided.
 *
 * It uses exactly what delivery uses (mxresolve, tlspolicy, smtp_client, the committed
 * resolvers, CA lists and outbound certificate) on a private event loop (probe.h), so what it
 * shows is what the agent would do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "cfg_route.h"
#include "cfg_snapshot.h"
#include "mxresolve.h"
#include "probe.h"
#include "sh.h"
#include "smtp_client.h"
#include "tlspolicy.h"

static bool route_exists(void *arg, const char *name)
{
    return cfg_snapshot_unit(arg, CFG_KIND_ROUTE, name) != NULL;
}

/* One host: connect, STARTTLS as the plan says, decide. Returns the action. */
static enum tlspol_action try_host(struct sh_probe *t, const struct mx_target *m,
                                   struct tlspol_host *h, const char *helo)
{
    struct sh *sh = t->sh;
    sh_printf(sh, "Connecting to %s on port %u.\n", m->addr, m->port);
    struct smtpc_params p = {
        .addr = m->addr,
        .port = m->port,
        .helo = helo,
        .starttls = h->starttls,
        .sni = h->sni,
        .ctx = t->ctx,
    };
    p.timeouts.connect = p.timeouts.greeting = p.timeouts.ehlo = 15000;
    p.timeouts.starttls = p.timeouts.handshake = 15000;
    char err[256];
    t->addr = m->addr;
    struct smtpc *c = smtpc_open(t->loop, &p, sh_probe_conn_event, t, err, sizeof err);
    if (!c) {
        sh_printf(sh, "Connection to %s failed: %s\n", m->addr, err);
        return TLSPOL_HOST_FAILED;
    }
    sh_probe_run(t);
    const struct smtpc_info *in = smtpc_info(c);
    enum tlspol_action act = TLSPOL_HOST_FAILED;
    if (!t->done) {
        sh_printf(sh, "Interrupted.\n");
    } else if (t->ev == SMTPC_FAILED) {
        if (in->error == SMTPC_ERR_TLS) {
            sh_printf(sh, "Checking TLS connection.\n");
            sh_printf(sh, "TLS handshake failed after STARTTLS: %s\n", in->tls.error);
            act = tlspol_event(h, TLSPOL_EV_HANDSHAKE_FAILED, false, in->tls.error);
            if (act == TLSPOL_RETRY_PLAIN)
                sh_printf(sh, "A delivery would retry %s without TLS (%s).\n", m->host,
                          cfg_tls_label(h->option));
        } else {
            sh_printf(sh, "Connection to %s failed: %s\n", m->addr, in->detail);
        }
    } else if (!h->starttls) {
        sh_printf(sh, "TLS is not used (TLS option %s).\n", cfg_tls_label(h->option));
        act = TLSPOL_GO_PLAIN;
    } else if (!in->tls.established) {
        if (in->tls.refused) {
            sh_printf(sh, "STARTTLS was refused by %s: %s\n", m->host, in->tls.error);
            act = tlspol_event(h, TLSPOL_EV_STARTTLS_REFUSED, false, in->tls.error);
        } else {
            sh_printf(sh, "STARTTLS is not offered by %s.\n", m->host);
            act = tlspol_event(h, TLSPOL_EV_NO_STARTTLS, false, NULL);
        }
    } else {
        sh_printf(sh, "Checking TLS connection.\n");
        sh_printf(sh, "TLS connection established: protocol %s, cipher %s.\n", in->tls.protocol,
                  in->tls.cipher);
        X509 *cert = smtpc_peer_cert(c);
        char names[1024];
        tlspol_cert_names(cert, names, sizeof names);
        sh_printf(sh, "Certificate: %s (chain of %d sent)\n", names, in->tls.chain_len);
        bool chain_ok = in->tls.verify_result == X509_V_OK, name_ok = false;
        char matched[TLSPOL_NAME_MAX];
        bool ok = tlspol_check_cert(h, cert, chain_ok, &name_ok, matched);
        if (!h->verify) {
            sh_printf(sh, "Certificate not verified (TLS option %s); chain: %s\n",
                      cfg_tls_label(h->option), in->tls.verify_error);
            act = tlspol_event(h, TLSPOL_EV_CERT_OK, false, NULL);
        } else {
            struct strbuf ref = STRBUF_INIT;
            for (size_t i = 0; i < h->nnames; i++)
                sb_printf(&ref, "%s%s", i ? ", " : "", h->names[i]);
            sh_printf(sh, "Names checked: %s%s\n", sb_str(&ref),
                      h->san_only ? " (subjectAltName only)" : "");
            sb_free(&ref);
            if (ok) {
                sh_printf(sh, "Certificate verification successful (%s)\n", matched);
                act = tlspol_event(h, TLSPOL_EV_CERT_OK, false, NULL);
            } else {
                if (!chain_ok)
                    sh_printf(sh, "Certificate verification failed: %s\n", in->tls.verify_error);
                else
                    sh_printf(sh,
                              "Certificate verification failed: peer cert does not match "
                              "domain %s\n",
                              h->domain);
                act = tlspol_event(h, TLSPOL_EV_CERT_FAILED, chain_ok && !name_ok,
                                   in->tls.verify_error);
                if (act == TLSPOL_GO_TLS)
                    sh_printf(sh, "A delivery would go on over TLS anyway (TLS option %s).\n",
                              cfg_tls_label(h->option));
            }
        }
        if (act == TLSPOL_GO_TLS)
            sh_printf(sh, "TLS connection succeeded %s.\n", h->domain);
    }
    if (act == TLSPOL_GO_PLAIN)
        sh_printf(sh, "A delivery would go on in the clear (TLS option %s).\n",
                  cfg_tls_label(h->option));
    if (act == TLSPOL_HOST_FAILED && h->reason[0])
        sh_printf(sh, "Host failed (%s): %s\n", h->status, h->reason);
    if (t->done && (t->ev == SMTPC_READY)) {
        smtpc_quit(c);
        sh_probe_run(t);
    }
    smtpc_free(c);
    return act;
}

enum sh_rc sh_cmd_tlsverify(struct sh *sh, int argc, char **argv)
{
    struct sh_probe t;
    char domain[CFG_DOMAIN_MAX + 3];
    if (!sh_probe_begin(&t, sh, "tlsverify", argc, argv, true, domain, sizeof domain))
        return SH_OK;
    struct cfg_dest eff;
    const char *entry = NULL;
    cfg_snapshot_dest(t.snap, domain, &eff, &entry);
    sh_printf(sh, "\nDestination controls for %s: entry %s, TLS %s.\n", domain, entry,
              cfg_tls_label(eff.tls));
    if (!sh_probe_start(&t))
        goto out;

    char route[CFG_ROUTE_DOMAIN_BUF];
    bool routed = cfg_route_match(domain, route_exists, t.snap, route, sizeof route);
    struct mx_lookup *l;
    if (routed) {
        struct cfg_route_hosts hosts;
        cfg_route_decode(cfg_snapshot_unit(t.snap, CFG_KIND_ROUTE, route), &hosts);
        struct mx_route_host rh[CFG_ROUTE_HOSTS_MAX];
        size_t n = mx_route_hosts(&hosts, rh);
        sh_printf(sh, "SMTP route %s applies: MTA-STS and DANE are not used.\n", route);
        l = mx_resolve_route(t.loop, t.resolver, rh, n, eff.ip_sort, sh_probe_mx_done, &t);
    } else {
        l = mx_resolve(t.loop, t.resolver, domain, eff.ip_sort, 25, sh_probe_mx_done, &t);
    }
    (void)l;
    sh_probe_run(&t);
    if (!t.done) {
        sh_printf(sh, "Interrupted.\n");
        goto out;
    }
    if (t.mx.status != MX_OK) {
        sh_printf(sh, "%s (%s)\n", t.mx.reason, t.mx.code);
        sh_printf(sh, "TLS FAILED for %s\n", domain);
        goto out;
    }
    size_t last_host = (size_t)-1;
    for (size_t i = 0; i < t.mx.ntargets; i++) {
        const struct mx_target *m = &t.mx.targets[i];
        if (m->host_index != last_host) {
            if (routed)
                sh_printf(sh, "Route host %s:%u\n", m->host, m->port);
            else if (t.mx.implicit)
                sh_printf(sh, "No MX record for %s: using its address records (implicit MX)\n",
                          domain);
            else
                sh_printf(sh, "%s MX record(%s) found for %s\n",
                          t.mx.mx_secure ? "SECURE" : "INSECURE", m->host, domain);
            last_host = m->host_index;
        }
        sh_printf(sh, "%s %s record (%s) found for %s(%s) in %s\n",
                  m->addr_secure ? "SECURE" : "INSECURE", m->family == AF_INET ? "A" : "AAAA",
                  m->addr, routed ? "route host" : "MX", m->host, domain);
    }
    const char *last_reason = "";
    char reason_buf[400];
    for (size_t i = 0; i < t.mx.ntargets; i++) {
        const struct mx_target *m = &t.mx.targets[i];
        struct tlspol_host h;
        tlspol_host_init(&h, eff.tls, domain, m->host, m->literal, routed);
        tlspol_plan(&h);
        char helo[256];
        sh_hostname(sh, helo, sizeof helo);
        enum tlspol_action act = try_host(&t, m, &h, helo);
        if (sh_interrupted())
            break;
        if (act == TLSPOL_GO_TLS) {
            sh_printf(sh, "TLS SUCCESS for %s\n", domain);
            goto out;
        }
        if (act == TLSPOL_GO_PLAIN || act == TLSPOL_RETRY_PLAIN) {
            sh_printf(sh, "TLS NOT USED for %s: a delivery would send in the clear\n", domain);
            goto out;
        }
        snprintf(reason_buf, sizeof reason_buf, "%s", h.reason[0] ? h.reason : "connection failed");
        last_reason = reason_buf;
    }
    sh_printf(sh, "TLS FAILED for %s: %s\n", domain, last_reason[0] ? last_reason : "no host");
out:
    sh_probe_end(&t);
    return SH_OK;
}
