//! [`Error`]: every error a user can cause, from the front end, data files,
//! the runtime, the REPL, file I/O or the backend, as one kind of value.
//!
//! An error is one or more [`Report`]s (the front end reports every mistake
//! it finds). A report has a message, an optional [`Location`] (a span of a
//! named source, or a place in a data file), labelled spans, a hint, and
//! notes that may point elsewhere. It is rendered by [`Error::render`], the
//! one renderer, in the CLI and the REPL alike.

use std::fmt;
use std::sync::Arc;

use super::{Diagnostic, Label};
use crate::span::{LineIndex, Span};

/// A text spans point into: a .grad file, a line typed at the REPL, a
/// setting given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// What reports call it: a path, `<repl>`, `--optimizer`.
    pub name: String,
    pub text: String,
    /// How many lines come before `text` in what the user sees as the
    /// source: a piped REPL script's input starting on line 3 has 2. Line
    /// numbers in reports count them; spans stay relative to `text`.
    pub lines_before: usize,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Source> {
        Source::after_lines(name, text, 0)
    }

    /// A text that starts after `lines_before` lines of a larger one (which
    /// is not kept): its reports count those lines.
    pub fn after_lines(
        name: impl Into<String>,
        text: impl Into<String>,
        lines_before: usize,
    ) -> Arc<Source> {
        Arc::new(Source {
            name: name.into(),
            text: text.into(),
            lines_before,
        })
    }

    /// `name:line:col` of a byte offset.
    pub fn place(&self, offset: usize) -> String {
        let (line, col) = LineIndex::new(&self.text).line_col(&self.text, offset);
        format!("{}:{}:{col}", self.name, line + self.lines_before)
    }
}

/// Where an error is.
#[derive(Clone, Debug, PartialEq)]
pub enum Location {
    /// A span of a source; shown with the source lines underlined.
    Span { source: Arc<Source>, span: Span },
    /// A place in a data file: the file, a line (1-based), a column
    /// (1-based, in characters).
    File {
        path: String,
        line: Option<usize>,
        col: Option<usize>,
    },
}

impl Location {
    pub fn span(source: &Arc<Source>, span: Span) -> Location {
        Location::Span {
            source: source.clone(),
            span,
        }
    }

    /// A whole file.
    pub fn file(path: impl Into<String>) -> Location {
        Location::File {
            path: path.into(),
            line: None,
            col: None,
        }
    }

    /// A line of a file.
    pub fn line(path: impl Into<String>, line: usize) -> Location {
        Location::File {
            path: path.into(),
            line: Some(line),
            col: None,
        }
    }

    /// A line and column of a file.
    pub fn cell(path: impl Into<String>, line: usize, col: usize) -> Location {
        Location::File {
            path: path.into(),
            line: Some(line),
            col: Some(col),
        }
    }
}

impl fmt::Display for Location {
    /// `file:line:col`, `file:line` or `file`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Span { source, span } => write!(f, "{}", source.place(span.lo as usize)),
            Location::File { path, line, col } => {
                write!(f, "{path}")?;
                if let Some(l) = line {
                    write!(f, ":{l}")?;
                    if let Some(c) = col {
                        write!(f, ":{c}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Something said after a report, pointing elsewhere or nowhere.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub location: Option<Location>,
    pub message: String,
}

/// One error: what is wrong, where, and what to do about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub message: String,
    pub location: Option<Location>,
    /// Underlined spans, in the source of a [`Location::Span`] (ignored
    /// for other locations).
    pub labels: Vec<Label>,
    /// A suggestion for what to write or do instead.
    pub hint: Option<String>,
    pub notes: Vec<Note>,
    /// Rendered as `warning:` rather than `error:`: something the user
    /// should know about that did not stop the command.
    pub warning: bool,
}

impl Report {
    /// A report without labels, hint or notes.
    pub fn new(location: Option<Location>, message: impl Into<String>) -> Report {
        Report {
            message: message.into(),
            location,
            labels: Vec::new(),
            hint: None,
            notes: Vec::new(),
            warning: false,
        }
    }

    /// A front-end diagnostic, placed in `source`.
    pub fn from_diagnostic(source: &Arc<Source>, d: Diagnostic) -> Report {
        Report {
            message: d.message,
            location: Some(Location::span(source, d.span)),
            labels: d.labels,
            hint: d.hint,
            notes: Vec::new(),
            warning: false,
        }
    }
}

/// Every error a user can cause: one report or several, rendered by
/// [`Error::render`].
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    /// At least one.
    pub reports: Vec<Report>,
}

impl Error {
    /// An error that is not about a place.
    pub fn new(message: impl Into<String>) -> Error {
        Error::from(Report::new(None, message))
    }

    /// An error at a place.
    pub fn at(location: Location, message: impl Into<String>) -> Error {
        Error::from(Report::new(Some(location), message))
    }

    /// The front end's diagnostics on `source`, one report each.
    pub fn in_source(source: &Arc<Source>, diags: Vec<Diagnostic>) -> Error {
        let reports: Vec<Report> = diags
            .into_iter()
            .map(|d| Report::from_diagnostic(source, d))
            .collect();
        assert!(!reports.is_empty(), "an error has a report");
        Error { reports }
    }

    fn last(&mut self) -> &mut Report {
        self.reports.last_mut().expect("an error has a report")
    }

    /// Underlines `span` (of the last report's source) with a message.
    pub fn label(mut self, span: Span, message: impl Into<String>) -> Error {
        self.last().labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    /// A hint on the last report.
    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.last().hint = Some(hint.into());
        self
    }

    /// A note on the last report.
    pub fn note(mut self, location: Option<Location>, message: impl Into<String>) -> Error {
        self.last().notes.push(Note {
            location,
            message: message.into(),
        });
        self
    }

    /// The same reports, rendered as warnings: for what did not stop a
    /// command (a NaN in the values `gradc eval` printed).
    pub fn warning(mut self) -> Error {
        for r in &mut self.reports {
            r.warning = true;
        }
        self
    }

    /// This error's reports, then `other`'s.
    pub fn and(mut self, other: Error) -> Error {
        self.reports.extend(other.reports);
        self
    }

    /// The first report's message.
    pub fn message(&self) -> &str {
        &self.reports[0].message
    }

    /// The first report's location.
    pub fn location(&self) -> Option<&Location> {
        self.reports[0].location.as_ref()
    }

    /// The reports with their messages prefixed: `--input x: ...`.
    pub fn context(mut self, prefix: &str) -> Error {
        for r in &mut self.reports {
            r.message = format!("{prefix}{}", r.message);
        }
        self
    }

    /// The full text: each report with its location, the source lines it
    /// points at underlined, its hint and notes; a blank line between
    /// reports. `color` adds terminal colours.
    pub fn render(&self, color: bool) -> String {
        self.reports
            .iter()
            .map(|r| super::render::report(r, color))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl From<Report> for Error {
    fn from(r: Report) -> Error {
        Error { reports: vec![r] }
    }
}

impl fmt::Display for Error {
    /// One line per report, `location: message`, without the source.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.reports.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match &r.location {
                Some(l) => write!(f, "{l}: {}", r.message)?,
                None => write!(f, "{}", r.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
