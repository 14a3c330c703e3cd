//! The server: accepts TCP connections and runs each one's MySQL protocol (the `embedb-wire`
//! crate) against its own `Session`. `handler` translates between the two: statement outputs
//! (Arrow batches) become result-set packets, `SqlError`s become ERR packets. `tls` loads the
//! certificate that lets clients switch a connection to TLS (`wire_options`), and makes the
//! development certificate of `embedb cert`.

mod handler;
pub mod metrics;
pub mod tls;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::session::{server_version, Engine};

pub use handler::Connection;

/// The protocol settings for `config`, with its TLS certificate loaded (the error names the
/// unreadable or unusable file).
pub fn wire_options(config: &Config) -> Result<embedb_wire::ServerOptions, String> {
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key must be given together".into()),
    };
    if config.require_secure_transport && tls.is_none() {
        return Err("--require-secure-transport needs --tls-cert and --tls-key".into());
    }
    Ok(embedb_wire::ServerOptions {
        server_version: server_version(),
        default_auth_plugin: embedb_wire::plugins::NATIVE_PASSWORD.to_string(),
        tls,
        require_secure_transport: config.require_secure_transport,
    })
}

/// Serve until `shutdown` resolves. Each connection gets its own task and session.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    opts: embedb_wire::ServerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    if opts.tls.is_some() {
        // What MySQL reports when it has a certificate; both are read-only, so never persisted.
        let mut g = engine.globals.write();
        g.insert("have_ssl".into(), "YES".into());
        g.insert("have_openssl".into(), "YES".into());
    }
    let opts = Arc::new(opts);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("shutting down: no new connections; committed data is already durable");
                return Ok(());
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Some(slot) = ConnectionSlot::take(&engine) else {
                    tokio::spawn(refuse_too_many(stream));
                    continue;
                };
                let id = engine.next_connection_id();
                let conn = Connection::new(engine.clone(), id, peer.ip().to_string());
                let opts = opts.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    tracing::debug!(connection = id, %peer, "connected");
                    if let Err(e) = embedb_wire::serve_connection(stream, id, &opts, conn).await {
                        tracing::debug!(connection = id, "connection ended: {e}");
                    }
                });
            }
        }
    }
}

/// One open client connection, counted in `Engine::open_connections` while it lives.
struct ConnectionSlot(Arc<Engine>);

impl ConnectionSlot {
    /// A slot, unless `max_connections` (0 = no limit) are open already.
    fn take(engine: &Arc<Engine>) -> Option<ConnectionSlot> {
        use std::sync::atomic::Ordering;
        let max = engine.globals.read().get("max_connections").and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
        let open = engine.open_connections.fetch_add(1, Ordering::SeqCst);
        if max > 0 && open >= max {
            engine.open_connections.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        engine.stats.connected(open as u64 + 1);
        Some(ConnectionSlot(engine.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What MySQL does past `max_connections`: an ERR packet (1040) in place of the greeting.
async fn refuse_too_many(stream: tokio::net::TcpStream) {
    let error = embedb_wire::ErrorInfo::new(1040, "08004", "Too many connections");
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), embedb_wire::refuse_connection(stream, &error)).await;
}
