//! Pins the numbers of the 3-token appendix of the paper "Recursive
//! Meta-Distillation: An Axiomatic Framework for Iterative Knowledge
//! Refinement", computed by the crate's recursion.
//!
//! References: mpmath 1.3.0 at 60 digits on the exact f64 inputs,
//! T0 = (0.6, 0.3, 0.1), S0 = (0.2, 0.5, 0.3), S_{g+1} = 0.3 T0 + 0.7 S_g:
//!
//! ```text
//! python3 -c "from mpmath import mp, mpf, log; mp.dps = 60
//! t = [mpf(0.6), mpf(0.3), mpf(0.1)]; s = [mpf(0.2), mpf(0.5), mpf(0.3)]; a = mpf(0.3)
//! kl = lambda p, q: sum(x * log(x / y) for x, y in zip(p, q))
//! d0 = kl(t, s); print(d0, d0 / log(2))
//! for g in range(11):
//!     print(g, kl(t, s), (1 - a)**g * d0); s = [a * x + (1 - a) * y for x, y in zip(t, s)]"
//! ```

// The references keep the 25 digits mpmath printed; f64 rounds them on parsing.
#![allow(clippy::excessive_precision)]

use approx::assert_relative_eq;
use metadistill::recursion::{run_exact, run_exact_batch};
use metadistill::{ConvexMixture, Distribution, DistributionBatch, Error};
use ndarray::array;

const D0_NATS: f64 = 0.396_058_457_204_257_558_553_132_7;
const D0_BITS: f64 = 0.571_391_572_110_716_122_237_125_8;
/// D(S_g) at g = 0, 2, 5, 10 for a = 0.3.
const ANCHORED: [f64; 4] = [
    0.396_058_457_204_257_558_553_132_7,
    0.084_198_322_693_882_381_489_075_2,
    0.010_462_519_537_318_673_005_637_14,
    0.000_314_098_531_433_050_080_804_420_2,
];
/// (1 - a)^g D(S_0) at g = 0, 2, 5, 10 for a = 0.3.
const BOUND: [f64; 4] = [
    0.396_058_457_204_257_558_553_132_7,
    0.194_068_644_030_086_209_847_020_1,
    0.066_565_544_902_319_573_144_782_2,
    0.011_187_671_131_732_851_545_644_26,
];
const GENERATIONS: [usize; 4] = [0, 2, 5, 10];

/// Tolerance of the trajectory: ten f64 mixing steps, each rounding once per
/// token, stay within a few ulps of the exact recursion.
const TRAJECTORY_TOLERANCE: f64 = 1e-13;

fn appendix() -> (Distribution, Distribution) {
    (
        Distribution::from_probs(&[0.6, 0.3, 0.1]).unwrap(),
        Distribution::from_probs(&[0.2, 0.5, 0.3]).unwrap(),
    )
}

#[test]
fn initial_divergence_in_nats_and_bits() {
    let (teacher, start) = appendix();
    let d0 = metadistill::divergence::kl(&teacher, &start).unwrap();
    assert_relative_eq!(d0, D0_NATS, max_relative = 1e-15);
    assert_relative_eq!(d0 / std::f64::consts::LN_2, D0_BITS, max_relative = 1e-15);
    // The paper prints 0.584, which is neither.
    assert!((d0 - 0.584).abs() > 0.1);
    assert!((d0 / std::f64::consts::LN_2 - 0.584).abs() > 0.01);
}

#[test]
fn anchored_trajectory_matches_reference() {
    let (teacher, start) = appendix();
    let run = run_exact(&ConvexMixture::new(0.3).unwrap(), &[teacher], &start, 10).unwrap();
    assert_eq!(run.records().len(), 11);
    for (i, &g) in GENERATIONS.iter().enumerate() {
        let record = run.records()[g];
        assert_eq!(record.generation, g);
        assert_relative_eq!(
            record.divergence,
            ANCHORED[i],
            max_relative = TRAJECTORY_TOLERANCE
        );
        assert_relative_eq!(record.bound, BOUND[i], max_relative = TRAJECTORY_TOLERANCE);
        assert!(record.divergence <= record.bound);
    }
    // The printed table rounds to four places.
    let printed: Vec<String> = GENERATIONS
        .iter()
        .map(|&g| format!("{:.4}", run.records()[g].divergence))
        .collect();
    assert_eq!(printed, ["0.3961", "0.0842", "0.0105", "0.0003"]);
}

