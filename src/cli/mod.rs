//! The command line's batch commands (`gradc ir`, `grad`, `check`, `eval`,
//! `train`, `predict`, ...): their arguments, and the printing of their
//! results. The work is the [`crate::driver`]'s; a failure is an [`Error`]
//! the binary renders. Only this module and the REPL write to the terminal.

mod infer;
mod train;

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use serde_json::{json, Map, Value as Json};

use crate::backend::subnormals::FlushSubnormals;
use crate::diagnostic::{Error, Location};
use crate::driver::{self, check::CheckSettings, point, Missing};
use crate::eval::Backend;
use crate::ir::stats::stats;
use crate::ir::Role;
use crate::shape::Tensor;
use crate::span::{LineIndex, Span};
use crate::Compiled;

/// `--dim NAME=N`: the sizes every command (and the REPL) takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DimArgs {
    /// Set the size NAME (declared `dim NAME` in the program) to N, over its
    /// default and over the size the data gives; repeatable, or several at
    /// once: `--dim D=128,H=64`. Sizes are bound before the program is checked.
    #[arg(long = "dim", value_name = "NAME=N", value_parser = driver::parse_dims, global = true)]
    pub dims: Vec<crate::types::dims::DimFlags>,
}

impl DimArgs {
    /// Every size set, a later one of a name replacing an earlier one.
    pub fn flags(&self) -> crate::types::dims::DimFlags {
        let mut out = Vec::new();
        for d in &self.dims {
            driver::dims::merge(&mut out, d);
        }
        out
    }
}

