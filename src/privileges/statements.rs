//! Account statements: `CREATE/ALTER/DROP/RENAME USER`, `SET PASSWORD`, `GRANT`, `REVOKE`,
//! `SHOW GRANTS`, `SHOW CREATE USER`, `FLUSH PRIVILEGES`.
//!
//! sqlparser does not know MySQL's account syntax (`'u'@'h'`, `db.*`), so these are read here
//! with a small tokenizer into an [`AccountStatement`], then [`apply`]-ed to a copy of the
//! accounts: the caller writes the changed ones in one transaction and reloads the cache.

use std::collections::BTreeMap;

use super::*;
use crate::error::{Result, SqlError};

/// `'user'@'host'` as written (host `%` when left out).
#[derive(Clone, Debug, PartialEq)]
pub struct UserSpec {
    pub user: String,
    pub host: String,
    /// `CURRENT_USER`/`USER()`: the session's own account.
    pub current: bool,
}

/// How an account proves who it is.
#[derive(Clone, Debug, PartialEq)]
pub enum Auth {
    Password(String),
    /// `IDENTIFIED WITH mysql_native_password AS '*HEX'` / `IDENTIFIED BY PASSWORD '*HEX'`.
    NativeHash(String),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    pub lock: Option<bool>,
    pub max_user_connections: Option<u32>,
}

/// Where a grant applies.
#[derive(Clone, Debug, PartialEq)]
pub enum Level {
    Global,
    Db(String),
    Table(String, String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum AccountStatement {
    CreateUser { if_not_exists: bool, users: Vec<(UserSpec, Option<Auth>)>, options: Options },
    AlterUser { if_exists: bool, users: Vec<(UserSpec, Option<Auth>)>, options: Options },
    DropUser { if_exists: bool, users: Vec<UserSpec> },
    RenameUser(Vec<(UserSpec, UserSpec)>),
    SetPassword { user: Option<UserSpec>, auth: Auth },
    /// `privs` already widened from ALL for the level; `GRANT OPTION` is a bit in it.
    Grant { privs: Privs, level: Level, users: Vec<UserSpec> },
    Revoke { privs: Privs, level: Level, users: Vec<UserSpec> },
    /// `REVOKE ALL PRIVILEGES, GRANT OPTION FROM u`.
    RevokeAll { users: Vec<UserSpec> },
    ShowGrants { user: Option<UserSpec> },
    ShowCreateUser { user: UserSpec },
    FlushPrivileges,
}

// ---- parsing ------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    /// A '…' or "…" string, unescaped.
    Str(String),
    /// A `…` identifier.
    Quoted(String),
    Punct(char),
}

fn tokenize(sql: &str) -> Result<Vec<Tok>> {
    let b: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut k = 0;
    while k < b.len() {
        let c = b[k];
        if c.is_whitespace() {
            k += 1;
        } else if c == '\'' || c == '"' || c == '`' {
            let mut s = String::new();
            k += 1;
            loop {
                let Some(&d) = b.get(k) else { return Err(SqlError::syntax("an unterminated quoted string")) };
                k += 1;
                if d == c {
                    if b.get(k) == Some(&c) {
                        s.push(c);
                        k += 1;
                        continue;
                    }
                    break;
                }
                if d == '\\' && c != '`' {
                    let Some(&e) = b.get(k) else { return Err(SqlError::syntax("an unterminated quoted string")) };
                    k += 1;
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        other => other,
                    });
                    continue;
                }
                s.push(d);
            }
            out.push(if c == '`' { Tok::Quoted(s) } else { Tok::Str(s) });
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = k;
            while k < b.len() && (b[k].is_alphanumeric() || b[k] == '_' || b[k] == '$') {
                k += 1;
            }
            out.push(Tok::Word(b[start..k].iter().collect()));
        } else if c == ';' && b[k + 1..].iter().all(|c| c.is_whitespace() || *c == ';') {
            break;
        } else {
            out.push(Tok::Punct(c));
            k += 1;
        }
    }
    Ok(out)
}

struct P {
    toks: Vec<Tok>,
    at: usize,
}

