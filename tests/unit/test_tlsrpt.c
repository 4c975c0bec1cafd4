/* test_tlsrpt.c - RFC 8460: the _smtp._tls record grammar, the JSON report, day parsing, and the
 * counters store (grouping by policy, sent reports remembered, pruning). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_tlsrpt.h"
#include "t.h"
#include "tlsrpt.h"

struct rec_case {
    const char *txt;
    int nrua; /* -1: invalid */
    const char *first;
};

static const struct rec_case recs[] = {
    {"v=TLSRPTv1; rua=mailto:tlsrpt@example.com", 1, "mailto:tlsrpt@example.com"},
    {"v=TLSRPTv1;rua=https://r.example.com/tlsrpt", 1, "https://r.example.com/tlsrpt"},
    {"v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.com/x;", 2, "mailto:a@example.com"},
    {"v=TLSRPTv1 ; rua = mailto:a@example.com , mailto:b@example.com", -1, NULL},
    {"v=TLSRPTv1; rua=mailto:a@example.com , mailto:b@example.com", 2, "mailto:a@example.com"},
    {"v=TLSRPTv1; ext=1; rua=mailto:a@example.com", 1, "mailto:a@example.com"},
    {"v=TLSRPTv1; rua=ftp://x.example.com/, mailto:a@example.com", 1, "mailto:a@example.com"},
    {"v=TLSRPTv1; rua=ftp://x.example.com/", -1, NULL},
    {"v=TLSRPTv1", -1, NULL},
    {"v=TLSRPTv2; rua=mailto:a@example.com", -1, NULL},
    {"v=STSv1; id=1", -1, NULL},
    {"rua=mailto:a@example.com; v=TLSRPTv1", -1, NULL},
    {"v=TLSRPTv1; rua", -1, NULL},
    {"v=TLSRPTv1 rua=mailto:a@example.com", -1, NULL},
    {"", -1, NULL},
};

static void test_records(void)
{
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        struct tlsrpt_record r;
        char reason[128];
        bool ok = tlsrpt_record_parse(recs[i].txt, strlen(recs[i].txt), &r, reason, sizeof reason);
        if (recs[i].nrua < 0) {
            if (ok)
                fprintf(stderr, "accepted: %s\n", recs[i].txt);
            T_CHECK(!ok);
        } else {
            if (!ok)
                fprintf(stderr, "refused: %s (%s)\n", recs[i].txt, reason);
            T_CHECK(ok);
            T_EQ_INT(r.nrua, recs[i].nrua);
            if (ok && r.nrua > 0)
                T_EQ_STR(r.rua[0], recs[i].first);
        }
    }
}

static void test_names_and_days(void)
{
    T_EQ_STR(tlsrpt_result_name(TLSRPT_STS_POLICY_FETCH_ERROR), "sts-policy-fetch-error");
    T_EQ_STR(tlsrpt_result_name(TLSRPT_CERT_HOST_MISMATCH), "certificate-host-mismatch");
    T_EQ_STR(tlsrpt_result_name(TLSRPT_DANE_REQUIRED), "dane-required");
    T_EQ_STR(tlsrpt_result_name(TLSRPT_STARTTLS_NOT_SUPPORTED), "starttls-not-supported");
    T_EQ_INT(tlsrpt_result_from_name("tlsa-invalid"), TLSRPT_TLSA_INVALID);
    T_EQ_INT(tlsrpt_result_from_name("nonsense"), TLSRPT_RESULT_COUNT);
    int64_t t;
    T_CHECK(tlsrpt_parse_day("2026-11-22", &t));
    T_EQ_INT(t, 1795305600);
    char day[11];
    tlsrpt_format_day(t + 86399, day);
    T_EQ_STR(day, "2026-11-22");
    T_CHECK(!tlsrpt_parse_day("2026-02-30", &t));
    T_CHECK(!tlsrpt_parse_day("2026-11-22x", &t));
    T_CHECK(!tlsrpt_parse_day("22.11.2026", &t));
    T_CHECK(!tlsrpt_parse_day("2026-13-01", &t));
}

