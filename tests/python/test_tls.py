"""TLS for ``embedb serve``, as clients see it.

* ``embedb cert --out DIR`` writes a self-signed ``cert.pem`` / ``key.pem``
  (SANs localhost, 127.0.0.1, ::1 and ``--host`` names) and says how to use
  them;
* a server started with ``--tls-cert``/``--tls-key`` advertises CLIENT_SSL and
  upgrades on the client's SSLRequest: pymysql (``ssl={"ca": ...}``,
  ``ssl_ca`` + ``ssl_verify_cert``/``ssl_verify_identity``, and the
  ``?ssl_verify_cert=true&ssl_verify_identity=true`` URL pytidb builds for
  ``enable_ssl=True``) and the ``mysql`` CLI (MariaDB client: ``--ssl``,
  ``--ssl-ca``, ``--ssl-verify-server-cert``) connect with verification and run
  queries over TLS;
* ``--require-secure-transport`` refuses plain logins with 3159;
* a server without a certificate does not advertise CLIENT_SSL, so clients
  that require TLS fail cleanly (and the server keeps serving);
* the same settings from ``EMBEDB_TLS_*`` variables and the TOML file, and
  start-up errors for half or broken settings.

Fixtures are in conftest.py.
"""

from __future__ import annotations

import os
import socket
import ssl
import stat
import struct
import subprocess
from pathlib import Path
from typing import Iterator, Optional

import pymysql
import pytest

from conftest import assert_serves, connect
from sqltest import EmbedbServer, ServerError, free_port

CLIENT_SSL = 1 << 11
CLIENT_PROTOCOL_41 = 1 << 9
INSECURE_MSG = ("Connections using insecure transport are prohibited while "
                "--require_secure_transport=ON.")


# ---------------------------------------------------------------------------
# helpers and fixtures
# ---------------------------------------------------------------------------


