"""Remote embedding providers (``jina_ai/…``, ``openai/…``) against a local double of their HTTP APIs
(``doubles/embedding_api.py``): the seed example with Jina AI, the exact requests embedb sends,
base64 decoding and ordering by ``index``, batching with bounded concurrency, the cache, retries,
and TiDB's error texts. A server of this module's own is started with ``EMBEDB_JINA_API_BASE``
pointing at the double and the double's OpenAI path in ``--allowed-api-bases``. No internet needed."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterator

import pymysql
import pytest

from conftest import connect, own_server
from doubles.embedding_api import running, JINA_PATH, JINA_RERANK_PATH, OPENAI_PATH, rerank_score, EmbeddingDouble, cosine_distance, vector_for
from sqltest import EmbedbServer

JINA_KEY = "jina-SECRET-key-0001"
OPENAI_KEY = "sk-openai-SECRET-key-0002"
BAD_KEY = "jina-SECRET-bad-key-0003"
MAX_RETRIES = 2
JINA_BATCH = 16
CONCURRENCY = 4

SEED_DOCS = [
    (1, "Java: Object-oriented language for cross-platform development."),
    (2, "Java coffee: Bold Indonesian beans with low acidity."),
    (3, "Java island: Densely populated, home to Jakarta."),
    (4, "Java's syntax is used in Android apps."),
    (5, "Dark roast Java beans enhance espresso blends."),
]
SEED_QUERY = "How to start learning Java programming?"

SEED_CREATE = """
CREATE TABLE sample_documents (
    `id`        INT PRIMARY KEY,
    `content`   TEXT,
    `embedding` VECTOR(2048) GENERATED ALWAYS AS (EMBED_TEXT(
        "jina_ai/jina-embeddings-v4",
        `content`,
        '{"task":"retrieval.passage","task@search":"retrieval.query"}'
    )) STORED
)"""
SEED_INSERT = """
INSERT INTO sample_documents (id, content)
VALUES
    (1, "Java: Object-oriented language for cross-platform development."),
    (2, "Java coffee: Bold Indonesian beans with low acidity."),
    (3, "Java island: Densely populated, home to Jakarta."),
    (4, "Java's syntax is used in Android apps."),
    (5, "Dark roast Java beans enhance espresso blends.")"""
SEED_SELECT = """
SELECT
    `id`,
    `content`,
    VEC_EMBED_COSINE_DISTANCE(embedding, "How to start learning Java programming?") AS _distance
