"""The real ``pytidb`` client (from PyPI, unchanged) against a real ``embedb serve``.

Every public call a pytidb user makes is exercised and its result asserted: connecting with
``ensure_db``, databases, ``configure_embedding_provider``, ``create_table(if_exists=...)`` with
vector, full-text and server-side auto-embedding fields, inserts with and without ids, ``get``,
``query`` (filters, order, limit, offset), ``update``, ``delete``, ``truncate``, ``rows``,
``columns``, vector search (post- and pre-filter, thresholds, ranges, metrics), full-text search,
hybrid search (checked against an RRF computed here), transactions through ``client.session()``,
SQLModel ``create_all`` with foreign keys, raw ``execute``/``query``, and the seed's Python example
with the local model (its search must return ids 1 and 4).

SQLAlchemy 2.0 and 2.1 are both covered: ``.ci/run`` runs this module in two virtualenvs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterator, Optional

import pymysql
import pytest

if os.environ.get("CI"):
    import pytidb  # noqa: F401  (.ci/run installs it: missing is a failure there)
else:
    pytidb = pytest.importorskip("pytidb", reason="pytidb is installed by .ci/run into the test virtualenv")

import sqlalchemy  # noqa: E402
from pytidb import TiDBClient  # noqa: E402
from pytidb.datatype import JSON, TEXT  # noqa: E402
from pytidb.embeddings import EmbeddingFunction  # noqa: E402
from pytidb.schema import Field, FullTextField, TableModel, VectorField  # noqa: E402

from conftest import connect, own_server  # noqa: E402
from doubles.embedding_api import EmbeddingDouble  # noqa: E402

LOCAL_MODEL = "local/all-MiniLM-L6-v2"

SEED_DOCS = [
    (1, "Java: Object-oriented language for cross-platform development."),
    (2, "Java coffee: Bold Indonesian beans with low acidity."),
    (3, "Java island: Densely populated, home to Jakarta."),
    (4, "Java's syntax is used in Android apps."),
    (5, "Dark roast Java beans enhance espresso blends."),
]
SEED_QUERY = "How to start learning Java programming?"


@pytest.fixture(autouse=True)
def fresh_table_models() -> Iterator[None]:
    """pytidb's models share one MetaData: forget the tables a test declared, so that the next
    test may declare a model of the same name (the seed example, twice) as a new program would."""
    yield
    TableModel.metadata.clear()
    TableModel._sa_registry.dispose()


@pytest.fixture
def client(embedb_server: tuple[str, int], db: str) -> Iterator[TiDBClient]:
    host, port = embedb_server
    c = TiDBClient.connect(host=host, port=port, username="root", password="", database=db)
    try:
        yield c
    finally:
        c.disconnect()


def cosine_distance(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return 1 - dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def as_list(v: Any) -> Optional[list[float]]:
    """pytidb decodes VECTOR values to numpy arrays."""
    return None if v is None else [float(x) for x in v]


def l2_distance(a: list[float], b: list[float]) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


# -- the seed ------------------------------------------------------------------------------------

def test_seed_python_example_with_the_local_model(embedb_server: tuple[str, int]) -> None:
    """SEED.md's Python example verbatim, except the host and the model."""
    host, port = embedb_server
    tidb_client = TiDBClient.connect(
        host=host,
        port=port,
        username="root",
        password="",
        database="pytidb_seed",
        ensure_db=True,
    )

    class Document(TableModel):
        __tablename__ = "sample_documents"
        id: int = Field(primary_key=True)
        content: str = Field(sa_type=TEXT)
        embedding: list[float] = EmbeddingFunction(
            LOCAL_MODEL, dimensions=384
        ).VectorField(source_field="content")

    table = tidb_client.create_table(schema=Document, if_exists="overwrite")
    documents = [Document(id=i, content=t) for i, t in SEED_DOCS]
    table.bulk_insert(documents)
    results = table.search(SEED_QUERY).limit(2).to_list()
    assert [r["id"] for r in results] == [1, 4]
    assert results[0]["_distance"] < results[1]["_distance"]
    assert results[0]["_score"] == pytest.approx(1 - results[0]["_distance"])
    assert len(results[0]["embedding"]) == 384
    # overwrite again: the table is recreated empty
    table = tidb_client.create_table(schema=Document, if_exists="overwrite")
    assert table.rows() == 0
    tidb_client.drop_database("pytidb_seed")
    tidb_client.disconnect()


