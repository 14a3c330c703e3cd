"""HNSW vector indexes against a real server: recall of `ORDER BY VEC_COSINE_DISTANCE(...) LIMIT k`
(with and without a WHERE filter) against exact ground truth computed here in plain Python,
consistency while other connections insert and delete, and rebuild after kill -9.

The data are seeded Gaussian clusters (like real embeddings, unlike uniform noise); ground truth
uses the same decimal text the server parsed, in double precision.
"""

from __future__ import annotations

import math
import random
import threading
import time
from operator import mul
from typing import Sequence

import pytest

from conftest import connect

DIMS = 64
N_ROWS = 20_000
N_QUERIES = 50
K = 10
BATCH = 500


def clustered(n: int, dims: int, clusters: int, seed: int) -> tuple[list[list[float]], list[list[float]]]:
    """`n` points around `clusters` centres (spread 0.35 around N(0,1) centres), and the centres."""
    rng = random.Random(seed)
    centres = [[rng.gauss(0, 1) for _ in range(dims)] for _ in range(clusters)]
    points = []
    for i in range(n):
        c = centres[rng.randrange(clusters)]
        points.append([round(x + rng.gauss(0, 0.35), 4) for x in c])
    return points, centres


def text(v: Sequence[float]) -> str:
    return "[" + ",".join(repr(x) for x in v) + "]"


def norm(v: Sequence[float]) -> float:
    return math.sqrt(sum(map(mul, v, v)))


def cosine_top(query: Sequence[float], rows: dict[int, list[float]], norms: dict[int, float], k: int,
               keep=lambda i: True) -> list[int]:
    qn = norm(query)
    scored = [(1.0 - sum(map(mul, query, v)) / (qn * norms[i]), i) for i, v in rows.items() if keep(i)]
    scored.sort()
    return [i for _, i in scored[:k]]


def insert(cur, table: str, rows: list[tuple[int, int, list[float]]]) -> None:
    for s in range(0, len(rows), BATCH):
        chunk = rows[s:s + BATCH]
        cur.execute(f"INSERT INTO {table} VALUES " + ",".join(f"({i}, {c}, '{text(v)}')" for i, c, v in chunk))


