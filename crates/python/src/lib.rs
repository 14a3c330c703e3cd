//! `embedb._embedb`: the database inside a Python process.
//!
//! `embedb.connect("./data")` opens the same engine `embedb serve` runs (`Engine::open`) and a
//! session on it; `db.execute("SELECT … WHERE id = ?", (7,))` prepares the text (once per
//! connection), binds each Python value as a SQL value (never pasted into the text:
//! `Session::execute_prepared` gets literals in the AST) and runs it on the calling thread with
//! the GIL released (Ctrl-C stops it as KILL QUERY does). The result keeps the engine's Arrow
//! batches; they become Python values (ints, floats, str, bytes, `decimal.Decimal`, `datetime`)
//! when first fetched, or go to pyarrow as they are (`arrow_export`). `db.cursor()` is another
//! session on the same engine, for another thread. `db.serve(port)` starts the MySQL protocol on loopback beside it, for tools
//! that need a URL. `cli(argv)` is the `embedb` command of the wheel (`embedb::cli::run`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

mod arrow_export;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimeUnit, UInt16Type, UInt32Type, UInt64Type, UInt8Type};
use datafusion::sql::sqlparser::ast::{Expr, Value};
use embedb::config::Config;
use embedb::error::SqlError;
use embedb::session::{Engine, Output, Session};
use embedb::sql::prepared::{Bound as Arg, Prepared};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule, PyTuple};
use futures::FutureExt;
use pyo3::IntoPyObjectExt;

create_exception!(_embedb, Error, PyException, "A statement failed: `args` is (MySQL error code, message); also `.code` and `.msg`.");

/// The package's runtime: statements are driven by it from the calling thread (`block_on`);
/// its workers, with the server's stack size, run what statements spawn and `serve`'s servers.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_stack_size(embedb::sql::parser::STATEMENT_STACK_BYTES)
            .build()
            .expect("tokio runtime")
    })
}

fn sql_error(py: Python<'_>, e: SqlError) -> PyErr {
    let err = Error::new_err((e.code, e.message.clone()));
    let v = err.value(py);
    let _ = v.setattr("code", e.code);
    let _ = v.setattr("msg", e.message);
    let _ = v.setattr("sqlstate", e.state);
    err
}

/// One session: the database's own, or a cursor's.
#[pyclass(module = "embedb._embedb")]
struct Connection {
    engine: Arc<Engine>,
    session: Arc<tokio::sync::Mutex<Session>>,
    /// The session's KILL signal: Ctrl-C during a statement stops it (`KILL QUERY`).
    interrupt: Arc<embedb::interrupt::Interrupt>,
    /// Servers started by `serve`, stopped by `close`.
    servers: Arc<std::sync::Mutex<Vec<tokio::sync::oneshot::Sender<()>>>>,
    /// Whether this connection opened the engine (and so shuts it down on close).
    owner: bool,
    /// Statements with parameters, prepared once per text: each call binds and runs the kept
    /// statement (no parse, and the plan cache or the read by key where they apply).
    prepared: Arc<std::sync::Mutex<HashMap<String, Arc<Prepared>>>>,
}

/// A statement runs on the caller's stack when this much is left on it (a Python thread has 8 MiB;
/// the engine bounds how deep a statement nests), else on a new one of `STATEMENT_STACK_BYTES`.
/// Not always a new one: touching a fresh stack's pages cost a point select 100 µs.
const STATEMENT_RED_ZONE: usize = 4 << 20;

/// Ctrl-C while a statement blocks this thread (a SLEEP, a lock wait, the local model embedding a
/// batch): a SIGINT action, chained before Python's own handler, marks it; a watcher thread
/// then stops every statement running in this process, as `KILL QUERY` would. Python still
/// raises its KeyboardInterrupt once the statement has returned.
static CTRL_C: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The interrupts of the statements running now.
static RUNNING: std::sync::Mutex<Vec<Arc<embedb::interrupt::Interrupt>>> = std::sync::Mutex::new(Vec::new());

fn watch_ctrl_c() {
    static WATCHER: OnceLock<()> = OnceLock::new();
    WATCHER.get_or_init(|| {
        // SAFETY: the action only stores to an atomic, which is async-signal-safe.
        let registered = unsafe { signal_hook_registry::register(libc::SIGINT, || CTRL_C.store(true, std::sync::atomic::Ordering::SeqCst)) };
        if registered.is_ok() {
            std::thread::Builder::new()
                .name("embedb-ctrl-c".into())
                .spawn(|| loop {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    if CTRL_C.swap(false, std::sync::atomic::Ordering::SeqCst) {
                        for i in RUNNING.lock().expect("not poisoned").iter() {
                            i.trigger(false);
                        }
                    }
                })
                .ok();
        }
    });
}

