//! One connection: the `embedb_wire::Handler` for a `Session`.
//!
//! Results leave as MySQL result sets. Each Arrow field becomes a column definition — with the
//! declared type when the column comes from a table (carried in field metadata), otherwise from
//! the Arrow type — and each cell a wire `Value`. VECTOR columns are sent as text `[1,2,3]` with
//! type LONG_BLOB, collation utf8mb4_bin and no BINARY flag, so drivers hand users a `str`.

use std::sync::Arc;

use datafusion::arrow::array::*;
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::sql::sqlparser::ast;
use embedb_wire::{collations, flags, ColumnDef, ColumnType, ConnInfo, ErrorInfo, OkInfo, PrepareInfo, Response, Value};

use crate::cluster::forward::STMT_TRACE;
use crate::error::SqlError;
use crate::session::{Engine, Output, Session};
use crate::sql::types::{self, IntKind, SqlType, TYPE_META};

pub struct Connection {
    engine: Arc<Engine>,
    session: Option<Session>,
    id: u32,
    host: String,
    user: String,
    /// On a cluster reader: the link that runs writes on the writer (`cluster::forward`).
    forward: crate::cluster::forward::Forwarder,
    /// Logged in by another node that forwards its client's statements here.
    forwarded: bool,
}

impl Connection {
    pub fn new(engine: Arc<Engine>, id: u32, host: String) -> Self {
        Connection { engine, session: None, id, host, user: String::new(), forward: Default::default(), forwarded: false }
    }

    /// The cluster, when this node is one of its readers (statements may have to be forwarded).
    fn reader_of(&self) -> Option<Arc<crate::cluster::Cluster>> {
        self.engine.cluster.clone().filter(|c| !c.is_writer())
    }

    /// A transaction this session had open on the old writer, when this node has become the
    /// writer: it is gone with the old writer. The error ends it here too.
    async fn lost_forwarded_txn(&mut self) -> Option<Response> {
        if self.engine.cluster.as_ref().is_some_and(|c| c.is_writer()) && (self.forward.in_txn || self.forward.pinned) {
            let was_txn = self.forward.in_txn;
            self.forward.close().await;
            self.forward = Default::default();
            if was_txn {
                self.session().rollback_open();
                return Some(Response::Error(ErrorInfo::new(1105, "HY000", ROLE_CHANGED)));
            }
        }
        None
    }

    /// Runs `sql` on the writer for this connection's session (`cluster::forward`).
    async fn forward(&mut self, cluster: &Arc<crate::cluster::Cluster>, sql: &str) -> Vec<Response> {
        let (user, host) = (self.user.clone(), self.host.clone());
        let s = self.session();
        let begin = s.in_txn;
        let db = s.db.clone();
        // Writes made here while this node was the writer cannot move to the new one.
        if s.txn.as_ref().is_some_and(|t| !t.is_empty()) {
            s.rollback_open();
            return vec![Response::Error(ErrorInfo::new(1105, "HY000", ROLE_CHANGED))];
        }
        // A read transaction here gives way to the writer's.
        if s.txn.is_some() || s.in_txn {
            s.rollback_open();
        }
        let responses = self.forward.run(cluster, &user, &host, db.as_deref(), begin, sql).await;
        let last_id = self.forward.last_insert_id;
        let s = self.session();
        s.last_insert_id = last_id;
        if let Some(Response::Ok(ok)) = responses.last() {
            s.last_row_count = ok.affected_rows as i64;
        }
        responses
    }

    fn session(&mut self) -> &mut Session {
        if self.session.is_none() {
            self.session = Some(Session::for_client(self.engine.clone(), self.id, &self.user, &self.host));
        }
        self.session.as_mut().unwrap()
    }
}

impl Connection {
    /// The session's transaction state, for the cluster's statement trace: role, the local
    /// transaction (`in_txn`, buffered writes) and the writer-side one (`fwd`).
    fn txn_state(&self) -> String {
        let role = self.engine.cluster.as_ref().map_or("single", |c| c.role());
        let (in_txn, writes) = self.session.as_ref().map_or((false, None), |s| (s.in_txn, s.txn.as_ref().map(|t| !t.is_empty())));
        format!("{role} in_txn={in_txn} writes={writes:?} fwd_txn={} pinned={}", self.forward.in_txn, self.forward.pinned)
    }

