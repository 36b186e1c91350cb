//! Sizes (`dim D`) end to end: a program trained with a size bound from its
//! CSV data or from `--dim` gives the same bits as the program with the
//! number written out; every command takes `--dim`; the binding errors, as
//! the binary renders them.

use std::path::Path;

use gradc::runtime::{self, Options};
use gradc::shape::Tensor;

use crate::common::{gradc, snapshots, temp_dir};

/// A small regression model, its width written as `WIDTH`.
const MODEL: &str = "WIDTH_DECL\
input x: [WIDTH]
input y
param W: [3, WIDTH] = normal(0, 0.5)
param v: [3] = normal(0, 0.5)
let z = dot(v, tanh(W @ x)) / WIDTH
loss (z - y)^2
train {
  data = csv(\"d.csv\", x = 0..4, y = 4)
  optimizer = adam(lr = 0.05)
  batch = 2
  epochs = 4
  seed = 3
}
";

fn model(decl: &str, width: &str) -> String {
    MODEL.replace("WIDTH_DECL", decl).replace("WIDTH", width)
}

/// A directory with `d.csv` (4 features and a target) and `name` holding `src`.
fn project(dir: &Path, name: &str, src: &str) -> std::path::PathBuf {
    let rows: Vec<String> = (0..10)
        .map(|i| {
            let f = |k: usize| ((i * 7 + k * 3) % 11) as f64 / 10.0 - 0.5;
            format!("{},{},{},{},{}", f(0), f(1), f(2), f(3), f(4) * 2.0)
        })
        .collect();
    std::fs::write(dir.join("d.csv"), rows.join("\n") + "\n").unwrap();
    let path = dir.join(name);
    std::fs::write(&path, src).unwrap();
    path
}

fn trained(path: &Path, dims: &[(&str, usize)]) -> Vec<Tensor> {
    let flags: Vec<(String, usize)> = dims.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    let c = gradc::driver::load_with_dims(path, &flags).unwrap_or_else(|e| panic!("{e}"));
    let cfg = c.typed.train.clone().unwrap();
    let opts = Options {
        base_dir: path.parent().unwrap().to_path_buf(),
        ..Options::default()
    };
    let report = runtime::train(&c, &cfg, &opts, &mut ()).unwrap_or_else(|e| panic!("{e}"));
    report.params
}

fn bits(ps: &[Tensor]) -> Vec<Vec<u64>> {
    ps.iter()
        .map(|t| t.data.iter().map(|x| x.to_bits()).collect())
        .collect()
}

#[test]
fn a_size_from_the_data_or_the_flag_trains_as_the_number_written_out() {
    let dir = temp_dir("dims-train");
    let written = trained(&project(&dir, "n.grad", &model("", "4")), &[]);
    let from_data = trained(&project(&dir, "d.grad", &model("dim D\n", "D")), &[]);
    let from_flag = trained(
        &project(&dir, "f.grad", &model("dim D = 9\n", "D")),
        &[("D", 4)],
    );
    assert_eq!(written[0].shape.dims(), &[3, 4]);
    // Training moved the parameters (so equal bits say something).
    let c = gradc::compile(&model("", "4")).unwrap();
    assert_ne!(bits(&c.initial_params(3)), bits(&written));
    assert_eq!(bits(&written), bits(&from_data));
    assert_eq!(bits(&written), bits(&from_flag));
}

/// `dim D` bound by nothing, for commands that need no data.
const BARE: &str =
    "dim D\ninput x: [D]\nparam w: [D] = ones\nloss sum(w * x) / D\noutput p = w * 2\n";

#[test]
fn every_command_takes_dim() {
    let dir = temp_dir("dims-cli");
    let file = dir.join("bare.grad");
    std::fs::write(&file, BARE).unwrap();
    let f = file.to_str().unwrap();
    let data = dir.join("x.csv");
    std::fs::write(&data, "1,2,3\n4,5,6\n").unwrap();
    let trained = project(
        &dir,
        "t.grad",
        &format!("{BARE}train {{ data = csv(\"x.csv\", x = 0..3) optimizer = sgd(lr = 0.1) epochs = 1 }}\n"),
    );
    let t = trained.to_str().unwrap();
    let weights = dir.join("w.safetensors");
    let w = weights.to_str().unwrap();
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("ir", vec!["ir", f]),
        ("clif", vec!["clif", f]),
        ("grad", vec!["grad", f]),
        ("check", vec!["check", f]),
        ("eval", vec!["eval", f]),
        ("train", vec!["train", t, "--quiet", "--save", w]),
        ("predict", vec!["predict", t, "--weights", w]),
    ];
    for (name, args) in &runs {
        // Without --dim, nothing binds D but the data (which only the file
        // of `train` and `predict` maps).
        let (ok, _, err) = gradc(args);
        if name.starts_with('t') || name.starts_with('p') {
            assert!(ok, "{name} binds D from the data: {err}");
        } else {
            assert!(!ok, "{name} without --dim");
            assert!(err.contains("the size `D` is not bound"), "{name}: {err}");
        }
        let mut with: Vec<&str> = args.clone();
        with.extend(["--dim", "D=3"]);
        let (ok, out, err) = gradc(&with);
        assert!(ok, "{name} --dim D=3: {err}");
        if *name == "ir" {
            assert!(out.contains("inputs(x: [3])"), "{out}");
        }
        // The flag before the command's name is the same flag.
        let mut before: Vec<&str> = vec!["--dim", "D=3"];
        before.extend(args.iter().copied());
        assert!(gradc(&before).0, "--dim D=3 {name}");
        let mut wrong = args.clone();
        wrong.extend(["--dim", "E=3"]);
        let (ok, _, err) = gradc(&wrong);
        assert!(!ok, "{name} --dim E=3");
        assert!(
            err.contains("the program declares no size `E`"),
            "{name}: {err}"
        );
    }
    // The data gives 3 columns: a flag that says otherwise is an error.
    let (ok, _, err) = gradc(&["train", t, "--quiet", "--dim", "D=4"]);
    assert!(!ok);
    assert!(err.contains("`--dim D=4` sets it to 4"), "{err}");
    // A malformed flag is clap's error, with what is wrong.
    let (ok, _, err) = gradc(&["ir", f, "--dim", "D=0"]);
    assert!(!ok);
    assert!(err.contains("must be a positive integer"), "{err}");
    // `--help` of every command says what --dim does.
    for name in [
        "ir", "clif", "grad", "check", "eval", "train", "predict", "repl",
    ] {
        let (_, out, _) = gradc(&[name, "--help"]);
        assert!(out.contains("--dim <NAME=N>"), "{name} --help:\n{out}");
    }
}

