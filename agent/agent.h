/* agent.h - the stsgated process: what main.c owns and what the listener, the control socket and
 * delivery (delivery.c) may use.
 *
 * One struct agent per process, single-threaded: everything runs on agent->loop. Promises to the
 * modules that share it:
 * - agent->snap is always a built snapshot of the newest committed configuration; it is replaced
 *   (within a second of a commit) only between callbacks, and the old one is unreferenced then.
 *   Work that must keep "the configuration it started with" takes agent_snapshot() and releases
 *   it with cfg_snapshot_unref() when done;
 * - agent->queue is open for the life of the process; ids come from agent_next_id();
 * - agent_log() writes a mail_logs line (and stderr) at the configured threshold;
 * - agent->draining becomes true once SIGTERM arrived and never goes back. */
#ifndef STSGATE_AGENT_H
#define STSGATE_AGENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "cfg_snapshot.h"
#include "db_cfg.h"
#include "db_queue.h"
#include "evloop.h"
#include "maillog.h"

#define AGENT_MAX_LISTEN 16
#define AGENT_MAX_RELAY 64

/* A client network allowed to relay (--relay). */
struct agent_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
};

struct agent_listen {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char text[64]; /* as given: "127.0.0.1:2525", "[::1]:25" */
};

/* The command line (stsgated.md). */
struct agent_options {
    char datadir[4096];
    struct agent_listen listen[AGENT_MAX_LISTEN];
    size_t n_listen;
    struct agent_cidr relay[AGENT_MAX_RELAY];
    size_t n_relay;
    uint64_t max_size;
    long max_rcpt;
    long max_conn;
    enum maillog_level log_level;
    int sts_fetch_timeout; /* seconds, 1-60: for the MTA-STS engine */
};

/* What `status` shows besides the queue and delivery. */
struct agent_counters {
    uint64_t conn_total;     /* incoming connections accepted */
    uint64_t conn_active;    /* incoming connections open now */
    uint64_t conn_refused;   /* over --max-conn */
    uint64_t msgs_received;  /* messages made durable */
    uint64_t rcpts_received; /* their recipients */
    uint64_t bytes_received;
    uint64_t relay_denied; /* RCPT refused with 550 5.7.1 */
};

struct listener;
struct control;
struct delivery;
struct reports;

struct agent {
    struct ev_loop *loop;
    struct agent_options opt;
    struct db_cfg *cfg;
    struct cfg_snapshot *snap; /* newest committed configuration, refcounted */
    struct db_queue *queue;
    struct maillog *log;
    struct delivery *delivery;
    struct reports *reports; /* TLS reporting (RFC 8460) */
    struct listener *listener;
    struct control *control;
    struct agent_counters stats;
    time_t started; /* wall clock, for `status` */
    bool draining;
};

/* A mail_logs line (mail-logs.md): agent_log(a, MAILLOG_INFO, "MID %lld queued for delivery", ..)
 * Never fails; lines below --log-level cost a comparison. */
void agent_log(struct agent *a, enum maillog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool agent_log_enabled(const struct agent *a, enum maillog_level level);

/* A new reference to the current snapshot: keep it for the life of a connection. */
struct cfg_snapshot *agent_snapshot(struct agent *a);

/* The next ICID, DCID or MID. On a database failure it logs a Critical line and returns 0: the
 * caller refuses the work (421 / tries later). */
int64_t agent_next_id(struct agent *a, enum db_queue_id kind);

/* The name this host uses in banners, EHLO and Received: the committed hostname, else the
 * machine's. */
const char *agent_hostname(struct agent *a);
/* The same for a given snapshot (a connection keeps the configuration it started with). */
const char *agent_hostname_for(struct agent *a, const struct cfg_snapshot *snap);

/* Whether a client address may relay (--relay). */
bool agent_relay_allowed(const struct agent *a, const struct sockaddr *sa);

/* Parses "192.0.2.0/24", "::1/128", or an address alone (a host). */
bool agent_parse_cidr(const char *s, struct agent_cidr *out);
/* Parses "127.0.0.1:2525" or "[::1]:25". */
bool agent_parse_listen(const char *s, struct agent_listen *out);

#endif
