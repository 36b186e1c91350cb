//! Forward mode: Jacobian-vector products (`jvp(of, wrt, direction)` in the
//! language) as a transformation of its own. Every value that depends on
//! the seeded ones gets a tangent, computed right after the values it
//! needs, in the forward order: one arm per IR operation in [`tangent`],
//! the derivative of the reverse rules' table with the same conventions
//! (relu'(0) = 0, a tie of max/min split evenly, norm'(0) = 0). Tangents are
//! appended to the function; nothing is renumbered.
//!
//! A value whose tangent is zero has none (`None`): constants, parameters
//! and inputs other than the seeds, and the results of the flat operations
//! (comparisons, `sign`, `floor`, `round`, `argmax`, `one_hot`). A loop
//! whose arguments have tangents becomes a loop that carries the tangents
//! beside the values (its body transformed the same way), and the tangent
//! of its packed result is read from that loop's.

use crate::ir::{
    Binary, ConstData, Function, Loop, Op, Reduce, Slot, Unary, Value, ValueMap, Window,
};
use crate::passes::splat;
use crate::shape::{Shape, Tensor};
use crate::span::Span;

/// The Jacobian-vector product of `of` with respect to `wrt` along
/// `direction` (shaped like `wrt`), appended to `f`: shaped like `of`.
pub fn jvp(f: &mut Function, of: Value, wrt: Value, direction: Value, span: Span) -> Value {
    jvp_many(f, &[(wrt, direction)], &[of], span)[0]
}

/// The tangents of the values `of`, with each `(value, direction)` of
/// `seeds` seeded (the others' tangents zero), appended to `f`: zeros for
/// a value that depends on no seed.
pub fn jvp_many(
    f: &mut Function,
    seeds: &[(Value, Value)],
    of: &[Value],
    span: Span,
) -> Vec<Value> {
    let mut t = Tangents::new(f);
    for &(v, d) in seeds {
        t.seed(v, d);
    }
    let from = seeds.iter().map(|(v, _)| v.index() + 1).min().unwrap_or(0);
    let to = of.iter().map(|v| v.index() + 1).max().unwrap_or(0);
    t.run(f, from, to);
    of.iter()
        .map(|&v| match t.of(v) {
            Some(d) => d,
            None => {
                let shape = f.shape(v).clone();
                splat(f, 0.0, &shape, span)
            }
        })
        .collect()
}

/// The tangents of one function's values, as they are computed.
struct Tangents {
    dot: ValueMap<Option<Value>>,
}

impl Tangents {
    fn new(f: &Function) -> Tangents {
        Tangents {
            dot: ValueMap::new(f, None),
        }
    }

    fn seed(&mut self, v: Value, t: Value) {
        self.dot[v] = Some(t);
    }

    fn of(&self, v: Value) -> Option<Value> {
        self.dot.get(v).copied().flatten()
    }

    /// Computes the tangents of the values `from..to` of `f` (which must
    /// not grow the map's range: tangents are appended after `to`).
    fn run(&mut self, f: &mut Function, from: usize, to: usize) {
        for k in from..to {
            let v = f.value(k).expect("a value of the function");
            let inst = f.inst(v).clone();
            let dargs: Vec<Option<Value>> = inst.args.iter().map(|a| self.of(*a)).collect();
            if dargs.iter().all(Option::is_none) {
                continue;
            }
            let span = inst.span;
            let mut e = Emit { f, span };
            let d = tangent(&mut e, &inst.op, &inst.args, v, &dargs);
            let d = d.map(|d| {
                let shape = e.f.shape(v).clone();
                e.fit(d, &shape)
            });
            self.dot[v] = d;
        }
    }
}

/// Appends instructions at one span.
struct Emit<'a> {
    f: &'a mut Function,
    span: Span,
}

