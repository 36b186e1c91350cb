//! Tests of the train block checker: configs and diagnostics.

use super::check::suggest;
use super::*;
use crate::syntax::ast::ItemKind;
use crate::syntax::parser::parse;

/// Checks the train block of `src` against the program's own inputs; a
/// program without a train block is checked as an empty one.
fn run(src: &str) -> (TrainConfig, Vec<Diagnostic>) {
    let program = parse(src).unwrap_or_else(|e| panic!("{src}: {e:?}"));
    let mut inputs = Vec::new();
    let mut block = (Vec::new(), Span::default());
    for item in &program.items {
        match &item.kind {
            ItemKind::Input { name, shape } => {
                let dims = shape.as_ref().map_or(Vec::new(), |s| {
                    s.dims
                        .iter()
                        .map(|d| match &d.kind {
                            crate::syntax::ast::ExprKind::Number(n) => n.parse().unwrap(),
                            _ => panic!("a literal size"),
                        })
                        .collect()
                });
                inputs.push((name.name.clone(), Shape(dims)));
            }
            ItemKind::Train { settings } => block = (settings.clone(), item.span),
            _ => {}
        }
    }
    let mut diags = Vec::new();
    let config = check_train(&block.0, block.1, &inputs, &mut diags);
    (config, diags)
}

pub(super) fn ok(src: &str) -> TrainConfig {
    let (c, diags) = run(src);
    assert!(diags.is_empty(), "{src}: {diags:#?}");
    c
}

/// The only diagnostic, and the source text under its span.
pub(super) fn err(src: &str) -> (Diagnostic, String) {
    let (_, diags) = run(src);
    assert_eq!(diags.len(), 1, "{src}: {diags:#?}");
    let d = diags.into_iter().next().unwrap();
    let text = src[d.span.range()].to_string();
    (d, text)
}

const XY: &str = "input x: [2]\ninput y\n";

pub(super) fn with_xy(block: &str) -> String {
    format!("{XY}train {{ {block} }}")
}

#[test]
fn the_design_example() {
    let c = ok(&with_xy(
        r#"data = csv("data/blobs.csv", x = 0..2, y = 2)
           optimizer = sgd(lr = 0.1)
           batch = 32
           epochs = 20
           seed = 7"#,
    ));
    let data = c.data.unwrap();
    assert_eq!(data.path, "data/blobs.csv");
    assert_eq!(data.header, None);
    assert_eq!(data.columns.len(), 2);
    assert_eq!(data.columns[0].input, "x");
    assert_eq!(data.columns[0].columns, Columns::Range { start: 0, end: 2 });
    assert_eq!(data.columns[1].columns, Columns::Index(2));
    assert_eq!(c.optimizer, Optimizer::Sgd { lr: 0.1 });
    assert_eq!(c.batch, Batch::Size(32));
    assert_eq!(c.epochs, Some(20));
    assert_eq!(c.steps, None);
    assert_eq!(c.seed, 7);
    assert!(c.shuffle);
    assert_eq!(c.schedule, Schedule::Constant);
}

#[test]
fn defaults() {
    let d = TrainConfig::default();
    assert_eq!(d.optimizer, Optimizer::Sgd { lr: 0.01 });
    assert_eq!(d.steps, Some(100));
    assert_eq!(d.epochs, None);
    assert_eq!(d.batch, Batch::Full);
    assert_eq!(d.span, None);
    // An empty block is the default, located.
    let c = ok("param x = 1\nloss x^2\ntrain { }");
    assert_eq!(
        TrainConfig {
            span: None,
            ..c.clone()
        },
        d
    );
    assert!(c.span.is_some());
}

#[test]
fn plain_gradient_descent() {
    let c = ok("param x = -3\nloss x^2\ntrain { optimizer = sgd(lr = 1.0)  steps = 4 }");
    assert_eq!(c.optimizer, Optimizer::Sgd { lr: 1.0 });
    assert_eq!(c.steps, Some(4));
    assert_eq!(c.data, None);
    assert_eq!(c.training_data(&[]), Ok(None));
}

