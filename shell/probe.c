/* probe.c - what the shell's live checks share: set-up, event loop, tear-down (probe.h). */
#include <stdio.h>

#include "cfg.h"
#include "db_snapshot.h"
#include "probe.h"

bool sh_probe_begin(struct sh_probe *p, struct sh *sh, const char *command, int argc, char **argv,
                    bool allow_literal, char *domain, size_t domainlen)
{
    *p = (struct sh_probe){.sh = sh, .after_connect = STRBUF_INIT};
    if (argc != 2) {
        sh_error(sh, "Usage: %s <domain>", command);
        return false;
    }
    if (!cfg_domain_normalize(argv[1], domain, domainlen) || domain[0] == '.' ||
        (!allow_literal && domain[0] == '[')) {
        sh_error(sh, "%s is not a valid domain.", argv[1]);
        return false;
    }
    char err[256];
    p->snap = db_cfg_snapshot(sh->db, 0, err, sizeof err);
    if (!p->snap) {
        sh_error(sh, "Cannot read the committed configuration: %s", err);
        return false;
    }
    return true;
}

bool sh_probe_start(struct sh_probe *p)
{
    p->loop = ev_loop_new();
    cfg_dns_decode(cfg_snapshot_unit(p->snap, CFG_KIND_DNS, CFG_UNIT_DNS), &p->dns_cfg);
    cfg_dns_config(&p->dns_cfg, NULL, &p->dns);
    char err[256];
    if (!p->loop || dns_resolver_new(p->loop, &p->dns, &p->resolver, err, sizeof err) != 0) {
        sh_error(p->sh, "Cannot start the resolver: %s", p->loop ? err : "out of memory");
        return false;
    }
    p->ctx = smtpc_ctx_from_config(p->snap, err, sizeof err);
    if (!p->ctx) {
        sh_error(p->sh, "Cannot set up TLS: %s", err);
        return false;
    }
    return true;
}

void sh_probe_end(struct sh_probe *p)
{
    mx_result_clear(&p->mx);
    sb_free(&p->after_connect);
    if (p->ctx)
        SSL_CTX_free(p->ctx);
    if (p->resolver)
        dns_resolver_free(p->resolver);
    if (p->loop)
        ev_loop_free(p->loop);
    cfg_snapshot_unref(p->snap);
}

void sh_probe_mx_done(struct mx_result *r, void *arg)
{
    struct sh_probe *p = arg;
    mx_result_move(&p->mx, r);
    p->done = true;
}

void sh_probe_conn_event(struct smtpc *c, enum smtpc_event ev, void *arg)
{
    struct sh_probe *p = arg;
    if (ev == SMTPC_CONNECTED) {
        p->connected = true;
        sh_printf(p->sh, "Connected to %s from interface %s.\n", p->addr,
                  smtpc_info(c)->local_addr);
        sh_printf(p->sh, "%s", sb_str(&p->after_connect));
        return;
    }
    p->ev = ev;
    p->done = true;
}

bool sh_probe_run(struct sh_probe *p)
{
    p->done = false;
    while (!p->done && !sh_interrupted())
        if (ev_run_once(p->loop, 200) < 0)
            break;
    return p->done;
}
