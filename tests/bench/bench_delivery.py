#!/usr/bin/env python3
"""bench_delivery.py - delivery throughput of stsgated against Postfix as the sending MTA, in the
lab, on the same receiver at the same TLS level (Required - Verify for stsgate; Postfix's
smtp_tls_security_level = verify).

Runs inside the lab namespace (scripts/bench-delivery starts it there). For each sender and each
messages-per-connection setting (50 and 1) it injects N messages through SMTP, waits until the
lab receiver `valid` holds them all, and reports messages per second from the first injection to
the last delivery, the latency of each message (receiver's file time minus the time written into
the message at injection: p50/p90/p99), the sender's CPU seconds (all its processes) and its peak memory (PSS of all its processes,
shared pages counted once).

With a fourth argument `backlog`, it measures instead how fast stsgated drains N deferred messages
for one domain released at once (backlog_run). With `latency`, both senders deliver through
delayproxy.py, which adds a 50 ms round trip, as between two sites on the Internet.

Usage: bench_delivery.py STSGATE_BIN_DIR WORKDIR N [backlog|latency]
"""
import os
import shutil
import smtplib
import statistics
import subprocess
import sys
import threading
import time

BIN, WORK, N = sys.argv[1], sys.argv[2], int(sys.argv[3])
ENV = {}
with open(os.environ["LAB_ENV"]) as f:
    for line in f:
        line = line.strip()
        if line.startswith("export ") and "=" in line:
            k, v = line[7:].split("=", 1)
            ENV[k] = v.strip("'\"")
LAB_BIN = ENV["LAB_BIN"]
CA = ENV["LAB_CA_BUNDLE"]
DOMAIN = "valid.plain.stslab"
THREADS = 10
CONCURRENCY = 20
TICK = os.sysconf("SC_CLK_TCK")


def inject(port, tag):
    """Sends N messages over THREADS connections; returns the time of the first one."""
    lock = threading.Lock()
    counter = [0]
    errors = []

    def worker():
        s = smtplib.SMTP("127.0.0.1", port, timeout=60)
        s.ehlo("bench.lab")
        while True:
            with lock:
                if counter[0] >= N:
                    break
                counter[0] += 1
                i = counter[0]
            rcpt = f"{tag}@{DOMAIN}"
            body = (f"From: <bench@bench.lab>\r\nTo: <{rcpt}>\r\nSubject: bench {i}\r\n"
                    f"X-Bench-T: {time.time():.6f}\r\n\r\n" + ("benchmark line\r\n" * 40))
            try:
                s.sendmail("bench@bench.lab", [rcpt], body)
            except smtplib.SMTPException as e:
                errors.append(str(e))
        s.quit()

    t0 = time.time()
    ts = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        sys.exit(f"injection errors: {errors[:3]}")
    return t0


def delivered(tag):
    out = subprocess.run([f"{LAB_BIN}/lab-messages", "valid", "--to", f"{tag}@{DOMAIN}"],
                         capture_output=True, text=True).stdout.split()
    return out


def proc_cpu(pid):
    """utime+stime+cutime+cstime of pid, seconds (children count once reaped)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICK


def tree(pid):
    """pid and all its descendants."""
    out = [pid]
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == pid:
            out.extend(tree(int(p)))
    return out


def tree_rss(pid):
    """Proportional set size of the process tree: shared pages are counted once."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


def tree_cpu(pid):
    return proc_cpu(pid) + sum(proc_cpu(p) for p in tree(pid)[1:])


class Sampled:
    """Over a `with` block: the peak PSS (bytes) and the CPU seconds of a process tree."""

    def __init__(self, pid):
        self.pid, self.peak, self.cpu = pid, 0, 0.0
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.sample)

    def sample(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            time.sleep(0.1)

    def __enter__(self):
        self.cpu0 = tree_cpu(self.pid)
        self.th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.th.join()
        self.cpu = tree_cpu(self.pid) - self.cpu0


def wait_delivered(tag):
    """The receiver's files for tag once it holds N of them, or what it holds after 600 s."""
    deadline = time.time() + 600
    files = []
    while time.time() < deadline:
        files = delivered(tag)
        if len(files) >= N:
            break
        time.sleep(0.2)
    return files


def measure(name, port, master_pid, tag):
    with Sampled(master_pid) as use:
        t0 = inject(port, tag)
        files = wait_delivered(tag)
    if len(files) < N:
        sys.exit(f"{name}: only {len(files)} of {N} delivered")
    lat, last = [], 0.0
    for fn in files:
        mt = os.stat(fn).st_mtime
        last = max(last, mt)
        with open(fn, errors="replace") as f:
            for line in f:
                if line.startswith("X-Bench-T:"):
                    lat.append(mt - float(line.split()[1]))
                    break
                if line in ("\n", "\r\n"):
                    break
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1000
    return {"name": name, "rate": N / (last - t0), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99),
            "cpu": use.cpu, "rss": use.peak / 1048576}


