//! Divergences between distributions, computed to near machine precision.
//!
//! Conventions, shared by every function here: natural logarithms (nats),
//! `0 ln 0 = 0`, a token with `q_i = 0 < p_i` makes KL-type divergences
//! `+inf` (never NaN), and no value is ever below 0.
//!
//! # Precision
//!
//! Each divergence is a sum of non-negative per-token terms computed from the
//! exact difference `q_i - p_i` and short series near `q_i = p_i`, added with
//! compensated summation (see the `terms` module). On the crate's reference
//! set (60-digit mpmath values on the exact `f64` inputs, in
//! `tests/data/reference_values.tsv`) the relative error stays below `1e-13`,
//! including pairs with `q = p (1 + d)` for `|d|` down to `1e-12` and
//! probabilities near the smallest normal `f64`, where the textbook
//! `Σ p ln(p/q)` keeps no correct digit.
//!
//! For KL the identity used is
//!
//! ```text
//! KL(p ‖ q) = Σ_{p_i>0} p_i φ(q_i/p_i) + Σ_{p_i>0} (p_i - q_i),   φ(r) = r - 1 - ln r >= 0
//! ```
//!
//! The second sum is the normalization defect; it is exact for inputs that
//! sum to 1 exactly and otherwise carries their rounding, which can make the
//! exact-input value negative by at most the defect. Such values are returned
//! as 0.

pub(crate) mod terms;

use ndarray::Array1;

use crate::batch::{DistributionBatch, check_same_shape};
use crate::distribution::{Distribution, check_same_vocabulary};
use crate::error::{Error, Result};
use crate::real::{Compact, Real, constant, to_f64};
use terms::{CompensatedSum, compensated_sum};

/// A divergence between two distributions, for operators and checkers that take one as a parameter.
///
/// `compute(p, q)` is the divergence of `q` from `p`: `p` plays the role of the
/// teacher, `q` of the model. Formulas (sums over tokens `i`):
///
/// ```text
/// KullbackLeibler          KL(p ‖ q)  = Σ p_i ln(p_i / q_i)
/// ReverseKullbackLeibler   KL(q ‖ p)
/// JensenShannon            JS(p, q)   = ½ KL(p ‖ m) + ½ KL(q ‖ m),   m = (p + q)/2,   0 <= JS <= ln 2
/// JensenShannonDistance    √JS(p, q)
/// Renyi { order: b }       D_b(p ‖ q) = ln(Σ p_i^b q_i^(1-b)) / (b - 1)
///                          b = 0: -ln Σ_{p_i>0} q_i,  b = 1: KL,  b = ∞: ln max_{p_i>0} p_i / q_i
/// TotalVariation           ½ Σ |p_i - q_i|
/// Hellinger                √(½ Σ (√p_i - √q_i)²),   in [0, 1]
/// SquaredHellinger         ½ Σ (√p_i - √q_i)²
/// ChiSquared               Σ (p_i - q_i)² / q_i   (Pearson)
/// ```
///
/// # Examples
///
/// ```
/// use metadistill::{Distribution, Divergence};
///
/// let p: Distribution = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let q = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
/// let kl = Divergence::KullbackLeibler.compute(&p, &q)?;
/// assert!((kl - 0.396058).abs() < 1e-6);
///
/// let half = Divergence::renyi(0.5)?;
/// assert!(half.compute(&p, &q)? < kl);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Divergence<F: Real = f64> {
    /// Kullback-Leibler divergence `KL(p ‖ q)`.
    KullbackLeibler,
    /// Reverse Kullback-Leibler divergence `KL(q ‖ p)`.
    ReverseKullbackLeibler,
    /// Jensen-Shannon divergence.
    JensenShannon,
    /// Jensen-Shannon distance, the square root of the divergence (a metric).
    JensenShannonDistance,
    /// Renyi divergence of a non-negative order (`F::infinity()` for the max log-ratio).
    Renyi {
        /// The order `b >= 0`; checked when the divergence is computed.
        order: F,
    },
    /// Total variation distance.
    TotalVariation,
    /// Hellinger distance.
    Hellinger,
    /// Squared Hellinger distance.
    SquaredHellinger,
    /// Pearson chi-squared divergence.
    ChiSquared,
}

