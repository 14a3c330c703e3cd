"""Backups with the tools people have (issue 18): `mysqldump` → `mysql` reproduces every table.

The real MariaDB client tools dump a database from embedb and restore it into another database
of the same server; every table is then compared row by row with the original (every column
type, binary bytes included), views read the restored tables, and the auto-embedded table —
whose vectors the restore keeps as dumped, without calling the model again — answers vector
and full-text searches exactly as the original does.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import connect

pytestmark = pytest.mark.skipif(shutil.which("mysqldump") is None or shutil.which("mysql") is None,
                                reason="mysqldump and mysql (Debian default-mysql-client) are needed")

SCHEMA = [
    """CREATE TABLE every_type (
        id INT PRIMARY KEY AUTO_INCREMENT,
        ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, bi BIGINT, ub BIGINT UNSIGNED,
        dec1 DECIMAL(20,6), fl FLOAT, db DOUBLE, bo BOOLEAN,
        ch CHAR(5), vc VARCHAR(100), tx TEXT, en ENUM('small','large'),
        bl BLOB, vb VARBINARY(16),
        d DATE, dt DATETIME(6), ts TIMESTAMP NULL, tm TIME, yr YEAR,
        js JSON, vec VECTOR(3),
        KEY by_vc (vc), UNIQUE KEY by_bi (bi)
    )""",
    """CREATE TABLE child (id INT PRIMARY KEY, parent INT, note VARCHAR(20),
        FOREIGN KEY (parent) REFERENCES every_type (id))""",
    """CREATE TABLE docs (id INT PRIMARY KEY, txt TEXT,
        v VECTOR(384) GENERATED ALWAYS AS (EMBED_TEXT('local/all-MiniLM-L6-v2', txt)) STORED,
        VECTOR INDEX idx_v ((VEC_COSINE_DISTANCE(v))),
        FULLTEXT INDEX idx_txt (txt) WITH PARSER standard)""",
    "CREATE VIEW big_ones AS SELECT id, vc FROM every_type WHERE en = 'large'",
]

ROWS = [
    """INSERT INTO every_type (ti, si, mi, bi, ub, dec1, fl, db, bo, ch, vc, tx, en, bl, vb, d, dt, ts, tm, yr, js, vec) VALUES
       (-128, 65535, -8388608, -9223372036854775808, 18446744073709551615, -12345678901234.123456, 1.5, 2.718281828459045, TRUE,
        'ab', 'it''s "quoted" \\\\ back', 'line1\\nline2\\ttab', 'large', x'00ff27225c0a0d1a', x'deadbeef',
        '2024-02-29', '2024-02-29 23:59:59.123456', '2024-01-01 00:00:01', '-838:59:59', 2155,
        '{"a": [1, 2, {"b": null}], "é": "ü"}', '[1,-2.5,3e-7]'),
       (127, 0, 0, 9223372036854775807, 0, 0, -0.25, -1e300, FALSE,
        '', '', '', 'small', x'', x'00', '1000-01-01', '1000-01-01 00:00:00', NULL, '00:00:00', 1901,
        '[]', '[0,0,0]'),
       (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'emoji 😀 and 中文', NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
    "INSERT INTO child VALUES (1, 1, 'one'), (2, 2, 'two'), (3, NULL, NULL)",
    """INSERT INTO docs (id, txt) VALUES (1, 'the cat sat on the mat'), (2, 'dogs chase balls in the park'),
       (3, 'stock markets fell sharply today'), (4, 'a kitten naps in the sun'), (5, 'bonds and equities rallied')""",
]

TABLES = {"every_type": "id", "child": "id", "docs": "id"}


def query(server, db, sql):
    c = connect(*server, database=db)
    try:
        with c.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        c.close()


def tool(name: str, server, *args: str, stdin: bytes | None = None) -> bytes:
    host, port = server
    r = subprocess.run([name, "-h", host, "-P", str(port), "-uroot", *args], input=stdin,
                       capture_output=True, timeout=300)
    assert r.returncode == 0, f"{name} {' '.join(args)} failed: {r.stderr.decode(errors='replace')}"
    return r.stdout


