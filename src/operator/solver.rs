//! An iterative information projection for divergences without a closed form.
//!
//! [`MirrorDescent`] minimizes `f(q) = Σ_k w_k D(p_k, q)` over the simplex by
//! exponentiated-gradient steps `q_i ← q_i exp(-η ∂f/∂q_i)`, renormalized.
//! Because `f` is convex in `q` for every divergence the solver accepts, the
//! Frank-Wolfe gap
//!
//! ```text
//! gap(q) = Σ_i q_i g_i - min_{i: q_i > 0} g_i,   g = ∇f(q)
//! ```
//!
//! bounds `f(q) - min f` from above on the face of the simplex where `q`
//! lives, so it is the stopping rule: the solver stops once `gap <= tolerance`
//! and returns [`Error::NotConverged`] if the iteration limit comes first.

use std::borrow::Cow;
use std::sync::{Mutex, PoisonError};

use ndarray::{Array1, ArrayView1, ArrayViewMut1};

use crate::distribution::{Distribution, check_same_vocabulary};
use crate::divergence::Divergence;
use crate::divergence::terms::{CompensatedSum, compensated_sum, log_ratio};
use crate::error::{Error, Result};
use crate::operator::projection::check_pool;
use crate::operator::{GeneralizedMixture, MetaTeacherOperator, Weights, check_input_vector};
use crate::real::{Real, constant, to_f64};

/// The largest number of step halvings tried in one iteration.
const MAX_HALVINGS: usize = 80;

/// Writes the gradient `∂D(p, q)/∂q_i` into `out`, for tokens with `q_i > 0`.
///
/// ```text
/// KL(p ‖ q)          -p_i / q_i
/// KL(q ‖ p)          ln(q_i / p_i) + 1          (+inf where p_i = 0)
/// JS(p, q)           ½ ln(2 q_i / (p_i + q_i))
/// H²(p, q)           ½ (1 - √(p_i / q_i))
/// χ²(p ‖ q)          1 - p_i² / q_i²
/// D_b(p ‖ q)         -(p_i / q_i)^b / Σ_j p_j^b q_j^(1-b)      (0 < b < ∞, b ≠ 1)
/// D_0(p ‖ q)         -[p_i > 0] / Σ_{j: p_j > 0} q_j
/// √JS, H             chain rule: ∇D² / (2 D), 0 where D = 0
/// ```
///
/// Entries with `q_i = 0` are set to 0; the simplex face of `q` does not
/// use them.
///
/// # Errors
///
/// - [`Error::LengthMismatch`] if the three vectors differ in length.
/// - [`Error::InvalidInputVector`] if `p` or `q` is not a probability vector
///   within [`default_sum_tolerance`](crate::default_sum_tolerance), wrapping
///   [`Error::Empty`], [`Error::NonFiniteProbability`],
///   [`Error::NegativeProbability`] or [`Error::NotNormalized`].
/// - [`Error::NoGradient`] for total variation and the Renyi order infinity,
///   which are not differentiable.
/// - [`Error::InvalidOrder`] for a negative or NaN Renyi order.
///
/// # Examples
///
/// ```
/// use metadistill::{Divergence, divergence_gradient_into};
/// use ndarray::{Array1, array};
///
/// let p = array![0.5f64, 0.5];
/// let q = array![0.25, 0.75];
/// let mut gradient = Array1::zeros(2);
/// divergence_gradient_into(&Divergence::KullbackLeibler, p.view(), q.view(), gradient.view_mut())?;
/// assert!((gradient[0] + 2.0).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn divergence_gradient_into<F: Real>(
    divergence: &Divergence<F>,
    p: ArrayView1<F>,
    q: ArrayView1<F>,
    mut out: ArrayViewMut1<F>,
) -> Result<()> {
    for (what, len) in [("q", q.len()), ("gradient buffer", out.len())] {
        if len != p.len() {
            return Err(Error::LengthMismatch {
                what,
                expected: p.len(),
                found: len,
            });
        }
    }
    check_input_vector("p", p)?;
    check_input_vector("q", q)?;
    let p = p.to_vec();
    let q = q.to_vec();
    let mut gradient = vec![F::zero(); p.len()];
    add_gradient(divergence, &p, &q, F::one(), &mut gradient)?;
    out.assign(&ArrayView1::from(&gradient));
    Ok(())
}

