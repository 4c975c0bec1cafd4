/* bench_sts.c - measures the MTA-STS engine, and postfix-mta-sts-resolver beside it
 * (scripts/bench-sts runs it; results go to docs/performance.md).
 *
 *   bench_sts warm --data DIR [--domains N] [--lookups M]
 *       fills <DIR>/stscache.db with N cached enforce policies, starts an engine on it (TXT
 *       answers come from a fake resolver at once, so only the engine and SQLite are measured),
 *       asks once for every domain (a restart: each entry read from SQLite), then makes M
 *       lookups over random domains from the warm cache, with the Info log line formatted as the
 *       agent would (--no-log: without). Prints "restart_rate <per s>" and "warm_rate <per s>".
 *   bench_sts cold --data DIR [--ca FILE] DOMAIN...
 *       for each domain a fresh engine on an empty cache in DIR/<n>/, with the live resolver and
 *       fetch (run it inside the lab): prints "cold <domain> <ms> <decision>", then
 *       "cold_median_ms" and "cold_mean_ms"; with --warm M, then one engine over all the domains,
 *       each looked up once, and M lookups in turn from its warm cache: "lab_warm_rate <per s>".
 *   bench_sts socketmap [--addr A] [--port P] [--conns C] [--seconds S] DOMAIN...
 *       queries a socketmap server (mta-sts-daemon) for the domains in turn over C connections
 *       for S seconds: prints "socketmap_rate <per s>"; with --cold, one query per domain on an
 *       empty cache instead: "cold <domain> <ms> <answer>", "cold_median_ms", "cold_mean_ms";
 *       with --synthetic N, random names d<i>.bench.example (i < N) instead of the domains.
 */
#include "db_stscache.h"
#include "db_stsengine.h"
#include "sts_engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void print_stats(const double *ms, int n)
{
    double *s = malloc(sizeof *s * (size_t)(n ? n : 1));
    double sum = 0;
    for (int i = 0; i < n; i++) {
        s[i] = ms[i];
        sum += ms[i];
    }
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    if (n)
        printf("cold_median_ms %.1f\ncold_mean_ms %.1f\n",
               n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2, sum / n);
    free(s);
}

/* ---- a fake TXT source that answers from the loop, at once ---- */

struct fake_q {
    struct fake_q *next;
    sts_txt_done done;
    void *ctx;
    struct ev_timer *t;
};

static struct ev_loop *loop;

static void fake_fire(struct ev_loop *l, struct ev_timer *t, void *arg)
{
    (void)l;
    (void)t;
    struct fake_q *q = arg;
    static const char rec[] = "v=STSv1; id=bench1";
    struct sts_record_text r = {rec, sizeof rec - 1};
    struct sts_txt_answer a = {DNS_OK, &r, 1, NULL};
    q->done(&a, q->ctx);
    free(q);
}

static void *fake_txt(void *arg, const char *qname, sts_txt_done done, void *ctx)
{
    (void)arg;
    (void)qname;
    struct fake_q *q = calloc(1, sizeof *q);
    q->done = done;
    q->ctx = ctx;
    q->t = ev_timer_add(loop, 0, fake_fire, q);
    return q;
}

static void fake_txt_cancel(void *arg, void *h)
{
    (void)arg;
    struct fake_q *q = h;
    ev_timer_cancel(loop, q->t);
    free(q);
}

static void *no_fetch(void *arg, const char *domain, sts_fetch_cb done, void *ctx)
{
    (void)arg;
    (void)domain;
    (void)done;
    (void)ctx;
    fprintf(stderr, "bench_sts: unexpected fetch\n");
    exit(1);
}

static void no_cancel(void *arg, void *h)
{
    (void)arg;
    (void)h;
}

static unsigned long log_lines;

static void null_log(void *arg, enum sts_log_level lv, const char *text)
{
    (void)arg;
    (void)lv;
    (void)text;
    log_lines++;
}

static int pending;

static void count_cb(struct sts_result *res, void *arg)
{
    (void)arg;
    if (!res->policy || res->mode != STS_MODE_ENFORCE) {
        fprintf(stderr, "bench_sts: a warm domain without its policy\n");
        exit(1);
    }
    sts_result_release(res);
    pending--;
}

static bool no_log;

