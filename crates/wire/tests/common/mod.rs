//! Test support: a toy [`Handler`], a server launcher, and a tiny MySQL
//! client written independently of the crate's own codec so that the tests
//! check the bytes rather than the crate against itself.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use embedb_wire::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ------------------------------------------------------------------ handler

#[derive(Default)]
pub struct Shared {
    pub events: Vec<String>,
    pub params: Vec<(u32, Vec<Value>)>,
    pub finished: Vec<Result<(), String>>,
    pub panics: usize,
}

pub type SharedRef = Arc<Mutex<Shared>>;

pub struct ToyHandler {
    shared: SharedRef,
    in_trans: bool,
    stmts: HashMap<u32, String>,
}

impl ToyHandler {
    pub fn new(shared: SharedRef) -> ToyHandler {
        ToyHandler {
            shared,
            in_trans: false,
            stmts: HashMap::new(),
        }
    }
    fn event(&self, e: String) {
        self.shared.lock().unwrap().events.push(e);
    }
}

pub fn blob_column() -> ColumnDef {
    ColumnDef {
        schema: "test".into(),
        table: "t".into(),
        org_table: "docs".into(),
        name: "body".into(),
        org_name: "content".into(),
        charset: 46,
        length: 4_294_967_295,
        column_type: ColumnType::LongBlob,
        flags: flags::BLOB | flags::NOT_NULL,
        decimals: 0,
    }
}

fn col(name: &str, t: ColumnType) -> ColumnDef {
    ColumnDef::new(name, t)
}

/// Columns and a row covering every binary encoding (see the protocol tests).
pub fn types_columns() -> Vec<ColumnDef> {
    use ColumnType::*;
    vec![
        col("a", LongLong),
        ColumnDef {
            flags: flags::UNSIGNED | flags::BINARY,
            ..col("b", LongLong)
        },
        col("c", Long),
        col("d", Short),
        col("e", Tiny),
        col("f", Double),
        col("g", Float),
        col("h", Date),
        col("i", DateTime),
        col("j", Time),
        col("k", VarString),
        col("l", NewDecimal),
        col("m", Year),
        col("n", Timestamp),
        col("o", Double),
        col("p", VarString),
        col("q", Null),
        col("r", VarString),
    ]
}

pub fn types_row() -> Vec<Value> {
    vec![
        Value::Int(-2),
        Value::UInt(u64::MAX),
        Value::Int(-70000),
        Value::Int(-300),
        Value::Int(-5),
        Value::Double(2.5),
        Value::Float(1.5),
        Value::Date {
            year: 2024,
            month: 2,
            day: 29,
        },
        Value::DateTime {
            year: 2024,
            month: 2,
            day: 29,
            hour: 13,
            minute: 14,
            second: 15,
            micro: 123_456,
        },
        Value::Time {
            negative: true,
            days: 1,
            hours: 2,
            minutes: 3,
            seconds: 4,
            micro: 0,
        },
        Value::Bytes("héllo".as_bytes().to_vec()),
        Value::Bytes(b"12.34".to_vec()),
        Value::Int(2024),
        Value::DateTime {
            year: 2000,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            micro: 0,
        },
        Value::Int(7),
        Value::Double(0.5),
        Value::Null,
        Value::Null,
    ]
}

fn rs(columns: Vec<ColumnDef>, rows: Vec<Vec<Value>>) -> Response {
    Response::ResultSet {
        columns,
        rows,
        warnings: 0,
    }
}