impl Emit<'_> {
    fn push(&mut self, op: Op, args: Vec<Value>) -> Value {
        self.f.push(op, args, self.span)
    }

    fn c(&mut self, x: f64) -> Value {
        self.push(Op::Const(ConstData(Tensor::scalar(x))), vec![])
    }

    fn bin(&mut self, b: Binary, x: Value, y: Value) -> Value {
        self.push(Op::Binary(b), vec![x, y])
    }

    fn un(&mut self, u: Unary, x: Value) -> Value {
        self.push(Op::Unary(u), vec![x])
    }

    fn shape(&self, v: Value) -> Shape {
        self.f.shape(v).clone()
    }

    /// A scalar tangent repeated to `shape` (where a scalar operand
    /// broadcast in the forward operation).
    fn fit(&mut self, t: Value, shape: &Shape) -> Value {
        if self.f.shape(t) == shape {
            t
        } else {
            debug_assert!(self.f.shape(t).is_scalar(), "only scalars broadcast");
            self.push(Op::Broadcast(shape.clone()), vec![t])
        }
    }

    /// `t * d`, or nothing without a tangent.
    fn scale(&mut self, t: Option<Value>, d: Value) -> Option<Value> {
        t.map(|t| self.bin(Binary::Mul, t, d))
    }

    /// The sum of two optional tangents.
    fn add(&mut self, a: Option<Value>, b: Option<Value>) -> Option<Value> {
        match (a, b) {
            (Some(a), Some(b)) => Some(self.bin(Binary::Add, a, b)),
            (a, None) => a,
            (None, b) => b,
        }
    }

    /// An argument's tangent, or zeros of its shape.
    fn or_zeros(&mut self, t: Option<Value>, like: Value) -> Value {
        match t {
            Some(t) => t,
            None => {
                let shape = self.shape(like);
                splat(self.f, 0.0, &shape, self.span)
            }
        }
    }

    /// The sum along `axis`, repeated back along it.
    fn sum_along(&mut self, v: Value, axis: usize) -> Value {
        let shape = self.shape(v);
        if shape.rank() == 1 {
            return self.push(Op::Sum, vec![v]);
        }
        let s = self.push(Op::ReduceAxes(Reduce::Sum, vec![axis]), vec![v]);
        self.push(Op::BroadcastAxes(vec![axis], shape), vec![s])
    }
}

