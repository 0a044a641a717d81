//! Extreme inputs, each with the result the crate documents for it, in f64 and f32.
//!
//! Cases: probabilities at and below the smallest normal number, V = 1,
//! V = 4 million, logits of magnitude 1e308, temperatures of 1e-300 and 1e300,
//! f32 inputs whose `exp` overflows, disjoint supports, all-masked rows,
//! mismatched lengths, empty batches and zero input weights. Most cases run
//! once per float type through a generic function; where f32 cannot represent
//! the f64 input (1e-300, 1e308), its test uses the f32 analogue and its comment names it.

use metadistill::divergence::{expected_kl, js, kl, max_log_ratio, renyi};
use metadistill::recursion::{run_exact, run_exact_batch};
use metadistill::{
    ConvexMixture, Distribution, DistributionBatch, Divergence, Error, MetaTeacherOperator, Real,
};
use ndarray::{Array1, Array2};

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Tells whether `F` is `f64`.
fn is_f64<F: Real>() -> bool {
    std::mem::size_of::<F>() == 8
}

/// Asserts `|got - want| <= max_relative · |want|`.
fn assert_close<F: Real>(got: F, want: F, max_relative: F, what: &str) {
    let error = (got - want).abs();
    assert!(
        error <= max_relative * want.abs(),
        "{what}: got {got}, expected {want}, relative error {}",
        error / want.abs()
    );
}

// Probabilities at and below the smallest normal number.

/// Entries below the smallest normal number are accepted as given, with finite logarithms.
fn subnormal_probabilities_are_kept<F: Real>() {
    let tiny = F::min_positive_value() / c(1024.0);
    assert!(tiny > F::zero());
    assert!(!tiny.is_normal());
    let probs = [tiny, c(0.5), c(0.5)];
    let p = Distribution::from_probs(&probs).unwrap();
    assert_eq!(p.as_slice(), &probs);
    assert_eq!(p.log_probs()[0], tiny.ln());
    assert!(p.log_probs()[0].is_finite());
    assert!(p.is_strictly_positive());
    // ln 2 plus tiny · |ln tiny|, which is far below one ulp of ln 2.
    assert_eq!(p.entropy(), F::LN_2());
}

#[test]
fn subnormal_probabilities_kept_f64() {
    subnormal_probabilities_are_kept::<f64>();
}

#[test]
fn subnormal_probabilities_kept_f32() {
    subnormal_probabilities_are_kept::<f32>();
}

/// KL between distributions that differ only in entries at and below the
/// smallest normal number is itself that small, and keeps its leading digits.
fn kl_at_smallest_normal<F: Real>() {
    let smallest = F::min_positive_value();
    let half = c::<F>(0.5);
    let p = Distribution::from_probs(&[smallest, half, half]).unwrap();
    let q = Distribution::from_probs(&[smallest / c(64.0), half, half]).unwrap();

    // Exact-input value: s ln 64 from the first token; the other terms are 0.
    let want = smallest * c::<F>(64.0).ln();
    let got = kl(&p, &q).unwrap();
    // The result is a normal number built from subnormal q_1 = s/64 (exact),
    // so only a few roundings of relative size ε enter.
    assert_close(
        got,
        want,
        c::<F>(16.0) * F::epsilon(),
        "KL near the smallest normal",
    );

    // In the reverse direction the exact-input value -(s/64) ln 64 is
    // negative, because q sums to 1 + s/64 and p to 1 + s: it is below the
    // normalization defect, so the crate returns 0.
    assert_eq!(kl(&q, &p).unwrap(), F::zero());
}

#[test]
fn kl_at_smallest_normal_f64() {
    kl_at_smallest_normal::<f64>();
}

#[test]
fn kl_at_smallest_normal_f32() {
    kl_at_smallest_normal::<f32>();
}

/// Checks that a logit far below the others gives a probability that
/// underflows to 0 while its log-probability stays finite, and that
/// divergences use the probability.
fn underflowed_softmax_entry<F: Real>() {
    // exp(-800) is below the smallest f64 subnormal, exp(-110) below f32's.
    let gap = if is_f64::<F>() { -800.0 } else { -110.0 };
    let p = Distribution::from_logits(&[F::zero(), c(gap)], F::one()).unwrap();
    assert_eq!(p.as_slice(), &[F::one(), F::zero()]);
    assert_eq!(p.log_probs()[1], c(gap));
    // The teacher puts mass where the student's probability underflowed.
    let teacher = Distribution::<F>::uniform(2).unwrap();
    assert_eq!(kl(&teacher, &p).unwrap(), F::infinity());
    // In the other direction the zero entry contributes nothing: KL = ln 2.
    assert_close(
        kl(&p, &teacher).unwrap(),
        F::LN_2(),
        F::epsilon(),
        "KL(p ‖ u)",
    );
}

