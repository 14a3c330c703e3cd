//! Date and time functions as MySQL (and TiDB) define them: formatting (`DATE_FORMAT`,
//! `TIME_FORMAT`, `STR_TO_DATE`), time zones by name or offset (`CONVERT_TZ`, with the IANA
//! database of `chrono-tz`), Unix time, differences and arithmetic (`TIMESTAMPDIFF`,
//! `TIMESTAMPADD`; intervals are in `interval.rs`), and the calendar helpers (`DAYOFWEEK`,
//! `LAST_DAY`, …).
//!
//! Values are naive date-times: the server's time zone is UTC, as `system_time_zone` says.

use chrono::{Datelike, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::ScalarUDF;

use super::rowwise::{self, arg_i64, arg_text, udf, MANY};

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        udf("date_format", 2, 2, rowwise::text, date_format),
        udf("time_format", 2, 2, rowwise::text, time_format),
        udf("str_to_date", 2, 2, rowwise::datetime, str_to_date),
        udf("convert_tz", 3, 3, rowwise::datetime, convert_tz),
        udf("unix_timestamp", 1, 1, rowwise::int, unix_timestamp),
        udf("from_unixtime", 1, 2, |a| if a.len() == 2 { DataType::Utf8 } else { rowwise::datetime(a) }, from_unixtime),
        udf("timestampdiff", 3, 3, rowwise::int, timestampdiff),
        udf("timestampadd", 3, 3, rowwise::datetime, timestampadd),
        udf("datediff", 2, 2, rowwise::int, datediff),
        udf("dayofweek", 1, 1, rowwise::int, |a| cal(a, |d| d.weekday().number_from_sunday() as i64)),
        udf("weekday", 1, 1, rowwise::int, |a| cal(a, |d| d.weekday().num_days_from_monday() as i64)),
        udf("dayofyear", 1, 1, rowwise::int, |a| cal(a, |d| d.ordinal() as i64)),
        udf("to_days", 1, 1, rowwise::int, |a| cal(a, |d| d.num_days_from_ce() as i64 + 365)),
        udf("dayname", 1, 1, rowwise::text, |a| cal_text(a, |d| d.format("%A").to_string())),
        udf("monthname", 1, 1, rowwise::text, |a| cal_text(a, |d| d.format("%B").to_string())),
        udf("last_day", 1, 1, rowwise::date, last_day),
        udf("from_days", 1, 1, rowwise::date, from_days),
        udf("makedate", 2, 2, rowwise::date, makedate),
        udf("time_to_sec", 1, 1, rowwise::int, time_to_sec),
        udf("sec_to_time", 1, 1, rowwise::text, sec_to_time),
        udf("utc_timestamp", 0, 1, rowwise::datetime, |_| Ok(datetime_value(chrono::Utc::now().naive_utc()))),
        udf("utc_date", 0, 0, rowwise::date, |_| Ok(date_value(chrono::Utc::now().date_naive()))),
        udf("yearweek", 1, 2, rowwise::int, yearweek),
        udf("microsecond", 1, 1, rowwise::int, |a| Ok(ScalarValue::Int64(arg_datetime(&a[0]).map(|d| (d.nanosecond() / 1000) as i64)))),
        udf("mysql_curtime", 0, MANY, rowwise::text, |_| Ok(ScalarValue::Utf8(Some(chrono::Utc::now().format("%H:%M:%S").to_string())))),
        udf("mysql_time_part", 2, 2, rowwise::int, time_part),
        udf("mysql_time", 1, 1, rowwise::text, |a| Ok(ScalarValue::Utf8(arg_time(&a[0]).map(|(s, us)| time_text(s, us))))),
        udf("mysql_timestamp", 1, 2, rowwise::datetime, timestamp),
        udf("to_seconds", 1, 1, rowwise::int, |a| {
            Ok(ScalarValue::Int64(arg_datetime(&a[0]).map(|d| (d.date().num_days_from_ce() as i64 + 365) * 86400 + d.num_seconds_from_midnight() as i64)))
        }),
        udf("addtime", 2, 2, rowwise::text, |a| add_time(a, 1)),
        udf("subtime", 2, 2, rowwise::text, |a| add_time(a, -1)),
        udf("timediff", 2, 2, rowwise::text, timediff),
        udf("maketime", 3, 3, rowwise::text, maketime),
        udf("period_add", 2, 2, rowwise::int, period_add),
        udf("period_diff", 2, 2, rowwise::int, |a| {
            Ok(ScalarValue::Int64(arg_i64(&a[0]).zip(arg_i64(&a[1])).map(|(p, q)| period_months(p) - period_months(q))))
        }),
        udf("get_format", 2, 2, rowwise::text, get_format),
    ]
}

