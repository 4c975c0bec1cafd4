#!/usr/bin/env python3
"""inject.py - sends N numbered messages to an SMTP listener over several connections, surviving
the listener's death: a message whose 250 did not arrive is sent again on a new connection.

Usage: inject.py HOST PORT RCPT N THREADS ACKED_FILE
Each message carries "X-Crash-Id: <n>". The number of every message that got its 250 is appended
to ACKED_FILE (one per line, flushed at once): those are the messages the gateway promised to keep.
"""
import smtplib
import sys
import threading
import time

host, port, rcpt, total, threads, acked_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
    int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
lock = threading.Lock()
next_id = [0]
acked = open(acked_path, "a", buffering=1)
resent = [0]


def take():
    with lock:
        if next_id[0] >= total:
            return None
        next_id[0] += 1
        return next_id[0]


def worker():
    conn = None
    n = take()
    deadline = time.time() + 300
    while n is not None and time.time() < deadline:
        try:
            if conn is None:
                conn = smtplib.SMTP(host, port, timeout=15)
                conn.ehlo("injector.lab")
            msg = (f"From: <crash@injector.lab>\r\nTo: <{rcpt}>\r\nSubject: crash test {n}\r\n"
                   f"X-Crash-Id: {n}\r\n\r\nmessage {n}\r\n")
            conn.sendmail("crash@injector.lab", [rcpt], msg)
            with lock:
                acked.write(f"{n}\n")
            n = take()
        except (OSError, smtplib.SMTPException):
            # No 250 for n: the listener died or refused; n is sent again.
            with lock:
                resent[0] += 1
            try:
                if conn is not None:
                    conn.close()
            except OSError:
                pass
            conn = None
            time.sleep(0.05)
    if conn is not None:
        try:
            conn.quit()
        except (OSError, smtplib.SMTPException):
            pass


ts = [threading.Thread(target=worker) for _ in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(f"injected {next_id[0]} messages, {resent[0]} sends retried")
