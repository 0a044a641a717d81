//! The recursion under exact students: contraction, fixed point, no anchoring, rate in `a`.

use std::cell::Cell;

use proptest::collection::vec;
use proptest::prelude::*;

use super::{counterexample, grid_operators, missing_from_history, needs_family, raise};
use crate::axioms::Family;
use crate::axioms::engine::{Fit, Outcome, Stop, f64_of, iterate, real, row_from_search, search};
use crate::axioms::limit::find_limit;
use crate::axioms::report::{Measurement, Property, PropertyRow};
use crate::axioms::settings::Checker;
use crate::axioms::strategies::{distribution, histories};
use crate::divergence::kl;
use crate::operator::MetaTeacherOperator;
use crate::real::Real;

/// Generations used to measure the contraction rate at each anchor weight.
const RATE_GENERATIONS: usize = 4;

/// Generations of the exact and noisy runs of the no-anchoring check.
const DRIFT_GENERATIONS: usize = 50;

/// Returns the divergence below which a ratio `D(S_{g+1}) / D(S_g)` is rounding noise.
///
/// The meta-teacher's probabilities sum to 1 only up to a few `ε`, and that
/// defect enters `KL(T0 ‖ q)` directly, so `D` carries an absolute error of a
/// few `ε`. Keeping its relative error below the tolerance needs
/// `D >= 16 ε / tolerance` (about `2.4e-7` for `f64` with the default tolerance).
fn noise_floor<F: Real>(tolerance: f64) -> f64 {
    16.0 * f64_of(F::epsilon()) / tolerance
}

/// Contraction: `D(S_{g+1}) <= (1 - a) D(S_g)` at every generation of exact runs
/// from random `S_0`, with the worst and the asymptotic observed ratio.
pub(super) fn contraction<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    checker: &Checker<F>,
    operator: &O,
) -> PropertyRow<F> {
    let anchor = f64_of(operator.anchor_weight());
    let beta = 1.0 - anchor;
    let floor = noise_floor::<F>(checker.tolerance);
    let strategy = histories::<F>(&checker.space, checker.teachers, 1..=1);
    let worst_ratio = Cell::new(None);
    let asymptotic = Cell::new(None);

    let found = search(
        checker.search_settings(),
        Property::Contraction,
        &strategy,
        |history| {
            let Some(start) = history.students.first() else {
                return missing_from_history("student");
            };
            let run = match iterate(
                operator,
                &history.teachers,
                start,
                checker.generations,
                Fit::Exact,
                Stop::Floor(real(floor)),
            ) {
                Ok(run) => run,
                Err(error) => return Outcome::fail(f64::NEG_INFINITY, format!("{error}")),
            };
            let divergences: Vec<f64> = run.divergences.iter().map(|&d| f64_of(d)).collect();
            // The whole run is already computed, so its last ratio is recorded
            // before the check below returns on a violating generation.
            if let Some(ratio) = last_ratio_above(&divergences, floor) {
                raise_observed(&asymptotic, ratio);
            }
            let mut margin = f64::INFINITY;
            let steps = divergences.iter().zip(divergences.iter().skip(1));
            for (generation, (&before, &after)) in steps.enumerate() {
                if before <= floor {
                    break;
                }
                let ratio = after / before;
                raise_observed(&worst_ratio, ratio);
                margin = margin.min(beta - ratio);
                if ratio > beta + checker.tolerance {
                    return Outcome::fail(
                        beta - ratio,
                        format!(
                            "generation {generation}: D(S_g) = {before:.6e}, D(S_g+1) = {after:.6e}, \
                         ratio {ratio:.6} > 1 - a = {beta}"
                        ),
                    );
                }
            }
            Outcome::pass(margin)
        },
    );
    // A ratio no run measured (every D at or below the noise floor) is left out
    // of the row rather than shown as 0.
    let observed = [
        ("worst ratio", worst_ratio.get()),
        ("asymptotic ratio", asymptotic.get()),
        ("bound 1 - a", Some(beta)),
    ];
    let measurements = observed
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| Measurement { name, value }))
        .collect();
    row_from_search(Property::Contraction, found, measurements, counterexample)
}

/// Returns the last finite ratio `D(S_{g+1}) / D(S_g)` of a run with both ends above
/// the noise floor, or `None` when no step has one.
///
/// A step with an infinite `D` has no ratio to report (`inf / inf` is NaN), so it
/// is skipped.
fn last_ratio_above(divergences: &[f64], floor: f64) -> Option<f64> {
    let steps = divergences.iter().zip(divergences.iter().skip(1));
    steps
        .take_while(|&(&before, _)| before > floor)
        .filter(|&(_, &after)| after > floor)
        .map(|(&before, &after)| after / before)
        .filter(|ratio| ratio.is_finite())
        .last()
}