/// HOUR / MINUTE / SECOND of a time or date-time (`HOUR('100:00:00')` is 100, as in MySQL).
fn time_part(a: &[ScalarValue]) -> Result<ScalarValue> {
    let part = arg_text(&a[0]).unwrap_or_default();
    Ok(ScalarValue::Int64(arg_time(&a[1]).map(|(s, _)| {
        let s = s.abs();
        match part.as_str() {
            "hour" => s / 3600,
            "minute" => s / 60 % 60,
            _ => s % 60,
        }
    })))
}

/// A TIME value's text: `[-]hh:mm:ss[.ffffff]`, hours capped at 838 as MySQL's TIME range is.
fn time_text(secs: i64, micros: u32) -> String {
    time_text_micros(signed_micros((secs, micros)))
}

fn time_text_micros(total: i64) -> String {
    let sign = if total < 0 { "-" } else { "" };
    let (s, micros) = (total.unsigned_abs() / 1_000_000, total.unsigned_abs() % 1_000_000);
    const CAP: u64 = 838 * 3600 + 59 * 60 + 59;
    let (s, micros) = if s > CAP { (CAP, 0) } else { (s, micros) };
    let base = format!("{sign}{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
    if micros == 0 { base } else { format!("{base}.{micros:06}") }
}

/// TIMESTAMP(expr [, time]): the date-time, plus the time when given.
fn timestamp(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(d) = arg_datetime(&a[0]) else { return Ok(ScalarValue::TimestampMicrosecond(None, None)) };
    let d = match a.get(1) {
        Some(t) => match arg_time(t) {
            Some(t) => match d.checked_add_signed(Duration::microseconds(signed_micros(t))) {
                Some(d) => d,
                None => return Ok(ScalarValue::TimestampMicrosecond(None, None)),
            },
            None => return Ok(ScalarValue::TimestampMicrosecond(None, None)),
        },
        None => d,
    };
    Ok(datetime_value(d))
}

fn is_datetime_text(v: &ScalarValue) -> bool {
    match v {
        ScalarValue::Utf8(Some(s)) => s.trim().len() >= 8 && s.contains('-') && !s.trim_start().starts_with('-'),
        other => matches!(other.data_type(), DataType::Timestamp(..) | DataType::Date32),
    }
}

/// Saturating: beyond TIME's range every value shows as its cap anyway.
fn signed_micros((s, us): (i64, u32)) -> i64 {
    s.saturating_mul(1_000_000).saturating_add(if s < 0 { -(us as i64) } else { us as i64 })
}

/// ADDTIME / SUBTIME: a date-time stays a date-time, a time stays a time.
fn add_time(a: &[ScalarValue], sign: i64) -> Result<ScalarValue> {
    let Some(t) = arg_time(&a[1]) else { return Ok(rowwise::null_text()) };
    let delta = sign.saturating_mul(signed_micros(t));
    if is_datetime_text(&a[0]) {
        let Some(d) = arg_datetime(&a[0]) else { return Ok(rowwise::null_text()) };
        return Ok(ScalarValue::Utf8(d.checked_add_signed(Duration::microseconds(delta)).map(|r| format_datetime(&r, 6))));
    }
    let Some(base) = arg_time(&a[0]) else { return Ok(rowwise::null_text()) };
    let total = signed_micros(base).saturating_add(delta);
    Ok(ScalarValue::Utf8(Some(time_text_micros(total))))
}

/// TIMEDIFF: both date-times or both times; the difference as a time.
fn timediff(a: &[ScalarValue]) -> Result<ScalarValue> {
    let micros = if is_datetime_text(&a[0]) && is_datetime_text(&a[1]) {
        match (arg_datetime(&a[0]), arg_datetime(&a[1])) {
            (Some(x), Some(y)) => (x - y).num_microseconds(),
            _ => None,
        }
    } else if !is_datetime_text(&a[0]) && !is_datetime_text(&a[1]) {
        arg_time(&a[0]).zip(arg_time(&a[1])).map(|(x, y)| signed_micros(x).saturating_sub(signed_micros(y)))
    } else {
        None
    };
    Ok(ScalarValue::Utf8(micros.map(time_text_micros)))
}

fn maketime(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(h), Some(m), Some(s)) = (arg_i64(&a[0]), arg_i64(&a[1]), rowwise::arg_f64(&a[2])) else { return Ok(rowwise::null_text()) };
    if !(0..60).contains(&m) || !(0.0..60.0).contains(&s) {
        return Ok(rowwise::null_text());
    }
    let whole = s.trunc() as i64;
    let micros = ((s - s.trunc()) * 1e6).round() as u32;
    let secs = h.saturating_abs().saturating_mul(3600).saturating_add(m * 60 + whole);
    Ok(ScalarValue::Utf8(Some(time_text(if h < 0 { -secs } else { secs }, micros))))
}

