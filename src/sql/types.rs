//! Column types: the MySQL/TiDB type a user declared (`SqlType`), how it is held in Arrow while
//! DataFusion works on it, how a value of any type is coerced into it on write (with MySQL's range,
//! length and format errors), and how it is described on the wire.
//!
//! A value's walk: `INSERT … VALUES ('[1,2]')` → DataFusion evaluates the literal to a `ScalarValue`
//! → `coerce` turns it into the column's `Datum` (here: `Datum::Vector`) and checks `VECTOR(2)` →
//! the row codec stores it → a scan decodes `Datum`s and `datums_to_array` builds the Arrow column
//! (`List<Float32>`) → the server prints it as `[1,2]`.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::*;
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::ScalarValue;
use embedb_storage::codec::Datum;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SqlError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntKind {
    Tiny,
    Small,
    Medium,
    Int,
    Big,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LobKind {
    Tiny,
    Normal,
    Medium,
    Long,
}

/// A declared column type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SqlType {
    Int { kind: IntKind, unsigned: bool, width: Option<u32> },
    Float,
    Double,
    Decimal { precision: u8, scale: u8 },
    Char(u32),
    VarChar(u32),
    Text(LobKind),
    Binary(u32),
    VarBinary(u32),
    Blob(LobKind),
    Date,
    DateTime(u8),
    Timestamp(u8),
    Time(u8),
    Year,
    Json,
    Vector(Option<u32>),
    /// `ENUM('a', 'b')`: one of the listed strings, stored as the member's text.
    Enum(Vec<String>),
}

/// Field metadata key carrying the declared type through DataFusion, so result columns that come
/// straight from a table are described on the wire with their declared type.
pub const TYPE_META: &str = "embedb.type";
/// Where a result column comes from (for the column definition's schema/table/org_name fields).
pub const DB_META: &str = "embedb.db";
pub const TABLE_META: &str = "embedb.table";
pub const COLUMN_META: &str = "embedb.column";
pub const ALIAS_META: &str = "embedb.alias";

impl SqlType {
    pub fn bool() -> SqlType {
        SqlType::Int { kind: IntKind::Tiny, unsigned: false, width: Some(1) }
    }

    /// How a value of this type lives in Arrow.
    pub fn arrow_type(&self) -> DataType {
        match self {
            SqlType::Int { kind: IntKind::Big, unsigned: true, .. } => DataType::UInt64,
            SqlType::Int { .. } | SqlType::Year => DataType::Int64,
            SqlType::Float => DataType::Float32,
            SqlType::Double => DataType::Float64,
            SqlType::Decimal { precision, scale } => DataType::Decimal128((*precision).max(1), *scale as i8),
            SqlType::Char(_) | SqlType::VarChar(_) | SqlType::Text(_) | SqlType::Json | SqlType::Time(_) | SqlType::Enum(_) => {
                DataType::Utf8
            }
            SqlType::Binary(_) | SqlType::VarBinary(_) | SqlType::Blob(_) => DataType::Binary,
            SqlType::Date => DataType::Date32,
            SqlType::DateTime(_) | SqlType::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
            SqlType::Vector(_) => embedb_vector::vector_data_type(),
        }
    }

    pub fn is_vector(&self) -> bool {
        matches!(self, SqlType::Vector(_))
    }

    pub fn is_integer(&self) -> bool {
        matches!(self, SqlType::Int { .. })
    }

    pub fn is_text(&self) -> bool {
        matches!(self, SqlType::Char(_) | SqlType::VarChar(_) | SqlType::Text(_))
    }

