"""Server-side prepared statements (COM_STMT_PREPARE / COM_STMT_EXECUTE /
COM_STMT_CLOSE) through mysql-connector-python's ``cursor(prepared=True)``.

mysql-connector (pure Python) sends every parameter in the binary protocol
with its own wire type:

* int >= 0 -> TINY/SHORT/LONG/LONGLONG with the UNSIGNED flag (0x80),
  int < 0 -> the smallest signed type that fits;
* float -> DOUBLE; decimal.Decimal -> DECIMAL (length-encoded text);
* str -> STRING (utf8 text); bytes -> STRING (raw bytes);
* None -> NULL (null bitmap + type NULL);
* datetime.date -> DATE, datetime.datetime -> DATETIME (7 or 11 bytes),
  datetime.time / timedelta -> TIME.

Result rows of COM_STMT_EXECUTE come back in the binary row format, which the
connector decodes by column type, so these tests check both directions. The
same rows are also read back over the text protocol (pymysql) to make sure
what was stored is what was sent. Expectations are MySQL 8 / TiDB behaviour.
"""

from __future__ import annotations

import datetime
import decimal
from decimal import Decimal
from typing import Any, Iterator

import pytest

from conftest import connect

mysql_connector = pytest.importorskip(
    "mysql.connector",
    reason="mysql-connector-python is not installed (pip install mysql-connector-python); "
           "it is the client used here for COM_STMT_PREPARE/EXECUTE")
from mysql.connector import errors as mc_errors  # noqa: E402
from mysql.connector.constants import FieldType  # noqa: E402


@pytest.fixture
def mc(embedb_server: tuple[str, int], db: str) -> Iterator[Any]:
    host, port = embedb_server
    c = mysql_connector.connect(host=host, port=port, user="root", password="", database=db,
                                use_pure=True, autocommit=True, connection_timeout=10,
                                charset="utf8mb4", collation="utf8mb4_bin")
    try:
        yield c
    finally:
        try:
            c.close()
        except Exception:
            pass


@pytest.fixture
def pcur(mc: Any) -> Iterator[Any]:
    cur = mc.cursor(prepared=True)
    try:
        yield cur
    finally:
        try:
            cur.close()
        except Exception:
            pass


def test_cursor_is_really_prepared(mc: Any) -> None:
    cur = mc.cursor(prepared=True)
    assert type(cur).__name__ == "MySQLCursorPrepared"
    cur.execute("SELECT %s + 1", (41,))
    assert cur.fetchall() == [(42,)]
    # the connector keeps the server's statement id after COM_STMT_PREPARE
    assert cur._prepared is not None and isinstance(cur._prepared["statement_id"], int)
    cur.close()


CREATE = """CREATE TABLE p (
    id INT PRIMARY KEY,
    i INT,
    bi BIGINT,
    ubi BIGINT UNSIGNED,
    f DOUBLE,
    d DECIMAL(20,6),
    s VARCHAR(200),
    t TEXT,
    b BLOB,
    dt DATE,
    ts DATETIME,
    ts6 DATETIME(6),
    v VECTOR(3)
)"""
COLUMNS = ["id", "i", "bi", "ubi", "f", "d", "s", "t", "b", "dt", "ts", "ts6", "v"]
INSERT = f"INSERT INTO p ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
SELECT = f"SELECT {', '.join(COLUMNS)} FROM p WHERE id = %s"

TRICKY = "it's \"quoted\" \\ back\\slash \\' \\\\ %s ? -- ünïcødé 日本語 😀 \t\n\r\x1a end"

ROW1 = (1, 42, -9223372036854775808, 18446744073709551615, 3.141592653589793,
        Decimal("-12345678901234.123456"), TRICKY, "text with 'quotes' and \\",
        b"\x00\x01\x02\xff\x27\x5c\x22 binary", datetime.date(2024, 2, 29),
        datetime.datetime(2023, 12, 31, 23, 59, 58),
        datetime.datetime(2001, 2, 3, 4, 5, 6, 789012), "[1,2,3]")
