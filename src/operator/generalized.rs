//! The generalized mixture: several base teachers and a weighted student history.

use ndarray::{ArrayView1, ArrayViewMut1, Zip};

use crate::distribution::{check_element_count, normalize_weights_into, positive_zero};
use crate::divergence::kl_slices;
use crate::divergence::terms::compensated_sum;
use crate::error::{Error, Result};
use crate::operator::{MetaTeacherOperator, check_view_lengths};
use crate::real::{Real, default_sum_tolerance, to_f64};

/// Non-negative weights that sum to 1, such as the weights `w_k` of several teachers.
///
/// [`Weights::new`] checks that the values already sum to 1;
/// [`Weights::normalize`] divides them by their sum, which is the explicit
/// call for weights given as counts or scores.
///
/// # Examples
///
/// ```
/// use metadistill::{Error, Weights};
///
/// let w = Weights::new(&[0.5, 0.25, 0.25])?;
/// assert_eq!(w.len(), 3);
/// let counts = Weights::normalize(&[2.0, 1.0, 1.0])?;
/// assert_eq!(counts.as_slice(), &[0.5, 0.25, 0.25]);
/// assert!(matches!(Weights::new(&[0.5, 0.6]), Err(Error::WeightsNotNormalized { .. })));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Weights<F: Real = f64> {
    values: Vec<F>,
}

impl<F: Real> Weights<F> {
    /// Builds weights from values that must already sum to 1 within [`default_sum_tolerance`].
    ///
    /// The values are stored as given, except that `-0.0` is stored as `+0.0`.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if there are no values.
    /// - [`Error::InvalidWeight`] for a negative, NaN or infinite value, with its index.
    /// - [`Error::WeightsNotNormalized`] if the sum is off 1 by more than the tolerance.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Error, Weights};
    ///
    /// let w = Weights::new(&[0.7, 0.3])?;
    /// assert_eq!(w.as_slice(), &[0.7, 0.3]);
    /// let bad = Weights::new(&[0.7, -0.3]);
    /// assert!(matches!(bad, Err(Error::InvalidWeight { index: 1, .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(values: &[F]) -> Result<Self> {
        check_weights(values, "weight")?;
        let sum = compensated_sum(values.iter().copied());
        let tolerance = default_sum_tolerance::<F>(values.len());
        if (sum - F::one()).abs() > tolerance {
            return Err(Error::WeightsNotNormalized {
                what: "weight",
                sum: to_f64(sum),
                tolerance: to_f64(tolerance),
            });
        }
        Ok(Weights {
            values: values.iter().copied().map(positive_zero).collect(),
        })
    }

    /// Builds weights by dividing non-negative values by their sum.
    ///
    /// ```text
    /// w_k = c_k / Σ_j c_j
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if there are no values.
    /// - [`Error::InvalidWeight`] for a negative, NaN or infinite value.
    /// - [`Error::AllZeroWeights`] if every value is 0.
    pub fn normalize(values: &[F]) -> Result<Self> {
        let mut normalized = vec![F::zero(); values.len()];
        normalize_weights_into(ArrayView1::from(values), "weight", &mut normalized)?;
        Ok(Weights { values: normalized })
    }

    /// Builds `count` equal weights `1 / count`.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if `count` is 0.
    /// - [`Error::InvalidParameter`] if `count` values of `F` would take more
    ///   than `isize::MAX` bytes.
    pub fn uniform(count: usize) -> Result<Self> {
        check_element_count::<F>(Some(count), "number of weights", count)?;
        Self::normalize(&vec![F::one(); count])
    }

    /// Returns the weights as a slice.
    pub fn as_slice(&self) -> &[F] {
        &self.values
    }

    /// Returns the number of weights.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Returns `false`: weights always have at least one entry.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Checks that every value is finite and non-negative.
fn check_weights<F: Real>(values: &[F], what: &'static str) -> Result<()> {
    if values.is_empty() {
        return Err(Error::Empty { what });
    }
    for (index, &value) in values.iter().enumerate() {
        if !value.is_finite() || value < F::zero() {
            return Err(Error::InvalidWeight {
                what,
                index,
                value: to_f64(value),
            });
        }
    }
    Ok(())
}

