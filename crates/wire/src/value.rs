//! Cell values on the wire: text rows, binary rows and binary parameters.
//!
//! **Text protocol** (COM_QUERY): a row packet is one lenenc string per
//! column, or the single byte `0xfb` for NULL. Numbers become decimal text,
//! floats their shortest round-trip text in MySQL's `%g`-like style
//! ([`format_double`]), dates `YYYY-MM-DD[ HH:MM:SS[.ffffff]]`.
//!
//! **Binary protocol** (COM_STMT_EXECUTE): a row packet is `0x00`, a NULL
//! bitmap of `(columns + 7 + 2) / 8` bytes whose bit `i + 2` marks column `i`
//! NULL, then each non-NULL value encoded by its *column's* declared type:
//!
//! ```text
//! Tiny 1 byte | Short, Year 2 | Long, Int24 4 | LongLong 8 | Float f32 | Double f64
//! Date, DateTime, Timestamp: len (0|4|7|11) [u16 year, month, day [hour, min, sec [u32 micro]]]
//! Time: len (0|8|12) [u8 negative, u32 days, hour, min, sec [u32 micro]]
//! anything else: lenenc string of the text form
//! ```
//!
//! A value whose variant does not match its column is converted (an `Int` in a
//! DOUBLE column is sent as f64, a `Double` in a VARCHAR column as its text).
//! Parameters of COM_STMT_EXECUTE use the same per-type encodings, keyed by
//! the type bytes the client sends ([`decode_param`]).

use std::fmt::Write as _;

use crate::codec::{put_lenenc_bytes, Malformed, Parse, Reader};
use crate::types::{ColumnDef, ColumnType, Value};

/// Below this decimal exponent floats are printed in exponent form.
pub const EXP_FORM_BELOW: i32 = -4;
/// From this decimal exponent on floats are printed in exponent form.
pub const EXP_FORM_FROM: i32 = 15;

/// A DOUBLE as MySQL prints it: shortest round-trip digits, plain notation for
/// decimal exponents in `-4..15`, otherwise `<mantissa>e<exp>` with no `+`
/// and at least two digits for negative exponents (`1e-05`, `1e20`,
/// `1.5e300`).
pub fn format_double(v: f64) -> String {
    if !v.is_finite() {
        return non_finite(v.is_nan(), v > 0.0);
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    exp_or_plain(&format!("{v:e}"), || v.to_string())
}

/// A FLOAT (f32) as MySQL prints it: like [`format_double`] but with the
/// shortest digits that round-trip as f32 (`0.1`, not `0.10000000149011612`).
pub fn format_float(v: f32) -> String {
    if !v.is_finite() {
        return non_finite(v.is_nan(), v > 0.0);
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    exp_or_plain(&format!("{v:e}"), || v.to_string())
}

fn non_finite(nan: bool, positive: bool) -> String {
    match (nan, positive) {
        (true, _) => "NaN",
        (false, true) => "inf",
        (false, false) => "-inf",
    }
    .to_string()
}

fn exp_or_plain(sci: &str, plain: impl FnOnce() -> String) -> String {
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return plain();
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return plain();
    };
    if exp < EXP_FORM_BELOW {
        format!("{mantissa}e-{:02}", -exp)
    } else if exp >= EXP_FORM_FROM {
        format!("{mantissa}e{exp}")
    } else {
        plain()
    }
}

impl Value {
    /// The text-protocol form of this value (`None` for NULL), as sent for a
    /// column without special decimals.
    pub fn to_text(&self) -> Option<Vec<u8>> {
        match self {
            Value::Null => None,
            Value::Bytes(b) => Some(b.clone()),
            v => Some(text_of(v, None).into_bytes()),
        }
    }
}

/// Append one text-protocol cell.
pub(crate) fn put_text_value(out: &mut Vec<u8>, v: &Value, col: &ColumnDef) {
    match v {
        Value::Null => out.push(0xfb),
        Value::Bytes(b) => put_lenenc_bytes(out, b),
        v => put_lenenc_bytes(out, text_of(v, Some(col)).as_bytes()),
    }
}

/// Fixed fraction digits the column asks for, if any.
fn fixed_decimals(col: Option<&ColumnDef>) -> Option<usize> {
    let c = col?;
    let numeric = matches!(
        c.column_type,
        ColumnType::Float | ColumnType::Double | ColumnType::Decimal | ColumnType::NewDecimal
    );
    (numeric && (1..=30).contains(&c.decimals)).then_some(c.decimals as usize)
}

/// Fractional-second digits the column asks for, if any.
fn fsp(col: Option<&ColumnDef>) -> Option<usize> {
    let c = col?;
    let temporal = matches!(
        c.column_type,
        ColumnType::DateTime | ColumnType::Timestamp | ColumnType::Time
    );
    (temporal && (1..=6).contains(&c.decimals)).then_some(c.decimals as usize)
}

fn push_fraction(s: &mut String, micro: u32, fsp: Option<usize>) {
    match fsp {
        Some(n) => {
            let digits = format!("{:06}", micro.min(999_999));
            s.push('.');
            s.push_str(&digits[..n]);
        }
        None if micro != 0 => {
            let _ = write!(s, ".{:06}", micro.min(999_999));
        }
        None => {}
    }
}

fn text_of(v: &Value, col: Option<&ColumnDef>) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Decimal(d) => d.clone(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => match fixed_decimals(col) {
            Some(d) if f.is_finite() => format!("{f:.d$}"),
            _ => format_float(*f),
        },
        Value::Double(f) => match fixed_decimals(col) {
            Some(d) if f.is_finite() => format!("{f:.d$}"),
            _ => format_double(*f),
        },
        Value::Date { year, month, day } => format!("{year:04}-{month:02}-{day:02}"),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        } => {
            let mut s = format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}");
            push_fraction(&mut s, *micro, fsp(col));
            s
        }
        Value::Time {
            negative,
            days,
            hours,
            minutes,
            seconds,
            micro,
        } => {
            let h = *days as u64 * 24 + *hours as u64;
            let mut s = format!(
                "{}{h:02}:{minutes:02}:{seconds:02}",
                if *negative { "-" } else { "" }
            );
            push_fraction(&mut s, *micro, fsp(col));
            s
        }
    }
}

