//! The vector-Jacobian product of every IR operation: one arm per operation,
//! each giving the cotangents of the arguments from the cotangent `g` of the
//! result `y`.
//!
//! Conventions (as PyTorch and JAX): relu'(0) = 0, abs'(0) = 0 (the sign),
//! elementwise max/min split the cotangent evenly at a tie, reductions to the
//! maximum (whole or along axes) split it evenly over tied elements, norm'(0) = 0, and sqrt'(0) is
//! the true +inf. Comparisons, `sign` and `one_hot` are flat: they pass no
//! cotangent back. Max pooling passes each window's cotangent to the
//! element it chose (the first largest, a NaN counting as the largest).

use super::{Ad, AdError, Cot};
use crate::ir::{Binary, Op, Reduce, SliceAxis, Unary, Value, Window};

/// Adds the cotangents of the arguments of instruction `y`, given its own.
pub fn vjp(ad: &mut Ad, y: Value, g: Cot) -> Result<(), AdError> {
    let inst = ad.f.inst(y).clone();
    let a = |k: usize| inst.args[k];
    match &inst.op {
        Op::Param(_) | Op::Input(_) | Op::Const(_) => {}
        Op::Unary(u) => unary(ad, *u, a(0), y, g),
        Op::Binary(b) => binary(ad, *b, a(0), a(1), y, g),
        Op::Select => {
            // The cotangent goes to the side that was taken; the other side
            // gets an exact, masked zero.
            let zero = ad.c(0.0);
            let t = ad.push(Op::Select, vec![a(0), g.value, zero]);
            let f = ad.push(Op::Select, vec![a(0), zero, g.value]);
            ad.contribute(
                a(1),
                Cot {
                    value: t,
                    masked: true,
                },
            );
            ad.contribute(
                a(2),
                Cot {
                    value: f,
                    masked: true,
                },
            );
        }
        Op::MatMul => matmul(ad, a(0), a(1), g),
        Op::Outer => {
            // y = a b^T: da = G b, db = a G (as a vector-matrix product).
            let (x0, x1) = if g.masked {
                (finite(ad, a(0)), finite(ad, a(1)))
            } else {
                (a(0), a(1))
            };
            let da = ad.push(Op::MatMul, vec![g.value, x1]);
            let db = ad.push(Op::MatMul, vec![x0, g.value]);
            ad.contribute(a(0), ad.like(g, da));
            ad.contribute(a(1), ad.like(g, db));
        }
        Op::Transpose => {
            let d = ad.push(Op::Transpose, vec![g.value]);
            ad.contribute(a(0), ad.like(g, d));
        }
        Op::Concat => {
            // Each argument's rows of the cotangent.
            let mut at = 0;
            for &arg in &inst.args {
                let dims = ad.shape(arg).dims().to_vec();
                let mut axes = vec![SliceAxis::Range(at, at + dims[0])];
                axes.extend(dims[1..].iter().map(|&n| SliceAxis::Range(0, n)));
                let d = ad.push(Op::Slice(axes), vec![g.value]);
                ad.contribute(arg, ad.like(g, d));
                at += dims[0];
            }
        }
        Op::Permute(perm) => {
            // The inverse permutation puts every axis back.
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            let d = ad.push(Op::Permute(inverse), vec![g.value]);
            ad.contribute(a(0), ad.like(g, d));
        }
        Op::Sum => {
            let d = ad.push(Op::Broadcast(ad.shape(a(0))), vec![g.value]);
            ad.contribute(a(0), ad.like(g, d));
        }
        Op::ReduceMax => {
            // Split evenly over the elements equal to the maximum.
            let tied = ad.bin(Binary::Eq, a(0), y);
            let count = ad.push(Op::Sum, vec![tied]);
            let share = ad.divide(g, count);
            let d = ad.scale(share, tied);
            ad.contribute(a(0), d);
        }
        Op::Norm => {
            // dy/dx = x / y, and 0 at x = 0.
            let zero = ad.c(0.0);
            let at_zero = ad.bin(Binary::Eq, y, zero);
            let q = ad.divide(g, y);
            let q = ad.push(Op::Select, vec![at_zero, zero, q.value]);
            let d = ad.scale(ad.like(g, q), a(0));
            ad.contribute(a(0), d);
        }
        Op::LogSumExp => {
            // The softmax of all elements, exp(x - y): stable, as x <= y.
            let shifted = ad.bin(Binary::Sub, a(0), y);
            let p = ad.push(Op::Unary(Unary::Exp), vec![shifted]);
            let d = ad.scale(g, p);
            ad.contribute(a(0), d);
        }
        Op::ReduceAxes(kind, axes) => reduce_axes(ad, *kind, axes, a(0), y, g),
        Op::BroadcastAxes(axes, _) => {
            let d = ad.push(Op::ReduceAxes(Reduce::Sum, axes.clone()), vec![g.value]);
            ad.contribute(a(0), ad.like(g, d));
        }
        Op::Softmax(axis) => {
            // y * (g - sum(g * y)), the sum along the axis.
            let gy = ad.bin(Binary::Mul, g.value, y);
            let s = sum_along(ad, gy, *axis);
            let centred = ad.bin(Binary::Sub, g.value, s);
            let d = ad.bin(Binary::Mul, y, centred);
            ad.contribute(a(0), ad.like(g, d));
        }
        // An index is discrete: no cotangent.
        Op::ArgMax(_) => {}
        Op::LogSoftmax(axis) => {
            // g - softmax(x) * sum(g), with softmax(x) = exp(y).
            let p = ad.push(Op::Unary(Unary::Exp), vec![y]);
            let s = sum_along(ad, g.value, *axis);
            let ps = ad.bin(Binary::Mul, p, s);
            let d = ad.bin(Binary::Sub, g.value, ps);
            ad.contribute(a(0), ad.like(g, d));
        }
        Op::Broadcast(_) => {
            let d = ad.push(Op::Sum, vec![g.value]);
            ad.contribute(a(0), ad.like(g, d));
        }
        Op::Slice(axes) => {
            let d = ad.push(Op::Unslice(axes.clone(), ad.shape(a(0))), vec![g.value]);
            ad.contribute(a(0), ad.like(g, d));
        }
        Op::Unslice(axes, _) => {
            let d = ad.push(Op::Slice(axes.clone()), vec![g.value]);
            ad.contribute(a(0), ad.like(g, d));
        }
        Op::Pack => {
            let rest: Vec<SliceAxis> = ad
                .shape(a(0))
                .dims()
                .iter()
                .map(|&n| SliceAxis::Range(0, n))
                .collect();
            for (k, &arg) in inst.args.iter().enumerate() {
                let mut axes = vec![SliceAxis::At(k)];
                axes.extend_from_slice(&rest);
                let d = ad.push(Op::Slice(axes), vec![g.value]);
                ad.contribute(arg, ad.like(g, d));
            }
        }
        Op::Index => {
            // A scatter-add of the row into zeros; the index is discrete.
            let zero = ad.c(0.0);
            let zeros = ad.push(Op::Broadcast(ad.shape(a(0))), vec![zero]);
            let d = ad.push(Op::IndexAdd, vec![zeros, g.value, a(1)]);
            ad.contribute(a(0), ad.like(g, d));
        }
        Op::IndexAdd => {
            ad.contribute(a(0), g);
            let d = ad.push(Op::Index, vec![g.value, a(2)]);
            ad.contribute(a(1), ad.like(g, d));
        }
        Op::IndexSet => {
            // The row replaced gets none of the cotangent, the new row its
            // row; the index is discrete.
            let zero = ad.c(0.0);
            let row = ad.shape(a(1));
            let zeros = if row.is_scalar() {
                zero
            } else {
                ad.push(Op::Broadcast(row), vec![zero])
            };
            let d = ad.push(Op::IndexSet, vec![g.value, zeros, a(2)]);
            ad.contribute(a(0), ad.like(g, d));
            let r = ad.push(Op::Index, vec![g.value, a(2)]);
            ad.contribute(a(1), ad.like(g, r));
        }
        Op::Gather => {
            // Each row's cotangent added into zeros at the row it came
            // from; the indices are discrete.
            let zero = ad.c(0.0);
            let zeros = ad.push(Op::Broadcast(ad.shape(a(0))), vec![zero]);
            let d = ad.push(Op::ScatterAdd, vec![zeros, g.value, a(1)]);
            ad.contribute(a(0), ad.like(g, d));
        }
        Op::ScatterAdd => {
            ad.contribute(a(0), g);
            let d = ad.push(Op::Gather, vec![g.value, a(2)]);
            ad.contribute(a(1), ad.like(g, d));
        }
        Op::Reshape(_) => {
            let d = ad.push(Op::Reshape(ad.shape(a(0))), vec![g.value]);
            ad.contribute(a(0), ad.like(g, d));
        }
        Op::Window(w) => window(ad, *w, &inst.args, g),
        Op::Loop(_) => super::loops::vjp(ad, y, g)?,
        Op::OneHot(_) => {
            if ad.is_active(a(0)) {
                return Err(AdError {
                    message: "the class index of `one_hot` (or `cross_entropy`) is differentiated here, but a class is discrete and has no gradient".into(),
                    span: inst.span,
                });
            }
        }
    }
    Ok(())
}