#[test]
fn underflowed_softmax_entry_f64() {
    underflowed_softmax_entry::<f64>();
}

#[test]
fn underflowed_softmax_entry_f32() {
    underflowed_softmax_entry::<f32>();
}

/// Negative zero passes the `p >= 0` check and is stored as `+0.0`.
fn negative_zero_is_a_zero<F: Real>() {
    let p = Distribution::from_probs(&[-F::zero(), F::one()]).unwrap();
    assert!(p.probs()[0].is_sign_positive());
    assert_eq!(p.log_probs()[0], F::neg_infinity());
    assert_eq!(p.entropy(), F::zero());
    let q = Distribution::from_probs(&[F::zero(), F::one()]).unwrap();
    assert_eq!(kl(&p, &q).unwrap(), F::zero());
    assert_eq!(kl(&q, &p).unwrap(), F::zero());
}

#[test]
fn negative_zero_is_a_zero_f64() {
    negative_zero_is_a_zero::<f64>();
}

#[test]
fn negative_zero_is_a_zero_f32() {
    negative_zero_is_a_zero::<f32>();
}

// V = 1.

/// Checks that with one token every distribution is [1] and every divergence is 0.
fn single_token<F: Real>() {
    let p = Distribution::from_probs(&[F::one()]).unwrap();
    let from_logits = Distribution::from_logits(&[c(-1e30)], c(1e-30)).unwrap();
    let from_weights = Distribution::from_weights(&[c(3.0)]).unwrap();
    let uniform = Distribution::<F>::uniform(1).unwrap();
    for q in [&from_logits, &from_weights, &uniform] {
        assert_eq!(q.as_slice(), &[F::one()]);
        assert_eq!(q.log_probs()[0], F::zero());
    }
    assert_eq!(p.entropy(), F::zero());

    let order = c::<F>(2.5);
    for divergence in [
        Divergence::KullbackLeibler,
        Divergence::ReverseKullbackLeibler,
        Divergence::JensenShannon,
        Divergence::JensenShannonDistance,
        Divergence::Renyi { order },
        Divergence::max_log_ratio(),
        Divergence::TotalVariation,
        Divergence::Hellinger,
        Divergence::SquaredHellinger,
        Divergence::ChiSquared,
    ] {
        assert_eq!(
            divergence.compute(&p, &uniform).unwrap(),
            F::zero(),
            "{}",
            divergence.name()
        );
    }

    let run = run_exact(
        &ConvexMixture::new(c(0.5)).unwrap(),
        std::slice::from_ref(&p),
        &uniform,
        3,
    )
    .unwrap();
    for record in run.records() {
        assert_eq!(record.divergence, F::zero());
        // D = 0 from the start, so no ratio is defined.
        assert_eq!(record.ratio, None);
    }
}

#[test]
fn single_token_f64() {
    single_token::<f64>();
}

#[test]
fn single_token_f32() {
    single_token::<f32>();
}

// V = 4 million.

/// Builds one softmax over 4 million logits and checks its KL to the uniform distribution.
///
/// The logits alternate 0 and 1, so `p` takes the two values `2 / (V (1 + e))`
/// and `2 e / (V (1 + e))`, and `KL(p ‖ u)` has a closed form.
fn four_million_tokens<F: Real>(max_relative: f64, max_sum_error: f64) {
    const V: usize = 4_000_000;
    let logits: Array1<F> = (0..V).map(|i| c((i % 2) as f64)).collect();
    let p = Distribution::from_logits(&logits, F::one()).unwrap();

    // Neumaier's compensated sum in f64 keeps its own error near 1e-16.
    let (mut sum, mut compensation) = (0.0_f64, 0.0_f64);
    for term in p.probs().iter().map(|x| x.to_f64().unwrap()) {
        let total = sum + term;
        compensation += if sum.abs() >= term.abs() {
            (sum - total) + term
        } else {
            (term - total) + sum
        };
        sum = total;
    }
    let sum_error = (sum + compensation - 1.0).abs();
    println!("softmax over {V} logits sums to 1 within {sum_error:.2e}");
    assert!(
        sum_error <= max_sum_error,
        "sum is off 1 by {sum_error:e}, above {max_sum_error:e}"
    );
    let uniform = Distribution::<F>::uniform(V).unwrap();
    let got = kl(&p, &uniform).unwrap().to_f64().unwrap();

    // KL(p ‖ u) = Σ p_i ln(p_i V), with p_i V = 2 / (1 + e) or 2 e / (1 + e).
    let e = std::f64::consts::E;
    let low = 2.0 / (1.0 + e);
    let high = e * low;
    let want = 0.5 * (low * low.ln() + high * high.ln());
    let error = (got - want).abs() / want;
    println!("KL to the uniform distribution: relative error {error:.2e}");
    assert!(
        error <= max_relative,
        "KL = {got}, expected {want}, relative error {error}"
    );
}

