//! `NoisyStudent`: the meta-teacher tilted by a seeded error of a set size.

use ndarray::{Array1, Array2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::batch::{DistributionBatch, check_same_shape};
use crate::divergence::Divergence;
use crate::error::{Error, Result};
use crate::real::{Compact, Real, to_f64};
use crate::student::{Student, batch_like};

/// The measure of a [`NoisyStudent`]'s error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ErrorMeasure {
    /// `ε = KL(q ‖ S)`, the error in the noisy contraction claim (Remark IV.5) of
    /// Flouro and Chadwick.
    KullbackLeibler,
    /// `ε∞ = max_{i: q_i > 0} ln(q_i / S_i)`, the Renyi divergence of order
    /// infinity, with which the noisy bound `D(S_{g+1}) <= (1 - a) D(S_g) + ε∞` holds.
    MaxLogRatio,
}

/// The direction of a [`NoisyStudent`]'s error away from its meta-teacher.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorDirection<F: Real = f64> {
    /// A fresh direction per input and per fit, uniform on `[-1, 1]` per token.
    Random,
    /// The direction that raises `D(S) = E_x KL(T0 ‖ S)` the most per unit of
    /// `KL(q ‖ S)` to first order, `u_i = -T0_i / q_i`: it takes mass off the
    /// tokens the base teacher `T0` (this batch) favours more than `q` does.
    AgainstTeacher(DistributionBatch<F>),
}

/// A student that misses its meta-teacher by an error of a set size.
///
/// For each input the student is an exponential tilt of the meta-teacher,
///
/// ```text
/// S_i = q_i exp(λ u_i) / Σ_j q_j exp(λ u_j),    λ >= 0,
/// ```
///
/// where `u` is the [`ErrorDirection`] and `λ` is found by bisection so that
/// the [`ErrorMeasure`] of `S` from `q` equals the requested size (both
/// measures grow with `λ`). The error matches the size within
/// `√ε · max(1, size)`, and a fit that cannot meet it, such as one where the
/// tilt would push a probability below the float range, fails with
/// [`Error::UnreachableStudentError`]. Tokens with `q_i = 0` keep `S_i = 0`.
///
/// The two measures let one compare the two forms of the noisy contraction
/// claim. With `ε = KL(q_g ‖ S_{g+1})` the claim
/// `D(S_{g+1}) <= (1 - a) D(S_g) + ε` fails, for example against the
/// teacher; with `ε∞` it holds, and `limsup D <= ε∞ / a`.
///
/// # Examples
///
/// ```
/// use metadistill::divergence::kl;
/// use metadistill::student::{ErrorMeasure, NoisyStudent, Student};
/// use metadistill::Distribution;
///
/// let q = Distribution::<f64>::from_probs(&[0.5, 0.3, 0.2])?;
/// let mut student = NoisyStudent::random(0.01, ErrorMeasure::KullbackLeibler, 7)?;
/// let s = student.fit_one(&q)?;
/// assert!((kl(&q, &s)? - 0.01).abs() < 1e-12);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NoisyStudent<F: Real = f64> {
    size: F,
    measure: ErrorMeasure,
    direction: ErrorDirection<F>,
    rng: ChaCha8Rng,
}

/// The largest number of doublings of `λ` tried before an error size counts as unreachable.
const MAX_DOUBLINGS: usize = 200;

/// The number of bisection steps; each halves the bracket of `λ`.
const BISECTION_STEPS: usize = 200;

