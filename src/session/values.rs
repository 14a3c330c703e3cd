//! What the SQL rewrites ask of a session (`sql::rewrite::SessionValues`): variables, the
//! current user and database, and the functions that act on the session or the server
//! (`GET_LOCK` and the other user locks, `SLEEP`, `EMBEDDING_WAIT`, `EMBEDDING_RETRY`).

use datafusion::sql::sqlparser::ast;

use crate::error::{Result, SqlError};
use crate::interrupt::blocking;
use crate::sql::catalog::Catalog;
use crate::sql::rewrite::SessionValues;

use super::*;

impl SessionValues for Session {
    fn system_var(&self, name: &str, global: Option<bool>) -> Result<String> {
        self.read_var(name, global)
    }
    fn current_db(&self) -> Option<String> {
        self.db.clone()
    }
    fn last_insert_id(&self) -> u64 {
        self.last_insert_id
    }
    fn connection_id(&self) -> u32 {
        self.connection_id
    }
    fn user(&self) -> String {
        format!("{}@{}", self.user, self.client_host)
    }
    fn current_user(&self) -> String {
        format!("{}@{}", self.privileges.user, self.privileges.host)
    }
    fn version(&self) -> String {
        server_version()
    }
    fn found_rows(&self) -> u64 {
        self.last_found_rows
    }
    fn row_count(&self) -> i64 {
        self.last_row_count
    }
    fn user_var(&self, name: &str) -> ast::Expr {
        self.user_vars.get(&name.to_ascii_lowercase()).cloned().unwrap_or_else(|| ast::Expr::value(ast::Value::Null))
    }
    fn source(&self) -> &str {
        &self.source
    }
    fn alias_header(&self, position: usize, header: &str) {
        self.alias_headers.lock().push((position, header.to_string()));
    }
    fn session_function(&self, function: &str, args: &[ast::Expr]) -> Result<ast::Expr> {
        use crate::sql::rewrite::{literal_text, lit_num};
        let text = |i: usize| args.get(i).map(literal_text);
        let null = || ast::Expr::value(ast::Value::Null);
        let bad = || SqlError::new(1210, "HY000", format!("Incorrect arguments to {}", function.to_uppercase()));
        let conn = self.connection_id;
        let locks = &self.engine.user_locks;
        Ok(match (function, args.len()) {
            ("get_lock", 2) => {
                let (Some(Some(name)), Some(t)) = (text(0), text(1)) else { return Ok(null()) };
                let secs: f64 = t.as_deref().unwrap_or("0").trim().parse().map_err(|_| bad())?;
                let timeout = (secs >= 0.0).then(|| std::time::Duration::from_secs_f64(secs.min(31_536_000.0)));
                let interrupt = self.interrupt.clone();
                let got = blocking(|| locks.get(conn, &name, timeout, &|| interrupt.is_set()))?;
                lit_num(got as u8)
            }
            ("sleep", 1) => {
                let secs: f64 = text(0).flatten().unwrap_or_else(|| "0".into()).trim().parse().map_err(|_| bad())?;
                if secs < 0.0 {
                    return Err(bad());
                }
                let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs.min(31_536_000.0));
                let interrupt = self.interrupt.clone();
                let woken = blocking(|| {
                    while std::time::Instant::now() < until {
                        if interrupt.is_set() {
                            return true;
                        }
                        std::thread::sleep((until - std::time::Instant::now()).min(std::time::Duration::from_millis(20)));
                    }
                    false
                });
                lit_num(woken as u8)
            }
            ("release_lock", 1) => match text(0) {
                Some(Some(name)) => locks.release(conn, &name)?.map_or_else(null, |r| lit_num(r as u8)),
                _ => null(),
            },
            ("release_all_locks", 0) => lit_num(locks.release_all(conn)),
            ("is_free_lock", 1) => match text(0) {
                Some(Some(name)) => lit_num(locks.holder(&name)?.is_none() as u8),
                _ => null(),
            },
            ("is_used_lock", 1) => match text(0) {
                Some(Some(name)) => locks.holder(&name)?.map_or_else(null, lit_num),
                _ => null(),
            },
            ("embedding_wait", 1 | 2) => {
                let info = self.embedding_table(text(0).flatten(), crate::privileges::SELECT)?;
                let secs: f64 = text(1).flatten().unwrap_or_else(|| "60".into()).trim().parse().map_err(|_| bad())?;
                if secs < 0.0 {
                    return Err(bad());
                }
                let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs.min(31_536_000.0));
                let interrupt = self.interrupt.clone();
                let left = blocking(|| -> Result<u64> {
                    loop {
                        let txn = self.engine.store.begin()?;
                        let mut pending = 0;
                        for column_id in info.queued_column_ids() {
                            pending += crate::embed::backlog::counts(&txn, info.id, column_id)?.pending;
                        }
                        txn.rollback();
                        if pending == 0 || std::time::Instant::now() >= until || interrupt.is_set() {
                            return Ok(pending);
                        }
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                })?;
                lit_num(left)
            }
            ("embedding_retry", 1) => {
                let info = self.embedding_table(text(0).flatten(), crate::privileges::UPDATE)?;
                let txn = self.engine.store.begin()?;
                let mut moved = 0;
                for column_id in info.queued_column_ids() {
                    moved += crate::embed::backlog::retry_failed(&txn, info.id, column_id)?;
                }
                txn.commit()?;
                self.engine.embedder.backlog.notify();
                lit_num(moved)
            }
            _ => return Err(SqlError::param_count(function)),
        })
    }
}

impl Session {
    /// The table an `EMBEDDING_WAIT` / `EMBEDDING_RETRY` names (`'t'` or `'db.t'`), checked
    /// against the session's privileges.
    fn embedding_table(&self, name: Option<String>, privs: crate::privileges::Privs) -> Result<crate::sql::catalog::TableInfo> {
        let name = name.ok_or_else(|| SqlError::new(1210, "HY000", "Incorrect arguments to EMBEDDING_WAIT: a table name"))?;
        let unquote = |s: &str| s.trim().trim_matches('`').to_string();
        let (db, table) = match name.split_once('.') {
            Some((d, t)) => (unquote(d), unquote(t)),
            None => (self.current_db()?, unquote(&name)),
        };
        self.privileges.check(&[crate::privileges::Need::Table { db: db.clone(), table: table.clone(), privs }])?;
        let txn = self.engine.store.begin()?;
        let info = Catalog::new(&txn).must_table(&db, &table);
        txn.rollback();
        info
    }
}