/// The log-softmax normalizer (about ln V ≈ 15) carries an absolute error of
/// a few ε · 15. That shifts every p_i by the same relative amount δ, which
/// moves KL by about δ (KL + 1), or 10 δ relative at KL ≈ 0.11. The sum of
/// the p_i is off 1 by the same δ plus the rounding of each p_i, which
/// averages out over many tokens.
///
/// f64: 10 δ is about 5e-14, so 1e-12 leaves a factor of twenty (measured
/// 8.5e-15). The sum is bounded by 8 ε = 1.8e-15 (measured 6.7e-16).
#[test]
fn four_million_tokens_f64() {
    four_million_tokens::<f64>(1e-12, 8.0 * f64::EPSILON);
}

/// f32: 10 δ is about 1e-5 with ε = 1.2e-7, so 2e-5 (measured 3.5e-7). The
/// sum is bounded by ε/2 = 6.0e-8, half an ulp of 1 (measured 3.1e-8).
#[test]
fn four_million_tokens_f32() {
    four_million_tokens::<f32>(2e-5, 0.5 * f64::from(f32::EPSILON));
}

// Logits of magnitude 1e308 (3e38 in f32, whose largest float is 3.4e38).

/// Checks huge logits, whose differences overflow, against the exact softmax.
fn huge_logits<F: Real>(magnitude: f64) {
    let big = c::<F>(magnitude);
    let tie = Distribution::from_logits(&[big, big, F::neg_infinity()], F::one()).unwrap();
    assert_eq!(tie.as_slice(), &[c(0.5), c(0.5), F::zero()]);

    // big - (-big) overflows to +inf; the smaller token gets probability 0
    // and log-probability -inf, since -2 · big is not a float either.
    let opposite = Distribution::from_logits(&[big, -big], F::one()).unwrap();
    assert_eq!(opposite.as_slice(), &[F::one(), F::zero()]);
    assert_eq!(opposite.log_probs()[1], F::neg_infinity());

    // With the temperature equal to the magnitude the scaled logits are
    // ±MAX / magnitude (about ±1.8 in f64): dividing before subtracting keeps
    // them finite.
    let scaled = Distribution::from_logits(&[F::max_value(), -F::max_value()], big).unwrap();
    let gap = (F::max_value() / big) * c(2.0);
    let want = F::one() / (F::one() + (-gap).exp());
    assert_close(
        scaled.probs()[0],
        want,
        c::<F>(4.0) * F::epsilon(),
        "p_0 at τ = magnitude",
    );
    assert_close(
        scaled.log_probs()[1],
        -gap - (-gap).exp().ln_1p(),
        c::<F>(4.0) * F::epsilon(),
        "ln p_1",
    );

    for bad in [F::infinity(), F::nan()] {
        let result = Distribution::from_logits(&[big, bad], F::one());
        assert!(
            matches!(result, Err(Error::InvalidLogit { index: 1, .. })),
            "{result:?}"
        );
    }
}

#[test]
fn huge_logits_f64() {
    huge_logits::<f64>(1e308);
}

#[test]
fn huge_logits_f32() {
    huge_logits::<f32>(3e38);
}

// Temperatures of 1e-300 and 1e300 (f32: 1e-45, its smallest subnormal, and 1e38).

