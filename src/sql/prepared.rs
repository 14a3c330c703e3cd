//! Prepared statements: parsed and checked once at PREPARE, bound with typed values at EXECUTE.
//!
//! `COM_STMT_PREPARE "SELECT name FROM users WHERE id = ?"` walks through like this:
//!
//! 1. [`Session::prepare`] parses the text once. Each `?` becomes a numbered placeholder (`$1`,
//!    `$2`, … in the order they appear in the text, whatever order the AST keeps them in).
//! 2. The statement is checked as MySQL checks it at PREPARE: a syntax error is 1064 here, an
//!    unknown table 1146, an unknown column 1054. A query is planned once with every placeholder
//!    as NULL to learn its result columns, which the client needs before it executes (the C API
//!    binds its result buffers from them).
//! 3. [`Session::execute_prepared`] replaces each placeholder in a copy of the kept AST with the
//!    typed value the client sent (an integer stays a number, a string a quoted string, a DOUBLE
//!    a DOUBLE; no text is substituted and nothing is parsed again) and runs it like any other
//!    statement. The plan is made again on each execute from the kept AST, so DDL between two
//!    executes is always seen, and so are the bound values where the planner uses them (index
//!    ranges, `VEC_EMBED_*` query text, LIMIT). A vector search bound with a vector goes
//!    through the session's plan cache like its text form (`Shape::of_prepared`), and a read by
//!    key skips the planner (`point_get`), so neither is planned on every execute.
//!
//! A few statements the SQL parser does not know (`SHOW …`, table options after `ALTER TABLE`,
//! vector-index DDL) are kept as text instead, and their parameters are written into the text
//! as literals at EXECUTE.
//!
//! SQL's own `PREPARE name FROM '…'`, `EXECUTE name [USING @a, …]` and `DEALLOCATE PREPARE name`
//! use the same two steps; their statements live in a separate namespace, as in MySQL.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::sql::sqlparser::ast::{self, visit_expressions, visit_expressions_mut, Expr, Statement, Value, ValueWithSpan};
use datafusion::sql::sqlparser::tokenizer::Span;

use crate::error::{Result, SqlError};
use crate::session::{Output, Session};
use crate::sql::parser;
use crate::sql::rewrite::SessionValues;

/// One prepared statement.
#[derive(Debug)]
pub struct Prepared {
    /// The text as the client sent it (with its `?`s).
    pub sql: String,
    /// How many values EXECUTE must bind.
    pub params: usize,
    /// The result columns, when the statement returns rows and they could be known at PREPARE.
    pub columns: Option<SchemaRef>,
    body: Body,
}

#[derive(Debug)]
enum Body {
    /// Parsed once; placeholders are `$1 … $n`.
    Parsed(Arc<Statement>),
    /// Run as text with the values written in (statements the SQL parser does not know).
    Text(Vec<usize>),
}

impl Prepared {
    /// The statement's text with `args` written in as literals (to run it elsewhere: a cluster
    /// reader forwards writes to the writer).
    pub fn text_with(&self, args: &[Expr]) -> String {
        match &self.body {
            Body::Text(positions) => written_in(&self.sql, positions, args),
            Body::Parsed(_) => written_in(&self.sql, &placeholder_positions(&self.sql), args),
        }
    }
}

/// `sql` with each `?` at `positions` replaced by the literal of its argument.
fn written_in(sql: &str, positions: &[usize], args: &[Expr]) -> String {
    let mut out = String::with_capacity(sql.len() + 16 * args.len());
    let mut last = 0;
    for (at, e) in positions.iter().zip(args) {
        out.push_str(&sql[last..*at]);
        out.push_str(&literal_text(e));
        last = at + 1;
    }
    out.push_str(&sql[last..]);
    out
}

/// A value bound to a placeholder at EXECUTE.
#[derive(Debug, Clone)]
pub enum Bound {
    /// A literal: a number, a string, NULL, ….
    Literal(Expr),
    /// A vector given as numbers (the in-process API binds numpy arrays so). A vector search the
    /// plan cache serves takes the numbers as they are; the text `[1,2.5]` is made only where the
    /// statement is planned from its text (its first run).
    Vector(Arc<[f32]>),
}

