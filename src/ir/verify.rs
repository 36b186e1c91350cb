//! Shape rules of every operation, and the verifier: SSA order, arities and
//! shapes of a whole function.

use crate::ir::{axes, Function, Loop, Op, SliceAxis, Unary, Value};
use crate::shape::Shape;

/// The shape of `op` applied to arguments of the given shapes, or why not.
pub fn result_shape(f: &Function, op: &Op, args: &[&Shape]) -> Result<Shape, String> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("takes {n} arguments, got {}", args.len()))
        }
    };
    match op {
        Op::Param(i) => {
            arity(0)?;
            f.params
                .get(*i)
                .map(|s| s.shape.clone())
                .ok_or_else(|| format!("no parameter {i}"))
        }
        Op::Input(i) => {
            arity(0)?;
            f.inputs
                .get(*i)
                .map(|s| s.shape.clone())
                .ok_or_else(|| format!("no input {i}"))
        }
        Op::Const(c) => {
            arity(0)?;
            Ok(c.0.shape.clone())
        }
        Op::Unary(u) => {
            arity(1)?;
            let _: Unary = *u;
            Ok(args[0].clone())
        }
        Op::Binary(_) => {
            arity(2)?;
            broadcast(args[0], args[1])
        }
        Op::Select => {
            arity(3)?;
            let ab = broadcast(args[1], args[2])?;
            broadcast(args[0], &ab)
        }
        Op::MatMul => {
            arity(2)?;
            matmul(args[0], args[1])
        }
        Op::Outer => {
            arity(2)?;
            match (args[0].dims(), args[1].dims()) {
                ([m], [n]) => Ok(Shape::matrix(*m, *n)),
                _ => Err(format!("outer of {} and {}", args[0], args[1])),
            }
        }
        Op::Transpose => {
            arity(1)?;
            match args[0].dims() {
                [m, n] => Ok(Shape::matrix(*n, *m)),
                _ => Err(format!("transpose of {}", args[0])),
            }
        }
        Op::Sum | Op::ReduceMax | Op::Norm | Op::LogSumExp => {
            arity(1)?;
            Ok(Shape::scalar())
        }
        Op::ReduceAxes(_, axes) => {
            arity(1)?;
            if axes::valid(axes, args[0].rank()) {
                Ok(Shape(axes::kept(args[0], axes)))
            } else {
                Err(format!("reduction of {} along axes {axes:?}", args[0]))
            }
        }
        Op::BroadcastAxes(axes, shape) => {
            arity(1)?;
            if axes::valid(axes, shape.rank()) && args[0].dims() == axes::kept(shape, axes) {
                Ok(shape.clone())
            } else {
                Err(format!(
                    "broadcast of {} along axes {axes:?} to {shape}",
                    args[0]
                ))
            }
        }
        Op::Softmax(axis) | Op::LogSoftmax(axis) => {
            arity(1)?;
            if *axis < args[0].rank() {
                Ok(args[0].clone())
            } else {
                Err(format!("softmax of {} along axis {axis}", args[0]))
            }
        }
        Op::ArgMax(axis) => {
            arity(1)?;
            if *axis < args[0].rank() {
                Ok(Shape(axes::kept(args[0], &[*axis])))
            } else {
                Err(format!("argmax of {} along axis {axis}", args[0]))
            }
        }
        Op::Broadcast(shape) => {
            arity(1)?;
            if args[0].is_scalar() {
                Ok(shape.clone())
            } else {
                Err(format!("broadcast of {}, not a scalar", args[0]))
            }
        }
        Op::Slice(axes) => {
            arity(1)?;
            slice_shape(args[0], axes)
        }
        Op::Unslice(axes, shape) => {
            arity(1)?;
            let read = slice_shape(shape, axes)?;
            if &read == args[0] {
                Ok(shape.clone())
            } else {
                Err(format!("unslice of {} into {shape} reads {read}", args[0]))
            }
        }
        Op::Pack => {
            let first = args.first().ok_or("pack of nothing")?;
            if let Some(other) = args.iter().find(|s| s != &first) {
                return Err(format!("pack of {first} and {other}"));
            }
            let mut dims = vec![args.len()];
            dims.extend_from_slice(first.dims());
            Ok(Shape(dims))
        }
        Op::OneHot(n) => {
            arity(1)?;
            if args[0].is_scalar() {
                Ok(Shape::vector(*n))
            } else {
                Err(format!("one_hot of {}, not a scalar", args[0]))
            }
        }
        Op::Index => {
            arity(2)?;
            index_shape(args[0], args[1])
        }
        Op::IndexAdd | Op::IndexSet => {
            arity(3)?;
            let row = index_shape(args[0], args[2])?;
            if &row == args[1] {
                Ok(args[0].clone())
            } else {
                let name = crate::ir::printer::mnemonic(op);
                Err(format!("{name} of {} into rows of {row}", args[1]))
            }
        }
        Op::Gather => {
            arity(2)?;
            gather_shape(args[0], args[1])
        }
        Op::ScatterAdd => {
            arity(3)?;
            let rows = gather_shape(args[0], args[2])?;
            if &rows == args[1] {
                Ok(args[0].clone())
            } else {
                Err(format!("scatter_add of {} into rows of {rows}", args[1]))
            }
        }
        Op::Concat => {
            let first = args.first().ok_or("concat of nothing")?;
            let (_, rest) = first
                .dims()
                .split_first()
                .ok_or_else(|| format!("concat of {first}"))?;
            let mut total = 0;
            for a in args {
                match a.dims().split_first() {
                    Some((n, r)) if r == rest => total += n,
                    _ => return Err(format!("concat of {first} and {a}")),
                }
            }
            let mut dims = vec![total];
            dims.extend_from_slice(rest);
            Ok(Shape(dims))
        }
        Op::Permute(perm) => {
            arity(1)?;
            let dims = args[0].dims();
            let mut seen = vec![false; dims.len()];
            for &p in perm {
                if p >= dims.len() || std::mem::replace(&mut seen[p], true) {
                    return Err(format!("permute {perm:?} of {}", args[0]));
                }
            }
            if perm.len() != dims.len() {
                return Err(format!("permute {perm:?} of {}", args[0]));
            }
            Ok(Shape(perm.iter().map(|&p| dims[p]).collect()))
        }
        Op::Reshape(shape) => {
            arity(1)?;
            if shape.size() == args[0].size() {
                Ok(shape.clone())
            } else {
                Err(format!("reshape of {} to {shape}", args[0]))
            }
        }
        Op::Window(w) => w.result_shape(args),
        Op::Loop(l) => loop_shape(l, args),
    }
}

