//! The catalog: databases, tables, columns and indexes, stored as JSON in the same transactional KV
//! as the rows, under `m`-prefixed keys (TiDB keeps its schema in the KV too). Reading it through a
//! transaction means a statement sees one consistent schema, and DDL is atomic with the data it
//! touches (e.g. DROP TABLE removes the definition and the rows in one commit).
//!
//! Keys:
//! - `mDB:{db}`            → `DatabaseInfo`
//! - `mTB:{db}\0{table}`   → `TableInfo`
//! - `mVW:{db}\0{view}`    → `ViewInfo` (`sql::view`)
//! - `mGV:{variable}`      → a persisted global system variable
//! - `mUS:{user}\0{host}`  → a user account and its grants (`crate::privileges::store`)
//!
//! Names are compared case-insensitively (TiDB's `lower_case_table_names = 2`): keys use the
//! lower-cased name, the info keeps the name as the user wrote it.

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use embedb_storage::Txn;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::error::{Result, SqlError};
use crate::sql::types::SqlType;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatabaseInfo {
    pub name: String,
    /// Default collation of the tables created in it ("" = TiDB's default).
    #[serde(default)]
    pub collation: String,
}

impl DatabaseInfo {
    /// The database's default collation.
    pub fn collation(&self) -> &str {
        if self.collation.is_empty() { crate::sql::collation::DEFAULT } else { &self.collation }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Generated {
    /// The expression as SQL text, e.g. `CONCAT(a, b)` or `EMBED_TEXT('local/…', content)`.
    pub expr: String,
    pub stored: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub id: u32,
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
    /// DEFAULT as SQL text (`NULL`, `'abc'`, `CURRENT_TIMESTAMP`, …).
    pub default: Option<String>,
    pub auto_increment: bool,
    pub generated: Option<Generated>,
    #[serde(default)]
    pub on_update_current_timestamp: bool,
    #[serde(default)]
    pub comment: String,
    /// `COLLATE` of a text column, when the column says; else the table's.
    #[serde(default)]
    pub collation: Option<String>,
}

impl ColumnInfo {
    /// An `EMBED_TEXT` column that chunks long texts: its value is one vector per chunk, one
    /// after another (`embed::chunk`).
    pub fn is_chunked(&self) -> bool {
        self.generated.as_ref().is_some_and(|g| crate::sql::ddl::embed_chunked(&g.expr))
    }

    /// A column with no default, generation, comment or collation of its own.
    pub fn plain(id: u32, name: &str, ty: SqlType, nullable: bool) -> ColumnInfo {
        ColumnInfo {
            id,
            name: name.to_string(),
            ty,
            nullable,
            default: None,
            auto_increment: false,
            generated: None,
            on_update_current_timestamp: false,
            comment: String::new(),
            collation: None,
        }
    }

    /// The name DataFusion sees (identifiers are normalised to lower case).
    pub fn key(&self) -> String {
        self.name.to_lowercase()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum IndexKind {
    /// An ordinary ordered index (PRIMARY, UNIQUE, KEY).
    Btree,
    /// An ANN index over a vector column (HNSW); `metric` is `cosine` or `l2`.
    Vector { metric: String },
    /// A full-text index; `parser` is STANDARD, MULTILINGUAL or NGRAM.
    Fulltext { parser: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexInfo {
    pub id: i64,
    pub name: String,
    /// Lower-cased column names.
    pub columns: Vec<String>,
    pub unique: bool,
    pub primary: bool,
    pub kind: IndexKind,
    #[serde(default)]
    pub comment: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TableInfo {
    pub id: i64,
    pub db: String,
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub indexes: Vec<IndexInfo>,
    /// When the primary key is one integer column its value is the row handle (TiDB's "int handle"),
    /// so a primary-key lookup is a single KV get. Otherwise rows get a hidden `_tidb_rowid`.
    pub pk_handle: Option<String>,
    pub next_column_id: u32,
    pub next_index_id: i64,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub tiflash_replica: u64,
    #[serde(default)]
    pub create_time: String,
    /// The table's default collation for text columns ("" = TiDB's default, utf8mb4_bin).
    #[serde(default)]
    pub collation: String,
    /// Foreign keys of this (child) table.
    #[serde(default)]
    pub foreign_keys: Vec<crate::sql::foreign_key::ForeignKeyInfo>,
    /// An `EMBED_TEXT` column changing its model in the background (`embed::model_change`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_change: Option<ModelChange>,
    /// `arrow_schema`, made once per decoded catalog entry and shared by its clones (see
    /// `catalog_arrow_schema`).
    #[serde(skip)]
    pub(crate) arrow: Arc<std::sync::OnceLock<SchemaRef>>,
}

/// An online change of an `EMBED_TEXT` column's model, options or dimension
/// (`ALTER TABLE … MODIFY COLUMN`): the new vectors are embedded in the background under a
/// shadow column id (the backlog's, never a column of the row) until the switch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelChange {
    /// The job's number (`ADMIN SHOW DDL JOBS`, `ADMIN CANCEL DDL JOBS`).
    pub job: i64,
    /// The column as it will be after the switch (same id, name and place; new type and
    /// expression).
    pub column: ColumnInfo,
    /// The backlog's id for the new vectors while they are made.
    pub shadow_id: u32,
    /// When the change began (ms since the epoch).
    pub started_ms: u64,
    /// Every new vector is made and the switch is under way: row writes wait (they fail with a
    /// write conflict that autocommit statements retry once the switch is done).
    #[serde(default)]
    pub switching: bool,
    /// Every row's text is queued (the ALTER's second step); until then the job cannot switch.
    #[serde(default = "yes")]
    pub queued: bool,
}

fn yes() -> bool {
    true
}

impl TableInfo {
    /// The table's default collation.
    pub fn collation(&self) -> &str {
        if self.collation.is_empty() { crate::sql::collation::DEFAULT } else { &self.collation }
    }
    /// A text column's collation (None for other types).
    pub fn column_collation(&self, c: &ColumnInfo) -> Option<String> {
        if !c.ty.is_text() {
            return None;
        }
        Some(c.collation.clone().unwrap_or_else(|| self.collation().to_string()))
    }
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        let n = name.to_lowercase();
        self.columns.iter().find(|c| c.key() == n)
    }
    pub fn column_index(&self, name: &str) -> Option<usize> {
        let n = name.to_lowercase();
        self.columns.iter().position(|c| c.key() == n)
    }
    /// The `EMBED_TEXT` columns in async mode (`"embedb.mode": "async"`): (position, column id).
    pub fn async_embed_columns(&self) -> Vec<(usize, u32)> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.generated.as_ref().is_some_and(|g| crate::sql::ddl::embed_mode(&g.expr) == crate::embed::Mode::Async))
            .map(|(i, c)| (i, c.id))
            .collect()
    }

    /// The column ids the backlog may hold entries of for this table's rows: its async columns,
    /// and the shadow of a model change.
    pub fn queued_column_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.async_embed_columns().into_iter().map(|(_, id)| id).collect();
        ids.extend(self.model_change.as_ref().map(|m| m.shadow_id));
        ids
    }

    /// Positions of the `EMBED_TEXT` columns that chunk long texts (one vector per chunk).
    pub fn chunked_columns(&self) -> Vec<usize> {
        self.columns.iter().enumerate().filter(|(_, c)| c.is_chunked()).map(|(i, _)| i).collect()
    }

    pub fn auto_increment_column(&self) -> Option<usize> {
        self.columns.iter().position(|c| c.auto_increment)
    }
    pub fn primary(&self) -> Option<&IndexInfo> {
        self.indexes.iter().find(|i| i.primary)
    }
    /// The Arrow schema DataFusion plans against.
    /// `arrow_schema` of a table as the catalog holds it, made once per catalog entry: only for
    /// a `TableInfo` read from the catalog and not changed since (a clone changed by DDL would
    /// share the old one), which is what read paths like `point_get` have.
    pub fn catalog_arrow_schema(&self) -> SchemaRef {
        self.arrow.get_or_init(|| self.arrow_schema()).clone()
    }

    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| {
                    let f = c.ty.field(&c.key(), c.nullable);
                    let mut md = f.metadata().clone();
                    md.insert(crate::sql::types::DB_META.into(), self.db.clone());
                    md.insert(crate::sql::types::TABLE_META.into(), self.name.clone());
                    md.insert(crate::sql::types::COLUMN_META.into(), c.name.clone());
                    if let Some(coll) = self.column_collation(c).filter(|x| crate::sql::collation::is_ci(x)) {
                        md.insert(crate::sql::collation::COLLATION_META.into(), coll);
                    }
                    f.with_metadata(md)
                })
                .collect::<Vec<_>>(),
        ))
    }
    /// Indexes whose entries live in the KV (ordered indexes other than an int-handle primary key).
    pub fn kv_indexes(&self) -> impl Iterator<Item = &IndexInfo> {
        self.indexes
            .iter()
            .filter(move |i| i.kind == IndexKind::Btree && !(i.primary && self.pk_handle.is_some()))
    }
    /// Counter name for this table's row ids / auto-increment values.
    /// The catalog key of this table's definition (a row write guards it: `Txn::guard`).
    pub fn def_key(&self) -> Vec<u8> {
        table_key(&self.db, &self.name)
    }

    pub fn id_counter(&self) -> Vec<u8> {
        format!("autoid:{}", self.id).into_bytes()
    }
}

