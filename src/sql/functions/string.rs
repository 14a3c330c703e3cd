//! String, hash and math functions that DataFusion lacks or defines differently from MySQL:
//! `SHA1`/`SHA`, `SHA2(s, bits)`, `TRUNCATE(x, d)`, `LOCATE`, `SPACE`, `FIELD`, `ELT`, `FORMAT`,
//! `HEX`, `UNHEX`, `CONV`, `INSERT`, `STRCMP`, `BIT_LENGTH`, `INET_ATON`/`INET_NTOA`, `UUID`,
//! `WEIGHT_STRING`.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::ScalarUDF;
use sha1::Digest;

use super::rowwise::{self, arg_bytes, arg_f64, arg_i64, arg_text, udf, MANY};

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        udf("sha1", 1, 1, rowwise::text, |a| Ok(ScalarValue::Utf8(arg_text(&a[0]).map(|s| hex_of(&sha1::Sha1::digest(s.as_bytes())))))),
        udf("sha", 1, 1, rowwise::text, |a| Ok(ScalarValue::Utf8(arg_text(&a[0]).map(|s| hex_of(&sha1::Sha1::digest(s.as_bytes())))))),
        udf("sha2", 2, 2, rowwise::text, sha2),
        udf("sm3", 1, 1, rowwise::text, |a| Ok(ScalarValue::Utf8(arg_bytes(&a[0]).map(|b| hex_of(&sm3::Sm3::digest(&b)))))),
        udf("aes_encrypt", 2, 3, rowwise::binary, |a| Ok(ScalarValue::Binary(aes_args(a).map(|(d, k)| aes_ecb(&d, &k, true)).flatten()))),
        udf("aes_decrypt", 2, 3, rowwise::binary, |a| Ok(ScalarValue::Binary(aes_args(a).map(|(d, k)| aes_ecb(&d, &k, false)).flatten()))),
        udf("mysql_truncate", 2, 2, |a| if a.first().is_some_and(|t| t.is_integer()) { DataType::Int64 } else { DataType::Float64 }, truncate),
        udf("locate", 2, 3, rowwise::int, locate),
        udf("space", 1, 1, rowwise::text, |a| Ok(ScalarValue::Utf8(arg_i64(&a[0]).map(|n| " ".repeat(n.clamp(0, 1 << 20) as usize))))),
        udf("field", 2, MANY, rowwise::int, field),
        udf("elt", 2, MANY, rowwise::text, elt),
        udf("format", 2, 3, rowwise::text, format_number),
        udf("hex", 1, 1, rowwise::text, hex),
        udf("unhex", 1, 1, rowwise::text, unhex),
        udf("conv", 3, 3, rowwise::text, conv),
        udf("insert", 4, 4, rowwise::text, insert),
        udf("strcmp", 2, 2, rowwise::int, |a| {
            Ok(ScalarValue::Int64(arg_text(&a[0]).zip(arg_text(&a[1])).map(|(x, y)| x.cmp(&y) as i64)))
        }),
        // The sort key under TiDB's default collation, utf8mb4_bin (PAD SPACE): the bytes less
        // trailing spaces; a binary string's own bytes.
        udf("weight_string", 1, 1, rowwise::binary, |a| {
            Ok(ScalarValue::Binary(match &a[0] {
                ScalarValue::Binary(b) | ScalarValue::LargeBinary(b) | ScalarValue::BinaryView(b) => b.clone(),
                other => arg_text(other).map(|t| t.trim_end_matches(' ').as_bytes().to_vec()),
            }))
        }),
        udf("bit_length", 1, 1, rowwise::int, |a| Ok(ScalarValue::Int64(arg_text(&a[0]).map(|s| s.len() as i64 * 8)))),
        udf("inet_aton", 1, 1, rowwise::int, |a| {
            Ok(ScalarValue::Int64(arg_text(&a[0]).and_then(|s| s.trim().parse::<std::net::Ipv4Addr>().ok()).map(|ip| u32::from(ip) as i64)))
        }),
        udf("inet_ntoa", 1, 1, rowwise::text, |a| {
            Ok(ScalarValue::Utf8(arg_i64(&a[0]).filter(|n| (0..=u32::MAX as i64).contains(n)).map(|n| std::net::Ipv4Addr::from(n as u32).to_string())))
        }),
        udf("mysql_uuid", 0, 0, rowwise::text, |_| Ok(ScalarValue::Utf8(Some(uuid_v1_like())))),
    ]
}

pub(super) fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha2(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(s), Some(bits)) = (arg_text(&a[0]), arg_i64(&a[1])) else { return Ok(ScalarValue::Utf8(None)) };
    let b = s.as_bytes();
    Ok(ScalarValue::Utf8(match bits {
        0 | 256 => Some(hex_of(&sha2::Sha256::digest(b))),
        224 => Some(hex_of(&sha2::Sha224::digest(b))),
        384 => Some(hex_of(&sha2::Sha384::digest(b))),
        512 => Some(hex_of(&sha2::Sha512::digest(b))),
        _ => None,
    }))
}

