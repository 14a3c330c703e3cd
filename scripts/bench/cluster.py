#!/usr/bin/env python3
"""Cluster mode's costs, measured in one run (issue 15), against the single node a user runs today:

* commit latency (one client, one-row autocommit INSERTs) and throughput (8 clients): the local
  redb engine vs the cluster writer on SlateDB over SeaweedFS, and a write sent to a reader
  (forwarded, then waited for until the reader has it);
* reads (primary-key point reads and top-10 vector searches) on the writer and on readers, with
  1, 2 and 3 nodes serving at once;
* failover time with the default lease (3 s): SIGKILL the writer, time until a commit succeeds.

It starts SeaweedFS, a three-member etcd and the nodes itself (`tests/python/cluster_infra.py`).

    scripts/bench/cluster.py --embedb target/release/embedb
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
from cluster_infra import Node, caught_up, start_infra, start_nodes, writer_of  # noqa: E402
from sqltest import EmbedbServer  # noqa: E402


def connect(host: str, port: int):
    return pymysql.connect(host=host, port=port, user="root", database="test", autocommit=True)


def setup(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS w (id BIGINT PRIMARY KEY, note VARCHAR(20))")
        cur.execute("CREATE TABLE IF NOT EXISTS r (id INT PRIMARY KEY, v VECTOR(16), VECTOR INDEX iv ((VEC_COSINE_DISTANCE(v))))")
        rng = random.Random(1)
        cur.execute("DELETE FROM r")
        for start in range(0, 5000, 500):
            cur.execute("INSERT INTO r VALUES " + ",".join(
                f"({i}, '[{','.join(f'{rng.gauss(0, 1):.3f}' for _ in range(16))}]')" for i in range(start, start + 500)))


def commit_latency(addr, n: int = 300) -> tuple[float, float]:
    c = connect(*addr)
    base = random.randint(1, 1 << 40)
    times = []
    with c.cursor() as cur:
        for i in range(n):
            t = time.perf_counter()
            cur.execute("INSERT INTO w VALUES (%s, 'x')", (base + i,))
            times.append(time.perf_counter() - t)
    c.close()
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.99)] * 1000


def run_clients(addrs, threads: int, seconds: float, work) -> float:
    """Operations per second of `threads` clients spread over `addrs` for `seconds`."""
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        c = connect(*addrs[k % len(addrs)])
        rng = random.Random()  # fresh keys in every phase
        with c.cursor() as cur:
            while time.monotonic() < stop:
                work(cur, rng, k)
                counts[k] += 1
        c.close()

    ts = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / seconds


def insert(cur, rng, k):
    cur.execute("INSERT INTO w VALUES (%s, 'y')", (rng.randint(1, 1 << 62),))


def point(cur, rng, k):
    cur.execute("SELECT v FROM r WHERE id = %s", (rng.randrange(5000),))
    cur.fetchall()


def search(cur, rng, k):
    q = "[" + ",".join(f"{rng.gauss(0, 1):.3f}" for _ in range(16)) + "]"
    cur.execute("SELECT id FROM r ORDER BY VEC_COSINE_DISTANCE(v, %s) LIMIT 10", (q,))
    cur.fetchall()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedb", required=True)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--failovers", type=int, default=5)
    args = ap.parse_args()
    binary = Path(args.embedb)
    base = Path(tempfile.mkdtemp(prefix="embedb-cluster-bench-"))
    rows = []

    single = EmbedbServer(binary=binary, data_dir=base / "single", log_path=base / "single.log")
    single.start()
    infra = start_infra(base / "infra")
    nodes = start_nodes(binary, base / "nodes", infra, "s3://embedb/bench", ttl=3)
    try:
        s_addr = single.address
        setup(connect(*s_addr))
        w = writer_of(nodes)
        setup(w.connect())
        caught_up(nodes)
        readers = [n for n in nodes if n is not w]

        print("commit latency, one client (p50 / p99 ms):", flush=True)
        for name, addr in (("single node, local redb", s_addr), ("cluster writer, SlateDB on SeaweedFS", w.address),
                           ("cluster reader, forwarded + read-your-writes", readers[0].address)):
            p50, p99 = commit_latency(addr)
            print(f"  {name}: {p50:.2f} / {p99:.2f}", flush=True)
            rows.append(("commit latency p50", name, f"{p50:.2f} ms"))
        print("commit throughput, 8 clients (commits/s):", flush=True)
        for name, addrs in (("single node", [s_addr]), ("cluster writer", [w.address]), ("cluster, through the readers", [r.address for r in readers])):
            qps = run_clients(addrs, 8, args.seconds, insert)
            print(f"  {name}: {qps:.0f}", flush=True)
            rows.append(("commits/s, 8 clients", name, f"{qps:.0f}"))
        caught_up(nodes)
        for label, work in (("point reads/s", point), ("vector searches/s", search)):
            print(f"{label}, 2 clients per serving node:", flush=True)
            single_qps = run_clients([s_addr], 2, args.seconds, work)
            print(f"  single node: {single_qps:.0f}", flush=True)
            rows.append((label, "single node", f"{single_qps:.0f}"))
            for k in (1, 2, 3):
                serving = ([w] + readers)[:k] if k == 3 else readers[:k]
                qps = run_clients([n.address for n in serving], 2 * k, args.seconds, work)
                print(f"  {k} cluster node(s) serving: {qps:.0f} ({qps / k:.0f} per node)", flush=True)
                rows.append((label, f"{k} cluster node(s)", f"{qps:.0f} ({qps / k:.0f}/node)"))

        print(f"failover with the default lease (3 s), {args.failovers} × SIGKILL of the writer:", flush=True)
        times = []
        for i in range(args.failovers):
            old = writer_of(nodes)
            others = [n for n in nodes if n is not old]
            t0 = time.monotonic()
            old.kill()
            attempt = 0
            while True:
                attempt += 1
                try:
                    c = others[attempt % 2].connect(connect_timeout=2, read_timeout=10)
                    with c.cursor() as cur:
                        cur.execute("INSERT INTO w VALUES (%s, 'fo')", (random.randint(1, 1 << 62),))
                    c.close()
                    break
                except pymysql.err.MySQLError:
                    time.sleep(0.05)
            took = time.monotonic() - t0
            times.append(took)
            print(f"  {i}: {old.name} killed → first commit after {took:.2f} s", flush=True)
            old.start()
            caught_up(nodes)
        rows.append(("failover (kill → first commit)", "median of " + str(len(times)), f"{statistics.median(times):.2f} s (max {max(times):.2f} s)"))
    finally:
        for n in nodes:
            n.cleanup()
        infra.stop()
        single.cleanup()

    print("\n| measure | where | value |\n|---|---|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
