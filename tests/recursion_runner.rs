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

#[test]
fn exact_student_matches_run_exact() {
    let run = run_constant(0.3_f64, &mut ExactStudent, 10);
    let teacher = Distribution::from_probs(&[0.6, 0.3, 0.1]).unwrap();
    let start = Distribution::from_probs(&[0.2, 0.5, 0.3]).unwrap();
    let exact = run_exact(&ConvexMixture::new(0.3).unwrap(), &[teacher], &start, 10).unwrap();
    for (g, (a, b)) in run
        .divergences()
        .iter()
        .zip(exact.divergences())
        .enumerate()
    {
        assert!((a - b).abs() < 1e-15, "generation {g}: {a} != {b}");
    }
    for record in &run.records()[1..] {
        assert!(record.fit_error.unwrap() < 1e-15);
        assert!(record.fit_error_max.unwrap() < 1e-15);
    }
}

#[test]
fn exact_student_without_anchor_does_not_drift() {
    let run = run_constant(0.0_f64, &mut ExactStudent, 20);
    let d = run.divergences();
    for (g, value) in d.iter().enumerate() {
        assert!(
            (value - d[0]).abs() < 1e-15,
            "generation {g}: {value} != {}",
            d[0]
        );
    }
}

#[test]
fn generation_limit_stops_at_limit() {
    let run = run_constant(0.3, &mut ExactStudent, 7);
    assert_eq!(run.records().len(), 8);
    assert_eq!(run.students().len(), 8);
    assert_eq!(run.stop_reason(), StopReason::GenerationLimit { limit: 7 });
}

#[test]
fn generation_limit_zero_keeps_only_start() {
    let run = run_constant(0.3, &mut ExactStudent, 0);
    assert_eq!(run.records().len(), 1);
    assert_eq!(run.stop_reason(), StopReason::GenerationLimit { limit: 0 });
}

#[test]
fn diminishing_improvement_stops_at_first_small_change() {
    let tolerance = 1e-3;
    let (teacher, start) = appendix::<f64>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .schedule(AnchorSchedule::Constant(0.3))
        .max_generations(100)
        .stop_on_small_improvement(tolerance)
        .run()
        .unwrap();

    let reference = run_constant(0.3_f64, &mut ExactStudent, 100).divergences();
    let expected = (1..reference.len())
        .find(|&g| (reference[g] - reference[g - 1]).abs() < tolerance)
        .unwrap();
    assert_eq!(run.records().len() - 1, expected);
    let StopReason::DiminishingImprovement { change, .. } = run.stop_reason() else {
        panic!("stopped by {:?}", run.stop_reason());
    };
    assert!(change < tolerance);
    assert!((change - (reference[expected] - reference[expected - 1]).abs()).abs() < 1e-15);
}

#[test]
fn metric_plateau_stops_after_patience() {
    let (teacher, start) = appendix::<f64>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    // The probability of the teacher's top token approaches 0.6 geometrically.
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .schedule(AnchorSchedule::Constant(0.5))
        .max_generations(100)
        .track_metric(|s| Ok(s.probs()[[0, 0]]))
        .stop_on_metric_plateau(1e-3, 3)
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

#[test]
fn metric_without_plateau_rule_is_only_recorded() {
    let (teacher, start) = appendix::<f64>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .max_generations(5)
        .track_metric(|s| accuracy(s, &[0]))
        .run()
        .unwrap();
    assert_eq!(run.records()[0].metric, Some(0.0));
    assert_eq!(run.records()[5].metric, Some(1.0));
    assert_eq!(run.stop_reason(), StopReason::GenerationLimit { limit: 5 });
}

#[test]
fn observer_sees_every_record() {
    let seen = RefCell::new(Vec::new());
    let (teacher, start) = appendix::<f64>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .max_generations(6)
        .observe(|record| seen.borrow_mut().push(record.clone()))
        .run()
        .unwrap();
    assert_eq!(seen.into_inner(), run.records().to_vec());
}

#[test]
fn ramp_schedule_sets_weights() {
    let (teacher, start) = appendix::<f64>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .schedule(AnchorSchedule::Ramp {
            start: 0.0,
            end: 0.4,
            steps: 4,
        })
        .max_generations(7)
        .run()
        .unwrap();
    let weights: Vec<f64> = run.records()[1..]
        .iter()
        .map(|r| r.anchor_weight.unwrap())
        .collect();
    let expected = [0.0, 0.1, 0.2, 0.3, 0.4, 0.4, 0.4];
    for (g, (got, want)) in weights.iter().zip(expected).enumerate() {
        assert!(
            (got - want).abs() < 1e-15,
            "step {}: {got} != {want}",
            g + 1
        );
    }
}

#[test]
fn adaptive_schedule_raises_weight_when_distance_rises() {
    let (teacher, start) = appendix::<f64>();
    let teachers = [teacher.clone()];
    let mut student =
        NoisyStudent::against_teacher(0.05, ErrorMeasure::MaxLogRatio, teacher).unwrap();
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .schedule(AnchorSchedule::Adaptive {
            initial: 0.0,
            increment: 0.1,
            max: 0.5,
            target: 1.0,
        })
        .max_generations(30)
        .run()
        .unwrap();

    let records = run.records();
    for pair in records[1..].windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        let raised = before.ratio.unwrap() >= 1.0;
        let expected = if raised {
            (before.anchor_weight.unwrap() + 0.1).min(0.5)
        } else {
            before.anchor_weight.unwrap()
        };
        assert!((after.anchor_weight.unwrap() - expected).abs() < 1e-12);
    }
    assert!(
        records[2].anchor_weight.unwrap() > 0.0,
        "no raise after D rose"
    );
    let last = records.last().unwrap();
    assert!(last.divergence < records[1].divergence);
}

