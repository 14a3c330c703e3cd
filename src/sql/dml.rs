//! Writes: INSERT (VALUES, SELECT, IGNORE, ON DUPLICATE KEY UPDATE), REPLACE, UPDATE and DELETE.
//!
//! `INSERT INTO t (id, content) VALUES (1, 'a'), (2, 'b')` walks like this:
//! 1. the source rows are evaluated — literals directly, anything else through DataFusion — into
//!    `ScalarValue`s, and coerced into the declared column types (`types::coerce`, MySQL's errors);
//! 2. omitted columns get their DEFAULT, AUTO_INCREMENT columns ids from the table's allocator;
//! 3. generated columns are computed for the whole batch of rows at once (`fill_generated`) — one
//!    DataFusion evaluation per statement, not per row, which is what lets an embedding column send
//!    its texts to a model in batches;
//! 4. each row is checked against the primary key and unique indexes and written with its index
//!    entries into the statement's transaction.
//!
//! Any error aborts the statement, and the session rolls the transaction back to the statement's
//! savepoint: a failed INSERT leaves no partial rows.
//!
//! UPDATE and DELETE let DataFusion find the target rows: they plan
//! `SELECT _tidb_rowid, <new values> FROM t WHERE … ORDER BY … LIMIT …` over a table provider that
//! exposes the hidden handle column, then change those rows by handle.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser::ast::{self, Expr, SetExpr, Statement, Value};
use embedb_storage::codec::Datum;
use embedb_storage::Txn;

use crate::error::{Result, SqlError};
use crate::session::{Output, Session};
use crate::sql::catalog::{Catalog, ColumnInfo, TableInfo};
use crate::sql::context::PlanScope;
use crate::sql::ddl::EmbedCall;
use crate::sql::types::{self, coerce, coerce_chunks, Target};
use crate::sql::{foreign_key, parser, rewrite};
use crate::storage::table::{self, Row, HANDLE_COLUMN};

/// One value of a source row: an evaluated value, or the DEFAULT keyword.
#[derive(Clone, Debug)]
enum Source {
    Value(ScalarValue),
    Default,
}

impl Session {
    pub async fn dml(&mut self, mut stmt: Statement, txn: Arc<Txn>) -> Result<Output> {
        // Views the statement reads (not the table it writes) become their SELECTs.
        crate::sql::view::expand_sources(&mut stmt, self.db.as_deref(), &crate::sql::catalog::Catalog::new(&txn))?;
        match stmt {
            Statement::Insert(ins) => self.insert(&ins, txn).await,
            Statement::Update(up) => self.update(up, txn).await,
            Statement::Delete(del) => self.delete(del, txn).await,
            _ => Err(SqlError::other("not a DML statement")),
        }
    }

    /// A DML statement that the caller keeps (to run it again after a write conflict): an INSERT
    /// of VALUES is run from the reference (a 1000-row statement is not copied); anything else
    /// from a copy, as `dml` needs one.
    pub async fn dml_ref(&mut self, stmt: &Statement, txn: Arc<Txn>) -> Result<Output> {
        if let Statement::Insert(ins) = stmt {
            let plain_values = ins.source.as_ref().is_some_and(|q| {
                q.with.is_none() && matches!(q.body.as_ref(), SetExpr::Values(v) if v.rows.iter().all(|r| r.content.iter().all(|e| lit_of(e).is_some())))
            });
            if plain_values && ins.assignments.is_empty() {
                return self.insert(ins, txn).await;
            }
        }
        self.dml(stmt.clone(), txn).await
    }

    // ---- INSERT / REPLACE --------------------------------------------------------------------

