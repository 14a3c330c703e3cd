//! Tables on the KV: how a row becomes keys and values, and the DataFusion `TableProvider` that reads
//! them back inside a transaction.
//!
//! A row of table 42 with handle 7 lives at `t{42}_r{7}` → `encode_row([(column id, datum)…])`. Each
//! ordered index adds `t{42}_i{index id}{memcomparable values}` → handle (UNIQUE), or
//! `t{42}_i{index id}{values}{handle}` → empty (non-unique, so equal values stay distinct keys).
//!
//! A scan (`KvTable::scan`) reads the rows visible to the statement's transaction — committed data as
//! of the transaction's snapshot plus its own uncommitted writes — decodes them into Arrow columns and
//! hands DataFusion an in-memory source. Equality filters on the integer primary key become point
//! gets, and on other indexed columns index lookups, instead of a full scan.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use embedb_storage::codec::{self, Datum};
use embedb_storage::Txn;

use crate::error::{to_df, Result, SqlError};
use crate::sql::catalog::{IndexInfo, TableInfo};
use crate::sql::types::{self, datums_to_array, Target};

/// Name of the hidden row-handle column DML statements select to find the rows they change.
pub const HANDLE_COLUMN: &str = "_tidb_rowid";

/// A decoded row: its handle and one datum per catalog column.
#[derive(Clone, Debug)]
pub struct Row {
    pub handle: i64,
    pub values: Vec<Datum>,
}

pub fn decode(table: &TableInfo, handle: i64, value: &[u8]) -> Result<Row> {
    place(table, handle, codec::decode_row(value)?)
}

/// As [`decode`], with only the columns whose ids are `ids` filled in (the others are NULL):
/// what a filter needs to be evaluated, without copying out the rest (a vector, a long text).
pub fn decode_columns(table: &TableInfo, handle: i64, value: &[u8], ids: &[u32]) -> Result<Row> {
    place(table, handle, codec::decode_row_only(value, |id| ids.contains(&id))?)
}

fn place(table: &TableInfo, handle: i64, cols: Vec<(u32, Datum)>) -> Result<Row> {
    let mut values = vec![Datum::Null; table.columns.len()];
    // Column ids are stored in column order, so the next column is almost always the match:
    // no map to build per row.
    let mut next = 0;
    for (id, d) in cols {
        let found = match table.columns.get(next) {
            Some(c) if c.id == id => Some(next),
            _ => table.columns.iter().position(|c| c.id == id),
        };
        if let Some(i) = found {
            values[i] = d;
            next = i + 1;
        }
    }
    Ok(Row { handle, values })
}

/// All rows of a table, in handle order.
pub fn scan_rows(txn: &Txn, table: &TableInfo, limit: usize) -> Result<Vec<Row>> {
    let start = codec::record_prefix(table.id);
    let end = codec::prefix_end(&start);
    let kvs = txn.scan(&start, &end, limit, false)?;
    kvs.iter()
        .map(|(k, v)| decode(table, codec::decode_row_key_handle(k)?, v))
        .collect()
}

pub fn get_row(txn: &Txn, table: &TableInfo, handle: i64) -> Result<Option<Row>> {
    match txn.get(&codec::row_key(table.id, handle))? {
        Some(v) => Ok(Some(decode(table, handle, &v)?)),
        None => Ok(None),
    }
}

fn index_values(table: &TableInfo, index: &IndexInfo, row: &[Datum]) -> Vec<Datum> {
    index
        .columns
        .iter()
        .map(|c| table.column_index(c).map(|i| row[i].clone()).unwrap_or(Datum::Null))
        .collect()
}

/// The key of a row's entry in an ordered index. A unique index whose values contain NULL behaves
/// like a non-unique one (NULLs never collide), so its key carries the handle.
fn index_entry(table: &TableInfo, index: &IndexInfo, row: &Row) -> (Vec<u8>, Vec<u8>, bool) {
    let vals = index_values(table, index, &row.values);
    let unique = index.unique && !vals.iter().any(|d| matches!(d, Datum::Null));
    if unique {
        (codec::index_key(table.id, index.id, &vals, None), row.handle.to_be_bytes().to_vec(), true)
    } else {
        (codec::index_key(table.id, index.id, &vals, Some(row.handle)), Vec::new(), false)
    }
}

