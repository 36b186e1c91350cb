//! IR -> CLIF: one Cranelift function for one IR function, every operation a
//! loop nest over its static shape (short loops unrolled), following the
//! plan ([`super::plan`]) made before.
//!
//! Where values live: scalars in SSA registers, parameters and inputs in
//! the caller's buffers (the pointer tables of [`super::abi`]), non-scalar
//! constants in read-only data objects, everything else in its scratch
//! slot. The arithmetic is the interpreter's, operation for operation and in
//! the same order (sums left to right from -0, no fused multiply-add), so
//! results are bit-identical to [`crate::ir::interp`] except for the payload
//! of a NaN.
//!
//! This module is the translator's context, [`Translator`]: where each value
//! lives ([`Loc`]), operands ([`Opnd`]) and their element reads and writes,
//! index arithmetic ([`Ix`]), variables and host calls. Its children add the
//! rest, each using only this module and the children listed before it:
//!
//! - `loops`: the loop builders, and copies and fills of memory.
//! - `math`: `exp`, `sigmoid` and `tanh`, calls of the kernels that compute
//!   them a pair or four pairs at a time.
//! - `elementwise`: the arithmetic of one element, and elementwise loops.
//! - `reduce`: sums, maxima, norms, `logsumexp`, `softmax`.
//! - `along`: reductions and broadcasts along axes.
//! - `gemm`: calls of the matrix-product kernel ([`super::kernel`]).
//! - `matmul`: `@` and `outer`, dot products in blocks.
//! - `movement`: `transpose`, slices, `unslice`, `pack` and `concat`,
//!   computed indices (`index`, `index_add`), `reshape`, `permute`.
//! - `fuse`: a fused run (see [`super::plan::fuse`]) as one loop; with
//!   `nest` (a run over a loop nest: its rows, slabs, blocks of columns,
//!   and a joined product's blocks), `parts` (a large run's loop in parts
//!   on several threads, a function of its own called through the
//!   kernel's `in_parts`; a large maximum so), `shifts` (a run's shifted
//!   members, `lag` and `lead`) and `sums` (sums of more than one block,
//!   in a run or alone), which use one another: the translation of a run,
//!   in five files.
//! - `ops`: every operation dispatched to its lowering, and one step of the
//!   plan.
//! - `window`: convolution, pooling and their adjoints
//!   ([`crate::ir::Window`]), loop nests in the interpreter's order.
//! - `body`: a loop instruction, its body translated inside a counted loop;
//!   `body_parts`, a large body in pieces, functions the loop calls.
//! - [`single`]: the function of one example.
//! - [`batch`]: the batched function, the loop over the examples inside.

mod along;
pub(super) mod batch;
mod body;
mod body_parts;
mod elementwise;
mod fuse;
mod gemm;
mod loops;
mod math;
mod matmul;
mod movement;
mod nest;
mod ops;
mod parts;
mod reduce;
mod shifts;
pub(super) mod single;
mod sums;
mod window;

use std::collections::HashMap;

use cranelift_codegen::ir::{self as cl, types, AbiParam, GlobalValue, InstBuilder, MemFlagsData};
use cranelift_frontend::{FunctionBuilder, Variable};
use cranelift_module::{DataId, FuncId, Linkage, Module};

use super::abi::OUTPUTS;
use super::libm::Callee;
use super::plan::{Layout, FIRST_FREE};
use crate::dtype::Dtype;
use crate::ir::{Function, Value, ValueMap};

/// The end of a generated loop: known when compiling, or a value at run time.
#[derive(Copy, Clone)]
enum Bound {
    Const(usize),
    Value(cl::Value),
}

/// Where a translated IR value lives. The last field of a memory location
/// is an offset in elements: a contiguous slice is a view of its argument.
#[derive(Copy, Clone, Debug)]
enum Loc {
    /// A scalar, in a register.
    Reg(cl::Value),
    /// At this offset (in elements) of the scratch buffer.
    Scratch(usize),
    /// In the caller's buffer: a pointer table (see [`super::abi::PARAMS`])
    /// and a position in it.
    Table(usize, usize, usize),
    /// In a read-only data object of the module.
    Data(DataId, usize),
    /// In read-only memory at this address (an input of the current example).
    Ptr(cl::Value, usize),
    /// In the scratch buffer at this address (a value of an earlier stage
    /// of a batched function, kept for the current example).
    Row(cl::Value, usize),
}

