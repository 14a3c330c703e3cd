//! Point gets: the statements applications send most, answered without DataFusion.
//!
//! `SELECT name, email FROM users WHERE id = 42` costs a KV read of a few microseconds; planning it
//! through DataFusion (analyzer, optimizer, physical planner) costs half a millisecond. TiDB gives
//! these statements their own plans, `Point_Get` and `Batch_Point_Get`; so does embedb:
//!
//! 1. [`PointGet::of`] reads the parsed statement. It qualifies when it is one SELECT from one base
//!    table, its items are that table's columns (or `*`), its WHERE is `=`/`IN` of literals on
//!    every column of the integer primary key or of a unique index (integer or binary-collated
//!    text columns), and it has at most a literal LIMIT. Anything else returns `None` and is
//!    planned as usual, so the answers of both paths are the same by construction; a test runs
//!    random statements both ways and compares schemas and rows.
//! 2. [`PointGet::run`], in the statement's transaction: the keys become row handles (the integer
//!    primary key's value is the handle; a unique index entry holds it), the rows are read by
//!    handle in handle order, and only the asked columns are decoded into Arrow arrays whose
//!    fields are the table's, as a DataFusion projection of plain columns would give them.
//! 3. `EXPLAIN` of such a statement shows TiDB's plan line (`Point_Get_1 … table:t handle:42`).
//!
//! A prepared statement reaches step 1 with its parameters already bound as literals, so an
//! `EXECUTE` of `SELECT … WHERE id = ?` is served here without parsing or planning.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    self, Expr, GroupByExpr, Ident, LimitClause, SelectItem, SetExpr, Statement, TableFactor, UnaryOperator, Value,
};
use embedb_storage::codec::{self, Datum};
use embedb_storage::Txn;

use crate::error::{Result, SqlError};
use crate::session::Output;
use crate::sql::catalog::{Catalog, IndexInfo, TableInfo};
use crate::sql::types::{self, datums_to_array, SqlType, Target};
use crate::storage::access::Access;
use crate::storage::table::decode_columns;

/// A statement served by key lookups.
#[derive(Debug)]
pub struct PointGet {
    table: TableInfo,
    /// The table as the statement names it (its alias, else its name): the result's table.
    alias: String,
    /// (result name, column position, whether the result keeps the table's name: an aliased
    /// column does not, as in DataFusion) per result column.
    columns: Vec<(String, usize, bool)>,
    /// Aliases written with capitals, by position: shown as written (`rewrite::alias_headers`).
    headers: Vec<(usize, String)>,
    key: Key,
    /// LIMIT / OFFSET.
    limit: Option<u64>,
    offset: u64,
}

#[derive(Debug)]
enum Key {
    /// Integer primary key values: row handles.
    Handles(Vec<i64>),
    /// Values of a unique index, one tuple per wanted row.
    Unique { index: IndexInfo, tuples: Vec<Vec<Datum>> },
    /// Rows along an index or primary-key range, kept when every condition holds.
    Range { access: Access, conds: Vec<Cond> },
}

