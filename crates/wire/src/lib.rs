//! # embedb-wire: the MySQL client/server protocol, server side
//!
//! This crate turns a byte stream into calls on a [`Handler`] and the
//! handler's answers back into bytes. It knows nothing about SQL.
//!
//! Walking one connection through the modules:
//!
//! 1. [`serve_connection`] wraps the stream in a `PacketStream`
//!    (`packet.rs`: 4-byte headers, sequence ids, 16 MiB continuation).
//! 2. `handshake.rs` sends the HandshakeV10 greeting with a fresh 20-byte
//!    scramble (advertising CLIENT_SSL when [`ServerOptions::tls`] is set).
//!    If the client answers with an SSLRequest, the stream switches to TLS
//!    (`transport.rs`) and the rest of the connection runs encrypted. It then
//!    parses HandshakeResponse41, switches auth plugin if needed and
//!    asks [`Handler::authenticate`] (with the helpers in `auth.rs`), then
//!    [`Handler::on_connect`]; OK or ERR 1045 follows.
//! 3. `conn.rs` loops over command packets (COM_QUERY, COM_STMT_*, …), calls
//!    the handler and writes [`Response`]s: OK/ERR/EOF and column
//!    definitions come from `codec.rs`, row cells from `value.rs` (text rows
//!    for COM_QUERY, binary rows for COM_STMT_EXECUTE).
//! 4. On COM_QUIT, end of stream or an I/O error, [`Handler::on_disconnect`]
//!    runs and `serve_connection` returns.
//!
//! [`client::Client`] is the other side, as far as one node needs it to hand a statement to
//! another (cluster mode forwards writes from readers to the writer).
//!
//! ```no_run
//! # async fn demo<H: embedb_wire::Handler + 'static>(make: impl Fn() -> H) -> std::io::Result<()> {
//! let opts = std::sync::Arc::new(embedb_wire::ServerOptions::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4000").await?;
//! let mut id = 0;
//! loop {
//!     let (sock, _) = listener.accept().await?;
//!     id += 1;
//!     let (opts, handler) = (opts.clone(), make());
//!     tokio::spawn(async move { embedb_wire::serve_connection(sock, id, &opts, handler).await });
//! }
//! # }
//! ```

mod auth;
pub mod client;
mod codec;
mod conn;
mod consts;
mod handshake;
mod packet;
mod text;
mod transport;
mod types;
mod value;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

pub use auth::{
    caching_sha2_password_hash, native_password_hash, scramble_caching_sha2_password,
    scramble_native_password, verify_caching_sha2_password, verify_caching_sha2_password_hash,
    verify_native_password, verify_native_password_hash,
    verify_password, SCRAMBLE_LEN,
};
pub use consts::{capabilities, codes, collations, flags, plugins, status};
pub use packet::MAX_ALLOWED_PACKET;
pub use text::statement_text;
/// The rustls this crate speaks TLS with, for building [`ServerOptions::tls`].
pub use tokio_rustls::rustls;
pub use types::{
    ColumnDef, ColumnType, ConnInfo, ErrorInfo, OkInfo, PrepareInfo, Response, TlsInfo, Value,
};
pub use value::{format_double, format_float};

/// The database side of a connection. One handler per connection; every
/// method is called from that connection's task only.
#[async_trait::async_trait]
pub trait Handler: Send {
    /// Check credentials. `scramble` is the 20-byte nonce we sent;
    /// `auth_response` what the client sent for `plugin` (a lone NUL byte is
    /// already normalised to empty). Use [`verify_native_password`] /
    /// [`verify_caching_sha2_password`] (or [`verify_password`]).
    async fn authenticate(
        &mut self,
        user: &str,
        plugin: &str,
        scramble: &[u8],
        auth_response: &[u8],
    ) -> bool;
    /// After successful auth. Err (e.g. 1049 unknown database from the
    /// handshake's db) is sent to the client and the connection closed.
    async fn on_connect(&mut self, info: &ConnInfo) -> Result<(), ErrorInfo>;
    /// COM_INIT_DB (`USE db` from the CLI).
    async fn on_init_db(&mut self, db: &str) -> Result<(), ErrorInfo>;
    /// COM_QUERY: one Response per statement of a multi-statement text; after
    /// an Error no more statements run (the handler stops producing them; any
    /// responses after the first Error are not sent). An empty Vec sends OK.
    async fn on_query(&mut self, sql: &str) -> Vec<Response>;
    /// COM_FIELD_LIST: columns of a table (may be empty).
    async fn on_field_list(&mut self, table: &str) -> Result<Vec<ColumnDef>, ErrorInfo>;
    /// COM_STMT_PREPARE. `statement_id` is allocated by the wire layer and is
    /// what later `on_execute`/`on_close` calls use.
    async fn on_prepare(&mut self, statement_id: u32, sql: &str) -> Result<PrepareInfo, ErrorInfo>;
    /// COM_STMT_EXECUTE with decoded parameters (`params.len()` equals the
    /// prepared `params`). Integer parameters the client marked unsigned come
    /// as [`Value::UInt`]; DATE as [`Value::Date`], DATETIME/TIMESTAMP as
    /// [`Value::DateTime`]; strings, decimals, blobs, JSON and long data as
    /// [`Value::Bytes`]. Result rows are sent in the binary format, each cell
    /// encoded per its column's declared type.
    async fn on_execute(&mut self, statement_id: u32, params: Vec<Value>) -> Response;
    /// COM_STMT_CLOSE (no reply), and for every open statement on COM_RESET_CONNECTION.
    async fn on_close(&mut self, statement_id: u32);
    /// COM_RESET_CONNECTION: reset session state (all statements were already closed).
    async fn on_reset(&mut self);
    /// Called exactly once when `serve_connection` finishes, whatever the
    /// reason (COM_QUIT, EOF, I/O error, failed auth) — roll back open
    /// transactions here.
    async fn on_disconnect(&mut self);

