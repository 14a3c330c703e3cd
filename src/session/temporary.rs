//! Temporary tables: `CREATE TEMPORARY TABLE t …` makes a table only its own session sees, which
//! hides a permanent `t` for that session and goes away when the session ends.
//!
//! The table is an ordinary one in the store under a hidden name (`\u{1}tmp<connection>_<name>`),
//! so every statement form, index and transaction works on it unchanged. Before a parsed
//! statement runs, [`Session::rewrite_temporary`] points its references to `t` at the hidden
//! name; nobody else can name it, because a statement whose table names contain the mark is
//! refused (1103). Listings leave hidden names out; the session drops its tables when it ends,
//! and a start after a crash drops any left behind.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{visit_relations, visit_relations_mut, Ident, ObjectName, ObjectNamePart, ObjectType, Statement};
use embedb_storage::Store;

use super::Session;
use crate::error::{Result, SqlError};
use crate::sql::catalog::Catalog;

/// The first character of a hidden table name.
pub const HIDDEN_MARK: char = '\u{1}';

/// Whether a table name is a session's hidden one.
pub fn is_hidden(name: &str) -> bool {
    name.starts_with(HIDDEN_MARK)
}

/// One temporary table of a session.
#[derive(Clone, Debug)]
pub struct TempTable {
    pub db: String,
    pub name: String,
    pub hidden: String,
}

/// What a statement did to the session's temporary tables, applied once it succeeded.
pub(crate) enum TempChange {
    None,
    Created(TempTable),
    Dropped(Vec<String>),
}

fn qualified(db: &str, table: &str) -> ObjectName {
    ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote('`', db)), ObjectNamePart::Identifier(Ident::with_quote('`', table))])
}

impl Session {
    fn temp_of(&self, db: &str, name: &str) -> Option<&TempTable> {
        self.temp_tables.iter().find(|t| t.db.eq_ignore_ascii_case(db) && t.name.eq_ignore_ascii_case(name))
    }

    /// The temporary table a name refers to, if any.
    fn temp_for(&self, name: &ObjectName) -> Option<&TempTable> {
        if self.temp_tables.is_empty() {
            return None;
        }
        let (db, t) = self.resolve_name(name).ok()?;
        self.temp_of(&db, &t)
    }

    /// Point `stmt` at this session's temporary tables (see the module doc).
    pub(crate) fn rewrite_temporary(&mut self, stmt: &mut Statement) -> Result<TempChange> {
        // Only a statement whose text holds the mark can name a hidden table.
        if self.source.contains(HIDDEN_MARK) {
            let mut bad = None;
            let _ = visit_relations(stmt, |n: &ObjectName| {
                if n.to_string().contains(HIDDEN_MARK) {
                    bad = Some(n.to_string());
                }
                ControlFlow::<()>::Continue(())
            });
            if let Some(n) = bad {
                return Err(SqlError::new(1103, "42000", format!("Incorrect table name '{}'", n.replace(HIDDEN_MARK, ""))));
            }
        }
        match stmt {
            Statement::CreateTable(ct) if ct.temporary => {
                let (db, name) = self.resolve_name(&ct.name)?;
                self.require(crate::privileges::Need::Db { db: db.clone(), privs: crate::privileges::CREATE_TEMPORARY_TABLES })?;
                if self.temp_of(&db, &name).is_some() {
                    if ct.if_not_exists {
                        self.note(1050, format!("Table '{name}' already exists"));
                        return Ok(TempChange::None);
                    }
                    return Err(SqlError::table_exists(&name));
                }
                let hidden = format!("{HIDDEN_MARK}tmp{}_{}", self.connection_id, name.to_lowercase());
                self.point_at_temporary(&mut ct.query);
                ct.name = qualified(&db, &hidden);
                ct.temporary = false;
                Ok(TempChange::Created(TempTable { db, name, hidden }))
            }
            Statement::CreateTable(ct) => {
                // A permanent table of the same name may be made beside a temporary one.
                self.point_at_temporary(&mut ct.query);
                Ok(TempChange::None)
            }
            Statement::Drop { object_type: ObjectType::Table, names, temporary, .. } => {
                let mut dropped = Vec::new();
                for n in names.iter_mut() {
                    match self.temp_for(n).cloned() {
                        Some(t) => {
                            *n = qualified(&t.db, &t.hidden);
                            dropped.push(t.hidden);
                        }
                        None if *temporary => {
                            let (db, t) = self.resolve_name(n)?;
                            return Err(SqlError::new(1051, "42S02", format!("Unknown table '{db}.{t}'")));
                        }
                        None => {}
                    }
                }
                Ok(TempChange::Dropped(dropped))
            }
            other => {
                self.point_at_temporary(other);
                Ok(TempChange::None)
            }
        }
    }

