/* test_cfg_route.c - SMTP route host lists (every host form, ports, priorities, bad input), the
 * unit body, delivery order, the route file and route matching. */
#include <stdlib.h>
#include <string.h>

#include "cfg_route.h"
#include "t.h"

/* Parses text and returns its formatted form (", "), or the error line. */
static const char *roundtrip(const char *text)
{
    static char out[2048];
    struct cfg_route_hosts h;
    char err[CFG_ERR_MAX];
    if (!cfg_route_hosts_parse(text, &h, err)) {
        snprintf(out, sizeof out, "ERR %s", err);
        return out;
    }
    struct strbuf sb = STRBUF_INIT;
    cfg_route_hosts_format(&h, ", ", &sb);
    snprintf(out, sizeof out, "%s", sb_str(&sb));
    sb_free(&sb);
    return out;
}

static void test_forms(void)
{
    struct cfg_route_hosts h;
    char err[CFG_ERR_MAX];

    T_CHECK(cfg_route_hosts_parse("relay.example", &h, err));
    T_EQ_INT(h.n, 1);
    T_EQ_STR(h.v[0].name, "relay.example");
    T_CHECK(!h.v[0].address);
    T_EQ_INT(h.v[0].port, 0);
    T_EQ_INT(cfg_route_host_port(&h.v[0]), 25);
    T_EQ_INT(h.v[0].pri, -1);
    T_EQ_INT(cfg_route_host_pri(&h.v[0]), 0);

    T_CHECK(cfg_route_hosts_parse("Relay.EXAMPLE.:2525/pri=10", &h, err));
    T_EQ_STR(h.v[0].name, "relay.example");
    T_EQ_INT(h.v[0].port, 2525);
    T_EQ_INT(h.v[0].pri, 10);

    T_CHECK(cfg_route_hosts_parse("[192.0.2.7]", &h, err));
    T_EQ_STR(h.v[0].name, "192.0.2.7");
    T_CHECK(h.v[0].address);
    T_CHECK(h.v[0].bracketed);

    T_CHECK(cfg_route_hosts_parse("[192.0.2.7]:587/pri=65535", &h, err));
    T_EQ_INT(h.v[0].port, 587);
    T_EQ_INT(h.v[0].pri, 65535);

    T_CHECK(cfg_route_hosts_parse("[2001:DB8:0::1]:2525", &h, err));
    T_EQ_STR(h.v[0].name, "2001:db8::1");
    T_CHECK(h.v[0].address);
    T_EQ_INT(h.v[0].port, 2525);

    T_CHECK(cfg_route_hosts_parse("[IPv6:2001:db8::1]", &h, err));
    T_EQ_STR(h.v[0].name, "2001:db8::1");
    T_CHECK(h.v[0].ipv6_tag);

    T_CHECK(cfg_route_hosts_parse("192.0.2.8:26", &h, err));
    T_EQ_STR(h.v[0].name, "192.0.2.8");
    T_CHECK(h.v[0].address);
    T_CHECK(!h.v[0].bracketed);
    T_EQ_INT(h.v[0].port, 26);

    T_CHECK(cfg_route_hosts_parse("a.example/PRI=0", &h, err));
    T_EQ_INT(h.v[0].pri, 0);
    T_EQ_INT(h.v[0].port, 0);

    /* Lists, as entered, blanks around commas ignored. */
    T_EQ_STR(roundtrip("relay.example:2525/pri=10,[192.0.2.7]"),
             "relay.example:2525/pri=10, [192.0.2.7]");
    T_EQ_STR(roundtrip("  a.example ,  b.example:25 , [IPv6:2001:db8::2]/pri=3 "),
             "a.example, b.example:25, [IPv6:2001:db8::2]/pri=3");
    T_EQ_STR(roundtrip("[2001:0db8::0001]"), "[2001:db8::1]");
}

