//! Backs the "Guarantees" error table for the recursion, the students and the axiom checker.
//!
//! Every test builds, for one row of the table, an input for each listed
//! variant and checks that the function returns it, in `f32` and `f64`.

#[macro_use]
mod error_table_support;

use error_table_support::{DoublingOperator, batch, c, dist, in_row, matrix, unwrap_err, values};
use metadistill::axioms::{Checker, DistributionSpace, find_limit};
use metadistill::recursion::{
    AnchorSchedule, Recursion, accuracy, convex_mixture, run_exact, run_exact_batch,
    run_exact_streaming,
};
use metadistill::student::{
    Capacity, ErrorMeasure, ExactStudent, KeptTokens, NoisyStudent, SoftmaxStudent, SparseStudent,
    Student,
};
use metadistill::{ConvexMixture, DistributionBatch, Error, Real, Result};
use ndarray::Array1;

/// A test for the kind of error a case must return.
type IsExpected = fn(&Error) -> bool;

fn exact_runs<F: Real>() {
    let mixture = ConvexMixture::<F>::new(c(0.5)).unwrap();
    let teacher = dist::<F>(&[0.6, 0.3, 0.1]);
    let start = dist::<F>(&[0.2, 0.5, 0.3]);
    assert_err!(run_exact(&mixture, &[], &start, 3), Error::Empty { .. });
    assert_err!(
        run_exact(
            &mixture,
            std::slice::from_ref(&teacher),
            &dist(&[0.5, 0.5]),
            3
        ),
        Error::VocabularyMismatch { .. }
    );
    let two = [teacher.clone(), teacher];
    let error = in_row(unwrap_err(run_exact(&mixture, &two, &start, 3)));
    assert_is!(error, Error::TeacherCount { found: 2, .. });

    let rows = batch::<F>(&[&[0.6, 0.3, 0.1], &[0.2, 0.5, 0.3]]);
    let one_row = batch::<F>(&[&[0.2, 0.5, 0.3]]);
    let narrow = batch::<F>(&[&[0.5, 0.5], &[0.5, 0.5]]);
    let weighted = rows
        .clone()
        .with_input_weights(&Array1::from(values::<F>(&[3.0, 1.0])))
        .unwrap();
    let teachers = [rows.clone()];
    let two_batches = [rows.clone(), rows.clone()];
    type Run<F> = fn(
        &ConvexMixture<F>,
        &[DistributionBatch<F>],
        &DistributionBatch<F>,
        usize,
    ) -> Result<Vec<F>>;
    let runners: [(&str, Run<F>); 2] = [
        ("run_exact_batch", |o, t, s, g| {
            run_exact_batch(o, t, s, g).map(|run| run.divergences())
        }),
        ("run_exact_streaming", |o, t, s, g| {
            run_exact_streaming(o, t, s, g)
                .map(|(records, _)| records.iter().map(|record| record.divergence).collect())
        }),
    ];
    for (name, runner) in runners {
        let checks: [(Result<Vec<F>>, IsExpected); 5] = [
            (runner(&mixture, &[], &rows, 2), |e| {
                matches!(e, Error::Empty { .. })
            }),
            (runner(&mixture, &teachers, &one_row, 2), |e| {
                matches!(e, Error::BatchSizeMismatch { .. })
            }),
            (runner(&mixture, &teachers, &narrow, 2), |e| {
                matches!(e, Error::VocabularyMismatch { .. })
            }),
            (runner(&mixture, &teachers, &weighted, 2), |e| {
                matches!(e, Error::InputWeightMismatch { .. })
            }),
            (runner(&mixture, &two_batches, &rows, 2), |e| {
                matches!(e, Error::InRow { .. })
            }),
        ];
        for (result, is_expected) in checks {
            let error = unwrap_err(result);
            assert!(is_expected(&error), "{name}: {error:?}");
        }
    }
}

/// A student that returns a batch over another vocabulary.
struct WrongVocabulary;

impl<F: Real> Student<F> for WrongVocabulary {
    fn fit(&mut self, meta_teacher: &DistributionBatch<F>) -> Result<DistributionBatch<F>> {
        let uniform = metadistill::Distribution::uniform(meta_teacher.vocab_size() + 1)?;
        DistributionBatch::repeat(&uniform, meta_teacher.n_inputs())
    }
}

/// Sets up a two-generation run with exact students and the convex mixture.
fn exact_run<'a, F: Real>(
    teachers: &'a [DistributionBatch<F>],
    initial: &'a DistributionBatch<F>,
) -> Recursion<'a, F> {
    // `ExactStudent` has no fields, so leaking one allocates nothing.
    let student: &'a mut ExactStudent = Box::leak(Box::new(ExactStudent));
    Recursion::new(teachers, initial, convex_mixture, student).max_generations(2)
}