fn db_key(db: &str) -> Vec<u8> {
    format!("mDB:{}", db.to_lowercase()).into_bytes()
}
fn table_key(db: &str, table: &str) -> Vec<u8> {
    let mut k = format!("mTB:{}", db.to_lowercase()).into_bytes();
    k.push(0);
    k.extend_from_slice(table.to_lowercase().as_bytes());
    k
}
fn table_prefix(db: &str) -> Vec<u8> {
    let mut k = format!("mTB:{}", db.to_lowercase()).into_bytes();
    k.push(0);
    k
}
fn view_key(db: &str, view: &str) -> Vec<u8> {
    let mut k = view_prefix(db);
    k.extend_from_slice(view.to_lowercase().as_bytes());
    k
}
fn view_prefix(db: &str) -> Vec<u8> {
    let mut k = format!("mVW:{}", db.to_lowercase()).into_bytes();
    k.push(0);
    k
}
/// Key prefix of table definitions.
pub const TABLE_DEF_PREFIX: &[u8] = b"mTB:";

/// Key prefix of the persisted global variables.
pub const GLOBAL_VAR_PREFIX: &[u8] = b"mGV:";

fn global_key(name: &str) -> Vec<u8> {
    format!("mGV:{}", name.to_lowercase()).into_bytes()
}

