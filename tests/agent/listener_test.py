#!/usr/bin/env python3
"""listener_test.py - the real stsgated's listener, process and control socket, without the lab.

usage: listener_test.py STSGATED STSGATE GROUP

Each GROUP starts its own agents on 127.0.0.1 with a free port and a temp data directory:
  smtp      relaying, malformed commands, bare LF, overlong lines, size and recipient limits
            (each followed by a good transaction on the same session), PIPELINING, the
            Received header, dot-unstuffing, the receiving log lines
  tls       STARTTLS with openssl s_client and with Python's ssl; pipelined commands after
            STARTTLS are discarded
  durable   every 250 is for a message already in queue.db; --max-conn
  process   SIGTERM drain (exit 0), a second agent refused, control socket status/delivernow
            and the shell's status when no agent runs, a data directory path longer than a
            socket address
  backup    the online backup and the restore of docs/operations.md: the committed
            configuration and the queued messages come back
Prints one line per failed check and "N passed, N failed"; exits 1 on any failure."""
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import SMTP, Agent, code, queue_rows, queued_mid, rmtree, tempdir  # noqa: E402

STSGATED, STSGATE = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAILED: %s" % what, flush=True)


def eq(got, want, what):
    check(got == want, "%s: got %r, want %r" % (what, got, want))


def starts(got, prefix, what):
    check(isinstance(got, str) and got.startswith(prefix), "%s: got %r, want %r..." %
          (what, got, prefix))


TEMPS = []


def new_temp():
    d = tempdir("stsgated-test-")
    TEMPS.append(d)
    return d


def new_agent(args=(), host="127.0.0.1", datadir=None):
    base = new_temp()
    d = datadir or os.path.join(base, "data")
    return Agent(STSGATED, d, host=host, args=args).start()


def session(agent, ehlo=True):
    c = SMTP(agent.host, agent.port)
    starts(c.reply(), "220 ", "banner")
    if ehlo:
        starts(c.cmd("EHLO client.example"), "250-", "EHLO")
    return c


def good_transaction(c, agent, what, body="Subject: ok\r\n\r\nfine\r\n"):
    """A whole transaction that must succeed on session c, and its message in queue.db."""
    eq(code(c.cmd("MAIL FROM:<alice@example.org>")), "250 2.1.0", what + ": MAIL")
    eq(code(c.cmd("RCPT TO:<bob@[127.0.0.254]>")), "250 2.1.5", what + ": RCPT")
    eq(code(c.cmd("DATA")), "354", what + ": DATA")
    r = c.cmd(body + ".")
    eq(code(r), "250 2.0.0", what + ": end of data")
    mid = queued_mid(r)
    rows = queue_rows(agent.datadir, "SELECT sender FROM msg WHERE mid = ?", (mid,))
    check(rows == [("alice@example.org",)] or handled(agent, mid),
          "%s: message %s in queue.db: %r" % (what, mid, rows))
    return mid


def handled(agent, mid):
    """Delivery has already taken the message out of the queue (so it was in it): only possible
    when something listens where the test sends (recipients are @[127.0.0.254])."""
    return re.search(r"(Message finished MID %d |Bounced: DCID \d+ MID %d |"
                     r"Delivery start DCID \d+ MID %d )" % (mid, mid, mid), agent.log()) is not None


def msg_count(agent):
    return queue_rows(agent.datadir, "SELECT count(*) FROM msg")[0][0]


def not_queued(agent, reason, what):
    """The last message refused for reason was logged as refused, never queued, and is not in
    queue.db."""
    log = agent.log()
    m = re.findall(r"MID (\d+) ICID \d+ rejected: " + re.escape(reason), log)
    check(len(m) > 0, "%s: refusal logged" % what)
    if m:
        mid = int(m[-1])
        check("MID %d queued for delivery" % mid not in log, "%s: not queued (log)" % what)
        eq(queue_rows(agent.datadir, "SELECT count(*) FROM msg WHERE mid = ?", (mid,))[0][0], 0,
           "%s: not in queue.db" % what)


# ---- smtp ----