/// The sum of `v` along `axis`, repeated back along it: a scalar for a
/// vector (which broadcasts as it is).
fn sum_along(ad: &mut Ad, v: Value, axis: usize) -> Value {
    let shape = ad.shape(v);
    if shape.rank() == 1 {
        return ad.push(Op::Sum, vec![v]);
    }
    let s = ad.push(Op::ReduceAxes(Reduce::Sum, vec![axis]), vec![v]);
    ad.push(Op::BroadcastAxes(vec![axis], shape), vec![s])
}

/// The rule of a reduction along axes: that of the whole-tensor reduction,
/// per slice, with the slice's result and cotangent repeated back along
/// the reduced axes.
fn reduce_axes(ad: &mut Ad, kind: Reduce, axes: &[usize], x: Value, y: Value, g: Cot) {
    let shape = ad.shape(x);
    let back =
        |ad: &mut Ad, v: Value| ad.push(Op::BroadcastAxes(axes.to_vec(), shape.clone()), vec![v]);
    match kind {
        Reduce::Sum => {
            let d = back(ad, g.value);
            ad.contribute(x, ad.like(g, d));
        }
        Reduce::Max => {
            // Split evenly over the elements of each slice equal to its
            // maximum.
            let m = back(ad, y);
            let tied = ad.bin(Binary::Eq, x, m);
            let count = ad.push(Op::ReduceAxes(Reduce::Sum, axes.to_vec()), vec![tied]);
            let share = ad.divide(g, count);
            let share = back(ad, share.value);
            let d = ad.scale(ad.like(g, share), tied);
            ad.contribute(x, d);
        }
        Reduce::Norm => {
            // x / y per slice, and 0 where y = 0.
            let zero = ad.c(0.0);
            let at_zero = ad.bin(Binary::Eq, y, zero);
            let q = ad.divide(g, y);
            let q = ad.push(Op::Select, vec![at_zero, zero, q.value]);
            let q = back(ad, q);
            let d = ad.scale(ad.like(g, q), x);
            ad.contribute(x, d);
        }
        Reduce::LogSumExp => {
            // The softmax of each slice, exp(x - y).
            let m = back(ad, y);
            let shifted = ad.bin(Binary::Sub, x, m);
            let p = ad.push(Op::Unary(Unary::Exp), vec![shifted]);
            let gb = back(ad, g.value);
            let d = ad.scale(ad.like(g, gb), p);
            ad.contribute(x, d);
        }
    }
}