impl PointGet {
    /// The point get a statement is, or `None` when it must be planned as usual.
    pub fn of(stmt: &Statement, current_db: Option<&str>, txn: &Txn) -> Result<Option<PointGet>> {
        let Statement::Query(q) = stmt else { return Ok(None) };
        if q.with.is_some() || q.order_by.is_some() || q.fetch.is_some() || !q.locks.is_empty() || q.for_clause.is_some() || q.settings.is_some() || q.format_clause.is_some() || !q.pipe_operators.is_empty() {
            return Ok(None);
        }
        let (limit, offset) = match &q.limit_clause {
            None => (None, 0),
            Some(LimitClause::LimitOffset { limit, offset, limit_by }) if limit_by.is_empty() => {
                let limit = match limit {
                    None => None,
                    Some(e) => match count(e) {
                        Some(n) => Some(n),
                        None => return Ok(None),
                    },
                };
                let offset = match offset {
                    None => 0,
                    Some(o) => match count(&o.value) {
                        Some(n) => n,
                        None => return Ok(None),
                    },
                };
                (limit, offset)
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => match (count(offset), count(limit)) {
                (Some(o), Some(l)) => (Some(l), o),
                _ => return Ok(None),
            },
            Some(_) => return Ok(None),
        };
        let SetExpr::Select(s) = q.body.as_ref() else { return Ok(None) };
        let plain_select = s.optimizer_hints.is_empty()
            && s.distinct.is_none()
            && s.select_modifiers.is_none()
            && s.top.is_none()
            && s.exclude.is_none()
            && s.into.is_none()
            && s.from.len() == 1
            && s.from[0].joins.is_empty()
            && s.lateral_views.is_empty()
            && s.prewhere.is_none()
            && s.connect_by.is_empty()
            && matches!(&s.group_by, GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty())
            && s.cluster_by.is_empty()
            && s.distribute_by.is_empty()
            && s.sort_by.is_empty()
            && s.having.is_none()
            && s.named_window.is_empty()
            && s.qualify.is_none()
            && s.value_table_mode.is_none()
            && s.flavor == ast::SelectFlavor::Standard;
        if !plain_select {
            return Ok(None);
        }
        let Some(selection) = &s.selection else { return Ok(None) };
        let TableFactor::Table { name, alias, args: None, with_hints, version: None, with_ordinality: false, partitions, json_path: None, sample: None, index_hints } = &s.from[0].relation else {
            return Ok(None);
        };
        if !with_hints.is_empty() || !partitions.is_empty() || !index_hints.is_empty() || alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
            return Ok(None);
        }
        let parts: Vec<&Ident> = name.0.iter().filter_map(|p| p.as_ident()).collect();
        let (db, table_name) = match parts.as_slice() {
            [t] => match current_db {
                Some(db) => (db.to_string(), t.value.clone()),
                None => return Ok(None),
            },
            [d, t] => (d.value.clone(), t.value.clone()),
            _ => return Ok(None),
        };
        if parts.len() != name.0.len() || db.eq_ignore_ascii_case("information_schema") {
            return Ok(None);
        }
        let Some(table) = Catalog::new(txn).table(&db, &table_name)? else { return Ok(None) };
        // The names a column may be qualified with: the alias, or else the table (and db.table).
        // Table names and aliases are case-insensitive: the planner sees them in lower case.
        let qualifier = match alias {
            Some(a) => a.name.value.to_lowercase(),
            None => parts.last().unwrap().value.to_lowercase(),
        };
        let names = Names { table: &table, db: &db, qualifier: &qualifier, aliased: alias.is_some() };
        let column_of = |e: &Expr| names.column_of(e);

        let mut columns = Vec::new();
        for item in &s.projection {
            match item {
                SelectItem::UnnamedExpr(e) => {
                    let Some(i) = column_of(e) else { return Ok(None) };
                    // A column written with capitals is named as written (`sql::rewrite` aliases it).
                    let written = match e {
                        Expr::CompoundIdentifier(ids) => &ids[ids.len() - 1].value,
                        Expr::Identifier(id) => &id.value,
                        _ => unreachable!("column_of takes identifiers"),
                    };
                    if written.chars().any(|c| c.is_uppercase()) {
                        columns.push((written.clone(), i, false));
                    } else {
                        columns.push((table.columns[i].key(), i, true));
                    }
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    let Some(i) = column_of(expr) else { return Ok(None) };
                    columns.push((normalized(alias), i, false));
                }
                SelectItem::Wildcard(opts) if wildcard_is_plain(opts) => {
                    columns.extend(table.columns.iter().enumerate().map(|(i, c)| (c.key(), i, true)));
                }
                SelectItem::QualifiedWildcard(ast::SelectItemQualifiedWildcardKind::ObjectName(n), opts)
                    if wildcard_is_plain(opts) && n.0.len() == 1 && n.0[0].as_ident().is_some_and(|i| i.value.to_lowercase() == qualifier) =>
                {
                    columns.extend(table.columns.iter().enumerate().map(|(i, c)| (c.key(), i, true)));
                }
                _ => return Ok(None),
            }
        }
        // Two result columns of one name are named by `sql::rewrite`'s rules for repeats.
        if (1..columns.len()).any(|i| columns[..i].iter().any(|(n, ..)| n.eq_ignore_ascii_case(&columns[i].0))) {
            return Ok(None);
        }

        let Some(key) = where_key(txn, &names, selection)? else { return Ok(None) };
        let headers = crate::sql::rewrite::alias_headers(s);
        Ok(Some(PointGet { table, alias: qualifier, columns, headers, key, limit, offset }))
    }

    /// Read the rows in `txn`.
    pub fn run(&self, txn: &Arc<Txn>) -> Result<Output> {
        let handles = match &self.key {
            Key::Range { access, conds } => {
                // Reading stops once OFFSET + LIMIT rows have matched.
                let want = self.limit.map(|l| (l as usize).saturating_add(self.offset as usize));
                let keep = |r: &crate::storage::table::Row| conds.iter().all(|c| c.holds(&r.values[c.column]));
                let rows = crate::storage::scan::read_rows_where(&self.table, txn, access, want, &keep)?;
                return self.output(rows);
            }
            key => key.handles(txn, &self.table)?,
        };
        let ids: Vec<u32> = self.columns.iter().map(|(_, i, _)| self.table.columns[*i].id).collect();
        let mut rows = Vec::with_capacity(handles.len());
        for h in handles {
            if let Some(v) = txn.get(&codec::row_key(self.table.id, h))? {
                rows.push(decode_columns(&self.table, h, &v, &ids)?);
            }
        }
        self.output(rows)
    }

