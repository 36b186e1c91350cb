//! The integration tests, in one binary: linking the crate and Cranelift
//! once instead of once per file is most of what a cold `cargo test` saves.
//! Each former test file is a module; `common` holds the helpers they share.
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
