//! The rest of TiDB's builtins, one row at a time: number and string conversions (`BIN`, `OCT`,
//! `ORD`, `CHAR`, `EXPORT_SET`, `MAKE_SET`, `QUOTE`, base64, `REGEXP_SUBSTR`), bit functions,
//! `CRC32`, compression and password hashing, UUID and IPv6 conversions, and the information
//! functions whose answer is fixed here (one node, one character set for text).

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::ScalarUDF;
use sha1::Digest;

use super::rowwise::{self, arg_bytes, arg_f64, arg_i64, arg_text, udf, MANY};

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        udf("bin", 1, 1, rowwise::text, |a| Ok(ScalarValue::Utf8(arg_i64(&a[0]).map(|n| format!("{:b}", n as u64))))),
        udf("oct", 1, 1, rowwise::text, |a| Ok(ScalarValue::Utf8(arg_i64(&a[0]).map(|n| format!("{:o}", n as u64))))),
        udf("ord", 1, 1, rowwise::int, ord),
        udf("char", 1, MANY, binary, char_fn),
        udf("export_set", 3, 5, rowwise::text, export_set),
        udf("make_set", 2, MANY, rowwise::text, make_set),
        udf("quote", 1, 1, rowwise::text, quote),
        udf("to_base64", 1, 1, rowwise::text, to_base64),
        udf("from_base64", 1, 1, binary, from_base64),
        udf("regexp_substr", 2, 5, rowwise::text, regexp_substr),
        udf("mysql_sign", 1, 1, rowwise::int, |a| Ok(ScalarValue::Int64(arg_f64(&a[0]).map(|x| if x > 0.0 { 1 } else if x < 0.0 { -1 } else { 0 })))),
        udf("crc32", 1, 1, rowwise::int, |a| Ok(ScalarValue::Int64(arg_bytes(&a[0]).map(|b| crc32fast::hash(&b) as i64)))),
        udf("bit_count", 1, 1, rowwise::int, |a| Ok(ScalarValue::Int64(arg_i64(&a[0]).map(|n| n.count_ones() as i64)))),
        udf("mysql_bitnot", 1, 1, |_| DataType::UInt64, |a| Ok(ScalarValue::UInt64(arg_i64(&a[0]).map(|n| !(n as u64))))),
        udf("compress", 1, 1, binary, compress),
        udf("uncompress", 1, 1, binary, uncompress),
        udf("uncompressed_length", 1, 1, rowwise::int, |a| {
            Ok(ScalarValue::Int64(arg_bytes(&a[0]).map(|b| if b.len() < 4 { 0 } else { u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64 })))
        }),
        udf("password", 1, 1, rowwise::text, password),
        udf("random_bytes", 1, 1, binary, random_bytes),
        udf("validate_password_strength", 1, 1, rowwise::int, |a| Ok(ScalarValue::Int64(arg_text(&a[0]).map(|p| password_strength(&p))))),
        udf("uuid_to_bin", 1, 2, binary, uuid_to_bin),
        udf("bin_to_uuid", 1, 2, rowwise::text, bin_to_uuid),
        udf("is_uuid", 1, 1, rowwise::int, |a| Ok(ScalarValue::Int64(arg_text(&a[0]).map(|s| parse_uuid(&s).is_some() as i64)))),
        udf("inet6_aton", 1, 1, binary, inet6_aton),
        udf("inet6_ntoa", 1, 1, rowwise::text, inet6_ntoa),
        udf("is_ipv4", 1, 1, rowwise::int, |a| Ok(ScalarValue::Int64(arg_text(&a[0]).map(|s| s.parse::<std::net::Ipv4Addr>().is_ok() as i64)))),
        udf("is_ipv6", 1, 1, rowwise::int, |a| Ok(ScalarValue::Int64(arg_text(&a[0]).map(|s| s.parse::<std::net::Ipv6Addr>().is_ok() as i64)))),
        udf("is_ipv4_compat", 1, 1, rowwise::int, |a| {
            Ok(ScalarValue::Int64(arg_bytes(&a[0]).map(|b| (b.len() == 16 && b[..12].iter().all(|x| *x == 0) && b[12..] != [0, 0, 0, 0]) as i64)))
        }),
        udf("is_ipv4_mapped", 1, 1, rowwise::int, |a| {
            Ok(ScalarValue::Int64(arg_bytes(&a[0]).map(|b| (b.len() == 16 && b[..10].iter().all(|x| *x == 0) && b[10..12] == [0xff, 0xff]) as i64)))
        }),
        udf("uuid_short", 0, 0, rowwise::int, |_| Ok(ScalarValue::Int64(Some(uuid_short())))),
        udf("sleep", 1, 1, rowwise::int, sleep),
        udf("interval", 2, MANY, rowwise::int, interval),
        udf("charset", 1, 1, rowwise::text, |a| Ok(ScalarValue::Utf8(Some(if is_binary(&a[0]) { "binary" } else { "utf8mb4" }.into())))),
        udf("collation", 1, 1, rowwise::text, |a| Ok(ScalarValue::Utf8(Some(if is_binary(&a[0]) { "binary" } else { "utf8mb4_bin" }.into())))),
        // 4 (coercible) for a value, 6 (ignorable) for NULL: columns are told apart only by MySQL.
        udf("coercibility", 1, 1, rowwise::int, |a| Ok(ScalarValue::Int64(Some(if a[0].is_null() { 6 } else { 4 })))),
        udf("benchmark", 2, 2, rowwise::int, |_| Ok(ScalarValue::Int64(Some(0)))),
        udf("current_role", 0, 0, rowwise::text, |_| Ok(ScalarValue::Utf8(Some("NONE".into())))),
        udf("current_resource_group", 0, 0, rowwise::text, |_| Ok(ScalarValue::Utf8(Some("default".into())))),
        udf("tidb_is_ddl_owner", 0, 0, rowwise::int, |_| Ok(ScalarValue::Int64(Some(1)))),
        // TiDB's TSO: physical milliseconds above 18 logical bits.
        udf("tidb_current_tso", 0, 0, rowwise::int, |_| Ok(ScalarValue::Int64(Some(chrono::Utc::now().timestamp_millis() << 18)))),
    ]
}

