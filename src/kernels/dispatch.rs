//! Run-time selection of the vector instruction set, and the parallel loop over rows.
//!
//! Each function below is compiled once per target listed in `targets(...)`
//! by the `multiversion` crate, which checks the CPU's features on the first
//! call and caches the choice. The row kernels are `#[inline(always)]`, so
//! their lane loops are compiled inside each clone with its features: AVX-512
//! or AVX2 with FMA on x86-64, NEON on aarch64, and the baseline of the target
//! otherwise. The binary needs no `-C target-cpu` flag.

use multiversion::multiversion;
use ndarray::{ArrayView1, ArrayViewMut1, Axis};

use crate::error::{Error, Result};

use super::kl;
use super::lanes::KernelFloat;
use super::logits;
use super::logits::TemperatureScale;
use super::rows::{EntryError, RowError, Strided, check_probability};

/// Calls `$kernel` on contiguous slices when both rows have stride 1, else on gathered rows.
macro_rules! with_rows {
    ($kernel:ident, $fma:tt, $p:expr, $q:expr $(, $extra:expr)*) => {
        match ($p.as_slice(), $q.as_slice()) {
            (Some(p), Some(q)) => $kernel::<F, &[F], $fma>(&p, &q $(, $extra)*),
            _ => $kernel::<F, Strided<F>, $fma>(&Strided($p), &Strided($q) $(, $extra)*),
        }
    };
}

/// Tells, inside a multiversioned function, whether its target has fused multiply-add.
macro_rules! target_has_fma {
    () => {
        cfg!(target_arch = "aarch64")
            || multiversion::target::selected_target!().supports_feature_str("fma")
    };
}

/// The row-wise divergence a batched call computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowKernel {
    KullbackLeibler,
    ReverseKullbackLeibler,
    JensenShannon,
    CrossEntropy,
    Dot,
}

#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma",
    "x86_64+sse4.1",
    "aarch64+neon"
))]
fn pair_row<F: KernelFloat>(
    kernel: RowKernel,
    p: ArrayView1<F>,
    q: ArrayView1<F>,
) -> std::result::Result<F, RowError> {
    if target_has_fma!() {
        pair_row_with::<F, true>(kernel, p, q)
    } else {
        pair_row_with::<F, false>(kernel, p, q)
    }
}

#[inline(always)]
fn pair_row_with<F: KernelFloat, const FMA: bool>(
    kernel: RowKernel,
    p: ArrayView1<F>,
    q: ArrayView1<F>,
) -> std::result::Result<F, RowError> {
    use kl::{cross_entropy_row, js_row, kl_row};
    match kernel {
        RowKernel::KullbackLeibler => with_rows!(kl_row, FMA, p, q),
        RowKernel::ReverseKullbackLeibler => {
            // KL(q ‖ p) reads q first. Errors name the inputs as the caller
            // passed them and, at one token, report p before q.
            with_rows!(kl_row, FMA, q, p).map_err(|error| match error.swap_inputs() {
                RowError::Entry(entry) if entry.input == EntryError::SECOND => {
                    check_probability(EntryError::FIRST, entry.index, p[entry.index])
                        .err()
                        .unwrap_or(RowError::Entry(entry))
                }
                other => other,
            })
        }
        RowKernel::JensenShannon => with_rows!(js_row, FMA, p, q),
        RowKernel::CrossEntropy => with_rows!(cross_entropy_row, FMA, p, q),
        RowKernel::Dot => Ok(match (p.as_slice(), q.as_slice()) {
            (Some(p), Some(q)) => kl::dot_row(&p, &q),
            _ => kl::dot_row(&Strided(p), &Strided(q)),
        }),
    }
}

#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma",
    "x86_64+sse4.1",
    "aarch64+neon"
))]
fn entropy_row<F: KernelFloat>(p: ArrayView1<F>) -> std::result::Result<F, RowError> {
    match (p.as_slice(), target_has_fma!()) {
        (Some(slice), true) => kl::entropy_row::<F, &[F], true>(&slice),
        (Some(slice), false) => kl::entropy_row::<F, &[F], false>(&slice),
        (None, true) => kl::entropy_row::<F, Strided<F>, true>(&Strided(p)),
        (None, false) => kl::entropy_row::<F, Strided<F>, false>(&Strided(p)),
    }
}

