//! Storage: the transactional KV lives in the `embedb-storage` crate (trait, redb implementation,
//! key and row codecs); this module puts tables on top of it (`table`), chooses how a scan reads them (`access`) and
//! streams the rows to DataFusion (`scan`), in key order where that spares an ORDER BY its sort
//! (`order`); pessimistic transactions' row locks live in `locks`.

pub mod access;
pub mod locks;
pub mod order;
pub mod scan;
pub mod table;

pub use embedb_storage::{Store, Txn};
