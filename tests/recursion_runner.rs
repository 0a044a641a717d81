//! The general recursion runner: stopping rules, schedules, the observer and the noisy bounds.

use std::cell::RefCell;

use metadistill::recursion::{
    AnchorSchedule, Recursion, RecursionTrajectory, StopReason, accuracy, convex_mixture, run_exact,
};
use metadistill::student::{ErrorMeasure, ExactStudent, NoisyStudent, Student};
use metadistill::{ConvexMixture, Distribution, DistributionBatch, Error, Real};
use ndarray::array;

/// The appendix teacher and initial student as one-row batches.
fn appendix<F: Real>() -> (DistributionBatch<F>, DistributionBatch<F>) {
    let convert = |v: [f64; 3]| v.map(|x| F::from(x).unwrap());
    let teacher = Distribution::from_probs(&convert([0.6, 0.3, 0.1])).unwrap();
    let start = Distribution::from_probs(&convert([0.2, 0.5, 0.3])).unwrap();
    (
        DistributionBatch::repeat(&teacher, 1).unwrap(),
        DistributionBatch::repeat(&start, 1).unwrap(),
    )
}

/// Runs the appendix recursion with a constant anchor weight and a generation limit.
fn run_constant<F: Real>(
    anchor: F,
    student: &mut dyn Student<F>,
    generations: usize,
) -> RecursionTrajectory<F> {
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher];
    Recursion::new(&teachers, &start, convex_mixture, student)
        .schedule(AnchorSchedule::Constant(anchor))
        .max_generations(generations)
        .run()
        .unwrap()
}

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Returns a tolerance of `count` machine epsilons of `F`.
fn ulps<F: Real>(count: f64) -> F {
    c::<F>(count) * F::epsilon()
}

/// Runs each generic check for `f32` and for `f64`.
macro_rules! for_both_floats {
    ($($name:ident),* $(,)?) => {
        mod f32_cases {
            $(#[test] fn $name() { super::$name::<f32>(); })*
        }
        mod f64_cases {
            $(#[test] fn $name() { super::$name::<f64>(); })*
        }
    };
}

fn exact_student_matches_run_exact<F: Real>() {
    let a = c::<F>(0.3);
    let run = run_constant(a, &mut ExactStudent, 10);
    let teacher = Distribution::from_probs(&[c::<F>(0.6), c(0.3), c(0.1)]).unwrap();
    let start = Distribution::from_probs(&[c::<F>(0.2), c(0.5), c(0.3)]).unwrap();
    let exact = run_exact(&ConvexMixture::new(a).unwrap(), &[teacher], &start, 10).unwrap();
    // Both runs compute the same iterates, so the divergences agree to the
    // rounding of one KL: 4.5 ε (1e-15 in f64).
    for (g, (&x, y)) in run
        .divergences()
        .iter()
        .zip(exact.divergences())
        .enumerate()
    {
        assert!((x - y).abs() < ulps(4.5), "generation {g}: {x} != {y}");
    }
    for record in &run.records()[1..] {
        assert!(record.fit_error.unwrap() < ulps(4.5));
        assert!(record.fit_error_max.unwrap() < ulps(4.5));
    }
}

fn exact_student_without_anchor_does_not_drift<F: Real>() {
    let run = run_constant(F::zero(), &mut ExactStudent, 20);
    let d = run.divergences();
    for (g, &value) in d.iter().enumerate() {
        assert!(
            (value - d[0]).abs() < ulps(4.5),
            "generation {g}: {value} != {}",
            d[0]
        );
    }
}

fn generation_limit_stops_at_limit<F: Real>() {
    let run = run_constant(c::<F>(0.3), &mut ExactStudent, 7);
    assert_eq!(run.records().len(), 8);
    assert_eq!(run.students().len(), 8);
    assert_eq!(run.stop_reason(), StopReason::GenerationLimit { limit: 7 });
}

fn generation_limit_zero_keeps_only_start<F: Real>() {
    let run = run_constant(c::<F>(0.3), &mut ExactStudent, 0);
    assert_eq!(run.records().len(), 1);
    assert_eq!(run.stop_reason(), StopReason::GenerationLimit { limit: 0 });
}

fn diminishing_improvement_stops_at_first_small_change<F: Real>() {
    let tolerance = c::<F>(1e-3);
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .schedule(AnchorSchedule::Constant(c(0.3)))
        .max_generations(100)
        .stop_on_small_improvement(tolerance)
        .run()
        .unwrap();

    let reference = run_constant(c::<F>(0.3), &mut ExactStudent, 100).divergences();
    let expected = (1..reference.len())
        .find(|&g| (reference[g] - reference[g - 1]).abs() < tolerance)
        .unwrap();
    assert_eq!(run.records().len() - 1, expected);
    let StopReason::DiminishingImprovement { change, .. } = run.stop_reason() else {
        panic!("stopped by {:?}", run.stop_reason());
    };
    assert!(change < tolerance);
    let reference_change = (reference[expected] - reference[expected - 1]).abs();
    assert!((change - reference_change).abs() < ulps(4.5));
}

fn metric_plateau_stops_after_patience<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    // The probability of the teacher's top token approaches 0.6 geometrically.
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .schedule(AnchorSchedule::Constant(c(0.5)))
        .max_generations(100)
        .track_metric(|s| Ok(s.probs()[[0, 0]]))
        .stop_on_metric_plateau(c(1e-3), 3)
        .run()
        .unwrap();

    // S_g[0] = 0.6 - 0.4 · 0.5^g, so the change at step g is 0.4 · 0.5^g.
    let first_small = (1..).find(|&g| 0.4 * 0.5_f64.powi(g) < 1e-3).unwrap() as usize;
    assert_eq!(run.records().len() - 1, first_small + 2);
    assert!(matches!(
        run.stop_reason(),
        StopReason::MetricPlateau { patience: 3, .. }
    ));
}

fn metric_without_plateau_rule_is_only_recorded<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .max_generations(5)
        .track_metric(|s| accuracy(s, &[0]))
        .run()
        .unwrap();
    assert_eq!(run.records()[0].metric, Some(F::zero()));
    assert_eq!(run.records()[5].metric, Some(F::one()));
    assert_eq!(run.stop_reason(), StopReason::GenerationLimit { limit: 5 });
}

