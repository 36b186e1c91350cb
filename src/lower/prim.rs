//! Builtins lowered to primitives: composite ones (`mean` is a sum divided
//! by a count, `mse` a sum of squares, `min` the negated maximum of the
//! negation) spelled out; the numerically delicate ones kept whole.

use super::*;

impl Lowerer {
    /// A reduction along axes: `Op::ReduceAxes`, with `mean` a sum divided
    /// by the count of a slice and `min` the negated maximum of -x (as for
    /// the whole tensor), and the reduced axes kept with length 1 by a
    /// reshape.
    pub(super) fn reduce_axes(&mut self, r: Reduction, axes: Axes, x: Value, span: Span) -> Value {
        let list = axes.list();
        let shape = self.f.shape(x).clone();
        let along = |l: &mut Self, kind: Reduce, x: Value| {
            l.f.push(Op::ReduceAxes(kind, list.clone()), vec![x], span)
        };
        let y = match r {
            Reduction::Sum => along(self, Reduce::Sum, x),
            Reduction::Mean => {
                let s = along(self, Reduce::Sum, x);
                let n: usize = list.iter().map(|&a| shape.dims()[a]).product();
                if n == 1 {
                    s
                } else {
                    let n = self.konst(n as f64, span);
                    self.bin(Binary::Div, s, n, span)
                }
            }
            Reduction::Max => along(self, Reduce::Max, x),
            Reduction::Min => {
                let n = self.un(Unary::Neg, x, span);
                let m = along(self, Reduce::Max, n);
                self.un(Unary::Neg, m, span)
            }
            Reduction::Norm => along(self, Reduce::Norm, x),
            Reduction::LogSumExp => along(self, Reduce::LogSumExp, x),
        };
        if !axes.keepdims {
            return y;
        }
        let kept = axes.shape(&shape).expect("checked axes");
        self.f.push(Op::Reshape(kept), vec![y], span)
    }

    /// The index of the first largest element along `axis`, or of the whole
    /// tensor flattened in row-major order.
    pub(super) fn argmax(&mut self, x: Value, axis: Option<usize>, span: Span) -> Value {
        if let Some(axis) = axis {
            return self.f.push(Op::ArgMax(axis), vec![x], span);
        }
        let shape = self.f.shape(x).clone();
        let flat = if shape.rank() == 1 {
            x
        } else {
            self.f
                .push(Op::Reshape(Shape::vector(shape.size())), vec![x], span)
        };
        self.f.push(Op::ArgMax(0), vec![flat], span)
    }

    /// The mean of all elements of `v`.
    pub(super) fn mean(&mut self, v: Value, span: Span) -> Value {
        let n = self.f.shape(v).size();
        let s = if self.f.shape(v).is_scalar() {
            v
        } else {
            self.f.push(Op::Sum, vec![v], span)
        };
        if n == 1 {
            return s;
        }
        let n = self.konst(n as f64, span);
        self.bin(Binary::Div, s, n, span)
    }