/// How many prepared texts a connection keeps (all are dropped when it is full).
const PREPARED_KEPT: usize = 256;

fn new_session(engine: &Arc<Engine>) -> PyResult<Session> {
    let id = engine.next_connection_id();
    let mut s = Session::new(engine.clone(), id, "root");
    Python::attach(|py| s.use_db("test").map_err(|e| sql_error(py, e)))?;
    Ok(s)
}

/// Opens the data directory `path` (created if missing), or an in-memory database.
#[pyfunction]
#[pyo3(signature = (path=None))]
fn connect(py: Python<'_>, path: Option<std::path::PathBuf>) -> PyResult<Connection> {
    let engine = py
        .detach(|| {
            let _guard = runtime().enter();
            match path {
                Some(p) => {
                    std::fs::create_dir_all(&p).map_err(|e| SqlError::other(format!("cannot create data dir {}: {e}", p.display())))?;
                    let config = Config { data_dir: p, ..Config::default() };
                    Engine::open(config)
                }
                None => Engine::with_store(Config::default(), embedb::storage::Store::in_memory()),
            }
        })
        .map_err(|e| sql_error(py, e))?;
    let session = new_session(&engine)?;
    let interrupt = session.interrupt.clone();
    Ok(Connection { engine, session: Arc::new(tokio::sync::Mutex::new(session)), interrupt, servers: Default::default(), owner: true, prepared: Default::default() })
}

/// A Python value as a bound parameter.
fn to_arg(v: &Bound<'_, PyAny>) -> PyResult<Arg> {
    if v.get_type().name()? == "_F32Vector" {
        // A numpy vector, as its float32 bytes (`embedb._bindable`): bound as numbers (a vector
        // search the plan cache serves makes no text of it), with no Python float per element.
        let b = v.cast::<PyBytes>()?.as_bytes();
        let xs: Arc<[f32]> = b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        return Ok(Arg::Vector(xs));
    }
    to_sql(v).map(Arg::Literal)
}

/// A Python value as a SQL value.
fn to_sql(v: &Bound<'_, PyAny>) -> PyResult<Expr> {
    let lit = |s: String| Expr::value(Value::SingleQuotedString(s));
    if v.is_none() {
        return Ok(Expr::value(Value::Null));
    }
    if let Ok(b) = v.extract::<bool>() {
        if v.is_instance_of::<pyo3::types::PyBool>() {
            return Ok(Expr::value(Value::Boolean(b)));
        }
    }
    if v.is_instance_of::<pyo3::types::PyInt>() {
        return Ok(Expr::value(Value::Number(v.str()?.to_string(), false)));
    }
    if let Ok(f) = v.extract::<f64>() {
        if v.is_instance_of::<pyo3::types::PyFloat>() {
            if !f.is_finite() {
                return Err(PyValueError::new_err(format!("{f} is not a SQL number")));
            }
            return Ok(Expr::value(Value::Number(v.repr()?.to_string(), false)));
        }
    }
    if let Ok(s) = v.extract::<String>() {
        return Ok(lit(s));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        let hex: String = b.as_bytes().iter().map(|x| format!("{x:02X}")).collect();
        return Ok(Expr::value(Value::HexStringLiteral(hex)));
    }
    let ty = v.get_type().name()?.to_string();
    match ty.as_str() {
        "Decimal" => return Ok(Expr::value(Value::Number(v.str()?.to_string(), false))),
        "datetime" | "date" | "time" => return Ok(lit(v.call_method1("isoformat", (" ",)).or_else(|_| v.call_method0("isoformat"))?.to_string())),
        _ => {}
    }
    // A sequence of numbers (a list, a tuple, numpy's tolist()) is a vector: '[1,2,3]'.
    if let Ok(items) = v.extract::<Vec<f64>>() {
        return Ok(lit(vector_text(&items)));
    }
    Err(PyValueError::new_err(format!("cannot bind a {ty} as a SQL value")))
}

/// A vector's text from Python floats, `[1,2.5,-3]`: each written as the float64 it is (the
/// server reads it as float32, as it would the same text from any client).
fn vector_text(xs: &[f64]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(2 + 20 * xs.len());
    out.push('[');
    for (i, x) in xs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{x}");
    }
    out.push(']');
    out
}