/// The tangent of `y = op(args)` from its arguments' tangents `d` (at least
/// one of them given).
fn tangent(e: &mut Emit, op: &Op, args: &[Value], y: Value, d: &[Option<Value>]) -> Option<Value> {
    let a = |k: usize| args[k];
    // The same operation on the (only) argument's tangent: the linear ones.
    let same = |e: &mut Emit, op: &Op| d[0].map(|t| e.push(op.clone(), vec![t]));
    match op {
        Op::Param(_) | Op::Input(_) | Op::Const(_) => None,
        Op::Unary(u) => unary(e, *u, a(0), y, d[0]),
        Op::Binary(b) => binary(e, *b, a(0), a(1), y, d[0], d[1]),
        Op::Select => {
            if d[1].is_none() && d[2].is_none() {
                return None;
            }
            let zero = e.c(0.0);
            let (t, f) = (d[1].unwrap_or(zero), d[2].unwrap_or(zero));
            Some(e.push(Op::Select, vec![a(0), t, f]))
        }
        Op::Window(w) => match *w {
            // Bilinear, like a matrix product.
            Window::Conv2d { .. } | Window::Conv2dInput { .. } | Window::Conv2dKernel { .. } => {
                let l = d[0].map(|t| e.push(op.clone(), vec![t, a(1)]));
                let r = d[1].map(|t| e.push(op.clone(), vec![a(0), t]));
                e.add(l, r)
            }
            // The tangent of the element each window chooses.
            Window::MaxPool2d { k, stride } => d[0].map(|t| {
                e.push(
                    Op::Window(Window::MaxPoolGather { k, stride }),
                    vec![a(0), t],
                )
            }),
            // Linear in the second argument; the choice (the first) is
            // piecewise constant.
            Window::MaxPoolGather { .. } | Window::MaxPoolScatter { .. } => {
                d[1].map(|t| e.push(op.clone(), vec![a(0), t]))
            }
            Window::AvgPool2d { .. } | Window::AvgPoolAdjoint { .. } => same(e, op),
        },
        Op::MatMul | Op::Outer => {
            let l = d[0].map(|t| e.push(op.clone(), vec![t, a(1)]));
            let r = d[1].map(|t| e.push(op.clone(), vec![a(0), t]));
            e.add(l, r)
        }
        Op::Transpose
        | Op::Sum
        | Op::Permute(_)
        | Op::Reshape(_)
        | Op::Slice(_)
        | Op::Unslice(..)
        | Op::Broadcast(_)
        | Op::BroadcastAxes(..)
        | Op::ReduceAxes(Reduce::Sum, _) => same(e, op),
        Op::ReduceMax => {
            // The mean of the tangents of the elements tied at the maximum.
            let tied = e.bin(Binary::Eq, a(0), y);
            let count = e.push(Op::Sum, vec![tied]);
            let t = e.scale(d[0], tied)?;
            let s = e.push(Op::Sum, vec![t]);
            Some(e.bin(Binary::Div, s, count))
        }
        Op::Norm => {
            // sum(x t) / y, and 0 at y = 0.
            let xt = e.scale(d[0], a(0))?;
            let s = e.push(Op::Sum, vec![xt]);
            Some(zero_where_zero(e, y, s))
        }
        Op::LogSumExp => {
            let shifted = e.bin(Binary::Sub, a(0), y);
            let p = e.un(Unary::Exp, shifted);
            let t = e.scale(d[0], p)?;
            Some(e.push(Op::Sum, vec![t]))
        }
        Op::ReduceAxes(kind, axes) => reduce_axes(e, *kind, axes, a(0), y, d[0]),
        Op::Softmax(axis) => {
            // y (t - sum(y t)), the sum along the axis.
            let yt = e.scale(d[0], y)?;
            let s = e.sum_along(yt, *axis);
            let t = d[0]?;
            let centred = e.bin(Binary::Sub, t, s);
            Some(e.bin(Binary::Mul, y, centred))
        }
        Op::LogSoftmax(axis) => {
            // t - sum(softmax(x) t), softmax(x) = exp(y).
            let p = e.un(Unary::Exp, y);
            let pt = e.scale(d[0], p)?;
            let s = e.sum_along(pt, *axis);
            Some(e.bin(Binary::Sub, d[0]?, s))
        }
        Op::ArgMax(_) | Op::OneHot(_) => None,
        Op::Pack | Op::Concat => {
            let parts = args
                .iter()
                .zip(d)
                .map(|(&x, &t)| e.or_zeros(t, x))
                .collect();
            Some(e.push(op.clone(), parts))
        }
        // The row of the tangent; the index is discrete.
        Op::Index => d[0].map(|t| e.push(Op::Index, vec![t, a(1)])),
        // A row added, or put, into the tangent; the index is discrete.
        Op::IndexAdd | Op::IndexSet => {
            if d[0].is_none() && d[1].is_none() {
                return None;
            }
            let acc = e.or_zeros(d[0], a(0));
            let g = e.or_zeros(d[1], a(1));
            Some(e.push(op.clone(), vec![acc, g, a(2)]))
        }
        // The rows of the tangent; the indices are discrete.
        Op::Gather => d[0].map(|t| e.push(Op::Gather, vec![t, a(1)])),
        Op::ScatterAdd => {
            if d[0].is_none() && d[1].is_none() {
                return None;
            }
            let acc = e.or_zeros(d[0], a(0));
            let g = e.or_zeros(d[1], a(1));
            Some(e.push(Op::ScatterAdd, vec![acc, g, a(2)]))
        }
        Op::Loop(l) => Some(loop_tangent(e, l, args, d)),
    }
}

