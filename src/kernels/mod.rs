//! Fused batched kernels on `B × V` matrices: divergences per row, KL from logits, meta-teachers.
//!
//! Language-model distillation evaluates divergences over batches of `B`
//! positions by `V` tokens, with `V` from 32k to 256k. The functions here take
//! the rows as raw `ndarray` views (`f32` or `f64`, any strides) and write one
//! value per row into a caller's buffer:
//!
//! - [`kl_rows`], [`reverse_kl_rows`], [`js_rows`], [`cross_entropy_rows`],
//!   [`entropy_rows`]: one pass over the inputs;
//! - [`kl_from_logits_rows`]: KL of the tempered softmax distributions of two
//!   logit matrices, with no probability matrix stored;
//! - [`mixture_into`] and [`geometric_pool_into`]: meta-teachers of a batch;
//! - [`dot_rows`]: the row-wise dot product, the memory-bandwidth floor the
//!   benchmarks compare against.
//!
//! Each kernel makes a single pass over memory (the logits kernel reads each
//! row three times, the last two from cache) and allocates nothing that grows
//! with `B × V`. The logarithm and exponential are vector polynomials. At run
//! time the kernels pick the widest vector instruction set of the CPU
//! (AVX-512, AVX2 or SSE on x86-64, NEON on aarch64). On x86-64, contiguous
//! rows are prefetched 2 KiB ahead of the block being read. This is the only
//! `unsafe` code in the crate. With the default `parallel` feature, rows run
//! on the rayon thread pool.
//!
//! NOTE: a single row runs on one thread, so `B = 1` gains nothing from more cores.
//!
//! # What the kernels check
//!
//! The rows are not checked to sum to 1, because that would cost a second
//! pass over memory. Entries that are negative, NaN or infinite (NaN and
//! `+inf` for logits) are found on the way at no cost and reported as
//! [`Error::InvalidEntry`]. For unnormalized rows the KL kernels compute
//! `Σ p ln(p/q)` of the given numbers exactly as written, the cross-entropy
//! and entropy likewise; JS assumes entries at most 1. Build a
//! [`DistributionBatch`] to validate whole matrices; [`Divergence::per_row`]
//! and [`Divergence::expected`] on such batches run on these kernels for KL,
//! reverse KL and Jensen-Shannon.
//!
//! # Precision
//!
//! The probability kernels split every term as the scalar functions of
//! [`divergence`](crate::divergence) do, so they keep near-equal inputs
//! accurate. Measured on `f64` (tests in `tests/kernels_accuracy.rs`): relative
//! difference to the scalar path below `1e-13` on random rows, on
//! `q = p(1 + d)` with `|d|` from `1e-1` down to `1e-12`, and on entries near
//! the smallest normal number. The logits kernel sums the non-negative terms
//! `p ψ(ln(p/q))`, `ψ(t) = e^(-t) - 1 + t`, so nothing cancels either; its
//! result carries the rounding of the logits themselves.
//!
//! # Examples
//!
//! ```
//! use metadistill::kernels::kl_rows;
//! use ndarray::{Array1, array};
//!
//! let teacher = array![[0.6_f64, 0.3, 0.1], [0.5, 0.25, 0.25]];
//! let student = array![[0.2, 0.5, 0.3], [0.5, 0.25, 0.25]];
//! let mut kl = Array1::zeros(2);
//! kl_rows(teacher.view(), student.view(), kl.view_mut())?;
//! assert!((kl[0] - 0.396058).abs() < 1e-6);
//! assert_eq!(kl[1], 0.0);
//! # Ok::<(), metadistill::Error>(())
//! ```

// The lane loops index arrays of length `LANES` with `lane in 0..LANES`, and
// blocks are cut at `start..start + LANES` with `start + LANES <= len` after
// the shapes were checked, so every index is in range.
// NOTE: this is the one module of the crate exempt from `clippy::indexing_slicing`.
#![allow(clippy::indexing_slicing)]

mod dispatch;
mod kl;
mod lanes;
mod logits;
mod mixture;
mod prefetch;
mod rows;

use std::any::Any;

use ndarray::{Array1, ArrayView2, ArrayViewMut1};

use crate::batch::DistributionBatch;
use crate::divergence::Divergence;
use crate::error::{Error, Result};
use crate::real::{Real, to_f64};

pub use lanes::KernelFloat;
pub use mixture::{geometric_pool_into, mixture_into};

use dispatch::{RowKernel, check_output_len, fill_rows};

/// Names of the two inputs of the probability kernels, for error messages.
const PROBABILITY_NAMES: [&str; 2] = ["first probability matrix", "second probability matrix"];

