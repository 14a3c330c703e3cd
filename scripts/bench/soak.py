#!/usr/bin/env python3
"""Memory under a steady mixed load: does the server's RSS stay flat? (issue 14, item 5)

    scripts/bench/soak.py [--minutes 10] [--clients 32] [--rows 13000] [--embedb PATH]

Starts embedb (the release build unless --embedb names another binary) on a temporary data
directory, creates a table with a secondary index, a vector index and a full-text index, and runs
`--clients` connections (processes) that each loop over a mix of statements for `--minutes`:
point selects, short ranges, inserts, updates and as many deletes (the table stays near `--rows` rows),
vector searches, full-text searches, counts and small transactions. The server's RSS is sampled
every 5 s. Prints the samples, the RSS after the warm-up (the first fifth of the run) and at the
end, and the growth between them; the goal is under 10 %. Exits 1 when the goal is missed.
"""
import argparse
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import time

import pymysql

from servers import free_port, wait_port

TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/embedb-target"))
DIMS = 16
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def vec(rnd):
    return "[" + ",".join(f"{rnd.random():.4f}" for _ in range(DIMS)) + "]"


def text(rnd):
    return " ".join(rnd.choice(WORDS) for _ in range(8))


def connect(port):
    return pymysql.connect(host="127.0.0.1", port=port, user="root", password="", database="soak", autocommit=True)


def worker(port, seconds, rows, seed, counts):
    rnd = random.Random(seed)
    c = connect(port)
    cur = c.cursor()
    end = time.time() + seconds
    n = errors = 0
    while time.time() < end:
        r = rnd.random()
        i = rnd.randrange(rows * 2)
        try:
            if r < 0.35:
                cur.execute("SELECT * FROM docs WHERE id = %s", (i,))
            elif r < 0.45:
                cur.execute("SELECT id, k FROM docs WHERE k BETWEEN %s AND %s", (i % 1000, i % 1000 + 5))
            elif r < 0.60:
                cur.execute("INSERT INTO docs VALUES (%s, %s, %s, %s) ON DUPLICATE KEY UPDATE k = VALUES(k)",
                            (i, i % 1000, text(rnd), vec(rnd)))
            elif r < 0.65:
                cur.execute("UPDATE docs SET txt = %s WHERE id = %s", (text(rnd), i))
            elif r < 0.80:
                # As many deletes as inserts: ids are drawn from twice the table's size, so the
                # table settles near --rows rows and its indexes stop growing.
                cur.execute("DELETE FROM docs WHERE id = %s", (i,))
            elif r < 0.88:
                cur.execute(f"SELECT id FROM docs ORDER BY VEC_COSINE_DISTANCE(v, '{vec(rnd)}') LIMIT 10")
            elif r < 0.93:
                cur.execute("SELECT id FROM docs WHERE FTS_MATCH_WORD(%s, txt) LIMIT 10", (rnd.choice(WORDS),))
            elif r < 0.96:
                cur.execute("SELECT COUNT(*), SUM(k) FROM docs WHERE k < %s", (i % 1000,))
            else:
                cur.execute("BEGIN")
                cur.execute("UPDATE docs SET k = k + 1 WHERE id = %s", (i,))
                cur.execute("SELECT k FROM docs WHERE id = %s", (i + 1,))
                cur.execute("COMMIT")
            cur.fetchall()
            n += 1
        except pymysql.MySQLError:
            errors += 1  # write conflicts and lock waits are part of the load
            try:
                cur.execute("ROLLBACK")
            except pymysql.MySQLError:
                pass
    counts.put((n, errors))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--rows", type=int, default=13000)
    ap.add_argument("--embedb", default=os.path.join(TARGET, "release", "embedb"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = subprocess.Popen([a.embedb, "serve", "--port", str(port), "--data-dir", os.path.join(tmp, "data")],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "embedb.log"), "w"))
        try:
            wait_port(port, proc, "embedb")
            c = pymysql.connect(host="127.0.0.1", port=port, user="root", password="", autocommit=True)
            cur = c.cursor()
            cur.execute("CREATE DATABASE soak")
            cur.execute("USE soak")
            cur.execute(f"CREATE TABLE docs (id INT PRIMARY KEY, k INT, txt TEXT, v VECTOR({DIMS}), KEY (k), "
                        "VECTOR INDEX iv ((VEC_COSINE_DISTANCE(v))), FULLTEXT INDEX ft (txt) WITH PARSER STANDARD)")
            rnd = random.Random(0)
            for lo in range(0, a.rows, 500):
                values = ",".join(f"({i},{i % 1000},'{text(rnd)}','{vec(rnd)}')" for i in range(lo, min(lo + 500, a.rows)))
                cur.execute("INSERT INTO docs VALUES " + values)
            seconds = a.minutes * 60
            counts = mp.Queue()
            procs = [mp.Process(target=worker, args=(port, seconds, a.rows, s, counts)) for s in range(a.clients)]
            for p in procs:
                p.start()
            samples = []
            start = time.time()
            while time.time() - start < seconds:
                time.sleep(5)
                samples.append((time.time() - start, rss_mb(proc.pid)))
                print(f"{samples[-1][0]:6.0f} s  RSS {samples[-1][1]:8.1f} MB", flush=True)
            done = [counts.get() for _ in procs]
            for p in procs:
                p.join()
            warm = next(s for t, s in samples if t >= seconds / 5)
            last = samples[-1][1]
            growth = (last - warm) / warm * 100
            statements = sum(d[0] for d in done)
            cur.execute("SELECT COUNT(*) FROM docs")
            print(f"\nrows at the end: {cur.fetchone()[0]} (started with {a.rows})")
            print(f"\nstatements: {statements} ({statements / seconds:.0f}/s), errors {sum(d[1] for d in done)}")
            print(f"RSS after warm-up {warm:.1f} MB, at the end {last:.1f} MB, peak {max(s for _, s in samples):.1f} MB: "
                  f"growth {growth:+.1f} % (goal < 10 %)")
            sys.exit(0 if growth < 10 else 1)
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