impl ToyHandler {
    fn statement(&mut self, stmt: &str) -> Response {
        use ColumnType::*;
        match stmt {
            "select 1" => rs(vec![col("1", LongLong)], vec![vec![Value::Int(1)]]),
            "select blob" => rs(
                vec![blob_column()],
                vec![vec![Value::Bytes(b"\x00\x01abc".to_vec())]],
            ),
            "ok" => Response::Ok(OkInfo {
                affected_rows: 3,
                last_insert_id: 7,
                warnings: 1,
                info: "hi".into(),
            }),
            "fail" => Response::Error(ErrorInfo::new(
                8200,
                "HY000",
                "Unsupported multi schema change",
            )),
            "conflict" => Response::Error(ErrorInfo::new(9007, "40001", "Write conflict")),
            "begin" => {
                self.in_trans = true;
                Response::Ok(OkInfo::default())
            }
            "commit" => {
                self.in_trans = false;
                Response::Ok(OkInfo::default())
            }
            "empty" => rs(vec![col("a", VarString)], vec![]),
            "nocols" => rs(vec![], vec![]),
            "floats" => rs(
                vec![col("d", Double), col("f", Float), col("e", Double)],
                vec![vec![
                    Value::Double(1e-5),
                    Value::Float(0.1),
                    Value::Double(1e20),
                ]],
            ),
            "types" => rs(types_columns(), vec![types_row()]),
            s if s.to_ascii_lowercase().starts_with("set ") => Response::Ok(OkInfo::default()),
            "select @@version_comment limit 1" => rs(
                vec![col("@@version_comment", VarString)],
                vec![vec![Value::from("embedb test")]],
            ),
            other => rs(vec![col("stmt", VarString)], vec![vec![Value::from(other)]]),
        }
    }
}

#[async_trait::async_trait]
impl Handler for ToyHandler {
    async fn authenticate(
        &mut self,
        user: &str,
        plugin: &str,
        scramble: &[u8],
        auth_response: &[u8],
    ) -> bool {
        self.event(format!("auth {user} {plugin}"));
        let password = match user {
            "root" => "",
            "alice" => "secret",
            _ => return false,
        };
        verify_password(plugin, password, scramble, auth_response)
    }
    async fn on_connect(&mut self, info: &ConnInfo) -> Result<(), ErrorInfo> {
        self.event(format!(
            "connect {} {:?} found_rows={}",
            info.user, info.database, info.found_rows
        ));
        if let Some(tls) = &info.tls {
            self.event(format!("tls {} {}", tls.version, tls.cipher));
        }
        match info.database.as_deref() {
            Some("nope") => Err(ErrorInfo::new(1049, "42000", "Unknown database 'nope'")),
            _ => Ok(()),
        }
    }
    async fn on_init_db(&mut self, db: &str) -> Result<(), ErrorInfo> {
        self.event(format!("init_db {db}"));
        if db == "nope" {
            return Err(ErrorInfo::new(1049, "42000", "Unknown database 'nope'"));
        }
        Ok(())
    }
    async fn on_query(&mut self, sql: &str) -> Vec<Response> {
        if sql.starts_with("/*big*/") {
            let cols = vec![col("len", ColumnType::LongLong), blob_column()];
            return vec![rs(
                cols,
                vec![vec![Value::UInt(sql.len() as u64), Value::from(sql)]],
            )];
        }
        let mut out = Vec::new();
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let r = self.statement(stmt);
            let stop = matches!(r, Response::Error(_));
            out.push(r);
            if stop {
                break;
            }
        }
        out
    }
    async fn on_field_list(&mut self, table: &str) -> Result<Vec<ColumnDef>, ErrorInfo> {
        match table {
            "t" => Ok(vec![blob_column()]),
            _ => Err(ErrorInfo::new(
                1146,
                "42S02",
                format!("Table 'test.{table}' doesn't exist"),
            )),
        }
    }
    async fn on_prepare(&mut self, statement_id: u32, sql: &str) -> Result<PrepareInfo, ErrorInfo> {
        self.event(format!("prepare {statement_id}"));
        if sql.contains("fail") {
            return Err(ErrorInfo::new(
                1064,
                "42000",
                "You have an error in your SQL syntax",
            ));
        }
        self.stmts.insert(statement_id, sql.to_string());
        let columns = if sql.starts_with("types") {
            types_columns()
        } else {
            vec![]
        };
        Ok(PrepareInfo {
            params: sql.matches('?').count(),
            columns,
        })
    }
    async fn on_execute(&mut self, statement_id: u32, params: Vec<Value>) -> Response {
        let n = params.len();
        self.shared
            .lock()
            .unwrap()
            .params
            .push((statement_id, params));
        match self.stmts.get(&statement_id) {
            Some(sql) if sql.starts_with("types") => rs(types_columns(), vec![types_row()]),
            _ => Response::Ok(OkInfo {
                affected_rows: n as u64,
                ..OkInfo::default()
            }),
        }
    }
    async fn on_close(&mut self, statement_id: u32) {
        self.stmts.remove(&statement_id);
        self.event(format!("close {statement_id}"));
    }
    async fn on_reset(&mut self) {
        self.in_trans = false;
        self.event("reset".into());
    }
    async fn on_disconnect(&mut self) {
        self.event("disconnect".into());
    }
    fn status_flags(&self) -> u16 {
        status::AUTOCOMMIT | if self.in_trans { status::IN_TRANS } else { 0 }
    }
    fn client_host(&self) -> String {
        "127.0.0.1".into()
    }
}

