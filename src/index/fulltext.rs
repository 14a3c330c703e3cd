//! FULLTEXT indexes in SQL: TiDB's DDL forms and `FTS_MATCH_WORD`.
//!
//! DDL (sqlparser knows none of the `WITH PARSER` forms, so they are read from the text, as the
//! vector index forms are):
//! - `CREATE TABLE t (…, FULLTEXT INDEX [name] (col) WITH PARSER STANDARD|MULTILINGUAL|NGRAM(…))`;
//! - `CREATE FULLTEXT INDEX name ON t (col) WITH PARSER …`;
//! - `ALTER TABLE t ADD FULLTEXT INDEX [name] (col) WITH PARSER …`;
//! each optionally followed by `ADD_COLUMNAR_REPLICA_ON_DEMAND`. The index is recorded in the
//! catalog (`IndexKind::Fulltext`) and built by `index::search`.
//!
//! Queries: `FTS_MATCH_WORD('query', col)` is rewritten (before planning) into
//! `fts_match_word('query', <row handle>, '<table id>:<column>')`. The handle is the table's
//! integer primary key or its hidden `_tidb_rowid`; the UDF looks the rows' BM25 scores up in the
//! index (all matches of the query, computed once per statement), 0 for rows that do not match,
//! so the same call works as a predicate (`WHERE FTS_MATCH_WORD(…)`), a score column and an
//! `ORDER BY … DESC` key.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::sql::sqlparser::ast::{self, Expr, Ident, Value};

use super::search::SearchIndexes;
use super::{ident, keyword, skip_ws};
use crate::error::{to_df, Result, SqlError};
use crate::sql::catalog::{IndexKind, TableInfo};
use crate::sql::types::SqlType;

/// One FULLTEXT index definition.
#[derive(Debug, Clone, PartialEq)]
pub struct FulltextDef {
    pub name: Option<String>,
    pub column: String,
    /// The parser as the catalog stores it (`STANDARD`, `MULTILINGUAL`, `NGRAM(2, 2)`).
    pub parser: String,
}

fn syntax(sql: &[u8], at: usize) -> SqlError {
    let near: String = String::from_utf8_lossy(&sql[at.min(sql.len())..]).chars().take(60).collect();
    SqlError::syntax(format!("near \"{near}\""))
}

/// `[name] (col) [WITH PARSER p] [ADD_COLUMNAR_REPLICA_ON_DEMAND]` from `i` (just after
/// `FULLTEXT INDEX|KEY`); `with_name`: a name may come first. Returns the definition and the end.
pub fn parse_definition(b: &[u8], mut i: usize, with_name: bool) -> Result<(FulltextDef, usize)> {
    i = skip_ws(b, i);
    let mut name = None;
    if with_name && b.get(i) != Some(&b'(') {
        let (n, j) = ident(b, i).ok_or_else(|| syntax(b, i))?;
        name = Some(n);
        i = skip_ws(b, j);
    }
    if b.get(i) != Some(&b'(') {
        return Err(syntax(b, i));
    }
    let (column, j) = ident(b, skip_ws(b, i + 1)).ok_or_else(|| syntax(b, i))?;
    i = skip_ws(b, j);
    if b.get(i) == Some(&b',') {
        return Err(SqlError::new(8200, "HY000", "Unsupported add fulltext index: only one column can be indexed"));
    }
    if b.get(i) != Some(&b')') {
        return Err(syntax(b, i));
    }
    i = skip_ws(b, i + 1);
    let mut parser = embedb_fulltext::Parser::Standard.to_string();
    if keyword(b, i, "with") {
        i = skip_ws(b, i + 4);
        if !keyword(b, i, "parser") {
            return Err(syntax(b, i));
        }
        i = skip_ws(b, i + 6);
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let mut end = i;
        let j = skip_ws(b, i);
        if b.get(j) == Some(&b'(') {
            let close = j + b[j..].iter().position(|&c| c == b')').ok_or_else(|| syntax(b, j))?;
            end = close + 1;
        }
        let text = String::from_utf8_lossy(&b[start..end]).into_owned();
        let p = embedb_fulltext::Parser::parse(&text)
            .map_err(|e| SqlError::new(8200, "HY000", format!("Unsupported add fulltext index: {e}")))?;
        parser = p.to_string();
        i = skip_ws(b, end);
    }
    if keyword(b, i, "add_columnar_replica_on_demand") {
        i = skip_ws(b, i + "add_columnar_replica_on_demand".len());
    }
    Ok((FulltextDef { name, column, parser }, i))
}

