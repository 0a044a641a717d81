//! The limit of the recursion from one initial student, and its distance from `T0`.

use crate::axioms::engine::{Fit, Stop, iterate};
use crate::distribution::Distribution;
use crate::divergence::kl;
use crate::error::{Error, Result};
use crate::operator::MetaTeacherOperator;
use crate::real::{Real, to_f64};

/// End point of the recursion after iterating an operator with exact students.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit<F: Real = f64> {
    /// The last student computed.
    pub student: Distribution<F>,
    /// The distance `KL(T0 ‖ student)` in nats: 0 when the fixed point is `T0`.
    pub offset: F,
    /// How many generations were run.
    pub generations: usize,
    /// Total variation between the last two students.
    pub last_step: F,
    /// Whether the last step fell to `tolerance` before the generation limit.
    pub converged: bool,
}

/// Iterates `S_{g+1} = G(T0..Tk; S_0..S_g)` from `start` until consecutive students
/// are within `tolerance` in total variation, for at most `max_generations` steps.
///
/// ```text
/// stop at the first g with TV(S_{g+1}, S_g) = ½ Σ_i |S_{g+1,i} - S_{g,i}| <= tolerance
/// offset = KL(T0 ‖ S_last)
/// ```
///
/// # Errors
///
/// - [`Error::Empty`] if `teachers` is empty.
/// - [`Error::InvalidParameter`] if `tolerance` is negative or not finite.
/// - [`Error::VocabularyMismatch`] if the distributions differ in size.
/// - Any error of the operator.
///
/// # Examples
///
/// Tempering the convex mixture with `τ = 2` moves the fixed point away from `T0`:
///
/// ```
/// use metadistill::{Distribution, MetaTeacherOperator, Result};
/// use metadistill::axioms::find_limit;
/// use ndarray::{ArrayView1, ArrayViewMut1};
///
/// struct TemperedMixture(f64);
///
/// impl MetaTeacherOperator for TemperedMixture {
///     fn anchor_weight(&self) -> f64 {
///         self.0
///     }
///
///     fn combine_into(
///         &self,
///         teachers: &[ArrayView1<f64>],
///         students: &[ArrayView1<f64>],
///         mut out: ArrayViewMut1<f64>,
///     ) -> Result<()> {
///         let s = students[students.len() - 1];
///         for ((q, &t), &s) in out.iter_mut().zip(teachers[0]).zip(s) {
///             *q = (self.0 * t + (1.0 - self.0) * s).sqrt();
///         }
///         let total = out.sum();
///         out /= total;
///         Ok(())
///     }
/// }
///
/// let teacher = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let start = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
/// let limit = find_limit(&TemperedMixture(0.3), &[teacher], &start, 1e-12, 500)?;
/// assert!(limit.converged);
/// assert!((limit.offset - 0.122).abs() < 1e-3);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn find_limit<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    operator: &O,
    teachers: &[Distribution<F>],
    start: &Distribution<F>,
    tolerance: F,
    max_generations: usize,
) -> Result<Limit<F>> {
    let anchor = teachers.first().ok_or(Error::Empty {
        what: "list of base teachers",
    })?;
    if !(tolerance.is_finite() && tolerance >= F::zero()) {
        return Err(Error::InvalidParameter {
            name: "convergence tolerance",
            value: to_f64(tolerance),
            requirement: "finite and non-negative",
        });
    }

    let run = iterate(
        operator,
        teachers,
        start,
        max_generations,
        Fit::Exact,
        Stop::Converged(tolerance),
    )?;
    Ok(Limit {
        offset: kl(anchor, &run.last)?,
        generations: run.divergences.len() - 1,
        last_step: run.last_step,
        converged: run.stopped,
        student: run.last,
    })
}
