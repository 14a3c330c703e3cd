//! `ALTER TABLE` changes to existing columns: `MODIFY`, `CHANGE`, `RENAME COLUMN` and
//! `ALTER COLUMN … SET/DROP DEFAULT`, plus column placement (`FIRST` / `AFTER c`).
//!
//! A walk through `ALTER TABLE t MODIFY n BIGINT NOT NULL` on a table with rows:
//! 1. the new definition is built like a `CREATE TABLE` column, but keeps the old column's id, so
//!    rows (encoded by column id) need no change when only the name, default or comment changes;
//! 2. when the type or nullability changes, every row's value is converted with the same rules as
//!    an INSERT into the new type (strict mode: a value that does not fit fails the whole ALTER
//!    with TiDB's error, and nothing changes); rows are re-encoded in the DDL's transaction;
//! 3. ordered indexes over the column are rebuilt from the converted rows (a UNIQUE index that the
//!    conversion makes collide fails with 1062); vector and full-text indexes refer to the column
//!    by name and follow a rename (`index::search` rebuilds them for the new definition).

use datafusion::sql::sqlparser::ast::{ColumnDef, Ident, MySQLColumnPosition};
use embedb_storage::codec::Datum;

use crate::error::{Result, SqlError};
use crate::session::Session;
use crate::sql::catalog::{IndexKind, TableInfo};
use crate::sql::types::{self, Target};
use crate::storage::table;

impl Session {
    /// `MODIFY COLUMN` of an `EMBED_TEXT` column to another model, options or dimension: a
    /// background job (`embed::model_change`); the column is unchanged until its switch.
    async fn start_model_change(&mut self, info: &mut TableInfo, col: crate::sql::catalog::ColumnInfo) -> Result<()> {
        let crate::sql::types::SqlType::Vector(Some(dims)) = col.ty else {
            return Err(SqlError::new(8200, "HY000", "Unsupported modify column: an EMBED_TEXT column changing its model needs a fixed dimension, VECTOR(D)"));
        };
        for ix in info.indexes.iter().filter(|i| i.columns == [col.key()]) {
            if let IndexKind::Vector { metric } = &ix.kind {
                crate::index::ann_params(crate::index::search::metric_of(metric), dims as usize, &ix.comment)?;
            }
        }
        let generated = col.generated.as_ref().map(|g| g.expr.clone()).unwrap_or_default();
        let (spec, _) = crate::sql::ddl::embed_text_call(&generated).ok_or_else(|| SqlError::other("not an EMBED_TEXT column"))?;
        self.engine.embedder.check_model(&spec)?;
        let job = self.engine.store.alloc_ids(crate::embed::model_change::JOB_COUNTER, 1)? as i64;
        crate::embed::model_change::start(info, col, job)?;
        // The rows already there are queued once this DDL has committed (`queue_model_change`).
        self.model_change_started = Some((info.db.clone(), info.name.clone(), job));
        Ok(())
    }

