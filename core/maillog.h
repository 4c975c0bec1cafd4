/* maillog.h - the mail_logs writer: <dir>/mail_logs in the AsyncOS format (mail-logs.md).
 *
 * Promises:
 * - every line is "Www Mmm dd HH:MM:SS YYYY Level: text" (local time, day space-padded), written
 *   with ONE write() to the file (O_APPEND) and, when asked, one to stderr, so concurrent readers
 *   (`tail mail_logs`, grep) never see half a line from us;
 * - lines below the threshold are dropped before any formatting work;
 * - mail_logs is always the current file. It is rotated when a line would take it past max_bytes
 *   or when the local day changed since it was opened; the old file becomes
 *   mail_logs.@YYYYMMDDTHHMMSS.s (the time it was rotated; ".N.s" when that name is taken) and
 *   only the newest `keep` of those are kept;
 * - a new file begins with "Info: Begin Logfile" and "Info: Version: <version>";
 * - maillog_reopen() (SIGHUP) closes and reopens mail_logs, so an outside rotator may move it.
 * A write that fails is not retried and never stops the caller: mail must flow without logs.
 * Not thread-safe. */
#ifndef STSGATE_MAILLOG_H
#define STSGATE_MAILLOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum maillog_level {
    MAILLOG_CRITICAL = 0,
    MAILLOG_WARNING,
    MAILLOG_INFO,
    MAILLOG_DEBUG,
    MAILLOG_TRACE,
};

#define MAILLOG_DEFAULT_MAX_BYTES (10u * 1024 * 1024)
#define MAILLOG_DEFAULT_KEEP 10

struct maillog_options {
    const char *dir;              /* where mail_logs lives (<data>/logs); must exist */
    const char *version;          /* for the "Version:" line */
    enum maillog_level threshold; /* this level and the ones above it are written */
    uint64_t max_bytes;           /* 0: MAILLOG_DEFAULT_MAX_BYTES */
    int keep;                     /* old files kept; 0: MAILLOG_DEFAULT_KEEP */
    bool to_stderr;               /* the same lines to stderr */
    /* The wall clock; NULL: time(). Tests move it to check the daily rotation. */
    time_t (*clock)(void *arg);
    void *clock_arg;
};

struct maillog;

/* NULL with err when mail_logs cannot be opened. */
struct maillog *maillog_open(const struct maillog_options *opt, char *err, size_t errlen);
void maillog_close(struct maillog *log);
/* Closes and reopens mail_logs (SIGHUP). Returns false when it cannot, and keeps the old fd. */
bool maillog_reopen(struct maillog *log);

/* Whether a line of this level would be written (to skip building expensive arguments). */
bool maillog_enabled(const struct maillog *log, enum maillog_level level);
void maillog_write(struct maillog *log, enum maillog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void maillog_vwrite(struct maillog *log, enum maillog_level level, const char *fmt, va_list ap);
void maillog_set_threshold(struct maillog *log, enum maillog_level level);

/* "critical", "warning", "info", "debug", "trace" (any case); false when not one of them. */
bool maillog_parse_level(const char *s, enum maillog_level *out);
/* "Critical", "Warning", ... as lines show them. */
const char *maillog_level_name(enum maillog_level level);
/* The line prefix time: "Thu Sep 26 15:23:39 2024" (local time) into out (at least 32 bytes). */
void maillog_format_time(time_t t, char *out, size_t outlen);

#endif
