//! Reverse-mode automatic differentiation as a source transformation: an IR
//! function becomes another IR function that computes the same outputs and,
//! in the same straight line, the gradient of one scalar value with respect
//! to every parameter.
//!
//! The driver walks the forward instructions backwards from the loss, sums the
//! contributions each value received (its adjoint, the cotangent `dL/dv`), and
//! asks the rule table in [`rules`] for the vector-Jacobian product of the
//! instruction that defined it. Forward values are shared, never recomputed;
//! there is no tape. The output uses only differentiable operations, so the
//! transformation applies again (second derivatives, Hessians).
//!
//! The branch of an `if` that was not taken receives a zero cotangent that is
//! *masked*: every later multiplication of a masked cotangent by a local
//! derivative is guarded (`select(g, g * d, 0)`), so an inf or NaN in the
//! untaken branch (`log(0)`, `1/0`) cannot turn the zero into a NaN.

pub mod check;
pub mod checkpoint;
pub mod forward;
mod loops;
pub mod nested;
pub mod rules;

use crate::ir::printer::mnemonic;
use crate::ir::{Backward, Binary, ConstData, Function, Op, Output, Role, Value, ValueMap};
use crate::shape::{Shape, Tensor};
use crate::span::Span;

/// An error of differentiation, located at the instruction's source.
#[derive(Clone, Debug, PartialEq)]
pub struct AdError {
    pub message: String,
    pub span: Span,
}

/// A cotangent flowing into a value.
#[derive(Copy, Clone, Debug)]
pub struct Cot {
    pub value: Value,
    /// Zero wherever an `if` did not take this side: multiplications by local
    /// derivatives must keep those zeros exact.
    pub masked: bool,
}

/// Differentiates the loss of `f` with respect to every parameter. The result
/// returns everything `f` returns, plus one `grad` output per parameter.
pub fn grad(f: &Function) -> Result<Function, AdError> {
    let loss = f.output(&Role::Loss).ok_or_else(|| AdError {
        message: "the program has no loss to differentiate".into(),
        span: Span::default(),
    })?;
    differentiate(f, loss)
}

/// Differentiates the scalar value `of` with respect to every parameter.
pub fn differentiate(f: &Function, of: Value) -> Result<Function, AdError> {
    differentiate_from(f, of, &[], false, &[])
}

/// [`differentiate`], with the gradient of parameter `p` starting from
/// input `i` for every `(p, i)` of `start` (added first, before the
/// contributions of the parameter's uses, as an earlier part of a sum that
/// continues here: a reverse loop's running sum for a captured value). With
/// `masked`, the seed is a masked cotangent (see [`Cot`]): the product of a
/// loop whose cotangent is masked keeps its zeros exact. The parameters in
/// `frozen` are constants here (a loop's captured values that depend on no
/// parameter): their gradients are zeros, not computed.
fn differentiate_from(
    f: &Function,
    of: Value,
    start: &[(usize, usize)],
    masked: bool,
    frozen: &[usize],
) -> Result<Function, AdError> {
    assert!(f.shape(of).is_scalar(), "differentiate a scalar");
    // Loops keep what their reverse needs. That renumbers the values: `of`
    // is followed as an extra output. (A copy of `f` only if it changes:
    // the differentiation copies it again as the start of its result.)
    let mut f = std::borrow::Cow::Borrowed(f);
    let of = if f.insts().iter().any(|i| matches!(i.op, Op::Loop(_))) {
        let saving = f.to_mut();
        saving.outputs.push(Output {
            role: Role::Output,
            name: String::new(),
            value: of,
        });
        loops::save_states(saving)?;
        saving.outputs.pop().expect("the marker output").value
    } else {
        of
    };
    // The parameters and inputs the starting gradients name, as values.
    let mut starts = Vec::new();
    for &(p, i) in start {
        let find = |f: &Function, op: &Op| f.iter().find(|(_, x)| &x.op == op).map(|(v, _)| v);
        let param = match find(&f, &Op::Param(p)) {
            Some(v) => v,
            None => f.to_mut().push(Op::Param(p), vec![], Span::default()),
        };
        let input = match find(&f, &Op::Input(i)) {
            Some(v) => v,
            None => f.to_mut().push(Op::Input(i), vec![], Span::default()),
        };
        starts.push((param, input));
    }
    let f = &f;
    let mut ad = Ad::new(f, frozen);
    for &(param, input) in &starts {
        ad.adj[param].push(Cot {
            value: input,
            masked: false,
        });
    }
    let one = ad.konst(1.0, f.inst(of).span);
    ad.adj[of].push(Cot { value: one, masked });
    for v in f.values().take(of.index() + 1).rev() {
        if !ad.active[v] || ad.adj[v].is_empty() {
            continue;
        }
        let start = ad.f.len();
        let g = ad.adjoint(v);
        ad.f.mark_backward(start, Backward::Adjoint);
        ad.span = f.inst(v).span;
        let start = ad.f.len();
        rules::vjp(&mut ad, v, g)?;
        ad.f.mark_backward(start, Backward::Step(mnemonic(&f.inst(v).op)));
    }
    // Every parameter's gradient, summed while `ad.f` is the function: a
    // parameter the walk did not reach (defined after `of`, or on which
    // `of` does not depend) has only its starting gradient, summed here.
    let grads: Vec<Option<Value>> = (0..f.params.len())
        .map(|p| {
            let (v, _) = f.iter().find(|(_, inst)| inst.op == Op::Param(p))?;
            if ad.adj[v].is_empty() {
                return None;
            }
            Some(match ad.grads[v] {
                Some(g) => g,
                None => ad.adjoint(v).value,
            })
        })
        .collect();
    let mut out = std::mem::take(&mut ad.f);
    for (p, slot) in f.params.iter().enumerate() {
        let value = match grads[p] {
            Some(g) => g,
            None => crate::passes::splat(&mut out, 0.0, &slot.shape, Span::default()),
        };
        out.outputs.push(Output {
            role: Role::Grad(p),
            name: slot.name.clone(),
            value,
        });
    }
    Ok(out)
}

