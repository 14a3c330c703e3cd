"""Remote embedding providers ``cohere/…``, ``gemini/…``, ``huggingface/…`` and ``nvidia_nim/…``
against a local double of their HTTP APIs (``doubles/embedding_api_more.py``): the exact requests
embedb sends (path, auth header, JSON body, options passed through), decoding and row order, and
TiDB's error texts (missing key, bad key, provider error detail). A server of this module's own is
started with ``EMBEDB_{COHERE,GEMINI,HUGGINGFACE,NVIDIA_NIM}_API_BASE`` pointing at the double."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterator

import pymysql
import pytest

from conftest import connect, own_server
from doubles.embedding_api import vector_for
from doubles.embedding_api import rerank_score
from doubles.embedding_api_more import COHERE_RERANK_PATH, COHERE_PATH, DEFAULT_DIMS, NIM_PATH, MoreEmbeddingDouble
from sqltest import EmbedbServer

KEYS = {
    "COHERE": "co-SECRET-key-0001",
    "GEMINI": "gm-SECRET-key-0002",
    "HUGGINGFACE": "hf_SECRET-key-0003",
    "NVIDIA_NIM": "nvapi-SECRET-key-0004",
}
DISPLAY = {"COHERE": "Cohere", "GEMINI": "Gemini", "HUGGINGFACE": "HuggingFace", "NVIDIA_NIM": "NVIDIA NIM"}
TEXTS = [(1, "alpha row one"), (2, "beta row two"), (3, "gamma row three")]
INSERT = "INSERT INTO t (id, content) VALUES " + ", ".join(f"({i}, '{t}')" for i, t in TEXTS)


def missing(p: str) -> str:
    return (f"{DISPLAY[p]} API key is not configured, to configure the API key: "
            f"SET @@GLOBAL.TIDB_EXP_EMBED_{p}_API_KEY='<API_KEY>'")


def unauthorized(p: str) -> str:
    return (f"{DISPLAY[p]} returns status unauthorized, check your API key. To reconfigure a new API key: "
            f"SET @@GLOBAL.TIDB_EXP_EMBED_{p}_API_KEY='<API_KEY>'")


@pytest.fixture(scope="module")
def double() -> Iterator[MoreEmbeddingDouble]:
    d = MoreEmbeddingDouble(valid_keys=set(KEYS.values())).start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def server(embedb_binary: Path, double: MoreEmbeddingDouble,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbedbServer]:
    env = {"EMBEDB_COHERE_API_BASE": double.url, "EMBEDB_GEMINI_API_BASE": double.url,
           "EMBEDB_HUGGINGFACE_API_BASE": f"{double.url}/hf", "EMBEDB_NVIDIA_NIM_API_BASE": f"{double.url}/nim"}
    with own_server(embedb_binary, tmp_path_factory.mktemp("embedb-providers-more"), env,
                    ("--embed-max-retries", "1", "--embed-timeout-secs", "10")) as srv:
        yield srv


@pytest.fixture
def conn(server: EmbedbServer, double: MoreEmbeddingDouble, request: pytest.FixtureRequest) -> Iterator[pymysql.Connection]:
    name = "pm_" + request.node.name[:50].lower().replace("[", "_").replace("]", "_").replace("-", "_")
    c = connect(*server.address)
    with c.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"USE `{name}`")
        for p, k in KEYS.items():
            cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_{p}_API_KEY = '{k}'")
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


def create(cur, model: str, dims: int, options: str | None = None) -> None:
    opts = f", '{options}'" if options is not None else ""
    cur.execute(f"""CREATE TABLE t (id INT PRIMARY KEY, content TEXT,
                    e VECTOR({dims}) GENERATED ALWAYS AS (EMBED_TEXT('{model}', content{opts})) STORED)""")


def check_stored(cur, dims: int) -> None:
    cur.execute("SELECT id, VEC_AS_TEXT(e) FROM t ORDER BY id")
    got = {i: json.loads(v) for i, v in cur.fetchall()}
    assert sorted(got) == [1, 2, 3]
    for i, t in TEXTS:
        want = vector_for(t, dims)
        assert len(got[i]) == dims
        assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(got[i], want)), (i, t)


SORTED_TEXTS = sorted(t for _, t in TEXTS)


# -- Cohere --------------------------------------------------------------------------------------

def test_cohere(conn: pymysql.Connection, double: MoreEmbeddingDouble) -> None:
    with conn.cursor() as cur:
        create(cur, "cohere/embed-v4.0", 256,
               '{"output_dimension":256,"truncate":"END","input_type@search":"search_query"}')
        cur.execute(INSERT)
        reqs = double.take()
        assert len(reqs) == 1
        r = reqs[0]
        assert r.path == COHERE_PATH
        assert r.headers["authorization"] == f"Bearer {KEYS['COHERE']}"
        assert r.headers["content-type"].startswith("application/json")
        assert list(r.body) == ["model", "texts", "input_type", "output_dimension", "truncate", "embedding_types"]
        assert {**r.body, "texts": sorted(r.body["texts"])} == {
            "model": "embed-v4.0", "texts": SORTED_TEXTS, "input_type": "search_document",
            "output_dimension": 256, "truncate": "END", "embedding_types": ["float"]}
        check_stored(cur, 256)
        # a search uses the @search input_type
        cur.execute("SELECT id FROM t ORDER BY VEC_EMBED_COSINE_DISTANCE(e, 'a cohere query') LIMIT 1")
        assert len(cur.fetchall()) == 1
        assert [x.body for x in double.take()] == [{
            "model": "embed-v4.0", "texts": ["a cohere query"], "input_type": "search_query",
            "output_dimension": 256, "truncate": "END", "embedding_types": ["float"]}]


def test_cohere_rerank_in_sql(conn: pymysql.Connection, double: MoreEmbeddingDouble) -> None:
    """RERANK_SCORE with Cohere's rerank API: the request's shape, scores in row order, the cache."""
    docs = [(1, "alpha beta gamma"), (2, "beta gamma"), (3, "delta"), (4, "alpha gamma delta")]
    query = "alpha gamma"
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE d (id INT PRIMARY KEY, content TEXT)")
        cur.execute("INSERT INTO d VALUES " + ",".join(f"({i}, '{t}')" for i, t in docs))
        double.take()
        sql = ("SELECT id, RERANK_SCORE('cohere/rerank-v3.5', %s, content) AS s FROM d ORDER BY s DESC")
        cur.execute(sql, (query,))
        got = cur.fetchall()
        want = sorted(docs, key=lambda d: -rerank_score(query, d[1]))
        assert [r[0] for r in got] == [i for i, _ in want]
        assert all(abs(s - rerank_score(query, dict(docs)[i])) < 1e-6 for i, s in got)
        (r,) = double.take()
        assert r.path == COHERE_RERANK_PATH and r.headers["authorization"] == f"Bearer {KEYS['COHERE']}"
        assert r.body["model"] == "rerank-v3.5" and r.body["query"] == query
        assert sorted(r.body["documents"]) == sorted(t for _, t in docs) and r.body["top_n"] == 4
        cur.execute(sql, (query,))
        assert cur.fetchall() == got and double.take() == [], "scored pairs come from the cache"


def test_cohere_errors(conn: pymysql.Connection, double: MoreEmbeddingDouble) -> None:
    with conn.cursor() as cur:
        create(cur, "cohere/embed-english-v3.0", DEFAULT_DIMS)
        double.persistent = (400, {"id": "x", "message": "invalid request: model 'nope' not found"})
        assert sql_error(cur, "INSERT INTO t (id, content) VALUES (9, 'boom')") == (
            1105, "Cohere: invalid request: model 'nope' not found")
        double.persistent = None
        cur.execute("SET @@GLOBAL.TIDB_EXP_EMBED_COHERE_API_KEY = 'co-wrong-key-99'")
        assert sql_error(cur, "INSERT INTO t (id, content) VALUES (9, 'bad key')") == (1105, unauthorized("COHERE"))


# -- Gemini --------------------------------------------------------------------------------------

def test_gemini(conn: pymysql.Connection, double: MoreEmbeddingDouble) -> None:
    with conn.cursor() as cur:
        create(cur, "gemini/gemini-embedding-001", 768,
               '{"task_type":"RETRIEVAL_DOCUMENT","task_type@search":"RETRIEVAL_QUERY","output_dimensionality":768}')
        cur.execute(INSERT)
        reqs = double.take()
        assert len(reqs) == 1
        r = reqs[0]
        assert r.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
        assert r.headers["x-goog-api-key"] == KEYS["GEMINI"]
        assert "authorization" not in r.headers
        assert list(r.body) == ["requests"]
        assert sorted(x["content"]["parts"][0]["text"] for x in r.body["requests"]) == SORTED_TEXTS
        for x in r.body["requests"]:
            assert x == {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": x["content"]["parts"][0]["text"]}]},
                         "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 768}
        check_stored(cur, 768)
        cur.execute("SELECT id FROM t ORDER BY VEC_EMBED_COSINE_DISTANCE(e, 'a gemini query') LIMIT 1")
        assert len(cur.fetchall()) == 1
        assert [x.body for x in double.take()] == [{"requests": [{
            "model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a gemini query"}]},
            "taskType": "RETRIEVAL_QUERY", "outputDimensionality": 768}]}]


def test_gemini_errors(conn: pymysql.Connection, double: MoreEmbeddingDouble) -> None:
    with conn.cursor() as cur:
        create(cur, "gemini/gemini-embedding-001", DEFAULT_DIMS)
        double.persistent = (400, {"error": {"code": 400, "message": "Request contains an invalid argument.",
                                             "status": "INVALID_ARGUMENT"}})
        assert sql_error(cur, "INSERT INTO t (id, content) VALUES (9, 'boom')") == (
            1105, "Gemini: Request contains an invalid argument.")
        double.persistent = None
        # Gemini answers a bad key with 400 API_KEY_INVALID: reported like a 401
        cur.execute("SET @@GLOBAL.TIDB_EXP_EMBED_GEMINI_API_KEY = 'gm-wrong-key-99'")
        assert sql_error(cur, "INSERT INTO t (id, content) VALUES (9, 'bad key')") == (1105, unauthorized("GEMINI"))


# -- Hugging Face --------------------------------------------------------------------------------

def test_huggingface(conn: pymysql.Connection, double: MoreEmbeddingDouble) -> None:
    with conn.cursor() as cur:
        create(cur, "huggingface/BAAI/bge-m3", DEFAULT_DIMS, '{"normalize":true,"truncate":true}')
        cur.execute(INSERT)
        reqs = double.take()
        assert len(reqs) == 1
        r = reqs[0]
        assert r.path == "/hf/models/BAAI/bge-m3/pipeline/feature-extraction"
        assert r.headers["authorization"] == f"Bearer {KEYS['HUGGINGFACE']}"
        assert list(r.body) == ["inputs", "normalize", "truncate"]
        assert {**r.body, "inputs": sorted(r.body["inputs"])} == {
            "inputs": SORTED_TEXTS, "normalize": True, "truncate": True}
        check_stored(cur, DEFAULT_DIMS)


def test_huggingface_errors(conn: pymysql.Connection, double: MoreEmbeddingDouble) -> None:
    with conn.cursor() as cur:
        create(cur, "huggingface/sentence-transformers/all-MiniLM-L6-v2", DEFAULT_DIMS)
        double.persistent = (400, {"error": "Input validation error: inputs must have less than 512 tokens"})
        assert sql_error(cur, "INSERT INTO t (id, content) VALUES (9, 'boom')") == (
            1105, "HuggingFace: Input validation error: inputs must have less than 512 tokens")
        double.persistent = None
        assert [r.path for r in double.take()] == ["/hf/models/sentence-transformers/all-MiniLM-L6-v2/pipeline/feature-extraction"]
        cur.execute("SET @@GLOBAL.TIDB_EXP_EMBED_HUGGINGFACE_API_KEY = 'hf_wrong-key-99'")
        assert sql_error(cur, "INSERT INTO t (id, content) VALUES (9, 'bad key')") == (1105, unauthorized("HUGGINGFACE"))


# -- NVIDIA NIM ----------------------------------------------------------------------------------

def test_nvidia_nim(conn: pymysql.Connection, double: MoreEmbeddingDouble) -> None:
    with conn.cursor() as cur:
        create(cur, "nvidia_nim/baai/bge-m3", DEFAULT_DIMS, '{"truncate":"END","input_type@search":"query"}')
        cur.execute(INSERT)
        reqs = double.take()
        assert len(reqs) == 1
        r = reqs[0]
        assert r.path == NIM_PATH
        assert r.headers["authorization"] == f"Bearer {KEYS['NVIDIA_NIM']}"
        assert list(r.body) == ["model", "input", "input_type", "truncate", "encoding_format"]
        assert {**r.body, "input": sorted(r.body["input"])} == {
            "model": "baai/bge-m3", "input": SORTED_TEXTS, "input_type": "passage",
            "truncate": "END", "encoding_format": "float"}
        check_stored(cur, DEFAULT_DIMS)  # the double shuffles `data`: order comes from `index`
        cur.execute("SELECT id FROM t ORDER BY VEC_EMBED_L2_DISTANCE(e, 'a nim query') LIMIT 1")
        assert len(cur.fetchall()) == 1
        assert [x.body for x in double.take()] == [{"model": "baai/bge-m3", "input": ["a nim query"],
                                                    "input_type": "query", "truncate": "END",
                                                    "encoding_format": "float"}]


def test_nvidia_nim_errors(conn: pymysql.Connection, double: MoreEmbeddingDouble) -> None:
    with conn.cursor() as cur:
        create(cur, "nvidia_nim/baai/bge-m3", DEFAULT_DIMS)
        double.persistent = (400, {"error": {"message": "Input length exceeds maximum", "type": "invalid_request_error"}})
        assert sql_error(cur, "INSERT INTO t (id, content) VALUES (9, 'boom')") == (
            1105, "NVIDIA NIM: Input length exceeds maximum")
        double.persistent = None
        cur.execute("SET @@GLOBAL.TIDB_EXP_EMBED_NVIDIA_NIM_API_KEY = 'nvapi-wrong-key-99'")
        assert sql_error(cur, "INSERT INTO t (id, content) VALUES (9, 'bad key')") == (1105, unauthorized("NVIDIA_NIM"))


# -- all ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("provider,model", [
    ("COHERE", "cohere/embed-v4.0"),
    ("GEMINI", "gemini/gemini-embedding-001"),
    ("HUGGINGFACE", "huggingface/BAAI/bge-m3"),
    ("NVIDIA_NIM", "nvidia_nim/baai/bge-m3"),
])
def test_missing_key(conn: pymysql.Connection, double: MoreEmbeddingDouble, provider: str, model: str) -> None:
    with conn.cursor() as cur:
        create(cur, model, DEFAULT_DIMS)
        cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_{provider}_API_KEY = ''")
        assert sql_error(cur, "INSERT INTO t (id, content) VALUES (1, 'no key yet')") == (1105, missing(provider))
        assert sql_error(cur, f"SELECT EMBED_TEXT('{model}', 'no key yet')") == (1105, missing(provider))
        assert double.take() == []
        cur.execute("SELECT COUNT(*) FROM t")
        assert cur.fetchone() == (0,)


def test_keys_never_logged(server: EmbedbServer, conn: pymysql.Connection) -> None:
    """Runs last: nothing the earlier tests did put a key in the server log."""
    log = Path(server.log_path).read_text(errors="replace")
    for k in [*KEYS.values(), "co-wrong-key-99", "gm-wrong-key-99", "hf_wrong-key-99", "nvapi-wrong-key-99"]:
        assert k not in log
    assert "SECRET" not in log