    async fn query_inner(&mut self, sql: &str) -> Vec<Response> {
        if let Some(e) = self.lost_forwarded_txn().await {
            return vec![e];
        }
        if let Some(cluster) = self.reader_of() {
            use crate::cluster::forward::{kind, Kind};
            let statements = crate::sql::parser::split_statements(sql);
            let kinds: Vec<Kind> = statements.iter().map(|s| kind(s)).collect();
            let engaged = self.forward.engaged();
            let s = self.session();
            let to_writer = |k: &Kind| match k {
                Kind::Write => true,
                Kind::Execute(name) => s.sql_prepared.get(name).is_some_and(|p| crate::cluster::forward::needs_writer(&p.sql)),
                _ => false,
            };
            let forward = engaged || kinds.iter().any(to_writer);
            if forward {
                let responses = self.forward(&cluster, sql).await;
                // Session state set there is set here too, for the reads that stay here.
                let failed = responses.iter().any(|r| matches!(r, Response::Error(_)));
                for (stmt, k) in statements.iter().zip(&kinds) {
                    if *k == Kind::State {
                        let _ = self.session().execute(stmt).await;
                        self.forward.remember(stmt, true);
                    } else if *k == Kind::Write && !failed && crate::cluster::forward::is_set(stmt) {
                        // `SET GLOBAL …` (stored by the writer) takes effect here now too.
                        let _ = self.session().execute(stmt).await;
                    }
                }
                let warnings = std::mem::take(&mut self.forward.warnings);
                self.session().warnings = warnings.into_iter().map(|(level, code, message)| crate::session::Warning::new(&level, code, message)).collect();
                return responses;
            }
            for (stmt, k) in statements.iter().zip(&kinds) {
                if *k == Kind::State {
                    self.forward.remember(stmt, false);
                }
            }
        }
        let results = match catch_panic(self.session().execute(sql)).await {
            Ok(r) => r,
            Err(what) => vec![Err(self.after_panic(what))],
        };
        let warnings = self.session().warnings.len() as u16;
        results.into_iter().map(|r| to_response(r, warnings)).collect()
    }
}

const ROLE_CHANGED: &str = "this node's cluster role changed during the transaction (failover); the transaction was rolled back: retry it";

fn err(e: SqlError) -> ErrorInfo {
    ErrorInfo::new(e.code, e.state, e.message)
}

/// Run one command's future so that a panic inside it becomes that command's error (see
/// [`Connection::after_panic`]): the connection and every other one go on.
async fn catch_panic<T>(fut: impl std::future::Future<Output = T>) -> std::result::Result<T, String> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(fut).catch_unwind().await.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into())
    })
}

impl Connection {
    /// The error for a statement that panicked. The open transaction is rolled back, because the
    /// panic may have left it half-way through a statement.
    fn after_panic(&mut self, what: String) -> SqlError {
        tracing::error!(connection = self.id, "statement panicked: {what}");
        let open = self.session.as_ref().is_some_and(|s| s.in_txn || s.txn.is_some());
        if let Some(s) = self.session.as_mut() {
            s.rollback_open();
        }
        let tail = if open { "; the open transaction was rolled back" } else { "" };
        SqlError::new(1105, "HY000", format!("internal error in this statement ({what}){tail}"))
    }
}

#[async_trait::async_trait]
impl embedb_wire::Handler for Connection {
    async fn authenticate(&mut self, user: &str, plugin: &str, scramble: &[u8], auth_response: &[u8]) -> bool {
        if let Some(who) = user.strip_prefix(crate::cluster::forward::FORWARD_USER_PREFIX) {
            // Another node of the cluster, for its client `who` (`cluster::forward`).
            let Some(secret) = self.engine.cluster.as_ref().and_then(|c| c.secret()) else { return false };
            let Some((u, h)) = who.rsplit_once('@') else { return false };
            if !embedb_wire::verify_password(plugin, &secret, scramble, auth_response) {
                return false;
            }
            self.user = u.to_string();
            self.host = h.to_string();
            self.forwarded = true;
            return true;
        }
        let Some(account) = self.engine.accounts.current().for_login(user, &self.host) else { return false };
        self.user = user.to_string();
        account.verify(plugin, scramble, auth_response)
    }

