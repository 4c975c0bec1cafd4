/* probe.c - the private event loop of the shell's live checks (probe.h). */
#include "probe.h"

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
