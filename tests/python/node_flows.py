"""Running a Node.js client flow of tests/node (Sequelize, Knex, TypeORM) against the suite's server:
the flow prints one `PASS name` / `FAIL name: why` line per step (tests/node/steps.mjs) and every
SQL statement; a failed step, a non-zero exit or a last step other than the expected one fails the
test with the whole output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
NODE = shutil.which("node")


def needs(*packages: str) -> list:
    """The skip markers of a flow that needs node and these npm packages."""
    return [
        pytest.mark.skipif(NODE is None, reason="node is not installed (.ci/run installs nodejs)"),
        pytest.mark.skipif(not all((NODE_DIR / "node_modules" / p).is_dir() for p in packages),
                           reason="tests/node/node_modules is missing (run `npm ci` in tests/node)"),
    ]


def run_flow(script: str, server: tuple[str, int], db: str, last_step: str) -> None:
    host, port = server
    env = dict(os.environ, EMBEDB_HOST=host, EMBEDB_PORT=str(port), EMBEDB_DATABASE=db, EMBEDB_SQL_LOG="1")
    try:
        proc = subprocess.run([NODE, str(NODE_DIR / script)], cwd=NODE_DIR, env=env, capture_output=True,
                              text=True, timeout=300)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"{script} timed out after 300 s\n{out}", pytrace=False)
    steps = [line for line in proc.stdout.splitlines() if line.startswith(("PASS ", "FAIL "))]
    failed = [line for line in steps if line.startswith("FAIL ")]
    if proc.returncode != 0 or failed or not steps:
        pytest.fail(
            f"{script} exited {proc.returncode}; failed steps:\n"
            + "\n".join(failed or ["(none reported)"])
            + f"\n\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}",
            pytrace=False)
    assert steps[-1] == f"PASS {last_step}", steps
