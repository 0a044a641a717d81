//! Row kernels for KL, Jensen-Shannon, cross-entropy and entropy on probability rows.
//!
//! Each kernel walks a row in blocks of `LANES` tokens. A block whose entries
//! are all positive normal numbers (and at most 1 where a kernel needs it)
//! takes the vector path. Any other block (zeros, subnormals, NaN, negative or
//! infinite entries) takes the scalar per-token terms of the `divergence`
//! module, which also reports invalid entries. The tail of the row shorter
//! than a block takes the scalar terms too.
//!
//! The KL block computes `p φ(q/p)`, `φ(r) = r - 1 - ln r`, with one division
//! and one polynomial per token:
//!
//! ```text
//! q/p = 2^k m_q/m_p,   m_p ∈ [1, 2),   m_q/m_p ∈ [0.666, 1.502]
//! v = (m_q - m_p)/(m_q + m_p),   ln(q/p) = k ln 2 + 2v + 2v³ S(v²),   d = q - p
//! k = 0:   p φ = v d - p · 2v³ S(v²)
//! k ≠ 0:   p φ = d - p ln(q/p)
//! ```
//!
//! The split into `k`, `m_p` and `m_q` takes integer operations only (see
//! `KernelFloat::split_ratio`). With `k = 0` the mantissas are `p` and `q`
//! scaled by one power of two, so `v = (q - p)/(q + p)`, and the first form
//! holds because `d (1 - v) = 2 p v`. There `d` is exact (Sterbenz) and
//! nothing cancels, which keeps the accuracy of the scalar path at
//! `q = p(1 + 1e-12)`. With `k ≠ 0`, `|ln(q/p)| >= 0.288`, and the second
//! form loses at most 3 bits to cancellation.

// Lane loops index several arrays by the same lane on purpose: that is the
// form the compiler turns into vector instructions.
#![allow(clippy::needless_range_loop)]

use crate::divergence::terms;

use super::lanes::{
    KernelFloat, LANES, LaneSum, Lanes, all_normal_up_to, at_least_min_positive, atanh_tail, ln,
    mul_add, polynomial,
};
use super::rows::{EntryError, RowAccess, RowError, check_probability, check_rest};

/// The per-token `p φ(q/p)` and `q - p` of one block.
type KlTerms<F> = (Lanes<F>, Lanes<F>);

/// Half-width `3 - 2√2` of the band `q/p ∈ [√½, √2]` in terms of `(q - p)/(q + p)`.
const NEAR_BAND: f64 = 0.171_572_875_253_809_9;

#[inline(always)]
fn near_band<F: KernelFloat>() -> F {
    F::from(NEAR_BAND).unwrap_or_else(F::zero)
}

/// Returns the per-token `p φ(q/p)` and `q - p` of one block of positive normal entries.
///
/// On a 2-core AVX-512 Xeon this block costs about 1.0 ns per entry in cache,
/// about as much as the cross-entropy's one logarithm (see BENCHMARKS.md).
/// The division takes the divider 16 cycles per 8 lanes, but it runs beside
/// the other work: a single-precision reciprocal with two correction steps
/// measured slower in two separate attempts.
#[inline(always)]
fn kl_block<F: KernelFloat, const FMA: bool>(p: &Lanes<F>, q: &Lanes<F>) -> KlTerms<F> {
    let two = F::one() + F::one();
    let mut phi = [F::zero(); LANES];
    let mut difference = [F::zero(); LANES];
    for lane in 0..LANES {
        let (pi, qi) = (p[lane], q[lane]);
        let d = qi - pi;
        let (k, mantissa_p, mantissa_q) = F::split_ratio(pi, qi);
        // With k = 0 the mantissas are p and q scaled by the same power of
        // two, so v equals (q - p)/(q + p) and the near form applies.
        let near = k == F::zero();
        let v = (mantissa_q - mantissa_p) / (mantissa_q + mantissa_p);
        let tail = atanh_tail::<F, FMA>(v);

        let near_term = mul_add::<F, FMA>(-pi, tail, v * d);
        let low = mul_add::<F, FMA>(k, F::LN2_LO, tail);
        let log_ratio = mul_add::<F, FMA>(k, F::LN2_HI, mul_add::<F, FMA>(v, two, low));
        let far_term = mul_add::<F, FMA>(-pi, log_ratio, d);
        phi[lane] = if near { near_term } else { far_term };
        difference[lane] = d;
    }
    (phi, difference)
}

