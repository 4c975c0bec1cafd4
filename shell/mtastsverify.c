/* mtastsverify.c - `mtastsverify <domain>`: the live MTA-STS checks of a domain, step by step
 * (cli.md §6, in the shape of daneverify), the check the Cisco note sends admins to a web checker
 * for before they turn MTA STS on.
 *
 * Steps: the TXT record at _mta-sts.<domain>; the policy fetch exactly as the agent does it
 * (core/sts_fetch.h: the committed resolvers, CA lists and SETUP proxy), with status, type, size
 * and the policy host's certificate; the policy text and its verdict; the MX hosts and which match;
 * for each matching MX, a STARTTLS connection (core/smtp_client.h) verified against the MX name
 * as MTA-STS requires it (TLS 1.2+, a chain to a trusted CA, a subjectAltName dNSName naming the
 * MX). The last line is `MTA-STS SUCCESS for <domain>` or `MTA-STS FAILED for <domain>: <reason>`
 * (an error line: the session's exit status becomes 1). Nothing here is cached or written.
 *
 * Each step is a function over one struct sts_check; the first failure found is the reason. The
 * checks read the session's committed units, resolve with blocking lookups and verify the MX hosts
 * with the CA lists alone, so probe.h's begin and start (a fresh snapshot, a resolver on a loop,
 * delivery's TLS context with its outbound certificate) are not used here.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/ssl.h>

#include "cfg.h"
#include "cfg_dns.h"
#include "dns.h"
#include "sh.h"
#include "smtp_client.h"
#include "sts_fetch.h"
#include "sts_mx.h"
#include "sts_policy.h"
#include "sts_record.h"
#include "tlscert.h"
#include "tlspolicy.h"

#define MAX_MX 16
#define MAX_ADDRS 8

/* What the committed configuration says the checks must use. */
struct verify_cfg {
    struct cfg_dns dns_units;
    struct dns_config dns;
    const char *ca_file; /* the policy fetch's trusted CAs (cert_ca_trust) */
    struct strbuf ca_pem;
    bool system_cas;
    char *custom_pem; /* the Custom list alone, for the STARTTLS context */
    char proxy[256];
};

static void load_cfg(struct sh *sh, struct verify_cfg *v)
{
    memset(v, 0, sizeof *v);
    cfg_dns_decode(db_session_get_committed(sh->session, CFG_KIND_DNS, CFG_UNIT_DNS),
                   &v->dns_units);
    cfg_dns_config(&v->dns_units, NULL, &v->dns);

    struct cert_ca_cfg ca;
    cert_ca_decode(db_session_get_committed(sh->session, CFG_KIND_CERT, CFG_UNIT_CA), &ca);
    v->system_cas = ca.system_enabled;
    cert_ca_trust(&ca, &v->ca_file, &v->ca_pem);
    if (ca.custom_enabled && ca.custom && ca.custom[0])
        v->custom_pem = strdup(ca.custom);
    cert_ca_free(&ca);

    struct cfg_setup setup;
    cfg_setup_factory(&setup);
    const char *body = db_session_get_committed(sh->session, CFG_KIND_DEST, CFG_UNIT_SETUP);
    if (body)
        cfg_setup_decode(body, &setup);
    snprintf(v->proxy, sizeof v->proxy, "%s", setup.sts_proxy);
}

static void free_cfg(struct verify_cfg *v)
{
    sb_free(&v->ca_pem);
    free(v->custom_pem);
}

/* A reason may be cut at its buffer's end: its start says what failed. Formatting goes through
 * this wrapper so that gcc does not warn at each call about long server texts. */
static void set_reason(char *r, size_t rlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_reason(char *r, size_t rlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r, rlen, fmt, ap);
    va_end(ap);
}

/* ---- one STARTTLS check ---- */

/* One SMTP session to an MX address, on a loop of its own. */
struct tls_run {
    struct ev_loop *loop;
    struct smtpc *c;
    bool done;
    enum smtpc_event ev;
    bool connected; /* the "Connected to" line was printed */
};