    async fn insert(&mut self, ins: &ast::Insert, txn: Arc<Txn>) -> Result<Output> {
        let name = match &ins.table {
            ast::TableObject::TableName(n) => n.clone(),
            other => return Err(SqlError::unsupported(format!("INSERT INTO {other}"))),
        };
        let (db, tname) = self.resolve_name(&name)?;
        let info = Catalog::new(&txn).must_table(&db, &tname)?;

        // Which columns the source values go to.
        let mut targets: Vec<usize> = Vec::new();
        let source_rows: Vec<Vec<Source>>;
        if !ins.assignments.is_empty() {
            // INSERT … SET a = 1, b = 2
            let mut row = Vec::new();
            for a in &ins.assignments {
                let col = assignment_column(&a.target)?;
                targets.push(info.column_index(&col).ok_or_else(|| SqlError::unknown_column(&col, "field list"))?);
                row.push(a.value.clone());
            }
            source_rows = vec![self.eval_row(&row).await?];
        } else {
            for c in &ins.columns {
                let n = c.0.last().map(|p| p.to_string()).unwrap_or_default();
                let n = n.trim_matches('`').to_string();
                targets.push(info.column_index(&n).ok_or_else(|| SqlError::unknown_column(&n, "field list"))?);
            }
            let source = ins.source.as_ref().ok_or_else(|| SqlError::syntax("near INSERT: missing VALUES"))?;
            source_rows = match source.body.as_ref() {
                SetExpr::Values(v) if source.with.is_none() => {
                    let mut rows = Vec::with_capacity(v.rows.len());
                    for r in &v.rows {
                        rows.push(self.eval_row(&r.content).await?);
                    }
                    rows
                }
                _ => self.eval_query_rows(Statement::Query(source.clone()), txn.clone()).await?,
            };
            if targets.is_empty() {
                let width = source_rows.first().map(|r| r.len()).unwrap_or(0);
                let all: Vec<usize> = (0..info.columns.len()).collect();
                let stored: Vec<usize> = (0..info.columns.len()).filter(|&i| info.columns[i].generated.is_none()).collect();
                targets = if width == all.len() { all } else { stored };
            }
        }
        for (i, r) in source_rows.iter().enumerate() {
            if r.len() != targets.len() {
                return Err(SqlError::wrong_value_count(i + 1));
            }
        }
        // Values given for generated columns: refused in strict mode (TiDB's default, 3105). Without
        // it — as every mysqldump file runs — a restore keeps the dumped embedding of an
        // auto-embedding column (re-embedding would call the provider again and might not give
        // the same vector back), and any other generated value is recomputed, both with 1906.
        let mut kept: HashSet<usize> = HashSet::new();
        let mut source_rows = source_rows;
        for (k, &t) in targets.iter().enumerate() {
            let c = &info.columns[t];
            let Some(g) = &c.generated else { continue };
            if source_rows.iter().all(|r| matches!(r[k], Source::Default)) {
                continue;
            }
            if self.strict_mode() {
                return Err(SqlError::new(
                    3105,
                    "HY000",
                    format!("The value specified for generated column '{}' in table '{}' is not allowed.", c.name, info.name),
                ));
            }
            if crate::sql::ddl::embed_text_call(&g.expr).is_some() && source_rows.iter().all(|r| !matches!(r[k], Source::Default)) {
                kept.insert(t);
                self.warn(1906, format!("The value specified for generated column '{}' in table '{}' has been kept as given (a restore)", c.name, info.name));
            } else {
                for r in source_rows.iter_mut() {
                    r[k] = Source::Default;
                }
                self.warn(1906, format!("The value specified for generated column '{}' in table '{}' has been ignored", c.name, info.name));
            }
        }

        // Build full rows in column order.
        let mut rows: Vec<Row> = Vec::with_capacity(source_rows.len());
        let mut explicit_auto: Vec<bool> = Vec::with_capacity(source_rows.len());
        let auto_col = info.auto_increment_column();
        for (ri, src) in source_rows.into_iter().enumerate() {
            let mut values = vec![Datum::Null; info.columns.len()];
            let mut given = vec![false; info.columns.len()];
            for (k, &ci) in targets.iter().enumerate() {
                let c = &info.columns[ci];
                values[ci] = match &src[k] {
                    Source::Default if c.generated.is_some() => Datum::Null,
                    Source::Default => self.column_default_value(c).await?,
                    Source::Value(v) if ins.ignore => {
                        let (d, warning) = types::coerce_lenient(v, &c.ty, &Target { column: &c.name, row: ri + 1 })?;
                        if let Some(w) = warning {
                            self.warn(w.code, w.message);
                        }
                        d
                    }
                    Source::Value(v) => coerce(v, &c.ty, &Target { column: &c.name, row: ri + 1 })?,
                };
                given[ci] = true;
            }
            for (ci, c) in info.columns.iter().enumerate() {
                if !given[ci] && c.generated.is_none() {
                    if c.default.is_none() && !c.nullable && !c.auto_increment {
                        return Err(SqlError::new(1364, "HY000", format!("Field '{}' doesn't have a default value", c.name)));
                    }
                    values[ci] = self.column_default_value(c).await?;
                }
            }
            let explicit = auto_col.is_some_and(|a| match &values[a] {
                Datum::Null => false,
                Datum::Int(0) | Datum::UInt(0) => false,
                _ => true,
            });
            explicit_auto.push(explicit);
            rows.push(Row { handle: 0, values });
        }

        // AUTO_INCREMENT values and row handles come from one allocator per table (as in TiDB).
        let mut first_auto_id: Option<u64> = None;
        // The OK packet reports an explicit AUTO_INCREMENT value when none was generated (clients
        // such as Django set the new object's key from it); LAST_INSERT_ID() does not change.
        let mut last_explicit: Option<u64> = None;
        if let Some(a) = auto_col {
            let need = explicit_auto.iter().filter(|e| !**e).count() as u64;
            let mut next = if need > 0 { self.engine.store.alloc_ids(&info.id_counter(), need)? } else { 0 };
            let mut max_explicit: i128 = 0;
            for (r, explicit) in rows.iter_mut().zip(&explicit_auto) {
                if *explicit {
                    let v = match r.values[a] {
                        Datum::Int(i) => i as i128,
                        Datum::UInt(u) => u as i128,
                        Datum::Float(f) => f as i128,
                        _ => 0,
                    };
                    max_explicit = max_explicit.max(v);
                    last_explicit = u64::try_from(v).ok();
                } else {
                    first_auto_id.get_or_insert(next);
                    r.values[a] = types::coerce(&ScalarValue::UInt64(Some(next)), &info.columns[a].ty, &Target { column: &info.columns[a].name, row: 1 })?;
                    next += 1;
                }
            }
            if max_explicit > 0 {
                self.engine.store.counter_rebase(&info.id_counter(), max_explicit as u64)?;
            }
        }
        let texts = self.fill_generated_except(&info, &mut rows, None, &kept).await?;
        self.queued_embeddings |= !texts.is_empty();
        assign_handles(self, &info, &mut rows)?;
        for (i, r) in rows.iter_mut().enumerate() {
            if ins.ignore {
                // IGNORE stores the type's zero for NULL in a NOT NULL column, with a warning.
                for (c, v) in info.columns.iter().zip(r.values.iter_mut()) {
                    if !c.nullable && matches!(v, Datum::Null) {
                        *v = types::zero_value(&c.ty);
                        self.warnings.push(crate::session::Warning { level: "Warning", code: 1048, message: format!("Column '{}' cannot be null", c.name) });
                    }
                }
            }
            check_not_null(&info, r, i + 1)?;
        }

        // Write, resolving key conflicts as the statement asks.
        let replace = ins.replace_into;
        let ignore = ins.ignore;
        let odku = match &ins.on {
            Some(ast::OnInsert::DuplicateKeyUpdate(a)) => Some(a.clone()),
            _ => None,
        };
        let mut affected = 0u64;
        let fk_checks = self.foreign_key_checks();
        // The keys referencing this table matter when REPLACE deletes rows or ON DUPLICATE KEY
        // UPDATE changes them.
        let fk = if fk_checks { foreign_key::Keys::of(&txn, &info, replace || odku.is_some())? } else { foreign_key::Keys::off() };
        for (ri, row) in rows.iter().enumerate() {
            fk.check_child_row(&txn, &info, row)?;
            loop {
                let Some((h, key, shown)) = table::find_conflict(&txn, &info, row)? else {
                    table::insert_row(&txn, &info, row)?;
                    texts.queue(&txn, &info, ri, row.handle);
                    affected += 1;
                    break;
                };
                if replace {
                    let old = table::get_row(&txn, &info, h)?.ok_or_else(|| SqlError::other("index points to a missing row"))?;
                    // REPLACE deletes the old row: its children see a delete.
                    foreign_key::on_parent_delete(&txn, &info, &fk.referencing, &old, 0)?;
                    table::remove_row(&txn, &info, &old)?;
                    affected += 1;
                    continue;
                }
                if let Some(assignments) = &odku {
                    let old = table::get_row(&txn, &info, h)?.ok_or_else(|| SqlError::other("index points to a missing row"))?;
                    let changed = self.on_duplicate_update(&txn, &info, &fk, &old, row, assignments).await?;
                    affected += if changed { 2 } else { 0 };
                    break;
                }
                if ignore {
                    self.warn(1062, format!("Duplicate entry '{shown}' for key '{}.{key}'", info.name));
                    break;
                }
                return Err(SqlError::dup_entry(&shown, &format!("{}.{key}", info.name)));
            }
        }
        if let Some(id) = first_auto_id {
            self.last_insert_id = id;
        }
        self.last_row_count = affected as i64;
        let info_text = if rows.len() > 1 {
            format!("Records: {}  Duplicates: {}  Warnings: {}", rows.len(), rows.len() as u64 - affected.min(rows.len() as u64), self.warnings.len())
        } else {
            String::new()
        };
        Ok(Output::Ok { affected, last_insert_id: first_auto_id.or(last_explicit).unwrap_or(0), info: info_text })
    }

