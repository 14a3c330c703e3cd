"""The Python-side engines of `examples/vector_bench.rs`: hnswlib, LanceDB, and embedb over the
MySQL wire protocol (through PyMySQL, against an `embedb serve` the bench started).

usage: ann_engines.py ENGINE DIR      ENGINE: hnswlib | lancedb | wire

DIR holds what the bench wrote: base.fvecs, query.fvecs, gt.ivecs (exact top-k row numbers),
cat.i32 (one little-endian int32 per base row, the filter column), gt_filtered.ivecs (exact top-k
among rows with cat = filter_cat) and params.json (metric, k, M, ef_construction, ef list,
min_secs, filter_cat, and the engine's own settings).

Every engine builds or loads first, then for each ef runs all queries one at a time on one
thread, repeating the whole query list until at least min_secs passed (recall comes from the
first pass). Results go to stdout as `RESULT {json}` lines, which the bench turns into its
table; anything else it prints is passed through.
"""
import json
import os
import sys
import time

import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dims = int(raw[0])
    rows = raw.reshape(-1, dims + 1)[:, 1:]
    return np.ascontiguousarray(rows.view(dtype))


def emit(**fields):
    print("RESULT " + json.dumps(fields), flush=True)


def recall(found, truth, k):
    total = 0.0
    for f, t in zip(found, truth):
        t = [int(x) for x in t[:k] if x >= 0]
        if not t:
            total += 1.0
            continue
        total += len(set(int(x) for x in list(f)[:k]) & set(t)) / len(t)
    return total / max(1, len(found))


def timed(queries, search, min_secs):
    """(QPS, results of the first pass) of `search` over `queries`, repeated for min_secs."""
    for q in queries[:20]:
        search(q)
    first = None
    done = 0
    start = time.perf_counter()
    while True:
        out = [search(q) for q in queries]
        if first is None:
            first = out
        done += len(queries)
        secs = time.perf_counter() - start
        if secs >= min_secs:
            return done / secs, first


class Data:
    def __init__(self, d):
        self.dir = d
        with open(os.path.join(d, "params.json")) as f:
            self.p = json.load(f)
        self.base = read_vecs(os.path.join(d, "base.fvecs"), np.float32)
        self.queries = read_vecs(os.path.join(d, "query.fvecs"), np.float32)
        self.truth = read_vecs(os.path.join(d, "gt.ivecs"), np.int32)
        self.cat = np.fromfile(os.path.join(d, "cat.i32"), dtype="<i4")
        self.truth_f = read_vecs(os.path.join(d, "gt_filtered.ivecs"), np.int32)
        self.k = int(self.p["k"])


def run_hnswlib(data):
    import hnswlib

    p = data.p
    space = {"cosine": "cosine", "l2": "l2"}[p["metric"]]
    index = hnswlib.Index(space=space, dim=data.base.shape[1])
    index.init_index(max_elements=len(data.base), M=p["m"], ef_construction=p["ef_construction"])
    start = time.perf_counter()
    index.add_items(data.base, np.arange(len(data.base)), num_threads=os.cpu_count())
    emit(kind="build", secs=time.perf_counter() - start, note=f"hnswlib M {p['m']}, ef_construction {p['ef_construction']}")
    index.set_num_threads(1)
    k = data.k
    for ef in p["efs"]:
        index.set_ef(max(ef, k))
        qps, found = timed(data.queries, lambda q: index.knn_query(q, k=k)[0][0], p["min_secs"])
        emit(kind="ef", ef=ef, qps=qps, recall=recall(found, data.truth, k))
    keep = data.cat == p["filter_cat"]
    index.set_ef(p["default_ef"])
    qps, found = timed(data.queries, lambda q: index.knn_query(q, k=k, filter=lambda i: bool(keep[i]))[0][0], p["min_secs"])
    emit(kind="filtered", ef=p["default_ef"], qps=qps, recall=recall(found, data.truth_f, k))


def run_lancedb(data):
    import lancedb
    import lancedb.index
    import pyarrow as pa

    p = data.p
    lp = p["lancedb"]
    k = data.k
    n, dims = data.base.shape
    db = lancedb.connect(os.path.join(data.dir, "lancedb"))
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(data.base.reshape(-1), type=pa.float32()), dims)
    table_data = pa.table({"id": pa.array(np.arange(n, dtype=np.int64)), "cat": pa.array(data.cat), "vector": vectors})
    start = time.perf_counter()
    tbl = db.create_table("t", data=table_data)
    load = time.perf_counter() - start
    start = time.perf_counter()
    config_class = {"IVF_HNSW_SQ": lancedb.index.IvfHnswSq, "IVF_HNSW_FLAT": lancedb.index.IvfHnswFlat}[lp["index_type"]]
    config = config_class(
        distance_type=p["metric"], num_partitions=lp["num_partitions"], m=p["m"], ef_construction=p["ef_construction"]
    )
    tbl.create_index("vector", config=config)
    build = time.perf_counter() - start
    stats = tbl.index_stats("vector_idx")
    unindexed = getattr(stats, "num_unindexed_rows", None)
    emit(
        kind="build",
        secs=load + build,
        note=f"lancedb {lancedb.__version__} {lp['index_type']}, num_partitions {lp['num_partitions']}, nprobes {lp['nprobes']}, "
        f"m {p['m']}, ef_construction {p['ef_construction']}; write {load:.2f} s + index {build:.2f} s; unindexed rows {unindexed}",
    )

    def query(q, ef, where=None):
        b = tbl.search(q).distance_type(p["metric"]).limit(k).nprobes(lp["nprobes"]).ef(ef).select(["id", "_distance"])
        if where is not None:
            b = b.where(where, prefilter=True)
        return b.to_arrow().column("id").to_pylist()

    plan = tbl.search(data.queries[0]).distance_type(p["metric"]).limit(k).nprobes(lp["nprobes"]).ef(64).select(["id", "_distance"]).explain_plan()
    if "ANNSubIndex" not in plan and "ANNIvfPartition" not in plan and "ANN" not in plan:
        print("  lancedb: WARNING, the query plan shows no ANN node:\n" + plan)
    for ef in p["efs"]:
        qps, found = timed(data.queries, lambda q: query(q, ef), p["min_secs"])
        emit(kind="ef", ef=ef, qps=qps, recall=recall(found, data.truth, k))
    where = f"cat = {p['filter_cat']}"
    qps, found = timed(data.queries, lambda q: query(q, p["default_ef"], where), p["min_secs"])
    emit(kind="filtered", ef=p["default_ef"], qps=qps, recall=recall(found, data.truth_f, k))


