//! Keys and values: how SQL rows and index entries become bytes.
//!
//! Keys follow TiDB's layout, so a table is one contiguous key range and an
//! index is another:
//!
//! ```text
//! row:    t{table_id}_r{handle}                      -> encode_row(columns)
//! index:  t{table_id}_i{index_id}{v1}{v2}..[{handle}] -> (value chosen by the SQL layer)
//! ```
//!
//! Integers in keys use [`encode_i64_cmp`] (big-endian, sign bit flipped) so
//! that byte order equals numeric order: scanning `record_prefix(t)` ..
//! `prefix_end(record_prefix(t))` visits rows in handle order, negatives first.
//!
//! Index values use a *memcomparable* encoding ([`encode_key_datum`]): a type
//! flag byte, then a body whose byte order equals the SQL order of the value,
//! and every encoding is self-delimiting. So comparing two encoded tuples
//! byte-wise compares them column by column, `WHERE a = 1 AND b > 5` becomes
//! one key range, and a non-unique index can append the row handle to make
//! its keys distinct without disturbing the order.
//!
//! Row values ([`encode_row`]) need no ordering, only compactness and safe
//! decoding: a version byte, a column count, then `(column id, type tag,
//! payload)` per column with varints for integers and lengths, and vectors as
//! raw little-endian `f32`s. [`decode_row`] validates every length and returns
//! [`Error::Corrupt`] instead of panicking on bad input.

use crate::{Error, Result};

/// A SQL value as the storage layer sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Null,
    Int(i64),
    UInt(u64),
    Float(f64),
    Bytes(Vec<u8>),
    /// `value * 10^-scale`, e.g. `{ value: 1234, scale: 2 }` is 12.34.
    Decimal {
        value: i128,
        scale: u8,
    },
    Vector(Vec<f32>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since the Unix epoch.
    DateTime(i64),
}

// ---------------------------------------------------------------- keys ----

const TABLE_PREFIX: u8 = b't';
const RECORD_SEP: &[u8] = b"_r";
const INDEX_SEP: &[u8] = b"_i";
/// `t` + table id.
const TABLE_PREFIX_LEN: usize = 1 + 8;
/// `t{table}_r` / `t{table}_i`.
const SEP_END: usize = TABLE_PREFIX_LEN + 2;
const ROW_KEY_LEN: usize = SEP_END + 8;
const INDEX_PREFIX_LEN: usize = SEP_END + 8;

const SIGN_BIT: u64 = 1 << 63;

/// Big-endian with the sign bit flipped, so byte order == numeric order.
pub fn encode_i64_cmp(v: i64) -> [u8; 8] {
    ((v as u64) ^ SIGN_BIT).to_be_bytes()
}

/// Inverse of [`encode_i64_cmp`]; `buf` must be exactly 8 bytes.
pub fn decode_i64_cmp(buf: &[u8]) -> Result<i64> {
    let bytes: [u8; 8] = buf
        .try_into()
        .map_err(|_| Error::Corrupt(format!("expected 8-byte integer, got {} bytes", buf.len())))?;
    Ok((u64::from_be_bytes(bytes) ^ SIGN_BIT) as i64)
}

/// `t{table_id}`: every key of the table starts with this.
pub fn table_prefix(table_id: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(ROW_KEY_LEN);
    key.push(TABLE_PREFIX);
    key.extend_from_slice(&encode_i64_cmp(table_id));
    key
}

/// `t{table_id}_r`: every row key of the table starts with this.
pub fn record_prefix(table_id: i64) -> Vec<u8> {
    let mut key = table_prefix(table_id);
    key.extend_from_slice(RECORD_SEP);
    key
}

/// `t{table_id}_r{handle}`: the key of one row.
pub fn row_key(table_id: i64, handle: i64) -> Vec<u8> {
    let mut key = record_prefix(table_id);
    key.extend_from_slice(&encode_i64_cmp(handle));
    key
}

/// The handle of a key made by [`row_key`].
pub fn decode_row_key_handle(key: &[u8]) -> Result<i64> {
    if key.len() != ROW_KEY_LEN
        || key[0] != TABLE_PREFIX
        || &key[TABLE_PREFIX_LEN..SEP_END] != RECORD_SEP
    {
        return Err(Error::Corrupt(format!("not a row key: {key:?}")));
    }
    decode_i64_cmp(&key[SEP_END..])
}

/// `(table_id, handle)` of a row key; `None` for any other key (index entries, metadata).
pub fn decode_row_key(key: &[u8]) -> Option<(i64, i64)> {
    if key.len() != ROW_KEY_LEN || key[0] != TABLE_PREFIX || &key[TABLE_PREFIX_LEN..SEP_END] != RECORD_SEP {
        return None;
    }
    Some((decode_i64_cmp(&key[1..TABLE_PREFIX_LEN]).ok()?, decode_i64_cmp(&key[SEP_END..]).ok()?))
}

/// `t{table_id}_i{index_id}`: every key of the index starts with this.
pub fn index_prefix(table_id: i64, index_id: i64) -> Vec<u8> {
    let mut key = table_prefix(table_id);
    key.extend_from_slice(INDEX_SEP);
    key.extend_from_slice(&encode_i64_cmp(index_id));
    key
}