@pytest.fixture
def source(embedb_server, db):
    for sql in SCHEMA + ROWS:
        query(embedb_server, db, sql)
    return db


@pytest.mark.parametrize("options", [[], ["--single-transaction"]], ids=["default", "single-transaction"])
def test_dump_and_restore_reproduce_every_table(embedb_server, source, options):
    dump = tool("mysqldump", embedb_server, *options, source)
    assert b"INSERT INTO `docs`" in dump and b"CREATE TABLE `every_type`" in dump
    target = source + "_restored"
    query(embedb_server, None, f"DROP DATABASE IF EXISTS `{target}`")
    query(embedb_server, None, f"CREATE DATABASE `{target}`")
    try:
        tool("mysql", embedb_server, target, stdin=dump)
        for table, key in TABLES.items():
            want = query(embedb_server, source, f"SELECT * FROM `{table}` ORDER BY `{key}`")
            got = query(embedb_server, target, f"SELECT * FROM `{table}` ORDER BY `{key}`")
            assert got == want, table
            assert len(want) >= 3
            shape = lambda db: query(embedb_server, db, f"SHOW CREATE TABLE `{table}`")[0][1]
            assert shape(target) == shape(source), table
        # binary bytes survived exactly
        assert query(embedb_server, target, "SELECT HEX(bl), HEX(vb) FROM every_type WHERE id = 1") == (("00FF27225C0A0D1A", "DEADBEEF"),)
        # the view reads the restored database's table
        assert query(embedb_server, target, "SELECT * FROM big_ones") == query(embedb_server, source, "SELECT * FROM big_ones") == ((1, 'it\'s "quoted" \\ back'),)
        # AUTO_INCREMENT goes on after the restored rows
        query(embedb_server, target, "INSERT INTO every_type (vc) VALUES ('next')")
        assert query(embedb_server, target, "SELECT MAX(id) FROM every_type") == ((4,),)
        # the foreign key is enforced in the copy
        c = connect(*embedb_server, database=target)
        with pytest.raises(Exception) as e, c.cursor() as cur:
            cur.execute("INSERT INTO child VALUES (9, 99, 'orphan')")
        assert e.value.args[0] == 1452
        c.close()
        # searches answer the same: the vector index and the full-text index were rebuilt
        for search in [
            "SELECT id FROM docs ORDER BY VEC_EMBED_COSINE_DISTANCE(v, 'a sleepy cat') LIMIT 3",
            "SELECT id FROM docs ORDER BY VEC_COSINE_DISTANCE(v, (SELECT v FROM docs WHERE id = 3)) LIMIT 2",
            "SELECT id FROM docs WHERE FTS_MATCH_WORD('park', txt)",
        ]:
            assert query(embedb_server, target, search) == query(embedb_server, source, search), search
        assert query(embedb_server, target, "EXPLAIN SELECT id FROM docs ORDER BY VEC_COSINE_DISTANCE(v, '[" + ",".join(["0.1"] * 384) + "]') LIMIT 3")
    finally:
        query(embedb_server, None, f"DROP DATABASE IF EXISTS `{target}`")


def test_generated_values_are_refused_in_strict_mode(embedb_server, source):
    """Outside a restore (strict sql_mode, the default) a value for a generated column is 3105,
    as in TiDB; without strict mode an ordinary generated column is recomputed (1906)."""
    c = connect(*embedb_server, database=source)
    with c.cursor() as cur:
        with pytest.raises(Exception) as e:
            cur.execute("INSERT INTO docs (id, txt, v) VALUES (9, 'x', '[" + ",".join(["0"] * 384) + "]')")
        assert e.value.args[0] == 3105
        cur.execute("CREATE TABLE g (a INT, b INT AS (a * 2) STORED)")
        cur.execute("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'")
        cur.execute("INSERT INTO g VALUES (5, 99)")
        cur.execute("SHOW WARNINGS")
        assert [w[1] for w in cur.fetchall()] == [1906]
        cur.execute("SELECT a, b FROM g")
        assert cur.fetchall() == ((5, 10),)
    c.close()
