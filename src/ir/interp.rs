//! The reference interpreter: every operation in plain f64, small and obviously
//! correct. It is the oracle the passes, the autodiff and the JIT are checked
//! against, and constant folding evaluates through [`eval_op`], so the
//! semantics of an operation are written down exactly once, here.
//!
//! Conventions: `max` and `min` (elementwise and `reduce_max`) propagate NaN
//! and order -0 below +0, like Cranelift's `fmax`/`fmin`; `select` treats a
//! NaN condition as true (it is `!= 0`) and never reads the untaken side;
//! sums run left to right in row-major order.

use crate::ir::math;
use crate::ir::verify::result_shape;
use crate::ir::{
    axes, Binary, Fault, Function, Loop, Op, Output, Reduce, RunError, SliceAxis, Slot, Unary,
};
use crate::shape::{Shape, Tensor};

pub mod window;

/// Runs `f` on one example and returns the value of every instruction,
/// indexed by [`crate::ir::Value`]. A `one_hot` with a bad class is a
/// [`RunError::Fault`] at that instruction; the first in instruction order
/// is reported.
pub fn run(f: &Function, params: &[Tensor], inputs: &[Tensor]) -> Result<Vec<Tensor>, RunError> {
    check_slots("parameter", &f.params, params)?;
    check_slots("input", &f.inputs, inputs)?;
    let misuse = |m: String| RunError::Misuse(m);
    let mut values: Vec<Tensor> = Vec::with_capacity(f.insts.len());
    for (v, inst) in f.values().zip(&f.insts) {
        let i = v.index();
        let value = match inst.op {
            Op::Param(k) => params
                .get(k)
                .cloned()
                .ok_or_else(|| misuse(format!("%{i}: no parameter {k}")))?,
            Op::Input(k) => inputs
                .get(k)
                .cloned()
                .ok_or_else(|| misuse(format!("%{i}: no input {k}")))?,
            // Every other operation is evaluated by `eval_op`, whose match
            // is exhaustive.
            _ => {
                let mut args = Vec::with_capacity(inst.args.len());
                for a in &inst.args {
                    let t = values.get(a.index()).ok_or_else(|| {
                        misuse(format!("%{i} uses %{} before it is defined", a.index()))
                    })?;
                    args.push(t);
                }
                eval_op(&inst.op, &args).map_err(|e| match e {
                    OpError::Fault(fault) => RunError::fault(v, inst.span, fault),
                    // A fault in a loop's body is the loop's, at the body
                    // instruction's place in the source.
                    OpError::Body(RunError::Fault { span, fault, .. }) => {
                        RunError::fault(v, span, fault)
                    }
                    OpError::Body(RunError::Misuse(m)) => misuse(format!("%{i}: in a loop: {m}")),
                    OpError::Invalid(m) => misuse(format!("%{i}: {m}")),
                })?
            }
        };
        if value.shape != inst.shape {
            return Err(misuse(format!(
                "%{i} is recorded as {} but evaluates to {}",
                inst.shape, value.shape
            )));
        }
        values.push(value);
    }
    Ok(values)
}

/// Runs `f` and returns its outputs, in order.
pub fn run_outputs(
    f: &Function,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Result<Vec<(Output, Tensor)>, RunError> {
    let values = run(f, params, inputs)?;
    f.outputs
        .iter()
        .map(|o| {
            let t = values
                .get(o.value.index())
                .ok_or_else(|| RunError::Misuse(format!("output {} is undefined", o.name)))?;
            Ok((o.clone(), t.clone()))
        })
        .collect()
}

/// Checks that `given` holds one tensor of the right shape per slot; the
/// message names the slot (`input x has shape [3] but ...`).
pub fn check_slots(kind: &str, slots: &[Slot], given: &[Tensor]) -> Result<(), RunError> {
    if slots.len() != given.len() {
        return Err(RunError::Misuse(format!(
            "expected {} {kind} values, got {}",
            slots.len(),
            given.len()
        )));
    }
    for (s, t) in slots.iter().zip(given) {
        if t.shape != s.shape || t.data.len() != s.shape.size() {
            return Err(RunError::Misuse(format!(
                "{kind} {} has shape {} but the function expects {}",
                s.name, t.shape, s.shape
            )));
        }
    }
    Ok(())
}

/// Why [`eval_op`] gives no value.
#[derive(Clone, Debug, PartialEq)]
pub enum OpError {
    /// The program's fault on these values (a `one_hot` class out of range).
    Fault(Fault),
    /// A loop's body failed: a fault at one of its instructions (whose span
    /// is the source's), or a misuse.
    Body(RunError),
    /// The arguments do not fit the operation (a shape, a tensor that does
    /// not hold its shape's numbers), or it is a `param` or `input`, which
    /// has no value outside a run.
    Invalid(String),
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::Fault(fault) => write!(f, "{fault}"),
            OpError::Body(e) => write!(f, "{e}"),
            OpError::Invalid(m) => write!(f, "{m}"),
        }
    }
}

