//! Fuzzes the students of `metadistill::student` and the `Recursion` runner with each of them.
//!
//! A student fits a decoded meta-teacher batch: its output must be a batch of
//! distributions of the same shape and input weights, and a noisy student's
//! error must have the requested size. The runner then goes a few generations
//! with the convex mixture, any anchor schedule and any stopping rule, and every
//! record must be free of NaN, with `D(S_g)` within its proven bound.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use metadistill::recursion::{AnchorSchedule, Recursion, RecursionTrajectory, convex_mixture};
use metadistill::student::{
    Capacity, ErrorMeasure, ExactStudent, KeptTokens, NoisyStudent, SoftmaxStudent, SparseStudent,
    Student,
};
use metadistill::{DistributionBatch, Divergence, Error, default_sum_tolerance};
use metadistill_fuzz::{
    FuzzFloat, MAX_ROWS, batch, check_batch, distribution, innermost, length, value, values,
    weight_like,
};
use ndarray::Array2;

/// The maximum number of generations of a run; a few reach every stopping rule.
const MAX_GENERATIONS: usize = 4;

/// The maximum number of iterations of the softmax student's minimizer, to keep runs fast.
const MAX_SOFTMAX_ITERATIONS: usize = 3;

/// A decoded student with what its fit promises.
struct Decoded<F: FuzzFloat> {
    student: Box<dyn Student<F>>,
    /// The size and measure of a noisy student's error.
    noise: Option<(F, ErrorMeasure)>,
}

/// Decodes one of the students, or `None` when its constructor rejected the parameters.
fn student<F: FuzzFloat>(
    u: &mut Unstructured,
    rows: usize,
    len: usize,
) -> Result<Option<Decoded<F>>> {
    let measure = if u.arbitrary()? {
        ErrorMeasure::KullbackLeibler
    } else {
        ErrorMeasure::MaxLogRatio
    };
    let kind = u.int_in_range(0..=4)?;
    let decoded = match kind {
        0 => Decoded {
            student: Box::new(ExactStudent),
            noise: None,
        },
        1 | 2 => {
            let size = if u.ratio(3, 4)? {
                weight_like::<F>(u)?
            } else {
                value::<F>(u)?
            };
            let result = if kind == 1 {
                NoisyStudent::random(size, measure, u.arbitrary()?)
            } else {
                let teacher_rows = if u.ratio(7, 8)? {
                    rows
                } else {
                    u.int_in_range(1..=MAX_ROWS)?
                };
                let teacher_len = if u.ratio(7, 8)? { len } else { length(u)? };
                let Some(teacher) = batch::<F>(u, teacher_rows, teacher_len)? else {
                    return Ok(None);
                };
                NoisyStudent::against_teacher(size, measure, teacher)
            };
            match result {
                Ok(noisy) => {
                    assert!(noisy.size() == size);
                    Decoded {
                        student: Box::new(noisy),
                        noise: Some((size, measure)),
                    }
                }
                Err(error) => {
                    assert!(matches!(error, Error::InvalidParameter { .. }), "{error:?}");
                    return Ok(None);
                }
            }
        }
        3 => {
            let kept = if u.arbitrary()? {
                KeptTokens::Largest
            } else {
                KeptTokens::Best
            };
            let k = u.int_in_range(0..=13)?;
            let sparse = SparseStudent::new(k, kept);
            assert_eq!(sparse.k(), k);
            Decoded {
                student: Box::new(sparse),
                noise: None,
            }
        }
        _ => match softmax::<F>(u, rows, len)? {
            Some(softmax) => Decoded {
                student: Box::new(softmax),
                noise: None,
            },
            None => return Ok(None),
        },
    };
    assert!(!decoded.student.name().is_empty());
    Ok(Some(decoded))
}