    fn point_at_temporary<T: datafusion::sql::sqlparser::ast::VisitMut>(&self, node: &mut T) {
        if self.temp_tables.is_empty() {
            return;
        }
        let _ = visit_relations_mut(node, |n: &mut ObjectName| {
            if let Some(t) = self.temp_for(n) {
                *n = qualified(&t.db, &t.hidden);
            }
            ControlFlow::<()>::Continue(())
        });
    }

    pub(crate) fn apply_temp_change(&mut self, change: TempChange) {
        match change {
            TempChange::None => {}
            TempChange::Created(t) => self.temp_tables.push(t),
            TempChange::Dropped(hidden) => self.temp_tables.retain(|t| !hidden.contains(&t.hidden)),
        }
    }

    /// An error's text with hidden names shown as the session wrote them.
    pub(crate) fn unhide(&self, mut e: SqlError) -> SqlError {
        if e.message.contains(HIDDEN_MARK) {
            for t in &self.temp_tables {
                e.message = e.message.replace(&t.hidden, &t.name);
            }
            e.message = e.message.replace(HIDDEN_MARK, "");
        }
        e
    }

    /// Drop the session's temporary tables (it is ending).
    pub(crate) fn drop_temporary_tables(&mut self) {
        if self.temp_tables.is_empty() {
            return;
        }
        self.rollback_open();
        let hidden: Vec<(String, String)> = self.temp_tables.drain(..).map(|t| (t.db, t.hidden)).collect();
        if let Err(e) = drop_hidden(&self.engine.store, |db, t| hidden.iter().any(|(d, h)| d.eq_ignore_ascii_case(db) && h.eq_ignore_ascii_case(t))) {
            tracing::warn!(connection = self.connection_id, "could not drop temporary tables: {}", e.message);
        }
    }
}

/// Drop every hidden table that `which` picks, rows and definition, in one transaction.
pub(crate) fn drop_hidden(store: &Store, which: impl Fn(&str, &str) -> bool) -> Result<usize> {
    let txn = store.begin()?;
    let cat = Catalog::new(&txn);
    let mut n = 0;
    for db in cat.databases()? {
        for t in cat.tables(&db.name)? {
            if is_hidden(&t.name) && which(&t.db, &t.name) {
                cat.delete_table(&t.db, &t.name);
                crate::storage::table::delete_all(&txn, t.id)?;
                n += 1;
            }
        }
    }
    if n > 0 {
        txn.commit()?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use crate::session::test_session;

    #[tokio::test]
    async fn a_temporary_table_is_private_and_goes_with_its_session() {
        let mut a = test_session();
        a.run("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").await.unwrap();
        a.run("INSERT INTO t VALUES (1, 'permanent')").await.unwrap();
        a.run("CREATE TEMPORARY TABLE t (id INT PRIMARY KEY, v TEXT)").await.unwrap();
        a.run("INSERT INTO t VALUES (2, 'temporary')").await.unwrap();
        let mut b = crate::session::Session::new(a.engine.clone(), 77, "root");
        b.use_db("test").unwrap();
        let count = |s: crate::session::Output| match s {
            crate::session::Output::Rows { batches, .. } => batches.iter().map(|b| b.num_rows()).sum::<usize>(),
            _ => 0,
        };
        assert_eq!(count(b.run("SELECT * FROM t WHERE id = 1").await.unwrap()), 1);
        assert_eq!(count(b.run("SELECT * FROM t WHERE id = 2").await.unwrap()), 0);
        assert_eq!(count(a.run("SELECT * FROM t WHERE id = 1").await.unwrap()), 0);
        let e = a.run("INSERT INTO t VALUES (2, 'again')").await.unwrap_err();
        assert!(!e.message.contains(super::HIDDEN_MARK), "{}", e.message);
        let e = b.run("SELECT * FROM `\u{1}tmp1_t`").await.unwrap_err();
        assert_eq!(e.code, 1103);
        drop(a);
        assert_eq!(count(b.run("SHOW TABLES").await.unwrap()), 1);
        assert_eq!(super::drop_hidden(&b.engine.store, |_, _| true).unwrap(), 0);
    }
}
