//! Range searches: `WHERE VEC_COSINE_DISTANCE(v, '[…]') < 0.3` served by the HNSW graph.
//!
//! 1. [`try_range`] (called by the ANN rule's walk for each `Filter` a top-k search did not
//!    claim) looks for a conjunct `VEC_…_DISTANCE(col, const) < bound` (or `<=`, or the bound on
//!    the left with `>`/`>=`) on a column with a vector index of the same metric. The table's
//!    scan becomes an [`AnnTable`] whose spec carries the bound (`range`) and the other
//!    conjuncts as its filters; the Filter stays above it, so the rows returned are exactly those
//!    its predicate keeps.
//! 2. At run time [`rows_within`] counts the graph's rows within the bound, searching with a
//!    growing `k` (and beam) until a result lies beyond it; the scan then runs as a top-`k`
//!    search for that many rows (with the other filters, if any, as a filtered search). Rows
//!    the graph does not hold are added as for any ANN scan. A bound that holds more than a
//!    quarter of the rows (and over 1000) is answered by the exact scan, which is then cheaper.
//!
//! Like every ANN search this is exact up to the graph's recall: a row within the bound that
//! the graph does not reach is missed (on small tables the graph reaches every row).

use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};

use super::{chain_to_scan, constant_vector, distance_call, indexed_column, resolve, split_conjunction, strip_alias, wanted_metric, with_ann_scan, AnnSpec, AnnTable};

/// The first `k` a range search tries.
const FIRST_K: usize = 32;
/// Distances within this much of the bound count as within it: the graph's kernel and the SQL
/// function's may differ in the last bits, and a bound compared after a cast (to the literal's
/// decimal type) rounds the distance first. Extra rows cost little; the Filter drops them.
const SLACK: f64 = 1e-3;

/// `filter` with its table's scan turned into a range-searching ANN scan, if it bounds the
/// distance to a constant vector on an indexed column (see the module docs).
pub(super) fn try_range(filter: &LogicalPlan) -> DfResult<Option<LogicalPlan>> {
    let LogicalPlan::Filter(f) = filter else { return Ok(None) };
    let Some((chain, scan)) = chain_to_scan(&f.input, false) else { return Ok(None) };
    let Some(predicate) = resolve(f.predicate.clone(), &chain) else { return Ok(None) };
    let conjuncts = split_conjunction(predicate);
    let Some((key, bound)) = conjuncts.iter().find_map(upper_bound) else { return Ok(None) };
    let Some((func, col, constant)) = distance_call(&key) else { return Ok(None) };
    let Some(found) = indexed_column(scan, col) else { return Ok(None) };
    let Some((_, metric)) = wanted_metric(func).filter(|(m, _)| found.metrics.iter().any(|x| x == m)) else { return Ok(None) };
    let Some(query) = constant_vector(constant) else { return Ok(None) };
    // The other conditions, from the Filter and those pushed into the scan, on table columns.
    let mut filters: Vec<Expr> = Vec::new();
    for c in without_bound(&scan.filters.iter().cloned().chain(conjuncts).collect::<Vec<_>>(), &key) {
        if !filters.contains(&c) {
            filters.push(c);
        }
    }
    if filters.iter().any(|f| f.is_volatile()) {
        return Ok(None);
    }
    let spec = AnnSpec { table_ref: scan.table_name.clone(), column: found.column, metric, query, n: 0, filters, order: key.clone(), range: Some(bound) };
    if found.previous.as_ref() == Some(&spec) {
        return Ok(None);
    }
    with_ann_scan(filter, &scan.table_name, AnnTable { base: found.base, spec }).map(Some)
}

/// `distance < bound` (or `<=`, or `bound > distance`, `bound >= distance`) → (distance, bound),
/// the distance without the casts a comparison may have put around it.
fn upper_bound(e: &Expr) -> Option<(Expr, f64)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else { return None };
    let (distance, bound) = match op {
        Operator::Lt | Operator::LtEq => (left.as_ref(), right.as_ref()),
        Operator::Gt | Operator::GtEq => (right.as_ref(), left.as_ref()),
        _ => return None,
    };
    let distance = uncast(strip_alias(distance.clone()));
    distance_call(&distance)?;
    let Expr::Literal(value, _) = uncast(bound.clone()) else { return None };
    let bound = match value.cast_to(&datafusion::arrow::datatypes::DataType::Float64).ok()? {
        ScalarValue::Float64(Some(b)) if b.is_finite() => b,
        _ => return None,
    };
    Some((distance, bound))
}

/// `filters` without the bounds on the distance `key` (the column qualified or not: filters
/// pushed into a scan name its columns bare).
pub(super) fn without_bound(filters: &[Expr], key: &Expr) -> Vec<Expr> {
    let same = |k: &Expr| match (distance_call(k), distance_call(key)) {
        (Some((f1, c1, v1)), Some((f2, c2, v2))) => f1 == f2 && c1.name == c2.name && v1 == v2,
        _ => false,
    };
    filters.iter().filter(|f| !upper_bound(f).is_some_and(|(k, _)| same(&k))).cloned().collect()
}

fn uncast(e: Expr) -> Expr {
    match e {
        Expr::Cast(c) => uncast(*c.expr),
        Expr::TryCast(c) => uncast(*c.expr),
        e => e,
    }
}

/// How many of the graph's rows lie within `bound` of `query` (see the module docs); None once
/// that is more than `most` (a search that wide costs more than the exact scan).
pub(super) fn rows_within(index: &embedb_ann::AnnIndex, query: &[f32], bound: f64, ef: Option<usize>, most: usize) -> Result<Option<usize>, embedb_ann::AnnError> {
    let len = index.len();
    if len == 0 {
        return Ok(Some(0));
    }
    let mut k = FIRST_K.min(len);
    loop {
        let hits = index.search(query, k, ef.map(|e| e.max(k)))?;
        let within = hits.iter().take_while(|(_, d)| *d <= bound + SLACK).count();
        if within < hits.len() || hits.len() < k || k >= len {
            return Ok((within <= most).then_some(within));
        }
        if k >= most {
            return Ok(None);
        }
        k = k.saturating_mul(4).min(len);
    }
}