/// Adds `weight · ∂D(p, q)/∂q` to `out` on the tokens with `q_i > 0`.
fn add_gradient<F: Real>(
    divergence: &Divergence<F>,
    p: &[F],
    q: &[F],
    weight: F,
    out: &mut [F],
) -> Result<()> {
    let two = constant::<F>(2.0);
    let one = F::one();
    // Distances are square roots of divergences: scale the inner gradient by 1 / (2 D).
    let (inner, scale) = match *divergence {
        Divergence::JensenShannonDistance | Divergence::Hellinger => {
            let value = divergence.compute_slices(p, q)?;
            let scale = if value > F::zero() {
                one / (two * value)
            } else {
                F::zero()
            };
            let inner = if matches!(divergence, Divergence::Hellinger) {
                Divergence::SquaredHellinger
            } else {
                Divergence::JensenShannon
            };
            (inner, scale)
        }
        other => (other, one),
    };
    let weight = weight * scale;

    let term = match inner {
        Divergence::KullbackLeibler => TokenGradient::KullbackLeibler,
        Divergence::ReverseKullbackLeibler => TokenGradient::ReverseKullbackLeibler,
        Divergence::JensenShannon => TokenGradient::JensenShannon,
        Divergence::SquaredHellinger => TokenGradient::SquaredHellinger,
        Divergence::ChiSquared => TokenGradient::ChiSquared,
        Divergence::Renyi { order } => renyi_gradient(p, q, order)?,
        Divergence::TotalVariation | Divergence::JensenShannonDistance | Divergence::Hellinger => {
            return Err(Error::NoGradient {
                divergence: divergence.name(),
            });
        }
    };
    for ((slot, &pi), &qi) in out.iter_mut().zip(p).zip(q) {
        if qi > F::zero() {
            *slot = *slot + weight * term.at(pi, qi);
        }
    }
    Ok(())
}

/// The per-token gradient `∂D/∂q_i` of a differentiable divergence, with any constant it needs.
#[derive(Debug, Clone, Copy)]
enum TokenGradient<F> {
    KullbackLeibler,
    ReverseKullbackLeibler,
    JensenShannon,
    SquaredHellinger,
    ChiSquared,
    /// Renyi of order `0 < b < ∞`, `b ≠ 1`, in log space: `max_ratio = M = max_j ln(p_j / q_j)`
    /// and `log_sum = ln Σ_j p_j exp((b - 1)(ln(p_j / q_j) - M))`.
    Renyi {
        order: F,
        max_ratio: F,
        log_sum: F,
    },
    /// Renyi of order 0, with `mass = Σ_{j: p_j > 0} q_j`.
    RenyiZero {
        mass: F,
    },
}

impl<F: Real> TokenGradient<F> {
    /// Evaluates the gradient at one token with `q_i > 0`.
    fn at(&self, pi: F, qi: F) -> F {
        let half = constant::<F>(0.5);
        let one = F::one();
        match *self {
            TokenGradient::KullbackLeibler => -pi / qi,
            TokenGradient::ReverseKullbackLeibler if pi.is_zero() => F::infinity(),
            // ln q - ln p: the quotient q/p overflows when p is subnormal.
            TokenGradient::ReverseKullbackLeibler => log_ratio(qi, pi) + one,
            TokenGradient::JensenShannon => half * (constant::<F>(2.0) * qi / (pi + qi)).ln(),
            TokenGradient::SquaredHellinger => half * (one - (pi / qi).sqrt()),
            TokenGradient::ChiSquared => one - (pi / qi) * (pi / qi),
            // A zero p_i contributes nothing, which also covers disjoint supports (sum = 0).
            TokenGradient::Renyi { .. } | TokenGradient::RenyiZero { .. } if pi.is_zero() => {
                F::zero()
            }
            TokenGradient::Renyi {
                order,
                max_ratio,
                log_sum,
            } => {
                // (p_i/q_i)^b / Σ_j p_j^b q_j^(1-b) with the common factor exp((b - 1) M) cancelled.
                if log_sum == F::infinity() {
                    return F::zero();
                }
                let ratio = log_ratio(pi, qi);
                let shifted = (order - one) * (ratio - max_ratio);
                -(shifted + ratio - log_sum).exp()
            }
            TokenGradient::RenyiZero { mass } => -one / mass,
        }
    }
}