impl Bound {
    /// The value as a literal of the statement's text.
    pub fn literal(&self) -> Expr {
        match self {
            Bound::Literal(e) => e.clone(),
            Bound::Vector(v) => Expr::value(Value::SingleQuotedString(embedb_vector::format_vector(v))),
        }
    }
}

/// A statement ready to run: parsed, or a prepared statement's parsed text with its values
/// still apart, bound into it only if something plans it ([`Parsed::statement`]).
#[derive(Debug, Clone)]
pub enum Parsed {
    Statement(Statement),
    /// (Shared with the prepared statement: copied only if planned.)
    Unbound(Arc<Statement>, Vec<Bound>),
}

impl Parsed {
    pub fn statement(self) -> Statement {
        match self {
            Parsed::Statement(s) => s,
            Parsed::Unbound(s, args) => {
                let mut s = Arc::unwrap_or_clone(s);
                let literals: Vec<Expr> = args.iter().map(Bound::literal).collect();
                bind(&mut s, &literals);
                s
            }
        }
    }
}

impl Session {
    /// EXECUTE with values that may include vectors given as numbers ([`Bound::Vector`]). A
    /// vector search is then served by the plan cache without the vectors' text (see the module
    /// doc); anything else runs as [`Session::execute_prepared`] with the vectors as text.
    pub async fn execute_prepared_bound(&mut self, p: &Prepared, args: Vec<Bound>) -> Result<Output> {
        if args.len() != p.params {
            return Err(SqlError::new(1210, "HY000", "Incorrect arguments to EXECUTE"));
        }
        if let (Body::Parsed(stmt), true) = (&p.body, args.iter().any(|a| matches!(a, Bound::Vector(_)))) {
            // (Stand-ins for the vectors: the shape takes their numbers instead.)
            let stand_ins: Vec<Expr> = args.iter().map(|a| match a {
                Bound::Literal(e) => e.clone(),
                Bound::Vector(_) => Expr::value(Value::Null),
            }).collect();
            let typed: Vec<Option<Arc<[f32]>>> = args.iter().map(|a| match a {
                Bound::Vector(v) => Some(v.clone()),
                Bound::Literal(_) => None,
            }).collect();
            if let Some(shape) = crate::sql::plan_cache::Shape::of_prepared_typed(&p.sql, &stand_ins, &typed) {
                return self.run_source(&p.sql, Some((Parsed::Unbound(stmt.clone(), args), Some(shape)))).await;
            }
        }
        self.execute_prepared(p, args.iter().map(Bound::literal).collect()).await
    }

    /// PREPARE: parse, check and describe `sql` (see the module doc).
    pub async fn prepare(&mut self, sql: &str) -> Result<Prepared> {
        let sql = &*parser::expand_executable_comments(sql);
        let first = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("").to_ascii_lowercase();
        // `run_special` reads these from their text before any parsing; SET only when the
        // parser does not know it (`SET CHARACTER SET`).
        let always_text = matches!(first.as_str(), "show" | "alter" | "create");
        let mut stmt = match parser::parse_one(sql) {
            Ok(s) if !always_text => s,
            Err(e) if !always_text && first != "set" => return Err(e),
            _ => {
                let positions = placeholder_positions(sql);
                let columns = if positions.is_empty() && first == "show" { self.describe_by_running(sql, None).await? } else { None };
                return Ok(Prepared { sql: sql.to_string(), params: positions.len(), columns, body: Body::Text(positions) });
            }
        };
        let params = number_placeholders(&mut stmt);
        // Checked here too, so that PREPARE does not describe a table the session may not read.
        self.authorize(&stmt)?;
        let columns = self.check_and_describe(sql, &stmt, params).await?;
        Ok(Prepared { sql: sql.to_string(), params, columns, body: Body::Parsed(Arc::new(stmt)) })
    }

    /// EXECUTE: bind `args` (one literal expression per parameter) and run the statement.
    pub async fn execute_prepared(&mut self, p: &Prepared, args: Vec<Expr>) -> Result<Output> {
        if args.len() != p.params {
            return Err(SqlError::new(1210, "HY000", "Incorrect arguments to EXECUTE"));
        }
        match &p.body {
            Body::Parsed(stmt) => {
                // A vector search's plan is kept and re-bound like a text one's (`plan_cache`).
                let shape = crate::sql::plan_cache::Shape::of_prepared(&p.sql, &args);
                let mut stmt = (**stmt).clone();
                bind(&mut stmt, &args);
                self.run_parsed(&p.sql, stmt, shape).await
            }
            Body::Text(positions) => self.run(&written_in(&p.sql, positions, &args)).await,
        }
    }