impl<F: Real> Divergence<F> {
    /// Builds the Renyi divergence of order `order`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOrder`] if `order` is negative or NaN.
    pub fn renyi(order: F) -> Result<Self> {
        check_order(order)?;
        Ok(Divergence::Renyi { order })
    }

    /// Builds the Renyi divergence of order infinity, `ln max_i p_i / q_i`.
    pub fn max_log_ratio() -> Self {
        Divergence::Renyi {
            order: F::infinity(),
        }
    }

    /// Returns a short human-readable name, such as `"KL"` or `"Renyi(2)"`.
    ///
    /// A Renyi order prints with the shortest digits that read back as the
    /// same value, in exponent form outside `[1e-4, 1e16)`: `"Renyi(1e300)"`.
    pub fn name(&self) -> String {
        match self {
            Divergence::KullbackLeibler => "KL".into(),
            Divergence::ReverseKullbackLeibler => "reverse KL".into(),
            Divergence::JensenShannon => "Jensen-Shannon".into(),
            Divergence::JensenShannonDistance => "Jensen-Shannon distance".into(),
            Divergence::Renyi { order } => format!("Renyi({})", Compact(*order)),
            Divergence::TotalVariation => "total variation".into(),
            Divergence::Hellinger => "Hellinger".into(),
            Divergence::SquaredHellinger => "squared Hellinger".into(),
            Divergence::ChiSquared => "chi-squared".into(),
        }
    }

    /// Computes the divergence of `q` from `p`.
    ///
    /// # Errors
    ///
    /// - [`Error::VocabularyMismatch`] if the vocabularies differ in size.
    /// - [`Error::InvalidOrder`] for a Renyi order that is negative or NaN.
    pub fn compute(&self, p: &Distribution<F>, q: &Distribution<F>) -> Result<F> {
        check_same_vocabulary(p, q)?;
        self.compute_slices(p.as_slice(), q.as_slice())
    }

    /// Computes the divergence on two probability slices of equal length.
    pub(crate) fn compute_slices(&self, p: &[F], q: &[F]) -> Result<F> {
        Ok(match *self {
            Divergence::KullbackLeibler => kl_slices(p, q),
            Divergence::ReverseKullbackLeibler => kl_slices(q, p),
            Divergence::JensenShannon => js_slices(p, q),
            Divergence::JensenShannonDistance => js_slices(p, q).sqrt(),
            Divergence::Renyi { order } => renyi_slices(p, q, order)?,
            Divergence::TotalVariation => total_variation_slices(p, q),
            Divergence::Hellinger => squared_hellinger_slices(p, q).sqrt(),
            Divergence::SquaredHellinger => squared_hellinger_slices(p, q),
            Divergence::ChiSquared => chi_squared_slices(p, q),
        })
    }

    /// Computes the divergence of each row of `q` from the same row of `p`.
    ///
    /// KL, reverse KL and Jensen-Shannon on `f32` and `f64` run on the fused
    /// batched kernels of [`kernels`](crate::kernels), rows in parallel.
    ///
    /// # Errors
    ///
    /// - [`Error::BatchSizeMismatch`] or [`Error::VocabularyMismatch`] if the shapes differ.
    /// - [`Error::InvalidOrder`] for a Renyi order that is negative or NaN.
    ///
    /// The input weights are not used here and need not match.
    pub fn per_row(&self, p: &DistributionBatch<F>, q: &DistributionBatch<F>) -> Result<Array1<F>> {
        check_same_shape(p.probs().dim(), q.probs().dim(), "second batch")?;
        if let Divergence::Renyi { order } = *self {
            check_order(order)?;
        }
        if let Some(values) = crate::kernels::divergence_per_row(self, p, q) {
            return values;
        }
        let mut values = Array1::zeros(p.n_inputs());
        for (row, slot) in values.iter_mut().enumerate() {
            *slot = self.compute_slices(p.row_slice(row), q.row_slice(row))?;
        }
        Ok(values)
    }

