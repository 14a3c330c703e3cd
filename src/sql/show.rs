//! `SHOW …` and `DESCRIBE`: answered from the catalog and session state as small tables with
//! MySQL's column names. A `LIKE 'pattern'` filters the first column; a `WHERE expr` runs through
//! DataFusion over the materialised table (so `SHOW INDEXES FROM t WHERE Index_type = 'HNSW'` works
//! with any expression).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use embedb_storage::Txn;

use crate::error::{Result, SqlError};
use crate::session::{Output, Session};
use crate::sql::catalog::{Catalog, IndexKind, TableInfo};
use crate::sql::infoschema::{collations, column_key};
use crate::sql::variables;

/// Field metadata holding the column header to show when it differs from the (lower-case) name
/// DataFusion plans with.
pub const NAME_META: &str = "embedb.name";

/// A result column's name as the client sees it: the header a SHOW or the statement's text gave
/// it, else DataFusion's name for it made readable.
pub fn column_name(f: &datafusion::arrow::datatypes::Field) -> String {
    f.metadata().get(NAME_META).cloned().unwrap_or_else(|| crate::sql::rewrite::display_name(f.name()).to_string())
}

/// A small result table: headers and rows of text/integers.
pub struct ShowTable {
    pub headers: Vec<(&'static str, DataType)>,
    pub dynamic_first: Option<String>,
    pub rows: Vec<Vec<ScalarValue>>,
}

fn s(v: impl Into<String>) -> ScalarValue {
    ScalarValue::Utf8(Some(v.into()))
}
fn i(v: i64) -> ScalarValue {
    ScalarValue::Int64(Some(v))
}
fn null() -> ScalarValue {
    ScalarValue::Utf8(None)
}

/// Whitespace-separated tokens of a SHOW statement or a TiDB-only DDL form, quoted parts kept
/// verbatim (they may hold whitespace). A quoted part is glued to whatever touches it, so a
/// qualified name is one token however it is quoted: `` `db`.`t` ``, `` `db`.t ``, `db.t`.
fn tokens(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b: Vec<char> = sql.trim().trim_end_matches(';').chars().collect();
    let mut k = 0;
    while k < b.len() {
        if b[k].is_whitespace() {
            k += 1;
            continue;
        }
        let mut t = String::new();
        while k < b.len() && !b[k].is_whitespace() {
            let c = b[k];
            t.push(c);
            k += 1;
            if c == '\'' || c == '"' || c == '`' {
                while k < b.len() && b[k] != c {
                    // Escapes stay in the token (`unquote` reads them), so `\'` does not end it.
                    if b[k] == '\\' && k + 1 < b.len() {
                        t.push(b[k]);
                        k += 1;
                    }
                    t.push(b[k]);
                    k += 1;
                }
                if k < b.len() {
                    t.push(c);
                    k += 1;
                }
            }
        }
        out.push(t);
    }
    out
}

/// `COMMENT = 'x' ENGINE InnoDB, DEFAULT CHARSET = utf8mb4 …`: the table options of an ALTER
/// TABLE that has nothing else, as (lower-case key, unquoted value); None when anything else is there.
fn table_options(toks: &[String]) -> Option<Vec<(String, String)>> {
    // Split `key=value` glued tokens at the first `=` outside quotes, and drop commas.
    let mut words: Vec<String> = Vec::new();
    for t in toks {
        let t = t.trim_end_matches(',');
        match t.find('=') {
            Some(p) if !t[..p].contains(['\'', '"', '`']) => {
                for w in [&t[..p], "=", &t[p + 1..]] {
                    if !w.is_empty() {
                        words.push(w.to_string());
                    }
                }
            }
            _ if !t.is_empty() => words.push(t.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i].to_ascii_lowercase();
        let (key, width) = match w.as_str() {
            "default" => match words.get(i + 1).map(|x| x.to_ascii_lowercase()).as_deref() {
                Some("charset") | Some("collate") => (words[i + 1].to_ascii_lowercase(), 2),
                Some("character") => ("charset".into(), 3),
                _ => return None,
            },
            "character" => ("charset".into(), 2),
            "convert" => {
                // CONVERT TO CHARACTER SET x [COLLATE y]
                if words.get(i + 1)?.eq_ignore_ascii_case("to") {
                    ("charset".into(), 4)
                } else {
                    return None;
                }
            }
            "comment" | "engine" | "charset" | "collate" | "row_format" | "auto_increment" | "key_block_size"
            | "stats_persistent" | "pack_keys" | "checksum" => (w.clone(), 1),
            _ => return None,
        };
        i += width;
        if words.get(i).is_some_and(|x| x == "=") {
            i += 1;
        }
        let v = words.get(i)?;
        out.push((key, unquote(v)));
        i += 1;
    }
    (!out.is_empty()).then_some(out)
}

/// The inside of a single-quoted SQL string as MySQL's SHOW CREATE writes it: quotes doubled,
/// line breaks and backslashes escaped, so the statement stays on its lines and reads back equal.
fn sql_string_body(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out
}

fn unquote(t: &str) -> String {
    let t = t.trim();
    if t.len() >= 2 && t.starts_with('`') {
        return t[1..t.len() - 1].to_string();
    }
    if !(t.len() >= 2 && (t.starts_with('\'') || t.starts_with('"'))) {
        return t.to_string();
    }
    // A string literal: MySQL's escapes (`\%` and `\_` keep their backslash, for LIKE).
    let mut out = String::new();
    let mut chars = t[1..t.len() - 1].chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('Z') => out.push('\u{1a}'),
            Some(x @ ('%' | '_')) => {
                out.push('\\');
                out.push(x);
            }
            Some(x) => out.push(x),
            None => out.push('\\'),
        }
    }
    out
}

/// `db.t`, `` `db`.`t` `` or `t`.
fn split_name(t: &str) -> (Option<String>, String) {
    let parts: Vec<String> = t.split('.').map(unquote).collect();
    if parts.len() == 2 {
        (Some(parts[0].clone()), parts[1].clone())
    } else {
        (None, unquote(t))
    }
}

