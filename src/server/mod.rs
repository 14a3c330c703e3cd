//! The server: accepts TCP connections and runs each one's MySQL protocol (the `embedb-wire`
//! crate) against its own `Session`. `handler` translates between the two: statement outputs
//! (Arrow batches) become result-set packets, `SqlError`s become ERR packets. `tls` loads the
//! certificate that lets clients switch a connection to TLS (`wire_options`), and makes the
//! development certificate of `embedb cert`.

mod handler;
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
                let id = engine.next_connection_id();
                let conn = Connection::new(engine.clone(), id, peer.ip().to_string());
                let opts = opts.clone();
                tokio::spawn(async move {
                    tracing::debug!(connection = id, %peer, "connected");
                    if let Err(e) = embedb_wire::serve_connection(stream, id, &opts, conn).await {
                        tracing::debug!(connection = id, "connection ended: {e}");
                    }
                });
            }
        }
    }
}
