//! The `VEC_*` SQL functions as DataFusion scalar UDFs.
//!
//! Every vector argument may be a list of float32/float64 (`List`, `LargeList`, `FixedSizeList`), a
//! string in the vector text form (`Utf8`, `LargeUtf8`, `Utf8View`; a constant is parsed once per
//! call, not per row) or NULL. Any NULL argument gives NULL. Errors are
//! `DataFusionError::Execution` carrying exactly TiDB's message.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeListArray, Float32Builder, Float64Builder, Int64Builder,
    LargeStringArray, ListBuilder, StringArray, StringBuilder, StringViewArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Float64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::distance::{
    add_into, cosine_with_norm_unchecked, inner_product_unchecked, l1_unchecked, l2_norm,
    l2_squared_unchecked, squared_norm_f32, sub_into,
};
use crate::text::{float64_to_element, parse_vector_into, write_vector, VectorError};
use crate::vector_data_type;

/// Which `VEC_*` function a [`VectorUdf`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorFunction {
    /// `VEC_DIMS(v)` → BIGINT
    Dims,
    /// `VEC_L1_DISTANCE(a, b)` → DOUBLE
    L1Distance,
    /// `VEC_L2_DISTANCE(a, b)` → DOUBLE
    L2Distance,
    /// `VEC_COSINE_DISTANCE(a, b)` → DOUBLE
    CosineDistance,
    /// `VEC_NEGATIVE_INNER_PRODUCT(a, b)` → DOUBLE
    NegativeInnerProduct,
    /// `VEC_L2_NORM(v)` → DOUBLE
    L2Norm,
    /// `VEC_FROM_TEXT(s)` → VECTOR
    FromText,
    /// `VEC_AS_TEXT(v)` → string
    AsText,
    /// `vec_add(a, b)` → VECTOR (the `+` operator on vectors)
    Add,
    /// `vec_sub(a, b)` → VECTOR (the `-` operator on vectors)
    Sub,
}

impl VectorFunction {
    /// All functions, in registration order.
    pub const ALL: [VectorFunction; 10] = [
        VectorFunction::Dims,
        VectorFunction::L1Distance,
        VectorFunction::L2Distance,
        VectorFunction::CosineDistance,
        VectorFunction::NegativeInnerProduct,
        VectorFunction::L2Norm,
        VectorFunction::FromText,
        VectorFunction::AsText,
        VectorFunction::Add,
        VectorFunction::Sub,
    ];

    /// The lower-case SQL name.
    pub fn name(self) -> &'static str {
        match self {
            VectorFunction::Dims => "vec_dims",
            VectorFunction::L1Distance => "vec_l1_distance",
            VectorFunction::L2Distance => "vec_l2_distance",
            VectorFunction::CosineDistance => "vec_cosine_distance",
            VectorFunction::NegativeInnerProduct => "vec_negative_inner_product",
            VectorFunction::L2Norm => "vec_l2_norm",
            VectorFunction::FromText => "vec_from_text",
            VectorFunction::AsText => "vec_as_text",
            VectorFunction::Add => "vec_add",
            VectorFunction::Sub => "vec_sub",
        }
    }

    /// Number of arguments.
    pub fn arity(self) -> usize {
        match self {
            VectorFunction::Dims
            | VectorFunction::L2Norm
            | VectorFunction::FromText
            | VectorFunction::AsText => 1,
            _ => 2,
        }
    }

    /// The result type.
    pub fn return_type(self) -> DataType {
        match self {
            VectorFunction::Dims => DataType::Int64,
            VectorFunction::FromText | VectorFunction::Add | VectorFunction::Sub => {
                vector_data_type()
            }
            VectorFunction::AsText => DataType::Utf8,
            _ => DataType::Float64,
        }
    }
}

impl VectorFunction {
    /// The distance functions, which have `VEC_CHUNKS_*` twins.
    pub const DISTANCES: [VectorFunction; 4] = [
        VectorFunction::L1Distance,
        VectorFunction::L2Distance,
        VectorFunction::CosineDistance,
        VectorFunction::NegativeInnerProduct,
    ];

    /// The name of the `VEC_CHUNKS_*` twin of a distance function.
    pub fn chunks_name(self) -> Option<&'static str> {
        Some(match self {
            VectorFunction::L1Distance => "vec_chunks_l1_distance",
            VectorFunction::L2Distance => "vec_chunks_l2_distance",
            VectorFunction::CosineDistance => "vec_chunks_cosine_distance",
            VectorFunction::NegativeInnerProduct => "vec_chunks_negative_inner_product",
            _ => return None,
        })
    }
}

