//! Vector index searches in SQL: `ORDER BY VEC_COSINE_DISTANCE(col, '[…]') LIMIT k` served by
//! the HNSW graph instead of a full scan.
//!
//! How a query travels through here:
//! 1. DataFusion plans and optimises `SELECT id, VEC_COSINE_DISTANCE(v, '[1,2,3]') AS d FROM t
//!    WHERE cat = 3 ORDER BY d LIMIT 10` as `Sort(d, fetch=10) ← Projection ← Filter ← TableScan`.
//! 2. [`AnnRule`] (a logical optimizer rule, last in the list) finds a `Sort` with a fetch whose
//!    first key, followed down through projections, aliases and filters, is `VEC_COSINE_DISTANCE`
//!    or `VEC_L2_DISTANCE` of a column of the scanned table and a constant, ascending, with a
//!    vector index of the same metric on that column. It folds the constant into a vector and
//!    replaces the scan's source with an [`AnnTable`] carrying the query vector, the row count
//!    `k + offset` and the filters (rewritten onto the table's columns). Sort, Limit, Filter and
//!    Projection stay above it, so the final rows and distances are computed exactly as before.
//!    Scans that expose the row handle (UPDATE/DELETE … ORDER BY … LIMIT targets) are left exact.
//! 3. [`AnnTable::scan`] picks candidate rows (see below) from the statement's transaction and
//!    returns them as an [`AnnScanExec`], which `EXPLAIN` shows as TiDB does:
//!    `annIndex:COSINE(v..[1,2,3], limit:10)`. The rows come sorted by the distance (computed
//!    by the SQL function's own kernel; NULL first, ties in handle order), and the scan's
//!    properties say so. DataFusion's `EnforceSorting` then replaces the Sort above with a
//!    limit: `ProjectionExec ← GlobalLimitExec(fetch=10) ← AnnIndexScan`. (A sort with a
//!    second key, `ORDER BY d, id`, is not settled by that order and stays.)
//!
//! Candidates, without a filter: the graph's `n + 2` nearest handles (`n` = k + offset; `2n + 10`
//! for an f16/i8 index, whose graph distances are approximate), each read from the transaction
//! (a row that is gone in this snapshot is skipped; if that leaves fewer than `n`, the search is
//! repeated wider). When the plan reads nothing but the vector and the integer primary key (the
//! handle), an f32 graph's own copy of a row serves instead of the table's, provided no commit
//! changed the row after the statement's snapshot ([`VectorEntry::unchanged_since`]): the
//! index-only search.
//!
//! With a filter (a WHERE clause, or a condition on the distance itself) one of three ways,
//! chosen per query:
//! - post-filtering, on indexes of 4000 rows or more: the filter is evaluated on ~512 rows the
//!   index samples, giving its selectivity `s` (kept per filter text while the index's size
//!   stays within 1/8 of the size it was sampled at); the graph's `m ≈ 1.5 (2n + 10) / s` nearest rows
//!   are read and filtered, widening `m` until `2n + 10` pass. Cheap when the filter keeps a fair
//!   share of the table (10 % of 20k rows: ~500 rows read instead of 20k), and exact up to the
//!   graph's recall: if enough of the nearest `m` rows pass, the best passing rows are among them.
//!   Given up once it would read a quarter of the table (selective filters, or filters that
//!   reject the nearest rows);
//! - otherwise the rows the filter selects are read (through primary-key and index lookups where
//!   possible) and the filter is evaluated on them. If at most `max(1000, 5 % of the index)` rows
//!   pass, they are all the candidates (exact, and cheap: they are already in memory);
//! - else the graph is searched with membership in the passing set as its predicate
//!   (`AnnIndex::search_filtered`, which returns `n` rows whenever `n` pass).
//!
//! Rows outside the graph are added as the exact plan would see them: all with a non-NULL
//! distance the graph cannot hold, and the first `n` whose distance is NULL (NULL sorts first
//! ascending, and NULLs tie, so `n` of them are enough).
//!
//! The exact scan is used instead (and `EXPLAIN` says why) while the index is being built, when
//! the transaction has uncommitted writes (the index only holds committed rows), when the query
//! vector cannot be searched (wrong dimension, all zeros under cosine: the exact plan then
//! raises TiDB's error or returns TiDB's NULLs), or when a filter cannot be evaluated early.
//!
//! A vector index on the column that the query shape cannot use produces TiDB's warnings
//! (`ANN index not used: …`), collected in an [`AnnWarnings`] kept in the session config; the
//! session reads them with [`take_warnings`].

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float32Type, Schema, SchemaRef};
use datafusion::catalog::{Session as DfSession, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, Result as DfResult, ScalarValue, TableReference};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{provider_as_source, source_as_provider, TableType};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::prelude::{SessionConfig, SessionContext};
use embedb_ann::Metric;

#[path = "ann/range.rs"]
mod range;
use embedb_vector::{VectorFunction, VectorUdf};
use parking_lot::Mutex;

use super::{ann_key, SearchIndexes, VectorEntry};
use crate::sql::catalog::IndexKind;
use crate::sql::types::SqlType;
use crate::storage::table::{self, KvTable, Row};

/// Graph candidates per needed row, plus a constant: re-ranking a few more than `n` exactly
/// lifts recall, and covers rows the snapshot no longer has.
const OVERFETCH: usize = 2;
const OVERFETCH_EXTRA: usize = 10;

/// Candidates beyond `n` for an unfiltered search of an f32 index. Its graph distances are
/// already exact, so more candidates would only widen the beam (`ef_search`'s job) and cost row
/// reads; these few cover a distance the SQL function rounds differently from the graph's at
/// the k-th place. Rows the snapshot no longer has are covered by searching again for more.
const F32_EXTRA: usize = 2;

/// A filtered search takes the passing rows themselves as candidates when at most this many
/// pass, or at most this fraction of the index: computing those distances costs less than a
/// filtered graph walk, whose beam must wade through the rows the filter rejects.
const EXACT_MAX_ROWS: usize = 1000;
const EXACT_FRACTION: f64 = 0.05;

/// Widening steps of an unfiltered search whose candidates are gone from the snapshot.
const MAX_RETRIES: usize = 3;

/// Post-filtering (graph top-m, then the filter on those rows) reads rows one by one: it is
/// tried on indexes of at least this many rows, and given up (for the scan) once it would read
/// more than this fraction of them.
const POSTFILTER_MIN_ROWS: usize = 4 * EXACT_MAX_ROWS;
const POSTFILTER_MAX_FRACTION: f64 = 0.25;
/// Passing rows a post-filtered search collects beyond `n`. The graph's top-m is searched with a
/// beam of m, so the n nearest passing rows lie well inside it; the margin covers the ranks near
/// m, where an approximate top-m is least sure. (Each passing row costs about 1/s rows read.)
const POSTFILTER_EXTRA: usize = 10;

