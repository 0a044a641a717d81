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
    ConvexCombination, ConvexMixture, DistributionBatch, Divergence, Error, GeneralizedMixture,
    HistoryWeights, InformationProjection, Iterate, IterativeProjection, MetaTeacherOperator,
    MirrorDescent, OperatorProperties, PostMap, PostMapped, PowerMeanProjection, TemperedMixture,
    Weights, default_sum_tolerance,
};
use metadistill_fuzz::{
    FuzzFloat, MAX_ROWS, batches, check_batch, check_probability_vector, distributions, divergence,
    innermost, length, value, weight_like,
};
use ndarray::{Array1, Array2, ArrayView1, ArrayViewMut1};

/// The largest number of mirror-descent iterations; a few reach every branch of the solver.
const MAX_SOLVER_ITERATIONS: usize = 12;

/// The nesting depth of combinators: at most a combination of iterates of base operators.
const MAX_DEPTH: usize = 2;

/// An operator of any type behind one pointer, so the combinators can hold any operator.
struct AnyOperator<F: FuzzFloat> {
    inner: Box<dyn OperatorProperties<F>>,
    /// Tells whether a `DisjointSupports` error is possible: true for power
    /// means of order <= 0 and the iterative projections, or any operator that
    /// contains one.
    may_report_disjoint: bool,
    /// Tells whether such an error is possible even when some token is positive
    /// in every input: an `Iterate` feeds back outputs whose zeros the inputs lack.
    disjoint_on_any_input: bool,
}

impl<F: FuzzFloat> MetaTeacherOperator<F> for AnyOperator<F> {
    fn anchor_weight(&self) -> F {
        self.inner.anchor_weight()
    }
    fn combine_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        out: ArrayViewMut1<F>,
    ) -> metadistill::Result<()> {
        self.inner.combine_into(teachers, students, out)
    }
    fn history_window(&self) -> Option<usize> {
        self.inner.history_window()
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

impl<F: FuzzFloat> OperatorProperties<F> for AnyOperator<F> {
    fn anchors_pointwise(&self) -> bool {
        self.inner.anchors_pointwise()
    }
    fn contraction_factor(&self) -> Option<F> {
        self.inner.contraction_factor()
    }
    fn fixes_teacher(&self) -> bool {
        self.inner.fixes_teacher()
    }
    fn reads_latest_only(&self) -> bool {
        self.inner.reads_latest_only()
    }
}

/// Wraps a constructor result: `None` for an error the constructor documents, a failure otherwise.
fn accept<F: FuzzFloat, O: OperatorProperties<F> + 'static>(
    result: metadistill::Result<O>,
    may_report_disjoint: bool,
) -> Option<AnyOperator<F>> {
    match result {
        Ok(operator) => Some(AnyOperator {
            inner: Box::new(operator),
            may_report_disjoint,
            disjoint_on_any_input: false,
        }),
        Err(error) => {
            assert!(
                matches!(
                    error,
                    Error::InvalidAnchorWeight { .. }
                        | Error::InvalidParameter { .. }
                        | Error::InvalidTemperature { .. }
                        | Error::InvalidOrder { .. }
                        | Error::NoGradient { .. }
                ),
                "an operator constructor returned an undocumented error: {error:?}"
            );
            assert!(!error.to_string().is_empty());
            None
        }
    }
}

/// Decodes teacher weights: exact, normalized from any floats, or uniform.
fn teacher_weights<F: FuzzFloat>(u: &mut Unstructured) -> Result<Option<Weights<F>>> {
    let count = u.int_in_range(0..=3)?;
    let result = match u.int_in_range(0..=2)? {
        0 => Weights::uniform(count),
        1 => {
            let raw: Vec<F> = (0..count).map(|_| weight_like(u)).collect::<Result<_>>()?;
            Weights::normalize(&raw)
        }
        _ => {
            let raw: Vec<F> = (0..count).map(|_| value(u)).collect::<Result<_>>()?;
            Weights::new(&raw)
        }
    };
    match result {
        Ok(weights) => {
            check_probability_vector(weights.as_slice(), default_sum_tolerance(weights.len()));
            Ok(Some(weights))
        }
        Err(error) => {
            assert!(
                matches!(
                    error,
                    Error::Empty { .. }
                        | Error::InvalidWeight { .. }
                        | Error::AllZeroWeights { .. }
                        | Error::WeightsNotNormalized { .. }
                ),
                "Weights returned an undocumented error: {error:?}"
            );
            Ok(None)
        }
    }
}

