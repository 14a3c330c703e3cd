//! Date arithmetic with MySQL intervals: `DATE_ADD(d, INTERVAL v UNIT)`, `DATE_SUB`, and the
//! operator forms `d + INTERVAL v UNIT`, `INTERVAL v UNIT + d`, `d - INTERVAL v UNIT`.
//!
//! The rewrite turns each into `mysql_date_add(d, v, 'UNIT', sign)` — or `mysql_datetime_add`
//! when the unit has a time part — so the value may be any expression (`INTERVAL (n + 1) DAY`,
//! a column) and the unit any of MySQL's, compound ones included (`'1 2' DAY_HOUR`,
//! `'1-2' YEAR_MONTH`). The result's type follows MySQL: a DATE stays a DATE under a date unit
//! and becomes a DATETIME under a time unit; text gives text (`'2024-01-02'` or
//! `'2024-01-02 10:00:00'`); anything else gives a DATETIME.

use chrono::{Duration, NaiveDateTime};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::ScalarUDF;

use super::rowwise::{self, arg_text, udf};
use super::time::{add_months, arg_datetime, date_value, datetime_value, format_datetime};

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        udf("mysql_date_add", 4, 4, |a| result_type(a, false), |a| add(a, false)),
        udf("mysql_datetime_add", 4, 4, |a| result_type(a, true), |a| add(a, true)),
    ]
}

/// The function a unit's arithmetic runs in: units without a time part keep a DATE a DATE.
pub fn function_for(unit: &str) -> &'static str {
    if matches!(unit, "YEAR" | "QUARTER" | "MONTH" | "WEEK" | "DAY" | "YEAR_MONTH") {
        "mysql_date_add"
    } else {
        "mysql_datetime_add"
    }
}

fn result_type(a: &[DataType], timed: bool) -> DataType {
    match a.first() {
        Some(t) if t.is_string() => DataType::Utf8,
        Some(DataType::Date32) if !timed => DataType::Date32,
        _ => DataType::Timestamp(TimeUnit::Microsecond, None),
    }
}

/// An interval as months, days and microseconds.
#[derive(Debug, PartialEq)]
struct Span {
    months: i64,
    days: i64,
    micros: i64,
}

/// The parts a unit's value names, most significant first; a trailing microsecond part of a
/// compound unit is a fraction (`'1.5'` SECOND_MICROSECOND is 1.5 seconds).
fn parts(unit: &str) -> Option<&'static [&'static str]> {
    Some(match unit {
        "SECOND_MICROSECOND" => &["SECOND", "MICROSECOND"],
        "MINUTE_MICROSECOND" => &["MINUTE", "SECOND", "MICROSECOND"],
        "MINUTE_SECOND" => &["MINUTE", "SECOND"],
        "HOUR_MICROSECOND" => &["HOUR", "MINUTE", "SECOND", "MICROSECOND"],
        "HOUR_SECOND" => &["HOUR", "MINUTE", "SECOND"],
        "HOUR_MINUTE" => &["HOUR", "MINUTE"],
        "DAY_MICROSECOND" => &["DAY", "HOUR", "MINUTE", "SECOND", "MICROSECOND"],
        "DAY_SECOND" => &["DAY", "HOUR", "MINUTE", "SECOND"],
        "DAY_MINUTE" => &["DAY", "HOUR", "MINUTE"],
        "DAY_HOUR" => &["DAY", "HOUR"],
        "YEAR_MONTH" => &["YEAR", "MONTH"],
        _ => return None,
    })
}

fn one(unit: &str, n: i64, span: &mut Span) -> Option<()> {
    match unit {
        "MICROSECOND" => span.micros += n,
        "SECOND" => span.micros += n.checked_mul(1_000_000)?,
        "MINUTE" => span.micros += n.checked_mul(60_000_000)?,
        "HOUR" => span.micros += n.checked_mul(3_600_000_000)?,
        "DAY" => span.days += n,
        "WEEK" => span.days += n.checked_mul(7)?,
        "MONTH" => span.months += n,
        "QUARTER" => span.months += n.checked_mul(3)?,
        "YEAR" => span.months += n.checked_mul(12)?,
        _ => return None,
    }
    Some(())
}

