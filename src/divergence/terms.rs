//! Per-token terms of the divergences, computed without cancellation.
//!
//! Every divergence here is a sum over tokens. The textbook terms, such as
//! `p ln(p/q)`, cancel catastrophically when `q` is close to `p`: the sum of
//! `p ln(p/q)` over a pair with `q = p(1 + 1e-9)` keeps about two correct
//! digits in `f64`. The functions below rewrite each term as a non-negative
//! quantity computed from the exact difference `q - p` (exact by Sterbenz's
//! lemma when `p/2 <= q <= 2p`) and short series near the point of equality,
//! then add the terms with compensated summation.
//!
//! The slices passed in are valid distributions of equal length; the public
//! functions in the parent module check that.

use crate::real::{Real, constant};

/// How many terms a [`CompensatedSum`] adds before it folds them into its total.
const BLOCK_LEN: u32 = 1024;

/// A running sum with Neumaier's compensation, folded into a second such sum every [`BLOCK_LEN`] terms.
///
/// Neumaier's compensation term is itself summed without compensation, so
/// over `n` terms its own rounding adds up to about `(n ε)²` of the sum: in
/// f32 over 4 million terms that was 6.5e-5 of a softmax normalizer. Summing
/// blocks of 1024 terms and then the block sums keeps `n ε` small at both
/// levels, so the error stays about one rounding of the result plus `ε²`
/// times the sum of the magnitudes of the terms. A block enters the total as
/// its sum and its compensation separately. Rounding `sum + compensation`
/// first would cost one rounding of every block sum, which is far more than
/// the result when the terms cancel, as the normalization defect
/// `Σ (p_i - q_i)` of KL does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CompensatedSum<F> {
    block: NeumaierSum<F>,
    block_len: u32,
    total: NeumaierSum<F>,
}

impl<F: Real> CompensatedSum<F> {
    pub(crate) fn new() -> Self {
        CompensatedSum {
            block: NeumaierSum::new(),
            block_len: 0,
            total: NeumaierSum::new(),
        }
    }

    pub(crate) fn add(&mut self, term: F) {
        self.block.add(term);
        self.block_len += 1;
        if self.block_len == BLOCK_LEN {
            self.block.fold_into(&mut self.total);
            self.block = NeumaierSum::new();
            self.block_len = 0;
        }
    }

    pub(crate) fn value(&self) -> F {
        let mut total = self.total;
        self.block.fold_into(&mut total);
        total.value()
    }
}

/// A running sum with Neumaier's compensation.
#[derive(Debug, Clone, Copy)]
struct NeumaierSum<F> {
    sum: F,
    compensation: F,
}

impl<F: Real> NeumaierSum<F> {
    fn new() -> Self {
        NeumaierSum {
            sum: F::zero(),
            compensation: F::zero(),
        }
    }

    fn add(&mut self, term: F) {
        let total = self.sum + term;
        if self.sum.abs() >= term.abs() {
            self.compensation = self.compensation + ((self.sum - total) + term);
        } else {
            self.compensation = self.compensation + ((term - total) + self.sum);
        }
        self.sum = total;
    }

    /// Adds this sum to `total` as its two parts, so that rounding
    /// `sum + compensation` does not lose what the compensation carries.
    fn fold_into(&self, total: &mut NeumaierSum<F>) {
        total.add(self.sum);
        if self.sum.is_finite() {
            total.add(self.compensation);
        }
    }

    fn value(&self) -> F {
        // An infinite term leaves a NaN compensation behind, so the infinite sum is returned.
        if !self.sum.is_finite() {
            return self.sum;
        }
        self.sum + self.compensation
    }
}

/// Adds up `values` with compensated summation.
pub(crate) fn compensated_sum<F: Real>(values: impl IntoIterator<Item = F>) -> F {
    let mut sum = CompensatedSum::new();
    for value in values {
        sum.add(value);
    }
    sum.value()
}