    /// Server status bits for OK/EOF packets (e.g. [`status::IN_TRANS`]);
    /// called whenever one is written. Default: autocommit, no transaction.
    fn status_flags(&self) -> u16 {
        status::AUTOCOMMIT
    }
    /// Host shown in "Access denied for user 'u'@'host'". Default `%`.
    fn client_host(&self) -> String {
        "%".to_string()
    }
    /// How to stop the statement in flight from outside the handler: called when the client
    /// disconnects while `on_query`/`on_execute` runs (the handler then finishes early and the
    /// connection closes). Default: none (the statement runs to completion).
    fn interrupter(&self) -> Option<std::sync::Arc<dyn Fn() + Send + Sync>> {
        None
    }
    /// Bytes of MySQL packets read and written for the command just answered (and, on the
    /// first call, the handshake before it): `Bytes_received`/`Bytes_sent`. Default: ignored.
    fn on_traffic(&mut self, _received: u64, _sent: u64) {}
    /// True once the connection must end (KILL CONNECTION): it is closed before the next command
    /// is answered. Default: never.
    fn closed(&self) -> bool {
        false
    }
    /// COM_PROCESS_KILL (`mysqladmin kill`). Default: ERR 1094 unknown thread.
    async fn on_kill(&mut self, connection_id: u32) -> Result<(), ErrorInfo> {
        Err(ErrorInfo::new(
            codes::ER_NO_SUCH_THREAD,
            "HY000",
            format!("Unknown thread id: {connection_id}"),
        ))
    }
}

/// Server-wide settings for the greeting and authentication.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// e.g. `"8.0.11-TiDB-v8.5.0-embedb-0.1.0"`.
    pub server_version: String,
    /// Plugin named in the greeting and used for auth switches:
    /// `"mysql_native_password"` or `"caching_sha2_password"`.
    pub default_auth_plugin: String,
    /// Certificate and key for TLS. When set, the greeting advertises
    /// CLIENT_SSL and clients may upgrade with an SSLRequest; when `None`,
    /// an SSLRequest is refused with ERR 1043.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Refuse logins that did not switch to TLS (ERR 3159), like MySQL's
    /// `require_secure_transport=ON`.
    pub require_secure_transport: bool,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            server_version: format!("8.0.11-embedb-{}", env!("CARGO_PKG_VERSION")),
            default_auth_plugin: plugins::NATIVE_PASSWORD.to_string(),
            tls: None,
            require_secure_transport: false,
        }
    }
}

/// Drive one client connection to completion: handshake, authentication,
/// then commands until COM_QUIT or end of stream. Returns `Ok(())` on a
/// clean close or a refused login, `Err` on I/O errors and broken framing.
/// Turn a connection away before its greeting, as MySQL does past `max_connections` (1040):
/// one ERR packet in place of the handshake, then the stream is shut.
pub async fn refuse_connection<S>(stream: S, error: &ErrorInfo) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut ps = packet::PacketStream::new(stream);
    ps.write_packet(&codec::err_packet(error)).await?;
    ps.flush().await?;
    ps.shutdown().await
}

pub async fn serve_connection<S, H>(
    stream: S,
    connection_id: u32,
    opts: &ServerOptions,
    mut handler: H,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: Handler,
{
    async move {
        let mut ps = packet::PacketStream::new(stream);
        let result = match handshake::run(&mut ps, connection_id, opts, &mut handler).await {
            Ok(Some(session)) => conn::run(&mut ps, session, &mut handler).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        handler.on_disconnect().await;
        let _ = ps.shutdown().await;
        if let Err(e) = &result {
            tracing::debug!(error = %e, "connection ended with error");
        }
        result
    }
    .instrument(tracing::debug_span!("conn", id = connection_id))
    .await
}
