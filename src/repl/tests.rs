//! The session's logic, without the terminal: definitions and redefinitions,
//! values, where errors point, and every command's result.

use crate::diagnostic::Location;
use crate::eval::Backend;
use crate::repl::commands::{handle, Reply, Style};
use crate::repl::session::{Error, Options, Session};
use crate::repl::source::Origin;
use crate::shape::Tensor;

fn session() -> Session {
    Session::new(Options::default())
}

/// Runs inputs that must all succeed.
fn run(s: &mut Session, inputs: &[&str]) {
    for i in inputs {
        let r = handle(s, i, Style::default());
        assert!(!r.failed, "{i}: {}", r.err);
    }
}

fn eval(s: &Session, expr: &str) -> Tensor {
    s.eval(Origin::typed(expr), 0)
        .unwrap_or_else(|e| panic!("{expr}: {e:?}"))
}

fn fails(s: &mut Session, input: &str) -> Reply {
    let r = handle(s, input, Style::default());
    assert!(r.failed, "{input} should fail: {}", r.out);
    r
}

#[test]
fn expressions_print_value_and_shape() {
    let mut s = session();
    let r = handle(&mut s, "[1, 2] * 0.5", Style::default());
    assert_eq!(r.out, "[0.5, 1] : [2]\n");
    let r = handle(&mut s, "[[1, 2], [3, 4]] @ [1, 1]", Style::default());
    assert_eq!(r.out, "[3, 7] : [2]\n");
}

#[test]
fn a_redefinition_replaces_in_place_and_dependents_follow() {
    let mut s = session();
    run(&mut s, &["let b = 1", "let c = b * 2", "let b = 5"]);
    assert_eq!(eval(&s, "c").item(), 10.0);
    assert_eq!(s.source(), "let b = 5\nlet c = b * 2\n");
}

#[test]
fn lets_are_ordered_by_their_uses() {
    let mut s = session();
    run(
        &mut s,
        &["let a = 1", "let b = a + 1", "let c = 3", "let a = c * 2"],
    );
    assert_eq!(eval(&s, "b").item(), 7.0);
    assert_eq!(s.source(), "let c = 3\nlet a = c * 2\nlet b = a + 1\n");
}

#[test]
fn a_failed_input_changes_nothing() {
    let mut s = session();
    run(
        &mut s,
        &[
            "param w: [2] = [1, 2]",
            "input x: [2]",
            "let y = sum(w * x)",
        ],
    );
    let before = (s.source(), s.params(), s.inputs());
    let r = fails(&mut s, "param w: [3]");
    assert!(
        r.err.contains("cannot multiply shapes [3] and [2]"),
        "{}",
        r.err
    );
    assert!(r.err.contains("note: `y` was defined earlier"), "{}", r.err);
    fails(&mut s, "let z = q + 1");
    fails(&mut s, "let z = (1 +");
    fails(&mut s, ":forget w");
    assert_eq!((s.source(), s.params(), s.inputs()), before);
    // Both changed in one input: accepted.
    run(&mut s, &["param w: [3]; input x: [3]"]);
    assert_eq!(eval(&s, "y").shape.dims(), &[] as &[usize]);
}

/// The text an error's first report points into, and the part under its
/// span.
fn placed(e: &Error) -> (String, String) {
    match e.location() {
        Some(Location::Span { source, span }) => {
            (source.text.clone(), source.text[span.range()].to_string())
        }
        other => panic!("not in a source: {other:?}"),
    }
}

/// An input of a piped script starting after 4 lines: its errors name the
/// script's lines, in the headline and in the box, for definitions,
/// expressions and commands alike.
#[test]
fn errors_name_the_lines_of_a_piped_script() {
    use crate::repl::commands::handle_after;
    let mut s = session();
    run(&mut s, &["param w: [2]"]);
    let r = handle_after(&mut s, "let a = [1,\n  zz]\n", 4, Style::default());
    assert!(
        r.failed && r.err.starts_with("<repl>:6:3: error: unknown name `zz`\n"),
        "{}",
        r.err
    );
    assert!(r.err.contains(" 6 │   zz]"), "{}", r.err);
    let r = handle_after(&mut s, "w + qq\n", 4, Style::default());
    assert!(r.err.starts_with("<repl>:5:5: error:"), "{}", r.err);
    let r = handle_after(&mut s, ":grad w\n", 9, Style::default());
    assert!(r.err.starts_with("<repl>:10:7: error:"), "{}", r.err);
    // An unclosed bracket: the error is at the end of the input, and the
    // bracket is pointed at.
    let r = handle_after(&mut s, "loss (((w\n", 1, Style::default());
    assert!(
        r.err
            .starts_with("<repl>:2:10: error: unexpected end of input\n")
            && r.err.contains("this bracket is not closed"),
        "{}",
        r.err
    );
}

