//! JSON functions beyond `JSON_EXTRACT`: building (`JSON_OBJECT`, `JSON_ARRAY`, `JSON_QUOTE`),
//! inspecting (`JSON_CONTAINS`, `JSON_CONTAINS_PATH`, `JSON_KEYS`, `JSON_LENGTH`, `JSON_TYPE`,
//! `JSON_VALID`, `JSON_DEPTH`) and changing (`JSON_SET`, `JSON_INSERT`, `JSON_REPLACE`,
//! `JSON_REMOVE`, `JSON_MERGE_PATCH`, `JSON_MERGE_PRESERVE`) — MySQL's semantics, MySQL's text
//! (`{"a": 1, "b": [1, 2]}`). JSON values travel as text, as JSON columns do here.

use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::ScalarUDF;
use serde_json::{Map, Value as J};

use super::rowwise::{self, arg_text, udf, MANY};
use super::{parse_path, Step};
use crate::sql::types::json_to_mysql_text;

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        udf("json_object", 0, MANY, rowwise::text, json_object),
        udf("json_array", 0, MANY, rowwise::text, json_array),
        udf("json_quote", 1, 1, rowwise::text, |a| Ok(ScalarValue::Utf8(arg_text(&a[0]).map(|s| J::String(s).to_string())))),
        udf("json_valid", 1, 1, rowwise::int, |a| {
            Ok(ScalarValue::Int64(arg_text(&a[0]).map(|s| serde_json::from_str::<J>(&s).is_ok() as i64)))
        }),
        udf("json_schema_valid", 2, 2, rowwise::int, json_schema_valid),
        udf("json_type", 1, 1, rowwise::text, json_type),
        udf("json_length", 1, 2, rowwise::int, json_length),
        udf("json_depth", 1, 1, rowwise::int, |a| with_doc(a, |d| Ok(ScalarValue::Int64(Some(depth(d)))))),
        udf("json_keys", 1, 2, rowwise::text, json_keys),
        udf("json_contains", 2, 3, rowwise::int, json_contains),
        udf("json_contains_path", 3, MANY, rowwise::int, json_contains_path),
        udf("json_set", 3, MANY, rowwise::text, |a| json_modify(a, true, true)),
        udf("json_insert", 3, MANY, rowwise::text, |a| json_modify(a, true, false)),
        udf("json_replace", 3, MANY, rowwise::text, |a| json_modify(a, false, true)),
        udf("json_remove", 2, MANY, rowwise::text, json_remove),
        udf("json_merge_patch", 2, MANY, rowwise::text, |a| json_merge(a, true)),
        udf("json_merge_preserve", 2, MANY, rowwise::text, |a| json_merge(a, false)),
        udf("json_merge", 2, MANY, rowwise::text, |a| json_merge(a, false)),
        json_number_udf(),
        udf("json_pretty", 1, 1, rowwise::text, |a| with_doc(a, |d| Ok(ScalarValue::Utf8(serde_json::to_string_pretty(d).ok())))),
        udf("json_array_append", 3, MANY, rowwise::text, |a| json_array_add(a, false)),
        udf("json_array_insert", 3, MANY, rowwise::text, |a| json_array_add(a, true)),
        udf("json_overlaps", 2, 2, rowwise::int, json_overlaps),
        udf("json_memberof", 2, 2, rowwise::int, json_memberof),
        udf("json_search", 3, MANY, rowwise::text, json_search),
        udf("json_storage_size", 1, 1, rowwise::int, |a| {
            with_doc(a, |d| Ok(ScalarValue::Int64(Some(serde_json::to_string(d).map(|t| t.len() as i64).unwrap_or(0)))))
        }),
        udf("json_storage_free", 1, 1, rowwise::int, |a| with_doc(a, |_| Ok(ScalarValue::Int64(Some(0))))),
        udf("json_from_list", 1, 1, rowwise::text, json_from_list),
        udf("json_from_pairs", 2, 2, rowwise::text, json_from_pairs),
    ]
}

