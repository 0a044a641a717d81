//! The guarantees an operator states: pointwise anchoring, contraction and its fixed point.
//!
//! [`OperatorProperties`] is implemented for every built-in operator here and
//! for the combinators next to their definitions, which derive their
//! guarantees from those of their parts.

use crate::operator::{
    ConvexMixture, GeneralizedMixture, HistoryWeights, InformationProjection, IterativeProjection,
    MetaTeacherOperator, TemperedMixture,
};
use crate::real::Real;

/// The guarantees of a meta-teacher operator, stated so that combinators can derive theirs.
///
/// The guarantees refer to one base teacher `T0`:
///
/// ```text
/// anchors_pointwise      a*(G(T0; S); T0) >= anchor_weight()     for every history S
/// contraction_factor c   KL(T0 ‖ G(T0; S_0..S_g)) <= c max_j KL(T0 ‖ S_j)
///                        over the students G reads
/// fixes_teacher          G(T0; T0, …, T0) = T0
/// reads_latest_only      G(T0; S_0..S_g) depends on S_g alone
/// ```
///
/// [`Iterate`](crate::Iterate) uses the last one: the `n`-fold iterate of an
/// operator that reads only `S_g` contracts by `c^n`, one that reads the
/// history only by `c`.
///
/// # Examples
///
/// ```
/// use metadistill::{ConvexCombination, ConvexMixture, InformationProjection, OperatorProperties};
///
/// let mixture = ConvexMixture::new(0.5)?;
/// let pool = InformationProjection::geometric(0.3)?;
/// let blend = ConvexCombination::new(mixture, pool, 0.5)?;
/// assert!(!blend.anchors_pointwise()); // the geometric pool does not anchor pointwise
/// assert_eq!(blend.contraction_factor(), Some(0.6));
/// assert!(blend.fixes_teacher());
/// # Ok::<(), metadistill::Error>(())
/// ```
pub trait OperatorProperties<F: Real = f64>: MetaTeacherOperator<F> {
    /// Tells whether `a*(q; T0) >= anchor_weight()` holds on every input (Axiom 3, checkable form).
    fn anchors_pointwise(&self) -> bool;

    /// Returns the proven contraction factor toward `T0`, or `None` if none is proven.
    fn contraction_factor(&self) -> Option<F>;

    /// Tells whether `T0` is a fixed point.
    fn fixes_teacher(&self) -> bool;

    /// Tells whether the operator reads only the latest student `S_g`.
    fn reads_latest_only(&self) -> bool;
}

impl<F: Real> OperatorProperties<F> for ConvexMixture<F> {
    fn anchors_pointwise(&self) -> bool {
        true
    }
    fn contraction_factor(&self) -> Option<F> {
        Some(F::one() - self.anchor())
    }
    fn fixes_teacher(&self) -> bool {
        true
    }
    fn reads_latest_only(&self) -> bool {
        true
    }
}

/// Tells whether all the teacher weight sits on `T0`, so the fixed point is `T0` itself.
///
/// [`Weights`](crate::Weights) accepts sums within rounding of 1, so `w_0 = 1`
/// can come with tiny positive weights on other teachers. Those weights must be
/// 0 as well: a power mean of order <= 0 is 0 wherever a point of any positive
/// weight is 0, however small the weight.
fn teacher_weight_on_first<F: Real>(weighting: &GeneralizedMixture<F>) -> bool {
    match weighting.teacher_weights().as_slice().split_first() {
        Some((&first, rest)) => first >= F::one() && rest.iter().all(|weight| weight.is_zero()),
        None => false,
    }
}

impl<F: Real> OperatorProperties<F> for GeneralizedMixture<F> {
    fn anchors_pointwise(&self) -> bool {
        true
    }
    /// `1 - a` when all the teacher weight is on `T0`; with several teachers the
    /// contraction is toward their mixture instead.
    fn contraction_factor(&self) -> Option<F> {
        teacher_weight_on_first(self).then(|| F::one() - self.anchor())
    }
    fn fixes_teacher(&self) -> bool {
        teacher_weight_on_first(self)
    }
    fn reads_latest_only(&self) -> bool {
        matches!(self.history(), HistoryWeights::Latest)
    }
}