/// A `VEC_*` function as a DataFusion [`ScalarUDFImpl`].
///
/// `chunks`: a distance's `VEC_CHUNKS_*` twin, whose first argument holds several vectors of the
/// second's dimension one after another (the chunks of a long text) and whose value is the
/// smallest distance of any of them to the second argument.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct VectorUdf {
    function: VectorFunction,
    chunks: bool,
    signature: Signature,
}

impl VectorUdf {
    pub fn new(function: VectorFunction) -> Self {
        Self {
            function,
            chunks: false,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    /// The `VEC_CHUNKS_*` twin of a distance function.
    pub fn chunks(function: VectorFunction) -> Self {
        assert!(function.chunks_name().is_some(), "{} has no chunks twin", function.name());
        Self {
            chunks: true,
            ..Self::new(function)
        }
    }

    pub fn function(&self) -> VectorFunction {
        self.function
    }

    /// Whether this is a `VEC_CHUNKS_*` distance.
    pub fn is_chunks(&self) -> bool {
        self.chunks
    }

    fn sql_name(&self) -> &'static str {
        match self.chunks {
            true => self.function.chunks_name().unwrap_or(self.function.name()),
            false => self.function.name(),
        }
    }
}

/// Error text for a wrong number of arguments (MySQL error 1582).
pub fn parameter_count_error(name: &str) -> String {
    format!(
        "Incorrect parameter count in the call to native function '{}'",
        name.to_uppercase()
    )
}

fn mysql_type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "double".into(),
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => "decimal".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(..) => "datetime".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "binary".into(),
        other => other.to_string().to_lowercase(),
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_numeric_element(t: &DataType) -> bool {
    t.is_numeric() || *t == DataType::Null
}

/// The type an argument of type `t` is used as (a cast is inserted when it differs).
fn coerce_vector_arg(t: &DataType) -> Result<DataType> {
    match t {
        DataType::Null => Ok(DataType::Null),
        t if is_string(t) => Ok(t.clone()),
        DataType::Dictionary(_, v) if is_string(v) => Ok(v.as_ref().clone()),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
            if matches!(f.data_type(), DataType::Float32 | DataType::Float64) =>
        {
            Ok(t.clone())
        }
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
            if is_numeric_element(f.data_type()) =>
        {
            Ok(vector_data_type())
        }
        other => plan_err!("cannot cast from {} to vector", mysql_type_name(other)),
    }
}

impl ScalarUDFImpl for VectorUdf {
    fn name(&self) -> &str {
        self.sql_name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.function.return_type())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != self.function.arity() {
            return plan_err!("{}", parameter_count_error(self.sql_name()));
        }
        arg_types.iter().map(coerce_vector_arg).collect()
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let f = self.function;
        if args.args.len() != f.arity() {
            return exec_err!("{}", parameter_count_error(self.sql_name()));
        }
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let inputs = args
            .args
            .iter()
            .map(VectorArg::try_new)
            .collect::<Result<Vec<_>>>()?;
        let result: ArrayRef = match f {
            VectorFunction::Dims => eval_dims(&inputs[0], rows)?,
            VectorFunction::L2Norm => eval_l2_norm(&inputs[0], rows)?,
            VectorFunction::AsText => eval_as_text(&inputs[0], rows)?,
            VectorFunction::FromText => eval_from_text(&inputs[0], rows)?,
            VectorFunction::L1Distance
            | VectorFunction::L2Distance
            | VectorFunction::CosineDistance
            | VectorFunction::NegativeInnerProduct => {
                eval_distance(f, &inputs[0], &inputs[1], rows, self.chunks)?
            }
            VectorFunction::Add | VectorFunction::Sub => {
                eval_add_sub(f, &inputs[0], &inputs[1], rows)?
            }
        };
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &result, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(result))
        }
    }
}

/// The `VEC_*` functions (and `vec_add` / `vec_sub`) as [`ScalarUDF`]s.
pub fn all_udfs() -> Vec<ScalarUDF> {
    let plain = VectorFunction::ALL.iter().map(|&f| VectorUdf::new(f));
    let chunks = VectorFunction::DISTANCES.iter().map(|&f| VectorUdf::chunks(f));
    plain.chain(chunks).map(ScalarUDF::from).collect()
}