/// Tells whether `q - p` is exact in floating point (Sterbenz's lemma).
fn within_factor_two<F: Real>(p: F, q: F) -> bool {
    let two = F::one() + F::one();
    q <= two * p && p <= two * q
}

/// Computes `x - ln(1 + x)` for `-0.5 <= x <= 1` to a few ulps.
///
/// ```text
/// u = x / (2 + x),   x - ln(1 + x) = 2u² / (1 - u) - 2u³ (1/3 + u²/5 + u⁴/7 + …)
/// ```
///
/// The series follows from `ln(1 + x) = 2 atanh(u)`; both parts are small
/// next to the leading `2u²`, so nothing cancels. Away from 0 the direct
/// formula loses at most a digit.
fn x_minus_log1p<F: Real>(x: F) -> F {
    let two = constant::<F>(2.0);
    let u = x / (two + x);
    if u.abs() > constant(0.1) {
        return x - x.ln_1p();
    }

    let u2 = u * u;
    let mut power = F::one();
    let mut series = F::zero();
    let mut denominator = constant::<F>(3.0);
    for _ in 0..30 {
        let term = power / denominator;
        series = series + term;
        if term <= F::epsilon() * series {
            break;
        }
        power = power * u2;
        denominator = denominator + two;
    }
    two * u2 / (F::one() - u) - two * u2 * u * series
}

/// Returns the pair `(p φ(q/p), p - q)` of the KL term of one token, where
/// `φ(r) = r - 1 - ln r >= 0`.
///
/// Summing the first parts and the second parts separately gives
/// `Σ p ln(p/q) = Σ p φ(q/p) + Σ (p - q)`. Tokens with `p = 0` contribute
/// `(0, 0)`; `q = 0 < p` gives `+inf`.
pub(crate) fn kl_term<F: Real>(p: F, q: F) -> (F, F) {
    if p.is_zero() {
        return (F::zero(), F::zero());
    }
    if q.is_zero() {
        return (F::infinity(), p);
    }

    let difference = p - q;
    if within_factor_two(p, q) {
        // `q - p` is exact here, so `x` carries one rounding only.
        let x = -difference / p;
        return (p * x_minus_log1p(x), difference);
    }

    let ratio = q / p;
    let phi = if ratio.is_normal() && ratio.is_finite() {
        ratio - F::one() - ratio.ln()
    } else {
        // The ratio under- or overflowed: use logarithms of the exact inputs.
        let log_ratio = q.ln() - p.ln();
        return ((q - p) - p * log_ratio, difference);
    };
    (p * phi, difference)
}

/// Computes `h(δ) = (1 + δ) ln(1 + δ) + (1 - δ) ln(1 - δ)` for `|δ| <= 1`.
///
/// ```text
/// h(δ) = Σ_{k>=1} δ^{2k} / (k (2k - 1)) = δ² + δ⁴/6 + δ⁶/15 + …
/// ```
///
/// All terms of the series are positive, so it is summed directly near 0.
fn jensen_shannon_h<F: Real>(delta: F) -> F {
    let a = delta.abs();
    if a >= F::one() {
        return constant::<F>(2.0) * F::LN_2();
    }
    if a > constant(0.25) {
        return (F::one() + a) * a.ln_1p() + (F::one() - a) * (-a).ln_1p();
    }

    let d2 = delta * delta;
    let mut power = d2;
    let mut sum = F::zero();
    for k in 1..40 {
        let kf = constant::<F>(k as f64);
        let term = power / (kf * (constant::<F>(2.0) * kf - F::one()));
        sum = sum + term;
        if term <= F::epsilon() * sum {
            break;
        }
        power = power * d2;
    }
    sum
}