/// An index entry key: the index prefix, the memcomparable `values`, then
/// (for non-unique indexes) the row handle, which keeps equal values distinct
/// and ordered by handle.
pub fn index_key(table_id: i64, index_id: i64, values: &[Datum], handle: Option<i64>) -> Vec<u8> {
    let mut key = index_prefix(table_id, index_id);
    for value in values {
        encode_key_datum(&mut key, value);
    }
    if let Some(handle) = handle {
        key.extend_from_slice(&encode_i64_cmp(handle));
    }
    key
}

/// The handle at the end of an index key built with `Some(handle)`.
pub fn decode_index_key_handle(key: &[u8]) -> Result<i64> {
    if key.len() < INDEX_PREFIX_LEN + 8
        || key[0] != TABLE_PREFIX
        || &key[TABLE_PREFIX_LEN..SEP_END] != INDEX_SEP
    {
        return Err(Error::Corrupt(format!(
            "not an index key with a handle: {key:?}"
        )));
    }
    decode_i64_cmp(&key[key.len() - 8..])
}

/// The smallest key greater than every key starting with `prefix`: drop
/// trailing `0xff` bytes and increment the last one. Empty if there is no
/// such key (empty or all-`0xff` prefix), which scans read as "unbounded".
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return end;
        }
    }
    end
}

// ------------------------------------------------- memcomparable datums ----

// Type flags. NULL has the smallest so it sorts first, as in SQL indexes.
const FLAG_NULL: u8 = 0x00;
const FLAG_BYTES: u8 = 0x01;
const FLAG_INT: u8 = 0x03;
const FLAG_UINT: u8 = 0x04;
const FLAG_FLOAT: u8 = 0x05;
const FLAG_DECIMAL: u8 = 0x06;
const FLAG_DATE: u8 = 0x0a;
const FLAG_DATETIME: u8 = 0x0b;
const FLAG_VECTOR: u8 = 0x14;

/// Bytes per group in the bytes encoding.
const GROUP: usize = 8;
const GROUP_MARKER: u8 = 0xff;

// Decimal sign classes: negative < zero < positive.
const DEC_NEG: u8 = 0x01;
const DEC_ZERO: u8 = 0x02;
const DEC_POS: u8 = 0x03;

/// Appends the memcomparable encoding of `d`: byte order of encodings equals
/// the SQL order of values of the same type, NULL sorts first, and no
/// encoding is a prefix of another.
pub fn encode_key_datum(buf: &mut Vec<u8>, d: &Datum) {
    match d {
        Datum::Null => buf.push(FLAG_NULL),
        Datum::Int(v) => {
            buf.push(FLAG_INT);
            buf.extend_from_slice(&encode_i64_cmp(*v));
        }
        Datum::UInt(v) => {
            buf.push(FLAG_UINT);
            buf.extend_from_slice(&v.to_be_bytes());
        }
        Datum::Float(v) => {
            buf.push(FLAG_FLOAT);
            buf.extend_from_slice(&encode_f64_cmp(*v));
        }
        Datum::Bytes(v) => {
            buf.push(FLAG_BYTES);
            encode_bytes_cmp(buf, v);
        }
        Datum::Decimal { value, scale } => {
            buf.push(FLAG_DECIMAL);
            encode_decimal_cmp(buf, *value, *scale);
        }
        Datum::Date(v) => {
            buf.push(FLAG_DATE);
            buf.extend_from_slice(&((*v as u32) ^ (1 << 31)).to_be_bytes());
        }
        Datum::DateTime(v) => {
            buf.push(FLAG_DATETIME);
            buf.extend_from_slice(&encode_i64_cmp(*v));
        }
        // Vectors are never index keys; encode them unambiguously anyway
        // rather than panic.
        Datum::Vector(v) => {
            buf.push(FLAG_VECTOR);
            let raw: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
            encode_bytes_cmp(buf, &raw);
        }
    }
}

/// The memcomparable encoding of a tuple of values.
pub fn encode_key(values: &[Datum]) -> Vec<u8> {
    let mut buf = Vec::new();
    for value in values {
        encode_key_datum(&mut buf, value);
    }
    buf
}

/// Positive floats get the sign bit set (above all negatives); negative
/// floats have every bit inverted (larger magnitude → smaller bytes).
fn encode_f64_cmp(v: f64) -> [u8; 8] {
    // -0.0 == 0.0 in SQL, so they must encode identically.
    let v = if v == 0.0 { 0.0 } else { v };
    let bits = v.to_bits();
    let ordered = if bits & SIGN_BIT == 0 {
        bits | SIGN_BIT
    } else {
        !bits
    };
    ordered.to_be_bytes()
}