fn binary(_: &[DataType]) -> DataType {
    DataType::Binary
}

fn is_binary(v: &ScalarValue) -> bool {
    matches!(v.data_type(), DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_))
}

fn ord(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(s) = arg_bytes(&a[0]) else { return Ok(ScalarValue::Int64(None)) };
    let Some(&first) = s.first() else { return Ok(ScalarValue::Int64(Some(0))) };
    // The leftmost character's bytes as a big-endian number (UTF-8 lead byte tells its length).
    let len = match first {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
    .min(s.len());
    Ok(ScalarValue::Int64(Some(s[..len].iter().fold(0i64, |acc, b| acc * 256 + *b as i64))))
}

fn char_fn(a: &[ScalarValue]) -> Result<ScalarValue> {
    let mut out = Vec::new();
    for v in a {
        let Some(n) = arg_i64(v) else { continue };
        let n = n as u32;
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
        out.extend_from_slice(&bytes[skip..]);
    }
    Ok(ScalarValue::Binary(Some(out)))
}

fn export_set(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(bits), Some(on), Some(off)) = (arg_i64(&a[0]), arg_text(&a[1]), arg_text(&a[2])) else { return Ok(rowwise::null_text()) };
    let sep = match a.get(3) {
        Some(v) => match arg_text(v) {
            Some(s) => s,
            None => return Ok(rowwise::null_text()),
        },
        None => ",".into(),
    };
    let n = a.get(4).and_then(arg_i64).unwrap_or(64).clamp(0, 64) as u32;
    let parts: Vec<&str> = (0..n).map(|i| if (bits as u64) >> i & 1 == 1 { on.as_str() } else { off.as_str() }).collect();
    Ok(ScalarValue::Utf8(Some(parts.join(&sep))))
}

