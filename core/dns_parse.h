/* dns_parse.h - the DNS answer parser: raw reply bytes in, a plain struct of records out.
 *
 * Pure: no I/O, no global state. It reads the header (rcode, AD, TC), the question, and the answer
 * section; authority and additional sections are not needed and not read. It follows the CNAME
 * chain from the question name through the answer section, keeps the records of the asked type
 * owned by the final name, and ignores everything else (RRSIG and unrelated records).
 *
 * Promises: every length is checked against the packet before it is used; a reply that is
 * truncated or inconsistent anywhere in the header, question or answer section gives
 * DNS_EMALFORMED and never partial records. Any input, of any length, is safe (it is fuzzed:
 * tests/fuzz/fuzz_dns_parse.c).
 *
 * Names are in c-ares's presentation form (ares_expand_name): no trailing dot, "" for the root,
 * '.' and '\' inside a label escaped with '\', other unprintable bytes as \DDD.
 */
#ifndef STSGATE_DNS_PARSE_H
#define STSGATE_DNS_PARSE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dns_type {
    DNS_T_A = 1,
    DNS_T_CNAME = 5,
    DNS_T_MX = 15,
    DNS_T_TXT = 16,
    DNS_T_AAAA = 28,
    DNS_T_RRSIG = 46,
    DNS_T_TLSA = 52,
};

/* The outcome of a lookup. OK, NODATA and NXDOMAIN are answers; SERVFAIL, TIMEOUT, EMALFORMED and
 * ERROR are temporary failures (dns_status_temporary): a caller must not treat them as "no
 * record" (MTA-STS keeps its cached policy, delivery defers, DANE fails the host). */
enum dns_status {
    DNS_OK = 0,     /* at least one record of the asked type */
    DNS_NODATA,     /* the name exists (NOERROR) but has no record of that type */
    DNS_NXDOMAIN,   /* the name (after CNAMEs) does not exist */
    DNS_SERVFAIL,   /* server failure; from a validating resolver also "DNSSEC bogus" */
    DNS_TIMEOUT,    /* no answer from any server within the tries */
    DNS_EMALFORMED, /* a reply came but could not be parsed */
    DNS_ERROR,      /* anything else: REFUSED, other rcodes, network errors, out of memory */
    DNS_BADNAME,    /* the name cannot be put in a query (too long, empty label): permanent */
    DNS_CANCELLED,  /* the resolver was shut down before an answer came */
};

struct dns_rr {
    uint16_t type;
    uint32_t ttl;
    union {
        struct in_addr a;
        struct in6_addr aaaa;
        struct {
            uint16_t pref;
            char *host; /* "" for the root (null MX) */
        } mx;
        struct {
            /* The character-strings of one record joined with no separator; data[len] is a NUL
             * added for convenience, but data may also contain NULs: use len. */
            unsigned char *data;
            size_t len;
        } txt;
        struct {
            uint8_t usage, selector, mtype;
            unsigned char *data; /* certificate association data, binary; NULL when len is 0 */
            size_t len;
        } tlsa;
        char *cname; /* the target, for a query of type CNAME */
    };
};

struct dns_answer {
    enum dns_status status;
    int rcode;     /* from the header, 0..15 */
    bool ad;       /* the AD bit as the server set it: trust it only through `secure` */
    bool tc;       /* the TC bit */
    bool secure;   /* set by dns.c: AD and the answering server is trusted; false from the parser */
    bool null_mx;  /* MX: exactly one record and its target is the root (RFC 7505) */
    uint16_t type; /* the type asked (from the question) */
    char *qname;   /* the question name */
    char *canon;   /* the name after following CNAMEs (qname when there were none); NULL for
                      SERVFAIL, other rcodes and unparsable replies */
    unsigned ncname;   /* CNAME records followed */
    uint32_t ttl;      /* the smallest TTL among the records kept and CNAMEs followed; 0 if none */
    struct dns_rr *rr; /* records of `type` owned by `canon`, MX sorted by preference */
    size_t nrr;
    char server[64]; /* set by dns.c: the server that answered, "addr#port"; "" if none */
    char detail[96]; /* set on failure: a short reason for logs and `dig` */
};

/* Longest CNAME chain followed before the answer counts as malformed (a loop). */
#define DNS_MAX_CNAME 16

/* Parses reply `buf` of `len` bytes into `out` (which it first clears) and returns out->status.
 * The status comes from the rcode and the records: NOERROR with records -> DNS_OK, NOERROR without
 * -> DNS_NODATA, NXDOMAIN, SERVFAIL, other rcodes -> DNS_ERROR; anything unparsable ->
 * DNS_EMALFORMED. On any status `out` may hold allocations: always call dns_answer_clear(). */
enum dns_status dns_parse_answer(const unsigned char *buf, size_t len, struct dns_answer *out);

/* Frees what the answer holds and zeroes it (the struct itself stays). */
void dns_answer_clear(struct dns_answer *ans);

/* Records from `src` moved into `dst` (which is cleared first); `src` is left empty. */
void dns_answer_move(struct dns_answer *dst, struct dns_answer *src);

/* One record's data in zone-file form, as `dig` shows it: "192.0.2.1", "10 mx.example.com.",
 * "0 ." (null MX), "\"v=STSv1; id=1\"" (the joined strings, quoted, with '"', '\' and bytes
 * outside printable ASCII escaped), "3 1 1 0a1b..." (TLSA, lowercase hex; "-" for no data),
 * "target.example." for CNAME. Returns the length of the full text like snprintf; out is always
 * NUL-terminated when outlen > 0. */
size_t dns_rr_format(const struct dns_rr *rr, char *out, size_t outlen);

bool dns_status_temporary(enum dns_status st);
/* "OK", "NODATA", "NXDOMAIN", "SERVFAIL", "TIMEOUT", "MALFORMED", "ERROR", "BADNAME", "CANCELLED"
 */
const char *dns_status_name(enum dns_status st);
/* "A", "CNAME", "MX", "TXT", "AAAA", "RRSIG", "TLSA"; NULL for any other type */
const char *dns_type_name(uint16_t type);
/* "A", "aaaa", "Mx", ... (case-insensitive) -> the type; 0 when unknown. */
uint16_t dns_type_from_name(const char *name);

#endif