/// Decodes a softmax student with a tiny iteration budget and any features.
fn softmax<F: FuzzFloat>(
    u: &mut Unstructured,
    rows: usize,
    len: usize,
) -> Result<Option<SoftmaxStudent<F>>> {
    let feature_rows = if u.ratio(7, 8)? {
        rows
    } else {
        u.int_in_range(0..=MAX_ROWS)?
    };
    let columns = u.int_in_range(0..=3)?;
    let data = if u.ratio(3, 4)? {
        (0..feature_rows * columns)
            .map(|_| Ok(F::from_f64_lossy(f64::from(u.arbitrary::<i8>()?) / 16.0)))
            .collect::<Result<Vec<F>>>()?
    } else {
        values::<F>(u, feature_rows * columns)?
    };
    let Ok(features) = Array2::from_shape_vec((feature_rows, columns), data) else {
        return Ok(None);
    };
    let classes = if u.ratio(7, 8)? { len } else { length(u)? };
    let capacity = match u.int_in_range(0..=2)? {
        0 => Capacity::Full,
        1 => {
            let count = u.int_in_range(0..=3)?;
            let indices = (0..count)
                .map(|_| u.int_in_range(0..=4))
                .collect::<Result<Vec<usize>>>()?;
            Capacity::Features(indices)
        }
        _ => Capacity::Rank(u.int_in_range(0..=3)?),
    };
    let student = match SoftmaxStudent::new(features.view(), classes, capacity) {
        Ok(student) => student,
        Err(error) => {
            assert!(
                matches!(
                    error,
                    Error::Empty { .. }
                        | Error::NonFiniteFeature { .. }
                        | Error::FeatureIndexOutOfRange { .. }
                        | Error::InvalidParameter { .. }
                ),
                "SoftmaxStudent::new returned an undocumented error: {error:?}"
            );
            return Ok(None);
        }
    };
    assert!(student.last_report().is_none());
    let tolerance = if u.ratio(3, 4)? {
        F::from_f64_lossy(1e-6)
    } else {
        value(u)?
    };
    let student = match student.with_tolerance(tolerance) {
        Ok(student) => student,
        Err(error) => {
            assert!(matches!(error, Error::InvalidParameter { .. }), "{error:?}");
            return Ok(None);
        }
    };
    Ok(Some(
        student
            .with_max_iterations(u.int_in_range(0..=MAX_SOFTMAX_ITERATIONS)?)
            .with_warm_start(u.arbitrary()?)
            .with_seed(u.arbitrary()?),
    ))
}

/// Checks that a fit error is one the students document.
fn check_fit_error(name: &str, error: &Error) {
    assert!(!error.to_string().is_empty());
    assert!(
        matches!(
            innermost(error),
            Error::BatchSizeMismatch { .. }
                | Error::VocabularyMismatch { .. }
                | Error::InvalidParameter { .. }
                | Error::UnreachableStudentError { .. }
                | Error::Empty { .. }
        ),
        "{name}.fit returned an undocumented error: {error:?}"
    );
}

/// Checks a fitted batch: a batch of distributions shaped and weighted like the meta-teacher.
fn check_fit<F: FuzzFloat>(
    decoded: &Decoded<F>,
    meta_teacher: &DistributionBatch<F>,
    fitted: &DistributionBatch<F>,
) {
    check_batch(fitted, default_sum_tolerance(fitted.vocab_size()));
    assert_eq!(fitted.probs().dim(), meta_teacher.probs().dim());
    assert_eq!(fitted.input_weights(), meta_teacher.input_weights());
    let Some((size, measure)) = decoded.noise else {
        return;
    };
    let divergence = match measure {
        ErrorMeasure::KullbackLeibler => Divergence::KullbackLeibler,
        ErrorMeasure::MaxLogRatio => Divergence::max_log_ratio(),
    };
    let Ok(errors) = divergence.per_row(meta_teacher, fitted) else {
        panic!("the error of a noisy fit could not be measured");
    };
    for (row, &error) in errors.iter().enumerate() {
        // The documented precision of the bisection: √ε · max(1, size).
        let allowed = F::epsilon().sqrt() * size.max(F::one());
        assert!(
            (error - size).abs() <= allowed,
            "noisy student row {row}: error {error}, requested {size}"
        );
    }
}

/// Decodes an anchor schedule, valid or not.
fn schedule<F: FuzzFloat>(u: &mut Unstructured) -> Result<AnchorSchedule<F>> {
    Ok(match u.int_in_range(0..=2)? {
        0 => AnchorSchedule::Constant(weight_like(u)?),
        1 => AnchorSchedule::Ramp {
            start: weight_like(u)?,
            end: weight_like(u)?,
            steps: u.int_in_range(0..=4)?,
        },
        _ => AnchorSchedule::Adaptive {
            initial: weight_like(u)?,
            increment: weight_like(u)?,
            max: weight_like(u)?,
            target: weight_like(u)?,
        },
    })
}

/// Checks every record of a run and that `D(S_g)` stays within its bound.
fn check_trajectory<F: FuzzFloat>(run: &RecursionTrajectory<F>, observed: usize) {
    let records = run.records();
    assert_eq!(records.len(), observed, "the observer missed a record");
    assert_eq!(run.students().len(), records.len());
    assert_eq!(run.divergences().len(), records.len());
    let finite_or_inf = |name: &str, g: usize, value: F| {
        assert!(!value.is_nan(), "{name} at generation {g} is NaN");
        assert!(value >= F::zero(), "{name} at generation {g} is {value}");
    };
    for (g, record) in records.iter().enumerate() {
        assert_eq!(record.generation, g);
        finite_or_inf("D(S_g)", g, record.divergence);
        finite_or_inf("bound", g, record.bound);
        for (name, optional) in [
            ("step bound", record.step_bound),
            ("ratio", record.ratio),
            ("fit error", record.fit_error),
            ("max fit error", record.fit_error_max),
        ] {
            if let Some(value) = optional {
                finite_or_inf(name, g, value);
            }
        }
        if let Some(a) = record.effective_anchor_weight {
            assert!(
                a >= F::zero() && a <= F::one(),
                "a* at generation {g} is {a}"
            );
        }
        if let Some(a) = record.anchor_weight {
            assert!(
                a >= F::zero() && a <= F::one(),
                "a at generation {g} is {a}"
            );
        }
        // D(S_g) <= (1 - a) D(S_{g-1}) + ε∞ is proven for the convex mixture, and
        // each side carries the rounding of a few sums of up to MAX_LEN terms.
        let slack = F::from_f64_lossy(1e3) * F::epsilon() * (record.bound + F::one());
        assert!(
            record.divergence <= record.bound + slack,
            "D(S_{g}) = {} > bound {}",
            record.divergence,
            record.bound
        );
        if let Some(step) = record.step_bound {
            let slack = F::from_f64_lossy(1e3) * F::epsilon() * (step + F::one());
            assert!(
                record.divergence <= step + slack,
                "D(S_{g}) = {} > step bound {step}",
                record.divergence
            );
        }
    }
    if let (true, Some(last)) = (records.len() > 1, run.students().last()) {
        check_batch(last, default_sum_tolerance(last.vocab_size()));
    }
}

