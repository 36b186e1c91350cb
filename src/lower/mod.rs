//! Lowering: the typed program becomes one IR function of the parameters and
//! one example's inputs, returning the loss, the metrics and the outputs.
//!
//! User functions are inlined (their bodies were specialised by the checker).
//! Composite builtins become primitives (`mean` is a sum divided by a count,
//! `mse` a sum of squares), but the numerically delicate ones stay whole
//! instructions: sigmoid, softplus, logsumexp, log_softmax, softmax and
//! bce_logits, so that the interpreter, the autodiff and the backend give
//! each its stable formula.

use std::collections::HashMap;

use crate::diagnostic::Diagnostic;
use crate::ir::{
    broadcast, matmul, Binary, ConstData, Function, Loop, Op, Output, Reduce, Role, SliceAxis,
    Slot, Unary, Value, Window,
};
use crate::passes::splat_value;
use crate::shape::{Shape, Tensor};
use crate::span::Span;
use crate::types::builtins::{Axes, Reduction};
use crate::types::{Prim, Program, TExpr, TKind, TLoop};

mod derivative;
mod prim;

/// The lower bound of the logarithms in `bce`.
const BCE_LOG_FLOOR: f64 = -100.0;

/// Lowers a checked program. A derivative in the program (`grad`) that
/// cannot be taken is an error.
pub fn lower(p: &Program) -> Result<Function, Vec<Diagnostic>> {
    let slots = |v: Vec<(String, Shape)>| {
        v.into_iter()
            .map(|(name, shape)| Slot { name, shape })
            .collect::<Vec<_>>()
    };
    let mut l = Lowerer {
        f: Function::new(
            slots(
                p.params
                    .iter()
                    .map(|d| (d.name.clone(), d.shape.clone()))
                    .collect(),
            ),
            slots(
                p.inputs
                    .iter()
                    .map(|d| (d.name.clone(), d.shape.clone()))
                    .collect(),
            ),
        ),
        params: Vec::new(),
        inputs: Vec::new(),
        lets: Vec::new(),
        call_site: None,
        stack: Vec::new(),
        bodies: Vec::new(),
        locals: HashMap::new(),
        errors: Vec::new(),
    };
    for (i, d) in p.params.iter().enumerate() {
        let v = l.f.push(Op::Param(i), vec![], d.span);
        l.f.set_name(v, &d.name);
        l.params.push(v);
    }
    for (i, d) in p.inputs.iter().enumerate() {
        let v = l.f.push(Op::Input(i), vec![], d.span);
        l.f.set_name(v, &d.name);
        l.inputs.push(v);
    }
    for d in &p.lets {
        let vs = if d.parts.is_empty() {
            vec![l.expr(&d.value, &[])]
        } else {
            l.parts(&d.value, &[])
        };
        if d.parts.is_empty() {
            l.f.set_name(vs[0], &d.name);
        } else {
            for (v, name) in vs.iter().zip(&d.parts) {
                l.f.set_name(*v, name);
            }
        }
        l.lets.push(vs);
    }
    if let Some(loss) = &p.loss {
        let v = l.expr(loss, &[]);
        l.output(Role::Loss, "loss", v);
    }
    if let Some(r) = &p.residual {
        // The loss of a least-squares fit: 0.5 * sum(r * r) per example.
        let v = l.expr(&r.value, &[]);
        let span = r.span;
        let sq = l.bin(Binary::Mul, v, v, span);
        let sum = l.f.push(Op::Sum, vec![sq], span);
        let half = l.konst(0.5, span);
        let loss = l.bin(Binary::Mul, half, sum, span);
        l.output(Role::Loss, "loss", loss);
        l.output(Role::Output, &r.name, v);
    }
    for m in &p.metrics {
        let v = l.expr(&m.value, &[]);
        l.output(Role::Metric, &m.name, v);
    }
    for o in &p.outputs {
        let v = l.expr(&o.value, &[]);
        l.output(Role::Output, &o.name, v);
    }
    if l.errors.is_empty() {
        Ok(l.f)
    } else {
        Err(l.errors)
    }
}

/// A value of the function at a depth: 0 the program's, `d` the body of
/// the `d`-th loop being lowered, one inside another.
type Fv = (usize, Value);