/// Warnings kept for the session (TiDB's `ANN index not used: …`).
#[derive(Default, Debug)]
pub struct AnnWarnings {
    inner: Mutex<WarningState>,
}

#[derive(Default, Debug)]
struct WarningState {
    /// Identifies the statement the warnings belong to (its optimisation start time).
    statement: Option<i64>,
    messages: Vec<String>,
}

impl AnnWarnings {
    fn add(&self, statement: Option<i64>, message: String) {
        let mut w = self.inner.lock();
        if w.statement != statement {
            w.statement = statement;
            w.messages.clear();
        }
        if !w.messages.contains(&message) {
            w.messages.push(message);
        }
    }

    /// The warnings of the last statement planned, emptied.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.inner.lock().messages)
    }
}

/// The ANN warnings of the last statement `ctx` planned (MySQL code 1105), emptied.
pub fn take_warnings(ctx: &SessionContext) -> Vec<String> {
    ctx.state().config().get_extension::<AnnWarnings>().map(|w| w.take()).unwrap_or_default()
}

/// The rule for `new_context`, and the config with its warning sink and search knobs installed.
pub fn rule(cfg: SessionConfig) -> (SessionConfig, Arc<dyn OptimizerRule + Send + Sync>) {
    let warnings = Arc::new(AnnWarnings::default());
    let cfg = cfg.with_extension(warnings.clone()).with_extension(Arc::new(AnnKnobs::default()));
    (cfg, Arc::new(AnnRule { warnings }))
}

/// Per-session search knobs: `@@embedb_hnsw_ef_search` (0 = each index's own `ef_search`).
#[derive(Debug, Default)]
pub struct AnnKnobs {
    ef_search: AtomicUsize,
}

/// The session variable that sets [`AnnKnobs`]' beam width.
pub const EF_SEARCH_VAR: &str = "embedb_hnsw_ef_search";

/// Apply `@@embedb_hnsw_ef_search = value` (already validated) to `ctx`'s searches.
pub fn set_ef_search(ctx: &SessionContext, value: &str) {
    if let Some(k) = ctx.state().config().get_extension::<AnnKnobs>() {
        k.ef_search.store(value.parse().unwrap_or(0), AtomicOrdering::Relaxed);
    }
}

/// The session's beam width for graph searches, None for the index's own.
fn session_ef(state: &dyn DfSession) -> Option<usize> {
    let ef = state.config().get_extension::<AnnKnobs>()?.ef_search.load(AtomicOrdering::Relaxed);
    (ef > 0).then_some(ef)
}

/// Rewrites top-k vector searches onto [`AnnTable`] (see the module doc).
#[derive(Debug)]
pub struct AnnRule {
    warnings: Arc<AnnWarnings>,
}

/// What an ANN scan needs to know, fixed at planning.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnSpec {
    /// The scan's table name, the qualifier of the columns in `filters`.
    pub table_ref: TableReference,
    /// Catalog key of the vector column.
    pub column: String,
    pub metric: Metric,
    pub query: Vec<f32>,
    /// Rows the plan above needs: k + offset.
    pub n: usize,
    /// Predicates on the table's rows (all must hold).
    pub filters: Vec<Expr>,
    /// The ORDER BY key on the table's columns: `VEC_…_DISTANCE(col, const)`, either order.
    /// The scan returns its rows sorted by it, and (see [`AnnTable::graph_scan`]) says so.
    pub order: Expr,
    /// A range search (`WHERE VEC_…_DISTANCE(col, const) < bound`, see [`range`]): the rows
    /// within `bound` of the query, however many; `n` is then found by searching.
    pub range: Option<f64>,
}

impl AnnSpec {
    /// TiDB's EXPLAIN text: `annIndex:COSINE(v..[1,2,3], limit:10)`.
    pub fn label(&self) -> String {
        let m = match self.metric {
            Metric::Cosine => "COSINE",
            Metric::L2 => "L2",
            Metric::InnerProduct => "INNER_PRODUCT",
        };
        match self.range {
            Some(bound) => format!("annIndex:{m}({}..{}, range:{})", self.column, truncated_vector(&self.query), format_g2(bound)),
            None => format!("annIndex:{m}({}..{}, limit:{})", self.column, truncated_vector(&self.query), self.n),
        }
    }
}

/// A vector as TiDB abbreviates it in plans: at most 5 elements, each with 2 significant digits
/// (Go's `%.2g`), then `(N more)...`.
pub fn truncated_vector(v: &[f32]) -> String {
    let mut s = String::from("[");
    for (i, x) in v.iter().take(5).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format_g2(*x as f64));
    }
    if v.len() > 5 {
        s.push_str(&format!(",({} more)...", v.len() - 5));
    }
    s.push(']');
    s
}

/// Go's `strconv.FormatFloat(x, 'g', 2, 64)`.
fn format_g2(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Round to 2 significant digits first: that fixes the exponent.
    let e = format!("{x:.1e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..2).contains(&exp) {
        let m = mantissa.trim_end_matches('0').trim_end_matches('.');
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (1 - exp).max(0) as usize;
        let f = format!("{x:.decimals$}");
        if f.contains('.') {
            f.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            f
        }
    }
}

impl OptimizerRule for AnnRule {
    fn name(&self) -> &str {
        "embedb_ann_index"
    }

    fn rewrite(&self, plan: LogicalPlan, config: &dyn OptimizerConfig) -> DfResult<Transformed<LogicalPlan>> {
        let statement = config.query_execution_start_time().map(|t| t.timestamp_nanos_opt().unwrap_or(0));
        let mut warnings = Vec::new();
        let out = walk(plan, None, &mut warnings)?;
        for w in warnings {
            self.warnings.add(statement, w);
        }
        Ok(out)
    }
}

