//! CPU kernels for the encoder: a matrix multiplication against pre-packed weights with fused
//! epilogues, row-wise layer norm, softmax and the GELU activations.
//!
//! Every kernel has a portable body written so the compiler can vectorise it (fixed-width lane
//! arrays, no branches in the inner loops, no libm calls). The bodies are `#[inline(always)]` and
//! instantiated once per instruction set behind `#[target_feature]` wrappers; [`Isa::detect`] picks
//! the best one the CPU has at run time. The matrix multiplication additionally has a hand-written
//! AVX-512 micro-kernel (`std::arch`), since register allocation for it is too important to leave
//! to the auto-vectoriser.
//!
//! Numerics: f32 throughout with an f32 accumulator per output (as PyTorch's CPU kernels); `exp` is a
//! degree-6 polynomial after range reduction (relative error ≈ 2e-7) and `erf` uses Abramowitz &
//! Stegun 7.1.26 (absolute error ≤ 1.5e-7), both far below what the cosine checks against
//! sentence-transformers can see.

#![allow(clippy::too_many_arguments)]

/// The instruction set the kernels run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// x86-64 with AVX-512F (hand-written matmul micro-kernel).
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// x86-64 with AVX2 and FMA (portable bodies compiled for them).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Whatever the compilation target offers.
    Generic,
}

impl Isa {
    /// The best instruction set this CPU supports. `EMBEDB_EMBED_ISA=generic|avx2|avx512` narrows it
    /// (for tests and measurements); an unsupported choice falls back to detection.
    pub(crate) fn detect() -> Isa {
        let wanted = std::env::var("EMBEDB_EMBED_ISA").ok();
        let wanted = wanted.as_deref().map(str::to_ascii_lowercase);
        if wanted.as_deref() == Some("generic") {
            return Isa::Generic;
        }
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            let avx512 = avx2 && is_x86_feature_detected!("avx512f");
            if avx512 && wanted.as_deref() != Some("avx2") {
                return Isa::Avx512;
            }
            if avx2 {
                return Isa::Avx2;
            }
        }
        Isa::Generic
    }

    /// Every instruction set this CPU can run, best first (for tests comparing them).
    #[cfg(test)]
    pub(crate) fn all_supported() -> Vec<Isa> {
        let mut out = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            if avx2 && is_x86_feature_detected!("avx512f") {
                out.push(Isa::Avx512);
            }
            if avx2 {
                out.push(Isa::Avx2);
            }
        }
        out.push(Isa::Generic);
        out
    }
}

/// Output columns per packed weight panel (two AVX-512 registers of f32).
const NR: usize = 32;

/// 64-byte aligned storage for 16 floats, so packed panels start on cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A linear layer `y = x·Wᵀ + b` with `W` (`n` × `k`, PyTorch's layout) packed for the kernels: panels of
/// [`NR`] output columns, each stored k-major (`NR` consecutive floats per input feature), the last panel
/// zero-padded.
pub(crate) struct PackedLinear {
    n: usize,
    k: usize,
    panels: Vec<Line>,
    bias: Vec<f32>,
}

impl std::fmt::Debug for PackedLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedLinear")
            .field("n", &self.n)
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

impl PackedLinear {
    /// Packs `weight` (row-major `n` × `k`) and `bias` (`n`).
    pub(crate) fn new(weight: &[f32], bias: &[f32], n: usize, k: usize) -> PackedLinear {
        assert_eq!(weight.len(), n * k, "weight shape");
        assert_eq!(bias.len(), n, "bias shape");
        let n_panels = n.div_ceil(NR);
        let mut flat = vec![0f32; n_panels * k * NR];
        for p in 0..n_panels {
            for kk in 0..k {
                for j in 0..NR {
                    let col = p * NR + j;
                    if col < n {
                        flat[(p * k + kk) * NR + j] = weight[col * k + kk];
                    }
                }
            }
        }
        let panels = flat
            .chunks_exact(16)
            .map(|c| Line(c.try_into().expect("16 floats")))
            .collect();
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(n_panels * NR, 0.0);
        PackedLinear {
            n,
            k,
            panels,
            bias: padded_bias,
        }
    }

    pub(crate) fn out_features(&self) -> usize {
        self.n
    }