/// JSON_ARRAY_APPEND (append to the array at each path; a scalar there becomes an array) and
/// JSON_ARRAY_INSERT (insert at the path's index, shifting later elements).
fn json_array_add(a: &[ScalarValue], insert: bool) -> Result<ScalarValue> {
    let name = if insert { "json_array_insert" } else { "json_array_append" };
    if a.len() % 2 != 1 {
        return exec_err!("Incorrect parameter count in the call to native function '{name}'");
    }
    let Some(mut d) = doc(&a[0], name)? else { return Ok(ScalarValue::Utf8(None)) };
    for pv in a[1..].chunks(2) {
        let Some(steps) = path(&pv[0])? else { return Ok(ScalarValue::Utf8(None)) };
        let v = as_json_value(&pv[1]);
        if insert {
            let Some((Step::Index(i), parents)) = steps.split_last() else {
                return exec_err!("A path expression is not a path to a cell in an array.");
            };
            if let Some(J::Array(arr)) = get_mut(&mut d, parents) {
                arr.insert((*i).min(arr.len()), v);
            }
        } else if let Some(target) = get_mut(&mut d, &steps) {
            match target {
                J::Array(arr) => arr.push(v),
                other => {
                    let old = std::mem::replace(other, J::Null);
                    *other = J::Array(vec![old, v]);
                }
            }
        }
    }
    Ok(text(&d))
}

/// JSON_OVERLAPS: two arrays share an element, two objects a key-value pair, or scalars are equal.
fn json_overlaps(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(x), Some(y)) = (doc(&a[0], "json_overlaps")?, doc(&a[1], "json_overlaps")?) else {
        return Ok(ScalarValue::Int64(None));
    };
    let r = match (&x, &y) {
        (J::Array(p), J::Array(q)) => p.iter().any(|e| q.contains(e)),
        (J::Array(p), s) | (s, J::Array(p)) => p.contains(s),
        (J::Object(p), J::Object(q)) => p.iter().any(|(k, v)| q.get(k) == Some(v)),
        _ => x == y,
    };
    Ok(ScalarValue::Int64(Some(r as i64)))
}

/// `value MEMBER OF (array)`: the value is an element of the array (or equals a scalar).
fn json_memberof(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(d) = doc(&a[1], "member of")? else { return Ok(ScalarValue::Int64(None)) };
    if a[0].is_null() {
        return Ok(ScalarValue::Int64(None));
    }
    let v = as_json_value(&a[0]);
    let r = match &d {
        J::Array(items) => items.contains(&v),
        other => *other == v,
    };
    Ok(ScalarValue::Int64(Some(r as i64)))
}

/// JSON_SEARCH(doc, 'one' | 'all', pattern [, escape [, path …]]): the paths of string values
/// matching a LIKE pattern.
fn json_search(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(d) = doc(&a[0], "json_search")? else { return Ok(ScalarValue::Utf8(None)) };
    let (Some(mode), Some(pat)) = (arg_text(&a[1]), arg_text(&a[2])) else { return Ok(ScalarValue::Utf8(None)) };
    let all = match mode.to_ascii_lowercase().as_str() {
        "all" => true,
        "one" => false,
        _ => return exec_err!("The oneOrAll argument to json_search may take these values: 'one' or 'all'."),
    };
    let escape = a.get(3).and_then(arg_text).and_then(|e| e.chars().next()).unwrap_or('\\');
    let mut found = Vec::new();
    fn walk(j: &J, at: String, pat: &str, escape: char, found: &mut Vec<String>) {
        match j {
            J::String(s) if super::string::like_match(s, pat, escape) => found.push(at),
            J::Array(items) => items.iter().enumerate().for_each(|(i, e)| walk(e, format!("{at}[{i}]"), pat, escape, found)),
            J::Object(m) => m.iter().for_each(|(k, e)| walk(e, format!("{at}.{}", path_key(k)), pat, escape, found)),
            _ => {}
        }
    }
    walk(&d, "$".into(), &pat, escape, &mut found);
    if a.len() > 4 {
        let mut prefixes = Vec::new();
        for p in &a[4..] {
            if let Some(t) = arg_text(p) {
                prefixes.push(t.replace(' ', ""));
            }
        }
        // Under a path: that path itself or a member or element of it (`$[1]` is not `$[10]`).
        let under = |f: &str, p: &str| f.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']));
        found.retain(|f| prefixes.iter().any(|p| under(f, p)));
    }
    Ok(match (found.len(), all) {
        (0, _) => ScalarValue::Utf8(None),
        (1, _) | (_, false) => text(&J::String(found.swap_remove(0))),
        _ => text(&J::Array(found.into_iter().map(J::String).collect())),
    })
}

