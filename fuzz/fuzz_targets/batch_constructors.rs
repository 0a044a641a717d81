//! Fuzzes the `DistributionBatch` constructors and input weights, in f32 and f64.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use metadistill_fuzz::{FuzzFloat, MAX_ROWS, batch, length};

fn run<F: FuzzFloat>(u: &mut Unstructured) -> Result<()> {
    let rows = u.int_in_range(0..=MAX_ROWS)?;
    let len = length(u)?;
    if let Some(batch) = batch::<F>(u, rows, len)? {
        assert_eq!(batch.n_inputs(), rows);
        assert_eq!(batch.vocab_size(), len);
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