/// Decodes a history weighting scheme with any parameters, valid or not.
fn history<F: FuzzFloat>(u: &mut Unstructured) -> Result<Option<HistoryWeights<F>>> {
    let length = u.int_in_range(0..=4)?;
    Ok(Some(match u.int_in_range(0..=4)? {
        0 => HistoryWeights::Latest,
        1 => HistoryWeights::Window { length },
        2 => HistoryWeights::ExponentialDecay {
            decay: weight_like(u)?,
            length,
        },
        3 => {
            let Some(weights) = teacher_weights(u)? else {
                return Ok(None);
            };
            HistoryWeights::Explicit(weights)
        }
        _ => HistoryWeights::Quality {
            sharpness: value(u)?,
            length,
        },
    }))
}

/// Decodes a generalized mixture, or `None` when its parts were rejected.
fn weighting<F: FuzzFloat>(u: &mut Unstructured) -> Result<Option<GeneralizedMixture<F>>> {
    let anchor = weight_like(u)?;
    let Some(weights) = teacher_weights(u)? else {
        return Ok(None);
    };
    let Some(history) = history(u)? else {
        return Ok(None);
    };
    let result = GeneralizedMixture::new(anchor, weights, history);
    match result {
        Ok(mixture) => Ok(Some(mixture)),
        Err(error) => {
            assert!(
                matches!(
                    error,
                    Error::InvalidAnchorWeight { .. } | Error::InvalidParameter { .. }
                ),
                "GeneralizedMixture::new returned an undocumented error: {error:?}"
            );
            Ok(None)
        }
    }
}

/// Decodes a power-mean order: the named projections, ordinary orders and extreme ones.
fn projection<F: FuzzFloat>(u: &mut Unstructured) -> Result<PowerMeanProjection<F>> {
    Ok(match u.int_in_range(0..=5)? {
        0 => PowerMeanProjection::ForwardKl,
        1 => PowerMeanProjection::ReverseKl,
        2 => PowerMeanProjection::SquaredHellinger,
        3 => PowerMeanProjection::ChiSquared,
        4 => {
            let fixed = [
                -1e300, -1e30, -50.0, -1.0, -1e-300, 1e-300, 0.1, 3.0, 50.0, 1e30, 1e300,
            ];
            let index = u.choose_index(fixed.len())?;
            PowerMeanProjection::Amari {
                order: F::from_f64_lossy(fixed.get(index).copied().unwrap_or(1.0)),
            }
        }
        _ => PowerMeanProjection::Amari { order: value(u)? },
    })
}

