//! The streaming recursion matches the full one and reuses its buffers.
//!
//! A counting global allocator (`stats_alloc`) records the bytes requested
//! while the recursion runs. This file is its own test binary, so no other
//! test shares the allocator; the tests take a lock so counts never mix.

use std::alloc::System;
use std::sync::Mutex;

use metadistill::operator::{GeneralizedMixture, HistoryWeights};
use metadistill::recursion::{run_exact_batch, run_exact_streaming};
use metadistill::{ConvexMixture, DistributionBatch, MetaTeacherOperator};
use ndarray::Array2;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

/// The system allocator, counting the bytes requested from every thread.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static SERIAL: Mutex<()> = Mutex::new(());

/// Builds a batch of softmax rows with a deterministic pattern.
fn softmax_batch(rows: usize, columns: usize, shift: f64) -> DistributionBatch {
    let logits = Array2::from_shape_fn((rows, columns), |(r, c)| {
        ((r * 31 + c * 17) % 97) as f64 * shift
    });
    DistributionBatch::from_logits(&logits, 1.0).unwrap()
}

fn assert_same_as_full<O: MetaTeacherOperator<f64>>(operator: &O) {
    let teacher = softmax_batch(3, 50, 0.05);
    let start = softmax_batch(3, 50, -0.03);
    let teachers = [teacher];
    let (records, last) = run_exact_streaming(operator, &teachers, &start, 12).unwrap();
    let full = run_exact_batch(operator, &teachers, &start, 12).unwrap();
    assert_eq!(records.as_slice(), full.records());
    assert_eq!(&last, full.final_student());
}

#[test]
fn streaming_matches_full_history() {
    let _guard = SERIAL.lock().unwrap();
    assert_same_as_full(&ConvexMixture::new(0.3).unwrap());
    let window =
        GeneralizedMixture::single_teacher(0.3, HistoryWeights::Window { length: 3 }).unwrap();
    assert_same_as_full(&window);
}

/// Bytes requested by a streaming run of `generations` generations over a
/// 2 × 50 000 batch (800 KB per batch in f64).
fn bytes_for(generations: usize) -> usize {
    let teacher = softmax_batch(2, 50_000, 0.05);
    let start = softmax_batch(2, 50_000, -0.03);
    let teachers = [teacher];
    let operator = ConvexMixture::new(0.3).unwrap();
    let region = Region::new(GLOBAL);
    let (records, _) = run_exact_streaming(&operator, &teachers, &start, generations).unwrap();
    assert_eq!(records.len(), generations + 1);
    region.change().bytes_allocated
}

#[test]
fn streaming_allocates_nothing_per_generation() {
    let _guard = SERIAL.lock().unwrap();
    let short = bytes_for(5);
    let long = bytes_for(45);
    let per_generation = long.saturating_sub(short) / 40;
    // One batch is 800 000 bytes; a generation may allocate only small
    // bookkeeping (row views, one record), far below that.
    assert!(
        per_generation < 4096,
        "{per_generation} bytes per generation ({short} for 5, {long} for 45)"
    );
}

/// Bytes requested by a streaming run of the Jensen-Shannon projection over a
/// 1 × 5000 batch (40 KB per batch in f64).
fn projection_bytes_for(generations: usize) -> usize {
    use metadistill::Divergence;
    use metadistill::operator::{IterativeProjection, MirrorDescent};

    let teacher = softmax_batch(1, 5_000, 0.05);
    let start = softmax_batch(1, 5_000, -0.03);
    let teachers = [teacher];
    let weighting = GeneralizedMixture::single_teacher(0.3, HistoryWeights::Latest).unwrap();
    let operator = IterativeProjection::new(
        Divergence::JensenShannon,
        weighting,
        MirrorDescent::new(1e-9, 10_000).unwrap(),
    )
    .unwrap();
    let region = Region::new(GLOBAL);
    let (records, _) = run_exact_streaming(&operator, &teachers, &start, generations).unwrap();
    assert_eq!(records.len(), generations + 1);
    region.change().bytes_allocated
}

#[test]
fn iterative_projection_reuses_solver_vectors() {
    let _guard = SERIAL.lock().unwrap();
    let short = projection_bytes_for(2);
    let long = projection_bytes_for(6);
    let per_generation = long.saturating_sub(short) / 4;
    // The solver's four work vectors alone would be 160 000 bytes per call.
    assert!(
        per_generation < 4096,
        "{per_generation} bytes per generation ({short} for 2, {long} for 6)"
    );
}