def configure(data, script):
    """Runs the shell on data with script, which must end in a commit that succeeds."""
    p = subprocess.run([f"{BIN}/stsgate", "--data", data], input=script, text=True,
                       capture_output=True)
    if "Changes committed" not in p.stdout:
        sys.exit("configuring stsgate failed:\n" + p.stdout[-3000:])


def dest_script(per_conn):
    """The lab CA trusted; the bench domain with CONCURRENCY connections, per_conn messages per
    connection, TLS Required - Verify."""
    return (f"certconfig\ncertauthority\ncustom\nimport\n{CA}\nenable\n\n\n\n"
            f"destconfig\nnew\n{DOMAIN}\ny\n{CONCURRENCY}\ny\n{per_conn}\nn\n1\ny\n5\nn\nn\nn\nn\n\n")


def start_agent(data, port):
    """stsgated on data, listening on port, once it answers."""
    agent = subprocess.Popen([f"{BIN}/stsgated", "--data", data, "--listen", f"127.0.0.1:{port}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=1).quit()
            break
        except OSError:
            time.sleep(0.1)
    return agent


def stsgate_run(per_conn, via=None):
    """via: HOST:PORT to deliver to through an SMTP route instead of the MX."""
    data = os.path.join(WORK, f"stsgate-{per_conn}")
    shutil.rmtree(data, ignore_errors=True)
    route = f"smtproutes\nnew\n{DOMAIN}\n{via}\n\n" if via else ""
    configure(data, dest_script(per_conn) + route + "commit \"bench\"\nn\n")
    port = 2700
    agent = start_agent(data, port)
    try:
        return measure(f"stsgated, {per_conn} per connection", port, agent.pid,
                       f"bench-s{per_conn}-{os.getpid()}")
    finally:
        agent.terminate()
        agent.wait()


def backlog_run():
    """N messages deferred (the domain routed to a closed port), the route removed, then
    `delivernow`: the agent claims the whole backlog for one domain at once. Reports the time from
    delivernow to the last delivery, the agent's CPU seconds over it and its peak PSS."""
    data = os.path.join(WORK, "stsgate-backlog")
    shutil.rmtree(data, ignore_errors=True)
    tag = f"bench-b-{os.getpid()}"
    configure(data, dest_script(50) + f"smtproutes\nnew\n{DOMAIN}\n127.0.0.1:9\n\n"
              "commit \"bench backlog\"\nn\n")
    port = 2702
    agent = start_agent(data, port)
    log = os.path.join(data, "logs", "mail_logs")
    try:
        inject(port, tag)
        deadline = time.time() + 600
        while time.time() < deadline:
            with open(log, errors="replace") as f:
                if sum(1 for line in f if "Delayed: " in line) >= N:
                    break
            time.sleep(0.5)
        else:
            sys.exit("backlog: the messages were not all deferred")
        configure(data, f"smtproutes\ndelete\n{DOMAIN}\n\ncommit \"bench drain\"\nn\n")
        time.sleep(2)  # the agent takes up the new configuration version
        with Sampled(agent.pid) as use:
            t0 = time.time()
            subprocess.run([f"{BIN}/stsgate", "--data", data, "-c", "delivernow"], check=True,
                           capture_output=True)
            files = wait_delivered(tag)
        if len(files) < N:
            sys.exit(f"backlog: only {len(files)} of {N} delivered")
        last = max(os.stat(fn).st_mtime for fn in files)
        return {"drain": last - t0, "rate": N / (last - t0), "cpu": use.cpu,
                "rss": use.peak / 1048576}
    finally:
        agent.terminate()
        agent.wait()


POSTFIX_MASTER = """smtp-bench inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsproxy  unix  -       -       n       -       0       tlsproxy
"""


def postfix_run(per_conn, via=None):
    """via: HOST:PORT to deliver to (a transport map entry) instead of the MX, the certificate
    still verified against the domain."""
    d = os.path.join(WORK, f"postfix-{per_conn}")
    shutil.rmtree(d, ignore_errors=True)
    for sub in ("etc", "spool", "data"):
        os.makedirs(os.path.join(d, sub))
    shutil.chown(os.path.join(d, "data"), "postfix")
    port = 2701
    reuse = "yes" if per_conn > 1 else "no"
    with open(os.path.join(d, "etc", "main.cf"), "w") as f:
        f.write(f"""compatibility_level = 3.6
queue_directory = {d}/spool
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
myhostname = sender.bench.lab
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_tls_security_level = verify
smtp_tls_CAfile = {CA}
smtp_tls_verify_cert_match = hostname, nexthop, dot-nexthop
default_destination_concurrency_limit = {CONCURRENCY}
smtp_destination_concurrency_limit = {CONCURRENCY}
initial_destination_concurrency = {CONCURRENCY}
smtp_connection_cache_on_demand = {reuse}
smtp_tls_connection_reuse = {reuse}
smtp_connection_reuse_count_limit = {max(per_conn, 1)}
smtp_dns_support_level = enabled
""")
        if via:
            host, vport = via.split(":")
            f.write(f"transport_maps = inline:{{ {{ {DOMAIN} = smtp:[{host}]:{vport} }} }}\n"
                    f"smtp_tls_policy_maps = inline:{{ {{ [{host}]:{vport} = verify "
                    f"match={DOMAIN} }} }}\n")
    with open(os.path.join(d, "etc", "master.cf"), "w") as f:
        f.write(POSTFIX_MASTER.replace("smtp-bench", f"127.0.0.1:{port}"))
    subprocess.run(["postfix", "-c", f"{d}/etc", "start"], check=True, capture_output=True)
    try:
        pid = None
        for _ in range(100):
            try:
                with open(f"{d}/spool/pid/master.pid") as f:
                    pid = int(f.read().strip())
                smtplib.SMTP("127.0.0.1", port, timeout=1).quit()
                break
            except (OSError, ValueError):
                time.sleep(0.1)
        return measure(f"Postfix, {per_conn} per connection", port, pid,
                       f"bench-p{per_conn}-{os.getpid()}")
    finally:
        subprocess.run(["postfix", "-c", f"{d}/etc", "stop"], capture_output=True)


def main():
    os.makedirs(WORK, exist_ok=True)
    if len(sys.argv) > 4 and sys.argv[4] == "backlog":
        b = backlog_run()
        print(f"{N} deferred messages for one domain released at once with `delivernow` (50 per "
              f"connection, at most {CONCURRENCY} connections, TLS verified):\n")
        print("| drain s | messages/s | agent CPU s | peak PSS MiB |")
        print("|---|---|---|---|")
        print(f"| {b['drain']:.1f} | {b['rate']:.0f} | {b['cpu']:.2f} | {b['rss']:.1f} |")
        return
    via, proxy = None, None
    if len(sys.argv) > 4 and sys.argv[4] == "latency":
        # every byte to and from the receiver held 25 ms each way: a 50 ms round trip
        via = "127.0.0.1:2526"
        proxy = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__),
                                                               "delayproxy.py"),
                                  "2526", ENV["LAB_RECV_VALID"], "25", "25"])
        time.sleep(0.5)
    rows = []
    try:
        for per_conn in (50, 1):
            rows.append(stsgate_run(per_conn, via))
            rows.append(postfix_run(per_conn, via))
    finally:
        if proxy:
            proxy.terminate()
            proxy.wait()
    print(f"{N} messages of about 700 bytes, {THREADS} injecting connections, at most "
          f"{CONCURRENCY} delivery connections, TLS verified (stsgate Required - Verify, "
          "Postfix verify) to the lab receiver `valid` (a Postfix that starts one smtpd per "
          "connection)" + (", through a relay that adds a 50 ms round trip (a route for "
                           "stsgate, a transport map for Postfix)" if via else "") + ".\n")
    print("| sender | messages/s | latency p50 ms | p90 ms | p99 ms | CPU s | peak PSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['rate']:.0f} | {r['p50']:.0f} | {r['p90']:.0f} | "
              f"{r['p99']:.0f} | {r['cpu']:.2f} | {r['rss']:.1f} |")


if __name__ == "__main__":
    main()
