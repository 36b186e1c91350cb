//! IR -> CLIF for a batched function: the loop over the examples of a
//! mini-batch inside the generated code.
//!
//! The function (see [`super::abi::BatchEntryFn`]) runs the instructions that
//! do not depend on the example once (the layout's steps before `body`),
//! then, for every example in order, the others with the inputs' row of
//! that example, adding every loss, metric and gradient to an accumulator and
//! copying the per-example outputs to their rows. The examples go in chunks
//! of [`CHUNK`], and the per-example instructions in stages (see
//! [`super::abi::BatchPlan`]): each stage runs for every example of the
//! chunk, in order, before the next one, the values a later stage reads kept
//! per example; the last stage adds to the accumulators. At the end each
//! accumulator
//! is divided by `n`. An accumulator starts at -0 and adds the examples'
//! values in order, so a mean is `(((-0 + v0) + v1) + ...) / n`, the same bits
//! as that sum over the interpreter's per-example results.
//!
//! A scalar accumulator lives in a register; a tensor one in the caller's
//! output buffer. Since `-0 + x` is `x` and `x / 1` is `x`, bit for bit, the
//! buffer takes a copy of the first example's value instead of being set to
//! -0 and added to, and a batch of one example is not divided.
//!
//! Three products with a weight matrix fixed over the batch are done
//! differently, with the same arithmetic:
//!
//! - `W @ x` of each example reads `W`'s transpose, made once per call
//!   before the loop, so that pairs of rows of `W` are f64x2 loads (see
//!   `Translator::matmul`).
//! - `W @ x` (or `x @ W`) where `x` is an input, or a value of an earlier
//!   stage, is computed for a chunk of examples at once, before its stage
//!   runs: the chunk's rows of `X W^T` (or `X W`), from the inputs' rows or
//!   the kept rows of `x`, two rows and eight columns at a time, each element
//!   the same dot product in the same order as the example's own; the
//!   instruction copies its row (see [`super::abi::ChunkProduct`]).
//! - A mean of `outer(g, x)` that nothing else reads (the gradient of a
//!   weight matrix) is one product `G^T X` over the batch: each example only
//!   copies `g` and `x` to its row of `G` and `X`, and after the last example
//!   (or every [`CHUNK`] examples) each element of the output buffer, set to
//!   -0 first, adds its products over the rows in example order, with the
//!   accumulators in registers (see [`super::abi::OuterMean`]).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{self as cl, types, InstBuilder, Signature};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_module::Module;

use super::abi::{BatchOutput, BatchPlan, ChunkProduct, OuterMean, Reduce, CHUNK};
use super::ops::BLOCK;
use super::translate::{dst_loc, Bound, Ix, Loc, Opnd, Translator, INPUTS, OUTPUTS};
use crate::ir::Function;

/// The signature of the generated batched function (see
/// [`super::abi::BatchEntryFn`]).
pub fn batch_signature(module: &dyn Module) -> Signature {
    super::translate::pointers_to_status(module, 5)
}