    /// SQL's `PREPARE name FROM 'text' | @var`, `EXECUTE name [USING @a, …]` and
    /// `DEALLOCATE | DROP PREPARE name`; None for any other statement.
    pub async fn sql_prepared_statement(&mut self, sql: &str) -> Result<Option<Output>> {
        let mut words = sql.trim().trim_end_matches(';').splitn(2, char::is_whitespace);
        let verb = words.next().unwrap_or("").to_ascii_lowercase();
        let rest = words.next().unwrap_or("").trim_start();
        let (name, rest) = |s: &str| -> (String, String) {
            let s = s.trim_start();
            if let Some(q) = s.strip_prefix('`') {
                let end = q.find('`').unwrap_or(q.len());
                (q[..end].to_ascii_lowercase(), q[(end + 1).min(q.len())..].to_string())
            } else {
                let end = s.find(|c: char| c.is_whitespace()).unwrap_or(s.len());
                (s[..end].to_ascii_lowercase(), s[end..].to_string())
            }
        }(rest);
        let keyword = |s: &str, k: &str| {
            let t = s.trim_start();
            t.get(..k.len()).is_some_and(|h| h.eq_ignore_ascii_case(k)) && t[k.len()..].starts_with(char::is_whitespace)
        };
        let unknown = |name: &str, what: &str| SqlError::new(1243, "HY000", format!("Unknown prepared statement handler ({name}) given to {what}"));
        match verb.as_str() {
            "prepare" if keyword(&rest, "from") => {
                let source = rest.trim_start()[4..].trim();
                let text = match crate::sql::dml::parse_expr(source)? {
                    Expr::Value(ValueWithSpan { value: Value::SingleQuotedString(t) | Value::DoubleQuotedString(t), .. }) => t,
                    Expr::Identifier(id) if id.value.starts_with('@') => match self.user_var(&id.value[1..]) {
                        Expr::Value(ValueWithSpan { value: Value::SingleQuotedString(t), .. }) => t,
                        other => other.to_string(),
                    },
                    other => return Err(SqlError::syntax(format!("near '{other}'"))),
                };
                // A failed PREPARE drops the old statement of that name, as in MySQL.
                self.sql_prepared.remove(&name);
                let p = self.prepare(&text).await?;
                self.sql_prepared.insert(name, Arc::new(p));
                Ok(Some(Output::Ok { affected: 0, last_insert_id: 0, info: "Statement prepared".into() }))
            }
            "execute" if !name.is_empty() => {
                let p = self.sql_prepared.get(&name).cloned().ok_or_else(|| unknown(&name, "EXECUTE"))?;
                let mut args = Vec::new();
                if keyword(&rest, "using") {
                    for var in rest.trim_start()[5..].split(',') {
                        let var = var.trim();
                        let Some(v) = var.strip_prefix('@') else {
                            return Err(SqlError::syntax(format!("near '{var}': EXECUTE … USING takes user variables")));
                        };
                        args.push(self.user_var(v.trim_matches('`')));
                    }
                } else if !rest.trim().is_empty() {
                    return Err(SqlError::syntax(format!("near '{}'", rest.trim())));
                }
                self.execute_prepared(&p, args).await.map(Some)
            }
            "deallocate" | "drop" if name == "prepare" && !rest.trim().is_empty() => {
                let name = rest.trim().trim_matches('`').to_ascii_lowercase();
                self.sql_prepared.remove(&name).ok_or_else(|| unknown(&name, "DEALLOCATE PREPARE"))?;
                Ok(Some(Output::ok()))
            }
            _ => Ok(None),
        }
    }

