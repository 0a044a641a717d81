//! Decoding of operator configurations, shared by the `operators` and `checker` targets.
//!
//! [`operator`] builds any operator of `metadistill::operator`, combinators
//! included, from the fuzzer's bytes. It checks that every constructor either
//! succeeds or returns an error it documents.

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use metadistill::{
    ConvexCombination, ConvexMixture, Divergence, Error, GeneralizedMixture, HistoryWeights,
    InformationProjection, Iterate, IterativeProjection, MetaTeacherOperator, MirrorDescent,
    OperatorProperties, PostMap, PostMapped, PowerMeanProjection, TemperedMixture, Weights,
    default_sum_tolerance,
};
use ndarray::{ArrayView1, ArrayViewMut1};

use crate::{FuzzFloat, check_probability_vector, divergence, value, weight_like};

/// The largest number of mirror-descent iterations; a few reach every branch of the solver.
pub const MAX_SOLVER_ITERATIONS: usize = 12;

/// The nesting depth of combinators: at most a combination of iterates of base operators.
pub const MAX_DEPTH: usize = 2;

/// An operator of any type behind one pointer, so the combinators can hold any operator.
pub struct AnyOperator<F: FuzzFloat> {
    inner: Box<dyn OperatorProperties<F>>,
    /// Tells whether a `DisjointSupports` error is possible: true for power
    /// means of order <= 0 and the iterative projections, or any operator that
    /// contains one.
    pub may_report_disjoint: bool,
    /// Tells whether such an error is possible even when some token is positive
    /// in every input: an `Iterate` feeds back outputs whose zeros the inputs lack.
    pub disjoint_on_any_input: bool,
    /// The `Debug` form of the operator, for failure messages.
    pub description: String,
}

impl<F: FuzzFloat> std::fmt::Debug for AnyOperator<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
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
fn accept<F: FuzzFloat, O: OperatorProperties<F> + std::fmt::Debug + 'static>(
    result: metadistill::Result<O>,
    may_report_disjoint: bool,
) -> Option<AnyOperator<F>> {
    match result {
        Ok(operator) => Some(AnyOperator {
            description: format!("{operator:?}"),
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
pub fn operator<F: FuzzFloat>(
    u: &mut Unstructured,
    depth: usize,
) -> Result<Option<AnyOperator<F>>> {
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
            // A power mean of order <= 0 is 0 wherever one pooled point is 0. One
            // of a tiny positive order underflows there: ln M_b ≈ ln W / b.
            let tiny = F::from_f64_lossy(1e3) / F::max_value();
            let disjoint = projection.order() <= tiny;
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
