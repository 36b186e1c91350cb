//! `exp`, `sigmoid` and `tanh` of pairs of f64s, by a call to the kernels
//! [`kernel::exp`](crate::backend::kernel::exp), which compute
//! [`crate::ir::math`]'s sequence of operations two at a time and so give
//! the interpreter's bits. Single elements, f32 functions and CPUs without
//! FMA call the host functions, one element at a time.

use cranelift_codegen::ir::{self as cl, types, AbiParam, InstBuilder};
use cranelift_module::{Linkage, Module};

use super::Translator;
use crate::backend::kernel::exp::{EXP2, SIGMOID2, TANH2};
use crate::backend::libm::Callee;
use crate::ir::Unary;

/// Whether the CPU has what the pair kernels need (`cranelift_native`
/// enables the same features in the generated code).
fn has_pair_kernels() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("sse4.1");
    #[allow(unreachable_code)]
    false
}

impl Translator<'_, '_> {
    /// Whether `exp`, `sigmoid` and `tanh` work on pairs (`lane_wise`).
    pub(super) fn pair_math(&self) -> bool {
        self.st == types::F64 && has_pair_kernels()
    }

    /// `exp(x)`, for an element or a pair of them.
    pub(super) fn exp(&mut self, x: cl::Value) -> cl::Value {
        self.math(Unary::Exp, EXP2, x)
    }

    /// `sigmoid(x)`, for an element or a pair of them.
    pub(super) fn sigmoid(&mut self, x: cl::Value) -> cl::Value {
        self.math(Unary::Sigmoid, SIGMOID2, x)
    }

    /// `tanh(x)`, for an element or a pair of them.
    pub(super) fn tanh(&mut self, x: cl::Value) -> cl::Value {
        self.math(Unary::Tanh, TANH2, x)
    }

    /// `u(x)`: the pair kernel `symbol` for a vector, else the host function.
    fn math(&mut self, u: Unary, symbol: &str, x: cl::Value) -> cl::Value {
        if !self.b.func.dfg.value_type(x).is_vector() {
            return self.call(Callee::Unary(u), &[x]);
        }
        let mut sig = self.module.make_signature();
        sig.params.push(AbiParam::new(types::F64X2));
        sig.returns.push(AbiParam::new(types::F64X2));
        let id = self
            .module
            .declare_function(symbol, Linkage::Import, &sig)
            .expect("a pair kernel is declared with one signature");
        let f = self.module.declare_func_in_func(id, self.b.func);
        let call = self.b.ins().call(f, &[x]);
        self.b.inst_results(call)[0]
    }
}