    /// ON DUPLICATE KEY UPDATE for one conflicting row. Returns whether the row changed.
    async fn on_duplicate_update(
        &mut self,
        txn: &Txn,
        info: &TableInfo,
        fk: &foreign_key::Keys,
        old: &Row,
        new: &Row,
        assignments: &[ast::Assignment],
    ) -> Result<bool> {
        // Evaluate each assignment over the old row, with VALUES(col) reading the proposed row.
        let mut exprs = Vec::new();
        let mut cols = Vec::new();
        for a in assignments {
            let col = assignment_column(&a.target)?;
            cols.push(info.column_index(&col).ok_or_else(|| SqlError::unknown_column(&col, "field list"))?);
            let mut e = a.value.clone();
            let _ = ast::visit_expressions_mut(&mut e, |x| {
                if let Expr::Function(f) = x {
                    if f.name.to_string().eq_ignore_ascii_case("values") {
                        if let ast::FunctionArguments::List(l) = &f.args {
                            if let Some(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(Expr::Identifier(id)))) = l.args.first() {
                                *x = Expr::Identifier(ast::Ident::new(format!("__new_{}", id.value.to_lowercase())));
                            }
                        }
                    }
                }
                ControlFlow::<()>::Continue(())
            });
            exprs.push(e);
        }
        let vals = eval_over_rows(info, &[old.values.clone()], Some(&new.values), exprs, self).await?;
        let mut updated = old.clone();
        for (k, &ci) in cols.iter().enumerate() {
            let c = &info.columns[ci];
            updated.values[ci] = coerce(&vals[k][0], &c.ty, &Target { column: &c.name, row: 1 })?;
        }
        let changed_cols: HashSet<usize> = cols.iter().copied().collect();
        let stamp = self.on_update_stamp(info, &changed_cols).await?;
        self.write_updated_row(txn, info, fk, old, updated, &changed_cols, &stamp).await
    }

    /// The values an UPDATE gives the `ON UPDATE CURRENT_TIMESTAMP` columns it does not set, once
    /// per statement (every row of one statement gets one time, as in MySQL).
    async fn on_update_stamp(&mut self, info: &TableInfo, set: &HashSet<usize>) -> Result<Vec<(usize, Datum)>> {
        let mut out = Vec::new();
        for (ci, c) in info.columns.iter().enumerate() {
            if !c.on_update_current_timestamp || set.contains(&ci) {
                continue;
            }
            let now = crate::sql::show::on_update_text(c);
            let v = match self.eval_row(&[parse_expr(&now)?]).await?.pop() {
                Some(Source::Value(v)) => coerce(&v, &c.ty, &Target { column: &c.name, row: 1 })?,
                _ => Datum::Null,
            };
            out.push((ci, v));
        }
        Ok(out)
    }

    /// Apply an updated image of a row: recompute generated columns that depend on changed columns,
    /// move the row if its handle changed, keep unique keys unique and foreign keys satisfied.
    /// Returns whether anything changed.
    async fn write_updated_row(
        &mut self,
        txn: &Txn,
        info: &TableInfo,
        fk: &foreign_key::Keys,
        old: &Row,
        mut updated: Row,
        changed_cols: &HashSet<usize>,
        stamp: &[(usize, Datum)],
    ) -> Result<bool> {
        let mut rows = vec![updated.clone()];
        let texts = self.fill_generated(info, &mut rows, Some(changed_cols)).await?;
        self.queued_embeddings |= !texts.is_empty();
        updated = rows.pop().unwrap();
        if let Some(pk) = &info.pk_handle {
            let i = info.column_index(pk).unwrap();
            updated.handle = match updated.values[i] {
                Datum::Int(h) => h,
                Datum::UInt(u) => u as i64,
                _ => return Err(SqlError::bad_null(&info.columns[i].name)),
            };
        }
        check_not_null(info, &updated, 1)?;
        if updated.values == old.values {
            return Ok(false);
        }
        // A row that changes takes the statement's time in its ON UPDATE CURRENT_TIMESTAMP columns.
        for (ci, v) in stamp {
            updated.values[*ci] = v.clone();
        }
        fk.check_child_row(txn, info, &updated)?;
        foreign_key::on_parent_update(txn, info, &fk.referencing, old, &updated)?;
        table::delete_row(txn, info, old)?;
        if let Some((_, key, shown)) = table::find_conflict(txn, info, &updated)? {
            return Err(SqlError::dup_entry(&shown, &format!("{}.{key}", info.name)));
        }
        table::put_row(txn, info, &updated)?;
        if updated.handle != old.handle {
            let queued: Vec<u32> = info.queued_column_ids();
            crate::embed::backlog::move_row(txn, info.id, &queued, old.handle, updated.handle)?;
        }
        texts.queue(txn, info, 0, updated.handle);
        Ok(true)
    }

    /// Evaluate one VALUES row: literals directly, the rest through DataFusion in one query.
    async fn eval_row(&mut self, exprs: &[Expr]) -> Result<Vec<Source>> {
        let mut out: Vec<Option<Source>> = Vec::with_capacity(exprs.len());
        let mut pending: Vec<(usize, &Expr)> = Vec::new();
        for (i, e) in exprs.iter().enumerate() {
            match literal(e) {
                Some(s) => out.push(Some(s)),
                None => {
                    out.push(None);
                    pending.push((i, e));
                }
            }
        }
        if !pending.is_empty() {
            let items: Vec<String> = pending.iter().enumerate().map(|(k, (_, e))| format!("{e} AS `c{k}`")).collect();
            let sql = format!("SELECT {}", items.join(", "));
            let mut stmt = parser::parse_one(&sql)?;
            rewrite::rewrite_statement(&mut stmt, self)?;
            let txn = Arc::new(self.engine.store.begin()?);
            let (_, batches) = self.plan_and_collect(stmt, txn.clone(), PlanScope::default()).await?;
            txn.rollback();
            let b = batches.iter().find(|b| b.num_rows() > 0).ok_or_else(|| SqlError::other("empty evaluation"))?;
            for (k, (i, _)) in pending.iter().enumerate() {
                out[*i] = Some(Source::Value(types::scalar_at(b.column(k), 0)?));
            }
        }
        Ok(out.into_iter().map(|s| s.unwrap()).collect())
    }

    /// INSERT … SELECT: run the query in the statement's transaction and take its rows.
    async fn eval_query_rows(&mut self, mut stmt: Statement, txn: Arc<Txn>) -> Result<Vec<Vec<Source>>> {
        rewrite::rewrite_statement(&mut stmt, self)?;
        let scope = PlanScope { dml_target: None, current_db: self.db.clone(), embedder: Some(self.engine.embedder.clone()), ..Default::default() };
        let (_, batches) = self.plan_and_collect(stmt, txn, scope).await?;
        let mut rows = Vec::new();
        for b in &batches {
            for r in 0..b.num_rows() {
                let mut row = Vec::with_capacity(b.num_columns());
                for c in b.columns() {
                    row.push(Source::Value(types::scalar_at(c, r)?));
                }
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// A column's DEFAULT (evaluated now: `CURRENT_TIMESTAMP` is the statement's time).
    pub async fn column_default_value(&mut self, c: &ColumnInfo) -> Result<Datum> {
        let Some(d) = &c.default else { return Ok(Datum::Null) };
        let expr = parse_expr(d)?;
        let src = match literal(&expr) {
            Some(s) => s,
            None => self.eval_row(std::slice::from_ref(&expr)).await?.pop().unwrap(),
        };
        match src {
            Source::Value(v) => coerce(&v, &c.ty, &Target { column: &c.name, row: 1 }),
            Source::Default => Ok(Datum::Null),
        }
    }

    /// Compute generated columns for a batch of rows in one evaluation per column. With
    /// `changed`, only columns whose expression reads a changed column are recomputed (UPDATE).
    /// An async embedding column is left NULL and its text returned, to be queued once the row's
    /// handle is final ([`queue_texts`]).
    pub async fn fill_generated(&mut self, info: &TableInfo, rows: &mut [Row], changed: Option<&HashSet<usize>>) -> Result<QueuedTexts> {
        self.fill_generated_except(info, rows, changed, &HashSet::new()).await
    }

    /// `fill_generated`, leaving the columns in `kept` as they are (values a restore gave).
    async fn fill_generated_except(&mut self, info: &TableInfo, rows: &mut [Row], changed: Option<&HashSet<usize>>, kept: &HashSet<usize>) -> Result<QueuedTexts> {
        if rows.is_empty() {
            return Ok(QueuedTexts::default());
        }
        let mut gen_cols = Vec::new();
        let mut exprs = Vec::new();
        for (ci, c) in info.columns.iter().enumerate() {
            let Some(g) = &c.generated else { continue };
            if kept.contains(&ci) {
                continue;
            }
            let mut e = parse_expr(&g.expr)?;
            if let Some(changed) = changed {
                let refs = referenced_columns(&e);
                let depends = info.columns.iter().enumerate().any(|(i, col)| changed.contains(&i) && refs.contains(&col.key()));
                if !depends {
                    continue;
                }
            }
            // Async: evaluate the text argument, not the call.
            let queued = crate::sql::ddl::embed_mode(&g.expr) == crate::embed::Mode::Async;
            if queued {
                if let Some(call) = EmbedCall::of(&e) {
                    e = call.text;
                }
            }
            gen_cols.push((ci, queued));
            exprs.push(e);
        }
        // A model change under way: the new expression's text goes to the backlog under the
        // shadow id (the column itself keeps its old model's vectors until the switch).
        let mut shadow = None;
        if let Some(m) = &info.model_change {
            if let Some(text) = m.column.generated.as_ref().map(|g| parse_expr(&g.expr)).transpose()?.as_ref().and_then(EmbedCall::of).map(|c| c.text) {
                let depends = changed.is_none_or(|changed| {
                    let refs = referenced_columns(&text);
                    info.columns.iter().enumerate().any(|(i, col)| changed.contains(&i) && refs.contains(&col.key()))
                });
                if depends {
                    shadow = Some((m.shadow_id, exprs.len()));
                    exprs.push(text);
                }
            }
        }
        if exprs.is_empty() {
            return Ok(QueuedTexts::default());
        }
        let images: Vec<Vec<Datum>> = rows.iter().map(|r| r.values.clone()).collect();
        let vals = eval_over_rows(info, &images, None, exprs, self).await?;
        let mut texts = QueuedTexts::default();
        if shadow.is_some() || gen_cols.iter().any(|(_, queued)| *queued) {
            texts.0.resize_with(rows.len(), Vec::new);
        }
        if let Some((shadow_id, k)) = shadow {
            for ri in 0..rows.len() {
                texts.0[ri].push((shadow_id, text_argument(&vals[k][ri])?));
            }
        }
        for (k, &(ci, queued)) in gen_cols.iter().enumerate() {
            let c = &info.columns[ci];
            let chunked = c.is_chunked();
            for (ri, r) in rows.iter_mut().enumerate() {
                if queued {
                    r.values[ci] = Datum::Null;
                    texts.0[ri].push((c.id, text_argument(&vals[k][ri])?));
                } else if chunked {
                    r.values[ci] = coerce_chunks(&vals[k][ri], &c.ty, &Target { column: &c.name, row: ri + 1 })?;
                } else {
                    r.values[ci] = coerce(&vals[k][ri], &c.ty, &Target { column: &c.name, row: ri + 1 })?;
                }
            }
        }
        Ok(texts)
    }

    /// The text argument of the `EMBED_TEXT` call `generated` for each of `rows` (a model
    /// change's backfill, `embed::model_change`).
    pub(crate) async fn embed_texts_of(&mut self, info: &TableInfo, rows: &[Row], generated: &str) -> Result<Vec<Option<String>>> {
        let text = EmbedCall::of(&parse_expr(generated)?).ok_or_else(|| SqlError::other("not an EMBED_TEXT column"))?.text;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let images: Vec<Vec<Datum>> = rows.iter().map(|r| r.values.clone()).collect();
        let vals = eval_over_rows(info, &images, None, vec![text], self).await?;
        vals[0].iter().map(text_argument).collect()
    }

    /// Whether `sql_mode` is strict (STRICT_TRANS_TABLES, STRICT_ALL_TABLES or TRADITIONAL), as it
    /// is by default.
    pub fn strict_mode(&self) -> bool {
        self.vars.get("sql_mode").is_none_or(|m| crate::sql::variables::sql_mode_strict(m))
    }

    // ---- UPDATE ------------------------------------------------------------------------------

    async fn update(&mut self, up: ast::Update, txn: Arc<Txn>) -> Result<Output> {
        if !up.table.joins.is_empty() || up.from.is_some() {
            return Err(SqlError::unsupported("multi-table UPDATE"));
        }
        let (name, alias) = match &up.table.relation {
            ast::TableFactor::Table { name, alias, .. } => (name.clone(), alias.clone()),
            other => return Err(SqlError::unsupported(format!("UPDATE {other}"))),
        };
        let (db, tname) = self.resolve_name(&name)?;
        let info = Catalog::new(&txn).must_table(&db, &tname)?;
        let mut cols = Vec::new();
        let mut items = vec![format!("`{HANDLE_COLUMN}`")];
        for (k, a) in up.assignments.iter().enumerate() {
            let col = assignment_column(&a.target)?;
            let ci = info.column_index(&col).ok_or_else(|| SqlError::unknown_column(&col, "field list"))?;
            if info.columns[ci].generated.is_some() {
                return Err(SqlError::new(
                    3105,
                    "HY000",
                    format!("The value specified for generated column '{}' in table '{}' is not allowed.", info.columns[ci].name, info.name),
                ));
            }
            cols.push(ci);
            // `SET c = DEFAULT`: the column's default expression.
            let value = match lit_of(&a.value) {
                Some(Lit::Default) => info.columns[ci].default.clone().unwrap_or_else(|| "NULL".into()),
                _ => a.value.to_string(),
            };
            items.push(format!("{value} AS `__set{k}`"));
        }
        let (mut matched, mut changed) = (0u64, 0u64);
        let changed_cols: HashSet<usize> = cols.iter().copied().collect();
        let stamp = self.on_update_stamp(&info, &changed_cols).await?;
        let fk = if self.foreign_key_checks() { foreign_key::Keys::of(&txn, &info, true)? } else { foreign_key::Keys::off() };
        // `UPDATE t SET c = 'v', … WHERE id = 7`: the rows by key and literal values, with no plan
        // (TiDB's Point_Get under an Update).
        let values: Option<Vec<Source>> = up.assignments.iter().map(|a| literal(&a.value)).collect();
        if let (Some(values), None) = (values, &up.limit) {
            if let Some(handles) = self.key_handles(&txn, &info, &db, &name, alias.as_ref(), up.selection.as_ref(), &up.order_by)? {
                let mut new = Vec::with_capacity(values.len());
                for (&ci, v) in cols.iter().zip(values) {
                    let c = &info.columns[ci];
                    new.push(match v {
                        Source::Value(v) => coerce(&v, &c.ty, &Target { column: &c.name, row: 1 })?,
                        Source::Default => self.column_default_value(c).await?,
                    });
                }
                for h in handles {
                    let Some(old) = table::get_row(&txn, &info, h)? else { continue };
                    matched += 1;
                    let mut updated = old.clone();
                    for (&ci, v) in cols.iter().zip(&new) {
                        updated.values[ci] = v.clone();
                    }
                    if self.write_updated_row(&txn, &info, &fk, &old, updated, &changed_cols, &stamp).await? {
                        changed += 1;
                    }
                }
                return Ok(self.updated(matched, changed));
            }
        }
        let sql = target_select(&items, &name, alias.as_ref(), up.selection.as_ref(), &up.order_by, up.limit.as_ref());
        let batches = self.select_targets(&sql, &db, &tname, txn.clone()).await?;
        for b in &batches {
            let handles = b.column(0).as_any().downcast_ref::<Int64Array>().ok_or_else(|| SqlError::other("bad handle column"))?.clone();
            for r in 0..b.num_rows() {
                let Some(old) = table::get_row(&txn, &info, handles.value(r))? else { continue };
                matched += 1;
                let mut updated = old.clone();
                for (k, &ci) in cols.iter().enumerate() {
                    let c = &info.columns[ci];
                    let v = types::scalar_at(b.column(k + 1), r)?;
                    updated.values[ci] = coerce(&v, &c.ty, &Target { column: &c.name, row: matched as usize })?;
                }
                if self.write_updated_row(&txn, &info, &fk, &old, updated, &changed_cols, &stamp).await? {
                    changed += 1;
                }
            }
        }
        Ok(self.updated(matched, changed))
    }

    /// An UPDATE's answer: rows changed (or matched, with CLIENT_FOUND_ROWS) and MySQL's info text.
    fn updated(&mut self, matched: u64, changed: u64) -> Output {
        let affected = if self.found_rows_flag { matched } else { changed };
        self.last_row_count = affected as i64;
        Output::Ok {
            affected,
            last_insert_id: 0,
            info: format!("Rows matched: {matched}  Changed: {changed}  Warnings: 0"),
        }
    }

    /// The rows an UPDATE or DELETE names by primary or unique key (`point_get::dml_handles`),
    /// when its WHERE is such a key and no ORDER BY could change which rows a LIMIT takes.
    #[allow(clippy::too_many_arguments)]
    fn key_handles(
        &self,
        txn: &Txn,
        info: &TableInfo,
        db: &str,
        name: &ast::ObjectName,
        alias: Option<&ast::TableAlias>,
        selection: Option<&Expr>,
        order_by: &[ast::OrderByExpr],
    ) -> Result<Option<Vec<i64>>> {
        let Some(selection) = selection else { return Ok(None) };
        if !order_by.is_empty() || alias.is_some_and(|a| !a.columns.is_empty()) {
            return Ok(None);
        }
        let qualifier = match alias {
            Some(a) => a.name.value.to_lowercase(),
            None => name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_lowercase()).unwrap_or_default(),
        };
        crate::sql::point_get::dml_handles(txn, info, db, &qualifier, alias.is_some(), selection)
    }

    // ---- DELETE ------------------------------------------------------------------------------

    async fn delete(&mut self, del: ast::Delete, txn: Arc<Txn>) -> Result<Output> {
        let from = match &del.from {
            ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
        };
        if from.len() != 1 || !from[0].joins.is_empty() || !del.tables.is_empty() || del.using.is_some() {
            return Err(SqlError::unsupported("multi-table DELETE"));
        }
        let (name, alias) = match &from[0].relation {
            ast::TableFactor::Table { name, alias, .. } => (name.clone(), alias.clone()),
            other => return Err(SqlError::unsupported(format!("DELETE FROM {other}"))),
        };
        let (db, tname) = self.resolve_name(&name)?;
        let info = Catalog::new(&txn).must_table(&db, &tname)?;
        let mut affected = 0u64;
        let refs = if self.foreign_key_checks() { foreign_key::referencing(&txn, &info)? } else { vec![] };
        // `DELETE FROM t WHERE id = 7`: the rows by key, with no plan.
        if del.limit.is_none() {
            if let Some(handles) = self.key_handles(&txn, &info, &db, &name, alias.as_ref(), del.selection.as_ref(), &del.order_by)? {
                for h in handles {
                    if let Some(old) = table::get_row(&txn, &info, h)? {
                        foreign_key::on_parent_delete(&txn, &info, &refs, &old, 0)?;
                        table::remove_row(&txn, &info, &old)?;
                        affected += 1;
                    }
                }
                self.last_row_count = affected as i64;
                return Ok(Output::affected(affected));
            }
        }
        let items = vec![format!("`{HANDLE_COLUMN}`")];
        let sql = target_select(&items, &name, alias.as_ref(), del.selection.as_ref(), &del.order_by, del.limit.as_ref());
        let batches = self.select_targets(&sql, &db, &tname, txn.clone()).await?;
        for b in &batches {
            let handles = b.column(0).as_any().downcast_ref::<Int64Array>().ok_or_else(|| SqlError::other("bad handle column"))?;
            for r in 0..b.num_rows() {
                if let Some(old) = table::get_row(&txn, &info, handles.value(r))? {
                    foreign_key::on_parent_delete(&txn, &info, &refs, &old, 0)?;
                    table::remove_row(&txn, &info, &old)?;
                    affected += 1;
                }
            }
        }
        self.last_row_count = affected as i64;
        Ok(Output::affected(affected))
    }

    pub(crate) async fn select_targets(&mut self, sql: &str, db: &str, table: &str, txn: Arc<Txn>) -> Result<Vec<RecordBatch>> {
        let mut stmt = parser::parse_one(sql)?;
        rewrite::rewrite_statement(&mut stmt, self)?;
        let scope = PlanScope { dml_target: Some((db.to_string(), table.to_string())), current_db: self.db.clone(), ..Default::default() };
        let (_, batches) = self.plan_and_collect(stmt, txn, scope).await?;
        Ok(batches)
    }
}

pub(crate) fn target_select(
    items: &[String],
    name: &ast::ObjectName,
    alias: Option<&ast::TableAlias>,
    selection: Option<&Expr>,
    order_by: &[ast::OrderByExpr],
    limit: Option<&Expr>,
) -> String {
    let mut sql = format!("SELECT {} FROM {name}", items.join(", "));
    if let Some(a) = alias {
        sql.push_str(&format!(" AS {}", a.name));
    }
    if let Some(w) = selection {
        sql.push_str(&format!(" WHERE {w}"));
    }
    if !order_by.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", order_by.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ")));
    }
    if let Some(l) = limit {
        sql.push_str(&format!(" LIMIT {l}"));
    }
    sql
}