// ---------------------------------------------------------------- conversions

fn parse_i64(b: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(b);
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        i
    } else if let Ok(u) = s.parse::<u64>() {
        u as i64
    } else if let Ok(f) = s.parse::<f64>() {
        f.round() as i64
    } else {
        0
    }
}

fn as_i64(v: &Value) -> i64 {
    match v {
        Value::Null => 0,
        Value::Int(i) => *i,
        Value::UInt(u) => *u as i64,
        Value::Float(f) => f.round() as i64,
        Value::Double(f) => f.round() as i64,
        Value::Bytes(b) => parse_i64(b),
        Value::Decimal(d) => parse_i64(d.as_bytes()),
        Value::Date { year, month, day } => {
            *year as i64 * 10_000 + *month as i64 * 100 + *day as i64
        }
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            ..
        } => {
            (*year as i64 * 10_000 + *month as i64 * 100 + *day as i64) * 1_000_000
                + *hour as i64 * 10_000
                + *minute as i64 * 100
                + *second as i64
        }
        Value::Time {
            negative,
            days,
            hours,
            minutes,
            seconds,
            ..
        } => {
            let v = (*days as i64 * 24 + *hours as i64) * 10_000
                + *minutes as i64 * 100
                + *seconds as i64;
            if *negative {
                -v
            } else {
                v
            }
        }
    }
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::UInt(u) => *u as f64,
        Value::Float(f) => *f as f64,
        Value::Double(f) => *f,
        Value::Bytes(b) => String::from_utf8_lossy(b).trim().parse().unwrap_or(0.0),
        Value::Decimal(d) => d.trim().parse().unwrap_or(0.0),
        other => as_i64(other) as f64,
    }
}

/// Date and time parts; all zero is MySQL's zero date.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Dt {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    micro: u32,
}

/// `HH:MM:SS[.ffffff]` (hours may exceed 23) → (hours, minutes, seconds, micro).
fn parse_hms(t: &str) -> Option<(u64, u8, u8, u32)> {
    let (hms, frac) = match t.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (t, None),
    };
    let mut it = hms.split(':');
    let h = it.next()?.trim().parse().ok()?;
    let m = it.next().map_or(Some(0), |s| s.trim().parse().ok())?;
    let s = it.next().map_or(Some(0), |s| s.trim().parse().ok())?;
    if it.next().is_some() {
        return None;
    }
    let micro = match frac {
        None => 0,
        Some(f) => {
            let digits: String = f.chars().take(6).collect();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            format!("{digits:0<6}").parse().ok()?
        }
    };
    Some((h, m, s, micro))
}

