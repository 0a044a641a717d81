//! `Recursion`: the general runner with imperfect students, schedules, stopping rules and an observer.

use crate::batch::DistributionBatch;
use crate::divergence::{Divergence, expected_kl};
use crate::error::{Error, Result};
use crate::operator::{ConvexMixture, MetaTeacherOperator, effective_anchor_weight_batch};
use crate::real::{Real, to_f64};
use crate::recursion::control::{AnchorSchedule, StopReason};
use crate::student::{FitReport, Student};

/// One generation of a [`Recursion`] run.
///
/// With `a` the operator's declared anchor weight at step `g`, the corrected
/// noisy bound is
///
/// ```text
/// D(S_g) <= (1 - a) D(S_{g-1}) + ε∞_g,      ε∞_g = E_x max_{i: q_i > 0} ln(q_{g-1,i}(x) / S_{g,i}(x))
/// ```
///
/// It holds for operators that contract as `KL(T0 ‖ q) <= (1 - a) KL(T0 ‖ S)`
/// per input, such as the convex mixture; with `ε_g = E_x KL(q ‖ S)` in place
/// of `ε∞_g` it can fail.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RecursionRecord<F: Real = f64> {
    /// The generation index `g` (0 for the initial student).
    pub generation: usize,
    /// `D(S_g) = E_x KL(T(·|x) ‖ S_g(·|x))` against the reference teacher, in nats.
    pub divergence: F,
    /// The anchor weight the schedule gave the operator for this step; `None` at `g = 0`.
    pub anchor_weight: Option<F>,
    /// The one-step bound `(1 - a) D(S_{g-1}) + ε∞_g`; `None` at `g = 0`.
    /// The product is 0 when `a = 1`, even if `D(S_{g-1}) = +inf`.
    pub step_bound: Option<F>,
    /// The chained bound `B_g = (1 - a) B_{g-1} + ε∞_g` with `B_0 = D(S_0)`.
    /// The product is 0 when `a = 1`, even if `B_{g-1} = +inf`.
    pub bound: F,
    /// The observed ratio `D(S_g) / D(S_{g-1})`; `None` at `g = 0` or after `D = 0`.
    pub ratio: Option<F>,
    /// The smallest effective anchor weight `a*(q_{g-1}; T)` over inputs; `None` at `g = 0`.
    pub effective_anchor_weight: Option<F>,
    /// The student's fit error `ε_g = E_x KL(q_{g-1} ‖ S_g)`; `None` at `g = 0`.
    pub fit_error: Option<F>,
    /// The student's max log-ratio error `ε∞_g`; `None` at `g = 0`.
    pub fit_error_max: Option<F>,
    /// The user metric of `S_g`, if one is tracked.
    pub metric: Option<F>,
    /// The report of an iterative student's fit; `None` at `g = 0` and for other students.
    pub fit_report: Option<FitReport<F>>,
}

/// The records of a [`Recursion`] run, the students it trained and why it stopped.
///
/// With the `serde` feature the records and the stop reason serialize (for
/// example to JSON); the students are left out.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RecursionTrajectory<F: Real = f64> {
    records: Vec<RecursionRecord<F>>,
    stop_reason: StopReason<F>,
    #[cfg_attr(feature = "serde", serde(skip))]
    students: Vec<DistributionBatch<F>>,
}

impl<F: Real> RecursionTrajectory<F> {
    /// Returns one record per generation, `g = 0..=G`.
    pub fn records(&self) -> &[RecursionRecord<F>] {
        &self.records
    }

    /// Returns the distances `D(S_g)` for `g = 0..=G`.
    pub fn divergences(&self) -> Vec<F> {
        self.records.iter().map(|r| r.divergence).collect()
    }

    /// Returns the rule that stopped the run.
    pub fn stop_reason(&self) -> StopReason<F> {
        self.stop_reason
    }

    /// Returns the students `S_0..S_G`; empty after deserialization.
    pub fn students(&self) -> &[DistributionBatch<F>] {
        &self.students
    }

    /// Returns the largest `D(S_g)` over the last `count` generations: the observed neighbourhood.
    ///
    /// Returns `None` if `count` is 0.
    pub fn neighbourhood(&self, count: usize) -> Option<F> {
        let start = self.records.len().saturating_sub(count);
        self.records
            .iter()
            .skip(start)
            .map(|r| r.divergence)
            .reduce(F::max)
    }

    /// Returns the largest student error `ε∞_g` of the run, `None` if no step ran.
    pub fn max_fit_error_max(&self) -> Option<F> {
        self.records
            .iter()
            .filter_map(|r| r.fit_error_max)
            .reduce(F::max)
    }
}

