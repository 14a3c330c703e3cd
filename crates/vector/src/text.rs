//! Text and binary forms of a VECTOR value, plus the error type shared by the crate.
//!
//! * Text input is a JSON array of numbers (`'[0.3, 0.5, -0.1]'`), whitespace allowed, `[]` is a
//!   0-dimensional vector. Numbers are read as float64 and then narrowed to float32, as TiDB does.
//! * Text output is the shortest round-trip float32 text of each element, without exponent and
//!   without spaces (`[1,2.5]`).
//! * The compact binary form is the elements as little-endian float32, back to back.

use std::cmp::Ordering;
use std::fmt;

/// Largest number of dimensions a vector may have.
pub const MAX_DIMENSIONS: usize = 16383;

/// Errors of the VECTOR type and its functions. `Display` gives exactly TiDB's message.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorError {
    /// Not a JSON array of numbers, or trailing garbage. Holds the whole input text.
    InvalidText(String),
    /// A finite number that does not fit float32.
    OutOfRangeFloat32(f64),
    /// A NaN element.
    NaN,
    /// An infinite element.
    Infinite,
    /// More than [`MAX_DIMENSIONS`] elements.
    TooManyDimensions,
    /// The vector does not have the dimension `VECTOR(expected)` requires.
    DimensionNotFit { dims: usize, expected: usize },
    /// Two vectors of different sizes given to a binary operation.
    DifferentDimensions(usize, usize),
    /// `+`/`-` produced an infinite element.
    ResultOverflow,
    /// `+`/`-` produced a NaN element.
    ResultNaN,
    /// A binary value whose length is not a multiple of 4.
    InvalidBinary(usize),
}

impl fmt::Display for VectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VectorError::InvalidText(s) => write!(f, "Invalid vector text: {s}"),
            VectorError::OutOfRangeFloat32(v) => {
                write!(f, "value {} out of range for float32", go_format_float(*v))
            }
            VectorError::NaN => f.write_str("NaN not allowed in vector"),
            VectorError::Infinite => f.write_str("infinite value not allowed in vector"),
            VectorError::TooManyDimensions => {
                write!(
                    f,
                    "vector cannot have more than {MAX_DIMENSIONS} dimensions"
                )
            }
            VectorError::DimensionNotFit { dims, expected } => {
                write!(
                    f,
                    "vector has {dims} dimensions, does not fit VECTOR({expected})"
                )
            }
            VectorError::DifferentDimensions(a, b) => {
                write!(f, "vectors have different dimensions: {a} and {b}")
            }
            VectorError::ResultOverflow => f.write_str("value out of range: overflow"),
            VectorError::ResultNaN => f.write_str("value out of range: NaN"),
            VectorError::InvalidBinary(len) => {
                write!(f, "bad VectorFloat32 value (len={len})")
            }
        }
    }
}

impl std::error::Error for VectorError {}

impl From<VectorError> for datafusion::error::DataFusionError {
    fn from(e: VectorError) -> Self {
        datafusion::error::DataFusionError::Execution(e.to_string())
    }
}