/// Returns the per-token gradient of the Renyi divergence of order `order`.
fn renyi_gradient<F: Real>(p: &[F], q: &[F], order: F) -> Result<TokenGradient<F>> {
    let divergence = Divergence::renyi(order)?;
    if order == F::infinity() {
        return Err(Error::NoGradient {
            divergence: divergence.name(),
        });
    }
    if order == F::one() {
        return Ok(TokenGradient::KullbackLeibler);
    }
    if order.is_zero() {
        let mass = compensated_sum(
            p.iter()
                .zip(q)
                .filter(|(pi, _)| **pi > F::zero())
                .map(|(_, qi)| *qi),
        );
        return Ok(TokenGradient::RenyiZero { mass });
    }
    // NOTE: at huge orders (1e300 was tried) D_b is the non-smooth max log-ratio in all
    // but the last digits, and MirrorDescent stops with NotConverged rather than a projection.
    // Work in log space centred on the max log-ratio M, so that neither (p_i/q_i)^b
    // nor the sum overflows for huge orders: both carry the factor exp((b - 1) M).
    let b_minus_one = order - F::one();
    let ratios: Vec<(F, F)> = p
        .iter()
        .zip(q)
        .filter(|&(&pi, &qi)| pi > F::zero() && (qi > F::zero() || b_minus_one > F::zero()))
        .map(|(&pi, &qi)| (pi, log_ratio(pi, qi)))
        .collect();
    let max_ratio = ratios
        .iter()
        .map(|&(_, r)| r)
        .fold(F::neg_infinity(), F::max);
    if !max_ratio.is_finite() {
        // +inf: some q_j = 0 < p_j with b > 1, so the sum is infinite and every finite
        // token's gradient is 0. -inf: disjoint supports, where no token has p_i q_i > 0.
        return Ok(TokenGradient::Renyi {
            order,
            max_ratio: F::zero(),
            log_sum: F::infinity(),
        });
    }
    let exponents: Vec<F> = ratios
        .iter()
        .map(|&(pi, r)| pi.ln() + b_minus_one * (r - max_ratio))
        .collect();
    let max = exponents.iter().copied().fold(F::neg_infinity(), F::max);
    let log_sum = max + compensated_sum(exponents.iter().map(|&e| (e - max).exp())).ln();
    Ok(TokenGradient::Renyi {
        order,
        max_ratio,
        log_sum,
    })
}

/// Statistics of a finished solver run: iterations, final gap and objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolverReport<F: Real = f64> {
    /// The number of exponentiated-gradient steps taken.
    pub iterations: usize,
    /// The final Frank-Wolfe gap, an upper bound on `f(q) - min f` on the face of `q`.
    pub gap: F,
    /// The final objective `Σ_k w_k D(p_k, q)`.
    pub objective: F,
}

