//! The recursion `S_{g+1} = T(S_g)`: exact runs, and runs with imperfect students.
//!
//! Exact realizability is the paper's assumption (R): each student reproduces
//! its meta-teacher, `S_{g+1} = q_g`. [`run_exact`] and [`run_exact_batch`]
//! record the distance `D(S_g) = E_x KL(T0(·|x) ‖ S_g(·|x))` per generation
//! next to the paper's bound `(1 - a)^g D(S_0)` and the observed per-step ratio.
//!
//! [`Recursion`] runs the recursion with any [`Student`](crate::student::Student),
//! an [`AnchorSchedule`], stopping rules ([`StopReason`]) and an observer, and
//! records the student's errors next to the corrected noisy bound
//! `D(S_{g+1}) <= (1 - a) D(S_g) + ε∞`.

mod control;
mod runner;

pub use control::{AnchorSchedule, StopReason, accuracy};
pub use runner::{
    DEFAULT_GENERATION_LIMIT, Recursion, RecursionRecord, RecursionTrajectory, convex_mixture,
};

use ndarray::{Array1, Array2};

use crate::batch::DistributionBatch;
use crate::distribution::Distribution;
use crate::divergence::expected_kl;
use crate::error::{Error, Result};
use crate::operator::{MetaTeacherOperator, effective_anchor_weight_batch};
use crate::real::Real;

/// One generation of a trajectory.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GenerationRecord<F: Real = f64> {
    /// The generation index `g` (0 for the initial student).
    pub generation: usize,
    /// The distance `D(S_g)` of the student from the base teacher `T0`, in nats.
    pub divergence: F,
    /// The contraction bound `(1 - a)^g D(S_0)` with the operator's declared anchor weight `a`;
    /// 0 where `(1 - a)^g = 0`, even if `D(S_0) = +inf`.
    pub bound: F,
    /// The observed ratio `D(S_g) / D(S_{g-1})`; `None` at `g = 0` and after a
    /// generation where `D` was 0 or `+inf`.
    pub ratio: Option<F>,
    /// The smallest effective anchor weight `a*(q_{g-1}; T0)` over inputs of the
    /// meta-teacher this student learned from; `None` at `g = 0`.
    pub effective_anchor_weight: Option<F>,
}

/// The students `S_0..S_G` of a run and the distance of each from the base teacher.
///
/// # Examples
///
/// ```
/// use metadistill::{ConvexMixture, Distribution, recursion::run_exact};
///
/// let teacher: Distribution = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let start = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
/// let run = run_exact(&ConvexMixture::new(0.3)?, &[teacher], &start, 10)?;
/// let last = run.records().last().unwrap();
/// assert!(last.divergence <= last.bound);
/// assert!((last.divergence - 0.0003).abs() < 5e-5);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Trajectory<F: Real = f64> {
    records: Vec<GenerationRecord<F>>,
    students: Vec<DistributionBatch<F>>,
}

impl<F: Real> Trajectory<F> {
    /// Returns one record per generation, `g = 0..=G`.
    pub fn records(&self) -> &[GenerationRecord<F>] {
        &self.records
    }

    /// Returns the distances `D(S_g)` for `g = 0..=G`.
    pub fn divergences(&self) -> Vec<F> {
        self.records.iter().map(|r| r.divergence).collect()
    }

    /// Returns the students `S_0..S_G`, each as a batch over the inputs.
    pub fn students(&self) -> &[DistributionBatch<F>] {
        &self.students
    }

    /// Returns the last student `S_G`.
    pub fn final_student(&self) -> &DistributionBatch<F> {
        // A trajectory always contains S_0, so the history is never empty.
        self.students
            .last()
            .unwrap_or_else(|| unreachable!("a trajectory always holds S_0"))
    }
}

