//! Meta-teacher operators: how `q_g` is built from the base teachers and the student history.
//!
//! An operator `G` maps the base teachers `T0..Tk` and the students
//! `S_0..S_g` (oldest first) to the meta-teacher `q_g` that generation `g + 1`
//! learns from. Implement [`MetaTeacherOperator`] to plug in your own; the
//! provided methods validate the inputs, run it on single distributions or
//! row by row on batches, and validate what it returns.

mod algebra;
mod generalized;
mod mixture;
mod projection;
mod properties;
mod solver;
mod tempered;

pub use algebra::{ConvexCombination, Iterate, PostMap, PostMapped};
pub use generalized::{GeneralizedMixture, HistoryWeights, Weights};
pub use mixture::ConvexMixture;
pub use projection::{InformationProjection, PowerMeanProjection, amari_alpha, power_mean_into};
pub use properties::OperatorProperties;
pub use solver::{IterativeProjection, MirrorDescent, SolverReport, divergence_gradient_into};
pub use tempered::TemperedMixture;

use ndarray::{Array1, Array2, ArrayView1, ArrayViewMut1, ArrayViewMut2};

use crate::batch::{DistributionBatch, check_same_shape};
use crate::distribution::{Distribution, validate_probs};
use crate::error::{Error, Result};
use crate::real::{Real, default_sum_tolerance};

