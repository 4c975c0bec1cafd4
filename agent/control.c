/* control.c - the control socket <data>/stsgated.sock for the shell's status and delivernow.
 *
 * See control.h for the protocol. A client gets CONTROL_TIMEOUT_MS to send its line; at most
 * CONTROL_MAX_CLIENTS are served at once (the socket is 0600 in a 0700 directory: only the
 * owner's shell talks to it, so the limits only guard against a stuck client).
 *
 * Besides control.h's requests: "tlsrpt send <YYYY-MM-DD>\n" starts that UTC day's TLS reports now
 * (reports_run_day); reply "OK\n<n> TLS reports for <day> to send: <domain>, ...; mail_logs
 * tells how each went.\n", or "ERR <reason>\n" (not a day, reports not enabled in destconfig
 * SETUP). */
#include "control.h"

#include "agent.h"
#include "delivery.h"
#include "listener.h"
#include "reports.h"
#include "strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONTROL_MAX_CLIENTS 16
#define CONTROL_TIMEOUT_MS 5000
#define SOCK_NAME "stsgated.sock"

struct control_client {
    struct control *c;
    int fd;
    char in[256];
    size_t in_len;
    struct strbuf out;
    size_t out_off;
    uint64_t deadline;
    bool answered;
};

struct control {
    struct agent *a;
    int dirfd;
    int fd;
    struct control_client *clients[CONTROL_MAX_CLIENTS];
    struct ev_timer *timer;
};

/* Binds or unlinks the socket name inside the data directory, whatever the directory path's
 * length: through /proc/self/fd/<dirfd>/ (a short path), else after fchdir() into it. */
static int in_datadir(int dirfd, int sock, bool do_bind)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "/proc/self/fd/%d/" SOCK_NAME, dirfd);
    if (!do_bind) {
        unlinkat(dirfd, SOCK_NAME, 0);
        return 0;
    }
    if (bind(sock, (struct sockaddr *)&sun, sizeof sun) == 0)
        return 0;
    if (errno != ENOENT && errno != ENOTDIR)
        return -1;
    /* No /proc: bind by a relative name from inside the directory. */
    int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0 || fchdir(dirfd) != 0) {
        int e = errno;
        if (cwd >= 0)
            close(cwd);
        errno = e;
        return -1;
    }
    snprintf(sun.sun_path, sizeof sun.sun_path, SOCK_NAME);
    int r = bind(sock, (struct sockaddr *)&sun, sizeof sun);
    int e = errno;
    if (fchdir(cwd) != 0)
        e = errno, r = -1;
    close(cwd);
    errno = e;
    return r;
}

static void client_free(struct control_client *cl)
{
    struct control *c = cl->c;
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        if (c->clients[i] == cl)
            c->clients[i] = NULL;
    }
    ev_io_set(c->a->loop, cl->fd, 0, NULL, NULL);
    close(cl->fd);
    sb_free(&cl->out);
    free(cl);
}

static void fmt_time(time_t t, char *out, size_t outlen)
{
    maillog_format_time(t, out, outlen);
}

