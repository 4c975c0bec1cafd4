/* main.c - stsgated's entry point: the diagnostics, else the delivery agent's process.
 *
 * The process (stsgated.md): one data directory, locked so that a second agent refuses to start;
 * one event loop carrying the listener, the control socket, delivery and the signals (signalfd);
 * the newest committed configuration, checked every second; SIGTERM drains (stop accepting,
 * finish what is in flight, exit 0), SIGHUP reopens mail_logs. */
#include "agent.h"
#include "control.h"
#include "datadir.h"
#include "db_factory.h"
#include "db_snapshot.h"
#include "delivery.h"
#include "reports.h"
#include "diag.h"
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define CONFIG_POLL_MS 1000

/* ---- services for the modules (agent.h) ---- */

void agent_log(struct agent *a, enum maillog_level level, const char *fmt, ...)
{
    if (!maillog_enabled(a->log, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    maillog_vwrite(a->log, level, fmt, ap);
    va_end(ap);
}

bool agent_log_enabled(const struct agent *a, enum maillog_level level)
{
    return maillog_enabled(a->log, level);
}

struct cfg_snapshot *agent_snapshot(struct agent *a)
{
    return cfg_snapshot_ref(a->snap);
}

int64_t agent_next_id(struct agent *a, enum db_queue_id kind)
{
    int64_t id = 0;
    char err[256];
    if (db_queue_next_id(a->queue, kind, &id, err, sizeof err) != DB_OK) {
        agent_log(a, MAILLOG_CRITICAL, "Queue database error: %s", err);
        return 0;
    }
    return id;
}

const char *agent_hostname(struct agent *a)
{
    return agent_hostname_for(a, a->snap);
}

const char *agent_hostname_for(struct agent *a, const struct cfg_snapshot *snap)
{
    (void)a;
    static char machine[256];
    const char *h = snap ? cfg_snapshot_hostname(snap) : NULL;
    if (h && *h)
        return h;
    if (!machine[0] && (gethostname(machine, sizeof machine - 1) != 0 || !machine[0]))
        snprintf(machine, sizeof machine, "localhost");
    return machine;
}

static bool prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

bool agent_relay_allowed(const struct agent *a, const struct sockaddr *sa)
{
    unsigned char addr[16];
    int family = sa->sa_family;
    if (family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(in6)) {
            /* A v4 client on a dual-stack socket is judged by the IPv4 networks. */
            family = AF_INET;
            memcpy(addr, in6->s6_addr + 12, 4);
        } else {
            memcpy(addr, in6->s6_addr, 16);
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < a->opt.n_relay; i++) {
        const struct agent_cidr *c = &a->opt.relay[i];
        if (c->family == family && prefix_match(addr, c->addr, c->prefix))
            return true;
    }
    return false;
}

bool agent_parse_cidr(const char *s, struct agent_cidr *out)
{
    char host[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    if (hl == 0 || hl >= sizeof host)
        return false;
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(out, 0, sizeof *out);
    int max;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return false;
    }
    out->prefix = max;
    if (slash) {
        char *end;
        errno = 0;
        long p = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || errno || p < 0 || p > max)
            return false;
        out->prefix = (int)p;
    }
    return true;
}

bool agent_parse_listen(const char *s, struct agent_listen *out)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *port;
    memset(out, 0, sizeof *out);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host)
            return false;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon || (size_t)(colon - s) >= sizeof host)
            return false;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    char *end;
    errno = 0;
    long p = strtol(port, &end, 10);
    if (!*port || *end || errno || p < 1 || p > 65535)
        return false;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->addr;
    if (s[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        out->addrlen = sizeof *v4;
    } else if (s[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        out->addrlen = sizeof *v6;
    } else {
        return false;
    }
    snprintf(out->text, sizeof out->text, "%s", s);
    return true;
}

/* ---- configuration ---- */

static void config_tick(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)t;
    struct agent *a = arg;
    int64_t version;
    if (db_cfg_latest(a->cfg, &version) != DB_OK) {
        agent_log(a, MAILLOG_WARNING, "Cannot read the configuration store: %s",
                  db_cfg_error(a->cfg));
    } else if (version != cfg_snapshot_version(a->snap)) {
        char err[512];
        struct cfg_snapshot *s = db_cfg_snapshot(a->cfg, version, err, sizeof err);
        if (!s) {
            agent_log(a, MAILLOG_WARNING, "Cannot load configuration version %lld: %s",
                      (long long)version, err);
        } else {
            struct cfg_snapshot *old = a->snap;
            a->snap = s;
            cfg_snapshot_unref(old);
            agent_log(a, MAILLOG_INFO, "Configuration version %lld is now in use",
                      (long long)version);
            if (a->delivery)
                delivery_config_changed(a->delivery);
        }
    }
    if (!ev_timer_add(loop, CONFIG_POLL_MS, config_tick, a))
        agent_log(a, MAILLOG_CRITICAL, "Out of memory: the configuration is no longer watched");
}