/// Rewrites every `[Limit ←] Sort(fetch)` in the plan; `limit` is the row count a Limit right
/// above asks for.
fn walk(plan: LogicalPlan, limit: Option<usize>, warnings: &mut Vec<String>) -> DfResult<Transformed<LogicalPlan>> {
    match plan {
        LogicalPlan::Limit(l) => {
            use datafusion::logical_expr::{FetchType, SkipType};
            let n = match (l.get_skip_type()?, l.get_fetch_type()?) {
                (SkipType::Literal(s), FetchType::Literal(Some(f))) => s.checked_add(f),
                _ => None,
            };
            LogicalPlan::Limit(l).map_children(|c| walk(c, n, warnings))
        }
        LogicalPlan::Sort(s) => {
            let n = match (s.fetch, limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sort = LogicalPlan::Sort(s);
            match try_sort(&sort, n, warnings)? {
                Some(rewritten) => Ok(Transformed::yes(rewritten)),
                None => sort.map_children(|c| walk(c, None, warnings)),
            }
        }
        LogicalPlan::Filter(_) => match range::try_range(&plan)? {
            Some(rewritten) => Ok(Transformed::yes(rewritten)),
            None => plan.map_children(|c| walk(c, None, warnings)),
        },
        other => other.map_children(|c| walk(c, None, warnings)),
    }
}

fn strip_alias(e: Expr) -> Expr {
    match e {
        Expr::Alias(a) => strip_alias(*a.expr),
        e => e,
    }
}

/// `expr`, over the output of `chain[0]`, rewritten onto the columns of the scan at the end of
/// `chain` (Projection, Filter, Window and SubqueryAlias nodes only).
fn resolve(expr: Expr, chain: &[&LogicalPlan]) -> Option<Expr> {
    let Some((node, rest)) = chain.split_first() else { return Some(expr) };
    let e = match node {
        LogicalPlan::TableScan(_) => return Some(expr),
        // A window passes its input's columns through (its own outputs resolve to nothing).
        LogicalPlan::Filter(_) | LogicalPlan::Window(_) => expr,
        LogicalPlan::Projection(p) => substitute(expr, &p.schema, |i| strip_alias(p.expr[i].clone()))?,
        LogicalPlan::SubqueryAlias(a) => substitute(expr, &a.schema, |i| {
            let (q, f) = a.input.schema().qualified_field(i);
            Expr::Column(Column::new(q.cloned(), f.name()))
        })?,
        _ => return None,
    };
    resolve(e, rest)
}

/// `expr` with each column, found at index `i` of `schema`, replaced by `by(i)`; None if a
/// column is not in `schema`.
fn substitute(expr: Expr, schema: &DFSchema, by: impl Fn(usize) -> Expr) -> Option<Expr> {
    let mut ok = true;
    let e = expr
        .transform_up(|e| match e {
            Expr::Column(c) => match schema.index_of_column(&c) {
                Ok(i) => Ok(Transformed::yes(by(i))),
                Err(_) => {
                    ok = false;
                    Ok(Transformed::no(Expr::Column(c)))
                }
            },
            e => Ok(Transformed::no(e)),
        })
        .ok()?
        .data;
    ok.then_some(e)
}

/// `ROW_NUMBER()` / `RANK()` / `DENSE_RANK()` over no partition, ordered first by `key`
/// (resolved through `below`) ascending.
fn ranks_by(e: &Expr, key: &Expr, below: &[&LogicalPlan]) -> bool {
    let Expr::WindowFunction(w) = strip_alias(e.clone()) else { return false };
    let name = w.fun.to_string().to_ascii_lowercase();
    let p = &w.params;
    matches!(name.as_str(), "row_number" | "rank" | "dense_rank")
        && p.partition_by.is_empty()
        && p.filter.is_none()
        && p.order_by.first().is_some_and(|o| o.asc && resolve(o.expr.clone(), below).map(strip_alias).as_ref() == Some(key))
}

fn peel_column(e: &Expr) -> Option<&Column> {
    match e {
        Expr::Column(c) => Some(c),
        Expr::Cast(c) => peel_column(&c.expr),
        Expr::TryCast(c) => peel_column(&c.expr),
        _ => None,
    }
}

/// `VEC_*_DISTANCE(col, const)` (either order) → (function, column, constant).
fn distance_call(e: &Expr) -> Option<(VectorFunction, &Column, &Expr)> {
    let Expr::ScalarFunction(f) = e else { return None };
    let udf = f.func.inner().downcast_ref::<VectorUdf>()?;
    let func = udf.function();
    if !matches!(
        func,
        VectorFunction::CosineDistance | VectorFunction::L2Distance | VectorFunction::L1Distance | VectorFunction::NegativeInnerProduct
    ) || f.args.len() != 2
    {
        return None;
    }
    let constant = |e: &Expr| !e.any_column_refs() && !e.is_volatile();
    match (peel_column(&f.args[0]), peel_column(&f.args[1])) {
        (Some(c), _) if constant(&f.args[1]) => Some((func, c, &f.args[1])),
        (_, Some(c)) if constant(&f.args[0]) => Some((func, c, &f.args[0])),
        _ => None,
    }
}

/// Evaluate a constant expression to a vector (text form or list); None for NULL or anything
/// that is not a vector.
fn constant_vector(e: &Expr) -> Option<Vec<f32>> {
    let props = datafusion::execution::context::ExecutionProps::new();
    let phys = datafusion::physical_expr::create_physical_expr(e, &DFSchema::empty(), &props, &Default::default()).ok()?;
    let batch = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &RecordBatchOptions::new().with_row_count(Some(1))).ok()?;
    let arr = phys.evaluate(&batch).ok()?.into_array(1).ok()?;
    let v = ScalarValue::try_from_array(&arr, 0).ok()?;
    scalar_vector(&v)
}

fn scalar_vector(v: &ScalarValue) -> Option<Vec<f32>> {
    let list = match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            return embedb_vector::parse_vector(s).ok()
        }
        ScalarValue::List(a) if !a.is_null(0) => a.value(0),
        ScalarValue::LargeList(a) if !a.is_null(0) => a.value(0),
        ScalarValue::FixedSizeList(a) if !a.is_null(0) => a.value(0),
        _ => return None,
    };
    if list.null_count() > 0 {
        return None;
    }
    let f = cast(&list, &DataType::Float32).ok()?;
    Some(f.as_primitive::<Float32Type>().values().to_vec())
}

