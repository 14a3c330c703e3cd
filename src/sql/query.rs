//! Queries: a rewritten AST is planned and executed by DataFusion over the statement's transaction.
//!
//! `SELECT id, VEC_COSINE_DISTANCE(v, '[1,2,3]') AS d FROM t ORDER BY d LIMIT 2`:
//! rewrite (`sql::rewrite`) → check that every table exists (MySQL's 1146/1046 rather than
//! DataFusion's wording) → install a `TxnCatalogList` for this transaction → DataFusion plans it
//! (`vec_cosine_distance` is our UDF), optimises and runs it; `KvTable::scan` reads the rows → the
//! batches go back to the server, which encodes them for the wire.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
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
    pub async fn query(&mut self, stmt: Statement, txn: Arc<Txn>) -> Result<Output> {
        // Set by `run_inner` for a SELECT whose plan the plan cache may keep.
        let pending = self.plan_cache.take_pending();
        if self.point_get {
            if let Some(out) = self.point_get(&stmt, &txn)? {
                return Ok(out);
            }
        }
        // Boxed: planning's futures are large, and moving them whole into this one would make
        // every query (a point get too) copy them.
        Box::pin(self.plan_and_run(stmt, txn, pending)).await
    }

    /// A query DataFusion plans and runs (`pending`: the plan-cache entry it may fill).
    async fn plan_and_run(&mut self, mut stmt: Statement, txn: Arc<Txn>, pending: Option<crate::sql::plan_cache::Pending>) -> Result<Output> {
        let (scope, view_headers) = self.rewrite_query(&mut stmt, &txn)?;
        let (schema, plan, task) = self.plan_physical(stmt, txn, scope).await?;
        let schema = crate::sql::view::restore_headers(schema, &view_headers);
        let batches = datafusion::physical_plan::collect(plan.clone(), task.clone()).await?;
        // TiDB's "ANN index not used: …" notes from the vector-index rule, for SHOW WARNINGS.
        let warnings = crate::index::search::ann::take_warnings(&self.ctx);
        if let (Some(p), true) = (pending, warnings.is_empty() && !std::mem::take(&mut self.searched_async)) {
            // A repeat is not rewritten: the kept schema carries the headers as written.
            let shown = self.aliases_as_written(schema.clone());
            self.plan_cache.offer(p, &shown, &plan, &task);
        }
        for w in warnings {
            self.warn(1105, w);
        }
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        self.last_found_rows = rows as u64;
        self.last_row_count = -1;
        Ok(Output::Rows { schema, batches })
    }

    /// A statement read by key without DataFusion (`sql::point_get`), or its EXPLAIN.
    fn point_get(&mut self, stmt: &Statement, txn: &Arc<Txn>) -> Result<Option<Output>> {
        use crate::sql::point_get::PointGet;
        if let Statement::Explain { analyze: false, format: None, options: None, statement, .. } = stmt {
            return Ok(PointGet::of(statement, self.db.as_deref(), txn)?.map(|p| p.explain()));
        }
        let Some(p) = PointGet::of(stmt, self.db.as_deref(), txn)? else { return Ok(None) };
        let out = p.run(txn)?;
        if let Output::Rows { batches, .. } = &out {
            self.last_found_rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        }
        self.last_row_count = -1;
        Ok(Some(out))
    }

    /// The rewrites every query goes through before DataFusion plans it; the scope it is planned
    /// in, and the capitalised view column names its result headers take back (`sql::view`).
    fn rewrite_query(&mut self, stmt: &mut Statement, txn: &Arc<Txn>) -> Result<(PlanScope, Vec<String>)> {
        // Views become the SELECTs they stand for, and HYBRID_SEARCH(...) in FROM its RRF query,
        // first; the passes below treat the expansions like any query the user wrote.
        let view_headers = crate::sql::view::expand(stmt, self.db.as_deref(), &Catalog::new(txn))?;
        crate::index::hybrid::expand(stmt, self.db.as_deref(), &Catalog::new(txn))?;
        rewrite::rewrite_statement(stmt, self)?;
        // Both rewrites below skip statements that do not name their functions: one look at the
        // text serves both.
        let text = stmt.to_string().to_ascii_lowercase();
        self.rewrite_vec_embed(stmt, txn, &text)?;
        self.searched_async = self.guard_async_searches(stmt, txn, &text)?;
        let handle_tables = self.rewrite_fts(stmt, txn, &text)?;
        let scope = PlanScope {
            dml_target: None,
            current_db: self.db.clone(),
            embedder: Some(self.engine.embedder.clone()),
            stats: Some(self.engine.stats.clone()),
            handle_tables,
            search: Some(self.engine.search.clone()),
            cluster: self.engine.cluster.clone().map(|c| c as Arc<dyn crate::sql::infoschema::ClusterView>),
            index_hints: index_hints(stmt, self.db.as_deref()),
            visibility: self.catalog_visibility(),
            perf: (text.contains("performance_schema") || self.db.as_deref().is_some_and(|d| d.eq_ignore_ascii_case("performance_schema")))
                .then(|| Arc::new(self.perf_data())),
        };
        Ok((scope, view_headers))
    }

    /// The result columns of a query, from its logical plan (nothing runs): what a prepared
    /// statement reports at PREPARE. Unknown tables and columns fail here as they would on a run.
    pub(crate) async fn describe_query(&mut self, mut stmt: Statement, txn: Arc<Txn>) -> Result<SchemaRef> {
        let (scope, view_headers) = self.rewrite_query(&mut stmt, &txn)?;
        let plan = self.logical_plan(stmt, txn, scope).await?;
        Ok(crate::sql::view::restore_headers(qualified_schema(plan.schema()), &view_headers))
    }

    /// Plan an (already rewritten) statement with DataFusion and run it to completion.
    pub async fn plan_and_collect(
        &mut self,
        stmt: Statement,
        txn: Arc<Txn>,
        scope: PlanScope,
    ) -> Result<(datafusion::arrow::datatypes::SchemaRef, Vec<RecordBatch>)> {
        let (schema, plan, task) = self.plan_physical(stmt, txn, scope).await?;
        let batches = datafusion::physical_plan::collect(plan, task).await?;
        Ok((schema, batches))
    }

    /// Plan an (already rewritten) statement with DataFusion: its result schema (with each
    /// column's table alias), physical plan, and the task context to run it in.
    pub async fn plan_physical(
        &mut self,
        stmt: Statement,
        txn: Arc<Txn>,
        scope: PlanScope,
    ) -> Result<(SchemaRef, Arc<dyn ExecutionPlan>, Arc<TaskContext>)> {
        let plan = self.logical_plan(stmt, txn, scope).await?;
        let df = self.ctx.execute_logical_plan(plan).await?;
        let schema = qualified_schema(df.schema());
        let task = Arc::new(df.task_ctx());
        let plan = df.create_physical_plan().await?;
        Ok((schema, plan, task))
    }

    /// DataFusion's logical plan of an (already rewritten) statement over `txn`; unknown tables
    /// are MySQL's 1146/1049 rather than DataFusion's wording.
    async fn logical_plan(&mut self, stmt: Statement, txn: Arc<Txn>, scope: PlanScope) -> Result<datafusion::logical_expr::LogicalPlan> {
        let df_stmt = DFStatement::Statement(Box::new(stmt));
        self.check_tables(&df_stmt, &txn)?;
        self.ctx.register_catalog_list(Arc::new(TxnCatalogList::new(txn, scope)));
        let plan = self.ctx.state().statement_to_plan(df_stmt).await;
        // The plan holds the tables it needs. Left registered, the catalog would keep this
        // transaction's snapshot alive while the connection idles: redb could not reuse the
        // pages it pins, and a reopen after a disk-full error would wait for it.
        self.ctx.register_catalog_list(Arc::new(datafusion::catalog::MemoryCatalogProviderList::new()));
        Ok(plan?)
    }

    /// The tables a statement reads (those that exist).
    fn read_tables(&self, stmt: &Statement, txn: &Txn) -> Result<Vec<crate::sql::catalog::TableInfo>> {
        let df = DFStatement::Statement(Box::new(stmt.clone()));
        let (refs, _) = datafusion::sql::resolve::resolve_table_references(&df, true)?;
        let cat = Catalog::new(txn);
        let mut out = Vec::new();
        for r in refs {
            let db = match r.schema() {
                Some(s) => s.to_string(),
                None => match &self.db {
                    Some(d) => d.clone(),
                    None => continue,
                },
            };
            if let Some(t) = cat.table(&db, r.table())? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// `FTS_MATCH_WORD(q, col)` → an index lookup by row handle (`index::fulltext`). Returns the
    /// tables whose hidden row id must be exposed for it.
    fn rewrite_fts(&self, stmt: &mut Statement, txn: &Txn, text: &str) -> Result<Vec<(String, String)>> {
        if !text.contains("fts_match_word") {
            return Ok(Vec::new());
        }
        let tables = self.read_tables(stmt, txn)?;
        crate::index::fulltext::rewrite_match(stmt, &tables)
    }

    /// `VEC_EMBED_<METRIC>(col, 'query')` → `VEC_<METRIC>(col, '<embedding of query>')`: the column
    /// must be a generated `EMBED_TEXT(model, …, options)` column of a table the statement reads;
    /// the query text is embedded once, here, with that model and the options' `@search` variants.
    ///
    /// On a chunked column (`embed::chunk`: one vector per chunk of the text) every distance,
    /// `VEC_EMBED_…` or plain `VEC_…(col, v)`, becomes its `VEC_CHUNKS_…` twin: the row's best
    /// chunk decides.
    fn rewrite_vec_embed(&mut self, stmt: &mut Statement, txn: &Txn, text: &str) -> Result<()> {
        use datafusion::sql::sqlparser::ast::{Expr, Value};
        use embedb_vector::VectorFunction as F;
        use std::ops::ControlFlow;
        const FUNCS: &[(&str, F)] = &[
            ("vec_embed_cosine_distance", F::CosineDistance),
            ("vec_embed_l2_distance", F::L2Distance),
            ("vec_embed_l1_distance", F::L1Distance),
            ("vec_embed_negative_inner_product", F::NegativeInnerProduct),
        ];
        if !text.contains("vec_") {
            return Ok(());
        }
        // The embedding columns of every table the statement reads: (name, call, chunked).
        let mut columns: Vec<(String, crate::sql::ddl::EmbedCall, bool)> = Vec::new();
        for t in self.read_tables(stmt, txn)? {
            for c in &t.columns {
                if let Some(call) = c.generated.as_ref().and_then(|g| crate::sql::ddl::EmbedCall::parse(&g.expr)) {
                    let chunked = call.chunked();
                    columns.push((c.key(), call, chunked));
                }
            }
        }
        if !text.contains("vec_embed_") && !columns.iter().any(|c| c.2) {
            return Ok(());
        }
        let column_of = |e: &Expr| match e {
            Expr::Identifier(i) => Some(i.value.to_lowercase()),
            Expr::CompoundIdentifier(ids) => ids.last().map(|i| i.value.to_lowercase()),
            _ => None,
        };
        let chunked = |e: &Expr| column_of(e).is_some_and(|c| columns.iter().any(|(n, _, ch)| *ch && *n == c));
        let embedder = self.engine.embedder.clone();
        let interrupt = self.interrupt.clone();
        let mut err: Option<SqlError> = None;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(stmt, |e| {
            let Expr::Function(f) = e else { return ControlFlow::Continue(()) };
            let name = f.name.to_string().to_ascii_lowercase();
            let args: Vec<Expr> = rewrite::plain_args(f).into_iter().cloned().collect();
            // A plain distance with a chunked column on either side: its chunks twin (column first).
            if let Some(&plain) = F::DISTANCES.iter().find(|d| d.name() == name) {
                if args.len() == 2 {
                    let swap = !chunked(&args[0]) && chunked(&args[1]);
                    if chunked(&args[0]) || swap {
                        let (a, b) = if swap { (args[1].clone(), args[0].clone()) } else { (args[0].clone(), args[1].clone()) };
                        *e = rewrite::call(plain.chunks_name().unwrap_or(plain.name()), vec![a, b]);
                    }
                }
                return ControlFlow::Continue(());
            }
            let best_chunk = name == "vec_embed_best_chunk";
            let Some(&(_, plain)) = FUNCS.iter().find(|(n, _)| *n == name).or(best_chunk.then_some(&FUNCS[0])) else {
                return ControlFlow::Continue(());
            };
            if args.len() != 2 {
                err = Some(SqlError::param_count(&name));
                return ControlFlow::Break(());
            }
            let col = column_of(&args[0]);
            let Some((_, call, is_chunked)) = col.as_ref().and_then(|c| columns.iter().find(|(n, _, _)| n == c)) else {
                err = Some(SqlError::other(format!(
                    "{}() first argument must be a vector embedding column generated by EMBED_TEXT(), got {}",
                    name.to_ascii_uppercase(),
                    args[0]
                )));
                return ControlFlow::Break(());
            };
            let (model, opts) = (&call.model, call.options.as_deref().unwrap_or_default());
            let search = match crate::embed::parse_options(Some(opts)) {
                Ok(m) => crate::embed::options_for_search(&m),
                Err(x) => {
                    err = Some(x);
                    return ControlFlow::Break(());
                }
            };
            let query_vec = match &args[1] {
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                        let r = crate::interrupt::blocking(|| embedder.embed(model, &[Some(s.as_str())], &search, &interrupt));
                        match r {
                            Ok(mut v) => v.pop().flatten().map(|v| Expr::value(Value::SingleQuotedString(embedb_vector::format_vector(&v)))),
                            Err(x) => {
                                err = Some(x);
                                return ControlFlow::Break(());
                            }
                        }
                    }
                    Value::Null => Some(Expr::value(Value::Null)),
                    _ => None,
                },
                _ => None,
            };
            // A non-literal query text is embedded by EMBED_TEXT at run time instead.
            let q = query_vec.unwrap_or_else(|| {
                rewrite::call(
                    "embed_text",
                    vec![
                        Expr::value(Value::SingleQuotedString(model.clone())),
                        args[1].clone(),
                        Expr::value(Value::SingleQuotedString(serde_json::Value::Object(search.clone()).to_string())),
                    ],
                )
            });
            if best_chunk {
                // The column's source text, qualified as the column is.
                let mut source = call.text.clone();
                if let Expr::CompoundIdentifier(ids) = &args[0] {
                    let qualifier = ids[..ids.len() - 1].to_vec();
                    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut source, |x| {
                        if let Expr::Identifier(i) = x {
                            *x = Expr::CompoundIdentifier(qualifier.iter().cloned().chain(std::iter::once(i.clone())).collect());
                        }
                        ControlFlow::<()>::Continue(())
                    });
                }
                if !*is_chunked {
                    *e = source; // one vector for the whole text: the text is its only chunk
                    return ControlFlow::Continue(());
                }
                let text = |s: &str| Expr::value(Value::SingleQuotedString(s.to_string()));
                *e = rewrite::call("embed_best_chunk", vec![source, args[0].clone(), q, text(model), text(opts)]);
                return ControlFlow::Continue(());
            }
            let func = if *is_chunked { plain.chunks_name().unwrap_or(plain.name()) } else { plain.name() };
            *e = rewrite::call(func, vec![args[0].clone(), q]);
            ControlFlow::Continue(())
        });
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A vector search (`VEC_…_DISTANCE(col, …)`, `VEC_EMBED_…` already rewritten to it) on an
    /// async embedding column leaves out the rows still waiting for their vector
    /// ([`skip_unembedded`]) and says how many in a warning. Returns whether it did (such a plan
    /// is not cached: a repeat would not warn).
    fn guard_async_searches(&mut self, stmt: &mut Statement, txn: &Txn, text: &str) -> Result<bool> {
        if !text.contains("vec_") {
            return Ok(false);
        }
        let mut queued: Vec<(String, i64, u32, String, String)> = Vec::new();
        for t in self.read_tables(stmt, txn)? {
            for (pos, id) in t.async_embed_columns() {
                queued.push((t.columns[pos].key(), t.id, id, t.name.clone(), t.columns[pos].name.clone()));
            }
        }
        let mut guarded = false;
        for (key, table_id, column_id, table, column) in &queued {
            if !skip_unembedded(stmt, table, key) {
                continue; // not searched by (at most a distance computed)
            }
            guarded = true;
            let c = crate::embed::backlog::counts(txn, *table_id, *column_id)?;
            if c.pending + c.failed > 0 {
                self.warn(
                    1105,
                    format!(
                        "{} row(s) of `{table}`.`{column}` have no embedding yet ({} pending, {} failed; async mode) and are not in this search",
                        c.pending + c.failed,
                        c.pending,
                        c.failed
                    ),
                );
            }
        }
        Ok(guarded)
    }

    /// Every table a statement names must exist — checked here so the error is MySQL's.
    pub(crate) fn check_tables(&self, stmt: &DFStatement, txn: &Txn) -> Result<()> {
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
            if db.eq_ignore_ascii_case("mysql") {
                if crate::sql::mysql_schema::has_table(&table) {
                    continue;
                }
                return Err(SqlError::no_such_table(&db, &table));
            }
            if db.eq_ignore_ascii_case("performance_schema") {
                if crate::sql::perf_schema::has_table(&table) {
                    continue;
                }
                return Err(SqlError::no_such_table(&db, &table));
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

/// The `USE/FORCE/IGNORE INDEX` hints of every table reference, by `(db, table)`.
fn index_hints(stmt: &Statement, current_db: Option<&str>) -> Vec<((String, String), crate::storage::access::IndexHints)> {
    use datafusion::sql::sqlparser::ast::{TableFactor, Visit, Visitor};
    use std::ops::ControlFlow;
    struct Hints<'a>(Option<&'a str>, Vec<((String, String), crate::storage::access::IndexHints)>);
    impl Visitor for Hints<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, index_hints, .. } = t {
                if !index_hints.is_empty() {
                    let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident()).map(|i| i.value.to_lowercase()).collect();
                    let key = match parts.as_slice() {
                        [t] => self.0.map(|d| (d.to_lowercase(), t.clone())),
                        [d, t] => Some((d.clone(), t.clone())),
                        _ => None,
                    };
                    if let Some(key) = key {
                        self.1.push((key, crate::storage::access::IndexHints::of(index_hints)));
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = Hints(current_db, Vec::new());
    let _ = stmt.visit(&mut v);
    v.1
}

/// A plan's output schema, each column keeping its table alias (the DataFusion qualifier) for
/// the wire's column definitions.
fn qualified_schema(schema: &datafusion::common::DFSchema) -> SchemaRef {
    let fields: Vec<datafusion::arrow::datatypes::Field> = schema
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
    Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
}

/// A search on an async embedding column leaves out the rows still waiting for their vector: each
/// single-table SELECT of `table` that orders by a distance on `column` (directly or through an
/// alias) gets `AND column IS NOT NULL` (a NULL distance would sort first). The vector index
/// serves that condition from the graph alone (`index::ann`: the graph holds exactly the rows
/// with a vector). A SELECT that only computes a distance keeps its rows (and their NULLs).
fn skip_unembedded(stmt: &mut Statement, table: &str, column: &str) -> bool {
    use datafusion::sql::sqlparser::ast::{Expr, Ident, OrderByKind, SelectItem, SetExpr, TableFactor};
    use std::ops::ControlFlow;
    let mentions_distance = |e: &Expr| {
        let mut found = false;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |x| {
            if let Expr::Function(f) = x {
                let name = f.name.to_string().to_ascii_lowercase();
                let on_column = match rewrite::plain_args(f).first() {
                    Some(Expr::Identifier(i)) => i.value.eq_ignore_ascii_case(column),
                    Some(Expr::CompoundIdentifier(ids)) => ids.last().is_some_and(|i| i.value.eq_ignore_ascii_case(column)),
                    _ => false,
                };
                if on_column && name.starts_with("vec_") && (name.ends_with("_distance") || name.ends_with("_product")) {
                    found = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        found
    };
    fn query(q: &mut datafusion::sql::sqlparser::ast::Query, table: &str, column: &str, mentions: &dyn Fn(&Expr) -> bool) -> bool {
        let order: Vec<Expr> = match q.order_by.as_ref().map(|o| &o.kind) {
            Some(OrderByKind::Expressions(list)) => list.iter().map(|o| o.expr.clone()).collect(),
            _ => Vec::new(),
        };
        body(&mut q.body, &order, table, column, mentions)
    }
    fn body(b: &mut SetExpr, order: &[Expr], table: &str, column: &str, mentions: &dyn Fn(&Expr) -> bool) -> bool {
        match b {
            SetExpr::Select(s) => {
                let mut guarded = false;
                for t in &mut s.from {
                    for f in std::iter::once(&mut t.relation).chain(t.joins.iter_mut().map(|j| &mut j.relation)) {
                        if let TableFactor::Derived { subquery, .. } = f {
                            guarded |= query(subquery, table, column, mentions);
                        }
                    }
                }
                let single = s.from.len() == 1 && s.from[0].joins.is_empty();
                let names_table = single
                    && matches!(&s.from[0].relation, TableFactor::Table { name, .. }
                        if name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| i.value.eq_ignore_ascii_case(table)));
                let aliased = |name: &str| {
                    s.projection.iter().any(|item| matches!(item, SelectItem::ExprWithAlias { expr, alias } if alias.value.eq_ignore_ascii_case(name) && mentions(expr)))
                };
                let searches = order.iter().any(|o| {
                    mentions(o) || matches!(o, Expr::Identifier(i) if aliased(&i.value))
                });
                if names_table && searches {
                    let not_null = Expr::IsNotNull(Box::new(Expr::Identifier(Ident::with_quote('`', column))));
                    s.selection = Some(match s.selection.take() {
                        Some(w) => Expr::BinaryOp { left: Box::new(Expr::Nested(Box::new(w))), op: datafusion::sql::sqlparser::ast::BinaryOperator::And, right: Box::new(not_null) },
                        None => not_null,
                    });
                    guarded = true;
                }
                guarded
            }
            SetExpr::Query(q) => query(q, table, column, mentions),
            SetExpr::SetOperation { left, right, .. } => {
                let l = body(left, order, table, column, mentions);
                body(right, order, table, column, mentions) | l
            }
            _ => false,
        }
    }
    match stmt {
        Statement::Query(q) => query(q, table, column, &mentions_distance),
        Statement::Explain { statement, .. } => skip_unembedded(statement, table, column),
        _ => false,
    }
}