/// The row shape `x[i]` reads: `x` of rank at least 1, `i` a scalar.
fn index_shape(x: &Shape, i: &Shape) -> Result<Shape, String> {
    match (x.dims(), i.is_scalar()) {
        ([_, rest @ ..], true) => Ok(Shape(rest.to_vec())),
        _ => Err(format!("index of {x} by {i}")),
    }
}

/// `x` gathered by a tensor of indices `i`: `i`'s shape, then a row's.
fn gather_shape(x: &Shape, i: &Shape) -> Result<Shape, String> {
    match x.dims() {
        [_, rest @ ..] => Ok(Shape([i.dims(), rest].concat())),
        _ => Err(format!("gather of {x} by {i}")),
    }
}

/// The packed result of a loop whose arguments have the given shapes; the
/// body must take them as its parameters (the carried values first, returned
/// again in the same shapes) and the step as its one scalar input.
///
/// Only the body's interface is checked here: its instructions had their
/// shapes checked as they were pushed, so a loop pushed onto a function (at
/// every level of nested loops, and at every rewrite of one) does not check
/// its whole body again; [`verify`] checks bodies, recursively.
fn loop_shape(l: &Loop, args: &[&Shape]) -> Result<Shape, String> {
    let b = &l.body;
    if b.params.len() != args.len() || l.carries > args.len() {
        return Err(format!(
            "loop of {} arguments ({} carried) into a body of {} parameters",
            args.len(),
            l.carries,
            b.params.len()
        ));
    }
    if let Some((k, (slot, a))) = b
        .params
        .iter()
        .zip(args)
        .enumerate()
        .find(|(_, (slot, a))| &slot.shape != **a)
    {
        return Err(format!(
            "loop argument {k} of {a} into a parameter {}",
            slot.shape
        ));
    }
    if b.inputs.len() != 1 || !b.inputs[0].shape.is_scalar() {
        return Err("a loop body takes the step, a scalar, as its one input".into());
    }
    if b.outputs.len() < l.carries {
        return Err(format!(
            "a loop body returns {} values for {} carried",
            b.outputs.len(),
            l.carries
        ));
    }
    if let Some(o) = b.outputs.iter().find(|o| o.value.index() >= b.insts.len()) {
        return Err(format!("a loop body's output {} is undefined", o.name));
    }
    for k in 0..l.carries {
        let out = b.shape(b.outputs[k].value);
        if out != &b.params[k].shape {
            return Err(format!(
                "carried value {k} enters the body as {} and leaves it as {out}",
                b.params[k].shape
            ));
        }
    }
    Ok(Shape::vector(l.offsets().1))
}

