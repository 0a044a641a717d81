//! The fused kernels allocate nothing that grows with the size of their input.
//!
//! A counting global allocator (`stats_alloc`) records the bytes requested while each kernel
//! runs on a 64 × 8192 batch (4 MiB per `f64` input). This file is its own
//! test binary, so no other test shares the allocator. The tests inside it
//! take a lock so that one kernel's count never includes another's.

use std::alloc::System;
use std::sync::Mutex;

use metadistill::kernels::{
    cross_entropy_rows, entropy_rows, js_rows, kl_from_logits_rows, kl_rows, reverse_kl_rows,
};
use ndarray::{Array1, Array2};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

/// The system allocator, counting the bytes requested from every thread.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static SERIAL: Mutex<()> = Mutex::new(());

const ROWS: usize = 64;
const COLUMNS: usize = 8192;

/// Bytes a kernel may allocate: a fixed amount for the thread pool's
/// bookkeeping, far below one input (`ROWS × COLUMNS × 8` = 4 MiB).
const ALLOWANCE: usize = 64 * 1024;

fn softmax_rows(shift: f64) -> Array2<f64> {
    let mut matrix = Array2::from_shape_fn((ROWS, COLUMNS), |(r, c)| {
        ((r * 31 + c * 17) % 97) as f64 * shift
    });
    for mut row in matrix.rows_mut() {
        row.mapv_inplace(f64::exp);
        let sum: f64 = row.sum();
        row.mapv_inplace(|value| value / sum);
    }
    matrix
}

/// Returns the bytes allocated while `run` executes.
fn bytes_allocated(run: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    run();
    let change = region.change();
    change.bytes_allocated + change.bytes_reallocated.max(0) as usize
}

#[test]
fn probability_kernels_allocate_no_input_sized_buffer() {
    let _guard = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let p = softmax_rows(0.05);
    let q = softmax_rows(0.04);
    let mut out = Array1::zeros(ROWS);
    // Warm up the thread pool, whose first use allocates its workers.
    kl_rows(p.view(), q.view(), out.view_mut()).expect("valid rows");

    type Kernel = for<'a, 'b, 'c> fn(
        ndarray::ArrayView2<'a, f64>,
        ndarray::ArrayView2<'b, f64>,
        ndarray::ArrayViewMut1<'c, f64>,
    ) -> metadistill::Result<()>;
    let kernels: [(&str, Kernel); 4] = [
        ("KL", kl_rows::<f64>),
        ("reverse KL", reverse_kl_rows::<f64>),
        ("JS", js_rows::<f64>),
        ("cross-entropy", cross_entropy_rows::<f64>),
    ];
    for (name, kernel) in kernels {
        let bytes = bytes_allocated(|| kernel(p.view(), q.view(), out.view_mut()).expect("valid"));
        assert!(bytes < ALLOWANCE, "{name} allocated {bytes} bytes");
    }
    let bytes = bytes_allocated(|| entropy_rows(p.view(), out.view_mut()).expect("valid rows"));
    assert!(bytes < ALLOWANCE, "entropy allocated {bytes} bytes");
}

#[test]
fn logits_kernel_allocates_no_probability_matrix() {
    let _guard = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let teacher = softmax_rows(0.05).mapv(f64::ln);
    let student = softmax_rows(0.03).mapv(f64::ln);
    let mut out = Array1::zeros(ROWS);
    kl_from_logits_rows(teacher.view(), student.view(), 2.0, out.view_mut()).expect("valid");

    let bytes = bytes_allocated(|| {
        kl_from_logits_rows(teacher.view(), student.view(), 2.0, out.view_mut()).expect("valid")
    });
    assert!(bytes < ALLOWANCE, "logits KL allocated {bytes} bytes");
}

#[test]
fn counter_sees_an_input_sized_allocation() {
    let _guard = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // The textbook `(p * (p / q).ln()).sum()` builds a temporary the size of the
    // input; the counter must see it, or the tests above prove nothing.
    let p = softmax_rows(0.05);
    let q = softmax_rows(0.04);
    let bytes = bytes_allocated(|| {
        let terms = &p * &(&p / &q).mapv(f64::ln);
        assert!(terms.sum() > 0.0);
    });
    assert!(bytes >= ROWS * COLUMNS * 8, "counted only {bytes} bytes");
}
