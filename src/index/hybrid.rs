//! `HYBRID_SEARCH(table, 'query', vector_col, text_col, k [, 'options'])`: vector and full-text
//! search fused by reciprocal rank, as a table function.
//!
//! ```sql
//! SELECT id, content, _distance, _fts_score, _score
//! FROM HYBRID_SEARCH(docs, 'How to start learning Java?', embedding, content, 5);
//! ```
//!
//! The call is expanded, before anything else sees the statement, into the query TiDB documents
//! for hybrid search, written so that each side is a top-N search its index serves:
//! 1. vector side: `SELECT *, VEC_EMBED_COSINE_DISTANCE(embedding, q) AS _distance FROM docs
//!    ORDER BY _distance LIMIT N` (an ANN scan; `VEC_…_DISTANCE(col, '<vector>')` when the
//!    column is not an `EMBED_TEXT` column and the options give the query vector), ranked with
//!    `ROW_NUMBER()`;
//! 2. full-text side: `… WHERE FTS_MATCH_WORD(q, content) ORDER BY FTS_MATCH_WORD(q, content)
//!    DESC LIMIT N` (top-N from the BM25 index), ranked the same way;
//! 3. both joined on the primary key (FULL OUTER JOIN: a row found by one side only keeps a NULL
//!    score from the other), fused as `1/(rrf_k + rank_vec) + 1/(rrf_k + rank_fts)`, and the
//!    best `k` returned, highest `_score` first.
//!
//! The result has the table's columns plus `_distance` (NULL if the vector side did not find the
//! row), `_fts_score` (BM25, NULL if the full-text side did not) and `_score` (RRF).
//!
//! Options (a JSON object, all optional): `candidates` (N, default `max(k, 100)`), `rrf_k`
//! (default 60), `distance` (`cosine` | `l2` | `negative_inner_product`; default: the metric of
//! the column's vector index, else cosine), `vector` (the query vector, required when the
//! vector column is not an `EMBED_TEXT` column) and `fusion`.
//!
//! `"fusion": "weighted"` fuses by score instead of rank: each side's score is min-max
//! normalised over its own candidates (the nearest row and the best BM25 score count 1, the
//! farthest and the worst 0; a side whose candidates all score alike counts 1), and `_score` is
//! `vector_weight * v + text_weight * t` (options, default 0.5 each; a side that did not find the
//! row adds 0), as Elasticsearch's linear retriever does with its min-max normaliser. Unlike
//! RRF it keeps how far apart the scores are, not just their order.
//!
//! `"mmr": lambda` (0 to 1) diversifies the answer: the best `candidates` fused rows are
//! re-ranked by maximal marginal relevance (`MMR_RANK(vector_col, _score, lambda)`, see
//! `embedb_vector::mmr`), so a row much like one already returned yields to a different one.
//!
//! `"rerank": "jina_ai/jina-reranker-v2-base-multilingual"` re-scores the best
//! `rerank_candidates` (default 50) fused rows with the reranker (`RERANK_SCORE` of the query and
//! the text column) and returns the best `k` by that score, in an extra `_rerank_score` column.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, FunctionArg, FunctionArgExpr, Statement, TableFactor, Value, VisitMut, VisitorMut,
};

use crate::error::{Result, SqlError};
use crate::sql::catalog::{Catalog, IndexKind, TableInfo};
use crate::sql::types::SqlType;

/// The function's name, as written in FROM.
const NAME: &str = "hybrid_search";

/// Stands for the query expression in the generated text; replaced by the caller's expression
/// after parsing, so the query text is never re-quoted.
const QUERY_MARK: &str = "\u{1}hybrid_search_query";

/// Default number of candidates each side contributes.
const DEFAULT_CANDIDATES: usize = 100;

/// Default number of fused rows a reranker scores.
const DEFAULT_RERANK_CANDIDATES: usize = 50;

/// Default RRF constant (TiDB's and pytidb's).
const DEFAULT_RRF_K: usize = 60;

/// Replace every `HYBRID_SEARCH(...)` in FROM clauses with its expansion. Cheap when the
/// statement has none: only table factors with arguments are looked at.
pub fn expand(stmt: &mut Statement, current_db: Option<&str>, cat: &Catalog) -> Result<()> {
    let mut v = Expander { current_db, cat, err: None };
    let _ = VisitMut::visit(stmt, &mut v);
    match v.err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct Expander<'a> {
    current_db: Option<&'a str>,
    cat: &'a Catalog<'a>,
    err: Option<SqlError>,
}