/// Formats a float64 the way Go's `%v` does (`strconv.FormatFloat(v, 'g', -1, 64)`):
/// shortest digits, exponent form `1e+39` when the decimal exponent is < -4 or >= 6.
fn go_format_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `-1.5e39`, `1e-5`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    if (-4..6).contains(&exp) {
        // Go's shortest %g prints plainly in this range, as Rust's Display does.
        return format!("{v}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Length of the JSON number at the start of `s`, or `None` when it is not one.
/// Grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn json_number_len(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    if s.get(i) == Some(&b'-') {
        i += 1;
    }
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while matches!(s.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        _ => return None,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while matches!(s.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while matches!(s.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    Some(i)
}

/// Exact powers of ten in f64 (10^22 is the largest).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// The JSON number at the start of `s` (grammar of [`json_number_len`]) as the correctly
/// rounded f64, and its length; `None` when it is not one.
///
/// Vector literals are long lists of short decimals, so the common case is taken in one pass:
/// when the digits form an integer below 2^53 and the decimal exponent is within ±22, both are
/// exact in f64 and one multiplication or division rounds correctly (Clinger's fast path).
/// Anything else goes to the standard library's parser.
fn parse_json_number(s: &[u8]) -> Option<(f64, usize)> {
    let len = json_number_len(s)?;
    let text = &s[..len];
    let mut i = 0;
    let negative = text[0] == b'-';
    if negative {
        i += 1;
    }
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut exponent: i64 = 0;
    let mut in_fraction = false;
    while i < len {
        match text[i] {
            c @ b'0'..=b'9' => {
                if mantissa == 0 && c == b'0' {
                    // Leading zeros carry no digits.
                } else {
                    digits += 1;
                    if digits > 19 {
                        break;
                    }
                    mantissa = mantissa * 10 + u64::from(c - b'0');
                }
                if in_fraction {
                    exponent -= 1;
                }
            }
            b'.' => in_fraction = true,
            _ => break,
        }
        i += 1;
    }
    if i < len && matches!(text[i], b'e' | b'E') {
        let e = std::str::from_utf8(&text[i + 1..]).ok()?;
        match e.parse::<i64>() {
            Ok(e) => exponent = exponent.saturating_add(e),
            Err(_) => exponent = i64::MAX,
        }
        i = len;
    }
    if i == len && mantissa < (1u64 << 53) && (-22..=22).contains(&exponent) {
        let m = mantissa as f64;
        let v = if exponent >= 0 { m * POW10[exponent as usize] } else { m / POW10[(-exponent) as usize] };
        return Some((if negative { -v } else { v }, len));
    }
    let v: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    Some((v, len))
}

/// Checks one float64 element and narrows it to float32.
pub fn float64_to_element(v: f64) -> Result<f32, VectorError> {
    if v.is_nan() {
        return Err(VectorError::NaN);
    }
    if v.is_infinite() {
        return Err(VectorError::Infinite);
    }
    if v < -(f32::MAX as f64) || v > f32::MAX as f64 {
        return Err(VectorError::OutOfRangeFloat32(v));
    }
    Ok(v as f32)
}

/// Checks the elements of a vector built from float32 values (no NaN, no infinity, not too long).
pub fn check_elements(v: &[f32]) -> Result<(), VectorError> {
    for x in v {
        if x.is_nan() {
            return Err(VectorError::NaN);
        }
        if x.is_infinite() {
            return Err(VectorError::Infinite);
        }
    }
    if v.len() > MAX_DIMENSIONS {
        return Err(VectorError::TooManyDimensions);
    }
    Ok(())
}

/// Parses the text form of a vector, e.g. `[1, 2.5, -3e-2]`.
pub fn parse_vector(s: &str) -> Result<Vec<f32>, VectorError> {
    let mut out = Vec::new();
    parse_vector_into(s, &mut out)?;
    Ok(out)
}

/// Like [`parse_vector`], but writes into `out` (cleared first) so a buffer can be reused.
pub fn parse_vector_into(s: &str, out: &mut Vec<f32>) -> Result<(), VectorError> {
    out.clear();
    let invalid = || VectorError::InvalidText(s.to_string());
    let b = s.as_bytes();
    let mut i = 0;
    let skip_space = |i: &mut usize| {
        while *i < b.len() && is_space(b[*i]) {
            *i += 1;
        }
    };
    skip_space(&mut i);
    if b.get(i) != Some(&b'[') {
        return Err(invalid());
    }
    i += 1;
    skip_space(&mut i);
    if b.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            skip_space(&mut i);
            let (v, len) = parse_json_number(&b[i..]).ok_or_else(invalid)?;
            i += len;
            if v.is_infinite() {
                // Beyond float64: TiDB's JSON reader rejects the text itself.
                return Err(invalid());
            }
            out.push(float64_to_element(v)?);
            skip_space(&mut i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b']') => {
                    i += 1;
                    break;
                }
                _ => return Err(invalid()),
            }
        }
    }
    skip_space(&mut i);
    if i != b.len() {
        return Err(invalid());
    }
    if out.len() > MAX_DIMENSIONS {
        return Err(VectorError::TooManyDimensions);
    }
    Ok(())
}

/// Checks that `v` fits `VECTOR(d)`.
pub fn check_dimension(v: &[f32], d: usize) -> Result<(), VectorError> {
    if v.len() != d {
        return Err(VectorError::DimensionNotFit {
            dims: v.len(),
            expected: d,
        });
    }
    Ok(())
}

/// Checks a declared dimension `D` of `VECTOR(D)` (at most [`MAX_DIMENSIONS`]).
pub fn check_declared_dimension(d: usize) -> Result<(), VectorError> {
    if d > MAX_DIMENSIONS {
        return Err(VectorError::TooManyDimensions);
    }
    Ok(())
}

/// Appends the text form of `v` to `out`.
pub fn write_vector(v: &[f32], out: &mut String) {
    use std::fmt::Write;
    out.reserve(2 + v.len() * 8);
    out.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Rust's Display of f32 is the shortest text that round-trips to the same f32, and never
        // uses an exponent (1e-5 → 0.00001, 1e20 → 100000000000000000000, -0.0 → -0).
        let _ = write!(out, "{x}");
    }
    out.push(']');
}