/// Keeps the largest ratio observed, and any NaN, so that a broken run shows.
fn raise_observed(cell: &Cell<Option<f64>>, value: f64) {
    let keep = match cell.get() {
        None => true,
        Some(current) => value > current || value.is_nan(),
    };
    if keep {
        cell.set(Some(value));
    }
}

/// Fixed point: `G(T0; T0) = T0`, and exact runs from random `S_0` converge to `T0`.
///
/// Both distances are `KL(T0 ‖ ·)` in nats and must stay within the tolerance.
pub(super) fn fixed_point<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    checker: &Checker<F>,
    operator: &O,
) -> PropertyRow<F> {
    let strategy = histories::<F>(&checker.space, checker.teachers, 1..=1);
    let tolerance = checker.tolerance;
    let self_offset = Cell::new(0.0);
    let limit_offset = Cell::new(0.0);
    let unconverged = Cell::new(0.0);

    let found = search(
        checker.search_settings(),
        Property::FixedPoint,
        &strategy,
        |history| {
            let (Some(teacher), Some(start)) = (history.teachers.first(), history.students.first())
            else {
                return missing_from_history("base teacher or student");
            };
            let mapped = operator
                .build(&history.teachers, std::slice::from_ref(teacher))
                .and_then(|q| kl(teacher, &q));
            let limit = find_limit(
                operator,
                &history.teachers,
                start,
                real(tolerance),
                checker.generations,
            );
            let (mapped, limit) = match (mapped, limit) {
                (Ok(mapped), Ok(limit)) => (f64_of(mapped), limit),
                (Err(error), _) | (_, Err(error)) => {
                    return Outcome::fail(f64::NEG_INFINITY, format!("{error}"));
                }
            };
            let offset = f64_of(limit.offset);
            raise(&self_offset, mapped);
            raise(&limit_offset, offset);
            if !limit.converged {
                unconverged.set(unconverged.get() + 1.0);
            }
            let margin = tolerance - mapped.max(offset);
            Outcome::judge(margin, margin >= 0.0, || {
                format!(
                    "KL(T0 || G(T0; T0)) = {mapped:.6e}; after {} generations KL(T0 || S) = {offset:.6e} \
                 ({}, last step {:.3e}); limit {}",
                    limit.generations,
                    if limit.converged {
                        "converged"
                    } else {
                        "not converged"
                    },
                    f64_of(limit.last_step),
                    crate::axioms::strategies::format_probs(&limit.student)
                )
            })
        },
    );
    let measurements = vec![
        Measurement {
            name: "largest KL(T0 || G(T0))",
            value: self_offset.get(),
        },
        Measurement {
            name: "largest limit offset",
            value: limit_offset.get(),
        },
        Measurement {
            name: "unconverged runs",
            value: unconverged.get(),
        },
    ];
    row_from_search(Property::FixedPoint, found, measurements, counterexample)
}

/// No anchoring: with `a = 0` and exact students `D(S_g) = D(S_0)` for every `g`;
/// noisy students `S_{g+1} = (1 - η) q_g + η r_g` move `D` (measured, not judged).
///
/// Applies to an operator that declares `a = 0`, or to `family(0)` when it exists.
pub(super) fn no_anchoring<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    checker: &Checker<F>,
    operator: &O,
    family: Option<&Family<'_, F>>,
) -> PropertyRow<F> {
    let unanchored = if operator.anchor_weight().is_zero() {
        None
    } else {
        match family.and_then(|make| make(F::zero()).ok()) {
            Some(built) => Some(built),
            None => {
                return PropertyRow::not_applicable(
                    Property::NoAnchoring,
                    "declared a > 0 and no operator for a = 0",
                );
            }
        }
    };
    let space = checker.space.clone();
    let strategy =
        histories::<F>(&checker.space, checker.teachers, 1..=1).prop_flat_map(move |history| {
            let size = history.vocab_size();
            (
                Just(history),
                vec(distribution::<F>(&space, size), 4),
                0.01..=0.2_f64,
            )
        });
    let generations = checker.generations.min(DRIFT_GENERATIONS);
    let exact_drift = Cell::new(0.0);
    let noisy_change = Cell::new(0.0);
    let noisy_falls = Cell::new(0.0);

    let found = search(
        checker.search_settings(),
        Property::NoAnchoring,
        &strategy,
        |(history, noise, eta)| {
            let Some(start) = history.students.first() else {
                return missing_from_history("student");
            };
            let runs = |fit| match &unanchored {
                Some(built) => iterate(
                    built.as_ref(),
                    &history.teachers,
                    start,
                    generations,
                    fit,
                    Stop::Never,
                ),
                None => iterate(
                    operator,
                    &history.teachers,
                    start,
                    generations,
                    fit,
                    Stop::Never,
                ),
            };
            let (exact, noisy) = match (runs(Fit::Exact), runs(Fit::Off(noise, real(*eta)))) {
                (Ok(exact), Ok(noisy)) => (exact, noisy),
                (Err(error), _) | (_, Err(error)) => {
                    return Outcome::fail(f64::NEG_INFINITY, format!("{error}"));
                }
            };
            let (Some(&initial), Some(&noisy_last)) =
                (exact.divergences.first(), noisy.divergences.last())
            else {
                return missing_from_history("divergence trajectory");
            };
            let initial = f64_of(initial);
            let drift = exact
                .divergences
                .iter()
                .map(|&d| (f64_of(d) - initial).abs())
                .fold(0.0, f64::max);
            raise(&exact_drift, drift);
            let change = f64_of(noisy_last) - initial;
            raise(&noisy_change, change.abs());
            if change < 0.0 {
                noisy_falls.set(noisy_falls.get() + 1.0);
            }
            let allowed = checker.tolerance * initial.max(1.0);
            Outcome::judge(allowed - drift, drift <= allowed, || {
                format!(
                    "exact students drift: max_g |D(S_g) - D(S_0)| = {drift:.6e} from D(S_0) = {initial:.6e}"
                )
            })
        },
    );
    let measurements = vec![
        Measurement {
            name: "exact drift",
            value: exact_drift.get(),
        },
        Measurement {
            name: "noisy |D_G - D_0|",
            value: noisy_change.get(),
        },
        Measurement {
            name: "noisy runs where D fell",
            value: noisy_falls.get(),
        },
    ];
    row_from_search(
        Property::NoAnchoring,
        found,
        measurements,
        |(history, _, _), description| counterexample(history, description),
    )
}

