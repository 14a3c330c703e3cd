//! Statements that write, sent to a reader, run on the writer; the client may connect anywhere.
//!
//! A reader answers reads from its own copy. For anything else ([`needs_writer`]) the
//! connection's [`Forwarder`] opens a connection of its own to the writer, logged in as
//! `embedb.forward:<user>@<host>` with the cluster's secret, so the writer runs the statement
//! under the client's account and privileges. The session's state travels first: its `SET`s (in
//! order) and its current database. The writer's answers go back to the client as they came.
//!
//! Transactions: once the writer reports a transaction open for this session (`BEGIN` then a
//! write, or a write with autocommit off), every statement goes there until it ends, so the
//! transaction reads its own uncommitted writes. Temporary tables, named locks and `LOCK TABLES`
//! live on the writer's side, so a session that makes one stays there for good.
//!
//! Read-your-writes: when a forwarded statement leaves no transaction open, the reader asks the
//! writer for its newest commit and waits until its copy has applied it before it answers; the
//! session's next read, here, sees the write.

use std::sync::Arc;
use std::time::Duration;

use embedb_wire::client::Client;
use embedb_wire::{ErrorInfo, Response};

use super::Cluster;

/// How long a forwarded statement waits for a writer to exist (failover in progress).
const WRITER_WAIT: Duration = Duration::from_secs(20);
/// How long a reader waits for its copy to apply a forwarded commit before answering anyway.
const APPLY_WAIT: Duration = Duration::from_secs(10);
/// The login a forwarding node uses: this prefix, then `user@host` of the client.
pub const FORWARD_USER_PREFIX: &str = "embedb.forward:";
/// The writer's newest commit, as the status variable a forwarding reader reads.
pub const APPLIED_STATUS: &str = "Embedb_cluster_applied";

/// The first keyword of a statement, after comments and opening parentheses, upper case.
fn first_keyword(sql: &str) -> String {
    let t = sql.trim_start();
    let mut s = t;
    loop {
        s = s.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(rest) = s.strip_prefix("/*") {
            match rest.find("*/") {
                Some(end) => s = &rest[end + 2..],
                None => return String::new(),
            }
        } else if s.starts_with("--") || s.starts_with('#') {
            match s.find('\n') {
                Some(end) => s = &s[end + 1..],
                None => return String::new(),
            }
        } else {
            break;
        }
    }
    s.chars().take_while(|c| c.is_ascii_alphabetic() || *c == '_').collect::<String>().to_ascii_uppercase()
}

/// Whether one statement must run on the writer. Reads (`SELECT` without a locking clause,
/// `SHOW`, `EXPLAIN` of a read, …), session `SET`s and transaction control stay here;
/// everything else (writes, DDL, account statements, `SET GLOBAL`, SQL `PREPARE`/`EXECUTE`,
/// what cannot be told apart) goes to the writer.
pub fn needs_writer(sql: &str) -> bool {
    let sql = crate::sql::parser::expand_executable_comments(sql);
    let upper = sql.to_ascii_uppercase();
    match first_keyword(&sql).as_str() {
        "" => false,
        "SELECT" | "WITH" | "VALUES" | "TABLE" => {
            // A locking read, a read that writes a file, or `WITH … UPDATE/DELETE`.
            match crate::sql::parser::parse_one(&sql) {
                Ok(datafusion::sql::sqlparser::ast::Statement::Query(q)) => !q.locks.is_empty() || upper.contains("GET_LOCK") || upper.contains(" INTO OUTFILE"),
                Ok(_) => true,
                Err(_) => upper.contains(" FOR UPDATE") || upper.contains(" FOR SHARE") || upper.contains("LOCK IN SHARE MODE"),
            }
        }
        "SHOW" | "DESC" | "DESCRIBE" | "HELP" | "USE" => false,
        "EXPLAIN" => upper.contains("ANALYZE") && ["INSERT", "UPDATE", "DELETE", "REPLACE"].iter().any(|w| upper.contains(w)),
        "SET" => upper.contains("GLOBAL") || upper.contains("PERSIST") || upper.contains("PASSWORD") || upper.contains("DEFAULT ROLE"),
        "BEGIN" | "START" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" => false,
        _ => true,
    }
}

/// Statements after which the session's state lives on the writer for good.
fn pins_session(sql: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    upper.contains("TEMPORARY") || upper.contains("GET_LOCK") || first_keyword(sql) == "LOCK"
}

/// One client connection's link to the writer (see the module docs).
#[derive(Default)]
pub struct Forwarder {
    /// The writer's address and the connection to it.
    link: Option<(String, Client)>,
    /// The writer holds an open transaction of this session.
    pub in_txn: bool,
    /// The session's state lives on the writer for good.
    pub pinned: bool,
    /// The session's `SET` statements, replayed on a new link.
    sets: Vec<String>,
    /// The link's current database.
    link_db: Option<String>,
}

fn unreachable_writer(why: impl std::fmt::Display) -> ErrorInfo {
    ErrorInfo::new(
        8027,
        "HY000",
        format!("this node is a reader and could not reach the cluster's writer ({why}); the statement's outcome is unknown if it was sent: check, then retry"),
    )
}

