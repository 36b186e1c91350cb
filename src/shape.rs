//! Static shapes, the dense f64 tensors the interpreter and runtime use, and
//! numbers as the user reads and writes them: one family of formatters and
//! one parser of number lists.

use std::fmt;

/// A static shape: `[]` is a scalar, `[n]` a vector, `[m, n]` a matrix.
#[derive(Clone, Debug, Default, Eq, PartialOrd, Ord)]
pub struct Shape(pub Vec<usize>);

/// Its dimensions hashed, as a derived `Hash` would (written out beside
/// the `PartialEq` below, which equal shapes' hashes agree with).
impl std::hash::Hash for Shape {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// Equal dimensions, compared one by one in place: the compiler compares
/// shapes at every instruction it makes, most of a few dimensions, where
/// the slice's comparison calls the C library's `memcmp`.
impl PartialEq for Shape {
    fn eq(&self, other: &Shape) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| a == b)
    }
}

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

    /// The length of the leading axis, and the elements of a row along it
    /// (the shape must have an axis).
    pub fn rows(&self) -> (usize, usize) {
        let (n, rest) = self.0.split_first().expect("rows of a scalar");
        (*n, rest.iter().product())
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
    /// Scalars as numbers, vectors as `[a, b]`, matrices as rows of vectors,
    /// each number in full ([`fmt_num`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fmt_tensor(self, fmt_num))
    }
}

// Numbers as the user reads and writes them. One family of formatters:
// [`fmt_num`] in full (values, the IR, the trace, predictions), [`fmt_sig`]
// to a number of significant digits (summaries, progress, plot axes), and
// [`fmt_tensor`] / [`fmt_value`] for tensors; one parser, [`parse_numbers`],
// for lists such as `1, 2; 3, 4` (`--input`, the REPL's `:set`).

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

/// Significant digits of [`fmt_short`]: losses and metrics in summaries.
pub const SHORT_DIGITS: usize = 7;

/// A number to `digits` significant digits, trailing zeros dropped, in
/// exponent notation when smaller than 1e-4 or at least `10^digits`.
/// Zero and non-finite numbers as [`fmt_num`] writes them.
pub fn fmt_sig(x: f64, digits: usize) -> String {
    let digits = digits.max(1);
    if x == 0.0 || !x.is_finite() {
        return fmt_num(x);
    }
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    let magnitude = x.abs().log10().floor() as i32;
    if x.abs() >= 1e-4 && magnitude < digits as i32 {
        let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
        trim(&format!("{x:.decimals$}"))
    } else {
        let s = format!("{x:.prec$e}", prec = digits - 1);
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        format!("{}e{exponent}", trim(mantissa))
    }
}

/// A number in [`SHORT_DIGITS`] significant digits.
pub fn fmt_short(x: f64) -> String {
    fmt_sig(x, SHORT_DIGITS)
}

/// A tensor with its numbers written by `num`: a number, `[a, b]`, or rows of
/// vectors (the form of `Tensor`'s `Display`, which uses [`fmt_num`]).
pub fn fmt_tensor(t: &Tensor, num: fn(f64) -> String) -> String {
    fn go(out: &mut String, dims: &[usize], data: &[f64], num: fn(f64) -> String) {
        match dims.split_first() {
            None => out.push_str(&num(data[0])),
            Some((&n, rest)) => {
                let step: usize = rest.iter().product();
                out.push('[');
                for i in 0..n {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    go(out, rest, &data[i * step..(i + 1) * step], num);
                }
                out.push(']');
            }
        }
    }
    let mut out = String::new();
    go(&mut out, t.shape.dims(), &t.data, num);
    out
}

/// Tensors with more elements than this are summarised by [`fmt_value`].
pub const MAX_SHOWN: usize = 100;