    /// The result of the rows read: OFFSET and LIMIT applied, the asked columns.
    fn output(&self, mut rows: Vec<crate::storage::table::Row>) -> Result<Output> {
        let skip = (self.offset as usize).min(rows.len());
        rows.drain(..skip);
        if let Some(l) = self.limit {
            rows.truncate(l as usize);
        }
        let table_schema = self.table.catalog_arrow_schema();
        let mut fields: Vec<FieldRef> = Vec::with_capacity(self.columns.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (pos, (name, i, qualified)) in self.columns.iter().enumerate() {
            let f = table_schema.field(*i);
            let mut md = f.metadata().clone();
            if *qualified {
                md.insert(types::ALIAS_META.into(), self.alias.clone());
            }
            if let Some((_, header)) = self.headers.iter().find(|(p, _)| *p == pos) {
                md.insert(crate::sql::show::NAME_META.into(), header.clone());
            }
            fields.push(Arc::new(Field::new(name, f.data_type().clone(), f.is_nullable()).with_metadata(md)));
            let vals: Vec<&Datum> = rows.iter().map(|r| &r.values[*i]).collect();
            arrays.push(datums_to_array(&self.table.columns[*i].ty, &vals)?);
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| SqlError::other(e.to_string()))?;
        Ok(Output::Rows { schema, batches: vec![batch] })
    }

    /// The rows `run` can return at most (what EXPLAIN estimates).
    fn est_rows(&self) -> usize {
        match &self.key {
            Key::Handles(h) => h.len(),
            Key::Unique { tuples, .. } => tuples.len(),
            Key::Range { access: Access::IndexRangeScan { handles, .. } | Access::Handles { handles, .. }, .. } => handles.len(),
            Key::Range { access: Access::TableRangeScan { lo, hi }, .. } => (hi.saturating_sub(*lo).saturating_add(1)).max(0) as usize,
            Key::Range { .. } => 0,
        }
    }

    /// TiDB's EXPLAIN of this plan: one `Point_Get` or `Batch_Point_Get` row.
    pub fn explain(&self) -> Output {
        if let Key::Range { access, .. } = &self.key {
            // TiDB's words for a range read: a TableRangeScan, or an IndexLookUp of an index range.
            let (id, object, info) = match access {
                Access::TableRangeScan { lo, hi } => ("TableRangeScan_1", format!("table:{}", self.table.name), format!("range:[{lo},{hi}], keep order:false")),
                Access::IndexRangeScan { index, ranges, .. } => ("IndexLookUp_1", format!("table:{}, index:{index}", self.table.name), format!("range:{ranges}, keep order:false")),
                other => ("TableReader_1", format!("table:{}", self.table.name), other.describe()),
            };
            return explain_row(id, self.est_rows(), object, info);
        }
        let batch = self.est_rows() > 1;
        let id = if batch { "Batch_Point_Get_1" } else { "Point_Get_1" };
        let mut access = format!("table:{}", self.table.name);
        let mut info = String::new();
        match &self.key {
            Key::Handles(h) if batch => info = format!("handle:[{}], keep order:false, desc:false", h.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")),
            Key::Handles(h) => info = format!("handle:{}", h[0]),
            Key::Unique { index, .. } => {
                access.push_str(&format!(", index:{}({})", index.name, index.columns.join(", ")));
                if batch {
                    info = "keep order:false, desc:false".into();
                }
            }
            Key::Range { .. } => unreachable!("answered above"),
        }
        explain_row(id, self.est_rows(), access, info)
    }
}

/// One row of TiDB's EXPLAIN table.
fn explain_row(id: &str, est_rows: usize, access: String, info: String) -> Output {
    let cols = ["id", "estRows", "task", "access object", "operator info"];
    let vals = [id.to_string(), format!("{est_rows}.00"), "root".into(), access, info];
    let schema = Arc::new(Schema::new(cols.iter().map(|c| Field::new(*c, DataType::Utf8, false)).collect::<Vec<_>>()));
    let arrays: Vec<ArrayRef> = vals.iter().map(|v| Arc::new(StringArray::from(vec![v.as_str()])) as ArrayRef).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("five text columns");
    Output::Rows { schema, batches: vec![batch] }
}

/// How a statement names the columns of its one table: bare, or qualified by its alias (or else
/// its name, and `db.name`). Table names and aliases are case-insensitive: the planner sees them
/// in lower case.
struct Names<'a> {
    table: &'a TableInfo,
    db: &'a str,
    qualifier: &'a str,
    aliased: bool,
}

impl Names<'_> {
    fn column_of(&self, e: &Expr) -> Option<usize> {
        let (q, c) = match e {
            Expr::Identifier(c) => (None, c),
            Expr::CompoundIdentifier(ids) => match ids.as_slice() {
                [t, c] => (Some(vec![t]), c),
                [d, t, c] if !self.aliased => (Some(vec![d, t]), c),
                _ => return None,
            },
            _ => return None,
        };
        if let Some(q) = q {
            if q.last().unwrap().value.to_lowercase() != self.qualifier {
                return None;
            }
            if q.len() == 2 && !q[0].value.eq_ignore_ascii_case(self.db) {
                return None;
            }
        }
        self.table.column_index(&c.value)
    }
}