/// Equal shapes, or a scalar against anything.
pub fn broadcast(a: &Shape, b: &Shape) -> Result<Shape, String> {
    if a == b || b.is_scalar() {
        Ok(a.clone())
    } else if a.is_scalar() {
        Ok(b.clone())
    } else {
        Err(format!("shapes {a} and {b} do not match"))
    }
}

/// The four forms of `@`.
pub fn matmul(a: &Shape, b: &Shape) -> Result<Shape, String> {
    let (ok, out) = match (a.dims(), b.dims()) {
        ([m, k], [k2, n]) => (k == k2, Shape::matrix(*m, *n)),
        ([m, k], [k2]) => (k == k2, Shape::vector(*m)),
        ([k], [k2, n]) => (k == k2, Shape::vector(*n)),
        ([k], [k2]) => (k == k2, Shape::scalar()),
        _ => (false, Shape::scalar()),
    };
    if ok {
        Ok(out)
    } else {
        Err(format!("cannot multiply {a} @ {b}"))
    }
}

/// The shape `Slice(axes)` reads from a tensor of shape `s`.
pub fn slice_shape(s: &Shape, axes: &[SliceAxis]) -> Result<Shape, String> {
    if axes.len() != s.rank() {
        return Err(format!("{} slice axes for shape {s}", axes.len()));
    }
    let mut dims = Vec::new();
    for (&n, ax) in s.dims().iter().zip(axes) {
        match *ax {
            SliceAxis::At(i) if i < n => {}
            SliceAxis::Range(lo, hi) if lo < hi && hi <= n => dims.push(hi - lo),
            _ => return Err(format!("slice {ax:?} out of bounds for length {n}")),
        }
    }
    Ok(Shape(dims))
}

/// Checks that every argument is defined before use, every output exists, and
/// every instruction's recorded shape is the one its operation gives.
pub fn verify(f: &Function) -> Result<(), String> {
    for (i, inst) in f.insts.iter().enumerate() {
        for a in &inst.args {
            if a.index() >= i {
                return Err(format!("%{i} uses %{} before it is defined", a.0));
            }
        }
        let shapes: Vec<&Shape> = inst.args.iter().map(|&a| f.shape(a)).collect();
        let shape = result_shape(f, &inst.op, &shapes).map_err(|e| format!("%{i}: {e}"))?;
        if let Op::Loop(l) = &inst.op {
            verify(&l.body).map_err(|e| format!("%{i}: in a loop body: {e}"))?;
        }
        if shape != inst.shape {
            return Err(format!(
                "%{i} is recorded as {} but {:?} gives {shape}",
                inst.shape, inst.op
            ));
        }
    }
    for o in &f.outputs {
        if o.value.index() >= f.insts.len() {
            return Err(format!("output {} is undefined", o.name));
        }
        let _: Value = o.value;
    }
    Ok(())
}