/// Where the values of a model come from: `--input` and `--seed`.
#[derive(clap::Args, Debug, Clone)]
pub struct Point {
    /// The value of an input, as NAME=VALUES: `x=1,2,3`; matrix rows are
    /// separated by `;` (`X=1,2;3,4`). Repeat for each input; an input not
    /// given is zeros.
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUES")]
    pub inputs: Vec<String>,
    /// Seed for random initialisers (default: the train block's seed, or 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// What evaluates the program: the Cranelift JIT, or the reference interpreter.
    #[arg(long, value_enum, default_value_t = Backend::Jit)]
    pub backend: Backend,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum Command {
    /// Print the IR of a .grad file (optimised by default).
    Ir {
        /// The .grad file.
        file: PathBuf,
        /// Which stage to print.
        #[arg(long, value_enum, default_value_t = Emit::Ir)]
        emit: Emit,
    },
    /// Print the Cranelift IR of the forward and the gradient functions, as
    /// the JIT compiles them.
    Clif {
        /// The .grad file.
        file: PathBuf,
    },
    /// Print the gradient program: the forward pass, then one chain-rule step
    /// a line, each tagged with the source line it comes from.
    Grad {
        /// The .grad file.
        file: PathBuf,
        /// Print the loss and every parameter's gradient at the initial
        /// parameters instead of the program.
        #[arg(long)]
        values: bool,
        /// Print the Hessian of the loss over all parameters, flattened in
        /// declaration order (for small programs).
        #[arg(long, conflicts_with = "values")]
        hessian: bool,
        /// Print operation and FLOP counts of the forward and gradient programs.
        #[arg(long, conflicts_with_all = ["values", "hessian"])]
        stats: bool,
        /// Print the compile time of each stage (parse, check, lower,
        /// simplify, autodiff, simplify, and the JIT of the forward and
        /// gradient functions), each run once more on its own.
        #[arg(long, conflicts_with_all = ["values", "hessian", "stats", "jacobian", "hvp"])]
        timings: bool,
        /// Print the Jacobian of every `output` with respect to the
        /// parameters (a row per output element, a column per parameter
        /// element): by reverse mode (a gradient per row) when the output
        /// has no more elements than the parameters, else by forward mode (a
        /// tangent per column).
        #[arg(long, conflicts_with_all = ["values", "hessian", "stats"])]
        jacobian: bool,
        /// Print the Hessian of the loss times a direction, as NAME=VALUES
        /// per parameter (`w=1,0,0`; repeat for each; a parameter not given
        /// is zeros): forward mode over the gradient, without forming the
        /// Hessian.
        #[arg(long, value_name = "NAME=VALUES", conflicts_with_all = ["values", "hessian", "stats", "jacobian"])]
        hvp: Vec<String>,
        #[command(flatten)]
        point: Point,
        /// Print JSON instead of text (with --values, --hessian, --stats or
        /// --timings).
        #[arg(long)]
        json: bool,
    },
    /// Check reverse-mode gradients against central finite differences, at the
    /// initial parameters and at random perturbations of them. Exits with 1
    /// when an error is above the tolerance.
    Check {
        /// The .grad file.
        file: PathBuf,
        #[command(flatten)]
        point: Point,
        /// The largest relative error accepted.
        #[arg(long, default_value_t = 1e-5)]
        tol: f64,
        /// Random perturbations of the parameters to check besides the initial point.
        #[arg(long, default_value_t = 3)]
        perturbations: usize,
    },
    /// Evaluate the loss, metrics and outputs at the initial parameters and
    /// the --input point; with --data, or with --weights and no --input, the
    /// mean loss and metrics over a data set.
    Eval {
        /// The .grad file.
        file: PathBuf,
        #[command(flatten)]
        point: Point,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Evaluate with these parameters (a safetensors file written by
        /// `gradc train --save`) instead of the initial ones. Without --data
        /// and --input, over the train block's data, as `gradc predict`
        /// does (at zero inputs, with a note, when the train block has no
        /// data).
        #[arg(long, value_name = "FILE")]
        weights: Option<PathBuf>,
        /// Print the loss and metrics over the examples of a CSV file (the
        /// mean over its rows), read with the train block's column mapping;
        /// without a file name, over the train block's data.
        #[arg(long, value_name = "CSV", num_args = 0..=1)]
        data: Option<Option<PathBuf>>,
        /// The float type to run the data in (with --data or --weights),
        /// overriding the train block's `dtype` (default f64; f32 needs the
        /// JIT).
        #[arg(long, value_enum)]
        dtype: Option<crate::dtype::Dtype>,
        /// Threads the examples of --data are split over (0: one per core,
        /// the default); the results are the same bits at any count.
        #[arg(long, value_name = "N", default_value_t = 0)]
        threads: usize,
    },
    /// Train the parameters as the train block says; the options override it.
    /// Prints progress, then a summary.
    ///
    /// An epoch line's loss and metrics are the mean over the epoch's
    /// batches, each at the parameters before its step; the summary's are
    /// over all the training data at the final parameters.
    ///
    /// The paths of --save, --log and --plot are checked before training; if
    /// one cannot be written after all, the summary is printed first.
    Train(train::TrainArgs),
    /// Print the `output`s of a trained model for every example of a data
    /// set, as CSV.
    Predict(infer::PredictArgs),
    /// Serve GradBench's protocol on standard input and output (one JSON
    /// message a line), as a tool of its `run` command: `--tool "gradc
    /// gradbench"`. Answers the evals hello, lse, llsq, gmm, ode, lstm, det,
    /// kmeans, ba, ht, saddle and particle with the programs of gradbench/,
    /// each compiled once per distinct set of sizes; another module's
    /// `define` fails with the reason.
    Gradbench {
        /// What evaluates the programs: the Cranelift JIT, or the reference
        /// interpreter.
        #[arg(long, value_enum, default_value_t = Backend::Jit)]
        backend: Backend,
        /// Run the programs with subnormal numbers flushed to zero (x86-64's
        /// flush-to-zero and denormals-are-zero modes), as JAX's CPU backend
        /// does: a value of magnitude below 2.2e-308 becomes a zero of its
        /// sign. Faster where subnormals occur (an x86 core takes about a
        /// hundred cycles over each); by default, IEEE arithmetic
        #[arg(long)]
        flush_subnormals: bool,
        /// Threads a large matrix product is split over, by rows of its
        /// result (0: one per core, the default): a product of 4 million
        /// multiply-adds or more; and a large elementwise loop (131,072
        /// elements or more, an `exp`, `log` or other call in it counting
        /// as 4 elements more), by parts of its elements; and a maximum of
        /// 131,072 elements or more, by slices. With more than one, a
        /// program of 600 Cranelift instructions or more is compiled in
        /// parts, each on a thread as soon as it is built. The results are
        /// the same bits at any count; the rest of a program runs on one
        /// thread.
        #[arg(long, value_name = "N", default_value_t = 0)]
        threads: usize,
    },
}

/// Stages `gradc ir --emit` can print.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// The syntax tree, printed back as fully parenthesised source.
    Ast,
    /// The IR as lowered, before simplification.
    RawIr,
    /// The simplified IR.
    Ir,
}

/// Runs a command with the sizes of `--dim`; its output is printed, its
/// failure returned.
pub fn run(command: Command, dims: &DimArgs) -> Result<(), Error> {
    let dims = &dims.flags();
    match command {
        Command::Ir { file, emit } => {
            let text = match emit {
                Emit::Ast => {
                    let source = driver::read_source(&file).map_err(counted)?;
                    let ast = crate::parse(&source.text)
                        .map_err(|d| counted(Error::in_source(&source, d)))?;
                    crate::syntax::printer::print(&ast)
                }
                Emit::RawIr => compile(&file, dims)?.raw.to_string(),
                Emit::Ir => compile(&file, dims)?.ir.to_string(),
            };
            out!("{text}");
            Ok(())
        }
        Command::Gradbench {
            backend,
            flush_subnormals,
            threads,
        } => {
            if flush_subnormals && !FlushSubnormals::SUPPORTED {
                return Err(Error::new(
                    "--flush-subnormals: this CPU has no mode that flushes subnormals (x86-64 only)",
                ));
            }
            let settings = crate::gradbench::Settings {
                backend,
                flush_subnormals,
                threads,
            };
            let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
            crate::gradbench::serve(stdin.lock(), stdout.lock(), settings).map_err(|e| {
                Error::new(format!(
                    "gradbench: cannot read or write a message: {}",
                    crate::diagnostic::io_reason(&e)
                ))
            })
        }
        Command::Clif { file } => {
            let c = compile(&file, dims)?;
            let g = gradient(&c)?;
            for (name, f) in [("forward", &c.ir), ("gradient", &g)] {
                let text = crate::backend::clif_text(f).map_err(crate::eval::compile_failed)?;
                outln!("; {name}\n{text}");
            }
            Ok(())
        }
        Command::Grad {
            file,
            values,
            hessian,
            stats,
            timings,
            jacobian,
            hvp,
            point,
            json,
        } => {
            let c = compile(&file, dims)?;
            let g = gradient(&c)?;
            if jacobian {
                let p = at_point(&c, &point, Missing::Zeros)?;
                let j = driver::jacobian::jacobians(
                    &c.ir,
                    &c.source,
                    &p.params,
                    &p.inputs,
                    point.backend,
                )?;
                print_jacobians(&j, json);
            } else if !hvp.is_empty() {
                let p = at_point(&c, &point, Missing::Zeros)?;
                let decls = point::param_decls(&c);
                let (direction, _) = point::parse_named("--hvp", "param", &decls, &hvp)?;
                let hv = driver::jacobian::hvp(
                    &g,
                    &c.source,
                    &p.params,
                    &p.inputs,
                    &direction,
                    point.backend,
                )?;
                print_named("hvp", &decls, &hv, json);
            } else if values {
                let p = at_point(&c, &point, Missing::Zeros)?;
                let (loss, grads) =
                    driver::gradients(&g, &c.source, point.backend, &p.params, &p.inputs)?;
                print_gradients(&c, loss, &grads, json);
                let loss = Tensor::scalar(loss);
                let values: Vec<&Tensor> = std::iter::once(&loss).chain(&grads).collect();
                warn(driver::non_finite(
                    &g, &c.source, &p.params, &p.inputs, &values,
                ));
            } else if hessian {
                let p = at_point(&c, &point, Missing::Zeros)?;
                let h = driver::hessian(&c.ir, &c.source, &p.params, &p.inputs, point.backend)?;
                print_hessian(&h.rows, json);
            } else if stats {
                print_stats(&c.ir, &g, json);
            } else if timings {
                let opts = driver::dims::check_options(&file, dims);
                print_timings(&driver::timings::stages(&c, &opts)?, json);
            } else {
                let src = &c.source.text;
                let lines = LineIndex::new(src);
                let text = crate::ir::printer::print_with_lines(&g, |s| {
                    (s != Span::default()).then(|| lines.line(s.lo as usize))
                });
                out!("{text}");
            }
            Ok(())
        }
        Command::Check {
            file,
            point,
            tol,
            perturbations,
        } => {
            let c = compile(&file, dims)?;
            let g = gradient(&c)?;
            let p = at_point(&c, &point, Missing::Random)?;
            let settings = CheckSettings {
                tol,
                perturbations,
                backend: point.backend,
            };
            let report =
                driver::check_gradients(&c.ir, &g, &c.source, &p.params, &p.inputs, &settings)?;
            out!("{report}");
            report.failure().map_or(Ok(()), Err)
        }
        Command::Eval {
            file,
            point,
            json,
            weights,
            data,
            dtype,
            threads,
        } => {
            let c = compile(&file, dims)?;
            if weights.is_some() || data.is_some() {
                let (w, d) = (weights.as_deref(), data.as_ref().map(Option::as_deref));
                return infer::eval(&file, &c, &point, (w, d), json, (dtype, threads));
            }
            let p = at_point(&c, &point, Missing::Zeros)?;
            let outs = driver::evaluate(&c.ir, &c.source, point.backend, &p.params, &p.inputs)?;
            print_results(&c.ir.outputs, &outs, json);
            let values: Vec<&Tensor> = outs.iter().collect();
            warn(driver::non_finite(
                &c.ir, &c.source, &p.params, &p.inputs, &values,
            ));
            Ok(())
        }
        Command::Train(args) => train::train(args, dims),
        Command::Predict(args) => infer::predict(args, dims),
    }
}

/// Prints a warning, if there is one, on stderr (in colour on a terminal,
/// unless `NO_COLOR` is set, as `main` renders errors).
pub(crate) fn warn(w: Option<Error>) {
    if let Some(w) = w {
        use std::io::IsTerminal;
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        eprint!("{}", w.render(color));
    }
}

/// The point a command evaluates at; a note says which inputs were not
/// given and what they are instead.
fn at_point(c: &Compiled, p: &Point, missing: Missing) -> Result<point::Point, Error> {
    let at = point::at(c, &p.inputs, p.seed, missing)?;
    let n = at.defaulted.len();
    if n > 0 {
        eprintln!(
            "note: input{} {} not given: using {}",
            if n == 1 { "" } else { "s" },
            at.defaulted.join(", "),
            if at.random {
                "seeded random values"
            } else {
                "zeros"
            }
        );
    }
    Ok(at)
}

fn print_gradients(c: &Compiled, loss: f64, grads: &[Tensor], json: bool) {
    if json {
        let mut g = Map::new();
        for (p, t) in c.typed.params.iter().zip(grads) {
            g.insert(p.name.clone(), tensor_json(t));
        }
        let doc = json!({ "loss": tensor_json(&Tensor::scalar(loss)), "grad": g });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        outln!("loss {}", Tensor::scalar(loss));
        for (p, t) in c.typed.params.iter().zip(grads) {
            outln!("grad {} = {t}", p.name);
        }
    }
}

fn print_jacobians(js: &[driver::jacobian::Jacobian], json: bool) {
    if json {
        let doc: Vec<Json> = js
            .iter()
            .map(|j| {
                json!({
                    "output": j.output,
                    "mode": j.mode.name(),
                    "columns": j.columns,
                    "rows": j.rows,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "jacobians": doc })).unwrap_or_default()
        );
        return;
    }
    for j in js {
        outln!(
            "jacobian of {} {} ({} mode), columns {}",
            j.output,
            j.shape,
            j.mode.name(),
            j.columns.join(", ")
        );
        for r in &j.rows {
            outln!(
                "{}",
                Tensor::new(crate::shape::Shape::vector(r.len()), r.clone())
            );
        }
    }
}

/// One tensor per parameter, as `what NAME = VALUES` lines or a JSON object.
fn print_named(what: &str, decls: &[(String, crate::shape::Shape)], ts: &[Tensor], json: bool) {
    if json {
        let mut m = Map::new();
        for ((name, _), t) in decls.iter().zip(ts) {
            m.insert(name.clone(), tensor_json(t));
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ what: m })).unwrap_or_default()
        );
    } else {
        for ((name, _), t) in decls.iter().zip(ts) {
            outln!("{what} {name} = {t}");
        }
    }
}