/// Find a row that would collide with `row` on the primary key or a unique index.
/// Returns the colliding handle and the index name for the error message.
pub fn find_conflict(txn: &Txn, table: &TableInfo, row: &Row) -> Result<Option<(i64, String, String)>> {
    if table.pk_handle.is_some() && txn.get(&codec::row_key(table.id, row.handle))?.is_some() {
        return Ok(Some((row.handle, "PRIMARY".into(), row.handle.to_string())));
    }
    for index in table.kv_indexes().filter(|i| i.unique) {
        let (key, _, unique) = index_entry(table, index, row);
        if !unique {
            continue;
        }
        if let Some(v) = txn.get(&key)? {
            let h = i64::from_be_bytes(v.as_slice().try_into().map_err(|_| SqlError::other("corrupt index entry"))?);
            if h != row.handle {
                let shown = index_values(table, index, &row.values)
                    .iter()
                    .map(types::datum_display)
                    .collect::<Vec<_>>()
                    .join("-");
                let name = if index.primary { "PRIMARY".to_string() } else { index.name.clone() };
                return Ok(Some((h, name, shown)));
            }
        }
    }
    Ok(None)
}

/// Write a row and its index entries (the caller has checked for conflicts).
pub fn put_row(txn: &Txn, table: &TableInfo, row: &Row) -> Result<()> {
    let cols: Vec<(u32, Datum)> = table
        .columns
        .iter()
        .zip(row.values.iter())
        .filter(|(_, d)| !matches!(d, Datum::Null))
        .map(|(c, d)| (c.id, d.clone()))
        .collect();
    txn.put(codec::row_key(table.id, row.handle), codec::encode_row(&cols));
    for index in table.kv_indexes() {
        let (k, v, _) = index_entry(table, index, row);
        txn.put(k, v);
    }
    Ok(())
}

/// Delete a row and its index entries.
pub fn delete_row(txn: &Txn, table: &TableInfo, row: &Row) -> Result<()> {
    txn.delete(codec::row_key(table.id, row.handle));
    for index in table.kv_indexes() {
        let (k, _, _) = index_entry(table, index, row);
        txn.delete(k);
    }
    Ok(())
}

/// Delete every row and index entry of a table (DROP / TRUNCATE).
pub fn delete_all(txn: &Txn, table_id: i64) -> Result<()> {
    let start = codec::table_prefix(table_id);
    let end = codec::prefix_end(&start);
    loop {
        let kvs = txn.scan(&start, &end, 10_000, false)?;
        if kvs.is_empty() {
            break;
        }
        for (k, _) in kvs {
            txn.delete(k);
        }
    }
    Ok(())
}

/// (Re)build the entries of one index from the table's rows (ALTER TABLE ADD INDEX).
pub fn backfill_index(txn: &Txn, table: &TableInfo, index: &IndexInfo) -> Result<()> {
    for row in scan_rows(txn, table, usize::MAX)? {
        let (k, v, unique) = index_entry(table, index, &row);
        if unique && txn.get(&k)?.is_some() {
            let shown = index_values(table, index, &row.values)
                .iter()
                .map(types::datum_display)
                .collect::<Vec<_>>()
                .join("-");
            return Err(SqlError::dup_entry(&shown, &format!("{}.{}", table.name, index.name)));
        }
        txn.put(k, v);
    }
    Ok(())
}

pub fn drop_index_entries(txn: &Txn, table: &TableInfo, index: &IndexInfo) -> Result<()> {
    let start = codec::index_prefix(table.id, index.id);
    let end = codec::prefix_end(&start);
    for (k, _) in txn.scan(&start, &end, usize::MAX, false)? {
        txn.delete(k);
    }
    Ok(())
}

/// Rows as an Arrow batch of the table's schema (plus the handle column when asked).
pub fn rows_to_batch(table: &TableInfo, rows: &[Row], schema: &SchemaRef, with_handle: bool) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, c) in table.columns.iter().enumerate() {
        let vals: Vec<&Datum> = rows.iter().map(|r| &r.values[i]).collect();
        columns.push(datums_to_array(&c.ty, &vals)?);
    }
    if with_handle {
        columns.push(Arc::new(rows.iter().map(|r| r.handle).collect::<Int64Array>()));
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| SqlError::other(e.to_string()))
}

/// DataFusion's view of one table inside one transaction.
pub struct KvTable {
    pub info: TableInfo,
    pub txn: Arc<Txn>,
    pub with_handle: bool,
    schema: SchemaRef,
    /// The primary key and unique keys, so that DataFusion knows the functional dependencies
    /// MySQL's `ONLY_FULL_GROUP_BY` allows (`GROUP BY id` makes the row's other columns selectable).
    /// Made when the planner first asks: a plan taken from the plan cache never does.
    constraints: std::sync::OnceLock<datafusion::common::Constraints>,
}

