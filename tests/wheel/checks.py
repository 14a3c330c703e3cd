"""In-process checks of the embedb wheel, run by tests/python/test_wheel.py with the python of a
fresh venv holding only the wheel. Each check prints `PASS name`; the first failure raises.

Usage: checks.py MODE [ARGS]
  api             parameters, types, errors, transactions, threads, a second connect's lock
  serve PYTHON    db.serve(), then PYTHON (a venv with pymysql) queries it over the wire
  frames          results as pandas DataFrames (and pyarrow Tables when installed), numpy vectors
  pytidb DIR      pytidb's quick-start through db.serve(): auto-embedded field, dense, full-text
                  and hybrid search (pytidb, pandas, numpy come from PYTHONPATH)
  write DIR N     insert rows 0..N-1 into DIR one by one, printing each acknowledged id
  count DIR       print the rows in DIR
"""

import datetime
import decimal
import signal
import subprocess
import sys
import threading

# Python leaves SIGINT ignored when it starts ignored (a test run launched in the background
# with `&`); the Ctrl-C check needs what an interactive user has: Ctrl-C raises KeyboardInterrupt.
signal.signal(signal.SIGINT, signal.default_int_handler)

import embedb  # noqa: E402


def check(name, cond, detail=""):
    if not cond:
        raise AssertionError(f"{name}: {detail}")
    print(f"PASS {name}", flush=True)


def api():
    db = embedb.connect()
    db.execute("CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(20), d DECIMAL(6,2), f DOUBLE, "
               "dt DATETIME, day DATE, b VARBINARY(10), ok BOOLEAN, v VECTOR(3))")
    r = db.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (1, "it's 'quoted'", decimal.Decimal("1.25"), 2.5, datetime.datetime(2026, 1, 2, 3, 4, 5),
                    datetime.date(2026, 2, 3), b"\x00\xff'", True, [1.0, 2.0, 3.0]))
    check("insert with parameters", r.rowcount == 1, r.rowcount)
    row = db.sql("SELECT id, s, d, f, dt, day, b, ok FROM t").fetchone()
    check("values come back typed", row == (1, "it's 'quoted'", decimal.Decimal("1.25"), 2.5,
                                            datetime.datetime(2026, 1, 2, 3, 4, 5), datetime.date(2026, 2, 3),
                                            b"\x00\xff'", 1), row)
    # A parameter is a value, never SQL text.
    got = db.sql("SELECT id FROM t WHERE s = ?", ("x' OR '1'='1",)).fetchall()
    check("parameters are not pasted into the text", got == [], got)
    got = db.sql("SELECT VEC_COSINE_DISTANCE(v, ?) FROM t", ([1.0, 2.0, 3.0],)).fetchall()
    check("a list binds as a vector", abs(got[0][0]) < 1e-6, got)
    try:
        db.execute("SELECT * FROM nope")
        check("an error raises", False)
    except embedb.Error as e:
        check("an error carries MySQL's code", e.code == 1146 and "nope" in e.msg, (e.code, e.msg))
    with db.transaction():
        db.execute("INSERT INTO t (id) VALUES (2)")
    try:
        with db.transaction():
            db.execute("INSERT INTO t (id) VALUES (3)")
            raise RuntimeError("undo")
    except RuntimeError:
        pass
    ids = [r[0] for r in db.sql("SELECT id FROM t ORDER BY id").fetchall()]
    check("transactions commit and roll back", ids == [1, 2], ids)
    errors = []

    def worker(k):
        try:
            c = db.cursor()
            for i in range(50):
                c.execute("INSERT INTO t (id) VALUES (?)", (1000 + k * 100 + i,))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n = db.sql("SELECT COUNT(*) FROM t WHERE id >= 1000").fetchone()[0]
    check("threads on cursors", not errors and n == 200, (errors, n))
    cols = db.sql("SELECT id AS ident, s, COUNT(*) FROM t WHERE id = 1 GROUP BY id, s").columns
    check("column names", cols == ["ident", "s", "COUNT(*)"], cols)
    # Ctrl-C stops a running statement (KILL QUERY) and raises KeyboardInterrupt; the session
    # goes on.
    import os
    import signal
    import time
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    try:
        r = db.execute("SELECT SLEEP(30)").fetchall()
        check("Ctrl-C stops a statement", False, f"it returned {r} after {time.monotonic() - start:.1f} s")
    except KeyboardInterrupt:
        took = time.monotonic() - start
    check("Ctrl-C stops a statement", took < 5, took)
    check("and the session goes on", db.sql("SELECT 1").fetchall() == [(1,)])
    # A statement runs on the caller's stack unless little is left: a deeply nested one still
    # gets the engine's errors, even from a thread with a small stack (never a crash).
    deep = ["SELECT " + "(" * 2999 + "1" + ")" * 2999, "SELECT 1 FROM (SELECT 1) t WHERE " + " AND ".join(["1=1"] * 2999)]
    codes = []

    def nested():
        c = db.cursor()
        for sql in deep:
            try:
                c.execute(sql)
                codes.append(0)
            except embedb.Error as e:
                codes.append(e.code)
    threading.stack_size(256 * 1024)
    t = threading.Thread(target=nested)
    t.start()
    t.join()
    threading.stack_size(0)
    nested()
    check("deep nesting gets the engine's errors on any stack", len(codes) == 4 and all(c in (1064, 1436) for c in codes), codes)
    # close() lets go of a data directory: it opens again in this same process.
    import tempfile
    d = tempfile.mkdtemp()
    with embedb.connect(d) as first:
        first.execute("CREATE TABLE r (id INT PRIMARY KEY)")
        first.execute("INSERT INTO r VALUES (7)")
    again = embedb.connect(d)
    check("a closed directory opens again in the same process", again.sql("SELECT id FROM r").fetchall() == [(7,)])
    again.close()


