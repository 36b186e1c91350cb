//! The command line: argument parsing, reading files, and all printing.
//! Only this module (and the REPL) writes to the terminal.

mod inputs;
mod train;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Map, Value as Json};

use crate::autodiff::{self, check};
use crate::diagnostic::{io_reason, render_all};
use crate::eval::{Backend, Evaluator};
use crate::ir::stats::stats;
use crate::ir::Role;
use crate::shape::Tensor;
use crate::span::{LineIndex, Span};
use crate::Compiled;

pub use inputs::parse_inputs;

/// gradc: a compiler for losses and models.
///
/// A .grad file declares parameters, the inputs of one example, a model and a
/// per-example loss. gradc checks its shapes, lowers it to an SSA IR and
/// evaluates it.
#[derive(Parser, Debug)]
#[command(name = "gradc", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
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
        #[command(flatten)]
        point: Point,
        /// Print JSON instead of text (with --values, --hessian or --stats).
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
    /// Evaluate the loss, metrics and outputs at the initial parameters (or
    /// --weights); with --data, the mean loss and metrics over a data set.
    Eval {
        /// The .grad file.
        file: PathBuf,
        #[command(flatten)]
        point: Point,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Evaluate with these parameters (a safetensors file written by
        /// `gradc train --save`) instead of the initial ones.
        #[arg(long, value_name = "FILE")]
        weights: Option<PathBuf>,
        /// Print the loss and metrics over the examples of a CSV file (the
        /// mean over its rows), read with the train block's column mapping;
        /// without a file name, over the train block's data.
        #[arg(long, value_name = "CSV", num_args = 0..=1)]
        data: Option<Option<PathBuf>>,
    },
    /// Train the parameters as the train block says; the options override it.
    /// Prints progress, then a summary.
    Train(train::TrainArgs),
    /// Print the `output`s of a trained model for every example of a data
    /// set, as CSV.
    Predict(train::PredictArgs),
    /// An interactive session: define, evaluate, differentiate, inspect,
    /// load files, train. `:help` inside lists the commands.
    Repl(crate::repl::ReplArgs),
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

/// A failure already explained to the user; the process exits with 1.
pub struct Reported;

/// Parses the arguments, runs the command, and gives the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Reported) => ExitCode::FAILURE,
    }
}

pub fn run(cli: Cli) -> Result<(), Reported> {
    match cli.command {
        Command::Ir { file, emit } => {
            let src = read(&file)?;
            let text = match emit {
                Emit::Ast => {
                    let ast = crate::parse(&src).map_err(|d| report(&file, &src, &d))?;
                    crate::syntax::printer::print(&ast)
                }
                Emit::RawIr => compile(&file, &src)?.raw.to_string(),
                Emit::Ir => compile(&file, &src)?.ir.to_string(),
            };
            out!("{text}");
            Ok(())
        }
        Command::Clif { file } => {
            let src = read(&file)?;
            let c = compile(&file, &src)?;
            let g = c.gradient().map_err(|d| report(&file, &src, &[d]))?;
            for (name, f) in [("forward", &c.ir), ("gradient", &g)] {
                let text = crate::backend::clif_text(f).map_err(fail)?;
                outln!("; {name}\n{text}");
            }
            Ok(())
        }
        Command::Grad {
            file,
            values,
            hessian,
            stats,
            point,
            json,
        } => {
            let src = read(&file)?;
            let c = compile(&file, &src)?;
            let g = c.gradient().map_err(|d| report(&file, &src, &[d]))?;
            if values {
                let (params, inputs) = at_point(&c, &point, Missing::Zeros)?;
                let g = Evaluator::new(&g, point.backend).map_err(fail)?;
                let (loss, grads) = check::gradients_with(&g, &params, &inputs)
                    .map_err(|e| fail(format!("evaluation failed: {e}")))?;
                print_gradients(&c, loss, &grads, json);
            } else if hessian {
                let (params, inputs) = at_point(&c, &point, Missing::Zeros)?;
                let n: usize = params.iter().map(|p| p.data.len()).sum();
                if n > MAX_HESSIAN {
                    return Err(fail(format!(
                        "the Hessian of {n} parameter elements is too large to print (at most {MAX_HESSIAN})"
                    )));
                }
                let h = autodiff::hessian_with(&c.ir, &params, &inputs, point.backend)
                    .map_err(|e| fail(format!("evaluation failed: {e}")))?;
                print_hessian(&h, json);
            } else if stats {
                print_stats(&c.ir, &g, json);
            } else {
                let lines = LineIndex::new(&src);
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
            let src = read(&file)?;
            let c = compile(&file, &src)?;
            let g = c.gradient().map_err(|d| report(&file, &src, &[d]))?;
            let (params, inputs) = at_point(&c, &point, Missing::Random)?;
            let f = Evaluator::new(&c.ir, point.backend).map_err(fail)?;
            let g = Evaluator::new(&g, point.backend).map_err(fail)?;
            gradient_check(&c, &f, &g, params, &inputs, tol, perturbations)
        }
        Command::Eval {
            file,
            point,
            json,
            weights,
            data,
        } => {
            let src = read(&file)?;
            let c = compile(&file, &src)?;
            if weights.is_some() || data.is_some() {
                let (w, d) = (weights.as_deref(), data.as_ref().map(Option::as_deref));
                return train::eval(&file, &src, &c, &point, w, d, json);
            }
            let (params, inputs) = at_point(&c, &point, Missing::Zeros)?;
            let f = Evaluator::new(&c.ir, point.backend).map_err(fail)?;
            let outs = f
                .outputs(&params, &inputs)
                .map_err(|e| fail(format!("evaluation failed: {e}")))?;
            print_results(&c.ir.outputs, &outs, json);
            Ok(())
        }
        Command::Repl(args) => crate::repl::run(args),
        Command::Train(args) => train::train(args),
        Command::Predict(args) => train::predict(args),
    }
}

/// Hessians with more rows than this are refused: one program per row.
const MAX_HESSIAN: usize = 400;

/// What inputs not given on the command line become.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Missing {
    Zeros,
    /// Seeded random values, when no input at all is given: a gradient check
    /// at zeros would sit on the kinks of relu and abs.
    Random,
}

