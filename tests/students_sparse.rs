//! The sparse student: optimal in KL(q ‖ S) among k-sparse-plus-floor distributions.

use metadistill::Distribution;
use metadistill::divergence::kl;
use metadistill::student::{KeptTokens, SparseStudent, Student};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Builds the family member that keeps the tokens in `kept` at `values` and spreads the rest.
fn member(vocab_size: usize, kept: &[usize], values: &[f64]) -> Option<Distribution<f64>> {
    let kept_mass: f64 = values.iter().sum();
    if kept_mass > 1.0 {
        return None;
    }
    let floor = (1.0 - kept_mass) / (vocab_size - kept.len()) as f64;
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
fn random_distribution(rng: &mut ChaCha8Rng, n: usize) -> Distribution<f64> {
    let power = [1, 3, 8][rng.random_range(0..3)];
    let mut weights: Vec<f64> = (0..n).map(|_| rng.random::<f64>().powi(power)).collect();
    if rng.random_range(0..4) == 0 {
        weights[1] = weights[0];
    }
    Distribution::from_weights(&weights).unwrap()
}

#[test]
fn best_beats_every_subset_and_value_choice() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for case in 0..300 {
        let n = rng.random_range(2..=7);
        let k = rng.random_range(0..n);
        let q = random_distribution(&mut rng, n);
        let s = SparseStudent::new(k, KeptTokens::Best).fit_one(&q).unwrap();
        let best = kl(&q, &s).unwrap();

        for kept in subsets(n, k) {
            let at_q: Vec<f64> = kept.iter().map(|&i| q.probs()[i]).collect();
            if let Some(candidate) = member(n, &kept, &at_q) {
                let value = kl(&q, &candidate).unwrap();
                assert!(
                    best <= value + 1e-12,
                    "case {case}: {best} > {value} for {kept:?}"
                );
            }
            for _ in 0..5 {
                let jittered: Vec<f64> = at_q
                    .iter()
                    .map(|&v| (v * (1.0 + 0.2 * (rng.random::<f64>() - 0.5))).max(0.0))
                    .collect();
                if let Some(candidate) = member(n, &kept, &jittered) {
                    let value = kl(&q, &candidate).unwrap();
                    assert!(best <= value + 1e-12, "case {case}: {best} > {value}");
                }
            }
        }
    }
}

#[test]
fn largest_is_optimal_for_its_kept_tokens() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for case in 0..200 {
        let n = rng.random_range(3..=8);
        let k = rng.random_range(1..n);
        let q = random_distribution(&mut rng, n);
        let s = SparseStudent::new(k, KeptTokens::Largest)
            .fit_one(&q)
            .unwrap();
        let value = kl(&q, &s).unwrap();

        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| q.probs()[j].total_cmp(&q.probs()[i]));
        let kept = &order[..k];
        for _ in 0..50 {
            let values: Vec<f64> = kept
                .iter()
                .map(|&i| (q.probs()[i] + 0.05 * (rng.random::<f64>() - 0.5)).max(1e-6))
                .collect();
            if let Some(candidate) = member(n, kept, &values) {
                let other = kl(&q, &candidate).unwrap();
                assert!(value <= other + 1e-12, "case {case}: {value} > {other}");
            }
        }
    }
}

#[test]
fn largest_keeps_top_tokens_and_spreads_rest() {
    let q = Distribution::<f64>::from_probs(&[0.1, 0.5, 0.15, 0.25]).unwrap();
    let s = SparseStudent::new(2, KeptTokens::Largest)
        .fit_one(&q)
        .unwrap();
    let expected = [0.125, 0.5, 0.125, 0.25];
    for (i, (&got, want)) in s.probs().iter().zip(expected).enumerate() {
        assert!((got - want).abs() < 1e-15, "token {i}: {got} != {want}");
    }
}

#[test]
fn best_can_keep_a_small_token() {
    let q = Distribution::<f64>::from_probs(&[0.4, 0.4, 0.2]).unwrap();
    let best = SparseStudent::new(1, KeptTokens::Best).fit_one(&q).unwrap();
    let largest = SparseStudent::new(1, KeptTokens::Largest)
        .fit_one(&q)
        .unwrap();
    assert!(kl(&q, &best).unwrap() < 1e-15);
    let expected = 0.4 * (0.4_f64 / 0.3).ln() + 0.2 * (0.2_f64 / 0.3).ln();
    assert!((kl(&q, &largest).unwrap() - expected).abs() < 1e-15);
}

#[test]
fn k_at_least_vocabulary_copies() {
    let q = Distribution::<f64>::from_probs(&[0.1, 0.5, 0.4]).unwrap();
    for k in [3, 10] {
        let s = SparseStudent::new(k, KeptTokens::Best).fit_one(&q).unwrap();
        assert_eq!(s, q);
    }
}

#[test]
fn k_zero_gives_uniform() {
    let q = Distribution::<f64>::from_probs(&[0.1, 0.5, 0.4]).unwrap();
    let s = SparseStudent::new(0, KeptTokens::Largest)
        .fit_one(&q)
        .unwrap();
    for &p in s.probs() {
        assert!((p - 1.0 / 3.0).abs() < 1e-15);
    }
}

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
