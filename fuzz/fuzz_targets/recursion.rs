//! Fuzzes `recursion::run_exact` and `run_exact_batch` with the convex mixture.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use metadistill::recursion::{Trajectory, run_exact, run_exact_batch};
use metadistill::{ConvexMixture, Distribution, Error, default_sum_tolerance};
use metadistill_fuzz::{FuzzFloat, MAX_ROWS, batch, check_batch, distribution, length, value};

/// The maximum number of generations of a run; a few reach every code path.
const MAX_GENERATIONS: usize = 6;

/// Checks every record and student of a trajectory of `generations` steps.
fn check_trajectory<F: FuzzFloat>(run: &Trajectory<F>, generations: usize) {
    assert_eq!(run.records().len(), generations + 1);
    assert_eq!(run.students().len(), generations + 1);
    assert_eq!(run.divergences().len(), generations + 1);
    for (g, record) in run.records().iter().enumerate() {
        assert_eq!(record.generation, g);
        assert!(!record.divergence.is_nan(), "D(S_{g}) is NaN");
        assert!(
            record.divergence >= F::zero(),
            "D(S_{g}) = {} < 0",
            record.divergence
        );
        assert!(!record.bound.is_nan(), "bound at generation {g} is NaN");
        assert!(
            record.bound >= F::zero(),
            "bound at generation {g} is {}",
            record.bound
        );
        if let Some(ratio) = record.ratio {
            assert!(!ratio.is_nan(), "ratio at generation {g} is NaN");
            assert!(ratio >= F::zero(), "ratio at generation {g} is {ratio}");
        }
        match record.effective_anchor_weight {
            Some(a) => {
                assert!(g > 0);
                assert!(
                    a >= F::zero() && a <= F::one(),
                    "a* at generation {g} is {a}"
                );
            }
            None => assert_eq!(g, 0),
        }
    }
    // After at least one step the last student is an operator output, checked
    // against the default tolerance; before it, it is the caller's S_0.
    let last = run.final_student();
    let tolerance = if generations > 0 {
        default_sum_tolerance(last.vocab_size())
    } else {
        F::infinity()
    };
    check_batch(last, tolerance);
}

/// Checks that an error of a run is one the recursion documents.
fn check_error(error: &Error) {
    let inner = match error {
        Error::InRow { source, .. } => source.as_ref(),
        other => other,
    };
    assert!(
        matches!(
            inner,
            Error::Empty { .. }
                | Error::BatchSizeMismatch { .. }
                | Error::VocabularyMismatch { .. }
                | Error::InputWeightMismatch { .. }
                | Error::TeacherCount { .. }
                | Error::InvalidOperatorOutput { .. }
        ),
        "the recursion returned an undocumented error: {error:?}"
    );
}

fn run<F: FuzzFloat>(u: &mut Unstructured) -> Result<()> {
    let mixture = match u.int_in_range(0..=3)? {
        0 => ConvexMixture::unanchored(),
        1 => match ConvexMixture::new(value::<F>(u)?) {
            Ok(mixture) => mixture,
            Err(_) => return Ok(()),
        },
        _ => {
            let anchor = F::from_f64_lossy(f64::from(u.arbitrary::<u16>()?) / f64::from(u16::MAX));
            ConvexMixture::new(anchor).unwrap_or_else(|_| ConvexMixture::unanchored())
        }
    };
    let generations = u.int_in_range(0..=MAX_GENERATIONS)?;
    let len = length(u)?;

    let teacher_count = u.int_in_range(0..=2)?;
    let mut teachers: Vec<Distribution<F>> = Vec::new();
    for _ in 0..teacher_count {
        let this_len = if u.ratio(15, 16)? { len } else { length(u)? };
        if let Some(d) = distribution(u, this_len)? {
            teachers.push(d);
        }
    }
    let start_len = if u.ratio(15, 16)? { len } else { length(u)? };
    if let Some(start) = distribution::<F>(u, start_len)? {
        match run_exact(&mixture, &teachers, &start, generations) {
            Ok(run) => check_trajectory(&run, generations),
            Err(error) => check_error(&error),
        }
    }

    let rows = u.int_in_range(1..=MAX_ROWS)?;
    let mut teacher_batches = Vec::new();
    for _ in 0..u.int_in_range(0..=2)? {
        if let Some(b) = batch::<F>(u, rows, len)? {
            teacher_batches.push(b);
        }
    }
    let start_rows = if u.ratio(15, 16)? {
        rows
    } else {
        u.int_in_range(1..=MAX_ROWS)?
    };
    if let Some(start) = batch::<F>(u, start_rows, len)? {
        match run_exact_batch(&mixture, &teacher_batches, &start, generations) {
            Ok(run) => check_trajectory(&run, generations),
            Err(error) => check_error(&error),
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
