"""Truthful status and metrics (issue 18): `SHOW STATUS` counts bytes on the wire, and the opt-in
Prometheus endpoint (`--metrics-addr`) reports statements by kind, errors, a latency histogram,
connections, embedding calls and cache hits, search-index progress and memory — values that move
with what clients do.
"""

from __future__ import annotations

import re
import socket
import urllib.request
from pathlib import Path

import pymysql
import pytest

from conftest import connect, own_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def status(conn: pymysql.Connection) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS")
        return dict(cur.fetchall())


def test_metrics_move_with_the_workload(embedb_binary: Path, tmp_path: Path) -> None:
    mport = free_port()
    with own_server(embedb_binary, tmp_path, {}, ("--metrics-addr", f"127.0.0.1:{mport}")) as srv:
        before = scrape(mport)
        c = connect(*srv.address, "test")
        s0 = status(c)
        with c.cursor() as cur:
            cur.execute("CREATE TABLE m (id INT PRIMARY KEY, t TEXT, FULLTEXT INDEX ft (t) WITH PARSER STANDARD)")
            for k in range(20):
                cur.execute("INSERT INTO m VALUES (%s, %s)", (k, "some text " * 50))
            cur.execute("SELECT * FROM m")
            cur.fetchall()
            with pytest.raises(pymysql.MySQLError):
                cur.execute("SELECT * FROM no_such_table")
        s1 = status(c)
        assert int(s1["Bytes_received"]) - int(s0["Bytes_received"]) > 20 * 500
        assert int(s1["Bytes_sent"]) - int(s0["Bytes_sent"]) > 20 * 500
        after = scrape(mport)
        assert after["embedb_statements_total"] - before["embedb_statements_total"] >= 23
        assert after['embedb_statements_by_kind_total{kind="insert"}'] >= 20
        assert after["embedb_statement_errors_total"] >= before["embedb_statement_errors_total"] + 1
        assert after['embedb_statement_duration_seconds_bucket{le="+Inf"}'] == after["embedb_statement_duration_seconds_count"]
        assert after["embedb_statement_duration_seconds_count"] >= 23
        assert after["embedb_connections_open"] >= 1
        assert after["embedb_received_bytes_total"] > before["embedb_received_bytes_total"]
        assert after["embedb_resident_memory_bytes"] > 1e6
        assert any(k.startswith("embedb_index_rows{kind=\"fulltext\"") for k in after)
        # Anything but /metrics is a 404.
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{mport}/other", timeout=10)
        assert e.value.code == 404
        c.close()