fn recursion_runner<F: Real>() {
    let rows = batch::<F>(&[&[0.6, 0.3, 0.1], &[0.2, 0.5, 0.3]]);
    let one_row = batch::<F>(&[&[0.2, 0.5, 0.3]]);
    let narrow = batch::<F>(&[&[0.5, 0.5], &[0.5, 0.5]]);
    let weighted = rows
        .clone()
        .with_input_weights(&Array1::from(values::<F>(&[3.0, 1.0])))
        .unwrap();
    let teachers = [rows.clone()];
    let mut exact = ExactStudent;
    let run = exact_run::<F>;
    assert_err!(run(&[], &rows).run(), Error::Empty { .. });
    assert_err!(
        run(&teachers, &one_row).run(),
        Error::BatchSizeMismatch { .. }
    );
    assert_err!(
        run(&teachers, &rows).reference(&narrow).run(),
        Error::VocabularyMismatch { .. }
    );
    assert_err!(
        run(&teachers, &weighted).run(),
        Error::InputWeightMismatch { .. }
    );
    assert_err!(
        run(&teachers, &rows)
            .schedule(AnchorSchedule::Constant(c(2.0)))
            .run(),
        Error::InvalidAnchorWeight { .. }
    );
    let backwards = AnchorSchedule::Adaptive {
        initial: c(0.8),
        increment: c(0.1),
        max: c(0.5),
        target: c(0.9),
    };
    assert_err!(
        run(&teachers, &rows).schedule(backwards).run(),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        run(&teachers, &rows)
            .stop_on_small_improvement(c(-1.0))
            .run(),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        run(&teachers, &rows)
            .stop_on_metric_plateau(c(f64::NAN), 2)
            .run(),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        run(&teachers, &rows)
            .stop_on_metric_plateau(c(0.1), 0)
            .run(),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        run(&teachers, &rows)
            .track_metric(|_| Ok(c(f64::NAN)))
            .run(),
        Error::NonFiniteMetric { generation: 0, .. }
    );
    assert_err!(
        run(&teachers, &rows)
            .track_metric(|_| Err(Error::Empty {
                what: "metric input"
            }))
            .run(),
        Error::Empty {
            what: "metric input"
        }
    );

    let failing_factory = Recursion::new(&teachers, &rows, ConvexMixture::new, &mut exact)
        .schedule(AnchorSchedule::Constant(F::zero()))
        .run();
    assert_err!(failing_factory, Error::InvalidAnchorWeight { .. });
    let broken_operator =
        Recursion::new(&teachers, &rows, |_| Ok(DoublingOperator), &mut exact).run();
    assert_is!(
        in_row(unwrap_err(broken_operator)),
        Error::InvalidOperatorOutput { .. }
    );
    let mut wrong = WrongVocabulary;
    let wrong_student = Recursion::new(&teachers, &rows, convex_mixture, &mut wrong).run();
    assert_err!(wrong_student, Error::VocabularyMismatch { .. });
}

fn recursion_controls<F: Real>() {
    assert_err!(
        AnchorSchedule::<F>::Constant(c(-0.1)).validate(),
        Error::InvalidAnchorWeight { .. }
    );
    let ramp = AnchorSchedule::<F>::Ramp {
        start: c(0.1),
        end: c(f64::NAN),
        steps: 3,
    };
    assert_err!(ramp.validate(), Error::InvalidAnchorWeight { .. });
    let negative_increment = AnchorSchedule::<F>::Adaptive {
        initial: c(0.1),
        increment: c(-0.1),
        max: c(0.5),
        target: c(0.9),
    };
    assert_err!(
        negative_increment.validate(),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        convex_mixture::<F>(c(1.5)),
        Error::InvalidAnchorWeight { .. }
    );

    let model = batch::<F>(&[&[0.7, 0.3], &[0.4, 0.6]]);
    assert_err!(accuracy(&model, &[0]), Error::LengthMismatch { .. });
    assert_err!(
        accuracy(&model, &[0, 2]),
        Error::InvalidLabel {
            row: 1,
            label: 2,
            ..
        }
    );
}

fn noisy_and_sparse_students<F: Real>() {
    let measure = ErrorMeasure::KullbackLeibler;
    assert_err!(
        NoisyStudent::<F>::random(c(-0.1), measure, 1),
        Error::InvalidParameter { .. }
    );
    let rows = batch::<F>(&[&[0.6, 0.3, 0.1], &[0.2, 0.5, 0.3]]);
    assert_err!(
        NoisyStudent::against_teacher(c(f64::INFINITY), measure, rows.clone()),
        Error::InvalidParameter { .. }
    );

    let mut against = NoisyStudent::against_teacher(c(0.01), measure, rows.clone()).unwrap();
    assert_err!(
        against.fit(&batch(&[&[0.2, 0.5, 0.3]])),
        Error::BatchSizeMismatch { .. }
    );
    assert_err!(
        against.fit(&batch(&[&[0.5, 0.5], &[0.5, 0.5]])),
        Error::VocabularyMismatch { .. }
    );

    // A point mass leaves no direction to tilt along.
    let mut random = NoisyStudent::<F>::random(c(0.1), measure, 7).unwrap();
    assert_err!(
        random.fit(&batch(&[&[1.0, 0.0]])),
        Error::UnreachableStudentError { row: 0, .. }
    );

    let q = dist::<F>(&[0.5, 0.3, 0.2]);
    assert!(ExactStudent.fit_one(&q).is_ok());
    assert!(SparseStudent::new(1, KeptTokens::Best).fit_one(&q).is_ok());
}