    /// MySQL's checks at PREPARE, and the result columns of a statement that returns rows.
    async fn check_and_describe(&mut self, sql: &str, stmt: &Statement, params: usize) -> Result<Option<SchemaRef>> {
        let nulls = vec![Expr::value(Value::Null); params];
        let mut probe = stmt.clone();
        bind(&mut probe, &nulls);
        match &probe {
            Statement::Query(_) => {
                let txn = Arc::new(self.engine.store.begin()?);
                let saved = std::mem::replace(&mut self.source, sql.to_string());
                let r = self.describe_query(probe, txn.clone()).await;
                self.source = saved;
                txn.rollback();
                let schema = r?;
                let out = self.upper_case_catalog_headers_for(sql, Output::Rows { schema, batches: vec![] });
                match out {
                    Output::Rows { schema, .. } => Ok(Some(schema)),
                    _ => Ok(None),
                }
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                let txn = Arc::new(self.engine.store.begin()?);
                let r = self.check_dml(&probe, &txn).await;
                txn.rollback();
                r.map(|()| None)
            }
            Statement::ExplainTable { .. } if params == 0 => self.describe_by_running(sql, Some(stmt.clone())).await,
            _ => Ok(None),
        }
    }

    /// The columns of a read-only statement without parameters (SHOW, DESCRIBE), by running it.
    async fn describe_by_running(&mut self, sql: &str, parsed: Option<Statement>) -> Result<Option<SchemaRef>> {
        let out = match parsed {
            Some(stmt) => self.run_parsed(sql, stmt, None).await?,
            None => self.run(sql).await?,
        };
        Ok(match out {
            Output::Rows { schema, .. } if !schema.fields().is_empty() => Some(schema),
            _ => None,
        })
    }

