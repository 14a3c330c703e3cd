//! Pessimistic transactions, TiDB's default (`tidb_txn_mode = 'pessimistic'`): a DML statement
//! locks every key it wrote, and `SELECT … FOR UPDATE` the rows it selects, until the
//! transaction ends (`storage::locks`).
//!
//! A locking statement reads what is committed when it starts (TiDB's `for_update_ts`): if
//! commits were made since the transaction's snapshot, the snapshot moves forward first, keeping
//! the transaction's own writes. After taking its locks the statement checks whether a commit it
//! waited for wrote one of its keys; then it is undone and run again on a fresh snapshot, so the
//! client sees the row as the other transaction left it (a duplicate key, a changed value)
//! instead of a write conflict at COMMIT. `tidb_txn_mode = 'optimistic'` keeps the
//! check-at-commit behaviour (9007). One difference from TiDB: after a locking statement has
//! moved the snapshot, the transaction's plain SELECTs read the newer snapshot too.

use std::time::Duration;

use datafusion::sql::sqlparser::ast::{LockType, NonBlock, SetExpr, Statement, TableFactor};

use super::{Output, Session};
use crate::error::{Result, SqlError, WRITE_CONFLICT};
use crate::sql::catalog::Catalog;
use crate::storage::locks::OnLocked;

/// How often a locking statement is run again after a commit it waited for changed its rows.
const RETRIES: u32 = 10;

impl Session {
    /// Whether this session's transactions lock (TiDB's default).
    pub fn pessimistic(&self) -> bool {
        !self.vars.get(crate::sql::variables::TXN_MODE_VAR).is_some_and(|m| m.eq_ignore_ascii_case("optimistic"))
    }

    fn lock_wait(&self) -> Duration {
        let secs = self.vars.get("innodb_lock_wait_timeout").and_then(|v| v.parse().ok()).unwrap_or(50);
        Duration::from_secs(secs)
    }

    /// The open transaction's lock owner (made at its first lock).
    fn txn_lock_owner(&mut self) -> u64 {
        *self.lock_owner.get_or_insert_with(|| self.engine.locks.new_owner())
    }

    /// Release the open transaction's locks (it ended).
    pub(crate) fn release_locks(&mut self) {
        if let Some(owner) = self.lock_owner.take() {
            self.engine.locks.release_all(owner);
        }
    }

    /// Take `keys` for `owner`; a KILL stops the wait.
    async fn wait_for_locks(&self, owner: u64, keys: &[Vec<u8>], on_locked: OnLocked) -> Result<()> {
        let interrupt = self.interrupt.clone();
        tokio::select! {
            r = self.engine.locks.lock(owner, keys, on_locked) => r,
            _ = interrupt.wait() => interrupt.check(),
        }
    }

    /// A locking statement's outcome: `None` to run it again (a commit it waited for changed its
    /// rows), else its answer; a deadlock victim's transaction ends, as InnoDB's and TiDB's do.
    fn after_try(&mut self, r: Result<Output>, tries: &mut u32) -> Option<Result<Output>> {
        match r {
            Err(e) if e.code == WRITE_CONFLICT && *tries < RETRIES => {
                *tries += 1;
                None
            }
            Err(e) if e.code == 1213 => {
                self.rollback_open();
                Some(Err(e))
            }
            r => Some(r),
        }
    }

    /// An INSERT, UPDATE or DELETE of a pessimistic transaction.
    pub(crate) async fn locking_dml(&mut self, stmt: Statement) -> Result<Output> {
        // Shared, not copied, between tries (a bulk INSERT's VALUES are large).
        let stmt = std::sync::Arc::new(stmt);
        let explicit = self.in_txn || !self.autocommit();
        let on_locked = OnLocked::Wait(self.lock_wait());
        let mut tries = 0;
        let switch_wait = std::time::Instant::now();
        loop {
            // An autocommit statement is a transaction of its own: its locks go with its commit.
            let owner = if explicit { self.txn_lock_owner() } else { self.engine.locks.new_owner() };
            let one = stmt.clone();
            let r = self
                .in_statement(move |s, txn| {
                    Box::pin(async move {
                        if explicit && txn.is_stale() {
                            txn.refresh()?;
                        }
                        // An autocommit statement's writes are all of its transaction's.
                        let sp = explicit.then(|| txn.savepoint());
                        let out = s.dml_ref(&one, txn.clone()).await?;
                        let keys = match &sp {
                            Some(sp) => txn.written_since(sp),
                            None => txn.written_keys(),
                        };
                        s.wait_for_locks(owner, &keys, on_locked).await?;
                        // (An autocommit statement's own commit checks the same at once.)
                        if explicit && txn.conflicts_on(&keys) {
                            return Err(SqlError::write_conflict());
                        }
                        Ok(out)
                    })
                })
                .await;
            if !explicit {
                self.engine.locks.release_all(owner);
                if super::waited_for_switch(&r, switch_wait).await {
                    continue;
                }
            }
            if let Some(done) = self.after_try(r, &mut tries) {
                return done;
            }
        }
    }