/// Mirror descent on the simplex for `argmin_q Σ_k w_k D(p_k, q)`, with a certified stopping rule.
///
/// Each step multiplies `q` by `exp(-η (g - min g))` and renormalizes in log
/// space. The step `η` doubles after an accepted step and halves while the
/// directional derivative at the candidate, `-Cov_c(∇f(c), g)`, is positive
/// (the step went past the minimum along its path). The solver starts from
/// the arithmetic mean of the points, so tokens where every point is 0 stay 0.
///
/// # Limitations
///
/// The rate is linear near an interior optimum and slows when the optimum has
/// tiny entries, where `∇f` is steep. A token whose entry underflows to 0
/// leaves the face for good, so an optimum with an entry below the smallest
/// positive float is reported on the face that excludes it.
///
/// # Examples
///
/// ```
/// use metadistill::{Distribution, Divergence, MirrorDescent, PowerMeanProjection, Weights};
///
/// let points: [Distribution; 2] = [
///     Distribution::from_probs(&[0.6, 0.3, 0.1])?,
///     Distribution::from_probs(&[0.2, 0.5, 0.3])?,
/// ];
/// let w = Weights::new(&[0.3, 0.7])?;
/// let (q, report) = MirrorDescent::default().solve(&Divergence::SquaredHellinger, &points, &w)?;
/// let exact = PowerMeanProjection::SquaredHellinger.project(&points, &w)?;
/// assert!((q.probs()[0] - exact.probs()[0]).abs() < 1e-8);
/// assert!(report.gap <= 1e-10);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MirrorDescent<F: Real = f64> {
    tolerance: F,
    max_iterations: usize,
}

/// The work vectors of one mirror-descent solve: the iterate, its gradient
/// and the candidate pair of a step.
#[derive(Debug, Default)]
pub(crate) struct SolverScratch<F> {
    iterate: Vec<F>,
    gradient: Vec<F>,
    candidate: Vec<F>,
    candidate_gradient: Vec<F>,
}

impl<F: Real> Default for MirrorDescent<F> {
    /// Tolerance `ε^(3/4)` on the gap (about `2e-12` for `f64`, `6e-6` for `f32`) and 10 000 iterations.
    fn default() -> Self {
        MirrorDescent {
            tolerance: F::epsilon().powf(constant(0.75)),
            max_iterations: 10_000,
        }
    }
}

