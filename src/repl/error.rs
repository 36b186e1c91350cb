//! Errors of the session, placed in the text the user wrote, and the
//! compilation of an assembled session that produces them. They are
//! [`Error`]s, the one error type, rendered as the CLI renders them.

use std::rc::Rc;
use std::sync::Arc;

pub use crate::diagnostic::Error;
use crate::diagnostic::{Diagnostic, Location, Note, Report, Source};
use crate::repl::source::{Assembled, Key, Origin};
use crate::span::Span;
use crate::types::dims::DimOptions;
use crate::types::CheckOptions;
use crate::Compiled;

/// Diagnostics whose spans are relative to `origin.text()[base..]`.
pub(super) fn at(diags: Vec<Diagnostic>, origin: &Rc<Origin>, base: usize) -> Error {
    let shift = |s: Span| Span::new(s.lo as usize + base, s.hi as usize + base);
    let diags = diags
        .into_iter()
        .map(|mut d| {
            // Typed input has no file to end.
            if origin.name() == "<repl>" && d.message == "unexpected end of file" {
                d.message = "unexpected end of input".to_string();
                if let Some(open) = unclosed(origin.text().get(base..).unwrap_or("")) {
                    d.labels.push(crate::diagnostic::Label {
                        span: open,
                        message: "this bracket is not closed".to_string(),
                    });
                }
            }
            d.span = shift(d.span);
            for l in &mut d.labels {
                l.span = shift(l.span);
            }
            d
        })
        .collect();
    Error::in_source(&origin.source, diags)
}

/// The innermost bracket of `text` left open at its end, if any.
fn unclosed(text: &str) -> Option<Span> {
    use crate::syntax::lexer::Token;
    use logos::Logos;
    let mut open = Vec::new();
    for (tok, range) in Token::lexer(text).spanned() {
        match tok {
            Ok(Token::LParen | Token::LBracket | Token::LBrace) => {
                open.push(Span::new(range.start, range.end))
            }
            Ok(Token::RParen | Token::RBracket | Token::RBrace) => {
                open.pop();
            }
            _ => {}
        }
    }
    open.pop()
}

/// Checks and compiles an assembled program; errors are placed in the text
/// they point into, and `note` says which definition when it is not in the
/// current input.
pub(super) fn compile(
    assembled: &Assembled,
    dims: &DimOptions,
    current: &Rc<Origin>,
    note: impl Fn(&Key) -> String,
) -> Result<Compiled, Error> {
    let opts = CheckOptions {
        require_loss: false,
        dims: dims.clone(),
    };
    crate::compile_with(&assembled.src, &opts).map_err(|d| locate(assembled, d, current, note))
}

/// Diagnostics on an assembled program, each moved into the text it points
/// into; `note` names the definition when that is not the current input.
pub(super) fn locate(
    assembled: &Assembled,
    diags: Vec<Diagnostic>,
    current: &Rc<Origin>,
    note: impl Fn(&Key) -> String,
) -> Error {
    let reports = diags
        .iter()
        .map(|d| match assembled.locate(d) {
            Some((diagnostic, origin, key)) => {
                let mut r = Report::from_diagnostic(&origin.source, diagnostic);
                let said = key
                    .filter(|_| !Rc::ptr_eq(&origin, current))
                    .map(|k| note(&k))
                    .filter(|n| !n.is_empty());
                if let Some(message) = said {
                    r.notes.push(Note {
                        location: None,
                        message,
                    });
                }
                r
            }
            None => Report::new(
                Some(Location::span(&current.source, Span::default())),
                d.message.clone(),
            ),
        })
        .collect();
    Error { reports }
}

/// An error of the runtime on a program compiled from `assembled` (whose
/// source is `compiled`), moved into the text the user wrote: every report
/// and note in that source is placed in the definition it points into. A
/// report with no place there (the default train block's) has none.
pub(super) fn relocate(assembled: &Assembled, compiled: &Arc<Source>, e: Error) -> Error {
    let ours = |l: &Option<Location>| match l {
        Some(Location::Span { source, span }) if Arc::ptr_eq(source, compiled) => Some(*span),
        _ => None,
    };
    let reports = e
        .reports
        .into_iter()
        .map(|mut r| {
            for n in &mut r.notes {
                if let Some(span) = ours(&n.location) {
                    n.location = assembled
                        .locate(&Diagnostic::error(span, ""))
                        .map(|(d, origin, _)| Location::span(&origin.source, d.span));
                }
            }
            let Some(span) = ours(&r.location) else {
                return r;
            };
            if span == Span::default() && r.labels.is_empty() {
                r.location = None;
                return r;
            }
            let mut d = Diagnostic::error(span, r.message.clone());
            d.labels = std::mem::take(&mut r.labels);
            d.hint = r.hint.take();
            match assembled.locate(&d) {
                Some((d, origin, _)) => Report {
                    notes: r.notes,
                    warning: r.warning,
                    ..Report::from_diagnostic(&origin.source, d)
                },
                None => Report {
                    location: None,
                    hint: d.hint,
                    ..r
                },
            }
        })
        .collect();
    Error { reports }
}
