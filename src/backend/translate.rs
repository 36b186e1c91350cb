//! IR -> CLIF: one Cranelift function for one IR function, every operation a
//! loop nest over its static shape (short loops unrolled).
//!
//! Where values live (see [`super::abi`]): scalars in SSA registers,
//! parameters and inputs in the caller's buffers, non-scalar constants in
//! read-only data objects, everything else in its scratch slot. The
//! arithmetic is the interpreter's, operation for operation and in the same
//! order (sums left to right from -0, no fused multiply-add), so results are
//! bit-identical to [`crate::ir::interp`] except for the payload of a NaN.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    self as cl, types, AbiParam, GlobalValue, InstBuilder, MemFlagsData, Signature,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_module::{DataDescription, Linkage, Module};

use super::abi::Layout;
use super::fuse;
use super::libm::Callee;
use super::ops::{lane_wise_binary, lane_wise_unary};
use crate::ir::{Function, Op, Value};

/// The end of a generated loop: known when compiling, or a value at run time.
#[derive(Copy, Clone)]
pub(super) enum Bound {
    Const(usize),
    Value(cl::Value),
}

/// Loops of at most this many iterations are unrolled.
pub(super) const UNROLL: usize = 4;

/// The signature of the generated function (see [`super::abi::EntryFn`]).
pub fn entry_signature(module: &dyn Module) -> Signature {
    pointers_to_status(module, 4)
}

/// `extern "C" fn(ptr, ..., ptr) -> i64` with `n` pointer arguments: the
/// shape of every generated entry point.
pub(super) fn pointers_to_status(module: &dyn Module, n: usize) -> Signature {
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    for _ in 0..n {
        sig.params.push(AbiParam::new(ptr));
    }
    sig.returns.push(AbiParam::new(types::I64));
    sig
}

/// Builds the body of `func` (whose signature is [`entry_signature`]) from
/// `f`, declaring in `module` the host functions and data objects it uses.
pub fn translate(
    module: &mut dyn Module,
    f: &Function,
    layout: &Layout,
    func: &mut cl::Function,
    fctx: &mut FunctionBuilderContext,
) -> Result<(), String> {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let p = b.block_params(entry).to_vec();
    let mut t = Translator::new(b, module, f, layout, &p);
    for step in &layout.steps {
        t.step(step)?;
    }
    t.store_outputs();
    let ok = t.b.ins().iconst(types::I64, 0);
    t.b.ins().return_(&[ok]);
    t.finish();
    Ok(())
}

/// Where a translated IR value lives. The last field of a memory location
/// is an offset in f64s: a contiguous slice is a view of its argument.
#[derive(Copy, Clone, Debug)]
pub(super) enum Loc {
    /// A scalar, in a register.
    Reg(cl::Value),
    /// At this offset (in f64s) of the scratch buffer.
    Scratch(usize),
    /// In the caller's buffer: a pointer table ([`PARAMS`], [`INPUTS`],
    /// [`OUTPUTS`]) and a position in it.
    Table(usize, usize, usize),
    /// In a read-only data object.
    Data(GlobalValue, usize),
    /// In read-only memory at this address (an input of the current example).
    Ptr(cl::Value, usize),
    /// In the scratch buffer at this address (a value of an earlier stage
    /// of a batched function, kept for the current example).
    Row(cl::Value, usize),
}

impl Loc {
    /// The location `k` elements further on.
    pub(super) fn offset(self, k: usize) -> Loc {
        match self {
            Loc::Reg(_) => unreachable!("a view is of memory"),
            Loc::Scratch(off) => Loc::Scratch(off + k),
            Loc::Table(table, i, off) => Loc::Table(table, i, off + k),
            Loc::Data(gv, off) => Loc::Data(gv, off + k),
            Loc::Ptr(ptr, off) => Loc::Ptr(ptr, off + k),
            Loc::Row(ptr, off) => Loc::Row(ptr, off + k),
        }
    }
}

const PARAMS: usize = 0;
pub(super) const INPUTS: usize = 1;
pub(super) const OUTPUTS: usize = 2;

/// A value ready for element access: a register that stands for every
/// element, or memory at `ptr + 8 * off`.
#[derive(Copy, Clone, Debug)]
pub(super) enum Opnd {
    Reg(cl::Value),
    Mem {
        ptr: cl::Value,
        off: usize,
        readonly: bool,
    },
}

