//! A large fused run computed in parts on several threads: its loop (over
//! chunks of its elements, the slabs of its nest's first axis, blocks of
//! its nest's columns, or its joined product's blocks) becomes a
//! function of its own over a range of the loop's iterations, and the run's
//! code hands that function to the kernel's `in_parts`
//! ([`crate::backend::kernel::runs`]) with the values the loop reads from
//! the calling function, stored in a stack slot. Each element is the same
//! computation as in the one loop, so the bits are the same at any number
//! of threads; with one thread, `in_parts` calls the function once.
//!
//! Only runs whose elements are independent go in parts: no shifts (an
//! element kept for the next), no reduction along the axis the parts
//! divide, and (for a nest) no spread read from memory that a member
//! writes. A run with `sum`s goes in parts only if it is flat, in groups
//! of four of its sums' blocks (`super::sums`), each part storing its
//! blocks' sums for the calling function to add up in order. A large
//! maximum goes in parts of its slices ([`Translator::max_in_parts`]).

use std::collections::{BTreeMap, HashMap};

use cranelift_codegen::ir::{
    self as cl, types, AbiParam, ExtFuncData, ExternalName, InstBuilder, MemFlagsData,
    StackSlotData, StackSlotKind, UserExternalName, UserFuncName,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::FuncId;

use super::elementwise::calls;
use super::fuse::Run;
use super::{readonly, Ix, Opnd, Translator};
use crate::backend::kernel::runs::IN_PARTS;
use crate::backend::plan::fuse::Member;
use crate::dtype::Dtype;
use crate::ir::{Op, Value};
use crate::shape::Shape;

/// The least work of a run computed in parts, in elements of the simplest
/// run ([`Translator::element_work`]): about 100 microseconds, against the
/// tens a sleeping thread takes to start (smaller runs, from 2^15
/// elements, measured slower in parts on `kmeans` and `ba`).
pub(super) const PARTS_MIN: usize = 1 << 17;

/// The work of a member that calls a function for each element or pair
/// (`exp`, `log`, ...), in elements of the simplest run: `exp` of eight
/// elements is some 40 instructions with AVX-512, 110 with AVX2. (At 8,
/// `gmm`'s [K, N] exponentials at d = 2, k = 25, 25,000 of them, went in
/// parts, and its derivative took 279 to 387 microseconds, against 251 to
/// 254 on one thread.)
const CALLED: usize = 4;

/// The elements of one iteration of a run in parts that has no nest (the
/// rest after the last whole chunk are computed by the calling function).
pub(super) const CHUNK: usize = 1024;

/// The fewest slabs (elements of its first axis) a nest is shared out in:
/// with fewer, a thread may get half as much again as another.
const SLABS_MIN: usize = 8;

/// The columns of a block of a nest shared out by its columns, about.
const BLOCK: usize = 512;

/// The fewest columns of a block of a nest shared out by its columns.
const BLOCK_MIN: usize = 64;

/// The elements of a slice of a maximum in parts (a part's iteration).
const MAX_SLICE: usize = 1 << 14;

/// The most slices of a maximum in parts, whose maxima the caller keeps on
/// its stack (64 KiB of f64s): 2^27 elements.
const MAX_SLICES: usize = 1 << 13;

/// The elements a thread claims at a time, about (a few microseconds'
/// work): a grain of iterations, at least one.
const GRAIN: usize = 1 << 12;

/// The bytes of the stack slot each value the loop reads from the calling
/// function takes: a vector's.
const CAPTURED: usize = 16;

impl Translator<'_, '_> {
    /// Whether run `r` of `n` elements may go in parts: it is large, in the
    /// function of one example (a batched function's examples are its
    /// loop), and its elements are independent (see the module's doc).
    pub(super) fn splittable(&self, r: &Run, n: usize) -> bool {
        self.example.is_none()
            && n * self.element_work(r) >= PARTS_MIN
            && (r.sums.is_empty()
                || r.members
                    .iter()
                    .all(|m| matches!(m, Member::Map(_) | Member::Sum)))
            && r.shifts.is_empty()
            && r.members.iter().all(|m| {
                !matches!(
                    m,
                    Member::Lag | Member::Lead | Member::ShiftSlice | Member::Pieces
                )
            })
            && r.members
                .iter()
                .skip_while(|&&m| m == Member::Product)
                .all(|&m| m != Member::Product)
    }

    /// The work of one element of `r`: 1, and [`CALLED`] more for each
    /// member that calls a function.
    fn element_work(&self, r: &Run) -> usize {
        let called = r.members.iter().filter(|&&m| match m {
            Member::Map(op) => calls(op),
            _ => false,
        });
        1 + CALLED * called.count()
    }

    /// The run `r` of `n` elements (neither spreads nor shifts) from its
    /// first, [`CHUNK`] elements an iteration, in parts; returns how many
    /// elements that is (the caller computes the rest). (A run with sums
    /// goes in parts of four of their blocks: `super::sums`.)
    pub(super) fn chunks_in_parts(
        &mut self,
        r: &Run,
        n: usize,
        simd: bool,
    ) -> Result<usize, String> {
        let chunks = n / CHUNK;
        self.in_parts(r, (chunks, CHUNK), &mut |t, r, i| {
            let start = t.lin(&[(i, CHUNK)], 0);
            let chunk = t.from(r, start);
            t.flat(&chunk, CHUNK, simd);
        })?;
        Ok(chunks * CHUNK)
    }

    /// The run `r` with spreads or reductions of rows, over `shape`, in
    /// parts, if it can go so (else nothing is emitted, and false
    /// returned): in slabs of its first axis if that axis is long enough
    /// to share out and no member reduces along it, else in blocks of its
    /// columns (which every reduction leaves), if there are enough; and
    /// no spread may read memory the run writes.
    pub(super) fn nest_in_parts(
        &mut self,
        r: &Run,
        shape: &Shape,
        simd: bool,
    ) -> Result<bool, String> {
        let f = self.f;
        let dims = shape.dims();
        let cols = dims[dims.len() - 1];
        if dims.len() < 2 || !self.spreads_apart(r) {
            return Ok(false);
        }
        let along_first = r
            .insts
            .iter()
            .any(|&v| matches!(&f.inst(v).op, Op::ReduceAxes(_, along) if along.contains(&0)));
        if !along_first && dims[0] >= SLABS_MIN {
            let slab = shape.size() / dims[0];
            self.in_parts(r, (dims[0], slab), &mut |t, r, i| {
                t.slab_of(r, shape, simd, i);
            })?;
            return Ok(true);
        }
        // Two blocks or more of at most about `BLOCK` columns, each an even
        // number of vectors; the caller computes the columns left over.
        let step = 2 * self.lanes;
        let width = cols / cols.div_ceil(BLOCK).max(2) / step * step;
        if width < BLOCK_MIN {
            return Ok(false);
        }
        let blocks = cols / width;
        let block = shape.size() / cols * width;
        self.in_parts(r, (blocks, block), &mut |t, r, i| {
            let first = t.lin(&[(i, width)], 0);
            t.column_block(r, shape, simd, first, width);
        })?;
        let done = blocks * width;
        if done < cols {
            self.column_block(r, shape, simd, Ix::c(done), cols - done);
        }
        Ok(true)
    }

    /// The maximum of the tensor `v` in parts, if it is large and this is
    /// the function of one example: each part the maxima of its slices of
    /// [`MAX_SLICE`] elements, stored on the caller's stack, which then
    /// takes their maximum and that of the elements after the last slice.
    /// Under the maximum's rules (NaN first, -0 below +0) the order it is
    /// taken in does not change it (a NaN's payload aside).
    pub(super) fn max_in_parts(&mut self, v: Value) -> Result<Option<cl::Value>, String> {
        let n = self.f.shape(v).size();
        let slices = n / MAX_SLICE;
        if self.example.is_some() || n < PARTS_MIN || slices > MAX_SLICES {
            return Ok(None);
        }
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (slices << self.shift) as u32,
            self.shift as u8,
        ));
        let maxima = Opnd::Mem {
            ptr: self.b.ins().stack_addr(self.ptr, slot, 0),
            off: 0,
            readonly: false,
        };
        let x = self.operand(v);
        // A run of nothing, reading `v`, writing `maxima`.
        let r = Run {
            insts: &[],
            members: Vec::new(),
            outside: BTreeMap::from([(v, (x, x))]),
            dests: BTreeMap::new(),
            sums: BTreeMap::new(),
            totals: BTreeMap::new(),
            left: None,
            partials: Some(maxima),
            spreads: BTreeMap::new(),
            shifts: BTreeMap::new(),
        };
        self.in_parts(&r, (slices, MAX_SLICE), &mut |t, r, i| {
            let start = t.lin(&[(i, MAX_SLICE)], 0);
            let slice = t.moved(r.outside[&v].0, start);
            let m = t.max_from(slice, MAX_SLICE);
            let maxima = r.partials.expect("the maxima's slot");
            t.write(maxima, i, m);
        })?;
        let of_slices = self.max_from(maxima, slices);
        let rest = self.moved(x, Ix::c(slices * MAX_SLICE));
        let of_rest = self.max_from(rest, n % MAX_SLICE);
        Ok(Some(self.maximum(of_slices, of_rest)))
    }

    /// Whether every spread of `r` reads memory that none of its members
    /// writes: each part reads a spread's argument at elements of its own
    /// choosing, which another part must not be writing.
    pub(super) fn spreads_apart(&self, r: &Run) -> bool {
        let f = self.f;
        let sources = r
            .insts
            .iter()
            .filter(|&&v| matches!(f.inst(v).op, Op::BroadcastAxes(..)))
            .map(|&v| f.inst(v).args[0]);
        self.stores_apart(r, sources)
    }

    /// A buffer of `n` elements on the stack of the function being built
    /// (a part's own block of a joined product), aligned to a cache line.
    pub(super) fn block_buffer(&mut self, n: usize) -> Opnd {
        let bytes = (n << self.shift) as u32;
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            bytes,
            6,
        ));
        Opnd::Mem {
            ptr: self.b.ins().stack_addr(self.ptr, slot, 0),
            off: 0,
            readonly: false,
        }
    }

    /// Iterations `0..count` of `body` (given the translator, the run with
    /// its operands in the function being built, and the iteration), each
    /// of `each` elements, as a function of their range, called through
    /// the kernel's `in_parts`.
    pub(super) fn in_parts(
        &mut self,
        r: &Run,
        (count, each): (usize, usize),
        body: &mut dyn FnMut(&mut Translator, &Run, Ix),
    ) -> Result<(), String> {
        // The values the run reads from here: its operands' registers and
        // base pointers.
        let mut captured: Vec<cl::Value> = Vec::new();
        let operands = r.outside.values().flat_map(|&(a, b)| [a, b]);
        let written = r.dests.values().chain(&r.partials).copied();
        for o in operands.chain(written) {
            let x = match o {
                Opnd::Reg(x) => x,
                Opnd::Mem { ptr, .. } => ptr,
            };
            if !captured.contains(&x) {
                captured.push(x);
            }
        }
        let id = self.part(r, &captured, body)?;
        let ptr = self.ptr;
        let bytes = (CAPTURED * captured.len().max(1)) as u32;
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            bytes,
            CAPTURED.trailing_zeros() as u8,
        ));
        let at = self.b.ins().stack_addr(ptr, slot, 0);
        for (k, &x) in captured.iter().enumerate() {
            let flags = MemFlagsData::trusted();
            self.b.ins().store(flags, x, at, (CAPTURED * k) as i32);
        }
        let fref = self.import_function(id);
        let part = self.b.ins().func_addr(ptr, fref);
        let count = self.b.ins().iconst(ptr, count as i64);
        let grain = self.b.ins().iconst(ptr, GRAIN.div_ceil(each) as i64);
        let [params, inputs, outputs] = self.tables;
        let args = [part, params, inputs, outputs, self.slots, at, count, grain];
        self.call_kernel(IN_PARTS, &args);
        Ok(())
    }

    /// The module's function `id`, imported into the function being built,
    /// at its absolute address: the JIT's memory for functions need not
    /// lie within a relative call's reach.
    pub(super) fn import_function(&mut self, id: FuncId) -> cl::FuncRef {
        let decl = self.module.declarations().get_function_decl(id);
        let signature = self.b.func.import_signature(decl.signature.clone());
        let name = self
            .b
            .func
            .declare_imported_user_function(UserExternalName {
                namespace: 0,
                index: id.as_u32(),
            });
        self.b.func.import_function(ExtFuncData {
            name: ExternalName::user(name),
            signature,
            colocated: false,
            patchable: false,
        })
    }

    /// Defines the function of a range of the loop's iterations
    /// (`crate::backend::kernel::runs::Part`): `captured` loaded from its
    /// fifth argument, then `body` for every iteration of the range.
    fn part(
        &mut self,
        r: &Run,
        captured: &[cl::Value],
        body: &mut dyn FnMut(&mut Translator, &Run, Ix),
    ) -> Result<FuncId, String> {
        let ptr = self.ptr;
        let mut sig = self.module.make_signature();
        for _ in 0..7 {
            sig.params.push(AbiParam::new(ptr));
        }
        let id = self
            .module
            .declare_anonymous_function(&sig)
            .map_err(|e| format!("declaring a loop in parts: {e}"))?;
        let kinds: Vec<cl::Type> = captured
            .iter()
            .map(|&x| self.b.func.dfg.value_type(x))
            .collect();
        let dtype = if self.st == types::F32 {
            Dtype::F32
        } else {
            Dtype::F64
        };
        let mut func = cl::Function::with_name_signature(UserFuncName::default(), sig);
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let p = super::enter(&mut b);
        let mut t = Translator::new(b, &mut *self.module, self.f, self.layout, &p[..4], dtype);
        let mut there: HashMap<cl::Value, cl::Value> = HashMap::new();
        for (k, (&x, &ty)) in captured.iter().zip(&kinds).enumerate() {
            let y = t.b.ins().load(ty, readonly(), p[4], (CAPTURED * k) as i32);
            there.insert(x, y);
        }
        let moved = in_function(r, &there);
        let (lo, hi) = (p[5], p[6]);
        let count = t.b.ins().isub(hi, lo);
        t.for_count(count, &mut |t, k| {
            let k = k.dynamic.expect("a loop's counter");
            let i = t.b.ins().iadd(lo, k);
            let i = Ix {
                dynamic: Some(i),
                konst: 0,
            };
            body(t, &moved, i);
        });
        t.b.ins().return_(&[]);
        t.finish();
        let mut ctx = cranelift_codegen::Context::for_function(func);
        self.module
            .define_function(id, &mut ctx)
            .map_err(|e| format!("cranelift could not compile a loop in parts: {e:?}"))?;
        Ok(id)
    }
}

/// The run `r` with its operands' values replaced by theirs in another
/// function (`there`).
fn in_function<'r>(r: &Run<'r>, there: &HashMap<cl::Value, cl::Value>) -> Run<'r> {
    let o = |o: Opnd| match o {
        Opnd::Reg(x) => Opnd::Reg(there[&x]),
        Opnd::Mem { ptr, off, readonly } => Opnd::Mem {
            ptr: there[&ptr],
            off,
            readonly,
        },
    };
    Run {
        insts: r.insts,
        members: r.members.clone(),
        outside: r
            .outside
            .iter()
            .map(|(&v, &(a, b))| (v, (o(a), o(b))))
            .collect(),
        dests: r.dests.iter().map(|(&v, &d)| (v, o(d))).collect(),
        sums: BTreeMap::new(),
        totals: BTreeMap::new(),
        left: None,
        partials: r.partials.map(o),
        spreads: BTreeMap::new(),
        shifts: BTreeMap::new(),
    }
}