/// Returns the Jensen-Shannon term of one token,
/// `½ p ln(p/m) + ½ q ln(q/m)` with `m = (p + q)/2`, which equals
/// `(p + q)/4 · h((q - p)/(q + p))`.
pub(crate) fn jensen_shannon_term<F: Real>(p: F, q: F) -> F {
    let sum = p + q;
    if sum.is_zero() {
        return F::zero();
    }
    let delta = (q - p) / sum;
    sum / constant(4.0) * jensen_shannon_h(delta)
}

/// Returns `½ (√p - √q)²`, computed as `½ (p - q)² / (√p + √q)²`.
pub(crate) fn squared_hellinger_term<F: Real>(p: F, q: F) -> F {
    let root_sum = p.sqrt() + q.sqrt();
    if root_sum.is_zero() {
        return F::zero();
    }
    let difference = p - q;
    let half = constant::<F>(0.5);
    half * (difference / root_sum) * (difference / root_sum)
}

/// Returns the Pearson term `(p - q)² / q`: 0 where `p = q = 0`, `+inf` where `q = 0 < p`.
pub(crate) fn chi_squared_term<F: Real>(p: F, q: F) -> F {
    if q.is_zero() {
        return if p.is_zero() {
            F::zero()
        } else {
            F::infinity()
        };
    }
    let difference = p - q;
    difference * (difference / q)
}

/// Returns `ln(p/q)` for `p > 0`, `q >= 0`, accurate when `p` is close to `q`.
pub(crate) fn log_ratio<F: Real>(p: F, q: F) -> F {
    if q.is_zero() {
        return F::infinity();
    }
    if within_factor_two(p, q) {
        ((p - q) / q).ln_1p()
    } else {
        p.ln() - q.ln()
    }
}

