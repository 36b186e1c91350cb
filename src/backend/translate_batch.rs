//! IR -> CLIF for a batched function: the loop over the examples of a
//! mini-batch inside the generated code.
//!
//! The function (see [`super::abi::BatchEntryFn`]) runs the instructions that
//! do not depend on the example once (the layout's steps before `body`),
//! then, for every example in order, the others with the inputs' row of
//! that example, adding every loss, metric and gradient to an accumulator and
//! copying the per-example outputs to their rows. At the end each accumulator
//! is divided by `n`. An accumulator starts at -0 and adds the examples'
//! values in order, so a mean is `(((-0 + v0) + v1) + ...) / n`, the same bits
//! as that sum over the interpreter's per-example results.
//!
//! A scalar accumulator lives in a register; a tensor one in the caller's
//! output buffer. Since `-0 + x` is `x` and `x / 1` is `x`, bit for bit, the
//! buffer takes a copy of the first example's value instead of being set to
//! -0 and added to, and a batch of one example is not divided.
//!
//! Two products with a weight matrix fixed over the batch are done
//! differently, with the same arithmetic:
//!
//! - `W @ x` of each example reads `W`'s transpose, made once per call
//!   before the loop, so that pairs of rows of `W` are f64x2 loads (see
//!   `Translator::matmul`).
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

use super::abi::{BatchOutput, BatchPlan, OuterMean, Reduce, CHUNK};
use super::translate::{Ix, Loc, Opnd, Translator, OUTPUTS};
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
        let size = f.insts[o.inst].shape.size();
        t.fill(dst, size, -0.0);
    }
    // The row of the current example in the chunk's `G` and `X`.
    let row = t.b.declare_var(t.ptr);
    let zero = t.b.ins().iconst(t.ptr, 0);
    t.b.def_var(row, zero);

    // for example in 0..n (the caller checks n >= 1: with n = 0 the loop is
    // skipped and the buffers are left as they are).
    let counter = t.b.declare_var(t.ptr);
    let zero = t.b.ins().iconst(t.ptr, 0);
    t.b.def_var(counter, zero);
    let header = t.b.create_block();
    let exit = t.b.create_block();
    t.b.ins().brif(n, header, &[], exit, &[]);
    t.b.switch_to_block(header);
    let example = t.b.use_var(counter);
    t.example = Some(example);
    let outer_mean = |i: usize| plan.outer_means.iter().find(|o| o.inst == i);
    let r = t.b.use_var(row);
    for step in &layout.steps[layout.body..] {
        match step[..] {
            [i] if outer_mean(i).is_some() => {
                let o = outer_mean(i).expect("just found");
                t.keep_rows(o, r);
            }
            _ => t.step(step)?,
        }
    }
    for (k, (o, acc)) in plan.outputs.iter().zip(&accs).enumerate() {
        if !plan.outer_means.iter().any(|om| om.output == k) {
            t.add(k, o, *acc, example);
        }
    }
    if !plan.outer_means.is_empty() {
        // After the chunk's last example: G^T X.
        let rows = t.b.ins().iadd_imm_s(r, 1);
        t.b.def_var(row, rows);
        let full = t.b.ins().icmp_imm_u(IntCC::Equal, rows, CHUNK as i64);
        let next = t.b.ins().iadd_imm_s(example, 1);
        let last = t.b.ins().icmp(IntCC::Equal, next, n);
        let flush = t.b.ins().bor(full, last);
        let multiply = t.b.create_block();
        let go_on = t.b.create_block();
        t.b.ins().brif(flush, multiply, &[], go_on, &[]);
        t.b.switch_to_block(multiply);
        for o in &plan.outer_means {
            t.outer_mean(o, rows);
        }
        let zero = t.b.ins().iconst(t.ptr, 0);
        t.b.def_var(row, zero);
        t.b.ins().jump(go_on, &[]);
        t.b.switch_to_block(go_on);
    }
    t.example = None;
    let next = t.b.ins().iadd_imm_s(example, 1);
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
        let args = &self.f.insts[o.inst].args;
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
        let args = &self.f.insts[o.inst].args;
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

    /// Runs `body` for every index in `0..count`, a value of at least 1.
    fn for_count(&mut self, count: cl::Value, body: &mut dyn FnMut(&mut Self, Ix)) {
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
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(counter, next);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, next, count);
        self.b.ins().brif(more, header, &[], exit, &[]);
        self.b.switch_to_block(exit);
    }

    /// Writes the transpose of instruction `w`'s value, an `[m, k]` matrix,
    /// to the scratch buffer from offset `off` on, as `[k, m]`.
    fn transpose_into(&mut self, w: usize, off: usize) {
        let (m, k) = match self.f.insts[w].shape.dims() {
            [m, k] => (*m, *k),
            _ => unreachable!("only matrices are transposed"),
        };
        let src = self.operand(crate::ir::Value(w as u32));
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