    /// Computes the input-weighted expectation `E_x D(p(·|x), q(·|x))`.
    ///
    /// The weights are `p`'s input weights; `q` must carry the same ones.
    /// Inputs of weight 0 are skipped, so an infinite divergence there does not
    /// count.
    ///
    /// # Errors
    ///
    /// - [`Error::BatchSizeMismatch`] or [`Error::VocabularyMismatch`] if the shapes differ.
    /// - [`Error::InputWeightMismatch`] if the input weights differ.
    /// - [`Error::InvalidOrder`] for a Renyi order that is negative or NaN.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{DistributionBatch, Divergence};
    /// use ndarray::array;
    ///
    /// let teacher = DistributionBatch::from_probs(&array![[0.5, 0.5], [0.9, 0.1]])?;
    /// let student = DistributionBatch::from_probs(&array![[0.5, 0.5], [0.5, 0.5]])?;
    /// let d = Divergence::KullbackLeibler.expected(&teacher, &student)?;
    /// let second_row = 0.9 * (0.9_f64 / 0.5).ln() + 0.1 * (0.1_f64 / 0.5).ln();
    /// assert!((d - second_row / 2.0).abs() < 1e-15);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn expected(&self, p: &DistributionBatch<F>, q: &DistributionBatch<F>) -> Result<F> {
        p.check_compatible(q, "second batch")?;
        if let Divergence::Renyi { order } = *self {
            check_order(order)?;
        }
        if let Some(values) = crate::kernels::divergence_per_row(self, p, q) {
            let mut sum = CompensatedSum::new();
            for (&weight, &value) in p.input_weights().iter().zip(values?.iter()) {
                if weight > F::zero() {
                    sum.add(weight * value);
                }
            }
            return Ok(sum.value());
        }
        let mut sum = CompensatedSum::new();
        for (row, &weight) in p.input_weights().iter().enumerate() {
            if weight > F::zero() {
                sum.add(weight * self.compute_slices(p.row_slice(row), q.row_slice(row))?);
            }
        }
        Ok(sum.value())
    }
}

/// Checks a Renyi order.
fn check_order<F: Real>(order: F) -> Result<()> {
    if order.is_nan() || order < F::zero() {
        Err(Error::InvalidOrder {
            value: to_f64(order),
        })
    } else {
        Ok(())
    }
}

/// Computes `KL(p ‖ q)` on slices; see the module docs for the identity used.
pub(crate) fn kl_slices<F: Real>(p: &[F], q: &[F]) -> F {
    let mut phi_sum = CompensatedSum::new();
    let mut defect = CompensatedSum::new();
    for (&pi, &qi) in p.iter().zip(q) {
        let (phi_part, defect_part) = terms::kl_term(pi, qi);
        if phi_part == F::infinity() {
            return F::infinity();
        }
        phi_sum.add(phi_part);
        defect.add(defect_part);
    }
    (phi_sum.value() + defect.value()).max(F::zero())
}

/// Computes `JS(p, q)` on slices.
pub(crate) fn js_slices<F: Real>(p: &[F], q: &[F]) -> F {
    let value = compensated_sum(
        p.iter()
            .zip(q)
            .map(|(&pi, &qi)| terms::jensen_shannon_term(pi, qi)),
    );
    value.max(F::zero()).min(F::LN_2())
}

/// Computes the total variation distance on slices.
pub(crate) fn total_variation_slices<F: Real>(p: &[F], q: &[F]) -> F {
    let half = F::one() / (F::one() + F::one());
    let sum = compensated_sum(p.iter().zip(q).map(|(&pi, &qi)| (pi - qi).abs()));
    (half * sum).min(F::one())
}