FROM sample_documents
ORDER BY _distance ASC
LIMIT 2"""

MISSING_JINA = ("JinaAI API key is not configured, to configure the API key: "
                "SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY='<API_KEY>'")
UNAUTHORIZED_JINA = ("JinaAI returns status unauthorized, check your API key. To reconfigure a new API key: "
                     "SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY='<API_KEY>'")
UNAUTHORIZED_OPENAI = ("OpenAI returns status unauthorized, check your API key. To reconfigure a new API key: "
                       "SET @@GLOBAL.TIDB_EXP_EMBED_OPENAI_API_KEY='<API_KEY>'")


@pytest.fixture(scope="module")
def double() -> Iterator[EmbeddingDouble]:
    with running({JINA_KEY, OPENAI_KEY}) as d:
        yield d


@pytest.fixture(scope="module")
def server(embedb_binary: Path, double: EmbeddingDouble,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbedbServer]:
    # Limits configured (so the scripted 429 below does not set a learnt one for later tests).
    args = ("--embed-rate-limits", "jina_ai=100000,openai=100000",
            "--embed-max-retries", str(MAX_RETRIES), "--embed-concurrency", str(CONCURRENCY),
            "--embed-timeout-secs", "10", "--allowed-api-bases", f"{double.url}/openai/v1")
    with own_server(embedb_binary, tmp_path_factory.mktemp("embedb-providers"),
                    {"EMBEDB_JINA_API_BASE": double.url}, args) as srv:
        yield srv


@pytest.fixture
def conn(server: EmbedbServer, double: EmbeddingDouble, request: pytest.FixtureRequest) -> Iterator[pymysql.Connection]:
    """A connection to a fresh database, with both keys set and the double reset."""
    name = "p_" + request.node.name[:50].lower().replace("[", "_").replace("]", "_").replace("-", "_")
    c = connect(*server.address)
    with c.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"USE `{name}`")
        cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY = '{JINA_KEY}'")
        cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_OPENAI_API_KEY = '{OPENAI_KEY}'")
        cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_OPENAI_API_BASE = '{double.url}/openai/v1'")
    double.reset()
    try:
        yield c
    finally:
        double.reset()
        c.close()


def sql_error(cur, sql: str) -> tuple[int, str]:
    with pytest.raises(pymysql.MySQLError) as ei:
        cur.execute(sql)
    return ei.value.args[0], ei.value.args[1]


def stored(cur, table: str, col: str = "e") -> dict[int, list[float]]:
    cur.execute(f"SELECT id, VEC_AS_TEXT({col}) FROM {table} ORDER BY id")
    return {i: json.loads(v) for i, v in cur.fetchall() if v is not None}


def assert_close(got: list[float], want: list[float]) -> None:
    assert len(got) == len(want)
    assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(got, want))


# -- Jina AI ------------------------------------------------------------------------------------

def test_seed_example_with_jina(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    with conn.cursor() as cur:
        cur.execute(SEED_CREATE)
        cur.execute(SEED_INSERT)
        inserts = double.take()
        cur.execute(SEED_SELECT)
        rows = cur.fetchall()
        searches = double.take()

    assert [r[0] for r in rows] == [1, 4]
    assert [r[1] for r in rows] == [SEED_DOCS[0][1], SEED_DOCS[3][1]]
    q = vector_for(SEED_QUERY, 2048)
    for id_, _, dist in rows:
        assert math.isclose(dist, cosine_distance(q, vector_for(dict(SEED_DOCS)[id_], 2048)), abs_tol=1e-5)

    # the insert: one request, the storage task, base64 on the wire, the key as a bearer token
    assert len(inserts) == 1
    r = inserts[0]
    assert r.path == JINA_PATH
    assert r.headers["authorization"] == f"Bearer {JINA_KEY}"
    assert r.headers["content-type"].startswith("application/json")
    assert list(r.body) == ["model", "input", "task", "embedding_type"]
    assert {**r.body, "input": sorted(r.body["input"])} == {
        "model": "jina-embeddings-v4",
        "input": sorted(t for _, t in SEED_DOCS),
        "task": "retrieval.passage",
        "embedding_type": "base64",
    }
    # the search: the query alone, with the @search task
    assert len(searches) == 1
    assert searches[0].body == {"model": "jina-embeddings-v4", "input": [SEED_QUERY],
                                "task": "retrieval.query", "embedding_type": "base64"}
    assert searches[0].headers["authorization"] == f"Bearer {JINA_KEY}"

    # base64 decoded and each vector on its own row although the double shuffles `data`
    with conn.cursor() as cur:
        got = stored(cur, "sample_documents", "embedding")
    for id_, text in SEED_DOCS:
        assert_close(got[id_], vector_for(text, 2048))


def test_dimensions_option_and_float_arrays(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE d (id INT PRIMARY KEY, content TEXT,
                       e VECTOR(768) GENERATED ALWAYS AS (EMBED_TEXT("jina_ai/jina-embeddings-v3", content,
                       '{"dimensions":768}')) STORED)""")
        cur.execute("INSERT INTO d (id, content) VALUES (1, 'dims one'), (2, 'dims two'), (3, NULL)")
        reqs = double.take()
        assert len(reqs) == 1
        assert list(reqs[0].body) == ["model", "input", "dimensions", "embedding_type"]
        assert reqs[0].body["dimensions"] == 768 and reqs[0].body["embedding_type"] == "base64"
        assert sorted(reqs[0].body["input"]) == ["dims one", "dims two"]
        # a provider answering with float arrays is understood too
        double.float_mode = True
        cur.execute("INSERT INTO d (id, content) VALUES (4, 'floats four'), (5, 'floats five')")
        assert len(double.take()) == 1
        got = stored(cur, "d")
        cur.execute("SELECT id, VEC_DIMS(e) FROM d ORDER BY id")
        assert cur.fetchall() == ((1, 768), (2, 768), (3, None), (4, 768), (5, 768))
    for id_, text in [(1, "dims one"), (2, "dims two"), (4, "floats four"), (5, "floats five")]:
        assert_close(got[id_], vector_for(text, 768))


