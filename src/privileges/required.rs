//! What a parsed statement needs, read from its syntax before it runs: SELECT on every table it
//! reads, and on its targets the privilege of its kind (INSERT, UPDATE, DELETE, CREATE, DROP,
//! ALTER, INDEX, CREATE VIEW). Names resolve against the current database; common table
//! expressions are not tables; `information_schema` is open to all (its rows are filtered).
//! Checking before running means a denied statement changes nothing, and a missing table the
//! user may not see answers 1142, not 1146, as MySQL does (it does not reveal what exists).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AlterTableOperation, CreateTableLikeKind, Expr, FromTable, FunctionArg, FunctionArgExpr, ObjectName, ObjectNamePart, ObjectType, OnInsert, Query,
    RenameTableNameKind, SchemaName, Statement, TableFactor, TableObject, Visit, Visitor,
};

use super::*;

/// Everything `stmt` needs, with unqualified names in `current_db`.
pub fn needs(stmt: &Statement, current_db: Option<&str>) -> Vec<Need> {
    let mut n = Needs { out: Vec::new(), ctes: cte_names(stmt), current_db };
    n.statement(stmt);
    n.out
}

struct Needs<'a> {
    out: Vec<Need>,
    ctes: Vec<String>,
    current_db: Option<&'a str>,
}

