/* reports.h - TLS reporting in the agent (RFC 8460): counting sessions, and sending each policy
 * domain's daily report to the rua of its _smtp._tls record.
 *
 * Counting: delivery calls reports_session() when a delivery connection's TLS outcome is known;
 * the counts go to <data>/tlsrpt.db (db_tlsrpt.h), per UTC day. Sending: once an hour the agent
 * looks at yesterday's domains that have no report sent yet; when destconfig SETUP enables
 * reports, it reads the domain's _smtp._tls record and sends the report to each mailto: (as a
 * message in the queue, from the SETUP contact, marked as a report so that delivery never holds
 * it back for MTA-STS or DANE) and https: address (an HTTPS POST of application/tlsrpt+json;
 * any 2xx is success). A day's report is sent once, also across restarts: it counts as sent once
 * every rua was tried. Counts older than a week are dropped. */
#ifndef STSGATE_REPORTS_H
#define STSGATE_REPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db_tlsrpt.h"
#include "strbuf.h"

struct agent;
struct reports;

struct reports *reports_new(struct agent *a, char *err, size_t errlen);
void reports_free(struct reports *r);
/* Counts one session (s->day may be NULL: today, UTC). Never fails the delivery: a store error
 * is logged once per hour at Warning. */
void reports_session(struct reports *r, const struct db_tlsrpt_session *s);
/* Looks for yesterday's reports to send now (the hourly timer does the same). */
void reports_run(struct reports *r);
/* Starts the reports of one UTC day ("YYYY-MM-DD") now: one job per domain with counts on that
 * day and no report sent yet (jobs already running are not started twice). Returns the number of
 * domains found (their names, joined by ", ", appended to names when not NULL), or -1 with err (not
 * a day, reports not enabled in destconfig SETUP, a store error). The sending itself goes on from
 * the loop and is logged; a second run of a day whose reports were all sent finds nothing. Sending
 * today's report early marks today sent: sessions counted later today are never reported. */
long reports_run_day(struct reports *r, const char *day, struct strbuf *names, char *err,
                     size_t errlen);
/* A message the agent made to carry a report: delivery sends it without MTA-STS or DANE. icid is
 * the message's incoming connection (0 for messages the agent made), data its text. */
bool reports_is_report(int64_t icid, const char *data, size_t size);

#endif