impl Loc {
    /// The location `k` elements further on.
    fn offset(self, k: usize) -> Loc {
        match self {
            Loc::Reg(_) => unreachable!("a view is of memory"),
            Loc::Scratch(off) => Loc::Scratch(off + k),
            Loc::Table(table, i, off) => Loc::Table(table, i, off + k),
            Loc::Data(id, off) => Loc::Data(id, off + k),
            Loc::Ptr(ptr, off) => Loc::Ptr(ptr, off + k),
            Loc::Row(ptr, off) => Loc::Row(ptr, off + k),
        }
    }
}

/// A value ready for element access: a register that stands for every
/// element, or memory at `ptr + size * off` (`size` that of an element).
#[derive(Copy, Clone, Debug)]
enum Opnd {
    Reg(cl::Value),
    Mem {
        ptr: cl::Value,
        off: usize,
        readonly: bool,
    },
}

impl Opnd {
    /// The operand from element `k` on (a register stands for every element).
    fn at(self, k: usize) -> Opnd {
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
struct Ix {
    dynamic: Option<cl::Value>,
    konst: usize,
}

impl Ix {
    /// The constant index `k`.
    fn c(k: usize) -> Ix {
        Ix {
            dynamic: None,
            konst: k,
        }
    }

    /// The index `k` further on.
    fn plus(self, k: usize) -> Ix {
        Ix {
            dynamic: self.dynamic,
            konst: self.konst + k,
        }
    }

    /// Whether the two indices are the same expression.
    fn same(self, other: Ix) -> bool {
        self.dynamic == other.dynamic && self.konst == other.konst
    }
}

/// The translator's context: the function being built and where every
/// translated value lives.
struct Translator<'a, 'b> {
    b: FunctionBuilder<'b>,
    module: &'a mut dyn Module,
    f: &'a Function,
    layout: &'a Layout,
    ptr: cl::Type,
    /// The `params`, `inputs` and `outputs` pointer tables.
    tables: [cl::Value; 3],
    /// The scratch buffer's elements: element `off` is at `scratch + size *
    /// off` (for f32 past the fault slots, which stay f64s at `slots`).
    scratch: cl::Value,
    /// The scratch buffer itself, whose first [`FIRST_FREE`] f64s are the
    /// fault slots.
    slots: cl::Value,
    /// The element type: its scalar (`st`) and vector (`vt`) Cranelift
    /// types, the vector's lanes, and log2 of its size in bytes.
    st: cl::Type,
    vt: cl::Type,
    lanes: usize,
    shift: i64,
    /// Where each translated value lives.
    locs: ValueMap<Option<Loc>>,
    callees: HashMap<Callee, cl::FuncRef>,
    /// The data objects this function reads, declared in it.
    datas: HashMap<DataId, GlobalValue>,
    /// In a batched function, inside the loop over the examples: the index
    /// of the current example, which selects the inputs' rows.
    example: Option<cl::Value>,
    /// Inside a loop's body: the loop instruction of the function being
    /// generated, whose status a failure in the body returns.
    fault_at: Option<Value>,
    /// Inside a loop's body: the row additions (`index_add`) that update a
    /// carried value in place, each with the scratch offset of that value
    /// (see `Translator::loop_op`).
    in_place: Vec<(Value, usize)>,
    /// Inside a loop's body: the values the step stacks, each computed
    /// straight into its row of the loop's value (see
    /// `Translator::loop_op`).
    stacked: Vec<(Value, Opnd)>,
    /// In the function of one example, outside loops' bodies: the outputs
    /// computed straight into the caller's buffers (see
    /// `single::translate`).
    written: Vec<(Value, Opnd)>,
    /// Constants defined so far, which names those of loop bodies apart.
    body_consts: usize,
    /// The index arithmetic emitted so far in the current block (see
    /// [`Translator::index_op`]).
    index_ops: HashMap<(cl::Block, IndexOp, cl::Value, i64), cl::Value>,
    /// The stack slot of eight f64s that four pairs of elements go through
    /// for a call of an eight-wide kernel (`Translator::math_of_pairs`).
    eight: Option<cl::StackSlot>,
    /// In the parts of the function of one example: the Cranelift
    /// instructions of a part, at which a large loop's body is cut into
    /// functions of its own too (`body_parts`); `usize::MAX` elsewhere.
    cut: usize,
    /// The scratch buffer's length so far: the layout's, and the slots
    /// that parts and pieces of a body hand registers on through.
    scratch_len: usize,
    /// The pieces of loops' bodies built and not yet handed on (see
    /// `single::translate`), each with its id in the module.
    callees_built: Vec<(FuncId, cl::Function)>,
}

/// Starts the function `b` builds: its entry block, made current, with the
/// function's parameters, which are returned.
pub(super) fn enter(b: &mut FunctionBuilder) -> Vec<cl::Value> {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.block_params(entry).to_vec()
}

/// Data that no generated store touches.
fn readonly() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly()
}

impl<'a, 'b> Translator<'a, 'b> {
    /// A translator over a function whose entry block is current, with the
    /// entry's first four parameters (`params`, `inputs`, `outputs`,
    /// `scratch`), computing in `dtype`.
    fn new(
        mut b: FunctionBuilder<'b>,
        module: &'a mut dyn Module,
        f: &'a Function,
        layout: &'a Layout,
        entry_params: &[cl::Value],
        dtype: Dtype,
    ) -> Self {
        let ptr = module.target_config().pointer_type();
        let p = entry_params;
        let (st, vt, lanes, shift, scratch) = match dtype {
            Dtype::F64 => (types::F64, types::F64X2, 2, 3, p[3]),
            // The f32 elements start after the f64 fault slots: element
            // `FIRST_FREE` (the first of the layout) at byte `8 * FIRST_FREE`.
            Dtype::F32 => {
                let past = (4 * FIRST_FREE) as i64;
                let s = b.ins().iadd_imm_s(p[3], past);
                (types::F32, types::F32X4, 4, 2, s)
            }
        };
        Translator {
            b,
            module,
            f,
            layout,
            ptr,
            tables: [p[0], p[1], p[2]],
            scratch,
            slots: p[3],
            st,
            vt,
            lanes,
            shift,
            locs: ValueMap::new(f, None),
            callees: HashMap::new(),
            datas: HashMap::new(),
            example: None,
            fault_at: None,
            in_place: Vec::new(),
            stacked: Vec::new(),
            written: Vec::new(),
            body_consts: 0,
            index_ops: HashMap::new(),
            eight: None,
            cut: usize::MAX,
            scratch_len: layout.scratch_len,
            callees_built: Vec::new(),
        }
    }

