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
/// The tracing target of the cluster's statement trace (`Connection::on_query` and each
/// forwarded statement here): enable with `--log-level info,embedb::cluster::stmt=debug`.
pub const STMT_TRACE: &str = "embedb::cluster::stmt";
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

/// Where one statement runs on a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Here: reads (`SELECT` without a locking clause, `SHOW`, `EXPLAIN` of a read, …) and
    /// transaction control outside a forwarded transaction.
    Read,
    /// Session state (`SET` of session or user variables, SQL `PREPARE`/`DEALLOCATE`): here, and
    /// on the writer's side of the session too, before its next statement there.
    State,
    /// SQL `EXECUTE name`: where the prepared statement's text would run.
    Execute(String),
    /// On the writer: writes, DDL, account statements, `SET GLOBAL`, savepoints, and whatever
    /// cannot be told apart.
    Write,
}

pub fn kind(sql: &str) -> Kind {
    let sql = crate::sql::parser::expand_executable_comments(sql);
    let upper = sql.to_ascii_uppercase();
    let read_if = |read: bool| if read { Kind::Read } else { Kind::Write };
    match first_keyword(&sql).as_str() {
        "" => Kind::Read,
        "SELECT" | "WITH" | "VALUES" | "TABLE" => {
            // A locking read, a read that writes a file, or `WITH … UPDATE/DELETE`.
            read_if(match crate::sql::parser::parse_one(&sql) {
                Ok(datafusion::sql::sqlparser::ast::Statement::Query(q)) => q.locks.is_empty() && !upper.contains("GET_LOCK") && !upper.contains("EMBEDDING_RETRY") && !upper.contains(" INTO OUTFILE"),
                Ok(_) => false,
                Err(_) => !(upper.contains(" FOR UPDATE") || upper.contains(" FOR SHARE") || upper.contains("LOCK IN SHARE MODE")),
            })
        }
        // BACKUP to a file reads a snapshot of this node's copy; a checkpoint backup (to s3://)
        // is taken by the writer.
        "BACKUP" => read_if(!upper.contains("S3://")),
        "SHOW" | "DESC" | "DESCRIBE" | "HELP" | "USE" => Kind::Read,
        "EXPLAIN" => read_if(!(upper.contains("ANALYZE") && ["INSERT", "UPDATE", "DELETE", "REPLACE"].iter().any(|w| upper.contains(w)))),
        "SET" if upper.contains("GLOBAL") || upper.contains("PERSIST") || upper.contains("PASSWORD") || upper.contains("DEFAULT ROLE") => Kind::Write,
        "SET" | "PREPARE" | "DEALLOCATE" => Kind::State,
        "DROP" if upper.trim_start().starts_with("DROP PREPARE") => Kind::State,
        "EXECUTE" => {
            let rest = sql.trim_start()["EXECUTE".len()..].trim_start();
            let name: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != ';').collect();
            Kind::Execute(name.trim_matches('`').to_ascii_lowercase())
        }
        "BEGIN" | "START" | "COMMIT" | "ROLLBACK" | "RELEASE" => Kind::Read,
        _ => Kind::Write,
    }
}

/// Whether a statement is a `SET` (one of `SET GLOBAL` runs on the writer, and here too).
pub fn is_set(sql: &str) -> bool {
    first_keyword(sql) == "SET"
}

/// Whether one statement must run on the writer (see [`Kind`]).
pub fn needs_writer(sql: &str) -> bool {
    kind(sql) == Kind::Write
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
    /// The session's state statements ([`Kind::State`]), in order; the link has the first
    /// `sent` of them.
    state: Vec<String>,
    sent: usize,
    /// The link's current database.
    link_db: Option<String>,
    /// LAST_INSERT_ID() on the writer's side after the last forwarded statement.
    pub last_insert_id: u64,
    /// The warnings of the last forwarded statement: (level, code, message).
    pub warnings: Vec<(String, u16, String)>,
    /// The statement being forwarded has been sent (its outcome is the writer's).
    statement_sent: bool,
}

