//! Software prefetch: the one place in the crate with `unsafe` code.
//!
//! A row kernel that does much arithmetic per entry consumes memory slower
//! than the hardware prefetchers expect, and they stop at every 4 KiB page.
//! Asking for the cache lines a fixed distance ahead keeps loads in flight
//! while the arithmetic runs. At `B = 256`, `V = 131072`, `f64` on two
//! threads of a 2-core AVX-512 Xeon, this, narrower running sums and a
//! cheaper entry check took the KL kernel from 1.06 to about 0.69 ns per
//! entry (medians, see BENCHMARKS.md).
//!
//! The `unsafe` block calls `_mm_prefetch`, which Rust marks unsafe because
//! it takes a raw pointer. The instruction it emits (`PREFETCHT0`) is a hint:
//! it reads nothing into a register, writes nothing, and never faults, for
//! any address. The addresses passed here all lie inside a slice the caller
//! borrows, which [`line_offsets`] and its test make explicit. On other
//! architectures the functions do nothing.

#![allow(unsafe_code)]

use super::lanes::LANES;

/// How far ahead of the block being read the kernels prefetch, in bytes.
///
/// Timed on the KL kernel at the shape above: 1 to 6 KiB measured the same
/// within noise, 0.5 KiB slower.
const DISTANCE_BYTES: usize = 2048;

/// The size of a cache line on the CPUs this targets.
const LINE_BYTES: usize = 64;

/// Returns the block `LANES` entries long that starts `DISTANCE_BYTES` after
/// `start`, or `None` when that block does not fit in `row`.
#[inline(always)]
fn block_ahead<F>(row: &[F], start: usize) -> Option<&[F]> {
    let ahead = start + DISTANCE_BYTES / size_of::<F>();
    row.get(ahead..ahead + LANES)
}

/// Returns the byte offsets, one per cache line, that cover a block of `bytes` bytes.
///
/// Every offset is below `bytes`, so it addresses a byte of the block.
#[inline(always)]
fn line_offsets(bytes: usize) -> impl Iterator<Item = usize> {
    (0..bytes).step_by(LINE_BYTES)
}

/// Asks the CPU to load the block `DISTANCE_BYTES` after `row[start]` into the
/// cache. Has no effect on any value and does nothing past the end of the row.
#[inline(always)]
pub(crate) fn prefetch_ahead<F>(row: &[F], start: usize) {
    let Some(block) = block_ahead(row, start) else {
        return;
    };
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let base = block.as_ptr().cast::<i8>();
        for offset in line_offsets(size_of_val(block)) {
            // SAFETY: `base + offset` lies inside `block` (see `line_offsets`).
            // A prefetch hint neither reads into a register nor writes nor
            // faults, and `wrapping_add` keeps the pointer arithmetic defined.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = block;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_offsets_of_small_blocks() {
        for bytes in [0, 1, 63, 64, 65, 128, 255, 256] {
            let offsets: Vec<usize> = line_offsets(bytes).collect();
            assert!(
                offsets.iter().all(|&offset| offset < bytes),
                "{bytes}: {offsets:?}"
            );
            // One offset per started 64-byte line.
            assert_eq!(offsets.len(), bytes.div_ceil(LINE_BYTES), "{bytes}");
        }
    }

    #[test]
    fn block_ahead_at_every_start() {
        let distance = DISTANCE_BYTES / size_of::<f64>();
        let row = vec![0.0_f64; distance + 2 * LANES];
        for start in 0..row.len() + 2 {
            match block_ahead(&row, start) {
                Some(block) => {
                    assert_eq!(block.len(), LANES);
                    assert!(start + distance + LANES <= row.len(), "{start}");
                    assert!(std::ptr::eq(block.as_ptr(), &row[start + distance]));
                }
                None => assert!(start + distance + LANES > row.len(), "{start}"),
            }
        }
        assert!(block_ahead(&[] as &[f32], 0).is_none());
    }

    #[test]
    fn prefetch_ahead_at_every_start() {
        let row: Vec<f32> = (0..3000).map(|i| i as f32).collect();
        let copy = row.clone();
        for start in 0..row.len() + 40 {
            prefetch_ahead(&row, start);
        }
        assert_eq!(row, copy);
    }
}