/// Returns `factor · value`, and 0 for a zero factor even if `value` is `+inf`.
///
/// With `a = 1` the meta-teacher is the teacher itself, so the bound does not
/// depend on the previous divergence, and `0 · inf` would be NaN.
fn scale<F: Real>(factor: F, value: F) -> F {
    if factor.is_zero() {
        F::zero()
    } else {
        factor * value
    }
}

/// Builds the convex mixture with anchor weight `anchor`, the unanchored operator for 0.
///
/// A ready operator factory for [`Recursion::new`].
///
/// # Errors
///
/// [`Error::InvalidAnchorWeight`] if `anchor` is outside `[0, 1]` or NaN.
///
/// # Examples
///
/// ```
/// use metadistill::MetaTeacherOperator;
/// use metadistill::recursion::convex_mixture;
///
/// assert_eq!(convex_mixture(0.0)?.anchor_weight(), 0.0);
/// assert!(convex_mixture(1.5).is_err());
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn convex_mixture<F: Real>(anchor: F) -> Result<ConvexMixture<F>> {
    if anchor.is_zero() {
        Ok(ConvexMixture::unanchored())
    } else {
        ConvexMixture::new(anchor)
    }
}

/// An operator factory: the meta-teacher operator for a given anchor weight.
type OperatorFactory<'a, F> = Box<dyn Fn(F) -> Result<Box<dyn MetaTeacherOperator<F> + 'a>> + 'a>;

/// A user metric of a student, such as its accuracy on labels.
type Metric<'a, F> = Box<dyn FnMut(&DistributionBatch<F>) -> Result<F> + 'a>;

/// A callback that receives the record of every generation.
type Observer<'a, F> = Box<dyn FnMut(&RecursionRecord<F>) + 'a>;

/// The default generation limit when no other is set.
pub const DEFAULT_GENERATION_LIMIT: usize = 100;

/// A recursion run with an imperfect student, an anchor schedule, stopping rules and an observer.
///
/// ```text
/// q_{g-1} = G_{a_g}(T0..Tk; S_0..S_{g-1}),     S_g = student.fit(q_{g-1}),     g = 1, 2, …
/// ```
///
/// The operator is rebuilt from the factory at every step with the weight the
/// [`AnchorSchedule`] gives (constant `a` by default, from
/// [`Recursion::schedule`]). After each generation the observer receives the
/// record and the stopping rules are checked in this order: generation limit
/// (100 unless set), diminishing improvement, metric plateau. The trajectory
/// names the rule that stopped the run.
///
/// `D(S_g)` is measured against the first teacher batch unless
/// [`Recursion::reference`] names another, such as the teacher mixture that a
/// multi-teacher operator converges to.
///
/// # Examples
///
/// ```
/// use metadistill::recursion::{AnchorSchedule, Recursion, StopReason, convex_mixture};
/// use metadistill::student::{ErrorMeasure, NoisyStudent};
/// use metadistill::{Distribution, DistributionBatch};
///
/// let teacher = DistributionBatch::repeat(&Distribution::from_probs(&[0.6, 0.3, 0.1])?, 1)?;
/// let start = DistributionBatch::repeat(&Distribution::from_probs(&[0.2, 0.5, 0.3])?, 1)?;
/// let mut student = NoisyStudent::random(0.001, ErrorMeasure::MaxLogRatio, 42)?;
/// let teachers = [teacher];
/// let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
///     .schedule(AnchorSchedule::Constant(0.3))
///     .max_generations(50)
///     .stop_on_small_improvement(1e-6)
///     .run()?;
/// assert!(matches!(run.stop_reason(), StopReason::DiminishingImprovement { .. }));
/// let last = run.records().last().unwrap();
/// assert!(last.divergence <= last.bound);
/// assert!(last.divergence < 0.001 / 0.3);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub struct Recursion<'a, F: Real = f64> {
    teachers: &'a [DistributionBatch<F>],
    initial: &'a DistributionBatch<F>,
    reference: Option<&'a DistributionBatch<F>>,
    factory: OperatorFactory<'a, F>,
    student: &'a mut dyn Student<F>,
    schedule: AnchorSchedule<F>,
    generation_limit: usize,
    improvement_tolerance: Option<F>,
    plateau: Option<(F, usize)>,
    metric: Option<Metric<'a, F>>,
    observer: Option<Observer<'a, F>>,
}

