//! Errors of the session, placed in the text the user wrote, and the
//! compilation of an assembled session that produces them.

use std::rc::Rc;

use crate::diagnostic::Diagnostic;
use crate::repl::source::{Assembled, Key, Origin};
use crate::span::Span;
use crate::types::CheckOptions;
use crate::Compiled;

/// Why an operation failed; the session is unchanged.
#[derive(Debug)]
pub enum Error {
    /// Diagnostics, each placed in the text it points into.
    Diagnostics(Vec<Located>),
    /// A failure that is not about a place in the source.
    Message(String),
}

/// A diagnostic in the coordinates of the text the user wrote.
#[derive(Debug)]
pub struct Located {
    pub diagnostic: Diagnostic,
    pub origin: Rc<Origin>,
    /// Said after the diagnostic: which earlier definition it is about.
    pub note: Option<String>,
}

impl Error {
    pub(super) fn message(m: impl Into<String>) -> Error {
        Error::Message(m.into())
    }

    /// Diagnostics whose spans are relative to `origin.text[base..]`.
    pub(super) fn at(diags: Vec<Diagnostic>, origin: &Rc<Origin>, base: usize) -> Error {
        let shift = |s: Span| Span::new(s.lo as usize + base, s.hi as usize + base);
        Error::Diagnostics(
            diags
                .into_iter()
                .map(|mut d| {
                    // Typed input has no file to end.
                    if origin.name == "<repl>" && d.message == "unexpected end of file" {
                        d.message = "unexpected end of input".to_string();
                    }
                    d.span = shift(d.span);
                    for l in &mut d.labels {
                        l.span = shift(l.span);
                    }
                    Located {
                        diagnostic: d,
                        origin: origin.clone(),
                        note: None,
                    }
                })
                .collect(),
        )
    }
}

impl From<crate::diagnostic::Error> for Error {
    fn from(e: crate::diagnostic::Error) -> Error {
        Error::Message(e.to_string())
    }
}

const NO_LOSS: CheckOptions = CheckOptions {
    require_loss: false,
};

/// Checks and compiles an assembled program; errors are placed in the text
/// they point into, and `note` says which definition when it is not in the
/// current input.
pub(super) fn compile(
    assembled: &Assembled,
    current: &Rc<Origin>,
    note: impl Fn(&Key) -> String,
) -> Result<Compiled, Error> {
    crate::compile_with(&assembled.src, &NO_LOSS).map_err(|d| locate(assembled, d, current, note))
}

/// Diagnostics on an assembled program, each moved into the text it points
/// into; `note` names the definition when that is not the current input.
pub(super) fn locate(
    assembled: &Assembled,
    diags: Vec<Diagnostic>,
    current: &Rc<Origin>,
    note: impl Fn(&Key) -> String,
) -> Error {
    let located = diags
        .iter()
        .map(|d| match assembled.locate(d) {
            Some((diagnostic, origin, key)) => {
                let note = key
                    .filter(|_| !Rc::ptr_eq(&origin, current))
                    .map(|k| note(&k))
                    .filter(|n| !n.is_empty());
                Located {
                    diagnostic,
                    origin,
                    note,
                }
            }
            None => Located {
                diagnostic: Diagnostic::error(Span::default(), d.message.clone()),
                origin: current.clone(),
                note: None,
            },
        })
        .collect();
    Error::Diagnostics(located)
}