/// TiDB's group encoding: 8-byte groups, the last one zero-padded, each
/// followed by a marker `0xff - padding`. A full group's marker (0xff) is
/// larger than any final group's, so a string sorts before its extensions,
/// and the marker tells where the string ends without escaping.
fn encode_bytes_cmp(buf: &mut Vec<u8>, data: &[u8]) {
    buf.reserve((data.len() / GROUP + 1) * (GROUP + 1));
    for start in (0..=data.len()).step_by(GROUP) {
        let chunk = &data[start..(start + GROUP).min(data.len())];
        let pad = GROUP - chunk.len();
        buf.extend_from_slice(chunk);
        buf.extend(std::iter::repeat_n(0, pad));
        buf.push(GROUP_MARKER - pad as u8);
    }
}

/// Decimals compare across scales, so they are normalised to scientific
/// form `±0.d1d2..dn × 10^exp` with trailing zeros dropped (12.30 and 12.3
/// encode the same):
///
/// `class, exp (i16, sign-flipped big-endian), digit pairs (1..=100), 0`
///
/// A bigger exponent means a bigger magnitude; with equal exponents the
/// digit pairs compare like the digit strings, and the 0 terminator makes a
/// shorter digit string (a smaller value) sort first. For negative numbers
/// everything after the class byte is inverted to reverse the order.
fn encode_decimal_cmp(buf: &mut Vec<u8>, value: i128, scale: u8) {
    if value == 0 {
        buf.push(DEC_ZERO);
        return;
    }
    let mut digits = [0u8; 40]; // u128::MAX has 39 digits
    let mut first = digits.len();
    let mut mag = value.unsigned_abs();
    while mag > 0 {
        first -= 1;
        digits[first] = (mag % 10) as u8;
        mag /= 10;
    }
    let exp = (digits.len() - first) as i16 - scale as i16;
    let mut last = digits.len();
    while digits[last - 1] == 0 {
        last -= 1;
    }
    let digits = &digits[first..last];

    buf.push(if value < 0 { DEC_NEG } else { DEC_POS });
    let body = buf.len();
    buf.extend_from_slice(&((exp as u16) ^ 0x8000).to_be_bytes());
    for pair in digits.chunks(2) {
        let low = pair.get(1).copied().unwrap_or(0);
        buf.push(pair[0] * 10 + low + 1);
    }
    buf.push(0);
    if value < 0 {
        for b in &mut buf[body..] {
            *b = !*b;
        }
    }
}

/// Reads one value written by [`encode_key_datum`] from the front of `buf` and advances it: an
/// index entry's key gives back its column values (a covering read needs no row). A decimal
/// comes back at its smallest scale (12.30 as 12.3).
pub fn decode_key_datum(buf: &mut &[u8]) -> Result<Datum> {
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
        if buf.len() < n {
            return Err(Error::Corrupt("index key ends inside a value".into()));
        }
        let (head, rest) = buf.split_at(n);
        *buf = rest;
        Ok(head)
    }
    let flag = take(buf, 1)?[0];
    Ok(match flag {
        FLAG_NULL => Datum::Null,
        FLAG_INT => Datum::Int(decode_i64_cmp(take(buf, 8)?)?),
        FLAG_UINT => Datum::UInt(u64::from_be_bytes(take(buf, 8)?.try_into().expect("8"))),
        FLAG_FLOAT => {
            let bits = u64::from_be_bytes(take(buf, 8)?.try_into().expect("8"));
            Datum::Float(f64::from_bits(if bits & SIGN_BIT != 0 { bits & !SIGN_BIT } else { !bits }))
        }
        FLAG_BYTES => {
            let mut out = Vec::new();
            loop {
                let group = take(buf, GROUP + 1)?;
                let pad = (GROUP_MARKER - group[GROUP]) as usize;
                if pad > GROUP {
                    return Err(Error::Corrupt("bad group marker in an index key".into()));
                }
                out.extend_from_slice(&group[..GROUP - pad]);
                if pad > 0 {
                    break;
                }
            }
            Datum::Bytes(out)
        }
        FLAG_DECIMAL => {
            let class = take(buf, 1)?[0];
            if class == DEC_ZERO {
                return Ok(Datum::Decimal { value: 0, scale: 0 });
            }
            let neg = class == DEC_NEG;
            let byte = |b: u8| if neg { !b } else { b };
            let e = take(buf, 2)?;
            let exp = (u16::from_be_bytes([byte(e[0]), byte(e[1])]) ^ 0x8000) as i16 as i32;
            let mut mag: i128 = 0;
            let mut n: i32 = 0;
            loop {
                let b = byte(take(buf, 1)?[0]);
                if b == 0 {
                    break;
                }
                let pair = (b - 1) as i128;
                mag = mag.checked_mul(100).and_then(|m| m.checked_add(pair)).ok_or_else(|| Error::Corrupt("decimal too long in an index key".into()))?;
                n += 2;
            }
            // mag holds n digits: the value is 0.digits × 10^exp.
            let (mut value, mut scale) = if exp >= n { (mag * 10i128.pow((exp - n) as u32), 0) } else { (mag, (n - exp) as u8) };
            while scale > 0 && value % 10 == 0 {
                value /= 10;
                scale -= 1;
            }
            Datum::Decimal { value: if neg { -value } else { value }, scale }
        }
        FLAG_DATE => Datum::Date((u32::from_be_bytes(take(buf, 4)?.try_into().expect("4")) ^ (1 << 31)) as i32),
        FLAG_DATETIME => Datum::DateTime(decode_i64_cmp(take(buf, 8)?)?),
        other => return Err(Error::Corrupt(format!("unknown key value flag {other:#x}"))),
    })
}