    /// The type as `SHOW CREATE TABLE` / `information_schema.COLUMNS.COLUMN_TYPE` print it (TiDB style).
    pub fn to_sql(&self) -> String {
        fn int_name(k: IntKind) -> &'static str {
            match k {
                IntKind::Tiny => "tinyint",
                IntKind::Small => "smallint",
                IntKind::Medium => "mediumint",
                IntKind::Int => "int",
                IntKind::Big => "bigint",
            }
        }
        fn default_width(k: IntKind, unsigned: bool) -> u32 {
            match (k, unsigned) {
                (IntKind::Tiny, false) => 4,
                (IntKind::Tiny, true) => 3,
                (IntKind::Small, false) => 6,
                (IntKind::Small, true) => 5,
                (IntKind::Medium, false) => 9,
                (IntKind::Medium, true) => 8,
                (IntKind::Int, false) => 11,
                (IntKind::Int, true) => 10,
                (IntKind::Big, _) => 20,
            }
        }
        fn lob(k: LobKind, base: &str) -> String {
            let p = match k {
                LobKind::Tiny => "tiny",
                LobKind::Normal => "",
                LobKind::Medium => "medium",
                LobKind::Long => "long",
            };
            format!("{p}{base}")
        }
        match self {
            SqlType::Int { kind, unsigned, width } => {
                let w = width.unwrap_or_else(|| default_width(*kind, *unsigned));
                format!("{}({w}){}", int_name(*kind), if *unsigned { " unsigned" } else { "" })
            }
            SqlType::Float => "float".into(),
            SqlType::Double => "double".into(),
            SqlType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            SqlType::Char(n) => format!("char({n})"),
            SqlType::VarChar(n) => format!("varchar({n})"),
            SqlType::Text(k) => lob(*k, "text"),
            SqlType::Binary(n) => format!("binary({n})"),
            SqlType::VarBinary(n) => format!("varbinary({n})"),
            SqlType::Blob(k) => lob(*k, "blob"),
            SqlType::Date => "date".into(),
            SqlType::DateTime(0) => "datetime".into(),
            SqlType::DateTime(f) => format!("datetime({f})"),
            SqlType::Timestamp(0) => "timestamp".into(),
            SqlType::Timestamp(f) => format!("timestamp({f})"),
            SqlType::Time(0) => "time".into(),
            SqlType::Time(f) => format!("time({f})"),
            SqlType::Year => "year(4)".into(),
            SqlType::Json => "json".into(),
            SqlType::Enum(members) => format!(
                "enum({})",
                members.iter().map(|m| format!("'{}'", m.replace('\'', "''"))).collect::<Vec<_>>().join(",")
            ),
            SqlType::Vector(None) => "vector".into(),
            SqlType::Vector(Some(d)) => format!("vector({d})"),
        }
    }

    /// `information_schema.COLUMNS.DATA_TYPE`: the bare type name.
    pub fn data_type_name(&self) -> String {
        let s = self.to_sql();
        s.split(['(', ' ']).next().unwrap_or("").to_string()
    }

    /// Parse the text written by `to_sql` (and any plain MySQL type name) back. Used for metadata that
    /// travels as text (Arrow field metadata).
    /// Results are cached (types are few): every result column of every statement asks.
    pub fn parse(s: &str) -> Option<SqlType> {
        static PARSED: crate::sql::memo::Memo<String, Option<SqlType>> = crate::sql::memo::Memo::new(4096);
        PARSED.get_or_try(s, || Ok::<_, std::convert::Infallible>(Self::parse_uncached(s))).unwrap_or_else(|e| match e {})
    }

    fn parse_uncached(s: &str) -> Option<SqlType> {
        let dialect = crate::sql::dialect::TidbDialect::default();
        let sql = format!("CREATE TABLE t (c {s})");
        let stmts = datafusion::sql::sqlparser::parser::Parser::parse_sql(&dialect, &sql).ok()?;
        if let Some(datafusion::sql::sqlparser::ast::Statement::CreateTable(ct)) = stmts.first() {
            return ct.columns.first().and_then(|c| SqlType::from_ast(&c.data_type).ok());
        }
        None
    }

    /// The declared type of a column definition.
    pub fn from_ast(dt: &datafusion::sql::sqlparser::ast::DataType) -> Result<SqlType> {
        use datafusion::sql::sqlparser::ast::{DataType as D, ExactNumberInfo};
        let w = |o: &Option<u64>| o.map(|x| x as u32);
        let int = |kind, unsigned, width| SqlType::Int { kind, unsigned, width };
        Ok(match dt {
            D::TinyInt(x) => int(IntKind::Tiny, false, w(x)),
            D::TinyIntUnsigned(x) => int(IntKind::Tiny, true, w(x)),
            D::SmallInt(x) => int(IntKind::Small, false, w(x)),
            D::SmallIntUnsigned(x) => int(IntKind::Small, true, w(x)),
            D::MediumInt(x) => int(IntKind::Medium, false, w(x)),
            D::MediumIntUnsigned(x) => int(IntKind::Medium, true, w(x)),
            D::Int(x) | D::Integer(x) => int(IntKind::Int, false, w(x)),
            D::IntUnsigned(x) | D::IntegerUnsigned(x) => int(IntKind::Int, true, w(x)),
            D::BigInt(x) => int(IntKind::Big, false, w(x)),
            D::BigIntUnsigned(x) => int(IntKind::Big, true, w(x)),
            D::Bool | D::Boolean => SqlType::bool(),
            // FLOAT(p): single precision up to 24 bits, DOUBLE from 25 to 53 (MySQL and TiDB);
            // REAL is DOUBLE unless sql_mode has REAL_AS_FLOAT, which we do not offer.
            D::Float(ExactNumberInfo::Precision(p)) if *p > 53 => {
                return Err(SqlError::new(1063, "42000", "Incorrect column specifier for column (FLOAT precision above 53)"));
            }
            D::Float(ExactNumberInfo::Precision(p)) if *p > 24 => SqlType::Double,
            D::Float(_) | D::Float4 => SqlType::Float,
            D::Double(_) | D::DoublePrecision | D::Float8 | D::Float64 | D::Real => SqlType::Double,
            D::Decimal(info) | D::Numeric(info) | D::Dec(info) => match info {
                ExactNumberInfo::None => SqlType::Decimal { precision: 10, scale: 0 },
                ExactNumberInfo::Precision(p) => SqlType::Decimal { precision: (*p).min(65) as u8, scale: 0 },
                ExactNumberInfo::PrecisionAndScale(p, s) => {
                    if *s as u64 > *p {
                        return Err(SqlError::new(
                            1427,
                            "42000",
                            "For float(M,D), double(M,D) or decimal(M,D), M must be >= D",
                        ));
                    }
                    SqlType::Decimal { precision: (*p).min(65) as u8, scale: (*s).max(0) as u8 }
                }
            },
            D::Char(len) | D::Character(len) => SqlType::Char(char_len(len).unwrap_or(1)),
            D::Varchar(len) | D::CharVarying(len) | D::CharacterVarying(len) | D::Nvarchar(len) => {
                SqlType::VarChar(char_len(len).unwrap_or(255))
            }
            D::String(_) | D::Text => SqlType::Text(LobKind::Normal),
            D::TinyText => SqlType::Text(LobKind::Tiny),
            D::MediumText => SqlType::Text(LobKind::Medium),
            D::LongText => SqlType::Text(LobKind::Long),
            D::Binary(n) => SqlType::Binary(n.unwrap_or(1) as u32),
            D::Varbinary(n) => SqlType::VarBinary(match n {
                Some(datafusion::sql::sqlparser::ast::BinaryLength::IntegerLength { length }) => *length as u32,
                _ => 255,
            }),
            D::Blob(_) | D::Bytea => SqlType::Blob(LobKind::Normal),
            D::TinyBlob => SqlType::Blob(LobKind::Tiny),
            D::MediumBlob => SqlType::Blob(LobKind::Medium),
            D::LongBlob => SqlType::Blob(LobKind::Long),
            D::Date => SqlType::Date,
            D::Datetime(p) => SqlType::DateTime(p.unwrap_or(0) as u8),
            D::Timestamp(p, _) => SqlType::Timestamp(p.unwrap_or(0) as u8),
            D::Time(p, _) => SqlType::Time(p.unwrap_or(0) as u8),
            D::JSON => SqlType::Json,
            D::Enum(members, _) => SqlType::Enum(
                members
                    .iter()
                    .map(|m| match m {
                        datafusion::sql::sqlparser::ast::EnumMember::Name(n) => n.clone(),
                        datafusion::sql::sqlparser::ast::EnumMember::NamedValue(n, _) => n.clone(),
                    })
                    .collect(),
            ),
            D::Custom(name, args) => {
                let n = name.to_string().to_ascii_lowercase();
                match n.as_str() {
                    "vector" => {
                        let dim = match args.first() {
                            None => None,
                            Some(a) => Some(a.trim().parse::<u32>().map_err(|_| {
                                SqlError::syntax(format!("near '{a}'"))
                            })?),
                        };
                        if let Some(d) = dim {
                            if d > 16383 {
                                return Err(SqlError::other("vector cannot have more than 16383 dimensions"));
                            }
                        }
                        SqlType::Vector(dim)
                    }
                    "year" => SqlType::Year,
                    "mediumint" => int(IntKind::Medium, false, None),
                    _ => return Err(SqlError::new(1064, "42000", format!("Unknown data type '{name}'"))),
                }
            }
            D::Unspecified => SqlType::Text(LobKind::Normal),
            other => {
                let s = other.to_string().to_ascii_lowercase();
                if s == "year" {
                    SqlType::Year
                } else if s == "vector" {
                    SqlType::Vector(None)
                } else {
                    return Err(SqlError::unsupported(format!("column type {other}")));
                }
            }
        })
    }

    /// The Arrow field for a column of this type, carrying the declared type as metadata.
    pub fn field(&self, name: &str, nullable: bool) -> Field {
        let mut md = std::collections::HashMap::new();
        md.insert(TYPE_META.to_string(), self.to_sql());
        Field::new(name, self.arrow_type(), nullable).with_metadata(md)
    }
}

