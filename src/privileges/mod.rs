//! Users and privileges, MySQL-style.
//!
//! A walk through it:
//! - An **account** is `'user'@'host'` (the host a pattern: `%`, `10.0.%`, `localhost`) with a
//!   password kept only as the two hashes the login proofs need (`SHA1(SHA1(pw))` for
//!   `mysql_native_password`, `SHA256(SHA256(pw))` for `caching_sha2_password`'s fast path) and
//!   its grants at three levels: global (`*.*`), database (`db.*`) and table (`db.t`). Accounts are
//!   stored as JSON in the catalog (`mUS:` keys, [`store`]), so they commit, survive restarts and
//!   travel with the data. Users named in `--users`/config are the *bootstrap*: at every start
//!   they exist with that password and all privileges.
//! - The [`AccountCache`] holds the committed accounts for logins and checks; account statements
//!   ([`statements`]: CREATE/ALTER/DROP/RENAME USER, GRANT, REVOKE, SET PASSWORD, SHOW GRANTS)
//!   write the catalog and then reload it, bumping a version sessions compare before each check.
//! - Before a statement runs, [`required::needs`] reads from its syntax what it needs (SELECT on
//!   each table it reads, INSERT on its target, CREATE on a new table, DROP on a database …),
//!   and [`Privileges::check`] answers with MySQL's errors: 1142 for a table, 1044 for a database,
//!   1227 for a global privilege. Views are checked by name (the definer's rights, MySQL's
//!   default), before they are expanded. An account with every privilege skips the walk.

pub mod required;
pub mod statements;
pub mod store;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::SqlError;

/// One bit per privilege.
pub type Privs = u64;

macro_rules! privileges {
    ($($name:ident = $bit:expr, $text:expr;)*) => {
        $(pub const $name: Privs = 1 << $bit;)*
        /// Every privilege with its SQL name, in MySQL's order (SHOW GRANTS lists them so).
        pub const NAMES: &[(Privs, &str)] = &[$(($name, $text)),*];
    };
}

privileges! {
    SELECT = 0, "SELECT";
    INSERT = 1, "INSERT";
    UPDATE = 2, "UPDATE";
    DELETE = 3, "DELETE";
    CREATE = 4, "CREATE";
    DROP = 5, "DROP";
    RELOAD = 6, "RELOAD";
    SHUTDOWN = 7, "SHUTDOWN";
    PROCESS = 8, "PROCESS";
    FILE = 9, "FILE";
    REFERENCES = 10, "REFERENCES";
    INDEX = 11, "INDEX";
    ALTER = 12, "ALTER";
    SHOW_DATABASES = 13, "SHOW DATABASES";
    SUPER = 14, "SUPER";
    CREATE_TEMPORARY_TABLES = 15, "CREATE TEMPORARY TABLES";
    LOCK_TABLES = 16, "LOCK TABLES";
    EXECUTE = 17, "EXECUTE";
    REPLICATION_SLAVE = 18, "REPLICATION SLAVE";
    REPLICATION_CLIENT = 19, "REPLICATION CLIENT";
    CREATE_VIEW = 20, "CREATE VIEW";
    SHOW_VIEW = 21, "SHOW VIEW";
    CREATE_ROUTINE = 22, "CREATE ROUTINE";
    ALTER_ROUTINE = 23, "ALTER ROUTINE";
    CREATE_USER = 24, "CREATE USER";
    EVENT = 25, "EVENT";
    TRIGGER = 26, "TRIGGER";
    CREATE_TABLESPACE = 27, "CREATE TABLESPACE";
    CREATE_ROLE = 28, "CREATE ROLE";
    DROP_ROLE = 29, "DROP ROLE";
    // Dynamic privileges (MySQL 8 / TiDB), global only, listed on their own SHOW GRANTS line.
    SYSTEM_VARIABLES_ADMIN = 40, "SYSTEM_VARIABLES_ADMIN";
    CONNECTION_ADMIN = 41, "CONNECTION_ADMIN";
    BACKUP_ADMIN = 42, "BACKUP_ADMIN";
    // Not part of ALL: granted with `WITH GRANT OPTION`.
    GRANT_OPTION = 63, "GRANT OPTION";
}

