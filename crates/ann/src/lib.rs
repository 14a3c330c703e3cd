//! embedb-ann: the HNSW vector index behind `VECTOR INDEX … USING HNSW`.
//!
//! Data flows through it like this:
//! 1. The SQL layer declares an index: [`AnnParams::new`]`(`[`Metric`]`, dims)` from the
//!    indexed distance function (`VEC_COSINE_DISTANCE` → [`Metric::Cosine`], …) and the column's
//!    `VECTOR(n)`, then [`AnnIndex::new`] (or [`AnnIndex::load`] on start).
//! 2. Table writes become [`AnnIndex::add`] / [`AnnIndex::add_batch`] (upserts keyed by row id)
//!    and [`AnnIndex::remove`]. Rows whose vector is NULL, or all zeros under cosine (TiDB's
//!    distance is NULL there), stay out of the index ([`AnnError::ZeroVector`]).
//! 3. `ORDER BY VEC_…_DISTANCE(col, const) LIMIT k` becomes [`AnnIndex::search`], which returns
//!    `(row id, distance)` ascending, the distance being the TiDB function's value. With a WHERE
//!    clause, [`AnnIndex::search_filtered`] takes a row-id predicate and still returns `k` rows
//!    whenever `k` rows pass; [`AnnIndex::estimate_filter`] tells the planner whether it will
//!    walk the graph or scan, and [`AnnIndex::search_exact`] is the exact scan itself.
//! 4. Periodically (or on shutdown) [`AnnIndex::save`] writes the index with a caller watermark;
//!    on start [`AnnIndex::load`] returns it with the watermark to replay from.
//!
//! usearch does the graph work ([`index`]); [`distance`] reproduces TiDB's arithmetic;
//! [`persist`] makes saves crash-safe; [`eval`] holds data loaders and ground-truth helpers
//! shared by the tests and `examples/ann_bench.rs`.

pub mod distance;
pub mod eval;
pub mod index;
mod keys;
pub mod params;
pub mod persist;

pub use index::{AnnIndex, FilterEstimate, FilterStrategy, RESERVED_KEY};
pub use params::{AnnParams, Metric, Quantization, MAX_DIMS};
pub use persist::Manifest;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum AnnError {
    #[error("invalid vector index parameters: {0}")]
    InvalidParams(String),
    #[error("vector has {got} values, the index expects {expected}")]
    Dimension { expected: usize, got: usize },
    #[error("vector contains NaN or infinity")]
    NonFinite,
    #[error("a zero vector has no cosine distance")]
    ZeroVector,
    #[error("key {0} is reserved by the index and cannot name a row")]
    ReservedKey(u64),
    #[error("usearch: {0}")]
    Usearch(String),
    #[error("saved vector index is unusable: {0}")]
    Corrupt(String),
    #[error("saved vector index was built with {saved:?}, but {wanted:?} was requested")]
    ParamsMismatch { saved: Box<AnnParams>, wanted: Box<AnnParams> },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<AnnIndex>();
    }
}
