"""`pip install embedb` (issue 21): the wheel is built with maturin (dev profile), installed into a
fresh venv that holds nothing else, and used from there:

* in-process: parameters of each type bound as values, typed results, MySQL error codes,
  transactions, threads on cursors, Ctrl-C stopping a statement (tests/wheel/checks.py);
* `db.serve()`: a MySQL client (pymysql, from the suite's own venv) reads and writes through it,
  and pytidb's quick-start (an auto-embedded field; dense, full-text and hybrid search) runs
  against it;
* results as pandas DataFrames with their dtypes and as pyarrow Tables that share the engine's
  buffers (every column type, NULLs, many batches, nothing allocated in pyarrow's pool), numpy
  arrays bound as vectors;
* `kill -9` of the Python process while it inserts: every acknowledged row is there on reopen,
  and a data directory open in one process is refused to a second with a clear error;
* LangChain's and LlamaIndex's TiDB vector stores, unchanged, through `db.serve()`
  (tests/wheel/rag_stores.py), in a venv of their own with pinned versions;
* the wheel's `embedb` command: `embedb version`, and the golden SQL scripts (tests/sqltest.py)
  against `embedb serve` from the wheel.

Skipped when maturin is not installed (.ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
CHECKS = ROOT / "tests" / "wheel" / "checks.py"
MATURIN = shutil.which("maturin") or str(Path(sys.executable).parent / "maturin")

pytestmark = pytest.mark.skipif(not Path(MATURIN).exists(), reason="maturin is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    env = dict(os.environ, CARGO_TARGET_DIR=os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/embedb-target")))
    build = subprocess.run([MATURIN, "build", "--profile", "dev", "--strip", "-i", sys.executable, "-o", str(out / "dist")],
                           cwd=ROOT / "crates" / "python", env=env, capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    wheel = next((out / "dist").glob("embedb-*.whl"))
    venv = out / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    start = time.monotonic()
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", str(wheel)], check=True, timeout=300)
    print(f"wheel installed in {time.monotonic() - start:.1f} s")
    return venv


def run_checks(venv: Path, *args: str, timeout: int = 300, env: dict | None = None) -> str:
    p = subprocess.run([str(venv / "bin" / "python"), str(CHECKS), *args], capture_output=True, text=True,
                       timeout=timeout, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_in_process_api(venv: Path) -> None:
    out = run_checks(venv, "api")
    assert out.count("PASS ") == 12 and out.strip().endswith("PASS a closed directory opens again in the same process"), out


def test_serve_for_tools_that_need_a_url(venv: Path) -> None:
    out = run_checks(venv, "serve", sys.executable)
    assert "PASS and its writes are seen in-process" in out, out


def with_suite_packages() -> dict:
    """The environment that lends the fresh venv this suite's packages (pandas, numpy, pytidb):
    the wheel is the only thing installed in the venv itself."""
    site = [p for p in sys.path if p.endswith("site-packages")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(site))


def test_dataframes_and_numpy(venv: Path) -> None:
    pytest.importorskip("pandas")
    out = run_checks(venv, "frames", env=with_suite_packages())
    assert "PASS a numpy array binds as a vector" in out, out
    assert "PASS numpy vectors search like their text, from the plan cache" in out, out
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return
    assert "PASS its buffers are the engine's, not copies in pyarrow's pool" in out and "FAIL" not in out, out


def test_pytidb_quick_start_through_serve(venv: Path, tmp_path: Path) -> None:
    pytest.importorskip("pytidb")
    out = run_checks(venv, "pytidb", str(tmp_path / "data"), env=with_suite_packages(), timeout=600)
    assert "PASS pytidb's rows are seen in-process" in out, out


def test_kill_9_loses_nothing_acknowledged(venv: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    p = subprocess.Popen([str(venv / "bin" / "python"), str(CHECKS), "write", str(data), "100000"],
                         stdout=subprocess.PIPE, text=True)
    acked = -1
    assert p.stdout is not None
    for line in p.stdout:
        acked = int(line)
        if acked >= 200:
            break
    # While it runs, a second process cannot open the same directory.
    second = subprocess.run([str(venv / "bin" / "python"), str(CHECKS), "count", str(data)], capture_output=True, text=True, timeout=60)
    assert second.returncode != 0 and "embedb.Error" in second.stderr, second.stdout + second.stderr
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    n, top = eval(run_checks(venv, "count", str(data)).strip())  # noqa: S307 - our own tuple
    assert top >= acked and n == top + 1, (n, top, acked)


def test_the_wheels_embedb_command(venv: Path) -> None:
    exe = venv / "bin" / "embedb"
    v = subprocess.run([str(exe), "version"], capture_output=True, text=True, timeout=60)
    assert v.returncode == 0 and "TiDB" in v.stdout, v.stdout + v.stderr
    golden = subprocess.run([sys.executable, str(ROOT / "tests" / "sqltest.py"), "--embedb", str(exe), "smoke", "select", "dml", "vector"],
                            capture_output=True, text=True, timeout=600)
    assert golden.returncode == 0, golden.stdout[-3000:] + golden.stderr[-3000:]


def test_langchain_and_llamaindex_stores(venv: Path, tmp_path: Path) -> None:
    """LangChain's and LlamaIndex's TiDB vector stores, unchanged, through `db.serve()`
    (tests/wheel/rag_stores.py): add, search with scores, metadata filters, delete, on a data
    directory that a second process then reopens. The stores and what they run on are pinned and
    installed, with the wheel, into a venv of their own; skipped when pip cannot reach the registry."""
    pins = ["langchain-community==0.4.2", "langchain-core==1.8.3", "llama-index-core==0.14.25",
            "llama-index-vector-stores-tidbvector==0.6.0", "tidb-vector==0.0.15", "SQLAlchemy==2.1.9", "PyMySQL==1.2.4"]
    offline = ("Failed to establish a new connection", "Temporary failure in name resolution", "Name or service not known",
               "Network is unreachable", "Connection refused", "ConnectTimeout", "Read timed out", "ProxyError")
    wheel = next((venv.parent / "dist").glob("embedb-*.whl"))
    rag = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(rag)], check=True, timeout=120)
    start = time.monotonic()
    pip = subprocess.run([str(rag / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          "--no-compile", str(wheel), *pins], capture_output=True, text=True, timeout=900)
    if pip.returncode != 0 and any(s in pip.stdout + pip.stderr for s in offline):
        pytest.skip(f"pip cannot reach the package registry: {pip.stderr.strip().splitlines()[-1]}")
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    print(f"stores installed in {time.monotonic() - start:.1f} s")
    script = str(ROOT / "tests" / "wheel" / "rag_stores.py")
    data = str(tmp_path / "data")
    p = subprocess.run([str(rag / "bin" / "python"), script, "stores", data], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("PASS ") == 46 and "PASS filter $or" in p.stdout and "PASS delete by ref_doc_id" in p.stdout, p.stdout
    assert p.stdout.strip().endswith("PASS VectorStoreIndex: delete_ref_doc"), p.stdout
    p = subprocess.run([str(rag / "bin" / "python"), script, "reopen", data], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.count("PASS ") == 3, p.stdout + p.stderr
