//! AST rewrites that make a MySQL statement mean the same thing to DataFusion.
//!
//! A `SELECT @@version, DATABASE(), Name, IF(a>1,'x','y') FROM dual` walks through three passes:
//! 1. **names** — every unaliased select item gets the header MySQL would print (`@@version`,
//!    `DATABASE()`, `Name`), because DataFusion would otherwise name it after its own plan text;
//! 2. **expressions** — session values are inlined as literals (`@@version` → `'8.0.11-TiDB-…'`,
//!    `DATABASE()` → `'test'`), MySQL-only syntax becomes DataFusion syntax (`IF` → `CASE`,
//!    `CAST(x AS SIGNED)` → `CAST(x AS BIGINT)`), and identifiers are folded to lower case so that
//!    names are case-insensitive as in MySQL;
//! 3. **relations** — table names are folded to lower case and `FROM dual` disappears.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::*;

use crate::error::{Result, SqlError};

/// What the rewrite needs from the session.
pub trait SessionValues {
    /// `@@name` (scope: None = session-or-global, Some(true) = global).
    fn system_var(&self, name: &str, global: Option<bool>) -> Result<String>;
    fn current_db(&self) -> Option<String>;
    fn last_insert_id(&self) -> u64;
    fn connection_id(&self) -> u32;
    fn user(&self) -> String;
    fn version(&self) -> String;
    fn found_rows(&self) -> u64;
    fn row_count(&self) -> i64;
}

