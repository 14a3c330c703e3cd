//! TLS upgrade tests: greeting with CLIENT_SSL, SSLRequest, the rustls
//! handshake, then login and commands over the encrypted stream, checked by
//! the hand-written client from `common` with a rustls client under it.

mod common;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use common::*;
use embedb_wire::{capabilities as cap, ServerOptions};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, pki_types};

const NATIVE: &str = "mysql_native_password";
const SHA2: &str = "caching_sha2_password";
const DEPR: u32 = CLIENT_BASE | cap::DEPRECATE_EOF;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

struct Pki {
    server: Arc<rustls::ServerConfig>,
    cert: pki_types::CertificateDer<'static>,
}

fn pki() -> Pki {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    Pki {
        server: Arc::new(server),
        cert,
    }
}

fn connector(
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.cert.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn opts(pki: &Pki, plugin: &str, require: bool) -> ServerOptions {
    ServerOptions {
        server_version: "8.0.11-TiDB-v8.5.0-embedb-test".into(),
        default_auth_plugin: plugin.into(),
        tls: Some(pki.server.clone()),
        require_secure_transport: require,
    }
}

/// A TCP server whose connections use `opts`.
async fn start(opts: ServerOptions) -> (std::net::SocketAddr, SharedRef) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared: SharedRef = Arc::default();
    let sh = shared.clone();
    tokio::spawn(async move {
        let mut id = 0;
        while let Ok((sock, _)) = listener.accept().await {
            id += 1;
            spawn_conn_opts(sock, id, opts.clone(), sh.clone());
        }
    });
    (addr, shared)
}

fn ssl_request(caps: u32) -> Vec<u8> {
    let mut p = (caps | cap::SSL).to_le_bytes().to_vec();
    p.extend_from_slice(&(1u32 << 24).to_le_bytes());
    p.push(255);
    p.extend_from_slice(&[0; 23]);
    assert_eq!(p.len(), 32);
    p
}

type TlsClient = Client<tokio_rustls::client::TlsStream<TcpStream>>;

/// Greeting, SSLRequest (seq 1), TLS handshake; the returned client continues at seq 2.
async fn upgrade(
    addr: std::net::SocketAddr,
    tls: &tokio_rustls::TlsConnector,
    caps: u32,
) -> (TlsClient, Greeting) {
    let (mut c, g) = Client::tcp(addr).await;
    assert_ne!(g.caps & cap::SSL, 0, "greeting advertises CLIENT_SSL");
    c.write_packet(&ssl_request(caps)).await.unwrap();
    let name = pki_types::ServerName::try_from("localhost").unwrap();
    let s = tls.connect(name, c.s).await.expect("TLS handshake");
    let mut c = Client::new(s);
    c.seq = 2;
    (c, g)
}

fn events(shared: &SharedRef) -> Vec<String> {
    shared.lock().unwrap().events.clone()
}

fn no_panics(shared: &SharedRef) {
    assert_eq!(
        shared.lock().unwrap().panics,
        0,
        "a connection task panicked"
    );
}

#[tokio::test]
async fn login_and_commands_over_tls() {
    let pki = pki();
    let (addr, shared) = start(opts(&pki, NATIVE, false)).await;
    let tls = connector(&pki, rustls::DEFAULT_VERSIONS);
    let (mut c, g) = upgrade(addr, &tls, DEPR | cap::SSL).await;
    // The OK after login comes with seq 3 (Client checks every id).
    c.login(&g, "alice", "secret", NATIVE, Some("test"), DEPR | cap::SSL)
        .await
        .unwrap();
    let r = c.query("select @@version_comment limit 1").await;
    assert_eq!(r[0].text_rows(), vec![vec![Some(b"embedb test".to_vec())]]);
    // A big payload crosses many TLS records and a packet boundary.
    let big = format!("/*big*/{}", "x".repeat(20 << 20));
    let r = c.query(&big).await;
    assert_eq!(
        r[0].text_rows()[0][0],
        Some((big.len()).to_string().into_bytes())
    );
    assert!(matches!(c.ping().await, Reply::Ok(_)));
    c.command(&[0x01]).await; // COM_QUIT
    assert!(c.read_packet().await.is_none());
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let ev = events(&shared);
    assert!(
        ev.contains(&"connect alice Some(\"test\") found_rows=false".to_string()),
        "{ev:?}"
    );
    assert!(
        ev.iter().any(|e| e.starts_with("tls TLSv1.3 TLS_")),
        "{ev:?}"
    );
    assert_eq!(shared.lock().unwrap().finished, vec![Ok(())]);
    no_panics(&shared);
}

#[tokio::test]
async fn wrong_password_over_tls_is_1045() {
    let pki = pki();
    let (addr, shared) = start(opts(&pki, NATIVE, false)).await;
    let tls = connector(&pki, rustls::DEFAULT_VERSIONS);
    let (mut c, g) = upgrade(addr, &tls, DEPR).await;
    let e = c
        .login(&g, "alice", "nope", NATIVE, None, DEPR | cap::SSL)
        .await
        .unwrap_err();
    assert_eq!((e.code, e.state.as_str()), (1045, "28000"));
    no_panics(&shared);
}