/// The table's keys as DataFusion constraints (column positions).
fn key_constraints(info: &TableInfo) -> datafusion::common::Constraints {
    use datafusion::common::Constraint;
    let mut out = Vec::new();
    for ix in info.indexes.iter().filter(|i| i.unique && i.kind == crate::sql::catalog::IndexKind::Btree) {
        let Some(cols) = ix.columns.iter().map(|c| info.column_index(c)).collect::<Option<Vec<usize>>>() else { continue };
        // A unique key over nullable columns does not determine the row (NULLs repeat).
        if ix.primary {
            out.push(Constraint::PrimaryKey(cols));
        } else if cols.iter().all(|&c| !info.columns[c].nullable) {
            out.push(Constraint::Unique(cols));
        }
    }
    datafusion::common::Constraints::new_unverified(out)
}

impl fmt::Debug for KvTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KvTable({}.{})", self.info.db, self.info.name)
    }
}

impl KvTable {
    pub fn new(info: TableInfo, txn: Arc<Txn>, with_handle: bool) -> Self {
        let mut fields: Vec<Field> = info.arrow_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        if with_handle {
            fields.push(Field::new(HANDLE_COLUMN, DataType::Int64, false));
        }
        KvTable { info, txn, with_handle, schema: Arc::new(Schema::new(fields)), constraints: Default::default() }
    }

    /// As `new`, with the schema `new` made for the same table (a cached plan keeps it).
    pub fn with_schema(info: TableInfo, txn: Arc<Txn>, with_handle: bool, schema: SchemaRef) -> Self {
        KvTable { info, txn, with_handle, schema, constraints: Default::default() }
    }

    /// Handles selected by an equality/IN filter on the integer primary key, if any.
    fn pk_point_handles(&self, filters: &[Expr]) -> Option<Vec<i64>> {
        let pk = self.info.pk_handle.as_ref()?;
        for f in filters {
            if let Some(vals) = equality_values(f, pk) {
                let mut hs: Vec<i64> = vals.iter().filter_map(scalar_i64).collect();
                hs.sort_unstable();
                hs.dedup();
                return Some(hs);
            }
        }
        None
    }

