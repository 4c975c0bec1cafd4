/* delivery.c - PLACEHOLDER for the queue runner, to be replaced by the delivery engineer's
 * implementation of delivery.h.
 *
 * It exists only so that stsgated links while the real delivery is being written: it delivers
 * nothing, so every accepted message simply stays queued in queue.db. delivery_now() makes
 * deferred recipients due (so `delivernow` reports a real count) and delivery_drain() is done
 * at once. */
#include "delivery.h"

#include "agent.h"

#include <stdlib.h>
#include <time.h>

struct delivery {
    struct agent *agent;
};

struct delivery *delivery_new(struct agent *agent, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct delivery *d = xcalloc(1, sizeof *d);
    d->agent = agent;
    return d;
}

void delivery_kick(struct delivery *d)
{
    (void)d;
}

long delivery_now(struct delivery *d)
{
    int64_t changed = 0;
    char err[256];
    if (db_queue_all_due(d->agent->queue, (int64_t)time(NULL), &changed, err, sizeof err) != DB_OK)
        agent_log(d->agent, MAILLOG_WARNING, "delivernow: %s", err);
    return (long)changed;
}

void delivery_config_changed(struct delivery *d)
{
    (void)d;
}

void delivery_drain(struct delivery *d, void (*done)(void *arg), void *arg)
{
    (void)d;
    done(arg);
}

void delivery_status(struct delivery *d, struct strbuf *out)
{
    (void)d;
    sb_append(out, "  Delivery is not built yet (placeholder): mail stays queued.\n");
}

void delivery_free(struct delivery *d)
{
    free(d);
}
