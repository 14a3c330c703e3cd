#!/usr/bin/env python3
"""Async auto embedding (issue 16) against sync, with a provider double that answers after a fixed
latency (Jina AI's API shape, `tests/python/doubles/embedding_api.py`).

1. INSERT latency and rows/s, one row per statement, into a sync column and into an async column
   (goal: the async INSERT's p50 does not depend on the provider's latency).
2. Backlog drain: N rows committed in one transaction into an async column, then the time until
   `EMBEDDING_WAIT` says the backlog is empty, against the ideal
   `ceil(N / batch) / concurrency × latency` (goal ≤ 1.2×).

    scripts/bench/async_embed.py --embedb target/release/embedb [--latency 0.1] [--rows 5000]
"""

from __future__ import annotations

import argparse
import math
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
from doubles.embedding_api import EmbeddingDouble  # noqa: E402

KEY = "bench-key"
BATCH = 16  # Jina requests carry 16 texts
DDL = """CREATE TABLE {name} (id INT PRIMARY KEY, content TEXT,
  embedding VECTOR(64) GENERATED ALWAYS AS (EMBED_TEXT('jina_ai/bench-model', content{opts})) STORED,
  VECTOR INDEX ((VEC_COSINE_DISTANCE(embedding))))"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inserts(cur, table: str, ids: range, tag: str) -> list[float]:
    out = []
    for i in ids:
        t = time.perf_counter()
        cur.execute(f"INSERT INTO {table} (id, content) VALUES ({i}, '{tag} text {i}')")
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embedb", required=True)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--inserts", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    a = ap.parse_args()

    double = EmbeddingDouble(valid_keys={KEY}).start()
    double.delay = a.latency
    work = Path(tempfile.mkdtemp(prefix="embedb-async-bench-"))
    port = free_port()
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen([a.embedb, "serve", "--port", str(port), "--data-dir", str(work / "data"),
                             "--jina-api-base", double.url, "--embed-concurrency", str(a.concurrency),
                             "--embed-max-retries", "0"], stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            try:
                c = pymysql.connect(host="127.0.0.1", port=port, user="root", database="test", autocommit=True,
                                    read_timeout=600)
                break
            except pymysql.err.OperationalError:
                time.sleep(0.05)
        cur = c.cursor()
        cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY = '{KEY}'")
        cur.execute(DDL.format(name="sync_docs", opts=""))
        cur.execute(DDL.format(name="async_docs", opts=""", '{"embedb.mode": "async"}'"""))

        print(f"provider double: {a.latency * 1000:.0f} ms per request, {BATCH} texts per request, "
              f"embed_concurrency {a.concurrency}")
        print("\n1. one-row INSERTs")
        print("| column | INSERT p50 | INSERT p99 | rows/s |")
        print("|---|---:|---:|---:|")
        p50 = {}
        for table, tag in [("sync_docs", "sync"), ("async_docs", "async")]:
            t0 = time.perf_counter()
            lat = sorted(inserts(cur, table, range(a.inserts), tag))
            took = time.perf_counter() - t0
            p50[tag] = statistics.median(lat)
            print(f"| {tag} | {p50[tag] * 1000:.2f} ms | {lat[int(len(lat) * 0.99) - 1] * 1000:.2f} ms | {a.inserts / took:,.0f} |")
        print(f"async p50 / provider latency: {p50['async'] / a.latency:.3f}; sync p50 / async p50: {p50['sync'] / p50['async']:.0f}x")
        cur.execute("SELECT EMBEDDING_WAIT('async_docs', 120)")
        assert cur.fetchone()[0] == 0

        print(f"\n2. draining {a.rows:,} rows committed in one transaction")
        cur.execute("BEGIN")
        for s in range(0, a.rows, 500):
            ids = range(10_000 + s, 10_000 + min(s + 500, a.rows))
            cur.execute("INSERT INTO async_docs (id, content) VALUES " + ",".join(f"({i}, 'drain text {i}')" for i in ids))
        double.take()
        cur.execute("COMMIT")
        t0 = time.perf_counter()
        cur.execute("SELECT EMBEDDING_WAIT('async_docs', 600)")
        left = cur.fetchone()[0]
        took = time.perf_counter() - t0
        reqs = double.take()
        ideal = math.ceil(a.rows / BATCH) / a.concurrency * a.latency
        print(f"drained in {took:.2f} s ({left} left), {len(reqs)} requests, {a.rows / took:,.0f} rows/s; "
              f"ideal {ideal:.2f} s; drain / ideal = {took / ideal:.2f}")
        cur.execute("SELECT COUNT(*) FROM async_docs WHERE embedding IS NULL")
        assert cur.fetchone()[0] == 0
    finally:
        proc.terminate()
        proc.wait(30)
        double.stop()


if __name__ == "__main__":
    main()
