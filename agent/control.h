/* control.h - the agent's control socket: <data>/stsgated.sock (mode 0600), for the shell.
 *
 * The protocol is one request line, one reply, then the agent closes the connection:
 *   request:  "status\n", "delivernow\n" or "tlsrpt send <YYYY-MM-DD>\n"
 *   reply:    "OK\n" then the text to show, or "ERR <reason>\n"
 * `status` text: the agent's state, version, uptime, configuration version, queue counts,
 * incoming and delivery connections. `delivernow` text: "<n> recipients rescheduled for
 * immediate delivery.\n". `tlsrpt send` starts sending that day's TLS reports (reports.h) and
 * says which domains are on their way. The socket works for a data directory path of any length: it
 * is bound through /proc/self/fd/<dirfd>/stsgated.sock, or after fchdir() into the directory. */
#ifndef STSGATE_CONTROL_H
#define STSGATE_CONTROL_H

#include <stddef.h>

struct agent;
struct control;

struct control *control_new(struct agent *a, char *err, size_t errlen);
void control_free(struct control *c);

#endif