/// How the student history `S_0..S_g` is weighted into `Σ_j v_j S_{g-j}`.
///
/// Lags count back from the latest student: `j = 0` is `S_g`, `j = 1` is
/// `S_{g-1}`. When the history is shorter than a scheme requests, the weights
/// of the students that exist are divided by their sum (the available students
/// re-weighted). Each variant gives the details.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HistoryWeights<F: Real = f64> {
    /// Only the latest student: `v_0 = 1`.
    Latest,
    /// Equal weights over the latest `length` students, or over all of them if fewer exist.
    Window {
        /// The window length, at least 1.
        length: usize,
    },
    /// Recency weights `v_j ∝ decay^j` over the latest `length` students.
    ExponentialDecay {
        /// The decay factor, in `(0, 1]`.
        decay: F,
        /// The window length, at least 1; `usize::MAX` for the whole history.
        length: usize,
    },
    /// Explicit weights by lag, `v_j = weights[j]`.
    ///
    /// With fewer than `weights.len()` students, the weights of the existing
    /// lags are divided by their sum. If all of those are 0, the oldest
    /// existing student gets weight 1, as if `S_0` had been repeated before
    /// the history began.
    Explicit(Weights<F>),
    /// Quality weights `v_j ∝ exp(-λ Σ_k w_k KL(T_k ‖ S_{g-j}))` over the latest `length` students.
    ///
    /// Students closer to the teachers weigh more. If every divergence is
    /// infinite, the weights are equal.
    Quality {
        /// The sharpness `λ >= 0`; 0 gives equal weights.
        sharpness: F,
        /// The window length, at least 1; `usize::MAX` for the whole history.
        length: usize,
    },
}

impl<F: Real> HistoryWeights<F> {
    /// Checks the scheme's parameters.
    fn validate(&self) -> Result<()> {
        let check_length = |length: usize| {
            if length == 0 {
                Err(Error::InvalidParameter {
                    name: "history window length",
                    value: 0.0,
                    requirement: "at least 1",
                })
            } else {
                Ok(())
            }
        };
        match self {
            HistoryWeights::Latest | HistoryWeights::Explicit(_) => Ok(()),
            HistoryWeights::Window { length } => check_length(*length),
            HistoryWeights::ExponentialDecay { decay, length } => {
                check_length(*length)?;
                if *decay > F::zero() && *decay <= F::one() {
                    Ok(())
                } else {
                    Err(Error::InvalidParameter {
                        name: "history decay factor",
                        value: to_f64(*decay),
                        requirement: "in (0, 1]",
                    })
                }
            }
            HistoryWeights::Quality { sharpness, length } => {
                check_length(*length)?;
                if sharpness.is_finite() && *sharpness >= F::zero() {
                    Ok(())
                } else {
                    Err(Error::InvalidParameter {
                        name: "quality sharpness",
                        value: to_f64(*sharpness),
                        requirement: "finite and non-negative",
                    })
                }
            }
        }
    }

    /// Writes the weights `v_0, v_1, …` (latest student first) into `out`, which it clears first.
    ///
    /// `out` ends with between 1 and `students.len()` entries that sum to 1.
    pub(crate) fn weights_into(
        &self,
        teachers: &[ArrayView1<F>],
        teacher_weights: &[F],
        students: &[ArrayView1<F>],
        out: &mut Vec<F>,
    ) -> Result<()> {
        out.clear();
        let available = students.len();
        if available == 0 {
            return Err(Error::Empty {
                what: "student history",
            });
        }

        match self {
            HistoryWeights::Latest => out.push(F::one()),
            HistoryWeights::Window { length } => {
                let count = (*length).min(available);
                let share = F::one() / F::from(count).unwrap_or_else(F::one);
                out.resize(count, share);
            }
            HistoryWeights::ExponentialDecay { decay, length } => {
                let count = (*length).min(available);
                let mut weight = F::one();
                for _ in 0..count {
                    out.push(weight);
                    weight = weight * *decay;
                }
                divide_by_sum(out);
            }
            HistoryWeights::Explicit(weights) => {
                out.extend(weights.as_slice().iter().take(available).copied());
                if out.iter().all(|w| w.is_zero()) {
                    out.iter_mut().for_each(|w| *w = F::zero());
                    // `Weights` and the history are never empty, so `out` has a last entry.
                    if let Some(oldest) = out.last_mut() {
                        *oldest = F::one();
                    }
                } else {
                    divide_by_sum(out);
                }
            }
            HistoryWeights::Quality { sharpness, length } => {
                for student in students.iter().rev().take(*length) {
                    let divergence = weighted_kl(teachers, teacher_weights, student.view());
                    out.push(divergence);
                }
                quality_weights(out, *sharpness);
            }
        }
        Ok(())
    }
}

