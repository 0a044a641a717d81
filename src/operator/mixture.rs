//! The convex mixture `q = a T0 + (1 - a) S_g`, the paper's canonical operator.

use ndarray::{ArrayView1, ArrayViewMut1, Zip};

use crate::error::{Error, Result};
use crate::operator::{MetaTeacherOperator, check_view_lengths};
use crate::real::{Compact, Real, to_f64};

/// The convex mixture of the base teacher and the latest student.
///
/// ```text
/// q_g = a T0 + (1 - a) S_g,   0 < a <= 1
/// ```
///
/// - Anchoring: pointwise with weight `a`, since `q_g >= a T0` token by token,
///   so `a*(q_g; T0) >= a`.
/// - Contraction: joint convexity of KL gives
///   `KL(T0 ‖ q_g) <= (1 - a) KL(T0 ‖ S_g)`, so with exact students
///   `D(S_{g+1}) <= (1 - a) D(S_g)`. Near the fixed point the observed ratio
///   tends to `(1 - a)²`, because `S_g = T0 + (1 - a)^g (S_0 - T0)` and KL is
///   quadratic near `T0`.
/// - Fixed point: `T0`, unique for `a > 0` and globally attractive.
/// - Cost: one pass over the vocabulary, `O(V)` time, no allocation.
///
/// The unanchored mixture ([`ConvexMixture::unanchored`], `a = 0`) copies the
/// latest student: the paper's failure case of self-distillation without the
/// teacher.
///
/// # Examples
///
/// ```
/// use metadistill::{ConvexMixture, Distribution, MetaTeacherOperator};
///
/// let teacher: Distribution = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
/// let student = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
/// let q = ConvexMixture::new(0.3)?.build(&[teacher], &[student])?;
/// assert!((q.probs()[0] - 0.32).abs() < 1e-15);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvexMixture<F: Real = f64> {
    anchor: F,
}

impl<F: Real> ConvexMixture<F> {
    /// Builds the mixture with anchor weight `anchor` in `(0, 1]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAnchorWeight`] if `anchor` is not in `(0, 1]` (NaN included).
    /// Use [`ConvexMixture::unanchored`] for `a = 0`.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{ConvexMixture, Error};
    ///
    /// assert!(ConvexMixture::new(0.3).is_ok());
    /// assert!(matches!(ConvexMixture::new(0.0), Err(Error::InvalidAnchorWeight { .. })));
    /// ```
    pub fn new(anchor: F) -> Result<Self> {
        if anchor > F::zero() && anchor <= F::one() {
            Ok(ConvexMixture { anchor })
        } else {
            Err(Error::InvalidAnchorWeight {
                value: to_f64(anchor),
                range: "(0, 1]; use ConvexMixture::unanchored for 0",
            })
        }
    }

    /// Builds the unanchored operator `q_g = S_g` (`a = 0`), which ignores the teacher.
    ///
    /// With exact students the recursion then stays at `D(S_0)`, and with
    /// imperfect ones it drifts.
    pub fn unanchored() -> Self {
        ConvexMixture { anchor: F::zero() }
    }

    /// Returns the anchor weight `a`.
    pub fn anchor(&self) -> F {
        self.anchor
    }
}

impl<F: Real> MetaTeacherOperator<F> for ConvexMixture<F> {
    fn anchor_weight(&self) -> F {
        self.anchor
    }

    /// Writes `a T0 + (1 - a) S_g`, where `S_g` is the last student.
    ///
    /// # Errors
    ///
    /// - [`Error::TeacherCount`] unless exactly one base teacher is given.
    /// - [`Error::Empty`] if `students` is empty.
    /// - [`Error::LengthMismatch`] if the teacher or the last student is not as
    ///   long as `out`.
    fn combine_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        out: ArrayViewMut1<F>,
    ) -> Result<()> {
        let [teacher] = teachers else {
            return Err(Error::TeacherCount {
                operator: "ConvexMixture",
                expected: "exactly 1",
                found: teachers.len(),
            });
        };
        let student = students.last().ok_or(Error::Empty {
            what: "student history",
        })?;
        check_view_lengths(teachers, std::slice::from_ref(student), out.len())?;

        let a = self.anchor;
        let b = F::one() - a;
        Zip::from(out)
            .and(teacher)
            .and(student)
            .for_each(|q, &t, &s| *q = a * t + b * s);
        Ok(())
    }

    fn history_window(&self) -> Option<usize> {
        Some(1)
    }

    fn name(&self) -> String {
        format!("ConvexMixture(a = {})", Compact(self.anchor))
    }
}
