/* sts_probe.c - a test driver for the MTA-STS engine and fetch against the lab (not installed).
 *
 *   sts_probe --data DIR [--ca FILE] [--proxy URL] [--timeout S] MODE DOMAIN
 *
 * Modes:
 *   fetch    one policy fetch (sts_fetch.c alone): prints "fetch: STATUS http=N type=T bytes=N"
 *            and "reason: ..." on failure
 *   lookup   the engine once, with the live DNS and fetch and the store <DIR>/stscache.db:
 *            every log line ("log: Level: text"), then "decision: enforce|testing|none|no-policy",
 *            "why: ...", and the cache row afterwards
 *   cache    the cache row only: "cache: absent" or "cache: present policy=0|1 id=.. mode=..
 *            fetched_at=.. max_age=.. failed_id=.."
 *   seed     stores a cached policy for DOMAIN (id "seed", mode enforce, mx: mx.<DOMAIN>,
 *            max_age 86400, fetched now), to check that a failing fetch leaves it in use
 * Exit status 0 when the mode ran (whatever it found), 2 on a usage or setup error.
 */
#include "db_stscache.h"
#include "db_stsengine.h"
#include "sts_engine.h"
#include "sts_fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *level_name(enum sts_log_level lv)
{
    static const char *const names[] = {"Critical", "Warning", "Info", "Debug", "Trace"};
    return names[lv];
}

static void log_line(void *arg, enum sts_log_level lv, const char *text)
{
    (void)arg;
    printf("log: %s: %s\n", level_name(lv), text);
}

static int print_cache(struct db_stscache *c, const char *domain)
{
    struct sts_cache_entry e;
    char err[256];
    enum db_status st = db_stscache_get(c, domain, &e, NULL, 0, NULL, err, sizeof err);
    if (st == DB_NOTFOUND) {
        printf("cache: absent\n");
        return 0;
    }
    if (st != DB_OK) {
        fprintf(stderr, "sts_probe: %s\n", err);
        return 2;
    }
    printf("cache: present policy=%d id=%s mode=%s fetched_at=%lld max_age=%u failed_id=%s\n",
           e.has_policy ? 1 : 0, e.id, sts_mode_name(e.mode), (long long)e.fetched_at,
           (unsigned)e.max_age, e.failed_id);
    return 0;
}

struct done {
    bool called;
    struct sts_result res;
};

static void on_result(struct sts_result *res, void *arg)
{
    struct done *d = arg;
    d->called = true;
    d->res = *res;
}

static void usage(void)
{
    fprintf(stderr, "usage: sts_probe --data DIR [--ca FILE] [--proxy URL] [--timeout S] "
                    "fetch|lookup|cache|seed DOMAIN\n");
}

int main(int argc, char **argv)
{
    const char *data = NULL, *mode = NULL, *domain = NULL;
    struct sts_fetch_config fc;
    memset(&fc, 0, sizeof fc);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc)
            fc.ca_file = argv[++i];
        else if (strcmp(argv[i], "--proxy") == 0 && i + 1 < argc)
            fc.proxy = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            fc.timeout_s = (unsigned)atoi(argv[++i]);
        else if (!mode)
            mode = argv[i];
        else if (!domain)
            domain = argv[i];
        else {
            usage();
            return 2;
        }
    }
    if (!data || !mode || !domain) {
        usage();
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (strcmp(mode, "fetch") == 0) {
        struct sts_fetch_result r;
        static char body[STS_POLICY_MAX];
        sts_fetch_blocking(NULL, &fc, domain, &r, body, sizeof body, NULL);
        printf("fetch: %s http=%ld type=%s bytes=%zu elapsed=%.1f\n",
               sts_fetch_status_name(r.status), r.http_status,
               r.content_type[0] ? r.content_type : "-", r.body_len, r.elapsed_s);
        if (r.status != STS_FETCH_OK)
            printf("reason: %s\n", r.reason);
        return 0;
    }

    char err[512];
    struct db_stscache *c = NULL;
    if (db_stscache_open(data, &c, err, sizeof err) != DB_OK) {
        fprintf(stderr, "sts_probe: %s\n", err);
        return 2;
    }
    int rc = 0;
    if (strcmp(mode, "cache") == 0) {
        rc = print_cache(c, domain);
    } else if (strcmp(mode, "seed") == 0) {
        char text[600];
        int len = snprintf(text, sizeof text,
                           "version: STSv1\nmode: enforce\nmx: mx.%s\nmax_age: 86400\n", domain);
        struct sts_cache_entry e;
        memset(&e, 0, sizeof e);
        e.has_policy = true;
        snprintf(e.id, sizeof e.id, "seed");
        e.mode = STS_MODE_ENFORCE;
        e.fetched_at = (int64_t)time(NULL);
        e.max_age = 86400;
        e.refresh_at = e.fetched_at + 80000;
        e.last_used = e.fetched_at;
        if (db_stscache_put(c, domain, &e, text, (size_t)len, err, sizeof err) != DB_OK) {
            fprintf(stderr, "sts_probe: %s\n", err);
            rc = 2;
        } else {
            rc = print_cache(c, domain);
        }
    } else if (strcmp(mode, "lookup") == 0) {
        struct ev_loop *loop = ev_loop_new();
        struct dns_config dc;
        memset(&dc, 0, sizeof dc);
        struct dns_resolver *dns = NULL;
        struct sts_fetcher *f = NULL;
        struct sts_engine *e = NULL;
        struct sts_engine_config ec;
        memset(&ec, 0, sizeof ec);
        if (!loop || dns_resolver_new(loop, &dc, &dns, err, sizeof err) < 0 ||
            sts_fetcher_new(loop, dns, &fc, &f, err, sizeof err) < 0) {
            fprintf(stderr, "sts_probe: %s\n", err);
            return 2;
        }
        ec.loop = loop;
        sts_engine_io_live(&ec.io, dns, f);
        db_stsengine_store(c, &ec.store);
        ec.log = log_line;
        ec.log_level = STS_LOG_DEBUG;
        if (sts_engine_new(&ec, &e, err, sizeof err) < 0) {
            fprintf(stderr, "sts_probe: %s\n", err);
            return 2;
        }
        struct done d;
        memset(&d, 0, sizeof d);
        struct sts_result now;
        if (sts_engine_lookup(e, domain, &now, on_result, &d, NULL) != STS_ENGINE_PENDING) {
            d.called = true;
            d.res = now;
        }
        while (!d.called)
            ev_run_once(loop, 1000);
        printf("decision: %s\n", d.res.policy ? sts_mode_name(d.res.mode) : "no-policy");
        printf("why: %s\n", d.res.why);
        if (d.res.policy) {
            printf("mx:");
            for (const char *m = sts_pol_mx_first(d.res.policy); m;
                 m = sts_pol_mx_next(d.res.policy, m))
                printf(" %s", m);
            printf("\n");
        }
        sts_result_release(&d.res);
        sts_engine_free(e);
        sts_fetcher_free(f);
        dns_resolver_free(dns);
        ev_loop_free(loop);
        rc = print_cache(c, domain);
    } else {
        usage();
        rc = 2;
    }
    db_stscache_close(c);
    return rc;
}