fn path_key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !k.starts_with(|c: char| c.is_ascii_digit()) {
        k.to_string()
    } else {
        J::String(k.to_string()).to_string()
    }
}

/// The elements of an aggregated list (ARRAY_AGG's result) as scalars.
fn list_items(v: &ScalarValue) -> Result<Option<Vec<ScalarValue>>> {
    use datafusion::arrow::array::Array;
    match v {
        ScalarValue::List(l) if !l.is_null(0) => {
            let values = l.value(0);
            Ok(Some((0..values.len()).map(|i| ScalarValue::try_from_array(&values, i)).collect::<Result<_>>()?))
        }
        _ => Ok(None),
    }
}

/// JSON_ARRAYAGG(x) is `json_from_list(ARRAY_AGG(x))`: the aggregated values as a JSON array.
fn json_from_list(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(items) = list_items(&a[0])? else { return Ok(ScalarValue::Utf8(None)) };
    Ok(text(&J::Array(items.iter().map(as_json_value).collect())))
}

/// JSON_OBJECTAGG(k, v) is `json_from_pairs(ARRAY_AGG(k), ARRAY_AGG(v))`.
fn json_from_pairs(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(keys), Some(values)) = (list_items(&a[0])?, list_items(&a[1])?) else { return Ok(ScalarValue::Utf8(None)) };
    let mut m = Map::new();
    for (k, v) in keys.iter().zip(values.iter()) {
        let Some(k) = arg_text(k) else {
            return exec_err!("JSON documents may not contain NULL member names.");
        };
        m.insert(k, as_json_value(v));
    }
    Ok(text(&J::Object(m)))
}

/// A JSON value (text) as MySQL ranks it against an SQL number: a JSON number is its value; a
/// string, object, array or boolean ranks above every number (MySQL's JSON type order), so
/// `= 1` and `IN (1, 2)` never match it and `> 1` does; JSON null and a missing path are NULL.
/// `sql::coerce` wraps `JSON_EXTRACT(…)` in this wherever it meets a number.
fn json_number(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(t) = arg_text(&a[0]) else { return Ok(ScalarValue::Float64(None)) };
    Ok(ScalarValue::Float64(match serde_json::from_str::<J>(&t) {
        Ok(J::Number(n)) => n.as_f64(),
        Ok(J::Null) => None,
        Ok(_) => Some(f64::INFINITY),
        Err(_) => None,
    }))
}

/// The `json_number` function, for `sql::coerce`.
pub fn json_number_udf() -> ScalarUDF {
    udf("json_number", 1, 1, rowwise::double, json_number)
}

/// An argument as a JSON value: text that is a JSON document stays text (a string), as in MySQL
/// where only JSON-typed values nest; numbers are numbers; NULL is JSON null.
fn as_json_value(v: &ScalarValue) -> J {
    use datafusion::arrow::datatypes::DataType as D;
    if v.is_null() {
        return J::Null;
    }
    match v.data_type() {
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => {
            rowwise::arg_i64(v).map(J::from).unwrap_or(J::Null)
        }
        D::Float32 | D::Float64 | D::Decimal128(..) => {
            let t = arg_text(v).unwrap_or_default();
            serde_json::from_str::<J>(&t).unwrap_or_else(|_| rowwise::arg_f64(v).map(J::from).unwrap_or(J::Null))
        }
        D::Boolean => J::Bool(matches!(v, ScalarValue::Boolean(Some(true)))),
        _ => J::String(arg_text(v).unwrap_or_default()),
    }
}

