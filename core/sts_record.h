/* sts_record.h - the MTA-STS TXT record at _mta-sts.<domain> (RFC 8461 3.1, with its errata).
 *
 * Promises: pure functions over already-joined TXT records (the character-strings of one record
 * concatenated with no separator; the DNS layer does that). Inputs are byte ranges, so a record may
 * hold any byte, NUL included. Nothing is allocated; failure comes back as a status and a short
 * human reason (printed by `stsgated check-record` as "invalid: <reason>").
 */
#ifndef STSGATE_STS_RECORD_H
#define STSGATE_STS_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#define STS_ID_MAX 32      /* id= is 1 to 32 letters or digits */
#define STS_REASON_MAX 160 /* room for any reason this module or sts_policy writes */

/* What one TXT lookup of _mta-sts.<domain> says, as the cache rules need it. TEMPFAIL (SERVFAIL,
 * timeout) comes from the DNS layer only: it is not "no record". */
enum sts_txt_status {
    STS_TXT_VALID = 0, /* exactly one v=STSv1 record, and it is valid: the id is known */
    STS_TXT_NONE,      /* no record beginning with v=STSv1 (or NXDOMAIN, NODATA) */
    STS_TXT_INVALID,   /* more than one v=STSv1 record, or the one record breaks the grammar */
    STS_TXT_TEMPFAIL,  /* the lookup itself failed for now */
};

enum sts_record_status {
    STS_RECORD_VALID = 0,
    STS_RECORD_INVALID, /* begins with v=STSv1 but breaks the grammar */
    STS_RECORD_NOT_STS, /* does not begin with v=STSv1: some other TXT record, to be ignored */
};

struct sts_record {
    char id[STS_ID_MAX + 1]; /* NUL-terminated */
};

/* One joined TXT record: a byte range, not necessarily NUL-terminated. */
struct sts_record_text {
    const char *data;
    size_t len;
};

/* True when txt begins with the version field v=STSv1 (case-sensitive) ending at the end of the
 * record, a ';', a space or a tab. Only such records take part in the one-record rule. */
bool sts_record_is_sts(const char *txt, size_t len);

/* Parses one joined record. On STS_RECORD_VALID fills out->id; otherwise writes a reason into
 * reason[0..reason_size) (reason may be NULL). out may be NULL to validate only. */
enum sts_record_status sts_record_parse(const char *txt, size_t len, struct sts_record *out,
                                        char *reason, size_t reason_size);

/* The "exactly one v=STSv1 record" rule over every record of one TXT answer: records not beginning
 * with v=STSv1 are dropped; none left gives STS_TXT_NONE, more than one STS_TXT_INVALID, one that
 * breaks the grammar STS_TXT_INVALID, else STS_TXT_VALID with out->id. Never STS_TXT_TEMPFAIL. */
enum sts_txt_status sts_record_select(const struct sts_record_text *records, size_t n,
                                      struct sts_record *out, char *reason, size_t reason_size);

#endif
