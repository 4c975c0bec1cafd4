/* delivery.h - the queue runner: the contract between the agent's process (main.c, listener.c,
 * control.c) and delivery (delivery.c).
 *
 * Delivery takes due recipients from the queue (db_queue.h), groups them per destination, and
 * delivers them under the configuration snapshot current when each connection opens
 * (delivery-policy.md). It runs entirely on the agent's event loop. */
#ifndef STSGATE_DELIVERY_H
#define STSGATE_DELIVERY_H

#include "strbuf.h"

struct agent;
struct delivery;

/* Created once the agent's loop, queue, log and first snapshot exist. NULL with err on failure. */
struct delivery *delivery_new(struct agent *agent, char *err, size_t errlen);
/* New mail was queued (the listener calls this after a batch became durable). */
void delivery_kick(struct delivery *d);
/* `delivernow`: every deferred recipient becomes due now. Returns how many. */
long delivery_now(struct delivery *d);
/* A new configuration snapshot is current (agent->snap); new connections use it. */
void delivery_config_changed(struct delivery *d);
/* SIGTERM: open no new connection, let those in flight finish their message, then call done. */
void delivery_drain(struct delivery *d, void (*done)(void *arg), void *arg);
/* For `status`: active connections (one line each) and counters, appended to out. */
void delivery_status(struct delivery *d, struct strbuf *out);
void delivery_free(struct delivery *d);

#endif
