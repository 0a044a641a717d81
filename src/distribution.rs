//! `Distribution`: one probability vector over a finite vocabulary.

use approx::{AbsDiffEq, RelativeEq, UlpsEq};
use ndarray::{Array1, ArrayView1};

use crate::divergence::terms::compensated_sum;
use crate::error::{Error, Result};
use crate::real::{Real, default_sum_tolerance, to_f64};

/// A probability distribution over a vocabulary of `V >= 1` tokens.
///
/// A `Distribution` is valid by construction: every entry is finite and
/// non-negative and the entries sum to 1 within a tolerance (by default
/// [`default_sum_tolerance`]). Zero entries are allowed; the paper's positivity
/// assumption is available as [`Distribution::is_strictly_positive`]. The
/// constructors never renormalize silently: probabilities are stored as given,
/// and only [`Distribution::from_weights`] and [`Distribution::from_logits`]
/// normalize, because that is their job.
///
/// The log-probabilities are stored next to the probabilities. For a
/// distribution built from logits they come straight from the log-softmax, so
/// they stay finite where a probability underflows to 0.
///
/// Conventions: natural logarithms unless a function says bits, `0 ln 0 = 0`.
///
/// # Examples
///
/// ```
/// use metadistill::Distribution;
///
/// let teacher: Distribution = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// assert_eq!(teacher.len(), 3);
/// assert!(teacher.is_strictly_positive());
/// assert!((teacher.entropy() - 0.897945).abs() < 1e-6);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution<F: Real = f64> {
    probs: Array1<F>,
    log_probs: Array1<F>,
}

/// Checks that `probs` is a probability vector within `tolerance` of sum 1.
pub(crate) fn validate_probs<F: Real>(probs: ArrayView1<F>, tolerance: F) -> Result<()> {
    if probs.is_empty() {
        return Err(Error::Empty {
            what: "probability vector",
        });
    }
    for (index, &value) in probs.iter().enumerate() {
        if !value.is_finite() {
            return Err(Error::NonFiniteProbability {
                index,
                value: to_f64(value),
            });
        }
        if value < F::zero() {
            return Err(Error::NegativeProbability {
                index,
                value: to_f64(value),
            });
        }
    }

    let sum = compensated_sum(probs.iter().copied());
    if (sum - F::one()).abs() > tolerance {
        return Err(Error::NotNormalized {
            sum: to_f64(sum),
            tolerance: to_f64(tolerance),
        });
    }
    Ok(())
}

/// Returns `value` with a negative zero replaced by `+0.0`, and every other value unchanged.
///
/// The constructors store `-0.0` as `+0.0`. The two compare equal, so checks
/// and divergences treat them alike, but the sign bit would print as `-0` and
/// turn `1/p` into `-inf`.
pub(crate) fn positive_zero<F: Real>(value: F) -> F {
    if value.is_zero() { F::zero() } else { value }
}

/// Checks a user-supplied tolerance on the sum of probabilities.
pub(crate) fn validate_tolerance<F: Real>(tolerance: F) -> Result<()> {
    let max = F::from(crate::real::MAX_SUM_TOLERANCE).unwrap_or_else(F::zero);
    if tolerance >= F::zero() && tolerance <= max {
        Ok(())
    } else {
        Err(Error::InvalidTolerance {
            value: to_f64(tolerance),
        })
    }
}

/// Checks that `count` values of `F` fit in one allocation of at most `isize::MAX` bytes.
///
/// `count` is `None` when computing it overflowed. Larger requests make
/// ndarray and `Vec` panic with a capacity overflow, so they are rejected
/// here. `name` and `value` describe the offending size in the error.
pub(crate) fn check_element_count<F: Real>(
    count: Option<usize>,
    name: &'static str,
    value: usize,
) -> Result<()> {
    let limit = isize::MAX.unsigned_abs() / std::mem::size_of::<F>();
    match count {
        Some(count) if count <= limit => Ok(()),
        _ => Err(Error::InvalidParameter {
            name,
            value: value as f64,
            requirement: "small enough that all probabilities fit in isize::MAX bytes",
        }),
    }
}

/// Divides non-negative weights by their sum, writing into `out`.
///
/// The weights are first scaled by their maximum so that the sum cannot
/// overflow.
pub(crate) fn normalize_weights_into<F: Real>(
    weights: ArrayView1<F>,
    what: &'static str,
    out: &mut [F],
) -> Result<()> {
    if weights.is_empty() {
        return Err(Error::Empty { what });
    }
    let mut max = F::zero();
    for (index, &value) in weights.iter().enumerate() {
        if !value.is_finite() || value < F::zero() {
            return Err(Error::InvalidWeight {
                what,
                index,
                value: to_f64(value),
            });
        }
        max = max.max(value);
    }
    if max.is_zero() {
        return Err(Error::AllZeroWeights {
            what,
            count: weights.len(),
        });
    }

    let sum = compensated_sum(weights.iter().map(|&w| w / max));
    for (slot, &value) in out.iter_mut().zip(weights.iter()) {
        *slot = positive_zero(value / max / sum);
    }
    Ok(())
}