/// A meta-teacher construction operator `G(T0..Tk; S_0..S_g) = q_g`.
///
/// Implementors write [`combine_into`](MetaTeacherOperator::combine_into),
/// which works on one input `x` at a time, and
/// [`anchor_weight`](MetaTeacherOperator::anchor_weight); the provided
/// [`build`](MetaTeacherOperator::build) and
/// [`build_batch`](MetaTeacherOperator::build_batch) do the checking.
///
/// # Examples
///
/// A user-defined operator that blends the teacher with the average of the
/// whole student history:
///
/// ```
/// use metadistill::{Distribution, MetaTeacherOperator, Result};
/// use ndarray::{ArrayView1, ArrayViewMut1};
///
/// struct HistoryAverage {
///     anchor: f64,
/// }
///
/// impl MetaTeacherOperator<f64> for HistoryAverage {
///     fn anchor_weight(&self) -> f64 {
///         self.anchor
///     }
///
///     fn combine_into(
///         &self,
///         teachers: &[ArrayView1<f64>],
///         students: &[ArrayView1<f64>],
///         mut out: ArrayViewMut1<f64>,
///     ) -> Result<()> {
///         let share = (1.0 - self.anchor) / students.len() as f64;
///         out.assign(&teachers[0]);
///         out *= self.anchor;
///         for student in students {
///             out.scaled_add(share, student);
///         }
///         Ok(())
///     }
/// }
///
/// let teacher: Distribution = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let history = [
///     Distribution::from_probs(&[0.2, 0.5, 0.3])?,
///     Distribution::from_probs(&[0.4, 0.4, 0.2])?,
/// ];
/// let q = HistoryAverage { anchor: 0.5 }.build(&[teacher], &history)?;
/// assert!((q.probs()[0] - 0.45).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub trait MetaTeacherOperator<F: Real = f64> {
    /// Returns the declared anchor weight `a`: the least weight the operator
    /// claims to give the base teacher `T0` (Axiom 3, teacher anchoring).
    fn anchor_weight(&self) -> F;

    /// Writes the meta-teacher for one input into `out`.
    ///
    /// The provided methods call this with at least one teacher and at least
    /// one student, all valid distributions of the length of `out`, and check
    /// afterwards that `out` is a valid distribution. `out` contains zeros on
    /// entry.
    ///
    /// # Errors
    ///
    /// Whatever the operator reports, such as [`Error::TeacherCount`] when it
    /// takes a fixed number of teachers.
    fn combine_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        out: ArrayViewMut1<F>,
    ) -> Result<()>;

    /// Returns how many of the latest students the operator reads, or `None`
    /// for the whole history.
    ///
    /// [`build`](MetaTeacherOperator::build) and
    /// [`build_batch`](MetaTeacherOperator::build_batch) pass only that many
    /// students to [`combine_into`](MetaTeacherOperator::combine_into) and
    /// check only those, so a recursion of `G` generations costs `O(G)` rather
    /// than `O(G²)` for operators that read a fixed window. `Some(0)` is read
    /// as `Some(1)`. The default, `None`, is always correct.
    fn history_window(&self) -> Option<usize> {
        None
    }

    /// Returns a short name for reports and error messages.
    fn name(&self) -> String {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base).to_string()
    }

    /// Builds the meta-teacher `q_g` from the teachers and the student history (oldest first).
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if `teachers` or `students` is empty.
    /// - [`Error::VocabularyMismatch`] if the distributions differ in size.
    /// - [`Error::InvalidOperatorOutput`] if the operator returns something
    ///   that is not a distribution within the default tolerance.
    /// - Any error of [`combine_into`](MetaTeacherOperator::combine_into).
    fn build(
        &self,
        teachers: &[Distribution<F>],
        students: &[Distribution<F>],
    ) -> Result<Distribution<F>> {
        let students = latest(students, self.history_window());
        let vocab_size = check_inputs(
            teachers.iter().map(Distribution::len),
            students.iter().map(Distribution::len),
        )?;
        let teacher_views: Vec<_> = teachers.iter().map(Distribution::probs).collect();
        let student_views: Vec<_> = students.iter().map(Distribution::probs).collect();

        let mut out = Array1::zeros(vocab_size);
        self.combine_into(&teacher_views, &student_views, out.view_mut())?;
        validate_output(self, out.view())?;
        Ok(Distribution::from_valid(out))
    }

    /// Builds the meta-teacher of every input of a batch, row by row.
    ///
    /// The result carries the input weights of the first teacher batch.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if `teachers` or `students` is empty.
    /// - [`Error::BatchSizeMismatch`], [`Error::VocabularyMismatch`] or
    ///   [`Error::InputWeightMismatch`] if the batches do not describe the same
    ///   inputs over the same vocabulary.
    /// - [`Error::InRow`] wrapping an error of
    ///   [`combine_into`](MetaTeacherOperator::combine_into) or
    ///   [`Error::InvalidOperatorOutput`] for a row.
    fn build_batch(
        &self,
        teachers: &[DistributionBatch<F>],
        students: &[DistributionBatch<F>],
    ) -> Result<DistributionBatch<F>> {
        let reference = teachers.first().ok_or(Error::Empty {
            what: "list of base teachers",
        })?;
        let mut out = Array2::zeros((reference.n_inputs(), reference.vocab_size()));
        self.build_batch_into(teachers, students, out.view_mut())?;
        Ok(DistributionBatch::from_valid(
            out,
            reference.input_weights().to_owned(),
        ))
    }

    /// Writes the meta-teacher of every input of a batch into `out`, row by row.
    ///
    /// Does what [`build_batch`](MetaTeacherOperator::build_batch) does without
    /// allocating the result, so a recursion can reuse one matrix per
    /// generation. Each row of `out` is zeroed before the operator writes it.
    ///
    /// # Errors
    ///
    /// As [`build_batch`](MetaTeacherOperator::build_batch), and
    /// [`Error::BatchSizeMismatch`] or [`Error::VocabularyMismatch`] if `out`
    /// is not `inputs × vocabulary`.
    fn build_batch_into(
        &self,
        teachers: &[DistributionBatch<F>],
        students: &[DistributionBatch<F>],
        mut out: ArrayViewMut2<F>,
    ) -> Result<()> {
        let reference = teachers.first().ok_or(Error::Empty {
            what: "list of base teachers",
        })?;
        if students.is_empty() {
            return Err(Error::Empty {
                what: "student history",
            });
        }
        for teacher in teachers.iter().skip(1) {
            reference.check_compatible(teacher, "base teacher batch")?;
        }
        let students = latest(students, self.history_window());
        for student in students {
            reference.check_compatible(student, "student batch")?;
        }
        check_same_shape(reference.probs().dim(), out.dim(), "output matrix")?;

        for (row, mut out_row) in out.outer_iter_mut().enumerate() {
            let teacher_views: Vec<_> = teachers
                .iter()
                .map(|t| ArrayView1::from(t.row_slice(row)))
                .collect();
            let student_views: Vec<_> = students
                .iter()
                .map(|s| ArrayView1::from(s.row_slice(row)))
                .collect();
            out_row.fill(F::zero());
            self.combine_into(&teacher_views, &student_views, out_row.view_mut())
                .map_err(|error| error.in_row(row))?;
            validate_output(self, out_row.view()).map_err(|error| error.in_row(row))?;
        }
        Ok(())
    }
}

/// Returns the last `window` entries of `history`, or all of it for `None`.
fn latest<T>(history: &[T], window: Option<usize>) -> &[T] {
    match window {
        Some(window) => {
            let start = history.len().saturating_sub(window.max(1));
            history.get(start..).unwrap_or(history)
        }
        None => history,
    }
}