fn unary(ad: &mut Ad, u: Unary, x: Value, y: Value, g: Cot) {
    let d = match u {
        Unary::Neg => {
            let d = ad.push(Op::Unary(Unary::Neg), vec![g.value]);
            ad.like(g, d)
        }
        Unary::Exp => ad.scale(g, y),
        Unary::Log => ad.divide(g, x),
        Unary::Sqrt => {
            // g / (2 y): +inf at 0, the true value.
            let two = ad.c(2.0);
            let twice = ad.bin(Binary::Mul, two, y);
            ad.divide(g, twice)
        }
        Unary::Abs => {
            let s = ad.push(Op::Unary(Unary::Sign), vec![x]);
            ad.scale(g, s)
        }
        Unary::Sign => return,
        Unary::Sin => {
            let c = ad.push(Op::Unary(Unary::Cos), vec![x]);
            ad.scale(g, c)
        }
        Unary::Cos => {
            let s = ad.push(Op::Unary(Unary::Sin), vec![x]);
            let gs = ad.scale(g, s);
            let d = ad.push(Op::Unary(Unary::Neg), vec![gs.value]);
            ad.like(g, d)
        }
        Unary::Tanh => {
            // 1 - y^2
            let one = ad.c(1.0);
            let yy = ad.bin(Binary::Mul, y, y);
            let dy = ad.bin(Binary::Sub, one, yy);
            ad.scale(g, dy)
        }
        Unary::Sigmoid => {
            // y (1 - y)
            let one = ad.c(1.0);
            let q = ad.bin(Binary::Sub, one, y);
            let dy = ad.bin(Binary::Mul, y, q);
            ad.scale(g, dy)
        }
        Unary::Relu => {
            // 1 where x > 0: relu'(0) = 0.
            let zero = ad.c(0.0);
            let on = ad.bin(Binary::Gt, x, zero);
            ad.scale(g, on)
        }
        Unary::Softplus => {
            let s = ad.push(Op::Unary(Unary::Sigmoid), vec![x]);
            ad.scale(g, s)
        }
        Unary::Log1p => {
            // g / (1 + x)
            let one = ad.c(1.0);
            let d = ad.bin(Binary::Add, one, x);
            ad.divide(g, d)
        }
        Unary::Expm1 => {
            // g (y + 1) = g exp(x)
            let one = ad.c(1.0);
            let d = ad.bin(Binary::Add, y, one);
            ad.scale(g, d)
        }
        Unary::Erf => {
            // g 2/sqrt(pi) exp(-x^2)
            let xx = ad.bin(Binary::Mul, x, x);
            let n = ad.push(Op::Unary(Unary::Neg), vec![xx]);
            let e = ad.push(Op::Unary(Unary::Exp), vec![n]);
            let k = ad.c(std::f64::consts::FRAC_2_SQRT_PI);
            let d = ad.bin(Binary::Mul, k, e);
            ad.scale(g, d)
        }
        // Piecewise constant: the gradient is 0 (where it exists).
        Unary::Floor | Unary::Round => return,
    };
    ad.contribute(x, d);
}

