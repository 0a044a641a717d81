//! Axioms 1-5: valid output, positivity, anchoring, continuity and monotonicity in `a`.

use std::cell::Cell;

use ndarray::{Array1, ArrayView1};
use proptest::collection::vec;
use proptest::prelude::*;

use super::{counterexample, grid_operators, lower, missing_from_history, needs_family, raise};
use crate::axioms::Family;
use crate::axioms::engine::{Outcome, f64_of, row_from_search, search};
use crate::axioms::report::{Measurement, Property, PropertyRow};
use crate::axioms::settings::Checker;
use crate::axioms::strategies::{History, distribution, histories};
use crate::distribution::Distribution;
use crate::divergence::kl;
use crate::error::Result;
use crate::operator::{MetaTeacherOperator, effective_anchor_weight};
use crate::real::{Real, default_sum_tolerance};

/// Runs `combine_into` on a history and returns the raw output, unvalidated.
fn raw_output<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    operator: &O,
    history: &History<F>,
) -> Result<Array1<F>> {
    let teachers: Vec<ArrayView1<F>> = history.teachers.iter().map(Distribution::probs).collect();
    let students: Vec<ArrayView1<F>> = history.students.iter().map(Distribution::probs).collect();
    let mut out = Array1::zeros(history.vocab_size());
    operator.combine_into(&teachers, &students, out.view_mut())?;
    Ok(out)
}

/// Axiom 1: `build` succeeds and `|Σ q_i - 1|` is within the crate's sum tolerance.
pub(super) fn valid_output<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    checker: &Checker<F>,
    operator: &O,
) -> PropertyRow<F> {
    let strategy = histories::<F>(&checker.space, checker.teachers, 1..=checker.history_len);
    let largest_defect = Cell::new(0.0);
    let found = search(
        checker.search_settings(),
        Property::ValidOutput,
        &strategy,
        |history| {
            let tolerance = f64_of(default_sum_tolerance::<F>(history.vocab_size()));
            let margin = match raw_output(operator, history) {
                Ok(out) if out.iter().all(|q| q.is_finite() && *q >= F::zero()) => {
                    let defect = (f64_of(out.sum()) - 1.0).abs();
                    raise(&largest_defect, defect);
                    tolerance - defect
                }
                _ => f64::NEG_INFINITY,
            };
            match operator.build(&history.teachers, &history.students) {
                Ok(_) => Outcome::pass(margin),
                Err(error) => Outcome::fail(margin, format!("build failed: {error}")),
            }
        },
    );
    let measurements = vec![Measurement {
        name: "largest |sum - 1|",
        value: largest_defect.get(),
    }];
    row_from_search(Property::ValidOutput, found, measurements, counterexample)
}

/// Axiom 2: strictly positive inputs give `min_i q_i > 0`.
pub(super) fn positivity<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    checker: &Checker<F>,
    operator: &O,
) -> PropertyRow<F> {
    let space = checker.space.strictly_positive();
    let strategy = histories::<F>(&space, checker.teachers, 1..=checker.history_len);
    let smallest = Cell::new(f64::INFINITY);
    let found = search(
        checker.search_settings(),
        Property::Positivity,
        &strategy,
        |history| match operator.build(&history.teachers, &history.students) {
            Ok(q) => {
                let (index, min) = q.as_slice().iter().enumerate().fold(
                    (0, f64::INFINITY),
                    |(at, min), (i, &p)| {
                        let p = f64_of(p);
                        if p < min { (i, p) } else { (at, min) }
                    },
                );
                lower(&smallest, min);
                Outcome::judge(min, min > 0.0, || {
                    format!("q_{index} = {min} on strictly positive inputs")
                })
            }
            Err(error) => Outcome::fail(f64::NEG_INFINITY, format!("build failed: {error}")),
        },
    );
    let measurements = vec![Measurement {
        name: "smallest q_i",
        value: smallest.get(),
    }];
    row_from_search(Property::Positivity, found, measurements, counterexample)
}