impl Opnd {
    /// The operand from element `k` on (a register stands for every element).
    pub(super) fn at(self, k: usize) -> Opnd {
        match self {
            Opnd::Reg(x) => Opnd::Reg(x),
            Opnd::Mem { ptr, off, readonly } => Opnd::Mem {
                ptr,
                off: off + k,
                readonly,
            },
        }
    }
}

/// An element index: a dynamic part (a loop counter, of pointer type) plus a
/// constant.
#[derive(Copy, Clone, Debug)]
pub(super) struct Ix {
    pub dynamic: Option<cl::Value>,
    pub konst: usize,
}

impl Ix {
    pub fn c(k: usize) -> Ix {
        Ix {
            dynamic: None,
            konst: k,
        }
    }

    /// The index `k` further on.
    pub fn plus(self, k: usize) -> Ix {
        Ix {
            dynamic: self.dynamic,
            konst: self.konst + k,
        }
    }

    /// Whether the two indices are the same expression.
    pub fn same(self, other: Ix) -> bool {
        self.dynamic == other.dynamic && self.konst == other.konst
    }
}

pub(super) struct Translator<'a, 'b> {
    pub b: FunctionBuilder<'b>,
    module: &'a mut dyn Module,
    pub f: &'a Function,
    pub(super) layout: &'a Layout,
    pub ptr: cl::Type,
    /// The `params`, `inputs` and `outputs` pointer tables.
    tables: [cl::Value; 3],
    pub scratch: cl::Value,
    /// Where each translated instruction's value lives.
    locs: Vec<Option<Loc>>,
    callees: HashMap<Callee, cl::FuncRef>,
    /// In a batched function, inside the loop over the examples: the index
    /// of the current example, which selects the inputs' rows.
    pub example: Option<cl::Value>,
}

/// Data that no generated store touches.
fn readonly() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly()
}

impl<'a, 'b> Translator<'a, 'b> {
    /// A translator over a function whose entry block is current, with the
    /// entry's first four parameters (`params`, `inputs`, `outputs`, `scratch`).
    pub(super) fn new(
        b: FunctionBuilder<'b>,
        module: &'a mut dyn Module,
        f: &'a Function,
        layout: &'a Layout,
        entry_params: &[cl::Value],
    ) -> Self {
        let ptr = module.target_config().pointer_type();
        let p = entry_params;
        Translator {
            b,
            module,
            f,
            layout,
            ptr,
            tables: [p[0], p[1], p[2]],
            scratch: p[3],
            locs: vec![None; f.insts().len()],
            callees: HashMap::new(),
            example: None,
        }
    }

    /// Seals the blocks and finishes the function.
    pub(super) fn finish(mut self) {
        self.b.seal_all_blocks();
        self.b.finalize(self.module.target_config());
    }

    /// Translates one step of the layout, whose arguments are translated
    /// already: one instruction, or a fused run.
    pub(super) fn step(&mut self, step: &[usize]) -> Result<(), String> {
        match step {
            [i] => {
                let loc = self.inst(*i)?;
                self.set_loc(*i, loc);
            }
            run => self.fused(run, &self.layout.internal),
        }
        Ok(())
    }

    pub(super) fn set_loc(&mut self, i: usize, loc: Loc) {
        self.locs[i] = Some(loc);
    }
}

