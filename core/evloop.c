/* evloop.c - epoll and a timer min-heap behind the small API of evloop.h.
 *
 * fd watchers: an array indexed by fd. Each slot carries a generation number that is also stored
 * in the epoll registration, so an event collected before a callback removed (or removed and
 * re-added) that fd is recognised as stale and dropped.
 * Timers: a binary min-heap of pointers ordered by (deadline, sequence number); each timer knows
 * its heap index, so cancel is a removal at a known position, O(log n). Timer structs come from
 * chunks and go back to a free list: steady-state operation allocates nothing.
 */
#include "evloop.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

enum { TIMER_FREE, TIMER_PENDING, TIMER_FIRING };
enum { EV_BATCH = 64, TIMER_CHUNK = 64 };

struct ev_timer {
    uint64_t when;
    uint64_t seq; /* ties on `when` fire in order of addition */
    ev_timer_cb cb;
    void *arg;
    size_t idx; /* position in the heap while pending */
    int state;
    struct ev_timer *next_free;
};

struct timer_chunk {
    struct timer_chunk *next;
    struct ev_timer t[TIMER_CHUNK];
};

struct io_slot {
    ev_io_cb cb;
    void *arg;
    unsigned events;
    uint32_t gen;
};

struct ev_loop {
    int epfd;
    struct io_slot *io;
    size_t nio;
    size_t nwatch; /* slots with events != 0 */
    struct ev_timer **heap;
    size_t nheap, capheap;
    struct ev_timer *free_timers;
    struct timer_chunk *chunks;
    uint64_t now;
    uint64_t seq;
    bool stop;
    struct epoll_event ready[EV_BATCH];
};

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct ev_loop *ev_loop_new(void)
{
    struct ev_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        int e = errno;
        free(loop);
        errno = e;
        return NULL;
    }
    loop->now = monotonic_ms();
    return loop;
}

void ev_loop_free(struct ev_loop *loop)
{
    if (!loop)
        return;
    close(loop->epfd);
    free(loop->io);
    free(loop->heap);
    struct timer_chunk *c = loop->chunks;
    while (c) {
        struct timer_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(loop);
}

uint64_t ev_now_ms(struct ev_loop *loop)
{
    return loop->now;
}

void ev_now_update(struct ev_loop *loop)
{
    loop->now = monotonic_ms();
}

void ev_stop(struct ev_loop *loop)
{
    loop->stop = true;
}

/* ---- fd watchers ---- */

static int io_reserve(struct ev_loop *loop, int fd)
{
    if ((size_t)fd < loop->nio)
        return 0;
    size_t n = loop->nio ? loop->nio : 64;
    while (n <= (size_t)fd)
        n *= 2;
    struct io_slot *io = realloc(loop->io, n * sizeof(*io));
    if (!io)
        return -1;
    memset(io + loop->nio, 0, (n - loop->nio) * sizeof(*io));
    loop->io = io;
    loop->nio = n;
    return 0;
}

int ev_io_set(struct ev_loop *loop, int fd, unsigned events, ev_io_cb cb, void *arg)
{
    if (fd < 0 || (events & ~(unsigned)(EV_READ | EV_WRITE)) || (events && !cb)) {
        errno = fd < 0 ? EBADF : EINVAL;
        return -1;
    }
    if (events == 0) {
        if ((size_t)fd >= loop->nio || loop->io[fd].events == 0)
            return 0;
        struct io_slot *s = &loop->io[fd];
        /* EBADF/ENOENT: the fd was closed first and the kernel already forgot it. */
        if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != EBADF && errno != ENOENT)
            return -1;
        s->events = 0;
        s->cb = NULL;
        s->arg = NULL;
        s->gen++;
        loop->nwatch--;
        return 0;
    }
    if (io_reserve(loop, fd) < 0)
        return -1;
    struct io_slot *s = &loop->io[fd];
    bool had = s->events != 0;
    if (!had)
        s->gen++;
    struct epoll_event ee = {0};
    ee.events = ((events & EV_READ) ? EPOLLIN : 0u) | ((events & EV_WRITE) ? EPOLLOUT : 0u);
    ee.data.u64 = (uint64_t)(uint32_t)fd | ((uint64_t)s->gen << 32);
    int rc = epoll_ctl(loop->epfd, had ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ee);
    if (rc < 0 && had && errno == ENOENT) {
        /* The old fd was closed without removal and the number reused: a new registration. */
        s->gen++;
        ee.data.u64 = (uint64_t)(uint32_t)fd | ((uint64_t)s->gen << 32);
        rc = epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ee);
    } else if (rc < 0 && !had && errno == EEXIST) {
        rc = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ee);
    }
    if (rc < 0)
        return -1;
    if (!had)
        loop->nwatch++;
    s->events = events;
    s->cb = cb;
    s->arg = arg;
    return 0;
}

/* ---- timers ---- */

static bool timer_before(const struct ev_timer *a, const struct ev_timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_put(struct ev_loop *loop, size_t i, struct ev_timer *t)
{
    loop->heap[i] = t;
    t->idx = i;
}

static void heap_up(struct ev_loop *loop, size_t i)
{
    struct ev_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_put(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_put(loop, i, t);
}

static void heap_down(struct ev_loop *loop, size_t i)
{
    struct ev_timer *t = loop->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= loop->nheap)
            break;
        if (c + 1 < loop->nheap && timer_before(loop->heap[c + 1], loop->heap[c]))
            c++;
        if (!timer_before(loop->heap[c], t))
            break;
        heap_put(loop, i, loop->heap[c]);
        i = c;
    }
    heap_put(loop, i, t);
}