impl P {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.at), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn kw(&mut self, kw: &str) -> bool {
        let yes = self.peek_kw(kw);
        if yes {
            self.at += 1;
        }
        yes
    }
    fn kws(&mut self, kws: &[&str]) -> bool {
        let save = self.at;
        if kws.iter().all(|k| self.kw(k)) {
            return true;
        }
        self.at = save;
        false
    }
    fn expect_kw(&mut self, kw: &str) -> Result<()> {
        if self.kw(kw) {
            Ok(())
        } else {
            Err(self.error())
        }
    }
    fn punct(&mut self, c: char) -> bool {
        let yes = self.toks.get(self.at) == Some(&Tok::Punct(c));
        if yes {
            self.at += 1;
        }
        yes
    }
    fn done(&self) -> bool {
        self.at >= self.toks.len()
    }
    fn error(&self) -> SqlError {
        let near: Vec<String> = self.toks[self.at.min(self.toks.len())..]
            .iter()
            .take(6)
            .map(|t| match t {
                Tok::Word(w) => w.clone(),
                Tok::Str(s) => format!("'{s}'"),
                Tok::Quoted(s) => format!("`{s}`"),
                Tok::Punct(c) => c.to_string(),
            })
            .collect();
        SqlError::syntax(format!("near '{}'", near.join(" ")))
    }
    fn string(&mut self) -> Result<String> {
        match self.toks.get(self.at) {
            Some(Tok::Str(s)) => {
                self.at += 1;
                Ok(s.clone())
            }
            _ => Err(self.error()),
        }
    }
    /// A name: bare word, `quoted` or 'string'.
    fn name(&mut self) -> Result<String> {
        match self.toks.get(self.at) {
            Some(Tok::Word(s) | Tok::Str(s) | Tok::Quoted(s)) => {
                self.at += 1;
                Ok(s.clone())
            }
            _ => Err(self.error()),
        }
    }
    fn number(&mut self) -> Result<u32> {
        match self.toks.get(self.at) {
            Some(Tok::Word(w)) if w.chars().all(|c| c.is_ascii_digit()) => {
                self.at += 1;
                w.parse().map_err(|_| self.error())
            }
            _ => Err(self.error()),
        }
    }

    fn user(&mut self) -> Result<UserSpec> {
        if self.kw("current_user") || (self.peek_kw("user") && self.toks.get(self.at + 1) == Some(&Tok::Punct('(')) && self.kw("user")) {
            if self.punct('(') && !self.punct(')') {
                return Err(self.error());
            }
            return Ok(UserSpec { user: String::new(), host: String::new(), current: true });
        }
        let user = self.name()?;
        let host = if self.punct('@') { self.name()? } else { "%".into() };
        if user.chars().count() > 32 {
            return Err(SqlError::new(1470, "HY000", format!("String '{user}' is too long for user name (should be no longer than 32)")));
        }
        if host.chars().count() > 255 {
            return Err(SqlError::new(1470, "HY000", format!("String '{host}' is too long for host name (should be no longer than 255)")));
        }
        Ok(UserSpec { user, host: host.to_lowercase(), current: false })
    }

    fn users(&mut self) -> Result<Vec<UserSpec>> {
        let mut v = vec![self.user()?];
        while self.punct(',') {
            v.push(self.user()?);
        }
        Ok(v)
    }

    fn auth(&mut self) -> Result<Option<Auth>> {
        if !self.kw("identified") {
            return Ok(None);
        }
        if self.kw("with") {
            let plugin = self.name()?.to_ascii_lowercase();
            if !matches!(plugin.as_str(), "mysql_native_password" | "caching_sha2_password") {
                return Err(SqlError::new(1524, "HY000", format!("Plugin '{plugin}' is not loaded")));
            }
            if self.kw("as") {
                let hash = self.string()?;
                return native_hash(&plugin, hash).map(Some);
            }
            if !self.kw("by") {
                return Ok(Some(Auth::Password(String::new())));
            }
        } else {
            self.expect_kw("by")?;
            if self.kw("password") {
                return native_hash("mysql_native_password", self.string()?).map(Some);
            }
        }
        Ok(Some(Auth::Password(self.string()?)))
    }

    fn users_with_auth(&mut self) -> Result<Vec<(UserSpec, Option<Auth>)>> {
        let mut v = Vec::new();
        loop {
            let u = self.user()?;
            v.push((u, self.auth()?));
            if !self.punct(',') {
                return Ok(v);
            }
        }
    }

    fn options(&mut self) -> Result<Options> {
        let mut o = Options::default();
        while !self.done() {
            if self.kws(&["account", "lock"]) {
                o.lock = Some(true);
            } else if self.kws(&["account", "unlock"]) {
                o.lock = Some(false);
            } else if self.kws(&["require", "none"]) {
            } else if self.kw("with") {
                while self.peek_kw("max_user_connections") || self.peek_kw("max_queries_per_hour") || self.peek_kw("max_updates_per_hour") || self.peek_kw("max_connections_per_hour") {
                    let which = self.name()?.to_ascii_lowercase();
                    let n = self.number()?;
                    if which == "max_user_connections" {
                        o.max_user_connections = Some(n);
                    } else if n != 0 {
                        return Err(SqlError::unsupported(format!("{} (only MAX_USER_CONNECTIONS limits an account here)", which.to_uppercase())));
                    }
                }
            } else if self.kws(&["password", "expire"]) {
                if !(self.kw("default") || self.kw("never")) && self.kw("interval") {
                    self.number()?;
                    self.expect_kw("day")?;
                }
            } else if self.kws(&["password", "history"]) || self.kws(&["password", "reuse", "interval"]) {
                if !self.kw("default") {
                    self.number()?;
                    self.kw("day");
                }
            } else if self.kw("comment") || self.kw("attribute") {
                self.string()?;
            } else {
                return Err(self.error());
            }
        }
        Ok(o)
    }

    /// `priv [, priv]…` up to ON; ALL is widened once the level is known.
    fn privileges(&mut self) -> Result<(Privs, bool)> {
        let mut privs = 0;
        let mut all = false;
        loop {
            if self.kw("all") {
                self.kw("privileges");
                all = true;
            } else if self.kw("usage") {
            } else if self.kws(&["grant", "option"]) {
                privs |= GRANT_OPTION;
            } else {
                let mut words = Vec::new();
                while let Some(Tok::Word(w)) = self.toks.get(self.at) {
                    if w.eq_ignore_ascii_case("on") || w.eq_ignore_ascii_case("from") || w.eq_ignore_ascii_case("to") {
                        break;
                    }
                    words.push(w.clone());
                    self.at += 1;
                }
                if words.is_empty() {
                    return Err(self.error());
                }
                let name = words.join(" ");
                let Some(p) = by_name(&name) else {
                    if self.peek_kw("to") || self.peek_kw("from") {
                        return Err(SqlError::unsupported("roles (GRANT role TO user); grant privileges to the account instead"));
                    }
                    return Err(SqlError::unsupported(format!("privilege '{}'", name.to_uppercase())));
                };
                if self.peek_punct('(') {
                    return Err(SqlError::unsupported("column-level privileges (grant on the table instead)"));
                }
                privs |= p;
            }
            if !self.punct(',') {
                return Ok((privs, all));
            }
        }
    }

    fn peek_punct(&self, c: char) -> bool {
        self.toks.get(self.at) == Some(&Tok::Punct(c))
    }

    fn level(&mut self, current_db: Option<&str>) -> Result<Level> {
        self.kw("table");
        let star = |p: &mut P| p.punct('*');
        if star(self) {
            if self.punct('.') {
                if !star(self) {
                    return Err(self.error());
                }
                return Ok(Level::Global);
            }
            return current_db.map(|d| Level::Db(d.to_string())).ok_or_else(SqlError::no_db);
        }
        let first = self.name()?;
        if self.punct('.') {
            if star(self) {
                return Ok(Level::Db(first));
            }
            return Ok(Level::Table(first, self.name()?));
        }
        let db = current_db.ok_or_else(SqlError::no_db)?;
        Ok(Level::Table(db.to_string(), first))
    }
}

