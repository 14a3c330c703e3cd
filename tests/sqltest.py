#!/usr/bin/env python3
"""sqltest: golden-file SQL tests for embedb, in the pingcap/mysql-tester format.

Each ``tests/sql/NAME.test`` is replayed against an embedb server and its
output is compared byte for byte with ``tests/sql/NAME.result``.

Usage
-----
    python3 tests/sqltest.py                  # all tests, starts its own server
    python3 tests/sqltest.py smoke vector     # only these (names or paths)
    python3 tests/sqltest.py --record smoke   # (re)write smoke.result
    python3 tests/sqltest.py --port 4000      # use a server that is already running
    python3 tests/sqltest.py --self-test      # unit tests of this runner, no server

The server is ``embedb serve --host 127.0.0.1 --port N --data-dir DIR`` with a
free port and a fresh temporary data dir. The binary comes from ``--embedb
PATH``, else ``$EMBEDB_BIN``, else ``$CARGO_TARGET_DIR/debug/embedb``, else
``target/debug/embedb``.

.test format (the mysql-tester dialect)
---------------------------------------
* A statement runs until a line that ends with ``;`` (it may span lines; each
  line is trimmed and the lines are joined with ``\\n``). It is sent to the
  server as written, including the ``;``.
* Lines starting with ``#`` are comments. Blank lines are ignored.
* Lines starting with ``--`` (or ``-- ``) are directives; an unknown directive
  fails the test (use ``#`` for comments):
    --error CODE[,CODE...]   the next statement must fail with one of these
                             codes (numbers or ER_* names; 0 = success allowed)
    --echo TEXT              write TEXT to the result
    --enable_warnings / --disable_warnings
                             after each successful statement append the output
                             of SHOW WARNINGS (sorted, only if there are any)
    --sorted_result          sort the rows of the next statement
    --replace_regex /re/repl/ [/re2/repl2/ ...]
                             rewrite values (and error text) of the next statement
    --replace_column N TEXT [N TEXT ...]
                             replace column N of every row of the next statement
    --connect (name, host, user, passwd, db[, port])
    --connection name        switch session ("default" is the first one)
    --disconnect name        close a session, back to "default"
    --enable_query_log / --disable_query_log    echo statements or not
    --enable_result_log / --disable_result_log  write result sets or not
    --enable_info / --disable_info              write affected rows / info
    --sleep SECONDS
    --exit                   stop reading the file here
  ``connect``, ``connection``, ``disconnect``, ``echo``, ``error``, ``exit``,
  ``sleep`` and ``sorted_result`` may also be written without ``--`` as a
  ``;``-terminated line (``connection conn1;``), as in TiDB's test suites.
* Before each file the runner executes ``DROP DATABASE IF EXISTS test``,
  ``CREATE DATABASE test`` and ``USE test`` on a fresh "default" session.

.result format
--------------
* every statement is echoed as written, followed by
* for a result set: a header line of column names joined by TAB, then one line
  per row, values joined by TAB, SQL NULL written as ``NULL``, values written
  as the raw bytes the server sent (text protocol);
* nothing for a statement without a result set (OK packet);
* for an expected error: ``Error CODE (SQLSTATE): message`` (``Error CODE:
  message`` if the server sent no SQLSTATE). With several codes listed in
  ``--error`` the line is ``Got one of the listed errors`` instead, and
  nothing at all if the list starts with ``0``.
* ``--echo`` text, one line each.

Any unexpected error, a statement that succeeds where ``--error`` wanted a
failure, or a different error code, fails the test at that line.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import unittest
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEST_DIR = REPO_ROOT / "tests" / "sql"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_USER = "root"
DEFAULT_DB = "test"
DEFAULT_CONNECTION = "default"
STARTUP_TIMEOUT = 60.0
SUMMARY_PREFIX = "sqltest:"

# MySQL error names accepted by --error (ER_* as in mysqld_error.h).
ERROR_NAMES = {
    "ER_DB_CREATE_EXISTS": 1007,
    "ER_DB_DROP_EXISTS": 1008,
    "ER_DUP_KEY": 1022,
    "ER_CON_COUNT_ERROR": 1040,
    "ER_DBACCESS_DENIED_ERROR": 1044,
    "ER_ACCESS_DENIED_ERROR": 1045,
    "ER_NO_DB_ERROR": 1046,
    "ER_UNKNOWN_COM_ERROR": 1047,
    "ER_BAD_NULL_ERROR": 1048,
    "ER_BAD_DB_ERROR": 1049,
    "ER_TABLE_EXISTS_ERROR": 1050,
    "ER_BAD_TABLE_ERROR": 1051,
    "ER_NON_UNIQ_ERROR": 1052,
    "ER_BAD_FIELD_ERROR": 1054,
    "ER_WRONG_FIELD_WITH_GROUP": 1055,
    "ER_WRONG_GROUP_FIELD": 1056,
    "ER_WRONG_VALUE_COUNT": 1058,
    "ER_TOO_LONG_IDENT": 1059,
    "ER_DUP_FIELDNAME": 1060,
    "ER_DUP_KEYNAME": 1061,
    "ER_DUP_ENTRY": 1062,
    "ER_WRONG_FIELD_SPEC": 1063,
    "ER_PARSE_ERROR": 1064,
    "ER_EMPTY_QUERY": 1065,
    "ER_NONUNIQ_TABLE": 1066,
    "ER_INVALID_DEFAULT": 1067,
    "ER_MULTIPLE_PRI_KEY": 1068,
    "ER_TOO_MANY_KEYS": 1069,
    "ER_TOO_MANY_KEY_PARTS": 1070,
    "ER_TOO_LONG_KEY": 1071,
    "ER_KEY_COLUMN_DOES_NOT_EXITS": 1072,
    "ER_BLOB_USED_AS_KEY": 1073,
    "ER_TOO_BIG_FIELDLENGTH": 1074,
    "ER_WRONG_AUTO_KEY": 1075,
    "ER_NO_SUCH_INDEX": 1082,
    "ER_CANT_DROP_FIELD_OR_KEY": 1091,
    "ER_WRONG_DB_NAME": 1102,
    "ER_WRONG_TABLE_NAME": 1103,
    "ER_UNKNOWN_ERROR": 1105,
    "ER_UNKNOWN_TABLE": 1109,
    "ER_FIELD_SPECIFIED_TWICE": 1110,
    "ER_INVALID_GROUP_FUNC_USE": 1111,
    "ER_TABLE_MUST_HAVE_COLUMNS": 1113,
    "ER_UNKNOWN_CHARACTER_SET": 1115,
    "ER_FUNCTION_NOT_DEFINED": 1128,
    "ER_WRONG_VALUE_COUNT_ON_ROW": 1136,
    "ER_INVALID_USE_OF_NULL": 1138,
    "ER_MIX_OF_GROUP_FUNC_AND_FIELDS": 1140,
    "ER_NO_SUCH_TABLE": 1146,
    "ER_SYNTAX_ERROR": 1149,
    "ER_WRONG_COLUMN_NAME": 1166,
    "ER_PRIMARY_CANT_HAVE_NULL": 1171,
    "ER_KEY_DOES_NOT_EXITS": 1176,
    "ER_UNKNOWN_SYSTEM_VARIABLE": 1193,
    "ER_LOCK_WAIT_TIMEOUT": 1205,
    "ER_READ_ONLY_TRANSACTION": 1207,
    "ER_WRONG_ARGUMENTS": 1210,
    "ER_LOCK_DEADLOCK": 1213,
    "ER_WRONG_USAGE": 1221,
    "ER_WRONG_NUMBER_OF_COLUMNS_IN_SELECT": 1222,
    "ER_SPECIFIC_ACCESS_DENIED_ERROR": 1227,
    "ER_WRONG_VALUE_FOR_VAR": 1231,
    "ER_WRONG_TYPE_FOR_VAR": 1232,
    "ER_NOT_SUPPORTED_YET": 1235,
    "ER_INCORRECT_GLOBAL_LOCAL_VAR": 1238,
    "ER_OPERAND_COLUMNS": 1241,
    "ER_SUBQUERY_NO_1_ROW": 1242,
    "ER_DERIVED_MUST_HAVE_ALIAS": 1248,
    "ER_UNKNOWN_COLLATION": 1273,
    "ER_TRUNCATED_WRONG_VALUE": 1292,
    "ER_SP_DOES_NOT_EXIST": 1305,
    "ER_QUERY_INTERRUPTED": 1317,
    "ER_DIVISION_BY_ZERO": 1365,
    "ER_TRUNCATED_WRONG_VALUE_FOR_FIELD": 1366,
    "ER_DATA_TOO_LONG": 1406,
    "ER_ROW_IS_REFERENCED_2": 1451,
    "ER_NO_REFERENCED_ROW_2": 1452,
    "ER_DATA_OUT_OF_RANGE": 1690,
    "ER_CHECK_CONSTRAINT_VIOLATED": 3819,
    # client-side (CR_*) codes, for tests that expect a dropped connection
    "CR_SERVER_GONE_ERROR": 2006,
    "CR_SERVER_LOST": 2013,
}


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


class TestFileError(Exception):
    """The .test file itself is malformed (bad directive, bad argument)."""

    def __init__(self, message: str, line: Optional[int] = None):
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


@dataclass
class Command:
    kind: str  # "query" or the directive name ("error", "echo", ...)
    arg: str  # the SQL text for "query", the raw argument otherwise
    line: int  # 1-based line number where it starts


DIRECTIVES = frozenset(
    {
        "connect",
        "connection",
        "disconnect",
        "disable_info",
        "disable_query_log",
        "disable_result_log",
        "disable_warnings",
        "echo",
        "enable_info",
        "enable_query_log",
        "enable_result_log",
        "enable_warnings",
        "error",
        "exit",
        "replace_column",
        "replace_regex",
        "sleep",
        "sorted_result",
    }
)

# Directives also recognised as the first word of a ';'-terminated line.
BARE_DIRECTIVES = frozenset(
    {"connect", "connection", "disconnect", "echo", "error", "exit", "sleep", "sorted_result"}
)


def _first_word(s: str) -> str:
    i = 0
    while i < len(s) and s[i] not in "( ;\n\t":
        i += 1
    return s[:i]


def parse_test(text: str) -> list[Command]:
    """Split a .test file into statements and directives (mysql-tester rules)."""
    chunks: list[list[Any]] = []  # [text, line, is_directive]
    new_stmt = True
    for lineno, raw in enumerate(text.split("\n"), 1):
        s = raw.strip()
        if s.startswith("#"):
            new_stmt = True
            continue
        if s.startswith("--"):
            if s != "--":
                chunks.append([s, lineno, True])
            new_stmt = True
            continue
        if not s:
            continue
        if new_stmt:
            chunks.append([s, lineno, False])
        else:
            chunks[-1][0] += "\n" + s
        new_stmt = s.endswith(";")

    commands: list[Command] = []
    for s, lineno, is_directive in chunks:
        if is_directive:
            body = s[3:] if s[2:3] == " " else s[2:]
            word = _first_word(body)
            if word not in DIRECTIVES:
                raise TestFileError(
                    f"unknown directive {s!r} (write comments with '#')", lineno
                )
            commands.append(Command(word, body[len(word):], lineno))
            continue
        word = _first_word(s)
        if word in BARE_DIRECTIVES:
            arg = s[len(word):].strip()
            if arg.endswith(";"):
                arg = arg[:-1]
            commands.append(Command(word, arg, lineno))
        else:
            commands.append(Command("query", s, lineno))
    return commands


def _process_escapes(s: str) -> str:
    out = []
    i = 0
    table = {"n": "\n", "t": "\t", "r": "\r", "/": "/", "\\": "\\"}
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in table:
            out.append(table[s[i + 1]])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


@dataclass
class ReplaceRegex:
    pattern: re.Pattern
    replacement: str  # Go regexp template syntax: $1, ${1}, ${name}, $$

    def apply(self, text: str) -> str:
        return self.pattern.sub(lambda m: _go_expand(self.replacement, m), text)


_WORD = re.compile(r"[A-Za-z0-9_]+")


def _go_expand(template: str, m: re.Match) -> str:
    """Expand a replacement the way Go's Regexp.ReplaceAllString does."""
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        c = template[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        if i + 1 < n and template[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if i + 1 < n and template[i + 1] == "{":
            j = template.find("}", i + 2)
            name = template[i + 2 : j] if j != -1 else ""
            if j == -1 or not _WORD.fullmatch(name):
                out.append("$")
                i += 1
                continue
            i = j + 1
        else:
            wm = _WORD.match(template, i + 1)
            if not wm:
                out.append("$")
                i += 1
                continue
            name = wm.group(0)
            i = wm.end()
        value: Optional[str] = None
        if name.isdigit():
            idx = int(name)
            if idx <= (m.re.groups or 0):
                value = m.group(idx)
        elif name in m.re.groupindex:
            value = m.group(name)
        out.append(value or "")
    return "".join(out)


def parse_replace_regex(arg: str) -> list[ReplaceRegex]:
    """Parse `/re/repl/ /re2/repl2/` (a '/' preceded by '\\' does not count)."""
    slashes = [i for i, c in enumerate(arg) if c == "/" and (i == 0 or arg[i - 1] != "\\")]
    if not slashes or len(slashes) % 3 != 0:
        raise ValueError(f"cannot parse --replace_regex {arg!r}; expected /regex/replacement/")
    result = []
    for k in range(0, len(slashes), 3):
        begin, middle, end = slashes[k : k + 3]
        try:
            pattern = re.compile(arg[begin + 1 : middle])
        except re.error as e:
            raise ValueError(f"bad regex in --replace_regex: {e}") from None
        result.append(ReplaceRegex(pattern, _process_escapes(arg[middle + 1 : end])))
    return result


def parse_connect_args(arg: str) -> list[str]:
    s = arg.strip()
    if s.endswith(";"):
        s = s[:-1].strip()
    if not (s.startswith("(") and s.endswith(")")):
        raise ValueError(f"--connect wants (name, host, user, passwd, db), got {arg.strip()!r}")
    parts = [p.strip() for p in s[1:-1].split(",")]
    if not parts[0]:
        raise ValueError("--connect needs a connection name")
    return parts + [""] * (6 - len(parts))


def parse_error_codes(arg: str) -> list[str]:
    s = arg.strip()
    if s.endswith(";"):
        s = s[:-1]
    codes = [c.strip() for c in s.split(",")]
    if not s.strip() or any(not c for c in codes):
        raise ValueError(f"--error wants CODE[,CODE...], got {arg.strip()!r}")
    for c in codes:
        resolve_error_code(c)
    return codes


def resolve_error_code(code: str) -> int:
    if code.isdigit():
        return int(code)
    if code in ERROR_NAMES:
        return ERROR_NAMES[code]
    raise ValueError(f"unknown error name {code!r} in --error (use the numeric code)")


# ---------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------


class TestFailure(Exception):
    """The test failed at a statement (unexpected error, wrong error, ...)."""


def _to_bytes(v: Any) -> Optional[bytes]:
    if v is None or isinstance(v, bytes):
        return v
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    return str(v).encode("utf-8", "surrogateescape")


def _server_error(exc: BaseException) -> Optional[tuple[int, Optional[str], str]]:
    """(code, sqlstate, message) if exc is an error reported by the server/driver."""
    try:
        import pymysql
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(exc, pymysql.err.MySQLError):
        return None
    args = exc.args
    if not args or not isinstance(args[0], int) or args[0] <= 0:
        return None
    message = str(args[1]) if len(args) > 1 else ""
    return args[0], getattr(exc, "sqlstate", None), message


def format_error(code: int, sqlstate: Optional[str], message: str) -> str:
    """The error line go-sql-driver's MySQLError.Error() produces."""
    if sqlstate:
        return f"Error {code} ({sqlstate}): {message}"
    return f"Error {code}: {message}"


def _sort_key(row: list[Optional[bytes]]) -> list[tuple[bytes, int]]:
    # bytes order, with NULL sorting just before the empty string
    return [(b"" if v is None else v, 0 if v is None else 1) for v in row]


def install_sqlstate_hook() -> None:
    """Make sure pymysql exceptions carry .sqlstate (older pymysql drops it)."""
    import pymysql

    original = pymysql.err.raise_mysql_exception
    if getattr(original, "_sqltest_hook", False):
        return

    def hook(data: bytes) -> None:
        try:
            original(data)
        except pymysql.err.MySQLError as e:
            if getattr(e, "sqlstate", None) is None and len(data) >= 9 and data[3] == 0x23:
                e.sqlstate = data[4:9].decode("ascii", "replace")
            raise

    hook._sqltest_hook = True  # type: ignore[attr-defined]
    pymysql.err.raise_mysql_exception = hook


def pymysql_connect(host: str, port: int, user: str, password: str,
                    database: Optional[str], timeout: float):
    """A raw-bytes pymysql session: values come back exactly as sent."""
    import pymysql

    encoders = {k: v for k, v in pymysql.converters.conversions.items() if not isinstance(k, int)}
    return pymysql.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        database=database or None,
        charset="utf8mb4",
        use_unicode=False,  # row values stay bytes
        conv=encoders,  # no decoders: no int/Decimal/datetime conversion
        autocommit=None,  # keep the server default, like the Go driver
        connect_timeout=10,
        read_timeout=timeout,
        write_timeout=timeout,
    )


@dataclass
class QueryResult:
    columns: Optional[list[str]]  # None: no result set
    rows: list[list[Optional[bytes]]]
    affected_rows: int
    info: str


def execute_sql(conn: Any, sql: str) -> QueryResult:
    cur = conn.cursor()
    try:
        cur.execute(sql)
        columns: Optional[list[str]] = None
        rows: list[list[Optional[bytes]]] = []
        affected = 0
        info = ""
        while True:
            if cur.description is not None:
                if columns is None:
                    columns = [str(d[0]) for d in cur.description]
                rows.extend([_to_bytes(v) for v in r] for r in cur.fetchall())
            else:
                affected = cur.rowcount if cur.rowcount and cur.rowcount > 0 else 0
                result = getattr(cur, "_result", None)
                msg = getattr(result, "message", None)
                if msg:
                    raw = bytes(msg) if isinstance(msg, (bytes, bytearray)) else str(msg).encode()
                    if raw and raw[0] == len(raw) - 1:  # length-prefixed info string
                        raw = raw[1:]
                    info = raw.decode("utf-8", "replace")
            if not cur.nextset():
                break
        return QueryResult(columns, rows, affected, info)
    finally:
        try:
            cur.close()
        except Exception:
            pass


ConnectFn = Callable[[str, int, str, str, Optional[str]], Any]


@dataclass
class FileOutcome:
    name: str
    ok: bool
    output: bytes = b""
    message: str = ""
    diff: str = ""
    recorded: bool = False
    seconds: float = 0.0


@dataclass
class _State:
    query_log: bool = True
    result_log: bool = True
    warnings: bool = False
    info: bool = False
    sorted_result: bool = False
    expected_errors: Optional[list[str]] = None
    replace_regex: list[ReplaceRegex] = field(default_factory=list)
    replace_column: list[tuple[int, bytes]] = field(default_factory=list)


class FileRunner:
    """Replays one parsed .test file and produces its .result bytes."""

    def __init__(self, connect: ConnectFn, host: str, port: int, user: str, password: str):
        self.connect = connect
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.out = bytearray()
        self.conns: dict[str, Any] = {}
        self.current = DEFAULT_CONNECTION
        self.st = _State()

    # -- output helpers -----------------------------------------------------
    def w(self, text: str | bytes) -> None:
        self.out += text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")

    def _regex(self, value: bytes) -> bytes:
        if not self.st.replace_regex:
            return value
        s = value.decode("utf-8", "surrogateescape")
        for r in self.st.replace_regex:
            s = r.apply(s)
        return s.encode("utf-8", "surrogateescape")

    def write_rows(self, columns: list[str], rows: list[list[Optional[bytes]]], sort: bool) -> None:
        rows = [list(r) for r in rows]
        if sort:
            rows.sort(key=_sort_key)
        for col, value in self.st.replace_column:
            for r in rows:
                if len(r) >= col:
                    r[col - 1] = value
        self.w("\t".join(columns) + "\n")
        for r in rows:
            cells = [b"NULL" if v is None else self._regex(v) for v in r]
            self.w(b"\t".join(cells) + b"\n")

    # -- sessions -----------------------------------------------------------
    @property
    def conn(self) -> Any:
        return self.conns[self.current]

    def open_default(self) -> None:
        conn = self.connect(self.host, self.port, self.user, self.password, None)
        self.conns[DEFAULT_CONNECTION] = conn
        self.current = DEFAULT_CONNECTION
        for sql in (f"DROP DATABASE IF EXISTS `{DEFAULT_DB}`",
                    f"CREATE DATABASE `{DEFAULT_DB}`",
                    f"USE `{DEFAULT_DB}`"):
            try:
                execute_sql(conn, sql)
            except Exception as e:
                raise TestFailure(f"setup statement {sql!r} failed: {_describe(e)}") from e

    def close_all(self) -> None:
        for conn in self.conns.values():
            try:
                conn.close()
            except Exception:
                pass
        self.conns.clear()

    # -- main loop ----------------------------------------------------------
    def run(self, commands: list[Command]) -> None:
        self.open_default()
        for cmd in commands:
            try:
                if cmd.kind == "exit":
                    break
                self.step(cmd)
            except TestFileError:
                raise
            except ValueError as e:
                raise TestFileError(str(e), cmd.line) from None
            except TestFailure as e:
                raise TestFailure(f"line {cmd.line}: {e}") from None

    def step(self, cmd: Command) -> None:
        k, st = cmd.kind, self.st
        if k == "query":
            try:
                self.run_query(cmd.arg)
            finally:
                st.expected_errors = None
                st.sorted_result = False
                st.replace_regex = []
                st.replace_column = []
        elif k == "error":
            st.expected_errors = parse_error_codes(cmd.arg)
        elif k == "echo":
            self.w(cmd.arg.strip() + "\n")
        elif k == "sorted_result":
            st.sorted_result = True
        elif k == "replace_regex":
            st.replace_regex = parse_replace_regex(cmd.arg.strip())
        elif k == "replace_column":
            fields = cmd.arg.split()
            if len(fields) < 2:
                raise ValueError("--replace_column wants N TEXT [N TEXT ...]")
            pairs = []
            for i in range(0, len(fields) - 1, 2):
                if not fields[i].isdigit() or int(fields[i]) < 1:
                    raise ValueError(f"--replace_column: bad column number {fields[i]!r}")
                pairs.append((int(fields[i]), fields[i + 1].encode("utf-8")))
            st.replace_column = pairs
        elif k in ("enable_warnings", "disable_warnings"):
            st.warnings = k.startswith("enable")
        elif k in ("enable_query_log", "disable_query_log"):
            st.query_log = k.startswith("enable")
        elif k in ("enable_result_log", "disable_result_log"):
            st.result_log = k.startswith("enable")
        elif k in ("enable_info", "disable_info"):
            st.info = k.startswith("enable")
        elif k == "sleep":
            try:
                time.sleep(float(cmd.arg.strip().rstrip(";")))
            except ValueError:
                raise ValueError(f"--sleep wants a number of seconds, got {cmd.arg.strip()!r}")
        elif k == "connect":
            self.do_connect(cmd.arg)
        elif k == "connection":
            name = cmd.arg.strip().rstrip(";").strip()
            if name not in self.conns:
                raise ValueError(f"--connection: no connection named {name!r}")
            self.current = name
        elif k == "disconnect":
            name = cmd.arg.strip().rstrip(";").strip()
            if name not in self.conns:
                raise ValueError(f"--disconnect: no connection named {name!r}")
            if name == DEFAULT_CONNECTION:
                raise ValueError("--disconnect: cannot close the default connection")
            conn = self.conns.pop(name)
            try:
                conn.close()
            except Exception:
                pass
            self.current = DEFAULT_CONNECTION
        else:  # pragma: no cover - parse_test rejects unknown directives
            raise ValueError(f"unsupported directive {k!r}")

    def do_connect(self, arg: str) -> None:
        name, host, user, password, db, port = parse_connect_args(arg)[:6]
        if name in self.conns:
            raise ValueError(f"--connect: connection {name!r} already exists")
        if host in ("", "localhost", "127.0.0.1", "::1"):
            host = self.host
        port_no = int(port) if port else self.port
        expected = self.st.expected_errors
        self.st.expected_errors = None
        try:
            conn = self.connect(host, port_no, user or self.user, password, db or DEFAULT_DB)
        except Exception as e:
            err = _server_error(e)
            if expected and err and any(resolve_error_code(c) == err[0] for c in expected):
                return
            raise TestFailure(f"--connect {name} failed: {_describe(e)}") from e
        self.conns[name] = conn
        self.current = name

    def run_query(self, sql: str) -> None:
        st = self.st
        if st.query_log:
            self.w(sql + "\n")
        try:
            res = execute_sql(self.conn, sql)
        except Exception as e:
            self.handle_error(sql, e)
            return
        if st.result_log and res.columns is not None:
            self.write_rows(res.columns, res.rows, st.sorted_result)
        if st.info:
            self.w(f"affected rows: {res.affected_rows}\ninfo: {res.info}\n")
        if st.warnings:
            try:
                warn = execute_sql(self.conn, "SHOW WARNINGS")
            except Exception as e:
                raise TestFailure(f"SHOW WARNINGS failed: {_describe(e)}") from e
            if warn.rows:
                self.write_rows(warn.columns or ["Level", "Code", "Message"], warn.rows, True)
        expected = st.expected_errors
        if expected and not any(c == "0" for c in expected):
            raise TestFailure(
                f"statement succeeded but --error {','.join(expected)} was expected:\n    {sql}"
            )

    def handle_error(self, sql: str, exc: BaseException) -> None:
        expected = self.st.expected_errors
        err = _server_error(exc)
        if err is None:
            raise TestFailure(f"client/protocol failure running:\n    {sql}\n  {_describe(exc)}") from exc
        code, sqlstate, message = err
        text = format_error(code, sqlstate, message).replace("\r", "")
        if not expected:
            raise TestFailure(f"unexpected error running:\n    {sql}\n  {text}")
        if any(resolve_error_code(c) == code for c in expected):
            if len(expected) == 1:
                self.w(self._regex(text.encode("utf-8", "surrogateescape")) + b"\n")
            elif expected[0] != "0":
                self.w("Got one of the listed errors\n")
            return
        raise TestFailure(
            f"expected error {','.join(expected)} but got {text}\n  statement:\n    {sql}"
        )


def _describe(exc: BaseException) -> str:
    err = _server_error(exc)
    if err is not None:
        return format_error(*err)
    return f"{type(exc).__name__}: {exc}"


def run_test_file(path: Path, result_path: Path, name: str, connect: ConnectFn,
                  host: str, port: int, user: str, password: str, record: bool) -> FileOutcome:
    start = time.monotonic()
    outcome = FileOutcome(name=name, ok=False)
    try:
        commands = parse_test(path.read_text(encoding="utf-8"))
    except (TestFileError, OSError, UnicodeDecodeError) as e:
        outcome.message = f"cannot parse {path}: {e}"
        return outcome
    runner = FileRunner(connect, host, port, user, password)
    try:
        runner.run(commands)
    except (TestFailure, TestFileError) as e:
        outcome.message = str(e)
    except Exception as e:  # a driver/protocol blow-up must not kill the whole run
        outcome.message = "internal error:\n" + "".join(
            traceback.format_exception(type(e), e, e.__traceback__))
    finally:
        runner.close_all()
    outcome.output = bytes(runner.out)
    outcome.seconds = time.monotonic() - start
    if outcome.message:
        return outcome
    if record:
        result_path.write_bytes(outcome.output)
        outcome.ok = outcome.recorded = True
        return outcome
    if not result_path.exists():
        outcome.message = (f"missing {_rel(result_path)}; run "
                           f"`python3 tests/sqltest.py --record {name}` and review it")
        return outcome
    expected = result_path.read_bytes()
    if expected == outcome.output:
        outcome.ok = True
    else:
        outcome.message = "result differs from " + _rel(result_path)
        outcome.diff = unified_diff(expected, outcome.output, _rel(result_path), f"{name} (actual)")
    return outcome


def unified_diff(expected: bytes, actual: bytes, from_name: str, to_name: str) -> str:
    a = expected.decode("utf-8", "replace").splitlines(keepends=True)
    b = actual.decode("utf-8", "replace").splitlines(keepends=True)
    lines = []
    for line in difflib.unified_diff(a, b, fromfile=from_name, tofile=to_name):
        lines.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(lines)


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


# ---------------------------------------------------------------------------
# Server management (also used by tests/python/conftest.py)
# ---------------------------------------------------------------------------


class ServerError(Exception):
    pass


def default_embedb_binary() -> Path:
    env_bin = os.environ.get("EMBEDB_BIN")
    if env_bin:
        return Path(env_bin)
    target = os.environ.get("CARGO_TARGET_DIR")
    target_dir = Path(target) if target else REPO_ROOT / "target"
    if not target_dir.is_absolute():
        target_dir = REPO_ROOT / target_dir
    return target_dir / "debug" / "embedb"


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def mysql_greeting_ok(host: str, port: int, timeout: float = 2.0) -> bool:
    """True if something on host:port sends a MySQL protocol-10 handshake."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            buf = b""
            while len(buf) < 5:
                chunk = s.recv(64)
                if not chunk:
                    return False
                buf += chunk
            return buf[4] == 10
    except OSError:
        return False


class EmbedbServer:
    """An `embedb serve` child process with its own data dir and log file."""

    def __init__(self, binary: Optional[Path | str] = None, data_dir: Optional[Path | str] = None,
                 host: str = DEFAULT_HOST, port: Optional[int] = None,
                 log_path: Optional[Path | str] = None, extra_args: tuple[str, ...] = ()):
        self.binary = Path(binary) if binary else default_embedb_binary()
        self._workdir: Optional[Path] = None
        if data_dir is None or log_path is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="embedb-test-"))
        self.data_dir = Path(data_dir) if data_dir else self._workdir / "data"  # type: ignore[operator]
        self.log_path = Path(log_path) if log_path else self._workdir / "server.log"  # type: ignore[operator]
        self.host = host
        self.port = port
        self.extra_args = tuple(extra_args)
        self.proc: Optional[subprocess.Popen] = None

    @property
    def address(self) -> tuple[str, int]:
        assert self.port is not None
        return self.host, self.port

    def command(self) -> list[str]:
        return [str(self.binary), "serve", "--host", self.host, "--port", str(self.port),
                "--data-dir", str(self.data_dir), *self.extra_args]

    def start(self, timeout: float = STARTUP_TIMEOUT) -> "EmbedbServer":
        if self.alive():
            raise ServerError("server already running")
        if not self.binary.exists():
            raise ServerError(
                f"embedb binary not found at {self.binary}\n"
                "build it with `cargo build --bins` (CARGO_TARGET_DIR is honoured) "
                "or pass --embedb PATH / set EMBEDB_BIN")
        if self.port is None:
            self.port = free_port(self.host)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        with open(self.log_path, "ab") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} starting: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env, cwd=str(REPO_ROOT),
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                raise ServerError(f"embedb exited with code {rc} during startup\n"
                                  f"--- server log ({self.log_path}) ---\n{self.log_text()}")
            if mysql_greeting_ok(self.host, self.port, timeout=1.0):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"embedb did not accept MySQL connections on {self.host}:{self.port}"
                                  f" within {timeout:.0f}s\n--- server log ({self.log_path}) ---\n"
                                  f"{self.log_text()}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> Optional[int]:
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown (SIGTERM), SIGKILL if it does not exit in time."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """Crash the server: SIGKILL, no chance to flush anything."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, hard: bool = False, same_port: bool = True,
                timeout: float = STARTUP_TIMEOUT) -> "EmbedbServer":
        """Stop (SIGTERM, or SIGKILL if hard) and start again on the same data dir."""
        self.kill() if hard else self.stop()
        if not same_port:
            self.port = None
        return self.start(timeout)

    def log_text(self, max_lines: int = 200) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        if len(lines) > max_lines:
            lines = [f"... ({len(lines) - max_lines} earlier lines omitted)"] + lines[-max_lines:]
        return "\n".join(lines)

    def cleanup(self) -> None:
        """Stop the server and delete the temporary directory this object created."""
        self.stop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> "EmbedbServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def discover(test_dir: Path, names: list[str]) -> tuple[list[tuple[str, Path]], list[str]]:
    """[(name, path)] to run, and the names that could not be found."""
    found: list[tuple[str, Path]] = []
    missing: list[str] = []
    if not names:
        for p in sorted(test_dir.rglob("*.test")):
            found.append((p.relative_to(test_dir).with_suffix("").as_posix(), p))
        return found, missing
    for n in names:
        p = Path(n)
        if p.suffix == ".test" and p.exists():
            p = p.resolve()
            try:
                name = p.relative_to(test_dir.resolve()).with_suffix("").as_posix()
            except ValueError:
                name = p.stem
            found.append((name, p))
            continue
        n = n[:-5] if n.endswith(".test") else n
        candidate = test_dir / f"{n}.test"
        if candidate.exists():
            found.append((n, candidate))
        else:
            missing.append(n)
    return found, missing


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        description="Run embedb golden SQL tests (mysql-tester format).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Without --port a fresh `embedb serve` is started on a free port and temp data dir.")
    ap.add_argument("tests", nargs="*", help="test names (e.g. smoke) or paths to .test files")
    ap.add_argument("--record", action="store_true", help="write/overwrite .result files")
    ap.add_argument("--embedb", metavar="PATH", help="embedb binary (default: $EMBEDB_BIN, "
                    "$CARGO_TARGET_DIR/debug/embedb, target/debug/embedb)")
    ap.add_argument("--host", default=DEFAULT_HOST, help="server host (default %(default)s)")
    ap.add_argument("--port", type=int, help="use an already running server on this port")
    ap.add_argument("--user", default=DEFAULT_USER)
    ap.add_argument("--password", default="")
    ap.add_argument("--test-dir", type=Path, default=DEFAULT_TEST_DIR,
                    help="directory of .test/.result files (default tests/sql)")
    ap.add_argument("--startup-timeout", type=float, default=STARTUP_TIMEOUT)
    ap.add_argument("--statement-timeout", type=float, default=120.0,
                    help="seconds to wait for one statement (default %(default)s)")
    ap.add_argument("-x", "--fail-fast", action="store_true", help="stop at the first failure")
    ap.add_argument("--keep-data", action="store_true", help="keep the server's temp dir")
    ap.add_argument("--self-test", action="store_true", help="run the runner's own unit tests")
    args = ap.parse_args(argv)
    try:
        sys.stdout.reconfigure(line_buffering=True)  # keep output ordered in CI logs
    except (AttributeError, ValueError):
        pass

    if args.self_test:
        return run_self_test()

    try:
        import pymysql  # noqa: F401
    except ImportError:
        print("sqltest needs pymysql: pip install pymysql "
              "(or run .ci/run, which sets up ~/.cache/embedb-venv)", file=sys.stderr)
        print(f"{SUMMARY_PREFIX} 0 passed, 1 failed")
        return 1
    install_sqlstate_hook()

    test_dir = args.test_dir.resolve()
    tests, missing = discover(test_dir, args.tests)
    passed = failed = 0
    for n in missing:
        print(f"FAIL {n}: no such test {test_dir / (n + '.test')}")
        failed += 1
    if not tests:
        if not missing:
            print(f"no .test files under {test_dir}")
        print(f"{SUMMARY_PREFIX} {passed} passed, {failed} failed")
        return 1 if failed else 0

    server: Optional[EmbedbServer] = None
    host, port = args.host, args.port
    if port is None:
        server = EmbedbServer(binary=args.embedb, host=args.host)
        try:
            server.start(timeout=args.startup_timeout)
        except ServerError as e:
            print(f"could not start the server: {e}")
            failed += len(tests)
            print(f"{SUMMARY_PREFIX} {passed} passed, {failed} failed")
            if not args.keep_data:
                server.cleanup()
            return 1
        port = server.port
        print(f"embedb started on {host}:{port} (data {server.data_dir}, log {server.log_path})")

    def connect(h: str, p: int, user: str, password: str, db: Optional[str]):
        return pymysql_connect(h, p, user, password, db, args.statement_timeout)

    any_failure_with_server = False
    try:
        for i, (name, path) in enumerate(tests):
            if server is not None and not server.alive():
                rest = len(tests) - i
                print(f"FAIL embedb exited (code {server.returncode()}); {rest} test(s) not run\n"
                      f"--- server log ({server.log_path}) ---\n{server.log_text(80)}")
                failed += rest
                break
            result_path = path.with_suffix(".result")
            outcome = run_test_file(path, result_path, name, connect, host, port,
                                    args.user, args.password, args.record)
            if outcome.ok:
                passed += 1
                note = f", recorded {_rel(result_path)}" if outcome.recorded else ""
                print(f"ok   {name} ({outcome.seconds:.2f}s){note}")
            else:
                failed += 1
                any_failure_with_server = True
                print(f"FAIL {name}: {outcome.message}")
                if outcome.diff:
                    sys.stdout.write(outcome.diff)
                if args.fail_fast:
                    break
            sys.stdout.flush()
    finally:
        if server is not None:
            if any_failure_with_server:
                print(f"--- last lines of the server log ({server.log_path}) ---\n"
                      f"{server.log_text(40)}")
            server.stop()
            if not args.keep_data:
                server.cleanup()
            else:
                print(f"kept server files in {server.data_dir.parent}")
    print(f"{SUMMARY_PREFIX} {passed} passed, {failed} failed")
    return 1 if failed else 0


