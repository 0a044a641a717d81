//! The checker's settings, its exported strategies and their error paths.

use metadistill::axioms::{
    Checker, DistributionSpace, anchor_weights, distribution, distribution_lists, distributions,
    find_limit, histories, weights,
};
use metadistill::{ConvexMixture, Distribution, Error, Result};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Builds a seeded runner, so every run draws the same cases.
fn runner() -> TestRunner {
    let config = Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

#[test]
fn distribution_respects_dynamic_range() -> Result<()> {
    let space = DistributionSpace::new(2..=8, 50.0)?;
    let result = runner().run(&distributions::<f64>(&space), |p| {
        let probs = p.as_slice();
        let max = probs.iter().copied().fold(0.0, f64::max);
        let min = probs.iter().copied().fold(1.0, f64::min);
        assert!((2..=8).contains(&probs.len()));
        assert!(min > 0.0);
        assert!(max / min <= 50.0 * (1.0 + 1e-12), "{probs:?}");
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
    Ok(())
}

#[test]
fn distribution_with_zeros_keeps_one_token() -> Result<()> {
    let space = DistributionSpace::new(1..=4, 10.0)?.with_zeros(0.9)?;
    let saw_zero = std::cell::Cell::new(false);
    let result = runner().run(&distribution::<f32>(&space, 3), |p| {
        assert_eq!(p.len(), 3);
        assert!(p.as_slice().iter().any(|&x| x > 0.0));
        if p.as_slice().contains(&0.0) {
            saw_zero.set(true);
        }
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
    assert!(saw_zero.get());
    Ok(())
}

#[test]
fn histories_share_one_vocabulary() -> Result<()> {
    let space = DistributionSpace::new(3..=6, 1e3)?;
    let result = runner().run(&histories::<f64>(&space, 2, 1..=4), |history| {
        let size = history.vocab_size();
        assert!((3..=6).contains(&size));
        assert_eq!(history.teachers.len(), 2);
        assert!((1..=4).contains(&history.students.len()));
        assert!(
            history
                .teachers
                .iter()
                .chain(&history.students)
                .all(|p| p.len() == size)
        );
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");

    let lists = runner().run(&distribution_lists::<f64>(&space, 5), |list| {
        assert_eq!(list.len(), 5);
        assert!(list.iter().all(|p| p.len() == list[0].len()));
        Ok(())
    });
    assert!(lists.is_ok(), "{lists:?}");
    Ok(())
}

#[test]
fn weights_and_anchor_weights_are_in_range() {
    let result = runner().run(&weights::<f64>(5), |w| {
        assert_eq!(w.len(), 5);
        assert!(w.iter().all(|&x| x > 0.0));
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");

    let anchors = runner().run(&anchor_weights::<f32>(0.2..=0.4), |a| {
        assert!((0.2..=0.4).contains(&a));
        Ok(())
    });
    assert!(anchors.is_ok(), "{anchors:?}");
}

#[test]
fn strategies_let_users_test_their_own_laws() -> Result<()> {
    // A user's own property: the mixture never moves further from T0 than S_g.
    let space = DistributionSpace::default();
    let mixture = ConvexMixture::new(0.25)?;
    let result = runner().run(&histories::<f64>(&space, 1, 1..=1), |history| {
        let q =
            metadistill::MetaTeacherOperator::build(&mixture, &history.teachers, &history.students)
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
        let teacher = &history.teachers[0];
        let before = metadistill::divergence::kl(teacher, &history.students[0]).unwrap();
        let after = metadistill::divergence::kl(teacher, &q).unwrap();
        proptest::prop_assert!(after <= before);
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
    Ok(())
}

#[test]
fn space_rejects_bad_ranges() {
    assert_eq!(
        DistributionSpace::new(0..=3, 10.0),
        Err(Error::InvalidVocabularyRange { min: 0, max: 3 })
    );
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = DistributionSpace::new(5..=3, 10.0);
    assert_eq!(
        reversed,
        Err(Error::InvalidVocabularyRange { min: 5, max: 3 })
    );
    for bad in [0.5, f64::NAN, f64::INFINITY] {
        let result = DistributionSpace::new(2..=3, bad);
        assert!(
            matches!(
                result,
                Err(Error::InvalidParameter {
                    name: "dynamic range",
                    ..
                })
            ),
            "{bad}: {result:?}"
        );
    }
    for bad in [1.0, -0.1, f64::NAN] {
        let result = DistributionSpace::default().with_zeros(bad);
        assert!(
            matches!(result, Err(Error::InvalidParameter { .. })),
            "{bad}: {result:?}"
        );
    }
}

#[test]
fn checker_rejects_bad_settings() {
    let checker = Checker::<f64>::new;
    assert!(matches!(
        checker().with_cases(0),
        Err(Error::InvalidParameter {
            name: "number of cases",
            ..
        })
    ));
    for bad in [0.0, -1e-9, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                checker().with_tolerance(bad),
                Err(Error::InvalidParameter { .. })
            ),
            "{bad}"
        );
        assert!(
            matches!(
                checker().with_max_sensitivity(bad),
                Err(Error::InvalidParameter { .. })
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        checker().with_teachers(0),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        checker().with_history_len(0),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        checker().with_generations(0),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn checker_rejects_bad_anchor_grids() {
    let checker = Checker::<f64>::new;
    let short = checker().with_anchor_grid(&[0.2]).err();
    assert_eq!(
        short
            .as_ref()
            .map(|error| matches!(error, Error::InvalidParameter { value, .. } if *value == 1.0)),
        Some(true),
        "{short:?}"
    );
    let message = short.map(|error| error.to_string()).unwrap_or_default();
    assert!(message.contains("is 1"), "{message}");
    assert!(message.contains("at least 2"), "{message}");
    assert!(!message.contains("empty"), "{message}");
    assert!(matches!(
        checker().with_anchor_grid(&[]),
        Err(Error::InvalidParameter { value, .. }) if value == 0.0
    ));

    let out_of_range = checker().with_anchor_grid(&[0.1, 1.5]).err();
    assert_eq!(
        out_of_range,
        Some(Error::InvalidAnchorGridEntry {
            index: 1,
            value: 1.5
        })
    );
    let message = out_of_range
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(message.contains("entry 1 is 1.5"), "{message}");
    assert!(message.contains("[0, 1]"), "{message}");
    assert!(matches!(
        checker().with_anchor_grid(&[f64::NAN, 0.5]),
        Err(Error::InvalidAnchorGridEntry { index: 0, value }) if value.is_nan()
    ));

    assert_eq!(
        checker().with_anchor_grid(&[0.1, 0.4, 0.4]).err(),
        Some(Error::UnsortedAnchorGrid {
            index: 2,
            value: 0.4,
            previous: 0.4
        })
    );
    assert!(checker().with_anchor_grid(&[0.0, 0.5, 1.0]).is_ok());
}

#[test]
fn find_limit_rejects_bad_input() -> Result<()> {
    let mixture = ConvexMixture::new(0.5)?;
    let start = Distribution::from_probs(&[0.5, 0.5])?;
    assert!(matches!(
        find_limit(&mixture, &[], &start, 1e-9, 10),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        find_limit(&mixture, std::slice::from_ref(&start), &start, -1.0, 10),
        Err(Error::InvalidParameter { .. })
    ));
    let wide = Distribution::from_probs(&[0.2, 0.3, 0.5])?;
    assert!(matches!(
        find_limit(&mixture, &[wide], &start, 1e-9, 10),
        Err(Error::VocabularyMismatch { .. })
    ));
    Ok(())
}

#[test]
fn find_limit_reports_unconverged_runs() -> Result<()> {
    let teacher = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
    let start = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
    let slow = find_limit(
        &ConvexMixture::new(0.01)?,
        std::slice::from_ref(&teacher),
        &start,
        1e-12,
        5,
    )?;
    assert!(!slow.converged);
    assert_eq!(slow.generations, 5);
    assert!(slow.offset > 0.1);

    let fast = find_limit(&ConvexMixture::new(0.5)?, &[teacher], &start, 1e-12, 200)?;
    assert!(fast.converged);
    assert!(fast.offset < 1e-20);
    assert!(fast.last_step <= 1e-12);
    Ok(())
}