/// A period (`YYMM` or `YYYYMM`) as months since year 0.
fn period_months(p: i64) -> i64 {
    let (y, m) = (p / 100, p % 100);
    let y = if y < 70 { y + 2000 } else if y < 100 { y + 1900 } else { y };
    y * 12 + m - 1
}

fn period_add(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(p), Some(n)) = (arg_i64(&a[0]), arg_i64(&a[1])) else { return Ok(ScalarValue::Int64(None)) };
    if p == 0 {
        return Ok(ScalarValue::Int64(Some(0)));
    }
    let months = period_months(p) + n;
    Ok(ScalarValue::Int64(Some(months / 12 * 100 + months % 12 + 1)))
}

/// GET_FORMAT(DATE | TIME | DATETIME | TIMESTAMP, 'EUR' | 'USA' | 'JIS' | 'ISO' | 'INTERNAL').
fn get_format(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(kind), Some(std)) = (arg_text(&a[0]), arg_text(&a[1])) else { return Ok(rowwise::null_text()) };
    let f = match (kind.to_ascii_uppercase().as_str(), std.to_ascii_uppercase().as_str()) {
        ("DATE", "USA") => "%m.%d.%Y",
        ("DATE", "JIS" | "ISO") => "%Y-%m-%d",
        ("DATE", "EUR") => "%d.%m.%Y",
        ("DATE", "INTERNAL") => "%Y%m%d",
        ("DATETIME" | "TIMESTAMP", "USA" | "EUR") => "%Y-%m-%d %H.%i.%s",
        ("DATETIME" | "TIMESTAMP", "JIS" | "ISO") => "%Y-%m-%d %H:%i:%s",
        ("DATETIME" | "TIMESTAMP", "INTERNAL") => "%Y%m%d%H%i%s",
        ("TIME", "USA") => "%h:%i:%s %p",
        ("TIME", "JIS" | "ISO") => "%H:%i:%s",
        ("TIME", "EUR") => "%H.%i.%s",
        ("TIME", "INTERNAL") => "%H%i%s",
        _ => return Ok(rowwise::null_text()),
    };
    Ok(ScalarValue::Utf8(Some(f.to_string())))
}

// ---- values ----------------------------------------------------------------------------------

pub fn datetime_value(d: NaiveDateTime) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(d.and_utc().timestamp_micros()), None)
}

