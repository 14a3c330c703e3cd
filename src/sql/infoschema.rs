//! `information_schema`: read-only views built from the catalog when a query names them, with the
//! columns MySQL/TiDB define (upper-case names, as clients and SQLAlchemy's reflection expect).
//! Each view is materialised as an in-memory table for the one statement that reads it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use embedb_storage::Txn;

use crate::error::{to_df, Result, SqlError};
use crate::sql::catalog::{Catalog, IndexKind, TableInfo};
use crate::sql::context::PlanScope;

pub struct InfoSchema {
    txn: Arc<Txn>,
    scope: PlanScope,
}

impl InfoSchema {
    pub fn new(txn: Arc<Txn>, scope: PlanScope) -> Self {
        InfoSchema { txn, scope }
    }
}

impl fmt::Debug for InfoSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InfoSchema")
    }
}

const VIEWS: &[&str] = &[
    "views",
    "schemata",
    "tables",
    "columns",
    "statistics",
    "key_column_usage",
    "tiflash_replica",
    "referential_constraints",
    "engines",
    "character_sets",
    "collations",
    "embedding_usage",
    "embedding_backlog",
    "embedding_backlog_rows",
    "tiflash_indexes",
    "table_constraints",
    "check_constraints",
    "user_privileges",
    "processlist",
    "cluster_info",
];

/// Object kinds this server does not have (stored routines, triggers, events, partitions,
/// tablespace files, grants): MySQL's tables with MySQL's columns and no rows, so that the tools
/// that read them (mysqldump, DBeaver, Workbench, JDBC metadata) get an answer instead of 1109.
const EMPTY_VIEWS: &[(&str, &[&str])] = &[
    ("routines", &["SPECIFIC_NAME", "ROUTINE_CATALOG", "ROUTINE_SCHEMA", "ROUTINE_NAME", "ROUTINE_TYPE", "DATA_TYPE", "CHARACTER_MAXIMUM_LENGTH", "CHARACTER_OCTET_LENGTH", "NUMERIC_PRECISION", "NUMERIC_SCALE", "DATETIME_PRECISION", "CHARACTER_SET_NAME", "COLLATION_NAME", "DTD_IDENTIFIER", "ROUTINE_BODY", "ROUTINE_DEFINITION", "EXTERNAL_NAME", "EXTERNAL_LANGUAGE", "PARAMETER_STYLE", "IS_DETERMINISTIC", "SQL_DATA_ACCESS", "SQL_PATH", "SECURITY_TYPE", "CREATED", "LAST_ALTERED", "SQL_MODE", "ROUTINE_COMMENT", "DEFINER", "CHARACTER_SET_CLIENT", "COLLATION_CONNECTION", "DATABASE_COLLATION"]),
    ("parameters", &["SPECIFIC_CATALOG", "SPECIFIC_SCHEMA", "SPECIFIC_NAME", "ORDINAL_POSITION", "PARAMETER_MODE", "PARAMETER_NAME", "DATA_TYPE", "CHARACTER_MAXIMUM_LENGTH", "CHARACTER_OCTET_LENGTH", "NUMERIC_PRECISION", "NUMERIC_SCALE", "DATETIME_PRECISION", "CHARACTER_SET_NAME", "COLLATION_NAME", "DTD_IDENTIFIER", "ROUTINE_TYPE"]),
    ("triggers", &["TRIGGER_CATALOG", "TRIGGER_SCHEMA", "TRIGGER_NAME", "EVENT_MANIPULATION", "EVENT_OBJECT_CATALOG", "EVENT_OBJECT_SCHEMA", "EVENT_OBJECT_TABLE", "ACTION_ORDER", "ACTION_CONDITION", "ACTION_STATEMENT", "ACTION_ORIENTATION", "ACTION_TIMING", "ACTION_REFERENCE_OLD_TABLE", "ACTION_REFERENCE_NEW_TABLE", "ACTION_REFERENCE_OLD_ROW", "ACTION_REFERENCE_NEW_ROW", "CREATED", "SQL_MODE", "DEFINER", "CHARACTER_SET_CLIENT", "COLLATION_CONNECTION", "DATABASE_COLLATION"]),
    ("events", &["EVENT_CATALOG", "EVENT_SCHEMA", "EVENT_NAME", "DEFINER", "TIME_ZONE", "EVENT_BODY", "EVENT_DEFINITION", "EVENT_TYPE", "EXECUTE_AT", "INTERVAL_VALUE", "INTERVAL_FIELD", "SQL_MODE", "STARTS", "ENDS", "STATUS", "ON_COMPLETION", "CREATED", "LAST_ALTERED", "LAST_EXECUTED", "EVENT_COMMENT", "ORIGINATOR", "CHARACTER_SET_CLIENT", "COLLATION_CONNECTION", "DATABASE_COLLATION"]),
    ("partitions", &["TABLE_CATALOG", "TABLE_SCHEMA", "TABLE_NAME", "PARTITION_NAME", "SUBPARTITION_NAME", "PARTITION_ORDINAL_POSITION", "SUBPARTITION_ORDINAL_POSITION", "PARTITION_METHOD", "SUBPARTITION_METHOD", "PARTITION_EXPRESSION", "SUBPARTITION_EXPRESSION", "PARTITION_DESCRIPTION", "TABLE_ROWS", "AVG_ROW_LENGTH", "DATA_LENGTH", "MAX_DATA_LENGTH", "INDEX_LENGTH", "DATA_FREE", "CREATE_TIME", "UPDATE_TIME", "CHECK_TIME", "CHECKSUM", "PARTITION_COMMENT", "NODEGROUP", "TABLESPACE_NAME"]),
    ("files", &["FILE_ID", "FILE_NAME", "FILE_TYPE", "TABLESPACE_NAME", "TABLE_CATALOG", "TABLE_SCHEMA", "TABLE_NAME", "LOGFILE_GROUP_NAME", "LOGFILE_GROUP_NUMBER", "ENGINE", "FULLTEXT_KEYS", "DELETED_ROWS", "UPDATE_COUNT", "FREE_EXTENTS", "TOTAL_EXTENTS", "EXTENT_SIZE", "INITIAL_SIZE", "MAXIMUM_SIZE", "AUTOEXTEND_SIZE", "CREATION_TIME", "LAST_UPDATE_TIME", "LAST_ACCESS_TIME", "RECOVER_TIME", "TRANSACTION_COUNTER", "VERSION", "ROW_FORMAT", "TABLE_ROWS", "AVG_ROW_LENGTH", "DATA_LENGTH", "MAX_DATA_LENGTH", "INDEX_LENGTH", "DATA_FREE", "CREATE_TIME", "UPDATE_TIME", "CHECK_TIME", "CHECKSUM", "STATUS", "EXTRA"]),
    ("schema_privileges", &["GRANTEE", "TABLE_CATALOG", "TABLE_SCHEMA", "PRIVILEGE_TYPE", "IS_GRANTABLE"]),
    ("table_privileges", &["GRANTEE", "TABLE_CATALOG", "TABLE_SCHEMA", "TABLE_NAME", "PRIVILEGE_TYPE", "IS_GRANTABLE"]),
    ("column_privileges", &["GRANTEE", "TABLE_CATALOG", "TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME", "PRIVILEGE_TYPE", "IS_GRANTABLE"]),
];