fn native_hash(plugin: &str, hash: String) -> Result<Auth> {
    let ok = plugin == "mysql_native_password" && (hash.is_empty() || (hash.len() == 41 && hash.starts_with('*') && from_hex(&hash[1..]).is_ok()));
    if !ok {
        return Err(SqlError::new(1827, "HY000", "The password hash doesn't have the expected format."));
    }
    Ok(Auth::NativeHash(hash.to_uppercase()))
}

/// An account statement, if `sql` is one (None for any other statement).
pub fn parse(sql: &str, current_db: Option<&str>) -> Option<Result<AccountStatement>> {
    let lower = sql.trim_start().to_ascii_lowercase();
    let head: Vec<&str> = lower.split_whitespace().take(3).collect();
    let is_account = match head.as_slice() {
        ["create" | "alter" | "drop" | "rename", "user", ..] => true,
        ["set", "password", ..] | ["grant", ..] | ["revoke", ..] | ["flush", "privileges", ..] => true,
        ["show", "grants", ..] | ["show", "create", "user"] => true,
        [s, ..] if s.starts_with("set") && lower.starts_with("set password") => true,
        _ => false,
    };
    if !is_account {
        return None;
    }
    Some(tokenize(sql).and_then(|toks| statement(&mut P { toks, at: 0 }, current_db)))
}