/* ---- signals and draining ---- */

struct run_state {
    struct agent *a;
    int sigfd;
    bool listener_done, delivery_done;
    int exit_status;
};

static void maybe_stop(struct run_state *rs)
{
    if (rs->listener_done && rs->delivery_done) {
        agent_log(rs->a, MAILLOG_INFO, "stsgated stopped");
        ev_stop(rs->a->loop);
    }
}

static void listener_drained(void *arg)
{
    struct run_state *rs = arg;
    rs->listener_done = true;
    maybe_stop(rs);
}

static void delivery_drained(void *arg)
{
    struct run_state *rs = arg;
    rs->delivery_done = true;
    maybe_stop(rs);
}

static void on_signal(struct ev_loop *loop, int fd, unsigned revents, void *arg)
{
    (void)revents;
    struct run_state *rs = arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            if (!maillog_reopen(rs->a->log))
                agent_log(rs->a, MAILLOG_WARNING, "Cannot reopen mail_logs");
            else
                agent_log(rs->a, MAILLOG_INFO, "SIGHUP: mail_logs reopened");
            continue;
        }
        /* SIGTERM or SIGINT */
        if (rs->a->draining) {
            agent_log(rs->a, MAILLOG_WARNING, "Second stop signal: stopping without draining");
            ev_stop(loop);
            return;
        }
        rs->a->draining = true;
        agent_log(rs->a, MAILLOG_INFO, "%s received: draining (no new connections)",
                  si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        listener_drain(rs->a->listener, listener_drained, rs);
        if (rs->a->delivery)
            delivery_drain(rs->a->delivery, delivery_drained, rs);
        else
            delivery_drained(rs);
    }
}

/* ---- the lock ---- */

/* Takes <data>/stsgated.pid, locked for the life of the process. -1 when another agent holds it
 * (its pid in *other) or on error (*other = 0). */
static int take_lock(const char *datadir, long *other, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/stsgated.pid", datadir);
    *other = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "Cannot open %.900s: %s.", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            char buf[32] = "";
            ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
            buf[n > 0 ? n : 0] = '\0';
            *other = strtol(buf, NULL, 10);
            if (*other <= 0)
                *other = -1;
        } else {
            snprintf(err, errlen, "Cannot lock %.900s: %s.", path, strerror(errno));
        }
        close(fd);
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        snprintf(err, errlen, "Cannot write %.900s: %s.", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- the command line ---- */

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "stsgated: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    diag_usage(stderr);
    return 2;
}

