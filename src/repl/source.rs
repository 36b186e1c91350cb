//! The session's source: one entry per definition, each remembering the text
//! it was typed or loaded in, assembled into one program for the checker, and
//! the map from that program's byte offsets back to what the user wrote.

use std::collections::HashSet;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Source};
use crate::span::Span;
use crate::syntax::ast::{Expr, ExprKind, Item, ItemKind};

/// A piece of text the user gave: one input typed at the prompt (the whole
/// input, `:command` included) or one file loaded.
#[derive(Debug)]
pub struct Origin {
    /// The text, and what errors call it: `<repl>` or the file's path.
    pub source: Arc<Source>,
    /// The directory `train { data = csv(...) }` paths are relative to: the
    /// loaded file's directory, or the working directory for typed input.
    pub dir: Option<PathBuf>,
}

impl Origin {
    pub fn typed(text: &str) -> Rc<Origin> {
        Origin::typed_after(text, 0)
    }

    /// An input of a piped script that starts after `lines_before` lines of
    /// it: errors name the script's lines.
    pub fn typed_after(text: &str, lines_before: usize) -> Rc<Origin> {
        Rc::new(Origin {
            source: Source::after_lines("<repl>", text, lines_before),
            dir: None,
        })
    }

    /// What errors call it.
    pub fn name(&self) -> &str {
        &self.source.name
    }

    pub fn text(&self) -> &str {
        &self.source.text
    }
}

/// What a definition defines; a later definition with the same key replaces
/// it. Params, inputs, lets and fns share one namespace, as in a file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Global(String),
    Loss,
    Metric(String),
    Output(String),
    Train,
}

impl Key {
    /// How the definition is named in messages: `x`, `loss`, `metric acc`.
    pub fn describe(&self) -> String {
        match self {
            Key::Global(n) => n.clone(),
            Key::Loss => "loss".to_string(),
            Key::Metric(n) => format!("metric {n}"),
            Key::Output(n) => format!("output {n}"),
            Key::Train => "train".to_string(),
        }
    }
}

/// The item keyword of an entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dim,
    Param,
    Input,
    Let,
    Fn,
    Loss,
    Metric,
    Output,
    Train,
}

impl Kind {
    pub fn keyword(self) -> &'static str {
        match self {
            Kind::Dim => "dim",
            Kind::Param => "param",
            Kind::Input => "input",
            Kind::Let => "let",
            Kind::Fn => "fn",
            Kind::Loss => "loss",
            Kind::Metric => "metric",
            Kind::Output => "output",
            Kind::Train => "train",
        }
    }

    /// Where the kind goes in the assembled program: declarations first,
    /// then lets and fns (ordered by their uses), then what nothing can
    /// refer to.
    fn rank(self) -> u8 {
        match self {
            Kind::Dim | Kind::Param | Kind::Input => 0,
            Kind::Let | Kind::Fn => 1,
            Kind::Loss | Kind::Metric | Kind::Output => 2,
            Kind::Train => 3,
        }
    }

    /// Whether a name can refer to what this kind defines.
    pub fn is_referable(self) -> bool {
        self.rank() < 2
    }
}

/// One definition of the session.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: Key,
    pub kind: Kind,
    /// The item's text, from its keyword to its end.
    pub text: String,
    pub origin: Rc<Origin>,
    /// Where `text` starts in `origin.text()`.
    pub offset: usize,
    /// The global names its expressions use (for ordering).
    pub uses: Vec<String>,
}

impl Entry {
    /// The entry for a parsed item whose spans are relative to
    /// `origin.text()[base..]`; `None` for an item the parser skipped.
    pub fn from_item(item: &Item, origin: &Rc<Origin>, base: usize) -> Option<Entry> {
        let (key, kind, uses) = match &item.kind {
            ItemKind::Param { name, init, .. } => (
                Key::Global(name.name.clone()),
                Kind::Param,
                init.iter().flat_map(names).collect(),
            ),
            ItemKind::Input { name, .. } => (Key::Global(name.name.clone()), Kind::Input, vec![]),
            ItemKind::Dim { name, .. } => (Key::Global(name.name.clone()), Kind::Dim, vec![]),
            ItemKind::Let { name, value } => {
                (Key::Global(name.name.clone()), Kind::Let, names(value))
            }
            // Known by its first name in the session.
            ItemKind::LetTuple {
                names: parts,
                value,
            } => (Key::Global(parts[0].name.clone()), Kind::Let, names(value)),
            ItemKind::Fn { name, params, body } => {
                let own: HashSet<&str> = params.iter().map(|p| p.name.as_str()).collect();
                let uses = names(body)
                    .into_iter()
                    .filter(|n| !own.contains(n.as_str()))
                    .collect();
                (Key::Global(name.name.clone()), Kind::Fn, uses)
            }
            ItemKind::Loss { value } => (Key::Loss, Kind::Loss, names(value)),
            ItemKind::Metric { name, value } => {
                (Key::Metric(name.name.clone()), Kind::Metric, names(value))
            }
            ItemKind::Output { name, value } => {
                (Key::Output(name.name.clone()), Kind::Output, names(value))
            }
            // A residual defines the loss: one of the two per session.
            ItemKind::Residual { value, .. } => (Key::Loss, Kind::Loss, names(value)),
            ItemKind::Train { .. } => (Key::Train, Kind::Train, vec![]),
            ItemKind::Error => return None,
        };
        let range = item.span.range();
        let offset = base + range.start;
        // The optional `;` after an item is left out: entries are assembled
        // one a line.
        let text = origin.text().get(offset..base + range.end)?;
        let text = text.trim_end().trim_end_matches(';').trim_end().to_string();
        Some(Entry {
            key,
            kind,
            text,
            origin: origin.clone(),
            offset,
            uses,
        })
    }
}