/// Divides positive-sum weights by their sum.
fn divide_by_sum<F: Real>(weights: &mut [F]) {
    let sum = compensated_sum(weights.iter().copied());
    weights.iter_mut().for_each(|w| *w = *w / sum);
}

/// Computes `Σ_k w_k KL(T_k ‖ s)`, skipping teachers of weight 0.
fn weighted_kl<F: Real>(teachers: &[ArrayView1<F>], weights: &[F], student: ArrayView1<F>) -> F {
    let mut total = F::zero();
    for (teacher, &weight) in teachers.iter().zip(weights) {
        if weight > F::zero() {
            total = total + weight * kl_views(teacher.view(), student.view());
        }
    }
    total
}

/// Computes `KL(p ‖ q)` on two views, copying them only if they are strided.
pub(crate) fn kl_views<F: Real>(p: ArrayView1<F>, q: ArrayView1<F>) -> F {
    match (p.as_slice(), q.as_slice()) {
        (Some(p), Some(q)) => kl_slices(p, q),
        _ => kl_slices(&p.to_vec(), &q.to_vec()),
    }
}

/// Turns divergences `D_j` into weights `∝ exp(-λ (D_j - min D))` in place.
fn quality_weights<F: Real>(values: &mut [F], sharpness: F) {
    let best = values.iter().copied().fold(F::infinity(), F::min);
    if best == F::infinity() || sharpness.is_zero() {
        let share = F::one() / F::from(values.len()).unwrap_or_else(F::one);
        values.iter_mut().for_each(|v| *v = share);
        return;
    }
    for value in values.iter_mut() {
        *value = (-sharpness * (*value - best)).exp();
    }
    divide_by_sum(values);
}

/// The generalized mixture of several teachers and a weighted student history.
///
/// ```text
/// q_g = a Σ_k w_k T_k + (1 - a) Σ_j v_j S_{g-j},   0 < a <= 1,   Σ w_k = Σ v_j = 1
/// ```
///
/// The history weights `v_j` come from a [`HistoryWeights`] scheme.
///
/// - Declared anchor weight: `a w_0`, the weight on `T0`. Pointwise anchoring
///   holds, because `q_g >= a w_0 T0` token by token.
/// - Contraction: with `T̄ = Σ_k w_k T_k`, joint convexity of KL gives
///   `KL(T̄ ‖ q_g) <= (1 - a) Σ_j v_j KL(T̄ ‖ S_{g-j})`, so the factor is
///   `1 - a` toward `T̄`; with one teacher `T̄ = T0`.
/// - Fixed point: the teacher mixture `T̄`. With exact students the error
///   `S_g - T̄` follows a linear recurrence of spectral radius at most `1 - a`.
/// - Cost per input: `O((k + m) V)` time for `k` teachers and `m` weighted
///   students, no allocation of size `V` (the history weights take `O(m)`).
///
/// # Examples
///
/// With two teachers the recursion settles at their mixture:
///
/// ```
/// use metadistill::{Distribution, GeneralizedMixture, HistoryWeights, Weights};
/// use metadistill::recursion::run_exact;
///
/// let teachers: [Distribution; 2] = [
///     Distribution::from_probs(&[0.6, 0.3, 0.1])?,
///     Distribution::from_probs(&[0.2, 0.2, 0.6])?,
/// ];
/// let start = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
/// let operator = GeneralizedMixture::new(
///     0.5,
///     Weights::new(&[0.5, 0.5])?,
///     HistoryWeights::Window { length: 3 },
/// )?;
/// let run = run_exact(&operator, &teachers, &start, 60)?;
/// let last = run.final_student().distribution(0).unwrap();
/// assert!((last.probs()[2] - 0.35).abs() < 1e-9);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GeneralizedMixture<F: Real = f64> {
    anchor: F,
    teacher_weights: Weights<F>,
    history: HistoryWeights<F>,
}

