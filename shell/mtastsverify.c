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

struct tls_run {
    bool done;
    enum smtpc_event ev;
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

/* Checks one address of a matching MX. Returns true when it passes; else reason says why. */
static bool check_mx_addr(struct sh *sh, SSL_CTX *ctx, const char *mx, const char *addr,
                          char *reason, size_t rlen, bool *interrupted)
{
    struct ev_loop *loop = ev_loop_new();
    if (!loop) {
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
    struct tls_run t = {false, SMTPC_FAILED};
    char err[256] = "";
    struct smtpc *c = smtpc_open(loop, &p, tls_cb, &t, err, sizeof err);
    bool ok = false;
    if (!c) {
        set_reason(reason, rlen, "cannot connect to %s: %s", addr, err);
        sh_printf(sh, "Connection to %s failed: %s\n", addr, err);
        ev_loop_free(loop);
        return false;
    }
    bool connected = false;
    while (!t.done) {
        if (ev_run_once(loop, 200) < 0 || sh_interrupted()) {
            *interrupted = true;
            break;
        }
        if (t.ev == SMTPC_CONNECTED && !connected) {
            connected = true;
            sh_printf(sh, "Connected to %s from interface %s.\n", addr, smtpc_info(c)->local_addr);
        }
    }
    const struct smtpc_info *i = smtpc_info(c);
    if (*interrupted) {
        set_reason(reason, rlen, "interrupted");
    } else if (!connected && i->stage <= SMTPC_ST_CONNECT) {
        set_reason(reason, rlen, "cannot connect to %s (%s): %s", mx, addr, i->detail);
        sh_printf(sh, "Connection to %s failed: %s\n", addr, i->detail);
    } else if (!i->tls.offered) {
        set_reason(reason, rlen, "STARTTLS not offered by %s (%s)", mx, addr);
        sh_printf(sh, "STARTTLS not offered by %s.\n", mx);
    } else if (i->tls.refused) {
        set_reason(reason, rlen, "STARTTLS refused by %s (%s): %d %s", mx, addr, i->last.code,
                   i->last.text);
        sh_printf(sh, "STARTTLS refused by %s: %d %s\n", mx, i->last.code, i->last.text);
    } else if (!i->tls.established) {
        sh_printf(sh, "Checking TLS connection.\n");
        set_reason(reason, rlen, "TLS handshake with %s (%s) failed: %s", mx, addr,
                   i->tls.error[0] ? i->tls.error : i->detail);
        sh_printf(sh, "TLS handshake failed: %s\n", i->tls.error[0] ? i->tls.error : i->detail);
    } else {
        sh_printf(sh, "Checking TLS connection.\n");
        sh_printf(sh, "TLS connection established: protocol %s, cipher %s.\n", i->tls.protocol,
                  i->tls.cipher);
        char matched[TLSPOL_NAME_MAX + 1] = "";
        X509 *cert = smtpc_peer_cert(c);
        bool chain_ok = i->tls.verify_result == X509_V_OK;
        bool name_ok = cert && tlspol_name_match(cert, mx, true, matched);
        if (!chain_ok) {
            sh_printf(sh, "Certificate verification failed: %s\n", i->tls.verify_error);
            set_reason(reason, rlen, "the certificate of %s (%s) does not verify: %s", mx, addr,
                       i->tls.verify_error);
        } else if (!name_ok) {
            char names[512];
            tlspol_cert_names(cert, names, sizeof names);
            sh_printf(sh, "Certificate verification failed: no subjectAltName names %s (%s)\n", mx,
                      names[0] ? names : "no names");
            set_reason(reason, rlen, "peer cert does not match MX %s", mx);
        } else {
            sh_printf(sh, "Certificate verification successful\n");
            sh_printf(sh, "TLS connection succeeded %s.\n", mx);
            ok = true;
        }
        if (!ok)
            sh_printf(sh, "TLS connection failed %s.\n", mx);
    }
    if (t.done && t.ev == SMTPC_READY) {
        t.done = false;
        smtpc_quit(c);
        for (int n = 0; !t.done && n < 50; n++)
            ev_run_once(loop, 100);
    }
    smtpc_free(c);
    ev_loop_free(loop);
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
        len--;
    if (len == 0 || len >= outlen || len > STS_NAME_MAX)
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

enum sh_rc sh_cmd_mtastsverify(struct sh *sh, int argc, char **argv)
{
    if (argc != 2) {
        sh_error(sh, "Usage: mtastsverify <domain>");
        return SH_OK;
    }
    char d[STS_NAME_MAX + 1];
    if (!valid_domain(argv[1], d, sizeof d)) {
        sh_error(sh, "%s is not a valid domain.", argv[1]);
        return SH_OK;
    }
    struct verify_cfg v;
    load_cfg(sh, &v);
    char reason[640] = "";
    struct sts_policy *pol = NULL;
    char *body = NULL;
    SSL_CTX *ctx = NULL;
    bool interrupted = false;

    /* 1. TXT */
    char qname[STS_NAME_MAX + 16];
    snprintf(qname, sizeof qname, "_mta-sts.%s", d);
    struct dns_answer ans;
    dns_resolve(&v.dns, qname, DNS_T_TXT, &ans);
    if (dns_status_temporary(ans.status) || ans.status == DNS_BADNAME) {
        set_reason(reason, sizeof reason, "the TXT lookup of %s failed (%s)", qname,
                   ans.detail[0] ? ans.detail : dns_status_name(ans.status));
        dns_answer_clear(&ans);
        goto verdict;
    }
    struct sts_record_text recs[32];
    size_t n = 0, nsts = 0;
    for (size_t i = 0; i < ans.nrr && n < 32; i++) {
        if (ans.rr[i].type != DNS_T_TXT)
            continue;
        recs[n].data = (const char *)ans.rr[i].txt.data;
        recs[n].len = ans.rr[i].txt.len;
        if (sts_record_is_sts(recs[n].data, recs[n].len))
            nsts++;
        n++;
    }
    struct sts_record rec;
    char why[STS_REASON_MAX] = "";
    enum sts_txt_status ts =
        ans.status == DNS_OK ? sts_record_select(recs, n, &rec, why, sizeof why) : STS_TXT_NONE;
    for (size_t i = 0; i < n; i++) {
        if (!sts_record_is_sts(recs[i].data, recs[i].len))
            continue;
        sh_printf(sh, "%s TXT record found for %s: %.*s\n",
                  ts == STS_TXT_VALID ? "MTA-STS" : "Invalid MTA-STS", d, (int)recs[i].len,
                  recs[i].data);
    }
    dns_answer_clear(&ans);
    if (ts == STS_TXT_NONE) {
        sh_printf(sh, "No MTA-STS TXT record found for %s.\n", d);
        set_reason(reason, sizeof reason, "no MTA-STS TXT record at %s", qname);
        goto verdict;
    }
    if (ts != STS_TXT_VALID) {
        set_reason(reason, sizeof reason, "invalid MTA-STS TXT record: %s", why);
        goto verdict;
    }

    /* 2. the fetch */
    struct sts_fetch_config fc;
    memset(&fc, 0, sizeof fc);
    fc.ca_file = v.ca_file;
    if (v.ca_pem.len) {
        fc.ca_pem = sb_str(&v.ca_pem);
        fc.ca_pem_len = v.ca_pem.len;
    }
    fc.proxy = v.proxy;
    fc.certinfo = true;
    body = malloc(STS_POLICY_MAX);
    pol = malloc(sizeof *pol);
    if (!body || !pol) {
        set_reason(reason, sizeof reason, "out of memory");
        goto verdict;
    }
    if (v.proxy[0])
        sh_printf(sh, "Requesting the policy through the proxy %s.\n", v.proxy);
    struct sts_fetch_result fr;
    sts_fetch_blocking(&v.dns, &fc, d, &fr, body, STS_POLICY_MAX, sh_interrupted);
    if (fr.status != STS_FETCH_OK) {
        if (strcmp(fr.reason, "interrupted") == 0) {
            interrupted = true;
            goto out;
        }
        sh_printf(sh, "Policy fetch from %s failed due to %s.\n", fr.url, fr.reason);
        set_reason(reason, sizeof reason, "policy fetch failed due to %s", fr.reason);
        goto verdict;
    }
    sh_printf(sh, "Policy fetched from %s (%ld, %s, %zu bytes)\n", fr.url, fr.http_status,
              fr.content_type, fr.body_len);
    if (fr.cert_subject[0])
        sh_printf(sh, "Policy host certificate: subject %s; issuer %s; expires %s\n",
                  fr.cert_subject, fr.cert_issuer, fr.cert_expire);
    if (fr.cert_san[0])
        sh_printf(sh, "Policy host certificate names: %s\n", fr.cert_san);

    /* 3. the policy */
    print_policy_text(sh, fr.body, fr.body_len);
    char preason[STS_POLICY_REASON_MAX] = "";
    if (sts_policy_parse(fr.body, fr.body_len, pol, preason, sizeof preason) != STS_POLICY_VALID) {
        sh_printf(sh, "Invalid policy: %s\n", preason);
        set_reason(reason, sizeof reason, "invalid policy: %s", preason);
        goto verdict;
    }
    sh_printf(sh, "Policy valid: mode %s, max_age %u.\n", sts_mode_name(pol->mode),
              (unsigned)pol->max_age);
    if (pol->mode == STS_MODE_NONE) {
        set_reason(reason, sizeof reason, "the policy's mode is none: MTA-STS does not apply");
        goto verdict;
    }

    /* 4. the MX hosts */
    struct mxhost mx[MAX_MX];
    size_t nmx = 0, nmatch = 0;
    dns_resolve(&v.dns, d, DNS_T_MX, &ans);
    if (ans.status == DNS_OK && ans.null_mx) {
        set_reason(reason, sizeof reason, "%s has a null MX: it accepts no mail", d);
    } else if (ans.status == DNS_OK) {
        for (size_t i = 0; i < ans.nrr && nmx < MAX_MX; i++)
            if (ans.rr[i].type == DNS_T_MX && ans.rr[i].mx.host[0])
                snprintf(mx[nmx++].name, sizeof mx[0].name, "%s", ans.rr[i].mx.host);
    } else if (ans.status == DNS_NODATA) {
        sh_printf(sh, "No MX record for %s: the domain itself is the MX.\n", d);
        snprintf(mx[nmx++].name, sizeof mx[0].name, "%s", d);
    } else {
        set_reason(reason, sizeof reason, "the MX lookup of %s failed (%s)", d,
                   ans.detail[0] ? ans.detail : dns_status_name(ans.status));
    }
    dns_answer_clear(&ans);
    if (reason[0])
        goto verdict;
    for (size_t i = 0; i < nmx; i++) {
        mx[i].match = sts_policy_allows_mx(pol, mx[i].name);
        nmatch += mx[i].match;
        sh_printf(sh, "MX %s %s the policy\n", mx[i].name,
                  mx[i].match ? "matches" : "does not match");
    }
    if (nmatch == 0) {
        set_reason(reason, sizeof reason, "no MX host of %s matches its policy", d);
        goto verdict;
    }

    /* 5. STARTTLS to each matching MX */
    struct smtpc_ctx_params cp;
    memset(&cp, 0, sizeof cp);
    cp.system_cas = v.system_cas;
    cp.ca_pem = v.custom_pem;
    char err[256];
    ctx = smtpc_ctx_new(&cp, err, sizeof err);
    if (!ctx) {
        set_reason(reason, sizeof reason, "cannot set up TLS: %s", err);
        goto verdict;
    }
    for (size_t i = 0; i < nmx && !interrupted; i++) {
        if (!mx[i].match)
            continue;
        char addrs[MAX_ADDRS][64];
        size_t na = 0;
        uint16_t types[2] = {DNS_T_A, DNS_T_AAAA};
        enum dns_status last = DNS_NODATA;
        for (int k = 0; k < 2; k++) {
            dns_resolve(&v.dns, mx[i].name, types[k], &ans);
            if (ans.status != DNS_OK && (k == 0 || last != DNS_OK))
                last = ans.status;
            for (size_t j = 0; j < ans.nrr && na < MAX_ADDRS; j++) {
                if (ans.rr[j].type == DNS_T_A)
                    inet_ntop(AF_INET, &ans.rr[j].a, addrs[na], sizeof addrs[na]);
                else if (ans.rr[j].type == DNS_T_AAAA)
                    inet_ntop(AF_INET6, &ans.rr[j].aaaa, addrs[na], sizeof addrs[na]);
                else
                    continue;
                sh_printf(sh, "%s record (%s) found for MX(%s) in %s\n", k ? "AAAA" : "A",
                          addrs[na], mx[i].name, d);
                na++;
            }
            dns_answer_clear(&ans);
        }
        if (na == 0) {
            sh_printf(sh, "No address found for MX(%s) in %s (%s)\n", mx[i].name, d,
                      dns_status_name(last));
            if (!reason[0])
                set_reason(reason, sizeof reason, "no address for MX %s", mx[i].name);
            continue;
        }
        for (size_t j = 0; j < na && !interrupted; j++) {
            char r[512] = "";
            if (!check_mx_addr(sh, ctx, mx[i].name, addrs[j], r, sizeof r, &interrupted) &&
                !reason[0])
                set_reason(reason, sizeof reason, "%s", r);
        }
    }
    if (interrupted)
        goto out;

verdict:
    if (reason[0])
        sh_error(sh, "MTA-STS FAILED for %s: %s", d, reason);
    else
        sh_printf(sh, "MTA-STS SUCCESS for %s\n", d);
out:
    if (interrupted)
        sh_printf(sh, "Interrupted.\n");
    SSL_CTX_free(ctx);
    free(pol);
    free(body);
    free_cfg(&v);
    return interrupted ? SH_ABORT : SH_OK;
}
