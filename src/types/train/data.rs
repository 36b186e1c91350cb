//! Checking the `data = ...` and `test = ...` settings: `csv(...)` (the
//! file, the header, and the columns each input reads), and the array
//! sources `npz(...)`, `npy(...)`, `idx(...)` (the array or file each input
//! reads); `scale` for any of them.

use std::collections::HashMap;

use super::check::*;
use super::*;
use crate::syntax::ast::{Ident, SArg, SValue, SValueKind};
use crate::types::init::{parse_count, parse_number};

impl Checker<'_> {
    /// `csv(...)`, `npz(...)`, `npy(...)` or `idx(...)`, the value of the
    /// setting `key` (`data` or `test`).
    pub(super) fn data(
        &mut self,
        v: &SValue,
        inputs: &[(String, Shape)],
        key: &str,
    ) -> Option<DataSource> {
        let example = example_csv(inputs);
        let SValueKind::Call { func, args } = &v.kind else {
            self.diags.push(
                wrong_kind(v, &format!("`{key}`"), "a data source")
                    .hint(format!("write {example}")),
            );
            return None;
        };
        let format = match func.name.as_str() {
            "csv" => Format::Csv,
            "npz" => Format::Npz,
            "npy" => Format::Npy,
            "idx" => Format::Idx,
            _ => {
                self.diags.push(
                    Diagnostic::error(func.span, format!("unknown data source `{}`", func.name))
                        .label(func.span, "not a data source")
                        .hint(format!(
                            "the data sources are csv, npz, npy and idx: {example}, or {}",
                            example_arrays(inputs)
                        )),
                );
                return None;
            }
        };
        if format != Format::Csv {
            return self.array_source(v, func, args, inputs, format);
        }
        self.csv_source(v, func, args, inputs, &example)
    }

    /// `csv("file.csv", x = 0..2, y = 2, header = true, scale = 1/255)`.
    fn csv_source(
        &mut self,
        v: &SValue,
        func: &Ident,
        args: &[SArg],
        inputs: &[(String, Shape)],
        example: &str,
    ) -> Option<DataSource> {
        let example = example.to_string();
        let (path, path_span) = self.csv_path(v, func, args, &example)?;
        if path.is_empty() {
            self.diags.push(
                Diagnostic::error(path_span, "empty file path").label(path_span, "no file named"),
            );
        }
        let input_names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
        let mut header: Option<(bool, Span)> = None;
        let mut scale: Option<(f64, Span)> = None;
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
            if name.name == "scale" && !input_names.contains(&"scale") {
                self.scale_option(name, &a.value, &mut scale);
                continue;
            }
            if !input_names.contains(&name.name.as_str()) {
                self.not_an_input(
                    name,
                    &input_names,
                    &["header", "scale"],
                    "the options are `header = true|false` and `scale`",
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
            format: Format::Csv,
            path,
            path_span,
            header,
            columns,
            arrays: Vec::new(),
            scale: scale.map(|(x, _)| x),
            span: v.span,
        })
    }

    /// `npz("file.npz", x = "x_train", y = "y_train")`, `npy(x = "x.npy",
    /// y = "y.npy")` or `idx(x = "images-idx3-ubyte", y = "labels-idx1-ubyte")`,
    /// each with an optional `scale`.
    fn array_source(
        &mut self,
        v: &SValue,
        func: &Ident,
        args: &[SArg],
        inputs: &[(String, Shape)],
        format: Format,
    ) -> Option<DataSource> {
        let example = example_source(inputs, format);
        let (path, path_span, rest) = if format == Format::Npz {
            let (path, span) = self.csv_path(v, func, args, &example)?;
            if path.is_empty() {
                self.diags
                    .push(Diagnostic::error(span, "empty file path").label(span, "no file named"));
            }
            (path, span, &args[1..])
        } else {
            (String::new(), Span::default(), args)
        };
        let what = if format == Format::Npz {
            "an array's name in the archive"
        } else {
            "a file's path"
        };
        let input_names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
        let mut scale: Option<(f64, Span)> = None;
        let mut arrays: Vec<InputArray> = Vec::new();
        let mut named_inputs: Vec<&str> = Vec::new();
        for a in rest {
            let Some(name) = &a.name else {
                self.diags.push(
                    Diagnostic::error(
                        a.value.span,
                        format!("unexpected unnamed argument to `{}`", format.name()),
                    )
                    .label(a.value.span, "which input reads this?")
                    .hint(format!("map each input by name: {example}")),
                );
                continue;
            };
            if name.name == "scale" && !input_names.contains(&"scale") {
                self.scale_option(name, &a.value, &mut scale);
                continue;
            }
            let Some(idx) = input_names.iter().position(|n| *n == name.name) else {
                self.not_an_input(name, &input_names, &["scale"], "the one option is `scale`");
                continue;
            };
            named_inputs.push(input_names[idx]);
            let arg_span = name.span.to(a.value.span);
            if let Some(first) = arrays.iter().find(|m| m.input == name.name) {
                self.diags.push(
                    Diagnostic::error(name.span, format!("`{}` is mapped twice", name.name))
                        .label(first.span, "first mapped here")
                        .label(arg_span, "mapped again here"),
                );
                continue;
            }
            let SValueKind::Str(s) = &a.value.kind else {
                self.diags.push(
                    wrong_kind(&a.value, "an input mapping", &format!("a string, {what}"))
                        .hint(format!("write {example}")),
                );
                continue;
            };
            if s.is_empty() {
                self.diags.push(
                    Diagnostic::error(
                        a.value.span,
                        format!("empty name for input `{}`", name.name),
                    )
                    .label(a.value.span, format!("expected {what}")),
                );
                continue;
            }
            arrays.push(InputArray {
                input: name.name.clone(),
                name: s.clone(),
                span: arg_span,
            });
        }
        let mut ordered = Vec::new();
        for (n, _) in inputs {
            match arrays.iter().position(|m| &m.input == n) {
                Some(i) => ordered.push(arrays.swap_remove(i)),
                None if named_inputs.contains(&n.as_str()) => {}
                None => self.diags.push(
                    Diagnostic::error(v.span, format!("input `{n}` is not mapped to an array"))
                        .label(func.span, format!("no `{n} = ...` here"))
                        .hint(format!("write {example}")),
                ),
            }
        }
        Some(DataSource {
            format,
            path,
            path_span,
            header: None,
            columns: Vec::new(),
            arrays: ordered,
            scale: scale.map(|(x, _)| x),
            span: v.span,
        })
    }

    /// `scale = 1/255` (a number or a fraction, finite and not zero), once.
    /// The error for a keyword that names no input (nor an option of the
    /// source: `options`, described by `options_text`).
    fn not_an_input(
        &mut self,
        name: &Ident,
        input_names: &[&str],
        options: &[&str],
        options_text: &str,
    ) {
        let candidates = input_names.iter().chain(options).copied();
        self.diags.push(
            Diagnostic::error(name.span, format!("`{}` is not an input", name.name))
                .label(name.span, "no input of this name")
                .hint(match closest(&name.name, candidates) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => format!("the inputs are {}; {options_text}", input_names.join(", ")),
                }),
        );
    }

    fn scale_option(&mut self, name: &Ident, v: &SValue, scale: &mut Option<(f64, Span)>) {
        if let Some((_, first)) = scale {
            self.diags.push(
                Diagnostic::error(name.span, "`scale` is given twice")
                    .label(*first, "first given here")
                    .label(name.span, "given again here"),
            );
            return;
        }
        let value = match &v.kind {
            SValueKind::Number(n) => parse_number(n, v.span).map_err(|d| self.diags.push(d)).ok(),
            SValueKind::Fraction(a, b) => {
                let a = parse_number(a, v.span).map_err(|d| self.diags.push(d)).ok();
                let b = parse_number(b, v.span).map_err(|d| self.diags.push(d)).ok();
                a.zip(b).map(|(a, b)| a / b)
            }
            _ => {
                self.diags.push(
                    wrong_kind(v, "`scale`", "a number or a fraction")
                        .hint("e.g. `scale = 1/255` for bytes to [0, 1]"),
                );
                None
            }
        };
        let Some(x) = value else { return };
        if !x.is_finite() || x == 0.0 {
            self.diags.push(
                Diagnostic::error(v.span, "`scale` must be a finite number other than 0")
                    .label(v.span, format!("this is {}", crate::shape::fmt_num(x))),
            );
            return;
        }
        *scale = Some((x, name.span));
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
                    Diagnostic::error(v.span, format!("`{}` needs a file path first", func.name))
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
            SValueKind::Call { .. } | SValueKind::Fraction(..) => {
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