impl<F: Real> GeneralizedMixture<F> {
    /// Builds the mixture with anchor weight `anchor` on the teachers.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidAnchorWeight`] if `anchor` is not in `(0, 1]`.
    /// - [`Error::InvalidParameter`] for a window length of 0, a decay factor
    ///   outside `(0, 1]` or a negative or non-finite quality sharpness.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Error, GeneralizedMixture, HistoryWeights, Weights};
    ///
    /// let window = HistoryWeights::Window { length: 3 };
    /// let operator = GeneralizedMixture::new(0.3, Weights::new(&[0.5, 0.5])?, window)?;
    /// assert_eq!(operator.anchor(), 0.3);
    /// let empty_window = HistoryWeights::Window { length: 0 };
    /// let bad = GeneralizedMixture::new(0.3, Weights::uniform(1)?, empty_window);
    /// assert!(matches!(bad, Err(Error::InvalidParameter { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(anchor: F, teacher_weights: Weights<F>, history: HistoryWeights<F>) -> Result<Self> {
        if !(anchor > F::zero() && anchor <= F::one()) {
            return Err(Error::InvalidAnchorWeight {
                value: to_f64(anchor),
                range: "(0, 1]",
            });
        }
        history.validate()?;
        Ok(GeneralizedMixture {
            anchor,
            teacher_weights,
            history,
        })
    }

    /// Builds the mixture of one teacher with a weighted history.
    ///
    /// # Errors
    ///
    /// As [`GeneralizedMixture::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Distribution, GeneralizedMixture, HistoryWeights, MetaTeacherOperator};
    ///
    /// let teacher: Distribution = Distribution::from_probs(&[1.0, 0.0])?;
    /// let history = [
    ///     Distribution::from_probs(&[0.0, 1.0])?,
    ///     Distribution::from_probs(&[0.5, 0.5])?,
    /// ];
    /// let decay = HistoryWeights::ExponentialDecay { decay: 0.5, length: 2 };
    /// let q = GeneralizedMixture::single_teacher(0.4, decay)?.build(&[teacher], &history)?;
    /// // v = (2/3, 1/3) on (S_1, S_0): q_0 = 0.4 + 0.6 (2/3 · 0.5 + 1/3 · 0).
    /// assert!((q.probs()[0] - 0.6).abs() < 1e-15);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn single_teacher(anchor: F, history: HistoryWeights<F>) -> Result<Self> {
        Self::new(anchor, Weights::uniform(1)?, history)
    }

    /// Returns the weight `a` on the teacher mixture.
    pub fn anchor(&self) -> F {
        self.anchor
    }

    /// Returns the teacher weights `w_k`.
    pub fn teacher_weights(&self) -> &Weights<F> {
        &self.teacher_weights
    }

    /// Returns the history scheme.
    pub fn history(&self) -> &HistoryWeights<F> {
        &self.history
    }

    /// Computes the history weights `v_0, v_1, …`, latest student first.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if `students` is empty.
    /// - [`Error::TeacherWeightCount`] if the number of teachers differs from the
    ///   number of teacher weights.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{GeneralizedMixture, HistoryWeights};
    /// use ndarray::array;
    ///
    /// let teacher = array![0.5f64, 0.5];
    /// let history = [array![0.2, 0.8], array![0.4, 0.6]];
    /// let views: Vec<_> = history.iter().map(|s| s.view()).collect();
    /// let window = HistoryWeights::Window { length: 5 };
    /// let operator = GeneralizedMixture::single_teacher(0.3, window)?;
    /// // Only two students exist, so each of them gets half.
    /// assert_eq!(operator.student_weights(&[teacher.view()], &views)?, vec![0.5, 0.5]);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn student_weights(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
    ) -> Result<Vec<F>> {
        self.check_teacher_count(teachers.len())?;
        let mut weights = Vec::new();
        self.history.weights_into(
            teachers,
            self.teacher_weights.as_slice(),
            students,
            &mut weights,
        )?;
        Ok(weights)
    }

    /// Writes every pooled point's weight: teachers first (`a w_k`), then students
    /// (`(1 - a) v_j`, oldest first, zero for students outside the window).
    pub(crate) fn pool_weights_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        out: &mut Vec<F>,
    ) -> Result<()> {
        let mut history = Vec::new();
        self.check_teacher_count(teachers.len())?;
        self.history.weights_into(
            teachers,
            self.teacher_weights.as_slice(),
            students,
            &mut history,
        )?;

        out.clear();
        out.extend(
            self.teacher_weights
                .as_slice()
                .iter()
                .map(|&w| self.anchor * w),
        );
        let rest = F::one() - self.anchor;
        out.resize(teachers.len() + students.len(), F::zero());
        // The history weights run from the latest student back, and the
        // student slots follow the teacher slots oldest first.
        let student_slots = out.iter_mut().skip(teachers.len()).rev();
        for (slot, &weight) in student_slots.zip(&history) {
            *slot = rest * weight;
        }
        Ok(())
    }

    /// Checks that there is one teacher per teacher weight.
    pub(crate) fn check_teacher_count(&self, found: usize) -> Result<()> {
        if found == self.teacher_weights.len() {
            Ok(())
        } else {
            Err(Error::TeacherWeightCount {
                operator: "GeneralizedMixture",
                expected: self.teacher_weights.len(),
                found,
            })
        }
    }
}