impl<'a, F: Real> Recursion<'a, F> {
    /// Sets up a run from base teachers, an initial student `S_0`, an operator factory and a student.
    ///
    /// The factory returns the operator for an anchor weight; pass
    /// [`convex_mixture`] for `q = a T0 + (1 - a) S_g`. The schedule starts as
    /// `Constant(0.5)`; set it with [`Recursion::schedule`].
    pub fn new<O, Factory>(
        teachers: &'a [DistributionBatch<F>],
        initial: &'a DistributionBatch<F>,
        factory: Factory,
        student: &'a mut dyn Student<F>,
    ) -> Self
    where
        O: MetaTeacherOperator<F> + 'a,
        Factory: Fn(F) -> Result<O> + 'a,
    {
        let factory: OperatorFactory<'a, F> = Box::new(move |a| {
            factory(a).map(|operator| Box::new(operator) as Box<dyn MetaTeacherOperator<F> + 'a>)
        });
        Recursion {
            teachers,
            initial,
            reference: None,
            factory,
            student,
            schedule: AnchorSchedule::Constant(F::one() / (F::one() + F::one())),
            generation_limit: DEFAULT_GENERATION_LIMIT,
            improvement_tolerance: None,
            plateau: None,
            metric: None,
            observer: None,
        }
    }

    /// Measures `D(S_g)` against `reference` in place of the first teacher.
    pub fn reference(mut self, reference: &'a DistributionBatch<F>) -> Self {
        self.reference = Some(reference);
        self
    }

    /// Sets the anchor-weight schedule.
    pub fn schedule(mut self, schedule: AnchorSchedule<F>) -> Self {
        self.schedule = schedule;
        self
    }

    /// Stops after `limit` generations (steps).
    pub fn max_generations(mut self, limit: usize) -> Self {
        self.generation_limit = limit;
        self
    }

    /// Stops when `|D(S_g) - D(S_{g-1})| < tolerance`.
    pub fn stop_on_small_improvement(mut self, tolerance: F) -> Self {
        self.improvement_tolerance = Some(tolerance);
        self
    }

    /// Records `metric(S_g)` for every generation.
    pub fn track_metric(
        mut self,
        metric: impl FnMut(&DistributionBatch<F>) -> Result<F> + 'a,
    ) -> Self {
        self.metric = Some(Box::new(metric));
        self
    }

    /// Stops when the tracked metric changes by less than `tolerance` for `patience` generations in a row.
    ///
    /// `patience` counts generations, so it must be at least 1, and `tolerance`
    /// must be non-negative; [`Recursion::run`] rejects other values. Without
    /// [`Recursion::track_metric`] the rule never fires.
    pub fn stop_on_metric_plateau(mut self, tolerance: F, patience: usize) -> Self {
        self.plateau = Some((tolerance, patience));
        self
    }

    /// Calls `observer` with the record of every generation, `S_0` included, as soon as it is computed.
    pub fn observe(mut self, observer: impl FnMut(&RecursionRecord<F>) + 'a) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// Runs the recursion until a stopping rule fires.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if there are no teachers.
    /// - [`Error::BatchSizeMismatch`], [`Error::VocabularyMismatch`] or
    ///   [`Error::InputWeightMismatch`] if the initial student, the reference
    ///   or a student's output does not match the first teacher batch.
    /// - [`Error::InvalidAnchorWeight`] or [`Error::InvalidParameter`] for an
    ///   invalid schedule, and [`Error::InvalidParameter`] for a negative or
    ///   NaN improvement or metric plateau tolerance, or a plateau patience of 0.
    /// - [`Error::NonFiniteMetric`] if the metric returns NaN or an infinity.
    /// - Any error of the factory, the operator, the student or the metric.
    pub fn run(mut self) -> Result<RecursionTrajectory<F>> {
        let first = self.teachers.first().ok_or(Error::Empty {
            what: "list of base teachers",
        })?;
        let reference = self.reference.unwrap_or(first);
        first.check_compatible(reference, "reference teacher")?;
        first.check_compatible(self.initial, "initial student")?;
        self.schedule.validate()?;
        if let Some(tolerance) = self.improvement_tolerance
            && (tolerance.is_nan() || tolerance < F::zero())
        {
            return Err(Error::InvalidParameter {
                name: "improvement tolerance",
                value: to_f64(tolerance),
                requirement: "non-negative",
            });
        }
        if let Some((tolerance, patience)) = self.plateau {
            if tolerance.is_nan() || tolerance < F::zero() {
                return Err(Error::InvalidParameter {
                    name: "metric plateau tolerance",
                    value: to_f64(tolerance),
                    requirement: "non-negative",
                });
            }
            if patience == 0 {
                return Err(Error::InvalidParameter {
                    name: "metric plateau patience",
                    value: 0.0,
                    requirement: "at least 1 generation",
                });
            }
        }

        let initial = expected_kl(reference, self.initial)?;
        let first_record = RecursionRecord {
            generation: 0,
            divergence: initial,
            anchor_weight: None,
            step_bound: None,
            bound: initial,
            ratio: None,
            effective_anchor_weight: None,
            fit_error: None,
            fit_error_max: None,
            metric: self.measure(0, self.initial)?,
            fit_report: None,
        };
        self.notify(&first_record);
        // The records before the latest one; the latest is kept apart so
        // that every step has a previous record without an index.
        let mut records = Vec::new();
        let mut latest = first_record;
        let mut students = vec![self.initial.clone()];
        let mut anchor = self.schedule.initial();
        let mut small_metric_changes = 0;

        let stop_reason = loop {
            let generation = records.len() + 1;
            if generation > self.generation_limit {
                break StopReason::GenerationLimit {
                    limit: self.generation_limit,
                };
            }

            let record = self.step(generation, anchor, reference, &latest, &mut students)?;
            let change = (record.divergence - latest.divergence).abs();
            if let (Some(now), Some(before)) = (record.metric, latest.metric)
                && let Some((tolerance, _)) = self.plateau
            {
                if (now - before).abs() < tolerance {
                    small_metric_changes += 1;
                } else {
                    small_metric_changes = 0;
                }
            }
            anchor = self.schedule.next(generation, anchor, record.ratio);
            self.notify(&record);
            let metric = record.metric;
            records.push(std::mem::replace(&mut latest, record));

            if generation >= self.generation_limit {
                break StopReason::GenerationLimit {
                    limit: self.generation_limit,
                };
            }
            if let Some(tolerance) = self.improvement_tolerance
                && change < tolerance
            {
                break StopReason::DiminishingImprovement { change, tolerance };
            }
            if let (Some((tolerance, patience)), Some(value)) = (self.plateau, metric)
                && small_metric_changes >= patience
            {
                break StopReason::MetricPlateau {
                    value,
                    tolerance,
                    patience,
                };
            }
        };
        records.push(latest);

        Ok(RecursionTrajectory {
            records,
            stop_reason,
            students,
        })
    }

    /// Builds `q_{g-1}`, trains `S_g` and measures it.
    fn step(
        &mut self,
        generation: usize,
        anchor: F,
        reference: &DistributionBatch<F>,
        previous: &RecursionRecord<F>,
        students: &mut Vec<DistributionBatch<F>>,
    ) -> Result<RecursionRecord<F>> {
        let operator = (self.factory)(anchor)?;
        let meta_teacher = operator.build_batch(self.teachers, students)?;
        let student = self.student.fit(&meta_teacher)?;
        reference.check_compatible(&student, "student output")?;

        let divergence = expected_kl(reference, &student)?;
        let fit_error = expected_kl(&meta_teacher, &student)?;
        let fit_error_max = Divergence::max_log_ratio().expected(&meta_teacher, &student)?;
        let contraction = F::one() - operator.anchor_weight();
        let record = RecursionRecord {
            generation,
            divergence,
            anchor_weight: Some(anchor),
            step_bound: Some(scale(contraction, previous.divergence) + fit_error_max),
            bound: scale(contraction, previous.bound) + fit_error_max,
            ratio: (previous.divergence > F::zero() && previous.divergence.is_finite())
                .then(|| divergence / previous.divergence),
            effective_anchor_weight: Some(effective_anchor_weight_batch(&meta_teacher, reference)?),
            fit_error: Some(fit_error),
            fit_error_max: Some(fit_error_max),
            metric: self.measure(generation, &student)?,
            fit_report: self.student.last_fit_report(),
        };
        students.push(student);
        Ok(record)
    }

    /// Applies the tracked metric, if any, and checks that it is finite.
    fn measure(&mut self, generation: usize, student: &DistributionBatch<F>) -> Result<Option<F>> {
        let Some(metric) = self.metric.as_mut() else {
            return Ok(None);
        };
        let value = metric(student)?;
        if !value.is_finite() {
            return Err(Error::NonFiniteMetric {
                generation,
                value: to_f64(value),
            });
        }
        Ok(Some(value))
    }

    /// Passes a record to the observer, if any.
    fn notify(&mut self, record: &RecursionRecord<F>) {
        if let Some(observer) = self.observer.as_mut() {
            observer(record);
        }
    }
}