/// Checks that `found` has the shape of `reference`.
fn check_same_shape<F>(
    reference: ArrayView2<F>,
    found: (usize, usize),
    what: &'static str,
) -> Result<()> {
    crate::batch::check_same_shape(reference.dim(), found, what)
}

/// Runs a two-input row kernel over every row after the shape checks.
fn pair_rows<F: KernelFloat>(
    kernel: RowKernel,
    p: ArrayView2<F>,
    q: ArrayView2<F>,
    out: ArrayViewMut1<F>,
) -> Result<()> {
    check_same_shape(p, q.dim(), "second matrix")?;
    check_output_len(p.nrows(), out.len())?;
    fill_rows(out, p.ncols(), PROBABILITY_NAMES, |row| {
        dispatch::compute_pair_row(kernel, p.row(row), q.row(row))
    })
}

/// Computes `KL(p ‖ q)` of every row pair in nats and writes it to `out`.
///
/// ```text
/// out[x] = Σ_i p[x,i] ln(p[x,i] / q[x,i]) = Σ_i p φ(q/p) + Σ_i (p - q),   φ(r) = r - 1 - ln r
/// ```
///
/// `0 ln 0 = 0`; a token with `q = 0 < p` gives `+inf` for its row.
///
/// # Errors
///
/// - [`Error::BatchSizeMismatch`] or [`Error::VocabularyMismatch`] if `q` has
///   another shape than `p`.
/// - [`Error::LengthMismatch`] if `out` does not have one entry per row.
/// - [`Error::InvalidEntry`] for an entry that is negative, NaN or infinite.
///
/// # Examples
///
/// ```
/// use metadistill::kernels::kl_rows;
/// use ndarray::{Array1, array};
///
/// let p = array![[0.5_f32, 0.5], [0.9, 0.1]];
/// let q = array![[0.5_f32, 0.5], [0.5, 0.5]];
/// let mut out = Array1::zeros(2);
/// kl_rows(p.view(), q.view(), out.view_mut())?;
/// let expected = 0.9 * (0.9_f32 / 0.5).ln() + 0.1 * (0.1_f32 / 0.5).ln();
/// assert!((out[1] - expected).abs() < 1e-6);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn kl_rows<F: KernelFloat>(
    p: ArrayView2<F>,
    q: ArrayView2<F>,
    out: ArrayViewMut1<F>,
) -> Result<()> {
    pair_rows(RowKernel::KullbackLeibler, p, q, out)
}

/// Computes the reverse KL divergence `KL(q ‖ p)` of every row pair and writes it to `out`.
///
/// ```text
/// out[x] = Σ_i q[x,i] ln(q[x,i] / p[x,i])
/// ```
///
/// # Errors
///
/// As [`kl_rows`].
///
/// # Examples
///
/// ```
/// use metadistill::kernels::{kl_rows, reverse_kl_rows};
/// use ndarray::{Array1, array};
///
/// let p = array![[0.6, 0.3, 0.1]];
/// let q = array![[0.2, 0.5, 0.3]];
/// let (mut forward, mut reverse) = (Array1::zeros(1), Array1::zeros(1));
/// reverse_kl_rows(p.view(), q.view(), reverse.view_mut())?;
/// kl_rows(q.view(), p.view(), forward.view_mut())?;
/// assert_eq!(forward, reverse);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn reverse_kl_rows<F: KernelFloat>(
    p: ArrayView2<F>,
    q: ArrayView2<F>,
    out: ArrayViewMut1<F>,
) -> Result<()> {
    pair_rows(RowKernel::ReverseKullbackLeibler, p, q, out)
}

/// Computes the Jensen-Shannon divergence of every row pair and writes it to `out`.
///
/// ```text
/// out[x] = ½ KL(p ‖ m) + ½ KL(q ‖ m) = Σ_i (p + q)/4 · h((q - p)/(q + p)),   m = (p + q)/2
/// h(δ) = (1 + δ) ln(1 + δ) + (1 - δ) ln(1 - δ),   0 <= out[x] <= ln 2
/// ```
///
/// Blocks whose entries all lie in `[MIN_POSITIVE, 1]` take the vector path.
///
/// # Errors
///
/// As [`kl_rows`].
///
/// # Examples
///
/// ```
/// use metadistill::kernels::js_rows;
/// use ndarray::{Array1, array};
///
/// let p = array![[1.0, 0.0]];
/// let q = array![[0.0, 1.0]];
/// let mut out = Array1::zeros(1);
/// js_rows(p.view(), q.view(), out.view_mut())?;
/// assert!((out[0] - std::f64::consts::LN_2).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn js_rows<F: KernelFloat>(
    p: ArrayView2<F>,
    q: ArrayView2<F>,
    out: ArrayViewMut1<F>,
) -> Result<()> {
    pair_rows(RowKernel::JensenShannon, p, q, out)
}

