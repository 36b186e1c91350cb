//! The host math functions the generated code calls: thin `extern "C"`
//! wrappers around the interpreter's own [`interp::unary`] and
//! [`interp::binary`], so that a transcendental function gives the JIT and the
//! interpreter the same bits.
//!
//! Every wrapper is registered with the JIT under its [`Callee::symbol`] name
//! (`JITBuilder::symbol`) and imported by the translator on first use.

use crate::ir::interp;
use crate::ir::{Binary, Unary};

/// A host function the generated code may call.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Callee {
    /// `f64 -> f64`.
    Unary(Unary),
    /// `(f64, f64) -> f64`.
    Binary(Binary),
}

impl Callee {
    /// Every host function, in a fixed order.
    pub const ALL: [Callee; 12] = [
        Callee::Unary(Unary::Exp),
        Callee::Unary(Unary::Log),
        Callee::Unary(Unary::Sin),
        Callee::Unary(Unary::Cos),
        Callee::Unary(Unary::Tanh),
        Callee::Unary(Unary::Sigmoid),
        Callee::Unary(Unary::Softplus),
        Callee::Unary(Unary::Log1p),
        Callee::Unary(Unary::Expm1),
        Callee::Unary(Unary::Erf),
        Callee::Binary(Binary::Pow),
        Callee::Binary(Binary::BceLogits),
    ];

    /// The symbol the function is registered and imported under, and the
    /// wrapper's address (for `JITBuilder::symbol`), if it is a host function
    /// (the other operations, listed, are lowered inline).
    pub fn host(self) -> Option<(&'static str, *const u8)> {
        type F1 = extern "C" fn(f64) -> f64;
        type F2 = extern "C" fn(f64, f64) -> f64;
        Some(match self {
            Callee::Unary(Unary::Exp) => ("gradc_exp", exp as F1 as *const u8),
            Callee::Unary(Unary::Log) => ("gradc_log", log as F1 as *const u8),
            Callee::Unary(Unary::Sin) => ("gradc_sin", sin as F1 as *const u8),
            Callee::Unary(Unary::Cos) => ("gradc_cos", cos as F1 as *const u8),
            Callee::Unary(Unary::Tanh) => ("gradc_tanh", tanh as F1 as *const u8),
            Callee::Unary(Unary::Sigmoid) => ("gradc_sigmoid", sigmoid as F1 as *const u8),
            Callee::Unary(Unary::Softplus) => ("gradc_softplus", softplus as F1 as *const u8),
            Callee::Unary(Unary::Log1p) => ("gradc_log1p", log1p as F1 as *const u8),
            Callee::Unary(Unary::Expm1) => ("gradc_expm1", expm1 as F1 as *const u8),
            Callee::Unary(Unary::Erf) => ("gradc_erf", erf as F1 as *const u8),
            Callee::Binary(Binary::Pow) => ("gradc_pow", pow as F2 as *const u8),
            Callee::Binary(Binary::BceLogits) => {
                ("gradc_bce_logits", bce_logits as F2 as *const u8)
            }
            Callee::Unary(
                Unary::Neg
                | Unary::Sqrt
                | Unary::Abs
                | Unary::Sign
                | Unary::Relu
                | Unary::Floor
                | Unary::Round,
            )
            | Callee::Binary(
                Binary::Add
                | Binary::Sub
                | Binary::Mul
                | Binary::Div
                | Binary::Max
                | Binary::Min
                | Binary::Eq
                | Binary::Ne
                | Binary::Lt
                | Binary::Le
                | Binary::Gt
                | Binary::Ge,
            ) => return None,
        })
    }

    /// The symbol the function is registered and imported under, if it is a
    /// host function.
    pub fn symbol(self) -> Option<&'static str> {
        self.host().map(|(name, _)| name)
    }

    /// The number of f64 arguments.
    pub fn arity(self) -> usize {
        match self {
            Callee::Unary(_) => 1,
            Callee::Binary(_) => 2,
        }
    }
}

extern "C" fn exp(x: f64) -> f64 {
    interp::unary(Unary::Exp, x)
}

extern "C" fn log(x: f64) -> f64 {
    interp::unary(Unary::Log, x)
}

extern "C" fn sin(x: f64) -> f64 {
    interp::unary(Unary::Sin, x)
}

extern "C" fn cos(x: f64) -> f64 {
    interp::unary(Unary::Cos, x)
}

extern "C" fn tanh(x: f64) -> f64 {
    interp::unary(Unary::Tanh, x)
}

extern "C" fn sigmoid(x: f64) -> f64 {
    interp::unary(Unary::Sigmoid, x)
}

extern "C" fn softplus(x: f64) -> f64 {
    interp::unary(Unary::Softplus, x)
}

extern "C" fn log1p(x: f64) -> f64 {
    interp::unary(Unary::Log1p, x)
}

extern "C" fn expm1(x: f64) -> f64 {
    interp::unary(Unary::Expm1, x)
}

extern "C" fn erf(x: f64) -> f64 {
    interp::unary(Unary::Erf, x)
}

extern "C" fn pow(x: f64, y: f64) -> f64 {
    interp::binary(Binary::Pow, x, y)
}

extern "C" fn bce_logits(x: f64, y: f64) -> f64 {
    interp::binary(Binary::BceLogits, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_callee_has_a_symbol_and_an_address() {
        for c in Callee::ALL {
            assert!(c.host().is_some(), "{c:?}");
        }
        assert_eq!(Callee::Unary(Unary::Neg).symbol(), None);
        assert!(Callee::Binary(Binary::Add).host().is_none());
    }

    #[test]
    fn wrappers_are_the_interpreter() {
        assert_eq!(exp(1.5).to_bits(), crate::ir::math::exp(1.5).to_bits());
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(softplus(1000.0), 1000.0);
        assert_eq!(pow(2.0, 10.0), 1024.0);
        assert_eq!(log1p(1e-20), 1e-20);
        assert_eq!(expm1(1e-20), 1e-20);
        assert_eq!(erf(f64::INFINITY), 1.0);
        assert_eq!(erf(-0.0).to_bits(), (-0.0f64).to_bits());
    }
}
