//! MySQL-style errors: every failure that reaches a client carries a MySQL error code, a SQLSTATE and
//! a message in the words MySQL or TiDB use, so that drivers (pymysql, SQLAlchemy, pytidb) can react to
//! them exactly as they would against TiDB.
//!
//! Engine errors (DataFusion, storage) are translated here, in one place, by `From` impls.

use std::fmt;

use datafusion::error::DataFusionError;

/// An error as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlError {
    pub code: u16,
    pub state: &'static str,
    pub message: String,
}

pub type Result<T, E = SqlError> = std::result::Result<T, E>;

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ERROR {} ({}): {}", self.code, self.state, self.message)
    }
}

impl std::error::Error for SqlError {}

impl SqlError {
    pub fn new(code: u16, state: &'static str, message: impl Into<String>) -> Self {
        SqlError { code, state, message: message.into() }
    }
    /// 1105: TiDB's catch-all, also used for every vector and embedding error.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(1105, "HY000", message)
    }
    pub fn syntax(near: impl fmt::Display) -> Self {
        Self::new(
            1064,
            "42000",
            format!(
                "You have an error in your SQL syntax; check the manual that corresponds to your TiDB version for the right syntax to use {near}"
            ),
        )
    }
    pub fn unsupported(what: impl fmt::Display) -> Self {
        Self::new(1235, "42000", format!("This version of TiDB doesn't yet support '{what}'"))
    }
    pub fn no_such_table(db: &str, table: &str) -> Self {
        Self::new(1146, "42S02", format!("Table '{db}.{table}' doesn't exist"))
    }
    pub fn table_exists(table: &str) -> Self {
        Self::new(1050, "42S01", format!("Table '{table}' already exists"))
    }
    pub fn unknown_db(db: &str) -> Self {
        Self::new(1049, "42000", format!("Unknown database '{db}'"))
    }
    pub fn db_exists(db: &str) -> Self {
        Self::new(1007, "HY000", format!("Can't create database '{db}'; database exists"))
    }
    pub fn db_drop_missing(db: &str) -> Self {
        Self::new(1008, "HY000", format!("Can't drop database '{db}'; database doesn't exist"))
    }
    pub fn no_db() -> Self {
        Self::new(1046, "3D000", "No database selected")
    }
    pub fn unknown_column(col: &str, place: &str) -> Self {
        Self::new(1054, "42S22", format!("Unknown column '{col}' in '{place}'"))
    }
    pub fn dup_entry(value: &str, key: &str) -> Self {
        Self::new(1062, "23000", format!("Duplicate entry '{value}' for key '{key}'"))
    }
    pub fn bad_null(col: &str) -> Self {
        Self::new(1048, "23000", format!("Column '{col}' cannot be null"))
    }
    pub fn out_of_range(col: &str, row: usize) -> Self {
        Self::new(1264, "22003", format!("Out of range value for column '{col}' at row {row}"))
    }
    pub fn data_too_long(col: &str, row: usize) -> Self {
        Self::new(1406, "22001", format!("Data too long for column '{col}' at row {row}"))
    }
    pub fn wrong_value_count(row: usize) -> Self {
        Self::new(1136, "21S01", format!("Column count doesn't match value count at row {row}"))
    }
    pub fn param_count(func: &str) -> Self {
        Self::new(1582, "42000", format!("Incorrect parameter count in the call to native function '{func}'"))
    }
    pub fn write_conflict() -> Self {
        Self::new(
            WRITE_CONFLICT,
            "HY000",
            "Write conflict, reason=Optimistic [try again later]",
        )
    }
    pub fn unknown_system_var(name: &str) -> Self {
        Self::new(1193, "HY000", format!("Unknown system variable '{name}'"))
    }
}

/// TiDB's code for a transaction that lost a write conflict at commit.
pub const WRITE_CONFLICT: u16 = 9007;
/// TiDB's code for a commit whose outcome is unknown (it may or may not have taken effect).
pub const RESULT_UNDETERMINED: u16 = 8229;

