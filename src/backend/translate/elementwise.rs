//! The arithmetic of one element (of f64s, or of pairs of them as f64x2),
//! and the loops of an elementwise operation over its result.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{self as cl, Endianness, InstBuilder, MemFlagsData};

use super::{Ix, Loc, Opnd, Translator};
use crate::backend::libm::Callee;
use crate::backend::plan::fuse::ElementOp;
use crate::ir::{Binary, Unary, Value};

impl Translator<'_, '_> {
    /// `v`, the elementwise operation `op` of `args`: pairs of elements at
    /// a time if it works on f64x2 as on f64.
    pub(super) fn map_op(&mut self, v: Value, args: &[Value], op: ElementOp) -> Loc {
        if self.lane_wise(op) {
            self.map_simd(v, args, &mut |t, x| t.apply(op, x))
        } else {
            self.map(v, args, &mut |t, x| t.apply(op, x))
        }
    }

    /// One element of an elementwise operation.
    pub(super) fn apply(&mut self, op: ElementOp, xs: &[cl::Value]) -> cl::Value {
        match op {
            ElementOp::Unary(u) => self.unary(u, xs[0]),
            ElementOp::Binary(b) => self.binary(b, xs[0], xs[1]),
            ElementOp::Select => self.select_nonzero(xs[0], xs[1], xs[2]),
            ElementOp::Broadcast => xs[0],
        }
    }

    /// One element of `u`: an instruction or two, or a host call.
    fn unary(&mut self, u: Unary, x: cl::Value) -> cl::Value {
        match u {
            Unary::Neg => self.b.ins().fneg(x),
            Unary::Sqrt => self.b.ins().sqrt(x),
            Unary::Abs => self.b.ins().fabs(x),
            Unary::Sign => self.lanes_of(&[x], &mut |t, v| {
                // x > 0: 1, x < 0: -1, x == 0: +0, NaN: x.
                let [zero, one, minus] = [0.0, 1.0, -1.0].map(|c| t.vconst(c));
                let is_zero = t.mask(FloatCC::Equal, v[0], zero);
                let r = t.b.ins().bitselect(is_zero, zero, v[0]);
                let neg = t.mask(FloatCC::LessThan, v[0], zero);
                let r = t.b.ins().bitselect(neg, minus, r);
                let pos = t.mask(FloatCC::GreaterThan, v[0], zero);
                t.b.ins().bitselect(pos, one, r)
            }),
            Unary::Relu => self.lanes_of(&[x], &mut |t, v| {
                // x if x > 0 or NaN, else +0 (whose bits are all zero).
                let zero = t.vconst(0.0);
                let keep = t.mask(FloatCC::UnorderedOrGreaterThan, v[0], zero);
                t.b.ins().band(v[0], keep)
            }),
            // Exact operations, so they agree with the interpreter's
            // `floor` and `round_ties_even`.
            Unary::Floor => self.b.ins().floor(x),
            Unary::Round => self.b.ins().nearest(x),
            Unary::Exp => self.exp(x),
            Unary::Sigmoid => self.sigmoid(x),
            Unary::Tanh => self.tanh(x),
            Unary::Log
            | Unary::Sin
            | Unary::Cos
            | Unary::Softplus
            | Unary::Log1p
            | Unary::Expm1
            | Unary::Erf => self.call(Callee::Unary(u), &[x]),
        }
    }