impl Forwarder {
    /// Whether the next statement goes to the writer whatever it is.
    pub fn engaged(&self) -> bool {
        self.in_txn || self.pinned
    }

    /// Remembers a session `SET` that ran here, for the writer's side of the session.
    pub fn remember_set(&mut self, sql: &str) {
        if first_keyword(sql) == "SET" && self.sets.len() < 256 {
            self.sets.push(sql.to_string());
        }
    }

    /// Runs `sql` on the writer. `user`/`host` name the client's account; `db` is the session's
    /// current database; `begin` opens a transaction first (the session had one open here).
    pub async fn run(&mut self, cluster: &Arc<Cluster>, user: &str, host: &str, db: Option<&str>, begin: bool, sql: &str) -> Vec<Response> {
        match self.try_run(cluster, user, host, db, begin, sql).await {
            Ok(r) => r,
            Err(e) => {
                // The link is gone (the writer died or stepped down): the next statement opens a
                // new one to whoever is the writer then; an open transaction there is lost.
                self.link = None;
                let was_txn = std::mem::take(&mut self.in_txn);
                let mut info = unreachable_writer(e);
                if was_txn {
                    info.message.push_str("; the open transaction was rolled back");
                }
                vec![Response::Error(info)]
            }
        }
    }

    async fn try_run(&mut self, cluster: &Arc<Cluster>, user: &str, host: &str, db: Option<&str>, begin: bool, sql: &str) -> std::io::Result<Vec<Response>> {
        let addr = match &self.link {
            Some((addr, _)) => addr.clone(),
            None => cluster.writer_address(WRITER_WAIT).await.ok_or_else(|| std::io::Error::other("no node holds the writer lease"))?,
        };
        if self.link.is_none() {
            let secret = cluster.secret().ok_or_else(|| std::io::Error::other("the cluster's forwarding secret has not reached this node yet"))?;
            let login = format!("{FORWARD_USER_PREFIX}{user}@{host}");
            let mut client = tokio::time::timeout(Duration::from_secs(5), Client::connect(&addr, &login, &secret, None))
                .await
                .map_err(|_| std::io::Error::other(format!("connecting to {addr} timed out")))??;
            for set in &self.sets {
                // A SET that failed here failed for the client too; the writer's answer is moot.
                client.query(set).await?;
            }
            self.link = Some((addr.clone(), client));
            self.link_db = None;
        }
        let (_, client) = self.link.as_mut().expect("opened above");
        if db.is_some() && db != self.link_db.as_deref() {
            let d = db.unwrap_or_default();
            client.query(&format!("USE `{}`", d.replace('`', "``"))).await?;
            self.link_db = Some(d.to_string());
        }
        if begin && !self.in_txn {
            client.query("BEGIN").await?;
        }
        let responses = client.query(sql).await?;
        self.in_txn = client.status & embedb_wire::status::IN_TRANS != 0;
        if pins_session(sql) && !responses.iter().any(|r| matches!(r, Response::Error(_))) {
            self.pinned = true;
        }
        if !self.in_txn {
            // Read-your-writes: wait for this node's copy to have the writer's newest commit.
            let seq = writer_applied(client).await?;
            if !cluster.wait_applied(seq, APPLY_WAIT).await {
                tracing::warn!(seq, "this node's copy did not reach a forwarded commit in time");
            }
        }
        Ok(responses)
    }

    /// Closes the link (the client disconnected); an open transaction there rolls back.
    pub async fn close(&mut self) {
        if let Some((_, c)) = self.link.take() {
            c.quit().await;
        }
    }
}

async fn writer_applied(client: &mut Client) -> std::io::Result<u64> {
    let r = client.query(&format!("SHOW STATUS LIKE '{APPLIED_STATUS}'")).await?;
    for resp in r {
        if let Response::ResultSet { rows, .. } = resp {
            if let Some(embedb_wire::Value::Bytes(b)) = rows.first().and_then(|row| row.get(1)) {
                return Ok(String::from_utf8_lossy(b).parse().unwrap_or(0));
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stay_and_writes_go() {
        for read in [
            "SELECT 1",
            "  /* hint */ select * from t",
            "(SELECT 1) UNION (SELECT 2)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "SHOW TABLES",
            "DESC t",
            "EXPLAIN SELECT 1",
            "SET NAMES utf8mb4",
            "SET @a = 1",
            "SET SESSION sql_mode = ''",
            "BEGIN",
            "COMMIT",
            "USE test",
            "",
        ] {
            assert!(!needs_writer(read), "{read}");
        }
        for write in [
            "INSERT INTO t VALUES (1)",
            "update t set a = 1",
            "DELETE FROM t",
            "CREATE TABLE t (a INT)",
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t LOCK IN SHARE MODE",
            "SET GLOBAL tidb_embed_x = 1",
            "SET @@global.x = 1",
            "GRANT SELECT ON *.* TO u",
            "PREPARE s FROM 'INSERT INTO t VALUES (1)'",
            "/*!40101 ALTER TABLE t ADD c INT */",
            "SELECT GET_LOCK('x', 1)",
            "ANALYZE TABLE t",
        ] {
            assert!(needs_writer(write), "{write}");
        }
    }
}