/// The plugin an account's stored hash serves (`mysql.user.plugin`).
pub const NATIVE_PLUGIN: &str = "mysql_native_password";

/// The static privileges `ALL` means at the global level.
pub const ALL_STATIC: Privs = (1 << 30) - 1;
/// The dynamic ones (global only).
pub const DYNAMIC: Privs = SYSTEM_VARIABLES_ADMIN | CONNECTION_ADMIN | BACKUP_ADMIN;
/// `ALL` at the global level.
pub const ALL_GLOBAL: Privs = ALL_STATIC | DYNAMIC;
/// What may be granted on a database (`db.*`).
pub const ALL_DB: Privs = SELECT
    | INSERT
    | UPDATE
    | DELETE
    | CREATE
    | DROP
    | REFERENCES
    | INDEX
    | ALTER
    | CREATE_TEMPORARY_TABLES
    | LOCK_TABLES
    | EXECUTE
    | CREATE_VIEW
    | SHOW_VIEW
    | CREATE_ROUTINE
    | ALTER_ROUTINE
    | EVENT
    | TRIGGER;
/// What may be granted on a table.
pub const ALL_TABLE: Privs = SELECT | INSERT | UPDATE | DELETE | CREATE | DROP | REFERENCES | INDEX | ALTER | CREATE_VIEW | SHOW_VIEW | TRIGGER;

/// A privilege's bit from its SQL name (`SELECT`, `create view`, `SYSTEM_VARIABLES_ADMIN`).
pub fn by_name(name: &str) -> Option<Privs> {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_uppercase();
    NAMES.iter().find(|(_, n)| *n == name).map(|(p, _)| *p)
}

/// `SELECT, INSERT` for a set of privileges (without GRANT OPTION); `ALL PRIVILEGES` when the set is
/// everything its level allows.
pub fn describe(privs: Privs, all: Privs) -> String {
    let privs = privs & !GRANT_OPTION;
    if privs == 0 {
        return "USAGE".into();
    }
    if privs & all == all {
        return "ALL PRIVILEGES".into();
    }
    NAMES.iter().filter(|(p, _)| privs & p != 0).map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
}

/// A user account and its grants.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Account {
    pub user: String,
    /// Host pattern, lower case.
    pub host: String,
    /// `*` + hex of `SHA1(SHA1(pw))` (MySQL's `authentication_string`); "" = no password.
    pub native_hash: String,
    /// Hex of `SHA256(SHA256(pw))`; "" = no password, or a native hash given with `AS`.
    pub sha2_hash: String,
    #[serde(default)]
    pub locked: bool,
    /// `WITH MAX_USER_CONNECTIONS n` (0 = no limit of its own).
    #[serde(default)]
    pub max_user_connections: u32,
    pub global: Privs,
    /// Database-level grants by lower-case name.
    pub dbs: BTreeMap<String, Privs>,
    /// Table-level grants by lower-case `db\0table`.
    pub tables: BTreeMap<String, Privs>,
}

pub fn table_key(db: &str, table: &str) -> String {
    format!("{}\0{}", db.to_lowercase(), table.to_lowercase())
}

impl Account {
    /// An account with a password and no grants.
    pub fn new(user: &str, host: &str, password: &str) -> Account {
        let mut a = Account { user: user.to_string(), host: host.to_lowercase(), ..Default::default() };
        a.set_password(password);
        a
    }

    pub fn set_password(&mut self, password: &str) {
        if password.is_empty() {
            self.native_hash.clear();
            self.sha2_hash.clear();
        } else {
            self.native_hash = format!("*{}", to_hex(&embedb_wire::native_password_hash(password)).to_uppercase());
            self.sha2_hash = to_hex(&embedb_wire::caching_sha2_password_hash(password));
        }
    }

    /// Whether `response` (the client's proof for `plugin`) matches the stored password.
    pub fn verify(&self, plugin: &str, scramble: &[u8], response: &[u8]) -> bool {
        let empty = response.is_empty() || response == [0];
        if self.native_hash.is_empty() {
            return empty;
        }
        match plugin {
            embedb_wire::plugins::NATIVE_PASSWORD => {
                let Ok(h) = from_hex(&self.native_hash[1..]) else { return false };
                let Ok(h) = <[u8; 20]>::try_from(h) else { return false };
                embedb_wire::verify_native_password_hash(&h, scramble, response)
            }
            embedb_wire::plugins::CACHING_SHA2_PASSWORD => {
                let Ok(h) = from_hex(&self.sha2_hash) else { return false };
                let Ok(h) = <[u8; 32]>::try_from(h) else { return false };
                embedb_wire::verify_caching_sha2_password_hash(&h, scramble, response)
            }
            _ => false,
        }
    }

