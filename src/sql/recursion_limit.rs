//! MySQL's `cte_max_recursion_depth` (1000 unless the session sets it) for recursive CTEs.
//! DataFusion runs a recursive CTE's recursive term again for as long as it returns rows, with no bound, so
//! `WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT 1 FROM s) SELECT …` would run (and, under
//! an ORDER BY, buffer) forever. [`RecursionLimit`], a physical optimizer rule, wraps every
//! `RecursiveQueryExec`'s terms in a [`Guard`] that counts the recursive term's runs (the static
//! term's run starts the count again) and fails the statement with MySQL's 3636 past the limit,
//! which the session keeps in its DataFusion config ([`Depth`], set by
//! `SET cte_max_recursion_depth`).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::recursive_query::RecursiveQueryExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream};

use crate::error::{to_df, SqlError};

/// MySQL's default `cte_max_recursion_depth`.
pub const MAX_DEPTH: usize = 1000;

/// The variable's name.
pub const DEPTH_VAR: &str = "cte_max_recursion_depth";

/// A session's `cte_max_recursion_depth`, as a DataFusion config extension.
#[derive(Debug)]
pub struct Depth(AtomicUsize);

impl Default for Depth {
    fn default() -> Self {
        Depth(AtomicUsize::new(MAX_DEPTH))
    }
}

/// The config with a depth of its own for the session to set.
pub fn with_depth(cfg: datafusion::prelude::SessionConfig) -> datafusion::prelude::SessionConfig {
    cfg.with_extension(Arc::new(Depth::default()))
}

/// `SET cte_max_recursion_depth = n` for the session whose context this is.
pub fn set_depth(ctx: &datafusion::prelude::SessionContext, value: &str) {
    if let Some(d) = ctx.state().config().get_extension::<Depth>() {
        d.0.store(value.parse().unwrap_or(MAX_DEPTH), Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct RecursionLimit;

impl PhysicalOptimizerRule for RecursionLimit {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if !node.is::<RecursiveQueryExec>() {
                return Ok(Transformed::no(node));
            }
            let kids: Vec<Arc<dyn ExecutionPlan>> = node.children().into_iter().cloned().collect();
            if kids.len() != 2 || kids[1].is::<Guard>() {
                return Ok(Transformed::no(node));
            }
            let runs = Arc::new(AtomicUsize::new(0));
            let start = Arc::new(Guard { input: kids[0].clone(), runs: runs.clone(), counts: false });
            let step = Arc::new(Guard { input: kids[1].clone(), runs, counts: true });
            Ok(Transformed::yes(datafusion::physical_plan::execution_plan::replace_children_if_necessary(node, vec![start, step])?))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "cte_max_recursion_depth"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Passes its input through; the static term's guard resets the count, the recursive term's
/// counts one run per execution.
#[derive(Debug)]
struct Guard {
    input: Arc<dyn ExecutionPlan>,
    runs: Arc<AtomicUsize>,
    counts: bool,
}

impl DisplayAs for Guard {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RecursionGuard")
    }
}

impl ExecutionPlan for Guard {
    fn name(&self) -> &str {
        "RecursionGuard"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Guard { input: children.swap_remove(0), runs: self.runs.clone(), counts: self.counts }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let max = context.session_config().get_extension::<Depth>().map_or(MAX_DEPTH, |d| d.0.load(Ordering::Relaxed));
        if !self.counts {
            self.runs.store(0, Ordering::SeqCst);
        } else if self.runs.fetch_add(1, Ordering::SeqCst) + 1 > max {
            return Err(to_df(SqlError::new(
                3636,
                "HY000",
                format!("Recursive query aborted after {} iterations. Try increasing @@cte_max_recursion_depth to a larger value.", max + 1),
            )));
        }
        self.input.execute(partition, context)
    }
}