/// Writes the log-softmax of `logits / temperature` into `out`.
///
/// ```text
/// log p_i = (l_i - m)/τ - ln Σ_j exp((l_j - m)/τ),   m = max_j l_j
/// ```
///
/// A `-inf` logit gives `-inf`; NaN and `+inf` are rejected.
pub(crate) fn log_softmax_into<F: Real>(
    logits: ArrayView1<F>,
    temperature: F,
    out: &mut [F],
) -> Result<()> {
    if !(temperature.is_finite() && temperature > F::zero()) {
        return Err(Error::InvalidTemperature {
            value: to_f64(temperature),
        });
    }
    if logits.is_empty() {
        return Err(Error::Empty {
            what: "logit vector",
        });
    }
    let mut max = F::neg_infinity();
    let mut argmax = 0;
    for (index, &value) in logits.iter().enumerate() {
        if value.is_nan() || value == F::infinity() {
            return Err(Error::InvalidLogit {
                index,
                value: to_f64(value),
            });
        }
        if value > max {
            max = value;
            argmax = index;
        }
    }
    if max == F::neg_infinity() {
        return Err(Error::AllMasked {
            count: logits.len(),
        });
    }

    for (slot, &value) in out.iter_mut().zip(logits.iter()) {
        let shifted = value - max;
        // Logits near ±f64::MAX overflow the difference; dividing first can
        // still give a finite scaled logit when the temperature is large.
        *slot = if shifted.is_infinite() && value.is_finite() {
            value / temperature - max / temperature
        } else {
            shifted / temperature
        };
    }
    let rest = compensated_sum(
        out.iter()
            .enumerate()
            .filter(|&(index, _)| index != argmax)
            .map(|(_, &scaled)| scaled.exp()),
    );
    let log_normalizer = rest.ln_1p();
    for slot in out.iter_mut() {
        *slot = *slot - log_normalizer;
    }
    Ok(())
}

