//! Imperfect students: the noisy contraction bound and the stability of the limit.

use std::cell::Cell;

use proptest::prelude::*;

use super::{counterexample, missing_from_history, raise};
use crate::axioms::Family;
use crate::axioms::engine::{
    Fit, Outcome, Stop, blend, f64_of, iterate, real, row_from_search, search,
};
use crate::axioms::limit::find_limit;
use crate::axioms::report::{Measurement, Property, PropertyRow};
use crate::axioms::settings::Checker;
use crate::axioms::strategies::{History, distribution, histories};
use crate::divergence::{kl, max_log_ratio, total_variation};
use crate::error::{Error, Result};
use crate::operator::MetaTeacherOperator;
use crate::real::Real;

/// Size of the perturbations whose effect on the limit the stability check measures.
const STABILITY_STEP: f64 = 1e-3;

/// Draws a history plus a noise direction and size: `S_{g+1} = (1 - η) q_g + η r`.
fn noisy_cases<F: Real>(
    checker: &Checker<F>,
) -> impl Strategy<Value = (History<F>, crate::Distribution<F>, f64)> {
    let space = checker.space.clone();
    histories::<F>(&checker.space, checker.teachers, 1..=1).prop_flat_map(move |history| {
        let size = history.vocab_size();
        (
            Just(history),
            distribution::<F>(&space, size),
            0.001..=0.5_f64,
        )
    })
}

/// Checks the noisy bound `D(S_{g+1}) <= (1 - a) D(S_g) + ε` for one step with an imperfect student.
///
/// ```text
/// paper:     ε = KL(q_g ‖ S_{g+1})
/// corrected: ε∞ = max_i ln(q_{g,i} / S_{g+1,i})
/// ```
///
/// The corrected form follows from the identity
/// `D(S_{g+1}) = KL(T0 ‖ q_g) + Σ_i T0_i ln(q_{g,i} / S_{g+1,i})`.
pub(super) fn noisy_contraction<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    checker: &Checker<F>,
    operator: &O,
    corrected: bool,
) -> PropertyRow<F> {
    let property = if corrected {
        Property::NoisyContractionCorrected
    } else {
        Property::NoisyContractionPaper
    };
    let beta = 1.0 - f64_of(operator.anchor_weight());
    let largest_excess = Cell::new(f64::NEG_INFINITY);

    let found = search(
        checker.search_settings(),
        property,
        &noisy_cases(checker),
        |(history, direction, eta)| {
            let (Some(teacher), Some(current)) =
                (history.teachers.first(), history.students.first())
            else {
                return missing_from_history("base teacher or student");
            };
            let step = || -> Result<(f64, f64, f64)> {
                let q = operator.build(&history.teachers, &history.students)?;
                let next = blend(&q, direction, real(*eta))?;
                let epsilon = if corrected {
                    max_log_ratio(&q, &next)?
                } else {
                    kl(&q, &next)?
                };
                Ok((
                    f64_of(kl(teacher, current)?),
                    f64_of(kl(teacher, &next)?),
                    f64_of(epsilon),
                ))
            };
            match step() {
                Ok((before, after, epsilon)) => {
                    let bound = beta * before + epsilon;
                    raise(&largest_excess, after - bound);
                    Outcome::judge(bound - after, checker.within(after, bound), || {
                        format!(
                            "student off by eta = {eta:.6} towards r = {}: D(S_g+1) = {after:.6e} > \
                         (1 - a) D(S_g) + eps = {beta} * {before:.6e} + {epsilon:.6e} = {bound:.6e}",
                            crate::axioms::strategies::format_probs(direction)
                        )
                    })
                }
                Err(error) => Outcome::fail(f64::NEG_INFINITY, format!("{error}")),
            }
        },
    );
    let measurements = vec![Measurement {
        name: "largest D(S_g+1) - bound",
        value: largest_excess.get(),
    }];
    row_from_search(
        property,
        found,
        measurements,
        |(history, _, _), description| counterexample(history, description),
    )
}

/// The sensitivities of the limit of one stability case.
struct Sensitivities {
    fit: f64,
    anchor: Option<f64>,
    input_weights: f64,
}

