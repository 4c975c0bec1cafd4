/* certconfig.c - the certconfig command (cli.md §4): certificate profiles (the list, PASTE,
 * IMPORT, PRINT, DELETE) and the certificate authority lists (CUSTOM and SYSTEM).
 *
 * Every operation checks all it was given before it records anything, then records one
 * db_session_put: an operation refused or abandoned half way (an error, Ctrl-C, EOF, an empty
 * answer) leaves the pending changes as they were. The OpenSSL work is in core/tlscert.c; the
 * unit bodies are described in core/tlscert.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cfg.h"
#include "datadir.h"
#include "sh.h"
#include "strbuf.h"
#include "tlscert.h"

/* A certificate file with its key and chain is a few KiB; a CA bundle is a few hundred. */
#define CERT_FILE_MAX (1u << 20)
#define BUNDLE_FILE_MAX (16u << 20)

#define ASK(call)                                                                                  \
    do {                                                                                           \
        enum sh_rc rc_ = (call);                                                                   \
        if (rc_ != SH_OK)                                                                          \
            return rc_;                                                                            \
    } while (0)

static const char bad_cert[] = "Invalid certificate...discarding";
static const char bad_key[] = "Invalid private key...discarding";
static const char mismatch[] = "The private key does not sign this certificate.";
static const char bad_pass[] = "Could not decrypt the file: wrong passphrase.";
static const char empty_custom[] = "The custom certificate authority list is empty.";

/* ---- small helpers ---- */

static bool valid_profile_name(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    /* CERTAUTHORITY names the unit of the CA lists, in the same kind as the profiles. */
    if (!cfg_name_valid(in) || strcasecmp(in, CFG_UNIT_CA) == 0) {
        snprintf(err, errlen, "That value is not valid.");
        return false;
    }
    snprintf(out, outlen, "%s", in);
    return true;
}

static const char *subject_of(const struct cert_info *ci)
{
    return ci->subject[0] ? ci->subject : "(no subject)";
}

/* ---- certificate profiles ---- */

struct list_ctx {
    struct sh *sh;
    int64_t now;
};

static int list_one(void *arg, const char *name, const char *body)
{
    struct list_ctx *c = arg;
    struct cert_pair p;
    struct cert_info ci;
    if (strcmp(name, CFG_UNIT_CA) == 0)
        return 0;
    if (cert_profile_decode(body, &p) && cert_describe(p.cert, &ci)) {
        char days[32];
        snprintf(days, sizeof days, "%ld days", cert_days_left(&ci, c->now));
        sh_printf(c->sh, "%-20s %-20s %-20s %-7s %s\n", name, ci.subject_cn, ci.issuer_cn,
                  cert_status_label(&ci, c->now), days);
    } else {
        sh_printf(c->sh, "%-20s %-20s %-20s %-7s %s\n", name, "-", "-", "Invalid", "-");
    }
    cert_pair_free(&p);
    return 0;
}

static void list_profiles(struct sh *sh)
{
    struct list_ctx c = {sh, (int64_t)time(NULL)};
    sh_printf(sh, "\nList of Certificates\n");
    sh_printf(sh, "%-20s %-20s %-20s %-7s %s\n", "Name", "Common Name", "Issued By", "Status",
              "Remaining");
    sh_printf(sh, "-------------------- -------------------- -------------------- ------- "
                  "---------\n");
    db_session_each(sh->session, CFG_KIND_CERT, list_one, &c);
}

/* The profile name, then the overwrite question for a taken one; *go false when answered N. */
static enum sh_rc ask_new_profile(struct sh *sh, char name[CFG_NAME_MAX + 1], bool *go)
{
    *go = true;
    ASK(sh_ask_text(sh, "Enter a name for this certificate profile:", NULL, valid_profile_name,
                    name, CFG_NAME_MAX + 1));
    if (db_session_get(sh->session, CFG_KIND_CERT, name)) {
        char text[200];
        snprintf(text, sizeof text,
                 "Certificate profile \"%s\" already exists. Do you want to overwrite with this "
                 "new one?",
                 name);
        ASK(sh_ask_yesno(sh, text, false, go));
    }
    return SH_OK;
}

