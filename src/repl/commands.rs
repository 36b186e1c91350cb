//! One complete input: a definition, an expression or a `:command`, handled
//! against the session, with the text to print as the result.

use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;

use crate::driver::{CheckReport, Hessian};
use crate::repl::analysis::GradReport;
use crate::repl::session::{Defined, Error, Session};
use crate::repl::source::{Kind, Origin};
use crate::shape::{fmt_num, fmt_value, Tensor};
use crate::syntax::lexer::Token;

/// Every command, for `:help` and completion.
pub const COMMANDS: &[&str] = &[
    ":grad", ":hessian", ":check", ":ir", ":clif", ":set", ":dim", ":params", ":inputs", ":load",
    ":train", ":forget", ":source", ":save", ":reset", ":help", ":quit",
];

/// The commands whose argument is an expression (it may span lines).
pub const EXPR_COMMANDS: &[&str] = &["grad", "hessian", "check", "ir", "clif", "set"];

pub const HELP: &str = "\
Definitions are written as in a .grad file; one with the name of an earlier
definition replaces it (and everything using it must still check):
  param w: [2] = normal(0, 0.1)    input x: [2]      let z = dot(w, x) + 1
  dim D = 4 (a size: input x: [D], ranges 0..D, x / D; set it with :dim D=8)
  fn f(a, b) = a * b + 1           loss (z - 1)^2    metric m = ...   output p = ...
  train { optimizer = sgd(lr = 0.1)  steps = 10 }
An expression prints its value and its shape:  [1, 2] * 0.5  ->  [0.5, 1] : [2]
A line with an open bracket or brace, an `if` without its `else`, or a trailing
operator continues on the next line.

Commands:
  :grad [EXPR]        the gradient program of EXPR (a scalar; default the loss)
                      with respect to the params, and its value here
  :hessian [EXPR]     its Hessian over every param element (small functions)
  :check [EXPR]       reverse mode against central differences, here and at
                      3 random perturbations of the params (as `gradc check`)
  :ir [EXPR]          the IR of EXPR, or of the whole session
  :clif [EXPR]        the Cranelift IR of EXPR, or of the whole session
  :set NAME = VALUE   a param's or an input's value: an expression (a scalar
                      fills the shape) or numbers, rows separated by `;`: 1, 2; 3, 4
  :dim D=8            sets sizes (`dim D`; several: `:dim D=8,H=4`), over their
                      defaults and the data, as --dim; the definitions are
                      checked again. Without an argument: the sizes now
  :params             the params' current values
  :inputs             the inputs' current values
  :load FILE          a .grad file's definitions join the session
  :train              runs the session's train block; params keep the result
  :forget NAME        removes a definition (also `loss`, `train`, `metric NAME`,
                      `output NAME`)
  :source             the session as a .grad program
  :save FILE          writes that program to FILE; FILE.safetensors: the
                      params' current values instead (as `gradc train --save`)
  :reset              forgets everything
  :help               this text
  :quit               leaves (so does Ctrl-D); Ctrl-C cancels the line

Values: params start at their initialisers' values (seeded by --seed, else the
train block's seed, else 0) and keep their values until they are redefined,
set or trained; inputs start at zeros. \"Here\" is these values.
Piped input is read line by line, without prompts or colours; the exit code is
1 if any input failed.
";

/// How results are shown.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// Colours in diagnostics.
    pub color: bool,
    /// On a terminal: a progress bar while training, Ctrl-C stops it.
    pub interactive: bool,
}

/// What handling an input gives: text for stdout and for stderr.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reply {
    pub out: String,
    pub err: String,
    /// The input failed (the session is unchanged).
    pub failed: bool,
    pub quit: bool,
}

impl Reply {
    fn out(text: impl Into<String>) -> Reply {
        let mut out = text.into();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        Reply {
            out,
            ..Reply::default()
        }
    }

    fn error(e: Error, color: bool) -> Reply {
        Reply {
            err: e.render(color),
            failed: true,
            ..Reply::default()
        }
    }
}

/// Handles one complete input.
pub fn handle(session: &mut Session, input: &str, style: Style) -> Reply {
    handle_after(session, input, 0, style)
}

/// Handles one complete input of a piped script that starts after
/// `lines_before` lines of it: errors name the script's lines.
pub fn handle_after(
    session: &mut Session,
    input: &str,
    lines_before: usize,
    style: Style,
) -> Reply {
    let color = style.color;
    let trimmed = input.trim_start();
    let base = input.len() - trimmed.len();
    if trimmed.trim_end().is_empty() || is_comment(trimmed) {
        return Reply::default();
    }
    if trimmed.starts_with(':') {
        return command(session, input, base, lines_before, style);
    }
    let result = if starts_with_keyword(trimmed) {
        session
            .define(Origin::typed_after(input, lines_before), 0)
            .map(|ds| defined_lines(&ds))
    } else {
        session
            .eval(Origin::typed_after(input, lines_before), base)
            .map(|t| fmt_value(&t))
    };
    match result {
        Ok(text) => Reply::out(text),
        Err(e) => Reply::error(e, color),
    }
}

