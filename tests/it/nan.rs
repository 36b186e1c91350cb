//! NaN provenance: a NaN or an infinity in a loss, a metric or a gradient
//! is traced to the expression that first produced it, in the forward or
//! the backward pass, and reported on the source with its operands and the
//! example's line of the data (`ir::nonfinite`, `eval::non_finite_error`).

use gradc::runtime::{self, Options, Stop};

use crate::common::{compile_as, gradc, root, temp_dir};

/// `examples/linear.grad` with a step so large that the second step's loss
/// overflows: the forward origin is the square inside `mse`.
#[test]
fn a_forward_overflow_in_an_example_is_placed_at_its_expression() {
    let (ok, out, err) = gradc(&["train", "examples/linear.grad", "--lr", "1e250"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains(
            "examples/linear.grad:10:6: error: training stopped at step 2: the loss is inf\n"
        ),
        "{err}"
    );
    assert!(err.contains("in the forward pass"), "{err}");
    assert!(err.contains("on the way to the loss"), "{err}");
    assert!(
        err.contains("note: examples/data/linear.csv:")
            && err.contains("in the example on this line"),
        "{err}"
    );
    assert!(
        err.contains("the parameters are the last ones with a finite loss and gradient"),
        "{err}"
    );
    // The summary still prints the last good parameters: the initial zeros.
    assert!(out.contains("w = [0, 0]"), "{out}");
}

/// `examples/linear.grad` with a penalty `sqrt(sum(w^2))`, whose derivative
/// is infinite at the initial w = 0: the forward pass is finite, the
/// gradient is not, and the origin is the chain-rule step through `sqrt`.
#[test]
fn a_backward_nan_in_an_example_names_its_chain_rule_step() {
    let path = root().join("examples/linear.grad");
    let src = std::fs::read_to_string(&path).unwrap().replace(
        "loss mse(yhat, y)",
        "loss mse(yhat, y) + 0.01 * sqrt(sum(w^2))",
    );
    assert!(src.contains("sqrt"), "the example changed");
    let c = compile_as("linear.grad", &src);
    let cfg = c.typed.train.clone().unwrap();
    let opts = Options {
        base_dir: root().join("examples"),
        ..Options::default()
    };
    let r = runtime::train(&c, &cfg, &opts, &mut ()).unwrap();
    let Stop::Fault {
        step: 1,
        message,
        origin: Some(origin),
    } = &r.stop
    else {
        panic!("{:?}", r.stop)
    };
    assert_eq!(message, "the gradient of `w` is not finite");
    let text = origin.render(false);
    let col = src.lines().nth(9).unwrap().find("sqrt").unwrap() + 1;
    assert!(
        text.starts_with(&format!(
            "<source>:10:{col}: error: training stopped at step 1:"
        )),
        "{text}"
    );
    assert!(
        text.contains("the chain-rule step through `sqrt`")
            && text.contains("in the backward pass")
            && text.contains("on the way to the gradient of `w`"),
        "{text}"
    );
    assert!(
        text.contains("the derivative of `sqrt` is infinite at 0"),
        "{text}"
    );
    assert!(text.contains("data/linear.csv:"), "{text}");
    // The parameters are the initial ones.
    assert_eq!(r.params[0].data, [0.0, 0.0]);
}

/// `gradc eval` and `gradc grad --values` print the values, then a warning
/// with the origin, and succeed.
#[test]
fn eval_and_grad_values_warn_where_a_non_finite_value_comes_from() {
    let dir = temp_dir("nan-eval");
    let file = dir.join("m.grad");
    std::fs::write(
        &file,
        "param w = 1\ninput x\nlet r = sqrt(w * x)\nloss log(r)\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();

    let (ok, out, err) = gradc(&["eval", file, "--input", "x=0"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "loss -inf");
    assert!(
        err.contains("m.grad:4:6: warning: the loss is -inf\n"),
        "{err}"
    );
    assert!(
        err.contains("`log` gives -inf here, in the forward pass"),
        "{err}"
    );
    assert!(err.contains("the operands of `log`: r = 0"), "{err}");

    let (ok, out, err) = gradc(&["grad", file, "--values", "--input", "x=4"]);
    assert!(ok, "{err}");
    assert!(
        !err.contains("warning"),
        "finite values need no warning: {err}"
    );
    assert!(out.contains("grad w = 0.5"), "{out}");

    std::fs::write(
        dir.join("m.grad"),
        "param w = 1\ninput x\nloss sqrt(w * x)\n",
    )
    .unwrap();
    let (ok, out, err) = gradc(&["grad", file, "--values", "--input", "x=0"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("loss 0") && out.contains("grad w = NaN"),
        "{out}"
    );
    assert!(
        err.contains("m.grad:3:6: warning: the gradient of `w` is NaN\n"),
        "{err}"
    );
    assert!(err.contains("in the backward pass"), "{err}");
}

/// `gradc eval --data` names the first example whose loss is not finite.
#[test]
fn eval_on_data_names_the_example() {
    let dir = temp_dir("nan-data");
    std::fs::write(dir.join("d.csv"), "x\n2\n0\n3\n").unwrap();
    let file = dir.join("m.grad");
    std::fs::write(
        &file,
        "param a = 1\ninput x\nloss -log(a * x)\ntrain { data = csv(\"d.csv\", x = \"x\") }\n",
    )
    .unwrap();
    let (ok, out, err) = gradc(&["eval", file.to_str().unwrap(), "--data"]);
    assert!(ok, "{err}");
    assert!(out.contains("loss inf"), "{out}");
    assert!(
        err.contains("m.grad:3:7: warning: the loss is inf"),
        "{err}"
    );
    assert!(
        err.contains("d.csv:3: in the example on this line"),
        "{err}"
    );
}