static void store_profile(struct sh *sh, const char *name, const struct cert_pair *p)
{
    struct strbuf sb = STRBUF_INIT;
    cert_profile_encode(p, &sb);
    db_session_put(sh->session, CFG_KIND_CERT, name, sb_str(&sb));
    OPENSSL_cleanse(sb.buf, sb.len);
    sb_free(&sb);
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* The PASTE dialogue after the name: fills p, or prints the error and returns SH_EMPTY. */
static enum sh_rc paste_blocks(struct sh *sh, struct cert_pair *p)
{
    char *text;
    struct cert_list l;
    ASK(sh_read_block(sh, "Paste public certificate in PEM format (end with '.'):", &text));
    enum cert_err e = cert_split(text, strlen(text), &l);
    free(text);
    if (e != CERT_OK || l.n != 1) {
        cert_list_free(&l);
        sh_error(sh, "%s", bad_cert);
        return SH_EMPTY;
    }
    p->cert = l.pem[0];
    free(l.pem);

    ASK(sh_read_block(sh, "Paste private key in PEM format (end with '.'):", &text));
    e = cert_parse_key(text, strlen(text), &p->key);
    free_secret(text);
    if (e != CERT_OK) {
        sh_error(sh, "%s", bad_key);
        return SH_EMPTY;
    }
    if (!cert_key_matches(p->cert, p->key)) {
        sh_error(sh, "%s", mismatch);
        return SH_EMPTY;
    }

    struct strbuf chain = STRBUF_INIT;
    for (;;) {
        bool more;
        enum sh_rc rc =
            sh_ask_yesno(sh, "Do you want to add an intermediate certificate?", false, &more);
        if (rc == SH_OK && more)
            rc = sh_read_block(
                sh, "Paste intermediate certificate in PEM format (end with '.'):", &text);
        if (rc != SH_OK || !more) {
            p->chain = chain.buf ? sb_steal(&chain) : xstrdup("");
            return rc;
        }
        e = cert_split(text, strlen(text), &l);
        free(text);
        if (e != CERT_OK) {
            sb_free(&chain);
            sh_error(sh, "%s", bad_cert);
            return SH_EMPTY;
        }
        char *joined = cert_list_join(&l);
        sb_append(&chain, joined);
        free(joined);
        cert_list_free(&l);
    }
}

static enum sh_rc op_paste(struct sh *sh)
{
    char name[CFG_NAME_MAX + 1];
    bool go;
    ASK(ask_new_profile(sh, name, &go));
    if (!go)
        return SH_OK;
    struct cert_pair p = {NULL, NULL, NULL};
    enum sh_rc rc = paste_blocks(sh, &p);
    if (rc == SH_OK)
        store_profile(sh, name, &p);
    cert_pair_free(&p);
    return rc;
}

static enum sh_rc op_import(struct sh *sh)
{
    char name[CFG_NAME_MAX + 1];
    bool go;
    ASK(ask_new_profile(sh, name, &go));
    if (!go)
        return SH_OK;
    char *data;
    size_t len;
    ASK(sh_import_ask_file(sh, CERT_FILE_MAX, false, &data, &len));
    if (!data)
        return SH_OK;
    /* An empty passphrase is an answer here: PEM files and some PKCS#12 files have none. */
    struct sh_question q = {
        .kind = SH_Q_TEXT, .text = "Enter passphrase:", .allow_empty = true, .secret = true};
    union sh_answer *a = xmalloc(sizeof *a);
    enum sh_rc rc = sh_ask(sh, &q, a);
    if (rc == SH_OK) {
        struct cert_pair p;
        switch (cert_import((const unsigned char *)data, len, a->text, &p)) {
        case CERT_OK:
            store_profile(sh, name, &p);
            cert_pair_free(&p);
            break;
        case CERT_ERR_PASSPHRASE:
            sh_error(sh, "%s", bad_pass);
            break;
        case CERT_ERR_KEY:
            sh_error(sh, "%s", bad_key);
            break;
        case CERT_ERR_MISMATCH:
            sh_error(sh, "%s", mismatch);
            break;
        case CERT_ERR_CERT:
            sh_error(sh, "%s", bad_cert);
            break;
        }
    }
    OPENSSL_cleanse(a, sizeof *a);
    free(a);
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

/* Asks for an existing profile; *body NULL (with the error printed) when there is none. */
static enum sh_rc ask_existing_profile(struct sh *sh, char name[CFG_NAME_MAX + 1],
                                       const char **body)
{
    char in[1024];
    *body = NULL;
    ASK(sh_ask_text(sh, "Enter the name of the certificate profile:", NULL, NULL, in, sizeof in));
    if (strlen(in) <= CFG_NAME_MAX && strcmp(in, CFG_UNIT_CA) != 0)
        *body = db_session_get(sh->session, CFG_KIND_CERT, in);
    if (!*body)
        sh_error(sh, "The certificate profile \"%s\" does not exist.", in);
    else
        snprintf(name, CFG_NAME_MAX + 1, "%.*s", CFG_NAME_MAX, in);
    return SH_OK;
}

static void print_cert(struct sh *sh, const struct cert_info *ci, int64_t now)
{
    char from[64], until[64];
    sh_format_time(ci->not_before, from, sizeof from);
    sh_format_time(ci->not_after, until, sizeof until);
    sh_printf(sh, "    Subject: %s\n", subject_of(ci));
    sh_printf(sh, "    Issuer: %s\n", ci->issuer);
    sh_printf(sh, "    Valid From: %s\n", from);
    sh_printf(sh, "    Valid Until: %s\n", until);
    const char *status = cert_status_label(ci, now);
    if (strcmp(status, "Active") == 0)
        sh_printf(sh, "    Status: Active (%ld days remaining)\n", cert_days_left(ci, now));
    else
        sh_printf(sh, "    Status: %s\n", status);
    sh_printf(sh, "    Subject Alternative Names: %s\n", ci->sans[0] ? ci->sans : "None");
    sh_printf(sh, "    SHA-256 Fingerprint: %s\n", ci->sha256);
}

static enum sh_rc op_print(struct sh *sh)
{
    char name[CFG_NAME_MAX + 1];
    const char *body;
    ASK(ask_existing_profile(sh, name, &body));
    if (!body)
        return SH_OK;
    struct cert_pair p;
    struct cert_info ci;
    int64_t now = (int64_t)time(NULL);
    if (!cert_profile_decode(body, &p) || !cert_describe(p.cert, &ci)) {
        cert_pair_free(&p);
        sh_error(sh, "The certificate profile \"%s\" holds no valid certificate.", name);
        return SH_OK;
    }
    sh_printf(sh, "\nCertificate profile \"%s\":\n", name);
    print_cert(sh, &ci, now);
    struct cert_list chain = {NULL, 0};
    if (p.chain[0])
        cert_split(p.chain, strlen(p.chain), &chain);
    for (size_t i = 0; i < chain.n; i++) {
        if (!cert_describe(chain.pem[i], &ci))
            continue;
        sh_printf(sh, "Intermediate certificate %zu:\n", i + 1);
        print_cert(sh, &ci, now);
    }
    cert_list_free(&chain);
    cert_pair_free(&p);
    return SH_OK;
}

static enum sh_rc op_delete(struct sh *sh)
{
    char name[CFG_NAME_MAX + 1];
    const char *body;
    ASK(ask_existing_profile(sh, name, &body));
    if (!body)
        return SH_OK;
    struct cfg_setup s;
    const char *setup = db_session_get(sh->session, CFG_KIND_DEST, CFG_UNIT_SETUP);
    if (setup)
        cfg_setup_decode(setup, &s);
    else
        cfg_setup_factory(&s);
    if (strcmp(s.certificate, name) == 0) {
        sh_error(sh, "The certificate profile \"%s\" is in use for outbound TLS.", name);
        return SH_OK;
    }
    db_session_put(sh->session, CFG_KIND_CERT, name, NULL);
    return SH_OK;
}

static const struct sh_verb cert_verbs[] = {
    {"IMPORT", "Import a certificate from a local PKCS#12 file", op_import},
    {"PASTE", "Paste a certificate into the CLI", op_paste},
    {"PRINT", "Display a certificate", op_print},
    {"DELETE", "Delete a certificate", op_delete},
};

/* ---- certificate authorities ---- */

static void load_ca(struct sh *sh, struct cert_ca_cfg *c)
{
    cert_ca_decode(db_session_get(sh->session, CFG_KIND_CERT, CFG_UNIT_CA), c);
}

static void store_ca(struct sh *sh, const struct cert_ca_cfg *c)
{
    struct strbuf sb = STRBUF_INIT;
    cert_ca_encode(c, &sb);
    db_session_put(sh->session, CFG_KIND_CERT, CFG_UNIT_CA, sb_str(&sb));
    sb_free(&sb);
}

static void ca_states(struct sh *sh)
{
    struct cert_ca_cfg c;
    load_ca(sh, &c);
    sh_printf(sh, "\nCustom List: %s\nSystem List: %s\n", c.custom_enabled ? "Enabled" : "Disabled",
              c.system_enabled ? "Enabled" : "Disabled");
    cert_ca_free(&c);
}

/* The numbered list PRINT and DELETE show: one line per authority with its expiry. */
static void print_numbered(struct sh *sh, const struct cert_list *l)
{
    int64_t now = (int64_t)time(NULL);
    sh_printf(sh, "\n");
    for (size_t i = 0; i < l->n; i++) {
        struct cert_info ci;
        char until[64];
        if (!cert_describe(l->pem[i], &ci)) {
            sh_printf(sh, "%zu. (unreadable certificate)\n", i + 1);
            continue;
        }
        sh_format_time(ci.not_after, until, sizeof until);
        sh_printf(sh, "%zu. %s (%s %s)\n", i + 1, subject_of(&ci),
                  now > ci.not_after ? "expired" : "expires", until);
    }
}

static void custom_list(struct sh *sh, struct cert_list *l)
{
    struct cert_ca_cfg c;
    load_ca(sh, &c);
    l->pem = NULL;
    l->n = 0;
    if (c.custom[0])
        cert_split(c.custom, strlen(c.custom), l);
    cert_ca_free(&c);
}

/* ENABLE and DISABLE of either list: one flag of the CERTAUTHORITY unit. */
static enum sh_rc set_list(struct sh *sh, bool system, bool on)
{
    struct cert_ca_cfg c;
    load_ca(sh, &c);
    if (system)
        c.system_enabled = on;
    else
        c.custom_enabled = on;
    store_ca(sh, &c);
    cert_ca_free(&c);
    return SH_OK;
}

static enum sh_rc op_custom_enable(struct sh *sh)
{
    return set_list(sh, false, true);
}

static enum sh_rc op_custom_disable(struct sh *sh)
{
    return set_list(sh, false, false);
}

static enum sh_rc op_custom_import(struct sh *sh)
{
    char *data;
    size_t len;
    ASK(sh_import_ask_file(sh, BUNDLE_FILE_MAX, false, &data, &len));
    if (!data)
        return SH_OK;
    struct cert_list l;
    if (memchr(data, '\0', len) || cert_split(data, len, &l) != CERT_OK) {
        free(data);
        sh_error(sh, "The file is not a valid PEM certificate bundle. Nothing was imported.");
        return SH_OK;
    }
    free(data);
    /* All or nothing: every certificate is checked before the list is replaced. */
    struct cert_info *info = xcalloc(l.n, sizeof *info);
    for (size_t i = 0; i < l.n; i++) {
        if (!cert_describe(l.pem[i], &info[i]) || !info[i].is_ca) {
            sh_error(sh, "%s is not a certificate authority. Nothing was imported.",
                     subject_of(&info[i]));
            free(info);
            cert_list_free(&l);
            return SH_OK;
        }
    }
    struct cert_ca_cfg c;
    load_ca(sh, &c);
    free(c.custom);
    c.custom = cert_list_join(&l);
    store_ca(sh, &c);
    cert_ca_free(&c);
    sh_printf(sh, "\n%zu certificate authorities imported.\n", l.n);
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < l.n; i++) {
        if (now > info[i].not_after) {
            char until[64];
            sh_format_time(info[i].not_after, until, sizeof until);
            sh_printf(sh, "Warning: %s expired on %s.\n", subject_of(&info[i]), until);
        }
    }
    free(info);
    cert_list_free(&l);
    return SH_OK;
}

static enum sh_rc op_custom_export(struct sh *sh)
{
    char host[256], name[1024], path[4200];
    ASK(sh_ask_text(sh, "Enter a name for the exported file:", NULL, sh_valid_file_name, name,
                    sizeof name));
    struct cert_ca_cfg c;
    load_ca(sh, &c);
    if (!c.custom[0]) {
        cert_ca_free(&c);
        sh_printf(sh, "\n%s\n", empty_custom);
        return SH_OK;
    }
    datadir_config_path(sh->datadir, name, path, sizeof path);
    if (!sh_write_file(path, c.custom, strlen(c.custom))) {
        sh_error(sh, "Unable to write the file \"%s\": %s.", name, strerror(errno));
    } else {
        sh_hostname(sh, host, sizeof host);
        sh_printf(sh, "\nFile written on machine \"%s\" to the location \"%s%s\".\n", host,
                  name[0] == '/' ? "" : "/configuration/", name);
    }
    cert_ca_free(&c);
    return SH_OK;
}

static enum sh_rc op_custom_print(struct sh *sh)
{
    struct cert_list l;
    custom_list(sh, &l);
    if (l.n == 0)
        sh_printf(sh, "\n%s\n", empty_custom);
    else
        print_numbered(sh, &l);
    cert_list_free(&l);
    return SH_OK;
}

static enum sh_rc op_custom_delete(struct sh *sh)
{
    struct cert_list l;
    custom_list(sh, &l);
    if (l.n == 0) {
        sh_printf(sh, "\n%s\n", empty_custom);
        return SH_OK;
    }
    print_numbered(sh, &l);
    long v;
    enum sh_rc rc = sh_ask_number(
        sh, "Enter the number of the certificate authority to remove:", NULL, 1, (long)l.n, &v);
    if (rc == SH_OK) {
        free(l.pem[v - 1]);
        memmove(&l.pem[v - 1], &l.pem[v], (l.n - (size_t)v) * sizeof l.pem[0]);
        l.n--;
        struct cert_ca_cfg c;
        load_ca(sh, &c);
        free(c.custom);
        c.custom = cert_list_join(&l);
        store_ca(sh, &c);
        cert_ca_free(&c);
    }
    cert_list_free(&l);
    return rc;
}

static enum sh_rc op_system_enable(struct sh *sh)
{
    return set_list(sh, true, true);
}

static enum sh_rc op_system_disable(struct sh *sh)
{
    return set_list(sh, true, false);
}

static enum sh_rc op_system_print(struct sh *sh)
{
    char *data;
    size_t len;
    struct cert_list l;
    if (!sh_read_file(CERT_SYSTEM_BUNDLE, BUNDLE_FILE_MAX, false, &data, &len)) {
        sh_error(sh, "Unable to read the file \"%s\": %s.", CERT_SYSTEM_BUNDLE, strerror(errno));
        return SH_OK;
    }
    enum cert_err e = memchr(data, '\0', len) ? CERT_ERR_CERT : cert_split(data, len, &l);
    free(data);
    if (e != CERT_OK) {
        sh_error(sh, "The file \"%s\" is not a valid PEM certificate bundle.", CERT_SYSTEM_BUNDLE);
        return SH_OK;
    }
    print_numbered(sh, &l);
    cert_list_free(&l);
    return SH_OK;
}

static const struct sh_verb custom_verbs[] = {
    {"ENABLE", "Enable the custom certificate authority list", op_custom_enable},
    {"DISABLE", "Disable the custom certificate authority list", op_custom_disable},
    {"IMPORT", "Import a custom certificate authority list", op_custom_import},
    {"EXPORT", "Export the custom certificate authority list", op_custom_export},
    {"PRINT", "Display the custom certificate authority list", op_custom_print},
    {"DELETE", "Remove a certificate authority from the list", op_custom_delete},
};

static const struct sh_verb system_verbs[] = {
    {"ENABLE", "Enable the system certificate authority list", op_system_enable},
    {"DISABLE", "Disable the system certificate authority list", op_system_disable},
    {"PRINT", "Display the system certificate authority list", op_system_print},
};

/* ---- menus ---- */

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static enum sh_rc menu_certificate(struct sh *sh)
{
    return sh_menu_run(sh, list_profiles, cert_verbs, N_OF(cert_verbs));
}

static enum sh_rc menu_custom(struct sh *sh)
{
    return sh_menu_run(sh, ca_states, custom_verbs, N_OF(custom_verbs));
}

static enum sh_rc menu_system(struct sh *sh)
{
    return sh_menu_run(sh, ca_states, system_verbs, N_OF(system_verbs));
}

static const struct sh_verb ca_verbs[] = {
    {"CUSTOM", "Manage Custom Certificate Authorities", menu_custom},
    {"SYSTEM", "Manage System Certificate Authorities", menu_system},
};

static enum sh_rc menu_certauthority(struct sh *sh)
{
    return sh_menu_run(sh, ca_states, ca_verbs, N_OF(ca_verbs));
}

static const struct sh_verb top_verbs[] = {
    {"CERTIFICATE", "Import, Create a request, Edit or Remove Certificate Profiles",
     menu_certificate},
    {"CERTAUTHORITY", "Manage System and Customized Authorities", menu_certauthority},
};

enum sh_rc sh_cmd_certconfig(struct sh *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return sh_menu_run(sh, NULL, top_verbs, N_OF(top_verbs));
}
