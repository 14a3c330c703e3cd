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

/// `expr COLLATE name` in an expression: the value unchanged, the collation written beside it
/// as the second argument, so that `sql::coerce` compares by it (an explicit collation wins over
/// a column's, as MySQL's coercibility rules say).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Collate {
    signature: datafusion::logical_expr::Signature,
}

/// The function's name in plans.
pub const COLLATE_FN: &str = "mysql_collate";

pub fn collate_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{Signature, Volatility};
    datafusion::logical_expr::ScalarUDF::from(Collate { signature: Signature::any(2, Volatility::Immutable) })
}

impl datafusion::logical_expr::ScalarUDFImpl for Collate {
    fn name(&self) -> &str {
        COLLATE_FN
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(&self, t: &[datafusion::arrow::datatypes::DataType]) -> datafusion::common::Result<datafusion::arrow::datatypes::DataType> {
        Ok(t[0].clone())
    }
    fn invoke_with_args(&self, args: datafusion::logical_expr::ScalarFunctionArgs) -> datafusion::common::Result<datafusion::logical_expr::ColumnarValue> {
        Ok(args.args.into_iter().next().expect("two arguments"))
    }
}

/// The collation an expression names explicitly (`x COLLATE utf8mb4_general_ci`): Some(true)
/// for a case-insensitive one, Some(false) for a binary one, None when it names none.
pub fn explicit_ci(e: &datafusion::logical_expr::Expr) -> Option<bool> {
    use datafusion::logical_expr::Expr;
    match e {
        Expr::ScalarFunction(f) if f.name() == COLLATE_FN => match f.args.get(1) {
            Some(Expr::Literal(datafusion::common::ScalarValue::Utf8(Some(c)), _)) => Some(is_ci(c)),
            _ => None,
        },
        _ => None,
    }
}