fn statement(p: &mut P, current_db: Option<&str>) -> Result<AccountStatement> {
    let s = if p.kws(&["create", "user"]) {
        let if_not_exists = p.kws(&["if", "not", "exists"]);
        let users = p.users_with_auth()?;
        AccountStatement::CreateUser { if_not_exists, users, options: p.options()? }
    } else if p.kws(&["alter", "user"]) {
        let if_exists = p.kws(&["if", "exists"]);
        let users = p.users_with_auth()?;
        AccountStatement::AlterUser { if_exists, users, options: p.options()? }
    } else if p.kws(&["drop", "user"]) {
        let if_exists = p.kws(&["if", "exists"]);
        AccountStatement::DropUser { if_exists, users: p.users()? }
    } else if p.kws(&["rename", "user"]) {
        let mut pairs = Vec::new();
        loop {
            let from = p.user()?;
            p.expect_kw("to")?;
            pairs.push((from, p.user()?));
            if !p.punct(',') {
                break;
            }
        }
        AccountStatement::RenameUser(pairs)
    } else if p.kws(&["set", "password"]) {
        let user = if p.kw("for") { Some(p.user()?) } else { None };
        if !p.punct('=') {
            return Err(p.error());
        }
        let auth = if p.kw("password") {
            if !p.punct('(') {
                return Err(p.error());
            }
            let pw = p.string()?;
            if !p.punct(')') {
                return Err(p.error());
            }
            Auth::Password(pw)
        } else {
            Auth::Password(p.string()?)
        };
        AccountStatement::SetPassword { user, auth }
    } else if p.kw("grant") {
        let (privs, all) = p.privileges()?;
        if !p.kw("on") {
            return Err(SqlError::unsupported("roles (GRANT role TO user); grant privileges to the account instead"));
        }
        let level = p.level(current_db)?;
        p.expect_kw("to")?;
        let users = p.users()?;
        if p.peek_kw("identified") {
            return Err(SqlError::new(1064, "42000", "GRANT … IDENTIFIED BY is not allowed; create the account with CREATE USER first"));
        }
        let mut privs = widen(privs, all, &level)?;
        if p.kws(&["with", "grant", "option"]) {
            privs |= GRANT_OPTION;
        }
        AccountStatement::Grant { privs, level, users }
    } else if p.kw("revoke") {
        let (privs, all) = p.privileges()?;
        if all && privs == GRANT_OPTION && p.kw("from") {
            return Ok(AccountStatement::RevokeAll { users: p.users()? }).and_then(|s| finish(p, s));
        }
        if !p.kw("on") {
            return Err(SqlError::unsupported("roles (REVOKE role FROM user)"));
        }
        let level = p.level(current_db)?;
        p.expect_kw("from")?;
        let users = p.users()?;
        AccountStatement::Revoke { privs: widen(privs, all, &level)?, level, users }
    } else if p.kws(&["show", "grants"]) {
        let user = if p.kw("for") { Some(p.user()?) } else { None };
        if p.kw("using") {
            return Err(SqlError::unsupported("roles (SHOW GRANTS … USING)"));
        }
        AccountStatement::ShowGrants { user }
    } else if p.kws(&["show", "create", "user"]) {
        AccountStatement::ShowCreateUser { user: p.user()? }
    } else if p.kws(&["flush", "privileges"]) {
        AccountStatement::FlushPrivileges
    } else {
        return Err(p.error());
    };
    finish(p, s)
}

fn finish(p: &P, s: AccountStatement) -> Result<AccountStatement> {
    if p.done() {
        Ok(s)
    } else {
        Err(p.error())
    }
}

/// ALL → everything the level allows; a privilege the level cannot hold is MySQL's error.
fn widen(privs: Privs, all: bool, level: &Level) -> Result<Privs> {
    let allowed = match level {
        Level::Global => ALL_GLOBAL,
        Level::Db(_) => ALL_DB,
        Level::Table(..) => ALL_TABLE,
    };
    let privs = if all { privs | allowed } else { privs };
    let bad = privs & !GRANT_OPTION & !allowed;
    if bad != 0 {
        return Err(match level {
            Level::Db(_) => SqlError::new(1221, "HY000", "Incorrect usage of DB GRANT and GLOBAL PRIVILEGES"),
            _ => SqlError::new(1144, "42000", "Illegal GRANT/REVOKE command; please consult the manual to see which privileges can be used"),
        });
    }
    Ok(privs)
}

// ---- applying -----------------------------------------------------------------------------------