fn char_len(len: &Option<datafusion::sql::sqlparser::ast::CharacterLength>) -> Option<u32> {
    use datafusion::sql::sqlparser::ast::CharacterLength;
    match len {
        Some(CharacterLength::IntegerLength { length, .. }) => Some(*length as u32),
        Some(CharacterLength::Max) => Some(65535),
        None => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Coercion of any value into a column's type (the write path).
// ---------------------------------------------------------------------------------------------

/// Where a coerced value goes, for error messages.
pub struct Target<'a> {
    pub column: &'a str,
    pub row: usize,
}

fn int_range(kind: IntKind, unsigned: bool) -> (i128, i128) {
    match (kind, unsigned) {
        (IntKind::Tiny, false) => (-128, 127),
        (IntKind::Tiny, true) => (0, 255),
        (IntKind::Small, false) => (-32768, 32767),
        (IntKind::Small, true) => (0, 65535),
        (IntKind::Medium, false) => (-8388608, 8388607),
        (IntKind::Medium, true) => (0, 16777215),
        (IntKind::Int, false) => (i32::MIN as i128, i32::MAX as i128),
        (IntKind::Int, true) => (0, u32::MAX as i128),
        (IntKind::Big, false) => (i64::MIN as i128, i64::MAX as i128),
        (IntKind::Big, true) => (0, u64::MAX as i128),
    }
}

/// A value, loosely typed, as it arrives from an expression.
enum Loose {
    Null,
    Int(i128),
    Float(f64),
    Decimal(i128, i8),
    Str(String),
    Bytes(Vec<u8>),
    Vector(Vec<f32>),
    Date(i32),
    Micros(i64),
}

fn loosen(v: &ScalarValue) -> Result<Loose> {
    use ScalarValue as S;
    if v.is_null() {
        return Ok(Loose::Null);
    }
    Ok(match v {
        S::Boolean(Some(b)) => Loose::Int(*b as i128),
        S::Int8(Some(x)) => Loose::Int(*x as i128),
        S::Int16(Some(x)) => Loose::Int(*x as i128),
        S::Int32(Some(x)) => Loose::Int(*x as i128),
        S::Int64(Some(x)) => Loose::Int(*x as i128),
        S::UInt8(Some(x)) => Loose::Int(*x as i128),
        S::UInt16(Some(x)) => Loose::Int(*x as i128),
        S::UInt32(Some(x)) => Loose::Int(*x as i128),
        S::UInt64(Some(x)) => Loose::Int(*x as i128),
        S::Float16(Some(x)) => Loose::Float(f64::from(*x)),
        S::Float32(Some(x)) => Loose::Float(*x as f64),
        S::Float64(Some(x)) => Loose::Float(*x),
        S::Decimal128(Some(x), _, s) => Loose::Decimal(*x, *s),
        S::Utf8(Some(s)) | S::LargeUtf8(Some(s)) | S::Utf8View(Some(s)) => Loose::Str(s.clone()),
        S::Binary(Some(b)) | S::LargeBinary(Some(b)) | S::BinaryView(Some(b)) => Loose::Bytes(b.clone()),
        S::FixedSizeBinary(_, Some(b)) => Loose::Bytes(b.clone()),
        S::Date32(Some(d)) => Loose::Date(*d),
        S::TimestampMicrosecond(Some(t), _) => Loose::Micros(*t),
        S::TimestampNanosecond(Some(t), _) => Loose::Micros(*t / 1000),
        S::TimestampMillisecond(Some(t), _) => Loose::Micros(*t * 1000),
        S::TimestampSecond(Some(t), _) => Loose::Micros(*t * 1_000_000),
        S::List(arr) => {
            let values = arr.value(0);
            Loose::Vector(float_values(&values)?)
        }
        S::FixedSizeList(arr) => Loose::Vector(float_values(&arr.value(0))?),
        S::LargeList(arr) => Loose::Vector(float_values(&arr.value(0))?),
        other => Loose::Str(other.to_string()),
    })
}

pub fn float_values(values: &ArrayRef) -> Result<Vec<f32>> {
    if let Some(a) = values.as_any().downcast_ref::<Float32Array>() {
        return Ok(a.values().to_vec());
    }
    if let Some(a) = values.as_any().downcast_ref::<Float64Array>() {
        return Ok(a.values().iter().map(|x| *x as f32).collect());
    }
    let c = datafusion::arrow::compute::cast(values, &DataType::Float32).map_err(|e| SqlError::other(e.to_string()))?;
    let a = c.as_any().downcast_ref::<Float32Array>().unwrap();
    Ok(a.values().to_vec())
}

fn decimal_to_f64(v: i128, s: i8) -> f64 {
    v as f64 / 10f64.powi(s as i32)
}

fn decimal_to_string(v: i128, scale: i8) -> String {
    if scale <= 0 {
        return (v * 10i128.pow((-scale) as u32)).to_string();
    }
    let neg = v < 0;
    let digits = v.unsigned_abs().to_string();
    let s = scale as usize;
    let (int, frac) = if digits.len() > s {
        (digits[..digits.len() - s].to_string(), digits[digits.len() - s..].to_string())
    } else {
        ("0".to_string(), format!("{}{}", "0".repeat(s - digits.len()), digits))
    };
    format!("{}{}.{}", if neg { "-" } else { "" }, int, frac)
}

pub fn format_decimal(v: i128, scale: i8) -> String {
    decimal_to_string(v, scale)
}

/// MySQL's string → number conversion for INSERT: leading/trailing spaces allowed, the whole string
/// must be a number.
fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn parse_decimal_str(s: &str, scale: u8) -> Option<i128> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if t.contains(['e', 'E']) {
        let f = t.parse::<f64>().ok()?;
        let v = (f * 10f64.powi(scale as i32)).round() as i128;
        return Some(if neg { -v } else { v });
    }
    let (ip, fp) = t.split_once('.').unwrap_or((t, ""));
    if ip.is_empty() && fp.is_empty() {
        return None;
    }
    if !ip.chars().all(|c| c.is_ascii_digit()) || !fp.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut v: i128 = if ip.is_empty() { 0 } else { ip.parse().ok()? };
    let fpb = fp.as_bytes();
    for i in 0..scale as usize {
        v = v.checked_mul(10)?;
        if i < fpb.len() {
            v += (fpb[i] - b'0') as i128;
        }
    }
    // round half up on the first dropped digit
    if fpb.len() > scale as usize && fpb[scale as usize] >= b'5' {
        v += 1;
    }
    Some(if neg { -v } else { v })
}

