/* test_evloop.c - the event loop's promises: timer order and cancel, thousands of timers, fd
 * watchers that remove themselves or each other, stale events dropped, ev_run and ev_stop.
 */
#include "evloop.h"
#include "t.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- timers ---- */

struct order {
    int seen[16];
    int n;
};

struct tag {
    struct order *o;
    int id;
};

static void record_cb(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    struct tag *g = arg;
    g->o->seen[g->o->n++] = g->id;
}

static void test_timer_order(void)
{
    struct ev_loop *loop = ev_loop_new();
    struct order o = {{0}, 0};
    struct tag g[5] = {{&o, 0}, {&o, 1}, {&o, 2}, {&o, 3}, {&o, 4}};
    ev_timer_add(loop, 30, record_cb, &g[0]);
    ev_timer_add(loop, 10, record_cb, &g[1]);
    ev_timer_add(loop, 20, record_cb, &g[2]);
    ev_timer_add(loop, 10, record_cb, &g[3]); /* same deadline as 1: after it */
    struct ev_timer *t4 = ev_timer_add(loop, 15, record_cb, &g[4]);
    T_EQ_INT(ev_timer_count(loop), 5);
    ev_timer_cancel(loop, t4);
    T_EQ_INT(ev_timer_count(loop), 4);
    uint64_t start = ev_now_ms(loop);
    T_EQ_INT(ev_run(loop), 0);
    T_EQ_INT(o.n, 4);
    T_EQ_INT(o.seen[0], 1);
    T_EQ_INT(o.seen[1], 3);
    T_EQ_INT(o.seen[2], 2);
    T_EQ_INT(o.seen[3], 0);
    T_CHECK(ev_now_ms(loop) >= start + 30);
    ev_loop_free(loop);
}

/* A callback cancels itself and a sibling due in the same iteration. */
struct cancel_ctx {
    struct ev_timer *self, *sibling;
    int fired_self, fired_sibling;
};

static void cancel_self_cb(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    struct cancel_ctx *c = arg;
    c->fired_self++;
    T_CHECK(t == c->self);
    ev_timer_cancel(loop, t); /* allowed, no effect */
    ev_timer_cancel(loop, c->sibling);
}

static void sibling_cb(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)loop;
    (void)t;
    ((struct cancel_ctx *)arg)->fired_sibling++;
}

static void test_timer_cancel_in_callback(void)
{
    struct ev_loop *loop = ev_loop_new();
    struct cancel_ctx c = {0};
    c.self = ev_timer_add(loop, 5, cancel_self_cb, &c);
    c.sibling = ev_timer_add(loop, 5, sibling_cb, &c);
    usleep(10000);
    ev_run(loop);
    T_EQ_INT(c.fired_self, 1);
    T_EQ_INT(c.fired_sibling, 0);
    T_EQ_INT(ev_timer_count(loop), 0);
    ev_loop_free(loop);
}

/* A zero-delay timer added by a callback waits for the next iteration. */
static void readd_cb(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)t;
    int *n = arg;
    if (++*n < 1000)
        ev_timer_add(loop, 0, readd_cb, arg);
}

static void test_timer_zero_delay(void)
{
    struct ev_loop *loop = ev_loop_new();
    int n = 0;
    ev_timer_add(loop, 0, readd_cb, &n);
    T_EQ_INT(ev_run_once(loop, 0), 1);
    T_EQ_INT(n, 1);
    T_EQ_INT(ev_run_once(loop, 0), 1);
    T_EQ_INT(n, 2);
    ev_run(loop);
    T_EQ_INT(n, 1000);
    ev_loop_free(loop);
}

/* Thousands of timers, half cancelled: the rest fire once each, never early, in deadline order. */
struct many {
    uint64_t when;
    struct ev_timer *t;
    int fired;
    int cancelled;
};

struct many_ctx {
    struct many *m;
    uint64_t last_when;
    int early, disorder;
};

static struct many_ctx *g_many;

static void many_cb(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)t;
    struct many *m = arg;
    m->fired++;
    if (ev_now_ms(loop) < m->when)
        g_many->early++;
    if (m->when < g_many->last_when)
        g_many->disorder++;
    g_many->last_when = m->when;
}

