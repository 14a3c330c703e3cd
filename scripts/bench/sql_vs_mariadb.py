#!/usr/bin/env python3
"""General SQL beside MariaDB: the same rows, the same statements, one run, ratios printed.

    scripts/bench/sql_vs_mariadb.py [--rows 1000000] [--embedb PATH] [--only point,count,...]

Starts MariaDB (Debian `mariadb-server`'s binaries, on loopback, a temporary data directory) and
embedb (the release build unless --embedb names another binary, a temporary data directory),
loads the same table into both with 1000-row INSERTs, then times each operation of issue 14's
table on both, one after the other, with the same client library (mysqlclient, the C client, so
the client adds little per statement). Prints one markdown table: embedb, MariaDB, and the
ratio (how many times slower embedb is; below 1 is faster).

Both servers run with their defaults, except that MariaDB gets a 1 GB buffer pool so the table
is read from memory as embedb reads it (page cache). Durability settings stay the defaults of
each (MariaDB: InnoDB flushes its log at each commit; embedb: redb fsyncs each commit).
"""
import argparse
import multiprocessing as mp
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import MySQLdb

from servers import free_port, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/embedb-target"))

SCHEMA = """CREATE TABLE bench (
  id BIGINT PRIMARY KEY,
  k INT NOT NULL,
  tenant INT NOT NULL,
  created DATETIME NOT NULL,
  pad VARCHAR(60) NOT NULL,
  KEY k_idx (k)
)"""


def start_mariadb(tmp):
    data = os.path.join(tmp, "mariadb")
    subprocess.run(["mariadb-install-db", "--user=root", f"--datadir={data}", "--auth-root-authentication-method=normal"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    proc = subprocess.Popen(["mariadbd", "--user=root", f"--datadir={data}", f"--port={port}", "--bind-address=127.0.0.1",
                             f"--socket={tmp}/mariadb.sock", "--skip-grant-tables", "--skip-log-bin",
                             "--innodb-buffer-pool-size=1G", "--max-connections=200"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc, "mariadbd")
    return proc, port


def start_embedb(tmp, binary):
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "--port", str(port), "--data-dir", os.path.join(tmp, "embedb")],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "embedb.log"), "w"))
    wait_port(port, proc, "embedb")
    return proc, port


def connect(port, db="bench"):
    c = MySQLdb.connect(host="127.0.0.1", port=port, user="root", passwd="", autocommit=True)
    cur = c.cursor()
    if db:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
        cur.execute(f"USE {db}")
    return c, cur


def row(i):
    return f"({i},{(i * 7919) % ROWS},{i % 100},'2026-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00','pad-{i:056d}')"


def load(port):
    _, cur = connect(port)
    cur.execute("DROP TABLE IF EXISTS bench")
    cur.execute(SCHEMA)
    start = time.perf_counter()
    for lo in range(0, ROWS, 1000):
        cur.execute("INSERT INTO bench VALUES " + ",".join(row(i) for i in range(lo, min(lo + 1000, ROWS))))
    return ROWS / (time.perf_counter() - start)


