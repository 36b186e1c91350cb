//! Static shapes, and the dense f64 tensors the interpreter and runtime use.

use std::fmt;

/// A static shape: `[]` is a scalar, `[n]` a vector, `[m, n]` a matrix.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    pub fn scalar() -> Shape {
        Shape(Vec::new())
    }

    pub fn vector(n: usize) -> Shape {
        Shape(vec![n])
    }

    pub fn matrix(m: usize, n: usize) -> Shape {
        Shape(vec![m, n])
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn is_scalar(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of elements (1 for a scalar).
    pub fn size(&self) -> usize {
        self.0.iter().product()
    }

    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Row-major strides, in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut strides = vec![1; self.rank()];
        for i in (0..self.rank().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.0[i + 1];
        }
        strides
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

/// A dense row-major tensor of f64.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Shape,
    pub data: Vec<f64>,
}

impl Tensor {
    pub fn new(shape: Shape, data: Vec<f64>) -> Tensor {
        assert_eq!(shape.size(), data.len(), "tensor data matches its shape");
        Tensor { shape, data }
    }

    pub fn scalar(x: f64) -> Tensor {
        Tensor {
            shape: Shape::scalar(),
            data: vec![x],
        }
    }

    pub fn zeros(shape: Shape) -> Tensor {
        let n = shape.size();
        Tensor {
            shape,
            data: vec![0.0; n],
        }
    }

    pub fn filled(shape: Shape, x: f64) -> Tensor {
        let n = shape.size();
        Tensor {
            shape,
            data: vec![x; n],
        }
    }

    /// The single value of a scalar (or one-element) tensor.
    pub fn item(&self) -> f64 {
        assert_eq!(self.data.len(), 1, "item() of a one-element tensor");
        self.data[0]
    }
}

impl fmt::Display for Tensor {
    /// Scalars as numbers, vectors as `[a, b]`, matrices as rows of vectors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn go(f: &mut fmt::Formatter<'_>, dims: &[usize], data: &[f64]) -> fmt::Result {
            match dims.split_first() {
                None => write!(f, "{}", fmt_num(data[0])),
                Some((&n, rest)) => {
                    let step: usize = rest.iter().product();
                    write!(f, "[")?;
                    for i in 0..n {
                        if i > 0 {
                            write!(f, ", ")?;
                        }
                        go(f, rest, &data[i * step..(i + 1) * step])?;
                    }
                    write!(f, "]")
                }
            }
        }
        go(f, self.shape.dims(), &self.data)
    }
}

/// A number as the user reads it: integers without a decimal point, others in
/// the shortest form that reads back to the same f64.
pub fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        // Prints -0 as 0.
        "0".to_string()
    } else if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else if x.is_finite() && (x.abs() < 1e-4 || x.abs() >= 1e15) {
        // Shortest round-trip digits, without a page of zeros.
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_are_row_major() {
        assert_eq!(Shape(vec![2, 3, 4]).strides(), vec![12, 4, 1]);
        assert_eq!(Shape::scalar().strides(), Vec::<usize>::new());
    }

    #[test]
    fn tensors_print_nested() {
        let t = Tensor::new(Shape::matrix(2, 2), vec![1.0, 2.5, -3.0, 0.0]);
        assert_eq!(t.to_string(), "[[1, 2.5], [-3, 0]]");
        assert_eq!(fmt_num(3.720075976020836e-44), "3.720075976020836e-44");
        assert_eq!(fmt_num(0.001), "0.001");
    }
}
