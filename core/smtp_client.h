/* smtp_client.h - an asynchronous SMTP client on the event loop (RFC 5321, STARTTLS RFC 3207).
 *
 * One struct smtpc is one connection to one address. It connects (non-blocking, IPv4 or IPv6,
 * optionally from a bound source address), reads the greeting, says EHLO (HELO when EHLO is
 * refused), and when asked sends STARTTLS if offered, does the TLS handshake without blocking
 * (TLS 1.2 at least, SNI when a name is given, OpenSSL DANE when TLSA records are given) and says
 * EHLO again. Then it reports SMTPC_READY and waits: the caller looks at what happened (STARTTLS
 * offered or refused, the peer certificate and verification result, protocol and cipher) and
 * decides, with tlspolicy.h, whether to send over this connection. smtpc_send() sends one message
 * (RSET first when it is not the first message of the connection, MAIL FROM with SIZE when
 * offered, one RCPT TO per recipient with its own reply, DATA with dot-stuffing and CRLF line
 * ends) and reports SMTPC_SENT; several messages may follow on one connection. smtpc_quit()
 * says QUIT and reports SMTPC_CLOSED.
 *
 * Failures report SMTPC_FAILED with the step (smtpc_info()->stage), the kind (timeout, I/O,
 * unexpected reply, TLS) and the last reply. A TLS handshake failure says whether it came after
 * the server's 220 to STARTTLS (tls.after_220): then the connection is unusable and the caller may
 * reconnect without STARTTLS (the Preferred fallback) with a new smtpc.
 *
 * Callbacks run from the event loop, never from inside the call that started the step. A
 * callback may call smtpc_send, smtpc_quit or smtpc_free on its connection. */
#ifndef STSGATE_SMTP_CLIENT_H
#define STSGATE_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "evloop.h"
#include "tlspolicy.h"

#define SMTPC_TEXT_MAX 512

struct smtpc;

enum smtpc_event {
    SMTPC_CONNECTED, /* TCP connected: smtpc_info()->local_addr is known */
    SMTPC_READY,     /* greeting, EHLO (and TLS) done: smtpc_send() may be called */
    SMTPC_SENT,      /* the message given to smtpc_send() is done: see its replies */
    SMTPC_FAILED,    /* the connection is unusable: see smtpc_info() */
    SMTPC_CLOSED,    /* after smtpc_quit(): QUIT answered (or not) and closed */
};

enum smtpc_stage {
    SMTPC_ST_CONNECT,
    SMTPC_ST_GREETING,
    SMTPC_ST_EHLO,
    SMTPC_ST_HELO,
    SMTPC_ST_STARTTLS,
    SMTPC_ST_HANDSHAKE,
    SMTPC_ST_EHLO_TLS,
    SMTPC_ST_IDLE,
    SMTPC_ST_RSET,
    SMTPC_ST_MAIL,
    SMTPC_ST_RCPT,
    SMTPC_ST_DATA,
    SMTPC_ST_BODY,
    SMTPC_ST_QUIT,
    SMTPC_ST_CLOSED,
};

enum smtpc_error {
    SMTPC_ERR_NONE = 0,
    SMTPC_ERR_CONNECT, /* connect() failed */
    SMTPC_ERR_TIMEOUT, /* the step's timeout passed */
    SMTPC_ERR_IO,      /* read/write failed or the server closed */
    SMTPC_ERR_REPLY,   /* an unexpected reply (greeting not 2xx, EHLO and HELO refused, ...) */
    SMTPC_ERR_TLS,     /* the TLS handshake failed */
    SMTPC_ERR_PROTO,   /* a malformed or overlong reply */
};

struct smtpc_reply {
    int code;                  /* 0: none */
    char enh[16];              /* "2.0.0", "" when the server gave none */
    char text[SMTPC_TEXT_MAX]; /* the last line after the code: "2.0.0 Ok: queued as 4Yb3" */
};

struct smtpc_tls {
    bool offered;           /* the EHLO reply listed STARTTLS */
    bool attempted;         /* STARTTLS was sent */
    bool refused;           /* STARTTLS got a reply other than 220: the session stays plain */
    bool after_220;         /* the handshake failed after the server's 220 */
    bool established;       /* the handshake completed */
    char error[256];        /* handshake failure */
    char protocol[16];      /* "TLSv1.3" */
    char cipher[64];        /* "TLS_AES_256_GCM_SHA384" */
    long verify_result;     /* SSL_get_verify_result: X509_V_OK when the chain (or DANE) verified */
    char verify_error[128]; /* its text */
    int chain_len;          /* certificates the peer sent */
    bool dane_used;         /* TLSA records were given to OpenSSL */
    bool dane_ok;           /* a TLSA record authenticated the peer */
    char dane_match[32];    /* "3 1 1" */
};