ROW2 = (2, -1, 9223372036854775807, 0, -0.5, Decimal("0.000001"), "", "",
        b"", datetime.date(1000, 1, 1), datetime.datetime(1970, 1, 1, 0, 0, 0),
        datetime.datetime(1000, 1, 1, 0, 0, 0, 1), "[-1.5,0,2.25]")
ROW_NULLS = (3,) + (None,) * (len(COLUMNS) - 1)


@pytest.fixture
def ptable(conn, pcur) -> Any:
    with conn.cursor() as cur:
        cur.execute(CREATE)
    for row in (ROW1, ROW2, ROW_NULLS):
        pcur.execute(INSERT, row)
        assert pcur.rowcount == 1
    return pcur


def _norm(v: Any) -> Any:
    return bytes(v) if isinstance(v, bytearray) else v


def _check_row(got: tuple, want: tuple) -> None:
    assert len(got) == len(want)
    for name, g, w in zip(COLUMNS, got, want):
        g = _norm(g)
        if w is None:
            assert g is None, f"{name}: expected NULL, got {g!r}"
        elif isinstance(w, float):
            assert isinstance(g, float), f"{name}: {g!r} is not a float"
            assert g == w, name
        else:
            assert type(g) is type(w), f"{name}: {g!r} ({type(g).__name__}) != {w!r}"
            assert g == w, f"{name}: {g!r} != {w!r}"


@pytest.mark.parametrize("row", [ROW1, ROW2, ROW_NULLS], ids=["values", "edges", "nulls"])
def test_prepared_insert_then_prepared_select(ptable, row: tuple) -> None:
    ptable.execute(SELECT, (row[0],))
    got = ptable.fetchall()
    assert len(got) == 1
    _check_row(got[0], row)


@pytest.mark.parametrize("row", [ROW1, ROW2, ROW_NULLS], ids=["values", "edges", "nulls"])
def test_prepared_insert_read_back_over_text_protocol(ptable, conn, row: tuple) -> None:
    """What the binary parameters stored, as the text protocol (pymysql) sees it."""
    with conn.cursor() as cur:
        cur.execute(SELECT.replace("%s", str(row[0])))
        got = cur.fetchone()
    _check_row(got, row)


def test_binary_result_column_types(ptable) -> None:
    ptable.execute(SELECT, (1,))
    ptable.fetchall()
    types = {d[0]: d[1] for d in ptable.description}
    assert types == {
        "id": FieldType.LONG, "i": FieldType.LONG, "bi": FieldType.LONGLONG,
        "ubi": FieldType.LONGLONG, "f": FieldType.DOUBLE, "d": FieldType.NEWDECIMAL,
        "s": FieldType.VAR_STRING, "t": FieldType.BLOB, "b": FieldType.BLOB,
        "dt": FieldType.DATE, "ts": FieldType.DATETIME, "ts6": FieldType.DATETIME,
        "v": FieldType.LONG_BLOB,
    }


@pytest.mark.parametrize("column,value", [
    ("i", 42), ("i", -1), ("bi", -9223372036854775808), ("bi", 9223372036854775807),
    ("ubi", 18446744073709551615), ("f", 3.141592653589793), ("d", Decimal("-12345678901234.123456")),
    ("d", Decimal("0.000001")), ("s", TRICKY), ("s", ""), ("t", "text with 'quotes' and \\"),
    ("b", b"\x00\x01\x02\xff\x27\x5c\x22 binary"), ("dt", datetime.date(2024, 2, 29)),
    ("ts", datetime.datetime(2023, 12, 31, 23, 59, 58)),
    ("ts6", datetime.datetime(2001, 2, 3, 4, 5, 6, 789012)),
])
def test_where_param_of_each_type(ptable, column: str, value: Any) -> None:
    ptable.execute(f"SELECT id FROM p WHERE {column} = %s", (value,))
    ids = [r[0] for r in ptable.fetchall()]
    want = [r[0] for r in (ROW1, ROW2) if r[COLUMNS.index(column)] == value]
    assert ids == want