impl<F: Real> MirrorDescent<F> {
    /// Builds a solver that stops at `gap <= tolerance` or after `max_iterations` steps.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `tolerance` is not finite and positive or
    /// `max_iterations` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Error, MirrorDescent};
    ///
    /// let solver = MirrorDescent::new(1e-10, 500)?;
    /// assert_eq!(solver.max_iterations(), 500);
    /// assert!(matches!(MirrorDescent::new(-1.0, 10), Err(Error::InvalidParameter { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(tolerance: F, max_iterations: usize) -> Result<Self> {
        if !(tolerance.is_finite() && tolerance > F::zero()) {
            return Err(Error::InvalidParameter {
                name: "solver tolerance",
                value: to_f64(tolerance),
                requirement: "finite and positive",
            });
        }
        if max_iterations == 0 {
            return Err(Error::InvalidParameter {
                name: "solver iteration limit",
                value: 0.0,
                requirement: "at least 1",
            });
        }
        Ok(MirrorDescent {
            tolerance,
            max_iterations,
        })
    }

    /// Returns the tolerance on the Frank-Wolfe gap.
    pub fn tolerance(&self) -> F {
        self.tolerance
    }

    /// Returns the iteration limit.
    pub fn max_iterations(&self) -> usize {
        self.max_iterations
    }

    /// Computes the projection of the points with weights `weights`.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if `points` is empty.
    /// - [`Error::VocabularyMismatch`] if the points differ in size.
    /// - [`Error::LengthMismatch`] if `weights` has another length than `points`.
    /// - [`Error::NoGradient`], [`Error::InvalidOrder`],
    ///   [`Error::DisjointSupports`] or [`Error::NotConverged`] as for
    ///   [`MirrorDescent::solve_into`].
    pub fn solve(
        &self,
        divergence: &Divergence<F>,
        points: &[Distribution<F>],
        weights: &Weights<F>,
    ) -> Result<(Distribution<F>, SolverReport<F>)> {
        let first = points.first().ok_or(Error::Empty {
            what: "list of points to project",
        })?;
        for point in points {
            check_same_vocabulary(first, point)?;
        }
        let views: Vec<_> = points.iter().map(Distribution::probs).collect();
        let mut out = Array1::zeros(first.len());
        let report = self.solve_into(divergence, &views, weights.as_slice(), out.view_mut())?;
        Ok((Distribution::from_valid(out), report))
    }

    /// Writes `argmin_q Σ_k w_k D(p_k, q)` into `out` and reports how it got there.
    ///
    /// Cost: `O(K V)` per iteration plus one gradient per step halving; four
    /// work vectors of length `V` are allocated per call, and strided points
    /// are copied.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`], [`Error::LengthMismatch`], [`Error::InvalidWeight`]
    ///   or [`Error::WeightsNotNormalized`] for bad points or weights.
    /// - [`Error::InvalidInputVector`] naming `point k` if a point is not a
    ///   probability vector within [`default_sum_tolerance`](crate::default_sum_tolerance),
    ///   wrapping [`Error::Empty`] (for an empty `out`), [`Error::NonFiniteProbability`],
    ///   [`Error::NegativeProbability`] or [`Error::NotNormalized`].
    /// - [`Error::NoGradient`] for a divergence that is not differentiable.
    /// - [`Error::InvalidOrder`] for a Renyi order that is negative or NaN.
    /// - [`Error::DisjointSupports`] if the objective is infinite on every
    ///   token of the start point, as for reverse KL between disjoint points.
    /// - [`Error::NotConverged`] if the gap is still above the tolerance after
    ///   the iteration limit, if no step size decreases the objective, or if
    ///   the last iterate has a larger objective than the start point.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Divergence, Error, MirrorDescent};
    /// use ndarray::{Array1, array};
    ///
    /// let p = array![0.9f64, 0.1];
    /// let q = array![0.1, 0.9];
    /// let mut out = Array1::zeros(2);
    /// let solver = MirrorDescent::default();
    /// let report = solver.solve_into(&Divergence::JensenShannon, &[p.view(), q.view()], &[0.5, 0.5], out.view_mut())?;
    /// assert!((out[0] - 0.5).abs() < 1e-9);
    /// assert!(report.gap <= solver.tolerance());
    ///
    /// let hurried = MirrorDescent::new(1e-15, 1)?;
    /// let p = array![0.98, 0.01, 0.01];
    /// let q = array![0.01, 0.01, 0.98];
    /// let mut out = Array1::zeros(3);
    /// let points = [p.view(), q.view()];
    /// let early = hurried.solve_into(&Divergence::JensenShannon, &points, &[0.3, 0.7], out.view_mut());
    /// assert!(matches!(early, Err(Error::NotConverged { iterations: 1, .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn solve_into(
        &self,
        divergence: &Divergence<F>,
        points: &[ArrayView1<F>],
        weights: &[F],
        out: ArrayViewMut1<F>,
    ) -> Result<SolverReport<F>> {
        check_pool(points, weights, out.len())?;
        for (position, point) in points.iter().enumerate() {
            check_input_vector(&format!("point {position}"), *point)?;
        }
        self.solve_with_scratch(
            divergence,
            points,
            weights,
            out,
            &mut SolverScratch::default(),
        )
    }

    /// Solves as [`MirrorDescent::solve_into`] with caller-owned work vectors,
    /// which are resized to the vocabulary and reused across calls.
    pub(crate) fn solve_with_scratch(
        &self,
        divergence: &Divergence<F>,
        points: &[ArrayView1<F>],
        weights: &[F],
        mut out: ArrayViewMut1<F>,
        scratch: &mut SolverScratch<F>,
    ) -> Result<SolverReport<F>> {
        check_pool(points, weights, out.len())?;
        let dense: Vec<Cow<[F]>> = points
            .iter()
            .map(|p| match p.as_slice() {
                Some(slice) => Cow::Borrowed(slice),
                None => Cow::Owned(p.to_vec()),
            })
            .collect();
        let len = out.len();

        let SolverScratch {
            iterate: q,
            gradient,
            candidate,
            candidate_gradient,
        } = scratch;
        for buffer in [
            &mut *q,
            &mut *gradient,
            &mut *candidate,
            &mut *candidate_gradient,
        ] {
            buffer.clear();
            buffer.resize(len, F::zero());
        }
        for (point, &weight) in dense.iter().zip(weights) {
            for (slot, &p) in q.iter_mut().zip(point.iter()) {
                *slot = *slot + weight * p;
            }
        }
        objective_gradient(divergence, &dense, weights, q, gradient)?;
        let start_objective = objective_value(divergence, &dense, weights, q)?;

        let mut step = F::one();
        let mut iterations = 0;
        if face_minimum(q, gradient) == F::infinity() {
            // Every token of the start point has an infinite gradient, as for
            // reverse KL between points with disjoint supports.
            return Err(Error::DisjointSupports {
                what: format!("{} projection", divergence.name()),
            });
        }
        let mut gap = frank_wolfe_gap(q, gradient);
        while gap > self.tolerance {
            if iterations == self.max_iterations {
                return Err(self.not_converged(iterations, gap));
            }
            let mut accepted = false;
            for _ in 0..MAX_HALVINGS {
                exponentiated_step(q, gradient, step, candidate);
                objective_gradient(divergence, &dense, weights, candidate, candidate_gradient)?;
                if directional_derivative(candidate, candidate_gradient, gradient) <= F::zero() {
                    accepted = true;
                    break;
                }
                step = step * constant(0.5);
            }
            if !accepted {
                return Err(self.not_converged(iterations, gap));
            }

            std::mem::swap(q, candidate);
            std::mem::swap(gradient, candidate_gradient);
            step = step + step;
            iterations += 1;
            gap = frank_wolfe_gap(q, gradient);
        }

        let objective = objective_value(divergence, &dense, weights, q)?;
        // Where the gradient loses all precision, as for Renyi orders near
        // 1e270 at points that differ by rounding, the gap test can pass at a
        // point worse than the start. A projection is never worse than the
        // weighted mixture it starts from, so a result worse by more than the
        // tolerance is rejected.
        // A NaN on either side counts as worse.
        let bound = start_objective + self.tolerance;
        let within = matches!(
            objective.partial_cmp(&bound),
            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
        );
        if iterations > 0 && !within {
            return Err(self.not_converged(iterations, gap));
        }
        out.assign(&ArrayView1::from(&q[..]));
        Ok(SolverReport {
            iterations,
            gap,
            objective,
        })
    }

    /// Builds the error for a run that did not reach the tolerance.
    fn not_converged(&self, iterations: usize, gap: F) -> Error {
        Error::NotConverged {
            solver: "mirror descent",
            iterations,
            residual: to_f64(gap),
            tolerance: to_f64(self.tolerance),
        }
    }
}