#[test]
fn epochs_and_steps_together() {
    let c = ok(&with_xy(
        r#"data = csv("d.csv", x = 0..2, y = 2) epochs = 3 steps = 50"#,
    ));
    assert_eq!((c.epochs, c.steps), (Some(3), Some(50)));
}

#[test]
fn optimizers_and_their_defaults() {
    let opt = |s: &str| ok(&format!("train {{ optimizer = {s} }}")).optimizer;
    assert_eq!(
        opt("adam"),
        Optimizer::Adam {
            lr: 0.001,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8
        }
    );
    assert_eq!(
        opt("adam(0.01, beta2 = 0.99)"),
        Optimizer::Adam {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8
        }
    );
    assert_eq!(
        opt("momentum(0.1)"),
        Optimizer::Momentum { lr: 0.1, beta: 0.9 }
    );
    assert_eq!(
        opt("nesterov(lr = 0.1, beta = 0.5)"),
        Optimizer::Nesterov { lr: 0.1, beta: 0.5 }
    );
    assert_eq!(
        opt("adagrad()"),
        Optimizer::Adagrad {
            lr: 0.01,
            eps: 1e-10
        }
    );
    assert_eq!(
        opt("rmsprop"),
        Optimizer::RmsProp {
            lr: 0.01,
            rho: 0.99,
            eps: 1e-8
        }
    );
    assert_eq!(
        opt("adadelta"),
        Optimizer::AdaDelta {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6
        }
    );
    assert_eq!(
        opt("adamw(weight_decay = 0)"),
        Optimizer::AdamW {
            lr: 0.001,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0
        }
    );
    assert_eq!(
        opt("adamw").to_string(),
        "adamw(lr = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01)"
    );
    assert_eq!(opt("sgd").lr(), 0.01);
}

#[test]
fn schedules() {
    let sched = |s: &str| ok(&format!("train {{ schedule = {s} }}")).schedule;
    assert_eq!(sched("constant"), Schedule::Constant);
    assert_eq!(
        sched("step(every = 10)"),
        Schedule::Step {
            every: 10,
            gamma: 0.1
        }
    );
    assert_eq!(
        sched("step(5, gamma = 0.5)"),
        Schedule::Step {
            every: 5,
            gamma: 0.5
        }
    );
    assert_eq!(sched("exponential"), Schedule::Exponential { gamma: 0.95 });
    assert_eq!(
        sched("cosine"),
        Schedule::Cosine {
            steps: None,
            min_lr: 0.0
        }
    );
    assert_eq!(
        sched("cosine(steps = 1000, min_lr = 1e-5)").to_string(),
        "cosine(steps = 1000, min_lr = 1e-5)"
    );
}

#[test]
fn other_settings() {
    let c = ok(&with_xy(
        r#"data = csv("d.csv", x = [0, 3], y = "label", header = true)
           batch = full shuffle = false validate = 0.25 patience = 5
           loss_tol = 1e-6 grad_tol = 1e-8 seed = 0"#,
    ));
    assert_eq!(c.batch, Batch::Full);
    assert!(!c.shuffle);
    assert_eq!(c.validate, Some(0.25));
    assert_eq!(c.patience, Some(5));
    assert_eq!(c.loss_tol, Some(1e-6));
    assert_eq!(c.grad_tol, Some(1e-8));
    let data = c.data.unwrap();
    assert_eq!(data.header, Some(true));
    assert_eq!(
        data.columns[0].columns,
        Columns::List(vec![Column::Index(0), Column::Index(3)])
    );
    assert_eq!(data.columns[1].columns, Columns::Name("label".into()));
}