static void test_json(void)
{
    struct tlsrpt_failure f = {.result = TLSRPT_CERT_EXPIRED,
                               .sending_ip = "192.0.2.1",
                               .receiving_mx = "mx.example.com",
                               .receiving_ip = "192.0.2.9",
                               .detail = "",
                               .count = 3};
    struct tlsrpt_policy p = {.type = TLSRPT_POLICY_STS,
                              .domain = "example.com",
                              .policy_string = (char *)"version: STSv1\nmode: enforce\nmx: "
                                                       "mx.example.com\nmax_age: 86400",
                              .mx_hosts = (char *)"mx.example.com",
                              .successes = 10,
                              .failures = 3,
                              .details = &f,
                              .ndetails = 1};
    struct tlsrpt_meta meta = {.organization = "Example \"Corp\"",
                               .contact = "postmaster@example.org",
                               .report_id = "2026-11-22_example.com@mail.example.org",
                               .start = 1795305600,
                               .end = 1795305600 + 86400};
    struct strbuf sb = STRBUF_INIT;
    tlsrpt_report_json(&meta, &p, 1, &sb);
    T_EQ_STR(sb_str(&sb), "{\n"
                          "  \"organization-name\": \"Example \\\"Corp\\\"\",\n"
                          "  \"date-range\": {\n"
                          "    \"start-datetime\": \"2026-11-22T00:00:00Z\",\n"
                          "    \"end-datetime\": \"2026-11-23T00:00:00Z\"\n"
                          "  },\n"
                          "  \"contact-info\": \"postmaster@example.org\",\n"
                          "  \"report-id\": \"2026-11-22_example.com@mail.example.org\",\n"
                          "  \"policies\": [\n"
                          "    {\n"
                          "      \"policy\": {\n"
                          "        \"policy-type\": \"sts\",\n"
                          "        \"policy-string\": [\"version: STSv1\", \"mode: enforce\", "
                          "\"mx: mx.example.com\", \"max_age: 86400\"],\n"
                          "        \"policy-domain\": \"example.com\",\n"
                          "        \"mx-host\": [\"mx.example.com\"]\n"
                          "      },\n"
                          "      \"summary\": {\n"
                          "        \"total-successful-session-count\": 10,\n"
                          "        \"total-failure-session-count\": 3\n"
                          "      },\n"
                          "      \"failure-details\": [\n"
                          "        {\n"
                          "          \"result-type\": \"certificate-expired\",\n"
                          "          \"sending-mta-ip\": \"192.0.2.1\",\n"
                          "          \"receiving-mx-hostname\": \"mx.example.com\",\n"
                          "          \"receiving-ip\": \"192.0.2.9\",\n"
                          "          \"failed-session-count\": 3\n"
                          "        }\n"
                          "      ]\n"
                          "    }\n"
                          "  ]\n"
                          "}\n");
    sb_reset(&sb);
    tlsrpt_json_string(&sb, "a\tb\x01");
    T_EQ_STR(sb_str(&sb), "\"a\\tb\\u0001\"");
    sb_free(&sb);
}

static void got_domain(void *arg, const char *domain)
{
    struct strbuf *sb = arg;
    sb_printf(sb, "%s;", domain);
}

static void test_store(void)
{
    char dir[] = "/tmp/stsgate-tlsrpt-XXXXXX";
    T_CHECK(mkdtemp(dir) != NULL);
    char err[256];
    struct db_tlsrpt *t;
    T_EQ_INT(db_tlsrpt_open(dir, &t, err, sizeof err), DB_OK);
    struct db_tlsrpt_session s = {.day = "2026-11-22",
                                  .domain = "example.com",
                                  .type = TLSRPT_POLICY_STS,
                                  .policy_string = "version: STSv1\nmode: enforce",
                                  .mx_hosts = "mx.example.com",
                                  .result = TLSRPT_SUCCESS,
                                  .count = 1};
    for (int i = 0; i < 5; i++)
        T_EQ_INT(db_tlsrpt_add(t, &s, err, sizeof err), DB_OK);
    s.result = TLSRPT_CERT_HOST_MISMATCH;
    s.receiving_mx = "mx.example.com";
    s.receiving_ip = "192.0.2.9";
    T_EQ_INT(db_tlsrpt_add(t, &s, err, sizeof err), DB_OK);
    T_EQ_INT(db_tlsrpt_add(t, &s, err, sizeof err), DB_OK);
    struct db_tlsrpt_session none = {.day = "2026-11-22",
                                     .domain = "example.com",
                                     .type = TLSRPT_POLICY_NONE,
                                     .result = TLSRPT_SUCCESS,
                                     .count = 2};
    T_EQ_INT(db_tlsrpt_add(t, &none, err, sizeof err), DB_OK);
    struct db_tlsrpt_session other = none;
    other.domain = "other.example";
    other.day = "2026-11-21";
    T_EQ_INT(db_tlsrpt_add(t, &other, err, sizeof err), DB_OK);

    struct tlsrpt_policy *p;
    size_t n;
    T_EQ_INT(db_tlsrpt_report(t, "2026-11-22", "example.com", &p, &n, err, sizeof err), DB_OK);
    T_EQ_INT(n, 2);
    size_t sts = p[0].type == TLSRPT_POLICY_STS ? 0 : 1;
    T_EQ_INT(p[sts].successes, 5);
    T_EQ_INT(p[sts].failures, 2);
    T_EQ_INT(p[sts].ndetails, 1);
    T_EQ_INT(p[sts].details[0].count, 2);
    T_EQ_STR(p[sts].details[0].receiving_ip, "192.0.2.9");
    T_EQ_INT(p[1 - sts].successes, 2);
    T_CHECK(p[1 - sts].policy_string == NULL);
    db_tlsrpt_policies_free(p, n);
    T_EQ_INT(db_tlsrpt_report(t, "2026-11-20", "example.com", &p, &n, err, sizeof err),
             DB_NOTFOUND);

    struct strbuf got = STRBUF_INIT;
    T_EQ_INT(db_tlsrpt_unsent(t, "2026-11-22", got_domain, &got, err, sizeof err), DB_OK);
    T_EQ_STR(sb_str(&got), "example.com;");
    T_EQ_INT(db_tlsrpt_mark_sent(t, "2026-11-22", "example.com", err, sizeof err), DB_OK);
    sb_reset(&got);
    T_EQ_INT(db_tlsrpt_unsent(t, "2026-11-22", got_domain, &got, err, sizeof err), DB_OK);
    T_EQ_STR(sb_str(&got), "");
    T_EQ_INT(db_tlsrpt_prune(t, "2026-11-22", err, sizeof err), DB_OK);
    T_EQ_INT(db_tlsrpt_report(t, "2026-11-21", "other.example", &p, &n, err, sizeof err),
             DB_NOTFOUND);
    sb_free(&got);
    db_tlsrpt_close(t);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    T_EQ_INT(system(cmd), 0);
}

int main(void)
{
    test_records();
    test_names_and_days();
    test_json();
    test_store();
    return t_done();
}