#[test]
fn corrected_noisy_bound_holds_every_step() {
    for anchor in [0.0, 0.1, 0.3, 0.7] {
        let (teacher, _) = appendix::<f64>();
        let mut student =
            NoisyStudent::against_teacher(0.05, ErrorMeasure::MaxLogRatio, teacher).unwrap();
        let run = run_constant(anchor, &mut student, 40);
        for record in &run.records()[1..] {
            assert!(record.divergence <= record.step_bound.unwrap() + 1e-12);
            assert!(record.divergence <= record.bound + 1e-12);
        }
        if anchor > 0.0 {
            let limit = run.max_fit_error_max().unwrap() / anchor;
            assert!(run.neighbourhood(10).unwrap() <= limit);
        }
    }
}

#[test]
fn bound_with_kl_error_fails() {
    let (teacher, _) = appendix::<f64>();
    let mut student =
        NoisyStudent::against_teacher(0.05, ErrorMeasure::KullbackLeibler, teacher).unwrap();
    let run = run_constant(0.3, &mut student, 10);
    let violated = run.records().windows(2).any(|pair| {
        let claimed = 0.7 * pair[0].divergence + pair[1].fit_error.unwrap();
        pair[1].divergence > claimed + 1e-9
    });
    assert!(
        violated,
        "D(S_g+1) <= (1 - a) D(S_g) + KL(q || S) held every step"
    );
}

