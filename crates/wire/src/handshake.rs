//! Connection phase: greeting, handshake response, authentication.
//!
//! ```text
//! server → HandshakeV10   seq 0  protocol 10, version, connection id, scramble[0..8],
//!                                capabilities, charset 46, status, scramble[8..20], plugin
//! client → Response41     seq 1  capabilities, max packet, charset, user, auth response,
//!                                [database], [plugin], [connect attrs]
//! (server → AuthSwitch    seq 2  0xfe plugin NUL scramble NUL   — only if needed
//!  client → auth data     seq 3)
//! (server → AuthMoreData  0x01 0x03 "fast auth success"          — caching_sha2 only)
//! server → OK | ERR              ERR 1045 closes the connection
//! ```
//!
//! The client's answer is used as is when it was computed for a plugin we can
//! verify (`mysql_native_password`, `caching_sha2_password`, or the configured
//! default); otherwise we ask it to switch to the default plugin. The
//! handler's [`authenticate`](crate::Handler::authenticate) decides; then
//! [`on_connect`](crate::Handler::on_connect) may still refuse (e.g. unknown
//! database).
//!
//! TLS: with a certificate configured the greeting also advertises
//! `CLIENT_SSL`. A client that wants TLS first sends a 32-byte SSLRequest (seq
//! 1: the first fields of Response41, capabilities with `SSL` set, and nothing
//! after the 23 filler bytes); we run the TLS handshake on the socket right
//! there and read the real HandshakeResponse41 (seq 2) over TLS, then carry
//! on exactly as above, every later packet encrypted:
//!
//! ```text
//! server → HandshakeV10   seq 0  … capabilities incl. CLIENT_SSL …
//! client → SSLRequest     seq 1  capabilities, max packet, charset, 23 × 0
//!          ⟨TLS handshake on the raw socket⟩
//! client → Response41     seq 2  (encrypted) … then auth as above, seq 3 on
//! ```
//!
//! Without a certificate an SSLRequest gets ERR 1043. Under
//! `require_secure_transport` a login that did not switch to TLS gets ERR 3159
//! before its credentials are checked.
//!
//! `caching_sha2_password` over TLS: we hold the plaintext passwords, so the
//! scramble (fast path) always settles the login and we never ask for "full
//! authentication" (0x01 0x04, where the client would send its password in
//! clear inside TLS); the exchange is the same as in plain, only encrypted.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

use crate::auth::{new_scramble, normalize_response};
use crate::codec::{err_packet, ok_packet, put_u16, put_u32, Parse, Reader};
use crate::consts::{capabilities as cap, codes, collations, plugins};
use crate::packet::PacketStream;
use crate::types::{ConnInfo, ErrorInfo};
use crate::{Handler, ServerOptions};

/// What the command loop needs from the connection phase.
pub(crate) struct Session {
    /// Our capabilities ∩ the client's.
    pub caps: u32,
}

/// The parsed HandshakeResponse41.
#[derive(Debug, Default)]
struct HandshakeResponse {
    caps: u32,
    collation: u8,
    user: String,
    auth: Vec<u8>,
    database: Option<String>,
    plugin: Option<String>,
    attrs: Vec<(String, String)>,
}

/// Our capability word: SSL only when there is a certificate to offer.
fn server_caps(opts: &ServerOptions) -> u32 {
    if opts.tls.is_some() {
        cap::SERVER | cap::SSL
    } else {
        cap::SERVER
    }
}

