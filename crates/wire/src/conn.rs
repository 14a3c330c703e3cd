//! Command phase: read a command packet, ask the handler, write the reply.
//!
//! Each command is one packet whose first byte says what it is; the client
//! restarts sequence ids at 0 for it. A COM_QUERY `03 "select 1; select 2"`
//! walks through like this:
//!
//! 1. `handler.on_query("select 1; select 2")` returns two [`Response`]s.
//! 2. Each result set is written as: column count (lenenc), one
//!    ColumnDefinition41 per column, an EOF (unless CLIENT_DEPRECATE_EOF),
//!    one text row per row, then a terminator — EOF, or an OK with a 0xfe
//!    header under DEPRECATE_EOF.
//! 3. Every terminator but the last carries SERVER_MORE_RESULTS_EXISTS; an
//!    ERR ends the chain.
//!
//! Prepared statements get ids from this loop (1, 2, …) and keep their
//! parameter types and SEND_LONG_DATA buffers here; COM_STMT_EXECUTE replies
//! use the binary row format (`value.rs`).
//!
//! Malformed commands get an ERR and the loop continues; framing errors and
//! oversized packets end the connection. Nothing here panics on input.

use std::collections::HashMap;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

use crate::codec::{
    column_def_packet, eof_packet, err_packet, ok_packet, put_lenenc_int, put_u16, put_u32, Reader,
};
use crate::consts::{capabilities as cap, codes, command as cmd, status};
use crate::handshake::Session;
use crate::packet::{PacketStream, MAX_ALLOWED_PACKET, TOO_LARGE};
use crate::types::{ColumnDef, ColumnType, ErrorInfo, OkInfo, Response, Value};
use crate::value::{decode_param, put_binary_row, put_text_value};
use crate::Handler;

/// Per prepared statement state kept by the wire layer.
struct Stmt {
    params: usize,
    /// (type, flags) per parameter from the last execute that bound them.
    types: Option<Vec<(u8, u8)>>,
    long_data: Vec<Option<Vec<u8>>>,
    long_data_too_big: bool,
    /// A read-only cursor opened by the last execute: its columns and the rows not yet fetched.
    cursor: Option<Cursor>,
}

struct Cursor {
    columns: Vec<ColumnDef>,
    rows: std::vec::IntoIter<Vec<Value>>,
}

/// COM_STMT_EXECUTE's flag asking for a read-only cursor.
const CURSOR_TYPE_READ_ONLY: u8 = 0x01;

struct Conn<'a, S, H> {
    ps: &'a mut PacketStream<S>,
    handler: &'a mut H,
    caps: u32,
    stmts: HashMap<u32, Stmt>,
    next_stmt_id: u32,
}

fn malformed() -> ErrorInfo {
    ErrorInfo::new(
        codes::ER_MALFORMED_PACKET,
        "HY000",
        "Malformed communication packet.",
    )
}

fn unknown_stmt(id: u32, func: &str) -> ErrorInfo {
    ErrorInfo::new(
        codes::ER_UNKNOWN_STMT_HANDLER,
        "HY000",
        format!("Unknown prepared statement handler ({id}) given to {func}"),
    )
}

fn wrong_args(func: &str) -> ErrorInfo {
    ErrorInfo::new(
        codes::ER_WRONG_ARGUMENTS,
        "HY000",
        format!("Incorrect arguments to {func}"),
    )
}

