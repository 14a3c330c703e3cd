//! A session is one client connection's state — current database, system variables, the open
//! transaction, prepared statements, warnings — and the place where one statement runs.
//!
//! `Session::execute(text)` splits the text into statements and runs each through `run`:
//! 1. `SHOW …`, `DESC …` and a few TiDB-only forms are answered by `sql::show` / `sql::ddl` directly;
//! 2. everything else is parsed (`sql::parser`) and dispatched: queries to `sql::query`, writes to
//!    `sql::dml`, schema changes to `sql::ddl`, and `SET`/`USE`/`BEGIN`/`COMMIT`/`ROLLBACK` here.
//!
//! Transactions: with autocommit on and no `BEGIN`, each statement runs in its own transaction that
//! commits when the statement succeeds. Inside a transaction (`BEGIN`, or autocommit off) a statement
//! that fails is rolled back to a savepoint taken before it, so it leaves nothing behind while the
//! transaction's earlier work stays. DDL commits the open transaction first, as in MySQL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;
use datafusion::sql::sqlparser::ast::{self, Statement};
use embedb_storage::Txn;

use crate::error::{Result, SqlError};
use crate::sql::catalog::Catalog;
use crate::sql::{functions, parser, variables};

mod accounts;
pub mod backlog_worker;
mod engine;
mod values;
mod locking;
pub mod temporary;
pub mod user_locks;

pub use engine::{server_version, Engine};

/// How often an autocommit write that hit a write conflict is run again before 9007 reaches the
/// client.
const AUTOCOMMIT_RETRIES: u32 = 10;
/// How long an autocommit write waits for a table's switch to a new embedding model.
const SWITCH_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether an autocommit write (tried first at `since`) failed on a table switching to a new
/// embedding model and may wait for the switch (a minute at most): then it has waited a moment
/// and runs again, on the new definition.
pub(crate) async fn waited_for_switch(r: &Result<Output>, since: std::time::Instant) -> bool {
    let switching = r.as_ref().is_err_and(|e| e.code == crate::error::WRITE_CONFLICT && e.message.contains(crate::embed::model_change::SWITCHING));
    if switching && since.elapsed() < SWITCH_WAIT {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        return true;
    }
    false
}

/// The result of one statement.
#[derive(Debug)]
pub enum Output {
    Ok { affected: u64, last_insert_id: u64, info: String },
    Rows { schema: SchemaRef, batches: Vec<RecordBatch> },
}

impl Output {
    pub fn ok() -> Output {
        Output::Ok { affected: 0, last_insert_id: 0, info: String::new() }
    }
    pub fn affected(n: u64) -> Output {
        Output::Ok { affected: n, last_insert_id: 0, info: String::new() }
    }
}

pub struct Warning {
    pub level: &'static str,
    pub code: u16,
    pub message: String,
}

impl Warning {
    /// A warning another node reported (`level` as `SHOW WARNINGS` prints it).
    pub fn new(level: &str, code: u16, message: String) -> Warning {
        let level = match level {
            "Note" => "Note",
            "Error" => "Error",
            _ => "Warning",
        };
        Warning { level, code, message }
    }
}

pub struct Session {
    pub engine: Arc<Engine>,
    pub connection_id: u32,
    pub user: String,
    pub db: Option<String>,
    pub vars: BTreeMap<String, String>,
    pub txn: Option<Arc<Txn>>,
    /// True after BEGIN (or while autocommit is off and a transaction is open).
    pub in_txn: bool,
    pub last_insert_id: u64,
    pub found_rows_flag: bool,
    pub warnings: Vec<Warning>,
    pub last_found_rows: u64,
    pub last_row_count: i64,
    pub ctx: SessionContext,
    /// Prepared statements: the protocol's by statement id, SQL PREPARE's by lower-case name.
    pub prepared: HashMap<u32, Arc<crate::sql::prepared::Prepared>>,
    pub sql_prepared: HashMap<String, Arc<crate::sql::prepared::Prepared>>,
    /// `@name` user variables, kept as SQL literals.
    pub user_vars: HashMap<String, ast::Expr>,
    /// Whether the client allowed several statements in one COM_QUERY (CLIENT_MULTI_STATEMENTS).
    pub multi_statements: bool,
    /// The text of the statement being run (for MySQL-style column headers).
    pub source: String,
    /// Set by KILL from another connection; reset when a statement starts.
    pub interrupt: Arc<crate::interrupt::Interrupt>,
    /// The running statement's aliases with capitals, by position (`aliases_as_written`).
    alias_headers: parking_lot::Mutex<Vec<(usize, String)>>,
    /// Physical plans of repeated vector searches (`sql::plan_cache`).
    pub plan_cache: crate::sql::plan_cache::PlanCache,
    /// Whether reads by key skip DataFusion (`sql::point_get`); tests turn it off to compare.
    pub point_get: bool,
    /// The open transaction queued rows for async embedding: the backlog worker is woken when
    /// it commits.
    pub(crate) queued_embeddings: bool,
    /// A model change the running ALTER started: (db, table, job), queued after its commit.
    pub(crate) model_change_started: Option<(String, String, i64)>,
    /// The statement searches an async embedding column (its plan is not cached: see
    /// `sql::query`'s `guard_async_searches`).
    pub(crate) searched_async: bool,
    /// What `EMBED_TEXT` learnt during the statement (texts truncated): its warning.
    pub(crate) embed_notes: Arc<crate::embed::Notes>,
    /// SQL `SAVEPOINT`s of the open transaction, oldest first (names compare case-insensitively).
    pub savepoints: Vec<(String, embedb_storage::Savepoint)>,
    /// Who the session is and what it may do (`crate::privileges`).
    pub privileges: crate::privileges::Privileges,
    /// The client's address (`USER()`'s host).
    pub client_host: String,
    /// `CREATE TEMPORARY TABLE`s of this session (`temporary`).
    pub temp_tables: Vec<temporary::TempTable>,
    /// Lock owner of the open transaction, once it took a row lock (`locking`).
    pub lock_owner: Option<u64>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.drop_temporary_tables();
        self.release_locks();
        self.engine.user_locks.release_all(self.connection_id);
        self.engine.connections.unregister(self.connection_id, &self.interrupt);
        self.engine.stats.unregister(self.connection_id);
    }
}

