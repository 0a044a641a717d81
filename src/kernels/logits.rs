//! Row kernel for KL straight from teacher and student logits, with log-softmax fused in.
//!
//! For one row with teacher logits `z` and student logits `y` at temperature `T`:
//!
//! ```text
//! a_i = (z_i - max z)/T,   b_i = (y_i - max y)/T
//! α_i = a_i - ln Σ_j e^(a_j)   (= ln p_i),      β_i = b_i - ln Σ_j e^(b_j)   (= ln q_i)
//! t_i = α_i - β_i = ln(p_i/q_i)
//! KL(p ‖ q) = Σ_i p_i ψ(t_i),   ψ(t) = e^(-t) - 1 + t >= 0
//! ```
//!
//! The last line is true because `Σ p_i = Σ q_i = 1` exactly for softmax
//! distributions, so `Σ p_i t_i = Σ (q_i - p_i + p_i t_i)`. Every term is
//! non-negative: near `t = 0` it is `p t² P(t)` from the series of `ψ`, away from
//! 0 it is `q - p + p t`. The row is read three times (maximum, the two
//! normalizers, the terms); the last two passes read it from cache for rows up
//! to about a megabyte per input. No probability is stored.

// Lane loops index several arrays by the same lane on purpose: that is the
// form the compiler turns into vector instructions.
#![allow(clippy::needless_range_loop)]

use std::cmp::Ordering;

use super::lanes::{KernelFloat, LANES, LaneSum, exp_nonpositive, polynomial};
use super::rows::{EntryError, RowAccess, RowError, check_logit};

/// Divides gaps between logits by the temperature `T`, as `gap · (1/T)`.
///
/// When `1/T` overflows (a subnormal `T`), the gap is first multiplied by
/// `2^64` (exact, or `-inf` where the quotient would be far below any
/// exponent anyway) and then by `1/(2^64 T)`, which is finite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TemperatureScale<F> {
    prescale: F,
    inverse: F,
}

impl<F: KernelFloat> TemperatureScale<F> {
    /// Returns the scale for a positive finite temperature.
    pub(crate) fn new(temperature: F) -> Self {
        let inverse = F::one() / temperature;
        if inverse.is_finite() {
            return TemperatureScale {
                prescale: F::one(),
                inverse,
            };
        }
        let prescale = F::from(18_446_744_073_709_551_616.0_f64).unwrap_or_else(F::max_value);
        TemperatureScale {
            prescale,
            inverse: F::one() / (temperature * prescale),
        }
    }

    /// Tells whether gaps need the extra factor `2^64`.
    pub(crate) fn is_prescaled(self) -> bool {
        self.prescale != F::one()
    }

    /// Returns `gap / T`, with `PRESCALED` equal to [`TemperatureScale::is_prescaled`].
    #[inline(always)]
    fn apply<const PRESCALED: bool>(self, gap: F) -> F {
        if PRESCALED {
            gap * self.prescale * self.inverse
        } else {
            gap * self.inverse
        }
    }
}

/// `|t|` below which `ψ(t)` comes from its series.
const PSI_SERIES_BOUND: f64 = 0.25;

/// Returns the maximum of a row of logits and whether any entry is `-inf`
/// (masked), or the first NaN or `+inf` entry as an error.
#[inline(always)]
fn row_max<F: KernelFloat, R: RowAccess<F>>(row: &R, input: usize) -> Result<(F, bool), RowError> {
    let len = row.len();
    let mut maxima = [F::neg_infinity(); LANES];
    let mut invalid = false;
    let mut masked = false;
    let mut start = 0;
    while start + LANES <= len {
        row.prefetch_ahead(start);
        let block = row.block(start);
        for lane in 0..LANES {
            // NaN and +inf both fail `< inf`.
            invalid |= block[lane].partial_cmp(&F::infinity()) != Some(Ordering::Less);
            masked |= block[lane] == F::neg_infinity();
            maxima[lane] = if block[lane] > maxima[lane] {
                block[lane]
            } else {
                maxima[lane]
            };
        }
        start += LANES;
    }
    let mut max = maxima.iter().copied().fold(F::neg_infinity(), F::max);
    for index in start..len {
        let value = row.get(index);
        invalid |= value.partial_cmp(&F::infinity()) != Some(Ordering::Less);
        masked |= value == F::neg_infinity();
        max = max.max(value);
    }
    // The error names the first invalid entry, so the row is read again from the start.
    if invalid {
        for index in 0..len {
            check_logit(input, index, row.get(index))?;
        }
    }
    if max == F::neg_infinity() {
        return Err(RowError::AllMasked { count: len });
    }
    Ok((max, masked))
}

/// Tells whether the student masks (`-inf`) a token the teacher does not.
///
/// The exact KL is then `+inf`, even where the teacher's probability is
/// too small for a float and rounds to 0.
#[cold]
#[inline(never)]
fn student_masks_a_teacher_token<F: KernelFloat, R: RowAccess<F>>(
    teacher: &R,
    student: &R,
) -> bool {
    (0..teacher.len()).any(|index| {
        student.get(index) == F::neg_infinity() && teacher.get(index) > F::neg_infinity()
    })
}

