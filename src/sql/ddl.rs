//! Schema changes. Each DDL statement runs in its own transaction (after committing the session's
//! open one, as MySQL does), under the engine's DDL lock, and changes the catalog and the affected
//! rows or index entries in that one commit — so a failed `ALTER TABLE … ADD UNIQUE` leaves neither a
//! half-built index nor a catalog entry behind.

use datafusion::sql::sqlparser::ast::{
    self, AlterTableOperation, ColumnDef, ColumnOption, Expr, ObjectType, Statement, TableConstraint,
};
use embedb_storage::codec::Datum;

use crate::error::{Result, SqlError};
use crate::session::{ident_name, Output, Session};
use crate::sql::catalog::{Catalog, ColumnInfo, Generated, IndexInfo, IndexKind, TableInfo};
use crate::sql::types::SqlType;
use crate::storage::table;

impl Session {
    pub async fn ddl(&mut self, stmt: Statement) -> Result<Output> {
        let txn = self.engine.store.begin()?;
        self.model_change_started = None;
        let r = self.ddl_in(stmt, &txn).await;
        match r {
            Ok(out) => {
                txn.commit()?;
                // New, dropped or truncated tables and indexes: the search indexes follow.
                self.engine.search.sync(&self.engine.store)?;
                if let Some((db, name, job)) = self.model_change_started.take() {
                    self.queue_model_change(&db, &name, job).await?;
                }
                Ok(out)
            }
            Err(e) => {
                txn.rollback();
                Err(e)
            }
        }
    }