    /// `'user'@'host'`, as MySQL's messages quote an account.
    pub fn quoted(&self) -> String {
        quoted(&self.user, &self.host)
    }

    fn db(&self, db: &str) -> Privs {
        self.dbs.get(&db.to_lowercase()).copied().unwrap_or(0)
    }

    fn table(&self, db: &str, table: &str) -> Privs {
        if self.tables.is_empty() {
            return 0;
        }
        self.tables.get(&table_key(db, table)).copied().unwrap_or(0)
    }

    /// Privileges that hold on `db`.`table` from any level.
    pub fn on_table(&self, db: &str, table: &str) -> Privs {
        self.global | self.db(db) | self.table(db, table)
    }

    /// Privileges that hold on all of `db`.
    pub fn on_db(&self, db: &str) -> Privs {
        self.global | self.db(db)
    }

    /// Whether the account holds anything at all in `db` (what USE and SHOW DATABASES ask).
    pub fn sees_db(&self, db: &str) -> bool {
        if self.global & !GRANT_OPTION & ALL_STATIC != 0 || self.db(db) != 0 {
            return true;
        }
        let prefix = format!("{}\0", db.to_lowercase());
        self.tables.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)).any(|(_, p)| *p != 0)
    }

    /// Whether the account holds anything on `db`.`table` (what SHOW TABLES and DESCRIBE ask).
    pub fn sees_table(&self, db: &str, table: &str) -> bool {
        self.on_table(db, table) & !GRANT_OPTION & ALL_STATIC != 0
    }

    /// Whether every static privilege is held globally: such an account skips the checks.
    pub fn is_superuser(&self) -> bool {
        self.global & ALL_GLOBAL == ALL_GLOBAL
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn from_hex(s: &str) -> Result<Vec<u8>, ()> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return Err(());
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| ())).collect()
}

pub fn quoted(user: &str, host: &str) -> String {
    format!("'{}'@'{}'", user.replace('\'', "''"), host.replace('\'', "''"))
}

/// Whether a client at `client` (an IP address, or `localhost` in-process) matches the account
/// host pattern `pattern` (`%` any run, `_` one character; `localhost` means the loopback).
pub fn host_matches(pattern: &str, client: &str) -> bool {
    let loopback = |h: &str| matches!(h, "localhost" | "127.0.0.1" | "::1" | "::ffff:127.0.0.1");
    if loopback(pattern) && loopback(client) {
        return true;
    }
    like(pattern.as_bytes(), client.to_ascii_lowercase().as_bytes())
}

fn like(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'%') => (0..=s.len()).any(|i| like(&p[1..], &s[i..])),
        Some(b'_') => !s.is_empty() && like(&p[1..], &s[1..]),
        Some(c) => s.first() == Some(c) && like(&p[1..], &s[1..]),
    }
}

/// How specific a host pattern is: exact hosts first, then patterns whose first wildcard comes
/// later, `%` last (MySQL's order for picking an account).
fn specificity(host: &str) -> (bool, std::cmp::Reverse<usize>) {
    match host.find(['%', '_']) {
        None => (false, std::cmp::Reverse(0)),
        Some(at) => (true, std::cmp::Reverse(at)),
    }
}

/// The committed accounts.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    /// Most specific host first.
    pub list: Vec<Arc<Account>>,
}

impl Accounts {
    pub fn new(mut list: Vec<Account>) -> Accounts {
        list.sort_by(|a, b| specificity(&a.host).cmp(&specificity(&b.host)).then_with(|| a.host.cmp(&b.host)).then_with(|| a.user.cmp(&b.user)));
        Accounts { list: list.into_iter().map(Arc::new).collect() }
    }