/// `s / y`, and 0 where `y` is 0.
fn zero_where_zero(e: &mut Emit, y: Value, s: Value) -> Value {
    let zero = e.c(0.0);
    let at_zero = e.bin(Binary::Eq, y, zero);
    let q = e.bin(Binary::Div, s, y);
    e.push(Op::Select, vec![at_zero, zero, q])
}

fn reduce_axes(
    e: &mut Emit,
    kind: Reduce,
    axes: &[usize],
    x: Value,
    y: Value,
    t: Option<Value>,
) -> Option<Value> {
    let shape = e.shape(x);
    let back =
        |e: &mut Emit, v: Value| e.push(Op::BroadcastAxes(axes.to_vec(), shape.clone()), vec![v]);
    let sum = |e: &mut Emit, v: Value| e.push(Op::ReduceAxes(Reduce::Sum, axes.to_vec()), vec![v]);
    let t = t?;
    Some(match kind {
        Reduce::Sum => sum(e, t),
        Reduce::Max => {
            let m = back(e, y);
            let tied = e.bin(Binary::Eq, x, m);
            let count = sum(e, tied);
            let tt = e.bin(Binary::Mul, t, tied);
            let s = sum(e, tt);
            e.bin(Binary::Div, s, count)
        }
        Reduce::Norm => {
            let xt = e.bin(Binary::Mul, x, t);
            let s = sum(e, xt);
            zero_where_zero(e, y, s)
        }
        Reduce::LogSumExp => {
            let m = back(e, y);
            let shifted = e.bin(Binary::Sub, x, m);
            let p = e.un(Unary::Exp, shifted);
            let pt = e.bin(Binary::Mul, p, t);
            sum(e, pt)
        }
    })
}

fn unary(e: &mut Emit, u: Unary, x: Value, y: Value, t: Option<Value>) -> Option<Value> {
    let t = t?;
    let d = match u {
        Unary::Neg => return Some(e.un(Unary::Neg, t)),
        Unary::Sign | Unary::Floor | Unary::Round => return None,
        Unary::Exp => y,
        Unary::Log => return Some(e.bin(Binary::Div, t, x)),
        Unary::Sqrt => {
            let two = e.c(2.0);
            let twice = e.bin(Binary::Mul, two, y);
            return Some(e.bin(Binary::Div, t, twice));
        }
        Unary::Abs => e.un(Unary::Sign, x),
        Unary::Sin => e.un(Unary::Cos, x),
        Unary::Cos => {
            let s = e.un(Unary::Sin, x);
            e.un(Unary::Neg, s)
        }
        Unary::Tanh => {
            let one = e.c(1.0);
            let yy = e.bin(Binary::Mul, y, y);
            e.bin(Binary::Sub, one, yy)
        }
        Unary::Sigmoid => {
            let one = e.c(1.0);
            let q = e.bin(Binary::Sub, one, y);
            e.bin(Binary::Mul, y, q)
        }
        Unary::Relu => {
            let zero = e.c(0.0);
            e.bin(Binary::Gt, x, zero)
        }
        Unary::Softplus => e.un(Unary::Sigmoid, x),
        Unary::Log1p => {
            let one = e.c(1.0);
            let d = e.bin(Binary::Add, one, x);
            return Some(e.bin(Binary::Div, t, d));
        }
        Unary::Expm1 => {
            let one = e.c(1.0);
            e.bin(Binary::Add, y, one)
        }
        Unary::Erf => {
            let xx = e.bin(Binary::Mul, x, x);
            let n = e.un(Unary::Neg, xx);
            let ex = e.un(Unary::Exp, n);
            let k = e.c(std::f64::consts::FRAC_2_SQRT_PI);
            e.bin(Binary::Mul, k, ex)
        }
    };
    Some(e.bin(Binary::Mul, t, d))
}