fn binary(ad: &mut Ad, b: Binary, x: Value, z: Value, y: Value, g: Cot) {
    match b {
        Binary::Add => {
            ad.contribute(x, g);
            ad.contribute(z, g);
        }
        Binary::Sub => {
            ad.contribute(x, g);
            if ad.is_active(z) {
                let n = ad.push(Op::Unary(Unary::Neg), vec![g.value]);
                ad.contribute(z, ad.like(g, n));
            }
        }
        Binary::Mul => {
            if ad.is_active(x) {
                let d = ad.scale(g, z);
                ad.contribute(x, d);
            }
            if ad.is_active(z) {
                let d = ad.scale(g, x);
                ad.contribute(z, d);
            }
        }
        Binary::Div => {
            // y = x / z: dx = g / z, dz = -g y / z.
            if ad.is_active(x) {
                let d = ad.divide(g, z);
                ad.contribute(x, d);
            }
            if ad.is_active(z) {
                let gy = ad.scale(g, y);
                let q = ad.divide(gy, z);
                let n = ad.push(Op::Unary(Unary::Neg), vec![q.value]);
                ad.contribute(z, ad.like(g, n));
            }
        }
        Binary::Pow => {
            // y = x^z: dx = g z x^(z-1), dz = g y log(x).
            if ad.is_active(x) {
                let one = ad.c(1.0);
                let zm1 = ad.bin(Binary::Sub, z, one);
                let p = ad.bin(Binary::Pow, x, zm1);
                let dp = ad.bin(Binary::Mul, z, p);
                let d = ad.scale(g, dp);
                ad.contribute(x, d);
            }
            if ad.is_active(z) {
                let l = ad.push(Op::Unary(Unary::Log), vec![x]);
                let yl = ad.bin(Binary::Mul, y, l);
                // 0 at x = 0, where y log(x) would be 0 * -inf (as PyTorch).
                let zero = ad.c(0.0);
                let at_zero = ad.bin(Binary::Eq, x, zero);
                let yl = ad.push(Op::Select, vec![at_zero, zero, yl]);
                let d = ad.scale(g, yl);
                ad.contribute(z, d);
            }
        }
        Binary::Max | Binary::Min => {
            // The larger (smaller) side takes the cotangent; a tie splits it.
            let wins = if b == Binary::Max {
                Binary::Gt
            } else {
                Binary::Lt
            };
            let half = ad.c(0.5);
            let tie = ad.bin(Binary::Eq, x, z);
            let half_tie = ad.bin(Binary::Mul, half, tie);
            for (me, other) in [(x, z), (z, x)] {
                if ad.is_active(me) {
                    let w = ad.bin(wins, me, other);
                    let share = ad.bin(Binary::Add, w, half_tie);
                    let d = ad.scale(g, share);
                    ad.contribute(me, d);
                }
            }
        }
        Binary::Eq | Binary::Ne | Binary::Lt | Binary::Le | Binary::Gt | Binary::Ge => {}
        Binary::BceLogits => {
            // d/dz = sigmoid(z) - t; d/dt = -z.
            if ad.is_active(x) {
                let s = ad.push(Op::Unary(Unary::Sigmoid), vec![x]);
                let r = ad.bin(Binary::Sub, s, z);
                let d = ad.scale(g, r);
                ad.contribute(x, d);
            }
            if ad.is_active(z) {
                let n = ad.push(Op::Unary(Unary::Neg), vec![x]);
                let d = ad.scale(g, n);
                ad.contribute(z, d);
            }
        }
    }
}