/// Computes the squared Hellinger distance on slices.
pub(crate) fn squared_hellinger_slices<F: Real>(p: &[F], q: &[F]) -> F {
    let sum = compensated_sum(
        p.iter()
            .zip(q)
            .map(|(&pi, &qi)| terms::squared_hellinger_term(pi, qi)),
    );
    sum.min(F::one())
}

/// Computes the Pearson chi-squared divergence on slices.
pub(crate) fn chi_squared_slices<F: Real>(p: &[F], q: &[F]) -> F {
    let mut sum = CompensatedSum::new();
    for (&pi, &qi) in p.iter().zip(q) {
        let term = terms::chi_squared_term(pi, qi);
        if term == F::infinity() {
            return F::infinity();
        }
        sum.add(term);
    }
    sum.value().max(F::zero())
}

/// Computes `ln max_{p_i>0} p_i / q_i` on slices, clamped at 0.
pub(crate) fn max_log_ratio_slices<F: Real>(p: &[F], q: &[F]) -> F {
    let mut max = F::neg_infinity();
    for (&pi, &qi) in p.iter().zip(q) {
        if pi > F::zero() {
            max = max.max(terms::log_ratio(pi, qi));
        }
    }
    max.max(F::zero())
}

/// Computes the Renyi divergence of order `order` on slices.
///
/// Orders 0, 1 and infinity use their limits. Other orders write
/// `Σ p^b q^(1-b) - 1` as the normalization defects plus `Σ p g(x)` with
/// `x = q/p - 1`, `c = 1 - b` and `g(x) = (1 + x)^c - 1 - c x`, whose terms all
/// share one sign; when a ratio overflows that form, it falls back to a
/// log-sum-exp of `ln p_i + c ln(q_i/p_i)`.
pub(crate) fn renyi_slices<F: Real>(p: &[F], q: &[F], order: F) -> Result<F> {
    check_order(order)?;
    if order.is_zero() {
        let support_mass = compensated_sum(
            p.iter()
                .zip(q)
                .filter(|&(&pi, _)| pi > F::zero())
                .map(|(_, &qi)| qi),
        );
        return Ok((-support_mass.ln()).max(F::zero()));
    }
    if order == F::one() {
        return Ok(kl_slices(p, q));
    }
    if order == F::infinity() {
        return Ok(max_log_ratio_slices(p, q));
    }

    let c = F::one() - order;
    // The expansion below cancels terms of size |c| |q - p|, so it keeps no
    // digits once |c| ε is not small: at b = 1.6e144 and q = p(1 - ε) it gave
    // S - 1 <= -1 and returned +inf for a divergence near 0.
    if c.abs() * F::epsilon() > constant(1e-3) {
        return Ok(renyi_log_sum_exp(p, q, order));
    }
    let mut p_sum = CompensatedSum::new();
    let mut q_minus_p = CompensatedSum::new();
    let mut remainder = CompensatedSum::new();
    for (&pi, &qi) in p.iter().zip(q) {
        if pi.is_zero() {
            continue;
        }
        if qi.is_zero() && c < F::zero() {
            return Ok(F::infinity());
        }
        p_sum.add(pi);
        q_minus_p.add(qi - pi);
        let x = (qi - pi) / pi;
        let g = terms::binomial_remainder(x, c);
        if !g.is_finite() {
            return Ok(renyi_log_sum_exp(p, q, order));
        }
        remainder.add(pi * g);
    }

    let defect = (p_sum.value() - F::one()) + c * q_minus_p.value();
    let s_minus_one = defect + remainder.value();
    if !s_minus_one.is_finite() {
        return Ok(renyi_log_sum_exp(p, q, order));
    }
    if s_minus_one <= -F::one() {
        // The supports do not overlap: the order lies in (0, 1) and Σ p^b q^(1-b) = 0.
        return Ok(F::infinity());
    }
    Ok((s_minus_one.ln_1p() / (order - F::one())).max(F::zero()))
}