/// Stability: the limit moves little under small changes of the student fit, of the
/// anchor weight (given a family) and of the input weights.
///
/// ```text
/// fit:           TV(lim with S_{g+1} = (1 - δ) q_g + δ r, lim) / δ
/// anchor weight: TV(lim at a ± δ, lim at a) / δ
/// input weights: |D_{w'}(lim) - D_w(lim)| / ‖w' - w‖₁,   two inputs, w = (½, ½), w' = (½ + δ, ½ - δ)
/// ```
///
/// with `δ = 1e-3`. Operators act on each input separately, so the limit
/// itself cannot depend on the input weights. What moves is the expected
/// distance `D` of the limit, with sensitivity `|KL_1 - KL_2| / 2`.
pub(super) fn stability<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    checker: &Checker<F>,
    operator: &O,
    family: Option<(F, &Family<'_, F>)>,
) -> PropertyRow<F> {
    let space = checker.space.clone();
    let strategy = (
        histories::<F>(&checker.space, checker.teachers, 1..=1),
        histories::<F>(&checker.space, checker.teachers, 1..=1),
    )
        .prop_flat_map(move |(first, second)| {
            let size = first.vocab_size();
            (Just(first), Just(second), distribution::<F>(&space, size))
        });
    let delta = real::<F>(STABILITY_STEP);
    // Vary the family's own parameter, because the declared weight can differ from it.
    let anchor = family.map_or_else(|| operator.anchor_weight(), |(anchor, _)| anchor);
    let moved_anchor = if anchor + delta <= F::one() {
        anchor + delta
    } else {
        anchor - delta
    };
    let shifted = family.and_then(|(_, make)| make(moved_anchor).ok());
    let tolerance = real::<F>(checker.tolerance);
    let largest = [Cell::new(0.0), Cell::new(0.0), Cell::new(0.0)];

    let found = search(
        checker.search_settings(),
        Property::Stability,
        &strategy,
        |(first, second, direction)| {
            let measure = || -> Result<std::result::Result<Sensitivities, String>> {
                let first_start = first.students.first().ok_or(Error::Empty {
                    what: "students of the first drawn history",
                })?;
                let second_start = second.students.first().ok_or(Error::Empty {
                    what: "students of the second drawn history",
                })?;
                let limit = find_limit(
                    operator,
                    &first.teachers,
                    first_start,
                    tolerance,
                    checker.generations,
                )?;
                if !limit.converged {
                    return Ok(Err(format!(
                        "no limit after {} generations (last step {:.3e})",
                        limit.generations,
                        f64_of(limit.last_step)
                    )));
                }
                let perturbed = iterate(
                    operator,
                    &first.teachers,
                    first_start,
                    checker.generations,
                    Fit::Off(std::slice::from_ref(direction), delta),
                    Stop::Converged(tolerance),
                )?;
                if !perturbed.stopped {
                    return Ok(Err(format!(
                        "with students off by {STABILITY_STEP} the recursion does not settle within {} \
                     generations (last step {:.3e})",
                        checker.generations,
                        f64_of(perturbed.last_step)
                    )));
                }
                let fit =
                    f64_of(total_variation(&perturbed.last, &limit.student)?) / STABILITY_STEP;
                let anchor_sensitivity = match &shifted {
                    Some(other) => {
                        let moved = find_limit(
                            other.as_ref(),
                            &first.teachers,
                            first_start,
                            tolerance,
                            checker.generations,
                        )?;
                        Some(
                            f64_of(total_variation(&moved.student, &limit.student)?)
                                / f64_of((moved_anchor - anchor).abs()),
                        )
                    }
                    None => None,
                };
                let other = find_limit(
                    operator,
                    &second.teachers,
                    second_start,
                    tolerance,
                    checker.generations,
                )?;
                let (first_offset, second_offset) = (f64_of(limit.offset), f64_of(other.offset));
                // Two infinite offsets leave D infinite under every input weighting.
                let input_weights = if first_offset.is_infinite() && second_offset.is_infinite() {
                    0.0
                } else {
                    (first_offset - second_offset).abs() / 2.0
                };
                Ok(Ok(Sensitivities {
                    fit,
                    anchor: anchor_sensitivity,
                    input_weights,
                }))
            };
            match measure() {
                Ok(Ok(found)) => {
                    raise(&largest[0], found.fit);
                    raise(&largest[1], found.anchor.unwrap_or(0.0));
                    raise(&largest[2], found.input_weights);
                    let worst = found
                        .fit
                        .max(found.anchor.unwrap_or(0.0))
                        .max(found.input_weights);
                    Outcome::judge(
                        checker.max_sensitivity - worst,
                        worst <= checker.max_sensitivity,
                        || {
                            format!(
                                "limit sensitivity {worst:.4e} exceeds {} (fit {:.4e}, a {:?}, input weights {:.4e})",
                                checker.max_sensitivity,
                                found.fit,
                                found.anchor,
                                found.input_weights
                            )
                        },
                    )
                }
                Ok(Err(description)) => Outcome::fail(f64::NEG_INFINITY, description),
                Err(error) => Outcome::fail(f64::NEG_INFINITY, format!("{error}")),
            }
        },
    );
    let mut measurements = vec![Measurement {
        name: "sensitivity to fit",
        value: largest[0].get(),
    }];
    if shifted.is_some() {
        measurements.push(Measurement {
            name: "sensitivity to a",
            value: largest[1].get(),
        });
    }
    measurements.push(Measurement {
        name: "sensitivity to input weights",
        value: largest[2].get(),
    });
    row_from_search(
        Property::Stability,
        found,
        measurements,
        |(first, _, direction), description| {
            counterexample(
                History {
                    teachers: first.teachers.clone(),
                    students: first.students.iter().take(1).cloned().collect(),
                },
                format!(
                    "{description}; fit direction r = {}",
                    crate::axioms::strategies::format_probs(&direction)
                ),
            )
        },
    )
}
