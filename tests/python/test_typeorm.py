"""TypeORM 1 (Node.js, type "mysql" with the mysql2 driver, EntitySchema entities) against embedb.

Runs tests/node/typeorm_flow.mjs on a fresh database of the shared server: synchronize: true
(creates the tables; a second synchronize of the same schema must find nothing to change, which
checks information_schema against what TypeORM created; then a changed schema is synchronized:
added, retyped, widened, dropped columns, a new index, a NOT NULL column without a default),
repositories (save, find / findOne / findOneBy with where operators, update, increment, delete,
remove), relations (ManyToOne eager, OneToMany, ManyToMany with a join table, `relations` loading),
the QueryBuilder (joins, where, orderBy, skip / take with getManyAndCount, raw aggregates,
subqueries, update / insert / delete), transactions (dataSource.transaction commit / rollback, a
QueryRunner transaction nested through SAVEPOINT, isolation level, pessimistic_write lock),
migrations (runMigrations / undoLastMigration with QueryRunner createTable / addColumn /
renameColumn / changeColumn / createIndex) and dropDatabase. The script prints one PASS/FAIL line
per step and every SQL statement.

Needs `node` and tests/node/node_modules (.ci/run runs `npm ci` there); skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
SCRIPT = NODE_DIR / "typeorm_flow.mjs"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (.ci/run installs nodejs)"),
    pytest.mark.skipif(not (NODE_DIR / "node_modules" / "typeorm").is_dir()
                       or not (NODE_DIR / "node_modules" / "mysql2").is_dir(),
                       reason="tests/node/node_modules is missing (run `npm ci` in tests/node)"),
]


def test_typeorm_flow(embedb_server: tuple[str, int], db: str) -> None:
    host, port = embedb_server
    env = dict(os.environ, EMBEDB_HOST=host, EMBEDB_PORT=str(port), EMBEDB_DATABASE=db,
               EMBEDB_SQL_LOG="1")
    try:
        proc = subprocess.run([NODE, str(SCRIPT)], cwd=NODE_DIR, env=env, capture_output=True,
                              text=True, timeout=300)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"typeorm_flow.mjs timed out after 300 s\n{out}", pytrace=False)
    steps = [line for line in proc.stdout.splitlines() if line.startswith(("PASS ", "FAIL "))]
    failed = [line for line in steps if line.startswith("FAIL ")]
    if proc.returncode != 0 or failed or not steps:
        pytest.fail(
            f"typeorm_flow.mjs exited {proc.returncode}; failed steps:\n"
            + "\n".join(failed or ["(none reported)"])
            + f"\n\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}",
            pytrace=False)
    assert steps[-1] == "PASS dropDatabase", steps