    async fn ddl_in(&mut self, stmt: Statement, txn: &embedb_storage::Txn) -> Result<Output> {
        let cat = Catalog::new(txn);
        match stmt {
            Statement::CreateDatabase { db_name, if_not_exists, default_charset, default_collation, .. } => {
                let name = ident_name(&db_name);
                let collation = match (default_collation, default_charset) {
                    (Some(c), _) => crate::sql::collation::checked(&c)?,
                    (None, Some(cs)) => crate::sql::collation::of_charset(&cs),
                    (None, None) => String::new(),
                };
                create_database(self, &cat, &name, if_not_exists, &collation)
            }
            Statement::CreateSchema { schema_name, if_not_exists, .. } => {
                let name = schema_name.to_string().trim_matches('`').to_string();
                create_database(self, &cat, &name, if_not_exists, "")
            }
            Statement::Drop { object_type, if_exists, names, table: on_table, .. } => match object_type {
                ObjectType::Schema | ObjectType::Database => {
                    for n in names {
                        let name = ident_name(&n);
                        crate::sql::catalog::system_schema_guard(&name)?;
                        if cat.database(&name)?.is_none() {
                            if if_exists {
                                self.note(1008, format!("Can't drop database '{name}'; database doesn't exist"));
                                continue;
                            }
                            return Err(SqlError::db_drop_missing(&name));
                        }
                        for t in cat.drop_database(&name)? {
                            table::delete_all(txn, t.id)?;
                        }
                        if self.db.as_deref().is_some_and(|d| d.eq_ignore_ascii_case(&name)) {
                            self.db = None;
                        }
                    }
                    Ok(Output::ok())
                }
                ObjectType::Table => {
                    let mut missing = Vec::new();
                    // A parent may go when its referencing tables go in the same statement.
                    let dropped: Vec<(String, String)> = names.iter().filter_map(|n| self.resolve_name(n).ok()).collect();
                    for n in &names {
                        let (db, t) = self.resolve_name(n)?;
                        match cat.table(&db, &t)? {
                            Some(info) => {
                                if self.foreign_key_checks() {
                                    for (child, fk) in crate::sql::foreign_key::referencing(txn, &info)? {
                                        let going = dropped.iter().any(|(d, x)| d.eq_ignore_ascii_case(&child.db) && x.eq_ignore_ascii_case(&child.name));
                                        if !going {
                                            return Err(SqlError::new(3730, "HY000", format!("Cannot drop table '{}' referenced by a foreign key constraint '{}' on table '{}'.", info.name, fk.name, child.name)));
                                        }
                                    }
                                }
                                cat.delete_table(&db, &t);
                                table::delete_all(txn, info.id)?;
                            }
                            None => missing.push(format!("{db}.{t}")),
                        }
                    }
                    if !missing.is_empty() {
                        if if_exists {
                            for m in missing {
                                self.note(1051, format!("Unknown table '{m}'"));
                            }
                        } else {
                            return Err(SqlError::new(1051, "42S02", format!("Unknown table '{}'", missing.join(","))));
                        }
                    }
                    Ok(Output::ok())
                }
                ObjectType::Index => {
                    let on = on_table.ok_or_else(|| SqlError::syntax("near DROP INDEX: expected ON <table>"))?;
                    let (db, t) = self.resolve_name(&on)?;
                    let mut info = cat.must_table(&db, &t)?;
                    for n in names {
                        drop_index(txn, &mut info, &ident_name(&n), if_exists)?;
                    }
                    cat.put_table(&info)?;
                    Ok(Output::ok())
                }
                ObjectType::View => self.drop_views(&cat, &names, if_exists),
                other => Err(SqlError::unsupported(format!("DROP {other}"))),
            },
            Statement::CreateTable(ct) => self.create_table(&cat, ct),
            Statement::CreateView(cv) => {
                if cv.materialized || cv.temporary {
                    return Err(SqlError::unsupported("MATERIALIZED or TEMPORARY views"));
                }
                let replace = if cv.or_replace || cv.or_alter { crate::sql::view::Replace::Or } else { crate::sql::view::Replace::No };
                if cv.if_not_exists {
                    let (db, v) = self.resolve_name(&cv.name)?;
                    if cat.view(&db, &v)?.is_some() {
                        return Ok(Output::ok());
                    }
                }
                let columns = cv.columns.iter().map(|c| c.name.value.clone()).collect();
                self.create_view(&cat, &cv.name, columns, *cv.query, replace).await
            }
            Statement::AlterView { name, columns, query, .. } => {
                let columns = columns.iter().map(|c| c.value.clone()).collect();
                self.create_view(&cat, &name, columns, *query, crate::sql::view::Replace::Only).await
            }
            Statement::Truncate(tr) => {
                for target in tr.table_names {
                    let (db, t) = self.resolve_name(&target.name)?;
                    let mut info = cat.must_table(&db, &t)?;
                    // As TiDB does, TRUNCATE gives the table a new id: the old rows go, and the
                    // AUTO_INCREMENT allocator (keyed by id) starts again from 1.
                    table::delete_all(txn, info.id)?;
                    info.id = self.engine.store.alloc_ids(b"table_id", 1)? as i64;
                    cat.put_table(&info)?;
                }
                Ok(Output::ok())
            }
            Statement::RenameTable(renames) => {
                for r in renames {
                    let (db, old) = self.resolve_name(&r.old_name)?;
                    let (ndb, new) = self.resolve_name(&r.new_name)?;
                    rename_table(&cat, &db, &old, &ndb, &new)?;
                }
                Ok(Output::ok())
            }
            Statement::CreateIndex(ci) => {
                let (db, t) = self.resolve_name(&ci.table_name)?;
                let mut info = cat.must_table(&db, &t)?;
                let cols: Vec<String> = ci.columns.iter().map(|c| index_column_name(&c.column.expr)).collect::<Result<_>>()?;
                let name = ci.name.map(|n| ident_name(&n));
                if let (Some(n), true) = (&name, ci.if_not_exists) {
                    if info.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(n)) {
                        return Ok(Output::ok());
                    }
                }
                add_index(txn, &mut info, name, cols, ci.unique, false)?;
                cat.put_table(&info)?;
                Ok(Output::ok())
            }
            Statement::AlterTable(at) => {
                let (db, t) = self.resolve_name(&at.name)?;
                let Some(mut info) = cat.table(&db, &t)? else {
                    if at.if_exists {
                        return Ok(Output::ok());
                    }
                    return Err(SqlError::no_such_table(&db, &t));
                };
                let before = info.clone();
                for op in at.operations {
                    self.alter_op(txn, &cat, &mut info, op).await?;
                }
                crate::sql::foreign_key::follow_parent(&cat, &before, &mut info)?;
                cat.put_table(&info)?;
                Ok(Output::ok())
            }
            other => Err(unsupported_statement(&other)),
        }
    }

    fn create_table(&mut self, cat: &Catalog, ct: ast::CreateTable) -> Result<Output> {
        let (db, name) = self.resolve_name(&ct.name)?;
        if cat.database(&db)?.is_none() {
            return Err(SqlError::unknown_db(&db));
        }
        if cat.table(&db, &name)?.is_some() || cat.view(&db, &name)?.is_some() {
            if ct.if_not_exists {
                self.note(1050, format!("Table '{db}.{name}' already exists"));
                return Ok(Output::ok());
            }
            return Err(SqlError::table_exists(&format!("{db}.{name}")));
        }
        if ct.query.is_some() || ct.like.is_some() {
            return Err(SqlError::unsupported("CREATE TABLE … SELECT / LIKE"));
        }
        let id = self.engine.store.alloc_ids(b"table_id", 1)? as i64;
        let mut info = TableInfo {
            id,
            db: cat.database(&db)?.map(|d| d.name).unwrap_or(db.clone()),
            name: name.clone(),
            columns: vec![],
            indexes: vec![],
            pk_handle: None,
            next_column_id: 1,
            next_index_id: 1,
            comment: ct.comment.as_ref().map(comment_text).unwrap_or_default(),
            tiflash_replica: 0,
            create_time: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            collation: String::new(),
            foreign_keys: vec![],
            model_change: None,
            arrow: Default::default(),
        };
        // Text columns' collation: the table's COLLATE/CHARSET, else the database's.
        info.collation = match &ct.table_options {
            ast::CreateTableOptions::With(v) | ast::CreateTableOptions::Options(v) | ast::CreateTableOptions::Plain(v) => {
                let texts: Vec<String> = v.iter().map(|o| o.to_string()).collect();
                crate::sql::collation::from_options(texts.iter().map(String::as_str))?
            }
            _ => None,
        }
        .or_else(|| cat.database(&db).ok().flatten().map(|d| d.collation).filter(|c| !c.is_empty()))
        .unwrap_or_default();
        if info.comment.is_empty() {
            info.comment = table_comment(&ct.table_options);
        }
        let mut pk: Option<Vec<String>> = None;
        let mut uniques: Vec<(Option<String>, Vec<String>)> = Vec::new();
        for cd in &ct.columns {
            let (col, inline_pk, inline_unique) = column_from_ast(&mut info, cd)?;
            if info.column(&col.name).is_some() {
                return Err(SqlError::new(1060, "42S21", format!("Duplicate column name '{}'", col.name)));
            }
            if inline_pk {
                if pk.is_some() {
                    return Err(SqlError::new(1068, "42000", "Multiple primary key defined"));
                }
                pk = Some(vec![col.key()]);
            }
            if inline_unique {
                uniques.push((None, vec![col.key()]));
            }
            info.columns.push(col);
        }
        let mut fks: Vec<ast::ForeignKeyConstraint> = Vec::new();
        for cd in &ct.columns {
            for o in &cd.options {
                if let ColumnOption::ForeignKey(fk) = &o.option {
                    let mut fk = fk.clone();
                    fk.columns = vec![cd.name.clone()];
                    fks.push(fk);
                }
            }
        }
        let mut plain: Vec<(Option<String>, Vec<String>)> = Vec::new();
        let mut comments: Vec<(Option<String>, String)> = Vec::new();
        for c in &ct.constraints {
            match c {
                TableConstraint::PrimaryKey(p) => {
                    if pk.is_some() {
                        return Err(SqlError::new(1068, "42000", "Multiple primary key defined"));
                    }
                    pk = Some(p.columns.iter().map(|c| index_column_name(&c.column.expr)).collect::<Result<_>>()?);
                }
                TableConstraint::Unique(u) => {
                    let cols = u.columns.iter().map(|c| index_column_name(&c.column.expr)).collect::<Result<_>>()?;
                    uniques.push((u.index_name.as_ref().or(u.name.as_ref()).map(|i| i.value.clone()), cols));
                }
                TableConstraint::Index(ix) => {
                    let cols = ix.columns.iter().map(|c| index_column_name(&c.column.expr)).collect::<Result<_>>()?;
                    let name = ix.name.as_ref().map(|i| i.value.clone());
                    if let Some(c) = index_comment(&ix.index_options) {
                        comments.push((name.clone(), c));
                    }
                    plain.push((name, cols));
                }
                TableConstraint::FulltextOrSpatial(f) if f.fulltext => {
                    let cols: Vec<String> = f.columns.iter().map(|c| index_column_name(&c.column.expr)).collect::<Result<_>>()?;
                    let name = f.opt_index_name.as_ref().map(|i| i.value.clone()).unwrap_or_else(|| cols[0].clone());
                    let id = info.next_index_id;
                    info.next_index_id += 1;
                    info.indexes.push(IndexInfo {
                        id,
                        name,
                        columns: cols,
                        unique: false,
                        primary: false,
                        kind: IndexKind::Fulltext { parser: "STANDARD".into() },
                        comment: String::new(),
                    });
                }
                TableConstraint::ForeignKey(fk) => fks.push(fk.clone()),
                // CHECK constraints are accepted and not enforced (TiDB's default).
                _ => {}
            }
        }
        if let Some(cols) = pk {
            for c in &cols {
                let Some(ci) = info.columns.iter_mut().find(|x| &x.key() == c) else {
                    return Err(SqlError::new(1072, "42000", format!("Key column '{c}' doesn't exist in table")));
                };
                if ci.ty.is_vector() {
                    return Err(SqlError::other(format!("vector column '{}' cannot be part of a primary key", ci.name)));
                }
                ci.nullable = false;
            }
            if cols.len() == 1 && info.column(&cols[0]).is_some_and(|c| c.ty.is_integer()) {
                info.pk_handle = Some(cols[0].clone());
            }
            let id = info.next_index_id;
            info.next_index_id += 1;
            info.indexes.push(IndexInfo {
                id,
                name: "PRIMARY".into(),
                columns: cols,
                unique: true,
                primary: true,
                kind: IndexKind::Btree,
                comment: String::new(),
            });
        }
        for (name, cols) in uniques {
            add_index_def(&mut info, name, cols, true)?;
        }
        for (name, cols) in plain {
            let comment = comments.iter().find(|(n, _)| n.is_some() && *n == name).map(|(_, c)| c.clone());
            let ix = add_index_def(&mut info, name, cols, false)?;
            if let Some(c) = comment {
                if let Some(last) = info.indexes.iter_mut().find(|i| i.id == ix.id) {
                    last.comment = c;
                }
            }
        }
        if let Some(ai) = info.columns.iter().find(|c| c.auto_increment) {
            let k = ai.key();
            if !info.indexes.iter().any(|i| i.columns.first() == Some(&k)) {
                return Err(SqlError::new(
                    1075,
                    "42000",
                    "Incorrect table definition; there can be only one auto column and it must be defined as a key",
                ));
            }
        }
        let checks = self.foreign_key_checks();
        for fk in &fks {
            let f = crate::sql::foreign_key::from_ast(&info, fk)?;
            // (The txn sees the catalog: a key may reference a table made earlier in the session.)
            crate::sql::foreign_key::validate_and_index(cat.txn, &mut info, &f, checks)?;
            info.foreign_keys.push(f);
        }
        cat.put_table(&info)?;
        Ok(Output::ok())
    }

    /// `foreign_key_checks` (on unless a load turned it off).
    pub fn foreign_key_checks(&self) -> bool {
        self.vars.get("foreign_key_checks").is_none_or(|v| v == "1" || v.eq_ignore_ascii_case("on"))
    }

    async fn alter_op(
        &mut self,
        txn: &embedb_storage::Txn,
        cat: &Catalog<'_>,
        info: &mut TableInfo,
        op: AlterTableOperation,
    ) -> Result<()> {
        match op {
            AlterTableOperation::AddColumn { column_def, if_not_exists, column_position, .. } => {
                if info.column(&column_def.name.value).is_some() {
                    if if_not_exists {
                        return Ok(());
                    }
                    return Err(SqlError::new(1060, "42S21", format!("Duplicate column name '{}'", column_def.name.value)));
                }
                let (col, pk, unique) = column_from_ast(info, &column_def)?;
                if pk {
                    return Err(SqlError::unsupported("ADD COLUMN … PRIMARY KEY"));
                }
                if col.auto_increment {
                    return Err(SqlError::unsupported("ADD COLUMN … AUTO_INCREMENT"));
                }
                // Fill existing rows with the column's default (or generated value).
                let mut default = self.column_default_value(&col).await?;
                if !col.nullable && matches!(default, Datum::Null) && col.generated.is_none() && col.default.is_none() {
                    // MySQL fills the type's implicit default for NOT NULL columns without one.
                    default = match &col.ty {
                        // An ENUM's implicit default is its first member.
                        crate::sql::types::SqlType::Enum(members) => Datum::Bytes(members.first().cloned().unwrap_or_default().into_bytes()),
                        ty => crate::sql::types::zero_value(ty),
                    };
                }
                let old = info.clone();
                info.columns.push(col.clone());
                let rows = table::scan_rows(txn, &old, usize::MAX)?;
                if !rows.is_empty() {
                    let mut new_rows: Vec<table::Row> = rows
                        .into_iter()
                        .map(|mut r| {
                            r.values.push(default.clone());
                            r
                        })
                        .collect();
                    let texts = if col.generated.is_some() { self.fill_generated(info, &mut new_rows, None).await? } else { Default::default() };
                    self.queued_embeddings |= !texts.is_empty();
                    if !col.nullable && new_rows.iter().any(|r| matches!(r.values.last(), Some(Datum::Null))) {
                        return Err(SqlError::new(1138, "22004", "Invalid use of NULL value"));
                    }
                    for (ri, r) in new_rows.iter().enumerate() {
                        table::put_row(txn, info, r)?;
                        texts.queue(txn, info, ri, r.handle);
                    }
                }
                if unique {
                    add_index(txn, info, None, vec![col.key()], true, false)?;
                }
                // Rows are encoded by column id: placing the column is a catalog change only.
                if let Some(p) = &column_position {
                    crate::sql::alter::place_column(info, info.columns.len() - 1, p)?;
                }
                Ok(())
            }
            AlterTableOperation::DropColumn { column_names, if_exists, .. } => {
                for c in column_names {
                    let Some(pos) = info.column_index(&c.value) else {
                        if if_exists {
                            continue;
                        }
                        return Err(SqlError::new(1091, "42000", format!("Can't DROP '{}'; check that column/key exists", c.value)));
                    };
                    let key = info.columns[pos].key();
                    if info.pk_handle.as_deref() == Some(key.as_str()) || info.primary().is_some_and(|p| p.columns.contains(&key)) {
                        return Err(SqlError::new(8200, "HY000", format!("Unsupported drop integer primary key column {}", c.value)));
                    }
                    if info.indexes.iter().any(|i| matches!(i.kind, IndexKind::Vector { .. }) && i.columns.contains(&key)) {
                        return Err(SqlError::new(8200, "HY000", format!("can't drop column {} with Vector Key covered now", c.value)));
                    }
                    if info.columns.len() == 1 {
                        return Err(SqlError::new(1090, "42000", "You can't delete all columns with ALTER TABLE; use DROP TABLE instead"));
                    }
                    // Indexes over the column lose it; an index left with no column goes away.
                    let touched: Vec<IndexInfo> = info.indexes.iter().filter(|i| i.columns.contains(&key)).cloned().collect();
                    for ix in touched {
                        table::drop_index_entries(txn, info, &ix)?;
                        info.indexes.retain(|i| i.id != ix.id);
                        let rest: Vec<String> = ix.columns.iter().filter(|c| **c != key).cloned().collect();
                        if !rest.is_empty() {
                            add_index(txn, info, Some(ix.name.clone()), rest, ix.unique, ix.primary)?;
                        }
                    }
                    info.columns.remove(pos);
                }
                Ok(())
            }
            AlterTableOperation::AddConstraint { constraint, .. } => match constraint {
                TableConstraint::Unique(u) => {
                    let cols = u.columns.iter().map(|c| index_column_name(&c.column.expr)).collect::<Result<_>>()?;
                    add_index(txn, info, u.index_name.as_ref().or(u.name.as_ref()).map(|i| i.value.clone()), cols, true, false)
                }
                TableConstraint::Index(ix) => {
                    let cols = ix.columns.iter().map(|c| index_column_name(&c.column.expr)).collect::<Result<_>>()?;
                    add_index(txn, info, ix.name.as_ref().map(|i| i.value.clone()), cols, false, false)
                }
                TableConstraint::PrimaryKey(_) => Err(SqlError::unsupported("ALTER TABLE ADD PRIMARY KEY")),
                TableConstraint::ForeignKey(fk) => {
                    let f = crate::sql::foreign_key::from_ast(info, &fk)?;
                    let checks = self.foreign_key_checks();
                    crate::sql::foreign_key::validate_and_index(txn, info, &f, checks)?;
                    info.foreign_keys.push(f);
                    if checks {
                        crate::sql::foreign_key::check_existing_rows(txn, info)?;
                    }
                    Ok(())
                }
                _ => Ok(()),
            },
            AlterTableOperation::DropIndex { name } => drop_index(txn, info, &name.value, false),
            AlterTableOperation::DropForeignKey { name, .. } => {
                let before = info.foreign_keys.len();
                info.foreign_keys.retain(|f| !f.name.eq_ignore_ascii_case(&name.value));
                if info.foreign_keys.len() == before {
                    return Err(SqlError::new(1091, "42000", format!("Can't DROP '{}'; check that column/key exists", name.value)));
                }
                Ok(())
            }
            AlterTableOperation::RenameTable { table_name } => {
                let new = match table_name {
                    ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => n,
                };
                let (ndb, nt) = self.resolve_name(&new)?;
                let (odb, ot) = (info.db.clone(), info.name.clone());
                rename_table(cat, &odb, &ot, &ndb, &nt)?;
                info.db = ndb;
                info.name = nt;
                Ok(())
            }
            AlterTableOperation::ModifyColumn { col_name, data_type, options, column_position } => {
                let def = ColumnDef { name: col_name.clone(), data_type, options: options.into_iter().map(|option| ast::ColumnOptionDef { name: None, option }).collect() };
                self.change_column(txn, info, &col_name, &def, column_position.as_ref()).await
            }
            AlterTableOperation::ChangeColumn { old_name, new_name, data_type, options, column_position } => {
                let def = ColumnDef { name: new_name, data_type, options: options.into_iter().map(|option| ast::ColumnOptionDef { name: None, option }).collect() };
                self.change_column(txn, info, &old_name, &def, column_position.as_ref()).await
            }
            AlterTableOperation::RenameColumn { old_column_name, new_column_name } => {
                self.rename_column(info, &old_column_name, &new_column_name)
            }
            AlterTableOperation::AlterColumn { column_name, op } => match op {
                ast::AlterColumnOperation::SetDefault { value } => {
                    self.set_column_default(info, &column_name, Some(value.to_string())).await
                }
                ast::AlterColumnOperation::DropDefault => self.set_column_default(info, &column_name, None).await,
                other => Err(SqlError::unsupported(format!("ALTER TABLE … ALTER COLUMN {other}"))),
            },
            AlterTableOperation::AutoIncrement { value, .. } => {
                let n: u64 = value.value.to_string().parse().map_err(|_| SqlError::syntax(format!("near AUTO_INCREMENT = {}", value.value)))?;
                self.engine.store.counter_rebase(&info.id_counter(), n.saturating_sub(1))?;
                Ok(())
            }
            // MySQL's online-DDL hints: every change here is atomic already.
            AlterTableOperation::Algorithm { .. } | AlterTableOperation::Lock { .. } => Ok(()),
            other => Err(SqlError::unsupported(format!("ALTER TABLE {other}"))),
        }
    }
}

