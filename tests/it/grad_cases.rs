//! Snapshots of gradient programs: every `tests/cases/autodiff/*.grad` and
//! every `examples/*.grad`, each snapshot holding the source beside the
//! simplified gradient program as `gradc grad` prints it (each instruction
//! tagged with its source line), so a reader can check the derivation by
//! hand.
//!
//! Every gradient program also verifies and passes the finite-difference
//! check at the initial parameters and seeded random inputs (class indices
//! in range), except in cases that sit on a kink on purpose and say
//! `# no gradient check` (tests/it/autodiff.rs checks those points exactly).
//!
//! Regenerate with `INSTA_UPDATE=always cargo test --test it grad_cases::`, then
//! read every changed snapshot before committing it.

use std::fmt::Write;
use std::path::Path;

use gradc::autodiff::check;
use gradc::ir::printer::print_with_lines;
use gradc::ir::verify::verify;
use gradc::ir::Function;
use gradc::span::{LineIndex, Span};

use crate::common::{compile_as, each_case, examples, files, snapshots};

/// The gradient program of `src`, as `gradc grad` prints it.
fn gradient_text(name: &str, src: &str) -> String {
    let c = compile_as(name, src);
    let g = c
        .gradient()
        .unwrap_or_else(|d| panic!("{name}: no gradient: {}", d.message));
    if let Err(e) = verify(&g) {
        panic!("{name}: the gradient program does not verify: {e}\n{g}");
    }
    if !src.contains("# no gradient check") {
        gradient_checks(name, &c, &g);
    }
    let lines = LineIndex::new(src);
    print_with_lines(&g, |s| {
        (s != Span::default()).then(|| lines.line(s.lo as usize))
    })
}

fn show(src: &str, gradient: &str) -> String {
    let mut text = String::from("-- source --\n");
    text.push_str(src);
    if !src.ends_with('\n') {
        text.push_str("\n(no newline at end of file)\n");
    }
    let _ = write!(text, "-- gradient --\n{gradient}");
    text
}

fn snapshot(name: &str, path: &Path, text: &str) {
    insta::with_settings!({
        snapshot_path => snapshots("autodiff"),
        prepend_module_to_snapshot => false,
        input_file => path,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn gradient_programs() {
    each_case(files("tests/cases/autodiff", "grad"), |name, path| {
        let src = std::fs::read_to_string(&path).unwrap();
        snapshot(name, &path, &show(&src, &gradient_text(name, &src)));
    });
}

#[test]
fn gradient_programs_of_the_examples() {
    let examples = examples()
        .into_iter()
        .map(|(stem, path)| (format!("example_{stem}"), path));
    each_case(examples, |name, path| {
        let src = std::fs::read_to_string(&path).unwrap();
        snapshot(name, &path, &show(&src, &gradient_text(name, &src)));
    });
}

/// The gradient program against finite differences of the lowered IR, at
/// the initial parameters and three draws of the inputs.
fn gradient_checks(name: &str, c: &gradc::Compiled, g: &Function) {
    let params = c.initial_params(c.seed());
    let mut rng = <rand_xoshiro::Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(7);
    for trial in 0..3 {
        let inputs = check::random_inputs(&c.ir, &mut rng);
        let checks = check::check(&c.raw, g, &params, &inputs)
            .unwrap_or_else(|e| panic!("{name}: evaluation failed: {e}"));
        for pc in checks {
            assert!(
                pc.max_rel_error < 1e-6,
                "{name} (trial {trial}): {pc:?}\ninputs {inputs:?}\n{g}"
            );
        }
    }
}
