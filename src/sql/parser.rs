//! Parsing: split a COM_QUERY text into statements and parse each with sqlparser's MySQL dialect
//! (DataFusion's re-export, so the AST goes straight into DataFusion's planner).
//!
//! Splitting is ours because MySQL clients send multi-statement texts and a parse error in the third
//! statement must not stop the first two from running — exactly as MySQL behaves.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Result, SqlError};

/// Byte offsets of `target` outside quoted strings, quoted identifiers and comments (MySQL's
/// lexical rules: backslash escapes and doubled quotes in strings, `-- ` needs a space after it).
pub fn code_positions(sql: &str, target: u8) -> Vec<usize> {
    let mut out = Vec::new();
    scan(sql, |i, c| {
        if c == target {
            out.push(i)
        }
    }, |_, _| {});
    out
}

/// MySQL's lexical walk: `code(i, byte)` for each byte outside quoted strings, quoted
/// identifiers and comments; `block_comment(start, end)` for each `/* … */` (end past the `*/`).
fn scan(sql: &str, mut code: impl FnMut(usize, u8), mut block_comment: impl FnMut(usize, usize)) {
    let b = sql.as_bytes();
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
                let start = i;
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
                if i < b.len() {
                    block_comment(start, i + 1);
                }
            }
            c => code(i, c),
        }
        i += 1;
    }
}

/// The version that executable comments are compared with: the MySQL version we report (8.0.11).
const EXECUTABLE_COMMENT_VERSION: u32 = 80011;

