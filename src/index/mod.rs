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
pub mod hybrid;
pub mod search;

use crate::error::{Result, SqlError};
use crate::sql::catalog::{IndexInfo, IndexKind, TableInfo};
use crate::sql::types::SqlType;

/// One vector index definition: name, metric (`cosine` | `l2` | `ip`), column, and the index's
/// `COMMENT` (which may carry HNSW parameters, see [`hnsw_params`]).
#[derive(Debug, Clone, PartialEq)]
pub struct VectorIndexDef {
    pub name: Option<String>,
    pub metric: String,
    pub column: String,
    pub comment: String,
}

/// HNSW parameters set in a vector index's `COMMENT` (an embedb extension that TiDB reads as a
/// plain comment, so the same DDL runs on both):
/// `COMMENT 'm=32, ef_construction=200, ef_search=100, quantization=f16'`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HnswOptions {
    pub m: Option<usize>,
    pub ef_construction: Option<usize>,
    pub ef_search: Option<usize>,
    /// `f32` (default), `f16` or `i8` (cosine only).
    pub quantization: Option<String>,
}

/// Read [`HnswOptions`] from an index comment. A comment without `=` is an ordinary comment;
/// one with `key=value` pairs must name only known keys with valid values (error 8200).
pub fn hnsw_params(comment: &str) -> Result<HnswOptions> {
    let mut o = HnswOptions::default();
    if !comment.contains('=') {
        return Ok(o);
    }
    let bad = |why: String| SqlError::new(8200, "HY000", format!("Unsupported vector index option: {why}"));
    for part in comment.split([',', ' ', ';']).map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| bad(format!("'{part}' is not key=value")))?;
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().trim_matches(['\'', '"']).to_ascii_lowercase());
        let num = |lo: usize, hi: usize| -> Result<usize> {
            v.parse::<usize>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| bad(format!("{k} must be an integer in {lo}..{hi}, got '{v}'")))
        };
        match k.as_str() {
            "m" => o.m = Some(num(2, 256)?),
            "ef_construction" => o.ef_construction = Some(num(1, 10_000)?),
            "ef_search" => o.ef_search = Some(num(1, 10_000)?),
            "quantization" => {
                if !matches!(v.as_str(), "f32" | "f16" | "i8") {
                    return Err(bad(format!("quantization must be f32, f16 or i8, got '{v}'")));
                }
                o.quantization = Some(v);
            }
            _ => return Err(bad(format!("unknown key '{k}' (known: m, ef_construction, ef_search, quantization)"))),
        }
    }
    Ok(o)
}

/// The usearch parameters of an index with `metric` over `dims`-dimensional vectors, with the
/// options of its comment applied.
pub fn ann_params(metric: embedb_ann::Metric, dims: usize, comment: &str) -> Result<embedb_ann::AnnParams> {
    let o = hnsw_params(comment)?;
    let mut p = embedb_ann::AnnParams::new(metric, dims);
    if let Some(m) = o.m {
        p = p.with_connectivity(m);
    }
    if let Some(ef) = o.ef_construction {
        p.ef_construction = ef;
    }
    if let Some(ef) = o.ef_search {
        p = p.with_ef_search(ef);
    }
    if let Some(q) = o.quantization {
        p = p.with_quantization(match q.as_str() {
            "f16" => embedb_ann::Quantization::F16,
            "i8" => embedb_ann::Quantization::I8,
            _ => embedb_ann::Quantization::F32,
        });
    }
    p.validate().map_err(|e| SqlError::new(8200, "HY000", format!("Unsupported vector index option: {e}")))?;
    Ok(p)
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

/// The string literal at `i` (`'…'` or `"…"`, doubled quotes and backslash escapes), and the
/// offset after it.
fn quoted(b: &[u8], i: usize) -> Option<(String, usize)> {
    let q = *b.get(i)?;
    if q != b'\'' && q != b'"' {
        return None;
    }
    let mut out = Vec::new();
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            c if c == q && b.get(j + 1) == Some(&q) => {
                out.push(q);
                j += 2;
            }
            c if c == q => return Some((String::from_utf8_lossy(&out).into_owned(), j + 1)),
            b'\\' if j + 1 < b.len() => {
                out.push(b[j + 1]);
                j += 2;
            }
            c => {
                out.push(c);
                j += 1;
            }
        }
    }
    None
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
        // An extension: TiDB indexes only the two above.
        "VEC_NEGATIVE_INNER_PRODUCT" => Ok("ip".into()),
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
    let mut comment = String::new();
    loop {
        if keyword(b, i, "add_columnar_replica_on_demand") {
            i = skip_ws(b, i + "add_columnar_replica_on_demand".len());
        } else if keyword(b, i, "comment") {
            let (text, j) = quoted(b, skip_ws(b, i + 7)).ok_or_else(|| SqlError::syntax("near 'COMMENT': a quoted string expected"))?;
            comment = text;
            i = skip_ws(b, j);
        } else {
            break;
        }
    }
    hnsw_params(&comment)?;
    Ok((VectorIndexDef { name, metric, column, comment }, i))
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
        SqlType::Vector(Some(dims)) => {
            ann_params(search::metric_of(&def.metric), dims as usize, &def.comment)?;
        }
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
    push_search_index(info, name, key, IndexKind::Vector { metric: def.metric.clone() }, def.comment.clone())
}