static void tls_cb(struct smtpc *c, enum smtpc_event ev, void *arg)
{
    (void)c;
    struct tls_run *t = arg;
    if (ev == SMTPC_CONNECTED) {
        t->ev = ev;
        return;
    }
    t->ev = ev;
    t->done = true;
}

/* Starts the session to addr with STARTTLS and the MX name as SNI. False when it cannot even
 * start: reason says why. */
static bool open_session(struct sh *sh, SSL_CTX *ctx, const char *mx, const char *addr,
                         struct tls_run *t, char *reason, size_t rlen)
{
    t->loop = ev_loop_new();
    if (!t->loop) {
        set_reason(reason, rlen, "out of memory");
        return false;
    }
    sh_printf(sh, "Connecting to %s on port 25.\n", addr);
    struct smtpc_params p;
    memset(&p, 0, sizeof p);
    p.addr = addr;
    p.port = 25;
    p.starttls = true;
    p.sni = mx;
    p.ctx = ctx;
    char host[256];
    sh_hostname(sh, host, sizeof host);
    p.helo = host;
    char err[256] = "";
    t->c = smtpc_open(t->loop, &p, tls_cb, t, err, sizeof err);
    if (!t->c) {
        set_reason(reason, rlen, "cannot connect to %s: %s", addr, err);
        sh_printf(sh, "Connection to %s failed: %s\n", addr, err);
        return false;
    }
    return true;
}

/* Runs the session until it ends, printing "Connected to" once it is seen up. False when Ctrl-C
 * (or a failing loop) interrupted it. */
static bool run_session(struct sh *sh, struct tls_run *t, const char *addr)
{
    while (!t->done) {
        if (ev_run_once(t->loop, 200) < 0 || sh_interrupted())
            return false;
        if (t->ev == SMTPC_CONNECTED && !t->connected) {
            t->connected = true;
            sh_printf(sh, "Connected to %s from interface %s.\n", addr,
                      smtpc_info(t->c)->local_addr);
        }
    }
    return true;
}

/* The certificate of an established session, as MTA-STS requires it: a chain to a trusted CA and
 * a subjectAltName dNSName naming the MX. */
static bool check_cert(struct sh *sh, struct smtpc *c, const char *mx, const char *addr,
                       char *reason, size_t rlen)
{
    const struct smtpc_info *i = smtpc_info(c);
    char matched[TLSPOL_NAME_MAX + 1] = "";
    X509 *cert = smtpc_peer_cert(c);
    bool chain_ok = i->tls.verify_result == X509_V_OK;
    bool name_ok = cert && tlspol_name_match(cert, mx, true, matched);
    if (!chain_ok) {
        sh_printf(sh, "Certificate verification failed: %s\n", i->tls.verify_error);
        set_reason(reason, rlen, "the certificate of %s (%s) does not verify: %s", mx, addr,
                   i->tls.verify_error);
        return false;
    }
    if (!name_ok) {
        char names[512];
        tlspol_cert_names(cert, names, sizeof names);
        sh_printf(sh, "Certificate verification failed: no subjectAltName names %s (%s)\n", mx,
                  names[0] ? names : "no names");
        set_reason(reason, rlen, "peer cert does not match MX %s", mx);
        return false;
    }
    sh_printf(sh, "Certificate verification successful\n");
    sh_printf(sh, "TLS connection succeeded %s.\n", mx);
    return true;
}