def serve(python):
    db = embedb.connect()
    db.execute("CREATE TABLE w (id INT PRIMARY KEY, s TEXT)")
    db.execute("INSERT INTO w VALUES (1, 'in-process')")
    url = db.serve()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    check("serve gives a SQLAlchemy URL", url.startswith("mysql+pymysql://root@127.0.0.1:"), url)
    code = ("import pymysql,sys; c=pymysql.connect(host='127.0.0.1',port=int(sys.argv[1]),user='root',database='test');"
            "cur=c.cursor(); cur.execute('SELECT s FROM w'); print(cur.fetchall()[0][0]);"
            "cur.execute('INSERT INTO w VALUES (2, %s)', ('over the wire',)); c.commit()")
    out = subprocess.run([python, "-c", code, str(port)], capture_output=True, text=True, timeout=60)
    check("a MySQL client reads through db.serve()", out.stdout.strip() == "in-process", out.stdout + out.stderr)
    got = db.sql("SELECT s FROM w WHERE id = 2").fetchall()
    check("and its writes are seen in-process", got == [("over the wire",)], got)
    db.close()


def frames():
    import numpy
    import pandas

    db = embedb.connect()
    db.execute("CREATE TABLE f (id BIGINT PRIMARY KEY, x DOUBLE, s VARCHAR(10), t DATETIME, v VECTOR(2))")
    db.execute("INSERT INTO f VALUES (?, ?, ?, ?, ?)", (1, 0.5, "a", datetime.datetime(2026, 1, 1), numpy.array([1.0, 0.0], dtype=numpy.float32)))
    db.execute("INSERT INTO f VALUES (?, ?, ?, ?, ?)", (numpy.int64(2), numpy.float64(1.5), "b", datetime.datetime(2026, 1, 2), [0.0, 1.0]))
    df = db.sql("SELECT id, x, s, t FROM f ORDER BY id").df()
    check("a DataFrame", list(df.columns) == ["id", "x", "s", "t"] and len(df) == 2, df)
    dtypes = {c: str(t) for c, t in df.dtypes.items()}
    check("DataFrame dtypes", dtypes["id"] == "int64" and dtypes["x"] == "float64" and dtypes["t"].startswith("datetime64"), dtypes)
    near = db.sql("SELECT id FROM f ORDER BY VEC_COSINE_DISTANCE(v, ?) LIMIT 1", (numpy.array([0.1, 0.9]),)).fetchall()
    check("a numpy array binds as a vector", near == [(2,)], near)
    # An indexed search bound with numpy arrays (numbers, no text) answers as the same vectors
    # bound as lists (text) do, and repeats come from the plan cache.
    db.execute("CREATE TABLE g (id INT PRIMARY KEY, v VECTOR(3), VECTOR INDEX gi ((VEC_COSINE_DISTANCE(v))))")
    with db.transaction():
        for i in range(300):
            db.execute("INSERT INTO g VALUES (?, ?)", (i, [1 + (i % 7), (i * 37) % 11 - 5, (i * 13) % 17 - 8]))
    search = "SELECT id, VEC_COSINE_DISTANCE(v, ?) AS d FROM g ORDER BY d, id LIMIT 5"
    same, cached = True, []
    for q in ([1, 2, 3], [0.5, -1, 2], [3, 3, -1], [-2, 0.25, 1]):
        arr = numpy.array(q, dtype=numpy.float32)
        by_numbers = db.sql(search, (arr,)).fetchall()
        cached.append(str(db.sql("SELECT @@last_plan_from_cache").fetchall()[0][0]))
        same = same and by_numbers == db.sql(search, (arr.tolist(),)).fetchall() and len(by_numbers) == 5
    check("numpy vectors search like their text, from the plan cache", same and cached[1:] == ["1"] * 3, (same, cached))
    try:
        import pyarrow
    except ImportError:
        return
    t = db.sql("SELECT id, x, s FROM f ORDER BY id").arrow()
    check("an Arrow table", t.schema.field("id").type == pyarrow.int64() and t.schema.field("x").type == pyarrow.float64() and t.num_rows == 2, t.schema)
    # Every column type, NULLs included, through the C Data Interface; the values must equal
    # the rows fetched as tuples.
    db.execute("CREATE TABLE a (id INT PRIMARY KEY, b BOOLEAN, i TINYINT, u BIGINT UNSIGNED, f FLOAT, d DECIMAL(10,3), "
               "s TEXT, by VARBINARY(8), dt DATE, ts DATETIME(6), j JSON, v VECTOR(2))")
    db.execute("INSERT INTO a VALUES (1, TRUE, -5, 18446744073709551615, 1.5, 12.345, 'héllo', x'00ff', '2026-01-02', "
               "'2026-01-02 03:04:05.678901', '{\"k\": [1, 2]}', '[1,2]'), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")
    q = "SELECT id, b, i, u, f, d, s, by, dt, ts, j, v, id * 2 AS twice FROM a ORDER BY id"
    t = db.sql(q).arrow()
    rows = db.sql(q).fetchall()
    as_rows = [tuple(r.values()) for r in t.to_pylist()]
    check("Arrow columns keep their names", t.column_names == ["id", "b", "i", "u", "f", "d", "s", "by", "dt", "ts", "j", "v", "twice"], t.column_names)
    same = all(a == b or (isinstance(b, str) and str(a) == b) for x, y in zip(as_rows, rows) for a, b in zip(x, y))
    check("Arrow values equal the fetched rows, NULLs included", len(as_rows) == 2 and same and as_rows[1][1:12] == (None,) * 11, (as_rows, rows))
    # A large result arrives in many batches, sliced or not, and its buffers are shared, not copied.
    db.execute("CREATE TABLE big (id BIGINT PRIMARY KEY, x DOUBLE, s VARCHAR(20))")
    db.execute("SET cte_max_recursion_depth = 10000")
    for start in range(0, 20000, 5000):
        db.execute("INSERT INTO big SELECT n + ?, (n + ?) / 2, CONCAT('row', n + ?) FROM (WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n < 4999) SELECT n FROM c) g", (start, start, start))
    before = pyarrow.total_allocated_bytes()
    big = db.sql("SELECT id, x, s FROM big WHERE id % 3 <> 1 ORDER BY id").arrow()
    ids = big.column("id").to_pylist()
    check("a large result as Arrow", big.num_rows == len(ids) == 13333 and ids[:3] == [0, 2, 3] and big.column("s")[2].as_py() == "row3", (big.num_rows, ids[:3]))
    check("its buffers are the engine's, not copies in pyarrow's pool", pyarrow.total_allocated_bytes() - before < 4096, pyarrow.total_allocated_bytes() - before)
    del big