/// Computes the Renyi divergence in log space, centred on the max log-ratio.
///
/// ```text
/// D_b(p ‖ q) = M + ln Σ_i p_i exp((b - 1)(r_i - M)) / (b - 1),   r_i = ln(p_i / q_i),   M = max_i r_i
/// ```
///
/// Every exponent is at most `ln p_i <= 0` for `b > 1`, so neither `b - 1`
/// nor `(b - 1) r_i` is ever formed on its own and huge finite orders, up to
/// `F::MAX`, converge to `M`. For `b < 1` the tokens with `q_i = 0` add 0 to
/// the sum and are skipped.
fn renyi_log_sum_exp<F: Real>(p: &[F], q: &[F], order: F) -> F {
    let b_minus_one = order - F::one();
    let log_ratios: Vec<(F, F)> = p
        .iter()
        .zip(q)
        .filter(|&(&pi, &qi)| pi > F::zero() && (qi > F::zero() || b_minus_one > F::zero()))
        .map(|(&pi, &qi)| (pi, terms::log_ratio(pi, qi)))
        .collect();
    let max_ratio = log_ratios
        .iter()
        .map(|&(_, r)| r)
        .fold(F::neg_infinity(), F::max);
    if !max_ratio.is_finite() {
        // +inf: some q_i = 0 < p_i with b > 1. -inf: the supports do not overlap.
        return F::infinity();
    }
    let exponents: Vec<F> = log_ratios
        .iter()
        .map(|&(pi, r)| pi.ln() + b_minus_one * (r - max_ratio))
        .collect();
    let max = exponents.iter().copied().fold(F::neg_infinity(), F::max);
    let sum = compensated_sum(exponents.iter().map(|&e| (e - max).exp()));
    (max_ratio + (max + sum.ln()) / b_minus_one).max(F::zero())
}

/// Computes the Kullback-Leibler divergence `KL(p ‖ q) = Σ p_i ln(p_i / q_i)` in nats.
///
/// `0 ln 0 = 0`; `q_i = 0 < p_i` gives `+inf`. Accurate to about `1e-13`
/// relative error even when `q` is within `1e-12` of `p` (see the module docs).
///
/// # Errors
///
/// [`Error::VocabularyMismatch`] if the vocabularies differ in size.
///
/// # Examples
///
/// ```
/// use metadistill::{Distribution, divergence::kl};
///
/// let teacher: Distribution = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let student = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
/// assert!((kl(&teacher, &student)? - 0.396058).abs() < 1e-6);
/// assert_eq!(kl(&teacher, &teacher)?, 0.0);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn kl<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Result<F> {
    Divergence::KullbackLeibler.compute(p, q)
}

/// Computes the reverse Kullback-Leibler divergence `KL(q ‖ p)` in nats.
///
/// # Errors
///
/// [`Error::VocabularyMismatch`] if the vocabularies differ in size.
pub fn reverse_kl<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Result<F> {
    Divergence::ReverseKullbackLeibler.compute(p, q)
}

/// Computes the Jensen-Shannon divergence in nats, which lies in `[0, ln 2]`.
///
/// ```text
/// JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m),   m = (p + q)/2
/// ```
///
/// # Errors
///
/// [`Error::VocabularyMismatch`] if the vocabularies differ in size.
///
/// # Examples
///
/// ```
/// use metadistill::{Distribution, divergence::js};
///
/// let a = Distribution::from_probs(&[1.0, 0.0])?;
/// let b = Distribution::from_probs(&[0.0, 1.0])?;
/// assert!((js(&a, &b)? - 2.0_f64.ln()).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn js<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Result<F> {
    Divergence::JensenShannon.compute(p, q)
}

