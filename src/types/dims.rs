//! Sizes: `dim D` and `dim D = 64` name a positive integer that shapes
//! (`input x: [D]`, `param W: [H, 2 * D]`), ranges and expressions use.
//!
//! Every size is bound before the program is checked, so that the checker,
//! the lowering and the backends see only constant shapes. A size is bound,
//! in this order, by:
//!
//! 1. `--dim D=N` on the command line (or the REPL's `:dim D=N`);
//! 2. the data: an input declared with `D` in its shape and mapped in the
//!    train block's `data = ...` (a CSV column range `x = 0..4` gives a
//!    width of 4; an `npz`/`npy`/`idx` array its per-example shape, read
//!    from the file's header only);
//! 3. its default, `dim D = 64`.
//!
//! A flag and the data that disagree, two inputs that bind a size
//! differently, data whose shape does not fit a declared one (`[2 * D]`
//! against 9 columns), and a size bound by nothing are located errors.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::diagnostic::{closest, Diagnostic};
use crate::span::Span;
use crate::syntax::ast::{self, BinOp, ExprKind, ItemKind, SValueKind, UnOp};
use crate::types::train::Format;

/// Sizes set from outside the program: `--dim D=N`, in order.
pub type DimFlags = Vec<(String, usize)>;

/// The bound sizes, by name.
pub type Sizes = HashMap<String, usize>;

/// Where the sizes come from, besides the program's own defaults.
#[derive(Clone, Debug, Default)]
pub struct DimOptions {
    /// `--dim D=N`: these win over the data and the defaults.
    pub flags: DimFlags,
    /// The directory the train block's data paths are relative to: when
    /// set, the headers of `npz`/`npy`/`idx` arrays bind sizes.
    pub data_dir: Option<PathBuf>,
}

/// A `dim` item.
struct DimItem<'a> {
    name: &'a ast::Ident,
    default: Option<usize>,
    /// Its default was not a positive integer (reported).
    bad_default: bool,
}

/// What bound a size.
#[derive(Clone, Debug)]
enum Source {
    Flag,
    /// The data mapping of this input (`x = 0..4`).
    Data(Span),
    Default,
}

/// Binds every `dim` of `program`. `Ok` holds each size's value; errors
/// are located in the program (a `--dim` naming no size is the caller's to
/// report: see [`unknown_flags`]).
pub fn resolve(program: &ast::Program, opts: &DimOptions) -> Result<Sizes, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let items = dim_items(program, &mut diags);
    if items.is_empty() {
        return if diags.is_empty() {
            Ok(Sizes::new())
        } else {
            Err(diags)
        };
    }
    let mut bound: HashMap<&str, (usize, Source)> = HashMap::new();
    for (name, value) in &opts.flags {
        if items.iter().any(|d| &d.name.name == name) {
            bound.insert(name, (*value, Source::Flag));
        }
    }
    let before = diags.len();
    let mappings = data_mappings(program, opts, &mut diags);
    if diags.len() > before {
        // A header that cannot be read leaves sizes unbound: that is said.
        return Err(diags);
    }
    for m in &mappings {
        bind_from_data(m, &items, &mut bound, &mut diags);
    }
    for d in &items {
        if let Some(v) = d.default {
            bound.entry(&d.name.name).or_insert((v, Source::Default));
        }
    }
    for d in &items {
        if !bound.contains_key(d.name.name.as_str()) && !d.bad_default {
            let n = &d.name.name;
            diags.push(
                Diagnostic::error(d.name.span, format!("the size `{n}` is not bound"))
                    .label(d.name.span, "no value for this size")
                    .hint(format!(
                        "give it a value: `--dim {n}=...` on the command line (`:dim {n}=...` \
                         in the REPL), a default `dim {n} = 64`, or data for an input declared \
                         with `{n}` in its shape"
                    )),
            );
        }
    }
    if diags.is_empty() {
        let sizes: Sizes = bound
            .iter()
            .map(|(k, (v, _))| (k.to_string(), *v))
            .collect();
        for m in &mappings {
            check_fit(m, &items, &sizes, &bound, &mut diags);
        }
    }
    if diags.is_empty() {
        Ok(bound
            .into_iter()
            .map(|(k, (v, _))| (k.to_string(), v))
            .collect())
    } else {
        Err(diags)
    }
}

