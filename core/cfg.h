/* cfg.h - the configuration model: destination controls, global settings, and the names,
 * ranges and text forms the shell, the store and the agent share.
 *
 * Every setting of a destination entry can be "use the default" (value 0 / -1 / ""), which the
 * agent resolves against the DEFAULT entry at delivery time. The DEFAULT entry itself always has
 * values. Units of configuration (one destination, SETUP, one route, ...) travel as "key=value"
 * text (kv.h); the keys of a destination are those of destconfig IMPORT/EXPORT (cli.md §2.5). */
#ifndef STSGATE_CFG_H
#define STSGATE_CFG_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define CFG_DOMAIN_MAX 253
#define CFG_NAME_MAX 64
#define CFG_ERR_MAX 400

/* Unit kinds as stored and as shown by showchanges. */
#define CFG_KIND_DEST "destconfig"
#define CFG_KIND_CERT "certconfig"
#define CFG_KIND_ROUTE "smtproutes"
#define CFG_KIND_DNS "dnsconfig"
#define CFG_KIND_BOUNCE "bounceconfig"
#define CFG_KIND_HOSTNAME "sethostname"

/* Unit names that are not user-chosen. Upper case, so they never collide with a domain, which is
 * stored lower case. */
#define CFG_UNIT_DEFAULT "DEFAULT"
#define CFG_UNIT_SETUP "SETUP"
#define CFG_UNIT_CA "CERTAUTHORITY"
#define CFG_UNIT_DNS "DNSCONFIG"
#define CFG_UNIT_HOSTNAME "HOSTNAME"

enum cfg_tls {
    CFG_TLS_DEFAULT = 0,
    CFG_TLS_NO,
    CFG_TLS_PREFERRED,
    CFG_TLS_REQUIRED,
    CFG_TLS_PREFERRED_VERIFY,
    CFG_TLS_REQUIRED_VERIFY,
    CFG_TLS_REQUIRED_VERIFY_HOSTED,
};
enum cfg_dane { CFG_DANE_DEFAULT = 0, CFG_DANE_NO, CFG_DANE_OPPORTUNISTIC, CFG_DANE_MANDATORY };
enum cfg_sts { CFG_STS_DEFAULT = 0, CFG_STS_OFF, CFG_STS_ON };
enum cfg_limit { CFG_LIMIT_DEFAULT = 0, CFG_LIMIT_DOMAIN, CFG_LIMIT_MXIP };
enum cfg_ipsort {
    CFG_IPSORT_DEFAULT = 0,
    CFG_IPSORT_PREFER_V4,
    CFG_IPSORT_PREFER_V6,
    CFG_IPSORT_REQUIRE_V4,
    CFG_IPSORT_REQUIRE_V6,
};

/* Ranges of cli.md §2.1. */
#define CFG_CONCURRENCY_MIN 1
#define CFG_CONCURRENCY_MAX 1000
#define CFG_MSGS_MIN 1
#define CFG_MSGS_MAX 1000
#define CFG_RCPT_MINUTES_MIN 1
#define CFG_RCPT_MINUTES_MAX 60
#define CFG_RCPT_MIN 0
#define CFG_RCPT_MAX 1000000000L

/* Recipient limit: CFG_RCPT_DEFAULT follows the default, CFG_RCPT_NONE is no limit (0 recipients
 * entered means "no limit", the convention the LIST column "-" shows). */
#define CFG_RCPT_DEFAULT (-1L)
#define CFG_RCPT_NONE 0L

struct cfg_dest {
    int concurrency;   /* 0: default */
    int msgs_per_conn; /* 0: default */
    long rcpt_limit;   /* CFG_RCPT_DEFAULT, CFG_RCPT_NONE or a count */
    int rcpt_minutes;  /* meaningful when rcpt_limit > 0 */
    enum cfg_limit limit;
    enum cfg_tls tls;
    enum cfg_dane dane;
    enum cfg_sts sts;
    char bounce_profile[CFG_NAME_MAX + 1]; /* "": default */
    enum cfg_ipsort ip_sort;
};

/* destconfig SETUP. */
struct cfg_setup {
    char certificate[CFG_NAME_MAX + 1];
    bool tls_alert;
    char sts_proxy[256]; /* "": no proxy */
    bool tlsrpt;
    char tlsrpt_org[256];
    char tlsrpt_contact[256];
};

/* Factory values (cli.md §2.1: 500, 50, no recipient limit, one limit per domain, Preferred, DANE
 * No, MTA STS Off, Default, Prefer IPv4). */
void cfg_dest_factory(struct cfg_dest *d);
/* An entry that follows the default in every setting. */
void cfg_dest_inherit_all(struct cfg_dest *d);
void cfg_setup_factory(struct cfg_setup *s);

/* Resolves every "use the default" of entry against def, then applies the rule that TLS No turns
 * DANE and MTA STS off (delivery-policy.md §1). */
void cfg_dest_effective(const struct cfg_dest *entry, const struct cfg_dest *def,
                        struct cfg_dest *out);

/* Domains (cli.md §2.1): a DNS name, ".sub.domain" or "[192.0.2.1]" / "[IPv6:...]". Writes the
 * lower-case form to out (CFG_DOMAIN_MAX + 3 bytes). Returns false when it is not one. */
bool cfg_domain_normalize(const char *in, char *out, size_t outlen);
/* A plain host name (no wildcard, no literal), the same label rules. */
bool cfg_hostname_valid(const char *name);
/* Profile names: letters, digits, '-', '_', 1 to CFG_NAME_MAX. */
bool cfg_name_valid(const char *name);

/* Strict decimal parse within [min, max]; false for anything else. */
bool cfg_parse_long(const char *s, long min, long max, long *out);

/* Display names (LIST, DETAIL, dialogues). */
const char *cfg_tls_label(enum cfg_tls t);
const char *cfg_dane_label(enum cfg_dane d);
const char *cfg_sts_label(enum cfg_sts s);
const char *cfg_ipsort_label(enum cfg_ipsort p);

/* Sets one IMPORT key (cli.md §2.5) on d. is_default: the [DEFAULT] section, where "use the
 * default" is not a value. Returns false with the error text (the appliance's words) in err. */
bool cfg_dest_set_key(struct cfg_dest *d, bool is_default, const char *key, const char *value,
                      char err[CFG_ERR_MAX]);
/* The rule across keys: TLS off with DANE or MTA STS on. Returns false with err. */
bool cfg_dest_check(const struct cfg_dest *d, char err[CFG_ERR_MAX]);
/* Appends the IMPORT keys of d, one "key = value" line each (EXPORT form when ini is true, else
 * the kv unit form). Settings that follow the default are left out; the DEFAULT entry writes
 * every key. */
void cfg_dest_write(const struct cfg_dest *d, bool is_default, bool ini, struct strbuf *sb);
/* Decodes a unit body written by cfg_dest_write(ini = false). */
bool cfg_dest_decode(const char *body, bool is_default, struct cfg_dest *d);

void cfg_setup_encode(const struct cfg_setup *s, struct strbuf *sb);
bool cfg_setup_decode(const char *body, struct cfg_setup *s);

/* One displayable field of a unit, for showchanges. */
struct cfg_field {
    char name[32];
    char value[256];
};
#define CFG_FIELDS_MAX 16
/* Describes a unit body as fields (name and display value); returns the count. */
int cfg_unit_fields(const char *kind, const char *unit, const char *body,
                    struct cfg_field fields[CFG_FIELDS_MAX]);

#endif