    /// The account a login as `user` from `client` uses.
    pub fn for_login(&self, user: &str, client: &str) -> Option<Arc<Account>> {
        self.list.iter().find(|a| a.user == user && host_matches(&a.host, client)).cloned()
    }

    /// The account named exactly `'user'@'host'`.
    pub fn get(&self, user: &str, host: &str) -> Option<Arc<Account>> {
        self.list.iter().find(|a| a.user == user && a.host.eq_ignore_ascii_case(host)).cloned()
    }
}

/// Accounts as last committed, for logins and checks, with a version that moves on each change.
#[derive(Default)]
pub struct AccountCache {
    accounts: RwLock<Arc<Accounts>>,
    version: AtomicU64,
}

impl AccountCache {
    pub fn current(&self) -> Arc<Accounts> {
        self.accounts.read().clone()
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn replace(&self, accounts: Accounts) {
        *self.accounts.write() = Arc::new(accounts);
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

/// One thing a statement needs.
#[derive(Clone, Debug, PartialEq)]
pub enum Need {
    /// Every privilege in the set on `db`.`table`.
    Table { db: String, table: String, privs: Privs },
    /// Every privilege in the set on all of `db`.
    Db { db: String, privs: Privs },
    /// Any privilege at all in `db` (USE).
    AnyInDb { db: String },
    /// Any one of the set, globally.
    Global { any_of: Privs },
}

/// A session's view of its own account: who it is and what it may do.
#[derive(Clone, Debug)]
pub struct Privileges {
    pub user: String,
    /// The account's host pattern (CURRENT_USER()'s host).
    pub host: String,
    /// The account as of `version`; None once it was dropped.
    pub account: Option<Arc<Account>>,
    pub version: u64,
}

impl Privileges {
    pub fn is_superuser(&self) -> bool {
        self.account.as_ref().is_some_and(|a| a.is_superuser())
    }

    fn on_table(&self, db: &str, table: &str) -> Privs {
        self.account.as_ref().map_or(0, |a| a.on_table(db, table))
    }

    pub fn global(&self) -> Privs {
        self.account.as_ref().map_or(0, |a| a.global)
    }

    pub fn has_global(&self, any_of: Privs) -> bool {
        self.global() & any_of != 0
    }

    pub fn sees_db(&self, db: &str) -> bool {
        is_open_schema(db) || self.account.as_ref().is_some_and(|a| a.sees_db(db))
    }

    pub fn sees_table(&self, db: &str, table: &str) -> bool {
        is_open_schema(db) || self.account.as_ref().is_some_and(|a| a.sees_table(db, table))
    }

    /// Check every need; the first unmet one gives MySQL's error.
    pub fn check(&self, needs: &[Need]) -> Result<(), SqlError> {
        if self.is_superuser() {
            return Ok(());
        }
        for need in needs {
            match need {
                Need::Table { db, table, privs } => {
                    let have = self.on_table(db, table);
                    if let Some(missing) = NAMES.iter().find(|(p, _)| privs & p != 0 && have & p == 0) {
                        return Err(self.table_denied(missing.1, table));
                    }
                }
                Need::Db { db, privs } => {
                    let have = self.account.as_ref().map_or(0, |a| a.on_db(db));
                    if have & privs != *privs {
                        return Err(self.db_denied(db));
                    }
                }
                Need::AnyInDb { db } => {
                    if !self.sees_db(db) {
                        return Err(self.db_denied(db));
                    }
                }
                Need::Global { any_of } => {
                    if !self.has_global(*any_of) {
                        return Err(global_denied(*any_of));
                    }
                }
            }
        }
        Ok(())
    }

    /// 1142: `SELECT command denied to user 'u'@'h' for table 't'`.
    pub fn table_denied(&self, command: &str, table: &str) -> SqlError {
        SqlError::new(1142, "42000", format!("{command} command denied to user {} for table '{table}'", quoted(&self.user, &self.host)))
    }

    /// 1044: `Access denied for user 'u'@'h' to database 'd'`.
    pub fn db_denied(&self, db: &str) -> SqlError {
        SqlError::new(1044, "42000", format!("Access denied for user {} to database '{db}'", quoted(&self.user, &self.host)))
    }
}

/// 1227: `Access denied; you need (at least one of) the SUPER privilege(s) for this operation`.
pub fn global_denied(any_of: Privs) -> SqlError {
    let names: Vec<&str> = NAMES.iter().filter(|(p, _)| any_of & p != 0).map(|(_, n)| *n).collect();
    SqlError::new(1227, "42000", format!("Access denied; you need (at least one of) the {} privilege(s) for this operation", names.join(" or ")))
}

/// Schemas every account may read (their rows are filtered to what the account sees).
pub fn is_open_schema(db: &str) -> bool {
    db.eq_ignore_ascii_case("information_schema") || db.eq_ignore_ascii_case("performance_schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_mysql_patterns() {
        assert!(host_matches("%", "10.1.2.3"));
        assert!(host_matches("10.1.%", "10.1.2.3"));
        assert!(!host_matches("10.2.%", "10.1.2.3"));
        assert!(host_matches("localhost", "127.0.0.1"));
        assert!(host_matches("127.0.0.1", "localhost"));
        assert!(host_matches("10.1.2._", "10.1.2.3"));
        assert!(!host_matches("localhost", "10.1.2.3"));
    }

    #[test]
    fn the_most_specific_host_wins() {
        let accts = Accounts::new(vec![Account::new("bob", "%", "a"), Account::new("bob", "localhost", "b"), Account::new("bob", "10.%", "c")]);
        assert_eq!(accts.for_login("bob", "127.0.0.1").unwrap().host, "localhost");
        assert_eq!(accts.for_login("bob", "10.0.0.1").unwrap().host, "10.%");
        assert_eq!(accts.for_login("bob", "192.168.0.1").unwrap().host, "%");
        assert!(accts.for_login("eve", "127.0.0.1").is_none());
    }

    #[test]
    fn passwords_are_hashed_and_verify() {
        let a = Account::new("bob", "%", "s3cret");
        assert!(!a.native_hash.contains("s3cret") && a.native_hash.starts_with('*') && a.native_hash.len() == 41);
        let scramble = [7u8; 20];
        let native = embedb_wire::scramble_native_password("s3cret", &scramble);
        assert!(a.verify("mysql_native_password", &scramble, &native));
        assert!(!a.verify("mysql_native_password", &scramble, &embedb_wire::scramble_native_password("other", &scramble)));
        let sha2 = embedb_wire::scramble_caching_sha2_password("s3cret", &scramble);
        assert!(a.verify("caching_sha2_password", &scramble, &sha2));
        assert!(!a.verify("caching_sha2_password", &scramble, &[]));
        let open = Account::new("anon", "%", "");
        assert!(open.verify("mysql_native_password", &scramble, &[]));
        assert!(!open.verify("mysql_native_password", &scramble, &native));
    }

    #[test]
    fn levels_add_up_and_errors_name_the_privilege() {
        let mut a = Account::new("bob", "%", "");
        a.dbs.insert("app".into(), SELECT);
        a.tables.insert(table_key("app", "t"), INSERT);
        let p = Privileges { user: "bob".into(), host: "%".into(), account: Some(Arc::new(a)), version: 0 };
        assert!(p.check(&[Need::Table { db: "app".into(), table: "t".into(), privs: SELECT | INSERT }]).is_ok());
        let e = p.check(&[Need::Table { db: "app".into(), table: "u".into(), privs: INSERT }]).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (1142, "INSERT command denied to user 'bob'@'%' for table 'u'"));
        assert_eq!(p.check(&[Need::Db { db: "other".into(), privs: CREATE }]).unwrap_err().code, 1044);
        assert!(p.check(&[Need::AnyInDb { db: "app".into() }]).is_ok());
        let e = p.check(&[Need::Global { any_of: SUPER | SYSTEM_VARIABLES_ADMIN }]).unwrap_err();
        assert_eq!(e.message, "Access denied; you need (at least one of) the SUPER or SYSTEM_VARIABLES_ADMIN privilege(s) for this operation");
        assert_eq!(describe(ALL_DB, ALL_DB), "ALL PRIVILEGES");
        assert_eq!(describe(SELECT | CREATE_VIEW | GRANT_OPTION, ALL_DB), "SELECT, CREATE VIEW");
        assert_eq!(by_name("create  view"), Some(CREATE_VIEW));
    }
}
