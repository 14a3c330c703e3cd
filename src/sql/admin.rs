//! TiDB's `ADMIN` statements for background DDL jobs — here, the embedding model changes of
//! `embed::model_change`:
//! - `ADMIN SHOW DDL JOBS` lists the running jobs with TiDB's columns (ROW_COUNT = rows whose new
//!   vector is made; COMMENTS says the model and the rows still to embed);
//! - `ADMIN CANCEL DDL JOBS 3[, 4 …]` stops jobs (SUPER): the column keeps its old model and
//!   vectors; one result row per job, `successful` or TiDB's not-found text.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use crate::error::{Result, SqlError};
use crate::session::{Output, Session};
use crate::sql::catalog::Catalog;
use crate::sql::show::{finish, ShowTable};

fn text(v: impl Into<String>) -> ScalarValue {
    ScalarValue::Utf8(Some(v.into()))
}

fn int(v: i64) -> ScalarValue {
    ScalarValue::Int64(Some(v))
}

fn time(ms: u64) -> ScalarValue {
    text(chrono::DateTime::from_timestamp_millis(ms as i64).map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default())
}

impl Session {
    /// `ADMIN …` (`toks`: the statement's lower-case tokens). None: not a statement of ours.
    pub(crate) async fn admin_statement(&mut self, toks: &[String]) -> Result<Option<Output>> {
        let words: Vec<&str> = toks.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["admin", "show", "ddl", "jobs", ..] => self.show_ddl_jobs().await.map(Some),
            ["admin", "cancel", "ddl", "jobs", ids @ ..] if !ids.is_empty() => {
                self.require_global(crate::privileges::SUPER)?;
                let ids: Vec<i64> = ids
                    .iter()
                    .filter(|t| **t != ",")
                    .map(|t| t.trim_end_matches(',').parse::<i64>().map_err(|_| SqlError::syntax(format!("near '{t}'"))))
                    .collect::<Result<_>>()?;
                self.cancel_ddl_jobs(&ids).await.map(Some)
            }
            ["admin", what, ..] => Err(SqlError::unsupported(format!("ADMIN {} (ADMIN SHOW DDL JOBS and ADMIN CANCEL DDL JOBS are)", what.to_uppercase()))),
            _ => Ok(None),
        }
    }

    async fn show_ddl_jobs(&mut self) -> Result<Output> {
        use DataType::{Int64 as I, Utf8 as S};
        let txn = self.engine.store.begin()?;
        let mut jobs = Vec::new();
        for t in Catalog::new(&txn).every_table()? {
            let Some((m, c)) = crate::embed::model_change::progress(&txn, &t)? else { continue };
            let model = m.column.generated.as_ref().and_then(|g| crate::sql::ddl::embed_text_call(&g.expr)).map(|(spec, _)| spec).unwrap_or_default();
            let comment = format!(
                "column `{}` changing its embedding model to {model}: {} of {} rows embedded ({} pending, {} failed)",
                m.column.name,
                c.ready,
                c.pending + c.failed + c.ready,
                c.pending,
                c.failed
            );
            let state = if m.queued { "write reorganization" } else { "queueing" };
            let row = vec![
                int(m.job),
                text(&t.db),
                text(&t.name),
                text("modify column"),
                text(state),
                int(0),
                int(t.id),
                int(c.ready as i64),
                time(m.started_ms),
                time(m.started_ms),
                ScalarValue::Utf8(None),
                text("running"),
                text(comment),
            ];
            jobs.push((m.job, row));
        }
        txn.rollback();
        jobs.sort_by_key(|(job, _)| std::cmp::Reverse(*job));
        let headers = vec![
            ("JOB_ID", I),
            ("DB_NAME", S),
            ("TABLE_NAME", S),
            ("JOB_TYPE", S),
            ("SCHEMA_STATE", S),
            ("SCHEMA_ID", I),
            ("TABLE_ID", I),
            ("ROW_COUNT", I),
            ("CREATE_TIME", S),
            ("START_TIME", S),
            ("END_TIME", S),
            ("STATE", S),
            ("COMMENTS", S),
        ];
        finish(ShowTable { headers, dynamic_first: None, rows: jobs.into_iter().map(|(_, r)| r).collect() }, None, None, self).await
    }

    async fn cancel_ddl_jobs(&mut self, ids: &[i64]) -> Result<Output> {
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
            rows.push(vec![int(id), text(result)]);
        }
        finish(ShowTable { headers: vec![("JOB_ID", DataType::Int64), ("RESULT", DataType::Utf8)], dynamic_first: None, rows }, None, None, self).await
    }
}