/// The four forms of `@`.
/// A masked cotangent is contracted with the operands' finite parts, so that
/// an inf or NaN of an untaken branch cannot leak through the sum.
fn matmul(ad: &mut Ad, a0: Value, b0: Value, g: Cot) {
    let (ra, rb) = (ad.shape(a0).rank(), ad.shape(b0).rank());
    let (a, b) = if g.masked {
        (finite(ad, a0), finite(ad, b0))
    } else {
        (a0, b0)
    };
    let (da, db) = match (ra, rb) {
        // [m,k] @ [k,n]: dA = G B^T, dB = A^T G.
        (2, 2) => {
            let bt = ad.push(Op::Transpose, vec![b]);
            let at = ad.push(Op::Transpose, vec![a]);
            (
                ad.push(Op::MatMul, vec![g.value, bt]),
                ad.push(Op::MatMul, vec![at, g.value]),
            )
        }
        // [m,k] @ [k]: dA = outer(g, x), dx = g @ A.
        (2, 1) => (
            ad.push(Op::Outer, vec![g.value, b]),
            ad.push(Op::MatMul, vec![g.value, a]),
        ),
        // [k] @ [k,n]: dx = B @ g, dB = outer(x, g).
        (1, 2) => (
            ad.push(Op::MatMul, vec![b, g.value]),
            ad.push(Op::Outer, vec![a, g.value]),
        ),
        // [k] @ [k]: da = g b, db = g a.
        _ => (ad.scale(g, b).value, ad.scale(g, a).value),
    };
    ad.contribute(a0, ad.like(g, da));
    ad.contribute(b0, ad.like(g, db));
}

/// `x` with its infinite and NaN elements replaced by 0: what a masked
/// cotangent may be contracted with.
fn finite(ad: &mut Ad, x: Value) -> Value {
    let d = ad.bin(Binary::Sub, x, x);
    let zero = ad.c(0.0);
    let ok = ad.bin(Binary::Eq, d, zero);
    ad.push(Op::Select, vec![ok, x, zero])
}

