/* crash_commit.c - kills the real shell with SIGKILL during commits and checks that the
 * configuration database always holds exactly the old or the new version, never a mix.
 *
 * usage: crash_commit STSGATE_BINARY [RUNS]
 *
 * Every commit replaces the pair of destinations a-<G>.example and b-<G>.example of generation G
 * with those of generation G+1 (two DELETEs and two NEWs in one commit): a half-applied commit
 * would show a pair of different generations, or one or three entries. Some runs IMPORT a table
 * of the new pair plus FILL entries f<i>-<G+1> instead (a commit of thousands of rows, so that
 * kills land in the middle of SQLite's writing), and some go back with rollbackconfig; those
 * commits too must land whole or not at all. The kill comes at a
 * random moment: mostly within the commit itself (right after the answer that triggers it, within
 * twice the time a commit takes), otherwise anywhere in the shell's life. After each kill the
 * checker opens the database as the next shell would and requires:
 * - PRAGMA integrity_check is "ok" and PRAGMA foreign_key_check finds nothing;
 * - the newest version's entries are one whole pair (and none or all of one generation's
 *   fillers), and equal to the old or the new version;
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

/* The entries of one generation: the pair a-<G>, b-<G>, and after an IMPORT run FILL entries
 * f<i>-<G> written by that same commit. */
#define FILL 2000

enum run_kind { RUN_COMMIT, RUN_IMPORT, RUN_ROLLBACK };

struct state {
    int gen;      /* the pair's generation; 0 when there is none yet */
    int fill_gen; /* the fillers' generation, 0 when there are none */
    int fill_n;
};

static bool same_state(struct state x, struct state y)
{
    return x.gen == y.gen && x.fill_gen == y.fill_gen && x.fill_n == y.fill_n;
}

static void commit_dialogue(struct strbuf *sb, enum run_kind kind, int old, int gen)
{
    sb_append(sb, "destconfig\n");
    if (kind == RUN_IMPORT) {
        /* IMPORT replaces the whole table: the old pair and fillers go in the same commit. */
        char path[256];
        snprintf(path, sizeof path, "%s/configuration/gen-%d.ini", data_dir, gen);
        FILE *f = fopen(path, "w");
        if (!f)
            fatal("%s: %s", path, strerror(errno));
        fprintf(f, "[DEFAULT]\n[a-%d.example]\n[b-%d.example]\n", gen, gen);
        for (int i = 0; i < FILL; i++)
            fprintf(f, "[f%d-%d.example]\nmax_host_concurrency = %d\n", i, gen, 1 + i % 1000);
        if (fclose(f) != 0)
            fatal("%s: %s", path, strerror(errno));
        sb_printf(sb, "import\ngen-%d.ini\n", gen);
    } else {
        if (old > 0)
            sb_printf(sb, "delete\na-%d.example\ndelete\nb-%d.example\n", old, old);
        for (int i = 0; i < 2; i++)
            sb_printf(sb, "new\n%c-%d.example\nn\nn\nn\nn\nn\nn\n", "ab"[i], gen);
    }
    sb_printf(sb, "\ncommit\ngen %d\n", gen);
}

