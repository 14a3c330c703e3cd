//! Auto-embedding speed, side by side in one run (issue 4, "Speed").
//!
//! Local model (`local/all-MiniLM-L6-v2`), on the same SciFact claims:
//! 1. raw in-process inference (`LocalModel::embed`, embedb-embed-local's own kernels), one call per
//!    `ROWS_PER_INSERT` texts;
//! 2. `INSERT … VALUES` of `ROWS_PER_INSERT` rows per statement through embedb's SQL layer
//!    (in-process library, no network) into a `VECTOR(384)` column
//!    `EMBED_TEXT('local/all-MiniLM-L6-v2', t)`, on a fresh data dir so no cache helps;
//! 3. with `--sentence-transformers` (opt-in: PyTorch from PyPI is several GB), sentence-transformers
//!    on the CPU in a virtualenv (`$EMBEDB_BENCH_VENV`, default `~/.cache/embedb-bench-venv`,
//!    created and filled with pip on first use) running `scripts/bench/st_embed.py`: the same model
//!    directory, texts, texts per call and thread count (`torch.set_num_threads` = the local model's compute
//!    threads). It also checks both computed the same vectors (lowest cosine).
//!
//! Every round (`--rounds`, default 5) runs raw inference, embedb and sentence-transformers in turn
//! (the script keeps its model loaded between passes), and the best round of each counts, so a
//! neighbour's burst of CPU on a shared machine hits all three alike and does not decide the result. It prints
//! texts/s for each, embedb's overhead over raw inference (goal ≤ 10 %) and embedb / ST (goal ≥ 1.0×).
//!
//! Remote provider (`jina_ai/jina-embeddings-v3`, 1024 dims): an in-process double of Jina's API
//! (`bench_support/jina_double.rs`) answering every request after `--latency-ms` (default 100);
//! embedb's engine points its `jina_api_base` at it. `--remote-rows` (default 10 000) distinct
//! texts are inserted into a table with a `jina_ai` `EMBED_TEXT` generated column, each way on a
//! fresh engine and data dir:
//! - one `INSERT … SELECT` from a staging table (filled beforehand, untimed) — one statement;
//! - multi-row `INSERT … VALUES` statements of each size in `--remote-rows-per-insert` (default
//!   `1000,100`), as an application batching its writes would.
//!
//! For each it prints the wall time against the ideal `ceil(rows / batch) / concurrency × latency`,
//! with the engine's actual batch size (`jina::BATCH_SIZE`) and concurrency (`embed_concurrency`),
//! the ratio (goal ≤ 1.2×), and what the double saw: requests, batch sizes, requests in flight
//! (most and time-weighted mean), and time with none in flight.
//!
//! Run: `CARGO_PROFILE_DEV_OPT_LEVEL=2 cargo run --example embed_bench -- [N_TEXTS] [ROWS_PER_INSERT] [FLAGS]`
//! (defaults 512 and 128). Flags: `--sentence-transformers`, `--rounds=N`, `--no-local`, `--no-remote`,
//! `--remote-rows=N`, `--remote-rows-per-insert=A,B,…`, `--latency-ms=N`. The texts come from
//! `../shared/data/scifact/` (claims for the local model, abstract sentences for the remote one).

#[path = "bench_support/jina_double.rs"]
mod jina_double;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use embedb::config::Config;
use embedb::session::{Engine, Output, Session};

const LOCAL_MODEL: &str = "local/all-MiniLM-L6-v2";
const REMOTE_MODEL: &str = "jina_ai/jina-embeddings-v3";
const REMOTE_KEY: &str = "jina-bench-key";

