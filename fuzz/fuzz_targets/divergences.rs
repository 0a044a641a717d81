//! Fuzzes every `Divergence` variant, Renyi with arbitrary orders, and the batch forms.
//!
//! For f32 inputs the result is also compared with the textbook formula
//! evaluated in f64 on the same (exactly widened) inputs, which is accurate to
//! far better than f32 precision.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use metadistill::divergence::{kl, max_log_ratio, renyi};
use metadistill::{Distribution, Divergence, Error};
use metadistill_fuzz::{FuzzFloat, MAX_ROWS, batch, distribution, length, value};

/// Returns every divergence, with Renyi at fixed orders and at `order`.
fn all_divergences<F: FuzzFloat>(order: F) -> Vec<Divergence<F>> {
    let mut list = vec![
        Divergence::KullbackLeibler,
        Divergence::ReverseKullbackLeibler,
        Divergence::JensenShannon,
        Divergence::JensenShannonDistance,
        Divergence::TotalVariation,
        Divergence::Hellinger,
        Divergence::SquaredHellinger,
        Divergence::ChiSquared,
        Divergence::max_log_ratio(),
        Divergence::Renyi { order },
    ];
    for fixed in [0.0, 0.5, 1.0, 2.0, 1e-9, 1.0 + 1e-9, 1e30] {
        list.push(Divergence::Renyi {
            order: F::from_f64_lossy(fixed),
        });
    }
    list
}

/// Returns the largest value a divergence can take, if it is bounded.
fn upper_bound<F: FuzzFloat>(divergence: &Divergence<F>) -> Option<f64> {
    match divergence {
        Divergence::JensenShannon => Some(std::f64::consts::LN_2),
        Divergence::JensenShannonDistance => Some(std::f64::consts::LN_2.sqrt()),
        Divergence::TotalVariation | Divergence::Hellinger | Divergence::SquaredHellinger => {
            Some(1.0)
        }
        _ => None,
    }
}

/// Checks one computed divergence value.
fn check_value<F: FuzzFloat>(divergence: &Divergence<F>, value: F) {
    let name = divergence.name();
    assert!(!value.is_nan(), "{name} is NaN");
    assert!(value >= F::zero(), "{name} is {value} < 0");
    if let Some(bound) = upper_bound(divergence) {
        assert!(
            value.widen() <= bound * (1.0 + 1e-6),
            "{name} is {value} > {bound}"
        );
    }
}

/// Computes a divergence by its textbook formula in f64; the per-token terms and their magnitude.
fn reference(divergence: &Divergence<f32>, p: &[f64], q: &[f64]) -> Option<(f64, f64)> {
    let mut total = 0.0;
    let mut magnitude = 0.0;
    for (&pi, &qi) in p.iter().zip(q) {
        let (term, size) = match divergence {
            Divergence::KullbackLeibler | Divergence::ReverseKullbackLeibler => {
                let (a, b) = match divergence {
                    Divergence::KullbackLeibler => (pi, qi),
                    _ => (qi, pi),
                };
                if a == 0.0 {
                    (0.0, 0.0)
                } else if b == 0.0 {
                    return Some((f64::INFINITY, f64::INFINITY));
                } else {
                    let term = a * (a.ln() - b.ln());
                    (term, term.abs() + (a - b).abs())
                }
            }
            Divergence::TotalVariation => (0.5 * (pi - qi).abs(), (pi - qi).abs()),
            Divergence::SquaredHellinger => {
                let term = 0.5 * (pi.sqrt() - qi.sqrt()).powi(2);
                (term, term)
            }
            Divergence::ChiSquared => {
                if qi == 0.0 {
                    if pi == 0.0 {
                        (0.0, 0.0)
                    } else {
                        return Some((f64::INFINITY, f64::INFINITY));
                    }
                } else {
                    let term = (pi - qi) * (pi - qi) / qi;
                    (term, term)
                }
            }
            Divergence::JensenShannon => {
                let m = 0.5 * (pi + qi);
                let part = |x: f64| {
                    if x == 0.0 {
                        0.0
                    } else {
                        0.5 * x * (x / m).ln()
                    }
                };
                let term = part(pi) + part(qi);
                (term, part(pi).abs() + part(qi).abs())
            }
            _ => return None,
        };
        total += term;
        magnitude += size;
    }
    let clamped = match divergence {
        Divergence::JensenShannon => total.clamp(0.0, std::f64::consts::LN_2),
        Divergence::TotalVariation | Divergence::SquaredHellinger => total.clamp(0.0, 1.0),
        _ => total.max(0.0),
    };
    Some((clamped, magnitude))
}