static void test_bad(void)
{
    static const char *const invalid[] = {
        "",
        " ",
        "a.example,",
        ",a.example",
        "a.example,,b.example",
        "bad host.example",
        "-bad.example",
        "a.example/pr=1",
        "a.example/pri",
        "[192.0.2.7",
        "192.0.2.7]",
        "[not.an.address]",
        "[192.0.2.300]",
        "[192.0.2.7]x",
        "[192.0.2.7]25",
        "2001:db8::1",
        "a..example",
        ":25",
        "[]",
        "[IPv6:192.0.2.1]",
        "a.example:25:26",
        "1.2.3",
    };
    static const char *const bad_port[] = {
        "a.example:0",       "a.example:65536", "a.example:",    "a.example:x",
        "[192.0.2.7]:99999", "a.example:-1",    "a.example:+25",
    };
    static const char *const bad_pri[] = {
        "a.example/pri=65536", "a.example/pri=-1",         "a.example/pri=",
        "a.example/pri=x",     "a.example:25/pri=1/pri=2",
    };
    char want[64];
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        T_EQ_STR(roundtrip(invalid[i]), "ERR That value is not valid.");
    for (size_t i = 0; i < sizeof bad_port / sizeof bad_port[0]; i++)
        T_EQ_STR(roundtrip(bad_port[i]), "ERR The value must be a number from 1 to 65535.");
    snprintf(want, sizeof want, "ERR The value must be a number from 0 to 65535.");
    for (size_t i = 0; i < sizeof bad_pri / sizeof bad_pri[0]; i++)
        T_EQ_STR(roundtrip(bad_pri[i]), want);

    /* At most CFG_ROUTE_HOSTS_MAX hosts. */
    struct strbuf sb = STRBUF_INIT;
    for (int i = 0; i < CFG_ROUTE_HOSTS_MAX; i++)
        sb_printf(&sb, "%sh%d.example", i ? "," : "", i);
    struct cfg_route_hosts h;
    char err[CFG_ERR_MAX];
    T_CHECK(cfg_route_hosts_parse(sb_str(&sb), &h, err));
    T_EQ_INT(h.n, CFG_ROUTE_HOSTS_MAX);
    sb_append(&sb, ",one-more.example");
    T_CHECK(!cfg_route_hosts_parse(sb_str(&sb), &h, err));
    T_EQ_INT(h.n, 0);

    /* At most CFG_ROUTE_TEXT_MAX characters once formatted: 9 names of 100 characters fit
     * (9 * 100 + 8 * 2 = 916), 10 do not (1018). */
    char label[64];
    memset(label, 'a', 49);
    label[49] = '\0';
    sb_reset(&sb);
    for (int i = 0; i < 9; i++)
        sb_printf(&sb, "%s%d%s.%s", i ? "," : "", i, label, label);
    T_CHECK(cfg_route_hosts_parse(sb_str(&sb), &h, err));
    T_EQ_INT(h.n, 9);
    sb_printf(&sb, ",9%s.%s", label, label);
    T_CHECK(!cfg_route_hosts_parse(sb_str(&sb), &h, err));
    T_EQ_STR(err, "That value is not valid.");
    sb_free(&sb);
}

static void test_order_and_unit(void)
{
    struct cfg_route_hosts h, back;
    char err[CFG_ERR_MAX];
    int order[CFG_ROUTE_HOSTS_MAX];
    T_CHECK(cfg_route_hosts_parse("c.example/pri=20, a.example/pri=10, d.example, "
                                  "b.example/pri=10, e.example/pri=0",
                                  &h, err));
    cfg_route_hosts_order(&h, order);
    /* 0 first (d without a priority counts as 0, entered before e), then 10 in entry order. */
    T_EQ_STR(h.v[order[0]].name, "d.example");
    T_EQ_STR(h.v[order[1]].name, "e.example");
    T_EQ_STR(h.v[order[2]].name, "a.example");
    T_EQ_STR(h.v[order[3]].name, "b.example");
    T_EQ_STR(h.v[order[4]].name, "c.example");

    struct strbuf sb = STRBUF_INIT;
    cfg_route_encode(&h, &sb);
    T_EQ_STR(sb_str(&sb), "hosts=c.example/pri=20, a.example/pri=10, d.example, "
                          "b.example/pri=10, e.example/pri=0\n");
    T_CHECK(cfg_route_decode(sb_str(&sb), &back));
    T_EQ_INT(back.n, 5);
    T_EQ_STR(back.v[4].name, "e.example");
    sb_free(&sb);
    T_CHECK(!cfg_route_decode("other=1\n", &back));
    T_CHECK(!cfg_route_decode("hosts=bad host\n", &back));
    T_EQ_INT(back.n, 0);
}

static void test_domain(void)
{
    char d[CFG_ROUTE_DOMAIN_BUF];
    T_CHECK(cfg_route_domain_normalize("all", d, sizeof d));
    T_EQ_STR(d, "ALL");
    T_CHECK(cfg_route_domain_normalize("Routed.Example", d, sizeof d));
    T_EQ_STR(d, "routed.example");
    T_CHECK(cfg_route_domain_normalize(".Sub.Example", d, sizeof d));
    T_EQ_STR(d, ".sub.example");
    T_CHECK(cfg_route_domain_normalize("[192.0.2.1]", d, sizeof d));
    T_CHECK(!cfg_route_domain_normalize("not a domain", d, sizeof d));
    T_CHECK(!cfg_route_domain_normalize("", d, sizeof d));
}

static bool in_list(void *arg, const char *name)
{
    for (const char *const *p = arg; *p; p++)
        if (strcmp(*p, name) == 0)
            return true;
    return false;
}