/// The `--dim` names that name no `dim` of `program`, each with a message
/// (and "did you mean" when one is close).
pub fn unknown_flags(program: &ast::Program, flags: &DimFlags) -> Vec<String> {
    let names: Vec<&str> = program
        .items
        .iter()
        .filter_map(|i| match &i.kind {
            ItemKind::Dim { name, .. } => Some(name.name.as_str()),
            _ => None,
        })
        .collect();
    flags
        .iter()
        .filter(|(n, _)| !names.contains(&n.as_str()))
        .map(|(n, _)| {
            let mut m = format!("`--dim {n}=...`: the program declares no size `{n}`");
            match closest(n, names.iter().copied()) {
                Some(c) => m.push_str(&format!(" (did you mean `{c}`?)")),
                None if names.is_empty() => m.push_str(" (it has no `dim` items)"),
                None => m.push_str(&format!(" (its sizes: {})", names.join(", "))),
            }
            m
        })
        .collect()
}

/// The value of a size expression: integers, names of sizes (`lookup`
/// gives their values, or the error for a name that is not one), `+ - *`,
/// exact `/`, parentheses. The result must be a positive integer.
pub fn eval_size(
    e: &ast::Expr,
    lookup: &mut dyn FnMut(&str, Span) -> Result<usize, Diagnostic>,
) -> Result<usize, Diagnostic> {
    let v = eval_int(e, lookup)?;
    if v < 1 {
        return Err(
            Diagnostic::error(e.span, "a size must be a positive integer")
                .label(e.span, format!("this is {v}"))
                .hint("every dimension of a shape is at least 1"),
        );
    }
    usize::try_from(v).map_err(|_| too_large(e.span))
}

/// The value of an integer expression of integers and sizes (`D - 1`),
/// as [`eval_size`] but of any sign.
pub fn eval_int(
    e: &ast::Expr,
    lookup: &mut dyn FnMut(&str, Span) -> Result<usize, Diagnostic>,
) -> Result<i64, Diagnostic> {
    match &e.kind {
        ExprKind::Number(n) => n.parse::<i64>().map_err(|_| {
            Diagnostic::error(e.span, format!("bad dimension `{n}`"))
                .label(e.span, "not an integer")
                .hint("shapes are written like [3], [4, 3] or [D, 2 * H]")
        }),
        ExprKind::Name(n) => {
            let v = lookup(n, e.span)?;
            i64::try_from(v).map_err(|_| too_large(e.span))
        }
        ExprKind::Unary(op, x) => {
            let x = eval_int(x, lookup)?;
            Ok(if *op == UnOp::Neg { -x } else { x })
        }
        ExprKind::Binary(op @ (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div), a, b) => {
            let (a, b) = (eval_int(a, lookup)?, eval_int(b, lookup)?);
            let v = match op {
                BinOp::Add => a.checked_add(b),
                BinOp::Sub => a.checked_sub(b),
                BinOp::Mul => a.checked_mul(b),
                _ if b == 0 || a % b != 0 => {
                    return Err(Diagnostic::error(e.span, "a size must be an integer")
                        .label(e.span, format!("{a} / {b} is not an integer")));
                }
                _ => Some(a / b),
            };
            v.filter(|v| v.abs() < 1 << 53)
                .ok_or_else(|| too_large(e.span))
        }
        _ => Err(
            Diagnostic::error(e.span, "a size must be an integer expression")
                .label(e.span, "not a size")
                .hint("sizes are integers, `dim` names and `+ - * /` of them: [3], [D, 2 * H]"),
        ),
    }
}

fn too_large(span: Span) -> Diagnostic {
    Diagnostic::error(span, "this size is too large").label(span, "too large")
}

/// The `dim` items, their defaults checked.
fn dim_items<'a>(program: &'a ast::Program, diags: &mut Vec<Diagnostic>) -> Vec<DimItem<'a>> {
    let mut out = Vec::new();
    for item in &program.items {
        let ItemKind::Dim { name, default } = &item.kind else {
            continue;
        };
        let item_default = default;
        let default = default
            .as_ref()
            .and_then(|(text, span)| match text.parse::<usize>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    diags.push(
                        Diagnostic::error(*span, format!("bad size `{text}`"))
                            .label(*span, "not a positive integer")
                            .hint(format!("write a default like `dim {} = 64`", name.name)),
                    );
                    None
                }
            });
        let bad_default = default.is_none() && item_default.is_some();
        out.push(DimItem {
            name,
            default,
            bad_default,
        });
    }
    out
}