/// Applies one operation to argument values. Errors on ill-shaped arguments
/// and on `param`/`input` (which have no arguments to compute from), and
/// faults on a `one_hot` class that is not an integer in range.
pub fn eval_op(op: &Op, args: &[&Tensor]) -> Result<Tensor, OpError> {
    if let Some(t) = args.iter().find(|t| t.data.len() != t.shape.size()) {
        return Err(OpError::Invalid(format!(
            "tensor of shape {} holds {} numbers",
            t.shape,
            t.data.len()
        )));
    }
    if let Op::Param(_) | Op::Input(_) = op {
        return Err(OpError::Invalid(
            "a param or input has no value outside a run".to_string(),
        ));
    }
    // Past this check every index below is in bounds.
    let shapes: Vec<&Shape> = args.iter().map(|t| &t.shape).collect();
    let shape = result_shape(&Function::default(), op, &shapes).map_err(OpError::Invalid)?;
    let n = shape.size();
    let data: Vec<f64> = match op {
        Op::Param(_) | Op::Input(_) => unreachable!("handled above"),
        Op::Const(c) => c.0.data.clone(),
        Op::Unary(u) => args[0].data.iter().map(|&x| unary(*u, x)).collect(),
        Op::Binary(b) => (0..n)
            .map(|i| binary(*b, at(args[0], i), at(args[1], i)))
            .collect(),
        Op::Select => (0..n)
            .map(|i| {
                if at(args[0], i) != 0.0 {
                    at(args[1], i)
                } else {
                    at(args[2], i)
                }
            })
            .collect(),
        Op::MatMul => matmul(args[0], args[1]),
        Op::Outer => {
            let (a, b) = (&args[0].data, &args[1].data);
            a.iter()
                .flat_map(|&x| b.iter().map(move |&y| x * y))
                .collect()
        }
        Op::Transpose => {
            let (rows, cols) = (args[0].shape.dims()[0], args[0].shape.dims()[1]);
            let a = &args[0].data;
            (0..cols)
                .flat_map(|j| (0..rows).map(move |i| a[i * cols + j]))
                .collect()
        }
        Op::Sum => vec![sum(&args[0].data)],
        Op::ReduceMax => vec![args[0]
            .data
            .iter()
            .fold(f64::NEG_INFINITY, |m, &x| max(m, x))],
        Op::Norm => vec![norm(&args[0].data)],
        Op::LogSumExp => vec![logsumexp(&args[0].data)],
        Op::ReduceAxes(kind, axes) => {
            let (outer, inner) = axes::offsets(&args[0].shape, axes);
            let x = &args[0].data;
            outer
                .iter()
                .map(|&o| {
                    let s: Vec<f64> = inner.iter().map(|&r| x[o + r]).collect();
                    match kind {
                        Reduce::Sum => s.iter().sum(),
                        Reduce::Max => s.iter().fold(f64::NEG_INFINITY, |m, &x| max(m, x)),
                        Reduce::Norm => norm(&s),
                        Reduce::LogSumExp => logsumexp(&s),
                    }
                })
                .collect()
        }
        Op::BroadcastAxes(axes, into) => {
            let (outer, inner) = axes::offsets(into, axes);
            let mut out = vec![0.0; n];
            for (&o, &x) in outer.iter().zip(&args[0].data) {
                for &r in &inner {
                    out[o + r] = x;
                }
            }
            out
        }
        Op::Softmax(axis) => along(args[0], *axis, softmax),
        Op::LogSoftmax(axis) => along(args[0], *axis, |s| {
            let l = logsumexp(s);
            s.iter().map(|&x| x - l).collect()
        }),
        Op::ArgMax(axis) => {
            let (outer, inner) = axes::offsets(&args[0].shape, &[*axis]);
            let x = &args[0].data;
            outer
                .iter()
                .map(|&o| {
                    let s: Vec<f64> = inner.iter().map(|&r| x[o + r]).collect();
                    argmax(&s) as f64
                })
                .collect()
        }
        Op::Broadcast(_) => vec![args[0].data[0]; n],
        Op::Slice(axes) => slice_offsets(&args[0].shape, axes)
            .into_iter()
            .map(|o| args[0].data[o])
            .collect(),
        Op::Unslice(axes, into) => {
            let mut out = vec![0.0; n];
            for (&x, o) in args[0].data.iter().zip(slice_offsets(into, axes)) {
                out[o] = x;
            }
            out
        }
        Op::Pack => args.iter().flat_map(|t| t.data.iter().copied()).collect(),
        Op::OneHot(classes) => one_hot(args[0].data[0], *classes).map_err(OpError::Fault)?,
        Op::Index => {
            let (x, row) = (args[0], n);
            let i = row_index(args[1].data[0], x.shape.dims()[0])?;
            x.data[i * row..(i + 1) * row].to_vec()
        }
        Op::IndexAdd => {
            let (acc, g) = (args[0], args[1]);
            let row = g.data.len();
            let i = row_index(args[2].data[0], acc.shape.dims()[0])?;
            let mut out = acc.data.clone();
            for (o, &x) in out[i * row..(i + 1) * row].iter_mut().zip(&g.data) {
                *o += x;
            }
            out
        }
        Op::IndexSet => {
            let (x, v) = (args[0], args[1]);
            let row = v.data.len();
            let i = row_index(args[2].data[0], x.shape.dims()[0])?;
            let mut out = x.data.clone();
            out[i * row..(i + 1) * row].copy_from_slice(&v.data);
            out
        }
        Op::Gather => gather(args[0], args[1])?,
        Op::ScatterAdd => scatter_add(args[0], args[1], args[2])?,
        Op::Reshape(_) => args[0].data.clone(),
        Op::Permute(perm) => permute(args[0], perm, &shape),
        Op::Concat => args.iter().flat_map(|t| t.data.iter().copied()).collect(),
        Op::Window(w) => {
            let geo = w.geometry(&shapes).map_err(OpError::Invalid)?;
            let data: Vec<&[f64]> = args.iter().map(|t| t.data.as_slice()).collect();
            window::eval(*w, &geo, &data)
        }
        Op::Loop(l) => run_loop(l, args)?,
    };
    Ok(Tensor::new(shape, data))
}

