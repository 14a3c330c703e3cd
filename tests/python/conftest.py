"""Fixtures for embedb's end-to-end client tests.

* ``embedb_server`` (session): starts ``embedb serve`` on a free port with a
  temporary data dir and yields ``(host, port)``; the server is killed at the
  end of the session. The binary is ``--embedb PATH``, else ``$EMBEDB_BIN``,
  else ``$CARGO_TARGET_DIR/debug/embedb``, else ``target/debug/embedb``.
  ``pytest --embedb-port N`` uses an already running server instead.
* ``embedb_process`` (session): the ``EmbedbServer`` object behind it.
* ``private_server``: a server of its own for one test (crash/restart tests),
  with ``restart_server(server, hard=True)`` to kill -9 it and start it again
  on the same data dir.
* ``connect(host, port, database=None, **kw)``: a pymysql connection with
  autocommit on; ``assert_serves(host, port, **kw)``: it answers ``SELECT 1``.
* ``db`` / ``conn``: a fresh database on the shared server and a connection
  that uses it.

Server handling lives in ``tests/sqltest.py`` (``EmbedbServer``), shared with
the golden SQL runner.
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping, Optional, Sequence

import pytest

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import pymysql  # noqa: E402

from sqltest import (  # noqa: E402
    DEFAULT_HOST,
    EmbedbServer,
    ServerError,
    default_embedb_binary,
    install_sqlstate_hook,
)

install_sqlstate_hook()

STATEMENT_TIMEOUT = 60


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("embedb")
    group.addoption("--embedb", metavar="PATH", default=None,
                    help="embedb binary (default: $EMBEDB_BIN, $CARGO_TARGET_DIR/debug/embedb, "
                         "target/debug/embedb)")
    group.addoption("--embedb-host", default=DEFAULT_HOST,
                    help="host of an already running server (with --embedb-port)")
    group.addoption("--embedb-port", type=int, default=None,
                    help="use an already running server on this port for the shared fixture")


def connect(host: str, port: int, database: Optional[str] = None, **kwargs) -> pymysql.Connection:
    """A pymysql connection as root with an empty password and autocommit on."""
    params = dict(host=host, port=port, user="root", password="", database=database,
                  charset="utf8mb4", autocommit=True, connect_timeout=10,
                  read_timeout=STATEMENT_TIMEOUT, write_timeout=STATEMENT_TIMEOUT)
    params.update(kwargs)
    return pymysql.connect(**params)


def assert_serves(host: str, port: int, **kwargs) -> None:
    """The server answers `SELECT 1` on a new connection (it did not crash or wedge); `kwargs`
    go to `connect` (a database, TLS settings)."""
    c = connect(host, port, **kwargs)
    try:
        with c.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        c.close()


class NumberedLoad:
    """Clients inserting (client, 1), (client, 2), … into `table` (client INT, n INT) until the
    `with` block ends; `acked[client]` is each one's last acknowledged n. A consistent snapshot
    holds, per client, 1..m with no gap (backup tests)."""

    def __init__(self, table: str, connects: Sequence[Callable[[], pymysql.Connection]]):
        self.table = table
        self.acked = {i: 0 for i in range(len(connects))}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i, f)) for i, f in enumerate(connects)]

    def _run(self, client: int, connect_: Callable[[], pymysql.Connection]) -> None:
        c = connect_()
        with c.cursor() as cur:
            n = 0
            while not self._stop.is_set():
                n += 1
                cur.execute(f"INSERT INTO {self.table} VALUES (%s, %s)", (client, n))
                self.acked[client] = n

    def __enter__(self) -> "NumberedLoad":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def create_search_tables(cur, db: str) -> None:
    """`db.docs` (300 rows with a vector and a full-text index) and `db.load` (for
    NumberedLoad): what the backup tests back up and compare."""
    cur.execute(f"CREATE TABLE {db}.docs (id INT PRIMARY KEY, body TEXT, v VECTOR(3), VECTOR INDEX iv ((VEC_COSINE_DISTANCE(v))))")
    cur.execute(f"CREATE FULLTEXT INDEX ft ON {db}.docs (body)")
    cur.executemany(f"INSERT INTO {db}.docs VALUES (%s, %s, %s)",
                    [(i, f"document {i} about {'cats' if i % 3 else 'dogs'}", f"[{i % 7},{i % 5},1]") for i in range(1, 301)])
    cur.execute(f"CREATE TABLE {db}.load (client INT, n INT, PRIMARY KEY (client, n))")


def search_answers(c: pymysql.Connection, db: str) -> tuple:
    """A vector search and a full-text search of `db.docs`."""
    with c.cursor() as cur:
        cur.execute(f"SELECT id FROM {db}.docs ORDER BY VEC_COSINE_DISTANCE(v, '[3,1,1]') LIMIT 5")
        near = cur.fetchall()
        cur.execute(f"SELECT id FROM {db}.docs WHERE FTS_MATCH_WORD('dogs', body) ORDER BY id LIMIT 5")
        return near, cur.fetchall()


def dump(c: pymysql.Connection, db: str) -> dict[str, list]:
    """Every table and view of `db`, its rows sorted by the first column (backup tests)."""
    out = {}
    with c.cursor() as cur:
        cur.execute(f"SHOW FULL TABLES FROM `{db}`")
        for name, _kind in cur.fetchall():
            cur.execute(f"SELECT * FROM `{db}`.`{name}` ORDER BY 1")
            out[name] = [tuple(r) for r in cur.fetchall()]
    return out


def restart_server(server: EmbedbServer, hard: bool = True) -> tuple[str, int]:
    """Kill the server (SIGKILL if hard, else SIGTERM) and start it again on
    the same data dir and port. Returns the new (host, port)."""
    try:
        server.restart(hard=hard)
    except ServerError as e:
        pytest.fail(f"embedb did not come back after restart:\n{e}", pytrace=False)
    return server.address


@contextmanager
def own_server(binary: Path, base: Path, env: Mapping[str, str] = {},
               extra_args: Sequence[str] = ()) -> Iterator[EmbedbServer]:
    """A server of a module's own (data and log under ``base``), started with ``env`` set (e.g. an
    API base pointing at a test double) and ``extra_args``; removed afterwards."""
    srv = EmbedbServer(binary=binary, data_dir=base / "data", log_path=base / "server.log",
                       extra_args=tuple(extra_args))
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.delenv("EMBEDB_ALLOWED_API_BASES", raising=False)
        _start(srv)
    try:
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture(scope="session")
def embedb_binary(pytestconfig: pytest.Config) -> Path:
    opt = pytestconfig.getoption("--embedb")
    binary = Path(opt) if opt else default_embedb_binary()
    if not binary.exists():
        pytest.fail(f"embedb binary not found at {binary}; run `cargo build --bins` "
                    "(CARGO_TARGET_DIR is honoured) or pass --embedb PATH", pytrace=False)
    return binary


def _start(server: EmbedbServer) -> EmbedbServer:
    try:
        return server.start()
    except ServerError as e:
        server.cleanup()
        pytest.fail(f"could not start embedb:\n{e}", pytrace=False)


@pytest.fixture(scope="session")
def embedb_process(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Optional[EmbedbServer]]:
    """The shared server process (None when --embedb-port points at an external one)."""
    if request.config.getoption("--embedb-port"):
        yield None
        return
    binary = request.getfixturevalue("embedb_binary")
    base = tmp_path_factory.mktemp("embedb-shared")
    server = _start(EmbedbServer(binary=binary, data_dir=base / "data",
                                 log_path=base / "server.log"))
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def embedb_server(pytestconfig: pytest.Config,
                  embedb_process: Optional[EmbedbServer]) -> Iterator[tuple[str, int]]:
    """(host, port) of the shared embedb server."""
    if embedb_process is None:
        yield (pytestconfig.getoption("--embedb-host"), pytestconfig.getoption("--embedb-port"))
    else:
        yield embedb_process.address


@pytest.fixture
def private_server(embedb_binary: Path, tmp_path: Path) -> Iterator[EmbedbServer]:
    """A server only this test uses (it may crash and restart it)."""
    server = _start(EmbedbServer(binary=embedb_binary, data_dir=tmp_path / "data",
                                 log_path=tmp_path / "server.log"))
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(name="restart_server")
def restart_server_fixture() -> Callable[..., tuple[str, int]]:
    return restart_server


@pytest.fixture
def db(request: pytest.FixtureRequest, embedb_server: tuple[str, int]) -> Iterator[str]:
    """A freshly created database on the shared server, dropped afterwards."""
    name = "pytest_" + re.sub(r"[^0-9a-zA-Z_]", "_", request.node.name)[:50].lower()
    c = connect(*embedb_server)
    try:
        with c.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}`")
    finally:
        c.close()
    yield name
    try:
        c = connect(*embedb_server)
        try:
            with c.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            c.close()
    except pymysql.MySQLError:
        pass


@pytest.fixture
def conn(embedb_server: tuple[str, int], db: str) -> Iterator[pymysql.Connection]:
    c = connect(*embedb_server, database=db)
    try:
        yield c
    finally:
        try:
            c.close()
        except pymysql.MySQLError:
            pass
