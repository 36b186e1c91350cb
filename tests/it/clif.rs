//! Snapshots of the Cranelift IR that the JIT generates for a few small
//! programs (`tests/cases/clif/*.grad`): the forward and the gradient
//! function, as `gradc clif` prints them, beside the source.

use crate::common::{compile, each_case, files, snapshots};

fn clif_of(src: &str) -> String {
    let c = compile(src);
    let g = c.gradient().unwrap_or_else(|d| panic!("{d:?}"));
    let mut out = String::new();
    for (name, f) in [("forward", &c.ir), ("gradient", &g)] {
        let text = gradc::backend::clif_text(f).unwrap_or_else(|e| panic!("{name}: {e}"));
        out += &format!("; {name}\n{text}\n");
    }
    out
}

#[test]
fn clif_of_small_programs() {
    let files = files("tests/cases/clif", "grad");
    assert!(files.len() >= 3, "cases in tests/cases/clif: {files:?}");
    each_case(files, |name, path| {
        let src = std::fs::read_to_string(&path).unwrap();
        let text = format!("-- source --\n{src}-- clif --\n{}", clif_of(&src));
        insta::with_settings!({
            snapshot_path => snapshots("clif"),
            prepend_module_to_snapshot => false,
            input_file => &path,
        }, {
            insta::assert_snapshot!(name, text);
        });
    });
}

#[test]
fn the_same_program_compiles_to_the_same_code() {
    // The convolution's fused runs read several tensors and write several
    // results, each moved to the run's row: their code is emitted in the
    // order of the values, not in that of a hash map's walk.
    let src = std::fs::read_to_string("examples/cnn.grad").unwrap();
    let first = clif_of(&src);
    for _ in 0..4 {
        assert!(
            clif_of(&src) == first,
            "two compilations of examples/cnn.grad differ"
        );
    }
}

/// `src` with each `dim NAME` line given its size from `dims`.
fn with_dims(src: &str, dims: &[(&str, usize)]) -> String {
    src.lines()
        .map(|line| {
            let named = dims.iter().find(|(name, _)| {
                line.strip_prefix("dim ")
                    .is_some_and(|rest| rest.split_whitespace().next() == Some(*name))
            });
            match named {
                Some((name, n)) => format!("dim {name} = {n}"),
                None => line.to_string(),
            }
        })
        .map(|line| line + "\n")
        .collect()
}

#[test]
fn a_loop_going_down_asks_for_the_next_saved_step_read_in_pieces() {
    // `lstm`'s gradient reads each step of the forward loop back, going
    // down, as one row of 294 numbers that it slices into its pieces: it
    // asks for the next one (the host function is declared by name).
    let prefetch = "gradc_prefetch";
    let lstm = std::fs::read_to_string("gradbench/lstm.grad").unwrap();
    let lstm = with_dims(&lstm, &[("L", 2), ("B", 14), ("C", 16)]);
    let text = clif_of(&lstm);
    let (forward, gradient) = text.split_once("; gradient").unwrap();
    assert!(gradient.contains(prefetch), "{gradient}");
    assert!(!forward.contains(prefetch));
    // `ode`'s reads each saved stage whole, a stream the hardware
    // follows: no prefetch.
    let ode = std::fs::read_to_string("gradbench/ode.grad").unwrap();
    let ode = with_dims(&ode, &[("N", 1000), ("S", 4)]);
    assert!(!clif_of(&ode).contains(prefetch));
}
