//! The element type training computes in: [`Dtype`] (`f64`, the default, or
//! `f32`, chosen by `dtype = f32` in the `train` block or `--dtype`), and
//! [`Element`], the two Rust float types the batched machine code reads
//! and writes.
//!
//! Only the batched JIT and the runtime's buffers take an element type; the
//! interpreter, the per-example JIT, the REPL and every saved or printed
//! number stay f64 (an f32 value converts to f64 exactly).

use std::fmt;

/// The float type of a compiled batched function and of the buffers it
/// reads and writes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Dtype {
    /// IEEE double precision: every engine's reference arithmetic.
    #[default]
    F64,
    /// IEEE single precision: twice the SIMD lanes, half the memory traffic.
    F32,
}

impl Dtype {
    /// Every dtype, as written in a `train` block or on the command line.
    pub const ALL: [Dtype; 2] = [Dtype::F64, Dtype::F32];

    /// The name of the type, as written (`f64`, `f32`).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F64 => "f64",
            Dtype::F32 => "f32",
        }
    }

    /// The dtype named `name`, if any.
    pub fn parse(name: &str) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 => 8,
            Dtype::F32 => 4,
        }
    }

    /// The machine epsilon of the type, as an f64.
    pub fn epsilon(self) -> f64 {
        match self {
            Dtype::F64 => f64::EPSILON,
            Dtype::F32 => f64::from(f32::EPSILON),
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust float type that a batched function can compute in: `f64` or
/// `f32`. Sealed: the generated code knows only these two.
pub trait Element: Copy + Default + PartialEq + fmt::Debug + Send + Sync + sealed::Sealed {
    /// The dtype of this type.
    const DTYPE: Dtype;
    /// `x` rounded to this type (to nearest, ties to even).
    fn from_f64(x: f64) -> Self;
    /// This value as an f64 (exact).
    fn to_f64(self) -> f64;
}

impl Element for f64 {
    const DTYPE: Dtype = Dtype::F64;
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for f32 {}
}

/// `xs` rounded to `T`, elementwise.
pub fn convert<T: Element>(xs: &[f64]) -> Vec<T> {
    xs.iter().map(|&x| T::from_f64(x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for d in Dtype::ALL {
            assert_eq!(Dtype::parse(d.name()), Some(d));
        }
        assert_eq!(Dtype::parse("f16"), None);
        assert_eq!(Dtype::default(), Dtype::F64);
    }

    #[test]
    fn conversion_rounds_to_nearest() {
        let x = 0.1f64;
        assert_eq!(f32::from_f64(x), 0.1f32);
        assert_ne!(f32::from_f64(x).to_f64(), x);
        assert_eq!(f64::from_f64(x).to_f64(), x);
        assert_eq!(convert::<f32>(&[1.5, -2.25]), vec![1.5f32, -2.25]);
    }
}