/// Axiom 3 in checkable form: `a*(q; T0) = min_i q_i / T0_i >= a`.
pub(super) fn anchoring<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    checker: &Checker<F>,
    operator: &O,
) -> PropertyRow<F> {
    let anchor = f64_of(operator.anchor_weight());
    let strategy = histories::<F>(&checker.space, checker.teachers, 1..=checker.history_len);
    let smallest = Cell::new(f64::INFINITY);
    let found = search(
        checker.search_settings(),
        Property::Anchoring,
        &strategy,
        |history| {
            let q = match operator.build(&history.teachers, &history.students) {
                Ok(q) => q,
                Err(error) => {
                    return Outcome::fail(f64::NEG_INFINITY, format!("build failed: {error}"));
                }
            };
            let Some(anchor_teacher) = history.teachers.first() else {
                return missing_from_history("base teacher");
            };
            match effective_anchor_weight(&q, anchor_teacher) {
                Ok(a_star) => {
                    let a_star = f64_of(a_star);
                    lower(&smallest, a_star);
                    Outcome::judge(a_star - anchor, checker.within(anchor, a_star), || {
                        format!("a*(q; T0) = {a_star} is below the declared a = {anchor}")
                    })
                }
                Err(error) => Outcome::fail(f64::NEG_INFINITY, format!("{error}")),
            }
        },
    );
    let measurements = vec![Measurement {
        name: "smallest a*",
        value: smallest.get(),
    }];
    row_from_search(Property::Anchoring, found, measurements, counterexample)
}

/// Sums `Σ_i |x_i - y_i|` over two distributions of equal length.
fn l1<F: Real>(x: &Distribution<F>, y: &Distribution<F>) -> f64 {
    x.as_slice()
        .iter()
        .zip(y.as_slice())
        .map(|(&a, &b)| f64_of((a - b).abs()))
        .sum()
}

/// Moves every input `p` to `(1 - h) p + h r` with its own direction `r`.
fn perturb<F: Real>(
    history: &History<F>,
    directions: &[Distribution<F>],
    step: F,
) -> Result<History<F>> {
    let mut moved = directions.iter();
    let mut shift = |list: &[Distribution<F>]| -> Result<Vec<Distribution<F>>> {
        list.iter()
            .map(|p| match moved.next() {
                Some(r) => crate::axioms::engine::blend(p, r, step),
                None => Ok(p.clone()),
            })
            .collect()
    };
    let teachers = shift(&history.teachers)?;
    let students = shift(&history.students)?;
    Ok(History { teachers, students })
}

