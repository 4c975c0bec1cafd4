/* test_smtp_client.c - core/smtp_client.c against a small scripted SMTP server in a thread (plain
 * TCP on 127.0.0.1): multi-line EHLO replies and their keywords, HELO after a refused EHLO,
 * per-recipient replies, dot-stuffing and CRLF line ends on the wire, SIZE, RSET before a message
 * only when the previous transaction was left open, QUIT, a refused greeting, a silent server (step
 * timeout) and a refused connection. The same session runs with PIPELINING offered (each
 * transaction arrives as one group: the server sees the next commands already waiting) and without
 * (one command per reply, DATA skipped when no recipient is accepted), and against a server that
 * answers 354 to a pipelined DATA with no recipient (the client ends it with "." alone). TLS is
 * covered against real servers in the lab (tests/lab/delivery). */
#include "smtp_client.h"
#include "t.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

enum mode { NORMAL, NO_PIPELINING, DATA_354, HELO_ONLY, SILENT, REJECT };

struct server {
    int lfd;
    uint16_t port;
    enum mode mode;
    pthread_t th;
    char transcript[65536]; /* everything the client sent */
    size_t tlen;
    int early; /* commands read while more of the client's input was already waiting */
};

static void srv_send(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* One line from fd (without CRLF) into buf; false at EOF. */
static bool srv_line(struct server *s, int fd, char *buf, size_t len)
{
    size_t n = 0;
    for (;;) {
        char c;
        if (read(fd, &c, 1) != 1)
            return false;
        if (s->tlen < sizeof s->transcript - 1)
            s->transcript[s->tlen++] = c;
        if (c == '\n') {
            if (n > 0 && buf[n - 1] == '\r')
                n--;
            buf[n] = '\0';
            return true;
        }
        if (n < len - 1)
            buf[n++] = c;
    }
}

static void *srv_main(void *arg)
{
    struct server *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char line[2048];
    if (s->mode == SILENT) {
        while (srv_line(s, fd, line, sizeof line))
            ;
        close(fd);
        return NULL;
    }
    if (s->mode == REJECT) {
        srv_send(fd, "554 5.7.1 go away\r\n");
        while (srv_line(s, fd, line, sizeof line))
            ;
        close(fd);
        return NULL;
    }
    srv_send(fd, "220 test.example ESMTP\r\n");
    bool in_data = false, mail = false;
    int rcpts = 0;
    while (srv_line(s, fd, line, sizeof line)) {
        if (in_data) {
            if (strcmp(line, ".") == 0) {
                in_data = false;
                srv_send(fd, rcpts ? "250 2.0.0 Ok: queued as ABC\r\n"
                                   : "554 5.5.1 Error: no valid recipients\r\n");
            }
            continue;
        }
        int waiting = 0;
        if (ioctl(fd, FIONREAD, &waiting) == 0 && waiting > 0)
            s->early++;
        if (strncmp(line, "EHLO", 4) == 0) {
            if (s->mode == HELO_ONLY)
                srv_send(fd, "502 5.5.2 no EHLO here\r\n");
            else if (s->mode == NO_PIPELINING)
                srv_send(fd, "250-test.example\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n");
            else
                srv_send(fd, "250-test.example\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n"
                             "250 8BITMIME\r\n");
        } else if (strncmp(line, "HELO", 4) == 0) {
            srv_send(fd, "250 test.example\r\n");
        } else if (strncmp(line, "MAIL FROM:", 10) == 0) {
            rcpts = 0;
            mail = !strstr(line, "<bad@");
            srv_send(fd, mail ? "250 2.1.0 Ok\r\n" : "553 5.1.8 bad sender\r\n");
        } else if (strncmp(line, "RCPT TO:", 8) == 0) {
            if (!mail)
                srv_send(fd, "503 5.5.1 Error: need MAIL command\r\n");
            else if (strstr(line, "<no"))
                srv_send(fd, "550 5.1.1 <no> unknown\r\n");
            else if (strstr(line, "<later"))
                srv_send(fd, "451 4.3.0 later\r\n");
            else {
                rcpts++;
                srv_send(fd, "250 2.1.5 Ok\r\n");
            }
        } else if (strcmp(line, "DATA") == 0) {
            if (rcpts == 0 && s->mode != DATA_354) {
                srv_send(fd, "554 5.5.1 no valid recipients\r\n");
            } else {
                in_data = true;
                srv_send(fd, "354 End data with <CR><LF>.<CR><LF>\r\n");
            }
        } else if (strcmp(line, "RSET") == 0) {
            mail = false;
            srv_send(fd, "250 2.0.0 Ok\r\n");
        } else if (strcmp(line, "QUIT") == 0) {
            srv_send(fd, "221 2.0.0 Bye\r\n");
            break;
        } else {
            srv_send(fd, "500 5.5.2 what\r\n");
        }
    }
    close(fd);
    return NULL;
}

static void srv_start(struct server *s, enum mode mode)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 4) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0) {
        perror("server");
        exit(1);
    }
    s->port = ntohs(a.sin_port);
    pthread_create(&s->th, NULL, srv_main, s);
}