/* What a version holds; false (with why) when it is a mix of generations. */
static bool state_of(const struct db_units *u, struct state *s, char *why, size_t whylen)
{
    int a = -1, b = -1, n = 0;
    *s = (struct state){0};
    for (size_t i = 0; i < u->n; i++) {
        const struct db_unit *x = &u->v[i];
        if (strcmp(x->kind, "destconfig") != 0 || strstr(x->name, ".example") == NULL)
            continue;
        n++;
        int g, idx;
        char which;
        if (sscanf(x->name, "f%d-%d.example", &idx, &g) == 2) {
            if (s->fill_n++ > 0 && s->fill_gen != g) {
                snprintf(why, whylen, "fillers of generations %d and %d", s->fill_gen, g);
                return false;
            }
            s->fill_gen = g;
        } else if (sscanf(x->name, "%c-%d.example", &which, &g) == 2 &&
                   (which == 'a' || which == 'b')) {
            *(which == 'a' ? &a : &b) = g;
        } else {
            snprintf(why, whylen, "unexpected entry %s", x->name);
            return false;
        }
    }
    if (n == 0)
        return true;
    if (n != 2 + s->fill_n || a < 0 || b < 0 || a != b) {
        snprintf(why, whylen, "%d entries, a-%d and b-%d: a mix of versions", n, a, b);
        return false;
    }
    if (s->fill_n != 0 && s->fill_n != FILL) {
        snprintf(why, whylen, "%d fillers of %d: a half-applied import", s->fill_n, FILL);
        return false;
    }
    s->gen = a;
    return true;
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

static struct db_cfg *open_store(void)
{
    struct db_cfg *db;
    char err[256];
    if (db_cfg_open(data_dir, NULL, NULL, &db, err, sizeof err) != DB_OK)
        fatal("db_cfg_open: %s", err);
    return db;
}

/* The newest version, as the next shell or the agent would see it. */
static struct state check(void)
{
    sql_checks();
    struct db_cfg *db = open_store();
    int64_t v;
    struct db_units u;
    struct db_commit_info ci;
    if (db_cfg_latest(db, &v) != DB_OK || db_cfg_load(db, v, &u) != DB_OK ||
        db_cfg_commit_info(db, v, &ci) != DB_OK)
        fatal("reading the newest version: %s", db_cfg_error(db));
    struct state s;
    char why[200];
    if (!state_of(&u, &s, why, sizeof why))
        fatal("version %lld: %s", (long long)v, why);
    char want[32];
    snprintf(want, sizeof want, "gen %d", s.gen);
    if (v > 1 && strcmp(ci.comment, want) != 0 && strncmp(ci.comment, "Rollback to ", 12) != 0)
        fatal("version %lld holds generation %d but its commit says \"%s\"", (long long)v, s.gen,
              ci.comment);
    db_units_free(&u);
    db_cfg_close(db);
    return s;
}

/* What rollbackconfig's choice 2 would bring back; false when there is no choice 2. */
static bool rollback_target(struct state *s)
{
    struct db_cfg *db = open_store();
    struct db_commit_info h[2];
    int n = 0;
    struct db_units u;
    bool ok = false;
    if (db_cfg_history(db, h, 2, &n) != DB_OK)
        fatal("history: %s", db_cfg_error(db));
    if (n == 2 && db_cfg_load(db, h[1].version, &u) == DB_OK) {
        char why[200];
        if (!state_of(&u, s, why, sizeof why))
            fatal("saved version %lld: %s", (long long)h[1].version, why);
        db_units_free(&u);
        ok = true;
    }
    db_cfg_close(db);
    return ok;
}

/* Runs one commit to the end, unkilled; returns how long the commit took from the answer that
 * starts it to "Changes committed:", and the whole run in *whole_us. */
static int64_t clean_run(struct child *c, enum run_kind kind, int old, int gen, int64_t *whole_us)
{
    struct strbuf in = STRBUF_INIT;
    commit_dialogue(&in, kind, old, gen);
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

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
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
    char conf[256];
    snprintf(conf, sizeof conf, "%s/configuration", data_dir);
    if (mkdir(conf, 0700) != 0)
        fatal("%s: %s", conf, strerror(errno));
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    if (getenv("CRASH_SEED"))
        seed = (unsigned)strtoul(getenv("CRASH_SEED"), NULL, 10);
    srand(seed);
    printf("crash_commit: %d runs, seed %u, data %s\n", runs, seed, data_dir);

    struct child c = {0};
    c.text = (struct strbuf)STRBUF_INIT;
    /* Generations 1..5 unkilled: a history to roll back to, and how long each kind of run and its
     * commit take, to aim the kills. */
    int64_t commit_us[2] = {0}, whole_us[2] = {0}, w;
    for (int g = 1; g <= 5; g++) {
        enum run_kind k = g == 3 || g == 5 ? RUN_IMPORT : RUN_COMMIT;
        int64_t t = clean_run(&c, k, g - 1, g, &w);
        if (g > 1) {
            commit_us[k] = max64(commit_us[k], t);
            whole_us[k] = max64(whole_us[k], w);
        }
    }
    printf("a commit takes %lld us (import of %d: %lld us), a whole run %lld us (%lld us)\n",
           (long long)commit_us[RUN_COMMIT], FILL, (long long)commit_us[RUN_IMPORT],
           (long long)whole_us[RUN_COMMIT], (long long)whole_us[RUN_IMPORT]);

    struct state cur = check();
    int next = cur.gen + 1, kept_old = 0, got_new = 0, finished = 0, n_kind[3] = {0};
    for (int run = 0; run < runs; run++) {
        enum run_kind kind = run % 7 == 3 ? RUN_ROLLBACK : run % 5 == 1 ? RUN_IMPORT : RUN_COMMIT;
        struct state want = {next, cur.fill_gen, cur.fill_n};
        if (kind == RUN_IMPORT)
            want = (struct state){next, next, FILL};
        if (kind == RUN_ROLLBACK && (!rollback_target(&want) || same_state(want, cur))) {
            kind = RUN_COMMIT; /* nothing to go back to: commit instead */
            want = (struct state){next, cur.fill_gen, cur.fill_n};
        }
        n_kind[kind]++;
        bool focused = run % 3 != 0;
        int timing = kind == RUN_COMMIT ? RUN_COMMIT : RUN_IMPORT; /* a rollback may be big */
        struct strbuf in = STRBUF_INIT;
        if (kind == RUN_ROLLBACK)
            sb_append(&in, "rollbackconfig\n2\n");
        else
            commit_dialogue(&in, kind, cur.gen, next);

        int64_t start = now_us();
        spawn(&c);
        int64_t delay;
        if (focused) {
            send_text(&c, sb_str(&in));
            if (!read_until(&c, kind == RUN_ROLLBACK ? ROLLBACK_PROMPT : SAVE_PROMPT))
                fatal("run %d: the shell ended early:\n%s", run, sb_str(&c.text));
            delay = rand() % (2 * commit_us[timing] + 1);
            start = now_us();
            send_text(&c, "y\n");
        } else {
            sb_append(&in, "y\n");
            send_text(&c, sb_str(&in));
            delay = rand() % (whole_us[timing] + 1);
        }
        sb_free(&in);
        wait_until(start + delay);
        int status = finish(&c, true);
        bool said_committed = strstr(sb_str(&c.text), COMMITTED) != NULL;

        struct state s = check();
        if (!same_state(s, cur) && !same_state(s, want))
            fatal("run %d: generation %d (fillers %d x %d), neither the old %d (%d x %d) nor the "
                  "new %d (%d x %d)",
                  run, s.gen, s.fill_n, s.fill_gen, cur.gen, cur.fill_n, cur.fill_gen, want.gen,
                  want.fill_n, want.fill_gen);
        if (said_committed && !same_state(s, want))
            fatal("run %d: \"%s\" was printed but generation %d is not there (found %d)", run,
                  COMMITTED, want.gen, s.gen);
        if (WIFEXITED(status))
            finished++;
        else if (same_state(s, want))
            got_new++;
        else
            kept_old++;
        /* A commit that did not land is tried again with the same generation number. */
        cur = s;
        if (next <= cur.gen)
            next = cur.gen + 1;
    }
    printf("crash_commit: %d runs (%d commits, %d imports of %d entries, %d rollbacks): %d killed "
           "keeping the old version, %d killed after the new one was written, %d finished "
           "before the kill\n",
           runs, n_kind[RUN_COMMIT], n_kind[RUN_IMPORT], FILL, n_kind[RUN_ROLLBACK], kept_old,
           got_new, finished);
    sb_free(&c.text);
    nftw(data_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
