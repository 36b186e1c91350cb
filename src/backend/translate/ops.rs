//! Every operation dispatched to its lowering (one exhaustive `match`), the
//! operations that read the function's arguments (parameters, inputs,
//! constants) and `one_hot`, and one step of the plan: an instruction, a
//! fused run, a `softmax` and `log_softmax` pair, or a product and a sum
//! along the rows of its left operand.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{self as cl, types, InstBuilder, MemFlagsData};
use cranelift_module::{DataDescription, Linkage};

use super::{offset_bytes, Ix, Loc, Opnd, Translator};
use crate::backend::abi::{INPUTS, PARAMS};
use crate::backend::plan::fuse::{self, ElementOp};
use crate::backend::plan::{products, views};
use crate::backend::plan::{
    ERROR_SLOT, EXAMPLE_SLOT, FAULT_CLASS, FAULT_HI_SLOT, FAULT_KIND_SLOT, FAULT_LEN_SLOT,
    FAULT_LO_SLOT,
};
use crate::ir::{Op, Value};

impl Translator<'_, '_> {
    /// Translates one step of the layout, whose arguments are translated
    /// already: one instruction, a fused run, a `softmax` and `log_softmax`
    /// pair, or a product and a sum along its left operand's rows (one call
    /// of the kernel).
    pub(super) fn step(&mut self, step: &[Value]) -> Result<(), String> {
        match step {
            [v] => {
                let loc = self.inst(*v)?;
                self.set_loc(*v, loc);
            }
            run => {
                let pair = match *run {
                    [a, b] => fuse::softmax_pair(self.f, a, b),
                    _ => None,
                };
                if let &[c, t] = run {
                    if fuse::transposed_concat(self.f, c, t) {
                        let loc = self.transposed_concat(c, t);
                        self.set_loc(t, loc);
                        return Ok(());
                    }
                }
                if let Some(p) = pair {
                    self.softmax_pair(p);
                } else if let Some((p, s)) = products::summed_product(self.f, run) {
                    let sums = self.dest(s);
                    let [a, b] = self.f.inst(p).args[..] else {
                        unreachable!("a product has two operands")
                    };
                    let loc = self.matmul(p, a, b, Some(sums));
                    self.set_loc(p, loc);
                    let loc = self.dst_loc(sums);
                    self.set_loc(s, loc);
                } else {
                    self.fused(run, &self.layout.internal)?;
                }
            }
        }
        Ok(())
    }