def timed(cur, sql, n):
    """Median seconds of n runs of sql (results fetched)."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        cur.execute(sql)
        cur.fetchall()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def point_p50(port):
    _, cur = connect(port)
    rnd = random.Random(1)
    for _ in range(200):
        cur.execute(f"SELECT * FROM bench WHERE id = {rnd.randrange(ROWS)}")
        cur.fetchall()
    times = []
    for _ in range(3000):
        sql = f"SELECT * FROM bench WHERE id = {rnd.randrange(ROWS)}"
        t = time.perf_counter()
        cur.execute(sql)
        cur.fetchall()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _client(port, seconds, seed, out):
    _, cur = connect(port)
    rnd = random.Random(seed)
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        cur.execute(f"SELECT * FROM bench WHERE id = {rnd.randrange(ROWS)}")
        cur.fetchall()
        n += 1
    out.put(n)


def concurrent_qps(port, clients=16, seconds=5.0):
    out = mp.Queue()
    procs = [mp.Process(target=_client, args=(port, seconds, i, out)) for i in range(clients)]
    for p in procs:
        p.start()
    total = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def single_inserts(port, n=2000):
    _, cur = connect(port)
    cur.execute("DROP TABLE IF EXISTS ins")
    cur.execute("CREATE TABLE ins (id BIGINT PRIMARY KEY, k INT NOT NULL, pad VARCHAR(60))")
    start = time.perf_counter()
    for i in range(n):
        cur.execute(f"INSERT INTO ins VALUES ({i}, {i * 3}, 'row {i}')")
    return n / (time.perf_counter() - start)


OPS = ["load", "point", "point16", "krange", "pkrange", "count", "groupby", "insert"]


def measure(port, only, slow_runs):
    r = {}
    _, cur = connect(port)
    if "load" in only:
        r["load"] = load(port)
    if "point" in only:
        r["point"] = point_p50(port)
    if "point16" in only:
        r["point16"] = concurrent_qps(port)
    rnd = random.Random(2)
    if "krange" in only:
        a = rnd.randrange(ROWS - 100)
        r["krange"] = timed(cur, f"SELECT * FROM bench WHERE k BETWEEN {a} AND {a + 99}", slow_runs)
    if "pkrange" in only:
        a = rnd.randrange(ROWS - 100)
        r["pkrange"] = timed(cur, f"SELECT * FROM bench WHERE id BETWEEN {a} AND {a + 99}", 50)
    if "count" in only:
        r["count"] = timed(cur, "SELECT COUNT(*) FROM bench", slow_runs)
    if "groupby" in only:
        r["groupby"] = timed(cur, "SELECT tenant, COUNT(*), MAX(k) FROM bench GROUP BY tenant", slow_runs)
    if "insert" in only:
        r["insert"] = single_inserts(port)
    return r


LABELS = {
    "point": ("point SELECT by primary key, p50", "ms", False),
    "point16": ("the same, 16 concurrent clients", "q/s", True),
    "krange": ("`WHERE k BETWEEN a AND b`, secondary index (~100 rows)", "ms", False),
    "pkrange": ("`WHERE id BETWEEN a AND b`, primary key (100 rows)", "ms", False),
    "count": ("`SELECT COUNT(*)`", "ms", False),
    "groupby": ("`GROUP BY` 100 groups", "ms", False),
    "insert": ("single-row INSERT, autocommit", "rows/s", True),
    "load": ("bulk load (1000-row INSERTs)", "rows/s", True),
}


def fmt(v, unit):
    if unit == "ms":
        return f"{v * 1000:.3f} ms" if v < 0.01 else f"{v * 1000:.1f} ms"
    return f"{v:,.0f} {unit}"


def main():
    global ROWS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--embedb", default=os.path.join(TARGET, "release", "embedb"))
    ap.add_argument("--only", default=",".join(OPS), help="comma-separated subset of " + ",".join(OPS))
    ap.add_argument("--slow-runs", type=int, default=5, help="runs of each full-table statement")
    args = ap.parse_args()
    ROWS = args.rows
    only = [o for o in args.only.split(",") if o]
    if any(o not in OPS for o in only):
        sys.exit(f"--only takes {OPS}")
    if not os.path.exists(args.embedb):
        sys.exit(f"{args.embedb} not found: cargo build --release, or pass --embedb")
    if "load" not in only:
        only.insert(0, "load")  # every other operation reads the loaded table
    tmp = tempfile.mkdtemp(prefix="embedb-sqlbench-")
    procs = []
    try:
        mproc, mport = start_mariadb(tmp)
        procs.append(mproc)
        eproc, eport = start_embedb(tmp, args.embedb)
        procs.append(eproc)
        print(f"{ROWS:,} rows; embedb {args.embedb}; MariaDB {subprocess.run(['mariadbd', '--version'], capture_output=True, text=True).stdout.split()[2]}", flush=True)
        results = {}
        for name, port in (("embedb", eport), ("mariadb", mport)):
            t = time.time()
            results[name] = measure(port, only, args.slow_runs)
            print(f"  {name}: measured in {time.time() - t:.0f} s", flush=True)
        print()
        print("| operation | embedb | MariaDB | embedb / MariaDB |")
        print("|---|---|---|---|")
        for op in OPS:
            if op not in only:
                continue
            label, unit, higher_better = LABELS[op]
            e, m = results["embedb"][op], results["mariadb"][op]
            ratio = m / e if higher_better else e / m
            print(f"| {label} | {fmt(e, unit)} | {fmt(m, unit)} | {ratio:.2f}× {'slower' if ratio > 1 else 'as fast or faster'} |")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
