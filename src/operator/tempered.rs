//! The tempered mixture: a nonlinear operator whose fixed point is not the teacher.

use ndarray::{Array1, ArrayView1, ArrayViewMut1, Zip};

use crate::distribution::Distribution;
use crate::divergence::terms::compensated_sum;
use crate::error::{Error, Result};
use crate::operator::{MetaTeacherOperator, check_view_lengths};
use crate::real::{Compact, Real, to_f64};

/// The convex mixture followed by tempering at temperature `τ`.
///
/// ```text
/// m = a T0 + (1 - a) S_g,   q_g,i = m_i^(1/τ) / Σ_j m_j^(1/τ),   0 < a <= 1,   τ > 0
/// ```
///
/// Tempering is computed in log space (`ln m_i / τ`, shifted by its maximum),
/// so no temperature overflows or underflows the normalizer; zero entries stay 0.
///
/// - Declared anchor weight: 0. For `τ ≠ 1` tempering moves mass between
///   tokens, so `a*(q; T0)` can be anything in `[0, 1]` and no positive weight
///   is claimed. `τ = 1` is the plain mixture.
/// - Contraction: none toward `T0`, because `T0` is not a fixed point for `τ ≠ 1`.
/// - Fixed point: the solution `p*` of `p = temper(a T0 + (1 - a) p)`, found
///   by [`TemperedMixture::fixed_point`]. It lies at a positive distance from
///   `T0`: for `T0 = (0.6, 0.3, 0.1)`, `a = 0.3`, `τ = 2`,
///   `KL(T0 ‖ p*) ≈ 0.122`.
/// - Cost per input: `O(V)` time with one logarithm and one exponential per
///   token, no allocation.
///
/// # Examples
///
/// ```
/// use metadistill::{Distribution, TemperedMixture, divergence::kl};
///
/// let teacher: Distribution = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let operator = TemperedMixture::new(0.3, 2.0)?;
/// let fixed = operator.fixed_point(&teacher, 1e-14, 10_000)?;
/// assert!((kl(&teacher, &fixed)? - 0.122).abs() < 5e-3);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TemperedMixture<F: Real = f64> {
    anchor: F,
    temperature: F,
}

impl<F: Real> TemperedMixture<F> {
    /// Builds the operator with anchor weight `anchor` and temperature `temperature`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidAnchorWeight`] if `anchor` is not in `(0, 1]`.
    /// - [`Error::InvalidTemperature`] if `temperature` is not finite and positive.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Error, TemperedMixture};
    ///
    /// assert_eq!(TemperedMixture::new(0.3, 2.0)?.temperature(), 2.0);
    /// let frozen = TemperedMixture::new(0.3, 0.0);
    /// assert!(matches!(frozen, Err(Error::InvalidTemperature { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(anchor: F, temperature: F) -> Result<Self> {
        if !(anchor > F::zero() && anchor <= F::one()) {
            return Err(Error::InvalidAnchorWeight {
                value: to_f64(anchor),
                range: "(0, 1]",
            });
        }
        check_temperature(temperature)?;
        Ok(TemperedMixture {
            anchor,
            temperature,
        })
    }

    /// Returns the anchor weight `a` of the inner mixture.
    pub fn anchor(&self) -> F {
        self.anchor
    }

    /// Returns the temperature `τ`.
    pub fn temperature(&self) -> F {
        self.temperature
    }

    /// Finds the fixed point `p* = temper(a T0 + (1 - a) p*)` by iterating the operator from `T0`.
    ///
    /// The iteration stops when the largest change of a probability in one
    /// step is at most `tolerance`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidParameter`] if `tolerance` is not finite and positive,
    ///   or `max_iterations` is 0.
    /// - [`Error::NotConverged`] if the change is still above `tolerance`
    ///   after `max_iterations` steps.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Distribution, Error, TemperedMixture};
    ///
    /// let teacher: Distribution = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
    /// let operator = TemperedMixture::new(0.3, 2.0)?;
    /// let fixed = operator.fixed_point(&teacher, 1e-14, 10_000)?;
    /// assert!(fixed.probs()[0] < 0.6); // tempering flattens the teacher's top token
    /// let early = operator.fixed_point(&teacher, 1e-14, 3);
    /// assert!(matches!(early, Err(Error::NotConverged { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn fixed_point(
        &self,
        teacher: &Distribution<F>,
        tolerance: F,
        max_iterations: usize,
    ) -> Result<Distribution<F>> {
        if !(tolerance.is_finite() && tolerance > F::zero()) {
            return Err(Error::InvalidParameter {
                name: "fixed-point tolerance",
                value: to_f64(tolerance),
                requirement: "finite and positive",
            });
        }
        if max_iterations == 0 {
            return Err(Error::InvalidParameter {
                name: "fixed-point iteration limit",
                value: 0.0,
                requirement: "at least 1",
            });
        }
        let mut current = teacher.probs().to_owned();
        let mut next = Array1::zeros(teacher.len());
        let mut change = F::infinity();
        for _ in 0..max_iterations {
            self.combine_into(&[teacher.probs()], &[current.view()], next.view_mut())?;
            change = Zip::from(&current)
                .and(&next)
                .fold(F::zero(), |max, &c, &n| max.max((c - n).abs()));
            std::mem::swap(&mut current, &mut next);
            if change <= tolerance {
                return Ok(Distribution::from_valid(current));
            }
        }
        Err(Error::NotConverged {
            solver: "tempered fixed-point iteration",
            iterations: max_iterations,
            residual: to_f64(change),
            tolerance: to_f64(tolerance),
        })
    }
}

