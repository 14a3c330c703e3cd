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
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use embedb_storage::codec::{self, Datum};
use embedb_storage::Txn;

use crate::error::{to_df, Result, SqlError};
use crate::sql::catalog::{IndexInfo, TableInfo};
use crate::sql::types::{self, datums_to_array};
use crate::storage::access::{self, Access, IndexHints};
use crate::storage::scan::{self, KvScanExec};

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
    place(table, handle, codec::decode_row_some(value, ids)?)
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
    guard_definition(txn, table)?;
    txn.put(codec::row_key(table.id, row.handle), codec::encode_row(&cols));
    for index in table.kv_indexes() {
        let (k, v, _) = index_entry(table, index, row);
        txn.put(k, v);
    }
    Ok(())
}

/// Write a new row (INSERT): [`put_row`], counted in the table's row count.
pub fn insert_row(txn: &Txn, table: &TableInfo, row: &Row) -> Result<()> {
    put_row(txn, table, row)?;
    txn.count_rows(table.id, 1);
    Ok(())
}

/// Delete a row for good (DELETE, REPLACE, a cascade): [`delete_row`], counted. An UPDATE's
/// delete-then-put of the same row uses the uncounted pair.
pub fn remove_row(txn: &Txn, table: &TableInfo, row: &Row) -> Result<()> {
    delete_row(txn, table, row)?;
    let queued: Vec<u32> = table.queued_column_ids();
    crate::embed::backlog::forget_row(txn, table.id, &queued, row.handle);
    txn.count_rows(table.id, -1);
    Ok(())
}

/// The table's row count: known counts are kept current by every commit; the first ask after
/// a start counts the row keys once (`TABLE_ROWS`, `SHOW TABLE STATUS`, the planner's estimates).
pub fn estimated_rows(txn: &Txn, table_id: i64) -> Result<u64> {
    Ok(txn.estimated_rows(table_id, || {
        let start = codec::record_prefix(table_id);
        let end = codec::prefix_end(&start);
        let mut n = 0u64;
        txn.scan_visit(&start, &end, &mut |_, _| {
            n += 1;
            true
        })?;
        Ok(n)
    })?)
}

/// What `information_schema.TABLES` and `SHOW TABLE STATUS` report of a table's size.
pub struct TableSizes {
    pub rows: u64,
    pub avg_row_length: u64,
    pub data_length: u64,
    pub index_length: u64,
    /// The next AUTO_INCREMENT value, for a table with an AUTO_INCREMENT column.
    pub auto_increment: Option<u64>,
}

/// Rows from [`estimated_rows`]; lengths from the bytes of the first rows and index entries
/// (a sample of up to 64 each), times the row count: an estimate, as MySQL's are.
pub fn table_sizes(txn: &Txn, table: &TableInfo) -> Result<TableSizes> {
    const SAMPLE: usize = 64;
    let avg = |start: Vec<u8>| -> Result<u64> {
        let end = codec::prefix_end(&start);
        let kvs = txn.scan(&start, &end, SAMPLE, false)?;
        let bytes: usize = kvs.iter().map(|(k, v)| k.len() + v.len()).sum();
        Ok(if kvs.is_empty() { 0 } else { (bytes / kvs.len()) as u64 })
    };
    let rows = estimated_rows(txn, table.id)?;
    let avg_row_length = avg(codec::record_prefix(table.id))?;
    let mut index_entry = 0;
    for index in table.kv_indexes() {
        index_entry += avg(codec::index_prefix(table.id, index.id))?;
    }
    let auto_increment = match table.auto_increment_column() {
        Some(_) => Some(txn.peek_counter(&table.id_counter())?),
        None => None,
    };
    Ok(TableSizes {
        rows,
        avg_row_length,
        data_length: rows * avg_row_length,
        index_length: rows * index_entry,
        auto_increment,
    })
}

/// Delete a row and its index entries.
/// A row write is made for this definition of its table: the commit fails if a DDL changed it
/// meanwhile (`Txn::guard`), and writes wait while the table switches to a new embedding model.
fn guard_definition(txn: &Txn, table: &TableInfo) -> Result<()> {
    if table.model_change.as_ref().is_some_and(|m| m.switching) {
        return Err(SqlError::new(crate::error::WRITE_CONFLICT, "HY000", format!("Write conflict: {}, try again", crate::embed::model_change::SWITCHING)));
    }
    txn.guard(&table.def_key());
    Ok(())
}

pub fn delete_row(txn: &Txn, table: &TableInfo, row: &Row) -> Result<()> {
    guard_definition(txn, table)?;
    txn.delete(codec::row_key(table.id, row.handle));
    for index in table.kv_indexes() {
        let (k, _, _) = index_entry(table, index, row);
        txn.delete(k);
    }
    Ok(())
}

/// Delete every row and index entry of a table (DROP / TRUNCATE).
pub fn delete_all(txn: &Txn, table_id: i64) -> Result<()> {
    txn.forget_row_count(table_id);
    crate::embed::backlog::forget_table(txn, table_id)?;
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
    /// The statement's index hints for this table.
    pub hints: IndexHints,
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
        KvTable { info, txn, with_handle, hints: IndexHints::default(), schema: Arc::new(Schema::new(fields)), constraints: Default::default() }
    }

    /// As `new`, with the schema `new` made for the same table (a cached plan keeps it).
    pub fn with_schema(info: TableInfo, txn: Arc<Txn>, with_handle: bool, schema: SchemaRef) -> Self {
        KvTable { info, txn, with_handle, hints: IndexHints::default(), schema, constraints: Default::default() }
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

    /// How the rows `filters` may select are read (`storage::access`).
    pub fn access(&self, filters: &[Expr]) -> Result<Access> {
        let fulltext = match access::pk_point_handles(&self.info, filters) {
            Some(_) => None,
            None => self.fulltext_handles(filters)?,
        };
        access::choose(&self.txn, &self.info, filters, fulltext, &self.hints)
    }

    fn read(&self, filters: &[Expr], limit: Option<usize>) -> Result<Vec<Row>> {
        let access = self.access(filters)?;
        let lim = if filters.is_empty() { limit } else { None };
        scan::read_rows(&self.info, &self.txn, &access, lim)
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
        let access = self.access(filters).map_err(to_df)?;
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let access = access::covering(&self.info, &access, filters, &projection).unwrap_or(access);
        let schema = Arc::new(self.schema.project(&projection)?);
        let limit = if filters.is_empty() { limit } else { None };
        Ok(Arc::new(KvScanExec::new(self.info.clone(), self.txn.clone(), access, filters.to_vec(), self.hints.clone(), projection, schema, limit)))
    }
}