/// `x` with its axes reordered: element `out[i0, i1, ...]` is `x` at the
/// index whose axis `perm[k]` is `ik`; the result in row-major order.
fn permute(x: &Tensor, perm: &[usize], out: &Shape) -> Vec<f64> {
    let strides = x.shape.strides();
    let dims = out.dims();
    let mut idx = vec![0usize; dims.len()];
    let mut data = Vec::with_capacity(out.size());
    for _ in 0..out.size() {
        let at: usize = idx.iter().zip(perm).map(|(&i, &p)| i * strides[p]).sum();
        data.push(x.data[at]);
        for k in (0..dims.len()).rev() {
            idx[k] += 1;
            if idx[k] < dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    data
}

/// `x[i]` for a tensor of indices: the rows `i` names, in its row-major
/// order; the first index that is not an integer in range is the fault.
fn gather(x: &Tensor, i: &Tensor) -> Result<Vec<f64>, OpError> {
    let (n, row) = x.shape.rows();
    let mut out = Vec::with_capacity(i.data.len() * row);
    for &at in &i.data {
        let k = row_index(at, n)?;
        out.extend_from_slice(&x.data[k * row..(k + 1) * row]);
    }
    Ok(out)
}

/// `acc` with row `p` of `g` added to its row `i[p]`, for each position
/// `p` of `i` in row-major order (duplicate indices add in that order).
fn scatter_add(acc: &Tensor, g: &Tensor, i: &Tensor) -> Result<Vec<f64>, OpError> {
    let (n, row) = acc.shape.rows();
    let mut out = acc.data.clone();
    for (p, &at) in i.data.iter().enumerate() {
        let k = row_index(at, n)?;
        let dst = &mut out[k * row..(k + 1) * row];
        for (o, &x) in dst.iter_mut().zip(&g.data[p * row..(p + 1) * row]) {
            *o += x;
        }
    }
    Ok(out)
}

/// The row an index selects on an axis of `len`, or the fault.
fn row_index(index: f64, len: usize) -> Result<usize, OpError> {
    match Fault::index(index, len) {
        Some(fault) => Err(OpError::Fault(fault)),
        None => Ok(index as usize),
    }
}

/// A loop run: the body once per step, on the carried values of the step
/// before and the captured ones; the results packed (see
/// [`crate::ir::Loop`]).
fn run_loop(l: &Loop, args: &[&Tensor]) -> Result<Vec<f64>, OpError> {
    let mut params: Vec<Tensor> = args.iter().map(|t| (*t).clone()).collect();
    let stacked = l.body.outputs.len() - l.carries;
    let mut rows: Vec<Vec<f64>> = vec![Vec::new(); stacked];
    for t in 0..l.trips {
        let values = run(&l.body, &params, &[Tensor::scalar(t as f64)]).map_err(OpError::Body)?;
        for (k, o) in l.body.outputs.iter().enumerate() {
            let v = &values[o.value.index()];
            if k < l.carries {
                params[k] = v.clone();
            } else {
                rows[k - l.carries].extend_from_slice(&v.data);
            }
        }
    }
    let mut out: Vec<f64> = params[..l.carries]
        .iter()
        .flat_map(|t| t.data.iter().copied())
        .collect();
    for r in rows {
        out.extend(r);
    }
    Ok(out)
}

/// Element `i` of `t`, a scalar standing for every element.
fn at(t: &Tensor, i: usize) -> f64 {
    if t.shape.is_scalar() {
        t.data[0]
    } else {
        t.data[i]
    }
}

pub fn unary(u: Unary, x: f64) -> f64 {
    match u {
        Unary::Neg => -x,
        Unary::Exp => math::exp(x),
        Unary::Log => x.ln(),
        Unary::Sqrt => x.sqrt(),
        Unary::Abs => x.abs(),
        Unary::Sign => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else if x == 0.0 {
                0.0
            } else {
                x
            }
        }
        Unary::Sin => x.sin(),
        Unary::Cos => x.cos(),
        Unary::Tanh => math::tanh(x),
        Unary::Sigmoid => math::sigmoid(x),
        Unary::Relu => relu(x),
        Unary::Softplus => relu(x) + math::exp(-x.abs()).ln_1p(),
        Unary::Log1p => x.ln_1p(),
        Unary::Expm1 => x.exp_m1(),
        Unary::Erf => libm::erf(x),
        Unary::Floor => x.floor(),
        Unary::Round => x.round_ties_even(),
    }
}

pub fn binary(b: Binary, x: f64, y: f64) -> f64 {
    let truth = |c: bool| if c { 1.0 } else { 0.0 };
    match b {
        Binary::Add => x + y,
        Binary::Sub => x - y,
        Binary::Mul => x * y,
        Binary::Div => x / y,
        Binary::Pow => x.powf(y),
        Binary::Max => max(x, y),
        Binary::Min => min(x, y),
        Binary::Eq => truth(x == y),
        Binary::Ne => truth(x != y),
        Binary::Lt => truth(x < y),
        Binary::Le => truth(x <= y),
        Binary::Gt => truth(x > y),
        Binary::Ge => truth(x >= y),
        Binary::BceLogits => relu(x) - x * y + math::exp(-x.abs()).ln_1p(),
    }
}

/// `max(x, 0)`, keeping NaN.
fn relu(x: f64) -> f64 {
    if x > 0.0 || x.is_nan() {
        x
    } else {
        0.0
    }
}

/// NaN if either is NaN; +0 above -0.
fn max(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x > y || (x == y && x.is_sign_positive()) {
        x
    } else {
        y
    }
}

/// NaN if either is NaN; -0 below +0.
fn min(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x < y || (x == y && x.is_sign_negative()) {
        x
    } else {
        y
    }
}

/// The four forms of `@`, with a vector on the left read as one row and a
/// vector on the right as one column.
fn matmul(a: &Tensor, b: &Tensor) -> Vec<f64> {
    let (m, k) = match a.shape.dims() {
        [m, k] => (*m, *k),
        d => (1, d[0]),
    };
    let n = match b.shape.dims() {
        [_, n] => *n,
        _ => 1,
    };
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| a.data[i * k + p] * b.data[p * n + j]).sum();
        }
    }
    out
}

