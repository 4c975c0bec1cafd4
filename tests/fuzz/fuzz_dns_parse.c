/* fuzz_dns_parse.c - fuzzes the DNS answer parser (core/dns_parse.c) with raw reply bytes.
 *
 * Beyond "no crash, no out-of-bounds read, no leak" it checks what dns_parse.h promises: DNS_OK if
 * and only if records were kept; never partial records with a failure; MX sorted by preference
 * and null MX only for a single root target; every record of the asked type with its data in
 * place, and printable by dns_rr_format() within its bounds; and the same bytes always give the
 * same answer.
 */
#include "dns_parse.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static void check(int ok)
{
    if (!ok)
        abort();
}

static void invariants(const struct dns_answer *a)
{
    check((a->status == DNS_OK) == (a->nrr > 0));
    check(a->nrr == 0 || a->rr != NULL);
    check(!a->secure); /* only dns.c decides secure */
    if (a->status == DNS_OK || a->status == DNS_NODATA || a->status == DNS_NXDOMAIN)
        check(a->qname != NULL && a->canon != NULL);
    if (a->status == DNS_EMALFORMED)
        check(a->detail[0] != '\0');
    check(!a->null_mx || (a->type == DNS_T_MX && a->nrr == 1));
    for (size_t i = 0; i < a->nrr; i++) {
        const struct dns_rr *rr = &a->rr[i];
        check(rr->type == a->type);
        char text[64];
        size_t n = dns_rr_format(rr, text, sizeof(text));
        check(strlen(text) == (n < sizeof(text) ? n : sizeof(text) - 1));
        switch (rr->type) {
        case DNS_T_MX:
            check(rr->mx.host != NULL);
            check(i == 0 || a->rr[i - 1].mx.pref <= rr->mx.pref);
            break;
        case DNS_T_TXT:
            check(rr->txt.data != NULL && rr->txt.data[rr->txt.len] == '\0');
            break;
        case DNS_T_TLSA:
            check((rr->tlsa.len == 0) == (rr->tlsa.data == NULL));
            break;
        case DNS_T_CNAME:
            check(rr->cname != NULL);
            break;
        default:
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_answer a, b;
    enum dns_status st = dns_parse_answer(data, size, &a);
    check(st == a.status);
    invariants(&a);
    dns_parse_answer(data, size, &b);
    check(a.status == b.status && a.nrr == b.nrr && a.ttl == b.ttl && a.ncname == b.ncname);
    check((a.canon == NULL) == (b.canon == NULL));
    check(a.canon == NULL || strcmp(a.canon, b.canon) == 0);
    dns_answer_clear(&a);
    dns_answer_clear(&b);
    return 0;
}