impl Session {
    /// A session of an in-process caller (its process-list host is `localhost`).
    pub fn new(engine: Arc<Engine>, connection_id: u32, user: &str) -> Session {
        Self::for_client(engine, connection_id, user, "localhost")
    }

    /// A session for a client connected from `host`.
    pub fn for_client(engine: Arc<Engine>, connection_id: u32, user: &str, host: &str) -> Session {
        let mut cfg = SessionConfig::new()
            .with_default_catalog_and_schema(crate::sql::context::CATALOG, "")
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(false)
            .with_target_partitions(1);
        {
            let o = cfg.options_mut();
            o.sql_parser.enable_ident_normalization = true;
            o.sql_parser.parse_float_as_decimal = true;
            o.sql_parser.map_string_types_to_utf8view = false;
            o.sql_parser.default_null_ordering = "nulls_min".into();
            o.execution.parquet.schema_force_view_types = false;
        }
        let cfg = crate::sql::recursion_limit::with_depth(cfg);
        let interrupt = crate::interrupt::Interrupt::new();
        engine.connections.register(connection_id, interrupt.clone());
        engine.stats.register(connection_id, user, host);
        let embed_notes = Arc::new(crate::embed::Notes::default());
        let ctx = new_context(cfg, Some((engine.embedder.clone(), interrupt.clone(), embed_notes.clone())));
        ctx.register_udf(crate::index::fulltext::fts_match_word_udf(engine.search.clone()));
        let vars = engine.globals.read().clone();
        let privileges = {
            let account = engine.accounts.current().for_login(user, host);
            crate::privileges::Privileges {
                user: user.to_string(),
                host: account.as_ref().map_or_else(|| "%".to_string(), |a| a.host.clone()),
                account,
                version: engine.accounts.version(),
            }
        };
        for var in [crate::index::search::ann::EF_SEARCH_VAR, crate::sql::recursion_limit::DEPTH_VAR] {
            if let Some(value) = vars.get(var) {
                mirror_into_context(&ctx, var, value);
            }
        }
        Session {
            engine,
            connection_id,
            user: user.to_string(),
            db: None,
            vars,
            txn: None,
            in_txn: false,
            last_insert_id: 0,
            found_rows_flag: false,
            warnings: Vec::new(),
            last_found_rows: 0,
            last_row_count: -1,
            ctx,
            prepared: HashMap::new(),
            sql_prepared: HashMap::new(),
            user_vars: HashMap::new(),
            multi_statements: true,
            source: String::new(),
            interrupt,
            alias_headers: Default::default(),
            plan_cache: Default::default(),
            point_get: true,
            queued_embeddings: false,
            model_change_started: None,
            searched_async: false,
            embed_notes,
            savepoints: Vec::new(),
            privileges,
            client_host: host.to_string(),
            temp_tables: Vec::new(),
            lock_owner: None,
        }
    }

    pub fn autocommit(&self) -> bool {
        self.vars.get("autocommit").map(|v| v == "1").unwrap_or(true)
    }

    /// Switch the current database (USE / COM_INIT_DB / the handshake's database).
    pub fn use_db(&mut self, db: &str) -> Result<()> {
        self.require(crate::privileges::Need::AnyInDb { db: db.to_string() })?;
        let txn = self.engine.store.begin()?;
        let info = Catalog::new(&txn).database(db)?;
        txn.rollback();
        let Some(info) = info else { return Err(SqlError::unknown_db(db)) };
        let name = if info.name.eq_ignore_ascii_case("information_schema") { "information_schema".into() } else { info.name.to_lowercase() };
        // @@collation_database follows the current database (Django and ORMs read it).
        let coll = info.collation();
        self.vars.insert("character_set_database".into(), crate::sql::collation::charset_of(coll).to_string());
        self.vars.insert("collation_database".into(), coll.to_string());
        self.db = Some(info.name);
        let state = self.ctx.state_ref();
        state.write().config_mut().options_mut().catalog.default_schema = name;
        Ok(())
    }

    pub fn current_db(&self) -> Result<String> {
        self.db.clone().ok_or_else(SqlError::no_db)
    }

