"""Pessimistic transactions, TiDB's default (issue 20): a row written or selected FOR UPDATE by
one transaction makes another wait until the first ends; the wait ends with 1205 after
`innodb_lock_wait_timeout`; a deadlock is reported (1213) to one of the two; NOWAIT (3572) and
SKIP LOCKED do not wait; a waiter that resumes sees what the other transaction committed; and
`tidb_txn_mode = 'optimistic'` keeps the check at COMMIT (9007). Two or three real connections
to one server, with the waits run on threads.
"""

from __future__ import annotations

import threading
import time

import pymysql
import pytest

from conftest import connect


def q(conn: pymysql.Connection, sql: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def in_thread(fn):
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except Exception as e:  # noqa: BLE001 - handed to the test
            box["error"] = e
    t = threading.Thread(target=run)
    t.start()
    return t, box


@pytest.fixture
def two(embedb_server, db):
    a = connect(*embedb_server, db)
    b = connect(*embedb_server, db)
    q(a, "CREATE TABLE acct (id INT PRIMARY KEY, bal INT, tag VARCHAR(10))")
    q(a, "INSERT INTO acct VALUES (1, 100, 'a'), (2, 100, 'b'), (3, 100, 'c')")
    yield a, b
    a.close()
    b.close()


def test_a_locked_row_makes_the_writer_wait_and_then_see_the_commit(two) -> None:
    a, b = two
    q(a, "BEGIN")
    q(a, "UPDATE acct SET bal = bal - 30 WHERE id = 1")
    t, box = in_thread(lambda: q(b, "UPDATE acct SET bal = bal + 5 WHERE id = 1"))
    time.sleep(0.5)
    assert t.is_alive(), "the second writer must wait for the first transaction"
    q(a, "COMMIT")
    t.join(10)
    assert "error" not in box, box
    # The waiter read the committed 70, not its snapshot's 100: no lost update, no 9007.
    assert q(a, "SELECT bal FROM acct WHERE id = 1") == [(75,)]
    # Other rows were never locked.
    q(a, "BEGIN")
    q(a, "UPDATE acct SET bal = 0 WHERE id = 2")
    q(b, "UPDATE acct SET bal = 1 WHERE id = 3")
    q(a, "ROLLBACK")


def test_select_for_update_blocks_and_times_out(two) -> None:
    a, b = two
    q(b, "SET innodb_lock_wait_timeout = 1")
    q(a, "BEGIN")
    assert q(a, "SELECT bal FROM acct WHERE id = 2 FOR UPDATE") == [(100,)]
    started = time.monotonic()
    with pytest.raises(pymysql.MySQLError) as e:
        q(b, "UPDATE acct SET bal = 0 WHERE id = 2")
    assert e.value.args[0] == 1205 and time.monotonic() - started >= 0.9
    # The timed-out statement changed nothing, and b's transaction goes on.
    q(b, "BEGIN")
    q(b, "UPDATE acct SET bal = 1 WHERE id = 3")
    with pytest.raises(pymysql.MySQLError) as e:
        q(b, "SELECT * FROM acct WHERE id = 2 FOR UPDATE NOWAIT")
    assert e.value.args[0] == 3572
    assert q(b, "SELECT id FROM acct WHERE bal >= 0 ORDER BY id FOR UPDATE SKIP LOCKED") == [(1,), (3,)]
    q(b, "COMMIT")
    q(a, "COMMIT")
    assert q(a, "SELECT id, bal FROM acct ORDER BY id") == [(1, 100), (2, 100), (3, 1)]


def test_a_deadlock_is_reported_to_one_and_the_other_goes_on(two) -> None:
    a, b = two
    q(a, "BEGIN")
    q(b, "BEGIN")
    q(a, "UPDATE acct SET tag = 'a1' WHERE id = 1")
    q(b, "UPDATE acct SET tag = 'b2' WHERE id = 2")
    t, box = in_thread(lambda: q(a, "UPDATE acct SET tag = 'a2' WHERE id = 2"))
    time.sleep(0.3)
    with pytest.raises(pymysql.MySQLError) as e:
        q(b, "UPDATE acct SET tag = 'b1' WHERE id = 1")
    assert e.value.args[0] == 1213
    # b's transaction was rolled back, which let a go on.
    t.join(10)
    assert "error" not in box, box
    q(a, "COMMIT")
    assert q(a, "SELECT id, tag FROM acct ORDER BY id") == [(1, "a1"), (2, "a2"), (3, "c")]


def test_a_waiting_insert_of_the_same_key_sees_the_duplicate(two) -> None:
    a, b = two
    q(a, "BEGIN")
    q(a, "INSERT INTO acct VALUES (9, 1, 'x')")
    t, box = in_thread(lambda: q(b, "INSERT INTO acct VALUES (9, 2, 'y')"))
    time.sleep(0.3)
    assert t.is_alive()
    q(a, "COMMIT")
    t.join(10)
    assert isinstance(box.get("error"), pymysql.MySQLError) and box["error"].args[0] == 1062


def test_optimistic_mode_checks_at_commit(two) -> None:
    a, b = two
    for c in (a, b):
        q(c, "SET tidb_txn_mode = 'optimistic'")
    q(a, "BEGIN")
    q(a, "UPDATE acct SET bal = 1 WHERE id = 1")
    q(b, "UPDATE acct SET bal = 2 WHERE id = 1")  # does not wait
    with pytest.raises(pymysql.MySQLError) as e:
        q(a, "COMMIT")
    assert e.value.args[0] == 9007
    assert q(a, "SELECT @@tidb_txn_mode") == [("optimistic",)]


def test_named_user_locks_between_connections(two, embedb_server, db) -> None:
    """GET_LOCK: a second connection waits for a held lock (and times out), gets it once the
    holder releases it, and a holder's locks go when its connection closes."""
    a, b = two
    assert q(a, "SELECT GET_LOCK('deploy', 5)") == [(1,)]
    start = time.monotonic()
    assert q(b, "SELECT GET_LOCK('DEPLOY', 0.3)") == [(0,)]
    assert time.monotonic() - start >= 0.25
    a_id = q(a, "SELECT CONNECTION_ID()")[0][0]
    assert q(b, "SELECT IS_USED_LOCK('deploy'), IS_FREE_LOCK('deploy'), RELEASE_LOCK('deploy')") == [(a_id, 0, 0)]
    t, box = in_thread(lambda: q(b, "SELECT GET_LOCK('deploy', 10)"))
    time.sleep(0.3)
    assert t.is_alive(), "the second GET_LOCK should wait"
    assert q(a, "SELECT RELEASE_LOCK('deploy')") == [(1,)]
    t.join(5)
    assert box.get("value") == [(1,)], box
    b_id = q(b, "SELECT CONNECTION_ID()")[0][0]
    assert q(a, "SELECT IS_USED_LOCK('deploy')") == [(b_id,)]
    assert q(b, "SELECT RELEASE_LOCK('deploy')") == [(1,)]
    c = connect(*embedb_server, db)
    assert q(c, "SELECT GET_LOCK('deploy', 1)") == [(1,)]
    c.close()
    deadline = time.monotonic() + 5
    while q(a, "SELECT IS_FREE_LOCK('deploy')") != [(1,)]:
        assert time.monotonic() < deadline, "a closed connection's lock was not released"
        time.sleep(0.05)


def test_kill_query_ends_a_sleep_and_a_lock_wait(two) -> None:
    """KILL QUERY ends SLEEP at once (it returns 1, as MySQL's does), and a GET_LOCK wait with an
    error; neither holds a server thread while it waits."""
    a, b = two
    a_id = q(a, "SELECT CONNECTION_ID()")[0][0]
    threading.Timer(0.4, lambda: q(b, f"KILL QUERY {a_id}")).start()
    start = time.monotonic()
    assert q(a, "SELECT SLEEP(20)") == [(1,)]
    assert time.monotonic() - start < 5
    assert q(b, "SELECT GET_LOCK('held', 1)") == [(1,)]
    threading.Timer(0.4, lambda: q(b, f"KILL QUERY {a_id}")).start()
    start = time.monotonic()
    with pytest.raises(pymysql.MySQLError) as e:
        q(a, "SELECT GET_LOCK('held', 20)")
    assert e.value.args[0] == 1317 and time.monotonic() - start < 5, e.value.args
    assert q(a, "SELECT 1") == [(1,)]
