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
use crate::storage::table::decode_columns;

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
    /// The next stored rows (handle, encoded row), at most `BATCH_ROWS` and `left`.
    fn next_rows(&mut self) -> Result<Vec<(i64, Vec<u8>)>> {
        let want = BATCH_ROWS.min(self.left);
        if want == 0 {
            self.cursor = Cursor::Done;
            return Ok(vec![]);
        }
        match &mut self.cursor {
            Cursor::Done => Ok(vec![]),
            Cursor::Range { next, end } => {
                let kvs = self.txn.scan(next, end, want, false)?;
                if kvs.len() < want {
                    self.cursor = Cursor::Done;
                } else if let Some((k, _)) = kvs.last() {
                    let mut after = k.clone();
                    after.push(0);
                    *next = after;
                }
                kvs.into_iter().map(|(k, v)| Ok((codec::decode_row_key_handle(&k)?, v))).collect()
            }
            Cursor::Handles { handles, at } => {
                let mut out = Vec::with_capacity(want);
                while out.len() < want && *at < handles.len() {
                    let h = handles[*at];
                    *at += 1;
                    if let Some(v) = self.txn.get(&codec::row_key(self.table.id, h))? {
                        out.push((h, v));
                    }
                }
                if *at >= handles.len() {
                    self.cursor = Cursor::Done;
                }
                Ok(out)
            }
        }
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if matches!(self.cursor, Cursor::Done) {
                return Ok(None);
            }
            let rows = self.next_rows()?;
            if rows.is_empty() {
                continue;
            }
            self.left -= rows.len();
            return rows_batch(&self.table, &rows, &self.projection, &self.schema).map(Some);
        }
    }
}

/// Every stored row (handle, encoded row) the path reads, up to `limit`.
pub fn stored_rows(table: &TableInfo, txn: &Arc<Txn>, access: &Access, limit: Option<usize>) -> Result<Vec<(i64, Vec<u8>)>> {
    let mut r = Reader {
        table: table.clone(),
        txn: txn.clone(),
        projection: vec![],
        schema: Arc::new(datafusion::arrow::datatypes::Schema::empty()),
        left: limit.unwrap_or(usize::MAX),
        cursor: Cursor::new(table, access),
    };
    let mut out = Vec::new();
    while !matches!(r.cursor, Cursor::Done) {
        let rows = r.next_rows()?;
        r.left -= rows.len();
        out.extend(rows);
    }
    Ok(out)
}

/// Stored rows as a batch of the projected columns (only those are decoded).
pub fn rows_batch(table: &TableInfo, rows: &[(i64, Vec<u8>)], projection: &[usize], schema: &SchemaRef) -> Result<RecordBatch> {
    if projection.is_empty() {
        let opts = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        return RecordBatch::try_new_with_options(schema.clone(), vec![], &opts).map_err(|e| SqlError::other(e.to_string()));
    }
    let ids: Vec<u32> = projection.iter().filter_map(|&i| table.columns.get(i).map(|c| c.id)).collect();
    let decoded = rows.iter().map(|(h, v)| decode_columns(table, *h, v, &ids)).collect::<Result<Vec<_>>>()?;
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(projection.len());
    for &i in projection {
        match table.columns.get(i) {
            Some(c) => {
                let vals: Vec<&Datum> = decoded.iter().map(|r| &r.values[i]).collect();
                columns.push(datums_to_array(&c.ty, &vals)?);
            }
            None => columns.push(Arc::new(decoded.iter().map(|r| r.handle).collect::<Int64Array>())),
        }
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| SqlError::other(e.to_string()))
}