def test_smtp():
    a = new_agent(args=["--max-size", "10000", "--max-rcpt", "3"])
    try:
        c = session(a, ehlo=False)
        r = c.cmd("EHLO client.example")
        lines = r.split("\n")
        eq(lines[-1], "250 8BITMIME", "EHLO last line")
        for kw in ("250-PIPELINING", "250-SIZE 10000", "250-ENHANCEDSTATUSCODES",
                   "250-STARTTLS"):
            check(kw in lines, "EHLO advertises %s: %r" % (kw, lines))

        # malformed commands, each followed by a good transaction
        eq(code(c.cmd("FOO bar")), "500 5.5.2", "unknown command")
        eq(code(c.cmd("MAIL FROM:alice@example.org")), "501 5.1.7", "sender without <>")
        eq(code(c.cmd("MAIL FROM:<alice@@example.org>")), "501 5.1.7", "double @")
        eq(code(c.cmd("MAIL FROM:<alice@exa mple.org>")), "501 5.1.7", "space in domain")
        eq(code(c.cmd("MAIL FROM:<alice@-example.org>")), "501 5.1.7", "label starts with -")
        eq(code(c.cmd("MAIL FROM:<alice@example.org> FOO=1")), "555 5.5.4", "unknown parameter")
        eq(code(c.cmd("RCPT TO:<bob@[127.0.0.254]>")), "503 5.5.1", "RCPT before MAIL")
        eq(code(c.cmd("DATA")), "503 5.5.1", "DATA before MAIL")
        eq(code(c.cmd("EHLO")), "501 5.5.4", "EHLO without a name")
        c.send(b"EHLO caf\xc3\xa9.example\r\n")
        eq(code(c.reply()), "501 5.5.4", "EHLO with 8-bit bytes")
        c.send(b"NOOP\x00\r\n")
        eq(code(c.reply()), "500 5.5.2", "NUL in a command")
        c.send(b"MAIL FROM:<\xc3\xa9@example.org>\r\n")
        eq(code(c.reply()), "501 5.1.7", "8-bit sender without SMTPUTF8")
        eq(code(c.cmd("MAIL FROM:<a@example.org> SIZE=abc")), "501 5.5.4", "bad SIZE")
        starts(c.cmd("EHLO client.example"), "250-", "EHLO again")
        eq(code(c.cmd("MAIL FROM:<>")), "250 2.1.0", "null sender")
        eq(code(c.cmd("MAIL FROM:<a@example.org>")), "503 5.5.1", "nested MAIL")
        eq(code(c.cmd("RCPT TO:<>")), "501 5.1.3", "null recipient")
        eq(code(c.cmd("RCPT TO:<postmaster>")), "501 5.1.3", "recipient without a domain")
        eq(code(c.cmd("DATA")), "554 5.5.1", "DATA without recipients")
        eq(code(c.cmd("RCPT TO:<\"quoted local\"@[127.0.0.254]>")), "250 2.1.5", "quoted local part")
        eq(code(c.cmd("RCPT TO:<x@[192.0.2.1]>")), "250 2.1.5", "address literal")
        eq(code(c.cmd("RSET")), "250 2.0.0", "RSET")
        eq(code(c.cmd("NOOP")), "250 2.0.0", "NOOP")
        eq(code(c.cmd("VRFY bob")), "252 2.0.0", "VRFY")
        eq(code(c.cmd("HELP")), "214 2.0.0", "HELP")
        good_transaction(c, a, "after malformed commands")

        # bare LF in a command line, then in the message
        c.send("NOOP\n")
        eq(code(c.reply()), "500 5.5.2", "bare LF command")
        eq(code(c.cmd("NOOP")), "250 2.0.0", "NOOP after bare LF")
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@[127.0.0.254]>")
        eq(code(c.cmd("DATA")), "354", "DATA (bare LF message)")
        # "\n.\n" must not end the message (no smuggling); only CRLF.CRLF does
        c.send("Subject: bare\n\nline\n.\nMAIL FROM:<evil@example.org>\r\n")
        r = c.cmd(".")
        eq(code(r), "550 5.6.0", "bare LF message refused")
        not_queued(a, "bare LF in the message", "bare LF message")
        good_transaction(c, a, "after bare LF")

        # overlong lines
        eq(code(c.cmd("NOOP " + "x" * 3000)), "500 5.5.2", "overlong command line")
        eq(code(c.cmd("NOOP")), "250 2.0.0", "NOOP after overlong line")
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@[127.0.0.254]>")
        c.cmd("DATA")
        r = c.cmd("Subject: long\r\n\r\n" + "y" * 5000 + "\r\n.")
        eq(code(r), "500 5.5.2", "overlong message line refused")
        not_queued(a, "a line exceeds", "overlong message")
        good_transaction(c, a, "after overlong line")
        # 1500 octets is over RFC 5321's 1000 but within our margin
        good_transaction(c, a, "1500-octet line", "Subject: margin\r\n\r\n" + "z" * 1500 + "\r\n")

        # size
        eq(code(c.cmd("MAIL FROM:<alice@example.org> SIZE=20000")), "552 5.3.4", "SIZE over")
        c.cmd("MAIL FROM:<alice@example.org> SIZE=100 BODY=8BITMIME")
        c.cmd("RCPT TO:<bob@[127.0.0.254]>")
        c.cmd("DATA")
        big = "Subject: big\r\n\r\n" + ("0123456789" * 10 + "\r\n") * 200
        eq(code(c.cmd(big + ".")), "552 5.3.4", "message over --max-size")
        not_queued(a, "message size exceeds", "oversize message")
        good_transaction(c, a, "after oversize")

        # recipients
        c.cmd("MAIL FROM:<alice@example.org>")
        for i in range(3):
            eq(code(c.cmd("RCPT TO:<r%d@[127.0.0.254]>" % i)), "250 2.1.5", "RCPT %d" % i)
        eq(code(c.cmd("RCPT TO:<r3@[127.0.0.254]>")), "452 4.5.3", "RCPT over --max-rcpt")
        c.cmd("DATA")
        mid = queued_mid(c.cmd("Subject: three\r\n\r\n..dot\r\n."))
        eq(queue_rows(a.datadir, "SELECT count(*) FROM rcpt WHERE mid = ?", (mid,))[0][0], 3,
           "three recipients queued")
        data = queue_rows(a.datadir, "SELECT data FROM msg WHERE mid = ?", (mid,))[0][0]
        data = data.decode() if isinstance(data, bytes) else data
        starts(data, "Received: from client.example ([127.0.0.1])\r\n\tby ", "Received header")
        check(" with ESMTP id %d;" % mid in data, "Received names the MID: %r" % data[:200])
        check(data.endswith("\r\n\r\n.dot\r\n"), "dot-unstuffing: %r" % data[-30:])

        # PIPELINING: a whole transaction and QUIT in two writes
        p = session(a)
        p.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@[127.0.0.254]>\r\n"
               "RCPT TO:<carol@[127.0.0.254]>\r\nDATA\r\n")
        eq([code(p.reply()) for _ in range(4)], ["250 2.1.0", "250 2.1.5", "250 2.1.5", "354"],
           "pipelined replies")
        p.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        eq([code(p.reply()) for _ in range(3)], ["250 2.0.0", "250 2.0.0", "221 2.0.0"],
           "pipelined end of data, NOOP, QUIT")
        check(p.closed(), "closed after QUIT")
        p.close()
        c.cmd("QUIT")
        c.close()
        log = a.log()
        for want in ("Info: New SMTP ICID ", "Info: Start MID ", " From: <alice@example.org>",
                     " RID 0 To: <bob@[127.0.0.254]>", " bytes from <alice@example.org>",
                     " queued for delivery", " close"):
            check(want in log, "mail_logs has %r" % want)
    finally:
        eq(a.stop(), 0, "smtp agent exit status")

    # relaying: 127.0.0.1 is not in --relay
    a = new_agent(args=["--relay", "10.0.0.0/8", "--relay", "::1/128"])
    try:
        c = session(a)
        eq(code(c.cmd("MAIL FROM:<alice@example.org>")), "250 2.1.0", "MAIL from a foreign client")
        r = c.cmd("RCPT TO:<bob@[127.0.0.254]>")
        eq(code(r), "550 5.7.1", "relay denied")
        check("Relay access denied" in r, "relay denial says why: %r" % r)
        eq(code(c.cmd("DATA")), "554 5.5.1", "no recipients after denial")
        eq(code(c.cmd("RSET")), "250 2.0.0", "session survives a denial")
        eq(msg_count(a), 0, "nothing queued from a foreign client")
        c.close()
    finally:
        eq(a.stop(), 0, "relay agent exit status")