static int bench_warm(const char *data, int n, long m)
{
    char err[512];
    struct db_stscache *c = NULL;
    mkdir(data, 0700);
    if (db_stscache_open(data, &c, err, sizeof err) != DB_OK) {
        fprintf(stderr, "bench_sts: %s\n", err);
        return 1;
    }
    int64_t now = (int64_t)time(NULL);
    double t0 = mono();
    for (int i = 0; i < n; i++) {
        char d[64], text[160];
        snprintf(d, sizeof d, "d%d.bench.example", i);
        int len = snprintf(text, sizeof text,
                           "version: STSv1\nmode: enforce\nmx: mx.%s\nmx: *.mx.%s\nmax_age: "
                           "604800\n",
                           d, d);
        struct sts_cache_entry e;
        memset(&e, 0, sizeof e);
        e.has_policy = true;
        snprintf(e.id, sizeof e.id, "bench1");
        e.mode = STS_MODE_ENFORCE;
        e.fetched_at = now;
        e.max_age = 604800;
        e.refresh_at = now + 86400;
        e.last_used = now;
        if (db_stscache_put(c, d, &e, text, (size_t)len, err, sizeof err) != DB_OK) {
            fprintf(stderr, "bench_sts: %s\n", err);
            return 1;
        }
    }
    printf("fill_s %.1f\n", mono() - t0);

    loop = ev_loop_new();
    struct sts_engine_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.loop = loop;
    cfg.io.txt_start = fake_txt;
    cfg.io.txt_cancel = fake_txt_cancel;
    cfg.io.fetch_start = no_fetch;
    cfg.io.fetch_cancel = no_cancel;
    db_stsengine_store(c, &cfg.store);
    cfg.log = no_log ? NULL : null_log;
    cfg.log_level = STS_LOG_INFO;
    cfg.txt_recheck_s = 3600; /* the whole run inside one TXT grace */
    struct sts_engine *e = NULL;
    if (sts_engine_new(&cfg, &e, err, sizeof err) < 0) {
        fprintf(stderr, "bench_sts: %s\n", err);
        return 1;
    }

    /* A restart: every domain once, each read from SQLite, TXT answered at once. */
    t0 = mono();
    for (int i = 0; i < n; i++) {
        char d[64];
        snprintf(d, sizeof d, "d%d.bench.example", i);
        struct sts_result r;
        if (sts_engine_lookup(e, d, &r, count_cb, NULL, NULL) == STS_ENGINE_PENDING)
            pending++;
        else
            sts_result_release(&r);
        if (pending > 1000)
            while (pending > 0)
                ev_run_once(loop, 0);
    }
    while (pending > 0)
        ev_run_once(loop, 0);
    double t1 = mono();
    printf("restart_rate %.0f\n", n / (t1 - t0));

    /* Warm: random domains, answered from memory. Names are made beforehand: the engine's
     * cost, not snprintf's, is measured. */
    enum { NAMES = 1 << 16 };
    char(*names)[32] = malloc(sizeof *names * NAMES);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < NAMES; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        snprintf(names[i], sizeof names[i], "d%d.bench.example", (int)(x % (uint64_t)n));
    }
    long done_now = 0, enforce = 0;
    log_lines = 0;
    t0 = mono();
    for (long i = 0; i < m; i++) {
        struct sts_result r;
        if (sts_engine_lookup(e, names[i & (NAMES - 1)], &r, count_cb, NULL, NULL) ==
            STS_ENGINE_DONE) {
            done_now++;
            enforce += r.policy && r.mode == STS_MODE_ENFORCE;
            sts_result_release(&r);
        }
    }
    t1 = mono();
    if (done_now != m || enforce != m) {
        fprintf(stderr, "bench_sts: %ld of %ld answered from the cache\n", done_now, m);
        return 1;
    }
    printf("warm_rate %.0f\nwarm_lookups %ld\nlog_lines %lu\n", m / (t1 - t0), m, log_lines);
    struct sts_engine_stats st;
    sts_engine_get_stats(e, &st);
    printf("domains %zu\ntxt_queries %llu\n", st.domains, (unsigned long long)st.txt_queries);
    free(names);
    sts_engine_free(e);
    ev_loop_free(loop);
    db_stscache_close(c);
    return 0;
}

/* ---- cold lookups in the lab ---- */

struct cold_done {
    bool called;
    struct sts_result res;
};

static void cold_cb(struct sts_result *res, void *arg)
{
    struct cold_done *d = arg;
    d->called = true;
    d->res = *res;
}

/* A live engine on the lab: the resolvers of resolv.conf, the CA file ca, a policy cache in dir. */
struct live {
    struct db_stscache *c;
    struct dns_resolver *dns;
    struct sts_fetcher *f;
    struct sts_engine *e;
};

