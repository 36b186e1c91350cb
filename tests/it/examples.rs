//! Every `examples/*.grad` compiles, its IR verifies, and the interpreter gives
//! a finite loss at the initial parameters (drawn with the train block's seed)
//! and zero inputs. The examples are what users copy first: each one must run.

use std::path::Path;

use gradc::ir::interp::run_outputs;
use gradc::ir::verify::verify;
use gradc::ir::Role;
use gradc::shape::Tensor;

use crate::common::{compile_as, each_case, examples, gradc, root};
use crate::reference::Gmm;

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
        // The data files a train block names are shipped beside the
        // example: a CSV or `.npz` file, or a file per input (`npy`, `idx`).
        let train = c.typed.train.as_ref();
        for data in train.iter().flat_map(|t| t.data.iter().chain(&t.test)) {
            let files: Vec<&str> = if data.path.is_empty() {
                data.arrays.iter().map(|a| a.name.as_str()).collect()
            } else {
                vec![data.path.as_str()]
            };
            for file in files {
                let file = path.parent().unwrap().join(file);
                assert!(file.is_file(), "{name}: no data file {}", file.display());
            }
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

/// An example trained as its train block says, from its folder.
fn train_example(name: &str) -> gradc::runtime::Report {
    let (_, c) = compile(&root().join("examples").join(name));
    let cfg = c.typed.train.clone().unwrap();
    let opts = gradc::runtime::Options {
        base_dir: root().join("examples"),
        ..Default::default()
    };
    gradc::runtime::train(&c, &cfg, &opts, &mut ()).unwrap_or_else(|e| panic!("{e}"))
}

fn metric(e: &gradc::runtime::Evaluation, name: &str) -> f64 {
    e.metrics.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn the_embedding_example_predicts_held_out_ratings_near_the_noise() {
    // gradc train examples/embedding.grad: the ratings are of rank 3 plus
    // noise of standard deviation 0.1; the biases alone give 0.78 held out.
    let r = train_example("embedding.grad");
    let test = r.test.as_ref().expect("a test set");
    assert_eq!(test.examples, 203);
    let held_out = metric(test, "squared_error").sqrt();
    assert!(held_out < 0.16, "held-out RMSE {held_out}");
    let train = metric(&r.train, "squared_error").sqrt();
    assert!(train < 0.11, "training RMSE {train}");
}

// ---------------------------------------------------------------------------
// examples/gmm.grad: GradBench's gmm objective

/// The points of `examples/data/mixture.csv`, read here (not by gradc).
fn mixture_points() -> Vec<[f64; 3]> {
    let text = std::fs::read_to_string(root().join("examples/data/mixture.csv")).unwrap();
    let row = |line: &str| {
        let v: Vec<f64> = line.split(',').map(|s| s.parse().unwrap()).collect();
        [v[0], v[1], v[2]]
    };
    text.lines().skip(1).map(row).collect()
}

/// Values spread over [-scale, scale], different for each `seed`.
fn spread(len: usize, seed: f64, scale: f64) -> Vec<f64> {
    (0..len)
        .map(|i| scale * (1.7 * i as f64 + seed).sin())
        .collect()
}

/// The .grad file's loss summed over the data is minus GradBench's
/// objective, at parameters away from the initial ones (off-diagonal parts
/// and unequal weights included).
#[test]
fn the_gmm_example_is_gradbenchs_objective() {
    let (_, c) = compile(&root().join("examples/gmm.grad"));
    let (alpha, mu, q, l) = (
        spread(3, 0.3, 0.5),
        spread(9, 1.1, 2.0),
        spread(9, 2.3, 0.6),
        spread(9, 0.7, 0.8),
    );
    let params: Vec<Tensor> = [&alpha, &mu, &q, &l]
        .iter()
        .zip(&c.ir.params)
        .map(|(v, p)| Tensor::new(p.shape.clone(), v.to_vec()))
        .collect();
    let points = mixture_points();
    assert_eq!(points.len(), 300, "the N of examples/gmm.grad");
    let mut total = 0.0;
    for x in &points {
        let input = Tensor::new(c.ir.inputs[0].shape.clone(), x.to_vec());
        let outputs = run_outputs(&c.ir, &params, &[input]).unwrap();
        let (_, loss) = outputs.iter().find(|(o, _)| o.role == Role::Loss).unwrap();
        total += loss.item();
    }
    let rows = |v: &[f64]| -> Vec<Vec<f64>> { v.chunks(3).map(<[f64]>::to_vec).collect() };
    let x: Vec<Vec<f64>> = points.iter().map(|p| p.to_vec()).collect();
    let want = Gmm {
        alpha: &alpha,
        mu: &rows(&mu),
        q: &rows(&q),
        l: &rows(&l),
        x: &x,
        gamma: 0.8,
        m: 2.0,
    }
    .log_posterior();
    let got = -total;
    let rel = (got - want).abs() / want.abs();
    assert!(rel < 1e-10, "objective {got}, GradBench's {want}: {rel:e}");
}

#[test]
fn the_gmm_example_passes_the_gradient_check() {
    let (ok, out, err) = gradc(&["check", "examples/gmm.grad", "--tol", "1e-8"]);
    assert!(ok, "{out}{err}");
    for p in ["alpha", "mu", "q", "l"] {
        assert!(
            out.lines().any(|l| l.starts_with(p) && l.ends_with("ok")),
            "{out}"
        );
    }
}

#[test]
fn the_gmm_example_finds_the_mixtures_means_and_weights() {
    // gradc train examples/gmm.grad; the data were drawn from this mixture.
    let means = [[-2.0, 0.0, 1.0], [2.0, 1.5, -1.0], [0.0, -2.5, -0.5]];
    let weights = [0.5, 0.3, 0.2];
    let r = train_example("gmm.grad");
    let (alpha, mu) = (&r.params[0].data, &r.params[1].data);
    let total: f64 = alpha.iter().map(|a| a.exp()).sum();
    for (mean, weight) in means.iter().zip(weights) {
        let distance = |c: usize| {
            (0..3)
                .map(|j| (mu[3 * c + j] - mean[j]).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let c = (0..3)
            .min_by(|&a, &b| distance(a).total_cmp(&distance(b)))
            .unwrap();
        assert!(
            distance(c) < 0.1,
            "{mean:?}: nearest found mean {:?}",
            &mu[3 * c..3 * c + 3]
        );
        let found = alpha[c].exp() / total;
        assert!(
            (found - weight).abs() < 0.05,
            "{mean:?}: weight {found}, not {weight}"
        );
    }
}

/// `examples/cnn.grad`: a convolution, max pooling and a read-out, trained
/// on the 8x8 digits read from IDX files, classifies the held-out digits.
#[test]
fn the_cnn_example_classifies_held_out_digits() {
    let path = root().join("examples/cnn.grad");
    let (_, c) = compile(&path);
    let cfg = c.typed.train.clone().unwrap();
    let opts = gradc::runtime::Options {
        base_dir: root().join("examples"),
        ..Default::default()
    };
    let r = gradc::runtime::train(&c, &cfg, &opts, &mut ()).unwrap_or_else(|e| panic!("{e}"));
    let accuracy = |e: &gradc::runtime::Evaluation| {
        e.metrics
            .iter()
            .find(|(n, _)| n == "accuracy")
            .map(|(_, a)| *a)
            .unwrap()
    };
    let test = r.test.as_ref().expect("a test set");
    assert_eq!(test.examples, 360);
    assert!(accuracy(test) >= 0.95, "test accuracy {}", accuracy(test));
    assert!(
        accuracy(&r.train) >= 0.99,
        "training accuracy {}",
        accuracy(&r.train)
    );
}
