//! A scalar function written one row at a time: `fn(&[ScalarValue]) -> Result<ScalarValue>`.
//!
//! Most MySQL builtins (date formatting, JSON building, hashes) are not on any hot path, and each
//! written as its own Arrow kernel would be ten times the code. [`RowFn`] turns a plain function
//! into a DataFusion UDF: it checks the argument count (MySQL's 1582), picks the return type from
//! the argument types, and runs the function per row, or once when every argument is a constant.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// What a [`RowFn`] computes for one row.
pub type Eval = fn(&[ScalarValue]) -> Result<ScalarValue>;
/// The return type, from the argument types.
pub type Returns = fn(&[DataType]) -> DataType;

#[derive(Debug)]
pub struct RowFn {
    name: &'static str,
    min_args: usize,
    max_args: usize,
    returns: Returns,
    eval: Eval,
    signature: Signature,
}

// Functions are told apart by name: each name is registered once.
impl PartialEq for RowFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for RowFn {}
impl std::hash::Hash for RowFn {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.name.hash(h);
    }
}

/// A UDF named `name` taking `min..=max` arguments.
pub fn udf(name: &'static str, min_args: usize, max_args: usize, returns: Returns, eval: Eval) -> ScalarUDF {
    use datafusion::logical_expr::TypeSignature;
    let signature = if min_args == 0 {
        Signature::one_of(vec![TypeSignature::Nullary, TypeSignature::VariadicAny], Volatility::Immutable)
    } else {
        Signature::variadic_any(Volatility::Immutable)
    };
    ScalarUDF::from(RowFn { name, min_args, max_args, returns, eval, signature })
}

/// A UDF whose arguments may be any number (`usize::MAX` as the maximum).
pub const MANY: usize = usize::MAX;

pub fn text(_: &[DataType]) -> DataType {
    DataType::Utf8
}
pub fn binary(_: &[DataType]) -> DataType {
    DataType::Binary
}
pub fn int(_: &[DataType]) -> DataType {
    DataType::Int64
}
pub fn double(_: &[DataType]) -> DataType {
    DataType::Float64
}
pub fn datetime(_: &[DataType]) -> DataType {
    DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None)
}
pub fn date(_: &[DataType]) -> DataType {
    DataType::Date32
}

impl ScalarUDFImpl for RowFn {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() < self.min_args || args.len() > self.max_args {
            return exec_err!("Incorrect parameter count in the call to native function '{}'", self.name);
        }
        Ok((self.returns)(args))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ret = args.return_field.data_type().clone();
        let n = args.number_rows;
        let fits = |v: ScalarValue| -> Result<ScalarValue> {
            if v.data_type() == ret || v.is_null() {
                if v.is_null() {
                    return ScalarValue::try_from(&ret);
                }
                return Ok(v);
            }
            v.cast_to(&ret)
        };
        if args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            let vals: Vec<ScalarValue> = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => s.clone(),
                    ColumnarValue::Array(_) => unreachable!(),
                })
                .collect();
            return Ok(ColumnarValue::Scalar(fits((self.eval)(&vals)?)?));
        }
        let mut out = Vec::with_capacity(n);
        let mut row = Vec::with_capacity(args.args.len());
        for i in 0..n {
            row.clear();
            for a in &args.args {
                row.push(match a {
                    ColumnarValue::Scalar(s) => s.clone(),
                    ColumnarValue::Array(arr) => ScalarValue::try_from_array(arr, i)?,
                });
            }
            out.push(fits((self.eval)(&row)?)?);
        }
        if out.is_empty() {
            return Ok(ColumnarValue::Array(datafusion::arrow::array::new_empty_array(&ret)));
        }
        Ok(ColumnarValue::Array(Arc::new(ScalarValue::iter_to_array(out)?) as _))
    }
}

// ---- argument helpers ------------------------------------------------------------------------

/// The argument as text (numbers and dates in MySQL's text form); None for NULL.
pub fn arg_text(v: &ScalarValue) -> Option<String> {
    if v.is_null() {
        return None;
    }
    Some(match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => s.clone(),
        ScalarValue::Binary(Some(b)) | ScalarValue::LargeBinary(Some(b)) | ScalarValue::BinaryView(Some(b)) => {
            String::from_utf8_lossy(b).into_owned()
        }
        ScalarValue::Boolean(Some(b)) => (if *b { "1" } else { "0" }).into(),
        other => match super::time::arg_datetime(other) {
            Some(dt) if matches!(other.data_type(), DataType::Timestamp(..)) => super::time::format_datetime(&dt, 6),
            Some(dt) if matches!(other.data_type(), DataType::Date32 | DataType::Date64) => dt.format("%Y-%m-%d").to_string(),
            _ => other.to_string(),
        },
    })
}

/// The argument's bytes: a binary value's own, anything else's text (`arg_text`).
pub fn arg_bytes(v: &ScalarValue) -> Option<Vec<u8>> {
    match v {
        ScalarValue::Binary(b) | ScalarValue::LargeBinary(b) | ScalarValue::BinaryView(b) | ScalarValue::FixedSizeBinary(_, b) => b.clone(),
        other => arg_text(other).map(String::into_bytes),
    }
}

/// The argument as a 64-bit integer (text is read as MySQL reads a number); None for NULL.
pub fn arg_i64(v: &ScalarValue) -> Option<i64> {
    if v.is_null() {
        return None;
    }
    match v.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(Some(i))) => Some(i),
        _ => arg_text(v).map(|s| super::leading_number(&s) as i64),
    }
}

/// The argument as a double; None for NULL.
pub fn arg_f64(v: &ScalarValue) -> Option<f64> {
    if v.is_null() {
        return None;
    }
    match v.cast_to(&DataType::Float64) {
        Ok(ScalarValue::Float64(Some(f))) => Some(f),
        _ => arg_text(v).map(|s| super::leading_number(&s)),
    }
}

pub fn null_text() -> ScalarValue {
    ScalarValue::Utf8(None)
}