/// A loop body being lowered: what it captures from the functions around
/// it.
#[derive(Default)]
struct Body {
    /// A value of an enclosing function, by where it is, to the value that
    /// stands for it in the body (a parameter, or a copied constant).
    map: HashMap<Fv, Value>,
    /// The captured values, in the function around the body: the loop's
    /// arguments after the carried values.
    args: Vec<Value>,
    /// The carried values' initial values, in the function around the body.
    inits: Vec<Value>,
    /// Derivatives in the body that read a carried value, taken as not
    /// depending on what they differentiate with respect to: checked when
    /// the body is complete.
    assumed: Vec<derivative::Assumed>,
}

struct Lowerer {
    /// The function being built: the program's, or a loop body's.
    f: Function,
    /// The functions around `f`, outermost first: `stack.len()` is the depth
    /// of `f`.
    stack: Vec<Function>,
    /// The bodies being lowered, one per depth from 1.
    bodies: Vec<Body>,
    params: Vec<Value>,
    inputs: Vec<Value>,
    /// Derivatives that could not be taken.
    errors: Vec<Diagnostic>,
    /// Each `let`'s value, or its parts for `let (a, b) = ...`.
    lets: Vec<Vec<Value>>,
    /// Every local lowered so far.
    locals: HashMap<usize, Fv>,
    /// While a user function's body is inlined: the span of the outermost
    /// call, which its instructions take, so that `gradc grad` tags them with
    /// the line that uses the function rather than the line that defines it.
    call_site: Option<Span>,
}

impl Lowerer {
    fn output(&mut self, role: Role, name: &str, value: Value) {
        self.f.outputs.push(Output {
            role,
            name: name.to_string(),
            value,
        });
    }

    fn konst(&mut self, x: f64, span: Span) -> Value {
        self.f
            .push(Op::Const(ConstData(Tensor::scalar(x))), vec![], span)
    }

    fn bin(&mut self, op: Binary, a: Value, b: Value, span: Span) -> Value {
        self.f.push(Op::Binary(op), vec![a, b], span)
    }

    fn un(&mut self, op: Unary, a: Value, span: Span) -> Value {
        self.f.push(Op::Unary(op), vec![a], span)
    }

    /// The depth of the function being built.
    fn depth(&self) -> usize {
        self.stack.len()
    }

    /// The function at depth `d`.
    fn func(&mut self, d: usize) -> &mut Function {
        if d == self.stack.len() {
            &mut self.f
        } else {
            &mut self.stack[d]
        }
    }

    /// `fv` as a value of the function being built: itself, or what stands
    /// for it in the loop bodies between (see [`Lowerer::capture`]).
    fn here(&mut self, fv: Fv) -> Value {
        let d = self.depth();
        if fv.0 == d {
            fv.1
        } else {
            self.capture(d, fv)
        }
    }

    /// `fv`, of a function around the body at depth `d`, in that body: a
    /// constant is copied in; another value becomes a captured parameter of
    /// the body (and of each body between).
    fn capture(&mut self, d: usize, fv: Fv) -> Value {
        if let Some(&v) = self.bodies[d - 1].map.get(&fv) {
            return v;
        }
        let outer = if fv.0 == d - 1 {
            fv.1
        } else {
            self.capture(d - 1, fv)
        };
        let inst = self.func(d - 1).inst(outer).clone();
        let v = if let Op::Const(_) = inst.op {
            self.func(d).push(inst.op.clone(), vec![], inst.span)
        } else {
            let f = self.func(d);
            let k = f.params.len();
            let name = inst.name.clone().unwrap_or_else(|| format!("c{k}"));
            f.params.push(Slot {
                name: name.clone(),
                shape: inst.shape.clone(),
            });
            let p = f.push(Op::Param(k), vec![], inst.span);
            f.set_name(p, &name);
            self.bodies[d - 1].args.push(outer);
            p
        };
        self.bodies[d - 1].map.insert(fv, v);
        v
    }

    /// The values of a tuple's parts (or the one value of a tensor).
    fn parts(&mut self, e: &TExpr, args: &[Fv]) -> Vec<Value> {
        if e.parts().is_none() {
            return vec![self.expr(e, args)];
        }
        let span = self.call_site.unwrap_or(e.span);
        match &e.kind {
            TKind::Tuple(es) => es.iter().map(|x| self.expr(x, args)).collect(),
            TKind::Loop(l) => self.lower_loop(l, args, span),
            TKind::Call {
                args: actual, body, ..
            } => self.inline_call(actual, body, args, span),
            TKind::Block(lets, value) => {
                self.block_lets(lets, args);
                self.parts(value, args)
            }
            _ => unreachable!("only these kinds are tuples"),
        }
    }

