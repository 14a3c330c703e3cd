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
/// Marks a repeated column header (see `name_select`); `display_name` removes it.
pub const DUP_MARK: &str = "\u{1}dup";

/// A result column's header as the client should see it.
pub fn display_name(name: &str) -> &str {
    match name.find(DUP_MARK) {
        Some(p) => &name[..p],
        None => name,
    }
}

pub trait SessionValues {
    /// `@@name` (scope: None = session-or-global, Some(true) = global).
    fn system_var(&self, name: &str, global: Option<bool>) -> Result<String>;
    fn current_db(&self) -> Option<String>;
    fn last_insert_id(&self) -> u64;
    fn connection_id(&self) -> u32;
    /// `USER()`: `name@client-host`.
    fn user(&self) -> String;
    /// `CURRENT_USER()`: `name@account-host`, the account the checks use.
    fn current_user(&self) -> String;
    fn version(&self) -> String;
    fn found_rows(&self) -> u64;
    fn row_count(&self) -> i64;
    /// The result's column at `position` is shown as `header` (an alias written with capitals)
    /// where its planned name is that alias in lower case.
    fn alias_header(&self, _position: usize, _header: &str) {}
    /// `@name` as a literal (NULL when unset).
    fn user_var(&self, name: &str) -> Expr;
    /// The statement's text, for column headers as the user typed them.
    fn source(&self) -> &str;
    /// Functions that act on the session or the server rather than compute — `GET_LOCK` and the
    /// other user-lock functions (`session::user_locks`), `SLEEP` (which KILL must be able to
    /// stop) — called with literal arguments: the call's result as a literal.
    fn session_function(&self, function: &str, args: &[Expr]) -> Result<Expr>;
}

/// Whether `e` is a constant a user-lock call can take: a string, a number (signed) or NULL.
fn lit_of_value(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => matches!(v.value, Value::SingleQuotedString(_) | Value::DoubleQuotedString(_) | Value::Number(..) | Value::Null),
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => matches!(expr.as_ref(), Expr::Value(v) if matches!(v.value, Value::Number(..))),
        _ => false,
    }
}

/// A constant's text (`None` for NULL), as [`lit_of_value`] accepts them.
pub fn literal_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.clone()),
            _ => None,
        },
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => literal_text(expr).map(|t| format!("-{t}")),
        _ => None,
    }
}