impl Needs<'_> {
    fn statement(&mut self, stmt: &Statement) {
        match stmt {
            Statement::Query(q) => self.reads(q),
            Statement::Explain { statement, .. } => self.statement(statement),
            Statement::Insert(i) => {
                let mut privs = INSERT;
                if matches!(i.on, Some(OnInsert::DuplicateKeyUpdate(_))) {
                    privs |= UPDATE;
                }
                if i.replace_into {
                    privs |= DELETE;
                }
                if let TableObject::TableName(name) = &i.table {
                    self.table(name, privs);
                }
                self.reads(&i.source);
                self.reads(&i.on);
                self.reads(&i.assignments);
            }
            Statement::Update(u) => {
                match &u.table.relation {
                    TableFactor::Table { name, .. } => self.table(name, UPDATE),
                    other => self.reads(other),
                }
                self.reads(&u.table.joins);
                self.reads(&u.from);
                self.reads(&u.selection);
                self.reads(&u.assignments);
            }
            Statement::Delete(d) => {
                let from = match &d.from {
                    FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
                };
                if d.tables.is_empty() {
                    for (k, t) in from.iter().enumerate() {
                        match &t.relation {
                            TableFactor::Table { name, .. } if k == 0 => self.table(name, DELETE),
                            other => self.reads(other),
                        }
                        self.reads(&t.joins);
                    }
                } else {
                    // DELETE a, b FROM a JOIN b …: the named ones lose rows, the rest are read.
                    for name in &d.tables {
                        self.table(name, DELETE);
                    }
                    let targets: Vec<String> = d.tables.iter().map(last_part).collect();
                    for t in from {
                        match &t.relation {
                            TableFactor::Table { name, alias, .. }
                                if targets.iter().any(|x| x.eq_ignore_ascii_case(&last_part(name)) || alias.as_ref().is_some_and(|a| a.name.value.eq_ignore_ascii_case(x))) => {}
                            other => self.reads(other),
                        }
                        self.reads(&t.joins);
                    }
                }
                self.reads(&d.using);
                self.reads(&d.selection);
            }
            Statement::CreateTable(ct) => {
                self.table(&ct.name, CREATE);
                self.reads(&ct.query);
                if let Some(CreateTableLikeKind::Plain(l) | CreateTableLikeKind::Parenthesized(l)) = &ct.like {
                    self.table(&l.name, SELECT);
                }
            }
            Statement::CreateView(v) => {
                self.table(&v.name, if v.or_replace { CREATE_VIEW | DROP } else { CREATE_VIEW });
                self.reads(&v.query);
            }
            Statement::AlterView { name, query, .. } => {
                self.table(name, CREATE_VIEW | DROP);
                self.reads(query);
            }
            Statement::CreateIndex(ci) => self.table(&ci.table_name, INDEX),
            Statement::CreateDatabase { db_name, .. } => self.db(&last_part(db_name), CREATE),
            Statement::CreateSchema { schema_name: SchemaName::Simple(n) | SchemaName::NamedAuthorization(n, _), .. } => self.db(&last_part(n), CREATE),
            Statement::Drop { object_type, names, table, .. } => match object_type {
                ObjectType::Database | ObjectType::Schema => {
                    for n in names {
                        self.db(&last_part(n), DROP);
                    }
                }
                ObjectType::Index => {
                    if let Some(t) = table {
                        self.table(t, INDEX);
                    }
                }
                _ => {
                    for n in names {
                        self.table(n, DROP);
                    }
                }
            },
            Statement::AlterTable(at) => {
                let mut privs = ALTER;
                for op in &at.operations {
                    match op {
                        AlterTableOperation::RenameTable { table_name: RenameTableNameKind::As(new) | RenameTableNameKind::To(new) } => {
                            privs |= DROP;
                            self.table(new, CREATE | INSERT);
                        }
                        AlterTableOperation::AddConstraint { .. } | AlterTableOperation::DropIndex { .. } => privs |= INDEX,
                        _ => {}
                    }
                }
                self.table(&at.name, privs);
            }
            Statement::RenameTable(renames) => {
                for r in renames {
                    self.table(&r.old_name, ALTER | DROP);
                    self.table(&r.new_name, CREATE | INSERT);
                }
            }
            Statement::Truncate(t) => {
                for target in &t.table_names {
                    self.table(&target.name, DROP);
                }
            }
            Statement::Analyze(a) => {
                if let Some(t) = &a.table_name {
                    self.table(t, SELECT | INSERT);
                }
            }
            Statement::ExplainTable { table_name, .. } => self.any_on_table(table_name),
            Statement::LockTables { tables } => {
                for t in tables {
                    let name = ObjectName(vec![ObjectNamePart::Identifier(t.table.clone())]);
                    self.table(&name, SELECT | LOCK_TABLES);
                }
            }
            Statement::Flush { .. } => self.out.push(Need::Global { any_of: RELOAD }),
            // Session statements (SET, USE, transactions, KILL) are checked where they run.
            _ => {}
        }
    }

    /// SELECT on every table that `node` reads: the relations it names, and the table a
    /// `HYBRID_SEARCH(table, …)` in FROM searches (a table function's own name is no table).
    fn reads<T: Visit>(&mut self, node: &T) {
        #[derive(Default)]
        struct Reads {
            names: Vec<ObjectName>,
            function_name_next: bool,
        }
        impl Visitor for Reads {
            type Break = ();
            fn pre_visit_table_factor(&mut self, f: &TableFactor) -> ControlFlow<()> {
                if let TableFactor::Table { name, args: Some(args), .. } = f {
                    self.function_name_next = true;
                    let searched = args.args.first().and_then(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => match e {
                            Expr::Identifier(i) => Some(ObjectName(vec![ObjectNamePart::Identifier(i.clone())])),
                            Expr::CompoundIdentifier(parts) => Some(ObjectName(parts.iter().cloned().map(ObjectNamePart::Identifier).collect())),
                            _ => None,
                        },
                        _ => None,
                    });
                    if let (true, Some(t)) = (last_part(name).eq_ignore_ascii_case("hybrid_search"), searched) {
                        self.names.push(t);
                    }
                }
                ControlFlow::Continue(())
            }
            fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<()> {
                if std::mem::take(&mut self.function_name_next) {
                    return ControlFlow::Continue(());
                }
                self.names.push(name.clone());
                ControlFlow::Continue(())
            }
        }
        let mut r = Reads::default();
        let _ = node.visit(&mut r);
        for name in r.names {
            self.table(&name, SELECT);
        }
    }

    fn resolve(&self, name: &ObjectName) -> Option<(String, String)> {
        let parts: Vec<String> = name.0.iter().map(|p| p.as_ident().map_or_else(|| p.to_string(), |i| i.value.clone())).collect();
        match parts.as_slice() {
            [t] => {
                if self.ctes.iter().any(|c| c.eq_ignore_ascii_case(t)) || t.eq_ignore_ascii_case("dual") {
                    return None;
                }
                // No current database: the statement fails with 1046 before it reads anything.
                Some((self.current_db?.to_string(), t.clone()))
            }
            [.., d, t] => Some((d.clone(), t.clone())),
            [] => None,
        }
    }

    fn table(&mut self, name: &ObjectName, privs: Privs) {
        let Some((db, table)) = self.resolve(name) else { return };
        // A session's own temporary table (a hidden name, which only its session can write —
        // `session::temporary`) needs no privilege once made; nor do the open schemas.
        if is_open_schema(&db) || table.starts_with('\u{1}') {
            return;
        }
        self.out.push(Need::Table { db, table, privs });
    }

    fn any_on_table(&mut self, name: &ObjectName) {
        // DESCRIBE asks for any privilege on the table: SELECT is what every grant that lets one
        // see a table carries in practice; a table-level grant of anything else is rare.
        self.table(name, SELECT);
    }

    fn db(&mut self, db: &str, privs: Privs) {
        self.out.push(Need::Db { db: db.to_string(), privs });
    }
}