fn observer_sees_every_record<F: Real>() {
    let seen = RefCell::new(Vec::new());
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .max_generations(6)
        .observe(|record| seen.borrow_mut().push(record.clone()))
        .run()
        .unwrap();
    assert_eq!(seen.into_inner(), run.records().to_vec());
}

fn ramp_schedule_sets_weights<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .schedule(AnchorSchedule::Ramp {
            start: F::zero(),
            end: c(0.4),
            steps: 4,
        })
        .max_generations(7)
        .run()
        .unwrap();
    let weights: Vec<F> = run.records()[1..]
        .iter()
        .map(|r| r.anchor_weight.unwrap())
        .collect();
    // start + (end - start) · done / total: one product and one division, 4.5 ε.
    let expected = [0.0, 0.1, 0.2, 0.3, 0.4, 0.4, 0.4];
    for (g, (&got, want)) in weights.iter().zip(expected).enumerate() {
        assert!(
            (got - c(want)).abs() < ulps(4.5),
            "step {}: {got} != {want}",
            g + 1
        );
    }
}

fn adaptive_schedule_raises_weight_when_distance_rises<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher.clone()];
    let mut student =
        NoisyStudent::against_teacher(c(0.05), ErrorMeasure::MaxLogRatio, teacher).unwrap();
    let increment = c::<F>(0.1);
    let max = c::<F>(0.5);
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .schedule(AnchorSchedule::Adaptive {
            initial: F::zero(),
            increment,
            max,
            target: F::one(),
        })
        .max_generations(30)
        .run()
        .unwrap();

    let records = run.records();
    for pair in records[1..].windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        let raised = before.ratio.unwrap() >= F::one();
        let expected = if raised {
            (before.anchor_weight.unwrap() + increment).min(max)
        } else {
            before.anchor_weight.unwrap()
        };
        // The rule adds the increment once per raise; the check repeats that
        // sum exactly, so 4500 ε (1e-12 in f64) is ample.
        assert!((after.anchor_weight.unwrap() - expected).abs() < ulps(4500.0));
    }
    assert!(
        records[2].anchor_weight.unwrap() > F::zero(),
        "no raise after D rose"
    );
    let last = records.last().unwrap();
    assert!(last.divergence < records[1].divergence);
}

fn corrected_noisy_bound_holds_every_step<F: Real>() {
    for anchor in [0.0, 0.1, 0.3, 0.7].map(c::<F>) {
        let (teacher, _) = appendix::<F>();
        let mut student =
            NoisyStudent::against_teacher(c(0.05), ErrorMeasure::MaxLogRatio, teacher).unwrap();
        let run = run_constant(anchor, &mut student, 40);
        // The bound is exact in real numbers. Each step rounds a few terms of
        // size about 0.1, so the check allows 4500 ε (1e-12 in f64) of slack.
        for record in &run.records()[1..] {
            assert!(record.divergence <= record.step_bound.unwrap() + ulps(4500.0));
            assert!(record.divergence <= record.bound + ulps(4500.0));
        }
        if anchor > F::zero() {
            let limit = run.max_fit_error_max().unwrap() / anchor;
            assert!(run.neighbourhood(10).unwrap() <= limit);
        }
    }
}

