//! Closed-form information projections: weighted power means of distributions.
//!
//! For weights `w_k` and distributions `p_k`, the projection
//! `q = argmin_q Σ_k w_k D(p_k, q)` over the simplex has a closed form for
//! every Amari alpha-divergence: the normalized weighted power mean
//!
//! ```text
//! q_i ∝ M_b(p_{·,i}) = (Σ_k w_k p_{k,i}^b)^(1/b),   M_0 = Π_k p_{k,i}^{w_k}
//! ```
//!
//! Setting the derivative of the Lagrangian to zero gives
//! `q_i^(-b) Σ_k w_k p_{k,i}^b = const`, hence the power mean. The named
//! divergences are the orders
//!
//! ```text
//! forward KL     Σ w_k KL(p_k ‖ q)               b = 1    arithmetic mean
//! reverse KL     Σ w_k KL(q ‖ p_k)               b = 0    normalized geometric mean
//! sq. Hellinger  Σ w_k ½ Σ_i (√p_ki - √q_i)²     b = 1/2  normalized (Σ w_k √p_k)²
//! Pearson χ²     Σ w_k Σ_i (p_ki - q_i)² / q_i   b = 2    normalized √(Σ w_k p_k²)
//! ```
//!
//! Renyi divergences are not in this family: their projections are not power means.

use ndarray::{ArrayView1, ArrayViewMut1, Zip};

use crate::distribution::{Distribution, check_same_vocabulary};
use crate::divergence::renyi_slices;
use crate::divergence::terms::{CompensatedSum, compensated_sum, log_ratio};
use crate::error::{Error, Result};
use crate::operator::{
    GeneralizedMixture, HistoryWeights, MetaTeacherOperator, check_input_vector,
};
use crate::real::{Compact, Real, constant, default_sum_tolerance, to_f64};

/// A divergence whose information projection is a closed-form power mean.
///
/// See the module docs for the formulas.
///
/// # Examples
///
/// ```
/// use metadistill::{Distribution, PowerMeanProjection, Weights};
///
/// let points: [Distribution; 2] = [
///     Distribution::from_probs(&[0.9, 0.1])?,
///     Distribution::from_probs(&[0.1, 0.9])?,
/// ];
/// let w = Weights::uniform(2)?;
/// let q = PowerMeanProjection::ReverseKl.project(&points, &w)?;
/// assert!((q.probs()[0] - 0.5).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum PowerMeanProjection<F: Real = f64> {
    /// `Σ w_k KL(p_k ‖ q)`: the arithmetic mean (order 1).
    ForwardKl,
    /// `Σ w_k KL(q ‖ p_k)`: the normalized geometric mean, or log-linear pool (order 0).
    ReverseKl,
    /// `Σ w_k H²(p_k, q)`: the normalized `(Σ w_k √p_k)²` (order 1/2).
    SquaredHellinger,
    /// `Σ w_k χ²(p_k ‖ q)`: the normalized `√(Σ w_k p_k²)` (order 2).
    ChiSquared,
    /// `Σ w_k A_b(p_k ‖ q)` for the Amari alpha-divergence of order `b`; see [`amari_alpha`].
    Amari {
        /// The order `b`, any finite number.
        order: F,
    },
}

impl<F: Real> PowerMeanProjection<F> {
    /// Returns the order `b` of the power mean.
    pub fn order(&self) -> F {
        match *self {
            PowerMeanProjection::ForwardKl => F::one(),
            PowerMeanProjection::ReverseKl => F::zero(),
            PowerMeanProjection::SquaredHellinger => constant(0.5),
            PowerMeanProjection::ChiSquared => constant(2.0),
            PowerMeanProjection::Amari { order } => order,
        }
    }