/// The column values of an index entry's key (`count` of them, after the index prefix).
pub fn decode_index_values(key: &[u8], count: usize) -> Result<Vec<Datum>> {
    let mut rest = key.get(INDEX_PREFIX_LEN..).ok_or_else(|| Error::Corrupt("not an index key".into()))?;
    (0..count).map(|_| decode_key_datum(&mut rest)).collect()
}

// ---------------------------------------------------------------- rows ----

const ROW_VERSION: u8 = 1;

const TAG_NULL: u8 = 0;
const TAG_INT: u8 = 1;
const TAG_UINT: u8 = 2;
const TAG_FLOAT: u8 = 3;
const TAG_BYTES: u8 = 4;
const TAG_DECIMAL: u8 = 5;
const TAG_VECTOR: u8 = 6;
const TAG_DATE: u8 = 7;
const TAG_DATETIME: u8 = 8;

/// Encodes a row's columns as
/// `version, varint count, { varint column id, tag, payload }*`.
///
/// Payloads: ints/dates as zigzag varints, uints as varints, floats as 8 LE
/// bytes, bytes as varint length + data, decimals as scale byte + zigzag
/// varint, vectors as u32 LE dimension + f32 LE values, NULL as the tag alone.
pub fn encode_row(cols: &[(u32, Datum)]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(2 + cols.len() * 4);
    buf.push(ROW_VERSION);
    put_varint(&mut buf, cols.len() as u128);
    for (id, datum) in cols {
        put_varint(&mut buf, *id as u128);
        match datum {
            Datum::Null => buf.push(TAG_NULL),
            Datum::Int(v) => {
                buf.push(TAG_INT);
                put_varint(&mut buf, zigzag(*v as i128));
            }
            Datum::UInt(v) => {
                buf.push(TAG_UINT);
                put_varint(&mut buf, *v as u128);
            }
            Datum::Float(v) => {
                buf.push(TAG_FLOAT);
                buf.extend_from_slice(&v.to_le_bytes());
            }
            Datum::Bytes(v) => {
                buf.push(TAG_BYTES);
                put_varint(&mut buf, v.len() as u128);
                buf.extend_from_slice(v);
            }
            Datum::Decimal { value, scale } => {
                buf.push(TAG_DECIMAL);
                buf.push(*scale);
                put_varint(&mut buf, zigzag(*value));
            }
            Datum::Vector(v) => {
                buf.push(TAG_VECTOR);
                buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                for f in v {
                    buf.extend_from_slice(&f.to_le_bytes());
                }
            }
            Datum::Date(v) => {
                buf.push(TAG_DATE);
                put_varint(&mut buf, zigzag(*v as i128));
            }
            Datum::DateTime(v) => {
                buf.push(TAG_DATETIME);
                put_varint(&mut buf, zigzag(*v as i128));
            }
        }
    }
    buf
}

/// Decodes [`encode_row`] output. Never panics: any malformed input yields
/// [`Error::Corrupt`].
pub fn decode_row(buf: &[u8]) -> Result<Vec<(u32, Datum)>> {
    decode_row_only(buf, |_| true)
}

/// As [`decode_row`], returning only the columns whose id `keep` accepts. The others are still
/// checked but not copied out: a filter that reads one small column skips the row's vector.
pub fn decode_row_only(buf: &[u8], keep: impl Fn(u32) -> bool) -> Result<Vec<(u32, Datum)>> {
    decode_row_until(buf, keep, None)
}

/// The columns `ids` of a row (those stored: a NULL is not), reading no further than the last
/// of them: a scan that needs two leading columns skips the rest of every row.
pub fn decode_row_some(buf: &[u8], ids: &[u32]) -> Result<Vec<(u32, Datum)>> {
    decode_row_until(buf, |id| ids.contains(&id), Some(ids.len()))
}