/// What an applied statement produced.
pub enum Outcome {
    /// Accounts to write (key `(user, host)` → the account, None = delete) and notes to raise.
    Changed { write: BTreeMap<(String, String), Option<Account>>, notes: Vec<(u16, String)> },
    /// Lines of SHOW GRANTS / SHOW CREATE USER, under `header`.
    Lines { header: String, lines: Vec<String> },
    Nothing,
}

/// Apply `stmt` as the session `me` to `accounts`. `table_exists` answers for table-level grants.
pub fn apply(stmt: AccountStatement, me: &Privileges, accounts: &Accounts, table_exists: &dyn Fn(&str, &str) -> Result<bool>) -> Result<Outcome> {
    let mut work = Work { me, accounts, write: BTreeMap::new(), notes: Vec::new() };
    match stmt {
        AccountStatement::CreateUser { if_not_exists, users, options } => {
            work.need_create_user()?;
            let mut failed = Vec::new();
            for (u, auth) in users {
                let u = work.resolve(u);
                if work.account(&u).is_some() {
                    if if_not_exists {
                        work.notes.push((3163, format!("Authorization ID {} already exists.", quoted(&u.user, &u.host))));
                    } else {
                        failed.push(quoted(&u.user, &u.host));
                    }
                    continue;
                }
                let mut a = Account::new(&u.user, &u.host, "");
                set_auth(&mut a, auth);
                set_options(&mut a, &options);
                work.put(a);
            }
            if !failed.is_empty() {
                return Err(SqlError::new(1396, "HY000", format!("Operation CREATE USER failed for {}", failed.join(","))));
            }
        }
        AccountStatement::AlterUser { if_exists, users, options } => {
            let mut failed = Vec::new();
            for (u, auth) in users {
                let u = work.resolve(u);
                let own_password_only = u.user == me.user && u.host == me.host && options == Options::default();
                if !own_password_only {
                    work.need_create_user()?;
                }
                let Some(mut a) = work.account(&u) else {
                    if if_exists {
                        work.notes.push((3162, format!("Authorization ID {} does not exist.", quoted(&u.user, &u.host))));
                    } else {
                        failed.push(quoted(&u.user, &u.host));
                    }
                    continue;
                };
                set_auth(&mut a, auth);
                set_options(&mut a, &options);
                work.put(a);
            }
            if !failed.is_empty() {
                return Err(SqlError::new(1396, "HY000", format!("Operation ALTER USER failed for {}", failed.join(","))));
            }
        }
        AccountStatement::DropUser { if_exists, users } => {
            work.need_create_user()?;
            let mut failed = Vec::new();
            for u in users {
                let u = work.resolve(u);
                if work.account(&u).is_none() {
                    if if_exists {
                        work.notes.push((3162, format!("Authorization ID {} does not exist.", quoted(&u.user, &u.host))));
                    } else {
                        failed.push(quoted(&u.user, &u.host));
                    }
                    continue;
                }
                work.write.insert((u.user.clone(), u.host.clone()), None);
            }
            if !failed.is_empty() {
                return Err(SqlError::new(1396, "HY000", format!("Operation DROP USER failed for {}", failed.join(","))));
            }
        }
        AccountStatement::RenameUser(pairs) => {
            work.need_create_user()?;
            for (from, to) in pairs {
                let (from, to) = (work.resolve(from), work.resolve(to));
                let Some(mut a) = work.account(&from) else {
                    return Err(SqlError::new(1396, "HY000", format!("Operation RENAME USER failed for {}", quoted(&from.user, &from.host))));
                };
                if work.account(&to).is_some() {
                    return Err(SqlError::new(1396, "HY000", format!("Operation RENAME USER failed for {}", quoted(&to.user, &to.host))));
                }
                work.write.insert((from.user.clone(), from.host.clone()), None);
                a.user = to.user;
                a.host = to.host;
                work.put(a);
            }
        }
        AccountStatement::SetPassword { user, auth } => {
            let u = match user {
                Some(u) => work.resolve(u),
                None => UserSpec { user: me.user.clone(), host: me.host.clone(), current: false },
            };
            if !(u.user == me.user && u.host == me.host) {
                work.need_create_user()?;
            }
            let Some(mut a) = work.account(&u) else {
                return Err(SqlError::new(1133, "28000", "Can't find any matching row in the user table"));
            };
            set_auth(&mut a, Some(auth));
            work.put(a);
        }
        AccountStatement::Grant { privs, level, users } => {
            work.may_grant(privs, &level, "GRANT")?;
            if let Level::Table(db, t) = &level {
                if !table_exists(db, t)? {
                    return Err(SqlError::no_such_table(db, t));
                }
            }
            for u in users {
                let u = work.resolve(u);
                let Some(mut a) = work.account(&u) else {
                    return Err(SqlError::new(1410, "42000", "You are not allowed to create a user with GRANT"));
                };
                *slot(&mut a, &level) |= privs;
                work.put(a);
            }
        }
        AccountStatement::Revoke { privs, level, users } => {
            work.may_grant(privs, &level, "REVOKE")?;
            for u in users {
                let u = work.resolve(u);
                let Some(mut a) = work.account(&u) else {
                    return Err(no_such_grant(&u, &level));
                };
                let s = slot(&mut a, &level);
                if *s & privs == 0 && privs != 0 {
                    return Err(no_such_grant(&u, &level));
                }
                *s &= !privs;
                prune(&mut a);
                work.put(a);
            }
        }
        AccountStatement::RevokeAll { users } => {
            work.need_create_user()?;
            for u in users {
                let u = work.resolve(u);
                let Some(mut a) = work.account(&u) else {
                    return Err(SqlError::new(1396, "HY000", format!("Operation REVOKE failed for {}", quoted(&u.user, &u.host))));
                };
                a.global = 0;
                a.dbs.clear();
                a.tables.clear();
                work.put(a);
            }
        }
        AccountStatement::ShowGrants { user } => {
            let u = match user {
                Some(u) => work.resolve(u),
                None => UserSpec { user: me.user.clone(), host: me.host.clone(), current: false },
            };
            let own = u.user == me.user && u.host == me.host;
            if !own && me.account.as_ref().map_or(0, |a| a.on_db("mysql")) & SELECT == 0 {
                return Err(me.db_denied("mysql"));
            }
            let Some(a) = work.account(&u) else {
                return Err(SqlError::new(1141, "42000", format!("There is no such grant defined for user '{}' on host '{}'", u.user, u.host)));
            };
            return Ok(Outcome::Lines { header: format!("Grants for {}@{}", a.user, a.host), lines: grants_of(&a) });
        }
        AccountStatement::ShowCreateUser { user } => {
            let u = work.resolve(user);
            let own = u.user == me.user && u.host == me.host;
            if !own && me.account.as_ref().map_or(0, |a| a.on_db("mysql")) & SELECT == 0 {
                return Err(me.db_denied("mysql"));
            }
            let Some(a) = work.account(&u) else {
                return Err(SqlError::new(1396, "HY000", format!("Operation SHOW CREATE USER failed for {}", quoted(&u.user, &u.host))));
            };
            return Ok(Outcome::Lines { header: format!("CREATE USER for {}@{}", a.user, a.host), lines: vec![create_user_of(&a)] });
        }
        AccountStatement::FlushPrivileges => {
            if !me.has_global(RELOAD) {
                return Err(global_denied(RELOAD));
            }
            return Ok(Outcome::Nothing);
        }
    }
    Ok(Outcome::Changed { write: work.write, notes: work.notes })
}