/// If `sort` (with row count `n`) is a top-k vector search over one table with a matching vector
/// index, the plan with that table's scan turned into an ANN scan.
fn try_sort(sort: &LogicalPlan, n: Option<usize>, warnings: &mut Vec<String>) -> DfResult<Option<LogicalPlan>> {
    let LogicalPlan::Sort(s) = sort else { return Ok(None) };
    let Some(first) = s.expr.first() else { return Ok(None) };
    // The chain below the sort, down to the scan. TiDB's hybrid query ranks in the same SELECT:
    // ROW_NUMBER() OVER (ORDER BY d) … ORDER BY d LIMIT n, so windows may be on it (checked
    // below: only rankings by the same distance pass).
    let Some((chain, scan)) = chain_to_scan(&s.input, true) else { return Ok(None) };
    let Some(key) = resolve(first.expr.clone(), &chain).map(strip_alias) else { return Ok(None) };
    let Some((func, col, constant)) = distance_call(&key) else { return Ok(None) };
    // A ranking window between the sort and the scan keeps its meaning on the candidates only
    // if it ranks by the same distance, ascending, over the whole input: then the top rows are
    // the first ones either way, and their ranks are the same.
    // A filter above the window filters ranked rows: it cannot move into the scan.
    let mut filtered_above = false;
    for (i, node) in chain.iter().enumerate() {
        match node {
            LogicalPlan::Filter(_) => filtered_above = true,
            LogicalPlan::Window(w) => {
                if filtered_above || !w.window_expr.iter().all(|e| ranks_by(e, &key, &chain[i + 1..])) {
                    return Ok(None);
                }
            }
            _ => {}
        }
    }
    let Some(IndexedColumn { base, previous, column, metrics }) = indexed_column(scan, col) else { return Ok(None) };
    let metrics: Vec<&str> = metrics.iter().map(String::as_str).collect();
    let wanted = wanted_metric(func);
    let Some(n) = n else {
        warnings.push("ANN index not used: only Top N queries (like ORDER BY ... LIMIT ...) can use ANN index".into());
        return Ok(None);
    };
    let Some((_, metric)) = wanted.filter(|(m, _)| metrics.contains(m)) else {
        warnings.push(format!("ANN index not used: not ordering by {} distance", metrics[0].to_ascii_uppercase()));
        return Ok(None);
    };
    if !first.asc {
        warnings.push(format!("ANN index not used: index can be used only when ordering by {}() in ASC order", func.name()));
        return Ok(None);
    }
    let Some(query) = constant_vector(constant) else { return Ok(None) };
    // Filters: those pushed into the scan and every Filter node of the chain, on table columns.
    let mut filters: Vec<Expr> = Vec::new();
    for f in &scan.filters {
        filters.push(f.clone());
    }
    for (j, node) in chain.iter().enumerate() {
        if let LogicalPlan::Filter(f) = node {
            let Some(p) = resolve(f.predicate.clone(), &chain[j + 1..]) else { return Ok(None) };
            for c in split_conjunction(p) {
                if !filters.contains(&c) {
                    filters.push(c);
                }
            }
        }
    }
    // A volatile predicate would give other answers here than in the Filter above.
    if filters.iter().any(|f| f.is_volatile()) {
        return Ok(None);
    }
    let spec = AnnSpec { table_ref: scan.table_name.clone(), column, metric, query, n, filters, order: key.clone(), range: None };
    if previous.as_ref() == Some(&spec) {
        return Ok(None);
    }
    with_ann_scan(sort, &scan.table_name, AnnTable { base, spec }).map(Some)
}

/// The nodes from `top` down to the table scan it reads (Projection, Filter and SubqueryAlias
/// nodes, and Window nodes if `windows`), the scan last; None for any other shape.
fn chain_to_scan(top: &LogicalPlan, windows: bool) -> Option<(Vec<&LogicalPlan>, &datafusion::logical_expr::TableScan)> {
    let mut chain: Vec<&LogicalPlan> = Vec::new();
    let mut node = top;
    loop {
        chain.push(node);
        match node {
            LogicalPlan::Projection(p) => node = p.input.as_ref(),
            LogicalPlan::Filter(f) => node = f.input.as_ref(),
            LogicalPlan::SubqueryAlias(a) => node = a.input.as_ref(),
            LogicalPlan::Window(w) if windows => node = w.input.as_ref(),
            LogicalPlan::TableScan(scan) => return Some((chain, scan)),
            _ => return None,
        }
    }
}

/// `plan` with the scan of `table_name` reading `table` instead.
fn with_ann_scan(plan: &LogicalPlan, table_name: &TableReference, table: AnnTable) -> DfResult<LogicalPlan> {
    let source = provider_as_source(Arc::new(table));
    let rewritten = plan.clone().transform_up(|p| match p {
        LogicalPlan::TableScan(mut t) if &t.table_name == table_name => {
            t.source = source.clone();
            Ok(Transformed::new(LogicalPlan::TableScan(t), true, TreeNodeRecursion::Stop))
        }
        p => Ok(Transformed::no(p)),
    })?;
    Ok(rewritten.data)
}

/// A scan's vector column with its vector indexes: the table's own provider (under an
/// [`AnnTable`] a previous pass made, whose spec is `previous`), the column's catalog key and
/// the indexes' metrics.
struct IndexedColumn {
    base: Arc<dyn TableProvider>,
    previous: Option<AnnSpec>,
    column: String,
    metrics: Vec<String>,
}

/// `col` of `scan`'s table if it has a vector index and the scan may be approximate.
fn indexed_column(scan: &datafusion::logical_expr::TableScan, col: &Column) -> Option<IndexedColumn> {
    if col.relation.as_ref().is_some_and(|r| r != &scan.table_name) {
        return None;
    }
    let provider = source_as_provider(&scan.source).ok()?;
    let (base, previous) = match provider.downcast_ref::<AnnTable>() {
        Some(a) => (a.base.clone(), Some(a.spec.clone())),
        None => (provider.clone(), None),
    };
    let kv = base.downcast_ref::<KvTable>()?;
    // UPDATE/DELETE find their target rows through a scan that exposes the row handle: those
    // must be exact, never approximate.
    if kv.with_handle {
        return None;
    }
    let column = kv.info.column(&col.name)?.key();
    let metrics: Vec<String> = kv
        .info
        .indexes
        .iter()
        .filter(|i| i.columns.first() == Some(&column))
        .filter_map(|i| match &i.kind {
            IndexKind::Vector { metric } => Some(metric.clone()),
            _ => None,
        })
        .collect();
    (!metrics.is_empty()).then_some(IndexedColumn { base, previous, column, metrics })
}

/// The index metric (catalog name and graph metric) that serves a distance function.
fn wanted_metric(func: VectorFunction) -> Option<(&'static str, Metric)> {
    match func {
        VectorFunction::CosineDistance => Some(("cosine", Metric::Cosine)),
        VectorFunction::L2Distance => Some(("l2", Metric::L2)),
        VectorFunction::NegativeInnerProduct => Some(("ip", Metric::InnerProduct)),
        _ => None,
    }
}

fn split_conjunction(e: Expr) -> Vec<Expr> {
    datafusion::logical_expr::utils::split_conjunction_owned(e)
}

/// A table scan that returns only the candidate rows of a top-k vector search.
#[derive(Debug)]
pub struct AnnTable {
    /// The table's ordinary provider (a `KvTable`).
    base: Arc<dyn TableProvider>,
    pub spec: AnnSpec,
}

/// The columns of a row that an index-only ANN scan fills from the graph (the others stay
/// NULL: the plan does not read them).
struct GraphColumns {
    vector: usize,
    /// The integer primary key, whose value is the handle.
    pk: Option<usize>,
    width: usize,
}

impl GraphColumns {
    fn row(&self, handle: i64, vector: Vec<f32>) -> Row {
        let mut values = vec![embedb_storage::Datum::Null; self.width];
        values[self.vector] = embedb_storage::Datum::Vector(vector);
        if let Some(pk) = self.pk {
            values[pk] = embedb_storage::Datum::Int(handle);
        }
        Row { handle, values }
    }
}

/// How the candidates were found (shown by EXPLAIN).
enum Candidates {
    Rows(Vec<Row>, String),
    Exact(String),
}