/// Whether `information_schema` has the (lower-case) view `n`.
fn is_view(n: &str) -> bool {
    VIEWS.contains(&n) || EMPTY_VIEWS.iter().any(|(v, _)| *v == n)
}

/// MySQL's numeric-valued columns among the empty views' (the rest are text).
const NUMERIC_COLUMNS: &[&str] = &[
    "CHARACTER_MAXIMUM_LENGTH", "CHARACTER_OCTET_LENGTH", "NUMERIC_PRECISION", "NUMERIC_SCALE", "DATETIME_PRECISION",
    "ORDINAL_POSITION", "ACTION_ORDER", "INTERVAL_VALUE", "ORIGINATOR", "PARTITION_ORDINAL_POSITION",
    "SUBPARTITION_ORDINAL_POSITION", "TABLE_ROWS", "AVG_ROW_LENGTH", "DATA_LENGTH", "MAX_DATA_LENGTH", "INDEX_LENGTH",
    "DATA_FREE", "CHECKSUM", "FILE_ID", "LOGFILE_GROUP_NUMBER", "DELETED_ROWS", "UPDATE_COUNT", "FREE_EXTENTS",
    "TOTAL_EXTENTS", "EXTENT_SIZE", "INITIAL_SIZE", "MAXIMUM_SIZE", "AUTOEXTEND_SIZE", "TRANSACTION_COUNTER", "VERSION",
];