def wait_index_built(cur, table: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cur.execute("SELECT ROWS_STABLE_NOT_INDEXED, ERROR_MESSAGE FROM information_schema.TIFLASH_INDEXES "
                    "WHERE TIDB_TABLE = %s AND INDEX_KIND = 'Vector'", (table,))
        got = cur.fetchall()
        if got and all(r[0] == 0 and r[1] is None for r in got):
            return
        time.sleep(0.2)
    pytest.fail(f"vector index of {table} not built in {timeout}s")


def explain(cur, sql: str) -> str:
    cur.execute("EXPLAIN " + sql)
    return "\n".join(str(r[1]) for r in cur.fetchall())


@pytest.fixture(scope="module")
def recall_set():
    points, centres = clustered(N_ROWS, DIMS, 100, seed=20251125)
    rng = random.Random(7)
    queries = []
    for _ in range(N_QUERIES):
        c = centres[rng.randrange(len(centres))]
        queries.append([round(x + rng.gauss(0, 0.35), 4) for x in c])
    rows = {i + 1: p for i, p in enumerate(points)}
    return rows, {i: norm(v) for i, v in rows.items()}, queries


def test_recall_with_and_without_filter(conn, recall_set) -> None:
    rows, norms, queries = recall_set
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE docs (id INT PRIMARY KEY, cat INT, v VECTOR({DIMS}), "
                    "VECTOR INDEX idx ((VEC_COSINE_DISTANCE(v))))")
        insert(cur, "docs", [(i, i % 10, v) for i, v in rows.items()])
        wait_index_built(cur, "docs")
        cur.execute("SELECT COUNT(*) FROM docs")
        assert cur.fetchone()[0] == N_ROWS

        sql = "SELECT id FROM docs ORDER BY VEC_COSINE_DISTANCE(v, '{q}') LIMIT %d" % K
        assert "annIndex:COSINE(v.." in explain(cur, sql.format(q=text(queries[0])))
        assert "graph candidates" in explain(cur, sql.format(q=text(queries[0])))
        hits = 0
        for q in queries:
            cur.execute(sql.format(q=text(q)))
            got = [r[0] for r in cur.fetchall()]
            assert len(got) == K
            hits += len(set(got) & set(cosine_top(q, rows, norms, K)))
        recall = hits / (K * len(queries))
        assert recall >= 0.95, f"recall@{K} {recall:.3f}"

        # Filters of every selectivity: 10 % (post-filtered graph search), 1 % (either way, by
        # the sampled selectivity), 0.1 % (the filter's rows are read and searched exactly), and
        # one that rejects the nearest rows (post-filtering gives up; the filter's rows are read).
        filters = [
            ("cat = 3", lambda i, q: i % 10 == 3, "post-filtered graph"),
            ("id % 100 = 7", lambda i, q: i % 100 == 7, "filtered"),
            ("id % 1000 = 7", lambda i, q: i % 1000 == 7, "exact over 20 filtered rows"),
            ("VEC_COSINE_DISTANCE(v, '{q}') > 0.2", lambda i, q: cos_dist(q, rows[i], norms[i]) > 0.2, "filtered"),
        ]
        for where, keep, strategy in filters:
            fsql = "SELECT id FROM docs WHERE %s ORDER BY VEC_COSINE_DISTANCE(v, '{q}') LIMIT %d" % (where, K)
            plan = explain(cur, fsql.format(q=text(queries[0])))
            assert "annIndex:COSINE(v.." in plan and strategy in plan, plan
            hits = 0
            for q in queries:
                cur.execute(fsql.format(q=text(q)))
                got = [r[0] for r in cur.fetchall()]
                assert len(got) == K, f"{where}: a filtered search returns k rows when k rows match"
                assert all(keep(i, q) for i in got), where
                hits += len(set(got) & set(cosine_top(q, rows, norms, K, keep=lambda i: keep(i, q))))
            recall = hits / (K * len(queries))
            assert recall >= 0.95, f"WHERE {where}: recall@{K} {recall:.3f}"


def cos_dist(q: Sequence[float], v: Sequence[float], vn: float) -> float:
    return 1.0 - sum(map(mul, q, v)) / (norm(q) * vn)


def test_consistent_under_concurrent_writes(embedb_server, conn, db) -> None:
    """Writers insert and delete while a reader searches. A row deleted before a query started is
    never returned; once the writers stop, index answers match the exact answers (recall@10
    >= 0.95, at least 8 of 10 per query, only live rows)."""
    dims, start_rows = 8, 3000
    points, _ = clustered(start_rows + 4000, dims, 20, seed=99)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE cw (id INT PRIMARY KEY, cat INT, v VECTOR({dims}), "
                    "VECTOR INDEX idx ((VEC_COSINE_DISTANCE(v))))")
        insert(cur, "cw", [(i, 0, points[i]) for i in range(start_rows)])
        wait_index_built(cur, "cw")

    lock = threading.Lock()
    deleted_at: dict[int, float] = {}  # id → time its DELETE was acknowledged
    stop = threading.Event()
    errors: list[BaseException] = []

    def guard(f):
        def run():
            try:
                f()
            except BaseException as e:  # noqa: BLE001 - reported by the main thread
                errors.append(e)
                stop.set()
        return run

    @guard
    def inserter() -> None:
        with connect(*embedb_server, database=db) as c, c.cursor() as cur:
            i = start_rows
            while not stop.is_set() and i + 10 <= len(points):
                cur.execute("INSERT INTO cw VALUES " + ",".join(f"({j}, 1, '{text(points[j])}')" for j in range(i, i + 10)))
                i += 10

    @guard
    def deleter() -> None:
        rng = random.Random(5)
        with connect(*embedb_server, database=db) as c, c.cursor() as cur:
            while not stop.is_set():
                victim = rng.randrange(start_rows)
                cur.execute("DELETE FROM cw WHERE id = %s", (victim,))
                with lock:
                    deleted_at.setdefault(victim, time.monotonic())

    violations: list[str] = []
    queries_run = 0

    @guard
    def reader() -> None:
        nonlocal queries_run
        rng = random.Random(11)
        with connect(*embedb_server, database=db) as c, c.cursor() as cur:
            while not stop.is_set():
                q = points[rng.randrange(len(points))]
                started = time.monotonic()
                cur.execute(f"SELECT id FROM cw ORDER BY VEC_COSINE_DISTANCE(v, '{text(q)}') LIMIT 10")
                got = [r[0] for r in cur.fetchall()]
                with lock:
                    gone = [i for i in got if i in deleted_at and deleted_at[i] < started]
                if gone:
                    violations.append(f"query at {started:.3f} returned rows deleted before it: {gone}")
                queries_run += 1

    threads = [threading.Thread(target=t) for t in (inserter, deleter, reader)]
    for t in threads:
        t.start()
    time.sleep(6)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    assert queries_run > 10, "the reader made progress"
    assert not violations, violations[:5]

    with conn.cursor() as cur:
        cur.execute("SELECT id, VEC_AS_TEXT(v) FROM cw")
        live = {i: [float(x) for x in v.strip("[]").split(",")] for i, v in cur.fetchall()}
        assert deleted_at and any(i not in live for i in deleted_at), "deletes happened"
        norms = {i: norm(v) for i, v in live.items()}
        rng = random.Random(3)
        hits = 0
        for _ in range(20):
            q = points[rng.randrange(len(points))]
            sql = f"SELECT id FROM cw ORDER BY VEC_COSINE_DISTANCE(v, '{text(q)}') LIMIT 10"
            assert "graph candidates" in explain(cur, sql)
            cur.execute(sql)
            got = [r[0] for r in cur.fetchall()]
            # Only committed, live rows, and (HNSW being approximate) nearly the exact answer:
            # a row the index lost would show up as a miss here.
            assert len(got) == 10 and all(i in live for i in got), got
            exact = cosine_top(q, live, norms, 10)
            assert len(set(got) & set(exact)) >= 8, (got, exact)
            hits += len(set(got) & set(exact))
        assert hits >= 0.95 * 200, f"recall@10 {hits / 200:.3f} against exact search"


def test_rebuilt_after_kill9(private_server, restart_server) -> None:
    dims = 16
    points, _ = clustered(3000, dims, 10, seed=4)
    host, port = private_server.address
    queries = [points[i] for i in range(0, 3000, 300)]
    # Row 300 gets a NULL vector: its distance is NULL, which sorts first, as in the exact scan.
    sql = "SELECT id FROM r ORDER BY VEC_L2_DISTANCE(v, '{q}') LIMIT 5"
    # The graph built before the crash and the one rebuilt after it differ (concurrent inserts
    # link differently), so at the default ef two approximate answers may differ by a row. With
    # ef above the row count the walk visits the whole graph: both answers are the exact one, and
    # any row the rebuilt index lost or kept by mistake shows.
    exhaustive = "SET @@embedb_hnsw_ef_search = 4000"
    with connect(host, port, "test") as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE r (id INT PRIMARY KEY, cat INT, v VECTOR({dims}), "
                    "VECTOR INDEX idx ((VEC_L2_DISTANCE(v))))")
        insert(cur, "r", [(i, 0, points[i]) for i in range(2000)])
        wait_index_built(cur, "r")
        # Acknowledged just before the crash: a delete, an update and new rows.
        cur.execute("DELETE FROM r WHERE id = 0")
        cur.execute("UPDATE r SET v = NULL WHERE id = 300")
        insert(cur, "r", [(i, 0, points[i]) for i in range(2000, 3000)])
        cur.execute(exhaustive)
        before = []
        for q in queries:
            cur.execute(sql.format(q=text(q)))
            before.append([r[0] for r in cur.fetchall()])

    host, port = restart_server(private_server, hard=True)
    with connect(host, port, "test") as c, c.cursor() as cur:
        wait_index_built(cur, "r")
        cur.execute("SELECT ROWS_STABLE_INDEXED FROM information_schema.TIFLASH_INDEXES WHERE TIDB_TABLE = 'r'")
        assert cur.fetchone()[0] == 2999
        assert "annIndex:L2(v.." in explain(cur, sql.format(q=text(queries[0])))
        assert "graph candidates" in explain(cur, sql.format(q=text(queries[0])))
        cur.execute(exhaustive)
        after = []
        for q in queries:
            cur.execute(sql.format(q=text(q)))
            after.append([r[0] for r in cur.fetchall()])
    live = {i: points[i] for i in range(1, 3000) if i != 300}

    def l2_top(q, k):
        return [i for _, i in sorted((sum((a - b) ** 2 for a, b in zip(q, v)), i) for i, v in live.items())[:k]]

    exact = [[300] + l2_top(q, 4) for q in queries]
    assert after == exact
    assert all(0 not in a for a in after)
    # The live graph before the crash answered the same, but for at most one query: a graph grown
    # by parallel inserts beside a delete can leave a node that even an exhaustive beam does not
    # reach (HNSW is approximate; seen once in many runs: a true 4th nearest missing).
    assert sum(b == e for b, e in zip(before, exact)) >= len(queries) - 1, (before, exact)


def test_saved_on_clean_shutdown_and_loaded(private_server, restart_server) -> None:
    """SIGTERM saves the graph; the next start loads it (no rebuild) and answers as before. A
    write after that, then kill -9: the saved graph is stale, so the next start reconciles it
    with the table (neither trusted as is nor rebuilt)."""
    dims = 16
    points, _ = clustered(3000, dims, 10, seed=5)
    queries = [points[i] for i in range(5, 3000, 300)]
    sql = "SELECT id FROM s ORDER BY VEC_L2_DISTANCE(v, '{q}') LIMIT 5"
    log = private_server.log_path

    def answers(cur) -> list[list[int]]:
        out = []
        for q in queries:
            cur.execute(sql.format(q=text(q)))
            out.append([r[0] for r in cur.fetchall()])
        return out

    def l2_top(live, q, k):
        return [i for _, i in sorted((sum((a - b) ** 2 for a, b in zip(q, v)), i) for i, v in live.items())[:k]]

    def check(got, live):
        # The NULL vector sorts first, as in the exact scan; the rest is the graph's answer:
        # existing rows only, and nearly all of the exact top 4 (HNSW is approximate).
        assert all(a[0] == 7 and len(a) == 5 and set(a[1:]) <= set(live) for a in got)
        hits = sum(len(set(a[1:]) & set(l2_top(live, q, 4))) for a, q in zip(got, queries))
        assert hits >= 0.9 * 4 * len(queries), f"recall {hits / (4 * len(queries)):.3f}"

    host, port = private_server.address
    with connect(host, port, "test") as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE s (id INT PRIMARY KEY, cat INT, v VECTOR({dims}), "
                    "VECTOR INDEX idx ((VEC_L2_DISTANCE(v))) COMMENT 'm=24, ef_search=80')")
        insert(cur, "s", [(i, 0, points[i]) for i in range(2000)])
        cur.execute("UPDATE s SET v = NULL WHERE id = 7")
        wait_index_built(cur, "s")
        before = answers(cur)
    live = {i: points[i] for i in range(2000) if i != 7}
    check(before, live)

    host, port = restart_server(private_server, hard=False)
    text_log = log.read_text(errors="replace")
    assert "vector index test.s.idx saved: 1999 rows" in text_log
    assert "vector index test.s (id " in text_log and "loaded from" in text_log
    with connect(host, port, "test") as c, c.cursor() as cur:
        # Ready at once: nothing is being built.
        cur.execute("SELECT ROWS_STABLE_INDEXED, ROWS_STABLE_NOT_INDEXED FROM information_schema.TIFLASH_INDEXES "
                    "WHERE TIDB_TABLE = 's'")
        assert cur.fetchone() == (2000, 0)
        assert "graph candidates" in explain(cur, sql.format(q=text(queries[0])))
        # The same graph, so the very same answers.
        assert answers(cur) == before
        # The loaded graph follows new writes like a built one.
        cur.execute("DELETE FROM s WHERE id = 5")
        insert(cur, "s", [(i, 0, points[i]) for i in range(2000, 3000)])
        del live[5]
        live.update({i: points[i] for i in range(2000, 3000)})
        got = answers(cur)
        check(got, live)
        assert all(5 not in a for a in got)

    loads = text_log.count("loaded from")
    host, port = restart_server(private_server, hard=True)
    with connect(host, port, "test") as c, c.cursor() as cur:
        wait_index_built(cur, "s")
        got = answers(cur)
        check(got, live)
        assert all(5 not in a for a in got)
    text_log = log.read_text(errors="replace")
    assert text_log.count("loaded from") == loads + 1, "the crash restart loads the last saved graph"
    assert "vector index test.s.idx ready from its checkpoint: 2999 rows checked" in text_log
    assert "vector index test.s.idx built: 2999 rows" not in text_log
