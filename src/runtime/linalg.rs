//! Small dense linear algebra for the second-order methods: symmetric
//! positive definite systems by Cholesky, with a multiple of the identity
//! added (the damping of Newton's method and Levenberg-Marquardt).
//!
//! The systems have one row per parameter element (at most a few hundred),
//! so plain row-major `Vec<f64>` loops are enough; a linear algebra crate
//! would cost more build time than these forty lines.

/// A square matrix, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    pub n: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn zeros(n: usize) -> Matrix {
        Matrix {
            n,
            data: vec![0.0; n * n],
        }
    }

    /// From rows, each of length `rows.len()`.
    pub fn from_rows(rows: &[Vec<f64>]) -> Matrix {
        let n = rows.len();
        assert!(rows.iter().all(|r| r.len() == n), "a square matrix");
        Matrix {
            n,
            data: rows.concat(),
        }
    }

    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.n + j]
    }

    /// The largest absolute diagonal element (0 for an empty matrix).
    pub fn max_diag(&self) -> f64 {
        (0..self.n).map(|i| self.at(i, i).abs()).fold(0.0, f64::max)
    }

    /// `self += x yᵀ * scale` for the rank-one updates of `JᵀJ`.
    pub fn add_outer(&mut self, x: &[f64], scale: f64) {
        for (i, xi) in x.iter().enumerate() {
            let row = &mut self.data[i * self.n..(i + 1) * self.n];
            for (a, xj) in row.iter_mut().zip(x) {
                *a += scale * xi * xj;
            }
        }
    }
}

/// Solves `(a + mu I) x = b` for a symmetric `a` by Cholesky; `None` when
/// `a + mu I` is not (numerically) positive definite, or a number is not
/// finite.
pub fn solve_damped(a: &Matrix, mu: f64, b: &[f64]) -> Option<Vec<f64>> {
    let n = a.n;
    assert_eq!(b.len(), n, "a right-hand side per row");
    // The factor L, lower triangle, row-major: a + mu I = L Lᵀ.
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a.at(i, j) + if i == j { mu } else { 0.0 };
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    // L y = b, then Lᵀ x = y.
    let mut x = b.to_vec();
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * x[k]).sum();
        x[i] = (x[i] - s) / l[i * n + i];
    }
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (x[i] - s) / l[i * n + i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The dot product.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The Euclidean norm.
pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_positive_definite_system() {
        // [[4, 2], [2, 3]] x = [2, 1]: x = [0.5, 0].
        let a = Matrix::from_rows(&[vec![4.0, 2.0], vec![2.0, 3.0]]);
        assert_eq!(solve_damped(&a, 0.0, &[2.0, 1.0]).unwrap(), [0.5, 0.0]);
        // With mu = 1: [[5, 2], [2, 4]] x = [8, 10]: x = [0.75, 2.125].
        let x = solve_damped(&a, 1.0, &[8.0, 10.0]).unwrap();
        assert!(
            (x[0] - 0.75).abs() < 1e-15 && (x[1] - 2.125).abs() < 1e-15,
            "{x:?}"
        );
    }

    #[test]
    fn refuses_an_indefinite_one_until_damped() {
        let a = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, -2.0]]);
        assert_eq!(solve_damped(&a, 0.0, &[1.0, 1.0]), None);
        assert_eq!(solve_damped(&a, 2.0, &[1.0, 1.0]), None);
        assert_eq!(solve_damped(&a, 3.0, &[4.0, 1.0]).unwrap(), [1.0, 1.0]);
        let nan = Matrix::from_rows(&[vec![f64::NAN]]);
        assert_eq!(solve_damped(&nan, 0.0, &[1.0]), None);
    }

    #[test]
    fn a_larger_system_against_its_product() {
        // a = M Mᵀ + I for a fixed M, b = a * [1, 2, ..., n]: the solution
        // is that vector.
        let n = 6;
        let m: Vec<f64> = (0..n * n).map(|k| ((k * 7 % 11) as f64) - 5.0).collect();
        let mut a = Matrix::zeros(n);
        for i in 0..n {
            for j in 0..n {
                let s: f64 = (0..n).map(|k| m[i * n + k] * m[j * n + k]).sum();
                a.data[i * n + j] = s + if i == j { 1.0 } else { 0.0 };
            }
        }
        let want: Vec<f64> = (1..=n).map(|k| k as f64).collect();
        let b: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| a.at(i, j) * want[j]).sum())
            .collect();
        let x = solve_damped(&a, 0.0, &b).unwrap();
        for (x, w) in x.iter().zip(&want) {
            assert!((x - w).abs() < 1e-9, "{x} against {w}");
        }
    }

    #[test]
    fn outer_products_accumulate() {
        let mut a = Matrix::zeros(2);
        a.add_outer(&[1.0, 2.0], 0.5);
        a.add_outer(&[3.0, 0.0], 1.0);
        assert_eq!(a.data, [9.5, 1.0, 1.0, 2.0]);
        assert_eq!(a.max_diag(), 9.5);
    }
}