/// Builds the body of `func` (whose signature is [`batch_signature`]) from
/// `f` and its plan, declaring in `module` the host functions and data
/// objects it uses.
pub fn translate_batched(
    module: &mut dyn Module,
    f: &Function,
    plan: &BatchPlan,
    func: &mut cl::Function,
    fctx: &mut FunctionBuilderContext,
) -> Result<(), String> {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let p = b.block_params(entry).to_vec();
    let n = p[4];
    let mut t = Translator::new(b, module, f, &plan.layout, &p);
    let layout = &plan.layout;
    for step in &layout.steps[..layout.body] {
        t.step(step)?;
    }
    for &(w, off) in &layout.transposed {
        t.transpose_into(w, off);
    }
    let accs: Vec<Option<Acc>> = plan.outputs.iter().map(|&o| t.start(o)).collect();
    for o in &plan.outer_means {
        let dst = t.opnd_of(Loc::Table(OUTPUTS, o.output, 0));
        let size = f.insts()[o.inst].shape.size();
        t.fill(dst, size, -0.0);
    }
    // for each chunk of at most CHUNK examples from `first` on (the caller
    // checks n >= 1: with n = 0 the loop is skipped and the buffers are left
    // as they are): every stage for the chunk's examples in order, then the
    // chunk's `G^T X`.
    let counter = t.b.declare_var(t.ptr);
    let zero = t.b.ins().iconst(t.ptr, 0);
    t.b.def_var(counter, zero);
    let header = t.b.create_block();
    let exit = t.b.create_block();
    t.b.ins().brif(n, header, &[], exit, &[]);
    t.b.switch_to_block(header);
    let first = t.b.use_var(counter);
    let left = t.b.ins().isub(n, first);
    let chunk = t.b.ins().iconst(t.ptr, CHUNK as i64);
    let rows = t.b.ins().umin(left, chunk);
    let outer_mean = |i: usize| plan.outer_means.iter().find(|o| o.inst == i);
    let product = |i: usize| plan.products.iter().find(|o| o.inst == i);
    let kept = |i: usize| {
        plan.kept
            .iter()
            .find(|&&(v, _)| v == i)
            .map(|&(_, off)| off)
    };
    let count = layout.stages.len();
    let mut failed = None;
    for s in 0..count {
        let from = layout.stages[s];
        let to = layout
            .stages
            .get(s + 1)
            .copied()
            .unwrap_or(layout.steps.len());
        for o in plan.products.iter().filter(|o| o.stage == s) {
            t.chunk_product(o, first, rows, kept);
        }
        t.for_count(rows, &mut |t, r| {
            let r = r.dynamic.expect("a loop counter");
            let example = t.b.ins().iadd(first, r);
            t.example = Some(example);
            // The inputs' rows of this example, and what earlier stages kept.
            for step in &layout.steps[layout.body..] {
                for &i in step {
                    if matches!(t.f.insts()[i].op, crate::ir::Op::Input(_)) && s > 0 {
                        if let Err(e) = t.step(&[i]) {
                            failed.get_or_insert(e);
                        }
                    }
                }
            }
            for &(v, off) in &plan.kept {
                if plan.stage[v] < s {
                    t.kept_row(v, off, r);
                }
            }
            for step in &layout.steps[from..to] {
                match step[..] {
                    [i] if outer_mean(i).is_some() => {
                        let o = outer_mean(i).expect("just found");
                        t.keep_rows(o, r);
                    }
                    [i] if product(i).is_some() => {
                        let o = product(i).expect("just found");
                        t.product_row(o, r);
                    }
                    _ => {
                        if let Err(e) = t.step(step) {
                            failed.get_or_insert(e);
                        }
                    }
                }
                for &i in step {
                    if let Some(off) = kept(i) {
                        t.keep_row(i, off, r);
                    }
                }
            }
            if s + 1 == count {
                for (k, (o, acc)) in plan.outputs.iter().zip(&accs).enumerate() {
                    if !plan.outer_means.iter().any(|om| om.output == k) {
                        t.add(k, o, *acc, example);
                    }
                }
            }
            t.example = None;
        });
    }
    if let Some(e) = failed {
        return Err(e);
    }
    for o in &plan.outer_means {
        t.outer_mean(o, rows);
    }
    let next = t.b.ins().iadd_imm_s(first, CHUNK as i64);
    t.b.def_var(counter, next);
    let more = t.b.ins().icmp(IntCC::UnsignedLessThan, next, n);
    t.b.ins().brif(more, header, &[], exit, &[]);
    t.b.switch_to_block(exit);
    let count = t.b.ins().fcvt_from_uint(types::F64, n);
    // Dividing by 1 changes nothing: a batch of one skips the buffers.
    let divide = t.b.create_block();
    let done = t.b.create_block();
    let several = t.b.ins().icmp_imm_u(IntCC::NotEqual, n, 1);
    t.b.ins().brif(several, divide, &[], done, &[]);
    t.b.switch_to_block(divide);
    for (k, acc) in accs.iter().enumerate() {
        if let Some(Acc::Buffer) = acc {
            t.divide(k, plan.outputs[k], Acc::Buffer, count);
        }
    }
    t.b.ins().jump(done, &[]);
    t.b.switch_to_block(done);
    for (k, acc) in accs.iter().enumerate() {
        if let Some(Acc::Reg(v)) = acc {
            t.divide(k, plan.outputs[k], Acc::Reg(*v), count);
        }
    }
    let ok = t.b.ins().iconst(types::I64, 0);
    t.b.ins().return_(&[ok]);
    t.finish();
    Ok(())
}

