//! The axiom checker: verdicts and shrunk counterexamples for any meta-teacher operator.
//!
//! [`Checker::check`] takes any [`MetaTeacherOperator`] (a built-in one or your
//! own) and tests each property "Recursive Meta-Distillation: An Axiomatic
//! Framework for Iterative Knowledge Refinement" (Flouro and Chadwick) claims,
//! on random inputs from proptest strategies. The answer is a [`Report`]: one
//! [`PropertyRow`] per [`Property`] with a [`Verdict`], the number of cases
//! tried, the worst margin, the measured numbers and, where the property
//! fails, a counterexample that proptest has shrunk towards a small vocabulary
//! with small integer token weights.
//!
//! [`Checker::check_family`] also takes a constructor `Fn(a) -> Result<operator>`,
//! which the properties that vary the anchor weight need: Axiom 5, continuity
//! in `a`, the rate's dependence on `a` and stability under a change of `a`.
//! [`Checker::equivalence`] searches for an input on which two operators differ.
//!
//! What the checker expects, for the record (`t = T0`, `D(M) = KL(t ‖ M)`):
//!
//! - Axiom 3 as written (`min(q_i, t_i) >= a min(r_i, t_i)` for some `r`) holds
//!   for every operator with `r = q`, so the checker
//!   tests the effective anchor weight `a*(q; t) = min_i q_i / t_i >= a`
//!   instead. The convex mixture meets it; the geometric pool `t^a s^(1-a)/Z`
//!   can fall below `a` and still contracts.
//! - Under exact students the convex mixture contracts with ratio at most
//!   `1 - a`, and the ratio tends to `(1 - a)²` near the fixed point.
//! - With `ε = KL(q_g ‖ S_{g+1})` the noisy bound
//!   `D(S_{g+1}) <= (1 - a) D(S_g) + ε` is false; with
//!   `ε∞ = max_i ln(q_{g,i} / S_{g+1,i})` it holds for any operator that
//!   contracts under exact students.
//! - With `a = 0` and exact students `D(S_g) = D(S_0)`: nothing drifts.
//! - Tempering inside the operator moves the fixed point away from `t`.
//!
//! Every search is deterministic for a given seed and settings.
//!
//! # Examples
//!
//! ```
//! use metadistill::ConvexMixture;
//! use metadistill::axioms::{Checker, Property, Verdict};
//!
//! let checker = Checker::<f64>::new().with_cases(16)?.with_seed(7);
//! let report = checker.check_family(0.3, ConvexMixture::new)?;
//! assert_eq!(report.verdict(Property::Anchoring), Verdict::Holds);
//! assert_eq!(report.verdict(Property::NoisyContractionPaper), Verdict::Violated);
//! println!("{report}");
//! # Ok::<(), metadistill::Error>(())
//! ```

mod engine;
mod limit;
mod properties;
mod report;
mod settings;
mod strategies;

pub use limit::{Limit, find_limit};
pub use report::{
    Counterexample, Measurement, Property, PropertyRow, Report, Verdict, summary_table,
};
pub use settings::Checker;
pub use strategies::{
    DistributionSpace, History, anchor_weights, distribution, distribution_lists, distributions,
    histories, weights,
};

use crate::operator::MetaTeacherOperator;

/// An operator family: builds the operator for a given anchor weight.
pub(crate) type Family<'a, F> =
    dyn Fn(F) -> crate::error::Result<Box<dyn MetaTeacherOperator<F> + 'a>> + 'a;