/// Whether the text holds no token at all (only spaces and comments).
fn is_comment(text: &str) -> bool {
    use logos::Logos;
    Token::lexer(text).next().is_none()
}

/// Whether the input starts with an item keyword: a definition.
fn starts_with_keyword(text: &str) -> bool {
    use logos::Logos;
    matches!(
        Token::lexer(text).next(),
        Some(Ok(Token::Param
            | Token::Input
            | Token::Dim
            | Token::Let
            | Token::Fn
            | Token::Loss
            | Token::Metric
            | Token::Output
            | Token::Residual
            | Token::Train))
    )
}

fn command(
    session: &mut Session,
    input: &str,
    base: usize,
    lines_before: usize,
    style: Style,
) -> Reply {
    let color = style.color;
    let rest = &input[base + 1..];
    let word_len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let word = &rest[..word_len];
    let arg_start = base + 1 + word_len;
    let arg = input[arg_start..].trim();
    let arg_base = (!arg.is_empty()).then(|| input.len() - input[arg_start..].trim_start().len());
    let origin = Origin::typed_after(input, lines_before);
    let takes_none = [
        "help", "h", "?", "params", "inputs", "train", "source", "reset",
    ];
    if takes_none.contains(&word) && !arg.is_empty() {
        return Reply::error(usage(&format!(":{word} (without an argument)")), color);
    }
    let result: Result<String, Error> = match word {
        "help" | "h" | "?" => Ok(HELP.to_string()),
        "quit" | "q" | "exit" => {
            return Reply {
                quit: true,
                ..Reply::default()
            }
        }
        "grad" => session.grad(origin, arg_base).map(|r| grad_text(&r)),
        "hessian" => session.hessian(origin, arg_base).map(|h| hessian_text(&h)),
        "check" => match session.check(origin, arg_base) {
            Ok(results) => return check_reply(&results),
            Err(e) => Err(e),
        },
        "ir" => session.ir(origin, arg_base).map(|f| f.to_string()),
        "clif" => session.clif(origin, arg_base),
        "set" => set(session, origin, input, arg_start),
        "dim" => dim(session, arg),
        "params" => Ok(values_text("param", &session.params())),
        "inputs" => Ok(values_text("input", &session.inputs())),
        "load" => match arg {
            "" => Err(usage(":load FILE")),
            path => session
                .load(Path::new(path))
                .map(|ds| loaded_text(path, &ds)),
        },
        "train" => crate::repl::train::train(session, style),
        "forget" => match arg {
            "" => Err(usage(":forget NAME")),
            name => session
                .forget(name)
                .map(|k| format!("forgot `{}`", k.describe())),
        },
        "source" => {
            let src = session.source();
            Ok(if src.is_empty() {
                "(no definitions)".to_string()
            } else {
                src
            })
        }
        "save" => match arg {
            "" => Err(usage(":save FILE")),
            path if path.ends_with(".safetensors") => {
                crate::repl::train::save_params(session, Path::new(path))
            }
            path => save(session, Path::new(path)),
        },
        "reset" => {
            session.reset();
            Ok("session reset".to_string())
        }
        other => {
            let mut m = format!("unknown command `:{other}`");
            let names = COMMANDS.iter().map(|c| &c[1..]);
            if let Some(close) = crate::diagnostic::closest(other, names) {
                let _ = write!(m, " (did you mean `:{close}`?)");
            }
            m.push_str("; `:help` lists the commands");
            Err(Error::new(m))
        }
    };
    match result {
        Ok(text) => Reply::out(text),
        Err(e) => Reply::error(e, color),
    }
}

fn usage(u: &str) -> Error {
    Error::new(format!("usage: {u}"))
}

/// `:set NAME = VALUE`.
fn set(
    session: &mut Session,
    origin: Rc<Origin>,
    input: &str,
    start: usize,
) -> Result<String, Error> {
    let rest = &input[start..];
    let Some((name, _)) = rest.split_once('=') else {
        return Err(usage(":set NAME = VALUE"));
    };
    let name = name.trim();
    let value_start = start + rest.find('=').unwrap_or(0) + 1;
    let value = input[value_start..].trim();
    if name.is_empty() || value.is_empty() {
        return Err(usage(":set NAME = VALUE"));
    }
    let value_base = input.len() - input[value_start..].trim_start().len();
    let t = session.set(name, origin, value_base)?;
    Ok(format!("{name} = {}", fmt_value(&t)))
}

