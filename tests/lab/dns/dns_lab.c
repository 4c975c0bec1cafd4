/* dns_lab.c - core/dns.c against the lab's real validating unbound (label lab).
 *
 * What only a real resolver shows: a signed zone gives secure answers, an unsigned zone insecure
 * ones, a bogus zone or a tampered RRset SERVFAIL, a signed empty name a secure NXDOMAIN; real
 * TLSA records (including a 700-byte 3 0 0) parse; a TXT record split into several strings comes
 * back joined, two records stay two. It also drives the lab's mock responder (fakedns.py) for a
 * forged AD bit, truncation and silence over a real network namespace.
 *
 * It must run inside the lab namespace (where /etc/resolv.conf names the lab's unbound). ctest
 * runs it there with --inside (tests/lab/dns/CMakeLists.txt, stsgate_lab_test INSIDE). Run by
 * hand without --inside, it finds the lab like the lab's helpers do ($LAB_ENV, else
 * $LAB_DIR/env, else /tmp/stsgate-lab/env) and re-executes itself under `ip netns exec`.
 * Without root or without a lab it prints SKIP and exits 77; inside, a lab resolver that does
 * not answer is a failure.
 * The names come from tests/lab/scenarios/dane.conf and mta-sts.conf.
 */
#include "../../unit/t.h"
#include "dns.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <unistd.h>

#define LAB_RESOLVER "127.0.53.1"
#define LAB_FAKEDNS "127.0.53.2"

static struct dns_server server(const char *addr, bool trusted)
{
    struct dns_server s;
    memset(&s, 0, sizeof(s));
    snprintf(s.addr, sizeof(s.addr), "%s", addr);
    s.port = 53;
    s.trusted = trusted;
    return s;
}

static struct dns_config config(const struct dns_server *s, size_t n)
{
    struct dns_config c;
    memset(&c, 0, sizeof(c));
    c.servers = s;
    c.nservers = n;
    c.timeout_s = 2;
    c.tries = 2;
    return c;
}

/* status and secure of one lookup; the answer is left in *a for more checks. */
static void ask(const struct dns_config *c, const char *name, uint16_t type, struct dns_answer *a,
                enum dns_status want, bool want_secure)
{
    dns_resolve(c, name, type, a);
    if (a->status != want || a->secure != want_secure)
        fprintf(stderr, "%s %s: got %s secure=%d (%s), want %s secure=%d\n", name,
                dns_type_name(type), dns_status_name(a->status), a->secure, a->detail,
                dns_status_name(want), want_secure);
    T_EQ_INT(a->status, want);
    T_EQ_INT(a->secure, want_secure);
}

static void test_resolver(const struct dns_config *c)
{
    struct dns_answer a;
    char s[64];

    ask(c, "dane-ee.signed.stslab", DNS_T_MX, &a, DNS_OK, true);
    T_CHECK(a.nrr == 1 && strcmp(a.rr[0].mx.host, "mx.dane-ee.signed.stslab") == 0);
    dns_answer_clear(&a);
    ask(c, "mx.dane-ee.signed.stslab", DNS_T_A, &a, DNS_OK, true);
    T_CHECK(a.nrr == 1 && inet_ntop(AF_INET, &a.rr[0].a, s, sizeof(s)) != NULL);
    dns_answer_clear(&a);
    ask(c, "mx.dane-ee.signed.stslab", DNS_T_AAAA, &a, DNS_NODATA, true);
    dns_answer_clear(&a);
    ask(c, "nothing-here.signed.stslab", DNS_T_A, &a, DNS_NXDOMAIN, true);
    dns_answer_clear(&a);

    /* TLSA: parsed from real answers. */
    ask(c, "_25._tcp.mx.dane-ee.signed.stslab", DNS_T_TLSA, &a, DNS_OK, true);
    T_CHECK(a.nrr == 1 && a.rr[0].tlsa.usage == 3 && a.rr[0].tlsa.selector == 1 &&
            a.rr[0].tlsa.mtype == 1 && a.rr[0].tlsa.len == 32);
    dns_answer_clear(&a);
    ask(c, "_25._tcp.mx.dane-digest.signed.stslab", DNS_T_TLSA, &a, DNS_OK, true);
    T_EQ_INT(a.nrr, 2);
    for (size_t i = 0; i < a.nrr; i++) {
        if (a.rr[i].tlsa.selector == 0)
            T_CHECK(a.rr[i].tlsa.mtype == 0 && a.rr[i].tlsa.len > 300); /* a whole certificate */
        else
            T_CHECK(a.rr[i].tlsa.mtype == 2 && a.rr[i].tlsa.len == 64); /* SHA-512 */
    }
    dns_answer_clear(&a);
    /* Secure denial of TLSA: DANE Opportunistic goes on without DANE. */
    ask(c, "_25._tcp.mx.dane-notlsa.signed.stslab", DNS_T_TLSA, &a, DNS_NXDOMAIN, true);
    dns_answer_clear(&a);

    /* Unsigned: the records, never secure. */
    ask(c, "_25._tcp.mx.dane-unsigned.plain.stslab", DNS_T_TLSA, &a, DNS_OK, false);
    T_CHECK(a.nrr == 1 && !a.ad);
    dns_answer_clear(&a);
    ask(c, "sts-enforce.plain.stslab", DNS_T_MX, &a, DNS_OK, false);
    dns_answer_clear(&a);

    /* Bogus zone and a tampered RRset: SERVFAIL, a temporary failure. */
    ask(c, "dane-bogus.bogus.stslab", DNS_T_MX, &a, DNS_SERVFAIL, false);
    T_CHECK(dns_status_temporary(a.status));
    dns_answer_clear(&a);
    ask(c, "_25._tcp.mx.dane-servfail.signed.stslab", DNS_T_TLSA, &a, DNS_SERVFAIL, false);
    dns_answer_clear(&a);
    ask(c, "mx.dane-servfail.signed.stslab", DNS_T_A, &a, DNS_OK, true); /* only TLSA broken */
    dns_answer_clear(&a);

    /* TXT: one record in three strings comes back joined; two records stay two. */
    ask(c, "_mta-sts.sts-splittxt.plain.stslab", DNS_T_TXT, &a, DNS_OK, false);
    T_CHECK(a.nrr == 1 && strcmp((char *)a.rr[0].txt.data, "v=STSv1; id=split1") == 0);
    dns_answer_clear(&a);
    ask(c, "_mta-sts.sts-twotxt.plain.stslab", DNS_T_TXT, &a, DNS_OK, false);
    T_EQ_INT(a.nrr, 2);
    dns_answer_clear(&a);
}

