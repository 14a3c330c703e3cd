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
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream};
use embedb_storage::codec::{self, Datum};
use embedb_storage::Txn;

use crate::error::{to_df, Result, SqlError};
use crate::sql::catalog::TableInfo;
use crate::sql::types::datums_to_array;
use crate::storage::access::{handle_bounds, Access};
use crate::storage::table::{decode_columns, Row};

/// Rows per batch.
pub const BATCH_ROWS: usize = 1024;

pub struct KvScanExec {
    table: TableInfo,
    txn: Arc<Txn>,
    access: Access,
    /// Positions of the output columns among the table's columns; `table.columns.len()` is the
    /// hidden handle column.
    projection: Vec<usize>,
    schema: SchemaRef,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl KvScanExec {
    pub fn new(table: TableInfo, txn: Arc<Txn>, access: Access, projection: Vec<usize>, schema: SchemaRef, limit: Option<usize>) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        KvScanExec { table, txn, access, projection, schema, limit, properties }
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
