//! Tests of the ANN scan: plans, candidates, and answers equal to the exact scan's.
use super::*;
use crate::session::{Engine, Output, Session};

#[test]
fn tidb_truncation() {
    assert_eq!(truncated_vector(&[1.0, 2.0, 3.0]), "[1,2,3]");
    assert_eq!(truncated_vector(&[1.1, 2.2, 3.3, 4.4, 5.5, 123.4]), "[1.1,2.2,3.3,4.4,5.5,(1 more)...]");
    assert_eq!(truncated_vector(&[123.4, 0.001234]), "[1.2e+02,0.0012]");
    assert_eq!(truncated_vector(&[-0.0, 0.0, 1.4e-45, -1.4e-45, 1e-5, 1.0, 2.0]), "[-0,0,1.4e-45,-1.4e-45,1e-05,(2 more)...]");
    assert_eq!(truncated_vector(&[0.5, 10.0, 99.0, 0.25]), "[0.5,10,99,0.25]");
    assert_eq!(truncated_vector(&[]), "[]");
}

fn session() -> Session {
    crate::session::test_session()
}

/// Rows as text, one `Vec` per row.
async fn rows(s: &mut Session, sql: &str) -> Vec<Vec<String>> {
    let out = s.run(sql).await.unwrap_or_else(|e| panic!("{sql}: {}", e.message));
    let Output::Rows { batches, .. } = out else { return vec![] };
    let mut v = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            v.push(
                b.columns()
                    .iter()
                    .map(|c| datafusion::arrow::util::display::array_value_to_string(c, r).unwrap())
                    .collect(),
            );
        }
    }
    v
}

async fn explain(s: &mut Session, sql: &str) -> String {
    rows(s, &format!("EXPLAIN {sql}")).await.into_iter().map(|r| r.join(" ")).collect::<Vec<_>>().join("\n")
}

/// A deterministic pseudo-random point, no two alike or in the same direction. (Duplicates
/// make exact equality with the scan a matter of luck: HNSW links copies of one vector
/// poorly, and which of several tied rows it returns is arbitrary. Ties are the golden
/// tests' business, on tables small enough to be read whole.)
pub(crate) fn point(i: i64) -> String {
    let f = |k: i64| {
        let mut h = (i as u64).wrapping_mul(2_654_435_761).wrapping_add(k as u64 * 40_503) & 0xFFFF_FFFF;
        h ^= h >> 13;
        h = h.wrapping_mul(1_274_126_177) & 0xFFFF_FFFF;
        h ^= h >> 16;
        ((h % 1001) as f32 - 500.0) / 100.0
    };
    format!("[{},{},{},{}]", f(0), f(1), f(2), f(3))
}

