"""embedb in-process: ``connect()`` opens a database, ``execute()``/``sql()`` run statements.

A walk: ``embedb.connect("./data")`` opens (or creates) the data directory with the engine
``embedb serve`` runs and gives a :class:`Database` holding one session. ``db.execute(sql,
params)`` binds each ``?`` to a value (never pasted into the text) and runs the statement with
the GIL released; the :class:`Result` holds the rows as Python values (``fetchall()``,
``fetchone()``, ``df()`` for pandas, ``arrow()`` for pyarrow). ``db.cursor()`` is another session
on the same database, for another thread or a separate transaction. ``db.serve()`` starts the
MySQL protocol beside it and returns a SQLAlchemy URL for tools such as pytidb. Errors raise
:class:`Error` with the MySQL code (``e.code``) and message (``e.msg``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator, Optional, Sequence

from . import _embedb
from ._embedb import Error

__all__ = ["connect", "Database", "Result", "Error"]
__version__ = _embedb.__version__


class _F32Vector(bytes):
    """A float vector from numpy as its little-endian float32 bytes: bound as a VECTOR without
    making a Python float of each element."""


def _bindable(v: Any) -> Any:
    # A 1-D float numpy array: its float32 bytes (VECTOR values are float32).
    if getattr(v, "ndim", None) == 1 and getattr(getattr(v, "dtype", None), "kind", None) == "f":
        return _F32Vector(v.astype("<f4", copy=False).tobytes())
    # Other numpy arrays and scalars: plain Python values (a list of floats is a vector too).
    tolist = getattr(v, "tolist", None)
    if tolist is not None and not isinstance(v, (str, bytes)):
        return tolist()
    return v


class Result:
    """Rows of a statement (or its counts, for statements that return none)."""

    def __init__(self, native: Any) -> None:
        self._r = native

    @property
    def columns(self) -> list[str]:
        return list(self._r.columns)

    @property
    def rowcount(self) -> int:
        return self._r.rowcount

    @property
    def lastrowid(self) -> int:
        return self._r.lastrowid

    def fetchall(self) -> list[tuple]:
        return self._r.fetchall()

    def fetchone(self) -> Optional[tuple]:
        return self._r.fetchone()

    def df(self) -> Any:
        """The rows as a pandas DataFrame."""
        import pandas

        return pandas.DataFrame.from_records(self._r.fetchall(), columns=self.columns)

    def arrow(self) -> Any:
        """The result as a pyarrow Table that shares the engine's Arrow buffers (no copies)."""
        import pyarrow

        schema_capsule, batch_capsules = self._r.arrow_capsules()
        schema = pyarrow.Schema._import_from_c_capsule(schema_capsule)
        batches = [pyarrow.RecordBatch._import_from_c_capsule(s, a) for s, a in batch_capsules]
        return pyarrow.Table.from_batches(batches, schema=schema)


class Database:
    """A session on an embedb database (see the module's doc)."""

    def __init__(self, native: Any) -> None:
        self._c = native

    def execute(self, sql: str, params: Optional[Sequence[Any]] = None) -> Result:
        bound = None if params is None else [_bindable(p) for p in params]
        return Result(self._c.execute(sql, bound))

    sql = execute

    def cursor(self) -> "Database":
        return Database(self._c.cursor())

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Database"]:
        """``with db.transaction(): …`` commits at the end, or rolls back on an exception."""
        self.execute("BEGIN")
        try:
            yield self
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def serve(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Starts the MySQL protocol in this process; returns a SQLAlchemy URL for it."""
        bound = self._c.serve(host, port)
        return f"mysql+pymysql://root@{host}:{bound}/test"

    def close(self) -> None:
        self._c.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def connect(path: Optional[os.PathLike | str] = None) -> Database:
    """Opens the data directory ``path`` (created if missing), or an in-memory database."""
    return Database(_embedb.connect(None if path is None else os.fspath(path)))


def _cli() -> None:
    sys.exit(_embedb.cli(["embedb", *sys.argv[1:]]))
