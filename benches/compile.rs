//! Compile time: from the source text of every `examples/*.grad` to a
//! callable gradient (parse, check, lower, simplify, autodiff, simplify,
//! Cranelift JIT of the batched function), and the front end alone (up to
//! the simplified gradient IR), to show the JIT's share; the JIT alone
//! of the single-example forward and gradient functions, from their IR; and
//! what `gradc gradbench` reports as a function's `"compile"` timing, for
//! the GradBench evals at one of their default sizes each, on one thread
//! (`gradbench/`) and, for the largest, on two (`gradbench_2/`: in parts,
//! as `gradc gradbench` compiles on a machine of two cores or more).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use gradc::eval::Backend;

/// mimalloc, as the binary uses (see [`gradc::Allocator`]).
#[global_allocator]
static ALLOCATOR: gradc::Allocator = gradc::Allocator;

/// The front end and autodiff: source text to the simplified gradient IR.
fn gradient_ir(src: &str) -> gradc::ir::Function {
    let compiled = gradc::compile(src).expect("the example compiles");
    compiled.gradient().expect("the example has a gradient")
}

/// The `examples/*.grad` files, sorted.
fn example_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "grad"))
        .collect();
    files.sort();
    files
}

fn compile_examples(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    for path in &example_files() {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(path).unwrap();
        group.bench_function(format!("{name}/gradient_ir"), |b| {
            b.iter(|| gradient_ir(black_box(&src)))
        });
        group.bench_function(format!("{name}/jit"), |b| {
            b.iter(|| {
                let g = gradient_ir(black_box(&src));
                gradc::backend::compile_batched(&g).expect("the JIT compiles")
            })
        });
    }
    group.finish();
}

/// `backend::compile` of the simplified forward IR and of the gradient IR,
/// one example per call, without the front end.
fn jit_single_example(c: &mut Criterion) {
    let mut group = c.benchmark_group("jit");
    for path in example_files() {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(&path).unwrap();
        let compiled = gradc::compile(&src).expect("the example compiles");
        let gradient = compiled.gradient().expect("the example has a gradient");
        for (kind, f) in [("forward", &compiled.ir), ("gradient", &gradient)] {
            group.bench_function(format!("{name}/{kind}"), |b| {
                b.iter(|| gradc::backend::compile(black_box(f)).expect("the JIT compiles"))
            });
        }
    }
    group.finish();
}

/// A module, its functions, and sizes for them.
type Case = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, usize)],
);

/// GradBench functions at one of their eval's default sizes (the sizes
/// named as the programs in `gradbench/` name them): the largest program of
/// each eval, or the one that takes longest to compile; `ht` at the sizes of
/// `measure.py`'s random hand model (ADBench's model files are not here).
const GRADBENCH: &[Case] = &[
    ("lse", &["primal", "gradient"], &[("N", 10000)]),
    ("llsq", &["primal", "gradient"], &[("N", 1024), ("M", 128)]),
    (
        "gmm",
        &["objective", "jacobian"],
        &[("N", 1000), ("D", 32), ("K", 10)],
    ),
    ("ode", &["primal", "gradient"], &[("N", 10000), ("S", 10)]),
    (
        "lstm",
        &["objective", "jacobian"],
        &[("L", 2), ("B", 14), ("C", 1024)],
    ),
    ("det", &["primal", "gradient"], &[("L", 11), ("P", 1 << 11)]),
    (
        "kmeans",
        &["cost", "dir"],
        &[("N", 10000), ("K", 100), ("D", 8)],
    ),
    (
        "ba",
        &["objective", "jacobian"],
        &[("N", 21), ("M", 11315), ("P", 36455)],
    ),
    (
        "ht",
        &["objective", "jacobian"],
        &[("B", 22), ("V", 544), ("T", 1084), ("K", 100)],
    ),
    ("saddle", &["ff", "fr", "rf", "rr"], &[]),
    ("particle", &["ff", "fr", "rf", "rr"], &[]),
];

/// `gradc gradbench`'s compilation of one function for one size: source
/// text to the JIT's code.
fn gradbench(c: &mut Criterion) {
    let mut group = c.benchmark_group("gradbench");
    for &(module, functions, dims) in GRADBENCH {
        let dims: Vec<(String, usize)> = dims.iter().map(|&(d, n)| (d.to_string(), n)).collect();
        for function in functions {
            group.bench_function(format!("{module}/{function}"), |b| {
                b.iter(|| {
                    gradc::gradbench::compile_function(module, function, &dims, Backend::Jit)
                        .expect("the function compiles")
                })
            });
        }
    }
    group.finish();
}

/// The functions of [`GRADBENCH`] of a thousand Cranelift instructions or
/// more, compiled as `gradc gradbench` compiles them on two cores: in
/// parts, on two threads.
const IN_PARTS: &[(&str, &str)] = &[
    ("gmm", "jacobian"),
    ("lstm", "jacobian"),
    ("det", "gradient"),
    ("ba", "jacobian"),
    ("ht", "jacobian"),
    ("saddle", "rf"),
    ("particle", "rf"),
];

/// [`gradbench`]'s compilations of [`IN_PARTS`] with two threads allowed.
fn gradbench_two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("gradbench_2");
    gradc::backend::kernel::set_threads(2);
    for &(module, function) in IN_PARTS {
        let &(_, _, dims) = (GRADBENCH.iter())
            .find(|&&(m, _, _)| m == module)
            .expect("a module of GRADBENCH");
        let dims: Vec<(String, usize)> = dims.iter().map(|&(d, n)| (d.to_string(), n)).collect();
        group.bench_function(format!("{module}/{function}"), |b| {
            b.iter(|| {
                gradc::gradbench::compile_function(module, function, &dims, Backend::Jit)
                    .expect("the function compiles")
            })
        });
    }
    gradc::backend::kernel::set_threads(1);
    group.finish();
}

criterion_group! {
    name = benches;
    // No plots: plotters finds no font here, and the figures are in the text.
    config = Criterion::default()
        .without_plots()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = compile_examples, jit_single_example, gradbench, gradbench_two_threads
}
criterion_main!(benches);