fn bound_with_kl_error_fails<F: Real>() {
    let (teacher, _) = appendix::<F>();
    let mut student =
        NoisyStudent::against_teacher(c(0.05), ErrorMeasure::KullbackLeibler, teacher).unwrap();
    let run = run_constant(c(0.3), &mut student, 10);
    // A violation counts only above 1e-9, or 4500 ε in f32 (5.4e-4), far
    // above the rounding of both sides.
    let margin = c::<F>(1e-9).max(ulps(4500.0));
    let violated = run.records().windows(2).any(|pair| {
        let claimed = c::<F>(0.7) * pair[0].divergence + pair[1].fit_error.unwrap();
        pair[1].divergence > claimed + margin
    });
    assert!(
        violated,
        "D(S_g+1) <= (1 - a) D(S_g) + KL(q || S) held every step"
    );
}

fn anchored_runs_end_closer_than_unanchored<F: Real>() {
    let (teacher, _) = appendix::<F>();
    let size = c::<F>(0.05);
    let mut drifting =
        NoisyStudent::against_teacher(size, ErrorMeasure::MaxLogRatio, teacher.clone()).unwrap();
    let unanchored = run_constant(F::zero(), &mut drifting, 40)
        .neighbourhood(10)
        .unwrap();
    for anchor in [0.1, 0.3, 0.5].map(c::<F>) {
        let mut student =
            NoisyStudent::against_teacher(size, ErrorMeasure::MaxLogRatio, teacher.clone())
                .unwrap();
        let anchored = run_constant(anchor, &mut student, 40)
            .neighbourhood(10)
            .unwrap();
        assert!(
            anchored < unanchored,
            "a = {anchor}: {anchored} >= {unanchored}"
        );
    }
    let mut random = NoisyStudent::random(size, ErrorMeasure::MaxLogRatio, 5).unwrap();
    let walk = run_constant(F::zero(), &mut random, 40)
        .neighbourhood(10)
        .unwrap();
    let mut random = NoisyStudent::random(size, ErrorMeasure::MaxLogRatio, 5).unwrap();
    let anchored = run_constant(c(0.3), &mut random, 40)
        .neighbourhood(10)
        .unwrap();
    assert!(anchored < walk, "random errors: {anchored} >= {walk}");
}

#[test]
fn runner_works_in_f32() {
    let run = run_constant(0.3_f32, &mut ExactStudent, 10);
    let last = run.records().last().unwrap();
    assert!((last.divergence - 0.0003).abs() < 5e-5);
    assert!(last.divergence <= last.bound);
}

fn reference_changes_what_is_measured<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .reference(&start)
        .max_generations(1)
        .run()
        .unwrap();
    assert!(run.records()[0].divergence.abs() < ulps(4.5));
    assert!(run.records()[1].divergence > F::zero());
}

fn empty_teacher_list_is_rejected<F: Real>() {
    let (_, start) = appendix::<F>();
    let mut student = ExactStudent;
    let error = Recursion::new(&[], &start, convex_mixture, &mut student)
        .run()
        .unwrap_err();
    assert!(matches!(error, Error::Empty { .. }));
}

fn mismatched_initial_student_is_rejected<F: Real>() {
    let (teacher, _) = appendix::<F>();
    let start = DistributionBatch::from_probs(&array![[0.5, 0.5]].mapv(c::<F>)).unwrap();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let error = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .run()
        .unwrap_err();
    assert!(matches!(
        error,
        Error::VocabularyMismatch {
            expected: 3,
            found: 2,
            ..
        }
    ));
}

fn invalid_schedule_is_rejected<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let error = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .schedule(AnchorSchedule::Ramp {
            start: c(0.1),
            end: c(1.5),
            steps: 3,
        })
        .run()
        .unwrap_err();
    assert!(matches!(error, Error::InvalidAnchorWeight { value, .. } if value == 1.5));
}

fn invalid_adaptive_parameters_are_rejected<F: Real>() {
    let increment = AnchorSchedule::Adaptive {
        initial: c::<F>(0.1),
        increment: c(-0.1),
        max: c(0.5),
        target: F::one(),
    };
    assert!(matches!(
        increment.validate(),
        Err(Error::InvalidParameter { .. })
    ));
    let target = AnchorSchedule::Adaptive {
        initial: c::<F>(0.1),
        increment: c(0.1),
        max: c(0.5),
        target: F::nan(),
    };
    assert!(matches!(
        target.validate(),
        Err(Error::InvalidParameter { .. })
    ));
}

fn negative_improvement_tolerance_is_rejected<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let error = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .stop_on_small_improvement(c(-1.0))
        .run()
        .unwrap_err();
    assert!(matches!(error, Error::InvalidParameter { value, .. } if value == -1.0));
}

