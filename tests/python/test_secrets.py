"""Provider keys are secrets (issue 18): never in the log at any level, sealed in the data
directory, never readable back — and still used after a restart.

A server of this module's own runs with ``--log-level trace`` against the Jina test double. A key
is set, used, set again in a statement with a syntax error, passed through a user variable; the
server is restarted. The log and every file of the data directory (except the key file itself)
must not contain the key; the double must have received it before and after the restart.
"""

from __future__ import annotations

from pathlib import Path

import pymysql
import pytest

from conftest import connect, own_server
from doubles.embedding_api import EmbeddingDouble

KEY = "jina_Zq7WkeySecretValue42"


def test_keys_never_reach_the_log_or_the_data_file(embedb_binary: Path, tmp_path: Path) -> None:
    double = EmbeddingDouble(valid_keys={KEY}).start()
    try:
        with own_server(embedb_binary, tmp_path, {},
                        ("--log-level", "trace", "--embed-max-retries", "0", "--jina-api-base", double.url)) as srv:
            def session() -> pymysql.Connection:
                return connect(*srv.address)

            c = session()
            with c.cursor() as cur:
                cur.execute(f"SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY = '{KEY}'")
                cur.execute("SELECT VEC_AS_TEXT(EMBED_TEXT('jina_ai/jina-embeddings-v3', 'hello'))")
                assert cur.fetchone()[0].startswith("[")
                # a failing statement that quotes the key in its error text
                with pytest.raises(pymysql.MySQLError):
                    cur.execute(f"SET GLOBAL TIDB_EXP_EMBED_JINA_AI_API_KEY = '{KEY}' garbage garbage")
                cur.execute(f"SET @k = '{KEY}'")
                cur.execute("SET GLOBAL TIDB_EXP_EMBED_JINA_AI_API_KEY = @k")
                cur.execute("SELECT @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY")
                assert cur.fetchone()[0] == "********"
                cur.execute("SHOW GLOBAL VARIABLES LIKE 'tidb_exp_embed_jina_ai_api_key'")
                assert KEY not in str(cur.fetchall())
            c.close()
            sent_before = [r.headers.get("authorization", "") for r in double.take()]
            assert sent_before and all(KEY in a for a in sent_before)

            srv.restart(hard=False)
            c = session()
            with c.cursor() as cur:
                cur.execute("SELECT VEC_AS_TEXT(EMBED_TEXT('jina_ai/jina-embeddings-v3', 'after restart'))")
                assert cur.fetchone()[0].startswith("[")
            c.close()
            assert all(KEY in r.headers.get("authorization", "") for r in double.take())

            log = Path(srv.log_path).read_bytes()
            assert b"DEBUG" in log and b"TRACE" in log, "the log should hold debug and trace lines"
            assert KEY.encode() not in log
            data = Path(srv.data_dir)
            for f in data.rglob("*"):
                if f.is_file() and f.name != "secret.key":
                    assert KEY.encode() not in f.read_bytes(), f"{f} holds the key in clear"
            assert (data / "secret.key").stat().st_mode & 0o777 == 0o600
    finally:
        double.stop()