#[async_trait]
impl SchemaProvider for InfoSchema {
    fn table_names(&self) -> Vec<String> {
        VIEWS.iter().chain(EMPTY_VIEWS.iter().map(|(n, _)| n)).map(|s| s.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let n = name.to_lowercase();
        if !is_view(&n) {
            return Ok(None);
        }
        let t = match n.as_str() {
            "tiflash_indexes" => tiflash_indexes(self.scope.search.as_deref()),
            "processlist" => processlist(self.scope.stats.as_deref()),
            "cluster_info" => cluster_info(self.scope.cluster.as_deref(), self.scope.stats.as_deref()),
            "embedding_usage" => embedding_usage(self.scope.embedder.as_deref()),
            "embedding_backlog" => embedding_backlog(&self.txn, self.scope.embedder.as_deref()),
            "embedding_backlog_rows" => embedding_backlog_rows(&self.txn, self.scope.embedder.as_deref()),
            "user_privileges" => user_privileges(&self.txn),
            _ => build(&self.txn, &n),
        }
        .map_err(to_df)?;
        let t = match &self.scope.visibility {
            Some(p) => visible_only(t, p).await.map_err(to_df)?,
            None => t,
        };
        Ok(Some(Arc::new(t)))
    }

    fn table_exist(&self, name: &str) -> bool {
        is_view(&name.to_lowercase())
    }
}

enum C {
    S(&'static str),
    I(&'static str),
    F(&'static str),
}

/// A column's header as MySQL 8 prints it (`TABLE_NAME`), shown while the result column is that
/// column under its own name (an alias wins).
pub const UPPER_NAME_META: &str = "embedb.upper_name";

fn s(v: impl Into<String>) -> ScalarValue {
    ScalarValue::Utf8(Some(v.into()))
}
fn i(v: i64) -> ScalarValue {
    ScalarValue::Int64(Some(v))
}
fn null() -> ScalarValue {
    ScalarValue::Utf8(None)
}

fn mem(cols: &[C], rows: Vec<Vec<ScalarValue>>) -> Result<MemTable> {
    // Names are folded to lower case like every identifier; the header keeps MySQL's upper case.
    let header = |n: &str, f: Field| {
        let md = std::collections::HashMap::from([(UPPER_NAME_META.to_string(), n.to_string())]);
        f.with_metadata(md)
    };
    let fields: Vec<Field> = cols
        .iter()
        .map(|c| match c {
            // information_schema's text compares case-insensitively, as MySQL's utf8_general_ci
            // does (Connector/J's getColumns asks `IS_NULLABLE = 'yes'`).
            C::S(n) => {
                let f = header(n, Field::new(n.to_lowercase(), DataType::Utf8, true));
                let mut md = f.metadata().clone();
                md.insert(crate::sql::collation::COLLATION_META.to_string(), "utf8mb4_general_ci".to_string());
                f.with_metadata(md)
            }
            C::I(n) => header(n, Field::new(n.to_lowercase(), DataType::Int64, true)),
            C::F(n) => header(n, Field::new(n.to_lowercase(), DataType::Float64, true)),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (ci, c) in cols.iter().enumerate() {
        let dt = match c {
            C::S(_) => DataType::Utf8,
            C::I(_) => DataType::Int64,
            C::F(_) => DataType::Float64,
        };
        let vals: Vec<ScalarValue> = rows
            .iter()
            .map(|r| {
                let v = r[ci].clone();
                if v.is_null() {
                    ScalarValue::try_from(&dt).unwrap()
                } else {
                    v
                }
            })
            .collect();
        let arr = if vals.is_empty() {
            datafusion::arrow::array::new_empty_array(&dt)
        } else {
            ScalarValue::iter_to_array(vals).map_err(SqlError::from)?
        };
        arrays.push(arr);
    }
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| SqlError::other(e.to_string()))?;
    MemTable::try_new(schema, vec![vec![batch]]).map_err(SqlError::from)
}

fn all_tables(txn: &Txn) -> Result<Vec<TableInfo>> {
    let mut out = Catalog::new(txn).every_table()?;
    out.retain(|t| !crate::session::temporary::is_hidden(&t.name));
    Ok(out)
}

fn all_views(txn: &Txn) -> Result<Vec<crate::sql::view::ViewInfo>> {
    let cat = Catalog::new(txn);
    let mut out = Vec::new();
    for db in cat.databases()? {
        out.extend(cat.views(&db.name)?);
    }
    Ok(out)
}

/// The column's key flag as `COLUMN_KEY` shows it.
pub fn column_key(t: &TableInfo, col: &str) -> &'static str {
    let col = col.to_lowercase();
    if t.indexes.iter().any(|ix| ix.primary && ix.columns.contains(&col)) {
        return "PRI";
    }
    for ix in &t.indexes {
        if ix.kind == IndexKind::Btree && ix.unique && ix.columns.len() == 1 && ix.columns[0] == col {
            return "UNI";
        }
    }
    for ix in &t.indexes {
        if ix.columns.first() == Some(&col) {
            return "MUL";
        }
    }
    ""
}

fn build(txn: &Txn, view: &str) -> Result<MemTable> {
    use C::*;
    match view {
        "schemata" => {
            let mut rows = vec![vec![s("def"), s("INFORMATION_SCHEMA"), s("utf8mb4"), s("utf8mb4_bin"), null()]];
            for db in Catalog::new(txn).databases()? {
                let coll = db.collation();
                rows.push(vec![s("def"), s(&db.name), s(crate::sql::collation::charset_of(coll)), s(coll), null()]);
            }
            mem(
                &[S("CATALOG_NAME"), S("SCHEMA_NAME"), S("DEFAULT_CHARACTER_SET_NAME"), S("DEFAULT_COLLATION_NAME"), S("SQL_PATH")],
                rows,
            )
        }
        "views" => {
            let rows = all_views(txn)?
                .into_iter()
                .map(|v| {
                    vec![
                        s("def"),
                        s(&v.db),
                        s(&v.name),
                        s(&v.query),
                        s("NONE"),
                        s("NO"),
                        s("root@%"),
                        s("DEFINER"),
                        s("utf8mb4"),
                        s("utf8mb4_general_ci"),
                    ]
                })
                .collect();
            mem(
                &[
                    S("TABLE_CATALOG"),
                    S("TABLE_SCHEMA"),
                    S("TABLE_NAME"),
                    S("VIEW_DEFINITION"),
                    S("CHECK_OPTION"),
                    S("IS_UPDATABLE"),
                    S("DEFINER"),
                    S("SECURITY_TYPE"),
                    S("CHARACTER_SET_CLIENT"),
                    S("COLLATION_CONNECTION"),
                ],
                rows,
            )
        }
        "tables" => {
            // MySQL 8.0's columns in its order; sizes are estimates (storage::table::table_sizes).
            let views = all_views(txn)?.into_iter().map(|v| {
                let mut r = vec![s("def"), s(&v.db), s(&v.name), s("VIEW")];
                r.extend((0..10).map(|_| null()));
                r.extend([s(&v.create_time), null(), null(), null(), null(), null(), s("VIEW"), null()]);
                r
            });
            let mut rows = Vec::new();
            for t in all_tables(txn)? {
                let z = crate::storage::table::table_sizes(txn, &t)?;
                rows.push(vec![
                    s("def"),
                    s(&t.db),
                    s(&t.name),
                    s("BASE TABLE"),
                    s("InnoDB"),
                    i(10),
                    s("Compact"),
                    i(z.rows as i64),
                    i(z.avg_row_length as i64),
                    i(z.data_length as i64),
                    i(0),
                    i(z.index_length as i64),
                    i(0),
                    opt(z.auto_increment.map(|n| n as i64)),
                    s(&t.create_time),
                    null(),
                    null(),
                    s(t.collation()),
                    null(),
                    s(""),
                    s(&t.comment),
                    i(t.id),
                ]);
            }
            rows.extend(views);
            mem(
                &[
                    S("TABLE_CATALOG"),
                    S("TABLE_SCHEMA"),
                    S("TABLE_NAME"),
                    S("TABLE_TYPE"),
                    S("ENGINE"),
                    I("VERSION"),
                    S("ROW_FORMAT"),
                    I("TABLE_ROWS"),
                    I("AVG_ROW_LENGTH"),
                    I("DATA_LENGTH"),
                    I("MAX_DATA_LENGTH"),
                    I("INDEX_LENGTH"),
                    I("DATA_FREE"),
                    I("AUTO_INCREMENT"),
                    S("CREATE_TIME"),
                    S("UPDATE_TIME"),
                    S("CHECK_TIME"),
                    S("TABLE_COLLATION"),
                    I("CHECKSUM"),
                    S("CREATE_OPTIONS"),
                    S("TABLE_COMMENT"),
                    I("TIDB_TABLE_ID"),
                ],
                rows,
            )
        }
        "columns" => {
            let mut rows = Vec::new();
            let views = all_views(txn)?.iter().map(|v| v.as_table()).collect::<Vec<_>>();
            for t in all_tables(txn)?.into_iter().chain(views) {
                for (pos, c) in t.columns.iter().enumerate() {
                    let extra = crate::sql::show::column_extra(c);
                    let (chars, numeric) = (char_length(&c.ty), numeric_precision(&c.ty));
                    let (charset, collation) = match t.column_collation(c) {
                        Some(coll) => (s(crate::sql::collation::charset_of(&coll)), s(coll)),
                        None if matches!(c.ty, crate::sql::types::SqlType::Json) => (s("utf8mb4"), s("utf8mb4_bin")),
                        None => (null(), null()),
                    };
                    rows.push(vec![
                        s("def"),
                        s(&t.db),
                        s(&t.name),
                        s(&c.name),
                        i(pos as i64 + 1),
                        c.default.clone().map(|d| s(d.trim_matches('\''))).unwrap_or(null()),
                        s(if c.nullable { "YES" } else { "NO" }),
                        s(c.ty.data_type_name()),
                        opt(chars),
                        opt(chars.map(|n| if c.ty.is_text() { n * 4 } else { n })),
                        opt(numeric.map(|p| p.0)),
                        opt(numeric.and_then(|p| p.1)),
                        opt(datetime_precision(&c.ty)),
                        charset,
                        collation,
                        s(c.ty.to_sql()),
                        s(column_key(&t, &c.name)),
                        s(extra),
                        s("select,insert,update,references"),
                        s(&c.comment),
                        c.generated.as_ref().map(|g| s(&g.expr)).unwrap_or(s("")),
                    ]);
                }
            }
            mem(
                &[
                    S("TABLE_CATALOG"),
                    S("TABLE_SCHEMA"),
                    S("TABLE_NAME"),
                    S("COLUMN_NAME"),
                    I("ORDINAL_POSITION"),
                    S("COLUMN_DEFAULT"),
                    S("IS_NULLABLE"),
                    S("DATA_TYPE"),
                    I("CHARACTER_MAXIMUM_LENGTH"),
                    I("CHARACTER_OCTET_LENGTH"),
                    I("NUMERIC_PRECISION"),
                    I("NUMERIC_SCALE"),
                    I("DATETIME_PRECISION"),
                    S("CHARACTER_SET_NAME"),
                    S("COLLATION_NAME"),
                    S("COLUMN_TYPE"),
                    S("COLUMN_KEY"),
                    S("EXTRA"),
                    S("PRIVILEGES"),
                    S("COLUMN_COMMENT"),
                    S("GENERATION_EXPRESSION"),
                ],
                rows,
            )
        }
        "statistics" => {
            let mut rows = Vec::new();
            for t in all_tables(txn)? {
                for ix in &t.indexes {
                    for (seq, col) in ix.columns.iter().enumerate() {
                        let name = t.column(col).map(|c| c.name.clone()).unwrap_or(col.clone());
                        let itype = match &ix.kind {
                            IndexKind::Btree => "BTREE",
                            IndexKind::Vector { .. } => "HNSW",
                            IndexKind::Fulltext { .. } => "FULLTEXT",
                        };
                        rows.push(vec![
                            s("def"),
                            s(&t.db),
                            s(&t.name),
                            i(if ix.unique { 0 } else { 1 }),
                            s(&t.db),
                            s(if ix.primary { "PRIMARY" } else { &ix.name }),
                            i(seq as i64 + 1),
                            s(name),
                            s("A"),
                            i(0),
                            s(if t.column(col).is_some_and(|c| c.nullable) { "YES" } else { "" }),
                            s(itype),
                            s(&ix.comment),
                        ]);
                    }
                }
            }
            mem(
                &[
                    S("TABLE_CATALOG"),
                    S("TABLE_SCHEMA"),
                    S("TABLE_NAME"),
                    I("NON_UNIQUE"),
                    S("INDEX_SCHEMA"),
                    S("INDEX_NAME"),
                    I("SEQ_IN_INDEX"),
                    S("COLUMN_NAME"),
                    S("COLLATION"),
                    I("CARDINALITY"),
                    S("NULLABLE"),
                    S("INDEX_TYPE"),
                    S("INDEX_COMMENT"),
                ],
                rows,
            )
        }
        "key_column_usage" => {
            let mut rows = Vec::new();
            for t in all_tables(txn)? {
                for fk in &t.foreign_keys {
                    for (seq, (col, rcol)) in fk.columns.iter().zip(&fk.ref_columns).enumerate() {
                        let name = t.column(col).map(|c| c.name.clone()).unwrap_or(col.clone());
                        rows.push(vec![
                            s("def"),
                            s(&t.db),
                            s(&fk.name),
                            s("def"),
                            s(&t.db),
                            s(&t.name),
                            s(name),
                            i(seq as i64 + 1),
                            i(seq as i64 + 1),
                            s(&fk.ref_db),
                            s(&fk.ref_table),
                            s(rcol),
                        ]);
                    }
                }
                for ix in t.indexes.iter().filter(|ix| ix.unique && ix.kind == IndexKind::Btree) {
                    for (seq, col) in ix.columns.iter().enumerate() {
                        let name = t.column(col).map(|c| c.name.clone()).unwrap_or(col.clone());
                        rows.push(vec![
                            s("def"),
                            s(&t.db),
                            s(if ix.primary { "PRIMARY" } else { &ix.name }),
                            s("def"),
                            s(&t.db),
                            s(&t.name),
                            s(name),
                            i(seq as i64 + 1),
                            null(),
                            null(),
                            null(),
                            null(),
                        ]);
                    }
                }
            }
            mem(
                &[
                    S("CONSTRAINT_CATALOG"),
                    S("CONSTRAINT_SCHEMA"),
                    S("CONSTRAINT_NAME"),
                    S("TABLE_CATALOG"),
                    S("TABLE_SCHEMA"),
                    S("TABLE_NAME"),
                    S("COLUMN_NAME"),
                    I("ORDINAL_POSITION"),
                    I("POSITION_IN_UNIQUE_CONSTRAINT"),
                    S("REFERENCED_TABLE_SCHEMA"),
                    S("REFERENCED_TABLE_NAME"),
                    S("REFERENCED_COLUMN_NAME"),
                ],
                rows,
            )
        }
        "tiflash_replica" => {
            let rows = all_tables(txn)?
                .into_iter()
                .filter(|t| t.tiflash_replica > 0)
                .map(|t| vec![s(&t.db), s(&t.name), i(t.id), i(t.tiflash_replica as i64), s(""), i(1), s("1")])
                .collect();
            mem(
                &[
                    S("TABLE_SCHEMA"),
                    S("TABLE_NAME"),
                    I("TABLE_ID"),
                    I("REPLICA_COUNT"),
                    S("LOCATION_LABELS"),
                    I("AVAILABLE"),
                    S("PROGRESS"),
                ],
                rows,
            )
        }
        "referential_constraints" => mem(
            &[
                S("CONSTRAINT_CATALOG"),
                S("CONSTRAINT_SCHEMA"),
                S("CONSTRAINT_NAME"),
                S("UNIQUE_CONSTRAINT_SCHEMA"),
                S("UNIQUE_CONSTRAINT_NAME"),
                S("UPDATE_RULE"),
                S("DELETE_RULE"),
                S("TABLE_NAME"),
                S("REFERENCED_TABLE_NAME"),
            ],
            all_tables(txn)?
                .iter()
                .flat_map(|t| {
                    t.foreign_keys.iter().map(|fk| {
                        vec![
                            s("def"),
                            s(&t.db),
                            s(&fk.name),
                            s(&fk.ref_db),
                            s("PRIMARY"),
                            s(&fk.on_update),
                            s(&fk.on_delete),
                            s(&t.name),
                            s(&fk.ref_table),
                        ]
                    })
                })
                .collect(),
        ),
        "engines" => mem(
            &[S("ENGINE"), S("SUPPORT"), S("COMMENT"), S("TRANSACTIONS"), S("XA"), S("SAVEPOINTS")],
            vec![vec![s("InnoDB"), s("DEFAULT"), s("embedb: transactional KV (redb)"), s("YES"), s("NO"), s("YES")]],
        ),
        "character_sets" => mem(
            &[S("CHARACTER_SET_NAME"), S("DEFAULT_COLLATE_NAME"), S("DESCRIPTION"), I("MAXLEN")],
            vec![
                vec![s("utf8mb4"), s("utf8mb4_bin"), s("UTF-8 Unicode"), i(4)],
                vec![s("utf8"), s("utf8_bin"), s("UTF-8 Unicode"), i(3)],
                vec![s("binary"), s("binary"), s("binary"), i(1)],
            ],
        ),
        "collations" => mem(
            &[S("COLLATION_NAME"), S("CHARACTER_SET_NAME"), I("ID"), S("IS_DEFAULT"), S("IS_COMPILED"), I("SORTLEN")],
            collations().into_iter().map(|(n, cs, id, d)| vec![s(n), s(cs), i(id), s(d), s("Yes"), i(1)]).collect(),
        ),
        "table_constraints" => {
            let mut rows = Vec::new();
            for t in all_tables(txn)? {
                for ix in t.indexes.iter().filter(|ix| ix.unique && ix.kind == IndexKind::Btree) {
                    let (name, kind) = if ix.primary { ("PRIMARY", "PRIMARY KEY") } else { (ix.name.as_str(), "UNIQUE") };
                    rows.push(vec![s("def"), s(&t.db), s(name), s(&t.db), s(&t.name), s(kind), s("YES")]);
                }
                for fk in &t.foreign_keys {
                    rows.push(vec![s("def"), s(&t.db), s(&fk.name), s(&t.db), s(&t.name), s("FOREIGN KEY"), s("YES")]);
                }
            }
            mem(
                &[S("CONSTRAINT_CATALOG"), S("CONSTRAINT_SCHEMA"), S("CONSTRAINT_NAME"), S("TABLE_SCHEMA"), S("TABLE_NAME"), S("CONSTRAINT_TYPE"), S("ENFORCED")],
                rows,
            )
        }
        "check_constraints" => mem(&[S("CONSTRAINT_CATALOG"), S("CONSTRAINT_SCHEMA"), S("CONSTRAINT_NAME"), S("CHECK_CLAUSE")], vec![]),
        other => match EMPTY_VIEWS.iter().find(|(n, _)| *n == other) {
            Some((_, cols)) => {
                let cols: Vec<C> = cols.iter().map(|c| if NUMERIC_COLUMNS.contains(c) { C::I(c) } else { C::S(c) }).collect();
                mem(&cols, vec![])
            }
            None => Err(SqlError::no_such_table("information_schema", view)),
        },
    }
}

fn opt(v: Option<i64>) -> ScalarValue {
    ScalarValue::Int64(v)
}

/// CHARACTER_MAXIMUM_LENGTH: characters for text, bytes for binary and blobs.
fn char_length(t: &crate::sql::types::SqlType) -> Option<i64> {
    use crate::sql::types::{lob_max, LobKind, SqlType as T};
    match t {
        T::Char(n) | T::VarChar(n) | T::Binary(n) | T::VarBinary(n) => Some(*n as i64),
        T::Text(k) | T::Blob(k) => Some(lob_max(*k) as i64),
        T::Json => Some(lob_max(LobKind::Long) as i64),
        _ => None,
    }
}

/// NUMERIC_PRECISION and NUMERIC_SCALE as MySQL reports them.
fn numeric_precision(t: &crate::sql::types::SqlType) -> Option<(i64, Option<i64>)> {
    use crate::sql::types::{IntKind, SqlType as T};
    match t {
        T::Int { kind, unsigned, .. } => Some((
            match (kind, unsigned) {
                (IntKind::Tiny, _) => 3,
                (IntKind::Small, _) => 5,
                (IntKind::Medium, _) => 7,
                (IntKind::Int, _) => 10,
                (IntKind::Big, false) => 19,
                (IntKind::Big, true) => 20,
            },
            Some(0),
        )),
        T::Float => Some((12, None)),
        T::Double => Some((22, None)),
        T::Decimal { precision, scale } => Some((*precision as i64, Some(*scale as i64))),
        _ => None,
    }
}

fn datetime_precision(t: &crate::sql::types::SqlType) -> Option<i64> {
    use crate::sql::types::SqlType as T;
    match t {
        T::DateTime(f) | T::Timestamp(f) | T::Time(f) => Some(*f as i64),
        T::Date => Some(0),
        _ => None,
    }
}

/// TiDB's view of its columnar (search) indexes, with build progress: one row per live index.
fn tiflash_indexes(search: Option<&crate::index::search::SearchIndexes>) -> Result<MemTable> {
    use C::*;
    // (db, table, table id, column, index name, index id, kind, progress) per live index.
    let mut live = Vec::new();
    if let Some(search) = search {
        for e in search.all_fulltext() {
            live.push((e.db.clone(), e.table.clone(), e.table_id, e.column.clone(), e.index_name.clone(), e.index_id, "FullText", e.progress()));
        }
        for e in search.all_vector() {
            live.push((e.db.clone(), e.table.clone(), e.table_id, e.column.clone(), e.index_name.clone(), e.index_id, "Vector", e.progress()));
        }
    }
    let rows = live
        .into_iter()
        .map(|(db, table, table_id, column, name, index_id, kind, p)| {
            vec![
                s(db),
                s(table),
                i(table_id),
                s(column),
                s(name),
                i(index_id),
                s(kind),
                i(p.rows_indexed as i64),
                i(p.rows_not_indexed as i64),
                i(0),
                i(0),
                p.error.map(s).unwrap_or_else(null),
                s("embedb"),
            ]
        })
        .collect();
    mem(
        &[
            S("TIDB_DATABASE"),
            S("TIDB_TABLE"),
            I("TABLE_ID"),
            S("COLUMN_NAME"),
            S("INDEX_NAME"),
            I("INDEX_ID"),
            S("INDEX_KIND"),
            I("ROWS_STABLE_INDEXED"),
            I("ROWS_STABLE_NOT_INDEXED"),
            I("ROWS_DELTA_INDEXED"),
            I("ROWS_DELTA_NOT_INDEXED"),
            S("ERROR_MESSAGE"),
            S("TIFLASH_INSTANCE"),
        ],
        rows,
    )
}

/// One node as `information_schema.CLUSTER_INFO` shows it.
pub struct ClusterNode {
    pub name: String,
    pub advertise: String,
    pub role: String,
    pub lease_holder: bool,
    pub applied: u64,
    pub lag_ms: u64,
    pub started: String,
}

/// Where `CLUSTER_INFO` gets its nodes (the cluster room implements it).
pub trait ClusterView: Send + Sync {
    fn nodes(&self) -> Vec<ClusterNode>;
}

/// The nodes of the cluster (TiDB's columns, then embedb's): one row for a single node.
fn cluster_info(cluster: Option<&dyn ClusterView>, stats: Option<&crate::stats::ServerStats>) -> Result<MemTable> {
    use C::*;
    let version = crate::session::server_version();
    let uptime = stats.map(|s| s.uptime_secs()).unwrap_or(0);
    let rows = match cluster {
        None => vec![vec![s("embedb"), null(), null(), s(&version), s(""), null(), s(format!("{uptime}s")), i(0), s("single"), s("writer"), s("YES"), null(), i(0)]],
        Some(c) => c
            .nodes()
            .iter()
            .enumerate()
            .map(|(n, node)| {
                vec![
                    s("embedb"),
                    s(&node.advertise),
                    s(&node.advertise),
                    s(&version),
                    s(""),
                    s(&node.started),
                    null(),
                    i(n as i64 + 1),
                    s(&node.name),
                    s(&node.role),
                    s(if node.lease_holder { "YES" } else { "NO" }),
                    i(node.applied as i64),
                    i(node.lag_ms as i64),
                ]
            })
            .collect(),
    };
    mem(
        &[
            S("TYPE"),
            S("INSTANCE"),
            S("STATUS_ADDRESS"),
            S("VERSION"),
            S("GIT_HASH"),
            S("START_TIME"),
            S("UPTIME"),
            I("SERVER_ID"),
            S("NODE_NAME"),
            S("ROLE"),
            S("IS_LEASE_HOLDER"),
            I("APPLIED_COMMIT"),
            I("LAG_MS"),
        ],
        rows,
    )
}

/// Every connection: what it runs and since when (`crate::stats`).
/// One row per global privilege of each account (MySQL's USER_PRIVILEGES).
fn user_privileges(txn: &Txn) -> Result<MemTable> {
    use crate::privileges as p;
    use C::*;
    let mut rows = Vec::new();
    for a in p::store::load(txn)? {
        let grantable = if a.global & p::GRANT_OPTION != 0 { "YES" } else { "NO" };
        let held: Vec<&str> = p::NAMES.iter().filter(|(bit, _)| *bit != p::GRANT_OPTION && a.global & bit != 0).map(|(_, n)| *n).collect();
        let names = if held.is_empty() { vec!["USAGE"] } else { held };
        for name in names {
            rows.push(vec![s(a.quoted()), s("def"), s(name), s(grantable)]);
        }
    }
    mem(&[S("GRANTEE"), S("TABLE_CATALOG"), S("PRIVILEGE_TYPE"), S("IS_GRANTABLE")], rows)
}

/// The rows of a view that a restricted session may see: those naming a database or table it
/// holds something on, its own connections (without PROCESS) and its own account's privileges.
async fn visible_only(t: MemTable, p: &crate::privileges::Privileges) -> Result<MemTable> {
    use datafusion::arrow::array::{Array, AsArray, BooleanArray};
    let schema = t.schema();
    let col = |names: &[&str]| names.iter().find_map(|n| schema.index_of(n).ok());
    let db_col = col(&["table_schema", "schema_name", "constraint_schema", "trigger_schema", "routine_schema"]);
    let table_col = col(&["table_name"]);
    let user_col = if p.has_global(crate::privileges::PROCESS) { None } else { col(&["user"]) };
    let grantee_col = col(&["grantee"]);
    if db_col.is_none() && user_col.is_none() && grantee_col.is_none() {
        return Ok(t);
    }
    let me = crate::privileges::quoted(&p.user, &p.host);
    let text = |b: &RecordBatch, c: usize, r: usize| -> Option<String> {
        let a = b.column(c).as_string_opt::<i32>()?;
        (!a.is_null(r)).then(|| a.value(r).to_string())
    };
    let mut out = Vec::new();
    for part in &t.batches {
        for b in part.read().await.iter() {
            let keep: BooleanArray = (0..b.num_rows())
                .map(|r| {
                    let db = db_col.and_then(|c| text(b, c, r));
                    let ok = match (&db, table_col.and_then(|c| text(b, c, r))) {
                        (Some(d), Some(t)) => p.sees_table(d, &t),
                        (Some(d), None) => p.sees_db(d),
                        _ => true,
                    } && user_col.is_none_or(|c| text(b, c, r).as_deref() == Some(p.user.as_str()))
                        && grantee_col.is_none_or(|c| text(b, c, r).as_deref() == Some(me.as_str()));
                    Some(ok)
                })
                .collect();
            out.push(datafusion::arrow::compute::filter_record_batch(b, &keep).map_err(|e| SqlError::other(e.to_string()))?);
        }
    }
    MemTable::try_new(schema, vec![out]).map_err(SqlError::from)
}

fn processlist(stats: Option<&crate::stats::ServerStats>) -> Result<MemTable> {
    use C::*;
    let rows = stats.map(|st| process_rows(st, None)).unwrap_or_default();
    mem(&[I("ID"), S("USER"), S("HOST"), S("DB"), S("COMMAND"), I("TIME"), S("STATE"), S("INFO")], rows)
}

/// The process list's rows (Id, User, Host, db, Command, Time, State, Info), each statement's
/// text cut to `max_info` characters when given (SHOW PROCESSLIST without FULL).
pub fn process_rows(stats: &crate::stats::ServerStats, max_info: Option<usize>) -> Vec<Vec<ScalarValue>> {
    stats
        .processes()
        .into_iter()
        .map(|p| {
            let info = p.info.map(|t| match max_info {
                Some(n) => t.chars().take(n).collect(),
                None => t,
            });
            vec![
                i(p.id as i64),
                s(p.user),
                s(p.host),
                p.db.map(s).unwrap_or(null()),
                s(p.command),
                i(p.since.elapsed().as_secs() as i64),
                s(if p.command == "Query" { "executing" } else { "" }),
                info.map(s).unwrap_or(null()),
            ]
        })
        .collect()
}

/// Per (provider, model): calls, texts sent, cache hits, errors and the last error, texts cut at the
/// model's input limit — since start.
fn embedding_usage(e: Option<&crate::embed::Embedder>) -> Result<MemTable> {
    use C::*;
    let rows = e
        .map(|e| e.usage())
        .unwrap_or_default()
        .into_iter()
        .map(|((p, m), u)| {
            vec![
                s(p),
                s(m),
                i(u.requests as i64),
                i(u.texts as i64),
                // Unknown (NULL), not zero, when the provider never reported a count.
                u.tokens.map(|t| i(t as i64)).unwrap_or_else(null),
                i(u.cache_hits as i64),
                i(u.errors as i64),
                if u.last_error.is_empty() { null() } else { s(u.last_error) },
                i(u.truncated as i64),
            ]
        })
        .collect();
    mem(
        &[S("PROVIDER"), S("MODEL"), I("REQUESTS"), I("TEXTS"), I("TOKENS"), I("CACHE_HITS"), I("ERRORS"), S("LAST_ERROR"), I("TRUNCATED")],
        rows,
    )
}

/// Per async embedding column: rows waiting, failed, embedded by this node since start, the
/// oldest wait and the last error (`embed::backlog`).
fn embedding_backlog(txn: &Txn, e: Option<&crate::embed::Embedder>) -> Result<MemTable> {
    use crate::embed::backlog;
    use C::*;
    let now = backlog::now_ms();
    let mut rows = Vec::new();
    for t in Catalog::new(txn).every_table()? {
        // Async columns, and a model change's new vectors (`embed::model_change`) under the
        // column's name: (column as it embeds, backlog id, mode).
        let mut queued: Vec<(&crate::sql::catalog::ColumnInfo, u32, String)> = t.async_embed_columns().into_iter().map(|(pos, id)| (&t.columns[pos], id, "async".to_string())).collect();
        queued.extend(t.model_change.as_ref().map(|m| (&m.column, m.shadow_id, format!("model change (job {})", m.job))));
        for (column, id, mode) in queued {
            let c = backlog::counts(txn, t.id, id)?;
            let p = e.map(|e| e.backlog.column(t.id, id)).unwrap_or_default();
            let model = column.generated.as_ref().and_then(|g| crate::sql::ddl::embed_text_call(&g.expr)).map(|(m, _)| m);
            rows.push(vec![
                s(&t.db),
                s(&t.name),
                s(&column.name),
                model.map(s).unwrap_or_else(null),
                s(&mode),
                i(c.pending as i64),
                i(c.failed as i64),
                i(p.embedded as i64),
                c.oldest_pending_ms.map(|o| ScalarValue::Float64(Some(now.saturating_sub(o) as f64 / 1000.0))).unwrap_or(ScalarValue::Float64(None)),
                p.last_error.map(s).unwrap_or_else(null),
            ]);
        }
    }
    mem(
        &[S("TABLE_SCHEMA"), S("TABLE_NAME"), S("COLUMN_NAME"), S("MODEL"), S("MODE"), I("PENDING"), I("FAILED"), I("EMBEDDED"), F("OLDEST_PENDING_SECONDS"), S("LAST_ERROR")],
        rows,
    )
}

/// One row per row still without its vector: its handle (`_tidb_rowid`, or the integer primary
/// key), `pending` or `failed`, when it was queued, counted failures and the error.
fn embedding_backlog_rows(txn: &Txn, e: Option<&crate::embed::Embedder>) -> Result<MemTable> {
    use crate::embed::backlog::{self, FAILED, PENDING};
    use C::*;
    let tables: std::collections::HashMap<i64, TableInfo> = Catalog::new(txn).every_table()?.into_iter().map(|t| (t.id, t)).collect();
    let mut rows = Vec::new();
    for (list, state) in [(PENDING, "pending"), (FAILED, "failed")] {
        for ((tid, cid, handle), entry) in backlog::entries(txn, list)? {
            let Some(t) = tables.get(&tid) else { continue };
            let shadow = t.model_change.as_ref().filter(|m| m.shadow_id == cid).map(|m| &m.column);
            let Some(c) = t.columns.iter().find(|c| c.id == cid).or(shadow) else { continue };
            // A pending row's error is the column's last one while it has none of its own.
            let error = entry.error.or_else(|| (state == "pending").then(|| e.and_then(|e| e.backlog.column(tid, cid).last_error)).flatten());
            let queued = chrono::DateTime::from_timestamp_millis(entry.queued_ms as i64).map(|d| d.format("%Y-%m-%d %H:%M:%S%.3f").to_string());
            rows.push(vec![
                s(&t.db),
                s(&t.name),
                s(&c.name),
                i(handle),
                s(state),
                queued.map(s).unwrap_or_else(null),
                i(entry.attempts as i64),
                error.map(s).unwrap_or_else(null),
            ]);
        }
    }
    mem(
        &[S("TABLE_SCHEMA"), S("TABLE_NAME"), S("COLUMN_NAME"), I("ROW_ID"), S("STATE"), S("QUEUED_AT"), I("ATTEMPTS"), S("LAST_ERROR")],
        rows,
    )
}

pub fn collations() -> Vec<(&'static str, &'static str, i64, &'static str)> {
    vec![
        ("utf8mb4_bin", "utf8mb4", 46, "Yes"),
        ("utf8mb4_general_ci", "utf8mb4", 45, ""),
        ("utf8mb4_unicode_ci", "utf8mb4", 224, ""),
        ("utf8mb4_0900_ai_ci", "utf8mb4", 255, ""),
        ("utf8_bin", "utf8", 83, "Yes"),
        ("utf8_general_ci", "utf8", 33, ""),
        ("binary", "binary", 63, "Yes"),
    ]
}