# ---- tls ----

def test_tls():
    a = new_agent()
    try:
        script = ("EHLO tls.example\nmail from:<alice@example.org>\nrcpt to:<bob@[127.0.0.254]>\n"
                  "data\nSubject: tls\n\nover tls\n.\nquit\n")
        p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-crlf", "-quiet",
                            "-nocommands", "-connect", "%s:%d" % (a.host, a.port)],
                           input=script.encode(), capture_output=True, timeout=30)
        out = p.stdout.decode(errors="replace")
        check("250 2.0.0 Ok: queued as" in out, "s_client transaction: %r %r" %
              (out, p.stderr[-500:]))
        check("221 2.0.0" in out, "s_client QUIT")
        log = a.log()
        check(" TLS success protocol TLSv1." in log, "TLS success line")
        mid = queued_mid(out)
        data = queue_rows(a.datadir, "SELECT data FROM msg WHERE mid = ?", (mid,))
        check(data and b"with ESMTPS id" in (data[0][0] if isinstance(data[0][0], bytes)
                                               else data[0][0].encode()),
              "Received says ESMTPS")

        # commands pipelined after STARTTLS are dropped, not answered inside TLS
        c = session(a)
        c.send("STARTTLS\r\nNOOP\r\n")
        eq(code(c.reply()), "220 2.0.0", "STARTTLS")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        t = ctx.wrap_socket(c.sock, server_hostname="localhost")
        c.sock = t
        # the certificate served is the committed SETUP profile's: the factory Demo
        import sqlite3
        db = sqlite3.connect(os.path.join(a.datadir, "config.db"))
        body = db.execute("SELECT body FROM units WHERE kind = 'certconfig' AND name = 'Demo' "
                          "AND vto IS NULL").fetchone()[0]
        db.close()
        pem = ""
        for line in body.split("\n"):
            if line.startswith("certificate="):
                pem = line[len("certificate="):].replace("\\n", "\n").replace("\\\\", "\\")
        check(pem.startswith("-----BEGIN CERTIFICATE-----"), "Demo certificate in config.db")
        if pem:
            eq(t.getpeercert(binary_form=True), ssl.PEM_cert_to_DER_cert(pem.strip()),
               "STARTTLS serves the Demo certificate")
        r = c.cmd("EHLO again.example")
        starts(r, "250-", "EHLO after TLS is the first reply (injected NOOP dropped)")
        check("STARTTLS" not in r, "STARTTLS not offered inside TLS")
        eq(code(c.cmd("STARTTLS")), "503 5.5.1", "STARTTLS twice")
        good_transaction(c, a, "inside TLS")
        c.close()
    finally:
        eq(a.stop(), 0, "tls agent exit status")


