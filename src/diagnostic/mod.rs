//! Errors a user can cause, as data, rendered once, at the edge (the CLI or
//! the REPL), by one renderer.
//!
//! - [`Diagnostic`]: the front end's errors: a message, a primary span,
//!   labelled spans and a hint, in the one source being compiled. They are
//!   collected, several per run.
//! - [`Error`] ([`error`]): every error a user can cause, wherever it comes
//!   from: reports with an optional [`Location`] (a span of a named
//!   [`Source`], or a place in a data file), labels, a hint and notes.
//! - [`Error::render`] (`render.rs`) is the one renderer, with ariadne;
//!   [`Diagnostic::render`] and [`render_all`] use it.

pub mod error;
mod render;

pub use error::{Error, Location, Note, Report, Source};

use crate::span::{LineIndex, Span};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    /// Where the error is; the report's location is this span's start.
    pub span: Span,
    /// Underlined pieces of source, each with a short message.
    pub labels: Vec<Label>,
    /// A suggestion for what to write instead.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span,
            labels: Vec::new(),
            hint: None,
        }
    }

    /// Underlines `span` with a message.
    pub fn label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// One line: `file:line:col: error: message`.
    pub fn headline(&self, file: &str, src: &str) -> String {
        let (line, col) = LineIndex::new(src).line_col(src, self.span.lo as usize);
        format!("{file}:{line}:{col}: error: {}", self.message)
    }

    /// The full report, as [`Error::render`] gives it: headline, the source
    /// lines with the labels underlined, and the hint. `color` adds
    /// terminal colours.
    pub fn render(&self, file: &str, src: &str, color: bool) -> String {
        Error::in_source(&Source::new(file, src), vec![self.clone()]).render(color)
    }
}

/// Renders several diagnostics of one source, one after another, as
/// [`Error::render`] does.
pub fn render_all(diags: &[Diagnostic], file: &str, src: &str, color: bool) -> String {
    if diags.is_empty() {
        return String::new();
    }
    Error::in_source(&Source::new(file, src), diags.to_vec()).render(color)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_names_file_line_and_column() {
        let src = "let a = 1\nlet b = c\n";
        let d = Diagnostic::error(Span::new(18, 19), "unknown name `c`")
            .label(Span::new(18, 19), "not defined")
            .hint("define it with `let c = ...` first");
        let text = d.render("m.grad", src, false);
        assert!(
            text.starts_with("m.grad:2:9: error: unknown name `c`"),
            "{text}"
        );
        assert!(text.contains("not defined"), "{text}");
        assert!(text.contains("define it with"), "{text}");
    }

    #[test]
    fn spans_past_the_end_are_clamped() {
        let d = Diagnostic::error(Span::new(10, 20), "unexpected end of file");
        let text = d.render("e.grad", "x", false);
        assert!(text.contains("e.grad:1:2"), "{text}");
    }
}

/// Why a file could not be read or written, in a few words: "no such file",
/// "permission denied", "it is a directory", else the system's message.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "it is a directory".to_string(),
        _ => e.to_string(),
    }
}

/// The candidate closest to `name` by edit distance, if it is close enough to
/// be a likely typo: for "did you mean" hints.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() + 1) / 3;
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, c)| d <= limit && c != name)
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod closest_tests {
    use super::closest;

    #[test]
    fn finds_typos_and_ignores_strangers() {
        assert_eq!(closest("sigmod", ["sigmoid", "softmax"]), Some("sigmoid"));
        assert_eq!(closest("xyz", ["sigmoid", "softmax"]), None);
    }
}