fn make_set(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(bits) = arg_i64(&a[0]) else { return Ok(rowwise::null_text()) };
    let parts: Vec<String> =
        a[1..].iter().enumerate().filter(|(i, _)| *i < 64 && (bits as u64) >> i & 1 == 1).filter_map(|(_, v)| arg_text(v)).collect();
    Ok(ScalarValue::Utf8(Some(parts.join(","))))
}

fn quote(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(s) = arg_text(&a[0]) else { return Ok(ScalarValue::Utf8(Some("NULL".into()))) };
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(ScalarValue::Utf8(Some(out)))
}

fn to_base64(a: &[ScalarValue]) -> Result<ScalarValue> {
    use base64::Engine;
    let Some(b) = arg_bytes(&a[0]) else { return Ok(rowwise::null_text()) };
    let flat = base64::engine::general_purpose::STANDARD.encode(b);
    // MySQL breaks the encoding into lines of 76 characters.
    let lines: Vec<&str> = flat.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    Ok(ScalarValue::Utf8(Some(lines.join("\n"))))
}

fn from_base64(a: &[ScalarValue]) -> Result<ScalarValue> {
    use base64::Engine;
    let Some(s) = arg_text(&a[0]) else { return Ok(ScalarValue::Binary(None)) };
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    Ok(ScalarValue::Binary(base64::engine::general_purpose::STANDARD.decode(clean).ok()))
}

fn regexp_substr(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(s), Some(p)) = (arg_text(&a[0]), arg_text(&a[1])) else { return Ok(rowwise::null_text()) };
    let pos = a.get(2).and_then(arg_i64).unwrap_or(1).max(1) as usize;
    let occurrence = a.get(3).and_then(arg_i64).unwrap_or(1).max(1) as usize;
    let flags = a.get(4).and_then(arg_text).unwrap_or_default();
    let mut b = regex::RegexBuilder::new(&p);
    b.size_limit(1 << 20);
    // MySQL's default is case-insensitive only through a _ci collation; text here is utf8mb4_bin.
    for f in flags.chars() {
        match f {
            'i' => b.case_insensitive(true),
            'c' => b.case_insensitive(false),
            'm' => b.multi_line(true),
            'n' => b.dot_matches_new_line(true),
            _ => return exec_err!("Invalid match mode flag in regular expression."),
        };
    }
    let Ok(re) = b.build() else { return exec_err!("Syntax error in regular expression") };
    let start = s.char_indices().nth(pos - 1).map(|(i, _)| i);
    let Some(start) = start else { return Ok(rowwise::null_text()) };
    let found = re.find_iter(&s[start..]).nth(occurrence - 1).map(|m| m.as_str().to_string());
    Ok(ScalarValue::Utf8(found))
}

/// COMPRESS: the length (4 bytes, little-endian) then a zlib stream; '' stays ''.
fn compress(a: &[ScalarValue]) -> Result<ScalarValue> {
    use std::io::Write;
    let Some(b) = arg_bytes(&a[0]) else { return Ok(ScalarValue::Binary(None)) };
    if b.is_empty() {
        return Ok(ScalarValue::Binary(Some(vec![])));
    }
    let mut out = (b.len() as u32).to_le_bytes().to_vec();
    let mut z = flate2::write::ZlibEncoder::new(&mut out, flate2::Compression::default());
    z.write_all(&b).and_then(|_| z.finish().map(|_| ())).map_err(|e| datafusion::error::DataFusionError::Execution(e.to_string()))?;
    Ok(ScalarValue::Binary(Some(out)))
}

fn uncompress(a: &[ScalarValue]) -> Result<ScalarValue> {
    use std::io::Read;
    let Some(b) = arg_bytes(&a[0]) else { return Ok(ScalarValue::Binary(None)) };
    if b.is_empty() {
        return Ok(ScalarValue::Binary(Some(vec![])));
    }
    if b.len() < 4 {
        return Ok(ScalarValue::Binary(None));
    }
    let want = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
    // Never inflate past what the header claims (and at most the packet limit): no zip bombs.
    let mut out = Vec::new();
    let ok = flate2::read::ZlibDecoder::new(&b[4..]).take(want.min(64 << 20)).read_to_end(&mut out).is_ok();
    Ok(ScalarValue::Binary(ok.then_some(out)))
}

