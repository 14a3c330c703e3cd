//! ORDER BY served by key order: no sort where the primary key or an index reads rows in order.
//!
//! `SELECT * FROM docs WHERE tenant = 7 ORDER BY created DESC LIMIT 20` plans as
//! `SortExec(fetch 20) → FilterExec → KvScanExec`. DataFusion's own sort pushdown asks the scan
//! ([`KvScanExec::try_pushdown_sort`]) only through projections, and never says whether a LIMIT
//! follows. [`IndexOrder`], a physical optimizer rule run after DataFusion's, walks from each
//! `SortExec` down through filters, projections and cooperative yields to a [`KvScanExec`],
//! carrying the sort expressions over to the scan's columns; when the scan can read in that
//! order (`KvScanExec::in_order`, told whether a LIMIT stops it), the sort is dropped and its
//! LIMIT stays as a `GlobalLimitExec`, which stops the scan after the rows it needs: reading the
//! index `(tenant, created)` backwards from tenant 7's last entry, 20 entries and 20 rows.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result as DfResult;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalSortExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::limit::GlobalLimitExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

use crate::storage::scan::KvScanExec;

#[derive(Debug, Default)]
pub struct IndexOrder;

impl PhysicalOptimizerRule for IndexOrder {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(plan
            .transform_down(|node| {
                let Some(sort) = node.downcast_ref::<SortExec>() else { return Ok(Transformed::no(node)) };
                if sort.preserve_partitioning() && sort.input().output_partitioning().partition_count() > 1 {
                    return Ok(Transformed::no(node));
                }
                let order: Vec<PhysicalSortExpr> = sort.expr().iter().cloned().collect();
                let Some(input) = in_order(sort.input(), &order, sort.fetch().is_some())? else { return Ok(Transformed::no(node)) };
                Ok(Transformed::yes(match sort.fetch() {
                    Some(n) => Arc::new(GlobalLimitExec::new(input, 0, Some(n))) as Arc<dyn ExecutionPlan>,
                    None => input,
                }))
            })?
            .data)
    }

    fn name(&self) -> &str {
        "embedb_index_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` rebuilt to produce its rows in `order`, when a scan under order-keeping nodes can.
fn in_order(plan: &Arc<dyn ExecutionPlan>, order: &[PhysicalSortExpr], limited: bool) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(scan) = plan.downcast_ref::<KvScanExec>() {
        return Ok(scan.in_order(order, limited).map(|s| Arc::new(s) as Arc<dyn ExecutionPlan>));
    }
    let child_order = if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        match filter.projection() {
            Some(p) => map_columns(order, |i| p.get(i).copied())?,
            None => Some(order.to_vec()),
        }
    } else if let Some(proj) = plan.downcast_ref::<ProjectionExec>() {
        map_columns(order, |i| proj.expr().get(i).and_then(|e| e.expr.downcast_ref::<Column>()).map(|c| c.index()))?
    } else if plan.is::<CooperativeExec>() {
        Some(order.to_vec())
    } else {
        None
    };
    let Some(child_order) = child_order else { return Ok(None) };
    let [child] = plan.children()[..] else { return Ok(None) };
    let Some(child) = in_order(child, &child_order, limited)? else { return Ok(None) };
    replace_children_if_necessary(plan.clone(), vec![child]).map(Some)
}

/// The sort expressions over a child's columns, where each is a plain column that `map` carries
/// from the parent's position to the child's.
fn map_columns(order: &[PhysicalSortExpr], map: impl Fn(usize) -> Option<usize>) -> DfResult<Option<Vec<PhysicalSortExpr>>> {
    let mut out = Vec::with_capacity(order.len());
    for e in order {
        let Some(col) = e.expr.downcast_ref::<Column>() else { return Ok(None) };
        let Some(i) = map(col.index()) else { return Ok(None) };
        out.push(PhysicalSortExpr::new(Arc::new(Column::new(col.name(), i)), e.options));
    }
    Ok(Some(out))
}