#[test]
fn anchored_runs_end_closer_than_unanchored() {
    let (teacher, _) = appendix::<f64>();
    let mut drifting =
        NoisyStudent::against_teacher(0.05, ErrorMeasure::MaxLogRatio, teacher.clone()).unwrap();
    let unanchored = run_constant(0.0, &mut drifting, 40)
        .neighbourhood(10)
        .unwrap();
    for anchor in [0.1, 0.3, 0.5] {
        let mut student =
            NoisyStudent::against_teacher(0.05, ErrorMeasure::MaxLogRatio, teacher.clone())
                .unwrap();
        let anchored = run_constant(anchor, &mut student, 40)
            .neighbourhood(10)
            .unwrap();
        assert!(
            anchored < unanchored,
            "a = {anchor}: {anchored} >= {unanchored}"
        );
    }
    let mut random = NoisyStudent::random(0.05, ErrorMeasure::MaxLogRatio, 5).unwrap();
    let walk = run_constant(0.0, &mut random, 40)
        .neighbourhood(10)
        .unwrap();
    let mut random = NoisyStudent::random(0.05, ErrorMeasure::MaxLogRatio, 5).unwrap();
    let anchored = run_constant(0.3, &mut random, 40)
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

#[test]
fn reference_changes_what_is_measured() {
    let (teacher, start) = appendix::<f64>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .reference(&start)
        .max_generations(1)
        .run()
        .unwrap();
    assert!(run.records()[0].divergence.abs() < 1e-15);
    assert!(run.records()[1].divergence > 0.0);
}

#[test]
fn empty_teacher_list_is_rejected() {
    let (_, start) = appendix::<f64>();
    let mut student = ExactStudent;
    let error = Recursion::new(&[], &start, convex_mixture, &mut student)
        .run()
        .unwrap_err();
    assert!(matches!(error, Error::Empty { .. }));
}

#[test]
fn mismatched_initial_student_is_rejected() {
    let (teacher, _) = appendix::<f64>();
    let start = DistributionBatch::from_probs(&array![[0.5, 0.5]]).unwrap();
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

#[test]
fn invalid_schedule_is_rejected() {
    let (teacher, start) = appendix::<f64>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let error = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .schedule(AnchorSchedule::Ramp {
            start: 0.1,
            end: 1.5,
            steps: 3,
        })
        .run()
        .unwrap_err();
    assert!(matches!(error, Error::InvalidAnchorWeight { value, .. } if value == 1.5));
}

#[test]
fn invalid_adaptive_parameters_are_rejected() {
    let increment = AnchorSchedule::Adaptive {
        initial: 0.1,
        increment: -0.1,
        max: 0.5,
        target: 1.0,
    };
    assert!(matches!(
        increment.validate(),
        Err(Error::InvalidParameter { .. })
    ));
    let target = AnchorSchedule::Adaptive {
        initial: 0.1,
        increment: 0.1,
        max: 0.5,
        target: f64::NAN,
    };
    assert!(matches!(
        target.validate(),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn negative_improvement_tolerance_is_rejected() {
    let (teacher, start) = appendix::<f64>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let error = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .stop_on_small_improvement(-1.0)
        .run()
        .unwrap_err();
    assert!(matches!(error, Error::InvalidParameter { value, .. } if value == -1.0));
}

#[test]
fn bad_metric_plateau_is_rejected() {
    let (teacher, start) = appendix::<f64>();
    let teachers = [teacher];
    for (tolerance, patience) in [(f64::NAN, 2), (-1.0, 2)] {
        let mut student = ExactStudent;
        let error = Recursion::new(&teachers, &start, convex_mixture, &mut student)
            .track_metric(|_| Ok(1.0))
            .stop_on_metric_plateau(tolerance, patience)
            .run()
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidParameter { name: "metric plateau tolerance", value, .. }
                    if value.to_bits() == tolerance.to_bits()
            ),
            "{error:?}"
        );
    }
    let mut student = ExactStudent;
    let error = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .track_metric(|_| Ok(1.0))
        .stop_on_metric_plateau(1e-3, 0)
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

#[test]
fn adaptive_initial_above_max_is_rejected() {
    let schedule = AnchorSchedule::Adaptive {
        initial: 0.5,
        increment: 0.1,
        max: 0.2,
        target: 0.9,
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
        initial: 0.2,
        increment: 0.1,
        max: 0.2,
        target: 0.9,
    };
    assert!(equal.validate().is_ok());
}

#[test]
fn non_finite_metric_is_rejected() {
    let (teacher, start) = appendix::<f64>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let error = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .track_metric(|_| Ok(f64::NAN))
        .run()
        .unwrap_err();
    assert!(matches!(
        error,
        Error::NonFiniteMetric { generation: 0, .. }
    ));
}

#[test]
fn factory_error_is_passed_on() {
    let (teacher, start) = appendix::<f64>();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let error = Recursion::new(&teachers, &start, ConvexMixture::new, &mut student)
        .schedule(AnchorSchedule::Constant(0.0))
        .run()
        .unwrap_err();
    assert!(matches!(error, Error::InvalidAnchorWeight { value, .. } if value == 0.0));
}

#[test]
fn accuracy_rejects_bad_labels() {
    let model = DistributionBatch::<f64>::from_probs(&array![[0.7, 0.3], [0.4, 0.6]]).unwrap();
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

#[test]
fn accuracy_uses_input_weights() {
    let model = DistributionBatch::<f64>::from_probs(&array![[0.7, 0.3], [0.4, 0.6]])
        .unwrap()
        .with_input_weights(&array![3.0, 1.0])
        .unwrap();
    assert!((accuracy(&model, &[0, 0]).unwrap() - 0.75).abs() < 1e-15);
}

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