/// The elements of a block of a `sum` (see [`sum`]).
pub const SUM_BLOCK: usize = 1024;

/// The sum of `x`: in blocks of [`SUM_BLOCK`] elements (the last may be
/// shorter), each block's elements added in order from -0, then the
/// blocks' sums added in order from -0. Of [`SUM_BLOCK`] elements or fewer,
/// that is the elements added in order. The blocks' chains of additions
/// are independent, so the JIT adds up two blocks side by side and shares
/// a large sum's blocks out to threads, with these bits at any number of
/// them.
pub fn sum(x: &[f64]) -> f64 {
    x.chunks(SUM_BLOCK).map(|b| b.iter().sum::<f64>()).sum()
}

/// Euclidean norm, scaled by the largest magnitude so that squaring neither
/// overflows nor underflows.
fn norm(x: &[f64]) -> f64 {
    let scale = x.iter().fold(0.0, |m, &v| max(m, v.abs()));
    if scale == 0.0 || !scale.is_finite() {
        return scale;
    }
    scale * x.iter().map(|&v| (v / scale).powi(2)).sum::<f64>().sqrt()
}

/// `log(sum(exp(x)))` with the maximum shifted out; all `-inf` (or nothing)
/// gives `-inf`.
fn logsumexp(x: &[f64]) -> f64 {
    let m = x.iter().fold(f64::NEG_INFINITY, |m, &v| max(m, v));
    if !m.is_finite() {
        return m;
    }
    m + x.iter().map(|&v| math::exp(v - m)).sum::<f64>().ln()
}

