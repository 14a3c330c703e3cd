//! embedb-vector: TiDB's `VECTOR` type and the `VEC_*` functions for DataFusion.
//!
//! # Representation
//! A VECTOR value is an Arrow `List<Float32>` (see [`vector_data_type`]); the dimension may differ
//! per row (`VECTOR(D)` is a catalog-level constraint, checked with [`check_dimension`]). The text
//! form is a JSON array of numbers, printed as `[1,2.5,-3]` ([`parse_vector`], [`format_vector`]);
//! a compact binary form is the little-endian float32 elements ([`vector_to_bytes`],
//! [`vector_from_bytes`]).
//!
//! # Functions
//! [`all_udfs`] / [`register_all`] provide `vec_dims`, `vec_l1_distance`, `vec_l2_distance`,
//! `vec_cosine_distance`, `vec_negative_inner_product`, `vec_l2_norm`, `vec_from_text`,
//! `vec_as_text`, and `vec_add` / `vec_sub` (for the `+` / `-` operators); [`mmr`] the window
//! function `mmr_rank` (maximal marginal relevance). Vector arguments may be
//! `List`/`LargeList`/`FixedSizeList` of float32/float64, strings in text form, or NULL.
//!
//! Error messages are exactly TiDB's (see [`VectorError`]); the functions raise them as
//! `DataFusionError::Execution`. A wrong argument count fails during planning with
//! `Incorrect parameter count in the call to native function 'VEC_…'`.

pub mod distance;
pub mod functions;
pub mod mmr;
pub mod text;

use datafusion::arrow::datatypes::{DataType, Field};

pub use distance::{
    add_vectors, cosine_distance, inner_product, l1_distance, l2_distance, l2_norm,
    l2_squared_distance, negative_inner_product, squared_norm_f32, sub_vectors,
};
pub use functions::{all_udfs, distances_to, parameter_count_error, udf, VectorFunction, VectorUdf};
pub use text::{
    check_declared_dimension, check_dimension, check_elements, compare_vectors, float64_to_element,
    format_vector, parse_vector, parse_vector_into, vector_from_bytes, vector_to_bytes,
    write_vector, VectorError, MAX_DIMENSIONS,
};

/// The Arrow type of a VECTOR value: `List<Float32>` with a nullable item field named `item`.
pub fn vector_data_type() -> DataType {
    DataType::List(std::sync::Arc::new(vector_item_field()))
}

/// The item field of [`vector_data_type`].
pub fn vector_item_field() -> Field {
    Field::new("item", DataType::Float32, true)
}

/// True for the Arrow types the functions read as vectors (lists of float32/float64).
pub fn is_vector_type(t: &DataType) -> bool {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            matches!(f.data_type(), DataType::Float32 | DataType::Float64)
        }
        _ => false,
    }
}

/// Registers every function of [`all_udfs`] with `ctx`, and the window function `mmr_rank`
/// ([`mmr`]).
pub fn register_all(ctx: &datafusion::prelude::SessionContext) {
    for f in all_udfs() {
        ctx.register_udf(f);
    }
    ctx.register_udwf(mmr::mmr_rank_udwf());
}