/* Starts the loop and the engine; log: count its lines in log_lines. 0, or 1 after saying why. */
static int live_open(const char *dir, const char *ca, bool log, struct live *l)
{
    char err[512];
    memset(l, 0, sizeof *l);
    mkdir(dir, 0700);
    loop = ev_loop_new();
    struct dns_config dc;
    memset(&dc, 0, sizeof dc);
    struct sts_fetch_config fc;
    memset(&fc, 0, sizeof fc);
    fc.ca_file = ca;
    struct sts_engine_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (db_stscache_open(dir, &l->c, err, sizeof err) != DB_OK ||
        dns_resolver_new(loop, &dc, &l->dns, err, sizeof err) < 0 ||
        sts_fetcher_new(loop, l->dns, &fc, &l->f, err, sizeof err) < 0)
        goto fail;
    cfg.loop = loop;
    sts_engine_io_live(&cfg.io, l->dns, l->f);
    db_stsengine_store(l->c, &cfg.store);
    if (log) {
        cfg.log = null_log;
        cfg.log_level = STS_LOG_INFO;
    }
    if (sts_engine_new(&cfg, &l->e, err, sizeof err) < 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "bench_sts: %s\n", err);
    return 1;
}

static void live_close(struct live *l)
{
    if (l->e)
        sts_engine_free(l->e);
    if (l->f)
        sts_fetcher_free(l->f);
    if (l->dns)
        dns_resolver_free(l->dns);
    ev_loop_free(loop);
    if (l->c)
        db_stscache_close(l->c);
}

static int warm_pending;

static void warm_cb(struct sts_result *res, void *arg)
{
    (void)arg;
    sts_result_release(res);
    warm_pending--;
}

/* The lab domains warm in one live engine: each looked up once, then m lookups in turn. */
static int lab_warm(const char *data, const char *ca, int n, char **domains, long m)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/warm", data);
    struct live l;
    if (live_open(dir, ca, true, &l) != 0)
        return 1;
    for (int i = 0; i < n; i++) {
        struct sts_result r;
        if (sts_engine_lookup(l.e, domains[i], &r, warm_cb, NULL, NULL) == STS_ENGINE_PENDING)
            warm_pending++;
        else
            sts_result_release(&r);
    }
    while (warm_pending > 0)
        ev_run_once(loop, 1000);
    long answered = 0;
    double t0 = mono();
    for (long i = 0; i < m; i++) {
        struct sts_result r;
        if (sts_engine_lookup(l.e, domains[i % n], &r, warm_cb, NULL, NULL) == STS_ENGINE_DONE) {
            answered++;
            sts_result_release(&r);
        } else {
            warm_pending++;
        }
    }
    double t1 = mono();
    while (warm_pending > 0)
        ev_run_once(loop, 1000);
    printf("lab_warm_rate %.0f\nlab_warm_answered %ld of %ld\n", m / (t1 - t0), answered, m);
    live_close(&l);
    return 0;
}

static int bench_cold(const char *data, const char *ca, int n, char **domains, long warm_m)
{
    double *ms = calloc((size_t)n, sizeof *ms);
    mkdir(data, 0700);
    for (int i = 0; i < n; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%d", data, i);
        struct live l;
        if (live_open(dir, ca, false, &l) != 0)
            return 1;
        struct cold_done d;
        memset(&d, 0, sizeof d);
        struct sts_result r;
        double t0 = mono();
        if (sts_engine_lookup(l.e, domains[i], &r, cold_cb, &d, NULL) != STS_ENGINE_PENDING) {
            d.called = true;
            d.res = r;
        }
        while (!d.called)
            ev_run_once(loop, 1000);
        ms[i] = (mono() - t0) * 1000;
        printf("cold %s %.1f %s\n", domains[i], ms[i],
               d.res.policy ? sts_mode_name(d.res.mode) : "no-policy");
        sts_result_release(&d.res);
        live_close(&l);
    }
    print_stats(ms, n);
    free(ms);
    return warm_m > 0 ? lab_warm(data, ca, n, domains, warm_m) : 0;
}

/* ---- a socketmap client for mta-sts-daemon ---- */

static int sm_connect(const char *addr, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, addr, &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("bench_sts: connect");
        exit(1);
    }
    return fd;
}

/* One netstring request "mta-sts <domain>", one netstring answer into ans. */
static int sm_query(int fd, const char *domain, char *ans, size_t cap)
{
    char req[400], body[300];
    int blen = snprintf(body, sizeof body, "mta-sts %s", domain);
    int len = snprintf(req, sizeof req, "%d:%s,", blen, body);
    if (write(fd, req, (size_t)len) != len)
        return -1;
    size_t got = 0;
    char buf[2048];
    for (;;) {
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        buf[got] = '\0';
        char *colon = strchr(buf, ':');
        if (colon) {
            long want = strtol(buf, NULL, 10);
            size_t total = (size_t)(colon - buf) + 1 + (size_t)want + 1;
            if (got >= total) {
                snprintf(ans, cap, "%.*s", (int)want, colon + 1);
                return 0;
            }
        }
        if (got >= sizeof buf - 1)
            return -1;
    }
}