static bool parse_num(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int parse_options(int argc, char **argv, struct agent_options *o)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"relay", required_argument, NULL, 'r'},
        {"max-size", required_argument, NULL, 's'},
        {"max-rcpt", required_argument, NULL, 'R'},
        {"max-conn", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'L'},
        {"sts-fetch-timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *data = NULL;
    o->max_size = 33554432;
    o->max_rcpt = 1000;
    o->max_conn = 1000;
    o->log_level = MAILLOG_INFO;
    o->sts_fetch_timeout = 60;
    opterr = 0;
    int c;
    long long v;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'l':
            if (o->n_listen == AGENT_MAX_LISTEN)
                return usage_error("too many --listen addresses (at most 16)", NULL);
            if (!agent_parse_listen(optarg, &o->listen[o->n_listen]))
                return usage_error("--listen takes ADDR:PORT, IPv6 as [ADDR]:PORT: '%s'", optarg);
            o->n_listen++;
            break;
        case 'r':
            if (o->n_relay == AGENT_MAX_RELAY)
                return usage_error("too many --relay networks (at most 64)", NULL);
            if (!agent_parse_cidr(optarg, &o->relay[o->n_relay]))
                return usage_error("--relay takes a network as ADDR/PREFIX: '%s'", optarg);
            o->n_relay++;
            break;
        case 's':
            if (!parse_num(optarg, 1, (long long)1 << 40, &v))
                return usage_error("--max-size takes a number of bytes: '%s'", optarg);
            o->max_size = (uint64_t)v;
            break;
        case 'R':
            if (!parse_num(optarg, 1, 100000, &v))
                return usage_error("--max-rcpt takes a number from 1 to 100000: '%s'", optarg);
            o->max_rcpt = (long)v;
            break;
        case 'c':
            if (!parse_num(optarg, 1, 1000000, &v))
                return usage_error("--max-conn takes a number from 1 to 1000000: '%s'", optarg);
            o->max_conn = (long)v;
            break;
        case 'L':
            if (!maillog_parse_level(optarg, &o->log_level))
                return usage_error(
                    "--log-level takes critical, warning, info, debug or trace: '%s'", optarg);
            break;
        case 't':
            if (!parse_num(optarg, 1, 60, &v))
                return usage_error("--sts-fetch-timeout takes a number from 1 to 60: '%s'", optarg);
            o->sts_fetch_timeout = (int)v;
            break;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!datadir_resolve(data, o->datadir, sizeof o->datadir))
        return usage_error("the data directory path is too long", NULL);
    if (o->n_listen == 0)
        agent_parse_listen("127.0.0.1:2525", &o->listen[o->n_listen++]);
    if (o->n_relay == 0) {
        agent_parse_cidr("127.0.0.0/8", &o->relay[o->n_relay++]);
        agent_parse_cidr("::1/128", &o->relay[o->n_relay++]);
    }
    return 0;
}

/* ---- running ---- */

/* The steps of run_agent, in the order they run. A start-up step that fails says what failed (on
 * stderr until mail_logs is open, then as a Critical line) and leaves what it made for
 * run_agent's one clean-up path. */

/* Creates or initialises the data directory and takes its lock: the lock's fd, or -1. */
static int claim_datadir(const char *datadir)
{
    char err[1024];
    if (!datadir_prepare(datadir, err, sizeof err)) {
        fprintf(stderr, "stsgated: %s\n", err);
        return -1;
    }
    long other;
    int lockfd = take_lock(datadir, &other, err, sizeof err);
    if (lockfd < 0) {
        if (other > 0)
            fprintf(stderr, "stsgated is already running on %s (pid %ld).\n", datadir, other);
        else if (other < 0)
            fprintf(stderr, "stsgated is already running on %s (pid unknown).\n", datadir);
        else
            fprintf(stderr, "stsgated: %s\n", err);
    }
    return lockfd;
}

static bool open_mail_logs(struct agent *a)
{
    char err[1024];
    char logdir[4200];
    snprintf(logdir, sizeof logdir, "%s/logs", a->opt.datadir);
    struct maillog_options lo = {
        .dir = logdir,
        .version = STSGATE_VERSION,
        .threshold = a->opt.log_level,
        .to_stderr = true,
    };
    a->log = maillog_open(&lo, err, sizeof err);
    if (!a->log)
        fprintf(stderr, "stsgated: %s\n", err);
    return a->log != NULL;
}

/* The configuration store with its newest committed version (in *version), and the queue. */
static bool open_stores(struct agent *a, int64_t *version)
{
    char err[1024];
    if (db_cfg_open(a->opt.datadir, db_factory_units, NULL, &a->cfg, err, sizeof err) != DB_OK) {
        agent_log(a, MAILLOG_CRITICAL, "Cannot open the configuration store: %s", err);
        return false;
    }
    if (db_cfg_latest(a->cfg, version) != DB_OK) {
        agent_log(a, MAILLOG_CRITICAL, "Cannot read the configuration store: %s",
                  db_cfg_error(a->cfg));
        return false;
    }
    a->snap = db_cfg_snapshot(a->cfg, *version, err, sizeof err);
    if (!a->snap) {
        agent_log(a, MAILLOG_CRITICAL, "Cannot load configuration version %lld: %s",
                  (long long)*version, err);
        return false;
    }
    if (db_queue_open(a->opt.datadir, &a->queue, err, sizeof err) != DB_OK) {
        agent_log(a, MAILLOG_CRITICAL, "Cannot open the queue: %s", err);
        return false;
    }
    return true;
}

