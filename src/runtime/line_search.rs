//! Line searches along a descent direction `d` from `x`, on a function
//! given as a closure `phi(alpha) -> (f, f')`, the loss and its slope along
//! `d` at `x + alpha d`. A non-finite loss counts as +inf: too far.
//!
//! - [`backtracking`]: Armijo's sufficient decrease, halving from 1 (Newton's
//!   method and Gauss-Newton, whose full step is the natural one).
//! - [`strong_wolfe`]: Nocedal & Wright, Algorithms 3.5 and 3.6 (bracketing,
//!   then zoom with a safeguarded cubic interpolation), c1 = 1e-4, c2 = 0.9:
//!   L-BFGS.

/// The sufficient-decrease constant of both searches.
pub const C1: f64 = 1e-4;
/// The curvature constant of the strong Wolfe conditions (for quasi-Newton
/// directions).
pub const C2: f64 = 0.9;

/// Halvings of the step before a backtracking search gives up.
const MAX_HALVINGS: usize = 60;
/// Evaluations before a strong-Wolfe search gives up.
const MAX_EVALS: usize = 40;

/// A point of the search: the step, the loss and the slope there.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Sample {
    pub alpha: f64,
    pub f: f64,
    pub slope: f64,
}

fn finite_or_inf(f: f64) -> f64 {
    if f.is_finite() {
        f
    } else {
        f64::INFINITY
    }
}

/// The first step `1, 1/2, 1/4, ...` with `f(alpha) <= f0 + C1 alpha
/// slope0` and `f(alpha) < f0`; `None` if `slope0` is not negative or no
/// such step was found. `phi` returns the loss only.
pub fn backtracking<E>(
    f0: f64,
    slope0: f64,
    mut phi: impl FnMut(f64) -> Result<f64, E>,
) -> Result<Option<(f64, f64)>, E> {
    // (A NaN slope is not a descent either.)
    if slope0.is_nan() || slope0 >= 0.0 {
        return Ok(None);
    }
    let mut alpha = 1.0;
    for _ in 0..MAX_HALVINGS {
        let f = finite_or_inf(phi(alpha)?);
        if f <= f0 + C1 * alpha * slope0 && f < f0 {
            return Ok(Some((alpha, f)));
        }
        alpha *= 0.5;
    }
    Ok(None)
}

/// A step satisfying the strong Wolfe conditions, `f <= f0 + C1 alpha
/// slope0` and `|slope| <= C2 |slope0|`, starting from `alpha = 1`; `None`
/// if `slope0` is not negative or none was found. If the search runs out of
/// evaluations, the best point with a sufficient decrease (if any) is
/// returned.
pub fn strong_wolfe<E>(
    f0: f64,
    slope0: f64,
    mut phi: impl FnMut(f64) -> Result<(f64, f64), E>,
) -> Result<Option<Sample>, E> {
    // (A NaN slope is not a descent either.)
    if slope0.is_nan() || slope0 >= 0.0 {
        return Ok(None);
    }
    let mut eval = |alpha: f64| -> Result<Sample, E> {
        let (f, slope) = phi(alpha)?;
        let f = finite_or_inf(f);
        let slope = if f.is_finite() { slope } else { f64::NAN };
        Ok(Sample { alpha, f, slope })
    };
    let decreases = |s: &Sample| s.f <= f0 + C1 * s.alpha * slope0 && s.f < f0;
    let curved = |s: &Sample| s.slope.abs() <= C2 * slope0.abs();
    let start = Sample {
        alpha: 0.0,
        f: f0,
        slope: slope0,
    };
    let mut prev = start;
    let mut alpha = 1.0;
    let mut best: Option<Sample> = None;
    for i in 0..MAX_EVALS {
        let s = eval(alpha)?;
        if decreases(&s) && best.is_none_or(|b| s.f < b.f) {
            best = Some(s);
        }
        // Algorithm 3.5: a bracket, or an acceptable point.
        if !decreases(&s) || (i > 0 && s.f >= prev.f) || !s.slope.is_finite() {
            return zoom(prev, s, f0, slope0, &mut eval, best);
        }
        if curved(&s) {
            return Ok(Some(s));
        }
        if s.slope >= 0.0 {
            return zoom(s, prev, f0, slope0, &mut eval, best);
        }
        prev = s;
        alpha *= 2.0;
    }
    Ok(best)
}

/// Algorithm 3.6: `lo` has the lower loss with a sufficient decrease, and
/// the interval between `lo` and `hi` holds a strong-Wolfe point.
fn zoom<E>(
    mut lo: Sample,
    mut hi: Sample,
    f0: f64,
    slope0: f64,
    eval: &mut impl FnMut(f64) -> Result<Sample, E>,
    mut best: Option<Sample>,
) -> Result<Option<Sample>, E> {
    for _ in 0..MAX_EVALS {
        let alpha = interpolate(&lo, &hi);
        if (hi.alpha - lo.alpha).abs() < 1e-16 * lo.alpha.abs().max(1e-300) {
            break;
        }
        let s = eval(alpha)?;
        let decreases = s.f <= f0 + C1 * s.alpha * slope0 && s.f < f0;
        if decreases && best.is_none_or(|b| s.f < b.f) {
            best = Some(s);
        }
        if !decreases || s.f >= lo.f || !s.slope.is_finite() {
            hi = s;
        } else {
            if s.slope.abs() <= C2 * slope0.abs() {
                return Ok(Some(s));
            }
            if s.slope * (hi.alpha - lo.alpha) >= 0.0 {
                hi = lo;
            }
            lo = s;
        }
    }
    Ok(best.filter(|b| b.alpha > 0.0))
}