def test_seed_python_example_with_jina_against_the_api_double(embedb_binary: Path,
                                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """SEED.md's Python example verbatim (model ``jina_ai/jina-embeddings-v4``), the server calling
    a local double of Jina's API: the search returns ids 1 and 4, and the double saw the texts with
    the key pytidb configured and the dimensions pytidb asks for."""
    double = EmbeddingDouble(valid_keys={"jina-pytidb-key"}).start()
    try:
        with own_server(embedb_binary, tmp_path_factory.mktemp("pytidb-jina"),
                        {"EMBEDB_JINA_API_BASE": double.url}) as srv:
            host, port = srv.address
            tidb_client = TiDBClient.connect(host=host, port=port, username="root", password="",
                                             database="seed", ensure_db=True)
            tidb_client.configure_embedding_provider(provider="jina_ai", api_key="jina-pytidb-key")

            class Document(TableModel):
                __tablename__ = "sample_documents"
                id: int = Field(primary_key=True)
                content: str = Field(sa_type=TEXT)
                embedding: list[float] = EmbeddingFunction(
                    model_name="jina_ai/jina-embeddings-v4"
                ).VectorField(source_field="content")

            table = tidb_client.create_table(schema=Document, if_exists="overwrite")
            documents = [Document(id=i, content=t) for i, t in SEED_DOCS]
            table.bulk_insert(documents)
            results = table.search(SEED_QUERY).limit(2).to_list()
            assert [r["id"] for r in results] == [1, 4]
            reqs = double.take()
            sent = sorted(t for r in reqs for t in r.body["input"])
            assert sent == sorted([t for _, t in SEED_DOCS] + [SEED_QUERY])
            assert all(r.headers["authorization"] == "Bearer jina-pytidb-key" for r in reqs)
            assert all(r.body["model"] == "jina-embeddings-v4" and r.body["dimensions"] == 2048 for r in reqs)
            tidb_client.disconnect()
    finally:
        double.stop()


# -- connecting and databases --------------------------------------------------------------------

def test_connect_ensure_db_and_database_calls(embedb_server: tuple[str, int]) -> None:
    host, port = embedb_server
    name = "pytidb_ensure_db"
    with connect(host, port) as c, c.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
    with pytest.raises(sqlalchemy.exc.OperationalError) as ei:
        TiDBClient.connect(host=host, port=port, database=name).list_tables()
    assert ei.value.orig.args[0] == 1049
    client = TiDBClient.connect(host=host, port=port, database=name, ensure_db=True)
    assert client.current_database() == name
    assert client.has_database(name)
    assert name in client.list_databases()
    assert client.list_tables() == []
    client.create_database("pytidb_other")
    assert client.has_database("pytidb_other")
    client.use_database("pytidb_other")
    assert client.current_database() == "pytidb_other"
    client.drop_database("pytidb_other")
    assert not client.has_database("pytidb_other")
    client.drop_database(name)
    client.disconnect()


def test_configure_embedding_provider_key_is_stored_and_masked(client: TiDBClient, embedb_server) -> None:
    r = client.configure_embedding_provider("jina_ai", "jina-PYTIDB-secret-1")
    assert r.success, r.message
    with connect(*embedb_server) as c, c.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY")
        (shown,) = cur.fetchone()
        assert "jina-PYTIDB-secret-1" not in shown
        cur.execute("SHOW VARIABLES LIKE 'tidb_exp_embed_jina_ai_api_key'")
        assert all("jina-PYTIDB-secret-1" not in str(v) for v in cur.fetchall())
    with pytest.raises(ValueError):
        client.configure_embedding_provider("nope", "x")


# -- tables and rows -----------------------------------------------------------------------------

def make_items_model(suffix: str = ""):
    class Item(TableModel):
        __tablename__ = "items" + suffix
        __table_args__ = {"extend_existing": True}
        id: Optional[int] = Field(default=None, primary_key=True)
        text: str = Field(sa_type=TEXT)
        user_id: int = Field()
        meta: dict = Field(sa_type=JSON, default_factory=dict)
        vec: Optional[list[float]] = VectorField(dimensions=3, default=None)
    return Item


def test_table_lifecycle_and_crud(client: TiDBClient) -> None:
    Item = make_items_model()
    table = client.create_table(schema=Item, if_exists="overwrite")
    assert client.has_table("items") and client.list_tables() == ["items"]
    assert table.has_vector_index("vec"), "VectorField creates an HNSW index by default"

    # with ids: one multi-row INSERT
    rows = table.bulk_insert([
        Item(id=1, text="apple pie", user_id=1, meta={"f": 0.9, "tag": "food"}, vec=[1, 2, 3]),
        Item(id=2, text="banana bread", user_id=1, meta={"f": 0.2, "tag": "food"}, vec=[0.1, 1e-05, 3.5]),
        Item(id=3, text="cherry tart", user_id=2, meta={"f": 0.5, "tag": "sweet"}, vec=[4, 5, 6]),
    ])
    assert [r.id for r in rows] == [1, 2, 3]
    # without ids: one INSERT per row, ids from last_insert_id
    more = table.bulk_insert([Item(text="date cake", user_id=3, meta={}, vec=[1, 0, 0]),
                              Item(text="elder jam", user_id=3, meta={"f": None}, vec=None)])
    assert [r.id for r in more] == [4, 5]
    one = table.insert(Item(text="fig roll", user_id=4, vec=[0, 1, 0]))
    assert one.id == 6
    assert table.rows() == 6

    got = table.get(3)
    assert (got.text, got.user_id, got.meta, as_list(got.vec)) == ("cherry tart", 2, {"f": 0.5, "tag": "sweet"}, [4.0, 5.0, 6.0])
    assert as_list(table.get(2).vec) == pytest.approx([0.1, 1e-05, 3.5])
    assert table.get(5).vec is None

    cols = {c.column_name: c.column_type for c in table.columns()}
    assert cols == {"id": "int(11)", "text": "text", "user_id": "int(11)", "meta": "json", "vec": "vector(3)"}

    # query: filters, order, limit, offset
    res = table.query(filters={"user_id": 1}, order_by="id").to_list()
    assert [r["id"] for r in res] == [1, 2]
    res = table.query(order_by={"id": "desc"}, limit=2, offset=1).to_list()
    assert [r["id"] for r in res] == [5, 4]
    res = table.query(filters={"user_id": {"$in": [2, 3]}, "id": {"$ne": 5}}, order_by="id").to_list()
    assert [r["id"] for r in res] == [3, 4]
    res = table.query(filters={"$or": [{"user_id": 4}, {"text": "apple pie"}]}, order_by="id").to_list()
    assert [r["id"] for r in res] == [1, 6]
    res = table.query(filters={"user_id": {"$nin": [1, 3]}, "id": {"$gte": 3, "$lt": 7}}, order_by="id").to_list()
    assert [r["id"] for r in res] == [3, 6]
    # dict filters on JSON fields: json_extract(...) compared with floats like 0.5e0
    res = table.query(filters={"meta.f": {"$gte": 0.5}}, order_by="id").to_list()
    assert [r["id"] for r in res] == [1, 3]
    res = table.query(filters={"meta.tag": "food"}, order_by="id").to_list()
    assert [r["id"] for r in res] == [1, 2]
    # SQLAlchemy expression filters, including the JSON cast SQLAlchemy emits for .as_float()
    res = table.query(filters=Item.meta["f"].as_float() > 0.4, order_by="id").to_list()
    assert [r["id"] for r in res] == [1, 3]
    df = table.query(filters={"user_id": 1}, order_by="id").to_pandas()
    assert list(df["id"]) == [1, 2] and list(df["text"]) == ["apple pie", "banana bread"]

    # update (vectors too) and delete
    table.update(values={"text": "zz", "vec": [3, 6, 9]}, filters={"id": 1})
    got = table.get(1)
    assert (got.text, as_list(got.vec)) == ("zz", [3.0, 6.0, 9.0])
    table.delete(filters={"id": {"$in": [1, 2]}})
    assert table.rows() == 4
    assert table.get(1) is None

    # open_table reflects the model of an existing table
    again = client.open_table("items")
    assert again is not None and again.rows() == 4
    table.truncate()
    assert table.rows() == 0
    table.insert(Item(text="after truncate", user_id=9))
    assert [r["text"] for r in table.query().to_list()] == ["after truncate"]

    # if_exists: raise / skip
    with pytest.raises(Exception):
        client.create_table(schema=Item, if_exists="raise")
    assert client.create_table(schema=Item, if_exists="skip").rows() == 1
    client.drop_table("items")
    assert not client.has_table("items")


def test_update_reports_matched_rows_and_raw_sql(client: TiDBClient) -> None:
    r = client.execute("CREATE TABLE raw (id INT PRIMARY KEY, v INT)")
    assert r.success and r.rowcount == 0
    r = client.execute("INSERT INTO raw VALUES (1, 5), (2, 5), (3, 7)")
    assert r.rowcount == 3
    # CLIENT_FOUND_ROWS: matched, not changed
    r = client.execute("UPDATE raw SET v = 5 WHERE id IN (1, 2, 3)")
    assert r.rowcount == 3
    r = client.execute("INSERT INTO raw VALUES (1, 1)")
    assert not r.success and "Duplicate entry" in r.message
    q = client.query("SELECT id, v FROM raw WHERE v = :v ORDER BY id", {"v": 5})
    assert q.to_list() == [{"id": 1, "v": 5}, {"id": 2, "v": 5}, {"id": 3, "v": 5}]
    assert client.query("SELECT COUNT(*) FROM raw").scalar() == 3
    df = client.query("SELECT id FROM raw ORDER BY id").to_pandas()
    assert list(df["id"]) == [1, 2, 3]


def test_transactions_commit_rollback_and_out_of_range(client: TiDBClient) -> None:
    client.execute("CREATE TABLE acct (id INT PRIMARY KEY, n INT)", raise_error=True)
    with client.session() as s:
        s.execute(sqlalchemy.text("INSERT INTO acct VALUES (1, 10)"))
        s.execute(sqlalchemy.text("INSERT INTO acct VALUES (2, 20)"))
    assert client.query("SELECT COUNT(*) FROM acct").scalar() == 2
    with pytest.raises(RuntimeError):
        with client.session() as s:
            s.execute(sqlalchemy.text("INSERT INTO acct VALUES (3, 30)"))
            raise RuntimeError("abort")
    assert client.query("SELECT COUNT(*) FROM acct").scalar() == 2, "rolled back"
    with pytest.raises(sqlalchemy.exc.DataError) as ei:
        with client.session() as s:
            s.execute(sqlalchemy.text("INSERT INTO acct VALUES (4, 40)"))
            s.execute(sqlalchemy.text("INSERT INTO acct VALUES (5, 99999999999)"))
    assert "Out of range" in str(ei.value)
    assert client.query("SELECT COUNT(*) FROM acct").scalar() == 2, "the whole transaction rolled back"


def test_sqlmodel_create_all_with_foreign_keys(client: TiDBClient) -> None:
    from sqlmodel import SQLModel

    metadata = sqlalchemy.MetaData()

    class Owner(SQLModel, table=True):
        metadata = sqlalchemy.MetaData()
        __tablename__ = "owner"
        id: Optional[int] = Field(default=None, primary_key=True)
        name: str

    class Pet(SQLModel, table=True):
        metadata = Owner.metadata
        __tablename__ = "pet"
        id: Optional[int] = Field(default=None, primary_key=True)
        owner_id: int = Field(foreign_key="owner.id")
        name: str

    Owner.metadata.create_all(client.db_engine)
    assert sorted(client.list_tables()) == ["owner", "pet"]
    with client.session() as s:
        s.add(Owner(id=1, name="ann"))
        s.flush()
        s.add(Pet(owner_id=1, name="rex"))
    rows = client.query("SELECT pet.name, owner.name AS o FROM pet JOIN owner ON pet.owner_id = owner.id").to_list()
    assert rows == [{"name": "rex", "o": "ann"}]
    del metadata


# -- vector search -------------------------------------------------------------------------------

VECS = {1: [1, 2, 3], 2: [4, 5, 6], 3: [-1, 0, 2], 4: [10, 0, 0], 5: [0.5, 2, 2.5]}


def vector_table(client: TiDBClient, metric: str = "cosine"):
    class Vec(TableModel):
        __tablename__ = f"vecs_{metric}"
        __table_args__ = {"extend_existing": True}
        id: int = Field(primary_key=True)
        text: str = Field(sa_type=TEXT)
        user_id: int = Field()
        vec: list[float] = VectorField(dimensions=3, distance_metric=metric)
    table = client.create_table(schema=Vec, if_exists="overwrite")
    table.bulk_insert([Vec(id=i, text=f"t{i}", user_id=i % 2, vec=v) for i, v in VECS.items()])
    return table


def test_vector_search_distances_filters_and_ranges(client: TiDBClient) -> None:
    table = vector_table(client)
    q = [1, 2, 3]
    want = sorted(VECS, key=lambda i: cosine_distance(q, VECS[i]))
    res = table.search(q).limit(5).to_list()
    assert [r["id"] for r in res] == want
    for r in res:
        assert r["_distance"] == pytest.approx(cosine_distance(q, VECS[r["id"]]), abs=1e-6)
        assert r["_score"] == pytest.approx(1 - r["_distance"], abs=1e-9)
        assert isinstance(r["_distance"], float)
    assert as_list(res[0]["vec"]) == [1.0, 2.0, 3.0]
    assert cosine_distance([1, 2, 3], [4, 5, 6]) == pytest.approx(0.0254, abs=1e-4)
    assert table.search([4, 5, 6]).limit(2).to_list()[1]["_distance"] == pytest.approx(0.0254, abs=1e-4)

    # post-filter (default) and pre-filter (HAVING on the alias)
    odd = [i for i in want if i % 2 == 1]
    assert [r["id"] for r in table.search(q).filter({"user_id": 1}).limit(2).to_list()] == odd[:2]
    assert [r["id"] for r in table.search(q).filter({"user_id": 1}, prefilter=True).limit(2).to_list()] == odd[:2]
    # thresholds and ranges
    close = [i for i in want if cosine_distance(q, VECS[i]) <= 0.05]
    assert [r["id"] for r in table.search(q).distance_threshold(0.05).limit(5).to_list()] == close
    mid = [i for i in want if 0.01 <= cosine_distance(q, VECS[i]) <= 0.5]
    assert [r["id"] for r in table.search(q).distance_range(0.01, 0.5).limit(5).to_list()] == mid
    assert [r["id"] for r in table.search(q).distance_range(0.01, 0.5).filter({"user_id": 0}, prefilter=True)
            .limit(5).to_list()] == [i for i in mid if i % 2 == 0]
    df = table.search(q).limit(3).to_pandas()
    assert list(df["id"]) == want[:3]
    models = table.search(q).limit(2).to_pydantic()
    assert [m.hit.id if hasattr(m, "hit") else m.id for m in models] == want[:2]


def test_vector_search_l2(client: TiDBClient) -> None:
    table = vector_table(client, "l2")
    q = [1, 1, 1]
    want = sorted(VECS, key=lambda i: l2_distance(q, VECS[i]))
    res = table.search(q).distance_metric("l2").limit(3).to_list()
    assert [r["id"] for r in res] == want[:3]
    for r in res:
        assert r["_distance"] == pytest.approx(l2_distance(q, VECS[r["id"]]), abs=1e-5)


# -- server-side auto embedding, full-text and hybrid search -------------------------------------

CORPUS = [
    (1, "The quick brown fox jumps over the lazy dog."),
    (2, "Python is a programming language that lets you work quickly."),
    (3, "Java is a programming language for enterprise software and Android apps."),
    (4, "Foxes are small omnivorous mammals related to dogs."),
    (5, "Espresso is brewed by forcing hot water through finely ground coffee beans."),
    (6, "TiDB is a distributed SQL database compatible with MySQL."),
    (7, "Vector databases store embeddings for semantic search."),
    (8, "敏捷的棕色狐狸跳过了懒狗。"),
]


def chunks_table(client: TiDBClient):
    class Chunk(TableModel):
        __tablename__ = "chunks"
        __table_args__ = {"extend_existing": True}
        id: int = Field(primary_key=True)
        text: str = FullTextField()
        user_id: int = Field(default=0)
        text_vec: Optional[list[float]] = EmbeddingFunction(LOCAL_MODEL, dimensions=384).VectorField(source_field="text")
    table = client.create_table(schema=Chunk, if_exists="overwrite")
    return Chunk, table


def test_auto_embedding_insert_update_and_search(client: TiDBClient) -> None:
    Chunk, table = chunks_table(client)
    assert table.has_vector_index("text_vec")
    assert table.has_fts_index("text")
    # one by one, without ids? here with ids; the vectors come from the server
    for i, t in CORPUS[:4]:
        table.insert(Chunk(id=i, text=t, user_id=i % 2))
    table.bulk_insert([Chunk(id=i, text=t, user_id=i % 2) for i, t in CORPUS[4:]])
    got = as_list(table.get(2).text_vec)
    assert got is not None and len(got) == 384
    assert math.sqrt(sum(x * x for x in got)) == pytest.approx(1.0, abs=1e-4)

    res = table.search("a small animal like a fox").limit(2).to_list()
    assert {r["id"] for r in res} == {1, 4}
    res = table.search("programming language").filter({"user_id": 1}, prefilter=True).limit(1).to_list()
    assert [r["id"] for r in res] == [3]

    # updating the source text recomputes the vector
    before = as_list(table.get(7).text_vec)
    table.update(values={"text": "Espresso and cappuccino are coffee drinks."}, filters={"id": 7})
    after = as_list(table.get(7).text_vec)
    assert cosine_distance(before, after) > 0.2
    res = table.search("coffee drinks").limit(2).to_list()
    assert {r["id"] for r in res} == {5, 7}


def test_fulltext_search(client: TiDBClient) -> None:
    Chunk, table = chunks_table(client)
    table.bulk_insert([Chunk(id=i, text=t, user_id=i % 2) for i, t in CORPUS])
    res = table.search("programming language", search_type="fulltext").limit(3).to_list()
    assert {r["id"] for r in res} == {2, 3}
    assert all(r["_match_score"] > 0 and r["_score"] == r["_match_score"] for r in res)
    res = table.search("fox", search_type="fulltext").limit(5).to_list()
    assert [r["id"] for r in res] == [1]
    res = table.search("狐狸", search_type="fulltext").limit(5).to_list()
    assert [r["id"] for r in res] == [8]
    res = table.search("programming", search_type="fulltext").filter({"user_id": 0}).limit(5).to_list()
    assert [r["id"] for r in res] == [2]


def rrf(lists: list[list[int]], k: int) -> dict[int, float]:
    scores: dict[int, float] = {}
    for ids in lists:
        for rank, i in enumerate(ids, start=1):
            scores[i] = scores.get(i, 0.0) + 1.0 / (k + rank)
    return scores


def test_hybrid_search_matches_an_independent_rrf(client: TiDBClient) -> None:
    Chunk, table = chunks_table(client)
    table.bulk_insert([Chunk(id=i, text=t, user_id=i % 2) for i, t in CORPUS])
    query = "fox programming language"
    limit = 4
    vector_ids = [r["id"] for r in table.search(query).limit(limit).to_list()]
    text_ids = [r["id"] for r in table.search(query, search_type="fulltext").limit(limit).to_list()]
    assert text_ids and vector_ids
    res = table.search(query, search_type="hybrid").fusion(method="rrf", k=60).limit(limit).to_list()
    scores = rrf([vector_ids, text_ids], 60)
    assert [r["id"] for r in res] == sorted(scores, key=lambda i: (-scores[i], ))[:limit] or \
        sorted(r["_score"] for r in res) == sorted(sorted(scores.values(), reverse=True)[:limit])
    for r in res:
        assert r["_score"] == pytest.approx(scores[r["id"]])
    # the fused order is by score
    assert [r["_score"] for r in res] == sorted((r["_score"] for r in res), reverse=True)