pub fn rewrite_statement(stmt: &mut Statement, s: &dyn SessionValues) -> Result<()> {
    // 1. headers
    let mut namer = Namer { source: s.source(), depth: 0, headers: None };
    let _ = VisitMut::visit(stmt, &mut namer);
    for (position, header) in namer.headers.unwrap_or_default() {
        s.alias_header(position, &header);
    }
    // 1b. MySQL's `->` / `->>` bind tighter than any operator; sqlparser gives them the lowest
    // precedence (`doc->'$.a' = 'b'` arrives as `doc -> ('$.a' = 'b')`), so hand the path back.
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::BinaryOp { op: op @ (BinaryOperator::Arrow | BinaryOperator::LongArrow), left, right } = e {
            if !is_string_literal(right) {
                let (op, base) = (op.clone(), std::mem::replace(left.as_mut(), Expr::value(Value::Null)));
                let rest = std::mem::replace(right.as_mut(), Expr::value(Value::Null));
                *e = rebind_arrow(base, op, rest);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    // 1c. without ONLY_FULL_GROUP_BY in sql_mode (mysqldump and old applications turn it off),
    // a selected column that is not grouped is any value of its group, as in MySQL.
    let loose = s.system_var("sql_mode", None).is_ok_and(|m| !crate::sql::variables::sql_mode_has(&m, "ONLY_FULL_GROUP_BY"));
    if loose {
        let _ = VisitMut::visit(stmt, &mut LooseGroupBy);
    }
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
    // 2b. conditions: MySQL treats any number as a truth value; DataFusion wants booleans.
    let mut t = Truth;
    let _ = VisitMut::visit(stmt, &mut t);
    let _ = visit_expressions_mut(stmt, |e| {
        truth_children(e);
        ControlFlow::<()>::Continue(())
    });
    // 3. relations, and the names that stand for them (table aliases, CTE names), which compare
    // case-insensitively however they are quoted (`lower_case_table_names = 2`)
    let _ = VisitMut::visit(stmt, &mut LowerAliases::default());
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

/// `ONLY_FULL_GROUP_BY` off: bare columns in a grouped select list that are not grouped become
/// `ANY_VALUE(col) AS col`.
struct LooseGroupBy;

impl VisitorMut for LooseGroupBy {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        let SetExpr::Select(sel) = q.body.as_mut() else { return ControlFlow::Continue(()) };
        let GroupByExpr::Expressions(groups, _) = &sel.group_by else { return ControlFlow::Continue(()) };
        if groups.is_empty() {
            return ControlFlow::Continue(());
        }
        // A bare column's name (`c` or `t.c`).
        let column = |e: &Expr| match e {
            Expr::Identifier(i) => Some(i.clone()),
            Expr::CompoundIdentifier(p) => p.last().cloned(),
            _ => None,
        };
        let grouped: Vec<String> = groups.iter().filter_map(column).map(|i| i.value.to_lowercase()).collect();
        let aliases: Vec<String> = sel
            .projection
            .iter()
            .filter_map(|i| match i {
                SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_lowercase()),
                _ => None,
            })
            .collect();
        for item in sel.projection.iter_mut() {
            let (e, alias) = match item {
                SelectItem::UnnamedExpr(e) => (e, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
                _ => continue,
            };
            let Some(ident) = column(e) else { continue };
            let name = ident.value.to_lowercase();
            if grouped.contains(&name) || (alias.is_none() && aliases.contains(&name)) {
                continue;
            }
            let header = alias.unwrap_or(ident);
            let col = std::mem::replace(e, Expr::value(Value::Null));
            *item = SelectItem::ExprWithAlias { expr: call("first_value", vec![col]), alias: header };
        }
        ControlFlow::Continue(())
    }
}

/// Folds table aliases and CTE names to lower case, as the identifiers that refer to them are
/// (``SELECT `T`.x FROM (…) AS `T` `` is Sequelize's and TypeORM's every query).
#[derive(Default)]
struct LowerAliases {
    /// How deep in nested queries the visit is (1 = the statement's own query).
    depth: usize,
}

fn lower_alias(a: &mut TableAlias) {
    a.name.value = a.name.value.to_lowercase();
    for c in a.columns.iter_mut() {
        c.name.value = c.name.value.to_lowercase();
    }
}

/// Select-list aliases of a nested query (a derived table, a CTE, a subquery) are names other
/// parts of the statement refer to, folded like them; only the outermost query's name headers.
fn lower_select_aliases(body: &mut SetExpr) {
    match body {
        SetExpr::Select(sel) => {
            for item in sel.projection.iter_mut() {
                if let SelectItem::ExprWithAlias { alias, .. } = item {
                    alias.value = alias.value.to_lowercase();
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            lower_select_aliases(left);
            lower_select_aliases(right);
        }
        SetExpr::Query(q) => lower_select_aliases(&mut q.body),
        _ => {}
    }
}

impl VisitorMut for LowerAliases {
    type Break = ();
    fn post_visit_query(&mut self, _q: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
    fn pre_visit_select(&mut self, sel: &mut Select) -> ControlFlow<()> {
        // `` `User`.* ``: the qualifier names a table or alias, folded like them.
        for item in sel.projection.iter_mut() {
            if let SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _) = item {
                for part in n.0.iter_mut() {
                    if let ObjectNamePart::Identifier(id) = part {
                        id.value = id.value.to_lowercase();
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > 1 {
            lower_select_aliases(&mut q.body);
        }
        if let Some(with) = &mut q.with {
            for cte in with.cte_tables.iter_mut() {
                lower_alias(&mut cte.alias);
            }
        }
        ControlFlow::Continue(())
    }
    fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        match t {
            TableFactor::Table { alias, .. }
            | TableFactor::Derived { alias, .. }
            | TableFactor::TableFunction { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::NestedJoin { alias, .. } => {
                if let Some(a) = alias {
                    lower_alias(a);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

struct Namer<'a> {
    source: &'a str,
    depth: usize,
    /// The outermost select's aliases with capitals, by position (see `SessionValues::alias_header`).
    headers: Option<Vec<(usize, String)>>,
}

impl VisitorMut for Namer<'_> {
    type Break = ();
    fn post_visit_query(&mut self, _q: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        let top = self.depth == 1;
        let headers = name_set_expr(&mut q.body, self.source, top);
        if top && self.headers.is_none() {
            self.headers = Some(headers);
        }
        order_by_aliases(q);
        ControlFlow::Continue(())
    }
}

/// `ORDER BY `Name`` where `Name` is a quoted select alias with capitals: identifiers are folded
/// to lower case and the alias is not, so the alias is replaced by the expression it names
/// (MySQL resolves ORDER BY names to select aliases first).
fn order_by_aliases(q: &mut Query) {
    let SetExpr::Select(sel) = q.body.as_ref() else { return };
    let Some(OrderBy { kind: OrderByKind::Expressions(items), .. }) = &mut q.order_by else { return };
    for item in items.iter_mut() {
        let Expr::Identifier(id) = &item.expr else { continue };
        if !id.value.chars().any(|c| c.is_uppercase()) && id.quote_style.is_none() {
            continue;
        }
        let found = sel.projection.iter().find_map(|p| match p {
            SelectItem::ExprWithAlias { expr, alias }
                if alias.value.eq_ignore_ascii_case(&id.value) && alias.value.chars().any(|c| c.is_uppercase()) =>
            {
                Some(expr.clone())
            }
            _ => None,
        });
        if let Some(expr) = found {
            item.expr = expr;
        }
    }
}

/// Names the select items (see `name_select`); returns the aliases with capitals of the select
/// that names the result, by position.
fn name_set_expr(body: &mut SetExpr, source: &str, top: bool) -> Vec<(usize, String)> {
    match body {
        SetExpr::Select(sel) => {
            let headers = alias_headers(sel);
            name_select(sel, source, top);
            headers
        }
        // Only the first branch of a UNION names its columns; the others keep theirs.
        SetExpr::SetOperation { left, .. } => name_set_expr(left, source, top),
        SetExpr::Query(q) => name_set_expr(&mut q.body, source, top),
        _ => vec![],
    }
}

/// `SELECT COUNT(*) AS Total`: DataFusion folds the alias to `total`, which every reference to
/// it (GROUP BY, ORDER BY, an outer query) relies on, while MySQL's header is `Total`. The
/// aliases with capitals, by position, so that the session can give the result's column the
/// header as written; none when a wildcard makes positions unknown.
pub(crate) fn alias_headers(sel: &Select) -> Vec<(usize, String)> {
    if sel.projection.iter().any(|p| matches!(p, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..))) {
        return vec![];
    }
    sel.projection
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            SelectItem::ExprWithAlias { alias, .. } if alias.quote_style.is_none() && alias.value.chars().any(char::is_uppercase) => Some((i, alias.value.clone())),
            _ => None,
        })
        .collect()
}

/// The text of `e` exactly as written in `source` (MySQL names an unaliased column after it).
fn source_text(e: &Expr, source: &str) -> Option<String> {
    use datafusion::sql::sqlparser::ast::Spanned;
    let span = e.span();
    if span.start.line == 0 || source.is_empty() {
        return None;
    }
    let offset = |line: u64, col: u64| -> Option<usize> {
        let mut line_start = 0usize;
        for _ in 1..line {
            line_start += source[line_start..].find('\n')? + 1;
        }
        let rest = &source[line_start..];
        let chars = (col as usize).saturating_sub(1);
        Some(line_start + rest.char_indices().nth(chars).map(|(i, _)| i).unwrap_or(rest.len()))
    };
    let (a, mut b) = (offset(span.start.line, span.start.column)?, offset(span.end.line, span.end.column)?);
    // Spans of calls stop before their closing parentheses; take them in.
    let bytes = source.as_bytes();
    loop {
        let t = source.get(a..b)?;
        if t.matches('(').count() <= t.matches(')').count() {
            break;
        }
        let mut k = b;
        while k < bytes.len() && bytes[k].is_ascii_whitespace() {
            k += 1;
        }
        if k < bytes.len() && bytes[k] == b')' {
            b = k + 1;
        } else {
            break;
        }
    }
    let t = source.get(a..b)?.trim();
    // Trust the slice only when it is the same expression as the AST prints (spans are partial
    // for some node kinds, e.g. `x IS TRUE`).
    let norm = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
    (norm(t) == norm(&e.to_string())).then(|| t.to_string())
}

fn is_dual(t: &TableWithJoins) -> bool {
    if !t.joins.is_empty() {
        return false;
    }
    matches!(&t.relation, TableFactor::Table { name, .. } if name.to_string().eq_ignore_ascii_case("dual"))
}

/// `top`: the statement's own select list, whose headers the client sees. A nested query's plain
/// column references keep their (folded) names, so the outer query can refer to them.
fn name_select(sel: &mut Select, source: &str, top: bool) {
    if sel.from.len() == 1 && is_dual(&sel.from[0]) {
        sel.from.clear();
    }
    having_as_where(sel);
    let mut seen = std::collections::HashSet::new();
    let mut dups = 0;
    for item in sel.projection.iter_mut() {
        if let SelectItem::UnnamedExpr(e) = item {
            if !top && matches!(&*e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                continue;
            }
            let header = match &*e {
                Expr::Identifier(id) if id.value.starts_with('@') && !id.value.starts_with("@@") => Some(id.value.clone()),
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
                    other => Some(source_text(e, source).unwrap_or_else(|| other.to_string())),
                },
                other => Some(source_text(other, source).unwrap_or_else(|| other.to_string())),
            };
            let header = header;
            // Duplicate headers are legal in MySQL but not in DataFusion: give the repeats a
            // marked alias that the server strips when it names the columns.
            let key = match (&header, &*e) {
                (Some(h), _) => h.clone(),
                (None, Expr::CompoundIdentifier(ids)) => ids[ids.len() - 1].value.clone(),
                (None, other) => other.to_string(),
            };
            let alias = if seen.insert(key.to_lowercase()) {
                header
            } else {
                dups += 1;
                Some(format!("{key}{DUP_MARK}{dups}"))
            };
            if let Some(h) = alias {
                let expr = std::mem::replace(e, Expr::value(Value::Null));
                *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('`', h) };
            }
        }
    }
    for item in sel.projection.iter_mut() {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            exists_as_count(e);
        }
    }
}

/// `EXISTS (q)` in a select list (pytidb's `SELECT EXISTS(SELECT 1 FROM …)`), which DataFusion
/// plans only in conditions, becomes `(SELECT COUNT(*) FROM (q LIMIT 1))`: MySQL's 1 or 0.
fn exists_as_count(e: &mut Expr) {
    match e {
        Expr::Exists { subquery, negated } => {
            let inner = format!("SELECT COUNT(*) FROM ({} LIMIT 1) AS `_exists`", subquery);
            let Ok(Statement::Query(q)) = crate::sql::parser::parse_one(&inner) else { return };
            let count = Expr::Subquery(q);
            *e = if *negated { Expr::BinaryOp { left: Box::new(lit_num(1)), op: BinaryOperator::Minus, right: Box::new(count) } } else { count };
        }
        Expr::Nested(x) | Expr::UnaryOp { expr: x, .. } => exists_as_count(x),
        _ => {}
    }
}

fn lit_str(s: impl Into<String>) -> Expr {
    Expr::value(Value::SingleQuotedString(s.into()))
}
pub fn lit_num(n: impl ToString) -> Expr {
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
        Expr::Identifier(id) if id.quote_style.is_none() && id.value.starts_with('@') => {
            *e = s.user_var(&id.value[1..]);
        }
        Expr::Identifier(id) => {
            id.value = id.value.to_lowercase();
        }
        Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n.contains(['e', 'E'])) => {
            // 1e-05, 0.5e0: approximate-value literals are DOUBLEs (exact ones are DECIMALs).
            let Value::Number(n, _) = &v.value else { unreachable!() };
            *e = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(lit_str(n.clone())),
                data_type: DataType::Double(ExactNumberInfo::None),
                array: false,
                format: None,
            };
        }
        Expr::TypedString(ts) if matches!(ts.data_type, DataType::Binary(_) | DataType::Varbinary(_)) => {
            // `LIKE BINARY 'a%'`, `= BINARY 'x'`: a byte-wise comparison, which is what text
            // comparisons are here already (utf8mb4_bin).
            *e = Expr::Value(ts.value.clone());
        }
        Expr::IsNotNull(inner) | Expr::IsNull(inner) if matches!(inner.as_ref(), Expr::Subquery(_)) => {
            // `(SELECT c FROM … WHERE <correlated> LIMIT 1) IS NOT NULL` (Sequelize's `required`
            // include with a limit) is `EXISTS (SELECT 1 FROM … WHERE <correlated> AND c IS NOT
            // NULL)`, which DataFusion can decorrelate; a LIMITed scalar subquery it cannot.
            let negated = matches!(e, Expr::IsNull(_));
            let (Expr::IsNotNull(inner) | Expr::IsNull(inner)) = &*e else { unreachable!() };
            let Expr::Subquery(q) = inner.as_ref() else { unreachable!() };
            if let Some(exists) = not_null_as_exists(q, negated) {
                *e = exists;
            }
        }
        Expr::Value(v) if matches!(v.value, Value::Boolean(_)) => {
            // MySQL's TRUE and FALSE are the integers 1 and 0.
            let one = matches!(v.value, Value::Boolean(true));
            *e = lit_num(if one { 1 } else { 0 });
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
                "user" | "session_user" | "system_user" if nargs == 0 => Some(lit_str(s.user())),
                "current_user" if nargs == 0 => Some(lit_str(s.current_user())),
                "connection_id" if nargs == 0 => Some(lit_num(s.connection_id())),
                "last_insert_id" if nargs == 0 => Some(lit_num(s.last_insert_id())),
                "found_rows" if nargs == 0 => Some(lit_num(s.found_rows())),
                "row_count" if nargs == 0 => Some(lit_num(s.row_count())),
                "get_lock" | "release_lock" | "release_all_locks" | "is_free_lock" | "is_used_lock" | "embedding_wait" | "embedding_retry" => {
                    // Side effects happen once, here: the arguments must be constants.
                    let args: Vec<Expr> = function_args(f).into_iter().cloned().collect();
                    if !args.iter().all(|a| lit_of_value(a)) {
                        return Err(SqlError::unsupported(format!("{} with arguments that are not constants", name.to_uppercase())));
                    }
                    Some(s.session_function(&name, &args)?)
                }
                // SLEEP(constant) waits here, where KILL QUERY (or Ctrl-C in-process) can end it
                // (MySQL then returns 1); SLEEP of a column stays the per-row function.
                "sleep" if nargs == 1 && lit_of_value(function_args(f)[0]) => {
                    let args: Vec<Expr> = function_args(f).into_iter().cloned().collect();
                    Some(s.session_function(&name, &args)?)
                }
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
                "concat" => {
                    // MySQL: any NULL argument makes the result NULL.
                    f.name = ObjectName::from(vec![Ident::new("mysql_concat")]);
                    None
                }
                "mod" if nargs == 2 => {
                    let a = function_args(f);
                    Some(Expr::BinaryOp { left: Box::new(a[0].clone()), op: BinaryOperator::Modulo, right: Box::new(a[1].clone()) })
                }
                "group_concat" => {
                    // GROUP_CONCAT(x [ORDER BY …] [SEPARATOR s]) → string_agg(CAST(x AS TEXT), s [ORDER BY …])
                    if let FunctionArguments::List(l) = &mut f.args {
                        let mut sep = Value::SingleQuotedString(",".into());
                        l.clauses.retain(|c| match c {
                            FunctionArgumentClause::Separator(v) => {
                                sep = v.value.clone();
                                false
                            }
                            _ => true,
                        });
                        let items: Vec<Expr> = l
                            .args
                            .iter()
                            .filter_map(|a| match a {
                                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                                _ => None,
                            })
                            .collect();
                        let text = |x: Expr| Expr::Cast {
                            kind: CastKind::Cast,
                            expr: Box::new(x),
                            data_type: DataType::Text,
                            array: false,
                            format: None,
                        };
                        let joined = if items.len() == 1 { text(items[0].clone()) } else { call("mysql_concat", items.into_iter().map(text).collect()) };
                        l.args = vec![
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(joined)),
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(sep))),
                        ];
                    }
                    f.name = ObjectName::from(vec![Ident::new("string_agg")]);
                    None
                }
                "date" if nargs == 1 => {
                    let a = function_args(f);
                    Some(Expr::Cast { kind: CastKind::Cast, expr: Box::new(a[0].clone()), data_type: DataType::Date, array: false, format: None })
                }
                "hour" | "minute" | "second" if nargs == 1 => {
                    // Of a TIME too ('100:00:00' has hour 100), which date_part cannot read.
                    let a = function_args(f);
                    Some(call("mysql_time_part", vec![lit_str(name.clone()), a[0].clone()]))
                }
                "year" | "month" | "day" | "dayofmonth" | "quarter" | "week" | "weekofyear" if nargs == 1 => {
                    let part = match name.as_str() {
                        "dayofmonth" => "day".to_string(),
                        "weekofyear" => "week".to_string(),
                        _ => name.clone(),
                    };
                    let a = function_args(f);
                    Some(Expr::Cast {
                        kind: CastKind::Cast,
                        expr: Box::new(call("date_part", vec![lit_str(part), a[0].clone()])),
                        data_type: DataType::BigInt(None),
                        array: false,
                        format: None,
                    })
                }
                "unix_timestamp" if nargs == 0 => Some(Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(call("date_part", vec![lit_str("epoch"), call("now", vec![])])),
                    data_type: DataType::BigInt(None),
                    array: false,
                    format: None,
                }),
                "length" | "octet_length" => {
                    f.name = ObjectName::from(vec![Ident::new("mysql_length")]);
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
                "sysdate" | "localtime" | "localtimestamp" | "current_timestamp" | "now" if nargs <= 1 => {
                    // NOW() is whole seconds; NOW(fsp) keeps the fraction (microseconds).
                    let fsp = function_args(f).first().map(|a| a.to_string()).unwrap_or_default();
                    let now = call("now", vec![]);
                    Some(if fsp.is_empty() || fsp == "0" { call("date_trunc", vec![lit_str("second"), now]) } else { now })
                }
                "any_value" => {
                    f.name = ObjectName::from(vec![Ident::new("first_value")]);
                    None
                }
                "ucase" => {
                    f.name = ObjectName::from(vec![Ident::new("upper")]);
                    None
                }
                // Other spellings of DataFusion's functions; STD/STDDEV/VARIANCE are population
                // statistics in MySQL.
                "ceiling" if nargs == 1 => {
                    // CEIL's other name: rewritten as CEIL is (below).
                    let arg = function_args(f)[0].clone();
                    *e = Expr::Ceil { expr: Box::new(arg), field: CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) };
                    return rewrite_expr(e, s);
                }
                "mid" | "std" | "stddev" | "variance" | "sign" | "approx_count_distinct" => {
                    let to = match name.as_str() {
                        "mid" => "substr",
                        "std" | "stddev" => "stddev_pop",
                        "variance" => "var_pop",
                        "sign" => "mysql_sign",
                        _ => "approx_distinct",
                    };
                    f.name = ObjectName::from(vec![Ident::new(to)]);
                    None
                }
                "approx_percentile" if nargs == 2 => {
                    let a = function_args(f);
                    let p = Expr::BinaryOp { left: Box::new(a[1].clone()), op: BinaryOperator::Divide, right: Box::new(Expr::value(Value::Number("100.0".into(), false))) };
                    Some(call("approx_percentile_cont", vec![a[0].clone(), p]))
                }
                "isnull" if nargs == 1 => Some(Expr::IsNull(Box::new(function_args(f)[0].clone()))),
                "name_const" if nargs == 2 => Some(function_args(f)[1].clone()),
                "time" if nargs == 1 => Some(call("mysql_time", vec![function_args(f)[0].clone()])),
                "timestamp" if nargs == 1 || nargs == 2 => Some(call("mysql_timestamp", function_args(f).into_iter().cloned().collect())),
                "get_format" if nargs == 2 => {
                    // The first argument is a bare word (`GET_FORMAT(DATE, 'ISO')`).
                    let a = function_args(f);
                    let kind = match a[0] {
                        Expr::Identifier(id) => lit_str(id.value.to_ascii_uppercase()),
                        other => lit_str(other.to_string().to_ascii_uppercase()),
                    };
                    Some(call("get_format", vec![kind, a[1].clone()]))
                }
                "json_arrayagg" if nargs == 1 => Some(call("json_from_list", vec![call("array_agg", vec![function_args(f)[0].clone()])])),
                "json_objectagg" if nargs == 2 => {
                    let a = function_args(f);
                    Some(call("json_from_pairs", vec![call("array_agg", vec![a[0].clone()]), call("array_agg", vec![a[1].clone()])]))
                }
                "lcase" => {
                    f.name = ObjectName::from(vec![Ident::new("lower")]);
                    None
                }
                "truncate" => {
                    f.name = ObjectName::from(vec![Ident::new("mysql_truncate")]);
                    None
                }
                "sum" | "avg" | "stddev_pop" | "stddev_samp" | "var_pop" | "var_samp"
                    if nargs == 1 && function_args(f).first().is_some_and(|a| is_boolish(a)) =>
                {
                    // SUM(x = 'y'): a truth value is the number 1 or 0 to MySQL.
                    if let FunctionArguments::List(l) = &mut f.args {
                        if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(x))) = l.args.first_mut() {
                            let inner = std::mem::replace(x, Expr::value(Value::Null));
                            *x = Expr::Cast { kind: CastKind::Cast, expr: Box::new(inner), data_type: DataType::BigInt(None), array: false, format: None };
                        }
                    }
                    None
                }
                "uuid" if nargs == 0 => {
                    f.name = ObjectName::from(vec![Ident::new("mysql_uuid")]);
                    None
                }
                // The server's time zone is UTC: UTC_TIME is CURTIME.
                "curtime" | "current_time" | "utc_time" => Some(call("mysql_curtime", vec![])),
                "date_add" | "adddate" | "date_sub" | "subdate" if nargs == 2 => {
                    let a = function_args(f);
                    let sign = if name == "date_add" || name == "adddate" { 1 } else { -1 };
                    Some(date_arithmetic(a[0].clone(), a[1].clone(), sign))
                }
                "timestampdiff" | "timestampadd" if nargs == 3 => {
                    // The unit is a bare word (`TIMESTAMPDIFF(DAY, a, b)`), not a column.
                    let a = function_args(f);
                    let unit = match a[0] {
                        Expr::Identifier(id) => lit_str(id.value.to_ascii_uppercase()),
                        other => other.clone(),
                    };
                    Some(call(&name, vec![unit, a[1].clone(), a[2].clone()]))
                }
                _ => None,
            };
            if let Some(r) = replacement {
                *e = r;
            }
        }
        Expr::UnaryOp { op: UnaryOperator::BitwiseNot, expr } => {
            let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
            *e = call("mysql_bitnot", vec![inner]);
        }
        Expr::MemberOf(m) => {
            *e = call("json_memberof", vec![(*m.value).clone(), (*m.array).clone()]);
        }
        Expr::Convert { expr, data_type: Some(dt), charset: None, styles, .. } if styles.is_empty() => {
            // CONVERT(x, UNSIGNED) is CAST(x AS UNSIGNED) (Connector/J's getColumns sends it).
            let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
            *e = Expr::Cast { kind: CastKind::Cast, expr: Box::new(inner), data_type: dt.clone(), array: false, format: None };
            return rewrite_expr(e, s);
        }
        Expr::Cast { data_type: DataType::Binary(None), expr, .. } => {
            // `BINARY x` (and CAST(x AS BINARY)): text compares byte-wise here already
            // (utf8mb4_bin), so `LIKE BINARY 'a%'` needs nothing more than its operand.
            let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
            *e = inner;
        }
        Expr::Cast { data_type, expr, .. } => match data_type {
            DataType::Signed | DataType::SignedInteger | DataType::Unsigned | DataType::UnsignedInteger => {
                // (`sql::coerce` rounds DECIMAL and DOUBLE sources, as MySQL does.)
                *data_type = if matches!(data_type, DataType::Signed | DataType::SignedInteger) {
                    DataType::BigInt(None)
                } else {
                    DataType::BigIntUnsigned(None)
                };
            }
            DataType::Char(_) | DataType::Character(_) | DataType::Nvarchar(_) => *data_type = DataType::Text,
            DataType::Datetime(_) => *data_type = DataType::Timestamp(None, TimezoneInfo::None),
            DataType::JSON => *data_type = DataType::Text,
            DataType::Custom(name, args) if name.to_string().eq_ignore_ascii_case("vector") => {
                let dim = args.first().cloned();
                let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
                let v = call("vec_from_text", vec![inner]);
                *e = match dim {
                    Some(d) => call("vec_check_dims", vec![v, lit_num(d)]),
                    None => v,
                };
            }
            _ => {}
        },
        Expr::BinaryOp { op: op @ (BinaryOperator::Plus | BinaryOperator::Minus), left, right }
            if matches!(right.as_ref(), Expr::Interval(_)) || (matches!(op, BinaryOperator::Plus) && matches!(left.as_ref(), Expr::Interval(_))) =>
        {
            // `d + INTERVAL 1 DAY`, `INTERVAL 1 DAY + d`, `d - INTERVAL 1 DAY`.
            let sign = if matches!(op, BinaryOperator::Minus) { -1 } else { 1 };
            let l = std::mem::replace(left.as_mut(), Expr::value(Value::Null));
            let r = std::mem::replace(right.as_mut(), Expr::value(Value::Null));
            let (base, interval) = if matches!(r, Expr::Interval(_)) { (l, r) } else { (r, l) };
            *e = date_arithmetic(base, interval, sign);
        }
        Expr::BinaryOp { op: BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply | BinaryOperator::Modulo, left, right } => {
            // A string literal in arithmetic is a number to MySQL ('3' + 1 = 4); vector text stays
            // text (the plan rule in `sql::coerce` makes it a vector).
            for side in [left, right] {
                if let Expr::Value(v) = side.as_ref() {
                    if let Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) = &v.value {
                        if !s.trim_start().starts_with('[') {
                            let inner = std::mem::replace(side.as_mut(), Expr::value(Value::Null));
                            **side = Expr::Cast {
                                kind: CastKind::Cast,
                                expr: Box::new(inner),
                                data_type: DataType::Double(ExactNumberInfo::None),
                                array: false,
                                format: None,
                            };
                        }
                    }
                }
            }
        }
        Expr::Floor { field: CeilFloorKind::DateTimeField(DateTimeField::NoDateTime), .. }
        | Expr::Ceil { field: CeilFloorKind::DateTimeField(DateTimeField::NoDateTime), .. } => {
            // MySQL's FLOOR/CEIL give an integral value (no fractional digits).
            let inner = std::mem::replace(e, Expr::value(Value::Null));
            *e = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(inner),
                data_type: DataType::Decimal(ExactNumberInfo::PrecisionAndScale(38, 0)),
                array: false,
                format: None,
            };
        }
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
        Expr::RLike { negated, expr, pattern, .. } => {
            // `a REGEXP p` / `RLIKE`: case-sensitive, as under TiDB's default binary collation.
            let x = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
            let p = std::mem::replace(pattern.as_mut(), Expr::value(Value::Null));
            let matched = call("regexp_like", vec![x, p]);
            let negated = *negated;
            *e = if negated { Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Not, expr: Box::new(Expr::Nested(Box::new(matched))) } } else { matched };
        }
        Expr::BinaryOp { op: op @ (BinaryOperator::Arrow | BinaryOperator::LongArrow), left, right } => {
            // MySQL's `doc->'$.p'` is JSON_EXTRACT(doc, '$.p'); `->>` unquotes it too.
            let unquote = matches!(op, BinaryOperator::LongArrow);
            let l = std::mem::replace(left.as_mut(), Expr::value(Value::Null));
            let r = std::mem::replace(right.as_mut(), Expr::value(Value::Null));
            let extract = call("json_extract", vec![l, r]);
            *e = if unquote { call("json_unquote", vec![extract]) } else { extract };
        }
        Expr::Collate { expr, collation } => {
            // `x COLLATE name`: the value with its collation beside it (`sql::collation::Collate`).
            let name = crate::sql::collation::checked(&collation.to_string())?;
            let x = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
            *e = call(crate::sql::collation::COLLATE_FN, vec![x, lit_str(name)]);
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

fn is_string_literal(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_) | Value::DoubleQuotedString(_)))
}

