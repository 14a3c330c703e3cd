"""The MySQL C API's server-side prepared statements (libmariadb), as sysbench and C/C++
programs use them.

Compiles tests/c/prepared.c against Debian's libmariadb and runs its checks on a fresh database
of the shared server: parameter and result metadata at prepare, two executes of one statement,
1064/1146/1054 at prepare, typed INSERT parameters, DDL between executes, long data, a
read-only cursor (COM_STMT_FETCH) and SQL PREPARE/EXECUTE/DEALLOCATE. The program prints one
`ok N - …` line per check and exits non-zero at the first failure.

Needs `cc` and `mariadb_config` (.ci/run installs gcc and libmariadb-dev); skipped otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "c" / "prepared.c"
CC = shutil.which("cc")
MARIADB_CONFIG = shutil.which("mariadb_config")

pytestmark = pytest.mark.skipif(CC is None or MARIADB_CONFIG is None,
                                reason="cc or mariadb_config missing (.ci/run installs gcc and libmariadb-dev)")


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("c_api") / "prepared"
    flags = subprocess.run([MARIADB_CONFIG, "--cflags", "--libs"], capture_output=True, text=True,
                           check=True).stdout.split()
    subprocess.run([CC, "-O2", "-Wall", "-o", str(out), str(SOURCE), *flags], check=True)
    return out


def test_prepared_statements_through_the_c_api(program: Path, embedb_server: tuple[str, int],
                                               db: str) -> None:
    host, port = embedb_server
    proc = subprocess.run([str(program), "test", host, str(port), db], capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0 or "checks passed" not in proc.stdout:
        pytest.fail(f"prepared.c exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    assert proc.stdout.count("\nok ") + proc.stdout.startswith("ok ") >= 29
