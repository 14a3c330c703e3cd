//! What the server reports about itself: the counters of `SHOW [GLOBAL] STATUS` and the process
//! list of `SHOW [FULL] PROCESSLIST` and `information_schema.PROCESSLIST`.
//!
//! A session registers itself when it is made and leaves when dropped; each statement passes
//! through [`ServerStats::statement_started`] and [`ServerStats::statement_ended`], which count it
//! (`Questions`, `Com_<kind>`, `Slow_queries`) and show it in the process list while it runs.
//! Counters start at zero with each process, as MySQL's do. A statement that names a provider key
//! is listed without its text.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// MySQL's default `long_query_time`: statements slower than this count in `Slow_queries`.
pub const LONG_QUERY_TIME: Duration = Duration::from_secs(10);

/// One connection as the process list shows it.
#[derive(Clone, Debug)]
pub struct Process {
    pub id: u32,
    pub user: String,
    pub host: String,
    pub db: Option<String>,
    /// `Query` while a statement runs, else `Sleep`.
    pub command: &'static str,
    /// Since the current command began.
    pub since: Instant,
    /// The running statement's text.
    pub info: Option<String>,
}

/// Upper bounds (seconds) of the statement-latency histogram's buckets (`/metrics`).
pub const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

pub struct ServerStats {
    started: Instant,
    questions: AtomicU64,
    errors: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    /// Statements per latency bucket (the last one: slower than every bound), and their sum.
    latency: [AtomicU64; 15],
    latency_sum_micros: AtomicU64,
    connections: AtomicU64,
    slow_queries: AtomicU64,
    max_used_connections: AtomicU64,
    com: Mutex<BTreeMap<String, u64>>,
    processes: Mutex<BTreeMap<u32, Process>>,
}

/// The `Com_` counters shown even at zero (the ones monitoring dashboards chart).
const COMMON: &[&str] = &[
    "begin", "commit", "create_db", "create_index", "create_table", "delete", "drop_db", "drop_index", "drop_table",
    "insert", "replace", "rollback", "select", "set_option", "show_databases", "show_status", "show_tables", "update",
];

impl ServerStats {
    pub fn new() -> ServerStats {
        ServerStats {
            started: Instant::now(),
            questions: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            latency: Default::default(),
            latency_sum_micros: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            slow_queries: AtomicU64::new(0),
            max_used_connections: AtomicU64::new(0),
            com: Mutex::new(BTreeMap::new()),
            processes: Mutex::new(BTreeMap::new()),
        }
    }

    /// A client connection was accepted (`Connections`), `open` now being open.
    pub fn connected(&self, open: u64) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.max_used_connections.fetch_max(open, Ordering::Relaxed);
    }

    pub fn register(&self, id: u32, user: &str, host: &str) {
        let p = Process { id, user: user.into(), host: host.into(), db: None, command: "Sleep", since: Instant::now(), info: None };
        self.processes.lock().insert(id, p);
    }

    pub fn unregister(&self, id: u32) {
        self.processes.lock().remove(&id);
    }

    pub fn statement_started(&self, id: u32, db: Option<&str>, sql: &str) {
        self.questions.fetch_add(1, Ordering::Relaxed);
        *self.com.lock().entry(com_kind(sql)).or_default() += 1;
        if let Some(p) = self.processes.lock().get_mut(&id) {
            p.command = "Query";
            p.since = Instant::now();
            p.db = db.map(str::to_string);
            p.info = Some(if crate::sql::variables::mentions_secret(sql) { "/* a statement that sets a secret */".into() } else { sql.to_string() });
        }
    }

    /// Bytes a client connection read and wrote (`Bytes_received`, `Bytes_sent`).
    pub fn traffic(&self, received: u64, sent: u64) {
        self.bytes_received.fetch_add(received, Ordering::Relaxed);
        self.bytes_sent.fetch_add(sent, Ordering::Relaxed);
    }

    pub fn statement_ended(&self, id: u32, db: Option<&str>, failed: bool) {
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(p) = self.processes.lock().get_mut(&id) {
            let took = p.since.elapsed();
            if took > LONG_QUERY_TIME {
                self.slow_queries.fetch_add(1, Ordering::Relaxed);
            }
            let secs = took.as_secs_f64();
            let bucket = LATENCY_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(LATENCY_BUCKETS.len());
            self.latency[bucket].fetch_add(1, Ordering::Relaxed);
            self.latency_sum_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
            p.command = "Sleep";
            p.since = Instant::now();
            p.db = db.map(str::to_string);
            p.info = None;
        }
    }

    /// Seconds since the server started.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The process list, by connection id.
    pub fn processes(&self) -> Vec<Process> {
        self.processes.lock().values().cloned().collect()
    }

    /// `SHOW STATUS`'s rows: (name, value), sorted by name. `open` = connections open now.
    pub fn status(&self, open: u64) -> Vec<(String, String)> {
        let uptime = self.started.elapsed().as_secs();
        let running = self.processes.lock().values().filter(|p| p.command == "Query").count();
        let mut rows: BTreeMap<String, String> = BTreeMap::new();
        let mut put = |k: &str, v: u64| {
            rows.insert(k.to_string(), v.to_string());
        };
        put("Uptime", uptime);
        put("Uptime_since_flush_status", uptime);
        put("Questions", self.questions.load(Ordering::Relaxed));
        put("Queries", self.questions.load(Ordering::Relaxed));
        put("Connections", self.connections.load(Ordering::Relaxed));
        put("Threads_connected", open);
        put("Threads_running", running as u64);
        put("Max_used_connections", self.max_used_connections.load(Ordering::Relaxed));
        put("Slow_queries", self.slow_queries.load(Ordering::Relaxed));
        put("Bytes_received", self.bytes_received.load(Ordering::Relaxed));
        put("Bytes_sent", self.bytes_sent.load(Ordering::Relaxed));
        let com = self.com.lock();
        for k in COMMON {
            put(&format!("Com_{k}"), 0);
        }
        for (k, v) in com.iter() {
            put(&format!("Com_{k}"), *v);
        }
        rows.into_iter().collect()
    }
}