fn run<F: FuzzFloat>(u: &mut Unstructured) -> Result<()> {
    let rows = u.int_in_range(1..=MAX_ROWS)?;
    let len = length(u)?;
    let Some(mut decoded) = student::<F>(u, rows, len)? else {
        return Ok(());
    };
    let Some(meta_teacher) = batch::<F>(u, rows, len)? else {
        return Ok(());
    };
    let name = decoded.student.name();
    match decoded.student.fit(&meta_teacher) {
        Ok(fitted) => check_fit(&decoded, &meta_teacher, &fitted),
        Err(error) => check_fit_error(&name, &error),
    }
    if let Some(report) = decoded.student.last_fit_report() {
        assert!(!report.loss.is_nan(), "{name} reported a NaN loss");
        assert!(
            report.losses.iter().all(|loss| !loss.is_nan()),
            "{name}: NaN in losses"
        );
    }
    if let Some(single) = distribution::<F>(u, len)? {
        match decoded.student.fit_one(&single) {
            Ok(fitted) => {
                let tolerance = default_sum_tolerance(fitted.len());
                metadistill_fuzz::check_distribution(&fitted, tolerance);
            }
            Err(error) => check_fit_error(&name, &error),
        }
    }

    let teacher_count = u.int_in_range(0..=2)?;
    let mut teachers = Vec::new();
    for _ in 0..teacher_count {
        if let Some(teacher) = batch::<F>(u, rows, len)? {
            teachers.push(teacher);
        }
    }
    let start_rows = if u.ratio(15, 16)? {
        rows
    } else {
        u.int_in_range(1..=MAX_ROWS)?
    };
    let Some(start) = batch::<F>(u, start_rows, len)? else {
        return Ok(());
    };
    let schedule = schedule::<F>(u)?;
    let generations = u.int_in_range(0..=MAX_GENERATIONS)?;
    let improvement = if u.arbitrary()? {
        Some(value::<F>(u)?)
    } else {
        None
    };
    let metric_values = values::<F>(u, MAX_GENERATIONS + 1)?;
    let plateau = if u.arbitrary()? {
        Some((value::<F>(u)?, u.int_in_range(0..=2)?))
    } else {
        None
    };
    let track = u.arbitrary::<bool>()?;

    let mut observed = 0;
    let mut recursion = Recursion::new(&teachers, &start, convex_mixture, decoded.student.as_mut())
        .schedule(schedule)
        .max_generations(generations)
        .observe(|_| observed += 1);
    if let Some(tolerance) = improvement {
        recursion = recursion.stop_on_small_improvement(tolerance);
    }
    if track {
        let mut calls = 0;
        recursion = recursion.track_metric(move |_| {
            let value = metric_values.get(calls).copied().unwrap_or_else(F::one);
            calls += 1;
            Ok(value)
        });
    }
    if let Some((tolerance, patience)) = plateau {
        recursion = recursion.stop_on_metric_plateau(tolerance, patience);
    }
    let result = recursion.run();
    match result {
        Ok(run) => check_trajectory(&run, observed),
        Err(error) => {
            assert!(!error.to_string().is_empty());
            assert!(
                matches!(
                    innermost(&error),
                    Error::Empty { .. }
                        | Error::BatchSizeMismatch { .. }
                        | Error::VocabularyMismatch { .. }
                        | Error::InputWeightMismatch { .. }
                        | Error::InvalidAnchorWeight { .. }
                        | Error::InvalidParameter { .. }
                        | Error::NonFiniteMetric { .. }
                        | Error::UnreachableStudentError { .. }
                        | Error::TeacherCount { .. }
                ),
                "Recursion::run returned an undocumented error: {error:?}"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = if u.arbitrary::<bool>().unwrap_or(false) {
        run::<f32>(&mut u)
    } else {
        run::<f64>(&mut u)
    };
});