/// Record a vector or full-text index on one column (`key`) under `name` (1061 if the name is
/// taken), with the columnar replica TiDB keeps for such indexes.
pub(crate) fn push_search_index(info: &mut TableInfo, name: String, key: String, kind: IndexKind, comment: String) -> Result<()> {
    if info.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(&name)) {
        return Err(SqlError::new(1061, "42000", format!("Duplicate key name '{name}'")));
    }
    info.indexes.push(IndexInfo { id: info.next_index_id, name, columns: vec![key], unique: false, primary: false, kind, comment });
    info.next_index_id += 1;
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
        assert_eq!(defs[0], VectorIndexDef { name: Some("idx".into()), metric: "cosine".into(), column: "v".into(), comment: String::new() });
        assert_eq!(defs[1], VectorIndexDef { name: Some("i2".into()), metric: "l2".into(), column: "w".into(), comment: String::new() });
    }

    #[test]
    fn no_l1_index() {
        let e = extract_vector_indexes("CREATE TABLE t (v VECTOR(2), VECTOR INDEX i ((VEC_L1_DISTANCE(v))))").unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (8200, "Unsupported add vector index: currently only L2 and Cosine distance is indexable"));
    }

    #[test]
    fn hnsw_options_in_the_comment() {
        let (_, defs) = extract_vector_indexes(
            "CREATE TABLE t (v VECTOR(2), VECTOR INDEX i ((VEC_NEGATIVE_INNER_PRODUCT(v))) USING HNSW COMMENT 'm=32, ef_search=100')",
        )
        .unwrap();
        assert_eq!((defs[0].metric.as_str(), defs[0].comment.as_str()), ("ip", "m=32, ef_search=100"));
        let p = ann_params(embedb_ann::Metric::InnerProduct, 2, &defs[0].comment).unwrap();
        assert_eq!((p.connectivity, p.ef_search, p.ef_construction), (32, 100, embedb_ann::AnnParams::DEFAULT_EF_CONSTRUCTION));
        assert_eq!(hnsw_params("just a comment").unwrap(), HnswOptions::default());
        let o = hnsw_params("quantization=f16 ef_construction=200").unwrap();
        assert_eq!((o.quantization.as_deref(), o.ef_construction), (Some("f16"), Some(200)));
        for bad in ["m=1", "ef=3", "quantization=f8", "m=x"] {
            assert_eq!(hnsw_params(bad).unwrap_err().code, 8200, "{bad}");
        }
        // i8 keeps only cosine distances.
        assert_eq!(ann_params(embedb_ann::Metric::L2, 2, "quantization=i8").unwrap_err().code, 8200);
    }
}