def test_batching_concurrency_and_cache(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    texts = [f"batch text number {i:03d}" for i in range(100)]
    values = ", ".join(f"({i}, '{t}')" for i, t in enumerate(texts))
    double.delay = 0.2  # keep requests in flight long enough to overlap
    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE b (id INT PRIMARY KEY, content TEXT,
                       e VECTOR(32) GENERATED ALWAYS AS (EMBED_TEXT('jina_ai/jina-embeddings-v3', content,
                       '{"dimensions":32,"task":"retrieval.passage"}')) STORED)""")
        cur.execute(f"INSERT INTO b (id, content) VALUES {values}")
        reqs = double.take()
        assert len(reqs) <= math.ceil(100 / JINA_BATCH)
        assert all(len(r.body["input"]) <= JINA_BATCH for r in reqs)
        sent = [t for r in reqs for t in r.body["input"]]
        assert sorted(sent) == texts  # every text exactly once
        assert 2 <= double.max_in_flight <= CONCURRENCY
        got = stored(cur, "b")
        for i, t in enumerate(texts):
            assert_close(got[i], vector_for(t, 32))

        # the same texts again (another table, same model and options): all from the cache
        cur.execute("""CREATE TABLE b2 (id INT PRIMARY KEY, content TEXT,
                       e VECTOR(32) GENERATED ALWAYS AS (EMBED_TEXT('jina_ai/jina-embeddings-v3', content,
                       '{"dimensions":32,"task":"retrieval.passage"}')) STORED)""")
        cur.execute(f"INSERT INTO b2 (id, content) VALUES {values}")
        cur.execute(f"INSERT INTO b (id, content) VALUES (1000, '{texts[7]}')")
        assert double.take() == []
        cur.execute("SELECT COUNT(*) FROM b2 WHERE e IS NOT NULL")
        assert cur.fetchone() == (100,)
        # other options are another cache entry
        cur.execute("""CREATE TABLE b3 (id INT PRIMARY KEY, content TEXT,
                       e VECTOR(32) GENERATED ALWAYS AS (EMBED_TEXT('jina_ai/jina-embeddings-v3', content,
                       '{"dimensions":32,"task":"text-matching"}')) STORED)""")
        cur.execute(f"INSERT INTO b3 (id, content) VALUES (1, '{texts[0]}')")
        reqs = double.take()
        assert len(reqs) == 1 and reqs[0].body["task"] == "text-matching"


def test_retry_on_429_honours_retry_after(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    double.script.append((429, {"Retry-After": "1"}, {"detail": "Rate limit exceeded"}))
    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE r (id INT PRIMARY KEY, content TEXT,
                       e VECTOR(16) GENERATED ALWAYS AS (EMBED_TEXT('jina_ai/jina-embeddings-v3', content,
                       '{"dimensions":16}')) STORED)""")
        cur.execute("INSERT INTO r (id, content) VALUES (1, 'retry me please')")
        reqs = double.take()
        assert len(reqs) == 2
        assert reqs[0].body == reqs[1].body
        assert reqs[1].at - reqs[0].at >= 0.95  # waited for Retry-After
        assert_close(stored(cur, "r")[1], vector_for("retry me please", 16))


