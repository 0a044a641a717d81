//! Lane-wise arithmetic for the fused kernels: logarithm, exponential and compensated sums.
//!
//! Every function here works on a fixed-size array of `LANES` values with
//! straight-line code: no branches that depend on the data, only selects. The
//! compiler turns each loop over the lanes into vector instructions of the
//! target the dispatcher picked at run time (SSE, AVX2 or AVX-512 on x86-64,
//! NEON on aarch64), so the same source serves every width. All functions are
//! `#[inline(always)]` so that they are compiled inside the dispatched clone
//! with its target features.
//!
//! The inputs of the logarithms are positive normal numbers; callers check
//! that before calling and fall back to the scalar terms otherwise.

// Lane loops index several arrays by the same lane on purpose: that is the
// form the compiler turns into vector instructions.
#![allow(clippy::needless_range_loop)]

use crate::real::Real;

/// Number of values processed together: two AVX-512 registers of `f32`, four of `f64`.
///
/// On a 2-core AVX-512 Xeon, 32 measured faster than 16 (KL in cache 3.0
/// against 4.5 ns per entry). 8 was slower (8.7 ns) and 64 no faster.
pub(crate) const LANES: usize = 32;

/// A block of `LANES` values.
pub(crate) type Lanes<F> = [F; LANES];

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A float type the fused kernels are compiled for: `f32` or `f64`.
///
/// The trait is sealed; it carries the bit-level exponent handling and the
/// series coefficients each precision needs. There is nothing to implement.
pub trait KernelFloat: Real + sealed::Sealed {
    /// High part of `ln 2`, with trailing zero bits so that `n · LN2_HI` is exact.
    #[doc(hidden)]
    const LN2_HI: Self;
    /// `ln 2 - LN2_HI`.
    #[doc(hidden)]
    const LN2_LO: Self;
    /// Coefficients of `S(t)` in `atanh(v) = v + v³ S(v²)` on `t = v² <= 0.0295`, fitted for this precision.
    #[doc(hidden)]
    const ATANH_TAIL: &'static [Self];
    /// Coefficients of `H(t)` in `h(δ) = δ² H(δ²)`, the Jensen-Shannon kernel, on `t <= 0.0295`.
    #[doc(hidden)]
    const JS_SERIES: &'static [Self];
    /// Coefficients of a polynomial fitted to `e^r` on `|r| <= ln 2 / 2`, from degree 0.
    #[doc(hidden)]
    const EXP_SERIES: &'static [Self];
    /// Coefficients of `P(t)` in `ψ(t) = e^(-t) - 1 + t = t² P(t)`, fitted on `|t| <= 0.25`.
    #[doc(hidden)]
    const PSI_SERIES: &'static [Self];
    /// Arguments below this make `exp` return 0 (the result would be subnormal).
    #[doc(hidden)]
    const EXP_MIN_ARG: Self;

    /// Splits a positive normal `x` into `(e, m)` with `x = 2^e m` and `m` in `[√½, √2)`.
    #[doc(hidden)]
    fn split_exponent(x: Self) -> (Self, Self);

    /// Splits a positive normal `x` into `(e, m)` with `x = 2^e m` and `m` in `[1, 2)`.
    #[doc(hidden)]
    fn split_exponent_raw(x: Self) -> (Self, Self);

    /// Rounds `y` to the nearest integer `n` and returns `(n, 2^n)`, for `|n| <= 126`
    /// (`f32`) or `|n| <= 1022` (`f64`).
    #[doc(hidden)]
    fn round_with_power(y: Self) -> (Self, Self);

    /// Splits positive normal `p` and `q` into `(k, m_p, m_q)` with
    /// `q/p = 2^k m_q/m_p`, `k` an integer, `m_p` in `[1, 2)` and `m_q/m_p`
    /// in `[0.666, 1.502]`, using integer operations only.
    ///
    /// The difference of the bit patterns of `q` and `p` is `2^52` (`f64`)
    /// or `2^23` (`f32`) times `log2(q/p)` up to 0.0861: the bit pattern is
    /// piecewise linear in the logarithm. Rounding it gives `k`. Then `m_q`
    /// is `q` scaled by `2^-(e_p + k)`, formed in its bits, so it is exact
    /// and stays a normal number whatever the magnitudes of `p` and `q`. With
    /// `k = 0`, `m_p` and `m_q` are `p` and `q` scaled by the same power of two.
    #[doc(hidden)]
    fn split_ratio(p: Self, q: Self) -> (Self, Self, Self);
}

