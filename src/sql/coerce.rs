//! MySQL's implicit conversions that DataFusion does not make, as a DataFusion analyzer rule that
//! runs before DataFusion's own type coercion:
//! - a VECTOR compared with a string (`v = '[1,2,3]'`) compares with the string parsed as a vector;
//! - `+` / `-` between vectors (or a vector and its text) are element-wise (`vec_add` / `vec_sub`);
//! - `CAST(vector AS CHAR)` gives the vector's text form `[1,2.5]`;
//! - arithmetic between a string and a number converts the string to a number (`'3' + 1` = 4);
//! - `JSON_EXTRACT(…)` compared with a string compares the unquoted value (`meta->'$.tag' = 'food'`),
//!   and with a number compares the JSON number (`functions::json::json_number`) — the same under
//!   `=`, `<`…, `IN`, `NOT IN` and `BETWEEN`;
//! - a string expression compared with a number is read as MySQL reads strings (`mysql_to_double`:
//!   the leading number, else 0) rather than cast strictly. String literals are left to DataFusion,
//!   which casts the literal once and keeps `int_col = '5'` a plain key comparison.
//!
//! Types are known here (each expression is typed against its node's input schema), which is why
//! this is a plan rule rather than an AST rewrite.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, ScalarUDF};
use datafusion::optimizer::AnalyzerRule;
use embedb_vector::{is_vector_type, udf, VectorFunction};

#[derive(Debug, Default)]
pub struct MysqlCoercion;

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// `JSON_EXTRACT(…)` gives JSON text (`"food"` with its quotes); compared with a string MySQL
/// compares the JSON string's value, so that side is unquoted first.
fn is_json_extract(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f) if f.name() == "json_extract")
}

/// A string literal that DataFusion's strict cast reads as an integer (`'5'`): left to
/// DataFusion, which casts it once and keeps `int_col = '5'` a key comparison. Any other string
/// literal (`'10abc'`, `' 5'`, `'1e2'`) is read as MySQL reads it, as a double.
fn is_clean_number(e: &Expr) -> bool {
    match e {
        Expr::Literal(v, _) => match v {
            datafusion::common::ScalarValue::Utf8(Some(t)) | datafusion::common::ScalarValue::Utf8View(Some(t)) | datafusion::common::ScalarValue::LargeUtf8(Some(t)) => {
                t.parse::<i64>().is_ok()
            }
            _ => true,
        },
        _ => false,
    }
}

fn call(f: ScalarUDF, args: Vec<Expr>) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(f), args))
}

/// Whether `e` is a column of a case-insensitive collation (`sql::collation`).
fn is_ci_column(e: &Expr, schema: &DFSchema) -> bool {
    match e {
        Expr::Column(c) => schema
            .qualified_field_from_column(c)
            .is_ok_and(|(_, f)| f.metadata().contains_key(crate::sql::collation::COLLATION_META)),
        _ => false,
    }
}

fn lower(e: Expr) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(datafusion::functions::string::lower(), vec![e]))
}

/// Whether a comparison between `a` and `b` is case-insensitive: an explicit `COLLATE` on either
/// side decides; else a `_ci` column on either side makes it so.
fn compares_ci(a: &Expr, b: &Expr, schema: &DFSchema) -> bool {
    use crate::sql::collation::explicit_ci;
    match explicit_ci(a).or(explicit_ci(b)) {
        Some(ci) => ci,
        None => is_ci_column(a, schema) || is_ci_column(b, schema),
    }
}

