/* tlsrpt.c - RFC 8460 record parsing and JSON reports. */
#include "tlsrpt.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const result_names[TLSRPT_RESULT_COUNT] = {
    "success",
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
};

const char *tlsrpt_result_name(enum tlsrpt_result r)
{
    return (unsigned)r < TLSRPT_RESULT_COUNT ? result_names[r] : "validation-failure";
}

enum tlsrpt_result tlsrpt_result_from_name(const char *name)
{
    for (int i = 0; i < TLSRPT_RESULT_COUNT; i++)
        if (strcmp(result_names[i], name) == 0)
            return (enum tlsrpt_result)i;
    return TLSRPT_RESULT_COUNT;
}

static const char *const policy_names[] = {"sts", "tlsa", "no-policy-found"};

const char *tlsrpt_policy_type_name(enum tlsrpt_policy_type t)
{
    return (unsigned)t < 3 ? policy_names[t] : "no-policy-found";
}

bool tlsrpt_policy_type_from_name(const char *name, enum tlsrpt_policy_type *out)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(policy_names[i], name) == 0) {
            *out = (enum tlsrpt_policy_type)i;
            return true;
        }
    }
    return false;
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* Adds one rua URI (already trimmed) when its scheme is one we can deliver to. */
static void add_uri(struct tlsrpt_record *out, const char *s, size_t n)
{
    if (n == 0 || n >= TLSRPT_URI_MAX || out->nrua >= TLSRPT_MAX_RUA)
        return;
    if (!(n > 7 && strncasecmp(s, "mailto:", 7) == 0) &&
        !(n > 8 && strncasecmp(s, "https://", 8) == 0))
        return;
    memcpy(out->rua[out->nrua], s, n);
    out->rua[out->nrua][n] = '\0';
    out->nrua++;
}

bool tlsrpt_record_parse(const char *txt, size_t len, struct tlsrpt_record *out, char *reason,
                         size_t reasonlen)
{
    memset(out, 0, sizeof *out);
    const char *p = txt, *end = txt + len;
    static const char version[] = "v=TLSRPTv1";
    if (len < sizeof version - 1 || memcmp(p, version, sizeof version - 1) != 0) {
        snprintf(reason, reasonlen, "the record does not begin with v=TLSRPTv1");
        return false;
    }
    p += sizeof version - 1;
    bool seen_rua = false;
    while (p < end) {
        while (p < end && is_wsp(*p))
            p++;
        if (p == end)
            break;
        if (*p != ';') {
            snprintf(reason, reasonlen, "a field is not separated by ';'");
            return false;
        }
        p++;
        while (p < end && is_wsp(*p))
            p++;
        if (p == end)
            break; /* a trailing ';' */
        const char *field = p;
        while (p < end && *p != ';')
            p++;
        const char *fend = p;
        while (fend > field && is_wsp(fend[-1]))
            fend--;
        const char *eq = memchr(field, '=', (size_t)(fend - field));
        if (!eq || eq == field) {
            snprintf(reason, reasonlen, "a field is not name=value");
            return false;
        }
        if ((size_t)(eq - field) == 3 && memcmp(field, "rua", 3) == 0 && !seen_rua) {
            seen_rua = true;
            const char *u = eq + 1;
            while (u < fend) {
                const char *comma = memchr(u, ',', (size_t)(fend - u));
                const char *uend = comma ? comma : fend;
                const char *a = u, *b = uend;
                while (a < b && is_wsp(*a))
                    a++;
                while (b > a && is_wsp(b[-1]))
                    b--;
                add_uri(out, a, (size_t)(b - a));
                u = comma ? comma + 1 : fend;
            }
        }
    }
    if (!seen_rua) {
        snprintf(reason, reasonlen, "the record has no rua field");
        return false;
    }
    if (out->nrua == 0) {
        snprintf(reason, reasonlen, "the record has no mailto: or https: address");
        return false;
    }
    return true;
}

void tlsrpt_json_string(struct strbuf *out, const char *s)
{
    sb_append_len(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            sb_append(out, "\\\"");
            break;
        case '\\':
            sb_append(out, "\\\\");
            break;
        case '\n':
            sb_append(out, "\\n");
            break;
        case '\r':
            sb_append(out, "\\r");
            break;
        case '\t':
            sb_append(out, "\\t");
            break;
        default:
            if (*p < 0x20)
                sb_printf(out, "\\u%04x", *p);
            else
                sb_append_len(out, (const char *)p, 1);
        }
    }
    sb_append_len(out, "\"", 1);
}

