//! Checking the `data = csv(...)` setting: the file, the header, and the
//! columns each input reads.

use std::collections::HashMap;

use super::check::*;
use super::*;
use crate::syntax::ast::{Ident, SArg, SValue, SValueKind};
use crate::types::init::parse_count;

impl Checker<'_> {
    /// `csv("file.csv", x = 0..2, y = 2, header = true)`.
    pub(super) fn data(&mut self, v: &SValue, inputs: &[(String, Shape)]) -> Option<DataSource> {
        let example = example_csv(inputs);
        let SValueKind::Call { func, args } = &v.kind else {
            self.diags
                .push(wrong_kind(v, "`data`", "a data source").hint(format!("write {example}")));
            return None;
        };
        if func.name != "csv" {
            self.diags.push(
                Diagnostic::error(func.span, format!("unknown data source `{}`", func.name))
                    .label(func.span, "not a data source")
                    .hint(format!("the only data source is csv: {example}")),
            );
            return None;
        }
        let (path, path_span) = self.csv_path(v, func, args, &example)?;
        if path.is_empty() {
            self.diags.push(
                Diagnostic::error(path_span, "empty file path").label(path_span, "no file named"),
            );
        }
        let input_names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
        let mut header: Option<(bool, Span)> = None;
        let mut mapped: HashMap<&str, InputColumns> = HashMap::new();
        // Inputs named in the call, mapped or not, so that a bad mapping is
        // not also reported as a missing one.
        let mut named_inputs: Vec<&str> = Vec::new();
        for a in &args[1..] {
            let Some(name) = &a.name else {
                self.diags.push(
                    Diagnostic::error(a.value.span, "unexpected unnamed argument to `csv`")
                        .label(a.value.span, "which input reads these columns?")
                        .hint(format!("map each input to its columns by name: {example}")),
                );
                continue;
            };
            let arg_span = name.span.to(a.value.span);
            let is_bool = matches!(&a.value.kind, SValueKind::Name(_));
            if name.name == "header" && (is_bool || !input_names.contains(&"header")) {
                if let Some((_, first)) = header {
                    self.diags.push(
                        Diagnostic::error(name.span, "`header` is given twice")
                            .label(first, "first given here")
                            .label(name.span, "given again here"),
                    );
                } else if let Some(b) = self.boolean(&a.value, "`header`") {
                    header = Some((b, name.span));
                }
                continue;
            }
            if !input_names.contains(&name.name.as_str()) {
                let mut candidates = input_names.clone();
                candidates.push("header");
                self.diags.push(
                    Diagnostic::error(name.span, format!("`{}` is not an input", name.name))
                        .label(name.span, "no input of this name")
                        .hint(match closest(&name.name, candidates.iter().copied()) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None => format!(
                                "the inputs are {}; the one option is `header = true|false`",
                                input_names.join(", ")
                            ),
                        }),
                );
                continue;
            }
            named_inputs.push(name.name.as_str());
            if let Some(first) = mapped.get(name.name.as_str()) {
                self.diags.push(
                    Diagnostic::error(name.span, format!("`{}` is mapped twice", name.name))
                        .label(first.span, "first mapped here")
                        .label(arg_span, "mapped again here"),
                );
                continue;
            }
            let idx = input_names
                .iter()
                .position(|n| *n == name.name)
                .unwrap_or(0);
            if let Some(ic) = self.input_columns(name, &a.value, &inputs[idx].1) {
                mapped.insert(input_names[idx], ic);
            }
        }

        let mut columns = Vec::new();
        for (n, _) in inputs {
            match mapped.remove(n.as_str()) {
                Some(c) => columns.push(c),
                None if named_inputs.contains(&n.as_str()) => {}
                None => self.diags.push(
                    Diagnostic::error(v.span, format!("input `{n}` is not mapped to a column"))
                        .label(func.span, format!("no `{n} = ...` here"))
                        .hint(format!("add `{n} = <column>`, e.g. `{n} = 0`")),
                ),
            }
        }
        self.overlaps(&columns);

        let named = columns
            .iter()
            .flat_map(|c| c.columns.to_list())
            .any(|c| matches!(c, Column::Name(_)));
        let header = match header {
            Some((false, span)) if named => {
                self.diags.push(
                    Diagnostic::error(span, "columns are mapped by name but `header = false`")
                        .label(span, "no header row to find the names in")
                        .hint("set `header = true`, or map the columns by index"),
                );
                Some(false)
            }
            Some((b, _)) => Some(b),
            None if named => Some(true),
            None => None,
        };
        Some(DataSource {
            path,
            path_span,
            header,
            columns,
            span: v.span,
        })
    }

    /// The path, the first argument of `csv`.
    pub(super) fn csv_path(
        &mut self,
        v: &SValue,
        func: &Ident,
        args: &[SArg],
        example: &str,
    ) -> Option<(String, Span)> {
        match args.first() {
            Some(SArg { name: None, value }) => match &value.kind {
                SValueKind::Str(p) => Some((p.clone(), value.span)),
                _ => {
                    self.diags.push(
                        wrong_kind(value, "the path", "a string").hint(format!("write {example}")),
                    );
                    None
                }
            },
            _ => {
                self.diags.push(
                    Diagnostic::error(v.span, "`csv` needs a file path first")
                        .label(func.span, "no path")
                        .hint(format!("write {example}")),
                );
                None
            }
        }
    }

    /// `x = 0..2` for an input of `shape`: as many columns as it has elements.
    pub(super) fn input_columns(
        &mut self,
        name: &Ident,
        v: &SValue,
        shape: &Shape,
    ) -> Option<InputColumns> {
        let columns = self.columns(v)?;
        if columns.len() != shape.size() {
            let what = if shape.is_scalar() {
                "a scalar".to_string()
            } else {
                format!("shape {shape}")
            };
            self.diags.push(
                Diagnostic::error(
                    v.span,
                    format!(
                        "input `{}` has {} but {} mapped to it",
                        name.name,
                        plural(shape.size(), "value"),
                        plural_verb(columns.len())
                    ),
                )
                .label(v.span, plural(columns.len(), "column"))
                .hint(format!(
                    "`{}` is declared with {what}: map {}",
                    name.name,
                    plural(shape.size(), "column")
                )),
            );
            return None;
        }
        Some(InputColumns {
            input: name.name.clone(),
            columns,
            span: name.span.to(v.span),
        })
    }

    /// One input's columns: `2`, `0..2`, `[0, 3]`, `"label"`.
    pub(super) fn columns(&mut self, v: &SValue) -> Option<Columns> {
        const EXPECTED: &str =
            "columns: an index `2`, a range `0..2`, a list `[0, 3]` or a name `\"label\"`";
        match &v.kind {
            SValueKind::Number(n) => Some(Columns::Index(self.index(n, v.span)?)),
            SValueKind::Str(s) => Some(Columns::Name(s.clone())),
            SValueKind::Range(a, b) => {
                let start = self.index(a, v.span);
                let end = self.index(b, v.span);
                let (start, end) = (start?, end?);
                if end <= start {
                    self.diags.push(
                        Diagnostic::error(v.span, format!("empty column range `{a}..{b}`"))
                            .label(v.span, "no columns")
                            .hint(format!(
                                "a range `a..b` holds columns a to b - 1, e.g. `{start}..{}`",
                                start + 1
                            )),
                    );
                    return None;
                }
                Some(Columns::Range { start, end })
            }
            SValueKind::List(items) => {
                if items.is_empty() {
                    self.diags.push(
                        Diagnostic::error(v.span, "empty column list").label(v.span, "no columns"),
                    );
                    return None;
                }
                let mut cs = Vec::new();
                for item in items {
                    match &item.kind {
                        SValueKind::Number(n) => cs.push(Column::Index(self.index(n, item.span)?)),
                        SValueKind::Str(s) => cs.push(Column::Name(s.clone())),
                        _ => {
                            self.diags
                                .push(wrong_kind(item, "a column", "an index or a name"));
                            return None;
                        }
                    }
                }
                Some(Columns::List(cs))
            }
            SValueKind::Name(n) => {
                self.diags
                    .push(wrong_kind(v, "an input mapping", "columns").hint(format!(
                        "column names are strings: write \"{n}\"; {EXPECTED}"
                    )));
                None
            }
            SValueKind::Call { .. } => {
                self.diags
                    .push(wrong_kind(v, "an input mapping", "columns").hint(EXPECTED));
                None
            }
        }
    }

    pub(super) fn index(&mut self, text: &str, span: Span) -> Option<usize> {
        let n = parse_count(text, span, "a column index")
            .map_err(|d| self.diags.push(d))
            .ok()?;
        match usize::try_from(n) {
            Ok(n) if n < usize::MAX => Some(n),
            _ => {
                self.diags.push(
                    Diagnostic::error(span, "a column index is too large").label(span, "too large"),
                );
                None
            }
        }
    }

    /// A column read by two inputs is almost always a mistake (the label
    /// among the features, say).
    pub(super) fn overlaps(&mut self, columns: &[InputColumns]) {
        let mut owner: HashMap<Column, &InputColumns> = HashMap::new();
        for ic in columns {
            for col in ic.columns.to_list() {
                match owner.get(&col) {
                    Some(first) if first.input != ic.input => {
                        self.diags.push(
                            Diagnostic::error(
                                ic.span,
                                format!(
                                    "column {col} is read by both `{}` and `{}`",
                                    first.input, ic.input
                                ),
                            )
                            .label(first.span, format!("`{}` reads column {col}", first.input))
                            .label(ic.span, format!("`{}` reads it too", ic.input))
                            .hint("each column can feed one input"),
                        );
                        break;
                    }
                    Some(_) => {
                        self.diags.push(
                            Diagnostic::error(
                                ic.span,
                                format!("column {col} is listed twice for `{}`", ic.input),
                            )
                            .label(ic.span, "repeated column"),
                        );
                        break;
                    }
                    None => {
                        owner.insert(col, ic);
                    }
                }
            }
        }
    }
}