fn binary(
    e: &mut Emit,
    b: Binary,
    x: Value,
    z: Value,
    y: Value,
    tx: Option<Value>,
    tz: Option<Value>,
) -> Option<Value> {
    match b {
        Binary::Add => e.add(tx, tz),
        Binary::Sub => {
            let nz = tz.map(|t| e.un(Unary::Neg, t));
            e.add(tx, nz)
        }
        Binary::Mul => {
            let l = e.scale(tx, z);
            let r = e.scale(tz, x);
            e.add(l, r)
        }
        Binary::Div => {
            // (tx - y tz) / z
            let yt = tz.map(|t| {
                let yt = e.bin(Binary::Mul, y, t);
                e.un(Unary::Neg, yt)
            });
            let num = e.add(tx, yt)?;
            Some(e.bin(Binary::Div, num, z))
        }
        Binary::Pow => {
            // tx z x^(z-1) + tz y log(x), the last 0 at x = 0.
            let l = tx.map(|t| {
                let one = e.c(1.0);
                let zm1 = e.bin(Binary::Sub, z, one);
                let p = e.bin(Binary::Pow, x, zm1);
                let dp = e.bin(Binary::Mul, z, p);
                e.bin(Binary::Mul, t, dp)
            });
            let r = tz.map(|t| {
                let lg = e.un(Unary::Log, x);
                let yl = e.bin(Binary::Mul, y, lg);
                let zero = e.c(0.0);
                let at_zero = e.bin(Binary::Eq, x, zero);
                let yl = e.push(Op::Select, vec![at_zero, zero, yl]);
                e.bin(Binary::Mul, t, yl)
            });
            e.add(l, r)
        }
        Binary::Max | Binary::Min => {
            // The larger (smaller) side's tangent; a tie takes the mean.
            let wins = if b == Binary::Max {
                Binary::Gt
            } else {
                Binary::Lt
            };
            let half = e.c(0.5);
            let tie = e.bin(Binary::Eq, x, z);
            let half_tie = e.bin(Binary::Mul, half, tie);
            let share = |e: &mut Emit, me: Value, other: Value, t: Option<Value>| {
                t.map(|t| {
                    let w = e.bin(wins, me, other);
                    let s = e.bin(Binary::Add, w, half_tie);
                    e.bin(Binary::Mul, t, s)
                })
            };
            let l = share(e, x, z, tx);
            let r = share(e, z, x, tz);
            e.add(l, r)
        }
        Binary::Eq | Binary::Ne | Binary::Lt | Binary::Le | Binary::Gt | Binary::Ge => None,
        Binary::BceLogits => {
            // d/dz = sigmoid(z) - t; d/dt = -z.
            let l = tx.map(|t| {
                let s = e.un(Unary::Sigmoid, x);
                let r = e.bin(Binary::Sub, s, z);
                e.bin(Binary::Mul, t, r)
            });
            let r = tz.map(|t| {
                let n = e.un(Unary::Neg, x);
                e.bin(Binary::Mul, t, n)
            });
            e.add(l, r)
        }
    }
}

