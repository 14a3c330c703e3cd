//! The client side, as much as one embedb node needs to hand a statement to another: log in
//! (mysql_native_password or caching_sha2_password's fast path), run a text query, and read its
//! answers back as the same [`Response`]s a [`Handler`](crate::Handler) gives, so the node that
//! forwarded the statement can send them on to its own client unchanged: column definitions
//! verbatim, each cell as the text the other node sent (`Value::Bytes`), which the binary
//! protocol converts per column type like any other cell.

use std::io;

use tokio::net::TcpStream;

use crate::auth::{scramble_caching_sha2_password, scramble_native_password};
use crate::codec::Reader;
use crate::consts::{capabilities as cap, status};
use crate::packet::PacketStream;
use crate::types::{ColumnDef, ColumnType, ErrorInfo, OkInfo, Response, Value};

/// One connection to a MySQL-protocol server.
pub struct Client {
    stream: PacketStream<TcpStream>,
    /// The server status flags of the last answer (`IN_TRANS`, `AUTOCOMMIT`, …).
    pub status: u16,
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed {what} from the server"))
}

fn server_error(p: &[u8]) -> ErrorInfo {
    let mut r = Reader::new(p);
    let _ = r.u8();
    let code = r.u16().unwrap_or(1105);
    let rest = r.rest();
    let (state, message) = match rest.first() {
        Some(b'#') if rest.len() >= 6 => (String::from_utf8_lossy(&rest[1..6]).into_owned(), &rest[6..]),
        _ => ("HY000".to_string(), rest),
    };
    ErrorInfo::new(code, &state, String::from_utf8_lossy(message).into_owned())
}

/// An OK packet: (affected, last insert id, status, warnings, info).
fn ok_info(p: &[u8]) -> io::Result<(OkInfo, u16)> {
    let mut r = Reader::new(&p[1..]);
    let bad = |_| malformed("OK packet");
    let affected_rows = r.lenenc_int().map_err(bad)?;
    let last_insert_id = r.lenenc_int().map_err(bad)?;
    let status = r.u16().map_err(bad)?;
    let warnings = r.u16().map_err(bad)?;
    let rest = r.rest();
    // The info text is length-encoded when present.
    let info = if rest.is_empty() {
        String::new()
    } else {
        let mut ir = Reader::new(rest);
        match ir.lenenc_bytes() {
            Ok(b) => String::from_utf8_lossy(b).into_owned(),
            Err(_) => String::from_utf8_lossy(rest).into_owned(),
        }
    };
    Ok((OkInfo { affected_rows, last_insert_id, warnings, info }, status))
}

fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xfe) && p.len() < 9
}

fn column_def(p: &[u8]) -> io::Result<ColumnDef> {
    let mut r = Reader::new(p);
    let bad = |_| malformed("column definition");
    let mut s = || r.lenenc_bytes().map(|b| String::from_utf8_lossy(b).into_owned());
    let _catalog = s().map_err(bad)?;
    let (schema, table, org_table, name, org_name) = (s().map_err(bad)?, s().map_err(bad)?, s().map_err(bad)?, s().map_err(bad)?, s().map_err(bad)?);
    let _fixed = r.lenenc_int().map_err(bad)?;
    let charset = r.u16().map_err(bad)?;
    let length = r.u32().map_err(bad)?;
    let column_type = ColumnType::from_u8(r.u8().map_err(bad)?).unwrap_or(ColumnType::VarString);
    let flags = r.u16().map_err(bad)?;
    let decimals = r.u8().map_err(bad)?;
    Ok(ColumnDef { schema, table, org_table, name, org_name, charset, length, column_type, flags, decimals })
}

fn text_row(p: &[u8], n: usize) -> io::Result<Vec<Value>> {
    let mut r = Reader::new(p);
    let mut row = Vec::with_capacity(n);
    for _ in 0..n {
        if r.peek() == Some(0xfb) {
            let _ = r.u8();
            row.push(Value::Null);
        } else {
            row.push(Value::Bytes(r.lenenc_bytes().map_err(|_| malformed("row"))?.to_vec()));
        }
    }
    Ok(row)
}