fn last_part(name: &ObjectName) -> String {
    name.0.last().map(|p| p.as_ident().map_or_else(|| p.to_string(), |i| i.value.clone())).unwrap_or_default()
}

/// Names of every WITH clause's tables in a statement.
fn cte_names(stmt: &Statement) -> Vec<String> {
    struct Ctes(Vec<String>);
    impl Visitor for Ctes {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(w) = &q.with {
                self.0.extend(w.cte_tables.iter().map(|c| c.alias.name.value.clone()));
            }
            ControlFlow::Continue(())
        }
    }
    let mut c = Ctes(vec![]);
    let _ = stmt.visit(&mut c);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(sql: &str) -> Vec<Need> {
        needs(&crate::sql::parser::parse_one(sql).unwrap(), Some("app"))
    }

    fn t(db: &str, table: &str, privs: Privs) -> Need {
        Need::Table { db: db.into(), table: table.into(), privs }
    }

    #[test]
    fn reads_and_targets() {
        assert_eq!(n("SELECT * FROM t JOIN other.u ON 1 WHERE x IN (SELECT y FROM v)"), vec![t("app", "t", SELECT), t("other", "u", SELECT), t("app", "v", SELECT)]);
        assert_eq!(n("WITH c AS (SELECT 1) SELECT * FROM c, information_schema.tables"), vec![]);
        assert_eq!(n("INSERT INTO t SELECT * FROM s"), vec![t("app", "t", INSERT), t("app", "s", SELECT)]);
        assert_eq!(n("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1"), vec![t("app", "t", INSERT | UPDATE)]);
        assert_eq!(n("REPLACE INTO t VALUES (1)"), vec![t("app", "t", INSERT | DELETE)]);
        assert_eq!(n("UPDATE t SET a = (SELECT max(b) FROM s) WHERE id = 1"), vec![t("app", "t", UPDATE), t("app", "s", SELECT)]);
        assert_eq!(n("DELETE FROM t WHERE id IN (SELECT id FROM s)"), vec![t("app", "t", DELETE), t("app", "s", SELECT)]);
        assert_eq!(n("CREATE TABLE x AS SELECT * FROM s"), vec![t("app", "x", CREATE), t("app", "s", SELECT)]);
        assert_eq!(n("CREATE VIEW w AS SELECT * FROM s"), vec![t("app", "w", CREATE_VIEW), t("app", "s", SELECT)]);
        assert_eq!(n("DROP TABLE a, b"), vec![t("app", "a", DROP), t("app", "b", DROP)]);
        assert_eq!(n("DROP DATABASE other"), vec![Need::Db { db: "other".into(), privs: DROP }]);
        assert_eq!(n("CREATE INDEX i ON t (a)"), vec![t("app", "t", INDEX)]);
        assert_eq!(n("ALTER TABLE t ADD COLUMN c INT"), vec![t("app", "t", ALTER)]);
        assert_eq!(n("TRUNCATE TABLE t"), vec![t("app", "t", DROP)]);
        assert_eq!(n("EXPLAIN SELECT * FROM t"), vec![t("app", "t", SELECT)]);
        assert_eq!(n("SELECT * FROM HYBRID_SEARCH(docs, 'q', v, c, 5) AS h JOIN other.u"), vec![t("app", "docs", SELECT), t("other", "u", SELECT)]);
        assert_eq!(n("RENAME TABLE a TO b"), vec![t("app", "a", ALTER | DROP), t("app", "b", CREATE | INSERT)]);
    }
}