/// `base -> rest`, where `rest` was parsed as an operator expression whose leftmost operand is
/// the path: the arrow moves down onto that operand (`doc -> ('$.a' = 'b')` → `(doc -> '$.a') = 'b'`).
fn rebind_arrow(base: Expr, op: BinaryOperator, mut rest: Expr) -> Expr {
    let slot = leftmost_operand(&mut rest);
    let path = std::mem::replace(slot, Expr::value(Value::Null));
    *slot = Expr::BinaryOp { left: Box::new(base), op, right: Box::new(path) };
    rest
}

/// The leftmost operand of an operator expression (the expression itself when it is none).
fn leftmost_operand(e: &mut Expr) -> &mut Expr {
    match e {
        Expr::BinaryOp { left: x, .. }
        | Expr::InList { expr: x, .. }
        | Expr::InSubquery { expr: x, .. }
        | Expr::Between { expr: x, .. }
        | Expr::Like { expr: x, .. }
        | Expr::ILike { expr: x, .. }
        | Expr::RLike { expr: x, .. }
        | Expr::IsNull(x)
        | Expr::IsNotNull(x) => leftmost_operand(x),
        other => other,
    }
}

/// `DATE_ADD(base, INTERVAL v UNIT)` (sign 1) or `DATE_SUB` (-1) as a call of the interval
/// functions (`functions/interval.rs`); a bare number is days (`DATE_ADD(d, 3)`).
fn date_arithmetic(base: Expr, interval: Expr, sign: i64) -> Expr {
    let (value, unit) = match interval {
        Expr::Interval(i) => {
            let lead = i.leading_field.as_ref().map_or("SECOND".to_string(), |f| f.to_string().to_ascii_uppercase());
            let unit = match &i.last_field {
                Some(last) => format!("{lead}_{}", last.to_string().to_ascii_uppercase()),
                None => lead,
            };
            (*i.value, unit)
        }
        other => (other, "DAY".to_string()),
    };
    let target = crate::sql::functions::interval::function_for(&unit);
    call(target, vec![base, value, lit_str(unit), Expr::value(Value::Number(sign.to_string(), false))])
}

