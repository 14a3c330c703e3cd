//! A minimal `performance_schema`: the four tables that connectors and GUI tools read on
//! connect — `session_variables`, `global_variables`, `session_status`, `global_status`
//! (`VARIABLE_NAME`, `VARIABLE_VALUE`). The session fills [`PerfData`] only for statements that
//! name the schema (one look at the statement's text), so other statements pay nothing.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;

pub const TABLES: &[&str] = &["session_variables", "global_variables", "session_status", "global_status"];

/// Whether `performance_schema.<name>` is served here.
pub fn has_table(name: &str) -> bool {
    TABLES.contains(&name.to_lowercase().as_str())
}

/// The session's and the server's variables and status, as of the statement's start.
#[derive(Debug, Default)]
pub struct PerfData {
    pub session_variables: Vec<(String, String)>,
    pub global_variables: Vec<(String, String)>,
    /// One server-wide set of counters: SESSION and GLOBAL status show the same (as SHOW STATUS here).
    pub status: Vec<(String, String)>,
}

pub struct PerfSchema {
    data: Arc<PerfData>,
}

impl PerfSchema {
    pub fn new(data: Option<Arc<PerfData>>) -> Self {
        PerfSchema { data: data.unwrap_or_default() }
    }
}

impl fmt::Debug for PerfSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PerfSchema")
    }
}

#[async_trait]
impl SchemaProvider for PerfSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let rows = match name.to_lowercase().as_str() {
            "session_variables" => &self.data.session_variables,
            "global_variables" => &self.data.global_variables,
            "session_status" | "global_status" => &self.data.status,
            _ => return Ok(None),
        };
        // Lower-case names with MySQL's upper-case headers, text compared case-insensitively,
        // as information_schema's columns are.
        let field = |n: &str| {
            Field::new(n.to_lowercase(), DataType::Utf8, true).with_metadata(std::collections::HashMap::from([
                (crate::sql::infoschema::UPPER_NAME_META.to_string(), n.to_string()),
                (crate::sql::collation::COLLATION_META.to_string(), "utf8mb4_general_ci".to_string()),
            ]))
        };
        let schema = Arc::new(Schema::new(vec![field("VARIABLE_NAME"), field("VARIABLE_VALUE")]));
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0.as_str())));
        let values: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str())));
        let batch = RecordBatch::try_new(schema.clone(), vec![names, values])?;
        Ok(Some(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        has_table(name)
    }
}