/// Computes the Jensen-Shannon distance `√JS(p, q)`, a metric.
///
/// # Errors
///
/// [`Error::VocabularyMismatch`] if the vocabularies differ in size.
pub fn js_distance<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Result<F> {
    Divergence::JensenShannonDistance.compute(p, q)
}

/// Computes the Renyi divergence of order `order >= 0` in nats.
///
/// ```text
/// D_b(p ‖ q) = ln(Σ p_i^b q_i^(1-b)) / (b - 1)
/// ```
///
/// Order 0 gives `-ln Σ_{p_i>0} q_i`, order 1 the KL divergence and order
/// `+inf` the max log-ratio `ln max_i p_i / q_i`.
///
/// # Errors
///
/// - [`Error::VocabularyMismatch`] if the vocabularies differ in size.
/// - [`Error::InvalidOrder`] if `order` is negative or NaN.
///
/// # Examples
///
/// ```
/// use metadistill::{Distribution, divergence::{kl, renyi}};
///
/// let p = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let q = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
/// assert!(renyi(&p, &q, 0.5)? <= kl(&p, &q)?);
/// assert!(renyi(&p, &q, 2.0)? >= kl(&p, &q)?);
/// assert!((renyi(&p, &q, f64::INFINITY)? - 3.0_f64.ln()).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn renyi<F: Real>(p: &Distribution<F>, q: &Distribution<F>, order: F) -> Result<F> {
    Divergence::Renyi { order }.compute(p, q)
}

/// Computes the max log-ratio `ln max_{p_i>0} p_i / q_i`, the Renyi divergence of order infinity.
///
/// # Errors
///
/// [`Error::VocabularyMismatch`] if the vocabularies differ in size.
pub fn max_log_ratio<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Result<F> {
    Divergence::max_log_ratio().compute(p, q)
}

/// Computes the total variation distance `½ Σ |p_i - q_i|`, in `[0, 1]`.
///
/// # Errors
///
/// [`Error::VocabularyMismatch`] if the vocabularies differ in size.
pub fn total_variation<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Result<F> {
    Divergence::TotalVariation.compute(p, q)
}

/// Computes the Hellinger distance `√(½ Σ (√p_i - √q_i)²)`, in `[0, 1]`.
///
/// # Errors
///
/// [`Error::VocabularyMismatch`] if the vocabularies differ in size.
pub fn hellinger<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Result<F> {
    Divergence::Hellinger.compute(p, q)
}

/// Computes the squared Hellinger distance `½ Σ (√p_i - √q_i)²`.
///
/// # Errors
///
/// [`Error::VocabularyMismatch`] if the vocabularies differ in size.
pub fn squared_hellinger<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Result<F> {
    Divergence::SquaredHellinger.compute(p, q)
}

/// Computes the Pearson chi-squared divergence `Σ (p_i - q_i)² / q_i`.
///
/// `+inf` where some `q_i = 0 < p_i`.
///
/// # Errors
///
/// [`Error::VocabularyMismatch`] if the vocabularies differ in size.
pub fn chi_squared<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Result<F> {
    Divergence::ChiSquared.compute(p, q)
}

/// Computes the paper's distance `D(M) = E_x KL(T0(·|x) ‖ M(·|x))` over a batch.
///
/// The expectation uses the teacher's input weights.
///
/// # Errors
///
/// As [`Divergence::expected`].
///
/// # Examples
///
/// ```
/// use metadistill::{DistributionBatch, divergence::expected_kl};
/// use ndarray::array;
///
/// let teacher: DistributionBatch = DistributionBatch::from_probs(&array![[0.6, 0.3, 0.1]])?;
/// let student = DistributionBatch::from_probs(&array![[0.2, 0.5, 0.3]])?;
/// assert!((expected_kl(&teacher, &student)? - 0.396058).abs() < 1e-6);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn expected_kl<F: Real>(
    teacher: &DistributionBatch<F>,
    model: &DistributionBatch<F>,
) -> Result<F> {
    Divergence::KullbackLeibler.expected(teacher, model)
}