static void json_time(struct strbuf *out, int64_t t)
{
    char buf[32];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    tlsrpt_json_string(out, buf);
}

/* A '\n'-separated list as a JSON array of strings. */
static void json_lines(struct strbuf *out, const char *lines)
{
    sb_append(out, "[");
    bool first = true;
    const char *p = lines ? lines : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > 0) {
            char *line = xstrndup(p, n);
            if (!first)
                sb_append(out, ", ");
            tlsrpt_json_string(out, line);
            free(line);
            first = false;
        }
        p += n + (nl ? 1 : 0);
    }
    sb_append(out, "]");
}

void tlsrpt_report_json(const struct tlsrpt_meta *meta, const struct tlsrpt_policy *policies,
                        size_t n, struct strbuf *out)
{
    sb_append(out, "{\n  \"organization-name\": ");
    tlsrpt_json_string(out, meta->organization);
    sb_append(out, ",\n  \"date-range\": {\n    \"start-datetime\": ");
    json_time(out, meta->start);
    sb_append(out, ",\n    \"end-datetime\": ");
    json_time(out, meta->end);
    sb_append(out, "\n  },\n  \"contact-info\": ");
    tlsrpt_json_string(out, meta->contact);
    sb_append(out, ",\n  \"report-id\": ");
    tlsrpt_json_string(out, meta->report_id);
    sb_append(out, ",\n  \"policies\": [");
    for (size_t i = 0; i < n; i++) {
        const struct tlsrpt_policy *p = &policies[i];
        sb_append(out, i ? ",\n    {\n" : "\n    {\n");
        sb_append(out, "      \"policy\": {\n        \"policy-type\": ");
        tlsrpt_json_string(out, tlsrpt_policy_type_name(p->type));
        if (p->type != TLSRPT_POLICY_NONE) {
            sb_append(out, ",\n        \"policy-string\": ");
            json_lines(out, p->policy_string);
        }
        sb_append(out, ",\n        \"policy-domain\": ");
        tlsrpt_json_string(out, p->domain);
        if (p->type == TLSRPT_POLICY_STS && p->mx_hosts) {
            sb_append(out, ",\n        \"mx-host\": ");
            json_lines(out, p->mx_hosts);
        }
        sb_printf(out,
                  "\n      },\n      \"summary\": {\n        \"total-successful-session-count\": "
                  "%lld,\n        \"total-failure-session-count\": %lld\n      }",
                  (long long)p->successes, (long long)p->failures);
        if (p->ndetails > 0) {
            sb_append(out, ",\n      \"failure-details\": [");
            for (size_t j = 0; j < p->ndetails; j++) {
                const struct tlsrpt_failure *f = &p->details[j];
                sb_append(out, j ? ",\n        {\n" : "\n        {\n");
                sb_append(out, "          \"result-type\": ");
                tlsrpt_json_string(out, tlsrpt_result_name(f->result));
                if (f->sending_ip[0]) {
                    sb_append(out, ",\n          \"sending-mta-ip\": ");
                    tlsrpt_json_string(out, f->sending_ip);
                }
                if (f->receiving_mx[0]) {
                    sb_append(out, ",\n          \"receiving-mx-hostname\": ");
                    tlsrpt_json_string(out, f->receiving_mx);
                }
                if (f->receiving_ip[0]) {
                    sb_append(out, ",\n          \"receiving-ip\": ");
                    tlsrpt_json_string(out, f->receiving_ip);
                }
                sb_printf(out, ",\n          \"failed-session-count\": %lld", (long long)f->count);
                if (f->detail[0]) {
                    sb_append(out, ",\n          \"failure-reason-code\": ");
                    tlsrpt_json_string(out, f->detail);
                }
                sb_append(out, "\n        }");
            }
            sb_append(out, "\n      ]");
        }
        sb_append(out, "\n    }");
    }
    sb_append(out, n ? "\n  ]\n}\n" : "]\n}\n");
}

bool tlsrpt_parse_day(const char *day, int64_t *start)
{
    int y, m, d;
    char extra;
    if (strlen(day) != 10 || sscanf(day, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3)
        return false;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    time_t t = timegm(&tm);
    struct tm back;
    gmtime_r(&t, &back);
    if (back.tm_mday != d || back.tm_mon != m - 1) /* 2026-02-30 */
        return false;
    *start = (int64_t)t;
    return true;
}

void tlsrpt_format_day(int64_t t, char out[11])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}