fn parse_datetime(b: &[u8]) -> Option<Dt> {
    let s = std::str::from_utf8(b).ok()?.trim();
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut it = date.split('-');
    let mut dt = Dt {
        year: it.next()?.parse().ok()?,
        month: it.next()?.parse().ok()?,
        day: it.next()?.parse().ok()?,
        ..Dt::default()
    };
    if it.next().is_some() {
        return None;
    }
    if let Some(t) = time {
        let (h, m, sec, micro) = parse_hms(t)?;
        dt.hour = u8::try_from(h).ok()?;
        dt.minute = m;
        dt.second = sec;
        dt.micro = micro;
    }
    Some(dt)
}

fn as_datetime(v: &Value) -> Dt {
    match v {
        Value::Date { year, month, day } => Dt {
            year: *year,
            month: *month,
            day: *day,
            ..Dt::default()
        },
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        } => Dt {
            year: *year,
            month: *month,
            day: *day,
            hour: *hour,
            minute: *minute,
            second: *second,
            micro: *micro,
        },
        Value::Bytes(b) => parse_datetime(b).unwrap_or_default(),
        _ => Dt::default(),
    }
}

/// (negative, total hours, minutes, seconds, micro)
fn as_time(v: &Value) -> (bool, u64, u8, u8, u32) {
    match v {
        Value::Time {
            negative,
            days,
            hours,
            minutes,
            seconds,
            micro,
        } => (
            *negative,
            *days as u64 * 24 + *hours as u64,
            *minutes,
            *seconds,
            *micro,
        ),
        Value::DateTime {
            hour,
            minute,
            second,
            micro,
            ..
        } => (false, *hour as u64, *minute, *second, *micro),
        Value::Bytes(b) => {
            let s = String::from_utf8_lossy(b);
            let s = s.trim();
            let (neg, s) = match s.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, s),
            };
            // Optional "D " day prefix.
            let parsed = match s.split_once(' ') {
                Some((d, rest)) => d
                    .parse::<u64>()
                    .ok()
                    .and_then(|d| parse_hms(rest).map(|(h, m, sec, us)| (d * 24 + h, m, sec, us))),
                None => parse_hms(s),
            };
            parsed.map_or((false, 0, 0, 0, 0), |(h, m, sec, us)| (neg, h, m, sec, us))
        }
        _ => (false, 0, 0, 0, 0),
    }
}

// ---------------------------------------------------------------- binary rows

fn put_binary_datetime(out: &mut Vec<u8>, dt: Dt, date_only: bool) {
    let time_zero = dt.hour == 0 && dt.minute == 0 && dt.second == 0 && dt.micro == 0;
    let len = if dt == Dt::default() {
        0
    } else if date_only || time_zero {
        4
    } else if dt.micro == 0 {
        7
    } else {
        11
    };
    out.push(len);
    if len >= 4 {
        out.extend_from_slice(&dt.year.to_le_bytes());
        out.extend_from_slice(&[dt.month, dt.day]);
    }
    if len >= 7 {
        out.extend_from_slice(&[dt.hour, dt.minute, dt.second]);
    }
    if len == 11 {
        out.extend_from_slice(&dt.micro.to_le_bytes());
    }
}

fn put_binary_time(
    out: &mut Vec<u8>,
    (negative, hours, minutes, seconds, micro): (bool, u64, u8, u8, u32),
) {
    if hours == 0 && minutes == 0 && seconds == 0 && micro == 0 {
        out.push(0);
        return;
    }
    out.push(if micro == 0 { 8 } else { 12 });
    out.push(negative as u8);
    out.extend_from_slice(&u32::try_from(hours / 24).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&[(hours % 24) as u8, minutes, seconds]);
    if micro != 0 {
        out.extend_from_slice(&micro.to_le_bytes());
    }
}

fn put_binary_value(out: &mut Vec<u8>, v: &Value, col: &ColumnDef) {
    use ColumnType as T;
    match col.column_type {
        T::Tiny => out.push(as_i64(v) as u8),
        T::Short | T::Year => out.extend_from_slice(&(as_i64(v) as u16).to_le_bytes()),
        T::Long | T::Int24 => out.extend_from_slice(&(as_i64(v) as u32).to_le_bytes()),
        T::LongLong => out.extend_from_slice(&(as_i64(v) as u64).to_le_bytes()),
        T::Float => {
            let f = match v {
                Value::Float(f) => *f,
                other => as_f64(other) as f32,
            };
            out.extend_from_slice(&f.to_le_bytes());
        }
        T::Double => out.extend_from_slice(&as_f64(v).to_le_bytes()),
        T::Date => put_binary_datetime(out, as_datetime(v), true),
        T::DateTime | T::Timestamp => put_binary_datetime(out, as_datetime(v), false),
        T::Time => put_binary_time(out, as_time(v)),
        _ => match v {
            Value::Bytes(b) => put_lenenc_bytes(out, b),
            other => put_lenenc_bytes(out, text_of(other, Some(col)).as_bytes()),
        },
    }
}