fn bad_metric_plateau_is_rejected<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher];
    for (tolerance, patience) in [(F::nan(), 2), (c(-1.0), 2)] {
        let mut student = ExactStudent;
        let error = Recursion::new(&teachers, &start, convex_mixture, &mut student)
            .track_metric(|_| Ok(F::one()))
            .stop_on_metric_plateau(tolerance, patience)
            .run()
            .unwrap_err();
        let wide = tolerance.to_f64().unwrap();
        assert!(
            matches!(
                error,
                Error::InvalidParameter { name: "metric plateau tolerance", value, .. }
                    if value.to_bits() == wide.to_bits()
            ),
            "{error:?}"
        );
    }
    let mut student = ExactStudent;
    let error = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .track_metric(|_| Ok(F::one()))
        .stop_on_metric_plateau(c(1e-3), 0)
        .run()
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidParameter { name: "metric plateau patience", value, .. } if value == 0.0
        ),
        "{error:?}"
    );
}

fn adaptive_initial_above_max_is_rejected<F: Real>() {
    let schedule = AnchorSchedule::Adaptive {
        initial: c::<F>(0.5),
        increment: c(0.1),
        max: c(0.2),
        target: c(0.9),
    };
    let error = schedule.validate().unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidParameter { name: "adaptive schedule initial weight", value, .. }
                if value == 0.5
        ),
        "{error:?}"
    );
    let equal = AnchorSchedule::Adaptive {
        initial: c::<F>(0.2),
        increment: c(0.1),
        max: c(0.2),
        target: c(0.9),
    };
    assert!(equal.validate().is_ok());
}

fn non_finite_metric_is_rejected<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let error = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .track_metric(|_| Ok(F::nan()))
        .run()
        .unwrap_err();
    assert!(matches!(
        error,
        Error::NonFiniteMetric { generation: 0, .. }
    ));
}

fn factory_error_is_passed_on<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let error = Recursion::new(&teachers, &start, ConvexMixture::new, &mut student)
        .schedule(AnchorSchedule::Constant(F::zero()))
        .run()
        .unwrap_err();
    assert!(matches!(error, Error::InvalidAnchorWeight { value, .. } if value == 0.0));
}

fn accuracy_rejects_bad_labels<F: Real>() {
    let model =
        DistributionBatch::<F>::from_probs(&array![[0.7, 0.3], [0.4, 0.6]].mapv(c::<F>)).unwrap();
    assert!(matches!(
        accuracy(&model, &[0]),
        Err(Error::LengthMismatch {
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert!(matches!(
        accuracy(&model, &[0, 2]),
        Err(Error::InvalidLabel {
            row: 1,
            label: 2,
            n_classes: 2
        })
    ));
}

fn accuracy_uses_input_weights<F: Real>() {
    let model = DistributionBatch::<F>::from_probs(&array![[0.7, 0.3], [0.4, 0.6]].mapv(c::<F>))
        .unwrap()
        .with_input_weights(&array![3.0, 1.0].mapv(c::<F>))
        .unwrap();
    // 3 / 4 is exact in both types.
    assert_eq!(accuracy(&model, &[0, 0]).unwrap(), c(0.75));
}

for_both_floats!(
    exact_student_matches_run_exact,
    exact_student_without_anchor_does_not_drift,
    generation_limit_stops_at_limit,
    generation_limit_zero_keeps_only_start,
    diminishing_improvement_stops_at_first_small_change,
    metric_plateau_stops_after_patience,
    metric_without_plateau_rule_is_only_recorded,
    observer_sees_every_record,
    ramp_schedule_sets_weights,
    adaptive_schedule_raises_weight_when_distance_rises,
    corrected_noisy_bound_holds_every_step,
    bound_with_kl_error_fails,
    anchored_runs_end_closer_than_unanchored,
    reference_changes_what_is_measured,
    empty_teacher_list_is_rejected,
    mismatched_initial_student_is_rejected,
    invalid_schedule_is_rejected,
    invalid_adaptive_parameters_are_rejected,
    negative_improvement_tolerance_is_rejected,
    bad_metric_plateau_is_rejected,
    adaptive_initial_above_max_is_rejected,
    non_finite_metric_is_rejected,
    factory_error_is_passed_on,
    accuracy_rejects_bad_labels,
    accuracy_uses_input_weights,
);

#[cfg(feature = "serde")]
#[test]
fn trajectory_round_trips_through_json() {
    let (teacher, _) = appendix::<f64>();
    let mut student =
        NoisyStudent::against_teacher(0.05, ErrorMeasure::MaxLogRatio, teacher).unwrap();
    let run = run_constant(0.3, &mut student, 5);
    let json = serde_json::to_string(&run).unwrap();
    assert!(json.contains("\"GenerationLimit\""));
    let back: RecursionTrajectory<f64> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.records(), run.records());
    assert_eq!(back.stop_reason(), run.stop_reason());
    assert!(back.students().is_empty());
}
