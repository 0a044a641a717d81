//! Shared generators and checks for the operator tests.

#![allow(dead_code)]

use metadistill::{Distribution, Result};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// Property-test settings: a fixed seed, so every run draws the same cases.
pub fn config() -> Config {
    Config {
        cases: 96,
        rng_seed: RngSeed::Fixed(0x6d65_7461),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Vocabulary sizes: the degenerate V = 1, small ones and a few dozen tokens.
pub fn vocab_size() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), Just(2), Just(3), 4usize..40]
}

/// Strictly positive weights of length `len`, to be normalized into a distribution.
pub fn positive_weights(len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.01f64..1.0, len)
}

/// `count` strictly positive distributions over one random vocabulary.
pub fn distributions(count: usize) -> impl Strategy<Value = Vec<Vec<f64>>> {
    vocab_size().prop_flat_map(move |len| prop::collection::vec(positive_weights(len), count))
}

/// Builds distributions from weight vectors.
pub fn build(weights: &[Vec<f64>]) -> Result<Vec<Distribution>> {
    weights
        .iter()
        .map(|w| Distribution::from_weights(w.as_slice()))
        .collect()
}

/// A deterministic linear congruential generator for the large-vocabulary cases.
pub struct Lcg(u64);

impl Lcg {
    /// Seeds the generator.
    pub fn new(seed: u64) -> Self {
        Lcg(seed)
    }

    /// Returns a number in `(0, 1]`.
    pub fn next_unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Returns a strictly positive distribution over `len` tokens.
    pub fn distribution(&mut self, len: usize) -> Result<Distribution> {
        let weights: Vec<f64> = (0..len).map(|_| self.next_unit()).collect();
        Distribution::from_weights(weights.as_slice())
    }
}

/// Returns the effective anchor weight before capping at 1: the smallest `q_i / t_i` where `t_i > 0`.
pub fn min_ratio(q: &Distribution, t: &Distribution) -> f64 {
    q.probs()
        .iter()
        .zip(t.probs())
        .filter(|&(_, &ti)| ti > 0.0)
        .map(|(&qi, &ti)| qi / ti)
        .fold(f64::INFINITY, f64::min)
}

/// Asserts that `q` is a distribution: finite, non-negative entries summing to 1.
pub fn assert_distribution(q: &Distribution) {
    let sum: f64 = q.probs().iter().sum();
    assert!((sum - 1.0).abs() < 1e-12, "sum {sum}");
    assert!(q.probs().iter().all(|p| p.is_finite() && *p >= 0.0));
}