/// MySQL's executable comments, as mysqldump writes them: `/*! body */` and `/*!NNNNN body */`
/// with NNNNN ≤ 80011 become `body`; a newer version's comment, MariaDB's `/*M!…*/` and TiDB's
/// feature comments `/*T![feature] … */` stay comments. Text in quotes is never touched.
pub fn expand_executable_comments(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains("/*!") {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut comments = Vec::new();
    scan(sql, |_, _| {}, |start, end| comments.push((start, end)));
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    for (at, end) in comments {
        let Some(body) = sql[at..end - 2].strip_prefix("/*!") else { continue };
        let digits = body.bytes().take_while(u8::is_ascii_digit).count();
        let runs = match digits {
            0 => true,
            5 | 6 => body[..digits].parse::<u32>().is_ok_and(|v| v <= EXECUTABLE_COMMENT_VERSION),
            _ => false,
        };
        out.push_str(&sql[copied..at]);
        out.push(' ');
        if runs {
            out.push_str(&body[digits..]);
            out.push(' ');
        }
        copied = end;
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    std::borrow::Cow::Owned(out)
}

/// Split on `;` outside quotes and comments, after running executable comments
/// ([`expand_executable_comments`]). Returns the non-empty statements, trimmed.
pub fn split_statements(sql: &str) -> Vec<String> {
    let sql = &*expand_executable_comments(sql);
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

/// How deep an expression tree may nest. The planner and the evaluator walk expression trees
/// recursively (DataFusion's derived `Clone` and `Drop` included), so a bound on depth is a bound
/// on stack: statements run on threads with [`STATEMENT_STACK_BYTES`] of stack, which the
/// crash test (`tests/python/test_hostile.py`) shows holds this depth with room to spare.
pub const MAX_NESTING: usize = 3000;

/// How deeply SELECTs may nest inside each other. DataFusion's plan checks walk nested
/// subqueries in time that doubles with each level, so 50 levels would run for hours; MySQL's
/// own limit is 63 (1473).
pub const MAX_QUERY_NESTING: usize = 16;

/// How deep the parser itself may recurse (see `parse_one`).
pub const PARSER_RECURSION_LIMIT: usize = 500;

/// The stack of every thread that runs statements (the server's runtime workers).
pub const STATEMENT_STACK_BYTES: usize = 64 << 20;

/// Refuse texts whose expression trees would nest deeper than [`MAX_NESTING`], before they are
/// parsed: the parser builds `1+1+…+1` as a left-deep tree without recursing, but everything after
/// it recurses, and even dropping the tree does. MySQL answers such a statement with 1436.
///
/// The depth is over-estimated from the tokens (read by the same lexical walk as statement
/// splitting, so quoted text and comments count for nothing), without parsing: inside each
/// parenthesis, every operator since the last comma may add a level (a left-deep chain), and every
/// open parenthesis adds one. Lists (`IN (…)`, VALUES rows, select lists) reset at their commas,
/// so long lists pass.
pub fn check_nesting(sql: &str) -> Result<()> {
    let b = sql.as_bytes();
    let mut n = Nesting { frames: vec![0], queries: vec![false], ..Default::default() };
    // The token being read: (start, end, is a word). Words and operator runs span several bytes;
    // a gap in the code bytes (a quoted string, a comment) ends one.
    let mut token: Option<(usize, usize, bool)> = None;
    let flush = |n: &mut Nesting, t: Option<(usize, usize, bool)>| match t {
        Some((start, end, true)) => n.word(&b[start..end]),
        Some((start, end, false)) => n.operators(&b[start..end]),
        None => {}
    };
    scan(
        sql,
        |i, c| {
            let kind = if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' {
                Some(true)
            } else if is_operator(c) {
                Some(false)
            } else {
                None
            };
            match (token, kind) {
                (Some((start, end, word)), Some(k)) if k == word && end == i => token = Some((start, i + 1, word)),
                _ => {
                    flush(&mut n, token.take());
                    match kind {
                        Some(k) => token = Some((i, i + 1, k)),
                        None => n.punctuation(c),
                    }
                }
            }
        },
        |_, _| {},
    );
    flush(&mut n, token);
    if let Some(e) = n.error {
        return Err(e);
    }
    if n.deepest > MAX_NESTING {
        return Err(SqlError::new(
            1436,
            "HY000",
            format!(
                "Thread stack overrun: the statement's expressions nest about {} levels deep, more than the {MAX_NESTING} allowed; split it or use an IN list",
                n.deepest
            ),
        ));
    }
    Ok(())
}

fn is_operator(c: u8) -> bool {
    matches!(c, b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'^' | b'~' | b'!' | b'=' | b'<' | b'>')
}

/// `check_nesting`'s count, fed one token at a time.
#[derive(Default)]
struct Nesting {
    /// Per open parenthesis (the statement itself first): operators since its last comma.
    frames: Vec<usize>,
    /// Per open parenthesis: whether a SELECT opened inside it (a subquery level).
    queries: Vec<bool>,
    /// The sum of `frames`.
    ops: usize,
    query_depth: usize,
    deepest: usize,
    error: Option<SqlError>,
}

impl Nesting {
    fn add_ops(&mut self, k: usize) {
        *self.frames.last_mut().expect("the outermost frame is never popped") += k;
        self.ops += k;
        self.deepest = self.deepest.max(self.ops + self.frames.len());
    }

    fn punctuation(&mut self, c: u8) {
        match c {
            b'(' => {
                self.frames.push(0);
                self.queries.push(false);
            }
            b')' if self.frames.len() > 1 => {
                self.ops -= self.frames.pop().unwrap_or(0);
                if self.queries.pop() == Some(true) {
                    self.query_depth -= 1;
                }
            }
            b',' => {
                let last = self.frames.last_mut().expect("the outermost frame is never popped");
                self.ops -= *last;
                *last = 0;
            }
            _ => {}
        }
        self.deepest = self.deepest.max(self.ops + self.frames.len());
    }

    /// A run of operator characters: `<=`, `<>`, `->>`, `||` are one operator; `- - 1` and
    /// `!!1` are several.
    fn operators(&mut self, run: &[u8]) {
        let k = if run.iter().all(|c| matches!(c, b'-' | b'+' | b'~' | b'!')) { run.len() } else { 1 };
        self.add_ops(k);
    }

    fn word(&mut self, w: &[u8]) {
        if w.eq_ignore_ascii_case(b"SELECT") {
            let q = self.queries.last_mut().expect("the outermost frame is never popped");
            if !*q {
                *q = true;
                self.query_depth += 1;
                if self.query_depth > MAX_QUERY_NESTING && self.error.is_none() {
                    self.error = Some(SqlError::new(
                        1473,
                        "HY000",
                        format!("Too high level of nesting for select: more than {MAX_QUERY_NESTING} levels of subqueries"),
                    ));
                }
            }
        }
        const OPERATOR_WORDS: &[&str] =
            &["AND", "OR", "XOR", "NOT", "IS", "LIKE", "REGEXP", "RLIKE", "IN", "DIV", "MOD", "BETWEEN", "COLLATE", "ESCAPE", "UNION", "EXCEPT", "INTERSECT"];
        if OPERATOR_WORDS.iter().any(|k| w.eq_ignore_ascii_case(k.as_bytes())) {
            self.add_ops(1);
        }
    }
}

/// Parse one statement.
pub fn parse_one(sql: &str) -> Result<Statement> {
    check_nesting(sql)?;
    // sqlparser's own bound on its recursion (nested parentheses, subqueries, unary operators);
    // its default of 50 refuses statements that MySQL and ORMs write.
    let parsed = Parser::new(&crate::sql::dialect::TidbDialect::default()).with_recursion_limit(PARSER_RECURSION_LIMIT).try_with_sql(sql).and_then(|mut p| p.parse_statements());
    let mut stmts = parsed.map_err(|e| {
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
    fn nesting_is_bounded_but_lists_are_not() {
        let chain = |n: usize, op: &str| format!("SELECT {}", vec!["1"; n].join(op));
        assert!(check_nesting(&chain(MAX_NESTING - 10, "+")).is_ok());
        assert_eq!(check_nesting(&chain(MAX_NESTING + 10, "+")).unwrap_err().code, 1436);
        assert_eq!(check_nesting(&chain(MAX_NESTING + 10, " OR ")).unwrap_err().code, 1436);
        assert_eq!(check_nesting(&format!("SELECT {}1", "- ".repeat(MAX_NESTING + 1))).unwrap_err().code, 1436);
        assert_eq!(check_nesting(&format!("SELECT {}1", "NOT ".repeat(MAX_NESTING + 1))).unwrap_err().code, 1436);
        assert_eq!(check_nesting(&format!("SELECT {}1{}", "ABS(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING))).unwrap_err().code, 1436);
        // Lists reset at their commas, quoted text is not read, and each row of VALUES is its own.
        let list: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
        assert!(check_nesting(&format!("SELECT 1 IN ({})", list.join(","))).is_ok());
        assert!(check_nesting(&format!("SELECT '{}'", "+".repeat(100_000))).is_ok());
        assert!(check_nesting(&format!("SELECT 1 /* {} */", "(+".repeat(100_000))).is_ok());
        // A quoted string or a comment between two words keeps them two tokens.
        assert_eq!(check_nesting(&format!("SELECT 1{}", " OR/**/1".repeat(MAX_NESTING))).unwrap_err().code, 1436);
        let rows: Vec<String> = (0..10_000).map(|i| format!("({i}, 'a-b', {i}*2+1)")).collect();
        assert!(check_nesting(&format!("INSERT INTO t VALUES {}", rows.join(","))).is_ok());
        let nested = |n: usize| format!("SELECT {}1{}", "(SELECT ".repeat(n - 1), ")".repeat(n - 1));
        assert!(check_nesting(&nested(MAX_QUERY_NESTING)).is_ok());
        assert_eq!(check_nesting(&nested(MAX_QUERY_NESTING + 1)).unwrap_err().code, 1473);
        let side_by_side: Vec<String> = (0..100).map(|i| format!("(SELECT {i})")).collect();
        assert!(check_nesting(&format!("SELECT {}", side_by_side.join(", "))).is_ok());
        let conds: Vec<String> = (0..900).map(|i| format!("a <= {i}")).collect();
        assert!(check_nesting(&format!("SELECT * FROM t WHERE {}", conds.join(" AND "))).is_ok());
    }

    #[test]
    fn executable_comments_run_up_to_our_version() {
        let x = |s: &str| expand_executable_comments(s).split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(x("/*!40101 SET NAMES utf8mb4 */"), "SET NAMES utf8mb4");
        assert_eq!(x("/*!SET a=1*/"), "SET a=1");
        assert_eq!(x("CREATE TABLE t (a INT) /*!50100 ENGINE=InnoDB */ /*!90000 FUTURE */"), "CREATE TABLE t (a INT) ENGINE=InnoDB");
        assert_eq!(x("/*M!100616 SET NOTE_VERBOSITY=@@NOTE_VERBOSITY */"), "/*M!100616 SET NOTE_VERBOSITY=@@NOTE_VERBOSITY */");
        assert_eq!(x("SELECT '/*!40101 x */'"), "SELECT '/*!40101 x */'");
        assert_eq!(x("/*!80011 A */ /*!80012 B */"), "A");
        assert_eq!(split_statements("/*!40101 SET @a=1 */;\n/*!40014 SET @b=2 */;"), vec!["SET @a=1", "SET @b=2"]);
    }

    #[test]
    fn escaped_quotes() {
        let s = split_statements(r"insert into t values ('it\'s; ok', 'a''b;'); select 1");
        assert_eq!(s.len(), 2);
    }
}
