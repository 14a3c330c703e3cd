//! Support for the tests and the benchmark: loading the shared real data sets, generating
//! seeded synthetic sets, exact ground truth by brute force, and recall.
//!
//! Real sets come from `<repo>/../shared/data/<name>/{base,query}.fvecs` and
//! `groundtruth.ivecs` (row numbers, used as keys). The path is resolved when the program runs,
//! not when it is compiled, because a shared target directory can hold a binary built from
//! another checkout; `EMBEDB_SHARED_DIR` (the `shared` directory, or its `data` directory) is
//! the fallback.
//!
//! Synthetic sets are Gaussian mixtures: cluster centres drawn from N(0, 1), and inside each
//! cluster points spread mostly along a few (`intrinsic`) random directions plus small
//! isotropic noise: real embeddings have low intrinsic dimension, while isotropic noise in
//! hundreds of dimensions is the uniform-random worst case, reported separately.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::{distance, Metric};

/// Row-major vectors of one dimension.
#[derive(Clone, Debug)]
pub struct Vectors {
    pub dims: usize,
    pub data: Vec<f32>,
}

impl Vectors {
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dims).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dims..(i + 1) * self.dims]
    }

    /// Scales every row to unit length (zero rows stay zero).
    pub fn normalize(&mut self) {
        let dims = self.dims;
        for row in self.data.chunks_exact_mut(dims) {
            let n = row.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt();
            if n > 0.0 {
                for x in row {
                    *x = (*x as f64 / n) as f32;
                }
            }
        }
    }

    /// The first `n` rows.
    pub fn truncate(&mut self, n: usize) {
        self.data.truncate(n * self.dims);
    }
}

fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Records of `[i32 little-endian dims][dims × 4-byte values]`, as `(dims, raw words)`.
fn read_vecs_words(path: &Path) -> io::Result<(usize, Vec<[u8; 4]>)> {
    let bytes = read_all(path)?;
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {why}", path.display()));
    if bytes.len() < 4 {
        return Err(bad("empty"));
    }
    let dims = i32::from_le_bytes(bytes[..4].try_into().unwrap());
    if dims <= 0 {
        return Err(bad("non-positive dimension"));
    }
    let dims = dims as usize;
    let record = 4 * (dims + 1);
    if bytes.len() % record != 0 {
        return Err(bad("length is not a whole number of records"));
    }
    let mut words = Vec::with_capacity(bytes.len() / record * dims);
    for rec in bytes.chunks_exact(record) {
        if i32::from_le_bytes(rec[..4].try_into().unwrap()) as usize != dims {
            return Err(bad("records of different dimensions"));
        }
        words.extend(rec[4..].chunks_exact(4).map(|c| <[u8; 4]>::try_from(c).unwrap()));
    }
    Ok((dims, words))
}

pub fn read_fvecs(path: &Path) -> io::Result<Vectors> {
    let (dims, words) = read_vecs_words(path)?;
    Ok(Vectors { dims, data: words.into_iter().map(f32::from_le_bytes).collect() })
}

pub fn read_ivecs(path: &Path) -> io::Result<Vec<Vec<u64>>> {
    let (dims, words) = read_vecs_words(path)?;
    let ids: Vec<u64> = words.into_iter().map(|w| i32::from_le_bytes(w) as u64).collect();
    Ok(ids.chunks_exact(dims).map(|c| c.to_vec()).collect())
}

/// `<repo>/../shared/data`, else `$EMBEDB_SHARED_DIR[/data]`; `None` if neither exists.
pub fn shared_data_dir() -> Option<PathBuf> {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let beside_repo = Path::new(&manifest).join("../../../shared/data");
    if beside_repo.is_dir() {
        return Some(beside_repo);
    }
    let env = PathBuf::from(std::env::var_os("EMBEDB_SHARED_DIR")?);
    [env.join("data"), env].into_iter().find(|p| p.is_dir())
}

/// A real data set with its exact neighbours (keys are base row numbers).
pub struct RealSet {
    pub name: String,
    pub base: Vectors,
    pub queries: Vectors,
    pub groundtruth: Vec<Vec<u64>>,
}

/// Loads `<shared data>/<name>`; `None` when the shared data directory is missing.
pub fn load_real_set(name: &str) -> Option<io::Result<RealSet>> {
    let dir = shared_data_dir()?.join(name);
    Some((|| {
        Ok(RealSet {
            name: name.to_string(),
            base: read_fvecs(&dir.join("base.fvecs"))?,
            queries: read_fvecs(&dir.join("query.fvecs"))?,
            groundtruth: read_ivecs(&dir.join("groundtruth.ivecs"))?,
        })
    })())
}