    /// A builtin applied to lowered operands.
    pub(super) fn prim(&mut self, p: Prim, v: &[Value], span: Span) -> Value {
        use Prim::*;
        let unary = |l: &mut Self, op: Unary| l.un(op, v[0], span);
        let binary = |l: &mut Self, op: Binary| l.bin(op, v[0], v[1], span);
        match p {
            Neg => unary(self, Unary::Neg),
            Exp => unary(self, Unary::Exp),
            Log => unary(self, Unary::Log),
            Sqrt => unary(self, Unary::Sqrt),
            Abs => unary(self, Unary::Abs),
            Sign => unary(self, Unary::Sign),
            Sin => unary(self, Unary::Sin),
            Cos => unary(self, Unary::Cos),
            Tanh => unary(self, Unary::Tanh),
            Sigmoid => unary(self, Unary::Sigmoid),
            Relu => unary(self, Unary::Relu),
            Softplus => unary(self, Unary::Softplus),
            Log1p => unary(self, Unary::Log1p),
            Expm1 => unary(self, Unary::Expm1),
            Erf => unary(self, Unary::Erf),
            Floor => unary(self, Unary::Floor),
            Round => unary(self, Unary::Round),
            Gelu => {
                // 0.5 x (1 + erf(x / √2)), PyTorch's default (exact) GELU.
                let x = v[0];
                let root2 = self.konst(std::f64::consts::SQRT_2, span);
                let z = self.bin(Binary::Div, x, root2, span);
                let e = self.un(Unary::Erf, z, span);
                let one = self.konst(1.0, span);
                let p = self.bin(Binary::Add, one, e, span);
                let half = self.konst(0.5, span);
                let hx = self.bin(Binary::Mul, half, x, span);
                self.bin(Binary::Mul, hx, p, span)
            }
            LeakyRelu | Elu => {
                // x where x > 0, else slope x (alpha (exp(x) - 1)): a select,
                // so the derivative at 0 is the negative side's, as PyTorch.
                let (x, k) = (v[0], v[1]);
                let zero = self.konst(0.0, span);
                let pos = self.bin(Binary::Gt, x, zero, span);
                let neg = if p == LeakyRelu {
                    x
                } else {
                    self.un(Unary::Expm1, x, span)
                };
                let neg = self.bin(Binary::Mul, k, neg, span);
                self.f.push(Op::Select, vec![pos, x, neg], span)
            }
            Clip => {
                // m = (x < lo ? lo : x), then (m > hi ? hi : m): min(max(x,
                // lo), hi) as PyTorch's clamp (hi wins when lo > hi), with
                // the gradient 1 inside [lo, hi], bounds included, and 0
                // outside; a bound's own gradient where it is taken.
                // An infinite bound (a default) clips nothing: no x < -inf.
                let (x, lo, hi) = (v[0], v[1], v[2]);
                let m = if splat_value(&self.f, lo) == Some(f64::NEG_INFINITY) {
                    x
                } else {
                    let below = self.bin(Binary::Lt, x, lo, span);
                    self.f.push(Op::Select, vec![below, lo, x], span)
                };
                if splat_value(&self.f, hi) == Some(f64::INFINITY) {
                    return m;
                }
                let above = self.bin(Binary::Gt, m, hi, span);
                self.f.push(Op::Select, vec![above, hi, m], span)
            }
            Add => binary(self, Binary::Add),
            Sub => binary(self, Binary::Sub),
            Mul => binary(self, Binary::Mul),
            Div => binary(self, Binary::Div),
            Pow => binary(self, Binary::Pow),
            Eq => binary(self, Binary::Eq),
            Ne => binary(self, Binary::Ne),
            Lt => binary(self, Binary::Lt),
            Le => binary(self, Binary::Le),
            Gt => binary(self, Binary::Gt),
            Ge => binary(self, Binary::Ge),
            Max2 => binary(self, Binary::Max),
            Min2 => binary(self, Binary::Min),
            MatMul => matmul::lower(&mut self.f, v[0], v[1], span),
            Dot => self.f.push(Op::MatMul, v.to_vec(), span),
            Outer => self.f.push(Op::Outer, v.to_vec(), span),
            Transpose => self.f.push(Op::Transpose, v.to_vec(), span),
            Sum => self.f.push(Op::Sum, v.to_vec(), span),
            Mean => self.mean(v[0], span),
            MaxAll => self.f.push(Op::ReduceMax, v.to_vec(), span),
            MinAll => {
                // min(x) = -max(-x): one reduction to differentiate, not two.
                let n = self.un(Unary::Neg, v[0], span);
                let m = self.f.push(Op::ReduceMax, vec![n], span);
                self.un(Unary::Neg, m, span)
            }
            Norm => self.f.push(Op::Norm, v.to_vec(), span),
            LogSumExp => self.f.push(Op::LogSumExp, v.to_vec(), span),
            ReduceAxes(r, axes) => self.reduce_axes(r, axes, v[0], span),
            Softmax(axis) => self.f.push(Op::Softmax(axis), v.to_vec(), span),
            LogSoftmax(axis) => self.f.push(Op::LogSoftmax(axis), v.to_vec(), span),
            ArgMax(axis) => self.argmax(v[0], axis, span),
            ArgMin(axis) => {
                // The first smallest of x is the first largest of -x (a NaN
                // stays a NaN).
                let n = self.un(Unary::Neg, v[0], span);
                self.argmax(n, axis, span)
            }
            OneHot(n) => self.f.push(Op::OneHot(n), v.to_vec(), span),
            Conv2d { stride, padding } => {
                let w = Window::Conv2d { stride, padding };
                self.f.push(Op::Window(w), v.to_vec(), span)
            }
            MaxPool2d { k, stride } => {
                let w = Window::MaxPool2d { k, stride };
                self.f.push(Op::Window(w), v.to_vec(), span)
            }
            AvgPool2d { k, stride } => {
                let w = Window::AvgPool2d { k, stride };
                self.f.push(Op::Window(w), v.to_vec(), span)
            }
            Mse => {
                let d = self.bin(Binary::Sub, v[0], v[1], span);
                let sq = self.bin(Binary::Mul, d, d, span);
                self.mean(sq, span)
            }
            Bce => {
                // -(y log p + (1 - y) log(1 - p)), elementwise, then the mean.
                // The logs are clamped below at -100, as PyTorch does, so that
                // a saturated p gives a large, finite loss and 0 log 0 = 0.
                // Clamping the argument, log(max(p, e^-100)), rather than the
                // log keeps the derivative finite too: 1 / e^-100 times 0.
                let (p, y) = (v[0], v[1]);
                let one = self.konst(1.0, span);
                let floor = self.konst(BCE_LOG_FLOOR.exp(), span);
                let clamped_p = self.bin(Binary::Max, p, floor, span);
                let log_p = self.un(Unary::Log, clamped_p, span);
                let q = self.bin(Binary::Sub, one, p, span);
                let clamped_q = self.bin(Binary::Max, q, floor, span);
                let log_q = self.un(Unary::Log, clamped_q, span);
                let ny = self.bin(Binary::Sub, one, y, span);
                let a = self.bin(Binary::Mul, y, log_p, span);
                let b = self.bin(Binary::Mul, ny, log_q, span);
                let s = self.bin(Binary::Add, a, b, span);
                let l = self.un(Unary::Neg, s, span);
                self.mean(l, span)
            }
            BceLogits => {
                let l = binary(self, Binary::BceLogits);
                self.mean(l, span)
            }
            CrossEntropy => {
                // -log_softmax(z)[c], as a dot product with one_hot(c).
                let n = self.f.shape(v[0]).size();
                let ls = self.f.push(Op::LogSoftmax(0), vec![v[0]], span);
                let oh = self.f.push(Op::OneHot(n), vec![v[1]], span);
                let picked = self.f.push(Op::MatMul, vec![ls, oh], span);
                self.un(Unary::Neg, picked, span)
            }
            Huber => {
                // r = a - b; 0.5 r^2 where |r| <= delta, else delta (|r| - delta/2).
                let delta = v[2];
                let r = self.bin(Binary::Sub, v[0], v[1], span);
                let ar = self.un(Unary::Abs, r, span);
                let small = self.bin(Binary::Le, ar, delta, span);
                let half = self.konst(0.5, span);
                let rr = self.bin(Binary::Mul, r, r, span);
                let quad = self.bin(Binary::Mul, half, rr, span);
                let hd = self.bin(Binary::Mul, half, delta, span);
                let excess = self.bin(Binary::Sub, ar, hd, span);
                let lin = self.bin(Binary::Mul, delta, excess, span);
                let l = self.f.push(Op::Select, vec![small, quad, lin], span);
                self.mean(l, span)
            }
        }
    }
}