    /// Seals the blocks and finishes the function.
    fn finish(mut self) {
        self.b.seal_all_blocks();
        self.b.finalize(self.module.target_config());
    }

    /// Records where `v` lives.
    fn set_loc(&mut self, v: Value, loc: Loc) {
        self.locs[v] = Some(loc);
    }

    /// Where `v`, translated already, lives.
    fn loc(&self, v: Value) -> Loc {
        self.locs[v].expect("arguments are translated first")
    }

    /// The operand for an IR value, with its base pointer computed here (so
    /// that loops emitted afterwards do not recompute it).
    fn operand(&mut self, v: Value) -> Opnd {
        let loc = self.loc(v);
        self.opnd_of(loc)
    }

    /// The operand for a location, its base pointer computed here.
    fn opnd_of(&mut self, loc: Loc) -> Opnd {
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
            Loc::Data(id, off) => Opnd::Mem {
                ptr: self.data_address(id),
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

    /// The address of a data object of the module, declared in this
    /// function at its first use.
    fn data_address(&mut self, id: DataId) -> cl::Value {
        let gv = match self.datas.get(&id) {
            Some(&gv) => gv,
            None => {
                let gv = self.module.declare_data_in_func(id, self.b.func);
                self.datas.insert(id, gv);
                gv
            }
        };
        self.b.ins().symbol_value(self.ptr, gv)
    }

    /// The k-th pointer of a pointer table.
    fn table_entry(&mut self, table: usize, k: usize) -> cl::Value {
        let flags = readonly().with_can_move();
        let at = offset_bytes(k);
        self.b.ins().load(self.ptr, flags, self.tables[table], at)
    }

    /// The scratch slot of `v`, or the row of a loop's value it is stacked
    /// into, or the caller's buffer of the output it is.
    fn dest(&mut self, v: Value) -> Opnd {
        if let Some(&(_, row)) = self.stacked.iter().find(|&&(w, _)| w == v) {
            return row;
        }
        if let Some(&(_, out)) = self.written.iter().find(|&&(w, _)| w == v) {
            return out;
        }
        if let Some(&(_, off)) = self.in_place.iter().find(|&&(w, _)| w == v) {
            // A carried value updated where it lies (`body::in_place_updates`,
            // `body::elementwise_updates`).
            return Opnd::Mem {
                ptr: self.scratch,
                off,
                readonly: false,
            };
        }
        let off = self.layout.slots[v].expect("a non-scalar computed value has a scratch slot");
        Opnd::Mem {
            ptr: self.scratch,
            off,
            readonly: false,
        }
    }

    /// The address of element `ix` of memory operand `(ptr, off)`, as a base
    /// and an immediate byte offset.
    fn address(&mut self, ptr: cl::Value, off: usize, ix: Ix) -> (cl::Value, i32) {
        let base = self.plus_elements(ptr, ix.dynamic);
        let k = (off + ix.konst) << self.shift;
        match i32::try_from(k) {
            Ok(k) => (base, k),
            Err(_) => {
                let k = self.b.ins().iconst(self.ptr, k as i64);
                (self.b.ins().iadd(base, k), 0)
            }
        }
    }

    /// Loads the element at `ix`; a register operand is returned as it is.
    fn read(&mut self, o: Opnd, ix: Ix) -> cl::Value {
        self.read_as(self.st, o, ix)
    }

    /// Loads one `ty` (an element or a vector) at element `ix`; a register operand is
    /// returned as it is.
    fn read_as(&mut self, ty: cl::Type, o: Opnd, ix: Ix) -> cl::Value {
        match o {
            Opnd::Reg(x) => x,
            Opnd::Mem { ptr, off, readonly } => {
                let (p, k) = self.address(ptr, off, ix);
                self.b.ins().load(ty, mem_flags(ty, readonly), p, k)
            }
        }
    }

    /// Stores `x` (an element or a vector) at element `ix` of memory operand `o`.
    fn write(&mut self, o: Opnd, ix: Ix, x: cl::Value) {
        match o {
            Opnd::Reg(_) => unreachable!("results are written to memory"),
            Opnd::Mem { ptr, off, .. } => {
                let ty = self.b.func.dfg.value_type(x);
                let (p, k) = self.address(ptr, off, ix);
                self.b.ins().store(mem_flags(ty, false), x, p, k);
            }
        }
    }

    /// Memory operand `o` from its element `ix` on; a register as it is.
    fn moved(&mut self, o: Opnd, ix: Ix) -> Opnd {
        match o {
            Opnd::Reg(_) => o,
            Opnd::Mem { ptr, off, readonly } => Opnd::Mem {
                ptr: self.plus_elements(ptr, ix.dynamic),
                off: off + ix.konst,
                readonly,
            },
        }
    }

    /// `ptr` advanced by `d` elements, if given.
    fn plus_elements(&mut self, ptr: cl::Value, d: Option<cl::Value>) -> cl::Value {
        match d {
            None => ptr,
            Some(d) => {
                let bytes = self.index_op(IndexOp::Shl, d, self.shift);
                self.index_op(IndexOp::Add, ptr, d_key(bytes))
            }
        }
    }

    /// `a << k`, `a * k` or `a + b` (`k` the [`d_key`] of `b`) on indices
    /// and addresses, emitted once per block: a body reading and writing
    /// several operands at one index computes each address once, which
    /// leaves Cranelift fewer copies to merge. A value is reused only in
    /// the block that defines it, which it dominates.
    fn index_op(&mut self, op: IndexOp, a: cl::Value, k: i64) -> cl::Value {
        let block = self.b.current_block().expect("translating inside a block");
        if let Some(&x) = self.index_ops.get(&(block, op, a, k)) {
            return x;
        }
        let x = match op {
            IndexOp::Shl => self.b.ins().ishl_imm_u(a, k),
            IndexOp::Mul => self.b.ins().imul_imm_s(a, k),
            IndexOp::Add => {
                let b = cl::Value::from_u32(k as u32);
                self.b.ins().iadd(a, b)
            }
        };
        self.index_ops.insert((block, op, a, k), x);
        x
    }

    /// `sum(terms[t].0 * terms[t].1) + k`.
    fn lin(&mut self, terms: &[(Ix, usize)], k: usize) -> Ix {
        let mut out = Ix::c(k);
        for &(ix, stride) in terms {
            out.konst += ix.konst * stride;
            if let Some(d) = ix.dynamic {
                let scaled = if stride == 1 {
                    d
                } else {
                    self.index_op(IndexOp::Mul, d, stride as i64)
                };
                out.dynamic = Some(match out.dynamic {
                    None => scaled,
                    Some(acc) => self.index_op(IndexOp::Add, acc, d_key(scaled)),
                });
            }
        }
        out
    }

    /// An element variable, for values carried around a loop.
    fn var(&mut self, init: f64) -> Variable {
        self.var_of(self.st, init)
    }

    /// A variable of type `ty` (an element or a vector), every lane `init`.
    fn var_of(&mut self, ty: cl::Type, init: f64) -> Variable {
        let v = self.b.declare_var(ty);
        let x = self.fconst(init);
        let x = self.splat_as(ty, x);
        self.b.def_var(v, x);
        v
    }

    /// The constant `x` as an element (rounded to f32 in an f32 function).
    fn fconst(&mut self, x: f64) -> cl::Value {
        if self.st == types::F64 {
            self.b.ins().f64const(x)
        } else {
            self.b.ins().f32const(x as f32)
        }
    }

    /// `x` as a value of type `ty`: itself, or splat to a vector.
    fn splat_as(&mut self, ty: cl::Type, x: cl::Value) -> cl::Value {
        if !ty.is_vector() {
            x
        } else {
            self.b.ins().splat(ty, x)
        }
    }

    /// Calls a host function. The host functions are the interpreter's f64
    /// ones: in an f32 function the arguments are widened and the result
    /// rounded back to f32.
    fn call(&mut self, callee: Callee, args: &[cl::Value]) -> cl::Value {
        if self.st == types::F32 {
            let wide: Vec<cl::Value> = args
                .iter()
                .map(|&x| self.b.ins().fpromote(types::F64, x))
                .collect();
            let y = self.call_f64(callee, &wide);
            return self.b.ins().fdemote(types::F32, y);
        }
        self.call_f64(callee, args)
    }

    /// Calls a host function on f64s.
    fn call_f64(&mut self, callee: Callee, args: &[cl::Value]) -> cl::Value {
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
}

impl Translator<'_, '_> {
    /// The location of a destination: a scratch slot, or a row of a loop's
    /// value at an address computed at run time.
    fn dst_loc(&self, dst: Opnd) -> Loc {
        match dst {
            Opnd::Mem { ptr, off, .. } if ptr == self.scratch => Loc::Scratch(off),
            Opnd::Mem { ptr, off, .. } => Loc::Row(ptr, off),
            Opnd::Reg(_) => unreachable!("destinations are memory"),
        }
    }
}

/// The integer operations [`Translator::index_op`] keeps.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
enum IndexOp {
    Shl,
    Mul,
    Add,
}

/// A Cranelift value as the key of [`Translator::index_op`]'s second
/// operand.
fn d_key(v: cl::Value) -> i64 {
    i64::from(v.as_u32())
}

/// The byte offset of the `k`-th f64 (or pointer) of a buffer.
fn offset_bytes(k: usize) -> i32 {
    i32::try_from(k * 8).expect("pointer tables are small")
}

/// Scalar accesses are aligned (the buffers are `Vec<f64>`s or
/// `Vec<f32>`s); vector accesses may not be 16-byte aligned, so they are
/// not marked `aligned`.
fn mem_flags(ty: cl::Type, readonly: bool) -> MemFlagsData {
    let flags = if !ty.is_vector() {
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