def test_retry_on_5xx_then_success(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    double.script.append((503, {}, b"upstream unavailable"))
    double.script.append((500, {"Retry-After": "0"}, {"detail": "hiccup"}))
    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE r (id INT PRIMARY KEY, content TEXT,
                       e VECTOR(16) GENERATED ALWAYS AS (EMBED_TEXT('jina_ai/jina-embeddings-v3', content,
                       '{"dimensions":16}')) STORED)""")
        cur.execute("INSERT INTO r (id, content) VALUES (1, 'flaky upstream')")
        assert len(double.take()) == 3
        cur.execute("SELECT COUNT(*) FROM r")
        assert cur.fetchone() == (1,)


def test_unauthorized(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE u (id INT PRIMARY KEY, content TEXT,
                       e VECTOR(16) GENERATED ALWAYS AS (EMBED_TEXT('jina_ai/jina-embeddings-v3', content,
                       '{"dimensions":16}')) STORED)""")
        cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY = '{BAD_KEY}'")
        code, msg = sql_error(cur, "INSERT INTO u (id, content) VALUES (1, 'who am i')")
        assert (code, msg) == (1105, UNAUTHORIZED_JINA)
        reqs = double.take()
        assert len(reqs) == 1  # a 401 is not retried
        assert reqs[0].headers["authorization"] == f"Bearer {BAD_KEY}"
        cur.execute("SELECT COUNT(*) FROM u")
        assert cur.fetchone() == (0,)
        # a new key applies at once
        cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY = '{JINA_KEY}'")
        cur.execute("INSERT INTO u (id, content) VALUES (1, 'who am i')")
        cur.execute("SELECT COUNT(*) FROM u")
        assert cur.fetchone() == (1,)


def test_persistent_server_error_fails_the_statement(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE f (id INT PRIMARY KEY, content TEXT,
                       e VECTOR(16) GENERATED ALWAYS AS (EMBED_TEXT('jina_ai/jina-embeddings-v3', content,
                       '{"dimensions":16}')) STORED)""")
        double.persistent = (500, {}, {"detail": "Internal error: boom"})
        code, msg = sql_error(cur, "INSERT INTO f (id, content) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        assert (code, msg) == (1105, "JinaAI: Internal error: boom")
        assert len(double.take()) == MAX_RETRIES + 1
        cur.execute("SELECT COUNT(*) FROM f")
        assert cur.fetchone() == (0,)

        double.persistent = (502, {}, b"<html>bad gateway</html>")
        code, msg = sql_error(cur, "INSERT INTO f (id, content) VALUES (1, 'a')")
        assert (code, msg) == (1105, "JinaAI: status code 502")
        assert len(double.take()) == MAX_RETRIES + 1

        # a client error is not retried and carries Jina's detail
        double.persistent = (404, {}, {"detail": "Model jina-embeddings-v3 not found"})
        code, msg = sql_error(cur, "INSERT INTO f (id, content) VALUES (1, 'a')")
        assert (code, msg) == (1105, "JinaAI: Model jina-embeddings-v3 not found")
        assert len(double.take()) == 1
        cur.execute("SELECT COUNT(*) FROM f")
        assert cur.fetchone() == (0,)


def test_missing_key(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE m (id INT PRIMARY KEY, content TEXT,
                       e VECTOR(16) GENERATED ALWAYS AS (EMBED_TEXT('jina_ai/jina-embeddings-v3', content,
                       '{"dimensions":16}')) STORED)""")
        cur.execute("SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY = ''")
        assert sql_error(cur, "INSERT INTO m (id, content) VALUES (1, 'no key yet')") == (1105, MISSING_JINA)
        assert sql_error(cur, "SELECT EMBED_TEXT('jina_ai/jina-embeddings-v3', 'no key yet')") == (1105, MISSING_JINA)
        assert double.take() == []
        cur.execute("SELECT COUNT(*) FROM m")
        assert cur.fetchone() == (0,)


# -- OpenAI -------------------------------------------------------------------------------------