fn decode_row_until(buf: &[u8], keep: impl Fn(u32) -> bool, all: Option<usize>) -> Result<Vec<(u32, Datum)>> {
    let mut r = Reader { buf };
    let version = r.byte()?;
    if version != ROW_VERSION {
        return Err(corrupt(format!("unknown row format version {version}")));
    }
    let count = r.varint_u64()?;
    // Every column takes at least two bytes; don't let a corrupt count
    // reserve a huge vector.
    let mut cols = Vec::with_capacity((count as usize).min(r.buf.len() / 2));
    for _ in 0..count {
        let id = u32::try_from(r.varint_u64()?).map_err(|_| corrupt("column id out of range"))?;
        let kept = keep(id);
        let datum = match r.byte()? {
            TAG_NULL => Datum::Null,
            TAG_INT => Datum::Int(r.zigzag_i64()?),
            TAG_UINT => Datum::UInt(r.varint_u64()?),
            TAG_FLOAT => Datum::Float(f64::from_le_bytes(r.array()?)),
            TAG_BYTES => {
                let len = usize::try_from(r.varint_u64()?)
                    .map_err(|_| corrupt("bytes length out of range"))?;
                let raw = r.take(len)?;
                if !kept {
                    continue;
                }
                Datum::Bytes(raw.to_vec())
            }
            TAG_DECIMAL => {
                let scale = r.byte()?;
                Datum::Decimal {
                    value: unzigzag(r.varint()?),
                    scale,
                }
            }
            TAG_VECTOR => {
                let dim = u32::from_le_bytes(r.array()?) as usize;
                let len = dim
                    .checked_mul(4)
                    .ok_or_else(|| corrupt("vector too large"))?;
                let raw = r.take(len)?;
                if !kept {
                    continue;
                }
                Datum::Vector(
                    raw.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                )
            }
            TAG_DATE => {
                let v = i32::try_from(r.zigzag_i64()?).map_err(|_| corrupt("date out of range"))?;
                Datum::Date(v)
            }
            TAG_DATETIME => Datum::DateTime(r.zigzag_i64()?),
            tag => return Err(corrupt(format!("unknown column type tag {tag}"))),
        };
        if kept {
            cols.push((id, datum));
            if Some(cols.len()) == all {
                return Ok(cols);
            }
        }
    }
    if !r.buf.is_empty() {
        return Err(corrupt(format!("{} trailing bytes after row", r.buf.len())));
    }
    Ok(cols)
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::Corrupt(msg.into())
}

fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

fn unzigzag(v: u128) -> i128 {
    ((v >> 1) as i128) ^ -((v & 1) as i128)
}

