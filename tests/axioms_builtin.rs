//! The axiom checker on every built-in operator and combinator.
//!
//! Each test asserts the verdicts that the convexity arguments predict, or,
//! where no argument exists, the verdicts found by running the checker, with
//! the reason next to them. For operators that implement
//! [`OperatorProperties`], the Axiom 3, fixed-point and contraction verdicts
//! are also compared with what the operator declares.

use metadistill::axioms::{Checker, Property, Report, Verdict, find_limit};
use metadistill::divergence::kl;
use metadistill::{
    ConvexCombination, ConvexMixture, Distribution, Divergence, GeneralizedMixture, HistoryWeights,
    InformationProjection, Iterate, IterativeProjection, MetaTeacherOperator, MirrorDescent,
    OperatorProperties, PostMap, PostMapped, PowerMeanProjection, Real, Result, TemperedMixture,
    Weights,
};

/// Seed of every checker in this file.
const SEED: u64 = 0x0b51_1d1e;

/// Cases per property: enough to find every violation asserted here, few
/// enough that the whole file runs in a few seconds in a debug build.
const CASES: u32 = 24;

/// Expected verdicts, short so the expected rows read as a table.
const HOLDS: Option<Verdict> = Some(Verdict::Holds);
const FAILS: Option<Verdict> = Some(Verdict::Violated);
const SKIPPED: Option<Verdict> = Some(Verdict::NotApplicable);
/// A property whose violations are rare, checked separately with more cases.
const DEEPER: Option<Verdict> = None;

/// Builds a seeded checker. Counterexample sizes are not asserted here, so 32
/// shrinking steps (of the default 256) keep the runs that fail every case short.
fn checker<F: Real>(cases: u32) -> Result<Checker<F>> {
    Ok(Checker::new()
        .with_cases(cases)?
        .with_seed(SEED)
        .with_shrink_iterations(32))
}

fn measured<F: Real>(report: &Report<F>, property: Property, name: &str) -> f64 {
    report
        .row(property)
        .and_then(|row| row.measurement(name))
        .unwrap_or_else(|| panic!("no measurement {name:?} for {property:?}\n{report}"))
}

/// Asserts one verdict per property, in the order of [`Property::ALL`].
fn assert_verdicts<F: Real>(report: &Report<F>, expected: [Option<Verdict>; 12]) {
    for (property, verdict) in Property::ALL.into_iter().zip(expected) {
        let Some(verdict) = verdict else { continue };
        assert_eq!(
            report.verdict(property),
            verdict,
            "{property:?} of {}\n{report}",
            report.operator
        );
        if verdict == Verdict::Violated {
            let row = report.row(property).unwrap();
            assert!(row.counterexample.is_some(), "{property:?} without input");
        }
    }
}

/// Asserts that the checker agrees with what the operator declares about itself.
///
/// - `anchors_pointwise` is the Axiom 3 verdict.
/// - `fixes_teacher` claims `G(T0; T0) = T0`, which the fixed-point row measures as
///   the largest `KL(T0 ‖ G(T0))`. The verdict also needs runs to converge to
///   `T0`, which a declared contraction factor below 1 guarantees.
/// - A contraction factor `c` of an operator that reads only `S_g` bounds every
///   per-generation ratio the checker observes.
fn assert_agrees_with_declared<O: OperatorProperties<f64>>(report: &Report, operator: &O) {
    let anchoring = if operator.anchors_pointwise() {
        Verdict::Holds
    } else {
        Verdict::Violated
    };
    assert_eq!(report.verdict(Property::Anchoring), anchoring, "{report}");

    let self_offset = measured(report, Property::FixedPoint, "largest KL(T0 || G(T0))");
    assert_eq!(operator.fixes_teacher(), self_offset < 1e-12, "{report}");

    let factor = operator.contraction_factor();
    if operator.fixes_teacher() && factor.is_some_and(|c| c < 1.0) {
        assert_eq!(
            report.verdict(Property::FixedPoint),
            Verdict::Holds,
            "{report}"
        );
    }
    if let Some(c) = factor.filter(|_| operator.reads_latest_only()) {
        let worst = measured(report, Property::Contraction, "worst ratio");
        assert!(worst <= c + 1e-9, "worst ratio {worst} above {c}\n{report}");
        if c <= 1.0 - operator.anchor_weight() {
            assert_eq!(
                report.verdict(Property::Contraction),
                Verdict::Holds,
                "{report}"
            );
        }
    }
}