static void srv_stop(struct server *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->th, NULL);
    close(s->lfd);
}

/* ---- the client side ---- */

struct ctl {
    struct ev_loop *loop;
    enum smtpc_event last;
    int events;
    bool connected;
};

static void on_event(struct smtpc *c, enum smtpc_event ev, void *arg)
{
    (void)c;
    struct ctl *k = arg;
    if (ev == SMTPC_CONNECTED) {
        k->connected = true;
        return;
    }
    k->last = ev;
    k->events++;
}

static bool wait_event(struct ctl *k)
{
    int before = k->events;
    for (int i = 0; i < 200 && k->events == before; i++)
        ev_run_once(k->loop, 50);
    return k->events > before;
}

static struct smtpc *open_client(struct ctl *k, uint16_t port, unsigned timeout_ms)
{
    struct smtpc_params p = {.addr = "127.0.0.1", .port = port, .helo = "client.example"};
    p.timeouts.greeting = timeout_ms;
    char err[256];
    struct smtpc *c = smtpc_open(k->loop, &p, on_event, k, err, sizeof err);
    T_CHECK(c != NULL);
    return c;
}

/* One session of three messages; mode is NORMAL (PIPELINING offered) or NO_PIPELINING. */
static void test_session(enum mode mode)
{
    bool pipe = mode == NORMAL;
    struct server s;
    srv_start(&s, mode);
    struct ctl k = {.loop = ev_loop_new()};
    struct smtpc *c = open_client(&k, s.port, 0);
    T_CHECK(wait_event(&k));
    T_CHECK(k.connected);
    T_EQ_INT(k.last, SMTPC_READY);
    const struct smtpc_info *in = smtpc_info(c);
    T_CHECK(in->esmtp);
    T_CHECK(in->size_offered);
    T_EQ_INT(in->size_max, 1000000);
    T_CHECK(in->eightbit);
    T_CHECK(in->pipelining == pipe);
    T_CHECK(!in->tls.offered);
    T_EQ_INT(in->greeting.code, 220);

    /* message 1: one accepted, one refused, one deferred recipient; a body to stuff */
    const char *rc[3] = {"yes@example.org", "no@example.org", "later@example.org"};
    struct smtpc_reply rr[3];
    const char *body = "Subject: t\n\n.leading dot\nbare LF\r\nCRLF\n..two\nlast no newline";
    struct smtpc_msg m = {.from = "a@example.net",
                          .rcpt = rc,
                          .nrcpt = 3,
                          .data = body,
                          .len = strlen(body),
                          .rcpt_reply = rr};
    T_CHECK(smtpc_send(c, &m));
    T_CHECK(!smtpc_send(c, &m)); /* not idle */
    T_CHECK(wait_event(&k));
    T_EQ_INT(k.last, SMTPC_SENT);
    T_EQ_INT(m.mail.code, 250);
    T_EQ_INT(rr[0].code, 250);
    T_EQ_STR(rr[0].enh, "2.1.5");
    T_EQ_INT(rr[1].code, 550);
    T_EQ_STR(rr[1].enh, "5.1.1");
    T_EQ_INT(rr[2].code, 451);
    T_EQ_INT(m.accepted, 1);
    T_EQ_INT(m.data_reply.code, 250);
    T_EQ_STR(m.data_reply.text, "2.0.0 Ok: queued as ABC");

    /* message 2 on the same connection: no accepted recipient (pipelined, DATA went out with the
     * group and was refused; else DATA is not sent); the recipient's reply says why */
    const char *rc2[1] = {"no2@example.org"};
    struct smtpc_reply rr2[1];
    struct smtpc_msg m2 = {
        .from = "", .rcpt = rc2, .nrcpt = 1, .data = "x\r\n", .len = 3, .rcpt_reply = rr2};
    T_CHECK(smtpc_send(c, &m2));
    T_CHECK(wait_event(&k));
    T_EQ_INT(k.last, SMTPC_SENT);
    T_EQ_INT(rr2[0].code, 550);
    T_EQ_INT(m2.accepted, 0);
    T_EQ_INT(m2.data_reply.code, 550);

    /* message 3: the sender refused, every recipient gets that reply */
    const char *rc3[2] = {"yes@example.org", "yes2@example.org"};
    struct smtpc_reply rr3[2];
    struct smtpc_msg m3 = {.from = "bad@example.net",
                           .rcpt = rc3,
                           .nrcpt = 2,
                           .data = "x\r\n",
                           .len = 3,
                           .rcpt_reply = rr3};
    T_CHECK(smtpc_send(c, &m3));
    T_CHECK(wait_event(&k));
    T_EQ_INT(m3.mail.code, 553);
    T_EQ_INT(rr3[0].code, 553); /* not the 503 a pipelined RCPT got after it */
    T_EQ_INT(rr3[1].code, 553);
    T_EQ_INT(m3.data_reply.code, 553);
    T_EQ_INT(m3.accepted, 0);
    T_EQ_INT(smtpc_info(c)->messages, 3);

    /* message 4: the session goes on normally after the refusals */
    const char *rc4[1] = {"yes4@example.org"};
    struct smtpc_reply rr4[1];
    struct smtpc_msg m4 = {.from = "c@example.net",
                           .rcpt = rc4,
                           .nrcpt = 1,
                           .data = "y\r\n",
                           .len = 3,
                           .rcpt_reply = rr4};
    T_CHECK(smtpc_send(c, &m4));
    T_CHECK(wait_event(&k));
    T_EQ_INT(k.last, SMTPC_SENT);
    T_EQ_INT(m4.accepted, 1);
    T_EQ_INT(m4.data_reply.code, 250);

    smtpc_quit(c);
    T_CHECK(wait_event(&k));
    T_EQ_INT(k.last, SMTPC_CLOSED);
    smtpc_free(c);
    srv_stop(&s);

    s.transcript[s.tlen] = '\0';
    const char *t = s.transcript;
    T_CHECK(strstr(t, "EHLO client.example\r\n") != NULL);
    T_CHECK(strstr(t, "MAIL FROM:<a@example.net> SIZE=") != NULL);
    T_CHECK(strstr(t, "RCPT TO:<yes@example.org>\r\nRCPT TO:<no@example.org>\r\n") != NULL);
    T_CHECK(strstr(t, "Subject: t\r\n\r\n..leading dot\r\nbare LF\r\nCRLF\r\n...two\r\n"
                      "last no newline\r\n.\r\n") != NULL);
    /* after a transaction that ended with the final dot, no RSET */
    T_CHECK(strstr(t, "last no newline\r\n.\r\nMAIL FROM:<>") != NULL);
    if (pipe) {
        /* MAIL accepted, no recipient: the transaction stays open, RSET before the next */
        T_CHECK(strstr(t, "RCPT TO:<no2@example.org>\r\nDATA\r\nRSET\r\nMAIL FROM:<bad@") != NULL);
        /* MAIL refused: nothing open */
        T_CHECK(strstr(t, "MAIL FROM:<bad@example.net> SIZE=3\r\nRCPT TO:<yes@example.org>\r\n"
                          "RCPT TO:<yes2@example.org>\r\nDATA\r\nMAIL FROM:<c@") != NULL);
        T_CHECK(s.early >= 4 * 2); /* each group: RSET or MAIL and RCPT found DATA waiting */
    } else {
        T_CHECK(strstr(t, "RCPT TO:<no2@example.org>\r\nRSET\r\nMAIL FROM:<bad@") !=
                NULL); /* no DATA */
        T_CHECK(strstr(t, "MAIL FROM:<bad@example.net> SIZE=3\r\nMAIL FROM:<c@") != NULL);
        T_EQ_INT(s.early, 0); /* one command per reply */
    }
    T_CHECK(strstr(t, "QUIT\r\n") != NULL);
    const char *bare = t;
    bool bare_lf = false;
    for (; *bare; bare++)
        if (*bare == '\n' && (bare == t || bare[-1] != '\r'))
            bare_lf = true;
    T_CHECK(!bare_lf);
    ev_loop_free(k.loop);
}