    /// `SELECT … FOR UPDATE [NOWAIT | SKIP LOCKED]` in a pessimistic transaction: lock the rows of
    /// its table that match its WHERE, then answer it. FOR SHARE / LOCK IN SHARE MODE lock
    /// nothing, as in TiDB (where they are no-ops). A join locks nothing either (yet).
    pub(crate) async fn locking_select(&mut self, stmt: Statement) -> Result<Output> {
        let Statement::Query(q) = &stmt else { unreachable!("a query") };
        let lock = q.locks[0].clone();
        let target = match q.body.as_ref() {
            SetExpr::Select(sel) if sel.from.len() == 1 && sel.from[0].joins.is_empty() => match &sel.from[0].relation {
                TableFactor::Table { name, alias, args: None, .. } => Some((name.clone(), alias.clone(), sel.selection.clone())),
                _ => None,
            },
            _ => None,
        };
        let (Some((name, alias, selection)), LockType::Update) = (target, lock.lock_type) else {
            return self.in_statement(|s, txn| Box::pin(s.query(stmt, txn))).await;
        };
        let on_locked = match lock.nonblock {
            Some(NonBlock::Nowait) => OnLocked::NoWait,
            _ => OnLocked::Wait(self.lock_wait()),
        };
        let skip_locked = matches!(lock.nonblock, Some(NonBlock::SkipLocked));
        let owner = self.txn_lock_owner();
        let mut tries = 0;
        loop {
            let (stmt, name, alias, selection) = (stmt.clone(), name.clone(), alias.clone(), selection.clone());
            let r = self
                .in_statement(move |s, txn| {
                    Box::pin(async move {
                        if txn.is_stale() {
                            txn.refresh()?;
                        }
                        let (db, t) = s.resolve_name(&name)?;
                        let info = Catalog::new(&txn).must_table(&db, &t)?;
                        let handle = format!("`{}`", crate::storage::table::HANDLE_COLUMN);
                        let sql = crate::sql::dml::target_select(&[handle], &name, alias.as_ref(), selection.as_ref(), &[], None);
                        let batches = s.select_targets(&sql, &db, &t, txn.clone()).await?;
                        let mut handles = Vec::new();
                        for b in &batches {
                            let col = b.column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().ok_or_else(|| SqlError::other("bad handle column"))?;
                            handles.extend(col.values().iter().copied());
                        }
                        let key = |h: i64| embedb_storage::codec::row_key(info.id, h);
                        let mut stmt = stmt;
                        let keys: Vec<Vec<u8>> = if skip_locked {
                            let (mine, skipped): (Vec<i64>, Vec<i64>) = handles.iter().partition(|&&h| s.engine.locks.try_lock(owner, &key(h)));
                            if !skipped.is_empty() {
                                exclude_rows(&mut stmt, &info, &skipped)?;
                            }
                            mine.into_iter().map(key).collect()
                        } else {
                            let keys: Vec<Vec<u8>> = handles.into_iter().map(key).collect();
                            s.wait_for_locks(owner, &keys, on_locked).await?;
                            keys
                        };
                        if txn.conflicts_on(&keys) {
                            return Err(SqlError::write_conflict());
                        }
                        s.query(stmt, txn).await
                    })
                })
                .await;
            if let Some(done) = self.after_try(r, &mut tries) {
                return done;
            }
        }
    }
}

/// Leave the rows `handles` (locked by others: SKIP LOCKED) out of a single-table SELECT.
fn exclude_rows(stmt: &mut Statement, info: &crate::sql::catalog::TableInfo, handles: &[i64]) -> Result<()> {
    let Some(pk) = info.pk_handle.clone() else {
        return Err(SqlError::unsupported("SKIP LOCKED on a table without an integer primary key"));
    };
    let Statement::Query(q) = stmt else { return Ok(()) };
    let SetExpr::Select(sel) = q.body.as_mut() else { return Ok(()) };
    let list = handles.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(", ");
    let text = match &sel.selection {
        Some(w) => format!("({w}) AND `{pk}` NOT IN ({list})"),
        None => format!("`{pk}` NOT IN ({list})"),
    };
    sel.selection = Some(crate::sql::dml::parse_expr(&text)?);
    Ok(())
}