def test_max_datetime6(pcur, conn) -> None:
    """'9999-12-31 23:59:59.999999' is the largest DATETIME(6); it must be
    stored exactly (no rounding into year 10000), whether it arrives as text
    or as a binary DATETIME parameter. (ROW2 covers the microsecond of a
    value far from 1970: 1000-01-01 00:00:00.000001.)"""
    top = datetime.datetime(9999, 12, 31, 23, 59, 59, 999999)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE m (id INT PRIMARY KEY, ts6 DATETIME(6))")
        cur.execute("INSERT INTO m VALUES (1, '9999-12-31 23:59:59.999999')")
    pcur.execute("INSERT INTO m VALUES (%s, %s)", (2, top))
    with conn.cursor() as cur:
        cur.execute("SELECT id, ts6 FROM m ORDER BY id")
        assert cur.fetchall() == ((1, top), (2, top))
    pcur.execute("SELECT ts6 FROM m WHERE id = %s", (2,))
    assert pcur.fetchall() == [(top,)]


def test_vector_column_compared_with_string_param(ptable) -> None:
    """TiDB compares a VECTOR with a vector-text string by casting the string
    to VECTOR (`WHERE v = '[1,2,3]'`); here the string is a STRING parameter."""
    ptable.execute("SELECT id FROM p WHERE v = %s", ("[1,2,3]",))
    assert [r[0] for r in ptable.fetchall()] == [1]


def test_null_param_in_where(ptable) -> None:
    ptable.execute("SELECT id FROM p WHERE i <=> %s", (None,))
    assert [r[0] for r in ptable.fetchall()] == [3]
    ptable.execute("SELECT id FROM p WHERE i = %s", (None,))
    assert ptable.fetchall() == []
    ptable.execute("SELECT id FROM p WHERE %s IS NULL AND id = 1", (None,))
    assert [r[0] for r in ptable.fetchall()] == [1]


@pytest.mark.parametrize("value,want_type", [
    (7, int), (-7, int), (0, int), (18446744073709551615, int), (-9223372036854775808, int),
    (2.5, float), (-1e300, float),
    (Decimal("123.450"), Decimal), (Decimal("-0.5"), Decimal),
    ("o'neil \\ \"x\" ✓", str), (None, type(None)),
    (datetime.date(2020, 1, 31), datetime.date),
    (datetime.datetime(2020, 1, 31, 12, 0, 1), datetime.datetime),
    (datetime.datetime(2020, 1, 31, 12, 0, 1, 500), datetime.datetime),
])
def test_select_param_echo(pcur, value: Any, want_type: type) -> None:
    """SELECT ? returns the parameter with a type matching what was sent."""
    pcur.execute("SELECT %s", (value,))
    (got,) = pcur.fetchone()
    assert type(got) is want_type, f"sent {value!r}, got {got!r}"
    assert got == value


def test_select_param_echo_bytes(pcur) -> None:
    payload = b"\x00\xff\x01'\\"
    pcur.execute("SELECT %s", (payload,))
    (got,) = pcur.fetchone()
    # mysql-connector sends bytes as MYSQL_TYPE_STRING; the bytes must survive
    got = got.encode("latin-1") if isinstance(got, str) else bytes(got)
    assert got == payload


def test_params_in_expressions(pcur) -> None:
    pcur.execute("SELECT %s + %s, %s * 2, CONCAT(%s, %s), LENGTH(%s), %s < %s",
                 (1, 2, Decimal("1.25"), "a'", "b\\", "ünï", 3, 10))
    got = pcur.fetchone()
    assert got[0] == 3
    assert got[1] == Decimal("2.50")
    assert got[2] == "a'b\\"
    assert got[3] == len("ünï".encode())
    assert got[4] == 1


def test_reexecute_same_statement(mc, conn) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE r (id INT PRIMARY KEY, s VARCHAR(20))")
    cur = mc.cursor(prepared=True)
    sql = "INSERT INTO r (id, s) VALUES (%s, %s)"
    for i in range(10):
        cur.execute(sql, (i, f"s{i}"))
    cur.executemany(sql, [(100 + i, None if i % 2 else f"m{i}") for i in range(5)])
    for i in (0, 5, 9, 100, 101):
        cur.execute("SELECT s FROM r WHERE id = %s", (i,))
        assert cur.fetchall() == [({0: "s0", 5: "s5", 9: "s9", 100: "m0", 101: None}[i],)]
    cur.execute("SELECT COUNT(*) FROM r")
    assert cur.fetchone() == (15,)
    cur.close()