/// The accumulator of a mean.
#[derive(Copy, Clone, Debug)]
enum Acc {
    /// A scalar, in a variable.
    Reg(Variable),
    /// A tensor, in the output buffer.
    Buffer,
}

impl Translator<'_, '_> {
    /// The size of the value of output `o`.
    fn size_of(&self, o: BatchOutput) -> usize {
        self.f.shape(self.f.outputs[o.index].value).size()
    }

    /// The accumulator of output `o`, if it is a mean: a register set to -0,
    /// or the output buffer, which the first example sets.
    fn start(&mut self, o: BatchOutput) -> Option<Acc> {
        match o.reduce {
            Reduce::PerExample => None,
            Reduce::Mean if self.f.shape(self.f.outputs[o.index].value).is_scalar() => {
                Some(Acc::Reg(self.var(-0.0)))
            }
            Reduce::Mean => Some(Acc::Buffer),
        }
    }

    /// Adds the current example's value of the `k`-th output to its
    /// accumulator, or copies it to its row.
    fn add(&mut self, k: usize, o: &BatchOutput, acc: Option<Acc>, example: cl::Value) {
        let size = self.size_of(*o);
        let src = self.operand(self.f.outputs[o.index].value);
        match acc {
            Some(Acc::Reg(v)) => {
                let x = self.read(src, Ix::c(0));
                let a = self.b.use_var(v);
                let s = self.b.ins().fadd(a, x);
                self.b.def_var(v, s);
            }
            Some(Acc::Buffer) => {
                let dst = self.opnd_of(Loc::Table(OUTPUTS, k, 0));
                let first = self.b.create_block();
                let later = self.b.create_block();
                let next = self.b.create_block();
                self.b.ins().brif(example, later, &[], first, &[]);
                self.b.switch_to_block(first);
                self.copy(src, dst, 0, size);
                self.b.ins().jump(next, &[]);
                self.b.switch_to_block(later);
                self.pairwise(dst, src, size, &mut |t, a, x| t.b.ins().fadd(a, x));
                self.b.ins().jump(next, &[]);
                self.b.switch_to_block(next);
            }
            None => {
                let base = self.table_entry(OUTPUTS, k);
                let bytes = self.b.ins().imul_imm_s(example, (size * 8) as i64);
                let row = self.b.ins().iadd(base, bytes);
                let dst = Opnd::Mem {
                    ptr: row,
                    off: 0,
                    readonly: false,
                };
                self.copy(src, dst, 0, size);
            }
        }
    }

    /// Copies the current example's `g` and `x` of `o` to row `r` of `G`
    /// and `X`.
    fn keep_rows(&mut self, o: &OuterMean, r: cl::Value) {
        let args = &self.f.insts()[o.inst].args;
        for (v, off) in [(args[0], o.g), (args[1], o.x)] {
            let size = self.f.shape(v).size();
            let src = self.operand(v);
            let at = self.b.ins().imul_imm_s(r, (size * 8) as i64);
            let ptr = self.b.ins().iadd(self.scratch, at);
            let dst = Opnd::Mem {
                ptr,
                off,
                readonly: false,
            };
            self.copy(src, dst, 0, size);
        }
    }