#[test]
fn errors_point_into_the_text_typed() {
    let mut s = session();
    run(&mut s, &["param w: [2]"]);
    let e = s.eval(Origin::typed("w + qq"), 0).unwrap_err();
    let (text, under) = placed(&e);
    assert_eq!((text.as_str(), under.as_str()), ("w + qq", "qq"));
    // A command's argument: the span is within the whole line.
    let e = s.grad(Origin::typed(":grad w"), Some(6)).unwrap_err();
    assert!(e.message().contains("needs a scalar"), "{e}");
    assert_eq!(placed(&e).1, "w");
    // A multi-line block: line 2.
    let r = fails(&mut s, "let a = [1,\n  zz]");
    assert!(
        r.err.starts_with("<repl>:2:3: error: unknown name `zz`"),
        "{}",
        r.err
    );
}

#[test]
fn faults_point_into_the_text_typed() {
    let mut s = session();
    run(&mut s, &["param w: [3] = 1", "input c", ":set c = 5"]);
    let e = s
        .eval(Origin::typed("dot(w, one_hot(c, 3))"), 0)
        .unwrap_err();
    assert_eq!(
        e.message(),
        "class index 5 is out of range for 3 classes (0 to 2)"
    );
    assert_eq!(
        placed(&e),
        ("dot(w, one_hot(c, 3))".into(), "one_hot(c, 3)".into())
    );
    // The loss, defined in an earlier input, by `:grad`, `:check` and
    // `:hessian`.
    run(&mut s, &["loss cross_entropy(w, c)"]);
    let loss = (
        "loss cross_entropy(w, c)".into(),
        "cross_entropy(w, c)".into(),
    );
    let e = s.grad(Origin::typed(":grad"), None).unwrap_err();
    assert_eq!(placed(&e), loss);
    let e = s.check(Origin::typed(":check"), None).unwrap_err();
    assert_eq!(placed(&e), loss);
    let e = s.hessian(Origin::typed(":hessian"), None).unwrap_err();
    assert_eq!(placed(&e), loss);
}