impl<F: Real> NoisyStudent<F> {
    /// Builds a student whose error has a random direction, drawn from a generator seeded with `seed`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `size` is negative or not finite.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::student::{ErrorMeasure, NoisyStudent};
    ///
    /// assert!(NoisyStudent::random(-0.1, ErrorMeasure::MaxLogRatio, 1).is_err());
    /// ```
    pub fn random(size: F, measure: ErrorMeasure, seed: u64) -> Result<Self> {
        check_size(size)?;
        Ok(NoisyStudent {
            size,
            measure,
            direction: ErrorDirection::Random,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// Builds a student whose error works against the base teacher `teacher`.
    ///
    /// ```text
    /// u_i = -T0_i / q_i
    /// ```
    ///
    /// To first order in `λ`, this tilt raises `D(S)` by `λ χ²(T0 ‖ q) >= 0`,
    /// the most any direction can per unit of `KL(q ‖ S)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `size` is negative or not finite.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::divergence::kl;
    /// use metadistill::student::{ErrorMeasure, NoisyStudent, Student};
    /// use metadistill::{Distribution, DistributionBatch};
    ///
    /// let teacher = Distribution::<f64>::from_probs(&[0.6, 0.3, 0.1])?;
    /// let q = Distribution::from_probs(&[0.5, 0.3, 0.2])?;
    /// let against = DistributionBatch::repeat(&teacher, 1)?;
    /// let mut student = NoisyStudent::against_teacher(0.05, ErrorMeasure::KullbackLeibler, against)?;
    /// let s = student.fit_one(&q)?;
    /// assert!(kl(&teacher, &s)? > kl(&teacher, &q)?);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn against_teacher(
        size: F,
        measure: ErrorMeasure,
        teacher: DistributionBatch<F>,
    ) -> Result<Self> {
        check_size(size)?;
        Ok(NoisyStudent {
            size,
            measure,
            direction: ErrorDirection::AgainstTeacher(teacher),
            rng: ChaCha8Rng::seed_from_u64(0),
        })
    }

    /// Returns the requested error size.
    pub fn size(&self) -> F {
        self.size
    }

    /// Returns how the error is measured.
    pub fn measure(&self) -> ErrorMeasure {
        self.measure
    }

    /// Draws or computes the tilt direction for one row.
    fn direction_for(&mut self, row: usize, q: &[F]) -> Result<Array1<F>> {
        match &self.direction {
            ErrorDirection::Random => Ok(q
                .iter()
                .map(|_| F::from(self.rng.random_range(-1.0..=1.0)).unwrap_or_else(F::zero))
                .collect()),
            ErrorDirection::AgainstTeacher(teacher) => {
                let t = teacher.row(row).ok_or(Error::BatchSizeMismatch {
                    what: "meta-teacher batch",
                    expected: teacher.n_inputs(),
                    found: row + 1,
                })?;
                Ok(q.iter()
                    .zip(t.iter())
                    .map(|(&qi, &ti)| if qi > F::zero() { -ti / qi } else { F::zero() })
                    .collect())
            }
        }
    }

    /// Measures the error of `s` from `q`.
    fn error_of(&self, q: &[F], s: &[F]) -> Result<F> {
        match self.measure {
            ErrorMeasure::KullbackLeibler => Divergence::KullbackLeibler.compute_slices(q, s),
            ErrorMeasure::MaxLogRatio => Divergence::max_log_ratio().compute_slices(q, s),
        }
    }

    /// Tilts one row so that its error equals the requested size.
    fn tilt_row(&self, row: usize, q: &[F], direction: &Array1<F>, out: &mut [F]) -> Result<()> {
        if self.size <= F::zero() {
            out.copy_from_slice(q);
            return Ok(());
        }

        let mut low = F::zero();
        let mut high = F::one();
        let mut reached = false;
        for _ in 0..MAX_DOUBLINGS {
            tilt(q, direction, high, out);
            if self.error_of(q, out)? >= self.size {
                reached = true;
                break;
            }
            low = high;
            high = high + high;
        }
        if !reached {
            return Err(Error::UnreachableStudentError {
                row,
                size: to_f64(self.size),
            });
        }

        for _ in 0..BISECTION_STEPS {
            let middle = (low + high) / (F::one() + F::one());
            if middle <= low || middle >= high {
                break;
            }
            tilt(q, direction, middle, out);
            if self.error_of(q, out)? < self.size {
                low = middle;
            } else {
                high = middle;
            }
        }
        tilt(q, direction, high, out);

        // Near the edge of the float range a tilted probability underflows to 0
        // and the error jumps to inf, so bisection can end on the far side of the
        // jump. A result whose error misses the size is rejected.
        let achieved = self.error_of(q, out)?;
        let allowed = size_tolerance::<F>() * self.size.max(F::one());
        if !achieved.is_finite() || (achieved - self.size).abs() > allowed {
            return Err(Error::UnreachableStudentError {
                row,
                size: to_f64(self.size),
            });
        }
        Ok(())
    }
}

/// Returns `√ε`, the relative tolerance within which a fitted error must match the requested size.
fn size_tolerance<F: Real>() -> F {
    F::epsilon().sqrt()
}

/// Checks an error size.
fn check_size<F: Real>(size: F) -> Result<()> {
    if size.is_finite() && size >= F::zero() {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            name: "noisy student error size",
            value: to_f64(size),
            requirement: "finite and non-negative",
        })
    }
}