    /// Adds `G^T X` of `o`'s first `rows` rows (at least one) to its output
    /// buffer: element `(i, j)` adds `G[r, i] * X[r, j]` for `r` in order.
    /// Columns eight at a time (four f64x2 accumulators) over the rows of
    /// the result, then the rest of the columns together.
    fn outer_mean(&mut self, o: &OuterMean, rows: cl::Value) {
        let args = &self.f.insts()[o.inst].args;
        let (m, n) = (self.f.shape(args[0]).size(), self.f.shape(args[1]).size());
        let dst = self.opnd_of(Loc::Table(OUTPUTS, o.output, 0));
        let (g, x) = (o.g, o.x);
        let block = |t: &mut Self, cols: &[(Ix, cl::Type)]| {
            t.for_each(m, &mut |t, i| {
                let accs: Vec<(Variable, Ix)> = cols
                    .iter()
                    .map(|&(col, ty)| {
                        let at = t.lin(&[(i, n), (col, 1)], 0);
                        let a = t.read_as(ty, dst, at);
                        let v = t.b.declare_var(ty);
                        t.b.def_var(v, a);
                        (v, at)
                    })
                    .collect();
                t.for_count(rows, &mut |t, r| {
                    let scratch = t.scratch;
                    let mem = |off| Opnd::Mem {
                        ptr: scratch,
                        off,
                        readonly: false,
                    };
                    let ig = t.lin(&[(r, m), (i, 1)], 0);
                    let u = t.read(mem(g), ig);
                    let mut wide = None;
                    for (&(col, ty), &(acc, _)) in cols.iter().zip(&accs) {
                        let u = if ty == types::F64 {
                            u
                        } else {
                            *wide.get_or_insert_with(|| t.b.ins().splat(ty, u))
                        };
                        let ix = t.lin(&[(r, n), (col, 1)], 0);
                        let v = t.read_as(ty, mem(x), ix);
                        let prod = t.b.ins().fmul(u, v);
                        let a = t.b.use_var(acc);
                        let s = t.b.ins().fadd(a, prod);
                        t.b.def_var(acc, s);
                    }
                });
                for &(acc, at) in &accs {
                    let a = t.b.use_var(acc);
                    t.write(dst, at, a);
                }
            });
        };
        let whole = n - n % 8;
        self.for_each_step(whole, 8, &mut |t, col| {
            let cols: Vec<(Ix, cl::Type)> =
                (0..4).map(|c| (col.plus(2 * c), types::F64X2)).collect();
            block(t, &cols);
        });
        let mut cols = Vec::new();
        let mut col = whole;
        while col + 2 <= n {
            cols.push((Ix::c(col), types::F64X2));
            col += 2;
        }
        if col < n {
            cols.push((Ix::c(col), types::F64));
        }
        if !cols.is_empty() {
            block(self, &cols);
        }
    }