/// What a statement gave back, converted to Python values.
#[pyclass(module = "embedb._embedb")]
struct QueryResult {
    #[pyo3(get)]
    columns: Vec<String>,
    #[pyo3(get)]
    rowcount: i64,
    #[pyo3(get)]
    lastrowid: u64,
    /// The result as the engine made it: Arrow batches, turned into Python rows when first
    /// fetched.
    batches: Vec<datafusion::arrow::record_batch::RecordBatch>,
    schema: datafusion::arrow::datatypes::SchemaRef,
    rows: Option<Vec<Py<PyTuple>>>,
    at: usize,
}

impl QueryResult {
    fn rows(&mut self, py: Python<'_>) -> PyResult<&Vec<Py<PyTuple>>> {
        if self.rows.is_none() {
            let mut rows = Vec::new();
            for b in &self.batches {
                for r in 0..b.num_rows() {
                    let cells: Vec<Py<PyAny>> = b.columns().iter().map(|c| cell(py, c, r)).collect::<PyResult<_>>()?;
                    rows.push(PyTuple::new(py, cells)?.unbind());
                }
            }
            self.rows = Some(rows);
        }
        Ok(self.rows.as_ref().expect("made"))
    }
}

#[pymethods]
impl QueryResult {
    /// The rows not fetched yet, as tuples.
    fn fetchall(&mut self, py: Python<'_>) -> PyResult<Vec<Py<PyTuple>>> {
        let at = self.at;
        let rows = self.rows(py)?;
        let rest: Vec<Py<PyTuple>> = rows[at.min(rows.len())..].iter().map(|r| r.clone_ref(py)).collect();
        self.at = rows.len();
        Ok(rest)
    }

    /// The result as Arrow C Data Interface capsules, sharing its buffers (no copies): the
    /// schema's (`arrow_schema`), and for each batch its schema's and array's (`arrow_array`).
    fn arrow_capsules<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyCapsule>, Vec<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)>)> {
        let name = |n: &str| Some(std::ffi::CString::new(n).expect("no NUL"));
        // Fields named as the columns are shown (the engine's may carry qualifiers).
        let renamed = |s: &datafusion::arrow::datatypes::Schema| {
            let fields: Vec<_> = s.fields().iter().zip(&self.columns).map(|(f, n)| f.as_ref().clone().with_name(n)).collect();
            Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
        };
        let schema = arrow_export::schema(&renamed(&self.schema)).map_err(PyValueError::new_err)?;
        let schema = PyCapsule::new(py, schema, name("arrow_schema"))?;
        let mut batches = Vec::with_capacity(self.batches.len());
        for b in &self.batches {
            let b = datafusion::arrow::record_batch::RecordBatch::try_new(renamed(&b.schema()), b.columns().to_vec())
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            let (s, a) = arrow_export::batch(&b).map_err(PyValueError::new_err)?;
            batches.push((PyCapsule::new(py, s, name("arrow_schema"))?, PyCapsule::new(py, a, name("arrow_array"))?));
        }
        Ok((schema, batches))
    }

    /// The next row, or None.
    fn fetchone(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyTuple>>> {
        let at = self.at;
        let r = self.rows(py)?.get(at).map(|r| r.clone_ref(py));
        if r.is_some() {
            self.at += 1;
        }
        Ok(r)
    }
}

