"""Users and privileges (issue 18): accounts made with CREATE USER log in with their password
(kept hashed), hold exactly what GRANT gave them, get MySQL's error for everything else — and
a denied statement changes nothing. Grants survive a restart; KILL of another user's
connection is refused; locked accounts and per-account connection limits hold.

Everything runs over TCP against a server of the test's own, as root (the bootstrap user) and
as the accounts root creates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pymysql
import pytest

from conftest import connect

PASSWORD = "Pw-for-bob-7f3a"


def code_of(fn: Callable[[], object]) -> int:
    with pytest.raises(pymysql.MySQLError) as e:
        fn()
    return e.value.args[0]


def rows(conn: pymysql.Connection, sql: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def run(conn: pymysql.Connection, sql: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql)


def setup_as_root(root: pymysql.Connection) -> None:
    for sql in [
        "CREATE DATABASE app",
        "CREATE DATABASE other",
        "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))",
        "CREATE TABLE app.secret (id INT PRIMARY KEY, s TEXT)",
        "CREATE TABLE other.o (id INT PRIMARY KEY)",
        "INSERT INTO app.t VALUES (1, 'one'), (2, 'two')",
        "INSERT INTO app.secret VALUES (1, 'hidden')",
        f"CREATE USER 'bob'@'%' IDENTIFIED BY '{PASSWORD}'",
        "GRANT SELECT ON app.t TO 'bob'@'%'",
    ]:
        run(root, sql)


def test_each_statement_family_needs_its_privilege(private_server) -> None:
    host, port = private_server.address
    root = connect(host, port)
    setup_as_root(root)

    assert code_of(lambda: connect(host, port, user="bob", password="wrong")) == 1045
    assert code_of(lambda: connect(host, port, user="nobody", password="")) == 1045
    bob = connect(host, port, "app", user="bob", password=PASSWORD)
    assert rows(bob, "SELECT CURRENT_USER()") == [("bob@%",)]

    # What the grant allows.
    assert rows(bob, "SELECT id, v FROM t ORDER BY id") == [(1, "one"), (2, "two")]
    assert rows(bob, "SELECT COUNT(*) FROM app.t WHERE id = 1") == [(1,)]

    # Each family without its privilege: MySQL's code, and nothing changed.
    denied = {
        "SELECT * FROM secret": 1142,
        "SELECT * FROM t JOIN secret USING (id)": 1142,
        "SELECT * FROM t WHERE id IN (SELECT id FROM other.o)": 1142,
        "SELECT * FROM nonexistent": 1142,
        "INSERT INTO t VALUES (3, 'three')": 1142,
        "REPLACE INTO t VALUES (1, 'uno')": 1142,
        "UPDATE t SET v = 'x' WHERE id = 1": 1142,
        "DELETE FROM t WHERE id = 1": 1142,
        "CREATE TABLE app.n (id INT PRIMARY KEY)": 1142,
        "CREATE TABLE app.n2 AS SELECT * FROM t": 1142,
        "DROP TABLE t": 1142,
        "TRUNCATE TABLE t": 1142,
        "ALTER TABLE t ADD COLUMN w INT": 1142,
        "CREATE INDEX iv ON t (v)": 1142,
        "CREATE VIEW vv AS SELECT * FROM t": 1142,
        "CREATE DATABASE z": 1044,
        "DROP DATABASE app": 1044,
        "USE other": 1044,
        "SHOW CREATE TABLE secret": 1142,
        "SHOW COLUMNS FROM secret": 1142,
        "SHOW TABLES FROM other": 1044,
        "SELECT * FROM mysql.user": 1142,
        "SET GLOBAL TIDB_EXP_EMBED_JINA_AI_API_KEY = 'k'": 1227,
        "SET GLOBAL max_connections = 5": 1227,
        "CREATE USER eve": 1227,
        "DROP USER root": 1227,
        "GRANT SELECT ON app.* TO bob": 1044,
        "GRANT SELECT ON app.t TO bob": 1142,
        "SHOW GRANTS FOR root": 1044,
        "PREPARE p FROM 'INSERT INTO t VALUES (9, ''nine'')'": 1142,
        "PREPARE p FROM 'SELECT * FROM t'": None,
        "EXECUTE p": None,
    }
    for sql, code in denied.items():
        if code is None:
            run(bob, sql)
            continue
        got = code_of(lambda: run(bob, sql))
        assert got == code, f"{sql}: {got}"
    with bob.cursor() as cur:
        with pytest.raises(pymysql.MySQLError) as e:
            cur.execute("INSERT INTO t VALUES (3, 'three')")
        assert e.value.args[1] == "INSERT command denied to user 'bob'@'%' for table 't'"
    assert rows(root, "SELECT id, v FROM app.t ORDER BY id") == [(1, "one"), (2, "two")]
    assert rows(root, "SHOW TABLES FROM app") == [("secret",), ("t",)]
    assert code_of(lambda: connect(host, port, "other", user="bob", password=PASSWORD)) == 1044

    # Listings show only what the account holds something on.
    dbs = {r[0] for r in rows(bob, "SHOW DATABASES")}
    assert "app" in dbs and "other" not in dbs and "mysql" not in dbs
    assert rows(bob, "SHOW TABLES") == [("t",)]
    assert rows(bob, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('app', 'other')") == [("t",)]
    assert rows(bob, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_NAME = 'secret'") == [(0,)]
    assert rows(bob, "SHOW GRANTS") == [("GRANT USAGE ON *.* TO 'bob'@'%'",), ("GRANT SELECT ON `app`.`t` TO 'bob'@'%'",)]

    # A database-level grant reaches every table in it, at once, for the open session.
    run(root, "GRANT INSERT, UPDATE ON app.* TO 'bob'@'%'")
    run(bob, "INSERT INTO t VALUES (3, 'three')")
    run(bob, "UPDATE t SET v = 'TWO' WHERE id = 2")
    assert code_of(lambda: run(bob, "SELECT * FROM secret")) == 1142
    assert code_of(lambda: run(bob, "DELETE FROM t")) == 1142
    run(root, "REVOKE INSERT ON app.* FROM bob")
    assert code_of(lambda: run(bob, "INSERT INTO t VALUES (4, 'four')")) == 1142
    assert code_of(lambda: run(root, "REVOKE DELETE ON app.* FROM bob")) == 1141

    # Admin privileges, granted.
    run(root, "GRANT SYSTEM_VARIABLES_ADMIN ON *.* TO bob")
    run(bob, "SET GLOBAL max_connections = 500")
    run(root, "GRANT SELECT ON mysql.* TO bob")
    users = rows(bob, "SELECT User, Host, authentication_string FROM mysql.user ORDER BY User")
    assert [u[:2] for u in users] == [("bob", "%"), ("root", "%")]
    assert users[0][2].startswith("*") and PASSWORD not in users[0][2]
    bob.close()
    root.close()


def test_grants_and_passwords_survive_a_restart(private_server, restart_server) -> None:
    host, port = private_server.address
    root = connect(host, port)
    setup_as_root(root)
    run(root, "GRANT DELETE ON app.t TO bob")
    run(root, "CREATE USER carol@'%' IDENTIFIED BY 'c-pass'")
    run(root, "DROP USER carol")
    root.close()

    host, port = restart_server(private_server)  # kill -9 and start again
    bob = connect(host, port, "app", user="bob", password=PASSWORD)
    assert rows(bob, "SHOW GRANTS") == [("GRANT USAGE ON *.* TO 'bob'@'%'",),
                                        ("GRANT SELECT, DELETE ON `app`.`t` TO 'bob'@'%'",)]
    run(bob, "DELETE FROM t WHERE id = 2")
    assert code_of(lambda: run(bob, "INSERT INTO t VALUES (5, 'five')")) == 1142
    assert code_of(lambda: connect(host, port, user="carol", password="c-pass")) == 1045
    # Own password change, then the old one no longer works.
    run(bob, "SET PASSWORD = 'new-pass'")
    bob.close()
    assert code_of(lambda: connect(host, port, user="bob", password=PASSWORD)) == 1045
    connect(host, port, user="bob", password="new-pass").close()

    # No password is in the data directory in clear.
    data = Path(private_server.data_dir)
    for f in data.rglob("*"):
        if f.is_file():
            blob = f.read_bytes()
            assert PASSWORD.encode() not in blob and b"new-pass" not in blob, f


def test_kill_locks_and_connection_limits(private_server) -> None:
    host, port = private_server.address
    root = connect(host, port)
    setup_as_root(root)
    bob = connect(host, port, user="bob", password=PASSWORD)
    root_id = rows(root, "SELECT CONNECTION_ID()")[0][0]
    bob2 = connect(host, port, user="bob", password=PASSWORD)
    bob2_id = rows(bob2, "SELECT CONNECTION_ID()")[0][0]

    # Without PROCESS, the process list shows the account's own connections only.
    users = {r[1] for r in rows(bob, "SHOW PROCESSLIST")}
    assert users == {"bob"}
    assert {r[0] for r in rows(bob, "SELECT USER FROM information_schema.PROCESSLIST")} == {"bob"}
    assert code_of(lambda: run(bob, f"KILL {root_id}")) == 1095
    assert rows(root, "SELECT 1") == [(1,)]
    run(bob, f"KILL {bob2_id}")  # its own: allowed
    with pytest.raises(pymysql.MySQLError):
        rows(bob2, "SELECT 1")

    run(root, "GRANT CONNECTION_ADMIN ON *.* TO bob")
    victim = connect(host, port)
    victim_id = rows(victim, "SELECT CONNECTION_ID()")[0][0]
    run(bob, f"KILL {victim_id}")
    with pytest.raises(pymysql.MySQLError):
        rows(victim, "SELECT 1")
    bob.close()

    run(root, "ALTER USER bob ACCOUNT LOCK")
    assert code_of(lambda: connect(host, port, user="bob", password=PASSWORD)) == 3118
    run(root, "ALTER USER bob ACCOUNT UNLOCK WITH MAX_USER_CONNECTIONS 1")
    first = connect(host, port, user="bob", password=PASSWORD)
    assert code_of(lambda: connect(host, port, user="bob", password=PASSWORD)) == 1203
    first.close()
    root.close()


def test_account_statement_errors(private_server) -> None:
    host, port = private_server.address
    root = connect(host, port)
    setup_as_root(root)
    assert code_of(lambda: run(root, "CREATE USER bob")) == 1396
    run(root, "CREATE USER IF NOT EXISTS bob")
    assert rows(root, "SHOW WARNINGS")[0][1] == 3163
    assert code_of(lambda: run(root, "DROP USER nobody")) == 1396
    assert code_of(lambda: run(root, "GRANT SELECT ON app.t TO nobody")) == 1410
    assert code_of(lambda: run(root, "GRANT SELECT ON app.missing TO bob")) == 1146
    assert code_of(lambda: run(root, "GRANT SUPER ON app.* TO bob")) == 1221
    assert code_of(lambda: run(root, "SHOW GRANTS FOR nobody")) == 1141
    assert code_of(lambda: run(root, "CREATE TABLE mysql.x (id INT)")) == 3552
    assert rows(root, "SHOW CREATE USER bob")[0][0].startswith("CREATE USER 'bob'@'%' IDENTIFIED WITH 'mysql_native_password' AS '*")
    run(root, "RENAME USER bob TO robert")
    connect(host, port, user="robert", password=PASSWORD).close()
    root.close()