impl ServerStats {
    /// The statement counters in Prometheus' text format (`/metrics`).
    pub fn prometheus(&self, open: u64, out: &mut String) {
        use std::fmt::Write;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter("embedb_statements_total", "Statements run (SHOW STATUS Questions).", load(&self.questions));
        counter("embedb_statement_errors_total", "Statements that ended in an error.", load(&self.errors));
        counter("embedb_slow_statements_total", "Statements slower than long_query_time (10 s).", load(&self.slow_queries));
        counter("embedb_connections_total", "Client connections accepted.", load(&self.connections));
        counter("embedb_received_bytes_total", "Bytes of MySQL packets read from clients.", load(&self.bytes_received));
        counter("embedb_sent_bytes_total", "Bytes of MySQL packets written to clients.", load(&self.bytes_sent));
        let running = self.processes.lock().values().filter(|p| p.command == "Query").count();
        let _ = writeln!(out, "# HELP embedb_connections_open Client connections open now.\n# TYPE embedb_connections_open gauge\nembedb_connections_open {open}");
        let _ = writeln!(out, "# HELP embedb_statements_running Statements running now.\n# TYPE embedb_statements_running gauge\nembedb_statements_running {running}");
        let _ = writeln!(out, "# HELP embedb_uptime_seconds Seconds since the server started.\n# TYPE embedb_uptime_seconds gauge\nembedb_uptime_seconds {}", self.started.elapsed().as_secs());
        let _ = writeln!(out, "# HELP embedb_statements_by_kind_total Statements by kind (SHOW STATUS Com_*).\n# TYPE embedb_statements_by_kind_total counter");
        for (k, v) in self.com.lock().iter() {
            let _ = writeln!(out, "embedb_statements_by_kind_total{{kind=\"{k}\"}} {v}");
        }
        let _ = writeln!(out, "# HELP embedb_statement_duration_seconds Statement latency.\n# TYPE embedb_statement_duration_seconds histogram");
        let mut cumulative = 0;
        for (k, bound) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += load(&self.latency[k]);
            let _ = writeln!(out, "embedb_statement_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += load(&self.latency[LATENCY_BUCKETS.len()]);
        let _ = writeln!(out, "embedb_statement_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "embedb_statement_duration_seconds_sum {}", load(&self.latency_sum_micros) as f64 / 1e6);
        let _ = writeln!(out, "embedb_statement_duration_seconds_count {cumulative}");
    }
}

/// The `Com_` counter a statement counts in, from its first words (`create_table`, `select` …).
fn com_kind(sql: &str) -> String {
    let mut words = sql.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').filter(|w| !w.is_empty()).map(|w| w.to_ascii_lowercase());
    let first = words.next().unwrap_or_default();
    match first.as_str() {
        "create" | "drop" | "alter" => {
            let mut second = words.next().unwrap_or_default();
            if matches!(second.as_str(), "unique" | "fulltext" | "vector" | "or" | "temporary") {
                second = words.find(|w| matches!(w.as_str(), "index" | "table" | "view" | "key")).unwrap_or(second);
            }
            let object = match second.as_str() {
                "database" | "schema" => "db",
                "key" => "index",
                other => other,
            };
            format!("{first}_{object}")
        }
        "show" => format!("show_{}", words.find(|w| !matches!(w.as_str(), "full" | "global" | "session")).unwrap_or_default()),
        "set" => "set_option".into(),
        "start" => "begin".into(),
        "use" => "change_db".into(),
        "with" | "" => "select".into(),
        other => other.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_count_by_kind_and_show_while_running() {
        let s = ServerStats::new();
        s.register(7, "app", "10.0.0.1");
        s.statement_started(7, Some("shop"), "SELECT * FROM t");
        let p = &s.processes()[0];
        assert_eq!((p.command, p.db.as_deref(), p.info.as_deref()), ("Query", Some("shop"), Some("SELECT * FROM t")));
        s.statement_ended(7, Some("shop"), false);
        s.statement_started(7, None, "SET GLOBAL tidb_exp_embed_jina_ai_api_key = 'jina_x'");
        assert!(!s.processes()[0].info.as_deref().unwrap().contains("jina_x"));
        s.statement_ended(7, None, true);
        for sql in ["create table a (x int)", "CREATE UNIQUE INDEX i ON a (x)", "drop database d", "insert into a values (1)", "show full tables"] {
            s.statement_started(7, None, sql);
        }
        let status: BTreeMap<String, String> = s.status(1).into_iter().collect();
        assert_eq!(status["Questions"], "7");
        for k in ["Com_select", "Com_set_option", "Com_create_table", "Com_create_index", "Com_drop_db", "Com_insert", "Com_show_tables"] {
            assert_eq!(status[k], "1", "{k}");
        }
        assert_eq!(status["Com_update"], "0");
        assert_eq!(status["Threads_running"], "1");
        s.unregister(7);
        assert!(s.processes().is_empty());
    }
}