/// `:dim D=8[,H=4]`, or `:dim` for the sizes now.
fn dim(session: &mut Session, arg: &str) -> Result<String, Error> {
    let sizes = if arg.is_empty() {
        session.sizes()
    } else {
        let flags = crate::driver::parse_dims(arg).map_err(Error::new)?;
        session.set_dims(&flags)?
    };
    let mut lines: Vec<String> = sizes
        .iter()
        .map(|(n, v)| format!("dim {n} = {v}"))
        .collect();
    let unused: Vec<String> = session
        .dim_flags()
        .iter()
        .filter(|(n, _)| !sizes.iter().any(|(m, _)| m == n))
        .map(|(n, v)| format!("{n} = {v}"))
        .collect();
    if !unused.is_empty() {
        lines.push(format!(
            "(set, for a `dim` not declared yet: {})",
            unused.join(", ")
        ));
    }
    Ok(if lines.is_empty() {
        "(no sizes)".to_string()
    } else {
        lines.join("\n")
    })
}

fn save(session: &Session, path: &Path) -> Result<String, Error> {
    let src = session.source();
    std::fs::write(path, &src).map_err(|e| {
        Error::new(format!(
            "cannot write `{}`: {}",
            path.display(),
            crate::diagnostic::io_reason(&e)
        ))
    })?;
    let mut out = format!("saved the session's source to {}", path.display());
    // Data paths in a train block are relative to the file that holds it.
    let canonical = |p: &Path| {
        std::fs::canonicalize(if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        })
        .ok()
    };
    if let Some(dir) = session.train_dir().filter(|_| session.train_reads_data()) {
        let target = path.parent().unwrap_or(Path::new(""));
        if canonical(&dir) != canonical(target) {
            let _ = write!(
                out,
                "\nnote: the train block was loaded from `{}`; a data path in it is relative to that directory",
                if dir.as_os_str().is_empty() { Path::new(".") } else { &dir }.display()
            );
        }
    }
    Ok(out)
}

/// One line per definition: what it is and its value.
fn defined_lines(ds: &[Defined]) -> String {
    let mut out = String::new();
    for d in ds {
        let head = match d.kind {
            Kind::Loss => "loss".to_string(),
            Kind::Train => "train { ... }".to_string(),
            k => format!("{} {}", k.keyword(), d.head),
        };
        let value = match &d.value {
            Some(Ok(t)) => format!(" = {}", fmt_value(t)),
            Some(Err(e)) => format!(" = ? ({e})"),
            None => String::new(),
        };
        let again = if d.replaced { "  (redefined)" } else { "" };
        let _ = writeln!(out, "{head}{value}{again}");
    }
    out
}

fn loaded_text(path: &str, ds: &[Defined]) -> String {
    let items: Vec<String> = ds
        .iter()
        .map(|d| {
            let name = match d.kind {
                Kind::Loss | Kind::Train => d.kind.keyword().to_string(),
                Kind::Fn => format!("fn {}", d.head),
                k => format!("{} {}", k.keyword(), d.head),
            };
            if d.replaced {
                format!("{name} (redefined)")
            } else {
                name
            }
        })
        .collect();
    if items.is_empty() {
        format!("loaded {path}: no definitions")
    } else {
        format!("loaded {path}: {}", items.join(", "))
    }
}

fn values_text(kind: &str, values: &[(String, Tensor)]) -> String {
    if values.is_empty() {
        return format!("no {kind}s");
    }
    values
        .iter()
        .map(|(n, t)| format!("{kind} {n} = {}\n", fmt_value(t)))
        .collect()
}

fn grad_text(r: &GradReport) -> String {
    let mut out = r.program.clone();
    let _ = writeln!(out, "value = {}", fmt_num(r.value));
    if r.grads.is_empty() {
        out.push_str("(no params: nothing to differentiate with respect to)\n");
    }
    for (name, g) in &r.grads {
        let _ = writeln!(out, "grad {name} = {}", fmt_value(g));
    }
    out
}

fn hessian_text(h: &Hessian) -> String {
    let width = h.labels.iter().map(|l| l.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, row) in h.labels.iter().zip(&h.rows) {
        let cells: Vec<String> = row.iter().map(|&x| fmt_num(x)).collect();
        let _ = writeln!(out, "{label:width$}  [{}]", cells.join(", "));
    }
    out
}

fn check_reply(report: &CheckReport) -> Reply {
    match report.failure() {
        None => Reply::out(report.to_string()),
        Some(e) => Reply {
            out: report.to_string(),
            err: e.render(false),
            failed: true,
            quit: false,
        },
    }
}
