//! A limited-memory BFGS minimizer for the trained students, and its report.

use std::collections::VecDeque;

use crate::real::{Real, constant};

/// The reason an iterative fit stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FitOutcome {
    /// The largest gradient entry fell to the tolerance or below.
    Converged,
    /// The iteration limit was reached before the tolerance.
    IterationLimit,
    /// No step along the search direction lowered the loss, so the loss is
    /// flat to working precision there; the gradient may still exceed the tolerance.
    Stalled,
}

/// The result of an iterative fit: how far it got and why it stopped.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FitReport<F: Real = f64> {
    /// The reason the fit stopped.
    pub outcome: FitOutcome,
    /// Iterations taken (accepted steps).
    pub iterations: usize,
    /// The loss `E_x KL(q(·|x) ‖ S(·|x))` at the end, in nats.
    pub loss: F,
    /// The largest absolute entry of the gradient at the end.
    pub gradient_norm: F,
    /// The tolerance on the gradient that was requested.
    pub tolerance: F,
    /// The loss before each iteration and after the last one.
    pub losses: Vec<F>,
}

/// Number of correction pairs the minimizer remembers.
const MEMORY: usize = 10;

/// Sufficient-decrease constant of the Armijo line search.
const ARMIJO: f64 = 1e-4;

/// Largest number of step halvings in one line search.
const MAX_HALVINGS: usize = 60;

/// Minimizes a smooth function with L-BFGS and a backtracking Armijo line search.
///
/// `objective(x, gradient)` returns the value at `x` and writes the gradient.
/// `x` contains the starting point on entry and the minimizer on return.
pub(crate) fn minimize<F: Real>(
    mut objective: impl FnMut(&[F], &mut [F]) -> F,
    x: &mut [F],
    tolerance: F,
    max_iterations: usize,
) -> FitReport<F> {
    let n = x.len();
    let mut gradient = vec![F::zero(); n];
    let mut value = objective(x, &mut gradient);
    let mut losses = vec![value];
    let mut pairs: VecDeque<(Vec<F>, Vec<F>, F)> = VecDeque::with_capacity(MEMORY);
    let mut trial = vec![F::zero(); n];
    let mut trial_gradient = vec![F::zero(); n];
    let armijo = constant::<F>(ARMIJO);

    let mut iterations = 0;
    let outcome = loop {
        if max_abs(&gradient) <= tolerance {
            break FitOutcome::Converged;
        }
        if iterations >= max_iterations {
            break FitOutcome::IterationLimit;
        }

        let mut direction = two_loop(&gradient, &pairs);
        let mut slope = dot(&gradient, &direction);
        if slope >= F::zero() {
            pairs.clear();
            direction = gradient.iter().map(|&g| -g).collect();
            slope = dot(&gradient, &direction);
        }

        let mut step = if pairs.is_empty() {
            F::one() / max_abs(&gradient).max(F::one())
        } else {
            F::one()
        };
        let mut accepted = None;
        for _ in 0..MAX_HALVINGS {
            for ((t, &xi), &d) in trial.iter_mut().zip(x.iter()).zip(&direction) {
                *t = xi + step * d;
            }
            let trial_value = objective(&trial, &mut trial_gradient);
            if trial_value.is_finite() && trial_value <= value + armijo * step * slope {
                accepted = Some(trial_value);
                break;
            }
            step = step / (F::one() + F::one());
        }
        let Some(new_value) = accepted else {
            break FitOutcome::Stalled;
        };

        let s: Vec<F> = trial.iter().zip(x.iter()).map(|(&t, &xi)| t - xi).collect();
        let y: Vec<F> = trial_gradient
            .iter()
            .zip(&gradient)
            .map(|(&a, &b)| a - b)
            .collect();
        let curvature = dot(&s, &y);
        if curvature > F::epsilon() * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
            if pairs.len() == MEMORY {
                pairs.pop_front();
            }
            pairs.push_back((s, y, F::one() / curvature));
        }

        x.copy_from_slice(&trial);
        gradient.copy_from_slice(&trial_gradient);
        value = new_value;
        losses.push(value);
        iterations += 1;
    };

    FitReport {
        outcome,
        iterations,
        loss: value,
        gradient_norm: max_abs(&gradient),
        tolerance,
        losses,
    }
}

/// Computes the L-BFGS search direction `-H g` from the stored correction pairs.
fn two_loop<F: Real>(gradient: &[F], pairs: &VecDeque<(Vec<F>, Vec<F>, F)>) -> Vec<F> {
    let mut q: Vec<F> = gradient.to_vec();
    let mut alphas = Vec::with_capacity(pairs.len());
    for (s, y, rho) in pairs.iter().rev() {
        let alpha = *rho * dot(s, &q);
        for (qi, &yi) in q.iter_mut().zip(y) {
            *qi = *qi - alpha * yi;
        }
        alphas.push(alpha);
    }

    if let Some((s, y, _)) = pairs.back() {
        let scale = dot(s, y) / dot(y, y);
        for qi in q.iter_mut() {
            *qi = *qi * scale;
        }
    }

    for ((s, y, rho), alpha) in pairs.iter().zip(alphas.into_iter().rev()) {
        let beta = *rho * dot(y, &q);
        for (qi, &si) in q.iter_mut().zip(s) {
            *qi = *qi + (alpha - beta) * si;
        }
    }
    q.iter().map(|&v| -v).collect()
}

/// Returns the dot product of two equally long slices.
fn dot<F: Real>(a: &[F], b: &[F]) -> F {
    a.iter().zip(b).fold(F::zero(), |sum, (&x, &y)| sum + x * y)
}

/// Returns the largest absolute entry (0 for an empty slice).
fn max_abs<F: Real>(values: &[F]) -> F {
    values.iter().fold(F::zero(), |m, &v| m.max(v.abs()))
}