/// Computes `KL(p ‖ q) = Σ p ln(p/q)` of one row pair.
///
/// Returns `+inf` when a token has `q = 0 < p`, once every entry is checked.
#[inline(always)]
pub(crate) fn kl_row<F: KernelFloat, R: RowAccess<F>, const FMA: bool>(
    p: &R,
    q: &R,
) -> Result<F, RowError> {
    if let Some(value) = kl_row_normal::<F, R, FMA>(p, q) {
        return Ok(value);
    }
    let len = p.len();
    let mut phi = LaneSum::new();
    let mut differences = LaneSum::new();
    let mut start = 0;
    while start + LANES <= len {
        let p_block = p.block(start);
        let q_block = q.block(start);
        if all_normal_up_to(&p_block, F::max_value()) && all_normal_up_to(&q_block, F::max_value())
        {
            let (phi_terms, difference_terms) = kl_block::<F, FMA>(&p_block, &q_block);
            phi.add_same_sign(&phi_terms);
            differences.add(&difference_terms);
        } else {
            let Some((phi_terms, difference_terms)) = kl_scalar_terms(p, q, start, start + LANES)?
            else {
                check_rest(p, q, start)?;
                return Ok(F::infinity());
            };
            phi.add_same_sign(&phi_terms);
            differences.add(&difference_terms);
        }
        start += LANES;
    }
    if start < len {
        let Some((phi_terms, difference_terms)) = kl_scalar_terms(p, q, start, len)? else {
            check_rest(p, q, start)?;
            return Ok(F::infinity());
        };
        phi.add_same_sign(&phi_terms);
        differences.add(&difference_terms);
    }

    // KL = Σ p φ(q/p) + Σ (p - q), and `differences` contains Σ (q - p).
    Ok((phi.value() - differences.value()).max(F::zero()))
}

/// Computes the KL of a row whose entries are all positive normal numbers.
///
/// Returns `None` as soon as a block has an entry below the smallest normal
/// number (zero, subnormal, negative or NaN), and at the end when the sum is
/// not finite (an infinite entry, or an overflow). The caller then goes over
/// the row in order, so errors and `+inf` come out as they do there.
/// Kept apart from that general loop, this one keeps fewer values live, so
/// fewer of them spill to the stack. It also prefetches: each entry takes
/// more arithmetic than memory time, so loads can run ahead.
#[inline(always)]
fn kl_row_normal<F: KernelFloat, R: RowAccess<F>, const FMA: bool>(p: &R, q: &R) -> Option<F> {
    let len = p.len();
    let mut phi = LaneSum::new();
    let mut differences = LaneSum::new();
    let mut start = 0;
    while start + LANES <= len {
        p.prefetch_ahead(start);
        q.prefetch_ahead(start);
        let (p_block, q_block) = (p.block(start), q.block(start));
        if !(at_least_min_positive(&p_block) && at_least_min_positive(&q_block)) {
            return None;
        }
        let (phi_terms, difference_terms) = kl_block::<F, FMA>(&p_block, &q_block);
        phi.add_same_sign(&phi_terms);
        differences.add(&difference_terms);
        start += LANES;
    }
    if start < len {
        let Ok(Some((phi_terms, difference_terms))) = kl_scalar_terms(p, q, start, len) else {
            return None;
        };
        phi.add_same_sign(&phi_terms);
        differences.add(&difference_terms);
    }
    // An infinite entry passes the test above, but its `q - p` makes the sum
    // infinite or NaN for good.
    let value = phi.value() - differences.value();
    value.is_finite().then(|| value.max(F::zero()))
}