/// `CREATE FULLTEXT INDEX name ON [db.]t (col) …` → (table as written, definition).
pub fn parse_create(sql: &str) -> Result<(String, FulltextDef)> {
    let b = sql.as_bytes();
    let mut i = 0;
    for w in ["create", "fulltext", "index"] {
        i = skip_ws(b, i);
        if !keyword(b, i, w) {
            return Err(syntax(b, i));
        }
        i += w.len();
    }
    let (name, j) = ident(b, skip_ws(b, i)).ok_or_else(|| syntax(b, i))?;
    i = skip_ws(b, j);
    if !keyword(b, i, "on") {
        return Err(syntax(b, i));
    }
    i = skip_ws(b, i + 2);
    let (mut table, mut j) = ident(b, i).ok_or_else(|| syntax(b, i))?;
    if b.get(j) == Some(&b'.') {
        let (t, k) = ident(b, j + 1).ok_or_else(|| syntax(b, j))?;
        table = format!("{table}.{t}");
        j = k;
    }
    let (mut def, end) = parse_definition(b, j, false)?;
    if skip_ws(b, end) < b.len() && b[skip_ws(b, end)] != b';' {
        return Err(syntax(b, end));
    }
    def.name = Some(name);
    Ok((table, def))
}

/// Lift `FULLTEXT INDEX|KEY …` definitions out of a CREATE TABLE text: the text sqlparser can
/// parse, and the definitions.
pub fn extract(sql: &str) -> Result<(String, Vec<FulltextDef>)> {
    super::lift_definitions(
        sql,
        |b, j| {
            let k = skip_ws(b, j + "fulltext".len());
            if !keyword(b, j, "fulltext") {
                None
            } else if keyword(b, k, "index") {
                Some(k + 5)
            } else if keyword(b, k, "key") {
                Some(k + 3)
            } else {
                None
            }
        },
        |b, i| parse_definition(b, i, true),
    )
}

/// Add a FULLTEXT index to a table definition, with TiDB's checks.
pub fn add_index(info: &mut TableInfo, def: &FulltextDef) -> Result<()> {
    let col = info.column(&def.column).ok_or_else(|| SqlError::unknown_column(&def.column, "expression"))?;
    if !matches!(col.ty, SqlType::Char(..) | SqlType::VarChar(..) | SqlType::Text(..)) {
        return Err(SqlError::new(
            8200,
            "HY000",
            format!("Unsupported add fulltext index: only string columns can be indexed, but '{}' is {}", col.name, col.ty.to_sql()),
        ));
    }
    let key = col.key();
    if info.indexes.iter().any(|i| matches!(i.kind, IndexKind::Fulltext { .. }) && i.columns == [key.clone()]) {
        return Err(SqlError::new(8200, "HY000", format!("Unsupported add fulltext index: a fulltext index on '{}' already exists", col.name)));
    }
    let name = def.name.clone().unwrap_or_else(|| col.name.clone());
    super::push_search_index(info, name, key, IndexKind::Fulltext { parser: def.parser.clone() }, String::new())
}

// ---- FTS_MATCH_WORD --------------------------------------------------------------------------

