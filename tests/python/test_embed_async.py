"""Async auto embedding (``'{"embedb.mode": "async"}'`` in ``EMBED_TEXT``'s options) against a local
double of Jina AI's API (``doubles/embedding_api.py``): INSERTs return at once while the provider
is down, the durable backlog drains when it is back, nothing is lost or embedded twice, ``kill -9``
during the drain re-sends nothing already stored, an UPDATE racing the worker ends with the newest
text, a text the provider rejects ends up failed (visible, retried on demand), and the backlog is
visible in ``information_schema`` and in the warnings of searches that skip its rows."""

from __future__ import annotations

import collections
import contextlib
import json
import math
import threading
import time
from pathlib import Path
from typing import Iterator

import pymysql
import pytest

from conftest import connect, own_server
from doubles.embedding_api import running, EmbeddingDouble, vector_for
from sqltest import EmbedbServer

KEY = "jina-SECRET-async-key"
DIMS = 64  # the double's size for a model it does not know
MODEL = "jina_ai/async-test-model"
DOWN = (503, {}, {"detail": "service unavailable"})


def create_docs(cur, name: str = "docs") -> None:
    cur.execute(f"""CREATE TABLE {name} (
        id INT PRIMARY KEY,
        content TEXT,
        embedding VECTOR({DIMS}) GENERATED ALWAYS AS (EMBED_TEXT('{MODEL}', content, '{{"embedb.mode": "async"}}')) STORED,
        VECTOR INDEX ((VEC_COSINE_DISTANCE(embedding))),
        FULLTEXT INDEX (content) WITH PARSER STANDARD)""")


@pytest.fixture(scope="module")
def double() -> Iterator[EmbeddingDouble]:
    with running({KEY}) as d:
        yield d


@pytest.fixture(scope="module")
def server(embedb_binary: Path, double: EmbeddingDouble,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbedbServer]:
    # No HTTP-level retries: the backlog's own retries are under test.
    # (A flag, not the environment: the server is restarted.)
    args = ("--embed-max-retries", "0", "--embed-concurrency", "4", "--embed-timeout-secs", "10",
            "--jina-api-base", double.url)
    with own_server(embedb_binary, tmp_path_factory.mktemp("embedb-async"), {}, args) as srv:
        yield srv


@pytest.fixture
def conn(server: EmbedbServer, double: EmbeddingDouble, request: pytest.FixtureRequest) -> Iterator[pymysql.Connection]:
    name = "a_" + request.node.name[:50].lower()
    double.reset()
    c = connect(*server.address, autocommit=True)
    with c.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"USE `{name}`")
        cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY = '{KEY}'")
    try:
        yield c
    finally:
        double.reset()
        with contextlib.suppress(pymysql.Error):
            c.close()


def backlog(cur, table: str = "docs") -> dict:
    cur.execute("SELECT PENDING, FAILED, EMBEDDED, OLDEST_PENDING_SECONDS, LAST_ERROR, MODE, MODEL "
                "FROM information_schema.EMBEDDING_BACKLOG WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table,))
    rows = cur.fetchall()
    assert len(rows) == 1, rows
    keys = ("pending", "failed", "embedded", "oldest", "error", "mode", "model")
    return dict(zip(keys, rows[0]))


def vectors(cur, table: str = "docs") -> dict[int, list[float] | None]:
    cur.execute(f"SELECT id, VEC_AS_TEXT(embedding) FROM {table} ORDER BY id")
    return {i: (json.loads(v) if v is not None else None) for i, v in cur.fetchall()}


def assert_vector_of(got: list[float] | None, text: str) -> None:
    assert got is not None, f"no vector for {text!r}"
    want = vector_for(text, DIMS)
    assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(got, want)), text


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def text_of(i: int, tag: str = "") -> str:
    """Row i's text; a test of its own `tag` gets texts no other test cached."""
    return f"{tag}document {i} on subject {i % 97} with marker w{i}x"


# -- DDL ----------------------------------------------------------------------------------------