static void heap_remove(struct ev_loop *loop, size_t i)
{
    loop->nheap--;
    if (i == loop->nheap)
        return;
    heap_put(loop, i, loop->heap[loop->nheap]);
    if (i > 0 && timer_before(loop->heap[i], loop->heap[(i - 1) / 2]))
        heap_up(loop, i);
    else
        heap_down(loop, i);
}

static void timer_release(struct ev_loop *loop, struct ev_timer *t)
{
    t->state = TIMER_FREE;
    t->cb = NULL;
    t->arg = NULL;
    t->next_free = loop->free_timers;
    loop->free_timers = t;
}

struct ev_timer *ev_timer_add(struct ev_loop *loop, uint64_t delay_ms, ev_timer_cb cb, void *arg)
{
    if (!cb) {
        errno = EINVAL;
        return NULL;
    }
    if (loop->nheap == loop->capheap) {
        size_t n = loop->capheap ? loop->capheap * 2 : 64;
        struct ev_timer **h = realloc(loop->heap, n * sizeof(*h));
        if (!h)
            return NULL;
        loop->heap = h;
        loop->capheap = n;
    }
    if (!loop->free_timers) {
        struct timer_chunk *c = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
        c->next = loop->chunks;
        loop->chunks = c;
        for (size_t i = 0; i < TIMER_CHUNK; i++)
            timer_release(loop, &c->t[i]);
    }
    struct ev_timer *t = loop->free_timers;
    loop->free_timers = t->next_free;
    t->next_free = NULL;
    t->when = delay_ms > UINT64_MAX - loop->now ? UINT64_MAX : loop->now + delay_ms;
    t->seq = loop->seq++;
    t->cb = cb;
    t->arg = arg;
    t->state = TIMER_PENDING;
    loop->heap[loop->nheap] = t;
    loop->nheap++;
    heap_up(loop, loop->nheap - 1);
    return t;
}

void ev_timer_cancel(struct ev_loop *loop, struct ev_timer *t)
{
    /* TIMER_FIRING: the callback is running; it is released when it returns. */
    if (!t || t->state != TIMER_PENDING)
        return;
    heap_remove(loop, t->idx);
    timer_release(loop, t);
}

unsigned ev_timer_count(const struct ev_loop *loop)
{
    return (unsigned)loop->nheap;
}

/* ---- running ---- */

static int wait_ms(struct ev_loop *loop, int max_wait_ms)
{
    if (loop->nheap == 0)
        return max_wait_ms;
    uint64_t when = loop->heap[0]->when;
    uint64_t d = when <= loop->now ? 0 : when - loop->now;
    if (d > INT_MAX)
        d = INT_MAX;
    if (max_wait_ms >= 0 && (uint64_t)max_wait_ms < d)
        return max_wait_ms;
    return (int)d;
}

static unsigned revents_of(uint32_t ev, unsigned want)
{
    unsigned r = 0;
    if (ev & (EPOLLIN | EPOLLPRI | EPOLLRDHUP))
        r |= EV_READ;
    if (ev & EPOLLOUT)
        r |= EV_WRITE;
    if (ev & (EPOLLERR | EPOLLHUP))
        r |= want;
    return r & want;
}

int ev_run_once(struct ev_loop *loop, int max_wait_ms)
{
    loop->now = monotonic_ms();
    /* Timers added from here on wait for the next iteration. */
    uint64_t seq_limit = loop->seq;
    int calls = 0;

    int n = epoll_wait(loop->epfd, loop->ready, EV_BATCH, wait_ms(loop, max_wait_ms));
    if (n < 0 && errno != EINTR)
        return -1;
    loop->now = monotonic_ms();
    for (int i = 0; i < n; i++) {
        uint64_t data = loop->ready[i].data.u64;
        int fd = (int)(uint32_t)data;
        uint32_t gen = (uint32_t)(data >> 32);
        if ((size_t)fd >= loop->nio)
            continue;
        struct io_slot *s = &loop->io[fd];
        if (s->events == 0 || s->gen != gen)
            continue; /* removed or replaced by an earlier callback of this batch */
        unsigned r = revents_of(loop->ready[i].events, s->events);
        if (!r)
            continue;
        ev_io_cb cb = s->cb;
        void *arg = s->arg;
        cb(loop, fd, r, arg);
        calls++;
    }

    while (loop->nheap > 0) {
        struct ev_timer *t = loop->heap[0];
        if (t->when > loop->now || t->seq >= seq_limit)
            break;
        heap_remove(loop, 0);
        t->state = TIMER_FIRING;
        t->cb(loop, t, t->arg);
        timer_release(loop, t);
        calls++;
    }
    return calls;
}

int ev_run(struct ev_loop *loop)
{
    loop->stop = false;
    while (!loop->stop && (loop->nwatch > 0 || loop->nheap > 0)) {
        if (ev_run_once(loop, -1) < 0)
            return -1;
    }
    loop->stop = false;
    return 0;
}