    /// Run a COM_QUERY text: one result per statement, stopping after the first error.
    pub async fn execute(&mut self, sql: &str) -> Vec<Result<Output>> {
        let mut out = Vec::new();
        let stmts = parser::split_statements(sql);
        if stmts.len() > 1 && !self.multi_statements {
            // Stacked statements are refused unless the client asked for them (SQL injection guard).
            return vec![Err(SqlError::syntax(format!(
                "near \"{}\": multiple statements need the client's CLIENT_MULTI_STATEMENTS flag",
                stmts[1].chars().take(40).collect::<String>()
            )))];
        }
        for stmt in stmts {
            let r = self.run(&stmt).await;
            let failed = r.is_err();
            out.push(r);
            if failed {
                break;
            }
        }
        if out.is_empty() {
            out.push(Err(SqlError::new(1065, "42000", "Query was empty")));
        }
        out
    }

    /// Run one statement.
    pub async fn run(&mut self, sql: &str) -> Result<Output> {
        self.run_source(sql, None).await
    }

    /// Run a statement already parsed (a bound prepared statement); `sql` is its text, and
    /// `shape` its plan-cache shape with the values bound (`Shape::of_prepared`).
    pub async fn run_parsed(&mut self, sql: &str, stmt: Statement, shape: Option<crate::sql::plan_cache::Shape>) -> Result<Output> {
        self.run_source(sql, Some((crate::sql::prepared::Parsed::Statement(stmt), shape))).await
    }

