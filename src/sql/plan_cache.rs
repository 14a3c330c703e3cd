//! The plan cache: a repeated vector search skips parsing, planning and optimising.
//!
//! A search application sends one statement shape over and over, with only the query vector
//! changed: `SELECT id, VEC_COSINE_DISTANCE(v, '[0.12, …]') AS d FROM docs ORDER BY d LIMIT 10`.
//! Planning it (tokenising a 4 KB literal, DataFusion's analyzer, optimizer and physical planner)
//! costs several times the graph search itself. Like TiDB's non-prepared plan cache, each session
//! keeps the physical plans of the statement shapes it ran and runs a repeat by re-binding one:
//!
//! 1. [`Shape::of`] reads the statement text once: a SELECT whose vector literals (`'[…]'`)
//!    become `?` in the shape's key and are its parameters. Text that could plan differently from
//!    one run to the next (user and system variables, time and session functions, comments,
//!    `FOR UPDATE`, functions outside a short list of deterministic ones) has no shape.
//! 2. On a miss the statement runs as usual. If each parameter is an argument of a
//!    `VEC_*_DISTANCE(column, '[…]')` call (so no constant folding can have consumed it) and the
//!    physical plan reads one table, through a graph-served `AnnScanExec`, the session keeps the
//!    plan ([`PlanCache::offer`]), stamped with the catalog version read before its transaction.
//!    In the kept plan the scan is a slot for rows ([`ScanSlot`]) and each parameter's literal a
//!    slot for a value ([`Param`]; the query vector's holds it parsed). The scan itself is kept
//!    detached from its transaction ([`DetachedScan`]): a kept transaction would pin its storage
//!    snapshot.
//! 3. On a hit ([`Session::run_cached`]) in the statement's own transaction: the catalog version
//!    must still be the stamp (DDL from any session bumps it); the ANN scan runs again with the
//!    new vector ([`DetachedScan::bind`]); its rows and the new values fill the slots; a copy of
//!    the plan's nodes with fresh state runs. If the scan now needs the exact path (uncommitted
//!    writes, an index rebuild, a vector the graph cannot take) or the parameters do not bind,
//!    the statement is planned from scratch instead.
//! 4. A prepared statement may bind its vectors as numbers (`prepared::Bound::Vector`, what the
//!    in-process Python API does with numpy arrays): the shape then holds the numbers, and a hit
//!    never makes their text (4 KB for 384 floats, otherwise written and read back on every
//!    call). Only planning makes it ([`Shape::with_texts`]).
//!
//! `SET` and DDL clear the session's cache; `SET tidb_enable_non_prepared_plan_cache = OFF` turns it
//! off, and `SELECT @@last_plan_from_cache` says whether the previous statement used it (TiDB's
//! names for both).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use datafusion::arrow::array::{Float32Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{ColumnarValue, Expr};
use datafusion::physical_expr::expressions::{DynamicFilterPhysicalExpr, Literal};
use datafusion::physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream};
use datafusion::sql::sqlparser::ast::{self, Statement};
use embedb_storage::Txn;

use crate::error::Result;
use crate::index::search::ann::{AnnScanExec, DetachedScan};
use crate::session::{Output, Session};

mod direct;
use direct::Direct;

/// Shapes kept per session; the cache is emptied when full (shapes are few in practice).
const CAPACITY: usize = 64;

/// Functions a cacheable statement may call (deterministic, independent of the session).
const CALLS: &[&str] = &[
    "vec_cosine_distance", "vec_l2_distance", "vec_l1_distance", "vec_negative_inner_product",
    // keywords that may precede a parenthesis
    "select", "from", "where", "and", "or", "not", "in", "on", "join", "as", "over", "by", "exists",
    // deterministic functions
    "abs", "round", "floor", "ceil", "coalesce", "ifnull", "if", "cast", "lower", "upper", "length",
    "char_length", "concat", "substring", "substr", "left", "right", "trim", "greatest", "least",
    "count", "sum", "avg", "min", "max", "row_number", "rank", "dense_rank",
];

/// Words that make a statement depend on more than its text, or not a plain read.
const REJECT: &[&str] = &[
    "into", "for", "lock", "share", "sql_calc_found_rows", "current_date", "current_time",
    "current_timestamp", "current_user", "current_role", "localtime", "localtimestamp", "utc_date",
    "utc_time", "utc_timestamp", "information_schema", "performance_schema",
];

/// A statement's shape: its text with each vector literal replaced by `?`, and those literals.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub key: String,
    /// The literals' text (without quotes), in order; empty for a parameter in `typed`.
    pub params: Vec<String>,
    /// Parameters bound as numbers (`prepared::Bound::Vector`), by their index in `params`:
    /// their text is made only if the statement is planned ([`Shape::with_texts`]).
    pub typed: Vec<(usize, Arc<[f32]>)>,
}

impl Shape {
    /// The shape of a cacheable SELECT, or None (see the module doc).
    pub fn of(sql: &str) -> Option<Shape> {
        Self::scan(sql, None, &[])
    }

    /// The shape of a prepared SELECT executed with `args`: each `?` bound to a vector's text
    /// (`'[…]'`) is a parameter; any other bound value means no shape (a point get by key needs
    /// no plan, and other values may be folded into the plan).
    pub fn of_prepared(sql: &str, args: &[ast::Expr]) -> Option<Shape> {
        Self::scan(sql, Some(args), &[])
    }

    /// Like [`Shape::of_prepared`], with vectors bound as numbers (`typed`: one per argument,
    /// Some for those): their parameters keep the numbers and no text.
    pub fn of_prepared_typed(sql: &str, args: &[ast::Expr], typed: &[Option<Arc<[f32]>>]) -> Option<Shape> {
        Self::scan(sql, Some(args), typed)
    }

