//! The bridge from a statement's transaction to DataFusion's catalog traits.
//!
//! DataFusion asks "which table is `test.docs`?" through `CatalogProviderList → CatalogProvider →
//! SchemaProvider → TableProvider`. Every statement installs a fresh `TxnCatalogList` bound to the
//! transaction it runs in, so planning and scanning see exactly the rows and schema that transaction
//! sees. Databases are DataFusion schemas of the single catalog `def` (MySQL's catalog name).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;
use embedb_storage::Txn;

use crate::error::to_df;
use crate::sql::catalog::Catalog;
use crate::sql::infoschema;
use crate::storage::table::KvTable;

pub const CATALOG: &str = "def";

/// What a statement's planning needs to know beyond the transaction.
#[derive(Clone, Default)]
pub struct PlanScope {
    /// `(db, table)` whose provider should expose the hidden handle column (UPDATE/DELETE targets).
    pub dml_target: Option<(String, String)>,
    /// The session's current database, for `information_schema` views that depend on it.
    pub current_db: Option<String>,
    /// Source of `information_schema.EMBEDDING_USAGE`.
    pub embedder: Option<Arc<crate::embed::Embedder>>,
    /// `(db, table)`s whose hidden row id `FTS_MATCH_WORD` reads (tables without an integer key).
    pub handle_tables: Vec<(String, String)>,
    /// Source of `information_schema.PROCESSLIST`.
    pub stats: Option<Arc<crate::stats::ServerStats>>,
    /// Source of `information_schema.TIFLASH_INDEXES`.
    pub search: Option<Arc<crate::index::search::SearchIndexes>>,
    /// Source of `information_schema.CLUSTER_INFO` (None on a single node).
    pub cluster: Option<Arc<dyn crate::sql::infoschema::ClusterView>>,
    /// `USE/FORCE/IGNORE INDEX` hints by `(db, table)`, lower case.
    pub index_hints: Vec<((String, String), crate::storage::access::IndexHints)>,
    /// A restricted session's privileges: `information_schema` shows only what they reach.
    pub visibility: Option<Arc<crate::privileges::Privileges>>,
    /// Source of `performance_schema`'s tables: filled only when the statement names it.
    pub perf: Option<Arc<crate::sql::perf_schema::PerfData>>,
}

pub struct TxnCatalogList {
    txn: Arc<Txn>,
    scope: PlanScope,
}

impl TxnCatalogList {
    pub fn new(txn: Arc<Txn>, scope: PlanScope) -> Self {
        TxnCatalogList { txn, scope }
    }
}

impl fmt::Debug for TxnCatalogList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TxnCatalogList")
    }
}

impl CatalogProviderList for TxnCatalogList {
    fn register_catalog(&self, _name: String, _catalog: Arc<dyn CatalogProvider>) -> Option<Arc<dyn CatalogProvider>> {
        None
    }
    fn catalog_names(&self) -> Vec<String> {
        vec![CATALOG.to_string()]
    }
    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        if name == CATALOG {
            Some(Arc::new(TxnCatalog { txn: self.txn.clone(), scope: self.scope.clone() }))
        } else {
            None
        }
    }
}

struct TxnCatalog {
    txn: Arc<Txn>,
    scope: PlanScope,
}

impl fmt::Debug for TxnCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TxnCatalog")
    }
}

impl CatalogProvider for TxnCatalog {
    fn schema_names(&self) -> Vec<String> {
        let cat = Catalog::new(&self.txn);
        let mut names: Vec<String> = cat.databases().unwrap_or_default().into_iter().map(|d| d.name.to_lowercase()).collect();
        names.push("information_schema".into());
        names.push("mysql".into());
        names.push("performance_schema".into());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name.eq_ignore_ascii_case("information_schema") {
            return Some(Arc::new(infoschema::InfoSchema::new(self.txn.clone(), self.scope.clone())));
        }
        if name.eq_ignore_ascii_case("mysql") {
            return Some(Arc::new(crate::sql::mysql_schema::MysqlSchema::new(self.txn.clone())));
        }
        if name.eq_ignore_ascii_case("performance_schema") {
            return Some(Arc::new(crate::sql::perf_schema::PerfSchema::new(self.scope.perf.clone())));
        }
        let cat = Catalog::new(&self.txn);
        match cat.database(name) {
            Ok(Some(_)) => Some(Arc::new(DbSchema { txn: self.txn.clone(), db: name.to_string(), scope: self.scope.clone() })),
            _ => None,
        }
    }
}

struct DbSchema {
    txn: Arc<Txn>,
    db: String,
    scope: PlanScope,
}

impl fmt::Debug for DbSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbSchema({})", self.db)
    }
}

#[async_trait]
impl SchemaProvider for DbSchema {
    fn table_names(&self) -> Vec<String> {
        let tables = Catalog::new(&self.txn).tables(&self.db).unwrap_or_default();
        tables.into_iter().filter(|t| !crate::session::temporary::is_hidden(&t.name)).map(|t| t.name.to_lowercase()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(info) = Catalog::new(&self.txn).table(&self.db, name).map_err(to_df)? else { return Ok(None) };
        let is = |(d, t): &(String, String)| d.eq_ignore_ascii_case(&self.db) && t.eq_ignore_ascii_case(name);
        let with_handle = self.scope.dml_target.as_ref().is_some_and(is) || self.scope.handle_tables.iter().any(is);
        let mut table = KvTable::new(info, self.txn.clone(), with_handle);
        if let Some((_, hints)) = self.scope.index_hints.iter().find(|(k, _)| is(k)) {
            if let Some(unknown) = hints.names().find(|n| !n.eq_ignore_ascii_case("primary") && !table.info.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(n))) {
                return Err(to_df(crate::error::SqlError::new(1176, "42000", format!("Key '{unknown}' doesn't exist in table '{}'", table.info.name))));
            }
            table.hints = hints.clone();
        }
        Ok(Some(Arc::new(table) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        Catalog::new(&self.txn).table(&self.db, name).ok().flatten().is_some()
    }
}
