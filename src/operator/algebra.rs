//! Operator algebra: new operators from old ones, with their guarantees carried along.
//!
//! The combinators [`ConvexCombination`], [`PostMapped`] and [`Iterate`]
//! compute their [`OperatorProperties`] (pointwise anchoring, a contraction
//! factor, `T0` as a fixed point) from their parts, so a built operator
//! states which axioms it kept.

use std::sync::{Mutex, PoisonError};

use ndarray::{Array1, ArrayView1, ArrayViewMut1, Zip};

use crate::divergence::terms::compensated_sum;
use crate::error::{Error, Result};
use crate::operator::tempered::{check_temperature, temper_in_place};
use crate::operator::{
    MetaTeacherOperator, OperatorProperties, check_input_vector, validate_output,
};
use crate::real::{Compact, Real, to_f64};

/// Work buffers of length `V` that a combinator keeps between calls.
///
/// The lock is never held across a call back into the same combinator, since
/// an owned value cannot contain itself.
#[derive(Debug, Default)]
struct Scratch<F> {
    buffers: Mutex<Vec<Array1<F>>>,
}

impl<F: Real> Scratch<F> {
    /// Runs `work` on `count` zeroed buffers of length `len`, allocating only when they grow.
    ///
    /// Each operator calls this with a fixed `count`, so the pool keeps exactly
    /// `count` buffers between calls.
    fn with<R>(&self, count: usize, len: usize, work: impl FnOnce(&mut [Array1<F>]) -> R) -> R {
        let mut buffers = self.buffers.lock().unwrap_or_else(PoisonError::into_inner);
        buffers.resize_with(count, || Array1::zeros(len));
        for buffer in buffers.iter_mut() {
            zero_to_length(buffer, len);
        }
        work(&mut buffers)
    }

    /// Runs `work` on one zeroed buffer of length `len`, allocating only when it grows.
    fn with_one<R>(&self, len: usize, work: impl FnOnce(&mut Array1<F>) -> R) -> R {
        let mut buffers = self.buffers.lock().unwrap_or_else(PoisonError::into_inner);
        let mut buffer = buffers.pop().unwrap_or_else(|| Array1::zeros(len));
        zero_to_length(&mut buffer, len);
        let result = work(&mut buffer);
        buffers.push(buffer);
        result
    }
}

/// Sets `buffer` to `len` zeros, reusing its allocation when the length already matches.
fn zero_to_length<F: Real>(buffer: &mut Array1<F>, len: usize) {
    if buffer.len() == len {
        buffer.fill(F::zero());
    } else {
        *buffer = Array1::zeros(len);
    }
}

impl<F> Clone for Scratch<F> {
    fn clone(&self) -> Self {
        Scratch {
            buffers: Mutex::new(Vec::new()),
        }
    }
}

/// The convex combination `λ G1 + (1 - λ) G2` of two operators.
///
/// ```text
/// q = λ G1(T; S) + (1 - λ) G2(T; S),   0 <= λ <= 1
/// ```
///
/// - Declared anchor weight: `λ a1 + (1 - λ) a2`. Pointwise anchoring holds
///   when both parts anchor pointwise, since `q >= (λ a1 + (1 - λ) a2) T0`.
/// - Contraction: `λ c1 + (1 - λ) c2` when both parts have one, by joint
///   convexity of KL.
/// - Fixed point: `T0` when both parts fix it.
/// - Cost: both parts' costs plus `O(V)`; one buffer of length `V` is kept
///   between calls, so repeated calls on one vocabulary size allocate nothing.
///
/// # Examples
///
/// ```
/// use metadistill::{ConvexCombination, ConvexMixture, Distribution, MetaTeacherOperator};
///
/// let blend = ConvexCombination::new(ConvexMixture::new(0.2)?, ConvexMixture::new(0.6)?, 0.5f64)?;
/// assert!((blend.anchor_weight() - 0.4).abs() < 1e-15);
/// let teacher: Distribution = Distribution::from_probs(&[1.0, 0.0])?;
/// let student = Distribution::from_probs(&[0.0, 1.0])?;
/// let q = blend.build(&[teacher], &[student])?;
/// assert!((q.probs()[0] - 0.4).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConvexCombination<A, B, F: Real = f64> {
    first: A,
    second: B,
    weight: F,
    scratch: Scratch<F>,
}