#[tokio::test]
async fn caching_sha2_fast_auth_and_auth_switch_over_tls() {
    let pki = pki();
    let (addr, shared) = start(opts(&pki, SHA2, false)).await;
    let tls = connector(&pki, rustls::DEFAULT_VERSIONS);
    let (mut c, g) = upgrade(addr, &tls, DEPR).await;
    c.login(&g, "alice", "secret", SHA2, None, DEPR | cap::SSL)
        .await
        .unwrap();
    assert!(c.fast_auth, "AuthMoreData fast_auth_success over TLS");
    assert!(matches!(c.ping().await, Reply::Ok(_)));

    // A plugin we cannot verify: the server switches to caching_sha2 (seq 3/4 inside TLS).
    let (mut c, g) = upgrade(addr, &tls, DEPR).await;
    c.login(
        &g,
        "alice",
        "secret",
        "sha256_password",
        None,
        DEPR | cap::SSL,
    )
    .await
    .unwrap();
    assert!(c.switched && c.fast_auth);
    assert_eq!(c.auth_plugin, SHA2);
    assert!(matches!(c.ping().await, Reply::Ok(_)));
    no_panics(&shared);
}

#[tokio::test]
async fn tls12_session_reports_its_cipher() {
    let pki = pki();
    let (addr, shared) = start(opts(&pki, NATIVE, false)).await;
    let tls = connector(&pki, &[&rustls::version::TLS12]);
    let (mut c, g) = upgrade(addr, &tls, DEPR).await;
    c.login(&g, "root", "", NATIVE, None, DEPR | cap::SSL)
        .await
        .unwrap();
    assert!(matches!(c.ping().await, Reply::Ok(_)));
    let ev = events(&shared);
    // rcgen's default key is ECDSA P-256.
    assert!(
        ev.iter().any(|e| e.starts_with("tls TLSv1.2 ECDHE-ECDSA-")),
        "{ev:?}"
    );
    no_panics(&shared);
}

/// Writes `prefix` together with the first write, so the SSLRequest and the
/// ClientHello reach the server in one segment.
struct Glued<S> {
    prefix: Vec<u8>,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Glued<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Glued<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.prefix.is_empty() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        let mut all = this.prefix.clone();
        all.extend_from_slice(buf);
        match Pin::new(&mut this.inner).poll_write(cx, &all) {
            Poll::Ready(Ok(n)) => {
                assert_eq!(n, all.len(), "duplex buffer takes it in one write");
                this.prefix.clear();
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn client_hello_right_behind_the_ssl_request() {
    let pki = pki();
    let shared: SharedRef = Arc::default();
    let (client_end, server_end) = tokio::io::duplex(1 << 20);
    spawn_conn_opts(server_end, 1, opts(&pki, NATIVE, false), shared.clone());
    let mut c = Client::new(client_end);
    let g = c.read_greeting().await;
    let mut framed = vec![32, 0, 0, 1];
    framed.extend_from_slice(&ssl_request(DEPR));
    let glued = Glued {
        prefix: framed,
        inner: c.s,
    };
    let tls = connector(&pki, rustls::DEFAULT_VERSIONS);
    let name = pki_types::ServerName::try_from("localhost").unwrap();
    let s = tls.connect(name, glued).await.expect("TLS handshake");
    let mut c = Client::new(s);
    c.seq = 2;
    c.login(&g, "alice", "secret", NATIVE, None, DEPR | cap::SSL)
        .await
        .unwrap();
    assert!(matches!(c.ping().await, Reply::Ok(_)));
    no_panics(&shared);
}

#[tokio::test]
async fn require_secure_transport_refuses_plain_logins() {
    let pki = pki();
    let (addr, shared) = start(opts(&pki, NATIVE, true)).await;
    // Plain: refused before the credentials are looked at.
    let e = Client::connect(addr, "alice", "secret", NATIVE, DEPR)
        .await
        .err()
        .expect("refused");
    assert_eq!(e.code, 3159);
    assert_eq!(e.state, "HY000");
    assert_eq!(
        e.message,
        "Connections using insecure transport are prohibited while --require_secure_transport=ON."
    );
    assert!(!events(&shared).iter().any(|e| e.starts_with("auth")));
    // TLS: fine.
    let tls = connector(&pki, rustls::DEFAULT_VERSIONS);
    let (mut c, g) = upgrade(addr, &tls, DEPR).await;
    c.login(&g, "alice", "secret", NATIVE, None, DEPR | cap::SSL)
        .await
        .unwrap();
    assert!(matches!(c.ping().await, Reply::Ok(_)));
    no_panics(&shared);
}

#[tokio::test]
async fn broken_tls_handshake_just_ends_the_connection() {
    let pki = pki();
    let (addr, shared) = start(opts(&pki, NATIVE, false)).await;
    let (mut c, _) = Client::tcp(addr).await;
    c.write_packet(&ssl_request(DEPR)).await.unwrap();
    // Not a TLS record: the server gives up on this connection.
    c.s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut c.s, &mut rest).await;
    // Whatever came back is a TLS alert, never a MySQL packet in the clear.
    assert!(rest.is_empty() || rest[0] == 0x15, "{rest:?}");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let s = shared.lock().unwrap();
    assert_eq!(s.finished.len(), 1);
    assert!(s.finished[0].is_err());
    assert!(
        s.events.iter().all(|e| !e.starts_with("auth")),
        "{:?}",
        s.events
    );
    assert!(s.events.contains(&"disconnect".to_string()));
    assert_eq!(s.panics, 0);
}

#[tokio::test]
async fn a_second_ssl_request_inside_tls_is_refused() {
    let pki = pki();
    let (addr, shared) = start(opts(&pki, NATIVE, false)).await;
    let tls = connector(&pki, rustls::DEFAULT_VERSIONS);
    let (mut c, _) = upgrade(addr, &tls, DEPR).await;
    c.write_packet(&ssl_request(DEPR)).await.unwrap();
    let p = c.read_packet().await.unwrap();
    assert_eq!(parse_err(&p).code, 1043);
    no_panics(&shared);
}
