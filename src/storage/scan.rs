//! The table scan's plan node: rows streamed from the KV in batches along an access path.
//!
//! `KvTable::scan` picks the path (`storage::access`) when DataFusion plans the statement and
//! returns a [`KvScanExec`]; running it reads [`BATCH_ROWS`] rows at a time — a key range resumed
//! after its last key, or the next handles of a lookup — and decodes only the columns the plan
//! needs. `COUNT(*)` needs none: its batches carry a row count and no columns, and no row is
//! decoded. EXPLAIN shows the path in TiDB's words (`IndexRangeScan index:k(k) range:[10,20]`).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::SortOrderPushdownResult;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream};
use embedb_storage::codec::{self, Datum};
use embedb_storage::Txn;

use crate::error::{to_df, Result, SqlError};
use crate::sql::catalog::TableInfo;
use crate::sql::types::datums_to_array;
use crate::sql::catalog::IndexInfo;
use crate::storage::access::{self, handle_bounds, Access, IndexHints};
use crate::storage::table::{decode_columns, Row};

/// Rows per batch.
pub const BATCH_ROWS: usize = 1024;

#[derive(Clone)]
pub struct KvScanExec {
    table: TableInfo,
    txn: Arc<Txn>,
    access: Access,
    /// The statement's filters on this table and its index hints: an ORDER BY pushed down later
    /// ([`KvScanExec::in_order`]) chooses its path with them.
    filters: Vec<Expr>,
    hints: IndexHints,
    /// Positions of the output columns among the table's columns; `table.columns.len()` is the
    /// hidden handle column.
    projection: Vec<usize>,
    schema: SchemaRef,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl KvScanExec {
    pub fn new(table: TableInfo, txn: Arc<Txn>, access: Access, filters: Vec<Expr>, hints: IndexHints, projection: Vec<usize>, schema: SchemaRef, limit: Option<usize>) -> Self {
        let properties = Self::properties_for(&schema, None);
        KvScanExec { table, txn, access, filters, hints, projection, schema, limit, properties }
    }

    fn properties_for(schema: &SchemaRef, ordering: Option<Vec<PhysicalSortExpr>>) -> Arc<PlanProperties> {
        let eq = match ordering {
            Some(o) => EquivalenceProperties::new_with_orderings(schema.clone(), [o]),
            None => EquivalenceProperties::new(schema.clone()),
        };
        Arc::new(PlanProperties::new(eq, Partitioning::UnknownPartitioning(1), EmissionType::Incremental, Boundedness::Bounded))
    }

    /// This scan reading its rows in `order` (sort expressions over its output columns) when
    /// the primary key or an index gives that order (`access::ordered`); `limited` says a LIMIT
    /// above stops the read early, which makes an index read in order worth more than a sort.
    pub fn in_order(&self, order: &[PhysicalSortExpr], limited: bool) -> Option<KvScanExec> {
        let desc = order.first()?.options.descending;
        let mut keys = Vec::with_capacity(order.len());
        for e in order {
            // MySQL's NULLs sort as the smallest value, as they do in keys.
            if e.options.descending != desc || e.options.nulls_first == desc {
                return None;
            }
            let col = e.expr.downcast_ref::<Column>()?;
            let pos = *self.projection.get(col.index())?;
            if pos >= self.table.columns.len() {
                return None; // the hidden handle column
            }
            keys.push(pos);
        }
        // A failed read here only loses the order; the scan reports it when it runs.
        let access = access::ordered(&self.txn, &self.table, &self.access, &self.filters, &keys, desc, limited, &self.hints).ok()??;
        let access = access::covering(&self.table, &access, &self.filters, &self.projection).unwrap_or(access);
        Some(KvScanExec { access, properties: Self::properties_for(&self.schema, Some(order.to_vec())), ..self.clone() })
    }
}

impl fmt::Debug for KvScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KvScanExec({}.{}, {:?})", self.table.db, self.table.name, self.access)
    }
}