/// The initial parameters and the inputs a command evaluates at.
fn at_point(
    c: &Compiled,
    point: &Point,
    missing: Missing,
) -> Result<(Vec<Tensor>, Vec<Tensor>), Reported> {
    let (mut inputs, defaulted) = parse_inputs(&c.typed.inputs, &point.inputs).map_err(fail)?;
    if !defaulted.is_empty() {
        let random = missing == Missing::Random && point.inputs.is_empty();
        if random {
            use rand::SeedableRng;
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0x5eed);
            inputs = check::random_inputs(&c.ir, &mut rng);
        }
        eprintln!(
            "note: input{} {} not given: using {}",
            if defaulted.len() == 1 { "" } else { "s" },
            defaulted.join(", "),
            if random {
                "seeded random values"
            } else {
                "zeros"
            }
        );
    }
    let params = c.initial_params(point.seed.unwrap_or_else(|| c.seed()));
    Ok((params, inputs))
}

fn gradient_check(
    c: &Compiled,
    f: &Evaluator,
    g: &Evaluator,
    params: Vec<Tensor>,
    inputs: &[Tensor],
    tol: f64,
    perturbations: usize,
) -> Result<(), Reported> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0x9e37);
    let mut worst: Vec<f64> = vec![0.0; params.len()];
    for round in 0..=perturbations {
        let mut point = params.clone();
        if round > 0 {
            for t in &mut point {
                for x in &mut t.data {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    *x += 0.1 * z * x.abs().max(1.0);
                }
            }
        }
        let results = check::check_with(f, g, &point, inputs)
            .map_err(|e| fail(format!("evaluation failed: {e}")))?;
        for (w, r) in worst.iter_mut().zip(&results) {
            if r.max_rel_error > *w || r.max_rel_error.is_nan() {
                *w = r.max_rel_error;
            }
        }
    }
    let width = c
        .typed
        .params
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    outln!("{:width$}  {:>14}", "param", "max rel error");
    let mut ok = true;
    for (p, w) in c.typed.params.iter().zip(&worst) {
        let pass = *w <= tol;
        ok &= pass;
        outln!(
            "{:width$}  {:>14.3e}  {}",
            p.name,
            w,
            if pass { "ok" } else { "FAIL" }
        );
    }
    let points = perturbations + 1;
    if ok {
        outln!("gradients agree with central differences at {points} points (tolerance {tol:e})");
        Ok(())
    } else {
        Err(fail(format!(
            "gradients differ from central differences by more than {tol:e}"
        )))
    }
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
            "gradient": { "ops": b.ops, "flops": b.flops },
            "flop_ratio": ratio,
        });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        outln!("{:9} {:>6} {:>10}", "program", "ops", "flops");
        outln!("{:9} {:>6} {:>10}", "forward", a.ops, a.flops);
        outln!("{:9} {:>6} {:>10}", "gradient", b.ops, b.flops);
        outln!("gradient / forward flops: {ratio:.2}");
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

fn read(path: &Path) -> Result<String, Reported> {
    let bytes = std::fs::read(path).map_err(|e| {
        fail(format!(
            "cannot read `{}`: {}",
            path.display(),
            io_reason(&e)
        ))
    })?;
    match crate::source_text(&bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(d) => {
            let shown = crate::printable_text(&bytes);
            Err(report(path, &shown, &[d]))
        }
    }
}

fn compile(path: &Path, src: &str) -> Result<Compiled, Reported> {
    crate::compile(src).map_err(|d| report(path, src, &d))
}

fn report(path: &Path, src: &str, diags: &[crate::diagnostic::Diagnostic]) -> Reported {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    eprint!(
        "{}",
        render_all(diags, &path.display().to_string(), src, color)
    );
    let n = diags.len();
    eprintln!(
        "error: {} error{} in {}",
        n,
        if n == 1 { "" } else { "s" },
        path.display()
    );
    Reported
}

fn fail(msg: impl std::fmt::Display) -> Reported {
    eprintln!("error: {msg}");
    Reported
}
