/* crash_commit.c - kills the real shell with SIGKILL during commits and checks that the
 * configuration database always holds exactly the old or the new version, never a mix.
 *
 * usage: crash_commit STSGATE_BINARY [RUNS]
 *
 * Every commit replaces the pair of destinations a-<G>.example and b-<G>.example of generation G
 * with those of generation G+1 (two DELETEs and two NEWs in one commit): a half-applied commit
 * would show a pair of different generations, or one or three entries. Some runs go back with
 * rollbackconfig instead, whose commit must as well land whole or not at all. The kill comes at a
 * random moment: mostly within the commit itself (right after the answer that triggers it, within
 * twice the time a commit takes), otherwise anywhere in the shell's life. After each kill the
 * checker opens the database as the next shell would and requires:
 * - PRAGMA integrity_check is "ok" and PRAGMA foreign_key_check finds nothing;
 * - the newest version's entries are one whole pair, of the old or the new generation;
 * - the newest commit record belongs to that pair (comment "gen <G>" or a rollback);
 * - if the shell printed "Changes committed:" before it died, the new generation is there. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db_cfg.h"
#include "strbuf.h"

#define SAVE_PROMPT "for rollback? [Y]> "
#define ROLLBACK_PROMPT "commit this configuration now? [N]> "
#define COMMITTED "Changes committed:"
#define TIMEOUT_MS 20000

static const char *shell_bin;
static char data_dir[] = "/tmp/stsgate-crash-XXXXXX";

struct child {
    pid_t pid;
    int in, out;
    struct strbuf text; /* everything it printed */
};

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("crash_commit: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(data directory left at %s)\n", data_dir);
    exit(1);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Waits until the monotonic clock reaches t (spinning the last stretch: usleep alone is too coarse
 * for a commit that takes a millisecond). */
static void wait_until(int64_t t)
{
    int64_t left;
    while ((left = t - now_us()) > 200)
        usleep((useconds_t)(left - 200));
    while (now_us() < t)
        ;
}

static void spawn(struct child *c)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
        fatal("pipe: %s", strerror(errno));
    c->pid = fork();
    if (c->pid < 0)
        fatal("fork: %s", strerror(errno));
    if (c->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        execl(shell_bin, shell_bin, "--data", data_dir, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->in = in[1];
    c->out = out[0];
    sb_reset(&c->text);
    /* A shell that dies early must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
}

static void send_text(struct child *c, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(c->in, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* it died: the check will tell whether that was right */
        }
        s += w;
        n -= (size_t)w;
    }
}

