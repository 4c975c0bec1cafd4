/* listener.h - the agent's ESMTP server (RFC 5321) on the event loop.
 *
 * Accepts mail from the organisation's servers on every --listen address and puts it in the
 * queue. Promises:
 * - 250 after DATA only once the message is in queue.db (group commit: the messages finished
 *   within a few milliseconds are stored in one transaction, then each client gets its 250);
 * - no thread per connection; a session holds a small fixed line buffer and, only during DATA,
 *   the message so far (never more than --max-size plus one line);
 * - relaying only for --relay networks: others are refused at RCPT with 550 5.7.1;
 * - --max-conn: a connection beyond it gets 421 4.7.0 and is closed at once.
 * See docs/agent.md for every reply code and choice (bare LF, line length, timeouts). */
#ifndef STSGATE_LISTENER_H
#define STSGATE_LISTENER_H

#include <stddef.h>

#include "strbuf.h"

struct agent;
struct listener;

/* Binds every --listen address. NULL with err when one cannot be bound. */
struct listener *listener_new(struct agent *a, char *err, size_t errlen);
/* SIGTERM: close the listening sockets, answer 421 to idle sessions, let a transaction in DATA
 * finish (up to a deadline), then call done once every session is closed. */
void listener_drain(struct listener *l, void (*done)(void *arg), void *arg);
/* For `status`: the listening addresses. */
void listener_status(struct listener *l, struct strbuf *out);
void listener_free(struct listener *l);

#endif