fn print_hessian(h: &[Vec<f64>], json: bool) {
    let rows: Vec<Tensor> = h
        .iter()
        .map(|r| Tensor::new(crate::shape::Shape::vector(r.len()), r.clone()))
        .collect();
    if json {
        let doc = json!({ "hessian": rows.iter().map(tensor_json).collect::<Vec<_>>() });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for r in &rows {
            outln!("{r}");
        }
    }
}

fn print_stats(f: &crate::ir::Function, g: &crate::ir::Function, json: bool) {
    let (a, b) = (stats(f), stats(g));
    let ratio = b.flops as f64 / (a.flops.max(1)) as f64;
    if json {
        let doc = json!({
            "forward": { "ops": a.ops, "flops": a.flops },
            "gradient": { "ops": b.ops, "flops": b.flops, "saved": b.saved },
            "flop_ratio": ratio,
        });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        outln!("{:9} {:>6} {:>10}", "program", "ops", "flops");
        outln!("{:9} {:>6} {:>10}", "forward", a.ops, a.flops);
        outln!("{:9} {:>6} {:>10}", "gradient", b.ops, b.flops);
        outln!("gradient / forward flops: {ratio:.2}");
        if b.saved > 0 {
            outln!(
                "saved by loops for the backward pass: {} numbers ({} KiB) per example",
                b.saved,
                b.saved * 8 / 1024
            );
        }
    }
}

