/* test_dsn.c - core/dsn.c: the RFC 3464 structure (multipart/report, the delivery-status fields
 * per recipient, the original headers and not the body), header injection kept out, and no DSN
 * for a null-sender message. */
#include "dsn.h"
#include "t.h"

#include <stdlib.h>

static bool has(const char *s, const char *needle)
{
    if (!strstr(s, needle)) {
        fprintf(stderr, "missing: %s\n", needle);
        return false;
    }
    return true;
}

int main(void)
{
    const char *orig = "From: alice@example.org\r\nTo: bob@dest.example\r\nSubject: hi\r\n"
                       "\r\nSecret body line\r\n";
    struct dsn_rcpt r[2] = {
        {"bob@dest.example", "5.1.1", "smtp; 550 5.1.1 <bob@dest.example>: unknown user",
         "mx.dest.example"},
        {"carol@dest.example", "5.4.7", "delivery time expired\r\nInjected: yes", NULL},
    };
    struct dsn_params p = {
        .reporting_mta = "gw.example.org",
        .sender = "alice@example.org",
        .mid = 42,
        .arrival = 1700000000,
        .now = 1700003600,
        .rcpt = r,
        .n_rcpt = 2,
        .original = orig,
        .original_len = strlen(orig),
        .boundary = "BOUNDARY",
    };
    struct strbuf sb = STRBUF_INIT;
    T_CHECK(dsn_build(&p, &sb));
    const char *s = sb_str(&sb);
    T_CHECK(has(s, "From: Mail Delivery System <MAILER-DAEMON@gw.example.org>\r\n"));
    T_CHECK(has(s, "To: <alice@example.org>\r\n"));
    T_CHECK(has(s, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                   "\tboundary=\"BOUNDARY\"\r\n"));
    T_CHECK(has(s, "--BOUNDARY\r\nContent-Type: text/plain"));
    T_CHECK(has(s, "--BOUNDARY\r\nContent-Type: message/delivery-status\r\n\r\n"
                   "Reporting-MTA: dns; gw.example.org\r\nArrival-Date: "));
    T_CHECK(has(s, "\r\nFinal-Recipient: rfc822; bob@dest.example\r\nAction: failed\r\n"
                   "Status: 5.1.1\r\nRemote-MTA: dns; mx.dest.example\r\n"
                   "Diagnostic-Code: smtp; 550 5.1.1 <bob@dest.example>: unknown user\r\n"));
    T_CHECK(has(s, "Final-Recipient: rfc822; carol@dest.example\r\nAction: failed\r\n"
                   "Status: 5.4.7\r\nDiagnostic-Code: smtp; delivery time expired  Injected: "
                   "yes\r\n"));
    T_CHECK(strstr(s, "\nInjected:") == NULL);
    T_CHECK(has(s, "--BOUNDARY\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: "
                   "alice@example.org\r\nTo: bob@dest.example\r\nSubject: hi\r\n\r\n--BOUNDARY--"
                   "\r\n"));
    T_CHECK(strstr(s, "Secret body line") == NULL);
    /* every line ends in CRLF */
    for (const char *c = s; *c; c++)
        if (*c == '\n' && (c == s || c[-1] != '\r')) {
            T_CHECK(!"bare LF");
            break;
        }
    sb_free(&sb);

    /* LF-only originals are copied with CRLF */
    const char *lf = "Subject: lf\nX: y\n\nbody\n";
    p.original = lf;
    p.original_len = strlen(lf);
    T_CHECK(dsn_build(&p, &sb));
    T_CHECK(has(sb_str(&sb), "\r\n\r\nSubject: lf\r\nX: y\r\n\r\n--BOUNDARY--"));
    sb_free(&sb);

    /* never for the null sender */
    p.sender = "";
    T_CHECK(!dsn_build(&p, &sb));
    T_EQ_INT(sb.len, 0);
    p.sender = NULL;
    T_CHECK(!dsn_build(&p, &sb));
    p.sender = "alice@example.org";
    p.n_rcpt = 0;
    T_CHECK(!dsn_build(&p, &sb));
    sb_free(&sb);
    return t_done();
}