/// A call's positional argument expressions (named and wildcard arguments are left out).
pub fn plain_args(f: &Function) -> Vec<&Expr> {
    match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
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

/// Expressions that already produce a boolean in DataFusion.
fn is_boolish(e: &Expr) -> bool {
    match e {
        Expr::BinaryOp { op, .. } => matches!(
            op,
            BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq
                | BinaryOperator::And
                | BinaryOperator::Or
                | BinaryOperator::Xor
                | BinaryOperator::Spaceship
        ),
        Expr::UnaryOp { op: UnaryOperator::Not, .. } => true,
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..)
        | Expr::InList { .. }
        | Expr::InSubquery { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::RLike { .. }
        | Expr::SimilarTo { .. }
        | Expr::Exists { .. } => true,
        Expr::Nested(inner) => is_boolish(inner),
        Expr::Function(f) => f.name.to_string().eq_ignore_ascii_case("mysql_truth"),
        _ => false,
    }
}

/// Make `e` a boolean condition: `mysql_truth(e)` unless it already is one.
fn truthy(e: &mut Expr) {
    if !is_boolish(e) {
        let inner = std::mem::replace(e, Expr::value(Value::Null));
        *e = call("mysql_truth", vec![inner]);
    }
}

/// Operands of logical operators and CASE WHEN conditions are truth values.
fn truth_children(e: &mut Expr) {
    match e {
        Expr::BinaryOp { op: BinaryOperator::And | BinaryOperator::Or | BinaryOperator::Xor, left, right } => {
            truthy(left);
            truthy(right);
        }
        Expr::UnaryOp { op: UnaryOperator::Not, expr } => truthy(expr),
        Expr::IsTrue(x) | Expr::IsFalse(x) | Expr::IsNotTrue(x) | Expr::IsNotFalse(x) => truthy(x),
        Expr::Case { operand: None, conditions, .. } => {
            for c in conditions.iter_mut() {
                truthy(&mut c.condition);
            }
        }
        _ => {}
    }
}

/// WHERE, HAVING and JOIN … ON conditions are truth values.
struct Truth;

impl VisitorMut for Truth {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        fn walk(body: &mut SetExpr) {
            match body {
                SetExpr::Select(sel) => {
                    if let Some(w) = sel.selection.as_mut() {
                        truthy(w);
                    }
                    if let Some(h) = sel.having.as_mut() {
                        truthy(h);
                    }
                    for t in sel.from.iter_mut() {
                        for j in t.joins.iter_mut() {
                            let c = match &mut j.join_operator {
                                JoinOperator::Join(c)
                                | JoinOperator::Inner(c)
                                | JoinOperator::Left(c)
                                | JoinOperator::LeftOuter(c)
                                | JoinOperator::Right(c)
                                | JoinOperator::RightOuter(c)
                                | JoinOperator::FullOuter(c) => Some(c),
                                _ => None,
                            };
                            if let Some(JoinConstraint::On(on)) = c {
                                truthy(on);
                            }
                        }
                    }
                }
                SetExpr::SetOperation { left, right, .. } => {
                    walk(left);
                    walk(right);
                }
                SetExpr::Query(q) => walk(&mut q.body),
                _ => {}
            }
        }
        walk(&mut q.body);
        ControlFlow::Continue(())
    }
}

