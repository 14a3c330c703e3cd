//! `JSON_SCHEMA_VALID(schema, document)`: whether a JSON document satisfies a JSON Schema, as
//! MySQL 8 and TiDB check it (draft 4's validation keywords).
//!
//! `JSON_SCHEMA_VALID('{"type":"object","required":["id"]}', '{"id":1}')` parses both texts and
//! walks the schema against the document: each keyword the schema holds is one condition (`type`,
//! `enum`, the numeric bounds, string lengths and `pattern`, array `items` and sizes, object
//! `properties`, `required`, `additionalProperties`, sizes, and the combinators `allOf`, `anyOf`,
//! `oneOf`, `not`). Keywords it does not know (`$schema`, `title`, `description`, `format`, …)
//! hold for every document, as the draft says. A `$ref` to a place in the same schema
//! (`#/definitions/p`, a JSON pointer) is followed, as deep as 32 references.

use serde_json::Value as J;

/// Whether `doc` satisfies `schema`.
pub fn valid(schema: &J, doc: &J) -> bool {
    Walk { root: schema, depth: 0 }.valid(schema, doc)
}

/// References deeper than this fail (a schema may refer to itself).
const MAX_REF_DEPTH: usize = 32;

struct Walk<'a> {
    root: &'a J,
    depth: usize,
}

impl Walk<'_> {
    fn valid(&self, schema: &J, doc: &J) -> bool {
        if let Some(r) = schema.get("$ref").and_then(J::as_str) {
            // Draft 4: a `$ref` replaces the schema it sits in.
            let target = r.strip_prefix('#').and_then(|p| self.root.pointer(p));
            return match target {
                Some(t) if self.depth < MAX_REF_DEPTH => Walk { root: self.root, depth: self.depth + 1 }.valid(t, doc),
                _ => false,
            };
        }
        let J::Object(s) = schema else {
            // `true`/`false` schemas (later drafts) and anything else: only `false` refuses.
            return !matches!(schema, J::Bool(false));
        };
        let num = |k: &str| s.get(k).and_then(J::as_f64);
        let size = |k: &str| s.get(k).and_then(J::as_u64).map(|n| n as usize);
        if let Some(t) = s.get("type") {
            let names: Vec<&str> = match t {
                J::String(n) => vec![n.as_str()],
                J::Array(a) => a.iter().filter_map(J::as_str).collect(),
                _ => vec![],
            };
            if !names.iter().any(|n| has_type(doc, n)) {
                return false;
            }
        }
        if let Some(J::Array(options)) = s.get("enum") {
            if !options.iter().any(|o| same(o, doc)) {
                return false;
            }
        }
        if let Some(x) = doc.as_f64().filter(|_| doc.is_number()) {
            // Draft 4: exclusiveMinimum/exclusiveMaximum are booleans beside minimum/maximum.
            let excl = |k: &str| s.get(k).and_then(J::as_bool).unwrap_or(false);
            if let Some(m) = num("minimum") {
                if x < m || (excl("exclusiveMinimum") && x == m) {
                    return false;
                }
            }
            if let Some(m) = num("maximum") {
                if x > m || (excl("exclusiveMaximum") && x == m) {
                    return false;
                }
            }
            if let Some(m) = num("multipleOf").filter(|m| *m > 0.0) {
                let q = x / m;
                if (q - q.round()).abs() > 1e-9 {
                    return false;
                }
            }
        }
        if let J::String(text) = doc {
            let chars = text.chars().count();
            if size("minLength").is_some_and(|n| chars < n) || size("maxLength").is_some_and(|n| chars > n) {
                return false;
            }
            if let Some(p) = s.get("pattern").and_then(J::as_str) {
                // An ECMA 262 pattern; one this engine cannot read refuses nothing.
                if regex::Regex::new(p).is_ok_and(|re| !re.is_match(text)) {
                    return false;
                }
            }
        }
        if let J::Array(items) = doc {
            if size("minItems").is_some_and(|n| items.len() < n) || size("maxItems").is_some_and(|n| items.len() > n) {
                return false;
            }
            if s.get("uniqueItems").and_then(J::as_bool) == Some(true) && (1..items.len()).any(|i| items[..i].iter().any(|p| same(p, &items[i]))) {
                return false;
            }
            match s.get("items") {
                Some(J::Array(tuple)) => {
                    if !items.iter().zip(tuple).all(|(d, sch)| self.valid(sch, d)) {
                        return false;
                    }
                    if items.len() > tuple.len() {
                        match s.get("additionalItems") {
                            Some(J::Bool(false)) => return false,
                            Some(extra @ J::Object(_)) if !items[tuple.len()..].iter().all(|d| self.valid(extra, d)) => return false,
                            _ => {}
                        }
                    }
                }
                Some(one) => {
                    if !items.iter().all(|d| self.valid(one, d)) {
                        return false;
                    }
                }
                None => {}
            }
        }
        if let J::Object(fields) = doc {
            if size("minProperties").is_some_and(|n| fields.len() < n) || size("maxProperties").is_some_and(|n| fields.len() > n) {
                return false;
            }
            if let Some(J::Array(req)) = s.get("required") {
                if !req.iter().filter_map(J::as_str).all(|k| fields.contains_key(k)) {
                    return false;
                }
            }
            let props = s.get("properties").and_then(J::as_object);
            let patterns: Vec<(regex::Regex, &J)> = s
                .get("patternProperties")
                .and_then(J::as_object)
                .map(|m| m.iter().filter_map(|(p, sch)| regex::Regex::new(p).ok().map(|re| (re, sch))).collect())
                .unwrap_or_default();
            for (k, v) in fields {
                let mut matched = false;
                if let Some(sch) = props.and_then(|p| p.get(k)) {
                    matched = true;
                    if !self.valid(sch, v) {
                        return false;
                    }
                }
                for (re, sch) in &patterns {
                    if re.is_match(k) {
                        matched = true;
                        if !self.valid(sch, v) {
                            return false;
                        }
                    }
                }
                if !matched {
                    match s.get("additionalProperties") {
                        Some(J::Bool(false)) => return false,
                        Some(extra @ J::Object(_)) if !self.valid(extra, v) => return false,
                        _ => {}
                    }
                }
            }
            if let Some(J::Object(deps)) = s.get("dependencies") {
                for (k, dep) in deps {
                    if !fields.contains_key(k) {
                        continue;
                    }
                    let ok = match dep {
                        J::Array(names) => names.iter().filter_map(J::as_str).all(|n| fields.contains_key(n)),
                        sch => self.valid(sch, doc),
                    };
                    if !ok {
                        return false;
                    }
                }
            }
        }
        let list = |k: &str| s.get(k).and_then(J::as_array);
        if list("allOf").is_some_and(|l| !l.iter().all(|sch| self.valid(sch, doc))) {
            return false;
        }
        if list("anyOf").is_some_and(|l| !l.iter().any(|sch| self.valid(sch, doc))) {
            return false;
        }
        if list("oneOf").is_some_and(|l| l.iter().filter(|sch| self.valid(sch, doc)).count() != 1) {
            return false;
        }
        if s.get("not").is_some_and(|sch| self.valid(sch, doc)) {
            return false;
        }
        true
}
}

