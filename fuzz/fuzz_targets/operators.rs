//! Fuzzes every operator of `metadistill::operator` and the combinators, nested two deep.
//!
//! Each input builds one operator configuration (any weighting scheme, any
//! power-mean order, a mirror-descent solver with at most 12 iterations) and
//! calls `build`, `build_batch`, `build_batch_into` and `combine_into` on it.
//! Beyond no panic and no NaN, it checks the guarantees the operator declares
//! through `OperatorProperties`: pointwise anchoring and `G(T0; T0, …) = T0`.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use metadistill::{
    DistributionBatch, Error, MetaTeacherOperator, OperatorProperties, default_sum_tolerance,
};
use metadistill_fuzz::operators::{AnyOperator, MAX_DEPTH, operator};
use metadistill_fuzz::{
    FuzzFloat, MAX_ROWS, batches, check_batch, check_probability_vector, distributions, innermost,
    length,
};
use ndarray::{Array1, Array2, ArrayView1};

/// Checks that an error of `build` or `combine_into` is one the operators document.
///
/// `InvalidOperatorOutput` is not among them: a built-in operator that writes
/// something other than a distribution is a bug, whatever the inputs.
fn check_error<F: FuzzFloat>(
    operator: &AnyOperator<F>,
    error: &Error,
    disjoint_ok: bool,
    loose_inputs: bool,
) {
    let inner = innermost(error);
    assert!(!error.to_string().is_empty());
    match inner {
        // Inputs accepted with a sum tolerance above the default give outputs
        // whose sum misses it too, which `build` reports.
        Error::InvalidOperatorOutput { source, .. }
            if loose_inputs && matches!(source.as_ref(), Error::NotNormalized { .. }) => {}
        Error::Empty { .. }
        | Error::VocabularyMismatch { .. }
        | Error::BatchSizeMismatch { .. }
        | Error::InputWeightMismatch { .. }
        | Error::LengthMismatch { .. }
        | Error::TeacherCount { .. }
        | Error::TeacherWeightCount { .. }
        | Error::NotConverged { .. } => {}
        Error::DisjointSupports { .. } => assert!(
            operator.may_report_disjoint && (disjoint_ok || operator.disjoint_on_any_input),
            "{operator:?} reported disjoint supports where it cannot: {error:?}"
        ),
        _ => panic!(
            "{} returned an undocumented error: {error:?}",
            operator.name()
        ),
    }
}

/// Tells whether entries sum to 1 within half the default tolerance, computed in `f64`.
fn within_default_tolerance<'a, F: FuzzFloat>(values: impl Iterator<Item = &'a F>) -> bool {
    let values: Vec<f64> = values.map(|v| v.widen()).collect();
    let tolerance: F = default_sum_tolerance(values.len());
    let sum: f64 = values.iter().sum();
    (sum - 1.0).abs() <= 0.5 * tolerance.widen()
}

/// Tells whether some token is positive in every row of `points`, so no pool is empty.
fn supports_overlap<F: FuzzFloat>(points: &[ArrayView1<F>]) -> bool {
    let Some(first) = points.first() else {
        return true;
    };
    (0..first.len()).any(|token| {
        points
            .iter()
            .all(|p| p.get(token).is_some_and(|&value| value > F::zero()))
    })
}

/// Checks `q_i >= a T0_i` token by token, up to rounding.
fn check_anchoring<F: FuzzFloat>(operator: &AnyOperator<F>, q: &[F], teacher: &[F]) {
    if !operator.anchors_pointwise() {
        return;
    }
    let a = operator.anchor_weight();
    for (index, (&qi, &ti)) in q.iter().zip(teacher).enumerate() {
        let floor = a * ti;
        if !floor.is_normal() {
            continue;
        }
        // The power means run through ln and exp, so a token's relative error
        // grows with |ln q_i| (up to about 745 ε for f64); 64 ε covers the
        // roundings of the weights, the sums and the final normalization.
        let relative = F::from_f64_lossy(64.0) + floor.ln().abs();
        let slack = relative * F::epsilon() * floor;
        assert!(
            qi >= floor - slack,
            "{}: q_{index} = {qi} < a T0_{index} = {floor} (a = {a})",
            operator.name()
        );
    }
}

/// Checks `G(T0; T0, …, T0) = T0` for operators that declare `T0` a fixed point.
fn check_fixed_point<F: FuzzFloat>(
    operator: &AnyOperator<F>,
    teachers: &[ArrayView1<F>],
    loose_inputs: bool,
) {
    let Some(teacher) = teachers.first() else {
        return;
    };
    if !operator.fixes_teacher() {
        return;
    }
    let history = vec![teacher.view(); 3];
    let mut out = Array1::zeros(teacher.len());
    match operator.combine_into(teachers, &history, out.view_mut()) {
        Ok(()) => {
            for (index, (&qi, &ti)) in out.iter().zip(teacher.iter()).enumerate() {
                // Each application of a base operator gets the rounding budget of
                // the anchoring check. Two nested `Iterate`s of 3 steps apply one
                // 9 times, so the budget here is 16 times as large.
                let log = ti.max(F::min_positive_value()).ln().abs();
                let relative = F::from_f64_lossy(16.0) * (F::from_f64_lossy(64.0) + log);
                // Mirror descent stops within its tolerance of the projection, and
                // may move a mass below 64 ε (1e-247 was seen) off a token.
                let absolute = F::from_f64_lossy(64.0) * F::epsilon();
                let slack = relative * F::epsilon() * ti + absolute;
                assert!(
                    (qi - ti).abs() <= slack,
                    "{operator:?} moved the fixed point: q_{index} = {qi}, T0_{index} = {ti}\nq = {out}\nT0 = {:?}\n{} teachers",
                    teacher.to_vec(),
                    teachers.len()
                );
            }
        }
        Err(error) => check_error(operator, &error, false, loose_inputs),
    }
}

