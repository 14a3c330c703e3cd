//! The vocabulary a [`Handler`](crate::Handler) speaks: column definitions,
//! cell values and responses.
//!
//! A `SELECT` travels through these types like this: the handler builds a
//! [`Response::ResultSet`] whose `columns` are [`ColumnDef`]s (each becomes one
//! ColumnDefinition41 packet, every field sent verbatim — collation, length,
//! type, flags, decimals) and whose `rows` are `Vec<Value>`s (each becomes one
//! text-protocol or binary-protocol row packet, see `codec.rs`). Statements
//! that change data answer [`Response::Ok`] with an [`OkInfo`]; failures
//! answer [`Response::Error`] with any `code`/`sql_state` the handler likes
//! (TiDB codes such as 8200 or 9007 included).

use crate::consts::{collations, flags};

/// MySQL column types as they appear on the wire.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Decimal = 0x00,
    Tiny = 0x01,
    Short = 0x02,
    Long = 0x03,
    Float = 0x04,
    Double = 0x05,
    Null = 0x06,
    Timestamp = 0x07,
    LongLong = 0x08,
    Int24 = 0x09,
    Date = 0x0a,
    Time = 0x0b,
    DateTime = 0x0c,
    Year = 0x0d,
    VarChar = 0x0f,
    Bit = 0x10,
    Json = 0xf5,
    NewDecimal = 0xf6,
    Enum = 0xf7,
    Set = 0xf8,
    TinyBlob = 0xf9,
    MediumBlob = 0xfa,
    LongBlob = 0xfb,
    Blob = 0xfc,
    VarString = 0xfd,
    String = 0xfe,
    Geometry = 0xff,
}

impl ColumnType {
    /// The type for a wire byte, if it is one we model.
    pub fn from_u8(b: u8) -> Option<ColumnType> {
        use ColumnType::*;
        Some(match b {
            0x00 => Decimal,
            0x01 => Tiny,
            0x02 => Short,
            0x03 => Long,
            0x04 => Float,
            0x05 => Double,
            0x06 => Null,
            0x07 => Timestamp,
            0x08 => LongLong,
            0x09 => Int24,
            0x0a => Date,
            0x0b => Time,
            0x0c => DateTime,
            0x0d => Year,
            0x0f => VarChar,
            0x10 => Bit,
            0xf5 => Json,
            0xf6 => NewDecimal,
            0xf7 => Enum,
            0xf8 => Set,
            0xf9 => TinyBlob,
            0xfa => MediumBlob,
            0xfb => LongBlob,
            0xfc => Blob,
            0xfd => VarString,
            0xfe => String,
            0xff => Geometry,
            _ => return None,
        })
    }

    /// Integer, floating point and decimal types.
    pub fn is_numeric(self) -> bool {
        use ColumnType::*;
        matches!(
            self,
            Decimal | NewDecimal | Tiny | Short | Long | Int24 | LongLong | Float | Double | Year
        )
    }
}

/// One column of a result set (ColumnDefinition41). Every field is sent as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub schema: String,
    pub table: String,
    pub org_table: String,
    pub name: String,
    pub org_name: String,
    /// Collation id: 33 utf8_general_ci, 45/46 utf8mb4_*, 63 binary.
    pub charset: u16,
    /// Maximum display length.
    pub length: u32,
    pub column_type: ColumnType,
    /// See [`crate::flags`].
    pub flags: u16,
    /// Fractional digits: fsp for temporal types, scale for decimals, 31
    /// ("not fixed") for floating point. In the text protocol a FLOAT/DOUBLE
    /// column with decimals 1..=30 prints that many digits and a
    /// DATETIME/TIMESTAMP/TIME column with decimals 1..=6 prints that many
    /// fractional-second digits.
    pub decimals: u8,
}