/// Checks that a tiny temperature gives the argmax, with ties shared
/// equally, and that a huge one gives the uniform distribution.
fn extreme_temperatures<F: Real>(tiny: f64, huge: f64) {
    let logits = [c::<F>(1.0), c(3.0), c(2.0), c(3.0)];
    let cold = Distribution::from_logits(&logits, c(tiny)).unwrap();
    // The tied winners get exp(-ln 2), within an ulp of 1/2.
    assert_eq!(cold.probs()[0], F::zero());
    assert_eq!(cold.probs()[2], F::zero());
    assert_close(cold.probs()[1], c(0.5), F::epsilon(), "tied winner");
    assert_close(cold.probs()[3], c(0.5), F::epsilon(), "tied winner");
    // The losing tokens keep finite log-probabilities -gap / τ - ln 2 where
    // that fits the type (-2e300 in f64); in f32, -2 / 1e-45 overflows to -inf.
    let expected_log = c::<F>(-2.0) / c(tiny) - F::LN_2();
    assert_eq!(cold.log_probs()[0], expected_log);

    let hot = Distribution::from_logits(&logits, c(huge)).unwrap();
    let quarter = c::<F>(0.25);
    for &p in hot.as_slice() {
        // (l_i - m) / τ is at most 2 / τ, far below ε, so each p_i is exp(-ln 4).
        assert_close(p, quarter, F::epsilon(), "p_i at huge τ");
    }
    assert_close(
        hot.entropy(),
        c::<F>(4.0).ln(),
        F::epsilon(),
        "entropy at huge τ",
    );

    for bad in [F::zero(), -F::one(), F::infinity(), F::nan()] {
        let result = Distribution::from_logits(&logits, bad);
        assert!(
            matches!(result, Err(Error::InvalidTemperature { .. })),
            "{bad}: {result:?}"
        );
    }
}

#[test]
fn extreme_temperatures_f64() {
    extreme_temperatures::<f64>(1e-300, 1e300);
}

#[test]
fn extreme_temperatures_f32() {
    // 1e-300 and 1e300 round to 0 and +inf in f32, which the constructor rejects.
    assert_eq!(
        Distribution::from_logits(&[1.0_f32], 1e-300_f64 as f32),
        Err(Error::InvalidTemperature { value: 0.0 })
    );
    assert_eq!(
        Distribution::from_logits(&[1.0_f32], 1e300_f64 as f32),
        Err(Error::InvalidTemperature {
            value: f64::INFINITY
        })
    );
    extreme_temperatures::<f32>(1e-45, 1e38);
}

// f32 inputs whose exp overflows.

#[test]
fn f32_logits_whose_exp_overflows() {
    // exp(100) = 2.7e43 > f32::MAX; the shift by the maximum keeps every exp <= 1.
    let logits = [100.0_f32, 0.0, 99.0];
    let p = Distribution::from_logits(&logits, 1.0).unwrap();
    let wide = Distribution::from_logits(&[100.0_f64, 0.0, 99.0], 1.0).unwrap();
    for (&narrow, &reference) in p.as_slice().iter().zip(wide.as_slice()) {
        // Each f32 probability is within a few f32 ulps of the f64 softmax;
        // p_1 = 2.7e-44 is subnormal in f32, so it keeps absolute precision 2^-149.
        let error = (f64::from(narrow) - reference).abs();
        assert!(
            error <= 4.0 * f64::from(f32::EPSILON) * reference + 1.4e-45,
            "{narrow} vs {reference}"
        );
    }
    assert!(p.log_probs()[1].is_finite());
}

#[test]
fn f32_weights_whose_sum_overflows() {
    // 3e38 + 3e38 overflows f32; the weights are scaled by their maximum first.
    let p = Distribution::from_weights(&[3e38_f32, 3e38, 0.0]).unwrap();
    assert_eq!(p.as_slice(), &[0.5, 0.5, 0.0]);
}

#[test]
fn f32_divergences_that_overflow() {
    let p = Distribution::from_probs(&[0.5_f32, 0.5]).unwrap();
    let q = Distribution::from_probs(&[1e-45_f32, 1.0]).unwrap();
    // The chi-squared value 0.25 / 1e-45 exceeds f32::MAX, so it rounds to +inf.
    assert_eq!(
        Divergence::ChiSquared.compute(&p, &q).unwrap(),
        f32::INFINITY
    );
    // Renyi of order 1e30: (q/p)^(1 - b) overflows, so the log-sum-exp form
    // takes over. Its value tends to the max log-ratio ln(0.5 / 1e-45) ≈ 102.6.
    let high = renyi(&p, &q, 1e30).unwrap();
    let limit = max_log_ratio(&p, &q).unwrap();
    assert!(high.is_finite());
    // (ln Σ ...) / (b - 1) differs from the limit by ln(0.5) / b, far below an ulp.
    // Both sides carry about three f32 roundings.
    assert!(
        (high - limit).abs() <= 4.0 * f32::EPSILON * limit,
        "{high} vs {limit}"
    );
}

