#!/usr/bin/python3
"""tests/lab/fakedns.py: a MOCK DNS responder for the stsgate test lab.

THIS IS NOT A REAL RESOLVER. It exists only for the cases a real validating resolver cannot be
made to produce: a forged AD bit, a truncated UDP reply, a reply that never comes, and a malformed
TLSA record. Everything else in the lab uses the real unbound. It answers UDP and TCP on port 53 of
one address, for names under fake.stslab only; the second label picks the behaviour:

  <mode>.fake.stslab                MX 10 mx.<mode>.fake.stslab
  mx.<mode>.fake.stslab             A  (the lab's "selfsigned" receiver)
  _25._tcp.mx.<mode>.fake.stslab    TLSA 3 1 1 (matching that receiver's key)
  _mta-sts.<mode>.fake.stslab       TXT "v=STSv1; id=fake1"

  modes:
    plain      normal answers, AD clear
    forged-ad  normal answers with AD set, though nothing was validated
    truncated  UDP: TC set and no records (a client must retry over TCP); TCP: normal answers
    silent     no reply at all, over UDP or TCP
    badtlsa    AD set; the TLSA answer holds records too short to parse
               (3 bytes: usage, selector, matching type, no data; and 2 bytes)

Other names under fake.stslab: NXDOMAIN. Names outside it: REFUSED.
Usage: fakedns.py --listen ADDR --selfsigned ADDR --tlsa HEX [--pidfile FILE]
"""

import argparse
import os
import signal
import socket
import socketserver
import struct
import threading

ZONE = ("fake", "stslab")
MODES = ("plain", "forged-ad", "truncated", "silent", "badtlsa")
T_A, T_MX, T_TXT, T_OPT, T_TLSA = 1, 15, 16, 41, 52


def parse_name(msg, off):
    """Read an uncompressed question name; return (labels, offset after it)."""
    labels = []
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the message")
        n = msg[off]
        off += 1
        if n == 0:
            return labels, off
        if n & 0xC0:
            raise ValueError("compressed question name")
        labels.append(msg[off:off + n].decode("ascii", "replace").lower())
        off += n


def encode_name(labels):
    out = b""
    for label in labels:
        b = label.encode("ascii")
        out += bytes([len(b)]) + b
    return out + b"\0"


def rr(labels, rtype, rdata, ttl=300):
    return encode_name(labels) + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


class Responder:
    def __init__(self, selfsigned, tlsa_hex):
        self.selfsigned = socket.inet_aton(selfsigned)
        self.tlsa = bytes.fromhex(tlsa_hex)

    def records(self, mode, rest, qtype):
        """Answer records for the name <rest>.<mode>.fake.stslab; None means NXDOMAIN."""
        base = [mode] + list(ZONE)
        if rest == []:
            if qtype == T_MX:
                return [rr(base, T_MX, struct.pack("!H", 10) + encode_name(["mx"] + base))]
            return []
        if rest == ["mx"]:
            return [rr(["mx"] + base, T_A, self.selfsigned)] if qtype == T_A else []
        if rest == ["_25", "_tcp", "mx"]:
            if qtype != T_TLSA:
                return []
            owner = ["_25", "_tcp", "mx"] + base
            if mode == "badtlsa":
                return [rr(owner, T_TLSA, bytes([3, 1, 1])), rr(owner, T_TLSA, bytes([3, 1]))]
            return [rr(owner, T_TLSA, bytes([3, 1, 1]) + self.tlsa)]
        if rest == ["_mta-sts"]:
            if qtype != T_TXT:
                return []
            txt = b"v=STSv1; id=fake1"
            return [rr(["_mta-sts"] + base, T_TXT, bytes([len(txt)]) + txt)]
        return None

    def answer(self, msg, over_tcp):
        """The reply to one query, or None for no reply."""
        if len(msg) < 12:
            return None
        qid, flags, qd, _an, _ns, ar = struct.unpack("!HHHHHH", msg[:12])
        if qd != 1 or flags & 0x8000:
            return None
        try:
            labels, off = parse_name(msg, 12)
        except ValueError:
            return None
        if off + 4 > len(msg):
            return None
        qtype, _qclass = struct.unpack("!HH", msg[off:off + 4])
        question = msg[12:off + 4]
        edns = ar > 0
        rd = flags & 0x0100
        rcode, ad, tc, answers = 0, 0, 0, []

        if len(labels) < 3 or tuple(labels[-2:]) != ZONE or labels[-3] not in MODES:
            rcode = 3 if tuple(labels[-2:]) == ZONE else 5
        else:
            mode = labels[-3]
            if mode == "silent":
                return None
            if mode in ("forged-ad", "badtlsa"):
                ad = 0x0020
            found = self.records(mode, labels[:-3], qtype)
            if found is None:
                rcode = 3
            else:
                answers = found
            if mode == "truncated" and not over_tcp:
                tc, answers = 0x0200, []

        out_flags = 0x8000 | 0x0400 | rd | 0x0080 | ad | tc | rcode
        header = struct.pack("!HHHHHH", qid, out_flags, 1, len(answers), 0, 1 if edns else 0)
        body = question + b"".join(answers)
        if edns:
            body += b"\0" + struct.pack("!HHIH", T_OPT, 1232, 0x8000, 0)
        return header + body


def main():
    ap = argparse.ArgumentParser(description="MOCK DNS responder for the stsgate lab")
    ap.add_argument("--listen", required=True)
    ap.add_argument("--selfsigned", required=True)
    ap.add_argument("--tlsa", required=True, help="hex SHA-256 of the selfsigned receiver's SPKI")
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--pidfile")
    args = ap.parse_args()
    resp = Responder(args.selfsigned, args.tlsa)

    class UDP(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            reply = resp.answer(data, False)
            if reply is not None:
                sock.sendto(reply, self.client_address)

    class TCP(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.settimeout(10)
            try:
                while True:
                    head = self.request.recv(2, socket.MSG_WAITALL)
                    if len(head) < 2:
                        return
                    (n,) = struct.unpack("!H", head)
                    msg = self.request.recv(n, socket.MSG_WAITALL)
                    reply = resp.answer(msg, True)
                    if reply is None:
                        # "silent": hold the connection open and say nothing.
                        self.request.recv(1)
                        return
                    self.request.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return

    class UDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
        allow_reuse_address = True
        daemon_threads = True

    class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
        allow_reuse_address = True
        daemon_threads = True

    udp = UDPServer((args.listen, args.port), UDP)
    tcp = TCPServer((args.listen, args.port), TCP)
    for server in (udp, tcp):
        threading.Thread(target=server.serve_forever, daemon=True).start()
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