    /// Computes the projection of the points `p_k` with weights `w_k`.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if `points` is empty.
    /// - [`Error::VocabularyMismatch`] if the points differ in size.
    /// - [`Error::LengthMismatch`] if `weights` has another length than `points`.
    /// - [`Error::InvalidParameter`] if the Amari order is not finite.
    /// - [`Error::DisjointSupports`] if the mean is 0 on every token.
    pub fn project(
        &self,
        points: &[Distribution<F>],
        weights: &crate::Weights<F>,
    ) -> Result<Distribution<F>> {
        let first = points.first().ok_or(Error::Empty {
            what: "list of points to project",
        })?;
        for point in points {
            check_same_vocabulary(first, point)?;
        }
        let views: Vec<_> = points.iter().map(Distribution::probs).collect();
        let mut out = ndarray::Array1::zeros(first.len());
        write_power_mean(self.order(), &views, weights.as_slice(), out.view_mut())?;
        Ok(Distribution::from_valid(out))
    }
}

/// Writes the normalized weighted power mean of order `order` into `out`.
///
/// ```text
/// out_i = M_b(i) / Σ_j M_b(j),   M_b(i) = (Σ_k w_k p_{k,i}^b)^(1/b),   M_0(i) = Π_k p_{k,i}^{w_k}
/// ```
///
/// Order 1 is summed directly and not renormalized. Every other order is
/// computed in log space, `ln M_b(i) = (1/b) ln Σ_k exp(ln w_k + b ln p_{k,i})`
/// with a log-sum-exp, so products of many small probabilities neither
/// underflow nor overflow. Points of weight 0 are skipped. A zero `p_{k,i}`
/// makes `M_b(i) = 0` for `b <= 0`.
///
/// Cost: `O(K V)` time for `K` points, one logarithm and exponential per
/// entry for orders other than 1, no allocation.
///
/// # Errors
///
/// - [`Error::Empty`] if `points` is empty.
/// - [`Error::LengthMismatch`] if `weights` and `points` differ in length or a
///   point differs in length from `out`.
/// - [`Error::InvalidWeight`] for a negative or non-finite weight.
/// - [`Error::WeightsNotNormalized`] if the weights do not sum to 1.
/// - [`Error::InvalidInputVector`] naming `point k` if a point is not a
///   probability vector within [`default_sum_tolerance`](crate::default_sum_tolerance),
///   wrapping [`Error::Empty`] (for an empty `out`), [`Error::NonFiniteProbability`],
///   [`Error::NegativeProbability`] or [`Error::NotNormalized`].
/// - [`Error::InvalidParameter`] if `order` is not finite.
/// - [`Error::DisjointSupports`] if the mean is 0 on every token.
///
/// # Examples
///
/// ```
/// use metadistill::power_mean_into;
/// use ndarray::{Array1, array};
///
/// let p = array![0.64f64, 0.36];
/// let q = array![1.0, 0.0];
/// let mut out = Array1::zeros(2);
/// power_mean_into(0.5, &[p.view(), q.view()], &[0.5, 0.5], out.view_mut())?;
/// // (0.5 · 0.8 + 0.5 · 1)² = 0.81 and (0.5 · 0.6 + 0)² = 0.09, normalized.
/// assert!((out[0] - 0.9).abs() < 1e-14);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn power_mean_into<F: Real>(
    order: F,
    points: &[ArrayView1<F>],
    weights: &[F],
    out: ArrayViewMut1<F>,
) -> Result<()> {
    check_pool(points, weights, out.len())?;
    for (position, point) in points.iter().enumerate() {
        check_input_vector(&format!("point {position}"), *point)?;
    }
    write_power_mean(order, points, weights, out)
}