// Disjoint supports.

/// Distributions with disjoint supports: the unbounded divergences are +inf,
/// the bounded ones reach their maxima exactly.
fn disjoint_supports<F: Real>() {
    let half = c::<F>(0.5);
    let p = Distribution::from_probs(&[half, half, F::zero(), F::zero()]).unwrap();
    let q = Distribution::from_probs(&[F::zero(), F::zero(), half, half]).unwrap();
    let infinite = [
        Divergence::KullbackLeibler,
        Divergence::ReverseKullbackLeibler,
        Divergence::ChiSquared,
        Divergence::max_log_ratio(),
        Divergence::Renyi { order: F::zero() },
        Divergence::Renyi { order: half },
        Divergence::Renyi { order: c(2.0) },
    ];
    for divergence in infinite {
        assert_eq!(
            divergence.compute(&p, &q).unwrap(),
            F::infinity(),
            "{}",
            divergence.name()
        );
    }
    assert_eq!(js(&p, &q).unwrap(), F::LN_2());
    assert_eq!(
        Divergence::JensenShannonDistance.compute(&p, &q).unwrap(),
        F::LN_2().sqrt()
    );
    assert_eq!(
        Divergence::TotalVariation.compute(&p, &q).unwrap(),
        F::one()
    );
    // Each Hellinger term is ½ (0.5 / √0.5)², which rounds to within an ulp of 1/4.
    for divergence in [Divergence::Hellinger, Divergence::SquaredHellinger] {
        let value = divergence.compute(&p, &q).unwrap();
        assert_close(
            value,
            F::one(),
            c::<F>(4.0) * F::epsilon(),
            &divergence.name(),
        );
    }
}

#[test]
fn disjoint_supports_f64() {
    disjoint_supports::<f64>();
}

#[test]
fn disjoint_supports_f32() {
    disjoint_supports::<f32>();
}

// All-masked rows.

fn all_masked_rows<F: Real>() {
    let masked = F::neg_infinity();
    assert_eq!(
        Distribution::from_logits(&[masked, masked, masked], F::one()),
        Err(Error::AllMasked { count: 3 })
    );
    let logits = Array2::from_shape_vec((2, 2), vec![F::zero(), masked, masked, masked]).unwrap();
    let result = DistributionBatch::from_logits(&logits, F::one());
    assert_eq!(
        result,
        Err(Error::InRow {
            row: 1,
            source: Box::new(Error::AllMasked { count: 2 }),
        })
    );
    // A row with one unmasked token is one-hot.
    let batch =
        DistributionBatch::from_logits(logits.slice(ndarray::s![..1, ..]), F::one()).unwrap();
    assert_eq!(batch.row(0).unwrap().to_vec(), vec![F::one(), F::zero()]);
}

#[test]
fn all_masked_rows_f64() {
    all_masked_rows::<f64>();
}

#[test]
fn all_masked_rows_f32() {
    all_masked_rows::<f32>();
}

// Mismatched lengths.

fn mismatched_lengths<F: Real>() {
    let two = Distribution::<F>::uniform(2).unwrap();
    let three = Distribution::<F>::uniform(3).unwrap();
    let mismatch = Error::VocabularyMismatch {
        what: "second distribution",
        expected: 2,
        found: 3,
    };
    assert_eq!(kl(&two, &three), Err(mismatch.clone()));
    assert_eq!(two.cross_entropy(&three), Err(mismatch));

    let mixture = ConvexMixture::new(c(0.5)).unwrap();
    assert!(matches!(
        mixture.build(std::slice::from_ref(&two), std::slice::from_ref(&three)),
        Err(Error::VocabularyMismatch {
            what: "student",
            expected: 2,
            found: 3
        })
    ));
    assert!(matches!(
        run_exact(&mixture, std::slice::from_ref(&two), &three, 1),
        Err(Error::VocabularyMismatch {
            expected: 2,
            found: 3,
            ..
        })
    ));
    assert!(matches!(
        DistributionBatch::from_rows(&[two.clone(), three.clone()]),
        Err(Error::InRow { row: 1, .. })
    ));

    let rows2 = DistributionBatch::repeat(&two, 2).unwrap();
    let rows3 = DistributionBatch::repeat(&two, 3).unwrap();
    assert_eq!(
        Divergence::KullbackLeibler.per_row(&rows2, &rows3),
        Err(Error::BatchSizeMismatch {
            what: "second batch",
            expected: 2,
            found: 3,
        })
    );
    assert_eq!(
        rows2.with_input_weights(&[F::one(), F::one(), F::one()]),
        Err(Error::LengthMismatch {
            what: "input weights",
            expected: 2,
            found: 3,
        })
    );
}