def test_openai_request_shape(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE o (id INT PRIMARY KEY, content TEXT,
                       e VECTOR(256) GENERATED ALWAYS AS (EMBED_TEXT('openai/text-embedding-3-small', content,
                       '{"dimensions":256}')) STORED)""")
        cur.execute("INSERT INTO o (id, content) VALUES (1, 'open one'), (2, 'open two'), (3, 'open three')")
        reqs = double.take()
        assert len(reqs) == 1
        r = reqs[0]
        assert r.path == OPENAI_PATH
        assert r.headers["authorization"] == f"Bearer {OPENAI_KEY}"
        assert list(r.body) == ["model", "input", "dimensions", "encoding_format"]
        assert {**r.body, "input": sorted(r.body["input"])} == {
            "model": "text-embedding-3-small",
            "input": ["open one", "open three", "open two"],
            "dimensions": 256,
            "encoding_format": "base64",
        }
        got = stored(cur, "o")
        for id_, t in [(1, "open one"), (2, "open two"), (3, "open three")]:
            assert_close(got[id_], vector_for(t, 256))
        # search embeds the query with the column's options (a stored text comes from the cache)
        cur.execute("SELECT id FROM o ORDER BY VEC_EMBED_COSINE_DISTANCE(e, 'open two') LIMIT 1")
        assert cur.fetchone() == (2,)
        assert double.take() == []
        cur.execute("SELECT id FROM o ORDER BY VEC_EMBED_L2_DISTANCE(e, 'an open question') LIMIT 1")
        assert len(cur.fetchall()) == 1
        reqs = double.take()
        assert [x.body for x in reqs] == [{"model": "text-embedding-3-small", "input": ["an open question"],
                                           "dimensions": 256, "encoding_format": "base64"}]


def test_openai_errors_and_allowed_bases(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE o (id INT PRIMARY KEY, content TEXT,
                       e VECTOR(64) GENERATED ALWAYS AS (EMBED_TEXT('openai/text-embedding-3-small', content,
                       '{"dimensions":64}')) STORED)""")
        # the base may carry /embeddings (as in TiDB)
        cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_OPENAI_API_BASE = '{double.url}/openai/v1/embeddings'")
        cur.execute("INSERT INTO o (id, content) VALUES (1, 'allowed base')")
        assert [r.path for r in double.take()] == [OPENAI_PATH]

        # a base the server does not allow is never called
        for bad in ("http://169.254.169.254/latest", f"{double.url}/v1"):
            cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_OPENAI_API_BASE = '{bad}'")
            code, msg = sql_error(cur, "INSERT INTO o (id, content) VALUES (2, 'sneaky')")
            assert code == 1105 and msg.startswith(f"OpenAI: API base '{bad}' is not allowed"), msg
        assert double.take() == []
        cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_OPENAI_API_BASE = '{double.url}/openai/v1'")

        double.persistent = (400, {}, {"error": {"message": "dimensions too large", "type": "invalid_request_error"}})
        assert sql_error(cur, "INSERT INTO o (id, content) VALUES (2, 'too big')") == (1105, "OpenAI: dimensions too large")
        double.persistent = None
        cur.execute("SET @@GLOBAL.TIDB_EXP_EMBED_OPENAI_API_KEY = 'sk-wrong-key-123456'")
        assert sql_error(cur, "INSERT INTO o (id, content) VALUES (2, 'wrong key')") == (1105, UNAUTHORIZED_OPENAI)
        cur.execute("SET @@GLOBAL.TIDB_EXP_EMBED_OPENAI_API_KEY = ''")
        assert sql_error(cur, "INSERT INTO o (id, content) VALUES (2, 'no key')") == (
            1105, "OpenAI API key is not configured, to configure the API key: "
                  "SET @@GLOBAL.TIDB_EXP_EMBED_OPENAI_API_KEY='<API_KEY>'")
        cur.execute("SELECT COUNT(*) FROM o")
        assert cur.fetchone() == (1,)


