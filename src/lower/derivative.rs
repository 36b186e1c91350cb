//! Derivatives in a loop body of values computed outside it.
//!
//! A loop body is a function of its own: a value of a function around it is
//! a *captured* parameter of the body, unrelated there to what it was
//! computed from. So before `grad(of, wrt)` or `jvp(of, wrt, direction)` is
//! taken in a body, where `wrt` is a value of a function around it, the
//! instructions between `wrt` and `of` are made the body's own: every value
//! `of` reads that depends on `wrt`, in the body or in a function around it,
//! is computed again in the body from the captured `wrt` (a loop among them
//! is copied whole: its body is a function of its own arguments), and the
//! derivative is taken of the recomputed `of`. The passes' hoisting moves
//! what does not depend on the step back out of the loop.
//!
//! A value carried by a loop between `wrt`'s function and the derivative
//! depends on `wrt` through the steps before this one, which are not in the
//! body: a derivative through it cannot be taken there, and is an error,
//! checked when that loop is complete (its carried values known).

use std::collections::{HashMap, HashSet};

use super::{Fv, Lowerer};
use crate::diagnostic::Diagnostic;
use crate::ir::{Function, Op, Value, ValueMap};
use crate::span::Span;

/// A derivative that read the `carry`-th value carried by a loop around it
/// (kept with that loop's body), taken as not depending on `wrt`: checked
/// when the loop is complete.
pub(super) struct Assumed {
    carry: usize,
    wrt: Fv,
    /// The derivative's span.
    span: Span,
}

impl Lowerer {
    /// The function at depth `e`, to read.
    fn at(&self, e: usize) -> &Function {
        if e == self.stack.len() {
            &self.f
        } else {
            &self.stack[e]
        }
    }

    /// How many values the body at depth `e` (from 1) carries: its first
    /// parameters; the others are captured.
    fn carries(&self, e: usize) -> usize {
        self.at(e).params.len() - self.bodies[e - 1].args.len()
    }

    /// What `v`, of the function at depth `e`, stands for one level out
    /// when it is a captured parameter of that body.
    fn captured(&self, e: usize, v: Value) -> Option<Value> {
        if e == 0 {
            return None;
        }
        let Op::Param(k) = self.at(e).inst(v).op else {
            return None;
        };
        let j = k.checked_sub(self.carries(e))?;
        Some(self.bodies[e - 1].args[j])
    }

    /// Where the value `fv` is computed: itself, or, for a captured
    /// parameter, what it captures, followed out.
    fn origin(&self, fv: Fv) -> Fv {
        let (mut e, mut v) = fv;
        while let Some(outer) = self.captured(e, v) {
            e -= 1;
            v = outer;
        }
        (e, v)
    }

    /// A carried parameter's index, for a parameter of the body at depth `e`
    /// that is not captured.
    fn carry_index(&self, e: usize, v: Value) -> Option<usize> {
        match self.at(e).inst(v).op {
            Op::Param(k) if e > 0 && k < self.carries(e) => Some(k),
            _ => None,
        }
    }

    /// Which values of the functions at depths `wrt.0..=to` depend on
    /// `wrt` (one map per depth, from `wrt.0`); a value carried by the body
    /// at depth `e` depends on it when `carry(e, k)` says so.
    fn depends_on(
        &self,
        wrt: Fv,
        to: usize,
        carry: &dyn Fn(usize, usize) -> bool,
    ) -> Vec<ValueMap<bool>> {
        let mut maps: Vec<ValueMap<bool>> = Vec::new();
        for e in wrt.0..=to {
            let f = self.at(e);
            let mut m = ValueMap::new(f, false);
            for (v, inst) in f.iter() {
                m[v] = if e == wrt.0 {
                    v == wrt.1 || (v > wrt.1 && inst.args.iter().any(|a| m[*a]))
                } else if let Some(outer) = self.captured(e, v) {
                    maps[e - 1 - wrt.0][outer]
                } else if let Some(k) = self.carry_index(e, v) {
                    carry(e, k)
                } else {
                    inst.args.iter().any(|a| m[*a])
                };
            }
            maps.push(m);
        }
        maps
    }

