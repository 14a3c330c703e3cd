//! Collations: which text columns compare case-insensitively.
//!
//! TiDB's default is `utf8mb4_bin` (byte order, case-sensitive), and that is every text column's
//! collation unless a `COLLATE` says otherwise — on the column, on the table (`DEFAULT COLLATE=…`)
//! or on the database (`CREATE DATABASE … COLLATE …`), inherited in that order when the column or
//! table is created. A `_ci` collation (`utf8mb4_general_ci`, `utf8mb4_unicode_ci`,
//! `utf8mb4_0900_ai_ci`) compares case-insensitively, as TiDB's new collation framework does:
//! the column's Arrow field carries [`COLLATION_META`], and `sql::coerce` turns `=`, `<`, `LIKE`, …
//! on such a column into their case-insensitive forms.

use crate::error::{Result, SqlError};

/// Field metadata key: the collation of a text column whose collation is not binary.
pub const COLLATION_META: &str = "embedb.collation";

/// TiDB's default.
pub const DEFAULT: &str = "utf8mb4_bin";

/// The character set a collation belongs to (`utf8mb4_general_ci` → `utf8mb4`).
pub fn charset_of(collation: &str) -> &str {
    collation.split('_').next().unwrap_or("utf8mb4")
}

/// Whether `name` compares case-insensitively.
pub fn is_ci(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with("_ci")
}

/// A collation name as stored (lower case), or MySQL's 1273 for one this server does not know.
pub fn checked(name: &str) -> Result<String> {
    let n = name.trim_matches(['\'', '"', '`']).to_ascii_lowercase();
    if crate::sql::infoschema::collations().iter().any(|(c, ..)| *c == n) {
        Ok(n)
    } else {
        Err(SqlError::new(1273, "HY000", format!("Unknown collation: '{n}'")))
    }
}

/// The default collation of a character set (`CHARSET utf8mb4` alone means utf8mb4_bin in TiDB).
pub fn of_charset(charset: &str) -> String {
    match charset.trim_matches(['\'', '"', '`']).to_ascii_lowercase().as_str() {
        "utf8" | "utf8mb3" => "utf8_bin".into(),
        "binary" => "binary".into(),
        _ => DEFAULT.into(),
    }
}

/// `COLLATE` / `CHARSET` among `CREATE TABLE` / `CREATE DATABASE` options written as text
/// (`DEFAULT CHARSET=utf8mb4`, `COLLATE=utf8mb4_general_ci`).
pub fn from_options<'a>(opts: impl Iterator<Item = &'a str>) -> Result<Option<String>> {
    let mut charset = None;
    for o in opts {
        let t = o.trim();
        let up = t.to_ascii_uppercase();
        let up = up.trim_start_matches("DEFAULT").trim_start();
        let value = || t.rsplit(['=', ' ']).next().unwrap_or("").to_string();
        if up.starts_with("COLLATE") {
            return checked(&value()).map(Some);
        }
        if up.starts_with("CHARSET") || up.starts_with("CHARACTER SET") {
            charset = Some(of_charset(&value()));
        }
    }
    Ok(charset)
}
