//! `einsum("ij,jk->ik", a, b, ...)`: a contraction written in NumPy's
//! subscripts, checked here and built from operations that exist already.
//!
//! Each operand's axes are permuted into one common order (the result's
//! indices, then the summed ones) with length-1 axes put in for the indices
//! it lacks; the operands are multiplied, broadcasting as every elementwise
//! product does; the summed indices are reduced away. Without `->`, the
//! result's indices are those written once, in alphabetical order, as
//! NumPy. Not supported: `...`, and an index repeated within one operand
//! (a diagonal or a trace: `diag`, `sum(diag(x))`).

use crate::diagnostic::Diagnostic;
use crate::shape::Shape;
use crate::span::Span;
use crate::syntax::ast::{self, ExprKind};
use crate::types::builtins::{Axes, Prim, Reduction};
use crate::types::check::Checker;
use crate::types::expr::Env;
use crate::types::{TExpr, TKind};

/// Parsed subscripts: each operand's indices, and the result's.
#[derive(Debug, PartialEq, Eq)]
struct Spec {
    inputs: Vec<Vec<char>>,
    output: Vec<char>,
}

/// The subscripts read, or why not.
fn parse(text: &str) -> Result<Spec, String> {
    let (ins, out) = match text.split_once("->") {
        Some((i, o)) => (i, Some(o)),
        None => (text, None),
    };
    let term = |t: &str| -> Result<Vec<char>, String> {
        let t = t.trim();
        if t.contains("...") {
            return Err("`...` (an ellipsis) is not supported: name every axis".into());
        }
        if let Some(c) = t.chars().find(|c| !c.is_ascii_alphabetic()) {
            return Err(format!(
                "`{c}` is not an index: indices are letters, terms separated by `,`"
            ));
        }
        Ok(t.chars().collect())
    };
    let inputs: Vec<Vec<char>> = ins.split(',').map(term).collect::<Result<_, _>>()?;
    for t in &inputs {
        if let Some(c) = repeated(t) {
            return Err(format!(
                "index `{c}` is repeated within one operand: diagonals and traces are not supported (`diag` takes a diagonal)"
            ));
        }
    }
    let count = |c: char| inputs.iter().flatten().filter(|&&x| x == c).count();
    let output = match out {
        Some(o) => {
            let o = term(o)?;
            if let Some(c) = repeated(&o) {
                return Err(format!("index `{c}` is repeated in the result"));
            }
            if let Some(c) = o.iter().find(|&&c| count(c) == 0) {
                return Err(format!("the result's index `{c}` is in no operand"));
            }
            o
        }
        None => {
            let mut once: Vec<char> = inputs.iter().flatten().copied().collect();
            once.retain(|&c| count(c) == 1);
            once.sort_unstable();
            once
        }
    };
    Ok(Spec { inputs, output })
}

fn repeated(t: &[char]) -> Option<char> {
    t.iter()
        .enumerate()
        .find(|(i, c)| t[..*i].contains(c))
        .map(|(_, &c)| c)
}

impl Spec {
    /// Every index once: the result's, then the summed ones in the order
    /// they first appear.
    fn all(&self) -> Vec<char> {
        let mut all = self.output.clone();
        for &c in self.inputs.iter().flatten() {
            if !all.contains(&c) {
                all.push(c);
            }
        }
        all
    }

    /// The length of every index in `all`, or a message naming the
    /// operands that disagree.
    fn lengths(&self, all: &[char], shapes: &[&Shape]) -> Result<Vec<usize>, (Vec<usize>, String)> {
        for (k, (t, s)) in self.inputs.iter().zip(shapes).enumerate() {
            if t.len() != s.rank() {
                let t: String = t.iter().collect();
                return Err((
                    vec![k],
                    format!(
                        "the subscripts `{t}` name {} axes of an operand of shape {s}",
                        t.len()
                    ),
                ));
            }
        }
        let mut out = Vec::new();
        for &c in all {
            let mut seen: Option<(usize, usize)> = None;
            for (k, (t, s)) in self.inputs.iter().zip(shapes).enumerate() {
                let Some(p) = t.iter().position(|&x| x == c) else {
                    continue;
                };
                let n = s.dims()[p];
                match seen {
                    Some((m, first)) if m != n => {
                        return Err((
                            vec![first, k],
                            format!("index `{c}` has length {m} in one operand and {n} in another"),
                        ))
                    }
                    _ => seen = Some((n, k)),
                }
            }
            out.push(seen.map_or(1, |(n, _)| n));
        }
        Ok(out)
    }
}