/// The state of one differentiation: the function being extended, and the
/// contributions each forward value has received so far.
pub struct Ad {
    pub f: Function,
    /// Per forward value: the cotangents it received, to be summed.
    adj: ValueMap<Vec<Cot>>,
    /// Per forward value: the summed adjoint, once computed.
    grads: ValueMap<Option<Value>>,
    /// Per forward value: whether it depends on a parameter.
    active: ValueMap<bool>,
    /// The span new instructions take: that of the forward instruction whose
    /// rule is running.
    pub span: Span,
}

impl Ad {
    fn new(f: &Function, frozen: &[usize]) -> Ad {
        let mut active = ValueMap::new(f, false);
        for (v, inst) in f.iter() {
            active[v] = matches!(inst.op, Op::Param(p) if !frozen.contains(&p))
                || inst.args.iter().any(|a| active[*a]);
        }
        Ad {
            f: f.clone(),
            adj: ValueMap::new(f, Vec::new()),
            grads: ValueMap::new(f, None),
            active,
            span: Span::default(),
        }
    }

    /// Sums the contributions to `v` into its adjoint, named `d<name>`.
    fn adjoint(&mut self, v: Value) -> Cot {
        let parts = std::mem::take(&mut self.adj[v]);
        let masked = parts.iter().any(|c| c.masked);
        let span = self.f.inst(v).span;
        let mut sum = parts[0].value;
        for c in &parts[1..] {
            sum = self
                .f
                .push(Op::Binary(Binary::Add), vec![sum, c.value], span);
        }
        // A constant adjoint (the seed 1) stays unnamed: CSE may merge it with
        // a forward constant, which must not read as an adjoint.
        let constant = matches!(self.f.inst(sum).op, Op::Const(_));
        if let (Some(name), false) = (self.f.inst(v).name.clone(), constant) {
            self.f.set_name(sum, &format!("d{name}"));
        }
        self.grads[v] = Some(sum);
        self.adj[v] = parts;
        Cot { value: sum, masked }
    }

    /// The contributions `v` has received so far, summed in order, and
    /// taken: the next contribution starts a new sum (after a loop's, whose
    /// reverse continues this one). `None` if there are none.
    pub fn take_partial(&mut self, v: Value) -> Option<Value> {
        let parts = std::mem::take(&mut self.adj[v]);
        let span = self.f.inst(v).span;
        let mut sum = parts.first()?.value;
        for c in &parts[1..] {
            sum = self
                .f
                .push(Op::Binary(Binary::Add), vec![sum, c.value], span);
        }
        Some(sum)
    }

    /// Whether the forward value depends on a parameter.
    pub fn is_active(&self, v: Value) -> bool {
        self.active.get(v).copied().unwrap_or(false)
    }

    /// Adds a cotangent contribution to the forward value `arg`, summing it
    /// down to a scalar when `arg` was broadcast.
    pub fn contribute(&mut self, arg: Value, c: Cot) {
        if !self.is_active(arg) {
            return;
        }
        let want = self.f.shape(arg).clone();
        let value = if self.f.shape(c.value) != &want {
            debug_assert!(want.is_scalar(), "only scalars broadcast");
            self.push(Op::Sum, vec![c.value])
        } else {
            c.value
        };
        self.adj[arg].push(Cot { value, ..c });
    }

    pub fn push(&mut self, op: Op, args: Vec<Value>) -> Value {
        self.f.push(op, args, self.span)
    }

