/* db_tlsrpt.h - TLS reporting counters (RFC 8460) in <data>/tlsrpt.db.
 *
 * One row per (UTC day, policy domain, policy, result, hosts) with a session count; success rows
 * have no hosts. Adding is an upsert, so the agent may count each session as it ends. The report
 * of one domain and day is read back grouped by policy (tlsrpt.h structures); which reports were
 * sent is remembered so a restart never sends one twice. */
#ifndef STSGATE_DB_TLSRPT_H
#define STSGATE_DB_TLSRPT_H

#include <stddef.h>
#include <stdint.h>

#include "db_cfg.h"
#include "tlsrpt.h"

struct db_tlsrpt;

struct db_tlsrpt_session {
    const char *day;    /* "YYYY-MM-DD", UTC */
    const char *domain; /* the policy domain (the recipient domain) */
    enum tlsrpt_policy_type type;
    const char *policy_string; /* lines joined by '\n'; "" for no-policy-found */
    const char *mx_hosts;      /* sts: the policy's mx patterns joined by '\n'; else "" */
    enum tlsrpt_result result;
    const char *sending_ip; /* failures only; may be NULL */
    const char *receiving_mx;
    const char *receiving_ip;
    const char *detail;
    int64_t count;
};

enum db_status db_tlsrpt_open(const char *datadir, struct db_tlsrpt **out, char *err,
                              size_t errlen);
void db_tlsrpt_close(struct db_tlsrpt *t);

enum db_status db_tlsrpt_add(struct db_tlsrpt *t, const struct db_tlsrpt_session *s, char *err,
                             size_t errlen);
/* The policies of one domain's day, for tlsrpt_report_json(); DB_NOTFOUND when nothing was
 * counted. Free with db_tlsrpt_policies_free(). */
enum db_status db_tlsrpt_report(struct db_tlsrpt *t, const char *day, const char *domain,
                                struct tlsrpt_policy **out, size_t *n, char *err, size_t errlen);
void db_tlsrpt_policies_free(struct tlsrpt_policy *p, size_t n);
/* Calls fn for each domain with counts on day and no report sent yet, in name order. */
enum db_status db_tlsrpt_unsent(struct db_tlsrpt *t, const char *day,
                                void (*fn)(void *arg, const char *domain), void *arg, char *err,
                                size_t errlen);
enum db_status db_tlsrpt_mark_sent(struct db_tlsrpt *t, const char *day, const char *domain,
                                   char *err, size_t errlen);
/* Forgets every day before day. */
enum db_status db_tlsrpt_prune(struct db_tlsrpt *t, const char *day, char *err, size_t errlen);

#endif
