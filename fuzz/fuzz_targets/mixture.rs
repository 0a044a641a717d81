//! Fuzzes `ConvexMixture`: its constructor, `build`, `build_batch` and `combine_into`.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use metadistill::operator::effective_anchor_weight_batch;
use metadistill::{
    ConvexMixture, Distribution, DistributionBatch, Error, MetaTeacherOperator,
    default_sum_tolerance, effective_anchor_weight,
};
use metadistill_fuzz::{
    FuzzFloat, MAX_ROWS, batch, check_batch, check_distribution, distribution, length, value,
};
use ndarray::{Array1, ArrayView1};

/// Decodes an operator: mostly an anchor in [0, 1], sometimes any float, sometimes unanchored.
fn operator<F: FuzzFloat>(u: &mut Unstructured) -> Result<Option<ConvexMixture<F>>> {
    let anchor = match u.int_in_range(0..=3)? {
        0 => return Ok(Some(ConvexMixture::unanchored())),
        1 => value::<F>(u)?,
        _ => F::from_f64_lossy(f64::from(u.arbitrary::<u16>()?) / f64::from(u16::MAX)),
    };
    let result = ConvexMixture::new(anchor);
    let in_range = anchor > F::zero() && anchor <= F::one();
    assert_eq!(result.is_ok(), in_range, "anchor {anchor}: {result:?}");
    match result {
        Ok(mixture) => {
            assert!(mixture.anchor() == anchor);
            assert!(mixture.anchor_weight() == anchor);
            Ok(Some(mixture))
        }
        Err(error) => {
            assert!(
                matches!(error, Error::InvalidAnchorWeight { .. }),
                "{error:?}"
            );
            Ok(None)
        }
    }
}

/// Decodes up to `max` distributions, each of length `len` or, rarely, another length.
fn distributions<F: FuzzFloat>(
    u: &mut Unstructured,
    len: usize,
    max: usize,
) -> Result<Vec<Distribution<F>>> {
    let count = u.int_in_range(0..=max)?;
    let mut list = Vec::new();
    for _ in 0..count {
        let this_len = if u.ratio(15, 16)? { len } else { length(u)? };
        if let Some(d) = distribution(u, this_len)? {
            list.push(d);
        }
    }
    Ok(list)
}

/// Checks that `q` keeps at least the share `a` of the teacher on every token.
fn check_anchoring<F: FuzzFloat>(a: F, q: &Distribution<F>, teacher: &Distribution<F>) {
    for (&qi, &ti) in q.as_slice().iter().zip(teacher.as_slice()) {
        let floor = a * ti;
        // a t and the sum a t + (1 - a) s round once each.
        if floor.is_normal() {
            let slack = F::from_f64_lossy(4.0) * F::epsilon() * floor;
            assert!(qi >= floor - slack, "q_i = {qi} < a T0_i = {floor}");
        }
    }
}

/// Checks an effective anchor weight: a number in [0, 1], or a documented error.
fn check_anchor_weight<F: FuzzFloat>(result: std::result::Result<F, Error>) {
    match result {
        Ok(a) => {
            assert!(!a.is_nan(), "effective anchor weight is NaN");
            assert!(a >= F::zero(), "effective anchor weight {a} < 0");
            assert!(a <= F::one(), "effective anchor weight {a} > 1");
        }
        Err(error) => assert!(
            matches!(
                error,
                Error::VocabularyMismatch { .. } | Error::BatchSizeMismatch { .. }
            ),
            "effective_anchor_weight returned an undocumented error: {error:?}"
        ),
    }
}

fn run<F: FuzzFloat>(u: &mut Unstructured) -> Result<()> {
    let Some(mixture) = operator::<F>(u)? else {
        return Ok(());
    };
    assert!(!mixture.name().is_empty());
    let len = length(u)?;
    let teachers = distributions::<F>(u, len, 2)?;
    let students = distributions::<F>(u, len, 3)?;

    match mixture.build(&teachers, &students) {
        Ok(q) => {
            check_distribution(&q, default_sum_tolerance(q.len()));
            if let Some(teacher) = teachers.first() {
                check_anchoring(mixture.anchor(), &q, teacher);
                check_anchor_weight(effective_anchor_weight(&q, teacher));
            }
        }
        Err(error) => assert!(
            matches!(
                error,
                Error::Empty { .. }
                    | Error::VocabularyMismatch { .. }
                    | Error::TeacherCount { .. }
                    | Error::InvalidOperatorOutput { .. }
            ),
            "build returned an undocumented error: {error:?}"
        ),
    }

    // combine_into is public, so callers may pass views of any length.
    let out_len = if u.ratio(3, 4)? { len } else { length(u)? };
    let teacher_views: Vec<ArrayView1<F>> = teachers.iter().map(Distribution::probs).collect();
    let student_views: Vec<ArrayView1<F>> = students.iter().map(Distribution::probs).collect();
    let mut out = Array1::zeros(out_len);
    if let Err(error) = mixture.combine_into(&teacher_views, &student_views, out.view_mut()) {
        assert!(
            matches!(
                error,
                Error::Empty { .. } | Error::TeacherCount { .. } | Error::LengthMismatch { .. }
            ),
            "combine_into returned an undocumented error: {error:?}"
        );
    }

    let rows = u.int_in_range(1..=MAX_ROWS)?;
    let teacher_count = u.int_in_range(0..=2)?;
    let student_count = u.int_in_range(0..=3)?;
    let mut teacher_batches: Vec<DistributionBatch<F>> = Vec::new();
    for _ in 0..teacher_count {
        let this_rows = if u.ratio(15, 16)? {
            rows
        } else {
            u.int_in_range(0..=MAX_ROWS)?
        };
        if let Some(b) = batch(u, this_rows, len)? {
            teacher_batches.push(b);
        }
    }
    let mut student_batches: Vec<DistributionBatch<F>> = Vec::new();
    for _ in 0..student_count {
        let this_rows = if u.ratio(15, 16)? {
            rows
        } else {
            u.int_in_range(0..=MAX_ROWS)?
        };
        if let Some(b) = batch(u, this_rows, len)? {
            student_batches.push(b);
        }
    }
    match mixture.build_batch(&teacher_batches, &student_batches) {
        Ok(q) => {
            check_batch(&q, default_sum_tolerance(q.vocab_size()));
            if let Some(teacher) = teacher_batches.first() {
                check_anchor_weight(effective_anchor_weight_batch(&q, teacher));
            }
        }
        Err(error) => {
            let inner = match &error {
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
                "build_batch returned an undocumented error: {error:?}"
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