/// Returns the scalar KL terms of tokens `start .. end` (at most `LANES` of
/// them), for blocks with zeros, subnormals or invalid entries and for the
/// tail of a row; `None` if some token has `q = 0 < p` (the row is then `+inf`).
///
/// It reads the row rather than the caller's blocks, and returns terms
/// rather than adding them. A block or a sum passed by reference to a call
/// that is not inlined has to live in memory, so the compiler would move it
/// through the stack on every block of the vector path too.
#[cold]
#[inline(never)]
fn kl_scalar_terms<F: KernelFloat, R: RowAccess<F>>(
    p: &R,
    q: &R,
    start: usize,
    end: usize,
) -> Result<Option<KlTerms<F>>, RowError> {
    let mut phi_terms = [F::zero(); LANES];
    let mut difference_terms = [F::zero(); LANES];
    for (lane, index) in (start..end).enumerate().take(LANES) {
        let (pi, qi) = (p.get(index), q.get(index));
        check_probability(EntryError::FIRST, index, pi)?;
        check_probability(EntryError::SECOND, index, qi)?;
        let (phi_part, defect_part) = terms::kl_term(pi, qi);
        if phi_part == F::infinity() {
            return Ok(None);
        }
        phi_terms[lane] = phi_part;
        difference_terms[lane] = -defect_part;
    }
    Ok(Some((phi_terms, difference_terms)))
}

/// Returns the per-token Jensen-Shannon terms of one block of entries in `[MIN_POSITIVE, 1]`.
///
/// ```text
/// δ = (q - p)/(q + p)
/// near (|δ| <= 3 - 2√2):  (p + q)/4 · δ² H(δ²),   H(t) = Σ_k t^k / ((k + 1)(2k + 1))
/// far:                    ½ p ln(2p/(p + q)) + ½ q ln(2q/(p + q))
/// ```
#[inline(always)]
fn js_block<F: KernelFloat, const FMA: bool>(p: &Lanes<F>, q: &Lanes<F>) -> Lanes<F> {
    let band = near_band::<F>();
    let half = F::from(0.5).unwrap_or_else(F::zero);
    let quarter = F::from(0.25).unwrap_or_else(F::zero);
    let mut terms = [F::zero(); LANES];
    for lane in 0..LANES {
        let (pi, qi) = (p[lane], q[lane]);
        let s = pi + qi;
        let inverse = F::one() / s;
        let delta = (qi - pi) * inverse;
        let t = delta * delta;
        let near_term = s * quarter * (t * polynomial::<F, FMA>(F::JS_SERIES, t));
        let a = (pi + pi) * inverse;
        let b = (qi + qi) * inverse;
        let far_term = half * mul_add::<F, FMA>(pi, ln::<F, FMA>(a), qi * ln::<F, FMA>(b));
        terms[lane] = if delta.abs() <= band {
            near_term
        } else {
            far_term
        };
    }
    terms
}

/// Computes the Jensen-Shannon divergence of one row pair, clamped to `[0, ln 2]`.
#[inline(always)]
pub(crate) fn js_row<F: KernelFloat, R: RowAccess<F>, const FMA: bool>(
    p: &R,
    q: &R,
) -> Result<F, RowError> {
    let len = p.len();
    let mut sum = LaneSum::new();
    let scalar = |index: usize, pi: F, qi: F, sum: &mut LaneSum<F>| -> Result<(), RowError> {
        check_probability(EntryError::FIRST, index, pi)?;
        check_probability(EntryError::SECOND, index, qi)?;
        sum.add_one(terms::jensen_shannon_term(pi, qi));
        Ok(())
    };

    let mut start = 0;
    while start + LANES <= len {
        p.prefetch_ahead(start);
        q.prefetch_ahead(start);
        let p_block = p.block(start);
        let q_block = q.block(start);
        if all_normal_up_to(&p_block, F::one()) && all_normal_up_to(&q_block, F::one()) {
            sum.add_same_sign(&js_block::<F, FMA>(&p_block, &q_block));
        } else {
            for lane in 0..LANES {
                scalar(start + lane, p_block[lane], q_block[lane], &mut sum)?;
            }
        }
        start += LANES;
    }
    for index in start..len {
        scalar(index, p.get(index), q.get(index), &mut sum)?;
    }
    Ok(sum.value().max(F::zero()).min(F::LN_2()))
}

