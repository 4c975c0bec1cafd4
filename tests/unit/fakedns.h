/* fakedns.h - MOCK DNS SERVER for unit tests. Not a resolver, not for production.
 *
 * It exists only for the replies a real resolver will not produce on demand: an AD bit from a
 * server that should not be believed, a truncated (TC) UDP reply that must be retried over TCP,
 * a reply that never comes, REFUSED, a malformed TLSA record. Everything a real resolver can do
 * (signed / unsigned / bogus zones) is tested against the lab's unbound instead.
 *
 * It listens on 127.0.0.1, on one ephemeral port for both UDP and TCP, in its own thread, and asks
 * a handler for each query it receives. The handler writes the reply bytes (helpers below build
 * them from the query) or returns 0 to stay silent. It counts the queries it saw, by transport,
 * and remembers whether the last one asked for DNSSEC (AD bit, DO bit).
 *
 * Everything is file-local: a test includes "fakedns.c" directly (the unit test glob only builds
 * test_*.c files).
 */
#ifndef STSGATE_FAKEDNS_H
#define STSGATE_FAKEDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A parsed view of the query, for the handler. */
struct fakedns_query {
    const unsigned char *buf;
    size_t len;
    char name[256]; /* the question name, dotted, lowercase, no trailing dot */
    uint16_t type;
    bool tcp;
};

/* The reply being built: the handler fills it with fakedns_reply_*(). */
struct fakedns_reply {
    unsigned char b[4096];
    size_t len;
    bool overflow;
};

/* Returns true to send `reply`, false to send nothing. */
typedef bool (*fakedns_handler)(const struct fakedns_query *q, struct fakedns_reply *reply,
                                void *arg);

struct fakedns;

#endif
