//! The Cranelift backend: compiles an IR [`Function`](crate::ir::Function)
//! (the forward program or the gradient program) to machine code for this
//! host and runs it.
//!
//! - [`abi`]: the generated function's signature and the scratch layout.
//! - [`translate`]: IR -> Cranelift IR, each operation a loop nest over its
//!   static shape; `ops` holds the lowering of the larger operations, `fuse`
//!   the fusion of elementwise runs into one loop and slices as views.
//! - [`jit`]: the ISA and module, and [`JitFunction`], the callable.
//! - [`batch`], [`translate_batch`]: [`BatchedFunction`], the same with the
//!   loop over a mini-batch's examples inside the machine code, returning the
//!   mean of every loss, metric and gradient in one call.
//! - [`libm`]: the host math functions the generated code calls.
//!
//! The generated code computes what [`crate::ir::interp`] computes, in the
//! same order, so the results are the same bits (a NaN's payload aside).
//! `unsafe` lives only in this module ([`jit`], [`batch`]): user input cannot reach it,
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
pub mod batch;
mod fuse;
pub mod jit;
pub mod libm;
mod ops;
pub mod translate;
pub mod translate_batch;

#[cfg(test)]
mod tests;

pub use abi::{BatchOutput, Reduce, Scratch};
pub use batch::{
    batch_clif_text, compile_batched, compile_batched_with, BatchOptions, BatchedFunction,
};
pub use jit::{clif_text, compile, JitFunction};