impl AnnTable {
    fn kv(&self) -> &KvTable {
        self.base.downcast_ref::<KvTable>().expect("AnnTable wraps a KvTable")
    }

    /// The candidate rows. `projection` is the columns the plan reads (None: all).
    fn candidates(&self, state: &dyn DfSession, extra_filters: &[Expr], projection: Option<&Vec<usize>>) -> crate::error::Result<Candidates> {
        let kv = self.kv();
        let Some(search) = SearchIndexes::of_txn(&kv.txn) else { return Ok(Candidates::Exact("no index registry".into())) };
        let Some(entry) = search.vector_for(&kv.info, &self.spec.column, self.spec.metric) else {
            return Ok(Candidates::Exact("index not loaded".into()));
        };
        if !entry.ready() {
            return Ok(Candidates::Exact("index is being built".into()));
        }
        if !kv.txn.is_empty() {
            return Ok(Candidates::Exact("transaction has uncommitted writes".into()));
        }
        let q = &self.spec.query;
        if q.len() != entry.index.dims() || (self.spec.metric == Metric::Cosine && q.iter().all(|&x| x == 0.0)) {
            return Ok(Candidates::Exact("query vector not searchable".into()));
        }
        if let Some(bound) = self.spec.range {
            // As many nearest rows as lie within the bound (the Filter above keeps exactly those).
            let most = EXACT_MAX_ROWS.max((entry.index.len() as f64 * POSTFILTER_MAX_FRACTION) as usize);
            let Some(n) = range::rows_within(&entry.index, q, bound, session_ef(state), most).map_err(|e| crate::error::SqlError::other(e.to_string()))? else {
                return Ok(Candidates::Exact("the range holds over a quarter of the rows".into()));
            };
            let within = AnnTable { base: self.base.clone(), spec: AnnSpec { n: n.max(1), range: None, ..self.spec.clone() } };
            // (DataFusion pushes the bound into the scan too: as a filter it would be sampled
            // and evaluated on rows read from the table, which the count above makes needless.)
            return within.candidates(state, &range::without_bound(extra_filters, &self.spec.order), projection);
        }
        let mut filters = self.spec.filters.clone();
        for f in extra_filters {
            if !filters.contains(f) {
                filters.push(f.clone());
            }
        }
        // `col IS NOT NULL` on the indexed column holds for every row of the graph: no filter,
        // only the rows without a vector are left out.
        let has_vector = |f: &Expr| matches!(f, Expr::IsNotNull(c) if matches!(c.as_ref(), Expr::Column(c) if c.name == self.spec.column));
        let with_nulls = !filters.iter().any(has_vector);
        if filters.iter().all(has_vector) {
            let f32 = entry.index.params().quantization == embedb_ann::Quantization::F32;
            let index_only = if f32 && !entry.chunked { self.index_only(kv, projection) } else { None };
            self.unfiltered(kv, &entry, session_ef(state), index_only, with_nulls)
        } else {
            self.filtered(state, kv, &entry, &filters)
        }
    }

    /// Where the vector column and the integer primary key are, if the plan reads no other
    /// column (`projection`): an f32 graph then holds all the plan needs of a row that the
    /// snapshot has unchanged.
    fn index_only(&self, kv: &KvTable, projection: Option<&Vec<usize>>) -> Option<GraphColumns> {
        let info = &kv.info;
        let vector = info.column_index(&self.spec.column)?;
        let pk = info
            .pk_handle
            .as_ref()
            .and_then(|pk| info.column_index(pk))
            .filter(|&i| matches!(info.columns[i].ty, SqlType::Int { unsigned: false, .. }));
        let needed = projection?;
        needed
            .iter()
            .all(|&i| i == vector || Some(i) == pk || (kv.with_handle && i == info.columns.len()))
            .then_some(GraphColumns { vector, pk, width: info.columns.len() })
    }

    /// The nearest rows by the graph. With `index_only`, a row the snapshot has unchanged since
    /// the graph took it is made from the graph's copy instead of being read from the table.
    /// Rows without a vector (NULL distance) are added unless `with_nulls` is false.
    fn unfiltered(&self, kv: &KvTable, entry: &VectorEntry, ef: Option<usize>, index_only: Option<GraphColumns>, with_nulls: bool) -> crate::error::Result<Candidates> {
        let n = self.spec.n;
        let len = entry.index.len();
        let mut want = if entry.index.params().quantization == embedb_ann::Quantization::F32 {
            n.saturating_add(F32_EXTRA)
        } else {
            n.saturating_mul(OVERFETCH).saturating_add(OVERFETCH_EXTRA)
        };
        let mut seen = HashSet::new();
        let mut rows = Vec::new();
        for _ in 0..=MAX_RETRIES {
            let hits = entry.index.search_keys(&self.spec.query, want.min(len.max(1)), ef).map_err(|e| crate::error::SqlError::other(e.to_string()))?;
            let mut from_graph: Vec<(i64, Vec<f32>)> = Vec::new();
            let mut read: Vec<i64> = Vec::new();
            for key in &hits {
                let h = entry.handle_of(*key);
                if seen.insert(h) {
                    let from_graph_copy = if index_only.is_some() { entry.index.get(*key) } else { None };
                    match from_graph_copy {
                        Some(v) => from_graph.push((h, v)),
                        None => read.push(h),
                    }
                }
            }
            if !from_graph.is_empty() {
                let handles: Vec<i64> = from_graph.iter().map(|(h, _)| *h).collect();
                let unchanged = entry.unchanged_since(&handles, kv.txn.start_version());
                let cols = index_only.as_ref().expect("only read from the graph when index-only");
                for ((h, v), ok) in from_graph.into_iter().zip(unchanged) {
                    if ok {
                        rows.push(cols.row(h, v));
                    } else {
                        read.push(h);
                    }
                }
            }
            for h in read {
                if let Some(r) = table::get_row(&kv.txn, &kv.info, h)? {
                    rows.push(r);
                }
            }
            if rows.len() >= n || hits.len() < want || want >= len {
                break;
            }
            want = want.saturating_mul(4);
        }
        let graph = rows.len();
        let (others, nulls): (Vec<i64>, Vec<i64>) = {
            let off = entry.offgraph();
            (off.others.iter().copied().collect(), off.nulls.iter().copied().take(n.saturating_mul(2)).collect())
        };
        for h in others {
            if seen.insert(h) {
                if let Some(r) = table::get_row(&kv.txn, &kv.info, h)? {
                    rows.push(r);
                }
            }
        }
        let mut taken = 0;
        for h in nulls {
            if taken == n || !with_nulls {
                break;
            }
            if seen.insert(h) {
                if let Some(r) = table::get_row(&kv.txn, &kv.info, h)? {
                    rows.push(r);
                    taken += 1;
                }
            }
        }
        Ok(Candidates::Rows(rows, format!("graph candidates:{graph}")))
    }

