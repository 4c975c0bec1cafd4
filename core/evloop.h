/* evloop.h - the single-threaded event loop every stsgate component shares.
 *
 * One loop runs file descriptor watchers (epoll, level-triggered) and timers (a binary min-heap).
 * The agent's connections, c-ares's sockets (core/dns.c) and libcurl's sockets all sit on it.
 *
 * Promises:
 * - No allocation per event: fd watchers live in an array indexed by fd, timers are recycled
 *   through a free list; memory grows only when more fds or more simultaneous timers are used
 *   than ever before.
 * - A callback may add, change or remove any fd watcher (its own included) and add or cancel any
 *   timer (the one firing included). An event already collected for an fd whose watcher was
 *   removed, or removed and re-added, during the same iteration is dropped, never delivered to
 *   the new watcher.
 * - Timers with the same deadline fire in the order they were added. A timer added by a callback
 *   never fires in the iteration that added it, so a zero-delay timer cannot starve I/O.
 * - Time is CLOCK_MONOTONIC in milliseconds, read once per iteration (ev_now_ms).
 * Not thread-safe: use a loop from one thread only.
 */
#ifndef STSGATE_EVLOOP_H
#define STSGATE_EVLOOP_H

#include <stdint.h>

struct ev_loop;
struct ev_timer;

enum { EV_READ = 1, EV_WRITE = 2 };

/* revents: EV_READ and/or EV_WRITE. An error or hang-up on the fd is reported as every event the
 * watcher asked for, so the callback finds the error with its next read or write. */
typedef void (*ev_io_cb)(struct ev_loop *loop, int fd, unsigned revents, void *arg);
typedef void (*ev_timer_cb)(struct ev_loop *loop, struct ev_timer *timer, void *arg);

/* NULL when out of memory or epoll is unavailable (errno says which). */
struct ev_loop *ev_loop_new(void);
/* Drops every watcher and timer without calling them. Closes no fd but its own. Not from inside
 * one of the loop's callbacks. */
void ev_loop_free(struct ev_loop *loop);

/* Adds or changes the watcher of fd; events 0 removes it. Returns 0, or -1 with errno set.
 * Removing an fd that has no watcher is not an error. Remove before close(): an fd closed first
 * is tolerated (the kernel forgets it) but a dup()ed one would stay registered. */
int ev_io_set(struct ev_loop *loop, int fd, unsigned events, ev_io_cb cb, void *arg);

/* Schedules cb once, delay_ms after ev_now_ms(). NULL when out of memory. The handle is valid
 * until the callback has returned or the timer was cancelled; do not use it afterwards. */
struct ev_timer *ev_timer_add(struct ev_loop *loop, uint64_t delay_ms, ev_timer_cb cb, void *arg);
/* O(log n). Cancelling the timer whose callback is running is allowed and does nothing. NULL is
 * ignored. */
void ev_timer_cancel(struct ev_loop *loop, struct ev_timer *timer);
/* Number of timers scheduled and not yet fired or cancelled. */
unsigned ev_timer_count(const struct ev_loop *loop);

/* Monotonic milliseconds, cached per iteration; ev_now_update() refreshes it after long work. */
uint64_t ev_now_ms(struct ev_loop *loop);
void ev_now_update(struct ev_loop *loop);

/* One iteration: waits up to max_wait_ms (-1: until an event or the next timer; 0: poll), then
 * calls the ready fd watchers, then the timers that are due. Returns the number of callbacks
 * called, or -1 with errno set when epoll fails (EINTR is not a failure: it returns 0). */
int ev_run_once(struct ev_loop *loop, int max_wait_ms);
/* Iterates until ev_stop() or until there is nothing left to wait for (no fd watcher, no timer).
 * Returns 0, or -1 when epoll fails. */
int ev_run(struct ev_loop *loop);
/* Makes ev_run() return after the current iteration. */
void ev_stop(struct ev_loop *loop);

#endif