static void test_match(void)
{
    static const char *const routes[] = {"example.com", ".example.com", ".a.example.com",
                                         "[192.0.2.1]", NULL};
    static const char *const with_all[] = {"example.com", ".example.com", "ALL", NULL};
    char out[CFG_ROUTE_DOMAIN_BUF];
    void *r = (void *)routes, *w = (void *)with_all;

    T_CHECK(cfg_route_match("example.com", in_list, r, out, sizeof out));
    T_EQ_STR(out, "example.com");
    T_CHECK(cfg_route_match("EXAMPLE.com.", in_list, r, out, sizeof out));
    T_EQ_STR(out, "example.com");
    T_CHECK(cfg_route_match("b.example.com", in_list, r, out, sizeof out));
    T_EQ_STR(out, ".example.com");
    T_CHECK(cfg_route_match("x.b.example.com", in_list, r, out, sizeof out));
    T_EQ_STR(out, ".example.com");
    /* The longest wildcard wins. */
    T_CHECK(cfg_route_match("x.a.example.com", in_list, r, out, sizeof out));
    T_EQ_STR(out, ".a.example.com");
    T_CHECK(cfg_route_match("a.example.com", in_list, r, out, sizeof out));
    T_EQ_STR(out, ".example.com");
    T_CHECK(cfg_route_match("[192.0.2.1]", in_list, r, out, sizeof out));
    T_EQ_STR(out, "[192.0.2.1]");
    T_CHECK(!cfg_route_match("other.example", in_list, r, out, sizeof out));
    T_CHECK(!cfg_route_match("com", in_list, r, out, sizeof out));
    T_CHECK(!cfg_route_match("", in_list, r, out, sizeof out));

    T_CHECK(cfg_route_match("other.example", in_list, w, out, sizeof out));
    T_EQ_STR(out, "ALL");
    T_CHECK(cfg_route_match("[192.0.2.9]", in_list, w, out, sizeof out));
    T_EQ_STR(out, "ALL");
    T_CHECK(cfg_route_match("b.example.com", in_list, w, out, sizeof out));
    T_EQ_STR(out, ".example.com");
    /* out too small: no match rather than a cut name. */
    T_CHECK(!cfg_route_match("example.com", in_list, w, out, 4));
}

static void test_file(void)
{
    struct cfg_route_table t;
    struct strbuf errors = STRBUF_INIT;
    const char *good = "# routes\n"
                       "\n"
                       "routed.example relay.example:2525/pri=10,[192.0.2.7]\n"
                       "  ALL\tsmarthost.example  \r\n"
                       ".Sub.Example a.example, b.example\n";
    T_EQ_INT(cfg_route_import(good, &t, &errors), 0);
    T_EQ_STR(sb_str(&errors), "");
    T_EQ_INT(t.n, 3);
    if (t.n == 3) {
        T_EQ_STR(t.v[0].domain, ".sub.example");
        T_EQ_STR(t.v[0].hosts, "a.example, b.example");
        T_EQ_STR(t.v[1].domain, "ALL");
        T_EQ_STR(t.v[1].hosts, "smarthost.example");
        T_EQ_STR(t.v[2].domain, "routed.example");
        T_EQ_STR(t.v[2].hosts, "relay.example:2525/pri=10, [192.0.2.7]");
    }
    cfg_route_table_free(&t);

    const char *bad = "routed.example relay.example\n"
                      "bad_domain! relay.example\n"
                      "ALL a.example\n"
                      "routed.example other.example\n"
                      "all b.example\n"
                      "x.example relay.example:0\n"
                      "y.example\n"
                      "z.example a.example/pri=70000\n";
    T_EQ_INT(cfg_route_import(bad, &t, &errors), 6);
    T_EQ_STR(sb_str(&errors), "Line 2: Not a valid domain name.\n"
                              "Line 4: The value routed.example is already in the routing table.\n"
                              "Line 5: There is already a default route set.\n"
                              "Line 6: The value must be a number from 1 to 65535.\n"
                              "Line 7: That value is not valid.\n"
                              "Line 8: The value must be a number from 0 to 65535.\n");
    T_EQ_INT(t.n, 0);
    T_CHECK(t.v == NULL);
    sb_free(&errors);

    T_EQ_INT(cfg_route_import("", &t, &errors), 0);
    T_EQ_INT(t.n, 0);

    struct cfg_route_hosts h;
    char err[CFG_ERR_MAX];
    struct strbuf line = STRBUF_INIT;
    T_CHECK(cfg_route_hosts_parse("relay.example:2525/pri=10, [192.0.2.7]", &h, err));
    cfg_route_export_line("routed.example", &h, &line);
    T_EQ_STR(sb_str(&line), "routed.example relay.example:2525/pri=10,[192.0.2.7]\n");
    /* Export then import gives the same route back. */
    T_EQ_INT(cfg_route_import(sb_str(&line), &t, &errors), 0);
    T_EQ_INT(t.n, 1);
    if (t.n == 1)
        T_EQ_STR(t.v[0].hosts, "relay.example:2525/pri=10, [192.0.2.7]");
    cfg_route_table_free(&t);
    sb_free(&line);
    sb_free(&errors);
}

int main(void)
{
    test_forms();
    test_bad();
    test_order_and_unit();
    test_domain();
    test_match();
    test_file();
    return t_done();
}