    /// A user function's body, specialised to `actual` (its arguments'
    /// values here), inlined: its value, or its tuple's parts.
    fn inline_call(
        &mut self,
        actual: &[TExpr],
        body: &TExpr,
        args: &[Fv],
        span: Span,
    ) -> Vec<Value> {
        let d = self.depth();
        let mut vs: Vec<Fv> = Vec::with_capacity(actual.len());
        for x in actual {
            let v = self.expr(x, args);
            vs.push((d, self.distinct(v, span)));
        }
        let outer = self.call_site.replace(self.call_site.unwrap_or(span));
        let out = self.parts(body, &vs);
        self.call_site = outer;
        out
    }

    /// A copy of an argument's value (a reshape to its own shape, which the
    /// simplifier removes), made at the call: each parameter of the
    /// function is then a value of its own, so that a derivative with
    /// respect to one of them is the partial derivative in that parameter,
    /// the others held fixed, however the caller computed them: not in
    /// every parameter that shares its value (`grad(f(p, q), q)` called
    /// with `p` and `q` both `start`), and not through another argument
    /// computed from it (`p` carried by a loop that started from `q`).
    fn distinct(&mut self, v: Value, span: Span) -> Value {
        let shape = self.f.shape(v).clone();
        self.f.push(Op::Reshape(shape), vec![v], span)
    }

    /// `x[i]` for a tensor of indices `i`: one `gather`, the rows `i`
    /// names in its row-major order, shaped as `shape` (the indices' shape,
    /// then a row's). Its gradient is a `scatter_add`: each row's cotangent
    /// added to the row it came from.
    fn gather(&mut self, x: Value, i: Value, shape: &crate::shape::Shape, span: Span) -> Value {
        let y = self.f.push(Op::Gather, vec![x, i], span);
        debug_assert_eq!(self.f.shape(y), shape);
        y
    }

    /// Binds a block's locals.
    fn block_lets(&mut self, lets: &[(Vec<usize>, TExpr)], args: &[Fv]) {
        let d = self.depth();
        for (ids, e) in lets {
            let vs = self.parts(e, args);
            for (id, v) in ids.iter().zip(vs) {
                self.locals.insert(*id, (d, v));
            }
        }
    }

    /// A loop: its body lowered into a function of its own (the carried
    /// values, then what it captures; the step), the loop instruction, and
    /// its results read out of the packed value: one per carried value, or
    /// the stacked values of a comprehension.
    fn lower_loop(&mut self, l: &TLoop, args: &[Fv], span: Span) -> Vec<Value> {
        let inits: Vec<Value> = match &l.init {
            Some(init) => self.parts(init, args),
            None => Vec::new(),
        };
        let slots = l
            .names
            .iter()
            .zip(&inits)
            .map(|(n, v)| Slot {
                name: n.clone(),
                shape: self.f.shape(*v).clone(),
            })
            .collect();
        let body = Function::new(
            slots,
            vec![Slot {
                name: l.var_name.clone(),
                shape: crate::shape::Shape::scalar(),
            }],
        );
        self.stack.push(std::mem::replace(&mut self.f, body));
        self.bodies.push(Body {
            inits: inits.clone(),
            ..Body::default()
        });
        let d = self.depth();
        for (k, (id, name)) in l.carries.iter().zip(&l.names).enumerate() {
            let p = self.f.push(Op::Param(k), vec![], span);
            self.f.set_name(p, name);
            self.locals.insert(*id, (d, p));
        }
        let mut t = self.f.push(Op::Input(0), vec![], span);
        self.f.set_name(t, &l.var_name);
        if l.start != 0 {
            let start = self.konst(l.start as f64, span);
            t = self.bin(Binary::Add, t, start, span);
        }
        self.locals.insert(l.var, (d, t));
        let outs = if l.stacked {
            vec![self.expr(&l.body, args)]
        } else {
            self.parts(&l.body, args)
        };
        for (k, v) in outs.into_iter().enumerate() {
            let name = l.names.get(k).cloned().unwrap_or_default();
            self.f.outputs.push(Output {
                role: Role::Output,
                name,
                value: v,
            });
        }
        self.check_assumed(span);
        let outer = self.stack.pop().expect("the function around the body");
        let body = std::mem::replace(&mut self.f, outer);
        let captured = self.bodies.pop().expect("the body's captures");
        let carries = inits.len();
        let mut largs = inits;
        largs.extend(captured.args);
        let lp = Loop {
            trips: l.trips,
            carries,
            body,
            recompute: false,
        };
        let (offsets, _) = lp.offsets();
        let parts = lp.parts();
        let y = self.f.push(Op::Loop(Box::new(lp)), largs, span);
        parts
            .into_iter()
            .zip(offsets)
            .map(|(shape, at)| {
                let flat = self.f.push(
                    Op::Slice(vec![SliceAxis::Range(at, at + shape.size())]),
                    vec![y],
                    span,
                );
                self.f.push(Op::Reshape(shape), vec![flat], span)
            })
            .collect()
    }