/// The key a WHERE names: a conjunction of `column = literal`, `column IN (literals)` on every
/// column of the integer primary key or a unique index, or (for a short range) with
/// `column <op> literal` / `column BETWEEN literal AND literal`; `None` when it is anything else.
fn where_key(txn: &Txn, names: &Names, selection: &Expr) -> Result<Option<Key>> {
    // WHERE: a conjunction of `column = literal`, `column IN (literals)`, and (for a short
    // range) `column <op> literal` / `column BETWEEN literal AND literal`.
    let mut conjuncts = Vec::new();
    split_and(selection, &mut conjuncts);
    let mut equal: Vec<(usize, Vec<Literal>)> = Vec::new();
    let mut compared: Vec<(usize, ast::BinaryOperator, Literal)> = Vec::new();
    for c in conjuncts {
        use ast::BinaryOperator as B;
        let (col, values) = match c {
            Expr::BinaryOp { left, op: B::Eq, right } => match (names.column_of(left), literal(right), names.column_of(right), literal(left)) {
                (Some(i), Some(v), _, _) | (_, _, Some(i), Some(v)) => (i, vec![v]),
                _ => return Ok(None),
            },
            Expr::InList { expr, list, negated: false } => match (names.column_of(expr), list.iter().map(literal).collect::<Option<Vec<_>>>()) {
                (Some(i), Some(vs)) if !vs.is_empty() => (i, vs),
                _ => return Ok(None),
            },
            Expr::BinaryOp { left, op: op @ (B::Lt | B::LtEq | B::Gt | B::GtEq), right } => {
                match (names.column_of(left), literal(right), names.column_of(right), literal(left)) {
                    (Some(i), Some(v), _, _) => compared.push((i, op.clone(), v)),
                    (_, _, Some(i), Some(v)) => compared.push((i, flip(op), v)),
                    _ => return Ok(None),
                }
                continue;
            }
            Expr::Between { expr, negated: false, low, high } => match (names.column_of(expr), literal(low), literal(high)) {
                (Some(i), Some(l), Some(h)) => {
                    compared.push((i, B::GtEq, l));
                    compared.push((i, B::LtEq, h));
                    continue;
                }
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        if equal.iter().any(|(i, _)| *i == col) {
            return Ok(None);
        }
        equal.push((col, values));
    }

    if compared.is_empty() {
        key_of(names.table, &equal)
    } else {
        range_of(txn, names.table, &equal, &compared)
    }
}

/// The rows an UPDATE or DELETE's WHERE names by key, by handle (sorted; a handle may name no
/// row): when the WHERE is a point get's on the integer primary key or a unique index
/// ([`where_key`] without ranges), else `None` and the statement is planned as usual.
pub fn dml_handles(txn: &Txn, table: &TableInfo, db: &str, qualifier: &str, aliased: bool, selection: &Expr) -> Result<Option<Vec<i64>>> {
    let names = Names { table, db, qualifier, aliased };
    let Some(key) = where_key(txn, &names, selection)? else { return Ok(None) };
    match key {
        Key::Range { .. } => Ok(None),
        key => key.handles(txn, table).map(Some),
    }
}

impl Key {
    /// The handles of a point or unique key's rows (sorted; a handle may name no row).
    fn handles(&self, txn: &Txn, table: &TableInfo) -> Result<Vec<i64>> {
        let mut hs = match self {
            Key::Handles(h) => h.clone(),
            Key::Unique { index, tuples } => {
                let mut hs = Vec::with_capacity(tuples.len());
                for t in tuples {
                    if let Some(v) = txn.get(&codec::index_key(table.id, index.id, t, None))? {
                        if let Ok(b) = <[u8; 8]>::try_from(v.as_slice()) {
                            hs.push(i64::from_be_bytes(b));
                        }
                    }
                }
                hs
            }
            Key::Range { .. } => vec![],
        };
        hs.sort_unstable();
        hs.dedup();
        Ok(hs)
    }
}

fn flip(op: &ast::BinaryOperator) -> ast::BinaryOperator {
    use ast::BinaryOperator as B;
    match op {
        B::Lt => B::Gt,
        B::LtEq => B::GtEq,
        B::Gt => B::Lt,
        _ => B::LtEq,
    }
}

/// `column <op> value`, evaluated exactly on stored datums (the value is of the column's kind,
/// whose key order is its comparison order).
#[derive(Debug)]
struct Cond {
    column: usize,
    /// Which orderings of (row value vs `value`) satisfy it.
    accept: [bool; 3],
    value: Datum,
}

impl Cond {
    fn holds(&self, d: &Datum) -> bool {
        if matches!(d, Datum::Null) {
            return false;
        }
        let ord = match (d, &self.value) {
            (Datum::Int(a), Datum::Int(b)) => a.cmp(b),
            (Datum::UInt(a), Datum::UInt(b)) => a.cmp(b),
            (Datum::Int(a), Datum::UInt(b)) => (*a as i128).cmp(&(*b as i128)),
            (Datum::UInt(a), Datum::Int(b)) => (*a as i128).cmp(&(*b as i128)),
            (Datum::Bytes(a), Datum::Bytes(b)) => a.cmp(b),
            _ => return false,
        };
        self.accept[(ord as i8 + 1) as usize]
    }
}

/// A short range read: the comparisons (and equalities) are all on integer or binary-collated
/// text columns with literals of the same kind, and an index or the primary key serves them.
fn range_of(txn: &Txn, table: &TableInfo, equal: &[(usize, Vec<Literal>)], compared: &[(usize, ast::BinaryOperator, Literal)]) -> Result<Option<Key>> {
    use ast::BinaryOperator as B;
    use datafusion::logical_expr::{binary_expr, col, lit, Operator};
    let mut conds = Vec::new();
    let mut filters = Vec::new();
    let mut add = |i: usize, op: &B, v: &Literal| -> Option<()> {
        let c = &table.columns[i];
        let (value, scalar) = match (&c.ty, v) {
            (SqlType::Int { unsigned, .. }, _) => {
                let x = int_value(v)?;
                let d = if *unsigned { if x < 0 { Datum::Int(x) } else { Datum::UInt(x as u64) } } else { Datum::Int(x) };
                (d, ScalarValue::Int64(Some(x)))
            }
            (SqlType::VarChar(_) | SqlType::Text(_), Literal::Text(s)) if !table.column_collation(c).is_some_and(|x| crate::sql::collation::is_ci(&x)) => {
                (Datum::Bytes(s.as_bytes().to_vec()), ScalarValue::Utf8(Some(s.clone())))
            }
            _ => return None,
        };
        let (accept, dop) = match op {
            B::Lt => ([true, false, false], Operator::Lt),
            B::LtEq => ([true, true, false], Operator::LtEq),
            B::Gt => ([false, false, true], Operator::Gt),
            B::GtEq => ([false, true, true], Operator::GtEq),
            _ => ([false, true, false], Operator::Eq),
        };
        filters.push(binary_expr(col(c.key()), dop, lit(scalar)));
        conds.push(Cond { column: i, accept, value });
        Some(())
    };
    for (i, op, v) in compared {
        if add(*i, op, v).is_none() {
            return Ok(None);
        }
    }
    // Equalities take part as one-value INs only (a list would need OR in the conditions).
    for (i, vs) in equal {
        if vs.len() != 1 || add(*i, &B::Eq, &vs[0]).is_none() {
            return Ok(None);
        }
    }
    let access = crate::storage::access::choose(txn, table, &filters, None, &Default::default())?;
    Ok(match access {
        Access::TableFullScan => None,
        access => Some(Key::Range { access, conds }),
    })
}

/// A literal of the WHERE clause.
#[derive(Clone, Debug)]
enum Literal {
    Int(i64),
    Text(String),
}

fn literal(e: &Expr) -> Option<Literal> {
    match e {
        Expr::Nested(e) => literal(e),
        Expr::Value(v) => match &v.value {
            Value::Number(n, false) => n.parse::<i64>().ok().map(Literal::Int),
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(Literal::Text(s.clone())),
            _ => None,
        },
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, false) => format!("-{n}").parse::<i64>().ok().map(Literal::Int),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// A LIMIT or OFFSET count written as a number.
fn count(e: &Expr) -> Option<u64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, false) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn split_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::BinaryOp { left, op: ast::BinaryOperator::And, right } => {
            split_and(left, out);
            split_and(right, out);
        }
        Expr::Nested(inner) => split_and(inner, out),
        other => out.push(other),
    }
}

