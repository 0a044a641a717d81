//! The sparse student: optimal in KL(q ‖ S) among k-sparse-plus-floor distributions.

use metadistill::divergence::kl;
use metadistill::student::{KeptTokens, SparseStudent, Student};
use metadistill::{Distribution, Real};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Builds a distribution from literals that are known to be valid.
fn dist<F: Real>(entries: &[f64]) -> Distribution<F> {
    let values: Vec<F> = entries.iter().map(|&x| c(x)).collect();
    Distribution::from_probs(&values).unwrap()
}

/// Slack for comparing two computed KL values: 4500 ε (1e-12 in f64, 5.4e-4 in f32).
///
/// Each KL carries a few ε of rounding, but the candidates are built from
/// values rounded to `F`, which moves their KL by up to a few thousand ε.
fn slack<F: Real>() -> F {
    c::<F>(4500.0) * F::epsilon()
}

/// Runs each generic check for `f32` and for `f64`.
macro_rules! for_both_floats {
    ($($name:ident),* $(,)?) => {
        mod f32_cases {
            $(#[test] fn $name() { super::$name::<f32>(); })*
        }
        mod f64_cases {
            $(#[test] fn $name() { super::$name::<f64>(); })*
        }
    };
}

/// Builds the family member that keeps the tokens in `kept` at `values` and spreads the rest.
fn member<F: Real>(vocab_size: usize, kept: &[usize], values: &[F]) -> Option<Distribution<F>> {
    let kept_mass: F = values.iter().copied().sum();
    if kept_mass > F::one() {
        return None;
    }
    let floor = (F::one() - kept_mass) / c((vocab_size - kept.len()) as f64);
    let mut probs = vec![floor; vocab_size];
    for (&i, &v) in kept.iter().zip(values) {
        probs[i] = v;
    }
    Distribution::from_weights(&probs).ok()
}

/// Every subset of `0..n` of size `k`.
fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    (0u32..1 << n)
        .filter(|mask| mask.count_ones() as usize == k)
        .map(|mask| (0..n).filter(|&i| mask & (1 << i) != 0).collect())
        .collect()
}

/// A random distribution over `n` tokens, sometimes peaked, sometimes with equal entries.
fn random_distribution<F: Real>(rng: &mut ChaCha8Rng, n: usize) -> Distribution<F> {
    let power = [1, 3, 8][rng.random_range(0..3)];
    let mut weights: Vec<F> = (0..n).map(|_| c(rng.random::<f64>().powi(power))).collect();
    if rng.random_range(0..4) == 0 {
        weights[1] = weights[0];
    }
    Distribution::from_weights(&weights).unwrap()
}

fn best_beats_every_subset_and_value_choice<F: Real>() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for case in 0..300 {
        let n = rng.random_range(2..=7);
        let k = rng.random_range(0..n);
        let q = random_distribution::<F>(&mut rng, n);
        let s = SparseStudent::new(k, KeptTokens::Best).fit_one(&q).unwrap();
        let best = kl(&q, &s).unwrap();

        for kept in subsets(n, k) {
            let at_q: Vec<F> = kept.iter().map(|&i| q.probs()[i]).collect();
            if let Some(candidate) = member(n, &kept, &at_q) {
                let value = kl(&q, &candidate).unwrap();
                assert!(
                    best <= value + slack(),
                    "case {case}: {best} > {value} for {kept:?}"
                );
            }
            for _ in 0..5 {
                let jittered: Vec<F> = at_q
                    .iter()
                    .map(|&v| {
                        let factor = c::<F>(1.0 + 0.2 * (rng.random::<f64>() - 0.5));
                        (v * factor).max(F::zero())
                    })
                    .collect();
                if let Some(candidate) = member(n, &kept, &jittered) {
                    let value = kl(&q, &candidate).unwrap();
                    assert!(best <= value + slack(), "case {case}: {best} > {value}");
                }
            }
        }
    }
}

