//! Queries: a rewritten AST is planned and executed by DataFusion over the statement's transaction.
//!
//! `SELECT id, VEC_COSINE_DISTANCE(v, '[1,2,3]') AS d FROM t ORDER BY d LIMIT 2`:
//! rewrite (`sql::rewrite`) → check that every table exists (MySQL's 1146/1046 rather than
//! DataFusion's wording) → install a `TxnCatalogList` for this transaction → DataFusion plans it
//! (`vec_cosine_distance` is our UDF), optimises and runs it; `KvTable::scan` reads the rows → the
//! batches go back to the server, which encodes them for the wire.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::common::TableReference;
use embedb_storage::Txn;

use crate::error::{Result, SqlError};
use crate::session::{Output, Session};
use crate::sql::catalog::Catalog;
use crate::sql::context::{PlanScope, TxnCatalogList};
use crate::sql::rewrite;

impl Session {
    pub async fn query(&mut self, mut stmt: Statement, txn: Arc<Txn>) -> Result<Output> {
        rewrite::rewrite_statement(&mut stmt, self)?;
        let scope = PlanScope { dml_target: None, current_db: self.db.clone() };
        let (schema, batches) = self.plan_and_collect(stmt, txn, scope).await?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        self.last_found_rows = rows as u64;
        self.last_row_count = -1;
        Ok(Output::Rows { schema, batches })
    }

    /// Plan an (already rewritten) statement with DataFusion and run it to completion.
    pub async fn plan_and_collect(
        &mut self,
        stmt: Statement,
        txn: Arc<Txn>,
        scope: PlanScope,
    ) -> Result<(datafusion::arrow::datatypes::SchemaRef, Vec<RecordBatch>)> {
        let df_stmt = DFStatement::Statement(Box::new(stmt));
        self.check_tables(&df_stmt, &txn)?;
        self.ctx.register_catalog_list(Arc::new(TxnCatalogList::new(txn, scope)));
        let state = self.ctx.state();
        let plan = state.statement_to_plan(df_stmt).await?;
        let df = self.ctx.execute_logical_plan(plan).await?;
        // Keep each column's table alias (the DataFusion qualifier) for the wire's column definitions.
        let fields: Vec<datafusion::arrow::datatypes::Field> = df
            .schema()
            .iter()
            .map(|(q, f)| {
                let mut f = f.as_ref().clone();
                if let Some(q) = q {
                    let mut md = f.metadata().clone();
                    md.insert(crate::sql::types::ALIAS_META.into(), q.table().to_string());
                    f = f.with_metadata(md);
                }
                f
            })
            .collect();
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        let batches = df.collect().await?;
        Ok((schema, batches))
    }

    /// Every table a statement names must exist — checked here so the error is MySQL's.
    fn check_tables(&self, stmt: &DFStatement, txn: &Txn) -> Result<()> {
        let (refs, _ctes) = datafusion::sql::resolve::resolve_table_references(stmt, true)?;
        let cat = Catalog::new(txn);
        for r in refs {
            let (db, table) = match &r {
                TableReference::Bare { table } => (self.db.clone(), table.to_string()),
                TableReference::Partial { schema, table } => (Some(schema.to_string()), table.to_string()),
                TableReference::Full { schema, table, .. } => (Some(schema.to_string()), table.to_string()),
            };
            let Some(db) = db else { return Err(SqlError::no_db()) };
            if db.eq_ignore_ascii_case("information_schema") {
                continue;
            }
            if cat.database(&db)?.is_none() {
                return Err(SqlError::unknown_db(&db));
            }
            if cat.table(&db, &table)?.is_none() {
                return Err(SqlError::no_such_table(&db, &table));
            }
        }
        Ok(())
    }
}