def quick_start(path):
    from pytidb import TiDBClient
    from pytidb.datatype import TEXT
    from pytidb.embeddings import EmbeddingFunction
    from pytidb.schema import Field, FullTextField, TableModel

    db = embedb.connect(path)
    url = db.serve()
    client = TiDBClient.connect(url)

    class Doc(TableModel):
        __tablename__ = "docs"
        id: int = Field(primary_key=True)
        content: str = FullTextField()
        embedding: list[float] = EmbeddingFunction("local/all-MiniLM-L6-v2", dimensions=384).VectorField(source_field="content")

    table = client.create_table(schema=Doc, if_exists="overwrite")
    table.bulk_insert([Doc(id=1, content="Java: Object-oriented language for cross-platform development."),
                       Doc(id=2, content="Java coffee: Bold Indonesian beans with low acidity."),
                       Doc(id=3, content="Java island: Densely populated, home to Jakarta."),
                       Doc(id=4, content="Java's syntax is used in Android apps.")])
    dense = [r["id"] for r in table.search("How to start learning Java programming?").limit(2).to_list()]
    check("pytidb dense search through db.serve()", dense == [1, 4], dense)
    fts = [r["id"] for r in table.search("coffee beans", search_type="fulltext").limit(2).to_list()]
    check("pytidb full-text search", fts[:1] == [2], fts)
    hybrid = [r["id"] for r in table.search("Java coffee beans", search_type="hybrid").limit(3).to_list()]
    check("pytidb hybrid search", 2 in hybrid, hybrid)
    n = db.sql("SELECT COUNT(*) FROM docs").fetchone()[0]
    check("pytidb's rows are seen in-process", n == 4, n)
    client.disconnect()
    db.close()


def write(path, n):
    db = embedb.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS k (id INT PRIMARY KEY)")
    for i in range(n):
        db.execute("INSERT INTO k VALUES (?)", (i,))
        print(i, flush=True)


def count(path):
    db = embedb.connect(path)
    print(db.sql("SELECT COUNT(*), COALESCE(MAX(id), -1) FROM k").fetchone())


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "api":
        api()
    elif mode == "serve":
        serve(sys.argv[2])
    elif mode == "frames":
        frames()
    elif mode == "pytidb":
        quick_start(sys.argv[2])
    elif mode == "write":
        write(sys.argv[2], int(sys.argv[3]))
    elif mode == "count":
        count(sys.argv[2])
