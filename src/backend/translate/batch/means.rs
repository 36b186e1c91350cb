//! The means of a batched function: an accumulator per loss, metric and
//! gradient, added to example by example in order from -0 and divided by
//! the number of examples at the end; per-example outputs copied to their
//! rows; and the weight gradients computed over a chunk as one `G^T X`
//! by the kernel (see [`crate::backend::plan::OuterMean`]).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{self as cl, InstBuilder};
use cranelift_frontend::Variable;

use crate::backend::abi::OUTPUTS;
use crate::backend::plan::{BatchOutput, OuterMean, Reduce};
use crate::backend::translate::gemm::{Size, Strided};
use crate::backend::translate::{Ix, Loc, Opnd, Translator};
use crate::ir::Op;

/// The accumulator of a mean.
#[derive(Copy, Clone, Debug)]
pub(super) enum Acc {
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
    pub(super) fn start(&mut self, o: BatchOutput) -> Option<Acc> {
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
    pub(super) fn add(&mut self, k: usize, o: &BatchOutput, acc: Option<Acc>, example: cl::Value) {
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
                let bytes = self
                    .b
                    .ins()
                    .imul_imm_s(example, (size << self.shift) as i64);
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
    /// and `X`, unless it is an input, whose rows `outer_mean` reads where
    /// they are.
    pub(super) fn keep_rows(&mut self, o: &OuterMean, r: cl::Value) {
        let args = &self.f.inst(o.inst).args;
        for (v, off) in [(args[0], o.g), (args[1], o.x)] {
            if matches!(self.f.inst(v).op, Op::Input(_)) {
                // Read from the inputs' rows by `outer_mean`.
                continue;
            }
            let size = self.f.shape(v).size();
            let src = self.operand(v);
            let at = self.b.ins().imul_imm_s(r, (size << self.shift) as i64);
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
    /// buffer: element `(i, j)` adds `G[r, i] * X[r, j]` for `r` in order,
    /// one call of the kernel (`G` read through its strides as `G^T`, an
    /// input's rows in the inputs' buffer from example `first` on), which
    /// starts each sum from -0 on the first chunk (`first` is 0) and
    /// resumes the sums in the buffer on the others.
    pub(super) fn outer_mean(&mut self, o: &OuterMean, first: cl::Value, rows: cl::Value) {
        let args = &self.f.inst(o.inst).args;
        let (m, n) = (self.f.shape(args[0]).size(), self.f.shape(args[1]).size());
        let dst = self.opnd_of(Loc::Table(OUTPUTS, o.output, 0));
        let rows_of = |t: &mut Self, v, off| {
            t.input_rows(v, first).unwrap_or(Opnd::Mem {
                ptr: t.scratch,
                off,
                readonly: false,
            })
        };
        let (g, x) = (rows_of(self, args[0], o.g), rows_of(self, args[1], o.x));
        let dims = (Size::Const(m), Size::Const(n), Size::Value(rows));
        let operands = (Strided::transposed(g, m), Strided::rows(x, n));
        let resume = self.b.ins().icmp_imm_u(IntCC::NotEqual, first, 0);
        let resume = self.b.ins().uextend(self.ptr, resume);
        self.gemm(dims, operands, (dst, n), Size::Value(resume));
    }

    /// Divides the `k`-th accumulator by the number of examples and leaves
    /// the mean in the output buffer.
    pub(super) fn divide(&mut self, k: usize, o: BatchOutput, acc: Acc, count: cl::Value) {
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

    /// Leaves the scalar accumulator `v` of the `k`-th output, undivided,
    /// in its output buffer (a batched function that returns sums).
    pub(super) fn store_sum(&mut self, k: usize, v: Variable) {
        let dst = self.opnd_of(Loc::Table(OUTPUTS, k, 0));
        let a = self.b.use_var(v);
        self.write(dst, Ix::c(0), a);
    }
}
