//! Distances with TiDB's numeric behaviour, so index results carry the same values as the SQL
//! functions: sums are accumulated in float32 in element order, and only the final square root
//! or division happens in float64 (`VEC_COSINE_DISTANCE` also clamps the similarity to [−1, 1]).
//!
//! Two flavours per metric:
//! - [`exact`]: the TiDB value, bit for bit; used for every distance we return.
//! - [`Scorer`]: an order-preserving score with eight independent accumulators, which the
//!   compiler vectorises; the brute-force scan ranks by it and re-scores its best candidates
//!   exactly, because a strict element-order sum cannot use SIMD.

use crate::Metric;

/// The TiDB value of `metric` between `a` and `b` (equal lengths). Cosine with a zero vector
/// is `NaN` (TiDB: NULL).
pub fn exact(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    match metric {
        Metric::L2 => {
            let mut sum = 0f32;
            for (x, y) in a.iter().zip(b) {
                let d = x - y;
                sum += d * d;
            }
            (sum as f64).sqrt()
        }
        Metric::InnerProduct => {
            let mut sum = 0f32;
            for (x, y) in a.iter().zip(b) {
                sum += x * y;
            }
            -(sum as f64)
        }
        Metric::Cosine => {
            let (mut dot, mut a2, mut b2) = (0f32, 0f32, 0f32);
            for (x, y) in a.iter().zip(b) {
                dot += x * y;
                a2 += x * x;
                b2 += y * y;
            }
            let similarity = dot as f64 / (a2 as f64 * b2 as f64).sqrt();
            if similarity.is_nan() {
                return f64::NAN;
            }
            1.0 - similarity.clamp(-1.0, 1.0)
        }
    }
}

const LANES: usize = 8;

/// Ranks stored vectors against one query. Scores order like [`exact`] up to float rounding;
/// they are not TiDB values.
pub(crate) struct Scorer<'q> {
    metric: Metric,
    query: &'q [f32],
    query_norm: f32,
}

impl<'q> Scorer<'q> {
    pub(crate) fn new(metric: Metric, query: &'q [f32]) -> Self {
        let query_norm = dot_lanes(query, query).sqrt();
        Scorer { metric, query, query_norm }
    }

    pub(crate) fn score(&self, v: &[f32]) -> f32 {
        match self.metric {
            Metric::L2 => l2sq_lanes(self.query, v),
            Metric::InnerProduct => -dot_lanes(self.query, v),
            Metric::Cosine => {
                let (dot, v2) = dot_and_norm_lanes(self.query, v);
                let denom = self.query_norm * v2.sqrt();
                if denom > 0.0 {
                    1.0 - dot / denom
                } else {
                    // Zero stored vectors are never indexed; rank anything odd last.
                    f32::INFINITY
                }
            }
        }
    }
}

fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

fn l2sq_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        let d = x - y;
        sum += d * d;
    }
    sum
}

/// (q·v, v·v) in one pass.
fn dot_and_norm_lanes(q: &[f32], v: &[f32]) -> (f32, f32) {
    let mut dot = [0f32; LANES];
    let mut nrm = [0f32; LANES];
    let (cq, cv) = (q.chunks_exact(LANES), v.chunks_exact(LANES));
    let (rq, rv) = (cq.remainder(), cv.remainder());
    for (x, y) in cq.zip(cv) {
        for i in 0..LANES {
            dot[i] += x[i] * y[i];
            nrm[i] += y[i] * y[i];
        }
    }
    let (mut d, mut n): (f32, f32) = (dot.iter().sum(), nrm.iter().sum());
    for (x, y) in rq.iter().zip(rv) {
        d += x * y;
        n += y * y;
    }
    (d, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidb_examples() {
        // The examples in the TiDB vector spec.
        assert_eq!(exact(Metric::L2, &[0.0, 3.0], &[4.0, 0.0]), 5.0);
        assert_eq!(exact(Metric::Cosine, &[1.0, 1.0], &[-1.0, -1.0]), 2.0);
        assert_eq!(exact(Metric::InnerProduct, &[1.0, 2.0], &[3.0, 4.0]), -11.0);
        assert!(exact(Metric::Cosine, &[0.0, 0.0], &[1.0, 2.0]).is_nan());
        assert_eq!(exact(Metric::Cosine, &[1.0, 2.0], &[2.0, 4.0]), 0.0);
    }

    #[test]
    fn float32_accumulation_order() {
        // 1e8 + 1 + 1 + 1 + 1 stays 1e8 when summed in f32 in order; TiDB does the same.
        let a = [1e4f32, 1.0, 1.0, 1.0, 1.0];
        let z = [0f32; 5];
        assert_eq!(exact(Metric::L2, &a, &z), 1e4);
    }

    #[test]
    fn scorer_orders_like_exact() {
        let q: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let vs: Vec<Vec<f32>> =
            (0..20).map(|j| (0..37).map(|i| ((i * j) as f32 * 0.11).cos() + j as f32 * 0.01).collect()).collect();
        for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
            let s = Scorer::new(metric, &q);
            for v in &vs {
                let e = exact(metric, &q, v);
                let f = s.score(v) as f64;
                let want = if metric == Metric::L2 { e * e } else { e };
                assert!((f - want).abs() <= 1e-4 * (1.0 + want.abs()), "{metric:?}: {f} vs {want}");
            }
        }
    }
}