const SQRT_2_F64: f64 = std::f64::consts::SQRT_2;

impl KernelFloat for f64 {
    #[inline(always)]
    fn split_ratio(p: f64, q: f64) -> (f64, f64, f64) {
        const MANTISSA: u64 = 0x000f_ffff_ffff_ffff;
        const EXPONENT: u64 = 0x7ff0_0000_0000_0000;
        const ONE: u64 = 0x3ff0_0000_0000_0000;
        // Half a binade rounds to nearest, and 2048 binades keep the shift
        // of a negative difference positive.
        const OFFSET: u64 = 2048;
        const BIAS: u64 = (1 << 51) + (OFFSET << 52);
        let (bits_p, bits_q) = (p.to_bits(), q.to_bits());
        let shifted = bits_q.wrapping_sub(bits_p).wrapping_add(BIAS) >> 52;
        let mantissa_p = f64::from_bits((bits_p & MANTISSA) | ONE);
        let mantissa_q = f64::from_bits(
            bits_q
                .wrapping_sub(bits_p & EXPONENT)
                .wrapping_sub(shifted << 52)
                .wrapping_add(ONE.wrapping_add(OFFSET << 52)),
        );
        // The integer `shifted`, placed in the mantissa of 2^52, converts exactly.
        let k = f64::from_bits(0x4330_0000_0000_0000 | shifted)
            - (4_503_599_627_370_496.0 + OFFSET as f64);
        (k, mantissa_p, mantissa_q)
    }

    // 0.6931471803691238 and 1.9082149292705877e-10, exactly.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // Fitted on t in [0, 0.0405] by scripts/kernel_coefficients.py (degree 7,
    // relative error 5.68e-17).
    const ATANH_TAIL: &'static [f64] = &[
        0.3333333333333333,
        0.20000000000004262,
        0.1428571428350731,
        0.1111111154582057,
        0.09090867123200161,
        0.07694501062582865,
        0.06603540041034682,
        0.06814555360930634,
    ];
    // Fitted on t in [0, 0.0295] by scripts/kernel_coefficients.py (degree 6,
    // relative error 4.32e-17).
    const JS_SERIES: &'static [f64] = &[
        1.0,
        0.16666666666659538,
        0.06666666670528391,
        0.035714277878886314,
        0.02222297788022198,
        0.015114233384888076,
        0.011893477863020648,
    ];
    // Fitted on |r| <= ln(2)/2 by scripts/kernel_coefficients.py (degree 11,
    // relative error 1.67e-17).
    const EXP_SERIES: &'static [f64] = &[
        1.0,
        1.0,
        0.5000000000000019,
        0.1666666666666668,
        0.04166666666648809,
        0.008333333333319601,
        0.0013888888952315874,
        0.0001984126989004796,
        2.4801485481152372e-05,
        2.755724091767456e-06,
        2.7632640074237224e-07,
        2.5110037940619665e-08,
    ];
    // Fitted on |t| <= 0.25 by scripts/kernel_coefficients.py (degree 9,
    // relative error 1.85e-17).
    const PSI_SERIES: &'static [f64] = &[
        0.5,
        -0.16666666666666666,
        0.041666666666663556,
        -0.008333333333333094,
        0.0013888888892874063,
        -0.00019841269844335027,
        2.48015694494292e-05,
        -2.755730549290389e-06,
        2.7589957366249805e-07,
        -2.507721278058295e-08,
    ];
    const EXP_MIN_ARG: f64 = -708.0;

    #[inline(always)]
    fn split_exponent(x: f64) -> (f64, f64) {
        let (exponent, mantissa) = Self::split_exponent_raw(x);
        let high = mantissa >= SQRT_2_F64;
        let mantissa = if high { mantissa * 0.5 } else { mantissa };
        let exponent = if high { exponent + 1.0 } else { exponent };
        (exponent, mantissa)
    }

    #[inline(always)]
    fn split_exponent_raw(x: f64) -> (f64, f64) {
        let bits = x.to_bits();
        let mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
        // The biased exponent, placed in the mantissa of 2^52, converts to a float exactly.
        let exponent =
            f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52)) - 4_503_599_627_371_519.0;
        (exponent, mantissa)
    }

    #[inline(always)]
    fn round_with_power(y: f64) -> (f64, f64) {
        // Adding 1.5 · 2^52 rounds to an integer and leaves it in the low mantissa bits.
        const SHIFTER: f64 = 6_755_399_441_055_744.0;
        let shifted = y + SHIFTER;
        let rounded = shifted - SHIFTER;
        let power = f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52);
        (rounded, power)
    }
}