impl<A, B, F> ConvexCombination<A, B, F>
where
    F: Real,
    A: MetaTeacherOperator<F>,
    B: MetaTeacherOperator<F>,
{
    /// Builds `weight · first + (1 - weight) · second`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `weight` is not in `[0, 1]`.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{ConvexCombination, ConvexMixture, Error};
    ///
    /// let bad = ConvexCombination::new(ConvexMixture::new(0.3)?, ConvexMixture::new(0.5)?, 1.5f64);
    /// assert!(matches!(bad, Err(Error::InvalidParameter { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(first: A, second: B, weight: F) -> Result<Self> {
        if !(weight >= F::zero() && weight <= F::one()) {
            return Err(Error::InvalidParameter {
                name: "combination weight",
                value: to_f64(weight),
                requirement: "in [0, 1]",
            });
        }
        Ok(ConvexCombination {
            first,
            second,
            weight,
            scratch: Scratch::default(),
        })
    }

    /// Returns the weight `λ` of the first operator.
    pub fn weight(&self) -> F {
        self.weight
    }
}

impl<A, B, F> MetaTeacherOperator<F> for ConvexCombination<A, B, F>
where
    F: Real,
    A: MetaTeacherOperator<F>,
    B: MetaTeacherOperator<F>,
{
    fn anchor_weight(&self) -> F {
        self.weight * self.first.anchor_weight()
            + (F::one() - self.weight) * self.second.anchor_weight()
    }

    /// Writes `λ G1 + (1 - λ) G2`.
    ///
    /// # Errors
    ///
    /// Any error of either part, and [`Error::InvalidOperatorOutput`] if a
    /// part returns something that is not a distribution.
    fn combine_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        mut out: ArrayViewMut1<F>,
    ) -> Result<()> {
        self.first
            .combine_into(teachers, students, out.view_mut())?;
        validate_output(&self.first, out.view())?;

        self.scratch.with_one(out.len(), |second| {
            self.second
                .combine_into(teachers, students, second.view_mut())?;
            validate_output(&self.second, second.view())?;

            let lambda = self.weight;
            let rest = F::one() - lambda;
            Zip::from(&mut out)
                .and(&*second)
                .for_each(|q, &r| *q = lambda * *q + rest * r);
            Ok(())
        })
    }

    /// Returns the larger of the two windows, or `None` if either operator
    /// reads the whole history.
    fn history_window(&self) -> Option<usize> {
        let first = self.first.history_window()?;
        let second = self.second.history_window()?;
        Some(first.max(second))
    }

    fn name(&self) -> String {
        format!(
            "{} * {} + {} * {}",
            Compact(self.weight),
            self.first.name(),
            Compact(F::one() - self.weight),
            self.second.name()
        )
    }
}

impl<A, B, F> OperatorProperties<F> for ConvexCombination<A, B, F>
where
    F: Real,
    A: OperatorProperties<F>,
    B: OperatorProperties<F>,
{
    fn anchors_pointwise(&self) -> bool {
        self.first.anchors_pointwise() && self.second.anchors_pointwise()
    }
    fn contraction_factor(&self) -> Option<F> {
        let first = self.first.contraction_factor()?;
        let second = self.second.contraction_factor()?;
        Some(self.weight * first + (F::one() - self.weight) * second)
    }
    fn fixes_teacher(&self) -> bool {
        self.first.fixes_teacher() && self.second.fixes_teacher()
    }
    fn reads_latest_only(&self) -> bool {
        self.first.reads_latest_only() && self.second.reads_latest_only()
    }
}

/// A map applied to an operator's output distribution.
///
/// ```text
/// Temper { τ }           q_i ∝ q_i^(1/τ)                      τ > 0
/// TopK { k }             keep the k largest q_i, zero the rest, renormalize   k >= 1
/// SmoothUniform { ε }    q_i = (1 - ε) q_i + ε / V           0 <= ε <= 1
/// ```
///
/// Top-k breaks ties toward the lower token index.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum PostMap<F: Real = f64> {
    /// Tempering at temperature `τ`, computed in log space.
    Temper {
        /// The temperature `τ > 0`.
        temperature: F,
    },
    /// Truncation to the `k` most probable tokens.
    TopK {
        /// How many tokens to keep, at least 1.
        k: usize,
    },
    /// Mixing with the uniform distribution.
    SmoothUniform {
        /// The weight `ε` of the uniform distribution, in `[0, 1]`.
        epsilon: F,
    },
}