    /// INSERT/UPDATE/DELETE at PREPARE: the tables exist (1146) and the columns they name do (1054).
    async fn check_dml(&mut self, stmt: &Statement, txn: &Arc<embedb_storage::Txn>) -> Result<()> {
        let df = datafusion::sql::parser::Statement::Statement(Box::new(stmt.clone()));
        self.check_tables(&df, txn)?;
        let cat = crate::sql::catalog::Catalog::new(txn);
        let unknown = |c: &str, place: &str| SqlError::new(1054, "42S22", format!("Unknown column '{c}' in '{place}'"));
        match stmt {
            Statement::Insert(ins) => {
                let name = match &ins.table {
                    ast::TableObject::TableName(n) => n.clone(),
                    other => return Err(SqlError::syntax(format!("near '{other}'"))),
                };
                let (db, t) = self.resolve_name(&name)?;
                let info = cat.must_table(&db, &t)?;
                for c in &ins.columns {
                    let name = last_part(c);
                    if info.column(&name).is_none() {
                        return Err(unknown(&name, "field list"));
                    }
                }
            }
            Statement::Update(up) => {
                // The WHERE clause and the assigned values are checked by planning them as a
                // SELECT over the same tables; the assigned columns against the table.
                let is_default = |e: &ast::Expr| matches!(e, ast::Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"));
                let mut items: Vec<String> = up.assignments.iter().map(|a| if is_default(&a.value) { "NULL".into() } else { a.value.to_string() }).collect();
                if items.is_empty() {
                    items.push("1".into());
                }
                let filter = up.selection.as_ref().map(|w| format!(" WHERE {w}")).unwrap_or_default();
                let probe = parser::parse_one(&format!("SELECT {} FROM {}{filter}", items.join(", "), up.table))?;
                self.describe_query(probe, txn.clone()).await?;
                if let ast::TableFactor::Table { name, .. } = &up.table.relation {
                    let (db, t) = self.resolve_name(name)?;
                    let info = cat.must_table(&db, &t)?;
                    for a in &up.assignments {
                        if let ast::AssignmentTarget::ColumnName(c) = &a.target {
                            let col = last_part(c);
                            if info.column(&col).is_none() {
                                return Err(unknown(&col, "field list"));
                            }
                        }
                    }
                }
            }
            Statement::Delete(del) => {
                let from = match &del.from {
                    ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
                };
                if let (Some(w), [one]) = (&del.selection, from.as_slice()) {
                    let probe = parser::parse_one(&format!("SELECT 1 FROM {one} WHERE {w}"))?;
                    self.describe_query(probe, txn.clone()).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The unquoted last part of a (maybe qualified) name.
fn last_part(n: &ast::ObjectName) -> String {
    match n.0.last() {
        Some(ast::ObjectNamePart::Identifier(i)) => i.value.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Number the placeholders `$1 … $n` in the order they appear in the text; returns n.
fn number_placeholders(stmt: &mut Statement) -> usize {
    let mut spans: Vec<(u64, u64)> = Vec::new();
    let _ = visit_expressions(stmt, |e| {
        if let Expr::Value(ValueWithSpan { value: Value::Placeholder(_), span }) = e {
            spans.push((span.start.line, span.start.column));
        }
        ControlFlow::<()>::Continue(())
    });
    let mut order: Vec<usize> = (0..spans.len()).collect();
    // Without positions (never from the parser) the visiting order stands.
    if spans.iter().all(|s| s.0 > 0) {
        order.sort_by_key(|&i| spans[i]);
    }
    let mut rank = vec![0; spans.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    let mut k = 0;
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::Value(ValueWithSpan { value: v @ Value::Placeholder(_), .. }) = e {
            *v = Value::Placeholder(format!("${}", rank[k] + 1));
            k += 1;
        }
        ControlFlow::<()>::Continue(())
    });
    spans.len()
}

/// Replace each `$i` with `args[i-1]`, keeping the placeholder's position in the text (column
/// headers are named from it: `SELECT ?` is a column named `?`, as in MySQL).
fn bind(stmt: &mut Statement, args: &[Expr]) {
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::Value(ValueWithSpan { value: Value::Placeholder(p), span }) = e {
            if let Some(arg) = p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()).and_then(|i| args.get(i.wrapping_sub(1))) {
                let span = *span;
                *e = arg.clone();
                set_span(e, span);
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

fn set_span(e: &mut Expr, span: Span) {
    match e {
        Expr::Value(v) => v.span = span,
        Expr::Cast { expr, .. } | Expr::UnaryOp { expr, .. } => set_span(expr, span),
        _ => {}
    }
}

/// A bound value as SQL text, for the statements kept as text. Backslashes are escaped: the
/// MySQL dialect reads them as escapes.
fn literal_text(e: &Expr) -> String {
    match e {
        Expr::Value(ValueWithSpan { value: Value::SingleQuotedString(s), .. }) => {
            let mut q = String::with_capacity(s.len() + 2);
            q.push('\'');
            for c in s.chars() {
                match c {
                    '\'' => q.push_str("''"),
                    '\\' => q.push_str("\\\\"),
                    '\0' => q.push_str("\\0"),
                    c => q.push(c),
                }
            }
            q.push('\'');
            q
        }
        other => other.to_string(),
    }
}

/// Byte offsets of the `?` placeholders outside quotes and comments.
pub fn placeholder_positions(sql: &str) -> Vec<usize> {
    parser::code_positions(sql, b'?')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_text_order() {
        // ON DUPLICATE KEY UPDATE and LIMIT are visited in other orders than they are written.
        let mut s = parser::parse_one("INSERT INTO t (a, b) VALUES (?, ?) ON DUPLICATE KEY UPDATE b = ?").unwrap();
        assert_eq!(number_placeholders(&mut s), 3);
        bind(&mut s, &[Expr::value(Value::Number("1".into(), false)), Expr::value(Value::SingleQuotedString("x".into())), Expr::value(Value::Null)]);
        assert_eq!(s.to_string(), "INSERT INTO t (a, b) VALUES (1, 'x') ON DUPLICATE KEY UPDATE b = NULL");
        let mut s = parser::parse_one("SELECT a FROM t WHERE b = ? ORDER BY a LIMIT ?").unwrap();
        assert_eq!(number_placeholders(&mut s), 2);
        bind(&mut s, &[Expr::value(Value::SingleQuotedString("it's".into())), Expr::value(Value::Number("5".into(), false))]);
        assert_eq!(s.to_string(), "SELECT a FROM t WHERE b = 'it''s' ORDER BY a LIMIT 5");
    }

    #[test]
    fn positions_skip_quotes_and_comments() {
        assert_eq!(placeholder_positions("SELECT ?, '?', `a?` /* ? */ FROM t -- ?\n WHERE x = ?"), vec![7, 51]);
    }

    #[test]
    fn text_literals_escape_backslashes() {
        assert_eq!(literal_text(&Expr::value(Value::SingleQuotedString("a\\b'c".into()))), "'a\\\\b''c'");
    }
}