impl KernelFloat for f32 {
    #[inline(always)]
    fn split_ratio(p: f32, q: f32) -> (f32, f32, f32) {
        const MANTISSA: u32 = 0x007f_ffff;
        const EXPONENT: u32 = 0x7f80_0000;
        const ONE: u32 = 0x3f80_0000;
        // Half a binade rounds to nearest, and 256 binades keep the shift
        // of a negative difference positive.
        const OFFSET: u32 = 256;
        const BIAS: u32 = (1 << 22) + (OFFSET << 23);
        let (bits_p, bits_q) = (p.to_bits(), q.to_bits());
        let shifted = bits_q.wrapping_sub(bits_p).wrapping_add(BIAS) >> 23;
        let mantissa_p = f32::from_bits((bits_p & MANTISSA) | ONE);
        let mantissa_q = f32::from_bits(
            bits_q
                .wrapping_sub(bits_p & EXPONENT)
                .wrapping_sub(shifted << 23)
                .wrapping_add(ONE.wrapping_add(OFFSET << 23)),
        );
        // The integer `shifted`, placed in the mantissa of 2^23, converts exactly.
        let k = f32::from_bits(0x4b00_0000 | shifted) - (8_388_608.0 + OFFSET as f32);
        (k, mantissa_p, mantissa_q)
    }

    const LN2_HI: f32 = 6.931_457_5e-1;
    const LN2_LO: f32 = 1.428_606_5e-6;
    // Fitted on t in [0, 0.0405] by scripts/kernel_coefficients.py (degree 3,
    // relative error 4.19e-8).
    const ATANH_TAIL: &'static [f32] = &[0.33333334, 0.20000161, 0.1426587, 0.1188367];
    // Fitted on t in [0, 0.0295] by scripts/kernel_coefficients.py (degree 2,
    // relative error 5.9e-8).
    const JS_SERIES: &'static [f32] = &[1.0, 0.16664872, 0.06828034];
    // Fitted on |r| <= ln(2)/2 by scripts/kernel_coefficients.py (degree 6,
    // relative error 2.03e-8).
    const EXP_SERIES: &'static [f32] = &[
        1.0,
        1.0,
        0.5,
        0.16666415,
        0.04166635,
        0.008375127,
        0.0013941108,
    ];
    // Fitted on |t| <= 0.25 by scripts/kernel_coefficients.py (degree 5,
    // relative error 3.51e-9).
    const PSI_SERIES: &'static [f32] = &[
        0.5,
        -0.16666667,
        0.041666612,
        -0.008333327,
        0.0013912158,
        -0.00019867122,
    ];
    const EXP_MIN_ARG: f32 = -87.0;

    #[inline(always)]
    fn split_exponent(x: f32) -> (f32, f32) {
        let (exponent, mantissa) = Self::split_exponent_raw(x);
        let high = mantissa >= std::f32::consts::SQRT_2;
        let mantissa = if high { mantissa * 0.5 } else { mantissa };
        let exponent = if high { exponent + 1.0 } else { exponent };
        (exponent, mantissa)
    }

    #[inline(always)]
    fn split_exponent_raw(x: f32) -> (f32, f32) {
        let bits = x.to_bits();
        let mantissa = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
        let exponent = ((bits >> 23) as i32 - 127) as f32;
        (exponent, mantissa)
    }

    #[inline(always)]
    fn round_with_power(y: f32) -> (f32, f32) {
        // Adding 1.5 · 2^23 rounds to an integer and leaves it in the low mantissa bits.
        const SHIFTER: f32 = 12_582_912.0;
        let shifted = y + SHIFTER;
        let rounded = shifted - SHIFTER;
        let power = f32::from_bits(shifted.to_bits().wrapping_add(127) << 23);
        (rounded, power)
    }
}