    /// The second step of a model change the committed ALTER started: queue every row's new text
    /// (`model_change::queue_rows`), run again when a concurrent write to one of its rows wins.
    /// If it cannot, the job is cancelled and the ALTER fails: the column stays as it was.
    pub(crate) async fn queue_model_change(&mut self, db: &str, name: &str, job: i64) -> Result<()> {
        let mut last = None;
        for attempt in 0..20u32 {
            let txn = self.engine.store.begin()?;
            let r = async {
                let info = crate::sql::catalog::Catalog::new(&txn).must_table(db, name)?;
                let Some(m) = info.model_change.clone().filter(|m| m.job == job) else { return Ok(()) };
                let generated = m.column.generated.as_ref().map(|g| g.expr.clone()).unwrap_or_default();
                let rows = table::scan_rows(&txn, &info, usize::MAX)?;
                let texts = self.embed_texts_of(&info, &rows, &generated).await?;
                crate::embed::model_change::queue_rows(&txn, db, name, job, rows.iter().map(|r| r.handle).zip(texts).collect())
            }
            .await;
            match r.and_then(|()| txn.commit().map_err(SqlError::from)) {
                Ok(()) => {
                    self.engine.embedder.backlog.notify();
                    return Ok(());
                }
                Err(e) if e.code == crate::error::WRITE_CONFLICT => {
                    last = Some(e);
                    tokio::time::sleep(std::time::Duration::from_millis(5 << attempt.min(6))).await;
                }
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        let txn = self.engine.store.begin()?;
        if let Some(mut info) = crate::sql::catalog::Catalog::new(&txn).table(db, name)? {
            if info.model_change.as_ref().is_some_and(|m| m.job == job) {
                crate::embed::model_change::cancel(&txn, &mut info)?;
                txn.commit()?;
            }
        }
        Err(last.unwrap_or_else(|| SqlError::other("the model change could not queue its rows")))
    }

    /// `CHANGE old new_def`, `MODIFY def` (old = def's name) and `RENAME COLUMN` (a CHANGE that keeps
    /// the definition, see [`rename_column`]).
    pub(crate) async fn change_column(
        &mut self,
        txn: &embedb_storage::Txn,
        info: &mut TableInfo,
        old: &Ident,
        def: &ColumnDef,
        position: Option<&MySQLColumnPosition>,
    ) -> Result<()> {
        let Some(pos) = info.column_index(&old.value) else {
            return Err(unknown_column(&old.value, &info.name));
        };
        let before = info.columns[pos].clone();
        let renamed = !def.name.value.eq_ignore_ascii_case(&before.name);
        if renamed && info.column(&def.name.value).is_some() {
            return Err(SqlError::new(1060, "42S21", format!("Duplicate column name '{}'", def.name.value)));
        }
        let next_id = info.next_column_id;
        let (mut col, pk, unique) = super::ddl::column_from_ast(info, def)?;
        info.next_column_id = next_id;
        col.id = before.id;
        let in_primary = info.primary().is_some_and(|p| p.columns.contains(&before.key()));
        if pk && !in_primary {
            return Err(SqlError::unsupported("ALTER TABLE … MODIFY/CHANGE COLUMN … PRIMARY KEY"));
        }
        if in_primary {
            col.nullable = false;
        }
        if crate::embed::model_change::is_model_change(&before, &col) && position.is_none() {
            return self.start_model_change(info, col).await;
        }
        if col.generated != before.generated {
            return Err(SqlError::new(
                3106,
                "HY000",
                "'Changing the generated expression or the STORED status' is not supported for generated columns.",
            ));
        }
        let type_changed = col.ty != before.ty;
        let special = info.indexes.iter().any(|i| !matches!(i.kind, IndexKind::Btree) && i.columns.contains(&before.key()));
        if type_changed && special {
            return Err(SqlError::new(
                8200,
                "HY000",
                format!("Unsupported modify column: column {} has a vector or full-text index", before.name),
            ));
        }
        if type_changed && info.pk_handle.as_deref() == Some(before.key().as_str()) && !col.ty.is_integer() {
            return Err(SqlError::new(8200, "HY000", "Unsupported modify column: this column has primary key flag"));
        }
        if renamed {
            check_no_generated_dependency(info, &before.name)?;
        }
        if col.auto_increment && !before.auto_increment {
            if info.auto_increment_column().is_some() {
                return Err(SqlError::new(
                    1075,
                    "42000",
                    "Incorrect table definition; there can be only one auto column and it must be defined as a key",
                ));
            }
            if !info.indexes.iter().any(|i| i.columns.first() == Some(&before.key())) {
                return Err(SqlError::new(
                    1075,
                    "42000",
                    "Incorrect table definition; there can be only one auto column and it must be defined as a key",
                ));
            }
        }

        // Rows: convert the stored values when their type or nullability changes.
        let convert = type_changed || (before.nullable && !col.nullable);
        let mut new_info = info.clone();
        new_info.columns[pos] = col.clone();
        if renamed {
            rename_in_indexes(&mut new_info, &before.key(), &col.key());
        }
        if let Some(p) = position {
            place_column(&mut new_info, pos, p)?;
        }
        if convert {
            let rows = table::scan_rows(txn, info, usize::MAX)?;
            let touched: Vec<_> = info.kv_indexes().filter(|i| i.columns.contains(&before.key())).cloned().collect();
            for ix in &touched {
                table::drop_index_entries(txn, info, ix)?;
            }
            // Row values follow the new column order: where each new position's value was.
            let old_at: Vec<usize> =
                new_info.columns.iter().map(|c| info.columns.iter().position(|o| o.id == c.id).expect("same columns")).collect();
            for (n, r) in rows.iter().enumerate() {
                let v = convert_value(&r.values[pos], &before.ty, &col, n + 1)?;
                let values: Vec<Datum> = old_at.iter().map(|&i| if i == pos { v.clone() } else { r.values[i].clone() }).collect();
                table::put_row(txn, &new_info, &table::Row { handle: r.handle, values })?;
            }
            let touched_new: Vec<_> = new_info.kv_indexes().filter(|i| touched.iter().any(|t| t.id == i.id)).cloned().collect();
            for ix in &touched_new {
                table::drop_index_entries(txn, &new_info, ix)?;
                table::backfill_index(txn, &new_info, ix)?;
            }
        }
        if col.auto_increment && !before.auto_increment {
            // The counter starts above the largest value already there.
            let max = table::scan_rows(txn, &new_info, usize::MAX)?
                .iter()
                .filter_map(|r| match &r.values[new_info.column_index(&col.name).expect("placed")] {
                    Datum::Int(v) => Some(*v as u64),
                    Datum::UInt(v) => Some(*v),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            self.engine.store.counter_rebase(&new_info.id_counter(), max)?;
        }
        *info = new_info;
        if unique && !info.indexes.iter().any(|i| i.unique && i.columns == [col.key()]) {
            super::ddl::add_index(txn, info, None, vec![col.key()], true, false)?;
        }
        Ok(())
    }

    /// `RENAME COLUMN a TO b`: the name changes, nothing else (indexes follow).
    pub(crate) fn rename_column(&mut self, info: &mut TableInfo, old: &Ident, new: &Ident) -> Result<()> {
        let Some(pos) = info.column_index(&old.value) else {
            return Err(unknown_column(&old.value, &info.name));
        };
        if !new.value.eq_ignore_ascii_case(&old.value) && info.column(&new.value).is_some() {
            return Err(SqlError::new(1060, "42S21", format!("Duplicate column name '{}'", new.value)));
        }
        let before = info.columns[pos].key();
        check_no_generated_dependency(info, &info.columns[pos].name.clone())?;
        info.columns[pos].name = new.value.clone();
        let after = info.columns[pos].key();
        rename_in_indexes(info, &before, &after);
        Ok(())
    }

    /// `ALTER COLUMN c SET DEFAULT v` / `DROP DEFAULT`: the catalog only; rows keep their values.
    pub(crate) async fn set_column_default(&mut self, info: &mut TableInfo, name: &Ident, value: Option<String>) -> Result<()> {
        let Some(pos) = info.column_index(&name.value) else {
            return Err(unknown_column(&name.value, &info.name));
        };
        let mut col = info.columns[pos].clone();
        if col.generated.is_some() && value.is_some() {
            return Err(SqlError::new(
                3105,
                "HY000",
                format!("The value specified for generated column '{}' in table '{}' is not allowed.", col.name, info.name),
            ));
        }
        col.default = value;
        // The default must fit the column, as at CREATE TABLE (1067 otherwise).
        if col.default.is_some() && self.column_default_value(&col).await.is_err() {
            return Err(SqlError::new(1067, "42000", format!("Invalid default value for '{}'", col.name)));
        }
        info.columns[pos] = col;
        Ok(())
    }
}

/// Convert one stored value to the column's new type (strict mode, as an INSERT would).
fn convert_value(v: &Datum, from: &types::SqlType, to: &crate::sql::catalog::ColumnInfo, row: usize) -> Result<Datum> {
    if matches!(v, Datum::Null) {
        if !to.nullable {
            return Err(SqlError::new(1138, "22004", "Invalid use of NULL value"));
        }
        return Ok(Datum::Null);
    }
    let s = types::datum_to_scalar(v, from)?;
    types::coerce(&s, &to.ty, &Target { column: &to.name, row })
}

fn unknown_column(col: &str, table: &str) -> SqlError {
    SqlError::new(1054, "42S22", format!("Unknown column '{col}' in '{table}'"))
}

/// MySQL refuses to rename a column that a generated column's expression reads (3108).
fn check_no_generated_dependency(info: &TableInfo, name: &str) -> Result<()> {
    let key = name.to_lowercase();
    for c in &info.columns {
        let Some(g) = &c.generated else { continue };
        let Ok(e) = super::dml::parse_expr(&g.expr) else { continue };
        if super::dml::referenced_columns(&e).contains(&key) {
            return Err(SqlError::new(3108, "HY000", format!("Column '{name}' has a generated column dependency.")));
        }
    }
    Ok(())
}

/// Indexes and the table's own foreign keys keep lower-cased column names; a rename rewrites them
/// (and the int-handle marker). Keys that reference the column follow in
/// `foreign_key::follow_parent`.
fn rename_in_indexes(info: &mut TableInfo, before: &str, after: &str) {
    let cols = info.indexes.iter_mut().flat_map(|ix| ix.columns.iter_mut()).chain(info.foreign_keys.iter_mut().flat_map(|fk| fk.columns.iter_mut()));
    for c in cols {
        if c == before {
            *c = after.to_string();
        }
    }
    if info.pk_handle.as_deref() == Some(before) {
        info.pk_handle = Some(after.to_string());
    }
}

/// Move the column at `pos` to `FIRST` or `AFTER other`.
pub(crate) fn place_column(info: &mut TableInfo, pos: usize, p: &MySQLColumnPosition) -> Result<()> {
    let col = info.columns.remove(pos);
    let at = match p {
        MySQLColumnPosition::First => 0,
        MySQLColumnPosition::After(other) => match info.column_index(&other.value) {
            Some(i) => i + 1,
            None => {
                info.columns.insert(pos, col);
                return Err(unknown_column(&other.value, &info.name));
            }
        },
    };
    info.columns.insert(at, col);
    Ok(())
}