/// An identifier as DataFusion names it: unquoted ones in lower case.
fn normalized(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

fn wildcard_is_plain(o: &ast::WildcardAdditionalOptions) -> bool {
    o.opt_ilike.is_none() && o.opt_exclude.is_none() && o.opt_except.is_none() && o.opt_replace.is_none() && o.opt_rename.is_none()
}

/// The key the equalities name: every column of the integer primary key or of a unique index,
/// with values the column takes exactly (no conversion that DataFusion might do otherwise).
fn key_of(table: &TableInfo, equal: &[(usize, Vec<Literal>)]) -> Result<Option<Key>> {
    if let Some(pk) = &table.pk_handle {
        let pi = table.column_index(pk).expect("the handle column exists");
        if equal.len() == 1 && equal[0].0 == pi {
            let unsigned = matches!(table.columns[pi].ty, SqlType::Int { unsigned: true, .. });
            let mut hs = Vec::new();
            for v in &equal[0].1 {
                match int_value(v) {
                    Some(h) if !(unsigned && h < 0) => hs.push(h),
                    _ => return Ok(None),
                }
            }
            return Ok(Some(Key::Handles(hs)));
        }
    }
    for index in table.kv_indexes().filter(|i| i.unique) {
        if index.columns.len() != equal.len() {
            continue;
        }
        let mut per_column: Vec<Vec<Datum>> = Vec::new();
        for c in &index.columns {
            let Some(ci) = table.column_index(c) else { return Ok(None) };
            let Some((_, values)) = equal.iter().find(|(i, _)| *i == ci) else { break };
            let col = &table.columns[ci];
            let exact = |v: &Literal| -> Option<Datum> {
                match (&col.ty, v) {
                    (SqlType::Int { .. }, _) => {
                        let s = match v {
                            Literal::Int(i) => ScalarValue::Int64(Some(*i)),
                            Literal::Text(_) => ScalarValue::Int64(Some(int_value(v)?)),
                        };
                        types::coerce(&s, &col.ty, &Target { column: c, row: 1 }).ok()
                    }
                    (ty, Literal::Text(s)) if ty.is_text() && !table.column_collation(col).is_some_and(|x| crate::sql::collation::is_ci(&x)) => {
                        // A value longer than the column, or with trailing spaces (PAD SPACE),
                        // may compare in ways the key bytes do not show: leave it to the planner.
                        let d = types::coerce(&ScalarValue::Utf8(Some(s.clone())), ty, &Target { column: c, row: 1 }).ok()?;
                        (matches!(&d, Datum::Bytes(b) if b.as_slice() == s.as_bytes()) && !s.ends_with(' ')).then_some(d)
                    }
                    _ => None,
                }
            };
            let Some(ds) = values.iter().map(exact).collect::<Option<Vec<Datum>>>() else { return Ok(None) };
            per_column.push(ds);
        }
        if per_column.len() != index.columns.len() {
            continue;
        }
        // The cross product of the IN lists (small: each list is written in the statement).
        let mut tuples: Vec<Vec<Datum>> = vec![vec![]];
        for ds in per_column {
            if tuples.len() * ds.len() > 10_000 {
                return Ok(None);
            }
            tuples = tuples.iter().flat_map(|t| ds.iter().map(move |d| {
                let mut t = t.clone();
                t.push(d.clone());
                t
            })).collect();
        }
        return Ok(Some(Key::Unique { index: index.clone(), tuples }));
    }
    Ok(None)
}

/// An integer literal, or text that is exactly one (`'42'`).
fn int_value(v: &Literal) -> Option<i64> {
    match v {
        Literal::Int(i) => Some(*i),
        Literal::Text(s) => crate::storage::access::exact_int(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Session;
    use rand::{Rng, SeedableRng};

    fn session() -> Session {
        crate::session::test_session()
    }

    /// Everything a client sees of a result: each column's name, type, nullability and
    /// metadata (the wire's column definitions come from it), and the rows as text.
    async fn answer(s: &mut Session, sql: &str) -> std::result::Result<(Vec<String>, Vec<Vec<String>>), (u16, String)> {
        let out = s.run(sql).await.map_err(|e| (e.code, e.message))?;
        let Output::Rows { schema, batches } = out else { panic!("{sql}: no rows") };
        let cols = schema
            .fields()
            .iter()
            .map(|f| {
                let md: std::collections::BTreeMap<_, _> = f.metadata().iter().collect();
                format!("{} {} {} {md:?}", f.name(), f.data_type(), f.is_nullable())
            })
            .collect();
        let mut rows = Vec::new();
        for b in &batches {
            for r in 0..b.num_rows() {
                rows.push(b.columns().iter().map(|c| datafusion::arrow::util::display::array_value_to_string(c, r).unwrap()).collect());
            }
        }
        Ok((cols, rows))
    }

    async fn served_by_key(s: &mut Session, sql: &str) -> bool {
        plan_id(s, sql).await.contains("Point_Get")
    }

    /// The first EXPLAIN row's id: TiDB's (`Point_Get_1`, `IndexLookUp_1`) for statements served
    /// without the planner, DataFusion's `logical_plan` otherwise.
    async fn plan_id(s: &mut Session, sql: &str) -> String {
        let (_, rows) = answer(s, &format!("EXPLAIN {sql}")).await.unwrap();
        rows[0][0].clone()
    }

    /// Random key reads give the same columns and rows with and without the fast path.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn key_reads_answer_as_the_planner_does() {
        let mut s = session();
        s.run("CREATE TABLE t (id BIGINT PRIMARY KEY, u INT UNIQUE, name VARCHAR(10) UNIQUE, ci VARCHAR(10) COLLATE utf8mb4_general_ci UNIQUE, a INT, b VARCHAR(5), n INT NULL, UNIQUE KEY ab (a, b))").await.unwrap();
        s.run("CREATE TABLE tiny (id TINYINT UNSIGNED PRIMARY KEY, v TEXT)").await.unwrap();
        s.run("CREATE TABLE nopk (x INT, y VARCHAR(3), UNIQUE (y))").await.unwrap();
        for i in 0..40 {
            let n = if i % 3 == 0 { "NULL".to_string() } else { (i * 7).to_string() };
            s.run(&format!("INSERT INTO t VALUES ({}, {}, 'n{i}', 'Ci{i}', {}, 'b{}', {n})", i * 2 - 10, 100 - i, i % 5, i / 5)).await.unwrap();
        }
        s.run("INSERT INTO tiny VALUES (0, 'zero'), (1, 'one'), (255, 'max')").await.unwrap();
        s.run("INSERT INTO nopk VALUES (1, 'a'), (2, 'b'), (3, NULL)").await.unwrap();

        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        let int = |rng: &mut rand::rngs::StdRng| -> String {
            match rng.gen_range(0..8) {
                0 => format!("'{}'", rng.gen_range(-12..80)),
                1 => format!("{}.0", rng.gen_range(-12..80)),
                2 => format!("' {}'", rng.gen_range(0..80)),
                3 => "NULL".into(),
                _ => rng.gen_range(-12..80).to_string(),
            }
        };
        let (mut fast, mut ranges) = (0, 0);
        for round in 0..400 {
            let (table, alias) = match rng.gen_range(0..7) {
                0 => ("tiny", None),
                6 => ("t", Some("`Xy`")),
                1 => ("nopk", None),
                2 => ("test.t", None),
                3 => ("t", Some("x")),
                4 => ("`T`", None),
                _ => ("t", None),
            };
            let q = alias.unwrap_or(if table == "tiny" { "tiny" } else if table == "nopk" { "nopk" } else { "t" });
            let cols: &[&str] = match table {
                "tiny" => &["id", "v"],
                "nopk" => &["x", "y"],
                _ => &["id", "u", "name", "ci", "a", "b", "n"],
            };
            let mut items = Vec::new();
            for _ in 0..rng.gen_range(1..4) {
                let c = cols[rng.gen_range(0..cols.len())];
                items.push(match rng.gen_range(0..11) {
                    0 => "*".to_string(),
                    // (`t.*` over `test.t` is refused by the planner, which MySQL would not.)
                    1 if table != "test.t" => format!("{q}.*"),
                    2 => format!("{q}.{c}"),
                    3 => format!("`{c}`"),
                    6 => format!("`{}`", c.to_uppercase()),
                    7 => format!("{c} AS `Al{}`", items.len()),
                    8 => format!("{c} Mix{}", items.len()),
                    4 => format!("{} AS alias{}", c.to_uppercase(), items.len()),
                    5 => format!("{c} + 1"),
                    _ => c.to_string(),
                });
            }
            let conds: Vec<String> = match (table, rng.gen_range(0..16)) {
                ("tiny", _) => vec![format!("id = {}", [0, 1, 255, 256, -1, 7][rng.gen_range(0..6)])],
                ("nopk", _) => vec![format!("y = '{}'", ["a", "b", "c", "A"][rng.gen_range(0..4)])],
                (_, 0..=2) => vec![format!("id = {}", int(&mut rng))],
                (_, 3) => vec![format!("{q}.id IN ({}, {}, {})", int(&mut rng), int(&mut rng), int(&mut rng))],
                (_, 4) => vec![format!("u = {}", int(&mut rng))],
                (_, 5) => vec![format!("name IN ('n{}', 'n{}', 'N1', 'n2 ')", rng.gen_range(0..45), rng.gen_range(0..45))],
                (_, 6) => vec![format!("ci = 'ci{}'", rng.gen_range(0..40))],
                (_, 7) => vec![format!("a = {}", rng.gen_range(0..6)), format!("b IN ('b{}', 'b{}')", rng.gen_range(0..9), rng.gen_range(0..9))],
                (_, 8) => vec![format!("id = {}", int(&mut rng)), format!("n = {}", rng.gen_range(0..300))],
                // short ranges on the primary key and on indexes, with and without equalities
                (_, 10) => vec![format!("id BETWEEN {} AND {}", int(&mut rng), int(&mut rng))],
                (_, 11) => vec![format!("u > {}", int(&mut rng)), format!("u <= {}", int(&mut rng))],
                (_, 12) => vec![format!("a = {}", rng.gen_range(0..6)), format!("b >= 'b{}'", rng.gen_range(0..9))],
                (_, 13) => vec![format!("name < 'n{}'", rng.gen_range(0..45)), format!("{} < id", int(&mut rng))],
                (_, 14) => vec![format!("ci > 'ci{}'", rng.gen_range(0..40))],
                (_, 15) => vec![format!("id > {}", int(&mut rng)), format!("n < {}", rng.gen_range(0..300))],
                _ => vec![format!("{} = id", int(&mut rng))],
            };
            let limit = match rng.gen_range(0..6) {
                0 => " LIMIT 1".to_string(),
                1 => " LIMIT 1, 2".to_string(),
                2 => " LIMIT 21".to_string(),
                _ => String::new(),
            };
            let alias_sql = alias.map(|a| format!(" AS {a}")).unwrap_or_default();
            let sql = format!("SELECT {} FROM {table}{alias_sql} WHERE {}{limit}", items.join(", "), conds.join(" AND "));
            s.point_get = true;
            let with = answer(&mut s, &sql).await;
            if with.is_ok() {
                let id = plan_id(&mut s, &sql).await;
                if id.contains("Point_Get") {
                    fast += 1;
                } else if id.contains("RangeScan") || id.contains("IndexLookUp") {
                    ranges += 1;
                }
            }
            s.point_get = false;
            let without = answer(&mut s, &sql).await;
            assert_eq!(with, without, "round {round}: {sql}");
        }
        assert!(fast > 80, "only {fast} of 400 statements were served by key");
        assert!(ranges > 20, "only {ranges} of 400 statements were served as short ranges");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn key_reads_see_the_transaction_and_explain_as_tidb() {
        let mut s = session();
        s.run("CREATE TABLE t (id INT PRIMARY KEY, email VARCHAR(20) UNIQUE, v INT)").await.unwrap();
        s.run("INSERT INTO t VALUES (1, 'a@x', 10), (2, 'b@x', 20)").await.unwrap();
        s.run("BEGIN").await.unwrap();
        s.run("UPDATE t SET v = 11 WHERE id = 1").await.unwrap();
        s.run("DELETE FROM t WHERE id = 2").await.unwrap();
        s.run("INSERT INTO t VALUES (3, 'c@x', 30)").await.unwrap();
        let (_, rows) = answer(&mut s, "SELECT id, v FROM t WHERE id IN (1, 2, 3)").await.unwrap();
        assert_eq!(rows, vec![vec!["1", "11"], vec!["3", "30"]]);
        let (_, rows) = answer(&mut s, "SELECT id FROM t WHERE email = 'c@x'").await.unwrap();
        assert_eq!(rows, vec![vec!["3"]]);
        s.run("ROLLBACK").await.unwrap();
        let (_, rows) = answer(&mut s, "SELECT id, v FROM t WHERE id IN (1, 2, 3)").await.unwrap();
        assert_eq!(rows, vec![vec!["1", "10"], vec!["2", "20"]]);

        let (cols, rows) = answer(&mut s, "EXPLAIN SELECT * FROM t WHERE id = 2").await.unwrap();
        assert_eq!(cols.iter().map(|c| c.split(' ').next().unwrap()).collect::<Vec<_>>(), ["id", "estRows", "task", "access", "operator"]);
        assert_eq!(rows, vec![vec!["Point_Get_1", "1.00", "root", "table:t", "handle:2"]]);
        let (_, rows) = answer(&mut s, "EXPLAIN SELECT v FROM t WHERE email IN ('a@x', 'b@x')").await.unwrap();
        assert_eq!(rows, vec![vec!["Batch_Point_Get_1", "2.00", "root", "table:t, index:email(email)", "keep order:false, desc:false"]]);
        // Not a key read: planned as usual.
        assert!(!served_by_key(&mut s, "SELECT * FROM t WHERE v = 10").await);
        assert!(!served_by_key(&mut s, "SELECT * FROM t WHERE id = 1 OR id = 2").await);
    }

    /// UPDATE and DELETE by primary or unique key (served without a plan) leave the same rows,
    /// errors and counts as the same statements on a table without keys (always planned).
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn dml_by_key_changes_what_the_planner_would() {
        use rand::{Rng, SeedableRng};
        let mut s = session();
        s.run("CREATE TABLE kd (id INT PRIMARY KEY, u VARCHAR(10) UNIQUE, a INT NOT NULL DEFAULT 7, d DECIMAL(5,2))").await.unwrap();
        s.run("CREATE TABLE pd (id INT, u VARCHAR(10), a INT NOT NULL DEFAULT 7, d DECIMAL(5,2))").await.unwrap();
        let rows: Vec<String> = (0..40).map(|i| format!("({i}, 'u{i}', {}, {}.5)", i % 5, i)).collect();
        for t in ["kd", "pd"] {
            s.run(&format!("INSERT INTO {t} VALUES {}", rows.join(", "))).await.unwrap();
        }
        // The fast path takes these WHEREs.
        let txn = std::sync::Arc::new(s.engine.store.begin().unwrap());
        let info = Catalog::new(&txn).must_table("test", "kd").unwrap();
        for w in ["id = 3", "kd.id IN (1, 2, 99)", "u = 'u5'", "test.kd.u IN ('u1', 'x')"] {
            let e = crate::sql::dml::parse_expr(w).unwrap();
            assert!(dml_handles(&txn, &info, "test", "kd", false, &e).unwrap().is_some(), "{w}");
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for round in 0..300 {
            let id = rng.gen_range(-2..45);
            let wh = match rng.gen_range(0..5) {
                0 => format!("id = {id}"),
                1 => format!("id IN ({id}, {}, {})", rng.gen_range(0..45), rng.gen_range(0..45)),
                2 => format!("u = 'u{id}'"),
                3 => format!("u IN ('u{id}', 'nope', 'u{}')", rng.gen_range(0..45)),
                _ => format!("'{id}' = id"),
            };
            let set = match rng.gen_range(0..6) {
                0 => format!("a = {}", rng.gen_range(-3..9)),
                1 => "a = DEFAULT".to_string(),
                2 => format!("d = '{}.25', a = '{}'", rng.gen_range(-99..99), rng.gen_range(0..4)),
                3 => "a = NULL".to_string(),
                4 => format!("d = {}.125", rng.gen_range(0..9)),
                _ => "d = NULL, a = 1".to_string(),
            };
            let delete = rng.gen_range(0..4) == 0;
            let stmt = |t: &str| if delete { format!("DELETE FROM {t} WHERE {wh}") } else { format!("UPDATE {t} SET {set} WHERE {wh}") };
            let (k, p) = (stmt("kd"), stmt("pd"));
            let (rk, rp) = (s.run(&k).await, s.run(&p).await);
            match (rk, rp) {
                (Ok(Output::Ok { affected: a, info: i, .. }), Ok(Output::Ok { affected: b, info: j, .. })) => assert_eq!((a, i), (b, j), "round {round}: {k}"),
                (Err(a), Err(b)) => assert_eq!((a.code, a.message), (b.code, b.message), "round {round}: {k}"),
                (a, b) => panic!("round {round}: {k}: {:?} vs {:?}", a.map(|_| ()), b.map(|_| ())),
            }
            let (_, want) = answer(&mut s, "SELECT * FROM pd ORDER BY id").await.unwrap();
            let (_, got) = answer(&mut s, "SELECT * FROM kd ORDER BY id").await.unwrap();
            assert_eq!(got, want, "round {round}: {k}");
        }
    }
}