def vec_literal(row):
    return "[" + ",".join(repr(float(x)) for x in row.tolist()) + "]"


def run_wire(data):
    import pymysql

    p = data.p
    w = p["wire"]
    k = data.k
    fn = {"cosine": "VEC_COSINE_DISTANCE", "l2": "VEC_L2_DISTANCE"}[p["metric"]]
    conn = pymysql.connect(host="127.0.0.1", port=w["port"], user="root", password="", autocommit=True)
    cur = conn.cursor()
    n, dims = data.base.shape
    cur.execute("CREATE DATABASE annbench")
    cur.execute("USE annbench")
    cur.execute(f"CREATE TABLE t (id BIGINT PRIMARY KEY, cat INT, v VECTOR({dims}))")
    # Statement texts are made before the clock starts: formatting floats in Python is the
    # client's cost, not the server's.
    rows_per = w["rows_per_insert"]
    statements = []
    for lo in range(0, n, rows_per):
        hi = min(n, lo + rows_per)
        values = ",".join(f"({i},{int(data.cat[i])},'{vec_literal(data.base[i])}')" for i in range(lo, hi))
        statements.append("INSERT INTO t (id, cat, v) VALUES " + values)
    start = time.perf_counter()
    for s in statements:
        cur.execute(s)
    load = time.perf_counter() - start
    del statements
    start = time.perf_counter()
    cur.execute(f"CREATE VECTOR INDEX idx_v ON t (({fn}(v))) USING HNSW")
    while True:
        cur.execute(
            "SELECT ROWS_STABLE_INDEXED, ROWS_STABLE_NOT_INDEXED, ERROR_MESSAGE FROM information_schema.TIFLASH_INDEXES "
            "WHERE TIDB_DATABASE = 'annbench' AND TIDB_TABLE = 't' AND INDEX_NAME = 'idx_v'"
        )
        row = cur.fetchone()
        if row is not None and row[2]:
            raise SystemExit(f"index build failed: {row[2]}")
        if row is not None and int(row[1]) == 0 and int(row[0]) >= n:
            break
        time.sleep(0.05)
    build = time.perf_counter() - start
    emit(kind="build", secs=load + build, note=f"INSERT {load:.2f} s ({rows_per} rows per statement) + index {build:.2f} s")

    sqls = [f"SELECT id FROM t ORDER BY {fn}(v, '{vec_literal(q)}') LIMIT {k}" for q in data.queries]
    sqls_f = [
        f"SELECT id FROM t WHERE cat = {p['filter_cat']} ORDER BY {fn}(v, '{vec_literal(q)}') LIMIT {k}" for q in data.queries
    ]
    for s in (sqls[0], sqls_f[0]):
        cur.execute("EXPLAIN " + s)
        plan = "\n".join(" ".join(str(c) for c in r) for r in cur.fetchall())
        if "annIndex" not in plan:
            print("  wire: WARNING, EXPLAIN shows no annIndex:\n" + plan)

    def query(s):
        cur.execute(s)
        return [r[0] for r in cur.fetchall()]

    ef_ok = True
    for ef in p["efs"]:
        try:
            cur.execute(f"SET SESSION embedb_hnsw_ef_search = {ef}")
        except pymysql.MySQLError as e:
            print(f"  wire: SET SESSION embedb_hnsw_ef_search failed ({e}); default ef only")
            ef_ok = False
            break
        qps, found = timed(sqls, query, p["min_secs"])
        emit(kind="ef", ef=ef, qps=qps, recall=recall(found, data.truth, k))
    if not ef_ok:
        qps, found = timed(sqls, query, p["min_secs"])
        emit(kind="ef", ef=None, qps=qps, recall=recall(found, data.truth, k))
    else:
        cur.execute(f"SET SESSION embedb_hnsw_ef_search = {p['default_ef']}")
    qps, found = timed(sqls_f, query, p["min_secs"])
    emit(kind="filtered", ef=p["default_ef"], qps=qps, recall=recall(found, data.truth_f, k))
    conn.close()


def main():
    engine, d = sys.argv[1:3]
    data = Data(d)
    {"hnswlib": run_hnswlib, "lancedb": run_lancedb, "wire": run_wire}[engine](data)


if __name__ == "__main__":
    main()