fn truncate(a: &[ScalarValue]) -> Result<ScalarValue> {
    let d = arg_i64(&a[1]).unwrap_or(0);
    if a[0].data_type().is_integer() {
        let Some(x) = arg_i64(&a[0]) else { return Ok(ScalarValue::Int64(None)) };
        if d >= 0 {
            return Ok(ScalarValue::Int64(Some(x)));
        }
        let p = 10i64.checked_pow((-d) as u32).unwrap_or(i64::MAX);
        return Ok(ScalarValue::Int64(Some(x / p * p)));
    }
    let Some(x) = arg_f64(&a[0]) else { return Ok(ScalarValue::Float64(None)) };
    let p = 10f64.powi(d as i32);
    Ok(ScalarValue::Float64(Some((x * p).trunc() / p)))
}

fn locate(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(needle), Some(hay)) = (arg_text(&a[0]), arg_text(&a[1])) else { return Ok(ScalarValue::Int64(None)) };
    let start = a.get(2).and_then(arg_i64).unwrap_or(1);
    if start < 1 {
        return Ok(ScalarValue::Int64(Some(0)));
    }
    let chars: Vec<char> = hay.chars().collect();
    let skip = (start - 1) as usize;
    if skip > chars.len() {
        return Ok(ScalarValue::Int64(Some(0)));
    }
    let rest: String = chars[skip..].iter().collect();
    let hay_l = rest.to_lowercase();
    let needle_l = needle.to_lowercase();
    Ok(ScalarValue::Int64(Some(match hay_l.find(&needle_l) {
        Some(byte) => (hay_l[..byte].chars().count() + skip + 1) as i64,
        None => 0,
    })))
}

fn field(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(x) = arg_text(&a[0]) else { return Ok(ScalarValue::Int64(Some(0))) };
    let pos = a[1..].iter().position(|v| arg_text(v).is_some_and(|y| y.eq_ignore_ascii_case(&x)));
    Ok(ScalarValue::Int64(Some(pos.map(|p| p as i64 + 1).unwrap_or(0))))
}

fn elt(a: &[ScalarValue]) -> Result<ScalarValue> {
    let n = arg_i64(&a[0]).unwrap_or(0);
    if n < 1 || n as usize >= a.len() {
        return Ok(ScalarValue::Utf8(None));
    }
    Ok(ScalarValue::Utf8(arg_text(&a[n as usize])))
}

fn format_number(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(x), Some(d)) = (arg_f64(&a[0]), arg_i64(&a[1])) else { return Ok(ScalarValue::Utf8(None)) };
    let d = d.clamp(0, 30) as usize;
    let s = format!("{:.*}", d, x.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if x < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0') { "-" } else { "" };
    Ok(ScalarValue::Utf8(Some(if frac.is_empty() { format!("{sign}{grouped}") } else { format!("{sign}{grouped}.{frac}") })))
}

fn hex(a: &[ScalarValue]) -> Result<ScalarValue> {
    if a[0].is_null() {
        return Ok(ScalarValue::Utf8(None));
    }
    if a[0].data_type().is_integer() {
        return Ok(ScalarValue::Utf8(arg_i64(&a[0]).map(|n| format!("{:X}", n as u64))));
    }
    Ok(ScalarValue::Utf8(arg_bytes(&a[0]).map(|b| hex_of(&b).to_uppercase())))
}

/// AES_ENCRYPT / AES_DECRYPT's data and key; NULL for a NULL of either.
fn aes_args(a: &[ScalarValue]) -> Option<(Vec<u8>, Vec<u8>)> {
    Some((arg_bytes(&a[0])?, arg_bytes(&a[1])?))
}

/// AES-128-ECB as MySQL and TiDB do it by default (`block_encryption_mode = 'aes-128-ecb'`, so
/// a third argument, the IV, is not used): the key is folded into 16 bytes by XOR, the data
/// padded by PKCS#7. Decryption of data that is not a whole number of blocks or whose padding
/// is wrong gives NULL.
fn aes_ecb(data: &[u8], key: &[u8], encrypt: bool) -> Option<Vec<u8>> {
    use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
    let mut k = [0u8; 16];
    for (i, b) in key.iter().enumerate() {
        k[i % 16] ^= b;
    }
    let cipher = aes::Aes128::new(&k.into());
    if encrypt {
        let pad = 16 - data.len() % 16;
        let mut out = data.to_vec();
        out.extend(std::iter::repeat_n(pad as u8, pad));
        for block in out.chunks_mut(16) {
            cipher.encrypt_block(aes::Block::from_mut_slice(block));
        }
        return Some(out);
    }
    if data.is_empty() || data.len() % 16 != 0 {
        return None;
    }
    let mut out = data.to_vec();
    for block in out.chunks_mut(16) {
        cipher.decrypt_block(aes::Block::from_mut_slice(block));
    }
    let pad = *out.last()? as usize;
    if pad == 0 || pad > 16 || out[out.len() - pad..].iter().any(|&b| b as usize != pad) {
        return None;
    }
    out.truncate(out.len() - pad);
    Some(out)
}