/// The minimiser of the cubic through `a` and `b` (values and slopes),
/// kept in the middle 80% of the interval; the midpoint when the cubic
/// has none or a slope is unknown.
fn interpolate(a: &Sample, b: &Sample) -> f64 {
    let (lo, hi) = (a.alpha.min(b.alpha), a.alpha.max(b.alpha));
    let mid = 0.5 * (lo + hi);
    if !(a.f.is_finite() && b.f.is_finite() && a.slope.is_finite() && b.slope.is_finite()) {
        return mid;
    }
    // Nocedal & Wright (3.59).
    let d1 = a.slope + b.slope - 3.0 * (a.f - b.f) / (a.alpha - b.alpha);
    let disc = d1 * d1 - a.slope * b.slope;
    if disc.is_nan() || disc < 0.0 {
        return mid;
    }
    let d2 = (b.alpha - a.alpha).signum() * disc.sqrt();
    let t = b.alpha - (b.alpha - a.alpha) * (b.slope + d2 - d1) / (b.slope - a.slope + 2.0 * d2);
    let margin = 0.1 * (hi - lo);
    if t.is_finite() {
        t.clamp(lo + margin, hi - margin)
    } else {
        mid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Never = std::convert::Infallible;

    #[test]
    fn backtracking_halves_until_the_loss_falls_enough() {
        // f(a) = (a - 0.1)^2 from f0 = 0.01, slope -0.2: 1, 0.5 and 0.25
        // fail, 0.125 gives 0.000625 <= 0.01 - 1e-4 * 0.125 * 0.2.
        let mut tried = Vec::new();
        let r = backtracking(0.01, -0.2, |a| {
            tried.push(a);
            Ok::<_, Never>((a - 0.1) * (a - 0.1))
        });
        assert_eq!(r.unwrap(), Some((0.125, (0.125 - 0.1) * (0.125 - 0.1))));
        assert_eq!(tried, [1.0, 0.5, 0.25, 0.125]);
        // A non-finite loss is too far; an ascent direction is refused.
        let r = backtracking(1.0, -1.0, |a| {
            Ok::<_, Never>(if a > 0.3 { f64::NAN } else { 0.5 })
        });
        assert_eq!(r.unwrap(), Some((0.25, 0.5)));
        assert_eq!(
            backtracking(1.0, 0.5, |_| Ok::<_, Never>(0.0)).unwrap(),
            None
        );
    }

    #[test]
    fn strong_wolfe_on_a_quadratic_takes_the_exact_step() {
        // f(a) = (a - 1)^2 - 1: the full step is the minimiser (slope 0).
        let s = strong_wolfe(0.0, -2.0, |a| {
            Ok::<_, Never>(((a - 1.0).powi(2) - 1.0, 2.0 * (a - 1.0)))
        })
        .unwrap()
        .unwrap();
        assert_eq!((s.alpha, s.f, s.slope), (1.0, -1.0, 0.0));
    }

    #[test]
    fn strong_wolfe_points_satisfy_both_conditions() {
        // Minimisers far away (expansion) and close by (zoom), and a
        // function that is NaN past a point.
        let cases: [(f64, f64); 4] = [(40.0, 1.0), (0.01, 1.0), (3.0, 0.3), (0.5, 7.0)];
        for (m, k) in cases {
            // f(a) = k (a - m)^2 + a^4 / 100: convex, slope at 0 is -2 k m.
            let f = |a: f64| k * (a - m).powi(2) + a.powi(4) / 100.0;
            let df = |a: f64| 2.0 * k * (a - m) + a.powi(3) / 25.0;
            let (f0, s0) = (f(0.0), df(0.0));
            let s = strong_wolfe(f0, s0, |a| Ok::<_, Never>((f(a), df(a))))
                .unwrap()
                .unwrap();
            assert!(s.f <= f0 + C1 * s.alpha * s0, "{m} {k}: {s:?}");
            assert!(s.slope.abs() <= C2 * s0.abs(), "{m} {k}: {s:?}");
        }
        let s = strong_wolfe(1.0, -1.0, |a| {
            Ok::<_, Never>(if a > 0.7 {
                (f64::NAN, f64::NAN)
            } else {
                ((a - 0.6).powi(2), 2.0 * (a - 0.6))
            })
        })
        .unwrap()
        .unwrap();
        assert!(s.alpha <= 0.7 && s.f < 1.0 && s.slope.abs() <= 0.9, "{s:?}");
        assert_eq!(
            strong_wolfe(0.0, 1.0, |_| Ok::<_, Never>((0.0, 0.0))).unwrap(),
            None
        );
    }
}
