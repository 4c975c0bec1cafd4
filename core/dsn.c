/* dsn.c - RFC 3464 delivery status notifications (see dsn.h). */
#include "dsn.h"

#include <stdio.h>
#include <string.h>

static void rfc5322_date(time_t t, char *out, size_t outlen)
{
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, outlen, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* The original's header block: up to the first empty line, with CRLF line ends. */
static void copy_headers(struct strbuf *out, const char *msg, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && msg[e] != '\n')
            e++;
        size_t l = e;
        if (l > i && msg[l - 1] == '\r')
            l--;
        if (l == i)
            break; /* the empty line ends the header */
        sb_append_len(out, msg + i, l - i);
        sb_append(out, "\r\n");
        i = e + 1;
    }
}

/* A header or field value must stay on one line. */
static void one_line(struct strbuf *out, const char *s)
{
    for (; s && *s; s++)
        sb_append_len(out, (*s == '\r' || *s == '\n') ? " " : s, 1);
}

bool dsn_build(const struct dsn_params *p, struct strbuf *out)
{
    if (!p->sender || !*p->sender || p->n_rcpt == 0)
        return false;
    char date[64], arrival[64], boundary[96];
    rfc5322_date(p->now, date, sizeof date);
    rfc5322_date(p->arrival, arrival, sizeof arrival);
    if (p->boundary)
        snprintf(boundary, sizeof boundary, "%s", p->boundary);
    else
        snprintf(boundary, sizeof boundary, "%lld.%lld/%s", (long long)p->mid, (long long)p->now,
                 p->reporting_mta);

    sb_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", p->reporting_mta);
    sb_append(out, "To: <");
    one_line(out, p->sender);
    sb_append(out, ">\r\n");
    sb_append(out, "Subject: Undelivered Mail Returned to Sender\r\n");
    sb_printf(out, "Date: %s\r\n", date);
    sb_printf(out, "Message-ID: <dsn.%lld.%lld@%s>\r\n", (long long)p->mid, (long long)p->now,
              p->reporting_mta);
    sb_append(out, "Auto-Submitted: auto-replied\r\n");
    sb_append(out, "MIME-Version: 1.0\r\n");
    sb_printf(out,
              "Content-Type: multipart/report; report-type=delivery-status;\r\n"
              "\tboundary=\"%s\"\r\n",
              boundary);
    sb_append(out, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

    /* the human part */
    sb_printf(out, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
    sb_printf(out,
              "This is the mail system at host %s.\r\n\r\n"
              "Your message (MID %lld) could not be delivered to one or more recipients.\r\n"
              "It has been returned to you with the reasons below.\r\n\r\n",
              p->reporting_mta, (long long)p->mid);
    for (size_t i = 0; i < p->n_rcpt; i++) {
        sb_append(out, "<");
        one_line(out, p->rcpt[i].addr);
        sb_append(out, ">: ");
        one_line(out, p->rcpt[i].diagnostic ? p->rcpt[i].diagnostic : p->rcpt[i].status);
        sb_append(out, "\r\n");
    }
    sb_append(out, "\r\n");

    /* the machine-readable part */
    sb_printf(out, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
    sb_printf(out, "Reporting-MTA: dns; %s\r\nArrival-Date: %s\r\n", p->reporting_mta, arrival);
    for (size_t i = 0; i < p->n_rcpt; i++) {
        const struct dsn_rcpt *r = &p->rcpt[i];
        sb_append(out, "\r\nFinal-Recipient: rfc822; ");
        one_line(out, r->addr);
        sb_append(out, "\r\nAction: failed\r\nStatus: ");
        one_line(out, r->status);
        sb_append(out, "\r\n");
        if (r->remote_mta && *r->remote_mta) {
            sb_append(out, "Remote-MTA: dns; ");
            one_line(out, r->remote_mta);
            sb_append(out, "\r\n");
        }
        if (r->diagnostic && *r->diagnostic) {
            sb_append(out, "Diagnostic-Code: smtp; ");
            const char *d = r->diagnostic;
            if (strncmp(d, "smtp; ", 6) == 0)
                d += 6;
            one_line(out, d);
            sb_append(out, "\r\n");
        }
    }
    sb_append(out, "\r\n");

    /* the original's headers */
    sb_printf(out, "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
    if (p->original)
        copy_headers(out, p->original, p->original_len);
    sb_printf(out, "\r\n--%s--\r\n", boundary);
    return true;
}