/// Runs the exact recursion and returns `D(S_g)` for `g = 0..=generations`.
fn divergences<O: MetaTeacherOperator>(
    operator: &O,
    teacher: &Distribution,
    start: &Distribution,
    generations: usize,
) -> Result<Vec<f64>> {
    let mut students = vec![start.clone()];
    let mut result = vec![kl(teacher, start)?];
    for _ in 0..generations {
        let next = operator.build(std::slice::from_ref(teacher), &students)?;
        result.push(kl(teacher, &next)?);
        students.push(next);
    }
    Ok(result)
}

fn mixture(anchor: f64) -> Result<ConvexMixture> {
    if anchor > 0.0 {
        ConvexMixture::new(anchor)
    } else {
        Ok(ConvexMixture::unanchored())
    }
}

#[test]
fn convex_mixture_meets_every_claim() -> Result<()> {
    let report = checker(CASES)?.check_family(0.3, mixture)?;
    #[rustfmt::skip]
    let expected = [
        HOLDS, HOLDS, HOLDS, HOLDS, HOLDS, // Axioms 1-5
        HOLDS, HOLDS,                      // contraction, fixed point
        FAILS, HOLDS,                      // noisy bound: published eps = KL, corrected eps_inf
        HOLDS, HOLDS, HOLDS,               // a = 0 does not drift, rate in a, stability
    ];
    assert_verdicts(&report, expected);
    assert_agrees_with_declared(&report, &ConvexMixture::new(0.3)?);

    // q = a T0 + (1 - a) S gives a* = a + (1 - a) min_i S_i / T0_i, just above a.
    let smallest = measured(&report, Property::Anchoring, "smallest a*");
    assert!((0.3..0.32).contains(&smallest), "{smallest}");
    // Near T0 the ratio D(S_{g+1}) / D(S_g) tends to (1 - a)² = 0.49, below the bound 0.7.
    let asymptotic = measured(&report, Property::Contraction, "asymptotic ratio");
    assert!((asymptotic - 0.49).abs() < 0.02, "{asymptotic}");
    let offset = measured(&report, Property::FixedPoint, "largest limit offset");
    assert!(offset < 1e-10, "{offset}");
    // The noisy bound with eps = KL(q_g ‖ S_{g+1}) misses by a wide margin; with eps_inf it keeps slack.
    let excess = measured(
        &report,
        Property::NoisyContractionPaper,
        "largest D(S_g+1) - bound",
    );
    assert!(excess > 1e-2, "{excess}");
    let slack = measured(
        &report,
        Property::NoisyContractionCorrected,
        "largest D(S_g+1) - bound",
    );
    assert!(slack <= 0.0, "{slack}");
    Ok(())
}

#[test]
fn unanchored_mixture_stands_still() -> Result<()> {
    let unanchored = ConvexMixture::unanchored();
    let report = checker(CASES)?.check(&unanchored);
    #[rustfmt::skip]
    let expected = [
        HOLDS, HOLDS, HOLDS, HOLDS, SKIPPED,
        HOLDS, FAILS,   // D(S_{g+1}) = D(S_g) meets the bound 1 - 0; every point is fixed
        FAILS, HOLDS,
        HOLDS, SKIPPED, FAILS, // the limit is S_0 itself, so a small change of fit moves it
    ];
    assert_verdicts(&report, expected);
    // T0 is a fixed point (declared and measured), but runs stay where they start.
    assert_agrees_with_declared(&report, &unanchored);
    let offset = measured(&report, Property::FixedPoint, "largest limit offset");
    assert!(offset > 1e-2, "{offset}");
    Ok(())
}