/// Rewrite every `FTS_MATCH_WORD(q, col)` in `stmt` (see the module doc). `tables` are the tables
/// the statement reads. Returns the tables whose hidden row id the plan must expose.
pub fn rewrite_match(stmt: &mut ast::Statement, tables: &[TableInfo]) -> Result<Vec<(String, String)>> {
    let mut err = None;
    let mut need_handle = Vec::new();
    let _ = ast::VisitMut::visit(stmt, &mut TopKHint);
    let _ = ast::visit_expressions_mut(stmt, |e| {
        let Expr::Function(f) = e else { return ControlFlow::Continue(()) };
        let hinted = f.name.to_string().eq_ignore_ascii_case(TOPK_MARK);
        if !hinted && !f.name.to_string().eq_ignore_ascii_case("fts_match_word") {
            return ControlFlow::Continue(());
        }
        let mut args: Vec<Expr> = crate::sql::rewrite::plain_args(f).into_iter().cloned().collect();
        let k = if hinted { args.pop().map(|k| k.to_string()) } else { None };
        if args.len() != 2 {
            err = Some(SqlError::param_count("fts_match_word"));
            return ControlFlow::Break(());
        }
        let (qualifier, column) = match &args[1] {
            Expr::Identifier(i) => (None, i.value.to_lowercase()),
            Expr::CompoundIdentifier(ids) if !ids.is_empty() => {
                (Some(ids[..ids.len() - 1].to_vec()), ids[ids.len() - 1].value.to_lowercase())
            }
            other => {
                err = Some(SqlError::other(format!("FTS_MATCH_WORD() second argument must be a column with a FULLTEXT index, got {other}")));
                return ControlFlow::Break(());
            }
        };
        let found = tables.iter().find(|t| {
            t.indexes.iter().any(|i| matches!(i.kind, IndexKind::Fulltext { .. }) && i.columns == [column.clone()])
        });
        let Some(t) = found else {
            err = Some(SqlError::other(format!("FTS_MATCH_WORD() requires a FULLTEXT index on column '{column}'")));
            return ControlFlow::Break(());
        };
        let handle_col = match &t.pk_handle {
            Some(pk) => pk.clone(),
            None => {
                need_handle.push((t.db.clone(), t.name.clone()));
                crate::storage::table::HANDLE_COLUMN.to_string()
            }
        };
        let handle = match qualifier {
            Some(mut q) => {
                q.push(Ident::new(handle_col));
                Expr::CompoundIdentifier(q)
            }
            None => Expr::Identifier(Ident::new(handle_col)),
        };
        let target = match &k {
            Some(k) => format!("{}:{}#{k}", t.id, column),
            None => format!("{}:{}", t.id, column),
        };
        let target = Expr::value(Value::SingleQuotedString(target));
        *e = crate::sql::rewrite::call("fts_match_word", vec![args[0].clone(), handle, target]);
        ControlFlow::Continue(())
    });
    match err {
        Some(e) => Err(e),
        None => Ok(need_handle),
    }
}

/// The WHERE predicate of a plain top-k full-text search, marked by [`TopKHint`] with `k` as a
/// third argument until `rewrite_match` turns it into the scan's `'table:column#k'` hint.
const TOPK_MARK: &str = "fts_match_word_topk";

/// Marks `SELECT … FROM t WHERE FTS_MATCH_WORD(q, c) ORDER BY FTS_MATCH_WORD(q, c) DESC [, …]
/// LIMIT k [OFFSET o]` (pytidb's shape; the ORDER BY may name the score's alias, and further keys
/// may break ties): the scan then reads only the index's `k + o` best rows, plus any tied with
/// the last of them, instead of every matching row. Any other WHERE
/// condition, join, grouping or ordering leaves the statement alone (the scan then reads all
/// matching rows, which is always right).
struct TopKHint;