#[test]
fn column_names_imply_a_header() {
    let c = ok(&with_xy(r#"data = csv("d.csv", x = ["a", "b"], y = "c")"#));
    assert_eq!(c.data.unwrap().header, Some(true));
    let c = ok(&with_xy(
        r#"data = csv("d.csv", x = 0..2, y = 2, header = false)"#,
    ));
    assert_eq!(c.data.unwrap().header, Some(false));
}

#[test]
fn unknown_setting_suggests_the_closest() {
    let src = "train { epoch = 3 }";
    let (d, at) = err(src);
    assert_eq!(d.message, "unknown setting `epoch`");
    assert_eq!(at, "epoch");
    assert_eq!(d.hint.as_deref(), Some("did you mean `epochs`?"));
    let (d, _) = err("train { batch_size = 3 }");
    assert_eq!(d.hint.as_deref(), Some("did you mean `batch`?"));
    let (d, _) = err("train { lr = 0.1 }");
    assert!(d.hint.unwrap().contains("optimizer = sgd(lr"));
    let (d, _) = err("train { zzz = 1 }");
    assert!(d
        .hint
        .unwrap()
        .starts_with("the settings are: data, optimizer"));
}

#[test]
fn duplicate_setting() {
    let src = "train { steps = 3 steps = 4 }";
    let (d, at) = err(src);
    assert_eq!(d.message, "`steps` is set twice");
    assert_eq!(at, "steps");
    assert_eq!(d.span.lo, 18);
    assert_eq!(d.labels[0].span.lo, 8);
    // The first one counts.
    assert_eq!(run(src).0.steps, Some(3));
}

#[test]
fn wrong_kinds() {
    let (d, at) = err(r#"train { steps = "10" }"#);
    assert_eq!(
        d.message,
        "`steps` expects a whole number, found the string \"10\""
    );
    assert_eq!(at, "\"10\"");
    let (d, _) = err("train { optimizer = 0.1 }");
    assert_eq!(
        d.message,
        "`optimizer` expects an optimizer, found the number 0.1"
    );
    let (d, at) = err(&with_xy(
        r#"data = csv("d.csv", x = 0..2, y = 2) batch = all"#,
    ));
    assert_eq!(
        d.message,
        "`batch` expects a whole number or `full`, found `all`"
    );
    assert_eq!(at, "all");
    let (d, _) = err(&with_xy(
        r#"data = csv("d.csv", x = 0..2, y = 2) shuffle = 1"#,
    ));
    assert_eq!(
        d.message,
        "`shuffle` expects `true` or `false`, found the number 1"
    );
}

#[test]
fn full_batch_optimizers_and_their_defaults() {
    assert_eq!(
        ok("train { optimizer = newton }").optimizer,
        Optimizer::Newton { damping: 0.0 }
    );
    assert_eq!(
        ok("train { optimizer = lbfgs(5)  rel_tol = 1e-9 }").optimizer,
        Optimizer::Lbfgs { memory: 5.0 }
    );
    assert_eq!(ok("train { rel_tol = 1e-9 }").rel_tol, Some(1e-9));
    assert_eq!(
        ok("train { optimizer = levenberg_marquardt() }").optimizer,
        Optimizer::LevenbergMarquardt { damping: 1e-3 }
    );
    assert_eq!(
        ok("train { optimizer = gauss_newton }").optimizer,
        Optimizer::GaussNewton
    );
    assert!(
        Optimizer::GaussNewton.needs_residual()
            && !Optimizer::Lbfgs { memory: 1.0 }.needs_residual()
    );
    let (d, at) = err("train { optimizer = newton(damping = -1) }");
    assert_eq!(
        (d.message.as_str(), at.as_str()),
        ("`damping` must not be negative", "-1")
    );
    let (d, at) = err("train { optimizer = gauss_newton(1) }");
    assert_eq!(d.message, "unexpected unnamed argument to `gauss_newton`");
    assert_eq!(at, "1");
}

#[test]
fn unknown_optimizer_and_schedule() {
    let src = "train { optimizer = adamm(lr = 0.1) }";
    let (d, at) = err(src);
    assert_eq!(d.message, "unknown optimizer `adamm`");
    assert_eq!(at, "adamm");
    assert_eq!(d.hint.as_deref(), Some("did you mean `adam`?"));
    let (d, _) = err("train { optimizer = genetic }");
    assert_eq!(d.message, "unknown optimizer `genetic`");
    assert!(d.hint.unwrap().starts_with("the optimizers are: sgd"));
    let (d, at) = err("train { schedule = cosin }");
    assert_eq!(d.message, "unknown schedule `cosin`");
    assert_eq!(at, "cosin");
    assert_eq!(d.hint.as_deref(), Some("did you mean `cosine`?"));
}

#[test]
fn bad_arguments() {
    let (d, at) = err("train { optimizer = adam(lr = 0.1, beta = 0.5) }");
    assert_eq!(d.message, "`adam` has no argument `beta`");
    assert_eq!(at, "beta");
    assert_eq!(d.hint.as_deref(), Some("did you mean `beta1`?"));
    let (d, at) = err("train { optimizer = sgd(0.1, lr = 0.2) }");
    assert_eq!(d.message, "`lr` is given twice");
    assert_eq!(at, "lr");
    let (d, at) = err("train { optimizer = momentum(0.1, 0.9) }");
    assert_eq!(d.message, "unexpected unnamed argument to `momentum`");
    assert_eq!(at, "0.9");
    assert_eq!(
        d.hint.as_deref(),
        Some("only `lr` can be given without a name; name the others: `beta = ...`")
    );
    let (d, at) = err("train { schedule = step(gamma = 0.5) }");
    assert_eq!(d.message, "`step` needs `every`");
    assert_eq!(at, "step(gamma = 0.5)");
}

#[test]
fn out_of_range_numbers() {
    let (d, at) = err("train { optimizer = sgd(lr = 0) }");
    assert_eq!(d.message, "the learning rate must be positive");
    assert_eq!(at, "0");
    assert_eq!(d.labels[0].message, "this is 0");
    let (d, at) = err("train { optimizer = sgd(lr = -0.1) }");
    assert_eq!(d.message, "the learning rate must be positive");
    assert_eq!(at, "-0.1");
    let (d, _) = err("train { optimizer = adam(beta2 = 1) }");
    assert_eq!(d.message, "`beta2` must be at least 0 and below 1");
    let (d, _) = err("train { optimizer = adam(eps = 0) }");
    assert_eq!(d.message, "`eps` must be positive");
    let (d, _) = err("train { optimizer = adamw(weight_decay = -1) }");
    assert_eq!(d.message, "`weight_decay` must not be negative");
    let (d, at) = err(&with_xy(
        r#"data = csv("d.csv", x = 0..2, y = 2) validate = 1"#,
    ));
    assert_eq!(d.message, "`validate` must be between 0 and 1");
    assert_eq!(at, "1");
    let (d, _) = err(&with_xy(
        r#"data = csv("d.csv", x = 0..2, y = 2) batch = 0"#,
    ));
    assert_eq!(d.message, "`batch` must be at least 1");
    let (d, at) = err("train { epochs = 2.5 }");
    assert_eq!(d.message, "`epochs` must be a whole number");
    assert_eq!(at, "2.5");
    let (d, _) = err("train { steps = -3 }");
    assert_eq!(d.message, "`steps` must not be negative");
    let (d, _) = err("train { steps = 0 }");
    assert_eq!(d.message, "`steps` must be at least 1");
    let (d, _) = err("train { grad_tol = 0 }");
    assert_eq!(d.message, "`grad_tol` must be positive");
    let (d, _) = err("train { schedule = exponential(gamma = 0) }");
    assert_eq!(d.message, "`gamma` must be positive");
    let (d, _) = err("train { optimizer = sgd(lr = 1e999) }");
    assert_eq!(d.message, "number literal too large");
}

#[test]
fn min_lr_above_lr() {
    let (d, at) = err("train { optimizer = sgd(lr = 0.01) schedule = cosine(min_lr = 0.1) }");
    assert_eq!(
        d.message,
        "`min_lr` (0.1) is above the learning rate (0.01)"
    );
    assert_eq!(at, "cosine(min_lr = 0.1)");
}

#[test]
fn data_maps_unknown_input() {
    let src = with_xy(r#"data = csv("d.csv", x = 0..2, y = 2, z = 3)"#);
    let (d, at) = err(&src);
    assert_eq!(d.message, "`z` is not an input");
    assert_eq!(at, "z");
    assert_eq!(
        d.hint.as_deref(),
        Some("the inputs are x, y; the options are `header = true|false` and `scale`")
    );
    let (d, _) = err(&with_xy(
        r#"data = csv("d.csv", xx = 0..2, y = 2, x = 0..2)"#,
    ));
    assert_eq!(d.hint.as_deref(), Some("did you mean `x`?"));
}

#[test]
fn data_leaves_an_input_unmapped() {
    let src = with_xy(r#"data = csv("d.csv", x = 0..2)"#);
    let (d, at) = err(&src);
    assert_eq!(d.message, "input `y` is not mapped to a column");
    assert_eq!(at, r#"csv("d.csv", x = 0..2)"#);
    assert_eq!(d.hint.as_deref(), Some("add `y = <column>`, e.g. `y = 0`"));
}

#[test]
fn data_column_counts_match_the_shapes() {
    let src = with_xy(r#"data = csv("d.csv", x = 0..3, y = 3)"#);
    let (d, at) = err(&src);
    assert_eq!(
        d.message,
        "input `x` has 2 values but 3 columns are mapped to it"
    );
    assert_eq!(at, "0..3");
    let (d, _) = err(&with_xy(r#"data = csv("d.csv", x = "a", y = 2)"#));
    assert_eq!(
        d.message,
        "input `x` has 2 values but 1 column is mapped to it"
    );
}

#[test]
fn data_columns_are_checked() {
    let (d, at) = err(&with_xy(r#"data = csv("d.csv", x = 2..2, y = 2)"#));
    assert_eq!(d.message, "empty column range `2..2`");
    assert_eq!(at, "2..2");
    let (d, at) = err(&with_xy(r#"data = csv("d.csv", x = 0..2, y = 1)"#));
    assert_eq!(d.message, "column 1 is read by both `x` and `y`");
    assert_eq!(at, "y = 1");
    let (d, _) = err(&with_xy(r#"data = csv("d.csv", x = [1, 1], y = 2)"#));
    assert_eq!(d.message, "column 1 is listed twice for `x`");
    let (d, _) = err(&with_xy(r#"data = csv("d.csv", x = 0..2, y = 1.5)"#));
    assert_eq!(d.message, "a column index must be a whole number");
    let (d, _) = err(&with_xy(r#"data = csv("d.csv", x = 0..2, y = label)"#));
    assert_eq!(d.message, "an input mapping expects columns, found `label`");
    assert!(d
        .hint
        .unwrap()
        .starts_with("column names are strings: write \"label\""));
    let (d, _) = err(&with_xy(
        r#"data = csv("d.csv", x = 0..2, y = 2, x = 3..5)"#,
    ));
    assert_eq!(d.message, "`x` is mapped twice");
}

#[test]
fn data_call_is_checked() {
    let (d, at) = err(&with_xy(r#"data = csv(x = 0..2, y = 2)"#));
    assert_eq!(d.message, "`csv` needs a file path first");
    assert_eq!(at, "csv(x = 0..2, y = 2)");
    assert_eq!(
        d.hint.as_deref(),
        Some(r#"write `csv("data.csv", x = 0..2, y = 2)`"#)
    );
    let (d, at) = err(&with_xy(r#"data = json("d.json")"#));
    assert_eq!(d.message, "unknown data source `json`");
    assert_eq!(at, "json");
    let (d, _) = err(&with_xy(r#"data = "d.csv""#));
    assert_eq!(
        d.message,
        "`data` expects a data source, found the string \"d.csv\""
    );
    let (d, _) = err(&with_xy(r#"data = csv("d.csv", 0..2, y = 2, x = 0..2)"#));
    assert_eq!(d.message, "unexpected unnamed argument to `csv`");
    let (d, at) = err(&with_xy(
        r#"data = csv("d.csv", x = ["a", "b"], y = "c", header = false)"#,
    ));
    assert_eq!(d.message, "columns are mapped by name but `header = false`");
    assert_eq!(at, "header");
    let (d, _) = err(&with_xy(
        r#"data = csv("d.csv", x = 0..2, y = 2, header = yes)"#,
    ));
    assert_eq!(d.message, "`header` expects `true` or `false`, found `yes`");
}

#[test]
fn an_input_may_be_called_header() {
    let c = ok(r#"input header
                  train { data = csv("d.csv", header = 0, header = false) }"#);
    let data = c.data.unwrap();
    assert_eq!(data.header, Some(false));
    assert_eq!(data.columns[0].columns, Columns::Index(0));
}

#[test]
fn data_without_inputs() {
    let src = r#"param x = 1
loss x^2
train { data = csv("d.csv") }"#;
    let (d, at) = err(src);
    assert_eq!(d.message, "`data` given but the model has no inputs");
    assert_eq!(at, "data");
    let (_, diags) = run("param x = 1\nloss x^2\ntrain { batch = 4 validate = 0.2 }");
    let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`batch` needs data, but the model has no inputs",
            "`validate` needs data, but the model has no inputs"
        ]
    );
}

#[test]
fn missing_data_is_for_the_trainer() {
    let src = format!("{XY}train {{ epochs = 3 }}");
    let c = ok(&src);
    let inputs = [
        ("x".to_string(), Shape::vector(2)),
        ("y".to_string(), Shape::scalar()),
    ];
    let d = c.training_data(&inputs).unwrap_err();
    assert_eq!(d.message, "the model has inputs but no training data");
    assert_eq!(&src[d.span.range()], "train { epochs = 3 }");
    assert_eq!(
        d.hint.as_deref(),
        Some(
            r#"add `data = csv("data.csv", x = 0..2, y = 2)` to the train block, mapping each input to its columns"#
        )
    );
}

#[test]
fn patience_needs_validate() {
    let (d, at) = err(&with_xy(
        r#"data = csv("d.csv", x = 0..2, y = 2) patience = 3"#,
    ));
    assert_eq!(d.message, "`patience` needs `validate`");
    assert_eq!(at, "patience");
}

#[test]
fn several_mistakes_are_all_reported() {
    let (c, diags) = run("train { epochs = 0 optimizer = sgd(lr = -1) seeed = 3 }");
    let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "unknown setting `seeed`",
            "the learning rate must be positive",
            "`epochs` must be at least 1",
        ]
    );
    assert_eq!(c.optimizer, Optimizer::default());
}

#[test]
fn suggestions() {
    assert_eq!(
        suggest("optimiser", KEYS, "settings"),
        "did you mean `optimizer`?"
    );
    assert_eq!(
        suggest("shufle", KEYS, "settings"),
        "did you mean `shuffle`?"
    );
    assert_eq!(
        suggest("xyz", &["a", "b"], "the letters are"),
        "the letters are: a, b"
    );
}

#[test]
fn array_sources_map_inputs_by_name() {
    let c = ok(&with_xy(
        r#"data = npz("mnist.npz", x = "x_train", y = "y_train", scale = 1/255)
           test = npz("mnist.npz", x = "x_test", y = "y_test")"#,
    ));
    let d = c.data.unwrap();
    assert_eq!(d.format, Format::Npz);
    assert_eq!(d.path, "mnist.npz");
    let names: Vec<(&str, &str)> = d
        .arrays
        .iter()
        .map(|a| (a.input.as_str(), a.name.as_str()))
        .collect();
    assert_eq!(names, [("x", "x_train"), ("y", "y_train")]);
    assert_eq!(d.scale, Some(1.0 / 255.0));
    let t = c.test.unwrap();
    assert_eq!(t.arrays[1].name, "y_test");
    assert_eq!(t.scale, None);

    // Declaration order, whatever the order written.
    let c = ok(&with_xy(
        r#"data = npy(y = "y.npy", x = "x.npy", scale = 0.5)"#,
    ));
    let d = c.data.unwrap();
    assert_eq!((d.format, d.path.as_str()), (Format::Npy, ""));
    assert_eq!(d.arrays[0].name, "x.npy");
    assert_eq!(d.scale, Some(0.5));
    let c = ok(&with_xy(
        r#"data = idx(x = "train-images-idx3-ubyte", y = "train-labels-idx1-ubyte")"#,
    ));
    assert_eq!(c.data.unwrap().format, Format::Idx);
    // `scale` on a CSV source too.
    let c = ok(&with_xy(
        r#"data = csv("d.csv", x = 0..2, y = 2, scale = 2)"#,
    ));
    assert_eq!(c.data.unwrap().scale, Some(2.0));
}

#[test]
fn array_source_mistakes() {
    let (d, at) = err(&with_xy(r#"data = npz(x = "a", y = "b")"#));
    assert_eq!(d.message, "`npz` needs a file path first");
    assert_eq!(at, r#"npz(x = "a", y = "b")"#);
    let (d, at) = err(&with_xy(r#"data = npy(x = "x.npy")"#));
    assert_eq!(d.message, "input `y` is not mapped to an array");
    assert_eq!(at, r#"npy(x = "x.npy")"#);
    assert_eq!(
        d.hint.as_deref(),
        Some(r#"write `npy(x = "x.npy", y = "y.npy")`"#)
    );
    let (d, at) = err(&with_xy(r#"data = npy(x = 0, y = "y.npy")"#));
    assert_eq!(
        d.message,
        "an input mapping expects a string, a file's path, found the number 0"
    );
    assert_eq!(at, "0");
    let (d, _) = err(&with_xy(r#"data = idx(x = "a", y = "b", x = "c")"#));
    assert_eq!(d.message, "`x` is mapped twice");
    let (d, at) = err(&with_xy(r#"data = idx(x = "a", y = "b", scale = 1/0)"#));
    assert_eq!(d.message, "`scale` must be a finite number other than 0");
    assert_eq!(at, "1/0");
    let (d, at) = err(&with_xy(r#"data = idx(x = "a", y = "b", scale = "big")"#));
    assert_eq!(
        d.message,
        "`scale` expects a number or a fraction, found the string \"big\""
    );
    assert_eq!(at, "\"big\"");
    let (d, _) = err(&with_xy(
        r#"data = idx(x = "a", y = "b", scale = 2, scale = 3)"#,
    ));
    assert_eq!(d.message, "`scale` is given twice");
    let (d, at) = err(&with_xy(r#"data = hdf5("a.h5", x = "x", y = "y")"#));
    assert_eq!(d.message, "unknown data source `hdf5`");
    assert_eq!(at, "hdf5");
    let (d, at) = err("param w = 0\nloss w^2\ntrain { test = npz(\"t.npz\") }");
    assert_eq!(d.message, "`test` given but the model has no inputs");
    assert_eq!(at, "test");
    let (d, _) = err(&with_xy(r#"data = csv("d.csv", x = 1/2, y = 2)"#));
    assert_eq!(
        d.message,
        "an input mapping expects columns, found the fraction 1/2"
    );
}
