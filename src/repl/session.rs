//! A REPL session: its definitions, the current values of its params and
//! inputs, and every operation the commands perform on them. Nothing here
//! prints; results are data, formatted by `commands`.
//!
//! The session's definitions always form a program that checks: an input is
//! applied to a copy of the definitions, the copy is compiled, and only a copy
//! that compiles replaces the session's. An error therefore never changes the
//! session.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Source};
use crate::driver;
use crate::eval::Backend;
use crate::ir::Function;
use crate::repl::error::{at, compile, relocate};
use crate::repl::source::{self, Assembled, Entry, Key, Kind, Origin};
use crate::shape::{parse_tensor, Shape, Tensor};
use crate::types::{Named, TExpr, TKind};
use crate::Compiled;

/// How a session evaluates and initialises.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub backend: Backend,
    /// Seed of the params' initialisers; default the train block's seed, or 0.
    pub seed: Option<u64>,
    /// Sizes set by `--dim` and `:dim`, for the `dim`s the session declares
    /// (now or later).
    pub dims: crate::types::dims::DimFlags,
}

pub use crate::repl::error::Error;

/// A definition an input made, with its value where it has one.
#[derive(Clone, Debug)]
pub struct Defined {
    pub kind: Kind,
    pub key: Key,
    /// `fn f(a, b)` for a function, else the key's name.
    pub head: String,
    /// It replaced an earlier definition.
    pub replaced: bool,
    /// The value at the current point (params, inputs, lets, results), or
    /// why it could not be computed.
    pub value: Option<Result<Tensor, Error>>,
}

/// The whole session compiled, for training.
pub struct Whole {
    pub compiled: Compiled,
    /// The directory the train block's data path is relative to: that of
    /// the file it was loaded from; `None` for a typed one.
    pub dir: Option<std::path::PathBuf>,
    /// The params' current values, in declaration order.
    pub params: Vec<Tensor>,
    assembled: Assembled,
}

impl Whole {
    /// An error on the whole session's program (the runtime's), placed in
    /// the text the user wrote.
    pub fn locate(&self, e: Error) -> Error {
        relocate(&self.assembled, &self.compiled.source, e)
    }
}

pub struct Session {
    pub(super) entries: Vec<Entry>,
    params: HashMap<String, Tensor>,
    inputs: HashMap<String, Tensor>,
    pub(super) opts: Options,
}

impl Session {
    pub fn new(opts: Options) -> Session {
        Session {
            entries: Vec::new(),
            params: HashMap::new(),
            inputs: HashMap::new(),
            opts,
        }
    }

    pub fn backend(&self) -> Backend {
        self.opts.backend
    }

    /// Forgets every definition and value.
    pub fn reset(&mut self) {
        self.entries.clear();
        self.params.clear();
        self.inputs.clear();
    }