#[test]
fn params_keep_their_values_until_redefined() {
    let mut s = session();
    run(&mut s, &["param w: [2] = normal(0, 1)", "param b = 3"]);
    let w0 = s.params()[0].1.clone();
    run(
        &mut s,
        &[":set b = 7", "input x: [2]", "let z = dot(w, x) + b"],
    );
    assert_eq!(s.params()[0].1, w0);
    assert_eq!(s.params()[1].1.item(), 7.0);
    run(&mut s, &["param b = 3"]);
    assert_eq!(s.params()[1].1.item(), 3.0);
    // The values are those `gradc` draws for the session's source.
    let c = crate::compile_with(
        &s.source(),
        &crate::types::CheckOptions {
            require_loss: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(c.initial_params(0)[0], w0);
}

#[test]
fn set_takes_expressions_numbers_and_scalars() {
    let mut s = session();
    run(&mut s, &["input X: [2, 2]", "let a = 2"]);
    run(&mut s, &[":set X = 1, 2; 3, 4"]);
    assert_eq!(s.inputs()[0].1.data, vec![1.0, 2.0, 3.0, 4.0]);
    run(&mut s, &[":set X = [[a, 0], [0, a]]"]);
    assert_eq!(s.inputs()[0].1.data, vec![2.0, 0.0, 0.0, 2.0]);
    run(&mut s, &[":set X = 0.5"]);
    assert_eq!(s.inputs()[0].1.data, vec![0.5; 4]);
    let r = fails(&mut s, ":set X = 1, 2, 3");
    assert!(
        r.err.contains("holds 4 numbers, but 3 were given"),
        "{}",
        r.err
    );
    let r = fails(&mut s, ":set a = 1");
    assert!(r.err.contains("`a` is a let"), "{}", r.err);
    let r = fails(&mut s, ":set X = [1, 2, 3]");
    assert!(
        r.err
            .contains("has shape [2, 2], but the value has shape [3]"),
        "{}",
        r.err
    );
}

#[test]
fn grad_hessian_and_check() {
    let mut s = session();
    run(&mut s, &["param p: [2] = [1, 2]", "loss p[0]^2 * p[1]"]);
    let g = s.grad(Origin::typed(":grad"), None).unwrap();
    assert_eq!(g.value, 2.0);
    assert_eq!(g.grads[0].1.data, vec![4.0, 1.0]);
    assert!(g.program.contains("grad p"), "{}", g.program);
    let h = s.hessian(Origin::typed(":hessian"), None).unwrap();
    assert_eq!(h.labels, ["p[0]", "p[1]"]);
    assert_eq!(h.rows, vec![vec![4.0, 2.0], vec![2.0, 0.0]]);
    let checks = s.check(Origin::typed(":check"), None).unwrap();
    assert!(checks.params[0].max_rel_error < 1e-6, "{checks:?}");
    // Of an expression rather than the loss.
    let g = s.grad(Origin::typed(":grad sum(p)"), Some(6)).unwrap();
    assert_eq!(g.grads[0].1.data, vec![1.0, 1.0]);
}

#[test]
fn without_a_loss_the_commands_say_so() {
    let mut s = session();
    run(&mut s, &["param x = 2"]);
    let r = fails(&mut s, ":grad");
    assert!(r.err.contains("the session has no `loss`"), "{}", r.err);
    let r = fails(&mut s, ":train");
    assert!(r.err.contains("no `loss`"), "{}", r.err);
}

#[test]
fn a_residual_is_the_loss_of_a_session() {
    // The loss of `residual r = p - 2` is (p - 2)^2 / 2; Gauss-Newton
    // solves the linear residual in one step, and a `loss` replaces the
    // residual (one of the two per session).
    let mut s = session();
    run(&mut s, &["param p = 0", "residual r = p - 2"]);
    let g = s.grad(Origin::typed(":grad"), None).unwrap();
    assert_eq!(g.grads[0].1.data, vec![-2.0]);
    run(
        &mut s,
        &["train { optimizer = gauss_newton  steps = 1 }", ":train"],
    );
    assert_eq!(eval(&s, "p").item(), 2.0);
    // Without the residual, the train block's optimizer has nothing to fit.
    let r = fails(&mut s, "loss p^2");
    assert!(
        r.err.contains("`gauss_newton` needs a `residual`"),
        "{}",
        r.err
    );
    run(
        &mut s,
        &["train { optimizer = newton  steps = 1 }", "loss p^2"],
    );
    assert_eq!(
        s.grad(Origin::typed(":grad"), None).unwrap().grads[0]
            .1
            .data,
        vec![4.0]
    );
}

#[test]
fn ir_and_clif_of_an_expression() {
    let mut s = session();
    run(&mut s, &["param w: [2] = [1, 2]"]);
    let f = s.ir(Origin::typed(":ir sum(w)"), Some(4)).unwrap();
    assert!(f.to_string().contains("output _"), "{f}");
    let clif = s.clif(Origin::typed(":clif sum(w)"), Some(6)).unwrap();
    assert!(clif.contains("function"), "{clif}");
}

#[test]
fn forget_removes_what_nothing_uses() {
    let mut s = session();
    run(&mut s, &["let a = 1", "let b = a + 1", "loss b"]);
    let r = fails(&mut s, ":forget a");
    assert!(r.err.contains("`b` uses `a`"), "{}", r.err);
    run(&mut s, &[":forget loss", ":forget b", ":forget a"]);
    assert_eq!(s.source(), "");
    let r = fails(&mut s, ":forget a");
    assert!(r.err.contains("nothing called `a`"), "{}", r.err);
}

/// `:forget` of a definition others use names them, in one error, and
/// changes nothing: the direct users in the message, the indirect ones in a
/// note.
#[test]
fn forget_names_the_definitions_that_use_it() {
    let mut s = session();
    run(
        &mut s,
        &["input x: [2]", "param W: [3, 2]", "let logits = W @ x"],
    );
    let before = (s.source(), s.params(), s.inputs());
    let r = fails(&mut s, ":forget W");
    assert!(
        r.err
            .starts_with("<repl>:1:14: error: cannot forget `W`: `logits` uses it\n"),
        "{}",
        r.err
    );
    assert!(r.err.contains("`logits` uses `W` here"), "{}", r.err);
    assert!(
        r.err
            .contains("forget it first (`:forget logits`), or redefine it"),
        "{}",
        r.err
    );
    assert!(!r.err.contains("unknown name"), "{}", r.err);
    assert_eq!(r.err.matches("error:").count(), 1, "{}", r.err);
    assert_eq!((s.source(), s.params(), s.inputs()), before);
    run(
        &mut s,
        &["let g = sum(W)", "let h = sum(logits)", "loss h + g"],
    );
    let r = fails(&mut s, ":forget W");
    assert!(
        r.err
            .contains("cannot forget `W`: `logits` and `g` use it\n"),
        "{}",
        r.err
    );
    assert!(
        r.err
            .contains("forget them first (`:forget logits`, `:forget g`)"),
        "{}",
        r.err
    );
    assert!(
        r.err.contains("note: `h` and `loss` use `W` indirectly"),
        "{}",
        r.err
    );
    run(
        &mut s,
        &[
            ":forget loss",
            ":forget h",
            ":forget g",
            ":forget logits",
            ":forget W",
        ],
    );
    assert_eq!(s.source(), "input x: [2]\n");
}

/// A NaN during `:train` is traced to the definition typed, in the
/// backward pass here (the derivative of `sqrt` at 0), and the params keep
/// their last good values.
#[test]
fn a_nan_in_training_points_into_the_definition_typed() {
    let mut s = session();
    run(
        &mut s,
        &["param w = 0", "loss (sqrt(w) - 1)^2", "train { steps = 3 }"],
    );
    let r = handle(&mut s, ":train", Style::default());
    assert!(!r.failed, "{}", r.err);
    assert!(
        r.out.contains(
            "<repl>:1:7: error: training stopped at step 1: the gradient of `w` is not finite"
        ),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("the chain-rule step through `sqrt`")
            && r.out.contains("loss (sqrt(w) - 1)^2"),
        "{}",
        r.out
    );
    assert_eq!(s.params()[0].1.item(), 0.0);
}

#[test]
fn training_keeps_the_trained_values() {
    let mut s = session();
    run(
        &mut s,
        &[
            "param x = -3",
            "loss x^2",
            "train { optimizer = sgd(lr = 0.25)  steps = 3 }",
        ],
    );
    run(&mut s, &[":train"]);
    // Each step halves x.
    assert_eq!(s.params()[0].1.item(), -0.375);
    // A second run starts where the first ended.
    run(&mut s, &[":train"]);
    assert_eq!(s.params()[0].1.item(), -0.375 / 8.0);
}

#[test]
fn the_interpreter_agrees_with_the_jit() {
    let mut jit = session();
    let mut interp = Session::new(Options {
        backend: Backend::Interp,
        ..Options::default()
    });
    let inputs = [
        "param W: [2, 3] = normal(0, 1)",
        "input x: [3]",
        ":set x = 1, -2, 0.5",
        "let h = tanh(W @ x)",
        "loss logsumexp(h)",
    ];
    run(&mut jit, &inputs);
    run(&mut interp, &inputs);
    assert_eq!(eval(&jit, "softmax(h)"), eval(&interp, "softmax(h)"));
    let (a, b) = (
        jit.grad(Origin::typed(""), None).unwrap(),
        interp.grad(Origin::typed(""), None).unwrap(),
    );
    assert_eq!(a.grads[0].1, b.grads[0].1);
}

#[test]
fn quit_and_comments() {
    let mut s = session();
    assert!(handle(&mut s, ":quit", Style::default()).quit);
    assert_eq!(
        handle(&mut s, "# nothing", Style::default()),
        Reply::default()
    );
    assert_eq!(handle(&mut s, "   ", Style::default()), Reply::default());
}

#[test]
fn save_writes_source_or_params() {
    let dir = std::env::temp_dir().join(format!("gradc-repl-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = session();
    run(
        &mut s,
        &["param w: [2] = [1, 2]", "loss sum(w^2)", ":set w = 3, 4"],
    );
    let src = dir.join("s.grad");
    let r = handle(
        &mut s,
        &format!(":save {}", src.display()),
        Style::default(),
    );
    assert!(!r.failed, "{}", r.err);
    assert_eq!(std::fs::read_to_string(&src).unwrap(), s.source());
    let st = dir.join("w.safetensors");
    run(&mut s, &[&format!(":save {}", st.display())]);
    let decls = [("w".to_string(), crate::shape::Shape::vector(2))];
    let ck = crate::runtime::checkpoint::load(&st, &decls).unwrap();
    assert_eq!(ck.params[0].data, vec![3.0, 4.0]);
    // A train block loaded from another directory: its data path is noted.
    run(&mut s, &[":load examples/logistic.grad"]);
    let r = handle(
        &mut s,
        &format!(":save {}", src.display()),
        Style::default(),
    );
    assert!(
        r.out
            .contains("note: the train block was loaded from `examples`"),
        "{}",
        r.out
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn training_errors_point_into_the_train_block() {
    let mut s = session();
    run(
        &mut s,
        &[
            "input x",
            "param w",
            "loss (w - x)^2",
            "train {\n  data = csv(\"no-such-file.csv\", x = 0)\n}",
        ],
    );
    let r = fails(&mut s, ":train");
    assert_eq!(
        r.err,
        "no-such-file.csv: error: cannot read the data file: no such file\n\
         note: <repl>:2:14: the path is relative to the working directory\n"
    );
}