/// Append one binary-protocol row packet payload. Missing cells are NULL,
/// extra cells are ignored; NULL-typed columns are always NULL.
pub(crate) fn put_binary_row(out: &mut Vec<u8>, cols: &[ColumnDef], row: &[Value]) {
    out.push(0x00);
    let bitmap_at = out.len();
    out.resize(bitmap_at + (cols.len() + 7 + 2) / 8, 0);
    for (i, col) in cols.iter().enumerate() {
        let v = row.get(i).unwrap_or(&Value::Null);
        if matches!(v, Value::Null) || col.column_type == ColumnType::Null {
            let bit = i + 2;
            out[bitmap_at + bit / 8] |= 1 << (bit % 8);
        } else {
            put_binary_value(out, v, col);
        }
    }
}

// ---------------------------------------------------------------- parameters

/// Decode one COM_STMT_EXECUTE parameter of wire type `ty`.
pub(crate) fn decode_param(r: &mut Reader<'_>, ty: u8, unsigned: bool) -> Parse<Value> {
    let int = |v: i64, u: u64| {
        if unsigned {
            Value::UInt(u)
        } else {
            Value::Int(v)
        }
    };
    Ok(match ty {
        0x06 => Value::Null,
        0x01 => {
            let b = r.u8()?;
            int(b as i8 as i64, b as u64)
        }
        0x02 | 0x0d => {
            let b = r.u16()?;
            int(b as i16 as i64, b as u64)
        }
        0x03 | 0x09 => {
            let b = r.u32()?;
            int(b as i32 as i64, b as u64)
        }
        0x08 => {
            let b = r.u64()?;
            int(b as i64, b)
        }
        0x04 => Value::Float(f32::from_bits(r.u32()?)),
        0x05 => Value::Double(f64::from_bits(r.u64()?)),
        0x07 | 0x0a | 0x0c => {
            let len = r.u8()? as usize;
            let mut b = Reader::new(r.bytes(len)?);
            let mut dt = Dt::default();
            if len >= 4 {
                dt.year = b.u16()?;
                dt.month = b.u8()?;
                dt.day = b.u8()?;
            }
            if len >= 7 {
                dt.hour = b.u8()?;
                dt.minute = b.u8()?;
                dt.second = b.u8()?;
            }
            if len >= 11 {
                dt.micro = b.u32()?;
            }
            if ty == 0x0a {
                Value::Date {
                    year: dt.year,
                    month: dt.month,
                    day: dt.day,
                }
            } else {
                Value::DateTime {
                    year: dt.year,
                    month: dt.month,
                    day: dt.day,
                    hour: dt.hour,
                    minute: dt.minute,
                    second: dt.second,
                    micro: dt.micro,
                }
            }
        }
        0x0b => {
            let len = r.u8()? as usize;
            let mut b = Reader::new(r.bytes(len)?);
            let mut t = (false, 0u32, 0u8, 0u8, 0u8, 0u32);
            if len >= 8 {
                t = (b.u8()? != 0, b.u32()?, b.u8()?, b.u8()?, b.u8()?, 0);
            }
            if len >= 12 {
                t.5 = b.u32()?;
            }
            Value::Time {
                negative: t.0,
                days: t.1,
                hours: t.2,
                minutes: t.3,
                seconds: t.4,
                micro: t.5,
            }
        }
        // DECIMAL, VARCHAR, BIT, the 0xf2.. string/blob/json/vector types.
        0x00 | 0xf6 => Value::Decimal(String::from_utf8_lossy(r.lenenc_bytes()?).into_owned()),
        0x0f | 0x10 | 0xf2..=0xff => Value::Bytes(r.lenenc_bytes()?.to_vec()),
        _ => return Err(Malformed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_like_mysql() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-4, "0.0001"),
            (1.5e-4, "0.00015"),
            (1e-5, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (1e-100, "1e-100"),
            (123456789012345.0, "123456789012345"),
            (1e14, "100000000000000"),
            (1e15, "1e15"),
            (1.2345e15, "1.2345e15"),
            (1e20, "1e20"),
            (-1e20, "-1e20"),
            (1.7976931348623157e308, "1.7976931348623157e308"),
            (5e-324, "5e-324"),
            (2.71875, "2.71875"),
            (100.0, "100"),
        ];
        for (v, want) in cases {
            assert_eq!(format_double(*v), *want, "{v:?}");
        }
        assert_eq!(format_double(f64::NAN), "NaN");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn floats_use_f32_shortest_digits() {
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(2.7), "2.7");
        assert_eq!(format_float(16777216.0), "16777216");
        assert_eq!(format_float(1e-5), "1e-05");
        assert_eq!(format_float(3.4028235e38), "3.4028235e38");
        assert_eq!(format_double(0.1f32 as f64), "0.10000000149011612");
    }

    fn col(t: ColumnType, decimals: u8) -> ColumnDef {
        ColumnDef {
            decimals,
            ..ColumnDef::new("c", t)
        }
    }

    fn text(v: Value, c: &ColumnDef) -> Vec<u8> {
        let mut out = Vec::new();
        put_text_value(&mut out, &v, c);
        out
    }

    #[test]
    fn text_values() {
        let vs = col(ColumnType::VarString, 0);
        assert_eq!(text(Value::Null, &vs), [0xfb]);
        assert_eq!(text(Value::Int(-42), &vs), b"\x03-42");
        assert_eq!(
            text(Value::UInt(u64::MAX), &vs),
            b"\x1418446744073709551615"
        );
        assert_eq!(
            text(
                Value::Date {
                    year: 2024,
                    month: 2,
                    day: 9
                },
                &vs
            ),
            b"\x0a2024-02-09"
        );
        let dt = Value::DateTime {
            year: 2024,
            month: 12,
            day: 31,
            hour: 23,
            minute: 5,
            second: 7,
            micro: 0,
        };
        assert_eq!(text(dt.clone(), &vs), b"\x132024-12-31 23:05:07");
        let dtf = Value::DateTime {
            year: 2024,
            month: 12,
            day: 31,
            hour: 23,
            minute: 5,
            second: 7,
            micro: 120,
        };
        assert_eq!(text(dtf.clone(), &vs), b"\x1a2024-12-31 23:05:07.000120");
        // A DATETIME(3) column prints exactly three digits.
        assert_eq!(
            text(dt, &col(ColumnType::DateTime, 3)),
            b"\x172024-12-31 23:05:07.000"
        );
        let t = Value::Time {
            negative: true,
            days: 1,
            hours: 2,
            minutes: 3,
            seconds: 4,
            micro: 500_000,
        };
        assert_eq!(text(t, &vs), b"\x10-26:03:04.500000");
        let t0 = Value::Time {
            negative: false,
            days: 0,
            hours: 0,
            minutes: 0,
            seconds: 0,
            micro: 0,
        };
        assert_eq!(text(t0, &vs), b"\x0800:00:00");
        // DOUBLE(10,2) prints fixed decimals; plain DOUBLE is shortest.
        assert_eq!(
            text(Value::Double(1.5), &col(ColumnType::Double, 2)),
            b"\x041.50"
        );
        assert_eq!(
            text(Value::Double(1.5), &col(ColumnType::Double, 31)),
            b"\x031.5"
        );
    }

    #[test]
    fn binary_conversions() {
        let mut out = Vec::new();
        put_binary_value(&mut out, &Value::Int(7), &col(ColumnType::Double, 31));
        assert_eq!(out, 7.0f64.to_le_bytes());
        out.clear();
        put_binary_value(
            &mut out,
            &Value::Bytes(b"2024-01-02 03:04:05.5".to_vec()),
            &col(ColumnType::DateTime, 0),
        );
        assert_eq!(out, [11, 0xe8, 0x07, 1, 2, 3, 4, 5, 0x20, 0xa1, 0x07, 0x00]);
        out.clear();
        put_binary_value(
            &mut out,
            &Value::Bytes(b"-838:59:59".to_vec()),
            &col(ColumnType::Time, 0),
        );
        assert_eq!(out, [8, 1, 34, 0, 0, 0, 22, 59, 59]);
        out.clear();
        put_binary_value(
            &mut out,
            &Value::Double(2.5),
            &col(ColumnType::VarString, 0),
        );
        assert_eq!(out, b"\x032.5");
        out.clear();
        put_binary_value(
            &mut out,
            &Value::Bytes(b"junk".to_vec()),
            &col(ColumnType::Date, 0),
        );
        assert_eq!(out, [0]);
    }

    #[test]
    fn params_never_panic_on_truncation() {
        for ty in 0u8..=255 {
            for len in 0..4 {
                let data = vec![0xfeu8; len];
                let _ = decode_param(&mut Reader::new(&data), ty, false);
                let _ = decode_param(&mut Reader::new(&data), ty, true);
            }
        }
    }
}