# ---------------------------------------------------------------------------
# --self-test: the runner's own unit tests (no server needed)
# ---------------------------------------------------------------------------


class FakeConnection:
    """Just enough of a pymysql connection for FileRunner, driven by a script.

    `script` maps SQL text to a response:
      ("rows", [col, ...], [[value, ...], ...])
      ("ok", affected_rows)
      ("error", code, sqlstate, message)
    Unknown statements return an empty OK.
    """

    def __init__(self, script: dict, log: list, name: str):
        self.script = script
        self.log = log
        self.name = name

    def cursor(self) -> "FakeCursor":
        return FakeCursor(self)

    def close(self) -> None:
        self.log.append((self.name, "<close>"))


class FakeCursor:
    def __init__(self, conn: FakeConnection):
        self.conn = conn
        self.description = None
        self.rowcount = 0
        self._rows: list = []

    def execute(self, sql: str) -> None:
        import pymysql

        self.conn.log.append((self.conn.name, sql))
        resp = self.conn.script.get(sql, ("ok", 0))
        if resp[0] == "error":
            _, code, sqlstate, msg = resp
            cls = pymysql.err.ProgrammingError
            e = cls(code, msg)
            e.sqlstate = sqlstate
            raise e
        if resp[0] == "fatal":
            raise _protocol_error()
        if resp[0] == "rows":
            self.description = tuple((c, 253, None, None, None, None, True) for c in resp[1])
            self._rows = [tuple(_to_bytes(v) for v in r) for r in resp[2]]
            self.rowcount = len(self._rows)
        else:
            self.rowcount = resp[1]

    def fetchall(self) -> list:
        rows, self._rows = self._rows, []
        return rows

    def nextset(self) -> None:
        return None

    def close(self) -> None:
        pass


