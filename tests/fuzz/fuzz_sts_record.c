/* fuzz_sts_record.c - fuzzes the MTA-STS TXT record parser and the one-record rule.
 *
 * The input is one record; split at each '\n' it is also a TXT answer of several records. Beyond
 * "no crash, no out-of-bounds read" it checks what the parser promises: a valid record begins with
 * v=STSv1 and yields a 1-32 character alphanumeric id, parsing is deterministic, and the selection
 * agrees with parsing the records one by one.
 */
#include "fuzz.h"
#include "sts_record.h"

#include <stdlib.h>
#include <string.h>

#define MAX_RECORDS 16

static void check_id(const char *id)
{
    size_t n = strnlen(id, STS_ID_MAX + 1);
    if (n < 1 || n > STS_ID_MAX)
        abort();
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *txt = (const char *)data;
    struct sts_record a, b;
    char reason[STS_REASON_MAX];

    enum sts_record_status s1 = sts_record_parse(txt, size, &a, reason, sizeof reason);
    enum sts_record_status s2 = sts_record_parse(txt, size, &b, NULL, 0);
    if (s1 != s2)
        abort();
    if ((s1 == STS_RECORD_NOT_STS) == sts_record_is_sts(txt, size))
        abort();
    if (s1 == STS_RECORD_VALID) {
        check_id(a.id);
        if (strcmp(a.id, b.id) != 0 || size < 7 || memcmp(txt, "v=STSv1", 7) != 0)
            abort();
    } else if (strnlen(reason, sizeof reason) == 0 ||
               strnlen(reason, sizeof reason) == sizeof reason) {
        abort(); /* every failure explains itself, NUL-terminated */
    }

    /* The same bytes as a TXT answer of several records. */
    struct sts_record_text recs[MAX_RECORDS];
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size && n < MAX_RECORDS; i++) {
        if (i == size || data[i] == '\n') {
            recs[n].data = txt + start;
            recs[n].len = i - start;
            n++;
            start = i + 1;
        }
    }
    size_t sts = 0, which = 0;
    for (size_t i = 0; i < n; i++)
        if (sts_record_is_sts(recs[i].data, recs[i].len))
            sts++, which = i;
    struct sts_record sel;
    enum sts_txt_status st = sts_record_select(recs, n, &sel, reason, sizeof reason);
    if (sts == 0 && st != STS_TXT_NONE)
        abort();
    if (sts > 1 && st != STS_TXT_INVALID)
        abort();
    if (sts == 1) {
        struct sts_record one;
        enum sts_record_status rs =
            sts_record_parse(recs[which].data, recs[which].len, &one, NULL, 0);
        if ((rs == STS_RECORD_VALID) != (st == STS_TXT_VALID))
            abort();
        if (st == STS_TXT_VALID && strcmp(one.id, sel.id) != 0)
            abort();
    }
    return 0;
}
