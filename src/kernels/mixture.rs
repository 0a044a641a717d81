//! Meta-teachers of a whole batch written into a caller's buffer: convex mixture and geometric pool.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, Zip};

use crate::error::{Error, Result};
use crate::real::to_f64;

use super::check_same_shape;
use super::lanes::{KernelFloat, LANES, all_normal_up_to, ln};

/// Writes the convex mixture `out = a · teacher + (1 - a) · student` of two batches, entry by entry.
///
/// ```text
/// out[x, i] = a T0[x, i] + (1 - a) S[x, i],   0 <= a <= 1
/// ```
///
/// One pass, no allocation; rows run in parallel with the `parallel` feature.
/// The inputs are not checked to be distributions: valid rows give valid rows.
///
/// # Errors
///
/// - [`Error::InvalidAnchorWeight`] if `anchor` is not in `[0, 1]` (NaN included).
/// - [`Error::BatchSizeMismatch`] or [`Error::VocabularyMismatch`] if the
///   shapes of `student` or `out` differ from the shape of `teacher`.
///
/// # Examples
///
/// ```
/// use metadistill::kernels::mixture_into;
/// use ndarray::{Array2, array};
///
/// let teacher = array![[0.6_f64, 0.3, 0.1]];
/// let student = array![[0.2_f64, 0.5, 0.3]];
/// let mut out = Array2::zeros((1, 3));
/// mixture_into(0.3, teacher.view(), student.view(), out.view_mut())?;
/// assert!((out[[0, 0]] - 0.32).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn mixture_into<F: KernelFloat>(
    anchor: F,
    teacher: ArrayView2<F>,
    student: ArrayView2<F>,
    out: ArrayViewMut2<F>,
) -> Result<()> {
    if !(anchor >= F::zero() && anchor <= F::one()) {
        return Err(Error::InvalidAnchorWeight {
            value: to_f64(anchor),
            range: "[0, 1]",
        });
    }
    check_same_shape(teacher, student.dim(), "student")?;
    check_same_shape(teacher, out.dim(), "output")?;

    let rest = F::one() - anchor;
    let zip = Zip::from(out).and(teacher).and(student);
    let mix = |q: &mut F, &t: &F, &s: &F| *q = anchor * t + rest * s;
    #[cfg(feature = "parallel")]
    zip.par_for_each(mix);
    #[cfg(not(feature = "parallel"))]
    zip.for_each(mix);
    Ok(())
}

/// Writes the weighted geometric pool of several batches, normalized row by row.
///
/// ```text
/// out[x, i] = Π_k P_k[x, i]^(w_k) / Σ_j Π_k P_k[x, j]^(w_k),   w_k ← w_k / Σ_k w_k
/// ```
///
/// The weights are normalized to sum to 1 first, so the pool of identical
/// inputs is that input. A token where some input of positive weight is 0
/// gets 0; an input of weight 0 is ignored, zeros included. The computation is
/// in log space (`Σ_k w_k ln P_k`, then a softmax), using `out` as its only
/// scratch space.
///
/// # Errors
///
/// - [`Error::Empty`] if `inputs` is empty.
/// - [`Error::LengthMismatch`] if `weights` and `inputs` differ in length.
/// - [`Error::InvalidWeight`] for a negative, NaN or infinite weight, and
///   [`Error::AllZeroWeights`] if every weight is 0.
/// - [`Error::BatchSizeMismatch`] or [`Error::VocabularyMismatch`] if the shapes differ.
/// - [`Error::InvalidEntry`] for an input entry that is negative, NaN or infinite.
/// - [`Error::EmptySupport`] for a row where no token is positive in every
///   input of positive weight.
///
/// # Examples
///
/// ```
/// use metadistill::kernels::geometric_pool_into;
/// use ndarray::{Array2, array};
///
/// let a = array![[0.5, 0.5]];
/// let b = array![[0.9, 0.1]];
/// let mut out = Array2::zeros((1, 2));
/// geometric_pool_into(&[a.view(), b.view()], &[1.0, 1.0], out.view_mut())?;
/// let first = (0.5_f64 * 0.9).sqrt();
/// let second = (0.5_f64 * 0.1).sqrt();
/// assert!((out[[0, 0]] - first / (first + second)).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn geometric_pool_into<F: KernelFloat>(
    inputs: &[ArrayView2<F>],
    weights: &[F],
    mut out: ArrayViewMut2<F>,
) -> Result<()> {
    let first = *inputs.first().ok_or(Error::Empty {
        what: "list of pooled inputs",
    })?;
    if weights.len() != inputs.len() {
        return Err(Error::LengthMismatch {
            what: "weights (one per pooled input)",
            expected: inputs.len(),
            found: weights.len(),
        });
    }
    for (index, &weight) in weights.iter().enumerate() {
        if !(weight >= F::zero() && weight.is_finite()) {
            return Err(Error::InvalidWeight {
                what: "pool weight",
                index,
                value: to_f64(weight),
            });
        }
    }
    // Dividing by the largest weight first keeps the sum finite for weights near F::MAX.
    let largest = weights.iter().copied().fold(F::zero(), F::max);
    if largest <= F::zero() {
        return Err(Error::AllZeroWeights {
            what: "pool weight",
            count: weights.len(),
        });
    }
    let total: F = weights.iter().map(|&weight| weight / largest).sum();
    for input in inputs {
        check_same_shape(first, input.dim(), "pooled input")?;
    }
    check_same_shape(first, out.dim(), "output")?;

    let normalized: Vec<F> = weights
        .iter()
        .map(|&weight| weight / largest / total)
        .collect();
    let pool_row = |(row, out_row): (usize, ArrayViewMut1<F>)| -> Result<()> {
        pool_one_row(inputs, &normalized, row, out_row)
    };
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .try_for_each(pool_row)
    }
    #[cfg(not(feature = "parallel"))]
    {
        out.axis_iter_mut(Axis(0))
            .enumerate()
            .try_for_each(pool_row)
    }
}