fn rescale(v: i128, from: i8, to: u8) -> i128 {
    let to = to as i8;
    if from == to {
        v
    } else if from < to {
        v.saturating_mul(10i128.pow((to - from) as u32))
    } else {
        let d = 10i128.pow((from - to) as u32);
        let q = v / d;
        let r = (v % d).abs();
        if r * 2 >= d {
            q + v.signum()
        } else {
            q
        }
    }
}

pub fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    let t = s.trim();
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y%m%d%H%M%S"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Some(d);
        }
    }
    for f in ["%Y-%m-%d", "%Y%m%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return d.and_hms_opt(0, 0, 0);
        }
    }
    None
}

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

pub fn days_to_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days + EPOCH_DAYS_FROM_CE)
}

pub fn micros_to_datetime(micros: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
}

/// Coerce a value into the column type `ty`, with MySQL's errors (strict mode).
pub fn coerce(v: &ScalarValue, ty: &SqlType, t: &Target) -> Result<Datum> {
    let l = loosen(v)?;
    coerce_loose(l, ty, t)
}

/// [`coerce`] for a chunked embedding column (`embed::chunk`): a `VECTOR(D)` value there holds
/// one or more `D`-dimensional vectors one after another.
pub fn coerce_chunks(v: &ScalarValue, ty: &SqlType, t: &Target) -> Result<Datum> {
    let d = coerce(v, &SqlType::Vector(None), t)?;
    if let (Datum::Vector(v), SqlType::Vector(Some(dim))) = (&d, ty) {
        check_chunks(v, *dim as usize)?;
    }
    Ok(d)
}