/// Computes the cross-entropy `H(p, q) = -Σ p ln q` of one row pair.
///
/// Takes `0 ln 0 = 0`, and returns `+inf` when a token has `q = 0 < p`, once every entry is checked.
#[inline(always)]
pub(crate) fn cross_entropy_row<F: KernelFloat, R: RowAccess<F>, const FMA: bool>(
    p: &R,
    q: &R,
) -> Result<F, RowError> {
    let len = p.len();
    let mut sum = LaneSum::new();
    let scalar = |index: usize, pi: F, qi: F, sum: &mut LaneSum<F>| -> Result<bool, RowError> {
        check_probability(EntryError::FIRST, index, pi)?;
        check_probability(EntryError::SECOND, index, qi)?;
        if pi.is_zero() {
            return Ok(true);
        }
        if qi.is_zero() {
            return Ok(false);
        }
        sum.add_one(-(pi * qi.ln()));
        Ok(true)
    };

    let mut start = 0;
    while start + LANES <= len {
        p.prefetch_ahead(start);
        q.prefetch_ahead(start);
        let p_block = p.block(start);
        let q_block = q.block(start);
        if all_normal_up_to(&p_block, F::max_value()) && all_normal_up_to(&q_block, F::max_value())
        {
            let mut block_terms = [F::zero(); LANES];
            for lane in 0..LANES {
                block_terms[lane] = -(p_block[lane] * ln::<F, FMA>(q_block[lane]));
            }
            sum.add_same_sign(&block_terms);
        } else {
            for lane in 0..LANES {
                if !scalar(start + lane, p_block[lane], q_block[lane], &mut sum)? {
                    check_rest(p, q, start)?;
                    return Ok(F::infinity());
                }
            }
        }
        start += LANES;
    }
    for index in start..len {
        if !scalar(index, p.get(index), q.get(index), &mut sum)? {
            check_rest(p, q, index)?;
            return Ok(F::infinity());
        }
    }
    Ok(sum.value().max(F::zero()))
}

/// Computes the Shannon entropy `H(p) = -Σ p ln p` of one row, with `0 ln 0 = 0`.
#[inline(always)]
pub(crate) fn entropy_row<F: KernelFloat, R: RowAccess<F>, const FMA: bool>(
    p: &R,
) -> Result<F, RowError> {
    let len = p.len();
    let mut sum = LaneSum::new();
    let scalar = |index: usize, pi: F, sum: &mut LaneSum<F>| -> Result<(), RowError> {
        check_probability(EntryError::FIRST, index, pi)?;
        if !pi.is_zero() {
            sum.add_one(-(pi * pi.ln()));
        }
        Ok(())
    };

    let mut start = 0;
    while start + LANES <= len {
        p.prefetch_ahead(start);
        let p_block = p.block(start);
        if all_normal_up_to(&p_block, F::max_value()) {
            let mut block_terms = [F::zero(); LANES];
            for lane in 0..LANES {
                block_terms[lane] = -(p_block[lane] * ln::<F, FMA>(p_block[lane]));
            }
            sum.add_same_sign(&block_terms);
        } else {
            for lane in 0..LANES {
                scalar(start + lane, p_block[lane], &mut sum)?;
            }
        }
        start += LANES;
    }
    for index in start..len {
        scalar(index, p.get(index), &mut sum)?;
    }
    Ok(sum.value().max(F::zero()))
}

/// Computes the row-wise dot product `Σ p q`, the memory-floor reference kernel.
#[inline(always)]
pub(crate) fn dot_row<F: KernelFloat, R: RowAccess<F>>(p: &R, q: &R) -> F {
    let len = p.len();
    let mut lanes = [F::zero(); LANES];
    let mut start = 0;
    while start + LANES <= len {
        p.prefetch_ahead(start);
        q.prefetch_ahead(start);
        let p_block = p.block(start);
        let q_block = q.block(start);
        for lane in 0..LANES {
            lanes[lane] = lanes[lane] + p_block[lane] * q_block[lane];
        }
        start += LANES;
    }
    let mut total = lanes.iter().copied().fold(F::zero(), |a, b| a + b);
    for index in start..len {
        total = total + p.get(index) * q.get(index);
    }
    total
}
