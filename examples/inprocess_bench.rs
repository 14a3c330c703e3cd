//! The in-process engine's per-statement cost, without Python around it: a point select by
//! primary key and a top-10 HNSW search (ef 64) over 5,000 random 384-d vectors, each run as
//! the Python package runs them (a statement prepared once, then bound and executed, driven by
//! `block_on` on the calling thread). For profiling the engine's own overhead:
//!
//!     cargo build --release --example inprocess_bench
//!     perf record -g target/release/examples/inprocess_bench --seconds 5
//!
//! Prints mean and p50 µs per call of each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::sql::sqlparser::ast::{Expr, Value};
use embedb::config::Config;
use embedb::session::{Engine, Session};

fn main() {
    let seconds: f64 = std::env::args().skip_while(|a| a != "--seconds").nth(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(embedb::sql::parser::STATEMENT_STACK_BYTES).build().unwrap();
    let engine = {
        let _g = rt.enter();
        Engine::with_store(Config::default(), embedb::storage::Store::in_memory()).unwrap()
    };
    let mut s = Session::new(engine.clone(), engine.next_connection_id(), "root");
    s.use_db("test").unwrap();
    let (n, dim) = (5000usize, 384usize);
    let mut seed = 42u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let vector = |rand: &mut dyn FnMut() -> f32| format!("[{}]", (0..dim).map(|_| format!("{:.5}", rand())).collect::<Vec<_>>().join(","));
    rt.block_on(async {
        s.run("CREATE TABLE docs (id INT PRIMARY KEY, txt TEXT, v VECTOR(384), VECTOR INDEX iv ((VEC_COSINE_DISTANCE(v))) USING HNSW)").await.unwrap();
        for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
            let values: Vec<String> = chunk.iter().map(|i| format!("({i}, 'text number {i}', '{}')", vector(&mut rand))).collect();
            s.run(&format!("INSERT INTO docs VALUES {}", values.join(","))).await.unwrap();
        }
    });
    let queries: Vec<String> = (0..200).map(|_| vector(&mut rand)).collect();
    let point = rt.block_on(s.prepare("SELECT id, txt FROM docs WHERE id = ?")).unwrap();
    let ann = rt.block_on(s.prepare("SELECT id FROM docs ORDER BY VEC_COSINE_DISTANCE(v, ?) LIMIT 10")).unwrap();
    let s = Arc::new(tokio::sync::Mutex::new(s));
    let timed = |name: &str, args: &mut dyn FnMut(usize) -> Expr, p: &embedb::sql::prepared::Prepared| {
        if only.as_deref().is_some_and(|o| o != name) {
            return;
        }
        let mut times = Vec::new();
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        let mut i = 0;
        while Instant::now() < until {
            let arg = args(i);
            let t = Instant::now();
            let s = s.clone();
            let out = rt.block_on(async move { s.lock().await.execute_prepared(p, vec![arg]).await });
            times.push(t.elapsed().as_secs_f64() * 1e6);
            out.unwrap();
            i += 1;
        }
        times.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        println!("{name}: {} calls, mean {mean:.1} µs, p50 {:.1} µs", times.len(), times[times.len() / 2]);
    };
    timed("point", &mut |i| Expr::value(Value::Number(((i * 7919) % n).to_string(), false)), &point);
    timed("ann", &mut |i| Expr::value(Value::SingleQuotedString(queries[i % queries.len()].clone())), &ann);
}
