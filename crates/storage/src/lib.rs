//! embedb's storage layer: an ordered, transactional key-value store and the
//! TiDB-style codecs that map SQL tables onto it.
//!
//! Data flows down through four small modules:
//!
//! 1. [`codec`] turns SQL values into bytes. A row `(id=7, name='a')` of
//!    table 42 becomes the key `t{42}_r{7}` and a compact value produced by
//!    [`codec::encode_row`]; index entries become keys whose byte order equals
//!    the SQL order of the indexed values (memcomparable encoding), so range
//!    predicates turn into plain key-range scans.
//! 2. [`txn`] gives the SQL layer transactions over those keys: a [`Txn`]
//!    reads a consistent snapshot, buffers its writes in memory, and on
//!    [`Txn::commit`] checks for write-write conflicts (optimistic snapshot
//!    isolation, like TiDB's optimistic transactions) before applying the
//!    buffer as a single atomic batch.
//! 3. [`kv`] is the seam below transactions: the [`Kv`] trait only needs
//!    point-in-time snapshots and atomic batch writes, so a distributed store
//!    (TiKV) can replace the local one later. [`MemKv`] implements it in
//!    memory for tests.
//! 4. [`redb_kv`] implements [`Kv`] on a single redb file, which provides
//!    durability and crash safety; commits reach it through a write-ahead
//!    log ([`wal`]) and an in-memory table of recent writes (`memtable`),
//!    and reach the file in background checkpoints. [`slate_kv`] implements it
//!    on object storage (SlateDB) for cluster mode; [`conformance`] is the
//!    contract all three engines are tested against.
//!
//! Most callers only need [`Store::open`] (or [`Store::in_memory`]),
//! [`Store::begin`] and the [`Txn`] methods.

pub mod codec;
pub mod conformance;
pub mod kv;
mod memtable;
pub mod redb_kv;
pub mod replica;
pub mod slate_kv;
pub mod txn;
pub mod wal;

pub use codec::Datum;
pub use kv::{Kv, MemKv, Snapshot};
pub use redb_kv::RedbKv;
pub use replica::ReplicaKv;
pub use slate_kv::SlateKv;
pub use txn::{CommitObserver, Savepoint, Store, Txn};

/// Errors returned by the storage layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Another transaction committed a write to a key this transaction also
    /// wrote, after this transaction's snapshot was taken. The transaction's
    /// writes were discarded; the caller may retry it from the start.
    /// (The SQL layer reports this as TiDB's error 9007.)
    #[error("write conflict: another transaction committed a write to the same key; retry the transaction")]
    WriteConflict,
    /// The underlying store failed (I/O error, closed database, misuse).
    #[error("storage error: {0}")]
    Storage(String),
    /// This node may not commit: in a cluster, another node holds the writer lease (or has
    /// fenced this one). Nothing was written.
    #[error("{0}")]
    NotWriter(String),
    /// A cluster commit was sent to the shared database but this node could not learn whether
    /// it became durable (the write failed after it started, or the node lost the writer role
    /// meanwhile). It is either wholly there or wholly absent. (TiDB's error 8229.)
    #[error("{0}")]
    Undetermined(String),
    /// Stored bytes could not be decoded, or the store reported corruption.
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

/// Result type of the storage layer.
pub type Result<T> = std::result::Result<T, Error>;

/// A tiny deterministic RNG (xorshift64*) for the property tests and the
/// conformance suite, so they need no extra dependencies and every failure is
/// reproducible.
pub(crate) struct TestRng(u64);

impl TestRng {
    pub(crate) fn new(seed: u64) -> TestRng {
        TestRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