/// Every name an expression mentions, calls included, in order, repeated.
fn names(e: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match &e.kind {
            ExprKind::Name(n) => out.push(n.clone()),
            ExprKind::Call { func, .. } => {
                out.push(func.name.clone());
                stack.extend(crate::syntax::ast::children(&e.kind));
            }
            other => stack.extend(crate::syntax::ast::children(other)),
        }
    }
    out
}

/// The order entries are assembled in: by kind (declarations, bindings,
/// results, train), and lets and fns after the definitions they use, else in
/// session order. A cycle keeps session order, and the checker reports it.
pub fn order(entries: &[Entry]) -> Vec<usize> {
    let mut by_rank: Vec<usize> = (0..entries.len()).collect();
    // Sizes first among the declarations: shapes use them.
    by_rank.sort_by_key(|&i| (entries[i].kind.rank(), entries[i].kind != Kind::Dim));
    let bindings: Vec<usize> = by_rank
        .iter()
        .copied()
        .filter(|&i| entries[i].kind.rank() == 1)
        .collect();
    let mut placed: Vec<usize> = Vec::with_capacity(bindings.len());
    let mut left = bindings.clone();
    while !left.is_empty() {
        let pending: HashSet<&str> = left
            .iter()
            .filter_map(|&i| match &entries[i].key {
                Key::Global(n) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        let ready = left
            .iter()
            .position(|&i| {
                let own = match &entries[i].key {
                    Key::Global(n) => n.as_str(),
                    _ => "",
                };
                entries[i]
                    .uses
                    .iter()
                    .all(|u| u == own || !pending.contains(u.as_str()))
            })
            .unwrap_or(0);
        placed.push(left.remove(ready));
    }
    let mut out: Vec<usize> = by_rank
        .iter()
        .copied()
        .filter(|&i| entries[i].kind.rank() == 0)
        .collect();
    out.extend(placed);
    out.extend(
        by_rank
            .iter()
            .copied()
            .filter(|&i| entries[i].kind.rank() > 1),
    );
    out
}

/// The shortest cycle of uses among lets and fns through entry `start`:
/// the entries in order, `start` first (not repeated at the end). A
/// definition using its own name is left to the checker.
pub fn cycle(entries: &[Entry], start: usize) -> Option<Vec<usize>> {
    let name = |i: usize| match &entries[i].key {
        Key::Global(n) if entries[i].kind.rank() == 1 => Some(n.as_str()),
        _ => None,
    };
    let uses = |i: usize| {
        (0..entries.len()).filter(move |&j| {
            j != i && name(j).is_some_and(|n| entries[i].uses.iter().any(|u| u == n))
        })
    };
    name(start)?;
    let mut parent: Vec<Option<usize>> = vec![None; entries.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        for j in uses(i) {
            if j == start {
                let mut path = vec![i];
                while let Some(p) = parent[*path.last().expect("non-empty")] {
                    path.push(p);
                }
                if *path.last().expect("non-empty") != start {
                    path.push(start);
                }
                path.reverse();
                path.dedup();
                return Some(path);
            }
            if parent[j].is_none() && j != start {
                parent[j] = Some(i);
                queue.push_back(j);
            }
        }
    }
    None
}

/// The span, in its origin, of the first use of `name` in an entry.
pub fn use_span(e: &Entry, name: &str) -> Span {
    use logos::Logos;
    let found = crate::syntax::lexer::Token::lexer(&e.text)
        .spanned()
        .find(|(t, _)| matches!(t, Ok(crate::syntax::lexer::Token::Name(n)) if *n == name))
        .map_or(0..e.text.len(), |(_, r)| r);
    Span::new(e.offset + found.start, e.offset + found.end)
}

/// Where one piece of the assembled program came from.
#[derive(Clone, Debug)]
pub struct Piece {
    /// The bytes of the assembled program this piece accounts for (a
    /// generated prefix such as `output _ = ` included).
    pub region: std::ops::Range<usize>,
    /// Where the user's text starts and ends in the assembled program.
    pub text: std::ops::Range<usize>,
    pub origin: Rc<Origin>,
    /// Where the user's text starts in `origin.text()`.
    pub offset: usize,
    /// The definition, or `None` for the expression being evaluated.
    pub key: Option<Key>,
}

/// A program assembled from entries, with its map back to the user's text.
#[derive(Clone, Debug, Default)]
pub struct Assembled {
    pub src: String,
    pub pieces: Vec<Piece>,
}

impl Assembled {
    /// The entries in [`order`], each followed by a newline; `results`
    /// includes the loss, metrics, outputs and train block.
    pub fn new(entries: &[Entry], results: bool) -> Assembled {
        let mut a = Assembled::default();
        for i in order(entries) {
            let e = &entries[i];
            if !results && !e.kind.is_referable() {
                continue;
            }
            a.push("", &e.text, &e.origin, e.offset, Some(e.key.clone()));
        }
        a
    }

    /// Appends `prefix` (generated) and `text`, which is
    /// `origin.text()[offset..]`'s start, then a newline.
    pub fn push(
        &mut self,
        prefix: &str,
        text: &str,
        origin: &Rc<Origin>,
        offset: usize,
        key: Option<Key>,
    ) {
        let start = self.src.len();
        self.src.push_str(prefix);
        let lo = self.src.len();
        self.src.push_str(text);
        let hi = self.src.len();
        self.src.push('\n');
        self.pieces.push(Piece {
            region: start..self.src.len(),
            text: lo..hi,
            origin: origin.clone(),
            offset,
            key,
        });
    }

    /// The piece holding byte `at` (the last one for offsets past the end).
    fn piece(&self, at: usize) -> Option<&Piece> {
        self.pieces
            .iter()
            .find(|p| p.region.contains(&at))
            .or(self.pieces.last())
    }

    /// A span of the assembled program as a span of `piece`'s origin; offsets
    /// in a generated prefix move to the start of the user's text.
    fn map_in(piece: &Piece, s: Span) -> Span {
        let at = |x: u32| {
            let x = (x as usize).clamp(piece.text.start, piece.text.end);
            x - piece.text.start + piece.offset
        };
        Span::new(at(s.lo), at(s.hi))
    }

    /// A diagnostic on the assembled program, moved into the text the user
    /// wrote: its origin and the definition it points into. Labels in other
    /// origins are left out.
    pub fn locate(&self, d: &Diagnostic) -> Option<(Diagnostic, Rc<Origin>, Option<Key>)> {
        let piece = self.piece(d.span.lo as usize)?;
        let mut out = Diagnostic::error(Self::map_in(piece, d.span), d.message.clone());
        for l in &d.labels {
            let Some(p) = self.piece(l.span.lo as usize) else {
                continue;
            };
            if Rc::ptr_eq(&p.origin, &piece.origin) {
                out = out.label(Self::map_in(p, l.span), l.message.clone());
            }
        }
        out.hint = d.hint.clone();
        Some((out, piece.origin.clone(), piece.key.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(src: &str) -> Vec<Entry> {
        let origin = Origin::typed(src);
        let p = crate::parse(src).unwrap();
        p.items
            .iter()
            .filter_map(|i| Entry::from_item(i, &origin, 0))
            .collect()
    }

    #[test]
    fn lets_move_after_what_they_use() {
        let e = entries("let b = a + 1\nloss b\nparam w\nlet a = w * 2\n");
        let keys: Vec<String> = order(&e).iter().map(|&i| e[i].key.describe()).collect();
        assert_eq!(keys, ["w", "a", "b", "loss"]);
    }

    #[test]
    fn functions_exclude_their_own_parameters() {
        let e = entries("fn f(x, y) = x * y + z\n");
        assert_eq!(e[0].uses, ["z"]);
    }

    #[test]
    fn cycles_keep_session_order() {
        let e = entries("let a = b\nlet b = a\n");
        assert_eq!(order(&e), [0, 1]);
    }

    #[test]
    fn cycles_are_found_through_an_entry() {
        let e = entries("let a = c\nlet b = a\nlet c = b + d\nlet d = 1\nlet x = x\n");
        assert_eq!(cycle(&e, 0), Some(vec![0, 2, 1]));
        assert_eq!(cycle(&e, 3), None);
        assert_eq!(cycle(&e, 4), None);
        assert_eq!(&e[2].origin.text()[use_span(&e[2], "d").range()], "d");
    }

    #[test]
    fn spans_map_back_into_each_origin() {
        let first = Origin::typed("let a = 1");
        let second = Origin::typed(":grad a + q");
        let mut a = Assembled::default();
        a.push("", "let a = 1", &first, 0, Some(Key::Global("a".into())));
        a.push("output _ = ", "a + q", &second, 6, None);
        let q = a.src.find('q').unwrap();
        let d = Diagnostic::error(Span::new(q, q + 1), "unknown name `q`")
            .label(Span::new(q, q + 1), "not defined")
            .label(Span::new(4, 5), "elsewhere");
        let (m, origin, key) = a.locate(&d).unwrap();
        assert_eq!(&origin.text()[m.span.range()], "q");
        assert_eq!(m.labels.len(), 1);
        assert_eq!(key, None);
        // A span in the generated prefix moves to the expression's start.
        let d = Diagnostic::error(Span::new(10, 12), "in the prefix");
        let (m, _, _) = a.locate(&d).unwrap();
        assert_eq!(m.span, Span::new(6, 6));
    }
}