#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma",
    "x86_64+sse4.1",
    "aarch64+neon"
))]
fn logits_row<F: KernelFloat>(
    teacher: ArrayView1<F>,
    student: ArrayView1<F>,
    scale: TemperatureScale<F>,
) -> std::result::Result<F, RowError> {
    use logits::kl_logits_row;
    // Subnormal temperatures are rare enough for the portable instantiation.
    match (
        teacher.as_slice(),
        student.as_slice(),
        target_has_fma!(),
        scale.is_prescaled(),
    ) {
        (Some(z), Some(y), true, false) => kl_logits_row::<F, &[F], true, false>(&z, &y, scale),
        (Some(z), Some(y), false, false) => kl_logits_row::<F, &[F], false, false>(&z, &y, scale),
        (Some(z), Some(y), _, true) => kl_logits_row::<F, &[F], false, true>(&z, &y, scale),
        (_, _, true, false) => {
            kl_logits_row::<F, Strided<F>, true, false>(&Strided(teacher), &Strided(student), scale)
        }
        (_, _, false, false) => kl_logits_row::<F, Strided<F>, false, false>(
            &Strided(teacher),
            &Strided(student),
            scale,
        ),
        (_, _, _, true) => {
            kl_logits_row::<F, Strided<F>, false, true>(&Strided(teacher), &Strided(student), scale)
        }
    }
}

/// Returns the feature set of the clone the dispatcher picks on this CPU, such as
/// `"avx512f,avx512bw,…"`, or `"baseline"`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma",
    "x86_64+sse4.1",
    "aarch64+neon"
))]
pub(crate) fn selected_features() -> String {
    let features: Vec<&str> = multiversion::target::selected_target!()
        .features()
        .map(|feature| feature.name())
        .collect();
    if features.is_empty() {
        "baseline".to_string()
    } else {
        features.join(",")
    }
}

/// Rows below which the parallel loop hands a thread several rows at once,
/// so that a task covers at least this many entries.
#[cfg(feature = "parallel")]
const MIN_ENTRIES_PER_TASK: usize = 1 << 15;

/// Fills `out[row] = compute(row)` for every row, in parallel when the `parallel` feature is on.
///
/// The first row that fails (in an unspecified order when parallel) gives the
/// error, converted with `names` naming the two inputs.
pub(crate) fn fill_rows<F, C>(
    mut out: ArrayViewMut1<F>,
    columns: usize,
    names: [&'static str; 2],
    compute: C,
) -> Result<()>
where
    F: KernelFloat,
    C: Fn(usize) -> std::result::Result<F, RowError> + Sync,
{
    let store = |(row, mut slot): (usize, ndarray::ArrayViewMut0<F>)| -> Result<()> {
        slot[()] = compute(row).map_err(|error| error.into_error(row, names))?;
        Ok(())
    };

    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        // Below two tasks' worth of entries the pool costs more than it saves.
        if out.len().saturating_mul(columns) < 2 * MIN_ENTRIES_PER_TASK {
            return out.axis_iter_mut(Axis(0)).enumerate().try_for_each(store);
        }
        let rows_per_task = (MIN_ENTRIES_PER_TASK / columns.max(1)).max(1);
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .with_min_len(rows_per_task)
            .try_for_each(store)
    }
    #[cfg(not(feature = "parallel"))]
    {
        let _ = columns;
        out.axis_iter_mut(Axis(0)).enumerate().try_for_each(store)
    }
}

/// Computes one row of a two-input kernel on the best instruction set of this CPU.
pub(crate) fn compute_pair_row<F: KernelFloat>(
    kernel: RowKernel,
    p: ArrayView1<F>,
    q: ArrayView1<F>,
) -> std::result::Result<F, RowError> {
    pair_row(kernel, p, q)
}

/// Computes the entropy of one row on the best instruction set of this CPU.
pub(crate) fn compute_entropy_row<F: KernelFloat>(
    p: ArrayView1<F>,
) -> std::result::Result<F, RowError> {
    entropy_row(p)
}

/// Computes the KL divergence of one row of logits on the best instruction set of this CPU.
pub(crate) fn compute_logits_row<F: KernelFloat>(
    teacher: ArrayView1<F>,
    student: ArrayView1<F>,
    scale: TemperatureScale<F>,
) -> std::result::Result<F, RowError> {
    logits_row(teacher, student, scale)
}

/// Checks that the output has one entry per row.
pub(crate) fn check_output_len(expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what: "output (one entry per row)",
            expected,
            found,
        })
    }
}