#[test]
fn mismatched_lengths_f64() {
    mismatched_lengths::<f64>();
}

#[test]
fn mismatched_lengths_f32() {
    mismatched_lengths::<f32>();
}

// Empty inputs and batches.

fn empty_inputs<F: Real>() {
    let none: [F; 0] = [];
    assert!(matches!(
        Distribution::from_probs(&none),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        Distribution::from_weights(&none),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        Distribution::from_logits(&none, F::one()),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        Distribution::<F>::uniform(0),
        Err(Error::Empty { .. })
    ));

    let no_rows = Array2::<F>::zeros((0, 3));
    let no_columns = Array2::<F>::zeros((2, 0));
    assert_eq!(
        DistributionBatch::from_probs(&no_rows),
        Err(Error::Empty {
            what: "batch (no rows)"
        })
    );
    assert_eq!(
        DistributionBatch::from_probs(&no_columns),
        Err(Error::Empty {
            what: "batch (no columns)"
        })
    );
    assert_eq!(
        DistributionBatch::from_logits(&no_rows, F::one()),
        Err(Error::Empty {
            what: "batch (no rows)"
        })
    );
    assert_eq!(
        DistributionBatch::<F>::from_rows(&[]),
        Err(Error::Empty {
            what: "list of rows"
        })
    );
    let two = Distribution::<F>::uniform(2).unwrap();
    assert_eq!(
        DistributionBatch::repeat(&two, 0),
        Err(Error::Empty {
            what: "batch (no rows)"
        })
    );

    let mixture = ConvexMixture::new(c(0.5)).unwrap();
    let batch = DistributionBatch::repeat(&two, 1).unwrap();
    assert_eq!(
        mixture.build_batch(&[], std::slice::from_ref(&batch)),
        Err(Error::Empty {
            what: "list of base teachers"
        })
    );
    assert_eq!(
        mixture.build_batch(std::slice::from_ref(&batch), &[]),
        Err(Error::Empty {
            what: "student history"
        })
    );
    assert!(matches!(
        run_exact_batch(&mixture, &[], &batch, 1),
        Err(Error::Empty {
            what: "list of base teachers"
        })
    ));
}

#[test]
fn empty_inputs_f64() {
    empty_inputs::<f64>();
}

#[test]
fn empty_inputs_f32() {
    empty_inputs::<f32>();
}

// Zero input weights.

/// Inputs of weight 0 take no part in expectations, even where their divergence is +inf.
fn zero_input_weights<F: Real>() {
    let half = c::<F>(0.5);
    let teacher = DistributionBatch::from_rows(&[
        Distribution::from_probs(&[half, half]).unwrap(),
        Distribution::from_probs(&[c(0.9), c(0.1)]).unwrap(),
    ])
    .unwrap()
    .with_input_weights(&[F::zero(), c(2.0)])
    .unwrap();
    assert_eq!(teacher.input_weights().to_vec(), vec![F::zero(), F::one()]);

    let student = DistributionBatch::from_rows(&[
        Distribution::from_probs(&[F::one(), F::zero()]).unwrap(),
        Distribution::from_probs(&[half, half]).unwrap(),
    ])
    .unwrap()
    .with_input_weights(&[F::zero(), F::one()])
    .unwrap();
    let per_row = Divergence::KullbackLeibler
        .per_row(&teacher, &student)
        .unwrap();
    assert_eq!(per_row[0], F::infinity());
    assert_eq!(expected_kl(&teacher, &student).unwrap(), per_row[1]);

    // The recursion measures D over the weighted rows only, so it stays finite.
    let run = run_exact_batch(
        &ConvexMixture::new(half).unwrap(),
        std::slice::from_ref(&teacher),
        &student,
        2,
    )
    .unwrap();
    assert!(run.divergences().iter().all(|d| d.is_finite()));

    assert_eq!(
        teacher.with_input_weights(&[F::zero(), F::zero()]),
        Err(Error::AllZeroWeights {
            what: "input weight",
            count: 2,
        })
    );
    // A uniform student batch has different weights: the expectation is ambiguous.
    let unweighted = DistributionBatch::repeat(&Distribution::uniform(2).unwrap(), 2).unwrap();
    assert!(matches!(
        expected_kl(&student, &unweighted),
        Err(Error::InputWeightMismatch { row: 0, .. })
    ));
}

