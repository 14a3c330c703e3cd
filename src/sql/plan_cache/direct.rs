//! Plans the plan cache runs without DataFusion: those that only pick columns of the ANN
//! scan's rows and limit them (see [`Direct`]).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::Result as DfResult;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;

use super::ScanSlot;

/// What a plan of only column picks and limits over its scan does to the scan's rows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Direct {
    /// The output's columns, by their index in the scan's rows.
    pub(super) columns: Vec<usize>,
    skip: usize,
    fetch: Option<usize>,
}

impl Direct {
    /// `plan`'s effect when it is made only of plain-column projections and limits over its
    /// one leaf (the scan slot), else None.
    pub(super) fn of(plan: &Arc<dyn ExecutionPlan>) -> Option<Direct> {
        use datafusion::physical_expr::expressions::Column;
        use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
        let children = plan.children();
        if children.is_empty() {
            let width = plan.schema().fields().len();
            return plan.is::<ScanSlot>().then(|| Direct { columns: (0..width).collect(), skip: 0, fetch: None });
        }
        let [child] = children.as_slice() else { return None };
        let mut below = Direct::of(child)?;
        if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
            let columns = p.expr().iter().map(|e| e.expr.downcast_ref::<Column>().and_then(|c| below.columns.get(c.index()).copied())).collect::<Option<Vec<_>>>()?;
            // The output's types must be the picked columns' own (no cast hidden in the schema).
            let from = child.schema();
            let same = p.schema().fields().iter().zip(p.expr()).all(|(f, e)| e.expr.downcast_ref::<Column>().is_some_and(|c| from.field(c.index()).data_type() == f.data_type()));
            if !same {
                return None;
            }
            below.columns = columns;
            return Some(below);
        }
        let (skip, fetch) = if let Some(l) = plan.downcast_ref::<GlobalLimitExec>() {
            (l.skip(), l.fetch())
        } else if let Some(l) = plan.downcast_ref::<LocalLimitExec>() {
            (0, Some(l.fetch()))
        } else {
            return None;
        };
        // A limit over a limit: skip within what the lower one kept.
        let kept_below = below.fetch;
        below.skip += skip;
        below.fetch = match (kept_below.map(|f| f.saturating_sub(skip)), fetch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Some(below)
    }

    /// The output for the scan's `rows`.
    pub(super) fn apply(&self, rows: &RecordBatch, schema: &SchemaRef) -> DfResult<RecordBatch> {
        let start = self.skip.min(rows.num_rows());
        let len = self.fetch.map_or(rows.num_rows() - start, |f| f.min(rows.num_rows() - start));
        let rows = rows.slice(start, len);
        let columns = self.columns.iter().map(|&i| rows.column(i).clone()).collect();
        Ok(RecordBatch::try_new_with_options(schema.clone(), columns, &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(len)))?)
    }
}
