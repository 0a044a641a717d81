//! Fuzzes the `Distribution` constructors and its methods, in f32 and f64.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use metadistill::{Distribution, Error};
use metadistill_fuzz::{FuzzFloat, distribution, length};

fn run<F: FuzzFloat>(u: &mut Unstructured) -> Result<()> {
    let len = length(u)?;
    let first = distribution::<F>(u, len)?;
    let other_len = if u.arbitrary::<bool>()? {
        len
    } else {
        length(u)?
    };
    let second = distribution::<F>(u, other_len)?;

    if let (Some(p), Some(q)) = (&first, &second) {
        match p.cross_entropy(q) {
            Ok(h) => {
                assert!(!h.is_nan(), "cross-entropy is NaN");
                assert!(h >= F::zero(), "cross-entropy {h} < 0");
                let bits = p.cross_entropy_bits(q);
                assert!(matches!(bits, Ok(b) if !b.is_nan() && b >= F::zero()));
            }
            Err(error) => {
                assert!(
                    p.len() != q.len(),
                    "cross-entropy failed on equal lengths: {error:?}"
                );
                assert!(matches!(error, Error::VocabularyMismatch { .. }));
            }
        }
    }
    if let Some(p) = &first {
        let bits = p.entropy_bits();
        assert!(
            !bits.is_nan() && bits >= F::zero(),
            "entropy in bits is {bits}"
        );
        let copy: Distribution<F> = p.clone();
        assert_eq!(copy.into_probs().to_vec(), p.as_slice().to_vec());
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