fn print_timings(stages: &[driver::timings::Stage], json: bool) {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let total: std::time::Duration = stages.iter().map(|s| s.time).sum();
    if json {
        let mut doc = Map::new();
        for s in stages {
            doc.insert(s.name.to_string(), json!(ms(s.time)));
        }
        doc.insert("total".to_string(), json!(ms(total)));
        outln!(
            "{}",
            serde_json::to_string_pretty(&Json::Object(doc)).unwrap_or_default()
        );
    } else {
        outln!("{:22} {:>9}", "stage", "ms");
        for s in stages {
            outln!("{:22} {:>9.3}", s.name, ms(s.time));
        }
        outln!("{:22} {:>9.3}", "total", ms(total));
    }
}

fn print_results(roles: &[crate::ir::Output], outs: &[Tensor], json: bool) {
    let outs: Vec<(&crate::ir::Output, &Tensor)> = roles.iter().zip(outs).collect();
    if json {
        let mut metrics = Map::new();
        let mut outputs = Map::new();
        let mut loss = Json::Null;
        for (o, t) in outs {
            match o.role {
                Role::Loss => loss = tensor_json(t),
                Role::Metric => {
                    metrics.insert(o.name.clone(), tensor_json(t));
                }
                Role::Output => {
                    outputs.insert(o.name.clone(), tensor_json(t));
                }
                Role::Grad(_) => {}
            }
        }
        let doc = json!({ "loss": loss, "metrics": metrics, "outputs": outputs });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for (o, t) in outs {
            match o.role {
                Role::Loss => outln!("loss {t}"),
                Role::Metric => outln!("metric {} = {t}", o.name),
                Role::Output => outln!("output {} = {t}", o.name),
                Role::Grad(_) => {}
            }
        }
    }
}

