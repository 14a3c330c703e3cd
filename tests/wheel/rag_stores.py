"""LangChain's and LlamaIndex's TiDB vector stores, unchanged, against embedb's in-process package
through db.serve(). Run by tests/python/test_wheel.py with the python of a venv holding the wheel and
the packages pinned there. Each check prints `PASS name`; the first failure raises.

The embeddings are deterministic fakes (LangChain's DeterministicFakeEmbedding, LlamaIndex's
MockEmbedding, and hand-made vectors whose distances are known): the point is the stores' SQL, so
every distance a store reports is checked against one computed here.

Usage: rag_stores.py stores [DIR]   both stores' flows on DIR (or in memory), read back in-process
       rag_stores.py reopen DIR     (a second process) the rows and distances are there on reopen
"""

import math
import sys
import warnings

import embedb

warnings.filterwarnings("ignore", category=DeprecationWarning)

LC_TEXTS = ["Apples grow on trees in orchards.", "Bananas are picked green and ripen later.",
            "Carrots are root vegetables.", "Dates grow on palm trees.", "Eggplants are nightshades."]
LC_META = [{"kind": "fruit", "year": 2021}, {"kind": "fruit", "year": 2022}, {"kind": "vegetable", "year": 2023},
           {"kind": "fruit", "year": 2024}, {"kind": "vegetable", "year": 2025}]
LC_IDS = ["apple", "banana", "carrot", "date", "eggplant"]
# LlamaIndex nodes: unit vectors at these angles (degrees) in the first two of 8 dimensions, so the
# cosine distance to a query at angle q is 1 - cos(a - q).
LI_NODES = [("n0", "doc-a", "cats", 2021, 0), ("n1", "doc-a", "dogs", 2022, 20), ("n2", "doc-b", "cats", 2023, 40),
            ("n3", "doc-b", "birds", 2024, 60), ("n4", "doc-c", "fish", 2025, 80)]


def check(name, cond, detail=""):
    if not cond:
        raise AssertionError(f"{name}: {detail}")
    print(f"PASS {name}", flush=True)


def close(a, b, eps=1e-5):
    return len(a) == len(b) and all(abs(x - y) <= eps for x, y in zip(a, b))