/// Writes `q_i exp(λ u_i)`, normalized, into `out`; tokens with `q_i = 0` stay 0.
fn tilt<F: Real>(q: &[F], direction: &Array1<F>, lambda: F, out: &mut [F]) {
    let shift = q
        .iter()
        .zip(direction.iter())
        .filter(|&(&qi, _)| qi > F::zero())
        .map(|(_, &u)| lambda * u)
        .fold(F::neg_infinity(), F::max);
    let mut total = F::zero();
    for ((slot, &qi), &u) in out.iter_mut().zip(q).zip(direction.iter()) {
        *slot = if qi > F::zero() {
            qi * (lambda * u - shift).exp()
        } else {
            F::zero()
        };
        total = total + *slot;
    }
    for slot in out.iter_mut() {
        *slot = *slot / total;
    }
}

impl<F: Real> Student<F> for NoisyStudent<F> {
    /// Tilts the meta-teacher of every input so that its error has the requested size.
    ///
    /// # Errors
    ///
    /// - [`Error::BatchSizeMismatch`] or [`Error::VocabularyMismatch`] if the
    ///   teacher of [`ErrorDirection::AgainstTeacher`] has another shape (its
    ///   input weights are not compared: only its rows set the direction).
    /// - [`Error::UnreachableStudentError`] if no tilt reaches the size on a
    ///   row within `√ε · max(1, size)`. This happens when the direction is
    ///   constant on the tokens the meta-teacher supports (for example a point
    ///   mass), or when the size needs a probability below the float range:
    ///   every `ε∞` above about 745 in `f64` or 104 in `f32`, the negative log
    ///   of the smallest positive float.
    fn fit(&mut self, meta_teacher: &DistributionBatch<F>) -> Result<DistributionBatch<F>> {
        // The direction reads the teacher's rows alone, so its input weights may differ.
        if let ErrorDirection::AgainstTeacher(teacher) = &self.direction {
            let shapes = (teacher.probs().dim(), meta_teacher.probs().dim());
            check_same_shape(shapes.0, shapes.1, "meta-teacher batch")?;
        }

        let mut out = Array2::zeros((meta_teacher.n_inputs(), meta_teacher.vocab_size()));
        for (row, mut out_row) in out.outer_iter_mut().enumerate() {
            let q = meta_teacher.row_slice(row);
            let direction = self.direction_for(row, q)?;
            let slot = out_row.as_slice_mut().ok_or(Error::Empty {
                what: "student output row",
            })?;
            self.tilt_row(row, q, &direction, slot)?;
        }
        batch_like(out, meta_teacher)
    }

    fn name(&self) -> String {
        let measure = match self.measure {
            ErrorMeasure::KullbackLeibler => "KL(q || S)",
            ErrorMeasure::MaxLogRatio => "max ln(q/S)",
        };
        let direction = match self.direction {
            ErrorDirection::Random => "random",
            ErrorDirection::AgainstTeacher(_) => "against the teacher",
        };
        format!(
            "NoisyStudent({measure} = {}, {direction})",
            Compact(self.size)
        )
    }
}