def test_mode_option_is_checked_and_shown_as_written(conn: pymysql.Connection) -> None:
    with conn.cursor() as cur:
        for opts, needle in [('{"embedb.mode": "later"}', "embedb.mode"), ('{"embedb.modes": "async"}', "unknown option 'embedb.modes'")]:
            with pytest.raises(pymysql.MySQLError) as ei:
                cur.execute(f"CREATE TABLE bad (c TEXT, e VECTOR(64) GENERATED ALWAYS AS (EMBED_TEXT('{MODEL}', c, '{opts}')) STORED)")
            assert ei.value.args[0] == 1210 and needle in ei.value.args[1], ei.value.args
        create_docs(cur)
        cur.execute("SHOW CREATE TABLE docs")
        assert '"embedb.mode": "async"' in cur.fetchone()[1]
        assert backlog(cur)["mode"] == "async" and backlog(cur)["model"] == MODEL


def test_embedb_options_are_never_sent_to_the_provider(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    with conn.cursor() as cur:
        create_docs(cur)
        cur.execute("INSERT INTO docs (id, content) VALUES (1, 'a text')")
        cur.execute("SELECT EMBEDDING_WAIT('docs', 30)")
        assert cur.fetchone()[0] == 0
    bodies = [r.body for r in double.take()]
    assert bodies and all(not any(k.startswith("embedb") for k in b) for b in bodies), bodies


# -- outage ---------------------------------------------------------------------------------------

def test_ingest_through_a_30s_provider_outage_loses_nothing_and_embeds_each_text_once(
        conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    n, per_statement = 10_000, 100
    with conn.cursor() as cur:
        create_docs(cur)
        # The search below runs during the outage: its query text is embedded (and cached) now.
        cur.execute("SELECT id FROM docs ORDER BY VEC_EMBED_COSINE_DISTANCE(embedding, 'document 9999') LIMIT 5")
        latencies = []
        down_at = None
        for s in range(n // per_statement):
            if s == n // per_statement // 2:
                double.persistent = DOWN  # the provider goes down in the middle of the ingest
                down_at = time.monotonic()
            ids = range(s * per_statement, (s + 1) * per_statement)
            t = time.perf_counter()
            cur.execute("INSERT INTO docs (id, content) VALUES " + ",".join(f"({i}, '{text_of(i)}')" for i in ids))
            latencies.append(time.perf_counter() - t)
        latencies.sort()
        # Every INSERT returned at once, outage or not (no provider call in the statement).
        assert latencies[len(latencies) // 2] < 0.5 and latencies[-1] < 3.0, (latencies[len(latencies) // 2], latencies[-1])

        # While it is down: rows are pending, the error is visible, searches skip and say so,
        # full-text search finds the pending rows.
        wait_for(lambda: backlog(cur)["error"] is not None, 15, "the outage's error")
        state = backlog(cur)
        assert state["pending"] > 0 and "service unavailable" in state["error"], state
        assert state["oldest"] is not None and state["oldest"] >= 0
        cur.execute("SELECT id FROM docs ORDER BY VEC_EMBED_COSINE_DISTANCE(embedding, 'document 9999') LIMIT 5")
        found = [r[0] for r in cur.fetchall()]
        cur.execute("SHOW WARNINGS")
        warnings = cur.fetchall()
        assert any("have no embedding yet" in w[2] and "pending" in w[2] for w in warnings), warnings
        cur.execute("SELECT COUNT(*) FROM docs WHERE embedding IS NULL")
        unembedded = cur.fetchone()[0]
        assert unembedded > 0
        cur.execute("SELECT id FROM docs WHERE embedding IS NULL LIMIT 1")
        pending_id = cur.fetchone()[0]
        assert pending_id not in found, "a row without a vector came back from a vector search"
        cur.execute(f"SELECT id FROM docs WHERE FTS_MATCH_WORD('w{pending_id}x', content)")
        assert [r[0] for r in cur.fetchall()] == [pending_id]

        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        double.persistent = None  # back
        cur.execute("SELECT EMBEDDING_WAIT('docs', 50)")
        assert cur.fetchone()[0] == 0
        state = backlog(cur)
        assert (state["pending"], state["failed"]) == (0, 0), state

        got = vectors(cur)
        assert sorted(got) == list(range(n)), "rows lost"
        for i in range(0, n, 37):
            assert_vector_of(got[i], text_of(i))
        assert all(v is not None for v in got.values())
        cur.execute("SELECT id FROM docs ORDER BY VEC_EMBED_COSINE_DISTANCE(embedding, %s) LIMIT 1", (text_of(4242),))
        assert cur.fetchone()[0] == 4242
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall() == ()
    counts = collections.Counter(double.served)
    assert set(counts) == {text_of(i) for i in range(n)} | {"document 9999"}
    twice = [t for t, c in counts.items() if c > 1]
    assert not twice, f"{len(twice)} texts embedded more than once, e.g. {twice[:3]}"


# -- kill -9 during the drain -------------------------------------------------------------------

K = "kill: "


def test_kill_during_the_drain_loses_nothing_and_resends_nothing_stored(
        server: EmbedbServer, conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    n = 2000
    double.delay = 0.5  # a drain of ~16 s: 4 rounds of 32 requests, 4 at a time
    with conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        db = cur.fetchone()[0]
        create_docs(cur)
        for s in range(0, n, 500):
            cur.execute("INSERT INTO docs (id, content) VALUES " + ",".join(f"({i}, '{text_of(i, K)}')" for i in range(s, s + 500)))
        wait_for(lambda: backlog(cur)["embedded"] >= 512, 60, "a first stored round")
        assert backlog(cur)["pending"] > 0, "drained before the kill: make the drain slower"
    conn.close()
    double.persistent = DOWN  # nothing more is stored until we have looked
    server.restart(hard=True)
    c = connect(*server.address, database=db, autocommit=True)
    try:
        with c.cursor() as cur:
            before = {i for i, v in vectors(cur).items() if v is not None}
            assert 0 < len(before) < n
            served_before = collections.Counter(double.served)
            double.served.clear()
            double.delay = 0.0
            double.persistent = None
            cur.execute("SELECT EMBEDDING_WAIT('docs', 50)")
            assert cur.fetchone()[0] == 0
            got = vectors(cur)
            assert sorted(got) == list(range(n)) and all(v is not None for v in got.values())
            for i in range(0, n, 29):
                assert_vector_of(got[i], text_of(i, K))
            resent = set(double.served)
            stored_texts = {text_of(i, K) for i in before}
            assert not (resent & stored_texts), f"{len(resent & stored_texts)} stored texts were sent again"
            # Everything was sent, and only texts that were in flight at the kill twice.
            assert set(served_before) | resent == {text_of(i, K) for i in range(n)}
    finally:
        c.close()


# -- an UPDATE racing the worker -----------------------------------------------------------------

def test_an_update_racing_the_worker_ends_with_the_newest_text(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    with conn.cursor() as cur:
        create_docs(cur)
        double.gate = threading.Event()
        cur.execute("INSERT INTO docs (id, content) VALUES (1, 'the old text')")
        # The worker has sent the old text and waits for the reply ...
        wait_for(lambda: any("the old text" in r.body.get("input", []) for r in list(double.requests)), 15, "the worker's request")
        # ... when the text changes.
        cur.execute("UPDATE docs SET content = 'the new text' WHERE id = 1")
        double.gate.set()
        cur.execute("SELECT EMBEDDING_WAIT('docs', 30)")
        assert cur.fetchone()[0] == 0
        assert_vector_of(vectors(cur)[1], "the new text")
        assert double.served.count("the old text") == 1 and double.served.count("the new text") == 1
        # And the other way round: the worker stores first, the UPDATE queues the row again.
        double.gate = None
        cur.execute("UPDATE docs SET content = 'the newest text' WHERE id = 1")
        cur.execute("SELECT EMBEDDING_WAIT('docs', 30)")
        assert cur.fetchone()[0] == 0
        assert_vector_of(vectors(cur)[1], "the newest text")
        # NULL text: NULL vector, nothing queued; a deleted row takes its entry with it.
        double.persistent = DOWN
        cur.execute("INSERT INTO docs (id, content) VALUES (2, NULL), (3, 'to be deleted')")
        cur.execute("DELETE FROM docs WHERE id = 3")
        cur.execute("SELECT ROW_ID FROM information_schema.EMBEDDING_BACKLOG_ROWS WHERE TABLE_SCHEMA = DATABASE()")
        assert cur.fetchall() == ()
        cur.execute("INSERT INTO docs (id, content) VALUES (4, 'waits')")
        cur.execute("SELECT TABLE_NAME, COLUMN_NAME, ROW_ID, STATE FROM information_schema.EMBEDDING_BACKLOG_ROWS WHERE TABLE_SCHEMA = DATABASE()")
        assert cur.fetchall() == (("docs", "embedding", 4, "pending"),)
        cur.execute("SELECT EMBEDDING_WAIT('docs', 0.2)")
        assert cur.fetchone()[0] == 1
        cur.execute("DROP TABLE docs")
        cur.execute("SELECT COUNT(*) FROM information_schema.EMBEDDING_BACKLOG_ROWS WHERE TABLE_SCHEMA = DATABASE()")
        assert cur.fetchone()[0] == 0


# -- a text the provider rejects --------------------------------------------------------------

def test_a_rejected_text_fails_alone_and_is_retried_on_demand(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    double.poison = "POISON"
    with conn.cursor() as cur:
        create_docs(cur)
        cur.execute("INSERT INTO docs (id, content) VALUES " + ",".join(
            f"({i}, '{'POISON pill' if i == 17 else text_of(i)}')" for i in range(60)))
        wait_for(lambda: backlog(cur)["pending"] == 0, 60, "the backlog to settle")
        state = backlog(cur)
        assert (state["failed"], state["embedded"]) == (1, 59), state
        cur.execute("SELECT ROW_ID, STATE, ATTEMPTS, LAST_ERROR FROM information_schema.EMBEDDING_BACKLOG_ROWS "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'docs'")
        (row_id, st, attempts, error), = cur.fetchall()
        assert (row_id, st, attempts) == (17, "failed", 3) and "input rejected" in error, error
        got = vectors(cur)
        assert got[17] is None and all(got[i] is not None for i in range(60) if i != 17)
        cur.execute("SELECT id FROM docs ORDER BY VEC_EMBED_COSINE_DISTANCE(embedding, 'x') LIMIT 100")
        assert 17 not in [r[0] for r in cur.fetchall()]
        cur.execute("SHOW WARNINGS")
        assert any("1 failed" in w[2] for w in cur.fetchall())
        # Fixed on the provider's side: retried on demand.
        double.poison = None
        cur.execute("SELECT EMBEDDING_RETRY('docs')")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT EMBEDDING_WAIT('docs', 30)")
        assert cur.fetchone()[0] == 0
        assert_vector_of(vectors(cur)[17], "POISON pill")
        assert backlog(cur)["failed"] == 0
        with pytest.raises(pymysql.MySQLError) as ei:
            cur.execute("SELECT EMBEDDING_WAIT('no_such_table', 1)")
        assert ei.value.args[0] == 1146


# -- a rate-limited provider --------------------------------------------------------------------

def test_a_rate_limited_provider_is_never_pushed_over_its_limit_after_the_first_429(
        embedb_binary: Path, tmp_path: Path) -> None:
    """A double that takes 12 requests per sliding minute and answers 429 above that, and a
    server of its own (so both count the same requests from the start) that knows no limit
    beforehand: after the first 429 it sends at most what the minute took."""
    n, per_request, requests = 12, 16, 20
    rows = per_request * requests
    with running({KEY}) as double:
        double.rate_limit = (n, 60.0)
        args = ("--embed-max-retries", "0", "--embed-concurrency", "4", "--jina-api-base", double.url)
        with own_server(embedb_binary, tmp_path, {}, args) as srv, connect(*srv.address, autocommit=True) as conn:
            _rate_limited_ingest(conn, double, n, rows)


def _rate_limited_ingest(conn: pymysql.Connection, double: EmbeddingDouble, n: int, rows: int) -> None:
    with conn.cursor() as cur:
        cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY = '{KEY}'")
        cur.execute("CREATE DATABASE rl")
        cur.execute("USE rl")
        create_docs(cur)
        cur.execute("INSERT INTO docs (id, content) VALUES " + ",".join(f"({i}, '{text_of(i, 'rate: ')}')" for i in range(rows)))
        deadline = time.monotonic() + 150
        while True:
            cur.execute("SELECT EMBEDDING_WAIT('docs', 10)")
            if cur.fetchone()[0] == 0:
                break
            assert time.monotonic() < deadline, "the backlog did not drain"
        got = vectors(cur)
        assert all(v is not None for v in got.values()) and len(got) == rows
        for i in range(0, rows, 13):
            assert_vector_of(got[i], text_of(i, "rate: "))
    assert double.refused, "the double never refused: the test did not reach the limit"
    first = min(double.refused)
    late = [t - first for t in double.refused if t - first > 2.0]
    assert not late, f"429s after the first one (requests sent over the limit), at +{late} s"
    accepted = sorted(double.accepted)
    for i, t in enumerate(accepted):
        in_window = sum(1 for u in accepted[i:] if u - t < 60.0)
        assert in_window <= n, (i, in_window)
    cur2 = conn.cursor()
    cur2.execute("SELECT ERRORS, LAST_ERROR FROM information_schema.EMBEDDING_USAGE WHERE PROVIDER = 'jina_ai'")
    errors, last = cur2.fetchone()
    assert errors >= 1 and "rate limit exceeded" in last


def test_plain_vector_searches_skip_pending_rows_but_distances_stay(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    """`ORDER BY VEC_COSINE_DISTANCE(col, '[…]')` (directly or through an alias) on an async
    column leaves out rows still waiting (a NULL distance would sort first) and warns; a
    statement that only computes the distance keeps the row and its NULL."""
    with conn.cursor() as cur:
        create_docs(cur)
        cur.execute("INSERT INTO docs (id, content) VALUES (1, 'plain one'), (2, 'plain two'), (3, 'plain three')")
        cur.execute("SELECT EMBEDDING_WAIT('docs', 30)")
        assert cur.fetchone()[0] == 0
        double.persistent = DOWN
        cur.execute("INSERT INTO docs (id, content) VALUES (4, 'plain four waits')")
        cur.execute("SELECT VEC_AS_TEXT(embedding) FROM docs WHERE id = 1")
        q = cur.fetchone()[0]
        for sql in ["SELECT id FROM docs ORDER BY VEC_COSINE_DISTANCE(embedding, %s) LIMIT 10",
                    "SELECT id, VEC_COSINE_DISTANCE(embedding, %s) AS d FROM docs ORDER BY d LIMIT 10"]:
            cur.execute(sql, (q,))
            ids = [r[0] for r in cur.fetchall()]
            assert ids[0] == 1 and sorted(ids) == [1, 2, 3], (sql, ids)
            cur.execute("SHOW WARNINGS")
            assert any("1 row(s) of `docs`.`embedding` have no embedding yet" in w[2] for w in cur.fetchall())
        cur.execute("SELECT id, VEC_COSINE_DISTANCE(embedding, %s) FROM docs WHERE id = 4", (q,))
        assert cur.fetchall() == ((4, None),)


# -- changing the model online (ALTER TABLE … MODIFY COLUMN) -----------------------------------

NEW_DIMS = 32
NEW_COLUMN = (f"embedding VECTOR({NEW_DIMS}) GENERATED ALWAYS AS "
              f"(EMBED_TEXT('{MODEL}', content, '{{\"dimensions\": {NEW_DIMS}}}')) STORED")


def create_sync_docs(cur, n: int, tag: str) -> None:
    cur.execute(f"""CREATE TABLE docs (id INT PRIMARY KEY, content TEXT,
        embedding VECTOR({DIMS}) GENERATED ALWAYS AS (EMBED_TEXT('{MODEL}', content)) STORED,
        VECTOR INDEX ((VEC_COSINE_DISTANCE(embedding))))""")
    for s in range(0, n, 500):
        cur.execute("INSERT INTO docs (id, content) VALUES " + ",".join(f"({i}, '{text_of(i, tag)}')" for i in range(s, min(n, s + 500))))


def jobs(cur) -> list[tuple]:
    cur.execute("SELECT DATABASE()")
    db = cur.fetchone()[0]
    cur.execute("ADMIN SHOW DDL JOBS")
    return [r for r in cur.fetchall() if r[1] == db]


def current_db(c: pymysql.Connection) -> str:
    with c.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        return cur.fetchone()[0]


def test_model_change_under_a_write_load_switches_once(server: EmbedbServer, conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    """The column keeps its old model's vectors, and every query its old model, until all rows
    have the new one; then both switch in one step. Writes during the change reach both."""
    tag, n = "mc: ", 1500
    with conn.cursor() as cur:
        create_sync_docs(cur, n, tag)
    db = current_db(conn)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[str] = []
    final_text: dict[int, str] = {i: text_of(i, tag) for i in range(n)}

    def read() -> None:
        c = connect(*server.address, database=db, autocommit=True)
        with c.cursor() as cur:
            while not stop.is_set():
                try:
                    # One snapshot sees one model: every row's dimension is the same, and the
                    # query text is embedded with the model the vectors came from.
                    cur.execute("BEGIN")
                    cur.execute("SELECT MIN(VEC_DIMS(embedding)), MAX(VEC_DIMS(embedding)) FROM docs")
                    lo, hi = cur.fetchone()
                    if lo != hi:
                        errors.append(f"mixed dimensions {lo}/{hi}")
                    cur.execute("SELECT id, VEC_DIMS(embedding) FROM docs ORDER BY VEC_EMBED_COSINE_DISTANCE(embedding, 'subject 5') LIMIT 5")
                    dims = {r[1] for r in cur.fetchall()}
                    if dims != {lo}:
                        errors.append(f"search saw {dims} while the table had {lo}")
                    cur.execute("COMMIT")
                    seen.append(lo)
                except pymysql.MySQLError as e:
                    errors.append(str(e))
        c.close()

    def write() -> None:
        c = connect(*server.address, database=db, autocommit=True)
        k = 0
        with c.cursor() as cur:
            while not stop.is_set():
                i = (k * 37) % n
                text = f"{tag}rewritten {k} of row {i}"
                cur.execute("UPDATE docs SET content = %s WHERE id = %s", (text, i))
                final_text[i] = text
                cur.execute("INSERT INTO docs (id, content) VALUES (%s, %s)", (n + k, text_of(n + k, tag)))
                final_text[n + k] = text_of(n + k, tag)
                k += 1
                time.sleep(0.02)
        c.close()

    threads = [threading.Thread(target=read), threading.Thread(target=write)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    with conn.cursor() as cur:
        # The ALTER itself runs beside the writes: a row written while it queues the table's rows
        # is queued once, by one side or the other.
        double.delay = 0.15  # a backfill of a few seconds
        cur.execute(f"ALTER TABLE docs MODIFY COLUMN {NEW_COLUMN}")
        (job,) = jobs(cur)
        assert job[3] == "modify column" and job[11] == "running" and " rows embedded" in job[12], job
        cur.execute("SHOW CREATE TABLE docs")
        assert f"vector({DIMS})" in cur.fetchone()[1]  # unchanged until the switch
        wait_for(lambda: not jobs(cur), 120, "the model change to finish")
    time.sleep(1)  # reads and writes go on after the switch
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors[:5]
    switches = sum(1 for a, b in zip(seen, seen[1:]) if a != b)
    assert seen[0] == DIMS and seen[-1] == NEW_DIMS and switches == 1, (seen[:3], seen[-3:], switches)
    with conn.cursor() as cur:
        cur.execute("SHOW CREATE TABLE docs")
        assert f"vector({NEW_DIMS})" in cur.fetchone()[1]
        cur.execute("SELECT id, content, VEC_AS_TEXT(embedding) FROM docs ORDER BY id")
        rows = cur.fetchall()
        assert len(rows) == len(final_text)
        for i, content, v in rows:
            assert content == final_text[i]
            got, want = json.loads(v), vector_for(content, NEW_DIMS)
            assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(got, want)), i
        cur.execute("EXPLAIN SELECT id FROM docs ORDER BY VEC_EMBED_COSINE_DISTANCE(embedding, 'subject 5') LIMIT 5")
        assert "annIndex:COSINE" in str(cur.fetchall())


def test_model_change_survives_kill_and_cancel_leaves_the_column(server: EmbedbServer, conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    tag, n = "mcc: ", 300
    db = current_db(conn)
    with conn.cursor() as cur:
        create_sync_docs(cur, n, tag)
        cur.execute("UPDATE docs SET content = 'changed before the job' WHERE id = 1")
        before = vectors(cur)
        double.gate = threading.Event()  # the backfill's requests hang
        cur.execute(f"ALTER TABLE docs MODIFY COLUMN {NEW_COLUMN}")
        (job,) = jobs(cur)
    conn.close()
    server.restart(hard=True)
    double.gate.set()
    double.gate = None
    double.persistent = DOWN  # the job waits, durable, across the restart
    c = connect(*server.address, database=db, autocommit=True)
    try:
        with c.cursor() as cur:
            assert [j[0] for j in jobs(cur)] == [job[0]]
            with pytest.raises(pymysql.MySQLError) as e:
                cur.execute(f"ALTER TABLE docs MODIFY COLUMN {NEW_COLUMN.replace(str(NEW_DIMS), '16')}")
            assert e.value.args[0] == 8200 and f"job {job[0]}" in e.value.args[1]
            cur.execute(f"ADMIN CANCEL DDL JOBS {job[0]}, 999999")
            assert cur.fetchall() == ((job[0], "successful"), (999999, "error: [admin:8131]DDL Job:999999 not found"))
            assert jobs(cur) == []
            double.persistent = None
            time.sleep(1.5)
            assert vectors(cur) == before  # the old column, untouched
            cur.execute("SHOW CREATE TABLE docs")
            ddl = cur.fetchone()[1]
            assert f"vector({DIMS})" in ddl and "dimensions" not in ddl, ddl
            # A new change after a kill in the middle still finishes.
            double.delay = 0.5
            double.requests.clear()
            cur.execute(f"ALTER TABLE docs MODIFY COLUMN {NEW_COLUMN}")
            wait_for(lambda: any(r.body.get("dimensions") == NEW_DIMS for r in list(double.requests)), 30, "the backfill's first request")
            assert jobs(cur), "finished before the kill: make the backfill slower"
        c.close()
        server.restart(hard=True)
        double.delay = 0.0
        c = connect(*server.address, database=db, autocommit=True)
        with c.cursor() as cur:
            wait_for(lambda: not jobs(cur), 60, "the resumed model change to finish")
            got = vectors(cur)
            assert len(got) == n and all(len(v) == NEW_DIMS for v in got.values())
            assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(got[1], vector_for("changed before the job", NEW_DIMS)))
    finally:
        c.close()


# -- chunking with a remote provider --------------------------------------------------------------

def test_remote_chunks_and_jina_late_chunking_keep_one_document_per_request(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    """A remote model chunks by estimated tokens (4 bytes each, 512 per chunk); with Jina's
    `late_chunking` each document's chunks travel in a request of their own, as Jina reads a
    request's texts as one document's chunks."""
    docs = {i: " ".join(f"Doc{i} sentence {k} says something rather long about topic {k % 7}." for k in range(300)) for i in (1, 2)}
    with conn.cursor() as cur:
        for table, opts in (("plain", '{"embedb.long_text": "chunk"}'), ("late", '{"embedb.long_text": "chunk", "late_chunking": true}')):
            cur.execute(f"""CREATE TABLE {table} (id INT PRIMARY KEY, content TEXT,
                embedding VECTOR({DIMS}) GENERATED ALWAYS AS (EMBED_TEXT('{MODEL}', content, '{opts}')) STORED)""")
            double.requests.clear()
            cur.execute(f"INSERT INTO {table} (id, content) VALUES (1, %s), (2, %s)", (docs[1], docs[2]))
            sent = [r.body for r in list(double.requests) if isinstance(r.body, dict) and "input" in r.body]
            texts = [t for b in sent for t in b["input"]]
            assert all(len(t) <= 512 * 4 + 64 for t in texts), max(len(t) for t in texts)
            cur.execute(f"SELECT id, VEC_DIMS(embedding) FROM {table} ORDER BY id")
            chunks = {i: d // DIMS for i, d in cur.fetchall()}
            assert chunks[1] >= 5 and chunks[2] >= 5 and sum(chunks.values()) == len(texts), (chunks, len(texts))
            # Every chunk is a piece of its document, and together they cover it.
            for i in (1, 2):
                mine = [t for t in texts if t.startswith(f"Doc{i} ") or f" Doc{i} " in t]
                assert len(mine) == chunks[i] and all(t in docs[i] for t in mine)
            if table == "late":
                assert all(b.get("late_chunking") is True for b in sent)
                for b in sent:
                    owners = {i for i in (1, 2) for t in b["input"] if t in docs[i]}
                    assert len(owners) == 1, "a late-chunking request mixed two documents"
            # A search for one of document 2's chunks finds document 2 (its best chunk is that one).
            q = next(t for t in texts if t in docs[2])
            cur.execute(f"SELECT id, VEC_EMBED_COSINE_DISTANCE(embedding, %s) AS d FROM {table} ORDER BY d LIMIT 1", (q,))
            row = cur.fetchone()
            assert row[0] == 2 and row[1] < 1e-6, row
