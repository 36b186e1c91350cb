//! Every operation dispatched to its lowering (one exhaustive `match`), the
//! operations that read the function's arguments (parameters, inputs,
//! constants) and `one_hot`, and one step of the plan: an instruction, or a
//! fused run.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData};
use cranelift_module::{DataDescription, Linkage};

use super::{dst_loc, offset_bytes, Ix, Loc, Opnd, Translator};
use crate::backend::abi::{INPUTS, PARAMS};
use crate::backend::plan::fuse::{self, ElementOp};
use crate::backend::plan::{ERROR_SLOT, EXAMPLE_SLOT};
use crate::ir::{Op, Value};

impl Translator<'_, '_> {
    /// Translates one step of the layout, whose arguments are translated
    /// already: one instruction, or a fused run.
    pub(super) fn step(&mut self, step: &[Value]) -> Result<(), String> {
        match step {
            [v] => {
                let loc = self.inst(*v)?;
                self.set_loc(*v, loc);
            }
            run => self.fused(run, &self.layout.internal),
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
        Ok(match &inst.op {
            Op::Param(k) => self.slot_value(PARAMS, *k, scalar),
            Op::Input(k) => self.slot_value(INPUTS, *k, scalar),
            Op::Const(c) => {
                if scalar {
                    Loc::Reg(self.b.ins().f64const(c.0.data[0]))
                } else {
                    self.constant(v, &c.0.data)?
                }
            }
            Op::Unary(u) => self.map_op(v, args, ElementOp::Unary(*u)),
            Op::Binary(op) => self.map_op(v, args, ElementOp::Binary(*op)),
            Op::Select => self.map_op(v, args, ElementOp::Select),
            Op::Broadcast(_) => self.map_op(v, args, ElementOp::Broadcast),
            Op::MatMul => self.matmul(v, args[0], args[1]),
            Op::Outer => self.outer(v, args[0], args[1]),
            Op::Transpose => self.transpose(v, args[0]),
            Op::Sum => Loc::Reg(self.sum(args[0], &mut |_, x| x)),
            Op::ReduceMax => Loc::Reg(self.reduce_max(args[0], &mut |_, x| x)),
            Op::Norm => Loc::Reg(self.norm(args[0])),
            Op::LogSumExp => Loc::Reg(self.logsumexp(args[0])),
            Op::Softmax => self.softmax(v, args[0]),
            Op::LogSoftmax => {
                let l = self.logsumexp(args[0]);
                self.map(v, args, &mut |t, x| t.b.ins().fsub(x[0], l))
            }
            Op::Slice(axes) => match fuse::view_offset(f, v) {
                Some(off) => self.loc(args[0]).offset(off),
                None => self.slice(v, args[0], axes),
            },
            Op::Unslice(axes, into) => self.unslice(v, args[0], axes, into),
            Op::Pack => self.pack(v, args),
            Op::OneHot(n) => self.one_hot(v, args[0], *n),
            Op::Index | Op::IndexAdd | Op::Reshape(_) | Op::Loop(_) => {
                return Err(format!(
                    "`{}` is not compiled yet: run with `--backend interp`",
                    crate::ir::printer::mnemonic(&inst.op)
                ))
            }
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
            let bytes = self.b.ins().imul_imm_s(example, (size * 8) as i64);
            loc = Loc::Ptr(self.b.ins().iadd(base, bytes), 0);
        }
        if scalar {
            let p = self.opnd_of(loc);
            Loc::Reg(self.read(p, Ix::c(0)))
        } else {
            loc
        }
    }

    /// A tensor constant, as a read-only data object named after the
    /// position of `v`.
    fn constant(&mut self, v: Value, data: &[f64]) -> Result<Loc, String> {
        let name = format!("gradc_const{}", v.index());
        let id = self
            .module
            .declare_data(&name, Linkage::Local, false, false)
            .map_err(|e| format!("declaring {name}: {e}"))?;
        let mut desc = DataDescription::new();
        let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        desc.define(bytes.into_boxed_slice());
        desc.set_align(16);
        self.module
            .define_data(id, &desc)
            .map_err(|e| format!("defining {name}: {e}"))?;
        let gv = self.module.declare_data_in_func(id, self.b.func);
        Ok(Loc::Data(gv, 0))
    }

    /// Zeros with a 1 at the class; a class that is not an integer in
    /// `0..n` leaves it in the error slot and returns the status of `v` (its
    /// position plus one, see [`crate::backend::abi`]) at once.
    fn one_hot(&mut self, v: Value, c: Value, n: usize) -> Loc {
        let c = match self.operand(c) {
            Opnd::Reg(x) => x,
            mem => self.read(mem, Ix::c(0)),
        };
        let dst = self.dest(v);
        self.fill(dst, n, 0.0);
        // In range and whole: 0 <= c < n and c == (c as i64) as f64. NaN fails
        // the first test; the conversion saturates, never traps.
        let zero = self.b.ins().f64const(0.0);
        let top = self.b.ins().f64const(n as f64);
        let ge = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, c, zero);
        let lt = self.b.ins().fcmp(FloatCC::LessThan, c, top);
        let k = self.b.ins().fcvt_to_sint_sat(self.ptr, c);
        let back = self.b.ins().fcvt_from_sint(types::F64, k);
        let whole = self.b.ins().fcmp(FloatCC::Equal, c, back);
        let ok = self.b.ins().band(ge, lt);
        let ok = self.b.ins().band(ok, whole);
        let good = self.b.create_block();
        let bad = self.b.create_block();
        self.b.ins().brif(ok, good, &[], bad, &[]);
        self.b.switch_to_block(bad);
        let at = offset_bytes(ERROR_SLOT);
        self.b
            .ins()
            .store(MemFlagsData::trusted(), c, self.scratch, at);
        if let Some(example) = self.example {
            let e = self.b.ins().fcvt_from_uint(types::F64, example);
            let at = offset_bytes(EXAMPLE_SLOT);
            self.b
                .ins()
                .store(MemFlagsData::trusted(), e, self.scratch, at);
        }
        let status = self.b.ins().iconst(types::I64, v.index() as i64 + 1);
        self.b.ins().return_(&[status]);
        self.b.switch_to_block(good);
        let one = self.b.ins().f64const(1.0);
        self.write(
            dst,
            Ix {
                dynamic: Some(k),
                konst: 0,
            },
            one,
        );
        dst_loc(dst)
    }
}