struct Work<'a> {
    me: &'a Privileges,
    accounts: &'a Accounts,
    write: BTreeMap<(String, String), Option<Account>>,
    notes: Vec<(u16, String)>,
}

impl Work<'_> {
    fn resolve(&self, u: UserSpec) -> UserSpec {
        if u.current {
            UserSpec { user: self.me.user.clone(), host: self.me.host.clone(), current: false }
        } else {
            u
        }
    }

    /// The account as this statement has left it so far.
    fn account(&self, u: &UserSpec) -> Option<Account> {
        match self.write.get(&(u.user.clone(), u.host.clone())) {
            Some(a) => a.clone(),
            None => self.accounts.get(&u.user, &u.host).map(|a| (*a).clone()),
        }
    }

    fn put(&mut self, a: Account) {
        self.write.insert((a.user.clone(), a.host.clone()), Some(a));
    }

    fn need_create_user(&self) -> Result<()> {
        if self.me.has_global(CREATE_USER) {
            Ok(())
        } else {
            Err(global_denied(CREATE_USER))
        }
    }

    /// A grantor needs GRANT OPTION and every privilege it passes on, at the level.
    fn may_grant(&self, privs: Privs, level: &Level, command: &str) -> Result<()> {
        let have = match (&self.me.account, level) {
            (None, _) => 0,
            (Some(a), Level::Global) => a.global,
            (Some(a), Level::Db(d)) => a.on_db(d),
            (Some(a), Level::Table(d, t)) => a.on_table(d, t),
        };
        if have & GRANT_OPTION != 0 && have & privs == privs {
            return Ok(());
        }
        Err(match level {
            Level::Global => global_denied(GRANT_OPTION),
            Level::Db(d) => self.me.db_denied(d),
            Level::Table(_, t) => self.me.table_denied(command, t),
        })
    }
}