/// Axiom 4: a bounded local Lipschitz constant, in L1, under small moves of every
/// input towards random directions (and of `a`, given a family).
///
/// ```text
/// L_inputs = ‖G(x') - G(x)‖₁ / Σ_inputs ‖p' - p‖₁,   p' = (1 - h) p + h r,   h = √ε
/// L_a      = ‖G_{a±h}(x) - G_a(x)‖₁ / h
/// ```
pub(super) fn continuity<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    checker: &Checker<F>,
    operator: &O,
    family: Option<(F, &Family<'_, F>)>,
) -> PropertyRow<F> {
    let space = checker.space.clone();
    let inputs = checker.teachers;
    let strategy = histories::<F>(&checker.space, checker.teachers, 1..=checker.history_len)
        .prop_flat_map(move |history| {
            let count = inputs + history.students.len();
            let size = history.vocab_size();
            (Just(history), vec(distribution::<F>(&space, size), count))
        });
    let step = F::epsilon().sqrt();
    // Vary the family's own parameter, because the declared weight can differ from it.
    let anchor = family.map_or_else(|| operator.anchor_weight(), |(anchor, _)| anchor);
    let moved_anchor = if anchor + step <= F::one() {
        anchor + step
    } else {
        anchor - step
    };
    let shifted = family.and_then(|(_, make)| make(moved_anchor).ok());
    let largest_inputs = Cell::new(0.0);
    let largest_anchor = Cell::new(0.0);

    let found = search(
        checker.search_settings(),
        Property::Continuity,
        &strategy,
        |(history, directions)| {
            let estimate = || -> Result<(f64, Option<f64>)> {
                let q = operator.build(&history.teachers, &history.students)?;
                let moved = perturb(history, directions, step)?;
                let q_moved = operator.build(&moved.teachers, &moved.students)?;
                let input_distance: f64 = history
                    .teachers
                    .iter()
                    .chain(&history.students)
                    .zip(moved.teachers.iter().chain(&moved.students))
                    .map(|(p, p_moved)| l1(p, p_moved))
                    .sum();
                let in_inputs = if input_distance > 0.0 {
                    l1(&q, &q_moved) / input_distance
                } else {
                    0.0
                };
                let in_anchor = match &shifted {
                    Some(other) => {
                        let q_other = other.build(&history.teachers, &history.students)?;
                        Some(l1(&q, &q_other) / f64_of((moved_anchor - anchor).abs()))
                    }
                    None => None,
                };
                Ok((in_inputs, in_anchor))
            };
            match estimate() {
                Ok((in_inputs, in_anchor)) => {
                    raise(&largest_inputs, in_inputs);
                    let worst = in_anchor.map_or(in_inputs, |l| {
                        raise(&largest_anchor, l);
                        l.max(in_inputs)
                    });
                    Outcome::judge(
                        checker.max_sensitivity - worst,
                        worst <= checker.max_sensitivity,
                        || {
                            format!(
                                "local Lipschitz estimate {worst:.4e} exceeds {} (inputs {in_inputs:.4e}, \
                         a {in_anchor:?}, step {})",
                                checker.max_sensitivity,
                                f64_of(step)
                            )
                        },
                    )
                }
                Err(error) => Outcome::fail(f64::NEG_INFINITY, format!("build failed: {error}")),
            }
        },
    );
    let mut measurements = vec![Measurement {
        name: "Lipschitz in inputs",
        value: largest_inputs.get(),
    }];
    if shifted.is_some() {
        measurements.push(Measurement {
            name: "Lipschitz in a",
            value: largest_anchor.get(),
        });
    }
    row_from_search(
        Property::Continuity,
        found,
        measurements,
        |(history, _), description| counterexample(history, description),
    )
}

/// Axiom 5: `KL(T0 ‖ G_a(x))` does not increase along the anchor grid.
pub(super) fn monotonicity<F: Real>(
    checker: &Checker<F>,
    family: Option<&Family<'_, F>>,
) -> PropertyRow<F> {
    let Some(make) = family else {
        return needs_family(Property::Monotonicity);
    };
    let operators = grid_operators(checker, make);
    if operators.len() < 2 {
        return PropertyRow::not_applicable(
            Property::Monotonicity,
            "the constructor accepts fewer than 2 anchor weights of the grid",
        );
    }
    let strategy = histories::<F>(&checker.space, checker.teachers, 1..=checker.history_len);
    let found = search(
        checker.search_settings(),
        Property::Monotonicity,
        &strategy,
        |history| {
            let Some(anchor_teacher) = history.teachers.first() else {
                return missing_from_history("base teacher");
            };
            let mut divergences = Vec::with_capacity(operators.len());
            for (a, operator) in &operators {
                let value = operator
                    .build(&history.teachers, &history.students)
                    .and_then(|q| kl(anchor_teacher, &q));
                match value {
                    Ok(d) => divergences.push((f64_of(*a), f64_of(d))),
                    Err(error) => {
                        return Outcome::fail(
                            f64::NEG_INFINITY,
                            format!("a = {}: {error}", f64_of(*a)),
                        );
                    }
                }
            }
            let mut margin = f64::INFINITY;
            for (&(a0, d0), &(a1, d1)) in divergences.iter().zip(divergences.iter().skip(1)) {
                margin = margin.min(d0 - d1);
                if !checker.within(d1, d0) {
                    return Outcome::fail(
                        d0 - d1,
                        format!(
                            "KL(T0 || q) rises from {d0:.6e} at a = {a0} to {d1:.6e} at a = {a1}"
                        ),
                    );
                }
            }
            Outcome::pass(margin)
        },
    );
    let measurements = vec![Measurement {
        name: "grid points",
        value: operators.len() as f64,
    }];
    row_from_search(Property::Monotonicity, found, measurements, counterexample)
}