pub fn date_value(d: NaiveDate) -> ScalarValue {
    ScalarValue::Date32(Some((d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32))
}

/// A date, date-time or their text (`'2024-01-31'`, `'2024-01-31 10:00:00.5'`) as a date-time.
pub fn arg_datetime(v: &ScalarValue) -> Option<NaiveDateTime> {
    let micros = |m: i64| chrono::DateTime::from_timestamp_micros(m).map(|d| d.naive_utc());
    match v {
        ScalarValue::TimestampMicrosecond(Some(t), _) => micros(*t),
        ScalarValue::TimestampNanosecond(Some(t), _) => micros(t.div_euclid(1000)),
        ScalarValue::TimestampMillisecond(Some(t), _) => micros(t * 1000),
        ScalarValue::TimestampSecond(Some(t), _) => micros(t * 1_000_000),
        ScalarValue::Date32(Some(d)) => crate::sql::types::days_to_date(*d).and_then(|d| d.and_hms_opt(0, 0, 0)),
        ScalarValue::Date64(Some(ms)) => micros(ms * 1000),
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => parse_datetime(s),
        ScalarValue::Int64(Some(n)) => parse_datetime(&n.to_string()),
        _ => None,
    }
}

pub use crate::sql::types::parse_datetime;

/// `YYYY-MM-DD hh:mm:ss` with `fsp` fractional digits when the value has a fraction.
pub fn format_datetime(d: &NaiveDateTime, fsp: usize) -> String {
    let base = d.format("%Y-%m-%d %H:%M:%S").to_string();
    let micros = d.nanosecond() / 1000;
    if fsp == 0 || micros == 0 {
        return base;
    }
    format!("{base}.{:06}", micros)[..20 + fsp.min(6)].to_string()
}

/// A TIME argument (`'10:30:00'`, `'-838:59:59'`, a date-time) as signed seconds and microseconds.
fn arg_time(v: &ScalarValue) -> Option<(i64, u32)> {
    if let Some(s) = match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(s.trim()),
        _ => None,
    } {
        if s.len() <= 24 && s.contains(':') && !s.contains('-') || s.starts_with('-') && s.contains(':') && s.len() <= 25 {
            let (neg, body) = match s.strip_prefix('-') {
                Some(b) => (true, b),
                None => (false, s),
            };
            // `D hh:mm:ss`: a day count before the time (ADDTIME's '1 1:1:1').
            let (days, body) = match body.split_once(' ') {
                Some((d, rest)) => (d.trim().parse::<i64>().ok()?, rest.trim()),
                None => (0, body),
            };
            let (hms, frac) = body.split_once('.').unwrap_or((body, ""));
            let parts: Vec<i64> = hms.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
            // Checked: a time too large for any TIME is no time (NULL), not an overflow.
            let hms = |h: i64, m: i64, s: i64| h.checked_mul(3600)?.checked_add(m.checked_mul(60)?)?.checked_add(s);
            let secs = match parts.as_slice() {
                [h, m, s] => hms(*h, *m, *s)?,
                [h, m] => hms(*h, *m, 0)?,
                _ => return None,
            };
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let micros = if frac.is_empty() { 0 } else { format!("{frac:0<6}")[..6].parse().ok()? };
            let secs = secs.checked_add(days.checked_mul(86400)?)?;
            return Some((if neg { -secs } else { secs }, micros));
        }
    }
    let d = arg_datetime(v)?;
    Some((d.num_seconds_from_midnight() as i64, d.nanosecond() / 1000))
}

// ---- formatting --------------------------------------------------------------------------------