def cosine_distance(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return 1 - dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def at(degrees, dim=8):
    v = [0.0] * dim
    v[0], v[1] = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return v


def fake_embeddings():
    from langchain_core.embeddings import DeterministicFakeEmbedding

    class Embeddings(DeterministicFakeEmbedding):
        # The fake returns numpy float64s, which tidb-vector writes with str(list): under numpy 2
        # that is "[np.float64(…), …]", a text no database reads. Real embedding clients return
        # floats; so does this one.
        def embed_documents(self, texts):
            return [[float(x) for x in v] for v in super().embed_documents(texts)]

        def embed_query(self, text):
            return [float(x) for x in super().embed_query(text)]

    return Embeddings(size=16)


def langchain(db, url):
    import sqlalchemy.exc
    from langchain_community.vectorstores import TiDBVectorStore
    from tidb_vector.integrations.utils import EmbeddingColumnMismatchError

    emb = fake_embeddings()
    vs = TiDBVectorStore.from_texts(LC_TEXTS, emb, metadatas=LC_META, ids=LC_IDS, connection_string=url,
                                    table_name="lc_docs", distance_strategy="cosine", drop_existing_table=True)
    n = db.sql("SELECT COUNT(*) FROM lc_docs").fetchone()[0]
    check("langchain from_texts: the rows are in the database in-process", n == 5, n)
    col = db.sql("SELECT COLUMN_TYPE, COLUMN_COMMENT FROM INFORMATION_SCHEMA.COLUMNS "
                 "WHERE TABLE_NAME = 'lc_docs' AND COLUMN_NAME = 'embedding'").fetchall()
    check("langchain's table: a vector(16) column marked for cosine", col == [("vector(16)", "hnsw(distance=cosine)")], col)
    rows = db.sql("SELECT id, document, JSON_EXTRACT(meta, '$.kind') FROM lc_docs ORDER BY id").fetchall()
    check("its ids, documents and metadata as given", [(r[0], r[1]) for r in rows] == sorted(zip(LC_IDS, LC_TEXTS))
          and [r[2] for r in rows] == ['"fruit"', '"fruit"', '"vegetable"', '"fruit"', '"vegetable"'], rows)

    top = [vs.similarity_search(t, k=1)[0].page_content for t in LC_TEXTS]
    check("each text's own embedding finds that text", top == LC_TEXTS, top)
    query = "Which plants grow on trees?"
    qv = emb.embed_query(query)
    got = vs.similarity_search_with_score(query, k=5)
    vectors = dict(zip(LC_TEXTS, emb.embed_documents(LC_TEXTS)))
    want = sorted((cosine_distance(qv, vectors[t]), t) for t in LC_TEXTS)
    check("similarity_search_with_score: every text, nearest first",
          [d.page_content for d, _ in got] == [t for _, t in want], (got, want))
    check("and its scores are the cosine distances", close([s for _, s in got], [d for d, _ in want]), (got, want))
    check("with each text's metadata", all(d.metadata == LC_META[LC_TEXTS.index(d.page_content)] for d, _ in got), got)
    inproc = db.sql("SELECT document, VEC_COSINE_DISTANCE(embedding, ?) AS d FROM lc_docs ORDER BY d", (qv,)).fetchall()
    check("the same distances in-process", [r[0] for r in inproc] == [t for _, t in want]
          and close([r[1] for r in inproc], [d for d, _ in want]), inproc)
    rel = vs.similarity_search_with_relevance_scores(query, k=2)
    check("relevance scores are 1 - distance", close([s for _, s in rel], [1 - d for d, _ in want[:2]]), rel)
    docs = vs.as_retriever(search_kwargs={"k": 2}).invoke(LC_TEXTS[2])
    check("as a retriever", len(docs) == 2 and docs[0].page_content == LC_TEXTS[2], docs)

    def search(flt, **kw):
        return [LC_IDS[LC_TEXTS.index(d.page_content)] for d in vs.similarity_search(query, k=5, filter=flt, **kw)]

    def ranked(ids):
        order = [LC_IDS[LC_TEXTS.index(t)] for _, t in want]
        return [i for i in order if i in ids]

    got = search({"kind": "vegetable"})
    check("a metadata filter returns only its matches, nearest first", got == ranked({"carrot", "eggplant"}), got)
    for name, flt, ids in [("$gte", {"year": {"$gte": 2023}}, {"carrot", "date", "eggplant"}),
                           ("$lt", {"year": {"$lt": 2022}}, {"apple"}),
                           ("$in", {"kind": {"$in": ["vegetable", "mineral"]}}, {"carrot", "eggplant"}),
                           ("$nin", {"kind": {"$nin": ["vegetable"]}}, {"apple", "banana", "date"}),
                           ("$ne", {"kind": {"$ne": "fruit"}}, {"carrot", "eggplant"}),
                           ("$and", {"$and": [{"kind": "fruit"}, {"year": {"$gt": 2021}}]}, {"banana", "date"}),
                           ("$or", {"$or": [{"year": 2021}, {"kind": {"$eq": "vegetable"}}]}, {"apple", "carrot", "eggplant"})]:
        got = search(flt)
        check(f"filter {name}", got == ranked(ids), (flt, got))
    got = search({"kind": "fruit"}, post_filter_enabled=True)
    check("a filter after the vector search (post_filter_enabled)", got == ranked({"apple", "banana", "date"}), got)

    more = vs.add_texts(["Figs are flowers inside out.", "Grapes grow on vines."],
                        metadatas=[{"kind": "fruit", "year": 2026}, {"kind": "fruit", "year": 2027}], ids=["fig", "grape"])
    auto = vs.add_texts(["Horseradish is a root."])
    n = db.sql("SELECT COUNT(*) FROM lc_docs").fetchone()[0]
    check("add_texts with ids, and without (uuids)", more == ["fig", "grape"] and len(auto[0]) == 36 and n == 8, (more, auto, n))
    check("an added text is found", vs.similarity_search("Grapes grow on vines.", k=1)[0].metadata == {"kind": "fruit", "year": 2027})
    try:
        vs.add_texts(["Another apple."], ids=["apple"])
        check("a duplicate id is refused", False, "it was inserted")
    except sqlalchemy.exc.IntegrityError as e:
        check("a duplicate id is refused with MySQL's 1062", e.orig.args[0] == 1062, e.orig.args)

    vs.delete(ids=["banana", "fig"])
    left = [r[0] for r in db.sql("SELECT id FROM lc_docs WHERE id IN ('banana', 'fig', 'grape')").fetchall()]
    check("delete by ids", left == ["grape"], left)
    found = [d.page_content for d in vs.similarity_search(LC_TEXTS[1], k=10)]
    check("and the deleted texts are no longer found", LC_TEXTS[1] not in found and len(found) == 6, found)
    vs.delete(filter={"year": {"$gte": 2027}})
    left = [r[0] for r in db.sql("SELECT id FROM lc_docs ORDER BY id").fetchall()]
    check("delete by a metadata filter", left == sorted(["apple", "carrot", "date", "eggplant", auto[0]]), left)

    again = TiDBVectorStore.from_existing_vector_table(emb, url, "lc_docs", distance_strategy="cosine")
    check("from_existing_vector_table", again.similarity_search(LC_TEXTS[3], k=1)[0].page_content == LC_TEXTS[3])
    try:
        TiDBVectorStore(url, emb, table_name="lc_docs", distance_strategy="l2")
        check("a different distance is refused", False, "it was accepted")
    except EmbeddingColumnMismatchError as e:
        check("the column's distance is read back (a different one is refused)", "distance=cosine" in str(e), e)

    l2 = TiDBVectorStore.from_texts(LC_TEXTS, emb, metadatas=LC_META, ids=LC_IDS, connection_string=url,
                                    table_name="lc_l2", distance_strategy="l2", drop_existing_table=True)
    got = l2.similarity_search_with_score(query, k=5)
    want2 = sorted((math.dist(qv, vectors[t]), t) for t in LC_TEXTS)
    check("l2: nearest first, scores the euclidean distances", [d.page_content for d, _ in got] == [t for _, t in want2]
          and close([s for _, s in got], [d for d, _ in want2]), (got, want2))
    check("l2: a text's own embedding is at distance 0", l2.similarity_search_with_score(LC_TEXTS[4], k=1)[0][1] < 1e-6)
    l2.drop_vectorstore()
    tables = [r[0] for r in db.sql("SHOW TABLES").fetchall()]
    check("drop_vectorstore", "lc_l2" not in tables and "lc_docs" in tables, tables)


def llamaindex(db, url):
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
    from llama_index.core.vector_stores.types import (FilterCondition, FilterOperator, MetadataFilter,
                                                      MetadataFilters, VectorStoreQuery)
    from llama_index.vector_stores.tidbvector import TiDBVectorStore
    from tidb_vector.integrations.utils import EmbeddingColumnMismatchError

    store = TiDBVectorStore(connection_string=url, table_name="li_nodes", distance_strategy="cosine",
                            vector_dimension=8, drop_existing_table=True)
    nodes = []
    for node_id, doc, topic, year, angle in LI_NODES:
        node = TextNode(id_=node_id, text=f"{node_id} is about {topic}", metadata={"topic": topic, "year": year},
                        embedding=at(angle))
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc)
        nodes.append(node)
    ids = store.add(nodes)
    n = db.sql("SELECT COUNT(*) FROM li_nodes").fetchone()[0]
    check("llamaindex add: the nodes are in the database in-process", ids == [x[0] for x in LI_NODES] and n == 5, (ids, n))
    refs = db.sql("SELECT id, JSON_UNQUOTE(JSON_EXTRACT(meta, '$.ref_doc_id')) FROM li_nodes ORDER BY id").fetchall()
    check("with their documents in the metadata", refs == [(x[0], x[1]) for x in LI_NODES], refs)

    def query(angle, k=5, filters=None):
        return store.query(VectorStoreQuery(query_embedding=at(angle), similarity_top_k=k, filters=filters))

    r = query(35, k=3)
    check("a top-3 query: nearest first", r.ids == ["n2", "n1", "n3"], r.ids)
    check("its similarities are 1 - cosine distance", close(r.similarities, [math.cos(math.radians(a)) for a in (5, 15, 25)]),
          r.similarities)
    check("its nodes come back whole", [x.text for x in r.nodes] == ["n2 is about cats", "n1 is about dogs", "n3 is about birds"]
          and r.nodes[0].metadata == {"topic": "cats", "year": 2023} and r.nodes[0].ref_doc_id == "doc-b",
          [(x.text, x.metadata, x.ref_doc_id) for x in r.nodes])
    nearest = [query(a, k=1).ids[0] for _, _, _, _, a in LI_NODES]
    check("each node's own embedding finds that node", nearest == [x[0] for x in LI_NODES], nearest)

    def filtered(angle, *fs, condition=FilterCondition.AND):
        return query(angle, filters=MetadataFilters(filters=list(fs), condition=condition))

    r = filtered(20, MetadataFilter(key="topic", value="cats"))
    check("a metadata filter returns only its matches, nearest first",
          r.ids == ["n2", "n0"] and all(x.metadata["topic"] == "cats" for x in r.nodes), (r.ids, [x.metadata for x in r.nodes]))
    for name, fs, cond, want in [
            ("GT and IN", [MetadataFilter(key="year", value=2022, operator=FilterOperator.GT),
                           MetadataFilter(key="topic", value=["cats", "fish"], operator=FilterOperator.IN)],
             FilterCondition.AND, ["n2", "n4"]),
            ("LTE or EQ", [MetadataFilter(key="year", value=2021, operator=FilterOperator.LTE),
                           MetadataFilter(key="topic", value="fish")], FilterCondition.OR, ["n0", "n4"]),
            ("NIN and NE", [MetadataFilter(key="topic", value=["cats"], operator=FilterOperator.NIN),
                            MetadataFilter(key="topic", value="fish", operator=FilterOperator.NE)], FilterCondition.AND, ["n1", "n3"]),
            ("GTE and LT", [MetadataFilter(key="year", value=2022, operator=FilterOperator.GTE),
                            MetadataFilter(key="year", value=2024, operator=FilterOperator.LT)], FilterCondition.AND, ["n1", "n2"])]:
        r = filtered(20, *fs, condition=cond)
        check(f"filters {name}", r.ids == want, r.ids)

    store.delete("doc-a")
    left = [x[0] for x in db.sql("SELECT id FROM li_nodes ORDER BY id").fetchall()]
    check("delete by ref_doc_id", left == ["n2", "n3", "n4"], left)
    r = query(10)
    check("and its nodes are no longer found", r.ids == ["n2", "n3", "n4"], r.ids)
    try:
        TiDBVectorStore(connection_string=url, table_name="li_nodes", vector_dimension=16)
        check("a different dimension is refused", False, "it was accepted")
    except EmbeddingColumnMismatchError as e:
        check("the column's dimension is read back (a different one is refused)", "vector(8)" in str(e), e)

    # The high-level path: an index over the store, with LlamaIndex's own (mock) embedding model.
    indexed = TiDBVectorStore(connection_string=url, table_name="li_index", vector_dimension=8, drop_existing_table=True)
    index = VectorStoreIndex.from_documents(
        [Document(id_="d1", text="The first document."), Document(id_="d2", text="The second document.")],
        storage_context=StorageContext.from_defaults(vector_store=indexed), embed_model=MockEmbedding(embed_dim=8))
    hits = index.as_retriever(similarity_top_k=5).retrieve("document")
    check("VectorStoreIndex: a retriever over the store", sorted(h.node.text for h in hits) ==
          ["The first document.", "The second document."] and all(abs(h.score - 1) < 1e-6 for h in hits),
          [(h.node.text, h.score) for h in hits])
    index.delete_ref_doc("d1")
    left = db.sql("SELECT document FROM li_index").fetchall()
    check("VectorStoreIndex: delete_ref_doc", left == [("The second document.",)], left)


def stores(path):
    db = embedb.connect(path)
    url = db.serve(port=0)
    langchain(db, url)
    llamaindex(db, url)
    db.close()


def reopen(path):
    db = embedb.connect(path)
    counts = [db.sql(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("lc_docs", "li_nodes", "li_index")]
    check("on reopen, each store's rows are there", counts == [5, 3, 1], counts)
    emb = fake_embeddings()
    near = db.sql("SELECT document FROM lc_docs ORDER BY VEC_COSINE_DISTANCE(embedding, ?) LIMIT 1",
                  (emb.embed_query(LC_TEXTS[3]),)).fetchall()
    check("and a vector search in-process finds langchain's text", near == [(LC_TEXTS[3],)], near)
    near = db.sql("SELECT id FROM li_nodes ORDER BY VEC_COSINE_DISTANCE(embedding, ?) LIMIT 2", (at(65),)).fetchall()
    check("and llamaindex's nodes", near == [("n3",), ("n4",)], near)
    db.close()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "stores":
        stores(sys.argv[2] if len(sys.argv) > 2 else None)
    elif mode == "reopen":
        reopen(sys.argv[2])