/// Serve one connection on an arbitrary stream, recording how it ended.
pub fn spawn_conn<S>(
    stream: S,
    id: u32,
    plugin: &str,
    shared: SharedRef,
) -> tokio::task::JoinHandle<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let opts = ServerOptions {
        server_version: "8.0.11-TiDB-v8.5.0-embedb-test".into(),
        default_auth_plugin: plugin.to_string(),
        ..ServerOptions::default()
    };
    spawn_conn_opts(stream, id, opts, shared)
}

/// [`spawn_conn`] with full control over the server options (TLS etc.).
pub fn spawn_conn_opts<S>(
    stream: S,
    id: u32,
    opts: ServerOptions,
    shared: SharedRef,
) -> tokio::task::JoinHandle<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handler = ToyHandler::new(shared.clone());
    let task = tokio::spawn(async move { serve_connection(stream, id, &opts, handler).await });
    tokio::spawn(async move {
        let r = task.await;
        let mut s = shared.lock().unwrap();
        match r {
            Ok(res) => s.finished.push(res.map_err(|e| e.to_string())),
            Err(_) => s.panics += 1,
        }
    })
}

/// A TCP server on 127.0.0.1:0 with a fresh ToyHandler per connection.
pub async fn start_server(plugin: &str) -> (SocketAddr, SharedRef) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared: SharedRef = Arc::default();
    let (plugin, sh) = (plugin.to_string(), shared.clone());
    tokio::spawn(async move {
        let mut id = 0;
        while let Ok((sock, _)) = listener.accept().await {
            id += 1;
            spawn_conn(sock, id, &plugin, sh.clone());
        }
    });
    (addr, shared)
}

// ------------------------------------------------------------------ client

pub const CLIENT_BASE: u32 = capabilities::LONG_PASSWORD
    | capabilities::LONG_FLAG
    | capabilities::PROTOCOL_41
    | capabilities::TRANSACTIONS
    | capabilities::SECURE_CONNECTION
    | capabilities::MULTI_STATEMENTS
    | capabilities::MULTI_RESULTS
    | capabilities::PS_MULTI_RESULTS
    | capabilities::PLUGIN_AUTH
    | capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA
    | capabilities::CONNECT_ATTRS;