/// A chunked column's value must be whole vectors of the column's dimension.
pub fn check_chunks(v: &[f32], dim: usize) -> Result<()> {
    if v.is_empty() || dim == 0 || v.len() % dim != 0 {
        return Err(SqlError::other(format!("vector has {} dimensions, which is not a whole number of chunks of {dim}", v.len())));
    }
    Ok(())
}

fn invalid(kind: &str, value: &str, t: &Target) -> SqlError {
    SqlError::new(
        1366,
        "HY000",
        format!("Incorrect {kind} value: '{value}' for column '{}' at row {}", t.column, t.row),
    )
}

fn coerce_loose(l: Loose, ty: &SqlType, t: &Target) -> Result<Datum> {
    if let Loose::Null = l {
        return Ok(Datum::Null);
    }
    match ty {
        SqlType::Int { kind, unsigned, .. } => {
            let (lo, hi) = int_range(*kind, *unsigned);
            let v: i128 = match l {
                Loose::Int(i) => i,
                Loose::Float(f) => {
                    let r = f.round();
                    if r < lo as f64 || r > hi as f64 {
                        return Err(SqlError::out_of_range(t.column, t.row));
                    }
                    r as i128
                }
                Loose::Decimal(v, s) => rescale(v, s, 0),
                Loose::Str(s) => {
                    let tr = s.trim();
                    if let Ok(i) = tr.parse::<i128>() {
                        i
                    } else if let Some(f) = parse_number(tr) {
                        f.round() as i128
                    } else {
                        return Err(invalid("integer", &s, t));
                    }
                }
                Loose::Date(d) => {
                    let dt = days_to_date(d).unwrap_or_default();
                    (dt.year() as i128) * 10000 + dt.month() as i128 * 100 + dt.day() as i128
                }
                Loose::Bytes(b) => {
                    let s = String::from_utf8_lossy(&b).to_string();
                    s.trim().parse::<i128>().map_err(|_| invalid("integer", &s, t))?
                }
                Loose::Micros(_) | Loose::Vector(_) => {
                    return Err(SqlError::other(format!("cannot convert value to integer for column '{}'", t.column)))
                }
                Loose::Null => unreachable!(),
            };
            if v < lo || v > hi {
                return Err(SqlError::out_of_range(t.column, t.row));
            }
            if *unsigned && v > i64::MAX as i128 {
                Ok(Datum::UInt(v as u64))
            } else {
                Ok(Datum::Int(v as i64))
            }
        }
        SqlType::Year => {
            let d = coerce_loose(l, &SqlType::Int { kind: IntKind::Small, unsigned: true, width: None }, t)?;
            Ok(d)
        }
        SqlType::Float | SqlType::Double => {
            let f = match l {
                Loose::Int(i) => i as f64,
                Loose::Float(f) => f,
                Loose::Decimal(v, s) => decimal_to_f64(v, s),
                Loose::Str(s) => parse_number(&s).ok_or_else(|| invalid("double", &s, t))?,
                Loose::Bytes(b) => {
                    let s = String::from_utf8_lossy(&b).to_string();
                    parse_number(&s).ok_or_else(|| invalid("double", &s, t))?
                }
                _ => return Err(SqlError::other(format!("cannot convert value to double for column '{}'", t.column))),
            };
            if matches!(ty, SqlType::Float) && f.is_finite() && f.abs() > f32::MAX as f64 {
                return Err(SqlError::out_of_range(t.column, t.row));
            }
            if !f.is_finite() {
                return Err(SqlError::out_of_range(t.column, t.row));
            }
            Ok(Datum::Float(if matches!(ty, SqlType::Float) { f as f32 as f64 } else { f }))
        }
        SqlType::Decimal { precision, scale } => {
            let v = match l {
                Loose::Int(i) => i.checked_mul(10i128.pow(*scale as u32)),
                Loose::Float(f) => Some((f * 10f64.powi(*scale as i32)).round() as i128),
                Loose::Decimal(v, s) => Some(rescale(v, s, *scale)),
                Loose::Str(s) => Some(parse_decimal_str(&s, *scale).ok_or_else(|| invalid("decimal", &s, t))?),
                Loose::Bytes(b) => {
                    let s = String::from_utf8_lossy(&b).to_string();
                    Some(parse_decimal_str(&s, *scale).ok_or_else(|| invalid("decimal", &s, t))?)
                }
                _ => return Err(SqlError::other(format!("cannot convert value to decimal for column '{}'", t.column))),
            };
            let v = v.ok_or_else(|| SqlError::out_of_range(t.column, t.row))?;
            let max = 10i128.pow(*precision as u32) - 1;
            if v.abs() > max {
                return Err(SqlError::out_of_range(t.column, t.row));
            }
            Ok(Datum::Decimal { value: v, scale: *scale })
        }
        SqlType::Char(n) | SqlType::VarChar(n) => {
            let s = loose_to_string(l);
            if s.chars().count() > *n as usize {
                return Err(SqlError::data_too_long(t.column, t.row));
            }
            Ok(Datum::Bytes(s.into_bytes()))
        }
        SqlType::Text(k) => {
            let s = loose_to_string(l);
            let max = lob_max(*k);
            if s.len() > max {
                return Err(SqlError::data_too_long(t.column, t.row));
            }
            Ok(Datum::Bytes(s.into_bytes()))
        }
        SqlType::Time(_) => Ok(Datum::Bytes(loose_to_string(l).into_bytes())),
        SqlType::Enum(members) => {
            // A member's text (compared case-insensitively, stored as declared) or its 1-based index.
            let s = loose_to_string(l);
            let member = members.iter().find(|m| m.eq_ignore_ascii_case(s.trim_end())).cloned().or_else(|| {
                let i: usize = s.trim().parse().ok()?;
                (i >= 1).then(|| members.get(i - 1).cloned()).flatten()
            });
            match member {
                Some(m) => Ok(Datum::Bytes(m.into_bytes())),
                None => Err(SqlError::new(1265, "01000", format!("Data truncated for column '{}' at row {}", t.column, t.row))),
            }
        }
        SqlType::Binary(n) | SqlType::VarBinary(n) => {
            let b = loose_to_bytes(l);
            if b.len() > *n as usize {
                return Err(SqlError::data_too_long(t.column, t.row));
            }
            Ok(Datum::Bytes(b))
        }
        SqlType::Blob(k) => {
            let b = loose_to_bytes(l);
            if b.len() > lob_max(*k) {
                return Err(SqlError::data_too_long(t.column, t.row));
            }
            Ok(Datum::Bytes(b))
        }
        SqlType::Json => {
            let s = loose_to_string(l);
            let v: serde_json::Value = serde_json::from_str(&s).map_err(|e| {
                SqlError::new(3140, "22032", format!("Invalid JSON text: {e}"))
            })?;
            Ok(Datum::Bytes(json_to_mysql_text(&v).into_bytes()))
        }
        SqlType::Date | SqlType::DateTime(_) | SqlType::Timestamp(_) => {
            let dt = match l {
                Loose::Date(d) => days_to_date(d).and_then(|d| d.and_hms_opt(0, 0, 0)),
                Loose::Micros(m) => micros_to_datetime(m),
                Loose::Str(s) => Some(parse_datetime(&s).ok_or_else(|| {
                    SqlError::new(1292, "22007", format!("Incorrect datetime value: '{s}' for column '{}' at row {}", t.column, t.row))
                })?),
                Loose::Int(i) => parse_datetime(&i.to_string()),
                _ => None,
            }
            .ok_or_else(|| SqlError::new(1292, "22007", format!("Incorrect datetime value for column '{}' at row {}", t.column, t.row)))?;
            if matches!(ty, SqlType::Date) {
                Ok(Datum::Date(dt.date().num_days_from_ce() - EPOCH_DAYS_FROM_CE))
            } else {
                let fsp = match ty {
                    SqlType::DateTime(f) | SqlType::Timestamp(f) => *f,
                    _ => 0,
                };
                let micros = dt.and_utc().timestamp_micros();
                let unit = 10i64.pow(6 - fsp.min(6) as u32);
                // Round half away from zero to the column's fractional digits, in integers.
                let q = micros.div_euclid(unit);
                let r = micros.rem_euclid(unit);
                let rounded = if r * 2 >= unit { (q + 1) * unit } else { q * unit };
                Ok(Datum::DateTime(rounded))
            }
        }
        SqlType::Vector(dim) => {
            let v = match l {
                Loose::Vector(v) => {
                    if v.iter().any(|x| x.is_nan()) {
                        return Err(SqlError::other("NaN not allowed in vector"));
                    }
                    if v.iter().any(|x| x.is_infinite()) {
                        return Err(SqlError::other("infinite value not allowed in vector"));
                    }
                    v
                }
                Loose::Str(s) => embedb_vector::parse_vector(&s).map_err(|e| SqlError::other(e.to_string()))?,
                Loose::Bytes(b) => embedb_vector::parse_vector(&String::from_utf8_lossy(&b))
                    .map_err(|e| SqlError::other(e.to_string()))?,
                _ => return Err(SqlError::other("Cannot convert to vector: only strings and vectors can be converted")),
            };
            if let Some(d) = dim {
                embedb_vector::check_dimension(&v, *d as usize).map_err(|e| SqlError::other(e.to_string()))?;
            }
            Ok(Datum::Vector(v))
        }
    }
}

