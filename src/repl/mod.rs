//! `gradc repl`: an interactive session over the same compiler. Define params,
//! inputs, lets and fns one at a time, evaluate expressions, and look at
//! gradients, Hessians, the IR and the machine code as the session grows.
//!
//! - [`source`]: the definitions, assembled into one program, and the map
//!   from that program back to the text each definition came from.
//! - [`session`]: the definitions and the current values; every operation
//!   (`sizes`: the session's `dim`s and `:dim`).
//! - [`commands`]: one input (a definition, an expression or a `:command`)
//!   to the text to print.
//! - [`input`]: when a line continues, completion, and the history file.
//! - [`train`]: `:train`, through the training runtime.
//!
//! This module runs the loop and prints: on a terminal with rustyline
//! (history, multi-line input, completion); when stdin is piped, line by
//! line without prompts or colours, so that scripts can drive it.

pub mod analysis;
pub mod commands;
pub mod error;
pub mod input;
pub mod session;
mod sizes;
pub mod source;
pub mod train;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};

use crate::eval::Backend;
use commands::{handle, handle_after, Reply, Style};
use input::{history_path, needs_more, starts_new_input, ReplHelper};
use session::{Options, Session};

/// The arguments of `gradc repl`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplArgs {
    /// .grad files to load first, as with `:load`.
    pub files: Vec<PathBuf>,
    /// What evaluates expressions and gradients: the Cranelift JIT, or the
    /// reference interpreter.
    #[arg(long, value_enum, default_value_t = Backend::Jit)]
    pub backend: Backend,
    /// Seed for random initialisers (default: the train block's seed, or 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print every input line before its result (`> ` before the first line
    /// of an input, `. ` before the lines continuing it): transcripts of
    /// piped sessions.
    #[arg(long)]
    pub echo: bool,
}

/// Runs the REPL until `:quit`, Ctrl-D or the end of the input. The exit
/// code is 1 when input was piped and any input failed.
/// `dims`: the sizes of `--dim`, for the `dim`s the session declares.
pub fn run(args: ReplArgs, dims: crate::types::dims::DimFlags) -> ExitCode {
    let mut session = Session::new(Options {
        backend: args.backend,
        seed: args.seed,
        dims,
    });
    let piped = !std::io::stdin().is_terminal();
    let style = Style {
        color: !piped && std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        interactive: !piped,
    };
    let mut failed = false;
    for file in &args.files {
        let line = format!(":load {}", file.display());
        if args.echo {
            echo_line(&format!("> {line}"));
        }
        let reply = handle(&mut session, &line, style);
        failed |= reply.failed;
        emit(&reply);
    }
    if piped {
        failed |= piped_loop(&mut session, args.echo);
        return if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    match Editor::<ReplHelper, DefaultHistory>::with_config(
        Config::builder()
            .completion_type(CompletionType::List)
            .auto_add_history(false)
            .build(),
    ) {
        Ok(editor) => interactive(&mut session, editor, style),
        // No usable terminal after all: read plainly.
        Err(_) => {
            piped_loop(&mut session, args.echo);
        }
    }
    ExitCode::SUCCESS
}

/// Prints one echoed input line; a closed stdout is not an error here.
fn echo_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints a reply: the result on stdout, the errors on stderr.
fn emit(reply: &Reply) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(reply.out.as_bytes());
    let _ = out.flush();
    drop(out);
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(reply.err.as_bytes());
    let _ = err.flush();
}

/// Reads stdin line by line; an unfinished input takes the following lines
/// until it is complete, the input ends, or a line that cannot continue it
/// comes ([`input::starts_new_input`]: a definition or a `:command`): then
/// the unfinished input is handled as it is (and fails with its error), and
/// that line starts the next input. Errors name the script's lines. Gives
/// whether any input failed.
fn piped_loop(session: &mut Session, echo: bool) -> bool {
    let mut stdin = std::io::stdin().lock();
    let mut pending = String::new();
    // The number of script lines before `pending`'s first line.
    let mut start = 0;
    let mut read = 0;
    let mut failed = false;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match stdin.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        if !pending.is_empty() && starts_new_input(&pending, line) {
            let reply = handle_after(session, &pending, start, Style::default());
            pending.clear();
            failed |= reply.failed;
            emit(&reply);
            if reply.quit {
                return failed;
            }
        }
        if pending.is_empty() {
            start = read;
        }
        read += 1;
        if echo {
            let mark = if pending.is_empty() { ">" } else { "." };
            if line.is_empty() {
                echo_line(mark);
            } else {
                echo_line(&format!("{mark} {line}"));
            }
        }
        pending.push_str(line);
        pending.push('\n');
        if needs_more(&pending) {
            continue;
        }
        let reply = handle_after(session, &pending, start, Style::default());
        pending.clear();
        failed |= reply.failed;
        emit(&reply);
        if reply.quit {
            return failed;
        }
    }
    if !pending.trim().is_empty() {
        let reply = handle_after(session, &pending, start, Style::default());
        failed |= reply.failed;
        emit(&reply);
    }
    failed
}

/// The terminal loop: rustyline with history, multi-line input and completion.
fn interactive(
    session: &mut Session,
    mut editor: Editor<ReplHelper, DefaultHistory>,
    style: Style,
) {
    editor.set_helper(Some(ReplHelper::new()));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    outln!(
        "gradc {} (backend: {}); `:help` lists the commands, Ctrl-D leaves",
        env!("CARGO_PKG_VERSION"),
        match session.backend() {
            Backend::Jit => "jit",
            Backend::Interp => "interp",
        }
    );
    loop {
        if let Some(h) = editor.helper_mut() {
            h.set_names(session.names());
        }
        match editor.readline("gradc> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                let reply = handle(session, &line, style);
                emit(&reply);
                if reply.quit {
                    break;
                }
            }
            // Ctrl-C: the line is dropped; the session goes on.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: reading the line failed: {e}");
                break;
            }
        }
    }
    // History is a convenience: failing to save it is not worth a message.
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
}

#[cfg(test)]
mod tests;
