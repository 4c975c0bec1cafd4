/* db_queue.h - the durable mail queue: <data>/queue.db (SQLite, WAL).
 *
 * A message is its envelope sender, its data (headers and body, CRLF line ends, no dot-stuffing),
 * its size, received time and ICID, and one row per recipient (RID 0, 1, ... in RCPT order) with
 * its own state: queued, delivered or bounced, attempts, next attempt time, first attempt time and
 * last error. Promises:
 * - db_queue_store() writes any number of messages in ONE transaction with synchronous=FULL: when
 *   it returns DB_OK every one of them survives a crash or power cut (the listener answers 250
 *   only after that); when it fails, none of them is in the queue (group commit: one fsync for
 *   a batch);
 * - ICID, DCID and MID are unique and increasing for the life of the data directory. They are
 *   handed out from ranges reserved durably in the database, so an id costs a write only once per
 *   DB_QUEUE_ID_RANGE ids; ids reserved but unused before a restart are skipped, never reused;
 * - due recipients are found through a partial index on next_attempt (only queued, unclaimed
 *   rows are in it): never a table scan, whatever the queue holds;
 * - db_queue_claim() marks the recipients it returns as claimed (in work), so the next claim does
 *   not return them again; an outcome or db_queue_release() ends the claim, and opening the
 *   queue releases every claim (the only process that could hold one is gone: the agent's lock);
 * - an outcome changes one recipient; when every recipient of a message is final (delivered or
 *   bounced) the message and its recipients are deleted in the same transaction;
 * - outcomes, claims and delivernow use synchronous=NORMAL: a power cut may lose the last of
 *   them, which means a recipient is tried again (delivered at least once), never lost.
 * Every function returns a db_status; DB_ERROR writes the reason into err (when err is not NULL).
 * A handle is one SQLite connection: use it from one thread. Times are seconds since the epoch. */
#ifndef STSGATE_DB_QUEUE_H
#define STSGATE_DB_QUEUE_H

#include "db_cfg.h" /* enum db_status */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DB_QUEUE_ID_RANGE 1000
/* The longest address (RFC 5321 4.5.3.1.3 path: 256 octets including the brackets). */
#define DB_QUEUE_ADDR_MAX 256
#define DB_QUEUE_ERROR_MAX 1024

struct db_queue;

enum db_queue_id { DB_QUEUE_ICID = 0, DB_QUEUE_DCID, DB_QUEUE_MID };

enum db_queue_state { DB_QUEUE_QUEUED = 0, DB_QUEUE_DELIVERED = 1, DB_QUEUE_BOUNCED = 2 };

/* A message to store. The strings and data stay the caller's. */
struct db_queue_new {
    int64_t mid;  /* from db_queue_next_id(DB_QUEUE_MID) */
    int64_t icid; /* the incoming connection; 0 for a message the agent made (a DSN) */
    int64_t received;
    const char *sender; /* without brackets; "" for the null sender <> */
    const char *const *rcpt;
    size_t n_rcpt;
    const char *data;
    size_t size;
};

/* A recipient as claims and db_queue_message() return it. */
struct db_queue_rcpt {
    int64_t mid;
    int rid;
    char addr[DB_QUEUE_ADDR_MAX + 1];   /* without brackets */
    char domain[DB_QUEUE_ADDR_MAX + 1]; /* the part after the last '@', lower case */
    enum db_queue_state state;
    int attempts;
    int64_t received;      /* when the message was queued */
    int64_t first_attempt; /* 0: never tried */
    int64_t next_attempt;
    char last_error[DB_QUEUE_ERROR_MAX]; /* "" when none */
};

/* A whole message (db_queue_message); free with db_queue_message_free. */
struct db_queue_msg {
    int64_t mid;
    int64_t icid;
    int64_t received;
    char *sender; /* "" for <> */
    char *data;   /* size bytes, NUL-terminated for convenience */
    size_t size;
    struct db_queue_rcpt *rcpt; /* every recipient still in the queue, final or not, by RID */
    size_t n_rcpt;
};

enum db_queue_outcome_kind { DB_QUEUE_OUT_DELIVERED, DB_QUEUE_OUT_DEFERRED, DB_QUEUE_OUT_BOUNCED };

/* What one attempt did to one recipient. */
struct db_queue_outcome {
    int64_t mid;
    int rid;
    enum db_queue_outcome_kind kind;
    int64_t when;         /* the attempt's time: sets first_attempt on the first one */
    int64_t next_attempt; /* DEFERRED: when it becomes due again */
    const char *reason;   /* the reply or error; NULL or "" for none (stored as last_error) */
};

struct db_queue_counts {
    int64_t messages;
    int64_t rcpt_unattempted; /* queued, never tried */
    int64_t rcpt_attempted;   /* queued, tried at least once (deferred) */
    int64_t rcpt_claimed;     /* queued and in work right now */
    int64_t bytes;            /* total message size */
    int64_t oldest_received;  /* 0 when empty */
    int64_t next_due;         /* earliest next_attempt of an unclaimed queued recipient; 0: none */
};

/* Opens (creating and migrating when needed) <datadir>/queue.db and releases every claim. */
enum db_status db_queue_open(const char *datadir, struct db_queue **out, char *err, size_t errlen);
void db_queue_close(struct db_queue *q);

/* The next id of a kind (see the promise above). */
enum db_status db_queue_next_id(struct db_queue *q, enum db_queue_id kind, int64_t *id, char *err,
                                size_t errlen);

/* Stores n messages in one durable transaction (all or none). */
enum db_status db_queue_store(struct db_queue *q, const struct db_queue_new *msgs, size_t n,
                              char *err, size_t errlen);

/* Up to max queued, unclaimed recipients with next_attempt <= now, oldest next_attempt first
 * (then MID, RID), claimed for the caller in one transaction. *n is how many were written. */
enum db_status db_queue_claim(struct db_queue *q, int64_t now, struct db_queue_rcpt *out,
                              size_t max, size_t *n, char *err, size_t errlen);
/* Ends the claim of one recipient without an attempt (drain, connection given up before trying). */
enum db_status db_queue_release(struct db_queue *q, int64_t mid, int rid, char *err, size_t errlen);
/* When the earliest unclaimed queued recipient becomes due; DB_NOTFOUND when none is waiting. */
enum db_status db_queue_next_due(struct db_queue *q, int64_t *when, char *err, size_t errlen);

/* The message with its recipients. DB_NOTFOUND when it is not (or no longer) queued. */
enum db_status db_queue_message(struct db_queue *q, int64_t mid, struct db_queue_msg *out,
                                char *err, size_t errlen);
void db_queue_message_free(struct db_queue_msg *m);

/* Records n outcomes in one transaction: attempts+1, first_attempt set once, last_error, the
 * state or next_attempt, the claim ended. Messages whose recipients are now all final are
 * deleted; finished (may be NULL) is called for each of them after the commit. An outcome for a
 * recipient that is not queued is ignored. */
enum db_status db_queue_record(struct db_queue *q, const struct db_queue_outcome *v, size_t n,
                               void (*finished)(void *arg, int64_t mid), void *arg, char *err,
                               size_t errlen);

/* delivernow: every queued, unclaimed recipient due later than now becomes due now. *changed
 * gets how many. */
enum db_status db_queue_all_due(struct db_queue *q, int64_t now, int64_t *changed, char *err,
                                size_t errlen);

enum db_status db_queue_counts(struct db_queue *q, struct db_queue_counts *out, char *err,
                               size_t errlen);

#endif