/// LEB128: 7 bits per byte, high bit set on all but the last byte.
fn put_varint(buf: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// A bounds-checked cursor over row bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(corrupt("row truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("took exactly N bytes"))
    }

    fn varint(&mut self) -> Result<u128> {
        let mut v: u128 = 0;
        for shift in (0..128).step_by(7) {
            let b = self.byte()?;
            let bits = (b & 0x7f) as u128;
            if shift == 126 && bits > 0b11 {
                return Err(corrupt("varint overflow"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long"))
    }

    fn varint_u64(&mut self) -> Result<u64> {
        u64::try_from(self.varint()?).map_err(|_| corrupt("integer out of range"))
    }

    fn zigzag_i64(&mut self) -> Result<i64> {
        i64::try_from(unzigzag(self.varint()?)).map_err(|_| corrupt("integer out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestRng;
    use std::cmp::Ordering;

    fn key(d: &Datum) -> Vec<u8> {
        encode_key(std::slice::from_ref(d))
    }

    /// Asserts that byte order of encodings agrees with `cmp` for every pair.
    fn assert_order<T: std::fmt::Debug>(
        values: &[T],
        to_datum: impl Fn(&T) -> Datum,
        cmp: impl Fn(&T, &T) -> Ordering,
    ) {
        for a in values {
            let ka = key(&to_datum(a));
            for b in values {
                let kb = key(&to_datum(b));
                assert_eq!(ka.cmp(&kb), cmp(a, b), "{a:?} vs {b:?}: {ka:?} vs {kb:?}");
            }
        }
    }

    #[test]
    fn i64_cmp_round_trip_and_order() {
        let mut rng = TestRng::new(1);
        let mut values = vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        values.extend((0..200).map(|_| rng.next_u64() as i64));
        values.extend((0..50).map(|_| rng.below(100) as i64 - 50));
        for &v in &values {
            assert_eq!(decode_i64_cmp(&encode_i64_cmp(v)).unwrap(), v);
        }
        assert_order(&values, |v| Datum::Int(*v), |a, b| a.cmp(b));
        assert_order(&values, |v| Datum::DateTime(*v), |a, b| a.cmp(b));
        let uints: Vec<u64> = values.iter().map(|v| *v as u64).collect();
        assert_order(&uints, |v| Datum::UInt(*v), |a, b| a.cmp(b));
        let dates: Vec<i32> = values.iter().map(|v| *v as i32).collect();
        assert_order(&dates, |v| Datum::Date(*v), |a, b| a.cmp(b));
    }

    #[test]
    fn float_order() {
        let mut rng = TestRng::new(2);
        let mut values = vec![
            f64::NEG_INFINITY,
            f64::MIN,
            -1.5,
            -f64::MIN_POSITIVE,
            -1e-310, // subnormal
            -0.0,
            0.0,
            1e-310,
            f64::MIN_POSITIVE,
            1.0,
            f64::MAX,
            f64::INFINITY,
        ];
        while values.len() < 300 {
            let f = f64::from_bits(rng.next_u64());
            if !f.is_nan() {
                values.push(f);
            }
        }
        values.extend((0..50).map(|_| rng.below(1000) as f64 / 8.0 - 60.0));
        assert_order(
            &values,
            |v| Datum::Float(*v),
            |a, b| a.partial_cmp(b).unwrap(),
        );
    }

    #[test]
    fn bytes_order_including_prefixes_and_padding_bytes() {
        let mut rng = TestRng::new(3);
        // A tiny alphabet with 0x00 and 0xff makes padding/marker confusions likely.
        let alphabet = [0x00u8, 0x01, 0x7f, 0xfe, 0xff];
        let mut values: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0; 8],
            vec![0; 9],
            vec![0xff; 8],
            vec![0xff; 16],
        ];
        for _ in 0..250 {
            let len = rng.below(20) as usize;
            values.push((0..len).map(|_| alphabet[rng.below(5) as usize]).collect());
        }
        // Prefix/extension pairs around group boundaries.
        for len in [7, 8, 9, 15, 16, 17] {
            let v: Vec<u8> = (0..len).map(|i| i as u8).collect();
            values.push(v[..len - 1].to_vec());
            values.push(v);
        }
        assert_order(&values, |v| Datum::Bytes(v.clone()), |a, b| a.cmp(b));
    }

    #[test]
    fn decimal_order_across_scales() {
        let mut rng = TestRng::new(4);
        let mut values: Vec<(i128, u8)> = vec![
            (0, 0),
            (0, 5),
            (1, 0),
            (10, 1),
            (-1, 0),
            (-10, 1),
            (5, 1),
            (-5, 1),
            (123, 2),
            (1230, 3),
            (12, 1),
            (-12, 1),
            (-123, 2),
            (i128::MAX, 0),
            (i128::MIN + 1, 0),
            (i128::MAX, 38),
            (1, 38),
        ];
        for _ in 0..300 {
            let magnitude = 10u64.pow(rng.below(10) as u32);
            let v = (rng.below(2 * magnitude + 1) as i128) - magnitude as i128;
            values.push((v, rng.below(8) as u8));
        }
        // Exact comparison of a·10^-sa vs b·10^-sb by rescaling with i128
        // where it fits, falling back to the (equal-scale) raw values.
        let cmp = |a: &(i128, u8), b: &(i128, u8)| -> Ordering {
            let scale = a.1.max(b.1);
            let rescale = |(v, s): (i128, u8)| {
                10i128
                    .checked_pow((scale - s) as u32)
                    .and_then(|m| v.checked_mul(m))
            };
            match (rescale(*a), rescale(*b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => panic!("test value out of exact range: {a:?} {b:?}"),
            }
        };
        let exact: Vec<_> = values
            .iter()
            .copied()
            .filter(|&(v, s)| v.unsigned_abs() < 10u128.pow(20) && s <= 10)
            .collect();
        assert_order(
            &exact,
            |&(value, scale)| Datum::Decimal { value, scale },
            cmp,
        );
        // Extremes, compared among themselves by hand.
        let big = |value, scale| key(&Datum::Decimal { value, scale });
        assert!(big(i128::MIN + 1, 0) < big(-1, 0));
        assert!(big(i128::MAX, 0) > big(i128::MAX, 1));
        assert!(big(i128::MAX, 38) > big(1, 0) && big(i128::MAX, 38) < big(2, 0));
        assert!(big(1, 38) > big(0, 0) && big(1, 38) < big(1, 37));
        // Equal values at different scales encode identically.
        assert_eq!(big(1230, 3), big(123, 2));
        assert_eq!(big(-5000, 3), big(-5, 0));
        assert_eq!(big(0, 9), big(0, 0));
    }

    #[test]
    fn tuples_compare_column_by_column() {
        let mut rng = TestRng::new(5);
        let alphabet = [0x00u8, 0x61, 0xff];
        let tuples: Vec<(Option<Vec<u8>>, i64)> = (0..200)
            .map(|_| {
                let s = (rng.below(5) != 0).then(|| {
                    let len = rng.below(11) as usize;
                    (0..len).map(|_| alphabet[rng.below(3) as usize]).collect()
                });
                (s, rng.below(5) as i64 - 2)
            })
            .collect();
        for a in &tuples {
            for b in &tuples {
                let enc = |t: &(Option<Vec<u8>>, i64)| {
                    encode_key(&[
                        t.0.clone().map_or(Datum::Null, Datum::Bytes),
                        Datum::Int(t.1),
                    ])
                };
                // Option's order puts None (NULL) first, as SQL indexes do.
                assert_eq!(enc(a).cmp(&enc(b)), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn null_sorts_before_every_value() {
        let null = key(&Datum::Null);
        for d in [
            Datum::Int(i64::MIN),
            Datum::UInt(0),
            Datum::Float(f64::NEG_INFINITY),
            Datum::Bytes(vec![]),
            Datum::Decimal {
                value: i128::MIN + 1,
                scale: 0,
            },
            Datum::Date(i32::MIN),
            Datum::DateTime(i64::MIN),
            Datum::Vector(vec![]),
        ] {
            assert!(null < key(&d), "{d:?}");
        }
    }

    #[test]
    fn row_and_index_keys() {
        assert_eq!(decode_row_key_handle(&row_key(5, -42)).unwrap(), -42);
        assert!(decode_row_key_handle(&index_key(5, 1, &[], Some(3))).is_err());
        assert!(decode_row_key_handle(b"t").is_err());
        let ik = index_key(
            5,
            2,
            &[Datum::Bytes(b"x".to_vec()), Datum::Int(1)],
            Some(i64::MIN),
        );
        assert!(ik.starts_with(&index_prefix(5, 2)));
        assert_eq!(decode_index_key_handle(&ik).unwrap(), i64::MIN);
        assert!(decode_index_key_handle(&row_key(5, 1)).is_err());
        assert!(decode_index_key_handle(&index_prefix(5, 2)).is_err());

        // Rows of a table sort by handle and stay inside the record range.
        let (start, end) = (record_prefix(5), prefix_end(&record_prefix(5)));
        let mut keys: Vec<_> = [-3i64, 7, 0, i64::MAX, i64::MIN]
            .iter()
            .map(|&h| row_key(5, h))
            .collect();
        keys.sort();
        let handles: Vec<i64> = keys
            .iter()
            .map(|k| decode_row_key_handle(k).unwrap())
            .collect();
        assert_eq!(handles, [i64::MIN, -3, 0, 7, i64::MAX]);
        for k in &keys {
            assert!(*k >= start && *k < end);
        }
        // Other tables and indexes of the same table are outside it.
        for other in [
            row_key(4, i64::MAX),
            row_key(6, i64::MIN),
            row_key(-5, 0),
            index_key(5, 1, &[Datum::Null], None),
        ] {
            assert!(!(other >= start && other < end), "{other:?}");
        }
        // Every index key lies within the table prefix range.
        let t = table_prefix(5);
        assert!(ik >= t && ik < prefix_end(&t));
    }

    #[test]
    fn prefix_end_cases() {
        assert_eq!(prefix_end(b"ab"), b"ac");
        assert_eq!(prefix_end(&[1, 0xff, 0xff]), [2]);
        assert_eq!(prefix_end(&[0xff, 0xff]), Vec::<u8>::new());
        assert_eq!(prefix_end(b""), Vec::<u8>::new());
        let p = [7u8, 0xff];
        assert!(prefix_end(&p).as_slice() > [7u8, 0xff, 0xff, 0xff].as_slice());
    }

    fn random_datum(rng: &mut TestRng) -> Datum {
        match rng.below(9) {
            0 => Datum::Null,
            1 => Datum::Int(rng.next_u64() as i64 >> rng.below(64)),
            2 => Datum::UInt(rng.next_u64() >> rng.below(64)),
            3 => loop {
                let f = f64::from_bits(rng.next_u64());
                if !f.is_nan() {
                    break Datum::Float(f);
                }
            },
            4 => Datum::Bytes((0..rng.below(40)).map(|_| rng.next_u64() as u8).collect()),
            5 => Datum::Decimal {
                value: (((rng.next_u64() as u128) << 64 | rng.next_u64() as u128) as i128)
                    >> rng.below(128),
                scale: rng.below(40) as u8,
            },
            6 => Datum::Vector(
                (0..rng.below(10))
                    .map(|_| rng.next_u64() as u32 as f32 / 7.0 - 1e8)
                    .collect(),
            ),
            7 => Datum::Date(rng.next_u64() as i32),
            _ => Datum::DateTime(rng.next_u64() as i64),
        }
    }

    #[test]
    fn row_round_trip() {
        let mut rng = TestRng::new(6);
        assert_eq!(decode_row(&encode_row(&[])).unwrap(), vec![]);
        let extremes = vec![
            (0, Datum::Int(i64::MIN)),
            (1, Datum::Int(i64::MAX)),
            (2, Datum::UInt(u64::MAX)),
            (
                3,
                Datum::Decimal {
                    value: i128::MIN,
                    scale: 255,
                },
            ),
            (
                4,
                Datum::Decimal {
                    value: i128::MAX,
                    scale: 0,
                },
            ),
            (5, Datum::Date(i32::MIN)),
            (u32::MAX, Datum::DateTime(i64::MIN)),
            (7, Datum::Float(-0.0)),
            (8, Datum::Vector(vec![])),
        ];
        assert_eq!(decode_row(&encode_row(&extremes)).unwrap(), extremes);
        for _ in 0..500 {
            let cols: Vec<(u32, Datum)> = (0..rng.below(8))
                .map(|_| {
                    (
                        rng.next_u64() as u32 >> rng.below(32),
                        random_datum(&mut rng),
                    )
                })
                .collect();
            let encoded = encode_row(&cols);
            assert_eq!(decode_row(&encoded).unwrap(), cols);
        }
    }

    #[test]
    fn vectors_are_stored_compactly() {
        let v: Vec<f32> = (0..384).map(|i| i as f32 * 0.25).collect();
        let row = encode_row(&[(1, Datum::Vector(v.clone()))]);
        // version + count + id + tag + dim + 4 bytes per value
        assert_eq!(row.len(), 4 + 4 + 384 * 4);
        assert_eq!(decode_row(&row).unwrap(), vec![(1, Datum::Vector(v))]);
    }

    #[test]
    fn decode_row_only_returns_the_kept_columns_and_still_checks_the_rest() {
        let mut rng = TestRng::new(9);
        for _ in 0..200 {
            let cols: Vec<(u32, Datum)> = (0..1 + rng.below(6))
                .map(|i| (i as u32, random_datum(&mut rng)))
                .collect();
            let encoded = encode_row(&cols);
            let keep = |id: u32| id % 2 == 1;
            let want: Vec<(u32, Datum)> = cols.iter().filter(|(id, _)| keep(*id)).cloned().collect();
            assert_eq!(decode_row_only(&encoded, keep).unwrap(), want);
            // A skipped column is still parsed: truncating it is an error.
            for len in 0..encoded.len() {
                assert!(decode_row_only(&encoded[..len], keep).is_err(), "truncated to {len}: {cols:?}");
            }
        }
        let v: Vec<f32> = (0..384).map(|i| i as f32).collect();
        let row = encode_row(&[(1, Datum::Int(7)), (2, Datum::Vector(v)), (3, Datum::Bytes(b"abc".to_vec()))]);
        assert_eq!(decode_row_only(&row, |id| id != 2).unwrap(), vec![(1, Datum::Int(7)), (3, Datum::Bytes(b"abc".to_vec()))]);
    }

    #[test]
    fn decode_row_some_returns_the_asked_columns_and_stops_after_them() {
        let mut rng = TestRng::new(10);
        for _ in 0..200 {
            let cols: Vec<(u32, Datum)> = (0..1 + rng.below(6)).map(|i| (i as u32, random_datum(&mut rng))).collect();
            let encoded = encode_row(&cols);
            for ids in [vec![0], vec![1, 2], vec![0, 3, 9], vec![4, 5]] {
                let want: Vec<(u32, Datum)> = cols.iter().filter(|(id, _)| ids.contains(id)).cloned().collect();
                assert_eq!(decode_row_some(&encoded, &ids).unwrap(), want, "{ids:?} of {cols:?}");
            }
        }
        // The columns after the last one asked for are not read (here: garbage).
        let mut row = encode_row(&[(1, Datum::Int(7)), (2, Datum::Int(8))]);
        row.extend_from_slice(b"not a column");
        assert_eq!(decode_row_some(&row, &[1]).unwrap(), vec![(1, Datum::Int(7))]);
    }

    #[test]
    fn decode_row_rejects_corrupt_input_without_panicking() {
        let mut rng = TestRng::new(8);
        for _ in 0..300 {
            let cols: Vec<(u32, Datum)> = (0..1 + rng.below(6))
                .map(|i| (i as u32, random_datum(&mut rng)))
                .collect();
            let encoded = encode_row(&cols);
            // Every strict truncation is detected.
            for len in 0..encoded.len() {
                assert!(
                    decode_row(&encoded[..len]).is_err(),
                    "truncated to {len}: {cols:?}"
                );
            }
            // Trailing garbage is detected.
            let mut longer = encoded.clone();
            longer.push(0);
            assert!(decode_row(&longer).is_err());
            // Random corruption must not panic (it may still decode).
            let mut bad = encoded.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(bad.len() as u64) as usize;
                bad[i] = rng.next_u64() as u8;
            }
            let _ = decode_row(&bad);
            let noise: Vec<u8> = (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect();
            let _ = decode_row(&noise);
        }
        // Specific hostile inputs.
        assert!(decode_row(&[2]).is_err()); // unknown version
        assert!(decode_row(&[1, 1, 0, 99]).is_err()); // unknown tag
        assert!(decode_row(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).is_err()); // huge count
        assert!(decode_row(&[1, 1, 0, TAG_VECTOR, 0xff, 0xff, 0xff, 0xff]).is_err()); // huge vector
        let mut long_varint = vec![1, 1, 0, TAG_INT];
        long_varint.extend([0xff; 30]);
        assert!(decode_row(&long_varint).is_err());
        assert!(matches!(decode_row(&[1, 1]), Err(Error::Corrupt(_))));
    }

    #[test]
    fn key_values_decode_to_what_was_encoded() {
        let values = vec![
            Datum::Null,
            Datum::Int(-5),
            Datum::Int(i64::MAX),
            Datum::UInt(u64::MAX),
            Datum::Float(-2.5),
            Datum::Float(1e300),
            Datum::Bytes(b"".to_vec()),
            Datum::Bytes(b"exactly8".to_vec()),
            Datum::Bytes(b"a longer text value".to_vec()),
            Datum::Decimal { value: -1234, scale: 2 },
            Datum::Decimal { value: 5, scale: 0 },
            Datum::Decimal { value: 1200, scale: 0 },
            Datum::Decimal { value: 7, scale: 4 },
            Datum::Decimal { value: 0, scale: 0 },
            Datum::Date(-3),
            Datum::DateTime(1_700_000_000_123_456),
        ];
        let key = index_key(7, 3, &values, Some(42));
        assert_eq!(decode_index_values(&key, values.len()).unwrap(), values);
        assert_eq!(decode_index_key_handle(&key).unwrap(), 42);
        // 12.30 comes back as 12.3.
        assert_eq!(decode_index_values(&index_key(1, 1, &[Datum::Decimal { value: 1230, scale: 2 }], None), 1).unwrap(), vec![Datum::Decimal { value: 123, scale: 1 }]);
    }
}