    /// One element of `op`: an instruction, a comparison as 1 or 0, or a host
    /// call.
    fn binary(&mut self, op: Binary, x: cl::Value, y: cl::Value) -> cl::Value {
        let cmp = |t: &mut Self, cc| {
            t.lanes_of(&[x, y], &mut |t, v| {
                // 1 where `cc` holds, else +0 (whose bits are all zero).
                let holds = t.mask(cc, v[0], v[1]);
                let one = t.vconst(1.0);
                t.b.ins().band(holds, one)
            })
        };
        match op {
            Binary::Add => self.b.ins().fadd(x, y),
            Binary::Sub => self.b.ins().fsub(x, y),
            Binary::Mul => self.b.ins().fmul(x, y),
            Binary::Div => self.fdiv(x, y),
            Binary::Max => self.maximum(x, y),
            Binary::Min => self.minimum(x, y),
            Binary::Eq => cmp(self, FloatCC::Equal),
            Binary::Ne => cmp(self, FloatCC::NotEqual),
            Binary::Lt => cmp(self, FloatCC::LessThan),
            Binary::Le => cmp(self, FloatCC::LessThanOrEqual),
            Binary::Gt => cmp(self, FloatCC::GreaterThan),
            Binary::Ge => cmp(self, FloatCC::GreaterThanOrEqual),
            Binary::Pow | Binary::BceLogits => self.call(Callee::Binary(op), &[x, y]),
        }
    }

    /// `x / y`. By a constant power of two whose reciprocal the type holds
    /// exactly, a product by that reciprocal: the exact quotient and the
    /// exact product are the same number, so they round to the same bits
    /// (subnormal, infinite and NaN results alike), and a multiply costs a
    /// fraction of a divide (`ode`'s stages halve, a 2 x 2 pool quarters).
    pub(super) fn fdiv(&mut self, x: cl::Value, y: cl::Value) -> cl::Value {
        match self.known(y).and_then(|c| exact_reciprocal(c, self.st)) {
            Some(r) => {
                let r = self.fconst(r);
                let ty = self.b.func.dfg.value_type(y);
                let r = self.splat_as(ty, r);
                self.b.ins().fmul(x, r)
            }
            None => self.b.ins().fdiv(x, y),
        }
    }

    /// The number `v` is, when it is a constant (or a constant splat to
    /// every lane).
    fn known(&self, v: cl::Value) -> Option<f64> {
        let dfg = &self.b.func.dfg;
        let cl::ValueDef::Result(inst, _) = dfg.value_def(v) else {
            return None;
        };
        match dfg.insts[inst] {
            cl::InstructionData::UnaryIeee64 { imm, .. } => Some(f64::from_bits(imm.bits())),
            cl::InstructionData::UnaryIeee32 { imm, .. } => Some(f32::from_bits(imm.bits()) as f64),
            cl::InstructionData::Unary {
                opcode: cl::Opcode::Splat,
                arg,
            } => self.known(arg),
            _ => None,
        }
    }

    /// `if c != 0 then a else b`; a NaN `c` is true, like `!= 0` in Rust.
    fn select_nonzero(&mut self, c: cl::Value, a: cl::Value, b: cl::Value) -> cl::Value {
        self.lanes_of(&[c, a, b], &mut |t, v| {
            let zero = t.vconst(0.0);
            let nonzero = t.mask(FloatCC::NotEqual, v[0], zero);
            t.b.ins().bitselect(nonzero, v[1], v[2])
        })
    }

    /// `op` of `xs` (elements, or vectors) done on vectors: elements go in
    /// lane 0 of one and come out again. So comparisons and choices are
    /// masks, lane by lane, not branches: the signs of a model's values
    /// are as good as random, and a mispredicted branch per element cost
    /// more than the arithmetic.
    pub(super) fn lanes_of(
        &mut self,
        xs: &[cl::Value],
        op: &mut dyn FnMut(&mut Self, &[cl::Value]) -> cl::Value,
    ) -> cl::Value {
        if self.b.func.dfg.value_type(xs[0]).is_vector() {
            return op(self, xs);
        }
        let vt = self.vt;
        let vs: Vec<cl::Value> = xs
            .iter()
            .map(|&x| self.b.ins().scalar_to_vector(vt, x))
            .collect();
        let y = op(self, &vs);
        self.b.ins().extractlane(y, 0)
    }

    /// The constant `x` in every lane of a vector.
    pub(super) fn vconst(&mut self, x: f64) -> cl::Value {
        let x = self.fconst(x);
        self.b.ins().splat(self.vt, x)
    }