impl ColumnDef {
    /// A column with the usual defaults for its type: utf8mb4_bin (46) for
    /// character types, binary (63, with the BINARY flag) for everything else,
    /// a typical display length, decimals 31 for FLOAT/DOUBLE, 0 otherwise.
    pub fn new(name: impl Into<String>, column_type: ColumnType) -> ColumnDef {
        use ColumnType::*;
        let name = name.into();
        let length: u32 = match column_type {
            Tiny => 4,
            Short => 6,
            Int24 => 9,
            Long => 11,
            LongLong => 20,
            Float => 12,
            Double => 22,
            Decimal | NewDecimal => 65,
            Year => 4,
            Date => 10,
            Time => 10,
            DateTime | Timestamp => 19,
            Null => 0,
            Bit => 1,
            TinyBlob => 255,
            Blob => 65_535,
            MediumBlob => 16_777_215,
            LongBlob | Json | Geometry => u32::MAX,
            VarChar | VarString | String | Enum | Set => 1024,
        };
        let textual = matches!(
            column_type,
            VarChar
                | VarString
                | String
                | Enum
                | Set
                | TinyBlob
                | Blob
                | MediumBlob
                | LongBlob
                | Json
        );
        let (charset, fl) = if textual {
            (collations::UTF8MB4_BIN, 0)
        } else {
            (collations::BINARY, flags::BINARY)
        };
        let fl = match column_type {
            TinyBlob | Blob | MediumBlob | LongBlob => fl | flags::BLOB,
            _ => fl,
        };
        ColumnDef {
            schema: std::string::String::new(),
            table: std::string::String::new(),
            org_table: std::string::String::new(),
            org_name: name.clone(),
            name,
            charset,
            length,
            column_type,
            flags: fl,
            decimals: if matches!(column_type, Float | Double) {
                31
            } else {
                0
            },
        }
    }
}

/// A value in a result row or a prepared-statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// Strings, decimals as text, blobs, JSON, vectors as text.
    Bytes(Vec<u8>),
    /// A DECIMAL parameter of COM_STMT_EXECUTE, as its text (`-123.450`).
    Decimal(String),
    Date {
        year: u16,
        month: u8,
        day: u8,
    },
    DateTime {
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micro: u32,
    },
    Time {
        negative: bool,
        days: u32,
        hours: u8,
        minutes: u8,
        seconds: u8,
        micro: u32,
    },
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::UInt(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Double(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Value {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Bytes(v.as_bytes().to_vec())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Bytes(v.into_bytes())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// The payload of an OK packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OkInfo {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub warnings: u16,
    /// Human-readable info, e.g. `Rows matched: 1  Changed: 1  Warnings: 0`.
    pub info: String,
}

/// The payload of an ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    pub code: u16,
    /// Five characters; anything else is replaced by `HY000` on the wire.
    pub sql_state: String,
    pub message: String,
}

impl ErrorInfo {
    pub fn new(code: u16, sql_state: impl Into<String>, message: impl Into<String>) -> ErrorInfo {
        ErrorInfo {
            code,
            sql_state: sql_state.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ERROR {} ({}): {}",
            self.code, self.sql_state, self.message
        )
    }
}

impl std::error::Error for ErrorInfo {}

/// What one statement produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Ok(OkInfo),
    /// A result set. With no columns it is sent as a plain OK.
    ResultSet {
        columns: Vec<ColumnDef>,
        rows: Vec<Vec<Value>>,
        warnings: u16,
    },
    Error(ErrorInfo),
}

/// What `COM_STMT_PREPARE` reports back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareInfo {
    /// Number of `?` placeholders.
    pub params: usize,
    /// The result columns, if known (may be empty).
    pub columns: Vec<ColumnDef>,
}

/// What the client told us in its handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub connection_id: u32,
    pub user: String,
    /// The capability flags the client sent (not intersected with ours).
    pub client_capabilities: u32,
    /// The database from the handshake (CLIENT_CONNECT_WITH_DB), if non-empty.
    pub database: Option<String>,
    /// CLIENT_FOUND_ROWS: report matched rather than changed rows for UPDATE.
    pub found_rows: bool,
    /// The client's collation id from the handshake (e.g. 45, 255).
    pub collation: u8,
    /// Connection attributes (CLIENT_CONNECT_ATTRS), e.g. `_client_name`.
    pub attributes: Vec<(String, String)>,
    /// Set when the client switched to TLS before logging in.
    pub tls: Option<TlsInfo>,
}

/// The TLS session of a connection, named as MySQL's `Ssl_version` and
/// `Ssl_cipher` status variables show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// OpenSSL's name of the suite, e.g. `TLS_AES_128_GCM_SHA256`.
    pub cipher: String,
}