impl<F: Real> MetaTeacherOperator<F> for GeneralizedMixture<F> {
    /// Returns `a w_0`, the weight on the first teacher `T0`.
    fn anchor_weight(&self) -> F {
        // `Weights` is never empty, so the fallback 0 is never used.
        let first = self.teacher_weights.as_slice().first().copied();
        first.map_or_else(F::zero, |weight| self.anchor * weight)
    }

    /// Writes `a Σ_k w_k T_k + (1 - a) Σ_j v_j S_{g-j}`.
    ///
    /// # Errors
    ///
    /// - [`Error::TeacherWeightCount`] unless there is one teacher per teacher weight.
    /// - [`Error::Empty`] if `students` is empty.
    /// - [`Error::LengthMismatch`] if a teacher or a student is not as long as `out`.
    fn combine_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        mut out: ArrayViewMut1<F>,
    ) -> Result<()> {
        check_view_lengths(teachers, students, out.len())?;
        let mut weights = Vec::new();
        self.pool_weights_into(teachers, students, &mut weights)?;
        check_view_lengths(teachers, students, out.len())?;

        out.fill(F::zero());
        for (point, &weight) in teachers.iter().chain(students).zip(&weights) {
            if weight > F::zero() {
                Zip::from(&mut out)
                    .and(point)
                    .for_each(|q, &p| *q = *q + weight * p);
            }
        }
        Ok(())
    }

    /// Returns the number of lags the history scheme weighs: 1 for `Latest`,
    /// the window `length` for `Window`, `ExponentialDecay` and `Quality`, and
    /// the number of weights for `Explicit`.
    fn history_window(&self) -> Option<usize> {
        Some(match &self.history {
            HistoryWeights::Latest => 1,
            HistoryWeights::Window { length }
            | HistoryWeights::ExponentialDecay { length, .. }
            | HistoryWeights::Quality { length, .. } => *length,
            HistoryWeights::Explicit(weights) => weights.len(),
        })
    }

    fn name(&self) -> String {
        format!(
            "GeneralizedMixture(a = {}, {} teachers, {:?})",
            self.anchor,
            self.teacher_weights.len(),
            self.history
        )
    }
}