/// Writes the power mean of points that are already known to be distributions.
pub(crate) fn write_power_mean<F: Real>(
    order: F,
    points: &[ArrayView1<F>],
    weights: &[F],
    mut out: ArrayViewMut1<F>,
) -> Result<()> {
    check_pool(points, weights, out.len())?;
    if !order.is_finite() {
        return Err(Error::InvalidParameter {
            name: "power mean order",
            value: to_f64(order),
            requirement: "finite",
        });
    }

    if order == F::one() {
        out.fill(F::zero());
        for (point, &weight) in points.iter().zip(weights) {
            if weight > F::zero() {
                Zip::from(&mut out)
                    .and(point)
                    .for_each(|q, &p| *q = *q + weight * p);
            }
        }
        return Ok(());
    }

    let mut max = F::neg_infinity();
    for (token, slot) in out.iter_mut().enumerate() {
        *slot = log_power_mean(order, points, weights, token);
        max = max.max(*slot);
    }
    // NOTE: a positive order below about 1e3 / F::MAX (3e-36 in f32) also ends
    // here when no token is positive under every point. Then ln M_b(i) is about
    // ln W_i / b, with W_i the weight of the points positive at i, which
    // overflows to -inf on every token.
    if max == F::neg_infinity() {
        return Err(Error::DisjointSupports {
            what: format!("power mean of order {}", Compact(order)),
        });
    }

    out.mapv_inplace(|l| (l - max).exp());
    let sum = compensated_sum(out.iter().copied());
    out.mapv_inplace(|q| q / sum);
    Ok(())
}

/// Computes `ln M_b` at one token.
fn log_power_mean<F: Real>(order: F, points: &[ArrayView1<F>], weights: &[F], token: usize) -> F {
    let active = || {
        points
            .iter()
            .zip(weights)
            .filter(|&(_, &w)| w > F::zero())
            .map(move |(p, &w)| (p[token], w))
    };
    if order.is_zero() {
        let mut sum = CompensatedSum::new();
        for (p, w) in active() {
            if p.is_zero() {
                return F::neg_infinity();
            }
            sum.add(w * p.ln());
        }
        return sum.value();
    }

    let centre = log_centre(order, active().map(|(p, _)| p));
    if !centre.is_finite() {
        // b > 0: every point is 0 at this token. b < 0: one point is 0, so the mean is 0.
        return F::neg_infinity();
    }
    if order.abs() < constant(SMALL_ORDER) {
        return log_power_mean_small_order(order, centre, active);
    }

    // Log-sum-exp of ln w_k + b (ln p_k - c). Every b (ln p_k - c) is at most
    // 0, while b ln p_k alone overflows for huge |b| (b = -1.8e308 at p = 0.1)
    // and made the mean 0 where no point is 0. A zero p_k (b > 0) gives -inf.
    let exponent = |(p, w): (F, F)| w.ln() + order * (p.ln() - centre);
    let max = active().map(exponent).fold(F::neg_infinity(), F::max);
    let sum = compensated_sum(active().map(|pair| (exponent(pair) - max).exp()));
    centre + (max + sum.ln()) / order
}

/// Returns the centre `c` of the power mean of order `b` at one token: the
/// largest `ln p_k` for `b > 0`, the smallest for `b < 0`.
///
/// With it every `b (ln p_k - c)` is at most 0. It is `-inf` when every point
/// is 0 (`b > 0`) or some point is 0 (`b < 0`), and then so is `ln M_b`.
fn log_centre<F: Real>(order: F, values: impl Iterator<Item = F>) -> F {
    let logs = values.map(F::ln);
    if order > F::zero() {
        logs.fold(F::neg_infinity(), F::max)
    } else {
        logs.fold(F::infinity(), F::min)
    }
}

/// The order below which power means and Amari divergences use `expm1(b ln x)` forms.
///
/// Below it `|b ln x| <= 745 / 8 < 94` for every positive `f64` and `f32`, so
/// `exp(b ln x)` cannot overflow, while `1 - b` and `x^b` would round the
/// order away once `|b|` is below the machine epsilon.
const SMALL_ORDER: f64 = 0.125;

