//! `MMR_RANK(vector, relevance, lambda) OVER (…)`: maximal marginal relevance as a window
//! function, to diversify search results in SQL.
//!
//! ```sql
//! SELECT id FROM (
//!   SELECT id, MMR_RANK(v, 1 - d, 0.5) OVER () AS r
//!   FROM (SELECT id, v, VEC_COSINE_DISTANCE(v, '[…]') AS d FROM docs ORDER BY d LIMIT 50) AS c
//! ) AS m ORDER BY r LIMIT 10;
//! ```
//!
//! Over each partition (usually the whole candidate set), rows are picked greedily: each next
//! pick is the row that maximises `lambda * rel(row) - (1 - lambda) * max sim(row, picked)`, where
//! `rel` is the relevance divided by the partition's largest absolute relevance (so any score
//! works — a similarity, BM25, an RRF score — with the best row at 1 and the proportions kept;
//! a similarity stays about what it is, which is the scale `sim` has: the textbook MMR), and
//! `sim` is the cosine similarity of the two rows' vectors
//! (0 when either is NULL or all zeros, or their dimensions differ). The result is each row's
//! pick order, 1 first. `lambda` 1 ranks by relevance alone; 0 by diversity alone (after the most
//! relevant row). Ties go to the earlier row. Rows with a NULL relevance come last, in their
//! order. It costs O(n² · dims) for n rows: meant for tens to hundreds of candidates.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl};

use crate::functions::vectors_of;

/// The window function (see the module docs).
pub fn mmr_rank_udwf() -> WindowUDF {
    WindowUDF::from(MmrRank { signature: Signature::any(3, Volatility::Immutable) })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MmrRank {
    signature: Signature,
}

impl WindowUDFImpl for MmrRank {
    fn name(&self) -> &str {
        "mmr_rank"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(&self, _args: PartitionEvaluatorArgs) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(MmrEvaluator))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(field_args.name(), DataType::UInt64, false)))
    }
}

#[derive(Debug)]
struct MmrEvaluator;

impl PartitionEvaluator for MmrEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let [vectors, relevance, lambda] = values else { return exec_err!("MMR_RANK takes (vector, relevance, lambda)") };
        let vectors = vectors_of(vectors)?;
        let relevance = cast(relevance, &DataType::Float64)?;
        let relevance = relevance.as_primitive::<Float64Type>();
        let lambda = cast(lambda, &DataType::Float64)?;
        let lambda = lambda.as_primitive::<Float64Type>();
        let lambda = match (0..lambda.len()).find(|&i| lambda.is_valid(i)).map(|i| lambda.value(i)) {
            Some(l) if (0.0..=1.0).contains(&l) => l,
            None if num_rows == 0 => 1.0,
            _ => return exec_err!("MMR_RANK: lambda (the 3rd argument) is a number from 0 to 1"),
        };
        let rel: Vec<Option<f64>> = (0..num_rows).map(|i| relevance.is_valid(i).then(|| relevance.value(i)).filter(|r| r.is_finite())).collect();
        Ok(Arc::new(UInt64Array::from(mmr_order(&vectors, &rel, lambda))))
    }
}

/// Each row's MMR pick order (1 first), see the module docs.
pub fn mmr_order(vectors: &[Option<Vec<f32>>], relevance: &[Option<f64>], lambda: f64) -> Vec<u64> {
    let n = relevance.len();
    let scale = relevance.iter().flatten().fold(0.0f64, |m, &r| m.max(r.abs()));
    let norm = |r: f64| if scale > 0.0 { r / scale } else { 1.0 };
    let unit: Vec<Option<Vec<f32>>> = vectors.iter().map(|v| v.as_ref().and_then(|v| unit_vector(v))).collect();
    let mut rank = vec![0u64; n];
    // The highest similarity of each row to a picked one (None while nothing is picked).
    let mut nearest_picked: Vec<Option<f64>> = vec![None; n];
    let mut next = 1u64;
    loop {
        let mut best: Option<(usize, f64)> = None;
        for i in 0..n {
            let Some(r) = relevance[i] else { continue };
            if rank[i] != 0 {
                continue;
            }
            let score = lambda * norm(r) - (1.0 - lambda) * nearest_picked[i].unwrap_or(0.0);
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i, score));
            }
        }
        let Some((pick, _)) = best else { break };
        rank[pick] = next;
        next += 1;
        for i in 0..n {
            if rank[i] == 0 && relevance[i].is_some() {
                let sim = similarity(&unit[i], &unit[pick]);
                nearest_picked[i] = Some(nearest_picked[i].map_or(sim, |s| s.max(sim)));
            }
        }
    }
    // Rows without a relevance, last in their order.
    for r in rank.iter_mut().filter(|r| **r == 0) {
        *r = next;
        next += 1;
    }
    rank
}

fn unit_vector(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| v.iter().map(|&x| (x as f64 / norm) as f32).collect())
}

fn similarity(a: &Option<Vec<f32>>, b: &Option<Vec<f32>>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) if a.len() == b.len() => a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum(),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_most_relevant_then_trades_relevance_for_diversity() {
        // Rows 0 and 1 point the same way; row 2 elsewhere, a little less relevant.
        let v = vec![Some(vec![1.0, 0.0]), Some(vec![1.0, 0.01]), Some(vec![0.0, 1.0])];
        let rel = vec![Some(0.9), Some(0.89), Some(0.8)];
        assert_eq!(mmr_order(&v, &rel, 1.0), vec![1, 2, 3], "relevance alone");
        assert_eq!(mmr_order(&v, &rel, 0.5), vec![1, 3, 2], "the near-duplicate waits");
        // Ties go to the earlier row; NULL relevance last; NULL vectors are unlike everything.
        let v = vec![None, Some(vec![1.0, 0.0]), Some(vec![1.0, 0.0]), Some(vec![2.0, 0.0])];
        assert_eq!(mmr_order(&v, &[Some(1.0), None, Some(1.0), Some(1.0)], 0.5), vec![1, 4, 2, 3]);
        assert_eq!(mmr_order(&[], &[], 0.5), Vec::<u64>::new());
    }
}