pub(crate) async fn run<S, H>(
    ps: &mut PacketStream<S>,
    session: Session,
    handler: &mut H,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: Handler,
{
    let mut conn = Conn {
        ps,
        handler,
        caps: session.caps,
        stmts: HashMap::new(),
        next_stmt_id: 1,
    };
    loop {
        if conn.handler.closed() {
            return Ok(());
        }
        let packet = match conn.ps.read_packet().await {
            Ok(Some(p)) if conn.handler.closed() => {
                let _ = p;
                return Ok(());
            }
            Ok(Some(p)) => p,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData && e.to_string() == TOO_LARGE => {
                let msg = format!(
                    "Got a packet bigger than 'max_allowed_packet' bytes ({MAX_ALLOWED_PACKET})"
                );
                let _ = conn
                    .send_err(&ErrorInfo::new(
                        codes::ER_NET_PACKET_TOO_LARGE,
                        "08S01",
                        msg,
                    ))
                    .await;
                let _ = conn.ps.flush().await;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let more = conn.dispatch(&packet).await?;
        let (received, sent) = conn.ps.take_traffic();
        conn.handler.on_traffic(received, sent);
        if !more {
            return Ok(());
        }
        conn.ps.flush().await?;
    }
}

impl<S, H> Conn<'_, S, H>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: Handler,
{
    fn deprecate_eof(&self) -> bool {
        self.caps & cap::DEPRECATE_EOF != 0
    }

    async fn send_err(&mut self, e: &ErrorInfo) -> io::Result<()> {
        self.ps.write_packet(&err_packet(e)).await
    }

    async fn send_ok(&mut self, ok: &OkInfo, extra_status: u16) -> io::Result<()> {
        let status = self.handler.status_flags() | extra_status;
        let p = ok_packet(
            0x00,
            ok.affected_rows,
            ok.last_insert_id,
            status,
            ok.warnings,
            &ok.info,
        );
        self.ps.write_packet(&p).await
    }

    /// EOF, or under DEPRECATE_EOF an OK with the 0xfe header.
    async fn send_terminator(&mut self, warnings: u16, extra_status: u16) -> io::Result<()> {
        let status = self.handler.status_flags() | extra_status;
        let p = if self.deprecate_eof() {
            ok_packet(0xfe, 0, 0, status, warnings, "")
        } else {
            eof_packet(warnings, status)
        };
        self.ps.write_packet(&p).await
    }

    /// The EOF that follows a block of column definitions (none under DEPRECATE_EOF).
    async fn send_defs_eof(&mut self, extra_status: u16) -> io::Result<()> {
        if self.deprecate_eof() {
            return Ok(());
        }
        let status = self.handler.status_flags() | extra_status;
        self.ps.write_packet(&eof_packet(0, status)).await
    }

    async fn send_response(&mut self, resp: &Response, more: bool, binary: bool) -> io::Result<()> {
        let extra = if more { status::MORE_RESULTS_EXISTS } else { 0 };
        match resp {
            Response::Ok(ok) => self.send_ok(ok, extra).await,
            Response::Error(e) => self.send_err(e).await,
            Response::ResultSet {
                columns, warnings, ..
            } if columns.is_empty() => {
                self.send_ok(
                    &OkInfo {
                        warnings: *warnings,
                        ..OkInfo::default()
                    },
                    extra,
                )
                .await
            }
            Response::ResultSet {
                columns,
                rows,
                warnings,
            } => {
                let mut buf = Vec::with_capacity(256);
                put_lenenc_int(&mut buf, columns.len() as u64);
                self.ps.write_packet(&buf).await?;
                for c in columns {
                    self.ps.write_packet(&column_def_packet(c, false)).await?;
                }
                self.send_defs_eof(extra).await?;
                for row in rows {
                    buf.clear();
                    if binary {
                        put_binary_row(&mut buf, columns, row);
                    } else {
                        for (i, c) in columns.iter().enumerate() {
                            put_text_value(&mut buf, row.get(i).unwrap_or(&Value::Null), c);
                        }
                    }
                    self.ps.write_packet(&buf).await?;
                }
                self.send_terminator(*warnings, extra).await
            }
        }
    }

    /// Handle one command. `Ok(false)` ends the connection (COM_QUIT).
    async fn dispatch(&mut self, packet: &[u8]) -> io::Result<bool> {
        let Some((&command, body)) = packet.split_first() else {
            self.send_err(&malformed()).await?;
            return Ok(true);
        };
        match command {
            cmd::QUIT => {
                debug!("COM_QUIT");
                return Ok(false);
            }
            cmd::PING => self.send_ok(&OkInfo::default(), 0).await?,
            cmd::INIT_DB => {
                let db = String::from_utf8_lossy(body);
                debug!(db = %db, "COM_INIT_DB");
                match self.handler.on_init_db(&db).await {
                    Ok(()) => self.send_ok(&OkInfo::default(), 0).await?,
                    Err(e) => self.send_err(&e).await?,
                }
            }
            cmd::QUERY => {
                let sql = crate::text::statement_text(body);
                debug!(len = sql.len(), "COM_QUERY");
                let interrupt = self.handler.interrupter();
                let (responses, gone) = {
                    let work = self.handler.on_query(&sql);
                    watch_peer(work, self.ps, interrupt).await
                };
                if gone {
                    return Ok(false);
                }
                if responses.is_empty() {
                    self.send_ok(&OkInfo::default(), 0).await?;
                }
                let n = responses.len();
                for (i, r) in responses.iter().enumerate() {
                    let is_err = matches!(r, Response::Error(_));
                    self.send_response(r, i + 1 < n && !is_err, false).await?;
                    if is_err {
                        break;
                    }
                }
            }
            cmd::FIELD_LIST => {
                let mut r = Reader::new(body);
                let table = String::from_utf8_lossy(r.nul_terminated()).into_owned();
                debug!(table = %table, "COM_FIELD_LIST");
                match self.handler.on_field_list(&table).await {
                    Ok(cols) => {
                        for c in &cols {
                            self.ps.write_packet(&column_def_packet(c, true)).await?;
                        }
                        self.send_terminator(0, 0).await?;
                    }
                    Err(e) => self.send_err(&e).await?,
                }
            }
            cmd::STATISTICS => {
                let s = "Uptime: 0  Threads: 1  Questions: 0  Slow queries: 0  Opens: 0  Flush tables: 0  Open tables: 0  Queries per second avg: 0.000";
                self.ps.write_packet(s.as_bytes()).await?;
            }
            cmd::PROCESS_KILL => match Reader::new(body).u32() {
                Ok(id) => match self.handler.on_kill(id).await {
                    Ok(()) => self.send_ok(&OkInfo::default(), 0).await?,
                    Err(e) => self.send_err(&e).await?,
                },
                Err(_) => self.send_err(&malformed()).await?,
            },
            cmd::SET_OPTION => match Reader::new(body).u16() {
                Ok(0 | 1) => self.send_terminator(0, 0).await?,
                Ok(_) => {
                    self.send_err(&ErrorInfo::new(
                        codes::ER_UNKNOWN_COM,
                        "08S01",
                        "Unknown command",
                    ))
                    .await?
                }
                Err(_) => self.send_err(&malformed()).await?,
            },
            cmd::RESET_CONNECTION => {
                debug!("COM_RESET_CONNECTION");
                let mut ids: Vec<u32> = self.stmts.drain().map(|(id, _)| id).collect();
                ids.sort_unstable();
                for id in ids {
                    self.handler.on_close(id).await;
                }
                self.handler.on_reset().await;
                self.send_ok(&OkInfo::default(), 0).await?;
            }
            cmd::STMT_PREPARE => self.prepare(body).await?,
            cmd::STMT_EXECUTE => self.execute(body).await?,
            cmd::STMT_SEND_LONG_DATA => self.send_long_data(body), // never answered
            cmd::STMT_CLOSE => {
                // never answered
                if let Ok(id) = Reader::new(body).u32() {
                    if self.stmts.remove(&id).is_some() {
                        self.handler.on_close(id).await;
                    }
                }
            }
            cmd::STMT_FETCH => self.fetch(body).await?,
            cmd::STMT_RESET => match Reader::new(body).u32() {
                Ok(id) => match self.stmts.get_mut(&id) {
                    Some(st) => {
                        st.long_data.iter_mut().for_each(|d| *d = None);
                        st.long_data_too_big = false;
                        st.cursor = None;
                        self.send_ok(&OkInfo::default(), 0).await?;
                    }
                    None => {
                        self.send_err(&unknown_stmt(id, "mysqld_stmt_reset"))
                            .await?
                    }
                },
                Err(_) => self.send_err(&malformed()).await?,
            },
            other => {
                debug!(command = other, "unknown command");
                self.send_err(&ErrorInfo::new(
                    codes::ER_UNKNOWN_COM,
                    "08S01",
                    "Unknown command",
                ))
                .await?;
            }
        }
        Ok(true)
    }

    async fn prepare(&mut self, body: &[u8]) -> io::Result<()> {
        let sql = crate::text::statement_text(body);
        let id = self.next_stmt_id;
        self.next_stmt_id = self.next_stmt_id.checked_add(1).unwrap_or(1);
        debug!(id, len = sql.len(), "COM_STMT_PREPARE");
        let info = match self.handler.on_prepare(id, &sql).await {
            Ok(info) => info,
            Err(e) => return self.send_err(&e).await,
        };
        if info.params > u16::MAX as usize || info.columns.len() > u16::MAX as usize {
            self.handler.on_close(id).await;
            let e = ErrorInfo::new(
                codes::ER_PS_MANY_PARAM,
                "HY000",
                "Prepared statement contains too many placeholders",
            );
            return self.send_err(&e).await;
        }
        let mut p = vec![0x00];
        put_u32(&mut p, id);
        put_u16(&mut p, info.columns.len() as u16);
        put_u16(&mut p, info.params as u16);
        p.push(0);
        put_u16(&mut p, 0);
        self.ps.write_packet(&p).await?;
        if info.params > 0 {
            let param = ColumnDef {
                org_name: String::new(),
                charset: crate::consts::collations::BINARY,
                length: 0,
                flags: crate::flags::BINARY,
                ..ColumnDef::new("?", ColumnType::VarString)
            };
            let def = column_def_packet(&param, false);
            for _ in 0..info.params {
                self.ps.write_packet(&def).await?;
            }
            self.send_defs_eof(0).await?;
        }
        if !info.columns.is_empty() {
            for c in &info.columns {
                self.ps.write_packet(&column_def_packet(c, false)).await?;
            }
            self.send_defs_eof(0).await?;
        }
        self.stmts.insert(
            id,
            Stmt {
                params: info.params,
                types: None,
                long_data: vec![None; info.params],
                long_data_too_big: false,
                cursor: None,
            },
        );
        Ok(())
    }

    fn send_long_data(&mut self, body: &[u8]) {
        let mut r = Reader::new(body);
        let (Ok(id), Ok(param)) = (r.u32(), r.u16()) else {
            return;
        };
        let data = r.rest();
        let Some(st) = self.stmts.get_mut(&id) else {
            return;
        };
        let Some(slot) = st.long_data.get_mut(param as usize) else {
            return;
        };
        let buf = slot.get_or_insert_with(Vec::new);
        if buf.len() + data.len() > MAX_ALLOWED_PACKET {
            st.long_data_too_big = true;
        } else {
            buf.extend_from_slice(data);
        }
    }

    async fn execute(&mut self, body: &[u8]) -> io::Result<()> {
        let mut r = Reader::new(body);
        let Ok(id) = r.u32() else {
            return self.send_err(&malformed()).await;
        };
        let Some(st) = self.stmts.get_mut(&id) else {
            return self
                .send_err(&unknown_stmt(id, "mysqld_stmt_execute"))
                .await;
        };
        let (Ok(flags), Ok(_iterations)) = (r.u8(), r.u32()) else {
            return self.send_err(&malformed()).await;
        };
        st.cursor = None;
        let params = match decode_params(&mut r, st) {
            Ok(p) => p,
            Err(e) => {
                st.long_data.iter_mut().for_each(|d| *d = None);
                st.long_data_too_big = false;
                return self.send_err(&e).await;
            }
        };
        debug!(id, params = params.len(), "COM_STMT_EXECUTE");
        let interrupt = self.handler.interrupter();
        let (resp, gone) = {
            let work = self.handler.on_execute(id, params);
            watch_peer(work, self.ps, interrupt).await
        };
        if gone {
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        match resp {
            // A cursor: the columns now, the rows on COM_STMT_FETCH.
            Response::ResultSet { columns, rows, .. } if flags & CURSOR_TYPE_READ_ONLY != 0 && !columns.is_empty() => {
                let mut buf = Vec::with_capacity(16);
                put_lenenc_int(&mut buf, columns.len() as u64);
                self.ps.write_packet(&buf).await?;
                for c in &columns {
                    self.ps.write_packet(&column_def_packet(c, false)).await?;
                }
                if let Some(st) = self.stmts.get_mut(&id) {
                    st.cursor = Some(Cursor { columns, rows: rows.into_iter() });
                }
                self.send_terminator(0, status::CURSOR_EXISTS).await
            }
            resp => self.send_response(&resp, false, true).await,
        }
    }

    /// COM_STMT_FETCH: the next rows of the statement's open cursor; the cursor closes after its
    /// last row (LAST_ROW_SENT).
    async fn fetch(&mut self, body: &[u8]) -> io::Result<()> {
        let mut r = Reader::new(body);
        let (Ok(id), Ok(n)) = (r.u32(), r.u32()) else {
            return self.send_err(&malformed()).await;
        };
        let Some(st) = self.stmts.get_mut(&id) else {
            return self.send_err(&unknown_stmt(id, "mysqld_stmt_fetch")).await;
        };
        let Some(cursor) = st.cursor.as_mut() else {
            let e = ErrorInfo::new(codes::ER_STMT_HAS_NO_OPEN_CURSOR, "HY000", format!("The statement ({id}) has no open cursor."));
            return self.send_err(&e).await;
        };
        let mut packets = Vec::new();
        for row in cursor.rows.by_ref().take(n.max(1) as usize) {
            let mut buf = Vec::with_capacity(64);
            put_binary_row(&mut buf, &cursor.columns, &row);
            packets.push(buf);
        }
        let done = cursor.rows.len() == 0;
        if done {
            st.cursor = None;
        }
        for p in packets {
            self.ps.write_packet(&p).await?;
        }
        let extra = if done { status::LAST_ROW_SENT } else { status::CURSOR_EXISTS };
        self.send_terminator(0, extra).await
    }
}

/// Run a statement while watching the socket: if the client disconnects first, `interrupt` is
/// called (the statement then stops early, e.g. its embedding calls are dropped) and the result
/// is awaited but reported as `gone`, not sent.
async fn watch_peer<S, T>(
    work: impl std::future::Future<Output = T>,
    ps: &mut PacketStream<S>,
    interrupt: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
) -> (T, bool)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(interrupt) = interrupt else { return (work.await, false) };
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => (r, false),
        _ = ps.peer_closed() => {
            debug!("client disconnected during a statement: interrupting it");
            interrupt();
            (work.await, true)
        }
    }
}

/// Parse the parameter block of COM_STMT_EXECUTE, consuming long data.
fn decode_params(r: &mut Reader<'_>, st: &mut Stmt) -> Result<Vec<Value>, ErrorInfo> {
    let n = st.params;
    if n == 0 {
        return Ok(Vec::new());
    }
    if std::mem::take(&mut st.long_data_too_big) {
        let msg = "Parameter of prepared statement which is set through mysql_send_long_data() is longer than 'max_long_data_size' parameter";
        return Err(ErrorInfo::new(codes::ER_WRONG_ARGUMENTS, "HY000", msg));
    }
    let mut long_data: Vec<Option<Vec<u8>>> = st.long_data.iter_mut().map(Option::take).collect();
    let nulls = r.bytes(n.div_ceil(8)).map_err(|_| malformed())?;
    let bound = r.u8().map_err(|_| malformed())?;
    if bound == 1 {
        let mut types = Vec::with_capacity(n);
        for _ in 0..n {
            let t = r.u16().map_err(|_| malformed())?;
            types.push(((t & 0xff) as u8, (t >> 8) as u8));
        }
        st.types = Some(types);
    }
    let Some(types) = st.types.as_ref() else {
        return Err(wrong_args("mysqld_stmt_execute"));
    };
    let mut out = Vec::with_capacity(n);
    for (i, &(ty, flags)) in types.iter().enumerate() {
        if let Some(data) = long_data[i].take() {
            out.push(Value::Bytes(data));
        } else if nulls[i / 8] & (1 << (i % 8)) != 0 {
            out.push(Value::Null);
        } else {
            out.push(
                decode_param(r, ty, flags & 0x80 != 0)
                    .map_err(|_| wrong_args("mysqld_stmt_execute"))?,
            );
        }
    }
    Ok(out)
}