impl<F: Real> PostMap<F> {
    /// Checks the map's parameter.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidTemperature`] for a temperature that is not finite and positive.
    /// - [`Error::InvalidParameter`] for `k = 0` or `ε` outside `[0, 1]`.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Error, PostMap};
    ///
    /// assert!(PostMap::<f64>::TopK { k: 3 }.validate().is_ok());
    /// let empty = PostMap::<f64>::TopK { k: 0 }.validate();
    /// assert!(matches!(empty, Err(Error::InvalidParameter { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn validate(&self) -> Result<()> {
        match *self {
            PostMap::Temper { temperature } => check_temperature(temperature),
            PostMap::TopK { k: 0 } => Err(Error::InvalidParameter {
                name: "top-k size",
                value: 0.0,
                requirement: "at least 1",
            }),
            PostMap::TopK { .. } => Ok(()),
            PostMap::SmoothUniform { epsilon }
                if !(epsilon >= F::zero() && epsilon <= F::one()) =>
            {
                Err(Error::InvalidParameter {
                    name: "uniform smoothing weight",
                    value: to_f64(epsilon),
                    requirement: "in [0, 1]",
                })
            }
            PostMap::SmoothUniform { .. } => Ok(()),
        }
    }

    /// Applies the map in place to a probability vector.
    ///
    /// Cost: `O(V)` time; top-k also copies the vector once to select its threshold.
    ///
    /// # Errors
    ///
    /// - As [`PostMap::validate`].
    /// - [`Error::InvalidInputVector`] if `values` is not a probability vector
    ///   within [`default_sum_tolerance`](crate::default_sum_tolerance),
    ///   wrapping [`Error::Empty`], [`Error::NonFiniteProbability`],
    ///   [`Error::NegativeProbability`] or [`Error::NotNormalized`].
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::PostMap;
    /// use ndarray::array;
    ///
    /// let mut q = array![0.5f64, 0.3, 0.2];
    /// PostMap::TopK { k: 2 }.apply_into(q.view_mut())?;
    /// assert!((q[0] - 0.625).abs() < 1e-15);
    /// assert_eq!(q[2], 0.0);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn apply_into(&self, values: ArrayViewMut1<F>) -> Result<()> {
        self.validate()?;
        check_input_vector("vector to post-map", values.view())?;
        let mut copy = Array1::zeros(values.len());
        self.apply_with(values, &mut copy)
    }

    /// Applies the map with a caller-provided buffer of the same length for top-k.
    fn apply_with(&self, mut values: ArrayViewMut1<F>, buffer: &mut Array1<F>) -> Result<()> {
        self.validate()?;
        match *self {
            PostMap::Temper { temperature } => temper_in_place(values, temperature),
            PostMap::TopK { k } => top_k_in_place(values, k, buffer),
            PostMap::SmoothUniform { epsilon } => {
                let share = epsilon / F::from(values.len()).unwrap_or_else(F::one);
                let keep = F::one() - epsilon;
                values.mapv_inplace(|q| keep * q + share);
            }
        }
        Ok(())
    }
}

/// Keeps the `k` largest entries (lower index first among ties) and renormalizes.
fn top_k_in_place<F: Real>(mut values: ArrayViewMut1<F>, k: usize, buffer: &mut Array1<F>) {
    let len = values.len();
    if k >= len {
        return;
    }
    buffer.assign(&values);
    let sorted = buffer.as_slice_mut().unwrap_or_default();
    let (_, threshold, _) = sorted.select_nth_unstable_by(k - 1, |a, b| {
        b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal)
    });
    let threshold = *threshold;

    let above = values.iter().filter(|&&v| v > threshold).count();
    let mut ties_left = k - above;
    for value in values.iter_mut() {
        if *value > threshold {
            continue;
        }
        if *value == threshold && ties_left > 0 {
            ties_left -= 1;
            continue;
        }
        *value = F::zero();
    }
    let sum = compensated_sum(values.iter().copied());
    values.mapv_inplace(|v| v / sum);
}

