//! Helpers shared by the test modules: the crate's data files, compiling
//! with the diagnostics rendered into the panic, and running data-driven
//! cases so that a failure names every failing case, not only the first.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use gradc::diagnostic::render_all;
use gradc::Compiled;

/// The builtins of one argument applied element by element (their optional
/// arguments left at their defaults), for the random program generators.
pub const ELEMENTWISE: &[&str] = &[
    "exp",
    "log",
    "sqrt",
    "abs",
    "sign",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "softplus",
    "log1p",
    "expm1",
    "erf",
    "floor",
    "round",
    "gelu",
    "leaky_relu",
    "elu",
    "clip",
];

/// The crate root, which holds `examples/` and `tests/`.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files `*.EXT` of `dir` (relative to the crate root), sorted, each with
/// its name without the extension. Fails when there are none.
pub fn files(dir: &str, ext: &str) -> Vec<(String, PathBuf)> {
    let dir = root().join(dir);
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .{ext} files in {}", dir.display());
    files
}

/// The bundled `examples/*.grad`, sorted, with their names.
pub fn examples() -> Vec<(String, PathBuf)> {
    files("examples", "grad")
}

/// Runs the `gradc` binary in the crate root: whether it succeeded, its
/// stdout and its stderr.
pub fn gradc(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gradc"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh directory for one test's files, under the system's temporary
/// directory, named by the process and `name`.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gradc-it-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The directory of a stage's snapshots, `tests/snapshots/STAGE`. (Absolute:
/// insta resolves a relative `snapshot_path` against the asserting file's
/// directory, which is `tests/it/`.)
pub fn snapshots(stage: &str) -> PathBuf {
    root().join("tests/snapshots").join(stage)
}

/// Compiles `src`; if it does not compile, panics with the source and its
/// diagnostics rendered as from `file`.
pub fn compile_as(file: &str, src: &str) -> Compiled {
    gradc::compile(src).unwrap_or_else(|d| {
        panic!(
            "{file} does not compile:\n{src}\n{}",
            render_all(&d, file, src, false)
        )
    })
}

/// [`compile_as`] for a source written in a test.
pub fn compile(src: &str) -> Compiled {
    compile_as("test.grad", src)
}

/// Runs `check` on every case, each on its own so that one failing does not
/// hide the next; then fails naming every case that failed, with its message.
/// The panic of each failing case is printed as it happens, as usual.
pub fn each_case<T>(cases: impl IntoIterator<Item = (String, T)>, mut check: impl FnMut(&str, T)) {
    let (mut count, mut failures) = (0, Vec::new());
    for (name, case) in cases {
        count += 1;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&name, case))) {
            failures.push(format!("{name}: {}", message(&*panic)));
        }
    }
    assert!(count > 0, "no cases");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A panic's message: the first line of its text, if it has one.
fn message(panic: &(dyn Any + Send)) -> &str {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(a panic without a message)");
    text.lines().next().unwrap_or("")
}

/// The fault `f` stops at on the interpreter, which every other engine
/// must report the same.
pub fn same_fault_on_every_engine(
    f: &gradc::ir::Function,
    params: &[gradc::shape::Tensor],
    inputs: &[gradc::shape::Tensor],
) -> gradc::ir::fault::RunError {
    use gradc::eval::{Evaluator, Mode};
    let run = |mode| {
        Evaluator::compile(f, mode)
            .unwrap()
            .outputs(params, inputs)
            .unwrap_err()
    };
    let want = run(Mode::Interp);
    for mode in [Mode::PerExample, Mode::Batched] {
        assert_eq!(run(mode), want, "{mode:?}");
    }
    want
}

/// The outputs of `f` on every engine, as bits; each must equal the
/// interpreter's.
pub fn same_bits_on_every_engine(
    f: &gradc::ir::Function,
    params: &[gradc::shape::Tensor],
    inputs: &[gradc::shape::Tensor],
) {
    use gradc::eval::{Evaluator, Mode};
    let run = |mode| {
        Evaluator::compile(f, mode)
            .unwrap()
            .outputs(params, inputs)
            .unwrap()
            .iter()
            .flat_map(|t| t.data.iter().map(|v| v.to_bits()))
            .collect::<Vec<u64>>()
    };
    let want = run(Mode::Interp);
    for mode in [Mode::PerExample, Mode::Batched] {
        assert_eq!(run(mode), want, "{mode:?}");
    }
}

/// The batched JIT on `examples` against the interpreter on each: per-example
/// outputs row by row, means summed in example order and divided by `n`.
pub fn batch_agrees(
    f: &gradc::ir::Function,
    params: &[gradc::shape::Tensor],
    examples: &[Vec<gradc::shape::Tensor>],
) {
    use gradc::backend::{compile_batched_with, BatchOptions, Reduce};
    use gradc::ir::interp;
    let per_example = BatchOptions {
        per_example_outputs: true,
        ..BatchOptions::default()
    };
    let jit = compile_batched_with(f, per_example).unwrap_or_else(|e| panic!("{e:?}\n{f}"));
    let n = examples.len();
    let rows: Vec<Vec<f64>> = (0..f.inputs.len())
        .map(|k| examples.iter().flat_map(|x| x[k].data.clone()).collect())
        .collect();
    let rows: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
    let got = jit.run(params, &rows, n).unwrap();
    let each: Vec<_> = examples
        .iter()
        .map(|x| interp::run_outputs(f, params, x).unwrap())
        .collect();
    for (o, g) in jit.outputs().iter().zip(&got) {
        let values = each.iter().map(|outs| &outs[o.index].1.data);
        let want: Vec<f64> = match o.reduce {
            Reduce::PerExample => values.flatten().copied().collect(),
            Reduce::Mean => {
                let mut acc = vec![-0.0; f.shape(f.outputs[o.index].value).size()];
                for v in values {
                    for (a, x) in acc.iter_mut().zip(v) {
                        *a += x;
                    }
                }
                acc.iter().map(|a| a / n as f64).collect()
            }
        };
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&g.data),
            bits(&want),
            "{} ({:?}, n = {n})\n{f}",
            f.outputs[o.index].name,
            o.reduce
        );
    }
}