/// Computes the objective `Σ_k w_k D(P_k ‖ q)`, exactly `+inf` when a term is infinite.
fn objective_value<F: Real>(
    divergence: &Divergence<F>,
    points: &[Cow<[F]>],
    weights: &[F],
    q: &[F],
) -> Result<F> {
    let mut objective = CompensatedSum::new();
    let mut infinite = false;
    for (point, &weight) in points.iter().zip(weights) {
        if weight > F::zero() {
            let term = weight * divergence.compute_slices(point, q)?;
            infinite |= term == F::infinity();
            objective.add(term);
        }
    }
    Ok(if infinite {
        F::infinity()
    } else {
        objective.value()
    })
}

/// Writes `∇f(q) = Σ_k w_k ∇D(p_k, q)` into `out`.
fn objective_gradient<F: Real>(
    divergence: &Divergence<F>,
    points: &[Cow<[F]>],
    weights: &[F],
    q: &[F],
    out: &mut [F],
) -> Result<()> {
    out.fill(F::zero());
    for (point, &weight) in points.iter().zip(weights) {
        if weight > F::zero() {
            add_gradient(divergence, point, q, weight, out)?;
        }
    }
    Ok(())
}

/// Returns `min_{i: q_i > 0, g_i finite} g_i`, or `+inf` if there is none.
fn face_minimum<F: Real>(q: &[F], gradient: &[F]) -> F {
    q.iter()
        .zip(gradient)
        .filter(|&(&qi, &gi)| qi > F::zero() && gi.is_finite())
        .map(|(_, &gi)| gi)
        .fold(F::infinity(), F::min)
}