    /// `args` are the values of the innermost user-function call's arguments.
    fn expr(&mut self, e: &TExpr, args: &[Fv]) -> Value {
        let span = self.call_site.unwrap_or(e.span);
        match &e.kind {
            TKind::Const(t) => self.f.push(Op::Const(ConstData(t.clone())), vec![], span),
            TKind::Param(i) => self.here((0, self.params[*i])),
            TKind::Input(i) => self.here((0, self.inputs[*i])),
            TKind::Let(i) => self.here((0, self.lets[*i][0])),
            TKind::LetPart(i, k) => self.here((0, self.lets[*i][*k])),
            TKind::Arg(i) => self.here(args[*i]),
            TKind::Local(id) => {
                let fv = self.locals[id];
                self.here(fv)
            }
            TKind::Index(x, i) => {
                let (x, i) = (self.expr(x, args), self.expr(i, args));
                if self.f.shape(i).is_scalar() {
                    self.f.push(Op::Index, vec![x, i], span)
                } else {
                    self.gather(x, i, &e.shape, span)
                }
            }
            TKind::Grad(of, wrt) => {
                let (of, wrt) = (self.expr(of, args), self.expr(wrt, args));
                let of = self.through_captures(of, wrt, span);
                match crate::autodiff::nested::derivative(&mut self.f, of, wrt, span) {
                    Ok(d) => d,
                    Err(e) => {
                        // Reported after lowering; the zeros keep the
                        // function well formed until then.
                        self.errors.push(
                            Diagnostic::error(e.span, e.message).label(span, "in this derivative"),
                        );
                        let zeros = Tensor::zeros(self.f.shape(wrt).clone());
                        self.f.push(Op::Const(ConstData(zeros)), vec![], span)
                    }
                }
            }
            TKind::Jvp(of, wrt, direction) => {
                let (of, wrt) = (self.expr(of, args), self.expr(wrt, args));
                let direction = self.expr(direction, args);
                let of = self.through_captures(of, wrt, span);
                crate::autodiff::forward::jvp(&mut self.f, of, wrt, direction, span)
            }
            TKind::Tuple(_) => unreachable!("a tuple is lowered by parts"),
            TKind::Concat(es) => {
                let vs = es.iter().map(|x| self.expr(x, args)).collect();
                self.f.push(Op::Concat, vs, span)
            }
            TKind::Permute(x, perm) => {
                let v = self.expr(x, args);
                self.f.push(Op::Permute(perm.clone()), vec![v], span)
            }
            TKind::Reshape(x) => {
                let v = self.expr(x, args);
                self.f.push(Op::Reshape(e.shape.clone()), vec![v], span)
            }
            TKind::Block(lets, value) => {
                self.block_lets(lets, args);
                self.expr(value, args)
            }
            TKind::Loop(l) => self.lower_loop(l, args, span)[0],
            TKind::Pack(es) => {
                let vs = es.iter().map(|x| self.expr(x, args)).collect();
                self.f.push(Op::Pack, vs, span)
            }
            TKind::Slice(x, axes) => {
                let v = self.expr(x, args);
                self.f.push(Op::Slice(axes.clone()), vec![v], span)
            }
            TKind::If(c, t, f) => {
                let vs = [self.expr(c, args), self.expr(t, args), self.expr(f, args)];
                let vs = broadcast::operands(&mut self.f, &vs, span);
                self.f.push(Op::Select, vs, span)
            }
            TKind::Call {
                args: actual, body, ..
            } => self.inline_call(actual, body, args, span)[0],
            TKind::Prim(p, xs) => {
                let mut vs: Vec<Value> = xs.iter().map(|x| self.expr(x, args)).collect();
                if p.broadcasts() {
                    vs = broadcast::operands(&mut self.f, &vs, span);
                }
                self.prim(*p, &vs, span)
            }
        }
    }
}
