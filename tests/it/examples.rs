//! Every `examples/*.grad` compiles, its IR verifies, and the interpreter gives
//! a finite loss at the initial parameters (drawn with the train block's seed)
//! and zero inputs. The examples are what users copy first: each one must run.

use std::path::Path;

use gradc::ir::interp::run_outputs;
use gradc::ir::verify::verify;
use gradc::ir::Role;
use gradc::shape::Tensor;

use crate::common::{compile_as, each_case, examples, root};

fn compile(path: &Path) -> (String, gradc::Compiled) {
    let bytes = std::fs::read(path).unwrap();
    let src = gradc::source_text(&bytes)
        .unwrap_or_else(|d| panic!("{}: {}", path.display(), d.message))
        .to_string();
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let compiled = compile_as(&file, &src);
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
    each_case(files, |_, path| {
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
    });
}

#[test]
fn quadratic_starts_at_nine() {
    let path = root().join("examples/quadratic.grad");
    let (_, c) = compile(&path);
    // param x = -3; loss x^2 = (-3)^2 = 9.
    assert_eq!(c.initial_params(c.seed()), vec![Tensor::scalar(-3.0)]);
    assert_eq!(initial_loss(&c), 9.0);
}