    /// Where `x cc y` holds, lane by lane, as a vector of `x`'s type whose
    /// lanes are all ones or all zeros.
    pub(super) fn mask(&mut self, cc: FloatCC, x: cl::Value, y: cl::Value) -> cl::Value {
        let c = self.b.ins().fcmp(cc, x, y);
        let little = MemFlagsData::new().with_endianness(Endianness::Little);
        self.b.ins().bitcast(self.vt, little, c)
    }

    /// The larger of `x` and `y`: NaN if either is, +0 of -0 and +0, as
    /// the interpreter's `max` (a NaN's payload aside). Of vectors, x86's
    /// `maxpd` taken both ways (Cranelift's `bitselect` of a `<`), which
    /// answers its second operand for a NaN or for two zeros: the AND of
    /// the two is +0 of two zeros, and the mask of the unordered
    /// comparison, all ones (a NaN), is ORed in where either is NaN. Five
    /// instructions where Cranelift's `fmax`, which also makes a NaN
    /// canonical, takes eight (`kmeans`' nearest centroid).
    pub(super) fn maximum(&mut self, x: cl::Value, y: cl::Value) -> cl::Value {
        if !self.b.func.dfg.value_type(x).is_vector() {
            return self.b.ins().fmax(x, y);
        }
        let y_less = self.mask(FloatCC::LessThan, y, x);
        let xy = self.b.ins().bitselect(y_less, x, y);
        let x_less = self.mask(FloatCC::LessThan, x, y);
        let yx = self.b.ins().bitselect(x_less, y, x);
        let both = self.b.ins().band(xy, yx);
        let nan = self.mask(FloatCC::Unordered, x, y);
        self.b.ins().bor(both, nan)
    }

    /// The smaller of `x` and `y`: NaN if either is, -0 of -0 and +0, as
    /// the interpreter's `min` (a NaN's payload aside). Of vectors, x86's
    /// `minpd` taken both ways, as [`Self::maximum`]: their OR is -0 of two
    /// zeros, and a NaN where either is one (the NaN's exponent and some
    /// of its fraction set). Three instructions where Cranelift's `fmin`
    /// takes seven.
    pub(super) fn minimum(&mut self, x: cl::Value, y: cl::Value) -> cl::Value {
        if !self.b.func.dfg.value_type(x).is_vector() {
            return self.b.ins().fmin(x, y);
        }
        let x_less = self.mask(FloatCC::LessThan, x, y);
        let xy = self.b.ins().bitselect(x_less, x, y);
        let y_less = self.mask(FloatCC::LessThan, y, x);
        let yx = self.b.ins().bitselect(y_less, y, x);
        self.b.ins().bor(xy, yx)
    }

    /// `v`, an elementwise operation `op` of `args`: a register for a
    /// scalar result, else a loop over the result's elements (scalar
    /// arguments broadcast).
    pub(super) fn map(
        &mut self,
        v: Value,
        args: &[Value],
        op: &mut dyn FnMut(&mut Self, &[cl::Value]) -> cl::Value,
    ) -> Loc {
        let shape = self.f.shape(v);
        let opnds: Vec<Opnd> = args.iter().map(|&a| self.operand(a)).collect();
        if shape.is_scalar() {
            let xs: Vec<cl::Value> = opnds.iter().map(|&o| self.read(o, Ix::c(0))).collect();
            return Loc::Reg(op(self, &xs));
        }
        let dst = self.dest(v);
        let mut xs = Vec::with_capacity(opnds.len());
        self.for_each(shape.size(), &mut |t, ix| {
            xs.clear();
            for &o in &opnds {
                xs.push(t.read(o, ix));
            }
            let y = op(t, &xs);
            t.write(dst, ix, y);
        });
        self.dst_loc(dst)
    }

