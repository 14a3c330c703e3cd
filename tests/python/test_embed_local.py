"""Auto embedding with the local model (all-MiniLM-L6-v2, in-process): the seed's SQL example through
the real mysql CLI, and EMBED_TEXT behaviour through pymysql. Distances are checked against the
sentence-transformers reference in ../shared/fixtures/minilm-reference.json."""

from __future__ import annotations

import json
import time
import shutil
import subprocess
from pathlib import Path

import pymysql
import pytest

from conftest import connect

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO.parent / "shared" / "fixtures" / "minilm-reference.json"

SEED_SQL = """
CREATE TABLE sample_documents (
    `id`        INT PRIMARY KEY,
    `content`   TEXT,
    `embedding` VECTOR(384) GENERATED ALWAYS AS (EMBED_TEXT(
        "local/all-MiniLM-L6-v2",
        `content`
    )) STORED
);
INSERT INTO sample_documents (id, content)
VALUES
    (1, "Java: Object-oriented language for cross-platform development."),
    (2, "Java coffee: Bold Indonesian beans with low acidity."),
    (3, "Java island: Densely populated, home to Jakarta."),
    (4, "Java's syntax is used in Android apps."),
    (5, "Dark roast Java beans enhance espresso blends.");
SELECT
    `id`,
    `content`,
    VEC_EMBED_COSINE_DISTANCE(embedding, "How to start learning Java programming?") AS _distance
FROM sample_documents
ORDER BY _distance ASC
LIMIT 2;
"""


def reference_distances() -> dict[int, float]:
    d = json.loads(FIXTURE.read_text())["seed_query_cosine_distances"]
    return {int(k): v for k, v in d.items()}