fn has_type(doc: &J, name: &str) -> bool {
    match name {
        "null" => doc.is_null(),
        "boolean" => doc.is_boolean(),
        "object" => doc.is_object(),
        "array" => doc.is_array(),
        "string" => doc.is_string(),
        "number" => doc.is_number(),
        "integer" => doc.is_i64() || doc.is_u64() || doc.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

/// JSON equality, numbers by value (1 and 1.0 are the same).
fn same(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (J::Object(x), J::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::valid;
    use serde_json::json;

    #[test]
    fn keywords_hold_as_draft_4_says() {
        let s = json!({"type": "object", "required": ["id"], "properties": {
            "id": {"type": "integer", "minimum": 1},
            "name": {"type": "string", "maxLength": 3, "pattern": "^[a-z]+$"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": true}
        }, "additionalProperties": false});
        assert!(valid(&s, &json!({"id": 1, "name": "abc", "tags": ["a", "b"]})));
        assert!(!valid(&s, &json!({"name": "abc"})));
        assert!(!valid(&s, &json!({"id": 0})));
        assert!(!valid(&s, &json!({"id": 1.5})));
        assert!(!valid(&s, &json!({"id": 1, "name": "abcd"})));
        assert!(!valid(&s, &json!({"id": 1, "name": "ABC"})));
        assert!(!valid(&s, &json!({"id": 1, "tags": ["a", "a"]})));
        assert!(!valid(&s, &json!({"id": 1, "tags": ["c"]})));
        assert!(!valid(&s, &json!({"id": 1, "extra": true})));
        assert!(valid(&json!({"anyOf": [{"type": "string"}, {"type": "null"}]}), &json!(null)));
        assert!(!valid(&json!({"oneOf": [{"minimum": 0}, {"maximum": 10}]}), &json!(5)));
        assert!(valid(&json!({"not": {"type": "string"}}), &json!(5)));
        assert!(!valid(&json!({"maximum": 5, "exclusiveMaximum": true}), &json!(5)));
        assert!(valid(&json!({"title": "anything", "format": "email"}), &json!("x")));
        let refs = json!({"definitions": {"p": {"type": "integer"}, "list": {"type": "array", "items": {"$ref": "#/definitions/p"}}},
                          "properties": {"a": {"$ref": "#/definitions/p"}, "l": {"$ref": "#/definitions/list"}}});
        assert!(valid(&refs, &json!({"a": 1, "l": [1, 2]})));
        assert!(!valid(&refs, &json!({"a": "x"})));
        assert!(!valid(&refs, &json!({"l": [1, "x"]})));
        assert!(!valid(&json!({"$ref": "#"}), &json!(1)), "a schema that is only a reference to itself never ends");
        assert!(!valid(&json!({"$ref": "#/nowhere"}), &json!(1)));
    }
}
