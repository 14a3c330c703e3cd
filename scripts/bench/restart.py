#!/usr/bin/env python3
"""Restart-to-index-ready after `kill -9` (issue 15): a vector index loaded from its checkpoint and
reconciled with the table, against today's alternative, rebuilding it from the table.

For each size: load N clustered vectors (64-d, cosine, fixed seed) into a table with an HNSW
index, wait until the index is built and checkpointed, change 1% of the rows (so the checkpoint
is stale, as after any crash), `kill -9`, and time the start until the index is ready — once with
the checkpoint, once with the index files removed (a rebuild). Prints both and their ratio.

    scripts/bench/restart.py --embedb target/release/embedb --rows 100000 1000000
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql

DIMS = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: str, data: Path):
        self.binary, self.data, self.port = binary, data, free_port()
        self.log = data.parent / "server.log"
        self.proc = None

    def start(self) -> float:
        t0 = time.monotonic()
        self.mark = self.log.stat().st_size if self.log.exists() else 0
        f = open(self.log, "ab")
        self.proc = subprocess.Popen([self.binary, "serve", "--port", str(self.port), "--data-dir", str(self.data)],
                                     stdout=f, stderr=subprocess.STDOUT)
        while True:
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root").close()
                return t0
            except pymysql.err.OperationalError:
                time.sleep(0.05)

    def new_log(self) -> str:
        with open(self.log, "rb") as f:
            f.seek(self.mark)
            return f.read().decode(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 3600) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.new_log()):
                return time.monotonic()
            time.sleep(0.05)
        raise TimeoutError(pattern)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def connect(self):
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", database="test", autocommit=True)


def vectors(n: int, seed: int = 1):
    rng = random.Random(seed)
    centers = [[rng.gauss(0, 1) for _ in range(DIMS)] for _ in range(64)]
    for i in range(n):
        c = centers[i % 64]
        yield "[" + ",".join(f"{x + rng.gauss(0, 0.3):.4f}" for x in c) + "]"


def run(binary: str, n: int) -> tuple[float, float]:
    base = Path(tempfile.mkdtemp(prefix="embedb-restart-"))
    srv = Server(binary, base / "data")
    try:
        srv.start()
        c = srv.connect()
        with c.cursor() as cur:
            cur.execute(f"CREATE TABLE pts (id INT PRIMARY KEY, v VECTOR({DIMS}), VECTOR INDEX iv ((VEC_COSINE_DISTANCE(v))))")
            batch, i = [], 0
            for v in vectors(n):
                i += 1
                batch.append(f"({i},'{v}')")
                if len(batch) == 2000:
                    cur.execute("INSERT INTO pts VALUES " + ",".join(batch))
                    batch = []
            if batch:
                cur.execute("INSERT INTO pts VALUES " + ",".join(batch))
        print(f"  {n} rows loaded; waiting for the build and a checkpoint", flush=True)
        srv.wait_log(rf"test\.pts\.iv checkpointed: {n} rows")
        with c.cursor() as cur:
            k = max(1, n // 100)
            cur.execute(f"UPDATE pts SET v = (SELECT v FROM (SELECT v FROM pts WHERE id = 1) x) WHERE id <= {k}")
        c.close()
        srv.kill9()
        t0 = srv.start()
        t1 = srv.wait_log(r"test\.pts\.iv ready from its checkpoint")
        with_checkpoint = t1 - t0
        line = re.search(r"ready from its checkpoint: [^\n]*", srv.new_log()).group(0)
        print(f"  restart with the checkpoint: {with_checkpoint:.2f} s  ({line})", flush=True)
        srv.kill9()
        shutil.rmtree(srv.data / "indexes")
        t0 = srv.start()
        t1 = srv.wait_log(r"test\.pts\.iv built:")
        rebuild = t1 - t0
        print(f"  restart with a rebuild:      {rebuild:.2f} s", flush=True)
        srv.kill9()
        return with_checkpoint, rebuild
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.proc.kill()
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedb", required=True)
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000])
    args = ap.parse_args()
    results = []
    for n in args.rows:
        print(f"{n} rows × {DIMS}-d:", flush=True)
        results.append((n, *run(args.embedb, n)))
    print("\n| rows | restart with checkpoint | restart with rebuild | rebuild / checkpoint |")
    print("|---:|---:|---:|---:|")
    for n, a, b in results:
        print(f"| {n:,} | {a:.1f} s | {b:.1f} s | {b / a:.1f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