@pytest.mark.skipif(shutil.which("mysql") is None, reason="the mysql CLI is not installed")
def test_seed_sql_example_through_mysql_cli(embedb_server, db: str) -> None:
    host, port = embedb_server
    r = subprocess.run(
        ["mysql", "--no-defaults", "--protocol=TCP", "-h", host, "-P", str(port), "-uroot", "--batch", db],
        input=SEED_SQL.encode(), capture_output=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().strip().splitlines()
    assert lines[0] == "id\tcontent\t_distance"
    rows = [l.split("\t") for l in lines[1:]]
    assert [int(x[0]) for x in rows] == [1, 4]
    ref = reference_distances()
    for row in rows:
        assert abs(float(row[2]) - ref[int(row[0])]) < 1e-4


def test_embed_text_rows_update_and_errors(conn: pymysql.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE d (id INT PRIMARY KEY, content TEXT, n INT,
                         e VECTOR(384) GENERATED ALWAYS AS (EMBED_TEXT('local/all-MiniLM-L6-v2', content)) STORED)""")
        cur.execute("INSERT INTO d (id, content, n) VALUES (1, 'apples and pears', 1), (2, NULL, 2), (3, 'apples and pears', 3)")
        cur.execute("SELECT id, VEC_DIMS(e), e IS NULL FROM d ORDER BY id")
        assert cur.fetchall() == ((1, 384, 0), (2, None, 1), (3, 384, 0))
        # identical text → identical vector; the vector is L2-normalised
        cur.execute("SELECT VEC_COSINE_DISTANCE(a.e, b.e), VEC_L2_NORM(a.e) FROM d a JOIN d b ON a.id = 1 AND b.id = 3")
        dist, norm = cur.fetchone()
        assert abs(dist) < 1e-6 and abs(norm - 1) < 1e-5
        # an UPDATE of another column keeps the vector; an UPDATE of the source recomputes it
        cur.execute("SELECT e FROM d WHERE id = 1")
        (before,) = cur.fetchone()
        cur.execute("UPDATE d SET n = 10 WHERE id = 1")
        cur.execute("SELECT e FROM d WHERE id = 1")
        assert cur.fetchone()[0] == before
        cur.execute("UPDATE d SET content = 'a database for semantic search' WHERE id = 1")
        cur.execute("SELECT e FROM d WHERE id = 1")
        assert cur.fetchone()[0] != before
        cur.execute("UPDATE d SET content = 'now it has text' WHERE id = 2")
        cur.execute("SELECT VEC_DIMS(e) FROM d WHERE id = 2")
        assert cur.fetchone() == (384,)
        # the wrong dimension for the model fails the statement and writes nothing
        cur.execute("CREATE TABLE bad (id INT PRIMARY KEY, c TEXT, "
                    "e VECTOR(3) GENERATED ALWAYS AS (EMBED_TEXT('local/all-MiniLM-L6-v2', c)) STORED)")
        with pytest.raises(pymysql.err.OperationalError) as ex:
            cur.execute("INSERT INTO bad (id, c) VALUES (1, 'x'), (2, 'y')")
        assert ex.value.args == (1105, "vector has 384 dimensions, does not fit VECTOR(3)")
        cur.execute("SELECT COUNT(*) FROM bad")
        assert cur.fetchone() == (0,)


@pytest.mark.parametrize("sql,message", [
    ("CREATE TABLE x (c TEXT, e VECTOR(3) GENERATED ALWAYS AS (EMBED_TEXT('nomodel', c)) STORED)",
     "model name must be in format 'provider/model', got: nomodel"),
    ("CREATE TABLE x (c TEXT, m TEXT, e VECTOR(3) GENERATED ALWAYS AS (EMBED_TEXT(m, c)) STORED)",
     "EMBED_TEXT() only accepts model name using string constant"),
    ("CREATE TABLE x (c TEXT, m TEXT, e VECTOR(3) GENERATED ALWAYS AS (EMBED_TEXT('local/all-MiniLM-L6-v2', c, m)) STORED)",
     "EMBED_TEXT() only accepts JSON options using string constant"),
    ("CREATE TABLE x (c TEXT, e VECTOR(3) GENERATED ALWAYS AS (EMBED_TEXT('local/all-MiniLM-L6-v2', c, 'nope')) STORED)",
     "EMBED_TEXT expects options in JSON format"),
    ("SELECT EMBED_TEXT('acme/model', 'hi')",
     "unknown embedding provider 'acme', available providers: openai, jina_ai, cohere, gemini, huggingface, nvidia_nim, local"),
])
def test_embed_text_errors(conn: pymysql.Connection, sql: str, message: str) -> None:
    with conn.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as ex:
        cur.execute(sql)
    assert ex.value.args == (1105, message)


def test_vec_embed_needs_an_embedding_column(conn: pymysql.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE p (id INT PRIMARY KEY, v VECTOR(3))")
        with pytest.raises(pymysql.err.MySQLError) as ex:
            cur.execute("SELECT VEC_EMBED_COSINE_DISTANCE(v, 'hello') FROM p")
        assert ex.value.args[0] == 1105
        assert "first argument must be a vector embedding column generated by EMBED_TEXT(), got v" in ex.value.args[1]


def test_embed_text_function_matches_reference(conn: pymysql.Connection) -> None:
    """EMBED_TEXT as a plain function, against sentence-transformers' vectors."""
    items = json.loads(FIXTURE.read_text())["items"]
    with conn.cursor() as cur:
        for it in items[:6]:
            cur.execute("SELECT EMBED_TEXT('local/all-MiniLM-L6-v2', %s)", (it["text"],))
            got = [float(x) for x in cur.fetchone()[0][1:-1].split(",")]
            ref = it["embedding"]
            dot = sum(a * b for a, b in zip(got, ref))
            assert dot >= 0.9999, it["text"][:40]


def test_embedding_cache_survives_restart_and_usage_is_visible(private_server, restart_server) -> None:
    """Re-inserting the same texts after a restart is answered by the persistent cache: the
    provider is not called again (information_schema.EMBEDDING_USAGE counts calls and hits, and its
    counts survive the restart; a `kill -9` loses at most the last 2 s of counting)."""
    def usage(cur) -> tuple:
        cur.execute("SELECT REQUESTS, TEXTS, CACHE_HITS, ERRORS FROM information_schema.EMBEDDING_USAGE "
                    "WHERE PROVIDER = 'local' AND MODEL = 'all-MiniLM-L6-v2'")
        return cur.fetchone()

    host, port = private_server.address
    with connect(host, port, "test") as c, c.cursor() as cur:
        cur.execute("CREATE TABLE c (id INT PRIMARY KEY, t TEXT, "
                    "e VECTOR(384) GENERATED ALWAYS AS (EMBED_TEXT('local/all-MiniLM-L6-v2', t)) STORED)")
        cur.execute("INSERT INTO c (id, t) VALUES (1, 'cached text one'), (2, 'cached text two'), (3, 'cached text one')")
        assert usage(cur) == (1, 2, 0, 0), "one call, two distinct texts"
        cur.execute("SELECT e FROM c WHERE id = 1")
        (v1,) = cur.fetchone()
    host, port = restart_server(private_server, hard=False)
    with connect(host, port, "test") as c, c.cursor() as cur:
        cur.execute("INSERT INTO c (id, t) VALUES (4, 'cached text one'), (5, 'cached text two')")
        assert usage(cur) == (1, 2, 2, 0), "both answered from the persisted cache (and the counts survived)"
        cur.execute("SELECT e FROM c WHERE id = 4")
        assert cur.fetchone()[0] == v1
        time.sleep(2.5)  # the counts are stored every 2 s
    host, port = restart_server(private_server, hard=True)
    with connect(host, port, "test") as c, c.cursor() as cur:
        assert usage(cur) == (1, 2, 2, 0), "the counts survive kill -9"


def test_vec_embed_range_search_uses_the_index(conn: pymysql.Connection) -> None:
    """`WHERE VEC_EMBED_COSINE_DISTANCE(col, 'query') < bound` on an indexed embedding column is a
    range search served by the graph, and keeps exactly the rows the reference puts in range."""
    create, insert = SEED_SQL.split(";")[:2]
    with conn.cursor() as cur:
        cur.execute(create.replace("sample_documents", "ranged"))
        cur.execute("ALTER TABLE ranged ADD VECTOR INDEX iv ((VEC_COSINE_DISTANCE(embedding))) USING HNSW")
        cur.execute(insert.replace("sample_documents", "ranged"))
        query = "How to start learning Java programming?"
        cur.execute("EXPLAIN SELECT id FROM ranged WHERE VEC_EMBED_COSINE_DISTANCE(embedding, %s) < 0.7", (query,))
        assert any("range:0.7" in str(r[1]) for r in cur.fetchall())
        ref = reference_distances()
        for bound in (0.55, 0.65, 0.7, 0.8, 0.9):
            cur.execute("SELECT id FROM ranged WHERE VEC_EMBED_COSINE_DISTANCE(embedding, %s) < %s ORDER BY id", (query, bound))
            assert [r[0] for r in cur.fetchall()] == sorted(i for i, d in ref.items() if d < bound), bound


def test_over_length_text_is_truncated_at_the_models_limit(conn: pymysql.Connection) -> None:
    """Today's long-text behaviour with the local model (issue 16 asks for it to be known): like
    sentence-transformers, all-MiniLM-L6-v2 sees only the first 256 word pieces ([CLS], 254 of the
    text, [SEP]); the rest is dropped without an error. `hello` is one word piece."""
    with conn.cursor() as cur:
        def distance(a: int, b: int) -> float:
            cur.execute("SELECT VEC_COSINE_DISTANCE(EMBED_TEXT('local/all-MiniLM-L6-v2', %s), "
                        "EMBED_TEXT('local/all-MiniLM-L6-v2', %s))", ("hello " * a + "world", "hello " * b + "world"))
            return float(cur.fetchone()[0])
        # 600 and 254 copies differ only past the limit (the trailing word falls off both)...
        assert distance(600, 254) < 1e-9
        assert distance(600, 1000) < 1e-9
        # ...while below it the text still counts.
        assert distance(600, 200) > 1e-4
        assert distance(100, 200) > 1e-4


def test_long_text_policy_truncate_warns_and_counts_error_refuses(conn: pymysql.Connection) -> None:
    """Issue 16's long-text policy with the local model (input limit 256 word pieces): the default
    `truncate` embeds the first 256 word pieces, warns once per statement with the count, and
    counts the texts in EMBEDDING_USAGE.TRUNCATED; `"embedb.long_text": "error"` refuses the
    statement and changes nothing; an async column with `error` marks the row failed."""
    long_text, short_text = "hello " * 600 + "world", "hello world"
    with conn.cursor() as cur:
        def truncated() -> int:
            cur.execute("SELECT TRUNCATED FROM information_schema.EMBEDDING_USAGE WHERE PROVIDER = 'local' AND MODEL = 'all-MiniLM-L6-v2'")
            return int(cur.fetchone()[0])
        cur.execute("CREATE TABLE cut (id INT PRIMARY KEY, t TEXT, "
                    "v VECTOR(384) GENERATED ALWAYS AS (EMBED_TEXT('local/all-MiniLM-L6-v2', t)) STORED)")
        before = truncated()
        cur.execute("INSERT INTO cut (id, t) VALUES (1, %s), (2, %s), (3, %s)", (long_text, short_text, long_text + " again"))
        cur.execute("SHOW WARNINGS")
        warnings = cur.fetchall()
        assert len(warnings) == 1 and "2 text(s) longer than local/all-MiniLM-L6-v2's input limit of 256 tokens" in warnings[0][2], warnings
        assert truncated() == before + 2
        cur.execute("INSERT INTO cut (id, t) VALUES (4, %s)", (short_text,))
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall() == ()

        cur.execute("CREATE TABLE strict_len (id INT PRIMARY KEY, t TEXT, v VECTOR(384) GENERATED ALWAYS AS "
                    "(EMBED_TEXT('local/all-MiniLM-L6-v2', t, '{\"embedb.long_text\": \"error\"}')) STORED)")
        with pytest.raises(pymysql.MySQLError) as ei:
            cur.execute("INSERT INTO strict_len (id, t) VALUES (1, %s), (2, %s)", (short_text, long_text))
        assert ei.value.args[0] == 1105 and "1 text(s) longer than local/all-MiniLM-L6-v2's input limit of 256 tokens" in ei.value.args[1]
        cur.execute("SELECT COUNT(*) FROM strict_len")
        assert cur.fetchone()[0] == 0
        cur.execute("INSERT INTO strict_len (id, t) VALUES (1, %s)", (short_text,))
        with pytest.raises(pymysql.MySQLError):
            cur.execute("UPDATE strict_len SET t = %s WHERE id = 1", (long_text,))
        cur.execute("SELECT t FROM strict_len WHERE id = 1")
        assert cur.fetchone()[0] == short_text
        with pytest.raises(pymysql.MySQLError) as ei:
            cur.execute("CREATE TABLE bad_len (t TEXT, v VECTOR(384) GENERATED ALWAYS AS "
                        "(EMBED_TEXT('local/all-MiniLM-L6-v2', t, '{\"embedb.long_text\": \"chop\"}')) STORED)")
        assert ei.value.args[0] == 1210 and "embedb.long_text" in ei.value.args[1]

        # Async with `error`: the row commits, then fails alone in the backlog.
        cur.execute("CREATE TABLE async_len (id INT PRIMARY KEY, t TEXT, v VECTOR(384) GENERATED ALWAYS AS "
                    "(EMBED_TEXT('local/all-MiniLM-L6-v2', t, '{\"embedb.mode\": \"async\", \"embedb.long_text\": \"error\"}')) STORED)")
        cur.execute("INSERT INTO async_len (id, t) VALUES (1, %s), (2, %s), (3, %s)", (short_text, long_text, "another short one"))
        deadline = time.monotonic() + 60
        while True:
            cur.execute("SELECT PENDING, FAILED FROM information_schema.EMBEDDING_BACKLOG WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'async_len'")
            pending, failed = cur.fetchone()
            if pending == 0:
                break
            assert time.monotonic() < deadline, "backlog did not settle"
            time.sleep(0.1)
        assert failed == 1
        cur.execute("SELECT ROW_ID, STATE, LAST_ERROR FROM information_schema.EMBEDDING_BACKLOG_ROWS WHERE TABLE_SCHEMA = DATABASE()")
        (row_id, state, error), = cur.fetchall()
        assert (row_id, state) == (2, "failed") and "input limit of 256 tokens" in error
        cur.execute("SELECT id FROM async_len WHERE v IS NOT NULL ORDER BY id")
        assert [r[0] for r in cur.fetchall()] == [1, 3]


def test_embedding_estimate_counts_texts_cache_and_tokens_before_embedding(conn: pymysql.Connection) -> None:
    """EMBEDDING_ESTIMATE over the rows an INSERT … SELECT would embed: distinct texts, those the
    cache already answers, and the local tokenizer's exact token count of the rest ([CLS] and
    [SEP] included) — without embedding anything."""
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE raw (id INT PRIMARY KEY, body TEXT)")
        cur.execute("INSERT INTO raw VALUES (1, 'estimate alpha beta'), (2, 'estimate alpha beta'), (3, 'estimate gamma'), "
                    "(4, NULL), (5, 'estimate delta epsilon zeta')")
        def estimate(where: str = "") -> dict | None:
            cur.execute(f"SELECT EMBEDDING_ESTIMATE('local/all-MiniLM-L6-v2', body) FROM raw {where}")
            v = cur.fetchone()[0]
            return json.loads(v) if v is not None else None
        cur.execute("SELECT REQUESTS FROM information_schema.EMBEDDING_USAGE WHERE PROVIDER = 'local'")
        requests_before = cur.fetchone()
        first = estimate()
        assert {k: first[k] for k in ("texts", "distinct", "cached", "to_embed", "tokens_counted")} == \
            {"texts": 4, "distinct": 3, "cached": 0, "to_embed": 3, "tokens_counted": True}
        cur.execute("SELECT body FROM raw WHERE id IN (1, 3, 5)")
        bodies = [r[0] for r in cur.fetchall()]
        # The tokens are the model's: each text's own count, summed.
        per_text = []
        for b in bodies:
            cur.execute("SELECT EMBEDDING_ESTIMATE('local/all-MiniLM-L6-v2', %s)", (b,))
            per_text.append(json.loads(cur.fetchone()[0])["tokens"])
        assert first["tokens"] == sum(per_text) and all(t >= 3 for t in per_text)
        cur.execute("SELECT REQUESTS FROM information_schema.EMBEDDING_USAGE WHERE PROVIDER = 'local'")
        assert cur.fetchone() == requests_before, "an estimate embeds nothing"
        # Embedded once, a text is answered by the cache.
        cur.execute("CREATE TABLE docs (id INT PRIMARY KEY, content TEXT, "
                    "v VECTOR(384) GENERATED ALWAYS AS (EMBED_TEXT('local/all-MiniLM-L6-v2', content)) STORED)")
        cur.execute("INSERT INTO docs (id, content) SELECT id, body FROM raw WHERE id = 3")
        second = estimate()
        assert (second["cached"], second["to_embed"], second["tokens"]) == (1, 2, first["tokens"] - per_text[1])
        assert estimate("WHERE id > 100") is None
