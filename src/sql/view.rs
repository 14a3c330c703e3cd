//! Views: a stored SELECT that queries read as if it were a table.
//!
//! `CREATE VIEW recent (id, title) AS SELECT id, title FROM docs WHERE created > '2024-01-01'`:
//!
//! 1. [`Session::create_view`] plans the SELECT once (unknown tables and columns fail here, as in
//!    MySQL), takes its result columns (names as the SELECT shows them, or the column list;
//!    types for DESCRIBE and `information_schema.COLUMNS`) and stores a [`ViewInfo`] in the
//!    catalog under `mVW:` beside the tables: the SELECT's text, with every table it reads
//!    qualified by the view's database.
//! 2. A query that reads `recent` gets it replaced, before any other rewrite, by the derived
//!    table `(SELECT …) AS recent (id, title)` ([`expand`]); views over views expand in turn.
//!    The query planner never sees a view, so predicates and projections on it are optimised
//!    together with the view's own.
//! 3. Views are read-only, as in TiDB: INSERT/UPDATE/DELETE on one is 1347 (not BASE TABLE).
//!
//! `SHOW CREATE VIEW`, `SHOW [FULL] TABLES` (type VIEW), DESCRIBE, `information_schema.VIEWS`,
//! `TABLES` and `COLUMNS` read the same entries.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    visit_relations_mut, Ident, ObjectName, ObjectNamePart, Query, Statement, TableAlias, TableAliasColumnDef, TableFactor, VisitMut, VisitorMut,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SqlError};
use crate::session::{Output, Session};
use crate::sql::catalog::{Catalog, ColumnInfo, TableInfo};
use crate::sql::types::{IntKind, LobKind, SqlType, TYPE_META};

/// Views inside views, at most (MySQL's limit on nesting is similar in spirit; a cycle stops here).
const MAX_DEPTH: usize = 32;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ViewInfo {
    pub db: String,
    pub name: String,
    /// The SELECT, as SQL text, its tables qualified by database.
    pub query: String,
    /// The result columns, in order.
    pub columns: Vec<ViewColumn>,
    pub create_time: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ViewColumn {
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
}

impl ViewInfo {
    /// The view as a table with no rows of its own, for the catalog readers that list columns.
    pub fn as_table(&self) -> TableInfo {
        TableInfo {
            id: 0,
            db: self.db.clone(),
            name: self.name.clone(),
            columns: self
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| ColumnInfo::plain(i as u32 + 1, &c.name, c.ty.clone(), c.nullable))
                .collect(),
            indexes: vec![],
            pk_handle: None,
            next_column_id: self.columns.len() as u32 + 1,
            next_index_id: 1,
            comment: "VIEW".into(),
            tiflash_replica: 0,
            create_time: self.create_time.clone(),
            collation: String::new(),
            foreign_keys: vec![],
            model_change: None,
            arrow: Default::default(),
        }
    }

    /// `SHOW CREATE VIEW`'s statement, in MySQL's form.
    pub fn create_statement(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| format!("`{}`", c.name.replace('`', "``"))).collect();
        format!(
            "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`%` SQL SECURITY DEFINER VIEW `{}` ({}) AS {}",
            self.name.replace('`', "``"),
            cols.join(", "),
            self.portable_query()
        )
    }

    /// The SELECT with the view's own database left off its tables (MySQL shows them so), so
    /// that a dump restored under another database name reads that database's tables.
    fn portable_query(&self) -> String {
        let Ok(Statement::Query(mut q)) = crate::sql::parser::parse_one(&self.query) else { return self.query.clone() };
        let _ = visit_relations_mut(q.as_mut(), |name| {
            if let [ObjectNamePart::Identifier(d), ObjectNamePart::Identifier(t)] = name.0.as_slice() {
                if d.value.eq_ignore_ascii_case(&self.db) {
                    name.0 = vec![ObjectNamePart::Identifier(t.clone())];
                }
            }
            ControlFlow::<()>::Continue(())
        });
        q.to_string()
    }
}

/// MySQL's 1347, for a view used where a table must be.
pub fn not_base_table(db: &str, name: &str) -> SqlError {
    SqlError::new(1347, "HY000", format!("'{db}.{name}' is not BASE TABLE"))
}