def test_prepared_update_delete_rowcount_and_lastrowid(mc, conn) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE a (id INT PRIMARY KEY AUTO_INCREMENT, n INT)")
    cur = mc.cursor(prepared=True)
    cur.execute("INSERT INTO a (n) VALUES (%s)", (10,))
    assert cur.lastrowid == 1
    cur.execute("INSERT INTO a (n) VALUES (%s), (%s)", (20, 30))
    assert cur.rowcount == 2
    assert cur.lastrowid == 2  # first id of the multi-row insert, as in MySQL
    cur.execute("UPDATE a SET n = n + %s WHERE n >= %s", (1, 20))
    assert cur.rowcount == 2
    cur.execute("DELETE FROM a WHERE id = %s", (1,))
    assert cur.rowcount == 1
    cur.execute("SELECT id, n FROM a ORDER BY id")
    assert cur.fetchall() == [(2, 21), (3, 31)]
    cur.close()


def test_vector_params(mc, conn) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE vt (id INT PRIMARY KEY, v VECTOR(3))")
    cur = mc.cursor(prepared=True)
    rows = [(1, "[3,1,0]"), (2, "[1,2,4]"), (3, "[1,2,3]")]
    for r in rows:
        cur.execute("INSERT INTO vt (id, v) VALUES (%s, %s)", r)
    cur.execute("SELECT v FROM vt WHERE id = %s", (2,))
    (v,) = cur.fetchone()
    assert isinstance(v, str) and v == "[1,2,4]"
    cur.execute("SELECT id, VEC_COSINE_DISTANCE(v, %s) AS d FROM vt ORDER BY d LIMIT %s",
                ("[1,2,3]", 2))
    got = cur.fetchall()
    assert [r[0] for r in got] == [3, 2]
    assert isinstance(got[0][1], float) and got[0][1] == pytest.approx(0.0, abs=1e-6)
    assert cur.description[1][1] == FieldType.DOUBLE
    cur.execute("SELECT VEC_L2_DISTANCE(%s, %s)", ("[0,0,0]", "[3,4,0]"))
    assert cur.fetchone()[0] == pytest.approx(5.0)
    cur.close()


def test_prepare_errors(mc, conn) -> None:
    cur = mc.cursor(prepared=True)
    with pytest.raises(mc_errors.Error) as info:
        cur.execute("SELEC %s", (1,))
    assert info.value.errno == 1064 and info.value.sqlstate == "42000"
    with pytest.raises(mc_errors.Error) as info:
        cur.execute("SELECT * FROM no_such_table WHERE id = %s", (1,))
    assert info.value.errno == 1146 and info.value.sqlstate == "42S02"
    with conn.cursor() as c:
        c.execute("CREATE TABLE u (id INT PRIMARY KEY)")
    cur = mc.cursor(prepared=True)
    cur.execute("INSERT INTO u VALUES (%s)", (1,))
    with pytest.raises(mc_errors.IntegrityError) as info:
        cur.execute("INSERT INTO u VALUES (%s)", (1,))
    assert info.value.errno == 1062 and info.value.sqlstate == "23000"
    # the connection still works after the errors
    cur = mc.cursor(prepared=True)
    cur.execute("SELECT COUNT(*) FROM u WHERE id = %s", (1,))
    assert cur.fetchone() == (1,)
    cur.close()


def test_prepared_transaction(mc, conn) -> None:
    with conn.cursor() as c:
        c.execute("CREATE TABLE tx (id INT PRIMARY KEY)")
    mc.autocommit = False
    cur = mc.cursor(prepared=True)
    cur.execute("INSERT INTO tx VALUES (%s)", (1,))
    mc.rollback()
    cur.execute("INSERT INTO tx VALUES (%s)", (2,))
    mc.commit()
    cur.execute("SELECT id FROM tx")
    assert cur.fetchall() == [(2,)]
    mc.commit()
    cur.close()