/// State statements a session keeps for its link to the writer.
const MAX_STATE: usize = 1024;

/// The writer could not be reached for a statement. Sent or not decides the code: not sent,
/// nothing happened and a retry is safe (TiDB's 9005, storage unavailable); sent, it may have
/// taken effect (TiDB's 8229, result undetermined).
fn unreachable_writer(why: impl std::fmt::Display, sent: bool) -> ErrorInfo {
    if sent {
        ErrorInfo::new(
            crate::error::RESULT_UNDETERMINED,
            "HY000",
            format!("this node is a reader and lost the cluster's writer while it ran the statement ({why}); its outcome is unknown: check, then retry"),
        )
    } else {
        ErrorInfo::new(9005, "HY000", format!("this node is a reader and could not reach the cluster's writer ({why}); the statement was not run: retry"))
    }
}

impl Forwarder {
    /// Whether the next statement goes to the writer whatever it is.
    pub fn engaged(&self) -> bool {
        self.in_txn || self.pinned
    }

    /// Remembers a state statement that ran here, for the writer's side of the session;
    /// `sent`: it went to the writer too.
    pub fn remember(&mut self, sql: &str, sent: bool) {
        if self.state.len() >= MAX_STATE {
            // A session that keeps setting things: the oldest settings are likely overwritten.
            self.state.remove(0);
            self.sent = self.sent.saturating_sub(1);
        }
        self.state.push(sql.to_string());
        if sent && self.sent + 1 == self.state.len() {
            self.sent = self.state.len();
        }
    }