impl ast::VisitorMut for TopKHint {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut ast::Query) -> ControlFlow<()> {
        let Some(n) = topk_rows(q) else { return ControlFlow::Continue(()) };
        let ast::SetExpr::Select(sel) = q.body.as_mut() else { return ControlFlow::Continue(()) };
        if let Some(Expr::Function(f)) = sel.selection.as_mut().map(unwrap_truth) {
            let mut args: Vec<Expr> = crate::sql::rewrite::plain_args(f).into_iter().cloned().collect();
            args.push(Expr::value(Value::Number(n.to_string(), false)));
            *f = match crate::sql::rewrite::call(TOPK_MARK, args) {
                Expr::Function(g) => g,
                _ => return ControlFlow::Continue(()),
            };
        }
        ControlFlow::Continue(())
    }
}

/// The expression inside the `mysql_truth(…)` that `sql::rewrite` wraps a non-boolean WHERE in.
fn unwrap_truth(e: &mut Expr) -> &mut Expr {
    let is_truth = matches!(e, Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("mysql_truth")
        && crate::sql::rewrite::plain_args(f).len() == 1);
    if !is_truth {
        return e;
    }
    let Expr::Function(f) = e else { return e };
    match &mut f.args {
        ast::FunctionArguments::List(l) => match l.args.first_mut() {
            Some(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(inner))) => inner,
            _ => unreachable!("checked: one plain argument"),
        },
        _ => unreachable!("checked: one plain argument"),
    }
}

/// `k + offset` when `q` is a plain top-k full-text search (see [`TopKHint`]).
fn topk_rows(q: &ast::Query) -> Option<usize> {
    let ast::SetExpr::Select(sel) = q.body.as_ref() else { return None };
    let mut selection = sel.selection.clone()?;
    let Expr::Function(f) = unwrap_truth(&mut selection) else { return None };
    if !f.name.to_string().eq_ignore_ascii_case("fts_match_word") || crate::sql::rewrite::plain_args(f).len() != 2 {
        return None;
    }
    if sel.from.len() != 1 || !sel.from[0].joins.is_empty() || sel.having.is_some() || sel.distinct.is_some() {
        return None;
    }
    if !matches!(&sel.group_by, ast::GroupByExpr::Expressions(g, _) if g.is_empty()) {
        return None;
    }
    let call = Expr::Function(f.clone()).to_string().to_lowercase();
    let order = q.order_by.as_ref()?;
    let ast::OrderByKind::Expressions(keys) = &order.kind else { return None };
    // Further keys only break ties: the scan adds every row tied with the k-th.
    let first = keys.first()?;
    if first.options.asc != Some(false) {
        return None;
    }
    let key = first.expr.to_string().to_lowercase();
    let same = key == call
        || sel.projection.iter().any(|item| {
            matches!(item, ast::SelectItem::ExprWithAlias { expr, alias }
                if alias.value.to_lowercase() == key && expr.to_string().to_lowercase() == call)
        });
    if !same {
        return None;
    }
    let number = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse::<usize>().ok(),
            _ => None,
        },
        _ => None,
    };
    match q.limit_clause.as_ref()? {
        ast::LimitClause::LimitOffset { limit: Some(l), offset, limit_by } if limit_by.is_empty() => {
            let off = match offset {
                Some(o) => number(&o.value)?,
                None => 0,
            };
            Some(number(l)?.checked_add(off)?)
        }
        ast::LimitClause::OffsetCommaLimit { offset, limit } => Some(number(limit)?.checked_add(number(offset)?)?),
        _ => None,
    }
}

/// `fts_match_word(query, handle, 'table_id:column')` → BM25 score (0 when the row does not match).
pub struct FtsMatchWord {
    search: Arc<SearchIndexes>,
    signature: Signature,
}

udf_identity!(FtsMatchWord, search, "fts_match_word");

pub fn fts_match_word_udf(search: Arc<SearchIndexes>) -> ScalarUDF {
    // Volatile: the index changes between statements, so calls are never folded into constants.
    // Stable, not volatile: one statement sees one index state, and the planner may then push
    // the predicate into the scan (which reads only the rows the index matches).
    ScalarUDF::from(FtsMatchWord { search, signature: Signature::any(3, Volatility::Stable) })
}