/// Computes `ln M_b` for `0 < |b| < 1/8` as `c + ln(1 + Σ_k w_k expm1(b (ln p_k - c)) / W) / b`.
///
/// `W = Σ_k w_k`, and `c` is the finite centre from [`log_centre`], so every
/// `b (ln p_k - c)` is at most 0 and every `expm1` term has the same sign: the
/// sum has no cancellation, and equal points give exactly `ln p`. Without the
/// centre, `expm1(b ln p)` lies near -1 for tiny `p` (`b ln p = -30` at
/// `b = 0.1`, `p = 1e-132`), and `ln_1p` of it kept only three digits of the
/// mean. The result tends to the geometric mean `Σ_k w_k ln p_k / W` as `b -> 0`.
fn log_power_mean_small_order<F: Real, I: Iterator<Item = (F, F)>>(
    order: F,
    centre: F,
    active: impl Fn() -> I,
) -> F {
    let total_weight = compensated_sum(active().map(|(_, w)| w));
    let terms = active().map(|(p, w)| w * (order * (p.ln() - centre)).exp_m1());
    let sum = compensated_sum(terms);
    centre + (sum / total_weight).ln_1p() / order
}

/// Checks the pooled points and weights against each other and the output length.
pub(crate) fn check_pool<F: Real>(
    points: &[ArrayView1<F>],
    weights: &[F],
    len: usize,
) -> Result<()> {
    if points.is_empty() {
        return Err(Error::Empty {
            what: "list of points to project",
        });
    }
    if weights.len() != points.len() {
        return Err(Error::LengthMismatch {
            what: "weight vector",
            expected: points.len(),
            found: weights.len(),
        });
    }
    for point in points {
        if point.len() != len {
            return Err(Error::LengthMismatch {
                what: "point",
                expected: len,
                found: point.len(),
            });
        }
    }
    for (index, &weight) in weights.iter().enumerate() {
        if !weight.is_finite() || weight < F::zero() {
            return Err(Error::InvalidWeight {
                what: "projection weight",
                index,
                value: to_f64(weight),
            });
        }
    }
    let sum = compensated_sum(weights.iter().copied());
    let tolerance = default_sum_tolerance::<F>(weights.len());
    if (sum - F::one()).abs() > tolerance {
        return Err(Error::WeightsNotNormalized {
            what: "projection weight",
            sum: to_f64(sum),
            tolerance: to_f64(tolerance),
        });
    }
    Ok(())
}

/// Computes the Amari alpha-divergence of order `b` of `q` from `p`.
///
/// ```text
/// A_b(p ‖ q) = (1 - Σ_i p_i^b q_i^(1-b)) / (b (1 - b)),   A_1 = KL(p ‖ q),   A_0 = KL(q ‖ p)
/// ```
///
/// Order 1/2 is `4 H²(p, q)` and order 2 is `½ χ²(p ‖ q)`. The sum is taken
/// from the accurate Renyi divergence, `Σ p^b q^(1-b) = exp((b - 1) D_b(p ‖ q))`
/// (for `b < 0` the roles swap and `D_{1-b}(q ‖ p)` is used), and
/// `1 - exp(x)` as `-expm1(x)`, so values near 0 keep their digits.
///
/// # Errors
///
/// - [`Error::VocabularyMismatch`] if the vocabularies differ in size.
/// - [`Error::InvalidParameter`] if `order` is not finite.
///
/// # Examples
///
/// ```
/// use metadistill::{Distribution, amari_alpha, divergence::chi_squared};
///
/// let p: Distribution = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let q = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
/// let half_chi = chi_squared(&p, &q)? / 2.0;
/// assert!((amari_alpha(&p, &q, 2.0)? - half_chi).abs() < 1e-14);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn amari_alpha<F: Real>(p: &Distribution<F>, q: &Distribution<F>, order: F) -> Result<F> {
    check_same_vocabulary(p, q)?;
    amari_alpha_slices(p.as_slice(), q.as_slice(), order)
}