pub fn rewrite_statement(stmt: &mut Statement, s: &dyn SessionValues) -> Result<()> {
    // 1. headers
    let _ = visit_statements_mut(stmt, |st| {
        if let Statement::Query(q) = st {
            name_query(q);
        }
        ControlFlow::<()>::Continue(())
    });
    let mut namer = Namer;
    let _ = VisitMut::visit(stmt, &mut namer);
    // 2. expressions
    let mut err: Option<SqlError> = None;
    let _ = visit_expressions_mut(stmt, |e| {
        if let Err(x) = rewrite_expr(e, s) {
            err = Some(x);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if let Some(e) = err {
        return Err(e);
    }
    // 3. relations
    let _ = visit_relations_mut(stmt, |name| {
        for part in name.0.iter_mut() {
            if let ObjectNamePart::Identifier(id) = part {
                id.value = id.value.to_lowercase();
            }
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(())
}

struct Namer;

impl VisitorMut for Namer {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        name_query(q);
        ControlFlow::Continue(())
    }
}

fn name_query(q: &mut Query) {
    name_set_expr(&mut q.body);
}

fn name_set_expr(body: &mut SetExpr) {
    match body {
        SetExpr::Select(sel) => name_select(sel),
        SetExpr::SetOperation { left, right, .. } => {
            name_set_expr(left);
            // Only the first branch names a UNION's columns; leave the others alone.
            let _ = right;
        }
        SetExpr::Query(q) => name_query(q),
        _ => {}
    }
}

fn is_dual(t: &TableWithJoins) -> bool {
    if !t.joins.is_empty() {
        return false;
    }
    matches!(&t.relation, TableFactor::Table { name, .. } if name.to_string().eq_ignore_ascii_case("dual"))
}

fn name_select(sel: &mut Select) {
    if sel.from.len() == 1 && is_dual(&sel.from[0]) {
        sel.from.clear();
    }
    let mut seen = std::collections::HashSet::new();
    for item in sel.projection.iter_mut() {
        if let SelectItem::UnnamedExpr(e) = item {
            let header = match &*e {
                Expr::Identifier(id) if !id.value.starts_with("@@") => {
                    if id.value.chars().any(|c| c.is_uppercase()) {
                        Some(id.value.clone())
                    } else {
                        None
                    }
                }
                Expr::CompoundIdentifier(ids) if !ids[0].value.starts_with("@@") => {
                    let last = &ids[ids.len() - 1].value;
                    if last.chars().any(|c| c.is_uppercase()) {
                        Some(last.clone())
                    } else {
                        None
                    }
                }
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                },
                other => Some(other.to_string()),
            };
            let header = header;
            if let Some(h) = header {
                // Duplicate headers are legal in MySQL but not in DataFusion; keep the first.
                if seen.insert(h.to_lowercase()) {
                    let expr = std::mem::replace(e, Expr::value(Value::Null));
                    *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('`', h) };
                }
            }
        }
    }
}

fn lit_str(s: impl Into<String>) -> Expr {
    Expr::value(Value::SingleQuotedString(s.into()))
}
fn lit_num(n: impl ToString) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

fn var_literal(v: String) -> Expr {
    if !v.is_empty() && v.parse::<i64>().is_ok() && !v.starts_with('+') && !(v.len() > 1 && v.starts_with('0')) {
        lit_num(v)
    } else {
        lit_str(v)
    }
}

fn function_args(f: &Function) -> Vec<&Expr> {
    match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

fn rewrite_expr(e: &mut Expr, s: &dyn SessionValues) -> Result<()> {
    match e {
        Expr::Identifier(id) if id.value.starts_with("@@") => {
            let name = id.value.trim_start_matches("@@");
            *e = var_literal(s.system_var(name, None)?);
        }
        Expr::CompoundIdentifier(ids) if ids[0].value.starts_with("@@") => {
            let scope = ids[0].value.trim_start_matches("@@").to_ascii_lowercase();
            let name = ids[1..].iter().map(|i| i.value.clone()).collect::<Vec<_>>().join(".");
            let global = match scope.as_str() {
                "global" => Some(true),
                "session" | "local" => Some(false),
                _ => {
                    // `@@a.b` without a scope keyword.
                    let full = format!("{scope}.{name}");
                    *e = var_literal(s.system_var(&full, None)?);
                    return Ok(());
                }
            };
            *e = var_literal(s.system_var(&name, global)?);
        }
        Expr::Identifier(id) => {
            id.value = id.value.to_lowercase();
        }
        Expr::CompoundIdentifier(ids) => {
            for id in ids.iter_mut() {
                id.value = id.value.to_lowercase();
            }
        }
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_lowercase();
            let nargs = function_args(f).len();
            let replacement = match name.as_str() {
                "database" | "schema" if nargs == 0 => {
                    Some(s.current_db().map(lit_str).unwrap_or_else(|| Expr::value(Value::Null)))
                }
                "version" if nargs == 0 => Some(lit_str(s.version())),
                "tidb_version" if nargs == 0 => Some(lit_str(format!(
                    "Release Version: {}\nEdition: Community\nGit Commit Hash: embedb\nStore: embedb (redb)",
                    s.version()
                ))),
                "user" | "current_user" | "session_user" | "system_user" if nargs == 0 => {
                    Some(lit_str(format!("{}@%", s.user())))
                }
                "connection_id" if nargs == 0 => Some(lit_num(s.connection_id())),
                "last_insert_id" if nargs == 0 => Some(lit_num(s.last_insert_id())),
                "found_rows" if nargs == 0 => Some(lit_num(s.found_rows())),
                "row_count" if nargs == 0 => Some(lit_num(s.row_count())),
                "if" if nargs == 3 => {
                    let a = function_args(f);
                    Some(Expr::Case {
                        case_token: datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                        end_token: datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                        operand: None,
                        conditions: vec![CaseWhen { condition: a[0].clone(), result: a[1].clone() }],
                        else_result: Some(Box::new(a[2].clone())),
                    })
                }
                "if" => return Err(SqlError::param_count("if")),
                "ifnull" if nargs == 2 => {
                    f.name = ObjectName::from(vec![Ident::new("coalesce")]);
                    None
                }
                "ifnull" => return Err(SqlError::param_count("ifnull")),
                "length" | "octet_length" => {
                    f.name = ObjectName::from(vec![Ident::new("octet_length")]);
                    None
                }
                "char_length" | "character_length" => {
                    f.name = ObjectName::from(vec![Ident::new("character_length")]);
                    None
                }
                "curdate" | "current_date" if nargs == 0 => {
                    f.name = ObjectName::from(vec![Ident::new("current_date")]);
                    None
                }
                "sysdate" | "localtime" | "localtimestamp" | "current_timestamp" if nargs == 0 => {
                    f.name = ObjectName::from(vec![Ident::new("now")]);
                    None
                }
                _ => None,
            };
            if let Some(r) = replacement {
                *e = r;
            }
        }
        Expr::Cast { data_type, expr, .. } => match data_type {
            DataType::Signed | DataType::SignedInteger => *data_type = DataType::BigInt(None),
            DataType::Unsigned | DataType::UnsignedInteger => *data_type = DataType::BigIntUnsigned(None),
            DataType::Char(_) | DataType::Character(_) | DataType::Nvarchar(_) => *data_type = DataType::Text,
            DataType::Datetime(_) => *data_type = DataType::Timestamp(None, TimezoneInfo::None),
            DataType::JSON => *data_type = DataType::Text,
            DataType::Custom(name, _) if name.to_string().eq_ignore_ascii_case("vector") => {
                let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
                *e = call("vec_from_text", vec![inner]);
            }
            _ => {}
        },
        Expr::BinaryOp { op: BinaryOperator::MyIntegerDivide, left, right } => {
            // a DIV b: integer division truncating toward zero, NULL on division by zero.
            let l = std::mem::replace(left.as_mut(), Expr::value(Value::Null));
            let r = std::mem::replace(right.as_mut(), Expr::value(Value::Null));
            let l = Expr::Cast { kind: CastKind::Cast, expr: Box::new(l), data_type: DataType::Double(ExactNumberInfo::None), array: false, format: None };
            *e = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(call("trunc", vec![call("mysql_div", vec![l, r])])),
                data_type: DataType::BigInt(None),
                array: false,
                format: None,
            };
        }
        Expr::BinaryOp { op: BinaryOperator::Divide, left, right } => {
            let l = std::mem::replace(left.as_mut(), Expr::value(Value::Null));
            let r = std::mem::replace(right.as_mut(), Expr::value(Value::Null));
            *e = call("mysql_div", vec![l, r]);
        }
        _ => {}
    }
    Ok(())
}

pub fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}