impl Client {
    /// Connects to `addr` and logs in as `user` with `password`; `database` is selected if given.
    pub async fn connect(addr: &str, user: &str, password: &str, database: Option<&str>) -> io::Result<Client> {
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        let mut stream = PacketStream::new(sock);
        let hello = stream.read_packet().await?.ok_or_else(|| malformed("greeting"))?;
        if hello.first() == Some(&0xff) {
            let e = server_error(&hello);
            return Err(io::Error::other(format!("{} ({})", e.message, e.code)));
        }
        let (scramble, plugin) = parse_greeting(&hello).ok_or_else(|| malformed("greeting"))?;
        let mut caps = cap::LONG_PASSWORD
            | cap::PROTOCOL_41
            | cap::SECURE_CONNECTION
            | cap::PLUGIN_AUTH
            | cap::PLUGIN_AUTH_LENENC_CLIENT_DATA
            | cap::TRANSACTIONS
            | cap::MULTI_STATEMENTS
            | cap::MULTI_RESULTS;
        if database.is_some() {
            caps |= cap::CONNECT_WITH_DB;
        }
        let auth = answer(&plugin, password, &scramble);
        let mut p = Vec::with_capacity(64 + user.len());
        p.extend_from_slice(&caps.to_le_bytes());
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(255); // utf8mb4_0900_ai_ci; the server answers in utf8mb4 either way
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        crate::codec::put_lenenc_bytes(&mut p, &auth);
        if let Some(db) = database {
            p.extend_from_slice(db.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        stream.write_packet(&p).await?;
        stream.flush().await?;
        loop {
            let reply = stream.read_packet().await?.ok_or_else(|| malformed("login reply"))?;
            match reply.first() {
                Some(0x00) => {
                    let (_, st) = ok_info(&reply)?;
                    return Ok(Client { stream, status: st });
                }
                Some(0xff) => {
                    let e = server_error(&reply);
                    return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("{} ({})", e.message, e.code)));
                }
                // Auth switch: the plugin the server wants, with a fresh scramble.
                Some(0xfe) => {
                    let mut r = Reader::new(&reply[1..]);
                    let plugin = String::from_utf8_lossy(r.nul_terminated()).into_owned();
                    let data = r.rest();
                    let scramble = data.strip_suffix(&[0]).unwrap_or(data).to_vec();
                    stream.write_packet(&answer(&plugin, password, &scramble)).await?;
                    stream.flush().await?;
                }
                // caching_sha2_password: 3 = fast auth worked (OK follows); 4 = full auth needed,
                // which wants TLS or RSA: not offered here.
                Some(0x01) if reply.get(1) == Some(&3) => {}
                _ => return Err(io::Error::new(io::ErrorKind::PermissionDenied, "the server wants an authentication this client does not do")),
            }
        }
    }

    /// Runs `sql` (one or more statements) and returns one response per statement; after an
    /// error no more follow. [`Client::status`] holds the server status after the last one.
    pub async fn query(&mut self, sql: &str) -> io::Result<Vec<Response>> {
        self.stream.reset_seq();
        let mut p = Vec::with_capacity(1 + sql.len());
        p.push(0x03);
        p.extend_from_slice(sql.as_bytes());
        self.stream.write_packet(&p).await?;
        self.stream.flush().await?;
        let mut out = Vec::new();
        loop {
            let (response, st) = self.read_response().await?;
            self.status = st;
            let failed = matches!(response, Response::Error(_));
            out.push(response);
            if failed || st & status::MORE_RESULTS_EXISTS == 0 {
                return Ok(out);
            }
        }
    }

    async fn next(&mut self) -> io::Result<Vec<u8>> {
        self.stream.read_packet().await?.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"))
    }

    async fn read_response(&mut self) -> io::Result<(Response, u16)> {
        let first = self.next().await?;
        match first.first() {
            Some(0x00) => {
                let (ok, st) = ok_info(&first)?;
                return Ok((Response::Ok(ok), st));
            }
            Some(0xff) => return Ok((Response::Error(server_error(&first)), self.status & !status::MORE_RESULTS_EXISTS)),
            Some(0xfb) => {
                // LOAD DATA LOCAL: this side has no file to send; an empty packet ends it.
                self.stream.write_packet(&[]).await?;
                self.stream.flush().await?;
                return Box::pin(self.read_response()).await;
            }
            _ => {}
        }
        let n = Reader::new(&first).lenenc_int().map_err(|_| malformed("column count"))? as usize;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            columns.push(column_def(&self.next().await?)?);
        }
        let eof = self.next().await?;
        if !is_eof(&eof) {
            return Err(malformed("end of column definitions"));
        }
        let mut rows = Vec::new();
        loop {
            let p = self.next().await?;
            if is_eof(&p) {
                let mut r = Reader::new(&p[1..]);
                let warnings = r.u16().unwrap_or(0);
                let st = r.u16().unwrap_or(0);
                return Ok((Response::ResultSet { columns, rows, warnings }, st));
            }
            if p.first() == Some(&0xff) {
                return Ok((Response::Error(server_error(&p)), 0));
            }
            rows.push(text_row(&p, n)?);
        }
    }

    /// Says goodbye (COM_QUIT) and closes the socket.
    pub async fn quit(mut self) {
        self.stream.reset_seq();
        let _ = self.stream.write_packet(&[0x01]).await;
        let _ = self.stream.flush().await;
        let _ = self.stream.shutdown().await;
    }
}

/// The scramble (20 bytes) and auth plugin of a HandshakeV10 greeting.
fn parse_greeting(p: &[u8]) -> Option<(Vec<u8>, String)> {
    let mut r = Reader::new(p);
    if r.u8().ok()? != 10 {
        return None;
    }
    r.nul_terminated();
    r.u32().ok()?;
    let mut scramble = r.bytes(8).ok()?.to_vec();
    r.u8().ok()?;
    let caps_low = r.u16().ok()? as u32;
    r.u8().ok()?;
    r.u16().ok()?;
    let caps = caps_low | (r.u16().ok()? as u32) << 16;
    let auth_len = r.u8().ok()? as usize;
    r.bytes(10).ok()?;
    if caps & cap::SECURE_CONNECTION != 0 {
        let n = auth_len.saturating_sub(8).max(13);
        let part = r.bytes(n).ok()?;
        scramble.extend_from_slice(part.strip_suffix(&[0]).unwrap_or(part));
    }
    let plugin = if caps & cap::PLUGIN_AUTH != 0 { String::from_utf8_lossy(r.nul_terminated()).into_owned() } else { String::new() };
    Some((scramble, if plugin.is_empty() { "mysql_native_password".into() } else { plugin }))
}

fn answer(plugin: &str, password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    match plugin {
        "caching_sha2_password" => scramble_caching_sha2_password(password, scramble),
        _ => scramble_native_password(password, scramble),
    }
}
