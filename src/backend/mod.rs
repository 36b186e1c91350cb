//! The Cranelift backend: compiles an IR [`Function`](crate::ir::Function)
//! (the forward program or the gradient program) to machine code for this
//! host and runs it.
//!
//! - [`abi`]: the generated function's signature and the scratch layout.
//! - [`translate`]: IR -> Cranelift IR, each operation a loop nest over its
//!   static shape; `ops` holds the lowering of the larger operations.
//! - [`jit`]: the ISA and module, and [`JitFunction`], the callable.
//! - [`libm`]: the host math functions the generated code calls.
//!
//! The generated code computes what [`crate::ir::interp`] computes, in the
//! same order, so the results are the same bits (a NaN's payload aside).
//! `unsafe` lives only in this module ([`jit`]): user input cannot reach it,
//! since every buffer is checked against its shape before a call.
//!
//! ```
//! let compiled = gradc::compile("param w: [2] = [1, 2]\ninput x: [2]\nloss dot(w, x)\n").unwrap();
//! let jit = gradc::backend::compile(&compiled.ir).unwrap();
//! let x = gradc::shape::Tensor::new(gradc::shape::Shape::vector(2), vec![3.0, 4.0]);
//! let out = jit.run(&compiled.initial_params(0), &[x]).unwrap();
//! assert_eq!(out[0].item(), 11.0);
//! ```

pub mod abi;
pub mod jit;
pub mod libm;
mod ops;
pub mod translate;

#[cfg(test)]
mod tests;

pub use abi::Scratch;
pub use jit::{clif_text, compile, JitFunction};
