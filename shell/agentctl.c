/* agentctl.c - the shell's operating commands for the delivery agent: status, delivernow (over
 * the agent's control socket, agent/control.h) and tail mail_logs (the log file itself); and
 * sh_agent_request(), the socket client other commands use (`tlsrpt send`).
 *
 * status and delivernow print the agent's text as it sends it, or exactly
 * "The delivery agent (stsgated) is not running." when nobody answers on <data>/stsgated.sock.
 * The socket is reached through /proc/self/fd/<dirfd>/, so a data directory path longer than a
 * socket address allows still works. tail follows <data>/logs/mail_logs until Ctrl-C, and
 * survives rotation: when the name points to a new file, the rest of the old one is printed,
 * then the new one from its start. */
#include "sh.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "strbuf.h"

#define CTL_TIMEOUT_MS 15000
#define TAIL_POLL_MS 200
#define TAIL_FIRST_LINES 10

static const char not_running[] = "The delivery agent (stsgated) is not running.";

/* Connects to <datadir>/stsgated.sock; -1 when nobody listens there. */
static int ctl_connect(const char *datadir)
{
    int dirfd = open(datadir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        close(dirfd);
        return -1;
    }
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "/proc/self/fd/%d/stsgated.sock", dirfd);
    int r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
    if (r != 0 && (errno == ENOTDIR || (errno == ENOENT && access("/proc/self/fd", F_OK) != 0))) {
        /* No /proc: connect by a relative name from inside the directory. */
        int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cwd >= 0 && fchdir(dirfd) == 0) {
            snprintf(sun.sun_path, sizeof sun.sun_path, "stsgated.sock");
            r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
            if (fchdir(cwd) != 0)
                r = -1;
        }
        if (cwd >= 0)
            close(cwd);
    }
    close(dirfd);
    if (r != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends one request and reads the whole reply. false when the agent is not there. */
static bool ctl_request(const char *datadir, const char *req, struct strbuf *reply)
{
    int fd = ctl_connect(datadir);
    if (fd < 0)
        return false;
    size_t len = strlen(req);
    if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        close(fd);
        return false;
    }
    char buf[4096];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, CTL_TIMEOUT_MS);
        if (n < 0 && errno == EINTR && !sh_interrupted())
            continue;
        if (n <= 0)
            break;
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        sb_append_len(reply, buf, (size_t)r);
    }
    close(fd);
    return reply->len > 0;
}

enum sh_rc sh_agent_request(struct sh *sh, const char *req)
{
    struct strbuf reply = STRBUF_INIT;
    if (!ctl_request(sh->datadir, req, &reply)) {
        sb_free(&reply);
        sh_error(sh, "%s", not_running);
        return SH_OK;
    }
    const char *text = sb_str(&reply);
    if (strncmp(text, "OK\n", 3) == 0) {
        sh_printf(sh, "\n%s", text + 3);
    } else {
        const char *why = strncmp(text, "ERR ", 4) == 0 ? text + 4 : text;
        size_t n = strcspn(why, "\n");
        sh_error(sh, "The delivery agent refused the request: %.*s", (int)n, why);
    }
    fflush(stdout);
    sb_free(&reply);
    return SH_OK;
}

enum sh_rc sh_cmd_status(struct sh *sh, int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        sh_error(sh, "status takes no arguments.");
        return SH_OK;
    }
    return sh_agent_request(sh, "status\n");
}

enum sh_rc sh_cmd_delivernow(struct sh *sh, int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        sh_error(sh, "delivernow takes no arguments.");
        return SH_OK;
    }
    return sh_agent_request(sh, "delivernow\n");
}

/* ---- tail mail_logs ---- */

static void copy_out(int fd)
{
    char buf[8192];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)r, stdout);
    fflush(stdout);
}

/* Positions fd at the start of its last n lines. */
static void seek_last_lines(int fd, int n)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size == 0)
        return;
    off_t pos = st.st_size;
    int seen = 0;
    char buf[4096];
    while (pos > 0) {
        size_t chunk = pos > (off_t)sizeof buf ? sizeof buf : (size_t)pos;
        pos -= (off_t)chunk;
        if (pread(fd, buf, chunk, pos) != (ssize_t)chunk)
            break;
        for (size_t i = chunk; i-- > 0;) {
            /* The file's final newline ends the last line; it does not start one. */
            if (buf[i] == '\n' && pos + (off_t)i != st.st_size - 1 && ++seen == n) {
                lseek(fd, pos + (off_t)i + 1, SEEK_SET);
                return;
            }
        }
    }
    lseek(fd, 0, SEEK_SET);
}

static void nap(void)
{
    struct timespec ts = {0, TAIL_POLL_MS * 1000000L};
    nanosleep(&ts, NULL); /* Ctrl-C cuts it short */
}

enum sh_rc sh_cmd_tail(struct sh *sh, int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && strcasecmp(argv[1], "mail_logs") != 0)) {
        sh_error(sh, "Unknown log: %s. The log available is mail_logs.", argc > 1 ? argv[1] : "");
        return SH_OK;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/logs/mail_logs", sh->datadir);
    sh_printf(sh, "\nPress Ctrl-C to stop.\n");
    fflush(stdout);
    int fd = -1;
    bool first = true;
    while (!sh_interrupted()) {
        if (fd < 0) {
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                nap();
                continue;
            }
            if (first)
                seek_last_lines(fd, TAIL_FIRST_LINES);
            first = false;
        }
        copy_out(fd);
        /* Rotated or replaced: finish the old file, then follow the new one from its start. */
        struct stat now, cur;
        if (stat(path, &now) == 0 && fstat(fd, &cur) == 0 &&
            (now.st_ino != cur.st_ino || now.st_dev != cur.st_dev)) {
            copy_out(fd);
            close(fd);
            fd = -1;
            continue;
        }
        if (fstat(fd, &cur) == 0 && lseek(fd, 0, SEEK_CUR) > cur.st_size)
            lseek(fd, 0, SEEK_SET); /* truncated in place */
        nap();
    }
    if (fd >= 0)
        close(fd);
    sh_printf(sh, "\n");
    return SH_OK;
}