/// One of the functions as a [`ScalarUDF`].
pub fn udf(function: VectorFunction) -> ScalarUDF {
    ScalarUDF::from(VectorUdf::new(function))
}

// ---------------------------------------------------------------------------------------------
// Reading vector arguments

/// Element storage of a list column.
enum Elements<'a> {
    F32(&'a [f32], Option<&'a NullBuffer>),
    F64(&'a [f64], Option<&'a NullBuffer>),
}

impl<'a> Elements<'a> {
    fn from_array(values: &'a ArrayRef) -> Result<Self> {
        match values.data_type() {
            DataType::Float32 => Ok(Elements::F32(
                &values.as_primitive::<Float32Type>().values()[..],
                values.nulls(),
            )),
            DataType::Float64 => Ok(Elements::F64(
                &values.as_primitive::<Float64Type>().values()[..],
                values.nulls(),
            )),
            other => exec_err!(
                "cannot cast from list of {} to vector",
                mysql_type_name(other)
            ),
        }
    }

    #[inline]
    fn get<'s>(&'s self, start: usize, end: usize, buf: &'s mut Vec<f32>) -> Result<&'s [f32]> {
        let nulls = match self {
            Elements::F32(_, n) | Elements::F64(_, n) => n,
        };
        if let Some(n) = nulls {
            if (start..end).any(|j| n.is_null(j)) {
                return exec_err!("vector cannot contain NULL elements");
            }
        }
        match self {
            Elements::F32(v, _) => Ok(&v[start..end]),
            Elements::F64(v, _) => {
                buf.clear();
                for &x in &v[start..end] {
                    buf.push(float64_to_element(x)?);
                }
                Ok(buf.as_slice())
            }
        }
    }
}

/// A column of vectors in any accepted Arrow representation.
enum Column<'a> {
    AllNull,
    List {
        offsets: &'a [i32],
        elements: Elements<'a>,
        nulls: Option<&'a NullBuffer>,
    },
    LargeList {
        offsets: &'a [i64],
        elements: Elements<'a>,
        nulls: Option<&'a NullBuffer>,
    },
    Fixed {
        array: &'a FixedSizeListArray,
        elements: Elements<'a>,
    },
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
}

impl<'a> Column<'a> {
    fn try_new(array: &'a ArrayRef) -> Result<Self> {
        Ok(match array.data_type() {
            DataType::Null => Column::AllNull,
            DataType::List(_) => {
                let l = array.as_list::<i32>();
                Column::List {
                    offsets: l.value_offsets(),
                    elements: Elements::from_array(l.values())?,
                    nulls: l.nulls(),
                }
            }
            DataType::LargeList(_) => {
                let l = array.as_list::<i64>();
                Column::LargeList {
                    offsets: l.value_offsets(),
                    elements: Elements::from_array(l.values())?,
                    nulls: l.nulls(),
                }
            }
            DataType::FixedSizeList(_, _) => {
                let l = array.as_fixed_size_list();
                Column::Fixed {
                    array: l,
                    elements: Elements::from_array(l.values())?,
                }
            }
            DataType::Utf8 => Column::Utf8(array.as_string::<i32>()),
            DataType::LargeUtf8 => Column::LargeUtf8(array.as_string::<i64>()),
            DataType::Utf8View => Column::Utf8View(array.as_string_view()),
            other => return exec_err!("cannot cast from {} to vector", mysql_type_name(other)),
        })
    }

    /// Row `i` as a vector, or `None` for NULL. `buf` holds converted/parsed elements.
    #[inline]
    fn row<'s>(&'s self, i: usize, buf: &'s mut Vec<f32>) -> Result<Option<&'s [f32]>> {
        fn parse<'b>(s: &str, buf: &'b mut Vec<f32>) -> Result<Option<&'b [f32]>> {
            parse_vector_into(s, buf)?;
            Ok(Some(buf.as_slice()))
        }
        match self {
            Column::AllNull => Ok(None),
            Column::List {
                offsets,
                elements,
                nulls,
            } => {
                if nulls.is_some_and(|n| n.is_null(i)) {
                    return Ok(None);
                }
                let (s, e) = (offsets[i] as usize, offsets[i + 1] as usize);
                elements.get(s, e, buf).map(Some)
            }
            Column::LargeList {
                offsets,
                elements,
                nulls,
            } => {
                if nulls.is_some_and(|n| n.is_null(i)) {
                    return Ok(None);
                }
                let (s, e) = (offsets[i] as usize, offsets[i + 1] as usize);
                elements.get(s, e, buf).map(Some)
            }
            Column::Fixed { array, elements } => {
                if array.is_null(i) {
                    return Ok(None);
                }
                let s = array.value_offset(i) as usize;
                let e = s + array.value_length() as usize;
                elements.get(s, e, buf).map(Some)
            }
            Column::Utf8(a) => {
                if a.is_null(i) {
                    return Ok(None);
                }
                parse(a.value(i), buf)
            }
            Column::LargeUtf8(a) => {
                if a.is_null(i) {
                    return Ok(None);
                }
                parse(a.value(i), buf)
            }
            Column::Utf8View(a) => {
                if a.is_null(i) {
                    return Ok(None);
                }
                parse(a.value(i), buf)
            }
        }
    }
}