/// A value in a unit as a span; None for an unknown unit or a value with too many parts.
fn span_of(v: &ScalarValue, unit: &str) -> Option<Span> {
    let mut span = Span { months: 0, days: 0, micros: 0 };
    let Some(names) = parts(unit) else {
        let x = rowwise::arg_f64(v)?;
        if unit == "SECOND" {
            span.micros = (x * 1e6).round() as i64;
        } else {
            one(unit, x.round() as i64, &mut span)?;
        }
        return Some(span);
    };
    // Compound: the text's digit groups, right-aligned to the unit's parts (MySQL takes a
    // short value as leaving out the leftmost parts); a leading minus negates the whole.
    let text = arg_text(v)?;
    let text = text.trim();
    let negative = text.starts_with('-');
    let groups: Vec<&str> = text.split(|c: char| !c.is_ascii_digit()).filter(|g| !g.is_empty()).collect();
    if groups.len() > names.len() {
        return None;
    }
    for (name, group) in names[names.len() - groups.len()..].iter().zip(&groups) {
        let mut n: i64 = group.parse().ok()?;
        if *name == "MICROSECOND" && names.len() > 1 {
            n = n.checked_mul(10i64.pow(6u32.saturating_sub(group.len() as u32)))?;
        }
        one(name, if negative { -n } else { n }, &mut span)?;
    }
    Some(span)
}

fn apply(d: &NaiveDateTime, s: &Span, sign: i64) -> Option<NaiveDateTime> {
    add_months(d, sign * s.months)?
        .checked_add_signed(Duration::days(sign * s.days))?
        .checked_add_signed(Duration::microseconds(sign * s.micros))
}

fn add(a: &[ScalarValue], timed: bool) -> Result<ScalarValue> {
    let ret = result_type(&[a[0].data_type()], timed);
    let (Some(d), Some(unit), Some(sign)) = (arg_datetime(&a[0]), arg_text(&a[2]), rowwise::arg_i64(&a[3])) else {
        return ScalarValue::try_from(&ret);
    };
    let Some(r) = span_of(&a[1], &unit).and_then(|s| apply(&d, &s, sign)) else { return ScalarValue::try_from(&ret) };
    Ok(match ret {
        DataType::Date32 => date_value(r.date()),
        DataType::Utf8 => {
            let date_only = !timed && arg_text(&a[0]).is_some_and(|t| !t.trim().contains([' ', 'T', ':']));
            ScalarValue::Utf8(Some(if date_only { r.format("%Y-%m-%d").to_string() } else { format_datetime(&r, 6) }))
        }
        _ => datetime_value(r),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.into()))
    }

    #[test]
    fn compound_values_right_align_and_scale_fractions() {
        let s = |v: &str, u: &str| span_of(&text(v), u);
        assert_eq!(s("1 2", "DAY_HOUR"), Some(Span { months: 0, days: 1, micros: 2 * 3_600_000_000 }));
        assert_eq!(s("1:10", "DAY_SECOND"), Some(Span { months: 0, days: 0, micros: 70_000_000 }));
        assert_eq!(s("1.5", "SECOND_MICROSECOND"), Some(Span { months: 0, days: 0, micros: 1_500_000 }));
        assert_eq!(s("-1-2", "YEAR_MONTH"), Some(Span { months: -14, days: 0, micros: 0 }));
        assert_eq!(s("1 2 3", "DAY_HOUR"), None);
        assert_eq!(span_of(&ScalarValue::Float64(Some(1.5)), "DAY"), Some(Span { months: 0, days: 2, micros: 0 }));
        assert_eq!(span_of(&ScalarValue::Int64(Some(1)), "FORTNIGHT"), None);
    }

    #[test]
    fn result_follows_the_base_and_unit() {
        let run = |base: ScalarValue, v: i64, unit: &str| {
            add(&[base, ScalarValue::Int64(Some(v)), text(unit), ScalarValue::Int64(Some(1))], function_for(unit) == "mysql_datetime_add").unwrap()
        };
        assert_eq!(run(text("2024-01-31"), 1, "MONTH"), text("2024-02-29"));
        assert_eq!(run(text("2024-01-01"), 1, "HOUR"), text("2024-01-01 01:00:00"));
        assert_eq!(run(text("2024-01-01 10:00"), 1, "DAY"), text("2024-01-02 10:00:00"));
        assert_eq!(run(ScalarValue::Date32(Some(0)), 1, "DAY"), ScalarValue::Date32(Some(1)));
        assert_eq!(run(ScalarValue::Date32(Some(0)), 1, "HOUR"), ScalarValue::TimestampMicrosecond(Some(3_600_000_000), None));
        assert_eq!(run(text("nonsense"), 1, "DAY"), ScalarValue::Utf8(None));
    }
}