    fn panel(&self, p: usize) -> *const f32 {
        debug_assert!(p < self.n.div_ceil(NR));
        // SAFETY: in bounds (panel p spans k·NR floats starting at p·k·NR); Line is 16 plain floats.
        unsafe { (self.panels.as_ptr() as *const f32).add(p * self.k * NR) }
    }
}

/// What happens to each output after `x·Wᵀ + b`.
#[derive(Clone, Copy)]
pub(crate) enum Post<'a> {
    None,
    /// Exact (erf) GELU.
    Gelu,
    /// GELU's tanh approximation.
    GeluTanh,
    Relu,
    /// Adds a residual of the output's shape.
    Add(&'a [f32]),
}

/// `out = post(a·Wᵀ + b)`, `a` row-major `m` × `k`, `out` row-major `m` × `n`.
pub(crate) fn linear(
    isa: Isa,
    a: &[f32],
    m: usize,
    w: &PackedLinear,
    out: &mut [f32],
    post: Post<'_>,
) {
    assert_eq!(a.len(), m * w.k, "input shape");
    assert_eq!(out.len(), m * w.n, "output shape");
    if let Post::Add(r) = post {
        assert_eq!(r.len(), out.len(), "residual shape");
    }
    if m == 0 || w.n == 0 {
        return;
    }
    match isa {
        // SAFETY: Isa::Avx512 / Isa::Avx2 are only produced when the CPU has those features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::linear_avx512(a, m, w, out, post) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::linear_avx2(a, m, w, out, post) },
        Isa::Generic => linear_portable::<GENERIC_MR, GENERIC_FMA>(a, m, w, out, post),
    }
}

/// Row blocks of this many rows share one pass over the packed weights (the block's inputs stay in L2).
const MC: usize = 96;

/// Columns per portable micro-tile (half a packed panel).
const PORTABLE_NR: usize = 16;

/// Rows per portable micro-tile and whether to use fused multiply-add, for the compilation target
/// itself: 16 vector registers on x86-64 without AVX (2 rows × 16 columns of SSE lanes fit), 32 on
/// AArch64 (4 rows).
#[cfg(target_arch = "aarch64")]
const GENERIC_MR: usize = 4;
#[cfg(not(target_arch = "aarch64"))]
const GENERIC_MR: usize = 2;
const GENERIC_FMA: bool = cfg!(any(target_arch = "aarch64", target_feature = "fma"));

/// One portable `MR` × 16 tile: `Σ_k a_r[k] · b[k][0..16]` for the row pointers `a` (a short tile
/// repeats its last row) and `b` pointing into a packed panel (row stride [`NR`]). The sums live in
/// lane arrays indexed by constants after unrolling, which the compiler keeps in vector registers.
///
/// # Safety
/// Every `a[r]` must be valid for `k` reads and `b` for `k` rows of 16 floats at stride `NR`.
#[inline(always)]
unsafe fn tile_portable<const MR: usize, const FMA: bool>(
    a: &[*const f32; MR],
    b: *const f32,
    k: usize,
) -> [[f32; PORTABLE_NR]; MR] {
    let mut acc = [[0f32; PORTABLE_NR]; MR];
    for kk in 0..k {
        let bv: [f32; PORTABLE_NR] =
            std::ptr::read_unaligned(b.add(kk * NR) as *const [f32; PORTABLE_NR]);
        for r in 0..MR {
            let av = *a[r].add(kk);
            for l in 0..PORTABLE_NR {
                acc[r][l] = if FMA {
                    av.mul_add(bv[l], acc[r][l])
                } else {
                    acc[r][l] + av * bv[l]
                };
            }
        }
    }
    acc
}