# ---- durable ----

def test_durable():
    a = new_agent(args=["--max-conn", "30"])
    try:
        errors = []
        seen = []

        def client(n):
            try:
                c = SMTP(a.host, a.port)
                c.reply()
                c.cmd("EHLO c%d.example" % n)
                for i in range(10):
                    c.cmd("MAIL FROM:<s%d@example.org>" % n)
                    c.cmd("RCPT TO:<r%d@[127.0.0.254]>" % i)
                    c.cmd("DATA")
                    r = c.cmd("Subject: %d-%d\r\n\r\nbody\r\n." % (n, i))
                    mid = queued_mid(r)
                    # at the moment the 250 arrives, the message must already be committed
                    rows = queue_rows(a.datadir, "SELECT sender FROM msg WHERE mid = ?", (mid,))
                    if rows != [("s%d@example.org" % n,)] and not handled(a, mid):
                        errors.append("MID %s not in queue.db at its 250: %r" % (mid, rows))
                    seen.append(mid)
                c.cmd("QUIT")
                c.close()
            except Exception as e:  # noqa: BLE001
                errors.append("client %d: %r" % (n, e))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        eq(errors, [], "every 250 after the commit")
        eq(len(seen), 80, "80 messages accepted")
        eq(len(set(seen)), 80, "MIDs unique")

        # --max-conn: the 31st connection is turned away at once
        held = []
        for _ in range(30):
            c = SMTP(a.host, a.port)
            starts(c.reply(), "220 ", "banner under the limit")
            held.append(c)
        extra = SMTP(a.host, a.port)
        eq(code(extra.reply()), "421 4.7.0", "over --max-conn")
        check(extra.closed(), "closed after 421")
        extra.close()
        for c in held:
            c.close()
    finally:
        eq(a.stop(), 0, "durable agent exit status")
    # MIDs keep increasing across a restart
    a2 = Agent(STSGATED, a.datadir, args=[]).start()
    try:
        c = session(a2)
        mid = good_transaction(c, a2, "after restart")
        check(mid is not None and mid > max(seen), "MID after restart %s > %s" % (mid, max(seen)))
        c.close()
    finally:
        eq(a2.stop(), 0, "restarted agent exit status")


