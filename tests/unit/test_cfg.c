/* test_cfg.c - the configuration model: domain and name validators, number parsing, the kv unit
 * text, IMPORT/EXPORT of the destination table, inheritance, and snapshot lookups. */
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "cfg_ini.h"
#include "cfg_snapshot.h"
#include "kv.h"
#include "t.h"

struct domain_case {
    const char *in;
    const char *want; /* NULL: invalid */
};

static const struct domain_case domains[] = {
    {"example.com", "example.com"},
    {"Example.COM", "example.com"},
    {"example.com.", "example.com"},
    {".example.com", ".example.com"},
    {".Sub.Example.com", ".sub.example.com"},
    {"localhost", "localhost"},
    {"a-b.c-d.example", "a-b.c-d.example"},
    {"xn--bcher-kva.example", "xn--bcher-kva.example"},
    {"[192.0.2.1]", "[192.0.2.1]"},
    {"[ipv6:2001:db8::1]", "[IPv6:2001:db8::1]"},
    {"[IPv6:::1]", "[IPv6:::1]"},
    {"", NULL},
    {".", NULL},
    {"..example.com", NULL},
    {"example..com", NULL},
    {"-bad.example", NULL},
    {"bad-.example", NULL},
    {"with space.example", NULL},
    {"under_score.example", NULL},
    {"192.0.2.1", NULL},
    {"[192.0.2.300]", NULL},
    {"[2001:db8::1]", NULL},
    {"[]", NULL},
    {"[192.0.2.1", NULL},
    {"bücher.example", NULL},
    {"*.example.com", NULL},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", NULL},
};

