"""A statement that fails never commits or ends the open transaction.

For every kind of failing statement (parse errors, unknown tables and columns, key and foreign-key
violations, type errors, unsupported statements, unknown savepoints, bad variables, runtime
errors), run inside an explicit transaction that has already written a row:
- the failing statement answers an error;
- another session still does not see the transaction's row (nothing was committed);
- the transaction is still open: its own row is visible to it, a later write joins it, and a
  ROLLBACK removes both.
MySQL's implicit commit belongs to DDL only, which is not in this list.
"""

from __future__ import annotations

import pymysql
import pytest

from conftest import connect

FAILING = [
    "SELEC 1",
    "SELECT * FROM no_such_table",
    "SELECT no_such_column FROM t",
    "INSERT INTO t VALUES (1, 'dup', NULL)",
    "INSERT INTO t VALUES (50, 'x', 999)",
    "INSERT INTO t (id, v) VALUES (51, REPEAT('x', 100))",
    "INSERT INTO t (id, v) VALUES ('not a number', 'x')",
    "UPDATE t SET id = NULL WHERE id = 1",
    "DELETE FROM parent WHERE id = 1",
    "CREATE SEQUENCE s1",
    "ROLLBACK TO SAVEPOINT never_set",
    "RELEASE SAVEPOINT never_set",
    "SET @@no_such_variable = 1",
    "SELECT JSON_EXTRACT('{', '$.a')",
    "SELECT 1 FROM t WHERE id = (SELECT id FROM t)",
    "KILL 999999",
]


@pytest.fixture
def tables(conn: pymysql.Connection) -> pymysql.Connection:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE parent (id INT PRIMARY KEY)")
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10), pid INT, FOREIGN KEY (pid) REFERENCES parent (id))")
        cur.execute("INSERT INTO parent VALUES (1)")
        cur.execute("INSERT INTO t VALUES (1, 'one', 1), (2, 'two', NULL)")
    return conn


@pytest.mark.parametrize("stmt", FAILING)
def test_failing_statement_leaves_the_transaction_open(tables: pymysql.Connection, embedb_server, db: str, stmt: str) -> None:
    conn = tables
    other = connect(*embedb_server, database=db)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("INSERT INTO t VALUES (10, 'mine', NULL)")
            with pytest.raises(pymysql.MySQLError):
                cur.execute(stmt)
                cur.fetchall()
            with other.cursor() as o:
                o.execute("SELECT COUNT(*) FROM t WHERE id = 10")
                assert o.fetchone()[0] == 0, f"{stmt!r} committed the open transaction"
            cur.execute("SELECT COUNT(*) FROM t WHERE id = 10")
            assert cur.fetchone()[0] == 1, f"{stmt!r} ended the open transaction"
            cur.execute("INSERT INTO t VALUES (11, 'later', NULL)")
            cur.execute("ROLLBACK")
            cur.execute("SELECT COUNT(*) FROM t WHERE id IN (10, 11)")
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT COUNT(*) FROM t")
            assert cur.fetchone()[0] == 2, "the failing statement changed committed rows"
    finally:
        other.close()
