//! SQL: from statement text to results.
//!
//! A tour of one statement, `INSERT INTO docs (id, v) VALUES (1, '[1,2,3]')`, sent by a client:
//! 1. `server` receives COM_QUERY and hands the text to the connection's `Session`;
//! 2. `parser` splits the text into statements and parses each (sqlparser, MySQL dialect);
//! 3. `Session::run` dispatches by statement kind — here to `dml`, inside the right transaction;
//! 4. `dml` finds `docs` in the `catalog` (stored in the KV), evaluates the VALUES, coerces each
//!    value to its column's declared type with `types` (the text `'[1,2,3]'` becomes a VECTOR),
//!    computes generated columns for the whole batch, checks keys, and writes rows through
//!    `storage::table` into the transaction;
//! 5. the session commits (autocommit) and the server sends OK with affected rows.
//!
//! A query (`SELECT … ORDER BY VEC_COSINE_DISTANCE(v, '[…]') LIMIT 2`) goes through `rewrite`
//! (MySQL → DataFusion semantics), then `query` plans it with DataFusion against `context`'s
//! catalog view of the transaction, with our `functions` registered as UDFs. A repeat of the same
//! search with another vector skips all of that: `plan_cache` re-binds the plan the first run left.
//! A read of rows by key (`SELECT … WHERE id = 42`) skips DataFusion altogether: `point_get`.

pub mod admin;
pub mod alter;
pub mod catalog;
pub mod collation;
pub mod coerce;
pub mod context;
pub mod ddl;
pub mod dialect;
pub mod foreign_key;
pub mod memo;
pub mod dml;
pub mod functions;
pub mod infoschema;
pub mod mysql_schema;
pub mod parser;
pub mod perf_schema;
pub mod plan_cache;
pub mod point_get;
pub mod prepared;
pub mod recursion_limit;
pub mod query;
pub mod rewrite;
pub mod show;
pub mod types;
pub mod variables;
pub mod view;