    /// Like [`Self::map`], for an `op` that works on f64 and f64x2 alike: pairs
    /// of elements at a time, then the last one if the size is odd.
    fn map_simd(
        &mut self,
        v: Value,
        args: &[Value],
        op: &mut dyn FnMut(&mut Self, &[cl::Value]) -> cl::Value,
    ) -> Loc {
        let n = self.f.shape(v).size();
        let (lanes, vt) = (self.lanes, self.vt);
        if n < lanes {
            return self.map(v, args, op);
        }
        let opnds: Vec<Opnd> = args.iter().map(|&a| self.operand(a)).collect();
        let splats: Vec<Opnd> = opnds
            .iter()
            .map(|&o| match o {
                Opnd::Reg(x) => Opnd::Reg(self.b.ins().splat(vt, x)),
                mem => mem,
            })
            .collect();
        let dst = self.dest(v);
        let mut xs = Vec::with_capacity(opnds.len());
        self.for_each_vector(n - n % lanes, lanes, &mut |t, ix| {
            xs.clear();
            for &o in &splats {
                xs.push(t.read_as(vt, o, ix));
            }
            let y = op(t, &xs);
            t.write(dst, ix, y);
        });
        for k in n - n % lanes..n {
            let ix = Ix::c(k);
            let xs: Vec<cl::Value> = opnds.iter().map(|&o| self.read(o, ix)).collect();
            let y = op(self, &xs);
            self.write(dst, ix, y);
        }
        self.dst_loc(dst)
    }
}

impl Translator<'_, '_> {
    /// Whether `op` works on f64x2 as on f64, lane by lane: one
    /// instruction, a comparison by masks, or a pair kernel (`math`).
    pub(super) fn lane_wise(&self, op: ElementOp) -> bool {
        match op {
            ElementOp::Unary(Unary::Exp | Unary::Sigmoid | Unary::Tanh) => self.pair_math(),
            ElementOp::Unary(u) => lane_wise_unary(u),
            ElementOp::Binary(b) => lane_wise_binary(b),
            ElementOp::Broadcast | ElementOp::Select => true,
        }
    }
}

/// Whether `op` calls a function for each element or pair (`exp`, `log`,
/// `pow`, ...), rather than being a few instructions.
pub(super) fn calls(op: ElementOp) -> bool {
    match op {
        ElementOp::Unary(u) => !lane_wise_unary(u),
        ElementOp::Binary(b) => !lane_wise_binary(b),
        ElementOp::Broadcast | ElementOp::Select => false,
    }
}

/// Whether `u` works on f64x2 as on f64, lane by lane: one instruction, or
/// a comparison and a choice by masks.
fn lane_wise_unary(u: Unary) -> bool {
    match u {
        Unary::Neg
        | Unary::Abs
        | Unary::Sqrt
        | Unary::Floor
        | Unary::Round
        | Unary::Sign
        | Unary::Relu => true,
        Unary::Exp
        | Unary::Log
        | Unary::Sin
        | Unary::Cos
        | Unary::Tanh
        | Unary::Sigmoid
        | Unary::Softplus
        | Unary::Log1p
        | Unary::Expm1
        | Unary::Erf => false,
    }
}

/// Whether `op` works on f64x2 as on f64, lane by lane: one instruction, or
/// a comparison by masks.
fn lane_wise_binary(op: Binary) -> bool {
    match op {
        Binary::Add
        | Binary::Sub
        | Binary::Mul
        | Binary::Div
        | Binary::Max
        | Binary::Min
        | Binary::Eq
        | Binary::Ne
        | Binary::Lt
        | Binary::Le
        | Binary::Gt
        | Binary::Ge => true,
        Binary::Pow | Binary::BceLogits => false,
    }
}

/// `1 / c` when `c` is a power of two (of either sign) whose reciprocal
/// `ty` (f64, or f32 whose values `c` then holds) holds exactly, subnormal
/// or not.
fn exact_reciprocal(c: f64, ty: cl::Type) -> Option<f64> {
    let bits = c.abs().to_bits();
    let (field, fraction) = ((bits >> 52) as i32, bits & ((1 << 52) - 1));
    let exponent = match (field, fraction) {
        (0, f) if f.is_power_of_two() => -1074 + f.trailing_zeros() as i32,
        (1..=2046, 0) => field - 1023,
        _ => return None,
    };
    let (least, most) = if ty == cl::types::F32 {
        (-149, 127)
    } else {
        (-1074, 1023)
    };
    (least..=most).contains(&-exponent).then(|| 1.0 / c)
}
