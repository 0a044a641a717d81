//! Students: models that learn each generation's meta-teacher, exactly or not.
//!
//! The convergence proofs of Flouro and Chadwick assume exact realizability,
//! `S_{g+1} = q_g`. Real
//! students fall short of their meta-teacher, and the size and the direction of
//! that shortfall decide whether the recursion converges, drifts or improves.
//! A [`Student`] takes the meta-teacher of every input and returns the
//! distributions it learned. The implementations here are:
//!
//! - [`ExactStudent`]: `S_{g+1} = q_g`, the realizability assumption (R);
//! - [`NoisyStudent`]: `q_g` tilted by a seeded error of a set size, measured
//!   as `KL(q ‖ S)` or as the max log-ratio `max_i ln(q_i / S_i)`;
//! - [`SparseStudent`]: `k` tokens kept, the rest sharing one floor value;
//! - [`SoftmaxStudent`]: a softmax regression `logits = W x + b` over input
//!   features, trained by minimizing `E_x KL(q(·|x) ‖ S(·|x))`.

mod noisy;
mod optimize;
mod softmax;
mod sparse;

pub use noisy::{ErrorDirection, ErrorMeasure, NoisyStudent};
pub use optimize::{FitOutcome, FitReport};
pub use softmax::{Capacity, SoftmaxStudent};
pub use sparse::{KeptTokens, SparseStudent};

use crate::batch::DistributionBatch;
use crate::distribution::Distribution;
use crate::error::{Error, Result};
use crate::real::Real;

/// A model that learns a meta-teacher and returns the distributions it learned.
///
/// [`fit`](Student::fit) receives the meta-teacher `q_g(·|x)` of every input
/// `x` as a batch and returns the student `S_{g+1}(·|x)` over the same inputs,
/// with the same input weights. It takes `&mut self` because a student may
/// keep state between generations: a random generator, or trained weights that
/// the next fit starts from.
///
/// # Examples
///
/// A user-defined student that keeps only a share of the meta-teacher and
/// spreads the rest evenly:
///
/// ```
/// use metadistill::student::Student;
/// use metadistill::{Distribution, DistributionBatch, Result};
///
/// struct Smoothed(f64);
///
/// impl Student<f64> for Smoothed {
///     fn fit(&mut self, meta_teacher: &DistributionBatch<f64>) -> Result<DistributionBatch<f64>> {
///         let share = 1.0 / meta_teacher.vocab_size() as f64;
///         let probs = meta_teacher.probs().mapv(|q| (1.0 - self.0) * q + self.0 * share);
///         DistributionBatch::from_probs(&probs)?.with_input_weights(meta_teacher.input_weights())
///     }
/// }
///
/// let q = Distribution::from_probs(&[1.0, 0.0])?;
/// let s = Smoothed(0.5).fit_one(&q)?;
/// assert_eq!(s.probs().to_vec(), vec![0.75, 0.25]);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub trait Student<F: Real = f64> {
    /// Fits the student to the meta-teacher of every input and returns its distributions.
    ///
    /// # Errors
    ///
    /// Whatever the student reports: shape errors such as
    /// [`Error::BatchSizeMismatch`] for a student tied to fixed inputs, or an
    /// error of its fitting procedure.
    fn fit(&mut self, meta_teacher: &DistributionBatch<F>) -> Result<DistributionBatch<F>>;

    /// Returns a short name for reports and error messages.
    fn name(&self) -> String {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base).to_string()
    }

    /// Returns the report of the last fit of an iterative student, `None` for the others.
    fn last_fit_report(&self) -> Option<FitReport<F>> {
        None
    }

    /// Fits the student to the meta-teacher of a single input.
    ///
    /// # Errors
    ///
    /// As [`fit`](Student::fit) on a batch of one row.
    fn fit_one(&mut self, meta_teacher: &Distribution<F>) -> Result<Distribution<F>> {
        let batch = DistributionBatch::repeat(meta_teacher, 1)?;
        let fitted = self.fit(&batch)?;
        fitted.distribution(0).ok_or(Error::Empty {
            what: "student output",
        })
    }
}

/// The exactly realizable student, `S_{g+1} = q_g`, that the convergence proofs assume.
///
/// # Examples
///
/// ```
/// use metadistill::Distribution;
/// use metadistill::student::{ExactStudent, Student};
///
/// let q = Distribution::<f64>::from_probs(&[0.5, 0.3, 0.2])?;
/// assert_eq!(ExactStudent.fit_one(&q)?, q);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExactStudent;

impl<F: Real> Student<F> for ExactStudent {
    /// Returns a copy of the meta-teacher.
    ///
    /// # Errors
    ///
    /// Never fails.
    fn fit(&mut self, meta_teacher: &DistributionBatch<F>) -> Result<DistributionBatch<F>> {
        Ok(meta_teacher.clone())
    }

    fn name(&self) -> String {
        "ExactStudent".to_string()
    }
}

/// Builds a batch from per-row probabilities computed by a student, keeping the meta-teacher's input weights.
pub(crate) fn batch_like<F: Real>(
    probs: ndarray::Array2<F>,
    meta_teacher: &DistributionBatch<F>,
) -> Result<DistributionBatch<F>> {
    let batch = DistributionBatch::from_probs(&probs)?;
    Ok(with_weights_of(batch, meta_teacher))
}

/// Returns `batch` with the input weights of `meta_teacher`, copied bit for bit.
///
/// `with_input_weights` divides the weights by their sum again, which can move
/// a weight by one unit in the last place. The meta-teacher's weights are
/// already valid, so they are copied as they are. Both batches have one row
/// per input.
pub(crate) fn with_weights_of<F: Real>(
    batch: DistributionBatch<F>,
    meta_teacher: &DistributionBatch<F>,
) -> DistributionBatch<F> {
    let (probs, _) = batch.into_parts();
    DistributionBatch::from_valid(probs, meta_teacher.input_weights().to_owned())
}