    async fn on_connect(&mut self, info: &ConnInfo) -> Result<(), ErrorInfo> {
        match &info.tls {
            Some(t) => tracing::debug!(connection = self.id, user = %info.user, version = %t.version, cipher = %t.cipher, "login over TLS"),
            None => tracing::debug!(connection = self.id, user = %info.user, "login without TLS"),
        }
        if !self.forwarded {
            self.user = info.user.clone();
        }
        if let Some(account) = self.engine.accounts.current().for_login(&info.user, &self.host) {
            if account.locked {
                return Err(ErrorInfo::new(3118, "HY000", format!("Access denied for user {}. Account is locked.", crate::privileges::quoted(&info.user, &self.host))));
            }
            let limit = account.max_user_connections;
            // (This connection joins the process list below, with its session.)
            if limit > 0 && self.engine.stats.processes().iter().filter(|p| p.user == info.user).count() >= limit as usize {
                return Err(ErrorInfo::new(1203, "42000", format!("User {} already has more than 'max_user_connections' active connections", info.user)));
            }
        }
        let found_rows = info.found_rows;
        let s = self.session();
        s.found_rows_flag = found_rows;
        s.multi_statements = info.client_capabilities & embedb_wire::capabilities::MULTI_STATEMENTS != 0;
        if let Some(db) = &info.database {
            if !db.is_empty() {
                s.use_db(db).map_err(err)?;
            }
        }
        Ok(())
    }

    async fn on_init_db(&mut self, db: &str) -> Result<(), ErrorInfo> {
        self.session().use_db(db).map_err(err)
    }

    async fn on_query(&mut self, sql: &str) -> Vec<Response> {
        if self.engine.cluster.is_none() || !tracing::enabled!(target: STMT_TRACE, tracing::Level::DEBUG) {
            return self.query_inner(sql).await;
        }
        // A cluster's statement trace: where each statement ran and the transaction state
        // around it (`--log-level info,embedb::cluster::stmt=debug`).
        let before = self.txn_state();
        let responses = self.query_inner(sql).await;
        let outcome: Vec<String> = responses
            .iter()
            .map(|r| match r {
                Response::Error(e) => format!("error {}", e.code),
                Response::Ok(ok) => format!("ok {}", ok.affected_rows),
                _ => "rows".into(),
            })
            .collect();
        let head: String = sql.chars().take(80).collect();
        tracing::debug!(target: STMT_TRACE, conn = self.id, forwarded = self.forwarded, before = %before, after = %self.txn_state(), ?outcome, "{head}");
        responses
    }

    async fn on_field_list(&mut self, table: &str) -> Result<Vec<ColumnDef>, ErrorInfo> {
        let s = self.session();
        let db = s.current_db().map_err(err)?;
        s.require_sees_table("SELECT", &db, table).map_err(err)?;
        let txn = s.engine.store.begin().map_err(|e| err(e.into()))?;
        let info = crate::sql::catalog::Catalog::new(&txn).must_table(&db, table).map_err(err)?;
        txn.rollback();
        let schema = info.arrow_schema();
        Ok(schema
            .fields()
            .iter()
            .zip(&info.columns)
            .map(|(f, c)| {
                let mut d = column_def(f);
                d.name = c.name.clone();
                d.org_name = c.name.clone();
                d.table = info.name.clone();
                d.org_table = info.name.clone();
                d.schema = info.db.clone();
                d
            })
            .collect())
    }

    async fn on_prepare(&mut self, statement_id: u32, sql: &str) -> Result<PrepareInfo, ErrorInfo> {
        let p = match catch_panic(self.session().prepare(sql)).await {
            Ok(p) => p.map_err(err)?,
            Err(what) => return Err(err(self.after_panic(what))),
        };
        let s = self.session();
        let columns = p.columns.as_ref().map(|c| c.fields().iter().map(|f| column_def(f)).collect()).unwrap_or_default();
        let params = p.params;
        s.prepared.insert(statement_id, Arc::new(p));
        Ok(PrepareInfo { params, columns })
    }