static int bench_socketmap(const char *addr, int port, int conns, double secs, bool cold, int n,
                           char **domains, int synthetic)
{
    char ans[2048];
    if (cold) {
        double *ms = calloc((size_t)n, sizeof *ms);
        for (int i = 0; i < n; i++) {
            int fd = sm_connect(addr, port);
            double t0 = mono();
            if (sm_query(fd, domains[i], ans, sizeof ans) < 0) {
                fprintf(stderr, "bench_sts: socketmap query failed\n");
                return 1;
            }
            ms[i] = (mono() - t0) * 1000;
            printf("cold %s %.1f %s\n", domains[i], ms[i], ans);
            close(fd);
        }
        print_stats(ms, n);
        free(ms);
        return 0;
    }
    int pipes[64][2];
    if (conns > 64)
        conns = 64;
    for (int k = 0; k < conns; k++) {
        if (pipe(pipes[k]) < 0)
            return 1;
        if (fork() == 0) {
            int fd = sm_connect(addr, port);
            long count = 0, ok = 0;
            double end = mono() + secs;
            uint64_t x = 88172645463325252ull + (uint64_t)k;
            for (int i = k; mono() < end; i++) {
                char name[64];
                const char *d = n > 0 ? domains[i % n] : "";
                if (synthetic > 0) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    snprintf(name, sizeof name, "d%d.bench.example",
                             (int)(x % (uint64_t)synthetic));
                    d = name;
                }
                if (sm_query(fd, d, ans, sizeof ans) < 0)
                    _exit(1);
                count++;
                ok += strncmp(ans, "OK ", 3) == 0;
            }
            char line[64];
            int len = snprintf(line, sizeof line, "%ld %ld\n", count, ok);
            if (write(pipes[k][1], line, (size_t)len) != len)
                _exit(1);
            _exit(0);
        }
        close(pipes[k][1]);
    }
    long total = 0, ok = 0;
    for (int k = 0; k < conns; k++) {
        char line[64] = "";
        ssize_t r = read(pipes[k][0], line, sizeof line - 1);
        if (r > 0) {
            line[r] = '\0';
            long c = 0, o = 0;
            sscanf(line, "%ld %ld", &c, &o);
            total += c;
            ok += o;
        }
        close(pipes[k][0]);
    }
    while (wait(NULL) > 0) {
    }
    printf("socketmap_rate %.0f\nsocketmap_queries %ld\nsocketmap_ok %ld\n", total / secs, total,
           ok);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_sts warm|cold|socketmap ...\n");
        return 2;
    }
    const char *mode = argv[1], *data = "/tmp/bench-sts", *ca = NULL, *addr = "127.0.0.1";
    int n = 100000, port = 8461, conns = 1;
    long m = 2000000;
    double secs = 5;
    long warm_m = 0;
    int synthetic = 0;
    bool cold = false;
    char **rest = calloc((size_t)argc, sizeof *rest);
    int nrest = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc)
            ca = argv[++i];
        else if (strcmp(argv[i], "--domains") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--lookups") == 0 && i + 1 < argc)
            m = atol(argv[++i]);
        else if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc)
            addr = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
            conns = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            secs = atof(argv[++i]);
        else if (strcmp(argv[i], "--warm") == 0 && i + 1 < argc)
            warm_m = atol(argv[++i]);
        else if (strcmp(argv[i], "--synthetic") == 0 && i + 1 < argc)
            synthetic = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-log") == 0)
            no_log = true;
        else if (strcmp(argv[i], "--cold") == 0)
            cold = true;
        else
            rest[nrest++] = argv[i];
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc;
    if (strcmp(mode, "warm") == 0)
        rc = bench_warm(data, n, m);
    else if (strcmp(mode, "cold") == 0 && nrest > 0)
        rc = bench_cold(data, ca, nrest, rest, warm_m);
    else if (strcmp(mode, "socketmap") == 0 && (nrest > 0 || synthetic > 0))
        rc = bench_socketmap(addr, port, conns, secs, cold, nrest, rest, synthetic);
    else {
        fprintf(stderr, "usage: bench_sts warm|cold|socketmap ...\n");
        rc = 2;
    }
    free(rest);
    return rc;
}