/// PASSWORD(): mysql_native_password's stored form, `*` and SHA1(SHA1(p)) in upper-case hex.
fn password(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(p) = arg_text(&a[0]) else { return Ok(rowwise::null_text()) };
    if p.is_empty() {
        return Ok(ScalarValue::Utf8(Some(String::new())));
    }
    let twice = sha1::Sha1::digest(sha1::Sha1::digest(p.as_bytes()));
    Ok(ScalarValue::Utf8(Some(format!("*{}", super::string::hex_of(&twice).to_ascii_uppercase()))))
}

fn random_bytes(a: &[ScalarValue]) -> Result<ScalarValue> {
    use rand::RngCore;
    let Some(n) = arg_i64(&a[0]) else { return Ok(ScalarValue::Binary(None)) };
    if !(1..=1024).contains(&n) {
        return exec_err!("length value is out of range in 'random_bytes'");
    }
    let mut b = vec![0u8; n as usize];
    rand::thread_rng().fill_bytes(&mut b);
    Ok(ScalarValue::Binary(Some(b)))
}

/// MySQL's validate_password scale: 0 (< 4 chars), 25 (< 8), 50 (length only), 75 (mixed case,
/// digits and a special character), 100 (that and not a dictionary word; no dictionary here).
fn password_strength(p: &str) -> i64 {
    let n = p.chars().count();
    if n < 4 {
        return 0;
    }
    if n < 8 {
        return 25;
    }
    let lower = p.chars().any(|c| c.is_lowercase());
    let upper = p.chars().any(|c| c.is_uppercase());
    let digit = p.chars().any(|c| c.is_ascii_digit());
    let special = p.chars().any(|c| !c.is_alphanumeric());
    if lower && upper && digit && special {
        100
    } else {
        50
    }
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let t = s.trim();
    let t = t.strip_prefix('{').and_then(|x| x.strip_suffix('}')).unwrap_or(t);
    let hex: String = t.chars().filter(|c| *c != '-').collect();
    let dashed_ok = !t.contains('-') || (t.len() == 36 && [8, 13, 18, 23].iter().all(|i| t.as_bytes()[*i] == b'-'));
    if hex.len() != 32 || !dashed_ok {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn uuid_to_bin(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(s) = arg_text(&a[0]) else { return Ok(ScalarValue::Binary(None)) };
    let Some(mut b) = parse_uuid(&s) else { return exec_err!("Incorrect string value: '{s}' for function uuid_to_bin") };
    if a.get(1).and_then(arg_i64).unwrap_or(0) != 0 {
        b = swap_time_fields(b, true);
    }
    Ok(ScalarValue::Binary(Some(b.to_vec())))
}

/// UUID_TO_BIN's swap flag: time-high, time-mid, then time-low first, so that time-based UUIDs
/// sort by time; `to_bin` false undoes it (BIN_TO_UUID).
fn swap_time_fields(b: [u8; 16], to_bin: bool) -> [u8; 16] {
    // Where each of the first 8 bytes of the swapped form comes from in the UUID.
    const FROM: [usize; 8] = [6, 7, 4, 5, 0, 1, 2, 3];
    let mut out = b;
    for (i, &j) in FROM.iter().enumerate() {
        if to_bin {
            out[i] = b[j];
        } else {
            out[j] = b[i];
        }
    }
    out
}

fn bin_to_uuid(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(b) = arg_bytes(&a[0]) else { return Ok(rowwise::null_text()) };
    if b.len() != 16 {
        return exec_err!("Incorrect string value for function bin_to_uuid");
    }
    let mut b: [u8; 16] = b.try_into().expect("16 bytes");
    if a.get(1).and_then(arg_i64).unwrap_or(0) != 0 {
        b = swap_time_fields(b, false);
    }
    let h = super::string::hex_of(&b);
    Ok(ScalarValue::Utf8(Some(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))))
}

fn inet6_aton(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(s) = arg_text(&a[0]) else { return Ok(ScalarValue::Binary(None)) };
    let s = s.trim();
    Ok(ScalarValue::Binary(if let Ok(v4) = s.parse::<std::net::Ipv4Addr>() {
        Some(v4.octets().to_vec())
    } else {
        s.parse::<std::net::Ipv6Addr>().ok().map(|v6| v6.octets().to_vec())
    }))
}

fn inet6_ntoa(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(b) = arg_bytes(&a[0]) else { return Ok(rowwise::null_text()) };
    Ok(ScalarValue::Utf8(match b.len() {
        4 => Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b.as_slice()).expect("16 bytes"));
            // MySQL writes IPv4-compatible and -mapped addresses with a dotted tail.
            let o = v6.octets();
            if o[..10].iter().all(|x| *x == 0) && (o[10..12] == [0xff, 0xff] || o[10..12] == [0, 0] && o[12..] != [0, 0, 0, 0]) {
                let prefix = if o[10] == 0xff { "::ffff:" } else { "::" };
                Some(format!("{prefix}{}", std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15])))
            } else {
                Some(v6.to_string())
            }
        }
        _ => None,
    }))
}