impl Session {
    /// CREATE [OR REPLACE] VIEW and ALTER VIEW (which replaces an existing view only).
    pub(crate) async fn create_view(
        &mut self,
        cat: &Catalog<'_>,
        name: &ObjectName,
        column_list: Vec<String>,
        query: Query,
        replace: Replace,
    ) -> Result<Output> {
        let (db, view) = self.resolve_name(name)?;
        if cat.database(&db)?.is_none() {
            return Err(SqlError::unknown_db(&db));
        }
        if cat.table(&db, &view)?.is_some() {
            return Err(match replace {
                Replace::Only => not_view(&db, &view),
                _ => SqlError::table_exists(&view),
            });
        }
        let existing = cat.view(&db, &view)?;
        match (&replace, &existing) {
            (Replace::No, Some(_)) => return Err(SqlError::table_exists(&view)),
            (Replace::Only, None) => return Err(SqlError::no_such_table(&db, &view)),
            _ => {}
        }
        // The SELECT's tables are qualified by the view's database now: the view must read the
        // same tables whatever database the reading session is in.
        let mut query = query;
        qualify(&mut query, &db);
        let stmt = Statement::Query(Box::new(query.clone()));
        // Planned in a read snapshot of its own (this DDL's transaction has written nothing yet).
        let txn = Arc::new(self.engine.store.begin()?);
        let described = self.describe_query(stmt, txn.clone()).await;
        txn.rollback();
        let schema = described?;
        if !column_list.is_empty() && column_list.len() != schema.fields().len() {
            return Err(SqlError::new(
                1353,
                "HY000",
                "In definition of view, derived table or common table expression, SELECT list and column names list have different column counts",
            ));
        }
        let mut columns: Vec<ViewColumn> = Vec::with_capacity(schema.fields().len());
        for (i, f) in schema.fields().iter().enumerate() {
            let name = match column_list.get(i) {
                Some(n) => n.clone(),
                None => crate::sql::show::column_name(f),
            };
            if columns.iter().any(|c| c.name.eq_ignore_ascii_case(&name)) {
                return Err(SqlError::new(1060, "42S21", format!("Duplicate column name '{name}'")));
            }
            columns.push(ViewColumn { name, ty: sql_type_of(f), nullable: f.is_nullable() });
        }
        let create_time = match existing {
            Some(v) => v.create_time,
            None => chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        };
        cat.put_view(&ViewInfo { db, name: view, query: query.to_string(), columns, create_time });
        Ok(Output::ok())
    }

    /// DROP VIEW [IF EXISTS] a, b: all or nothing; 1051 for a missing one, 1347 for a table.
    pub(crate) fn drop_views(&mut self, cat: &Catalog<'_>, names: &[ObjectName], if_exists: bool) -> Result<Output> {
        let mut missing = Vec::new();
        let mut found = Vec::new();
        for n in names {
            let (db, v) = self.resolve_name(n)?;
            if cat.view(&db, &v)?.is_some() {
                found.push((db, v));
            } else if cat.table(&db, &v)?.is_some() {
                return Err(not_view(&db, &v));
            } else {
                missing.push(format!("{db}.{v}"));
            }
        }
        if !missing.is_empty() && !if_exists {
            return Err(SqlError::new(1051, "42S02", format!("Unknown table '{}'", missing.join(","))));
        }
        for m in missing {
            self.note(1051, format!("Unknown table '{m}'"));
        }
        for (db, v) in found {
            cat.delete_view(&db, &v);
        }
        Ok(Output::ok())
    }
}

/// How CREATE treats an existing view of that name.
pub(crate) enum Replace {
    /// CREATE VIEW: 1050 when it exists.
    No,
    /// CREATE OR REPLACE VIEW.
    Or,
    /// ALTER VIEW: it must exist.
    Only,
}

/// MySQL's 1347, for a table used where a view must be.
pub fn not_view(db: &str, name: &str) -> SqlError {
    SqlError::new(1347, "HY000", format!("'{db}.{name}' is not VIEW"))
}

/// `CREATE|ALTER … VIEW … WITH [CASCADED | LOCAL] CHECK OPTION` without its last clause, which the
/// SQL parser does not know: views are read-only here, so there is nothing to check.
pub fn strip_check_option(sql: &str) -> Option<&str> {
    let t = sql.trim_end().trim_end_matches(';').trim_end();
    let lower = t.to_ascii_lowercase();
    if !(lower.starts_with("create") || lower.starts_with("alter")) || !lower.ends_with("check option") {
        return None;
    }
    let head = lower[..lower.len() - "check option".len()].trim_end();
    let head = head.strip_suffix("cascaded").or_else(|| head.strip_suffix("local")).unwrap_or(head).trim_end();
    let head = head.strip_suffix("with")?;
    Some(&t[..head.len()])
}