/// An operator followed by a [`PostMap`] on its output.
///
/// ```text
/// q = M(G(T; S))
/// ```
///
/// | map | declared anchor weight | pointwise | contraction | fixes `T0` |
/// |---|---|---|---|---|
/// | `Temper { τ }` | `a` if `τ = 1`, else 0 | as `G` if `τ = 1`, else trivially | as `G` if `τ = 1`, else none | only if `τ = 1` |
/// | `TopK { k }` | 0 | trivially | none | no (zeros break positivity) |
/// | `SmoothUniform { ε }` | `(1 - ε) a` | as `G` | as `G` if `ε = 0`, else none | only if `ε = 0` |
///
/// Smoothing keeps anchoring because `q >= (1 - ε) a T0`, but moves the fixed
/// point to `((1 - ε) a T0 + ε u) / (1 - (1 - ε)(1 - a))` for the mixture.
///
/// Cost: `G`'s cost plus `O(V)`; the top-k buffer is kept between calls.
///
/// # Examples
///
/// ```
/// use metadistill::{ConvexMixture, OperatorProperties, PostMap, PostMapped};
///
/// let smoothed = PostMapped::new(ConvexMixture::new(0.5)?, PostMap::SmoothUniform { epsilon: 0.1 })?;
/// assert!(smoothed.anchors_pointwise());
/// assert_eq!(smoothed.contraction_factor(), None);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PostMapped<O, F: Real = f64> {
    inner: O,
    map: PostMap<F>,
    scratch: Scratch<F>,
}

impl<O: MetaTeacherOperator<F>, F: Real> PostMapped<O, F> {
    /// Builds `map ∘ inner`.
    ///
    /// # Errors
    ///
    /// As [`PostMap::validate`].
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{ConvexMixture, Error, PostMap, PostMapped};
    ///
    /// let cold = PostMapped::new(ConvexMixture::new(0.3f64)?, PostMap::Temper { temperature: 0.0 });
    /// assert!(matches!(cold, Err(Error::InvalidTemperature { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(inner: O, map: PostMap<F>) -> Result<Self> {
        map.validate()?;
        Ok(PostMapped {
            inner,
            map,
            scratch: Scratch::default(),
        })
    }

    /// Returns the map applied to the output.
    pub fn map(&self) -> PostMap<F> {
        self.map
    }

    /// Tells whether the map is the identity on every input.
    fn is_identity(&self) -> bool {
        match self.map {
            PostMap::Temper { temperature } => temperature == F::one(),
            PostMap::TopK { .. } => false,
            PostMap::SmoothUniform { epsilon } => epsilon.is_zero(),
        }
    }
}

impl<O: MetaTeacherOperator<F>, F: Real> MetaTeacherOperator<F> for PostMapped<O, F> {
    fn anchor_weight(&self) -> F {
        match self.map {
            PostMap::SmoothUniform { epsilon } => (F::one() - epsilon) * self.inner.anchor_weight(),
            _ if self.is_identity() => self.inner.anchor_weight(),
            _ => F::zero(),
        }
    }

    /// Writes `M(G(T; S))`.
    ///
    /// # Errors
    ///
    /// Any error of the inner operator, and [`Error::InvalidOperatorOutput`]
    /// if it returns something that is not a distribution.
    fn combine_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        mut out: ArrayViewMut1<F>,
    ) -> Result<()> {
        self.inner
            .combine_into(teachers, students, out.view_mut())?;
        validate_output(&self.inner, out.view())?;
        let needs_buffer = usize::from(matches!(self.map, PostMap::TopK { .. }));
        self.scratch.with_one(out.len() * needs_buffer, |buffer| {
            self.map.apply_with(out, buffer)
        })
    }

    /// Returns the inner operator's window.
    fn history_window(&self) -> Option<usize> {
        self.inner.history_window()
    }

    fn name(&self) -> String {
        format!("{:?} after {}", self.map, self.inner.name())
    }
}

impl<O: OperatorProperties<F>, F: Real> OperatorProperties<F> for PostMapped<O, F> {
    fn anchors_pointwise(&self) -> bool {
        match self.map {
            PostMap::SmoothUniform { .. } => self.inner.anchors_pointwise(),
            _ if self.is_identity() => self.inner.anchors_pointwise(),
            _ => true,
        }
    }
    fn contraction_factor(&self) -> Option<F> {
        if self.is_identity() {
            self.inner.contraction_factor()
        } else {
            None
        }
    }
    fn fixes_teacher(&self) -> bool {
        self.is_identity() && self.inner.fixes_teacher()
    }
    fn reads_latest_only(&self) -> bool {
        self.inner.reads_latest_only()
    }
}