/// Checks the teacher and student lists and returns their common vocabulary size.
fn check_inputs(
    teacher_sizes: impl Iterator<Item = usize>,
    student_sizes: impl Iterator<Item = usize>,
) -> Result<usize> {
    let mut teacher_sizes = teacher_sizes.peekable();
    let vocab_size = *teacher_sizes.peek().ok_or(Error::Empty {
        what: "list of base teachers",
    })?;
    let mut student_sizes = student_sizes.peekable();
    if student_sizes.peek().is_none() {
        return Err(Error::Empty {
            what: "student history",
        });
    }
    for size in teacher_sizes {
        if size != vocab_size {
            return Err(Error::VocabularyMismatch {
                what: "base teacher",
                expected: vocab_size,
                found: size,
            });
        }
    }
    for size in student_sizes {
        if size != vocab_size {
            return Err(Error::VocabularyMismatch {
                what: "student",
                expected: vocab_size,
                found: size,
            });
        }
    }
    Ok(vocab_size)
}

/// Checks that every view an operator reads has the length of its output.
///
/// `combine_into` is public, so callers may pass views of any length, and
/// ndarray's `Zip` panics on views of different lengths.
///
/// # Errors
///
/// [`Error::LengthMismatch`] naming the first teacher or student whose length
/// differs from `len`.
pub(crate) fn check_view_lengths<F>(
    teachers: &[ArrayView1<F>],
    students: &[ArrayView1<F>],
    len: usize,
) -> Result<()> {
    let teacher_lengths = teachers.iter().map(|view| ("base teacher", view.len()));
    let student_lengths = students.iter().map(|view| ("student", view.len()));
    for (what, found) in teacher_lengths.chain(student_lengths) {
        if found != len {
            return Err(Error::LengthMismatch {
                what,
                expected: len,
                found,
            });
        }
    }
    Ok(())
}

/// Checks a raw probability vector passed to a public function, naming it in the error.
pub(crate) fn check_input_vector<F: Real>(what: &str, values: ArrayView1<F>) -> Result<()> {
    validate_probs(values, default_sum_tolerance(values.len())).map_err(|error| {
        Error::InvalidInputVector {
            what: what.to_string(),
            source: Box::new(error),
        }
    })
}

/// Checks that an operator returned a distribution.
fn validate_output<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    operator: &O,
    out: ArrayView1<F>,
) -> Result<()> {
    validate_probs(out, default_sum_tolerance(out.len())).map_err(|error| {
        Error::InvalidOperatorOutput {
            operator: operator.name(),
            source: Box::new(error),
        }
    })
}

/// Computes the effective anchor weight `a*(q; T0)`: the largest `a` with
/// `q = a T0 + (1 - a) r` for some distribution `r`.
///
/// ```text
/// a*(q; T0) = min(1, min_{i: T0_i > 0} q_i / T0_i)
/// ```
///
/// Axiom 3 (teacher anchoring) of the meta-distillation paper, as written ("min(q_i, T0_i) >= a min(r_i, T0_i) for
/// some reference r"), is true with `r = q` for every `a <= 1`, so it constrains
/// nothing. An operator anchors pointwise with weight `a` when
/// `a*(G(...); T0) >= a` on every input; the convex mixture meets this with
/// equality in general.
///
/// # Errors
///
/// [`Error::VocabularyMismatch`] if the vocabularies differ in size.
///
/// # Examples
///
/// ```
/// use metadistill::{ConvexMixture, Distribution, MetaTeacherOperator, effective_anchor_weight};
///
/// let teacher: Distribution = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let student = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
/// let q = ConvexMixture::new(0.3)?.build(&[teacher.clone()], &[student])?;
/// // min_i q_i / T0_i is reached at the first token: (0.18 + 0.14) / 0.6.
/// assert!((effective_anchor_weight(&q, &teacher)? - 0.32 / 0.6).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn effective_anchor_weight<F: Real>(
    q: &Distribution<F>,
    teacher: &Distribution<F>,
) -> Result<F> {
    crate::distribution::check_same_vocabulary(teacher, q)?;
    Ok(effective_anchor_weight_slices(
        q.as_slice(),
        teacher.as_slice(),
    ))
}

/// Computes `a*(q; T0)` on slices of equal length.
pub(crate) fn effective_anchor_weight_slices<F: Real>(q: &[F], teacher: &[F]) -> F {
    q.iter()
        .zip(teacher)
        .filter(|&(_, &t)| t > F::zero())
        .map(|(&qi, &t)| qi / t)
        .fold(F::one(), F::min)
}

/// Computes the smallest effective anchor weight over the rows of two batches.
///
/// # Errors
///
/// [`Error::BatchSizeMismatch`] or [`Error::VocabularyMismatch`] if the shapes differ.
pub fn effective_anchor_weight_batch<F: Real>(
    q: &DistributionBatch<F>,
    teacher: &DistributionBatch<F>,
) -> Result<F> {
    check_same_shape(teacher.probs().dim(), q.probs().dim(), "meta-teacher batch")?;
    Ok((0..q.n_inputs())
        .map(|row| effective_anchor_weight_slices(q.row_slice(row), teacher.row_slice(row)))
        .fold(F::one(), F::min))
}
