//! A session's side of users and privileges (`crate::privileges`): who it is, the checks each
//! statement passes before it runs, and the account statements, which write accounts in a
//! transaction of their own and reload every session's view of them.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::Statement;
use embedb_storage::Store;

use super::{Output, Session};
use crate::config::Config;
use crate::error::{Result, SqlError};
use crate::privileges::{self, statements, store, Account, Accounts, Need, Privileges, Privs};
use crate::sql::catalog::Catalog;

/// Load the stored accounts and make sure the bootstrap users (`--users`/config) exist with their
/// configured password and every privilege.
pub(crate) fn bootstrap(store_: &Store, config: &Config) -> Result<Accounts> {
    let txn = store_.begin()?;
    let mut list = store::load(&txn)?;
    for (user, password) in &config.users {
        let host = "%";
        let wanted = |a: &Account| {
            let mut a = a.clone();
            a.set_password(password);
            a.global |= privileges::ALL_GLOBAL | privileges::GRANT_OPTION;
            a.locked = false;
            a
        };
        match list.iter_mut().find(|a| &a.user == user && a.host == host) {
            Some(a) => {
                let w = wanted(a);
                if w != *a {
                    store::put(&txn, &w)?;
                    *a = w;
                }
            }
            None => {
                let a = wanted(&Account::new(user, host, ""));
                store::put(&txn, &a)?;
                list.push(a);
            }
        }
    }
    txn.commit()?;
    Ok(Accounts::new(list))
}

/// The stored accounts, as they are (a cluster reader, which writes nothing).
pub(crate) fn load(store_: &Store) -> Result<Accounts> {
    let txn = store_.begin()?;
    let list = store::load(&txn)?;
    txn.rollback();
    Ok(Accounts::new(list))
}

/// One text column of lines (SHOW GRANTS, SHOW CREATE USER).
fn lines_output(header: &str, lines: Vec<String>) -> Result<Output> {
    let mut md = std::collections::HashMap::new();
    md.insert(crate::sql::show::NAME_META.to_string(), header.to_string());
    let schema = Arc::new(Schema::new(vec![Field::new(header.to_lowercase(), DataType::Utf8, false).with_metadata(md)]));
    let col: ArrayRef = Arc::new(StringArray::from(lines));
    let batch = RecordBatch::try_new(schema.clone(), vec![col]).map_err(|e| SqlError::other(e.to_string()))?;
    Ok(Output::Rows { schema, batches: vec![batch] })
}

impl Session {
    /// The session's account as committed now (reloaded when any account changed).
    pub fn privileges(&mut self) -> &Privileges {
        let version = self.engine.accounts.version();
        if version != self.privileges.version {
            let current = self.engine.accounts.current();
            self.privileges.account = current.get(&self.privileges.user, &self.privileges.host);
            self.privileges.version = version;
            // A cached plan was checked under the old grants.
            self.plan_cache.clear();
        }
        &self.privileges
    }

    /// Check what a parsed statement needs before it runs.
    pub(crate) fn authorize(&mut self, stmt: &Statement) -> Result<()> {
        if self.privileges().is_superuser() {
            return Ok(());
        }
        let needs = privileges::required::needs(stmt, self.db.as_deref());
        self.privileges.check(&needs)
    }

    /// Check one need (the statements this server reads without sqlparser).
    pub fn require(&mut self, need: Need) -> Result<()> {
        self.privileges().check(std::slice::from_ref(&need))
    }

    /// Any one of `any_of`, globally (1227 otherwise).
    pub fn require_global(&mut self, any_of: Privs) -> Result<()> {
        self.require(Need::Global { any_of })
    }

    /// Whether this session may see database `db` in listings.
    pub fn sees_db(&mut self, db: &str) -> bool {
        let p = self.privileges();
        p.is_superuser() || p.has_global(privileges::SHOW_DATABASES) || p.sees_db(db)
    }

    /// Whether this session may see table `db`.`table` in listings.
    pub fn sees_table(&mut self, db: &str, table: &str) -> bool {
        let p = self.privileges();
        p.is_superuser() || p.sees_table(db, table)
    }

    /// 1142 unless the session holds something on the table (SHOW CREATE TABLE, SHOW COLUMNS).
    pub fn require_sees_table(&mut self, command: &str, db: &str, table: &str) -> Result<()> {
        if self.sees_table(db, table) {
            return Ok(());
        }
        Err(self.privileges.table_denied(command, table))
    }

