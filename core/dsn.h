/* dsn.h - delivery status notifications (RFC 3464) for bounced recipients.
 *
 * dsn_build() writes a complete message (headers and body, CRLF line ends, ready for the queue)
 * from the null sender to the original sender: multipart/report; report-type=delivery-status,
 * with a human-readable part, a message/delivery-status part (Reporting-MTA, Arrival-Date, one
 * block per recipient with Final-Recipient, Action: failed, Status, Remote-MTA when known,
 * Diagnostic-Code) and a text/rfc822-headers part with the original message's headers.
 * A message from the null sender never gets a DSN (RFC 5321 6.1: no bounce loops): dsn_build()
 * refuses it. Pure: no I/O. */
#ifndef STSGATE_DSN_H
#define STSGATE_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "strbuf.h"

struct dsn_rcpt {
    const char *addr;       /* the recipient, without brackets */
    const char *status;     /* enhanced status, "5.1.1" */
    const char *diagnostic; /* "smtp; 550 5.1.1 <bob@x>: Recipient address rejected" or the
                               local reason; may be NULL */
    const char *remote_mta; /* the host that answered; NULL when none did */
};

struct dsn_params {
    const char *reporting_mta; /* our host name */
    const char *sender;        /* the original envelope sender: the DSN's recipient */
    int64_t mid;               /* the original MID, for the human part */
    time_t arrival;            /* when the original was received */
    time_t now;                /* the DSN's Date */
    const struct dsn_rcpt *rcpt;
    size_t n_rcpt;
    const char *original; /* the original message (headers are copied from it) */
    size_t original_len;
    const char *boundary; /* NULL: derived from mid and now */
};

/* Appends the DSN message to out. Returns false (out untouched) for a null sender or no
 * recipients. */
bool dsn_build(const struct dsn_params *p, struct strbuf *out);

#endif
