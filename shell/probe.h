/* probe.h - what the shell's live checks (tlsverify, daneverify) share: a private event loop run
 * until the pending step (an MX resolution, an SMTP session step) is done, and the "Connected to"
 * line printed as a delivery connection comes up. */
#ifndef STSGATE_PROBE_H
#define STSGATE_PROBE_H

#include <stdbool.h>

#include "evloop.h"
#include "mxresolve.h"
#include "sh.h"
#include "smtp_client.h"
#include "strbuf.h"

struct sh_probe {
    struct sh *sh;
    struct ev_loop *loop;
    bool done;                   /* the pending step finished */
    enum smtpc_event ev;         /* the SMTP event that finished it */
    bool connected;              /* the TCP connection came up */
    const char *addr;            /* the address being connected to */
    struct strbuf after_connect; /* printed right after the "Connected to" line */
    struct mx_result mx;         /* the MX resolution's result */
};

/* Callbacks for mx_resolve*() and smtpc_open(), with the probe as their argument. */
void sh_probe_mx_done(struct mx_result *r, void *arg);
void sh_probe_conn_event(struct smtpc *c, enum smtpc_event ev, void *arg);
/* Runs the loop until the pending step is done; false when Ctrl-C interrupted it. */
bool sh_probe_run(struct sh_probe *p);

#endif