/// Whether `stmt` is a schema change that ends the open transaction before it runs (MySQL's
/// implicit commit), and so goes to [`Session::ddl`]. Statements this server does not run are not:
/// they fail without touching the transaction.
pub fn commits_implicitly(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::CreateDatabase { .. }
            | Statement::CreateSchema { .. }
            | Statement::Drop { .. }
            | Statement::CreateTable(_)
            | Statement::Truncate(_)
            | Statement::RenameTable(_)
            | Statement::CreateIndex(_)
            | Statement::AlterTable(_)
            | Statement::CreateView { .. }
            | Statement::AlterView { .. }
    )
}

/// MySQL's 1235 for a statement this server does not run.
pub fn unsupported_statement(stmt: &Statement) -> SqlError {
    SqlError::unsupported(format!("statement '{}'", first_words(&stmt.to_string())))
}

fn create_database(s: &mut Session, cat: &Catalog, name: &str, if_not_exists: bool, collation: &str) -> Result<Output> {
    if cat.database(name)?.is_some() {
        if if_not_exists {
            s.note(1007, format!("Can't create database '{name}'; database exists"));
            return Ok(Output::ok());
        }
        return Err(SqlError::db_exists(name));
    }
    cat.create_database_with(name, collation)?;
    Ok(Output::affected(1))
}

