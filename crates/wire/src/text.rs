//! A statement's bytes as text. MySQL statements are text, except that a string literal may hold
//! any bytes: mysqldump writes BLOB values as raw bytes between quotes. Decoding the whole packet
//! lossily would turn those bytes into U+FFFD and corrupt a restore, so a literal that is not
//! UTF-8 is rewritten as the equivalent hex literal `X'…'` (its escapes undone first); everything
//! else is decoded as usual.

use std::borrow::Cow;

/// The text of a COM_QUERY / COM_STMT_PREPARE body (see the module doc).
pub fn statement_text(body: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(body) {
        return Cow::Borrowed(s);
    }
    let mut out: Vec<u8> = Vec::with_capacity(body.len() * 2);
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != b'\'' && c != b'"' {
            out.push(c);
            i += 1;
            continue;
        }
        // A quoted string: find its end and its value.
        let start = i;
        let mut value = Vec::new();
        i += 1;
        let mut closed = false;
        while i < body.len() {
            let b = body[i];
            if b == b'\\' && i + 1 < body.len() {
                unescape(body[i + 1], &mut value);
                i += 2;
                continue;
            }
            if b == c {
                if body.get(i + 1) == Some(&c) {
                    value.push(c);
                    i += 2;
                    continue;
                }
                closed = true;
                i += 1;
                break;
            }
            value.push(b);
            i += 1;
        }
        let raw = &body[start..i];
        if closed && std::str::from_utf8(raw).is_err() {
            out.extend_from_slice(b"X'");
            for b in &value {
                out.extend_from_slice(format!("{b:02X}").as_bytes());
            }
            out.push(b'\'');
        } else {
            out.extend_from_slice(raw);
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// MySQL's backslash escapes in string literals, appended to `value` (`\%` and `\_` keep their
/// backslash; any other escaped byte stands for itself).
fn unescape(c: u8, value: &mut Vec<u8>) {
    match c {
        b'0' => value.push(0),
        b'n' => value.push(b'\n'),
        b'r' => value.push(b'\r'),
        b't' => value.push(b'\t'),
        b'b' => value.push(0x08),
        b'Z' => value.push(0x1a),
        b'%' | b'_' => value.extend_from_slice(&[b'\\', c]),
        other => value.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_text_and_binary_literals_become_hex() {
        assert!(matches!(statement_text(b"SELECT 'caf\xc3\xa9'"), Cow::Borrowed("SELECT 'café'")));
        assert_eq!(statement_text(b"INSERT INTO t VALUES (1,'\x00\xff\\'\\\\\\0','ok \xc3\xa9')"), "INSERT INTO t VALUES (1,X'00FF275C00','ok é')");
        assert_eq!(statement_text(b"SELECT \"a\"\"\xfe\""), "SELECT X'6122FE'");
        // Bytes outside any literal are decoded as before (replacement characters).
        assert_eq!(statement_text(b"SELECT 1 \xff"), "SELECT 1 \u{fffd}");
    }
}