#[test]
fn anchored_ratio_tends_to_square_of_contraction_factor() {
    let (teacher, start) = appendix();
    // Past g = 40 or so D(S_g) falls below 1e-15, where the rounding of the
    // iterates' sums (about 1e-16) dominates it; 30 generations stay clear.
    let run = run_exact(&ConvexMixture::new(0.3).unwrap(), &[teacher], &start, 30).unwrap();
    let records = run.records();
    assert!(records[0].ratio.is_none());
    for record in &records[1..] {
        let ratio = record.ratio.expect("D stays positive");
        assert!(ratio <= 0.7, "g = {}: ratio {ratio}", record.generation);
        let a_star = record.effective_anchor_weight.expect("after generation 0");
        assert!(a_star >= 0.3 - 1e-15);
    }
    let last = records[30].ratio.unwrap();
    assert!((last - 0.49).abs() < 2e-3, "asymptotic ratio {last}");
}

#[test]
fn unanchored_exact_students_do_not_drift() {
    let (teacher, start) = appendix();
    let run = run_exact(&ConvexMixture::unanchored(), &[teacher], &start, 10).unwrap();
    for record in run.records() {
        assert_eq!(record.divergence, run.records()[0].divergence);
        assert_eq!(record.bound, run.records()[0].divergence);
    }
    assert_relative_eq!(run.records()[10].divergence, D0_NATS, max_relative = 1e-15);
    assert_eq!(
        run.final_student().row(0).unwrap().to_vec(),
        vec![0.2, 0.5, 0.3]
    );
}

#[test]
fn batch_recursion_averages_over_inputs() {
    let teacher = DistributionBatch::from_probs(&array![[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]])
        .unwrap()
        .with_input_weights(&array![1.0, 3.0])
        .unwrap();
    let start = DistributionBatch::from_probs(&array![[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
        .unwrap()
        .with_input_weights(&array![1.0, 3.0])
        .unwrap();
    let run = run_exact_batch(&ConvexMixture::new(0.3).unwrap(), &[teacher], &start, 2).unwrap();
    // The second input starts at the teacher, so D is a quarter of the single-input value.
    assert_relative_eq!(
        run.records()[0].divergence,
        D0_NATS / 4.0,
        max_relative = 1e-15
    );
    assert_relative_eq!(
        run.records()[2].divergence,
        ANCHORED[1] / 4.0,
        max_relative = TRAJECTORY_TOLERANCE
    );
    assert_eq!(run.students().len(), 3);
    assert_eq!(run.divergences().len(), 3);
}

#[test]
fn recursion_rejects_bad_inputs() {
    let (teacher, start) = appendix();
    let operator = ConvexMixture::new(0.3).unwrap();
    assert!(matches!(
        run_exact(&operator, &[], &start, 3),
        Err(Error::Empty { .. })
    ));
    let short = Distribution::from_probs(&[0.5, 0.5]).unwrap();
    assert!(matches!(
        run_exact(&operator, std::slice::from_ref(&teacher), &short, 3),
        Err(Error::VocabularyMismatch { .. })
    ));
    let zero = run_exact(&operator, &[teacher], &start, 0).unwrap();
    assert_eq!(zero.records().len(), 1);
}

#[test]
fn f32_trajectory_matches_f64_to_single_precision() {
    let teacher = Distribution::<f32>::from_probs(&[0.6_f32, 0.3, 0.1]).unwrap();
    let start = Distribution::<f32>::from_probs(&[0.2_f32, 0.5, 0.3]).unwrap();
    let run = run_exact(
        &ConvexMixture::new(0.3_f32).unwrap(),
        &[teacher],
        &start,
        10,
    )
    .unwrap();
    for (i, &g) in GENERATIONS.iter().enumerate() {
        // Rounding the inputs to f32 moves D by about 1e-7 relative; ten steps add a little.
        assert_relative_eq!(
            f64::from(run.records()[g].divergence),
            ANCHORED[i],
            max_relative = 1e-5
        );
    }
}
