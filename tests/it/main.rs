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
mod broadcast;
mod cases;
mod clif;
mod data;
mod derivative;
mod derivative_loops;
mod dims;
mod examples;
mod f32;
mod fuzz;
mod gather;
mod gather_loops;
mod grad_cases;
mod gradbench;
mod gradbench_evals;
mod gradbench_nested;
mod hoisting;
mod interp;
mod jit;
mod loop_programs;
mod loops;
mod nan;
mod optimizers;
mod precompute;
mod reference;
mod repl;
mod robustness;
mod rows;
mod shapes;
mod threads;
mod train;
mod window;

/// With `autotests = false`, a `.rs` file directly under `tests/` is not
/// built, and one in `tests/it/` only if `main.rs` declares it: either would
/// hold tests that never run.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let rust_files = |dir: &str| -> Vec<String> {
        let dir = common::root().join(dir);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut names: Vec<String> = entries
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let stray = rust_files("tests");
    assert!(
        stray.is_empty(),
        "not built: {stray:?} in tests/; make each a module of tests/it"
    );
    let main = include_str!("main.rs");
    let undeclared: Vec<String> = rust_files("tests/it")
        .into_iter()
        .filter(|m| m != "main" && !main.contains(&format!("\nmod {m};\n")))
        .collect();
    assert!(
        undeclared.is_empty(),
        "tests/it/main.rs does not declare: {undeclared:?}"
    );
}
