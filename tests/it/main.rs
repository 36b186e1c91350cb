//! The integration tests, in one binary, so that the crate and Cranelift are
//! linked once rather than once per file. Each area is a module; `common`
//! holds the helpers they share. `train` installs the binary's global
//! allocator, which counts allocations per thread, so tests running in
//! parallel do not disturb its counts.
//!
//! Run one module with `cargo test --test it MODULE::`, e.g.
//! `cargo test --test it jit::` (the filter matches any test whose
//! `module::name` contains it).

mod common;

mod autodiff;
mod cases;
mod clif;
mod examples;
mod grad_cases;
mod interp;
mod jit;
mod repl;
mod robustness;
mod train;