fn rewrite(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    // A `_ci` column: LIKE matches case-insensitively (ILIKE), comparisons compare lower case.
    if let Expr::Like(l) = &e {
        if !l.case_insensitive && compares_ci(&l.expr, &l.pattern, schema) {
            let Expr::Like(mut l) = e else { unreachable!() };
            l.case_insensitive = true;
            return Ok(Transformed::yes(Expr::Like(l)));
        }
    }
    if let Expr::BinaryExpr(b) = &e {
        let cmp = matches!(
            b.op,
            Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
                | Operator::IsDistinctFrom | Operator::IsNotDistinctFrom
        );
        let text = |x: &Expr| x.get_type(schema).is_ok_and(|t| is_string(&t));
        if cmp && compares_ci(&b.left, &b.right, schema) && text(&b.left) && text(&b.right) {
            let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else { unreachable!() };
            return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(Box::new(lower(*left)), op, Box::new(lower(*right))))));
        }
    }
    if let Expr::InList(l) = &e {
        if is_ci_column(&l.expr, schema) && l.list.iter().all(|x| x.get_type(schema).is_ok_and(|t| is_string(&t))) {
            let Expr::InList(mut l) = e else { unreachable!() };
            l.expr = Box::new(lower(*l.expr));
            l.list = l.list.into_iter().map(lower).collect();
            return Ok(Transformed::yes(Expr::InList(l)));
        }
    }
    if let Some(t) = json_in_list_or_between(&e, schema) {
        return Ok(Transformed::yes(t));
    }
    rewrite_mysql(e, schema)
}

/// The side of a comparison with `JSON_EXTRACT(…)` as MySQL compares it against `other`'s type:
/// a string compares with the JSON string's value, a number with the JSON number.
fn json_side(x: Expr, other: &DataType) -> Expr {
    if is_string(other) {
        call(crate::sql::functions::json_unquote_udf(), vec![x])
    } else if other.is_numeric() {
        call(crate::sql::functions::json::json_number_udf(), vec![x])
    } else {
        x
    }
}

/// `JSON_EXTRACT(…) [NOT] IN (…)` and `[NOT] BETWEEN`: the same rules as `=` and `<`, chosen by
/// the type of the list (or bounds) — all strings or all numbers; a mixed list is left alone.
fn json_in_list_or_between(e: &Expr, schema: &DFSchema) -> Option<Expr> {
    let kind = |xs: &[&Expr]| -> Option<DataType> {
        let types: Vec<DataType> = xs.iter().map(|x| x.get_type(schema).ok()).collect::<Option<_>>()?;
        if types.iter().all(is_string) {
            Some(DataType::Utf8)
        } else if types.iter().all(|t| t.is_numeric() || t.is_null()) {
            Some(DataType::Float64)
        } else {
            None
        }
    };
    match e {
        Expr::InList(l) if is_json_extract(&l.expr) => {
            let t = kind(&l.list.iter().collect::<Vec<_>>())?;
            let mut l = l.clone();
            l.expr = Box::new(json_side(*l.expr, &t));
            Some(Expr::InList(l))
        }
        Expr::Between(b) if is_json_extract(&b.expr) => {
            let t = kind(&[&b.low, &b.high])?;
            let mut b = b.clone();
            b.expr = Box::new(json_side(*b.expr, &t));
            Some(Expr::Between(b))
        }
        _ => None,
    }
}

