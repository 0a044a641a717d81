//! One function per property; each turns a proptest search into a report row.

mod axioms;
mod dynamics;
mod equivalence;
mod noise;

pub(crate) use equivalence::equivalence_row;

use std::cell::Cell;

use crate::axioms::Family;
use crate::axioms::report::{Counterexample, Property, PropertyRow};
use crate::axioms::settings::Checker;
use crate::axioms::strategies::History;
use crate::operator::MetaTeacherOperator;
use crate::real::Real;

/// Checks one property of `operator`; `family` builds the operator for other anchor weights.
///
/// `family` pairs the constructor with the anchor weight `operator` was built
/// from, which can differ from the weight it declares (a tempered mixture
/// declares 0, a two-teacher mixture `a w_0`).
pub(crate) fn check_property<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    checker: &Checker<F>,
    property: Property,
    operator: &O,
    family_at: Option<(F, &Family<'_, F>)>,
) -> PropertyRow<F> {
    let family = family_at.map(|(_, make)| make);
    match property {
        Property::ValidOutput => axioms::valid_output(checker, operator),
        Property::Positivity => axioms::positivity(checker, operator),
        Property::Anchoring => axioms::anchoring(checker, operator),
        Property::Continuity => axioms::continuity(checker, operator, family_at),
        Property::Monotonicity => axioms::monotonicity(checker, family),
        Property::Contraction => dynamics::contraction(checker, operator),
        Property::FixedPoint => dynamics::fixed_point(checker, operator),
        Property::NoisyContractionPaper => noise::noisy_contraction(checker, operator, false),
        Property::NoisyContractionCorrected => noise::noisy_contraction(checker, operator, true),
        Property::NoAnchoring => dynamics::no_anchoring(checker, operator, family),
        Property::RateDependence => dynamics::rate_dependence(checker, family),
        Property::Stability => noise::stability(checker, operator, family_at),
        Property::Equivalence => PropertyRow::not_applicable(
            property,
            "compares two operators: use Checker::equivalence",
        ),
    }
}

/// Builds the family's operators at the checker's anchor grid, skipping values it rejects.
fn grid_operators<'a, F: Real>(
    checker: &Checker<F>,
    family: &Family<'a, F>,
) -> Vec<(F, Box<dyn MetaTeacherOperator<F> + 'a>)> {
    checker
        .anchor_grid
        .iter()
        .filter_map(|&a| {
            let a = crate::axioms::engine::real::<F>(a);
            family(a).ok().map(|operator| (a, operator))
        })
        .collect()
}

/// Returns the row of a property that needs an operator family.
fn needs_family<F: Real>(property: Property) -> PropertyRow<F> {
    PropertyRow::not_applicable(
        property,
        "varies a: use Checker::check_family with a constructor",
    )
}

/// Builds a counterexample from a history and the failure's description.
fn counterexample<F: Real>(history: History<F>, description: String) -> Counterexample<F> {
    Counterexample {
        history,
        description,
    }
}

/// Builds the failed outcome of a drawn history that lacks the `what` a check needs.
///
/// The strategies draw at least one base teacher and one student, so a
/// search never reaches this outcome.
fn missing_from_history(what: &str) -> crate::axioms::engine::Outcome {
    crate::axioms::engine::Outcome::fail(
        f64::NEG_INFINITY,
        format!("the drawn history has no {what}"),
    )
}

/// Keeps the largest value seen.
fn raise(cell: &Cell<f64>, value: f64) {
    if value > cell.get() || value.is_nan() {
        cell.set(value);
    }
}

/// Keeps the smallest value seen.
fn lower(cell: &Cell<f64>, value: f64) {
    if value < cell.get() || value.is_nan() {
        cell.set(value);
    }
}
