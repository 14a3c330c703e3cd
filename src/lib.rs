//! embedb: a self-hostable SQL database for semantic search that speaks the MySQL/TiDB protocol.
//!
//! Rooms: `server` (wire protocol ⇄ sessions), `session` (one connection's state; runs statements),
//! `sql` (parsing, catalog, planning with DataFusion, DML/DDL), `storage` (tables on the KV),
//! `privileges` (accounts, grants and the check each statement passes), `cluster` (one writer and
//! readers on shared storage), `config`. The library is
//! usable in-process: open an [`session::Engine`], make a [`session::Session`], and call
//! `execute`.

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