/// Runs `generations` steps of the recursion with exact students on one input.
///
/// ```text
/// q_g = G(T0..Tk; S_0..S_g),   S_{g+1} = q_g
/// ```
///
/// `D(S_g)` is measured against the first teacher, `T0`.
///
/// # Precision
///
/// Each `D(S_g)` is the KL divergence of the computed iterate, exact to about
/// `1e-13` relative. The iterate's entries carry rounding, so their sum is off
/// 1 by about `1e-16`. Once `D(S_g)` falls to that size, the ratios are noise
/// and `D(S_g)` can exceed the bound by that much: a start at `S_0 = T0`
/// records `D(S_1) ≈ 1e-17` above a bound of 0. For the appendix pair with
/// `a = 0.3` this happens after about 40 generations.
///
/// # Errors
///
/// - [`Error::Empty`] if `teachers` is empty.
/// - [`Error::VocabularyMismatch`] if the distributions differ in size.
/// - Any error of the operator.
///
/// # Examples
///
/// ```
/// use metadistill::{ConvexMixture, Distribution, recursion::run_exact};
///
/// let teacher: Distribution = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let start = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
/// // Without anchoring and with exact students nothing moves.
/// let run = run_exact(&ConvexMixture::unanchored(), &[teacher], &start, 5)?;
/// let d = run.divergences();
/// assert!(d.iter().all(|&x| (x - d[0]).abs() < 1e-15));
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn run_exact<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    operator: &O,
    teachers: &[Distribution<F>],
    initial_student: &Distribution<F>,
    generations: usize,
) -> Result<Trajectory<F>> {
    let teacher_batches = teachers
        .iter()
        .map(|teacher| DistributionBatch::repeat(teacher, 1))
        .collect::<Result<Vec<_>>>()?;
    let start = DistributionBatch::repeat(initial_student, 1)?;
    run_exact_batch(operator, &teacher_batches, &start, generations)
}

/// Runs `generations` steps of the recursion with exact students over a batch of inputs.
///
/// `D(S_g)` is the expectation over the first teacher batch's input weights.
///
/// # Errors
///
/// - [`Error::Empty`] if `teachers` is empty.
/// - [`Error::BatchSizeMismatch`], [`Error::VocabularyMismatch`] or
///   [`Error::InputWeightMismatch`] if the batches differ in shape or weights.
/// - Any error of the operator.
pub fn run_exact_batch<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    operator: &O,
    teachers: &[DistributionBatch<F>],
    initial_student: &DistributionBatch<F>,
    generations: usize,
) -> Result<Trajectory<F>> {
    let teacher = teachers.first().ok_or(Error::Empty {
        what: "list of base teachers",
    })?;
    teacher.check_compatible(initial_student, "initial student")?;

    let anchor = operator.anchor_weight();
    let initial = expected_kl(teacher, initial_student)?;
    let mut records = vec![GenerationRecord {
        generation: 0,
        divergence: initial,
        bound: initial,
        ratio: None,
        effective_anchor_weight: None,
    }];
    let mut students = vec![initial_student.clone()];

    let mut factor = F::one();
    for generation in 1..=generations {
        let meta_teacher = operator.build_batch(teachers, &students)?;
        factor = factor * (F::one() - anchor);
        let previous = records.last().map(|r| r.divergence).unwrap_or_else(F::zero);
        records.push(next_record(
            generation,
            &meta_teacher,
            teacher,
            initial * factor,
            factor,
            previous,
        )?);
        students.push(meta_teacher);
    }
    Ok(Trajectory { records, students })
}

/// Builds the record of generation `generation`, whose student is `meta_teacher`.
fn next_record<F: Real>(
    generation: usize,
    meta_teacher: &DistributionBatch<F>,
    teacher: &DistributionBatch<F>,
    bound: F,
    factor: F,
    previous: F,
) -> Result<GenerationRecord<F>> {
    let divergence = expected_kl(teacher, meta_teacher)?;
    Ok(GenerationRecord {
        generation,
        divergence,
        // 0 · inf is NaN, but the bound is 0 once (1 - a)^g is 0: then q = T0.
        bound: if factor.is_zero() { F::zero() } else { bound },
        ratio: (previous > F::zero() && previous.is_finite()).then(|| divergence / previous),
        effective_anchor_weight: Some(effective_anchor_weight_batch(meta_teacher, teacher)?),
    })
}