#[derive(Debug, Clone)]
pub struct Greeting {
    pub protocol: u8,
    pub version: String,
    pub connection_id: u32,
    pub scramble: Vec<u8>,
    pub caps: u32,
    pub charset: u8,
    pub status: u16,
    pub plugin: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerErr {
    pub code: u16,
    pub state: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OkPacket {
    pub header: u8,
    pub affected: u64,
    pub last_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok(OkPacket),
    Err(ServerErr),
    Rows {
        columns: Vec<Vec<u8>>,
        rows: Vec<Vec<u8>>,
        status: u16,
        warnings: u16,
    },
}

impl Reply {
    pub fn status(&self) -> u16 {
        match self {
            Reply::Ok(ok) => ok.status,
            Reply::Err(_) => 0,
            Reply::Rows { status, .. } => *status,
        }
    }
    pub fn text_rows(&self) -> Vec<Vec<Option<Vec<u8>>>> {
        match self {
            Reply::Rows { rows, .. } => rows.iter().map(|r| parse_text_row(r)).collect(),
            other => panic!("not a result set: {other:?}"),
        }
    }
    pub fn err(&self) -> &ServerErr {
        match self {
            Reply::Err(e) => e,
            other => panic!("not an error: {other:?}"),
        }
    }
}

pub struct Cursor<'a>(pub &'a [u8]);

impl<'a> Cursor<'a> {
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    pub fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take(2).try_into().unwrap())
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    pub fn lenenc(&mut self) -> u64 {
        match self.u8() {
            b @ 0..=250 => b as u64,
            0xfc => self.u16() as u64,
            0xfd => {
                let b = self.take(3);
                u32::from_le_bytes([b[0], b[1], b[2], 0]) as u64
            }
            0xfe => u64::from_le_bytes(self.take(8).try_into().unwrap()),
            b => panic!("bad lenenc marker {b:#x}"),
        }
    }
    pub fn lenenc_str(&mut self) -> &'a [u8] {
        let n = self.lenenc() as usize;
        self.take(n)
    }
    pub fn nul_str(&mut self) -> &'a [u8] {
        let i = self.0.iter().position(|&b| b == 0).expect("NUL");
        let s = self.take(i);
        self.take(1);
        s
    }
}

pub fn parse_text_row(p: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut c = Cursor(p);
    let mut out = Vec::new();
    while !c.0.is_empty() {
        if c.0[0] == 0xfb {
            c.u8();
            out.push(None);
        } else {
            out.push(Some(c.lenenc_str().to_vec()));
        }
    }
    out
}

pub fn parse_ok(p: &[u8]) -> OkPacket {
    let mut c = Cursor(p);
    OkPacket {
        header: c.u8(),
        affected: c.lenenc(),
        last_id: c.lenenc(),
        status: c.u16(),
        warnings: c.u16(),
        info: c.0.to_vec(),
    }
}

pub fn parse_err(p: &[u8]) -> ServerErr {
    let mut c = Cursor(p);
    assert_eq!(c.u8(), 0xff);
    let code = c.u16();
    assert_eq!(c.u8(), b'#');
    let state = String::from_utf8(c.take(5).to_vec()).unwrap();
    ServerErr {
        code,
        state,
        message: String::from_utf8_lossy(c.0).into_owned(),
    }
}

pub struct Client<S> {
    pub s: S,
    pub seq: u8,
    pub caps: u32,
    /// Set after the handshake: the plugin we ended with and whether 0x01 0x03 arrived.
    pub auth_plugin: String,
    pub switched: bool,
    pub fast_auth: bool,
}

impl Client<TcpStream> {
    pub async fn tcp(addr: SocketAddr) -> (Client<TcpStream>, Greeting) {
        let s = TcpStream::connect(addr).await.unwrap();
        let mut c = Client::new(s);
        let g = c.read_greeting().await;
        (c, g)
    }