    pub fn konst(&mut self, x: f64, span: Span) -> Value {
        self.f
            .push(Op::Const(ConstData(Tensor::scalar(x))), vec![], span)
    }

    pub fn c(&mut self, x: f64) -> Value {
        self.konst(x, self.span)
    }

    pub fn bin(&mut self, op: Binary, a: Value, b: Value) -> Value {
        self.push(Op::Binary(op), vec![a, b])
    }

    /// `g * d`, where `d` is a local derivative. A masked cotangent keeps its
    /// zeros even where `d` is infinite or NaN.
    pub fn scale(&mut self, g: Cot, d: Value) -> Cot {
        let value = self.bin(Binary::Mul, g.value, d);
        let safe = self.finite(d);
        self.guard(g, value, safe)
    }

    /// `g / d`, guarded like [`Ad::scale`].
    pub fn divide(&mut self, g: Cot, d: Value) -> Cot {
        let value = self.bin(Binary::Div, g.value, d);
        let safe = self.finite(d) && self.nonzero_const(d);
        self.guard(g, value, safe)
    }

    /// Whether `v` is finite whatever the inputs: a finite constant, or a
    /// comparison (0 or 1).
    fn finite(&self, v: Value) -> bool {
        match &self.f.inst(v).op {
            Op::Const(c) => c.0.data.iter().all(|x| x.is_finite()),
            Op::Binary(b) => matches!(
                b,
                Binary::Eq | Binary::Ne | Binary::Lt | Binary::Le | Binary::Gt | Binary::Ge
            ),
            Op::OneHot(_) => true,
            _ => false,
        }
    }

    fn nonzero_const(&self, v: Value) -> bool {
        matches!(&self.f.inst(v).op, Op::Const(c) if c.0.data.iter().all(|&x| x != 0.0))
    }

    /// Keeps the zeros of a masked cotangent exact, unless `safe` says the
    /// product cannot be inf or NaN where the cotangent is zero.
    fn guard(&mut self, g: Cot, value: Value, safe: bool) -> Cot {
        if !g.masked || safe {
            return Cot {
                value,
                masked: g.masked,
            };
        }
        let zero = self.c(0.0);
        let value = self.push(Op::Select, vec![g.value, value, zero]);
        Cot {
            value,
            masked: true,
        }
    }

    /// A cotangent computed linearly from `g`, so zero where `g` is.
    pub fn like(&self, g: Cot, value: Value) -> Cot {
        Cot {
            value,
            masked: g.masked,
        }
    }

    pub fn shape(&self, v: Value) -> Shape {
        self.f.shape(v).clone()
    }
}

/// The second-derivative programs of the loss: one function per element of
/// every parameter (declaration order, row-major), whose `grad` outputs are
/// that row of the Hessian. The transformation applied to its own output.
pub fn hessian_rows(f: &Function) -> Result<Vec<Function>, AdError> {
    let mut g = grad(f)?;
    crate::passes::simplify(&mut g);
    let mut rows = Vec::new();
    for (p, slot) in f.params.iter().enumerate() {
        let gp = g.output(&Role::Grad(p)).expect("a gradient per parameter");
        for k in 0..slot.shape.size() {
            let mut h = g.clone();
            let elem = if slot.shape.is_scalar() {
                gp
            } else {
                let strides = slot.shape.strides();
                let axes = strides
                    .iter()
                    .zip(slot.shape.dims())
                    .map(|(s, n)| crate::ir::SliceAxis::At((k / s) % n))
                    .collect();
                h.push(Op::Slice(axes), vec![gp], Span::default())
            };
            h.outputs.retain(|o| o.role == Role::Loss);
            let mut row = differentiate(&h, elem)?;
            crate::passes::simplify(&mut row);
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The Hessian of the loss at the given point, parameters flattened in
/// declaration order, evaluated by the interpreter: a convenience for tests
/// and examples, with errors as messages. The driver's
/// [`crate::driver::hessian()`] runs either backend and places errors in the
/// source.
pub fn hessian(
    f: &Function,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Result<Vec<Vec<f64>>, String> {
    let rows = hessian_rows(f).map_err(|e| e.message)?;
    rows.iter()
        .map(|row| {
            hessian_row(&crate::eval::Evaluator::Interp(row.clone()), params, inputs)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// One row of the Hessian at a point: the `grad` outputs of a program from
/// [`hessian_rows`], flattened in declaration order.
pub fn hessian_row(
    row: &crate::eval::Evaluator,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Result<Vec<f64>, crate::ir::RunError> {
    let (_, grads) = check::gradients_with(row, params, inputs)?;
    Ok(grads.into_iter().flat_map(|t| t.data).collect())
}