struct Args {
    n: usize,
    per_insert: usize,
    sentence_transformers: bool,
    local: bool,
    remote: bool,
    remote_rows: usize,
    remote_rows_per_insert: Vec<usize>,
    latency: Duration,
    rounds: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        n: 512,
        per_insert: 128,
        sentence_transformers: false,
        local: true,
        remote: true,
        remote_rows: 10_000,
        remote_rows_per_insert: vec![1000, 100],
        latency: Duration::from_millis(100),
        rounds: 5,
    };
    let mut positional = 0;
    for arg in std::env::args().skip(1) {
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let num = |v: &Option<String>| -> usize {
            v.as_deref().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{flag} needs =<number>"))
        };
        match flag.as_str() {
            "--sentence-transformers" => a.sentence_transformers = true,
            "--no-local" => a.local = false,
            "--no-remote" => a.remote = false,
            "--remote-rows" => a.remote_rows = num(&value),
            "--rounds" => a.rounds = num(&value).max(1),
            "--latency-ms" => a.latency = Duration::from_millis(num(&value) as u64),
            "--remote-rows-per-insert" => {
                a.remote_rows_per_insert = value
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| s.trim().parse().expect("--remote-rows-per-insert=A,B,…"))
                    .collect()
            }
            f if f.starts_with("--") => panic!("unknown flag {f}"),
            _ => {
                let v: usize = arg.parse().unwrap_or_else(|_| panic!("not a number: {arg}"));
                match positional {
                    0 => a.n = v,
                    1 => a.per_insert = v.max(1),
                    _ => panic!("too many arguments"),
                }
                positional += 1;
            }
        }
    }
    a
}

/// The repository root, resolved at run time: a shared target dir may hold a binary built from
/// another checkout.
fn repo_root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()))
}

fn scifact(file: &str) -> Vec<serde_json::Value> {
    let path = repo_root().join("../shared/data/scifact").join(file);
    let data = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    data.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The first `n` SciFact claims.
fn claims(n: usize) -> Vec<String> {
    let mut out: Vec<String> = scifact("queries.jsonl").iter().filter_map(|v| v["text"].as_str().map(str::to_string)).collect();
    out.truncate(n);
    out
}

/// `n` distinct sentences from the SciFact abstracts (distinct, so the embedding cache never helps).
fn sentences(n: usize) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    'docs: for doc in scifact("corpus.jsonl") {
        for s in doc["text"].as_str().unwrap_or("").split(". ") {
            let s = s.trim();
            if s.len() >= 20 && seen.insert(s.to_string()) {
                out.push(s.to_string());
                if out.len() == n {
                    break 'docs;
                }
            }
        }
    }
    // More rows than sentences: number the repeats to keep every text distinct.
    let base = out.len();
    for i in base..n {
        out.push(format!("{} ({})", out[i % base], i / base));
    }
    out
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn values_insert(table: &str, first_id: usize, texts: &[String]) -> String {
    let rows: Vec<String> = texts.iter().enumerate().map(|(k, t)| format!("({}, {})", first_id + k, sql_str(t))).collect();
    format!("INSERT INTO {table} (id, t) VALUES {}", rows.join(","))
}

async fn count(s: &mut Session, sql: &str) -> i64 {
    match s.run(sql).await.expect("count") {
        Output::Rows { batches, .. } => {
            let v = datafusion::common::ScalarValue::try_from_array(batches[0].column(0), 0).expect("a value");
            embedb::session::scalar_text(&v).parse().expect("a number")
        }
        other => panic!("expected rows, got {other:?}"),
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb).max(1e-12)
}

// ---- local model ---------------------------------------------------------------------------------

/// Best round of each contender, texts/s (`st` only with `--sentence-transformers`).
struct LocalResult {
    raw: f64,
    embedb: f64,
    st: Option<f64>,
}

/// Raw inference, one `embed` call per `per_insert` texts: (texts/s, vectors).
fn raw_round(model: &embedb_embed_local::LocalModel, refs: &[&str], per_insert: usize) -> (f64, Vec<Vec<f32>>) {
    let mut vectors = Vec::with_capacity(refs.len());
    let t = Instant::now();
    for chunk in refs.chunks(per_insert) {
        vectors.extend(model.embed(chunk).expect("embed"));
    }
    (refs.len() as f64 / t.elapsed().as_secs_f64(), vectors)
}