/// Decodes an operator, combinators included up to `depth` levels deep.
fn operator<F: FuzzFloat>(u: &mut Unstructured, depth: usize) -> Result<Option<AnyOperator<F>>> {
    let highest = if depth == 0 { 4 } else { 7 };
    Ok(match u.int_in_range(0..=highest)? {
        0 => {
            if u.ratio(1, 8)? {
                accept(Ok(ConvexMixture::unanchored()), false)
            } else {
                accept(ConvexMixture::new(weight_like(u)?), false)
            }
        }
        1 => weighting(u)?.and_then(|mixture| accept(Ok(mixture), false)),
        2 => {
            let projection = projection(u)?;
            let Some(weighting) = weighting(u)? else {
                return Ok(None);
            };
            // A power mean of order <= 0 is 0 wherever one pooled point is 0.
            let disjoint = !(projection.order() > F::zero());
            accept(InformationProjection::new(projection, weighting), disjoint)
        }
        3 => {
            let divergence: Divergence<F> = divergence(u)?;
            let Some(weighting) = weighting(u)? else {
                return Ok(None);
            };
            let tolerance = if u.ratio(3, 4)? {
                F::from_f64_lossy(1e-6)
            } else {
                value(u)?
            };
            let iterations = u.int_in_range(0..=MAX_SOLVER_ITERATIONS)?;
            let solver = match MirrorDescent::new(tolerance, iterations) {
                Ok(solver) => solver,
                Err(error) => {
                    assert!(matches!(error, Error::InvalidParameter { .. }), "{error:?}");
                    return Ok(None);
                }
            };
            accept(
                IterativeProjection::new(divergence, weighting, solver),
                true,
            )
        }
        4 => {
            let anchor = weight_like(u)?;
            let temperature = if u.ratio(1, 2)? {
                F::from_f64_lossy(f64::from(u.int_in_range(1u8..=40)?) / 10.0)
            } else {
                value(u)?
            };
            accept(TemperedMixture::new(anchor, temperature), false)
        }
        5 => {
            let Some(first) = operator::<F>(u, depth - 1)? else {
                return Ok(None);
            };
            let Some(second) = operator::<F>(u, depth - 1)? else {
                return Ok(None);
            };
            let disjoint = first.may_report_disjoint || second.may_report_disjoint;
            let weight = weight_like(u)?;
            accept(ConvexCombination::new(first, second, weight), disjoint)
        }
        6 => {
            let Some(inner) = operator::<F>(u, depth - 1)? else {
                return Ok(None);
            };
            let map = match u.int_in_range(0..=2)? {
                0 => PostMap::Temper {
                    temperature: value(u)?,
                },
                1 => PostMap::TopK {
                    k: u.int_in_range(0..=13)?,
                },
                _ => PostMap::SmoothUniform {
                    epsilon: weight_like(u)?,
                },
            };
            let disjoint = inner.may_report_disjoint;
            accept(PostMapped::new(inner, map), disjoint)
        }
        _ => {
            let Some(inner) = operator::<F>(u, depth - 1)? else {
                return Ok(None);
            };
            let steps = u.int_in_range(0..=3)?;
            let disjoint = inner.may_report_disjoint;
            let mut iterate = accept(Iterate::new(inner, steps), disjoint);
            if let Some(iterate) = iterate.as_mut() {
                iterate.disjoint_on_any_input = disjoint;
            }
            iterate
        }
    })
}

/// Checks that an error of `build` or `combine_into` is one the operators document.
///
/// `InvalidOperatorOutput` is not among them: a built-in operator that writes
/// something other than a distribution is a bug, whatever the inputs.
fn check_error<F: FuzzFloat>(operator: &AnyOperator<F>, error: &Error, disjoint_ok: bool) {
    let inner = innermost(error);
    assert!(!error.to_string().is_empty());
    match inner {
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
            "{} reported disjoint supports on overlapping inputs: {error:?}",
            operator.name()
        ),
        _ => panic!(
            "{} returned an undocumented error: {error:?}",
            operator.name()
        ),
    }
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
fn check_fixed_point<F: FuzzFloat>(operator: &AnyOperator<F>, teachers: &[ArrayView1<F>]) {
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
                // The same rounding budget as the anchoring check, on both sides.
                let relative = F::from_f64_lossy(64.0) + ti.max(F::min_positive_value()).ln().abs();
                let slack = relative * F::epsilon() * ti + F::min_positive_value();
                assert!(
                    (qi - ti).abs() <= slack,
                    "{} moved the fixed point: q_{index} = {qi}, T0_{index} = {ti}\nq = {out}\nT0 = {teacher}",
                    operator.name()
                );
            }
        }
        Err(error) => check_error(operator, &error, false),
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

    match operator.build(&teachers, &students) {
        Ok(q) => {
            check_probability_vector(q.as_slice(), default_sum_tolerance(q.len()));
            if let Some(teacher) = teachers.first() {
                check_anchoring(&operator, q.as_slice(), teacher.as_slice());
            }
        }
        Err(error) => check_error(&operator, &error, !overlap),
    }

    let same_length = all_views.iter().all(|v| v.len() == len);
    if same_length && len > 0 {
        check_fixed_point(&operator, &teacher_views);
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
        Err(error) => check_error(&operator, &error, true),
    }

    let rows = u.int_in_range(1..=MAX_ROWS)?;
    let teacher_batches = batches::<F>(u, rows, len, 3)?;
    let student_batches = batches::<F>(u, rows, len, 4)?;
    match operator.build_batch(&teacher_batches, &student_batches) {
        Ok(q) => {
            check_batch(&q, default_sum_tolerance(q.vocab_size()));
            if let Some(teacher) = teacher_batches.first() {
                check_batch_anchoring(&operator, &q, teacher);
            }
        }
        Err(error) => check_error(&operator, &error, true),
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
        Err(error) => check_error(&operator, &error, true),
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