/// Compares an f32 result with the f64 textbook value on the same inputs.
fn compare_with_reference<F: FuzzFloat>(divergence: &Divergence<F>, p: &[F], q: &[F], got: F) {
    if std::mem::size_of::<F>() != 4 {
        return;
    }
    let narrow = match divergence {
        Divergence::KullbackLeibler => Divergence::<f32>::KullbackLeibler,
        Divergence::ReverseKullbackLeibler => Divergence::ReverseKullbackLeibler,
        Divergence::TotalVariation => Divergence::TotalVariation,
        Divergence::SquaredHellinger => Divergence::SquaredHellinger,
        Divergence::ChiSquared => Divergence::ChiSquared,
        Divergence::JensenShannon => Divergence::JensenShannon,
        _ => return,
    };
    let wide_p: Vec<f64> = p.iter().map(|&x| x.widen()).collect();
    let wide_q: Vec<f64> = q.iter().map(|&x| x.widen()).collect();
    let Some((expected, magnitude)) = reference(&narrow, &wide_p, &wide_q) else {
        return;
    };
    let got = got.widen();
    if expected.is_infinite() || got.is_infinite() {
        // An f32 result can overflow where the f64 one does not, but never the reverse.
        assert!(
            got.is_infinite() || !expected.is_infinite(),
            "{} is {got} but the f64 formula gives {expected}",
            divergence.name()
        );
        return;
    }
    // Each token's term carries a few f32 roundings (relative 2^-24 each), so
    // the error is at most a small multiple of f32 epsilon times the sum of
    // the terms' magnitudes. Subnormal f32 terms add at most 1e-44 each.
    let allowed = 32.0 * f64::from(f32::EPSILON) * magnitude + 1e-40;
    assert!(
        (got - expected).abs() <= allowed,
        "{} is {got} but the f64 formula gives {expected} (allowed error {allowed})",
        divergence.name()
    );
}

fn run<F: FuzzFloat>(u: &mut Unstructured) -> Result<()> {
    let len = length(u)?;
    let other_len = if u.ratio(7, 8)? { len } else { length(u)? };
    let order = value::<F>(u)?;
    let p: Option<Distribution<F>> = distribution(u, len)?;
    let q: Option<Distribution<F>> = distribution(u, other_len)?;

    let renyi_result = Divergence::renyi(order);
    assert_eq!(renyi_result.is_err(), order.is_nan() || order < F::zero());

    if let (Some(p), Some(q)) = (&p, &q) {
        for divergence in all_divergences(order) {
            match divergence.compute(p, q) {
                Ok(value) => {
                    check_value(&divergence, value);
                    compare_with_reference(&divergence, p.as_slice(), q.as_slice(), value);
                }
                Err(Error::VocabularyMismatch { .. }) => assert_ne!(p.len(), q.len()),
                Err(Error::InvalidOrder { .. }) => assert!(renyi_result.is_err()),
                Err(other) => panic!(
                    "{} returned an undocumented error: {other:?}",
                    divergence.name()
                ),
            }
        }
        for value in [kl(p, q), renyi(p, q, order), max_log_ratio(p, q)]
            .into_iter()
            .flatten()
        {
            assert!(!value.is_nan());
            assert!(value >= F::zero());
        }
        if let Ok(self_kl) = kl(p, p) {
            assert!(self_kl.is_zero(), "KL(p ‖ p) = {self_kl}");
        }
    }

    let rows = u.int_in_range(0..=MAX_ROWS)?;
    let other_rows = if u.ratio(7, 8)? {
        rows
    } else {
        u.int_in_range(0..=MAX_ROWS)?
    };
    let first = batch::<F>(u, rows, len)?;
    let second = batch::<F>(u, other_rows, other_len)?;
    if let (Some(first), Some(second)) = (&first, &second) {
        for divergence in all_divergences(order) {
            match divergence.per_row(first, second) {
                Ok(values) => {
                    assert_eq!(values.len(), first.n_inputs());
                    values.iter().for_each(|&v| check_value(&divergence, v));
                }
                Err(error) => assert!(
                    matches!(
                        error,
                        Error::BatchSizeMismatch { .. }
                            | Error::VocabularyMismatch { .. }
                            | Error::InvalidOrder { .. }
                    ),
                    "per_row returned an undocumented error: {error:?}"
                ),
            }
            match divergence.expected(first, second) {
                Ok(value) => check_value(&divergence, value),
                Err(error) => assert!(
                    matches!(
                        error,
                        Error::BatchSizeMismatch { .. }
                            | Error::VocabularyMismatch { .. }
                            | Error::InputWeightMismatch { .. }
                            | Error::InvalidOrder { .. }
                    ),
                    "expected returned an undocumented error: {error:?}"
                ),
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = if u.arbitrary::<bool>().unwrap_or(false) {
        run::<f32>(&mut u)
    } else {
        run::<f64>(&mut u)
    };
});