    pub(crate) async fn run_source(&mut self, sql: &str, parsed: Option<(crate::sql::prepared::Parsed, Option<crate::sql::plan_cache::Shape>)>) -> Result<Output> {
        // (No lowercase copy of the whole text here: a vector search's is kilobytes long, and the
        // plan cache serves it without one.)
        let head = sql.trim_start().as_bytes();
        let starts = |p: &str| head.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes()));
        let is_show_warnings = starts("show warnings") || starts("show errors") || starts("show count");
        if !is_show_warnings {
            self.warnings.clear();
        }
        self.source = sql.to_string();
        self.alias_headers.lock().clear();
        self.interrupt.reset();
        // `@@last_plan_from_cache` describes the statement before the one that reads it.
        let needle = variables::LAST_PLAN_FROM_CACHE.as_bytes();
        if !head.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle)) {
            self.vars.insert(variables::LAST_PLAN_FROM_CACHE.into(), "0".into());
        }
        self.engine.stats.statement_started(self.connection_id, self.db.as_deref(), sql);
        let r = match self.interrupt.check() {
            // A killed connection runs nothing more.
            Err(e) => Err(e),
            // Boxed: a statement's future is large, and callers nest it (tests run on 2 MB stacks).
            Ok(()) => match parsed {
                None => Box::pin(self.run_inner(sql)).await,
                Some((stmt, shape)) => {
                    self.plan_cache.take_pending();
                    let shape = shape.filter(|_| self.plan_cache_on());
                    self.privileges();
                    let cached = match &shape {
                        Some(shape) => Box::pin(self.run_cached(sql, shape, Some(&stmt))).await,
                        None => Ok(None),
                    };
                    match cached {
                        Ok(Some(out)) => Ok(out),
                        // Planned: the values go into the statement, and into the shape as text.
                        Ok(None) => Box::pin(self.run_statement(stmt.statement(), shape.map(crate::sql::plan_cache::Shape::with_texts))).await,
                        Err(e) => Err(e),
                    }
                }
            },
        };
        self.engine.stats.statement_ended(self.connection_id, self.db.as_deref(), r.is_err());
        if let Some(w) = self.embed_notes.take_warning() {
            if r.is_ok() {
                self.warn(1105, w);
            }
        }
        let r = r.map_err(|e| self.unhide(e));
        if let Err(e) = &r {
            // An error's text may quote the statement, and the statement may hold a key.
            if crate::sql::variables::mentions_secret(sql) {
                tracing::debug!(connection = self.connection_id, code = e.code, "statement failed (its text is not logged: it names a secret)");
            } else {
                tracing::debug!(connection = self.connection_id, code = e.code, "statement failed: {}", e.message);
            }
        }
        r.map(|out| self.upper_case_catalog_headers_for(sql, out))
    }

    /// MySQL 8 names information_schema's result columns in upper case (`TABLE_NAME`) unless the
    /// statement (`source`) gave them an alias; TypeORM and JDBC metadata read them by those names.
    pub(crate) fn upper_case_catalog_headers_for(&self, source: &str, out: Output) -> Output {
        let Output::Rows { schema, batches } = out else { return out };
        let schema = self.aliases_as_written(schema);
        let upper = crate::sql::infoschema::UPPER_NAME_META;
        if !schema.fields().iter().any(|f| f.metadata().contains_key(upper)) {
            return Output::Rows { schema, batches };
        }
        let source = source.to_ascii_lowercase();
        let aliased = |name: &str| {
            source.contains(&format!("as {name}")) || source.contains(&format!("as `{name}`")) || source.contains(&format!("as \"{name}\""))
        };
        let fields: Vec<datafusion::arrow::datatypes::FieldRef> = schema
            .fields()
            .iter()
            .map(|f| match f.metadata().get(upper) {
                Some(u) if f.name() == &u.to_ascii_lowercase() && !aliased(f.name()) && !f.metadata().contains_key(crate::sql::show::NAME_META) => {
                    let mut md = f.metadata().clone();
                    md.insert(crate::sql::show::NAME_META.to_string(), u.clone());
                    Arc::new(f.as_ref().clone().with_metadata(md))
                }
                _ => f.clone(),
            })
            .collect();
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(fields, schema.metadata().clone()));
        Output::Rows { schema, batches }
    }

    /// The statement's aliases with capitals (`SELECT COUNT(*) AS Total`) as the result's headers
    /// (`sql::rewrite::alias_headers`): planned in lower case, shown as written.
    pub(crate) fn aliases_as_written(&self, schema: datafusion::arrow::datatypes::SchemaRef) -> datafusion::arrow::datatypes::SchemaRef {
        let headers = self.alias_headers.lock().clone();
        if headers.is_empty() {
            return schema;
        }
        let mut fields: Vec<datafusion::arrow::datatypes::FieldRef> = schema.fields().iter().cloned().collect();
        for (i, header) in headers {
            let Some(f) = fields.get(i) else { continue };
            if crate::sql::rewrite::display_name(f.name()) != header.to_lowercase() || f.metadata().contains_key(crate::sql::show::NAME_META) {
                continue;
            }
            let mut md = f.metadata().clone();
            md.insert(crate::sql::show::NAME_META.to_string(), header);
            fields[i] = Arc::new(f.as_ref().clone().with_metadata(md));
        }
        Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(fields, schema.metadata().clone()))
    }

    /// `tidb_enable_non_prepared_plan_cache` (on unless the session turned it off).
    fn plan_cache_on(&self) -> bool {
        self.vars.get(variables::PLAN_CACHE_VAR).map_or(true, |v| v == "ON")
    }

    pub(crate) async fn run_inner(&mut self, sql: &str) -> Result<Output> {
        use crate::sql::plan_cache::Shape;
        // A statement that failed before reaching `query` may have left one behind.
        self.plan_cache.take_pending();
        let shape = if self.plan_cache_on() { Shape::of(sql) } else { None };
        // Grants changed since the last statement: the cached plans go (they were checked
        // under the old ones).
        self.privileges();
        if let Some(shape) = &shape {
            if let Some(out) = Box::pin(self.run_cached(sql, shape, None)).await? {
                return Ok(out);
            }
        }
        let lower = sql.trim_start().to_ascii_lowercase();
        if lower.starts_with("prepare") || lower.starts_with("execute") || lower.starts_with("deallocate") || lower.starts_with("drop prepare") {
            if let Some(out) = Box::pin(self.sql_prepared_statement(sql)).await? {
                return Ok(out);
            }
        }
        if let Some(stmt) = crate::privileges::statements::parse(sql, self.db.as_deref()) {
            return Box::pin(self.account_statement(stmt?)).await;
        }
        if let Some(out) = Box::pin(self.run_special(sql, &lower)).await? {
            return Ok(out);
        }
        // START TRANSACTION WITH CONSISTENT SNAPSHOT (mysqldump --single-transaction): every
        // transaction here reads one snapshot taken when it starts, so the phrase changes nothing.
        let without_snapshot;
        let sql = match lower.find("with consistent snapshot") {
            Some(at) if lower.starts_with("start transaction") => {
                let sql = sql.trim_start();
                let rest = sql[at + "with consistent snapshot".len()..].trim_start();
                without_snapshot = format!("{} {}", &sql[..at], rest.strip_prefix(',').unwrap_or(rest));
                without_snapshot.as_str()
            }
            _ => sql,
        };
        let stmt = parser::parse_one(crate::sql::view::strip_check_option(sql).unwrap_or(sql))?;
        Box::pin(self.run_statement(stmt, shape)).await
    }

    /// Run a parsed statement; `shape` is its plan-cache shape when it has one.
    async fn run_statement(&mut self, mut stmt: Statement, shape: Option<crate::sql::plan_cache::Shape>) -> Result<Output> {
        let change = self.rewrite_temporary(&mut stmt)?;
        self.authorize(&stmt)?;
        let out = Box::pin(self.run_authorized(stmt, shape)).await?;
        self.apply_temp_change(change);
        Ok(out)
    }

    async fn run_authorized(&mut self, stmt: Statement, shape: Option<crate::sql::plan_cache::Shape>) -> Result<Output> {
        use crate::sql::plan_cache::{self, Pending};
        match stmt {
            Statement::Query(ref q) if !q.locks.is_empty() && self.pessimistic() && (self.in_txn || !self.autocommit()) => {
                Box::pin(self.locking_select(stmt)).await
            }
            Statement::Query(_) => {
                if let Some(shape) = shape.filter(|s| s.well_placed(&stmt)) {
                    // Read before the transaction begins (see `plan_cache`).
                    let version = self.engine.search.catalog_version();
                    let key = plan_cache::key(self.db.as_deref(), &shape);
                    self.plan_cache.set_pending(Pending { key, shape, version });
                }
                self.in_statement(|s, txn| Box::pin(s.query(stmt, txn))).await
            }
            Statement::Explain { .. } => self.in_statement(|s, txn| Box::pin(s.query(stmt, txn))).await,
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                if self.pessimistic() {
                    return Box::pin(self.locking_dml(stmt)).await;
                }
                if self.in_txn || !self.autocommit() {
                    return self.in_statement(|s, txn| Box::pin(s.dml(stmt, txn))).await;
                }
                // An autocommit statement that loses a write conflict is run again on a new
                // snapshot, as TiDB retries it: the client never sees 9007 for a statement it
                // could not have retried better itself.
                let mut tries = 0;
                let switch_wait = std::time::Instant::now();
                loop {
                    let one = stmt.clone();
                    let r = self.in_statement(|s, txn| Box::pin(s.dml(one, txn))).await;
                    if waited_for_switch(&r, switch_wait).await {
                        continue;
                    }
                    match r {
                        Err(e) if e.code == crate::error::WRITE_CONFLICT && tries < AUTOCOMMIT_RETRIES => {
                            tries += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(1 << tries.min(6))).await;
                        }
                        r => return r,
                    }
                }
            }
            Statement::StartTransaction { .. } => {
                self.commit_open()?;
                self.begin()?;
                self.in_txn = true;
                Ok(Output::ok())
            }
            Statement::Commit { .. } => {
                self.commit_open()?;
                Ok(Output::ok())
            }
            Statement::Rollback { savepoint: Some(name), .. } => self.rollback_to_savepoint(&name.value),
            Statement::Rollback { .. } => {
                self.rollback_open();
                Ok(Output::ok())
            }
            Statement::Savepoint { name } => self.savepoint(&name.value),
            Statement::ReleaseSavepoint { name } => {
                let at = self.find_savepoint(&name.value)?;
                self.savepoints.truncate(at);
                Ok(Output::ok())
            }
            Statement::Use(u) => {
                let name = match u {
                    ast::Use::Object(n) | ast::Use::Database(n) | ast::Use::Schema(n) => n,
                    other => return Err(SqlError::syntax(format!("near '{other}'"))),
                };
                self.use_db(&ident_name(&name))?;
                Ok(Output::ok())
            }
            Statement::Set(set) => {
                self.plan_cache.clear();
                Box::pin(self.set(set)).await
            }
            Statement::ExplainTable { table_name, .. } => {
                let (db, table) = self.resolve_name(&table_name)?;
                self.in_statement(move |s, txn| Box::pin(async move { s.describe(&db, &table, txn, None).await })).await
            }
            Statement::Kill { modifier, id } => {
                let connection = !matches!(modifier, Some(ast::KillType::Query));
                self.may_kill(id)?;
                self.engine.connections.kill(id, connection)?;
                Ok(Output::ok())
            }
            Statement::Flush { .. } | Statement::LockTables { .. } | Statement::UnlockTables => Ok(Output::ok()),
            other if crate::sql::ddl::commits_implicitly(&other) => {
                self.plan_cache.clear();
                let engine = self.engine.clone();
                let _g = engine.ddl_lock.lock().await;
                self.commit_open()?;
                Box::pin(self.ddl(other)).await
            }
            // Anything else is refused before it can touch the open transaction.
            other => Err(crate::sql::ddl::unsupported_statement(&other)),
        }
    }

    /// `db.table` or `table` in the current database.
    pub fn resolve_name(&self, name: &ast::ObjectName) -> Result<(String, String)> {
        let parts = name_parts(name);
        match parts.len() {
            1 => Ok((self.current_db()?, parts[0].clone())),
            2 => Ok((parts[0].clone(), parts[1].clone())),
            _ => Err(SqlError::syntax(format!("near '{name}'"))),
        }
    }

    // ---- transactions ----------------------------------------------------------------------

    fn begin(&mut self) -> Result<Arc<Txn>> {
        let t = Arc::new(self.engine.store.begin()?);
        self.txn = Some(t.clone());
        Ok(t)
    }

    /// `SAVEPOINT name`: remembers the open transaction's state. Outside a transaction (autocommit
    /// with no BEGIN) there is nothing to keep, as in MySQL: it answers OK and keeps nothing.
    fn savepoint(&mut self, name: &str) -> Result<Output> {
        if !(self.in_txn || !self.autocommit()) {
            return Ok(Output::ok());
        }
        let txn = match &self.txn {
            Some(t) => t.clone(),
            None => {
                self.in_txn = true;
                self.begin()?
            }
        };
        // A savepoint of the same name is replaced (MySQL deletes the old one).
        self.savepoints.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.savepoints.push((name.to_string(), txn.savepoint()));
        Ok(Output::ok())
    }

    /// `ROLLBACK TO [SAVEPOINT] name`: undoes the writes made after it; the savepoint itself stays,
    /// the ones set after it go. The transaction stays open.
    fn rollback_to_savepoint(&mut self, name: &str) -> Result<Output> {
        let at = self.find_savepoint(name)?;
        let sp = self.savepoints[at].1;
        if let Some(t) = &self.txn {
            t.rollback_to(sp);
        }
        self.savepoints.truncate(at + 1);
        Ok(Output::ok())
    }

    /// Position of the savepoint `name`, or MySQL's 1305.
    fn find_savepoint(&self, name: &str) -> Result<usize> {
        self.savepoints
            .iter()
            .rposition(|(n, _)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| SqlError::new(1305, "42000", format!("SAVEPOINT {name} does not exist")))
    }

    /// Commit the open transaction, if any.
    pub fn commit_open(&mut self) -> Result<()> {
        self.in_txn = false;
        self.savepoints.clear();
        let r = match self.txn.take() {
            Some(t) => t.commit(),
            None => Ok(()),
        };
        self.release_locks();
        self.wake_backlog(r.is_ok());
        Ok(r?)
    }

    /// After a commit (`committed`) or a rollback: wake the backlog worker if rows were queued.
    fn wake_backlog(&mut self, committed: bool) {
        if std::mem::take(&mut self.queued_embeddings) && committed {
            self.engine.embedder.backlog.notify();
        }
    }

    pub fn rollback_open(&mut self) {
        self.queued_embeddings = false;
        self.in_txn = false;
        self.savepoints.clear();
        if let Some(t) = self.txn.take() {
            t.rollback();
        }
        self.release_locks();
    }

    /// Run `f` as one atomic statement inside the right transaction.
    pub async fn in_statement<F>(&mut self, f: F) -> Result<Output>
    where
        F: for<'a> FnOnce(
            &'a mut Session,
            Arc<Txn>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Output>> + Send + 'a>>,
    {
        let explicit = self.in_txn || !self.autocommit();
        let txn = match (&self.txn, explicit) {
            (Some(t), true) => t.clone(),
            _ => self.begin()?,
        };
        if explicit {
            self.in_txn = true;
        }
        // Only a statement inside a transaction needs its own savepoint (a failed autocommit
        // statement rolls back everything): without one, writes keep no undo log.
        let sp = explicit.then(|| txn.savepoint());
        let r = f(self, txn.clone()).await;
        if let Some(sp) = sp {
            if r.is_err() {
                txn.rollback_to(sp);
            }
            r
        } else {
            self.txn = None;
            match r {
                Ok(out) => {
                    let committed = txn.commit();
                    self.wake_backlog(committed.is_ok());
                    committed?;
                    Ok(out)
                }
                Err(e) => {
                    txn.rollback();
                    self.queued_embeddings = false;
                    Err(e)
                }
            }
        }
    }

    pub fn warn(&mut self, code: u16, message: impl Into<String>) {
        self.warnings.push(Warning { level: "Warning", code, message: message.into() });
    }

    /// A Note (MySQL's level for "IF [NOT] EXISTS found nothing to do").
    pub fn note(&mut self, code: u16, message: impl Into<String>) {
        self.warnings.push(Warning { level: "Note", code, message: message.into() });
    }

    // ---- SET ---------------------------------------------------------------------------------

    async fn set(&mut self, set: ast::Set) -> Result<Output> {
        use ast::Set as S;
        match set {
            S::SingleAssignment { scope, variable, values, .. } => {
                let v = values.into_iter().next().ok_or_else(|| SqlError::syntax("near SET"))?;
                self.set_one(scope, &variable, v).await?;
            }
            S::MultipleAssignments { assignments } => {
                for a in assignments {
                    self.set_one(a.scope, &a.name, a.value).await?;
                }
            }
            S::ParenthesizedAssignments { variables, values } => {
                for (n, v) in variables.iter().zip(values) {
                    self.set_one(None, n, v).await?;
                }
            }
            S::SetNames { charset_name, collation_name } => self.set_names(&charset_name.value, collation_name.as_deref())?,
            S::SetNamesDefault {} => self.set_names("utf8mb4", None)?,
            S::SetTransaction { modes, .. } => {
                for m in modes {
                    if let ast::TransactionMode::IsolationLevel(l) = m {
                        let v = match l {
                            ast::TransactionIsolationLevel::ReadUncommitted => "READ-UNCOMMITTED",
                            ast::TransactionIsolationLevel::ReadCommitted => "READ-COMMITTED",
                            ast::TransactionIsolationLevel::Serializable => "SERIALIZABLE",
                            _ => "REPEATABLE-READ",
                        };
                        self.vars.insert("transaction_isolation".into(), v.into());
                        self.vars.insert("tx_isolation".into(), v.into());
                    }
                }
            }
            S::SetTimeZone { value, .. } => {
                let v = self.eval_constant(value).await?;
                self.vars.insert("time_zone".into(), v);
            }
            _ => {}
        }
        Ok(Output::ok())
    }

    async fn set_one(&mut self, scope: Option<ast::ContextModifier>, name: &ast::ObjectName, value: ast::Expr) -> Result<()> {
        let parts = name_parts(name);
        let mut global = matches!(scope, Some(ast::ContextModifier::Global));
        let mut var = parts.join(".");
        if let Some(first) = parts.first() {
            let f = first.to_ascii_lowercase();
            if f == "@@global" {
                global = true;
                var = parts[1..].join(".");
            } else if f == "@@session" || f == "@@local" {
                var = parts[1..].join(".");
            } else if let Some(rest) = first.strip_prefix("@@") {
                var = std::iter::once(rest.to_string()).chain(parts[1..].iter().cloned()).collect::<Vec<_>>().join(".");
            } else if let Some(name) = first.strip_prefix('@') {
                let v = self.eval_literal(value).await?;
                self.user_vars.insert(name.to_ascii_lowercase(), v);
                return Ok(());
            }
        }
        let var = var.trim_matches('`').to_ascii_lowercase();
        // `SET autocommit = ON` uses a bare word; treat identifiers as strings.
        if variables::is_read_only(&var) {
            return Err(SqlError::new(1238, "HY000", format!("Variable '{var}' is a read only variable")));
        }
        if global {
            self.require_global(crate::privileges::SUPER | crate::privileges::SYSTEM_VARIABLES_ADMIN)?;
        }
        let value = match value {
            ast::Expr::Identifier(id) if id.value.eq_ignore_ascii_case("default") && id.quote_style.is_none() => {
                // Session DEFAULT is the global value; GLOBAL DEFAULT the built-in one.
                if global {
                    self.engine.defaults.get(&var).cloned().unwrap_or_default()
                } else {
                    self.engine.globals.read().get(&var).cloned().unwrap_or_default()
                }
            }
            // `SET sql_mode = @saved` (every mysqldump file): the parser gives `@saved` as a name.
            ast::Expr::Identifier(id) if id.quote_style.is_none() && id.value.starts_with('@') => self.eval_constant(ast::Expr::Identifier(id)).await?,
            ast::Expr::Identifier(id) => id.value,
            ast::Expr::Value(v) if matches!(v.value, ast::Value::Boolean(_)) => {
                if v.value.to_string().eq_ignore_ascii_case("true") { "1".into() } else { "0".into() }
            }
            other => self.eval_constant(other).await?,
        };
        let value = variables::normalize(&var, &value);
        variables::validate(&var, &value)?;
        if !self.vars.contains_key(&var) {
            return Err(SqlError::unknown_system_var(&var));
        }
        if variables::is_global_only(&var) && !global {
            return Err(SqlError::new(1229, "HY000", format!("Variable '{var}' is a GLOBAL variable and should be set with SET GLOBAL")));
        }
        if global {
            // A cluster reader ran the statement on the writer first, which stored the value.
            if self.engine.cluster.as_ref().is_none_or(|c| c.is_writer()) {
                let txn = self.engine.store.begin()?;
                let stored = if variables::is_secret(&var) { self.engine.secrets.seal(&var, &value) } else { value.as_bytes().to_vec() };
                Catalog::new(&txn).set_global_var(&var, &stored);
                txn.commit()?;
            }
            self.engine.globals.write().insert(var.clone(), value.clone());
            // Secrets and server-wide settings apply to every session at once.
            if variables::is_global_only(&var) {
                self.vars.insert(var, value);
            }
            return Ok(());
        }
        if var == "autocommit" && value == "1" && !self.autocommit() {
            // Turning autocommit on commits the open transaction.
            self.commit_open()?;
        }
        mirror_into_context(&self.ctx, &var, &value);
        self.vars.insert(var, value);
        Ok(())
    }

    /// Evaluate a constant expression (SET values) through DataFusion.
    async fn eval_constant(&mut self, e: ast::Expr) -> Result<String> {
        if let ast::Expr::Value(v) = &e {
            match &v.value {
                ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => return Ok(s.clone()),
                ast::Value::Number(n, _) => return Ok(n.clone()),
                ast::Value::Null => return Ok(String::new()),
                _ => {}
            }
        }
        Ok(match self.eval_scalar(e).await? {
            Some(v) if !v.is_null() => scalar_text(&v),
            _ => String::new(),
        })
    }

    /// Evaluate a constant expression with `SELECT expr`; None when it gives no row.
    async fn eval_scalar(&mut self, e: ast::Expr) -> Result<Option<datafusion::common::ScalarValue>> {
        let stmt = parser::parse_one(&format!("SELECT {e}"))?;
        let out = self.in_statement(|s, txn| Box::pin(s.query(stmt, txn))).await?;
        if let Output::Rows { batches, .. } = out {
            if let Some(b) = batches.iter().find(|b| b.num_rows() > 0) {
                return Ok(Some(crate::sql::types::scalar_at(b.column(0), 0)?));
            }
        }
        Ok(None)
    }

    /// SET NAMES / SET CHARACTER SET: the connection's character set variables. Text is always
    /// exchanged as UTF-8; the variables say what the client asked for.
    pub fn set_names(&mut self, charset: &str, collation: Option<&str>) -> Result<()> {
        let cs = charset.trim_matches(['\'', '"', '`']).to_ascii_lowercase();
        const KNOWN: &[&str] = &["utf8mb4", "utf8", "utf8mb3", "latin1", "ascii", "binary", "gbk", "gb18030"];
        if !KNOWN.contains(&cs.as_str()) {
            return Err(SqlError::new(1115, "42000", format!("Unknown character set: '{cs}'")));
        }
        for v in ["character_set_client", "character_set_connection", "character_set_results"] {
            self.vars.insert(v.into(), cs.clone());
        }
        let coll = match collation {
            Some(c) => c.trim_matches(['\'', '"', '`']).to_ascii_lowercase(),
            None if cs == "utf8mb4" => "utf8mb4_bin".into(),
            None if cs == "binary" => "binary".into(),
            None => format!("{cs}_bin"),
        };
        self.vars.insert("collation_connection".into(), coll);
        Ok(())
    }

    /// Evaluate an expression to a literal (for `SET @u = expr`).
    async fn eval_literal(&mut self, e: ast::Expr) -> Result<ast::Expr> {
        if let ast::Expr::Value(_) = &e {
            return Ok(e);
        }
        Ok(match self.eval_scalar(e).await? {
            Some(v) if !v.is_null() && v.data_type().is_numeric() => ast::Expr::value(ast::Value::Number(scalar_text(&v), false)),
            Some(v) if !v.is_null() => ast::Expr::value(ast::Value::SingleQuotedString(scalar_text(&v))),
            _ => ast::Expr::value(ast::Value::Null),
        })
    }

    /// A system variable as a client reads it (secrets masked).
    pub fn read_var(&self, name: &str, global: Option<bool>) -> Result<String> {
        let n = name.trim_matches('`').to_ascii_lowercase();
        if global == Some(false) && variables::is_global_only(&n) {
            return Err(SqlError::new(1238, "HY000", format!("Variable '{n}' is a GLOBAL variable")));
        }
        let v = if global == Some(true) || variables::is_global_only(&n) {
            self.engine.globals.read().get(&n).cloned()
        } else {
            self.vars.get(&n).cloned().or_else(|| self.engine.globals.read().get(&n).cloned())
        };
        match v {
            Some(v) => Ok(variables::display_value(&n, &v)),
            None => Err(SqlError::unknown_system_var(&n)),
        }
    }

    /// A secret's real value, for the code that needs it (embedding providers). Never shown.
    pub fn secret_var(&self, name: &str) -> Option<String> {
        self.engine.globals.read().get(&name.to_ascii_lowercase()).cloned().filter(|v| !v.is_empty())
    }
}