/// Text form of a vector: `[1,2.5,-3]`.
pub fn format_vector(v: &[f32]) -> String {
    let mut s = String::new();
    write_vector(v, &mut s);
    s
}

/// Compact binary form: the elements as little-endian float32.
pub fn vector_to_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Reads the form written by [`vector_to_bytes`].
pub fn vector_from_bytes(b: &[u8]) -> Result<Vec<f32>, VectorError> {
    if !b.len().is_multiple_of(4) {
        return Err(VectorError::InvalidBinary(b.len()));
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// TiDB's vector order: element-wise over the common prefix, then the shorter one is smaller.
pub fn compare_vectors(a: &[f32], b: &[f32]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x < y {
            return Ordering::Less;
        }
        if x > y {
            return Ordering::Greater;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {

    #[test]
    fn fast_number_parse_matches_std() {
        let mut texts: Vec<String> = [
            "0", "-0", "1", "-1", "0.5", "10", "1e22", "1e23", "1e-22", "1e-23", "123456789012345678901234",
            "9007199254740993", "9007199254740992", "0.000000000000000000000000001", "1.7976931348623157e308",
            "4.9e-324", "1e-400", "2.5E+3", "-3.25e-2", "0.1", "0.2", "0.30000000000000004", "00", "1.", "-", "1e", ".5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Shortest forms of many f32 values, as clients print them, plus longer decimals.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f32::from_bits((x >> 32) as u32);
            if f.is_finite() {
                texts.push(format!("{f}"));
                texts.push(format!("{f:e}"));
                texts.push(format!("{:.9}", f64::from(f) / 3.0));
            }
        }
        for t in &texts {
            let want = json_number_len(t.as_bytes()).filter(|&n| n == t.len()).and_then(|_| t.parse::<f64>().ok());
            let got = parse_json_number(t.as_bytes()).filter(|&(_, n)| n == t.len()).map(|(v, _)| v);
            assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{t}");
        }
    }

    use super::*;

    fn err(s: &str) -> String {
        parse_vector(s).unwrap_err().to_string()
    }

    #[test]
    fn parse_basic() {
        assert_eq!(parse_vector("[1,2.5,-3]").unwrap(), vec![1.0, 2.5, -3.0]);
        assert_eq!(
            parse_vector(" [ 0.3 , 0.5,\n-0.1\t] ").unwrap(),
            vec![0.3, 0.5, -0.1]
        );
        assert_eq!(parse_vector("[]").unwrap(), Vec::<f32>::new());
        assert_eq!(parse_vector("[ ]").unwrap(), Vec::<f32>::new());
        assert_eq!(
            parse_vector("[1e-05, 2E3, 1.5e+2, -0]").unwrap(),
            vec![1e-5, 2000.0, 150.0, -0.0]
        );
        assert!(parse_vector("[-0]").unwrap()[0].is_sign_negative());
        assert_eq!(parse_vector("[1.000, 2.5]").unwrap(), vec![1.0, 2.5]);
    }

    #[test]
    fn parse_invalid_text() {
        for s in [
            "", "1", "[", "]", "[1", "123]", "[1,]", "[,1]", "[1 2]", "[1,2]x", "[1,2] ]", "null",
            " null ", "[null]", "[\"1\"]", "[[1]]", "[true]", "[NaN]", "[inf]", "[.5]", "[1.]",
            "[01]", "[+1]", "[1e]", "[--1]", "{}", "[1e400]", "abc",
        ] {
            assert_eq!(err(s), format!("Invalid vector text: {s}"), "input {s:?}");
        }
    }

    #[test]
    fn parse_out_of_range() {
        assert_eq!(
            err("[-1e39, 1e39]"),
            "value -1e+39 out of range for float32"
        );
        assert_eq!(err("[1e39]"), "value 1e+39 out of range for float32");
        assert_eq!(err("[3.5e38]"), "value 3.5e+38 out of range for float32");
        assert_eq!(
            err("[1.7976931348623157e308]"),
            "value 1.7976931348623157e+308 out of range for float32"
        );
        // The largest float32 itself is fine.
        assert_eq!(
            parse_vector("[3.4028234663852886e38]").unwrap(),
            vec![f32::MAX]
        );
    }

    #[test]
    fn element_checks() {
        assert_eq!(
            float64_to_element(f64::NAN).unwrap_err().to_string(),
            "NaN not allowed in vector"
        );
        assert_eq!(
            float64_to_element(f64::INFINITY).unwrap_err().to_string(),
            "infinite value not allowed in vector"
        );
        assert_eq!(
            float64_to_element(-1e300).unwrap_err().to_string(),
            "value -1e+300 out of range for float32"
        );
        assert_eq!(
            check_elements(&[1.0, f32::NAN]).unwrap_err().to_string(),
            "NaN not allowed in vector"
        );
        assert_eq!(
            check_elements(&[f32::NEG_INFINITY])
                .unwrap_err()
                .to_string(),
            "infinite value not allowed in vector"
        );
        assert!(check_elements(&[1.0, 2.0]).is_ok());
    }

    #[test]
    fn dimensions() {
        let max = format!("[{}]", vec!["1"; MAX_DIMENSIONS].join(","));
        assert_eq!(parse_vector(&max).unwrap().len(), MAX_DIMENSIONS);
        let over = format!("[{}]", vec!["1"; MAX_DIMENSIONS + 1].join(","));
        assert_eq!(err(&over), "vector cannot have more than 16383 dimensions");
        assert!(check_declared_dimension(16383).is_ok());
        assert_eq!(
            check_declared_dimension(16384).unwrap_err().to_string(),
            "vector cannot have more than 16383 dimensions"
        );
        assert!(check_dimension(&[1.0, 2.0, 3.0], 3).is_ok());
        assert_eq!(
            check_dimension(&[1.0, 2.0], 3).unwrap_err().to_string(),
            "vector has 2 dimensions, does not fit VECTOR(3)"
        );
    }

    #[test]
    fn format() {
        assert_eq!(format_vector(&[1.0, 2.5]), "[1,2.5]");
        assert_eq!(format_vector(&[]), "[]");
        assert_eq!(format_vector(&[1e-5]), "[0.00001]");
        assert_eq!(format_vector(&[-0.0]), "[-0]");
        assert_eq!(format_vector(&[1e20]), "[100000000000000000000]");
        assert_eq!(format_vector(&[0.1, 0.3, -0.1]), "[0.1,0.3,-0.1]");
        assert_eq!(format_vector(&[1.1, 2.2, 3.3]), "[1.1,2.2,3.3]");
        assert_eq!(
            format_vector(&[f32::MAX]),
            "[340282350000000000000000000000000000000]"
        );
        assert_eq!(
            format_vector(&[f32::MIN_POSITIVE]),
            format!("[0.{}11754944]", "0".repeat(37))
        );
        assert_eq!(format_vector(&[1.0 / 3.0]), "[0.33333334]");
        assert_eq!(format_vector(&[16777216.0]), "[16777216]");
        assert_eq!(
            format_vector(&parse_vector("[1.000, 2.5]").unwrap()),
            "[1,2.5]"
        );
    }

    #[test]
    fn format_round_trips() {
        // Shortest text must parse back to the same float32, over many bit patterns.
        let mut bits: u32 = 1;
        for _ in 0..200_000 {
            bits = bits.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let x = f32::from_bits(bits);
            if !x.is_finite() {
                continue;
            }
            let s = format_vector(&[x]);
            assert!(!s.contains('e') && !s.contains('E'), "{s}");
            let back = parse_vector(&s).unwrap();
            assert_eq!(back[0].to_bits(), x.to_bits(), "{s}");
        }
    }

    #[test]
    fn bytes() {
        let v = vec![1.0, -2.5, 0.0, f32::MAX];
        let b = vector_to_bytes(&v);
        assert_eq!(b.len(), 16);
        assert_eq!(&b[0..4], &1.0f32.to_le_bytes());
        assert_eq!(vector_from_bytes(&b).unwrap(), v);
        assert_eq!(vector_from_bytes(&[]).unwrap(), Vec::<f32>::new());
        assert!(vector_from_bytes(&[1, 2, 3]).is_err());
    }

    #[test]
    fn compare() {
        assert_eq!(compare_vectors(&[], &[1.0]), Ordering::Less);
        assert_eq!(
            compare_vectors(&[1.1, 2.2, 3.3], &[-1.1, 4.2]),
            Ordering::Greater
        );
        assert_eq!(
            compare_vectors(&[1.1, 2.2, 3.3], &[1.1, 4.2]),
            Ordering::Less
        );
        assert_eq!(compare_vectors(&[1.0, 2.0], &[1.0, 2.0]), Ordering::Equal);
        assert_eq!(compare_vectors(&[1.0, 2.0], &[1.0]), Ordering::Greater);
    }

    #[test]
    fn go_float_format() {
        assert_eq!(go_format_float(-1e39), "-1e+39");
        assert_eq!(go_format_float(1.5e-7), "1.5e-07");
        assert_eq!(go_format_float(123.5), "123.5");
        assert_eq!(go_format_float(123456.0), "123456");
        assert_eq!(go_format_float(1234567.0), "1.234567e+06");
        assert_eq!(go_format_float(0.0001), "0.0001");
    }
}