const AGGREGATES: &[&str] = &[
    "count", "sum", "avg", "min", "max", "group_concat", "string_agg", "array_agg", "bit_and", "bit_or", "bit_xor",
    "stddev", "stddev_pop", "stddev_samp", "std", "variance", "var_pop", "var_samp", "json_arrayagg", "json_objectagg",
];

/// `(q) IS [NOT] NULL` as `[NOT] EXISTS (…)` when `q` selects one plain expression from rows
/// (no grouping or aggregate: then "the first row's value is not NULL" is "some row has a non-NULL
/// value" only if the row order does not matter, which is so when the query has no ORDER BY).
fn not_null_as_exists(q: &Query, negated: bool) -> Option<Expr> {
    // Only with a LIMIT: without one, more than one row is MySQL's 1242, not a truth value.
    if q.order_by.is_some() || q.with.is_some() || q.limit_clause.is_none() {
        return None;
    }
    let SetExpr::Select(sel) = q.body.as_ref() else { return None };
    if sel.projection.len() != 1 || sel.having.is_some() || !matches!(&sel.group_by, GroupByExpr::Expressions(g, _) if g.is_empty()) {
        return None;
    }
    let value = match &sel.projection[0] {
        SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. } => x.clone(),
        _ => return None,
    };
    if has_aggregate(&value) || sel.from.is_empty() {
        return None;
    }
    let mut q = q.clone();
    q.limit_clause = None;
    let SetExpr::Select(sel) = q.body.as_mut() else { return None };
    let not_null = Expr::IsNotNull(Box::new(value));
    sel.selection = Some(match sel.selection.take() {
        Some(w) => Expr::BinaryOp { left: Box::new(Expr::Nested(Box::new(w))), op: BinaryOperator::And, right: Box::new(not_null) },
        None => not_null,
    });
    sel.projection = vec![SelectItem::UnnamedExpr(lit_num(1))];
    Some(Expr::Exists { subquery: Box::new(q), negated })
}

