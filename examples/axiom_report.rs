//! Checks every built-in meta-teacher operator and combinator against the
//! properties of "Recursive Meta-Distillation: An Axiomatic Framework for
//! Iterative Knowledge Refinement" (Flouro and Chadwick). It prints a table of
//! operators by properties, then the key numbers next to what each operator
//! declares about itself, then two full reports with their counterexamples.
//!
//! Run with `cargo run --release --example axiom_report`.

use std::time::Instant;

use metadistill::axioms::{Checker, Property, Report, find_limit, summary_table};
use metadistill::divergence::kl;
use metadistill::{
    ConvexCombination, ConvexMixture, Distribution, Divergence, GeneralizedMixture, HistoryWeights,
    InformationProjection, Iterate, IterativeProjection, MirrorDescent, OperatorProperties,
    PostMap, PostMapped, PowerMeanProjection, Result, TemperedMixture, Weights,
};

/// Random cases per property, the checker's default.
const CASES: u32 = 64;

/// The anchor weight every operator is built with, unless its label names another.
const ANCHOR: f64 = 0.3;

/// A report under a short label, with the guarantees the operator declares.
struct Entry {
    report: Report,
    anchors_pointwise: bool,
    contraction_factor: Option<f64>,
    fixes_teacher: bool,
}

/// Labels a report and records the operator's declared guarantees.
fn entry<O: OperatorProperties>(label: &str, mut report: Report, operator: &O) -> Entry {
    report.operator = label.to_string();
    Entry {
        report,
        anchors_pointwise: operator.anchors_pointwise(),
        contraction_factor: operator.contraction_factor(),
        fixes_teacher: operator.fixes_teacher(),
    }
}

fn mixture(anchor: f64) -> Result<ConvexMixture> {
    if anchor > 0.0 {
        ConvexMixture::new(anchor)
    } else {
        Ok(ConvexMixture::unanchored())
    }
}

fn history(anchor: f64, scheme: &HistoryWeights) -> Result<GeneralizedMixture> {
    GeneralizedMixture::single_teacher(anchor, scheme.clone())
}

fn projection(kind: PowerMeanProjection) -> impl Fn(f64) -> Result<InformationProjection> {
    move |anchor| InformationProjection::single_teacher(kind, anchor)
}

fn jensen_shannon(anchor: f64) -> Result<IterativeProjection> {
    let weighting = GeneralizedMixture::single_teacher(anchor, HistoryWeights::Latest)?;
    IterativeProjection::new(
        Divergence::JensenShannon,
        weighting,
        MirrorDescent::default(),
    )
}

fn main() -> Result<()> {
    let checker = Checker::<f64>::new().with_cases(CASES)?;
    let started = Instant::now();
    let entries = check_all(&checker)?;
    let elapsed = started.elapsed();

    let reports: Vec<Report> = entries.iter().map(|e| e.report.clone()).collect();
    println!("ok = holds, FAIL = violated, - = not applicable; a = {ANCHOR} unless named\n");
    println!("{}", summary_table(&reports));
    println!(
        "{} operators checked in {:.2} s ({} cases per property, seed {})\n",
        entries.len(),
        elapsed.as_secs_f64(),
        CASES,
        reports[0].seed
    );
    print_key_numbers(&entries);
    print_tempered_offset()?;

    for label in ["geometric pool", "tempered tau=2"] {
        if let Some(found) = entries.iter().find(|e| e.report.operator == label) {
            println!("{}", found.report);
        }
    }
    Ok(())
}