fn rename_table(cat: &Catalog, db: &str, old: &str, ndb: &str, new: &str) -> Result<()> {
    let mut info = cat.must_table(db, old)?;
    if cat.database(ndb)?.is_none() {
        return Err(SqlError::unknown_db(ndb));
    }
    if cat.table(ndb, new)?.is_some() {
        return Err(SqlError::table_exists(new));
    }
    cat.delete_table(db, old);
    let before = info.clone();
    info.db = ndb.to_string();
    info.name = new.to_string();
    crate::sql::foreign_key::follow_parent(cat, &before, &mut info)?;
    cat.put_table(&info)
}

/// `EMBED_TEXT(model, text [, options])` in a generated column: model and options must be string
/// constants (so searches can find them), and the model must name a known provider.
fn check_embed_text(e: &Expr) -> Result<()> {
    let Expr::Function(f) = e else { return Ok(()) };
    if !f.name.to_string().eq_ignore_ascii_case("embed_text") {
        return Ok(());
    }
    let args: Vec<&Expr> = crate::sql::rewrite::plain_args(f);
    if args.len() < 2 || args.len() > 3 {
        return Err(SqlError::param_count("embed_text"));
    }
    let string = |x: &Expr| match x {
        Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    let model = string(args[0]).ok_or_else(|| SqlError::other("EMBED_TEXT() only accepts model name using string constant"))?;
    crate::embed::parse_model(&model)?;
    if let Some(o) = args.get(2) {
        let o = string(o).ok_or_else(|| SqlError::other("EMBED_TEXT() only accepts JSON options using string constant"))?;
        crate::embed::column_mode(&crate::embed::parse_options(Some(&o))?)?;
    }
    Ok(())
}

/// A generated column's direct `EMBED_TEXT(model, text [, options])` call, in parts.
pub struct EmbedCall {
    pub model: String,
    pub options: Option<String>,
    /// The text argument, as written.
    pub text: Expr,
}

impl EmbedCall {
    /// The parts of a parsed `EMBED_TEXT` call whose model (and options, if given) are string
    /// literals.
    pub fn of(e: &Expr) -> Option<EmbedCall> {
        let Expr::Function(f) = e else { return None };
        if !f.name.to_string().eq_ignore_ascii_case("embed_text") {
            return None;
        }
        let args = crate::sql::rewrite::plain_args(f);
        let literal = |i: usize| match args.get(i) {
            Some(Expr::Value(v)) => match &v.value {
                ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        };
        Some(EmbedCall { model: literal(0)?, options: literal(2), text: (*args.get(1)?).clone() })
    }

    /// [`EmbedCall::of`] a generated column's expression text.
    pub fn parse(expr: &str) -> Option<EmbedCall> {
        let dialect = crate::sql::dialect::TidbDialect::default();
        let e = datafusion::sql::sqlparser::parser::Parser::new(&dialect).try_with_sql(expr).ok()?.parse_expr().ok()?;
        EmbedCall::of(&e)
    }

    /// Whether its options chunk long texts (`"embedb.long_text": "chunk"`).
    pub fn chunked(&self) -> bool {
        chunked_options(self.options.as_deref())
    }
}

/// The model and options of a generated column defined as a direct `EMBED_TEXT` call.
pub fn embed_text_call(expr: &str) -> Option<(String, Option<String>)> {
    EmbedCall::parse(expr).map(|c| (c.model, c.options))
}

/// Whether `EMBED_TEXT` options chunk long texts.
fn chunked_options(options: Option<&str>) -> bool {
    use crate::embed::{own_options, parse_options};
    parse_options(options).ok().and_then(|m| own_options(&m).ok()).is_some_and(|o| o.long_text.is_chunk())
}

/// The embedding mode of a generated column's expression: `Async` only for an `EMBED_TEXT` call
/// whose options say so. Cheap for the common case (no `embedb.mode` in the text: no parse).
pub fn embed_mode(expr: &str) -> crate::embed::Mode {
    use crate::embed::{column_mode, parse_options, Mode};
    if !expr.contains("embedb.mode") {
        return Mode::Sync;
    }
    embed_text_call(expr)
        .and_then(|(_, o)| parse_options(o.as_deref()).ok())
        .and_then(|m| column_mode(&m).ok())
        .unwrap_or(Mode::Sync)
}

/// Whether a generated column's expression is an `EMBED_TEXT` call whose options chunk long
/// texts (`"embedb.long_text": "chunk"`): its values hold one vector per chunk.
pub fn embed_chunked(expr: &str) -> bool {
    expr.contains("chunk") && EmbedCall::parse(expr).is_some_and(|c| c.chunked())
}

fn index_comment(opts: &[ast::IndexOption]) -> Option<String> {
    opts.iter().find_map(|o| match o {
        ast::IndexOption::Comment(c) => Some(c.clone()),
        _ => None,
    })
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn comment_text(c: &ast::CommentDef) -> String {
    match c {
        ast::CommentDef::WithEq(s) | ast::CommentDef::WithoutEq(s) => s.clone(),
    }
}

fn table_comment(opts: &ast::CreateTableOptions) -> String {
    let list = match opts {
        ast::CreateTableOptions::With(v) | ast::CreateTableOptions::Options(v) | ast::CreateTableOptions::Plain(v) => v,
        _ => return String::new(),
    };
    for o in list {
        let s = o.to_string();
        if s.to_ascii_uppercase().starts_with("COMMENT") {
            if let (Some(a), Some(b)) = (s.find('\''), s.rfind('\'')) {
                if b > a {
                    return s[a + 1..b].replace("''", "'");
                }
            }
        }
    }
    String::new()
}

/// A column name in an index definition.
pub fn index_column_name(e: &Expr) -> Result<String> {
    match e {
        Expr::Identifier(i) => Ok(i.value.to_lowercase()),
        Expr::CompoundIdentifier(ids) => Ok(ids.last().unwrap().value.to_lowercase()),
        // `KEY (col(10))` prefix lengths parse as a function call.
        Expr::Function(f) => Ok(f.name.to_string().to_lowercase()),
        other => Err(SqlError::unsupported(format!("index on expression {other}"))),
    }
}

/// Build a column from its definition; also says whether it was declared PRIMARY KEY / UNIQUE inline.
pub(crate) fn column_from_ast(info: &mut TableInfo, cd: &ColumnDef) -> Result<(ColumnInfo, bool, bool)> {
    let ty = SqlType::from_ast(&cd.data_type)?;
    let mut col = ColumnInfo::plain(info.next_column_id, &cd.name.value, ty, true);
    info.next_column_id += 1;
    let (mut pk, mut unique) = (false, false);
    for o in &cd.options {
        match &o.option {
            ColumnOption::Null => col.nullable = true,
            ColumnOption::NotNull => col.nullable = false,
            ColumnOption::Default(e) => col.default = Some(e.to_string()),
            ColumnOption::PrimaryKey(_) => pk = true,
            ColumnOption::Unique(_) => unique = true,
            ColumnOption::Comment(c) => col.comment = c.clone(),
            ColumnOption::Collation(n) => col.collation = Some(crate::sql::collation::checked(&n.to_string())?),
            ColumnOption::OnUpdate(_) => col.on_update_current_timestamp = true,
            ColumnOption::Generated { generation_expr: Some(e), generation_expr_mode, .. } => {
                let stored = matches!(generation_expr_mode, Some(ast::GeneratedExpressionMode::Stored));
                check_embed_text(e)?;
                col.generated = Some(Generated { expr: e.to_string(), stored });
            }
            ColumnOption::DialectSpecific(tokens) => {
                if tokens.iter().any(|t| t.to_string().eq_ignore_ascii_case("AUTO_INCREMENT")) {
                    if !col.ty.is_integer() && !matches!(col.ty, SqlType::Float | SqlType::Double) {
                        return Err(SqlError::new(1063, "42000", format!("Incorrect column specifier for column '{}'", col.name)));
                    }
                    col.auto_increment = true;
                }
            }
            _ => {}
        }
    }
    if col.ty.is_vector() && (pk || unique) {
        return Err(SqlError::other(format!("vector column '{}' cannot be part of a unique or primary key", col.name)));
    }
    if pk {
        col.nullable = false;
    }
    Ok((col, pk, unique))
}

fn add_index_def(info: &mut TableInfo, name: Option<String>, cols: Vec<String>, unique: bool) -> Result<IndexInfo> {
    for c in &cols {
        let Some(ci) = info.column(c) else {
            return Err(SqlError::new(1072, "42000", format!("Key column '{c}' doesn't exist in table")));
        };
        if ci.ty.is_vector() {
            return Err(SqlError::other(format!("vector column '{}' cannot be part of an ordered index", ci.name)));
        }
    }
    let name = match name {
        Some(n) => n,
        None => {
            // MySQL names an unnamed index after its first column, adding _2, _3 … on clashes.
            let base = info.column(&cols[0]).map(|c| c.name.clone()).unwrap_or(cols[0].clone());
            let mut n = base.clone();
            let mut k = 2;
            while info.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(&n)) {
                n = format!("{base}_{k}");
                k += 1;
            }
            n
        }
    };
    if info.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(&name)) {
        return Err(SqlError::new(1061, "42000", format!("Duplicate key name '{name}'")));
    }
    let ix = IndexInfo {
        id: info.next_index_id,
        name,
        columns: cols,
        unique,
        primary: false,
        kind: IndexKind::Btree,
        comment: String::new(),
    };
    info.next_index_id += 1;
    info.indexes.push(ix.clone());
    Ok(ix)
}

pub(crate) fn add_index(
    txn: &embedb_storage::Txn,
    info: &mut TableInfo,
    name: Option<String>,
    cols: Vec<String>,
    unique: bool,
    primary: bool,
) -> Result<()> {
    let mut ix = add_index_def(info, name, cols, unique)?;
    if primary {
        ix.primary = true;
        ix.name = "PRIMARY".into();
        if let Some(last) = info.indexes.last_mut() {
            *last = ix.clone();
        }
    }
    table::backfill_index(txn, info, &ix)
}

fn drop_index(txn: &embedb_storage::Txn, info: &mut TableInfo, name: &str, if_exists: bool) -> Result<()> {
    let Some(pos) = info.indexes.iter().position(|i| i.name.eq_ignore_ascii_case(name) && !i.primary) else {
        if if_exists {
            return Ok(());
        }
        return Err(SqlError::new(1091, "42000", format!("Can't DROP '{name}'; check that column/key exists")));
    };
    let ix = info.indexes.remove(pos);
    if ix.kind == IndexKind::Btree {
        table::drop_index_entries(txn, info, &ix)?;
    }
    Ok(())
}