fn softmax_student<F: Real>() {
    let features = matrix::<F>(&[&[0.0, 1.0], &[1.0, 0.0]]);
    let no_rows = ndarray::Array2::<F>::zeros((0, 2));
    assert_err!(
        SoftmaxStudent::new(no_rows.view(), 2, Capacity::Full),
        Error::Empty { .. }
    );
    assert_err!(
        SoftmaxStudent::new(features.view(), 0, Capacity::Full),
        Error::Empty { .. }
    );
    let nan = matrix::<F>(&[&[0.0, f64::NAN]]);
    assert_err!(
        SoftmaxStudent::new(nan.view(), 2, Capacity::Full),
        Error::NonFiniteFeature {
            row: 0,
            column: 1,
            ..
        }
    );
    assert_err!(
        SoftmaxStudent::new(features.view(), 2, Capacity::Features(vec![0, 5])),
        Error::FeatureIndexOutOfRange { position: 1, .. }
    );
    assert_err!(
        SoftmaxStudent::new(features.view(), 2, Capacity::Rank(0)),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        SoftmaxStudent::new(features.view(), usize::MAX, Capacity::Full),
        Error::InvalidParameter { .. }
    );

    let student = SoftmaxStudent::new(features.view(), 2, Capacity::Full).unwrap();
    assert_err!(
        student.clone().with_tolerance(c(-1.0)),
        Error::InvalidParameter { .. }
    );
    let mut untrainable = student.clone().with_max_iterations(0);
    let target = batch::<F>(&[&[0.6, 0.4], &[0.3, 0.7]]);
    assert_err!(untrainable.fit(&target), Error::InvalidParameter { .. });
    let mut trainable = student;
    assert_err!(
        trainable.fit(&batch(&[&[0.6, 0.4]])),
        Error::BatchSizeMismatch { .. }
    );
    assert_err!(
        trainable.fit(&batch(&[&[0.2, 0.3, 0.5], &[0.2, 0.3, 0.5]])),
        Error::VocabularyMismatch { .. }
    );
    // fit_one passes the errors of fit through.
    assert_err!(
        trainable.fit_one(&dist(&[0.2, 0.8])),
        Error::BatchSizeMismatch { .. }
    );
}

fn checker_settings<F: Real>() {
    let checker = Checker::<F>::new;
    assert_err!(checker().with_cases(0), Error::InvalidParameter { .. });
    assert_err!(
        checker().with_tolerance(0.0),
        Error::InvalidParameter { .. }
    );
    assert_err!(checker().with_teachers(0), Error::InvalidParameter { .. });
    assert_err!(
        checker().with_history_len(0),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        checker().with_generations(0),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        checker().with_max_sensitivity(f64::INFINITY),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        checker().with_anchor_grid(&[0.5]),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        checker().with_anchor_grid(&[0.1, 1.5]),
        Error::InvalidAnchorGridEntry { index: 1, .. }
    );
    assert_err!(
        checker().with_anchor_grid(&[0.5, 0.5]),
        Error::UnsortedAnchorGrid { index: 1, .. }
    );
    assert_err!(
        checker().check_family(F::zero(), ConvexMixture::new),
        Error::InvalidAnchorWeight { .. }
    );

    let (min, max) = (3, 2);
    assert_err!(
        DistributionSpace::new(min..=max, 10.0),
        Error::InvalidVocabularyRange { min: 3, max: 2 }
    );
    assert_err!(
        DistributionSpace::new(2..=4, 0.5),
        Error::InvalidParameter { .. }
    );
    let space = DistributionSpace::new(2..=4, 10.0).unwrap();
    assert_err!(space.with_zeros(1.0), Error::InvalidParameter { .. });
}

fn limits<F: Real>() {
    let mixture = ConvexMixture::<F>::new(c(0.5)).unwrap();
    let teacher = dist::<F>(&[0.6, 0.3, 0.1]);
    let start = dist::<F>(&[0.2, 0.5, 0.3]);
    let tolerance = c::<F>(1e-6);
    assert_err!(
        find_limit(&mixture, &[], &start, tolerance, 10),
        Error::Empty { .. }
    );
    assert_err!(
        find_limit(
            &mixture,
            std::slice::from_ref(&teacher),
            &start,
            c(-1.0),
            10
        ),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        find_limit(
            &mixture,
            std::slice::from_ref(&teacher),
            &dist(&[0.5, 0.5]),
            tolerance,
            10
        ),
        Error::VocabularyMismatch { .. }
    );
    assert_err!(
        find_limit(&DoublingOperator, &[teacher], &start, tolerance, 10),
        Error::InvalidOperatorOutput { .. }
    );
}

for_both_floats!(
    exact_runs,
    recursion_runner,
    recursion_controls,
    noisy_and_sparse_students,
    softmax_student,
    checker_settings,
    limits,
);