fn set_auth(a: &mut Account, auth: Option<Auth>) {
    match auth {
        None => {}
        Some(Auth::Password(pw)) => a.set_password(&pw),
        Some(Auth::NativeHash(h)) => {
            a.native_hash = h;
            a.sha2_hash.clear();
        }
    }
}

fn set_options(a: &mut Account, o: &Options) {
    if let Some(l) = o.lock {
        a.locked = l;
    }
    if let Some(n) = o.max_user_connections {
        a.max_user_connections = n;
    }
}

fn slot<'a>(a: &'a mut Account, level: &Level) -> &'a mut Privs {
    match level {
        Level::Global => &mut a.global,
        Level::Db(d) => a.dbs.entry(d.to_lowercase()).or_insert(0),
        Level::Table(d, t) => a.tables.entry(table_key(d, t)).or_insert(0),
    }
}

/// Drop levels left with nothing (SHOW GRANTS then does not list them).
fn prune(a: &mut Account) {
    a.dbs.retain(|_, p| *p != 0);
    a.tables.retain(|_, p| *p != 0);
}

fn no_such_grant(u: &UserSpec, level: &Level) -> SqlError {
    match level {
        Level::Table(_, t) => SqlError::new(1147, "42000", format!("There is no such grant defined for user '{}' on host '{}' on table '{t}'", u.user, u.host)),
        _ => SqlError::new(1141, "42000", format!("There is no such grant defined for user '{}' on host '{}'", u.user, u.host)),
    }
}