    /// The shape with every parameter's text (made for those bound as numbers): what planning
    /// and keeping a plan need.
    pub fn with_texts(mut self) -> Shape {
        for (i, v) in std::mem::take(&mut self.typed) {
            self.params[i] = embedb_vector::format_vector(&v);
        }
        self
    }

    fn scan(sql: &str, args: Option<&[ast::Expr]>, typed_args: &[Option<Arc<[f32]>>]) -> Option<Shape> {
        let mut typed = Vec::new();
        let mut arg_no = 0;
        let mut args = args.map(|a| a.iter());
        let b = sql.as_bytes();
        let first = b.iter().position(|c| !c.is_ascii_whitespace())?;
        if !b[first..].get(..6)?.eq_ignore_ascii_case(b"select") || b.get(first + 6).is_some_and(|&c| is_word(c)) {
            return None;
        }
        let mut key = String::with_capacity(128);
        let mut params = Vec::new();
        let mut i = first;
        while i < b.len() {
            let c = b[i];
            match c {
                b'\'' | b'"' | b'`' => {
                    let (end, plain) = quoted(b, i)?;
                    let body = &sql[i + 1..end - 1];
                    if c == b'\'' && plain && body.trim_start().starts_with('[') {
                        key.push('?');
                        params.push(body.to_string());
                    } else {
                        key.push_str(&sql[i..end]);
                    }
                    i = end;
                }
                b'?' if args.is_some() => {
                    let arg = args.as_mut()?.next()?;
                    let vector = match typed_args.get(arg_no).cloned().flatten() {
                        Some(v) => {
                            typed.push((params.len(), v));
                            String::new()
                        }
                        None => match arg {
                            ast::Expr::Value(v) => match &v.value {
                                ast::Value::SingleQuotedString(t) if t.trim_start().starts_with('[') => t.clone(),
                                _ => return None,
                            },
                            _ => return None,
                        },
                    };
                    arg_no += 1;
                    key.push('?');
                    params.push(vector);
                    i += 1;
                }
                b'@' | b'?' | b'#' | b';' | b'\\' => return None,
                b'-' if b.get(i + 1) == Some(&b'-') => return None,
                b'/' if b.get(i + 1) == Some(&b'*') => return None,
                c if is_word(c) => {
                    let start = i;
                    while i < b.len() && is_word(b[i]) {
                        i += 1;
                    }
                    let word = &sql[start..i];
                    let lower = word.to_ascii_lowercase();
                    if REJECT.contains(&lower.as_str()) {
                        return None;
                    }
                    let next = b[i..].iter().find(|c| !c.is_ascii_whitespace());
                    if next == Some(&b'(') && !CALLS.contains(&lower.as_str()) {
                        return None;
                    }
                    key.push_str(word);
                }
                c if c.is_ascii() => {
                    key.push(c as char);
                    i += 1;
                }
                // Unquoted non-ASCII text (identifiers): not worth the care.
                _ => return None,
            }
        }
        (!params.is_empty()).then_some(Shape { key, params, typed })
    }