    /// Handles found through a secondary index for an equality filter on its first column.
    /// Handles selected by a `FTS_MATCH_WORD` predicate (`fts_match_word(q, handle,
    /// 'table:column[#k]')`, see `index::fulltext`): the rows the full-text index matches, or
    /// only its `k` best (with any rows tied with the k-th) when the statement is a plain top-k
    /// search. The filter is evaluated on them afterwards as usual.
    fn fulltext_handles(&self, filters: &[Expr]) -> Result<Option<Vec<i64>>> {
        for f in filters {
            let Some((query, column, k)) = fts_filter(f, self.info.id) else { continue };
            let Some(search) = crate::index::search::SearchIndexes::of_txn(&self.txn) else { return Ok(None) };
            let Some(entry) = search.fulltext(self.info.id, &column) else { return Ok(None) };
            // The predicate's own scores (cached for the statement, which evaluates them again).
            let scores = entry.scores(&query)?;
            let mut matching: Vec<f32> = scores.values().copied().filter(|s| *s > 0.0).collect();
            // With a top-k hint: the k best and every row tied with the k-th (a further sort key
            // may prefer one of those), i.e. the rows scoring at least the k-th best score.
            let floor = match k {
                Some(k) if k == 0 => f32::INFINITY,
                Some(k) if k < matching.len() => *matching.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a)).1,
                _ => 0.0,
            };
            let mut handles: Vec<i64> =
                scores.iter().filter(|(_, s)| **s > 0.0 && **s >= floor).map(|(h, _)| *h as i64).collect();
            handles.sort_unstable();
            return Ok(Some(handles));
        }
        Ok(None)
    }

    fn index_handles(&self, filters: &[Expr]) -> Result<Option<Vec<i64>>> {
        for index in self.info.kv_indexes() {
            if index.columns.len() != 1 {
                continue;
            }
            let col = &index.columns[0];
            let Some(ci) = self.info.column(col) else { continue };
            for f in filters {
                let Some(vals) = equality_values(f, col) else { continue };
                let mut handles = Vec::new();
                for v in vals {
                    let Ok(d) = types::coerce(&v, &ci.ty, &Target { column: col, row: 1 }) else {
                        // The literal cannot be a value of this column: let the scan decide.
                        return Ok(None);
                    };
                    if matches!(d, Datum::Null) {
                        continue;
                    }
                    let prefix = codec::index_key(self.info.id, index.id, &[d], None);
                    let end = codec::prefix_end(&prefix);
                    for (k, v) in self.txn.scan(&prefix, &end, usize::MAX, false)? {
                        if v.len() == 8 && k.len() == prefix.len() {
                            handles.push(i64::from_be_bytes(v.as_slice().try_into().unwrap()));
                        } else {
                            handles.push(codec::decode_index_key_handle(&k)?);
                        }
                    }
                }
                handles.sort_unstable();
                handles.dedup();
                return Ok(Some(handles));
            }
        }
        Ok(None)
    }

    /// `[lo, hi]` handle bounds from range predicates on the integer primary key.
    fn pk_range(&self, filters: &[Expr]) -> Option<(i64, i64)> {
        let pk = self.info.pk_handle.as_ref()?;
        let (mut lo, mut hi) = (i64::MIN, i64::MAX);
        let mut found = false;
        for f in filters {
            for (op, v) in range_bounds(f, pk) {
                let Some(x) = scalar_f64(&v) else { continue };
                found = true;
                match op {
                    Operator::Gt => lo = lo.max(clamp_i64(x.floor() + 1.0)),
                    Operator::GtEq => lo = lo.max(clamp_i64(x.ceil())),
                    Operator::Lt => hi = hi.min(clamp_i64(x.ceil() - 1.0)),
                    Operator::LtEq => hi = hi.min(clamp_i64(x.floor())),
                    _ => {}
                }
            }
        }
        found.then_some((lo, hi))
    }

    /// The rows `filters` may select, narrowed by primary-key and index lookups but not yet
    /// filtered (an ANN scan evaluates the filters itself).
    pub fn read_rows(&self, filters: &[Expr]) -> Result<Vec<Row>> {
        self.read(filters, None)
    }

    /// The rows with these handles, in the given order; handles without a row in this
    /// transaction's view are skipped.
    /// The stored (encoded) rows of `handles` that exist, in `handles`' order, for [`decode`] or
    /// [`decode_columns`].
    pub fn encoded_rows_by_handles(&self, handles: &[i64]) -> Result<Vec<(i64, Vec<u8>)>> {
        let mut rows = Vec::with_capacity(handles.len());
        for &h in handles {
            if let Some(v) = self.txn.get(&codec::row_key(self.info.id, h))? {
                rows.push((h, v));
            }
        }
        Ok(rows)
    }

    fn read(&self, filters: &[Expr], limit: Option<usize>) -> Result<Vec<Row>> {
        if let (None, Some((lo, hi))) = (self.pk_point_handles(filters), self.pk_range(filters)) {
            if lo > hi {
                return Ok(vec![]);
            }
            let start = codec::row_key(self.info.id, lo);
            let end = if hi == i64::MAX { codec::prefix_end(&codec::record_prefix(self.info.id)) } else { codec::row_key(self.info.id, hi + 1) };
            let kvs = self.txn.scan(&start, &end, usize::MAX, false)?;
            return kvs.iter().map(|(k, v)| decode(&self.info, codec::decode_row_key_handle(k)?, v)).collect();
        }
        let handles = match self.pk_point_handles(filters) {
            Some(h) => Some(h),
            None => match self.fulltext_handles(filters)? {
                Some(h) => Some(h),
                None => self.index_handles(filters)?,
            },
        };
        match handles {
            Some(hs) => {
                let mut rows = Vec::with_capacity(hs.len());
                for h in hs {
                    if let Some(r) = get_row(&self.txn, &self.info, h)? {
                        rows.push(r);
                    }
                }
                Ok(rows)
            }
            None => {
                let lim = if filters.is_empty() { limit.unwrap_or(usize::MAX) } else { usize::MAX };
                scan_rows(&self.txn, &self.info, lim)
            }
        }
    }
}

/// `[mysql_truth(]fts_match_word('q', handle, 'table_id:column[#k]')[)]` on table `table_id` →
/// (query, column, k).
fn fts_filter(e: &Expr, table_id: i64) -> Option<(String, String, Option<usize>)> {
    let Expr::ScalarFunction(f) = e else { return None };
    if f.name() == "mysql_truth" && f.args.len() == 1 {
        return fts_filter(&f.args[0], table_id);
    }
    if f.name() != "fts_match_word" || f.args.len() != 3 {
        return None;
    }
    let text = |e: &Expr| match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) => Some(s.clone()),
        _ => None,
    };
    let query = text(&f.args[0])?;
    let target = text(&f.args[2])?;
    let (tid, rest) = target.split_once(':')?;
    if tid.parse::<i64>().ok()? != table_id {
        return None;
    }
    let (column, k) = match rest.split_once('#') {
        Some((c, k)) => (c.to_string(), Some(k.parse::<usize>().ok()?)),
        None => (rest.to_string(), None),
    };
    Some((query, column, k))
}

