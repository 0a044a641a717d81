//! Checks several meta-teacher operators against the properties of "Recursive
//! Meta-Distillation: An Axiomatic Framework for Iterative Knowledge
//! Refinement" (Flouro and Chadwick) and prints a table of operators by
//! properties, then the full report of the operators that fail something.
//!
//! Run with `cargo run --release --example axiom_report`.

use std::time::Instant;

use metadistill::axioms::{Checker, Property, Report, summary_table};
use metadistill::{ConvexMixture, Error, MetaTeacherOperator, Result};
use ndarray::{ArrayView1, ArrayViewMut1};

/// Geometric (log-linear) pooling `q ∝ T0^a S_g^(1-a)`.
struct GeometricPool {
    anchor: f64,
}

impl MetaTeacherOperator for GeometricPool {
    fn anchor_weight(&self) -> f64 {
        self.anchor
    }

    fn combine_into(
        &self,
        teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ArrayViewMut1<f64>,
    ) -> Result<()> {
        let student = students.last().ok_or(Error::Empty {
            what: "student history",
        })?;
        for ((q, &t), &s) in out.iter_mut().zip(teachers[0]).zip(student) {
            *q = t.powf(self.anchor) * s.powf(1.0 - self.anchor);
        }
        let total = out.sum();
        out /= total;
        Ok(())
    }

    fn name(&self) -> String {
        format!("GeometricPool(a = {})", self.anchor)
    }
}

/// The convex mixture followed by tempering: `q ∝ (a T0 + (1 - a) S_g)^(1/τ)`.
struct TemperedMixture {
    anchor: f64,
    temperature: f64,
}

impl MetaTeacherOperator for TemperedMixture {
    fn anchor_weight(&self) -> f64 {
        self.anchor
    }

    fn combine_into(
        &self,
        teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ArrayViewMut1<f64>,
    ) -> Result<()> {
        let student = students.last().ok_or(Error::Empty {
            what: "student history",
        })?;
        let a = self.anchor;
        for ((q, &t), &s) in out.iter_mut().zip(teachers[0]).zip(student) {
            *q = (a * t + (1.0 - a) * s).powf(1.0 / self.temperature);
        }
        let total = out.sum();
        out /= total;
        Ok(())
    }

    fn name(&self) -> String {
        format!("Tempered(a = {}, tau = {})", self.anchor, self.temperature)
    }
}

/// Random cases per property, the checker's default.
const CASES: u32 = 64;

fn main() -> Result<()> {
    let checker = Checker::<f64>::new().with_cases(CASES)?;
    let started = Instant::now();
    let mut reports: Vec<Report> = Vec::new();

    for anchor in [0.1, 0.3, 0.7] {
        reports.push(checker.check_family(anchor, |a| {
            if a > 0.0 {
                ConvexMixture::new(a)
            } else {
                Ok(ConvexMixture::unanchored())
            }
        })?);
    }
    reports.push(checker.check_family(0.3, |anchor| Ok(GeometricPool { anchor }))?);
    reports.push(checker.check_family(0.3, |anchor| {
        Ok(TemperedMixture {
            anchor,
            temperature: 2.0,
        })
    })?);
    reports.push(checker.check(&ConvexMixture::unanchored()));
    let elapsed = started.elapsed();

    println!("ok = holds, FAIL = violated (see the reports below), - = not applicable\n");
    println!("{}", summary_table(&reports));
    println!(
        "{} operators checked in {:.2} s ({} cases per property, seed {})\n",
        reports.len(),
        elapsed.as_secs_f64(),
        CASES,
        reports[0].seed
    );

    print_key_numbers(&reports);
    for report in reports.iter().skip(3) {
        println!("{report}");
    }
    Ok(())
}

/// Prints the smallest a*, the contraction ratios and the limit offset, one line per operator.
fn print_key_numbers(reports: &[Report]) {
    let value = |report: &Report, property: Property, name: &str| {
        report
            .row(property)
            .and_then(|row| row.measurement(name))
            .map_or(String::from("-"), |v| format!("{v:.4}"))
    };
    println!(
        "{:<30} {:>10} {:>12} {:>12} {:>14}",
        "operator", "min a*", "worst ratio", "asymptotic", "limit offset"
    );
    for report in reports {
        println!(
            "{:<30} {:>10} {:>12} {:>12} {:>14}",
            report.operator,
            value(report, Property::Anchoring, "smallest a*"),
            value(report, Property::Contraction, "worst ratio"),
            value(report, Property::Contraction, "asymptotic ratio"),
            value(report, Property::FixedPoint, "largest limit offset"),
        );
    }
    println!();
}