/// MySQL LIKE: `%` any run, `_` one char, `\` escapes; case-insensitive as for names.
pub fn like(pattern: &str, s: &str) -> bool {
    fn m(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('%') => (0..=s.len()).any(|k| m(&p[1..], &s[k..])),
            Some('_') => !s.is_empty() && m(&p[1..], &s[1..]),
            Some('\\') if p.len() > 1 => !s.is_empty() && s[0] == p[1] && m(&p[2..], &s[1..]),
            Some(c) => !s.is_empty() && s[0] == *c && m(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let v: Vec<char> = s.to_lowercase().chars().collect();
    m(&p, &v)
}

impl Session {
    /// Statements answered without sqlparser: SHOW, and TiDB-only DDL forms.
    pub async fn run_special(&mut self, sql: &str, lower: &str) -> Result<Option<Output>> {
        if lower.starts_with("show") && lower[4..].starts_with(char::is_whitespace) {
            return self.show(sql).await.map(Some);
        }
        // DO expr [, expr …]: the expressions are evaluated (for their effects: SLEEP,
        // GET_LOCK, a user variable) and the rows thrown away.
        if lower.starts_with("do") && lower[2..].starts_with(char::is_whitespace) {
            let select = format!("SELECT {}", &sql.trim_start()[2..]);
            Box::pin(self.run_inner(&select)).await?;
            return Ok(Some(Output::ok()));
        }
        let toks: Vec<String> = tokens(lower);
        if toks.first().map(String::as_str) == Some("admin") {
            if let Some(out) = self.admin_statement(&toks).await? {
                return Ok(Some(out));
            }
        }
        if toks.first().map(String::as_str) == Some("backup") {
            return self.backup_statement(sql, &toks).await.map(Some);
        }
        if let Some(out) = self.vector_index_ddl(sql, &toks).await? {
            return Ok(Some(out));
        }
        // SET CHARACTER SET x / SET CHARSET x (sqlparser does not know them).
        if toks.len() >= 3 && toks[0] == "set" && (toks[1] == "charset" || (toks[1] == "character" && toks.get(2).map(String::as_str) == Some("set"))) {
            let cs = if toks[1] == "charset" { &toks[2] } else { toks.get(3).ok_or_else(|| SqlError::syntax("near 'SET CHARACTER SET'"))? };
            let cs = if cs == "default" { "utf8mb4".to_string() } else { cs.clone() };
            self.set_names(&cs, None)?;
            return Ok(Some(Output::ok()));
        }
        // ALTER TABLE t COMMENT = '…' / ENGINE = … / [DEFAULT] CHARSET … (table options only;
        // sqlparser does not know them after ALTER TABLE).
        if toks.len() >= 4 && toks[0] == "alter" && toks[1] == "table" {
            if let Some(opts) = table_options(&tokens(sql)[3..]) {
                let store = self.engine.store.clone();
                self.alter_table_entry(&tokens(sql)[2], |info| {
                    for (k, v) in opts {
                        match k.as_str() {
                            "comment" => info.comment = v,
                            "auto_increment" => {
                                let n: u64 = v.parse().map_err(|_| SqlError::syntax(format!("near 'AUTO_INCREMENT = {v}'")))?;
                                store.counter_rebase(&info.id_counter(), n.saturating_sub(1))?;
                            }
                            // One engine, one character set (utf8mb4): accepted as TiDB accepts them.
                            _ => {}
                        }
                    }
                    Ok(())
                })
                .await?;
                return Ok(Some(Output::ok()));
            }
        }
        // ALTER TABLE t RENAME {INDEX|KEY} a TO b (sqlparser's MySQL dialect does not parse it).
        if toks.len() == 8 && toks[0] == "alter" && toks[1] == "table" && toks[3] == "rename" && (toks[4] == "index" || toks[4] == "key") && toks[6] == "to" {
            let raw = tokens(sql);
            let (from, to) = (unquote(&raw[5]), unquote(&raw[7]));
            self.alter_table_entry(&raw[2], |info| {
                if !from.eq_ignore_ascii_case(&to) && info.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(&to)) {
                    return Err(SqlError::new(1061, "42000", format!("Duplicate key name '{to}'")));
                }
                let Some(ix) = info.indexes.iter_mut().find(|i| i.name.eq_ignore_ascii_case(&from) && !i.primary) else {
                    return Err(SqlError::new(1176, "42000", format!("Key '{from}' doesn't exist in table '{}'", info.name)));
                };
                ix.name = to.clone();
                Ok(())
            })
            .await?;
            return Ok(Some(Output::ok()));
        }
        // ALTER TABLE t {DISABLE|ENABLE} KEYS (every mysqldump file) and ALTER TABLE t COMPACT
        // [TIFLASH REPLICA]: accepted for an existing table and change nothing, as in TiDB —
        // indexes here are always maintained, and there is no columnar replica to compact.
        let keys = toks.len() == 5 && (toks[3] == "disable" || toks[3] == "enable") && toks[4] == "keys";
        let compact = toks.len() >= 4 && toks[3] == "compact" && (toks.len() == 4 || toks[4..] == ["tiflash", "replica"]);
        if toks.len() >= 4 && toks[0] == "alter" && toks[1] == "table" && (keys || compact) {
            self.alter_table_entry(&tokens(sql)[2], |_| Ok(())).await?;
            return Ok(Some(Output::ok()));
        }
        // ALTER TABLE t SET TIFLASH REPLICA n: TiDB needs it for vector indexes; we record it.
        if toks.len() >= 7 && toks[0] == "alter" && toks[1] == "table" && toks[3] == "set" && toks[4] == "tiflash" && toks[5] == "replica" {
            let n: u64 = toks[6].parse().map_err(|_| SqlError::syntax(format!("near '{}'", toks[6])))?;
            self.alter_table_entry(&tokens(sql)[2], |info| {
                info.tiflash_replica = n;
                Ok(())
            })
            .await?;
            return Ok(Some(Output::ok()));
        }
        Ok(None)
    }

    /// A catalog-only change of table `name` (a token, maybe `db.t`), as DDL: under the DDL lock,
    /// after committing the open transaction, in a transaction of its own.
    async fn alter_table_entry(&mut self, name: &str, change: impl FnOnce(&mut TableInfo) -> Result<()>) -> Result<()> {
        self.alter_table_entry_as(name, crate::privileges::ALTER, change).await
    }

    /// [`Self::alter_table_entry`] for a session holding `privs` on the table.
    async fn alter_table_entry_as(&mut self, name: &str, privs: crate::privileges::Privs, change: impl FnOnce(&mut TableInfo) -> Result<()>) -> Result<()> {
        let (db, t) = split_name(name);
        let db = match db {
            Some(d) => d,
            None => self.current_db()?,
        };
        self.require(crate::privileges::Need::Table { db: db.clone(), table: t.clone(), privs })?;
        let engine = self.engine.clone();
        let _g = engine.ddl_lock.lock().await;
        self.commit_open()?;
        let txn = self.engine.store.begin()?;
        let cat = Catalog::new(&txn);
        let mut info = cat.must_table(&db, &t)?;
        change(&mut info)?;
        cat.put_table(&info)?;
        txn.commit()?;
        self.plan_cache.clear();
        Ok(())
    }

    async fn show(&mut self, sql: &str) -> Result<Output> {
        let toks = tokens(sql);
        let up: Vec<String> = toks.iter().map(|t| t.to_ascii_uppercase()).collect();
        let mut k = 1;
        let mut full = false;
        let mut scope_global = false;
        while k < up.len() && matches!(up[k].as_str(), "FULL" | "GLOBAL" | "SESSION" | "LOCAL" | "EXTENDED") {
            full |= up[k] == "FULL";
            scope_global |= up[k] == "GLOBAL";
            k += 1;
        }
        let what = up.get(k).cloned().unwrap_or_default();
        k += 1;
        // Find FROM/IN targets and the LIKE / WHERE tail.
        let mut from: Vec<String> = Vec::new();
        let mut like_pat: Option<String> = None;
        let mut where_expr: Option<String> = None;
        let mut j = k;
        while j < toks.len() {
            match up[j].as_str() {
                "FROM" | "IN" if j + 1 < toks.len() => {
                    from.push(toks[j + 1].clone());
                    j += 2;
                }
                "LIKE" if j + 1 < toks.len() => {
                    like_pat = Some(unquote(&toks[j + 1]));
                    j += 2;
                }
                "WHERE" => {
                    // Everything after WHERE, from the original text.
                    let pos = find_keyword(sql, "where").unwrap_or(sql.len());
                    where_expr = Some(sql[pos + 5..].trim().trim_end_matches(';').to_string());
                    break;
                }
                _ => j += 1,
            }
        }
        let txn = Arc::new(self.engine.store.begin()?);
        let table = match what.as_str() {
            "VARIABLES" => self.show_variables(scope_global),
            "STATUS" => {
                // One server-wide set: SESSION and GLOBAL show the same counters.
                let open = self.engine.open_connections.load(std::sync::atomic::Ordering::SeqCst) as u64;
                ShowTable {
                    headers: vec![("Variable_name", DataType::Utf8), ("Value", DataType::Utf8)],
                    dynamic_first: None,
                    rows: self.engine.status(open).into_iter().map(|(k, v)| vec![s(k), s(v)]).collect(),
                }
            }
            "DATABASES" | "SCHEMAS" => {
                let mut rows = vec![vec![s("INFORMATION_SCHEMA")]];
                if self.sees_db("mysql") {
                    rows.push(vec![s("mysql")]);
                }
                rows.push(vec![s("performance_schema")]);
                for d in Catalog::new(&txn).databases()? {
                    if self.sees_db(&d.name) {
                        rows.push(vec![s(d.name)]);
                    }
                }
                ShowTable { headers: vec![("Database", DataType::Utf8)], dynamic_first: None, rows }
            }
            "TABLES" => {
                let db = match from.first() {
                    Some(d) => unquote(d),
                    None => self.current_db()?,
                };
                self.require(crate::privileges::Need::AnyInDb { db: db.clone() })?;
                let cat = Catalog::new(&txn);
                if cat.database(&db)?.is_none() {
                    return Err(SqlError::unknown_db(&db));
                }
                let mut named: Vec<(String, &str)> = cat.tables(&db)?.into_iter().map(|t| (t.name, "BASE TABLE")).collect();
                named.extend(cat.views(&db)?.into_iter().map(|v| (v.name, "VIEW")));
                if db.eq_ignore_ascii_case("performance_schema") {
                    named.extend(crate::sql::perf_schema::TABLES.iter().map(|t| (t.to_string(), "BASE TABLE")));
                }
                named.retain(|(n, _)| !crate::session::temporary::is_hidden(n) && self.sees_table(&db, n));
                named.sort_by_key(|(n, _)| n.to_lowercase());
                let rows = named.into_iter().map(|(n, kind)| if full { vec![s(n), s(kind)] } else { vec![s(n)] }).collect();
                let mut headers = vec![("Tables_in_", DataType::Utf8)];
                if full {
                    headers.push(("Table_type", DataType::Utf8));
                }
                ShowTable { headers, dynamic_first: Some(format!("Tables_in_{db}")), rows }
            }
            "COLUMNS" | "FIELDS" => {
                let (db, t) = self.show_target(&from)?;
                self.require_sees_table("SELECT", &db, &t)?;
                let info = table_or_view(&Catalog::new(&txn), &db, &t)?;
                columns_table(&info, full)
            }
            "INDEX" | "INDEXES" | "KEYS" => {
                let (db, t) = self.show_target(&from)?;
                self.require_sees_table("SELECT", &db, &t)?;
                let info = Catalog::new(&txn).must_table(&db, &t)?;
                index_table(&info)
            }
            "CREATE" => {
                let kind = up.get(k - 1 + 1).cloned().unwrap_or_default();
                let name = toks.get(k + 1).cloned().ok_or_else(|| SqlError::syntax("near SHOW CREATE"))?;
                match kind.as_str() {
                    "TABLE" | "VIEW" => {
                        let (db, t) = split_name(&name);
                        let db = match db {
                            Some(d) => d,
                            None => self.current_db()?,
                        };
                        self.require_sees_table("SHOW", &db, &t)?;
                        // SHOW CREATE TABLE of a view answers as SHOW CREATE VIEW does (MySQL).
                        if let Some(v) = Catalog::new(&txn).view(&db, &t)? {
                            return finish(view_create_table(&v), None, None, self).await;
                        }
                        if kind == "VIEW" {
                            return Err(match Catalog::new(&txn).table(&db, &t)? {
                                Some(_) => crate::sql::view::not_view(&db, &t),
                                None => SqlError::no_such_table(&db, &t),
                            });
                        }
                        let info = Catalog::new(&txn).must_table(&db, &t)?;
                        ShowTable {
                            headers: vec![("Table", DataType::Utf8), ("Create Table", DataType::Utf8)],
                            dynamic_first: None,
                            rows: vec![vec![s(&info.name), s(show_create_table(&info))]],
                        }
                    }
                    "DATABASE" | "SCHEMA" => {
                        let mut n = name.clone();
                        if n.eq_ignore_ascii_case("if") {
                            n = toks.get(k + 4).cloned().unwrap_or_default();
                        }
                        let db = unquote(&n);
                        self.require(crate::privileges::Need::AnyInDb { db: db.clone() })?;
                        let info = Catalog::new(&txn).database(&db)?.ok_or_else(|| SqlError::unknown_db(&db))?;
                        ShowTable {
                            headers: vec![("Database", DataType::Utf8), ("Create Database", DataType::Utf8)],
                            dynamic_first: None,
                            rows: vec![vec![
                                s(&info.name),
                                s(format!(
                                    "CREATE DATABASE `{}` /*!40100 DEFAULT CHARACTER SET {} COLLATE {} */",
                                    info.name,
                                    crate::sql::collation::charset_of(info.collation()),
                                    info.collation()
                                )),
                            ]],
                        }
                    }
                    other => return Err(SqlError::unsupported(format!("SHOW CREATE {other}"))),
                }
            }
            "WARNINGS" | "ERRORS" => ShowTable {
                headers: vec![("Level", DataType::Utf8), ("Code", DataType::Int64), ("Message", DataType::Utf8)],
                dynamic_first: None,
                rows: self.warnings.iter().map(|w| vec![s(w.level), i(w.code as i64), s(&w.message)]).collect(),
            },
            "COUNT(*)" => ShowTable {
                headers: vec![("@@session.warning_count", DataType::Int64)],
                dynamic_first: None,
                rows: vec![vec![i(self.warnings.len() as i64)]],
            },
            "ENGINES" => ShowTable {
                headers: vec![
                    ("Engine", DataType::Utf8),
                    ("Support", DataType::Utf8),
                    ("Comment", DataType::Utf8),
                    ("Transactions", DataType::Utf8),
                    ("XA", DataType::Utf8),
                    ("Savepoints", DataType::Utf8),
                ],
                dynamic_first: None,
                rows: vec![vec![s("InnoDB"), s("DEFAULT"), s("embedb: transactional KV (redb)"), s("YES"), s("NO"), s("YES")]],
            },
            "COLLATION" => ShowTable {
                headers: vec![
                    ("Collation", DataType::Utf8),
                    ("Charset", DataType::Utf8),
                    ("Id", DataType::Int64),
                    ("Default", DataType::Utf8),
                    ("Compiled", DataType::Utf8),
                    ("Sortlen", DataType::Int64),
                ],
                dynamic_first: None,
                rows: collations().into_iter().map(|(n, cs, id, d)| vec![s(n), s(cs), i(id), s(d), s("Yes"), i(1)]).collect(),
            },
            "CHARSET" | "CHARACTER" => ShowTable {
                headers: vec![
                    ("Charset", DataType::Utf8),
                    ("Description", DataType::Utf8),
                    ("Default collation", DataType::Utf8),
                    ("Maxlen", DataType::Int64),
                ],
                dynamic_first: None,
                rows: vec![
                    vec![s("utf8mb4"), s("UTF-8 Unicode"), s("utf8mb4_bin"), i(4)],
                    vec![s("utf8"), s("UTF-8 Unicode"), s("utf8_bin"), i(3)],
                    vec![s("binary"), s("binary"), s("binary"), i(1)],
                ],
            },
            "PROCESSLIST" => ShowTable {
                headers: vec![
                    ("Id", DataType::Int64),
                    ("User", DataType::Utf8),
                    ("Host", DataType::Utf8),
                    ("db", DataType::Utf8),
                    ("Command", DataType::Utf8),
                    ("Time", DataType::Int64),
                    ("State", DataType::Utf8),
                    ("Info", DataType::Utf8),
                ],
                dynamic_first: None,
                // Without FULL a statement shows its first 100 characters; without PROCESS, only
                // the session's own user's connections.
                rows: {
                    let only = self.process_filter();
                    let mut rows = crate::sql::infoschema::process_rows(&self.engine.stats, if full { None } else { Some(100) });
                    if let Some(user) = only {
                        rows.retain(|r| r[1] == s(&user));
                    }
                    rows
                },
            },
            "TABLE" => {
                let db = match from.first() {
                    Some(d) => unquote(d),
                    None => self.current_db()?,
                };
                self.require(crate::privileges::Need::AnyInDb { db: db.clone() })?;
                let cat = Catalog::new(&txn);
                let int = |n: Option<u64>| ScalarValue::Int64(n.map(|n| n as i64));
                let mut rows = Vec::new();
                for t in cat.tables(&db)? {
                    if crate::session::temporary::is_hidden(&t.name) || !self.sees_table(&db, &t.name) {
                        continue;
                    }
                    let z = crate::storage::table::table_sizes(&txn, &t)?;
                    rows.push(vec![
                        s(&t.name),
                        s("InnoDB"),
                        i(10),
                        s("Compact"),
                        int(Some(z.rows)),
                        int(Some(z.avg_row_length)),
                        int(Some(z.data_length)),
                        int(Some(0)),
                        int(Some(z.index_length)),
                        int(Some(0)),
                        int(z.auto_increment),
                        s(&t.create_time),
                        ScalarValue::Utf8(None),
                        ScalarValue::Utf8(None),
                        s(t.collation()),
                        ScalarValue::Int64(None),
                        s(""),
                        s(&t.comment),
                    ]);
                }
                for v in cat.views(&db)? {
                    if !self.sees_table(&db, &v.name) {
                        continue;
                    }
                    let mut r = vec![s(&v.name), ScalarValue::Utf8(None), ScalarValue::Int64(None), ScalarValue::Utf8(None)];
                    r.extend((0..7).map(|_| ScalarValue::Int64(None)));
                    r.extend([s(&v.create_time), ScalarValue::Utf8(None), ScalarValue::Utf8(None), ScalarValue::Utf8(None)]);
                    r.extend([ScalarValue::Int64(None), ScalarValue::Utf8(None), s("VIEW")]);
                    rows.push(r);
                }
                rows.sort_by_key(|r| match &r[0] {
                    ScalarValue::Utf8(Some(n)) => n.to_lowercase(),
                    _ => String::new(),
                });
                ShowTable {
                    headers: vec![
                        ("Name", DataType::Utf8),
                        ("Engine", DataType::Utf8),
                        ("Version", DataType::Int64),
                        ("Row_format", DataType::Utf8),
                        ("Rows", DataType::Int64),
                        ("Avg_row_length", DataType::Int64),
                        ("Data_length", DataType::Int64),
                        ("Max_data_length", DataType::Int64),
                        ("Index_length", DataType::Int64),
                        ("Data_free", DataType::Int64),
                        ("Auto_increment", DataType::Int64),
                        ("Create_time", DataType::Utf8),
                        ("Update_time", DataType::Utf8),
                        ("Check_time", DataType::Utf8),
                        ("Collation", DataType::Utf8),
                        ("Checksum", DataType::Int64),
                        ("Create_options", DataType::Utf8),
                        ("Comment", DataType::Utf8),
                    ],
                    dynamic_first: None,
                    rows,
                }
            }
            // SHOW PROCEDURE STATUS / SHOW FUNCTION STATUS (mysqldump, GUI tools): no stored
            // routines here, MySQL's columns.
            "PROCEDURE" | "FUNCTION" => ShowTable {
                headers: [
                    "Db", "Name", "Type", "Definer", "Modified", "Created", "Security_type", "Comment",
                    "character_set_client", "collation_connection", "Database Collation",
                ]
                .into_iter()
                .map(|h| (h, DataType::Utf8))
                .collect(),
                dynamic_first: None,
                rows: vec![],
            },
            "MASTER" | "SLAVE" | "REPLICA" | "BINARY" | "PLUGINS" | "TRIGGERS" | "EVENTS" | "PROFILES" | "PRIVILEGES" | "OPEN" => {
                ShowTable { headers: vec![("Value", DataType::Utf8)], dynamic_first: None, rows: vec![] }
            }
            other => return Err(SqlError::syntax(format!("near 'SHOW {other}'"))),
        };
        txn.rollback();
        finish(table, like_pat, where_expr, self).await
    }

    fn show_target(&self, from: &[String]) -> Result<(String, String)> {
        let first = from.first().ok_or_else(|| SqlError::syntax("near SHOW: expected FROM <table>"))?;
        let (db, t) = split_name(first);
        let db = match (from.get(1), db) {
            (Some(d), _) => unquote(d),
            (None, Some(d)) => d,
            (None, None) => self.current_db()?,
        };
        Ok((db, t))
    }

    fn show_variables(&self, global: bool) -> ShowTable {
        ShowTable {
            headers: vec![("Variable_name", DataType::Utf8), ("Value", DataType::Utf8)],
            dynamic_first: None,
            rows: self.variable_rows(global).into_iter().map(|(k, v)| vec![s(k), s(v)]).collect(),
        }
    }

    /// What `performance_schema` shows of this session and the server.
    pub(crate) fn perf_data(&self) -> crate::sql::perf_schema::PerfData {
        let open = self.engine.open_connections.load(std::sync::atomic::Ordering::SeqCst) as u64;
        crate::sql::perf_schema::PerfData {
            session_variables: self.variable_rows(false),
            global_variables: self.variable_rows(true),
            status: self.engine.status(open),
        }
    }

    /// Variables and their shown values, by name: the session's over the globals (or the globals).
    fn variable_rows(&self, global: bool) -> Vec<(String, String)> {
        let globals = self.engine.globals.read().clone();
        let vars = if global { globals } else {
            let mut m = globals;
            for (k, v) in &self.vars {
                if !variables::is_global_only(k) {
                    m.insert(k.clone(), v.clone());
                }
            }
            m
        };
        vars.iter().map(|(k, v)| (k.clone(), variables::display_value(k, v).to_string())).collect()
    }

    /// DESCRIBE t / SHOW COLUMNS FROM t.
    pub async fn describe(&mut self, db: &str, table: &str, txn: Arc<Txn>, like_pat: Option<String>) -> Result<Output> {
        let info = table_or_view(&Catalog::new(&txn), db, table)?;
        finish(columns_table(&info, false), like_pat, None, self).await
    }
}

/// A table, or a view's columns as a table (DESCRIBE and SHOW COLUMNS read both).
fn table_or_view(cat: &Catalog, db: &str, name: &str) -> Result<TableInfo> {
    match cat.view(db, name)? {
        Some(v) => Ok(v.as_table()),
        None => cat.must_table(db, name),
    }
}

/// SHOW CREATE VIEW's one row.
fn view_create_table(v: &crate::sql::view::ViewInfo) -> ShowTable {
    ShowTable {
        headers: vec![
            ("View", DataType::Utf8),
            ("Create View", DataType::Utf8),
            ("character_set_client", DataType::Utf8),
            ("collation_connection", DataType::Utf8),
        ],
        dynamic_first: None,
        rows: vec![vec![s(&v.name), s(v.create_statement()), s("utf8mb4"), s("utf8mb4_general_ci")]],
    }
}

fn find_keyword(sql: &str, kw: &str) -> Option<usize> {
    let lower = sql.to_ascii_lowercase();
    let mut start = 0;
    while let Some(p) = lower[start..].find(kw) {
        let at = start + p;
        let before_ok = at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric();
        let after = at + kw.len();
        let after_ok = after >= lower.len() || !lower.as_bytes()[after].is_ascii_alphanumeric();
        if before_ok && after_ok {
            return Some(at);
        }
        start = at + kw.len();
    }
    None
}

fn columns_table(info: &TableInfo, full: bool) -> ShowTable {
    let mut headers = vec![("Field", DataType::Utf8), ("Type", DataType::Utf8)];
    if full {
        headers.push(("Collation", DataType::Utf8));
    }
    headers.extend([
        ("Null", DataType::Utf8),
        ("Key", DataType::Utf8),
        ("Default", DataType::Utf8),
        ("Extra", DataType::Utf8),
    ]);
    if full {
        headers.push(("Privileges", DataType::Utf8));
        headers.push(("Comment", DataType::Utf8));
    }
    let rows = info
        .columns
        .iter()
        .map(|c| {
            let extra = column_extra(c);
            let mut r = vec![s(&c.name), s(c.ty.to_sql())];
            if full {
                r.push(match info.column_collation(c) {
                    Some(coll) => s(coll),
                    None => null(),
                });
            }
            r.extend([
                s(if c.nullable { "YES" } else { "NO" }),
                s(column_key(info, &c.name)),
                default_display(c).map(|(d, _)| s(d)).unwrap_or(null()),
                s(extra),
            ]);
            if full {
                r.push(s("select,insert,update,references"));
                r.push(s(&c.comment));
            }
            r
        })
        .collect();
    ShowTable { headers, dynamic_first: None, rows }
}

fn index_table(info: &TableInfo) -> ShowTable {
    let headers = vec![
        ("Table", DataType::Utf8),
        ("Non_unique", DataType::Int64),
        ("Key_name", DataType::Utf8),
        ("Seq_in_index", DataType::Int64),
        ("Column_name", DataType::Utf8),
        ("Collation", DataType::Utf8),
        ("Cardinality", DataType::Int64),
        ("Sub_part", DataType::Utf8),
        ("Packed", DataType::Utf8),
        ("Null", DataType::Utf8),
        ("Index_type", DataType::Utf8),
        ("Comment", DataType::Utf8),
        ("Index_comment", DataType::Utf8),
        ("Visible", DataType::Utf8),
        ("Expression", DataType::Utf8),
        ("Clustered", DataType::Utf8),
    ];
    let mut rows = Vec::new();
    for ix in &info.indexes {
        for (seq, col) in ix.columns.iter().enumerate() {
            let c = info.column(col);
            let itype = match &ix.kind {
                IndexKind::Btree => "BTREE",
                IndexKind::Vector { .. } => "HNSW",
                IndexKind::Fulltext { .. } => "FULLTEXT",
            };
            rows.push(vec![
                s(&info.name),
                i(if ix.unique { 0 } else { 1 }),
                s(&ix.name),
                i(seq as i64 + 1),
                s(c.map(|c| c.name.clone()).unwrap_or(col.clone())),
                s("A"),
                i(0),
                null(),
                null(),
                s(if c.is_some_and(|c| c.nullable) { "YES" } else { "" }),
                s(itype),
                s(""),
                s(&ix.comment),
                s("YES"),
                null(),
                s(if ix.primary && info.pk_handle.is_some() { "YES" } else { "NO" }),
            ]);
        }
    }
    ShowTable { headers, dynamic_first: None, rows }
}

fn comment_suffix(c: &str) -> String {
    if c.is_empty() {
        String::new()
    } else {
        format!(" COMMENT '{}'", sql_string_body(c))
    }
}

/// A column's DEFAULT as MySQL shows it: literal values in the column's own format and quoted
/// (`'1.500'` for DECIMAL(8,3)), expressions such as CURRENT_TIMESTAMP as they are. None: no
/// default, or DEFAULT NULL.
pub fn default_display(c: &crate::sql::catalog::ColumnInfo) -> Option<(String, bool)> {
    use datafusion::sql::sqlparser::ast::{Expr as E, UnaryOperator, Value as V};
    let text = c.default.as_ref()?;
    let dialect = crate::sql::dialect::TidbDialect::default();
    let expr = datafusion::sql::sqlparser::parser::Parser::new(&dialect).try_with_sql(text).ok()?.parse_expr().ok()?;
    let lit = match &expr {
        E::Value(v) => match &v.value {
            V::Null => return None,
            V::Number(n, _) => Some(n.clone()),
            V::SingleQuotedString(s) | V::DoubleQuotedString(s) => Some(s.clone()),
            V::Boolean(b) => Some(if *b { "1".into() } else { "0".into() }),
            _ => None,
        },
        E::UnaryOp { op: UnaryOperator::Minus, expr } => match expr.as_ref() {
            E::Value(v) => match &v.value {
                V::Number(n, _) => Some(format!("-{n}")),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    };
    match lit {
        Some(s) => {
            let t = crate::sql::types::Target { column: &c.name, row: 1 };
            let shown = crate::sql::types::coerce(&ScalarValue::Utf8(Some(s.clone())), &c.ty, &t)
                .map(|d| crate::sql::types::datum_display(&d))
                .unwrap_or(s);
            Some((shown, true))
        }
        None => Some((text.to_ascii_uppercase().replace("NOW()", "CURRENT_TIMESTAMP"), false)),
    }
}

/// `CURRENT_TIMESTAMP` with the column's fractional digits, as an `ON UPDATE` clause names it.
pub fn on_update_text(c: &crate::sql::catalog::ColumnInfo) -> String {
    match c.ty {
        crate::sql::types::SqlType::DateTime(fsp) | crate::sql::types::SqlType::Timestamp(fsp) if fsp > 0 => format!("CURRENT_TIMESTAMP({fsp})"),
        _ => "CURRENT_TIMESTAMP".into(),
    }
}

/// The `Extra` of `SHOW COLUMNS` and `information_schema.COLUMNS.EXTRA`, as MySQL 8 words it
/// (ORMs compare it to decide whether a column needs altering).
pub fn column_extra(c: &crate::sql::catalog::ColumnInfo) -> String {
    if c.auto_increment {
        return "auto_increment".into();
    }
    if let Some(g) = &c.generated {
        return if g.stored { "STORED GENERATED".into() } else { "VIRTUAL GENERATED".into() };
    }
    let mut parts = Vec::new();
    if matches!(default_display(c), Some((_, false))) {
        parts.push("DEFAULT_GENERATED".to_string());
    }
    if c.on_update_current_timestamp {
        parts.push(format!("on update {}", on_update_text(c)));
    }
    parts.join(" ")
}

/// `SHOW CREATE TABLE` text, TiDB style.
pub fn show_create_table(info: &TableInfo) -> String {
    let mut lines = Vec::new();
    for c in &info.columns {
        let mut l = format!("  `{}` {}", c.name, c.ty.to_sql());
        if let Some(coll) = c.collation.as_deref().filter(|x| *x != info.collation()) {
            l.push_str(&format!(" COLLATE {coll}"));
        }
        if let Some(g) = &c.generated {
            l.push_str(&format!(" GENERATED ALWAYS AS ({}) {}", g.expr, if g.stored { "STORED" } else { "VIRTUAL" }));
        }
        if !c.nullable {
            l.push_str(" NOT NULL");
        } else if matches!(c.ty, crate::sql::types::SqlType::Timestamp(_)) && c.generated.is_none() {
            // TIMESTAMP columns say NULL explicitly (they were NOT NULL by default in old MySQL).
            l.push_str(" NULL");
        }
        if c.auto_increment {
            l.push_str(" AUTO_INCREMENT");
        }
        match default_display(c) {
            Some((d, true)) => l.push_str(&format!(" DEFAULT '{}'", d.replace('\'', "''"))),
            Some((d, false)) => l.push_str(&format!(" DEFAULT {d}")),
            None if c.nullable && c.generated.is_none() => l.push_str(" DEFAULT NULL"),
            None => {}
        }
        if c.on_update_current_timestamp {
            l.push_str(&format!(" ON UPDATE {}", on_update_text(c)));
        }
        if !c.comment.is_empty() {
            l.push_str(&format!(" COMMENT '{}'", sql_string_body(&c.comment)));
        }
        lines.push(l);
    }
    let colname = |k: &String| info.column(k).map(|c| c.name.clone()).unwrap_or(k.clone());
    for ix in &info.indexes {
        let cols = ix.columns.iter().map(|c| format!("`{}`", colname(c))).collect::<Vec<_>>().join(",");
        let l = match &ix.kind {
            IndexKind::Btree if ix.primary => format!(
                "  PRIMARY KEY ({cols}) /*T![clustered_index] {} */",
                if info.pk_handle.is_some() { "CLUSTERED" } else { "NONCLUSTERED" }
            ),
            IndexKind::Btree if ix.unique => format!("  UNIQUE KEY `{}` ({cols}){}", ix.name, comment_suffix(&ix.comment)),
            IndexKind::Btree => format!("  KEY `{}` ({cols}){}", ix.name, comment_suffix(&ix.comment)),
            IndexKind::Vector { metric } => {
                let f = crate::index::search::metric_of(metric).tidb_function();
                format!("  VECTOR INDEX `{}`(({f}({cols}))){}", ix.name, comment_suffix(&ix.comment))
            }
            IndexKind::Fulltext { parser } => format!("  FULLTEXT INDEX `{}`({cols}) WITH PARSER {}", ix.name, parser.to_ascii_uppercase()),
        };
        lines.push(l);
    }
    for fk in &info.foreign_keys {
        lines.push(crate::sql::foreign_key::show(info, fk));
    }
    let coll = info.collation();
    let charset = crate::sql::collation::charset_of(coll);
    let mut out = format!("CREATE TABLE `{}` (\n{}\n) ENGINE=InnoDB DEFAULT CHARSET={charset} COLLATE={coll}", info.name, lines.join(",\n"));
    if !info.comment.is_empty() {
        out.push_str(&format!(" COMMENT='{}'", sql_string_body(&info.comment)));
    }
    out
}

/// Turn a `ShowTable` into output, applying LIKE (first column) or WHERE (any expression).
pub(crate) async fn finish(t: ShowTable, like_pat: Option<String>, where_expr: Option<String>, session: &Session) -> Result<Output> {
    let mut rows = t.rows;
    if let Some(p) = &like_pat {
        rows.retain(|r| match &r[0] {
            ScalarValue::Utf8(Some(v)) => like(p, v),
            _ => false,
        });
    }
    let fields: Vec<Field> = t
        .headers
        .iter()
        .enumerate()
        .map(|(k, (h, dt))| {
            let shown = if k == 0 { t.dynamic_first.clone().unwrap_or(h.to_string()) } else { h.to_string() };
            let mut md = HashMap::new();
            md.insert(NAME_META.to_string(), shown.clone());
            Field::new(shown.to_lowercase(), dt.clone(), true).with_metadata(md)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (k, (_, dt)) in t.headers.iter().enumerate() {
        let vals: Vec<ScalarValue> = rows
            .iter()
            .map(|r| if r[k].is_null() { ScalarValue::try_from(dt).unwrap() } else { r[k].clone() })
            .collect();
        arrays.push(if vals.is_empty() {
            datafusion::arrow::array::new_empty_array(dt)
        } else {
            ScalarValue::iter_to_array(vals)?
        });
    }
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| SqlError::other(e.to_string()))?;
    let Some(w) = where_expr else {
        return Ok(Output::Rows { schema, batches: vec![batch] });
    };
    let ctx = crate::session::new_context(datafusion::prelude::SessionConfig::new(), None);
    ctx.register_table("__show", Arc::new(MemTable::try_new(schema.clone(), vec![vec![batch]])?))?;
    let mut stmt = crate::sql::parser::parse_one(&format!("SELECT * FROM __show WHERE {w}"))?;
    crate::sql::rewrite::rewrite_statement(&mut stmt, session)?;
    let plan = ctx.state().statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(stmt))).await?;
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
    Ok(Output::Rows { schema, batches })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn tokens_keep_qualified_names_whole() {
        assert_eq!(tokens("ALTER TABLE `db`.`t` ADD x"), ["ALTER", "TABLE", "`db`.`t`", "ADD", "x"]);
        assert_eq!(tokens("show create table `db`.t;"), ["show", "create", "table", "`db`.t"]);
        // Escapes stay in the token; `unquote` reads them (MySQL keeps the backslash of \% and \_).
        assert_eq!(tokens("x db.`my t` 'a b' \"c\\\" d\""), ["x", "db.`my t`", "'a b'", "\"c\\\" d\""]);
        assert_eq!(unquote("\"c\\\" d\""), "c\" d");
        assert_eq!(unquote("'a\\nb\\_c'"), "a\nb\\_c");
        assert_eq!(split_name("`db`.`t`"), (Some("db".to_string()), "t".to_string()));
        assert_eq!(split_name("`db`.t"), (Some("db".to_string()), "t".to_string()));
        assert_eq!(tokens("a 'unterminated"), ["a", "'unterminated"]);
    }

    #[test]
    fn like_patterns() {
        assert!(like("tidb_exp%", "TIDB_EXP_EMBED_JINA_AI_API_KEY"));
        assert!(like("a_c", "abc"));
        assert!(!like("a_c", "abbc"));
        assert!(like("%", ""));
    }
}

impl Session {
    /// TiDB's vector-index DDL forms (see `index`), which sqlparser does not parse.
    async fn vector_index_ddl(&mut self, sql: &str, toks: &[String]) -> Result<Option<Output>> {
        let is = |k: usize, w: &str| toks.get(k).map(String::as_str) == Some(w);
        let b = sql.as_bytes();
        // Where the definition starts, and the table it belongs to.
        let (table_tok, def_at, named) = if is(0, "create") && is(1, "vector") && is(2, "index") {
            let (table, def) = crate::index::parse_create_vector_index(sql)?;
            return self.apply_vector_index(&table, def).await.map(Some);
        } else if is(0, "alter") && is(1, "table") && is(3, "add") && is(4, "vector") && is(5, "index") {
            let at = find_keyword(sql, "index").unwrap_or(0) + 5;
            (tokens(sql)[2].clone(), at, true)
        } else if is(0, "create") && is(1, "fulltext") && is(2, "index") {
            let (table, def) = crate::index::fulltext::parse_create(sql)?;
            return self.apply_fulltext_index(&table, def).await.map(Some);
        } else if is(0, "alter") && is(1, "table") && is(3, "add") && is(4, "fulltext") && (is(5, "index") || is(5, "key")) {
            let kw = if is(5, "index") { "index" } else { "key" };
            let at = find_keyword(sql, kw).unwrap_or(0) + kw.len();
            let (def, _) = crate::index::fulltext::parse_definition(b, at, true)?;
            return self.apply_fulltext_index(&tokens(sql)[2].clone(), def).await.map(Some);
        } else if is(0, "create") && is(1, "table") && {
            let l = sql.to_ascii_lowercase();
            l.contains("vector index") || l.contains("fulltext")
        } {
            let (stripped, defs) = crate::index::extract_vector_indexes(sql)?;
            let (stripped, fdefs) = crate::index::fulltext::extract(&stripped)?;
            if defs.is_empty() && fdefs.is_empty() {
                return Ok(None);
            }
            let stmt = crate::sql::parser::parse_one(&stripped)?;
            let datafusion::sql::sqlparser::ast::Statement::CreateTable(ct) = &stmt else { return Ok(None) };
            // Check the definitions against the columns before creating anything.
            let (db, name) = self.resolve_name(&ct.name)?;
            let mut probe = crate::sql::catalog::TableInfo {
                id: 0,
                db: db.clone(),
                name: name.clone(),
                columns: vec![],
                indexes: vec![],
                pk_handle: None,
                next_column_id: 1,
                next_index_id: 1,
                comment: String::new(),
                tiflash_replica: 0,
                create_time: String::new(),
                collation: String::new(),
                foreign_keys: vec![],
                model_change: None,
                arrow: Default::default(),
            };
            for c in &ct.columns {
                probe.columns.push(crate::sql::catalog::ColumnInfo::plain(0, &c.name.value, crate::sql::types::SqlType::from_ast(&c.data_type)?, true));
            }
            for d in &defs {
                crate::index::add_vector_index(&mut probe, d)?;
            }
            for d in &fdefs {
                crate::index::fulltext::add_index(&mut probe, d)?;
            }
            self.authorize(&stmt)?;
            let engine = self.engine.clone();
            let _g = engine.ddl_lock.lock().await;
            self.commit_open()?;
            // `IF NOT EXISTS` on a table that exists changes nothing, its indexes included.
            let existed = ct.if_not_exists && {
                let txn = self.engine.store.begin()?;
                let found = crate::sql::catalog::Catalog::new(&txn).table(&db, &name)?.is_some();
                txn.rollback();
                found
            };
            self.ddl(stmt).await?;
            drop(_g);
            if existed {
                return Ok(Some(Output::ok()));
            }
            for d in defs {
                self.apply_vector_index(&format!("`{db}`.`{name}`"), d).await?;
            }
            for d in fdefs {
                self.apply_fulltext_index(&format!("`{db}`.`{name}`"), d).await?;
            }
            return Ok(Some(Output::ok()));
        } else {
            return Ok(None);
        };
        let (def, _) = crate::index::parse_definition(b, def_at, named)?;
        self.apply_vector_index(&table_tok, def).await.map(Some)
    }

    async fn apply_vector_index(&mut self, table: &str, def: crate::index::VectorIndexDef) -> Result<Output> {
        self.apply_index(table, |info| crate::index::add_vector_index(info, &def)).await
    }

    async fn apply_fulltext_index(&mut self, table: &str, def: crate::index::fulltext::FulltextDef) -> Result<Output> {
        self.apply_index(table, |info| crate::index::fulltext::add_index(info, &def)).await
    }

    /// Add a search index to `table`'s definition with `add` (which checks TiDB's restrictions),
    /// as one DDL statement; the index is then built from the table's rows in the background
    /// (`index::search`).
    async fn apply_index(&mut self, table: &str, add: impl FnOnce(&mut TableInfo) -> Result<()>) -> Result<Output> {
        self.alter_table_entry_as(table, crate::privileges::INDEX, add).await?;
        self.engine.search.sync(&self.engine.store)?;
        Ok(Output::ok())
    }
}
