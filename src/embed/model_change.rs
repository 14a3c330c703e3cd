//! Changing an `EMBED_TEXT` column's model, options or dimension online:
//! `ALTER TABLE docs MODIFY COLUMN embedding VECTOR(768) GENERATED ALWAYS AS
//! (EMBED_TEXT('jina_ai/jina-embeddings-v3', content)) STORED`.
//!
//! The way through:
//! 1. The ALTER changes no row. It commits a [`ModelChange`] in the table's catalog entry
//!    ([`start`]: the new column definition and a *shadow id*, a column id no row ever holds) —
//!    from then on every write queues the new text too — and then, in a second transaction,
//!    queues the text of every row already there ([`queue_rows`]). It returns once both are
//!    committed; the job is listed by `ADMIN SHOW DDL JOBS` with its progress.
//! 2. The backlog worker embeds the shadow's texts like an async column's (rounds, the cache,
//!    the provider's backoff and rate limits) but keeps each vector in the backlog's READY list
//!    instead of the row. Until the switch the column, its index and every query use the old
//!    model only.
//! 3. Writes meanwhile go to both: `fill_generated` computes the old column as before and queues
//!    the new expression's text under the shadow id (a new text drops the row's READY vector);
//!    DELETE, REPLACE and primary-key moves carry the shadow's entries like an async column's.
//! 4. Once nothing of the shadow is pending or failed, the worker marks the table as switching
//!    ([`set_switching`]: row writes wait from then on, so no row made for the old definition
//!    can commit beside the switch) and switches ([`switch`]) in one transaction: every row
//!    gets its READY vector (NULL where the text is NULL), the column
//!    takes its new definition (same id, name and place), the job is cleared and the READY list
//!    dropped. Commits apply it to the vector index at once (same dimension) or the index is
//!    rebuilt for the new dimension; a query sees the old model or the new, never both.
//! 5. `ADMIN CANCEL DDL JOBS n` ([`cancel`]) clears the job and its backlog: the column was
//!    never touched. A crash anywhere resumes from the durable catalog entry and backlog.

use embedb_storage::Txn;

use super::backlog;
use crate::error::{Result, SqlError};
use crate::sql::catalog::{Catalog, ColumnInfo, ModelChange, TableInfo};
use crate::storage::table;

/// The counter job numbers come from.
pub const JOB_COUNTER: &[u8] = b"ddl_job";

/// Whether changing `before` into `after` is a model change: both `EMBED_TEXT` columns, same
/// name, and a different call (model, text, options) or dimension.
pub fn is_model_change(before: &ColumnInfo, after: &ColumnInfo) -> bool {
    let call = |c: &ColumnInfo| c.generated.as_ref().and_then(|g| crate::sql::ddl::embed_text_call(&g.expr));
    call(before).is_some() && call(after).is_some() && before.key() == after.key() && (before.generated != after.generated || before.ty != after.ty)
}

/// Record the change (the module doc, step 1, first half): from its commit on, every write
/// queues the new text too. The rows already there are queued by [`queue_rows`] after it.
pub fn start(info: &mut TableInfo, column: ColumnInfo, job: i64) -> Result<()> {
    if let Some(m) = &info.model_change {
        return Err(SqlError::new(
            8200,
            "HY000",
            format!("Unsupported modify column: column {} is already changing its model (job {}; ADMIN CANCEL DDL JOBS {} stops it)", m.column.name, m.job, m.job),
        ));
    }
    let shadow_id = info.next_column_id;
    info.next_column_id += 1;
    info.model_change = Some(ModelChange { job, column, shadow_id, started_ms: backlog::now_ms(), switching: false, queued: false });
    Ok(())
}