    /// Filtered search: post-filtering the graph's nearest rows when the filter keeps enough of
    /// the table, else reading what the filter selects (see [`AnnTable::scan_filtered`]).
    fn filtered(&self, state: &dyn DfSession, kv: &KvTable, entry: &VectorEntry, filters: &[Expr]) -> crate::error::Result<Candidates> {
        if entry.index.len() >= POSTFILTER_MIN_ROWS {
            if let Some(c) = self.post_filtered(state, kv, entry, filters)? {
                return Ok(c);
            }
        }
        self.scan_filtered(state, kv, entry, filters)
    }

    /// Sample the filter's selectivity `s` on rows the index names; if reading about
    /// `target / s` rows is cheap, take the graph's top-m (m ≈ 1.5 · target / s), evaluate the
    /// filter on those rows, and widen m until `target` of them pass. When at least that many of
    /// the (approximately) nearest m pass, the best passing rows overall are among them.
    /// None: not worth it (selective filter, or one that rejects the nearest rows).
    fn post_filtered(&self, state: &dyn DfSession, kv: &KvTable, entry: &VectorEntry, filters: &[Expr]) -> crate::error::Result<Option<Candidates>> {
        let n = self.spec.n;
        let len = entry.index.len();
        let target = n.saturating_add(POSTFILTER_EXTRA);
        let cap = (len as f64 * POSTFILTER_MAX_FRACTION) as usize;
        let Some(filter) = RowFilter::new(state, &self.spec.table_ref, kv, filters) else { return Ok(None) };
        let filter_key = format!("{filters:?}");
        let selectivity = match entry.selectivity(&filter_key) {
            Some(s) => s,
            None => {
                // The index's own sampler walks its key list evenly; it hands us the keys.
                let sample = std::cell::RefCell::new(Vec::new());
                entry.index.estimate_filter(1, None, &|k: u64| {
                    sample.borrow_mut().push(entry.handle_of(k));
                    false
                });
                let sample = sample.into_inner();
                let Some((passed, read)) = filter.count(&sample)? else { return Ok(None) };
                let s = passed as f64 / read.max(1) as f64;
                entry.remember_selectivity(filter_key, s);
                s
            }
        };
        if selectivity == 0.0 {
            return Ok(None);
        }
        let mut m = (target as f64 / selectivity * 1.5).ceil() as usize + OVERFETCH_EXTRA;
        let (others, nulls): (Vec<i64>, Vec<i64>) = {
            let off = entry.offgraph();
            (off.others.iter().copied().collect(), off.nulls.iter().copied().collect())
        };
        if m > cap || others.len() + nulls.len() > cap {
            return Ok(None);
        }
        let mut seen: HashSet<i64> = HashSet::new();
        let mut out: Vec<Row> = Vec::new();
        loop {
            let want = m.min(len);
            // Keys only: the plan computes the distances of the rows that pass.
            let hits = entry.index.search_keys(&self.spec.query, want, session_ef(state)).map_err(|e| crate::error::SqlError::other(e.to_string()))?;
            let fresh: Vec<i64> = hits.iter().map(|k| entry.handle_of(*k)).filter(|h| seen.insert(*h)).collect();
            let Some(rows) = filter.passing(&fresh, usize::MAX)? else { return Ok(None) };
            out.extend(rows);
            if out.len() >= target || hits.len() < want || want == len {
                break;
            }
            m = m.saturating_mul(3);
            if m > cap {
                return Ok(None);
            }
        }
        let graph = out.len();
        // Rows outside the graph, as in the exact plan: all with a distance, n with NULL.
        let Some(rows) = filter.passing(&others, usize::MAX)? else { return Ok(None) };
        out.extend(rows);
        let mut taken = 0;
        for chunk in nulls.chunks(n.max(1).saturating_mul(2)) {
            if taken >= n {
                break;
            }
            let Some(rows) = filter.passing(chunk, n - taken)? else { return Ok(None) };
            taken += rows.len();
            out.extend(rows);
        }
        let how = format!("post-filtered graph: {} nearest read, {graph} pass (sampled selectivity {selectivity:.3})", seen.len());
        Ok(Some(Candidates::Rows(out, how)))
    }

    /// Read the rows the filter selects (through primary-key and index lookups where it can),
    /// evaluate it, and search among the rows that pass: all of them when they are few, else
    /// the graph restricted to them.
    fn scan_filtered(&self, state: &dyn DfSession, kv: &KvTable, entry: &VectorEntry, filters: &[Expr]) -> crate::error::Result<Candidates> {
        let n = self.spec.n;
        let rows = kv.read_rows(filters)?;
        let mask = RowFilter::new(state, &self.spec.table_ref, kv, filters).and_then(|f| f.mask(&rows));
        let passing = match mask {
            Some(mask) => rows.into_iter().zip(mask).filter_map(|(r, keep)| keep.then_some(r)).collect::<Vec<_>>(),
            None => return Ok(Candidates::Exact("filter not evaluable early".into())),
        };
        let small = EXACT_MAX_ROWS.max((entry.index.len() as f64 * EXACT_FRACTION) as usize);
        // A chunked graph's nearest keys may name few distinct rows: its passing rows are all
        // candidates.
        if passing.len() <= small || entry.chunked {
            let how = format!("exact over {} filtered rows", passing.len());
            return Ok(Candidates::Rows(passing, how));
        }
        let keys: HashSet<u64> = passing.iter().map(|r| ann_key(r.handle)).collect();
        let want = n.saturating_mul(OVERFETCH).saturating_add(OVERFETCH_EXTRA);
        let hits = entry
            .index
            .search_filtered(&self.spec.query, want, session_ef(state), |k| keys.contains(&k))
            .map_err(|e| crate::error::SqlError::other(e.to_string()))?;
        let chosen: HashSet<i64> = hits.iter().map(|(k, _)| entry.handle_of(*k)).collect();
        let off = entry.offgraph();
        let mut nulls = 0;
        let mut out = Vec::with_capacity(chosen.len() + 8);
        for r in passing {
            let keep = if chosen.contains(&r.handle) || off.others.contains(&r.handle) {
                true
            } else if nulls < n && off.nulls.contains(&r.handle) {
                nulls += 1;
                true
            } else {
                false
            };
            if keep {
                out.push(r);
            }
        }
        let how = format!("filtered graph over {} of {} rows", keys.len(), entry.index.len());
        Ok(Candidates::Rows(out, how))
    }
}

/// A search's filters, ready to run on rows read by handle. They are evaluated on a batch of the
/// columns they read only, and those are the only columns decoded until a row passes: a
/// post-filtered search reads hundreds of rows to keep a few dozen, and most of each row is
/// usually its vector.
struct RowFilter<'a> {
    kv: &'a KvTable,
    /// Table columns the filters read (positions, and their column ids for decoding), and
    /// whether they read the hidden handle column.
    positions: Vec<usize>,
    ids: Vec<u32>,
    handle: bool,
    schema: SchemaRef,
    exprs: Vec<Arc<dyn PhysicalExpr>>,
}