    /// Greeting + login in one go.
    pub async fn connect(
        addr: SocketAddr,
        user: &str,
        password: &str,
        plugin: &str,
        caps: u32,
    ) -> Result<Client<TcpStream>, ServerErr> {
        let (mut c, g) = Client::tcp(addr).await;
        c.login(&g, user, password, plugin, None, caps).await?;
        Ok(c)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(s: S) -> Client<S> {
        Client {
            s,
            seq: 0,
            caps: 0,
            auth_plugin: String::new(),
            switched: false,
            fast_auth: false,
        }
    }

    /// One payload (joining continuation packets); None at end of stream.
    pub async fn read_packet(&mut self) -> Option<Vec<u8>> {
        self.read_packet_from(false).await
    }

    /// As `read_packet`, taking the first packet's sequence id as the server sends it: after a
    /// write the server cut short, the client cannot know how many of its packets were read.
    pub async fn read_packet_any_seq(&mut self) -> Option<Vec<u8>> {
        self.read_packet_from(true).await
    }

    async fn read_packet_from(&mut self, mut resync: bool) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let mut h = [0u8; 4];
            self.s.read_exact(&mut h).await.ok()?;
            let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
            if resync {
                self.seq = h[3];
                resync = false;
            }
            assert_eq!(h[3], self.seq, "sequence id");
            self.seq = self.seq.wrapping_add(1);
            let start = out.len();
            out.resize(start + len, 0);
            self.s.read_exact(&mut out[start..]).await.ok()?;
            if len < 0xff_ffff {
                return Some(out);
            }
        }
    }

    pub async fn write_packet(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let mut rest = payload;
        loop {
            let n = rest.len().min(0xff_ffff);
            let l = (n as u32).to_le_bytes();
            self.s.write_all(&[l[0], l[1], l[2], self.seq]).await?;
            self.s.write_all(&rest[..n]).await?;
            self.seq = self.seq.wrapping_add(1);
            rest = &rest[n..];
            if n < 0xff_ffff {
                return self.s.flush().await;
            }
        }
    }

    pub async fn command(&mut self, payload: &[u8]) {
        self.seq = 0;
        self.write_packet(payload).await.unwrap();
    }

    pub async fn read_greeting(&mut self) -> Greeting {
        let p = self.read_packet().await.expect("greeting");
        let mut c = Cursor(&p);
        let protocol = c.u8();
        let version = String::from_utf8(c.nul_str().to_vec()).unwrap();
        let connection_id = c.u32();
        let mut scramble = c.take(8).to_vec();
        assert_eq!(c.u8(), 0);
        let lo = c.u16() as u32;
        let charset = c.u8();
        let status = c.u16();
        let hi = c.u16() as u32;
        let data_len = c.u8() as usize;
        assert_eq!(c.take(10), &[0; 10]);
        let part2 = c.take(data_len.max(21) - 8);
        assert_eq!(*part2.last().unwrap(), 0);
        scramble.extend_from_slice(&part2[..part2.len() - 1]);
        let plugin = String::from_utf8(c.nul_str().to_vec()).unwrap();
        assert!(c.0.is_empty());
        Greeting {
            protocol,
            version,
            connection_id,
            scramble,
            caps: lo | hi << 16,
            charset,
            status,
            plugin,
        }
    }

    pub fn auth_data(plugin: &str, password: &str, scramble: &[u8]) -> Vec<u8> {
        match plugin {
            "mysql_native_password" => scramble_native_password(password, scramble),
            "caching_sha2_password" => scramble_caching_sha2_password(password, scramble),
            _ => b"\x01\x02junk".to_vec(),
        }
    }

    pub fn handshake_response(
        g: &Greeting,
        user: &str,
        password: &str,
        plugin: &str,
        db: Option<&str>,
        caps: u32,
    ) -> Vec<u8> {
        let caps = caps
            | if db.is_some() {
                capabilities::CONNECT_WITH_DB
            } else {
                0
            };
        let mut p = Vec::new();
        p.extend_from_slice(&caps.to_le_bytes());
        p.extend_from_slice(&(1u32 << 24).to_le_bytes());
        p.push(255);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        let auth = Self::auth_data(plugin, password, &g.scramble);
        if caps & capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            assert!(auth.len() < 251);
            p.push(auth.len() as u8);
        } else {
            p.push(auth.len() as u8);
        }
        p.extend_from_slice(&auth);
        if let Some(db) = db {
            p.extend_from_slice(db.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        if caps & capabilities::CONNECT_ATTRS != 0 {
            let mut attrs = Vec::new();
            for (k, v) in [("_client_name", "wire-test"), ("_os", "linux")] {
                attrs.push(k.len() as u8);
                attrs.extend_from_slice(k.as_bytes());
                attrs.push(v.len() as u8);
                attrs.extend_from_slice(v.as_bytes());
            }
            p.push(attrs.len() as u8);
            p.extend_from_slice(&attrs);
        }
        p
    }

    /// Send HandshakeResponse41 and follow auth switches / more-data until OK or ERR.
    pub async fn login(
        &mut self,
        g: &Greeting,
        user: &str,
        password: &str,
        plugin: &str,
        db: Option<&str>,
        caps: u32,
    ) -> Result<OkPacket, ServerErr> {
        self.caps = caps;
        self.auth_plugin = plugin.to_string();
        let resp = Self::handshake_response(g, user, password, plugin, db, caps);
        self.write_packet(&resp).await.unwrap();
        loop {
            let p = self.read_packet().await.expect("auth reply");
            match p[0] {
                0x00 => return Ok(parse_ok(&p)),
                0xff => return Err(parse_err(&p)),
                0xfe => {
                    let mut c = Cursor(&p[1..]);
                    let plugin = String::from_utf8(c.nul_str().to_vec()).unwrap();
                    let data = c.0;
                    assert_eq!(data.len(), 21, "scramble + NUL");
                    assert_eq!(data[20], 0);
                    assert_eq!(&data[..20], &g.scramble[..], "switch reuses the scramble");
                    let auth = Self::auth_data(&plugin, password, &data[..20]);
                    self.auth_plugin = plugin;
                    self.switched = true;
                    self.write_packet(&auth).await.unwrap();
                }
                0x01 => {
                    assert_eq!(p, [0x01, 0x03]);
                    self.fast_auth = true;
                }
                other => panic!("unexpected auth packet {other:#x}: {p:?}"),
            }
        }
    }

    fn deprecate_eof(&self) -> bool {
        self.caps & capabilities::DEPRECATE_EOF != 0
    }

    fn is_terminator(&self, p: &[u8]) -> bool {
        p[0] == 0xfe
            && if self.deprecate_eof() {
                p.len() < 0xff_ffff
            } else {
                p.len() < 9
            }
    }

    /// Read `n` column definitions and, without DEPRECATE_EOF, their EOF.
    pub async fn read_defs(&mut self, n: usize) -> Vec<Vec<u8>> {
        let mut defs = Vec::new();
        for _ in 0..n {
            defs.push(self.read_packet().await.unwrap());
        }
        if n > 0 && !self.deprecate_eof() {
            let eof = self.read_packet().await.unwrap();
            assert_eq!(eof[0], 0xfe);
            assert_eq!(eof.len(), 5);
        }
        defs
    }

    /// Read one reply to a command: OK, ERR or a complete result set.
    pub async fn read_reply(&mut self) -> Reply {
        let p = self.read_packet().await.expect("reply");
        match p[0] {
            0x00 => Reply::Ok(parse_ok(&p)),
            0xff => Reply::Err(parse_err(&p)),
            _ => {
                let n = Cursor(&p).lenenc() as usize;
                let columns = self.read_defs(n).await;
                let mut rows = Vec::new();
                loop {
                    let p = self.read_packet().await.unwrap();
                    if self.is_terminator(&p) {
                        let (status, warnings) = if self.deprecate_eof() {
                            let ok = parse_ok(&p);
                            (ok.status, ok.warnings)
                        } else {
                            let mut c = Cursor(&p[1..]);
                            let w = c.u16();
                            (c.u16(), w)
                        };
                        return Reply::Rows {
                            columns,
                            rows,
                            status,
                            warnings,
                        };
                    }
                    rows.push(p);
                }
            }
        }
    }

    /// COM_QUERY and every reply while SERVER_MORE_RESULTS_EXISTS is set.
    pub async fn query(&mut self, sql: &str) -> Vec<Reply> {
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.command(&p).await;
        let mut out = Vec::new();
        loop {
            let r = self.read_reply().await;
            let more = r.status() & status::MORE_RESULTS_EXISTS != 0;
            out.push(r);
            if !more {
                return out;
            }
        }
    }

    pub async fn ping(&mut self) -> Reply {
        self.command(&[0x0e]).await;
        self.read_reply().await
    }
}