/// The `n`-fold iterate of the meta-distillation step with exact students.
///
/// ```text
/// q⁽¹⁾ = G(T; S_0..S_g),   q⁽ⁱ⁺¹⁾ = G(T; S_0..S_g, q⁽¹⁾..q⁽ⁱ⁾),   output q⁽ⁿ⁾
/// ```
///
/// Each intermediate output joins the history as the next student would.
///
/// - Declared anchor weight: `a`, that of `G`; pointwise anchoring holds when
///   it holds for `G`, because the last step is a step of `G`. (For the convex
///   mixture the true weight is `1 - (1 - a)^n`.)
/// - Contraction: `c^n` if `G` reads only the latest student, otherwise `c`
///   (the bound is on the largest divergence over the history).
/// - Fixed point: that of `G`.
/// - Cost: `n` times `G`'s cost; `n - 1` buffers of length `V` are kept
///   between calls.
///
/// # Examples
///
/// ```
/// use metadistill::{ConvexMixture, Iterate, OperatorProperties};
///
/// let twice = Iterate::new(ConvexMixture::new(0.3f64)?, 2)?;
/// assert!((twice.contraction_factor().unwrap() - 0.49).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Iterate<O, F: Real = f64> {
    inner: O,
    steps: usize,
    scratch: Scratch<F>,
}

impl<O: MetaTeacherOperator<F>, F: Real> Iterate<O, F> {
    /// Builds the `steps`-fold iterate of `inner`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `steps` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{ConvexMixture, Error, Iterate};
    ///
    /// let none = Iterate::new(ConvexMixture::new(0.3f64)?, 0);
    /// assert!(matches!(none, Err(Error::InvalidParameter { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(inner: O, steps: usize) -> Result<Self> {
        if steps == 0 {
            return Err(Error::InvalidParameter {
                name: "iterate step count",
                value: 0.0,
                requirement: "at least 1",
            });
        }
        Ok(Iterate {
            inner,
            steps,
            scratch: Scratch::default(),
        })
    }

    /// Returns the number of steps `n`.
    pub fn steps(&self) -> usize {
        self.steps
    }
}

impl<O: MetaTeacherOperator<F>, F: Real> MetaTeacherOperator<F> for Iterate<O, F> {
    fn anchor_weight(&self) -> F {
        self.inner.anchor_weight()
    }

    /// Writes `q⁽ⁿ⁾`.
    ///
    /// # Errors
    ///
    /// Any error of the inner operator, and [`Error::InvalidOperatorOutput`]
    /// if an intermediate output is not a distribution.
    fn combine_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        mut out: ArrayViewMut1<F>,
    ) -> Result<()> {
        let intermediate = self.steps - 1;
        self.scratch.with(intermediate, out.len(), |buffers| {
            for step in 0..buffers.len() {
                let (done, rest) = buffers.split_at_mut(step);
                // `step < buffers.len()`, so `rest` starts with this step's buffer.
                let Some((target, _)) = rest.split_first_mut() else {
                    break;
                };
                let history: Vec<ArrayView1<F>> = students
                    .iter()
                    .cloned()
                    .chain(done.iter().map(|buffer| buffer.view()))
                    .collect();
                self.inner
                    .combine_into(teachers, &history, target.view_mut())?;
                validate_output(&self.inner, target.view())?;
            }
            let history: Vec<ArrayView1<F>> = students
                .iter()
                .cloned()
                .chain(buffers.iter().map(|buffer| buffer.view()))
                .collect();
            self.inner.combine_into(teachers, &history, out.view_mut())
        })
    }

    /// Returns the inner operator's window: later steps read the intermediate
    /// outputs, which are the latest entries of their history.
    fn history_window(&self) -> Option<usize> {
        self.inner.history_window()
    }

    fn name(&self) -> String {
        format!("{}-fold iterate of {}", self.steps, self.inner.name())
    }
}

impl<O: OperatorProperties<F>, F: Real> OperatorProperties<F> for Iterate<O, F> {
    fn anchors_pointwise(&self) -> bool {
        self.inner.anchors_pointwise()
    }
    fn contraction_factor(&self) -> Option<F> {
        let factor = self.inner.contraction_factor()?;
        if self.inner.reads_latest_only() {
            let steps = i32::try_from(self.steps).unwrap_or(i32::MAX);
            Some(factor.powi(steps))
        } else {
            Some(factor)
        }
    }
    fn fixes_teacher(&self) -> bool {
        self.inner.fixes_teacher()
    }
    fn reads_latest_only(&self) -> bool {
        self.inner.reads_latest_only()
    }
}