/// INSERT statements of `per_insert` rows through embedb, on a fresh engine and data dir (so
/// neither the in-memory nor the persisted embedding cache helps): rows/s.
fn embedb_round(texts: &[String], per_insert: usize, config: &Config) -> f64 {
    let dir = std::env::temp_dir().join(format!("embedb-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let rate = rt.block_on(async {
        let engine = Engine::open(Config { data_dir: dir.clone(), ..config.clone() }).expect("engine");
        let mut s = Session::new(engine, 1, "root");
        s.use_db("test").unwrap();
        let ddl = format!(
            "CREATE TABLE b (id INT PRIMARY KEY, t TEXT, \
             e VECTOR(384) GENERATED ALWAYS AS (EMBED_TEXT('{LOCAL_MODEL}', t)) STORED)"
        );
        s.run(&ddl).await.expect("create");
        // warm the provider's model load outside the timing (the raw side loaded its model too)
        s.run(&format!("SELECT EMBED_TEXT('{LOCAL_MODEL}', 'warm up')")).await.expect("warm");
        let t = Instant::now();
        for (k, chunk) in texts.chunks(per_insert).enumerate() {
            s.run(&values_insert("b", k * per_insert + 1, chunk)).await.expect("insert");
        }
        texts.len() as f64 / t.elapsed().as_secs_f64()
    });
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

/// `rounds` rounds of raw inference, embedb and (when given) sentence-transformers, one after the
/// other in every round, so that background load on a shared machine hits all of them alike; the
/// best round of each counts (the one least disturbed). Returns the last raw round's vectors too.
fn local_bench(
    texts: &[String],
    per_insert: usize,
    config: &Config,
    model: &embedb_embed_local::LocalModel,
    rounds: usize,
    mut st: Option<&mut StProcess>,
) -> (LocalResult, Vec<Vec<f32>>) {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let _ = model.embed(&refs[..8.min(refs.len())]); // warm-up
    let mut best = LocalResult { raw: 0.0, embedb: 0.0, st: None };
    let mut raw_vectors = Vec::new();
    for round in 1..=rounds {
        let (raw, vectors) = raw_round(model, &refs, per_insert);
        let embedb = embedb_round(texts, per_insert, config);
        let st_rate = st.as_deref_mut().map(|p| p.pass());
        let st_text = match &st_rate {
            Some(Ok(r)) => format!(", sentence-transformers {r:.1} texts/s"),
            Some(Err(e)) => format!(", sentence-transformers failed: {e}"),
            None => String::new(),
        };
        eprintln!("round {round}: raw {raw:.1} texts/s, embedb {embedb:.1} rows/s{st_text}");
        best.raw = best.raw.max(raw);
        best.embedb = best.embedb.max(embedb);
        if let Some(Ok(r)) = st_rate {
            best.st = Some(best.st.unwrap_or(0.0).max(r));
        }
        raw_vectors = vectors;
    }
    (best, raw_vectors)
}

// ---- sentence-transformers (opt-in) --------------------------------------------------------------

/// Run `cmd` in its own process group, killing the group after `limit`.
fn run_limited(cmd: &mut Command, limit: Duration, what: &str) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let mut child = cmd.process_group(0).spawn().map_err(|e| format!("{what}: cannot start: {e}"))?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{what}: exited with {status}")),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Ok(None) => {
                kill_group(child.id());
                let _ = child.wait();
                return Err(format!("{what}: gave up after {limit:?}"));
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
}

/// SIGKILL to the process group led by `pid` (a child we started with `process_group(0)`): pip
/// and its build helpers, or Python and its workers.
fn kill_group(pid: u32) {
    let _ = Command::new("kill").args(["-KILL", &format!("-{pid}")]).status();
}