#[test]
fn history_mixtures_contract_against_history() -> Result<()> {
    let schemes = [
        HistoryWeights::Window { length: 3 },
        HistoryWeights::ExponentialDecay {
            decay: 0.5,
            length: usize::MAX,
        },
        HistoryWeights::Quality {
            sharpness: 2.0,
            length: 3,
        },
        HistoryWeights::Explicit(Weights::new(&[0.5, 0.3, 0.2])?),
    ];
    let teacher = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
    let start = Distribution::from_probs(&[0.02, 0.08, 0.9])?;
    for scheme in schemes {
        let make = |a| GeneralizedMixture::single_teacher(a, scheme.clone());
        let report = checker(16)?.check_family(0.3, make)?;
        // The per-generation ratio D(S_{g+1}) / D(S_g) exceeds 1 - a: q_g also
        // reads older students, which are further from T0 than S_g.
        #[rustfmt::skip]
        let expected = [
            HOLDS, HOLDS, HOLDS, HOLDS, HOLDS,
            FAILS, HOLDS,
            FAILS, HOLDS,
            SKIPPED, HOLDS, HOLDS,
        ];
        assert_verdicts(&report, expected);
        let operator = make(0.3)?;
        assert_agrees_with_declared(&report, &operator);
        assert!(!operator.reads_latest_only());

        // The declared factor bounds D(S_{g+1}) by c times the largest D over the
        // three students the scheme weighs most (the window here).
        let factor = operator.contraction_factor().unwrap();
        let d = divergences(&operator, &teacher, &start, 12)?;
        for g in 0..12_usize {
            let window = d[g.saturating_sub(2)..=g]
                .iter()
                .copied()
                .fold(0.0, f64::max);
            if !matches!(scheme, HistoryWeights::ExponentialDecay { .. }) {
                assert!(
                    d[g + 1] <= factor * window * (1.0 + 1e-12),
                    "{scheme:?} g = {g}"
                );
            }
            let all = d[..=g].iter().copied().fold(0.0, f64::max);
            assert!(
                d[g + 1] <= factor * all * (1.0 + 1e-12),
                "{scheme:?} g = {g}"
            );
        }
    }
    Ok(())
}

#[test]
fn two_teacher_mixture_converges_to_teacher_mixture() -> Result<()> {
    let weights = [0.5, 0.5];
    let make = |a| GeneralizedMixture::new(a, Weights::new(&weights)?, HistoryWeights::Latest);
    let report = checker(64)?.with_teachers(2)?.check_family(0.3, make)?;
    // The checker measures every distance from T0 while the recursion heads for
    // T̄ = ½ T0 + ½ T1: D(S_g) can grow (contraction), KL(T0 ‖ q) can grow
    // with a (Axiom 5, rate), and the limit is T̄, not T0. a* >= a w_0 = 0.15 holds.
    // The corrected noisy bound assumes contraction toward T0, which fails here.
    #[rustfmt::skip]
    let expected = [
        HOLDS, HOLDS, HOLDS, HOLDS, FAILS,
        FAILS, FAILS,
        FAILS, FAILS,
        SKIPPED, FAILS, HOLDS,
    ];
    assert_verdicts(&report, expected);
    let operator = make(0.3)?;
    assert_agrees_with_declared(&report, &operator);
    assert_eq!(operator.contraction_factor(), None);

    let teachers = [
        Distribution::from_probs(&[0.6, 0.3, 0.1])?,
        Distribution::from_probs(&[0.1, 0.2, 0.7])?,
    ];
    let start = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
    let limit = find_limit(&operator, &teachers, &start, 1e-14, 1000)?;
    assert!(limit.converged);
    for (i, &p) in limit.student.as_slice().iter().enumerate() {
        let mixed = weights[0] * teachers[0].probs()[i] + weights[1] * teachers[1].probs()[i];
        assert!((p - mixed).abs() < 1e-12, "token {i}: {p} vs {mixed}");
    }
    assert!(limit.offset > 0.1, "{}", limit.offset);
    Ok(())
}