fn unhex(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(s) = arg_text(&a[0]) else { return Ok(ScalarValue::Utf8(None)) };
    let s = if s.len() % 2 == 1 { format!("0{s}") } else { s };
    let bytes: Option<Vec<u8>> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect();
    Ok(ScalarValue::Utf8(bytes.map(|b| String::from_utf8_lossy(&b).into_owned())))
}

fn conv(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(n), Some(from), Some(to)) = (arg_text(&a[0]), arg_i64(&a[1]), arg_i64(&a[2])) else {
        return Ok(ScalarValue::Utf8(None));
    };
    let (from, to) = (from.unsigned_abs() as u32, to.unsigned_abs() as u32);
    if !(2..=36).contains(&from) || !(2..=36).contains(&to) {
        return Ok(ScalarValue::Utf8(None));
    }
    let t = n.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t),
    };
    let valid: String = digits.chars().take_while(|c| c.to_digit(from).is_some()).collect();
    let v = u64::from_str_radix(if valid.is_empty() { "0" } else { &valid }, from).unwrap_or(u64::MAX);
    let v = if neg { (v as i64).wrapping_neg() as u64 } else { v };
    let mut out = Vec::new();
    let mut x = v;
    loop {
        out.push(std::char::from_digit((x % to as u64) as u32, to).expect("digit").to_ascii_uppercase());
        x /= to as u64;
        if x == 0 {
            break;
        }
    }
    Ok(ScalarValue::Utf8(Some(out.iter().rev().collect())))
}

fn insert(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(s), Some(pos), Some(len), Some(new)) = (arg_text(&a[0]), arg_i64(&a[1]), arg_i64(&a[2]), arg_text(&a[3])) else {
        return Ok(ScalarValue::Utf8(None));
    };
    let chars: Vec<char> = s.chars().collect();
    if pos < 1 || pos as usize > chars.len() {
        return Ok(ScalarValue::Utf8(Some(s)));
    }
    let start = pos as usize - 1;
    let end = if len < 0 { chars.len() } else { (start + len as usize).min(chars.len()) };
    let mut out: String = chars[..start].iter().collect();
    out += &new;
    out.extend(&chars[end..]);
    Ok(ScalarValue::Utf8(Some(out)))
}

/// A time-based UUID text in MySQL's UUID() layout (version 1 fields, random node).
fn uuid_v1_like() -> String {
    use rand::Rng;
    let mut r = rand::thread_rng();
    let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64 / 100 + 0x01B2_1DD2_1381_4000;
    format!(
        "{:08x}-{:04x}-1{:03x}-{:04x}-{:012x}",
        t & 0xffff_ffff,
        (t >> 32) & 0xffff,
        (t >> 48) & 0x0fff,
        (r.gen::<u16>() & 0x3fff) | 0x8000,
        r.gen::<u64>() & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(x.into()))
    }

    #[test]
    fn hashes_and_numbers_as_mysql() {
        assert_eq!(sha2(&[s("abc"), ScalarValue::Int64(Some(256))]).unwrap(), s("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert_eq!(format_number(&[ScalarValue::Float64(Some(1234567.891)), ScalarValue::Int64(Some(2))]).unwrap(), s("1,234,567.89"));
        assert_eq!(truncate(&[ScalarValue::Float64(Some(1.999)), ScalarValue::Int64(Some(2))]).unwrap(), ScalarValue::Float64(Some(1.99)));
        assert_eq!(conv(&[s("ff"), ScalarValue::Int64(Some(16)), ScalarValue::Int64(Some(10))]).unwrap(), s("255"));
        assert_eq!(locate(&[s("bar"), s("foobarbar"), ScalarValue::Int64(Some(5))]).unwrap(), ScalarValue::Int64(Some(7)));
    }
}

/// SQL LIKE: `%` any run, `_` one character, `escape` makes the next character literal.
/// Dynamic programming over (pattern token, text position): linear in text times pattern.
pub fn like_match(s: &str, pat: &str, escape: char) -> bool {
    enum Tok {
        Any,
        One,
        Lit(char),
    }
    let mut toks = Vec::new();
    let mut it = pat.chars();
    while let Some(c) = it.next() {
        toks.push(match c {
            '%' => Tok::Any,
            '_' => Tok::One,
            c if c == escape => Tok::Lit(it.next().unwrap_or(c)),
            c => Tok::Lit(c),
        });
    }
    let s: Vec<char> = s.chars().collect();
    // reach[i]: the tokens so far can consume exactly s[..i].
    let mut reach = vec![false; s.len() + 1];
    reach[0] = true;
    for t in &toks {
        let mut next = vec![false; s.len() + 1];
        match t {
            Tok::Any => {
                let mut on = false;
                for i in 0..=s.len() {
                    on |= reach[i];
                    next[i] = on;
                }
            }
            Tok::One => (0..s.len()).for_each(|i| next[i + 1] = reach[i]),
            Tok::Lit(c) => (0..s.len()).for_each(|i| next[i + 1] = reach[i] && s[i] == *c),
        }
        reach = next;
    }
    reach[s.len()]
}
