"""Vector indexes survive `kill -9` (issue 15, durable index segments): the server checkpoints each
graph once writes pause, and a start after a crash loads the checkpoint and reconciles it with
the table (rows changed, added and deleted after the checkpoint) instead of rebuilding.

The searches after the restart must equal exact search over the table as it is.
"""

from __future__ import annotations

import math
import random
import re
import time
from pathlib import Path

from conftest import connect, own_server


def cosine(a, b):
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    return 1 - sum(x * y for x, y in zip(a, b)) / (na * nb)


def vec(rng: random.Random, d: int = 8) -> list[float]:
    return [round(rng.uniform(-1, 1), 3) for _ in range(d)]


def wait_log(srv, pattern: str, timeout: float = 60) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, srv.log_text(max_lines=100000))
        if m:
            return m
        time.sleep(0.2)
    raise AssertionError(f"no log line matching {pattern!r}:\n{srv.log_text()[-3000:]}")


def test_a_crash_restart_reconciles_the_checkpointed_graph(embedb_binary: Path, tmp_path: Path) -> None:
    rng = random.Random(7)
    rows = {i: vec(rng) for i in range(1, 3001)}
    with own_server(embedb_binary, tmp_path) as srv:
        c = connect(*srv.address)
        with c.cursor() as cur:
            cur.execute("CREATE TABLE test.pts (id INT PRIMARY KEY, v VECTOR(8), VECTOR INDEX iv ((VEC_COSINE_DISTANCE(v))))")
            cur.executemany("INSERT INTO test.pts VALUES (%s, %s)", [(i, str(v)) for i, v in rows.items()])
        wait_log(srv, r"vector index test\.pts\.iv checkpointed: 3000 rows")
        # After the checkpoint: change, delete and add rows, then crash before the next one.
        with c.cursor() as cur:
            for i in range(1, 101):
                rows[i] = vec(rng)
                cur.execute("UPDATE test.pts SET v = %s WHERE id = %s", (str(rows[i]), i))
            cur.execute("DELETE FROM test.pts WHERE id BETWEEN 101 AND 200")
            for i in range(101, 201):
                del rows[i]
            for i in range(5001, 5101):
                rows[i] = vec(rng)
                cur.execute("INSERT INTO test.pts VALUES (%s, %s)", (i, str(rows[i])))
            cur.execute("INSERT INTO test.pts VALUES (9000, NULL)")
        c.close()
        srv.kill()
        srv.start()
        m = wait_log(srv, r"vector index test\.pts\.iv ready from its checkpoint: (\d+) rows checked, (\d+) brought up to date \((\d+) in the file\)")
        checked, fixed, in_file = map(int, m.groups())
        assert (checked, in_file) == (3001, 3000)
        assert fixed == 301, m.group(0)
        assert "vector index test.pts.iv built" not in srv.log_text(max_lines=100000).split("starting:")[-1], "rebuilt instead of loaded"
        c = connect(*srv.address)
        with c.cursor() as cur:
            cur.execute("SELECT ROWS_STABLE_INDEXED FROM information_schema.TIFLASH_INDEXES WHERE TIDB_TABLE = 'pts'")
            for _ in range(3):
                q = vec(rng)
                cur.execute("EXPLAIN SELECT id FROM test.pts ORDER BY VEC_COSINE_DISTANCE(v, %s) LIMIT 10", (str(q),))
                assert "ann" in str(cur.fetchall()).lower()
                cur.execute("SELECT id, VEC_COSINE_DISTANCE(v, %s) AS d FROM test.pts WHERE v IS NOT NULL ORDER BY d LIMIT 10", (str(q),))
                got = [round(float(d), 5) for _, d in cur.fetchall()]
                want = sorted(round(cosine(v, q), 5) for v in rows.values())[:10]
                assert got == want
        c.close()


def test_a_crash_restart_reconciles_the_saved_full_text_index(embedb_binary: Path, tmp_path: Path) -> None:
    words = {i: ("alpha" if i % 2 else "beta") for i in range(1, 2001)}
    with own_server(embedb_binary, tmp_path) as srv:
        c = connect(*srv.address)
        with c.cursor() as cur:
            cur.execute("CREATE TABLE test.notes (id INT PRIMARY KEY, body TEXT, FULLTEXT INDEX ft (body))")
            cur.executemany("INSERT INTO test.notes VALUES (%s, %s)", [(i, f"note {i} {w}") for i, w in words.items()])
        wait_log(srv, r"full-text index test\.notes\.ft saved: 2000 rows")
        with c.cursor() as cur:
            for i in range(1, 51):  # alpha <-> beta
                words[i] = "beta" if words[i] == "alpha" else "alpha"
                cur.execute("UPDATE test.notes SET body = %s WHERE id = %s", (f"note {i} {words[i]}", i))
            cur.execute("DELETE FROM test.notes WHERE id BETWEEN 51 AND 80")
            for i in range(51, 81):
                del words[i]
            for i in range(3001, 3021):
                words[i] = "beta"
                cur.execute("INSERT INTO test.notes VALUES (%s, %s)", (i, f"note {i} beta"))
        c.close()
        srv.kill()
        srv.start()
        m = wait_log(srv, r"full-text index test\.notes\.ft ready from its saved copy: (\d+) rows checked, (\d+) brought up to date")
        assert tuple(map(int, m.groups())) == (1990, 100), m.group(0)
        c = connect(*srv.address)
        with c.cursor() as cur:
            for w in ("alpha", "beta"):
                cur.execute("SELECT id FROM test.notes WHERE FTS_MATCH_WORD(%s, body) ORDER BY id", (w,))
                assert [r[0] for r in cur.fetchall()] == sorted(i for i, x in words.items() if x == w)
        c.close()