fn has_aggregate(e: &Expr) -> bool {
    let mut found = false;
    let _ = visit_expressions(e, |x| {
        if let Expr::Function(f) = x {
            if f.over.is_none() && AGGREGATES.contains(&f.name.to_string().to_ascii_lowercase().as_str()) {
                found = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    found
}

/// MySQL's `HAVING` without `GROUP BY` and without aggregates filters rows by the select list's
/// aliases (`… AS _distance … HAVING _distance <= 0.5`). DataFusion only has the SQL-standard
/// HAVING, so the condition moves into WHERE with each alias replaced by its expression.
fn having_as_where(sel: &mut Select) {
    let Some(having) = sel.having.as_ref() else { return };
    let grouped = match &sel.group_by {
        GroupByExpr::All(_) => true,
        GroupByExpr::Expressions(v, _) => !v.is_empty(),
    };
    let aggregated = sel.projection.iter().any(|i| match i {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => has_aggregate(e),
        _ => false,
    });
    if grouped || aggregated || has_aggregate(having) {
        return;
    }
    let aliases: std::collections::HashMap<String, Expr> = sel
        .projection
        .iter()
        .filter_map(|i| match i {
            SelectItem::ExprWithAlias { expr, alias } => Some((alias.value.to_lowercase(), expr.clone())),
            _ => None,
        })
        .collect();
    let mut cond = sel.having.take().unwrap();
    let _ = visit_expressions_mut(&mut cond, |x| {
        if let Expr::Identifier(id) = x {
            if let Some(e) = aliases.get(&id.value.to_lowercase()) {
                *x = Expr::Nested(Box::new(e.clone()));
            }
        }
        ControlFlow::<()>::Continue(())
    });
    sel.selection = Some(match sel.selection.take() {
        Some(w) => Expr::BinaryOp { left: Box::new(Expr::Nested(Box::new(w))), op: BinaryOperator::And, right: Box::new(Expr::Nested(Box::new(cond))) },
        None => cond,
    });
}
