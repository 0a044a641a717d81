//! Controls of a recursion run: anchor-weight schedules, stopping rules and the stop reason.

use crate::batch::DistributionBatch;
use crate::error::{Error, Result};
use crate::real::{Real, to_f64};

/// A schedule of the anchor weight `a` from one generation to the next.
///
/// Step `g` (the step that builds `q_{g-1}` and trains `S_g`, `g >= 1`) uses
/// the weight `a_g`:
///
/// ```text
/// Constant(a)                                   a_g = a
/// Ramp { start, end, steps }                    a_g = start + (end - start) · min(g - 1, steps) / steps
/// Adaptive { initial, increment, max, target }  a_1 = initial,
///                                               a_{g+1} = min(a_g + increment, max)  if D(S_g) / D(S_{g-1}) >= target
///                                               a_{g+1} = a_g                        otherwise
/// ```
///
/// The adaptive rule raises the weight when `D` falls more slowly than the
/// target ratio, stops falling or rises (a target of 1 reacts only to the last
/// two). A ramp with `steps = 0` uses `end` from the first step.
///
/// # Examples
///
/// ```
/// use metadistill::recursion::AnchorSchedule;
///
/// let ramp = AnchorSchedule::Ramp { start: 0.0, end: 0.4, steps: 4 };
/// ramp.validate()?;
/// assert_eq!(ramp.initial(), 0.0);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AnchorSchedule<F: Real = f64> {
    /// The same weight at every step.
    Constant(F),
    /// A linear change from `start` to `end` over `steps` steps, then `end`.
    Ramp {
        /// The weight of the first step.
        start: F,
        /// The weight from step `steps + 1` on.
        end: F,
        /// The number of steps the change takes.
        steps: usize,
    },
    /// A weight raised whenever the observed per-step ratio of `D` reaches `target`.
    Adaptive {
        /// The weight of the first step.
        initial: F,
        /// How much one raise adds.
        increment: F,
        /// The largest weight the rule may reach.
        max: F,
        /// The ratio `D(S_g) / D(S_{g-1})` at or above which the weight is raised.
        target: F,
    },
}

impl<F: Real> AnchorSchedule<F> {
    /// Checks that every weight lies in `[0, 1]` and the adaptive parameters make sense.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidAnchorWeight`] for a weight outside `[0, 1]` or NaN.
    /// - [`Error::InvalidParameter`] for an adaptive initial weight above its
    ///   max, a negative or non-finite increment or a target that is not finite
    ///   and positive.
    pub fn validate(&self) -> Result<()> {
        match *self {
            AnchorSchedule::Constant(a) => check_weight(a),
            AnchorSchedule::Ramp { start, end, .. } => {
                check_weight(start)?;
                check_weight(end)
            }
            AnchorSchedule::Adaptive {
                initial,
                increment,
                max,
                target,
            } => {
                check_weight(initial)?;
                check_weight(max)?;
                if initial > max {
                    return Err(Error::InvalidParameter {
                        name: "adaptive schedule initial weight",
                        value: to_f64(initial),
                        requirement: "at most the schedule's max weight; lower initial or raise max",
                    });
                }
                if !increment.is_finite() || increment < F::zero() {
                    return Err(Error::InvalidParameter {
                        name: "adaptive schedule increment",
                        value: to_f64(increment),
                        requirement: "finite and non-negative",
                    });
                }
                if !target.is_finite() || target <= F::zero() {
                    return Err(Error::InvalidParameter {
                        name: "adaptive schedule target ratio",
                        value: to_f64(target),
                        requirement: "finite and positive",
                    });
                }
                Ok(())
            }
        }
    }

    /// Returns the weight of the first step.
    pub fn initial(&self) -> F {
        match *self {
            AnchorSchedule::Constant(a) => a,
            AnchorSchedule::Ramp { start, end, steps } => {
                if steps == 0 {
                    end
                } else {
                    start
                }
            }
            AnchorSchedule::Adaptive { initial, .. } => initial,
        }
    }

    /// Returns the weight of step `step + 1`, given the weight of step `step` and its observed ratio.
    pub(crate) fn next(&self, step: usize, current: F, ratio: Option<F>) -> F {
        match *self {
            AnchorSchedule::Constant(a) => a,
            AnchorSchedule::Ramp { start, end, steps } => {
                if steps == 0 {
                    return end;
                }
                let done = F::from(step.min(steps)).unwrap_or_else(F::one);
                let total = F::from(steps).unwrap_or_else(F::one);
                start + (end - start) * done / total
            }
            AnchorSchedule::Adaptive {
                increment,
                max,
                target,
                ..
            } => match ratio {
                Some(r) if r >= target => (current + increment).min(max).max(current),
                _ => current,
            },
        }
    }
}

/// Checks one anchor weight.
fn check_weight<F: Real>(a: F) -> Result<()> {
    if a >= F::zero() && a <= F::one() {
        Ok(())
    } else {
        Err(Error::InvalidAnchorWeight {
            value: to_f64(a),
            range: "[0, 1]",
        })
    }
}

/// The reason a recursion run stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StopReason<F: Real = f64> {
    /// The run reached its generation limit.
    GenerationLimit {
        /// The limit.
        limit: usize,
    },
    /// `|D(S_g) - D(S_{g-1})|` fell below the tolerance.
    DiminishingImprovement {
        /// The last change `|D(S_g) - D(S_{g-1})|`.
        change: F,
        /// The tolerance.
        tolerance: F,
    },
    /// The user metric changed by less than the tolerance for `patience` generations in a row.
    MetricPlateau {
        /// The metric of the last student.
        value: F,
        /// The tolerance on each change.
        tolerance: F,
        /// The number of small changes in a row that stopped the run.
        patience: usize,
    },
}

/// Computes the input-weighted accuracy of a model's most likely token against labels.
///
/// ```text
/// accuracy = Σ_x w_x [argmax_i S_i(x) = y_x]
/// ```
///
/// Ties go to the lowest token index. Use it as the metric of
/// [`Recursion::track_metric`](crate::recursion::Recursion::track_metric).
///
/// # Errors
///
/// - [`Error::LengthMismatch`] if there is not one label per input.
/// - [`Error::InvalidLabel`] for a label at or above the vocabulary size.
///
/// # Examples
///
/// ```
/// use metadistill::DistributionBatch;
/// use metadistill::recursion::accuracy;
/// use ndarray::array;
///
/// let model = DistributionBatch::from_probs(&array![[0.7, 0.3], [0.4, 0.6]])?;
/// assert_eq!(accuracy(&model, &[0, 0])?, 0.5);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn accuracy<F: Real>(model: &DistributionBatch<F>, labels: &[usize]) -> Result<F> {
    if labels.len() != model.n_inputs() {
        return Err(Error::LengthMismatch {
            what: "labels",
            expected: model.n_inputs(),
            found: labels.len(),
        });
    }
    let mut correct = F::zero();
    for (row, (&label, &weight)) in labels.iter().zip(model.input_weights().iter()).enumerate() {
        if label >= model.vocab_size() {
            return Err(Error::InvalidLabel {
                row,
                label,
                n_classes: model.vocab_size(),
            });
        }
        let probs = model.row_slice(row);
        let predicted = probs
            .iter()
            .enumerate()
            .fold((0, F::neg_infinity()), |best, (i, &p)| {
                if p > best.1 { (i, p) } else { best }
            })
            .0;
        if predicted == label {
            correct = correct + weight;
        }
    }
    Ok(correct)
}