/// MySQL's `DATE_FORMAT` specifiers.
pub fn mysql_format(d: &NaiveDateTime, fmt: &str) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(f) = chars.next() else { break };
        if push_time_spec(&mut out, f, d.hour() as u64, d.minute() as u64, d.second() as u64, d.nanosecond() / 1000) {
            continue;
        }
        match f {
            'a' => out += &d.format("%a").to_string(),
            'b' => out += &d.format("%b").to_string(),
            'c' => out += &d.month().to_string(),
            'D' => {
                let day = d.day();
                let suffix = match (day % 10, day % 100) {
                    (_, 11..=13) => "th",
                    (1, _) => "st",
                    (2, _) => "nd",
                    (3, _) => "rd",
                    _ => "th",
                };
                out += &format!("{day}{suffix}");
            }
            'd' => out += &format!("{:02}", d.day()),
            'e' => out += &d.day().to_string(),
            'j' => out += &format!("{:03}", d.ordinal()),
            'M' => out += &d.format("%B").to_string(),
            'm' => out += &format!("{:02}", d.month()),
            'U' => out += &format!("{:02}", d.format("%U").to_string().parse::<u32>().unwrap_or(0)),
            'u' => out += &format!("{:02}", d.format("%W").to_string().parse::<u32>().unwrap_or(0)),
            'V' => out += &format!("{:02}", d.format("%U").to_string().parse::<u32>().unwrap_or(0).max(1)),
            'v' => out += &format!("{:02}", d.iso_week().week()),
            'W' => out += &d.format("%A").to_string(),
            'w' => out += &d.weekday().num_days_from_sunday().to_string(),
            'X' | 'Y' => out += &format!("{:04}", d.year()),
            'x' => out += &format!("{:04}", d.iso_week().year()),
            'y' => out += &format!("{:02}", d.year() % 100),
            other => out.push(other),
        }
    }
    out
}

/// The time-of-day specifiers, shared by `DATE_FORMAT` and `TIME_FORMAT` (whose hours may pass
/// 24): writes `spec` for `h:m:s.micros` and says whether it was one of them.
fn push_time_spec(out: &mut String, spec: char, h: u64, m: u64, s: u64, micros: u32) -> bool {
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    let ampm = if h % 24 < 12 { "AM" } else { "PM" };
    match spec {
        'H' => *out += &format!("{h:02}"),
        'k' => *out += &h.to_string(),
        'h' | 'I' => *out += &format!("{h12:02}"),
        'l' => *out += &h12.to_string(),
        'i' => *out += &format!("{m:02}"),
        'S' | 's' => *out += &format!("{s:02}"),
        'f' => *out += &format!("{micros:06}"),
        'p' => *out += ampm,
        'T' => *out += &format!("{h:02}:{m:02}:{s:02}"),
        'r' => *out += &format!("{h12:02}:{m:02}:{s:02} {ampm}"),
        _ => return false,
    }
    true
}

fn date_format(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(d), Some(f)) = (arg_datetime(&a[0]), arg_text(&a[1])) else { return Ok(rowwise::null_text()) };
    Ok(ScalarValue::Utf8(Some(mysql_format(&d, &f))))
}

fn time_format(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some((secs, micros)), Some(f)) = (arg_time(&a[0]), arg_text(&a[1])) else { return Ok(rowwise::null_text()) };
    let s = secs.unsigned_abs();
    let mut out = String::new();
    if secs < 0 {
        out.push('-');
    }
    let mut chars = f.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(x) = chars.next() else { break };
        if !push_time_spec(&mut out, x, s / 3600, (s / 60) % 60, s % 60, micros) {
            out.push(x);
        }
    }
    Ok(ScalarValue::Utf8(Some(out)))
}

/// MySQL format specifiers as chrono's, for parsing.
fn chrono_format(fmt: &str) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('i') => out += "%M",
            Some('s') | Some('S') => out += "%S",
            Some('M') => out += "%B",
            Some('c') => out += "%m",
            Some('e') => out += "%d",
            Some('f') => out += "%6f",
            Some('h') | Some('I') => out += "%I",
            Some('k') => out += "%H",
            Some('l') => out += "%I",
            Some('r') => out += "%I:%M:%S %p",
            Some('W') => out += "%A",
            Some(x) => {
                out.push('%');
                out.push(x);
            }
            None => {}
        }
    }
    out
}