/// Checks every built-in operator and combinator.
fn check_all(checker: &Checker) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let a = ANCHOR;

    let report = checker.check_family(a, mixture)?;
    entries.push(entry("mixture", report, &mixture(a)?));
    let unanchored = ConvexMixture::unanchored();
    entries.push(entry(
        "mixture a=0",
        checker.check(&unanchored),
        &unanchored,
    ));

    let schemes = [
        ("history window 3", HistoryWeights::Window { length: 3 }),
        (
            "history decay 0.5",
            HistoryWeights::ExponentialDecay {
                decay: 0.5,
                length: usize::MAX,
            },
        ),
        (
            "history quality",
            HistoryWeights::Quality {
                sharpness: 2.0,
                length: 3,
            },
        ),
    ];
    for (label, scheme) in &schemes {
        let report = checker.check_family(a, |anchor| history(anchor, scheme))?;
        entries.push(entry(label, report, &history(a, scheme)?));
    }
    let two_teachers =
        |anchor| GeneralizedMixture::new(anchor, Weights::uniform(2)?, HistoryWeights::Latest);
    let report = checker
        .clone()
        .with_teachers(2)?
        .check_family(a, two_teachers)?;
    entries.push(entry("two teachers", report, &two_teachers(a)?));

    let report = checker.check_family(a, InformationProjection::geometric)?;
    entries.push(entry(
        "geometric pool",
        report,
        &InformationProjection::geometric(a)?,
    ));
    let projections = [
        ("Hellinger pool", PowerMeanProjection::SquaredHellinger, a),
        ("chi2 pool", PowerMeanProjection::ChiSquared, a),
        ("chi2 pool a=0.7", PowerMeanProjection::ChiSquared, 0.7),
        (
            "Amari -1 pool",
            PowerMeanProjection::Amari { order: -1.0 },
            a,
        ),
    ];
    for (label, kind, anchor) in projections {
        let report = checker.check_family(anchor, projection(kind))?;
        entries.push(entry(label, report, &projection(kind)(anchor)?));
    }
    let report = checker.check_family(a, jensen_shannon)?;
    entries.push(entry("Jensen-Shannon pool", report, &jensen_shannon(a)?));

    let tempered = |anchor| TemperedMixture::new(anchor, 2.0);
    let report = checker.check_family(a, tempered)?;
    entries.push(entry("tempered tau=2", report, &tempered(a)?));

    let blend = |anchor| {
        ConvexCombination::new(
            ConvexMixture::new(anchor)?,
            InformationProjection::geometric(anchor)?,
            0.5,
        )
    };
    let report = checker.check_family(a, blend)?;
    entries.push(entry("mixture + geometric", report, &blend(a)?));
    let smooth = |anchor| {
        PostMapped::new(
            ConvexMixture::new(anchor)?,
            PostMap::SmoothUniform { epsilon: 0.1 },
        )
    };
    let report = checker.check_family(a, smooth)?;
    entries.push(entry("smooth eps=0.1", report, &smooth(a)?));
    // Tempering and top-k declare a = 0 whatever the inner mixture's weight, so
    // the properties that vary a do not apply and each is checked alone.
    let maps = [
        ("temper after mixture", PostMap::Temper { temperature: 2.0 }),
        ("top-2 after mixture", PostMap::TopK { k: 2 }),
    ];
    for (label, map) in maps {
        let mapped = PostMapped::new(ConvexMixture::new(a)?, map)?;
        entries.push(entry(label, checker.check(&mapped), &mapped));
    }
    let twice = |anchor| Iterate::new(ConvexMixture::new(anchor)?, 2);
    let report = checker.check_family(a, twice)?;
    entries.push(entry("mixture twice", report, &twice(a)?));
    let window = HistoryWeights::Window { length: 3 };
    let twice_window = |anchor| Iterate::new(history(anchor, &window)?, 2);
    let report = checker.check_family(a, twice_window)?;
    entries.push(entry("window 3 twice", report, &twice_window(a)?));
    Ok(entries)
}

/// Prints the measured key numbers next to the declared guarantees, one line per operator.
fn print_key_numbers(entries: &[Entry]) {
    let value = |report: &Report, property: Property, name: &str| {
        report
            .row(property)
            .and_then(|row| row.measurement(name))
            .map_or(String::from("-"), |v| format!("{v:.4}"))
    };
    let yes_no = |flag: bool| if flag { "yes" } else { "no" };
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>9} | {:>9} {:>7} {:>6}",
        "operator", "min a*", "worst", "asympt.", "bound", "offset", "pointwise", "factor", "fixes"
    );
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>9} | {:>9} {:>7} {:>6}",
        "", "", "ratio", "ratio", "1 - a", "of limit", "declared", "", "T0"
    );
    for entry in entries {
        let report = &entry.report;
        println!(
            "{:<22} {:>8} {:>8} {:>8} {:>8} {:>9} | {:>9} {:>7} {:>6}",
            report.operator,
            value(report, Property::Anchoring, "smallest a*"),
            value(report, Property::Contraction, "worst ratio"),
            value(report, Property::Contraction, "asymptotic ratio"),
            value(report, Property::Contraction, "bound 1 - a"),
            value(report, Property::FixedPoint, "largest limit offset"),
            yes_no(entry.anchors_pointwise),
            entry
                .contraction_factor
                .map_or(String::from("-"), |c| format!("{c:.4}")),
            yes_no(entry.fixes_teacher),
        );
    }
    println!();
}

/// Prints the tempered mixture's limit on the appendix's teacher next to its exact fixed point.
fn print_tempered_offset() -> Result<()> {
    let operator = TemperedMixture::new(ANCHOR, 2.0)?;
    let teacher = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
    let start = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
    let limit = find_limit(
        &operator,
        std::slice::from_ref(&teacher),
        &start,
        1e-14,
        5000,
    )?;
    let fixed = operator.fixed_point(&teacher, 1e-14, 10_000)?;
    println!(
        "tempered mixture, T0 = (0.6, 0.3, 0.1), a = {ANCHOR}, tau = 2: the recursion from \
         S0 = (0.2, 0.5, 0.3) settles after {} generations at KL(T0 || limit) = {:.6}; \
         the fixed point p* = temper(a T0 + (1 - a) p*) has KL(T0 || p*) = {:.6}\n",
        limit.generations,
        limit.offset,
        kl(&teacher, &fixed)?
    );
    Ok(())
}
