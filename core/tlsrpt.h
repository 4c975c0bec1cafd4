/* tlsrpt.h - SMTP TLS Reporting (RFC 8460): the _smtp._tls record, the result types, and the JSON
 * report. Pure: the counts come from the store (db_tlsrpt.h), the record from DNS.
 *
 * A report covers one policy domain and one UTC day: one entry per policy that applied (sts,
 * tlsa, or no-policy-found), each with its successful and failed session counts and the failure
 * details grouped by result type and hosts (RFC 8460 §4.3-4.4). */
#ifndef STSGATE_TLSRPT_H
#define STSGATE_TLSRPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* Session outcomes: success, or the RFC 8460 §4.3 result types. */
enum tlsrpt_result {
    TLSRPT_SUCCESS = 0,
    TLSRPT_STARTTLS_NOT_SUPPORTED,
    TLSRPT_CERT_HOST_MISMATCH,
    TLSRPT_CERT_EXPIRED,
    TLSRPT_CERT_NOT_TRUSTED,
    TLSRPT_VALIDATION_FAILURE,
    TLSRPT_TLSA_INVALID,
    TLSRPT_DNSSEC_INVALID,
    TLSRPT_DANE_REQUIRED,
    TLSRPT_STS_POLICY_FETCH_ERROR,
    TLSRPT_STS_POLICY_INVALID,
    TLSRPT_STS_WEBPKI_INVALID,
    TLSRPT_RESULT_COUNT,
};

enum tlsrpt_policy_type { TLSRPT_POLICY_STS, TLSRPT_POLICY_TLSA, TLSRPT_POLICY_NONE };

/* "starttls-not-supported", ...; "success" for TLSRPT_SUCCESS. */
const char *tlsrpt_result_name(enum tlsrpt_result r);
/* TLSRPT_RESULT_COUNT when name is not a result type. */
enum tlsrpt_result tlsrpt_result_from_name(const char *name);
/* "sts", "tlsa", "no-policy-found". */
const char *tlsrpt_policy_type_name(enum tlsrpt_policy_type t);
bool tlsrpt_policy_type_from_name(const char *name, enum tlsrpt_policy_type *out);

#define TLSRPT_MAX_RUA 8
#define TLSRPT_URI_MAX 512

/* The _smtp._tls TXT record (RFC 8460 §3): "v=TLSRPTv1; rua=<uri>[,<uri>]...". */
struct tlsrpt_record {
    char rua[TLSRPT_MAX_RUA][TLSRPT_URI_MAX];
    size_t nrua;
};

/* Parses one joined TXT record. Only mailto: and https: URIs are kept (others are ignored, as
 * the RFC allows); a record with none usable is invalid. Returns false with reason. */
bool tlsrpt_record_parse(const char *txt, size_t len, struct tlsrpt_record *out, char *reason,
                         size_t reasonlen);

/* One failure-details entry. */
struct tlsrpt_failure {
    enum tlsrpt_result result;
    char sending_ip[46];
    char receiving_mx[254]; /* the MX host name */
    char receiving_ip[46];
    char detail[256]; /* additional-information; "" for none */
    int64_t count;
};

/* One policy of the report. */
struct tlsrpt_policy {
    enum tlsrpt_policy_type type;
    char domain[254];
    char *policy_string; /* the policy's lines joined by '\n' (sts: the policy text; tlsa: the
                            records); NULL for no-policy-found */
    char *mx_hosts;      /* sts: the policy's mx patterns joined by '\n'; may be NULL */
    int64_t successes;
    int64_t failures;
    struct tlsrpt_failure *details;
    size_t ndetails;
};

struct tlsrpt_meta {
    const char *organization;
    const char *contact;
    const char *report_id;
    int64_t start; /* seconds since the epoch, UTC day start */
    int64_t end;   /* start + 86400 */
};

/* Appends the report as RFC 8460 §4.4 JSON. */
void tlsrpt_report_json(const struct tlsrpt_meta *meta, const struct tlsrpt_policy *policies,
                        size_t n, struct strbuf *out);
/* Appends s as a JSON string (quotes included). */
void tlsrpt_json_string(struct strbuf *out, const char *s);
/* "2026-11-22" -> the UTC midnight starting that day; false for anything else. */
bool tlsrpt_parse_day(const char *day, int64_t *start);
/* The UTC day of t as "YYYY-MM-DD" (11 bytes). */
void tlsrpt_format_day(int64_t t, char out[11]);

#endif