    async fn on_execute(&mut self, statement_id: u32, params: Vec<Value>) -> Response {
        let s = self.session();
        let Some(p) = s.prepared.get(&statement_id).cloned() else {
            return Response::Error(ErrorInfo::new(1243, "HY000", format!("Unknown prepared statement handler ({statement_id}) given to mysqld_stmt_execute")));
        };
        let args: Vec<ast::Expr> = params.iter().map(param_expr).collect();
        if let Some(e) = self.lost_forwarded_txn().await {
            return e;
        }
        if let Some(cluster) = self.reader_of() {
            if self.forward.engaged() || crate::cluster::forward::needs_writer(&p.sql) {
                let text = p.text_with(&args);
                return self.forward(&cluster, &text).await.into_iter().next().unwrap_or(Response::Ok(OkInfo::default()));
            }
        }
        let s = self.session();
        let r = match catch_panic(s.execute_prepared(&p, args)).await {
            Ok(r) => r,
            Err(what) => Err(self.after_panic(what)),
        };
        let warnings = self.session().warnings.len() as u16;
        to_response(r, warnings)
    }

    async fn on_close(&mut self, statement_id: u32) {
        self.session().prepared.remove(&statement_id);
    }

    async fn on_reset(&mut self) {
        let db = self.session.as_ref().and_then(|s| s.db.clone());
        if let Some(s) = self.session.as_mut() {
            s.rollback_open();
        }
        self.session = None;
        if let Some(db) = db {
            let _ = self.session().use_db(&db);
        }
    }

    async fn on_disconnect(&mut self) {
        self.forward.close().await;
        if let Some(s) = self.session.as_mut() {
            s.rollback_open();
        }
    }

    fn status_flags(&self) -> u16 {
        let mut st = 0;
        if let Some(s) = &self.session {
            if s.autocommit() {
                st |= embedb_wire::status::AUTOCOMMIT;
            }
            if s.txn.is_some() || self.forward.in_txn {
                st |= embedb_wire::status::IN_TRANS;
            }
        } else {
            st |= embedb_wire::status::AUTOCOMMIT;
        }
        st
    }

    fn on_traffic(&mut self, received: u64, sent: u64) {
        self.engine.stats.traffic(received, sent);
    }

    fn client_host(&self) -> String {
        self.host.clone()
    }

    fn interrupter(&self) -> Option<Arc<dyn Fn() + Send + Sync>> {
        // The client went away mid-statement: stop it as KILL CONNECTION would.
        let i = self.session.as_ref()?.interrupt.clone();
        Some(Arc::new(move || i.trigger(true)))
    }

    fn closed(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.interrupt.connection_killed())
    }

    async fn on_kill(&mut self, connection_id: u32) -> Result<(), ErrorInfo> {
        self.session().may_kill(connection_id as u64).map_err(err)?;
        self.engine.connections.kill(connection_id as u64, true).map_err(err)
    }
}

fn to_response(r: Result<Output, SqlError>, warnings: u16) -> Response {
    match r {
        Ok(Output::Ok { affected, last_insert_id, info }) => {
            Response::Ok(OkInfo { affected_rows: affected, last_insert_id, warnings, info })
        }
        Ok(Output::Rows { schema, batches }) => {
            let columns: Vec<ColumnDef> = schema.fields().iter().map(|f| column_def(f)).collect();
            let mut rows = Vec::new();
            for b in &batches {
                for r in 0..b.num_rows() {
                    let mut row = Vec::with_capacity(b.num_columns());
                    for c in b.columns() {
                        row.push(cell(c, r));
                    }
                    rows.push(row);
                }
            }
            Response::ResultSet { columns, rows, warnings }
        }
        Err(e) => Response::Error(err(e)),
    }
}

