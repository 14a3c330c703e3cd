"""Faults heal (issue 18): disk full gives a clear error, and once space returns the next writes
succeed without a restart; every acknowledged row is there, before and after a restart.

The data directory lives on a small tmpfs (mounting needs root, which CI has); a ballast file
fills it, and deleting the ballast gives the space back.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pymysql
import pytest

from conftest import connect
from sqltest import EmbedbServer


@pytest.fixture
def small_disk(tmp_path: Path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_heals_without_a_restart(embedb_binary: Path, small_disk: Path, tmp_path: Path) -> None:
    srv = EmbedbServer(binary=embedb_binary, data_dir=small_disk / "data", log_path=tmp_path / "server.log")
    srv.start()
    try:
        c = connect(*srv.address, database="test")
        cur = c.cursor()
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, s LONGTEXT)")
        # The ballast leaves 4 MiB free, whatever the logs and the database file took already.
        ballast = small_disk / "ballast"
        ballast.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - (4 << 20)))
        acked, error = [], None
        for i in range(200):
            try:
                cur.execute("INSERT INTO t VALUES (%s, REPEAT('x', 200000))", (i,))
                acked.append(i)
            except pymysql.MySQLError as e:
                error = e
                break
        assert error is not None and acked, "the disk should have filled up"
        assert "No space left on device" in error.args[1] or "disk full" in error.args[1], error.args
        # while the disk is full: reads work, writes fail with an error and change nothing
        cur.execute("SELECT COUNT(*) FROM t")
        assert cur.fetchone() == (len(acked),)
        ballast.unlink()
        # space is back: a write succeeds within a few seconds, on the same connection, no restart
        deadline = time.monotonic() + 15
        while True:
            try:
                cur.execute("INSERT INTO t VALUES (10000, 'after')")
                break
            except pymysql.MySQLError as e:
                assert time.monotonic() < deadline, f"writes did not resume: {e}"
                time.sleep(0.2)
        cur.execute("INSERT INTO t VALUES (10001, 'and again')")
        cur.execute("SELECT id FROM t ORDER BY id")
        assert [r[0] for r in cur.fetchall()] == acked + [10000, 10001]
        c.close()
        # a crash now loses nothing acknowledged
        srv.restart(hard=True)
        c = connect(*srv.address, database="test")
        with c.cursor() as cur:
            cur.execute("SELECT id, LENGTH(s) FROM t ORDER BY id")
            rows = cur.fetchall()
        assert [r[0] for r in rows] == acked + [10000, 10001]
        assert all(n == 200000 for _, n in rows[: len(acked)])
        c.close()
    finally:
        srv.cleanup()