impl VisitorMut for Expander<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, args: Some(args), alias, .. } = factor else { return ControlFlow::Continue(()) };
        if !name.to_string().eq_ignore_ascii_case(NAME) {
            return ControlFlow::Continue(());
        }
        let alias = alias.clone();
        let call: Vec<Expr> = match args
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                _ => Err(bad_args("arguments are plain expressions")),
            })
            .collect::<Result<Vec<_>>>()
        {
            Ok(c) => c,
            Err(e) => return self.fail(e),
        };
        match self.expansion(&call) {
            Ok(query) => {
                // The expansion is a derived table, keeping the caller's alias (else the
                // function's name), so `hybrid_search.id` and `h.id` both work.
                let alias = quote_ident(&alias.map(|a| a.name.value).unwrap_or_else(|| NAME.to_string()));
                let text = format!("SELECT * FROM ({query}) AS {alias}");
                let mut parsed = match crate::sql::parser::parse_one(&text) {
                    Ok(p) => p,
                    Err(e) => return self.fail(e),
                };
                let _ = visit_expressions_mut(&mut parsed, |e| {
                    if matches!(e, Expr::Value(v) if matches!(&v.value, Value::SingleQuotedString(s) if s == QUERY_MARK)) {
                        *e = call[1].clone();
                    }
                    ControlFlow::<()>::Continue(())
                });
                let Statement::Query(q) = parsed else { return self.fail(SqlError::other("HYBRID_SEARCH: bad expansion")) };
                let datafusion::sql::sqlparser::ast::SetExpr::Select(sel) = *q.body else {
                    return self.fail(SqlError::other("HYBRID_SEARCH: bad expansion"));
                };
                *factor = sel.from[0].relation.clone();
                ControlFlow::Continue(())
            }
            Err(e) => self.fail(e),
        }
    }
}

