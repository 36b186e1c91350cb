//! The Cranelift backend: compiles an IR [`Function`](crate::ir::Function)
//! (the forward program or the gradient program) to machine code for this
//! host and runs it.
//!
//! The modules, each using only the ones listed before it (and its own
//! children), so that the imports form a tree without cycles:
//!
//! - [`subnormals`]: the option of running with subnormal numbers flushed
//!   to zero (x86-64's MXCSR), on its own; the kernel's threads take the
//!   caller's mode.
//! - [`libm`]: the host math functions the generated code calls.
//! - [`kernel`]: the matrix-product kernel the generated code calls for its
//!   large products (packed panels, SIMD micro-kernels chosen at run time),
//!   in the interpreter's order of additions.
//! - [`plan`]: what runs in which order and where every value lives, decided
//!   before translation, with no Cranelift in it: the fusion schedule
//!   (`plan::fuse`), the forward values recomputed by the backward pass
//!   (`plan::recompute`), the scratch layout (`plan::layout`), and the plan of a
//!   batched function (`plan::batch`: liveness, hoisting, stages, transposes,
//!   chunk products).
//! - [`abi`]: the calling convention: the entry points' signatures, the
//!   pointer tables and scratch buffer a call binds ([`Scratch`]), the
//!   status a call returns.
//! - `translate`: IR -> Cranelift IR following a plan, each operation a loop
//!   nest over its static shape. Its root is the translator's context; its
//!   children lower the operations (`ops` and the files it dispatches to),
//!   fuse runs (`fuse`), and build the two functions (`single`, `batch`).
//! - `workers`: a function of one example compiled in parts on several
//!   threads, each part as soon as the translator has built it.
//! - [`jit`]: the ISA and module, and [`JitFunction`], the callable.
//! - [`batch`]: [`BatchedFunction`], the same with the loop over a
//!   mini-batch's examples inside the machine code, returning the mean of
//!   every loss, metric and gradient in one call.
//! - [`precompute`]: the loops that read no parameter and no input, run
//!   once: it and [`jit`] use each other (the JIT compiles a function with
//!   its constant loops computed; they are computed by the JIT).
//!
//! In short: `subnormals, libm <- kernel, plan <- abi <- translate(ops, fuse,
//! single, batch) <- workers <- jit, precompute <- batch`.
//!
//! The generated code computes what [`crate::ir::interp`] computes, in the
//! same order, so the results are the same bits (a NaN's payload aside).
//! `unsafe` lives only in the two entry points, [`jit`] and [`batch`], in
//! the [`kernel`] they call, and in [`subnormals`]' two instructions: user
//! input cannot reach it, since every buffer is checked against its shape
//! before a call.
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
pub mod jit;
pub mod kernel;
pub mod libm;
pub mod plan;
pub mod precompute;
pub mod subnormals;
mod translate;
mod workers;

#[cfg(test)]
mod tests;

pub use abi::Scratch;
pub use batch::{
    batch_clif_text, compile_batched, compile_batched_with, BatchOptions, BatchedFunction,
};
pub use jit::{clif_text, compile, warm_up_parts, CompileError, JitFunction};
pub use plan::{BatchOutput, Reduce};
