//! Gathers: an index computed at run time (`logits[y]`, `E[tok]`), and a
//! tensor of indices (`E[toks]`, NumPy's fancy indexing), their gradients
//! (a scatter-add: repeated indices sum), and an index out of range.

use gradc::autodiff::check;
use gradc::eval::{Evaluator, Mode};
use gradc::shape::{Shape, Tensor};

use crate::common::{compile, same_fault_on_every_engine};

const MODES: [Mode; 3] = [Mode::Interp, Mode::PerExample, Mode::Batched];

const EMBEDDING: &str = "param E: [6, 3] = normal(0, 1)\n\
                         param W: [4, 3] = normal(0, 0.5)\n\
                         input toks: [2, 2]\ninput y\n\
                         let e = E[toks]\n\
                         let logits = W @ (sum(e[0]) + e[1][1])\n\
                         loss -log_softmax(logits)[y]\n\
                         output emb = e\n";

fn inputs(toks: [f64; 4], y: f64) -> Vec<Tensor> {
    vec![
        Tensor::new(Shape::matrix(2, 2), toks.to_vec()),
        Tensor::scalar(y),
    ]
}

/// `E[toks]` has shape `toks.shape + E.shape[1:]` and holds the rows named,
/// on every engine, the same bits.
#[test]
fn a_tensor_of_indices_gathers_rows_in_its_shape() {
    let c = compile(EMBEDDING);
    let params = c.initial_params(0);
    let x = inputs([0.0, 5.0, 5.0, 2.0], 1.0);
    let mut results = Vec::new();
    for mode in MODES {
        let e = Evaluator::compile(&c.ir, mode).unwrap();
        let outs = e.outputs(&params, &x).unwrap();
        let emb = &outs[1];
        assert_eq!(emb.shape, Shape(vec![2, 2, 3]), "{mode:?}");
        let row = |r: usize| &params[0].data[3 * r..3 * r + 3];
        for (k, r) in [0, 5, 5, 2].into_iter().enumerate() {
            assert_eq!(&emb.data[3 * k..3 * k + 3], row(r), "{mode:?}");
        }
        results.push(outs);
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
}

/// The gradient of a gather adds each row's cotangent to the row it came
/// from (twice for an index given twice), against central differences, and
/// every engine gives the interpreter's bits.
#[test]
fn the_gradient_of_a_gather_is_a_scatter_add() {
    let c = compile(EMBEDDING);
    let g = c.gradient().unwrap();
    let params = c.initial_params(0);
    let x = inputs([0.0, 5.0, 5.0, 2.0], 3.0);
    let errors = check::check(&c.ir, &g, &params, &x).unwrap();
    for e in &errors {
        assert!(e.max_rel_error < 1e-6, "{e:?}");
    }
    let want = Evaluator::compile(&g, Mode::Interp)
        .unwrap()
        .outputs(&params, &x)
        .unwrap();
    for mode in MODES {
        let got = Evaluator::compile(&g, mode)
            .unwrap()
            .outputs(&params, &x)
            .unwrap();
        let bits = |ts: &[Tensor]| -> Vec<u64> {
            ts.iter()
                .flat_map(|t| t.data.iter().map(|v| v.to_bits()))
                .collect()
        };
        assert_eq!(bits(&got), bits(&want), "{mode:?}");
    }
    // Rows never named get no gradient.
    let de = g
        .outputs
        .iter()
        .position(|o| o.name == "E" && matches!(o.role, gradc::ir::Role::Grad(_)))
        .unwrap();
    for r in [1, 3, 4] {
        assert!(want[de].data[3 * r..3 * r + 3].iter().all(|&v| v == 0.0));
    }
}

/// An index out of range, from an input, is a fault at the gather's line,
/// from every engine.
#[test]
fn an_index_out_of_range_is_a_fault_at_the_gather() {
    let c = compile(EMBEDDING);
    let params = c.initial_params(0);
    for (toks, y) in [([0.0, 6.0, 1.0, 1.0], 0.0), ([0.0, 1.0, 1.0, 1.0], 4.0)] {
        let x = inputs(toks, y);
        let msg = same_fault_on_every_engine(&c.ir, &params, &x).to_string();
        assert!(msg.contains("out of range for an axis of length"), "{msg}");
    }
}

/// `gradc train FILE ARGS` in `dir`: its exit code, stdout and stderr.
fn train_in(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gradc"))
        .arg("train")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The parameters of a safetensors file written by `--save`.
fn saved(path: &std::path::Path, decls: &[(&str, Shape)]) -> Vec<Vec<f64>> {
    let decls: Vec<(String, Shape)> = decls
        .iter()
        .map(|(n, s)| (n.to_string(), s.clone()))
        .collect();
    let ck = gradc::runtime::checkpoint::load(path, &decls)
        .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.render(false)));
    ck.params.into_iter().map(|t| t.data).collect()
}

