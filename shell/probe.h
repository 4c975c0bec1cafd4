/* probe.h - what the shell's live checks (tlsverify, daneverify) share: the `<command> <domain>`
 * argument and the committed configuration they run under; what delivery would use, set up from
 * it (a private event loop, the committed resolvers, delivery's TLS context) and freed again; the
 * loop run until the pending step (an MX resolution, an SMTP session step) is done; and the
 * "Connected to" line printed as a delivery connection comes up. */
#ifndef STSGATE_PROBE_H
#define STSGATE_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "cfg_dns.h"
#include "cfg_snapshot.h"
#include "dns.h"
#include "evloop.h"
#include "mxresolve.h"
#include "sh.h"
#include "smtp_client.h"
#include "strbuf.h"

struct sh_probe {
    struct sh *sh;
    struct cfg_snapshot *snap; /* the committed configuration */
    struct ev_loop *loop;
    struct cfg_dns dns_cfg;        /* the committed resolvers, which dns points into */
    struct dns_config dns;         /* for the resolver and for dns_resolve() */
    struct dns_resolver *resolver; /* on loop */
    SSL_CTX *ctx;                  /* delivery's: the CA lists, the outbound certificate */
    bool done;                     /* the pending step finished */
    enum smtpc_event ev;           /* the SMTP event that finished it */
    bool connected;                /* the TCP connection came up */
    const char *addr;              /* the address being connected to */
    struct strbuf after_connect;   /* printed right after the "Connected to" line */
    struct mx_result mx;           /* the MX resolution's result */
};

/* The start of `<command> <domain>`: sets p up for sh, normalises argv[1] into domain
 * (CFG_DOMAIN_MAX + 3 bytes; an address literal "[...]" only when allow_literal) and takes the
 * committed configuration into p->snap. False after printing the error line (the usage names
 * command), with nothing to free. */
bool sh_probe_begin(struct sh_probe *p, struct sh *sh, const char *command, int argc, char **argv,
                    bool allow_literal, char *domain, size_t domainlen);
/* Sets up the private loop, the resolver and the TLS context from p->snap. False after printing
 * the error line; sh_probe_end frees what was set up either way. */
bool sh_probe_start(struct sh_probe *p);
/* Frees what sh_probe_begin and sh_probe_start set up, and the MX result. */
void sh_probe_end(struct sh_probe *p);

/* Callbacks for mx_resolve*() and smtpc_open(), with the probe as their argument. */
void sh_probe_mx_done(struct mx_result *r, void *arg);
void sh_probe_conn_event(struct smtpc *c, enum smtpc_event ev, void *arg);
/* Runs the loop until the pending step is done; false when Ctrl-C interrupted it. */
bool sh_probe_run(struct sh_probe *p);

#endif