fn str_to_date(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(s), Some(f)) = (arg_text(&a[0]), arg_text(&a[1])) else { return Ok(ScalarValue::TimestampMicrosecond(None, None)) };
    let cf = chrono_format(&f);
    let s = s.trim();
    let parsed = NaiveDateTime::parse_from_str(s, &cf)
        .ok()
        .or_else(|| NaiveDate::parse_from_str(s, &cf).ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
        .or_else(|| NaiveTime::parse_from_str(s, &cf).ok().map(|t| NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch").and_time(t)));
    Ok(ScalarValue::TimestampMicrosecond(parsed.map(|d| d.and_utc().timestamp_micros()), None))
}

// ---- time zones --------------------------------------------------------------------------------

/// A time zone as MySQL names it: `'+05:30'`, `'-08:00'`, `'SYSTEM'` (UTC here), `'UTC'`, or an
/// IANA name (`'Europe/Berlin'`).
enum Zone {
    Offset(chrono::FixedOffset),
    Named(chrono_tz::Tz),
}

fn parse_zone(s: &str) -> Option<Zone> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("system") || t.eq_ignore_ascii_case("utc") {
        return Some(Zone::Offset(chrono::FixedOffset::east_opt(0)?));
    }
    if let Some(rest) = t.strip_prefix(['+', '-']) {
        let (h, m) = rest.split_once(':')?;
        let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
        if h > 14 || m > 59 {
            return None;
        }
        let secs = (h * 3600 + m * 60) * if t.starts_with('-') { -1 } else { 1 };
        return Some(Zone::Offset(chrono::FixedOffset::east_opt(secs)?));
    }
    t.parse::<chrono_tz::Tz>().ok().map(Zone::Named)
}

impl Zone {
    /// The UTC instant of a wall-clock time here (the earlier one in a fold, none in a gap).
    fn to_utc(&self, d: &NaiveDateTime) -> Option<NaiveDateTime> {
        match self {
            Zone::Offset(o) => o.from_local_datetime(d).earliest().map(|x| x.naive_utc()),
            Zone::Named(z) => z.from_local_datetime(d).earliest().map(|x| x.naive_utc()),
        }
    }
    fn from_utc(&self, d: &NaiveDateTime) -> NaiveDateTime {
        match self {
            Zone::Offset(o) => o.from_utc_datetime(d).naive_local(),
            Zone::Named(z) => z.from_utc_datetime(d).naive_local(),
        }
    }
}

/// Whether `s` names a time zone this server knows (for `SET time_zone`).
pub fn is_time_zone(s: &str) -> bool {
    parse_zone(s).is_some()
}

fn convert_tz(a: &[ScalarValue]) -> Result<ScalarValue> {
    let none = ScalarValue::TimestampMicrosecond(None, None);
    let (Some(d), Some(from), Some(to)) = (arg_datetime(&a[0]), arg_text(&a[1]), arg_text(&a[2])) else { return Ok(none) };
    let (Some(from), Some(to)) = (parse_zone(&from), parse_zone(&to)) else { return Ok(none) };
    let Some(utc) = from.to_utc(&d) else { return Ok(none) };
    Ok(datetime_value(to.from_utc(&utc)))
}

// ---- Unix time -----------------------------------------------------------------------------------

fn unix_timestamp(a: &[ScalarValue]) -> Result<ScalarValue> {
    Ok(ScalarValue::Int64(arg_datetime(&a[0]).map(|d| d.and_utc().timestamp().max(0))))
}

fn from_unixtime(a: &[ScalarValue]) -> Result<ScalarValue> {
    let secs = rowwise::arg_f64(&a[0]);
    let d = secs.filter(|s| *s >= 0.0).and_then(|s| chrono::DateTime::from_timestamp_micros((s * 1e6).round() as i64)).map(|d| d.naive_utc());
    if a.len() == 2 {
        let f = arg_text(&a[1]);
        return Ok(ScalarValue::Utf8(d.zip(f).map(|(d, f)| mysql_format(&d, &f))));
    }
    Ok(ScalarValue::TimestampMicrosecond(d.map(|d| d.and_utc().timestamp_micros()), None))
}

// ---- differences and arithmetic --------------------------------------------------------------------

fn unit_of(v: &ScalarValue) -> Option<String> {
    arg_text(v).map(|u| u.trim().trim_start_matches("SQL_TSI_").trim_start_matches("sql_tsi_").to_ascii_uppercase())
}

/// Whole months from `a` to `b`, counting a month only once its day and time are reached (MySQL).
fn months_between(a: &NaiveDateTime, b: &NaiveDateTime) -> i64 {
    let mut months = (b.year() as i64 - a.year() as i64) * 12 + (b.month() as i64 - a.month() as i64);
    let rest_a = (a.day(), a.time());
    let rest_b = (b.day(), b.time());
    if months > 0 && rest_b < rest_a {
        months -= 1;
    } else if months < 0 && rest_b > rest_a {
        months += 1;
    }
    months
}

fn timestampdiff(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(unit), Some(x), Some(y)) = (unit_of(&a[0]), arg_datetime(&a[1]), arg_datetime(&a[2])) else {
        return Ok(ScalarValue::Int64(None));
    };
    let micros = (y - x).num_microseconds().unwrap_or(i64::MAX);
    let v = match unit.as_str() {
        "MICROSECOND" => micros,
        "SECOND" => micros / 1_000_000,
        "MINUTE" => micros / 60_000_000,
        "HOUR" => micros / 3_600_000_000,
        "DAY" => micros / 86_400_000_000,
        "WEEK" => micros / (7 * 86_400_000_000),
        "MONTH" => months_between(&x, &y),
        "QUARTER" => months_between(&x, &y) / 3,
        "YEAR" => months_between(&x, &y) / 12,
        other => return datafusion::common::exec_err!("Incorrect unit '{other}' in the call to TIMESTAMPDIFF"),
    };
    Ok(ScalarValue::Int64(Some(v)))
}