/* How the finished session went: connection, STARTTLS, handshake, certificate. */
static bool judge_session(struct sh *sh, const struct tls_run *t, const char *mx, const char *addr,
                          char *reason, size_t rlen)
{
    const struct smtpc_info *i = smtpc_info(t->c);
    if (!t->connected && i->stage <= SMTPC_ST_CONNECT) {
        set_reason(reason, rlen, "cannot connect to %s (%s): %s", mx, addr, i->detail);
        sh_printf(sh, "Connection to %s failed: %s\n", addr, i->detail);
        return false;
    }
    if (!i->tls.offered) {
        set_reason(reason, rlen, "STARTTLS not offered by %s (%s)", mx, addr);
        sh_printf(sh, "STARTTLS not offered by %s.\n", mx);
        return false;
    }
    if (i->tls.refused) {
        set_reason(reason, rlen, "STARTTLS refused by %s (%s): %d %s", mx, addr, i->last.code,
                   i->last.text);
        sh_printf(sh, "STARTTLS refused by %s: %d %s\n", mx, i->last.code, i->last.text);
        return false;
    }
    sh_printf(sh, "Checking TLS connection.\n");
    if (!i->tls.established) {
        const char *why = i->tls.error[0] ? i->tls.error : i->detail;
        set_reason(reason, rlen, "TLS handshake with %s (%s) failed: %s", mx, addr, why);
        sh_printf(sh, "TLS handshake failed: %s\n", why);
        return false;
    }
    sh_printf(sh, "TLS connection established: protocol %s, cipher %s.\n", i->tls.protocol,
              i->tls.cipher);
    if (check_cert(sh, t->c, mx, addr, reason, rlen))
        return true;
    sh_printf(sh, "TLS connection failed %s.\n", mx);
    return false;
}

/* Ends a session that is still up with QUIT (waiting up to 5 s for it), and frees it. */
static void close_session(struct tls_run *t)
{
    if (t->done && t->ev == SMTPC_READY) {
        t->done = false;
        smtpc_quit(t->c);
        for (int n = 0; !t->done && n < 50; n++)
            ev_run_once(t->loop, 100);
    }
    smtpc_free(t->c);
    ev_loop_free(t->loop);
}

/* Checks one address of a matching MX. Returns true when it passes; else reason says why. */
static bool check_mx_addr(struct sh *sh, SSL_CTX *ctx, const char *mx, const char *addr,
                          char *reason, size_t rlen, bool *interrupted)
{
    struct tls_run t = {.ev = SMTPC_FAILED};
    bool ok = false;
    if (open_session(sh, ctx, mx, addr, &t, reason, rlen)) {
        if (run_session(sh, &t, addr)) {
            ok = judge_session(sh, &t, mx, addr, reason, rlen);
        } else {
            *interrupted = true;
            set_reason(reason, rlen, "interrupted");
        }
    }
    close_session(&t);
    return ok;
}

/* ---- the steps ---- */

static void print_policy_text(struct sh *sh, const char *body, size_t len)
{
    size_t start = 0;
    while (start < len) {
        size_t end = start;
        while (end < len && body[end] != '\n')
            end++;
        size_t l = end - start;
        if (l && body[start + l - 1] == '\r')
            l--;
        /* Show control bytes as '?' rather than send them to the terminal. */
        char line[1024];
        size_t n = l < sizeof line - 1 ? l : sizeof line - 1;
        for (size_t k = 0; k < n; k++) {
            unsigned char ch = (unsigned char)body[start + k];
            line[k] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
        }
        line[n] = '\0';
        sh_printf(sh, "%s\n", line);
        start = end + 1;
    }
}