impl Checker<'_> {
    /// `einsum(subscripts, a, b, ...)`: the subscripts a string literal,
    /// then the operands, all positional.
    pub(crate) fn einsum_call(
        &mut self,
        args: &[ast::Arg],
        span: Span,
        env: Env<'_>,
    ) -> Option<TExpr> {
        let usage = "`einsum(\"ij,jk->ik\", a, b)`: the subscripts, then the operands";
        if let Some(n) = args.iter().find_map(|a| a.name.as_ref()) {
            self.error(
                Diagnostic::error(n.span, format!("`einsum` has no parameter `{}`", n.name))
                    .label(n.span, "unknown keyword")
                    .hint(usage),
            );
            return None;
        }
        let Some((first, rest)) = args.split_first() else {
            self.error(
                Diagnostic::error(span, "`einsum` needs subscripts and operands").hint(usage),
            );
            return None;
        };
        let ExprKind::Str(text) = &first.value.kind else {
            let at = first.value.span;
            self.error(
                Diagnostic::error(at, "the subscripts of `einsum` must be a string literal")
                    .label(at, "not a string")
                    .hint(usage),
            );
            return None;
        };
        let spec = match parse(text) {
            Ok(spec) => spec,
            Err(msg) => {
                let at = first.value.span;
                self.error(
                    Diagnostic::error(at, msg)
                        .label(at, "these subscripts")
                        .hint(usage),
                );
                return None;
            }
        };
        let xs: Vec<Option<TExpr>> = rest.iter().map(|a| self.expr(&a.value, env)).collect();
        let xs: Vec<TExpr> = xs.into_iter().collect::<Option<_>>()?;
        if xs.len() != spec.inputs.len() {
            self.error(
                Diagnostic::error(
                    span,
                    format!(
                        "the subscripts name {} operands; {} given",
                        spec.inputs.len(),
                        xs.len()
                    ),
                )
                .label(first.value.span, "the subscripts")
                .hint(usage),
            );
            return None;
        }
        let all = spec.all();
        let shapes: Vec<&Shape> = xs.iter().map(|x| &x.shape).collect();
        let lengths = match spec.lengths(&all, &shapes) {
            Ok(lengths) => lengths,
            Err((operands, msg)) => {
                let mut d = Diagnostic::error(span, msg).label(first.value.span, "the subscripts");
                for k in operands {
                    d = d.label(xs[k].span, format!("shape {}", xs[k].shape));
                }
                self.error(d);
                return None;
            }
        };
        self.contract(&spec, &all, &lengths, xs, span)
    }

    /// The operands aligned on the common axes `all`, multiplied, and the
    /// summed axes reduced.
    fn contract(
        &mut self,
        spec: &Spec,
        all: &[char],
        lengths: &[usize],
        xs: Vec<TExpr>,
        span: Span,
    ) -> Option<TExpr> {
        let mut product: Option<TExpr> = None;
        for (t, x) in spec.inputs.iter().zip(xs) {
            let x = align(t, all, lengths, x, span);
            product = Some(match product {
                None => x,
                Some(p) => self.prim(Prim::Mul, vec![p, x], span)?,
            });
        }
        let product = product.expect("at least one operand");
        let kept = spec.output.len();
        if all.len() == kept {
            return Some(product);
        }
        if kept == 0 {
            return self.prim(Prim::Sum, vec![product], span);
        }
        let mask = (kept..all.len()).fold(0u64, |m, a| m | 1 << a);
        let axes = Axes {
            mask,
            keepdims: false,
        };
        self.prim(Prim::ReduceAxes(Reduction::Sum, axes), vec![product], span)
    }
}