/// Computes `a · b + c`, fused into one rounding when `FMA` is set.
///
/// `FMA` is a compile-time flag because `mul_add` without hardware support
/// is a slow library call. The dispatcher sets it only in clones whose target
/// has fused multiply-add.
#[inline(always)]
pub(crate) fn mul_add<F: KernelFloat, const FMA: bool>(a: F, b: F, c: F) -> F {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Evaluates `Σ_k coefficients[k] · t^k` by Horner's rule.
#[inline(always)]
pub(crate) fn polynomial<F: KernelFloat, const FMA: bool>(coefficients: &[F], t: F) -> F {
    scaled_polynomial::<F, FMA>(coefficients, F::one(), t)
}

/// Evaluates `Σ_k scale · coefficients[k] · t^k` by Horner's rule on the
/// scaled coefficients, which the compiler folds for constant ones.
///
/// For a power-of-two `scale` the result is exactly `scale` times that of
/// [`polynomial`], barring overflow and underflow.
#[inline(always)]
fn scaled_polynomial<F: KernelFloat, const FMA: bool>(coefficients: &[F], scale: F, t: F) -> F {
    // Starting from the last coefficient rather than from 0 saves one
    // multiply-add: the compiler may not fold `0 · t`, which is NaN for infinite t.
    let mut rest = coefficients
        .iter()
        .rev()
        .map(|&coefficient| scale * coefficient);
    let mut value = rest.next().unwrap_or_else(F::zero);
    for coefficient in rest {
        value = mul_add::<F, FMA>(value, t, coefficient);
    }
    value
}

/// Computes `2 v³ S(v²) = 2 atanh(v) - 2v` for `|v| <= 0.1716` (that is, `3 - 2√2`).
///
/// It evaluates `v · t · 2S(t)`, with the doubled coefficients folded at
/// compile time, so callers can form `2v + tail` as one multiply-add. The
/// result is the same as that of `(v + v) · t · S(t)`: doubling is exact.
#[inline(always)]
pub(crate) fn atanh_tail<F: KernelFloat, const FMA: bool>(v: F) -> F {
    let t = v * v;
    let two = F::one() + F::one();
    v * t * scaled_polynomial::<F, FMA>(F::ATANH_TAIL, two, t)
}

/// Computes `ln x` for a positive normal `x` to about one ulp.
///
/// ```text
/// x = 2^e m,  m ∈ [√½, √2),  w = (m - 1)/(m + 1),  ln x = e ln 2 + 2w + 2w³ S(w²)
/// ```
///
/// `m - 1` is exact, so the result keeps its relative accuracy near `x = 1`.
#[inline(always)]
pub(crate) fn ln<F: KernelFloat, const FMA: bool>(x: F) -> F {
    let (exponent, mantissa) = F::split_exponent(x);
    let w = (mantissa - F::one()) / (mantissa + F::one());
    let low = mul_add::<F, FMA>(exponent, F::LN2_LO, atanh_tail::<F, FMA>(w));
    let two = F::one() + F::one();
    mul_add::<F, FMA>(exponent, F::LN2_HI, mul_add::<F, FMA>(w, two, low))
}

/// Computes `e^x` for `x <= 0`, returning 0 below `EXP_MIN_ARG` (including `-inf`).
///
/// ```text
/// n = round(x / ln 2),  r = x - n ln 2,  e^x = 2^n Σ_k r^k / k!
/// ```
#[inline(always)]
pub(crate) fn exp_nonpositive<F: KernelFloat, const FMA: bool>(x: F) -> F {
    let clamped = if x >= F::EXP_MIN_ARG {
        x
    } else {
        F::EXP_MIN_ARG
    };
    let (n, power) = F::round_with_power(clamped * F::LOG2_E());
    let r = (clamped - n * F::LN2_HI) - n * F::LN2_LO;
    let value = polynomial::<F, FMA>(F::EXP_SERIES, r) * power;
    if x >= F::EXP_MIN_ARG {
        value
    } else {
        F::zero()
    }
}

/// Running sums in `SUM_LANES` lanes with the rounding error of each addition kept (Knuth's TwoSum).
///
/// The error of the final value is about one rounding of the result plus
/// `ε²` times the sum of the magnitudes, as with Neumaier's scalar sum.
///
/// A block of `LANES` terms is folded into `SUM_LANES` lanes on the way in,
/// so the sums take half the registers a block does. With 32 lanes per
/// sum, the KL kernel's two sums took 20 of the 32 AVX-512 registers and its
/// loop made 34 stack accesses per block, against 17 with 16 lanes.
///
/// Terms known to share one sign can go through [`LaneSum::add_same_sign`],
/// which adds `BLOCK` blocks with plain additions before one compensated
/// addition. For terms of one sign that costs a relative error of at most
/// about `(BLOCK · LANES / SUM_LANES) · ε = 16 ε` and saves most of the work.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LaneSum<F> {
    sum: [F; SUM_LANES],
    compensation: [F; SUM_LANES],
    pending: [F; SUM_LANES],
    pending_blocks: usize,
}

