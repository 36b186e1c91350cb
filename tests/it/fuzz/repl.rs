//! Mutated REPL scripts, fed input by input (as `gradc repl` reads a piped
//! script) to two sessions, one on the JIT and one on the interpreter: every
//! reply must be the same text. Commands that write files, read other files
//! or train (`:save`, `:load`, `:train`) are left out.

use gradc::eval::Backend;
use gradc::repl::commands::{handle_after, Style};
use gradc::repl::input::{needs_more, starts_new_input};
use gradc::repl::session::{Options, Session};

use super::Counts;

/// The most lines of a script that are run.
const MAX_LINES: usize = 80;

/// Whether a line may be fed: not a command that touches files or trains.
fn allowed(line: &str) -> bool {
    let Some(rest) = line.trim_start().strip_prefix(':') else {
        return true;
    };
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    !matches!(&rest[..end], "save" | "load" | "train")
}

/// Runs the script on both sessions; `Err` names the first input whose
/// replies differ.
pub fn check_script(bytes: &[u8], counts: &mut Counts) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| allowed(l))
        .take(MAX_LINES)
        .collect();
    let session = |backend| {
        Session::new(Options {
            backend,
            ..Options::default()
        })
    };
    let mut sessions = [session(Backend::Jit), session(Backend::Interp)];
    let mut pending = String::new();
    let (mut start, mut read) = (0, 0);
    let mut handle = |pending: &str, start: usize| -> Result<bool, String> {
        let [jit, interp] = &mut sessions;
        let a = handle_after(jit, pending, start, Style::default());
        let b = handle_after(interp, pending, start, Style::default());
        if a != b {
            return Err(format!(
                "the input {pending:?} (line {}):\nJIT: {a:?}\ninterpreter: {b:?}",
                start + 1
            ));
        }
        if a.failed {
            counts.diagnostics += 1;
        } else {
            counts.compiled += 1;
        }
        Ok(a.quit)
    };
    for line in lines {
        if !pending.is_empty() && starts_new_input(&pending, line) {
            if handle(&pending, start)? {
                return Ok(());
            }
            pending.clear();
        }
        if pending.is_empty() {
            start = read;
        }
        read += 1;
        pending.push_str(line);
        pending.push('\n');
        if needs_more(&pending) {
            continue;
        }
        if handle(&pending, start)? {
            return Ok(());
        }
        pending.clear();
    }
    if !pending.trim().is_empty() {
        handle(&pending, start)?;
    }
    Ok(())
}