fn greeting(opts: &ServerOptions, connection_id: u32, scramble: &[u8; 20], status: u16) -> Vec<u8> {
    let caps = server_caps(opts);
    let mut p = Vec::with_capacity(128);
    p.push(10);
    p.extend(opts.server_version.bytes().filter(|&b| b != 0));
    p.push(0);
    put_u32(&mut p, connection_id);
    p.extend_from_slice(&scramble[..8]);
    p.push(0);
    put_u16(&mut p, caps as u16);
    p.push(collations::UTF8MB4_BIN as u8);
    put_u16(&mut p, status);
    put_u16(&mut p, (caps >> 16) as u16);
    p.push(21); // length of the whole scramble incl. its NUL
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&scramble[8..]);
    p.push(0);
    p.extend(opts.default_auth_plugin.bytes().filter(|&b| b != 0));
    p.push(0);
    p
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parse_response(payload: &[u8]) -> Parse<HandshakeResponse> {
    let mut r = Reader::new(payload);
    let caps = r.u32()?;
    if caps & cap::PROTOCOL_41 == 0 {
        return Err(crate::codec::Malformed); // pre-4.1 clients are not supported
    }
    let _max_packet = r.u32()?;
    let collation = r.u8()?;
    r.bytes(23)?;
    let mut hr = HandshakeResponse {
        caps,
        collation,
        user: lossy(r.nul_terminated()),
        ..Default::default()
    };
    if r.is_empty() {
        return Ok(hr);
    }
    hr.auth = if caps & cap::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        r.lenenc_bytes()?.to_vec()
    } else if caps & cap::SECURE_CONNECTION != 0 {
        let n = r.u8()? as usize;
        r.bytes(n)?.to_vec()
    } else {
        r.nul_terminated().to_vec()
    };
    if caps & cap::CONNECT_WITH_DB != 0 && !r.is_empty() {
        let db = lossy(r.nul_terminated());
        hr.database = (!db.is_empty()).then_some(db);
    }
    if caps & cap::PLUGIN_AUTH != 0 && !r.is_empty() {
        hr.plugin = Some(lossy(r.nul_terminated()));
    }
    if caps & cap::CONNECT_ATTRS != 0 && !r.is_empty() {
        // Attributes are informational: a broken block is ignored, not fatal.
        if let Ok(block) = r.lenenc_bytes() {
            let mut a = Reader::new(block);
            while !a.is_empty() {
                let (Ok(k), Ok(v)) = (a.lenenc_bytes(), a.lenenc_bytes()) else {
                    break;
                };
                hr.attrs.push((lossy(k), lossy(v)));
            }
        }
    }
    Ok(hr)
}

/// The short first packet of a TLS upgrade: capabilities with `SSL`, max
/// packet size, collation and 23 filler bytes — a Response41 cut off before
/// the user name.
fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32
        && u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) & cap::SSL != 0
}

async fn send_error<S: AsyncRead + AsyncWrite + Unpin>(
    ps: &mut PacketStream<S>,
    e: &ErrorInfo,
) -> io::Result<()> {
    ps.write_packet(&err_packet(e)).await?;
    ps.flush().await
}