    /// `of`, a value of the body being built, computed again in it so that
    /// it depends on `wrt` (a value of the body) wherever the values it
    /// reads were computed: `of` itself when `wrt` is computed in the body.
    pub(super) fn through_captures(&mut self, of: Value, wrt: Value, span: Span) -> Value {
        let d = self.depth();
        let w = self.origin((d, wrt));
        if w.0 == d {
            return of;
        }
        let depends = self.depends_on(w, d, &|_, _| false);
        // What `of` reads, at each depth, found from `of` outwards; and the
        // carried values among them, whose dependence is checked later.
        let mut needed: Vec<HashSet<Value>> = vec![HashSet::new(); d + 1 - w.0];
        needed[d - w.0].insert(of);
        for e in (w.0..=d).rev() {
            let mut work: Vec<Value> = needed[e - w.0].iter().copied().collect();
            while let Some(v) = work.pop() {
                if e > w.0 {
                    if let Some(outer) = self.captured(e, v) {
                        needed[e - 1 - w.0].insert(outer);
                        continue;
                    }
                    if let Some(carry) = self.carry_index(e, v) {
                        self.bodies[e - 1].assumed.push(Assumed {
                            carry,
                            wrt: w,
                            span,
                        });
                        continue;
                    }
                }
                // In the bodies between, everything `of` reads is looked
                // through, to find the carried values it reads.
                if e == w.0 && !depends[0][v] {
                    continue;
                }
                for &a in &self.at(e).inst(v).args {
                    if needed[e - w.0].insert(a) {
                        work.push(a);
                    }
                }
            }
        }
        // The values that depend on `wrt`, computed again in the body, depth
        // by depth and in order; those that do not are captured as usual.
        let mut again: HashMap<Fv, Value> = HashMap::new();
        again.insert(w, wrt);
        for e in w.0..=d {
            let mut vs: Vec<Value> = needed[e - w.0]
                .iter()
                .copied()
                .filter(|&v| depends[e - w.0][v] && (e, v) != w)
                .collect();
            vs.sort();
            for v in vs {
                let new = match self.captured(e, v) {
                    Some(outer) if e > w.0 => again[&(e - 1, outer)],
                    _ => {
                        let inst = self.at(e).inst(v).clone();
                        let args = inst
                            .args
                            .iter()
                            .map(|&a| match again.get(&(e, a)) {
                                Some(&x) => x,
                                None => self.here((e, a)),
                            })
                            .collect();
                        self.f.push(inst.op, args, inst.span)
                    }
                };
                again.insert((e, v), new);
            }
        }
        again.get(&(d, of)).copied().unwrap_or(of)
    }

    /// When the loop whose body is being built is complete (its outputs
    /// pushed): an error for each derivative in it that read one of its
    /// carried values taken as not depending on `wrt`, when it does.
    pub(super) fn check_assumed(&mut self, loop_span: Span) {
        let d = self.depth();
        let assumed = std::mem::take(&mut self.bodies[d - 1].assumed);
        for a in assumed {
            let tainted = self.carried_depends(a.wrt);
            if !tainted[a.carry] {
                continue;
            }
            let f = self.at(d);
            let carry = f.params[a.carry].name.clone();
            let wrt = self
                .at(a.wrt.0)
                .inst(a.wrt.1)
                .name
                .clone()
                .unwrap_or_else(|| "its argument".into());
            self.errors.push(
                Diagnostic::error(
                    a.span,
                    format!(
                        "this derivative with respect to `{wrt}` reads `{carry}`, carried by the loop around it, which depends on `{wrt}` through the loop's earlier steps: it cannot be taken inside the loop"
                    ),
                )
                .label(a.span, "in this derivative")
                .label(loop_span, format!("`{carry}` is carried by this loop"))
                .hint(format!(
                    "take the derivative of the whole loop's value outside it, or of a value computed from `{wrt}` in this step"
                )),
            );
        }
    }

    /// Which values carried by the body being built depend on `wrt` (of a
    /// function around it): through their initial values or any step. The
    /// values carried by the loops between are taken as depending on it.
    fn carried_depends(&self, wrt: Fv) -> Vec<bool> {
        let d = self.depth();
        let inits = self.bodies[d - 1].inits.clone();
        let outer = self.depends_on(wrt, d - 1, &|e, _| e > wrt.0);
        let mut tainted: Vec<bool> = inits.iter().map(|&v| outer[d - 1 - wrt.0][v]).collect();
        loop {
            let t = tainted.clone();
            let maps = self.depends_on(wrt, d, &|e, k| if e == d { t[k] } else { e > wrt.0 });
            let body = &maps[d - wrt.0];
            let next: Vec<bool> = (0..tainted.len())
                .map(|k| tainted[k] || body[self.f.outputs[k].value])
                .collect();
            if next == tainted {
                return tainted;
            }
            tainted = next;
        }
    }
}
