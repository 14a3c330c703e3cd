//! Storage: the transactional KV lives in the `embedb-storage` crate (trait, redb implementation,
//! key and row codecs); this module puts tables on top of it (`table`).

pub mod table;

pub use embedb_storage::{Store, Txn};