/// The wire description of a result column.
pub fn column_def(f: &Field) -> ColumnDef {
    let name = crate::sql::show::column_name(f);
    let declared = f.metadata().get(TYPE_META).and_then(|t| SqlType::parse(t));
    let mut d = match (&declared, f.data_type()) {
        (Some(SqlType::Int { kind, unsigned, .. }), _) => {
            let t = match kind {
                IntKind::Tiny => ColumnType::Tiny,
                IntKind::Small => ColumnType::Short,
                IntKind::Medium => ColumnType::Int24,
                IntKind::Int => ColumnType::Long,
                IntKind::Big => ColumnType::LongLong,
            };
            let mut d = ColumnDef::new(&name, t);
            if *unsigned {
                d.flags |= flags::UNSIGNED;
            }
            d
        }
        (Some(SqlType::Year), _) => ColumnDef::new(&name, ColumnType::Year),
        (Some(SqlType::Text(_)), _) => {
            let mut d = ColumnDef::new(&name, ColumnType::Blob);
            d.charset = collations::UTF8MB4_BIN;
            d.flags &= !flags::BINARY;
            d
        }
        (Some(SqlType::Json), _) => {
            let mut d = ColumnDef::new(&name, ColumnType::Json);
            d.charset = collations::BINARY;
            d
        }
        (Some(SqlType::Char(n)), _) => {
            let mut d = ColumnDef::new(&name, ColumnType::String);
            d.length = n * 4;
            d
        }
        (Some(SqlType::VarChar(n)), _) => {
            let mut d = ColumnDef::new(&name, ColumnType::VarString);
            d.length = n * 4;
            d
        }
        (Some(SqlType::Timestamp(fsp)), _) => {
            let mut d = ColumnDef::new(&name, ColumnType::Timestamp);
            d.decimals = *fsp;
            d
        }
        (Some(SqlType::DateTime(fsp)), _) => {
            let mut d = ColumnDef::new(&name, ColumnType::DateTime);
            d.decimals = *fsp;
            d
        }
        (Some(SqlType::Time(_)), _) => ColumnDef::new(&name, ColumnType::Time),
        (_, dt) => arrow_column_def(&name, dt),
    };
    if !f.is_nullable() {
        d.flags |= flags::NOT_NULL;
    }
    let md = f.metadata();
    if let (Some(db), Some(t), Some(c)) = (md.get(types::DB_META), md.get(types::TABLE_META), md.get(types::COLUMN_META)) {
        d.schema = db.clone();
        d.table = md.get(types::ALIAS_META).unwrap_or(t).clone();
        d.org_table = t.clone();
        d.org_name = c.clone();
        if d.name.eq_ignore_ascii_case(c) {
            // `SELECT *` and plain column references show the column as declared.
            d.name = c.clone();
        }
    }
    d
}

fn arrow_column_def(name: &str, dt: &DataType) -> ColumnDef {
    match dt {
        DataType::Boolean | DataType::Int8 => ColumnDef::new(name, ColumnType::Tiny),
        DataType::Int16 => ColumnDef::new(name, ColumnType::Short),
        DataType::Int32 => ColumnDef::new(name, ColumnType::Long),
        DataType::Int64 => ColumnDef::new(name, ColumnType::LongLong),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            let mut d = ColumnDef::new(name, ColumnType::LongLong);
            d.flags |= flags::UNSIGNED;
            d
        }
        DataType::Float16 | DataType::Float32 => ColumnDef::new(name, ColumnType::Float),
        DataType::Float64 => ColumnDef::new(name, ColumnType::Double),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            let mut d = ColumnDef::new(name, ColumnType::NewDecimal);
            d.decimals = (*s).max(0) as u8;
            d.length = *p as u32 + 2;
            d
        }
        DataType::Date32 | DataType::Date64 => ColumnDef::new(name, ColumnType::Date),
        DataType::Timestamp(..) => {
            // A computed date-time (CONVERT_TZ, NOW(6), …) has no declared precision: its text
            // shows a fraction only when it has one (`2024-01-01 10:00:00`, as MySQL prints it).
            ColumnDef::new(name, ColumnType::DateTime)
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            let mut d = ColumnDef::new(name, ColumnType::Blob);
            d.charset = collations::BINARY;
            d.flags |= flags::BINARY;
            d
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => {
            // VECTOR: text on the wire, a string to drivers.
            let mut d = ColumnDef::new(name, ColumnType::LongBlob);
            d.charset = collations::UTF8MB4_BIN;
            d.flags &= !flags::BINARY;
            d
        }
        DataType::Null => {
            let mut d = ColumnDef::new(name, ColumnType::Null);
            d.charset = collations::BINARY;
            d
        }
        _ => ColumnDef::new(name, ColumnType::VarString),
    }
}