/// Computes the Frank-Wolfe gap `Σ q_i g_i - min g` on the face of `q`.
fn frank_wolfe_gap<F: Real>(q: &[F], gradient: &[F]) -> F {
    let minimum = face_minimum(q, gradient);
    if minimum == F::infinity() {
        return F::infinity();
    }
    let inner = compensated_sum(
        q.iter()
            .zip(gradient)
            .filter(|(qi, _)| **qi > F::zero())
            .map(|(&qi, &gi)| qi * (gi - minimum)),
    );
    inner.max(F::zero())
}

/// Writes `c ∝ q exp(-η (g - min g))`, computed in log space.
fn exponentiated_step<F: Real>(q: &[F], gradient: &[F], step: F, out: &mut [F]) {
    let minimum = face_minimum(q, gradient);
    let mut max = F::neg_infinity();
    for ((slot, &qi), &gi) in out.iter_mut().zip(q).zip(gradient) {
        *slot = if qi > F::zero() {
            qi.ln() - step * (gi - minimum)
        } else {
            F::neg_infinity()
        };
        max = max.max(*slot);
    }
    for slot in out.iter_mut() {
        *slot = (*slot - max).exp();
    }
    let sum = compensated_sum(out.iter().copied());
    for slot in out.iter_mut() {
        *slot = *slot / sum;
    }
}

/// Computes the derivative along the step path at `c`: `-Cov_c(h, g)` with `h = ∇f(c)`.
///
/// Both gradients are centered on their `c`-means before multiplying, so the
/// constant part that the simplex ignores does not swamp the covariance with
/// rounding error near the optimum.
fn directional_derivative<F: Real>(c: &[F], candidate_gradient: &[F], gradient: &[F]) -> F {
    let support = || {
        c.iter()
            .zip(candidate_gradient)
            .zip(gradient)
            .filter(|((ci, _), _)| **ci > F::zero())
    };
    let mean_g = compensated_sum(support().map(|((&ci, _), &gi)| ci * gi));
    let mean_h = compensated_sum(support().map(|((&ci, &hi), _)| ci * hi));
    let covariance =
        compensated_sum(support().map(|((&ci, &hi), &gi)| ci * (hi - mean_h) * (gi - mean_g)));
    if covariance.is_nan() {
        return F::infinity();
    }
    -covariance
}

/// The information projection for any differentiable divergence, solved by mirror descent.
///
/// ```text
/// q_g = argmin_q  a Σ_k w_k D(T_k, q) + (1 - a) Σ_j v_j D(S_{g-j}, q)
/// ```
///
/// with the weights of a [`GeneralizedMixture`]. Jensen-Shannon is the main
/// use: it has no closed form.
///
/// - Declared anchor weight: `a w_0`, nominal. Pointwise anchoring is not
///   guaranteed.
/// - Contraction: no factor is proven; measure it with the recursion.
/// - Fixed point: the projection of the teachers alone, because a divergence
///   with zero gradient on its diagonal leaves that point stationary. With
///   one teacher it is `T0`.
/// - Cost per input: the solver's, `O((k + m) V)` per iteration.
///
/// A run that does not converge is an error ([`Error::NotConverged`]), never
/// a silent result.
///
/// # Examples
///
/// ```
/// use metadistill::{Distribution, Divergence, GeneralizedMixture, HistoryWeights};
/// use metadistill::{IterativeProjection, MetaTeacherOperator, MirrorDescent};
///
/// let teacher = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let student = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
/// let weighting = GeneralizedMixture::single_teacher(0.3, HistoryWeights::Latest)?;
/// let operator =
///     IterativeProjection::new(Divergence::JensenShannon, weighting, MirrorDescent::default())?;
/// let q = operator.build(&[teacher], &[student])?;
/// assert!(q.probs()[0] > 0.2 && q.probs()[0] < 0.6);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug)]
pub struct IterativeProjection<F: Real = f64> {
    divergence: Divergence<F>,
    weighting: GeneralizedMixture<F>,
    solver: MirrorDescent<F>,
    /// Work vectors reused across calls, so a recursion allocates them once.
    scratch: Mutex<SolverScratch<F>>,
}

