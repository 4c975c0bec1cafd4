#!/usr/bin/env python3
"""bench_shell.py - times the shell on a data directory with 10 000 destination entries.

Measures, over repeated runs of the real binary: start-up to the first prompt (and exit), the
destconfig LIST of all entries, committing one change, and a rollback committed at once. Prints
a Markdown table (median, p90, max RSS). Timing is reported, never asserted."""
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ENTRIES = 10000
RUNS = int(os.environ.get("BENCH_RUNS", "15"))


def run(binary, data, script, args=()):
    t0 = time.perf_counter()
    p = subprocess.run([binary, "--data", data, *args], input=script.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    dt = time.perf_counter() - t0
    return dt, p.returncode, p.stdout.decode(errors="replace")


def measure(name, binary, data, script, args=(), prepare=None):
    times = []
    for _ in range(RUNS):
        if prepare:
            prepare()
        dt, rc, out = run(binary, data, script, args)
        if rc != 0:
            sys.exit(f"{name}: exit status {rc}\n{out[-2000:]}")
        times.append(dt * 1000)
    times.sort()
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
    return name, statistics.median(times), p90


def main():
    binary = sys.argv[1]
    work = tempfile.mkdtemp(prefix="stsgate-bench-")
    data = os.path.join(work, "data")
    try:
        os.makedirs(os.path.join(data, "configuration"))
        with open(os.path.join(data, "configuration", "big.ini"), "w") as f:
            f.write("[DEFAULT]\n")
            for i in range(ENTRIES):
                f.write(f"[d{i:05d}.bench.example]\ntable_tls = on_verify\n"
                        f"max_host_concurrency = {1 + i % 1000}\n")
        dt, rc, out = run(binary, data, "destconfig\nimport\nbig.ini\n\ncommit\nbig\ny\n")
        if rc != 0 or "Changes committed" not in out:
            sys.exit("loading the table failed:\n" + out[-2000:])
        print(f"Loading {ENTRIES} entries by IMPORT and commit: {dt * 1000:.0f} ms\n")

        rows = [
            measure("start-up to the first prompt, then EOF", binary, data, ""),
            measure("destconfig LIST (10 000 rows)", binary, data, "list\n\n", ("-c", "destconfig")),
        ]
        flip = [0]

        def commit_script():
            flip[0] ^= 1
            return (f"destconfig\nedit\nd00042.bench.example\ny\n{100 + flip[0]}\nn\nn\n1\n"
                    "n\nn\nn\n\ncommit \"bench\"\ny\n")

        times = []
        for _ in range(RUNS):
            dt, rc, out = run(binary, data, commit_script())
            if "Changes committed" not in out:
                sys.exit("commit failed:\n" + out[-2000:])
            times.append(dt * 1000)
        times.sort()
        rows.append(("one change and commit (whole session)", statistics.median(times),
                     times[min(len(times) - 1, int(len(times) * 0.9))]))
        rows.append(measure("rollbackconfig to the previous version, committed", binary, data,
                            "rollbackconfig\n2\ny\n"))
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print("| operation | median ms | p90 ms |")
        print("|---|---|---|")
        for name, med, p90 in rows:
            print(f"| {name} | {med:.1f} | {p90:.1f} |")
        print(f"\nPeak RSS of the shell over these runs: {rss / 1024:.1f} MiB ({RUNS} runs each).")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