/// An input of the train block's `data` source, with the shape its data
/// gives one example.
struct Mapping<'a> {
    input: &'a str,
    /// The input's declared shape.
    shape: &'a ast::ShapeAnn,
    /// `x = 0..4`.
    span: Span,
    /// The example's shape by the data; for CSV columns, `[count]`.
    data: Vec<usize>,
    /// CSV: the data gives a number of columns, not a shape.
    columns: bool,
}

/// The inputs with a declared shape that the train block's `data = ...`
/// maps, with the shape the data gives them. Mappings the train block's
/// checker will refuse are skipped here.
fn data_mappings<'a>(
    program: &'a ast::Program,
    opts: &DimOptions,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Mapping<'a>> {
    let shapes: HashMap<&str, &ast::ShapeAnn> = program
        .items
        .iter()
        .filter_map(|i| match &i.kind {
            ItemKind::Input {
                name,
                shape: Some(s),
            } => Some((name.name.as_str(), s)),
            _ => None,
        })
        .collect();
    let Some(data) = program.items.iter().find_map(|i| match &i.kind {
        ItemKind::Train { settings } => settings.iter().find(|s| s.key.name == "data"),
        _ => None,
    }) else {
        return Vec::new();
    };
    let SValueKind::Call { func, args } = &data.value.kind else {
        return Vec::new();
    };
    let format = match func.name.as_str() {
        "csv" => Format::Csv,
        "npz" => Format::Npz,
        "npy" => Format::Npy,
        "idx" => Format::Idx,
        _ => return Vec::new(),
    };
    let path = |a: &ast::SArg| match &a.value.kind {
        SValueKind::Str(s) if a.name.is_none() => Some(s.clone()),
        _ => None,
    };
    let file = args.first().and_then(path);
    let mut out = Vec::new();
    for a in args {
        let Some(name) = &a.name else { continue };
        let Some((&input, &shape)) = shapes.get_key_value(name.name.as_str()) else {
            continue;
        };
        let span = name.span.to(a.value.span);
        let (data, columns) = match (&a.value.kind, format) {
            (SValueKind::Range(lo, hi), Format::Csv) => {
                match (lo.parse::<usize>(), hi.parse::<usize>()) {
                    (Ok(lo), Ok(hi)) if hi > lo => (vec![hi - lo], true),
                    _ => continue,
                }
            }
            (SValueKind::List(items), Format::Csv) => (vec![items.len()], true),
            (SValueKind::Str(s), Format::Npz | Format::Npy | Format::Idx) => {
                let Some(dir) = &opts.data_dir else { continue };
                use crate::runtime::data::arrays::example_shape;
                let header = match format {
                    Format::Npz => file
                        .as_ref()
                        .map(|f| example_shape(dir, format, f, Some(s))),
                    _ => Some(example_shape(dir, format, s, None)),
                };
                match header {
                    Some(Ok(shape)) => (shape, false),
                    Some(Err(reason)) => {
                        diags.push(
                            Diagnostic::error(span, format!("cannot read the shape of `{s}`"))
                                .label(span, reason)
                                .hint("the sizes declared with `dim` are bound from it"),
                        );
                        continue;
                    }
                    None => continue,
                }
            }
            _ => continue,
        };
        out.push(Mapping {
            input,
            shape,
            span,
            data,
            columns,
        });
    }
    out
}