def _protocol_error() -> Exception:
    return AssertionError("Protocol error, expecting EOF")


class SelfTest(unittest.TestCase):
    maxDiff = None

    # -- parser -------------------------------------------------------------
    def test_parse_statements_and_directives(self) -> None:
        text = (
            "# comment\n"
            "CREATE TABLE t (a INT);\n"
            "SELECT a\n"
            "  FROM t\n"
            "  WHERE a > 1;\n"
            "\n"
            "--error 1146\n"
            "-- error ER_NO_SUCH_TABLE , 0\n"
            "--echo hello world  \n"
            "--sorted_result\n"
            "connection conn1;\n"
            "--exit\n"
        )
        cmds = parse_test(text)
        self.assertEqual([c.kind for c in cmds],
                         ["query", "query", "error", "error", "echo", "sorted_result",
                          "connection", "exit"])
        self.assertEqual(cmds[1].arg, "SELECT a\nFROM t\nWHERE a > 1;")
        self.assertEqual(cmds[1].line, 3)
        self.assertEqual(parse_error_codes(cmds[3].arg), ["ER_NO_SUCH_TABLE", "0"])
        self.assertEqual(cmds[6].arg, "conn1")

    def test_comment_line_ends_statement(self) -> None:
        cmds = parse_test("SELECT 1\n# c\nFROM dual;\n")
        self.assertEqual([c.arg for c in cmds], ["SELECT 1", "FROM dual;"])

    def test_unterminated_last_statement_kept(self) -> None:
        cmds = parse_test("SELECT 1;\nSELECT 2")
        self.assertEqual([c.arg for c in cmds], ["SELECT 1;", "SELECT 2"])

    def test_unknown_directive_is_an_error(self) -> None:
        with self.assertRaises(TestFileError) as cm:
            parse_test("SELECT 1;\n-- just a comment\n")
        self.assertEqual(cm.exception.line, 2)

    def test_sql_starting_with_replace_is_a_query(self) -> None:
        cmds = parse_test("replace into t values (1);\n")
        self.assertEqual(cmds[0].kind, "query")

    def test_error_codes(self) -> None:
        self.assertEqual(parse_error_codes(" 1146,ER_DUP_ENTRY "), ["1146", "ER_DUP_ENTRY"])
        self.assertEqual(resolve_error_code("ER_DUP_ENTRY"), 1062)
        with self.assertRaises(ValueError):
            parse_error_codes("ER_NOT_A_REAL_NAME")
        with self.assertRaises(ValueError):
            parse_error_codes("")

    def test_replace_regex(self) -> None:
        rs = parse_replace_regex(r"/[0-9]+ms/<t>/ /a\/b/x\ty/")
        self.assertEqual(len(rs), 2)
        self.assertEqual(rs[0].apply("took 15ms, 3ms"), "took <t>, <t>")
        self.assertEqual(rs[1].apply("a/b"), "x\ty")
        r = parse_replace_regex(r"/(\w+)@(\w+)/$2 at ${1}$$/")[0]
        self.assertEqual(r.apply("me@host"), "host at me$")
        with self.assertRaises(ValueError):
            parse_replace_regex("/only-two/")

    def test_connect_args(self) -> None:
        self.assertEqual(parse_connect_args("(conn1, localhost, root,, test);"),
                         ["conn1", "localhost", "root", "", "test", ""])
        with self.assertRaises(ValueError):
            parse_connect_args("conn1, localhost")

    # -- execution ------------------------------------------------------------
    def run_fake(self, text: str, script: dict) -> tuple[bytes, list, Optional[str]]:
        log: list = []

        def connect(host: str, port: int, user: str, password: str, db: Optional[str]):
            name = f"{user}@{host}:{port}/{db or ''}#{sum(1 for e in log if e[1] == '<connect>')}"
            log.append((name, "<connect>"))
            return FakeConnection(script, log, name)

        runner = FileRunner(connect, "127.0.0.1", 4000, "root", "")
        message = None
        try:
            runner.run(parse_test(text))
        except (TestFailure, TestFileError) as e:
            message = str(e)
        finally:
            runner.close_all()
        return bytes(runner.out), log, message

    def test_result_format(self) -> None:
        script = {
            "SELECT a, b FROM t;": ("rows", ["a", "b"], [[b"2", None], [b"1", b"x y"]]),
            "SELECT a FROM empty;": ("rows", ["a"], []),
            "INSERT INTO t VALUES (1);": ("ok", 1),
            "SELECT * FROM nope;": ("error", 1146, "42S02", "Table 'test.nope' doesn't exist"),
            "SELEC 1;": ("error", 1064, "42000", "You have an error in your SQL syntax"),
        }
        text = (
            "INSERT INTO t VALUES (1);\n"
            "SELECT a, b FROM t;\n"
            "--sorted_result\n"
            "SELECT a, b FROM t;\n"
            "SELECT a FROM empty;\n"
            "--error ER_NO_SUCH_TABLE\n"
            "SELECT * FROM nope;\n"
            "--error 1064,1146\n"
            "SELECT * FROM nope;\n"
            "--error 0,1146\n"
            "SELECT * FROM nope;\n"
            "--error 0\n"
            "INSERT INTO t VALUES (1);\n"
            "--echo done\n"
        )
        out, log, msg = self.run_fake(text, script)
        self.assertIsNone(msg)
        self.assertEqual(out.decode(), (
            "INSERT INTO t VALUES (1);\n"
            "SELECT a, b FROM t;\n"
            "a\tb\n2\tNULL\n1\tx y\n"
            "SELECT a, b FROM t;\n"
            "a\tb\n1\tx y\n2\tNULL\n"
            "SELECT a FROM empty;\n"
            "a\n"
            "SELECT * FROM nope;\n"
            "Error 1146 (42S02): Table 'test.nope' doesn't exist\n"
            "SELECT * FROM nope;\n"
            "Got one of the listed errors\n"
            "SELECT * FROM nope;\n"
            "INSERT INTO t VALUES (1);\n"
            "done\n"
        ))
        setup = [sql for _, sql in log[1:4]]
        self.assertEqual(setup, ["DROP DATABASE IF EXISTS `test`", "CREATE DATABASE `test`",
                                 "USE `test`"])

    def test_sort_puts_null_before_empty(self) -> None:
        script = {"SELECT v;": ("rows", ["v"], [[b"b"], [b""], [None], [b"a"]])}
        out, _, msg = self.run_fake("--sorted_result\nSELECT v;\nSELECT v;\n", script)
        self.assertIsNone(msg)
        self.assertEqual(out, b"SELECT v;\nv\nNULL\n\na\nb\nSELECT v;\nv\nb\n\nNULL\na\n")

    def test_replace_regex_and_column_apply_to_next_statement_only(self) -> None:
        script = {
            "SELECT 1;": ("rows", ["x", "y"], [[b"12ms", b"k"]]),
            "SELECT * FROM nope;": ("error", 1146, "42S02", "Table 'test.nope' doesn't exist"),
        }
        text = ("--replace_regex /[0-9]+ms/<t>/\n--replace_column 2 #\nSELECT 1;\nSELECT 1;\n"
                "--replace_regex /'[a-z.]+'/<name>/\n--error 1146\nSELECT * FROM nope;\n")
        out, _, msg = self.run_fake(text, script)
        self.assertIsNone(msg)
        self.assertEqual(out.decode(), "SELECT 1;\nx\ty\n<t>\t#\nSELECT 1;\nx\ty\n12ms\tk\n"
                         "SELECT * FROM nope;\nError 1146 (42S02): Table <name> doesn't exist\n")

    def test_warnings(self) -> None:
        script = {
            "SHOW WARNINGS": ("rows", ["Level", "Code", "Message"],
                              [[b"Warning", b"1366", b"z"], [b"Note", b"1", b"a"]]),
        }
        out, _, msg = self.run_fake("--enable_warnings\nINSERT INTO t VALUES (1);\n", script)
        self.assertIsNone(msg)
        self.assertEqual(out.decode(), "INSERT INTO t VALUES (1);\nLevel\tCode\tMessage\n"
                         "Note\t1\ta\nWarning\t1366\tz\n")

    def test_unexpected_error_fails_with_line(self) -> None:
        script = {"SELECT * FROM nope;": ("error", 1146, "42S02", "Table 'test.nope' doesn't exist")}
        _, _, msg = self.run_fake("SELECT 1;\n\nSELECT * FROM nope;\nSELECT 2;\n", script)
        self.assertIsNotNone(msg)
        self.assertIn("line 3", msg)
        self.assertIn("Error 1146 (42S02)", msg)

    def test_wrong_error_code_fails(self) -> None:
        script = {"SELECT * FROM nope;": ("error", 1146, "42S02", "x")}
        _, _, msg = self.run_fake("--error 1064\nSELECT * FROM nope;\n", script)
        self.assertIn("expected error 1064", msg or "")

    def test_expected_error_but_success_fails(self) -> None:
        _, _, msg = self.run_fake("--error 1062\nINSERT INTO t VALUES (1);\n", {})
        self.assertIn("succeeded", msg or "")

    def test_protocol_failure_fails(self) -> None:
        _, _, msg = self.run_fake("SELECT 1;\n", {"SELECT 1;": ("fatal",)})
        self.assertIn("client/protocol failure", msg or "")

    def test_connections(self) -> None:
        text = ("--connect (conn1, localhost, root,, test)\n"
                "SELECT 1;\n"
                "--connection default\n"
                "SELECT 2;\n"
                "--connection conn1\n"
                "SELECT 3;\n"
                "--disconnect conn1\n"
                "SELECT 4;\n")
        out, log, msg = self.run_fake(text, {})
        self.assertIsNone(msg)
        by_sql = {sql: conn for conn, sql in log if sql.startswith("SELECT")}
        self.assertTrue(by_sql["SELECT 1;"].startswith("root@127.0.0.1:4000/test#1"))
        self.assertTrue(by_sql["SELECT 2;"].endswith("#0"))
        self.assertEqual(by_sql["SELECT 3;"], by_sql["SELECT 1;"])
        self.assertEqual(by_sql["SELECT 4;"], by_sql["SELECT 2;"])
        self.assertIn((by_sql["SELECT 1;"], "<close>"), log)

    def test_unknown_connection_is_a_file_error(self) -> None:
        _, _, msg = self.run_fake("SELECT 1;\n--connection nope\n", {})
        self.assertIn("line 2", msg or "")

    def test_exit_stops_and_query_log(self) -> None:
        text = ("--disable_query_log\nSELECT 1;\n--enable_query_log\n--disable_result_log\n"
                "SELECT 1;\n--enable_result_log\n--exit\nSELECT 1;\n")
        out, _, msg = self.run_fake(text, {"SELECT 1;": ("rows", ["1"], [[b"1"]])})
        self.assertIsNone(msg)
        self.assertEqual(out, b"1\n1\nSELECT 1;\n")

    def test_enable_info(self) -> None:
        out, _, msg = self.run_fake("--enable_info\nDELETE FROM t;\n", {"DELETE FROM t;": ("ok", 3)})
        self.assertIsNone(msg)
        self.assertEqual(out, b"DELETE FROM t;\naffected rows: 3\ninfo: \n")

    def test_file_outcomes(self) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="sqltest-selftest-"))
        try:
            test = tmp / "a.test"
            test.write_text("SELECT 1;\n")
            result = tmp / "a.result"

            def connect(*_a: Any) -> FakeConnection:
                return FakeConnection({"SELECT 1;": ("rows", ["1"], [[b"1"]])}, [], "c")

            args = (connect, "127.0.0.1", 1, "root", "")
            o = run_test_file(test, result, "a", *args, record=False)
            self.assertFalse(o.ok)
            self.assertIn("missing", o.message)
            o = run_test_file(test, result, "a", *args, record=True)
            self.assertTrue(o.ok and o.recorded)
            self.assertEqual(result.read_bytes(), b"SELECT 1;\n1\n1\n")
            self.assertTrue(run_test_file(test, result, "a", *args, record=False).ok)
            result.write_bytes(b"SELECT 1;\n1\n2\n")
            o = run_test_file(test, result, "a", *args, record=False)
            self.assertFalse(o.ok)
            self.assertIn("-2\n", o.diff)
            self.assertIn("+1\n", o.diff)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_discover(self) -> None:
        found, missing = discover(DEFAULT_TEST_DIR, ["smoke", "definitely_not_a_test"])
        self.assertEqual([n for n, _ in found], ["smoke"])
        self.assertEqual(missing, ["definitely_not_a_test"])

    def test_error_format(self) -> None:
        self.assertEqual(format_error(1062, "23000", "Duplicate entry '1' for key 't.PRIMARY'"),
                         "Error 1062 (23000): Duplicate entry '1' for key 't.PRIMARY'")
        self.assertEqual(format_error(1105, None, "boom"), "Error 1105: boom")

    def test_server_start_failure_reports_log(self) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="sqltest-selftest-"))
        try:
            fake = tmp / "embedb"
            fake.write_text("#!/bin/sh\necho \"fake server: $*\"\nexit 3\n")
            fake.chmod(0o755)
            srv = EmbedbServer(binary=fake)
            with self.assertRaises(ServerError) as cm:
                srv.start(timeout=5)
            self.assertIn("exited with code 3", str(cm.exception))
            self.assertIn("fake server: serve --host 127.0.0.1 --port", str(cm.exception))
            srv.cleanup()
            missing = EmbedbServer(binary=tmp / "missing")
            with self.assertRaises(ServerError) as cm:
                missing.start()
            missing.cleanup()
            self.assertIn("not found", str(cm.exception))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_server_ready_detection(self) -> None:
        # a fake "server" that sends a protocol-10 greeting and then hangs up
        tmp = Path(tempfile.mkdtemp(prefix="sqltest-selftest-"))
        try:
            fake = tmp / "embedb"
            fake.write_text(
                "#!" + sys.executable + "\n"
                "import socket, sys\n"
                "a = sys.argv\n"
                "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                "s.bind((a[a.index('--host') + 1], int(a[a.index('--port') + 1]))); s.listen()\n"
                "while True:\n"
                "    c, _ = s.accept(); c.sendall(b'\\x05\\x00\\x00\\x00\\x0a8.0.11'); c.close()\n")
            fake.chmod(0o755)
            srv = EmbedbServer(binary=fake)
            try:
                srv.start(timeout=10)
                self.assertTrue(srv.alive())
                old_port = srv.port
                srv.restart(hard=True)
                self.assertTrue(srv.alive())
                self.assertEqual(srv.port, old_port)
            finally:
                srv.cleanup()
            self.assertFalse(srv.alive())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def run_self_test() -> int:
    try:
        import pymysql  # noqa: F401
    except ImportError:
        print("--self-test needs pymysql (pip install pymysql)", file=sys.stderr)
        return 1
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(SelfTest)
    result = unittest.TextTestRunner(verbosity=1).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
