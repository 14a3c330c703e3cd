//! MySQL-compatible scalar functions where DataFusion's built-ins mean something else, registered as
//! DataFusion UDFs (the vector functions live in the `embedb-vector` crate).
//!
//! - `mysql_div(a, b)`: the `/` operator. MySQL divides integers into a DECIMAL with 4 more digits
//!   of scale (`1/2` → `0.5000`), floats into a DOUBLE, and gives NULL on division by zero.
//! - `mysql_truth(x)`: a number (or numeric string) as a condition, true when non-zero — MySQL has
//!   no separate boolean type, DataFusion filters need one.
//! - `mysql_concat(a, …)`: CONCAT, NULL when any argument is NULL.
//! - `json_extract(doc, path, …)`, `json_unquote(s)`: MySQL JSON path access (`$.a.b`, `$[0]`,
//!   `$."quoted key"`), returning MySQL's JSON text.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Decimal128Builder, Float64Array, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use crate::sql::types::json_to_mysql_text;

pub mod interval;
pub mod json;
pub mod json_schema;
pub mod misc;
pub mod rowwise;
pub mod string;
pub mod time;

pub fn all_udfs() -> Vec<ScalarUDF> {
    let mut v = vec![
        ScalarUDF::from(MysqlDiv::new()),
        ScalarUDF::from(JsonExtract::new()),
        ScalarUDF::from(JsonUnquote::new()),
        ScalarUDF::from(MysqlTruth::new()),
        ScalarUDF::from(MysqlToDouble::new()),
        ScalarUDF::from(MysqlConcat::new()),
        ScalarUDF::from(MysqlLength::new()),
        ScalarUDF::from(VecCheckDims::new()),
    ];
    v.extend(embedb_vector::all_udfs());
    v.extend(time::udfs());
    v.extend(interval::udfs());
    v.push(crate::sql::collation::collate_udf());
    v.extend(json::udfs());
    v.extend(string::udfs());
    v.extend(misc::udfs());
    v
}