fn run<F: FuzzFloat>(u: &mut Unstructured) -> Result<()> {
    let Some(operator) = operator::<F>(u, MAX_DEPTH)? else {
        return Ok(());
    };
    assert!(!operator.name().is_empty());
    let anchor = operator.anchor_weight();
    assert!(
        anchor >= F::zero() && anchor <= F::one(),
        "anchor weight {anchor}"
    );
    if let Some(factor) = operator.contraction_factor() {
        assert!(
            factor >= F::zero() && factor <= F::one(),
            "contraction factor {factor}"
        );
    }

    let len = length(u)?;
    let teachers = distributions::<F>(u, len, 3)?;
    let students = distributions::<F>(u, len, 4)?;
    let teacher_views: Vec<ArrayView1<F>> = teachers.iter().map(|t| t.probs()).collect();
    let student_views: Vec<ArrayView1<F>> = students.iter().map(|s| s.probs()).collect();
    let all_views: Vec<ArrayView1<F>> = teacher_views
        .iter()
        .chain(&student_views)
        .cloned()
        .collect();
    let overlap = supports_overlap(&all_views);
    let loose_inputs = all_views
        .iter()
        .any(|view| !within_default_tolerance(view.iter()));

    match operator.build(&teachers, &students) {
        Ok(q) => {
            check_probability_vector(q.as_slice(), default_sum_tolerance(q.len()));
            if let Some(teacher) = teachers.first() {
                check_anchoring(&operator, q.as_slice(), teacher.as_slice());
            }
        }
        Err(error) => check_error(&operator, &error, !overlap, loose_inputs),
    }

    let same_length = all_views.iter().all(|v| v.len() == len);
    if same_length && len > 0 {
        check_fixed_point(&operator, &teacher_views, loose_inputs);
    }

    // combine_into is public, so callers may pass views of any length.
    let out_len = if u.ratio(3, 4)? { len } else { length(u)? };
    let mut out = Array1::zeros(out_len);
    // An operator may ignore the students outside its history window.
    let window = operator
        .history_window()
        .map_or(student_views.len(), |w| w.max(1));
    let read = student_views.iter().rev().take(window);
    let read_same_length = teacher_views.iter().chain(read).all(|v| v.len() == out_len);
    match operator.combine_into(&teacher_views, &student_views, out.view_mut()) {
        Ok(()) => {
            assert!(
                read_same_length,
                "{} accepted views of different lengths",
                operator.name()
            );
            let slice = out.as_slice().unwrap_or_default();
            check_probability_vector(slice, default_sum_tolerance(out_len));
        }
        Err(error) => check_error(&operator, &error, true, loose_inputs),
    }

    let rows = u.int_in_range(1..=MAX_ROWS)?;
    let teacher_batches = batches::<F>(u, rows, len, 3)?;
    let student_batches = batches::<F>(u, rows, len, 4)?;
    let loose_rows = teacher_batches
        .iter()
        .chain(&student_batches)
        .flat_map(|batch| batch.rows())
        .any(|row| !within_default_tolerance(row.iter()));
    let loose_inputs = loose_inputs || loose_rows;
    match operator.build_batch(&teacher_batches, &student_batches) {
        Ok(q) => {
            check_batch(&q, default_sum_tolerance(q.vocab_size()));
            if let Some(teacher) = teacher_batches.first() {
                check_batch_anchoring(&operator, &q, teacher);
            }
        }
        Err(error) => check_error(&operator, &error, true, loose_inputs),
    }

    let out_rows = if u.ratio(3, 4)? {
        rows
    } else {
        u.int_in_range(0..=MAX_ROWS)?
    };
    let out_len = if u.ratio(3, 4)? { len } else { length(u)? };
    let mut out = Array2::from_elem((out_rows, out_len), F::from_f64_lossy(0.5));
    match operator.build_batch_into(&teacher_batches, &student_batches, out.view_mut()) {
        Ok(()) => {
            for row in out.rows() {
                let row = row.to_vec();
                check_probability_vector(&row, default_sum_tolerance(out_len));
            }
        }
        Err(error) => check_error(&operator, &error, true, loose_inputs),
    }
    Ok(())
}

/// Checks pointwise anchoring on every row of a batch.
fn check_batch_anchoring<F: FuzzFloat>(
    operator: &AnyOperator<F>,
    q: &DistributionBatch<F>,
    teacher: &DistributionBatch<F>,
) {
    for (q_row, teacher_row) in q.rows().zip(teacher.rows()) {
        check_anchoring(operator, &q_row.to_vec(), &teacher_row.to_vec());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = if u.arbitrary::<bool>().unwrap_or(false) {
        run::<f32>(&mut u)
    } else {
        run::<f64>(&mut u)
    };
});