fn cell(py: Python<'_>, col: &ArrayRef, i: usize) -> PyResult<Py<PyAny>> {
    if col.is_null(i) {
        return Ok(py.None());
    }
    let dt = || py.import("datetime");
    Ok(match col.data_type() {
        DataType::Boolean => col.as_boolean().value(i).into_py_any(py)?,
        DataType::Int8 => col.as_primitive::<Int8Type>().value(i).into_py_any(py)?,
        DataType::Int16 => col.as_primitive::<Int16Type>().value(i).into_py_any(py)?,
        DataType::Int32 => col.as_primitive::<Int32Type>().value(i).into_py_any(py)?,
        DataType::Int64 => col.as_primitive::<Int64Type>().value(i).into_py_any(py)?,
        DataType::UInt8 => col.as_primitive::<UInt8Type>().value(i).into_py_any(py)?,
        DataType::UInt16 => col.as_primitive::<UInt16Type>().value(i).into_py_any(py)?,
        DataType::UInt32 => col.as_primitive::<UInt32Type>().value(i).into_py_any(py)?,
        DataType::UInt64 => col.as_primitive::<UInt64Type>().value(i).into_py_any(py)?,
        DataType::Float32 => col.as_primitive::<Float32Type>().value(i).into_py_any(py)?,
        DataType::Float64 => col.as_primitive::<Float64Type>().value(i).into_py_any(py)?,
        DataType::Utf8 => col.as_string::<i32>().value(i).into_py_any(py)?,
        DataType::LargeUtf8 => col.as_string::<i64>().value(i).into_py_any(py)?,
        DataType::Utf8View => col.as_string_view().value(i).into_py_any(py)?,
        DataType::Binary => PyBytes::new(py, col.as_binary::<i32>().value(i)).into_any().unbind(),
        DataType::LargeBinary => PyBytes::new(py, col.as_binary::<i64>().value(i)).into_any().unbind(),
        DataType::Decimal128(..) => {
            let text = datafusion::arrow::util::display::array_value_to_string(col, i).map_err(|e| PyValueError::new_err(e.to_string()))?;
            py.import("decimal")?.getattr("Decimal")?.call1((text,))?.unbind()
        }
        DataType::Date32 => {
            let days = col.as_primitive::<datafusion::arrow::datatypes::Date32Type>().value(i) as i64;
            let d = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(days);
            use chrono::Datelike;
            dt()?.getattr("date")?.call1((d.year(), d.month(), d.day()))?.unbind()
        }
        DataType::Timestamp(TimeUnit::Microsecond, None) => {
            let us = col.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>().value(i);
            let t = chrono::DateTime::from_timestamp_micros(us).map(|t| t.naive_utc()).ok_or_else(|| PyValueError::new_err("timestamp out of range"))?;
            use chrono::{Datelike, Timelike};
            dt()?.getattr("datetime")?.call1((t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second(), t.nanosecond() / 1000))?.unbind()
        }
        _ => datafusion::arrow::util::display::array_value_to_string(col, i).map_err(|e| PyValueError::new_err(e.to_string()))?.into_py_any(py)?,
    })
}

fn to_python(out: Output) -> QueryResult {
    match out {
        Output::Ok { affected, last_insert_id, .. } => {
            QueryResult {
                columns: vec![],
                rowcount: affected as i64,
                lastrowid: last_insert_id,
                batches: vec![],
                schema: Arc::new(datafusion::arrow::datatypes::Schema::empty()),
                rows: Some(vec![]),
                at: 0,
            }
        }
        Output::Rows { schema, batches } => {
            let columns: Vec<String> = schema.fields().iter().map(|f| embedb::sql::show::column_name(f)).collect();
            let n = batches.iter().map(|b| b.num_rows()).sum::<usize>() as i64;
            QueryResult { columns, rowcount: n, lastrowid: 0, batches, schema, rows: None, at: 0 }
        }
    }
}