    /// The rows of `Y = X W^T` (or `X W`) of `o` for the `rows` examples (at
    /// least one) from `first` on, `X` the inputs' rows or the kept ones: pairs of rows (the last row twice if `rows` is odd)
    /// times eight columns (four f64x2 accumulators per row), then the rest
    /// of the columns, each element summed from -0 over `k` in order, as the
    /// example's own `W @ x` sums it.
    fn chunk_product(
        &mut self,
        o: &ChunkProduct,
        first: cl::Value,
        rows: cl::Value,
        kept: impl Fn(usize) -> Option<usize>,
    ) {
        let args = &self.f.insts()[o.inst].args;
        let (a, b) = (args[0], args[1]);
        // `Y = X W^T` for `W @ x`, `Y = X W` for `x @ W`: `X` times a `[k, m]`
        // matrix.
        let (xv, wt, m, k) = match (self.f.shape(a).dims(), self.f.shape(b).dims()) {
            ([m, k], [_]) => {
                let wt = Opnd::Mem {
                    ptr: self.scratch,
                    off: self
                        .layout
                        .transposed_of(a.index())
                        .expect("planned with it"),
                    readonly: false,
                };
                (b, wt, *m, *k)
            }
            ([k], [_, m]) => {
                let (m, k) = (*m, *k);
                (a, self.operand(b), m, k)
            }
            _ => unreachable!("a matrix-vector product"),
        };
        let x = match (self.f.insts()[xv.index()].op.clone(), kept(xv.index())) {
            (crate::ir::Op::Input(input), _) => {
                let base = self.table_entry(INPUTS, input);
                let bytes = self.b.ins().imul_imm_s(first, (k * 8) as i64);
                Opnd::Mem {
                    ptr: self.b.ins().iadd(base, bytes),
                    off: 0,
                    readonly: true,
                }
            }
            (_, Some(off)) => Opnd::Mem {
                ptr: self.scratch,
                off,
                readonly: false,
            },
            _ => unreachable!("a product's vector is an input or kept"),
        };
        let y = Opnd::Mem {
            ptr: self.scratch,
            off: o.y,
            readonly: false,
        };
        let pairs = self.b.ins().iadd_imm_s(rows, 1);
        let pairs = self.b.ins().ushr_imm_u(pairs, 1);
        let last = self.b.ins().iadd_imm_s(rows, -1);
        self.for_count(pairs, &mut |t, q| {
            let r0 = t.lin(&[(q, 2)], 0);
            let r0v = r0.dynamic.expect("a loop counter");
            let next = t.b.ins().iadd_imm_s(r0v, 1);
            let r1v = t.b.ins().umin(next, last);
            let r1 = Ix {
                dynamic: Some(r1v),
                konst: 0,
            };
            let put = |t: &mut Self, cells: &[(Ix, Ix, cl::Type)]| {
                let d = t.dots(x, wt, k, m, cells);
                for (&(row, col, _), v) in cells.iter().zip(d) {
                    let at = t.lin(&[(row, m), (col, 1)], 0);
                    t.write(y, at, v);
                }
            };
            let whole = m - m % (2 * BLOCK);
            t.for_each_step(whole, 2 * BLOCK, &mut |t, col| {
                let cells: Vec<(Ix, Ix, cl::Type)> = [r0, r1]
                    .iter()
                    .flat_map(|&row| (0..BLOCK).map(move |c| (row, col.plus(2 * c), types::F64X2)))
                    .collect();
                put(t, &cells);
            });
            let mut cols = Vec::new();
            let mut col = whole;
            while col + 2 <= m {
                cols.push((Ix::c(col), types::F64X2));
                col += 2;
            }
            if col < m {
                cols.push((Ix::c(col), types::F64));
            }
            if !cols.is_empty() {
                let cells: Vec<(Ix, Ix, cl::Type)> = [r0, r1]
                    .iter()
                    .flat_map(|&row| cols.iter().map(move |&(col, ty)| (row, col, ty)))
                    .collect();
                put(t, &cells);
            }
        });
    }

    /// The value of `o`'s product for the current example: row `r` of its
    /// `Y`, copied to the instruction's slot.
    fn product_row(&mut self, o: &ChunkProduct, r: cl::Value) {
        let m = self.f.insts()[o.inst].shape.size();
        let at = self.b.ins().imul_imm_s(r, (m * 8) as i64);
        let ptr = self.b.ins().iadd(self.scratch, at);
        let src = Opnd::Mem {
            ptr,
            off: o.y,
            readonly: false,
        };
        let dst = self.dest(o.inst);
        self.copy(src, dst, 0, m);
        self.set_loc(o.inst, dst_loc(dst));
    }

