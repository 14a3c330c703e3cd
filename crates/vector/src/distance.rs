//! Vector arithmetic on plain `&[f32]` slices, with TiDB's exact numeric behaviour:
//! L1, L2, inner product and cosine are accumulated in float32 (in element order), only the final
//! square root / division is done in float64; the L2 norm is computed entirely in float64.
//!
//! The distance functions return `NaN` where TiDB computes NaN (e.g. cosine with a zero vector);
//! the SQL functions turn that into NULL.

use crate::text::VectorError;

fn same_dims(a: &[f32], b: &[f32]) -> Result<(), VectorError> {
    if a.len() != b.len() {
        return Err(VectorError::DifferentDimensions(a.len(), b.len()));
    }
    Ok(())
}

/// Σ|aᵢ−bᵢ| in float32. Slices must have equal length.
#[inline]
pub(crate) fn l1_unchecked(a: &[f32], b: &[f32]) -> f64 {
    let mut sum = 0f32;
    for (x, y) in a.iter().zip(b) {
        sum += (x - y).abs();
    }
    sum as f64
}

/// Σ(aᵢ−bᵢ)² in float32. Slices must have equal length.
#[inline]
pub(crate) fn l2_squared_unchecked(a: &[f32], b: &[f32]) -> f64 {
    let mut sum = 0f32;
    for (x, y) in a.iter().zip(b) {
        let d = x - y;
        sum += d * d;
    }
    sum as f64
}

/// Σaᵢbᵢ in float32. Slices must have equal length.
#[inline]
pub(crate) fn inner_product_unchecked(a: &[f32], b: &[f32]) -> f64 {
    let mut sum = 0f32;
    for (x, y) in a.iter().zip(b) {
        sum += x * y;
    }
    sum as f64
}

/// Σvᵢ² in float32 (the squared norm the cosine distance uses).
#[inline]
pub fn squared_norm_f32(v: &[f32]) -> f32 {
    let mut sum = 0f32;
    for x in v {
        sum += x * x;
    }
    sum
}

/// Cosine distance given `b`'s float32 squared norm (see [`squared_norm_f32`]), so a constant
/// side's norm is computed once. Slices must have equal length.
#[inline]
pub(crate) fn cosine_with_norm_unchecked(a: &[f32], b: &[f32], b_norm_sq: f32) -> f64 {
    let mut dot = 0f32;
    let mut a_norm_sq = 0f32;
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        a_norm_sq += x * x;
    }
    let similarity = dot as f64 / (a_norm_sq as f64 * b_norm_sq as f64).sqrt();
    if similarity.is_nan() {
        return f64::NAN;
    }
    1.0 - similarity.clamp(-1.0, 1.0)
}

/// `VEC_L1_DISTANCE`: Σ|aᵢ−bᵢ|, accumulated in float32.
pub fn l1_distance(a: &[f32], b: &[f32]) -> Result<f64, VectorError> {
    same_dims(a, b)?;
    Ok(l1_unchecked(a, b))
}

/// `VEC_L2_DISTANCE`: √Σ(aᵢ−bᵢ)², sum in float32, square root in float64.
pub fn l2_distance(a: &[f32], b: &[f32]) -> Result<f64, VectorError> {
    same_dims(a, b)?;
    Ok(l2_squared_unchecked(a, b).sqrt())
}

/// Squared L2 distance (sum in float32); orders like [`l2_distance`] without the square root.
pub fn l2_squared_distance(a: &[f32], b: &[f32]) -> Result<f64, VectorError> {
    same_dims(a, b)?;
    Ok(l2_squared_unchecked(a, b))
}

/// Σaᵢbᵢ, accumulated in float32.
pub fn inner_product(a: &[f32], b: &[f32]) -> Result<f64, VectorError> {
    same_dims(a, b)?;
    Ok(inner_product_unchecked(a, b))
}

/// `VEC_NEGATIVE_INNER_PRODUCT`: −Σaᵢbᵢ.
pub fn negative_inner_product(a: &[f32], b: &[f32]) -> Result<f64, VectorError> {
    Ok(-inner_product(a, b)?)
}

/// `VEC_COSINE_DISTANCE`: 1 − a·b/√(‖a‖²‖b‖²), similarity clamped to [−1, 1]; `NaN` when either
/// vector is all zeros.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> Result<f64, VectorError> {
    same_dims(a, b)?;
    Ok(cosine_with_norm_unchecked(a, b, squared_norm_f32(b)))
}

/// `VEC_L2_NORM`: √Σvᵢ², computed in float64.
pub fn l2_norm(v: &[f32]) -> f64 {
    let mut sum = 0f64;
    for &x in v {
        let x = x as f64;
        sum += x * x;
    }
    sum.sqrt()
}

fn elementwise(
    a: &[f32],
    b: &[f32],
    out: &mut Vec<f32>,
    op: impl Fn(f32, f32) -> f32,
) -> Result<(), VectorError> {
    same_dims(a, b)?;
    out.clear();
    out.extend(a.iter().zip(b).map(|(&x, &y)| op(x, y)));
    for x in out.iter() {
        if x.is_infinite() {
            return Err(VectorError::ResultOverflow);
        }
        if x.is_nan() {
            return Err(VectorError::ResultNaN);
        }
    }
    Ok(())
}