/// Computes the cross-entropy `H(p, q)` of every row pair in nats and writes it to `out`.
///
/// ```text
/// out[x] = -Σ_i p[x,i] ln q[x,i],   0 ln 0 = 0,   q = 0 < p gives +inf
/// ```
///
/// # Errors
///
/// As [`kl_rows`].
///
/// # Examples
///
/// ```
/// use metadistill::kernels::cross_entropy_rows;
/// use ndarray::{Array1, array};
///
/// let p = array![[0.5, 0.5]];
/// let q = array![[0.25, 0.75]];
/// let mut out = Array1::zeros(1);
/// cross_entropy_rows(p.view(), q.view(), out.view_mut())?;
/// let expected = -(0.5 * 0.25_f64.ln() + 0.5 * 0.75_f64.ln());
/// assert!((out[0] - expected).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn cross_entropy_rows<F: KernelFloat>(
    p: ArrayView2<F>,
    q: ArrayView2<F>,
    out: ArrayViewMut1<F>,
) -> Result<()> {
    pair_rows(RowKernel::CrossEntropy, p, q, out)
}

/// Computes the Shannon entropy of every row in nats and writes it to `out`.
///
/// ```text
/// out[x] = -Σ_i p[x,i] ln p[x,i],   0 ln 0 = 0
/// ```
///
/// # Errors
///
/// - [`Error::LengthMismatch`] if `out` does not have one entry per row.
/// - [`Error::InvalidEntry`] for an entry that is negative, NaN or infinite.
///
/// # Examples
///
/// ```
/// use metadistill::kernels::entropy_rows;
/// use ndarray::{Array1, array};
///
/// let p = array![[0.5, 0.5], [1.0, 0.0]];
/// let mut out = Array1::zeros(2);
/// entropy_rows(p.view(), out.view_mut())?;
/// assert!((out[0] - 2.0_f64.ln()).abs() < 1e-15);
/// assert_eq!(out[1], 0.0);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn entropy_rows<F: KernelFloat>(p: ArrayView2<F>, out: ArrayViewMut1<F>) -> Result<()> {
    check_output_len(p.nrows(), out.len())?;
    fill_rows(out, p.ncols(), PROBABILITY_NAMES, |row| {
        dispatch::compute_entropy_row(p.row(row))
    })
}

/// Computes the row-wise dot product `Σ_i p[x,i] q[x,i]`, the memory-floor reference kernel.
///
/// It reads the same bytes as [`kl_rows`] and does one multiply-add per
/// token, so its time is what moving the data costs. The benchmarks report
/// the other kernels relative to it. It checks nothing but the shapes and uses
/// plain (uncompensated) summation.
///
/// # Errors
///
/// - [`Error::BatchSizeMismatch`] or [`Error::VocabularyMismatch`] if the shapes differ.
/// - [`Error::LengthMismatch`] if `out` does not have one entry per row.
///
/// # Examples
///
/// ```
/// use metadistill::kernels::dot_rows;
/// use ndarray::{Array1, array};
///
/// let p = array![[1.0, 2.0, 3.0]];
/// let q = array![[4.0, 5.0, 6.0]];
/// let mut out = Array1::zeros(1);
/// dot_rows(p.view(), q.view(), out.view_mut())?;
/// assert_eq!(out[0], 32.0);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn dot_rows<F: KernelFloat>(
    p: ArrayView2<F>,
    q: ArrayView2<F>,
    out: ArrayViewMut1<F>,
) -> Result<()> {
    pair_rows(RowKernel::Dot, p, q, out)
}