#[test]
fn zero_input_weights_f64() {
    zero_input_weights::<f64>();
}

#[test]
fn zero_input_weights_f32() {
    zero_input_weights::<f32>();
}

/// Weights spanning the whole float range normalize without overflow or underflow to NaN.
fn input_weights_spanning_range<F: Real>() {
    let batch = DistributionBatch::repeat(&Distribution::<F>::uniform(2).unwrap(), 3).unwrap();
    let weighted = batch
        .with_input_weights(&[F::max_value(), F::min_positive_value(), F::max_value()])
        .unwrap();
    let weights = weighted.input_weights().to_vec();
    assert_eq!(weights[0], c(0.5));
    assert_eq!(weights[2], c(0.5));
    // MIN_POSITIVE / MAX / 2 is far below the smallest subnormal.
    assert_eq!(weights[1], F::zero());
}

#[test]
fn input_weights_spanning_range_f64() {
    input_weights_spanning_range::<f64>();
}

#[test]
fn input_weights_spanning_range_f32() {
    input_weights_spanning_range::<f32>();
}

/// Renyi orders at the edges: 0, tiny, near 1, huge and +inf all give finite, ordered values.
fn renyi_orders_at_the_edges<F: Real>() {
    let p = Distribution::from_probs(&[c::<F>(0.6), c(0.3), c(0.1)]).unwrap();
    let q = Distribution::from_probs(&[c::<F>(0.2), c(0.5), c(0.3)]).unwrap();
    let orders = [0.0, 1e-30, 0.5, 1.0 - 1e-7, 1.0, 1.0 + 1e-7, 2.0, 1e30];
    let mut previous = F::zero();
    for order in orders {
        let value = renyi(&p, &q, c(order)).unwrap();
        assert!(value.is_finite(), "order {order}: {value}");
        // Renyi divergences do not decrease with the order; the slack covers rounding.
        assert!(
            value >= previous * (F::one() - c::<F>(64.0) * F::epsilon()),
            "order {order}"
        );
        previous = value;
    }
    let infinite = renyi(&p, &q, F::infinity()).unwrap();
    assert_close(
        infinite,
        c::<F>(3.0).ln(),
        c::<F>(4.0) * F::epsilon(),
        "order +inf",
    );
    assert!(previous <= infinite * (F::one() + c::<F>(64.0) * F::epsilon()));
    for bad in [-F::one(), F::nan(), F::neg_infinity()] {
        assert!(matches!(
            renyi(&p, &q, bad),
            Err(Error::InvalidOrder { .. })
        ));
    }
}

#[test]
fn renyi_orders_at_the_edges_f64() {
    renyi_orders_at_the_edges::<f64>();
}

#[test]
fn renyi_orders_at_the_edges_f32() {
    renyi_orders_at_the_edges::<f32>();
}

// Sizes past the address space.

/// Sizes whose probabilities would exceed `isize::MAX` bytes are rejected
/// instead of panicking in the allocator.
fn sizes_past_address_space<F: Real>() {
    let fits = isize::MAX.unsigned_abs() / std::mem::size_of::<F>();
    for len in [fits + 1, usize::MAX] {
        assert!(matches!(
            Distribution::<F>::uniform(len),
            Err(Error::InvalidParameter {
                name: "vocabulary size",
                ..
            })
        ));
    }
    let two = Distribution::<F>::uniform(2).unwrap();
    for n_inputs in [fits / 2 + 1, usize::MAX] {
        assert!(matches!(
            DistributionBatch::repeat(&two, n_inputs),
            Err(Error::InvalidParameter {
                name: "number of inputs",
                ..
            })
        ));
    }
}

#[test]
fn sizes_past_address_space_f64() {
    sizes_past_address_space::<f64>();
}

#[test]
fn sizes_past_address_space_f32() {
    sizes_past_address_space::<f32>();
}
