//! Indexes beyond the ordered KV indexes: vector (HNSW) and, later, full-text.
//!
//! This first slice is the vector index DDL in all of TiDB's forms, with TiDB's restrictions and
//! error texts, recorded in the catalog (`IndexKind::Vector`), shown by `SHOW INDEX` as `HNSW` and
//! by `SHOW CREATE TABLE`:
//! - `CREATE TABLE t (…, VECTOR INDEX idx ((VEC_COSINE_DISTANCE(v))) [USING HNSW])` (also
//!   `VECTOR INDEX idx USING HNSW ((…))`);
//! - `CREATE VECTOR INDEX idx ON t ((VEC_L2_DISTANCE(v))) [USING HNSW]`;
//! - `ALTER TABLE t ADD VECTOR INDEX idx ((…)) [USING HNSW]`.
//!
//! sqlparser knows none of these, so `extract_vector_indexes` lifts them out of the statement text.
//! Searches still run as exact scans; the ANN structure comes with the HNSW work.

pub mod fulltext;
pub mod search;

use crate::error::{Result, SqlError};
use crate::sql::catalog::{IndexInfo, IndexKind, TableInfo};
use crate::sql::types::SqlType;

/// One vector index definition: name, metric (`cosine` | `l2`), column.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorIndexDef {
    pub name: Option<String>,
    pub metric: String,
    pub column: String,
}

pub fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Case-insensitive keyword at `i` (followed by a non-identifier character).
pub(crate) fn keyword(b: &[u8], i: usize, kw: &str) -> bool {
    let k = kw.as_bytes();
    i + k.len() <= b.len()
        && b[i..i + k.len()].eq_ignore_ascii_case(k)
        && (i + k.len() == b.len() || !(b[i + k.len()].is_ascii_alphanumeric() || b[i + k.len()] == b'_'))
}

pub fn ident(b: &[u8], i: usize) -> Option<(String, usize)> {
    if i < b.len() && b[i] == b'`' {
        let end = i + 1 + b[i + 1..].iter().position(|&c| c == b'`')?;
        return Some((String::from_utf8_lossy(&b[i + 1..end]).into_owned(), end + 1));
    }
    let mut j = i;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'$') {
        j += 1;
    }
    (j > i).then(|| (String::from_utf8_lossy(&b[i..j]).into_owned(), j))
}