#[test]
fn geometric_pool_contracts_below_anchor() -> Result<()> {
    let report = checker(CASES)?.check_family(0.3, InformationProjection::geometric)?;
    #[rustfmt::skip]
    let expected = [
        HOLDS, HOLDS, FAILS, HOLDS, HOLDS,
        HOLDS, HOLDS,
        FAILS, HOLDS,
        SKIPPED, HOLDS, HOLDS,
    ];
    assert_verdicts(&report, expected);
    assert_agrees_with_declared(&report, &InformationProjection::geometric(0.3)?);

    // a* -> 0 as some S_i / T0_i -> 0, yet KL(T0 ‖ q) = (1 - a) KL(T0 ‖ S) + ln Z.
    let smallest = measured(&report, Property::Anchoring, "smallest a*");
    assert!(smallest < 0.3, "{smallest}");
    let worst = measured(&report, Property::Contraction, "worst ratio");
    assert!(worst <= 0.7, "{worst}");
    Ok(())
}

#[test]
fn geometric_pool_f32_contracts_below_anchor() -> Result<()> {
    let checker = checker::<f32>(16)?.with_properties(&[
        Property::Anchoring,
        Property::Contraction,
        Property::FixedPoint,
    ]);
    let report = checker.check(&InformationProjection::geometric(0.3_f32)?);
    assert_eq!(
        report.verdict(Property::Anchoring),
        Verdict::Violated,
        "{report}"
    );
    assert_eq!(
        report.verdict(Property::Contraction),
        Verdict::Holds,
        "{report}"
    );
    assert_eq!(
        report.verdict(Property::FixedPoint),
        Verdict::Holds,
        "{report}"
    );
    Ok(())
}

#[test]
fn power_mean_projections_match_their_order() -> Result<()> {
    let project = |projection| move |a| InformationProjection::single_teacher(projection, a);
    let hellinger = project(PowerMeanProjection::SquaredHellinger);
    let chi = project(PowerMeanProjection::ChiSquared);
    let harmonic = project(PowerMeanProjection::Amari { order: -1.0 });
    let forward = project(PowerMeanProjection::ForwardKl);

    // Forward KL (order 1) is the convex mixture: same verdicts.
    let report = checker(16)?.check_family(0.3, forward)?;
    #[rustfmt::skip]
    let expected = [
        HOLDS, HOLDS, HOLDS, HOLDS, HOLDS,
        HOLDS, HOLDS,
        FAILS, HOLDS,
        SKIPPED, HOLDS, HOLDS,
    ];
    assert_verdicts(&report, expected);
    assert_agrees_with_declared(&report, &forward(0.3)?);

    // Squared Hellinger, order ½: no pointwise anchoring, since S_i -> 0 pushes
    // a* down to about a² (the power mean of order b < 1 weighs small entries
    // more). It contracts with 1 - a: M_0 <= M_½ <= M_1 pointwise, so the
    // geometric pool's bound carries over.
    for anchor in [0.3, 0.7] {
        let report = checker(64)?.check_family(anchor, hellinger)?;
        #[rustfmt::skip]
        let expected = [
            HOLDS, HOLDS, FAILS, HOLDS, HOLDS,
            HOLDS, HOLDS,
            FAILS, HOLDS,
            SKIPPED, HOLDS, HOLDS,
        ];
        assert_verdicts(&report, expected);
        assert_agrees_with_declared(&report, &hellinger(anchor)?);
    }

    // Chi-squared, order 2: a* >= √a / (√a + √(1 - a)) by Minkowski, which is at
    // least a exactly when a <= ½, so anchoring holds at 0.3 and fails at 0.7.
    // The normalizer Σ M_2 exceeds 1, and the ratio D(S_{g+1}) / D(S_g) can
    // exceed 1 - a. The corrected noisy bound still holds on every input tried.
    for (anchor, anchoring) in [(0.3, HOLDS), (0.7, FAILS)] {
        let report = checker(16)?.check_family(anchor, chi)?;
        #[rustfmt::skip]
        let expected = [
            HOLDS, HOLDS, anchoring, HOLDS, HOLDS,
            FAILS, HOLDS,
            FAILS, HOLDS,
            SKIPPED, HOLDS, HOLDS,
        ];
        assert_verdicts(&report, expected);
        assert_agrees_with_declared(&report, &chi(anchor)?);
        let worst = measured(&report, Property::Contraction, "worst ratio");
        assert!(worst > 1.0 - anchor, "{worst}");
    }
    // Two teachers, pooled weights (0.15, 0.15, 0.7): the Minkowski bound
    // √0.15 / (2 √0.15 + √0.7) = 0.24 stays above a w_0 = 0.15.
    let two = |a| {
        let weighting = GeneralizedMixture::new(a, Weights::uniform(2)?, HistoryWeights::Latest)?;
        InformationProjection::new(PowerMeanProjection::ChiSquared, weighting)
    };
    let report = checker(16)?
        .with_teachers(2)?
        .with_properties(&[Property::Anchoring, Property::FixedPoint])
        .check(&two(0.3)?);
    assert_agrees_with_declared(&report, &two(0.3)?);
    assert!(two(0.3)?.anchors_pointwise());
    let bound = 0.3_f64.sqrt() / (0.3_f64.sqrt() + 0.7_f64.sqrt());
    let report = checker(16)?.check_family(0.3, chi)?;
    assert!(measured(&report, Property::Anchoring, "smallest a*") >= bound - 1e-12);

    // Amari order -1 (normalized weighted harmonic mean): S_i -> 0 drives q_i
    // to 0, so a* -> 0; it also fails the contraction bound, and the corrected
    // noisy bound, which relies on contraction, fails with it.
    let report = checker(16)?.check_family(0.3, harmonic)?;
    #[rustfmt::skip]
    let expected = [
        HOLDS, HOLDS, FAILS, HOLDS, HOLDS,
        FAILS, HOLDS,
        DEEPER, FAILS,
        SKIPPED, HOLDS, HOLDS,
    ];
    assert_verdicts(&report, expected);
    let paper = [Property::NoisyContractionPaper];
    let deeper = checker(64)?.with_properties(&paper).check(&harmonic(0.3)?);
    assert_eq!(deeper.verdict(paper[0]), Verdict::Violated, "{deeper}");
    assert_agrees_with_declared(&report, &harmonic(0.3)?);
    Ok(())
}