/// Every row of a vector column (lists or text), NULL as None.
pub(crate) fn vectors_of(array: &ArrayRef) -> Result<Vec<Option<Vec<f32>>>> {
    let column = Column::try_new(array)?;
    let mut buf = Vec::new();
    (0..array.len()).map(|i| Ok(column.row(i, &mut buf)?.map(|v| v.to_vec()))).collect()
}

/// A function argument: a constant (parsed once) or a column.
enum VectorArg<'a> {
    Scalar(Option<Vec<f32>>),
    Column(Column<'a>),
}

impl<'a> VectorArg<'a> {
    fn try_new(value: &'a ColumnarValue) -> Result<Self> {
        match value {
            ColumnarValue::Array(a) => Ok(VectorArg::Column(Column::try_new(a)?)),
            ColumnarValue::Scalar(s) => {
                if s.is_null() {
                    return Ok(VectorArg::Scalar(None));
                }
                let array = s.to_array()?;
                let column = Column::try_new(&array)?;
                let mut buf = Vec::new();
                let v = column.row(0, &mut buf)?.map(|v| v.to_vec());
                Ok(VectorArg::Scalar(v))
            }
        }
    }

    #[inline]
    fn row<'s>(&'s self, i: usize, buf: &'s mut Vec<f32>) -> Result<Option<&'s [f32]>> {
        match self {
            VectorArg::Scalar(v) => Ok(v.as_deref()),
            VectorArg::Column(c) => c.row(i, buf),
        }
    }