    /// Copies the value of instruction `v` to row `r` of its rows at `off`.
    fn keep_row(&mut self, v: usize, off: usize, r: cl::Value) {
        let size = self.f.insts()[v].shape.size();
        let src = self.operand(self.f.value(v).expect("a kept value"));
        let at = self.b.ins().imul_imm_s(r, (size * 8) as i64);
        let ptr = self.b.ins().iadd(self.scratch, at);
        let dst = Opnd::Mem {
            ptr,
            off,
            readonly: false,
        };
        self.copy(src, dst, 0, size);
    }

    /// Makes the value of instruction `v`, of an earlier stage, row `r` of
    /// its rows at `off`: a scalar loaded, a tensor read in place.
    fn kept_row(&mut self, v: usize, off: usize, r: cl::Value) {
        let size = self.f.insts()[v].shape.size();
        let at = self.b.ins().imul_imm_s(r, (size * 8) as i64);
        let ptr = self.b.ins().iadd(self.scratch, at);
        let loc = if self.f.insts()[v].shape.is_scalar() {
            let src = Opnd::Mem {
                ptr,
                off,
                readonly: false,
            };
            Loc::Reg(self.read(src, Ix::c(0)))
        } else {
            Loc::Row(ptr, off)
        };
        self.set_loc(v, loc);
    }

    /// Runs `body` for every index in `0..count`, a value of at least 1.
    fn for_count(&mut self, count: cl::Value, body: &mut dyn FnMut(&mut Self, Ix)) {
        self.counted_loop(1, Bound::Value(count), body);
    }

    /// Writes the transpose of instruction `w`'s value, an `[m, k]` matrix,
    /// to the scratch buffer from offset `off` on, as `[k, m]`.
    fn transpose_into(&mut self, w: usize, off: usize) {
        let (m, k) = match self.f.insts()[w].shape.dims() {
            [m, k] => (*m, *k),
            _ => unreachable!("only matrices are transposed"),
        };
        let src = self.operand(self.f.value(w).expect("a transposed value"));
        let dst = Opnd::Mem {
            ptr: self.scratch,
            off,
            readonly: false,
        };
        self.nest(&[k, m], &mut |t, ix| {
            let from = t.lin(&[(ix[1], k), (ix[0], 1)], 0);
            let x = t.read(src, from);
            let to = t.lin(&[(ix[0], m), (ix[1], 1)], 0);
            t.write(dst, to, x);
        });
    }

    /// Divides the `k`-th accumulator by the number of examples and leaves
    /// the mean in the output buffer.
    fn divide(&mut self, k: usize, o: BatchOutput, acc: Acc, count: cl::Value) {
        let dst = self.opnd_of(Loc::Table(OUTPUTS, k, 0));
        match acc {
            Acc::Reg(v) => {
                let a = self.b.use_var(v);
                let mean = self.b.ins().fdiv(a, count);
                self.write(dst, Ix::c(0), mean);
            }
            Acc::Buffer => {
                let count = Opnd::Reg(count);
                let size = self.size_of(o);
                self.pairwise(dst, count, size, &mut |t, a, c| t.b.ins().fdiv(a, c));
            }
        }
    }

    /// `dst[j] = op(dst[j], src[j])` for `j` in `0..n`, two at a time (a
    /// register `src` stands for every element).
    fn pairwise(
        &mut self,
        dst: Opnd,
        src: Opnd,
        n: usize,
        op: &mut dyn FnMut(&mut Self, cl::Value, cl::Value) -> cl::Value,
    ) {
        let wide = match src {
            Opnd::Reg(x) if n >= 2 => Opnd::Reg(self.b.ins().splat(types::F64X2, x)),
            other => other,
        };
        self.for_each_step(n - n % 2, 2, &mut |t, ix| {
            let a = t.read_as(types::F64X2, dst, ix);
            let x = t.read_as(types::F64X2, wide, ix);
            let y = op(t, a, x);
            t.write(dst, ix, y);
        });
        if n % 2 == 1 {
            let ix = Ix::c(n - 1);
            let a = self.read(dst, ix);
            let x = self.read(src, ix);
            let y = op(self, a, x);
            self.write(dst, ix, y);
        }
    }
}