    /// Translates the instruction of `v`, whose arguments are translated
    /// already, and returns where its value is.
    fn inst(&mut self, v: Value) -> Result<Loc, String> {
        let f = self.f;
        let inst = f.inst(v);
        let scalar = inst.shape.is_scalar();
        let args = &inst.args;
        if self.layout.carried[v] {
            // Made by the loops that carry it, in their values.
            let dst = self.dest(v);
            return Ok(self.dst_loc(dst));
        }
        Ok(match &inst.op {
            Op::Param(k) => self.slot_value(PARAMS, *k, scalar),
            Op::Input(k) => self.slot_value(INPUTS, *k, scalar),
            Op::Const(c) => {
                if scalar {
                    Loc::Reg(self.fconst(c.0.data[0]))
                } else {
                    self.constant(v, &c.0.data)?
                }
            }
            Op::Unary(u) => self.map_op(v, args, ElementOp::Unary(*u)),
            Op::Binary(op) => self.map_op(v, args, ElementOp::Binary(*op)),
            Op::Select => self.map_op(v, args, ElementOp::Select),
            Op::Broadcast(_) => self.map_op(v, args, ElementOp::Broadcast),
            Op::MatMul => self.matmul(v, args[0], args[1], None),
            Op::Outer => self.outer(v, args[0], args[1]),
            Op::Transpose => self.transpose(v, args[0]),
            Op::Sum => Loc::Reg(self.sum(args[0])),
            Op::ReduceMax => match self.max_in_parts(args[0])? {
                Some(m) => Loc::Reg(m),
                None => Loc::Reg(self.reduce_max(args[0])),
            },
            Op::Norm => Loc::Reg(self.norm(args[0])),
            Op::LogSumExp => Loc::Reg(self.logsumexp(args[0])),
            Op::ReduceAxes(kind, axes) => self.reduce_axes(v, args[0], *kind, axes),
            Op::BroadcastAxes(axes, _) => self.broadcast_axes(v, args[0], axes),
            Op::Softmax(axis) => self.softmax(v, args[0], *axis),
            Op::LogSoftmax(axis) => self.log_softmax(v, args, *axis),
            Op::ArgMax(axis) => self.argmax(v, args[0], *axis),
            Op::Slice(axes) => match views::view_offset(f, v) {
                Some(off) => self.loc(args[0]).offset(off),
                None => self.slice(v, args[0], axes),
            },
            Op::Unslice(axes, into) => self.unslice(v, args[0], axes, into),
            Op::Pack => self.pack(v, args),
            Op::OneHot(n) => self.one_hot(v, args[0], *n),
            Op::Index => self.index(v, args[0], args[1]),
            Op::IndexAdd => self.index_add(v, args[0], args[1], args[2]),
            Op::IndexSet => self.index_set(v, args[0], args[1], args[2]),
            Op::Gather => self.gather(v, args[0], args[1]),
            Op::ScatterAdd => self.scatter_add(v, args[0], args[1], args[2]),
            Op::Reshape(_) => match views::view_offset(f, v) {
                Some(off) => self.loc(args[0]).offset(off),
                None => self.reshape(v, args[0]),
            },
            Op::Permute(perm) => self.permute(v, args[0], perm),
            // The arguments one after the other, as `pack`'s.
            Op::Concat => self.pack(v, args),
            Op::Window(w) => self.window(v, args, *w),
            Op::Loop(l) => self.loop_op(v, args, l)?,
        })
    }

    /// A parameter or input: a scalar is loaded once, a tensor stays in the
    /// caller's buffer.
    fn slot_value(&mut self, table: usize, k: usize, scalar: bool) -> Loc {
        let mut loc = Loc::Table(table, k, 0);
        if let (INPUTS, Some(example)) = (table, self.example) {
            // The example's row: `size` numbers from `example * size` on.
            let size = self.f.inputs[k].shape.size();
            let base = self.table_entry(INPUTS, k);
            let bytes = self
                .b
                .ins()
                .imul_imm_s(example, (size << self.shift) as i64);
            loc = Loc::Ptr(self.b.ins().iadd(base, bytes), 0);
        }
        if scalar {
            let p = self.opnd_of(loc);
            Loc::Reg(self.read(p, Ix::c(0)))
        } else {
            loc
        }
    }

    /// A tensor constant, as a read-only data object named after `v`
    /// ([`Translator::data_name`]).
    fn constant(&mut self, v: Value, data: &[f64]) -> Result<Loc, String> {
        let name = self.data_name("gradc_const", v);
        let id = self
            .module
            .declare_data(&name, Linkage::Local, false, false)
            .map_err(|e| format!("declaring {name}: {e}"))?;
        let mut desc = DataDescription::new();
        let bytes: Vec<u8> = if self.st == types::F64 {
            data.iter().flat_map(|x| x.to_le_bytes()).collect()
        } else {
            data.iter()
                .flat_map(|&x| (x as f32).to_le_bytes())
                .collect()
        };
        desc.define(bytes.into_boxed_slice());
        desc.set_align(16);
        self.module
            .define_data(id, &desc)
            .map_err(|e| format!("defining {name}: {e}"))?;
        Ok(Loc::Data(id, 0))
    }