#[test]
fn jensen_shannon_projection_contracts_below_anchor() -> Result<()> {
    // The mirror-descent solver runs once per build, which is slow in a debug
    // build, so this checks 8 cases of the four properties below.
    let make = |a| {
        let weighting = GeneralizedMixture::single_teacher(a, HistoryWeights::Latest)?;
        IterativeProjection::new(
            Divergence::JensenShannon,
            weighting,
            MirrorDescent::default(),
        )
    };
    let checker = checker(8)?.with_properties(&[
        Property::ValidOutput,
        Property::Anchoring,
        Property::Contraction,
        Property::FixedPoint,
    ]);
    let report = checker.check(&make(0.3)?);

    // The JS projection is no mixture: on some inputs it puts less than a T0_i
    // on a token, so a* < a (the row carries a shrunk input). No contraction
    // factor is declared, but every run tried stays below 1 - a (measured, not
    // proven).
    assert_eq!(
        report.verdict(Property::ValidOutput),
        Verdict::Holds,
        "{report}"
    );
    assert_eq!(
        report.verdict(Property::Anchoring),
        Verdict::Violated,
        "{report}"
    );
    assert_eq!(
        report.verdict(Property::Contraction),
        Verdict::Holds,
        "{report}"
    );
    assert_eq!(
        report.verdict(Property::FixedPoint),
        Verdict::Holds,
        "{report}"
    );
    let operator = make(0.3)?;
    assert!(!operator.anchors_pointwise());
    assert_eq!(operator.contraction_factor(), None);
    assert!(operator.fixes_teacher());
    Ok(())
}