impl<F: Real> Clone for IterativeProjection<F> {
    /// Clones the settings; the clone starts with empty work vectors.
    fn clone(&self) -> Self {
        IterativeProjection {
            divergence: self.divergence,
            weighting: self.weighting.clone(),
            solver: self.solver,
            scratch: Mutex::new(SolverScratch::default()),
        }
    }
}

impl<F: Real> PartialEq for IterativeProjection<F> {
    /// Compares the settings; the work vectors are not part of the value.
    fn eq(&self, other: &Self) -> bool {
        self.divergence == other.divergence
            && self.weighting == other.weighting
            && self.solver == other.solver
    }
}

impl<F: Real> IterativeProjection<F> {
    /// Builds the projection for `divergence`.
    ///
    /// # Errors
    ///
    /// - [`Error::NoGradient`] if the divergence is not differentiable.
    /// - [`Error::InvalidOrder`] for a negative or NaN Renyi order.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Divergence, Error, GeneralizedMixture, HistoryWeights};
    /// use metadistill::{IterativeProjection, MirrorDescent};
    ///
    /// let weighting = GeneralizedMixture::single_teacher(0.3, HistoryWeights::Latest)?;
    /// let tv = IterativeProjection::new(Divergence::TotalVariation, weighting, MirrorDescent::default());
    /// assert!(matches!(tv, Err(Error::NoGradient { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(
        divergence: Divergence<F>,
        weighting: GeneralizedMixture<F>,
        solver: MirrorDescent<F>,
    ) -> Result<Self> {
        let probe = [F::one()];
        add_gradient(&divergence, &probe, &probe, F::one(), &mut [F::zero()])?;
        Ok(IterativeProjection {
            divergence,
            weighting,
            solver,
            scratch: Mutex::new(SolverScratch::default()),
        })
    }

    /// Returns the divergence being projected on.
    pub fn divergence(&self) -> Divergence<F> {
        self.divergence
    }

    /// Returns the mixture that supplies the pooling weights.
    pub fn weighting(&self) -> &GeneralizedMixture<F> {
        &self.weighting
    }

    /// Returns the solver.
    pub fn solver(&self) -> MirrorDescent<F> {
        self.solver
    }
}

impl<F: Real> MetaTeacherOperator<F> for IterativeProjection<F> {
    /// Returns `a w_0`, the nominal weight on `T0`.
    fn anchor_weight(&self) -> F {
        self.weighting.anchor_weight()
    }

    /// Writes the projection, solved to the solver's tolerance.
    ///
    /// # Errors
    ///
    /// - [`Error::TeacherWeightCount`] unless there is one teacher per teacher weight.
    /// - [`Error::Empty`] if `students` is empty.
    /// - [`Error::LengthMismatch`] if a teacher or a student is not as long as `out`.
    /// - [`Error::DisjointSupports`] if the objective is infinite on every
    ///   token of the start point.
    /// - [`Error::NotConverged`] if the solver stops early.
    fn combine_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        out: ArrayViewMut1<F>,
    ) -> Result<()> {
        let mut weights = Vec::new();
        self.weighting
            .pool_weights_into(teachers, students, &mut weights)?;
        let points: Vec<_> = teachers.iter().chain(students).cloned().collect();
        let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        self.solver
            .solve_with_scratch(&self.divergence, &points, &weights, out, &mut scratch)
            .map(|_| ())
    }

    /// Returns the window of the pooling weights.
    fn history_window(&self) -> Option<usize> {
        self.weighting.history_window()
    }

    fn name(&self) -> String {
        format!(
            "IterativeProjection({}, a = {})",
            self.divergence.name(),
            self.weighting.anchor()
        )
    }
}