fn assignment_column(t: &ast::AssignmentTarget) -> Result<String> {
    match t {
        ast::AssignmentTarget::ColumnName(n) => Ok(n.0.last().map(|p| p.to_string()).unwrap_or_default().trim_matches('`').to_string()),
        other => Err(SqlError::unsupported(format!("assignment to {other}"))),
    }
}

pub(crate) fn parse_expr(text: &str) -> Result<Expr> {
    let dialect = crate::sql::dialect::TidbDialect::default();
    let mut p = datafusion::sql::sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| SqlError::syntax(e.to_string()))?;
    p.parse_expr().map_err(|e| SqlError::syntax(e.to_string()))
}

pub(crate) fn referenced_columns(e: &Expr) -> HashSet<String> {
    let mut out = HashSet::new();
    let _ = ast::visit_expressions(e, |x| {
        match x {
            Expr::Identifier(i) => {
                out.insert(i.value.to_lowercase());
            }
            Expr::CompoundIdentifier(ids) => {
                out.insert(ids.last().unwrap().value.to_lowercase());
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

/// A VALUES item that needs no evaluation. Numbers stay text so DECIMAL and string columns get
/// exactly the digits the user wrote.
/// A VALUES item that needs no evaluation, borrowed from the statement.
enum Lit<'a> {
    Text(&'a str),
    Negative(&'a str),
    Null,
    Bool(bool),
    Default,
}

fn lit_of(e: &Expr) -> Option<Lit<'_>> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(Lit::Text(n)),
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(Lit::Text(s)),
            Value::Null => Some(Lit::Null),
            Value::Boolean(b) => Some(Lit::Bool(*b)),
            _ => None,
        },
        Expr::UnaryOp { op: ast::UnaryOperator::Minus, expr } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => Some(Lit::Negative(n)),
                _ => None,
            },
            _ => None,
        },
        Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default") => Some(Lit::Default),
        _ => None,
    }
}

fn literal(e: &Expr) -> Option<Source> {
    Some(match lit_of(e)? {
        Lit::Text(t) => Source::Value(ScalarValue::Utf8(Some(t.to_string()))),
        Lit::Negative(n) => Source::Value(ScalarValue::Utf8(Some(format!("-{n}")))),
        Lit::Null => Source::Value(ScalarValue::Null),
        Lit::Bool(b) => Source::Value(ScalarValue::Int64(Some(b as i64))),
        Lit::Default => Source::Default,
    })
}

fn check_not_null(info: &TableInfo, r: &Row, _row: usize) -> Result<()> {
    for (c, v) in info.columns.iter().zip(&r.values) {
        if !c.nullable && matches!(v, Datum::Null) {
            return Err(SqlError::bad_null(&c.name));
        }
    }
    Ok(())
}

/// Handles: the integer primary key's value, or a fresh row id.
fn assign_handles(s: &Session, info: &TableInfo, rows: &mut [Row]) -> Result<()> {
    if let Some(pk) = &info.pk_handle {
        let i = info.column_index(pk).unwrap();
        for r in rows.iter_mut() {
            r.handle = match r.values[i] {
                Datum::Int(h) => h,
                Datum::UInt(u) => i64::try_from(u).map_err(|_| SqlError::out_of_range(pk, 1))?,
                _ => return Err(SqlError::bad_null(&info.columns[i].name)),
            };
        }
    } else {
        let first = s.engine.store.alloc_ids(&info.id_counter(), rows.len() as u64)?;
        for (k, r) in rows.iter_mut().enumerate() {
            r.handle = (first + k as u64) as i64;
        }
    }
    Ok(())
}

/// The texts of async embedding columns (`embed::backlog`), per row of a statement's batch:
/// (column id, text; None when the text is NULL, and so stays the vector). Queued once a row is
/// written and its handle final.
#[derive(Default)]
pub struct QueuedTexts(Vec<Vec<(u32, Option<String>)>>);

impl QueuedTexts {
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Vec::is_empty)
    }

    /// Queue row `row`'s texts under `handle` (replacing what was queued for it).
    pub fn queue(&self, txn: &Txn, info: &TableInfo, row: usize, handle: i64) {
        for (column_id, text) in self.0.get(row).into_iter().flatten() {
            crate::embed::backlog::enqueue(txn, info.id, *column_id, handle, text.clone());
        }
    }
}

