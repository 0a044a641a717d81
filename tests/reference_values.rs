//! Compares every divergence with 60-digit references on the exact f64 inputs.
//!
//! The references are in `tests/data/reference_values.tsv`, produced by
//! `python3 scripts/reference_values.py > tests/data/reference_values.tsv`
//! (mpmath 1.3.0, `mp.dps = 60`). The cases include near-equal pairs
//! `q = p (1 + d)` with `d` down to 1e-12 and probabilities near the smallest
//! normal f64, where the textbook formulas lose every digit.

use metadistill::Distribution;
use metadistill::divergence::{
    chi_squared, hellinger, js, js_distance, kl, renyi, reverse_kl, squared_hellinger,
    total_variation,
};

/// The largest relative error accepted against a reference: about 450 ulps of
/// f64, which leaves room for the rounding of the inputs' ratios and of the
/// compensated sums over up to 1000 tokens.
const RELATIVE_TOLERANCE: f64 = 1e-13;

/// One row of the reference table.
struct Case {
    name: String,
    function: String,
    order: Option<f64>,
    p: Vec<f64>,
    q: Option<Vec<f64>>,
    reference: f64,
}

fn parse_values(field: &str) -> Vec<f64> {
    field
        .split(',')
        .map(|v| v.parse().expect("reference table holds floats"))
        .collect()
}

fn load_cases() -> Vec<Case> {
    let text = include_str!("data/reference_values.tsv");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("name\t"))
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 6, "malformed row: {line}");
            Case {
                name: fields[0].to_string(),
                function: fields[1].to_string(),
                order: (fields[2] != "-").then(|| fields[2].parse().expect("order")),
                p: parse_values(fields[3]),
                q: (fields[4] != "-").then(|| parse_values(fields[4])),
                reference: fields[5].parse().expect("reference"),
            }
        })
        .collect()
}

fn evaluate(case: &Case) -> f64 {
    let p = Distribution::from_probs(&case.p).expect("reference p is a distribution");
    if case.function == "entropy" {
        return p.entropy();
    }
    let q_values = case.q.as_ref().expect("two-argument function has q");
    let q = Distribution::from_probs(q_values).expect("reference q is a distribution");
    let value = match case.function.as_str() {
        "kl" => kl(&p, &q),
        "reverse_kl" => reverse_kl(&p, &q),
        "js" => js(&p, &q),
        "js_distance" => js_distance(&p, &q),
        "renyi" => renyi(&p, &q, case.order.expect("renyi has an order")),
        "total_variation" => total_variation(&p, &q),
        "hellinger" => hellinger(&p, &q),
        "squared_hellinger" => squared_hellinger(&p, &q),
        "chi_squared" => chi_squared(&p, &q),
        "cross_entropy" => p.cross_entropy(&q),
        other => panic!("unknown function {other} in the reference table"),
    };
    value.expect("vocabularies match")
}

fn relative_error(value: f64, reference: f64) -> f64 {
    if reference == 0.0 {
        value.abs()
    } else {
        ((value - reference) / reference).abs()
    }
}

#[test]
fn reference_table_is_large() {
    let cases = load_cases();
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    assert!(cases.iter().any(|c| c.name.contains("d1em12")));
    assert!(cases.iter().any(|c| c.name.starts_with("tiny")));
}

#[test]
fn divergences_match_references() {
    let mut failures = Vec::new();
    let mut worst = (0.0_f64, String::new());
    for case in load_cases() {
        let value = evaluate(&case);
        if case.reference.is_infinite() {
            if value != f64::INFINITY {
                failures.push(format!("{}: expected inf, got {value}", case.name));
            }
            continue;
        }
        let error = relative_error(value, case.reference);
        if error > worst.0 {
            worst = (error, case.name.clone());
        }
        if error > RELATIVE_TOLERANCE {
            failures.push(format!(
                "{} ({}): got {value:e}, reference {:e}, relative error {error:.2e}",
                case.name, case.function, case.reference
            ));
        }
    }
    println!("worst relative error {:.3e} in {}", worst.0, worst.1);
    assert!(
        failures.is_empty(),
        "{} cases off (worst {:.2e} in {}):\n{}",
        failures.len(),
        worst.0,
        worst.1,
        failures.join("\n")
    );
}

/// The textbook sum must fail on these cases, or the table would not test anything.
#[test]
fn textbook_kl_fails_on_near_equal_cases() {
    let case = load_cases()
        .into_iter()
        .find(|c| c.function == "kl" && c.name.contains("d1em12"))
        .expect("a near-equal KL case with d = 1e-12");
    let q = case.q.as_ref().expect("kl has q");
    let textbook: f64 = case
        .p
        .iter()
        .zip(q)
        .filter(|&(&p, _)| p > 0.0)
        .map(|(&p, &q)| p * (p / q).ln())
        .sum();
    let error = relative_error(textbook, case.reference);
    assert!(error > 1e-3, "textbook error only {error:e}");
    let ours = relative_error(evaluate(&case), case.reference);
    assert!(ours <= RELATIVE_TOLERANCE, "crate error {ours:e}");
}
