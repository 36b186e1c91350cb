//! The command line: argument parsing, reading files, and all printing.
//! Only this module (and the REPL) writes to the terminal.

mod inputs;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Map, Value as Json};

use crate::diagnostic::render_all;
use crate::ir::{interp, Role};
use crate::shape::Tensor;
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

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the IR of a .grad file (optimised by default).
    Ir {
        /// The .grad file.
        file: PathBuf,
        /// Which stage to print.
        #[arg(long, value_enum, default_value_t = Emit::Ir)]
        emit: Emit,
    },
    /// Evaluate the loss, metrics and outputs at the initial parameters.
    Eval {
        /// The .grad file.
        file: PathBuf,
        /// The value of an input, as NAME=VALUES: `x=1,2,3`; matrix rows are
        /// separated by `;` (`X=1,2;3,4`). Repeat for each input.
        #[arg(long = "input", short = 'i', value_name = "NAME=VALUES")]
        inputs: Vec<String>,
        /// Seed for random initialisers (default: the train block's seed, or 0).
        #[arg(long)]
        seed: Option<u64>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
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
            print!("{text}");
            Ok(())
        }
        Command::Eval {
            file,
            inputs,
            seed,
            json,
        } => {
            let src = read(&file)?;
            let c = compile(&file, &src)?;
            let inputs = parse_inputs(&c.typed.inputs, &inputs).map_err(fail)?;
            let params = c.initial_params(seed.unwrap_or_else(|| c.seed()));
            let outs = interp::run_outputs(&c.ir, &params, &inputs)
                .map_err(|e| fail(format!("evaluation failed: {e}")))?;
            print_results(&c, &outs, json);
            Ok(())
        }
    }
}

fn print_results(c: &Compiled, outs: &[(crate::ir::Output, Tensor)], json: bool) {
    let _ = c;
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
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for (o, t) in outs {
            match o.role {
                Role::Loss => println!("loss {t}"),
                Role::Metric => println!("metric {} = {t}", o.name),
                Role::Output => println!("output {} = {t}", o.name),
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
                Json::Array((0..n).map(|i| go(rest, &data[i * step..(i + 1) * step])).collect())
            }
        }
    }
    go(t.shape.dims(), &t.data)
}

fn read(path: &Path) -> Result<String, Reported> {
    let bytes = std::fs::read(path)
        .map_err(|e| fail(format!("cannot read `{}`: {}", path.display(), io_reason(&e))))?;
    match crate::source_text(&bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(d) => {
            let lossy = String::from_utf8_lossy(&bytes);
            Err(report(path, &lossy, &[d]))
        }
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "it is a directory".to_string(),
        _ => e.to_string(),
    }
}

fn compile(path: &Path, src: &str) -> Result<Compiled, Reported> {
    crate::compile(src).map_err(|d| report(path, src, &d))
}

fn report(path: &Path, src: &str, diags: &[crate::diagnostic::Diagnostic]) -> Reported {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    eprint!("{}", render_all(diags, &path.display().to_string(), src, color));
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