/// The most bytes a TEXT/BLOB of this size holds.
pub fn lob_max(k: LobKind) -> usize {
    match k {
        LobKind::Tiny => 255,
        LobKind::Normal => 65535,
        LobKind::Medium => 16_777_215,
        LobKind::Long => 4_294_967_295,
    }
}

fn loose_to_string(l: Loose) -> String {
    match l {
        Loose::Null => String::new(),
        Loose::Int(i) => i.to_string(),
        Loose::Float(f) => format_double(f),
        Loose::Decimal(v, s) => decimal_to_string(v, s),
        Loose::Str(s) => s,
        Loose::Bytes(b) => String::from_utf8_lossy(&b).to_string(),
        Loose::Vector(v) => embedb_vector::format_vector(&v),
        Loose::Date(d) => days_to_date(d).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        Loose::Micros(m) => micros_to_datetime(m).map(|d| format_datetime(&d, 6)).unwrap_or_default(),
    }
}

fn loose_to_bytes(l: Loose) -> Vec<u8> {
    match l {
        Loose::Bytes(b) => b,
        other => loose_to_string(other).into_bytes(),
    }
}

pub fn format_datetime(d: &NaiveDateTime, fsp: u8) -> String {
    let base = d.format("%Y-%m-%d %H:%M:%S").to_string();
    if fsp == 0 {
        return base;
    }
    let micros = d.nanosecond() / 1000;
    let frac = format!("{micros:06}");
    format!("{base}.{}", &frac[..fsp.min(6) as usize])
}