/// The portable matmul: `MR` × 16 output tiles (see [`tile_portable`]).
#[inline(always)]
fn linear_portable<const MR: usize, const FMA: bool>(
    a: &[f32],
    m: usize,
    w: &PackedLinear,
    out: &mut [f32],
    post: Post<'_>,
) {
    let (n, k) = (w.n, w.k);
    let n_panels = n.div_ceil(NR);
    for m0 in (0..m).step_by(MC) {
        let m1 = (m0 + MC).min(m);
        for p in 0..n_panels {
            for half in (0..NR).step_by(PORTABLE_NR) {
                let c0 = p * NR + half;
                if c0 >= n {
                    break;
                }
                let cols = PORTABLE_NR.min(n - c0);
                let bias = &w.bias[c0..c0 + PORTABLE_NR];
                let mut r0 = m0;
                while r0 < m1 {
                    let rows = MR.min(m1 - r0);
                    let mut ap = [a.as_ptr(); MR];
                    for (r, p) in ap.iter_mut().enumerate() {
                        *p = a[(r0 + r.min(rows - 1)) * k..].as_ptr();
                    }
                    // SAFETY: each row pointer starts a row of k floats of `a`; the panel holds k rows
                    // of NR floats and half + 16 <= NR.
                    let acc = unsafe { tile_portable::<MR, FMA>(&ap, w.panel(p).add(half), k) };
                    for r in 0..rows {
                        let row = &mut out[(r0 + r) * n + c0..(r0 + r) * n + c0 + cols];
                        for j in 0..cols {
                            row[j] = acc[r][j] + bias[j];
                        }
                    }
                    apply_post(out, n, r0, rows, c0, cols, post);
                    r0 += rows;
                }
            }
        }
    }
}

/// Applies `post` to the tile rows `r0..r0+rows`, columns `c0..c0+cols` of `out` (row stride `n`).
#[inline(always)]
fn apply_post(
    out: &mut [f32],
    n: usize,
    r0: usize,
    rows: usize,
    c0: usize,
    cols: usize,
    post: Post<'_>,
) {
    for r in r0..r0 + rows {
        let range = r * n + c0..r * n + c0 + cols;
        match post {
            Post::None => {}
            Post::Gelu => gelu_slice(&mut out[range]),
            Post::GeluTanh => gelu_tanh_slice(&mut out[range]),
            Post::Relu => out[range].iter_mut().for_each(|x| *x = x.max(0.0)),
            Post::Add(res) => {
                for (o, &x) in out[range.clone()].iter_mut().zip(&res[range]) {
                    *o += x;
                }
            }
        }
    }
}

// ---- elementwise math ---------------------------------------------------------------------------

/// `exp(x)` for `x` in about [-87, 88], branch-free: `2^n · p(r)` with `r = x − n·ln 2`, |r| ≤ ln2/2.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // ln 2 split so n·LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + MAGIC) - MAGIC;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Taylor coefficients 1/i! to degree 6, Horner form.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32).wrapping_add(127) as u32) << 23);
    p * scale
}

/// `1 + erf(x / √2)`, from erfc's Abramowitz & Stegun 7.1.26 form (so it stays accurate as it nears 0).
#[inline(always)]
fn one_plus_erf_scaled(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152;
    const A5: f32 = 1.061_405_4;
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * z);
    let erfc = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5)))) * exp_f32(-z * z);
    if x >= 0.0 {
        2.0 - erfc
    } else {
        erfc
    }
}

/// Exact GELU, `x · Φ(x)`.
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    0.5 * x * one_plus_erf_scaled(x)
}

/// GELU's tanh approximation, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
#[inline(always)]
pub(crate) fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // √(2/π)
    let y = C * (x + 0.044_715 * x * x * x);
    // 1 + tanh(y) = 2 − 2/(e^{2y} + 1)
    let e = exp_f32(2.0 * y);
    0.5 * x * (2.0 - 2.0 / (e + 1.0))
}

#[inline(always)]
fn gelu_slice(xs: &mut [f32]) {
    for x in xs {
        *x = gelu(*x);
    }
}

#[inline(always)]
fn gelu_tanh_slice(xs: &mut [f32]) {
    for x in xs {
        *x = gelu_tanh(*x);
    }
}

/// Lanes used for reductions (sums kept in this many partial accumulators so they vectorise).
const LANES: usize = 16;

#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for j in 0..LANES {
            acc[j] += c[j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    s += chunks.remainder().iter().sum::<f32>();
    s
}

#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for j in 0..LANES {
            acc[j] = acc[j].max(c[j]);
        }
    }
    let m = acc.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    chunks.remainder().iter().copied().fold(m, f32::max)
}

#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for j in 0..LANES {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