/// Computes the Amari alpha-divergence on slices.
pub(crate) fn amari_alpha_slices<F: Real>(p: &[F], q: &[F], order: F) -> Result<F> {
    if !order.is_finite() {
        return Err(Error::InvalidParameter {
            name: "Amari order",
            value: to_f64(order),
            requirement: "finite",
        });
    }
    if order == F::one() {
        return renyi_slices(p, q, F::one());
    }
    if order.is_zero() {
        return renyi_slices(q, p, F::one());
    }

    if order.abs() < constant(SMALL_ORDER) {
        // Σ p^b q^(1-b) - 1 = Σ q_i expm1(b ln(p_i/q_i)) for normalized q; 1 - b and
        // p^b would round the order away once |b| is below the machine epsilon.
        let mut sum = CompensatedSum::new();
        for (&pi, &qi) in p.iter().zip(q) {
            if qi > F::zero() {
                sum.add(qi * (order * log_ratio(pi, qi)).exp_m1());
            }
        }
        let sum = sum.value();
        if sum == F::infinity() {
            return Ok(F::infinity());
        }
        return Ok((-(sum / order) / (F::one() - order)).max(F::zero()));
    }

    // ln Σ p^b q^(1-b): from D_b(p ‖ q) for b > 0, from D_{1-b}(q ‖ p) for b < 0.
    let log_sum = if order > F::zero() {
        (order - F::one()) * renyi_slices(p, q, order)?
    } else {
        -order * renyi_slices(q, p, F::one() - order)?
    };
    let numerator = -log_sum.exp_m1();
    if numerator == F::neg_infinity() {
        // The sum overflows, which needs b > 1 or b < 0, where b (1 - b) < 0.
        return Ok(F::infinity());
    }
    // Divide in two steps so that b (1 - b) does not overflow for huge |b|.
    Ok((numerator / order / (F::one() - order)).max(F::zero()))
}

/// The information projection of the teachers and the weighted student history.
///
/// ```text
/// q_g = argmin_q  a Σ_k w_k D(T_k, q) + (1 - a) Σ_j v_j D(S_{g-j}, q)
/// ```
///
/// for a divergence `D` with a closed-form projection ([`PowerMeanProjection`]);
/// the weights `a`, `w_k` and `v_j` come from a [`GeneralizedMixture`]. The
/// reverse-KL case is the geometric (log-linear) pool `q ∝ T0^a S_g^(1-a)`.
///
/// - Declared anchor weight: `a w_0`, as for the mixture. Pointwise anchoring
///   always holds for forward KL (order 1, the mixture itself). For orders
///   below 1 the normalization can push `a*(q; T0)` below `a`; for the
///   geometric pool `a* -> 0` as some `S_i / T0_i -> 0`. For orders above 1
///   with one teacher and the latest student it anchors pointwise exactly when `a <= 1/2`
///   ([`OperatorProperties::anchors_pointwise`](crate::OperatorProperties::anchors_pointwise)
///   gives the general condition).
/// - Contraction, one teacher: factor `1 - a` for orders `0 <= b <= 1`. For the
///   geometric pool `KL(T0 ‖ q) = (1 - a) KL(T0 ‖ S_g) + ln Z` with
///   `Z = Σ T0^a S_g^(1-a) <= 1` (Holder); other orders in `[0, 1]` lie
///   between the geometric and the arithmetic mean, which gives the same bound.
///   No factor is proven for other orders, and chi-squared exceeds `1 - a` on
///   some inputs.
/// - Fixed point: the normalized power mean of the teachers alone (so `T0`
///   with one teacher). Substituting `q ∝ M_b(T)` into the pool gives
///   `(a M_b^b + (1 - a) c^b M_b^b)^(1/b) ∝ M_b`, so it is fixed.
/// - Cost per input: `O((k + m) V)` time, one logarithm and exponential per
///   entry for orders other than 1, no allocation of size `V`.
///
/// # Examples
///
/// ```
/// use metadistill::{Distribution, InformationProjection, MetaTeacherOperator};
/// use metadistill::divergence::kl;
///
/// let teacher = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let student = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
/// let q = InformationProjection::geometric(0.3)?.build(&[teacher.clone()], &[student.clone()])?;
/// assert!(kl(&teacher, &q)? <= 0.7 * kl(&teacher, &student)?);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct InformationProjection<F: Real = f64> {
    projection: PowerMeanProjection<F>,
    weighting: GeneralizedMixture<F>,
}