/// Binds the sizes an input's shape names directly (`[D]`, `[H, W]`) to
/// its data's; reports a second binding that disagrees with the first.
fn bind_from_data<'a>(
    m: &Mapping<'_>,
    items: &[DimItem<'a>],
    bound: &mut HashMap<&'a str, (usize, Source)>,
    diags: &mut Vec<Diagnostic>,
) {
    // CSV columns fill a vector; a shape of higher rank cannot be split
    // into its sizes from a count.
    if m.shape.dims.len() != m.data.len() {
        return;
    }
    for (e, &n) in m.shape.dims.iter().zip(&m.data) {
        let ExprKind::Name(name) = &e.kind else {
            continue;
        };
        let Some(item) = items.iter().find(|d| &d.name.name == name) else {
            continue;
        };
        if item.name.span.lo > e.span.lo {
            continue; // used before its `dim`: the checker reports it
        }
        let key: &'a str = &item.name.name;
        match bound.get(key) {
            None => {
                bound.insert(key, (n, Source::Data(m.span)));
            }
            Some((v, _)) if *v == n => {}
            Some((v, source)) => {
                let set = match source {
                    Source::Flag => format!("`--dim {name}={v}` sets it to {v}"),
                    _ => format!("other data gives {v}"),
                };
                let mut d =
                    Diagnostic::error(m.span, format!("the data gives `{name}` = {n}, but {set}"))
                        .label(m.span, format!("{} for `{name}`", what_data(m, n)))
                        .label(
                            item.name.span,
                            format!("the size `{name}` is declared here"),
                        );
                if let Source::Data(first) = source {
                    d = d.label(*first, format!("`{name}` = {v} from this data"));
                }
                let hint = match source {
                    Source::Flag => format!(
                        "leave out `--dim {name}={v}` (the data gives {n}), or map data of that size"
                    ),
                    _ => format!("the inputs declared with `{name}` need data of one size"),
                };
                diags.push(d.hint(hint));
            }
        }
    }
}

/// After binding: an input's data must fit its declared shape (`[2 * D]`
/// against the number of columns, a size the flag set).
fn check_fit(
    m: &Mapping<'_>,
    items: &[DimItem<'_>],
    sizes: &Sizes,
    bound: &HashMap<&str, (usize, Source)>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut lookup = |n: &str, span: Span| {
        sizes
            .get(n)
            .copied()
            .ok_or_else(|| Diagnostic::error(span, "not a size"))
    };
    let Ok(shape) = m
        .shape
        .dims
        .iter()
        .map(|e| eval_size(e, &mut lookup))
        .collect::<Result<Vec<usize>, _>>()
    else {
        return; // the checker reports the shape
    };
    let (want, got) = if m.columns {
        (vec![shape.iter().product::<usize>()], m.data.clone())
    } else {
        (shape.clone(), m.data.clone())
    };
    if want == got {
        return;
    }
    let named: Vec<&DimItem<'_>> = items
        .iter()
        .filter(|d| m.shape.dims.iter().any(|e| names(e, &d.name.name)))
        .collect();
    if named.is_empty() {
        return; // no size involved: the train block's checker reports it
    }
    let why: Vec<String> = named
        .iter()
        .filter_map(|d| {
            let (v, s) = bound.get(d.name.name.as_str())?;
            Some(format!(
                "`{}` = {v} {}",
                d.name.name,
                from(s, &d.name.name, *v)
            ))
        })
        .collect();
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let mut d = Diagnostic::error(
        m.span,
        format!(
            "the data gives `{}` {}, but its shape is [{}] with {}",
            m.input,
            what_data(m, got.iter().product()),
            dims.join(", "),
            why.join(" and ")
        ),
    )
    .label(m.span, what_data(m, got.iter().product()))
    .label(m.shape.span, format!("shape [{}]", dims.join(", ")));
    for item in &named {
        d = d.label(
            item.name.span,
            format!("the size `{}` is declared here", item.name.name),
        );
    }
    diags.push(d.hint("make the data and the sizes agree (a flag `--dim` wins over the data)"));
}

/// Whether the size expression `e` mentions `name`.
fn names(e: &ast::Expr, name: &str) -> bool {
    match &e.kind {
        ExprKind::Name(n) => n == name,
        k => ast::children(k).into_iter().any(|c| names(c, name)),
    }
}

/// "(from `--dim D=4`)", "(from the data)", "(its default)".
fn from(source: &Source, name: &str, v: usize) -> String {
    match source {
        Source::Flag => format!("(from `--dim {name}={v}`)"),
        Source::Data(_) => "(from the data)".to_string(),
        Source::Default => "(its default)".to_string(),
    }
}

/// "4 columns", "examples of shape [28, 28]".
fn what_data(m: &Mapping<'_>, n: usize) -> String {
    if m.columns {
        format!("{n} column{}", if n == 1 { "" } else { "s" })
    } else {
        let dims: Vec<String> = m.data.iter().map(usize::to_string).collect();
        format!("examples of shape [{}]", dims.join(", "))
    }
}

#[cfg(test)]
mod tests;