impl Expander<'_> {
    fn fail(&mut self, e: SqlError) -> ControlFlow<()> {
        self.err = Some(e);
        ControlFlow::Break(())
    }

    /// The SQL text of the fused query for one call.
    fn expansion(&self, args: &[Expr]) -> Result<String> {
        if !(5..=6).contains(&args.len()) {
            return Err(SqlError::param_count("HYBRID_SEARCH"));
        }
        let (db, table) = table_name(&args[0], self.current_db)?;
        let info = self.cat.table(&db, &table)?.ok_or_else(|| SqlError::no_such_table(&db, &table))?;
        let vcol = column_name(&args[2], &info, "vector")?;
        let tcol = column_name(&args[3], &info, "text")?;
        let k = match &args[4] {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => n.parse::<usize>().ok().filter(|&k| k > 0),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| bad_args("k (the 5th argument) is a positive integer"))?;
        let opts = match args.get(5) {
            None => serde_json::Map::new(),
            Some(Expr::Value(v)) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => match serde_json::from_str(s) {
                    Ok(serde_json::Value::Object(m)) => m,
                    _ => return Err(bad_args("options (the 6th argument) are a JSON object")),
                },
                _ => return Err(bad_args("options (the 6th argument) are a JSON string")),
            },
            Some(_) => return Err(bad_args("options (the 6th argument) are a JSON string")),
        };
        for key in opts.keys() {
            if !matches!(key.as_str(), "candidates" | "rrf_k" | "distance" | "vector" | "fusion" | "vector_weight" | "text_weight" | "mmr" | "rerank" | "rerank_candidates") {
                return Err(bad_args(&format!(
                    "unknown option '{key}' (known: candidates, rrf_k, distance, vector, fusion, vector_weight, text_weight, mmr, rerank, rerank_candidates)"
                )));
            }
        }
        let number = |key: &str, default: usize| -> Result<usize> {
            match opts.get(key) {
                None => Ok(default),
                Some(v) => v.as_u64().filter(|&n| n > 0 && n <= 100_000).map(|n| n as usize).ok_or_else(|| {
                    bad_args(&format!("option '{key}' is a positive integer"))
                }),
            }
        };
        let n = number("candidates", DEFAULT_CANDIDATES.max(k))?.max(k);
        let rrf_k = number("rrf_k", DEFAULT_RRF_K)?;
        let weighted = match opts.get("fusion") {
            None => false,
            Some(serde_json::Value::String(f)) if f.eq_ignore_ascii_case("rrf") => false,
            Some(serde_json::Value::String(f)) if f.eq_ignore_ascii_case("weighted") => true,
            Some(_) => return Err(bad_args("option 'fusion' is 'rrf' or 'weighted'")),
        };
        let weight = |key: &str| -> Result<f64> {
            match opts.get(key) {
                None => Ok(0.5),
                Some(_) if !weighted => Err(bad_args(&format!("option '{key}' goes with \"fusion\": \"weighted\""))),
                Some(v) => v.as_f64().filter(|w| w.is_finite() && *w >= 0.0).ok_or_else(|| bad_args(&format!("option '{key}' is a number ≥ 0"))),
            }
        };
        let (vector_weight, text_weight) = (weight("vector_weight")?, weight("text_weight")?);
        let mmr = match opts.get("mmr") {
            None => None,
            Some(v) => Some(v.as_f64().filter(|l| (0.0..=1.0).contains(l)).ok_or_else(|| bad_args("option 'mmr' (lambda) is a number from 0 to 1"))?),
        };
        let rerank = match opts.get("rerank") {
            None => None,
            Some(serde_json::Value::String(m)) => {
                crate::embed::parse_model(m).map_err(|e| bad_args(&format!("option 'rerank': {}", e.message)))?;
                Some(m.clone())
            }
            Some(_) => return Err(bad_args("option 'rerank' is a reranker's name, e.g. \"jina_ai/jina-reranker-v2-base-multilingual\"")),
        };
        let rerank_n = number("rerank_candidates", DEFAULT_RERANK_CANDIDATES.max(k))?.max(k);
        if opts.contains_key("rerank_candidates") && rerank.is_none() {
            return Err(bad_args("option 'rerank_candidates' goes with 'rerank'"));
        }
        if rerank.is_some() && mmr.is_some() {
            return Err(bad_args("options 'rerank' and 'mmr' do not go together"));
        }
        if opts.contains_key("rrf_k") && weighted {
            return Err(bad_args("option 'rrf_k' goes with RRF fusion, not \"weighted\""));
        }

        let vc = info.column(&vcol).expect("checked above");
        if !matches!(vc.ty, SqlType::Vector(_)) {
            return Err(bad_args(&format!("'{}' is not a VECTOR column", vc.name)));
        }
        let index_metric = info.indexes.iter().find_map(|i| match &i.kind {
            IndexKind::Vector { metric } if i.columns.first() == Some(&vc.key()) => Some(metric.clone()),
            _ => None,
        });
        let func = match opts.get("distance").map(|d| d.as_str().unwrap_or("").to_ascii_lowercase()) {
            Some(d) => match d.as_str() {
                "cosine" => "COSINE_DISTANCE",
                "l2" => "L2_DISTANCE",
                "negative_inner_product" | "inner_product" | "ip" => "NEGATIVE_INNER_PRODUCT",
                _ => return Err(bad_args("option 'distance' is cosine, l2 or negative_inner_product")),
            },
            None => match index_metric.as_deref() {
                Some("l2") => "L2_DISTANCE",
                Some("ip") => "NEGATIVE_INNER_PRODUCT",
                _ => "COSINE_DISTANCE",
            },
        };
        let embedded = vc.generated.as_ref().and_then(|g| crate::sql::ddl::embed_text_call(&g.expr)).is_some();
        let distance = match opts.get("vector") {
            Some(v) => {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Array(_) => v.to_string(),
                    _ => return Err(bad_args("option 'vector' is a vector, e.g. [0.1, 0.2]")),
                };
                format!("VEC_{func}({}, '{}')", quote_ident(&vc.name), text.replace('\'', "''"))
            }
            None if embedded => format!("VEC_EMBED_{func}({}, '{QUERY_MARK}')", quote_ident(&vc.name)),
            None => {
                return Err(bad_args(&format!(
                    "'{}' is not an EMBED_TEXT column: give the query vector as the option 'vector'",
                    vc.name
                )))
            }
        };

        let pk = primary_key(&info)?;
        let tc = info.column(&tcol).expect("checked above");
        let tref = format!("{}.{}", quote_ident(&info.db), quote_ident(&info.name));
        let cols: Vec<String> = info.columns.iter().map(|c| quote_ident(&c.name)).collect();
        let fused_cols = cols.iter().map(|c| format!("COALESCE(v.{c}, f.{c}) AS {c}")).collect::<Vec<_>>().join(", ");
        let side_cols = cols.join(", ");
        let pk_order = pk.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
        let on = pk.iter().map(|c| format!("v.{0} = f.{0}", quote_ident(c))).collect::<Vec<_>>().join(" AND ");
        let fts = format!("FTS_MATCH_WORD('{QUERY_MARK}', {})", quote_ident(&tc.name));
        // Each side's rank, and for weighted fusion the range of its scores.
        let (score, v_extra, f_extra) = if weighted {
            (
                format!(
                    "{vector_weight:?}e0 * CASE WHEN v._distance IS NULL THEN 0e0 WHEN v._hi > v._lo THEN (v._hi - v._distance) / (v._hi - v._lo) ELSE 1e0 END + \
                     {text_weight:?}e0 * CASE WHEN f._fts_score IS NULL THEN 0e0 WHEN f._hi > f._lo THEN (f._fts_score - f._lo) / (f._hi - f._lo) ELSE 1e0 END"
                ),
                ", MIN(_distance) OVER () AS _lo, MAX(_distance) OVER () AS _hi",
                ", MIN(_fts_score) OVER () AS _lo, MAX(_fts_score) OVER () AS _hi",
            )
        } else {
            (format!("COALESCE(1e0 / ({rrf_k} + v._rank), 0) + COALESCE(1e0 / ({rrf_k} + f._rank), 0)"), "", "")
        };
        // With MMR the best `n` fused rows are re-ranked, and the best `k` of that order kept.
        let fused_limit = if mmr.is_some() { n } else if rerank.is_some() { rerank_n } else { k };
        let fused = format!(
            "SELECT {fused_cols}, v._distance AS _distance, f._fts_score AS _fts_score, {score} AS _score \
             FROM (SELECT {side_cols}, _distance, ROW_NUMBER() OVER (ORDER BY _distance, {pk_order}) AS _rank{v_extra} \
                   FROM (SELECT {side_cols}, {distance} AS _distance FROM {tref} ORDER BY _distance LIMIT {n}) AS v0) AS v \
             FULL OUTER JOIN \
                  (SELECT {side_cols}, _fts_score, ROW_NUMBER() OVER (ORDER BY _fts_score DESC, {pk_order}) AS _rank{f_extra} \
                   FROM (SELECT {side_cols}, {fts} AS _fts_score FROM {tref} WHERE {fts} ORDER BY {fts} DESC LIMIT {n}) AS f0) AS f \
             ON {on} \
             ORDER BY _score DESC, {pk_order} LIMIT {fused_limit}"
        );
        if let Some(model) = rerank {
            return Ok(format!(
                "SELECT {side_cols}, _distance, _fts_score, _score, RERANK_SCORE('{}', '{QUERY_MARK}', {}) AS _rerank_score \
                 FROM ({fused}) AS r0 ORDER BY _rerank_score DESC, {pk_order} LIMIT {k}",
                model.replace('\'', "''"),
                quote_ident(&tc.name),
            ));
        }
        Ok(match mmr {
            None => fused,
            Some(lambda) => format!(
                "SELECT {side_cols}, _distance, _fts_score, _score \
                 FROM (SELECT *, MMR_RANK({vector}, _score, {lambda:?}e0) OVER (ORDER BY _score DESC, {pk_order}) AS _mmr FROM ({fused}) AS m0) AS m1 \
                 ORDER BY _mmr LIMIT {k}",
                vector = quote_ident(&vc.name),
            ),
        })
    }
}

