/* maillog.c - the mail_logs writer (see maillog.h for the promises).
 *
 * Each line is formatted into a stack buffer and written with one write() on an O_APPEND fd, so
 * a reader following the file never sees a torn line from us. Rotation renames the current file
 * and opens a new one: a follower that watches the name (tail -F, the shell's `tail mail_logs`)
 * finds the new file by its inode changing. */
#include "maillog.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192

struct maillog {
    char dir[4096];
    char version[64];
    enum maillog_level threshold;
    uint64_t max_bytes;
    int keep;
    bool to_stderr;
    time_t (*clock)(void *arg);
    void *clock_arg;
    int fd;
    uint64_t size;  /* bytes in the current file */
    int yday, year; /* the local day the current file was opened */
    /* The formatted time of the last line, reused while the second is the same. */
    time_t last_t;
    char last_time[40];
    struct tm last_tm;
};

static const char *const level_names[] = {"Critical", "Warning", "Info", "Debug", "Trace"};

const char *maillog_level_name(enum maillog_level level)
{
    return (unsigned)level < 5 ? level_names[level] : "Info";
}

bool maillog_parse_level(const char *s, enum maillog_level *out)
{
    for (int i = 0; i < 5; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum maillog_level)i;
            return true;
        }
    }
    return false;
}

void maillog_format_time(time_t t, char *out, size_t outlen)
{
    struct tm tm;
    localtime_r(&t, &tm);
    /* %e pads the day with a space, as AsyncOS does ("Sep  6"). */
    strftime(out, outlen, "%a %b %e %H:%M:%S %Y", &tm);
}

static time_t now(const struct maillog *log)
{
    return log->clock ? log->clock(log->clock_arg) : time(NULL);
}

static void path_of(const struct maillog *log, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%.4000s/%s", log->dir, name);
}

/* Writes one already formatted line (no level filtering, no rotation check). */
static void put_line(struct maillog *log, const char *line, size_t len)
{
    if (log->fd >= 0) {
        ssize_t w = write(log->fd, line, len);
        if (w > 0)
            log->size += (uint64_t)w;
    }
    if (log->to_stderr) {
        ssize_t w = write(STDERR_FILENO, line, len);
        (void)w; /* nothing useful to do when stderr is gone */
    }
}

static size_t format_line(struct maillog *log, time_t t, enum maillog_level level, char *buf,
                          size_t cap, const char *fmt, va_list ap)
{
    if (t != log->last_t || !log->last_time[0]) {
        localtime_r(&t, &log->last_tm);
        strftime(log->last_time, sizeof log->last_time, "%a %b %e %H:%M:%S %Y", &log->last_tm);
        log->last_t = t;
    }
    int n = snprintf(buf, cap, "%s %s: ", log->last_time, maillog_level_name(level));
    if (n < 0)
        return 0;
    size_t len = (size_t)n < cap ? (size_t)n : cap - 1;
    int m = vsnprintf(buf + len, cap - len, fmt, ap);
    if (m > 0)
        len += (size_t)m < cap - len ? (size_t)m : cap - len - 1;
    /* One event per line: a newline inside the text (a server's multi-line reply) would forge a
     * line of its own. */
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
    }
    if (len + 1 >= cap)
        len = cap - 2;
    buf[len++] = '\n';
    buf[len] = '\0';
    return len;
}