/// SplitMix64: tiny, seedable, and stable across versions (unlike a registry RNG's streams).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn gaussian(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Shape of a synthetic Gaussian-mixture set.
#[derive(Clone, Copy, Debug)]
pub struct Clustered {
    pub dims: usize,
    pub clusters: usize,
    /// Directions along which each cluster spreads.
    pub intrinsic: usize,
    /// Standard deviation along each of those directions, in units of √dims (the scale of the
    /// distance between centres).
    pub spread: f64,
    /// Isotropic noise per coordinate.
    pub noise: f64,
    pub seed: u64,
}

impl Clustered {
    /// 100 clusters, 16 intrinsic directions: the set the tests and bench use.
    pub fn new(dims: usize, seed: u64) -> Self {
        Clustered { dims, clusters: 100, intrinsic: 16, spread: 0.25, noise: 0.02, seed }
    }

    /// `n_base` points and `n_queries` further points from the same clusters.
    pub fn generate(&self, n_base: usize, n_queries: usize) -> (Vectors, Vectors) {
        let d = self.dims;
        let mut rng = Rng::new(self.seed);
        let centres: Vec<f64> = (0..self.clusters * d).map(|_| rng.gaussian()).collect();
        // Unit random directions per cluster, so `spread` is the per-direction deviation.
        let mut bases = vec![0f64; self.clusters * self.intrinsic * d];
        for dir in bases.chunks_exact_mut(d) {
            for x in dir.iter_mut() {
                *x = rng.gaussian();
            }
            let n = dir.iter().map(|x| x * x).sum::<f64>().sqrt();
            dir.iter_mut().for_each(|x| *x /= n);
        }
        let point = |rng: &mut Rng, out: &mut Vec<f32>| {
            let c = rng.below(self.clusters);
            let mut p: Vec<f64> = centres[c * d..(c + 1) * d].to_vec();
            for j in 0..self.intrinsic {
                let z = rng.gaussian() * self.spread;
                let dir = &bases[(c * self.intrinsic + j) * d..(c * self.intrinsic + j + 1) * d];
                for (x, b) in p.iter_mut().zip(dir) {
                    *x += z * b * (d as f64).sqrt();
                }
            }
            for x in p.iter_mut() {
                *x += rng.gaussian() * self.noise;
            }
            out.extend(p.iter().map(|&x| x as f32));
        };
        let mut base = Vec::with_capacity(n_base * d);
        for _ in 0..n_base {
            point(&mut rng, &mut base);
        }
        let mut queries = Vec::with_capacity(n_queries * d);
        for _ in 0..n_queries {
            point(&mut rng, &mut queries);
        }
        (Vectors { dims: d, data: base }, Vectors { dims: d, data: queries })
    }
}

/// `n` points uniform in [−1, 1]^dims.
pub fn uniform(n: usize, dims: usize, seed: u64) -> Vectors {
    let mut rng = Rng::new(seed);
    Vectors { dims, data: (0..n * dims).map(|_| (rng.next_f64() * 2.0 - 1.0) as f32).collect() }
}

/// Exact top-`k` base rows (as keys) per query among rows passing `filter`, by TiDB distance,
/// ties broken by key. Runs on all cores.
pub fn brute_force(
    base: &Vectors,
    queries: &Vectors,
    k: usize,
    metric: Metric,
    filter: &(dyn Fn(u64) -> bool + Sync),
) -> Vec<Vec<u64>> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let nq = queries.len();
    let mut out: Vec<Vec<u64>> = vec![Vec::new(); nq];
    let per = nq.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (chunk_no, chunk) in out.chunks_mut(per).enumerate() {
            s.spawn(move || {
                for (j, slot) in chunk.iter_mut().enumerate() {
                    let q = queries.row(chunk_no * per + j);
                    let mut scored: Vec<(f64, u64)> = (0..base.len())
                        .filter(|&i| filter(i as u64))
                        .map(|i| (distance::exact(metric, q, base.row(i)), i as u64))
                        .collect();
                    let kk = k.min(scored.len());
                    if kk == 0 {
                        continue;
                    }
                    let cmp = |a: &(f64, u64), b: &(f64, u64)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
                    scored.select_nth_unstable_by(kk - 1, cmp);
                    scored.truncate(kk);
                    scored.sort_by(cmp);
                    *slot = scored.into_iter().map(|(_, i)| i).collect();
                }
            });
        }
    });
    out
}

/// Mean over queries of |found[..k] ∩ truth[..k]| / min(k, |truth|).
pub fn recall_at_k(found: &[Vec<u64>], truth: &[Vec<u64>], k: usize) -> f64 {
    assert_eq!(found.len(), truth.len());
    let mut total = 0.0;
    for (f, t) in found.iter().zip(truth) {
        let t = &t[..k.min(t.len())];
        if t.is_empty() {
            total += 1.0;
            continue;
        }
        let hits = f.iter().take(k).filter(|key| t.contains(key)).count();
        total += hits as f64 / t.len() as f64;
    }
    total / found.len().max(1) as f64
}