/// Checks a temperature.
pub(crate) fn check_temperature<F: Real>(temperature: F) -> Result<()> {
    if temperature.is_finite() && temperature > F::zero() {
        Ok(())
    } else {
        Err(Error::InvalidTemperature {
            value: to_f64(temperature),
        })
    }
}

/// Replaces `p` by `p^(1/τ)` renormalized, in log space; zero entries stay 0.
pub(crate) fn temper_in_place<F: Real>(mut values: ArrayViewMut1<F>, temperature: F) {
    let mut max = F::neg_infinity();
    for value in values.iter_mut() {
        *value = value.ln();
        max = max.max(*value);
    }
    // Subtract the maximum before dividing by τ: at τ = 1e-44 in f32, ln p / τ
    // overflows to -inf for every p < 1, and -inf - (-inf) is NaN. This way the
    // largest entry gets exp(0) = 1 and the sum is at least 1.
    values.mapv_inplace(|l| ((l - max) / temperature).exp());
    let sum = compensated_sum(values.iter().copied());
    values.mapv_inplace(|v| v / sum);
}

impl<F: Real> MetaTeacherOperator<F> for TemperedMixture<F> {
    /// Returns 0: tempering keeps no pointwise share of `T0` (see the type docs).
    fn anchor_weight(&self) -> F {
        F::zero()
    }

    /// Writes `temper(a T0 + (1 - a) S_g)`.
    ///
    /// # Errors
    ///
    /// - [`Error::TeacherCount`] unless exactly one base teacher is given.
    /// - [`Error::Empty`] if `students` is empty.
    /// - [`Error::LengthMismatch`] if the teacher or the last student is not as
    ///   long as `out`.
    fn combine_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        mut out: ArrayViewMut1<F>,
    ) -> Result<()> {
        let [teacher] = teachers else {
            return Err(Error::TeacherCount {
                operator: "TemperedMixture",
                expected: "exactly 1",
                found: teachers.len(),
            });
        };
        let student: &ArrayView1<F> = students.last().ok_or(Error::Empty {
            what: "student history",
        })?;
        check_view_lengths(teachers, std::slice::from_ref(student), out.len())?;

        let a = self.anchor;
        let b = F::one() - a;
        Zip::from(&mut out)
            .and(teacher)
            .and(student)
            .for_each(|q, &t, &s| *q = a * t + b * s);
        temper_in_place(out, self.temperature);
        Ok(())
    }

    /// Returns 1: only the latest student is read.
    fn history_window(&self) -> Option<usize> {
        Some(1)
    }

    fn name(&self) -> String {
        format!(
            "TemperedMixture(a = {}, tau = {})",
            Compact(self.anchor),
            Compact(self.temperature)
        )
    }
}