#[pymethods]
impl Connection {
    /// Runs one statement; `params` (a sequence) binds its `?` placeholders.
    #[pyo3(signature = (sql, params=None))]
    fn execute(&self, py: Python<'_>, sql: String, params: Option<Bound<'_, PyAny>>) -> PyResult<QueryResult> {
        let args: Option<Vec<Arg>> = match params {
            None => None,
            Some(p) if p.is_none() => None,
            Some(p) => Some(p.try_iter()?.map(|v| to_arg(&v?)).collect::<PyResult<_>>()?),
        };
        let session = self.session.clone();
        let kept = self.prepared.clone();
        // Boxed: the statement's future is large, and moving it into `block_on` by value
        // copied it on every call (a few % of a cached vector search in a profile).
        let statement = Box::pin(async move {
            let mut s = session.lock().await;
            match args {
                None => s.run(&sql).await,
                Some(args) => {
                    let known = kept.lock().expect("not poisoned").get(&sql).cloned();
                    let p = match known {
                        Some(p) => p,
                        None => {
                            let p = Arc::new(s.prepare(&sql).await?);
                            let mut kept = kept.lock().expect("not poisoned");
                            if kept.len() >= PREPARED_KEPT {
                                kept.clear();
                            }
                            kept.insert(sql.clone(), p.clone());
                            p
                        }
                    };
                    if p.params != args.len() {
                        return Err(SqlError::new(1210, "HY000", format!("Incorrect arguments to EXECUTE: {} placeholders, {} values", p.params, args.len())));
                    }
                    s.execute_prepared_bound(&p, args).await
                }
            }
        });
        // The statement runs on this thread (no hand-off to a worker and back: that was most of
        // a point select's time), without the GIL, on a stack deep enough for any statement the
        // engine accepts (`STATEMENT_RED_ZONE`). Ctrl-C stops it as `KILL QUERY` does: through
        // `watch_ctrl_c`, and, should Python's own handler have replaced that one, by a look at
        // Python's signals every 100 ms while the statement waits. The KeyboardInterrupt is
        // raised once it has stopped. A panic is the statement's error.
        let interrupt = self.interrupt.clone();
        let mut interrupted: Option<PyErr> = None;
        watch_ctrl_c();
        RUNNING.lock().expect("not poisoned").push(interrupt.clone());
        let out = py.detach(|| {
            stacker::maybe_grow(STATEMENT_RED_ZONE, embedb::sql::parser::STATEMENT_STACK_BYTES, || {
                runtime().block_on(async {
                    let statement = std::panic::AssertUnwindSafe(statement).catch_unwind();
                    tokio::pin!(statement);
                    let finished = |r: std::thread::Result<Result<Output, SqlError>>| r.unwrap_or_else(|_| Err(SqlError::other("the statement panicked; nothing of it was applied")));
                    // Most statements (a point select) finish at their first poll: no timer for them.
                    if let std::task::Poll::Ready(r) = futures::poll!(&mut statement) {
                        return finished(r);
                    }
                    loop {
                        match tokio::time::timeout(std::time::Duration::from_millis(100), &mut statement).await {
                            Ok(r) => break finished(r),
                            Err(_) if interrupted.is_none() => Python::attach(|py| {
                                if let Err(e) = py.check_signals() {
                                    interrupt.trigger(false);
                                    interrupted = Some(e);
                                }
                            }),
                            Err(_) => {}
                        }
                    }
                })
            })
        });
        RUNNING.lock().expect("not poisoned").retain(|i| !Arc::ptr_eq(i, &interrupt));
        if let Some(e) = interrupted {
            return Err(e);
        }
        // A Ctrl-C that stopped a blocked statement: Python's KeyboardInterrupt, not error 1317
        // nor the value of a SLEEP cut short (Python would raise it only at its next check,
        // after the statement's result was taken).
        if interrupt.is_set() || matches!(&out, Err(e) if e.code == 1317) {
            py.check_signals()?;
        }
        let out = out.map_err(|e| sql_error(py, e))?;
        Ok(to_python(out))
    }

    /// Another session on the same database (for another thread, or a separate transaction).
    fn cursor(&self) -> PyResult<Connection> {
        let session = new_session(&self.engine)?;
        let interrupt = session.interrupt.clone();
        Ok(Connection { engine: self.engine.clone(), session: Arc::new(tokio::sync::Mutex::new(session)), interrupt, servers: self.servers.clone(), owner: false, prepared: Default::default() })
    }

    /// Starts the MySQL protocol on `host:port` (0: any free port) in this process; returns the
    /// port.
    #[pyo3(signature = (host="127.0.0.1".to_string(), port=0))]
    fn serve(&self, py: Python<'_>, host: String, port: u16) -> PyResult<u16> {
        let engine = self.engine.clone();
        let opts = embedb::server::wire_options(&engine.config).map_err(PyValueError::new_err)?;
        let listener = py
            .detach(|| runtime().block_on(tokio::net::TcpListener::bind((host.as_str(), port))))
            .map_err(|e| PyValueError::new_err(format!("cannot listen on {host}:{port}: {e}")))?;
        let bound = listener.local_addr().map_err(|e| PyValueError::new_err(e.to_string()))?.port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        runtime().spawn(async move {
            let _ = embedb::server::serve(engine, listener, opts, async move {
                let _ = rx.await;
            })
            .await;
        });
        self.servers.lock().expect("servers").push(tx);
        Ok(bound)
    }

    /// Stops the servers `serve` started; the database's own connection also saves the vector
    /// indexes (committed data needs nothing: it is durable).
    fn close(&self, py: Python<'_>) {
        for tx in self.servers.lock().expect("servers").drain(..) {
            let _ = tx.send(());
        }
        if self.owner {
            let engine = self.engine.clone();
            py.detach(|| engine.close());
        }
    }
}

/// The `embedb` command (`embedb serve …`), as the Rust binary runs it.
#[pyfunction]
fn cli(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| embedb::cli::run(argv))
}

#[pymodule]
fn _embedb(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_function(wrap_pyfunction!(cli, m)?)?;
    m.add_class::<Connection>()?;
    m.add_class::<QueryResult>()?;
    m.add("Error", m.py().get_type::<Error>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