/// Replace every view a statement reads by its SELECT as a derived table (see the module doc).
/// Returns the views' column names that have capitals: identifiers are folded to lower case on
/// the way through the planner, and [`restore_headers`] gives them back their spelling.
pub fn expand(stmt: &mut Statement, current_db: Option<&str>, cat: &Catalog) -> Result<Vec<String>> {
    expand_in(stmt, current_db, cat)
}

/// [`expand`] for an INSERT/UPDATE/DELETE: in what it reads (INSERT's SELECT, WHERE and SET
/// subqueries), never in the table it writes, which must stay a table (1347 for a view).
pub fn expand_sources(stmt: &mut Statement, current_db: Option<&str>, cat: &Catalog) -> Result<()> {
    match stmt {
        Statement::Insert(ins) => {
            if let Some(q) = ins.source.as_deref_mut() {
                expand_in(q, current_db, cat)?;
            }
        }
        Statement::Update(up) => {
            if let Some(e) = up.selection.as_mut() {
                expand_in(e, current_db, cat)?;
            }
            for a in up.assignments.iter_mut() {
                expand_in(&mut a.value, current_db, cat)?;
            }
        }
        Statement::Delete(del) => {
            if let Some(e) = del.selection.as_mut() {
                expand_in(e, current_db, cat)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Expand the views under `part` until none is left (views over views); the capitalised column
/// names met on the way.
fn expand_in<T: VisitMut>(part: &mut T, current_db: Option<&str>, cat: &Catalog) -> Result<Vec<String>> {
    let mut headers = Vec::new();
    for _ in 0..MAX_DEPTH {
        let mut e = Expander { cat, current_db, ctes: cte_names(part), err: None, expanded: 0, headers: vec![] };
        let _ = part.visit(&mut e);
        if let Some(err) = e.err {
            return Err(err);
        }
        headers.extend(e.headers);
        if e.expanded == 0 {
            return Ok(headers);
        }
    }
    Err(SqlError::new(1462, "HY000", "A view contains view recursion"))
}

struct Expander<'a, 'b> {
    cat: &'a Catalog<'b>,
    current_db: Option<&'a str>,
    /// Names of common table expressions, which hide views of the same name.
    ctes: Vec<String>,
    err: Option<SqlError>,
    expanded: usize,
    headers: Vec<String>,
}

impl VisitorMut for Expander<'_, '_> {
    type Break = ();
    fn pre_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, args: None, .. } = f else { return ControlFlow::Continue(()) };
        let parts: Vec<&str> = name.0.iter().filter_map(|p| p.as_ident().map(|i| i.value.as_str())).collect();
        let (db, view) = match parts.as_slice() {
            [v] if self.ctes.iter().any(|c| c.eq_ignore_ascii_case(v)) => return ControlFlow::Continue(()),
            [v] => match self.current_db {
                Some(d) => (d.to_string(), v.to_string()),
                None => return ControlFlow::Continue(()),
            },
            [d, v] => (d.to_string(), v.to_string()),
            _ => return ControlFlow::Continue(()),
        };
        let info = match self.cat.view(&db, &view) {
            Ok(Some(v)) => v,
            Ok(None) => return ControlFlow::Continue(()),
            Err(e) => {
                self.err = Some(e);
                return ControlFlow::Break(());
            }
        };
        let query = match crate::sql::parser::parse_one(&info.query) {
            Ok(Statement::Query(q)) => q,
            Ok(_) => return ControlFlow::Continue(()),
            Err(e) => {
                self.err = Some(e);
                return ControlFlow::Break(());
            }
        };
        let alias = alias.take().unwrap_or_else(|| TableAlias { explicit: true, name: Ident::new(&info.name), columns: vec![], at: None });
        self.headers.extend(info.columns.iter().filter(|c| c.name.chars().any(|ch| ch.is_uppercase())).map(|c| c.name.clone()));
        let columns = info.columns.iter().map(|c| TableAliasColumnDef { name: Ident::with_quote('`', &c.name), data_type: None }).collect();
        *f = TableFactor::Derived { lateral: false, subquery: query, alias: Some(TableAlias { columns, ..alias }), sample: None };
        self.expanded += 1;
        ControlFlow::Continue(())
    }
}

/// Result columns named like a view column with capitals (`Who`), which the planner knows as
/// `who`, are shown with the view's spelling.
pub fn restore_headers(schema: datafusion::arrow::datatypes::SchemaRef, headers: &[String]) -> datafusion::arrow::datatypes::SchemaRef {
    if headers.is_empty() {
        return schema;
    }
    let name_meta = crate::sql::show::NAME_META;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match headers.iter().find(|h| h.to_lowercase() == *f.name()) {
            Some(h) if !f.metadata().contains_key(name_meta) => {
                let mut md = f.metadata().clone();
                md.insert(name_meta.to_string(), h.clone());
                f.as_ref().clone().with_metadata(md)
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Names of every WITH clause's tables in a statement.
fn cte_names<T: VisitMut>(node: &mut T) -> Vec<String> {
    struct Ctes(Vec<String>);
    impl VisitorMut for Ctes {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            if let Some(w) = &q.with {
                self.0.extend(w.cte_tables.iter().map(|c| c.alias.name.value.clone()));
            }
            ControlFlow::Continue(())
        }
    }
    let mut c = Ctes(vec![]);
    let _ = node.visit(&mut c);
    c.0
}

/// Qualify the query's unqualified table names (not its CTEs) with `db`.
fn qualify(query: &mut Query, db: &str) {
    let mut stmt = Statement::Query(Box::new(query.clone()));
    let ctes = cte_names(&mut stmt);
    let _ = visit_relations_mut(query, |name| {
        if let [ObjectNamePart::Identifier(t)] = name.0.as_slice() {
            if !ctes.iter().any(|c| c.eq_ignore_ascii_case(&t.value)) {
                let t = t.clone();
                name.0 = vec![ObjectNamePart::Identifier(Ident::with_quote('`', db)), ObjectNamePart::Identifier(t)];
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The declared type a view column shows: the table column's when it is one, else the nearest
/// MySQL type of the computed value.
fn sql_type_of(f: &Field) -> SqlType {
    if let Some(t) = f.metadata().get(TYPE_META).and_then(|t| SqlType::parse(t)) {
        return t;
    }
    let int = |kind| SqlType::Int { kind, unsigned: false, width: None };
    match f.data_type() {
        DataType::Boolean | DataType::Int8 => int(IntKind::Tiny),
        DataType::Int16 => int(IntKind::Small),
        DataType::Int32 => int(IntKind::Int),
        DataType::Int64 => int(IntKind::Big),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => SqlType::Int { kind: IntKind::Big, unsigned: true, width: None },
        DataType::Float16 | DataType::Float32 => SqlType::Float,
        DataType::Float64 => SqlType::Double,
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => SqlType::Decimal { precision: (*p).min(65), scale: (*s).max(0) as u8 },
        DataType::Date32 | DataType::Date64 => SqlType::Date,
        DataType::Timestamp(TimeUnit::Second, _) => SqlType::DateTime(0),
        DataType::Timestamp(..) => SqlType::DateTime(6),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::Blob(LobKind::Long),
        DataType::List(_) | DataType::FixedSizeList(..) => SqlType::Vector(None),
        _ => SqlType::Text(LobKind::Long),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_option_is_dropped() {
        assert_eq!(strip_check_option("CREATE VIEW v AS SELECT * FROM t WITH LOCAL CHECK OPTION;"), Some("CREATE VIEW v AS SELECT * FROM t "));
        assert_eq!(strip_check_option("create view v as select 1 with check option"), Some("create view v as select 1 "));
        assert_eq!(strip_check_option("SELECT 'check option'"), None);
    }

    #[test]
    fn qualifies_tables_but_not_ctes() {
        let Statement::Query(mut q) = crate::sql::parser::parse_one("WITH c AS (SELECT 1 AS x) SELECT * FROM t JOIN c JOIN other.u").unwrap() else { panic!() };
        qualify(&mut q, "app");
        assert_eq!(q.to_string(), "WITH c AS (SELECT 1 AS x) SELECT * FROM `app`.t JOIN c JOIN other.u");
    }
}