/// Lanes of a [`LaneSum`]: two AVX-512 registers of `f64`, one of `f32`.
const SUM_LANES: usize = LANES / 2;

/// Blocks added plainly before a compensated addition in [`LaneSum::add_same_sign`].
const BLOCK: usize = 8;

/// Returns `(a + b, e)` with `a + b = (a + b rounded) + e` exactly (Knuth's TwoSum).
#[inline(always)]
fn two_sum<F: KernelFloat>(a: F, b: F) -> (F, F) {
    let total = a + b;
    let b_virtual = total - a;
    (total, (a - (total - b_virtual)) + (b - b_virtual))
}

impl<F: KernelFloat> LaneSum<F> {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        LaneSum {
            sum: [F::zero(); SUM_LANES],
            compensation: [F::zero(); SUM_LANES],
            pending: [F::zero(); SUM_LANES],
            pending_blocks: 0,
        }
    }

    /// Adds a block of terms that all have the same sign as the other terms so added.
    #[inline(always)]
    pub(crate) fn add_same_sign(&mut self, terms: &Lanes<F>) {
        for lane in 0..SUM_LANES {
            self.pending[lane] = self.pending[lane] + (terms[lane] + terms[lane + SUM_LANES]);
        }
        self.pending_blocks += 1;
        if self.pending_blocks == BLOCK {
            let pending = self.pending;
            self.add_lanes(&pending);
            self.pending = [F::zero(); SUM_LANES];
            self.pending_blocks = 0;
        }
    }

    /// Adds a block of terms of any signs, keeping every rounding error.
    #[inline(always)]
    pub(crate) fn add(&mut self, terms: &Lanes<F>) {
        for lane in 0..SUM_LANES {
            let (pair, pair_error) = two_sum(terms[lane], terms[lane + SUM_LANES]);
            let (total, error) = two_sum(self.sum[lane], pair);
            self.sum[lane] = total;
            self.compensation[lane] = self.compensation[lane] + (error + pair_error);
        }
    }

    /// Adds one value per lane with TwoSum.
    #[inline(always)]
    fn add_lanes(&mut self, terms: &[F; SUM_LANES]) {
        for lane in 0..SUM_LANES {
            let (total, error) = two_sum(self.sum[lane], terms[lane]);
            self.sum[lane] = total;
            self.compensation[lane] = self.compensation[lane] + error;
        }
    }

    /// Adds a single value to lane 0, for the scalar tail and fallback terms.
    #[inline(always)]
    pub(crate) fn add_one(&mut self, term: F) {
        let mut terms = [F::zero(); SUM_LANES];
        terms[0] = term;
        self.add_lanes(&terms);
    }

    /// Returns the total over all lanes, added with compensation.
    pub(crate) fn value(&self) -> F {
        let mut flushed = *self;
        flushed.add_lanes(&self.pending);
        // TwoSum turns an infinite term into a NaN compensation (it computes
        // inf - inf), so a sum that is not finite is returned as it is.
        let plain = flushed
            .sum
            .iter()
            .fold(F::zero(), |total, &lane| total + lane);
        if !plain.is_finite() {
            return plain;
        }
        let mut total = crate::divergence::terms::CompensatedSum::new();
        for lane in 0..SUM_LANES {
            total.add(flushed.sum[lane]);
        }
        for lane in 0..SUM_LANES {
            total.add(flushed.compensation[lane]);
        }
        total.value()
    }
}