impl<'a> RowFilter<'a> {
    /// None when a filter cannot be evaluated here (the plan then filters the exact scan).
    fn new(state: &dyn DfSession, table_ref: &TableReference, kv: &'a KvTable, filters: &[Expr]) -> Option<Self> {
        let full = TableProvider::schema(kv);
        let width = kv.info.columns.len();
        let mut read: Vec<usize> = Vec::new();
        for f in filters {
            for c in f.column_refs() {
                let i = full.index_of(&c.name).ok()?;
                if !read.contains(&i) {
                    read.push(i);
                }
            }
        }
        read.sort_unstable();
        let handle = read.last() == Some(&width);
        let positions: Vec<usize> = read.iter().copied().filter(|&i| i < width).collect();
        let ids = positions.iter().map(|&p| kv.info.columns[p].id).collect();
        let schema = Arc::new(full.project(&read).ok()?);
        let df_schema = DFSchema::try_from_qualified_schema(table_ref.clone(), &schema).ok()?;
        let exprs = filters.iter().map(|f| state.create_physical_expr(f.clone(), &df_schema).ok()).collect::<Option<Vec<_>>>()?;
        Some(RowFilter { kv, positions, ids, handle, schema, exprs })
    }

    /// Which of `rows` (with at least the filters' columns decoded) pass every filter.
    fn mask(&self, rows: &[Row]) -> Option<Vec<bool>> {
        let info = &self.kv.info;
        let mut columns = Vec::with_capacity(self.positions.len() + 1);
        for &p in &self.positions {
            let vals: Vec<&embedb_storage::Datum> = rows.iter().map(|r| &r.values[p]).collect();
            columns.push(crate::sql::types::datums_to_array(&info.columns[p].ty, &vals).ok()?);
        }
        if self.handle {
            columns.push(Arc::new(rows.iter().map(|r| r.handle).collect::<Int64Array>()) as ArrayRef);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        let batch = RecordBatch::try_new_with_options(self.schema.clone(), columns, &options).ok()?;
        let mut keep = vec![true; rows.len()];
        for e in &self.exprs {
            let arr = e.evaluate(&batch).ok()?.into_array(batch.num_rows()).ok()?;
            let b: &BooleanArray = arr.as_boolean_opt()?;
            for (i, k) in keep.iter_mut().enumerate() {
                *k = *k && b.is_valid(i) && b.value(i);
            }
        }
        Some(keep)
    }

    /// The stored rows of `handles` that exist, and which of them pass (None when the filters
    /// cannot be evaluated on them).
    fn read(&self, handles: &[i64]) -> crate::error::Result<(Vec<(i64, Vec<u8>)>, Option<Vec<bool>>)> {
        let encoded = self.kv.encoded_rows_by_handles(handles)?;
        let partial = encoded
            .iter()
            .map(|(h, v)| table::decode_columns(&self.kv.info, *h, v, &self.ids))
            .collect::<crate::error::Result<Vec<_>>>()?;
        let mask = self.mask(&partial);
        Ok((encoded, mask))
    }

    /// The rows of `handles` that exist and pass, whole, at most `limit` of them (in `handles`'
    /// order). None when the filters cannot be evaluated on them.
    fn passing(&self, handles: &[i64], limit: usize) -> crate::error::Result<Option<Vec<Row>>> {
        let (encoded, Some(mask)) = self.read(handles)? else { return Ok(None) };
        let mut out = Vec::new();
        for ((h, v), keep) in encoded.iter().zip(mask) {
            if keep && out.len() < limit {
                out.push(table::decode(&self.kv.info, *h, v)?);
            }
        }
        Ok(Some(out))
    }

    /// Of the rows of `handles` that exist: how many pass, and how many there are.
    fn count(&self, handles: &[i64]) -> crate::error::Result<Option<(usize, usize)>> {
        let (_, mask) = self.read(handles)?;
        Ok(mask.map(|m| (m.iter().filter(|&&b| b).count(), m.len())))
    }
}

#[async_trait]
impl TableProvider for AnnTable {
    fn schema(&self) -> SchemaRef {
        self.base.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let why = match self.graph_scan(state, projection, filters)? {
            Ok(exec) => return Ok(exec),
            Err(why) => why,
        };
        let inner = self.base.scan(state, projection, filters, limit).await?;
        Ok(Arc::new(AnnScanExec {
            label: format!("{}, exact scan ({why})", self.spec.label()),
            properties: inner.properties().clone(),
            inner,
            site: None,
        }))
    }
}

impl AnnTable {
    /// `batch` (all the table's columns) sorted by the distance of its vectors to the query,
    /// ascending, NULL first, stably. The distances are the SQL function's own
    /// ([`embedb_vector::distances_to`]), so the order is the one the ORDER BY asks for.
    fn by_distance(&self, batch: RecordBatch) -> DfResult<RecordBatch> {
        let Some(i) = self.kv().info.column_index(&self.spec.column) else { return Ok(batch) };
        let function = match self.spec.metric {
            Metric::Cosine => VectorFunction::CosineDistance,
            Metric::L2 => VectorFunction::L2Distance,
            Metric::InnerProduct => VectorFunction::NegativeInnerProduct,
        };
        // The ORDER BY's own function: a `VEC_CHUNKS_*` distance takes each row's best chunk.
        let chunks = matches!(&self.spec.order, Expr::ScalarFunction(f) if f.func.inner().downcast_ref::<VectorUdf>().is_some_and(VectorUdf::is_chunks));
        let d = embedb_vector::distances_to(function, batch.column(i), &self.spec.query, chunks)?;
        let d = d.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
        // NULL first (as MySQL sorts ascending), then by value; a stable sort keeps handle order.
        order.sort_by(|&a, &b| {
            let key = |r: u32| d.is_valid(r as usize).then(|| d.value(r as usize));
            match (key(a), key(b)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            }
        });
        if order.windows(2).all(|w| w[0] < w[1]) {
            return Ok(batch);
        }
        Ok(datafusion::arrow::compute::take_record_batch(&batch, &datafusion::arrow::array::UInt32Array::from(order))?)
    }

    /// The ordering the scan's rows have, as a sort over its output (`schema`) would state it:
    /// `order ASC` (NULL first). Declared only for a key of the plain column, so that the value
    /// sorted by is the value the key computes; DataFusion then drops the Sort above the scan
    /// (or keeps only its limit).
    fn ordering(&self, state: &dyn DfSession, schema: &SchemaRef) -> Option<datafusion::physical_expr::LexOrdering> {
        let (_, col, _) = distance_call(&self.spec.order)?;
        let Expr::ScalarFunction(f) = &self.spec.order else { return None };
        if !f.args.iter().any(|a| matches!(a, Expr::Column(c) if c == col)) {
            return None;
        }
        let df_schema = DFSchema::try_from_qualified_schema(self.spec.table_ref.clone(), schema).ok()?;
        let expr = state.create_physical_expr(self.spec.order.clone(), &df_schema).ok()?;
        let options = datafusion::arrow::compute::SortOptions { descending: false, nulls_first: true };
        datafusion::physical_expr::LexOrdering::new([datafusion::physical_expr::PhysicalSortExpr { expr, options }])
    }