/// An evaluated text argument as `EMBED_TEXT` would see it: cast to text the same way.
fn text_argument(v: &ScalarValue) -> Result<Option<String>> {
    match v.cast_to(&datafusion::arrow::datatypes::DataType::Utf8)? {
        ScalarValue::Utf8(s) => Ok(s),
        other => Err(SqlError::other(format!("EMBED_TEXT: text argument {other} is not text"))),
    }
}

/// Evaluate expressions over row images (one Arrow batch, one DataFusion query): generated columns,
/// ON DUPLICATE KEY UPDATE. `new` adds `__new_<col>` columns holding a proposed row.
/// Returns `[expr][row]`.
async fn eval_over_rows(
    info: &TableInfo,
    rows: &[Vec<Datum>],
    new: Option<&Vec<Datum>>,
    exprs: Vec<Expr>,
    session: &Session,
) -> Result<Vec<Vec<ScalarValue>>> {
    let mut fields: Vec<Field> = info.columns.iter().map(|c| c.ty.field(&c.key(), true)).collect();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, c) in info.columns.iter().enumerate() {
        let vals: Vec<&Datum> = rows.iter().map(|r| &r[i]).collect();
        columns.push(types::datums_to_array(&c.ty, &vals)?);
    }
    if let Some(new) = new {
        for (i, c) in info.columns.iter().enumerate() {
            fields.push(c.ty.field(&format!("__new_{}", c.key()), true));
            let vals: Vec<&Datum> = rows.iter().map(|_| &new[i]).collect();
            columns.push(types::datums_to_array(&c.ty, &vals)?);
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| SqlError::other(e.to_string()))?;
    let ctx = crate::session::new_context(datafusion::prelude::SessionConfig::new(), Some((session.engine.embedder.clone(), session.interrupt.clone(), session.embed_notes.clone())));
    let mem = MemTable::try_new(schema, vec![vec![batch]])?;
    ctx.register_table("__rows", Arc::new(mem))?;
    let items: Vec<String> = exprs.iter().enumerate().map(|(k, e)| format!("{e} AS `e{k}`")).collect();
    let mut stmt = parser::parse_one(&format!("SELECT {} FROM __rows", items.join(", ")))?;
    rewrite::rewrite_statement(&mut stmt, session)?;
    let plan = ctx.state().statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(stmt))).await?;
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
    let mut out = vec![Vec::with_capacity(rows.len()); exprs.len()];
    for b in &batches {
        for (k, col) in b.columns().iter().enumerate() {
            for r in 0..b.num_rows() {
                out[k].push(types::scalar_at(col, r)?);
            }
        }
    }
    Ok(out)
}
