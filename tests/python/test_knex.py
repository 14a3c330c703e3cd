"""Knex 3 (Node.js, mysql2 driver) against embedb.

Runs tests/node/knex_flow.mjs on a fresh database of the shared server: the schema builder
(createTable with increments / string / text / integer / boolean / decimal / timestamps, foreign
keys, indexes, unique; hasTable / hasColumn / columnInfo), migrations (migrate.latest / list / up /
down / rollback with an in-memory migration source and the knex_migrations_lock row taken FOR
UPDATE), alterTable (add column, .alter() to change type / nullability / default, setNullable /
dropNullable, renameColumn — also of a foreign key column —, dropColumn / dropIndex / dropForeign /
dropUnique), CRUD with onConflict merge / ignore, joins and aggregates, and transactions (commit,
rollback, nested through SAVEPOINT, isolation level, forUpdate). The script prints one PASS/FAIL
line per step and every SQL statement.

Needs `node` and tests/node/node_modules (.ci/run runs `npm ci` there); skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
SCRIPT = NODE_DIR / "knex_flow.mjs"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (.ci/run installs nodejs)"),
    pytest.mark.skipif(not (NODE_DIR / "node_modules" / "knex").is_dir()
                       or not (NODE_DIR / "node_modules" / "mysql2").is_dir(),
                       reason="tests/node/node_modules is missing (run `npm ci` in tests/node)"),
]


def test_knex_flow(embedb_server: tuple[str, int], db: str) -> None:
    host, port = embedb_server
    env = dict(os.environ, EMBEDB_HOST=host, EMBEDB_PORT=str(port), EMBEDB_DATABASE=db,
               EMBEDB_SQL_LOG="1")
    try:
        proc = subprocess.run([NODE, str(SCRIPT)], cwd=NODE_DIR, env=env, capture_output=True,
                              text=True, timeout=300)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"knex_flow.mjs timed out after 300 s\n{out}", pytrace=False)
    steps = [line for line in proc.stdout.splitlines() if line.startswith(("PASS ", "FAIL "))]
    failed = [line for line in steps if line.startswith("FAIL ")]
    if proc.returncode != 0 or failed or not steps:
        pytest.fail(
            f"knex_flow.mjs exited {proc.returncode}; failed steps:\n"
            + "\n".join(failed or ["(none reported)"])
            + f"\n\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}",
            pytrace=False)
    assert steps[-1] == "PASS dropTable", steps