static void test_timer_many(void)
{
    enum { N = 5000 };
    struct ev_loop *loop = ev_loop_new();
    struct many *m = calloc(N, sizeof(*m));
    struct many_ctx ctx = {m, 0, 0, 0};
    g_many = &ctx;
    srand(7);
    uint64_t now = ev_now_ms(loop);
    for (int i = 0; i < N; i++) {
        uint64_t d = (uint64_t)(rand() % 60);
        m[i].when = now + d;
        m[i].t = ev_timer_add(loop, d, many_cb, &m[i]);
    }
    T_EQ_INT(ev_timer_count(loop), N);
    int ncancel = 0;
    for (int i = 0; i < N; i += 2) {
        ev_timer_cancel(loop, m[i].t);
        m[i].cancelled = 1;
        ncancel++;
    }
    T_EQ_INT(ev_timer_count(loop), N - ncancel);
    ev_run(loop);
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += m[i].cancelled ? m[i].fired != 0 : m[i].fired != 1;
    T_EQ_INT(bad, 0);
    T_EQ_INT(ctx.early, 0);
    T_EQ_INT(ctx.disorder, 0);
    /* The recycled timers serve again. */
    for (int i = 0; i < N; i++)
        m[i].t = ev_timer_add(loop, 0, many_cb, &m[i]);
    ctx.last_when = 0;
    ev_run(loop);
    bad = 0;
    for (int i = 0; i < N; i++)
        bad += m[i].fired != (m[i].cancelled ? 1 : 2);
    T_EQ_INT(bad, 0);
    free(m);
    ev_loop_free(loop);
}

/* ---- fd watchers ---- */

struct io_ctx {
    int fds[2][2]; /* two pipes */
    int calls[2];
    unsigned revents[2];
    int replaced_calls;
    int mode; /* 0: each removes itself; 1: the first removes the other; 2: replaces it */
};

static void replaced_cb(struct ev_loop *loop, int fd, unsigned revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    ((struct io_ctx *)arg)->replaced_calls++;
}

static void pipe_cb(struct ev_loop *loop, int fd, unsigned revents, void *arg)
{
    struct io_ctx *c = arg;
    int i = fd == c->fds[0][0] ? 0 : 1;
    c->calls[i]++;
    c->revents[i] = revents;
    if (c->mode == 0) {
        T_EQ_INT(ev_io_set(loop, fd, 0, NULL, NULL), 0);
    } else {
        /* Whichever ran first takes both watchers away. */
        ev_io_set(loop, c->fds[0][0], 0, NULL, NULL);
        ev_io_set(loop, c->fds[1][0], 0, NULL, NULL);
        if (c->mode == 2)
            ev_io_set(loop, c->fds[1 - i][0], EV_READ, replaced_cb, c);
    }
}

static void test_io_remove(int mode)
{
    struct ev_loop *loop = ev_loop_new();
    struct io_ctx c = {0};
    c.mode = mode;
    for (int i = 0; i < 2; i++) {
        T_EQ_INT(pipe(c.fds[i]), 0);
        T_EQ_INT(write(c.fds[i][1], "x", 1), 1);
        T_EQ_INT(ev_io_set(loop, c.fds[i][0], EV_READ, pipe_cb, &c), 0);
    }
    /* Both pipes are readable: one epoll_wait returns both events. */
    int calls = ev_run_once(loop, 100);
    if (mode == 0) {
        T_EQ_INT(calls, 2);
        T_EQ_INT(c.calls[0], 1);
        T_EQ_INT(c.calls[1], 1);
        T_EQ_INT(c.revents[0], EV_READ);
        T_EQ_INT(ev_run_once(loop, 0), 0); /* removed: level-triggered data no longer reported */
    } else {
        T_EQ_INT(calls, 1); /* the other's event of the same batch was stale */
        T_EQ_INT(c.calls[0] + c.calls[1], 1);
        T_EQ_INT(c.replaced_calls, 0);
        if (mode == 2) {
            T_EQ_INT(ev_run_once(loop, 100), 1); /* the new watcher sees the data next time */
            T_EQ_INT(c.replaced_calls, 1);
        }
    }
    for (int i = 0; i < 2; i++) {
        ev_io_set(loop, c.fds[i][0], 0, NULL, NULL);
        close(c.fds[i][0]);
        close(c.fds[i][1]);
    }
    ev_loop_free(loop);
}

