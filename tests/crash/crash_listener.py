#!/usr/bin/env python3
"""crash_listener.py - SIGKILL the real stsgated again and again while clients inject mail;
every message a client got 250 for must still be there after the restarts.

usage: crash_listener.py STSGATED [ROUNDS] [CLIENTS]

CLIENTS threads send messages without pause, each carrying a unique X-Token header, and
reconnect whenever the agent is gone. ROUNDS times the agent is killed with SIGKILL at a random
moment and started again on the same data directory and port. At the end the agent is stopped
with SIGTERM (it must exit 0) and queue.db is read:
- every acknowledged token is in queue.db under the MID its 250 named, or mail_logs shows that
  delivery handled that MID (recipients are bob@[127.0.0.254], where nothing listens, so
  delivery defers and the message normally stays queued);
- no MID was acknowledged twice.
Messages stored but never acknowledged (the kill came between the commit and the 250) are
counted and reported: they are duplicates the client will resend, which is allowed."""
import os
import random
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "agent"))
from agentlib import SMTP, Agent, free_port, queue_rows, queued_mid, rmtree, tempdir  # noqa

STSGATED = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 8
CLIENTS = int(sys.argv[3]) if len(sys.argv) > 3 else 8

acked = {}  # token -> mid
acked_lock = threading.Lock()
stop = threading.Event()
sent = [0]


def client(n, host, port):
    i = 0
    while not stop.is_set():
        c = None
        try:
            c = SMTP(host, port, timeout=10)
            if not c.reply().startswith("220"):
                raise EOFError("no banner")
            c.cmd("EHLO crash%d.example" % n)
            while not stop.is_set():
                token = "c%d-%d" % (n, i)
                i += 1
                c.cmd("MAIL FROM:<sender%d@example.org>" % n)
                c.cmd("RCPT TO:<bob@[127.0.0.254]>")
                if not c.cmd("DATA").startswith("354"):
                    raise EOFError("no 354")
                with acked_lock:
                    sent[0] += 1
                r = c.cmd("Subject: crash\r\nX-Token: %s\r\n\r\n%s\r\n." % (token, "x" * 200))
                if r.startswith("250 "):
                    with acked_lock:
                        acked[token] = queued_mid(r)
                elif not r.startswith("4"):
                    raise EOFError("unexpected reply %r" % r)
        except (OSError, EOFError):
            time.sleep(0.02)  # the agent is down: try again
        finally:
            if c:
                c.close()


def main():
    base = tempdir("stsgated-crash-")
    datadir = os.path.join(base, "data")
    port = free_port()
    agent = Agent(STSGATED, datadir, port=port).start()
    threads = [threading.Thread(target=client, args=(n, agent.host, port), daemon=True)
               for n in range(CLIENTS)]
    for t in threads:
        t.start()
    kills = 0
    for _ in range(ROUNDS):
        time.sleep(random.uniform(0.3, 1.2))
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait()
        kills += 1
        time.sleep(random.uniform(0.0, 0.2))
        agent = Agent(STSGATED, datadir, port=port).start()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(20)
    status = agent.stop()

    failures = []
    if status != 0:
        failures.append("the last agent exited with %r after SIGTERM" % status)
    rows = queue_rows(datadir, "SELECT mid, data FROM msg")
    stored = {}
    for mid, data in rows:
        if isinstance(data, bytes):
            data = data.decode(errors="replace")
        m = re.search(r"X-Token: (\S+)", data)
        if m:
            stored.setdefault(m.group(1), []).append(mid)
    log = agent.log()
    handled = set(int(x) for x in re.findall(r"(?:DCID \d+ )?MID (\d+) (?:to RID|RID|done)", log))
    handled |= set(int(x) for x in re.findall(r"Message finished MID (\d+)", log))
    lost = []
    for token, mid in acked.items():
        if mid in stored.get(token, []):
            continue
        if mid in handled:
            continue
        lost.append((token, mid))
    mids = list(acked.values())
    if len(set(mids)) != len(mids):
        failures.append("a MID was acknowledged twice")
    if lost:
        failures.append("%d acknowledged messages lost, e.g. %r" % (len(lost), lost[:5]))
    unacked_stored = sum(1 for t in stored if t not in acked)
    dup_tokens = sum(len(v) - 1 for v in stored.values() if len(v) > 1)
    print("kills %d, DATA sent %d, acknowledged %d, stored %d, stored but not acknowledged %d, "
          "stored twice %d, lost %d" % (kills, sent[0], len(acked), len(rows), unacked_stored,
                                        dup_tokens, len(lost)))
    if len(acked) < 50:
        failures.append("too few messages acknowledged (%d) for the test to mean anything"
                        % len(acked))
    for f in failures:
        print("FAILED: " + f)
    if not failures:
        rmtree(base)
    else:
        print("data directory kept: " + base)
    print("%d passed, %d failed" % (1 if not failures else 0, len(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