/// The venv's python with sentence-transformers importable, creating the venv and installing it
/// (from the default package index, with the plain `torch` wheel) when needed.
fn st_python() -> Result<PathBuf, String> {
    let venv = std::env::var_os("EMBEDB_BENCH_VENV").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| ".".into());
        home.join(".cache/embedb-bench-venv")
    });
    let python = venv.join("bin/python");
    let ready = |p: &Path| {
        Command::new(p)
            .args(["-c", "import sentence_transformers, torch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && ready(&python) {
        return Ok(python);
    }
    if !python.exists() {
        eprintln!("creating the virtualenv {}", venv.display());
        run_limited(Command::new("python3").arg("-m").arg("venv").arg(&venv), Duration::from_secs(300), "python3 -m venv")?;
    }
    let limit = std::env::var("EMBEDB_BENCH_PIP_TIMEOUT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(1800);
    eprintln!("installing sentence-transformers (with PyTorch, several GB) into {} — up to {limit} s", venv.display());
    run_limited(
        Command::new(&python).args(["-m", "pip", "install", "--progress-bar", "off", "sentence-transformers"]),
        Duration::from_secs(limit),
        "pip install sentence-transformers",
    )?;
    if !ready(&python) {
        return Err("sentence-transformers still cannot be imported after pip install".into());
    }
    Ok(python)
}

/// `scripts/bench/st_embed.py` running with the model loaded, doing one timed pass per request.
struct StProcess {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    /// Its `ready` line: versions, threads, how the model was loaded.
    info: serde_json::Value,
    dir: PathBuf,
}

/// How long one answer from the script may take (loading torch, or one pass over the texts).
const ST_REPLY_LIMIT: Duration = Duration::from_secs(900);

impl StProcess {
    fn start(texts: &[String], per_insert: usize, threads: usize, model_dir: &Path) -> Result<StProcess, String> {
        use std::os::unix::process::CommandExt;
        let python = st_python()?;
        let dir = std::env::temp_dir().join(format!("embedb-bench-st-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("texts.json"), serde_json::to_vec(texts).unwrap()).map_err(|e| e.to_string())?;
        let mut child = Command::new(&python)
            .arg(repo_root().join("scripts/bench/st_embed.py"))
            .arg("--model-dir")
            .arg(model_dir)
            .arg("--texts")
            .arg(dir.join("texts.json"))
            .args(["--chunk", &per_insert.to_string(), "--threads", &threads.to_string()])
            .arg("--out")
            .arg(dir.join("vectors.f32"))
            // the tokenizers library's own pool would add threads beyond the ones we match
            .env("TOKENIZERS_PARALLELISM", "false")
            .env("HF_HUB_OFFLINE", "1")
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("st_embed.py: cannot start: {e}"))?;
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut p = StProcess { child, stdin, lines, info: serde_json::Value::Null, dir };
        p.info = p.reply()?;
        Ok(p)
    }

    /// The next JSON line, or an error (and the process killed) after [`ST_REPLY_LIMIT`].
    fn reply(&mut self) -> Result<serde_json::Value, String> {
        loop {
            match self.lines.recv_timeout(ST_REPLY_LIMIT) {
                Ok(line) => {
                    // Libraries may print to stdout too; our lines are JSON objects.
                    if let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_str(&line) {
                        return Ok(v);
                    }
                }
                Err(e) => {
                    kill_group(self.child.id());
                    return Err(format!("st_embed.py: no answer ({e})"));
                }
            }
        }
    }

    /// One timed pass over the texts: texts/s.
    fn pass(&mut self) -> Result<f64, String> {
        use std::io::Write;
        let stdin = self.stdin.as_mut().ok_or("st_embed.py: already finished")?;
        stdin.write_all(b"run\n").and_then(|_| stdin.flush()).map_err(|e| format!("st_embed.py: {e}"))?;
        self.reply()?["texts_per_s"].as_f64().ok_or_else(|| "st_embed.py gave no texts_per_s".into())
    }

    /// End the script; the vectors of its last pass.
    fn finish(mut self) -> Result<Vec<f32>, String> {
        drop(self.stdin.take());
        let status = self.child.wait().map_err(|e| e.to_string())?;
        let bytes = std::fs::read(self.dir.join("vectors.f32"));
        let _ = std::fs::remove_dir_all(&self.dir);
        if !status.success() {
            return Err(format!("st_embed.py exited with {status}"));
        }
        let bytes = bytes.map_err(|e| format!("st_embed.py vectors: {e}"))?;
        Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

/// The lowest cosine between the raw vectors and sentence-transformers' (flattened) ones.
fn lowest_cosine(raw: &[Vec<f32>], st: &[f32]) -> Result<f64, String> {
    let dims = raw.first().map(Vec::len).unwrap_or(1);
    if st.len() != raw.len() * dims {
        return Err(format!("sentence-transformers wrote {} floats for {} texts × {dims}", st.len(), raw.len()));
    }
    Ok(raw.iter().zip(st.chunks_exact(dims)).map(|(a, b)| cosine(a, b)).fold(1.0, f64::min))
}

// ---- remote provider -----------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Mode {
    InsertSelect,
    Values(usize),
}

struct RemoteResult {
    mode: Mode,
    wall: Duration,
    ideal: Duration,
    batch: usize,
    concurrency: usize,
    stats: jina_double::Stats,
    statements: usize,
}

fn remote_bench(texts: &[String], mode: Mode, latency: Duration, double: &jina_double::JinaDouble) -> RemoteResult {
    let dir = std::env::temp_dir().join(format!("embedb-bench-remote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = Config { data_dir: dir.clone(), jina_api_base: double.base_url(), ..Config::default() };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let r = rt.block_on(async {
        let engine = Engine::open(config).expect("engine");
        // What the engine will actually use: Jina's per-request batch and the configured concurrency.
        let batch = embedb::embed::jina::BATCH_SIZE;
        let concurrency = engine.config.http_settings().concurrency;
        let mut s = Session::new(engine, 1, "root");
        s.use_db("test").unwrap();
        s.run(&format!("SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY = '{REMOTE_KEY}'")).await.expect("key");
        s.run(&format!(
            "CREATE TABLE r (id INT PRIMARY KEY, t TEXT, \
             e VECTOR(1024) GENERATED ALWAYS AS (EMBED_TEXT('{REMOTE_MODEL}', t)) STORED)"
        ))
        .await
        .expect("create");
        let mut statements = Vec::new();
        match mode {
            Mode::InsertSelect => {
                s.run("CREATE TABLE src (id INT PRIMARY KEY, t TEXT)").await.expect("create src");
                for (k, chunk) in texts.chunks(1000).enumerate() {
                    s.run(&values_insert("src", k * 1000 + 1, chunk)).await.expect("fill src");
                }
                statements.push("INSERT INTO r (id, t) SELECT id, t FROM src".to_string());
            }
            Mode::Values(per) => {
                for (k, chunk) in texts.chunks(per).enumerate() {
                    statements.push(values_insert("r", k * per + 1, chunk));
                }
            }
        }
        double.reset();
        let t = Instant::now();
        for sql in &statements {
            s.run(sql).await.expect("insert");
        }
        let wall = t.elapsed();
        let stats = double.stats();
        let stored = count(&mut s, "SELECT COUNT(*) FROM r WHERE e IS NOT NULL").await;
        assert_eq!(stored as usize, texts.len(), "every row embedded");
        let requests = texts.len().div_ceil(batch);
        let ideal = latency.mul_f64(requests as f64 / concurrency as f64);
        RemoteResult { mode, wall, ideal, batch, concurrency, stats, statements: statements.len() }
    });
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn main() {
    let args = parse_args();
    let config = Config::default();
    let threads = embedb_embed_local::compute_threads();

    if args.local {
        let texts = claims(args.n);
        let files = embedb_embed_local::ensure_default_model(&config.model_dir).expect("model");
        let model = embedb_embed_local::LocalModel::load(&files).expect("load");
        let mut st = None;
        if args.sentence_transformers {
            match StProcess::start(&texts, args.per_insert, threads, files.dir()) {
                Ok(p) => st = Some(p),
                Err(e) => eprintln!("sentence-transformers: not measured: {e}"),
            }
        }
        let (local, raw_vectors) = local_bench(&texts, args.per_insert, &config, &model, args.rounds, st.as_mut());
        println!(
            "== local model {LOCAL_MODEL}: {} SciFact claims, {} per INSERT / per call, {threads} compute threads, best of {} rounds",
            texts.len(),
            args.per_insert,
            args.rounds
        );
        println!("raw (LocalModel::embed)             {:8.1} texts/s", local.raw);
        println!("embedb INSERT (EMBED_TEXT column)   {:8.1} rows/s", local.embedb);
        println!(
            "embedb / raw                        {:8.3}  (overhead {:+.1} %, goal ≤ 10 %)",
            local.embedb / local.raw,
            (local.raw / local.embedb - 1.0) * 100.0
        );
        match (st, local.st) {
            (Some(p), Some(rate)) => {
                let info = p.info.clone();
                println!(
                    "sentence-transformers (CPU)         {rate:8.1} texts/s  (torch {}, sentence-transformers {}, {} threads, model from {})",
                    info["torch"], info["sentence_transformers"], info["threads"], info["load"]
                );
                println!("embedb / sentence-transformers      {:8.3}  (goal ≥ 1.0)", local.embedb / rate);
                println!("raw / sentence-transformers         {:8.3}", local.raw / rate);
                match p.finish().and_then(|v| lowest_cosine(&raw_vectors, &v)) {
                    Ok(c) => println!("lowest cosine, raw vs ST vectors    {c:10.6}"),
                    Err(e) => println!("vectors not compared: {e}"),
                }
            }
            (Some(_), None) => println!("sentence-transformers: not measured (every pass failed, see above)"),
            (None, _) if args.sentence_transformers => println!("sentence-transformers: not measured (see above)"),
            (None, _) => println!("sentence-transformers: skipped (opt in with --sentence-transformers; installs PyTorch)"),
        }
    }

    if args.remote {
        let texts = sentences(args.remote_rows);
        let double = jina_double::JinaDouble::start(args.latency, REMOTE_KEY);
        let mut modes = vec![Mode::InsertSelect];
        modes.extend(args.remote_rows_per_insert.iter().map(|&p| Mode::Values(p.max(1))));
        println!(
            "== remote provider {REMOTE_MODEL} (in-process double, {} ms per request): {} distinct rows",
            args.latency.as_millis(),
            texts.len()
        );
        for mode in modes {
            let r = remote_bench(&texts, mode, args.latency, &double);
            let how = match r.mode {
                Mode::InsertSelect => "1 INSERT … SELECT".to_string(),
                Mode::Values(p) => format!("{} INSERTs of {p} rows", r.statements),
            };
            let st = &r.stats;
            println!(
                "{how:<26} wall {:7.2} s   ideal ceil({}/{})/{} × {} ms = {:6.2} s   wall/ideal {:.3}  (goal ≤ 1.2)",
                r.wall.as_secs_f64(),
                texts.len(),
                r.batch,
                r.concurrency,
                args.latency.as_millis(),
                r.ideal.as_secs_f64(),
                r.wall.as_secs_f64() / r.ideal.as_secs_f64()
            );
            println!(
                "{:<26} {} requests ({} texts, batch {}–{}), in flight: max {}, mean {:.2}; none in flight {:.2} s \
                 ({:.2} s before the first request, {:.2} s after the last reply)",
                "",
                st.requests,
                st.texts,
                st.min_batch,
                st.max_batch,
                st.max_in_flight,
                st.mean_in_flight,
                st.idle.as_secs_f64(),
                st.before_first.as_secs_f64(),
                st.after_last.as_secs_f64()
            );
        }
    }
}