/// Computes `KL(softmax(z/T) ‖ softmax(y/T))` of every row of teacher logits `z`
/// and student logits `y`, and writes it to `out`.
///
/// ```text
/// ln p_i = z_i/T - ln Σ_j e^(z_j/T),   ln q_i = y_i/T - ln Σ_j e^(y_j/T)
/// out[x] = Σ_i p_i ln(p_i / q_i) = Σ_i p_i ψ(ln(p_i/q_i)),   ψ(t) = e^(-t) - 1 + t
/// ```
///
/// Log-softmax is fused in: each row is read once for its maxima and twice
/// more from cache, and no probability matrix is stored. A logit of `-inf`
/// masks its token; a token the student masks and the teacher does not makes
/// the row `+inf`, also where the teacher's probability is too small for a
/// float (the scalar path, which rounds that probability to 0 first, then
/// gives a finite value). Any positive finite `T` works, subnormal ones
/// included. The result is the KL of the tempered distributions; scale it by
/// `T²` yourself if your loss uses that convention.
///
/// # Errors
///
/// - [`Error::InvalidTemperature`] if `temperature` is not finite and positive.
/// - [`Error::BatchSizeMismatch`] or [`Error::VocabularyMismatch`] if the shapes differ.
/// - [`Error::LengthMismatch`] if `out` does not have one entry per row.
/// - [`Error::InvalidEntry`] for a logit that is NaN or `+inf`.
/// - [`Error::InRow`] wrapping [`Error::AllMasked`] for a row whose logits are all `-inf`.
///
/// # Examples
///
/// ```
/// use metadistill::{Distribution, divergence::kl, kernels::kl_from_logits_rows};
/// use ndarray::{Array1, array};
///
/// let teacher = array![[2.0_f64, 1.0, 0.1]];
/// let student = array![[0.5, 1.5, 0.3]];
/// let mut out = Array1::zeros(1);
/// kl_from_logits_rows(teacher.view(), student.view(), 2.0, out.view_mut())?;
///
/// let p = Distribution::from_logits(&[2.0, 1.0, 0.1], 2.0)?;
/// let q = Distribution::from_logits(&[0.5, 1.5, 0.3], 2.0)?;
/// assert!((out[0] - kl(&p, &q)?).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn kl_from_logits_rows<F: KernelFloat>(
    teacher_logits: ArrayView2<F>,
    student_logits: ArrayView2<F>,
    temperature: F,
    out: ArrayViewMut1<F>,
) -> Result<()> {
    if !(temperature > F::zero() && temperature.is_finite()) {
        return Err(Error::InvalidTemperature {
            value: to_f64(temperature),
        });
    }
    check_same_shape(teacher_logits, student_logits.dim(), "student logits")?;
    check_output_len(teacher_logits.nrows(), out.len())?;

    let scale = logits::TemperatureScale::new(temperature);
    fill_rows(
        out,
        teacher_logits.ncols(),
        ["teacher logits", "student logits"],
        |row| dispatch::compute_logits_row(teacher_logits.row(row), student_logits.row(row), scale),
    )
}

/// Returns the vector features of the code path the dispatcher picked on this CPU.
///
/// For example `"avx512f,avx512bw,avx512cd,avx512dq,avx512vl"` on a recent
/// x86-64 server, `"avx2,fma"` on most x86-64 desktops, `"baseline"` where no
/// listed extension is present.
///
/// # Examples
///
/// ```
/// let features = metadistill::kernels::selected_features();
/// assert!(!features.is_empty());
/// ```
pub fn selected_features() -> String {
    dispatch::selected_features()
}

/// Runs the batched kernel of `divergence` on two validated batches, for `f32` and `f64`.
///
/// Returns `None` for divergences without a batched kernel, or a float type
/// other than `f32` and `f64`; the caller then uses the scalar path.
pub(crate) fn divergence_per_row<F: Real>(
    divergence: &Divergence<F>,
    p: &DistributionBatch<F>,
    q: &DistributionBatch<F>,
) -> Option<Result<Array1<F>>> {
    let kernel = match divergence {
        Divergence::KullbackLeibler => RowKernel::KullbackLeibler,
        Divergence::ReverseKullbackLeibler => RowKernel::ReverseKullbackLeibler,
        Divergence::JensenShannon => RowKernel::JensenShannon,
        _ => return None,
    };
    if let Some(values) = per_row_as::<f64, F>(kernel, p, q) {
        return Some(values);
    }
    per_row_as::<f32, F>(kernel, p, q)
}

/// Runs `kernel` when `F` is the concrete type `K`, converting the result back to `F`.
fn per_row_as<K: KernelFloat, F: Real>(
    kernel: RowKernel,
    p: &DistributionBatch<F>,
    q: &DistributionBatch<F>,
) -> Option<Result<Array1<F>>> {
    let p = (p as &dyn Any).downcast_ref::<DistributionBatch<K>>()?;
    let q = (q as &dyn Any).downcast_ref::<DistributionBatch<K>>()?;
    let mut values = Array1::<K>::zeros(p.n_inputs());
    if let Err(error) = pair_rows(kernel, p.probs(), q.probs(), values.view_mut()) {
        return Some(Err(error));
    }
    let boxed: Box<dyn Any> = Box::new(values);
    boxed.downcast::<Array1<F>>().ok().map(|values| Ok(*values))
}
