//! Primitive encodings and the generic packets built from them.
//!
//! Integers are little-endian. A *length-encoded integer* (lenenc) is one byte
//! below 251, else a marker byte and 2 (`0xfc`), 3 (`0xfd`) or 8 (`0xfe`)
//! bytes; `0xfb` stands for NULL in text rows. A lenenc *string* is a lenenc
//! length followed by that many bytes.
//!
//! With those, the generic packets are:
//!
//! ```text
//! OK   00|fe  lenenc affected_rows  lenenc last_insert_id  u16 status  u16 warnings  [lenenc info]
//! ERR  ff     u16 code  '#'  5-byte sqlstate  message
//! EOF  fe     u16 warnings  u16 status                    (only without DEPRECATE_EOF)
//! ColumnDefinition41:
//!      lenenc "def" schema table org_table name org_name, lenenc 0x0c,
//!      u16 collation, u32 length, u8 type, u16 flags, u8 decimals, 2 zero bytes
//!      [+ lenenc default value, for COM_FIELD_LIST only]
//! ```
//!
//! [`Reader`] is the checked cursor all incoming packets are parsed with: every
//! read returns `Err(Malformed)` instead of panicking when bytes run out.

use crate::types::{ColumnDef, ErrorInfo};

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_lenenc_int(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if v < 1 << 16 {
        out.push(0xfc);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v < 1 << 24 {
        out.push(0xfd);
        out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
    } else {
        out.push(0xfe);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

pub(crate) fn put_lenenc_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_lenenc_int(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// An OK packet. `header` is 0x00, or 0xfe when it replaces an EOF
/// (CLIENT_DEPRECATE_EOF). A non-empty `info` is sent length-encoded.
pub(crate) fn ok_packet(
    header: u8,
    affected: u64,
    last_id: u64,
    status: u16,
    warnings: u16,
    info: &str,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(16 + info.len());
    p.push(header);
    put_lenenc_int(&mut p, affected);
    put_lenenc_int(&mut p, last_id);
    put_u16(&mut p, status);
    put_u16(&mut p, warnings);
    // Servers write the info text length-encoded (MySQL's net_store_data); MariaDB's client
    // reads it that way and rejects a bare string as a malformed packet.
    if !info.is_empty() {
        put_lenenc_int(&mut p, info.len() as u64);
        p.extend_from_slice(info.as_bytes());
    }
    p
}

pub(crate) fn eof_packet(warnings: u16, status: u16) -> Vec<u8> {
    let mut p = vec![0xfe];
    put_u16(&mut p, warnings);
    put_u16(&mut p, status);
    p
}

pub(crate) fn err_packet(e: &ErrorInfo) -> Vec<u8> {
    let mut p = Vec::with_capacity(9 + e.message.len());
    p.push(0xff);
    put_u16(&mut p, e.code);
    p.push(b'#');
    let state = e.sql_state.as_bytes();
    p.extend_from_slice(if state.len() == 5 { state } else { b"HY000" });
    p.extend_from_slice(e.message.as_bytes());
    p
}

/// ColumnDefinition41; `field_list` appends the (NULL) default value that
/// COM_FIELD_LIST replies carry.
pub(crate) fn column_def_packet(c: &ColumnDef, field_list: bool) -> Vec<u8> {
    let mut p = Vec::with_capacity(32 + c.name.len() * 2 + c.table.len() * 2 + c.schema.len());
    put_lenenc_bytes(&mut p, b"def");
    put_lenenc_bytes(&mut p, c.schema.as_bytes());
    put_lenenc_bytes(&mut p, c.table.as_bytes());
    put_lenenc_bytes(&mut p, c.org_table.as_bytes());
    put_lenenc_bytes(&mut p, c.name.as_bytes());
    put_lenenc_bytes(&mut p, c.org_name.as_bytes());
    p.push(0x0c);
    put_u16(&mut p, c.charset);
    put_u32(&mut p, c.length);
    p.push(c.column_type as u8);
    put_u16(&mut p, c.flags);
    p.push(c.decimals);
    p.extend_from_slice(&[0, 0]);
    if field_list {
        p.push(0xfb);
    }
    p
}

/// Ran out of bytes, or found an impossible encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

pub(crate) type Parse<T> = Result<T, Malformed>;

/// A checked cursor over an incoming payload.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn bytes(&mut self, n: usize) -> Parse<&'a [u8]> {
        if n > self.buf.len() {
            return Err(Malformed);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub fn u8(&mut self) -> Parse<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Parse<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Parse<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Parse<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A lenenc integer; the NULL (0xfb) and ERR (0xff) markers are malformed here.
    pub fn lenenc_int(&mut self) -> Parse<u64> {
        match self.u8()? {
            b @ 0..=250 => Ok(b as u64),
            0xfc => Ok(self.u16()? as u64),
            0xfd => {
                let b = self.bytes(3)?;
                Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]) as u64)
            }
            0xfe => self.u64(),
            _ => Err(Malformed),
        }
    }

    pub fn lenenc_bytes(&mut self) -> Parse<&'a [u8]> {
        let n = self.lenenc_int()?;
        let n = usize::try_from(n).map_err(|_| Malformed)?;
        self.bytes(n)
    }

    /// Bytes up to a NUL (consumed); without a NUL, the rest of the packet.
    pub fn nul_terminated(&mut self) -> &'a [u8] {
        match self.buf.iter().position(|&b| b == 0) {
            Some(i) => {
                let s = &self.buf[..i];
                self.buf = &self.buf[i + 1..];
                s
            }
            None => self.rest(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_round_trip() {
        for v in [
            0u64,
            250,
            251,
            0xffff,
            0x10000,
            0xff_ffff,
            0x100_0000,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_lenenc_int(&mut b, v);
            let mut r = Reader::new(&b);
            assert_eq!(r.lenenc_int(), Ok(v));
            assert!(r.is_empty());
        }
        assert_eq!(Reader::new(&[0xfb]).lenenc_int(), Err(Malformed));
        assert_eq!(Reader::new(&[0xfe, 1, 2]).lenenc_int(), Err(Malformed));
        assert_eq!(Reader::new(&[5, b'a']).lenenc_bytes(), Err(Malformed));
    }

    #[test]
    fn err_packet_pads_bad_sqlstate() {
        let p = err_packet(&ErrorInfo::new(8200, "x", "m"));
        assert_eq!(p, b"\xff\x08\x20#HY000m");
    }
}