/// Layer norm over each row of `x` (row length `gamma.len()`), in place.
#[inline(always)]
fn layer_norm_body(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let h = gamma.len();
    for row in x.chunks_exact_mut(h) {
        let mean = sum(row) / h as f32;
        let mut acc = [0f32; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for c in &mut chunks {
            for j in 0..LANES {
                let d = c[j] - mean;
                acc[j] += d * d;
            }
        }
        let mut var: f32 = acc.iter().sum();
        for &v in chunks.remainder() {
            var += (v - mean) * (v - mean);
        }
        let inv = 1.0 / (var / h as f32 + eps).sqrt();
        for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// Softmax of `xs` in place.
#[inline(always)]
fn softmax_body(xs: &mut [f32]) {
    let m = max(xs);
    for x in xs.iter_mut() {
        *x = exp_f32(*x - m);
    }
    let inv = 1.0 / sum(xs);
    for x in xs.iter_mut() {
        *x *= inv;
    }
}

/// Self-attention of one sequence: `qkv` holds `len` rows of `[q | k | v]` (each `heads · d` wide,
/// row stride `3·heads·d`); writes `len` rows of `heads · d` context to `ctx`. `scratch` grows as needed.
#[inline(always)]
fn attention_body(
    qkv: &[f32],
    len: usize,
    heads: usize,
    d: usize,
    ctx: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    match d {
        32 => attention_fixed::<32>(qkv, len, heads, ctx, scratch),
        64 => attention_fixed::<64>(qkv, len, heads, ctx, scratch),
        _ => attention_any(qkv, len, heads, d, ctx, scratch),
    }
}

/// [`attention_body`] for a head width known at compile time: each head's keys are transposed (and
/// zero-padded to a multiple of [`LANES`]) so a query's scores accumulate as whole vectors over the
/// keys, and the context row stays in registers while the values are summed.
#[inline(always)]
fn attention_fixed<const D: usize>(
    qkv: &[f32],
    len: usize,
    heads: usize,
    ctx: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let h = heads * D;
    let stride = 3 * h;
    let scale = 1.0 / (D as f32).sqrt();
    let lp = len.div_ceil(LANES) * LANES;
    scratch.clear();
    scratch.resize(D * lp + lp, 0.0);
    let (kt, scores) = scratch.split_at_mut(D * lp);
    for head in 0..heads {
        let (qo, ko, vo) = (head * D, h + head * D, 2 * h + head * D);
        for j in 0..len {
            let k: &[f32; D] = qkv[j * stride + ko..j * stride + ko + D]
                .try_into()
                .expect("D floats");
            for c in 0..D {
                kt[c * lp + j] = k[c];
            }
        }
        for i in 0..len {
            let q: &[f32; D] = qkv[i * stride + qo..i * stride + qo + D]
                .try_into()
                .expect("D floats");
            // One block of LANES keys at a time, its scores summed in a local (register) array.
            for (b, block) in scores.chunks_exact_mut(LANES).enumerate() {
                let mut acc = [0f32; LANES];
                for c in 0..D {
                    let qc = q[c];
                    let kv: &[f32; LANES] = kt[c * lp + b * LANES..c * lp + (b + 1) * LANES]
                        .try_into()
                        .expect("LANES floats");
                    for l in 0..LANES {
                        acc[l] += qc * kv[l];
                    }
                }
                block.copy_from_slice(&acc);
            }
            let row = &mut scores[..len];
            row.iter_mut().for_each(|x| *x *= scale);
            softmax_body(row);
            let mut acc = [0f32; D];
            for (j, &p) in row.iter().enumerate() {
                let v: &[f32; D] = qkv[j * stride + vo..j * stride + vo + D]
                    .try_into()
                    .expect("D floats");
                for c in 0..D {
                    acc[c] += p * v[c];
                }
            }
            ctx[i * h + qo..i * h + qo + D].copy_from_slice(&acc);
        }
    }
}

/// [`attention_body`] for any head width.
#[inline(always)]
fn attention_any(
    qkv: &[f32],
    len: usize,
    heads: usize,
    d: usize,
    ctx: &mut [f32],
    scores: &mut Vec<f32>,
) {
    let h = heads * d;
    let stride = 3 * h;
    let scale = 1.0 / (d as f32).sqrt();
    scores.clear();
    scores.resize(len, 0.0);
    for head in 0..heads {
        let qo = head * d;
        let ko = h + head * d;
        let vo = 2 * h + head * d;
        for i in 0..len {
            let q = &qkv[i * stride + qo..i * stride + qo + d];
            for (j, s) in scores.iter_mut().enumerate() {
                *s = dot(q, &qkv[j * stride + ko..j * stride + ko + d]) * scale;
            }
            softmax_body(scores);
            let out = &mut ctx[i * h + qo..i * h + qo + d];
            out.iter_mut().for_each(|o| *o = 0.0);
            for (j, &p) in scores.iter().enumerate() {
                let v = &qkv[j * stride + vo..j * stride + vo + d];
                for (o, &x) in out.iter_mut().zip(v) {
                    *o += p * x;
                }
            }
        }
    }
}

/// Defines the public entry points, dispatching to per-ISA instantiations of the bodies above.
macro_rules! dispatch {
    ($( fn $name:ident($($arg:ident : $ty:ty),*) => $body:ident; )*) => {
        $(
            pub(crate) fn $name(isa: Isa, $($arg: $ty),*) {
                match isa {
                    // SAFETY: the variant exists only when the CPU has the features.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => unsafe { x86::$name::avx512($($arg),*) },
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => unsafe { x86::$name::avx2($($arg),*) },
                    Isa::Generic => $body($($arg),*),
                }
            }
        )*
        #[cfg(target_arch = "x86_64")]
        mod x86_elementwise {
            $(
                pub(crate) mod $name {
                    #[allow(unused_imports)]
                    use super::super::*;
                    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
                    pub(crate) unsafe fn avx512($($arg: $ty),*) { $body($($arg),*) }
                    #[target_feature(enable = "avx2,fma")]
                    pub(crate) unsafe fn avx2($($arg: $ty),*) { $body($($arg),*) }
                }
            )*
        }
    };
}

dispatch! {
    fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) => layer_norm_body;
    fn attention(qkv: &[f32], len: usize, heads: usize, d: usize, ctx: &mut [f32], scores: &mut Vec<f32>) => attention_body;
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    pub(crate) use super::x86_elementwise::*;
    use super::{apply_post, linear_portable, PackedLinear, Post, MC, NR};

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn linear_avx2(
        a: &[f32],
        m: usize,
        w: &PackedLinear,
        out: &mut [f32],
        post: Post<'_>,
    ) {
        linear_portable::<4, true>(a, m, w, out, post)
    }

    /// Rows per AVX-512 micro-tile: 2·MR accumulators + 2 weight registers + 1 broadcast ≤ 32.
    const MR: usize = 12;

    /// Expands `$body` once per tile row with `$r` the literal row index (so the accumulator arrays are
    /// indexed by constants and live in registers).
    macro_rules! each_row {
        ($r:ident => $body:block) => {
            each_row!(@ $r $body; 0 1 2 3 4 5 6 7 8 9 10 11)
        };
        (@ $r:ident $body:block; $($n:literal)*) => {
            $( { const $r: usize = $n; $body } )*
        };
    }

    /// One `MR` × 32 tile: `c[r][0..32] = Σ_k a_r[k] · panel[k][0..32] + bias` for the row pointers `a`
    /// (a short tile repeats its last row), stored with row stride `ldc`.
    #[inline(always)]
    unsafe fn tile(
        a: &[*const f32; MR],
        panel: *const f32,
        k: usize,
        bias: *const f32,
        c: *mut f32,
        ldc: usize,
    ) {
        let mut acc0 = [_mm512_setzero_ps(); MR];
        let mut acc1 = [_mm512_setzero_ps(); MR];
        let mut b = panel;
        for kk in 0..k {
            let b0 = _mm512_loadu_ps(b);
            let b1 = _mm512_loadu_ps(b.add(16));
            each_row!(R => {
                let av = _mm512_set1_ps(*a[R].add(kk));
                acc0[R] = _mm512_fmadd_ps(av, b0, acc0[R]);
                acc1[R] = _mm512_fmadd_ps(av, b1, acc1[R]);
            });
            b = b.add(NR);
        }
        let bias0 = _mm512_loadu_ps(bias);
        let bias1 = _mm512_loadu_ps(bias.add(16));
        each_row!(R => {
            _mm512_storeu_ps(c.add(R * ldc), _mm512_add_ps(acc0[R], bias0));
            _mm512_storeu_ps(c.add(R * ldc + 16), _mm512_add_ps(acc1[R], bias1));
        });
    }

    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
    pub(crate) unsafe fn linear_avx512(
        a: &[f32],
        m: usize,
        w: &PackedLinear,
        out: &mut [f32],
        post: Post<'_>,
    ) {
        let (n, k) = (w.n, w.k);
        let n_panels = n.div_ceil(NR);
        let mut edge = [0f32; MR * NR];
        for m0 in (0..m).step_by(MC) {
            let m1 = (m0 + MC).min(m);
            for p in 0..n_panels {
                let panel = w.panel(p);
                let bias = w.bias.as_ptr().add(p * NR);
                let c0 = p * NR;
                let cols = NR.min(n - c0);
                let mut r0 = m0;
                while r0 < m1 {
                    let rows = MR.min(m1 - r0);
                    let mut ap = [a.as_ptr(); MR];
                    for (r, p) in ap.iter_mut().enumerate() {
                        *p = a.as_ptr().add((r0 + r.min(rows - 1)) * k);
                    }
                    if cols == NR && rows == MR {
                        tile(&ap, panel, k, bias, out.as_mut_ptr().add(r0 * n + c0), n);
                    } else {
                        tile(&ap, panel, k, bias, edge.as_mut_ptr(), NR);
                        for r in 0..rows {
                            out[(r0 + r) * n + c0..(r0 + r) * n + c0 + cols]
                                .copy_from_slice(&edge[r * NR..r * NR + cols]);
                        }
                    }
                    apply_post(out, n, r0, rows, c0, cols, post);
                    r0 += rows;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], w: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|t| f64::from(a[i * k + t]) * f64::from(w[j * k + t]))
                    .sum();
                out[i * n + j] = s as f32 + b[j];
            }
        }
        out
    }

    fn pseudo_random(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 20_000) as f32 / 10_000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn linear_matches_naive_for_every_isa_and_shape() {
        for isa in Isa::all_supported() {
            for &(m, n, k) in &[
                (1, 32, 8),
                (13, 40, 17),
                (100, 64, 384),
                (25, 96, 33),
                (200, 7, 5),
            ] {
                let a = pseudo_random(m * k, 1);
                let w = pseudo_random(n * k, 2);
                let b = pseudo_random(n, 3);
                let res = pseudo_random(m * n, 4);
                let packed = PackedLinear::new(&w, &b, n, k);
                let want = naive(&a, &w, &b, m, n, k);
                let mut got = vec![f32::NAN; m * n];
                linear(isa, &a, m, &packed, &mut got, Post::None);
                for (x, y) in got.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-4, "{isa:?} {m}x{n}x{k}: {x} vs {y}");
                }
                linear(isa, &a, m, &packed, &mut got, Post::Add(&res));
                for ((x, y), r) in got.iter().zip(&want).zip(&res) {
                    assert!((x - (y + r)).abs() < 1e-4, "{isa:?} residual");
                }
                linear(isa, &a, m, &packed, &mut got, Post::Gelu);
                for (x, y) in got.iter().zip(&want) {
                    let g = 0.5 * f64::from(*y) * (1.0 + erf_ref(f64::from(*y) / 2f64.sqrt()));
                    assert!((f64::from(*x) - g).abs() < 1e-4, "{isa:?} gelu");
                }
            }
        }
    }

    /// erf to ~1e-15 (Taylor series for small |x|, continued fraction for large).
    fn erf_ref(x: f64) -> f64 {
        if x.abs() < 3.0 {
            let mut term = x;
            let mut s = x;
            for n in 1..200 {
                term *= -x * x / n as f64;
                s += term / (2 * n + 1) as f64;
            }
            s * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(x) ≈ e^{-x²}/(x√π) · continued fraction
            let z = x.abs();
            let mut f = 0.0;
            for n in (1..60).rev() {
                f = (n as f64 / 2.0) / (z + f);
            }
            let erfc = (-z * z).exp() / std::f64::consts::PI.sqrt() / (z + f);
            (1.0 - erfc) * x.signum()
        }
    }

    #[test]
    fn elementwise_math_is_accurate() {
        let mut worst_exp = 0f64;
        let mut worst_gelu = 0f64;
        let mut worst_tanh = 0f64;
        for i in -40_000..=40_000 {
            let x = i as f32 / 1000.0;
            let e = f64::from(exp_f32(x));
            worst_exp = worst_exp.max((e / f64::from(x).exp() - 1.0).abs());
            let xd = f64::from(x);
            let g = 0.5 * xd * (1.0 + erf_ref(xd / 2f64.sqrt()));
            worst_gelu = worst_gelu.max((f64::from(gelu(x)) - g).abs());
            let t = 0.5
                * xd
                * (1.0
                    + ((2.0 / std::f64::consts::PI).sqrt() * (xd + 0.044715 * xd.powi(3))).tanh());
            worst_tanh = worst_tanh.max((f64::from(gelu_tanh(x)) - t).abs());
        }
        assert!(worst_exp < 5e-7, "exp relative error {worst_exp}");
        assert!(worst_gelu < 2e-6, "gelu absolute error {worst_gelu}");
        assert!(worst_tanh < 2e-6, "gelu_tanh absolute error {worst_tanh}");
        assert!(exp_f32(-1000.0) < 1e-37 && exp_f32(-1000.0) >= 0.0);
        assert!(gelu(-30.0).abs() < 1e-30);
        assert_eq!(gelu(30.0), 30.0);
    }

    #[test]
    fn layer_norm_and_attention_agree_across_isas() {
        let h = 48;
        let x = pseudo_random(3 * h, 5);
        let g = pseudo_random(h, 6);
        let b = pseudo_random(h, 7);
        let qkv = pseudo_random(9 * 3 * h, 8);
        let mut results = Vec::new();
        for isa in Isa::all_supported() {
            let mut y = x.clone();
            layer_norm(isa, &mut y, &g, &b, 1e-12);
            let mut ctx = vec![0f32; 9 * h];
            let mut scores = Vec::new();
            attention(isa, &qkv, 9, 3, 16, &mut ctx, &mut scores);
            results.push((isa, y, ctx));
        }
        // reference from the definition, in f64
        for row in 0..3 {
            let r = &x[row * h..(row + 1) * h];
            let mean: f64 = r.iter().map(|&v| f64::from(v)).sum::<f64>() / h as f64;
            let var: f64 = r
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / h as f64;
            for (isa, y, _) in &results {
                for j in 0..h {
                    let want = (f64::from(r[j]) - mean) / (var + 1e-12).sqrt() * f64::from(g[j])
                        + f64::from(b[j]);
                    assert!(
                        (f64::from(y[row * h + j]) - want).abs() < 1e-5,
                        "{isa:?} layer norm"
                    );
                }
            }
        }
        let (_, _, first) = &results[0];
        for (isa, _, ctx) in &results[1..] {
            for (x, y) in ctx.iter().zip(first) {
                assert!((x - y).abs() < 1e-5, "{isa:?} attention");
            }
        }
        // attention from the definition (3 heads of 16 over 9 rows)
        let want = attention_ref(&qkv, 9, 3, 16);
        for (x, y) in first.iter().zip(&want) {
            assert!((f64::from(*x) - y).abs() < 1e-5, "attention value");
        }
    }

    fn attention_ref(qkv: &[f32], len: usize, heads: usize, d: usize) -> Vec<f64> {
        let h = heads * d;
        let mut out = vec![0f64; len * h];
        for head in 0..heads {
            for i in 0..len {
                let q = &qkv[i * 3 * h + head * d..][..d];
                let scores: Vec<f64> = (0..len)
                    .map(|j| {
                        let k = &qkv[j * 3 * h + h + head * d..][..d];
                        q.iter()
                            .zip(k)
                            .map(|(a, b)| f64::from(*a) * f64::from(*b))
                            .sum::<f64>()
                            / (d as f64).sqrt()
                    })
                    .collect();
                let mx = scores.iter().copied().fold(f64::MIN, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - mx).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..d {
                    out[i * h + head * d + c] = (0..len)
                        .map(|j| e[j] / z * f64::from(qkv[j * 3 * h + 2 * h + head * d + c]))
                        .sum();
                }
            }
        }
        out
    }

    #[test]
    fn attention_matches_definition_for_fixed_and_other_head_widths() {
        for isa in Isa::all_supported() {
            let mut scratch = Vec::new();
            for &(heads, d) in &[(3usize, 32usize), (2, 64), (2, 16), (1, 40)] {
                for &len in &[1usize, 5, 17, 40] {
                    let qkv = pseudo_random(len * 3 * heads * d, (len * 31 + d) as u32);
                    let mut ctx = vec![f32::NAN; len * heads * d];
                    attention(isa, &qkv, len, heads, d, &mut ctx, &mut scratch);
                    for (x, y) in ctx.iter().zip(attention_ref(&qkv, len, heads, d)) {
                        assert!(
                            (f64::from(*x) - y).abs() < 1e-5,
                            "{isa:?} heads {heads} d {d} len {len}: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }
}