struct rw_ctx {
    unsigned got;
    int calls;
};

static void rw_cb(struct ev_loop *loop, int fd, unsigned revents, void *arg)
{
    struct rw_ctx *c = arg;
    c->got |= revents;
    c->calls++;
    ev_io_set(loop, fd, 0, NULL, NULL);
}

static void test_io_write_and_hangup(void)
{
    struct ev_loop *loop = ev_loop_new();
    int p[2];
    T_EQ_INT(pipe(p), 0);
    struct rw_ctx w = {0}, r = {0};
    T_EQ_INT(ev_io_set(loop, p[1], EV_WRITE, rw_cb, &w), 0);
    T_EQ_INT(ev_io_set(loop, p[0], EV_READ, rw_cb, &r), 0);
    T_EQ_INT(ev_run_once(loop, 100), 1);
    T_EQ_INT(w.got, EV_WRITE);
    T_EQ_INT(r.calls, 0);
    close(p[1]); /* hang-up shows as readable */
    T_EQ_INT(ev_run_once(loop, 100), 1);
    T_EQ_INT(r.got, EV_READ);
    /* Changing the events of a watcher, and removing an fd with no watcher. */
    T_EQ_INT(ev_io_set(loop, p[0], EV_READ, rw_cb, &r), 0);
    T_EQ_INT(ev_io_set(loop, p[0], EV_READ | EV_WRITE, rw_cb, &r), 0);
    T_EQ_INT(ev_io_set(loop, p[0], 0, NULL, NULL), 0);
    T_EQ_INT(ev_io_set(loop, p[0], 0, NULL, NULL), 0);
    T_EQ_INT(ev_io_set(loop, 1000, 0, NULL, NULL), 0);
    T_EQ_INT(ev_io_set(loop, -1, EV_READ, rw_cb, &r), -1);
    /* A watcher on a closed fd is tolerated when removed. */
    T_EQ_INT(ev_io_set(loop, p[0], EV_READ, rw_cb, &r), 0);
    close(p[0]);
    T_EQ_INT(ev_io_set(loop, p[0], 0, NULL, NULL), 0);
    ev_loop_free(loop);
}

/* ---- run and stop ---- */

static void stop_cb(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
    (void)t;
    (*(int *)arg)++;
    ev_stop(loop);
}

static void never_cb(struct ev_loop *loop, int fd, unsigned revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    (*(int *)arg)++;
}

static void test_run_stop(void)
{
    struct ev_loop *loop = ev_loop_new();
    T_EQ_INT(ev_run(loop), 0); /* nothing to wait for: returns at once */
    int p[2];
    T_EQ_INT(pipe(p), 0);
    int stops = 0, reads = 0;
    ev_io_set(loop, p[0], EV_READ, never_cb, &reads);
    ev_timer_add(loop, 20, stop_cb, &stops);
    uint64_t t0 = ev_now_ms(loop);
    T_EQ_INT(ev_run(loop), 0); /* a watcher remains: only ev_stop ends it */
    T_EQ_INT(stops, 1);
    T_EQ_INT(reads, 0);
    T_CHECK(ev_now_ms(loop) - t0 >= 20);
    /* ev_run_once with a bound returns when nothing happens. */
    T_EQ_INT(ev_run_once(loop, 10), 0);
    uint64_t before = ev_now_ms(loop);
    usleep(5000);
    T_EQ_INT(ev_now_ms(loop), before); /* cached */
    ev_now_update(loop);
    T_CHECK(ev_now_ms(loop) >= before + 5);
    ev_io_set(loop, p[0], 0, NULL, NULL);
    close(p[0]);
    close(p[1]);
    ev_loop_free(loop);
}

int main(void)
{
    test_timer_order();
    test_timer_cancel_in_callback();
    test_timer_zero_delay();
    test_timer_many();
    test_io_remove(0);
    test_io_remove(1);
    test_io_remove(2);
    test_io_write_and_hangup();
    test_run_stop();
    return t_done();
}