fn rewrite_mysql(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    // CAST(3.7 AS SIGNED) is 4 in MySQL: numbers round to the nearest integer (DataFusion truncates).
    if let Expr::Cast(c) = &e {
        let to_int = matches!(c.field.data_type(), DataType::Int64 | DataType::UInt64 | DataType::Int32);
        if to_int
            && c.expr.get_type(schema).is_ok_and(|t| matches!(t, DataType::Decimal128(_, s) if s > 0) || matches!(t, DataType::Float32 | DataType::Float64))
            && !matches!(c.expr.as_ref(), Expr::ScalarFunction(f) if f.name() == "round")
        {
            let Expr::Cast(mut c) = e else { unreachable!() };
            c.expr = Box::new(Expr::ScalarFunction(ScalarFunction::new_udf(datafusion::functions::math::round(), vec![*c.expr])));
            return Ok(Transformed::yes(Expr::Cast(c)));
        }
    }
    // CAST(vector AS CHAR) prints TiDB's text form, as VEC_AS_TEXT does.
    if let Expr::Cast(c) = &e {
        if is_string(c.field.data_type()) && c.expr.get_type(schema).is_ok_and(|t| is_vector_type(&t)) {
            let Expr::Cast(c) = e else { unreachable!() };
            return Ok(Transformed::yes(call(udf(VectorFunction::AsText), vec![*c.expr])));
        }
    }
    let Expr::BinaryExpr(b) = &e else { return Ok(Transformed::no(e)) };
    let (Ok(lt), Ok(rt)) = (b.left.get_type(schema), b.right.get_type(schema)) else {
        return Ok(Transformed::no(e));
    };
    let (lv, rv) = (is_vector_type(&lt), is_vector_type(&rt));
    let (ls, rs) = (is_string(&lt), is_string(&rt));
    let op = b.op;
    let Expr::BinaryExpr(BinaryExpr { left, right, .. }) = e else { unreachable!() };
    let (left, right) = (*left, *right);
    let out = match op {
        Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
        | Operator::IsDistinctFrom | Operator::IsNotDistinctFrom
            if (lv && rs) || (ls && rv) =>
        {
            let text = |x: Expr, s: bool| if s { call(udf(VectorFunction::FromText), vec![x]) } else { x };
            Expr::BinaryExpr(BinaryExpr::new(Box::new(text(left, ls)), op, Box::new(text(right, rs))))
        }
        Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
            if (is_json_extract(&left) && (rs || rt.is_numeric())) || ((ls || lt.is_numeric()) && is_json_extract(&right)) =>
        {
            let (l, r) = match (is_json_extract(&left), is_json_extract(&right)) {
                // JSON against JSON (Django's `JSON_EXTRACT(doc, '$.k') = JSON_EXTRACT('"v"', '$')`):
                // both sides' values.
                (true, true) => (json_side(left, &DataType::Utf8), json_side(right, &DataType::Utf8)),
                (true, false) => (json_side(left, &rt), right),
                _ => (left, json_side(right, &lt)),
            };
            Expr::BinaryExpr(BinaryExpr::new(Box::new(l), op, Box::new(r)))
        }
        Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
            if (ls && rt.is_numeric() && !is_clean_number(&left)) || (rs && lt.is_numeric() && !is_clean_number(&right)) =>
        {
            let num = |x: Expr, s: bool| if s { call(crate::sql::functions::to_double_udf(), vec![x]) } else { x };
            Expr::BinaryExpr(BinaryExpr::new(Box::new(num(left, ls)), op, Box::new(num(right, rs))))
        }
        Operator::Plus | Operator::Minus if (lv || rv) && (lv || ls) && (rv || rs) => {
            let f = if op == Operator::Plus { VectorFunction::Add } else { VectorFunction::Sub };
            call(udf(f), vec![left, right])
        }
        Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Modulo
            if (ls && (rt.is_numeric() || rs)) || (rs && lt.is_numeric()) =>
        {
            let num = |x: Expr, s: bool| if s { Expr::Cast(Cast::new(Box::new(x), DataType::Float64)) } else { x };
            Expr::BinaryExpr(BinaryExpr::new(Box::new(num(left, ls)), op, Box::new(num(right, rs))))
        }
        _ => return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right))))),
    };
    Ok(Transformed::yes(out))
}

impl AnalyzerRule for MysqlCoercion {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let inputs = node.inputs();
            let mut schema = match inputs.first() {
                Some(i) => i.schema().as_ref().clone(),
                None => DFSchema::empty(),
            };
            for i in inputs.iter().skip(1) {
                schema.merge(i.schema());
            }
            let t = node.map_expressions(|e| e.transform_up(|x| rewrite(x, &schema)))?;
            if t.transformed {
                Ok(Transformed::yes(t.data.recompute_schema()?))
            } else {
                Ok(t)
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "mysql_coercion"
    }
}