    /// The names the session defines (params, inputs, lets, fns).
    pub fn names(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|e| match &e.key {
                Key::Global(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// The session as a .grad program, in the order it is compiled.
    pub fn source(&self) -> String {
        Assembled::new(&self.entries, true).src
    }

    /// The directory of the file the train block was loaded from, if it was.
    pub fn train_dir(&self) -> Option<std::path::PathBuf> {
        self.entries
            .iter()
            .find(|e| e.key == Key::Train)
            .and_then(|e| e.origin.dir.clone())
    }

    /// Whether the train block reads a data file (whose path is relative to
    /// [`Session::train_dir`]).
    pub fn train_reads_data(&self) -> bool {
        let Some(e) = self.entries.iter().find(|e| e.key == Key::Train) else {
            return false;
        };
        let Ok(p) = crate::parse(&e.text) else {
            return false;
        };
        p.items.iter().any(|i| match &i.kind {
            crate::syntax::ast::ItemKind::Train { settings } => {
                settings.iter().any(|s| s.key.name == "data")
            }
            _ => false,
        })
    }

    /// The params and their current values, in declaration order.
    pub fn params(&self) -> Vec<(String, Tensor)> {
        self.values_of(Kind::Param, &self.params)
    }

    /// The inputs and their current values, in declaration order.
    pub fn inputs(&self) -> Vec<(String, Tensor)> {
        self.values_of(Kind::Input, &self.inputs)
    }

    fn values_of(&self, kind: Kind, values: &HashMap<String, Tensor>) -> Vec<(String, Tensor)> {
        crate::repl::source::order(&self.entries)
            .into_iter()
            .filter(|&i| self.entries[i].kind == kind)
            .filter_map(|i| match &self.entries[i].key {
                Key::Global(n) => values.get(n).map(|t| (n.clone(), t.clone())),
                _ => None,
            })
            .collect()
    }

    /// Applies the definitions in `origin.text()[base..]`: each replaces the
    /// session's definition of the same name, in place, or is added. All or
    /// nothing: if the session would not check, nothing changes.
    pub fn define(&mut self, origin: Rc<Origin>, base: usize) -> Result<Vec<Defined>, Error> {
        let text = &origin.text()[base..];
        let program = crate::parse(text).map_err(|d| at(d, &origin, base))?;
        let new: Vec<Entry> = program
            .items
            .iter()
            .filter_map(|i| Entry::from_item(i, &origin, base))
            .collect();
        let mut candidate = self.entries.clone();
        let mut seen: HashSet<Key> = HashSet::new();
        let mut defined = Vec::new();
        // Where each new definition went in the candidate.
        let mut at = Vec::new();
        for e in new {
            let existing = candidate.iter().position(|c| c.key == e.key);
            let replaced = existing.is_some() && !seen.contains(&e.key);
            seen.insert(e.key.clone());
            defined.push(Defined {
                kind: e.kind,
                key: e.key.clone(),
                head: head(&e),
                replaced,
                value: None,
            });
            match existing {
                Some(i) if replaced => {
                    candidate[i] = e;
                    at.push(i);
                }
                _ => {
                    candidate.push(e);
                    at.push(candidate.len() - 1);
                }
            }
        }
        for &i in &at {
            if let Some(path) = source::cycle(&candidate, i) {
                return Err(cycle_error(&candidate, &path));
            }
        }
        let assembled = Assembled::new(&candidate, true);
        let c = compile(&assembled, &self.dim_options(), &origin, |k| {
            let d = k.describe();
            format!(
                "`{d}` was defined earlier, and this input breaks it: change both in one input, or `:forget {d}` first"
            )
        })?;
        self.entries = candidate;
        self.adopt(&c, &seen);
        self.evaluate_defined(&c, &assembled, &mut defined);
        Ok(defined)
    }

    /// Takes the declarations of a newly compiled session: params keep their
    /// values unless they were just (re)defined or changed shape; new ones
    /// take their initialisers' values. Inputs likewise, starting at zeros.
    pub(super) fn adopt(&mut self, c: &Compiled, fresh: &HashSet<Key>) {
        let seed = self.opts.seed.unwrap_or_else(|| c.seed());
        let initial = c.initial_params(seed);
        let keep = |old: &HashMap<String, Tensor>, name: &str, shape: &Shape| {
            old.get(name)
                .filter(|t| &t.shape == shape && !fresh.contains(&Key::Global(name.to_string())))
                .cloned()
        };
        self.params = c
            .typed
            .params
            .iter()
            .zip(initial)
            .map(|(p, init)| {
                let v = keep(&self.params, &p.name, &p.shape).unwrap_or(init);
                (p.name.clone(), v)
            })
            .collect();
        self.inputs = c
            .typed
            .inputs
            .iter()
            .map(|i| {
                let v = keep(&self.inputs, &i.name, &i.shape)
                    .unwrap_or_else(|| Tensor::zeros(i.shape.clone()));
                (i.name.clone(), v)
            })
            .collect();
    }

    /// Fills in the values of what an input defined, at the current point.
    fn evaluate_defined(&self, c: &Compiled, assembled: &Assembled, defined: &mut [Defined]) {
        let mut exprs: Vec<(usize, TExpr)> = Vec::new();
        for (k, d) in defined.iter_mut().enumerate() {
            let name = match &d.key {
                Key::Global(n) | Key::Metric(n) | Key::Output(n) => n.as_str(),
                Key::Loss | Key::Train => "",
            };
            let named = |list: &[Named]| {
                list.iter()
                    .find(|m| m.name == name)
                    .map(|m| m.value.clone())
            };
            let expr = match d.kind {
                Kind::Param => {
                    d.value = self.params.get(name).cloned().map(Ok);
                    None
                }
                Kind::Input => {
                    d.value = self.inputs.get(name).cloned().map(Ok);
                    None
                }
                Kind::Dim => {
                    d.value = c
                        .typed
                        .sizes
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| Ok(Tensor::scalar(*v as f64)));
                    None
                }
                Kind::Fn | Kind::Train => None,
                // A `let (a, b) = ...` is shown by its first part.
                Kind::Let => c.typed.lets.iter().enumerate().find_map(|(i, l)| {
                    let span = l.span;
                    if l.name == name {
                        let shape = l.value.shape.clone();
                        return Some(TExpr {
                            kind: TKind::Let(i),
                            shape,
                            span,
                        });
                    }
                    let k = l.parts.iter().position(|p| p == name)?;
                    let shape = l.value.parts()?.get(k)?.clone();
                    Some(TExpr {
                        kind: TKind::LetPart(i, k),
                        shape,
                        span,
                    })
                }),
                Kind::Loss => c.typed.loss.clone(),
                Kind::Metric => named(&c.typed.metrics),
                Kind::Output => named(&c.typed.outputs),
            };
            if let Some(e) = expr {
                exprs.push((k, e));
            }
        }
        if exprs.is_empty() {
            return;
        }
        let mut program = c.typed.clone();
        program.loss = None;
        program.metrics.clear();
        program.outputs = exprs
            .iter()
            .map(|(k, e)| Named {
                name: format!("_{k}"),
                value: e.clone(),
                span: e.span,
                parts: Vec::new(),
            })
            .collect();
        // (The same expressions lowered when the session compiled, so a
        // derivative among them cannot fail here; if it did, it is shown.)
        let results = match crate::lower::lower(&program) {
            Ok(mut f) => {
                crate::passes::simplify(&mut f);
                self.run(&f, &c.source, assembled)
            }
            Err(d) => Err(Error::in_source(&c.source, d)),
        };
        for (j, (k, _)) in exprs.iter().enumerate() {
            defined[*k].value = Some(match &results {
                Ok(values) => Ok(values[j].clone()),
                Err(e) => Err(e.clone()),
            });
        }
    }

    /// Removes the definition called `name` (`loss` and `train` name theirs).
    pub fn forget(&mut self, name: &str) -> Result<Key, Error> {
        // `metric m` and `output p` name those; a bare name is a param,
        // input, let or fn first, then a metric or an output.
        let keys = match name.split_once(' ') {
            Some(("metric", n)) => vec![Key::Metric(n.trim().to_string())],
            Some(("output", n)) => vec![Key::Output(n.trim().to_string())],
            _ => match name {
                "loss" => vec![Key::Loss],
                "train" => vec![Key::Train],
                _ => vec![
                    Key::Global(name.to_string()),
                    Key::Metric(name.to_string()),
                    Key::Output(name.to_string()),
                ],
            },
        };
        let found = keys
            .iter()
            .find_map(|k| self.entries.iter().position(|e| &e.key == k));
        let Some(i) = found else {
            let mut m = format!("nothing called `{name}` is defined");
            let names: Vec<String> = self.entries.iter().map(|e| e.key.describe()).collect();
            if let Some(close) = crate::diagnostic::closest(name, names.iter().map(String::as_str))
            {
                m.push_str(&format!(" (did you mean `{close}`?)"));
            }
            return Err(Error::new(m));
        };
        if let Some(e) = users_error(&self.entries, i) {
            return Err(e);
        }
        let mut candidate = self.entries.clone();
        let gone = candidate.remove(i);
        let assembled = Assembled::new(&candidate, true);
        let c = compile(&assembled, &self.dim_options(), &gone.origin, |k| {
            let d = k.describe();
            format!("`{d}` uses `{name}`: `:forget {d}` first, or redefine it")
        })?;
        self.entries = candidate;
        self.adopt(&c, &HashSet::new());
        Ok(gone.key)
    }

    /// Reads a .grad file; its items join the session as definitions.
    pub fn load(&mut self, path: &Path) -> Result<Vec<Defined>, Error> {
        let source = driver::read_source(path)?;
        let dir = Some(driver::base_dir(path));
        self.define(Rc::new(Origin { source, dir }), 0)
    }

    /// The value of the expression `origin.text()[base..]` at the current point.
    pub fn eval(&self, origin: Rc<Origin>, base: usize) -> Result<Tensor, Error> {
        let (c, assembled) = self.compile_expr(&origin, base)?;
        let mut values = self.run(&c.ir, &c.source, &assembled)?;
        values.pop().ok_or_else(|| Error::new("no value"))
    }

    /// Compiles the session's declarations and bindings with
    /// `output _ = EXPR` after them.
    pub(super) fn compile_expr(
        &self,
        origin: &Rc<Origin>,
        base: usize,
    ) -> Result<(Compiled, Assembled), Error> {
        let text = &origin.text()[base..];
        crate::syntax::parser::parse_expr(text).map_err(|d| at(d, origin, base))?;
        let mut assembled = Assembled::new(&self.entries, false);
        assembled.push("output _ = ", text, origin, base, None);
        let c = compile(&assembled, &self.dim_options(), origin, |k| {
            format!("in `{}`, defined earlier", k.describe())
        })?;
        Ok((c, assembled))
    }

    /// Sets a param's or an input's value from an expression (a scalar fills
    /// the shape) or a list of numbers, `1, 2; 3, 4`, as `--input` takes.
    pub fn set(&mut self, name: &str, origin: Rc<Origin>, base: usize) -> Result<Tensor, Error> {
        let (shape, is_param) = match (self.params.get(name), self.inputs.get(name)) {
            (Some(t), _) => (t.shape.clone(), true),
            (_, Some(t)) => (t.shape.clone(), false),
            _ => {
                let what = self
                    .entries
                    .iter()
                    .find(|e| e.key == Key::Global(name.to_string()))
                    .map(|e| e.kind);
                return Err(Error::new(match what {
                    Some(k) => format!(
                        "`{name}` is a {}, not a param or an input: redefine it instead",
                        k.keyword()
                    ),
                    None => format!("there is no param or input `{name}`"),
                }));
            }
        };
        let text = &origin.text()[base..];
        let value = if top_level_separator(text) {
            parse_tensor(&shape, text).map_err(|e| Error::new(e.describe(name)))?
        } else {
            let t = self.eval(origin, base)?;
            if t.shape == shape {
                t
            } else if t.shape.is_scalar() {
                Tensor::filled(shape.clone(), t.item())
            } else {
                return Err(Error::new(format!(
                    "`{name}` has shape {shape}, but the value has shape {}",
                    t.shape
                )));
            }
        };
        if value.data.iter().any(|x| !x.is_finite()) {
            return Err(Error::new(format!(
                "the value of `{name}` is not finite: {value}"
            )));
        }
        let map = if is_param {
            &mut self.params
        } else {
            &mut self.inputs
        };
        map.insert(name.to_string(), value.clone());
        Ok(value)
    }

    /// The session compiled whole: what `:train` runs.
    pub fn whole(&self) -> Result<Whole, Error> {
        let assembled = Assembled::new(&self.entries, true);
        let origin = Origin::typed("");
        let compiled = compile(&assembled, &self.dim_options(), &origin, |_| String::new())?;
        let dir = self.train_dir();
        let (params, _) = self.point(&compiled.ir);
        Ok(Whole {
            compiled,
            dir,
            params,
            assembled,
        })
    }

    /// Replaces the params' values (after training); names not declared are
    /// ignored, shapes must match.
    pub fn set_params(&mut self, values: Vec<(String, Tensor)>) {
        for (name, t) in values {
            if let Some(old) = self.params.get_mut(&name) {
                if old.shape == t.shape {
                    *old = t;
                }
            }
        }
    }

    /// The params' and inputs' current values, in `f`'s slot order.
    pub(super) fn point(&self, f: &Function) -> (Vec<Tensor>, Vec<Tensor>) {
        let get = |values: &HashMap<String, Tensor>, slots: &[crate::ir::Slot]| {
            slots
                .iter()
                .map(|s| {
                    values
                        .get(&s.name)
                        .filter(|t| t.shape == s.shape)
                        .cloned()
                        .unwrap_or_else(|| Tensor::zeros(s.shape.clone()))
                })
                .collect()
        };
        (get(&self.params, &f.params), get(&self.inputs, &f.inputs))
    }

    /// Runs `f` (compiled from `assembled`, as `source`) at the current
    /// point with the session's backend; its outputs in order. A fault is
    /// placed in the text the user wrote.
    pub(super) fn run(
        &self,
        f: &Function,
        source: &Arc<Source>,
        assembled: &Assembled,
    ) -> Result<Vec<Tensor>, Error> {
        let (params, inputs) = self.point(f);
        crate::driver::evaluate(f, source, self.opts.backend, &params, &inputs)
            .map_err(|e| relocate(assembled, source, e))
    }
}

/// A definition that would use itself through others: `path` is the cycle,
/// its first entry the new definition.
fn cycle_error(entries: &[Entry], path: &[usize]) -> Error {
    let first = &entries[path[0]];
    let names: Vec<String> = path
        .iter()
        .chain(std::iter::once(&path[0]))
        .map(|&i| format!("`{}`", entries[i].key.describe()))
        .collect();
    let next = forget_name(&entries[path[1]].key);
    let span = source::use_span(first, next);
    let d = Diagnostic::error(
        span,
        format!(
            "{} would use itself: {} uses {}",
            names[0],
            names[0],
            names[1..].join(", which uses ")
        ),
    )
    .label(span, format!("`{next}` uses `{}`", forget_name(&first.key)))
    .hint(format!(
        "a definition cannot use what uses it: redefine `{next}` first"
    ));
    Error::in_source(&first.origin.source, vec![d])
}

/// Why the definition `entries[i]` cannot be forgotten: the definitions that
/// use it, directly in the message and the first use labelled, and those
/// that use it only through them in a note. `None` if nothing uses it.
fn users_error(entries: &[Entry], i: usize) -> Option<Error> {
    let Key::Global(name) = &entries[i].key else {
        return None;
    };
    let uses = |j: usize, n: &str| j != i && entries[j].uses.iter().any(|u| u == n);
    let direct: Vec<usize> = (0..entries.len()).filter(|&j| uses(j, name)).collect();
    let first = *direct.first()?;
    // Everything that uses it through the direct users, in session order.
    let mut reached: Vec<bool> = (0..entries.len()).map(|j| direct.contains(&j)).collect();
    let mut stack = direct.clone();
    while let Some(k) = stack.pop() {
        let Key::Global(n) = &entries[k].key else {
            continue;
        };
        for (j, r) in reached.iter_mut().enumerate() {
            if !*r && uses(j, n) {
                *r = true;
                stack.push(j);
            }
        }
    }
    let quoted = |js: &[usize]| -> String {
        let names: Vec<String> = js
            .iter()
            .map(|&j| format!("`{}`", entries[j].key.describe()))
            .collect();
        match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    };
    let (verb, them) = if direct.len() == 1 {
        ("uses", "it")
    } else {
        ("use", "them")
    };
    let span = source::use_span(&entries[first], name);
    let d = Diagnostic::error(
        span,
        format!("cannot forget `{name}`: {} {verb} it", quoted(&direct)),
    )
    .label(
        span,
        format!("`{}` uses `{name}` here", entries[first].key.describe()),
    )
    .hint(format!(
        "forget {them} first ({}), or redefine {them} without `{name}`",
        direct
            .iter()
            .map(|&j| format!("`:forget {}`", entries[j].key.describe()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut e = Error::in_source(&entries[first].origin.source, vec![d]);
    let indirect: Vec<usize> = (0..entries.len())
        .filter(|&j| reached[j] && !direct.contains(&j))
        .collect();
    if !indirect.is_empty() {
        let verb = if indirect.len() == 1 { "uses" } else { "use" };
        e = e.note(
            None,
            format!(
                "{} {verb} `{name}` indirectly, and must be forgotten or redefined too",
                quoted(&indirect)
            ),
        );
    }
    Some(e)
}

/// What `:forget` takes to remove the definition with this key.
fn forget_name(k: &Key) -> &str {
    match k {
        Key::Global(n) | Key::Metric(n) | Key::Output(n) => n,
        Key::Loss => "loss",
        Key::Train => "train",
    }
}

/// `fn f(a, b)` for a function; the name, or the keyword, otherwise.
fn head(e: &Entry) -> String {
    match e.kind {
        Kind::Fn => {
            let end = e.text.find(')').map_or(e.text.len(), |i| i + 1);
            e.text[..end].trim_start_matches("fn").trim().to_string()
        }
        _ => forget_name(&e.key).to_string(),
    }
}

/// Whether a `,` or `;` separates the text outside brackets: a list of
/// numbers rather than an expression.
fn top_level_separator(text: &str) -> bool {
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' | ';' if depth == 0 => return true,
            '#' => return false,
            _ => {}
        }
    }
    false
}
