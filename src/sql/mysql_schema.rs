//! The `mysql` schema's grant tables, read-only and built from the stored accounts
//! (`crate::privileges::store`) for the statement that reads them: `user`, `db`, `tables_priv`
//! and `global_grants`, with MySQL's columns, so that admin tools that list users find them.
//! Reading them needs SELECT on `mysql` (an admin's grant), as in MySQL; they change only
//! through CREATE USER, GRANT and the other account statements.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use embedb_storage::Txn;

use crate::error::{to_df, Result, SqlError};
use crate::privileges::{self as p, Account, Privs};

const TABLES: &[&str] = &["user", "db", "tables_priv", "global_grants"];

/// Whether `mysql.<name>` is one of the tables served here.
pub fn has_table(name: &str) -> bool {
    TABLES.contains(&name.to_lowercase().as_str())
}

pub struct MysqlSchema {
    txn: Arc<Txn>,
}

impl MysqlSchema {
    pub fn new(txn: Arc<Txn>) -> Self {
        MysqlSchema { txn }
    }
}

impl fmt::Debug for MysqlSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MysqlSchema")
    }
}

#[async_trait]
impl SchemaProvider for MysqlSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let n = name.to_lowercase();
        if !TABLES.contains(&n.as_str()) {
            return Ok(None);
        }
        let accounts = p::store::load(&self.txn).map_err(to_df)?;
        Ok(Some(Arc::new(build(&n, &accounts).map_err(to_df)?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name.to_lowercase().as_str())
    }
}

/// A cell: text or a number.
enum V {
    S(String),
    I(i64),
}

/// MySQL's `Y`/`N` columns of the user and db tables, by privilege.
const USER_COLUMNS: &[(&str, Privs)] = &[
    ("Select_priv", p::SELECT),
    ("Insert_priv", p::INSERT),
    ("Update_priv", p::UPDATE),
    ("Delete_priv", p::DELETE),
    ("Create_priv", p::CREATE),
    ("Drop_priv", p::DROP),
    ("Reload_priv", p::RELOAD),
    ("Shutdown_priv", p::SHUTDOWN),
    ("Process_priv", p::PROCESS),
    ("File_priv", p::FILE),
    ("Grant_priv", p::GRANT_OPTION),
    ("References_priv", p::REFERENCES),
    ("Index_priv", p::INDEX),
    ("Alter_priv", p::ALTER),
    ("Show_db_priv", p::SHOW_DATABASES),
    ("Super_priv", p::SUPER),
    ("Create_tmp_table_priv", p::CREATE_TEMPORARY_TABLES),
    ("Lock_tables_priv", p::LOCK_TABLES),
    ("Execute_priv", p::EXECUTE),
    ("Repl_slave_priv", p::REPLICATION_SLAVE),
    ("Repl_client_priv", p::REPLICATION_CLIENT),
    ("Create_view_priv", p::CREATE_VIEW),
    ("Show_view_priv", p::SHOW_VIEW),
    ("Create_routine_priv", p::CREATE_ROUTINE),
    ("Alter_routine_priv", p::ALTER_ROUTINE),
    ("Create_user_priv", p::CREATE_USER),
    ("Event_priv", p::EVENT),
    ("Trigger_priv", p::TRIGGER),
    ("Create_tablespace_priv", p::CREATE_TABLESPACE),
];

fn yn(privs: Privs, bit: Privs) -> V {
    V::S(if privs & bit != 0 { "Y" } else { "N" }.into())
}

fn build(table: &str, accounts: &[Account]) -> Result<MemTable> {
    let s = |v: &str| V::S(v.to_string());
    let (headers, rows): (Vec<&str>, Vec<Vec<V>>) = match table {
        "user" => {
            let mut h = vec!["Host", "User"];
            h.extend(USER_COLUMNS.iter().map(|(n, _)| *n));
            h.extend(["max_user_connections", "plugin", "authentication_string", "account_locked"]);
            let rows = accounts
                .iter()
                .map(|a| {
                    let mut r = vec![s(&a.host), s(&a.user)];
                    r.extend(USER_COLUMNS.iter().map(|(_, bit)| yn(a.global, *bit)));
                    r.extend([V::I(a.max_user_connections.into()), s(p::NATIVE_PLUGIN), s(&a.native_hash), s(if a.locked { "Y" } else { "N" })]);
                    r
                })
                .collect();
            (h, rows)
        }
        "db" => {
            let level: Vec<&(&str, Privs)> = USER_COLUMNS.iter().filter(|(_, bit)| (p::ALL_DB | p::GRANT_OPTION) & bit != 0).collect();
            let mut h = vec!["Host", "Db", "User"];
            h.extend(level.iter().map(|(n, _)| *n));
            let mut rows = Vec::new();
            for a in accounts {
                for (db, privs) in &a.dbs {
                    let mut r = vec![s(&a.host), s(db), s(&a.user)];
                    r.extend(level.iter().map(|(_, bit)| yn(*privs, *bit)));
                    rows.push(r);
                }
            }
            (h, rows)
        }
        "tables_priv" => {
            let mut rows = Vec::new();
            for a in accounts {
                for (key, privs) in &a.tables {
                    let (db, t) = key.split_once('\0').unwrap_or(("", key));
                    let names: Vec<&str> = p::NAMES
                        .iter()
                        .filter(|(bit, _)| privs & bit != 0)
                        .map(|(bit, n)| if *bit == p::GRANT_OPTION { "Grant" } else { n })
                        .collect();
                    rows.push(vec![s(&a.host), s(db), s(&a.user), s(t), s(""), s(&names.join(",")), s("")]);
                }
            }
            (vec!["Host", "Db", "User", "Table_name", "Grantor", "Table_priv", "Column_priv"], rows)
        }
        _ => {
            let mut rows = Vec::new();
            for a in accounts {
                for (bit, name) in p::NAMES {
                    if p::DYNAMIC & bit != 0 && a.global & bit != 0 {
                        rows.push(vec![s(&a.user), s(&a.host), s(name), s(if a.global & p::GRANT_OPTION != 0 { "Y" } else { "N" })]);
                    }
                }
            }
            (vec!["USER", "HOST", "PRIV", "WITH_GRANT_OPTION"], rows)
        }
    };
    let fields: Vec<Field> = headers
        .iter()
        .enumerate()
        .map(|(k, h)| {
            let number = rows.first().is_some_and(|r| matches!(r[k], V::I(_))) || *h == "max_user_connections";
            let md = std::collections::HashMap::from([(crate::sql::show::NAME_META.to_string(), h.to_string())]);
            Field::new(h.to_lowercase(), if number { DataType::Int64 } else { DataType::Utf8 }, true).with_metadata(md)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let columns: Vec<ArrayRef> = (0..headers.len())
        .map(|k| -> ArrayRef {
            if schema.field(k).data_type() == &DataType::Int64 {
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| match &r[k] {
                    V::I(i) => Some(*i),
                    V::S(_) => None,
                })))
            } else {
                Arc::new(StringArray::from_iter(rows.iter().map(|r| match &r[k] {
                    V::S(v) => Some(v.clone()),
                    V::I(i) => Some(i.to_string()),
                })))
            }
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| SqlError::other(e.to_string()))?;
    MemTable::try_new(schema, vec![vec![batch]]).map_err(SqlError::from)
}
