"""The `embedb serve` process itself: configuration sources, clean shutdown, what it logs, and state
that must survive a restart (global variables, API keys — still masked)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pymysql
import pytest

from conftest import connect
from sqltest import free_port, mysql_greeting_ok


def wait_listening(host: str, port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"embedb exited with {proc.returncode}:\n{log.read_text()}")
        if mysql_greeting_ok(host, port, timeout=1.0):
            return
        time.sleep(0.1)
    pytest.fail(f"embedb did not listen on {port}:\n{log.read_text()}")


def spawn(binary: Path, args: list[str], env: dict, log: Path, cwd: Path) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen([str(binary), "serve", *args], stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=str(cwd))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown_and_startup_log(embedb_binary: Path, tmp_path: Path, sig: int) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    data = tmp_path / "data"
    proc = spawn(embedb_binary, ["--port", str(port), "--data-dir", str(data)], dict(os.environ), log, tmp_path)
    try:
        wait_listening("127.0.0.1", port, proc, log)
        with connect("127.0.0.1", port, "test") as c, c.cursor() as cur:
            cur.execute("CREATE TABLE s (id INT PRIMARY KEY)")
            cur.execute("INSERT INTO s VALUES (1)")
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert f"listening on 127.0.0.1:{port}" in text
    assert str(data.resolve()) in text, "the log says where the data lives"
    assert "shutting down" in text


def test_env_vars_and_toml_config(embedb_binary: Path, tmp_path: Path) -> None:
    """Flags > EMBEDB_* env > TOML file > defaults."""
    port = free_port()
    toml = tmp_path / "embedb.toml"
    toml.write_text(f'port = 1\ndata_dir = "{tmp_path / "from-toml"}"\n[users]\nroot = ""\nalice = "wonder"\n')
    env = dict(os.environ, EMBEDB_PORT=str(port), EMBEDB_CONFIG=str(toml), EMBEDB_LOG_LEVEL="debug")
    log = tmp_path / "server.log"
    proc = spawn(embedb_binary, [], env, log, tmp_path)
    try:
        wait_listening("127.0.0.1", port, proc, log)  # the env port beat the file's port 1
        with pymysql.connect(host="127.0.0.1", port=port, user="alice", password="wonder") as c, c.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        with pytest.raises(pymysql.err.OperationalError) as e:
            pymysql.connect(host="127.0.0.1", port=port, user="alice", password="wrong")
        assert e.value.args[0] == 1045
        assert (tmp_path / "from-toml").is_dir(), "data_dir came from the TOML file"
    finally:
        proc.kill()
        proc.wait()


def test_bad_config_fails_fast(embedb_binary: Path, tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("prot = 4000\n")
    r = subprocess.run([str(embedb_binary), "serve", "--config", str(toml)], capture_output=True, timeout=30, cwd=tmp_path)
    assert r.returncode == 2
    assert b"invalid config" in r.stderr


def test_globals_persist_and_keys_stay_masked(private_server, restart_server) -> None:
    host, port = private_server.address
    with connect(host, port) as c, c.cursor() as cur:
        cur.execute("SET GLOBAL wait_timeout = 1234")
        cur.execute("SET @@GLOBAL.`TIDB_EXP_EMBED_JINA_AI_API_KEY` = 'jina_secret_value'")
    host, port = restart_server(private_server, hard=True)
    with connect(host, port) as c, c.cursor() as cur:
        cur.execute("SELECT @@global.wait_timeout, @@wait_timeout, @@global.tidb_exp_embed_jina_ai_api_key")
        assert cur.fetchone() == (1234, 1234, "********")
        cur.execute("SHOW GLOBAL VARIABLES LIKE 'tidb_exp_embed_jina_ai_api_key'")
        assert cur.fetchall() == (("tidb_exp_embed_jina_ai_api_key", "********"),)
    assert "jina_secret_value" not in private_server.log_text()


def test_kill9_during_writes_keeps_every_acknowledged_statement(private_server, restart_server) -> None:
    """A writer commits 3-row INSERTs as fast as it can; the server is SIGKILLed mid-stream. After a
    restart every acknowledged statement is there in full and no statement is there in part."""
    import threading

    host, port = private_server.address
    with connect(host, port, "test") as c, c.cursor() as cur:
        cur.execute("CREATE TABLE w (id INT PRIMARY KEY, batch INT NOT NULL, v VECTOR(2))")
    acked: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            with connect(host, port, "test") as c, c.cursor() as cur:
                b = 0
                while not stop.is_set():
                    cur.execute("INSERT INTO w VALUES (%s, %s, '[1,2]'), (%s, %s, '[3,4]'), (%s, %s, '[5,6]')",
                                (3 * b, b, 3 * b + 1, b, 3 * b + 2, b))
                    acked.append(b)
                    b += 1
        except pymysql.err.MySQLError:
            pass  # the server died under us

    t = threading.Thread(target=writer)
    t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    host, port = restart_server(private_server, hard=True)
    stop.set()
    t.join(timeout=30)
    assert len(acked) >= 50, "the writer made progress before the kill"
    with connect(host, port, "test") as c, c.cursor() as cur:
        cur.execute("SELECT batch, COUNT(*) FROM w GROUP BY batch ORDER BY batch")
        counts = dict(cur.fetchall())
    assert all(n == 3 for n in counts.values()), "no statement is half there"
    missing = [b for b in acked if b not in counts]
    assert not missing, f"acknowledged statements lost: {missing[:10]}"