/// UUID_SHORT: server id (0) in the top byte, the process start in seconds, then a counter.
fn uuid_short() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::OnceLock;
    static NEXT: OnceLock<AtomicI64> = OnceLock::new();
    NEXT.get_or_init(|| AtomicI64::new((chrono::Utc::now().timestamp() & 0xFF_FFFF_FFFF) << 24)).fetch_add(1, Ordering::Relaxed)
}

/// SLEEP(n): waits up to n seconds (at most an hour), returns 0.
/// INTERVAL(N, N1, N2, …): 0 if N < N1, 1 if N < N2, …, the count of the Ni when N is at
/// least the last (the Ni ascending, as MySQL requires); -1 for a NULL N.
fn interval(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(n) = arg_f64(&a[0]) else { return Ok(ScalarValue::Int64(Some(-1))) };
    let below = a[1..].iter().position(|x| arg_f64(x).is_some_and(|x| n < x));
    Ok(ScalarValue::Int64(Some(below.unwrap_or(a.len() - 1) as i64)))
}

fn sleep(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(secs) = arg_f64(&a[0]) else { return Ok(ScalarValue::Int64(None)) };
    if secs < 0.0 {
        return exec_err!("Incorrect arguments to sleep.");
    }
    std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(3600.0)));
    Ok(ScalarValue::Int64(Some(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trips_with_and_without_swap() {
        let u = ScalarValue::Utf8(Some("6ccd780c-baba-1026-9564-5b8c656024db".into()));
        for swap in [0, 1] {
            let b = uuid_to_bin(&[u.clone(), ScalarValue::Int64(Some(swap))]).unwrap();
            assert_eq!(bin_to_uuid(&[b, ScalarValue::Int64(Some(swap))]).unwrap(), u);
        }
        let swapped = uuid_to_bin(&[u, ScalarValue::Int64(Some(1))]).unwrap();
        assert_eq!(arg_bytes(&swapped).unwrap()[..4], [0x10, 0x26, 0xba, 0xba]);
    }

    #[test]
    fn compress_round_trips_and_refuses_lies() {
        let s = ScalarValue::Utf8(Some("abc".repeat(100)));
        let z = compress(&[s]).unwrap();
        assert_eq!(arg_bytes(&uncompress(&[z]).unwrap()).unwrap(), "abc".repeat(100).into_bytes());
        assert_eq!(uncompress(&[ScalarValue::Binary(Some(vec![1, 2]))]).unwrap(), ScalarValue::Binary(None));
    }

    #[test]
    fn password_is_the_native_hash() {
        // mysql_native_password of 'secret' (a published test vector).
        assert_eq!(password(&[ScalarValue::Utf8(Some("secret".into()))]).unwrap(), ScalarValue::Utf8(Some("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7".into())));
    }
}
