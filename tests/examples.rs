//! Every `examples/*.grad` compiles, its IR verifies, and the interpreter gives
//! a finite loss at the initial parameters (drawn with the train block's seed)
//! and zero inputs. The examples are what users copy first: each one must run.

use std::path::{Path, PathBuf};

use gradc::ir::interp::run_outputs;
use gradc::ir::verify::verify;
use gradc::ir::Role;
use gradc::shape::Tensor;

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "grad"))
        .collect();
    files.sort();
    files
}

fn compile(path: &Path) -> (String, gradc::Compiled) {
    let bytes = std::fs::read(path).unwrap();
    let src = gradc::source_text(&bytes)
        .unwrap_or_else(|d| panic!("{}: {}", path.display(), d.message))
        .to_string();
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let compiled = gradc::compile(&src).unwrap_or_else(|d| {
        panic!(
            "{file} does not compile:\n{}",
            gradc::diagnostic::render_all(&d, &file, &src, false)
        )
    });
    (src, compiled)
}

/// The loss at the initial parameters, with every input zero.
fn initial_loss(c: &gradc::Compiled) -> f64 {
    let params = c.initial_params(c.seed());
    let inputs: Vec<Tensor> =
        c.ir.inputs
            .iter()
            .map(|s| Tensor::zeros(s.shape.clone()))
            .collect();
    let outputs = run_outputs(&c.ir, &params, &inputs).unwrap_or_else(|e| panic!("{e}\n{}", c.ir));
    let (_, loss) = outputs
        .iter()
        .find(|(o, _)| o.role == Role::Loss)
        .expect("a loss output");
    loss.item()
}

#[test]
fn every_example_compiles_verifies_and_has_a_finite_loss() {
    let files = examples();
    assert!(files.len() >= 3, "too few examples: {files:?}");
    for path in files {
        let name = path.display().to_string();
        let (_, c) = compile(&path);
        verify(&c.raw).unwrap_or_else(|e| panic!("{name}: raw IR: {e}\n{}", c.raw));
        verify(&c.ir).unwrap_or_else(|e| panic!("{name}: optimised IR: {e}\n{}", c.ir));
        let loss = initial_loss(&c);
        assert!(loss.is_finite(), "{name}: initial loss {loss}");
        // The data file a train block names is shipped beside the example.
        if let Some(data) = c.typed.train.as_ref().and_then(|t| t.data.as_ref()) {
            let csv = path.parent().unwrap().join(&data.path);
            assert!(csv.is_file(), "{name}: no data file {}", csv.display());
        }
    }
}

#[test]
fn quadratic_starts_at_nine() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quadratic.grad");
    let (_, c) = compile(&path);
    // param x = -3; loss x^2 = (-3)^2 = 9.
    assert_eq!(c.initial_params(c.seed()), vec![Tensor::scalar(-3.0)]);
    assert_eq!(initial_loss(&c), 9.0);
}
