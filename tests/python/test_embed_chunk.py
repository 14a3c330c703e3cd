"""Chunking long texts (``'{"embedb.long_text": "chunk"}'`` in ``EMBED_TEXT``'s options) with the
local model: a row keeps one vector per chunk, searches rank rows by their best chunk (through the
HNSW index, each row once), ``VEC_EMBED_BEST_CHUNK`` selects that chunk's text, UPDATE and DELETE
keep the chunks consistent, async columns chunk too — and on SciFact abstracts concatenated in
groups of 8 (answers deep inside a long document), chunking finds far more of the right documents
than truncating at the model's 256 word pieces."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pymysql
import pytest

REPO = Path(__file__).resolve().parents[2]
SCIFACT = REPO.parent / "shared" / "data" / "scifact"
MODEL = "local/all-MiniLM-L6-v2"
DIMS = 384


def column(policy: str, extra: str = "", mode: str = "sync") -> str:
    opts = {"embedb.long_text": policy, **({"embedb.mode": "async"} if mode == "async" else {})}
    if extra:
        opts.update(json.loads(extra))
    return (f"embedding VECTOR({DIMS}) GENERATED ALWAYS AS "
            f"(EMBED_TEXT('{MODEL}', content, '{json.dumps(opts)}')) STORED")


def filler(n: int, topic: str = "gardening and tomatoes") -> str:
    return " ".join(f"Sentence number {i} talks about {topic}." for i in range(n))


NEEDLE = "The quantum computer keeps its superconducting qubits near absolute zero."


def test_chunked_rows_are_found_by_their_best_chunk(conn: pymysql.Connection) -> None:
    cur = conn.cursor()
    cur.execute(f"""CREATE TABLE docs (id INT PRIMARY KEY, content TEXT, {column('chunk')},
                    VECTOR INDEX ((VEC_COSINE_DISTANCE(embedding))))""")
    cur.execute(f"CREATE TABLE flat (id INT PRIMARY KEY, content TEXT, {column('chunk')})")
    deep = filler(60) + " " + NEEDLE + " " + filler(60)
    rows = [(1, deep), (2, filler(120)), (3, "A short note about cars."), (4, NEEDLE)]
    for t in ("docs", "flat"):
        cur.executemany(f"INSERT INTO {t} (id, content) VALUES (%s, %s)", rows)
    conn.commit()

    # One vector per chunk: long texts hold several, short ones one, NULL text none.
    cur.execute("SELECT id, VEC_DIMS(embedding) FROM docs ORDER BY id")
    dims = dict(cur.fetchall())
    assert dims[1] % DIMS == 0 and dims[1] // DIMS >= 4, dims
    assert dims[2] % DIMS == 0 and dims[2] // DIMS >= 4, dims
    assert dims[3] == DIMS and dims[4] == DIMS

    q = "superconducting qubits at low temperature"
    search = ("SELECT id, VEC_EMBED_COSINE_DISTANCE(embedding, %s) AS d, VEC_EMBED_BEST_CHUNK(embedding, %s) "
              "FROM {t} ORDER BY d LIMIT 3")
    cur.execute(search.format(t="docs"), (q, q))
    got = cur.fetchall()
    cur.execute(search.format(t="flat"), (q, q))
    exact = cur.fetchall()
    # The deep needle is found as well as the needle alone; each row once; the index agrees with
    # the exact scan of an unindexed copy.
    assert {got[0][0], got[1][0]} == {1, 4}, got
    assert len({r[0] for r in got}) == 3
    assert [(r[0], round(r[1], 6)) for r in got] == [(r[0], round(r[1], 6)) for r in exact]
    best = {r[0]: r[2] for r in got}
    assert NEEDLE in best[1] and len(best[1]) < len(deep) / 2, best[1]
    assert best[4] == NEEDLE
    cur.execute("EXPLAIN SELECT id FROM docs ORDER BY VEC_EMBED_COSINE_DISTANCE(embedding, 'qubits') LIMIT 3")
    assert "annIndex:COSINE" in str(cur.fetchall())

    # A plain distance on the column is the best chunk's too (pytidb's shape).
    cur.execute("SELECT embedding FROM docs WHERE id = 4")
    needle_vec = cur.fetchone()[0]
    cur.execute("SELECT id, VEC_COSINE_DISTANCE(embedding, %s) AS d FROM docs ORDER BY d LIMIT 2", (needle_vec,))
    top = cur.fetchall()
    assert [r[0] for r in top] == [4, 1] and top[0][1] < 1e-6, top

    # UPDATE re-chunks (fewer chunks, the needle gone); DELETE takes every chunk out of the index;
    # a NULL text has no vector.
    cur.execute("UPDATE docs SET content = %s WHERE id = 1", (filler(3),))
    cur.execute("DELETE FROM docs WHERE id = 4")
    cur.execute("INSERT INTO docs (id, content) VALUES (5, NULL)")
    conn.commit()
    cur.execute("SELECT id, VEC_DIMS(embedding) FROM docs WHERE id IN (1, 5) ORDER BY id")
    assert cur.fetchall() == ((1, DIMS), (5, None))
    cur.execute(search.format(t="docs") + " OFFSET 1", (q, q))  # NULL sorts first
    after = cur.fetchall()
    assert sorted(r[0] for r in after) == [1, 2, 3], after
    assert all(r[1] > 0.5 for r in after), after


def test_chunk_options_are_checked(conn: pymysql.Connection) -> None:
    cur = conn.cursor()
    for extra, policy in [('{"embedb.chunk_tokens": 0}', "chunk"), ('{"embedb.chunk_overlap": "x"}', "chunk"),
                          ('{"embedb.chunk_tokens": 40}', "truncate")]:
        with pytest.raises(pymysql.MySQLError) as e:
            cur.execute(f"CREATE TABLE bad (id INT PRIMARY KEY, content TEXT, {column(policy, extra)})")
        assert e.value.args[0] == 1210, e.value.args
    # Smaller chunks: more of them, each within the size asked for.
    small_column = column("chunk", '{"embedb.chunk_tokens": 32, "embedb.chunk_overlap": 4}')
    cur.execute(f"CREATE TABLE small (id INT PRIMARY KEY, content TEXT, {small_column})")
    cur.execute(f"CREATE TABLE big (id INT PRIMARY KEY, content TEXT, {column('chunk')})")
    text = filler(40)
    cur.execute("INSERT INTO small VALUES (1, %s)", (text,))
    cur.execute("INSERT INTO big VALUES (1, %s)", (text,))
    conn.commit()
    cur.execute("SELECT (SELECT VEC_DIMS(embedding) FROM small), (SELECT VEC_DIMS(embedding) FROM big)")
    small, big = cur.fetchone()
    assert small // DIMS > 3 * (big // DIMS), (small, big)


def test_async_columns_chunk_too(conn: pymysql.Connection) -> None:
    cur = conn.cursor()
    cur.execute(f"""CREATE TABLE docs (id INT PRIMARY KEY, content TEXT, {column('chunk', mode='async')},
                    VECTOR INDEX ((VEC_COSINE_DISTANCE(embedding))))""")
    cur.executemany("INSERT INTO docs (id, content) VALUES (%s, %s)",
                    [(1, filler(50) + " " + NEEDLE + " " + filler(50)), (2, filler(100)), (3, "cars")])
    conn.commit()
    cur.execute("SELECT EMBEDDING_WAIT('docs', 120)")
    assert cur.fetchone()[0] == 0
    cur.execute("SELECT id FROM docs ORDER BY VEC_EMBED_COSINE_DISTANCE(embedding, 'superconducting qubits') LIMIT 1")
    assert cur.fetchone()[0] == 1
    cur.execute("SELECT VEC_DIMS(embedding) FROM docs WHERE id = 1")
    assert cur.fetchone()[0] // DIMS >= 4


def scifact_groups(queries: int = 150, groups: int = 100, seed: int = 7):
    """Train queries with their relevant abstracts, plus other abstracts, shuffled into documents
    of 8 abstracts each: (documents, {query text: set of relevant document numbers})."""
    corpus = {}
    with open(SCIFACT / "corpus.jsonl") as f:
        for line in f:
            d = json.loads(line)
            corpus[d["_id"]] = f"{d['title']}. {d['text']}"
    texts = {}
    with open(SCIFACT / "queries.jsonl") as f:
        for line in f:
            q = json.loads(line)
            texts[q["_id"]] = q["text"]
    qrels: dict[str, set[str]] = {}
    with open(SCIFACT / "qrels" / "train.tsv") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[0] in texts and parts[1] in corpus:
                qrels.setdefault(parts[0], set()).add(parts[1])
    chosen = sorted(qrels, key=int)[:queries]
    wanted = sorted({d for q in chosen for d in qrels[q]}, key=int)
    others = [d for d in corpus if d not in set(wanted)]
    rng = random.Random(seed)
    docs = wanted + rng.sample(others, groups * 8 - len(wanted))
    rng.shuffle(docs)
    where = {d: i // 8 for i, d in enumerate(docs)}
    documents = ["\n\n".join(corpus[d] for d in docs[g * 8:(g + 1) * 8]) for g in range(groups)]
    relevant = {texts[q]: {where[d] for d in qrels[q]} for q in chosen}
    return documents, relevant


@pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").exists(), reason="../shared/data/scifact is missing")
def test_scifact_long_documents_chunk_beats_truncate(conn: pymysql.Connection) -> None:
    documents, relevant = scifact_groups()
    cur = conn.cursor()
    recall = {}
    for policy in ("truncate", "chunk"):
        cur.execute(f"""CREATE TABLE {policy}_docs (id INT PRIMARY KEY, content MEDIUMTEXT, {column(policy)},
                        VECTOR INDEX ((VEC_COSINE_DISTANCE(embedding))))""")
        for start in range(0, len(documents), 10):
            cur.executemany(f"INSERT INTO {policy}_docs (id, content) VALUES (%s, %s)",
                            list(enumerate(documents))[start:start + 10])
            conn.commit()
        hits = []
        for q, rel in relevant.items():
            cur.execute(f"SELECT id FROM {policy}_docs ORDER BY VEC_EMBED_COSINE_DISTANCE(embedding, %s) LIMIT 10", (q,))
            ids = [r[0] for r in cur.fetchall()]
            assert len(ids) == len(set(ids)) == 10, ids  # each parent once
            hits.append(len(rel & set(ids)) / len(rel))
        recall[policy] = sum(hits) / len(hits)
    print(f"SciFact, {len(documents)} documents of 8 abstracts, {len(relevant)} train queries: "
          f"recall@10 truncate {recall['truncate']:.3f}, chunk {recall['chunk']:.3f}")
    assert recall["chunk"] >= recall["truncate"] + 0.25, recall
    assert recall["chunk"] >= 0.7, recall