/// Returns `ln Σ_i e^((z_i - max)/T)` of a row, which is at least 0.
///
/// The terms are positive, so blocks of them are added plainly between
/// compensated additions: the sum `s >= 1` is then off by at most about
/// `16 ε s`, which moves every log-probability of the row by the same
/// `16 ε` at most. A common shift `c` of the log-probabilities changes
/// `Σ p ψ(t)` only through `c Σ (p - q) = 0` and `c²`, so the KL keeps its
/// relative accuracy. The logits tests check that against the scalar path.
#[inline(always)]
fn log_normalizer<F: KernelFloat, R: RowAccess<F>, const FMA: bool, const PRESCALED: bool>(
    row: &R,
    max: F,
    scale: TemperatureScale<F>,
) -> F {
    let len = row.len();
    let mut sum = LaneSum::new();
    let mut start = 0;
    while start + LANES <= len {
        row.prefetch_ahead(start);
        let block = row.block(start);
        let mut terms = [F::zero(); LANES];
        for lane in 0..LANES {
            terms[lane] = exp_nonpositive::<F, FMA>(scale.apply::<PRESCALED>(block[lane] - max));
        }
        sum.add_same_sign(&terms);
        start += LANES;
    }
    for index in start..len {
        sum.add_one(scale.apply::<PRESCALED>(row.get(index) - max).exp());
    }
    // The maximum contributes exactly 1; taking it out and using ln_1p keeps
    // the normalizer accurate when one token carries almost all the mass.
    sum.add_one(-F::one());
    sum.value().ln_1p()
}

/// Returns the KL term `p ψ(t)` of one token from its log-probabilities `α = ln p`, `β = ln q`.
#[inline(always)]
fn kl_logit_term<F: KernelFloat, const FMA: bool>(alpha: F, beta: F) -> F {
    let bound = F::from(PSI_SERIES_BOUND).unwrap_or_else(F::zero);
    let p = exp_nonpositive::<F, FMA>(alpha);
    let q = exp_nonpositive::<F, FMA>(beta);
    let t = alpha - beta;
    let near_term = p * (t * t) * polynomial::<F, FMA>(F::PSI_SERIES, t);
    // A token the teacher masks, or whose probability underflows, has
    // p = 0 and t = -inf or NaN, and its term is q. Rows where the student
    // masks a token the teacher does not are +inf before this point.
    let pt = if p > F::zero() { p * t } else { F::zero() };
    let far_term = (q - p) + pt;
    if t.abs() <= bound {
        near_term
    } else {
        far_term
    }
}

/// Computes `KL(softmax(z/T) ‖ softmax(y/T))` of one row of teacher logits `z` and student logits `y`.
#[inline(always)]
pub(crate) fn kl_logits_row<
    F: KernelFloat,
    R: RowAccess<F>,
    const FMA: bool,
    const PRESCALED: bool,
>(
    teacher: &R,
    student: &R,
    scale: TemperatureScale<F>,
) -> Result<F, RowError> {
    let len = teacher.len();
    let (teacher_max, _) = row_max(teacher, EntryError::FIRST)?;
    let (student_max, student_masked) = row_max(student, EntryError::SECOND)?;
    if student_masked && student_masks_a_teacher_token(teacher, student) {
        return Ok(F::infinity());
    }
    let teacher_log_normalizer =
        log_normalizer::<F, R, FMA, PRESCALED>(teacher, teacher_max, scale);
    let student_log_normalizer =
        log_normalizer::<F, R, FMA, PRESCALED>(student, student_max, scale);

    let mut sum = LaneSum::new();
    let mut start = 0;
    while start + LANES <= len {
        teacher.prefetch_ahead(start);
        student.prefetch_ahead(start);
        let teacher_block = teacher.block(start);
        let student_block = student.block(start);
        let mut terms = [F::zero(); LANES];
        for lane in 0..LANES {
            let alpha = scale.apply::<PRESCALED>(teacher_block[lane] - teacher_max)
                - teacher_log_normalizer;
            let beta = scale.apply::<PRESCALED>(student_block[lane] - student_max)
                - student_log_normalizer;
            terms[lane] = kl_logit_term::<F, FMA>(alpha, beta);
        }
        sum.add_same_sign(&terms);
        start += LANES;
    }
    for index in start..len {
        let alpha =
            scale.apply::<PRESCALED>(teacher.get(index) - teacher_max) - teacher_log_normalizer;
        let beta =
            scale.apply::<PRESCALED>(student.get(index) - student_max) - student_log_normalizer;
        sum.add_one(kl_logit_term::<F, FMA>(alpha, beta));
    }
    let value = sum.value();
    if value.is_nan() {
        // Only a student mass of 0 where the teacher has mass makes a term infinite.
        return Ok(F::infinity());
    }
    Ok(value.max(F::zero()))
}
