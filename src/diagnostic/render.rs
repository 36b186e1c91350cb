//! The one renderer: a [`Report`] as text, with ariadne for the source lines.
//!
//! - A report at a span: `name:line:col: error: message`, then the source
//!   lines with the labels underlined and the hint (ariadne's box).
//! - A report at a place in a data file: `file:line:col: error: message`.
//! - A report without a place: `error: message`.
//!
//! A warning reads `warning:` where an error reads `error:`.
//!
//! A hint outside a box is `help: ...`; each note follows as
//! `note: place: message` or `note: message`.

use super::error::{Location, Report};
use super::Label;
use crate::span::{LineIndex, Span};

/// The text of one report, ending with a newline.
pub(super) fn report(r: &Report, color: bool) -> String {
    let kind = if r.warning { "warning" } else { "error" };
    let mut out = match &r.location {
        Some(Location::Span { source, span }) => boxed(source, *span, r, color),
        Some(place) => plain(
            &format!("{place}: {kind}: {}", r.message),
            r.hint.as_deref(),
        ),
        None => plain(&format!("{kind}: {}", r.message), r.hint.as_deref()),
    };
    for n in &r.notes {
        match &n.location {
            Some(l) => out.push_str(&format!("note: {l}: {}\n", n.message)),
            None => out.push_str(&format!("note: {}\n", n.message)),
        }
    }
    out
}

fn plain(headline: &str, hint: Option<&str>) -> String {
    match hint {
        Some(h) => format!("{headline}\nhelp: {h}\n"),
        None => format!("{headline}\n"),
    }
}

/// The headline and ariadne's box: the source lines with `labels` (or
/// `here` at `span`) underlined, and the hint. Line numbers count the
/// source's `lines_before`.
fn boxed(source: &super::error::Source, span: Span, r: &Report, color: bool) -> String {
    use ariadne::{Config, IndexType, Label as ALabel, ReportKind, Source};

    let (message, labels, hint) = (r.message.as_str(), &r.labels[..], r.hint.as_deref());
    let (kind, word) = if r.warning {
        (ReportKind::Warning, "warning")
    } else {
        (ReportKind::Error, "error")
    };

    let (file, src, lines_before) = (
        source.name.as_str(),
        source.text.as_str(),
        source.lines_before,
    );

    // ariadne numbers the gutter from 1 whatever the display offset, so the
    // text is rendered after as many empty lines, and the spans moved past
    // them.
    let padded;
    let (src, span, labels) = if lines_before == 0 {
        (src, span, std::borrow::Cow::Borrowed(labels))
    } else {
        padded = format!("{}{src}", "\n".repeat(lines_before));
        let shift = |s: Span| Span::new(s.lo as usize + lines_before, s.hi as usize + lines_before);
        let labels: Vec<Label> = labels
            .iter()
            .map(|l| Label {
                span: shift(l.span),
                message: l.message.clone(),
            })
            .collect();
        (
            padded.as_str(),
            shift(span),
            std::borrow::Cow::Owned(labels),
        )
    };
    let labels: &[Label] = &labels;
    let clamp = |s: Span| {
        let lo = src.floor_char_boundary((s.lo as usize).min(src.len()));
        let hi = src.ceil_char_boundary((s.hi as usize).clamp(lo, src.len()));
        (file, lo..hi)
    };
    let mut report = ariadne::Report::build(kind, clamp(span))
        .with_config(
            Config::default()
                .with_color(color)
                .with_index_type(IndexType::Byte),
        )
        .with_message(message);
    if labels.is_empty() {
        report = report.with_label(ALabel::new(clamp(span)).with_message("here"));
    }
    for (i, l) in labels.iter().enumerate() {
        report = report.with_label(
            ALabel::new(clamp(l.span))
                .with_message(&l.message)
                .with_order(i as i32),
        );
    }
    if let Some(h) = hint {
        report = report.with_help(h);
    }
    let mut out = Vec::new();
    let written = report.finish().write((file, Source::from(src)), &mut out);
    // ariadne's first line repeats the message; the headline replaces it
    // with the `file:line:col:` form editors and terminals recognise.
    let body = match written {
        Ok(()) => {
            let text = String::from_utf8_lossy(&out).into_owned();
            text.split_once('\n')
                .map_or(String::new(), |(_, rest)| rest.to_string())
        }
        Err(_) => String::new(),
    };
    let (line, col) = LineIndex::new(src).line_col(src, span.lo as usize);
    format!("{file}:{line}:{col}: {word}: {message}\n{body}")
}

#[cfg(test)]
mod tests {
    use super::super::{Error, Location, Source};
    use crate::span::Span;

    #[test]
    fn every_kind_of_place() {
        let src = Source::new("m.grad", "let a = 1\nlet b = c\n");
        let e = Error::at(Location::span(&src, Span::new(18, 19)), "unknown name `c`")
            .label(Span::new(18, 19), "not defined")
            .note(None, "a note");
        let text = e.render(false);
        assert!(
            text.starts_with("m.grad:2:9: error: unknown name `c`\n"),
            "{text}"
        );
        assert!(
            text.contains("not defined") && text.ends_with("───╯\nnote: a note\n"),
            "{text}"
        );

        let e = Error::at(
            Location::cell("d.csv", 3, 6),
            "`abc` is not a finite number",
        )
        .note(Some(Location::span(&src, Span::new(4, 5))), "mapped here");
        assert_eq!(
            e.render(false),
            "d.csv:3:6: error: `abc` is not a finite number\nnote: m.grad:1:5: mapped here\n"
        );
        let e = Error::new("no loss")
            .hint("define one")
            .and(Error::new("second"));
        assert_eq!(
            e.render(false),
            "error: no loss\nhelp: define one\n\nerror: second\n"
        );
        assert_eq!(e.to_string(), "no loss\nsecond");
    }
}