/// MySQL prints doubles in the shortest form that round-trips.
pub fn format_double(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e15 {
        return format!("{}", f as i64);
    }
    let s = format!("{f}");
    if s.len() > 20 {
        format!("{f:e}")
    } else {
        s
    }
}

/// MySQL's JSON text form: `{"a": 1, "b": [1, 2]}`.
pub fn json_to_mysql_text(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Array(a) => format!("[{}]", a.iter().map(json_to_mysql_text).collect::<Vec<_>>().join(", ")),
        J::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", serde_json::to_string(k).unwrap(), json_to_mysql_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Datums ⇄ Arrow (the read path).
// ---------------------------------------------------------------------------------------------

/// Build one Arrow column of `ty` from datums (one per row).
pub fn datums_to_array(ty: &SqlType, values: &[&Datum]) -> Result<ArrayRef> {
    let dt = ty.arrow_type();
    let arr: ArrayRef = match &dt {
        DataType::Int64 => Arc::new(
            values
                .iter()
                .map(|d| match d {
                    Datum::Int(i) => Some(*i),
                    Datum::UInt(u) => Some(*u as i64),
                    Datum::Float(f) => Some(*f as i64),
                    _ => None,
                })
                .collect::<Int64Array>(),
        ),
        DataType::UInt64 => Arc::new(
            values
                .iter()
                .map(|d| match d {
                    Datum::Int(i) => Some(*i as u64),
                    Datum::UInt(u) => Some(*u),
                    _ => None,
                })
                .collect::<UInt64Array>(),
        ),
        DataType::Float32 => Arc::new(
            values
                .iter()
                .map(|d| match d {
                    Datum::Float(f) => Some(*f as f32),
                    Datum::Int(i) => Some(*i as f32),
                    _ => None,
                })
                .collect::<Float32Array>(),
        ),
        DataType::Float64 => Arc::new(
            values
                .iter()
                .map(|d| match d {
                    Datum::Float(f) => Some(*f),
                    Datum::Int(i) => Some(*i as f64),
                    _ => None,
                })
                .collect::<Float64Array>(),
        ),
        DataType::Decimal128(p, s) => {
            let a = values
                .iter()
                .map(|d| match d {
                    Datum::Decimal { value, scale } => Some(rescale(*value, *scale as i8, *s as u8)),
                    Datum::Int(i) => Some(rescale(*i as i128, 0, *s as u8)),
                    _ => None,
                })
                .collect::<Decimal128Array>()
                .with_precision_and_scale(*p, *s)
                .map_err(|e| SqlError::other(e.to_string()))?;
            Arc::new(a)
        }
        DataType::Utf8 => Arc::new(
            values
                .iter()
                .map(|d| match d {
                    Datum::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    Datum::Null => None,
                    other => Some(format!("{other:?}")),
                })
                .collect::<StringArray>(),
        ),
        DataType::Binary => Arc::new(
            values
                .iter()
                .map(|d| match d {
                    Datum::Bytes(b) => Some(b.as_slice()),
                    _ => None,
                })
                .collect::<BinaryArray>(),
        ),
        DataType::Date32 => Arc::new(
            values
                .iter()
                .map(|d| match d {
                    Datum::Date(x) => Some(*x),
                    _ => None,
                })
                .collect::<Date32Array>(),
        ),
        DataType::Timestamp(TimeUnit::Microsecond, None) => Arc::new(
            values
                .iter()
                .map(|d| match d {
                    Datum::DateTime(x) => Some(*x),
                    _ => None,
                })
                .collect::<TimestampMicrosecondArray>(),
        ),
        DataType::List(_) => {
            let mut b = ListBuilder::new(Float32Builder::new());
            for d in values {
                match d {
                    Datum::Vector(v) => {
                        b.values().append_slice(v);
                        b.append(true);
                    }
                    _ => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
        other => return Err(SqlError::other(format!("unsupported arrow type {other}"))),
    };
    Ok(arr)
}

/// One cell of an Arrow column as a `ScalarValue` (used by DML to read rows DataFusion selected).
pub fn scalar_at(arr: &ArrayRef, row: usize) -> Result<ScalarValue> {
    ScalarValue::try_from_array(arr, row).map_err(SqlError::from)
}

/// The datum stored for a cell, given the column type (used for index keys and old-row images).
pub fn datum_at(arr: &ArrayRef, row: usize, ty: &SqlType, col: &str) -> Result<Datum> {
    let v = scalar_at(arr, row)?;
    coerce(&v, ty, &Target { column: col, row: row + 1 })
}

/// A datum as a `ScalarValue` of the column's Arrow type.
pub fn datum_to_scalar(d: &Datum, ty: &SqlType) -> Result<ScalarValue> {
    let arr = datums_to_array(ty, &[d])?;
    scalar_at(&arr, 0)
}

/// Text of a datum for messages (`Duplicate entry '…'`).
pub fn datum_display(d: &Datum) -> String {
    match d {
        Datum::Null => "NULL".into(),
        Datum::Int(i) => i.to_string(),
        Datum::UInt(u) => u.to_string(),
        Datum::Float(f) => format_double(*f),
        Datum::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Datum::Decimal { value, scale } => decimal_to_string(*value, *scale as i8),
        Datum::Vector(v) => embedb_vector::format_vector(v),
        Datum::Date(d) => days_to_date(*d).map(|d| d.to_string()).unwrap_or_default(),
        Datum::DateTime(m) => micros_to_datetime(*m).map(|d| format_datetime(&d, 0)).unwrap_or_default(),
    }
}

/// The value MySQL stores instead of a bad one under INSERT IGNORE (or non-strict mode), and
/// the error to report as a warning: out-of-range numbers are clamped, long strings truncated,
/// unparsable values become the type's zero.
pub fn coerce_lenient(v: &ScalarValue, ty: &SqlType, t: &Target) -> Result<(Datum, Option<SqlError>)> {
    match coerce(v, ty, t) {
        Ok(d) => Ok((d, None)),
        Err(e) => {
            let fallback = match (e.code, ty) {
                (1264, SqlType::Int { kind, unsigned, .. }) => {
                    let (lo, hi) = int_range(*kind, *unsigned);
                    let x = match loosen(v)? {
                        Loose::Int(i) => i,
                        Loose::Float(f) => f.round().clamp(-1e38, 1e38) as i128,
                        Loose::Decimal(d, s) => rescale(d, s, 0),
                        Loose::Str(s) => parse_number(&s).map(|f| f.clamp(-1e38, 1e38) as i128).unwrap_or(0),
                        _ => 0,
                    };
                    let c = x.clamp(lo, hi);
                    if *unsigned && c > i64::MAX as i128 { Datum::UInt(c as u64) } else { Datum::Int(c as i64) }
                }
                (1264, SqlType::Float) => {
                    let neg = matches!(loosen(v)?, Loose::Float(f) if f < 0.0) || matches!(loosen(v)?, Loose::Int(i) if i < 0);
                    Datum::Float(if neg { -(f32::MAX as f64) } else { f32::MAX as f64 })
                }
                (1264, SqlType::Decimal { precision, scale }) => {
                    let max = 10i128.pow(*precision as u32) - 1;
                    let neg = v.to_string().trim_start().starts_with('-');
                    Datum::Decimal { value: if neg { -max } else { max }, scale: *scale }
                }
                (1406, SqlType::Char(n) | SqlType::VarChar(n)) => {
                    let s = loose_to_string(loosen(v)?);
                    Datum::Bytes(s.chars().take(*n as usize).collect::<String>().into_bytes())
                }
                (1406, SqlType::Binary(n) | SqlType::VarBinary(n)) => {
                    let mut b = loose_to_bytes(loosen(v)?);
                    b.truncate(*n as usize);
                    Datum::Bytes(b)
                }
                (1406, SqlType::Text(k) | SqlType::Blob(k)) => {
                    let mut b = loose_to_bytes(loosen(v)?);
                    b.truncate(lob_max(*k));
                    Datum::Bytes(b)
                }
                (1366 | 1292, _) => zero_value(ty),
                _ => return Err(e),
            };
            Ok((fallback, Some(e)))
        }
    }
}

/// The implicit zero of a type (what MySQL stores for NULL in a NOT NULL column under IGNORE).
pub fn zero_value(ty: &SqlType) -> Datum {
    match ty {
        SqlType::Int { .. } | SqlType::Year => Datum::Int(0),
        SqlType::Float | SqlType::Double => Datum::Float(0.0),
        SqlType::Decimal { scale, .. } => Datum::Decimal { value: 0, scale: *scale },
        SqlType::Char(_) | SqlType::VarChar(_) | SqlType::Text(_) | SqlType::Binary(_) | SqlType::VarBinary(_) | SqlType::Blob(_) | SqlType::Time(_) => {
            Datum::Bytes(Vec::new())
        }
        SqlType::Json => Datum::Bytes(b"null".to_vec()),
        SqlType::Enum(_) => Datum::Bytes(Vec::new()),
        SqlType::Date => Datum::Date(0),
        SqlType::DateTime(_) | SqlType::Timestamp(_) => Datum::DateTime(0),
        SqlType::Vector(_) => Datum::Vector(Vec::new()),
    }
}