/// The second half of step 1, in a transaction that began after [`start`] committed: queue the
/// new text of every row (`texts`, by handle, as this snapshot has them) that has no entry yet —
/// rows written since the start queued theirs. A write to one of these rows meanwhile writes the
/// same backlog key, so one of the two transactions fails and is run again: no row is missed and
/// none keeps an old text. Marks the job queued (it may switch from then on).
pub fn queue_rows(txn: &Txn, db: &str, table_name: &str, job: i64, texts: Vec<(i64, Option<String>)>) -> Result<()> {
    let cat = Catalog::new(txn);
    let Some(mut info) = cat.table(db, table_name)? else { return Ok(()) };
    let Some(m) = info.model_change.as_mut().filter(|m| m.job == job) else { return Ok(()) };
    for (handle, text) in texts {
        if !backlog::has_entry(txn, info.id, m.shadow_id, handle)? {
            // (A NULL text queues nothing, but the delete still meets a concurrent write.)
            backlog::enqueue(txn, info.id, m.shadow_id, handle, text);
        }
    }
    m.queued = true;
    cat.put_table(&info)?;
    Ok(())
}

/// Clear a table's job and its backlog: the column stays as it was.
pub fn cancel(txn: &Txn, info: &mut TableInfo) -> Result<Option<ModelChange>> {
    let Some(m) = info.model_change.take() else { return Ok(None) };
    backlog::forget_column(txn, info.id, m.shadow_id)?;
    Catalog::new(txn).put_table(info)?;
    Ok(Some(m))
}

/// The words of the write conflict a row write gets while its table switches.
pub const SWITCHING: &str = "the table is switching to its new embedding model";

/// Whether every row's new vector is made (nothing of the shadow pending or failed).
pub fn all_made(txn: &Txn, info: &TableInfo) -> Result<bool> {
    let Some(m) = info.model_change.as_ref().filter(|m| m.queued) else { return Ok(false) };
    let c = backlog::counts(txn, info.id, m.shadow_id)?;
    Ok(c.pending == 0 && c.failed == 0)
}

/// Mark (or unmark) the table as switching: from this commit on, row writes of transactions
/// that read the table before it, or that begin after it, fail until the switch commits —
/// so the switch sees the final set of rows. Returns false when there is no job (any more).
pub fn set_switching(txn: &Txn, db: &str, table_name: &str, on: bool) -> Result<bool> {
    let cat = Catalog::new(txn);
    let Some(mut info) = cat.table(db, table_name)? else { return Ok(false) };
    let Some(m) = info.model_change.as_mut() else { return Ok(false) };
    m.switching = on;
    cat.put_table(&info)?;
    Ok(true)
}

/// The switch (module doc, step 4), in a transaction that began after [`set_switching`]
/// committed. Returns whether the table switched; false when rows are still waiting (the
/// caller then unmarks it) or the job is gone.
pub fn switch(txn: &Txn, db: &str, table_name: &str) -> Result<bool> {
    let cat = Catalog::new(txn);
    let Some(mut info) = cat.table(db, table_name)? else { return Ok(false) };
    let Some(m) = info.model_change.clone() else { return Ok(false) };
    if !all_made(txn, &info)? {
        return Ok(false);
    }
    let Some(pos) = info.columns.iter().position(|c| c.id == m.column.id) else {
        // The column is gone: nothing to switch to.
        cancel(txn, &mut info)?;
        return Ok(true);
    };
    let mut new_info = info.clone();
    new_info.columns[pos] = m.column.clone();
    new_info.model_change = None;
    for mut row in table::scan_rows(txn, &info, usize::MAX)? {
        row.values[pos] = match backlog::ready(txn, info.id, m.shadow_id, row.handle)? {
            Some(v) => embedb_storage::codec::Datum::Vector(v),
            None => embedb_storage::codec::Datum::Null, // nothing queued: the text is NULL
        };
        table::put_row(txn, &new_info, &row)?;
    }
    backlog::forget_column(txn, info.id, m.shadow_id)?;
    cat.put_table(&new_info)?;
    Ok(true)
}

/// What `ADMIN SHOW DDL JOBS` shows of a running change: the job and its backlog (rows to
/// embed: pending + failed + ready; done: ready).
pub fn progress(txn: &Txn, info: &TableInfo) -> Result<Option<(ModelChange, backlog::Counts)>> {
    let Some(m) = info.model_change.clone() else { return Ok(None) };
    let c = backlog::counts(txn, info.id, m.shadow_id)?;
    Ok(Some((m, c)))
}
