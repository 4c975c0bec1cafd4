/* test_maillog.c - the mail_logs writer: the exact AsyncOS line format (space-padded day, local
 * time), the level threshold, the Begin Logfile / Version header, rotation by size and by day
 * with bounded old files, reopen after an outside rename, and newlines that cannot forge lines. */
#include "maillog.h"
#include "t.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];
static time_t fake_now;

static time_t clock_fn(void *arg)
{
    (void)arg;
    return fake_now;
}

static void fresh_dir(void)
{
    t_rm_tree(dir);
    mkdir(dir, 0700);
}

/* The whole of a file in dir, or "" when missing (static buffer). */
static const char *slurp(const char *name)
{
    static char buf[1 << 16];
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int name_cmp(const char *a, const char *b)
{
    int c = strncmp(a, b, 26); /* "mail_logs.@YYYYMMDDTHHMMSS" */
    if (c)
        return c;
    long x = a[26] == '.' && a[27] != 's' ? atol(a + 27) : 0;
    long y = b[26] == '.' && b[27] != 's' ? atol(b + 27) : 0;
    return (x > y) - (x < y);
}

/* Saved files in dir, their names in names (sorted). */
static int saved_files(char names[][64], int max)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "mail_logs.@", 11) == 0 && len > 2 &&
            strcmp(e->d_name + len - 2, ".s") == 0 && n < max && len < 64)
            memcpy(names[n++], e->d_name, len + 1);
    }
    if (d)
        closedir(d);
    /* Oldest first: by stamp, then by the sequence number after it (none = 0). */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (name_cmp(names[i], names[j]) > 0) {
                char t[64];
                memcpy(t, names[i], 64);
                memcpy(names[i], names[j], 64);
                memcpy(names[j], t, 64);
            }
    return n;
}

static struct maillog *open_log(enum maillog_level th, uint64_t max_bytes, int keep)
{
    struct maillog_options o = {
        .dir = dir,
        .version = "9.8.7",
        .threshold = th,
        .max_bytes = max_bytes,
        .keep = keep,
        .clock = clock_fn,
    };
    char err[256];
    struct maillog *log = maillog_open(&o, err, sizeof err);
    T_CHECK(log != NULL);
    return log;
}

static void test_format_and_levels(void)
{
    fresh_dir();
    fake_now = 1727364219; /* Thu Sep 26 15:23:39 2024 UTC */
    struct maillog *log = open_log(MAILLOG_INFO, 0, 0);
    maillog_write(log, MAILLOG_INFO, "New SMTP ICID %d interface %s", 5, "127.0.0.1");
    maillog_write(log, MAILLOG_DEBUG, "not written");
    maillog_write(log, MAILLOG_TRACE, "not written");
    maillog_write(log, MAILLOG_WARNING, "a warning");
    maillog_write(log, MAILLOG_CRITICAL, "a critical");
    T_CHECK(maillog_enabled(log, MAILLOG_INFO));
    T_CHECK(!maillog_enabled(log, MAILLOG_DEBUG));
    maillog_close(log);
    T_EQ_STR(slurp("mail_logs"), "Thu Sep 26 15:23:39 2024 Info: Begin Logfile\n"
                                 "Thu Sep 26 15:23:39 2024 Info: Version: 9.8.7\n"
                                 "Thu Sep 26 15:23:39 2024 Info: New SMTP ICID 5 interface "
                                 "127.0.0.1\n"
                                 "Thu Sep 26 15:23:39 2024 Warning: a warning\n"
                                 "Thu Sep 26 15:23:39 2024 Critical: a critical\n");
    char t[64];
    maillog_format_time(1725609901, t, sizeof t);
    T_EQ_STR(t, "Fri Sep  6 08:05:01 2024");

    /* Trace threshold writes everything; a newline in the text cannot start a line. */
    fresh_dir();
    fake_now = 1727364219;
    log = open_log(MAILLOG_TRACE, 0, 0);
    maillog_write(log, MAILLOG_TRACE, "t");
    maillog_write(log, MAILLOG_DEBUG, "reply '250-a\r\n250 b'");
    maillog_close(log);
    const char *s = slurp("mail_logs");
    T_CHECK(strstr(s, "2024 Trace: t\n") != NULL);
    T_CHECK(strstr(s, "Debug: reply '250-a  250 b'\n") != NULL);
    T_EQ_INT(count_lines(s), 4);

    enum maillog_level l;
    T_CHECK(maillog_parse_level("DEBUG", &l) && l == MAILLOG_DEBUG);
    T_CHECK(maillog_parse_level("critical", &l) && l == MAILLOG_CRITICAL);
    T_CHECK(!maillog_parse_level("verbose", &l));
    T_EQ_STR(maillog_level_name(MAILLOG_WARNING), "Warning");
}