/// Element-wise `a + b` into `out` (cleared first).
pub fn add_into(a: &[f32], b: &[f32], out: &mut Vec<f32>) -> Result<(), VectorError> {
    elementwise(a, b, out, |x, y| x + y)
}

/// Element-wise `a - b` into `out` (cleared first).
pub fn sub_into(a: &[f32], b: &[f32], out: &mut Vec<f32>) -> Result<(), VectorError> {
    elementwise(a, b, out, |x, y| x - y)
}

/// Element-wise `a + b` (the `+` operator on vectors).
pub fn add_vectors(a: &[f32], b: &[f32]) -> Result<Vec<f32>, VectorError> {
    let mut out = Vec::with_capacity(a.len());
    add_into(a, b, &mut out)?;
    Ok(out)
}

/// Element-wise `a - b` (the `-` operator on vectors).
pub fn sub_vectors(a: &[f32], b: &[f32]) -> Result<Vec<f32>, VectorError> {
    let mut out = Vec::with_capacity(a.len());
    sub_into(a, b, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples() {
        assert_eq!(l2_distance(&[0.0, 3.0], &[4.0, 0.0]).unwrap(), 5.0);
        assert_eq!(cosine_distance(&[1.0, 1.0], &[-1.0, -1.0]).unwrap(), 2.0);
        assert_eq!(
            negative_inner_product(&[1.0, 2.0], &[3.0, 4.0]).unwrap(),
            -11.0
        );
        assert_eq!(l1_distance(&[0.0, 0.0], &[3.0, 4.0]).unwrap(), 7.0);
        assert_eq!(l2_norm(&[3.0, 4.0]), 5.0);
        assert_eq!(l2_squared_distance(&[0.0, 3.0], &[4.0, 0.0]).unwrap(), 25.0);
        let c = cosine_distance(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!((c - 0.025368153802923787).abs() < 1e-6, "{c}");
        assert_eq!(cosine_distance(&[1.0, 2.0], &[1.0, 2.0]).unwrap(), 0.0);
    }

    #[test]
    fn zero_vector_cosine_is_nan() {
        assert!(cosine_distance(&[0.0, 0.0], &[1.0, 2.0]).unwrap().is_nan());
        assert!(cosine_distance(&[], &[]).unwrap().is_nan());
    }

    #[test]
    fn float32_accumulation() {
        // 1e8 + 1 + ... stays 1e8 in float32 (the 1s are lost), unlike float64.
        let a = [1e8f32, 1.0, 1.0, 1.0, 1.0];
        let z = [0f32; 5];
        assert_eq!(l1_distance(&a, &z).unwrap(), 1e8);
        assert_eq!(inner_product(&a, &[1.0; 5]).unwrap(), 1e8);
        // The norm uses float64.
        let n = l2_norm(&[1e20, 1e20]);
        assert!((n - 1.4142135623730951e20).abs() / n < 1e-7);
        // In float32 the square overflows.
        assert!(l2_distance(&[1e20, 1e20], &[0.0, 0.0])
            .unwrap()
            .is_infinite());
    }

    #[test]
    fn dimension_errors() {
        let e = l2_distance(&[1.0, 2.0], &[1.0, 2.0, 3.0]).unwrap_err();
        assert_eq!(e.to_string(), "vectors have different dimensions: 2 and 3");
        for f in [
            l1_distance,
            l2_distance,
            cosine_distance,
            negative_inner_product,
        ] {
            assert_eq!(
                f(&[1.0, 2.0, 3.0], &[1.0]).unwrap_err().to_string(),
                "vectors have different dimensions: 3 and 1"
            );
        }
    }

    #[test]
    fn add_sub() {
        assert_eq!(
            add_vectors(&[1.0, 2.0], &[3.0, 4.0]).unwrap(),
            vec![4.0, 6.0]
        );
        assert_eq!(
            sub_vectors(&[1.0, 2.0], &[3.0, 5.0]).unwrap(),
            vec![-2.0, -3.0]
        );
        assert_eq!(
            add_vectors(&[1.0], &[1.0, 2.0]).unwrap_err().to_string(),
            "vectors have different dimensions: 1 and 2"
        );
        assert_eq!(
            add_vectors(&[f32::MAX], &[f32::MAX])
                .unwrap_err()
                .to_string(),
            "value out of range: overflow"
        );
        assert_eq!(
            sub_vectors(&[f32::MAX], &[-f32::MAX])
                .unwrap_err()
                .to_string(),
            "value out of range: overflow"
        );
        assert_eq!(
            add_vectors(&[f32::INFINITY], &[f32::NEG_INFINITY])
                .unwrap_err()
                .to_string(),
            "value out of range: NaN"
        );
        assert_eq!(add_vectors(&[], &[]).unwrap(), Vec::<f32>::new());
    }
}