fn largest_is_optimal_for_its_kept_tokens<F: Real>() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for case in 0..200 {
        let n = rng.random_range(3..=8);
        let k = rng.random_range(1..n);
        let q = random_distribution::<F>(&mut rng, n);
        let s = SparseStudent::new(k, KeptTokens::Largest)
            .fit_one(&q)
            .unwrap();
        let value = kl(&q, &s).unwrap();

        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| q.probs()[j].partial_cmp(&q.probs()[i]).unwrap());
        let kept = &order[..k];
        for _ in 0..50 {
            let values: Vec<F> = kept
                .iter()
                .map(|&i| {
                    let shift = c::<F>(0.05 * (rng.random::<f64>() - 0.5));
                    (q.probs()[i] + shift).max(c(1e-6))
                })
                .collect();
            if let Some(candidate) = member(n, kept, &values) {
                let other = kl(&q, &candidate).unwrap();
                assert!(value <= other + slack(), "case {case}: {value} > {other}");
            }
        }
    }
}

fn largest_keeps_top_tokens_and_spreads_rest<F: Real>() {
    let q = dist::<F>(&[0.1, 0.5, 0.15, 0.25]);
    let s = SparseStudent::new(2, KeptTokens::Largest)
        .fit_one(&q)
        .unwrap();
    // The floor is (0.1 + 0.15) / 2, one sum and one division: within 4.5 ε.
    let expected = [0.125, 0.5, 0.125, 0.25];
    for (i, (&got, want)) in s.probs().iter().zip(expected).enumerate() {
        assert!(
            (got - c(want)).abs() < c::<F>(4.5) * F::epsilon(),
            "token {i}: {got} != {want}"
        );
    }
}

fn best_can_keep_a_small_token<F: Real>() {
    let q = dist::<F>(&[0.4, 0.4, 0.2]);
    let best = SparseStudent::new(1, KeptTokens::Best).fit_one(&q).unwrap();
    let largest = SparseStudent::new(1, KeptTokens::Largest)
        .fit_one(&q)
        .unwrap();
    // KL values near 0.034 or 0 carry a few ε of rounding: 4.5 ε (1e-15 in f64).
    let tolerance = c::<F>(4.5) * F::epsilon();
    assert!(kl(&q, &best).unwrap() < tolerance);
    let (big, small, rest) = (c::<F>(0.4), c::<F>(0.2), c::<F>(0.3));
    let expected = big * (big / rest).ln() + small * (small / rest).ln();
    assert!((kl(&q, &largest).unwrap() - expected).abs() < tolerance);
}

fn k_at_least_vocabulary_copies<F: Real>() {
    let q = dist::<F>(&[0.1, 0.5, 0.4]);
    for k in [3, 10] {
        let s = SparseStudent::new(k, KeptTokens::Best).fit_one(&q).unwrap();
        assert_eq!(s, q);
    }
}

fn k_zero_gives_uniform<F: Real>() {
    let q = dist::<F>(&[0.1, 0.5, 0.4]);
    let s = SparseStudent::new(0, KeptTokens::Largest)
        .fit_one(&q)
        .unwrap();
    // The floor is the sum of three entries divided by 3: within 4.5 ε of 1/3.
    for &p in s.probs() {
        assert!((p - c(1.0 / 3.0)).abs() < c::<F>(4.5) * F::epsilon());
    }
}

for_both_floats!(
    best_beats_every_subset_and_value_choice,
    largest_is_optimal_for_its_kept_tokens,
    largest_keeps_top_tokens_and_spreads_rest,
    best_can_keep_a_small_token,
    k_at_least_vocabulary_copies,
    k_zero_gives_uniform,
);

#[test]
fn sparse_student_works_in_f32() {
    let q = Distribution::<f32>::from_probs(&[0.1, 0.5, 0.15, 0.25]).unwrap();
    let s = SparseStudent::new(2, KeptTokens::Best).fit_one(&q).unwrap();
    let total: f32 = s.probs().sum();
    assert!((total - 1.0).abs() < 1e-6);
    assert!(kl(&q, &s).unwrap() <= kl(&q, &Distribution::uniform(4).unwrap()).unwrap());
    assert!(s.probs().iter().all(|p| p.is_finite()));
    assert_eq!(
        <SparseStudent as Student<f32>>::name(&SparseStudent::new(2, KeptTokens::Best)),
        "SparseStudent(k = 2, best)"
    );
}