    fn constant(&self) -> Option<&[f32]> {
        match self {
            VectorArg::Scalar(Some(v)) => Some(v.as_slice()),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

fn eval_dims(arg: &VectorArg, rows: usize) -> Result<ArrayRef> {
    let mut out = Int64Builder::with_capacity(rows);
    let mut buf = Vec::new();
    for i in 0..rows {
        out.append_option(arg.row(i, &mut buf)?.map(|v| v.len() as i64));
    }
    Ok(Arc::new(out.finish()))
}

fn eval_l2_norm(arg: &VectorArg, rows: usize) -> Result<ArrayRef> {
    let mut out = Float64Builder::with_capacity(rows);
    let mut buf = Vec::new();
    for i in 0..rows {
        out.append_option(arg.row(i, &mut buf)?.map(l2_norm));
    }
    Ok(Arc::new(out.finish()))
}

fn eval_as_text(arg: &VectorArg, rows: usize) -> Result<ArrayRef> {
    let mut out = StringBuilder::with_capacity(rows, rows * 16);
    let mut buf = Vec::new();
    let mut text = String::new();
    for i in 0..rows {
        match arg.row(i, &mut buf)? {
            Some(v) => {
                text.clear();
                write_vector(v, &mut text);
                out.append_value(&text);
            }
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

fn vector_builder(rows: usize) -> ListBuilder<Float32Builder> {
    ListBuilder::with_capacity(Float32Builder::new(), rows).with_field(Arc::new(Field::new(
        "item",
        DataType::Float32,
        true,
    )))
}

fn eval_from_text(arg: &VectorArg, rows: usize) -> Result<ArrayRef> {
    let mut out = vector_builder(rows);
    let mut buf = Vec::new();
    for i in 0..rows {
        match arg.row(i, &mut buf)? {
            Some(v) => {
                out.values().append_slice(v);
                out.append(true);
            }
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Calls `f` for each row with both vectors, or `None` when either is NULL. Like TiDB, the second
/// argument is not evaluated when the first is NULL.
#[inline]
fn for_each_pair(
    a: &VectorArg,
    b: &VectorArg,
    rows: usize,
    mut f: impl FnMut(Option<(&[f32], &[f32])>) -> Result<()>,
) -> Result<()> {
    let mut buf_a = Vec::new();
    let mut buf_b = Vec::new();
    for i in 0..rows {
        let Some(x) = a.row(i, &mut buf_a)? else {
            f(None)?;
            continue;
        };
        match b.row(i, &mut buf_b)? {
            Some(y) => f(Some((x, y)))?,
            None => f(None)?,
        }
    }
    Ok(())
}

/// `function(vectors[i], query)` for each row of a vector column, exactly as the SQL function
/// computes it (NULL for a NULL row); an error for a row of another dimension. For callers that
/// order rows by a distance themselves and must agree with the function to the last bit.
/// `chunks`: as the `VEC_CHUNKS_*` twin computes it (each row's best chunk).
pub fn distances_to(function: VectorFunction, vectors: &ArrayRef, query: &[f32], chunks: bool) -> Result<ArrayRef> {
    if !matches!(
        function,
        VectorFunction::L1Distance | VectorFunction::L2Distance | VectorFunction::CosineDistance | VectorFunction::NegativeInnerProduct
    ) {
        return exec_err!("{} is not a distance function", function.name());
    }
    let column = ColumnarValue::Array(vectors.clone());
    let a = VectorArg::try_new(&column)?;
    let b = VectorArg::Scalar(Some(query.to_vec()));
    eval_distance(function, &a, &b, vectors.len(), chunks)
}

fn eval_distance(
    function: VectorFunction,
    a: &VectorArg,
    b: &VectorArg,
    rows: usize,
    chunks: bool,
) -> Result<ArrayRef> {
    let mut out = Float64Builder::with_capacity(rows);
    // For cosine against a constant, its squared norm is computed once. The kernel's arguments are
    // symmetric (products and the final norm product commute), so the constant is passed second.
    // (A constant first argument of a chunks distance holds several vectors: no norm of it.)
    let a_norm = a.constant().filter(|_| !chunks).map(squared_norm_f32);
    let b_norm = b.constant().map(squared_norm_f32);
    let one = |x: &[f32], y: &[f32]| match function {
        VectorFunction::L1Distance => l1_unchecked(x, y),
        VectorFunction::L2Distance => l2_squared_unchecked(x, y).sqrt(),
        VectorFunction::NegativeInnerProduct => -inner_product_unchecked(x, y),
        VectorFunction::CosineDistance => match (a_norm, b_norm) {
            (_, Some(nb)) => cosine_with_norm_unchecked(x, y, nb),
            (Some(na), None) => cosine_with_norm_unchecked(y, x, na),
            (None, None) => cosine_with_norm_unchecked(x, y, squared_norm_f32(y)),
        },
        _ => unreachable!("not a distance function"),
    };
    for_each_pair(a, b, rows, |pair| {
        let Some((x, y)) = pair else {
            out.append_null();
            return Ok(());
        };
        let d = if x.len() == y.len() {
            one(x, y)
        } else if chunks && !y.is_empty() && x.len() % y.len() == 0 {
            // The best chunk; a chunk whose distance is undefined (NaN) is passed over.
            x.chunks_exact(y.len()).map(|c| one(c, y)).filter(|d| !d.is_nan()).min_by(f64::total_cmp).unwrap_or(f64::NAN)
        } else {
            return Err(VectorError::DifferentDimensions(x.len(), y.len()).into());
        };
        if d.is_nan() {
            out.append_null();
        } else {
            out.append_value(d);
        }
        Ok(())
    })?;
    Ok(Arc::new(out.finish()))
}

fn eval_add_sub(
    function: VectorFunction,
    a: &VectorArg,
    b: &VectorArg,
    rows: usize,
) -> Result<ArrayRef> {
    let mut out = vector_builder(rows);
    let mut tmp = Vec::new();
    for_each_pair(a, b, rows, |pair| {
        let Some((x, y)) = pair else {
            out.append_null();
            return Ok(());
        };
        if function == VectorFunction::Add {
            add_into(x, y, &mut tmp)?;
        } else {
            sub_into(x, y, &mut tmp)?;
        }
        out.values().append_slice(&tmp);
        out.append(true);
        Ok(())
    })?;
    Ok(Arc::new(out.finish()))
}