    /// True if every parameter of this shape is, in the parsed statement, an argument of a
    /// `VEC_*_DISTANCE` call whose other argument is a column: then the optimizer cannot have
    /// folded it into something else, and it reaches the plan as that literal.
    pub fn well_placed(&self, stmt: &Statement) -> bool {
        use std::ops::ControlFlow;
        let is_param = |e: &ast::Expr| match e {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => self.params.contains(s),
                _ => false,
            },
            _ => false,
        };
        let (mut total, mut placed) = (0usize, 0usize);
        let _ = ast::visit_expressions(stmt, |e: &ast::Expr| {
            if is_param(e) {
                total += 1;
            }
            if let ast::Expr::Function(f) = e {
                let name = f.name.to_string().to_ascii_lowercase();
                if CALLS[..4].contains(&name.as_str()) {
                    let args = crate::sql::rewrite::plain_args(f);
                    if let [a, b] = args.as_slice() {
                        let column = |e: &ast::Expr| matches!(e, ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_));
                        if (column(a) && is_param(b)) || (is_param(a) && column(b)) {
                            placed += 1;
                        }
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        total == self.params.len() && placed == total
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

/// The end (one past the closing quote) of the quoted text starting at `start`, and whether its
/// body needs no unescaping (no backslash, no doubled quote).
fn quoted(b: &[u8], start: usize) -> Option<(usize, bool)> {
    let q = b[start];
    let mut plain = true;
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if q != b'`' => {
                plain = false;
                i += 2;
            }
            c if c == q => {
                if b.get(i + 1) == Some(&q) {
                    plain = false;
                    i += 2;
                } else {
                    return Some((i + 1, plain));
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// A statement waiting to learn whether its plan can be kept.
pub struct Pending {
    pub key: String,
    pub shape: Shape,
    /// The catalog version read before the statement's transaction began.
    pub version: u64,
}

/// A kept plan.
pub struct CachedPlan {
    version: u64,
    schema: SchemaRef,
    /// The plan, its ANN scan replaced by `leaf` and its parameters' literals by `slots`. Made
    /// once; each run takes a copy of its nodes with fresh state ([`fresh`]).
    plan: Arc<dyn ExecutionPlan>,
    leaf: Arc<ScanSlot>,
    slots: Vec<Slot>,
    /// The ANN scan, without its transaction.
    scan: DetachedScan,
    /// The parameters the plan was made with.
    params: Vec<String>,
    /// The parameter that is the ANN scan's query vector.
    query_param: usize,
    task: Arc<TaskContext>,
    /// Set when the plan only picks columns of the scan's rows and limits them (the common
    /// `SELECT id … ORDER BY VEC_…_DISTANCE(…) LIMIT k`): a run then does that itself instead
    /// of running the plan's nodes.
    direct: Option<Direct>,
}

/// Where a parameter's literal was in a kept plan.
struct Slot {
    /// The literal's text when the plan was made.
    text: String,
    param: Arc<Param>,
}

/// New parameter values for a cached plan.
struct Binding {
    query: Vec<f32>,
    /// The query vector, parsed, for the plan's expressions (the distance functions then need
    /// not parse it again).
    query_value: ScalarValue,
    /// The old text of the query vector's parameter.
    query_old: String,
    /// Old literal text → new.
    literals: Vec<(String, NewText)>,
}

/// A parameter's new text; for a vector bound as numbers, made when first asked for (a filter
/// that names the query vector), else never.
enum NewText {
    Text(String),
    Vector(Arc<[f32]>, std::sync::OnceLock<String>),
}

impl NewText {
    fn get(&self) -> &str {
        match self {
            NewText::Text(t) => t,
            NewText::Vector(v, text) => text.get_or_init(|| embedb_vector::format_vector(v)),
        }
    }
}

/// The text of a plain string literal (the types a parameter's literal can have in a plan).
fn text(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(s),
        _ => None,
    }
}

/// `text` as a string literal of `like`'s type.
fn text_like(like: &DataType, text: &str) -> ScalarValue {
    let t = Some(text.to_string());
    match like {
        DataType::LargeUtf8 => ScalarValue::LargeUtf8(t),
        DataType::Utf8View => ScalarValue::Utf8View(t),
        _ => ScalarValue::Utf8(t),
    }
}

/// A parsed vector as the VECTOR type's scalar.
fn vector_scalar(v: &[f32]) -> ScalarValue {
    let list = ListArray::new(
        Arc::new(embedb_vector::vector_item_field()),
        OffsetBuffer::from_lengths([v.len()]),
        Arc::new(Float32Array::from(v.to_vec())),
        None,
    );
    ScalarValue::List(Arc::new(list))
}

impl Binding {
    fn new_text(&self, old: &str) -> Option<&str> {
        self.literals.iter().find(|(o, _)| o == old).map(|(_, n)| n.get())
    }

    /// `e` with each parameter's old literal text replaced by its new text.
    fn logical(&self, e: Expr) -> Expr {
        e.transform(|e| match &e {
            Expr::Literal(v, meta) => match text(v).and_then(|t| self.new_text(t)) {
                Some(n) => Ok(Transformed::yes(Expr::Literal(text_like(&v.data_type(), n), meta.clone()))),
                None => Ok(Transformed::no(e)),
            },
            _ => Ok(Transformed::no(e)),
        })
        .map(|t| t.data)
        .expect("infallible")
    }
}

/// A parameter in a kept plan: an expression whose value is set before each run. The query
/// vector's parameter holds the vector already parsed (the distance functions then need not
/// parse it again); any other parameter holds its text. Compared and hashed by its number, not
/// its value: a plan's nodes hash and compare their expressions, and a 384-element list is slow
/// at both.
#[derive(Debug)]
struct Param {
    id: u64,
    field: FieldRef,
    value: Mutex<ScalarValue>,
}

impl Param {
    fn new(value: ScalarValue) -> Param {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let field = Arc::new(Field::new("param", value.data_type(), false));
        Param { id: NEXT.fetch_add(1, Ordering::Relaxed), field, value: Mutex::new(value) }
    }

    fn set(&self, v: ScalarValue) {
        *self.value.lock() = v;
    }
}

impl PartialEq for Param {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Param {}

impl std::hash::Hash for Param {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}

impl std::fmt::Display for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "$param#{}", self.id)
    }
}

impl PhysicalExpr for Param {
    fn return_field(&self, _input_schema: &Schema) -> DfResult<FieldRef> {
        Ok(self.field.clone())
    }

    fn evaluate(&self, _batch: &RecordBatch) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value.lock().clone()))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![]
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn PhysicalExpr>>) -> DfResult<Arc<dyn PhysicalExpr>> {
        Ok(self)
    }

    fn fmt_sql(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The leaf of a kept plan, in place of its ANN scan: yields the rows the scan found for the
/// current run (set by [`Session::run_bound`], taken by the run). It keeps rows only, never a
/// transaction: a kept transaction would pin its storage snapshot.
#[derive(Debug)]
struct ScanSlot {
    properties: Arc<PlanProperties>,
    rows: Mutex<Option<RecordBatch>>,
}

impl DisplayAs for ScanSlot {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "CachedAnnIndexScan")
    }
}

impl ExecutionPlan for ScanSlot {
    fn name(&self) -> &str {
        "CachedAnnIndexScan"
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

    fn execute(&self, _partition: usize, _context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let rows = self.rows.lock().take();
        let rows = rows.ok_or_else(|| datafusion::error::DataFusionError::Internal("cached plan run without its rows".into()))?;
        Ok(Box::pin(MemoryStream::try_new(vec![rows], self.properties.eq_properties.schema().clone(), None)?))
    }
}

impl CachedPlan {
    /// The binding of `shape`'s parameters, if they fit: positions that held the same text
    /// must again.
    fn bind(&self, shape: &Shape) -> Option<Binding> {
        let params = &shape.params;
        if params.len() != self.params.len() {
            return None;
        }
        let typed = |i: usize| shape.typed.iter().find(|(at, _)| *at == i).map(|(_, v)| v.clone());
        let mut literals: Vec<(String, NewText)> = Vec::new();
        for (i, (old, new)) in self.params.iter().zip(params).enumerate() {
            let new = match typed(i) {
                Some(v) => NewText::Vector(v, Default::default()),
                None => NewText::Text(new.clone()),
            };
            match literals.iter().find(|(o, _)| o == old) {
                // A repeated text bound as numbers: compared as numbers.
                Some((_, NewText::Vector(a, _))) if matches!(&new, NewText::Vector(b, _) if a == b) => {}
                Some((_, n)) if n.get() != new.get() => return None,
                Some(_) => {}
                None => literals.push((old.clone(), new)),
            }
        }
        let query = match typed(self.query_param) {
            // Numbers a text would not have given (NaN, infinity): planned, to fail as text does.
            Some(v) => v.iter().all(|x| x.is_finite()).then(|| v.to_vec())?,
            None => embedb_vector::parse_vector(&params[self.query_param]).ok()?,
        };
        let query_value = vector_scalar(&query);
        Some(Binding { query, query_value, query_old: self.params[self.query_param].clone(), literals })
    }

    /// Set the parameters' values and the scan's rows for the next run.
    fn set(&self, b: &Binding, rows: RecordBatch) {
        for slot in &self.slots {
            if slot.text == b.query_old {
                slot.param.set(b.query_value.clone());
            } else if let Some(n) = b.new_text(&slot.text) {
                slot.param.set(text_like(slot.param.field.data_type(), n));
            }
        }
        *self.leaf.rows.lock() = Some(rows);
    }
}

/// One session's cached plans.
#[derive(Default)]
pub struct PlanCache {
    entries: HashMap<String, Arc<CachedPlan>>,
    pending: Option<Pending>,
}

impl PlanCache {
    pub fn clear(&mut self) {
        self.entries.clear();
        self.pending = None;
    }

    pub fn set_pending(&mut self, p: Pending) {
        self.pending = Some(p);
    }

    pub fn take_pending(&mut self) -> Option<Pending> {
        self.pending.take()
    }

    /// Keep `plan` for `pending`'s shape if it can be re-bound (see the module doc).
    pub fn offer(&mut self, pending: Pending, schema: &SchemaRef, plan: &Arc<dyn ExecutionPlan>, task: &Arc<TaskContext>) {
        let Some(c) = cacheable(plan, &pending.shape.params) else { return };
        let leaf = Arc::new(ScanSlot { properties: c.properties, rows: Mutex::new(None) });
        let mut slots = Vec::new();
        let leaf_plan: Arc<dyn ExecutionPlan> = leaf.clone();
        let Ok(plan) = parametrize(plan, &leaf_plan, &pending.shape.params, c.query_param, &c.scan.spec.query, &mut slots) else { return };
        if self.entries.len() >= CAPACITY {
            self.entries.clear();
        }
        let direct = Direct::of(&plan).filter(|d| d.columns.len() == schema.fields().len());
        let entry = CachedPlan {
            version: pending.version,
            schema: schema.clone(),
            direct,
            plan,
            leaf,
            slots,
            scan: c.scan,
            params: pending.shape.params,
            query_param: c.query_param,
            task: task.clone(),
        };
        self.entries.insert(pending.key, Arc::new(entry));
    }
}

/// The cache key: the shape within the current database.
pub fn key(db: Option<&str>, shape: &Shape) -> String {
    format!("{}\u{0}{}", db.unwrap_or(""), shape.key)
}

/// Which parameter is the query vector of `plan`'s ANN scan, if the plan can be re-bound: one
/// leaf, a graph-served `AnnScanExec`; parameters found only in nodes [`parametrize`] knows; no
/// list-typed literal (a vector folded from text), and no dynamic filter outside the sort that
/// owns it (TopK state shared between nodes).
fn cacheable(plan: &Arc<dyn ExecutionPlan>, params: &[String]) -> Option<Cacheable> {
    fn walk(p: &Arc<dyn ExecutionPlan>, params: &[String], scans: &mut Vec<(DetachedScan, Arc<PlanProperties>)>) -> bool {
        if let Some(a) = p.downcast_ref::<AnnScanExec>() {
            match a.detach() {
                Some(d) => {
                    scans.push((d, p.properties().clone()));
                    return true;
                }
                None => return false,
            }
        }
        let children = p.children();
        if children.is_empty() {
            return false;
        }
        let parametrized = p.is::<ProjectionExec>() || p.is::<FilterExec>() || p.is::<SortExec>();
        let mut ok = true;
        let _ = p.apply_expressions(&mut |e| {
            e.apply(|x| {
                // A sort with a fetch holds its own TopK filter (made anew for each run by
                // `fresh`); one pushed into another node would keep the last run's threshold.
                if x.is::<DynamicFilterPhysicalExpr>() && !p.is::<SortExec>() {
                    ok = false;
                } else if let Some(l) = x.downcast_ref::<Literal>() {
                    let v = l.value();
                    if matches!(v, ScalarValue::List(_) | ScalarValue::LargeList(_) | ScalarValue::FixedSizeList(_)) {
                        ok = false;
                    } else if !parametrized && text(v).is_some_and(|s| params.iter().any(|p| p == s)) {
                        ok = false;
                    }
                }
                Ok(if ok { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
            })
        });
        ok && children.iter().all(|c| walk(c, params, scans))
    }
    let mut scans = Vec::new();
    if !walk(plan, params, &mut scans) || scans.len() != 1 {
        return None;
    }
    let (scan, properties) = scans.pop().expect("one scan");
    // The query vector must come from exactly one parameter text.
    let query = &scan.spec.query;
    let matching: Vec<usize> = (0..params.len()).filter(|&i| embedb_vector::parse_vector(&params[i]).ok().as_ref() == Some(query)).collect();
    let first = *matching.first()?;
    if !matching.iter().all(|&i| params[i] == params[first]) {
        return None;
    }
    Some(Cacheable { query_param: first, scan, properties })
}

/// What [`cacheable`] finds: the ANN scan, detached, with its plan properties, and the
/// parameter that is the scan's query vector.
struct Cacheable {
    query_param: usize,
    scan: DetachedScan,
    properties: Arc<PlanProperties>,
}

/// `plan` with `leaf` for its ANN scan and, in every expression above it, a [`Param`] for each
/// literal that is one of `params`' text (`params[query_param]` becomes the vector `query`,
/// parsed).
/// Nodes whose expressions change are made again, so that their properties are worked out
/// with the parameters in place.
fn parametrize(
    plan: &Arc<dyn ExecutionPlan>,
    leaf: &Arc<dyn ExecutionPlan>,
    params: &[String],
    query_param: usize,
    query: &[f32],
    slots: &mut Vec<Slot>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    if plan.is::<AnnScanExec>() {
        return Ok(leaf.clone());
    }
    let children: Vec<Arc<dyn ExecutionPlan>> =
        plan.children().into_iter().map(|c| parametrize(c, leaf, params, query_param, query, slots)).collect::<DfResult<_>>()?;
    let mut physical = |e: &Arc<dyn PhysicalExpr>| -> DfResult<Arc<dyn PhysicalExpr>> {
        Ok(Arc::clone(e)
            .transform(|x| {
                let Some(t) = x.downcast_ref::<Literal>().and_then(|l| text(l.value())) else { return Ok(Transformed::no(x)) };
                if !params.iter().any(|p| p == t) {
                    return Ok(Transformed::no(x));
                }
                let value = if t == params[query_param] { vector_scalar(query) } else { x.downcast_ref::<Literal>().expect("literal").value().clone() };
                let ty = value.data_type();
                let found = slots.iter().find(|s| s.text == t && s.param.field.data_type() == &ty);
                let param = match found {
                    Some(s) => s.param.clone(),
                    None => {
                        let param = Arc::new(Param::new(value));
                        slots.push(Slot { text: t.to_string(), param: param.clone() });
                        param
                    }
                };
                Ok(Transformed::yes(param as Arc<dyn PhysicalExpr>))
            })?
            .data)
    };
    if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        let exprs: Vec<ProjectionExpr> =
            p.expr().iter().map(|e| Ok(ProjectionExpr { expr: physical(&e.expr)?, alias: e.alias.clone() })).collect::<DfResult<_>>()?;
        return Ok(Arc::new(ProjectionExec::try_new(exprs, children[0].clone())?));
    }
    if let Some(f) = plan.downcast_ref::<FilterExec>() {
        let built = FilterExecBuilder::from(f).with_predicate(physical(f.predicate())?).with_input(children[0].clone()).build()?;
        return Ok(Arc::new(built));
    }
    if let Some(s) = plan.downcast_ref::<SortExec>() {
        let exprs: Vec<PhysicalSortExpr> =
            s.expr().iter().map(|e| Ok(PhysicalSortExpr { expr: physical(&e.expr)?, options: e.options })).collect::<DfResult<_>>()?;
        let ordering = LexOrdering::new(exprs).expect("a sort has keys");
        let sort = SortExec::new(ordering, children[0].clone()).with_fetch(s.fetch()).with_preserve_partitioning(s.preserve_partitioning());
        return Ok(Arc::new(sort));
    }
    datafusion::physical_plan::execution_plan::replace_children_if_necessary(plan.clone(), children)?.reset_state()
}

/// A copy of a kept plan's nodes with fresh state (TopK filters, metrics) for one run; the
/// properties worked out when the plan was kept still hold, as the leaf's rows have the same
/// schema and partitioning every run.
fn fresh(plan: &Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    let children = plan.children();
    if children.is_empty() {
        return Ok(plan.clone());
    }
    let children: Vec<Arc<dyn ExecutionPlan>> = children.into_iter().map(fresh).collect::<DfResult<_>>()?;
    plan.clone().replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep))?.reset_state()
}

impl Session {
    /// Run `sql` from this session's plan cache; None when it has no usable plan for the shape.
    pub(crate) async fn run_cached(&mut self, sql: &str, shape: &Shape, bound: Option<&crate::sql::prepared::Parsed>) -> Result<Option<Output>> {
        let key = key(self.db.as_deref(), shape);
        let Some(entry) = self.plan_cache.entries.get(&key).cloned() else { return Ok(None) };
        if entry.version != self.engine.search.catalog_version() {
            self.plan_cache.entries.remove(&key);
            return Ok(None);
        }
        let Some(binding) = entry.bind(shape) else { return Ok(None) };
        let sql = sql.to_string();
        let bound = bound.cloned();
        let out = self.in_statement(move |s, txn| Box::pin(s.run_bound(sql, bound, entry, binding, txn))).await?;
        Ok(Some(out))
    }

    /// `bound`: the statement itself when it came prepared (its text has `?`s).
    async fn run_bound(&mut self, sql: String, bound: Option<crate::sql::prepared::Parsed>, entry: Arc<CachedPlan>, b: Binding, txn: Arc<Txn>) -> Result<Output> {
        // Checked again inside the transaction: its snapshot and the version are taken under the
        // store's commit lock, so an equal version here means no DDL is in the snapshot.
        let rows = if entry.version == self.engine.search.catalog_version() {
            let state = self.ctx.state_ref();
            let state = state.read();
            entry.scan.bind(&*state, txn.clone(), b.query.clone(), &|e| b.logical(e))?
        } else {
            None
        };
        let Some(rows) = rows else {
            // Plan it afresh (the text parses: it did when this plan was made).
            // (Boxed: planning's deep futures stay off this statement's stack.)
            let stmt = match bound {
                Some(stmt) => stmt.statement(),
                None => crate::sql::parser::parse_one(&sql)?,
            };
            return Box::pin(self.query(stmt, txn)).await;
        };
        self.vars.insert(crate::sql::variables::LAST_PLAN_FROM_CACHE.into(), "1".into());
        if let Some(direct) = &entry.direct {
            let batch = direct.apply(&rows, &entry.schema)?;
            self.last_found_rows = batch.num_rows() as u64;
            self.last_row_count = -1;
            return Ok(Output::Rows { schema: entry.schema.clone(), batches: vec![batch] });
        }
        entry.set(&b, rows);
        let plan = fresh(&entry.plan)?;
        let batches = datafusion::physical_plan::collect(plan, entry.task.clone()).await;
        // Rows not taken (the run failed early) are not kept until the next run.
        entry.leaf.rows.lock().take();
        let batches = batches?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        self.last_found_rows = rows as u64;
        self.last_row_count = -1;
        Ok(Output::Rows { schema: entry.schema.clone(), batches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let s = Shape::of("SELECT id FROM t ORDER BY VEC_COSINE_DISTANCE(v, '[1, 2]') LIMIT 3").unwrap();
        assert_eq!(s.key, "SELECT id FROM t ORDER BY VEC_COSINE_DISTANCE(v, ?) LIMIT 3");
        assert_eq!(s.params, vec!["[1, 2]".to_string()]);
        let s = Shape::of("  select a, \"x'y\", `b c` from t where c = 'abc' order by vec_l2_distance(v,'[3]') limit 1").unwrap();
        assert_eq!(s.key, "select a, \"x'y\", `b c` from t where c = 'abc' order by vec_l2_distance(v,?) limit 1");
        // Not cacheable: no vector literal, variables, time, comments, other statements, unknown calls.
        for sql in [
            "SELECT 1",
            "SELECT id FROM t WHERE c = 'a''b'",
            "SELECT @x, vec_cosine_distance(v, '[1]') FROM t",
            "SELECT vec_cosine_distance(v, '[1]') FROM t WHERE d < NOW()",
            "SELECT vec_cosine_distance(v, '[1]') FROM t WHERE d < current_timestamp",
            "SELECT vec_cosine_distance(v, '[1]') /* hint */ FROM t",
            "SELECT vec_cosine_distance(v, '[1]') FROM t FOR UPDATE",
            "INSERT INTO t VALUES ('[1]')",
            "SELECTX vec_cosine_distance(v, '[1]') FROM t",
            "SELECT vec_cosine_distance(v, '[1]') FROM t WHERE c = 'unterminated",
            "SELECT rand(), vec_cosine_distance(v, '[1]') FROM t",
        ] {
            assert_eq!(Shape::of(sql), None, "{sql}");
        }
        // An escaped literal is not a parameter (its text is not its value) but stays in the key.
        let s = Shape::of("SELECT vec_cosine_distance(v, '[1]') FROM t WHERE c = '[\\'2]'").unwrap();
        assert_eq!(s.key, "SELECT vec_cosine_distance(v, ?) FROM t WHERE c = '[\\'2]'");
        let s = Shape::of("SELECT vec_cosine_distance(v, '[1]') FROM t WHERE c = '[''2]'").unwrap();
        assert_eq!(s.params, vec!["[1]".to_string()]);
    }

    #[test]
    fn parameters_must_be_distance_arguments() {
        let placed = |sql: &str| {
            let shape = Shape::of(sql).unwrap();
            shape.well_placed(&crate::sql::parser::parse_one(sql).unwrap())
        };
        assert!(placed("SELECT id FROM t ORDER BY VEC_COSINE_DISTANCE(v, '[1,2]') LIMIT 3"));
        assert!(placed("SELECT VEC_L2_DISTANCE('[1,2]', t.v) AS d FROM t ORDER BY d LIMIT 3"));
        // Foldable or compared as text: the optimizer may consume the literal.
        assert!(!placed("SELECT id FROM t WHERE c = '[1]' ORDER BY VEC_COSINE_DISTANCE(v, '[1,2]') LIMIT 3"));
        assert!(!placed("SELECT VEC_COSINE_DISTANCE('[1]', '[1,2]') FROM t"));
    }

    use crate::session::{Engine, Output};

    async fn rows(s: &mut Session, sql: &str) -> Vec<Vec<String>> {
        // Boxed: a statement's future is large in debug builds, and a test awaits many.
        let out = Box::pin(s.run(sql)).await.unwrap_or_else(|e| panic!("{sql}: {}", e.message));
        let Output::Rows { batches, .. } = out else { return vec![] };
        let mut v = Vec::new();
        for b in batches {
            for r in 0..b.num_rows() {
                v.push(b.columns().iter().map(|c| datafusion::arrow::util::display::array_value_to_string(c, r).unwrap()).collect());
            }
        }
        v
    }

    async fn from_cache(s: &mut Session) -> bool {
        rows(s, "SELECT @@last_plan_from_cache").await == vec![vec!["1".to_string()]]
    }

    use crate::index::search::ann::tests::point;

    /// Two sessions on one engine with a 300-row indexed table: one caching, one not.
    async fn sessions() -> (Session, Session) {
        let engine = Engine::with_store(crate::config::Config::default(), embedb_storage::Store::in_memory()).unwrap();
        let mut s = Session::new(engine.clone(), 1, "root");
        s.use_db("test").unwrap();
        rows(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, cat INT, v VECTOR(4), VECTOR INDEX vi ((VEC_COSINE_DISTANCE(v))))").await;
        let values: Vec<String> = (1..=300).map(|i| format!("({i}, {}, '{}')", i % 5, point(i))).collect();
        rows(&mut s, &format!("INSERT INTO t VALUES {}", values.join(","))).await;
        let mut plain = Session::new(engine, 2, "root");
        plain.use_db("test").unwrap();
        rows(&mut plain, "SET tidb_enable_non_prepared_plan_cache = OFF").await;
        (s, plain)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repeats_come_from_the_cache_and_answer_as_planned() {
        let (mut s, mut plain) = sessions().await;
        let shapes = [
            "SELECT id FROM t ORDER BY VEC_COSINE_DISTANCE(v, '{q}') LIMIT 5",
            "SELECT id, VEC_COSINE_DISTANCE(v, '{q}') AS d FROM t ORDER BY d, id LIMIT 7",
            "SELECT id, cat FROM t WHERE cat = 2 ORDER BY VEC_COSINE_DISTANCE(v, '{q}') LIMIT 4",
            "SELECT * FROM (SELECT id, v, VEC_COSINE_DISTANCE(v, '{q}') AS _distance FROM t) AS s ORDER BY _distance LIMIT 3",
            "SELECT id, VEC_COSINE_DISTANCE(v, '{q}') AS d FROM t WHERE VEC_COSINE_DISTANCE(v, '{q}') < 0.5 ORDER BY d LIMIT 6",
            "SELECT count(*) FROM (SELECT id FROM t ORDER BY VEC_COSINE_DISTANCE(v, '{q}') LIMIT 8) AS k",
            "SELECT cat AS c, id FROM t ORDER BY VEC_COSINE_DISTANCE(v, '{q}') LIMIT 2, 4",
            "SELECT id FROM (SELECT id, cat FROM t ORDER BY VEC_COSINE_DISTANCE(v, '{q}') LIMIT 6) AS k LIMIT 1, 3",
            // A range search.
            "SELECT id FROM t WHERE VEC_COSINE_DISTANCE(v, '{q}') < 0.05 ORDER BY id",
        ];
        let mut direct = Vec::new();
        for shape in shapes {
            for (n, q) in [7, 11, 19, 23, 42].into_iter().enumerate() {
                let sql = shape.replace("{q}", &point(q));
                let got = rows(&mut s, &sql).await;
                assert_eq!(from_cache(&mut s).await, n > 0, "{sql}");
                assert_eq!(got, rows(&mut plain, &sql).await, "{sql}");
                assert!(!from_cache(&mut plain).await);
                if n == 4 {
                    let entry = &s.plan_cache.entries[&key(s.db.as_deref(), &Shape::of(&sql).unwrap())];
                    direct.push(entry.direct.is_some());
                }
            }
        }
        // Plans of only column picks and limits over the scan run without DataFusion.
        assert_eq!(direct, [true, false, false, false, false, false, true, true, false]);
        // The same literal twice must bind to one new value twice; otherwise it is planned.
        let sql = "SELECT VEC_COSINE_DISTANCE(v, '[1,0,0,0]') AS a, VEC_COSINE_DISTANCE(v, '[1,0,0,0]') AS b FROM t ORDER BY a LIMIT 2";
        rows(&mut s, sql).await;
        let mixed = "SELECT VEC_COSINE_DISTANCE(v, '[0,1,0,0]') AS a, VEC_COSINE_DISTANCE(v, '[0,0,1,0]') AS b FROM t ORDER BY a LIMIT 2";
        assert_eq!(rows(&mut s, mixed).await, rows(&mut plain, mixed).await);
        assert!(!from_cache(&mut s).await);
    }

    /// The rows of a prepared statement executed with `args`.
    async fn prepared_rows(s: &mut Session, p: &crate::sql::prepared::Prepared, args: Vec<crate::sql::prepared::Bound>) -> std::result::Result<Vec<Vec<String>>, String> {
        let out = Box::pin(s.execute_prepared_bound(p, args)).await.map_err(|e| e.message)?;
        let Output::Rows { batches, .. } = out else { return Ok(vec![]) };
        Ok(batches
            .iter()
            .flat_map(|b| (0..b.num_rows()).map(move |r| b.columns().iter().map(|c| datafusion::arrow::util::display::array_value_to_string(c, r).unwrap()).collect()))
            .collect())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vectors_bound_as_numbers_answer_as_their_text_does() {
        use crate::sql::prepared::Bound;
        let (mut s, mut plain) = sessions().await;
        let numbers = |i: i64| -> Arc<[f32]> { embedb_vector::parse_vector(&point(i)).unwrap().into() };
        for shape in [
            "SELECT id, VEC_COSINE_DISTANCE(v, ?) AS d FROM t ORDER BY d, id LIMIT 7",
            "SELECT id FROM t WHERE cat = ? ORDER BY VEC_COSINE_DISTANCE(v, ?) LIMIT 4",
            "SELECT id FROM t WHERE VEC_COSINE_DISTANCE(v, ?) < 0.5 ORDER BY VEC_COSINE_DISTANCE(v, ?) LIMIT 6",
        ] {
            let p = Box::pin(s.prepare(shape)).await.unwrap();
            for (n, q) in [7, 11, 19, 23].into_iter().enumerate() {
                let args: Vec<Bound> = match p.params {
                    1 => vec![Bound::Vector(numbers(q))],
                    // `cat = ?` is a number: not a shape the cache keeps, planned every time.
                    2 if shape.contains("cat") => vec![Bound::Literal(datafusion::sql::sqlparser::ast::Expr::value(datafusion::sql::sqlparser::ast::Value::Number("2".into(), false))), Bound::Vector(numbers(q))],
                    _ => vec![Bound::Vector(numbers(q)), Bound::Vector(numbers(q))],
                };
                let got = prepared_rows(&mut s, &p, args.clone()).await.unwrap();
                let cached = from_cache(&mut s).await;
                assert_eq!(cached, n > 0 && !shape.contains("cat"), "{shape}");
                let literals: Vec<_> = args.iter().map(Bound::literal).collect();
                let want = Box::pin(plain.execute_prepared(&p, literals)).await.unwrap();
                let Output::Rows { batches, .. } = want else { panic!() };
                let want: Vec<Vec<String>> = batches
                    .iter()
                    .flat_map(|b| (0..b.num_rows()).map(move |r| b.columns().iter().map(|c| datafusion::arrow::util::display::array_value_to_string(c, r).unwrap()).collect()))
                    .collect();
                assert_eq!(got, want, "{shape} with {q}");
                assert!(!got.is_empty());
            }
        }
        // Numbers no text can hold fail as the text would, cached plan or not.
        let p = Box::pin(s.prepare("SELECT id FROM t ORDER BY VEC_COSINE_DISTANCE(v, ?) LIMIT 3")).await.unwrap();
        prepared_rows(&mut s, &p, vec![Bound::Vector(numbers(3))]).await.unwrap();
        let bad: Arc<[f32]> = vec![1.0, f32::NAN, 0.0, 0.0].into();
        let err = prepared_rows(&mut s, &p, vec![Bound::Vector(bad.clone())]).await.unwrap_err();
        let text_err = Box::pin(plain.execute_prepared(&p, vec![Bound::Vector(bad).literal()])).await.unwrap_err().message;
        assert_eq!(err, text_err);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_ddl_and_bad_vectors_fall_back_to_planning() {
        let (mut s, mut plain) = sessions().await;
        let q = |i: i64| format!("SELECT id FROM t ORDER BY VEC_COSINE_DISTANCE(v, '{}') LIMIT 3", point(i));
        rows(&mut s, &q(1)).await;
        rows(&mut s, &q(2)).await;
        assert!(from_cache(&mut s).await);
        // Uncommitted writes: the index does not hold them, so the statement is planned (exact).
        rows(&mut s, "BEGIN").await;
        rows(&mut s, "INSERT INTO t VALUES (1000, 0, '[5,5,5,5]')").await;
        let near = "SELECT id FROM t ORDER BY VEC_COSINE_DISTANCE(v, '[5,5,5,4.9]') LIMIT 3";
        assert_eq!(rows(&mut s, near).await[0], vec!["1000".to_string()]);
        assert!(!from_cache(&mut s).await);
        rows(&mut s, "ROLLBACK").await;
        assert_ne!(rows(&mut s, near).await[0], vec!["1000".to_string()]);
        assert!(from_cache(&mut s).await);
        // A vector of the wrong dimension gets the same error as when planned.
        let bad = "SELECT id FROM t ORDER BY VEC_COSINE_DISTANCE(v, '[1,2]') LIMIT 3";
        let e1 = Box::pin(s.run(bad)).await.err().expect("dimension error");
        let e2 = Box::pin(plain.run(bad)).await.err().expect("dimension error");
        assert_eq!((e1.code, e1.message), (e2.code, e2.message));
        // DDL from another session: the cached plan is stale and the index gone.
        rows(&mut plain, "DROP INDEX vi ON t").await;
        assert_eq!(rows(&mut s, &q(3)).await, rows(&mut plain, &q(3)).await);
        assert!(!from_cache(&mut s).await);
        let explain = rows(&mut s, &format!("EXPLAIN {}", q(4))).await;
        assert!(!format!("{explain:?}").contains("annIndex"), "{explain:?}");
        // A table dropped and made again under the same name is a new table.
        rows(&mut plain, "DROP TABLE t").await;
        rows(&mut plain, "CREATE TABLE t (id INT PRIMARY KEY, cat INT, v VECTOR(4), VECTOR INDEX vi ((VEC_COSINE_DISTANCE(v))))").await;
        rows(&mut plain, "INSERT INTO t VALUES (7, 0, '[1,1,1,1]')").await;
        rows(&mut s, &q(5)).await;
        assert_eq!(rows(&mut s, &q(6)).await, vec![vec!["7".to_string()]]);
        assert!(from_cache(&mut s).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_switch_and_the_flag_are_tidb_variables() {
        let (mut s, _) = sessions().await;
        assert_eq!(rows(&mut s, "SELECT @@tidb_enable_non_prepared_plan_cache").await, vec![vec!["ON".to_string()]]);
        let e = Box::pin(s.run("SET tidb_enable_non_prepared_plan_cache = maybe")).await.err().unwrap();
        assert_eq!(e.code, 1231);
        let e = Box::pin(s.run("SET last_plan_from_cache = 1")).await.err().unwrap();
        assert_eq!(e.code, 1238);
        let q = |i: i64| format!("SELECT id FROM t ORDER BY VEC_COSINE_DISTANCE(v, '{}') LIMIT 3", point(i));
        rows(&mut s, &q(1)).await;
        rows(&mut s, &q(2)).await;
        assert!(from_cache(&mut s).await);
        rows(&mut s, "SET tidb_enable_non_prepared_plan_cache = 0").await;
        rows(&mut s, &q(3)).await;
        assert!(!from_cache(&mut s).await);
        rows(&mut s, "SET tidb_enable_non_prepared_plan_cache = ON").await;
        rows(&mut s, &q(4)).await;
        rows(&mut s, &q(5)).await;
        assert!(from_cache(&mut s).await);
        // Any other statement in between resets the flag.
        rows(&mut s, "SELECT 1").await;
        assert!(!from_cache(&mut s).await);
    }
}