/// Run the connection phase. `Ok(None)`: the client was refused (an ERR was
/// sent) or went away; the caller just closes.
pub(crate) async fn run<S, H>(
    ps: &mut PacketStream<S>,
    connection_id: u32,
    opts: &ServerOptions,
    handler: &mut H,
) -> io::Result<Option<Session>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: Handler,
{
    let scramble = new_scramble();
    ps.write_packet(&greeting(
        opts,
        connection_id,
        &scramble,
        handler.status_flags(),
    ))
    .await?;
    ps.flush().await?;

    let Some(mut payload) = ps.read_packet().await? else {
        return Ok(None);
    };
    if is_ssl_request(&payload) {
        let Some(config) = opts.tls.clone() else {
            debug!("client requested TLS, which is not enabled");
            let e = ErrorInfo::new(
                codes::ER_HANDSHAKE,
                "08S01",
                "Bad handshake: TLS is not supported",
            );
            send_error(ps, &e).await?;
            return Ok(None);
        };
        // A failed TLS handshake leaves nothing we could send an ERR over.
        ps.start_tls(config).await?;
        let tls = ps.tls_info();
        debug!(version = ?tls.as_ref().map(|t| &t.version), cipher = ?tls.as_ref().map(|t| &t.cipher), "TLS on");
        payload = match ps.read_packet().await? {
            Some(p) => p,
            None => return Ok(None),
        };
    }
    let tls = ps.tls_info();
    let hr = match parse_response(&payload) {
        // A second SSLRequest, or one that did not come first.
        Ok(_) if is_ssl_request(&payload) => {
            send_error(
                ps,
                &ErrorInfo::new(codes::ER_HANDSHAKE, "08S01", "Bad handshake"),
            )
            .await?;
            return Ok(None);
        }
        Ok(hr) => hr,
        Err(_) => {
            debug!(len = payload.len(), "malformed handshake response");
            send_error(
                ps,
                &ErrorInfo::new(codes::ER_HANDSHAKE, "08S01", "Bad handshake"),
            )
            .await?;
            return Ok(None);
        }
    };
    debug!(user = %hr.user, plugin = ?hr.plugin, db = ?hr.database, caps = hr.caps, "handshake response");
    if opts.require_secure_transport && tls.is_none() {
        debug!(user = %hr.user, "refused: insecure transport");
        let e = ErrorInfo::new(
            codes::ER_SECURE_TRANSPORT_REQUIRED,
            "HY000",
            "Connections using insecure transport are prohibited while --require_secure_transport=ON.",
        );
        send_error(ps, &e).await?;
        return Ok(None);
    }

    let default_plugin = opts.default_auth_plugin.as_str();
    let client_plugin = hr
        .plugin
        .clone()
        .unwrap_or_else(|| plugins::NATIVE_PASSWORD.to_string());
    let usable = client_plugin == default_plugin
        || client_plugin == plugins::NATIVE_PASSWORD
        || client_plugin == plugins::CACHING_SHA2_PASSWORD;
    let (plugin, response) = if usable {
        (client_plugin, hr.auth.clone())
    } else if hr.caps & cap::PLUGIN_AUTH == 0 {
        let e = ErrorInfo::new(
            codes::ER_NOT_SUPPORTED_AUTH_MODE,
            "08004",
            "Client does not support authentication protocol requested by server; consider upgrading MySQL client",
        );
        send_error(ps, &e).await?;
        return Ok(None);
    } else {
        debug!(from = %client_plugin, to = %default_plugin, "auth switch");
        let mut p = vec![0xfe];
        p.extend(default_plugin.bytes().filter(|&b| b != 0));
        p.push(0);
        p.extend_from_slice(&scramble);
        p.push(0);
        ps.write_packet(&p).await?;
        ps.flush().await?;
        let Some(reply) = ps.read_packet().await? else {
            return Ok(None);
        };
        (default_plugin.to_string(), reply)
    };
    let response = normalize_response(&response);

    if !handler
        .authenticate(&hr.user, &plugin, &scramble, response)
        .await
    {
        debug!(user = %hr.user, plugin = %plugin, "access denied");
        let msg = format!(
            "Access denied for user '{}'@'{}' (using password: {})",
            hr.user,
            handler.client_host(),
            if response.is_empty() { "NO" } else { "YES" }
        );
        send_error(ps, &ErrorInfo::new(codes::ER_ACCESS_DENIED, "28000", msg)).await?;
        return Ok(None);
    }
    if plugin == plugins::CACHING_SHA2_PASSWORD && !response.is_empty() {
        ps.write_packet(&[0x01, 0x03]).await?; // AuthMoreData: fast auth success
    }

    let info = ConnInfo {
        connection_id,
        user: hr.user,
        client_capabilities: hr.caps,
        database: hr.database,
        found_rows: hr.caps & cap::FOUND_ROWS != 0,
        collation: hr.collation,
        attributes: hr.attrs,
        tls,
    };
    if let Err(e) = handler.on_connect(&info).await {
        send_error(ps, &e).await?;
        return Ok(None);
    }
    ps.write_packet(&ok_packet(0, 0, 0, handler.status_flags(), 0, ""))
        .await?;
    ps.flush().await?;
    debug!(user = %info.user, "connected");
    Ok(Some(Session {
        caps: info.client_capabilities & cap::SERVER,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_layout() {
        let opts = ServerOptions {
            server_version: "8.0.11-x".into(),
            default_auth_plugin: "mysql_native_password".into(),
            ..ServerOptions::default()
        };
        let s = *b"ABCDEFGHIJKLMNOPQRST";
        let g = greeting(&opts, 7, &s, 2);
        assert_eq!(g[0], 10);
        assert_eq!(&g[1..10], b"8.0.11-x\0");
        assert_eq!(&g[10..14], &[7, 0, 0, 0]);
        assert_eq!(&g[14..22], b"ABCDEFGH");
        assert_eq!(g[22], 0);
        assert_eq!(g[25], 46);
        assert_eq!(&g[26..28], &[2, 0]);
        assert_eq!(g[30], 21);
        assert_eq!(&g[41..54], b"IJKLMNOPQRST\0");
        assert_eq!(&g[54..], b"mysql_native_password\0");
    }

    #[test]
    fn response_tolerates_missing_tail() {
        let mut p = Vec::new();
        put_u32(
            &mut p,
            cap::PROTOCOL_41 | cap::SECURE_CONNECTION | cap::PLUGIN_AUTH | cap::CONNECT_WITH_DB,
        );
        put_u32(&mut p, 0);
        p.push(45);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(b"bob"); // no NUL, nothing after
        let hr = parse_response(&p).unwrap();
        assert_eq!(hr.user, "bob");
        assert!(hr.auth.is_empty() && hr.database.is_none() && hr.plugin.is_none());
        assert!(parse_response(&p[..20]).is_err());
    }
}