def test_keys_never_logged(server: EmbedbServer, conn: pymysql.Connection) -> None:
    """Runs last: nothing the earlier tests did put a key in the server log."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY")
        assert JINA_KEY not in str(cur.fetchone())
    log = Path(server.log_path).read_text(errors="replace")
    for k in (JINA_KEY, OPENAI_KEY, BAD_KEY, "sk-wrong-key-123456"):
        assert k not in log
    assert "SECRET" not in log


EMBED_TABLE = """CREATE TABLE {name} (id INT PRIMARY KEY, content TEXT,
    e VECTOR(32) GENERATED ALWAYS AS (EMBED_TEXT('jina_ai/jina-embeddings-v3', content,
    '{{"dimensions":32}}')) STORED)"""


def test_concurrent_statements_share_requests(server: EmbedbServer, conn: pymysql.Connection,
                                              double: EmbeddingDouble) -> None:
    """Statements from 12 connections at once fill shared requests: fewer requests than statements,
    some carrying texts of several statements, never more than the concurrency limit in flight, and
    each row gets its own text's vector."""
    import threading

    with conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        (db,) = cur.fetchone()
    with conn.cursor() as cur:
        cur.execute(EMBED_TABLE.format(name="s"))
    double.delay = 0.3
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def one(k: int) -> None:
        try:
            with connect(*server.address, db) as c, c.cursor() as cur:
                start.wait()
                cur.execute("INSERT INTO s (id, content) VALUES (%s, %s), (%s, %s)",
                            (2 * k, f"shared {2 * k}", 2 * k + 1, f"shared {2 * k + 1}"))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    reqs = double.take()
    sizes = [len(r.body["input"]) for r in reqs]
    assert sorted(t for r in reqs for t in r.body["input"]) == sorted(f"shared {i}" for i in range(24))
    assert len(reqs) < 12, f"one request per statement: {sizes}"
    assert max(sizes) > 2, f"no request carried texts of two statements: {sizes}"
    assert double.max_in_flight <= CONCURRENCY
    with conn.cursor() as cur:
        got = stored(cur, "s")
    assert len(got) == 24
    for i in range(24):
        assert_close(got[i], vector_for(f"shared {i}", 32))


def test_kill_query_stops_a_provider_call(server: EmbedbServer, conn: pymysql.Connection,
                                          double: EmbeddingDouble) -> None:
    """KILL QUERY from another connection ends an INSERT that waits on a slow provider at once,
    with 1317 and no rows; the killed connection stays usable; KILL of an unknown id is 1094."""
    import threading
    import time

    with conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        (db,) = cur.fetchone()
    with conn.cursor() as cur:
        cur.execute(EMBED_TABLE.format(name="k"))
    double.delay = 8.0
    victim = connect(*server.address, db)
    with victim.cursor() as vc:
        vc.execute("SELECT CONNECTION_ID()")
        (victim_id,) = vc.fetchone()
    outcome: dict[str, object] = {}

    def insert() -> None:
        t0 = time.monotonic()
        try:
            with victim.cursor() as vc:
                vc.execute("INSERT INTO k (id, content) VALUES (1, 'killed before it was embedded')")
            outcome["result"] = "ok"
        except pymysql.MySQLError as e:
            outcome["result"] = (e.args[0], e.args[1])
        outcome["seconds"] = time.monotonic() - t0

    t = threading.Thread(target=insert)
    t.start()
    deadline = time.monotonic() + 5
    while not double.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert double.requests, "the INSERT never reached the provider"
    with conn.cursor() as cur:
        cur.execute(f"KILL QUERY {victim_id}")
    t.join(10)
    assert outcome["result"] == (1317, "Query execution was interrupted")
    assert outcome["seconds"] < 4, "the statement waited for the provider instead of stopping"
    double.delay = 0.0
    with victim.cursor() as vc:
        vc.execute("SELECT COUNT(*) FROM k")
        assert vc.fetchone() == (0,), "an interrupted INSERT leaves no rows"
        vc.execute("INSERT INTO k (id, content) VALUES (2, 'after the kill')")
        vc.execute("SELECT id FROM k")
        assert vc.fetchall() == ((2,),)
    with conn.cursor() as cur:
        assert sql_error(cur, "KILL QUERY 987654") == (1094, "Unknown thread id: 987654")
        # KILL (connection) ends the victim's connection
        cur.execute(f"KILL {victim_id}")
    with pytest.raises(pymysql.MySQLError):
        with victim.cursor() as vc:
            vc.execute("SELECT 1")
    victim.close()


