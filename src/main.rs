//! The `gradc` binary: parses the command line, runs a batch command
//! ([`gradc::cli`]) or the REPL ([`gradc::repl`]), and renders a failure
//! with the one renderer ([`gradc::diagnostic::Error::render`]), exiting
//! with 1.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: see [`gradc::Allocator`].
#[global_allocator]
static ALLOCATOR: gradc::Allocator = gradc::Allocator;

/// gradc: a compiler for losses and models.
///
/// A .grad file declares parameters, the inputs of one example, a model and a
/// per-example loss. gradc checks its shapes, lowers it to an SSA IR and
/// evaluates it.
#[derive(Parser, Debug)]
#[command(name = "gradc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    dims: gradc::cli::DimArgs,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per run
enum Command {
    #[command(flatten)]
    Batch(gradc::cli::Command),
    /// An interactive session: define, evaluate, differentiate, inspect,
    /// load files, train. `:help` inside lists the commands.
    Repl(gradc::repl::ReplArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Repl(args) => gradc::repl::run(args, cli.dims.flags()),
        Command::Batch(command) => match gradc::cli::run(command, &cli.dims) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let color =
                    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                eprint!("{}", e.render(color));
                ExitCode::FAILURE
            }
        },
    }
}