# ---- process ----

def shell(datadir, line):
    p = subprocess.run([STSGATE, "--data", datadir, "-c", line], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    return p.returncode, p.stdout.decode(errors="replace")


def test_process():
    # the shell when no agent runs
    d = os.path.join(new_temp(), "data")
    rc, out = shell(d, "status")
    check("The delivery agent (stsgated) is not running.\n" in out, "status without agent: %r"
          % out)
    eq(rc, 1, "status without agent exit status")
    rc, out = shell(d, "delivernow")
    check("The delivery agent (stsgated) is not running.\n" in out, "delivernow without agent")

    a = Agent(STSGATED, d).start()
    try:
        # second agent
        p = subprocess.run([STSGATED, "--data", d, "--listen", "127.0.0.1:%d" % (a.port + 1)],
                           capture_output=True, timeout=30)
        eq(p.returncode, 1, "second agent exit status")
        eq(p.stderr.decode(), "stsgated is already running on %s (pid %d).\n" % (d, a.proc.pid),
           "second agent message")

        sock = os.path.join(d, "stsgated.sock")
        eq(stat.S_IMODE(os.stat(sock).st_mode), 0o600, "control socket mode")
        eq(stat.S_IMODE(os.stat(d).st_mode), 0o700, "data directory mode")

        c = session(a)
        mid = good_transaction(c, a, "for delivernow")
        c.close()
        rc, out = shell(d, "status")
        eq(rc, 0, "status exit status")
        for want in ("System status:                Online", "Messages:                   1",
                     "Messages received:            1 (1 recipients", "Configuration version:",
                     "Delivery agent:               stsgated ", "Listening on:                 127.0.0.1:%d" % a.port):
            check(want in out, "status shows %r: %r" % (want, out))

        # a deferred recipient (as delivery leaves one) becomes due with delivernow; it is
        # written straight into queue.db, far in the future, so delivery does not touch it first
        import sqlite3
        far = int(time.time()) + 86400
        db = sqlite3.connect(os.path.join(d, "queue.db"), timeout=10)
        db.execute("INSERT INTO msg(mid, icid, received, sender, size, pending, data) "
                   "VALUES (999000, 0, 1, 'a@b.example', 3, 1, X'610D0A')")
        db.execute("INSERT INTO rcpt(mid, rid, addr, domain, attempts, next_attempt) "
                   "VALUES (999000, 0, 'x@[127.0.0.254]', '[127.0.0.254]', 1, ?)", (far,))
        db.commit()
        db.close()
        rc, out = shell(d, "delivernow")
        m = re.search(r"\n(\d+) recipients rescheduled for immediate delivery\.\n", out)
        check(m is not None and int(m.group(1)) >= 1, "delivernow: %r" % out)
        nxt = queue_rows(d, "SELECT next_attempt FROM rcpt WHERE mid = 999000")
        check(not nxt or nxt[0][0] <= time.time() + 1, "delivernow made it due (%s)" % nxt)

        # a commit is seen within a second or two: new connections use it, an open one keeps
        # the configuration it started with
        old = session(a, ehlo=False)
        p = subprocess.run([STSGATE, "--data", d], input=b"sethostname\nmx.commit.example\n"
                           b"commit\nlistener test\n\n", capture_output=True, timeout=30)
        check(b"Changes committed" in p.stdout, "hostname committed: %r" % p.stdout[-300:])
        deadline = time.time() + 5
        banner = ""
        while time.time() < deadline:
            n = SMTP(a.host, a.port)
            banner = n.reply()
            n.close()
            if "mx.commit.example" in banner:
                break
            time.sleep(0.2)
        eq(banner, "220 mx.commit.example ESMTP stsgated", "banner after commit")
        check(time.time() < deadline - 2.5, "commit seen within about a second")
        r = old.cmd("EHLO old.example")
        check("mx.commit.example" not in r.split("\n")[0], "open session keeps its configuration")
        old.close()
        check("Configuration version 2 is now in use" in a.log(), "reload logged")

        # tail mail_logs follows the file across a rotation (rename + SIGHUP), ends on Ctrl-C
        t = subprocess.Popen([STSGATE, "--data", d, "-c", "tail mail_logs"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        time.sleep(0.7)
        n = session(a)
        n.cmd("NOOP")
        n.close()
        time.sleep(0.5)
        logs = os.path.join(d, "logs")
        os.rename(os.path.join(logs, "mail_logs"), os.path.join(logs, "mail_logs.@19700101T000000.s"))
        a.signal(signal.SIGHUP)
        time.sleep(0.5)
        n = session(a)
        n.cmd("EHLO after-rotation.example")
        n.close()
        time.sleep(0.8)
        t.send_signal(signal.SIGINT)
        try:
            out, _ = t.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            t.kill()
            out, _ = t.communicate()
        out = out.decode(errors="replace")
        eq(t.returncode, 0, "tail exit status after Ctrl-C")
        check("Press Ctrl-C to stop." in out, "tail says how to stop")
        check("SIGHUP: mail_logs reopened" in out, "tail followed into the new file: %r" % out[-600:])
        check("Info: Begin Logfile" in out, "tail shows the new file from its start")
        icids = re.findall(r"New SMTP ICID (\d+)", out)
        check(len(icids) >= 2, "tail shows connections before and after the rotation: %r" % icids)

        # raw protocol
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.connect(sock)
        u.sendall(b"bogus\n")
        eq(u.recv(100), b"ERR unknown request\n", "control: unknown request")
        u.close()

        # SIGTERM drain: an idle session gets 421, a transaction in DATA finishes
        idle = session(a)
        busy = session(a)
        busy.cmd("MAIL FROM:<alice@example.org>")
        busy.cmd("RCPT TO:<bob@[127.0.0.254]>")
        eq(code(busy.cmd("DATA")), "354", "DATA before SIGTERM")
        busy.send("Subject: drain\r\n\r\nfirst half\r\n")
        time.sleep(0.2)
        a.signal(signal.SIGTERM)
        eq(code(idle.reply()), "421 4.3.2", "idle session at SIGTERM")
        time.sleep(0.3)
        refused = False
        try:
            socket.create_connection((a.host, a.port), timeout=2).close()
        except OSError:
            refused = True
        check(refused, "no new connections while draining")
        r = busy.cmd("second half\r\n.")
        eq(code(r), "250 2.0.0", "transaction in DATA finishes during drain")
        eq(code(busy.cmd("NOOP")), "421 4.3.2", "then 421")
        eq(a.proc.wait(30), 0, "drained agent exit status")
        eq(queue_rows(d, "SELECT count(*) FROM msg WHERE mid = ?", (queued_mid(r),))[0][0], 1,
           "drained message queued")
        check(not os.path.exists(sock), "control socket removed at exit")
        check("SIGTERM received" in a.log() and "stsgated stopped" in a.log(), "drain logged")
    finally:
        a.kill()

    # IPv6: --listen [::1]:PORT, and ::1 may relay by default
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
        have6 = True
    except OSError:
        have6 = False
    if have6:
        a = new_agent(host="::1")
        try:
            c = session(a)
            good_transaction(c, a, "over IPv6")
            c.close()
            check("address ::1 port %d" % a.port in a.log(), "IPv6 connection logged")
        finally:
            eq(a.stop(), 0, "IPv6 agent exit status")

    # a data directory path longer than a socket address (108 bytes)
    base = new_temp()
    longdir = os.path.join(base, *(["a-rather-long-directory-name-for-the-socket-test"] * 5))
    check(len(longdir) > 200, "long path is long")
    a = Agent(STSGATED, longdir).start()
    try:
        rc, out = shell(longdir, "status")
        eq(rc, 0, "status over a long path")
        check("System status:                Online" in out, "status over a long path: %r" % out)
        rc, out = shell(longdir, "delivernow")
        check("0 recipients rescheduled for immediate delivery." in out, "delivernow, long path")
    finally:
        eq(a.stop(), 0, "long path agent exit status")


# ---- backup ----

def backup_live(datadir, dest):
    """The backup of docs/operations.md, word for word, while the agent runs."""
    os.makedirs(dest)
    script = ("cd %s && for db in config queue stscache tlsrpt; do "
              "[ -f $db.db ] && sqlite3 $db.db \".backup '%s/$db.db'\"; done; "
              "cp -a configuration %s/" % (datadir, dest, dest))
    p = subprocess.run(["bash", "-c", script + "; true"], capture_output=True, timeout=60)
    eq(p.stderr.decode(), "", "backup commands: stderr")


def restore(backup, datadir):
    """The restore of docs/operations.md: the .db files back, mode 0600, no -wal or -shm."""
    os.makedirs(datadir, mode=0o700)
    for name in os.listdir(backup):
        src = os.path.join(backup, name)
        p = subprocess.run(["cp", "-a", src, datadir], capture_output=True)
        eq(p.returncode, 0, "restore %s" % name)
        if name.endswith(".db"):
            os.chmod(os.path.join(datadir, name), 0o600)


def queue_line(out, label):
    m = re.search(r"\n  %s: +(\d+)\n" % re.escape(label), out)
    return int(m.group(1)) if m else None


def test_backup():
    """Mail and configuration survive the documented online backup and restore."""
    base = new_temp()
    d = os.path.join(base, "data")
    p = subprocess.run([STSGATE, "--data", d], input=b'sethostname\nbackup.example\n'
                       b'commit "before the backup"\nn\n', capture_output=True, timeout=30)
    check(b"Changes committed" in p.stdout, "configuration committed: %r" % p.stdout[-300:])
    a = Agent(STSGATED, d).start()
    try:
        # undeliverable (nothing listens on 127.0.0.254): the messages stay queued
        c = session(a)
        mids = [good_transaction(c, a, "message %d" % i) for i in range(3)]
        c.close()
        rc, before = shell(d, "status")
        backup_live(d, os.path.join(base, "backup"))
    finally:
        eq(a.stop(), 0, "agent exit status after the backup")
    version = re.search(r"Configuration version: +(\d+)", before)
    check(version is not None, "status before: %r" % before)

    d2 = os.path.join(base, "restored")
    restore(os.path.join(base, "backup"), d2)
    for f in os.listdir(d2):
        check(not f.endswith(("-wal", "-shm")), "no %s in the backup" % f)
    b = Agent(STSGATED, d2).start()
    try:
        rc, after = shell(d2, "status")
        eq(rc, 0, "status on the restored data directory")
        if version:
            check("Configuration version:        %s\n" % version.group(1) in after,
                  "the committed version is restored: %r" % after)
        eq(queue_line(after, "Messages"), 3, "the queued messages are restored")
        rows = queue_rows(d2, "SELECT mid FROM msg ORDER BY mid")
        eq([r[0] for r in rows], sorted(mids), "the same MIDs in the restored queue")
        p = subprocess.run([STSGATE, "--data", d2], input=b"exit\n", capture_output=True,
                           timeout=30)
        check(b"backup.example> " in p.stdout, "the restored hostname in the prompt: %r"
              % p.stdout[-200:])
        for name in os.listdir(d2):
            if name.endswith(".db"):
                eq(stat.S_IMODE(os.stat(os.path.join(d2, name)).st_mode), 0o600,
                   "%s mode after restore" % name)
    finally:
        eq(b.stop(), 0, "restored agent exit status")


GROUPS = {"smtp": test_smtp, "tls": test_tls, "durable": test_durable, "process": test_process,
          "backup": test_backup}

if __name__ == "__main__":
    for g in sys.argv[3:] or GROUPS:
        try:
            GROUPS[g]()
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            check(False, "%s raised %r" % (g, e))
    if failed == 0:
        for t in TEMPS:
            rmtree(t)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(0 if failed == 0 and passed > 0 else 1)
