//! TiDB's `ADMIN` statements for background DDL jobs — here, the embedding model changes of
//! `embed::model_change`:
//! - `ADMIN SHOW DDL JOBS` lists the running jobs with TiDB's columns (ROW_COUNT = rows whose new
//!   vector is made; COMMENTS says the model and the rows still to embed);
//! - `ADMIN CANCEL DDL JOBS 3[, 4 …]` stops jobs (SUPER): the column keeps its old model and
//!   vectors; one result row per job, `successful` or TiDB's not-found text.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::error::{Result, SqlError};
use crate::session::{Output, Session};
use crate::sql::catalog::Catalog;

/// TiDB's columns of `ADMIN SHOW DDL JOBS`; the integer ones by name.
const JOB_COLUMNS: [&str; 13] = [
    "JOB_ID", "DB_NAME", "TABLE_NAME", "JOB_TYPE", "SCHEMA_STATE", "SCHEMA_ID", "TABLE_ID", "ROW_COUNT", "CREATE_TIME", "START_TIME", "END_TIME", "STATE", "COMMENTS",
];
const INT_COLUMNS: [&str; 4] = ["JOB_ID", "SCHEMA_ID", "TABLE_ID", "ROW_COUNT"];

/// A cell of a result made here.
enum Cell {
    Int(i64),
    Text(Option<String>),
}

fn rows_output(headers: &[&str], rows: Vec<Vec<Cell>>) -> Result<Output> {
    let is_int = |h: &str| INT_COLUMNS.contains(&h);
    let fields: Vec<Field> = headers.iter().map(|h| Field::new(*h, if is_int(h) { DataType::Int64 } else { DataType::Utf8 }, true)).collect();
    let schema = Arc::new(Schema::new(fields));
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (k, h) in headers.iter().enumerate() {
        let cells = rows.iter().map(|r| &r[k]);
        arrays.push(if is_int(h) {
            Arc::new(cells.map(|c| if let Cell::Int(v) = c { Some(*v) } else { None }).collect::<Int64Array>())
        } else {
            Arc::new(cells.map(|c| if let Cell::Text(v) = c { v.clone() } else { None }).collect::<StringArray>())
        });
    }
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| SqlError::other(e.to_string()))?;
    Ok(Output::Rows { schema, batches: vec![batch] })
}

fn time(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64).map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

impl Session {
    /// `ADMIN …` (`toks`: the statement's lower-case tokens). None: not a statement of ours.
    pub(crate) async fn admin_statement(&mut self, toks: &[String]) -> Result<Option<Output>> {
        let words: Vec<&str> = toks.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["admin", "show", "ddl", "jobs", ..] => self.show_ddl_jobs().map(Some),
            ["admin", "cancel", "ddl", "jobs", ids @ ..] if !ids.is_empty() => {
                self.require_global(crate::privileges::SUPER)?;
                let ids: Vec<i64> = ids
                    .iter()
                    .filter(|t| **t != ",")
                    .map(|t| t.trim_end_matches(',').parse::<i64>().map_err(|_| SqlError::syntax(format!("near '{t}'"))))
                    .collect::<Result<_>>()?;
                self.cancel_ddl_jobs(&ids).map(Some)
            }
            ["admin", what, ..] => Err(SqlError::unsupported(format!("ADMIN {} (ADMIN SHOW DDL JOBS and ADMIN CANCEL DDL JOBS are)", what.to_uppercase()))),
            _ => Ok(None),
        }
    }

    fn show_ddl_jobs(&mut self) -> Result<Output> {
        let txn = self.engine.store.begin()?;
        let mut rows = Vec::new();
        for t in Catalog::new(&txn).every_table()? {
            let Some((m, total, done)) = crate::embed::model_change::progress(&txn, &t)? else { continue };
            let model = m.column.generated.as_ref().and_then(|g| crate::sql::ddl::embed_text_call(&g.expr)).map(|(spec, _)| spec).unwrap_or_default();
            let c = crate::embed::backlog::counts(&txn, t.id, m.shadow_id)?;
            let comment = format!(
                "column `{}` changing its embedding model to {model}: {done} of {total} rows embedded ({} pending, {} failed)",
                m.column.name, c.pending, c.failed
            );
            rows.push(vec![
                Cell::Int(m.job),
                Cell::Text(Some(t.db.clone())),
                Cell::Text(Some(t.name.clone())),
                Cell::Text(Some("modify column".into())),
                Cell::Text(Some(if m.queued { "write reorganization" } else { "queueing" }.into())),
                Cell::Int(0),
                Cell::Int(t.id),
                Cell::Int(done as i64),
                Cell::Text(Some(time(m.started_ms))),
                Cell::Text(Some(time(m.started_ms))),
                Cell::Text(None),
                Cell::Text(Some("running".into())),
                Cell::Text(Some(comment)),
            ]);
        }
        txn.rollback();
        rows.sort_by_key(|r| std::cmp::Reverse(if let Cell::Int(j) = r[0] { j } else { 0 }));
        rows_output(&JOB_COLUMNS, rows)
    }

    fn cancel_ddl_jobs(&mut self, ids: &[i64]) -> Result<Output> {
        let mut rows = Vec::new();
        for &id in ids {
            let txn = self.engine.store.begin()?;
            let found = Catalog::new(&txn).every_table()?.into_iter().find(|t| t.model_change.as_ref().is_some_and(|m| m.job == id));
            let result = match found {
                Some(mut info) => {
                    crate::embed::model_change::cancel(&txn, &mut info)?;
                    txn.commit()?;
                    self.engine.search.sync(&self.engine.store)?;
                    "successful".to_string()
                }
                None => {
                    txn.rollback();
                    format!("error: [admin:8131]DDL Job:{id} not found")
                }
            };
            rows.push(vec![Cell::Int(id), Cell::Text(Some(result))]);
        }
        rows_output(&["JOB_ID", "RESULT"], rows)
    }
}