/// 3552 for DDL in a schema the server builds itself (`mysql`, `information_schema`,
/// `performance_schema`).
pub fn system_schema_guard(db: &str) -> Result<()> {
    if ["mysql", "information_schema", "performance_schema"].iter().any(|s| db.eq_ignore_ascii_case(s)) {
        return Err(SqlError::new(3552, "HY000", format!("Access to system schema '{}' is rejected.", db.to_lowercase())));
    }
    Ok(())
}

fn corrupt(e: serde_json::Error) -> SqlError {
    SqlError::other(format!("catalog entry is corrupt: {e}"))
}

/// Catalog operations over one transaction.
pub struct Catalog<'a> {
    pub txn: &'a Txn,
}

impl<'a> Catalog<'a> {
    pub fn new(txn: &'a Txn) -> Self {
        Catalog { txn }
    }

    pub fn database(&self, db: &str) -> Result<Option<DatabaseInfo>> {
        if db.eq_ignore_ascii_case("information_schema") {
            return Ok(Some(DatabaseInfo { name: "INFORMATION_SCHEMA".into(), collation: "utf8_general_ci".into() }));
        }
        if db.eq_ignore_ascii_case("mysql") {
            return Ok(Some(DatabaseInfo { name: "mysql".into(), collation: String::new() }));
        }
        if db.eq_ignore_ascii_case("performance_schema") {
            return Ok(Some(DatabaseInfo { name: "performance_schema".into(), collation: String::new() }));
        }
        self.entry(&db_key(db))
    }

    pub fn databases(&self) -> Result<Vec<DatabaseInfo>> {
        self.entries(b"mDB:".to_vec())
    }

