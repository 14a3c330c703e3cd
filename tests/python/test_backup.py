"""`embedb backup` during a write load and `embedb restore` into a new data dir (issue 15): the
restored server answers like the original did at the backup's snapshot.

* Tables no one writes during the backup (rows, a vector-indexed table, a full-text-indexed
  table, a view, an account) compare equal, searches included.
* The table under load holds every row acknowledged before the backup began, none committed
  after it ended, and no gaps in any client's sequence (one snapshot, not a smear).
* A damaged backup is refused and leaves no data dir behind.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pymysql
import pytest

from conftest import NumberedLoad, connect, create_search_tables, dump, own_server, search_answers


def test_backup_under_load_then_restore(embedb_binary: Path, tmp_path: Path) -> None:
    with own_server(embedb_binary, tmp_path / "orig") as srv:
        c = connect(*srv.address)
        with c.cursor() as cur:
            cur.execute("CREATE DATABASE app")
            create_search_tables(cur, "app")
            cur.execute("CREATE VIEW app.dogs AS SELECT id FROM app.docs WHERE body LIKE '%dogs%'")
            cur.execute("CREATE USER 'reader'@'%' IDENTIFIED BY 'pw'")
            cur.execute("GRANT SELECT ON app.* TO 'reader'@'%'")
        backup_dir = tmp_path / "backup"
        with NumberedLoad("app.load", [lambda: connect(*srv.address)] * 2) as load:
            time.sleep(0.5)
            before = dict(load.acked)
            r = subprocess.run([str(embedb_binary), "backup", "--to", str(backup_dir), "--port", str(srv.port)],
                               capture_output=True, text=True, timeout=120)
            after = dict(load.acked)
            time.sleep(0.3)
        assert r.returncode == 0, r.stderr
        assert "written to" in r.stdout
        original = dump(c, "app")
        answers = search_answers(c, "app")
        with c.cursor() as cur:
            # The statement itself, and its privilege.
            cur.execute(f"BACKUP DATABASE * TO 'local://{tmp_path / 'backup2'}'")
            row = cur.fetchone()
            assert [d[0] for d in cur.description] == ["Destination", "Size", "BackupTS", "Queue Time", "Execution Time"]
            assert row[1] > 0
        # A checkpoint backup (s3://) is a cluster's: a single node says so and writes nothing.
        with c.cursor() as cur, pytest.raises(pymysql.err.OperationalError) as e:
            cur.execute("BACKUP DATABASE * TO 's3://bucket/backups/b1'")
        assert e.value.args[0] == 8124 and "taken by a cluster" in e.value.args[1]
        rc = pymysql.connect(host=srv.host, port=srv.port, user="reader", password="pw")
        with rc.cursor() as cur, pytest.raises(pymysql.err.OperationalError) as e:
            cur.execute(f"BACKUP DATABASE * TO 'local://{tmp_path / 'nope'}'")
        assert e.value.args[0] == 1227
        rc.close()
        c.close()

    restored_dir = tmp_path / "restored" / "data"
    r = subprocess.run([str(embedb_binary), "restore", "--from", str(backup_dir), "--data-dir", str(restored_dir)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # Restoring over a database is refused.
    again = subprocess.run([str(embedb_binary), "restore", "--from", str(backup_dir), "--data-dir", str(restored_dir)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "already holds a database" in again.stderr
    with own_server(embedb_binary, tmp_path / "restored") as srv2:
        c2 = connect(*srv2.address)
        restored = dump(c2, "app")
        assert set(restored) == set(original)
        for name in original:
            if name != "load":
                assert restored[name] == original[name], name
        rows = restored["load"]
        for client in (0, 1):
            ns = sorted(n for cl, n in rows if cl == client)
            assert ns == list(range(1, len(ns) + 1)), "a gap: not one snapshot"
            assert before[client] <= len(ns) <= after[client]
        assert search_answers(c2, "app") == answers
        c2.close()
        rc = pymysql.connect(host=srv2.host, port=srv2.port, user="reader", password="pw", database="app")
        with rc.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM dogs")
            assert cur.fetchone() == (100,)
        rc.close()


def test_a_damaged_backup_is_refused(embedb_binary: Path, tmp_path: Path) -> None:
    with own_server(embedb_binary, tmp_path / "orig") as srv:
        c = connect(*srv.address)
        with c.cursor() as cur:
            cur.execute("CREATE TABLE test.t (id INT PRIMARY KEY, s TEXT)")
            cur.executemany("INSERT INTO test.t VALUES (%s, %s)", [(i, "x" * 50) for i in range(200)])
            cur.execute(f"BACKUP DATABASE * TO 'local://{tmp_path / 'b'}'")
        c.close()
    f = tmp_path / "b" / "embedb.backup"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    target = tmp_path / "r"
    r = subprocess.run([str(embedb_binary), "restore", "--from", str(tmp_path / "b"), "--data-dir", str(target)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "checksum" in r.stderr or "truncated" in r.stderr, r.stderr
    assert not target.exists()
