//! `exp`, `sigmoid` and `tanh` of pairs of f64s, by a call to the kernels
//! [`kernel::exp`](crate::backend::kernel::exp), which compute
//! [`crate::ir::math`]'s sequence of operations two at a time and so give
//! the interpreter's bits; of four pairs at once (a run's elements eight
//! at a time), through a stack slot, by the kernels that compute it four
//! at a time with AVX2. Single elements, f32 functions and CPUs without
//! FMA call the host functions, one element at a time.

use cranelift_codegen::ir::{
    self as cl, types, AbiParam, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind,
};
use cranelift_module::{Linkage, Module};

use super::Translator;
use crate::backend::kernel::exp::{EXP2, EXP8, SIGMOID2, SIGMOID8, TANH2, TANH8};
use crate::backend::libm::Callee;
use crate::ir::Unary;

/// The pairs of elements an eight-wide kernel takes.
pub(super) const PAIRS: usize = 4;

/// Whether the CPU has what the eight-wide kernels need.
fn has_eight_kernels() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma");
    #[allow(unreachable_code)]
    false
}

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

    /// Whether `u` of four pairs is one call (`math_of_pairs`).
    pub(super) fn eight_wide(&self, u: Unary) -> bool {
        matches!(u, Unary::Exp | Unary::Sigmoid | Unary::Tanh)
            && self.pair_math()
            && has_eight_kernels()
    }

    /// `u(x)` of the [`PAIRS`] pairs `xs` (`eight_wide`): stored side by
    /// side in a stack slot, computed there by the kernel, loaded back.
    pub(super) fn math_of_pairs(&mut self, u: Unary, xs: &[cl::Value]) -> Vec<cl::Value> {
        let symbol = match u {
            Unary::Exp => EXP8,
            Unary::Sigmoid => SIGMOID8,
            Unary::Tanh => TANH8,
            _ => unreachable!("only exp, sigmoid and tanh are eight wide"),
        };
        let slot = *self.eight.get_or_insert_with(|| {
            let data = StackSlotData::new(StackSlotKind::ExplicitSlot, 64, 5);
            self.b.create_sized_stack_slot(data)
        });
        let flags = MemFlagsData::trusted();
        let at = self.b.ins().stack_addr(self.ptr, slot, 0);
        for (j, &x) in xs.iter().enumerate() {
            self.b.ins().store(flags, x, at, 16 * j as i32);
        }
        let mut sig = self.module.make_signature();
        sig.params.push(AbiParam::new(self.ptr));
        let id = self
            .module
            .declare_function(symbol, Linkage::Import, &sig)
            .expect("an eight-wide kernel is declared with one signature");
        let f = self.module.declare_func_in_func(id, self.b.func);
        self.b.ins().call(f, &[at]);
        (0..xs.len())
            .map(|j| self.b.ins().load(types::F64X2, flags, at, 16 * j as i32))
            .collect()
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