pub fn add_months(d: &NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    // MySQL clamps the day to the target month's last day (Jan 31 + 1 month = Feb 28/29).
    if n >= 0 {
        d.checked_add_months(Months::new(n as u32))
    } else {
        d.checked_sub_months(Months::new(n.unsigned_abs() as u32))
    }
}

fn add_unit(d: &NaiveDateTime, unit: &str, n: i64) -> Option<NaiveDateTime> {
    match unit {
        "MICROSECOND" => d.checked_add_signed(Duration::microseconds(n)),
        "SECOND" => d.checked_add_signed(Duration::seconds(n)),
        "MINUTE" => d.checked_add_signed(Duration::minutes(n)),
        "HOUR" => d.checked_add_signed(Duration::hours(n)),
        "DAY" => d.checked_add_signed(Duration::days(n)),
        "WEEK" => d.checked_add_signed(Duration::weeks(n)),
        "MONTH" => add_months(d, n),
        "QUARTER" => add_months(d, n * 3),
        "YEAR" => add_months(d, n * 12),
        _ => None,
    }
}

fn timestampadd(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(unit), Some(n), Some(d)) = (unit_of(&a[0]), arg_i64(&a[1]), arg_datetime(&a[2])) else {
        return Ok(ScalarValue::TimestampMicrosecond(None, None));
    };
    Ok(add_unit(&d, &unit, n).map(datetime_value).unwrap_or(ScalarValue::TimestampMicrosecond(None, None)))
}

fn datediff(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(x), Some(y)) = (arg_datetime(&a[0]), arg_datetime(&a[1])) else { return Ok(ScalarValue::Int64(None)) };
    Ok(ScalarValue::Int64(Some((x.date() - y.date()).num_days())))
}

// ---- calendar ------------------------------------------------------------------------------------

fn cal(a: &[ScalarValue], f: impl Fn(&NaiveDate) -> i64) -> Result<ScalarValue> {
    Ok(ScalarValue::Int64(arg_datetime(&a[0]).map(|d| f(&d.date()))))
}

fn cal_text(a: &[ScalarValue], f: impl Fn(&NaiveDate) -> String) -> Result<ScalarValue> {
    Ok(ScalarValue::Utf8(arg_datetime(&a[0]).map(|d| f(&d.date()))))
}

fn last_day(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(d) = arg_datetime(&a[0]) else { return Ok(ScalarValue::Date32(None)) };
    let first = NaiveDate::from_ymd_opt(d.year(), d.month(), 1).expect("valid");
    let next = first.checked_add_months(Months::new(1)).expect("in range");
    Ok(date_value(next.pred_opt().expect("in range")))
}

