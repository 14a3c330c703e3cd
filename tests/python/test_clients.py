"""End-to-end tests of embedb through real MySQL clients.

(a) pymysql: vectors, distances, result metadata, error codes;
(b) the `mysql` command-line client (skipped if it is not installed);
(c) durability: committed rows survive kill -9 and a restart.

The expectations follow MySQL/TiDB behaviour (TiDB's VECTOR type and
VEC_COSINE_DISTANCE). Fixtures are in conftest.py.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from typing import Optional

import pymysql
import pytest
from pymysql.constants import FIELD_TYPE

from conftest import connect

# id -> (content, vector); ids are ordered so that insertion order is NOT the
# order of similarity to QUERY.
ROWS = {
    1: ("far away", [3, 1, 0]),
    2: ("close", [1, 2, 4]),
    3: ("exact match", [1, 2, 3]),
}
QUERY = [1, 2, 3]
QUERY_TEXT = "[1,2,3]"
CREATE_T = "CREATE TABLE t (id INT PRIMARY KEY, content TEXT, v VECTOR(3))"


def vec_text(v: list[float]) -> str:
    return "[" + ",".join(f"{x:g}" for x in v) + "]"


def cosine_distance(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return 1.0 - dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def nearest(k: int) -> list[int]:
    return sorted(ROWS, key=lambda i: cosine_distance(ROWS[i][1], QUERY))[:k]


def insert_sql() -> str:
    return "INSERT INTO t (id, content, v) VALUES " + ", ".join(
        f"({i}, '{content}', '{vec_text(v)}')" for i, (content, v) in ROWS.items())


# ---------------------------------------------------------------------------
# (a) pymysql
# ---------------------------------------------------------------------------


@pytest.fixture
def vector_table(conn: pymysql.Connection) -> pymysql.Connection:
    with conn.cursor() as cur:
        cur.execute(CREATE_T)
        cur.executemany("INSERT INTO t (id, content, v) VALUES (%s, %s, %s)",
                        [(i, content, vec_text(v)) for i, (content, v) in ROWS.items()])
    return conn


def test_cosine_distance_search(vector_table: pymysql.Connection) -> None:
    with vector_table.cursor() as cur:
        cur.execute(f"SELECT id, VEC_COSINE_DISTANCE(v, '{QUERY_TEXT}') AS d "
                    "FROM t ORDER BY d LIMIT 2")
        rows = cur.fetchall()
        description = cur.description
    assert [r[0] for r in rows] == nearest(2) == [3, 2]
    for row_id, d in rows:
        assert isinstance(d, float), f"distance should be a DOUBLE, got {d!r}"
        assert d == pytest.approx(cosine_distance(ROWS[row_id][1], QUERY), abs=1e-5)
    assert [c[0] for c in description] == ["id", "d"]
    assert description[0][1] == FIELD_TYPE.LONG
    assert description[1][1] == FIELD_TYPE.DOUBLE


def test_vector_comes_back_as_text(vector_table: pymysql.Connection) -> None:
    with vector_table.cursor() as cur:
        cur.execute("SELECT v FROM t WHERE id = 3")
        (v,) = cur.fetchone()
    assert isinstance(v, str), f"VECTOR must be sent as a non-binary string, got {type(v)}"
    assert v == "[1,2,3]"


def test_all_rows_round_trip(vector_table: pymysql.Connection) -> None:
    with vector_table.cursor() as cur:
        cur.execute("SELECT id, content, v FROM t ORDER BY id")
        rows = cur.fetchall()
    assert rows == tuple((i, content, vec_text(v)) for i, (content, v) in ROWS.items())


def test_result_metadata(vector_table: pymysql.Connection) -> None:
    with vector_table.cursor() as cur:
        cur.execute("SELECT id, content, v FROM t WHERE id = 1")
        cur.fetchall()
        d = cur.description
    assert [c[0] for c in d] == ["id", "content", "v"]
    # MySQL/TiDB wire types: INT -> LONG, TEXT -> BLOB (utf8mb4),
    # VECTOR -> LONG_BLOB with a text charset (what TiDB sends).
    assert [c[1] for c in d] == [FIELD_TYPE.LONG, FIELD_TYPE.BLOB, FIELD_TYPE.LONG_BLOB]
    assert d[0][6] is False, "a PRIMARY KEY column is NOT NULL"
    assert d[1][6] is True and d[2][6] is True


def _expect_error(cur, sql: str, code: int, sqlstate: str) -> pymysql.MySQLError:
    with pytest.raises(pymysql.MySQLError) as info:
        cur.execute(sql)
    e = info.value
    assert e.args[0] == code, f"{sql!r}: expected error {code}, got {e.args!r}"
    assert isinstance(e.args[1], str) and e.args[1], "the error needs a message"
    got = getattr(e, "sqlstate", None)
    assert got == sqlstate, f"{sql!r}: SQLSTATE {got!r} != {sqlstate!r}"
    return e


def test_error_missing_table(conn: pymysql.Connection) -> None:
    with conn.cursor() as cur:
        e = _expect_error(cur, "SELECT * FROM no_such_table", 1146, "42S02")
        assert "no_such_table" in e.args[1]
        cur.execute("SELECT 1")  # the session survives the error
        assert cur.fetchone() == (1,)


def test_error_syntax(conn: pymysql.Connection) -> None:
    with conn.cursor() as cur:
        _expect_error(cur, "SELEC 1", 1064, "42000")
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def test_error_duplicate_key(vector_table: pymysql.Connection) -> None:
    with vector_table.cursor() as cur:
        _expect_error(cur, "INSERT INTO t (id, content, v) VALUES (1, 'again', '[0,0,1]')",
                      1062, "23000")
        cur.execute("SELECT COUNT(*), MAX(content) FROM t WHERE id = 1")
        assert cur.fetchone() == (1, "far away")


# ---------------------------------------------------------------------------
# (b) the mysql command-line client
# ---------------------------------------------------------------------------

MYSQL = shutil.which("mysql")
needs_mysql = pytest.mark.skipif(
    MYSQL is None, reason="`mysql` CLI not installed (apt-get install default-mysql-client)")


def _ssl_off() -> list[str]:
    assert MYSQL is not None
    version = subprocess.run([MYSQL, "--version"], capture_output=True, text=True).stdout
    return ["--skip-ssl"] if "MariaDB" in version else ["--ssl-mode=DISABLED"]


def mysql_cli(server: tuple[str, int], sql: str, database: Optional[str] = None,
              check: bool = True) -> subprocess.CompletedProcess:
    host, port = server
    cmd = [MYSQL, "--no-defaults", f"-h{host}", f"-P{port}", "-uroot", "--protocol=TCP",
           "--batch", *_ssl_off(), "-e", sql]
    if database:
        cmd.append(database)
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    if check and proc.returncode != 0:
        pytest.fail(f"mysql exited with {proc.returncode}\n$ {' '.join(cmd)}\n"
                    f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}", pytrace=False)
    return proc


@pytest.fixture
def cli_db(embedb_server: tuple[str, int]):
    name = "cli_test"
    mysql_cli(embedb_server, f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}")
    yield name
    mysql_cli(embedb_server, f"DROP DATABASE IF EXISTS {name}", check=False)


@needs_mysql
def test_mysql_cli_create_insert_select(embedb_server: tuple[str, int], cli_db: str) -> None:
    mysql_cli(embedb_server, f"{CREATE_T}; {insert_sql()};", database=cli_db)

    out = mysql_cli(embedb_server, "SELECT id, content, v FROM t ORDER BY id",
                    database=cli_db).stdout
    expected = "id\tcontent\tv\n" + "".join(
        f"{i}\t{content}\t{vec_text(v)}\n" for i, (content, v) in ROWS.items())
    assert out == expected

    out = mysql_cli(embedb_server,
                    f"SELECT id, VEC_COSINE_DISTANCE(v, '{QUERY_TEXT}') AS d "
                    "FROM t ORDER BY d LIMIT 2", database=cli_db).stdout
    lines = out.splitlines()
    assert lines[0] == "id\td"
    rows = [line.split("\t") for line in lines[1:]]
    assert [int(r[0]) for r in rows] == nearest(2)
    for row_id, d in rows:
        assert float(d) == pytest.approx(cosine_distance(ROWS[int(row_id)][1], QUERY), abs=1e-5)


@needs_mysql
def test_mysql_cli_null_and_error(embedb_server: tuple[str, int], cli_db: str) -> None:
    mysql_cli(embedb_server, f"{CREATE_T}; INSERT INTO t VALUES (7, NULL, NULL);",
              database=cli_db)
    out = mysql_cli(embedb_server, "SELECT id, content, v FROM t", database=cli_db).stdout
    assert out == "id\tcontent\tv\n7\tNULL\tNULL\n"

    proc = mysql_cli(embedb_server, "SELECT * FROM no_such_table", database=cli_db, check=False)
    assert proc.returncode != 0
    assert re.search(r"ERROR 1146 \(42S02\)", proc.stderr), proc.stderr


# ---------------------------------------------------------------------------
# (c) durability
# ---------------------------------------------------------------------------


def _fill(server_addr: tuple[str, int]) -> None:
    c = connect(*server_addr)
    try:
        with c.cursor() as cur:
            cur.execute("CREATE DATABASE durable")
            cur.execute("USE durable")
            cur.execute(CREATE_T)
            cur.execute(insert_sql())  # autocommit
            cur.execute("BEGIN")
            cur.execute("INSERT INTO t VALUES (4, 'explicit tx', '[0,0,1]')")
            cur.execute("COMMIT")
    finally:
        c.close()


EXPECTED_AFTER_FILL = tuple(
    [(i, content, vec_text(v)) for i, (content, v) in ROWS.items()]
    + [(4, "explicit tx", "[0,0,1]")])


def _rows(server_addr: tuple[str, int]) -> tuple:
    c = connect(*server_addr, database="durable")
    try:
        with c.cursor() as cur:
            cur.execute("SELECT id, content, v FROM t ORDER BY id")
            return cur.fetchall()
    finally:
        c.close()


def test_committed_rows_survive_kill_9(private_server, restart_server) -> None:
    _fill(private_server.address)
    assert _rows(private_server.address) == EXPECTED_AFTER_FILL
    addr = restart_server(private_server, hard=True)  # SIGKILL, no clean shutdown
    assert _rows(addr) == EXPECTED_AFTER_FILL
    # and the restarted server keeps working
    c = connect(*addr, database="durable")
    try:
        with c.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (5, 'after restart', '[1,1,1]')")
            cur.execute("SELECT COUNT(*) FROM t")
            assert cur.fetchone() == (5,)
    finally:
        c.close()


def test_uncommitted_rows_are_gone_after_kill_9(private_server, restart_server) -> None:
    _fill(private_server.address)
    c = connect(*private_server.address, database="durable")
    with c.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("INSERT INTO t VALUES (99, 'never committed', '[9,9,9]')")
    addr = restart_server(private_server, hard=True)
    try:
        c.close()
    except Exception:
        pass
    assert _rows(addr) == EXPECTED_AFTER_FILL


def test_rows_survive_clean_restart(private_server, restart_server) -> None:
    _fill(private_server.address)
    addr = restart_server(private_server, hard=False)  # SIGTERM
    assert _rows(addr) == EXPECTED_AFTER_FILL