/// The session variables that plans read at run time live in the DataFusion context as well:
/// the HNSW beam width and `cte_max_recursion_depth`.
fn mirror_into_context(ctx: &SessionContext, var: &str, value: &str) {
    if var == crate::index::search::ann::EF_SEARCH_VAR {
        crate::index::search::ann::set_ef_search(ctx, value);
    } else if var == crate::sql::recursion_limit::DEPTH_VAR {
        crate::sql::recursion_limit::set_depth(ctx, value);
    }
}

/// A DataFusion context with MySQL's implicit conversions (`sql::coerce`) ahead of DataFusion's
/// own type coercion, and our functions registered.
/// `embed` registers `EMBED_TEXT`, stopped by the given connection's interrupt.
/// The `EMBED_TEXT` function's link to its connection: the embedder, the KILL signal, the notes.
pub type EmbedLink = (Arc<crate::embed::Embedder>, Arc<crate::interrupt::Interrupt>, Arc<crate::embed::Notes>);

pub fn new_context(cfg: SessionConfig, embed: Option<EmbedLink>) -> SessionContext {
    let mut rules = datafusion::optimizer::Analyzer::new().rules;
    rules.insert(0, Arc::new(crate::sql::coerce::MysqlCoercion));
    // Top-k vector searches use the HNSW index (`index::search::ann`); its warnings live in `cfg`.
    let (cfg, ann_rule) = crate::index::search::ann::rule(cfg);
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(cfg)
        .with_default_features()
        .with_analyzer_rules(rules)
        .with_optimizer_rule(ann_rule)
        .with_physical_optimizer_rule(Arc::new(crate::sql::recursion_limit::RecursionLimit))
        .with_physical_optimizer_rule(Arc::new(crate::storage::order::IndexOrder))
        .build();
    let ctx = SessionContext::new_with_state(state);
    for f in functions::all_udfs() {
        ctx.register_udf(f);
    }
    ctx.register_udwf(embedb_vector::mmr::mmr_rank_udwf());
    if let Some((e, i, n)) = embed {
        ctx.register_udaf(crate::embed::estimate::embedding_estimate_udaf(e.clone()));
        ctx.register_udf(crate::embed::udf::rerank_score_udf(e.clone(), i.clone()));
        ctx.register_udf(crate::embed::udf::best_chunk_udf(e.clone()));
        ctx.register_udf(crate::embed::udf::embed_text_udf(e, i, n));
    }
    ctx
}

pub fn scalar_text(v: &datafusion::common::ScalarValue) -> String {
    use datafusion::common::ScalarValue as S;
    match v {
        S::Utf8(Some(s)) | S::LargeUtf8(Some(s)) | S::Utf8View(Some(s)) => s.clone(),
        S::Boolean(Some(b)) => (if *b { "1" } else { "0" }).into(),
        other => other.to_string(),
    }
}

pub fn ident_name(n: &ast::ObjectName) -> String {
    n.0.iter()
        .map(|p| match p {
            ast::ObjectNamePart::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}


/// A session on a fresh in-memory store, in database `test`.
#[cfg(test)]
pub(crate) fn test_session() -> Session {
    let engine = Engine::with_store(crate::config::Config::default(), embedb_storage::Store::in_memory()).unwrap();
    let mut s = Session::new(engine, 1, "root");
    s.use_db("test").unwrap();
    s
}

/// A dotted name's parts, unquoted.
fn name_parts(name: &ast::ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ast::ObjectNamePart::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        })
        .collect()
}