/// The document argument (JSON text); a MySQL error when it is not JSON.
fn doc(v: &ScalarValue, func: &str) -> Result<Option<J>> {
    let Some(t) = arg_text(v) else { return Ok(None) };
    match serde_json::from_str(&t) {
        Ok(j) => Ok(Some(j)),
        Err(_) => exec_err!("Invalid JSON text in argument 1 to function {func}: \"Invalid value.\""),
    }
}

fn with_doc(a: &[ScalarValue], f: impl Fn(&J) -> Result<ScalarValue>) -> Result<ScalarValue> {
    match doc(&a[0], "json")? {
        Some(d) => f(&d),
        None => Ok(ScalarValue::Utf8(None)),
    }
}

fn text(j: &J) -> ScalarValue {
    ScalarValue::Utf8(Some(json_to_mysql_text(j)))
}

fn path(v: &ScalarValue) -> Result<Option<Vec<Step>>> {
    let Some(p) = arg_text(v) else { return Ok(None) };
    match parse_path(&p) {
        Some(s) => Ok(Some(s)),
        None => exec_err!("Invalid JSON path expression. The error is around character position 1."),
    }
}

fn get<'a>(j: &'a J, steps: &[Step]) -> Option<&'a J> {
    super::walk(j, steps)
}

fn json_object(a: &[ScalarValue]) -> Result<ScalarValue> {
    if a.len() % 2 != 0 {
        return exec_err!("Incorrect parameter count in the call to native function 'json_object'");
    }
    let mut m = Map::new();
    for kv in a.chunks(2) {
        let Some(k) = arg_text(&kv[0]) else {
            return exec_err!("JSON documents may not contain NULL member names.");
        };
        m.insert(k, as_json_value(&kv[1]));
    }
    Ok(text(&J::Object(m)))
}

fn json_array(a: &[ScalarValue]) -> Result<ScalarValue> {
    Ok(text(&J::Array(a.iter().map(as_json_value).collect())))
}

/// JSON_SCHEMA_VALID(schema, document): 1 or 0 (`json_schema`); NULL for a NULL; MySQL's 3141
/// for text that is not JSON.
fn json_schema_valid(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(schema), Some(doc)) = (arg_text(&a[0]), arg_text(&a[1])) else { return Ok(ScalarValue::Int64(None)) };
    let parse = |t: &str, n: usize| serde_json::from_str::<J>(t).map_err(|_| datafusion::error::DataFusionError::Execution(format!("Invalid JSON text in argument {n} to function json_schema_valid.")));
    let (schema, doc) = (parse(&schema, 1)?, parse(&doc, 2)?);
    Ok(ScalarValue::Int64(Some(super::json_schema::valid(&schema, &doc) as i64)))
}

fn json_type(a: &[ScalarValue]) -> Result<ScalarValue> {
    with_doc(a, |d| {
        let t = match d {
            J::Null => "NULL",
            J::Bool(_) => "BOOLEAN",
            J::Number(n) if n.is_i64() || n.is_u64() => "INTEGER",
            J::Number(_) => "DOUBLE",
            J::String(_) => "STRING",
            J::Array(_) => "ARRAY",
            J::Object(_) => "OBJECT",
        };
        Ok(ScalarValue::Utf8(Some(t.into())))
    })
}

fn json_length(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(d) = doc(&a[0], "json_length")? else { return Ok(ScalarValue::Int64(None)) };
    let target = match a.get(1) {
        Some(p) => match path(p)? {
            Some(s) => get(&d, &s).cloned(),
            None => return Ok(ScalarValue::Int64(None)),
        },
        None => Some(d),
    };
    Ok(ScalarValue::Int64(target.map(|t| match t {
        J::Array(x) => x.len() as i64,
        J::Object(x) => x.len() as i64,
        _ => 1,
    })))
}

fn depth(j: &J) -> i64 {
    match j {
        J::Array(x) if !x.is_empty() => 1 + x.iter().map(depth).max().unwrap_or(0),
        J::Object(x) if !x.is_empty() => 1 + x.values().map(depth).max().unwrap_or(0),
        _ => 1,
    }
}