/* A server that answers 354 to a pipelined DATA although it refused every recipient: the client
 * ends the data at once with "." and the recipients' replies stand. */
static void test_data_without_recipients(void)
{
    struct server s;
    srv_start(&s, DATA_354);
    struct ctl k = {.loop = ev_loop_new()};
    struct smtpc *c = open_client(&k, s.port, 0);
    T_CHECK(wait_event(&k));
    T_EQ_INT(k.last, SMTPC_READY);
    const char *rc[2] = {"no1@example.org", "no2@example.org"};
    struct smtpc_reply rr[2];
    struct smtpc_msg m = {.from = "a@example.net",
                          .rcpt = rc,
                          .nrcpt = 2,
                          .data = "secret body\r\n",
                          .len = 13,
                          .rcpt_reply = rr};
    T_CHECK(smtpc_send(c, &m));
    T_CHECK(wait_event(&k));
    T_EQ_INT(k.last, SMTPC_SENT);
    T_EQ_INT(m.accepted, 0);
    T_EQ_INT(rr[0].code, 550);
    T_EQ_INT(m.data_reply.code, 550);
    smtpc_quit(c);
    T_CHECK(wait_event(&k));
    smtpc_free(c);
    srv_stop(&s);
    s.transcript[s.tlen] = '\0';
    T_CHECK(strstr(s.transcript, "DATA\r\n.\r\nQUIT\r\n") != NULL);
    T_CHECK(strstr(s.transcript, "secret body") == NULL);
    ev_loop_free(k.loop);
}