impl<F: Real> OperatorProperties<F> for InformationProjection<F> {
    /// `true` for order 1 (the mixture), for `a w_0 = 1` (the output is `T0`), and for
    /// orders `b > 1` with the latest student only when the pooled weights allow it.
    ///
    /// With pooled weights `λ_k` (`λ_0 = a w_0` on `T0`) and `b > 1`, Minkowski's
    /// inequality gives `M_b(i) >= λ_0^(1/b) T0_i` and `Σ_i M_b(i) <= Σ_k λ_k^(1/b)`:
    ///
    /// ```text
    /// a*(q; T0) >= λ_0^(1/b) / Σ_k λ_k^(1/b)
    /// ```
    ///
    /// Points with nearly disjoint supports approach this bound, so anchoring
    /// is met exactly when it is at least `λ_0`. For one teacher and the latest
    /// student that means `a <= 1/2`. For `b < 1` a student with `S_i -> 0`
    /// pushes `a*` down to `λ_0^(1/b) < λ_0` (`0 < b < 1`) or to 0 (`b <= 0`).
    /// Other history schemes change the student weights with the history, so no
    /// order other than 1 is claimed for them.
    fn anchors_pointwise(&self) -> bool {
        let order = self.projection().order();
        let anchor = self.anchor_weight();
        // a w_0 = 1 makes the output T0 only if no other teacher has weight: a
        // power mean of order <= 0 is 0 wherever a point of any weight is 0.
        if order == F::one() || (anchor >= F::one() && teacher_weight_on_first(self.weighting())) {
            return true;
        }
        if order < F::one() || !self.weighting().reads_latest_only() {
            return false;
        }
        let weighting = self.weighting();
        let exponent = F::one() / order;
        let a = weighting.anchor();
        let teachers = weighting
            .teacher_weights()
            .as_slice()
            .iter()
            .fold(F::zero(), |sum, &w| sum + (a * w).powf(exponent));
        let spread = teachers + (F::one() - a).powf(exponent);
        anchor.powf(exponent) >= anchor * spread
    }
    /// `1 - a` for orders `0 <= b <= 1` with all teacher weight on `T0`.
    ///
    /// For these orders the power mean lies between the geometric and the
    /// arithmetic mean, `M_0 <= M_b <= M_1`, so `Z = Σ_i M_b(i) <= 1` and
    ///
    /// ```text
    /// KL(T0 ‖ M_b / Z) = Σ_i T0_i ln(T0_i / M_b(i)) + ln Z
    ///                  <= Σ_i T0_i ln(T0_i / M_0(i)) = (1 - a) Σ_j v_j KL(T0 ‖ S_{g-j})
    /// ```
    ///
    /// No factor is proven for other orders: chi-squared (`b = 2`) and `b = -1`
    /// exceed `1 - a` on some inputs.
    fn contraction_factor(&self) -> Option<F> {
        let order = self.projection().order();
        let proven = order >= F::zero() && order <= F::one();
        (proven && teacher_weight_on_first(self.weighting()))
            .then(|| F::one() - self.weighting().anchor())
    }
    fn fixes_teacher(&self) -> bool {
        teacher_weight_on_first(self.weighting())
    }
    fn reads_latest_only(&self) -> bool {
        self.weighting().reads_latest_only()
    }
}

impl<F: Real> OperatorProperties<F> for IterativeProjection<F> {
    fn anchors_pointwise(&self) -> bool {
        false
    }
    fn contraction_factor(&self) -> Option<F> {
        None
    }
    fn fixes_teacher(&self) -> bool {
        teacher_weight_on_first(self.weighting())
    }
    fn reads_latest_only(&self) -> bool {
        self.weighting().reads_latest_only()
    }
}

impl<F: Real> OperatorProperties<F> for TemperedMixture<F> {
    /// `true` trivially: the declared anchor weight is 0.
    fn anchors_pointwise(&self) -> bool {
        true
    }
    fn contraction_factor(&self) -> Option<F> {
        (self.temperature() == F::one()).then(|| F::one() - self.anchor())
    }
    fn fixes_teacher(&self) -> bool {
        self.temperature() == F::one()
    }
    fn reads_latest_only(&self) -> bool {
        true
    }
}