fn json_keys(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(d) = doc(&a[0], "json_keys")? else { return Ok(ScalarValue::Utf8(None)) };
    let target = match a.get(1) {
        Some(p) => match path(p)? {
            Some(s) => get(&d, &s).cloned(),
            None => None,
        },
        None => Some(d),
    };
    Ok(match target {
        Some(J::Object(m)) => text(&J::Array(m.keys().cloned().map(J::String).collect())),
        _ => ScalarValue::Utf8(None),
    })
}

/// MySQL's containment: an array contains a value when some element contains it; an object
/// contains an object when each of its keys' values contains the other's.
fn contains(target: &J, candidate: &J) -> bool {
    match (target, candidate) {
        (J::Array(t), J::Array(c)) => c.iter().all(|x| t.iter().any(|y| contains(y, x))),
        (J::Array(t), c) => t.iter().any(|y| contains(y, c)),
        (J::Object(t), J::Object(c)) => c.iter().all(|(k, v)| t.get(k).is_some_and(|tv| contains(tv, v))),
        (J::Number(a), J::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

fn json_contains(a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(d), Some(c)) = (doc(&a[0], "json_contains")?, doc(&a[1], "json_contains")?) else {
        return Ok(ScalarValue::Int64(None));
    };
    let target = match a.get(2) {
        Some(p) => match path(p)? {
            Some(s) => match get(&d, &s) {
                Some(t) => t.clone(),
                None => return Ok(ScalarValue::Int64(None)),
            },
            None => return Ok(ScalarValue::Int64(None)),
        },
        None => d,
    };
    Ok(ScalarValue::Int64(Some(contains(&target, &c) as i64)))
}

fn json_contains_path(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(d) = doc(&a[0], "json_contains_path")? else { return Ok(ScalarValue::Int64(None)) };
    let Some(mode) = arg_text(&a[1]) else { return Ok(ScalarValue::Int64(None)) };
    let all = match mode.to_ascii_lowercase().as_str() {
        "all" => true,
        "one" => false,
        _ => return exec_err!("The oneOrAll argument to json_contains_path may take these values: 'one' or 'all'."),
    };
    let mut found = Vec::new();
    for p in &a[2..] {
        let Some(s) = path(p)? else { return Ok(ScalarValue::Int64(None)) };
        found.push(get(&d, &s).is_some());
    }
    let r = if all { found.iter().all(|x| *x) } else { found.iter().any(|x| *x) };
    Ok(ScalarValue::Int64(Some(r as i64)))
}

/// Set the value at `steps` (creating the last step when `insert`, replacing when `replace`).
fn put(d: &mut J, steps: &[Step], v: J, insert: bool, replace: bool) {
    let Some((last, parents)) = steps.split_last() else {
        if replace {
            *d = v;
        }
        return;
    };
    let mut cur = d;
    for s in parents {
        let next = match (s, cur) {
            (Step::Key(k), J::Object(o)) => o.get_mut(k),
            (Step::Index(i), J::Array(x)) => x.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match (last, cur) {
        (Step::Key(k), J::Object(o)) => {
            let exists = o.contains_key(k);
            if (exists && replace) || (!exists && insert) {
                o.insert(k.clone(), v);
            }
        }
        (Step::Index(i), J::Array(x)) => {
            if *i < x.len() {
                if replace {
                    x[*i] = v;
                }
            } else if insert {
                x.push(v);
            }
        }
        (Step::Index(0), other) => {
            if replace {
                *other = v;
            }
        }
        (Step::Index(_), other) if insert => {
            // A scalar is auto-wrapped into an array to append to it.
            let old = std::mem::replace(other, J::Null);
            *other = J::Array(vec![old, v]);
        }
        _ => {}
    }
}

fn json_modify(a: &[ScalarValue], insert: bool, replace: bool) -> Result<ScalarValue> {
    if a.len() % 2 != 1 {
        return exec_err!("Incorrect parameter count in the call to native function 'json_set'");
    }
    let Some(mut d) = doc(&a[0], "json_set")? else { return Ok(ScalarValue::Utf8(None)) };
    for pv in a[1..].chunks(2) {
        let Some(s) = path(&pv[0])? else { return Ok(ScalarValue::Utf8(None)) };
        // A value that is itself JSON text from a JSON function stays a string, as in MySQL.
        put(&mut d, &s, as_json_value(&pv[1]), insert, replace);
    }
    Ok(text(&d))
}

fn json_remove(a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(mut d) = doc(&a[0], "json_remove")? else { return Ok(ScalarValue::Utf8(None)) };
    for p in &a[1..] {
        let Some(s) = path(p)? else { return Ok(ScalarValue::Utf8(None)) };
        let Some((last, parents)) = s.split_last() else {
            return exec_err!("The path expression '$' is not allowed in this context.");
        };
        let Some(cur) = get_mut(&mut d, parents) else { continue };
        match (last, cur) {
            (Step::Key(k), J::Object(o)) => {
                o.shift_remove(k);
            }
            (Step::Index(i), J::Array(x)) if *i < x.len() => {
                x.remove(*i);
            }
            _ => {}
        }
    }
    Ok(text(&d))
}

fn get_mut<'a>(j: &'a mut J, steps: &[Step]) -> Option<&'a mut J> {
    let Some((first, rest)) = steps.split_first() else { return Some(j) };
    let next = match (first, j) {
        (Step::Key(k), J::Object(o)) => o.get_mut(k)?,
        (Step::Index(i), J::Array(x)) => x.get_mut(*i)?,
        _ => return None,
    };
    get_mut(next, rest)
}

fn merge_patch(target: &mut J, patch: J) {
    match patch {
        J::Object(p) => {
            if !target.is_object() {
                *target = J::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.shift_remove(&k);
                } else {
                    merge_patch(t.entry(k).or_insert(J::Null), v);
                }
            }
        }
        other => *target = other,
    }
}

fn merge_preserve(a: J, b: J) -> J {
    match (a, b) {
        (J::Object(mut x), J::Object(y)) => {
            for (k, v) in y {
                let merged = match x.shift_remove(&k) {
                    Some(old) => merge_preserve(old, v),
                    None => v,
                };
                x.insert(k, merged);
            }
            J::Object(x)
        }
        (J::Array(mut x), J::Array(y)) => {
            x.extend(y);
            J::Array(x)
        }
        (J::Array(mut x), other) => {
            x.push(other);
            J::Array(x)
        }
        (other, J::Array(y)) => {
            let mut v = vec![other];
            v.extend(y);
            J::Array(v)
        }
        (x, y) => J::Array(vec![x, y]),
    }
}

fn json_merge(a: &[ScalarValue], patch: bool) -> Result<ScalarValue> {
    let mut docs = Vec::new();
    for v in a {
        match doc(v, "json_merge")? {
            Some(d) => docs.push(d),
            None => return Ok(ScalarValue::Utf8(None)),
        }
    }
    let mut it = docs.into_iter();
    let mut acc = it.next().expect("two or more");
    for d in it {
        if patch {
            merge_patch(&mut acc, d);
        } else {
            acc = merge_preserve(acc, d);
        }
    }
    Ok(text(&acc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(x.into()))
    }

    #[test]
    fn builds_and_reads_back() {
        let o = json_object(&[s("a"), ScalarValue::Int64(Some(1)), s("b"), s("x")]).unwrap();
        assert_eq!(o, s(r#"{"a": 1, "b": "x"}"#));
        let c = json_contains_path(&[s(r#"{"a": {"b": 1}}"#), s("one"), s("$.x"), s("$.a.b")]).unwrap();
        assert_eq!(c, ScalarValue::Int64(Some(1)));
        let c = json_contains_path(&[s(r#"{"a": {"b": 1}}"#), s("all"), s("$.x"), s("$.a.b")]).unwrap();
        assert_eq!(c, ScalarValue::Int64(Some(0)));
        assert_eq!(json_contains(&[s("[1, 2, [3]]"), s("3")]).unwrap(), ScalarValue::Int64(Some(1)));
        assert_eq!(json_modify(&[s(r#"{"a": 1}"#), s("$.b"), ScalarValue::Int64(Some(2))], true, true).unwrap(), s(r#"{"a": 1, "b": 2}"#));
        assert_eq!(json_merge(&[s(r#"{"a": 1, "b": 2}"#), s(r#"{"b": null}"#)], true).unwrap(), s(r#"{"a": 1}"#));
    }
}
