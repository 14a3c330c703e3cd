//! embedb: a self-hostable SQL database for semantic search that speaks the MySQL/TiDB protocol.
//!
//! Rooms: `server` (wire protocol ⇄ sessions), `session` (one connection's state; runs statements),
//! `sql` (parsing, catalog, planning with DataFusion, DML/DDL), `storage` (tables on the KV),
//! `privileges` (accounts, grants and the check each statement passes), `cluster` (one writer and
//! readers on shared storage), `config`. The library is
//! usable in-process: open an [`session::Engine`], make a [`session::Session`], and call
//! `execute`.

/// The identity DataFusion asks of a function object (`Debug`, `Eq`, `Hash`: plans compare and
/// dedupe their functions) for a UDF holding shared state in the `Arc` field `$field`: two are
/// equal when they share that state. `udf_identity!(EmbedText, embedder, "embed_text")`.
macro_rules! udf_identity {
    ($ty:ident, $field:ident, $name:literal) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($ty))
            }
        }
        impl PartialEq for $ty {
            fn eq(&self, o: &Self) -> bool {
                std::sync::Arc::ptr_eq(&self.$field, &o.$field)
            }
        }
        impl Eq for $ty {}
        impl std::hash::Hash for $ty {
            fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
                std::hash::Hash::hash($name, h)
            }
        }
    };
}

pub mod backup;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod embed;
pub mod error;
pub mod index;
pub mod interrupt;
pub mod secrets;
pub mod server;
pub mod session;
pub mod sql;
pub mod privileges;
pub mod stats;
pub mod storage;