fn scale_of(t: &DataType) -> Option<i8> {
    match t {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Some(0),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => Some(0),
        DataType::Boolean => Some(0),
        DataType::Decimal128(_, s) => Some(*s),
        DataType::Null => Some(0),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MysqlDiv {
    signature: Signature,
}

impl MysqlDiv {
    fn new() -> Self {
        MysqlDiv { signature: Signature::any(2, Volatility::Immutable) }
    }
}

const DIV_INCREMENT: i8 = 4;

impl ScalarUDFImpl for MysqlDiv {
    fn name(&self) -> &str {
        "mysql_div"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        match (scale_of(&t[0]), scale_of(&t[1])) {
            (Some(sa), Some(_)) => Ok(DataType::Decimal128(38, (sa + DIV_INCREMENT).min(30))),
            _ => Ok(DataType::Float64),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<_>>()?;
        let ret = args.return_field.data_type().clone();
        match ret {
            DataType::Decimal128(p, rs) => {
                let sb = scale_of(arrays[1].data_type()).unwrap_or(0);
                let sa = scale_of(arrays[0].data_type()).unwrap_or(0);
                let a = cast(&arrays[0], &DataType::Decimal128(38, sa))?;
                let b = cast(&arrays[1], &DataType::Decimal128(38, sb))?;
                let a = a.as_any().downcast_ref::<datafusion::arrow::array::Decimal128Array>().unwrap();
                let b = b.as_any().downcast_ref::<datafusion::arrow::array::Decimal128Array>().unwrap();
                let mut out = Decimal128Builder::with_capacity(n);
                // a/10^sa ÷ b/10^sb = r/10^rs  ⇒  r = a·10^(rs−sa+sb) / b
                let shift = (rs - sa + sb) as u32;
                for i in 0..n {
                    if a.is_null(i) || b.is_null(i) || b.value(i) == 0 {
                        out.append_null();
                        continue;
                    }
                    let num = a.value(i).checked_mul(10i128.pow(shift));
                    let Some(num) = num else { return exec_err!("value out of range in '/'") };
                    let d = b.value(i);
                    let q = num / d;
                    let r = num % d;
                    let q = if (r.abs() * 2) >= d.abs() { q + num.signum() * d.signum() } else { q };
                    out.append_value(q);
                }
                Ok(ColumnarValue::Array(Arc::new(out.finish().with_precision_and_scale(p, rs)?)))
            }
            _ => {
                let a = cast(&arrays[0], &DataType::Float64)?;
                let b = cast(&arrays[1], &DataType::Float64)?;
                let a = a.as_any().downcast_ref::<Float64Array>().unwrap();
                let b = b.as_any().downcast_ref::<Float64Array>().unwrap();
                let out: Float64Array = (0..n)
                    .map(|i| {
                        if a.is_null(i) || b.is_null(i) || b.value(i) == 0.0 {
                            None
                        } else {
                            Some(a.value(i) / b.value(i))
                        }
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonExtract {
    signature: Signature,
}

impl JsonExtract {
    fn new() -> Self {
        JsonExtract { signature: Signature::variadic_any(Volatility::Immutable) }
    }
}

/// One step of a MySQL JSON path.
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

pub(crate) fn parse_path(p: &str) -> Option<Vec<Step>> {
    let p = p.trim();
    let mut rest = p.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            if let Some(r2) = r.strip_prefix('"') {
                let end = r2.find('"')?;
                steps.push(Step::Key(r2[..end].to_string()));
                rest = &r2[end + 1..];
            } else {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                steps.push(Step::Key(r[..end].to_string()));
                rest = &r[end..];
            }
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            steps.push(Step::Index(r[..end].trim().parse().ok()?));
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

pub(crate) fn walk<'a>(v: &'a serde_json::Value, steps: &[Step]) -> Option<&'a serde_json::Value> {
    let mut cur = v;
    for s in steps {
        cur = match (s, cur) {
            (Step::Key(k), serde_json::Value::Object(o)) => o.get(k)?,
            (Step::Index(i), serde_json::Value::Array(a)) => a.get(*i)?,
            (Step::Index(0), other) => other,
            _ => return None,
        };
    }
    Some(cur)
}

impl ScalarUDFImpl for JsonExtract {
    fn name(&self) -> &str {
        "json_extract"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _t: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() < 2 {
            return exec_err!("Incorrect parameter count in the call to native function 'json_extract'");
        }
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n).and_then(|x| Ok(cast(&x, &DataType::Utf8)?)))
            .collect::<Result<_>>()?;
        let doc = arrays[0].as_any().downcast_ref::<StringArray>().unwrap();
        let paths: Vec<&StringArray> = arrays[1..].iter().map(|a| a.as_any().downcast_ref::<StringArray>().unwrap()).collect();
        let mut out = StringBuilder::new();
        for i in 0..n {
            if doc.is_null(i) || paths.iter().any(|p| p.is_null(i)) {
                out.append_null();
                continue;
            }
            let v: serde_json::Value = match serde_json::from_str(doc.value(i)) {
                Ok(v) => v,
                Err(e) => return exec_err!("Invalid JSON text in argument 1 to function json_extract: {e}"),
            };
            let mut found = Vec::new();
            for p in &paths {
                let Some(steps) = parse_path(p.value(i)) else {
                    return exec_err!("Invalid JSON path expression. The error is around character position 1.");
                };
                if let Some(x) = walk(&v, &steps) {
                    found.push(x.clone());
                }
            }
            match found.len() {
                0 => out.append_null(),
                1 if paths.len() == 1 => out.append_value(json_to_mysql_text(&found[0])),
                _ => out.append_value(json_to_mysql_text(&serde_json::Value::Array(found))),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonUnquote {
    signature: Signature,
}

impl JsonUnquote {
    fn new() -> Self {
        JsonUnquote { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for JsonUnquote {
    fn name(&self) -> &str {
        "json_unquote"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _t: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let a = cast(&args.args[0].to_array(n)?, &DataType::Utf8)?;
        let a = a.as_any().downcast_ref::<StringArray>().unwrap();
        let out: StringArray = (0..n)
            .map(|i| {
                if a.is_null(i) {
                    return None;
                }
                let s = a.value(i);
                if s.starts_with('"') {
                    if let Ok(serde_json::Value::String(u)) = serde_json::from_str::<serde_json::Value>(s) {
                        return Some(u);
                    }
                }
                Some(s.to_string())
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MysqlTruth {
    signature: Signature,
}

impl MysqlTruth {
    fn new() -> Self {
        MysqlTruth { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for MysqlTruth {
    fn name(&self) -> &str {
        "mysql_truth"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _t: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let a = args.args[0].to_array(n)?;
        if a.data_type() == &DataType::Boolean {
            return Ok(ColumnarValue::Array(a));
        }
        let out: datafusion::arrow::array::BooleanArray = if matches!(a.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
            let s = cast(&a, &DataType::Utf8)?;
            let s = s.as_any().downcast_ref::<StringArray>().unwrap();
            (0..n)
                .map(|i| {
                    if s.is_null(i) {
                        return None;
                    }
                    Some(leading_number(s.value(i)) != 0.0)
                })
                .collect()
        } else if matches!(a.data_type(), DataType::Null) {
            (0..n).map(|_| None).collect()
        } else {
            let f = cast(&a, &DataType::Float64)?;
            let f = f.as_any().downcast_ref::<Float64Array>().unwrap();
            (0..n).map(|i| if f.is_null(i) { None } else { Some(f.value(i) != 0.0) }).collect()
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// MySQL's string-to-number reading: the longest numeric prefix after leading spaces (`'12abc'` →
/// 12, `' -1.5e2x'` → -150); no number at all is 0.
pub fn leading_number(s: &str) -> f64 {
    let t = s.trim_start();
    let b = t.as_bytes();
    let mut end = 0;
    if end < b.len() && (b[end] == b'+' || b[end] == b'-') {
        end += 1;
    }
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let int_end = digits(end);
    let mut num_end = int_end;
    if num_end < b.len() && b[num_end] == b'.' {
        num_end = digits(num_end + 1);
    }
    let has_digits = int_end > end || num_end > int_end + 1;
    if !has_digits {
        return 0.0;
    }
    if num_end < b.len() && (b[num_end] == b'e' || b[num_end] == b'E') {
        let mut e = num_end + 1;
        if e < b.len() && (b[e] == b'+' || b[e] == b'-') {
            e += 1;
        }
        let e_end = digits(e);
        if e_end > e {
            num_end = e_end;
        }
    }
    t[..num_end].parse::<f64>().unwrap_or(0.0)
}

/// `mysql_to_double(string)`: a string compared with a number is read as MySQL reads it
/// ([`leading_number`]) instead of failing the whole statement on the first non-number (a JSON
/// `null` from `json_extract`, say).
#[derive(Debug, PartialEq, Eq, Hash)]
struct MysqlToDouble {
    signature: Signature,
}

impl MysqlToDouble {
    fn new() -> Self {
        MysqlToDouble { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for MysqlToDouble {
    fn name(&self) -> &str {
        "mysql_to_double"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _t: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let a = cast(&args.args[0].to_array(n)?, &DataType::Utf8)?;
        let s = a.as_any().downcast_ref::<StringArray>().unwrap();
        let out: Float64Array = (0..n).map(|i| (!s.is_null(i)).then(|| leading_number(s.value(i)))).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `LENGTH(x)` / `OCTET_LENGTH(x)`: bytes, of binary values too (DataFusion's `octet_length`
/// takes only strings). Strings and binaries are measured by Arrow's kernel; any other type as
/// its MySQL text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct MysqlLength {
    signature: Signature,
}

impl MysqlLength {
    fn new() -> Self {
        MysqlLength { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for MysqlLength {
    fn name(&self) -> &str {
        "mysql_length"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _t: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let a = args.args[0].to_array(n)?;
        let measured = match a.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
                cast(&datafusion::arrow::compute::kernels::length::length(&a)?, &DataType::Int64)?
            }
            _ => {
                let mut out = datafusion::arrow::array::Int64Builder::with_capacity(n);
                for i in 0..n {
                    let v = datafusion::common::ScalarValue::try_from_array(&a, i)?;
                    out.append_option(rowwise::arg_bytes(&v).map(|b| b.len() as i64));
                }
                Arc::new(out.finish()) as ArrayRef
            }
        };
        Ok(ColumnarValue::Array(measured))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MysqlConcat {
    signature: Signature,
}

impl MysqlConcat {
    fn new() -> Self {
        MysqlConcat { signature: Signature::variadic_any(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for MysqlConcat {
    fn name(&self) -> &str {
        "mysql_concat"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _t: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let mut cols = Vec::with_capacity(args.args.len());
        for a in &args.args {
            let arr = a.to_array(n)?;
            cols.push(to_text(&arr)?);
        }
        let mut out = StringBuilder::new();
        'rows: for i in 0..n {
            let mut s = String::new();
            for c in &cols {
                if c.is_null(i) {
                    out.append_null();
                    continue 'rows;
                }
                s.push_str(c.value(i));
            }
            out.append_value(s);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// Values as MySQL prints them (vectors as `[1,2]`, booleans as 1/0).
fn to_text(a: &ArrayRef) -> Result<StringArray> {
    if embedb_vector::is_vector_type(a.data_type()) {
        let l = cast(a, &embedb_vector::vector_data_type())?;
        let l = l.as_any().downcast_ref::<datafusion::arrow::array::ListArray>().unwrap();
        return Ok((0..l.len())
            .map(|i| {
                if l.is_null(i) {
                    None
                } else {
                    crate::sql::types::float_values(&l.value(i)).ok().map(|v| embedb_vector::format_vector(&v))
                }
            })
            .collect());
    }
    let a = if a.data_type() == &DataType::Boolean { cast(a, &DataType::Int64)? } else { a.clone() };
    let s = cast(&a, &DataType::Utf8)?;
    Ok(s.as_any().downcast_ref::<StringArray>().unwrap().clone())
}

/// `vec_check_dims(v, d)`: `v` unchanged when it has `d` dimensions (CAST(x AS VECTOR(d))).
#[derive(Debug, PartialEq, Eq, Hash)]
struct VecCheckDims {
    signature: Signature,
}

impl VecCheckDims {
    fn new() -> Self {
        VecCheckDims { signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for VecCheckDims {
    fn name(&self) -> &str {
        "vec_check_dims"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _t: &[DataType]) -> Result<DataType> {
        Ok(embedb_vector::vector_data_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let v = cast(&args.args[0].to_array(n)?, &embedb_vector::vector_data_type())?;
        let d = cast(&args.args[1].to_array(n)?, &DataType::Int64)?;
        let d = d.as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap();
        let l = v.as_any().downcast_ref::<datafusion::arrow::array::ListArray>().unwrap();
        for i in 0..n {
            if !l.is_null(i) && !d.is_null(i) && l.value_length(i) as i64 != d.value(i) {
                return exec_err!("vector has {} dimensions, does not fit VECTOR({})", l.value_length(i), d.value(i));
            }
        }
        Ok(ColumnarValue::Array(v))
    }
}

/// The `mysql_to_double` UDF, for rules that insert it into plans.
pub fn to_double_udf() -> ScalarUDF {
    ScalarUDF::from(MysqlToDouble::new())
}

#[cfg(test)]
mod tests {
    #[test]
    fn leading_numbers_read_as_mysql_does() {
        use super::leading_number as n;
        assert_eq!(n("12abc"), 12.0);
        assert_eq!(n("  -1.5e2x"), -150.0);
        assert_eq!(n("3e"), 3.0);
        assert_eq!(n(".5"), 0.5);
        assert_eq!(n("1-2"), 1.0);
        assert_eq!(n("null"), 0.0);
        assert_eq!(n("-"), 0.0);
        assert_eq!(n(""), 0.0);
    }
}

/// The `json_unquote` UDF, for rules that insert it into plans.
pub fn json_unquote_udf() -> ScalarUDF {
    ScalarUDF::from(JsonUnquote::new())
}