static bool create_loop(struct agent *a)
{
    a->loop = ev_loop_new();
    if (!a->loop)
        agent_log(a, MAILLOG_CRITICAL, "Cannot create the event loop: %s", strerror(errno));
    return a->loop != NULL;
}

/* SIGTERM, SIGINT and SIGHUP arrive through a signalfd on the loop (on_signal); a peer that hangs
 * up shows as EPIPE, not as SIGPIPE. */
static bool watch_signals(struct run_state *rs)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    rs->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (rs->sigfd < 0 || ev_io_set(rs->a->loop, rs->sigfd, EV_READ, on_signal, rs) != 0) {
        agent_log(rs->a, MAILLOG_CRITICAL, "Cannot watch signals: %s", strerror(errno));
        return false;
    }
    return true;
}

/* The listener (which logs "Listening for SMTP"), the control socket, delivery and TLS
 * reporting, then the configuration watch. */
static bool start_modules(struct agent *a)
{
    char err[1024];
    a->listener = listener_new(a, err, sizeof err);
    if (!a->listener) {
        agent_log(a, MAILLOG_CRITICAL, "%s", err);
        return false;
    }
    a->control = control_new(a, err, sizeof err);
    if (!a->control) {
        agent_log(a, MAILLOG_CRITICAL, "%s", err);
        return false;
    }
    a->delivery = delivery_new(a, err, sizeof err);
    if (!a->delivery) {
        agent_log(a, MAILLOG_CRITICAL, "Cannot start delivery: %s", err);
        return false;
    }
    a->reports = reports_new(a, err, sizeof err);
    if (!a->reports) {
        agent_log(a, MAILLOG_CRITICAL, "Cannot start TLS reporting: %s", err);
        return false;
    }
    if (!ev_timer_add(a->loop, CONFIG_POLL_MS, config_tick, a)) {
        agent_log(a, MAILLOG_CRITICAL, "Out of memory");
        return false;
    }
    return true;
}

/* Runs until the drain ends (maybe_stop) or a second stop signal: the exit status. */
static int run_loop(struct agent *a, int64_t version)
{
    agent_log(a, MAILLOG_INFO, "stsgated %s started on %s, configuration version %lld",
              STSGATE_VERSION, a->opt.datadir, (long long)version);
    if (ev_run(a->loop) != 0) {
        agent_log(a, MAILLOG_CRITICAL, "Event loop failure: %s", strerror(errno));
        return 1;
    }
    return 0;
}

static void stop_modules(struct agent *a)
{
    reports_free(a->reports);
    if (a->delivery)
        delivery_free(a->delivery);
    if (a->control)
        control_free(a->control);
    if (a->listener)
        listener_free(a->listener);
}

static void unwatch_signals(struct run_state *rs)
{
    if (rs->sigfd < 0)
        return;
    if (rs->a->loop)
        ev_io_set(rs->a->loop, rs->sigfd, 0, NULL, NULL);
    close(rs->sigfd);
}

static void close_stores(struct agent *a)
{
    db_queue_close(a->queue);
    cfg_snapshot_unref(a->snap);
    if (a->cfg)
        db_cfg_close(a->cfg);
}

static int run_agent(struct agent *a)
{
    int lockfd = claim_datadir(a->opt.datadir);
    if (lockfd < 0)
        return 1;
    if (!open_mail_logs(a)) {
        close(lockfd);
        return 1;
    }
    a->started = time(NULL);

    /* Each step runs only when the one before it succeeded; the clean-up below undoes, in the
     * reverse order, whatever they made. */
    int status = 1;
    int64_t version;
    struct run_state rs = {.a = a, .sigfd = -1};
    if (open_stores(a, &version) && create_loop(a) && watch_signals(&rs) && start_modules(a))
        status = run_loop(a, version);

    stop_modules(a);
    unwatch_signals(&rs);
    if (a->loop)
        ev_loop_free(a->loop);
    close_stores(a);
    maillog_close(a->log);
    close(lockfd);
    return status;
}

int main(int argc, char **argv)
{
    int status;
    if (argc >= 2 && diag_dispatch(argc - 1, argv + 1, &status))
        return status;

    static struct agent agent;
    status = parse_options(argc, argv, &agent.opt);
    if (status != 0)
        return status;
    return run_agent(&agent);
}
