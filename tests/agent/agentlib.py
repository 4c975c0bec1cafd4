"""agentlib.py - run the real stsgated for tests: a temp data directory, a free port on a
loopback address, a raw SMTP client that shows every reply line, and queue.db readers.

Used by listener_test.py (label unit) and tests/crash/crash_listener.py (label crash)."""
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time


def free_port(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Agent:
    """One stsgated process on datadir. start() waits until it accepts SMTP and its control
    socket exists."""

    def __init__(self, binary, datadir, host="127.0.0.1", port=None, args=()):
        self.binary = binary
        self.datadir = datadir
        self.host = host
        self.port = port or free_port(host)
        self.args = list(args)
        self.proc = None
        self.stderr_path = os.path.join(os.path.dirname(datadir.rstrip("/")) or ".",
                                        "stderr-%d.log" % self.port)

    def start(self, wait=True):
        os.makedirs(os.path.dirname(self.stderr_path), exist_ok=True)
        self.stderr = open(self.stderr_path, "ab")
        where = ("[%s]:%d" if ":" in self.host else "%s:%d") % (self.host, self.port)
        cmd = [self.binary, "--data", self.datadir, "--listen", where] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.stderr)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        sock = os.path.join(self.datadir, "stsgated.sock")
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("stsgated exited with %s: %s" % (self.proc.returncode,
                                                                    self.stderr_text()))
            try:
                c = socket.create_connection((self.host, self.port), timeout=1)
                c.close()
                if os.path.exists(sock):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("stsgated did not start: " + self.stderr_text())

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()

    def stop(self, timeout=30):
        """SIGTERM; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "hung"

    def log(self):
        try:
            with open(os.path.join(self.datadir, "logs", "mail_logs"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class SMTP:
    """A raw client: send exact bytes, read whole replies (multi-line joined)."""

    def __init__(self, host, port, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; pending %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def reply(self):
        """'250 text' for a one-line reply, lines joined with '\\n' for a multi-line one."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return "\n".join(lines)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True when the server closed the connection (nothing more to read)."""
        self.sock.settimeout(timeout)
        try:
            if self.buf:
                return False
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def code(reply):
    """The last line's code and enhanced code, e.g. '250 2.0.0'."""
    last = reply.split("\n")[-1]
    m = re.match(r"(\d{3})[ -](\d\.\d{1,3}\.\d{1,3})?", last)
    if not m:
        return last[:3]
    return m.group(1) + (" " + m.group(2) if m.group(2) else "")


def queued_mid(reply):
    m = re.search(r"queued as (\d+)", reply)
    return int(m.group(1)) if m else None


def queue_rows(datadir, sql, args=()):
    db = sqlite3.connect(os.path.join(datadir, "queue.db"), timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def tempdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