fn scalar_i64(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int64(Some(x)) => Some(*x),
        ScalarValue::Int32(Some(x)) => Some(*x as i64),
        ScalarValue::Int16(Some(x)) => Some(*x as i64),
        ScalarValue::Int8(Some(x)) => Some(*x as i64),
        ScalarValue::UInt64(Some(x)) => i64::try_from(*x).ok(),
        ScalarValue::UInt32(Some(x)) => Some(*x as i64),
        ScalarValue::Utf8(Some(s)) => s.trim().parse().ok(),
        ScalarValue::Float64(Some(f)) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

fn scalar_f64(v: &ScalarValue) -> Option<f64> {
    match v {
        ScalarValue::Utf8(Some(s)) => s.trim().parse().ok(),
        other if other.data_type().is_numeric() => other.cast_to(&DataType::Float64).ok().and_then(|c| match c {
            ScalarValue::Float64(Some(f)) => Some(f),
            _ => None,
        }),
        _ => None,
    }
}

fn clamp_i64(x: f64) -> i64 {
    if x >= i64::MAX as f64 {
        i64::MAX
    } else if x <= i64::MIN as f64 {
        i64::MIN
    } else {
        x as i64
    }
}

/// A literal, possibly under the casts type coercion put around it.
fn lit(e: &Expr) -> Option<ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v.clone()),
        Expr::Cast(c) => lit(&c.expr),
        _ => None,
    }
}

/// Range predicates on `col` as (operator with the column on the left, literal). Unlike equality,
/// a cast of the column is not looked through: it may change the order.
fn range_bounds(e: &Expr, col: &str) -> Vec<(Operator, ScalarValue)> {
    fn is_col(e: &Expr, col: &str) -> bool {
        matches!(e, Expr::Column(c) if c.name == col)
    }
    match e {
        Expr::BinaryExpr(b) if b.op == Operator::And => {
            let mut v = range_bounds(&b.left, col);
            v.extend(range_bounds(&b.right, col));
            v
        }
        Expr::BinaryExpr(b) if matches!(b.op, Operator::Gt | Operator::GtEq | Operator::Lt | Operator::LtEq) => {
            if is_col(&b.left, col) {
                lit(&b.right).map(|v| vec![(b.op, v)]).unwrap_or_default()
            } else if is_col(&b.right, col) {
                let flipped = match b.op {
                    Operator::Gt => Operator::Lt,
                    Operator::GtEq => Operator::LtEq,
                    Operator::Lt => Operator::Gt,
                    _ => Operator::GtEq,
                };
                lit(&b.left).map(|v| vec![(flipped, v)]).unwrap_or_default()
            } else {
                vec![]
            }
        }
        Expr::Between(bt) if !bt.negated && is_col(&bt.expr, col) => match (lit(&bt.low), lit(&bt.high)) {
            (Some(l), Some(h)) => vec![(Operator::GtEq, l), (Operator::LtEq, h)],
            _ => vec![],
        },
        _ => vec![],
    }
}

/// `col = lit`, `lit = col` or `col IN (lits)` → the literal values.
fn equality_values(e: &Expr, col: &str) -> Option<Vec<ScalarValue>> {
    fn is_col(e: &Expr, col: &str) -> bool {
        match e {
            Expr::Column(c) => c.name == col,
            Expr::Cast(c) => is_col(&c.expr, col),
            Expr::TryCast(c) => is_col(&c.expr, col),
            _ => false,
        }
    }
    match e {
        Expr::BinaryExpr(b) if b.op == Operator::Eq => {
            if is_col(&b.left, col) {
                lit(&b.right).map(|v| vec![v])
            } else if is_col(&b.right, col) {
                lit(&b.left).map(|v| vec![v])
            } else {
                None
            }
        }
        Expr::InList(il) if !il.negated && is_col(&il.expr, col) => il.list.iter().map(lit).collect(),
        _ => None,
    }
}

#[async_trait]
impl TableProvider for KvTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn constraints(&self) -> Option<&datafusion::common::Constraints> {
        Some(self.constraints.get_or_init(|| key_constraints(&self.info)))
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // We use filters only to narrow what we read; DataFusion still evaluates them.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let rows = self.read(filters, limit).map_err(to_df)?;
        let batch = rows_to_batch(&self.info, &rows, &self.schema, self.with_handle).map_err(to_df)?;
        let exec = MemorySourceConfig::try_new_exec(&[vec![batch]], self.schema.clone(), projection.cloned())?;
        Ok(exec)
    }
}