fn backquote(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// SHOW GRANTS' lines for an account, TiDB's form.
pub fn grants_of(a: &Account) -> Vec<String> {
    let to = a.quoted();
    let with = |p: Privs| if p & GRANT_OPTION != 0 { " WITH GRANT OPTION" } else { "" };
    let static_part = a.global & ALL_STATIC;
    let shown = if static_part == 0 { "USAGE".to_string() } else { describe(static_part, ALL_STATIC) };
    let mut lines = vec![format!("GRANT {shown} ON *.* TO {to}{}", with(a.global))];
    let dynamic = a.global & DYNAMIC;
    if dynamic != 0 && static_part != ALL_STATIC {
        lines.push(format!("GRANT {} ON *.* TO {to}{}", describe(dynamic, ALL_GLOBAL), with(a.global)));
    }
    for (db, p) in &a.dbs {
        lines.push(format!("GRANT {} ON {}.* TO {to}{}", describe(*p, ALL_DB), backquote(db), with(*p)));
    }
    for (key, p) in &a.tables {
        let (db, t) = key.split_once('\0').unwrap_or(("", key));
        lines.push(format!("GRANT {} ON {}.{} TO {to}{}", describe(*p, ALL_TABLE), backquote(db), backquote(t), with(*p)));
    }
    lines
}

/// SHOW CREATE USER's statement for an account.
pub fn create_user_of(a: &Account) -> String {
    let auth = if a.native_hash.is_empty() { String::new() } else { format!(" IDENTIFIED WITH 'mysql_native_password' AS '{}'", a.native_hash) };
    let limit = if a.max_user_connections > 0 { format!(" WITH MAX_USER_CONNECTIONS {}", a.max_user_connections) } else { String::new() };
    format!("CREATE USER {}{auth} REQUIRE NONE{limit} PASSWORD EXPIRE DEFAULT ACCOUNT {}", a.quoted(), if a.locked { "LOCK" } else { "UNLOCK" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(sql: &str) -> AccountStatement {
        parse(sql, Some("app")).expect("an account statement").unwrap()
    }

    fn u(user: &str, host: &str) -> UserSpec {
        UserSpec { user: user.into(), host: host.into(), current: false }
    }

    #[test]
    fn parses_the_account_statements() {
        assert_eq!(
            parse_ok("CREATE USER IF NOT EXISTS 'bob'@'%' IDENTIFIED BY 'pw', carol IDENTIFIED BY \"x\" WITH MAX_USER_CONNECTIONS 3 ACCOUNT LOCK"),
            AccountStatement::CreateUser {
                if_not_exists: true,
                users: vec![(u("bob", "%"), Some(Auth::Password("pw".into()))), (u("carol", "%"), Some(Auth::Password("x".into())))],
                options: Options { lock: Some(true), max_user_connections: Some(3) },
            }
        );
        assert_eq!(
            parse_ok("GRANT SELECT, INSERT ON app.* TO 'bob'@'LocalHost' WITH GRANT OPTION"),
            AccountStatement::Grant { privs: SELECT | INSERT | GRANT_OPTION, level: Level::Db("app".into()), users: vec![u("bob", "localhost")] }
        );
        assert_eq!(parse_ok("GRANT ALL ON t TO bob"), AccountStatement::Grant { privs: ALL_TABLE, level: Level::Table("app".into(), "t".into()), users: vec![u("bob", "%")] });
        assert_eq!(parse_ok("grant create view on *.* to `bob`@`%`"), AccountStatement::Grant { privs: CREATE_VIEW, level: Level::Global, users: vec![u("bob", "%")] });
        assert_eq!(parse_ok("REVOKE ALL PRIVILEGES, GRANT OPTION FROM bob"), AccountStatement::RevokeAll { users: vec![u("bob", "%")] });
        assert_eq!(parse_ok("SHOW GRANTS FOR CURRENT_USER()"), AccountStatement::ShowGrants { user: Some(UserSpec { user: "".into(), host: "".into(), current: true }) });
        assert_eq!(parse_ok("SET PASSWORD FOR bob = 'n'"), AccountStatement::SetPassword { user: Some(u("bob", "%")), auth: Auth::Password("n".into()) });
        assert_eq!(parse_ok("RENAME USER a TO b"), AccountStatement::RenameUser(vec![(u("a", "%"), u("b", "%"))]));
        assert!(parse("SELECT 1", None).is_none());
        assert_eq!(parse("GRANT SUPER ON app.* TO bob", None).unwrap().unwrap_err().code, 1221);
        assert_eq!(parse("GRANT EXECUTE ON app.t TO bob", None).unwrap().unwrap_err().code, 1144);
        assert_eq!(parse("GRANT SELECT (a) ON app.t TO bob", None).unwrap().unwrap_err().code, 1235);
        assert_eq!(parse("CREATE USER bob IDENTIFIED BY", None).unwrap().unwrap_err().code, 1064);
        assert_eq!(parse("GRANT SELECT ON t TO bob", None).unwrap().unwrap_err().code, 1046);
    }

    #[test]
    fn grants_round_trip_through_show_grants() {
        let root = Privileges { user: "root".into(), host: "%".into(), account: Some(Arc::new(Account { global: ALL_GLOBAL | GRANT_OPTION, ..Account::new("root", "%", "") })), version: 0 };
        let mut accounts = Accounts::new(vec![(*root.account.clone().unwrap()).clone()]);
        let yes = |_: &str, _: &str| Ok(true);
        for sql in ["CREATE USER bob IDENTIFIED BY 'pw'", "GRANT SELECT, INSERT ON app.* TO bob", "GRANT UPDATE ON app.t TO bob", "GRANT PROCESS ON *.* TO bob"] {
            let Outcome::Changed { write, .. } = apply(parse_ok(sql), &root, &accounts, &yes).unwrap() else { panic!() };
            let mut list: Vec<Account> = accounts.list.iter().map(|a| (**a).clone()).collect();
            for (_, a) in write {
                let a = a.unwrap();
                list.retain(|x| !(x.user == a.user && x.host == a.host));
                list.push(a);
            }
            accounts = Accounts::new(list);
        }
        let Outcome::Lines { lines, .. } = apply(parse_ok("SHOW GRANTS FOR bob"), &root, &accounts, &yes).unwrap() else { panic!() };
        assert_eq!(lines, ["GRANT PROCESS ON *.* TO 'bob'@'%'", "GRANT SELECT, INSERT ON `app`.* TO 'bob'@'%'", "GRANT UPDATE ON `app`.`t` TO 'bob'@'%'"]);
        let bob = Privileges { user: "bob".into(), host: "%".into(), account: accounts.get("bob", "%"), version: 0 };
        assert_eq!(apply(parse_ok("CREATE USER eve"), &bob, &accounts, &yes).err().unwrap().code, 1227);
        assert_eq!(apply(parse_ok("GRANT SELECT ON app.* TO bob"), &bob, &accounts, &yes).err().unwrap().code, 1044);
        assert_eq!(apply(parse_ok("SHOW GRANTS FOR root"), &bob, &accounts, &yes).err().unwrap().code, 1044);
        assert!(apply(parse_ok("SHOW GRANTS"), &bob, &accounts, &yes).is_ok());
        assert_eq!(apply(parse_ok("REVOKE DELETE ON app.* FROM bob"), &root, &accounts, &yes).err().unwrap().code, 1141);
    }
}