static void test_size_rotation(void)
{
    fresh_dir();
    fake_now = 1727364219;
    struct maillog *log = open_log(MAILLOG_INFO, 400, 3);
    for (int i = 0; i < 60; i++)
        maillog_write(log, MAILLOG_INFO, "MID %d queued for delivery", i);
    maillog_close(log);
    char names[32][64];
    int n = saved_files(names, 32);
    T_EQ_INT(n, 3); /* bounded */
    /* Names carry the time; several in one second get a sequence number. */
    T_CHECK(strncmp(names[0], "mail_logs.@20240926T152339", 26) == 0);
    const char *cur = slurp("mail_logs");
    T_CHECK(strncmp(cur, "Thu Sep 26 15:23:39 2024 Info: Begin Logfile\n", 45) == 0);
    T_CHECK(strstr(cur, "Info: MID 59 queued for delivery\n") != NULL);
    T_CHECK(strlen(cur) <= 400);
    /* Every saved file is whole lines, begins with the header and stays under the size. */
    for (int i = 0; i < n; i++) {
        const char *s = slurp(names[i]);
        T_CHECK(strstr(s, "Info: Begin Logfile\n") == s + 25);
        T_CHECK(strstr(s, "Info: Version: 9.8.7\n") != NULL);
        T_CHECK(strlen(s) <= 400 && s[strlen(s) - 1] == '\n');
    }
    /* The newest saved file holds the lines just before the current file's. */
    const char *first_cur = strstr(slurp("mail_logs"), "MID ");
    int first = first_cur ? atoi(first_cur + 4) : -1;
    const char *newest = slurp(names[n - 1]);
    char want[64];
    snprintf(want, sizeof want, "MID %d queued", first - 1);
    T_CHECK(strstr(newest, want) != NULL);
}

static void test_day_rotation(void)
{
    fresh_dir();
    fake_now = 1727395199 - 1; /* Thu Sep 26 23:59:58 2024 */
    struct maillog *log = open_log(MAILLOG_INFO, 0, 0);
    maillog_write(log, MAILLOG_INFO, "before midnight");
    fake_now += 3; /* Fri Sep 27 00:00:01 */
    maillog_write(log, MAILLOG_INFO, "after midnight");
    maillog_close(log);
    char names[8][64];
    T_EQ_INT(saved_files(names, 8), 1);
    T_EQ_STR(names[0], "mail_logs.@20240927T000001.s");
    T_CHECK(strstr(slurp(names[0]), "before midnight") != NULL);
    const char *cur = slurp("mail_logs");
    T_CHECK(strncmp(cur, "Fri Sep 27 00:00:01 2024 Info: Begin Logfile\n", 45) == 0);
    T_CHECK(strstr(cur, "after midnight") != NULL);
    T_CHECK(strstr(cur, "before midnight") == NULL);

    /* A file left from an earlier day is rotated when the log opens. */
    fake_now += 86400 * 3;
    log = open_log(MAILLOG_INFO, 0, 0);
    maillog_write(log, MAILLOG_INFO, "days later");
    maillog_close(log);
    /* The file's mtime is the real time, not the fake one: only check nothing was lost. */
    int n = saved_files(names, 8);
    T_CHECK(n >= 1);
    T_CHECK(strstr(slurp("mail_logs"), "days later") != NULL);
}

static void test_reopen(void)
{
    fresh_dir();
    fake_now = 1727364219;
    struct maillog *log = open_log(MAILLOG_INFO, 0, 0);
    maillog_write(log, MAILLOG_INFO, "one");
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/mail_logs", dir);
    snprintf(to, sizeof to, "%s/moved", dir);
    T_CHECK(rename(from, to) == 0);
    maillog_write(log, MAILLOG_INFO, "two"); /* still the old (moved) file */
    T_CHECK(maillog_reopen(log));
    maillog_write(log, MAILLOG_INFO, "three");
    maillog_close(log);
    T_CHECK(strstr(slurp("moved"), "two") != NULL);
    const char *cur = slurp("mail_logs");
    T_CHECK(strstr(cur, "Info: Begin Logfile") != NULL);
    T_CHECK(strstr(cur, "three") != NULL);
    T_CHECK(strstr(cur, "two") == NULL);
    struct stat st;
    T_CHECK(stat(from, &st) == 0 && (st.st_mode & 0777) == 0600);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    snprintf(dir, sizeof dir, "/tmp/stsgate-test-maillog-%d", (int)getpid());
    test_format_and_levels();
    test_size_rotation();
    test_day_rotation();
    test_reopen();
    t_rm_tree(dir);
    return t_done();
}