    /// The candidate rows' scan, or why the exact scan must be used instead (index being built,
    /// uncommitted writes, a query vector the graph cannot take, …). Synchronous: a cached plan
    /// re-binds its scan through here without planning again.
    fn graph_scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
    ) -> DfResult<std::result::Result<Arc<dyn ExecutionPlan>, String>> {
        let (batch, label) = match self.graph_rows(state, filters, projection)? {
            Ok(found) => found,
            Err(why) => return Ok(Err(why)),
        };
        let inner: Arc<dyn ExecutionPlan> = MemorySourceConfig::try_new_exec(&[vec![batch]], self.base.schema(), projection.cloned())?;
        let mut properties = inner.properties().clone();
        if let Some(ordering) = self.ordering(state, &inner.schema()) {
            let eq = datafusion::physical_expr::EquivalenceProperties::new_with_orderings(inner.schema(), [ordering]);
            properties = Arc::new(properties.as_ref().clone().with_eq_properties(eq));
        }
        Ok(Ok(Arc::new(AnnScanExec {
            label,
            inner,
            properties,
            site: Some(ScanSite {
                table: AnnTable { base: self.base.clone(), spec: self.spec.clone() },
                projection: projection.cloned(),
                filters: filters.to_vec(),
            }),
        })))
    }

    /// The graph's candidate rows, all columns, with the EXPLAIN text of how they were found;
    /// or why the exact scan must be used instead.
    fn graph_rows(
        &self,
        state: &dyn DfSession,
        filters: &[Expr],
        projection: Option<&Vec<usize>>,
    ) -> DfResult<std::result::Result<(RecordBatch, String), String>> {
        let (mut rows, how) = match self.candidates(state, filters, projection).map_err(crate::error::to_df)? {
            Candidates::Rows(rows, how) => (rows, how),
            Candidates::Exact(why) => return Ok(Err(why)),
        };
        // By distance, as the ORDER BY wants them, and rows at one distance in handle order
        // (the order the exact scan reads them in).
        rows.sort_unstable_by_key(|r| r.handle);
        let kv = self.kv();
        let batch = table::rows_to_batch(&kv.info, &rows, &self.base.schema(), kv.with_handle).map_err(crate::error::to_df)?;
        let batch = self.by_distance(batch)?;
        // The spec's part of the label is written only when displayed (it formats floats).
        Ok(Ok((batch, format!("{how}, rows:{}", rows.len()))))
    }
}

/// How a graph-served [`AnnScanExec`] was made, so that a cached plan can make it again.
#[derive(Debug)]
pub struct ScanSite {
    table: AnnTable,
    projection: Option<Vec<usize>>,
    /// The filters DataFusion pushed into the scan.
    filters: Vec<Expr>,
}

/// A graph-served ANN scan without its transaction (and rows): what a cached plan keeps in
/// order to make the scan again for another statement. (Keeping the scan itself would keep its
/// transaction's storage snapshot alive for as long as the plan is cached.)
#[derive(Debug)]
pub struct DetachedScan {
    info: crate::sql::catalog::TableInfo,
    with_handle: bool,
    /// The table's schema as `KvTable` has it (made once, not per run).
    table_schema: SchemaRef,
    pub spec: AnnSpec,
    projection: Option<Vec<usize>>,
    filters: Vec<Expr>,
}

impl DetachedScan {
    /// The scan's rows (projected as the plan reads them) in `txn` for `query`, with `subst`
    /// applied to every filter (a filter may name the query vector too, e.g. a bound on the
    /// distance); None when it needs the exact scan.
    pub fn bind(
        &self,
        state: &dyn DfSession,
        txn: Arc<embedb_storage::Txn>,
        query: Vec<f32>,
        subst: &dyn Fn(Expr) -> Expr,
    ) -> DfResult<Option<RecordBatch>> {
        let base = Arc::new(KvTable::with_schema(self.info.clone(), txn, self.with_handle, self.table_schema.clone()));
        let spec = AnnSpec {
            table_ref: self.spec.table_ref.clone(),
            column: self.spec.column.clone(),
            metric: self.spec.metric,
            query,
            n: self.spec.n,
            filters: self.spec.filters.iter().cloned().map(subst).collect(),
            range: self.spec.range,
            // Not re-bound: a bound scan's rows come sorted by `query` (`by_distance`), and only a
            // scan being planned reads the key (`ordering`). (Re-binding it would make the text of
            // a query vector bound as numbers.)
            order: self.spec.order.clone(),
        };
        let filters: Vec<Expr> = self.filters.iter().cloned().map(subst).collect();
        let Ok((batch, _)) = (AnnTable { base, spec }).graph_rows(state, &filters, self.projection.as_ref())? else { return Ok(None) };
        Ok(Some(match &self.projection {
            Some(p) => batch.project(p)?,
            None => batch,
        }))
    }
}

/// The ANN scan's plan node: the candidate rows, shown with TiDB's `annIndex:` text.
#[derive(Debug)]
pub struct AnnScanExec {
    /// How the rows were found; after the spec's label when there is no `site`.
    label: String,
    inner: Arc<dyn ExecutionPlan>,
    /// `inner`'s, and for graph-served rows their order by distance.
    properties: Arc<PlanProperties>,
    /// Set when the rows came from the graph (None: the exact scan).
    site: Option<ScanSite>,
}

impl AnnScanExec {
    /// For a graph-served scan: the scan detached from its transaction.
    pub fn detach(&self) -> Option<DetachedScan> {
        let site = self.site.as_ref()?;
        let kv = site.table.kv();
        Some(DetachedScan {
            info: kv.info.clone(),
            with_handle: kv.with_handle,
            table_schema: kv.schema(),
            spec: site.table.spec.clone(),
            projection: site.projection.clone(),
            filters: site.filters.clone(),
        })
    }
}

impl DisplayAs for AnnScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.site {
            Some(site) => write!(f, "AnnIndexScan: {}, {}", site.table.spec.label(), self.label),
            None => write!(f, "AnnIndexScan: {}", self.label),
        }
    }
}

impl ExecutionPlan for AnnScanExec {
    fn name(&self) -> &str {
        "AnnIndexScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        self.inner.execute(partition, context)
    }
}

#[cfg(test)]
#[path = "ann/tests.rs"]
pub(crate) mod tests;