/// The sliding-window operations: each is linear in every argument but the
/// image `x` max pooling routes by (convolution is bilinear in image and
/// kernel), so each cotangent is another window operation, and those have
/// rules here too (a gradient with a convolution can be differentiated
/// again). Max pooling's routing is piecewise constant in `x`: no cotangent
/// for `x` from a gather or a scatter.
fn window(ad: &mut Ad, w: Window, args: &[Value], g: Cot) {
    let dims = |ad: &Ad, v: Value| ad.shape(v).dims().to_vec();
    // The other factor of a bilinear product with a masked cotangent.
    let other = |ad: &mut Ad, v: Value| if g.masked { finite(ad, v) } else { v };
    let give = |ad: &mut Ad, arg: Value, op: Window, operands: [Option<Value>; 2]| {
        if ad.is_active(arg) {
            let operands: Vec<Value> = operands.into_iter().flatten().collect();
            let d = ad.push(Op::Window(op), operands);
            ad.contribute(arg, ad.like(g, d));
        }
    };
    let (a0, a1) = (args[0], args.get(1).copied());
    match w {
        Window::Conv2d { stride, padding } => {
            let (x, k) = (a0, a1.expect("two arguments"));
            let (hw, kd) = (dims(ad, x), dims(ad, k));
            let (xs, ks) = (other(ad, x), other(ad, k));
            let (h, w) = (hw[1], hw[2]);
            let input = Window::Conv2dInput {
                stride,
                padding,
                h,
                w,
            };
            give(ad, x, input, [Some(g.value), Some(ks)]);
            let (kh, kw) = (kd[2], kd[3]);
            let kernel = Window::Conv2dKernel {
                stride,
                padding,
                kh,
                kw,
            };
            give(ad, k, kernel, [Some(xs), Some(g.value)]);
        }
        Window::Conv2dInput {
            stride, padding, ..
        } => {
            let (c, k) = (a0, a1.expect("two arguments"));
            let kd = dims(ad, k);
            let (cs, ks) = (other(ad, c), other(ad, k));
            give(
                ad,
                c,
                Window::Conv2d { stride, padding },
                [Some(g.value), Some(ks)],
            );
            let (kh, kw) = (kd[2], kd[3]);
            let kernel = Window::Conv2dKernel {
                stride,
                padding,
                kh,
                kw,
            };
            give(ad, k, kernel, [Some(g.value), Some(cs)]);
        }
        Window::Conv2dKernel {
            stride, padding, ..
        } => {
            let (x, c) = (a0, a1.expect("two arguments"));
            let hw = dims(ad, x);
            let (xs, cs) = (other(ad, x), other(ad, c));
            let (h, w) = (hw[1], hw[2]);
            let input = Window::Conv2dInput {
                stride,
                padding,
                h,
                w,
            };
            give(ad, x, input, [Some(cs), Some(g.value)]);
            give(
                ad,
                c,
                Window::Conv2d { stride, padding },
                [Some(xs), Some(g.value)],
            );
        }
        Window::MaxPool2d { k, stride } => {
            let scatter = Window::MaxPoolScatter { k, stride };
            give(ad, a0, scatter, [Some(a0), Some(g.value)]);
        }
        Window::MaxPoolGather { k, stride } => {
            let scatter = Window::MaxPoolScatter { k, stride };
            give(
                ad,
                a1.expect("two arguments"),
                scatter,
                [Some(a0), Some(g.value)],
            );
        }
        Window::MaxPoolScatter { k, stride } => {
            let gather = Window::MaxPoolGather { k, stride };
            give(
                ad,
                a1.expect("two arguments"),
                gather,
                [Some(a0), Some(g.value)],
            );
        }
        Window::AvgPool2d { k, stride } => {
            let hw = dims(ad, a0);
            let adjoint = Window::AvgPoolAdjoint {
                k,
                stride,
                h: hw[1],
                w: hw[2],
            };
            give(ad, a0, adjoint, [Some(g.value), None]);
        }
        Window::AvgPoolAdjoint { k, stride, .. } => {
            give(
                ad,
                a0,
                Window::AvgPool2d { k, stride },
                [Some(g.value), None],
            );
        }
    }
}