    /// Whose connections the process list shows: None for all (PROCESS), else this user's.
    pub fn process_filter(&mut self) -> Option<String> {
        let p = self.privileges();
        if p.is_superuser() || p.has_global(privileges::PROCESS) {
            None
        } else {
            Some(p.user.clone())
        }
    }

    /// What `information_schema` shows this session: None for everything.
    pub fn catalog_visibility(&mut self) -> Option<Arc<Privileges>> {
        let p = self.privileges();
        if p.is_superuser() {
            None
        } else {
            Some(Arc::new(p.clone()))
        }
    }

    /// Whether the session may KILL connection `id` (its own, or with CONNECTION_ADMIN/SUPER).
    pub fn may_kill(&mut self, id: u64) -> Result<()> {
        if self.privileges().has_global(privileges::SUPER | privileges::CONNECTION_ADMIN) {
            return Ok(());
        }
        let owner = self.engine.stats.processes().into_iter().find(|p| u64::from(p.id) == id).map(|p| p.user);
        match owner {
            Some(u) if u != self.privileges.user => Err(SqlError::new(1095, "HY000", format!("You are not owner of thread {id}"))),
            _ => Ok(()),
        }
    }

    /// Run an account statement: CREATE/ALTER/DROP/RENAME USER, GRANT, REVOKE, SET PASSWORD,
    /// SHOW GRANTS, SHOW CREATE USER, FLUSH PRIVILEGES.
    pub(crate) async fn account_statement(&mut self, stmt: statements::AccountStatement) -> Result<Output> {
        use statements::Outcome;
        let me = self.privileges().clone();
        let reads_only = matches!(stmt, statements::AccountStatement::ShowGrants { .. } | statements::AccountStatement::ShowCreateUser { .. } | statements::AccountStatement::FlushPrivileges);
        if reads_only {
            let accounts = self.engine.accounts.current();
            return match statements::apply(stmt, &me, &accounts, &|_, _| Ok(true))? {
                Outcome::Lines { header, lines } => lines_output(&header, lines),
                _ => Ok(Output::ok()),
            };
        }
        // Account changes commit the open transaction (as MySQL's do) and run one at a time, so
        // that two GRANTs to one account never overwrite each other.
        let engine = self.engine.clone();
        let _g = engine.ddl_lock.lock().await;
        self.commit_open()?;
        let txn = self.engine.store.begin()?;
        let accounts = Accounts::new(store::load(&txn)?);
        let exists = |db: &str, t: &str| -> Result<bool> {
            let cat = Catalog::new(&txn);
            Ok(cat.table(db, t)?.is_some() || cat.view(db, t)?.is_some())
        };
        let outcome = statements::apply(stmt, &me, &accounts, &exists)?;
        let Outcome::Changed { write, notes } = outcome else { return Ok(Output::ok()) };
        for ((user, host), a) in &write {
            match a {
                Some(a) => store::put(&txn, a)?,
                None => store::delete(&txn, user, host),
            }
        }
        txn.commit()?;
        let txn = self.engine.store.begin()?;
        let fresh = Accounts::new(store::load(&txn)?);
        txn.rollback();
        self.engine.accounts.replace(fresh);
        for (code, message) in notes {
            self.note(code, message);
        }
        Ok(Output::ok())
    }
}

#[cfg(test)]
mod tests {
    use crate::session::test_session;

    async fn run(s: &mut crate::session::Session, sql: &str) -> crate::error::Result<crate::session::Output> {
        s.run(sql).await
    }

    #[tokio::test]
    async fn a_grant_is_enforced_at_once_and_a_revoke_too() {
        let mut root = test_session();
        for sql in ["CREATE TABLE t (id INT PRIMARY KEY)", "CREATE USER bob IDENTIFIED BY 'pw'", "GRANT SELECT ON test.t TO bob"] {
            run(&mut root, sql).await.unwrap();
        }
        let mut bob = crate::session::Session::for_client(root.engine.clone(), 99, "bob", "10.0.0.1");
        bob.use_db("test").unwrap();
        run(&mut bob, "SELECT * FROM t").await.unwrap();
        let e = run(&mut bob, "INSERT INTO t VALUES (1)").await.unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (1142, "INSERT command denied to user 'bob'@'%' for table 't'"));
        run(&mut root, "REVOKE SELECT ON test.t FROM bob").await.unwrap();
        assert_eq!(run(&mut bob, "SELECT * FROM t").await.unwrap_err().code, 1142);
        assert_eq!(run(&mut bob, "SET GLOBAL max_connections = 10").await.unwrap_err().code, 1227);
    }
}