#[test]
fn tempered_mixture_misses_teacher() -> Result<()> {
    let make = |a| TemperedMixture::new(a, 2.0);
    let report = checker(64)?.check_family(0.3, make)?;
    // Declared a = 0, so Axiom 3 holds trivially and contraction is tested with
    // beta = 1: D grows from S_0 near T0 towards the offset limit, and the
    // corrected noisy bound, which needs contraction, fails too. KL(T0 ‖ q(a))
    // and the rate need not fall with a because q(1) = temper(T0) ≠ T0
    // (Axiom 5, rate). The no-anchoring row runs the operator itself (declared
    // a = 0) and sees D move, since the inner mixture still uses T0.
    #[rustfmt::skip]
    let expected = [
        HOLDS, HOLDS, HOLDS, HOLDS, FAILS,
        FAILS, FAILS,
        FAILS, DEEPER,
        FAILS, DEEPER, HOLDS,
    ];
    assert_verdicts(&report, expected);
    let corrected = [Property::NoisyContractionCorrected];
    let deeper = checker(256)?
        .with_properties(&corrected)
        .check_family(0.3, make)?;
    assert_eq!(deeper.verdict(corrected[0]), Verdict::Violated, "{deeper}");
    // The rate rises with a only on few inputs, which 256 random cases miss
    // here. On this input, found by an earlier search, the rate
    // (D(S_4) / D(S_0))^(1/4) rises from a = 0.05 to a = 0.1.
    let teacher = Distribution::from_probs(&[0.2, 0.8])?;
    let start = Distribution::from_probs(&[0.001742, 0.998258])?;
    let rate = |a| -> Result<f64> {
        let d = divergences(&make(a)?, &teacher, &start, 4)?;
        Ok((d[4] / d[0]).powf(0.25))
    };
    let (slow, fast) = (rate(0.05)?, rate(0.1)?);
    assert!(
        fast > slow + 1e-3,
        "rate {slow} at a = 0.05, {fast} at a = 0.1"
    );
    let operator = make(0.3)?;
    assert_agrees_with_declared(&report, &operator);
    // The family is indexed by the mixing weight 0.3, not the declared 0, so
    // continuity in a measures a bounded change.
    let in_anchor = measured(&report, Property::Continuity, "Lipschitz in a");
    assert!(in_anchor < 10.0, "{in_anchor}");

    let teacher = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
    let start = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
    let limit = find_limit(
        &operator,
        std::slice::from_ref(&teacher),
        &start,
        1e-14,
        5000,
    )?;
    assert!(limit.converged);
    let fixed = operator.fixed_point(&teacher, 1e-14, 10_000)?;
    assert!((limit.offset - 0.122).abs() < 5e-4, "{}", limit.offset);
    assert!((limit.offset - kl(&teacher, &fixed)?).abs() < 1e-12);
    for (found, exact) in limit.student.as_slice().iter().zip(fixed.as_slice()) {
        assert!((found - exact).abs() < 1e-12, "{found} vs {exact}");
    }
    Ok(())
}

#[test]
fn tempered_mixture_f32_limit_offset() -> Result<()> {
    let operator = TemperedMixture::new(0.3_f32, 2.0)?;
    let teacher = Distribution::from_probs(&[0.6_f32, 0.3, 0.1])?;
    let start = Distribution::from_probs(&[0.2_f32, 0.5, 0.3])?;
    let limit = find_limit(&operator, std::slice::from_ref(&teacher), &start, 1e-6, 500)?;
    assert!(limit.converged);
    assert!((limit.offset - 0.122).abs() < 1e-3, "{}", limit.offset);
    let report = checker::<f32>(8)?
        .with_properties(&[Property::FixedPoint])
        .check(&operator);
    assert_eq!(
        report.verdict(Property::FixedPoint),
        Verdict::Violated,
        "{report}"
    );
    Ok(())
}

#[test]
fn convex_combination_keeps_weaker_guarantees() -> Result<()> {
    let make = |a| {
        ConvexCombination::new(
            ConvexMixture::new(a)?,
            InformationProjection::geometric(a)?,
            0.5,
        )
    };
    let report = checker(CASES)?.check_family(0.3, make)?;
    // Half the geometric pool: a* falls below a, contraction 1 - a holds.
    #[rustfmt::skip]
    let expected = [
        HOLDS, HOLDS, FAILS, HOLDS, HOLDS,
        HOLDS, HOLDS,
        FAILS, HOLDS,
        SKIPPED, HOLDS, HOLDS,
    ];
    assert_verdicts(&report, expected);
    assert_agrees_with_declared(&report, &make(0.3)?);

    // Parts with different anchors: declared factor ½ 0.5 + ½ 0.7 = 0.6.
    let blend = ConvexCombination::new(
        ConvexMixture::new(0.5)?,
        InformationProjection::geometric(0.3)?,
        0.5,
    )?;
    let report = checker(16)?.check(&blend);
    assert_eq!(blend.contraction_factor(), Some(0.6));
    assert_agrees_with_declared(&report, &blend);
    Ok(())
}