static void test_domains(void)
{
    char out[CFG_DOMAIN_MAX + 3];
    for (size_t i = 0; i < sizeof domains / sizeof domains[0]; i++) {
        bool ok = cfg_domain_normalize(domains[i].in, out, sizeof out);
        if (domains[i].want) {
            T_CHECK(ok);
            if (ok)
                T_EQ_STR(out, domains[i].want);
        } else {
            if (ok)
                fprintf(stderr, "accepted: \"%s\"\n", domains[i].in);
            T_CHECK(!ok);
        }
    }
    /* 253 characters is the limit of a name. */
    char name[300];
    memset(name, 0, sizeof name);
    for (int i = 0; i < 4; i++)
        strcat(name, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
    strcat(name, "a");
    T_EQ_INT(strlen(name), 253);
    T_CHECK(cfg_domain_normalize(name, out, sizeof out));
    strcat(name, "a");
    T_CHECK(!cfg_domain_normalize(name, out, sizeof out));
}

static void test_names_and_numbers(void)
{
    T_CHECK(cfg_name_valid("slow-retry"));
    T_CHECK(cfg_name_valid("Profile_2"));
    T_CHECK(!cfg_name_valid(""));
    T_CHECK(!cfg_name_valid("has space"));
    T_CHECK(!cfg_name_valid("dot.ted"));
    T_CHECK(cfg_hostname_valid("mail.example.com"));
    T_CHECK(!cfg_hostname_valid(".example.com"));
    long v = -1;
    T_CHECK(cfg_parse_long("0", 0, 10, &v) && v == 0);
    T_CHECK(cfg_parse_long("1000000000", 0, 1000000000L, &v) && v == 1000000000L);
    T_CHECK(!cfg_parse_long("1000000001", 0, 1000000000L, &v));
    T_CHECK(!cfg_parse_long("", 0, 10, &v));
    T_CHECK(!cfg_parse_long("-1", -5, 10, &v));
    T_CHECK(!cfg_parse_long("+1", 0, 10, &v));
    T_CHECK(!cfg_parse_long("1e3", 0, 10000, &v));
    T_CHECK(!cfg_parse_long("99999999999999999999999", 0, 10, &v));
}

static int collect(void *arg, const char *key, const char *value)
{
    struct strbuf *sb = arg;
    sb_printf(sb, "[%s|%s]", key, value);
    return 0;
}

static void test_kv(void)
{
    struct strbuf sb = STRBUF_INIT, got = STRBUF_INIT;
    kv_put(&sb, "certificate", "-----BEGIN\nline\\two\n-----END\n");
    kv_put_long(&sb, "n", -42);
    kv_put(&sb, "empty", "");
    T_EQ_STR(sb_str(&sb), "certificate=-----BEGIN\\nline\\\\two\\n-----END\\n\nn=-42\nempty=\n");
    kv_parse(sb_str(&sb), collect, &got);
    T_EQ_STR(sb_str(&got), "[certificate|-----BEGIN\nline\\two\n-----END\n][n|-42][empty|]");
    sb_free(&sb);
    sb_free(&got);
}

static void test_inheritance(void)
{
    struct cfg_dest def, e, eff;
    cfg_dest_factory(&def);
    cfg_dest_inherit_all(&e);
    cfg_dest_effective(&e, &def, &eff);
    T_EQ_INT(eff.concurrency, 500);
    T_EQ_INT(eff.tls, CFG_TLS_PREFERRED);
    T_EQ_STR(eff.bounce_profile, "Default");
    /* TLS No (here inherited) turns DANE and MTA STS off. */
    def.tls = CFG_TLS_NO;
    e.dane = CFG_DANE_MANDATORY;
    e.sts = CFG_STS_ON;
    cfg_dest_effective(&e, &def, &eff);
    T_EQ_INT(eff.dane, CFG_DANE_NO);
    T_EQ_INT(eff.sts, CFG_STS_OFF);
    /* Own values win. */
    e.tls = CFG_TLS_REQUIRED_VERIFY;
    e.rcpt_limit = 10;
    e.rcpt_minutes = 5;
    cfg_dest_effective(&e, &def, &eff);
    T_EQ_INT(eff.tls, CFG_TLS_REQUIRED_VERIFY);
    T_EQ_INT(eff.dane, CFG_DANE_MANDATORY);
    T_EQ_INT(eff.rcpt_limit, 10);
    T_EQ_INT(eff.rcpt_minutes, 5);

    /* The unit text keeps exactly the own values. */
    struct strbuf sb = STRBUF_INIT;
    cfg_dest_write(&e, false, false, &sb);
    struct cfg_dest back;
    T_CHECK(cfg_dest_decode(sb_str(&sb), false, &back));
    T_CHECK(memcmp(&back, &e, sizeof e) == 0);
    sb_free(&sb);
}

static void test_import(void)
{
    struct cfg_dest_table t;
    struct strbuf err = STRBUF_INIT;
    const char *good = "# c\n[DEFAULT]\n table_tls = required \nmta_sts=on\n\n[Two.Example]\n"
                       "dane_option = opportunistic\n[one.example]\n";
    T_EQ_INT(cfg_dest_import(good, NULL, NULL, &t, &err), 0);
    T_EQ_INT(t.def.tls, CFG_TLS_REQUIRED);
    T_EQ_INT(t.def.sts, CFG_STS_ON);
    T_EQ_INT(t.def.concurrency, 500);
    T_EQ_INT(t.n, 2);
    T_EQ_STR(t.v[0].domain, "two.example");
    T_EQ_INT(t.v[0].d.dane, CFG_DANE_OPPORTUNISTIC);
    T_EQ_INT(t.v[0].d.tls, CFG_TLS_DEFAULT);
    struct strbuf out = STRBUF_INIT;
    cfg_dest_export(&t, &out);
    struct cfg_dest_table t2;
    T_EQ_INT(cfg_dest_import(sb_str(&out), NULL, NULL, &t2, &err), 0);
    T_EQ_INT(t2.n, 2);
    T_CHECK(memcmp(&t.def, &t2.def, sizeof t.def) == 0);
    T_CHECK(memcmp(&t.v[0].d, &t2.v[0].d, sizeof t.v[0].d) == 0);
    cfg_dest_table_free(&t);
    cfg_dest_table_free(&t2);
    sb_free(&out);

    const char *bad = "key = before\n[DEFAULT]\nmax_host_concurrency = 0\n[x.example]\n"
                      "table_tls = off\ndane_option = mandatory\n[DEFAULT]\n";
    T_EQ_INT(cfg_dest_import(bad, NULL, NULL, &t, &err), 4);
    T_EQ_STR(sb_str(&err), "Line 1: A setting must follow a [section] line.\n"
                           "Line 3: The value must be a number from 1 to 1000.\n"
                           "Line 4: DANE and MTA STS need TLS: table_tls is off.\n"
                           "Line 7: The [DEFAULT] section appears twice.\n");
    T_CHECK(t.v == NULL && t.n == 0);
    sb_free(&err);
}

static void test_snapshot(void)
{
    struct cfg_unit_ref units[] = {
        {CFG_KIND_DEST, CFG_UNIT_DEFAULT, "table_tls=required\nmax_host_concurrency=100\n"},
        {CFG_KIND_DEST, "example.com", "mta_sts=on\n"},
        {CFG_KIND_DEST, ".example.com", "table_tls=on\n"},
        {CFG_KIND_DEST, ".b.example.com", "table_tls=require_verify\n"},
        {CFG_KIND_DEST, CFG_UNIT_SETUP, "certificate=Demo\nsts_proxy=http://p:1\n"},
        {CFG_KIND_HOSTNAME, CFG_UNIT_HOSTNAME, "hostname=mail.example.com\n"},
        {CFG_KIND_ROUTE, "routed.example", "hosts=relay\n"},
    };
    struct cfg_snapshot *s = cfg_snapshot_build(7, units, sizeof units / sizeof units[0]);
    struct cfg_dest d;
    const char *entry;
    T_EQ_INT(cfg_snapshot_version(s), 7);
    T_EQ_STR(cfg_snapshot_hostname(s), "mail.example.com");
    T_EQ_STR(cfg_snapshot_setup(s)->sts_proxy, "http://p:1");
    cfg_snapshot_dest(s, "example.com", &d, &entry);
    T_EQ_STR(entry, "example.com");
    T_EQ_INT(d.sts, CFG_STS_ON);
    T_EQ_INT(d.tls, CFG_TLS_REQUIRED);
    T_EQ_INT(d.concurrency, 100);
    cfg_snapshot_dest(s, "a.example.com", &d, &entry);
    T_EQ_STR(entry, ".example.com");
    T_EQ_INT(d.tls, CFG_TLS_PREFERRED);
    cfg_snapshot_dest(s, "x.b.example.com", &d, &entry);
    T_EQ_STR(entry, ".b.example.com");
    T_EQ_INT(d.tls, CFG_TLS_REQUIRED_VERIFY);
    cfg_snapshot_dest(s, "b.example.com", &d, &entry);
    T_EQ_STR(entry, ".example.com");
    cfg_snapshot_dest(s, "other.example", &d, &entry);
    T_EQ_STR(entry, "DEFAULT");
    T_EQ_INT(d.tls, CFG_TLS_REQUIRED);
    T_EQ_STR(cfg_snapshot_unit(s, CFG_KIND_ROUTE, "routed.example"), "hosts=relay\n");
    T_CHECK(cfg_snapshot_unit(s, CFG_KIND_ROUTE, "other") == NULL);
    struct cfg_snapshot *r = cfg_snapshot_ref(s);
    cfg_snapshot_unref(s);
    T_EQ_INT(cfg_snapshot_version(r), 7);
    cfg_snapshot_unref(r);
}

int main(void)
{
    test_domains();
    test_names_and_numbers();
    test_kv();
    test_inheritance();
    test_import();
    test_snapshot();
    return t_done();
}