impl<F: Real> Distribution<F> {
    /// Builds a distribution from probabilities, checking them against the default tolerance.
    ///
    /// The probabilities are stored as given; nothing is renormalized. The one
    /// change is that a `-0.0` entry is stored as `+0.0`: the two are equal as
    /// probabilities, and the sign bit would otherwise show as `-0` when the
    /// distribution is printed.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if there are no entries.
    /// - [`Error::NonFiniteProbability`] for a NaN or infinite entry.
    /// - [`Error::NegativeProbability`] for an entry below 0.
    /// - [`Error::NotNormalized`] if `|Σ p_i - 1|` exceeds [`default_sum_tolerance`].
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Distribution, Error};
    ///
    /// let p = Distribution::from_probs(&[0.25, 0.25, 0.5])?;
    /// assert_eq!(p.probs()[2], 0.5);
    ///
    /// let unnormalized = Distribution::from_probs(&[0.5, 0.6]);
    /// assert!(matches!(unnormalized, Err(Error::NotNormalized { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_probs<'a>(probs: impl Into<ArrayView1<'a, F>>) -> Result<Self> {
        let probs = probs.into();
        Self::from_probs_with_tolerance(probs, default_sum_tolerance(probs.len()))
    }

    /// Builds a distribution from probabilities whose sum may be off 1 by at most `tolerance`.
    ///
    /// # Errors
    ///
    /// As [`Distribution::from_probs`], and [`Error::InvalidTolerance`] if the
    /// tolerance is negative, NaN or above [`MAX_SUM_TOLERANCE`](crate::MAX_SUM_TOLERANCE).
    /// A larger tolerance would let entries above 1 through.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::Distribution;
    ///
    /// // Probabilities printed to three decimals sum to 0.999.
    /// let p = Distribution::from_probs_with_tolerance(&[0.333, 0.333, 0.333], 1e-2)?;
    /// assert_eq!(p.len(), 3);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn from_probs_with_tolerance<'a>(
        probs: impl Into<ArrayView1<'a, F>>,
        tolerance: F,
    ) -> Result<Self> {
        let probs = probs.into();
        validate_tolerance(tolerance)?;
        validate_probs(probs, tolerance)?;

        let probs: Array1<F> = probs.iter().copied().map(positive_zero).collect();
        let log_probs = probs.mapv(F::ln);
        Ok(Distribution { probs, log_probs })
    }

    /// Builds a distribution by dividing non-negative weights by their sum.
    ///
    /// ```text
    /// p_i = w_i / Σ_j w_j
    /// ```
    ///
    /// A weight of `-0.0` gives the probability `+0.0`.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if there are no weights.
    /// - [`Error::InvalidWeight`] for a negative, NaN or infinite weight.
    /// - [`Error::AllZeroWeights`] if every weight is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::Distribution;
    ///
    /// let counts: Distribution = Distribution::from_weights(&[6.0, 3.0, 1.0])?;
    /// assert!((counts.probs()[0] - 0.6).abs() < 1e-15);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn from_weights<'a>(weights: impl Into<ArrayView1<'a, F>>) -> Result<Self> {
        let weights = weights.into();
        let mut probs = Array1::zeros(weights.len());
        let out = probs
            .as_slice_mut()
            .ok_or(Error::Empty { what: "weights" })?;
        normalize_weights_into(weights, "token weight", out)?;

        let log_probs = probs.mapv(F::ln);
        Ok(Distribution { probs, log_probs })
    }

    /// Builds the softmax distribution of `logits / temperature`.
    ///
    /// ```text
    /// p_i = exp(l_i / τ) / Σ_j exp(l_j / τ)
    /// ```
    ///
    /// The log-sum-exp is taken after subtracting the largest logit, so logits of
    /// any finite magnitude (1e300 included) work. A `-inf` logit masks its token
    /// (probability 0).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidTemperature`] if `temperature` is not finite and positive.
    /// - [`Error::Empty`] if there are no logits.
    /// - [`Error::InvalidLogit`] for a NaN or `+inf` logit.
    /// - [`Error::AllMasked`] if every logit is `-inf`.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::Distribution;
    ///
    /// let p = Distribution::from_logits(&[1e300, 1e300, f64::NEG_INFINITY], 1.0)?;
    /// assert_eq!(p.probs().to_vec(), vec![0.5, 0.5, 0.0]);
    ///
    /// let sharp = Distribution::from_logits(&[2.0, 1.0], 0.5)?;
    /// let expected = 1.0 / (1.0 + (-2.0_f64).exp());
    /// assert!((sharp.probs()[0] - expected).abs() < 1e-15);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn from_logits<'a>(logits: impl Into<ArrayView1<'a, F>>, temperature: F) -> Result<Self> {
        let logits = logits.into();
        let mut log_probs = Array1::zeros(logits.len());
        let out = log_probs.as_slice_mut().ok_or(Error::Empty {
            what: "logit vector",
        })?;
        log_softmax_into(logits, temperature, out)?;

        let probs = log_probs.mapv(F::exp);
        Ok(Distribution { probs, log_probs })
    }

    /// Builds the uniform distribution over `len` tokens.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if `len` is 0.
    /// - [`Error::InvalidParameter`] if `len` values of `F` would take more
    ///   than `isize::MAX` bytes. A smaller `len` that does not fit in memory
    ///   aborts the process, as any failed allocation does.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::Distribution;
    ///
    /// let u = Distribution::<f64>::uniform(4)?;
    /// assert!((u.entropy() - 4.0_f64.ln()).abs() < 1e-15);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn uniform(len: usize) -> Result<Self> {
        if len == 0 {
            return Err(Error::Empty { what: "vocabulary" });
        }
        check_element_count::<F>(Some(len), "vocabulary size", len)?;
        let count = F::from(len).ok_or(Error::Empty { what: "vocabulary" })?;
        let probs = Array1::from_elem(len, F::one() / count);
        let log_probs = Array1::from_elem(len, -count.ln());
        Ok(Distribution { probs, log_probs })
    }

    /// Builds a distribution from an owned vector already known to be valid.
    pub(crate) fn from_valid(probs: Array1<F>) -> Self {
        let log_probs = probs.mapv(F::ln);
        Distribution { probs, log_probs }
    }

    /// Returns the probabilities as a view.
    pub fn probs(&self) -> ArrayView1<'_, F> {
        self.probs.view()
    }

    /// Returns the natural logarithms of the probabilities as a view (`-inf` for a zero).
    pub fn log_probs(&self) -> ArrayView1<'_, F> {
        self.log_probs.view()
    }

    /// Returns the probabilities as a slice.
    pub fn as_slice(&self) -> &[F] {
        // Every constructor builds the array from a `Vec`, so it is contiguous.
        self.probs.as_slice().unwrap_or(&[])
    }

    /// Consumes the distribution and returns its probabilities.
    pub fn into_probs(self) -> Array1<F> {
        self.probs
    }

    /// Returns the vocabulary size `V`.
    pub fn len(&self) -> usize {
        self.probs.len()
    }

    /// Returns `false`: a distribution always has at least one token.
    pub fn is_empty(&self) -> bool {
        self.probs.is_empty()
    }

    /// Tells whether every token has positive probability (the paper's positivity assumption).
    pub fn is_strictly_positive(&self) -> bool {
        self.probs.iter().all(|&p| p > F::zero())
    }

    /// Computes the Shannon entropy in nats.
    ///
    /// ```text
    /// H(p) = -Σ_i p_i ln p_i,   0 ln 0 = 0
    /// ```
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::Distribution;
    ///
    /// let coin = Distribution::from_probs(&[0.5, 0.5])?;
    /// assert!((coin.entropy() - 2.0_f64.ln()).abs() < 1e-15);
    /// assert!((coin.entropy_bits() - 1.0).abs() < 1e-15);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn entropy(&self) -> F {
        let terms = self
            .probs
            .iter()
            .zip(self.log_probs.iter())
            .filter(|&(&p, _)| p > F::zero())
            .map(|(&p, &log_p)| -(p * log_p));
        compensated_sum(terms).max(F::zero())
    }

    /// Computes the Shannon entropy in bits.
    pub fn entropy_bits(&self) -> F {
        self.entropy() / F::LN_2()
    }

    /// Computes the cross-entropy `H(p, q)` of `other` relative to `self`, in nats.
    ///
    /// ```text
    /// H(p, q) = -Σ_i p_i ln q_i,   0 ln 0 = 0,   q_i = 0 < p_i gives +inf
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::VocabularyMismatch`] if the two vocabularies differ in size.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::Distribution;
    ///
    /// let p = Distribution::from_probs(&[0.5, 0.5])?;
    /// let q = Distribution::from_probs(&[0.25, 0.75])?;
    /// let expected = -(0.5 * 0.25_f64.ln() + 0.5 * 0.75_f64.ln());
    /// assert!((p.cross_entropy(&q)? - expected).abs() < 1e-15);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn cross_entropy(&self, other: &Distribution<F>) -> Result<F> {
        check_same_vocabulary(self, other)?;
        let terms = self
            .probs
            .iter()
            .zip(other.log_probs.iter())
            .filter(|&(&p, _)| p > F::zero())
            .map(|(&p, &log_q)| -(p * log_q));
        Ok(compensated_sum(terms).max(F::zero()))
    }

    /// Computes the cross-entropy `H(p, q)` in bits.
    ///
    /// # Errors
    ///
    /// [`Error::VocabularyMismatch`] if the two vocabularies differ in size.
    pub fn cross_entropy_bits(&self, other: &Distribution<F>) -> Result<F> {
        Ok(self.cross_entropy(other)? / F::LN_2())
    }
}

/// Checks that `other` covers as many tokens as `reference`.
pub(crate) fn check_same_vocabulary<F: Real>(
    reference: &Distribution<F>,
    other: &Distribution<F>,
) -> Result<()> {
    if reference.len() == other.len() {
        Ok(())
    } else {
        Err(Error::VocabularyMismatch {
            what: "second distribution",
            expected: reference.len(),
            found: other.len(),
        })
    }
}

impl<F: Real> AbsDiffEq for Distribution<F> {
    type Epsilon = F;

    fn default_epsilon() -> F {
        F::default_epsilon()
    }

    fn abs_diff_eq(&self, other: &Self, epsilon: F) -> bool {
        self.len() == other.len()
            && self
                .probs
                .iter()
                .zip(other.probs.iter())
                .all(|(a, b)| a.abs_diff_eq(b, epsilon))
    }
}

impl<F: Real> RelativeEq for Distribution<F> {
    fn default_max_relative() -> F {
        F::default_max_relative()
    }

    fn relative_eq(&self, other: &Self, epsilon: F, max_relative: F) -> bool {
        self.len() == other.len()
            && self
                .probs
                .iter()
                .zip(other.probs.iter())
                .all(|(a, b)| a.relative_eq(b, epsilon, max_relative))
    }
}

impl<F: Real> UlpsEq for Distribution<F> {
    fn default_max_ulps() -> u32 {
        F::default_max_ulps()
    }

    fn ulps_eq(&self, other: &Self, epsilon: F, max_ulps: u32) -> bool {
        self.len() == other.len()
            && self
                .probs
                .iter()
                .zip(other.probs.iter())
                .all(|(a, b)| a.ulps_eq(b, epsilon, max_ulps))
    }
}