/// Operand `x`, indexed by `t`, as a tensor on the axes `all`: its axes
/// permuted into their order there, and length 1 on the axes it lacks
/// after its first (those before, broadcasting adds). A scalar stays a
/// scalar, which broadcasts as it is.
fn align(t: &[char], all: &[char], lengths: &[usize], x: TExpr, span: Span) -> TExpr {
    if t.is_empty() {
        return x;
    }
    let pos = |c: &char| all.iter().position(|a| a == c).expect("an index of all");
    let mut perm: Vec<usize> = (0..t.len()).collect();
    perm.sort_by_key(|&i| pos(&t[i]));
    let x = if perm.iter().enumerate().all(|(i, &p)| i == p) {
        x
    } else {
        let dims = perm.iter().map(|&p| x.shape.dims()[p]).collect();
        TExpr {
            kind: TKind::Permute(Box::new(x), perm),
            shape: Shape(dims),
            span,
        }
    };
    // From its first axis to the last of all: broadcasting puts in the
    // leading ones.
    let first = t.iter().map(pos).min().expect("a term with indices");
    let dims: Vec<usize> = (first..all.len())
        .map(|a| if t.contains(&all[a]) { lengths[a] } else { 1 })
        .collect();
    if dims == x.shape.dims() {
        return x;
    }
    TExpr {
        kind: TKind::Reshape(Box::new(x)),
        shape: Shape(dims),
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(inputs: &[&str], output: &str) -> Spec {
        Spec {
            inputs: inputs.iter().map(|t| t.chars().collect()).collect(),
            output: output.chars().collect(),
        }
    }

    #[test]
    fn subscripts_as_numpy() {
        assert_eq!(parse("ij,jk->ik").unwrap(), spec(&["ij", "jk"], "ik"));
        // Implicit: the indices written once, alphabetically.
        assert_eq!(parse("ij,jk").unwrap(), spec(&["ij", "jk"], "ik"));
        assert_eq!(parse("ba").unwrap(), spec(&["ba"], "ab"));
        assert_eq!(parse("i,i->").unwrap(), spec(&["i", "i"], ""));
        assert_eq!(parse(" ij , j -> i ").unwrap(), spec(&["ij", "j"], "i"));
        assert_eq!(spec(&["ij", "jk"], "ik").all(), vec!['i', 'k', 'j']);
    }

    #[test]
    fn subscripts_refused() {
        let err = |s: &str| parse(s).unwrap_err();
        assert!(err("ii->i").contains("repeated within one operand"));
        assert!(err("ij->ii").contains("repeated in the result"));
        assert!(err("ij->k").contains("`k` is in no operand"));
        assert!(err("...ij->ij").contains("ellipsis"));
        assert!(err("i1,j").contains("`1` is not an index"));
    }

    #[test]
    fn lengths_agree_across_operands() {
        let s = spec(&["ij", "jk"], "ik");
        let (a, b) = (Shape(vec![2, 3]), Shape(vec![3, 4]));
        assert_eq!(s.lengths(&s.all(), &[&a, &b]).unwrap(), vec![2, 4, 3]);
        let c = Shape(vec![4, 4]);
        let (k, msg) = s.lengths(&s.all(), &[&a, &c]).unwrap_err();
        assert_eq!(k, [0, 1]);
        assert!(
            msg.contains("`j` has length 3 in one operand and 4"),
            "{msg}"
        );
        let (k, msg) = s.lengths(&s.all(), &[&a, &Shape(vec![3])]).unwrap_err();
        assert_eq!(k, [1]);
        assert!(msg.contains("`jk` name 2 axes"), "{msg}");
    }
}
