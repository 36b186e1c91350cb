//! Snapshots of the Cranelift IR that the JIT generates for a few small
//! programs (`tests/cases/clif/*.grad`): the forward and the gradient
//! function, as `gradc clif` prints them, beside the source.

use std::path::Path;

fn clif_of(src: &str) -> String {
    let c = gradc::compile(src).unwrap_or_else(|d| panic!("{d:?}"));
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/clif");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "grad"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "cases in {}", dir.display());
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(&path).unwrap();
        let text = format!("-- source --\n{src}-- clif --\n{}", clif_of(&src));
        insta::with_settings!({
            snapshot_path => "snapshots/clif",
            prepend_module_to_snapshot => false,
            input_file => &path,
        }, {
            insta::assert_snapshot!(name, text);
        });
    }
}
