/* sts_record.c - the MTA-STS TXT record grammar and the one-record rule (see sts_record.h).
 *
 * Grammar (RFC 8461 3.1 with errata, as docs/reference mta-sts.md states it):
 *   record = "v=STSv1" 1*(delim field) [delim]
 *   delim  = *WSP ";" *WSP                       (space before ';' is allowed)
 *   field  = "id=" 1*32(ALPHA / DIGIT)
 *          / name "=" 1*(VCHAR except ";" and "=")
 *   name   = (ALPHA / DIGIT) 0*31(ALPHA / DIGIT / "_" / "-" / ".")
 * Every literal is case-sensitive. Extension fields are ignored once well formed. Whitespace
 * appears only inside a delimiter: trailing spaces with no ';' break the record, as the ABNF says.
 */
#include "sts_record.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define VERSION "v=STSv1"
#define VERSION_LEN (sizeof VERSION - 1)

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* An extension value character: VCHAR other than ';' and '='. */
static bool is_ext_value_char(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != ';' && c != '=';
}

static void set_reason(char *reason, size_t size, const char *fmt, ...)
{
    if (!reason || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, size, fmt, ap);
    va_end(ap);
}

bool sts_record_is_sts(const char *txt, size_t len)
{
    if (!txt || len < VERSION_LEN || memcmp(txt, VERSION, VERSION_LEN) != 0)
        return false;
    /* "v=STSv10" or "v=STSv1x" is another version, not ours. */
    return len == VERSION_LEN || txt[VERSION_LEN] == ';' || is_wsp((unsigned char)txt[VERSION_LEN]);
}

/* Checks one field f[0..n) (n > 0, no ';' or whitespace inside by construction of the caller's
 * split, but any other byte possible). Returns 1 for an id field (copied into id), 0 for a valid
 * extension, -1 with a reason when malformed. */
static int parse_field(const char *f, size_t n, unsigned field_no, char id[STS_ID_MAX + 1],
                       char *reason, size_t reason_size)
{
    const char *eq = memchr(f, '=', n);
    if (!eq) {
        set_reason(reason, reason_size, "field %u is not name=value", field_no);
        return -1;
    }
    size_t name_len = (size_t)(eq - f);
    const char *value = eq + 1;
    size_t value_len = n - name_len - 1;

    /* The name "id" always means the id field: a malformed id is not an ignorable extension. */
    if (name_len == 2 && f[0] == 'i' && f[1] == 'd') {
        if (value_len == 0 || value_len > STS_ID_MAX) {
            set_reason(reason, reason_size, "id must be 1 to 32 letters or digits");
            return -1;
        }
        for (size_t i = 0; i < value_len; i++) {
            if (!is_alnum((unsigned char)value[i])) {
                set_reason(reason, reason_size, "id must be 1 to 32 letters or digits");
                return -1;
            }
        }
        memcpy(id, value, value_len);
        id[value_len] = '\0';
        return 1;
    }

    if (name_len == 0 || name_len > 32 || !is_alnum((unsigned char)f[0])) {
        set_reason(reason, reason_size, "field %u has an invalid name", field_no);
        return -1;
    }
    for (size_t i = 1; i < name_len; i++) {
        unsigned char c = (unsigned char)f[i];
        if (!is_alnum(c) && c != '_' && c != '-' && c != '.') {
            set_reason(reason, reason_size, "field %u has an invalid name", field_no);
            return -1;
        }
    }
    if (value_len == 0) {
        set_reason(reason, reason_size, "field %u has an empty value", field_no);
        return -1;
    }
    for (size_t i = 0; i < value_len; i++) {
        if (!is_ext_value_char((unsigned char)value[i])) {
            set_reason(reason, reason_size, "field %u has an invalid value", field_no);
            return -1;
        }
    }
    return 0;
}

enum sts_record_status sts_record_parse(const char *txt, size_t len, struct sts_record *out,
                                        char *reason, size_t reason_size)
{
    if (!sts_record_is_sts(txt, len)) {
        set_reason(reason, reason_size, "does not begin with v=STSv1");
        return STS_RECORD_NOT_STS;
    }

    char id[STS_ID_MAX + 1] = "";
    bool have_id = false;
    unsigned field_no = 1; /* the version is field 1 */
    size_t p = VERSION_LEN;

    while (p < len) {
        /* A delimiter: *WSP ";" *WSP. */
        size_t q = p;
        while (q < len && is_wsp((unsigned char)txt[q]))
            q++;
        if (q == len) {
            set_reason(reason, reason_size, "whitespace at the end without ';'");
            return STS_RECORD_INVALID;
        }
        if (txt[q] != ';') {
            set_reason(reason, reason_size, "fields must be separated by ';'");
            return STS_RECORD_INVALID;
        }
        q++;
        while (q < len && is_wsp((unsigned char)txt[q]))
            q++;
        if (q == len)
            break; /* the optional trailing delimiter */

        /* A field runs up to the next whitespace or ';'. */
        size_t start = q;
        while (q < len && txt[q] != ';' && !is_wsp((unsigned char)txt[q]))
            q++;
        field_no++;
        if (q == start) {
            set_reason(reason, reason_size, "empty field (;;)");
            return STS_RECORD_INVALID;
        }
        char field_id[STS_ID_MAX + 1];
        int kind = parse_field(txt + start, q - start, field_no, field_id, reason, reason_size);
        if (kind < 0)
            return STS_RECORD_INVALID;
        /* A repeated id: the first one wins, as a repeated policy key does. */
        if (kind == 1 && !have_id) {
            memcpy(id, field_id, sizeof id);
            have_id = true;
        }
        p = q;
    }

    if (!have_id) {
        set_reason(reason, reason_size, "no id field");
        return STS_RECORD_INVALID;
    }
    if (out)
        memcpy(out->id, id, sizeof out->id);
    return STS_RECORD_VALID;
}

enum sts_txt_status sts_record_select(const struct sts_record_text *records, size_t n,
                                      struct sts_record *out, char *reason, size_t reason_size)
{
    const struct sts_record_text *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!sts_record_is_sts(records[i].data, records[i].len))
            continue;
        if (found) {
            set_reason(reason, reason_size, "more than one v=STSv1 record");
            return STS_TXT_INVALID;
        }
        found = &records[i];
    }
    if (!found) {
        set_reason(reason, reason_size, "no v=STSv1 record");
        return STS_TXT_NONE;
    }
    if (sts_record_parse(found->data, found->len, out, reason, reason_size) != STS_RECORD_VALID)
        return STS_TXT_INVALID;
    return STS_TXT_VALID;
}