static void status_text(struct control *c, struct strbuf *out)
{
    struct agent *a = c->a;
    char now_s[64], up_s[64], old_s[64];
    time_t now = time(NULL);
    fmt_time(now, now_s, sizeof now_s);
    fmt_time(a->started, up_s, sizeof up_s);
    long up = (long)(now - a->started);
    sb_printf(out, "Status as of:                 %s\n", now_s);
    sb_printf(out, "Delivery agent:               stsgated %s (pid %ld)\n", STSGATE_VERSION,
              (long)getpid());
    sb_printf(out, "System status:                %s\n", a->draining ? "Draining" : "Online");
    sb_printf(out, "Up since:                     %s (%ldd %ldh %ldm %lds)\n", up_s, up / 86400,
              up / 3600 % 24, up / 60 % 60, up % 60);
    sb_printf(out, "Data directory:               %s\n", a->opt.datadir);
    sb_printf(out, "Configuration version:        %lld\n",
              (long long)cfg_snapshot_version(a->snap));
    sb_printf(out, "Listening on:                 ");
    if (a->listener && !a->draining)
        listener_status(a->listener, out);
    else
        sb_append(out, "(not accepting)");
    sb_append(out, "\n");
    sb_printf(out, "Incoming connections:         %llu active, %llu total, %llu refused\n",
              (unsigned long long)a->stats.conn_active, (unsigned long long)a->stats.conn_total,
              (unsigned long long)a->stats.conn_refused);
    sb_printf(out, "Messages received:            %llu (%llu recipients, %llu bytes)\n",
              (unsigned long long)a->stats.msgs_received,
              (unsigned long long)a->stats.rcpts_received,
              (unsigned long long)a->stats.bytes_received);
    sb_printf(out, "Recipients denied relaying:   %llu\n",
              (unsigned long long)a->stats.relay_denied);
    struct db_queue_counts qc;
    char err[256];
    sb_append(out, "Queue:\n");
    if (db_queue_counts(a->queue, &qc, err, sizeof err) != DB_OK) {
        sb_printf(out, "  (cannot read the queue: %s)\n", err);
    } else {
        if (qc.oldest_received)
            fmt_time((time_t)qc.oldest_received, old_s, sizeof old_s);
        else
            snprintf(old_s, sizeof old_s, "No Messages");
        sb_printf(out, "  Messages:                   %lld\n", (long long)qc.messages);
        sb_printf(out, "  Unattempted recipients:     %lld\n", (long long)qc.rcpt_unattempted);
        sb_printf(out, "  Attempted recipients:       %lld\n", (long long)qc.rcpt_attempted);
        sb_printf(out, "  Recipients in delivery:     %lld\n", (long long)qc.rcpt_claimed);
        sb_printf(out, "  Kilobytes used:             %lld\n", (long long)(qc.bytes + 1023) / 1024);
        sb_printf(out, "  Oldest message:             %s\n", old_s);
    }
    sb_append(out, "Delivery:\n");
    if (a->delivery)
        delivery_status(a->delivery, out);
}

static void client_answer(struct control_client *cl, const char *line)
{
    struct agent *a = cl->c->a;
    cl->answered = true;
    if (strcmp(line, "status") == 0) {
        sb_append(&cl->out, "OK\n");
        status_text(cl->c, &cl->out);
    } else if (strcmp(line, "delivernow") == 0) {
        long n = a->delivery ? delivery_now(a->delivery) : 0;
        agent_log(a, MAILLOG_INFO, "delivernow: %ld recipients rescheduled for immediate delivery",
                  n);
        sb_printf(&cl->out, "OK\n%ld recipients rescheduled for immediate delivery.\n", n);
    } else if (strncmp(line, "tlsrpt send ", 12) == 0) {
        /* The reports of one day, now (operators, tests): the hourly run only sends yesterday's. */
        char err[256];
        const char *day = line + 12;
        struct strbuf names = STRBUF_INIT;
        long n = a->reports ? reports_run_day(a->reports, day, &names, err, sizeof err) : -1;
        if (!a->reports)
            snprintf(err, sizeof err, "TLS reporting is not running");
        if (n < 0) {
            sb_printf(&cl->out, "ERR %s\n", err);
        } else {
            agent_log(a, MAILLOG_INFO, "tlsrpt send: %ld TLS report%s for %s to send", n,
                      n == 1 ? "" : "s", day);
            sb_printf(&cl->out,
                      "OK\n%ld TLS report%s for %s to send%s%s; mail_logs tells how each went.\n",
                      n, n == 1 ? "" : "s", day, n ? ": " : "", sb_str(&names));
        }
        sb_free(&names);
    } else {
        sb_append(&cl->out, "ERR unknown request\n");
    }
}

