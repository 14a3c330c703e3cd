"""Temporary tables (issue 20): `CREATE TEMPORARY TABLE` is private to its session, hides a
permanent table of the same name there only, and is gone when the session ends — checked with
two real connections to one server.
"""

from __future__ import annotations

import pymysql
import pytest

from conftest import connect


def rows(conn: pymysql.Connection, sql: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def test_a_temporary_table_is_private_and_ends_with_its_session(embedb_server, db) -> None:
    a = connect(*embedb_server, db)
    b = connect(*embedb_server, db)
    rows(a, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
    rows(a, "INSERT INTO t VALUES (1, 'permanent')")
    rows(a, "CREATE TEMPORARY TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
    rows(a, "CREATE TEMPORARY TABLE scratch (k INT PRIMARY KEY, n INT)")
    rows(a, "INSERT INTO t VALUES (2, 'temporary')")
    rows(a, "INSERT INTO scratch SELECT id, 10 * id FROM t")
    # Session a sees its own; b sees the permanent table and nothing of a's.
    assert rows(a, "SELECT id, v FROM t") == [(2, "temporary")]
    assert rows(a, "SELECT k, n FROM scratch") == [(2, 20)]
    assert rows(b, "SELECT id, v FROM t") == [(1, "permanent")]
    with pytest.raises(pymysql.MySQLError) as e:
        rows(b, "SELECT * FROM scratch")
    assert e.value.args[0] == 1146
    # Not listed anywhere.
    assert rows(a, "SHOW TABLES") == [("t",)]
    assert rows(b, f"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}'") == [(1,)]
    # Transactions work on it; errors name it as written.
    rows(a, "BEGIN")
    rows(a, "UPDATE scratch SET n = n + 1")
    rows(a, "ROLLBACK")
    assert rows(a, "SELECT n FROM scratch") == [(20,)]
    with pytest.raises(pymysql.MySQLError) as e:
        rows(a, "INSERT INTO scratch VALUES (2, 0)")
    assert e.value.args[0] == 1062 and "\x01" not in e.value.args[1]
    # DROP TEMPORARY TABLE drops only a temporary one; then the permanent t shows again.
    with pytest.raises(pymysql.MySQLError) as e:
        rows(b, "DROP TEMPORARY TABLE t")
    assert e.value.args[0] == 1051
    rows(a, "DROP TEMPORARY TABLE t")
    assert rows(a, "SELECT id, v FROM t") == [(1, "permanent")]
    # Gone with the session.
    a.close()
    c = connect(*embedb_server, db)
    for _ in range(50):
        try:
            rows(c, "SELECT * FROM scratch")
        except pymysql.MySQLError as e:
            assert e.args[0] == 1146
            break
        import time
        time.sleep(0.1)
    else:
        pytest.fail("the temporary table outlived its session")
    b.close()
    c.close()
