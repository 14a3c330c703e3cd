//! Parsing: split a COM_QUERY text into statements and parse each with sqlparser's MySQL dialect
//! (DataFusion's re-export, so the AST goes straight into DataFusion's planner).
//!
//! Splitting is ours because MySQL clients send multi-statement texts and a parse error in the third
//! statement must not stop the first two from running — exactly as MySQL behaves.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::MySqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Result, SqlError};

/// Byte offsets of `target` outside quoted strings, quoted identifiers and comments (MySQL's
/// lexical rules: backslash escapes and doubled quotes in strings, `-- ` needs a space after it).
pub fn code_positions(sql: &str, target: u8) -> Vec<usize> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'\\' && q != b'`' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q {
                        if i + 1 < b.len() && b[i + 1] == q {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            c if c == target => out.push(i),
            _ => {}
        }
        i += 1;
    }
    out
}

/// Split on `;` outside quotes and comments. Returns the non-empty statements, trimmed.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in code_positions(sql, b';').into_iter().chain([sql.len()]) {
        let s = strip_leading_comments(&sql[start..end]);
        if !s.is_empty() {
            out.push(s.to_string());
        }
        start = end + 1;
    }
    out
}

/// The statement without the comments in front of it ("" when it is only comments), so that
/// `/* app */ SHOW TABLES` is recognised as SHOW.
fn strip_leading_comments(s: &str) -> &str {
    let mut rest = s.trim();
    loop {
        if rest.is_empty() {
            return rest;
        }
        if let Some(r) = rest.strip_prefix("/*") {
            // Executable comments (/*! … */) are statements for MySQL; we treat them as comments.
            match r.find("*/") {
                Some(p) => rest = r[p + 2..].trim(),
                None => return "",
            }
        } else if rest.starts_with("--") || rest.starts_with('#') {
            match rest.find('\n') {
                Some(p) => rest = rest[p + 1..].trim(),
                None => return "",
            }
        } else {
            return rest;
        }
    }
}

/// Parse one statement.
pub fn parse_one(sql: &str) -> Result<Statement> {
    let mut stmts = Parser::parse_sql(&MySqlDialect {}, sql).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.trim_start_matches("sql parser error: ");
        SqlError::syntax(format!("near \"{}\": {msg}", near(sql)))
    })?;
    match stmts.len() {
        1 => Ok(stmts.remove(0)),
        0 => Err(SqlError::new(1065, "42000", "Query was empty")),
        _ => Err(SqlError::syntax(format!("near \"{}\"", near(sql)))),
    }
}

fn near(sql: &str) -> String {
    sql.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_comments() {
        let s = split_statements("select 'a;b'; select \"c;\" -- x;y\n; /* ; */ select `d;`;;");
        assert_eq!(s, vec!["select 'a;b'", "select \"c;\" -- x;y", "select `d;`"]);
    }

    #[test]
    fn escaped_quotes() {
        let s = split_statements(r"insert into t values ('it\'s; ok', 'a''b;'); select 1");
        assert_eq!(s.len(), 2);
    }
}
