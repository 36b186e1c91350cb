//! L-BFGS (Nocedal & Wright, Algorithm 7.4 and 7.5): the direction is the
//! two-loop recursion over the last `memory` pairs `s = x_{k+1} - x_k`,
//! `y = g_{k+1} - g_k`, with the initial matrix `gamma I`, `gamma = sᵀy /
//! yᵀy` of the newest pair; the step is a strong-Wolfe line search (c1 =
//! 1e-4, c2 = 0.9) from 1. A pair whose curvature `sᵀy` is not positive is
//! skipped (the strong Wolfe conditions make that rare); a direction that
//! does not descend, or a failed search, restarts from steepest descent
//! once before the method gives up.

use std::collections::VecDeque;

use super::full_batch::{Method, Point, Problem};
use super::linalg::{dot, norm};
use super::line_search::strong_wolfe;
use super::Error;

pub(super) struct Lbfgs {
    memory: usize,
    /// The newest pair last: `(s, y, 1 / sᵀy)`.
    pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)>,
}

impl Lbfgs {
    pub fn new(memory: usize) -> Lbfgs {
        Lbfgs {
            memory: memory.max(1),
            pairs: VecDeque::new(),
        }
    }

    /// `-H g` by the two-loop recursion; `-g` scaled to a unit first step
    /// without pairs.
    pub(super) fn direction(&self, g: &[f64]) -> Vec<f64> {
        let mut q = g.to_vec();
        let Some((s, y, _)) = self.pairs.back() else {
            let scale = 1.0 / norm(g).max(1.0);
            return g.iter().map(|v| -scale * v).collect();
        };
        let gamma = dot(s, y) / dot(y, y);
        let mut alphas = Vec::with_capacity(self.pairs.len());
        for (s, y, rho) in self.pairs.iter().rev() {
            let a = rho * dot(s, &q);
            for (q, y) in q.iter_mut().zip(y) {
                *q -= a * y;
            }
            alphas.push(a);
        }
        for v in &mut q {
            *v *= gamma;
        }
        for ((s, y, rho), a) in self.pairs.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            for (q, s) in q.iter_mut().zip(s) {
                *q += (a - b) * s;
            }
        }
        q.iter().map(|v| -v).collect()
    }

    /// Remembers the pair of a step from `a` to `b`, forgetting the oldest.
    fn remember(&mut self, a: &Point, b: &Point) {
        let s: Vec<f64> = b.x.iter().zip(&a.x).map(|(b, a)| b - a).collect();
        let y: Vec<f64> = b.g.iter().zip(&a.g).map(|(b, a)| b - a).collect();
        let sy = dot(&s, &y);
        if !(sy > 0.0 && sy.is_finite()) {
            return;
        }
        if self.pairs.len() == self.memory {
            self.pairs.pop_front();
        }
        self.pairs.push_back((s, y, 1.0 / sy));
    }

    /// A strong-Wolfe search along `d` from `at`.
    fn search(
        &self,
        p: &mut Problem<'_, '_>,
        at: &Point,
        d: &[f64],
    ) -> Result<Option<Point>, Error> {
        let mut tried: Vec<Point> = Vec::new();
        let found = strong_wolfe(at.f, dot(&at.g, d), |alpha| {
            let x: Vec<f64> = at.x.iter().zip(d).map(|(x, d)| x + alpha * d).collect();
            let pt = p.eval(&x)?;
            let r = if pt.is_finite() {
                (pt.f, dot(&pt.g, d))
            } else {
                (f64::INFINITY, f64::NAN)
            };
            tried.push(pt);
            Ok::<_, Error>(r)
        })?;
        // The point of the accepted step, among those evaluated.
        Ok(found.and_then(|s| {
            tried
                .into_iter()
                .rev()
                .find(|pt| pt.f == s.f && pt.is_finite())
        }))
    }
}

impl Method for Lbfgs {
    fn step(&mut self, p: &mut Problem<'_, '_>, at: &Point) -> Result<Option<Point>, Error> {
        let d = self.direction(&at.g);
        let mut next = self.search(p, at, &d)?;
        if next.is_none() && !self.pairs.is_empty() {
            // Restart from steepest descent.
            self.pairs.clear();
            next = self.search(p, at, &self.direction(&at.g))?;
        }
        if let Some(b) = &next {
            self.remember(at, b);
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_loop_recursion_matches_the_bfgs_matrix() {
        // One pair: H = (I - rho s yᵀ) gamma I (I - rho y sᵀ) + rho s sᵀ,
        // written out for s = [1, 0], y = [2, 1] (sᵀy = 2, yᵀy = 5,
        // gamma = 0.4): H = [[0.6, -0.2], [-0.2, 0.4]].
        let mut m = Lbfgs::new(5);
        let a = Point {
            x: vec![0.0, 0.0],
            f: 0.0,
            g: vec![0.0, 0.0],
            metrics: vec![],
        };
        let b = Point {
            x: vec![1.0, 0.0],
            f: 0.0,
            g: vec![2.0, 1.0],
            metrics: vec![],
        };
        m.remember(&a, &b);
        let d = m.direction(&[1.0, 1.0]);
        let want = [-(0.6 - 0.2), -(-0.2 + 0.4)];
        for (d, w) in d.iter().zip(want) {
            assert!((d - w).abs() < 1e-15, "{d:?}");
        }
        // A pair without positive curvature is skipped; the memory is kept
        // to its size.
        let mut flat = b.clone();
        flat.x = vec![2.0, 0.0];
        flat.g = vec![1.0, 1.0];
        m.remember(&b, &flat);
        assert_eq!(m.pairs.len(), 1);
        let mut one = Lbfgs::new(1);
        one.remember(&a, &b);
        let mut c = b.clone();
        c.x = vec![1.0, 1.0];
        c.g = vec![2.0, 3.0];
        one.remember(&b, &c);
        assert_eq!(one.pairs.len(), 1);
        assert_eq!(one.pairs[0].0, [0.0, 1.0]);
    }
}