fn from_days(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(n) = arg_i64(&a[0]) else { return Ok(ScalarValue::Date32(None)) };
    Ok(NaiveDate::from_num_days_from_ce_opt((n - 365) as i32).map(date_value).unwrap_or(ScalarValue::Date32(None)))
}

fn makedate(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(y), Some(doy)) = (arg_i64(&a[0]), arg_i64(&a[1])) else { return Ok(ScalarValue::Date32(None)) };
    if doy <= 0 {
        return Ok(ScalarValue::Date32(None));
    }
    let d = NaiveDate::from_ymd_opt(y as i32, 1, 1).and_then(|d| d.checked_add_signed(Duration::days(doy - 1)));
    Ok(d.map(date_value).unwrap_or(ScalarValue::Date32(None)))
}

fn time_to_sec(a: &[ScalarValue]) -> Result<ScalarValue> {
    Ok(ScalarValue::Int64(arg_time(&a[0]).map(|(s, _)| s)))
}

fn sec_to_time(a: &[ScalarValue]) -> Result<ScalarValue> {
    Ok(ScalarValue::Utf8(arg_i64(&a[0]).map(|s| time_text(s, 0))))
}

fn yearweek(a: &[ScalarValue]) -> Result<ScalarValue> {
    // Mode 0 (the default): weeks start on Sunday; the week of Jan 1 belongs to the previous year
    // unless it starts in the new one.
    Ok(ScalarValue::Int64(arg_datetime(&a[0]).map(|d| {
        let date = d.date();
        let sunday = date - Duration::days(date.weekday().num_days_from_sunday() as i64);
        let year = sunday.year();
        let first_sunday = {
            let jan1 = NaiveDate::from_ymd_opt(year, 1, 1).expect("valid");
            jan1 + Duration::days((7 - jan1.weekday().num_days_from_sunday() as i64) % 7)
        };
        let week = (sunday - first_sunday).num_days() / 7 + 1;
        year as i64 * 100 + week
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        parse_datetime(s).unwrap()
    }

    #[test]
    fn formats_like_mysql() {
        let d = dt("2024-03-05 14:07:09.123456");
        assert_eq!(mysql_format(&d, "%Y-%m-%d %H:%i:%s.%f"), "2024-03-05 14:07:09.123456");
        assert_eq!(mysql_format(&d, "%D %M %y %h%p %W %j"), "5th March 24 02PM Tuesday 065");
    }

    #[test]
    fn converts_named_and_offset_zones() {
        let r = convert_tz(&[
            ScalarValue::Utf8(Some("2024-07-01 12:00:00".into())),
            ScalarValue::Utf8(Some("UTC".into())),
            ScalarValue::Utf8(Some("Europe/Berlin".into())),
        ])
        .unwrap();
        assert_eq!(arg_datetime(&r), Some(dt("2024-07-01 14:00:00")));
        let r = convert_tz(&[
            ScalarValue::Utf8(Some("2024-01-01 00:30:00".into())),
            ScalarValue::Utf8(Some("+01:00".into())),
            ScalarValue::Utf8(Some("-02:00".into())),
        ])
        .unwrap();
        assert_eq!(arg_datetime(&r), Some(dt("2023-12-31 21:30:00")));
        let bad = convert_tz(&[ScalarValue::Utf8(Some("2024-01-01".into())), ScalarValue::Utf8(Some("Mars/Base".into())), ScalarValue::Utf8(Some("UTC".into()))]).unwrap();
        assert!(bad.is_null());
    }

    #[test]
    fn month_differences_count_whole_months() {
        assert_eq!(months_between(&dt("2024-01-31"), &dt("2024-02-29")), 0);
        assert_eq!(months_between(&dt("2024-01-31"), &dt("2024-03-31")), 2);
        assert_eq!(months_between(&dt("2024-03-31"), &dt("2024-01-31")), -2);
    }
}
