//! The server: accepts TCP connections and runs each one's MySQL protocol (the `embedb-wire`
//! crate) against its own `Session`. `handler` translates between the two: statement outputs
//! (Arrow batches) become result-set packets, `SqlError`s become ERR packets.

mod handler;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::session::{server_version, Engine};

pub use handler::Connection;

/// Serve until `shutdown` resolves. Each connection gets its own task and session.
pub async fn serve(engine: Arc<Engine>, listener: TcpListener, shutdown: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
    let opts = Arc::new(embedb_wire::ServerOptions {
        server_version: server_version(),
        default_auth_plugin: embedb_wire::plugins::NATIVE_PASSWORD.to_string(),
    });
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