/* Many lookups at once on one resolver, on a loop, against the real server. */
struct many {
    int done, secure, ok;
};

static void many_cb(struct dns_answer *a, void *arg)
{
    struct many *m = arg;
    m->done++;
    m->ok += a->status == DNS_OK;
    m->secure += a->secure;
}

static void test_parallel(const struct dns_config *c)
{
    struct ev_loop *loop = ev_loop_new();
    struct dns_resolver *r;
    char err[128];
    T_EQ_INT(dns_resolver_new(loop, c, &r, err, sizeof(err)), 0);
    struct many m = {0};
    enum { N = 300 };
    for (int i = 0; i < N; i++)
        dns_query(r, i % 3 ? "mx.dane-ee.signed.stslab" : "_25._tcp.mx.dane-ee.signed.stslab",
                  i % 3 ? DNS_T_A : DNS_T_TLSA, many_cb, &m);
    uint64_t deadline = ev_now_ms(loop) + 20000;
    while (m.done < N && ev_now_ms(loop) < deadline)
        ev_run_once(loop, 100);
    T_EQ_INT(m.done, N);
    T_EQ_INT(m.ok, N);
    T_EQ_INT(m.secure, N);
    dns_resolver_free(r);
    ev_loop_free(loop);
}

/* The LAB_NS of the lab's env file, or NULL. */
static char *lab_namespace(void)
{
    char path[4096];
    const char *env = getenv("LAB_ENV"), *dir = getenv("LAB_DIR");
    if (env)
        snprintf(path, sizeof(path), "%s", env);
    else
        snprintf(path, sizeof(path), "%s/env", dir ? dir : "/tmp/stsgate-lab");
    FILE *f = fopen(path, "r");
    static char ns[256];
    char line[512];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "LAB_NS=");
        if (p && sscanf(p + 7, "%255[A-Za-z0-9_.-]", ns) == 1)
            found = true;
    }
    if (f)
        fclose(f);
    return found ? ns : NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--inside") != 0) {
        char *ns = lab_namespace();
        if (geteuid() != 0 || !ns) {
            printf("SKIP: %s\n", ns ? "the lab needs root" : "no lab is up (scripts/lab up)");
            return 77;
        }
        char *args[] = {"ip", "netns", "exec", ns, argv[0], "--inside", NULL};
        execvp("ip", args);
        perror("ip netns exec");
        return 1;
    }
    struct dns_server trusted = server(LAB_RESOLVER, true);
    struct dns_config c = config(&trusted, 1);
    struct dns_answer a;
    if (dns_resolve(&c, "mx.dane-ee.signed.stslab", DNS_T_A, &a) != DNS_OK) {
        printf("FAIL: no answer from the lab resolver %s (%s): is this the lab namespace?\n",
               LAB_RESOLVER, a.detail);
        dns_answer_clear(&a);
        return 1;
    }
    dns_answer_clear(&a);

    test_resolver(&c);
    test_parallel(&c);

    /* The namespace's resolv.conf names the lab's unbound on loopback: trusted by default. */
    struct dns_config sys = config(NULL, 0);
    ask(&sys, "dane-ee.signed.stslab", DNS_T_MX, &a, DNS_OK, true);
    dns_answer_clear(&a);

    /* The same validator, not trusted by configuration: AD seen, secure never. */
    struct dns_server untrusted = server(LAB_RESOLVER, false);
    struct dns_config u = config(&untrusted, 1);
    ask(&u, "dane-ee.signed.stslab", DNS_T_MX, &a, DNS_OK, false);
    T_CHECK(a.ad);
    dns_answer_clear(&a);

    /* The mock responder: forged AD, truncation -> TCP, silence, a TLSA too short to parse. */
    struct dns_server fake = server(LAB_FAKEDNS, false);
    struct dns_config f = config(&fake, 1);
    f.timeout_s = 1;
    f.tries = 1;
    ask(&f, "forged-ad.fake.stslab", DNS_T_MX, &a, DNS_OK, false);
    T_CHECK(a.ad);
    dns_answer_clear(&a);
    ask(&f, "truncated.fake.stslab", DNS_T_MX, &a, DNS_OK, false);
    T_CHECK(a.nrr == 1 && !a.tc);
    dns_answer_clear(&a);
    ask(&f, "silent.fake.stslab", DNS_T_MX, &a, DNS_TIMEOUT, false);
    dns_answer_clear(&a);
    ask(&f, "_25._tcp.mx.badtlsa.fake.stslab", DNS_T_TLSA, &a, DNS_EMALFORMED, false);
    dns_answer_clear(&a);
    return t_done();
}