    /// The name of a data object of `v`: `prefix` and its position, and in
    /// a loop's body the number of data objects defined before (a body's
    /// values are numbered on their own, and a short loop's body is
    /// translated once per step).
    pub(super) fn data_name(&mut self, prefix: &str, v: Value) -> String {
        let name = match self.fault_at {
            None => format!("{prefix}{}", v.index()),
            Some(_) => format!("{prefix}{}_body{}", v.index(), self.body_consts),
        };
        self.body_consts += 1;
        name
    }

    /// Zeros with a 1 at the class; a class that is not an integer in
    /// `0..n` fails (see [`Translator::checked_index`]).
    fn one_hot(&mut self, v: Value, c: Value, n: usize) -> Loc {
        let c = self.scalar_of(c);
        let dst = self.dest(v);
        self.fill(dst, n, 0.0);
        let k = self.checked_index(v, c, n, FAULT_CLASS);
        let one = self.fconst(1.0);
        self.write(
            dst,
            Ix {
                dynamic: Some(k),
                konst: 0,
            },
            one,
        );
        self.dst_loc(dst)
    }

    /// The value of a scalar operand, in a register.
    pub(super) fn scalar_of(&mut self, c: Value) -> cl::Value {
        match self.operand(c) {
            Opnd::Reg(x) => x,
            mem => self.read(mem, Ix::c(0)),
        }
    }

    /// `c` as an index in `0..n`, or, if it is not an integer in that range,
    /// the failure of instruction `v`: `c` is left in the error slot (with
    /// the example of a batch) and the function returns the status of `v`
    /// (its position plus one, see [`crate::backend::abi`]) at once. Inside
    /// a loop's body, the status is that of the loop of the function, and
    /// the fault's kind (`kind`), `n` and the span of `v` are left in their
    /// slots too.
    pub(super) fn checked_index(
        &mut self,
        v: Value,
        c: cl::Value,
        n: usize,
        kind: f64,
    ) -> cl::Value {
        // In range and whole: 0 <= c < n and c == (c as i64) as f64. NaN fails
        // the first test; the conversion saturates, never traps.
        let zero = self.fconst(0.0);
        let top = self.fconst(n as f64);
        let ge = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, c, zero);
        let lt = self.b.ins().fcmp(FloatCC::LessThan, c, top);
        let k = self.b.ins().fcvt_to_sint_sat(self.ptr, c);
        let back = self.b.ins().fcvt_from_sint(self.st, k);
        let whole = self.b.ins().fcmp(FloatCC::Equal, c, back);
        let ok = self.b.ins().band(ge, lt);
        let ok = self.b.ins().band(ok, whole);
        let good = self.b.create_block();
        let bad = self.b.create_block();
        self.b.ins().brif(ok, good, &[], bad, &[]);
        self.b.switch_to_block(bad);
        // The fault slots are f64s whatever the element type.
        let store = |t: &mut Self, x: cl::Value, slot: usize| {
            let at = offset_bytes(slot);
            t.b.ins().store(MemFlagsData::trusted(), x, t.slots, at);
        };
        let wide = if self.st == types::F64 {
            c
        } else {
            self.b.ins().fpromote(types::F64, c)
        };
        store(self, wide, ERROR_SLOT);
        if let Some(example) = self.example {
            let e = self.b.ins().fcvt_from_uint(types::F64, example);
            store(self, e, EXAMPLE_SLOT);
        }
        let failing = match self.fault_at {
            Some(outer) => {
                let span = self.f.inst(v).span;
                for (x, slot) in [
                    (kind, FAULT_KIND_SLOT),
                    (n as f64, FAULT_LEN_SLOT),
                    (span.lo as f64, FAULT_LO_SLOT),
                    (span.hi as f64, FAULT_HI_SLOT),
                ] {
                    let x = self.b.ins().f64const(x);
                    store(self, x, slot);
                }
                outer
            }
            None => v,
        };
        let status = self.b.ins().iconst(types::I64, failing.index() as i64 + 1);
        self.b.ins().return_(&[status]);
        self.b.switch_to_block(good);
        k
    }
}