static bool valid_domain(const char *in, char *out, size_t outlen)
{
    size_t len = strlen(in);
    if (len && in[len - 1] == '.')
        len--; /* one root dot, no more */
    if (len == 0 || len >= outlen || len > STS_NAME_MAX || in[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[len] = '\0';
    return sts_mx_host_check(out, len) == NULL;
}

struct mxhost {
    char name[STS_NAME_MAX + 1];
    bool match;
};

/* One run of the checks: what its steps share. A step returns false when the checks stop there:
 * then reason says why the domain fails, or interrupted is set. */
struct sts_check {
    struct sh *sh;
    char domain[STS_NAME_MAX + 1];
    struct verify_cfg v;
    char reason[640]; /* the first failure found; "" while the domain passes */
    bool interrupted;
    char *body; /* the fetch's buffer (STS_POLICY_MAX bytes), which fetched.body points into */
    struct sts_fetch_result fetched;
    struct sts_policy *pol;
    struct mxhost mx[MAX_MX];
    size_t nmx;
};

/* The <domain> argument and the committed configuration. False after printing the error line,
 * with nothing to free. */
static bool check_begin(struct sts_check *k, struct sh *sh, int argc, char **argv)
{
    memset(k, 0, sizeof *k);
    k->sh = sh;
    if (argc != 2) {
        sh_error(sh, "Usage: mtastsverify <domain>");
        return false;
    }
    if (!valid_domain(argv[1], k->domain, sizeof k->domain)) {
        sh_error(sh, "%s is not a valid domain.", argv[1]);
        return false;
    }
    load_cfg(sh, &k->v);
    return true;
}

static void check_end(struct sts_check *k)
{
    free(k->pol);
    free(k->body);
    free_cfg(&k->v);
}

/* Prints the MTA-STS records among the TXT records of ans, valid or not, and returns
 * sts_record_select's verdict on them (why says what is wrong when there is no valid one). */
static enum sts_txt_status print_txt_records(struct sts_check *k, const struct dns_answer *ans,
                                             char *why, size_t whylen)
{
    struct sts_record_text recs[32];
    size_t n = 0;
    for (size_t i = 0; i < ans->nrr && n < 32; i++) {
        if (ans->rr[i].type != DNS_T_TXT)
            continue;
        recs[n].data = (const char *)ans->rr[i].txt.data;
        recs[n].len = ans->rr[i].txt.len;
        n++;
    }
    struct sts_record rec;
    enum sts_txt_status ts =
        ans->status == DNS_OK ? sts_record_select(recs, n, &rec, why, whylen) : STS_TXT_NONE;
    for (size_t i = 0; i < n; i++) {
        if (!sts_record_is_sts(recs[i].data, recs[i].len))
            continue;
        sh_printf(k->sh, "%s TXT record found for %s: %.*s\n",
                  ts == STS_TXT_VALID ? "MTA-STS" : "Invalid MTA-STS", k->domain, (int)recs[i].len,
                  recs[i].data);
    }
    return ts;
}

/* 1. The TXT record at _mta-sts.<domain>: one valid MTA-STS record. */
static bool check_txt_record(struct sts_check *k)
{
    char qname[STS_NAME_MAX + 16];
    snprintf(qname, sizeof qname, "_mta-sts.%s", k->domain);
    struct dns_answer ans;
    dns_resolve(&k->v.dns, qname, DNS_T_TXT, &ans);
    if (dns_status_temporary(ans.status) || ans.status == DNS_BADNAME) {
        set_reason(k->reason, sizeof k->reason, "the TXT lookup of %s failed (%s)", qname,
                   ans.detail[0] ? ans.detail : dns_status_name(ans.status));
        dns_answer_clear(&ans);
        return false;
    }
    char why[STS_REASON_MAX] = "";
    enum sts_txt_status ts = print_txt_records(k, &ans, why, sizeof why);
    dns_answer_clear(&ans);
    if (ts == STS_TXT_NONE) {
        sh_printf(k->sh, "No MTA-STS TXT record found for %s.\n", k->domain);
        set_reason(k->reason, sizeof k->reason, "no MTA-STS TXT record at %s", qname);
        return false;
    }
    if (ts != STS_TXT_VALID) {
        set_reason(k->reason, sizeof k->reason, "invalid MTA-STS TXT record: %s", why);
        return false;
    }
    return true;
}

/* 2. The policy fetch as the agent does it, with the response and the policy host's
 * certificate printed. Also allocates the policy that step 3 parses into. */
static bool fetch_policy(struct sts_check *k)
{
    struct sts_fetch_config fc;
    memset(&fc, 0, sizeof fc);
    fc.ca_file = k->v.ca_file;
    if (k->v.ca_pem.len) {
        fc.ca_pem = sb_str(&k->v.ca_pem);
        fc.ca_pem_len = k->v.ca_pem.len;
    }
    fc.proxy = k->v.proxy;
    fc.certinfo = true;
    k->body = malloc(STS_POLICY_MAX);
    k->pol = malloc(sizeof *k->pol);
    if (!k->body || !k->pol) {
        set_reason(k->reason, sizeof k->reason, "out of memory");
        return false;
    }
    if (k->v.proxy[0])
        sh_printf(k->sh, "Requesting the policy through the proxy %s.\n", k->v.proxy);
    struct sts_fetch_result *fr = &k->fetched;
    sts_fetch_blocking(&k->v.dns, &fc, k->domain, fr, k->body, STS_POLICY_MAX, sh_interrupted);
    if (fr->status != STS_FETCH_OK) {
        if (strcmp(fr->reason, "interrupted") == 0) {
            k->interrupted = true;
            return false;
        }
        sh_printf(k->sh, "Policy fetch from %s failed due to %s.\n", fr->url, fr->reason);
        set_reason(k->reason, sizeof k->reason, "policy fetch failed due to %s", fr->reason);
        return false;
    }
    sh_printf(k->sh, "Policy fetched from %s (%ld, %s, %zu bytes)\n", fr->url, fr->http_status,
              fr->content_type, fr->body_len);
    if (fr->cert_subject[0])
        sh_printf(k->sh, "Policy host certificate: subject %s; issuer %s; expires %s\n",
                  fr->cert_subject, fr->cert_issuer, fr->cert_expire);
    if (fr->cert_san[0])
        sh_printf(k->sh, "Policy host certificate names: %s\n", fr->cert_san);
    return true;
}

/* 3. The policy text and its verdict; a policy in mode none ends the checks. */
static bool check_policy(struct sts_check *k)
{
    const struct sts_fetch_result *fr = &k->fetched;
    print_policy_text(k->sh, fr->body, fr->body_len);
    char preason[STS_POLICY_REASON_MAX] = "";
    if (sts_policy_parse(fr->body, fr->body_len, k->pol, preason, sizeof preason) !=
        STS_POLICY_VALID) {
        sh_printf(k->sh, "Invalid policy: %s\n", preason);
        set_reason(k->reason, sizeof k->reason, "invalid policy: %s", preason);
        return false;
    }
    sh_printf(k->sh, "Policy valid: mode %s, max_age %u.\n", sts_mode_name(k->pol->mode),
              (unsigned)k->pol->max_age);
    if (k->pol->mode == STS_MODE_NONE) {
        set_reason(k->reason, sizeof k->reason,
                   "the policy's mode is none: MTA-STS does not apply");
        return false;
    }
    return true;
}

/* 4. The MX hosts of the domain (the domain itself when it has no MX record). */
static bool find_mx_hosts(struct sts_check *k)
{
    struct dns_answer ans;
    dns_resolve(&k->v.dns, k->domain, DNS_T_MX, &ans);
    if (ans.status == DNS_OK && ans.null_mx) {
        set_reason(k->reason, sizeof k->reason, "%s has a null MX: it accepts no mail", k->domain);
    } else if (ans.status == DNS_OK) {
        for (size_t i = 0; i < ans.nrr && k->nmx < MAX_MX; i++)
            if (ans.rr[i].type == DNS_T_MX && ans.rr[i].mx.host[0])
                snprintf(k->mx[k->nmx++].name, sizeof k->mx[0].name, "%s", ans.rr[i].mx.host);
    } else if (ans.status == DNS_NODATA) {
        sh_printf(k->sh, "No MX record for %s: the domain itself is the MX.\n", k->domain);
        snprintf(k->mx[k->nmx++].name, sizeof k->mx[0].name, "%s", k->domain);
    } else {
        set_reason(k->reason, sizeof k->reason, "the MX lookup of %s failed (%s)", k->domain,
                   ans.detail[0] ? ans.detail : dns_status_name(ans.status));
    }
    dns_answer_clear(&ans);
    return !k->reason[0];
}

/* 5. Which MX hosts the policy lists; the checks go on when one does. */
static bool match_mx_hosts(struct sts_check *k)
{
    size_t nmatch = 0;
    for (size_t i = 0; i < k->nmx; i++) {
        k->mx[i].match = sts_policy_allows_mx(k->pol, k->mx[i].name);
        nmatch += k->mx[i].match;
        sh_printf(k->sh, "MX %s %s the policy\n", k->mx[i].name,
                  k->mx[i].match ? "matches" : "does not match");
    }
    if (nmatch == 0) {
        set_reason(k->reason, sizeof k->reason, "no MX host of %s matches its policy", k->domain);
        return false;
    }
    return true;
}

/* The A and AAAA addresses of the MX mx, each printed; returns how many (at most MAX_ADDRS). An MX
 * without one fails. */
static size_t mx_addresses(struct sts_check *k, const char *mx, char (*addrs)[64])
{
    size_t na = 0;
    uint16_t types[2] = {DNS_T_A, DNS_T_AAAA};
    enum dns_status last = DNS_NODATA;
    for (int t = 0; t < 2; t++) {
        struct dns_answer ans;
        dns_resolve(&k->v.dns, mx, types[t], &ans);
        if (ans.status != DNS_OK && (t == 0 || last != DNS_OK))
            last = ans.status;
        for (size_t j = 0; j < ans.nrr && na < MAX_ADDRS; j++) {
            if (ans.rr[j].type == DNS_T_A)
                inet_ntop(AF_INET, &ans.rr[j].a, addrs[na], sizeof addrs[na]);
            else if (ans.rr[j].type == DNS_T_AAAA)
                inet_ntop(AF_INET6, &ans.rr[j].aaaa, addrs[na], sizeof addrs[na]);
            else
                continue;
            sh_printf(k->sh, "%s record (%s) found for MX(%s) in %s\n", t ? "AAAA" : "A", addrs[na],
                      mx, k->domain);
            na++;
        }
        dns_answer_clear(&ans);
    }
    if (na == 0) {
        sh_printf(k->sh, "No address found for MX(%s) in %s (%s)\n", mx, k->domain,
                  dns_status_name(last));
        if (!k->reason[0])
            set_reason(k->reason, sizeof k->reason, "no address for MX %s", mx);
    }
    return na;
}

/* 6. STARTTLS to every address of every matching MX, verified against the MX name. All are
 * checked; reason keeps the first failure. */
static void check_starttls(struct sts_check *k)
{
    struct smtpc_ctx_params cp;
    memset(&cp, 0, sizeof cp);
    cp.system_cas = k->v.system_cas;
    cp.ca_pem = k->v.custom_pem;
    char err[256];
    SSL_CTX *ctx = smtpc_ctx_new(&cp, err, sizeof err);
    if (!ctx) {
        set_reason(k->reason, sizeof k->reason, "cannot set up TLS: %s", err);
        return;
    }
    for (size_t i = 0; i < k->nmx && !k->interrupted; i++) {
        if (!k->mx[i].match)
            continue;
        char addrs[MAX_ADDRS][64];
        size_t na = mx_addresses(k, k->mx[i].name, addrs);
        for (size_t j = 0; j < na && !k->interrupted; j++) {
            char r[512] = "";
            if (!check_mx_addr(k->sh, ctx, k->mx[i].name, addrs[j], r, sizeof r, &k->interrupted) &&
                !k->reason[0])
                set_reason(k->reason, sizeof k->reason, "%s", r);
        }
    }
    SSL_CTX_free(ctx);
}

static void print_verdict(struct sts_check *k)
{
    if (k->reason[0])
        sh_error(k->sh, "MTA-STS FAILED for %s: %s", k->domain, k->reason);
    else
        sh_printf(k->sh, "MTA-STS SUCCESS for %s\n", k->domain);
}

enum sh_rc sh_cmd_mtastsverify(struct sh *sh, int argc, char **argv)
{
    struct sts_check k;
    if (!check_begin(&k, sh, argc, argv))
        return SH_OK;
    if (check_txt_record(&k) && fetch_policy(&k) && check_policy(&k) && find_mx_hosts(&k) &&
        match_mx_hosts(&k))
        check_starttls(&k);
    if (k.interrupted)
        sh_printf(sh, "Interrupted.\n");
    else
        print_verdict(&k);
    check_end(&k);
    return k.interrupted ? SH_ABORT : SH_OK;
}