    /// The catalog entry at `key`, decoded.
    fn entry<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.txn.get(key)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(corrupt)?)),
            None => Ok(None),
        }
    }

    /// Every catalog entry under `prefix`, decoded, in key order.
    fn entries<T: serde::de::DeserializeOwned>(&self, prefix: Vec<u8>) -> Result<Vec<T>> {
        let end = embedb_storage::codec::prefix_end(&prefix);
        let rows = self.txn.scan(&prefix, &end, usize::MAX, false)?;
        rows.iter().map(|(_, v)| serde_json::from_slice(v).map_err(corrupt)).collect()
    }

    pub fn create_database(&self, db: &str) -> Result<()> {
        self.create_database_with(db, "")
    }

    pub fn create_database_with(&self, db: &str, collation: &str) -> Result<()> {
        let info = DatabaseInfo { name: db.to_string(), collation: collation.to_string() };
        self.txn.put(db_key(db), serde_json::to_vec(&info).unwrap());
        Ok(())
    }

    pub fn drop_database(&self, db: &str) -> Result<Vec<TableInfo>> {
        let tables = self.tables(db)?;
        for t in &tables {
            self.txn.delete(table_key(db, &t.name));
        }
        for v in self.views(db)? {
            self.delete_view(db, &v.name);
        }
        self.txn.delete(db_key(db));
        Ok(tables)
    }

    /// Decoded entries are cached by their stored bytes (every statement reads its tables'
    /// entries; decoding the JSON cost more than the rest of a point select's planning), so a
    /// changed entry is never served stale.
    pub fn table(&self, db: &str, table: &str) -> Result<Option<TableInfo>> {
        static DECODED: crate::sql::memo::Memo<Vec<u8>, TableInfo> = crate::sql::memo::Memo::new(1024);
        let Some(bytes) = self.txn.get(&table_key(db, table))? else { return Ok(None) };
        DECODED.get_or_try(bytes.as_slice(), || serde_json::from_slice(&bytes).map_err(corrupt)).map(Some)
    }

    /// The table or MySQL's 1146 (1347 when it is a view: views are read-only here, as in TiDB).
    pub fn must_table(&self, db: &str, table: &str) -> Result<TableInfo> {
        match self.table(db, table)? {
            Some(t) => Ok(t),
            None if self.view(db, table)?.is_some() => Err(crate::sql::view::not_base_table(db, table)),
            None => Err(SqlError::no_such_table(db, table)),
        }
    }

    pub fn view(&self, db: &str, view: &str) -> Result<Option<crate::sql::view::ViewInfo>> {
        self.entry(&view_key(db, view))
    }

    pub fn views(&self, db: &str) -> Result<Vec<crate::sql::view::ViewInfo>> {
        self.entries(view_prefix(db))
    }

    pub fn put_view(&self, v: &crate::sql::view::ViewInfo) {
        self.txn.put(view_key(&v.db, &v.name), serde_json::to_vec(v).unwrap());
    }

    pub fn delete_view(&self, db: &str, view: &str) {
        self.txn.delete(view_key(db, view));
    }

    pub fn tables(&self, db: &str) -> Result<Vec<TableInfo>> {
        self.entries(table_prefix(db))
    }

    /// Every table of every database (hidden temporary tables included).
    pub fn every_table(&self) -> Result<Vec<TableInfo>> {
        let mut out = Vec::new();
        for db in self.databases()? {
            out.extend(self.tables(&db.name)?);
        }
        Ok(out)
    }

    pub fn put_table(&self, t: &TableInfo) -> Result<()> {
        system_schema_guard(&t.db)?;
        self.txn.put(table_key(&t.db, &t.name), serde_json::to_vec(t).unwrap());
        Ok(())
    }

    pub fn delete_table(&self, db: &str, table: &str) {
        self.txn.delete(table_key(db, table));
    }

    pub fn global_var(&self, name: &str) -> Result<Option<String>> {
        Ok(self.txn.get(&global_key(name))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Persisted global variables, their values as stored (secrets sealed: `crate::secrets`).
    pub fn global_vars(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let start = b"mGV:".to_vec();
        let end = embedb_storage::codec::prefix_end(&start);
        Ok(self
            .txn
            .scan(&start, &end, usize::MAX, false)?
            .into_iter()
            .map(|(k, v)| {
                (String::from_utf8_lossy(&k[4..]).into_owned(), v)
            })
            .collect())
    }

    pub fn set_global_var(&self, name: &str, value: &[u8]) {
        self.txn.put(global_key(name), value.to_vec());
    }
}