    /// Runs `sql` on the writer. `user`/`host` name the client's account; `db` is the session's
    /// current database; `begin` opens a transaction first (the session had one open here).
    pub async fn run(&mut self, cluster: &Arc<Cluster>, user: &str, host: &str, db: Option<&str>, begin: bool, sql: &str) -> Vec<Response> {
        // A writer that lost its lease (stopped, cut off) may never answer: give up once another
        // node holds the lease.
        let writer_now = cluster.view().writer;
        let watch = async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let w = cluster.view().writer;
                if w.is_some() && writer_now.is_some() && w != writer_now {
                    return;
                }
            }
        };
        let outcome = tokio::select! {
            r = self.try_run(cluster, user, host, db, begin, sql) => r,
            () = watch => Err(std::io::Error::other("the writer changed while the statement ran")),
        };
        match outcome {
            Ok(r) => r,
            Err(e) => {
                // The link is gone (the writer died or stepped down): the next statement opens a
                // new one to whoever is the writer then; an open transaction there is lost.
                self.link = None;
                let was_txn = std::mem::take(&mut self.in_txn);
                let mut info = unreachable_writer(e, std::mem::take(&mut self.statement_sent));
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
            let client = tokio::time::timeout(Duration::from_secs(5), Client::connect(&addr, &login, &secret, None))
                .await
                .map_err(|_| std::io::Error::other(format!("connecting to {addr} timed out")))??;
            self.link = Some((addr.clone(), client));
            self.link_db = None;
            self.sent = 0;
        }
        let (_, client) = self.link.as_mut().expect("opened above");
        for stmt in &self.state[self.sent..] {
            if self.in_txn {
                own_statement(client, stmt).await?;
            } else {
                // One that failed here failed for the client too; the writer's answer is moot
                // (and with no transaction open there, nothing of the session's is lost).
                client.query(stmt).await?;
            }
        }
        self.sent = self.state.len();
        if db.is_some() && db != self.link_db.as_deref() {
            let d = db.unwrap_or_default();
            own_statement(client, &format!("USE `{}`", d.replace('`', "``"))).await?;
            self.link_db = Some(d.to_string());
        }
        if begin && !self.in_txn {
            own_statement(client, "BEGIN").await?;
        }
        // From here until its follow-ups have answered, a failure leaves the statement's outcome
        // unknown to the client.
        self.statement_sent = true;
        let responses = client.query(sql).await?;
        let was = self.in_txn;
        self.in_txn = client.status & embedb_wire::status::IN_TRANS != 0;
        tracing::debug!(target: STMT_TRACE, writer = %addr, sent_begin = begin && !was, in_txn_before = was, in_txn = self.in_txn, "forwarded");
        self.warnings = Vec::new();
        let warned = match responses.last() {
            Some(Response::Ok(ok)) => ok.warnings > 0,
            Some(Response::ResultSet { warnings, .. }) => *warnings > 0,
            _ => false,
        };
        if warned {
            for r in own_statement(client, "SHOW WARNINGS").await? {
                if let Response::ResultSet { rows, .. } = r {
                    for row in rows {
                        let text = |i: usize| match row.get(i) {
                            Some(embedb_wire::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                            _ => String::new(),
                        };
                        self.warnings.push((text(0), text(1).parse().unwrap_or(0), text(2)));
                    }
                }
            }
        }
        if pins_session(sql) && !responses.iter().any(|r| matches!(r, Response::Error(_))) {
            self.pinned = true;
        }
        // What the session reads back of the statement here: LAST_INSERT_ID(), and after a commit
        // the writer's newest commit (read-your-writes: wait for this node's copy to have it).
        let (last_id, seq) = writer_after(client, !self.in_txn).await?;
        self.statement_sent = false;
        self.last_insert_id = last_id;
        if !self.in_txn {
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

/// (LAST_INSERT_ID(), the writer's newest commit if `committed`) in one round trip.
async fn writer_after(client: &mut Client, committed: bool) -> std::io::Result<(u64, u64)> {
    let sql = if committed { format!("SELECT LAST_INSERT_ID(); SHOW STATUS LIKE '{APPLIED_STATUS}'") } else { "SELECT LAST_INSERT_ID()".to_string() };
    let number = |r: &Response, col: usize| match r {
        Response::ResultSet { rows, .. } => match rows.first().and_then(|row| row.get(col)) {
            Some(embedb_wire::Value::Bytes(b)) => String::from_utf8_lossy(b).parse().unwrap_or(0),
            _ => 0,
        },
        _ => 0,
    };
    let r = own_statement(client, &sql).await?;
    Ok((r.first().map_or(0, |r| number(r, 0)), r.get(1).map_or(0, |r| number(r, 1))))
}

/// Runs a statement of the link's own (not the client's: `USE`, `BEGIN`, the follow-ups that
/// read warnings and the writer's commit) and fails if the writer refused it. Such a refusal
/// means the writer's side of the session is not what this side believes: the writer ends a
/// transaction it finds stranded by a role change with an error, to whichever statement comes
/// next, and that may be one of these. Taken as an answer, the client's transaction would go on
/// without its earlier statements (found under load with the writer stepping down and taking
/// the lease again: a transaction committed without its first row).
async fn own_statement(client: &mut Client, sql: &str) -> std::io::Result<Vec<Response>> {
    let responses = client.query(sql).await?;
    match responses.iter().find_map(|r| match r {
        Response::Error(e) => Some(e),
        _ => None,
    }) {
        Some(e) => Err(std::io::Error::other(format!("the writer refused `{sql}` ({} {})", e.code, e.message))),
        None => Ok(responses),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_execute() {
        assert_eq!(kind("SET @a = 1"), Kind::State);
        assert_eq!(kind("PREPARE s FROM 'INSERT INTO t VALUES (1)'"), Kind::State);
        assert_eq!(kind("DEALLOCATE PREPARE s"), Kind::State);
        assert_eq!(kind("EXECUTE Ps USING @a"), Kind::Execute("ps".into()));
    }

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
            "SAVEPOINT a",
            "/*!40101 ALTER TABLE t ADD c INT */",
            "SELECT GET_LOCK('x', 1)",
            "SELECT EMBEDDING_RETRY('docs')",
            "ANALYZE TABLE t",
        ] {
            assert!(needs_writer(write), "{write}");
        }
    }
}