/// An embedding's index out of range in one row of the training data: the
/// run stops with the gather's line and column in the program and the
/// row's line in the data file, exits non-zero, and loses nothing: a run
/// resumed from saved parameters onto the bad data leaves them as they were
/// (the bad row is found before any training).
#[test]
fn an_index_out_of_range_in_the_training_data_stops_the_run_losing_nothing() {
    let dir = crate::common::temp_dir("gather-data");
    std::fs::write(
        dir.join("emb.grad"),
        "input tok\ninput y\nparam E: [4, 2] = normal(0, 1)\nparam w: [2] = normal(0, 1)\n\
         let e = E[tok]\nloss (dot(w, e) - y)^2\n\
         train { data = csv(\"toks.csv\", tok = 0, y = 1) batch = 2 epochs = 3 }\n",
    )
    .unwrap();
    let mut rows: Vec<String> = (0..40).map(|i| format!("{},{}", i % 4, i % 3)).collect();
    rows.insert(0, "tok,y".into());
    std::fs::write(dir.join("toks.csv"), rows.join("\n") + "\n").unwrap();
    let decls = [("E", Shape::matrix(4, 2)), ("w", Shape(vec![2]))];
    let (code, _, err) = train_in(&dir, &["emb.grad", "--save", "w.safetensors"]);
    assert_eq!(code, Some(0), "{err}");
    let good = saved(&dir.join("w.safetensors"), &decls);

    rows[32] = "7,1".into();
    std::fs::write(dir.join("toks.csv"), rows.join("\n") + "\n").unwrap();
    let args = [
        "emb.grad",
        "--resume",
        "w.safetensors",
        "--save",
        "w.safetensors",
    ];
    let (code, out, err) = train_in(&dir, &args);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.starts_with("emb.grad:5:9: error: index 7 is out of range for an axis of length 4"),
        "{err}"
    );
    assert!(
        err.contains("note: toks.csv:33: in the example on this line"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(saved(&dir.join("w.safetensors"), &decls), good);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An index computed from a parameter that leaves the range during
/// training: the run stops at that step with the gather's place and the
/// example's line, exits non-zero, and `--save` writes the last good
/// parameters (those before the update that led there).
#[test]
fn an_index_that_leaves_its_range_during_training_saves_the_last_good_parameters() {
    let dir = crate::common::temp_dir("gather-train");
    // w grows by 0.1 a step; floor(3 w) reaches 4 at w = 1.4, after 4 steps.
    std::fs::write(
        dir.join("p.grad"),
        "input x\nparam E: [4] = [1, 2, 3, 4]\nparam w = 1\nloss E[floor(w * x)]^2 - w\n\
         train { data = csv(\"threes.csv\", x = 0) optimizer = sgd(lr = 0.1) batch = 2 steps = 20 shuffle = false }\n",
    )
    .unwrap();
    std::fs::write(dir.join("threes.csv"), "x\n3\n3\n3\n3\n2\n3\n").unwrap();
    let (code, out, err) = train_in(&dir, &["p.grad", "--save", "p.safetensors"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("step 5: index 4 is out of range"), "{out}");
    assert!(
        err.contains("p.grad:4:6: error: index 4 is out of range for an axis of length 4"),
        "{err}"
    );
    assert!(
        err.contains("note: threes.csv:4: in the example on this line"),
        "{err}"
    );
    let params = saved(
        &dir.join("p.safetensors"),
        &[("E", Shape(vec![4])), ("w", Shape::scalar())],
    );
    assert!((params[1][0] - 1.3).abs() < 1e-12, "{params:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Rows of one element and of several, gathered by a matrix of indices
/// with repeats, in a loop and out of it: the gradient against central
/// differences, and every engine (per example and batched) with the
/// interpreter's bits.
#[test]
fn gradients_of_gathers_by_index_matrices_match_differences_and_the_interpreter() {
    let src = "param x: [5, 2] = uniform(-1, 1)\nparam v: [5] = uniform(-1, 1)\n\
               input idx: [2, 3]\n\
               let g = x[idx]\nlet s = v[idx]\n\
               let c = loop a = 0 for t in 0..2 { a + sum(v[idx[t]] * x[idx[1 - t]][:, 0]) }\n\
               loss sum(g^2 * reshape(s, [2, 3, 1])) + sum(sin(v[idx[0]])) + c\n";
    let c = compile(src);
    let g = c.gradient().unwrap();
    let text = g.to_string();
    assert!(text.contains("= scatter_add "), "{text}");
    assert!(!text.contains("index_add"), "no loop of rows:\n{text}");
    for (seed, idx) in [
        (1, [4.0, 0.0, 4.0, 2.0, 2.0, 2.0]),
        (2, [0.0, 1.0, 2.0, 3.0, 4.0, 0.0]),
    ] {
        let params = c.initial_params(seed);
        let x = vec![Tensor::new(Shape::matrix(2, 3), idx.to_vec())];
        for e in check::check(&c.ir, &g, &params, &x).unwrap() {
            assert!(e.max_rel_error < 1e-6, "{e:?}");
        }
        crate::common::same_bits_on_every_engine(&g, &params, &x);
        let other = vec![Tensor::new(Shape::matrix(2, 3), vec![1.0; 6])];
        crate::common::batch_agrees(&g, &params, &[x, other]);
    }
}

/// A matrix of indices with one out of range, given on the command line:
/// the error names the gather's line and column and the index, exits
/// non-zero, on both engines.
#[test]
fn a_bad_index_in_a_matrix_of_indices_is_a_located_error() {
    let dir = crate::common::temp_dir("gather-matrix");
    let file = dir.join("m.grad");
    std::fs::write(
        &file,
        "param x: [4, 2] = uniform(-1, 1)\ninput idx: [2, 2]\nloss sum(x[idx])\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    for backend in ["jit", "interp"] {
        for (value, what) in [
            (
                "1,2;4,0",
                "index 4 is out of range for an axis of length 4 (0 to 3)",
            ),
            ("1,2.5;3,0", "index 2.5 is not an integer"),
        ] {
            let (ok, out, err) = crate::common::gradc(&[
                "eval",
                path,
                "--backend",
                backend,
                "--input",
                &format!("idx={value}"),
            ]);
            assert!(!ok, "{backend}: {out}");
            assert!(
                err.contains(&format!("m.grad:3:10: error: {what}")),
                "{backend}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