impl<F: Real> InformationProjection<F> {
    /// Builds the projection with the pooling weights of `weighting`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if the Amari order is not finite.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{GeneralizedMixture, HistoryWeights, InformationProjection};
    /// use metadistill::{OperatorProperties, PowerMeanProjection, Weights};
    ///
    /// let weighting = GeneralizedMixture::new(0.5, Weights::new(&[0.5, 0.5])?, HistoryWeights::Latest)?;
    /// let pool = InformationProjection::new(PowerMeanProjection::SquaredHellinger, weighting)?;
    /// assert!(!pool.anchors_pointwise());
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn new(
        projection: PowerMeanProjection<F>,
        weighting: GeneralizedMixture<F>,
    ) -> Result<Self> {
        let order = projection.order();
        if !order.is_finite() {
            return Err(Error::InvalidParameter {
                name: "Amari order",
                value: to_f64(order),
                requirement: "finite",
            });
        }
        Ok(InformationProjection {
            projection,
            weighting,
        })
    }

    /// Builds the geometric pool `q ∝ T0^a S_g^(1-a)` of one teacher and the latest student.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAnchorWeight`] if `anchor` is not in `(0, 1]`.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Error, InformationProjection, OperatorProperties};
    ///
    /// assert_eq!(InformationProjection::geometric(0.3)?.contraction_factor(), Some(0.7));
    /// let bad = InformationProjection::<f64>::geometric(1.5);
    /// assert!(matches!(bad, Err(Error::InvalidAnchorWeight { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn geometric(anchor: F) -> Result<Self> {
        Self::single_teacher(PowerMeanProjection::ReverseKl, anchor)
    }

    /// Builds the projection of one teacher (weight `a`) and the latest student.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidAnchorWeight`] if `anchor` is not in `(0, 1]`.
    /// - [`Error::InvalidParameter`] if the Amari order is not finite.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Distribution, InformationProjection, MetaTeacherOperator, PowerMeanProjection};
    ///
    /// let teacher: Distribution = Distribution::from_probs(&[1.0, 0.0])?;
    /// let student = Distribution::from_probs(&[0.0, 1.0])?;
    /// let chi = InformationProjection::single_teacher(PowerMeanProjection::ChiSquared, 0.5)?;
    /// // √(0.5 · 1²) on each token, normalized.
    /// assert!((chi.build(&[teacher], &[student])?.probs()[0] - 0.5).abs() < 1e-15);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn single_teacher(projection: PowerMeanProjection<F>, anchor: F) -> Result<Self> {
        let weighting = GeneralizedMixture::single_teacher(anchor, HistoryWeights::Latest)?;
        Self::new(projection, weighting)
    }

    /// Returns the divergence being projected on.
    pub fn projection(&self) -> PowerMeanProjection<F> {
        self.projection
    }

    /// Returns the mixture that supplies the pooling weights.
    pub fn weighting(&self) -> &GeneralizedMixture<F> {
        &self.weighting
    }
}

impl<F: Real> MetaTeacherOperator<F> for InformationProjection<F> {
    /// Returns `a w_0`, the nominal weight on `T0`.
    fn anchor_weight(&self) -> F {
        self.weighting.anchor_weight()
    }

    /// Writes the power mean of the teachers and students with the pooling weights.
    ///
    /// # Errors
    ///
    /// - [`Error::TeacherWeightCount`] unless there is one teacher per teacher weight.
    /// - [`Error::Empty`] if `students` is empty.
    /// - [`Error::LengthMismatch`] if a teacher or a student is not as long as `out`.
    /// - [`Error::DisjointSupports`] if the pool is 0 on every token.
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
        write_power_mean(self.projection.order(), &points, &weights, out)
    }

    /// Returns the window of the pooling weights.
    fn history_window(&self) -> Option<usize> {
        self.weighting.history_window()
    }

    fn name(&self) -> String {
        format!(
            "InformationProjection(order {}, a = {})",
            Compact(self.projection.order()),
            Compact(self.weighting.anchor())
        )
    }
}