/// The tangent of a loop's packed result: a loop that carries a tangent
/// beside every carried value and stacks one beside every stacked value,
/// its body the original's with the tangents of its parameters seeded.
/// The tangents are read from its packed result, in the original's layout.
fn loop_tangent(e: &mut Emit, l: &Loop, args: &[Value], d: &[Option<Value>]) -> Value {
    let k = l.carries;
    let body = &l.body;
    let captured: Vec<usize> = (k..args.len()).filter(|&i| d[i].is_some()).collect();
    // The new body's parameters: carried values, their tangents, captured
    // values, the tangents of those that have one. (A parameter the body
    // does not read has no instruction.)
    let param = |i: usize| {
        body.iter()
            .find(|(_, inst)| inst.op == Op::Param(i))
            .map(|(v, _)| v)
    };
    let tangent_slot = |i: usize| Slot {
        name: format!("d{}", body.params[i].name),
        shape: body.params[i].shape.clone(),
    };
    let mut params: Vec<Slot> = body.params[..k].to_vec();
    params.extend((0..k).map(tangent_slot));
    params.extend_from_slice(&body.params[k..]);
    params.extend(captured.iter().map(|&i| tangent_slot(i)));
    let mut nb = Function::new(params, body.inputs.clone());
    let renumber = |i: usize| if i < k { i } else { i + k };
    let mut map: Vec<Value> = Vec::with_capacity(body.len());
    for inst in body.insts() {
        let op = match inst.op {
            Op::Param(i) => Op::Param(renumber(i)),
            ref op => op.clone(),
        };
        let args = inst.args.iter().map(|a| map[a.index()]).collect();
        let v = nb.push(op, args, inst.span);
        if let Some(n) = &inst.name {
            nb.set_name(v, n);
        }
        map.push(v);
    }
    let end = nb.len();
    let mut t = Tangents::new(&nb);
    for i in 0..k {
        if let Some(p) = param(i) {
            let tp = nb.push(Op::Param(k + i), vec![], e.span);
            t.seed(map[p.index()], tp);
        }
    }
    for (j, &i) in captured.iter().enumerate() {
        if let Some(p) = param(i) {
            let tp = nb.push(Op::Param(2 * k + (args.len() - k) + j), vec![], e.span);
            t.seed(map[p.index()], tp);
        }
    }
    t.run(&mut nb, 0, end);
    // Outputs: new carried values, their tangents, stacked values, theirs.
    let outs = body.outputs.clone();
    let mut tangents_out = Vec::new();
    for o in &outs {
        let v = map[o.value.index()];
        let dv = match t.of(v) {
            Some(dv) => dv,
            None => {
                let shape = nb.shape(v).clone();
                splat(&mut nb, 0.0, &shape, e.span)
            }
        };
        tangents_out.push(dv);
    }
    let mut outputs = Vec::new();
    let named = |o: &crate::ir::Output, value: Value, prefix: &str| crate::ir::Output {
        role: o.role.clone(),
        name: format!("{prefix}{}", o.name),
        value,
    };
    for o in outs.iter().take(k) {
        outputs.push(named(o, map[o.value.index()], ""));
    }
    for (o, &dv) in outs.iter().zip(&tangents_out).take(k) {
        outputs.push(named(o, dv, "d"));
    }
    for o in outs.iter().skip(k) {
        outputs.push(named(o, map[o.value.index()], ""));
    }
    for (o, &dv) in outs.iter().zip(&tangents_out).skip(k) {
        outputs.push(named(o, dv, "d"));
    }
    nb.outputs = outputs;
    let new = Loop {
        trips: l.trips,
        carries: 2 * k,
        body: nb,
        recompute: l.recompute,
    };
    // Arguments: initial values, their tangents, captured values, theirs.
    let mut new_args: Vec<Value> = args[..k].to_vec();
    for i in 0..k {
        new_args.push(e.or_zeros(d[i], args[i]));
    }
    new_args.extend_from_slice(&args[k..]);
    new_args.extend(
        captured
            .iter()
            .map(|&i| d[i].expect("captured with a tangent")),
    );
    let (offsets, _) = new.offsets();
    let parts = new.parts();
    let n = outs.len();
    let lv = e.push(Op::Loop(Box::new(new)), new_args);
    // The tangent parts, in the original's packed order: the carried
    // values' (parts k..2k), then the stacked values' (after the stacked).
    let stacked = n - k;
    let pick: Vec<usize> = (k..2 * k)
        .chain(2 * k + stacked..2 * k + 2 * stacked)
        .collect();
    let pieces: Vec<Value> = pick
        .iter()
        .map(|&p| {
            let (at, len) = (offsets[p], parts[p].size());
            e.push(
                Op::Slice(vec![crate::ir::SliceAxis::Range(at, at + len)]),
                vec![lv],
            )
        })
        .collect();
    if pieces.len() == 1 {
        pieces[0]
    } else {
        e.push(Op::Concat, pieces)
    }
}