async fn two_tables(s: &mut Session) {
    rows(s, "CREATE TABLE idx (id INT PRIMARY KEY, cat INT, v VECTOR(4), VECTOR INDEX vi ((VEC_COSINE_DISTANCE(v))), VECTOR INDEX vl USING HNSW ((VEC_L2_DISTANCE(v))))").await;
    rows(s, "CREATE TABLE plain (id INT PRIMARY KEY, cat INT, v VECTOR(4))").await;
    let values: Vec<String> = (1..=300)
        .map(|i| match i % 50 {
            0 => format!("({i}, {}, NULL)", i % 7),
            25 => format!("({i}, {}, '[0,0,0,0]')", i % 7),
            _ => format!("({i}, {}, '{}')", i % 7, point(i)),
        })
        .collect();
    for t in ["idx", "plain"] {
        rows(s, &format!("INSERT INTO {t} VALUES {}", values.join(","))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_answers_like_the_exact_scan() {
    let mut s = session();
    two_tables(&mut s).await;
    let queries = [
        "SELECT id, VEC_COSINE_DISTANCE(v, '[1,2,3,4]') AS d FROM {t} ORDER BY d, id LIMIT 10",
        "SELECT id FROM {t} ORDER BY VEC_L2_DISTANCE(v, '[0.5,-1,2,0]'), id LIMIT 7 OFFSET 3",
        "SELECT id, cat FROM {t} WHERE cat = 3 ORDER BY VEC_COSINE_DISTANCE(v, '[1,-2,0.5,4]'), id LIMIT 5",
        "SELECT id FROM {t} WHERE id > 100 AND cat IN (1, 2) ORDER BY VEC_L2_DISTANCE(v, VEC_FROM_TEXT('[2,2,2,2]')), id LIMIT 4",
        "SELECT * FROM (SELECT id, cat, VEC_COSINE_DISTANCE(h.v, '[3,1,-1,2]') AS _distance FROM {t} AS h ORDER BY _distance ASC LIMIT 20) AS c WHERE c.cat = 2 ORDER BY _distance, id LIMIT 2",
    ];
    for q in queries {
        let a = rows(&mut s, &q.replace("{t}", "idx")).await;
        let b = rows(&mut s, &q.replace("{t}", "plain")).await;
        assert_eq!(a, b, "{q}");
        assert!(explain(&mut s, &q.replace("{t}", "idx")).await.contains("annIndex:"), "{q}");
        assert!(!explain(&mut s, &q.replace("{t}", "plain")).await.contains("annIndex:"), "{q}");
    }
    // NULL distances (NULL vector, zero vector under cosine) sort first, as in the scan.
    let a = rows(&mut s, "SELECT id FROM idx ORDER BY VEC_COSINE_DISTANCE(v, '[1,1,1,1]'), id LIMIT 14").await;
    let b = rows(&mut s, "SELECT id FROM plain ORDER BY VEC_COSINE_DISTANCE(v, '[1,1,1,1]'), id LIMIT 14").await;
    assert_eq!(a, b);
    assert_eq!(a[0], vec!["25".to_string()]);
    // Writes are seen by the next statement.
    rows(&mut s, "DELETE FROM idx WHERE id = 2").await;
    rows(&mut s, "UPDATE idx SET v = '[9,9,9,9.5]' WHERE id = 3").await;
    let a = rows(&mut s, "SELECT id FROM idx WHERE v IS NOT NULL ORDER BY VEC_L2_DISTANCE(v, '[9,9,9,9]') LIMIT 1").await;
    assert_eq!(a, vec![vec!["3".to_string()]]);
    let a = rows(&mut s, &format!("SELECT id FROM idx ORDER BY VEC_L2_DISTANCE(v, '{}') LIMIT 300", point(2))).await;
    assert!(!a.contains(&vec!["2".to_string()]));
}

/// The scan returns its rows by distance, NULL first and ties in handle order, and says so:
/// DataFusion then drops the sort above it (keeping the limit), in every shape a search
/// takes, planned or from the plan cache. A sort the order does not settle (a second key)
/// stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_come_by_distance_and_the_sort_is_dropped() {
    let mut s = session();
    two_tables(&mut s).await;
    rows(&mut s, "SET SESSION embedb_hnsw_ef_search = 1000").await;
    // `{q}` is the query vector; the expected answer is the scan's with `id` as second key.
    let queries = [
        ("SELECT id FROM {t} ORDER BY VEC_L2_DISTANCE(v, '{q}') LIMIT 10", "SELECT id FROM {t} ORDER BY VEC_L2_DISTANCE(v, '{q}'), id LIMIT 10"),
        ("SELECT id, VEC_COSINE_DISTANCE(v, '{q}') AS d FROM {t} ORDER BY d LIMIT 8 OFFSET 2", "SELECT id, VEC_COSINE_DISTANCE(v, '{q}') AS d FROM {t} ORDER BY d, id LIMIT 8 OFFSET 2"),
        ("SELECT id, cat FROM {t} WHERE cat = 3 ORDER BY VEC_L2_DISTANCE(v, '{q}') LIMIT 5", "SELECT id, cat FROM {t} WHERE cat = 3 ORDER BY VEC_L2_DISTANCE(v, '{q}'), id LIMIT 5"),
        (
            "SELECT id, _distance FROM (SELECT id, VEC_L2_DISTANCE(h.v, '{q}') AS _distance FROM {t} AS h ORDER BY _distance ASC LIMIT 6) AS c",
            "SELECT id, _distance FROM (SELECT id, VEC_L2_DISTANCE(h.v, '{q}') AS _distance FROM {t} AS h ORDER BY _distance ASC, id LIMIT 6) AS c",
        ),
    ];
    // NULL vectors, and zero ones under cosine, have NULL distances: they sort first.
    let vectors = ["[1,1,1,1]", "[0.5,-1,2,0]", "[3,1,-1,2]", "[0,0,0,0.001]"];
    for (q, want) in queries {
        let sql = |t: &str, v: &str| q.replace("{t}", t).replace("{q}", v);
        let plan = explain(&mut s, &sql("idx", vectors[0])).await;
        assert!(plan.contains("annIndex:") && !plan.contains("SortExec"), "{q}: {plan}");
        assert!(plan.contains("GlobalLimitExec") || plan.contains("fetch="), "{q}: {plan}");
        for (i, v) in vectors.iter().enumerate() {
            let a = rows(&mut s, &sql("idx", v)).await;
            let cached = rows(&mut s, "SELECT @@last_plan_from_cache").await;
            assert_eq!(cached[0][0], if i == 0 { "0" } else { "1" }, "{q} with {v}");
            let b = rows(&mut s, &want.replace("{t}", "plain").replace("{q}", v)).await;
            assert!(!a.is_empty());
            assert_eq!(a, b, "{q} with {v}");
        }
    }
    // The NULL vectors (ids 50, 100, …) come first, then the zero ones (25, 75, …), which tie
    // under L2 from the origin: both in handle order, planned and cached.
    let want: Vec<Vec<String>> = [50, 100, 150, 200, 250, 300, 25, 75, 125].iter().map(|i| vec![i.to_string()]).collect();
    for cached in ["0", "1"] {
        let tied = rows(&mut s, "SELECT id FROM idx ORDER BY VEC_L2_DISTANCE(v, '[0,0,0,0]') LIMIT 9").await;
        assert_eq!(tied, want);
        assert_eq!(rows(&mut s, "SELECT @@last_plan_from_cache").await[0][0], cached);
    }
    let plan = explain(&mut s, "SELECT id FROM idx ORDER BY VEC_L2_DISTANCE(v, '[1,1,1,1]'), id LIMIT 10").await;
    assert!(plan.contains("annIndex:") && plan.contains("SortExec"), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_shapes_warn_like_tidb() {
    let mut s = session();
    two_tables(&mut s).await;
    rows(&mut s, "CREATE TABLE only_cos (id INT PRIMARY KEY, v VECTOR(2), VECTOR INDEX i ((VEC_COSINE_DISTANCE(v))))").await;
    let cases = [
        ("SELECT id FROM only_cos ORDER BY VEC_COSINE_DISTANCE(v, '[1,2]')", "ANN index not used: only Top N queries (like ORDER BY ... LIMIT ...) can use ANN index"),
        ("SELECT id FROM only_cos ORDER BY VEC_L2_DISTANCE(v, '[1,2]') LIMIT 3", "ANN index not used: not ordering by COSINE distance"),
        (
            "SELECT id FROM only_cos ORDER BY VEC_COSINE_DISTANCE(v, '[1,2]') DESC LIMIT 3",
            "ANN index not used: index can be used only when ordering by vec_cosine_distance() in ASC order",
        ),
    ];
    for (q, w) in cases {
        let plan = explain(&mut s, q).await;
        assert!(!plan.contains("annIndex:"), "{q}: {plan}");
        // The statement moved the rule's notes into the session's warnings (SHOW WARNINGS).
        let shown: Vec<String> = s.warnings.iter().map(|x| x.message.clone()).collect();
        assert_eq!(shown, vec![w.to_string()], "{q}");
        assert!(take_warnings(&s.ctx).is_empty(), "drained by the statement");
    }
    explain(&mut s, "SELECT id FROM only_cos ORDER BY VEC_COSINE_DISTANCE(v, '[1,2]') LIMIT 3").await;
    assert!(s.warnings.is_empty());
}

/// A search that reads only the key and the vector takes rows from the graph, but only rows
/// no commit changed after its snapshot: a transaction that began before an UPDATE of a
/// vector still sees the old vector, read from the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_only_rows_are_those_of_the_snapshot() {
    let engine = Engine::with_store(crate::config::Config::default(), embedb_storage::Store::in_memory()).unwrap();
    let mut a = Session::new(engine.clone(), 1, "root");
    a.use_db("test").unwrap();
    let mut b = Session::new(engine, 2, "root");
    b.use_db("test").unwrap();
    rows(&mut a, "CREATE TABLE t (id INT PRIMARY KEY, note TEXT, v VECTOR(4), VECTOR INDEX vl ((VEC_L2_DISTANCE(v))))").await;
    let values: Vec<String> = (1..=200).map(|i| format!("({i}, 'n{i}', '{}')", point(i))).collect();
    rows(&mut a, &format!("INSERT INTO t VALUES {}", values.join(","))).await;
    let q = "SELECT id, VEC_L2_DISTANCE(v, '[0,0,0,0]') AS d FROM t ORDER BY d LIMIT 3";
    let with_note = "SELECT id, note, VEC_L2_DISTANCE(v, '[0,0,0,0]') AS d FROM t ORDER BY d LIMIT 3";
    assert!(explain(&mut a, q).await.contains("graph candidates"));
    let before = rows(&mut a, q).await;
    // Rows from the graph answer as rows from the table.
    let full = rows(&mut a, with_note).await;
    assert_eq!(full.iter().map(|r| (r[0].clone(), r[2].clone())).collect::<Vec<_>>(), before.iter().map(|r| (r[0].clone(), r[1].clone())).collect::<Vec<_>>());
    rows(&mut a, "BEGIN").await;
    assert_eq!(rows(&mut a, q).await, before);
    // Another session moves the nearest row a little (still the nearest) and commits.
    let nearest = &before[0][0];
    let moved = rows(&mut b, "SELECT VEC_AS_TEXT(VEC_FROM_TEXT('[0.001,0,0,0]'))").await[0][0].clone();
    rows(&mut b, &format!("UPDATE t SET v = '{moved}' WHERE id = {nearest}")).await;
    let after_b = rows(&mut b, q).await;
    assert_eq!(&after_b[0][0], nearest);
    assert_ne!(after_b[0][1], before[0][1], "b sees the new vector");
    // The open transaction still sees the old vector, and the same answer.
    assert!(explain(&mut a, q).await.contains("graph candidates"));
    assert_eq!(rows(&mut a, q).await, before);
    rows(&mut a, "COMMIT").await;
    assert_eq!(rows(&mut a, q).await, after_b);
}

/// A post-filtered search decodes only the filters' columns of the rows it reads, then the
/// passing rows whole: with a walk that visits the whole graph it answers exactly as the scan
/// of an unindexed copy, whatever columns the filters and the select list read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_filtered_rows_are_whole_and_answer_like_the_scan() {
    let mut s = session();
    rows(&mut s, "CREATE TABLE pf (id INT PRIMARY KEY, cat INT, note VARCHAR(20), v VECTOR(4), VECTOR INDEX vl ((VEC_L2_DISTANCE(v))))").await;
    rows(&mut s, "CREATE TABLE pp (id INT PRIMARY KEY, cat INT, note VARCHAR(20), v VECTOR(4))").await;
    let values: Vec<String> = (1..=5000)
        .map(|i| {
            let v = if i % 400 == 0 { "NULL".to_string() } else { format!("'{}'", point(i)) };
            format!("({i}, {}, 'n{i}', {v})", i % 7)
        })
        .collect();
    for t in ["pf", "pp"] {
        rows(&mut s, &format!("INSERT INTO {t} VALUES {}", values.join(","))).await;
    }
    rows(&mut s, "SET SESSION embedb_hnsw_ef_search = 10000").await;
    let queries = [
        "SELECT id, cat, note, v FROM {t} WHERE cat = 3 ORDER BY VEC_L2_DISTANCE(v, '[1,2,3,4]'), id LIMIT 5",
        "SELECT id, note FROM {t} WHERE note LIKE 'n1%' ORDER BY VEC_L2_DISTANCE(v, '[-1,0.5,2,0]'), id LIMIT 8",
        "SELECT id, VEC_L2_DISTANCE(v, '[0,0,0,1]') AS d FROM {t} WHERE cat IN (1, 2) AND v IS NOT NULL ORDER BY d, id LIMIT 6",
        "SELECT * FROM {t} WHERE cat < 3 AND id % 2 = 0 ORDER BY VEC_L2_DISTANCE(v, '[3,3,-3,3]'), id LIMIT 4",
    ];
    for q in queries {
        let plan = explain(&mut s, &q.replace("{t}", "pf")).await;
        assert!(plan.contains("post-filtered graph"), "{q}: {plan}");
        let a = rows(&mut s, &q.replace("{t}", "pf")).await;
        let b = rows(&mut s, &q.replace("{t}", "pp")).await;
        assert!(!a.is_empty());
        assert_eq!(a, b, "{q}");
    }
}

/// A post-filtered search samples its filter's selectivity once and reuses it while the
/// index keeps about its size; a table grown by more than 1/8 is sampled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_selectivity_is_sampled_again_when_the_table_grows() {
    let mut s = session();
    rows(&mut s, "CREATE TABLE f (id INT PRIMARY KEY, cat INT, v VECTOR(4), VECTOR INDEX vl ((VEC_L2_DISTANCE(v))))").await;
    let insert = |lo: i64, hi: i64, cat: fn(i64) -> i64| {
        let values: Vec<String> = (lo..hi).map(|i| format!("({i}, {}, '{}')", cat(i), point(i))).collect();
        format!("INSERT INTO f VALUES {}", values.join(","))
    };
    rows(&mut s, &insert(1, 5001, |i| i % 10)).await;
    let q = "SELECT id FROM f WHERE cat = 0 ORDER BY VEC_L2_DISTANCE(v, '[0,0,0,0]') LIMIT 5";
    let selectivity = |plan: String| plan.split("sampled selectivity ").nth(1).map(|t| t[..5].to_string());
    let first = selectivity(explain(&mut s, q).await).expect("post-filtered");
    let f: f64 = first.parse().unwrap();
    assert!((0.05..0.15).contains(&f), "about 1 in 10: {f}");
    assert_eq!(selectivity(explain(&mut s, q).await), Some(first));
    // 2000 more rows, all with cat = 0: the kept 0.100 is stale, and a new sample sees more.
    rows(&mut s, &insert(5001, 7001, |_| 0)).await;
    let again: f64 = selectivity(explain(&mut s, q).await).unwrap().parse().unwrap();
    assert!(again > 0.25, "sampled again (2,500 of 7,000 pass): {again}");
    assert_eq!(rows(&mut s, q).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_writes_use_the_exact_scan() {
    let mut s = session();
    two_tables(&mut s).await;
    rows(&mut s, "BEGIN").await;
    rows(&mut s, "INSERT INTO idx VALUES (1000, 1, '[7,-7,7,-7]')").await;
    let q = "SELECT id FROM idx WHERE v IS NOT NULL ORDER BY VEC_L2_DISTANCE(v, '[7,-7,7,-7]') LIMIT 1";
    assert!(explain(&mut s, q).await.contains("exact scan (transaction has uncommitted writes)"));
    assert_eq!(rows(&mut s, q).await, vec![vec!["1000".to_string()]]);
    rows(&mut s, "ROLLBACK").await;
    assert_ne!(rows(&mut s, q).await, vec![vec!["1000".to_string()]]);
}