/// Runs the recursion with exact students, keeping only the students the operator reads.
///
/// Returns the records of [`run_exact_batch`] and the last student, but not
/// the history. With an operator that declares a
/// [`history_window`](MetaTeacherOperator::history_window) of `w`, at most
/// `w + 1` student batches exist at once and the storage of the one that
/// leaves the window stores the next meta-teacher, so after the first `w + 1`
/// generations nothing proportional to `inputs × vocabulary` is allocated.
/// Operators without a window keep the whole history in memory.
///
/// # Errors
///
/// As [`run_exact_batch`].
///
/// # Examples
///
/// ```
/// use metadistill::recursion::{run_exact_batch, run_exact_streaming};
/// use metadistill::{ConvexMixture, Distribution, DistributionBatch};
///
/// let teacher = DistributionBatch::repeat(&Distribution::from_probs(&[0.6, 0.3, 0.1])?, 2)?;
/// let start = DistributionBatch::repeat(&Distribution::from_probs(&[0.2, 0.5, 0.3])?, 2)?;
/// let operator = ConvexMixture::new(0.3)?;
/// let (records, last) = run_exact_streaming(&operator, &[teacher.clone()], &start, 10)?;
/// let full = run_exact_batch(&operator, &[teacher], &start, 10)?;
/// assert_eq!(records.as_slice(), full.records());
/// assert_eq!(&last, full.final_student());
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn run_exact_streaming<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    operator: &O,
    teachers: &[DistributionBatch<F>],
    initial_student: &DistributionBatch<F>,
    generations: usize,
) -> Result<(Vec<GenerationRecord<F>>, DistributionBatch<F>)> {
    let teacher = teachers.first().ok_or(Error::Empty {
        what: "list of base teachers",
    })?;
    teacher.check_compatible(initial_student, "initial student")?;

    let anchor = operator.anchor_weight();
    let window = operator.history_window().map(|w| w.max(1));
    let initial = expected_kl(teacher, initial_student)?;
    let mut records = Vec::with_capacity(generations.saturating_add(1).min(1 << 20));
    records.push(GenerationRecord {
        generation: 0,
        divergence: initial,
        bound: initial,
        ratio: None,
        effective_anchor_weight: None,
    });
    let mut history = std::collections::VecDeque::from([initial_student.clone()]);
    let mut spare: Option<(Array2<F>, Array1<F>)> = None;

    let mut factor = F::one();
    for generation in 1..=generations {
        let (mut probs, mut weights) = spare.take().unwrap_or_else(|| {
            (
                Array2::zeros((teacher.n_inputs(), teacher.vocab_size())),
                Array1::zeros(teacher.n_inputs()),
            )
        });
        operator.build_batch_into(teachers, history.make_contiguous(), probs.view_mut())?;
        weights.assign(&teacher.input_weights());
        let meta_teacher = DistributionBatch::from_valid(probs, weights);

        factor = factor * (F::one() - anchor);
        let previous = records.last().map(|r| r.divergence).unwrap_or_else(F::zero);
        records.push(next_record(
            generation,
            &meta_teacher,
            teacher,
            initial * factor,
            factor,
            previous,
        )?);
        history.push_back(meta_teacher);
        if window.is_some_and(|w| history.len() > w) {
            spare = history.pop_front().map(DistributionBatch::into_parts);
        }
    }
    let last = history
        .pop_back()
        .unwrap_or_else(|| unreachable!("the history always contains the latest student"));
    Ok((records, last))
}