/* Reads what the shell prints until marker appears (true) or it closes its output (false). */
static bool read_until(struct child *c, const char *marker)
{
    size_t from = c->text.len;
    int64_t deadline = now_us() + (int64_t)TIMEOUT_MS * 1000;
    for (;;) {
        const char *s = sb_str(&c->text);
        size_t back = strlen(marker);
        if (strstr(s + (from > back ? from - back : 0), marker))
            return true;
        int left = (int)((deadline - now_us()) / 1000);
        if (left <= 0)
            fatal("timeout waiting for \"%s\"; the shell printed:\n%s", marker, s);
        struct pollfd p = {c->out, POLLIN, 0};
        if (poll(&p, 1, left) <= 0)
            continue;
        char buf[4096];
        ssize_t r = read(c->out, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        sb_append_len(&c->text, buf, (size_t)r);
    }
}

/* Ends the child (killing it when kill_it), collects the rest of its output, and returns its wait
 * status. */
static int finish(struct child *c, bool kill_it)
{
    if (kill_it)
        kill(c->pid, SIGKILL);
    close(c->in);
    while (read_until(c, "\x01never\x01"))
        ;
    close(c->out);
    int status;
    while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

static void commit_dialogue(struct strbuf *sb, int old, int gen)
{
    sb_append(sb, "destconfig\n");
    if (old > 0)
        sb_printf(sb, "delete\na-%d.example\ndelete\nb-%d.example\n", old, old);
    for (int i = 0; i < 2; i++)
        sb_printf(sb, "new\n%c-%d.example\nn\nn\nn\nn\nn\nn\n", "ab"[i], gen);
    sb_printf(sb, "\ncommit\ngen %d\n", gen);
}

struct state {
    int64_t version;
    int gen; /* the generation of the newest version's pair; 0 when there is none yet */
    char comment[256];
};

static int pair_gen(const struct db_units *u, char *why, size_t whylen)
{
    int a = -1, b = -1, n = 0;
    for (size_t i = 0; i < u->n; i++) {
        const struct db_unit *x = &u->v[i];
        if (strcmp(x->kind, "destconfig") != 0 || strstr(x->name, ".example") == NULL)
            continue;
        n++;
        int g;
        char which;
        if (sscanf(x->name, "%c-%d.example", &which, &g) != 2 || (which != 'a' && which != 'b')) {
            snprintf(why, whylen, "unexpected entry %s", x->name);
            return -1;
        }
        *(which == 'a' ? &a : &b) = g;
    }
    if (n == 0)
        return 0;
    if (n != 2 || a < 0 || b < 0 || a != b) {
        snprintf(why, whylen, "%d entries, a-%d and b-%d: a mix of versions", n, a, b);
        return -1;
    }
    return a;
}

static void sql_checks(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/config.db", data_dir);
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        fatal("open %s: %s", path, sqlite3_errmsg(db));
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
        fatal("integrity_check: %s", sqlite3_errmsg(db));
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        if (rows++ > 0 || !r || strcmp(r, "ok") != 0)
            fatal("integrity_check: %s", r ? r : "(null)");
    }
    sqlite3_finalize(st);
    if (rows != 1)
        fatal("integrity_check gave no answer");
    if (sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK)
        fatal("foreign_key_check: %s", sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        fatal("foreign_key_check: table %s violates a foreign key", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* The state of the newest version, as the next shell or the agent would see it. */
static struct state check(void)
{
    sql_checks();
    struct db_cfg *db;
    char err[256];
    if (db_cfg_open(data_dir, NULL, NULL, &db, err, sizeof err) != DB_OK)
        fatal("db_cfg_open: %s", err);
    struct state s = {0};
    struct db_units u;
    struct db_commit_info ci;
    if (db_cfg_latest(db, &s.version) != DB_OK || db_cfg_load(db, s.version, &u) != DB_OK ||
        db_cfg_commit_info(db, s.version, &ci) != DB_OK)
        fatal("reading version %lld: %s", (long long)s.version, db_cfg_error(db));
    char why[200];
    s.gen = pair_gen(&u, why, sizeof why);
    if (s.gen < 0)
        fatal("version %lld: %s", (long long)s.version, why);
    snprintf(s.comment, sizeof s.comment, "%s", ci.comment);
    char want[32];
    snprintf(want, sizeof want, "gen %d", s.gen);
    if (s.version > 1 && strcmp(ci.comment, want) != 0 && strncmp(ci.comment, "Rollback to ", 12))
        fatal("version %lld holds generation %d but its commit says \"%s\"", (long long)s.version,
              s.gen, ci.comment);
    db_units_free(&u);
    db_cfg_close(db);
    return s;
}

/* The generation rollbackconfig's choice 2 would bring back; -1 when there is no such choice. */
static int rollback_target(void)
{
    struct db_cfg *db;
    char err[256];
    if (db_cfg_open(data_dir, NULL, NULL, &db, err, sizeof err) != DB_OK)
        fatal("db_cfg_open: %s", err);
    struct db_commit_info h[2];
    int n = 0, gen = -1;
    struct db_units u;
    if (db_cfg_history(db, h, 2, &n) != DB_OK)
        fatal("history: %s", db_cfg_error(db));
    if (n == 2 && db_cfg_load(db, h[1].version, &u) == DB_OK) {
        char why[200];
        gen = pair_gen(&u, why, sizeof why);
        if (gen < 0)
            fatal("saved version %lld: %s", (long long)h[1].version, why);
        db_units_free(&u);
    }
    db_cfg_close(db);
    return gen;
}

/* Runs one commit to the end, unkilled; returns how long the commit took from the answer that
 * starts it to "Changes committed:", and the whole run in *whole_us. */
static int64_t clean_run(struct child *c, int old, int gen, int64_t *whole_us)
{
    struct strbuf in = STRBUF_INIT;
    commit_dialogue(&in, old, gen);
    int64_t t0 = now_us();
    spawn(c);
    send_text(c, sb_str(&in));
    sb_free(&in);
    if (!read_until(c, SAVE_PROMPT))
        fatal("the shell ended before the rollback question:\n%s", sb_str(&c->text));
    int64_t t1 = now_us();
    send_text(c, "y\n");
    if (!read_until(c, COMMITTED))
        fatal("no \"%s\":\n%s", COMMITTED, sb_str(&c->text));
    int64_t t2 = now_us();
    int status = finish(c, false);
    *whole_us = now_us() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fatal("the shell exited with status %d:\n%s", status, sb_str(&c->text));
    struct state s = check();
    if (s.gen != gen)
        fatal("clean commit of generation %d left generation %d", gen, s.gen);
    return t2 - t1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: crash_commit STSGATE_BINARY [RUNS]\n");
        return 2;
    }
    shell_bin = argv[1];
    int runs = argc > 2 ? atoi(argv[2]) : 200;
    if (!mkdtemp(data_dir))
        fatal("mkdtemp: %s", strerror(errno));
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    if (getenv("CRASH_SEED"))
        seed = (unsigned)strtoul(getenv("CRASH_SEED"), NULL, 10);
    srand(seed);
    printf("crash_commit: %d runs, seed %u, data %s\n", runs, seed, data_dir);

    struct child c = {0};
    c.text = (struct strbuf)STRBUF_INIT;
    int64_t commit_us = 0, whole_us = 0, w;
    /* Generations 1..4 unkilled: a history to roll back to, and the time a commit takes. */
    for (int g = 1; g <= 4; g++) {
        int64_t t = clean_run(&c, g - 1, g, &w);
        if (g > 1) {
            commit_us = t > commit_us ? t : commit_us;
            whole_us = w > whole_us ? w : whole_us;
        }
    }
    printf("a commit takes %lld us, a whole run %lld us\n", (long long)commit_us,
           (long long)whole_us);

    int gen = 4, next = 5, kept_old = 0, got_new = 0, finished = 0, rollbacks = 0;
    for (int run = 0; run < runs; run++) {
        int target = run % 7 == 3 ? rollback_target() : -1;
        bool rollback = target >= 0 && target != gen;
        bool focused = run % 3 != 0;
        int want = rollback ? target : next;
        struct strbuf in = STRBUF_INIT;
        if (rollback)
            sb_append(&in, "rollbackconfig\n2\n");
        else
            commit_dialogue(&in, gen, next);

        int64_t start = now_us();
        spawn(&c);
        int64_t delay;
        if (focused) {
            send_text(&c, sb_str(&in));
            if (!read_until(&c, rollback ? ROLLBACK_PROMPT : SAVE_PROMPT))
                fatal("the shell ended early:\n%s", sb_str(&c.text));
            delay = rand() % (2 * commit_us + 1);
            start = now_us();
            send_text(&c, "y\n");
        } else {
            sb_append(&in, "y\n");
            send_text(&c, sb_str(&in));
            delay = rand() % (whole_us + 1);
        }
        sb_free(&in);
        wait_until(start + delay);
        int status = finish(&c, true);
        bool said_committed = strstr(sb_str(&c.text), COMMITTED) != NULL;

        struct state s = check();
        if (s.gen != gen && s.gen != want)
            fatal("run %d: generation %d, neither the old %d nor the new %d", run, s.gen, gen,
                  want);
        if (said_committed && s.gen != want)
            fatal("run %d: \"%s\" was printed but generation %d is not there (found %d)", run,
                  COMMITTED, want, s.gen);
        if (WIFEXITED(status))
            finished++;
        else if (s.gen == want)
            got_new++;
        else
            kept_old++;
        if (rollback)
            rollbacks++;
        /* A commit that did not land is tried again with the same generation number. */
        gen = s.gen;
        if (next <= gen)
            next = gen + 1;
    }
    printf("crash_commit: %d runs (%d rollbacks): %d killed keeping the old version, %d killed "
           "after the new one was written, %d finished before the kill\n",
           runs, rollbacks, kept_old, got_new, finished);
    sb_free(&c.text);
    nftw(data_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