#[test]
fn post_maps_move_fixed_point() -> Result<()> {
    // Uniform smoothing keeps a* >= (1 - ε) a but pulls the limit towards the
    // uniform distribution, so D(S_g) stops falling (contraction) and KL(T0 ‖ q)
    // need not fall with a (Axiom 5, rate).
    let smooth = |a| {
        PostMapped::new(
            ConvexMixture::new(a)?,
            PostMap::SmoothUniform { epsilon: 0.1 },
        )
    };
    let report = checker(64)?.check_family(0.3, smooth)?;
    #[rustfmt::skip]
    let expected = [
        HOLDS, HOLDS, HOLDS, HOLDS, FAILS,
        FAILS, FAILS,
        FAILS, HOLDS,
        SKIPPED, FAILS, HOLDS,
    ];
    assert_verdicts(&report, expected);
    assert_agrees_with_declared(&report, &smooth(0.3)?);

    // Tempering after the mixture is the tempered mixture: declared a = 0.
    let tempered = PostMapped::new(
        ConvexMixture::new(0.3)?,
        PostMap::Temper { temperature: 2.0 },
    )?;
    let report = checker(CASES)?.check(&tempered);
    #[rustfmt::skip]
    let expected = [
        HOLDS, HOLDS, HOLDS, HOLDS, SKIPPED,
        FAILS, FAILS,
        FAILS, HOLDS,
        FAILS, SKIPPED, HOLDS,
    ];
    assert_verdicts(&report, expected);
    assert_agrees_with_declared(&report, &tempered);

    // Top-2 zeros tokens: positivity fails and KL(T0 ‖ q) is infinite where T0
    // has mass on a dropped token, which breaks every bound on D.
    let top = PostMapped::new(ConvexMixture::new(0.3)?, PostMap::TopK { k: 2 })?;
    let report = checker(CASES)?.check(&top);
    #[rustfmt::skip]
    let expected = [
        HOLDS, FAILS, HOLDS, HOLDS, SKIPPED,
        FAILS, FAILS,
        FAILS, FAILS,
        FAILS, SKIPPED, FAILS,
    ];
    assert_verdicts(&report, expected);
    assert_agrees_with_declared(&report, &top);
    for row in &report.rows {
        for measurement in &row.measurements {
            assert!(
                !measurement.value.is_nan(),
                "{measurement:?} of {:?}",
                row.property
            );
        }
    }
    Ok(())
}

#[test]
fn iterate_squares_contraction_factor() -> Result<()> {
    let twice = |a| Iterate::new(ConvexMixture::new(a)?, 2);
    let report = checker(CASES)?.check_family(0.3, twice)?;
    #[rustfmt::skip]
    let expected = [
        HOLDS, HOLDS, HOLDS, HOLDS, HOLDS,
        HOLDS, HOLDS,
        FAILS, HOLDS,
        SKIPPED, HOLDS, HOLDS,
    ];
    assert_verdicts(&report, expected);
    // Declared factor 0.49; the true anchor weight is 1 - 0.7² = 0.51.
    assert_agrees_with_declared(&report, &twice(0.3)?);
    let smallest = measured(&report, Property::Anchoring, "smallest a*");
    assert!(smallest >= 0.51 - 1e-12, "{smallest}");
    let asymptotic = measured(&report, Property::Contraction, "asymptotic ratio");
    assert!((asymptotic - 0.49 * 0.49).abs() < 0.02, "{asymptotic}");

    // Iterating a history operator keeps its factor against the history, not per generation.
    let window = |a| {
        let inner = GeneralizedMixture::single_teacher(a, HistoryWeights::Window { length: 3 })?;
        Iterate::new(inner, 2)
    };
    let report = checker(16)?.check_family(0.3, window)?;
    assert_eq!(
        report.verdict(Property::Contraction),
        Verdict::Violated,
        "{report}"
    );
    assert_agrees_with_declared(&report, &window(0.3)?);
    Ok(())
}