def make_cert(binary: Path, out: Path, *hosts: str) -> subprocess.CompletedProcess:
    args = [str(binary), "cert", "--out", str(out)]
    for h in hosts:
        args += ["--host", h]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def certs(embedb_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`embedb cert` output: the server's pair, and an unrelated one."""
    base = tmp_path_factory.mktemp("tls-certs")
    r = make_cert(embedb_binary, base / "server", "db.embedb.test")
    assert r.returncode == 0, r.stderr
    other = make_cert(embedb_binary, base / "other")
    assert other.returncode == 0, other.stderr
    return {"dir": base / "server", "cert": str(base / "server" / "cert.pem"),
            "key": str(base / "server" / "key.pem"), "stdout": r.stdout,
            "other_cert": str(base / "other" / "cert.pem")}


def start_server(binary: Path, workdir: Path, *args: str,
                 env: Optional[dict] = None) -> EmbedbServer:
    server = EmbedbServer(binary=binary, data_dir=workdir / "data",
                          log_path=workdir / "server.log", extra_args=args)
    saved = dict(os.environ)
    try:
        if env:
            os.environ.update(env)
        server.start()
    except ServerError as e:
        server.cleanup()
        pytest.fail(f"could not start embedb:\n{e}", pytrace=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return server


@pytest.fixture(scope="module")
def tls_server(embedb_binary: Path, certs: dict,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbedbServer]:
    """TLS offered, not required; users root (no password) and alice."""
    server = start_server(embedb_binary, tmp_path_factory.mktemp("tls-server"),
                          "--tls-cert", certs["cert"], "--tls-key", certs["key"],
                          "--users", "root:,alice:s3cret")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def strict_server(embedb_binary: Path, certs: dict,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbedbServer]:
    """TLS required for every login."""
    server = start_server(embedb_binary, tmp_path_factory.mktemp("tls-strict"),
                          "--tls-cert", certs["cert"], "--tls-key", certs["key"],
                          "--require-secure-transport")
    try:
        yield server
    finally:
        server.cleanup()


def greeting_caps(host: str, port: int) -> int:
    """The capability flags of the server's HandshakeV10."""
    with socket.create_connection((host, port), timeout=5) as s:
        payload = read_packet(s)
    assert payload[0] == 10
    end = payload.index(b"\0", 1)
    pos = end + 1 + 4 + 8 + 1  # version NUL, connection id, scramble part 1, filler
    low = struct.unpack_from("<H", payload, pos)[0]
    high = struct.unpack_from("<H", payload, pos + 2 + 1 + 2)[0]
    return low | high << 16


def read_packet(s: socket.socket) -> bytes:
    def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf
    header = exact(4)
    return exact(int.from_bytes(header[:3], "little"))


def tls_of(c: pymysql.Connection) -> Optional[tuple[str, str]]:
    """(version, cipher) if the connection's socket is TLS, else None."""
    sock = c._sock
    if not isinstance(sock, ssl.SSLSocket):
        return None
    return sock.version(), sock.cipher()[0]


def mysql_cli(server: EmbedbServer, *args: str, sql: str,
              user: str = "root") -> subprocess.CompletedProcess:
    host, port = server.address
    cmd = ["mysql", "-h", host, "-P", str(port), "-u", user, "--batch", *args, "-e", sql]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


needs_mysql_cli = pytest.mark.skipif(
    subprocess.run(["which", "mysql"], capture_output=True).returncode != 0,
    reason="mysql client not installed")


# ---------------------------------------------------------------------------
# embedb cert
# ---------------------------------------------------------------------------


def test_cert_command_writes_a_usable_pair(embedb_binary: Path, certs: dict,
                                           tmp_path: Path) -> None:
    cert, key = Path(certs["cert"]), Path(certs["key"])
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY-----" in key.read_text()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    decoded = ssl._ssl._test_decode_cert(str(cert))  # type: ignore[attr-defined]
    sans = {v for _, v in decoded["subjectAltName"]}
    assert {"localhost", "127.0.0.1", "db.embedb.test"} <= sans
    assert decoded["subject"] == decoded["issuer"]  # self-signed
    # The printout says how to serve and connect with these files.
    out = certs["stdout"]
    assert f"--tls-cert {cert}" in out and f"--tls-key {key}" in out
    assert f"--ssl-ca {cert}" in out and "--ssl-verify-server-cert" in out
    # Existing files are kept unless --force.
    before = cert.read_text()
    again = make_cert(embedb_binary, certs["dir"])
    assert again.returncode != 0 and "already exists" in again.stderr
    assert cert.read_text() == before
    forced = subprocess.run([str(embedb_binary), "cert", "--out", str(tmp_path), "--force"],
                            capture_output=True, text=True, timeout=60)
    assert forced.returncode == 0, forced.stderr


# ---------------------------------------------------------------------------
# pymysql over TLS
# ---------------------------------------------------------------------------


def test_greeting_advertises_ssl_only_with_a_certificate(
        tls_server: EmbedbServer, embedb_server: tuple[str, int]) -> None:
    assert greeting_caps(*tls_server.address) & CLIENT_SSL
    assert greeting_caps(*tls_server.address) & CLIENT_PROTOCOL_41
    assert not greeting_caps(*embedb_server) & CLIENT_SSL


def test_server_log_says_whether_tls_is_on(tls_server: EmbedbServer,
                                           strict_server: EmbedbServer) -> None:
    assert "TLS on" in tls_server.log_text() and "optional" in tls_server.log_text()
    assert "required for every login" in strict_server.log_text()


def test_pymysql_verified_tls_runs_queries(tls_server: EmbedbServer, certs: dict) -> None:
    # The dict form: CA given, so pymysql requires a valid certificate and host name.
    c = connect(*tls_server.address, database="test", ssl={"ca": certs["cert"]})
    try:
        version, cipher = tls_of(c)
        assert version in ("TLSv1.3", "TLSv1.2") and cipher
        with c.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS tls_docs")
            cur.execute("CREATE TABLE tls_docs (id INT PRIMARY KEY, body LONGTEXT, v VECTOR(3))")
            big = "x" * (3 << 20)  # many TLS records each way
            cur.execute("INSERT INTO tls_docs VALUES (1, %s, '[1,2,3]'), (2, 'short', '[3,2,1]')",
                        (big,))
            cur.execute("SELECT id, LENGTH(body), VEC_COSINE_DISTANCE(v, '[1,2,3]') AS d "
                        "FROM tls_docs ORDER BY d")
            rows = cur.fetchall()
            assert [r[:2] for r in rows] == [(1, 3 << 20), (2, 5)]
            cur.execute("SELECT body FROM tls_docs WHERE id = 1")
            assert cur.fetchone()[0] == big
            cur.execute("SELECT @@have_ssl")
            assert cur.fetchone()[0] == "YES"
    finally:
        c.close()


def test_pymysql_ssl_ca_with_verify_flags_and_password(tls_server: EmbedbServer,
                                                       certs: dict) -> None:
    for host in ("127.0.0.1", "localhost"):  # IP and DNS names both in the certificate
        c = connect(host, tls_server.port, user="alice", password="s3cret",
                    ssl_ca=certs["cert"], ssl_verify_cert=True, ssl_verify_identity=True)
        try:
            assert tls_of(c) is not None
            with c.cursor() as cur:
                cur.execute("SELECT CURRENT_USER(), 6 * 7")
                assert cur.fetchone()[1] == 42
        finally:
            c.close()
    with pytest.raises(pymysql.err.OperationalError) as e:
        connect(*tls_server.address, user="alice", password="wrong", ssl={"ca": certs["cert"]})
    assert e.value.args[0] == 1045


def test_pytidb_enable_ssl_url_shape(tls_server: EmbedbServer, certs: dict,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """pytidb's ``enable_ssl=True`` adds ``?ssl_verify_cert=true&ssl_verify_identity=true``
    to a ``mysql+pymysql`` URL; SQLAlchemy hands both to pymysql as strings, which then
    verifies against the default trust store, so a self-signed certificate is trusted
    through SSL_CERT_FILE."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    host, port = tls_server.address
    url = (f"mysql+pymysql://root@{host}:{port}/test"
           "?ssl_verify_cert=true&ssl_verify_identity=true")
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    # Not trusted yet: the handshake fails on the certificate, cleanly.
    monkeypatch.setenv("SSL_CERT_FILE", certs["other_cert"])
    with pytest.raises(pymysql.err.OperationalError) as e:
        connect(host, port, ssl_verify_cert="true", ssl_verify_identity="true")
    assert "certificate" in str(e.value).lower()
    # Trusted.
    monkeypatch.setenv("SSL_CERT_FILE", certs["cert"])
    c = connect(host, port, ssl_verify_cert="true", ssl_verify_identity="true")
    try:
        assert tls_of(c) is not None
    finally:
        c.close()
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT 1 + 1")).scalar() == 2
            raw = conn.connection.dbapi_connection
            assert tls_of(raw) is not None
    finally:
        engine.dispose()


def test_wrong_ca_fails_cleanly_and_server_keeps_serving(tls_server: EmbedbServer,
                                                        certs: dict) -> None:
    with pytest.raises(pymysql.err.OperationalError):
        connect(*tls_server.address, ssl={"ca": certs["other_cert"]})
    assert_serves(*tls_server.address, ssl={"ca": certs["cert"]})
    assert tls_server.alive()


def test_plain_clients_still_work_when_tls_is_optional(tls_server: EmbedbServer) -> None:
    c = connect(*tls_server.address, ssl_disabled=True)
    try:
        assert tls_of(c) is None
        with c.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        c.close()


def test_bad_bytes_after_ssl_request_do_not_hurt_the_server(tls_server: EmbedbServer,
                                                            certs: dict) -> None:
    with socket.create_connection(tls_server.address, timeout=5) as s:
        read_packet(s)
        req = struct.pack("<IIB23s", CLIENT_SSL | CLIENT_PROTOCOL_41 | (1 << 15), 1 << 24, 45, b"")
        s.sendall(len(req).to_bytes(3, "little") + b"\x01" + req)
        s.sendall(b"this is not a TLS ClientHello\r\n" * 4)
        s.settimeout(5)
        rest = b""
        try:
            while chunk := s.recv(4096):
                rest += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert rest == b"" or rest[0] == 0x15  # nothing, or a TLS alert record
    c = connect(*tls_server.address, ssl={"ca": certs["cert"]})
    c.close()


# ---------------------------------------------------------------------------
# mysql CLI
# ---------------------------------------------------------------------------


@needs_mysql_cli
def test_mysql_cli_over_verified_tls(tls_server: EmbedbServer, certs: dict) -> None:
    r = mysql_cli(tls_server, "--ssl", "--ssl-ca", certs["cert"], "--ssl-verify-server-cert",
                  "test", sql="SELECT 40 + 2 AS answer; \\s")
    assert r.returncode == 0, r.stderr
    assert "answer\n42\n" in r.stdout
    ssl_line = next(line for line in r.stdout.splitlines() if line.startswith("SSL:"))
    assert "Cipher in use is" in ssl_line, r.stdout
    # Password user over TLS.
    r = mysql_cli(tls_server, "--ssl-ca", certs["cert"], "--ssl-verify-server-cert",
                  "-ps3cret", user="alice", sql="SELECT 1")
    assert r.returncode == 0, r.stderr


@needs_mysql_cli
def test_mysql_cli_rejects_an_untrusted_certificate(tls_server: EmbedbServer,
                                                    certs: dict) -> None:
    r = mysql_cli(tls_server, "--ssl-ca", certs["other_cert"], "--ssl-verify-server-cert",
                  sql="SELECT 1")
    assert r.returncode != 0
    assert "2026" in r.stderr or "certificate" in r.stderr.lower(), r.stderr
    r = mysql_cli(tls_server, "--skip-ssl", sql="\\s")
    assert r.returncode == 0, r.stderr
    assert any(line.startswith("SSL:") and "Not in use" in line for line in r.stdout.splitlines())


# ---------------------------------------------------------------------------
# --require-secure-transport
# ---------------------------------------------------------------------------


def test_require_secure_transport_refuses_plain_logins(strict_server: EmbedbServer,
                                                       certs: dict) -> None:
    with pytest.raises(pymysql.err.OperationalError) as e:
        connect(*strict_server.address, ssl_disabled=True)
    assert e.value.args == (3159, INSECURE_MSG)
    c = connect(*strict_server.address, ssl={"ca": certs["cert"]})
    try:
        assert tls_of(c) is not None
        with c.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        c.close()


@needs_mysql_cli
def test_require_secure_transport_with_the_mysql_cli(strict_server: EmbedbServer,
                                                     certs: dict) -> None:
    r = mysql_cli(strict_server, "--skip-ssl", sql="SELECT 1")
    assert r.returncode != 0
    assert f"ERROR 3159 (HY000): {INSECURE_MSG}" in r.stderr, r.stderr
    r = mysql_cli(strict_server, "--ssl", "--ssl-ca", certs["cert"], "--ssl-verify-server-cert",
                  sql="SELECT 1")
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------------------
# no certificate
# ---------------------------------------------------------------------------


def test_without_a_certificate_tls_clients_fail_cleanly(embedb_server: tuple[str, int],
                                                        certs: dict) -> None:
    with pytest.raises(pymysql.err.OperationalError) as e:
        connect(*embedb_server, ssl={"ca": certs["cert"]})
    assert e.value.args[0] == 2026  # CR_SSL_CONNECTION_ERROR, raised by the client
    # A raw SSLRequest anyway: ERR 1043, then the server closes this connection only.
    with socket.create_connection(embedb_server, timeout=5) as s:
        read_packet(s)
        req = struct.pack("<IIB23s", CLIENT_SSL | CLIENT_PROTOCOL_41 | (1 << 15), 1 << 24, 45, b"")
        s.sendall(len(req).to_bytes(3, "little") + b"\x01" + req)
        err = read_packet(s)
        assert err[0] == 0xFF and struct.unpack_from("<H", err, 1)[0] == 1043
    c = connect(*embedb_server)
    try:
        assert tls_of(c) is None  # pymysql's default "preferred" mode stays plain
        with c.cursor() as cur:
            cur.execute("SELECT @@have_ssl")
            assert cur.fetchone()[0] == "DISABLED"
    finally:
        c.close()


@needs_mysql_cli
def test_without_a_certificate_mysql_cli_requiring_tls_fails(embedb_process: Optional[EmbedbServer],
                                                            certs: dict) -> None:
    if embedb_process is None:
        pytest.skip("external server")
    r = mysql_cli(embedb_process, "--ssl", "--ssl-ca", certs["cert"], "--ssl-verify-server-cert",
                  sql="SELECT 1")
    assert r.returncode != 0
    assert "2026" in r.stderr, r.stderr


# ---------------------------------------------------------------------------
# configuration sources and start-up errors
# ---------------------------------------------------------------------------


def test_tls_from_environment(embedb_binary: Path, certs: dict, tmp_path: Path) -> None:
    server = start_server(embedb_binary, tmp_path, env={
        "EMBEDB_TLS_CERT": certs["cert"], "EMBEDB_TLS_KEY": certs["key"],
        "EMBEDB_REQUIRE_SECURE_TRANSPORT": "true"})
    try:
        with pytest.raises(pymysql.err.OperationalError) as e:
            connect(*server.address, ssl_disabled=True)
        assert e.value.args[0] == 3159
        c = connect(*server.address, ssl={"ca": certs["cert"]})
        assert tls_of(c) is not None
        c.close()
    finally:
        server.cleanup()


def test_tls_from_toml_and_flag_override(embedb_binary: Path, certs: dict,
                                         tmp_path: Path) -> None:
    cfg = tmp_path / "embedb.toml"
    cfg.write_text(f'tls_cert = "{certs["cert"]}"\ntls_key = "{certs["key"]}"\n'
                   "require_secure_transport = true\n")
    # The flag turns the file's requirement off; TLS itself stays on.
    server = start_server(embedb_binary, tmp_path, "--config", str(cfg),
                          "--require-secure-transport=false")
    try:
        assert greeting_caps(*server.address) & CLIENT_SSL
        c = connect(*server.address, ssl_disabled=True)
        c.close()
    finally:
        server.cleanup()


@pytest.mark.parametrize("args, message", [
    (["--tls-cert", "{cert}"], "--tls-cert and --tls-key must be given together"),
    (["--require-secure-transport"], "--require-secure-transport needs --tls-cert and --tls-key"),
    (["--tls-cert", "{key}", "--tls-key", "{key}"], "no certificate found in"),
    (["--tls-cert", "{cert}", "--tls-key", "{other}"], "cannot use"),
    (["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "{key}"], "cannot read /nonexistent/cert.pem"),
])
def test_bad_tls_settings_stop_the_server_at_start(embedb_binary: Path, certs: dict,
                                                   tmp_path: Path, args: list[str],
                                                   message: str) -> None:
    other_key = str(Path(certs["other_cert"]).with_name("key.pem"))
    args = [a.format(cert=certs["cert"], key=certs["key"], other=other_key) for a in args]
    r = subprocess.run([str(embedb_binary), "serve", "--port", str(free_port()),
                        "--data-dir", str(tmp_path / "data"), *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