/// The matching `)` of the `(` at `i`.
fn close_paren(b: &[u8], i: usize) -> Option<usize> {
    let mut depth = 0;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            b'\'' | b'"' | b'`' => {
                let q = b[j];
                j += 1;
                while j < b.len() && b[j] != q {
                    j += 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    None
}

/// `((VEC_COSINE_DISTANCE(col)))` → (metric function name, column).
fn parse_key_part(inner: &str) -> Result<(String, String)> {
    let t = inner.trim();
    let t = t.strip_prefix('(').and_then(|x| x.strip_suffix(')')).unwrap_or(t).trim();
    let open = t.find('(').ok_or_else(|| SqlError::syntax(format!("near '{inner}'")))?;
    let func = t[..open].trim().to_ascii_uppercase();
    let col = t[open + 1..].trim_end().strip_suffix(')').ok_or_else(|| SqlError::syntax(format!("near '{inner}'")))?;
    Ok((func, col.trim().trim_matches('`').to_lowercase()))
}

fn metric_of(func: &str) -> Result<String> {
    match func {
        "VEC_COSINE_DISTANCE" => Ok("cosine".into()),
        "VEC_L2_DISTANCE" => Ok("l2".into()),
        _ => Err(SqlError::new(8200, "HY000", "Unsupported add vector index: currently only L2 and Cosine distance is indexable")),
    }
}

/// Parse `[name] [USING HNSW] ((VEC_X(col))) [USING HNSW] [ADD_COLUMNAR_REPLICA_ON_DEMAND]` starting
/// at `i` (just after the words `VECTOR INDEX`). Returns the definition and the end offset.
pub fn parse_definition(b: &[u8], mut i: usize, with_name: bool) -> Result<(VectorIndexDef, usize)> {
    let s = String::from_utf8_lossy(b);
    i = skip_ws(b, i);
    let mut name = None;
    if with_name && i < b.len() && b[i] != b'(' && !keyword(b, i, "using") {
        let (n, j) = ident(b, i).ok_or_else(|| SqlError::syntax(format!("near '{}'", &s[i..])))?;
        name = Some(n);
        i = skip_ws(b, j);
    }
    let using = |i: &mut usize| -> Result<()> {
        if keyword(b, *i, "using") {
            let j = skip_ws(b, *i + 5);
            let (kind, k) = ident(b, j).ok_or_else(|| SqlError::syntax("near 'USING'"))?;
            if !kind.eq_ignore_ascii_case("hnsw") {
                return Err(SqlError::new(8200, "HY000", format!("Unsupported vector index type {kind}: only HNSW is supported")));
            }
            *i = skip_ws(b, k);
        }
        Ok(())
    };
    using(&mut i)?;
    if i >= b.len() || b[i] != b'(' {
        return Err(SqlError::syntax(format!("near '{}'", &s[i.min(s.len())..])));
    }
    let end = close_paren(b, i).ok_or_else(|| SqlError::syntax("unbalanced parentheses"))?;
    let (func, column) = parse_key_part(&s[i + 1..end])?;
    let metric = metric_of(&func)?;
    i = skip_ws(b, end + 1);
    using(&mut i)?;
    if keyword(b, i, "add_columnar_replica_on_demand") {
        i = skip_ws(b, i + "add_columnar_replica_on_demand".len());
    }
    Ok((VectorIndexDef { name, metric, column }, i))
}

/// `name ON [db.]table ((…)) …` after `CREATE VECTOR INDEX [IF NOT EXISTS]`: the table as written
/// and the definition.
pub fn parse_create_vector_index(sql: &str) -> Result<(String, VectorIndexDef)> {
    let b = sql.as_bytes();
    let syntax = || SqlError::syntax(format!("near '{}'", sql.chars().take(60).collect::<String>()));
    // Skip CREATE VECTOR INDEX [IF NOT EXISTS].
    let mut i = 0;
    for w in ["create", "vector", "index"] {
        i = skip_ws(b, i);
        if !keyword(b, i, w) {
            return Err(syntax());
        }
        i += w.len();
    }
    i = skip_ws(b, i);
    if keyword(b, i, "if") {
        for w in ["if", "not", "exists"] {
            i = skip_ws(b, i);
            if !keyword(b, i, w) {
                return Err(syntax());
            }
            i += w.len();
        }
        i = skip_ws(b, i);
    }
    let (name, j) = ident(b, i).ok_or_else(syntax)?;
    i = skip_ws(b, j);
    if !keyword(b, i, "on") {
        return Err(syntax());
    }
    i = skip_ws(b, i + 2);
    let (mut table, mut j) = ident(b, i).ok_or_else(syntax)?;
    if b.get(j) == Some(&b'.') {
        let (t, k) = ident(b, j + 1).ok_or_else(syntax)?;
        table = format!("{table}.{t}");
        j = k;
    }
    let (mut def, _) = parse_definition(b, j, false)?;
    def.name = Some(name);
    Ok((table, def))
}

/// Lift `VECTOR INDEX …` definitions out of a CREATE TABLE text, returning the text sqlparser can
/// parse and the definitions.
pub fn extract_vector_indexes(sql: &str) -> Result<(String, Vec<VectorIndexDef>)> {
    lift_definitions(
        sql,
        |b, j| (keyword(b, j, "vector") && keyword(b, skip_ws(b, j + 6), "index")).then(|| skip_ws(b, j + 6) + 5),
        |b, i| parse_definition(b, i, true),
    )
}

/// Lift index definitions sqlparser cannot read out of a CREATE TABLE text. After each comma
/// outside quotes, `starts(b, j)` says whether a definition begins at `j` (and where its body is);
/// `parse` reads the body and says where the definition ends. Returns the remaining text and the
/// definitions in order.
pub fn lift_definitions<T>(
    sql: &str,
    starts: impl Fn(&[u8], usize) -> Option<usize>,
    parse: impl Fn(&[u8], usize) -> Result<(T, usize)>,
) -> Result<(String, Vec<T>)> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut defs = Vec::new();
    let (mut last, mut i) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' | b'`' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b',' => match starts(b, skip_ws(b, i + 1)) {
                Some(body) => {
                    let (def, end) = parse(b, body)?;
                    defs.push(def);
                    out.push_str(&sql[last..i]);
                    last = end;
                    i = end;
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
    out.push_str(&sql[last..]);
    Ok((out, defs))
}

/// Add a vector index to a table definition, with TiDB's checks.
pub fn add_vector_index(info: &mut TableInfo, def: &VectorIndexDef) -> Result<()> {
    let col = info
        .column(&def.column)
        .ok_or_else(|| SqlError::unknown_column(&def.column, "expression"))?;
    match col.ty {
        SqlType::Vector(Some(_)) => {}
        SqlType::Vector(None) => {
            return Err(SqlError::new(8200, "HY000", "Unsupported add vector index: add vector index can only be defined on fixed-dimension vector columns"))
        }
        _ => return Err(SqlError::new(8200, "HY000", "Unsupported add vector index: only support vector type, but this is type: ".to_string() + &col.ty.to_sql())),
    }
    let key = col.key();
    if info.indexes.iter().any(|i| i.kind == (IndexKind::Vector { metric: def.metric.clone() }) && i.columns == [key.clone()]) {
        return Err(SqlError::new(8200, "HY000", format!("Unsupported add vector index: a vector index on '{}' with the same distance function already exists", col.name)));
    }
    let name = def.name.clone().unwrap_or_else(|| format!("vector_index_{}", info.next_index_id));
    if info.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(&name)) {
        return Err(SqlError::new(1061, "42000", format!("Duplicate key name '{name}'")));
    }
    info.indexes.push(IndexInfo {
        id: info.next_index_id,
        name,
        columns: vec![key],
        unique: false,
        primary: false,
        kind: IndexKind::Vector { metric: def.metric.clone() },
        comment: String::new(),
    });
    info.next_index_id += 1;
    // A vector index needs a columnar replica in TiDB; record one as TiDB would.
    info.tiflash_replica = info.tiflash_replica.max(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifts_inline_definitions() {
        let (sql, defs) = extract_vector_indexes(
            "CREATE TABLE t (id INT PRIMARY KEY, v VECTOR(5), VECTOR INDEX idx ((VEC_COSINE_DISTANCE(v))), \
             w VECTOR(3), VECTOR INDEX i2 USING HNSW ((VEC_L2_DISTANCE(`w`))), c TEXT COMMENT 'a, VECTOR INDEX x')",
        )
        .unwrap();
        assert_eq!(sql, "CREATE TABLE t (id INT PRIMARY KEY, v VECTOR(5), w VECTOR(3), c TEXT COMMENT 'a, VECTOR INDEX x')");
        assert_eq!(defs[0], VectorIndexDef { name: Some("idx".into()), metric: "cosine".into(), column: "v".into() });
        assert_eq!(defs[1], VectorIndexDef { name: Some("i2".into()), metric: "l2".into(), column: "w".into() });
    }

    #[test]
    fn only_cosine_and_l2() {
        let e = extract_vector_indexes("CREATE TABLE t (v VECTOR(2), VECTOR INDEX i ((VEC_L1_DISTANCE(v))))").unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (8200, "Unsupported add vector index: currently only L2 and Cosine distance is indexable"));
    }
}
