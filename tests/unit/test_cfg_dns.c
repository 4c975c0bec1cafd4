/* test_cfg_dns.c - the dnsconfig unit (encode, decode, damaged lines), addresses, the trust
 * default, and the list in effect (configured, else resolv.conf with loopback trust). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg_dns.h"
#include "t.h"

static void test_addr(void)
{
    char a[64];
    T_CHECK(cfg_dns_addr_normalize("127.0.0.1", a, sizeof a));
    T_EQ_STR(a, "127.0.0.1");
    T_CHECK(cfg_dns_addr_normalize("2001:DB8:0:0::53", a, sizeof a));
    T_EQ_STR(a, "2001:db8::53");
    T_CHECK(cfg_dns_addr_normalize("::1", a, sizeof a));
    T_EQ_STR(a, "::1");
    T_CHECK(!cfg_dns_addr_normalize("", a, sizeof a));
    T_CHECK(!cfg_dns_addr_normalize("localhost", a, sizeof a));
    T_CHECK(!cfg_dns_addr_normalize("192.0.2.256", a, sizeof a));
    T_CHECK(!cfg_dns_addr_normalize("[::1]", a, sizeof a));
    T_CHECK(!cfg_dns_addr_normalize("192.0.2.1 ", a, sizeof a));

    T_CHECK(cfg_dns_trust_default("127.0.0.1"));
    T_CHECK(cfg_dns_trust_default("127.53.0.9"));
    T_CHECK(cfg_dns_trust_default("::1"));
    T_CHECK(!cfg_dns_trust_default("192.0.2.53"));
    T_CHECK(!cfg_dns_trust_default("2001:db8::53"));
}

static void test_unit(void)
{
    struct cfg_dns d, back;
    cfg_dns_factory(&d);
    T_EQ_INT(d.n, 0);
    T_EQ_INT(d.timeout_s, 5);
    T_EQ_INT(d.tries, 3);

    snprintf(d.servers[0].addr, sizeof d.servers[0].addr, "127.0.0.1");
    d.servers[0].port = 53;
    d.servers[0].trusted = true;
    snprintf(d.servers[1].addr, sizeof d.servers[1].addr, "2001:db8::53");
    d.servers[1].port = 5353;
    d.n = 2;
    d.timeout_s = 2;
    d.tries = 4;
    struct strbuf sb = STRBUF_INIT;
    cfg_dns_encode(&d, &sb);
    T_EQ_STR(sb_str(&sb),
             "server=127.0.0.1 53 yes\nserver=2001:db8::53 5353 no\ntimeout=2\ntries=4\n");
    T_CHECK(cfg_dns_decode(sb_str(&sb), &back));
    T_EQ_INT(back.n, 2);
    T_EQ_STR(back.servers[1].addr, "2001:db8::53");
    T_EQ_INT(back.servers[1].port, 5353);
    T_CHECK(!back.servers[1].trusted);
    T_CHECK(back.servers[0].trusted);
    T_EQ_INT(back.timeout_s, 2);
    T_EQ_INT(back.tries, 4);

    sb_reset(&sb);
    cfg_dns_describe(&back, &sb);
    T_EQ_STR(sb_str(&sb), "127.0.0.1:53 (trusted), [2001:db8::53]:5353");
    sb_reset(&sb);
    cfg_dns_factory(&back);
    cfg_dns_describe(&back, &sb);
    T_EQ_STR(sb_str(&sb), "System (/etc/resolv.conf)");
    sb_free(&sb);

    /* NULL and an empty body: the factory list. */
    T_CHECK(cfg_dns_decode(NULL, &back));
    T_EQ_INT(back.n, 0);
    T_EQ_INT(back.tries, 3);
    T_CHECK(cfg_dns_decode("", &back));
    T_EQ_INT(back.timeout_s, 5);

    /* Damaged lines are skipped, the others kept, and the decode says so. */
    T_CHECK(
        !cfg_dns_decode("server=bogus 53 yes\nserver=192.0.2.1 53 yes\nserver=192.0.2.2 0 "
                        "no\nserver=192.0.2.3 53 maybe\nserver=192.0.2.4\ntimeout=0\ntries=99\n",
                        &back));
    T_EQ_INT(back.n, 1);
    T_EQ_STR(back.servers[0].addr, "192.0.2.1");
    T_EQ_INT(back.timeout_s, 5);
    T_EQ_INT(back.tries, 3);

    /* At most CFG_DNS_SERVERS_MAX servers. */
    struct strbuf many = STRBUF_INIT;
    for (int i = 0; i < CFG_DNS_SERVERS_MAX + 1; i++)
        sb_printf(&many, "server=192.0.2.%d 53 no\n", i + 1);
    T_CHECK(!cfg_dns_decode(sb_str(&many), &back));
    T_EQ_INT(back.n, CFG_DNS_SERVERS_MAX);
    sb_free(&many);
}

static void test_effective(void)
{
    char path[] = "/tmp/test_cfg_dns_XXXXXX";
    int fd = mkstemp(path);
    T_CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# generated\nsearch example.com\nnameserver 192.0.2.53\nnameserver 127.0.0.53\n"
          "nameserver ::1\noptions edns0\n",
          f);
    fclose(f);

    struct cfg_dns d;
    struct dns_server out[CFG_DNS_SERVERS_MAX];
    bool system = false;
    cfg_dns_factory(&d);
    size_t n = cfg_dns_effective(&d, path, out, &system);
    T_CHECK(system);
    T_EQ_INT(n, 3);
    T_EQ_STR(out[0].addr, "192.0.2.53");
    T_CHECK(!out[0].trusted);
    T_EQ_STR(out[1].addr, "127.0.0.53");
    T_CHECK(out[1].trusted);
    T_EQ_STR(out[2].addr, "::1");
    T_CHECK(out[2].trusted);
    T_EQ_INT(out[0].port, 53);

    struct dns_config c;
    cfg_dns_config(&d, path, &c);
    T_EQ_INT(c.nservers, 0);
    T_CHECK(c.servers == NULL);
    T_EQ_STR(c.resolv_conf, path);
    T_EQ_INT(c.timeout_s, 5);

    T_CHECK(cfg_dns_decode("server=192.0.2.1 5300 yes\ntimeout=7\ntries=1\n", &d));
    n = cfg_dns_effective(&d, path, out, &system);
    T_CHECK(!system);
    T_EQ_INT(n, 1);
    T_EQ_STR(out[0].addr, "192.0.2.1");
    T_EQ_INT(out[0].port, 5300);
    T_CHECK(out[0].trusted);
    cfg_dns_config(&d, path, &c);
    T_EQ_INT(c.nservers, 1);
    T_EQ_INT(c.timeout_s, 7);
    T_EQ_INT(c.tries, 1);
    T_EQ_STR(c.servers[0].addr, "192.0.2.1");

    /* A resolv.conf with no nameserver: 127.0.0.1, trusted (as libc does). */
    f = fopen(path, "w");
    fputs("search example.com\n", f);
    fclose(f);
    cfg_dns_factory(&d);
    n = cfg_dns_effective(&d, path, out, &system);
    T_EQ_INT(n, 1);
    T_EQ_STR(out[0].addr, "127.0.0.1");
    T_CHECK(out[0].trusted);
    unlink(path);
}

int main(void)
{
    test_addr();
    test_unit();
    test_effective();
    return t_done();
}