/// A value and its shape: `[0.5, 1] : [2]`; a tensor of more than
/// [`MAX_SHOWN`] numbers is summarised by its range.
pub fn fmt_value(t: &Tensor) -> String {
    if t.data.len() <= MAX_SHOWN {
        return format!("{t} : {}", t.shape);
    }
    let min = t.data.iter().copied().fold(f64::INFINITY, f64::min);
    let max = t.data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "<{} numbers from {} to {}> : {}",
        t.data.len(),
        fmt_num(min),
        fmt_num(max),
        t.shape
    )
}

/// Why a list of numbers does not give a tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum NumbersError {
    /// This piece is not a finite number.
    NotANumber(String),
    /// The shape holds `expected` numbers, and `given` were given.
    Count {
        shape: Shape,
        expected: usize,
        given: usize,
    },
}

impl NumbersError {
    /// The sentence for a value called `name`.
    pub fn describe(&self, name: &str) -> String {
        match self {
            NumbersError::NotANumber(s) => format!("`{s}` is not a finite number"),
            NumbersError::Count {
                shape,
                expected,
                given,
            } => format!(
                "`{name}` has shape {shape}, which holds {expected} number{}, but {given} were given",
                if *expected == 1 { "" } else { "s" }
            ),
        }
    }
}

/// Numbers separated by commas, the rows of a matrix by `;`: `1, 2; 3, 4`.
/// Every piece must be a finite number.
pub fn parse_numbers(text: &str) -> Result<Vec<f64>, NumbersError> {
    text.split([',', ';'])
        .map(|s| {
            let s = s.trim();
            s.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| NumbersError::NotANumber(s.to_string()))
        })
        .collect()
}

/// A tensor of `shape` from [`parse_numbers`] text, row-major.
pub fn parse_tensor(shape: &Shape, text: &str) -> Result<Tensor, NumbersError> {
    let numbers = parse_numbers(text)?;
    if numbers.len() != shape.size() {
        return Err(NumbersError::Count {
            shape: shape.clone(),
            expected: shape.size(),
            given: numbers.len(),
        });
    }
    Ok(Tensor::new(shape.clone(), numbers))
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

    #[test]
    fn significant_digits() {
        assert_eq!(fmt_short(0.08912929123), "0.08912929");
        assert_eq!(fmt_short(0.70356361), "0.7035636");
        assert_eq!(fmt_short(9.0), "9");
        assert_eq!(fmt_short(-0.0), "0");
        assert_eq!(fmt_short(f64::NAN), "NaN");
        assert_eq!(fmt_short(1.5e-5), "1.5e-5");
        assert_eq!(fmt_short(123456789.0), "1.234568e8");
        assert_eq!(fmt_sig(1234.5678, 3), "1.23e3");
        assert_eq!(fmt_sig(0.012345, 3), "0.0123");
        assert_eq!(fmt_sig(9.99999999, 3), "10");
    }

    #[test]
    fn tensors_in_other_formats() {
        let t = Tensor::new(Shape::vector(2), vec![1.0 / 3.0, 2.0]);
        assert_eq!(fmt_tensor(&t, fmt_short), "[0.3333333, 2]");
        assert_eq!(fmt_tensor(&t, fmt_num), t.to_string());
        assert_eq!(fmt_value(&t), "[0.3333333333333333, 2] : [2]");
        let big = Tensor::zeros(Shape::matrix(11, 10));
        assert_eq!(fmt_value(&big), "<110 numbers from 0 to 0> : [11, 10]");
    }

    #[test]
    fn number_lists() {
        assert_eq!(parse_numbers(" 1, 2; 3,4 "), Ok(vec![1.0, 2.0, 3.0, 4.0]));
        let e = parse_numbers("1, two").unwrap_err();
        assert_eq!(e.describe("x"), "`two` is not a finite number");
        assert!(parse_numbers("1, inf").is_err());
        let e = parse_tensor(&Shape::vector(2), "1, 2, 3").unwrap_err();
        assert_eq!(
            e.describe("x"),
            "`x` has shape [2], which holds 2 numbers, but 3 were given"
        );
        let t = parse_tensor(&Shape::matrix(2, 1), "1; 2").unwrap();
        assert_eq!(t.data, vec![1.0, 2.0]);
    }
}