/// Computes `g(x) = (1 + x)^c - 1 - c x`, which has the sign of `c (c - 1)` for all `x >= -1`.
///
/// Near `x = 0` it sums the binomial series `Σ_{k>=2} C(c, k) x^k` so that the
/// leading `c (c - 1) x² / 2` is not lost to cancellation.
pub(crate) fn binomial_remainder<F: Real>(x: F, c: F) -> F {
    if x.abs() <= constant(0.25) && (c * x).abs() <= F::one() {
        let mut coefficient_power = c * (c - F::one()) / constant(2.0) * x * x;
        let mut sum = F::zero();
        for k in 2..80 {
            sum = sum + coefficient_power;
            if coefficient_power.abs() <= F::epsilon() * sum.abs() {
                break;
            }
            let kf = constant::<F>(k as f64);
            coefficient_power = coefficient_power * (c - kf) / (kf + F::one()) * x;
        }
        return sum;
    }
    (c * x.ln_1p()).exp_m1() - c * x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_minus_log1p_matches_series_at_tiny_x() {
        // x - ln(1 + x) = x²/2 - x³/3 + … ; at x = 1e-8 the cubic term is 1e-8 relative.
        let x = 1e-8_f64;
        let expected = x * x / 2.0 - x * x * x / 3.0;
        let got = x_minus_log1p(x);
        assert!(
            ((got - expected) / expected).abs() < 1e-15,
            "{got} vs {expected}"
        );
    }

    #[test]
    fn x_minus_log1p_is_continuous_at_switch() {
        // u = 0.1 corresponds to x = 2/9; both branches must agree there.
        let x = 2.0_f64 / 9.0;
        let below = x_minus_log1p(x * (1.0 - 1e-12));
        let above = x_minus_log1p(x * (1.0 + 1e-12));
        assert!(((below - above) / below).abs() < 1e-11);
    }

    #[test]
    fn jensen_shannon_h_branches_agree() {
        let series = jensen_shannon_h(0.25_f64);
        let direct = 1.25_f64 * 1.25_f64.ln() + 0.75 * 0.75_f64.ln();
        assert!(((series - direct) / direct).abs() < 1e-14);
        assert!((jensen_shannon_h(1.0_f64) - 2.0 * std::f64::consts::LN_2).abs() < 1e-15);
    }

    #[test]
    fn compensated_sum_recovers_small_terms() {
        let total = compensated_sum([1.0_f64, 1e-16, 1e-16, -1.0]);
        assert!((total - 2e-16).abs() < 1e-30);
    }

    #[test]
    fn compensated_sum_accurate_over_millions() {
        // 2 million pairs (1, e^-1): plain Neumaier summation in f32 lost 6.5e-5
        // of this sum, because its compensation term drifted.
        let term = (-1.0_f32).exp();
        let pairs = 2_000_000;
        let total = compensated_sum((0..pairs).flat_map(|_| [1.0_f32, term]));
        let exact = f64::from(pairs) * (1.0 + f64::from(term));
        let error = (f64::from(total) - exact).abs() / exact;
        assert!(error <= f64::from(f32::EPSILON), "relative error {error}");
    }

    #[test]
    fn compensated_sum_keeps_infinity_across_blocks() {
        let values = (0..3000).map(|i| if i == 10 { f64::INFINITY } else { 1.0 });
        assert_eq!(compensated_sum(values), f64::INFINITY);
    }

    #[test]
    fn compensated_sum_keeps_cancelling_blocks_exact() {
        // Terms k · 2^-60 with integer k are exact in f64 and their sum is known
        // exactly. The second half cancels the first up to small integers, so
        // the result is about 1e-9 of each block's sum.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state >> 11
        };
        let big: Vec<i64> = (0..3000)
            .map(|_| (next() >> 3) as i64 - (1 << 49))
            .collect();
        let small: Vec<i64> = (0..3000)
            .map(|_| (next() >> 43) as i64 - (1 << 9))
            .collect();
        let scale = (-60.0_f64).exp2();
        let terms: Vec<f64> = big
            .iter()
            .map(|&k| k as f64 * scale)
            .chain(
                big.iter()
                    .zip(&small)
                    .map(|(&k, &s)| (s - k) as f64 * scale),
            )
            .collect();
        let exact: i64 = small.iter().sum();
        let expected = exact as f64 * scale;
        let got = compensated_sum(terms);
        assert!(
            (got - expected).abs() <= expected.abs() * f64::EPSILON,
            "{got:e} vs {expected:e}"
        );
    }

    #[test]
    fn compensated_sum_keeps_infinity() {
        assert_eq!(
            compensated_sum([0.5_f64, f64::INFINITY, 0.25]),
            f64::INFINITY
        );
    }

    /// Converts an `f64` literal to `F`.
    fn c<F: Real>(value: f64) -> F {
        F::from(value).unwrap_or_else(F::nan)
    }

    /// Checks `x - ln(1 + x)` at `x = 1e-3` against its alternating series summed in f64.
    ///
    /// The series form keeps every digit, so the result is within 4 ε of the type.
    fn x_minus_log1p_matches_series<F: Real>() {
        let x = 1e-3_f64;
        let expected: f64 = (2..20)
            .map(|k| {
                let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
                sign * x.powi(k) / f64::from(k)
            })
            .sum();
        let got = x_minus_log1p(c::<F>(x)).to_f64().unwrap_or(f64::NAN);
        // The input 1e-3 itself rounds by ε/2 in F, which moves x² by ε.
        let epsilon = F::epsilon().to_f64().unwrap_or(f64::NAN);
        assert!(
            ((got - expected) / expected).abs() < 4.0 * epsilon,
            "{got} vs {expected}"
        );
    }

    #[test]
    fn x_minus_log1p_matches_series_f32() {
        x_minus_log1p_matches_series::<f32>();
    }

    #[test]
    fn x_minus_log1p_matches_series_f64() {
        x_minus_log1p_matches_series::<f64>();
    }

    /// Checks that the two branches of `x_minus_log1p` meet at `x = 2/9`.
    ///
    /// Moving `x` by 16 ε either way changes `x - ln(1 + x)` (about `x²/2`) by
    /// about 2 · 2 · 16 ε relative; 256 ε leaves room for the rounding of each branch.
    fn x_minus_log1p_continuous_at_switch<F: Real>() {
        let x = c::<F>(2.0) / c(9.0);
        let step = c::<F>(16.0) * F::epsilon();
        let below = x_minus_log1p(x * (F::one() - step));
        let above = x_minus_log1p(x * (F::one() + step));
        assert!(((below - above) / below).abs() < c::<F>(256.0) * F::epsilon());
    }

    #[test]
    fn x_minus_log1p_continuous_at_switch_f32() {
        x_minus_log1p_continuous_at_switch::<f32>();
    }

    #[test]
    fn x_minus_log1p_continuous_at_switch_f64() {
        x_minus_log1p_continuous_at_switch::<f64>();
    }

    /// Checks the series branch of `h` against the direct formula, and `h(1) = 2 ln 2`.
    ///
    /// The direct formula at δ = 0.25 has no cancellation: 45 ε (1e-14 in f64)
    /// covers two logarithms, two products and a sum.
    fn jensen_shannon_h_agrees<F: Real>() {
        let quarter = c::<F>(0.25);
        let (plus, minus) = (F::one() + quarter, F::one() - quarter);
        let series = jensen_shannon_h(quarter);
        let direct = plus * plus.ln() + minus * minus.ln();
        assert!(((series - direct) / direct).abs() < c::<F>(45.0) * F::epsilon());
        let two_ln_two = c::<F>(2.0) * F::LN_2();
        assert!((jensen_shannon_h(F::one()) - two_ln_two).abs() < c::<F>(4.5) * F::epsilon());
    }

    #[test]
    fn jensen_shannon_h_agrees_f32() {
        jensen_shannon_h_agrees::<f32>();
    }

    #[test]
    fn jensen_shannon_h_agrees_f64() {
        jensen_shannon_h_agrees::<f64>();
    }

    /// Checks that two terms below half an ulp of 1 survive `1 + δ + δ - 1`.
    fn compensated_sum_keeps_small_terms<F: Real>() {
        let delta = F::epsilon() / c(2.25);
        let total = compensated_sum([F::one(), delta, delta, -F::one()]);
        // Every partial sum and its error are exact, so the result is 2 δ.
        assert_eq!(total, delta + delta);
        let with_infinity = compensated_sum([c(0.5), F::infinity(), c(0.25)]);
        assert_eq!(with_infinity, F::infinity());
    }

    #[test]
    fn compensated_sum_keeps_small_terms_f32() {
        compensated_sum_keeps_small_terms::<f32>();
    }

    #[test]
    fn compensated_sum_keeps_small_terms_f64() {
        compensated_sum_keeps_small_terms::<f64>();
    }

    /// Checks the series branch of the binomial remainder against the direct formula at x = 0.2.
    ///
    /// The direct form cancels about one digit there: 45 ε (1e-14 in f64).
    fn binomial_remainder_agrees<F: Real>() {
        let (exponent, x) = (c::<F>(-1.5), c::<F>(0.2));
        let series = binomial_remainder(x, exponent);
        let direct = (F::one() + x).powf(exponent) - F::one() - exponent * x;
        assert!(((series - direct) / direct).abs() < c::<F>(45.0) * F::epsilon());
    }

    #[test]
    fn binomial_remainder_agrees_f32() {
        binomial_remainder_agrees::<f32>();
    }

    #[test]
    fn binomial_remainder_agrees_f64() {
        binomial_remainder_agrees::<f64>();
    }

    #[test]
    fn binomial_remainder_branches_agree() {
        let c = -1.5_f64;
        let x = 0.2_f64;
        let series = binomial_remainder(x, c);
        let direct = (1.0 + x).powf(c) - 1.0 - c * x;
        assert!(((series - direct) / direct).abs() < 1e-14);
    }
}