/// `f` applied to every slice of `t` along `axis`, each result put back
/// in the slice's place.
fn along(t: &Tensor, axis: usize, f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
    let (outer, inner) = axes::offsets(&t.shape, &[axis]);
    let mut out = vec![0.0; t.data.len()];
    for &o in &outer {
        let s: Vec<f64> = inner.iter().map(|&r| t.data[o + r]).collect();
        for (&r, y) in inner.iter().zip(f(&s)) {
            out[o + r] = y;
        }
    }
    out
}

/// The index of the first largest element (0 of nothing): an element is
/// taken when it is above the best so far, or a NaN when the best is not
/// (so the first NaN wins, as NumPy's `argmax`).
pub fn argmax(x: &[f64]) -> usize {
    let (mut at, mut best) = (0, f64::NEG_INFINITY);
    for (i, &v) in x.iter().enumerate() {
        if v > best || (v.is_nan() && !best.is_nan()) {
            at = i;
            best = v;
        }
    }
    at
}

fn softmax(x: &[f64]) -> Vec<f64> {
    let m = x.iter().fold(f64::NEG_INFINITY, |m, &v| max(m, v));
    let e: Vec<f64> = x.iter().map(|&v| math::exp(v - m)).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|&v| v / s).collect()
}

/// The row-major offsets into a tensor of shape `s` that `Slice(axes)` reads,
/// in the order of the result's elements.
pub fn slice_offsets(s: &Shape, axes: &[SliceAxis]) -> Vec<usize> {
    let mut offsets = vec![0];
    for (ax, stride) in axes.iter().zip(s.strides()) {
        offsets = match *ax {
            SliceAxis::At(i) => offsets.iter().map(|o| o + i * stride).collect(),
            SliceAxis::Range(lo, hi) => offsets
                .iter()
                .flat_map(|o| (lo..hi).map(move |j| o + j * stride))
                .collect(),
        };
    }
    offsets
}

fn one_hot(c: f64, classes: usize) -> Result<Vec<f64>, Fault> {
    if let Some(fault) = Fault::one_hot(c, classes) {
        return Err(fault);
    }
    let mut v = vec![0.0; classes];
    v[c as usize] = 1.0;
    Ok(v)
}

#[cfg(test)]
mod tests;