impl Translator<'_, '_> {
    fn inst(&mut self, i: usize) -> Result<Loc, String> {
        let f = self.f;
        let inst = &f.insts()[i];
        let scalar = inst.shape.is_scalar();
        let args = &inst.args;
        Ok(match &inst.op {
            Op::Param(k) => self.slot_value(PARAMS, *k, scalar),
            Op::Input(k) => self.slot_value(INPUTS, *k, scalar),
            Op::Const(c) => {
                if scalar {
                    Loc::Reg(self.b.ins().f64const(c.0.data[0]))
                } else {
                    self.constant(i, &c.0.data)?
                }
            }
            Op::Unary(u) => {
                let u = *u;
                if lane_wise_unary(u) {
                    self.map_simd(i, args, &mut |t, x| t.unary(u, x[0]))
                } else {
                    self.map(i, args, &mut |t, x| t.unary(u, x[0]))
                }
            }
            Op::Binary(op) => {
                let op = *op;
                if lane_wise_binary(op) {
                    self.map_simd(i, args, &mut |t, x| t.binary(op, x[0], x[1]))
                } else {
                    self.map(i, args, &mut |t, x| t.binary(op, x[0], x[1]))
                }
            }
            Op::Select => self.map(i, args, &mut |t, x| t.select_nonzero(x[0], x[1], x[2])),
            Op::MatMul => self.matmul(i, args[0], args[1]),
            Op::Outer => {
                let (a, b) = (self.operand(args[0]), self.operand(args[1]));
                let dst = self.dest(i);
                let (m, n) = (f.shape(args[0]).size(), f.shape(args[1]).size());
                self.for_each(m, &mut |t, row| {
                    let x = t.read(a, row);
                    t.columns(n, &mut |t, col, ty| {
                        let x = t.splat_as(ty, x);
                        let y = t.read_as(ty, b, col);
                        let z = t.b.ins().fmul(x, y);
                        let at = t.lin(&[(row, n), (col, 1)], 0);
                        t.write(dst, at, z);
                    });
                });
                dst_loc(dst)
            }
            Op::Transpose => {
                let a = self.operand(args[0]);
                let dst = self.dest(i);
                let (rows, cols) = (inst.shape.dims()[1], inst.shape.dims()[0]);
                // The result is [cols, rows]: element (j, i) is a[i, j].
                self.nest(inst.shape.dims(), &mut |t, ix| {
                    let from = t.lin(&[(ix[1], cols), (ix[0], 1)], 0);
                    let x = t.read(a, from);
                    let to = t.lin(&[(ix[0], rows), (ix[1], 1)], 0);
                    t.write(dst, to, x);
                });
                dst_loc(dst)
            }
            Op::Sum => {
                let v = self.sum(args[0], &mut |_, x| x);
                Loc::Reg(v)
            }
            Op::ReduceMax => Loc::Reg(self.reduce_max(args[0], &mut |_, x| x)),
            Op::Norm => Loc::Reg(self.norm(args[0])),
            Op::LogSumExp => Loc::Reg(self.logsumexp(args[0])),
            Op::Softmax => self.softmax(i, args[0]),
            Op::LogSoftmax => {
                let l = self.logsumexp(args[0]);
                self.map(i, args, &mut |t, x| t.b.ins().fsub(x[0], l))
            }
            Op::Broadcast(_) => self.map_simd(i, args, &mut |_, x| x[0]),
            Op::Slice(axes) => match fuse::view_offset(f, i) {
                Some(off) => self.locs[args[0].index()]
                    .expect("arguments are translated first")
                    .offset(off),
                None => self.slice(i, args[0], axes),
            },
            Op::Unslice(axes, into) => self.unslice(i, args[0], axes, into),
            Op::Pack => {
                let dst = self.dest(i);
                for (k, &a) in args.iter().enumerate() {
                    let size = f.shape(a).size();
                    let src = self.operand(a);
                    self.copy(src, dst, k * size, size);
                }
                dst_loc(dst)
            }
            Op::OneHot(n) => self.one_hot(i, args[0], *n),
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

    /// A tensor constant, as a read-only data object.
    fn constant(&mut self, i: usize, data: &[f64]) -> Result<Loc, String> {
        let name = format!("gradc_const{i}");
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

    /// The operand for an IR value, with its base pointer computed here (so
    /// that loops emitted afterwards do not recompute it).
    pub(super) fn operand(&mut self, v: Value) -> Opnd {
        let loc = self.locs[v.index()].expect("arguments are translated first");
        self.opnd_of(loc)
    }

    pub(super) fn opnd_of(&mut self, loc: Loc) -> Opnd {
        match loc {
            Loc::Reg(x) => Opnd::Reg(x),
            Loc::Scratch(off) => Opnd::Mem {
                ptr: self.scratch,
                off,
                readonly: false,
            },
            Loc::Table(table, k, off) => Opnd::Mem {
                ptr: self.table_entry(table, k),
                off,
                readonly: table != OUTPUTS,
            },
            Loc::Data(gv, off) => Opnd::Mem {
                ptr: self.b.ins().symbol_value(self.ptr, gv),
                off,
                readonly: true,
            },
            Loc::Ptr(ptr, off) => Opnd::Mem {
                ptr,
                off,
                readonly: true,
            },
            Loc::Row(ptr, off) => Opnd::Mem {
                ptr,
                off,
                readonly: false,
            },
        }
    }

    /// The k-th pointer of a pointer table.
    pub(super) fn table_entry(&mut self, table: usize, k: usize) -> cl::Value {
        let flags = readonly().with_can_move();
        let at = offset_bytes(k);
        self.b.ins().load(self.ptr, flags, self.tables[table], at)
    }

    /// The scratch slot of instruction `i`.
    pub(super) fn dest(&mut self, i: usize) -> Opnd {
        let off = self.layout.slots[i].expect("a non-scalar computed value has a scratch slot");
        Opnd::Mem {
            ptr: self.scratch,
            off,
            readonly: false,
        }
    }

    /// The address of element `ix` of memory operand `(ptr, off)`, as a base
    /// and an immediate byte offset.
    fn address(&mut self, ptr: cl::Value, off: usize, ix: Ix) -> (cl::Value, i32) {
        let base = match ix.dynamic {
            None => ptr,
            Some(d) => {
                let bytes = self.b.ins().ishl_imm_u(d, 3);
                self.b.ins().iadd(ptr, bytes)
            }
        };
        let k = (off + ix.konst) * 8;
        match i32::try_from(k) {
            Ok(k) => (base, k),
            Err(_) => {
                let k = self.b.ins().iconst(self.ptr, k as i64);
                (self.b.ins().iadd(base, k), 0)
            }
        }
    }

    pub(super) fn read(&mut self, o: Opnd, ix: Ix) -> cl::Value {
        self.read_as(types::F64, o, ix)
    }

    /// Loads one `ty` (f64 or f64x2) at element `ix`; a register operand is
    /// returned as it is.
    pub(super) fn read_as(&mut self, ty: cl::Type, o: Opnd, ix: Ix) -> cl::Value {
        match o {
            Opnd::Reg(x) => x,
            Opnd::Mem { ptr, off, readonly } => {
                let (p, k) = self.address(ptr, off, ix);
                self.b.ins().load(ty, mem_flags(ty, readonly), p, k)
            }
        }
    }

    pub(super) fn write(&mut self, o: Opnd, ix: Ix, x: cl::Value) {
        match o {
            Opnd::Reg(_) => unreachable!("results are written to memory"),
            Opnd::Mem { ptr, off, .. } => {
                let ty = self.b.func.dfg.value_type(x);
                let (p, k) = self.address(ptr, off, ix);
                self.b.ins().store(mem_flags(ty, false), x, p, k);
            }
        }
    }

    /// `sum(terms[t].0 * terms[t].1) + k`.
    pub(super) fn lin(&mut self, terms: &[(Ix, usize)], k: usize) -> Ix {
        let mut out = Ix::c(k);
        for &(ix, stride) in terms {
            out.konst += ix.konst * stride;
            if let Some(d) = ix.dynamic {
                let scaled = if stride == 1 {
                    d
                } else {
                    self.b.ins().imul_imm_s(d, stride as i64)
                };
                out.dynamic = Some(match out.dynamic {
                    None => scaled,
                    Some(acc) => self.b.ins().iadd(acc, scaled),
                });
            }
        }
        out
    }

    /// Runs `body` for every index in `0..n` with a step of `step`: unrolled
    /// when short, else a counted loop (`n` is a multiple of `step`).
    pub(super) fn for_each_step(
        &mut self,
        n: usize,
        step: usize,
        body: &mut dyn FnMut(&mut Self, Ix),
    ) {
        if n == 0 {
            return;
        }
        if n / step <= UNROLL {
            for k in (0..n).step_by(step) {
                body(self, Ix::c(k));
            }
            return;
        }
        self.counted_loop(step, Bound::Const(n), body);
    }

    /// A loop `for i in (0..bound).step_by(step)` in the generated code, with
    /// the test at the bottom: the bound must be at least 1.
    pub(super) fn counted_loop(
        &mut self,
        step: usize,
        bound: Bound,
        body: &mut dyn FnMut(&mut Self, Ix),
    ) {
        let counter = self.b.declare_var(self.ptr);
        let zero = self.b.ins().iconst(self.ptr, 0);
        self.b.def_var(counter, zero);
        let header = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(counter);
        body(
            self,
            Ix {
                dynamic: Some(i),
                konst: 0,
            },
        );
        let next = self.b.ins().iadd_imm_s(i, step as i64);
        self.b.def_var(counter, next);
        let more = match bound {
            Bound::Const(n) => self
                .b
                .ins()
                .icmp_imm_u(IntCC::UnsignedLessThan, next, n as i64),
            Bound::Value(n) => self.b.ins().icmp(IntCC::UnsignedLessThan, next, n),
        };
        self.b.ins().brif(more, header, &[], exit, &[]);
        self.b.switch_to_block(exit);
    }

    pub(super) fn for_each(&mut self, n: usize, body: &mut dyn FnMut(&mut Self, Ix)) {
        self.for_each_step(n, 1, body);
    }

    /// Runs `body` for every multi-index of `dims`, in row-major order.
    pub(super) fn nest(&mut self, dims: &[usize], body: &mut dyn FnMut(&mut Self, &[Ix])) {
        let mut idx = Vec::with_capacity(dims.len());
        self.nest_rec(dims, &mut idx, body);
    }

    fn nest_rec(
        &mut self,
        dims: &[usize],
        idx: &mut Vec<Ix>,
        body: &mut dyn FnMut(&mut Self, &[Ix]),
    ) {
        match dims.split_first() {
            None => body(self, idx),
            Some((&d, rest)) => self.for_each(d, &mut |t, i| {
                idx.push(i);
                t.nest_rec(rest, idx, body);
                idx.pop();
            }),
        }
    }

    /// An f64 variable, for values carried around a loop.
    pub(super) fn var(&mut self, init: f64) -> Variable {
        self.var_of(types::F64, init)
    }

    /// A variable of type `ty` (f64 or f64x2), every lane `init`.
    pub(super) fn var_of(&mut self, ty: cl::Type, init: f64) -> Variable {
        let v = self.b.declare_var(ty);
        let x = self.b.ins().f64const(init);
        let x = self.splat_as(ty, x);
        self.b.def_var(v, x);
        v
    }

    /// An elementwise operation: a register for a scalar result, else a loop
    /// over the result's elements (scalar arguments broadcast).
    pub(super) fn map(
        &mut self,
        i: usize,
        args: &[Value],
        op: &mut dyn FnMut(&mut Self, &[cl::Value]) -> cl::Value,
    ) -> Loc {
        let shape = &self.f.insts()[i].shape;
        let opnds: Vec<Opnd> = args.iter().map(|&a| self.operand(a)).collect();
        if shape.is_scalar() {
            let xs: Vec<cl::Value> = opnds.iter().map(|&o| self.read(o, Ix::c(0))).collect();
            return Loc::Reg(op(self, &xs));
        }
        let dst = self.dest(i);
        let mut xs = Vec::with_capacity(opnds.len());
        self.for_each(shape.size(), &mut |t, ix| {
            xs.clear();
            for &o in &opnds {
                xs.push(t.read(o, ix));
            }
            let y = op(t, &xs);
            t.write(dst, ix, y);
        });
        dst_loc(dst)
    }

    /// Like [`Self::map`], for an `op` that works on f64 and f64x2 alike: pairs
    /// of elements at a time, then the last one if the size is odd.
    fn map_simd(
        &mut self,
        i: usize,
        args: &[Value],
        op: &mut dyn FnMut(&mut Self, &[cl::Value]) -> cl::Value,
    ) -> Loc {
        let shape = &self.f.insts()[i].shape;
        let n = shape.size();
        if n < 2 {
            return self.map(i, args, op);
        }
        let opnds: Vec<Opnd> = args.iter().map(|&a| self.operand(a)).collect();
        let splats: Vec<Opnd> = opnds
            .iter()
            .map(|&o| match o {
                Opnd::Reg(x) => Opnd::Reg(self.b.ins().splat(types::F64X2, x)),
                mem => mem,
            })
            .collect();
        let dst = self.dest(i);
        let mut xs = Vec::with_capacity(opnds.len());
        self.for_each_step(n - n % 2, 2, &mut |t, ix| {
            xs.clear();
            for &o in &splats {
                xs.push(t.read_as(types::F64X2, o, ix));
            }
            let y = op(t, &xs);
            t.write(dst, ix, y);
        });
        if n % 2 == 1 {
            let ix = Ix::c(n - 1);
            let xs: Vec<cl::Value> = opnds.iter().map(|&o| self.read(o, ix)).collect();
            let y = op(self, &xs);
            self.write(dst, ix, y);
        }
        dst_loc(dst)
    }

    /// Copies `n` elements of `src` to `dst` from element `to` on, two at a
    /// time; a register `src` is one scalar, stored once.
    pub(super) fn copy(&mut self, src: Opnd, dst: Opnd, to: usize, n: usize) {
        if let Opnd::Reg(x) = src {
            self.write(dst, Ix::c(to), x);
            return;
        }
        self.for_each_step(n - n % 2, 2, &mut |t, ix| {
            let x = t.read_as(types::F64X2, src, ix);
            let at = t.lin(&[(ix, 1)], to);
            t.write(dst, at, x);
        });
        if n % 2 == 1 {
            let x = self.read(src, Ix::c(n - 1));
            self.write(dst, Ix::c(to + n - 1), x);
        }
    }

    pub(super) fn fill(&mut self, dst: Opnd, n: usize, x: f64) {
        let v = self.b.ins().f64const(x);
        if n >= 2 {
            let v2 = self.b.ins().splat(types::F64X2, v);
            self.for_each_step(n - n % 2, 2, &mut |t, ix| t.write(dst, ix, v2));
        }
        if n % 2 == 1 {
            self.write(dst, Ix::c(n - 1), v);
        }
    }

    /// Calls a host function.
    pub(super) fn call(&mut self, callee: Callee, args: &[cl::Value]) -> cl::Value {
        let fref = match self.callees.get(&callee) {
            Some(&r) => r,
            None => {
                let name = callee.symbol().expect("a host function");
                let mut sig = self.module.make_signature();
                for _ in 0..callee.arity() {
                    sig.params.push(AbiParam::new(types::F64));
                }
                sig.returns.push(AbiParam::new(types::F64));
                let id = self
                    .module
                    .declare_function(name, Linkage::Import, &sig)
                    .expect("host functions are declared once, with one signature");
                let r = self.module.declare_func_in_func(id, self.b.func);
                self.callees.insert(callee, r);
                r
            }
        };
        let call = self.b.ins().call(fref, args);
        self.b.inst_results(call)[0]
    }

    pub(super) fn truth(&mut self, c: cl::Value) -> cl::Value {
        let one = self.b.ins().f64const(1.0);
        let zero = self.b.ins().f64const(0.0);
        self.b.ins().select(c, one, zero)
    }

    /// `if c != 0 then a else b`; a NaN `c` is true, like `!= 0` in Rust.
    pub(super) fn select_nonzero(&mut self, c: cl::Value, a: cl::Value, b: cl::Value) -> cl::Value {
        let zero = self.b.ins().f64const(0.0);
        let nonzero = self.b.ins().fcmp(FloatCC::NotEqual, c, zero);
        self.b.ins().select(nonzero, a, b)
    }

    /// Copies every output into the caller's buffer.
    fn store_outputs(&mut self) {
        let f = self.f;
        for (k, o) in f.outputs.iter().enumerate() {
            let dst = self.opnd_of(Loc::Table(OUTPUTS, k, 0));
            let src = self.operand(o.value);
            let n = f.shape(o.value).size();
            self.copy(src, dst, 0, n);
        }
    }
}

/// The location of a result written to its scratch slot.
pub(super) fn dst_loc(dst: Opnd) -> Loc {
    match dst {
        Opnd::Mem { off, .. } => Loc::Scratch(off),
        Opnd::Reg(_) => unreachable!("destinations are memory"),
    }
}

pub(super) fn offset_bytes(k: usize) -> i32 {
    i32::try_from(k * 8).expect("pointer tables are small")
}

/// Scalar f64 accesses are aligned (the buffers are `Vec<f64>`s); vector
/// accesses may not be 16-byte aligned, so they are not marked `aligned`.
fn mem_flags(ty: cl::Type, readonly: bool) -> MemFlagsData {
    let flags = if ty == types::F64 {
        MemFlagsData::trusted()
    } else {
        MemFlagsData::new().with_notrap()
    };
    if readonly {
        flags.with_readonly()
    } else {
        flags
    }
}