def test_usage_counts_requests_and_reported_tokens(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    """EMBEDDING_USAGE: one row per provider and model; REQUESTS counts HTTP requests, TOKENS sums
    the `usage.total_tokens` the API reported (the double reports one token per word)."""
    def usage(cur) -> tuple:
        cur.execute("SELECT REQUESTS, TEXTS, TOKENS FROM information_schema.EMBEDDING_USAGE "
                    "WHERE PROVIDER = 'jina_ai' AND MODEL = 'jina-embeddings-v2-base-en'")
        return cur.fetchone() or (0, 0, 0)

    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE u (id INT PRIMARY KEY, content TEXT,
            e VECTOR(16) GENERATED ALWAYS AS (EMBED_TEXT('jina_ai/jina-embeddings-v2-base-en', content,
            '{"dimensions":16}')) STORED)""")
        before = usage(cur)
        texts = [f"usage words {'x ' * i}".strip() for i in range(20)]
        cur.execute("INSERT INTO u (id, content) VALUES " + ", ".join(f"({i}, '{t}')" for i, t in enumerate(texts)))
        reqs = double.take()
        after = usage(cur)
    assert after[0] - before[0] == len(reqs) == math.ceil(20 / JINA_BATCH)
    assert after[1] - before[1] == 20
    assert after[2] - (before[2] or 0) == sum(len(t.split()) for t in texts)


def test_client_disconnect_stops_the_provider_call(server: EmbedbServer, conn: pymysql.Connection,
                                                   double: EmbeddingDouble) -> None:
    """A client that goes away (the mysql CLI killed) while its INSERT waits on a slow provider:
    the statement is interrupted at once (EMBEDDING_USAGE records it long before the provider
    would have answered) and leaves no rows."""
    import subprocess
    import time

    with conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        (db,) = cur.fetchone()
        cur.execute(EMBED_TABLE.format(name="gone"))
    double.delay = 8.0
    host, port = server.address
    proc = subprocess.Popen(["mysql", "-h", host, "-P", str(port), "-u", "root", db, "-e",
                             "INSERT INTO gone (id, content) VALUES (1, 'the client will not wait for this')"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not double.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert double.requests, "the INSERT never reached the provider"
        t0 = time.monotonic()
        proc.kill()
        proc.wait()
        last_error = None
        while time.monotonic() - t0 < 4:
            with conn.cursor() as cur:
                cur.execute("SELECT LAST_ERROR FROM information_schema.EMBEDDING_USAGE "
                            "WHERE PROVIDER = 'jina_ai' AND MODEL = 'jina-embeddings-v3'")
                row = cur.fetchone()
            last_error = row[0] if row else None
            if last_error == "Query execution was interrupted":
                break
            time.sleep(0.1)
        assert last_error == "Query execution was interrupted"
        assert time.monotonic() - t0 < 4, "the statement waited for the provider"
    finally:
        if proc.poll() is None:
            proc.kill()
    double.delay = 0.0
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM gone")
        assert cur.fetchone() == (0,)


def test_rerank_in_sql_with_jina(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    """RERANK_SCORE over a candidate subquery with Jina's rerank API: requests of up to 32
    documents sent with the key, scores in row order, usage counted under the reranker's row, the
    pairs cached, NULL text → NULL score, a provider without a rerank API refused."""
    model = "jina_ai/jina-reranker-v2-base-multilingual"
    query = "java programming language"
    words = ["java", "coffee", "programming", "island", "language", "beans", "code", "tea"]
    docs = [(i, " ".join(words[(i * k) % len(words)] for k in range(1, 4))) for i in range(1, 41)]
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE d (id INT PRIMARY KEY, content TEXT)")
        cur.execute("INSERT INTO d VALUES " + ",".join(f"({i}, '{t}')" for i, t in docs) + ", (41, NULL)")
        double.take()
        sql = (f"SELECT id, RERANK_SCORE('{model}', %s, content) AS s FROM "
               "(SELECT id, content FROM d ORDER BY id LIMIT 41) c ORDER BY s DESC, id LIMIT 10")
        cur.execute(sql, (query,))
        got = cur.fetchall()
        by_id = dict(docs)
        want = sorted(docs, key=lambda d: (-rerank_score(query, d[1]), d[0]))[:10]
        assert [r[0] for r in got] == [i for i, _ in want]
        assert all(abs(s - rerank_score(query, by_id[i])) < 1e-6 for i, s in got)
        reqs = double.take()
        distinct = {t for _, t in docs}
        assert all(r.path == JINA_RERANK_PATH for r in reqs)
        assert all(r.headers["authorization"] == f"Bearer {JINA_KEY}" for r in reqs)
        assert sum(len(r.body["documents"]) for r in reqs) == len(distinct) and max(len(r.body["documents"]) for r in reqs) <= 32
        assert all(r.body["query"] == query and r.body["model"] == "jina-reranker-v2-base-multilingual" for r in reqs)
        cur.execute(sql, (query,))
        assert cur.fetchall() == got and double.take() == [], "scored pairs come from the cache"
        cur.execute(f"SELECT RERANK_SCORE('{model}', 'q', NULL)")
        assert cur.fetchone()[0] is None
        cur.execute("SELECT REQUESTS, TEXTS, CACHE_HITS FROM information_schema.EMBEDDING_USAGE "
                    "WHERE PROVIDER = 'jina_ai' AND MODEL = 'jina-reranker-v2-base-multilingual'")
        requests, texts, hits = cur.fetchone()
        assert (requests, texts) == (len(reqs), len(distinct)) and hits >= 40
        code, msg = sql_error(cur, "SELECT RERANK_SCORE('openai/some-reranker', 'q', 'doc')")
        assert "no reranking API" in msg
        code, msg = sql_error(cur, "SELECT RERANK_SCORE('jina_ai/x', 'q')")
        assert "parameter count" in msg.lower()


def test_hybrid_search_rerank_option(conn: pymysql.Connection, double: EmbeddingDouble) -> None:
    """HYBRID_SEARCH's `rerank` option: the best `rerank_candidates` fused rows re-scored by the
    reranker, the best k of them returned by `_rerank_score` — the same rows as reranking the fused
    list by hand."""
    reranker = "jina_ai/jina-reranker-v2-base-multilingual"
    query = "java programming language"
    words = ["java", "coffee", "programming", "island", "language", "beans", "code", "tea"]
    docs = [(i, " ".join(words[(i * k + i // 8) % len(words)] for k in range(1, 4))) for i in range(1, 41)]
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE h (id INT PRIMARY KEY, content TEXT, "
                    "e VECTOR(64) GENERATED ALWAYS AS (EMBED_TEXT('jina_ai/test-model', content)) STORED, "
                    "FULLTEXT INDEX (content) WITH PARSER STANDARD)")
        cur.execute("INSERT INTO h (id, content) VALUES " + ",".join(f"({i}, '{t}')" for i, t in docs))
        cur.execute("SELECT id, content FROM HYBRID_SEARCH(h, %s, e, content, 20)", (query,))
        fused = cur.fetchall()
        double.take()
        opts = json.dumps({"rerank": reranker, "rerank_candidates": 20})
        cur.execute("SELECT id, _score, _rerank_score FROM HYBRID_SEARCH(h, %s, e, content, 5, %s)", (query, opts))
        got = cur.fetchall()
        want = sorted(fused, key=lambda r: (-rerank_score(query, r[1]), r[0]))[:5]
        assert [r[0] for r in got] == [i for i, _ in want]
        assert all(abs(r[2] - rerank_score(query, dict(docs)[r[0]])) < 1e-6 for r in got)
        sent = [d for r in double.take() if r.path == JINA_RERANK_PATH for d in r.body["documents"]]
        # Only the fused candidates are scored (those another test scored already come from the cache).
        assert set(sent) <= {c for _, c in fused}
        for bad, needle in [({"rerank": reranker, "mmr": 0.5}, "do not go together"),
                            ({"rerank_candidates": 10}, "goes with 'rerank'"),
                            ({"rerank": "nomodel"}, "provider/model")]:
            code, msg = sql_error(cur, f"SELECT id FROM HYBRID_SEARCH(h, 'q', e, content, 5, '{json.dumps(bad)}')")
            assert code == 1210 and needle in msg, msg