static void header_line(struct maillog *log, time_t t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void header_line(struct maillog *log, time_t t, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    size_t len = format_line(log, t, MAILLOG_INFO, buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* The header goes to the file only: stderr is one continuous stream. */
    if (log->fd >= 0 && len) {
        ssize_t w = write(log->fd, buf, len);
        if (w > 0)
            log->size += (uint64_t)w;
    }
}

static int open_current(struct maillog *log, time_t t, char *err, size_t errlen)
{
    char path[4200];
    path_of(log, "mail_logs", path, sizeof path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (err)
            snprintf(err, errlen, "Cannot open %s: %s.", path, strerror(errno));
        return -1;
    }
    struct stat st;
    uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (log->fd >= 0)
        close(log->fd);
    log->fd = fd;
    log->size = size;
    struct tm tm;
    localtime_r(&t, &tm);
    log->yday = tm.tm_yday;
    log->year = tm.tm_year;
    if (size == 0) {
        header_line(log, t, "Begin Logfile");
        header_line(log, t, "Version: %s", log->version);
    }
    return 0;
}

/* The sort key of a saved file name "mail_logs.@YYYYMMDDTHHMMSS[.N].s": the stamp, then N. */
static bool saved_key(const char *name, char stamp[16], long *seq)
{
    static const char prefix[] = "mail_logs.@";
    size_t pl = sizeof prefix - 1, len = strlen(name);
    if (strncmp(name, prefix, pl) != 0 || len < pl + 15 + 2 || strcmp(name + len - 2, ".s") != 0)
        return false;
    const char *p = name + pl;
    for (int i = 0; i < 15; i++) {
        if (i == 8 ? p[i] != 'T' : !isdigit((unsigned char)p[i]))
            return false;
    }
    memcpy(stamp, p, 15);
    stamp[15] = '\0';
    p += 15;
    *seq = 0;
    if (*p == '.' && p + 2 != name + len) {
        char *end;
        *seq = strtol(p + 1, &end, 10);
        if (end != name + len - 2 || *seq <= 0)
            return false;
    } else if (p != name + len - 2) {
        return false;
    }
    return true;
}

struct saved {
    char name[64];
    char stamp[16];
    long seq;
};

static int saved_cmp(const void *a, const void *b)
{
    const struct saved *x = a, *y = b;
    int c = strcmp(x->stamp, y->stamp);
    if (c)
        return c;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Deletes the oldest saved files beyond keep. */
static void prune(struct maillog *log)
{
    DIR *d = opendir(log->dir);
    if (!d)
        return;
    struct saved *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct saved s;
        if (strlen(e->d_name) >= sizeof s.name || !saved_key(e->d_name, s.stamp, &s.seq))
            continue;
        memcpy(s.name, e->d_name, strlen(e->d_name) + 1);
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct saved *nv = realloc(v, cap * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        v[n++] = s;
    }
    closedir(d);
    if (n > (size_t)log->keep) {
        qsort(v, n, sizeof *v, saved_cmp);
        for (size_t i = 0; i < n - (size_t)log->keep; i++) {
            char path[4200];
            path_of(log, v[i].name, path, sizeof path);
            unlink(path);
        }
    }
    free(v);
}

/* Renames mail_logs to its saved name (stamped with t). false when it could not. */
static bool save_current(struct maillog *log, time_t t)
{
    char stamp[32], from[4200], to[4200], name[96];
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
    path_of(log, "mail_logs", from, sizeof from);
    /* Several rotations in one second: the next sequence number after the highest of that
     * second (not the first free one: pruning frees the oldest, and names must sort by age). */
    long seq = -1;
    DIR *d = opendir(log->dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char st[16];
        long n;
        if (saved_key(e->d_name, st, &n) && strcmp(st, stamp) == 0 && n > seq)
            seq = n;
    }
    if (d)
        closedir(d);
    seq++;
    if (seq == 0)
        snprintf(name, sizeof name, "mail_logs.@%s.s", stamp);
    else
        snprintf(name, sizeof name, "mail_logs.@%s.%ld.s", stamp, seq);
    path_of(log, name, to, sizeof to);
    return rename(from, to) == 0;
}

static void rotate(struct maillog *log, time_t t)
{
    if (!save_current(log, t)) {
        /* Keep writing the old file rather than lose lines; try again tomorrow or at the next
         * size check, not at every line of today. */
        struct tm tm;
        localtime_r(&t, &tm);
        log->yday = tm.tm_yday;
        log->year = tm.tm_year;
        return;
    }
    open_current(log, t, NULL, 0);
    prune(log);
}

struct maillog *maillog_open(const struct maillog_options *opt, char *err, size_t errlen)
{
    struct maillog *log = calloc(1, sizeof *log);
    if (!log) {
        snprintf(err, errlen, "Out of memory.");
        return NULL;
    }
    snprintf(log->dir, sizeof log->dir, "%s", opt->dir);
    snprintf(log->version, sizeof log->version, "%s", opt->version ? opt->version : "");
    log->threshold = opt->threshold;
    log->max_bytes = opt->max_bytes ? opt->max_bytes : MAILLOG_DEFAULT_MAX_BYTES;
    log->keep = opt->keep > 0 ? opt->keep : MAILLOG_DEFAULT_KEEP;
    log->to_stderr = opt->to_stderr;
    log->clock = opt->clock;
    log->clock_arg = opt->clock_arg;
    log->fd = -1;
    log->last_t = (time_t)-1;
    time_t t = now(log);
    /* A file left from another day is saved first: a day's lines stay in their own file. */
    struct stat st;
    char path[4200];
    path_of(log, "mail_logs", path, sizeof path);
    if (stat(path, &st) == 0 && st.st_size > 0) {
        struct tm then, tm;
        time_t mt = st.st_mtime;
        localtime_r(&mt, &then);
        localtime_r(&t, &tm);
        if ((then.tm_yday != tm.tm_yday || then.tm_year != tm.tm_year) && save_current(log, t))
            prune(log);
    }
    if (open_current(log, t, err, errlen) != 0) {
        free(log);
        return NULL;
    }
    return log;
}

void maillog_close(struct maillog *log)
{
    if (!log)
        return;
    if (log->fd >= 0)
        close(log->fd);
    free(log);
}

bool maillog_reopen(struct maillog *log)
{
    return open_current(log, now(log), NULL, 0) == 0;
}

bool maillog_enabled(const struct maillog *log, enum maillog_level level)
{
    return log && level <= log->threshold;
}

void maillog_set_threshold(struct maillog *log, enum maillog_level level)
{
    log->threshold = level;
}

void maillog_vwrite(struct maillog *log, enum maillog_level level, const char *fmt, va_list ap)
{
    if (!maillog_enabled(log, level))
        return;
    char buf[LINE_MAX_BYTES];
    time_t t = now(log);
    size_t len = format_line(log, t, level, buf, sizeof buf, fmt, ap);
    if (!len)
        return;
    struct tm *tm = &log->last_tm; /* format_line left t's local time here */
    if (tm->tm_yday != log->yday || tm->tm_year != log->year ||
        (log->size > 0 && log->size + len > log->max_bytes))
        rotate(log, t);
    put_line(log, buf, len);
}

void maillog_write(struct maillog *log, enum maillog_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    maillog_vwrite(log, level, fmt, ap);
    va_end(ap);
}
