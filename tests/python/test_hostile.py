"""Hostile input (issue 18): no statement, packet or connection pattern may take the server down.

* Each input that once crashed or wedged the server is a regression test here: after it, the
  same server still answers every connection.
* A bounded fuzz run mutates the golden scripts' statements (``tests/sql/*.test``) and adds
  hostile literals and malformed packets; the server must answer each with a result or an error
  and stay up. The seed is printed, so a failure can be replayed with ``EMBEDB_FUZZ_SEED``.
* ``max_connections`` refuses the connection over the limit with 1040, as MySQL does.
* Model names from SQL never reach outside the model directory, and say nothing about files.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import time
from pathlib import Path

import pymysql
import pytest

from conftest import assert_serves, connect

TESTS_DIR = Path(__file__).resolve().parent.parent


def alive(server) -> None:
    """The server answers a new connection (it did not crash or wedge)."""
    assert_serves(*server, read_timeout=30)


def run(server, sql: str, db: str | None = None):
    """Run one statement on a fresh connection: ('ok', rows) or ('err', code)."""
    c = connect(*server, database=db, read_timeout=60)
    try:
        with c.cursor() as cur:
            cur.execute(sql)
            return "ok", cur.fetchall()
    except pymysql.MySQLError as e:
        return "err", e.args[0]
    finally:
        c.close()


# ---- inputs that crashed or wedged the server ------------------------------------------------

def chain(n: int, op: str) -> str:
    return "SELECT " + op.join(["1"] * n)


CRASHERS = [
    # a flat expression overflowed the stack (the whole server aborted)
    ("sum of 1000", chain(1000, "+"), ("ok", ((1000,),))),
    ("sum of 100000", chain(100_000, "+"), ("err", 1436)),
    ("OR chain of 100000", "SELECT 1 FROM dual WHERE " + " OR ".join(["1=1"] * 100_000), ("err", 1436)),
    ("unary minus x 100000", "SELECT " + "- " * 100_000 + "1", ("err", 1436)),
    ("NOT x 100000", "SELECT " + "NOT " * 100_000 + "1", ("err", 1436)),
    ("parentheses x 100000", "SELECT " + "(" * 100_000 + "1" + ")" * 100_000, ("err", 1436)),
    ("nested calls x 100000", "SELECT " + "ABS(" * 100_000 + "1" + ")" * 100_000, ("err", 1436)),
    ("UNION chain of 50000", " UNION ".join(["SELECT 1"] * 50_000), ("err", 1436)),
    # nested scalar subqueries planned in time doubling per level (a wedged core)
    ("subqueries x 49", "SELECT " + "(SELECT " * 49 + "1" + ")" * 49, ("err", 1473)),
    ("derived tables x 49", "SELECT * FROM " + "(SELECT * FROM " * 49 + "(SELECT 1 AS x) t0" + ") t" * 49, ("err", 1473)),
    # still fine: long lists are not deep
    ("IN list of 100000", "SELECT 7 IN (" + ",".join(map(str, range(100_000))) + ")", ("ok", ((1,),))),
    ("parentheses x 200", "SELECT " + "(" * 200 + "1" + ")" * 200, ("ok", ((1,),))),
    ("subqueries x 12", "SELECT " + "(SELECT " * 12 + "1" + ")" * 12, ("ok", ((1,),))),
]


@pytest.mark.parametrize("sql,expected", [pytest.param(s, e, id=name) for name, s, e in CRASHERS])
def test_deep_statements_get_an_error_not_a_crash(embedb_server, sql, expected):
    assert run(embedb_server, sql) == expected
    alive(embedb_server)


def test_hostile_literals(embedb_server, db):
    c = connect(*embedb_server, database=db)
    with c.cursor() as cur:
        cur.execute("CREATE TABLE h (id BIGINT PRIMARY KEY, s VARCHAR(10), j JSON, v VECTOR(3), d DECIMAL(10,2), t DATETIME)")
        bad = [
            "INSERT INTO h (id) VALUES (99999999999999999999999999999)",
            "INSERT INTO h (id, s) VALUES (1, REPEAT('x', 1000))",
            "INSERT INTO h (id, j) VALUES (2, '" + "[" * 100_000 + "]" * 100_000 + "')",
            "INSERT INTO h (id, v) VALUES (3, '[" + ",".join(["1"] * 100_000) + "]')",
            "INSERT INTO h (id, v) VALUES (4, '[nan, inf, 1]')",
            "INSERT INTO h (id, d) VALUES (5, 1e308)",
            "INSERT INTO h (id, t) VALUES (6, '99999-99-99 99:99:99')",
            "SELECT JSON_EXTRACT('" + "[" * 100_000 + "]" * 100_000 + "', '$')",
            "SELECT REPEAT('x', 1 << 62)",
            "SELECT LPAD('x', 1 << 40, 'y')",
            "SELECT VEC_FROM_TEXT('[" + "1," * 20000 + "1]')",
            "SELECT 'a' REGEXP '" + "(" * 5000 + "a" + ")" * 5000 + "'",
            "SELECT CAST('\x00\x01' AS SIGNED)",
            "SELECT * FROM h LIMIT 18446744073709551615 OFFSET 18446744073709551615",
        ]
        outcomes = []
        for sql in bad:
            try:
                cur.execute(sql)
                cur.fetchall()
                outcomes.append("ok")
            except pymysql.MySQLError as e:
                outcomes.append(e.args[0])
        # Every one ends in a result or a MySQL error on the same connection; nothing is half-done.
        assert all(o == "ok" or isinstance(o, int) for o in outcomes), outcomes
        cur.execute("SELECT COUNT(*) FROM h WHERE id IN (1, 2, 3, 4)")
        assert cur.fetchone() == (0,)
    c.close()
    alive(embedb_server)


# ---- fuzz -------------------------------------------------------------------------------------

def golden_statements() -> list[str]:
    out = []
    for f in sorted((TESTS_DIR / "sql").glob("*.test")):
        text = "\n".join(l for l in f.read_text().splitlines() if not l.startswith(("#", "--")))
        out += [s.strip() for s in text.split(";\n") if s.strip()]
    return out


HOSTILE = ["NULL", "''", "'\\'", "0x", "-9223372036854775809", "18446744073709551616", "1e400", "'\x00'",
           "'" + "é" * 3000 + "'", "(SELECT 1 UNION SELECT 2)", "@@nope", "@x", "?", "`", "/*", "*/", "'[1,2'",
           "CAST(1 AS VECTOR(0))", "REPEAT('a', 100000)", "-- ", "#", "\\N", "DEFAULT", "*", "()", ",", ";"]


def mutate(rng: random.Random, stmt: str) -> str:
    toks = stmt.split(" ")
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(6)
        i = rng.randrange(len(toks))
        if k == 0:
            toks[i] = rng.choice(HOSTILE)
        elif k == 1:
            del toks[i]
            if not toks:
                toks = ["SELECT"]
        elif k == 2:
            toks.insert(i, rng.choice(toks))
        elif k == 3:
            j = rng.randrange(len(toks))
            toks[i], toks[j] = toks[j], toks[i]
        elif k == 4:
            toks = toks[: i + 1]
        else:
            toks[i] = toks[i][: rng.randrange(len(toks[i]) + 1)]
    return " ".join(toks)


def test_fuzz_statements_never_crash(private_server):
    # A server of its own: mutated statements may SET GLOBAL, create users or drop databases.
    embedb_server, db = private_server.address, "test"
    seed = int(os.environ.get("EMBEDB_FUZZ_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"fuzz seed {seed}")
    stmts = golden_statements()
    assert len(stmts) > 200
    c = connect(*embedb_server, database=db, read_timeout=60)
    budget = time.monotonic() + 60
    tried = errors = 0
    while tried < 1500 and time.monotonic() < budget:
        sql = mutate(rng, rng.choice(stmts))
        tried += 1
        try:
            with c.cursor() as cur:
                cur.execute(sql)
                cur.fetchall()
        except pymysql.err.OperationalError as e:
            if e.args[0] in (2006, 2013, 2014):
                pytest.fail(f"seed {seed}: the connection died on: {sql[:500]!r}: {e}")
            errors += 1
        except pymysql.MySQLError:
            errors += 1
        except (UnicodeError, ValueError):
            # pymysql refused to send it; nothing reached the server
            c.close()
            c = connect(*embedb_server, database=db, read_timeout=60)
    c.close()
    print(f"fuzz: {tried} statements, {errors} errors")
    assert tried >= 200
    alive(embedb_server)


def packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def test_fuzz_packets_never_crash(embedb_server):
    """Garbage before and after the handshake, truncated and oversized headers, and every command
    byte with random bodies, on raw sockets."""
    seed = int(os.environ.get("EMBEDB_FUZZ_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"fuzz seed {seed}")
    host, port = embedb_server
    for round_ in range(150):
        s = socket.create_connection((host, port), timeout=10)
        try:
            s.recv(4096)  # the greeting
            kind = round_ % 3
            if kind == 0:
                s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
            elif kind == 1:
                # a declared length far beyond what follows, then silence
                s.sendall(struct.pack("<I", rng.randrange(1 << 24))[:3] + b"\x01" + b"\x00" * rng.randrange(40))
            else:
                # a login response of random bytes (capabilities, user, auth data, attributes)
                s.sendall(packet(1, bytes(rng.randrange(256) for _ in range(rng.randrange(4, 120)))))
            s.settimeout(0.1)
            try:
                s.recv(4096)
            except (socket.timeout, ConnectionError):
                pass
        finally:
            s.close()
    alive(embedb_server)
    # Commands after a real login, on a real session: every command byte with a random body.
    c = connect(host, port)
    sock = c._sock
    for cmd in range(256):
        if cmd == 0x01:  # COM_QUIT would just end it
            continue
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        try:
            sock.sendall(packet(0, bytes([cmd]) + body))
            sock.settimeout(1)
            sock.recv(65536)
        except (socket.timeout, ConnectionError, OSError):
            c = connect(host, port)
            sock = c._sock
    alive(embedb_server)


# ---- connections ------------------------------------------------------------------------------

def test_max_connections_refuses_with_1040(private_server):
    host, port = private_server.address
    admin = connect(host, port)
    with admin.cursor() as cur:
        cur.execute("SELECT @@max_connections")
        assert str(cur.fetchone()[0]) == "0"
        with pytest.raises(pymysql.MySQLError) as e:
            cur.execute("SET SESSION max_connections = 3")
        assert e.value.args[0] == 1229
        cur.execute("SET GLOBAL max_connections = 3")
    more = [connect(host, port), connect(host, port)]
    with pytest.raises(pymysql.err.OperationalError) as e:
        connect(host, port)
    assert e.value.args[0] == 1040
    more.pop().close()
    time.sleep(0.2)
    again = connect(host, port)
    with again.cursor() as cur:
        cur.execute("SET GLOBAL max_connections = 0")
    for c in [again, admin, *more]:
        c.close()
    extra = [connect(host, port) for _ in range(6)]
    for c in extra:
        c.close()


# ---- model names --------------------------------------------------------------------------------

def test_model_names_stay_inside_the_model_directory(embedb_server):
    def error_of(model: str) -> tuple[int, str]:
        c = connect(*embedb_server)
        try:
            with c.cursor() as cur:
                cur.execute(f"SELECT EMBED_TEXT('{model}', 'x')")
        except pymysql.MySQLError as e:
            return e.args[0], e.args[1]
        finally:
            c.close()
        raise AssertionError(model)

    for bad in ["local/../../../../etc", "local//etc/passwd", "local/..", "huggingface/../../../x",
                "openai/a?b=c", "jina_ai/x#y", "local/.hidden"]:
        code, msg = error_of(bad)
        assert "invalid model name" in msg, (bad, msg)
        # It names what was asked for and nothing that exists on the server.
        assert "/etc" not in msg.replace(bad.split("/", 1)[1], ""), msg
    # A missing model and one whose folder would exist elsewhere say the same thing.
    _, missing = error_of("local/no-such-model")
    assert "unknown model" in missing and "no-such-model" in missing


# ---- status --------------------------------------------------------------------------------------

def test_status_counters_and_process_list_are_live(private_server):
    host, port = private_server.address
    a, b = connect(host, port, database="test"), connect(host, port, database="test")
    status = lambda cur: dict(cur.fetchall())
    with a.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS")
        before = status(cur)
        for _ in range(5):
            cur.execute("SELECT 1")
        cur.execute("SHOW STATUS LIKE 'Com_select'")
        assert int(status(cur)["Com_select"]) >= int(before["Com_select"]) + 5
        cur.execute("SHOW GLOBAL STATUS")
        after = status(cur)
        assert int(after["Questions"]) >= int(before["Questions"]) + 6
        assert int(after["Threads_connected"]) == 2
        assert int(after["Connections"]) >= 2
        cur.execute("SHOW FULL PROCESSLIST")
        rows = cur.fetchall()
        assert {r[0] for r in rows} >= {a.thread_id(), b.thread_id()}
        mine = [r for r in rows if r[0] == a.thread_id()][0]
        assert mine[4] == "Query" and mine[7] == "SHOW FULL PROCESSLIST"
        cur.execute("SELECT ID, COMMAND FROM information_schema.PROCESSLIST WHERE ID = %s", (b.thread_id(),))
        assert cur.fetchall() == ((b.thread_id(), "Sleep"),)
    a.close()
    b.close()