fn bad_args(why: &str) -> SqlError {
    SqlError::new(1210, "HY000", format!("Incorrect arguments to HYBRID_SEARCH: {why}"))
}

fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A name argument: an identifier, or a string holding one.
fn name_parts(e: &Expr) -> Option<Vec<String>> {
    match e {
        Expr::Identifier(i) => Some(vec![i.value.clone()]),
        Expr::CompoundIdentifier(parts) => Some(parts.iter().map(|i| i.value.clone()).collect()),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.split('.').map(str::to_string).collect()),
            _ => None,
        },
        _ => None,
    }
}

fn table_name(e: &Expr, current_db: Option<&str>) -> Result<(String, String)> {
    match name_parts(e).as_deref() {
        Some([t]) => Ok((current_db.ok_or_else(SqlError::no_db)?.to_string(), t.to_lowercase())),
        Some([d, t]) => Ok((d.to_lowercase(), t.to_lowercase())),
        _ => Err(bad_args("the 1st argument names a table")),
    }
}

fn column_name(e: &Expr, info: &TableInfo, what: &str) -> Result<String> {
    let name = match name_parts(e).as_deref() {
        Some([c]) => c.clone(),
        _ => return Err(bad_args(&format!("the {what} column is a column name"))),
    };
    info.column(&name).map(|c| c.key()).ok_or_else(|| SqlError::unknown_column(&name, NAME))
}

/// The primary key's column names (the join key of the two sides).
fn primary_key(info: &TableInfo) -> Result<Vec<String>> {
    if let Some(h) = &info.pk_handle {
        if let Some(c) = info.column(h) {
            return Ok(vec![c.name.clone()]);
        }
    }
    let pk = info.indexes.iter().find(|i| i.primary).ok_or_else(|| {
        SqlError::new(8200, "HY000", format!("HYBRID_SEARCH needs a primary key on '{}' to join its two searches", info.name))
    })?;
    Ok(pk.columns.iter().map(|k| info.column(k).map(|c| c.name.clone()).unwrap_or_else(|| k.clone())).collect())
}