/// Checks that the rate `(D(S_n) / D(S_0))^(1/n)`, `n = 4`, does not increase along the anchor grid.
pub(super) fn rate_dependence<F: Real>(
    checker: &Checker<F>,
    family: Option<&Family<'_, F>>,
) -> PropertyRow<F> {
    let Some(make) = family else {
        return needs_family(Property::RateDependence);
    };
    let operators = grid_operators(checker, make);
    if operators.len() < 2 {
        return PropertyRow::not_applicable(
            Property::RateDependence,
            "the constructor accepts fewer than 2 anchor weights of the grid",
        );
    }
    let strategy = histories::<F>(&checker.space, checker.teachers, 1..=1);
    let rate_low = Cell::new(0.0);
    let rate_high = Cell::new(0.0);

    let found = search(
        checker.search_settings(),
        Property::RateDependence,
        &strategy,
        |history| {
            let Some(start) = history.students.first() else {
                return missing_from_history("student");
            };
            let mut rates = Vec::with_capacity(operators.len());
            for (a, operator) in &operators {
                let run = iterate(
                    operator.as_ref(),
                    &history.teachers,
                    start,
                    RATE_GENERATIONS,
                    Fit::Exact,
                    Stop::Never,
                );
                match run {
                    Ok(run) => {
                        let (Some(&first), Some(&last)) =
                            (run.divergences.first(), run.divergences.last())
                        else {
                            return missing_from_history("divergence trajectory");
                        };
                        let (first, last) = (f64_of(first), f64_of(last));
                        let steps = (run.divergences.len() - 1) as f64;
                        let rate = if first > 0.0 {
                            (last / first).powf(1.0 / steps)
                        } else {
                            0.0
                        };
                        rates.push((f64_of(*a), rate));
                    }
                    Err(error) => {
                        return Outcome::fail(
                            f64::NEG_INFINITY,
                            format!("a = {}: {error}", f64_of(*a)),
                        );
                    }
                }
            }
            // The check returns early with fewer than 2 operators, so `rates` is never empty here.
            if let (Some(&(_, low)), Some(&(_, high))) = (rates.first(), rates.last()) {
                raise(&rate_low, low);
                raise(&rate_high, high);
            }
            let mut margin = f64::INFINITY;
            for (&(a0, r0), &(a1, r1)) in rates.iter().zip(rates.iter().skip(1)) {
                margin = margin.min(r0 - r1);
                if r1 > r0 + checker.tolerance {
                    return Outcome::fail(
                        r0 - r1,
                        format!("rate rises from {r0:.6} at a = {a0} to {r1:.6} at a = {a1}"),
                    );
                }
            }
            Outcome::pass(margin)
        },
    );
    let measurements = vec![
        Measurement {
            name: "rate at smallest a",
            value: rate_low.get(),
        },
        Measurement {
            name: "rate at largest a",
            value: rate_high.get(),
        },
    ];
    row_from_search(
        Property::RateDependence,
        found,
        measurements,
        counterexample,
    )
}