static void test_helo_and_failures(void)
{
    struct server s;
    struct ctl k = {.loop = ev_loop_new()};

    srv_start(&s, HELO_ONLY);
    struct smtpc *c = open_client(&k, s.port, 0);
    T_CHECK(wait_event(&k));
    T_EQ_INT(k.last, SMTPC_READY);
    T_CHECK(!smtpc_info(c)->esmtp);
    smtpc_quit(c);
    T_CHECK(wait_event(&k));
    smtpc_free(c);
    srv_stop(&s);
    s.transcript[s.tlen] = '\0';
    T_CHECK(strstr(s.transcript, "EHLO client.example\r\nHELO client.example\r\n") != NULL);

    srv_start(&s, REJECT);
    c = open_client(&k, s.port, 0);
    T_CHECK(wait_event(&k));
    T_EQ_INT(k.last, SMTPC_FAILED);
    T_EQ_INT(smtpc_info(c)->error, SMTPC_ERR_REPLY);
    T_EQ_INT(smtpc_info(c)->stage, SMTPC_ST_GREETING);
    T_EQ_INT(smtpc_info(c)->last.code, 554);
    smtpc_free(c);
    srv_stop(&s);

    srv_start(&s, SILENT);
    c = open_client(&k, s.port, 300);
    T_CHECK(wait_event(&k));
    T_EQ_INT(k.last, SMTPC_FAILED);
    T_EQ_INT(smtpc_info(c)->error, SMTPC_ERR_TIMEOUT);
    T_EQ_INT(smtpc_info(c)->stage, SMTPC_ST_GREETING);
    smtpc_free(c);
    srv_stop(&s);

    /* a port nobody listens on: refused, reported from the loop */
    uint16_t dead = s.port; /* the listener of the last server is closed now */
    k.connected = false;
    c = open_client(&k, dead, 0);
    T_CHECK(wait_event(&k));
    T_EQ_INT(k.last, SMTPC_FAILED);
    T_EQ_INT(smtpc_info(c)->error, SMTPC_ERR_CONNECT);
    T_CHECK(!k.connected);
    smtpc_free(c);

    /* a bad address fails at once */
    struct smtpc_params p = {.addr = "not-an-address"};
    char err[128];
    T_CHECK(smtpc_open(k.loop, &p, on_event, &k, err, sizeof err) == NULL);
    T_EQ_INT(ev_run_once(k.loop, 0) >= 0, 1);
    T_EQ_INT(ev_timer_count(k.loop), 0); /* nothing left behind */
    ev_loop_free(k.loop);
}

int main(void)
{
    test_session(NORMAL);
    test_session(NO_PIPELINING);
    test_data_without_recipients();
    test_helo_and_failures();
    return t_done();
}