static void on_client(struct ev_loop *loop, int fd, unsigned revents, void *arg)
{
    struct control_client *cl = arg;
    if (!cl->answered && (revents & EV_READ)) {
        ssize_t r = read(fd, cl->in + cl->in_len, sizeof cl->in - 1 - cl->in_len);
        if (r <= 0 && !(r < 0 && (errno == EAGAIN || errno == EINTR))) {
            client_free(cl);
            return;
        }
        if (r > 0)
            cl->in_len += (size_t)r;
        cl->in[cl->in_len] = '\0';
        char *nl = strchr(cl->in, '\n');
        if (!nl && cl->in_len == sizeof cl->in - 1) {
            client_free(cl);
            return;
        }
        if (!nl)
            return;
        *nl = '\0';
        if (nl > cl->in && nl[-1] == '\r')
            nl[-1] = '\0';
        client_answer(cl, cl->in);
    }
    while (cl->answered && cl->out_off < cl->out.len) {
        ssize_t w = send(fd, cl->out.buf + cl->out_off, cl->out.len - cl->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            client_free(cl);
            return;
        }
        cl->out_off += (size_t)w;
    }
    if (cl->answered && cl->out_off >= cl->out.len) {
        client_free(cl);
        return;
    }
    ev_io_set(loop, fd, cl->answered ? EV_WRITE : EV_READ, on_client, cl);
}

static void on_accept(struct ev_loop *loop, int lfd, unsigned revents, void *arg)
{
    (void)revents;
    struct control *c = arg;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    int slot = -1;
    for (int i = 0; i < CONTROL_MAX_CLIENTS && slot < 0; i++) {
        if (!c->clients[i])
            slot = i;
    }
    if (slot < 0) {
        static const char busy[] = "ERR busy\n";
        ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        close(fd);
        return;
    }
    struct control_client *cl = xcalloc(1, sizeof *cl);
    cl->c = c;
    cl->fd = fd;
    cl->deadline = ev_now_ms(loop) + CONTROL_TIMEOUT_MS;
    c->clients[slot] = cl;
    if (ev_io_set(loop, fd, EV_READ, on_client, cl) != 0)
        client_free(cl);
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)t;
    struct control *c = arg;
    uint64_t now = ev_now_ms(loop);
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        if (c->clients[i] && now >= c->clients[i]->deadline)
            client_free(c->clients[i]);
    }
    c->timer = ev_timer_add(loop, 1000, on_timer, c);
}

struct control *control_new(struct agent *a, char *err, size_t errlen)
{
    struct control *c = xcalloc(1, sizeof *c);
    c->a = a;
    c->fd = -1;
    c->dirfd = open(a->opt.datadir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (c->dirfd < 0) {
        snprintf(err, errlen, "Cannot open %s: %s", a->opt.datadir, strerror(errno));
        free(c);
        return NULL;
    }
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(err, errlen, "Cannot create the control socket: %s", strerror(errno));
        control_free(c);
        return NULL;
    }
    /* We hold the agent's lock: a socket file left here belongs to a dead agent. */
    in_datadir(c->dirfd, c->fd, false);
    /* 0600 from the start: no window in which another user could connect. */
    mode_t old = umask(0177);
    int r = in_datadir(c->dirfd, c->fd, true);
    int e = errno;
    umask(old);
    if (r != 0 || listen(c->fd, 16) != 0) {
        snprintf(err, errlen, "Cannot create the control socket %s/" SOCK_NAME ": %s",
                 a->opt.datadir, strerror(r != 0 ? e : errno));
        control_free(c);
        return NULL;
    }
    fchmodat(c->dirfd, SOCK_NAME, 0600, 0);
    if (ev_io_set(a->loop, c->fd, EV_READ, on_accept, c) != 0) {
        snprintf(err, errlen, "Cannot watch the control socket: %s", strerror(errno));
        control_free(c);
        return NULL;
    }
    c->timer = ev_timer_add(a->loop, 1000, on_timer, c);
    return c;
}

void control_free(struct control *c)
{
    if (!c)
        return;
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        if (c->clients[i])
            client_free(c->clients[i]);
    }
    if (c->fd >= 0) {
        ev_io_set(c->a->loop, c->fd, 0, NULL, NULL);
        close(c->fd);
        in_datadir(c->dirfd, -1, false);
    }
    ev_timer_cancel(c->a->loop, c->timer);
    if (c->dirfd >= 0)
        close(c->dirfd);
    free(c);
}
