//! The checker's result: one row per property, printable as a table.

use std::fmt;

use crate::axioms::strategies::History;
use crate::real::Real;

/// A property the checker can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Property {
    /// Axiom 1: the output is a probability distribution within the sum tolerance.
    ValidOutput,
    /// Axiom 2: strictly positive inputs give a strictly positive output.
    Positivity,
    /// Axiom 3, checkable form: `a*(q; T0) >= a` on every input.
    Anchoring,
    /// Axiom 4: a bounded local Lipschitz constant in every input (and in `a` for a family).
    Continuity,
    /// Axiom 5: `KL(T0 ‖ q(a))` does not increase along a grid of anchor weights.
    Monotonicity,
    /// `D(S_{g+1}) <= (1 - a) D(S_g)` per generation under exact students.
    Contraction,
    /// `T0` maps to itself and runs from random `S_0` converge to it.
    FixedPoint,
    /// The noisy bound with `ε = KL(q_g ‖ S_{g+1})`, as Remark IV.5 of Flouro and Chadwick states it (false in general).
    NoisyContractionPaper,
    /// The noisy bound with `ε∞ = max_i ln(q_{g,i} / S_{g+1,i})` (true for contracting operators).
    NoisyContractionCorrected,
    /// With `a = 0`, exact students keep `D(S_g) = D(S_0)`.
    NoAnchoring,
    /// The observed contraction rate does not increase as `a` grows.
    RateDependence,
    /// Small perturbations of the weights, the student fit and the input weights move the
    /// limit only a little.
    Stability,
    /// Two operators agree on every input up to the tolerance.
    Equivalence,
}

impl Property {
    /// Every property a single-operator report holds, in report order.
    pub const ALL: [Property; 12] = [
        Property::ValidOutput,
        Property::Positivity,
        Property::Anchoring,
        Property::Continuity,
        Property::Monotonicity,
        Property::Contraction,
        Property::FixedPoint,
        Property::NoisyContractionPaper,
        Property::NoisyContractionCorrected,
        Property::NoAnchoring,
        Property::RateDependence,
        Property::Stability,
    ];

    /// Returns the label printed in reports, such as "Axiom 1: valid output".
    pub fn label(self) -> &'static str {
        match self {
            Property::ValidOutput => "Axiom 1: valid output",
            Property::Positivity => "Axiom 2: positivity",
            Property::Anchoring => "Axiom 3: anchoring a* >= a",
            Property::Continuity => "Axiom 4: continuity",
            Property::Monotonicity => "Axiom 5: monotone in a",
            Property::Contraction => "contraction, beta = 1 - a",
            Property::FixedPoint => "fixed point T0",
            Property::NoisyContractionPaper => "noisy bound, eps = KL (paper)",
            Property::NoisyContractionCorrected => "noisy bound, eps_inf",
            Property::NoAnchoring => "no anchoring: no drift",
            Property::RateDependence => "rate falls as a grows",
            Property::Stability => "stability of the limit",
            Property::Equivalence => "equivalence",
        }
    }

    /// Returns a short column heading for [`summary_table`], at most 8 characters.
    pub fn short_label(self) -> &'static str {
        match self {
            Property::ValidOutput => "A1",
            Property::Positivity => "A2",
            Property::Anchoring => "A3",
            Property::Continuity => "A4",
            Property::Monotonicity => "A5",
            Property::Contraction => "contract",
            Property::FixedPoint => "fixed pt",
            Property::NoisyContractionPaper => "noisyKL",
            Property::NoisyContractionCorrected => "noisyInf",
            Property::NoAnchoring => "a=0",
            Property::RateDependence => "rate(a)",
            Property::Stability => "stable",
            Property::Equivalence => "equiv",
        }
    }
}

/// The outcome of checking one property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// No case violated the property.
    Holds,
    /// Some case violated it; the row carries the shrunk counterexample.
    Violated,
    /// The property does not apply, or needs something the check was not given.
    NotApplicable,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Holds => "holds",
            Verdict::Violated => "VIOLATED",
            Verdict::NotApplicable => "n/a",
        })
    }
}

/// A named number a property measured, such as the smallest `a*` seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Name of the quantity, such as "smallest a*".
    pub name: &'static str,
    /// The value, in the natural unit of the quantity (nats for divergences).
    pub value: f64,
}

/// A shrunk input on which a property fails, with what went wrong on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Counterexample<F: Real = f64> {
    /// The teachers and students of the failing case.
    pub history: History<F>,
    /// The other parameters of the case and the values observed on it.
    pub description: String,
}

impl<F: Real> fmt::Display for Counterexample<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.history)?;
        write!(f, "    {}", self.description)
    }
}

/// The result of checking one property.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyRow<F: Real = f64> {
    /// The property checked.
    pub property: Property,
    /// Whether it holds.
    pub verdict: Verdict,
    /// How many random cases were tried before the verdict (shrinking steps not counted).
    pub cases: u32,
    /// The smallest slack of the property's inequality over the cases tried, in the
    /// unit of the measured quantity; negative means violated. `None` when nothing ran.
    pub worst_margin: Option<f64>,
    /// The numbers the property measured.
    pub measurements: Vec<Measurement>,
    /// Reason the property is not applicable, or a remark on the result.
    pub note: String,
    /// The shrunk failing case, when the verdict is [`Verdict::Violated`].
    pub counterexample: Option<Counterexample<F>>,
}