impl From<embedb_storage::Error> for SqlError {
    fn from(e: embedb_storage::Error) -> Self {
        match e {
            embedb_storage::Error::WriteConflict => SqlError::write_conflict(),
            embedb_storage::Error::Undetermined(why) => SqlError::new(RESULT_UNDETERMINED, "HY000", why),
            other => SqlError::other(format!("storage: {other}")),
        }
    }
}

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> Self {
        translate_datafusion(e)
    }
}

impl From<std::io::Error> for SqlError {
    fn from(e: std::io::Error) -> Self {
        SqlError::other(format!("io: {e}"))
    }
}

/// DataFusion reports problems in its own words; map the ones a user can cause to MySQL's codes and
/// strip DataFusion's prefixes ("Execution error: ...") from the rest.
fn translate_datafusion(e: DataFusionError) -> SqlError {
    // Errors raised by our own code travel through DataFusion wrapped in `External`.
    if let Some(sql) = find_sql_error(&e) {
        return sql;
    }
    let msg = strip_prefixes(&e.find_root().to_string());
    if let Some(rest) = msg.strip_prefix("No field named ") {
        let col = rest.split("Valid fields").next().unwrap_or(rest);
        let col = col.split(". Did you mean").next().unwrap_or(col).trim().trim_end_matches('.');
        let col = col.trim_matches('"').replace('"', "");
        return SqlError::unknown_column(&col, "field list");
    }
    if msg.contains("Incorrect parameter count in the call to native function") {
        let name = msg.split('\'').nth(1).unwrap_or("").to_string();
        return SqlError::param_count(&name);
    }
    if msg.starts_with("Invalid function") || msg.contains("Invalid function '") {
        let name = msg.split('\'').nth(1).unwrap_or("").to_string();
        return SqlError::new(1305, "42000", format!("FUNCTION {name} does not exist"));
    }
    if let Some(rest) = msg.strip_prefix("Ambiguous reference to unqualified field ") {
        return SqlError::new(1052, "23000", format!("Column '{}' in field list is ambiguous", rest.trim()));
    }
    if msg.contains("more than one row") || msg.contains("Scalar subquery returned more than") {
        return SqlError::new(1242, "21000", "Subquery returns more than 1 row");
    }
    if msg.contains("UNION queries have different number of columns") || msg.contains("have different number of columns") {
        return SqlError::new(1222, "21000", "The used SELECT statements have a different number of columns");
    }
    if msg.contains("Divide by zero") {
        return SqlError::other("Division by 0");
    }
    if msg.starts_with("Invalid JSON text in argument") {
        return SqlError::new(3141, "22032", msg);
    }
    SqlError::other(msg)
}

fn find_sql_error(e: &DataFusionError) -> Option<SqlError> {
    match e {
        DataFusionError::External(inner) => inner.downcast_ref::<SqlError>().cloned(),
        DataFusionError::Context(_, inner) => find_sql_error(inner),
        DataFusionError::Shared(inner) => find_sql_error(inner),
        DataFusionError::Diagnostic(_, inner) => find_sql_error(inner),
        _ => None,
    }
}

/// "Execution error: vectors have different dimensions: 3 and 2" → "vectors have ...".
pub fn strip_prefixes(msg: &str) -> String {
    let mut m = msg.trim();
    loop {
        let before = m;
        for p in [
            "Execution error: ",
            "Error during planning: ",
            "Schema error: ",
            "Internal error: ",
            "This feature is not implemented: ",
            "Arrow error: ",
            "Invalid argument error: ",
            "Optimizer rule 'simplify_expressions' failed\ncaused by\n",
            "Optimizer rule 'simplify_expressions' failed caused by ",
            "External error: ",
            "Compute error: ",
            "Cast error: ",
        ] {
            if let Some(r) = m.strip_prefix(p) {
                m = r.trim_start();
            }
        }
        if m == before {
            break;
        }
    }
    // DataFusion sometimes appends a backtrace hint or a context trailer.
    let m = m.split("\nThis issue was likely caused by").next().unwrap_or(m);
    m.trim().to_string()
}

/// Wrap a `SqlError` so it can travel through DataFusion (from a UDF or a table scan) unchanged.
pub fn to_df(e: SqlError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
