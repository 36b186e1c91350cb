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