/// Returns `Σ_k w_k ln P_k[row, i]` for one token, `-inf` where a weighted input is 0.
fn pooled_log<F: KernelFloat>(
    inputs: &[ArrayView2<F>],
    weights: &[F],
    row: usize,
    index: usize,
) -> Result<F> {
    let mut sum = F::zero();
    // A weighted zero makes the token -inf, but the later inputs are still checked.
    let mut weighted_zero = false;
    for (input, &weight) in inputs.iter().zip(weights) {
        let value = input[[row, index]];
        if !(value >= F::zero() && value.is_finite()) {
            return Err(Error::InvalidEntry {
                what: "pooled input",
                row,
                index,
                value: to_f64(value),
                requirement: "a finite, non-negative probability",
            });
        }
        if weight.is_zero() {
            continue;
        }
        if value.is_zero() {
            weighted_zero = true;
            continue;
        }
        sum = sum + weight * value.ln();
    }
    Ok(if weighted_zero {
        F::neg_infinity()
    } else {
        sum
    })
}

/// Pools one row into `out`: log-space sums, then `exp(· - max)`, then division by the sum.
fn pool_one_row<F: KernelFloat>(
    inputs: &[ArrayView2<F>],
    weights: &[F],
    row: usize,
    mut out: ArrayViewMut1<F>,
) -> Result<()> {
    let columns = out.len();
    let rows: Vec<ArrayView1<F>> = inputs.iter().map(|input| input.row(row)).collect();
    let mut start = 0;
    while start + LANES <= columns {
        let mut sums = [F::zero(); LANES];
        let mut vector_ok = true;
        for (input, &weight) in rows.iter().zip(weights) {
            let mut block = [F::zero(); LANES];
            for (lane, slot) in block.iter_mut().enumerate() {
                *slot = input[start + lane];
            }
            vector_ok &= all_normal_up_to(&block, F::max_value());
            for lane in 0..LANES {
                sums[lane] = sums[lane] + weight * ln::<F, false>(block[lane]);
            }
        }
        if vector_ok {
            for lane in 0..LANES {
                out[start + lane] = sums[lane];
            }
        } else {
            for index in start..start + LANES {
                out[index] = pooled_log(inputs, weights, row, index)?;
            }
        }
        start += LANES;
    }
    for index in start..columns {
        out[index] = pooled_log(inputs, weights, row, index)?;
    }

    let max = out.iter().copied().fold(F::neg_infinity(), F::max);
    if max == F::neg_infinity() {
        return Err(Error::EmptySupport { row });
    }
    let mut sum = crate::divergence::terms::CompensatedSum::new();
    for value in out.iter_mut() {
        *value = (*value - max).exp();
        sum.add(*value);
    }
    let inverse = F::one() / sum.value();
    out.mapv_inplace(|value| value * inverse);
    Ok(())
}