/// Tells whether every lane is at least `F::min_positive_value()`: a positive
/// normal number or `+inf`. NaN fails the test.
#[inline(always)]
pub(crate) fn at_least_min_positive<F: KernelFloat>(values: &Lanes<F>) -> bool {
    let mut ok = true;
    for &value in values {
        ok &= value >= F::min_positive_value();
    }
    ok
}

/// Tells whether every lane is a normal number in `[F::min_positive_value(), upper]`.
///
/// NaN fails the test, so a `true` also means no lane is NaN.
#[inline(always)]
pub(crate) fn all_normal_up_to<F: KernelFloat>(values: &Lanes<F>, upper: F) -> bool {
    let mut ok = true;
    for &value in values {
        ok &= value >= F::min_positive_value() && value <= upper;
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_std_to_two_ulps() {
        let mut x = 1e-300_f64;
        while x < 1e300 {
            for factor in [1.0, 1.0 + 1e-12, 0.999_999, 1.414, 0.7072] {
                let value = x * factor;
                let expected = value.ln();
                let tolerance = 2.0 * f64::EPSILON * expected.abs().max(f64::MIN_POSITIVE);
                for got in [ln::<f64, false>(value), ln::<f64, true>(value)] {
                    assert!(
                        (got - expected).abs() <= tolerance,
                        "ln({value}) = {got}, std {expected}"
                    );
                }
            }
            x *= 3.7;
        }
    }

    #[test]
    fn ln_near_one_keeps_relative_accuracy() {
        for d in [1e-15_f64, 1e-12, -1e-9, 3e-5, -0.01] {
            let x = 1.0 + d;
            let expected = x.ln();
            let got = ln::<_, false>(x);
            assert!(((got - expected) / expected).abs() < 4.0 * f64::EPSILON);
        }
    }

    #[test]
    fn ln_f32_matches_std() {
        let mut x = 1e-37_f32;
        while x < 1e37 {
            let expected = x.ln();
            let got = ln::<_, false>(x);
            let tolerance = 2.0 * f32::EPSILON * expected.abs().max(f32::MIN_POSITIVE);
            assert!(
                (got - expected).abs() <= tolerance,
                "ln({x}) = {got}, std {expected}"
            );
            x *= 1.93;
        }
    }

    #[test]
    fn exp_matches_std() {
        let mut x = 0.0_f64;
        while x > -700.0 {
            let expected = x.exp();
            let got = exp_nonpositive::<_, false>(x);
            assert!(
                ((got - expected) / expected).abs() < 3.0 * f64::EPSILON,
                "exp({x})"
            );
            x -= 0.173;
        }
        assert_eq!(
            exp_nonpositive::<f64, false>(f64::NEG_INFINITY).to_bits(),
            0
        );
        assert_eq!(exp_nonpositive::<f64, false>(-800.0_f64).to_bits(), 0);
    }

    #[test]
    fn exp_f32_matches_std() {
        let mut x = 0.0_f32;
        while x > -85.0 {
            let expected = x.exp();
            let got = exp_nonpositive::<_, false>(x);
            assert!(
                ((got - expected) / expected).abs() < 3.0 * f32::EPSILON,
                "exp({x})"
            );
            x -= 0.0731;
        }
        assert_eq!(
            exp_nonpositive::<f32, false>(f32::NEG_INFINITY).to_bits(),
            0
        );
    }

    /// Checks the contract of `split_ratio` on one pair.
    fn check_split_ratio(p: f64, q: f64) {
        let (k, mantissa_p, mantissa_q) = f64::split_ratio(p, q);
        assert_eq!(k, k.round(), "k = {k} for p = {p:e}, q = {q:e}");
        assert!((1.0..2.0).contains(&mantissa_p), "m_p = {mantissa_p}");
        let ratio = mantissa_q / mantissa_p;
        assert!(
            (0.666..=1.502).contains(&ratio),
            "m_q/m_p = {ratio} for p = {p:e}, q = {q:e}"
        );
        // log2(q/p) = k + log2(m_q/m_p), to the rounding of the logarithms.
        let expected = q.log2() - p.log2();
        let got = k + mantissa_q.log2() - mantissa_p.log2();
        assert!(
            (got - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "log2 ratio {got} against {expected} for p = {p:e}, q = {q:e}"
        );
        if k == 0.0 && (p + q).is_finite() {
            let scaled = (mantissa_q - mantissa_p) / (mantissa_q + mantissa_p);
            assert_eq!(scaled.to_bits(), ((q - p) / (q + p)).to_bits());
        }
    }

    #[test]
    fn split_ratio_reduces_every_magnitude() {
        let specials = [
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE * 1.5,
            1e-300,
            1e-17,
            0.3,
            0.5,
            1.0,
            1.0 - f64::EPSILON,
            1.9999999,
            1e300,
            f64::MAX,
        ];
        for &p in &specials {
            for &q in &specials {
                check_split_ratio(p, q);
            }
        }
        // Ratios around the edges of the reduction, and a scan of magnitudes.
        let mut p = 3e-308_f64;
        while p < 1e307 {
            for factor in [
                1.0,
                1.0 + 1e-12,
                0.7,
                0.7072,
                1.414,
                1.5,
                1.2,
                0.83,
                2.0,
                3.7,
            ] {
                // The contract covers positive normal numbers only.
                if (p * factor).is_normal() {
                    check_split_ratio(p, p * factor);
                    check_split_ratio(p * factor, p);
                }
            }
            p *= 7.3;
        }
    }

    #[test]
    fn split_ratio_f32_reduces_every_magnitude() {
        let mut p = 2e-38_f32;
        while p < 1e37 {
            for factor in [1.0_f32, 1.0 + 1e-6, 0.7, 1.414, 1.5, 0.83, 2.0, 3.7] {
                if !(p * factor).is_normal() {
                    continue;
                }
                for (a, b) in [(p, p * factor), (p * factor, p)] {
                    let (k, mantissa_a, mantissa_b) = f32::split_ratio(a, b);
                    assert_eq!(k, k.round());
                    assert!((1.0..2.0).contains(&mantissa_a));
                    let ratio = mantissa_b / mantissa_a;
                    assert!(
                        (0.666..=1.502).contains(&ratio),
                        "ratio {ratio} at {a:e}, {b:e}"
                    );
                    let expected = f64::from(b).log2() - f64::from(a).log2();
                    let got =
                        f64::from(k) + f64::from(mantissa_b).log2() - f64::from(mantissa_a).log2();
                    assert!((got - expected).abs() <= 1e-5 * expected.abs().max(1.0));
                }
            }
            p *= 5.1;
        }
    }

    #[test]
    fn lane_sum_recovers_small_terms() {
        let mut sum = LaneSum::<f64>::new();
        sum.add_one(1.0);
        sum.add_one(1e-17);
        sum.add_one(1e-17);
        sum.add_one(-1.0);
        assert!((sum.value() - 2e-17).abs() < 1e-32);
    }

    #[test]
    fn normal_check_rejects_zero_nan_and_large() {
        let mut values = [0.5_f64; LANES];
        assert!(all_normal_up_to(&values, 1.0));
        values[3] = 0.0;
        assert!(!all_normal_up_to(&values, 1.0));
        values[3] = f64::NAN;
        assert!(!all_normal_up_to(&values, 1.0));
        values[3] = 2.0;
        assert!(!all_normal_up_to(&values, 1.0));
        assert!(all_normal_up_to(&values, f64::MAX));
    }
}