/// One cell as a wire value.
fn cell(a: &ArrayRef, r: usize) -> Value {
    if a.is_null(r) || matches!(a.data_type(), DataType::Null) {
        return Value::Null;
    }
    macro_rules! get {
        ($t:ty) => {
            a.as_any().downcast_ref::<$t>().unwrap().value(r)
        };
    }
    match a.data_type() {
        DataType::Boolean => Value::Int(get!(BooleanArray) as i64),
        DataType::Int8 => Value::Int(get!(Int8Array) as i64),
        DataType::Int16 => Value::Int(get!(Int16Array) as i64),
        DataType::Int32 => Value::Int(get!(Int32Array) as i64),
        DataType::Int64 => Value::Int(get!(Int64Array)),
        DataType::UInt8 => Value::UInt(get!(UInt8Array) as u64),
        DataType::UInt16 => Value::UInt(get!(UInt16Array) as u64),
        DataType::UInt32 => Value::UInt(get!(UInt32Array) as u64),
        DataType::UInt64 => Value::UInt(get!(UInt64Array)),
        DataType::Float32 => Value::Float(get!(Float32Array)),
        DataType::Float64 => Value::Double(get!(Float64Array)),
        DataType::Decimal128(_, s) => Value::Bytes(types::format_decimal(get!(Decimal128Array), *s).into_bytes()),
        DataType::Utf8 => Value::Bytes(get!(StringArray).as_bytes().to_vec()),
        DataType::LargeUtf8 => Value::Bytes(get!(LargeStringArray).as_bytes().to_vec()),
        DataType::Utf8View => Value::Bytes(get!(StringViewArray).as_bytes().to_vec()),
        DataType::Binary => Value::Bytes(get!(BinaryArray).to_vec()),
        DataType::LargeBinary => Value::Bytes(get!(LargeBinaryArray).to_vec()),
        DataType::Date32 => match types::days_to_date(get!(Date32Array)) {
            Some(d) => {
                use chrono::Datelike;
                Value::Date { year: d.year() as u16, month: d.month() as u8, day: d.day() as u8 }
            }
            None => Value::Null,
        },
        DataType::Timestamp(unit, _) => {
            let micros = match unit {
                TimeUnit::Second => get!(TimestampSecondArray) * 1_000_000,
                TimeUnit::Millisecond => get!(TimestampMillisecondArray) * 1000,
                TimeUnit::Microsecond => get!(TimestampMicrosecondArray),
                TimeUnit::Nanosecond => get!(TimestampNanosecondArray) / 1000,
            };
            match types::micros_to_datetime(micros) {
                Some(d) => {
                    use chrono::{Datelike, Timelike};
                    Value::DateTime {
                        year: d.year() as u16,
                        month: d.month() as u8,
                        day: d.day() as u8,
                        hour: d.hour() as u8,
                        minute: d.minute() as u8,
                        second: d.second() as u8,
                        micro: d.nanosecond() / 1000,
                    }
                }
                None => Value::Null,
            }
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => {
            let values = match a.data_type() {
                DataType::List(_) => a.as_any().downcast_ref::<ListArray>().unwrap().value(r),
                DataType::LargeList(_) => a.as_any().downcast_ref::<LargeListArray>().unwrap().value(r),
                _ => a.as_any().downcast_ref::<FixedSizeListArray>().unwrap().value(r),
            };
            match types::float_values(&values) {
                Ok(v) => Value::Bytes(embedb_vector::format_vector(&v).into_bytes()),
                Err(_) => Value::Null,
            }
        }
        _ => {
            let s = datafusion::arrow::util::display::array_value_to_string(a, r).unwrap_or_default();
            Value::Bytes(s.into_bytes())
        }
    }
}

/// A parameter the client bound, as the SQL literal it stands for: typed, never text to parse.
fn param_expr(v: &Value) -> ast::Expr {
    let lit = |v: ast::Value| ast::Expr::value(v);
    let cast = |text: String, data_type: ast::DataType| ast::Expr::Cast {
        kind: ast::CastKind::Cast,
        expr: Box::new(lit(ast::Value::SingleQuotedString(text))),
        data_type,
        array: false,
        format: None,
    };
    match v {
        Value::Null => lit(ast::Value::Null),
        Value::Int(i) => lit(ast::Value::Number(i.to_string(), false)),
        Value::UInt(u) => lit(ast::Value::Number(u.to_string(), false)),
        // Exact literals are DECIMALs; a FLOAT or DOUBLE parameter keeps its type.
        Value::Float(f) => cast(format!("{f:e}"), ast::DataType::Float(ast::ExactNumberInfo::None)),
        Value::Double(d) => cast(format!("{d:e}"), ast::DataType::Double(ast::ExactNumberInfo::None)),
        // A decimal is an exact literal (the parser reads those as DECIMAL); text that is not a
        // number stays a string, as MySQL would convert it.
        Value::Decimal(d) if d.parse::<f64>().is_ok() && !d.contains(['e', 'E', 'n', 'N', 'i', 'I']) => match d.strip_prefix('-') {
            Some(abs) => ast::Expr::UnaryOp { op: ast::UnaryOperator::Minus, expr: Box::new(lit(ast::Value::Number(abs.to_string(), false))) },
            None => lit(ast::Value::Number(d.trim_start_matches('+').to_string(), false)),
        },
        Value::Decimal(d) => lit(ast::Value::SingleQuotedString(d.clone())),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => lit(ast::Value::SingleQuotedString(s.to_string())),
            Err(_) => lit(ast::Value::HexStringLiteral(b.iter().map(|x| format!("{x:02X}")).collect())),
        },
        Value::Date { year, month, day } => cast(format!("{year:04}-{month:02}-{day:02}"), ast::DataType::Date),
        Value::DateTime { year, month, day, hour, minute, second, micro } => {
            let frac = if *micro == 0 { String::new() } else { format!(".{micro:06}") };
            let text = format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}{frac}");
            // DataFusion's timestamps are nanoseconds and cannot hold all of MySQL's range
            // (1000-01-01 … 9999-12-31): outside theirs the value stays a string, which the
            // column it meets converts.
            if (1678..=2261).contains(year) {
                cast(text, ast::DataType::Datetime(if *micro == 0 { None } else { Some(6) }))
            } else {
                lit(ast::Value::SingleQuotedString(text))
            }
        }
        Value::Time { negative, days, hours, minutes, seconds, micro } => {
            let h = *days as u64 * 24 + *hours as u64;
            lit(ast::Value::SingleQuotedString(format!("{}{h:02}:{minutes:02}:{seconds:02}.{micro:06}", if *negative { "-" } else { "" })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_keep_their_types() {
        assert_eq!(param_expr(&Value::Bytes(b"it's".to_vec())).to_string(), "'it''s'");
        assert_eq!(param_expr(&Value::Double(1.5)).to_string(), "CAST('1.5e0' AS DOUBLE)");
        assert_eq!(param_expr(&Value::Bytes(vec![0xff, 0])).to_string(), "X'FF00'");
        assert_eq!(param_expr(&Value::Date { year: 2024, month: 2, day: 29 }).to_string(), "CAST('2024-02-29' AS DATE)");
    }

    #[test]
    fn vector_columns_are_text_to_drivers() {
        let f = Field::new("v", embedb_vector::vector_data_type(), true);
        let d = column_def(&f);
        assert_eq!(d.column_type, ColumnType::LongBlob);
        assert_eq!(d.charset, 46);
        assert_eq!(d.flags & flags::BINARY, 0);
    }
}
