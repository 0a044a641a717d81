//! Exact finite-vocabulary operator algebra for recursive meta-distillation.
//!
//! Recursive meta-distillation trains a sequence of students `S_0, S_1, …`,
//! each from a meta-teacher `q_g` that an operator builds from the base
//! teacher(s) and the earlier students. This crate makes the objects of
//! "Recursive Meta-Distillation: An Axiomatic Framework for Iterative Knowledge
//! Refinement" (Flouro and Chadwick, arXiv 2601.13100) executable over a finite
//! vocabulary:
//!
//! - [`Distribution`] and [`DistributionBatch`]: probability vectors, one or one
//!   per input `x`, valid by construction;
//! - [`divergence`]: KL and its relatives, accurate to near machine precision;
//! - [`MetaTeacherOperator`]: the operator trait, with [`ConvexMixture`],
//!   [`GeneralizedMixture`], the information projections
//!   ([`InformationProjection`], [`IterativeProjection`]), [`TemperedMixture`]
//!   and the combinators of [`OperatorProperties`];
//! - [`student`]: exact, noisy, sparse and trained students;
//! - [`recursion`]: the recursion with exact or imperfect students, anchor
//!   schedules, stopping rules and trajectories;
//! - [`axioms`]: the checker that tests any operator against the paper's claims;
//! - `npy` (feature `npy`): teacher probabilities, features and labels from
//!   NumPy `.npy` files.
//! - [`kernels`]: fused batched kernels on `B × V` matrices for LLM-sized vocabularies.
//!
//! Conventions: natural logarithms (nats) unless a function name ends in `_bits`,
//! `0 ln 0 = 0`, `q_i = 0 < p_i` gives `+inf`. Every function that takes user
//! data returns [`Result`]; the error names the offending value and index.
//!
//! # Examples
//!
//! ```
//! use metadistill::{ConvexMixture, Distribution, recursion::run_exact};
//!
//! let teacher = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
//! let student = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
//! let run = run_exact(&ConvexMixture::new(0.3)?, &[teacher], &student, 2)?;
//! let d: Vec<f64> = run.divergences();
//! assert!((d[0] - 0.396058).abs() < 1e-6);
//! assert!((d[2] - 0.0842).abs() < 1e-4);
//! # Ok::<(), metadistill::Error>(())
//! ```
//!
//! # Where the paper is wrong
//!
//! - The appendix prints `D(S_0) ≈ 0.584`; the KL divergence is 0.396058 nats
//!   (0.571392 bits). Its `a = 0.3` row is the bound `0.584 · 0.7^g`, not a
//!   computed trajectory, and its `a = 0` row is the line `0.584 + 0.05 g`.
//! - Axiom 3 as written holds for any operator (take `r = q`); the checkable
//!   form is the effective anchor weight, [`effective_anchor_weight`].
//! - Under exact students and `a = 0` nothing drifts: `D(S_g) = D(S_0)`.
//! - The noisy bound with `ε = KL(q_g ‖ S_{g+1})` fails, but it is true with the max
//!   log-ratio `ε∞ = max_i ln(q_{g,i} / S_{g+1,i})` in place of `ε`.

#![doc = include_str!("guarantees.md")]
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::float_cmp))]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod axioms;
pub mod batch;
pub mod distribution;
pub mod divergence;
mod error;
pub mod kernels;
#[cfg(feature = "npy")]
pub mod npy;
pub mod operator;
mod real;
pub mod recursion;
pub mod student;

pub use batch::DistributionBatch;
pub use distribution::Distribution;
pub use divergence::Divergence;
pub use error::{Error, Result};
pub use operator::{
    ConvexCombination, ConvexMixture, GeneralizedMixture, HistoryWeights, InformationProjection,
    Iterate, IterativeProjection, MetaTeacherOperator, MirrorDescent, OperatorProperties, PostMap,
    PostMapped, PowerMeanProjection, SolverReport, TemperedMixture, Weights, amari_alpha,
    divergence_gradient_into, effective_anchor_weight, power_mean_into,
};
pub use real::{MAX_SUM_TOLERANCE, Real, SUM_TOLERANCE_FACTOR, default_sum_tolerance};

/// Compiles and runs the README's code blocks as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