struct smtpc_info {
    enum smtpc_stage stage; /* where it is, or where it failed */
    enum smtpc_error error;
    char detail[256];        /* the failure in words: "connection refused", "timeout" */
    struct smtpc_reply last; /* the last reply received */
    struct smtpc_reply greeting;
    bool esmtp; /* EHLO accepted */
    bool size_offered;
    uint64_t size_max; /* 0: no limit announced */
    bool eightbit;
    bool pipelining;   /* PIPELINING offered: each transaction goes out as one group */
    unsigned messages; /* messages sent on this connection (SENT reported) */
    char local_addr[46];
    uint16_t local_port;
    struct smtpc_tls tls;
};

/* Per-step timeouts in milliseconds; 0 takes the default. */
struct smtpc_timeouts {
    unsigned connect, greeting, ehlo, starttls, handshake, mail, rcpt, data, body, rset, quit;
};

struct smtpc_params {
    const char *addr;      /* IPv4 or IPv6 literal */
    uint16_t port;         /* 0: 25 */
    const char *bind_addr; /* NULL: any */
    const char *helo;      /* our name for EHLO/HELO */
    bool starttls;         /* send STARTTLS when offered */
    const char *sni;       /* NULL or "": none (address literals) */
    SSL_CTX *ctx;          /* from smtpc_ctx_new; needed when starttls */
    /* DANE: when dane_base is set, TLSA records of usage 2 and 3 are given to OpenSSL. */
    const char *dane_base;
    const char *dane_host; /* an extra name for DANE-TA (the MX name) */
    const struct tlspol_tlsa *tlsa;
    size_t ntlsa;
    struct smtpc_timeouts timeouts;
};

/* One message to send. The caller owns everything and must keep it until SMTPC_SENT/FAILED. */
struct smtpc_msg {
    const char *from; /* without brackets; "" for <> */
    const char *const *rcpt;
    size_t nrcpt;
    const char *data; /* headers and body: LF or CRLF line ends, not dot-stuffed */
    size_t len;
    /* results */
    struct smtpc_reply mail;
    struct smtpc_reply *rcpt_reply; /* the caller's array of nrcpt */
    struct smtpc_reply data_reply;  /* the reply after the final dot (or to DATA when refused) */
    size_t accepted;                /* recipients that got 2xx */
};

typedef void (*smtpc_cb)(struct smtpc *c, enum smtpc_event ev, void *arg);

/* The client TLS context: TLS 1.2 floor, the trusted CAs (the system list and/or the PEM list),
 * an optional client certificate, DANE enabled. NULL with err on failure. */
struct smtpc_ctx_params {
    bool system_cas;
    const char *ca_pem;   /* NULL: none */
    const char *cert_pem; /* NULL: no client certificate */
    const char *key_pem;
};
SSL_CTX *smtpc_ctx_new(const struct smtpc_ctx_params *p, char *err, size_t errlen);
/* The context a committed configuration asks for: the CAs of certconfig CERTAUTHORITY (system
 * list: OpenSSL's default paths, which honour SSL_CERT_FILE; custom list when enabled) and the
 * outbound certificate named in destconfig SETUP (none when that profile is missing). */
struct cfg_snapshot;
SSL_CTX *smtpc_ctx_from_config(const struct cfg_snapshot *s, char *err, size_t errlen);

/* Starts connecting. NULL with err when the socket cannot even be created (bad address). */
struct smtpc *smtpc_open(struct ev_loop *loop, const struct smtpc_params *p, smtpc_cb cb, void *arg,
                         char *err, size_t errlen);
/* After SMTPC_READY or SMTPC_SENT. Returns false when the connection is not idle. */
bool smtpc_send(struct smtpc *c, struct smtpc_msg *m);
/* QUIT, then SMTPC_CLOSED. From any state; a connection that is not idle is just closed. */
void smtpc_quit(struct smtpc *c);
/* Closes at once; no more callbacks. NULL is ignored. */
void smtpc_free(struct smtpc *c);

const struct smtpc_info *smtpc_info(const struct smtpc *c);
/* The peer's leaf certificate (borrowed, valid while c is), NULL before TLS. */
X509 *smtpc_peer_cert(const struct smtpc *c);
/* The peer's chain as sent (borrowed), NULL before TLS. */
STACK_OF(X509) * smtpc_peer_chain(const struct smtpc *c);

const char *smtpc_stage_name(enum smtpc_stage s);
void smtpc_set_arg(struct smtpc *c, void *arg);

#endif