impl DisplayAs for KvScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let cols: Vec<&str> = self.schema.fields().iter().map(|f| f.name().as_str()).collect();
        write!(f, "KvScanExec: table:{}, {}, columns:[{}]", self.table.name, self.access.describe(), cols.join(", "))?;
        if let Some(l) = self.limit {
            write!(f, ", limit:{l}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for KvScanExec {
    fn name(&self) -> &str {
        "KvScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    /// DataFusion's sort pushdown (a sort right above the scan, or above projections of it): taken
    /// where reading in order costs no more than the scan chosen already.
    fn try_pushdown_sort(&self, order: &[PhysicalSortExpr]) -> DfResult<SortOrderPushdownResult<Arc<dyn ExecutionPlan>>> {
        Ok(match self.in_order(order, false) {
            Some(scan) => SortOrderPushdownResult::Exact { inner: Arc::new(scan) },
            None => SortOrderPushdownResult::Unsupported,
        })
    }

    /// A LIMIT right above the scan stops it (no filter sits between: filters leave a
    /// `FilterExec` above the scan).
    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        if !self.filters.is_empty() {
            return None;
        }
        let limit = match (limit, self.limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Some(Arc::new(KvScanExec { limit, ..self.clone() }))
    }

    fn fetch(&self) -> Option<usize> {
        self.limit
    }

    fn execute(&self, _partition: usize, _context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let cursor = Cursor::new(&self.table, &self.access);
        let reader = Reader {
            table: self.table.clone(),
            txn: self.txn.clone(),
            projection: self.projection.clone(),
            schema: self.schema.clone(),
            left: self.limit.unwrap_or(usize::MAX),
            cursor,
        };
        let stream = futures::stream::unfold(reader, |mut r| async move {
            match r.next_batch() {
                Ok(Some(b)) => Some((Ok(b), r)),
                Ok(None) => None,
                Err(e) => {
                    r.cursor = Cursor::Done;
                    Some((Err(to_df(e)), r))
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream)))
    }
}

/// Where a running scan is.
enum Cursor {
    /// The next key to read and the end of the range.
    Range { next: Vec<u8>, end: Vec<u8> },
    /// Key ranges still to read in order (the first is the current one, narrowed as it is read):
    /// row keys, or entries of `index` whose rows are then read by handle.
    /// With `covering`, the rows are made from the index entries (`Covering`), none is read.
    Ordered { ranges: std::collections::VecDeque<(Vec<u8>, Vec<u8>)>, desc: bool, index: Option<IndexInfo>, covering: Option<Covering> },
    /// The handles still to read.
    Handles { handles: Vec<i64>, at: usize },
    Done,
}

impl Cursor {
    fn new(table: &TableInfo, access: &Access) -> Cursor {
        match access {
            Access::TableFullScan => {
                let next = codec::record_prefix(table.id);
                let end = codec::prefix_end(&next);
                Cursor::Range { next, end }
            }
            Access::TableRangeScan { lo, hi } if lo > hi => Cursor::Done,
            Access::TableRangeScan { lo, hi } => {
                let (next, end) = handle_bounds(table.id, *lo, *hi);
                Cursor::Range { next, end }
            }
            Access::Handles { handles, .. } | Access::IndexRangeScan { handles, .. } => Cursor::Handles { handles: handles.clone(), at: 0 },
            Access::Ordered { index, ranges, desc, covering, .. } => {
                let mut ranges: std::collections::VecDeque<_> = ranges.iter().cloned().collect();
                if *desc {
                    ranges.make_contiguous().reverse();
                }
                let covering = match index {
                    Some(ix) if *covering => Some(Covering::new(table, ix)),
                    _ => None,
                };
                Cursor::Ordered { ranges, desc: *desc, index: index.clone(), covering }
            }
        }
    }
}

struct Reader {
    table: TableInfo,
    txn: Arc<Txn>,
    projection: Vec<usize>,
    schema: SchemaRef,
    left: usize,
    cursor: Cursor,
}

impl Reader {
    /// Column ids to decode (none for the handle column).
    fn ids(&self) -> Vec<u32> {
        self.projection.iter().filter_map(|&i| self.table.columns.get(i).map(|c| c.id)).collect()
    }

    /// The next rows, decoded (only the projected columns), at most `BATCH_ROWS` and `left`;
    /// with an empty projection only counted. Range scans read the store's bytes in place.
    fn next_rows(&mut self) -> Result<(Vec<Row>, usize)> {
        let want = BATCH_ROWS.min(self.left);
        if want == 0 {
            self.cursor = Cursor::Done;
            return Ok((vec![], 0));
        }
        let ids = self.ids();
        let count_only = self.projection.is_empty();
        let mut rows = Vec::new();
        let mut n = 0;
        match &mut self.cursor {
            Cursor::Done => {}
            Cursor::Range { next, end } => {
                let mut err = None;
                let mut last = None;
                self.txn.scan_visit(next, end, &mut |k, v| {
                    if !count_only {
                        match codec::decode_row_key_handle(k).map_err(SqlError::from).and_then(|h| decode_columns(&self.table, h, v, &ids)) {
                            Ok(r) => rows.push(r),
                            Err(e) => {
                                err = Some(e);
                                return false;
                            }
                        }
                    }
                    n += 1;
                    if n == want {
                        last = Some(k.to_vec());
                        return false;
                    }
                    true
                })?;
                if let Some(e) = err {
                    return Err(e);
                }
                match last {
                    Some(mut k) => {
                        k.push(0);
                        *next = k;
                    }
                    None => self.cursor = Cursor::Done,
                }
            }
            Cursor::Handles { handles, at } => {
                while n < want && *at < handles.len() {
                    let h = handles[*at];
                    *at += 1;
                    if let Some(v) = self.txn.get(&codec::row_key(self.table.id, h))? {
                        if !count_only {
                            rows.push(decode_columns(&self.table, h, &v, &ids)?);
                        }
                        n += 1;
                    }
                }
                if *at >= handles.len() {
                    self.cursor = Cursor::Done;
                }
            }
            Cursor::Ordered { ranges, desc, index, covering } => {
                while n < want {
                    let Some((start, end)) = ranges.front_mut() else { break };
                    let entries = self.txn.scan(start, end, want - n, *desc)?;
                    let exhausted = entries.len() < want - n;
                    for (k, v) in &entries {
                        if let (Some(cover), Some(ix)) = (covering.as_ref(), index.as_ref()) {
                            if !count_only {
                                rows.push(cover.row(&self.table, ix, k, v)?);
                            }
                            n += 1;
                            continue;
                        }
                        let (handle, row) = match index {
                            None => (codec::decode_row_key_handle(k)?, None),
                            Some(ix) => {
                                let h = access::entry_handle(ix, k, v)?;
                                match self.txn.get(&codec::row_key(self.table.id, h))? {
                                    Some(row) => (h, Some(row)),
                                    None => continue,
                                }
                            }
                        };
                        if !count_only {
                            rows.push(decode_columns(&self.table, handle, row.as_deref().unwrap_or(v), &ids)?);
                        }
                        n += 1;
                    }
                    match entries.last() {
                        Some((last, _)) if !exhausted => {
                            if *desc {
                                *end = last.clone();
                            } else {
                                let mut next = last.clone();
                                next.push(0);
                                *start = next;
                            }
                        }
                        _ => {
                            ranges.pop_front();
                        }
                    }
                }
                if ranges.is_empty() {
                    self.cursor = Cursor::Done;
                }
            }
        }
        Ok((rows, n))
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if matches!(self.cursor, Cursor::Done) {
                return Ok(None);
            }
            let (rows, n) = self.next_rows()?;
            if n == 0 {
                continue;
            }
            self.left -= n;
            return rows_batch(&self.table, &rows, n, &self.projection, &self.schema).map(Some);
        }
    }
}

/// Every row the path reads (all columns decoded), up to `limit`.
pub fn read_rows(table: &TableInfo, txn: &Arc<Txn>, access: &Access, limit: Option<usize>) -> Result<Vec<Row>> {
    read_rows_where(table, txn, access, limit, &|_| true)
}

/// The rows the path reads for which `keep` holds, stopping once `want` are found.
pub fn read_rows_where(table: &TableInfo, txn: &Arc<Txn>, access: &Access, want: Option<usize>, keep: &dyn Fn(&Row) -> bool) -> Result<Vec<Row>> {
    let want = want.unwrap_or(usize::MAX);
    let mut r = Reader {
        table: table.clone(),
        txn: txn.clone(),
        projection: (0..table.columns.len()).collect(),
        schema: Arc::new(datafusion::arrow::datatypes::Schema::empty()),
        left: usize::MAX,
        cursor: Cursor::new(table, access),
    };
    let mut out = Vec::new();
    while out.len() < want && !matches!(r.cursor, Cursor::Done) {
        let (rows, _) = r.next_rows()?;
        out.extend(rows.into_iter().filter(|row| keep(row)));
    }
    out.truncate(want);
    Ok(out)
}

/// How a covering read makes a row from an index entry: where each of the index's columns goes
/// (its position in the table, and its decimal scale), and where the handle goes.
struct Covering {
    places: Vec<(usize, Option<u8>)>,
    handle: Option<(usize, bool)>,
}

impl Covering {
    fn new(table: &TableInfo, index: &IndexInfo) -> Covering {
        let places = index
            .columns
            .iter()
            .filter_map(|c| table.column_index(c))
            .map(|i| (i, match table.columns[i].ty { crate::sql::types::SqlType::Decimal { scale, .. } => Some(scale), _ => None }))
            .collect();
        let handle = table.pk_handle.as_ref().and_then(|c| table.column_index(c)).map(|i| {
            (i, matches!(table.columns[i].ty, crate::sql::types::SqlType::Int { unsigned: true, .. }))
        });
        Covering { places, handle }
    }

    fn row(&self, table: &TableInfo, index: &IndexInfo, key: &[u8], value: &[u8]) -> Result<Row> {
        let h = access::entry_handle(index, key, value)?;
        let mut values = vec![Datum::Null; table.columns.len()];
        for ((i, scale), d) in self.places.iter().zip(codec::decode_index_values(key, index.columns.len())?) {
            values[*i] = match (d, scale) {
                // Keys keep a decimal at its smallest scale; the column's is the row's.
                (Datum::Decimal { value, scale: s }, Some(want)) if s < *want => Datum::Decimal { value: value * 10i128.pow((*want - s) as u32), scale: *want },
                (d, _) => d,
            };
        }
        if let Some((i, unsigned)) = self.handle {
            values[i] = if unsigned { Datum::UInt(h as u64) } else { Datum::Int(h) };
        }
        Ok(Row { handle: h, values })
    }
}

/// Decoded rows as a batch of the projected columns; `n` rows when no column is projected.
fn rows_batch(table: &TableInfo, rows: &[Row], n: usize, projection: &[usize], schema: &SchemaRef) -> Result<RecordBatch> {
    if projection.is_empty() {
        let opts = RecordBatchOptions::new().with_row_count(Some(n));
        return RecordBatch::try_new_with_options(schema.clone(), vec![], &opts).map_err(|e| SqlError::other(e.to_string()));
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(projection.len());
    for &i in projection {
        match table.columns.get(i) {
            Some(c) => {
                let vals: Vec<&Datum> = rows.iter().map(|r| &r.values[i]).collect();
                columns.push(datums_to_array(&c.ty, &vals)?);
            }
            None => columns.push(Arc::new(rows.iter().map(|r| r.handle).collect::<Int64Array>())),
        }
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| SqlError::other(e.to_string()))
}