/// The binding errors of `src` run with `args`, as the binary renders them.
fn rendered(dir: &Path, src: &str, args: &[&str]) -> String {
    let path = project(dir, "m.grad", src);
    let p = path.to_str().unwrap();
    let mut all = vec!["ir", p];
    all.extend(args);
    let (ok, _, err) = gradc(&all);
    assert!(!ok, "{src} {args:?} compiles");
    err.replace(&dir.display().to_string(), "$DIR")
}

#[test]
fn binding_errors_name_both_sources() {
    let dir = temp_dir("dims-errors");
    let mut text = String::new();
    let cases: [(&str, String, &[&str]); 4] = [
        (
            "the flag against the data",
            model("dim D\n", "D"),
            &["--dim", "D=6"],
        ),
        (
            "a flag for a shape written with the size",
            model("dim D\n", "D").replace("[D]", "[2 * D]"),
            &["--dim", "D=3"],
        ),
        (
            "a flag naming no size",
            model("dim Width\n", "Width"),
            &["--dim", "Widht=4"],
        ),
        (
            "an array whose examples do not fit the flag",
            "dim H\ndim W\ninput x: [H, W]\nloss sum(x)\n\
             train { data = npy(x = \"x.npy\") }\n"
                .to_string(),
            &["--dim", "W=2"],
        ),
    ];
    std::fs::write(dir.join("x.npy"), npy_f64(&[5, 2, 3])).unwrap();
    for (title, src, args) in &cases {
        text.push_str(&format!(
            "== {title}: {args:?}\n{}\n",
            rendered(&dir, src, args)
        ));
    }
    insta::with_settings!({
        snapshot_path => snapshots("dims"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("binding_errors", text);
    });
}

/// An `.npy` file of zeros (`<f8`) of this shape.
fn npy_f64(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let mut header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.resize(out.len() + 8 * shape.iter().product::<usize>(), 0);
    out
}