/// A tensor as JSON: a number, an array, or an array of rows. Non-finite
/// numbers, which JSON cannot hold, become the strings "inf", "-inf", "nan".
pub fn tensor_json(t: &Tensor) -> Json {
    fn num(x: f64) -> Json {
        serde_json::Number::from_f64(x)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(format!("{x}").to_lowercase()))
    }
    fn go(dims: &[usize], data: &[f64]) -> Json {
        match dims.split_first() {
            None => num(data[0]),
            Some((&n, rest)) => {
                let step: usize = rest.iter().product();
                Json::Array(
                    (0..n)
                        .map(|i| go(rest, &data[i * step..(i + 1) * step]))
                        .collect(),
                )
            }
        }
    }
    go(t.shape.dims(), &t.data)
}

/// Reads and compiles a .grad file with the sizes of `--dim`.
fn compile(path: &Path, dims: &crate::types::dims::DimFlags) -> Result<Compiled, Error> {
    driver::load_with_dims(path, dims).map_err(counted)
}

/// The program's gradient program; a failure points into its source.
fn gradient(c: &Compiled) -> Result<crate::ir::Function, Error> {
    c.gradient()
        .map_err(|d| Error::in_source(&c.source, vec![d]))
}

/// Errors in a source end with how many there were, as compilers do.
fn counted(e: Error) -> Error {
    let Some(Location::Span { source, .. }) = e.location() else {
        return e;
    };
    let n = e.reports.len();
    let total = format!(
        "{n} error{} in {}",
        if n == 1 { "" } else { "s" },
        source.name
    );
    e.and(Error::new(total))
}