fn scalar_text(c: &ColumnarValue) -> DfResult<Option<String>> {
    Ok(match c {
        ColumnarValue::Scalar(ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v)) => v.clone(),
        ColumnarValue::Scalar(ScalarValue::Null) => None,
        ColumnarValue::Scalar(other) => Some(other.to_string()),
        ColumnarValue::Array(a) => {
            let s = cast(a, &DataType::Utf8)?;
            let s = s.as_any().downcast_ref::<StringArray>().unwrap();
            if s.is_empty() || s.is_null(0) {
                None
            } else {
                Some(s.value(0).to_string())
            }
        }
    })
}

impl ScalarUDFImpl for FtsMatchWord {
    fn name(&self) -> &str {
        "fts_match_word"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let Some(target) = scalar_text(&args.args[2])? else { return exec_err!("fts_match_word: no index") };
        let (table_id, column) = target.split_once(':').unwrap_or(("", ""));
        // `#k`: the scan's top-k hint (see `rewrite_match`), not part of the column.
        let column = column.split('#').next().unwrap_or(column);
        let table_id: i64 = table_id.parse().unwrap_or(-1);
        let Some(entry) = self.search.fulltext(table_id, column) else {
            return Err(to_df(SqlError::other(format!("FTS_MATCH_WORD() requires a FULLTEXT index on column '{column}'"))));
        };
        let query = scalar_text(&args.args[0])?;
        let handles: ArrayRef = cast(&args.args[1].to_array(n)?, &DataType::Int64)?;
        let handles = handles.as_any().downcast_ref::<Int64Array>().unwrap();
        let Some(query) = query else {
            return Ok(ColumnarValue::Array(Arc::new(Float64Array::from(vec![None::<f64>; n]))));
        };
        let scores = crate::interrupt::blocking(|| entry.scores(&query)).map_err(to_df)?;
        let out: Float64Array = (0..n)
            .map(|i| (!handles.is_null(i)).then(|| scores.get(&(handles.value(i) as u64)).copied().unwrap_or(0.0) as f64))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_forms() {
        let (sql, defs) = extract(
            "CREATE TABLE t (id INT PRIMARY KEY, a TEXT, b TEXT, FULLTEXT INDEX fa (a) WITH PARSER MULTILINGUAL, \
             FULLTEXT KEY (`b`) WITH PARSER ngram(2,3) ADD_COLUMNAR_REPLICA_ON_DEMAND, c TEXT COMMENT ', FULLTEXT INDEX x')",
        )
        .unwrap();
        assert_eq!(sql, "CREATE TABLE t (id INT PRIMARY KEY, a TEXT, b TEXT, c TEXT COMMENT ', FULLTEXT INDEX x')");
        assert_eq!(defs[0], FulltextDef { name: Some("fa".into()), column: "a".into(), parser: "MULTILINGUAL".into() });
        assert_eq!(defs[1].name, None);
        assert_eq!(defs[1].column, "b");
        assert!(defs[1].parser.starts_with("NGRAM"), "{}", defs[1].parser);
        let (t, d) = parse_create("CREATE FULLTEXT INDEX fts_idx_text ON chunks (text) WITH PARSER MULTILINGUAL").unwrap();
        assert_eq!((t.as_str(), d.name.as_deref(), d.column.as_str(), d.parser.as_str()), ("chunks", Some("fts_idx_text"), "text", "MULTILINGUAL"));
        let (t, d) = parse_create("create fulltext index i on db1.t (c)").unwrap();
        assert_eq!((t.as_str(), d.parser.as_str()), ("db1.t", "STANDARD"));
        assert!(parse_create("CREATE FULLTEXT INDEX i ON t (c) WITH PARSER klingon").unwrap_err().message.contains("Unsupported add fulltext index"));
        assert_eq!(parse_create("CREATE FULLTEXT INDEX i ON t (a, b)").unwrap_err().code, 8200);
    }
}