impl<F: Real> PropertyRow<F> {
    /// Builds a row for a property that does not apply, with the reason.
    pub(crate) fn not_applicable(property: Property, reason: impl Into<String>) -> Self {
        PropertyRow {
            property,
            verdict: Verdict::NotApplicable,
            cases: 0,
            worst_margin: None,
            measurements: Vec::new(),
            note: reason.into(),
            counterexample: None,
        }
    }

    /// Returns the value of the measurement called `name`, if the row has one.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::ConvexMixture;
    /// use metadistill::axioms::{Checker, Property};
    ///
    /// let checker = Checker::<f64>::new().with_cases(16)?.with_properties(&[Property::Anchoring]);
    /// let report = checker.check(&ConvexMixture::new(0.3)?);
    /// let smallest = report.row(Property::Anchoring).unwrap().measurement("smallest a*").unwrap();
    /// assert!(smallest >= 0.3 - 1e-12);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn measurement(&self, name: &str) -> Option<f64> {
        self.measurements
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }

    /// Formats the measurements as `name = value` pairs separated by commas.
    fn measurements_text(&self) -> String {
        let parts: Vec<String> = self
            .measurements
            .iter()
            .map(|m| format!("{} = {}", m.name, format_number(m.value)))
            .collect();
        parts.join(", ")
    }
}

/// One operator's verdicts on every property, with shrunk counterexamples.
///
/// `Display` prints a table with one line per property and the
/// counterexamples below it.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<F: Real = f64> {
    /// The operator's name, from [`MetaTeacherOperator::name`](crate::MetaTeacherOperator::name).
    pub operator: String,
    /// The operator's declared anchor weight `a`.
    pub anchor: f64,
    /// The seed the checker used; the same seed and settings give the same report.
    pub seed: u64,
    /// One row per property, in the order of [`Property::ALL`].
    pub rows: Vec<PropertyRow<F>>,
}

impl<F: Real> Report<F> {
    /// Returns the row of `property`, if the report has one.
    pub fn row(&self, property: Property) -> Option<&PropertyRow<F>> {
        self.rows.iter().find(|row| row.property == property)
    }

    /// Returns the verdict on `property` ([`Verdict::NotApplicable`] when it has no row).
    pub fn verdict(&self, property: Property) -> Verdict {
        self.row(property)
            .map_or(Verdict::NotApplicable, |row| row.verdict)
    }

    /// Returns the rows whose property is violated.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::ConvexMixture;
    /// use metadistill::axioms::{Checker, Property};
    ///
    /// let report = Checker::<f64>::new().with_cases(16)?.check(&ConvexMixture::new(0.3)?);
    /// let failed: Vec<Property> = report.violations().map(|row| row.property).collect();
    /// assert_eq!(failed, vec![Property::NoisyContractionPaper]);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn violations(&self) -> impl Iterator<Item = &PropertyRow<F>> {
        self.rows
            .iter()
            .filter(|row| row.verdict == Verdict::Violated)
    }
}

impl<F: Real> fmt::Display for Report<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "axiom report for {} (declared a = {}, seed {})",
            self.operator, self.anchor, self.seed
        )?;
        writeln!(
            f,
            "{:<30} {:<9} {:>6} {:>12}  measured",
            "property", "verdict", "cases", "worst margin"
        )?;
        writeln!(f, "{}", "-".repeat(96))?;
        for row in &self.rows {
            let margin = row.worst_margin.map_or(String::from("-"), format_number);
            let mut measured = row.measurements_text();
            if measured.is_empty() || row.verdict == Verdict::NotApplicable {
                measured = row.note.clone();
            }
            writeln!(
                f,
                "{:<30} {:<9} {:>6} {:>12}  {}",
                row.property.label(),
                row.verdict.to_string(),
                row.cases,
                margin,
                measured
            )?;
        }
        for row in self.violations() {
            if let Some(counterexample) = &row.counterexample {
                writeln!(f, "\ncounterexample to \"{}\":", row.property.label())?;
                writeln!(f, "{counterexample}")?;
            }
        }
        Ok(())
    }
}

/// Formats a table with one line per report and one column per property.
///
/// Each cell is `ok`, `FAIL` or `-` (not applicable).
///
/// # Examples
///
/// ```
/// use metadistill::ConvexMixture;
/// use metadistill::axioms::{Checker, summary_table};
///
/// let checker = Checker::<f64>::new().with_cases(8)?;
/// let report = checker.check(&ConvexMixture::new(0.5)?);
/// let table = summary_table(&[report]);
/// assert!(table.contains("ConvexMixture"));
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn summary_table<F: Real>(reports: &[Report<F>]) -> String {
    let name_width = reports
        .iter()
        .map(|report| report.operator.chars().count())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = format!("{:<name_width$}", "operator");
    for property in Property::ALL {
        out.push_str(&format!(" {:>8}", property.short_label()));
    }
    out.push('\n');
    for report in reports {
        out.push_str(&format!("{:<name_width$}", report.operator));
        for property in Property::ALL {
            let cell = match report.verdict(property) {
                Verdict::Holds => "ok",
                Verdict::Violated => "FAIL",
                Verdict::NotApplicable => "-",
            };
            out.push_str(&format!(" {cell:>8}"));
        }
        out.push('\n');
    }
    out
}

/// Formats a number with four significant digits, in scientific notation when small or large.
pub(crate) fn format_number(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e4).contains(&magnitude) {
        format!("{value:.4}")
    } else if magnitude.is_finite() {
        format!("{value:.3e}")
    } else {
        format!("{value}")
    }
}
